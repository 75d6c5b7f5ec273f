//! Substitution in string fields: `${date}` is a parameter, `${extract.rows}` an output of
//! an upstream step, and `$${...}` a literal `${...}` (for shell's own variables).
//!
//! Templates are parsed at validation, so a bad reference is reported before anything runs.

use serde_json::Value;

/// A reference inside `${...}`: a parameter, or a step's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Param(String),
    Output { step: String, key: String },
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ref::Param(name) => write!(f, "${{{name}}}"),
            Ref::Output { step, key } => write!(f, "${{{step}.{key}}}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Ref(Ref),
}

/// A parsed string field.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

/// A template that does not parse; `column` counts characters from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct TemplateError {
    pub column: usize,
    pub message: String,
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            literal.push_str(&rest[..i]);
            let after = &rest[i..];
            if after.starts_with("$${") {
                literal.push_str("${");
                rest = &after[3..];
            } else if let Some(body) = after.strip_prefix("${") {
                let column = text.len() - after.len() + 1;
                let end = body.find('}').ok_or_else(|| TemplateError {
                    column,
                    message: "`${` is not closed by `}` (write `$${` for a literal `${`)".into(),
                })?;
                let reference = parse_ref(body[..end].trim()).map_err(|message| TemplateError { column, message })?;
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(Part::Ref(reference));
                rest = &body[end + 1..];
            } else {
                literal.push('$');
                rest = &after[1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// The references, in order.
    pub fn refs(&self) -> impl Iterator<Item = &Ref> {
        self.parts.iter().filter_map(|p| match p {
            Part::Ref(r) => Some(r),
            Part::Text(_) => None,
        })
    }

    /// Substitutes every reference with the value `lookup` gives (strings unquoted).
    pub fn render<E>(&self, mut lookup: impl FnMut(&Ref) -> Result<Value, E>) -> Result<String, E> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Ref(r) => match lookup(r)? {
                    Value::String(s) => out.push_str(&s),
                    other => out.push_str(&other.to_string()),
                },
            }
        }
        Ok(out)
    }
}

fn parse_ref(body: &str) -> Result<Ref, String> {
    let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match body.split_once('.') {
        None if valid(body) => Ok(Ref::Param(body.to_owned())),
        Some((step, key)) if valid(step) && valid(key) => Ok(Ref::Output {
            step: step.to_owned(),
            key: key.to_owned(),
        }),
        _ => Err(format!(
            "`${{{body}}}` is not a reference: write `${{param}}` or `${{step.output}}`"
        )),
    }
}

/// Every string inside a JSON value, for templates in host step params.
pub fn strings_in(value: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => out.push(s.as_str()),
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    out
}

/// Renders every string inside a JSON value.
pub fn render_value(value: &Value, lookup: &mut dyn FnMut(&Ref) -> Result<Value, String>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => Value::String(Template::parse(s).map_err(|e| e.to_string())?.render(&mut *lookup)?),
        Value::Array(items) => Value::Array(items.iter().map(|v| render_value(v, lookup)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, lookup)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(text: &str) -> String {
        Template::parse(text)
            .unwrap()
            .render(|r| {
                Ok::<_, ()>(match r {
                    Ref::Param(p) if p == "date" => json!("2026-11-24"),
                    Ref::Output { step, key } if step == "extract" && key == "rows" => json!(42),
                    _ => json!(null),
                })
            })
            .unwrap()
    }

    #[test]
    fn substitutes_params_and_outputs() {
        assert_eq!(render("load ${date} ${extract.rows} rows"), "load 2026-11-24 42 rows");
        assert_eq!(render("${ date }"), "2026-11-24");
    }

    #[test]
    fn leaves_shell_variables_alone() {
        assert_eq!(render("echo x >> $BATON_OUTPUT; echo $${HOME} $"), "echo x >> $BATON_OUTPUT; echo ${HOME} $");
    }

    #[test]
    fn lists_references() {
        let t = Template::parse("${a} ${b.c}").unwrap();
        let refs: Vec<_> = t.refs().cloned().collect();
        assert_eq!(
            refs,
            vec![Ref::Param("a".into()), Ref::Output { step: "b".into(), key: "c".into() }]
        );
    }

    #[test]
    fn reports_bad_templates_with_column() {
        let e = Template::parse("echo ${date").unwrap_err();
        assert_eq!(e.column, 6);
        assert!(e.message.contains("not closed"));
        let e = Template::parse("x ${a b}").unwrap_err();
        assert_eq!(e.column, 3);
        assert!(e.message.contains("not a reference"));
    }
}

//! Reading definitions from YAML or JSON text, and pointing errors at their line and column.

use super::{nesting, WorkflowDef};
use crate::error::{DefinitionError, InvalidDefinition};
use marked_yaml::Node;
use std::path::Path;
use std::sync::OnceLock;

/// The text format of a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON for `.json` files, YAML otherwise.
    pub(crate) fn of_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// The text a definition came from, kept to place errors at a line and column.
#[derive(Debug)]
pub struct Source {
    name: String,
    text: String,
    format: Format,
    tree: OnceLock<Option<Node>>,
    /// The directory of the file, against which relative `file:` paths are read.
    dir: Option<std::path::PathBuf>,
}

impl Source {
    /// Text with a name (usually the file it came from) to show in errors.
    pub fn new(name: impl Into<String>, text: impl Into<String>, format: Format) -> Self {
        Source { name: name.into(), text: text.into(), format, tree: OnceLock::new(), dir: None }
    }

    /// Reads a file; the format follows the extension.
    pub fn read(path: &Path) -> Result<Self, InvalidDefinition> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            InvalidDefinition::single(DefinitionError {
                file: Some(path.display().to_string()),
                ..DefinitionError::new(format!("cannot read: {e}"))
            })
        })?;
        let mut source = Source::new(path.display().to_string(), text, Format::of_path(path));
        source.dir = path
            .parent()
            .map(|d| if d.as_os_str().is_empty() { Path::new(".") } else { d }.to_path_buf());
        Ok(source)
    }

    /// Deserializes the definition. A shape error (unknown field, wrong type) is reported
    /// with its line and column, and a likely typo gets a suggestion.
    pub fn parse(&self) -> Result<WorkflowDef, InvalidDefinition> {
        let result = match self.format {
            Format::Yaml => {
                match nesting::check_yaml(&self.text) {
                    Err((message, line, column)) => {
                        Err((".".into(), message, Some((line, column))))
                    }
                    Ok(()) => serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(
                        &self.text,
                    ))
                    .map_err(|e| {
                        let path = e.path().to_string();
                        let inner = e.into_inner();
                        (path, inner.to_string(), inner.location().map(|l| (l.line(), l.column())))
                    }),
                }
            }
            Format::Json => {
                let mut json = serde_json::Deserializer::from_str(&self.text);
                serde_path_to_error::deserialize(&mut json)
                    .map_err(|e| {
                        let path = e.path().to_string();
                        let inner = e.into_inner();
                        (path, inner.to_string(), Some((inner.line(), inner.column())))
                    })
                    // Text after the workflow is an error, not ignored.
                    .and_then(|def| match json.end() {
                        Ok(()) => Ok(def),
                        Err(e) => Err((".".into(), e.to_string(), Some((e.line(), e.column())))),
                    })
            }
        };
        let result = result.map(|mut def: WorkflowDef| {
            if let Some(dir) = &self.dir {
                resolve_files(&mut def.steps, dir);
            }
            def
        });
        result.map_err(|(path, message, at)| {
            let message = strip_location(&message);
            // serde's own words for the limit the YAML check applies.
            let deep = nesting::too_deep();
            let message = if message == "recursion limit exceeded" { &deep } else { message };
            // serde_yaml names the path itself (`steps[0].type: ...`); it goes to `field`.
            let message = match message.split_once(": ") {
                Some((prefix, rest))
                    if !prefix.contains(' ')
                        && path.starts_with(prefix.split(['.', '[']).next().unwrap_or("")) =>
                {
                    rest
                }
                _ => message,
            };
            let (step_index, field) = split_path(&path);
            let field = field.or_else(|| {
                unknown_field(message).map(|f| match &path[..] {
                    "." => f.to_owned(),
                    _ if step_index.is_some() => f.to_owned(),
                    p => format!("{p}.{f}"),
                })
            });
            // Named as validation names fields: `triggers.1.misfire`, `steps.0.command`.
            let field = field.map(|f| f.replace('[', ".").replace(']', ""));
            let mut error = DefinitionError::new(with_suggestion(message));
            error.file = Some(self.name.clone());
            error.step = step_index.and_then(|i| self.step_path(i, field.as_deref().unwrap_or("")));
            error.step_index = step_index;
            error.field = field;
            if let Some((line, column)) = at.filter(|(l, _)| *l > 0) {
                error.line = Some(line);
                error.column = Some(column);
            }
            InvalidDefinition::single(error)
        })
    }

    /// Fills in file, line and column of errors found after parsing.
    pub fn locate(&self, mut errors: InvalidDefinition) -> InvalidDefinition {
        for e in &mut errors.errors {
            e.file = Some(self.name.clone());
            if e.line.is_none() {
                if let Some((line, column)) = self.position(e.step_index, e.field.as_deref()) {
                    e.line = Some(line);
                    e.column = Some(column);
                }
            }
        }
        // Stable: errors without a position keep their order, after the others.
        errors.errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
        errors
    }

    /// Line and column of `field` (dotted path, e.g. `retry.delay` or `depends_on.1`)
    /// in step number `step`, or at the top level when `step` is `None`.
    fn position(&self, step: Option<usize>, field: Option<&str>) -> Option<(usize, usize)> {
        // Built only when an error needs it: a million-step file is not parsed twice otherwise.
        let tree =
            self.tree.get_or_init(|| marked_yaml::parse_yaml(0, &self.text).ok()).as_ref()?;
        let mut node = tree;
        if let Some(i) = step {
            node = node.as_mapping()?.get_node("steps")?.as_sequence()?.get_node(i)?;
        }
        let mut at = node.span().start().copied();
        // A step is shown at its `id`, and so is a field it lacks.
        let id = || {
            node.as_mapping()
                .and_then(|m| m.iter().find(|(k, _)| k.as_str() == "id"))
                .and_then(|(k, _)| k.span().start().copied())
        };
        let step_at = step.and_then(|_| id());
        let field = field.or(step.map(|_| "id"));
        for part in field.into_iter().flat_map(|f| f.split('.')) {
            let next = if let Some(map) = node.as_mapping() {
                map.iter()
                    .find(|(k, _)| k.as_str() == part)
                    .map(|(key, value)| (key.span().start().copied(), value))
            } else {
                node.as_sequence()
                    .and_then(|s| s.get_node(part.parse().ok()?))
                    .map(|n| (n.span().start().copied(), n))
            };
            match next {
                Some((start, value)) => {
                    at = start;
                    node = value;
                }
                None => return step_at.map(|m| (m.line(), m.column())),
            }
        }
        at.map(|m| (m.line(), m.column()))
    }

    /// The id of step number `index`, read from the raw text; for a `field` in its body
    /// (`steps.0.command`), the path of the body's step, `outer/inner`, as validation names it.
    fn step_path(&self, index: usize, mut field: &str) -> Option<String> {
        let value: serde_json::Value = match self.format {
            Format::Yaml => serde_yaml::from_str(&self.text).ok()?,
            Format::Json => serde_json::from_str(&self.text).ok()?,
        };
        let mut step = value.get("steps")?.get(index)?;
        let mut path = step.get("id")?.as_str()?.to_owned();
        while let Some((n, rest)) = field.strip_prefix("steps.").and_then(|f| f.split_once('.')) {
            let Some(inner) = n.parse::<usize>().ok().and_then(|n| step.get("steps")?.get(n))
            else {
                break;
            };
            let Some(id) = inner.get("id").and_then(|id| id.as_str()) else { break };
            path = format!("{path}/{id}");
            (step, field) = (inner, rest);
        }
        Some(path)
    }
}

/// Makes the relative `file:` paths of subworkflow steps (in bodies too) relative to the
/// definition's own directory, so that a workflow runs the same from any directory.
fn resolve_files(steps: &mut [super::StepDef], dir: &Path) {
    for step in steps {
        // `flow_mut` would allocate the group of every step that has none.
        if step.flow().file.is_none() && step.flow().steps.is_empty() {
            continue;
        }
        let flow = step.flow_mut();
        if let Some(file) = &mut flow.file {
            if Path::new(file.as_str()).is_relative() {
                *file = dir.join(&*file).display().to_string();
            }
        }
        resolve_files(&mut flow.steps, dir);
    }
}

/// Splits a serde path (`steps[3].retry.delay`) into the step number and the field
/// inside it (`retry.delay`); a path outside the steps is all field.
fn split_path(path: &str) -> (Option<usize>, Option<String>) {
    let field = |f: &str| Some(f.to_owned()).filter(|f| !f.is_empty() && f != ".");
    let Some(rest) = path.strip_prefix("steps[") else { return (None, field(path)) };
    let Some((index, rest)) = rest.split_once(']') else { return (None, field(path)) };
    (index.parse().ok(), field(rest.trim_start_matches('.')))
}

/// The name in serde's "unknown field `x`" message.
fn unknown_field(message: &str) -> Option<&str> {
    message.split_once("unknown field `")?.1.split('`').next()
}

/// serde appends " at line L column C"; the location is reported in its own fields.
fn strip_location(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// Adds "did you mean" to serde's unknown field and unknown variant errors.
fn with_suggestion(message: &str) -> String {
    let Some(rest) = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))
        .map(|(_, rest)| rest)
    else {
        return message.to_owned();
    };
    let Some((given, expected)) = rest.split_once('`') else {
        return message.to_owned();
    };
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    format!("{message}{}", crate::error::did_you_mean(given, candidates.iter().copied()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<WorkflowDef, InvalidDefinition> {
        Source::new("flow.yaml", text, Format::Yaml).parse()
    }

    #[test]
    fn yaml_and_json_give_the_same_model() {
        let from_yaml = yaml(
            "id: etl\nparams: {date: '2026-11-24', limit: 100}\nsteps:\n  - id: a\n    type: shell\n    command: echo hi\n    retry: {max_attempts: 3, backoff: fixed, delay: 2s}\n",
        )
        .unwrap();
        let json = serde_json::to_string(&from_yaml).unwrap();
        let from_json = Source::new("flow.json", json, Format::Json).parse().unwrap();
        assert_eq!(from_yaml, from_json);
        assert_eq!(from_yaml.params["limit"], serde_json::json!(100));
    }

    #[test]
    fn unknown_field_names_line_step_and_suggestion() {
        let err = yaml("id: etl\nsteps:\n  - id: extract\n    type: shell\n    comand: echo\n")
            .unwrap_err();
        let e = &err.errors[0];
        assert_eq!(e.line, Some(5));
        assert_eq!(e.step.as_deref(), Some("extract"));
        assert_eq!(e.field.as_deref(), Some("comand"));
        assert!(e.message.starts_with("unknown field `comand`"), "{}", e.message);
        assert!(e.message.contains("did you mean `command`?"), "{}", e.message);
        assert!(err.to_string().starts_with("flow.yaml:5:"), "{err}");
    }

    #[test]
    fn unknown_variant_gets_a_suggestion() {
        let err =
            yaml("id: etl\nsteps:\n  - id: a\n    type: noop\n    failure_mode: ignore_failures\n")
                .unwrap_err();
        assert!(err.to_string().contains("did you mean `ignore_failure`?"), "{err}");
    }

    #[test]
    fn json_errors_have_a_line() {
        let err = Source::new("f.json", "{\"id\": \"x\",\n \"stepz\": []}", Format::Json)
            .parse()
            .unwrap_err();
        assert_eq!(err.errors[0].line, Some(2));
        assert_eq!(err.errors[0].field.as_deref(), Some("stepz"));
        assert!(err.to_string().contains("did you mean `steps`?"), "{err}");
    }

    #[test]
    fn type_errors_name_the_step_and_field_in_json_too() {
        let json = r#"{"id": "x", "steps": [{"id": "a", "type": "noop", "retry": {"max_attempts": "three"}}]}"#;
        let err = Source::new("f.json", json, Format::Json).parse().unwrap_err();
        let e = &err.errors[0];
        assert_eq!(
            (e.step.as_deref(), e.field.as_deref()),
            (Some("a"), Some("retry.max_attempts"))
        );
        let err = yaml("id: x\nsteps:\n  - id: a\n    type: [noop]\n").unwrap_err();
        let e = &err.errors[0];
        assert_eq!((e.step.as_deref(), e.field.as_deref()), (Some("a"), Some("type")));
        assert!(e.message.starts_with("invalid type"), "{}", e.message);
    }

    #[test]
    fn shape_errors_are_named_as_validation_names_them() {
        let json = r#"{"id": "w", "steps": [{"id": "loop", "type": "foreach", "steps": [{"id": "in", "type": "shell", "command": 3}]}]}"#;
        let e = &Source::new("f.json", json, Format::Json).parse().unwrap_err().errors[0];
        assert_eq!(
            (e.step.as_deref(), e.field.as_deref()),
            (Some("loop/in"), Some("steps.0.command"))
        );
        let e = &yaml("id: w\nsteps: [{id: a, type: noop}]\ntriggers: [{cron: '* * * * *'}, {cron: '0 * * * *', misfire: never}]\n").unwrap_err().errors[0];
        assert_eq!((e.step.as_deref(), e.field.as_deref()), (None, Some("triggers.1.misfire")));
        let e = &yaml(
            "id: w\nsteps: [{id: a, type: noop}]\ntriggers: [{cron: '* * * * *', bogus: 1}]\n",
        )
        .unwrap_err()
        .errors[0];
        assert_eq!(e.field.as_deref(), Some("triggers.0.bogus"));
    }

    #[test]
    fn positions_point_at_fields_of_steps() {
        let source = Source::new(
            "f.yaml",
            "id: x\nsteps:\n  - id: a\n    type: noop\n  - id: b\n    type: noop\n    depends_on: [a, zz]\n",
            Format::Yaml,
        );
        assert_eq!(source.position(Some(1), None), Some((5, 5)));
        assert_eq!(source.position(Some(1), Some("depends_on")).map(|p| p.0), Some(7));
        assert_eq!(source.position(Some(1), Some("depends_on.1")), Some((7, 21)));
        assert_eq!(source.position(None, Some("steps")).map(|p| p.0), Some(2));
    }

    #[test]
    fn deep_nesting_is_refused_with_its_line() {
        let depth = 100_000;
        let lists = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let maps = format!("{}1{}", "{\"a\": ".repeat(depth), "}".repeat(depth));
        for (format, text) in [
            (Format::Yaml, format!("id: w\nsteps: []\nbogus: {lists}\n")),
            (Format::Yaml, format!("id: w\nsteps: []\nparams: {{x: {maps}}}\n")),
            (Format::Json, format!("{{\"id\": \"w\", \"steps\": [],\n\n\"params\": {maps}}}")),
            (Format::Json, format!("{{\"id\": \"w\",\n\"params\":\n{{\"x\": {lists}}}}}")),
        ] {
            let err = Source::new("deep", text, format).parse().unwrap_err();
            let e = &err.errors[0];
            assert_eq!(e.message, "nested deeper than 128 levels", "{format:?}");
            assert_eq!((e.file.as_deref(), e.line), (Some("deep"), Some(3)), "{format:?}");
        }
        // JSON is read as it goes: an earlier error comes first, at once.
        let json = format!("{{\"id\": \"w\", \"steps\": [],\n\"bogus\": {lists}}}");
        let err = Source::new("deep", json, Format::Json).parse().unwrap_err();
        assert!(err.errors[0].message.starts_with("unknown field `bogus`"), "{err}");
        // Block nesting, which serde_yaml refuses as it reads, gets the same message.
        let mut block = String::from("id: w\nsteps: []\nparams:\n");
        for level in 0..200 {
            block.push_str(&format!("{}a:\n", " ".repeat(2 + 2 * level)));
        }
        let err = yaml(&block).unwrap_err();
        assert_eq!(err.errors[0].message, "nested deeper than 128 levels");
    }

    #[test]
    fn text_after_a_json_workflow_is_an_error() {
        let json = "{\"id\": \"w\", \"steps\": [{\"id\": \"a\", \"type\": \"noop\"}]} garbage";
        let err = Source::new("w.json", json, Format::Json).parse().unwrap_err();
        assert!(err.errors[0].message.contains("trailing characters"), "{err}");
        assert_eq!(err.errors[0].line, Some(1));
    }
}

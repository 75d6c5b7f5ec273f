//! The expression language, used in string fields as `${ ... }`.
//!
//! Literals (`1`, `2.5`, `'text'`, `true`, `null`, `[1, 2]`, `{k: 'v'}`), names (a parameter
//! `date`, a step's outputs `extract.rows`, or `steps['job.1'].rows` for a step whose id is
//! no plain name: the parser reads it as the name `job.1`), operators `+ - * / % == != < <= > >= && || ! ?:`,
//! indexing `a[0]`, `m['k']`, and built-in functions (`range`, `len`, `now`, ...). A field
//! that is a single `${...}` keeps the value's type (`"${range(0, 3)}"` is a list);
//! otherwise the values are written into the text. `$${` is a literal `${` (for the shell's
//! own `${HOME}`).
//!
//! Fields are parsed once, at validation, where unknown names, unknown functions, wrong
//! argument counts and errors in constant parts (`1 + true`) are reported with their column.
//! Evaluation runs in a sandbox with a budget of steps and memory, so that a runaway
//! expression fails instead of holding the engine.
//!
//! Outside the crate only [`Template`] and [`Scope`] are offered, to evaluate fields the way
//! the engine does (benchmarks, tools); the syntax tree and the functions stay private.

mod eval;
mod functions;
mod parse;

use eval::EvalError;
pub(crate) use functions::kind as kind_of;
use functions::plain;
use parse::{Expr, Node};
use serde_json::Value;

/// How an expression names step `id`: `extract` for a plain name, `steps['job.1']` for
/// an id that is not one (tools that write expressions, such as importers, use this).
pub fn step_reference(id: &str) -> String {
    if parse::is_plain_name(id) {
        id.to_owned()
    } else {
        format!("{}['{}']", parse::STEPS, id.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// What names mean where an expression is evaluated.
pub trait Scope {
    /// The value of a name: a parameter, a step's outputs (as a map), a loop variable.
    fn name(&self, name: &str) -> Option<Value>;
    /// Now, for `now()` and `today()`, in milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// An environment variable, if the host lets expressions read it (`env(name)`).
    fn env(&self, _name: &str) -> Option<String> {
        None
    }
    /// The run the expression is evaluated for (`run_id()`, `scheduled_at()`, ...); none
    /// before a run exists (a trigger's params).
    fn run(&self) -> Option<&RunContext> {
        None
    }
    /// The attempt of the step whose field this is, from 1 (`attempt()`).
    fn attempt(&self) -> Option<u32> {
        None
    }
}

/// What expressions know of the run they are evaluated for. An iteration of a loop sees
/// the run of its loop; a subworkflow's child run is a run of its own, started by its
/// parent, and keeps the parent's scheduled time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    /// `run_id()`.
    pub run_id: String,
    /// `workflow_id()`.
    pub workflow_id: String,
    /// `workflow_version()`: the registered version, none for a definition run from a file.
    pub version: Option<u32>,
    /// `started_at()`, in milliseconds since the epoch.
    pub started_ms: u64,
    /// `scheduled_at()`: when a trigger was due (a cron time, a signal's sending), else
    /// when the run was made.
    pub scheduled_ms: u64,
    /// `initiator()`: `manual`, `cron`, `signal` or `parent`.
    pub initiator: &'static str,
}

/// A problem in a field, at a column (from 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct TemplateError {
    /// Where in the field, in characters from 1.
    pub(crate) column: usize,
    /// What is wrong.
    pub(crate) message: String,
}

impl From<EvalError> for TemplateError {
    fn from(e: EvalError) -> Self {
        TemplateError { column: e.column, message: e.message }
    }
}

impl From<parse::SyntaxError> for TemplateError {
    fn from(e: parse::SyntaxError) -> Self {
        TemplateError { column: e.column, message: e.message }
    }
}

/// A use of a name in a field: `date`, or `extract` with member `rows`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameUse {
    /// The name.
    pub(crate) name: String,
    /// The member read right after it (`rows` in `extract.rows`).
    pub(crate) member: Option<String>,
    /// Where the name is in the field, from 1.
    pub(crate) column: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Expr(Expr),
}

/// A piece of a rendered field (see [`Template::render_pieces`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece<'a> {
    /// Text as written in the field.
    Text(&'a str),
    /// What a `${...}` evaluated to, as text.
    Value(String),
    /// What a `${raw(...)}` evaluated to: code, in a field that runs code (a shell
    /// command); elsewhere the same as a value.
    Code(String),
}

/// A `raw(...)` in a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RawUse {
    /// Where the call is, from 1.
    pub(crate) column: usize,
    /// Whether it is the whole `${...}`, the only place it marks code.
    pub(crate) whole: bool,
    /// The names its argument uses.
    pub(crate) names: Vec<NameUse>,
}

/// A parsed string field.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses a field.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let chars: Vec<char> = text.chars().collect();
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '$' && chars.get(i + 1) == Some(&'$') && chars.get(i + 2) == Some(&'{') {
                literal.push_str("${");
                i += 3;
            } else if chars[i] == '$' && chars.get(i + 1) == Some(&'{') {
                let (expr, end) =
                    parse::parse_embedded(&chars, i + 2).map_err(|e| TemplateError {
                        message: if e.message.contains("the end of the text") {
                            format!("{} (write `$${{` for a literal `${{`)", e.message)
                        } else {
                            e.message
                        },
                        column: e.column,
                    })?;
                if !literal.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut literal)));
                }
                parts.push(Part::Expr(expr));
                i = end;
            } else {
                literal.push(chars[i]);
                i += 1;
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template { parts })
    }

    /// Whether the field has no `${...}`.
    pub(crate) fn is_plain(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }

    /// Every name the field uses, in order.
    pub(crate) fn names(&self) -> Vec<NameUse> {
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Expr(e) = part {
                collect_names(e, &mut out);
            }
        }
        out
    }

    /// Every `raw(...)` of the field, in order.
    pub(crate) fn raw_uses(&self) -> Vec<RawUse> {
        fn walk(e: &Expr, whole: bool, out: &mut Vec<RawUse>) {
            if let Node::Call(f, args) = &e.node {
                if f.name == functions::RAW {
                    let mut names = Vec::new();
                    args.iter().for_each(|a| collect_names(a, &mut names));
                    out.push(RawUse { column: e.column, whole, names });
                }
            }
            children(e).into_iter().for_each(|c| walk(c, false, out));
        }
        let mut out = Vec::new();
        for part in &self.parts {
            if let Part::Expr(e) = part {
                walk(e, true, &mut out);
            }
        }
        out
    }

    /// Problems in the parts that depend on nothing (`1 + true`, `range(0, 1e9)`), found
    /// by evaluating them.
    pub(crate) fn check_constants(&self) -> Vec<TemplateError> {
        let mut errors = Vec::new();
        for part in &self.parts {
            if let Part::Expr(e) = part {
                check_constant(e, &mut errors);
            }
        }
        errors
    }

    /// Like [`check_constants`](Template::check_constants), but a whole-field `range(...)`,
    /// which a loop reads lazily, is not evaluated: only its arguments are.
    pub(crate) fn check_constants_lazy(&self) -> Vec<TemplateError> {
        match self.parts.as_slice() {
            [Part::Expr(Expr { node: Node::Call(f, args), .. })] if f.name == "range" => {
                let mut errors = Vec::new();
                args.iter().for_each(|a| check_constant(a, &mut errors));
                errors
            }
            _ => self.check_constants(),
        }
    }

    /// The field with every `${...}` evaluated and written in (strings without quotes).
    pub fn render(&self, scope: &dyn Scope) -> Result<String, TemplateError> {
        let mut out = String::new();
        for piece in self.render_pieces(scope)? {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Value(v) | Piece::Code(v) => out.push_str(&v),
            }
        }
        Ok(out)
    }

    /// The field's text as written and each `${...}` evaluated (as `render` writes it), in
    /// order: for a reader that must know where each value stands (shell code).
    pub(crate) fn render_pieces(&self, scope: &dyn Scope) -> Result<Vec<Piece<'_>>, TemplateError> {
        self.parts
            .iter()
            .map(|part| {
                Ok(match part {
                    Part::Text(t) => Piece::Text(t),
                    Part::Expr(e) => {
                        let value = plain(&eval::Evaluator::new(scope).eval(e)?);
                        match &e.node {
                            Node::Call(f, _) if f.name == functions::RAW => Piece::Code(value),
                            _ => Piece::Value(value),
                        }
                    }
                })
            })
            .collect()
    }

    /// The field's value: a single `${...}` keeps its type, anything else is a string.
    pub fn evaluate(&self, scope: &dyn Scope) -> Result<Value, TemplateError> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => Ok(eval::Evaluator::new(scope).eval(e)?),
            _ => Ok(Value::String(self.render(scope)?)),
        }
    }
}

/// A `range(start, end[, step])` whose items are produced one at a time, so that a loop
/// over a million numbers never holds them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LazyRange {
    /// The first item.
    pub(crate) start: i64,
    /// The difference between an item and the next (never 0).
    pub(crate) step: i64,
    /// How many items there are.
    pub(crate) count: u64,
}

impl LazyRange {
    /// Item number `i`.
    pub(crate) fn get(&self, i: u64) -> i64 {
        self.start + i as i64 * self.step
    }
}

impl Template {
    /// The range, when the whole field is a call of `range`: it is not evaluated into a
    /// list, and has no length limit.
    pub(crate) fn lazy_range(&self, scope: &dyn Scope) -> Option<Result<LazyRange, TemplateError>> {
        let [Part::Expr(e)] = self.parts.as_slice() else { return None };
        let Node::Call(f, args) = &e.node else { return None };
        if f.name != "range" {
            return None;
        }
        let mut evaluator = eval::Evaluator::new(scope);
        let column = e.column;
        let mut ints = Vec::with_capacity(args.len());
        for arg in args {
            let value = match evaluator.eval(arg) {
                Ok(v) => v,
                Err(err) => return Some(Err(err.into())),
            };
            match value.as_i64() {
                Some(n) => ints.push(n),
                None => {
                    return Some(Err(TemplateError {
                        column: arg.column,
                        message: format!("range() takes integers, not {value}"),
                    }))
                }
            }
        }
        let step = ints.get(2).copied().unwrap_or(1);
        Some(
            functions::range_count(ints[0], ints[1], step)
                .map(|count| LazyRange { start: ints[0], step, count })
                .map_err(|message| TemplateError { column, message }),
        )
    }
}

/// The field as text that parses back to the same template: expressions fully
/// parenthesised, a literal `${` written `$${`.
impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for part in &self.parts {
            match part {
                Part::Text(t) => f.write_str(&t.replace("${", "$${"))?,
                Part::Expr(e) => write!(f, "${{{e}}}")?,
            }
        }
        Ok(())
    }
}

fn collect_names(e: &Expr, out: &mut Vec<NameUse>) {
    match &e.node {
        Node::Name(n) => out.push(NameUse { name: n.clone(), member: None, column: e.column }),
        Node::Member(target, key) => match &target.node {
            Node::Name(n) => out.push(NameUse {
                name: n.clone(),
                member: Some(key.clone()),
                column: target.column,
            }),
            _ => collect_names(target, out),
        },
        _ => children(e).into_iter().for_each(|c| collect_names(c, out)),
    }
}

fn children(e: &Expr) -> Vec<&Expr> {
    match &e.node {
        Node::Literal(_) | Node::Name(_) => vec![],
        Node::List(items) | Node::Call(_, items) => items.iter().collect(),
        Node::Map(entries) => entries.iter().map(|(_, v)| v).collect(),
        Node::Member(x, _) | Node::Not(x) | Node::Negate(x) => vec![x],
        Node::Index(a, b) | Node::Binary(_, a, b) | Node::And(a, b) | Node::Or(a, b) => vec![a, b],
        Node::Conditional(a, b, c) => vec![a, b, c],
    }
}

fn is_constant(e: &Expr) -> bool {
    match &e.node {
        Node::Name(_) => false,
        Node::Call(f, _) if f.impure => false,
        _ => children(e).into_iter().all(is_constant),
    }
}

struct NoNames;

impl Scope for NoNames {
    fn name(&self, _: &str) -> Option<Value> {
        None
    }
    fn now_ms(&self) -> u64 {
        0
    }
}

fn check_constant(e: &Expr, errors: &mut Vec<TemplateError>) {
    if is_constant(e) {
        if !matches!(e.node, Node::Literal(_)) {
            if let Err(err) = eval::Evaluator::new(&NoNames).eval(e) {
                errors.push(err.into());
            }
        }
    } else {
        children(e).into_iter().for_each(|c| check_constant(c, errors));
    }
}

/// Every string inside a JSON value, for templates in step params.
pub(crate) fn strings_in(value: &Value) -> Vec<&str> {
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

/// A JSON value whose strings are templates, parsed once: step and signal params.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueTemplate {
    /// A string: a whole-field `${...}` keeps its type.
    Text(Template),
    List(Vec<ValueTemplate>),
    Map(Vec<(String, ValueTemplate)>),
    /// A number, boolean or null.
    Plain(Value),
}

impl ValueTemplate {
    /// Parses every string inside `value`.
    pub(crate) fn parse(value: &Value) -> Result<ValueTemplate, TemplateError> {
        Ok(match value {
            Value::String(s) => ValueTemplate::Text(Template::parse(s)?),
            Value::Array(items) => {
                ValueTemplate::List(items.iter().map(Self::parse).collect::<Result<_, _>>()?)
            }
            Value::Object(map) => ValueTemplate::Map(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), Self::parse(v)?)))
                    .collect::<Result<_, TemplateError>>()?,
            ),
            other => ValueTemplate::Plain(other.clone()),
        })
    }

    /// The value, with every template evaluated in `scope`.
    pub(crate) fn evaluate(&self, scope: &dyn Scope) -> Result<Value, TemplateError> {
        Ok(match self {
            ValueTemplate::Text(t) => t.evaluate(scope)?,
            ValueTemplate::List(items) => {
                Value::Array(items.iter().map(|v| v.evaluate(scope)).collect::<Result<_, _>>()?)
            }
            ValueTemplate::Map(entries) => Value::Object(
                entries.iter().map(|(k, v)| Ok((k.clone(), v.evaluate(scope)?))).collect::<Result<
                    _,
                    TemplateError,
                >>(
                )?,
            ),
            ValueTemplate::Plain(v) => v.clone(),
        })
    }
}

/// Evaluates every string inside a JSON value (a whole-field `${...}` keeps its type), for
/// values evaluated once (a trigger's params when it fires).
pub(crate) fn evaluate_value(value: &Value, scope: &dyn Scope) -> Result<Value, TemplateError> {
    ValueTemplate::parse(value)?.evaluate(scope)
}

#[cfg(test)]
mod tests;

//! Error kinds every client of the engine shares, and errors in workflow definitions,
//! reported all at once with where they are.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What kind of failure an error is: the one list the control protocol, the CLI's exit
/// codes, the JNI bridge and Java's exception classes are mapped from. Every mapping is an
/// exhaustive `match`, so a new kind does not compile until each client handles it; Java
/// mirrors the list and a test compares the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// An invalid workflow definition, or a step kind that cannot be registered.
    Definition,
    /// A run parameter the workflow does not declare, or of the wrong type.
    Param,
    /// No such run (or not one this engine runs).
    UnknownRun,
    /// No such registered workflow.
    UnknownWorkflow,
    /// No such version of a workflow.
    UnknownVersion,
    /// No such step in the run's workflow.
    UnknownStep,
    /// An action the run or step's state does not allow.
    IllegalAction,
    /// A start refused by the workflow's run strategy.
    RunRejected,
    /// A request that does not fit: a bad tag, an unsupported operation, a trigger that
    /// cannot be evaluated.
    InvalidRequest,
    /// The store failed, or is held by another process.
    Store,
    /// The engine is closed.
    Closed,
    /// The engine did not settle within a real-time limit (virtual time).
    Timeout,
    /// The call does not fit the engine's configuration (virtual time on a system clock).
    State,
    /// A bug, or a failure the caller cannot act on.
    Internal,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::Definition,
        ErrorKind::Param,
        ErrorKind::UnknownRun,
        ErrorKind::UnknownWorkflow,
        ErrorKind::UnknownVersion,
        ErrorKind::UnknownStep,
        ErrorKind::IllegalAction,
        ErrorKind::RunRejected,
        ErrorKind::InvalidRequest,
        ErrorKind::Store,
        ErrorKind::Closed,
        ErrorKind::Timeout,
        ErrorKind::State,
        ErrorKind::Internal,
    ];

    /// The kind's name on the wire (`unknown_run`).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Definition => "definition",
            ErrorKind::Param => "param",
            ErrorKind::UnknownRun => "unknown_run",
            ErrorKind::UnknownWorkflow => "unknown_workflow",
            ErrorKind::UnknownVersion => "unknown_version",
            ErrorKind::UnknownStep => "unknown_step",
            ErrorKind::IllegalAction => "illegal_action",
            ErrorKind::RunRejected => "run_rejected",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Store => "store",
            ErrorKind::Closed => "closed",
            ErrorKind::Timeout => "timeout",
            ErrorKind::State => "state",
            ErrorKind::Internal => "internal",
        }
    }

    /// The exit code of a `baton` command that fails this way: 2 for what the user can fix
    /// in the command or the definition, 3 for the store and the engine.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Definition
            | ErrorKind::Param
            | ErrorKind::UnknownRun
            | ErrorKind::UnknownWorkflow
            | ErrorKind::UnknownVersion
            | ErrorKind::UnknownStep
            | ErrorKind::IllegalAction
            | ErrorKind::RunRejected
            | ErrorKind::InvalidRequest
            | ErrorKind::Timeout
            | ErrorKind::State => 2,
            ErrorKind::Store | ErrorKind::Closed | ErrorKind::Internal => 3,
        }
    }
}

/// One problem in a definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionError {
    /// The file (or the name of the text) the definition came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line of the problem, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The column of the problem, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The step the problem is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Position of that step in the definition, to find its line.
    #[serde(skip)]
    pub(crate) step_index: Option<usize>,
    /// The field, as a dotted path (`retry.delay`, `depends_on.1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What is wrong, and how to fix it when that is clear.
    pub message: String,
}

impl DefinitionError {
    /// A problem with nothing but a message.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        DefinitionError {
            file: None,
            line: None,
            column: None,
            step: None,
            step_index: None,
            field: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
            if let Some(line) = self.line {
                write!(f, "{line}:")?;
                if let Some(column) = self.column {
                    write!(f, "{column}:")?;
                }
            }
            f.write_str(" ")?;
        }
        if let Some(step) = &self.step {
            write!(f, "step `{step}`: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Every problem found in a definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub struct InvalidDefinition {
    /// The problems. Once [located](crate::model::Source::locate), they are in the order of
    /// the text, those without a position last.
    pub errors: Vec<DefinitionError>,
}

impl InvalidDefinition {
    /// One problem.
    pub(crate) fn single(error: DefinitionError) -> Self {
        InvalidDefinition { errors: vec![error] }
    }
}

impl fmt::Display for InvalidDefinition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// ` (did you mean `x`?)` for the candidate closest to `given`, or nothing when none is
/// close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    closest(given, candidates).map(|c| format!(" (did you mean `{c}`?)")).unwrap_or_default()
}

fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(given, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// What a panic said: its message when it is text, as `panic!` makes it.
pub fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn every_kind_is_listed_once_with_its_wire_name() {
        for kind in ErrorKind::ALL {
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire, kind.name());
            assert_eq!(ErrorKind::ALL.iter().filter(|k| **k == kind).count(), 1);
        }
    }
}

//! The control endpoint: how a second process steers a live engine.
//!
//! One process holds a store (its lock file says which). Another process — the `baton`
//! command most often — cannot open it, so it sends [`Request`]s over a Unix socket in the
//! store directory ([`SOCKET`], owner-only) to the engine that holds it, which answers with
//! a [`Reply`]. The protocol is one JSON object per line each way.
//!
//! [`execute`] is the one place that maps a request onto the engine: the server calls it for
//! remote requests, and the CLI calls it directly when it holds the store itself, so a
//! command means the same whichever way it reaches the engine.

mod client;
mod server;

pub use client::{Client, ConnectError};

use crate::engine::{Engine, EngineError, RunDetails, RunRecord, SignalRecord};
use crate::model::WorkflowDef;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The socket's file name in the store directory.
pub const SOCKET: &str = "control.sock";

/// Where the control socket of the store in `dir` is.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// What a client asks of the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// Every run, oldest first.
    Runs,
    /// A run with its steps.
    Show { run_id: String },
    /// Starts a run of a definition the client read (`baton run FILE`).
    RunDefinition { definition: WorkflowDef, params: IndexMap<String, Value> },
    /// Waits for a run to end.
    Wait { run_id: String },
    /// Sends a signal.
    Signal { name: String, params: IndexMap<String, Value> },
    /// Signals, oldest first, only those named `name` if given.
    Signals { name: Option<String> },
    /// Stops a run.
    Stop { run_id: String },
}

/// What the engine answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum Response {
    Runs(Vec<RunRecord>),
    Details(Box<RunDetails>),
    Run(Box<RunRecord>),
    Started { run_id: String },
    SignalSent { id: String },
    Signals(Vec<SignalRecord>),
    Done,
}

/// What went wrong, in the terms a client needs to pick its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request does not fit: unknown run, bad parameter, illegal action.
    Usage,
    /// The store or the engine failed.
    Store,
}

impl ErrorKind {
    pub fn of(error: &EngineError) -> Self {
        match error {
            EngineError::Store(_) | EngineError::Closed | EngineError::Driver { .. } => ErrorKind::Store,
            _ => ErrorKind::Usage,
        }
    }
}

/// A failed request, as the client receives it.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<EngineError> for RemoteError {
    fn from(e: EngineError) -> Self {
        RemoteError { kind: ErrorKind::of(&e), message: e.to_string() }
    }
}

/// The answer to one request.
pub type Reply = Result<Response, RemoteError>;

/// Carries out `request` on `engine`.
pub async fn execute(engine: &Engine, request: Request) -> Result<Response, EngineError> {
    Ok(match request {
        Request::Runs => Response::Runs(engine.runs()?),
        Request::Show { run_id } => Response::Details(Box::new(engine.details(&run_id)?)),
        Request::RunDefinition { definition, params } => {
            let workflow = Arc::new(engine.compile(definition)?);
            Response::Started { run_id: engine.start(workflow, params).await? }
        }
        Request::Wait { run_id } => Response::Run(Box::new(engine.wait(&run_id).await?)),
        Request::Signal { name, params } => Response::SignalSent { id: engine.signal(&name, params).await? },
        Request::Signals { name } => Response::Signals(engine.signals(name.as_deref())?),
        Request::Stop { run_id } => {
            engine.stop(&run_id, "stopped by an operator")?;
            Response::Done
        }
    })
}

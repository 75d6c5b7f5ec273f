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

pub use server::serve;

pub use client::{Client, ConnectError};

use crate::engine::{
    Engine, EngineError, Event, RunDetails, RunRecord, SignalRecord, VersionInfo, WorkflowInfo,
};
use crate::engine::{FiringRecord, StartOptions};
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
    Show {
        run_id: String,
    },
    /// Starts a run of a definition the client read (`baton run FILE`).
    RunDefinition {
        definition: WorkflowDef,
        params: IndexMap<String, Value>,
    },
    /// Waits for a run to end.
    Wait {
        run_id: String,
    },
    /// Sends a signal.
    Signal {
        name: String,
        params: IndexMap<String, Value>,
    },
    /// Signals, oldest first, only those named `name` if given.
    Signals {
        name: Option<String>,
    },
    /// Registers a definition: a new version if it changed.
    Register {
        definition: WorkflowDef,
    },
    /// Registered workflows.
    Workflows,
    /// The versions of a registered workflow.
    Versions {
        workflow_id: String,
    },
    /// Makes a version the one that starts and fires.
    Activate {
        workflow_id: String,
        version: u32,
    },
    /// Lets a workflow's triggers fire, or not.
    Enable {
        workflow_id: String,
        enabled: bool,
    },
    /// Starts a registered workflow.
    Start {
        workflow_id: String,
        #[serde(default)]
        params: IndexMap<String, Value>,
        #[serde(default)]
        version: Option<u32>,
        #[serde(default)]
        request_id: Option<String>,
    },
    /// The firings of a workflow's triggers.
    Firings {
        workflow_id: String,
    },
    /// Releases a `strict_sequential` queue blocked by a failed run.
    Unblock {
        workflow_id: String,
    },
    /// Stops a run.
    Stop {
        run_id: String,
    },
    /// Ends a run at once, without cleanup.
    Kill {
        run_id: String,
    },
    /// No new steps start until resumed.
    Pause {
        run_id: String,
    },
    Resume {
        run_id: String,
    },
    /// A new run keeping the succeeded steps (all but `from` and below, if given).
    Restart {
        run_id: String,
        #[serde(default)]
        from: Option<String>,
    },
    /// Sets (or clears) a breakpoint: runs pause before the step.
    Break {
        workflow_id: String,
        step_id: String,
        on: bool,
    },
    /// The steps of a workflow with a breakpoint.
    Breakpoints {
        workflow_id: String,
    },
    /// Lets a step at a breakpoint run.
    Continue {
        run_id: String,
        step_id: String,
    },
    /// Marks a step SKIPPED; the steps below go on as if it succeeded.
    Skip {
        run_id: String,
        step_id: String,
    },
    /// A new attempt of a failed step in the same run.
    RetryStep {
        run_id: String,
        step_id: String,
    },
    /// Every status change of a run and its steps.
    Timeline {
        run_id: String,
    },
    /// Streams every status change from now on: one [`Response::Event`] each.
    Events,
    /// Caps the running steps with a tag across all runs (`None` lifts the cap).
    Limit {
        tag: String,
        max: Option<u32>,
    },
    /// The caps set.
    Limits,
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
    Registered { workflow_id: String, version: u32, changed: bool },
    Workflows(Vec<WorkflowInfo>),
    Versions(Vec<VersionInfo>),
    Firings(Vec<FiringRecord>),
    Breakpoints(Vec<String>),
    Events(Vec<Event>),
    Event(Box<Event>),
    Limits(Vec<(String, u32)>),
    Done,
}

pub use crate::error::ErrorKind;

/// A failed request, as the client receives it.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub kind: ErrorKind,
    pub message: String,
}

impl From<EngineError> for RemoteError {
    fn from(e: EngineError) -> Self {
        RemoteError { kind: e.kind(), message: e.to_string() }
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
        Request::Signal { name, params } => {
            Response::SignalSent { id: engine.signal(&name, params).await? }
        }
        Request::Signals { name } => Response::Signals(engine.signals(name.as_deref())?),
        Request::Register { definition } => {
            let registered = engine.register(definition)?;
            let workflow_id = registered.workflow.id().to_owned();
            Response::Registered {
                workflow_id,
                version: registered.version,
                changed: registered.changed,
            }
        }
        Request::Workflows => Response::Workflows(engine.workflows()?),
        Request::Versions { workflow_id } => Response::Versions(engine.versions(&workflow_id)?),
        Request::Activate { workflow_id, version } => done(engine.activate(&workflow_id, version))?,
        Request::Enable { workflow_id, enabled } => {
            done(engine.set_enabled(&workflow_id, enabled))?
        }
        Request::Start { workflow_id, params, version, request_id } => {
            let options = StartOptions { params, version, request_id };
            Response::Started { run_id: engine.start_with(&workflow_id, options).await? }
        }
        Request::Firings { workflow_id } => Response::Firings(engine.firings(&workflow_id)?),
        Request::Unblock { workflow_id } => done(engine.unblock(&workflow_id).await)?,
        Request::Stop { run_id } => done(engine.stop(&run_id, "stopped by an operator").await)?,
        Request::Kill { run_id } => done(engine.kill(&run_id).await)?,
        Request::Pause { run_id } => done(engine.pause(&run_id).await)?,
        Request::Resume { run_id } => done(engine.resume(&run_id).await)?,
        Request::Restart { run_id, from } => {
            Response::Started { run_id: engine.restart(&run_id, from.as_deref()).await? }
        }
        Request::Break { workflow_id, step_id, on } => {
            done(engine.set_breakpoint(&workflow_id, &step_id, on).await)?
        }
        Request::Breakpoints { workflow_id } => {
            Response::Breakpoints(engine.breakpoints(&workflow_id))
        }
        Request::Continue { run_id, step_id } => {
            done(engine.continue_step(&run_id, &step_id).await)?
        }
        Request::Skip { run_id, step_id } => done(engine.skip_step(&run_id, &step_id).await)?,
        Request::RetryStep { run_id, step_id } => done(engine.retry_step(&run_id, &step_id).await)?,
        Request::Timeline { run_id } => Response::Events(engine.timeline(&run_id)?),
        Request::Events => {
            return Err(EngineError::Unsupported(
                "`events` is a stream: only the control socket serves it".into(),
            ));
        }
        Request::Limit { tag, max } => done(engine.set_limit(&tag, max).await)?,
        Request::Limits => Response::Limits(engine.limits()),
    })
}

fn done(result: Result<(), EngineError>) -> Result<Response, EngineError> {
    result.map(|()| Response::Done)
}

//! The control endpoint: how a second process steers a live engine.
//!
//! One process holds a store (its lock file says which). Another process — the `baton`
//! command most often — cannot open it, so it sends [`Request`]s over a Unix socket in the
//! store directory (`control.sock`, owner-only) to the engine that holds it, which answers with
//! a [`Reply`]. The protocol is one JSON object per line each way.
//!
//! [`execute`] is the one place that maps a request onto the engine: the server calls it for
//! remote requests, and the CLI calls it directly when it holds the store itself, so a
//! command means the same whichever way it reaches the engine.

mod client;
mod server;

pub use server::{serve, serve_with, Limits};

pub use client::{Client, ConnectError};

use crate::engine::{
    Engine, EngineError, Event, RunDetails, RunRecord, SignalRecord, VersionInfo, WorkflowInfo,
};
use crate::engine::{FiringRecord, Pruned, StartOptions};
use crate::model::WorkflowDef;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The socket's file name in the store directory.
pub(crate) const SOCKET: &str = "control.sock";

/// Where the control socket of the store in `dir` is.
pub(crate) fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET)
}

/// What a client asks of the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Request {
    /// Every run, oldest first.
    Runs,
    /// The engines of the store.
    Engines,
    /// What the history of a registered workflow's steps says.
    Insights {
        /// The workflow.
        workflow_id: String,
    },
    /// Why a run failed.
    Diagnose {
        /// The run.
        run_id: String,
    },
    /// When a running run should end.
    Eta {
        /// The run.
        run_id: String,
    },
    /// A run with its steps.
    Show {
        /// The run.
        run_id: String,
    },
    /// Starts a run of a definition the client read (`baton run FILE`).
    RunDefinition {
        /// The definition, parsed by the client.
        definition: WorkflowDef,
        /// Overrides of the definition's parameters.
        params: IndexMap<String, Value>,
    },
    /// Waits for a run to end.
    Wait {
        /// The run.
        run_id: String,
    },
    /// Sends a signal.
    Signal {
        /// The signal's name.
        name: String,
        /// What the signal carries.
        params: IndexMap<String, Value>,
    },
    /// Signals, oldest first, only those named `name` if given.
    Signals {
        /// Only signals of this name.
        name: Option<String>,
    },
    /// Registers a definition: a new version if it changed.
    Register {
        /// The definition, parsed by the client.
        definition: WorkflowDef,
    },
    /// Registered workflows.
    Workflows,
    /// The versions of a registered workflow.
    Versions {
        /// The workflow.
        workflow_id: String,
    },
    /// Makes a version the one that starts and fires.
    Activate {
        /// The workflow.
        workflow_id: String,
        /// The version to make active.
        version: u32,
    },
    /// Lets a workflow's triggers fire, or not.
    Enable {
        /// The workflow.
        workflow_id: String,
        /// Whether its triggers fire.
        enabled: bool,
    },
    /// Starts a registered workflow.
    Start {
        /// The workflow.
        workflow_id: String,
        /// Overrides of the workflow's parameters.
        #[serde(default)]
        params: IndexMap<String, Value>,
        /// The version to run (default: the active one).
        #[serde(default)]
        version: Option<u32>,
        /// Makes the start idempotent: a request id used before returns that start's run.
        #[serde(default)]
        request_id: Option<String>,
    },
    /// The firings of a workflow's triggers.
    Firings {
        /// The workflow.
        workflow_id: String,
    },
    /// Releases a `strict_sequential` queue blocked by a failed run.
    Unblock {
        /// The workflow.
        workflow_id: String,
    },
    /// Stops a run.
    Stop {
        /// The run.
        run_id: String,
    },
    /// Ends a run at once, without cleanup.
    Kill {
        /// The run.
        run_id: String,
    },
    /// No new steps start until resumed.
    Pause {
        /// The run.
        run_id: String,
    },
    /// Lets a paused run start steps again.
    Resume {
        /// The run.
        run_id: String,
    },
    /// A new run keeping the succeeded steps (all but `from` and below, if given).
    Restart {
        /// The finished run to restart.
        run_id: String,
        /// A step to run again, with everything below it, even if it succeeded.
        #[serde(default)]
        from: Option<String>,
    },
    /// Sets (or clears) a breakpoint: runs pause before the step.
    Break {
        /// The workflow.
        workflow_id: String,
        /// The step runs pause before.
        step_id: String,
        /// Set (`true`) or clear (`false`).
        on: bool,
    },
    /// The steps of a workflow with a breakpoint.
    Breakpoints {
        /// The workflow.
        workflow_id: String,
    },
    /// Lets a step at a breakpoint run.
    Continue {
        /// The run.
        run_id: String,
        /// The step waiting at the breakpoint.
        step_id: String,
    },
    /// Marks a step SKIPPED; the steps below go on as if it succeeded.
    Skip {
        /// The run.
        run_id: String,
        /// The step to skip.
        step_id: String,
    },
    /// A new attempt of a failed step in the same run.
    RetryStep {
        /// The run.
        run_id: String,
        /// The failed step.
        step_id: String,
    },
    /// Every status change of a run and its steps.
    Timeline {
        /// The run.
        run_id: String,
    },
    /// Streams every status change from now on: one [`Response::Event`] each.
    Events,
    /// Caps the running steps with a tag across all runs (`None` lifts the cap).
    Limit {
        /// The tag.
        tag: String,
        /// The most steps with the tag running at once; `None` lifts the cap.
        max: Option<u32>,
    },
    /// The caps set.
    Limits,
    /// Deletes finished runs, signals and firings older than `older_than_ms` (or counts
    /// them, with `dry_run`).
    Prune {
        /// The age, in milliseconds, past which history goes.
        older_than_ms: u64,
        /// Only counts what would go.
        #[serde(default)]
        dry_run: bool,
    },
    /// The entries of the result cache, of one workflow or of all.
    CacheList {
        /// The workflow; none: every workflow.
        #[serde(default)]
        workflow_id: Option<String>,
    },
    /// Deletes entries of the result cache: all, a workflow's, or one step's.
    CacheClear {
        /// The workflow; none: every workflow.
        #[serde(default)]
        workflow_id: Option<String>,
        /// The step of that workflow; none: all its steps.
        #[serde(default)]
        step_id: Option<String>,
    },
}

/// What the engine answers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "reply", content = "value", rename_all = "snake_case")]
pub enum Response {
    /// Runs, oldest first ([`Request::Runs`]).
    Runs(Vec<RunRecord>),
    /// The engines of the store ([`Request::Engines`]).
    Engines(Vec<crate::engine::EngineInfo>),
    /// [`Request::Insights`].
    Insights(Box<crate::insights::WorkflowInsights>),
    /// [`Request::Diagnose`].
    Diagnosis(Box<crate::insights::Diagnosis>),
    /// [`Request::Eta`]: none for a run that is over or waits in the queue.
    Eta(Option<crate::insights::Eta>),
    /// A run with its steps ([`Request::Show`]).
    Details(Box<RunDetails>),
    /// A run's final record ([`Request::Wait`]).
    Run(Box<RunRecord>),
    /// A run was started, or queued under its run strategy.
    Started {
        /// The new run.
        run_id: String,
    },
    /// A signal was stored.
    SignalSent {
        /// The signal's id.
        id: String,
    },
    /// Signals, oldest first ([`Request::Signals`]).
    Signals(Vec<SignalRecord>),
    /// A definition was registered ([`Request::Register`]).
    Registered {
        /// The workflow.
        workflow_id: String,
        /// Its version with this definition.
        version: u32,
        /// Whether that is a new version; an unchanged definition keeps its version.
        changed: bool,
    },
    /// Registered workflows ([`Request::Workflows`]).
    Workflows(Vec<WorkflowInfo>),
    /// A workflow's versions ([`Request::Versions`]).
    Versions(Vec<VersionInfo>),
    /// A workflow's trigger firings ([`Request::Firings`]).
    Firings(Vec<FiringRecord>),
    /// The steps of a workflow with a breakpoint ([`Request::Breakpoints`]).
    Breakpoints(Vec<String>),
    /// A run's timeline ([`Request::Timeline`]).
    Events(Vec<Event>),
    /// One status change of the stream [`Request::Events`] asked for.
    Event(Box<Event>),
    /// Tags with their caps ([`Request::Limits`]).
    Limits(Vec<(String, u32)>),
    /// What a prune deleted, per kind ([`Request::Prune`]).
    Pruned(Pruned),
    /// Entries of the result cache ([`Request::CacheList`]).
    CacheEntries(Vec<crate::engine::CacheEntry>),
    /// How many entries of the result cache went ([`Request::CacheClear`]).
    CacheCleared(u64),
    /// The request was carried out; there is nothing to tell.
    Done,
}

use crate::error::ErrorKind;

/// A failed request, as the client receives it.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    /// What kind of failure it is, for the client's exit code or exception.
    pub kind: ErrorKind,
    /// The error, as the engine words it.
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
        Request::Engines => Response::Engines(engine.engines()?),
        Request::Insights { workflow_id } => {
            Response::Insights(Box::new(crate::insights::workflow(engine, &workflow_id)?))
        }
        Request::Eta { run_id } => Response::Eta(crate::insights::eta(engine, &run_id)?),
        Request::Diagnose { run_id } => {
            Response::Diagnosis(Box::new(crate::insights::diagnose(engine, &run_id)?))
        }
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
        Request::Prune { older_than_ms, dry_run } => {
            let older_than = std::time::Duration::from_millis(older_than_ms);
            Response::Pruned(engine.prune(older_than, dry_run).await?)
        }
        Request::CacheList { workflow_id } => {
            Response::CacheEntries(engine.cache_entries(workflow_id.as_deref())?)
        }
        Request::CacheClear { workflow_id, step_id } => Response::CacheCleared(
            engine.clear_cache(workflow_id.as_deref(), step_id.as_deref()).await?,
        ),
    })
}

fn done(result: Result<(), EngineError>) -> Result<Response, EngineError> {
    result.map(|()| Response::Done)
}

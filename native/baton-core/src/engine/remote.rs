//! Actions on runs another engine drives: the request is written to the store
//! (`Table::Actions`), the run's driver applies it at its next look, and writes the
//! outcome, which the requester reads back. A request outlives the engines involved: if
//! the driving engine dies first, the one that takes the run over applies it.

use super::records::{self, encode};
use super::{next_run_id, Engine, EngineError};
use crate::error::ErrorKind;
use crate::store::{Batch, Table};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How long a requester waits for the outcome before saying the request is pending.
const PATIENCE: Duration = Duration::from_secs(60);
/// How often it looks for the outcome.
const LOOK: Duration = Duration::from_millis(100);

/// An action, as another engine applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Remote {
    Stop(String),
    Kill,
    Pause,
    Resume,
    Skip(String),
    Retry(String),
    Continue(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    run_id: String,
    action: Remote,
    from: String,
    /// Nobody waits for the outcome: none is written.
    #[serde(default)]
    quiet: bool,
}

/// What became of a request.
#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    /// The refusal, if the action was refused: its kind and message.
    refused: Option<(ErrorKind, String)>,
    by: String,
}

/// Requests are under `q`, run id, a 0 byte, request id; outcomes under `r`, request id.
fn request_key(run_id: &str, request: &str) -> Vec<u8> {
    [b"q", run_id.as_bytes(), b"\0", request.as_bytes()].concat()
}

fn outcome_key(request: &str) -> Vec<u8> {
    [b"r", request.as_bytes()].concat()
}

/// Asks whichever engine drives `run_id` to apply `action`, without waiting for it: the
/// outcome is not written.
pub(crate) async fn ask(
    shared: &crate::engine::Shared,
    run_id: &str,
    action: Remote,
) -> Result<(), EngineError> {
    let request =
        Request { run_id: run_id.to_owned(), action, from: shared.member.id.clone(), quiet: true };
    let mut batch = Batch::default();
    batch.put(Table::Actions, request_key(run_id, &next_run_id()), encode(&request));
    Ok(shared.committer.commit(batch).await?)
}

impl Engine {
    /// Asks the engine driving `run_id` to apply `action`, and waits for the outcome.
    pub(crate) async fn forward(
        &self,
        run_id: &str,
        action: Remote,
        engine: &str,
    ) -> Result<(), EngineError> {
        let id = next_run_id();
        let request = Request {
            run_id: run_id.to_owned(),
            action,
            from: self.engine_id().into(),
            quiet: false,
        };
        let mut batch = Batch::default();
        batch.put(Table::Actions, request_key(run_id, &id), encode(&request));
        self.shared.committer.commit(batch).await?;
        tracing::info!(run = %run_id, %engine, action = ?request.action, "action sent to the engine driving the run");
        let asked = Instant::now();
        let store = self.shared.store.clone();
        while asked.elapsed() < PATIENCE {
            if let Some(bytes) = store.get(Table::Actions, &outcome_key(&id))? {
                let outcome: Outcome =
                    records::decode(|| format!("outcome of action {id}"), &bytes)?;
                let mut batch = Batch::default();
                batch.delete(Table::Actions, outcome_key(&id));
                self.shared.committer.commit(batch).await?;
                return match outcome.refused {
                    None => Ok(()),
                    Some((kind, message)) => Err(EngineError::Refused { kind, message }),
                };
            }
            if self.shared.shutdown.is_cancelled() {
                return Err(EngineError::Closed);
            }
            tokio::time::sleep(LOOK).await;
        }
        Err(EngineError::NotAnswered { run_id: run_id.into(), engine: engine.into() })
    }

    /// Applies the requests for the runs driven here, and answers those for runs that
    /// ended (their refusal needs no driver).
    pub(crate) async fn apply_requests(&self) -> Result<(), EngineError> {
        let mut pending = Vec::new();
        self.shared.store.scan(Table::Actions, b"q", &mut |key, value| {
            pending.push((key.to_vec(), value.to_vec()));
            true
        })?;
        for (key, value) in pending {
            let Some(request_id) = key.iter().rposition(|b| *b == 0).map(|at| &key[at + 1..])
            else {
                continue;
            };
            let request_id = String::from_utf8_lossy(request_id).into_owned();
            let request: Request = records::decode(|| format!("action {request_id}"), &value)?;
            let here =
                self.runs.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&request.run_id);
            let ended =
                !here && self.run(&request.run_id)?.is_none_or(|run| run.status.is_terminal());
            if !here && !ended {
                continue;
            }
            let result = self.apply(&request).await;
            tracing::info!(run = %request.run_id, from = %request.from, action = ?request.action, ok = result.is_ok(), "applied an action sent by another engine");
            let outcome = Outcome {
                refused: result.err().map(|e| (e.kind(), e.to_string())),
                by: self.engine_id().to_owned(),
            };
            let mut batch = Batch::default();
            batch.delete(Table::Actions, key);
            if !request.quiet {
                batch.put(Table::Actions, outcome_key(&request_id), encode(&outcome));
            }
            self.shared.committer.commit(batch).await?;
        }
        Ok(())
    }

    async fn apply(&self, request: &Request) -> Result<(), EngineError> {
        let run = request.run_id.as_str();
        match &request.action {
            Remote::Stop(reason) => self.stop(run, reason).await,
            Remote::Kill => self.kill(run).await,
            Remote::Pause => self.pause(run).await,
            Remote::Resume => self.resume(run).await,
            Remote::Skip(step) => self.skip_step(run, step).await,
            Remote::Retry(step) => self.retry_step(run, step).await,
            Remote::Continue(step) => self.continue_step(run, step).await,
        }
    }
}

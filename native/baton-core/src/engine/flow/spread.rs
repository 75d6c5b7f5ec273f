//! Iterations that other engines drive: on a database shared with other live engines, a
//! `foreach` of a top-level run offers some of its iterations (`Table::Offers`) instead of
//! driving them itself. Any engine that can run the workflow claims an offered iteration
//! like a run (a lease on the iteration's id), with the names of the loop's run, which the
//! loop wrote once, sealed (`Table::Scopes`: they may hold secrets). The loop follows an
//! offered iteration in the store until it ends, and stops or kills it through an action
//! request (see `remote.rs`).

use super::nest::Names;
use super::Nest;
use crate::engine::records::{self, RunRecord};
use crate::engine::remote::Remote;
use crate::engine::secrets::Mask;
use crate::engine::EngineError;
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a loop looks at an iteration another engine drives.
const FOLLOW: Duration = Duration::from_millis(200);

/// What an iteration sees of the run around its loop.
#[derive(Serialize, Deserialize)]
pub(crate) struct Scope {
    values: indexmap::IndexMap<String, Value>,
    steps: Vec<String>,
    mask: Vec<String>,
}

impl Scope {
    /// The names and the secrets to mask that an iteration of this loop gets.
    pub(crate) fn into_parts(self, clock: Arc<dyn crate::clock::Clock>) -> (Arc<Names>, Arc<Mask>) {
        let steps = self.steps.into_iter().collect();
        (Arc::new(Names::new(self.values, steps, clock)), Arc::new(Mask::of(self.mask)))
    }
}

/// Reads the scope `scope_id` of an offered iteration.
pub(crate) fn scope(
    store: &dyn Store,
    sealer: &crate::store::Sealer,
    scope_id: &str,
) -> Result<Option<Scope>, StoreError> {
    let Some(sealed) = store.get(Table::Scopes, scope_id.as_bytes())? else { return Ok(None) };
    let plain = sealer.unseal(&sealed).ok_or_else(|| StoreError::Corrupt {
        what: format!("scope of loop {scope_id}"),
        message: "it does not unseal with this store's key".into(),
    })?;
    records::decode(|| format!("scope of loop {scope_id}"), &plain).map(Some)
}

/// The offered iterations: their ids and their loops' scopes.
pub(crate) fn offered(store: &dyn Store) -> Result<Vec<(String, String)>, StoreError> {
    let mut out = Vec::new();
    store.scan(Table::Offers, b"", &mut |key, value| {
        out.push((
            String::from_utf8_lossy(key).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
        true
    })?;
    Ok(out)
}

/// Takes an iteration off the offers, once it ended.
pub(crate) fn withdraw(batch: &mut Batch, run_id: &str) {
    batch.delete(Table::Offers, run_id.as_bytes().to_vec());
}

impl Nest {
    /// How many iterations of each round this loop offers to other engines (it keeps one
    /// of every `n + 1` for itself): the live engines that take runs, but this one, on a
    /// shared store; 0 for a loop of a child run (its scope is its parent's too), or alone.
    pub(crate) fn peers(&self) -> usize {
        let member = &self.shared.member;
        match member.shared_store && self.depth() == 0 {
            true => member.peers.load(std::sync::atomic::Ordering::Relaxed),
            false => 0,
        }
    }

    /// The loop's scope id: the id its child runs are under.
    pub(crate) fn scope_id(&self) -> String {
        self.child_id(None)
    }

    /// Writes, in `batch`, the names and secrets an iteration of this loop sees, sealed.
    pub(crate) fn put_scope(&self, batch: &mut Batch, outer: &Names) -> Result<(), String> {
        let scope = Scope {
            values: outer.values().clone(),
            steps: outer.steps().cloned().collect(),
            mask: self.mask().values().to_vec(),
        };
        let sealed =
            self.shared.sealer.seal(&records::encode(&scope)).map_err(|e| e.to_string())?;
        batch.put(Table::Scopes, self.scope_id().into_bytes(), sealed);
        Ok(())
    }

    /// Drops the loop's scope: its iterations are over.
    pub(crate) fn drop_scope(&self, batch: &mut Batch) {
        batch.delete(Table::Scopes, self.scope_id().into_bytes());
    }

    /// Offers iteration `run` (written in `batch`) to the other engines.
    pub(crate) fn offer(&self, batch: &mut Batch, run: &RunRecord) {
        batch.put(Table::Offers, run.id.as_bytes().to_vec(), self.scope_id().into_bytes());
    }

    /// Whether `run_id` is an offered iteration.
    pub(crate) fn is_offered(&self, run_id: &str) -> Result<bool, String> {
        let found = self.shared.store.get(Table::Offers, run_id.as_bytes());
        found.map(|v| v.is_some()).map_err(|e| e.to_string())
    }

    /// Waits, in the store, for an iteration another engine drives to end. `stop` asks it
    /// to stop; the attempt's kill kills it.
    pub(crate) async fn follow(
        &self,
        run_id: String,
        stop: CancellationToken,
    ) -> Result<RunRecord, EngineError> {
        let (mut stopped, mut killed) = (false, false);
        loop {
            // A read that fails (the database restarts) is tried again at the next look: the
            // iteration goes on meanwhile, wherever it is driven.
            match records::get_run(self.shared.store.as_ref(), &run_id) {
                Ok(Some(run)) if run.status.is_terminal() => return Ok(run),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(run = %run_id, error = %e, "cannot read an iteration another engine drives; looking again")
                }
            }
            if self.shared.shutdown.is_cancelled() {
                return Err(EngineError::Closed);
            }
            // This engine lost the loop's run: the iteration goes on where it is driven,
            // for the engine that took the run over.
            if self.abandoned() {
                return Err(EngineError::LostLease(run_id));
            }
            if stop.is_cancelled() && !stopped {
                stopped = true;
                let reason = "the loop stopped".to_owned();
                crate::engine::remote::ask(&self.shared, &run_id, Remote::Stop(reason)).await?;
            }
            if self.kill_token().is_cancelled() && !killed {
                killed = true;
                crate::engine::remote::ask(&self.shared, &run_id, Remote::Kill).await?;
            }
            tokio::select! {
                _ = tokio::time::sleep(FOLLOW) => {}
                _ = stop.cancelled(), if !stopped => {}
                _ = self.kill_token().cancelled(), if !killed => {}
            }
        }
    }
}

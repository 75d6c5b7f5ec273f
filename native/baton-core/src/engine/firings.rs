//! What the engine keeps of its workflows' triggers: each firing (the run it started, or
//! why none started) and each trigger's cursor (how far it has looked). The scheduler
//! ([`crate::triggers`]) writes them with the runs it starts, in one batch, so that a crash
//! neither fires a time twice nor loses one; registering a workflow arms the cursors of its
//! new triggers in the batch that registers it.

use super::records::{collect_records, decode, encode};
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicBool;

/// What the scheduler and the strategies share in an engine.
#[derive(Default)]
pub(crate) struct TriggerState {
    /// Set once the scheduler task runs.
    pub(crate) started: AtomicBool,
    /// Registrations, activations and switches wake the scheduler to look again.
    pub(crate) wake: tokio::sync::Notify,
    /// Held while a start or an end decides which runs go: the strategies count runs.
    pub(crate) admission: tokio::sync::Mutex<()>,
    /// Held while a workflow's entry is read and rewritten.
    pub(crate) registry: std::sync::Mutex<()>,
}

/// A firing of a trigger: the run it started, or why it started none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FiringRecord {
    /// The workflow whose trigger fired.
    pub workflow_id: String,
    /// The trigger's position in the definition, from 0.
    pub trigger: usize,
    /// The version whose trigger fired.
    pub version: u32,
    /// The cron time, or when the signal was sent.
    pub scheduled_ms: u64,
    /// When the scheduler fired it (milliseconds since the epoch).
    pub fired_ms: u64,
    /// The signal that fired a signal trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_id: Option<String>,
    /// The run it started, if one started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// Why no run started: disabled, a misfire skipped, refused by the run strategy...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// How far a trigger has looked. `spec` tells a trigger from another at the same position
/// of a later version: a changed trigger starts afresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    pub(crate) spec: String,
    /// The last cron time handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_ms: Option<u64>,
    /// The last signal handled (ids sort by time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) last_signal: Option<String>,
    /// For a trigger joining signals: the signals sent that wait for the others of their
    /// join.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) waiting: Vec<Waiting>,
}

impl Cursor {
    pub(crate) fn at_time(spec: String, last_ms: u64) -> Cursor {
        Cursor { spec, last_ms: Some(last_ms), last_signal: None, waiting: Vec::new() }
    }

    pub(crate) fn at_signal(spec: String, last_signal: String, waiting: Vec<Waiting>) -> Cursor {
        Cursor { spec, last_ms: None, last_signal: Some(last_signal), waiting }
    }
}

/// Signals of a join that were sent with the same values of their join params, waiting
/// for the others.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Waiting {
    /// The values of the join params.
    pub(crate) key: Vec<serde_json::Value>,
    /// By the signal's place in the trigger's `signals`: the ids and sending times of the
    /// signals sent for the key, oldest first.
    pub(crate) sent: Vec<std::collections::VecDeque<(String, u64)>>,
}

fn trigger_key(workflow_id: &str, trigger: usize) -> Vec<u8> {
    let mut key = workflow_id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&(trigger as u32).to_be_bytes());
    key
}

pub(crate) fn put_firing(batch: &mut Batch, firing: &FiringRecord) {
    let mut key = trigger_key(&firing.workflow_id, firing.trigger);
    key.extend_from_slice(&firing.scheduled_ms.to_be_bytes());
    if let Some(signal) = &firing.signal_id {
        key.extend_from_slice(signal.as_bytes());
    }
    // Engines sharing a database fire the same times: the first writes, the others find
    // it fired.
    batch.put(Table::Firings, key.clone(), encode(firing));
    batch.expect(Table::Firings, key, None);
}

pub(crate) fn get_cursor(
    store: &dyn Store,
    workflow_id: &str,
    trigger: usize,
) -> Result<Option<Cursor>, StoreError> {
    store
        .get(Table::Cursors, &trigger_key(workflow_id, trigger))?
        .map(|b| decode(|| format!("cursor of trigger {trigger} of {workflow_id}"), &b))
        .transpose()
}

pub(crate) fn put_cursor(batch: &mut Batch, workflow_id: &str, trigger: usize, cursor: &Cursor) {
    batch.put(Table::Cursors, trigger_key(workflow_id, trigger), encode(cursor));
}

/// What tells a trigger from another at the same position of another version.
pub(crate) fn spec(trigger: &crate::model::TriggerDef) -> String {
    match (&trigger.cron, &trigger.signal) {
        (Some(expression), _) => {
            format!("cron {expression} {}", trigger.timezone.as_deref().unwrap_or("UTC"))
        }
        (None, Some(name)) => format!("signal {name}"),
        (None, None) => {
            let joined: Vec<String> = trigger
                .signals
                .iter()
                .map(|s| format!("{}({})", s.name, s.join_params(trigger).join(",")))
                .collect();
            format!("signals {}", joined.join(" "))
        }
    }
}

/// Starts the cursors of the triggers of `def` that are new (or changed) at `now_ms`, in
/// the batch that registers or activates it: a trigger fires for what happens from the
/// moment it is registered, even before the scheduler first looks at it.
pub(crate) fn arm_cursors(
    store: &dyn Store,
    batch: &mut Batch,
    def: &crate::model::WorkflowDef,
    now_ms: u64,
) -> Result<(), StoreError> {
    for (index, trigger) in def.triggers.iter().enumerate() {
        let spec = spec(trigger);
        if get_cursor(store, &def.id, index)?.is_some_and(|c| c.spec == spec) {
            continue;
        }
        let cursor = match trigger.cron {
            Some(_) => Cursor::at_time(spec, now_ms),
            None => Cursor::at_signal(spec, super::next_run_id(), Vec::new()),
        };
        put_cursor(batch, &def.id, index, &cursor);
    }
    Ok(())
}

/// The firings of a workflow's triggers, by scheduled time.
pub(crate) fn list_firings(
    store: &dyn Store,
    workflow_id: &str,
) -> Result<Vec<FiringRecord>, StoreError> {
    let mut prefix = workflow_id.as_bytes().to_vec();
    prefix.push(0);
    let mut out =
        collect_records(store, Table::Firings, &prefix, |_| format!("firing of {workflow_id}"))?;
    out.sort_by_key(|f: &FiringRecord| (f.scheduled_ms, f.trigger));
    Ok(out)
}

impl super::Engine {
    /// Commits `batch`, counted as work in motion while the store writes it (the caller's
    /// task waits, but the engine is not idle).
    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let shared = self.shared();
        let _committing = shared.activity.as_ref().map(|a| a.busy());
        shared.committer.commit(batch).await
    }

    /// The firings of a registered workflow's triggers, oldest first.
    pub fn firings(&self, workflow_id: &str) -> Result<Vec<FiringRecord>, super::EngineError> {
        Ok(list_firings(self.shared().store.as_ref(), workflow_id)?)
    }
}

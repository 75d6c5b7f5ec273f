//! What the engine keeps in the store: runs, step states and the definitions runs pin.
//!
//! A step has a record once it has started or ended; no record means PENDING, so a
//! million-step run costs nothing in the store before its steps run.

use super::state::{IllegalTransition, RunStatus, StepStatus};
use crate::dag::Workflow;
use crate::expr::RunContext;
use crate::model::WorkflowDef;
use crate::steps::Outputs;
use crate::store::{Batch, Store, StoreError, Table};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A run, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unique and sortable by creation time (a ULID).
    pub id: String,
    /// The id of the workflow it runs.
    pub workflow_id: String,
    /// The content hash of the definition the run pins.
    pub definition: String,
    /// The run's parameters, defaults merged with overrides; a secret's value reads
    /// [`MASK`](crate::model::MASK).
    pub params: IndexMap<String, Value>,
    /// The parameters that are secrets: their values are kept sealed until the run ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Where the run is.
    pub status: RunStatus,
    /// Steps in the workflow (not counting those of loop bodies and child runs).
    pub step_count: usize,
    /// When the run was stored, in milliseconds since the epoch (as every `_ms` field).
    pub created_ms: u64,
    /// When it first ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    /// When the run times out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// Why the run failed or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Steps per status, written when the run ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<StepStatus, usize>,
    /// The step that started this run, for a subworkflow or an iteration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<ParentLink>,
    /// The finished run this one restarts (`Engine::restart`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_from: Option<String>,
    /// The version of the registered workflow the run was started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// The request id that makes the start idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What started the run, for a trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// Who or what started the run.
    #[serde(default, skip_serializing_if = "Initiator::is_manual")]
    pub initiator: Initiator,
    /// When its trigger was due (a cron time, a signal's sending); a child run has its
    /// parent's, a restart the one of the run it restarts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_ms: Option<u64>,
    /// The engine that drives the run, or drove it last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
}

impl RunRecord {
    /// A run not started yet: CREATED, with nothing but what it runs.
    pub(crate) fn created(
        id: String,
        workflow: &crate::Workflow,
        definition: String,
        params: IndexMap<String, Value>,
        created_ms: u64,
    ) -> Self {
        RunRecord {
            id,
            workflow_id: workflow.id().to_owned(),
            definition,
            params,
            secrets: Vec::new(),
            status: RunStatus::Created,
            step_count: workflow.len(),
            created_ms,
            started_ms: None,
            ended_ms: None,
            deadline_ms: None,
            error: None,
            counts: Default::default(),
            parent: None,
            restarted_from: None,
            version: None,
            request_id: None,
            trigger: None,
            initiator: Initiator::Manual,
            scheduled_ms: None,
            engine: None,
        }
    }

    /// What expressions know of this run (for an iteration, use its loop's run).
    pub(crate) fn context(&self) -> RunContext {
        RunContext {
            run_id: self.id.clone(),
            workflow_id: self.workflow_id.clone(),
            version: self.version,
            started_ms: self.started_ms.unwrap_or(self.created_ms),
            scheduled_ms: self.scheduled_ms.unwrap_or(self.created_ms),
            initiator: self.initiator.name(),
        }
    }

    /// A new run that waits for its turn: QUEUED is its first status, not a transition.
    pub(crate) fn queued(mut self) -> Self {
        self.status = RunStatus::Queued;
        self
    }

    /// Moves the run to `to`, if the state machine allows it: every change of a stored
    /// run's status goes through here.
    pub(crate) fn set_status(&mut self, to: RunStatus) -> Result<(), IllegalTransition> {
        if !self.status.can_become(to) {
            return Err(IllegalTransition {
                what: format!("run {}", self.id),
                from: self.status.to_string(),
                to: to.to_string(),
            });
        }
        self.status = to;
        Ok(())
    }
}

/// Who or what started a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    /// A person or a host: `baton run`, `Engine::start`, a restart of such a run.
    #[default]
    Manual,
    /// A cron trigger.
    Cron,
    /// A signal trigger.
    Signal,
    /// A step of another run (a subworkflow).
    Parent,
}

impl Initiator {
    fn is_manual(&self) -> bool {
        *self == Initiator::Manual
    }

    /// As `initiator()` gives it.
    pub fn name(self) -> &'static str {
        match self {
            Initiator::Manual => "manual",
            Initiator::Cron => "cron",
            Initiator::Signal => "signal",
            Initiator::Parent => "parent",
        }
    }
}

/// Where a child run comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentLink {
    /// The parent run.
    pub run_id: String,
    /// The step of the parent run that started this one.
    pub step_id: String,
    /// The iteration of a `foreach` or `while` step, from 0; none for a subworkflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u64>,
}

/// The progress of a `foreach` or `while` step, kept incrementally so that a huge loop is
/// summed up without reading its iterations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// The attempt of the step these iterations belong to.
    pub attempt: u32,
    /// Iterations in all, once known (a `foreach` knows it at the start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Iterations started: they are numbered `0..started`.
    pub started: u64,
    /// Iterations started and not yet counted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub running: Vec<u64>,
    /// Iterations over, per final status.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counts: BTreeMap<RunStatus, u64>,
    /// The failed iterations with the lowest numbers (at most 10),
    /// in order, with their errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<IterationFailure>,
    /// What the iterations of this attempt are given from outside (the body and the names
    /// around it), as a hash: iterations are taken only from an attempt given the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inputs: Option<String>,
    /// The earlier attempt (in this run, or in the run this one restarts) whose succeeded
    /// iterations this attempt takes instead of running them again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier: Option<EarlierAttempt>,
    /// Iterations taken from the earlier attempt (counted as succeeded too).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reused: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// An earlier attempt of a loop step: run `run_id`, attempt `attempt`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EarlierAttempt {
    pub run_id: String,
    pub attempt: u32,
}

/// A failed iteration, as a rollup shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationFailure {
    /// The iteration, from 0.
    pub iteration: u64,
    /// The iteration's run.
    pub run_id: String,
    /// Why it failed.
    pub error: String,
}

impl Rollup {
    /// Failures a rollup keeps.
    pub(crate) const MAX_FAILURES: usize = 10;

    /// Iterations over.
    pub fn done(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// A signal, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignalRecord {
    /// Unique and sortable by time (a ULID).
    pub id: String,
    /// What `wait_signal` steps and signal triggers match on.
    pub name: String,
    /// What the sender attached, for `match` conditions and the steps downstream.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
    /// When it was sent, in milliseconds since the epoch.
    pub sent_ms: u64,
    /// The run and step that emitted it, if a step did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A step's state, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Where the step is.
    pub status: StepStatus,
    /// The current or last attempt, from 1; 0 for a step that never ran.
    pub attempt: u32,
    /// When the current attempt first started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    /// When the step ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    /// When the next attempt is due (RETRYING).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<u64>,
    /// What the step produced, for the steps downstream (`${step.key}`).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: Outputs,
    /// Why the last attempt failed, or why the step was skipped or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The end of what the last attempt printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// What a WAITING step waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// FAILED, but with `failure_mode: ignore_failure`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub failure_ignored: bool,
    /// SKIPPED by an operator (`Engine::skip_step`): downstream it counts as succeeded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped_by_operator: bool,
    /// SUCCEEDED from the result cache, without running: the success whose outputs it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<super::cache::CachedFrom>,
}

impl StepRecord {
    /// A record in `status` at `attempt`, with nothing else set.
    pub(crate) fn new(status: StepStatus, attempt: u32) -> Self {
        StepRecord {
            status,
            attempt,
            started_ms: None,
            ended_ms: None,
            retry_at_ms: None,
            outputs: Outputs::new(),
            error: None,
            log_tail: None,
            waiting_for: None,
            failure_ignored: false,
            skipped_by_operator: false,
            cached_from: None,
        }
    }
}

pub(crate) fn step_key(run_id: &str, step: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(run_id.len() + 5);
    key.extend_from_slice(run_id.as_bytes());
    key.push(b'/');
    key.extend_from_slice(&(step as u32).to_be_bytes());
    key
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Most records are small: one allocation, not a doubling series of them.
    let mut bytes = Vec::with_capacity(128);
    // Records are plain data; serializing them cannot fail.
    let _ = serde_json::to_writer(&mut bytes, value);
    bytes
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    what: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt { what: what(), message: e.to_string() })
}

/// Decodes the records of `table` under `prefix`, in key order, handing each to `f` with
/// its key until `f` returns false. A record that does not decode ends the scan with an
/// error naming it (`what`, from its key).
pub(crate) fn scan_records<T: for<'de> Deserialize<'de>>(
    store: &dyn Store,
    table: Table,
    prefix: &[u8],
    what: impl Fn(&[u8]) -> String,
    f: impl FnMut(&[u8], T) -> bool,
) -> Result<(), StoreError> {
    scan_records_from(store, table, prefix, prefix, what, f)
}

/// [`scan_records`] from the first key not before `from`.
pub(crate) fn scan_records_from<T: for<'de> Deserialize<'de>>(
    store: &dyn Store,
    table: Table,
    prefix: &[u8],
    from: &[u8],
    what: impl Fn(&[u8]) -> String,
    mut f: impl FnMut(&[u8], T) -> bool,
) -> Result<(), StoreError> {
    let mut failure = None;
    store.scan_from(table, prefix, from, &mut |key, value| match decode(|| what(key), value) {
        Ok(record) => f(key, record),
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    failure.map_or(Ok(()), Err)
}

/// Every record of `table` under `prefix`, decoded, in key order.
pub(crate) fn collect_records<T: for<'de> Deserialize<'de>>(
    store: &dyn Store,
    table: Table,
    prefix: &[u8],
    what: impl Fn(&[u8]) -> String,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    scan_records(store, table, prefix, what, |_, record| {
        out.push(record);
        true
    })?;
    Ok(out)
}

/// Writes a run record, and keeps the index of unfinished runs in step with it.
/// Iterations have a table of their own, and child runs are resumed by their parent, so
/// neither is in the index. A run that ends forgets its secrets in the same write.
pub(crate) fn put_run(batch: &mut Batch, run: &RunRecord) {
    super::secrets::forget(batch, run);
    match &run.parent {
        Some(ParentLink { iteration: Some(_), .. }) => {
            batch.put(Table::Iterations, run.id.as_bytes(), encode(run))
        }
        Some(_) => batch.put(Table::Runs, run.id.as_bytes(), encode(run)),
        None => {
            batch.put(Table::Runs, run.id.as_bytes(), encode(run));
            if run.status.is_terminal() {
                batch.delete(Table::Active, run.id.as_bytes());
                batch.put(Table::Finished, finished_key(run), Vec::new());
            } else {
                batch.put(Table::Active, run.id.as_bytes(), Vec::new());
            }
        }
    }
}

/// The key of a finished run in [`Table::Finished`]: its end time, then its id, so that
/// retention reads the oldest first.
pub(crate) fn finished_key(run: &RunRecord) -> Vec<u8> {
    let ended_ms = run.ended_ms.unwrap_or(run.created_ms);
    let mut key = ended_ms.to_be_bytes().to_vec();
    key.extend_from_slice(run.id.as_bytes());
    key
}

/// Writes the rollup of a `foreach` or `while` step.
pub(crate) fn put_rollup(batch: &mut Batch, run_id: &str, step: usize, rollup: &Rollup) {
    batch.put(Table::Rollups, step_key(run_id, step), encode(rollup));
}

/// The rollup of a `foreach` or `while` step, once it has started.
pub(crate) fn get_rollup(
    store: &dyn Store,
    run_id: &str,
    step: usize,
) -> Result<Option<Rollup>, StoreError> {
    store
        .get(Table::Rollups, &step_key(run_id, step))?
        .map(|bytes| decode(|| format!("rollup of run {run_id}"), &bytes))
        .transpose()
}

fn signal_key(name: &str, id: &str) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key
}

/// A name's signals in [`Table::SignalsSent`]: by time sent (big-endian), then by id.
pub(crate) fn sent_key(name: &str, sent_ms: u64, id: &str) -> Vec<u8> {
    let mut key = signal_key(name, "");
    key.extend_from_slice(&sent_ms.to_be_bytes());
    key.extend_from_slice(id.as_bytes());
    key
}

/// Writes a signal, under its name and id (signal triggers read on from their cursor, an
/// id) and in the index by time sent (`wait_signal` reads from the start of its window).
/// Signal `id` of name `name`, unless retention removed it.
pub(crate) fn get_signal(
    store: &dyn Store,
    name: &str,
    id: &str,
) -> Result<Option<SignalRecord>, StoreError> {
    let bytes = store.get(Table::Signals, &signal_key(name, id))?;
    bytes.map(|b| decode(|| format!("signal {id}"), &b)).transpose()
}

pub(crate) fn put_signal(batch: &mut Batch, signal: &SignalRecord) {
    batch.put(Table::Signals, signal_key(&signal.name, &signal.id), encode(signal));
    batch.put(Table::SignalsSent, sent_key(&signal.name, signal.sent_ms, &signal.id), Vec::new());
    batch.put(Table::Meta, LAST_SIGNAL, signal.id.as_bytes());
}

/// The key in [`Table::Meta`] of the id of the signal sent last: it changes with every
/// signal, so an engine sees that another sent one by reading one key.
const LAST_SIGNAL: &[u8] = b"last-signal";

/// The id of the signal sent last, by any engine of the store.
pub(crate) fn last_signal(store: &dyn Store) -> Result<Option<Vec<u8>>, StoreError> {
    store.get(Table::Meta, LAST_SIGNAL)
}

/// Signals named `name` sent at `since_ms` or later, oldest first: read from the index by
/// time sent, so the signals sent before do not count, however many there are.
pub(crate) fn scan_signals_sent_since(
    store: &dyn Store,
    name: &str,
    since_ms: u64,
    mut f: impl FnMut(SignalRecord) -> bool,
) -> Result<(), StoreError> {
    let prefix = signal_key(name, "");
    let from = sent_key(name, since_ms, "");
    let mut ids = Vec::new();
    store.scan_from(Table::SignalsSent, &prefix, &from, &mut |key, _| {
        let id = key.get(prefix.len() + 8..).unwrap_or_default();
        ids.push(String::from_utf8_lossy(id).into_owned());
        true
    })?;
    for id in ids {
        // An entry whose signal is gone was pruned in between.
        let Some(bytes) = store.get(Table::Signals, &signal_key(name, &id))? else { continue };
        if !f(decode(|| format!("signal {id}"), &bytes)?) {
            break;
        }
    }
    Ok(())
}

/// Signals named `name` with an id after `after_id`, in id order (the order they were
/// sent in): read on from there, not from the name's first signal.
pub(crate) fn scan_signals_after(
    store: &dyn Store,
    name: &str,
    after_id: &str,
    mut f: impl FnMut(SignalRecord) -> bool,
) -> Result<(), StoreError> {
    let mut from = signal_key(name, after_id);
    // The first key after `after_id`'s own.
    from.push(0);
    let what = |_: &[u8]| format!("signal named {name}");
    scan_records_from(store, Table::Signals, &signal_key(name, ""), &from, what, |_, s| f(s))
}

/// Signals named `name` (every signal for `None`), oldest first.
pub(crate) fn scan_signals(
    store: &dyn Store,
    name: Option<&str>,
    mut f: impl FnMut(SignalRecord) -> bool,
) -> Result<(), StoreError> {
    let prefix = name.map(|n| signal_key(n, "")).unwrap_or_default();
    scan_records(store, Table::Signals, &prefix, |_| "signal".to_string(), |_, signal| f(signal))
}

/// The record of step number `step` of a run, if it has started.
pub(crate) fn get_step(
    store: &dyn Store,
    run_id: &str,
    step: usize,
) -> Result<Option<StepRecord>, StoreError> {
    let bytes = store.get(Table::Steps, &step_key(run_id, step))?;
    bytes.map(|b| decode(|| format!("step {step} of run {run_id}"), &b)).transpose()
}

/// Writes the record of step number `step` of a run.
pub(crate) fn put_step(batch: &mut Batch, run_id: &str, step: usize, record: &StepRecord) {
    batch.put(Table::Steps, step_key(run_id, step), encode(record));
}

/// Puts the definition of `workflow` in `batch` unless the store has it; returns its hash.
pub(crate) fn put_definition(
    store: &dyn Store,
    batch: &mut Batch,
    workflow: &Workflow,
) -> Result<String, StoreError> {
    let (hash, json) = workflow.hashed();
    if store.get(Table::Defs, hash.as_bytes())?.is_none() {
        batch.put(Table::Defs, hash.as_bytes(), json.unwrap_or_else(|| workflow.definition_json()));
    }
    Ok(hash.to_owned())
}

/// The definition stored under `hash`; a run's definition missing is corruption.
pub(crate) fn get_definition(store: &dyn Store, hash: &str) -> Result<WorkflowDef, StoreError> {
    let bytes = store.get(Table::Defs, hash.as_bytes())?.ok_or_else(|| StoreError::Corrupt {
        what: format!("definition {hash}"),
        message: "missing".into(),
    })?;
    decode(|| format!("definition {hash}"), &bytes)
}

/// A run, a child run or an iteration.
pub(crate) fn get_run(store: &dyn Store, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
    let bytes = match store.get(Table::Runs, run_id.as_bytes())? {
        Some(bytes) => Some(bytes),
        None => store.get(Table::Iterations, run_id.as_bytes())?,
    };
    bytes.map(|bytes| decode(|| format!("run {run_id}"), &bytes)).transpose()
}

/// Every run, oldest first.
pub(crate) fn list_runs(store: &dyn Store) -> Result<Vec<RunRecord>, StoreError> {
    collect_records(store, Table::Runs, b"", |key| String::from_utf8_lossy(key).into_owned())
}

/// Ids of the runs not finished, oldest first.
pub(crate) fn active_run_ids(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    store.scan(Table::Active, b"", &mut |key, _| {
        ids.push(String::from_utf8_lossy(key).into_owned());
        true
    })?;
    Ok(ids)
}

/// Calls `f` with each step record of a run, by step index.
pub(crate) fn scan_steps(
    store: &dyn Store,
    run_id: &str,
    mut f: impl FnMut(usize, StepRecord),
) -> Result<(), StoreError> {
    let mut prefix = run_id.as_bytes().to_vec();
    prefix.push(b'/');
    let mut failure = None;
    store.scan(Table::Steps, &prefix, &mut |key, value| {
        let index = key[prefix.len()..].try_into().map(u32::from_be_bytes);
        match (index, decode::<StepRecord>(|| format!("step of run {run_id}"), value)) {
            (Ok(i), Ok(record)) => {
                f(i as usize, record);
                true
            }
            (_, Err(e)) => {
                failure = Some(e);
                false
            }
            (Err(_), _) => {
                failure = Some(StoreError::Corrupt {
                    what: format!("step key of run {run_id}"),
                    message: "bad length".into(),
                });
                false
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

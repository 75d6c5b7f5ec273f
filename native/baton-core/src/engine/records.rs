//! What the engine keeps in the store: runs, step states and the definitions runs pin.
//!
//! A step has a record once it has started or ended; no record means PENDING, so a
//! million-step run costs nothing in the store before its steps run.

use super::state::{RunStatus, StepStatus};
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
    pub workflow_id: String,
    /// The content hash of the definition the run pins.
    pub definition: String,
    /// The run's parameters, defaults merged with overrides.
    pub params: IndexMap<String, Value>,
    pub status: RunStatus,
    pub step_count: usize,
    pub created_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
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
}

/// A step's state, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub status: StepStatus,
    /// The current or last attempt, from 1; 0 for a step that never ran.
    pub attempt: u32,
    /// When the current attempt first started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<u64>,
    /// When the next attempt is due (RETRYING).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub outputs: Outputs,
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
}

impl StepRecord {
    pub fn new(status: StepStatus, attempt: u32) -> Self {
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
        }
    }
}

fn step_key(run_id: &str, step: usize) -> Vec<u8> {
    let mut key = Vec::with_capacity(run_id.len() + 5);
    key.extend_from_slice(run_id.as_bytes());
    key.push(b'/');
    key.extend_from_slice(&(step as u32).to_be_bytes());
    key
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Records are plain data; serializing them cannot fail.
    serde_json::to_vec(value).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(what: impl FnOnce() -> String, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt { what: what(), message: e.to_string() })
}

/// Writes a run record, and keeps the index of unfinished runs in step with it.
pub fn put_run(batch: &mut Batch, run: &RunRecord) {
    batch.put(Table::Runs, run.id.as_bytes(), encode(run));
    if run.status.is_terminal() {
        batch.delete(Table::Active, run.id.as_bytes());
    } else {
        batch.put(Table::Active, run.id.as_bytes(), Vec::new());
    }
}

pub fn put_step(batch: &mut Batch, run_id: &str, step: usize, record: &StepRecord) {
    batch.put(Table::Steps, step_key(run_id, step), encode(record));
}

/// Stores a definition under its content hash, once; returns the hash.
pub fn put_definition(store: &dyn Store, batch: &mut Batch, def: &WorkflowDef) -> Result<String, StoreError> {
    let json = encode(def);
    let hash = blake3::hash(&json).to_hex().to_string();
    if store.get(Table::Defs, hash.as_bytes())?.is_none() {
        batch.put(Table::Defs, hash.as_bytes(), json);
    }
    Ok(hash)
}

pub fn get_definition(store: &dyn Store, hash: &str) -> Result<WorkflowDef, StoreError> {
    let bytes = store.get(Table::Defs, hash.as_bytes())?.ok_or_else(|| StoreError::Corrupt {
        what: format!("definition {hash}"),
        message: "missing".into(),
    })?;
    decode(|| format!("definition {hash}"), &bytes)
}

pub fn get_run(store: &dyn Store, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
    store
        .get(Table::Runs, run_id.as_bytes())?
        .map(|bytes| decode(|| format!("run {run_id}"), &bytes))
        .transpose()
}

/// Every run, oldest first.
pub fn list_runs(store: &dyn Store) -> Result<Vec<RunRecord>, StoreError> {
    let mut runs = Vec::new();
    let mut failure = None;
    store.scan(Table::Runs, b"", &mut |key, value| match decode(|| String::from_utf8_lossy(key).into_owned(), value) {
        Ok(run) => {
            runs.push(run);
            true
        }
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    failure.map_or(Ok(runs), Err)
}

/// Ids of the runs not finished, oldest first.
pub fn active_run_ids(store: &dyn Store) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    store.scan(Table::Active, b"", &mut |key, _| {
        ids.push(String::from_utf8_lossy(key).into_owned());
        true
    })?;
    Ok(ids)
}

/// Calls `f` with each step record of a run, by step index.
pub fn scan_steps(
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
                failure = Some(StoreError::Corrupt { what: format!("step key of run {run_id}"), message: "bad length".into() });
                false
            }
        }
    })?;
    failure.map_or(Ok(()), Err)
}

//! What the engine remembers of each step's past: per workflow and step id, how its ends
//! went (counts, a duration sketch, the last outcomes). The insights layer reads it for
//! forecasts and warnings.
//!
//! A step's end updates its history in memory and puts it in the batch that records the
//! end, so history costs no flush of its own. Ends of the same step in quick succession (the
//! body steps of a large loop: every iteration of `wf.loop` adds to `wf.loop` / `step`) are
//! written at most once a second each, the last of them with a later end or when the engine
//! closes: a crash may lose the last second of a busy step's history, never a run's state.
//! In a cluster, engines write the same histories and the last write wins.

use super::records::{decode, encode};
use super::state::StepStatus;
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// Outcomes kept per step, newest last.
pub const RECENT: usize = 20;
/// Histories kept in memory at most; clean ones beyond it are dropped (and read again).
const CACHED: usize = 4096;
/// How often one step's history is written at most, in milliseconds.
const WRITE_EVERY_MS: u64 = 1_000;
/// The duration sketch's buckets are powers of this: a quantile is within 2% of the truth.
const GAMMA: f64 = 1.04;
/// Buckets a sketch keeps at most; past it the two lowest merge (the short end loses detail).
const MAX_BUCKETS: usize = 256;
/// The longest error signature kept.
const MAX_SIGNATURE: usize = 200;

/// The history of one step of one workflow (a loop body's steps are under the body's
/// workflow id, `wf.loop`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepHistory {
    /// Ends recorded.
    pub ended: u64,
    /// Ends SUCCEEDED.
    pub succeeded: u64,
    /// Ends FAILED (after their retries).
    pub failed: u64,
    /// Ends that took more than one attempt.
    pub retried: u64,
    /// Durations of the succeeded ends' last attempts.
    pub durations: Sketch,
    /// The last outcomes, oldest first.
    pub recent: VecDeque<Outcome>,
    /// The error signatures seen, with how often (at most [`RECENT`] kinds: the rarest go).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub signatures: BTreeMap<String, u64>,
}

/// One end of a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The run it ended in.
    pub run_id: String,
    /// When it ended.
    pub ended_ms: u64,
    /// How long its last attempt took.
    pub duration_ms: u64,
    /// SUCCEEDED, else FAILED.
    pub succeeded: bool,
    /// Attempts made.
    pub attempts: u32,
    /// The error with what differs from run to run masked (see [`signature`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl StepHistory {
    fn add(&mut self, o: Outcome) {
        self.ended += 1;
        if o.succeeded {
            self.succeeded += 1;
            self.durations.add(o.duration_ms);
        } else {
            self.failed += 1;
        }
        if o.attempts > 1 {
            self.retried += 1;
        }
        if let Some(s) = &o.signature {
            *self.signatures.entry(s.clone()).or_insert(0) += 1;
            if self.signatures.len() > RECENT {
                let rarest =
                    self.signatures.iter().min_by_key(|(_, n)| **n).map(|(k, _)| k.clone());
                if let Some(rarest) = rarest.filter(|r| r != s) {
                    self.signatures.remove(&rarest);
                }
            }
        }
        self.recent.push_back(o);
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }
}

/// Durations in buckets growing by [`GAMMA`] (a DDSketch): bounded, mergeable, and any
/// quantile within 2% of the truth.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    /// Bucket index -> count; bucket `b` holds durations around `GAMMA^b` ms.
    buckets: BTreeMap<i32, u64>,
    count: u64,
}

impl Sketch {
    /// Counts a duration.
    pub fn add(&mut self, ms: u64) {
        let b = ((ms.max(1) as f64).ln() / GAMMA.ln()).ceil() as i32;
        *self.buckets.entry(b).or_insert(0) += 1;
        self.count += 1;
        while self.buckets.len() > MAX_BUCKETS {
            let mut low = self.buckets.iter().take(2).map(|(b, n)| (*b, *n));
            if let (Some((b0, n0)), Some((b1, _))) = (low.next(), low.next()) {
                self.buckets.remove(&b0);
                *self.buckets.entry(b1).or_insert(0) += n0;
            }
        }
    }

    /// How many durations it holds.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `q` quantile (0 to 1) in milliseconds; none when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.count - 1) as f64).round() as u64;
        let mut seen = 0;
        for (b, n) in &self.buckets {
            seen += n;
            if seen > rank {
                // The middle of the bucket (GAMMA^(b-1), GAMMA^b].
                let value = 2.0 * GAMMA.powi(*b) / (1.0 + GAMMA);
                return Some(value.round() as u64);
            }
        }
        None
    }
}

/// An error with what changes from run to run masked, so that the same failure reads the
/// same: digits become `#` (counts, ids, times, ports), quoted parts stay.
pub fn signature(error: &str) -> String {
    let mut out = String::with_capacity(error.len().min(MAX_SIGNATURE));
    let mut last_hash = false;
    for c in error.chars() {
        if out.len() >= MAX_SIGNATURE {
            break;
        }
        if c.is_ascii_digit() {
            if !last_hash {
                out.push('#');
            }
            last_hash = true;
        } else {
            out.push(c);
            last_hash = false;
        }
    }
    out
}

fn key(workflow: &str, step: &str) -> Vec<u8> {
    let mut key = workflow.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(step.as_bytes());
    key
}

/// The history of step `step` of workflow `workflow`, as stored.
pub(crate) fn get(
    store: &dyn Store,
    workflow: &str,
    step: &str,
) -> Result<Option<StepHistory>, StoreError> {
    let bytes = store.get(Table::History, &key(workflow, step))?;
    bytes.map(|b| decode(|| format!("history of {workflow}/{step}"), &b)).transpose()
}

struct Cached {
    history: StepHistory,
    /// When it was last put in a batch.
    written_ms: u64,
    /// Changed since then.
    dirty: bool,
}

/// The histories of the steps that ended lately, shared by an engine's drivers.
#[derive(Default)]
pub(crate) struct Histories {
    cached: Mutex<HashMap<(String, String), Cached>>,
}

impl Histories {
    /// Adds the end of step `step` of a run of `workflow` to its history, and puts the
    /// history in `batch` unless it was written less than a second ago.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        &self,
        store: &dyn Store,
        batch: &mut Batch,
        workflow: &str,
        step: &str,
        status: StepStatus,
        outcome: Outcome,
        now_ms: u64,
    ) {
        debug_assert!(matches!(status, StepStatus::Succeeded | StepStatus::Failed));
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        let id = (workflow.to_owned(), step.to_owned());
        if !cached.contains_key(&id) {
            // A history the store cannot read starts afresh: it is statistics, not state.
            let history = get(store, workflow, step).ok().flatten().unwrap_or_default();
            if cached.len() >= CACHED {
                cached.retain(|_, c| c.dirty);
            }
            cached.insert(id.clone(), Cached { history, written_ms: 0, dirty: false });
        }
        let Some(entry) = cached.get_mut(&id) else { return };
        entry.history.add(outcome);
        entry.dirty = true;
        if now_ms.saturating_sub(entry.written_ms) >= WRITE_EVERY_MS {
            batch.put(Table::History, key(workflow, step), encode(&entry.history));
            entry.written_ms = now_ms;
            entry.dirty = false;
        }
    }

    /// Puts every history changed since its last write in `batch` (at close).
    pub(crate) fn flush(&self, batch: &mut Batch) {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        for ((workflow, step), entry) in cached.iter_mut().filter(|(_, c)| c.dirty) {
            batch.put(Table::History, key(workflow, step), encode(&entry.history));
            entry.dirty = false;
        }
    }

    /// Every history, with its workflow and step: the ones in memory (newer), then the
    /// others of the store.
    pub(crate) fn scan(
        &self,
        store: &dyn Store,
        mut f: impl FnMut(&str, &str, &StepHistory),
    ) -> Result<(), StoreError> {
        let cached: Vec<((String, String), StepHistory)> = {
            let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
            cached.iter().map(|(k, c)| (k.clone(), c.history.clone())).collect()
        };
        let known: std::collections::HashSet<&(String, String)> =
            cached.iter().map(|(k, _)| k).collect();
        let what = |_: &[u8]| "a step history".to_owned();
        super::records::scan_records(store, Table::History, b"", what, |key, h: StepHistory| {
            let text = String::from_utf8_lossy(key);
            let (workflow, step) = text.split_once('\0').unwrap_or((&text, ""));
            if !known.contains(&(workflow.to_owned(), step.to_owned())) {
                f(workflow, step, &h);
            }
            true
        })?;
        for ((workflow, step), h) in &cached {
            f(workflow, step, h);
        }
        Ok(())
    }

    /// A step's history: the one in memory if it is newer than the store's.
    pub(crate) fn of(
        &self,
        store: &dyn Store,
        workflow: &str,
        step: &str,
    ) -> Result<Option<StepHistory>, StoreError> {
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        match cached.get(&(workflow.to_owned(), step.to_owned())) {
            Some(c) => Ok(Some(c.history.clone())),
            None => get(store, workflow, step),
        }
    }
}

impl super::Engine {
    /// The history of step `step` of workflow `workflow` (for a loop body's step, the body's
    /// workflow `wf.loop`), if it has ended before.
    pub fn step_history(
        &self,
        workflow: &str,
        step: &str,
    ) -> Result<Option<StepHistory>, super::EngineError> {
        let shared = self.shared();
        Ok(shared.history.of(shared.store.as_ref(), workflow, step)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sketch_gives_quantiles_within_two_percent() {
        let mut s = Sketch::default();
        for ms in 1..=10_000u64 {
            s.add(ms);
        }
        for (q, truth) in [(0.5, 5_000.0), (0.9, 9_000.0), (0.99, 9_900.0)] {
            let got = s.quantile(q).unwrap() as f64;
            assert!((got - truth).abs() / truth < 0.02, "q{q}: {got} vs {truth}");
        }
        assert!(s.buckets.len() <= MAX_BUCKETS);
        assert_eq!(Sketch::default().quantile(0.5), None);
    }

    #[test]
    fn a_signature_masks_what_changes_from_run_to_run() {
        assert_eq!(
            signature("connection to 10.0.0.12:5432 refused after 3017 ms"),
            "connection to #.#.#.#:# refused after # ms"
        );
    }

    #[test]
    fn history_keeps_the_last_outcomes_and_counts() {
        let mut h = StepHistory::default();
        for i in 0..30u64 {
            h.add(Outcome {
                run_id: format!("r{i}"),
                ended_ms: i,
                duration_ms: 100,
                succeeded: i % 3 != 0,
                attempts: if i % 5 == 0 { 2 } else { 1 },
                signature: (i % 3 == 0).then(|| "boom".to_owned()),
            });
        }
        assert_eq!((h.ended, h.succeeded, h.failed, h.retried), (30, 20, 10, 6));
        assert_eq!(h.recent.len(), RECENT);
        assert_eq!(h.recent.front().map(|o| o.run_id.as_str()), Some("r10"));
        assert_eq!(h.signatures.get("boom"), Some(&10));
    }
}

//! What the engine remembers of each step's past: per workflow and step id, how its ends
//! went (counts, a duration sketch, the last outcomes). The insights layer reads it for
//! forecasts and diagnosis.
//!
//! A step's end is added in memory, to the step's changes since they were last written;
//! every second a background task merges what changed into the stored histories (one read
//! and one write per step touched, whatever the number of its ends: the body steps of a
//! large loop add to one history) and commits them, sharing flushes with the runs' writes;
//! so is what is left at close. A step's end never waits for its history. Reads merge what
//! is not written yet. A killed engine may lose the last second of history, never a run's
//! state. In a cluster every engine merges its own changes into the shared histories.

use super::records::{decode, encode};
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// Outcomes kept per step, newest last.
pub const RECENT: usize = 20;
/// How often the changes are written.
pub(crate) const WRITE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
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
    /// Adds what `newer` holds (ends after this history's): counts, durations, outcomes and
    /// signatures.
    fn merge(&mut self, newer: StepHistory) {
        self.ended += newer.ended;
        self.succeeded += newer.succeeded;
        self.failed += newer.failed;
        self.retried += newer.retried;
        self.durations.merge(&newer.durations);
        for (signature, n) in newer.signatures {
            *self.signatures.entry(signature).or_insert(0) += n;
        }
        self.prune_signatures();
        self.recent.extend(newer.recent);
        while self.recent.len() > RECENT {
            self.recent.pop_front();
        }
    }

    /// Keeps the [`RECENT`] most frequent signatures.
    fn prune_signatures(&mut self) {
        while self.signatures.len() > RECENT {
            let rarest = self.signatures.iter().min_by_key(|(_, n)| **n).map(|(k, _)| k.clone());
            match rarest {
                Some(rarest) => self.signatures.remove(&rarest),
                None => break,
            };
        }
    }

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
        self.collapse();
    }

    /// Adds `other`'s durations.
    fn merge(&mut self, other: &Sketch) {
        for (b, n) in &other.buckets {
            *self.buckets.entry(*b).or_insert(0) += n;
        }
        self.count += other.count;
        self.collapse();
    }

    /// Merges the lowest buckets while there are too many.
    fn collapse(&mut self) {
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

/// The ends of steps not written to their histories yet, shared by an engine's drivers.
#[derive(Default)]
pub(crate) struct Histories {
    changes: Mutex<HashMap<(String, String), StepHistory>>,
}

impl Histories {
    /// Adds the end of step `step` of a run of `workflow` to its history (in memory, written
    /// within a second).
    pub(crate) fn record(&self, workflow: &str, step: &str, outcome: Outcome) {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let id = (workflow.to_owned(), step.to_owned());
        changes.entry(id).or_default().add(outcome);
    }

    /// Merges every change into its stored history, in `batch`; how many were changed.
    pub(crate) fn flush(&self, store: &dyn Store, batch: &mut Batch) -> Result<usize, StoreError> {
        let changes = std::mem::take(&mut *self.changes.lock().unwrap_or_else(|e| e.into_inner()));
        if changes.is_empty() {
            return Ok(0);
        }
        let keys: Vec<Vec<u8>> = changes.keys().map(|(w, s)| key(w, s)).collect();
        let stored = store.get_many(Table::History, &keys)?;
        for ((id, change), (key, stored)) in changes.into_iter().zip(keys.into_iter().zip(stored)) {
            // A history the store cannot read starts afresh: it is statistics, not state.
            let mut history: StepHistory = stored
                .and_then(|b| decode(|| format!("history of {}/{}", id.0, id.1), &b).ok())
                .unwrap_or_default();
            history.merge(change);
            batch.put(Table::History, key, encode(&history));
        }
        Ok(batch.len())
    }

    /// Merged with what is not written yet.
    fn pending(
        &self,
        workflow: &str,
        step: &str,
        stored: Option<StepHistory>,
    ) -> Option<StepHistory> {
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        match (stored, changes.get(&(workflow.to_owned(), step.to_owned()))) {
            (stored, None) => stored,
            (stored, Some(change)) => {
                let mut history = stored.unwrap_or_default();
                history.merge(change.clone());
                Some(history)
            }
        }
    }

    /// Every history, with its workflow and step, with what is not written yet.
    pub(crate) fn scan(
        &self,
        store: &dyn Store,
        mut f: impl FnMut(&str, &str, &StepHistory),
    ) -> Result<(), StoreError> {
        let mut unwritten: HashMap<(String, String), StepHistory> =
            self.changes.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let what = |_: &[u8]| "a step history".to_owned();
        super::records::scan_records(
            store,
            Table::History,
            b"",
            what,
            |key, mut h: StepHistory| {
                let text = String::from_utf8_lossy(key);
                let (workflow, step) = text.split_once('\0').unwrap_or((&text, ""));
                if let Some(change) = unwritten.remove(&(workflow.to_owned(), step.to_owned())) {
                    h.merge(change);
                }
                f(workflow, step, &h);
                true
            },
        )?;
        for ((workflow, step), h) in &unwritten {
            f(workflow, step, h);
        }
        Ok(())
    }

    /// A step's history, with what is not written yet.
    pub(crate) fn of(
        &self,
        store: &dyn Store,
        workflow: &str,
        step: &str,
    ) -> Result<Option<StepHistory>, StoreError> {
        Ok(self.pending(workflow, step, get(store, workflow, step)?))
    }
}

/// Writes the histories' changes every [`WRITE_EVERY`], until the engine closes (which
/// writes the rest).
pub(crate) fn start_writer(engine: &super::Engine) {
    if tokio::runtime::Handle::try_current().is_err() {
        // Opened outside a runtime (a check with no run to drive): written at close.
        return;
    }
    let weak = engine.downgrade();
    let shutdown = engine.shutdown_token();
    engine.spawn_background(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(WRITE_EVERY) => {}
            }
            let Some(engine) = weak.upgrade() else { break };
            if let Err(e) = engine.write_histories().await {
                tracing::warn!(error = %e, "step histories not written; tried again in a second");
            }
        }
    });
}

impl super::Engine {
    /// Writes what step ends added to their histories.
    pub(crate) async fn write_histories(&self) -> Result<(), super::EngineError> {
        let shared = self.shared();
        let mut batch = Batch::default();
        if shared.history.flush(shared.store.as_ref(), &mut batch)? > 0 {
            shared.committer.commit(batch).await?;
        }
        Ok(())
    }

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
    fn merging_changes_into_a_history_is_adding_their_ends() {
        let outcome = |i: u64| Outcome {
            run_id: format!("r{i}"),
            ended_ms: i,
            duration_ms: 10 * i,
            succeeded: !i.is_multiple_of(4),
            attempts: 1,
            signature: i.is_multiple_of(4).then(|| format!("e{}", i % 3)),
        };
        let (mut all, mut old, mut new) = Default::default();
        for i in 0..50 {
            StepHistory::add(&mut all, outcome(i));
            StepHistory::add(if i < 30 { &mut old } else { &mut new }, outcome(i));
        }
        let mut merged: StepHistory = old;
        merged.merge(new);
        assert_eq!(merged, all);
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

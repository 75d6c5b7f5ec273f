//! The timeline of a run: every status change of the run and its steps, kept in the store
//! in the batch of the transition, and delivered to listeners and subscribers once durable.
//!
//! Iterations of `foreach`/`while` keep no timeline: their step's rollup sums them up, so a
//! huge loop does not write an event per iteration step.

use super::records::encode;
use super::{records, Engine, EngineError, Event};
use crate::store::{Batch, Store, StoreError, Table};

/// Events a subscriber may fall behind by before it lags (and misses some).
pub(crate) const SUBSCRIBER_BUFFER: usize = 4096;

/// Run id, a 0 byte (no run id has one, so a child run `RUN:step` never shares the
/// prefix of `RUN`), then the big-endian sequence number: key order is event order.
fn event_key(run_id: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(run_id.len() + 9);
    key.extend_from_slice(run_id.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn prefix(run_id: &str) -> Vec<u8> {
    let mut key = run_id.as_bytes().to_vec();
    key.push(0);
    key
}

pub(crate) fn put_event(batch: &mut Batch, run_id: &str, seq: u64, event: &Event) {
    batch.put(Table::Events, event_key(run_id, seq), encode(event));
}

/// The sequence number after the last stored event of a run: read once when a driver
/// resumes a run, so that its numbering goes on.
pub(crate) fn next_seq(store: &dyn Store, run_id: &str) -> Result<u64, StoreError> {
    let prefix = prefix(run_id);
    let mut next = 0;
    store.scan(Table::Events, &prefix, &mut |key, _| {
        if let Ok(bytes) = <[u8; 8]>::try_from(&key[prefix.len()..]) {
            next = u64::from_be_bytes(bytes) + 1;
        }
        true
    })?;
    Ok(next)
}

impl Engine {
    /// Every status change of a run and of its steps, in order. Iterations of a
    /// `foreach`/`while` have none: see the step's rollup.
    pub fn timeline(&self, run_id: &str) -> Result<Vec<Event>, EngineError> {
        let store = self.shared.store.as_ref();
        if records::get_run(store, run_id)?.is_none() {
            return Err(EngineError::UnknownRun(run_id.into()));
        }
        Ok(records::collect_records(store, Table::Events, &prefix(run_id), |_| format!("event of run {run_id}"))?)
    }

    /// Every event of every run from now on, once durable (iterations included). A
    /// subscriber that falls more than a few thousand events behind gets
    /// `RecvError::Lagged` and misses some: the engine never waits for it.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }
}

//! The timeline of a run: every status change of the run and its steps, kept in the store
//! in the batch of the transition, and delivered to listeners and subscribers once durable.
//!
//! Iterations of `foreach`/`while` keep no timeline: their step's rollup sums them up, so a
//! huge loop does not write an event per iteration step.

use super::records::encode;
use super::state::{RunStatus, StepStatus};
use super::{records, Engine, EngineError, Event};
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};

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

/// A step's event as stored: the run id and the sequence number are its key, and the
/// names are short, so that a run's timeline adds little to its writes.
#[derive(Serialize)]
struct StepEntry<'a> {
    s: &'a str,
    st: StepStatus,
    a: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<&'a str>,
    t: u64,
}

/// A run's event as stored; its workflow id is in the run's record.
#[derive(Serialize)]
struct RunEntry<'a> {
    st: RunStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    e: Option<&'a str>,
    t: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    o: Option<&'a str>,
}

/// What a stored event reads as: one of the entries above, or a whole [`Event`] (stores
/// written before the short form).
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Step {
        s: String,
        st: StepStatus,
        a: u32,
        #[serde(default)]
        e: Option<String>,
        t: u64,
    },
    Run {
        st: RunStatus,
        #[serde(default)]
        e: Option<String>,
        t: u64,
        #[serde(default)]
        o: Option<String>,
    },
    Whole(Event),
}

/// A step's status change, in the batch of the transition.
pub(crate) struct StepChange<'a> {
    pub step_id: &'a str,
    pub status: StepStatus,
    pub attempt: u32,
    pub error: Option<&'a str>,
    pub at_ms: u64,
}

pub(crate) fn put_step_event(batch: &mut Batch, run_id: &str, seq: u64, change: StepChange<'_>) {
    let entry = StepEntry {
        s: change.step_id,
        st: change.status,
        a: change.attempt,
        e: change.error,
        t: change.at_ms,
    };
    batch.put(Table::Events, event_key(run_id, seq), encode(&entry));
}

pub(crate) fn put_run_event(
    batch: &mut Batch,
    run_id: &str,
    seq: u64,
    status: RunStatus,
    error: Option<&str>,
    at_ms: u64,
    engine: Option<&str>,
) {
    batch.put(
        Table::Events,
        event_key(run_id, seq),
        encode(&RunEntry { st: status, e: error, t: at_ms, o: engine }),
    );
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
    /// Every status change of a run and of its steps, in order. An iteration of a
    /// `foreach`/`while` keeps no events of its own (a loop of a million iterations would
    /// write millions): its timeline is made from its records, a start and an end for it
    /// and for each of its steps, the last attempt only.
    pub fn timeline(&self, run_id: &str) -> Result<Vec<Event>, EngineError> {
        let store = self.shared.store.as_ref();
        let Some(run) = records::get_run(store, run_id)? else {
            return Err(EngineError::UnknownRun(run_id.into()));
        };
        if run.parent.as_ref().is_some_and(|p| p.iteration.is_some()) {
            return self.iteration_timeline(run_id);
        }
        let prefix = prefix(run_id);
        let mut events = Vec::new();
        records::scan_records(
            store,
            Table::Events,
            &prefix,
            |_| format!("event of run {run_id}"),
            |key, stored: Stored| {
                let seq = <[u8; 8]>::try_from(&key[prefix.len()..])
                    .map(u64::from_be_bytes)
                    .unwrap_or_default();
                let run_id = run_id.to_owned();
                events.push(match stored {
                    Stored::Step { s, st, a, e, t } => Event::Step {
                        run_id,
                        step_id: s,
                        status: st,
                        attempt: a,
                        error: e,
                        at_ms: t,
                        seq,
                    },
                    Stored::Run { st, e, t, o } => Event::Run {
                        run_id,
                        workflow_id: run.workflow_id.clone(),
                        status: st,
                        error: e,
                        at_ms: t,
                        seq,
                        engine: o,
                    },
                    Stored::Whole(event) => event,
                });
                true
            },
        )?;
        Ok(events)
    }

    /// The timeline of an iteration, from its run's and steps' records.
    fn iteration_timeline(&self, run_id: &str) -> Result<Vec<Event>, EngineError> {
        let details = self.details(run_id)?;
        let run = &details.run;
        let mut events = Vec::new();
        let run_event = |status, error: Option<String>, at_ms| Event::Run {
            run_id: run_id.to_owned(),
            workflow_id: run.workflow_id.clone(),
            status,
            error,
            at_ms,
            seq: 0,
            engine: None,
        };
        if let Some(at) = run.started_ms {
            events.push(run_event(crate::engine::RunStatus::Running, None, at));
        }
        for step in &details.steps {
            let r = &step.record;
            let step_event = |status, error: Option<String>, at_ms| Event::Step {
                run_id: run_id.to_owned(),
                step_id: step.id.clone(),
                status,
                attempt: r.attempt,
                error,
                at_ms,
                seq: 0,
            };
            if let Some(at) = r.started_ms {
                events.push(step_event(crate::engine::StepStatus::Running, None, at));
            }
            if let (Some(at), true) = (r.ended_ms, r.status.is_terminal()) {
                events.push(step_event(r.status, r.error.clone(), at));
            }
        }
        if let (Some(at), true) = (run.ended_ms, run.status.is_terminal()) {
            events.push(run_event(run.status, run.error.clone(), at));
        }
        // In time order; a start before the end at the same millisecond, as written.
        events.sort_by_key(|e| match e {
            Event::Run { at_ms, .. } | Event::Step { at_ms, .. } => *at_ms,
        });
        for (n, event) in events.iter_mut().enumerate() {
            match event {
                Event::Run { seq, .. } | Event::Step { seq, .. } => *seq = n as u64,
            }
        }
        Ok(events)
    }

    /// Every event of every run from now on, once durable (iterations included). A
    /// subscriber that falls more than a few thousand events behind gets
    /// `RecvError::Lagged` and misses some: the engine never waits for it.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Stored {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn entries_are_short_and_read_back() {
        let mut batch = Batch::default();
        let change = StepChange {
            step_id: "load",
            status: StepStatus::Failed,
            attempt: 2,
            error: Some("boom"),
            at_ms: 7,
        };
        put_step_event(&mut batch, "R", 3, change);
        put_run_event(&mut batch, "R", 4, RunStatus::Failed, None, 8, None);
        let values: Vec<String> = batch
            .ops
            .iter()
            .map(|op| match op {
                crate::store::Op::Put(Table::Events, _, v) => String::from_utf8(v.clone()).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            values,
            [r#"{"s":"load","st":"FAILED","a":2,"e":"boom","t":7}"#, r#"{"st":"FAILED","t":8}"#]
        );
        assert!(
            matches!(read(&values[0]), Stored::Step { s, st: StepStatus::Failed, a: 2, e: Some(e), t: 7 } if s == "load" && e == "boom")
        );
        assert!(matches!(
            read(&values[1]),
            Stored::Run { st: RunStatus::Failed, e: None, t: 8, o: None }
        ));
    }

    #[test]
    fn whole_events_of_older_stores_still_read() {
        let old = r#"{"event":"step","run_id":"R","step_id":"a","status":"SUCCEEDED","attempt":1,"error":null,"at_ms":5,"seq":0}"#;
        assert!(
            matches!(read(old), Stored::Whole(Event::Step { step_id, status: StepStatus::Succeeded, .. }) if step_id == "a")
        );
    }
}

//! Step concurrency limits by tag: at most N steps with a tag run at once, across all the
//! runs of an engine. A step waiting for a slot stays READY and takes no slot of its run;
//! drivers that wait are woken when a slot frees.

use super::records::{encode, scan_records};
use super::{Engine, EngineError};
use crate::store::{Batch, Store, StoreError, Table};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::watch;

/// The limits and the slots taken, shared by the drivers of an engine.
pub(crate) struct Limits {
    state: Mutex<State>,
    /// Changes whenever slots free or limits change.
    freed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    max: HashMap<String, u32>,
    /// Steps running per tag, for every tag (a limit may be set while they run).
    running: HashMap<String, u32>,
}

impl Limits {
    pub(crate) fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let state = State { max: Self::read(store)?, running: HashMap::new() };
        Ok(Limits { state: Mutex::new(state), freed: watch::channel(0).0 })
    }

    /// Takes the limits the store holds now, if another engine changed them.
    pub(crate) fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let now = Self::read(store)?;
        let mut state = self.lock();
        if state.max != now {
            state.max = now;
            drop(state);
            self.freed.send_modify(|n| *n += 1);
        }
        Ok(())
    }

    fn read(store: &dyn Store) -> Result<HashMap<String, u32>, StoreError> {
        let mut max = HashMap::new();
        scan_records(
            store,
            Table::Limits,
            b"",
            |_| "limit".into(),
            |key, limit: u32| {
                max.insert(String::from_utf8_lossy(key).into_owned(), limit);
                true
            },
        )?;
        Ok(max)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot of every tag if each has one free.
    pub(crate) fn try_acquire(&self, tags: &[String]) -> bool {
        let mut state = self.lock();
        let free = tags.iter().all(|t| {
            state.max.get(t).is_none_or(|&max| state.running.get(t).copied().unwrap_or(0) < max)
        });
        if free {
            for t in tags {
                *state.running.entry(t.clone()).or_insert(0) += 1;
            }
        }
        free
    }

    /// Takes a slot of every tag, full or not: for steps that were running before a crash.
    pub(crate) fn force_acquire(&self, tags: &[String]) {
        let mut state = self.lock();
        for t in tags {
            *state.running.entry(t.clone()).or_insert(0) += 1;
        }
    }

    pub(crate) fn release(&self, tags: &[String]) {
        let mut state = self.lock();
        for t in tags {
            if let Some(n) = state.running.get_mut(t) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    state.running.remove(t);
                }
            }
        }
        drop(state);
        self.freed.send_modify(|n| *n += 1);
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.freed.subscribe()
    }
}

impl Engine {
    /// Lets at most `max` steps tagged `tag` run at once across all runs (`None` removes
    /// the limit). Durable; steps already running keep running, and steps waiting for a
    /// slot look again at once.
    pub async fn set_limit(&self, tag: &str, max: Option<u32>) -> Result<(), EngineError> {
        if let Some(problem) = crate::model::id_problem(tag, "tag") {
            return Err(EngineError::BadTag(problem));
        }
        let mut batch = Batch::default();
        match max {
            Some(max) => batch.put(Table::Limits, tag.as_bytes(), encode(&max)),
            None => batch.delete(Table::Limits, tag.as_bytes()),
        }
        self.shared.committer.commit(batch).await?;
        let limits = &self.shared.limits;
        {
            let mut state = limits.lock();
            match max {
                Some(max) => state.max.insert(tag.to_owned(), max),
                None => state.max.remove(tag),
            };
        }
        limits.freed.send_modify(|n| *n += 1);
        tracing::info!(%tag, ?max, "step limit set");
        Ok(())
    }

    /// The limits by tag, sorted by tag.
    pub fn limits(&self) -> Vec<(String, u32)> {
        let state = self.shared.limits.lock();
        let mut limits: Vec<(String, u32)> =
            state.max.iter().map(|(t, &m)| (t.clone(), m)).collect();
        limits.sort();
        limits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_taken_for_every_tag_or_none() {
        let limits = Limits::load(&crate::store::MemoryStore::default()).unwrap();
        limits.lock().max.insert("db".into(), 1);
        let both = vec!["db".to_string(), "net".to_string()];
        assert!(limits.try_acquire(&both));
        assert!(!limits.try_acquire(&["db".to_string()]));
        assert!(limits.try_acquire(&["net".to_string()]), "net has no limit");
        limits.release(&both);
        assert!(limits.try_acquire(&["db".to_string()]));
    }
}

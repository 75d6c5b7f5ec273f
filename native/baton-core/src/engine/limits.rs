//! Step concurrency limits by tag: at most N steps with a tag run at once, across all the
//! runs of an engine, or of every engine sharing a store. A step waiting for a slot stays
//! READY and takes no slot of its run; drivers that wait are woken when a slot frees.
//!
//! On a store of one engine the slots are counted in memory. On a shared store they are
//! counted in the store (`Table::Slots`: tag -> the steps holding one), each taken or given
//! back by a conditional batch, so the engines of a cluster share one count. A holder whose
//! step ended without giving its slot back (its engine died) is dropped by the next step
//! that finds the tag full.

use super::records::{self, decode, encode, scan_records};
use super::{Engine, EngineError, Shared};
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

/// How often a step waiting for a slot on a shared store looks again with no news: holders
/// whose engine died free nothing that anyone would hear of.
const RECHECK: Duration = Duration::from_secs(2);

/// The limits and the slots taken, shared by the drivers of an engine.
pub(crate) struct Limits {
    state: Mutex<State>,
    /// Changes whenever slots free or limits change.
    freed: watch::Sender<u64>,
    /// Slots are counted in the store, for every engine sharing it.
    shared: bool,
    /// Steps of this engine waiting for a slot in the store.
    waiting: AtomicUsize,
    /// One step of this engine at a time asks the store for slots, so a freed slot wakes
    /// one query after another rather than all of them at once.
    asking: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    max: HashMap<String, u32>,
    /// Steps running per tag, for every tag (a limit may be set while they run); in memory.
    running: HashMap<String, u32>,
    /// Tags found full in the store, with the value of `freed` then: until it changes,
    /// a step waiting for one of them need not ask again.
    full: HashMap<String, u64>,
}

/// A step holding (or about to hold) a slot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Holder {
    pub(crate) run: String,
    pub(crate) step: u32,
    pub(crate) attempt: u32,
}

impl Holder {
    fn same_step(&self, other: &Holder) -> bool {
        self.run == other.run && self.step == other.step
    }
}

/// What a step asking for slots gets at once.
pub(crate) enum Take {
    Taken,
    /// Wait for a slot to free ([`Limits::subscribe`]).
    Full,
    /// Ask the store ([`take_slots`]): the slots are counted there.
    Ask,
}

impl Limits {
    pub(crate) fn load(store: &dyn Store, shared: bool) -> Result<Self, StoreError> {
        let state = State { max: Self::read(store)?, ..State::default() };
        Ok(Limits {
            state: Mutex::new(state),
            freed: watch::channel(0).0,
            shared,
            waiting: AtomicUsize::new(0),
            asking: tokio::sync::Mutex::new(()),
        })
    }

    /// Takes the limits the store holds now, if another engine changed them.
    pub(crate) fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let now = Self::read(store)?;
        let mut state = self.lock();
        if state.max != now {
            state.max = now;
            drop(state);
            self.wake();
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

    fn wake(&self) {
        self.freed.send_modify(|n| *n += 1);
    }

    /// Takes a slot of every tag if each has one free.
    pub(crate) fn try_acquire(&self, tags: &[String]) -> Take {
        let mut state = self.lock();
        if self.shared {
            // Tags without a limit are not counted in the store: no query for them.
            return match tags.iter().any(|t| state.max.contains_key(t)) {
                true => Take::Ask,
                false => Take::Taken,
            };
        }
        let free = tags.iter().all(|t| {
            state.max.get(t).is_none_or(|&max| state.running.get(t).copied().unwrap_or(0) < max)
        });
        if !free {
            return Take::Full;
        }
        for t in tags {
            *state.running.entry(t.clone()).or_insert(0) += 1;
        }
        Take::Taken
    }

    /// Takes a slot of every tag, full or not: for steps that were running before a crash.
    /// In the store, the step most likely holds them still.
    pub(crate) fn force_acquire(
        &self,
        shared: &std::sync::Arc<Shared>,
        tags: &[String],
        holder: Holder,
    ) {
        if self.shared {
            let (shared, tags) = (shared.clone(), tags.to_vec());
            tokio::spawn(async move { take_slots(&shared, &tags, holder, true).await });
            return;
        }
        let mut state = self.lock();
        for t in tags {
            *state.running.entry(t.clone()).or_insert(0) += 1;
        }
    }

    /// Gives back the slots of a step whose attempt ended.
    pub(crate) fn release(&self, shared: &std::sync::Arc<Shared>, tags: &[String], holder: Holder) {
        if self.shared {
            let (shared, tags) = (shared.clone(), tags.to_vec());
            tokio::spawn(async move { give_back(&shared, &tags, holder).await });
            return;
        }
        self.release_here(tags);
    }

    /// Gives back the slots a driver that stops driving holds. In the store they stay
    /// with the run: whoever drives it next relaunches those steps in them.
    pub(crate) fn let_go(&self, tags: &[String]) {
        if !self.shared {
            self.release_here(tags);
        }
    }

    fn release_here(&self, tags: &[String]) {
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
        self.wake();
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.freed.subscribe()
    }

    /// Whether steps of this engine wait for slots in the store: then the engine watches
    /// the slots other engines give back.
    pub(crate) fn anyone_waiting(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }

    /// Wakes the waiting steps when another engine gave slots back.
    pub(crate) fn slots_changed(&self) {
        self.wake();
    }
}

/// A fingerprint of the slots every engine holds: it changes when one takes or gives one.
pub(crate) fn slots_seen(store: &dyn Store) -> Result<Vec<u8>, StoreError> {
    let mut seen = Vec::new();
    store.scan(Table::Slots, b"", &mut |key, value| {
        seen.extend_from_slice(key);
        seen.extend_from_slice(value);
        true
    })?;
    Ok(seen)
}

/// Takes a slot of every limited tag of `tags` in the store for `holder` (again, if it
/// holds them), waiting while one is full; `force` takes them full or not. False if the
/// engine closed first.
pub(crate) async fn take_slots(
    shared: &Shared,
    tags: &[String],
    holder: Holder,
    force: bool,
) -> bool {
    let limits = &shared.limits;
    let mut freed = limits.subscribe();
    let _waiting = Waiting::new(&limits.waiting);
    let mut recheck = false;
    loop {
        let seen = *freed.borrow_and_update();
        let (limited, known_full) = {
            let state = limits.lock();
            let limited: Vec<(String, u32)> =
                tags.iter().filter_map(|t| state.max.get(t).map(|&m| (t.clone(), m))).collect();
            let known_full =
                !force && !recheck && limited.iter().any(|(t, _)| state.full.get(t) == Some(&seen));
            (limited, known_full)
        };
        if limited.is_empty() {
            // The limits were lifted meanwhile.
            return true;
        }
        if !known_full {
            let asking = limits.asking.lock().await;
            match try_take(shared, &limited, &holder, force).await {
                Ok(None) => return true,
                Ok(Some(full)) => {
                    limits.lock().full.insert(full, seen);
                }
                Err(e) => {
                    tracing::warn!(run = %holder.run, error = %e, "cannot take a tag slot; trying again")
                }
            }
            drop(asking);
        }
        recheck = false;
        tokio::select! {
            _ = freed.changed() => {}
            _ = tokio::time::sleep(RECHECK) => recheck = true,
            _ = shared.shutdown.cancelled() => return false,
        }
    }
}

/// Counts a step waiting for slots while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One try: `None` when `holder` holds a slot of every tag now, else a tag found full.
async fn try_take(
    shared: &Shared,
    limited: &[(String, u32)],
    holder: &Holder,
    force: bool,
) -> Result<Option<String>, StoreError> {
    let store = shared.store.as_ref();
    let keys: Vec<Vec<u8>> = limited.iter().map(|(t, _)| t.as_bytes().to_vec()).collect();
    let current = store.get_many(Table::Slots, &keys)?;
    let mut batch = Batch::default();
    for ((tag, max), (key, bytes)) in limited.iter().zip(keys.into_iter().zip(current)) {
        let mut holders = holders_of(tag, bytes.as_deref())?;
        holders.retain(|h| !h.same_step(holder));
        if !force && holders.len() >= *max as usize {
            holders = still_holding(store, holders)?;
            if holders.len() >= *max as usize {
                return Ok(Some(tag.clone()));
            }
        }
        holders.push(holder.clone());
        batch.expect(Table::Slots, key.clone(), bytes);
        batch.put(Table::Slots, key, encode(&holders));
    }
    match shared.committer.commit(batch).await {
        Ok(()) => Ok(None),
        // Another engine took or gave one meanwhile: look again.
        Err(StoreError::Conflict) => Box::pin(try_take(shared, limited, holder, force)).await,
        Err(e) => Err(e),
    }
}

/// Gives back the slots `holder` (or an earlier attempt of its step) holds in the store.
async fn give_back(shared: &Shared, tags: &[String], holder: Holder) {
    let store = shared.store.as_ref();
    let keys: Vec<Vec<u8>> = tags.iter().map(|t| t.as_bytes().to_vec()).collect();
    let mut pause = Duration::from_millis(100);
    loop {
        let given = async {
            let current = store.get_many(Table::Slots, &keys)?;
            let mut batch = Batch::default();
            for ((tag, key), bytes) in tags.iter().zip(&keys).zip(current) {
                let mut holders = holders_of(tag, bytes.as_deref())?;
                let before = holders.len();
                holders.retain(|h| !(h.same_step(&holder) && h.attempt <= holder.attempt));
                if holders.len() == before {
                    continue;
                }
                batch.expect(Table::Slots, key.clone(), bytes);
                match holders.is_empty() {
                    true => batch.delete(Table::Slots, key.clone()),
                    false => batch.put(Table::Slots, key.clone(), encode(&holders)),
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            shared.committer.commit(batch).await
        };
        match given.await {
            Ok(()) => {
                shared.limits.wake();
                return;
            }
            Err(StoreError::Conflict) => {}
            Err(e) => {
                // Left in the store, the slot is freed by the next step to find the tag full.
                tracing::warn!(run = %holder.run, error = %e, "cannot give a tag slot back; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(pause) => pause = (pause * 2).min(RECHECK),
                    _ = shared.shutdown.cancelled() => return,
                }
            }
        }
    }
}

fn holders_of(tag: &str, bytes: Option<&[u8]>) -> Result<Vec<Holder>, StoreError> {
    bytes.map_or(Ok(Vec::new()), |b| decode(|| format!("slots of tag {tag}"), b))
}

/// The holders whose step may still run: a holder whose step ended, or whose run ended or
/// is gone, let go of its slot without writing so (its engine died).
fn still_holding(store: &dyn Store, holders: Vec<Holder>) -> Result<Vec<Holder>, StoreError> {
    let keys: Vec<Vec<u8>> =
        holders.iter().map(|h| records::step_key(&h.run, h.step as usize)).collect();
    let steps = store.get_many(Table::Steps, &keys)?;
    let mut live = Vec::with_capacity(holders.len());
    for (holder, step) in holders.into_iter().zip(steps) {
        let step: Option<records::StepRecord> =
            step.map(|b| decode(|| format!("step of run {}", holder.run), &b)).transpose()?;
        let alive = match step {
            Some(step) if step.status.is_terminal() => false,
            Some(_) => true,
            // Not launched yet: alive while its run is.
            None => records::get_run(store, &holder.run)?.is_some_and(|r| !r.status.is_terminal()),
        };
        if alive {
            live.push(holder);
        }
    }
    Ok(live)
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
        limits.wake();
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
        let limits = Limits::load(&crate::store::MemoryStore::default(), false).unwrap();
        limits.lock().max.insert("db".into(), 1);
        let both = vec!["db".to_string(), "net".to_string()];
        assert!(matches!(limits.try_acquire(&both), Take::Taken));
        assert!(matches!(limits.try_acquire(&["db".to_string()]), Take::Full));
        assert!(
            matches!(limits.try_acquire(&["net".to_string()]), Take::Taken),
            "net has no limit"
        );
        limits.let_go(&both);
        assert!(matches!(limits.try_acquire(&["db".to_string()]), Take::Taken));
    }

    #[test]
    fn a_holder_whose_step_ended_or_whose_run_is_gone_holds_nothing() {
        use crate::engine::state::StepStatus;
        let store = crate::store::MemoryStore::default();
        let mut batch = Batch::default();
        let holder = |run: &str, step| Holder { run: run.into(), step, attempt: 1 };
        let ended = records::StepRecord::new(StepStatus::Succeeded, 1);
        let running = records::StepRecord::new(StepStatus::Running, 1);
        records::put_step(&mut batch, "r1", 0, &ended);
        records::put_step(&mut batch, "r1", 1, &running);
        store.commit(&batch).unwrap();
        let holders = vec![holder("r1", 0), holder("r1", 1), holder("gone", 0)];
        assert_eq!(still_holding(&store, holders).unwrap(), vec![holder("r1", 1)]);
    }
}

//! Retention: how long the engine keeps finished runs, signals and firings, and the pruning
//! that deletes what is older, in the background ([`Retention::every`]) and on demand
//! ([`Engine::prune`], `baton prune`).
//!
//! What is never deleted:
//! - an unfinished run, or a child run or iteration of one: a run is deleted with its
//!   whole tree (child runs, iterations, steps, rollups, events, its request id) only once
//!   it is finished, from the index of finished runs by end time;
//! - the newest firing of each trigger, however old, and the triggers' cursors: a cursor
//!   alone says how far a trigger has looked, so no cron time fires twice and no signal
//!   starts a run twice after a prune.
//!
//! A `wait_signal` step matches signals sent since its workflow's `signal_retention` before
//! it started waiting (see the step); a signal older than the engine keeps signals is gone,
//! so the engine's signal retention is the most a `signal_retention` can reach back.
//!
//! Deletes go in batches of [`BATCH`] keys, each its own commit, with a yield between them:
//! a huge run is deleted without a giant transaction and without holding up the engine's
//! other writes for long. A run's record and its index entry go in its last batch, so a
//! crash halfway leaves it to the next pass.

use super::records::{self, RunRecord};
use super::{Engine, EngineError};
use crate::activity::Activity;
use crate::model::DurationSpec;
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use std::time::Duration;

/// Keys deleted (or counted, on a dry run) per commit.
pub(crate) const BATCH: usize = 1_000;

const DAY: Duration = Duration::from_secs(86_400);

/// How long history is kept; `None` keeps it forever. The default keeps finished runs 30
/// days, signals 7 days and firings 30 days, and prunes every hour.
///
/// As text (`baton serve --retain`): an age for every kind (`90d`), or kinds with their
/// ages, the others keeping their defaults (`runs=90d,signals=forever,every=10m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Finished runs, by the time they ended, with everything that belongs to them.
    pub runs: Option<Duration>,
    /// Signals, by the time they were sent.
    pub signals: Option<Duration>,
    /// Firings of triggers, by their scheduled time (a signal's: when it was sent).
    pub firings: Option<Duration>,
    /// How often the engine prunes while it is open, on its clock; the first time is one
    /// interval after it opens.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            runs: Some(30 * DAY),
            signals: Some(7 * DAY),
            firings: Some(30 * DAY),
            every: Duration::from_secs(3600),
        }
    }
}

impl Retention {
    /// Keeps everything: the engine never prunes on its own.
    pub fn forever() -> Self {
        Retention { runs: None, signals: None, firings: None, ..Retention::default() }
    }

    /// Whether anything is ever pruned.
    fn prunes(&self) -> bool {
        self.runs.is_some() || self.signals.is_some() || self.firings.is_some()
    }
}

/// An age: a duration (`30d`), or `forever` (`None`).
fn age(text: &str) -> Result<Option<Duration>, String> {
    match text.trim() {
        "forever" => Ok(None),
        d => DurationSpec::from(d).parse().map(Some),
    }
}

impl FromStr for Retention {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut retention = Retention::default();
        if !text.contains('=') {
            let all = age(text)?;
            return Ok(Retention { runs: all, signals: all, firings: all, ..retention });
        }
        for part in text.split(',') {
            let (kind, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not KIND=AGE (runs=30d, signals=forever)"))?;
            match kind.trim() {
                "runs" => retention.runs = age(value)?,
                "signals" => retention.signals = age(value)?,
                "firings" => retention.firings = age(value)?,
                "every" => {
                    retention.every = age(value)?
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| format!("every: `{value}` is not a positive interval"))?
                }
                other => {
                    return Err(format!(
                        "unknown kind `{other}`: use runs, signals, firings or every"
                    ))
                }
            }
        }
        Ok(retention)
    }
}

/// What a prune deleted (or, on a dry run, would delete), per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// Finished runs (not counting their child runs).
    pub runs: u64,
    /// Child runs and iterations of those runs.
    pub child_runs: u64,
    /// Step records of those runs and child runs.
    pub steps: u64,
    /// Events of their timelines.
    pub events: u64,
    /// Signals.
    pub signals: u64,
    /// Firings of triggers.
    pub firings: u64,
    /// Entries of the result cache past their `ttl` (whatever the age asked for: an
    /// expired entry serves no one).
    #[serde(default)]
    pub cache_entries: u64,
    /// Nothing was deleted: the counts are what a prune would delete.
    pub dry_run: bool,
}

/// Prunes what is older than these times (milliseconds since the epoch); `None` keeps a
/// kind.
#[derive(Debug, Clone, Copy)]
struct Cutoffs {
    runs: Option<u64>,
    signals: Option<u64>,
    firings: Option<u64>,
}

impl Cutoffs {
    fn of(retention: &Retention, now_ms: u64) -> Self {
        let before =
            |age: Option<Duration>| age.map(|a| now_ms.saturating_sub(a.as_millis() as u64));
        Cutoffs {
            runs: before(retention.runs),
            signals: before(retention.signals),
            firings: before(retention.firings),
        }
    }
}

/// Starts the engine's background pruning, unless `retention` keeps everything. It stops
/// when the engine closes.
pub(crate) fn start(engine: &Engine, retention: Retention) {
    if !retention.prunes() {
        return;
    }
    if tokio::runtime::Handle::try_current().is_err() {
        // Opened outside a runtime (a check with no run to drive): nothing to run it on.
        tracing::warn!("engine opened outside a tokio runtime: no background pruning");
        return;
    }
    let shared = engine.shared();
    let weak = engine.downgrade();
    let clock = shared.clock.clone();
    let shutdown = shared.shutdown.clone();
    let task = async move {
        let mut next = clock.now_ms().saturating_add(retention.every.as_millis() as u64);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = clock.sleep_until_passed(next) => {}
            }
            let Some(engine) = weak.upgrade() else { break };
            let now = clock.now_ms();
            match engine.prune_before(Cutoffs::of(&retention, now), false).await {
                Ok(pruned) => tracing::debug!(?pruned, "retention pass"),
                Err(e) => tracing::error!(error = %e, "retention pass failed; retried later"),
            }
            next = now.saturating_add(retention.every.as_millis() as u64);
        }
    };
    engine.spawn_background(Activity::track(shared.activity.as_ref(), task));
}

/// The first key after every key that starts with `prefix`.
fn after_prefix(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut key = prefix.to_vec();
    while let Some(last) = key.pop() {
        if last < u8::MAX {
            key.push(last + 1);
            return Some(key);
        }
    }
    None
}

/// The first key right after `key`.
fn after(key: &[u8]) -> Vec<u8> {
    let mut next = key.to_vec();
    next.push(0);
    next
}

/// Up to [`BATCH`] keys of `table` under `prefix`, from `from`, that `take` accepts; the
/// scan ends at the first key `take` refuses. Returns the keys and whether it ended there.
fn keys_from(
    store: &dyn Store,
    table: Table,
    prefix: &[u8],
    from: &[u8],
    mut take: impl FnMut(&[u8]) -> bool,
) -> Result<(Vec<Vec<u8>>, bool), StoreError> {
    let mut keys = Vec::new();
    let mut refused = false;
    store.scan_from(table, prefix, from, &mut |key, _| {
        if !take(key) {
            refused = true;
            return false;
        }
        keys.push(key.to_vec());
        keys.len() < BATCH
    })?;
    Ok((keys, refused))
}

impl Engine {
    /// Deletes finished runs (by when they ended), signals (by when they were sent) and
    /// firings (by their scheduled time) older than `older_than`, or with `dry_run` only
    /// counts them: `baton prune`. Unfinished runs and their child runs, the newest firing
    /// of each trigger and the triggers' cursors stay.
    pub async fn prune(&self, older_than: Duration, dry_run: bool) -> Result<Pruned, EngineError> {
        let all = Some(older_than);
        let retention = Retention { runs: all, signals: all, firings: all, ..Retention::default() };
        let cutoffs = Cutoffs::of(&retention, self.shared().clock.now_ms());
        Ok(self.prune_before(cutoffs, dry_run).await?)
    }

    async fn prune_before(&self, cutoffs: Cutoffs, dry_run: bool) -> Result<Pruned, StoreError> {
        // One pass at a time: the background one and one asked for share the indexes.
        let _one = self.shared().pruning.lock().await;
        let mut pruned = Pruned { dry_run, ..Pruned::default() };
        let mut pass = Pass { engine: self, dry_run, pruned: &mut pruned };
        if let Some(cutoff) = cutoffs.runs {
            pass.runs(cutoff).await?;
        }
        if let Some(cutoff) = cutoffs.signals {
            pass.signals(cutoff).await?;
        }
        if let Some(cutoff) = cutoffs.firings {
            pass.firings(cutoff).await?;
        }
        pass.cache(self.shared().clock.now_ms()).await?;
        if pruned != (Pruned { dry_run, ..Pruned::default() }) {
            tracing::info!(?pruned, "pruned history past its retention");
        }
        Ok(pruned)
    }
}

/// One prune: what it has deleted so far.
struct Pass<'a> {
    engine: &'a Engine,
    dry_run: bool,
    pruned: &'a mut Pruned,
}

impl Pass<'_> {
    fn store(&self) -> &dyn Store {
        self.engine.shared().store.as_ref()
    }

    /// Commits `batch` (unless on a dry run), then lets the engine's other work go first.
    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if !self.dry_run && !batch.is_empty() {
            self.engine.commit(batch).await?;
        }
        // Counted while yielding: tokio wakes a yielded task only after its poll, so an
        // idle moment would show in between.
        let _moving = self.engine.shared().activity.as_ref().map(|a| a.busy());
        tokio::task::yield_now().await;
        Ok(())
    }

    /// Deletes every key of `table` under `prefix`, batch by batch; returns how many.
    async fn delete_all(&self, table: Table, prefix: &[u8]) -> Result<u64, StoreError> {
        let mut from = prefix.to_vec();
        let mut count = 0;
        loop {
            let (keys, _) = keys_from(self.store(), table, prefix, &from, |_| true)?;
            let Some(last) = keys.last() else { return Ok(count) };
            from = after(last);
            count += keys.len() as u64;
            let mut batch = Batch::default();
            for key in keys {
                batch.delete(table, key);
            }
            self.commit(batch).await?;
        }
    }

    /// Entries of the result cache that expired by `now_ms`.
    async fn cache(&mut self, now_ms: u64) -> Result<(), StoreError> {
        let mut from = Vec::new();
        loop {
            let (keys, more) = super::cache::expired(self.store(), now_ms, &from, BATCH)?;
            self.pruned.cache_entries += keys.len() as u64;
            let mut batch = Batch::default();
            for key in keys {
                from = after(&key);
                batch.delete(Table::Cache, key);
            }
            self.commit(batch).await?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Finished runs that ended before `cutoff`, oldest first, each with its tree.
    async fn runs(&mut self, cutoff: u64) -> Result<(), StoreError> {
        let ended_before = |key: &[u8]| {
            key.get(..8)
                .and_then(|b| b.try_into().ok())
                .is_some_and(|b| u64::from_be_bytes(b) < cutoff)
        };
        let mut from = Vec::new();
        loop {
            let (keys, _) = keys_from(self.store(), Table::Finished, b"", &from, ended_before)?;
            let Some(last) = keys.last() else { return Ok(()) };
            from = after(last);
            for key in keys {
                let id = String::from_utf8_lossy(&key[8..]).into_owned();
                match records::get_run(self.store(), &id)? {
                    Some(run) if run.parent.is_none() && run.status.is_terminal() => {
                        if self.tree_is_finished(&run)? {
                            self.delete_run(run, key).await?;
                        }
                    }
                    // Not a finished run (an entry left by a crash): only the entry goes.
                    _ => {
                        let mut batch = Batch::default();
                        batch.delete(Table::Finished, key);
                        self.commit(batch).await?;
                    }
                }
            }
        }
    }

    /// Whether every child run and iteration of `run` is finished too, as it is once a run
    /// has ended; checked, so that a bug elsewhere never costs a running child its state.
    fn tree_is_finished(&self, run: &RunRecord) -> Result<bool, StoreError> {
        let children = format!("{}:", run.id);
        let driven =
            self.engine.runs.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&run.id);
        let mut finished = !driven;
        for table in [Table::Runs, Table::Iterations] {
            records::scan_records(self.store(), table, children.as_bytes(), |_| run.id.clone(), {
                |_, child: RunRecord| {
                    finished &= child.status.is_terminal();
                    finished
                }
            })?;
        }
        if !finished {
            tracing::warn!(run = %run.id, "finished run with a child run still going: kept");
        }
        Ok(finished)
    }

    /// Deletes a finished run and its tree; its record and index entry go last.
    async fn delete_run(
        &mut self,
        run: RunRecord,
        finished_key: Vec<u8>,
    ) -> Result<(), StoreError> {
        let id = &run.id;
        // Child ids start with the run's id and a colon; its own keys end it with `/`
        // (steps, rollups) or a 0 byte (events).
        let children = format!("{id}:");
        let own_steps = format!("{id}/");
        let mut own_events = id.as_bytes().to_vec();
        own_events.push(0);
        for table in [Table::Steps, Table::Rollups, Table::Events] {
            let count = self.delete_all(table, children.as_bytes()).await?;
            if table == Table::Steps {
                self.pruned.steps += count;
            } else if table == Table::Events {
                self.pruned.events += count;
            }
        }
        // What other engines needed of its loops: iteration leases, offers, scopes.
        for table in [Table::Leases, Table::Offers, Table::Scopes] {
            self.delete_all(table, children.as_bytes()).await?;
        }
        for table in [Table::Iterations, Table::Runs] {
            self.pruned.child_runs += self.delete_all(table, children.as_bytes()).await?;
        }
        self.pruned.steps += self.delete_all(Table::Steps, own_steps.as_bytes()).await?;
        self.delete_all(Table::Rollups, own_steps.as_bytes()).await?;
        self.pruned.events += self.delete_all(Table::Events, &own_events).await?;
        let mut batch = Batch::default();
        if let Some(request) = &run.request_id {
            // The request id is free again only if it still names this run.
            if self.store().get(Table::Requests, request.as_bytes())?.as_deref()
                == Some(id.as_bytes())
            {
                batch.delete(Table::Requests, request.as_bytes());
            }
        }
        batch.delete(Table::Runs, id.as_bytes());
        batch.delete(Table::Finished, finished_key);
        super::cluster::delete_lease(&mut batch, id);
        self.pruned.runs += 1;
        self.commit(batch).await
    }

    /// Signals sent before `cutoff`: name by name (a skip over the index by time sent),
    /// oldest first within a name.
    async fn signals(&mut self, cutoff: u64) -> Result<(), StoreError> {
        let mut from = Vec::new();
        while let Some(first) = first_key(self.store(), Table::SignalsSent, &from)? {
            let Some(end) = first.iter().position(|b| *b == 0) else {
                from = after(&first);
                continue;
            };
            let prefix = first[..=end].to_vec();
            let sent_before = |key: &[u8]| {
                key.get(prefix.len()..prefix.len() + 8)
                    .and_then(|b| b.try_into().ok())
                    .is_some_and(|b| u64::from_be_bytes(b) < cutoff)
            };
            let (keys, refused) =
                keys_from(self.store(), Table::SignalsSent, &prefix, &first, sent_before)?;
            let mut batch = Batch::default();
            for key in &keys {
                let id = key.get(prefix.len() + 8..).unwrap_or_default();
                batch.delete(Table::Signals, [prefix.as_slice(), id].concat());
                batch.delete(Table::SignalsSent, key.clone());
            }
            self.pruned.signals += keys.len() as u64;
            self.commit(batch).await?;
            // On in this name after a full batch; else on to the next name.
            from = match keys.last() {
                Some(last) if !refused && keys.len() == BATCH => after(last),
                _ => match after_prefix(&prefix) {
                    Some(next) => next,
                    None => return Ok(()),
                },
            };
        }
        Ok(())
    }

    /// Firings scheduled before `cutoff`, trigger by trigger, each trigger's newest kept.
    async fn firings(&mut self, cutoff: u64) -> Result<(), StoreError> {
        let mut from = Vec::new();
        while let Some(first) = first_key(self.store(), Table::Firings, &from)? {
            // Workflow id, a 0 byte, the trigger's index (4 bytes), then the time.
            let Some(end) = first.iter().position(|b| *b == 0).map(|i| i + 5) else {
                from = after(&first);
                continue;
            };
            let prefix = first[..end.min(first.len())].to_vec();
            let scheduled = |key: &[u8]| {
                key.get(prefix.len()..prefix.len() + 8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
            };
            // Each old firing goes once a firing after it is seen: the newest stays.
            let mut old = Vec::new();
            let mut pending: Option<Vec<u8>> = None;
            let mut full = false;
            self.store().scan_from(Table::Firings, &prefix, &first, &mut |key, _| {
                old.extend(pending.take());
                if old.len() >= BATCH {
                    full = true;
                    return false;
                }
                if scheduled(key).is_some_and(|t| t < cutoff) {
                    pending = Some(key.to_vec());
                    true
                } else {
                    false
                }
            })?;
            self.pruned.firings += old.len() as u64;
            let resume = old.last().map(|k| after(k));
            let mut batch = Batch::default();
            for key in old {
                batch.delete(Table::Firings, key);
            }
            self.commit(batch).await?;
            from = match resume {
                Some(next) if full => next,
                _ => match after_prefix(&prefix) {
                    Some(next) => next,
                    None => return Ok(()),
                },
            };
        }
        Ok(())
    }
}

/// The first key of `table` not before `from`.
fn first_key(store: &dyn Store, table: Table, from: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let mut first = None;
    store.scan_from(table, b"", from, &mut |key, _| {
        first = Some(key.to_vec());
        false
    })?;
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_reads_as_one_age_or_kinds_with_ages() {
        let all: Retention = "90d".parse().unwrap();
        assert_eq!(all.runs, Some(90 * DAY));
        assert_eq!(all.signals, Some(90 * DAY));
        let some: Retention = "runs=1d, signals=forever,every=10m".parse().unwrap();
        assert_eq!(some.runs, Some(DAY));
        assert_eq!(some.signals, None);
        assert_eq!(
            some.firings,
            Retention::default().firings,
            "a kind not named keeps its default"
        );
        assert_eq!(some.every, Duration::from_secs(600));
        assert!("forever".parse::<Retention>().unwrap() == Retention::forever());
        let err = "logs=1d".parse::<Retention>().unwrap_err();
        assert!(err.contains("unknown kind `logs`"), "{err}");
        assert!("every=0s".parse::<Retention>().is_err());
        assert!("runs=soon".parse::<Retention>().is_err());
    }

    #[test]
    fn after_prefix_is_the_first_key_past_the_prefix() {
        assert_eq!(after_prefix(b"ab\0"), Some(b"ab\x01".to_vec()));
        assert_eq!(after_prefix(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(after_prefix(b"\xff\xff"), None);
    }
}

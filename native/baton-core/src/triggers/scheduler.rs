//! The scheduler: one background task per engine that fires the cron and signal triggers of
//! the active version of each enabled workflow.
//!
//! It holds a [`WeakEngine`](crate::engine::WeakEngine), so it never keeps a closed engine
//! alive, and waits on the engine's clock, so a virtual clock fires a year of cron times in
//! moments. It wakes at the next cron time, when a signal is sent, and when a workflow is
//! registered, activated, enabled or disabled.
//!
//! Cron times missed while no engine ran (the cursor is more than [`MISFIRE_GRACE_MS`]
//! behind) follow the trigger's `misfire` policy; at most [`MISSED_BOUND`] of them are
//! considered, the older ones are passed over with a warning.

use crate::activity::Activity;
use crate::engine::admission::{Admitted, Origin, Start};
use crate::engine::firings::{get_cursor, put_cursor, put_firing, Cursor, FiringRecord};
use crate::engine::records::{self, Initiator, SignalRecord};
use crate::engine::registry::{list_entries, registered_workflow, WorkflowEntry};
use crate::engine::{Engine, EngineError};
use crate::expr::{evaluate_value, Scope, Template};
use crate::model::cron::CronSchedule;
use crate::model::{Misfire, TriggerDef};
use crate::store::Batch;
use indexmap::IndexMap;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A cron time later than this is a misfire (the engine was not running), not a late wake-up.
pub const MISFIRE_GRACE_MS: u64 = 60_000;

/// Missed cron times considered per trigger: fired (`run_all`) or recorded as skipped.
pub const MISSED_BOUND: usize = 100;

/// Cron times walked through after a long downtime before giving up on counting them.
const WALK_BOUND: usize = 1_000_000;

/// Starts the scheduler of `engine`'s triggers, once; later calls do nothing. It stops
/// when the engine closes.
pub fn start_scheduler(engine: &Engine) {
    let shared = engine.shared();
    if shared.triggers.started.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak = engine.downgrade();
    let state = shared.triggers.clone();
    let clock = shared.clock.clone();
    let shutdown = shared.shutdown.clone();
    let mut signals = shared.signal_seq.subscribe();
    let task = async move {
        tracing::debug!("scheduler started");
        loop {
            signals.borrow_and_update();
            let next = {
                let Some(engine) = weak.upgrade() else { break };
                match (Scheduler { engine: &engine }).fire_due().await {
                    Ok(next) => next,
                    Err(EngineError::Closed)
                    | Err(EngineError::Store(crate::store::StoreError::Closed)) => break,
                    Err(e) => {
                        // Retried at the next wake-up; a minute at most.
                        tracing::error!(error = %e, "scheduler pass failed");
                        Some(clock.now_ms() + 60_000)
                    }
                }
            };
            let sleep = async {
                match next {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = sleep => {}
                _ = state.wake.notified() => {}
                changed = signals.changed() => if changed.is_err() { break },
            }
        }
        tracing::debug!("scheduler stopped");
    };
    engine.spawn_background(Activity::track(shared.activity.as_ref(), task));
}

/// One pass of the scheduler over an engine's triggers.
struct Scheduler<'a> {
    engine: &'a Engine,
}

impl Scheduler<'_> {
    /// Fires every trigger that is due; returns when the next cron time is.
    async fn fire_due(&self) -> Result<Option<u64>, EngineError> {
        let mut next: Option<u64> = None;
        for (id, entry) in list_entries(self.engine.shared().store.as_ref())? {
            let workflow = match registered_workflow(self.engine.shared(), &id) {
                Ok(wf) => wf,
                Err(e) => {
                    tracing::warn!(workflow = %id, error = %e, "triggers of this workflow wait until it compiles");
                    continue;
                }
            };
            for (index, trigger) in workflow.def().triggers.iter().enumerate() {
                let fired = if let Some(expression) = &trigger.cron {
                    self.fire_cron(&workflow, &entry, index, trigger, expression).await
                } else if !trigger.signals.is_empty() {
                    self.fire_joined(&workflow, &entry, index, trigger).await.map(|()| None)
                } else {
                    self.fire_signals(&workflow, &entry, index, trigger).await.map(|()| None)
                };
                match fired {
                    Ok(at) => {
                        next = match (next, at) {
                            (Some(a), Some(b)) => Some(a.min(b)),
                            (a, b) => a.or(b),
                        }
                    }
                    // Another engine of the database fired it first: look again in a moment,
                    // from where it left the trigger.
                    Err(EngineError::Store(crate::store::StoreError::Conflict)) => {
                        tracing::debug!(workflow = %id, trigger = index, "fired by another engine");
                        let soon = self.engine.shared().clock.now_ms() + 1_000;
                        next = Some(next.map_or(soon, |n| n.min(soon)));
                    }
                    Err(e @ (EngineError::Closed | EngineError::Store(_))) => return Err(e),
                    Err(e) => {
                        tracing::error!(workflow = %id, trigger = index, error = %e, "trigger failed")
                    }
                }
            }
        }
        Ok(next)
    }

    /// Fires the due times of a cron trigger; returns its next time.
    async fn fire_cron(
        &self,
        workflow: &Arc<crate::Workflow>,
        entry: &WorkflowEntry,
        index: usize,
        trigger: &TriggerDef,
        expression: &str,
    ) -> Result<Option<u64>, EngineError> {
        let shared = self.engine.shared();
        let id = workflow.id();
        let schedule =
            CronSchedule::parse(expression, trigger.timezone.as_deref()).map_err(|message| {
                EngineError::Trigger { workflow: id.into(), trigger: index, message }
            })?;
        let spec = crate::engine::firings::spec(trigger);
        // Times are cron times; each fires `delay` after its time.
        let delay = jitter_ms(id, index, trigger);
        let now = shared.clock.now_ms();
        let cursor = get_cursor(shared.store.as_ref(), id, index)?.filter(|c| c.spec == spec);
        let Some(last) = cursor.and_then(|c| c.last_ms) else {
            // A new trigger: it fires from now on.
            let mut batch = Batch::default();
            put_cursor(&mut batch, id, index, &Cursor::at_time(spec, now));
            self.engine.commit(batch).await?;
            return Ok(schedule.next_after(now).map(|t| t + delay));
        };

        let mut due = VecDeque::new();
        let mut passed_over = 0usize;
        let mut last_passed = None;
        let mut at = last;
        while let Some(t) = schedule.next_after(at).filter(|t| t + delay <= now) {
            due.push_back(t);
            if due.len() > MISSED_BOUND {
                last_passed = due.pop_front();
                passed_over += 1;
            }
            at = t;
            if passed_over >= WALK_BOUND {
                break;
            }
        }
        if passed_over > 0 {
            tracing::warn!(workflow = %id, trigger = index, passed_over, "cron times missed beyond the bound, neither fired nor recorded");
        }
        let misfire = trigger.misfire.unwrap_or_default();
        let late = due.iter().filter(|t| now - (**t + delay) > MISFIRE_GRACE_MS).count();
        let firing = |scheduled_ms: u64, reason: Option<String>| FiringRecord {
            workflow_id: id.to_owned(),
            trigger: index,
            version: entry.active_version,
            scheduled_ms,
            fired_ms: now,
            signal_id: None,
            run_id: None,
            reason,
        };

        // Missed times that start nothing are recorded together, with the cursor past them.
        let skipped = match misfire {
            Misfire::Skip => late,
            Misfire::RunOnce => late.saturating_sub(1),
            Misfire::RunAll => 0,
        };
        if skipped > 0 || passed_over > 0 {
            let mut batch = Batch::default();
            let times: Vec<u64> = due.drain(..skipped).collect();
            for &t in &times {
                let why = format!(
                    "missed while the engine was not running (misfire: {})",
                    misfire_name(misfire)
                );
                put_firing(&mut batch, &firing(t, Some(why)));
            }
            let last_ms = times.last().copied().or(last_passed).unwrap_or(last);
            put_cursor(&mut batch, id, index, &Cursor::at_time(spec.clone(), last_ms));
            self.engine.commit(batch).await?;
        }

        for scheduled_ms in due {
            let trigger_name = json!({ "scheduled_time": scheduled_ms, "fired_time": now });
            let description = format!("cron `{expression}` at {}", format_ms(scheduled_ms));
            let cursor = Cursor::at_time(spec.clone(), scheduled_ms);
            self.fire(
                workflow,
                entry,
                index,
                trigger,
                trigger_name,
                None,
                description,
                firing(scheduled_ms, None),
                cursor,
            )
            .await?;
        }
        // The next time not fired yet: every time up to `now - delay` was.
        Ok(schedule.next_after(now.saturating_sub(delay)).map(|t| t + delay))
    }

    /// Starts a run for each signal sent since the trigger last looked that matches it.
    async fn fire_signals(
        &self,
        workflow: &Arc<crate::Workflow>,
        entry: &WorkflowEntry,
        index: usize,
        trigger: &TriggerDef,
    ) -> Result<(), EngineError> {
        let shared = self.engine.shared();
        let id = workflow.id();
        let name = trigger.signal.as_deref().unwrap_or_default();
        let spec = crate::engine::firings::spec(trigger);
        let cursor = get_cursor(shared.store.as_ref(), id, index)?.filter(|c| c.spec == spec);
        let Some(last) = cursor.and_then(|c| c.last_signal) else {
            // A new trigger: signals sent from now on. Ids are ULIDs, increasing.
            let mut batch = Batch::default();
            put_cursor(
                &mut batch,
                id,
                index,
                &Cursor::at_signal(spec, crate::engine::next_run_id(), Vec::new()),
            );
            return Ok(self.engine.commit(batch).await?);
        };
        let mut fresh: Vec<SignalRecord> = Vec::new();
        records::scan_signals_after(shared.store.as_ref(), name, &last, |s| {
            fresh.push(s);
            true
        })?;
        let matcher =
            trigger.signal_match.as_deref().map(Template::parse).transpose().map_err(|e| {
                EngineError::Trigger {
                    workflow: id.into(),
                    trigger: index,
                    message: format!("match: {e}"),
                }
            })?;
        let now = shared.clock.now_ms();
        let mut unmatched = None;
        for signal in fresh {
            let signal_name = signal_value(&signal);
            let trigger_name = json!({ "scheduled_time": signal.sent_ms, "fired_time": now });
            let cursor = Cursor::at_signal(spec.clone(), signal.id.clone(), Vec::new());
            let matched = match &matcher {
                None => Ok(true),
                Some(m) => {
                    let scope = TriggerScope::new(
                        workflow,
                        trigger_name.clone(),
                        Some(("signal", signal_name.clone())),
                        now,
                    );
                    match m.evaluate(&scope) {
                        Ok(Value::Bool(b)) => Ok(b),
                        Ok(other) => Err(format!("match: expected a boolean, not {other}")),
                        Err(e) => Err(format!("match: {e}")),
                    }
                }
            };
            let firing = FiringRecord {
                workflow_id: id.to_owned(),
                trigger: index,
                version: entry.active_version,
                scheduled_ms: signal.sent_ms,
                fired_ms: now,
                signal_id: Some(signal.id.clone()),
                run_id: None,
                reason: None,
            };
            match matched {
                Ok(false) => unmatched = Some(cursor),
                Ok(true) => {
                    let description = format!("signal `{name}` {}", signal.id);
                    self.fire(
                        workflow,
                        entry,
                        index,
                        trigger,
                        trigger_name,
                        Some(("signal", signal_name)),
                        description,
                        firing,
                        cursor,
                    )
                    .await?;
                    unmatched = None;
                }
                Err(problem) => {
                    tracing::warn!(workflow = %id, trigger = index, signal = %signal.id, %problem, "signal trigger cannot tell whether a signal matches");
                    let mut batch = Batch::default();
                    put_firing(&mut batch, &FiringRecord { reason: Some(problem), ..firing });
                    put_cursor(&mut batch, id, index, &cursor);
                    self.engine.commit(batch).await?;
                    unmatched = None;
                }
            }
        }
        // Signals that do not match leave no firing, only the cursor past them.
        if let Some(cursor) = unmatched {
            let mut batch = Batch::default();
            put_cursor(&mut batch, id, index, &cursor);
            self.engine.commit(batch).await?;
        }
        Ok(())
    }

    /// Reads the signals sent since the trigger last looked; starts a run for each join
    /// they complete.
    async fn fire_joined(
        &self,
        workflow: &Arc<crate::Workflow>,
        entry: &WorkflowEntry,
        index: usize,
        trigger: &TriggerDef,
    ) -> Result<(), EngineError> {
        let shared = self.engine.shared();
        let store = shared.store.as_ref();
        let id = workflow.id();
        let spec = crate::engine::firings::spec(trigger);
        let cursor = get_cursor(store, id, index)?.filter(|c| c.spec == spec);
        let Some((last, mut waiting)) = cursor.and_then(|c| c.last_signal.map(|l| (l, c.waiting)))
        else {
            let mut batch = Batch::default();
            let cursor = Cursor::at_signal(spec, crate::engine::next_run_id(), Vec::new());
            put_cursor(&mut batch, id, index, &cursor);
            return Ok(self.engine.commit(batch).await?);
        };
        let mut fresh: Vec<(usize, SignalRecord)> = Vec::new();
        for (place, joined) in trigger.signals.iter().enumerate() {
            records::scan_signals_after(store, &joined.name, &last, |s| {
                fresh.push((place, s));
                true
            })?;
        }
        // Ids are ULIDs: in the order they were sent, whatever their names.
        fresh.sort_by(|a, b| a.1.id.cmp(&b.1.id));
        let now = shared.clock.now_ms();
        let dropped = super::join::prune(
            &mut waiting,
            now.saturating_sub(workflow.signal_retention().as_millis() as u64),
        );
        if dropped > 0 {
            tracing::warn!(workflow = %id, trigger = index, dropped, "signals waited for their join past the signal retention (or beyond the bound), dropped");
        }
        let matchers = trigger
            .signals
            .iter()
            .map(|j| j.signal_match.as_deref().map(Template::parse).transpose())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| EngineError::Trigger {
                workflow: id.into(),
                trigger: index,
                message: format!("match: {e}"),
            })?;
        let mut moved = None;
        for (place, signal) in fresh {
            let joined = &trigger.signals[place];
            let value = signal_value(&signal);
            moved = Some(signal.id.clone());
            if let Some(m) = &matchers[place] {
                let scope =
                    TriggerScope::new(workflow, Value::Null, Some(("signal", value.clone())), now);
                match m.evaluate(&scope) {
                    Ok(Value::Bool(true)) => {}
                    Ok(Value::Bool(false)) => continue,
                    other => {
                        tracing::warn!(workflow = %id, trigger = index, signal = %signal.id, result = ?other, "joined signal's match gives no boolean; the signal does not count");
                        continue;
                    }
                }
            }
            let key: Option<Vec<Value>> =
                joined.join_params(trigger).iter().map(|k| signal.params.get(k).cloned()).collect();
            let Some(key) = key else {
                tracing::warn!(workflow = %id, trigger = index, signal = %signal.id, join = ?joined.join_params(trigger), "joined signal lacks a join param; it does not count");
                continue;
            };
            let of = trigger.signals.len();
            let Some(ids) = super::join::arrive(
                &mut waiting,
                of,
                place,
                key,
                signal.id.clone(),
                signal.sent_ms,
            ) else {
                continue;
            };
            // The join is complete: a run, with every signal of it by name.
            let mut all = serde_json::Map::new();
            for (joined, signal_id) in trigger.signals.iter().zip(&ids) {
                match records::get_signal(store, &joined.name, signal_id)? {
                    Some(s) => {
                        all.insert(joined.name.clone(), signal_value(&s));
                    }
                    None => {
                        tracing::warn!(workflow = %id, trigger = index, signal = %signal_id, "a joined signal was removed by retention before its join completed")
                    }
                }
            }
            let trigger_name = json!({ "scheduled_time": signal.sent_ms, "fired_time": now });
            let firing = FiringRecord {
                workflow_id: id.to_owned(),
                trigger: index,
                version: entry.active_version,
                scheduled_ms: signal.sent_ms,
                fired_ms: now,
                signal_id: Some(signal.id.clone()),
                run_id: None,
                reason: None,
            };
            let names: Vec<&str> = trigger.signals.iter().map(|j| j.name.as_str()).collect();
            let description = format!("signals {} joined by {}", names.join(" + "), signal.id);
            let cursor = Cursor::at_signal(spec.clone(), signal.id.clone(), waiting.clone());
            self.fire(
                workflow,
                entry,
                index,
                trigger,
                trigger_name,
                Some(("signals", Value::Object(all))),
                description,
                firing,
                cursor,
            )
            .await?;
            moved = None;
        }
        // What did not complete a join waits in the cursor, past the signals read.
        if moved.is_some() || dropped > 0 {
            let mut batch = Batch::default();
            let last = moved.unwrap_or(last);
            put_cursor(&mut batch, id, index, &Cursor::at_signal(spec, last, waiting));
            self.engine.commit(batch).await?;
        }
        Ok(())
    }

    /// One firing: a run under the workflow's strategy, or the reason there is none, written
    /// with the firing record and the cursor.
    #[allow(clippy::too_many_arguments)]
    async fn fire(
        &self,
        workflow: &Arc<crate::Workflow>,
        entry: &WorkflowEntry,
        index: usize,
        trigger: &TriggerDef,
        trigger_name: Value,
        seen: Option<(&'static str, Value)>,
        description: String,
        firing: FiringRecord,
        cursor: Cursor,
    ) -> Result<(), EngineError> {
        let id = workflow.id().to_owned();
        let now = self.engine.shared().clock.now_ms();
        let mut refusal = (!entry.enabled).then(|| "the workflow is disabled".to_string());
        let mut params = IndexMap::new();
        if refusal.is_none() {
            let scope = TriggerScope::new(workflow, trigger_name, seen, now);
            for (name, value) in &trigger.params {
                match evaluate_value(value, &scope) {
                    Ok(v) => {
                        params.insert(name.clone(), v);
                    }
                    Err(e) => {
                        refusal = Some(format!("params.{name}: {e}"));
                        break;
                    }
                }
            }
        }
        if let Some(why) = refusal {
            let mut batch = Batch::default();
            write_firing(firing, cursor)(Err(&why), &mut batch);
            tracing::info!(workflow = %id, trigger = index, reason = %why, "trigger fired, no run");
            return Ok(self.engine.commit(batch).await?);
        }
        let initiator = match firing.signal_id {
            Some(_) => Initiator::Signal,
            None => Initiator::Cron,
        };
        let start = Start {
            workflow: workflow.clone(),
            params,
            version: Some(entry.active_version),
            request_id: None,
            trigger: Some(description),
            origin: Origin { initiator, scheduled_ms: Some(firing.scheduled_ms) },
        };
        let retry = (firing.clone(), cursor.clone());
        match self.engine.submit(start, Box::new(write_firing(firing, cursor))).await {
            Ok(Admitted::Started(run) | Admitted::Queued(run) | Admitted::Existing(run)) => {
                tracing::info!(workflow = %id, trigger = index, %run, "trigger fired");
                Ok(())
            }
            Ok(Admitted::Refused { running }) => {
                tracing::info!(workflow = %id, trigger = index, %running, "trigger fired, refused by first_only");
                Ok(())
            }
            // The start itself is wrong (a parameter): recorded, so the trigger moves on.
            Err(
                e @ (EngineError::UnknownParam { .. }
                | EngineError::BadParam { .. }
                | EngineError::MissingSecret { .. }
                | EngineError::MissingParam { .. }
                | EngineError::Definition(_)),
            ) => {
                let mut batch = Batch::default();
                write_firing(retry.0, retry.1)(Err(&e.to_string()), &mut batch);
                Ok(self.engine.commit(batch).await?)
            }
            Err(e) => Err(e),
        }
    }
}

/// Writes a firing with its outcome (the run, or why none started) and the trigger's cursor.
fn write_firing(
    firing: FiringRecord,
    cursor: Cursor,
) -> impl Fn(Result<&str, &str>, &mut Batch) + Send + Sync {
    move |outcome, batch| {
        let firing = match outcome {
            Ok(run) => FiringRecord { run_id: Some(run.to_owned()), ..firing.clone() },
            Err(why) => FiringRecord { reason: Some(why.to_owned()), ..firing.clone() },
        };
        put_firing(batch, &firing);
        put_cursor(batch, &firing.workflow_id, firing.trigger, &cursor);
    }
}

fn misfire_name(m: Misfire) -> &'static str {
    match m {
        Misfire::Skip => "skip",
        Misfire::RunOnce => "run_once",
        Misfire::RunAll => "run_all",
    }
}

fn format_ms(ms: u64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ms.to_string())
}

/// `signal` in a trigger's expressions: the signal's params, its `name` and `id`.
fn signal_value(signal: &SignalRecord) -> Value {
    let mut map: serde_json::Map<String, Value> = signal.params.clone().into_iter().collect();
    map.insert("name".into(), Value::String(signal.name.clone()));
    map.insert("id".into(), Value::String(signal.id.clone()));
    Value::Object(map)
}

/// What a trigger's `match` and `params` see: `trigger`, the signal (`signal`, or
/// `signals` for joined ones) and the workflow's default parameters.
struct TriggerScope<'a> {
    workflow: &'a crate::Workflow,
    trigger: Value,
    seen: Option<(&'static str, Value)>,
    now_ms: u64,
}

impl<'a> TriggerScope<'a> {
    fn new(
        workflow: &'a crate::Workflow,
        trigger: Value,
        seen: Option<(&'static str, Value)>,
        now_ms: u64,
    ) -> Self {
        TriggerScope { workflow, trigger, seen, now_ms }
    }
}

impl Scope for TriggerScope<'_> {
    fn name(&self, name: &str) -> Option<Value> {
        match (name, &self.seen) {
            ("trigger", _) => Some(self.trigger.clone()),
            (name, Some((seen, value))) if *seen == name => Some(value.clone()),
            _ => self.workflow.def().params.get(name).cloned(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.now_ms
    }
}

/// How long after its cron times trigger `index` of `workflow` fires: under its `jitter`,
/// the same for every time and on every engine (drawn from the workflow id and the place).
fn jitter_ms(workflow: &str, index: usize, trigger: &TriggerDef) -> u64 {
    let bound = trigger.jitter.as_ref().and_then(|j| j.parse().ok()).map(|d| d.as_millis() as u64);
    let Some(bound) = bound.filter(|&b| b > 0) else { return 0 };
    let hash = blake3::hash(format!("{workflow}/{index}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first) % bound
}

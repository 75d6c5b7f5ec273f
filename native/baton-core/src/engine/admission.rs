//! Run strategies: whether a new run of a workflow starts now, waits in the queue, is
//! refused, or replaces the run going on. Every start goes through [`Engine::submit`] (by
//! hand, by id, by a trigger), and every end of a top-level run through
//! [`Engine::run_ended`], which admits the next queued runs.
//!
//! Decisions count the runs in the store, under one lock, so that concurrent starts and ends
//! never admit more than the strategy allows. Engines sharing a database hold no common
//! lock: each decision also takes the workflow's turn (a counter it bumps, expecting the
//! value it read), so that of two engines deciding at once one writes, and the other
//! decides again on what the first wrote. A queued run is stored QUEUED, in the
//! unfinished runs and in `Table::Queue` (workflow id + run id, so in start order); it
//! becomes CREATED durably before its driver starts.

use super::records::{self, RunRecord};
use super::{merge_params, next_run_id, Engine, EngineError, RunStatus};
use crate::dag::Workflow;
use crate::model::RunStrategy;
use crate::store::{Batch, Store, StoreError, Table};
use indexmap::IndexMap;
use serde_json::Value;
use std::sync::Arc;

/// How to start a registered workflow.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Overrides of the workflow's parameters.
    pub params: IndexMap<String, Value>,
    /// The version to run (default: the active one).
    pub version: Option<u32>,
    /// Makes the start idempotent: a request id used before returns that start's run.
    pub request_id: Option<String>,
}

/// A start to decide on.
pub(crate) struct Start {
    pub(crate) workflow: Arc<Workflow>,
    pub(crate) params: IndexMap<String, Value>,
    pub(crate) version: Option<u32>,
    pub(crate) request_id: Option<String>,
    /// What fired, for a trigger.
    pub(crate) trigger: Option<String>,
    /// Who or what starts the run, and when it was due.
    pub(crate) origin: Origin,
}

/// Who or what starts a run, and when its trigger was due (see [`RunRecord::context`]).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Origin {
    pub(crate) initiator: super::records::Initiator,
    pub(crate) scheduled_ms: Option<u64>,
}

/// What became of a start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Admitted {
    Started(String),
    Queued(String),
    /// The request id was used before, by this run.
    Existing(String),
    /// `first_only`: this run is going on (or waiting).
    Refused {
        running: String,
    },
}

/// Written with a start's decision, in the same batch: the run id, or why none started.
pub(crate) type Record<'a> = Box<dyn Fn(Result<&str, &str>, &mut Batch) + Send + Sync + 'a>;

/// Times a decision is made again after another engine decided first.
const TURNS: usize = 20;

fn queue_prefix(workflow_id: &str) -> Vec<u8> {
    let mut key = workflow_id.as_bytes().to_vec();
    key.push(0);
    key
}

fn queue_key(workflow_id: &str, run_id: &str) -> Vec<u8> {
    let mut key = queue_prefix(workflow_id);
    key.extend_from_slice(run_id.as_bytes());
    key
}

/// Where a `strict_sequential` workflow notes the failed run that holds its queue. Queue
/// entries are under `id \0`, so `id \1` is not among them.
fn blocked_key(workflow_id: &str) -> Vec<u8> {
    let mut key = workflow_id.as_bytes().to_vec();
    key.push(1);
    key
}

/// Ids of the queued runs of a workflow, in start order.
fn queued_runs(store: &dyn Store, workflow_id: &str) -> Result<Vec<String>, StoreError> {
    let prefix = queue_prefix(workflow_id);
    let mut ids = Vec::new();
    store.scan(Table::Queue, &prefix, &mut |key, _| {
        ids.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
        true
    })?;
    Ok(ids)
}

/// Ids of the workflow's top-level runs that are unfinished and not queued: they hold a
/// place, whether driven here or waiting for `recover`.
fn occupying_runs(store: &dyn Store, workflow_id: &str) -> Result<Vec<String>, StoreError> {
    let mut ids = Vec::new();
    for id in records::active_run_ids(store)? {
        if let Some(run) = records::get_run(store, &id)? {
            if run.workflow_id == workflow_id
                && run.parent.is_none()
                && run.status != RunStatus::Queued
            {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Where a workflow's turn is counted (`id \2`: neither a queue entry nor the blocked key).
fn turn_key(workflow_id: &str) -> Vec<u8> {
    let mut key = workflow_id.as_bytes().to_vec();
    key.push(2);
    key
}

/// A workflow's turn, read before anything a decision reads: a decision that writes it
/// applies only if no other decision on the workflow was written since.
struct Turn {
    key: Vec<u8>,
    seen: Option<Vec<u8>>,
}

impl Turn {
    fn read(store: &dyn Store, workflow_id: &str) -> Result<Turn, StoreError> {
        let key = turn_key(workflow_id);
        let seen = store.get(Table::Queue, &key)?;
        Ok(Turn { key, seen })
    }

    /// Adds the next turn to a decision's batch; a later decision of the same pass expects
    /// that one.
    fn take(&mut self, batch: &mut Batch) {
        let turn = self.seen.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok());
        let next = (turn.map_or(0, u64::from_be_bytes) + 1).to_be_bytes().to_vec();
        batch.put(Table::Queue, self.key.clone(), next.clone());
        batch.expect(Table::Queue, self.key.clone(), self.seen.replace(next));
    }
}

/// Runs `decide` again while another engine's decision on the same workflow came first.
macro_rules! in_turn {
    ($decide:expr) => {{
        let mut tries = 0;
        loop {
            match $decide {
                Err(EngineError::Store(StoreError::Conflict)) if tries < TURNS => {
                    tries += 1;
                    tokio::task::yield_now().await;
                }
                result => break result,
            }
        }
    }};
}

fn blocked_by(store: &dyn Store, workflow_id: &str) -> Result<Option<String>, StoreError> {
    Ok(store
        .get(Table::Queue, &blocked_key(workflow_id))?
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// Runs of a workflow going on at once under its strategy.
pub(crate) fn capacity(workflow: &Workflow) -> usize {
    match workflow.def().run_strategy {
        RunStrategy::Parallel => workflow.def().max_concurrent_runs.unwrap_or(usize::MAX),
        _ => 1,
    }
}

impl Engine {
    /// Starts a run of a registered workflow: the active version, or `options.version`.
    /// With a `request_id` used before, returns that start's run and starts nothing. The
    /// run may wait in the queue (see the workflow's `run_strategy`); with `first_only`
    /// and a run going on, fails with [`EngineError::AlreadyRunning`].
    pub async fn start_with(&self, id: &str, options: StartOptions) -> Result<String, EngineError> {
        self.start_from(id, options, Origin::default()).await
    }

    /// [`start_with`](Engine::start_with), for a start that is not a person's.
    pub(crate) async fn start_from(
        &self,
        id: &str,
        options: StartOptions,
        origin: Origin,
    ) -> Result<String, EngineError> {
        let (workflow, version) = match options.version {
            Some(version) => {
                (Arc::new(super::registry::version_workflow(self.shared(), id, version)?), version)
            }
            None => {
                let entry = self.entry(id)?;
                (super::registry::registered_workflow(self.shared(), id)?, entry.active_version)
            }
        };
        let start = Start {
            workflow,
            params: options.params,
            version: Some(version),
            request_id: options.request_id,
            trigger: None,
            origin,
        };
        self.start_outcome(start).await
    }

    /// A start by hand: its run id, or an error when the strategy refuses it.
    pub(crate) async fn start_outcome(&self, start: Start) -> Result<String, EngineError> {
        let workflow = start.workflow.id().to_owned();
        match self.submit(start, Box::new(|_, _| {})).await? {
            Admitted::Started(id) | Admitted::Queued(id) | Admitted::Existing(id) => Ok(id),
            Admitted::Refused { running } => {
                Err(EngineError::AlreadyRunning { workflow, run_id: running })
            }
        }
    }

    /// Decides on a start under the workflow's strategy and makes the decision durable,
    /// with what `record` adds, before acting on it.
    pub(crate) async fn submit(
        &self,
        start: Start,
        record: Record<'_>,
    ) -> Result<Admitted, EngineError> {
        let shared = self.shared().clone();
        // Unlimited parallel runs need no count nor lock (the common case, and the one
        // that starts many runs at once): their batches still share flushes.
        let unlimited = capacity(&start.workflow) == usize::MAX && start.request_id.is_none();
        let _deciding = match unlimited {
            true => None,
            false => Some(shared.triggers.admission.lock().await),
        };
        in_turn!(self.submit_once(&start, &record, unlimited).await)
    }

    async fn submit_once(
        &self,
        start: &Start,
        record: &Record<'_>,
        unlimited: bool,
    ) -> Result<Admitted, EngineError> {
        let shared = self.shared().clone();
        let store = shared.store.as_ref();
        let wf = start.workflow.clone();
        let now = shared.clock.now_ms();
        let mut run = RunRecord::created(next_run_id(), &wf, String::new(), IndexMap::new(), now);
        run.version = start.version;
        run.request_id = start.request_id.clone();
        run.trigger = start.trigger.clone();
        run.initiator = start.origin.initiator;
        run.scheduled_ms = start.origin.scheduled_ms;
        let mut params = merge_params(wf.def(), start.params.clone())?;
        super::compute_params(&wf, &mut params, &run.context(), now)?;
        if let Some(request) = &start.request_id {
            if let Some(run_id) = store.get(Table::Requests, request.as_bytes())? {
                return Ok(Admitted::Existing(String::from_utf8_lossy(&run_id).into_owned()));
            }
        }
        let id = wf.id();
        let strategy = wf.def().run_strategy;
        let mut turn = if unlimited { None } else { Some(Turn::read(store, id)?) };
        let occupying = if unlimited { Vec::new() } else { occupying_runs(store, id)? };
        let queued = queued_runs(store, id)?;
        let mut batch = Batch::default();
        if let Some(turn) = &mut turn {
            turn.take(&mut batch);
        }
        if strategy == RunStrategy::FirstOnly {
            if let Some(running) = occupying.first().or(queued.first()) {
                let reason = format!("run {running} is going on (run_strategy: first_only)");
                record(Err(&reason), &mut batch);
                self.commit(batch).await?;
                tracing::info!(workflow = %id, %running, "start refused: first_only");
                return Ok(Admitted::Refused { running: running.clone() });
            }
        }
        let mut superseded = Vec::new();
        if strategy == RunStrategy::LastOnly {
            // Waiting runs are replaced by this one; the ones going on are asked to stop.
            for queued_id in &queued {
                if let Some(mut run) = records::get_run(store, queued_id)? {
                    run.set_status(RunStatus::Stopped)?;
                    run.ended_ms = Some(shared.clock.now_ms());
                    run.error = Some("replaced by a newer run (run_strategy: last_only)".into());
                    records::put_run(&mut batch, &run);
                    batch.delete(Table::Queue, queue_key(id, queued_id));
                }
            }
            superseded = occupying.clone();
        }
        let waiting = if strategy == RunStrategy::LastOnly { 0 } else { queued.len() };
        let admit_now =
            waiting == 0 && occupying.len() < capacity(&wf) && blocked_by(store, id)?.is_none();

        run.definition = records::put_definition(store, &mut batch, &wf)?;
        run.params = params;
        super::secrets::keep(&shared.sealer, &mut batch, &mut run, wf.def().secrets.clone())?;
        let owner = match admit_now {
            true => self.own_new(&mut batch, &mut run),
            false => {
                run = run.queued();
                batch.put(Table::Queue, queue_key(id, &run.id), Vec::new());
                None
            }
        };
        records::put_run(&mut batch, &run);
        if let Some(request) = &start.request_id {
            // Across engines, the first start with this id wins; the others find its run.
            batch.put(Table::Requests, request.as_bytes(), run.id.as_bytes());
            batch.expect(Table::Requests, request.as_bytes(), None);
        }
        record(Ok(&run.id), &mut batch);
        match self.commit(batch).await {
            Err(StoreError::Conflict) if start.request_id.is_some() => {
                let request = start.request_id.as_deref().unwrap_or_default();
                if let Some(run_id) = store.get(Table::Requests, request.as_bytes())? {
                    return Ok(Admitted::Existing(String::from_utf8_lossy(&run_id).into_owned()));
                }
                return Err(StoreError::Conflict.into());
            }
            result => result?,
        }
        let run_id = run.id.clone();
        for old in superseded {
            match self
                .stop(&old, &format!("replaced by run {run_id} (run_strategy: last_only)"))
                .await
            {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(run = %old, error = %e, "cannot stop the run a last_only start replaces")
                }
            }
        }
        if admit_now {
            tracing::info!(run = %run_id, workflow = %id, steps = run.step_count, "run created");
            if let Some(owner) = owner {
                self.spawn_driver(wf, run, owner)?;
            }
            Ok(Admitted::Started(run_id))
        } else {
            tracing::info!(run = %run_id, workflow = %id, strategy = strategy.name(), "run queued");
            Ok(Admitted::Queued(run_id))
        }
    }

    /// A top-level run ended: a failed `strict_sequential` run holds the queue; otherwise
    /// the next queued runs go.
    pub(crate) async fn run_ended(
        &self,
        run: &RunRecord,
        strategy: RunStrategy,
        limited: bool,
    ) -> Result<(), EngineError> {
        let shared = self.shared().clone();
        let _deciding = shared.triggers.admission.lock().await;
        if strategy == RunStrategy::StrictSequential && run.status == RunStatus::Failed {
            in_turn!({
                let mut batch = Batch::default();
                Turn::read(shared.store.as_ref(), &run.workflow_id)?.take(&mut batch);
                batch.put(Table::Queue, blocked_key(&run.workflow_id), run.id.as_bytes());
                self.commit(batch).await.map_err(EngineError::from)
            })?;
            tracing::warn!(workflow = %run.workflow_id, run = %run.id, "a failed run holds the queue (strict_sequential) until unblocked");
            return Ok(());
        }
        in_turn!(self.admit_queued(&run.workflow_id, limited).await)
    }

    /// Lets the queue of a `strict_sequential` workflow held by a failed run go on.
    pub async fn unblock(&self, workflow_id: &str) -> Result<(), EngineError> {
        let shared = self.shared().clone();
        let _deciding = shared.triggers.admission.lock().await;
        if let Some(run) = blocked_by(shared.store.as_ref(), workflow_id)? {
            in_turn!({
                let mut batch = Batch::default();
                Turn::read(shared.store.as_ref(), workflow_id)?.take(&mut batch);
                batch.delete(Table::Queue, blocked_key(workflow_id));
                self.commit(batch).await.map_err(EngineError::from)
            })?;
            tracing::info!(workflow = %workflow_id, %run, "queue unblocked");
        }
        in_turn!(self.admit_queued(workflow_id, true).await)
    }

    /// The failed run holding a `strict_sequential` workflow's queue, if any.
    pub fn blocked_by(&self, workflow_id: &str) -> Result<Option<String>, EngineError> {
        Ok(blocked_by(self.shared().store.as_ref(), workflow_id)?)
    }

    /// Takes a QUEUED run out of its queue, ending it with `status` (STOPPED or KILLED);
    /// false if it is not queued (any more). Under the admission lock, so that it is never
    /// admitted and ended at once.
    pub(crate) async fn dequeue(
        &self,
        run_id: &str,
        status: RunStatus,
        reason: &str,
    ) -> Result<bool, EngineError> {
        let shared = self.shared().clone();
        let _deciding = shared.triggers.admission.lock().await;
        let store = shared.store.as_ref();
        in_turn!({
            let Some(workflow_id) = records::get_run(store, run_id)?.map(|r| r.workflow_id) else {
                return Ok(false);
            };
            let mut turn = Turn::read(store, &workflow_id)?;
            let Some(mut run) = records::get_run(store, run_id)? else { return Ok(false) };
            if run.status != RunStatus::Queued {
                return Ok(false);
            }
            run.set_status(status)?;
            run.ended_ms = Some(shared.clock.now_ms());
            run.error = Some(reason.to_owned());
            let mut batch = Batch::default();
            turn.take(&mut batch);
            records::put_run(&mut batch, &run);
            batch.delete(Table::Queue, queue_key(&run.workflow_id, run_id));
            self.commit(batch).await.map_err(EngineError::from)
        })?;
        tracing::info!(run = %run_id, %status, "queued run taken out of its queue");
        Ok(true)
    }

    /// Admits queued runs of a workflow while its strategy has room. Call with the
    /// admission lock held.
    async fn admit_queued(&self, workflow_id: &str, limited: bool) -> Result<(), EngineError> {
        let shared = self.shared().clone();
        let store = shared.store.as_ref();
        let mut turn = Turn::read(store, workflow_id)?;
        let queued = queued_runs(store, workflow_id)?;
        if queued.is_empty() || blocked_by(store, workflow_id)?.is_some() {
            // Taken all the same when the strategy limits runs: a start that read the
            // queue before this end and queues its run must decide again, and admits it.
            if !limited {
                return Ok(());
            }
            let mut batch = Batch::default();
            turn.take(&mut batch);
            return Ok(self.commit(batch).await?);
        }
        let mut occupying = occupying_runs(store, workflow_id)?.len();
        for run_id in queued {
            let Some(mut run) = records::get_run(store, &run_id)? else { continue };
            let def = records::get_definition(store, &run.definition)?;
            let wf = match self.compile(def) {
                Ok(wf) => Arc::new(wf),
                Err(e) => {
                    tracing::error!(run = %run_id, error = %e, "a queued run does not compile here; it stays queued");
                    return Ok(());
                }
            };
            if occupying >= capacity(&wf) {
                return Ok(());
            }
            run.set_status(RunStatus::Created)?;
            let mut batch = Batch::default();
            turn.take(&mut batch);
            let owner = self.own_new(&mut batch, &mut run);
            records::put_run(&mut batch, &run);
            batch.delete(Table::Queue, queue_key(workflow_id, &run_id));
            self.commit(batch).await?;
            tracing::info!(run = %run_id, workflow = %workflow_id, "queued run admitted");
            if let Some(owner) = owner {
                self.spawn_driver(wf, run, owner)?;
            }
            occupying += 1;
        }
        Ok(())
    }

    /// Admits the queued runs of every workflow that has some, as their strategies allow:
    /// after [`recover`](Engine::recover), which leaves queued runs alone.
    pub(crate) async fn admit_all_queued(&self) -> Result<(), EngineError> {
        let mut workflows = std::collections::BTreeSet::new();
        self.shared().store.scan(Table::Queue, b"", &mut |key, _| {
            if let Some(end) = key.iter().position(|b| *b == 0) {
                workflows.insert(String::from_utf8_lossy(&key[..end]).into_owned());
            }
            true
        })?;
        let _deciding = self.shared().triggers.admission.lock().await;
        for workflow in workflows {
            in_turn!(self.admit_queued(&workflow, true).await)?;
        }
        Ok(())
    }
}

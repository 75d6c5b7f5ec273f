//! The driver of one run: a task that owns the run's state, decides what runs next, and
//! writes every transition to the store before acting on it.
//!
//! Readiness is decided by counters: `remaining[i]` is the number of upstream steps of `i`
//! not yet over, so finishing a step costs time in its out-degree only.

use super::events;
use super::flow::{self, outputs_value, Names, Nest};
use super::records::{self, RunRecord, SignalRecord, StepRecord};
use super::state::{IllegalTransition, RunStatus, StepStatus};
use super::{EngineError, Event, Shared};
use crate::activity::Activity;
use crate::dag::Workflow;
use crate::expr::{evaluate_value, Scope, Template};
use crate::model::{Backoff, FailureMode, StepDef, Trigger};
use crate::steps::{Outputs, StatusHandle, StepContext, StepKind, StepOutcome};
use crate::store::Batch;
use futures_util::FutureExt;
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::{oneshot, watch};
use tokio_util::sync::CancellationToken;

/// Largest outputs of one step, serialized: they are stored and kept in memory for the
/// steps below.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// Transitions written per commit at most, so that a huge wave of inline steps is flushed
/// in pieces.
const MAX_BATCH: usize = 50_000;

/// What the tasks around a run tell its driver.
pub(crate) enum Msg {
    Finished {
        step: usize,
        attempt: u32,
        outcome: StepOutcome,
        retryable: bool,
    },
    RetryDue {
        step: usize,
    },
    /// A running attempt waits (`Some(reason)`) or runs again (`None`).
    Waiting {
        step: usize,
        attempt: u32,
        reason: Option<String>,
    },
    /// Stop the run: running steps are asked to stop, and the run ends STOPPED.
    Stop {
        reason: String,
    },
    /// Kill the run: running steps are KILLED at once, and the run ends KILLED.
    Kill,
    /// An operator's action; the reply comes once its effect is durable.
    Action {
        action: Action,
        reply: Reply,
    },
}

/// What an operator asks of a run driven here (see `engine/actions.rs`).
#[derive(Debug)]
pub(crate) enum Action {
    Pause,
    Resume,
    Skip(String),
    Retry(String),
    Continue(String),
}

pub(crate) type Reply = oneshot::Sender<Result<(), EngineError>>;

/// The `waiting_for` of a step stopped at a breakpoint.
pub(crate) const AT_BREAKPOINT: &str = "breakpoint";

/// The tokens of a running attempt: `cancel` asks it to stop (with cleanup), `kill` to
/// stop at once; `cancel` is a child of `kill`, so a kill also cancels.
#[derive(Clone)]
struct Tokens {
    cancel: CancellationToken,
    kill: CancellationToken,
}

impl Tokens {
    fn new() -> Self {
        let kill = CancellationToken::new();
        Tokens { cancel: kill.child_token(), kill }
    }
}

/// How a step that is over counts for the steps below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// SUCCEEDED, or FAILED with `ignore_failure`.
    Success,
    Failure,
    /// SKIPPED, STOPPED or KILLED.
    NotRun,
}

/// What becomes of a PENDING step.
enum Decision {
    Wait,
    Run,
    Skip(String),
    /// It cannot be decided (its `when` does not evaluate): the step fails.
    Fail(String),
}

/// An attempt to start once the batch that records it is durable.
struct Launch {
    step: usize,
    attempt: u32,
    started_ms: u64,
    tokens: Tokens,
}

/// Where a run sits: top level, or inside a step of another run.
pub(crate) struct Frame {
    /// Names visible from the enclosing runs.
    pub(crate) outer: Arc<Names>,
    /// Fires when the enclosing step wants the run to stop.
    pub(crate) stop: CancellationToken,
    /// Fires when the enclosing step is killed: the run is killed too.
    pub(crate) kill: CancellationToken,
    /// 0 for a top-level run.
    pub(crate) depth: usize,
}

impl Frame {
    pub(super) fn top(shared: &Shared) -> Self {
        Frame {
            outer: Arc::new(Names::empty(shared.clock.clone())),
            stop: CancellationToken::new(),
            kill: CancellationToken::new(),
            depth: 0,
        }
    }
}

pub(crate) struct Driver {
    shared: Arc<Shared>,
    frame: Frame,
    /// Stopped from outside (its parent step stopped): the run ends STOPPED.
    stopped: bool,
    /// Killed: the run ends KILLED.
    killed: bool,
    /// PAUSED: nothing new starts.
    paused: bool,
    /// Signals emitted in the batch being written: waiters are told once it is durable.
    emitted: bool,
    wf: Arc<Workflow>,
    run: RunRecord,
    params: Arc<IndexMap<String, Value>>,
    status: Vec<StepStatus>,
    attempt: Vec<u32>,
    /// Upstream steps not over yet.
    remaining: Vec<u32>,
    /// Steps that FAILED with `ignore_failure`: downstream they count as succeeded.
    ignored: HashSet<usize>,
    /// Outputs of finished steps that have any.
    outputs: HashMap<usize, Outputs>,
    /// Start of the current attempt, for steps running or waiting to retry.
    started: HashMap<usize, u64>,
    running: HashMap<usize, Tokens>,
    /// Steps to launch (READY, or RETRYING and due), in order.
    ready: VecDeque<usize>,
    /// READY steps of inline kinds: they need no slot.
    inline_ready: Vec<usize>,
    over: usize,
    max_parallel: usize,
    /// Why the run failed, beyond its steps (a timeout).
    first_error: Option<String>,
    /// Steps that failed the run, in the order they failed, with the run's error for each:
    /// a step retried or skipped by an operator is forgotten.
    failures: IndexMap<usize, String>,
    /// SKIPPED by an operator: downstream they count as succeeded.
    operator_skipped: HashSet<usize>,
    /// Running steps an operator skipped: skipped once their attempt has stopped.
    skip_requested: HashMap<usize, Reply>,
    /// Replies to actions, sent once the batch is durable.
    replies: Vec<Reply>,
    /// Steps with a breakpoint in this run's workflow, and the breakpoint generation
    /// they were read at.
    breakpoints: HashSet<usize>,
    breakpoints_seen: u64,
    /// Steps WAITING at a breakpoint.
    at_breakpoint: HashSet<usize>,
    /// Steps continued from a breakpoint: they launch without stopping there again.
    passed: HashSet<usize>,
    /// READY steps waiting for a slot of one of their tags.
    blocked: VecDeque<usize>,
    /// Steps holding tag slots.
    holding: HashSet<usize>,
    /// Changes when tag slots free; subscribed once a step waits for one.
    slots: Option<watch::Receiver<u64>>,
    /// Whether events are written to the timeline (not for loop iterations).
    durable_events: bool,
    /// The sequence number of the next event.
    seq: u64,
    /// Why the run is stopping: its running steps are being stopped, nothing new starts.
    stopping: Option<String>,
    batch: Batch,
    launches: Vec<Launch>,
    timers: Vec<(usize, u64)>,
    events: Vec<Event>,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
}

impl Driver {
    /// A driver for `run`, with its state rebuilt from the step records in the store.
    pub(crate) fn new(
        shared: Arc<Shared>,
        wf: Arc<Workflow>,
        run: RunRecord,
        frame: Frame,
    ) -> Result<Self, EngineError> {
        let n = wf.len();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut d = Driver {
            max_parallel: wf.max_parallel(),
            params: Arc::new(run.params.clone()),
            status: vec![StepStatus::Pending; n],
            attempt: vec![0; n],
            remaining: (0..n).map(|i| wf.upstream_count(i) as u32).collect(),
            ignored: HashSet::new(),
            outputs: HashMap::new(),
            started: HashMap::new(),
            running: HashMap::new(),
            ready: VecDeque::new(),
            inline_ready: Vec::new(),
            over: 0,
            first_error: None,
            failures: IndexMap::new(),
            operator_skipped: HashSet::new(),
            skip_requested: HashMap::new(),
            replies: Vec::new(),
            breakpoints: HashSet::new(),
            breakpoints_seen: u64::MAX,
            at_breakpoint: HashSet::new(),
            passed: HashSet::new(),
            blocked: VecDeque::new(),
            holding: HashSet::new(),
            slots: None,
            durable_events: !matches!(
                run.parent,
                Some(super::records::ParentLink { iteration: Some(_), .. })
            ),
            seq: 0,
            stopping: None,
            batch: Batch::default(),
            launches: Vec::new(),
            timers: Vec::new(),
            events: Vec::new(),
            tx,
            rx,
            frame,
            stopped: false,
            killed: false,
            paused: run.status == RunStatus::Paused,
            emitted: false,
            shared,
            wf,
            run,
        };
        d.restore()?;
        Ok(d)
    }

    /// Applies the stored step records: finished steps count as over, a step found RUNNING
    /// is launched again with the same attempt (and so the same idempotency key).
    fn restore(&mut self) -> Result<(), EngineError> {
        let mut records = Vec::new();
        // A run not started yet has no step records, but for the steps a restart kept: a
        // fresh iteration costs no read.
        if self.run.status != RunStatus::Created || self.run.restarted_from.is_some() {
            records::scan_steps(self.shared.store.as_ref(), &self.run.id, |i, r| {
                records.push((i, r))
            })?;
        }
        if self.durable_events && self.run.status != RunStatus::Created {
            self.seq = events::next_seq(self.shared.store.as_ref(), &self.run.id)?;
        }
        let mut over = Vec::new();
        let mut relaunch = Vec::new();
        for (i, record) in records {
            if i >= self.status.len() {
                continue;
            }
            self.status[i] = record.status;
            self.attempt[i] = record.attempt;
            match record.status {
                StepStatus::Succeeded => {
                    if !record.outputs.is_empty() {
                        self.outputs.insert(i, record.outputs);
                    }
                    over.push(i);
                }
                StepStatus::Failed => {
                    if record.failure_ignored {
                        self.ignored.insert(i);
                    } else {
                        self.note_failure(i, record.error.as_deref().unwrap_or("failed"));
                        if self.wf.step(i).failure_mode == FailureMode::FailImmediately {
                            self.stopping.get_or_insert_with(|| {
                                format!("step `{}` failed", self.wf.step(i).id)
                            });
                        }
                    }
                    over.push(i);
                }
                StepStatus::Skipped => {
                    if record.skipped_by_operator {
                        self.operator_skipped.insert(i);
                    }
                    over.push(i);
                }
                StepStatus::Stopped | StepStatus::Killed => over.push(i),
                // A step stays at its breakpoint until it is continued.
                StepStatus::Waiting if record.waiting_for.as_deref() == Some(AT_BREAKPOINT) => {
                    self.at_breakpoint.insert(i);
                }
                StepStatus::Running | StepStatus::Waiting => {
                    let started = record.started_ms.unwrap_or_else(|| self.shared.clock.now_ms());
                    relaunch.push((i, record.attempt.max(1), started));
                }
                StepStatus::Retrying => {
                    self.started.insert(i, record.started_ms.unwrap_or(0));
                    self.timers.push((i, record.retry_at_ms.unwrap_or(0)));
                }
                // Only a step continued from a breakpoint has a READY record.
                StepStatus::Ready => {
                    self.passed.insert(i);
                    if self.kind(i).is_some_and(|k| k.is_inline()) {
                        self.inline_ready.push(i);
                    } else {
                        self.ready.push_back(i);
                    }
                }
                StepStatus::Pending => {}
            }
        }
        for i in over {
            self.over += 1;
            for d in self.wf.clone().downstream(i) {
                self.remaining[d] -= 1;
            }
        }
        if self.stopping.is_some() {
            // The run was stopping when the process died: what was running is stopped.
            for (i, attempt, _) in relaunch.drain(..) {
                self.status[i] = StepStatus::Stopped;
                let mut record = StepRecord::new(StepStatus::Stopped, attempt);
                record.error = self.stopping.clone();
                record.ended_ms = Some(self.shared.clock.now_ms());
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.over += 1;
            }
        }
        for (i, attempt, started_ms) in relaunch {
            tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, attempt, "relaunching a step that was running");
            // It was running: it takes its tag slots whatever the limits.
            let tags = &self.wf.step(i).options().tags;
            if !tags.is_empty() {
                self.shared.limits.force_acquire(tags);
                self.holding.insert(i);
            }
            let tokens = Tokens::new();
            self.started.insert(i, started_ms);
            self.running.insert(i, tokens.clone());
            self.launches.push(Launch { step: i, attempt, started_ms, tokens });
        }
        for i in 0..self.status.len() {
            if self.status[i] == StepStatus::Pending && self.settle(i, None)? {
                self.complete(i)?;
            }
        }
        Ok(())
    }

    /// Where to send the driver messages.
    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<Msg> {
        self.tx.clone()
    }

    /// Runs to the end; returns the final run record.
    pub(crate) async fn drive(mut self) -> Result<RunRecord, EngineError> {
        if self.run.status == RunStatus::Created {
            let now = self.shared.clock.now_ms();
            self.run.set_status(RunStatus::Running)?;
            self.run.started_ms = Some(now);
            self.run.deadline_ms = self.wf.timeout().map(|t| now + t.as_millis() as u64);
            records::put_run(&mut self.batch, &self.run);
            self.event_run();
        }
        let deadline = self.run.deadline_ms;
        let mut timeout = match deadline {
            Some(at) => self.shared.clock.sleep_until(at),
            None => Box::pin(std::future::pending()),
        };
        loop {
            self.schedule()?;
            let done = self.over == self.status.len() && self.running.is_empty();
            if done {
                self.finish()?;
            }
            self.flush().await?;
            if done {
                return Ok(self.run.clone());
            }
            if self.can_schedule() {
                continue;
            }
            let slots = self.slots.as_mut().filter(|_| !self.blocked.is_empty());
            tokio::select! {
                msg = self.rx.recv() => {
                    // The driver holds a sender, so the channel never closes.
                    let Some(msg) = msg else { continue };
                    self.handle(msg)?;
                }
                _ = async { match slots { Some(rx) => { let _ = rx.changed().await; } None => std::future::pending().await } } => {
                    // Slots freed: steps waiting for one try again, before newer ones.
                    while let Some(i) = self.blocked.pop_back() {
                        self.ready.push_front(i);
                    }
                }
                _ = self.frame.kill.cancelled(), if !self.killed => {
                    self.kill()?;
                }
                _ = self.frame.stop.cancelled(), if !self.stopped => {
                    self.stopped = true;
                    if self.stopping.is_none() {
                        self.begin_stop("the parent step stopped".into())?;
                    }
                }
                _ = &mut timeout, if self.stopping.is_none() => {
                    let limit = self.wf.timeout().map(crate::model::format_duration).unwrap_or_default();
                    self.first_error = Some(format!("the run timed out after {limit}"));
                    self.begin_stop(format!("run timed out after {limit}"))?;
                }
                _ = self.shared.shutdown.cancelled() => {
                    // The records stay as they are: the next open relaunches these steps.
                    for tokens in self.running.values() {
                        tokens.cancel.cancel();
                    }
                    return Err(EngineError::Closed);
                }
            }
            while self.batch.len() < MAX_BATCH {
                match self.rx.try_recv() {
                    Ok(msg) => self.handle(msg)?,
                    Err(_) => break,
                }
            }
        }
    }

    fn can_schedule(&self) -> bool {
        (!self.paused && !self.inline_ready.is_empty())
            || (!self.paused
                && self.stopping.is_none()
                && !self.ready.is_empty()
                && self.running.len() < self.max_parallel)
            || (self.stopping.is_some() && self.running.is_empty() && self.over < self.status.len())
    }

    /// Completes inline steps and starts others while there are free slots.
    fn schedule(&mut self) -> Result<(), EngineError> {
        if self.stopping.is_some() {
            if self.running.is_empty() {
                self.sweep()?;
            }
            return Ok(());
        }
        if self.paused {
            return Ok(());
        }
        let generation = self.shared.breakpoints.generation();
        if generation != self.breakpoints_seen {
            self.breakpoints_seen = generation;
            self.breakpoints = self.shared.breakpoints.steps_of(&self.wf);
        }
        while self.batch.len() < MAX_BATCH {
            if let Some(i) = self.inline_ready.pop() {
                if self.stops_at_breakpoint(i) {
                    self.stop_at_breakpoint(i)?;
                    continue;
                }
                let now = self.shared.clock.now_ms();
                if let Err(error) = self.emit_signals(i) {
                    self.set(i, StepStatus::Running)?;
                    self.attempt[i] = 1;
                    self.finished(i, 1, StepOutcome::failure(error), false)?;
                    continue;
                }
                self.set(i, StepStatus::Succeeded)?;
                let mut record = StepRecord::new(StepStatus::Succeeded, 1);
                record.started_ms = Some(now);
                record.ended_ms = Some(now);
                self.attempt[i] = 1;
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.event_step(i, None);
                self.complete(i)?;
                continue;
            }
            if self.running.len() >= self.max_parallel {
                break;
            }
            let Some(i) = self.ready.pop_front() else { break };
            if !matches!(self.status[i], StepStatus::Ready | StepStatus::Retrying) {
                // Queued twice (a retry an operator asked for and a due timer): once is enough.
                continue;
            }
            if self.stops_at_breakpoint(i) {
                self.stop_at_breakpoint(i)?;
                continue;
            }
            // Costs nothing for a step without tags.
            let tags = &self.wf.step(i).options().tags;
            if !tags.is_empty() && !self.holding.contains(&i) {
                if !self.shared.limits.try_acquire(tags) {
                    if self.slots.is_none() {
                        // A slot freed since the try is seen at the next wait.
                        let mut rx = self.shared.limits.subscribe();
                        rx.mark_changed();
                        self.slots = Some(rx);
                    }
                    self.blocked.push_back(i);
                    continue;
                }
                self.holding.insert(i);
            }
            let attempt = self.attempt[i] + 1;
            self.launch(i, attempt)?;
        }
        Ok(())
    }

    /// Whether step `i`, about to launch for the first time, stops at a breakpoint.
    fn stops_at_breakpoint(&self, i: usize) -> bool {
        !self.breakpoints.is_empty()
            && self.status[i] == StepStatus::Ready
            && self.breakpoints.contains(&i)
            && !self.passed.contains(&i)
    }

    fn stop_at_breakpoint(&mut self, i: usize) -> Result<(), EngineError> {
        self.set(i, StepStatus::Waiting)?;
        self.at_breakpoint.insert(i);
        let mut record = StepRecord::new(StepStatus::Waiting, self.attempt[i]);
        record.waiting_for = Some(AT_BREAKPOINT.into());
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, Some(AT_BREAKPOINT.into()));
        tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, "step stopped at a breakpoint");
        Ok(())
    }

    /// Gives back the tag slots step `i` holds.
    fn release(&mut self, i: usize) {
        if self.holding.remove(&i) {
            self.shared.limits.release(&self.wf.step(i).options().tags);
        }
    }

    fn launch(&mut self, i: usize, attempt: u32) -> Result<(), EngineError> {
        let now = self.shared.clock.now_ms();
        self.set(i, StepStatus::Running)?;
        self.attempt[i] = attempt;
        self.started.insert(i, now);
        let mut record = StepRecord::new(StepStatus::Running, attempt);
        record.started_ms = Some(now);
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, None);
        let tokens = Tokens::new();
        self.running.insert(i, tokens.clone());
        self.launches.push(Launch { step: i, attempt, started_ms: now, tokens });
        Ok(())
    }

    /// Commits the batch, then does what it records: launches, timers, events.
    async fn flush(&mut self) -> Result<(), EngineError> {
        let batch = std::mem::take(&mut self.batch);
        // The commit runs on the store's thread: in motion, though this task waits.
        let committing = self.shared.activity.as_ref().map(|a| a.busy());
        self.shared.committer.commit(batch).await?;
        if std::mem::take(&mut self.emitted) {
            self.shared.signal_seq.send_modify(|n| *n += 1);
        }
        drop(committing);
        for launch in std::mem::take(&mut self.launches) {
            self.spawn_attempt(launch);
        }
        for (step, at) in std::mem::take(&mut self.timers) {
            let tx = self.tx.clone();
            let sleep = self.shared.clock.sleep_until(at);
            tokio::spawn(Activity::track(self.shared.activity.as_ref(), async move {
                sleep.await;
                let _ = tx.send(Msg::RetryDue { step });
            }));
        }
        for event in self.events.drain(..) {
            if let Some(listener) = &self.shared.listener {
                listener(&event);
            }
            // No subscriber is not an error; a slow one lags.
            let _ = self.shared.events.send(event);
        }
        for reply in self.replies.drain(..) {
            let _ = reply.send(Ok(()));
        }
        Ok(())
    }

    fn handle(&mut self, msg: Msg) -> Result<(), EngineError> {
        match msg {
            Msg::RetryDue { step } => {
                if self.status[step] == StepStatus::Retrying && self.stopping.is_none() {
                    self.ready.push_back(step);
                }
                Ok(())
            }
            Msg::Waiting { step, attempt, reason } => {
                if self.attempt[step] != attempt || !self.running.contains_key(&step) {
                    return Ok(());
                }
                let to = if reason.is_some() { StepStatus::Waiting } else { StepStatus::Running };
                if self.status[step] == to {
                    return Ok(());
                }
                self.set(step, to)?;
                let mut record = StepRecord::new(to, attempt);
                record.started_ms = self.started.get(&step).copied();
                record.waiting_for = reason.clone();
                records::put_step(&mut self.batch, &self.run.id, step, &record);
                self.event_step(step, reason);
                Ok(())
            }
            Msg::Stop { reason } => {
                self.stopped = true;
                if self.stopping.is_none() {
                    self.begin_stop(reason)?;
                }
                Ok(())
            }
            Msg::Kill => self.kill(),
            Msg::Action { action, reply } => match self.check(&action) {
                Err(refused) => {
                    let _ = reply.send(Err(refused));
                    Ok(())
                }
                Ok(step) => self.act(action, step, reply),
            },
            Msg::Finished { step, attempt, outcome, retryable } => {
                if self.attempt[step] != attempt || self.running.remove(&step).is_none() {
                    return Ok(());
                }
                self.release(step);
                if let Some(reply) = self.skip_requested.remove(&step) {
                    // An operator skipped it while it ran: it is skipped now it has stopped.
                    self.started.remove(&step);
                    self.operator_skip(step)?;
                    self.replies.push(reply);
                    return self.complete(step);
                }
                self.finished(step, attempt, outcome, retryable)
            }
        }
    }

    /// Refuses an action the run's state does not allow; gives the step it is about.
    fn check(&self, action: &Action) -> Result<Option<usize>, EngineError> {
        let run_refused = |action: &'static str, hint: &str| EngineError::IllegalAction {
            target: format!("run {}", self.run.id),
            action,
            state: if self.stopping.is_some() {
                "stopping".into()
            } else {
                self.run.status.to_string()
            },
            hint: hint.into(),
        };
        if self.stopping.is_some() {
            let name = match action {
                Action::Pause => "pause",
                Action::Resume => "resume",
                Action::Skip(_) => "skip a step of",
                Action::Retry(_) => "retry a step of",
                Action::Continue(_) => "continue a step of",
            };
            return Err(run_refused(name, " (a stopping run only ends)"));
        }
        let step = |id: &str| {
            self.wf.index_of(id).ok_or_else(|| EngineError::UnknownStep {
                run_id: self.run.id.clone(),
                step_id: id.into(),
                hint: crate::error::did_you_mean(
                    id,
                    (0..self.wf.len()).map(|i| self.wf.step(i).id.as_str()),
                ),
            })
        };
        let step_refused = |i: usize, action: &'static str, hint: &str| {
            let state = if self.at_breakpoint.contains(&i) {
                "WAITING at a breakpoint".into()
            } else {
                self.status[i].to_string()
            };
            EngineError::IllegalAction {
                target: format!("step `{}` of run {}", self.wf.step(i).id, self.run.id),
                action,
                state,
                hint: hint.into(),
            }
        };
        match action {
            Action::Pause if self.paused => Err(run_refused("pause", " already")),
            Action::Resume if !self.paused => {
                Err(run_refused("resume", " (only a PAUSED run can be resumed)"))
            }
            Action::Pause | Action::Resume => Ok(None),
            Action::Skip(id) => {
                let i = step(id)?;
                match self.status[i] {
                    StepStatus::Succeeded
                    | StepStatus::Skipped
                    | StepStatus::Stopped
                    | StepStatus::Killed => Err(step_refused(
                        i,
                        "skip",
                        " (only a step not over, or a FAILED one, can be skipped)",
                    )),
                    _ if self.skip_requested.contains_key(&i) => {
                        Err(step_refused(i, "skip", " (it is being skipped already)"))
                    }
                    _ => Ok(Some(i)),
                }
            }
            Action::Retry(id) => {
                let i = step(id)?;
                match self.status[i] {
                    StepStatus::Failed => Ok(Some(i)),
                    _ => Err(step_refused(i, "retry", " (only a FAILED step can be retried)")),
                }
            }
            Action::Continue(id) => {
                let i = step(id)?;
                if self.at_breakpoint.contains(&i) {
                    Ok(Some(i))
                } else {
                    Err(step_refused(i, "continue", ", not at a breakpoint"))
                }
            }
        }
    }

    /// Does a checked action; `reply` is answered once its effect is durable.
    fn act(
        &mut self,
        action: Action,
        step: Option<usize>,
        reply: Reply,
    ) -> Result<(), EngineError> {
        let i = step.unwrap_or(0);
        match action {
            Action::Pause | Action::Resume => {
                let pause = matches!(action, Action::Pause);
                self.run.set_status(if pause { RunStatus::Paused } else { RunStatus::Running })?;
                self.paused = pause;
                tracing::info!(run = %self.run.id, status = %self.run.status, "run paused or resumed");
                records::put_run(&mut self.batch, &self.run);
                self.event_run();
            }
            Action::Continue(_) => {
                self.at_breakpoint.remove(&i);
                self.passed.insert(i);
                self.set(i, StepStatus::Ready)?;
                records::put_step(
                    &mut self.batch,
                    &self.run.id,
                    i,
                    &StepRecord::new(StepStatus::Ready, self.attempt[i]),
                );
                self.event_step(i, None);
                if self.kind(i).is_some_and(|k| k.is_inline()) {
                    self.inline_ready.push(i);
                } else {
                    self.ready.push_front(i);
                }
            }
            Action::Retry(_) => {
                tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, "step retried by an operator");
                self.reopen(i)?;
                self.set(i, StepStatus::Retrying)?;
                let now = self.shared.clock.now_ms();
                let mut record = StepRecord::new(StepStatus::Retrying, self.attempt[i]);
                record.retry_at_ms = Some(now);
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.event_step(i, None);
                self.ready.push_back(i);
            }
            Action::Skip(_) => {
                tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, "step skipped by an operator");
                match self.status[i] {
                    StepStatus::Running | StepStatus::Waiting if self.running.contains_key(&i) => {
                        // Stopped first; skipped when its attempt reports back.
                        if let Some(tokens) = self.running.get(&i) {
                            tokens.cancel.cancel();
                        }
                        self.skip_requested.insert(i, reply);
                        return Ok(());
                    }
                    StepStatus::Failed => self.reopen(i)?,
                    StepStatus::Ready | StepStatus::Retrying => {
                        self.ready.retain(|&s| s != i);
                        self.inline_ready.retain(|&s| s != i);
                        self.blocked.retain(|&s| s != i);
                    }
                    _ => {}
                }
                self.at_breakpoint.remove(&i);
                self.operator_skip(i)?;
                self.complete(i)?;
            }
        }
        self.replies.push(reply);
        Ok(())
    }

    fn operator_skip(&mut self, i: usize) -> Result<(), EngineError> {
        self.set(i, StepStatus::Skipped)?;
        self.operator_skipped.insert(i);
        let mut record = StepRecord::new(StepStatus::Skipped, self.attempt[i]);
        record.error = Some("skipped by an operator".into());
        record.ended_ms = Some(self.shared.clock.now_ms());
        record.skipped_by_operator = true;
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, Some("skipped by an operator".into()));
        Ok(())
    }

    /// Undoes the end of FAILED step `i` (retried or skipped by an operator): the run
    /// forgets its failure, and the steps skipped below it are PENDING again, to be
    /// decided once it ends anew. Costs time in the steps below it only.
    fn reopen(&mut self, i: usize) -> Result<(), EngineError> {
        self.failures.shift_remove(&i);
        self.ignored.remove(&i);
        self.over -= 1;
        let wf = self.wf.clone();
        let mut work = vec![i];
        while let Some(s) = work.pop() {
            for d in wf.downstream(s) {
                self.remaining[d] += 1;
                if self.status[d] == StepStatus::Skipped && !self.operator_skipped.contains(&d) {
                    self.set(d, StepStatus::Pending)?;
                    self.over -= 1;
                    records::put_step(
                        &mut self.batch,
                        &self.run.id,
                        d,
                        &StepRecord::new(StepStatus::Pending, self.attempt[d]),
                    );
                    self.event_step(d, None);
                    work.push(d);
                }
            }
        }
        Ok(())
    }

    fn finished(
        &mut self,
        i: usize,
        attempt: u32,
        outcome: StepOutcome,
        retryable: bool,
    ) -> Result<(), EngineError> {
        let now = self.shared.clock.now_ms();
        let wf = self.wf.clone();
        let step = wf.step(i);
        let mut record = StepRecord::new(StepStatus::Succeeded, attempt);
        record.started_ms = self.started.remove(&i);
        record.ended_ms = Some(now);
        record.log_tail = outcome.log_tail;
        let result = outcome.result.and_then(|outputs| {
            let size = serde_json::to_vec(&outputs).map_or(0, |b| b.len());
            if size > MAX_OUTPUT_BYTES {
                Err(format!("the step's outputs take {size} bytes; the limit is {MAX_OUTPUT_BYTES} bytes per step"))
            } else {
                Ok(outputs)
            }
        });
        let error = match result {
            Ok(outputs) => {
                if !outputs.is_empty() {
                    self.outputs.insert(i, outputs.clone());
                }
                match self.emit_signals(i) {
                    Ok(()) => {
                        self.set(i, StepStatus::Succeeded)?;
                        record.outputs = outputs;
                        records::put_step(&mut self.batch, &self.run.id, i, &record);
                        self.event_step(i, None);
                        return self.complete(i);
                    }
                    Err(error) => {
                        self.outputs.remove(&i);
                        error
                    }
                }
            }
            Err(error) => error,
        };
        record.error = Some(error.clone());
        if self.stopping.is_some() {
            record.status = StepStatus::Stopped;
            self.set(i, StepStatus::Stopped)?;
            records::put_step(&mut self.batch, &self.run.id, i, &record);
            self.event_step(i, Some(error));
            self.over += 1;
            return Ok(());
        }
        let max_attempts = step.options().retry.as_ref().map_or(1, |r| r.max_attempts);
        if retryable && attempt < max_attempts {
            let delay = retry_delay(step, attempt);
            record.status = StepStatus::Retrying;
            record.ended_ms = None;
            record.retry_at_ms = Some(now + delay.as_millis() as u64);
            self.set(i, StepStatus::Retrying)?;
            records::put_step(&mut self.batch, &self.run.id, i, &record);
            tracing::info!(run = %self.run.id, step = %step.id, attempt, ?delay, %error, "attempt failed; retrying");
            self.timers.push((i, now + delay.as_millis() as u64));
            self.event_step(i, Some(error));
            return Ok(());
        }
        record.status = StepStatus::Failed;
        let mode = step.failure_mode;
        record.failure_ignored = mode == FailureMode::IgnoreFailure;
        self.set(i, StepStatus::Failed)?;
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        tracing::warn!(run = %self.run.id, step = %step.id, attempt, %error, "step failed");
        self.event_step(i, Some(error.clone()));
        self.failed(i, &error)?;
        self.complete(i)
    }

    /// Writes the signals step `i` sends on success; its own outputs are visible to them.
    fn emit_signals(&mut self, i: usize) -> Result<(), String> {
        let step = self.wf.step(i);
        if step.flow().emit_signals.is_empty() {
            return Ok(());
        }
        let scope = RunScope { driver: self };
        let mut signals = Vec::with_capacity(step.flow().emit_signals.len());
        for (n, emit) in step.flow().emit_signals.iter().enumerate() {
            let params = emit
                .params
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        evaluate_value(v, &scope)
                            .map_err(|e| format!("emit_signals.{n}.params.{k}: {e}"))?,
                    ))
                })
                .collect::<Result<IndexMap<_, _>, String>>()?;
            signals.push(SignalRecord {
                id: super::next_run_id(),
                name: emit.name.clone(),
                params,
                sent_ms: self.shared.clock.now_ms(),
                source: Some(format!("{}/{}", self.run.id, step.id)),
            });
        }
        for signal in &signals {
            tracing::info!(run = %self.run.id, step = %step.id, signal = %signal.name, "signal emitted");
            records::put_signal(&mut self.batch, signal);
        }
        self.emitted = true;
        Ok(())
    }

    /// What a FAILED step does to the run, by its failure mode.
    fn failed(&mut self, i: usize, error: &str) -> Result<(), EngineError> {
        match self.wf.step(i).failure_mode {
            FailureMode::IgnoreFailure => {
                self.ignored.insert(i);
                Ok(())
            }
            FailureMode::FailAfterRunning => {
                self.note_failure(i, error);
                Ok(())
            }
            FailureMode::FailImmediately => {
                self.note_failure(i, error);
                let id = &self.wf.step(i).id;
                self.begin_stop(format!("step `{id}` failed"))
            }
        }
    }

    fn note_failure(&mut self, i: usize, error: &str) {
        let message = format!("step `{}` failed: {error}", self.wf.step(i).id);
        self.failures.entry(i).or_insert(message);
    }

    /// Why the run failed, if it did.
    fn run_error(&self) -> Option<String> {
        self.first_error.clone().or_else(|| self.failures.first().map(|(_, e)| e.clone()))
    }

    /// Marks step `i` over and settles the steps below it whose trigger rule can now be
    /// decided; those that end without running (skipped, failed) are marked over in turn.
    fn complete(&mut self, i: usize) -> Result<(), EngineError> {
        let wf = self.wf.clone();
        let mut work = vec![i];
        while let Some(s) = work.pop() {
            self.over += 1;
            let outcome = self.outcome(s);
            for d in wf.downstream(s) {
                self.remaining[d] -= 1;
                if self.status[d] == StepStatus::Pending && self.settle(d, Some(outcome))? {
                    work.push(d);
                }
            }
        }
        Ok(())
    }

    /// How a step that is over counts for the steps below it.
    fn outcome(&self, i: usize) -> Outcome {
        match self.status[i] {
            StepStatus::Succeeded => Outcome::Success,
            StepStatus::Failed if self.ignored.contains(&i) => Outcome::Success,
            StepStatus::Failed => Outcome::Failure,
            StepStatus::Skipped if self.operator_skipped.contains(&i) => Outcome::Success,
            _ => Outcome::NotRun,
        }
    }

    /// Acts on the decision for a PENDING step; returns whether the step is now over
    /// without having run.
    fn settle(&mut self, i: usize, just: Option<Outcome>) -> Result<bool, EngineError> {
        match self.decide(i, just) {
            Decision::Wait => Ok(false),
            Decision::Run => self.make_ready(i).map(|()| false),
            Decision::Skip(why) => self.skip(i, &why).map(|()| true),
            Decision::Fail(error) => {
                self.set(i, StepStatus::Ready)?;
                self.set(i, StepStatus::Failed)?;
                let mut record = StepRecord::new(StepStatus::Failed, 0);
                record.error = Some(error.clone());
                record.ended_ms = Some(self.shared.clock.now_ms());
                record.failure_ignored = self.wf.step(i).failure_mode == FailureMode::IgnoreFailure;
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.event_step(i, Some(error.clone()));
                self.failed(i, &error)?;
                Ok(true)
            }
        }
    }

    /// The step's trigger rule, then its `when`. `just` is the outcome of the upstream
    /// step that just ended, if any.
    fn decide(&self, i: usize, just: Option<Outcome>) -> Decision {
        let step = self.wf.step(i);
        let ups = || self.wf.upstream(i).map(|u| (u, self.outcome(u)));
        let fired = |want: Outcome| {
            just == Some(want)
                || (just.is_none() && ups().any(|(u, o)| self.status[u].is_terminal() && o == want))
        };
        let early = match step.trigger {
            Trigger::OneSuccess => fired(Outcome::Success),
            Trigger::OneFailed => fired(Outcome::Failure),
            _ => false,
        };
        if !early {
            if self.remaining[i] > 0 {
                return Decision::Wait;
            }
            let id = |u: usize| &self.wf.step(u).id;
            let blocker = match step.trigger {
                Trigger::AllSuccess => ups()
                    .find(|(_, o)| *o != Outcome::Success)
                    .map(|(u, _)| format!("upstream step `{}` did not succeed", id(u))),
                Trigger::AllDone => None,
                Trigger::OneSuccess => Some("no upstream step succeeded".into()),
                Trigger::OneFailed => Some("no upstream step failed".into()),
                Trigger::NoneFailed => ups()
                    .find(|(_, o)| *o == Outcome::Failure)
                    .map(|(u, _)| format!("upstream step `{}` failed", id(u))),
            };
            if let Some(why) = blocker {
                return Decision::Skip(why);
            }
        }
        let Some(condition) = &step.options().when else { return Decision::Run };
        match Template::parse(condition).and_then(|t| t.evaluate(&RunScope { driver: self })) {
            Ok(Value::Bool(true)) => Decision::Run,
            Ok(Value::Bool(false)) => Decision::Skip(format!("`when` is false: {condition}")),
            Ok(other) => Decision::Fail(format!("when: expected a boolean, not {other}")),
            Err(e) => Decision::Fail(format!("when: {e}")),
        }
    }

    fn make_ready(&mut self, i: usize) -> Result<(), EngineError> {
        self.set(i, StepStatus::Ready)?;
        let inline = self.kind(i).is_some_and(|k| k.is_inline());
        if inline {
            self.inline_ready.push(i);
        } else {
            self.ready.push_back(i);
        }
        Ok(())
    }

    fn skip(&mut self, i: usize, why: &str) -> Result<(), EngineError> {
        self.set(i, StepStatus::Skipped)?;
        let mut record = StepRecord::new(StepStatus::Skipped, self.attempt[i]);
        record.error = Some(format!("skipped: {why}"));
        record.ended_ms = Some(self.shared.clock.now_ms());
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, None);
        Ok(())
    }

    /// Stops the run: running steps are asked to stop; once they have, [`sweep`] ends the rest.
    fn begin_stop(&mut self, reason: String) -> Result<(), EngineError> {
        tracing::warn!(run = %self.run.id, %reason, "stopping the run");
        self.stopping = Some(reason);
        for tokens in self.running.values() {
            tokens.cancel.cancel();
        }
        self.ready.clear();
        self.inline_ready.clear();
        self.blocked.clear();
        Ok(())
    }

    /// Ends every step not over: waiting retries and steps at a breakpoint are STOPPED
    /// (KILLED if the run is killed), the others SKIPPED.
    fn sweep(&mut self) -> Result<(), EngineError> {
        let end = if self.killed { StepStatus::Killed } else { StepStatus::Stopped };
        for i in 0..self.status.len() {
            match self.status[i] {
                StepStatus::Retrying | StepStatus::Waiting => {
                    self.at_breakpoint.remove(&i);
                    self.set(i, end)?;
                    let mut record = StepRecord::new(end, self.attempt[i]);
                    record.error = self.stopping.clone();
                    record.ended_ms = Some(self.shared.clock.now_ms());
                    records::put_step(&mut self.batch, &self.run.id, i, &record);
                    self.event_step(i, None);
                    self.over += 1;
                }
                StepStatus::Pending | StepStatus::Ready => {
                    let why = self.stopping.clone().unwrap_or_else(|| "the run stopped".into());
                    self.skip(i, &why)?;
                    self.over += 1;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Writes the run's end.
    fn finish(&mut self) -> Result<(), IllegalTransition> {
        let mut counts = std::collections::BTreeMap::new();
        for s in &self.status {
            *counts.entry(*s).or_insert(0) += 1;
        }
        self.run.counts = counts;
        self.run.ended_ms = Some(self.shared.clock.now_ms());
        self.run.set_status(if self.killed {
            RunStatus::Killed
        } else if self.stopped {
            RunStatus::Stopped
        } else if !self.failures.is_empty() || self.first_error.is_some() {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        })?;
        self.run.error = self.run_error();
        if self.killed || self.stopped {
            self.run.error = self.run.error.take().or_else(|| self.stopping.clone());
        }
        records::put_run(&mut self.batch, &self.run);
        self.event_run();
        // Actions that came too late get their answer from the final state.
        for (_, reply) in self.skip_requested.drain() {
            let _ = reply.send(Err(EngineError::IllegalAction {
                target: format!("a step of run {}", self.run.id),
                action: "skip",
                state: self.run.status.to_string(),
                hint: " (the run ended first)".into(),
            }));
        }
        Ok(())
    }

    /// Kills the run: what runs is KILLED at once, without waiting for it to stop; the
    /// rest is swept, and the run ends KILLED.
    fn kill(&mut self) -> Result<(), EngineError> {
        if self.killed {
            return Ok(());
        }
        tracing::warn!(run = %self.run.id, "killing the run");
        self.killed = true;
        self.stopped = true;
        if self.stopping.is_none() {
            self.begin_stop("the run was killed".into())?;
        }
        let now = self.shared.clock.now_ms();
        let mut running: Vec<(usize, Tokens)> = self.running.drain().collect();
        running.sort_unstable_by_key(|(i, _)| *i);
        for (i, tokens) in running {
            tokens.kill.cancel();
            self.release(i);
            self.skip_requested.remove(&i);
            self.set(i, StepStatus::Killed)?;
            let mut record = StepRecord::new(StepStatus::Killed, self.attempt[i]);
            record.started_ms = self.started.remove(&i);
            record.ended_ms = Some(now);
            record.error = Some("killed".into());
            records::put_step(&mut self.batch, &self.run.id, i, &record);
            self.event_step(i, Some("killed".into()));
            self.over += 1;
        }
        Ok(())
    }

    fn set(&mut self, i: usize, to: StepStatus) -> Result<(), IllegalTransition> {
        let from = self.status[i];
        if !from.can_become(to) {
            return Err(IllegalTransition {
                what: format!("step `{}` of run {}", self.wf.step(i).id, self.run.id),
                from: from.to_string(),
                to: to.to_string(),
            });
        }
        self.status[i] = to;
        Ok(())
    }

    /// Whether this run's events are worth making: always for the timeline, and for an
    /// iteration only when someone listens.
    fn wants_events(&self) -> bool {
        self.durable_events || self.delivers_events()
    }

    /// Whether someone takes events as they happen.
    fn delivers_events(&self) -> bool {
        self.shared.listener.is_some() || self.shared.events.receiver_count() > 0
    }

    /// Records step `i`'s status change in the batch of its transition (the timeline);
    /// listeners get it after the flush.
    fn event_step(&mut self, i: usize, error: Option<String>) {
        if !self.wants_events() {
            return;
        }
        let at_ms = self.shared.clock.now_ms();
        let step_id = &self.wf.step(i).id;
        if self.durable_events {
            let change = events::StepChange {
                step_id,
                status: self.status[i],
                attempt: self.attempt[i],
                error: error.as_deref(),
                at_ms,
            };
            events::put_step_event(&mut self.batch, &self.run.id, self.seq, change);
        }
        if self.delivers_events() {
            self.events.push(Event::Step {
                run_id: self.run.id.clone(),
                step_id: step_id.clone(),
                status: self.status[i],
                attempt: self.attempt[i],
                error,
                at_ms,
                seq: self.seq,
            });
        }
        self.seq += 1;
    }

    /// As [`event_step`](Self::event_step), for the run's status.
    fn event_run(&mut self) {
        if !self.wants_events() {
            return;
        }
        let at_ms = self.shared.clock.now_ms();
        if self.durable_events {
            events::put_run_event(
                &mut self.batch,
                &self.run.id,
                self.seq,
                self.run.status,
                self.run.error.as_deref(),
                at_ms,
            );
        }
        if self.delivers_events() {
            self.events.push(Event::Run {
                run_id: self.run.id.clone(),
                workflow_id: self.run.workflow_id.clone(),
                status: self.run.status,
                error: self.run.error.clone(),
                at_ms,
                seq: self.seq,
            });
        }
        self.seq += 1;
    }

    /// Starts an attempt on its own task; it reports back with [`Msg::Finished`].
    fn spawn_attempt(&self, launch: Launch) {
        let Launch { step: i, attempt, started_ms, tokens } = launch;
        let cancel = tokens.cancel.clone();
        let step = self.wf.step(i);
        let tx = self.tx.clone();
        let (kind, ctx, nest) = match self.context(i, attempt, started_ms, tokens) {
            Ok(ready) => ready,
            Err(message) => {
                let outcome = StepOutcome::failure(message);
                let _ = tx.send(Msg::Finished { step: i, attempt, outcome, retryable: false });
                return;
            }
        };
        let clock = self.shared.clock.clone();
        let timeout = step.options().timeout.as_ref().and_then(|t| t.parse().ok());
        let outside =
            self.shared.activity.as_ref().filter(|_| kind.works_outside()).map(|a| a.busy());
        let flow_attempt = match nest {
            Some(nest) => flow::attempt(&step.kind, nest, ctx),
            None => Err(ctx),
        };
        self.shared.attempts.spawn(Activity::track(self.shared.activity.as_ref(), async move {
            let _outside = outside;
            // A panic in the kind fails the step only.
            let mut work = std::pin::pin!(AssertUnwindSafe(async move {
                match flow_attempt {
                    Ok(attempt) => attempt.await,
                    Err(ctx) => kind.run(ctx).await,
                }
            })
            .catch_unwind());
            let deadline = timeout.map(|t: Duration| clock.now_ms() + t.as_millis() as u64);
            let timed_out = async {
                match deadline {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let ended = tokio::select! {
                ended = &mut work => ended,
                _ = timed_out => {
                    cancel.cancel();
                    let ended = work.await;
                    let log_tail = ended.ok().and_then(|o| o.log_tail);
                    let limit = timeout.map(crate::model::format_duration).unwrap_or_default();
                    Ok(StepOutcome { result: Err(format!("timed out after {limit}")), log_tail })
                }
            };
            let outcome = ended.unwrap_or_else(|panic| {
                StepOutcome::failure(format!(
                    "the step panicked: {}",
                    crate::error::panic_text(panic)
                ))
            });
            let _ = tx.send(Msg::Finished { step: i, attempt, outcome, retryable: true });
        }));
    }

    /// What runs step `i`: its override if the host set one, else its declared kind.
    fn kind(&self, i: usize) -> Option<Arc<dyn StepKind>> {
        let step = self.wf.step(i);
        let overrides = self.shared.overrides.read().unwrap_or_else(|e| e.into_inner());
        if !overrides.is_empty() {
            if let Some(kind) = overrides.get(&(self.run.workflow_id.clone(), step.id.clone())) {
                return Some(kind.clone());
            }
        }
        drop(overrides);
        self.declared_kind(step)
    }

    /// The kind step `step` declares.
    fn declared_kind(&self, step: &StepDef) -> Option<Arc<dyn StepKind>> {
        self.shared.kinds.read().unwrap_or_else(|e| e.into_inner()).get(&step.kind).cloned()
    }

    /// The context of an attempt, with `${...}` substituted.
    fn context(
        &self,
        i: usize,
        attempt: u32,
        started_ms: u64,
        tokens: Tokens,
    ) -> Result<(Arc<dyn StepKind>, StepContext, Option<Nest>), String> {
        let step: &StepDef = self.wf.step(i);
        let kind = self
            .kind(i)
            .ok_or_else(|| format!("no step type `{}` is registered in this engine", step.kind))?;
        let scope = RunScope { driver: self };
        let render = |field: &str, text: &str| -> Result<String, String> {
            Template::parse(text)
                .and_then(|t| t.render(&scope))
                .map_err(|e| format!("{field}: {e}"))
        };
        let command =
            step.options().command.as_deref().map(|c| render("command", c)).transpose()?;
        let env = step
            .options()
            .env
            .iter()
            .map(|(k, v)| Ok((k.clone(), render(&format!("env.{k}"), v)?)))
            .collect::<Result<IndexMap<_, _>, String>>()?;
        let step_params = step
            .options()
            .params
            .iter()
            .map(|(k, v)| {
                Ok((k.clone(), evaluate_value(v, &scope).map_err(|e| format!("params.{k}: {e}"))?))
            })
            .collect::<Result<IndexMap<_, _>, String>>()?;
        // The engine's own kinds work with it, unless a host put a stand-in in their place.
        let overridden = !Arc::ptr_eq(&kind, self.declared_kind(step).as_ref().unwrap_or(&kind));
        let nest = (flow::is_flow(&step.kind) && !overridden).then(|| {
            let names = Names::new(self.names(), self.shared.clock.clone());
            Nest::new(
                self.shared.clone(),
                self.wf.clone(),
                i,
                self.run.id.clone(),
                attempt,
                self.frame.depth,
                Arc::new(names),
                tokens.kill.clone(),
            )
        });
        let inputs = self
            .wf
            .upstream(i)
            .filter_map(|u| self.outputs.get(&u).map(|o| (self.wf.step(u).id.clone(), o.clone())))
            .collect();
        let ctx = StepContext {
            run_id: self.run.id.clone(),
            workflow_id: self.run.workflow_id.clone(),
            step_id: step.id.clone(),
            attempt,
            idempotency_key: format!("{}/{}/{}", self.run.id, step.id, attempt),
            params: self.params.clone(),
            inputs,
            command,
            env,
            step_params,
            duration: step.options().duration.as_ref().and_then(|d| d.parse().ok()),
            started_ms,
            cancel: tokens.cancel,
            kill: tokens.kill,
            clock: self.shared.clock.clone(),
            scratch_root: self.shared.scratch_root.clone(),
            status: {
                let tx = self.tx.clone();
                StatusHandle::new(move |reason| {
                    let _ = tx.send(Msg::Waiting { step: i, attempt, reason });
                })
            },
        };
        Ok((kind, ctx, nest))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A driver that ends on an error or at close gives its tag slots back.
        for i in std::mem::take(&mut self.holding) {
            self.shared.limits.release(&self.wf.step(i).options().tags);
        }
    }
}

impl Driver {
    /// Every name the run's steps may see, for a step that evaluates expressions while it
    /// runs: enclosing runs' names, then parameters, then finished steps' outputs.
    fn names(&self) -> IndexMap<String, Value> {
        let mut names = self.frame.outer.values().clone();
        names.extend(self.params.iter().map(|(k, v)| (k.clone(), v.clone())));
        for (&i, outputs) in &self.outputs {
            names.insert(self.wf.step(i).id.clone(), outputs_value(outputs.clone()));
        }
        names
    }
}

/// What names mean in a step's fields: the run's parameters, finished steps' outputs,
/// then names from enclosing runs.
struct RunScope<'a> {
    driver: &'a Driver,
}

impl Scope for RunScope<'_> {
    fn name(&self, name: &str) -> Option<Value> {
        let d = self.driver;
        if let Some(v) = d.params.get(name) {
            return Some(v.clone());
        }
        let Some(step) = d.wf.index_of(name) else {
            return d.frame.outer.name(name);
        };
        let outputs = d
            .outputs
            .get(&step)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Some(Value::Object(outputs))
    }

    fn now_ms(&self) -> u64 {
        self.driver.shared.clock.now_ms()
    }
}

/// The delay before attempt `attempt + 1`.
pub(super) fn retry_delay(step: &StepDef, attempt: u32) -> Duration {
    let Some(retry) = &step.options().retry else { return Duration::ZERO };
    let base = retry.delay.parse().unwrap_or_default();
    let cap = retry
        .max_delay
        .as_ref()
        .and_then(|d| d.parse().ok())
        .unwrap_or(Duration::from_secs(86_400));
    let delay = match retry.backoff {
        Backoff::Fixed => base,
        Backoff::Linear => base.saturating_mul(attempt),
        Backoff::Exponential => base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1))),
    };
    delay.min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RetryDef;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut step = StepDef::new("a", "noop");
        step.options_mut().retry = Some(RetryDef {
            max_attempts: 10,
            backoff: Backoff::Exponential,
            delay: "1s".into(),
            max_delay: Some("5s".into()),
        });
        let delays: Vec<u64> = (1..=5).map(|a| retry_delay(&step, a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        step.options_mut().retry.as_mut().unwrap().backoff = Backoff::Linear;
        assert_eq!(retry_delay(&step, 3), Duration::from_secs(3));
        step.options_mut().retry.as_mut().unwrap().backoff = Backoff::Fixed;
        assert_eq!(retry_delay(&step, 3), Duration::from_secs(1));
    }
}

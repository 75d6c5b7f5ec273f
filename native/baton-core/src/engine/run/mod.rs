//! The driver of one run: a task that owns the run's state, decides what runs next, and
//! writes every transition to the store before acting on it.
//!
//! Readiness is decided by counters: `remaining[i]` is the number of upstream steps of `i`
//! not yet over, so finishing a step costs time in its out-degree only.
//!
//! This file holds the driver's state, its loop and its end; the concepts it works with
//! have a file each: [`restore`] (state from the store), [`readiness`] (what runs next),
//! [`attempts`] (launching and ending attempts), [`operator`] (actions), [`timeline`]
//! (events).

mod attempts;
mod cached;
mod operator;
mod readiness;
mod restore;
mod timeline;

use attempts::{Launch, RunScope};

use super::events;
use super::flow::{self, outputs_value, Names, Nest};
use super::limits::{take_slots, Holder, Take};
use super::records::{self, RunRecord, SignalRecord, StepRecord};
use super::secrets::Mask;
use super::state::{IllegalTransition, RunStatus, StepStatus};
use super::{EngineError, Event, Shared};
use crate::activity::Activity;
use crate::dag::Workflow;
use crate::expr::{RunContext, Scope};
use crate::model::{FailureMode, StepDef, Trigger};
use crate::steps::{FailureClass, Outputs, StatusHandle, StepContext, StepKind, StepOutcome};
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
    /// Another engine holds the run's lease now: stop driving it, writing nothing.
    GiveUp,
    /// The store gave step `step` its tag slots.
    SlotsTaken {
        step: usize,
    },
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

impl Action {
    /// The action as another engine applies it.
    pub(crate) fn remote(self) -> super::remote::Remote {
        use super::remote::Remote;
        match self {
            Action::Pause => Remote::Pause,
            Action::Resume => Remote::Resume,
            Action::Skip(step) => Remote::Skip(step),
            Action::Retry(step) => Remote::Retry(step),
            Action::Continue(step) => Remote::Continue(step),
        }
    }
}

pub(crate) type Reply = oneshot::Sender<Result<(), EngineError>>;

/// The `waiting_for` of a step stopped at a breakpoint.
pub(crate) const AT_BREAKPOINT: &str = "breakpoint";

/// The tokens of a running attempt: `cancel` asks it to stop (with cleanup), `kill` to
/// stop at once; `cancel` is a child of `kill`, so a kill also cancels. `abandon` kills it
/// because this engine lost the run: what the attempt asked of other engines (an offered
/// iteration) must go on there, not be stopped. `kill` is a child of it.
#[derive(Clone)]
struct Tokens {
    cancel: CancellationToken,
    kill: CancellationToken,
    abandon: CancellationToken,
}

impl Tokens {
    fn new() -> Self {
        let abandon = CancellationToken::new();
        let kill = abandon.child_token();
        Tokens { cancel: kill.child_token(), kill, abandon }
    }
}

/// Where a run sits: top level, or inside a step of another run.
pub(crate) struct Frame {
    /// Names visible from the enclosing runs.
    pub(crate) outer: Arc<Names>,
    /// The run an iteration is evaluated for (its loop's); none for a run of its own, or
    /// an iteration taken over from its stored records.
    pub(crate) context: Option<Arc<RunContext>>,
    /// The secrets of the enclosing runs: this run masks them too.
    pub(crate) mask: Arc<Mask>,
    /// Fires when the enclosing step wants the run to stop.
    pub(crate) stop: CancellationToken,
    /// Fires when the enclosing step is killed: the run is killed too.
    pub(crate) kill: CancellationToken,
    /// Fires when this engine lost the enclosing run (it fires `kill` too): the run stops
    /// being driven here, writing nothing, for the engine that drives the enclosing run now.
    pub(crate) abandon: CancellationToken,
    /// 0 for a top-level run.
    pub(crate) depth: usize,
    /// What every batch of the run expects: the lease of its top-level run, still held by
    /// this engine. Set by the top-level driver once it holds the lease.
    pub(crate) fence: Option<crate::store::Expect>,
}

impl Frame {
    pub(super) fn top(shared: &Shared) -> Self {
        Frame {
            outer: Arc::new(Names::empty(shared.clock.clone())),
            context: None,
            mask: Arc::default(),
            stop: CancellationToken::new(),
            kill: CancellationToken::new(),
            abandon: CancellationToken::new(),
            depth: 0,
            fence: None,
        }
    }
}

/// What expressions know of `run`: an iteration's is its loop's run's, up to the first
/// run that is no iteration.
fn context_of(store: &dyn crate::store::Store, run: &RunRecord) -> Result<RunContext, EngineError> {
    let mut run = std::borrow::Cow::Borrowed(run);
    while let Some(link) = run.parent.as_ref().filter(|p| p.iteration.is_some()) {
        let parent = records::get_run(store, &link.run_id)?
            .ok_or_else(|| EngineError::UnknownRun(link.run_id.clone()))?;
        run = std::borrow::Cow::Owned(parent);
    }
    Ok(run.context())
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
    /// What expressions know of the run.
    context: Arc<RunContext>,
    /// The run's parameters, its secrets' values included.
    params: Arc<IndexMap<String, Value>>,
    /// The secrets of this run and of the runs around it, masked in what its steps give
    /// back.
    mask: Arc<Mask>,
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
    /// The cache keys of steps with `cache` that missed: a success is kept under them.
    cache_keys: HashMap<usize, Vec<u8>>,
    /// Steps continued from a breakpoint: they launch without stopping there again.
    passed: HashSet<usize>,
    /// READY steps waiting for a slot of one of their tags.
    blocked: VecDeque<usize>,
    /// Steps holding tag slots, with the attempt they hold them for (the store counts a
    /// holder by run, step and attempt: a slot is given back under the attempt it was
    /// taken for).
    holding: HashMap<usize, u32>,
    /// Changes when tag slots free; subscribed once a step waits for one.
    slots: Option<watch::Receiver<u64>>,
    /// Steps asking the store for tag slots (a shared store counts them).
    asking: HashMap<usize, tokio::task::AbortHandle>,
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
    /// A take-over to write before anything else.
    claim: Option<super::cluster::Claim>,
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
        let params = super::secrets::restore(shared.store.as_ref(), &shared.sealer, &run)?;
        let mask = match run.secrets.is_empty() {
            true => frame.mask.clone(),
            false => Arc::new(frame.mask.with(&params, &run.secrets)),
        };
        let context = match &frame.context {
            Some(context) => context.clone(),
            None => Arc::new(context_of(shared.store.as_ref(), &run)?),
        };
        let mut d = Driver {
            context,
            max_parallel: wf.max_parallel(),
            params: Arc::new(params),
            mask,
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
            cache_keys: HashMap::new(),
            passed: HashSet::new(),
            blocked: VecDeque::new(),
            holding: HashMap::new(),
            slots: None,
            asking: HashMap::new(),
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
            claim: None,
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

    /// The top-level driver, holding its run's lease or about to claim it.
    pub(crate) fn owned(mut self, owner: super::cluster::Owner) -> Self {
        match owner {
            super::cluster::Owner::Holding(lease) => {
                self.frame.fence = Some(lease.fence(&self.run.id));
            }
            super::cluster::Owner::Claiming(claim) => self.claim = Some(claim),
        }
        self
    }

    /// Takes the run's lease over: the first write, expecting the lease and heartbeat that
    /// were seen; the timeline says from which engine.
    async fn take_over(&mut self, claim: super::cluster::Claim) -> Result<(), EngineError> {
        let me = self.shared.member.id.clone();
        let mut batch = Batch::default();
        let lease = claim.write(&mut batch, &self.run.id, &me);
        let from = claim.from(&me).or_else(|| self.run.engine.clone().filter(|e| *e != me));
        self.run.engine = Some(me.clone());
        records::put_run(&mut batch, &self.run);
        let committing = self.shared.activity.as_ref().map(|a| a.busy());
        match self.shared.committer.commit(batch).await {
            Ok(()) => {}
            Err(crate::store::StoreError::Conflict) => {
                return Err(EngineError::LostLease(self.run.id.clone()))
            }
            Err(e) => return Err(e.into()),
        }
        drop(committing);
        if let Some(from) = from {
            tracing::info!(run = %self.run.id, %from, to = %me, "run taken over");
            self.event_owner(Some(from));
        }
        self.frame.fence = Some(lease.fence(&self.run.id));
        Ok(())
    }

    /// Where to send the driver messages.
    pub(crate) fn sender(&self) -> mpsc::UnboundedSender<Msg> {
        self.tx.clone()
    }

    /// Runs to the end; returns the final run record.
    pub(crate) async fn drive(mut self) -> Result<RunRecord, EngineError> {
        if let Some(claim) = self.claim.take() {
            self.take_over(claim).await?;
        }
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
                    if self.frame.abandon.is_cancelled() {
                        return Err(self.give_up());
                    }
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

    /// Commits the batch, then does what it records: launches, timers, events.
    async fn flush(&mut self) -> Result<(), EngineError> {
        let mut batch = std::mem::take(&mut self.batch);
        if let (Some(fence), false) = (&self.frame.fence, batch.is_empty()) {
            batch.expect.push(fence.clone());
        }
        // The commit runs on the store's thread: in motion, though this task waits.
        let committing = self.shared.activity.as_ref().map(|a| a.busy());
        match self.shared.committer.commit(batch).await {
            Ok(()) => {}
            Err(crate::store::StoreError::Conflict) => return Err(self.give_up()),
            Err(e) => return Err(e.into()),
        }
        if std::mem::take(&mut self.emitted) {
            self.shared.signal_seq.send_modify(|n| *n += 1);
        }
        drop(committing);
        // Launched only while the lease still holds: an engine frozen between a commit and
        // its launches (a pause, SIGSTOP) may have lost the run meanwhile, and a launch
        // then would run a step that another engine runs too.
        if !self.launches.is_empty() && self.shared.member.overdue() && self.lease_lost() {
            return Err(self.give_up());
        }
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
            Msg::GiveUp => Err(self.give_up()),
            Msg::SlotsTaken { step } => {
                self.slots_taken(step);
                Ok(())
            }
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

    /// Whether the run's lease is another engine's now (a read of it fails: not lost, as
    /// far as is known; the commit just made held it).
    fn lease_lost(&self) -> bool {
        let Some(fence) = &self.frame.fence else { return false };
        let now = self.shared.store.get(fence.table, &fence.key);
        now.is_ok_and(|now| now != fence.value)
    }

    /// Stops driving a run another engine holds now: its attempts here are killed, and
    /// what they report is never written.
    fn give_up(&mut self) -> EngineError {
        for tokens in self.running.values() {
            tokens.abandon.cancel();
        }
        tracing::warn!(run = %self.run.id, running = self.running.len(), "lease lost: another engine drives this run now; its attempts here are killed and their results discarded");
        EngineError::LostLease(self.run.id.clone())
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
}

impl Drop for Driver {
    fn drop(&mut self) {
        // A driver that ends on an error or at close gives its tag slots back.
        for i in std::mem::take(&mut self.holding).into_keys() {
            self.shared.limits.let_go(&self.wf.step(i).options().tags);
        }
        for (_, task) in self.asking.drain() {
            task.abort();
        }
    }
}

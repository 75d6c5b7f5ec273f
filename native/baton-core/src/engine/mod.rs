//! Runs: starting them, driving them to their end, resuming them after a crash, and
//! reading them back.
//!
//! Each run is driven by one task, its driver, that owns its state. Drivers share the
//! store's group commit, so the transitions of many runs share one flush.

mod actions;
pub(crate) mod admission;
pub(crate) mod cache;
pub(crate) mod cluster;
mod events;
pub(crate) mod firings;
mod flow;
pub mod history;
mod layout;
mod limits;
pub(crate) mod records;
pub(crate) mod registry;
pub(crate) mod remote;
mod retention;
mod run;
mod secrets;
mod state;

pub use admission::StartOptions;
pub use cache::{CacheEntry, CachedFrom};
pub use cluster::{EngineInfo, DEFAULT_LEASE, MIN_LEASE};
pub use firings::FiringRecord;
pub use records::{
    Initiator, IterationFailure, ParentLink, Rollup, RunRecord, SignalRecord, StepRecord,
};
pub use registry::{Registered, VersionInfo, WorkflowInfo};
pub use retention::{Pruned, Retention};
pub use state::{IllegalTransition, RunStatus, StepStatus};

use crate::activity::Activity;
use crate::clock::{Clock, SystemClock};
use crate::dag::Workflow;
use crate::error::InvalidDefinition;
use crate::model::WorkflowDef;
use crate::steps::{StepKind, StepKinds};
use crate::store::{
    self, Batch, Committer, MemoryStore, OpenedStore, Sealer, Store, StoreEngine, StoreError,
    StoreLocation,
};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A change of status, delivered to listeners and subscribers after it is durable, and
/// kept in the run's timeline (except for `foreach`/`while` iterations, which their
/// step's rollup sums up, and whose timeline is made from their records). `seq` numbers a
/// run's events from 0, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A run changed status.
    Run {
        /// The run.
        run_id: String,
        /// The workflow the run runs.
        workflow_id: String,
        /// The new status.
        status: RunStatus,
        /// Why the run failed or stopped.
        error: Option<String>,
        /// When, in milliseconds since the epoch.
        #[serde(default)]
        at_ms: u64,
        /// The event's place in the run's timeline.
        #[serde(default)]
        seq: u64,
        /// On the event of a take-over, the engine that took the run over (the status is
        /// unchanged, and `error` says from which engine).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<String>,
    },
    /// A step of a run changed status.
    Step {
        /// The run the step belongs to.
        run_id: String,
        /// The step's id in the run's workflow.
        step_id: String,
        /// The new status.
        status: StepStatus,
        /// The attempt, from 1; 0 before the step first runs.
        attempt: u32,
        /// Why the attempt failed or the step stopped.
        error: Option<String>,
        /// When, in milliseconds since the epoch.
        #[serde(default)]
        at_ms: u64,
        /// The event's place in the run's timeline.
        #[serde(default)]
        seq: u64,
    },
}

/// Receives every [`Event`]; called on the engine's tasks, so it must be quick.
pub type Listener = Arc<dyn Fn(&Event) + Send + Sync>;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A definition that does not validate, with every problem found.
    #[error(transparent)]
    Definition(#[from] InvalidDefinition),
    /// A parameter given to a run that the workflow does not declare.
    #[error("unknown parameter `{name}`{hint}; the workflow declares: {declared}")]
    UnknownParam {
        /// The parameter given.
        name: String,
        /// ` (did you mean `x`?)` for a likely typo, or empty.
        hint: String,
        /// The declared parameters, comma-separated, or `no parameters`.
        declared: String,
    },
    /// A secret of the workflow that the start does not give.
    #[error("the workflow's secret `{name}` is not given; give it like any parameter (`-p {name}=...`, or in the start's params)")]
    MissingSecret {
        /// The secret.
        name: String,
    },
    /// A parameter under `required` that the start does not give.
    #[error("the workflow's parameter `{name}` ({wanted}) has no default; give it (`-p {name}=...`, or in the start's params)")]
    MissingParam {
        /// The parameter.
        name: String,
        /// Its declared type, in words.
        wanted: String,
    },
    /// A parameter value that does not fit its default's type.
    #[error("parameter `{name}`: {message}")]
    BadParam {
        /// The parameter.
        name: String,
        /// What type it expects, and what it got.
        message: String,
    },
    /// A run id the store does not have.
    #[error("no run `{0}` in the store")]
    UnknownRun(String),
    /// `start` of a workflow id that was not registered.
    #[error("no workflow `{id}` is registered{hint}")]
    UnknownWorkflow {
        /// The workflow id asked for.
        id: String,
        /// ` (did you mean `x`?)` for a likely typo, or empty.
        hint: String,
    },
    /// A version of a registered workflow that does not exist.
    #[error("workflow `{id}` has no version {version}; its versions: {known}")]
    UnknownVersion {
        /// The workflow.
        id: String,
        /// The version asked for.
        version: u32,
        /// The versions it has, comma-separated.
        known: String,
    },
    /// A start refused by `run_strategy: first_only`.
    #[error("workflow `{workflow}` has a run going on ({run_id}) and its run_strategy is first_only; wait for it, or stop it")]
    AlreadyRunning {
        /// The workflow.
        workflow: String,
        /// The run going on.
        run_id: String,
    },
    /// A trigger that cannot be evaluated (validation catches most of these).
    #[error("workflow `{workflow}`, trigger {trigger}: {message}")]
    Trigger {
        /// The workflow.
        workflow: String,
        /// The trigger's position in the workflow's `triggers`, from 0.
        trigger: usize,
        /// What is wrong with it.
        message: String,
    },
    /// The run exists but no driver in this engine is running it.
    #[error("run {0} is not finished and not running here; `baton recover` continues it")]
    NotRunningHere(String),
    /// A request this way of reaching the engine does not serve.
    #[error("{0}")]
    Unsupported(String),
    /// A transition the state machine does not allow: a bug in the engine.
    #[error(transparent)]
    IllegalTransition(#[from] IllegalTransition),
    /// An action asked of a run or step in a state that does not allow it.
    #[error("cannot {action} {target}: it is {state}{hint}")]
    IllegalAction {
        /// What the action is on, in words: `run <id>`, or a step of a run.
        target: String,
        /// The action, as a verb: `pause`, `restart`, `skip a step of`.
        action: &'static str,
        /// The state that refuses it, as a status or in words.
        state: String,
        /// Why, or what to do instead, as ` (...)`; or empty.
        hint: String,
    },
    /// A step id that the run's workflow does not have.
    #[error("run {run_id} has no step `{step_id}`{hint}")]
    UnknownStep {
        /// The run.
        run_id: String,
        /// The step id asked for.
        step_id: String,
        /// ` (did you mean `x`?)` for a likely typo, or empty.
        hint: String,
    },
    /// A tag name that is not an id ([`crate::model::is_id`]): what is wrong with it.
    #[error("{0}")]
    BadTag(String),
    /// A signal name that is not ids joined by `/` ([`crate::model::signal_name_problem`]).
    #[error("{0}")]
    BadSignalName(String),
    /// A step kind registered under a built-in kind's name, or a name that is not an id.
    #[error(transparent)]
    ReservedKind(#[from] crate::steps::ReservedKind),
    /// The engine was closed while the run was going on; it resumes at the next open.
    #[error("the engine was closed")]
    Closed,
    /// Another engine took the run over: this one writes nothing more for it.
    #[error("run {0} is driven by another engine now (this engine's lease on it ended); it stopped driving it here")]
    LostLease(String),
    /// An action on a run that another live engine drives.
    #[error("run {run_id} is driven by engine {engine}; act on it there (`baton engines` lists the engines)")]
    DrivenElsewhere {
        /// The run.
        run_id: String,
        /// The engine driving it.
        engine: String,
    },
    /// An action another engine applied, and refused.
    #[error("{message}")]
    Refused {
        /// The kind of refusal.
        kind: crate::error::ErrorKind,
        /// The driving engine's message.
        message: String,
    },
    /// An action sent to the engine driving a run, not applied yet.
    #[error("run {run_id}: the action was sent to engine {engine}, which has not applied it yet; it stays asked, and whichever engine drives the run applies it")]
    NotAnswered {
        /// The run.
        run_id: String,
        /// The engine driving it.
        engine: String,
    },
    /// An engine id that is not an id.
    #[error("engine id `{0}`: use letters, digits, `_`, `.` and `-` only")]
    BadEngineId(String),
    /// A run's driver stopped on an error; the run resumes at the next open.
    #[error("run {run_id} stopped on an error: {message}")]
    Driver {
        /// The run.
        run_id: String,
        /// The error the driver stopped on.
        message: String,
    },
}

/// Every kind an engine knows before a host adds its own: the leaf kinds of [`crate::steps`]
/// and the engine's own flow kinds. `built_in_kinds().open()` checks a definition with no
/// engine at hand (see [`StepKinds::open`]).
pub fn built_in_kinds() -> StepKinds {
    let mut kinds = StepKinds::default();
    flow::register(&mut kinds);
    kinds
}

impl EngineError {
    /// The kind of failure, for clients (see [`ErrorKind`](crate::error::ErrorKind)).
    pub fn kind(&self) -> crate::error::ErrorKind {
        use crate::error::ErrorKind as K;
        match self {
            EngineError::Store(e) => e.kind(),
            EngineError::Definition(_) | EngineError::ReservedKind(_) => K::Definition,
            EngineError::UnknownParam { .. }
            | EngineError::BadParam { .. }
            | EngineError::MissingSecret { .. }
            | EngineError::MissingParam { .. } => K::Param,
            EngineError::UnknownRun(_) | EngineError::NotRunningHere(_) => K::UnknownRun,
            EngineError::BadEngineId(_) => K::InvalidRequest,
            EngineError::DrivenElsewhere { .. } => K::IllegalAction,
            EngineError::Refused { kind, .. } => *kind,
            EngineError::NotAnswered { .. } => K::Closed,
            EngineError::LostLease(_) => K::Closed,
            EngineError::UnknownWorkflow { .. } => K::UnknownWorkflow,
            EngineError::UnknownVersion { .. } => K::UnknownVersion,
            EngineError::AlreadyRunning { .. } => K::RunRejected,
            EngineError::Trigger { .. }
            | EngineError::Unsupported(_)
            | EngineError::BadTag(_)
            | EngineError::BadSignalName(_) => K::InvalidRequest,
            EngineError::IllegalTransition(_) | EngineError::IllegalAction { .. } => {
                K::IllegalAction
            }
            EngineError::UnknownStep { .. } => K::UnknownStep,
            EngineError::Closed => K::Closed,
            EngineError::Driver { .. } => K::Internal,
        }
    }
}

/// A step of a run, for display.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepView {
    /// The step's id.
    pub id: String,
    /// The step's kind (`type` in the definition).
    #[serde(rename = "type")]
    pub kind: String,
    /// The step's state; PENDING with attempt 0 for a step that has not started.
    #[serde(flatten)]
    pub record: StepRecord,
    /// The progress of a `foreach` or `while` step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollup: Option<Rollup>,
    /// The child run of a `subworkflow` step that has started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_run: Option<String>,
}

/// A run with its steps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDetails {
    /// The run's record.
    pub run: RunRecord,
    /// Every step, in definition order.
    pub steps: Vec<StepView>,
}

/// State every driver of an engine shares.
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) committer: Committer,
    pub(crate) clock: Arc<dyn Clock>,
    /// Step kinds; hosts may add kinds while the engine runs.
    pub(crate) kinds: std::sync::RwLock<StepKinds>,
    /// Kinds that replace the declared kind of one step of one workflow: test doubles.
    pub(crate) overrides: std::sync::RwLock<HashMap<(String, String), Arc<dyn StepKind>>>,
    pub(crate) listener: Option<Listener>,
    pub(crate) scratch_root: Arc<Path>,
    /// Seals the secrets of unfinished runs in the store.
    pub(crate) sealer: Arc<Sealer>,
    pub(crate) shutdown: CancellationToken,
    /// The tasks running step attempts, so that closing waits for them to stop.
    pub(crate) attempts: TaskTracker,
    /// Registered workflows, by id.
    pub(crate) workflows: Mutex<HashMap<String, Arc<Workflow>>>,
    /// Counts signals sent, so that waiting steps look again.
    pub(crate) signal_seq: watch::Sender<u64>,
    /// Counts work in motion, for tests on a virtual clock.
    pub(crate) activity: Option<Arc<Activity>>,
    /// Every durable event, for [`Engine::subscribe`]; a slow subscriber lags.
    pub(crate) events: tokio::sync::broadcast::Sender<Event>,
    /// Breakpoints by workflow id, with a counter of changes that drivers compare.
    pub(crate) breakpoints: actions::Breakpoints,
    /// Concurrency limits by tag, and the slots taken.
    pub(crate) limits: limits::Limits,
    /// The scheduler's and the run strategies' state.
    pub(crate) triggers: Arc<firings::TriggerState>,
    /// The engine itself, for steps that start runs of their own (`wait: false`); set
    /// once the engine is made.
    pub(crate) engine: std::sync::OnceLock<WeakEngine>,
    /// Held by a prune while it runs, so that prunes take turns.
    pub(crate) pruning: tokio::sync::Mutex<()>,
    /// This engine among the engines of its store.
    pub(crate) member: cluster::Membership,
    /// The histories of the steps that ended lately.
    pub(crate) history: history::Histories,
}

type Outcome = Option<Result<RunRecord, String>>;

/// What [`Engine::recover`] did with one unfinished run: its id, and whether it resumed.
type Resumed = (String, Result<(), EngineError>);

/// Configures and opens an [`Engine`].
#[must_use]
pub struct EngineBuilder {
    location: Option<StoreLocation>,
    store_engine: Option<StoreEngine>,
    clock: Arc<dyn Clock>,
    kinds: StepKinds,
    /// The first kind `step_kind` could not add, reported by `open`.
    bad_kind: Option<crate::steps::ReservedKind>,
    listener: Option<Listener>,
    activity: Option<Arc<Activity>>,
    retention: retention::Retention,
    engine_id: Option<String>,
    lease: std::time::Duration,
    claims: bool,
    drives: bool,
    max_runs: Option<usize>,
}

impl Default for EngineBuilder {
    fn default() -> Self {
        EngineBuilder {
            location: None,
            store_engine: None,
            clock: Arc::new(SystemClock),
            kinds: built_in_kinds(),
            bad_kind: None,
            listener: None,
            activity: None,
            retention: Default::default(),
            engine_id: None,
            lease: DEFAULT_LEASE,
            claims: true,
            drives: true,
            max_runs: None,
        }
    }
}

impl EngineBuilder {
    /// Keeps state in `dir` (created if needed). Without it, state is in memory only.
    pub fn store_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.location = Some(StoreLocation::Dir(dir.into()));
        self
    }

    /// Keeps state at `location`: a directory, or a PostgreSQL database (`--store` parses
    /// either from text). Without it, state is in memory only.
    pub fn store(mut self, location: StoreLocation) -> Self {
        self.location = Some(location);
        self
    }

    /// The store engine for a new store directory (an existing one keeps its own).
    pub fn store_engine(mut self, engine: StoreEngine) -> Self {
        self.store_engine = Some(engine);
        self
    }

    /// The clock the engine's timers, retries and timeouts run on (default: the system
    /// clock; tests give a [`VirtualClock`](crate::clock::VirtualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a step kind, available as `type: <name>`; it cannot be replaced later. A
    /// built-in kind's name, or one that is not an id, makes [`open`](Self::open) fail.
    pub fn step_kind(mut self, name: impl Into<String>, kind: Arc<dyn StepKind>) -> Self {
        if let Err(e) = self.kinds.fix(name, kind) {
            self.bad_kind.get_or_insert(e);
        }
        self
    }

    /// Receives every status change once it is durable.
    pub fn listener(mut self, listener: Listener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Counts the engine's work in motion in `activity`, so that a test on a virtual clock
    /// knows when the engine has reacted to a move of time (see [`crate::activity`]).
    pub fn activity(mut self, activity: Arc<Activity>) -> Self {
        self.activity = Some(activity);
        self
    }

    /// How long finished runs, signals and firings are kept (default: [`Retention`]'s);
    /// the engine prunes older ones every [`Retention::every`] while it is open.
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// This engine's id among the engines of a shared store (default: the machine's name
    /// and the process id). It names the engine in `baton engines`, in the runs it drives
    /// and in `$BATON_ENGINE_ID`; an engine restarted with the same id takes its runs back
    /// at once. Not an id ([`crate::model::is_id`]) makes [`open`](Self::open) fail.
    pub fn engine_id(mut self, id: impl Into<String>) -> Self {
        self.engine_id = Some(id.into());
        self
    }

    /// How long this engine's runs stay its own after its last heartbeat (default
    /// [`DEFAULT_LEASE`], at least [`MIN_LEASE`]): on a shared store, the others take them
    /// over when it has passed.
    pub fn lease(mut self, lease: std::time::Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Whether this engine takes runs that others started or left (default true): false
    /// for one that drives only the runs it starts (`baton run`).
    pub fn claims(mut self, claims: bool) -> Self {
        self.claims = claims;
        self
    }

    /// On a shared store, the most top-level runs this engine drives at once (default: no
    /// limit): past it, the runs it starts are left for the other engines to claim, and it
    /// claims none.
    pub fn max_runs(mut self, max: usize) -> Self {
        self.max_runs = Some(max.max(1));
        self
    }

    /// Whether this engine drives runs at all (default true): false for a client of a
    /// shared store, whose starts and actions are carried out by the engines that drive.
    pub fn drives(mut self, drives: bool) -> Self {
        self.drives = drives;
        self
    }

    /// Opens the store. Unfinished runs are not resumed until [`Engine::recover`].
    /// Must be called inside a tokio runtime.
    pub fn open(self) -> Result<Engine, EngineError> {
        if let Some(e) = self.bad_kind {
            return Err(e.into());
        }
        let engine_id = self.engine_id.unwrap_or_else(cluster::default_engine_id);
        if !crate::model::is_id(&engine_id) {
            return Err(EngineError::BadEngineId(engine_id));
        }
        let opened =
            self.location.as_ref().map(|l| store::open(l, self.store_engine)).transpose()?;
        let scratch_root = match opened.as_ref().and_then(|o| o.dir.as_deref()) {
            Some(dir) => {
                // Holding the store's lock, whatever scratch space is there belongs to
                // processes that died: what their steps left running is ended before any
                // attempt is relaunched. Each engine works in a directory of its own, so
                // an orphaned attempt never shares files with its relaunch.
                let scratch = dir.join("scratch");
                crate::steps::end_orphans(&scratch);
                let _ = std::fs::remove_dir_all(&scratch);
                scratch.join(ulid::Ulid::new().to_string())
            }
            // No store directory (in memory, or a database): a private temporary one,
            // removed at close.
            None => temp_scratch(),
        };
        let (store, sealer) = match &opened {
            Some(opened) => (opened.store.clone(), opened.sealer.clone()),
            None => {
                let store = Arc::new(MemoryStore::default()) as Arc<dyn Store>;
                (store, Arc::new(Sealer::ephemeral()?))
            }
        };
        layout::upgrade(store.as_ref())?;
        let shared_store = opened.as_ref().is_some_and(|o| o.dir.is_none());
        let member = cluster::Membership::new(
            engine_id,
            self.lease,
            self.claims,
            self.drives,
            shared_store,
            store.now_ms()?,
            self.max_runs,
        );
        let breakpoints = actions::Breakpoints::load(store.as_ref())?;
        let limits = limits::Limits::load(store.as_ref(), shared_store)?;
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            events: tokio::sync::broadcast::channel(events::SUBSCRIBER_BUFFER).0,
            breakpoints,
            limits,
            committer: Committer::new(store.clone(), shutdown.clone()),
            store,
            clock: self.clock,
            kinds: std::sync::RwLock::new(self.kinds),
            overrides: Default::default(),
            listener: self.listener,
            scratch_root: scratch_root.into(),
            sealer,
            shutdown,
            attempts: TaskTracker::new(),
            activity: self.activity,
            workflows: Mutex::new(HashMap::new()),
            signal_seq: watch::channel(0).0,
            triggers: Default::default(),
            engine: Default::default(),
            pruning: Default::default(),
            member,
            history: Default::default(),
        });
        registry::load_active(&shared)?;
        let engine = Engine {
            inner: Arc::new(Inner {
                shared,
                opened,
                runs: Arc::new(Mutex::new(HashMap::new())),
                drivers: TaskTracker::new(),
            }),
        };
        let _ = engine.shared.engine.set(engine.downgrade());
        retention::start(&engine, self.retention);
        history::start_writer(&engine);
        engine.join_cluster();
        Ok(engine)
    }
}

/// A workflow engine over one store. Cloning gives another handle to the same engine; the
/// engine lets go of its store when [`close`](Engine::close) is called or the last handle
/// is dropped.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A handle that does not keep the engine open: for the engine's own background tasks,
/// which must not outlive the handles its host holds.
#[derive(Clone)]
pub(crate) struct WeakEngine {
    inner: std::sync::Weak<Inner>,
    shutdown: CancellationToken,
}

impl WeakEngine {
    /// The engine, if it is still open.
    pub(crate) fn upgrade(&self) -> Option<Engine> {
        // Checked first: a handle taken, even for a moment, after `close` could be the
        // last one, and the store would then be let go of on this task's thread, later
        // than the host expects (a reopen right after `close` would find it locked).
        if self.shutdown.is_cancelled() {
            return None;
        }
        self.inner.upgrade().map(|inner| Engine { inner })
    }
}

/// What an [`Engine`] handle points to. It is public only because `Engine` dereferences to
/// it, for the engine's own modules; it has nothing to offer outside the crate.
pub struct Inner {
    shared: Arc<Shared>,
    opened: Option<OpenedStore>,
    runs: Arc<Mutex<HashMap<String, RunHandle>>>,
    drivers: TaskTracker,
}

impl std::ops::Deref for Engine {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// A run driven by this engine.
#[derive(Clone)]
pub(crate) struct RunHandle {
    /// Which driver of the run this is: an engine that gave a run up and took it back
    /// drove it twice.
    serial: u64,
    /// Set once the driver is done.
    outcome: watch::Receiver<Outcome>,
    /// Messages to the driver.
    pub(crate) control: tokio::sync::mpsc::UnboundedSender<run::Msg>,
}

impl Engine {
    /// A builder with the defaults: state in memory, the system clock, the built-in step
    /// kinds.
    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    /// Returns when the store fails to commit (its disk is full, say): the engine has
    /// stopped then, and its unfinished runs resume at the next open. A host that keeps an
    /// engine open for long (`baton serve`) waits on this to close it and say why.
    pub async fn store_failed(&self) -> StoreError {
        self.shared.committer.failed().await
    }

    /// Fires when the engine closes: background tasks end on it.
    pub(crate) fn shutdown_token(&self) -> CancellationToken {
        self.shared.shutdown.clone()
    }

    /// A handle that does not keep the engine open.
    pub(crate) fn downgrade(&self) -> WeakEngine {
        WeakEngine { inner: Arc::downgrade(&self.inner), shutdown: self.shared.shutdown.clone() }
    }

    /// The store engine in use, for a store directory.
    pub fn store_engine(&self) -> Option<StoreEngine> {
        self.opened.as_ref().and_then(|o| o.engine)
    }

    /// The store directory, for a store on disk (a database has none).
    pub fn store_dir(&self) -> Option<&Path> {
        self.opened.as_ref().and_then(|o| o.dir.as_deref())
    }

    /// Validates a definition against this engine's step kinds.
    pub fn compile(&self, def: WorkflowDef) -> Result<Workflow, InvalidDefinition> {
        Workflow::compile(def, &self.shared.kinds.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Adds a step kind, or replaces one added by an earlier call; runs that could not
    /// resume for want of it can then be resumed by [`recover`](Engine::recover). Built-in
    /// kinds and those given to [`EngineBuilder::step_kind`] cannot be replaced.
    pub fn register_step_kind(
        &self,
        name: impl Into<String>,
        kind: Arc<dyn StepKind>,
    ) -> Result<(), EngineError> {
        Ok(self.shared.kinds.write().unwrap_or_else(|e| e.into_inner()).register(name, kind)?)
    }

    /// Runs `kind` in place of the declared kind of step `step_id` of workflow
    /// `workflow_id`, in runs that launch the step from now on (a test double); `None`
    /// restores the declared kind.
    pub fn override_step(&self, workflow_id: &str, step_id: &str, kind: Option<Arc<dyn StepKind>>) {
        let mut overrides = self.shared.overrides.write().unwrap_or_else(|e| e.into_inner());
        let key = (workflow_id.to_owned(), step_id.to_owned());
        match kind {
            Some(kind) => overrides.insert(key, kind),
            None => overrides.remove(&key),
        };
    }

    /// Starts a run of the active version of a registered workflow.
    pub async fn start_registered(
        &self,
        id: &str,
        params: IndexMap<String, Value>,
    ) -> Result<String, EngineError> {
        self.start_with(id, StartOptions { params, ..Default::default() }).await
    }

    /// Starts a run of `workflow` with `params` overriding its defaults, under its run
    /// strategy; returns the run id once the run is durable (it may be queued).
    pub async fn start(
        &self,
        workflow: Arc<Workflow>,
        params: IndexMap<String, Value>,
    ) -> Result<String, EngineError> {
        let start = admission::Start {
            workflow,
            params,
            version: None,
            request_id: None,
            trigger: None,
            origin: Default::default(),
        };
        self.start_outcome(start).await
    }

    /// The state drivers share, for the engine's other modules.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Runs an engine task that [`close`](Engine::close) waits for.
    pub(crate) fn spawn_background(
        &self,
        task: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        self.drivers.spawn(task);
    }

    /// Resumes the unfinished runs of the store that are this engine's to drive; returns
    /// their ids. On a store directory that is every one; on a database, those no live
    /// engine holds (the others keep theirs). A run whose definition no longer validates
    /// here (a step type not registered) is reported, not resumed.
    pub fn recover(&self) -> Result<Vec<Resumed>, EngineError> {
        let mut resumed = Vec::new();
        if self.shared.member.drives {
            let mut free: HashMap<String, (RunRecord, cluster::Claim)> = self
                .free_runs()?
                .into_iter()
                .map(|(run, claim)| (run.id.clone(), (run, claim)))
                .collect();
            for id in records::active_run_ids(self.shared.store.as_ref())? {
                let Some((run, claim)) = free.remove(&id) else {
                    // Child runs resume with their parent step, queued runs in their turn;
                    // a run another live engine drives is its own.
                    let waiting = records::get_run(self.shared.store.as_ref(), &id)?
                        .is_some_and(|r| r.parent.is_some() || r.status == RunStatus::Queued);
                    if waiting {
                        resumed.push((id, Ok(())));
                    }
                    continue;
                };
                let result = (|| {
                    let def = records::get_definition(self.shared.store.as_ref(), &run.definition)?;
                    let workflow = Arc::new(self.compile(def)?);
                    tracing::info!(run = %id, workflow = %run.workflow_id, "resuming run");
                    self.spawn_driver(workflow, run, cluster::Owner::Claiming(claim))
                })();
                if let Err(e) = &result {
                    tracing::error!(run = %id, error = %e, "cannot resume run");
                }
                resumed.push((id, result));
            }
        }
        // Queued runs go as their workflows' strategies allow, now that the others run.
        let weak = self.downgrade();
        self.spawn_background(Activity::track(self.shared.activity.as_ref(), async move {
            if let Some(engine) = weak.upgrade() {
                if let Err(e) = engine.admit_all_queued().await {
                    tracing::error!(error = %e, "cannot admit queued runs");
                }
            }
        }));
        Ok(resumed)
    }

    /// Starts the driver of `run`, which holds its lease or claims it as `owner` says.
    pub(crate) fn spawn_driver(
        &self,
        workflow: Arc<Workflow>,
        run: RunRecord,
        owner: cluster::Owner,
    ) -> Result<(), EngineError> {
        let frame = run::Frame::top(&self.shared);
        self.spawn_driver_in(workflow, run, owner, frame)
    }

    /// [`spawn_driver`](Engine::spawn_driver) in `frame`: a top-level run's, or that of an
    /// iteration another engine's loop offered.
    pub(crate) fn spawn_driver_in(
        &self,
        workflow: Arc<Workflow>,
        run: RunRecord,
        owner: cluster::Owner,
        frame: run::Frame,
    ) -> Result<(), EngineError> {
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let id = run.id.clone();
        let strategy = workflow.def().run_strategy;
        let limited = admission::capacity(&workflow) != usize::MAX;
        let weak = self.downgrade();
        let (tx, rx) = watch::channel(None);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let driver = {
            // Checked and taken under one lock: a resume and a claim of the same run at
            // once (at open) start one driver, not two.
            let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
            if runs.contains_key(&id) {
                tracing::debug!(run = %id, "already driven here");
                return Ok(());
            }
            let driver = run::Driver::new(self.shared.clone(), workflow, run, frame)?.owned(owner);
            runs.insert(id.clone(), RunHandle { serial, outcome: rx, control: driver.sender() });
            driver
        };
        let runs = self.runs.clone();
        self.drivers.spawn(Activity::track(self.shared.activity.as_ref(), async move {
            let result = driver.drive().await;
            match &result {
                Err(EngineError::Closed) => {
                    tracing::debug!(run = %id, "run left for the next open")
                }
                Err(e @ EngineError::LostLease(_)) => tracing::warn!(run = %id, "{e}"),
                Err(e) => tracing::error!(run = %id, error = %e, "run driver stopped"),
                Ok(_) => {}
            }
            {
                let mut runs = runs.lock().unwrap_or_else(|e| e.into_inner());
                if runs.get(&id).is_some_and(|h| h.serial == serial) {
                    runs.remove(&id);
                }
            }
            // The next queued run goes before waiters hear of this end; an offered iteration
            // is over for the other engines.
            if let (Ok(run), Some(engine)) = (&result, weak.upgrade()) {
                if run.parent.is_some() {
                    let mut batch = Batch::default();
                    flow::spread::withdraw(&mut batch, &run.id);
                    if let Err(e) = engine.shared.committer.commit(batch).await {
                        tracing::warn!(run = %id, error = %e, "cannot withdraw an offered iteration; the next look does");
                    }
                } else if let Err(e) = engine.run_ended(run, strategy, limited).await {
                    tracing::error!(run = %id, error = %e, "cannot admit the next queued run");
                }
            }
            let _ = tx.send(Some(result.map_err(|e| e.to_string())));
        }));
        Ok(())
    }

    /// Sends a signal: it is stored, then every step waiting for it looks at it. Returns
    /// the signal's id.
    pub async fn signal(
        &self,
        name: &str,
        params: IndexMap<String, Value>,
    ) -> Result<String, EngineError> {
        // No trigger or step could wait for a name that is not one.
        if let Some(problem) = crate::model::signal_name_problem(name) {
            return Err(EngineError::BadSignalName(problem));
        }
        let signal = SignalRecord {
            id: next_run_id(),
            name: name.to_owned(),
            params,
            sent_ms: self.shared.clock.now_ms(),
            source: None,
        };
        let mut batch = Batch::default();
        records::put_signal(&mut batch, &signal);
        self.shared.committer.commit(batch).await?;
        self.shared.signal_seq.send_modify(|n| *n += 1);
        tracing::info!(signal = %name, id = %signal.id, "signal sent");
        Ok(signal.id)
    }

    /// Signals in the store, oldest first; only those named `name` if given.
    pub fn signals(&self, name: Option<&str>) -> Result<Vec<SignalRecord>, EngineError> {
        let mut out = Vec::new();
        records::scan_signals(self.shared.store.as_ref(), name, |s| {
            out.push(s);
            true
        })?;
        Ok(out)
    }

    /// The progress of a `foreach` or `while` step of a run.
    pub fn rollup(&self, run_id: &str, step: usize) -> Result<Option<Rollup>, EngineError> {
        Ok(records::get_rollup(self.shared.store.as_ref(), run_id, step)?)
    }

    /// Waits for a run to end; returns its final record.
    pub async fn wait(&self, run_id: &str) -> Result<RunRecord, EngineError> {
        // Made at the first look in the store: a change after it wakes the next look.
        let mut changes = None;
        let started = std::time::Instant::now();
        loop {
            let rx = self
                .runs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(run_id)
                .map(|h| h.outcome.clone());
            if let Some(mut rx) = rx {
                let outcome = rx.wait_for(Option::is_some).await.map(|o| o.clone());
                if let Ok(Some(Ok(run))) = outcome {
                    return Ok(run);
                }
                // A store that failed stopped every run: that is the news, not the driver's.
                if let Some(failure) = self.shared.committer.failure() {
                    return Err(failure.into());
                }
                // The engine closed under the driver; the run resumes at the next open.
                if self.shared.shutdown.is_cancelled() {
                    return Err(EngineError::Closed);
                }
                // On a shared store the driver may have given the run up to another engine:
                // the store says how it goes on.
                if let (Ok(Some(Err(message))), false) = (outcome, self.shared.member.shared_store)
                {
                    return Err(EngineError::Driver { run_id: run_id.into(), message });
                }
                // The driver ended without a word: read what it left in the store.
            }
            // The driver may have stopped on the store's failure before this call found it.
            if let Some(failure) = self.shared.committer.failure() {
                return Err(failure.into());
            }
            let changes = changes.get_or_insert_with(|| self.subscribe());
            let run = self.run(run_id)?.ok_or_else(|| EngineError::UnknownRun(run_id.into()))?;
            if run.status.is_terminal() {
                return Ok(run);
            }
            // A queued run gets its driver when its strategy admits it, and an admitted one
            // a moment after the store says so: look again at the next change. On a shared
            // store another engine may drive it: look again until it ends. Any other
            // unfinished run with no driver for a while is not this engine's to drive.
            let admitting = started.elapsed() < ADMISSION_GRACE;
            let elsewhere = self.shared.member.shared_store;
            if self.shared.shutdown.is_cancelled()
                || !(run.status == RunStatus::Queued || admitting || elsewhere)
            {
                return Err(EngineError::NotRunningHere(run_id.into()));
            }
            let pause = std::time::Duration::from_millis(if elsewhere { 200 } else { 50 });
            let _ = tokio::time::timeout(pause, changes.recv()).await;
        }
    }

    /// A run's record.
    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>, EngineError> {
        Ok(records::get_run(self.shared.store.as_ref(), run_id)?)
    }

    /// Every run, oldest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, EngineError> {
        Ok(records::list_runs(self.shared.store.as_ref())?)
    }

    /// Ids of runs that are not finished.
    pub fn unfinished_runs(&self) -> Result<Vec<String>, EngineError> {
        Ok(records::active_run_ids(self.shared.store.as_ref())?)
    }

    /// A run with the state of every step.
    pub fn details(&self, run_id: &str) -> Result<RunDetails, EngineError> {
        let store = self.shared.store.as_ref();
        let run = records::get_run(store, run_id)?
            .ok_or_else(|| EngineError::UnknownRun(run_id.into()))?;
        let view = |id: &str, kind: &str| StepView {
            id: id.to_owned(),
            kind: kind.to_owned(),
            record: StepRecord::new(StepStatus::Pending, 0),
            rollup: None,
            child_run: None,
        };
        let mut steps: Vec<StepView> =
            match registry::cached_definition(&self.shared, &run.workflow_id, &run.definition) {
                Some(wf) => wf.def().steps.iter().map(|s| view(&s.id, &s.kind)).collect(),
                None => records::get_definition(store, &run.definition)?
                    .steps
                    .iter()
                    .map(|s| view(&s.id, &s.kind))
                    .collect(),
            };
        records::scan_steps(store, run_id, |i, record| {
            if let Some(view) = steps.get_mut(i) {
                view.record = record;
            }
        })?;
        // What nested runs did is summed up in their step's rollup, or linked.
        for (i, view) in steps.iter_mut().enumerate() {
            match view.kind.as_str() {
                "foreach" | "while" if view.record.attempt > 0 => {
                    view.rollup = records::get_rollup(store, run_id, i)?
                }
                "subworkflow" if view.record.attempt > 0 => {
                    view.child_run =
                        Some(flow::child_run_id(run_id, &view.id, view.record.attempt, None));
                }
                _ => {}
            }
        }
        Ok(RunDetails { run, steps })
    }

    /// Stops scheduling, asks running steps to stop and waits for them (a shell command
    /// gets SIGTERM, then SIGKILL after a grace period), then lets go of the store.
    /// Unfinished runs stay in the store and resume at the next open.
    pub async fn close(&self) {
        self.shared.shutdown.cancel();
        self.drivers.close();
        self.drivers.wait().await;
        self.shared.attempts.close();
        self.shared.attempts.wait().await;
        self.leave().await;
        // What the last second of step ends added to their histories.
        if let Err(e) = self.write_histories().await {
            tracing::warn!(error = %e, "step histories not written at close");
        }
        self.shared.committer.close();
        if self.store_dir().is_none() {
            let _ = std::fs::remove_dir_all(&self.shared.scratch_root);
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Without a runtime to wait on, stop what can be stopped.
        self.shared.shutdown.cancel();
        self.shared.committer.close();
        if self.opened.as_ref().and_then(|o| o.dir.as_ref()).is_none() {
            let _ = std::fs::remove_dir_all(&self.shared.scratch_root);
        }
    }
}

/// A new scratch directory in the system's temporary directory, named after this process.
/// What engines of dead processes left there (killed, they never closed) is removed first,
/// after ending the processes their steps left running.
fn temp_scratch() -> std::path::PathBuf {
    let temp = std::env::temp_dir();
    let dead = |name: &str| {
        let mut parts = name.strip_prefix(TEMP_SCRATCH_PREFIX)?.splitn(2, '-');
        let pid = parts.next()?.parse::<libc::pid_t>().ok()?;
        let unique = parts.next()?;
        (ulid::Ulid::from_string(unique).is_ok() && crate::process::gone(pid)).then_some(())
    };
    for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
        if entry.file_name().to_str().and_then(dead).is_some() {
            crate::steps::end_orphans(&entry.path());
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    temp.join(format!("{TEMP_SCRATCH_PREFIX}{}-{}", std::process::id(), ulid::Ulid::new()))
}

/// How the scratch directories of engines without a store directory begin.
const TEMP_SCRATCH_PREFIX: &str = "baton-";

/// How long [`Engine::wait`] gives an admitted run to get its driver.
const ADMISSION_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// A new run id: a ULID, increasing even between runs started in the same millisecond,
/// so that ids sort in creation order.
pub(crate) fn next_run_id() -> String {
    static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);
    let mut generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let generator = generator.get_or_insert_with(ulid::Generator::new);
    // Overflow needs 2^80 ids in one millisecond; a fresh random ULID is then fine.
    generator.generate().unwrap_or_else(|_| ulid::Ulid::new()).to_string()
}

/// The workflow's defaults with `overrides` applied, each of the type of its param's default
/// (see [`conform`]). Every secret must be given.
pub(crate) fn merge_params(
    def: &WorkflowDef,
    mut overrides: IndexMap<String, Value>,
) -> Result<IndexMap<String, Value>, EngineError> {
    let mut params = def.params.clone();
    for name in &def.secrets {
        let value = overrides
            .shift_remove(name)
            .ok_or_else(|| EngineError::MissingSecret { name: name.clone() })?;
        params.insert(name.clone(), value);
    }
    for (name, wanted) in &def.required {
        if !overrides.contains_key(name) {
            let wanted =
                serde_json::to_value(wanted).ok().and_then(|v| v.as_str().map(str::to_owned));
            return Err(EngineError::MissingParam {
                name: name.clone(),
                wanted: wanted.unwrap_or_default(),
            });
        }
    }
    for (name, value) in overrides {
        // What a given value is conformed to: the default, the declared type, or (for a
        // computed param given by the start) any value.
        let exemplar = def.required.get(&name).map(|t| t.exemplar());
        let any = def.computed.contains_key(&name).then_some(Value::Null);
        let Some(default) = def.params.get(&name).or(exemplar.as_ref()).or(any.as_ref()) else {
            let hint = crate::error::did_you_mean(&name, def.param_names());
            let declared: Vec<&str> = def.param_names().collect();
            let declared =
                if declared.is_empty() { "no parameters".into() } else { declared.join(", ") };
            return Err(EngineError::UnknownParam { name, hint, declared });
        };
        let value = conform(default, value)
            .map_err(|message| EngineError::BadParam { name: name.clone(), message })?;
        params.insert(name, value);
    }
    Ok(params)
}

/// Evaluates the workflow's `computed` params that the start did not give, in order, each
/// seeing the params before it, the clock (`now()`) and the run (`scheduled_at()`): once,
/// when the run is made, so that the run keeps the values it started with.
pub(crate) fn compute_params(
    wf: &Workflow,
    params: &mut IndexMap<String, Value>,
    run: &crate::expr::RunContext,
    now_ms: u64,
) -> Result<(), EngineError> {
    struct AtStart<'a> {
        params: &'a IndexMap<String, Value>,
        run: &'a crate::expr::RunContext,
        now_ms: u64,
    }
    impl crate::expr::Scope for AtStart<'_> {
        fn name(&self, name: &str) -> Option<Value> {
            self.params.get(name).cloned()
        }
        fn now_ms(&self) -> u64 {
            self.now_ms
        }
        fn run(&self) -> Option<&crate::expr::RunContext> {
            Some(self.run)
        }
    }
    for (name, template) in wf.computed() {
        if params.contains_key(name) {
            continue;
        }
        let value = template
            .evaluate(&AtStart { params, run, now_ms })
            .map_err(|e| EngineError::BadParam { name: name.clone(), message: e.to_string() })?;
        params.insert(name.clone(), value);
    }
    Ok(())
}

/// `value` as a value of the type of `default`, the param's declared type: an integer, a
/// number, a boolean, a string, a list or a map (a `null` default takes any value). Text is
/// read as the type it is given for (`-p rows=42`, `-p parts=[1,2]`); anything else of
/// another type is refused, never silently changed.
fn conform(default: &Value, value: Value) -> Result<Value, String> {
    let wanted = match default {
        Value::Null => return Ok(value),
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::Bool(_) => "true or false",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    };
    let read = |text: &str| serde_json::from_str::<Value>(text.trim()).ok();
    let given = match &value {
        Value::String(s) => format!("`{s}`"),
        Value::Null => "null".to_owned(),
        other => format!("{} ({other})", crate::expr::kind_of(other)),
    };
    let conformed = match (default, value) {
        (_, Value::Null) => None,
        (Value::Number(d), Value::String(s)) if d.is_f64() => read(&s).filter(Value::is_number),
        (Value::Number(_), Value::String(s)) => read(&s).filter(|v| v.is_i64() || v.is_u64()),
        (Value::Number(d), v @ Value::Number(_)) if d.is_f64() => Some(v),
        (Value::Number(_), Value::Number(n)) => {
            let whole = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15);
            n.is_i64()
                .then(|| Value::Number(n.clone()))
                .or_else(|| n.is_u64().then(|| Value::Number(n.clone())))
                .or_else(|| whole.map(|f| Value::from(f as i64)))
        }
        (Value::Bool(_), Value::String(s)) => match s.trim() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        (Value::Array(_), Value::String(s)) => read(&s).filter(Value::is_array),
        (Value::Object(_), Value::String(s)) => read(&s).filter(Value::is_object),
        (d, v) if std::mem::discriminant(d) == std::mem::discriminant(&v) => Some(v),
        _ => None,
    };
    conformed.ok_or_else(|| format!("expects {wanted} (default {default}), got {given}"))
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_param_keeps_the_type_of_its_default() {
        let ok = |default: serde_json::Value, given: serde_json::Value| {
            super::conform(&default, given).unwrap()
        };
        let refused = |default: serde_json::Value, given: serde_json::Value| {
            super::conform(&default, given).unwrap_err()
        };
        assert_eq!(ok(json!(10), json!("42")), json!(42));
        assert_eq!(ok(json!(10), json!(7)), json!(7));
        assert_eq!(ok(json!(10), json!(3.0)), json!(3));
        assert_eq!(ok(json!(0.5), json!("2")), json!(2));
        assert_eq!(ok(json!(true), json!("false")), json!(false));
        assert_eq!(ok(json!("day"), json!("2026-12-01")), json!("2026-12-01"));
        assert_eq!(ok(json!([1]), json!("[1, 2]")), json!([1, 2]));
        assert_eq!(ok(json!({"a": 1}), json!({"b": 2})), json!({"b": 2}));
        assert_eq!(ok(json!(null), json!(2.5)), json!(2.5));
        assert_eq!(
            refused(json!(10), json!(2.5)),
            "expects an integer (default 10), got a float (2.5)"
        );
        assert_eq!(refused(json!(10), json!("2.5")), "expects an integer (default 10), got `2.5`");
        assert_eq!(
            refused(json!("day"), json!(7)),
            "expects a string (default \"day\"), got an integer (7)"
        );
        assert_eq!(refused(json!([1]), json!("x")), "expects a list (default [1]), got `x`");
        assert_eq!(
            refused(json!([1]), json!({"a": 1})),
            "expects a list (default [1]), got a map ({\"a\":1})"
        );
        assert_eq!(
            refused(json!("day"), json!(null)),
            "expects a string (default \"day\"), got null"
        );
        assert_eq!(
            refused(json!(true), json!("yes")),
            "expects true or false (default true), got `yes`"
        );
    }

    #[test]
    fn run_ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..10_000).map(|_| super::next_run_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}

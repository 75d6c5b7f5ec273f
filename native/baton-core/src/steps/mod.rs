//! Step kinds: what a step does when it runs.
//!
//! The leaf kinds built in are `noop`, `sleep`, `shell` and `http`; the engine adds its own kinds
//! that nest runs (`foreach`, `while`, `subworkflow`, `wait_signal`, in `engine::flow`). A
//! host (the Java bridge, a test) adds its own kinds by implementing [`StepKind`]; the
//! engine knows no more about them.

pub(crate) mod http;
mod shell;
mod sleep;

pub use http::Http;
#[cfg(fuzzing)]
pub(crate) use shell::parse_outputs;
pub use shell::Shell;
pub(crate) use shell::{end_orphans, render_command};
pub use sleep::Sleep;

use crate::clock::Clock;
use crate::model::StepDef;
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Named values a step produces, visible downstream as `${step.key}`.
pub type Outputs = IndexMap<String, Value>;

/// The optional fields of a step that only some kinds use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `command`: a shell command.
    Command,
    /// `env`: environment variables of a process.
    Env,
    /// `duration`: how long to sleep.
    Duration,
    /// `params`: parameters of a host kind, a Java step or a subworkflow.
    Params,
    /// `over`: the list a `foreach` iterates over.
    Over,
    /// `as`: the name of a `foreach` item.
    As,
    /// `steps`: the body of a loop.
    Steps,
    /// `workflow`: a registered workflow a loop or subworkflow runs.
    Workflow,
    /// `file`: a definition file a subworkflow runs.
    File,
    /// `version`: the registered version a subworkflow runs.
    Version,
    /// `inherit_params`: whether a subworkflow passes its run's params down.
    InheritParams,
    /// `wait`: whether a subworkflow waits for its child.
    Wait,
    /// `max_parallel`: iterations of a `foreach` at once.
    MaxParallel,
    /// `fail_fast`: whether a failed iteration stops the others.
    FailFast,
    /// `condition`: what keeps a `while` going.
    Condition,
    /// `max_iterations`: the most iterations of a `while`.
    MaxIterations,
    /// `carry`: the values a `while` carries from one iteration to the next.
    Carry,
    /// `signal`: the signal a `wait_signal` waits for.
    Signal,
    /// `match`: which signals a `wait_signal` accepts.
    Match,
    /// `method`: the method of an `http` request.
    Method,
    /// `url`: where an `http` request goes.
    Url,
    /// `headers`: the headers of an `http` request.
    Headers,
    /// `body`: the body of an `http` request.
    Body,
    /// `expect`: the status codes an `http` step accepts.
    Expect,
    /// `outputs`: the outputs an `http` step picks from the response.
    Outputs,
}

impl Field {
    const ALL: [Field; 25] = [
        Field::Command,
        Field::Env,
        Field::Duration,
        Field::Params,
        Field::Over,
        Field::As,
        Field::Steps,
        Field::Workflow,
        Field::File,
        Field::Version,
        Field::InheritParams,
        Field::Wait,
        Field::MaxParallel,
        Field::FailFast,
        Field::Condition,
        Field::MaxIterations,
        Field::Carry,
        Field::Signal,
        Field::Match,
        Field::Method,
        Field::Url,
        Field::Headers,
        Field::Body,
        Field::Expect,
        Field::Outputs,
    ];

    /// The name in the definition.
    pub fn name(self) -> &'static str {
        match self {
            Field::Command => "command",
            Field::Env => "env",
            Field::Duration => "duration",
            Field::Params => "params",
            Field::Over => "over",
            Field::As => "as",
            Field::Steps => "steps",
            Field::Workflow => "workflow",
            Field::File => "file",
            Field::Version => "version",
            Field::InheritParams => "inherit_params",
            Field::Wait => "wait",
            Field::MaxParallel => "max_parallel",
            Field::FailFast => "fail_fast",
            Field::Condition => "condition",
            Field::MaxIterations => "max_iterations",
            Field::Carry => "carry",
            Field::Signal => "signal",
            Field::Match => "match",
            Field::Method => "method",
            Field::Url => "url",
            Field::Headers => "headers",
            Field::Body => "body",
            Field::Expect => "expect",
            Field::Outputs => "outputs",
        }
    }

    fn is_set(self, step: &StepDef) -> bool {
        match self {
            Field::Command => step.options().command.is_some(),
            Field::Env => !step.options().env.is_empty(),
            Field::Duration => step.options().duration.is_some(),
            Field::Params => !step.options().params.is_empty(),
            Field::Over => step.flow().over.is_some() || !step.flow().over_product.is_empty(),
            Field::As => step.flow().item_name.is_some(),
            Field::Steps => !step.flow().steps.is_empty(),
            Field::Workflow => step.flow().workflow.is_some(),
            Field::File => step.flow().file.is_some(),
            Field::Version => step.flow().version.is_some(),
            Field::InheritParams => step.flow().inherit_params,
            Field::Wait => step.flow().wait.is_some(),
            Field::MaxParallel => step.flow().max_parallel.is_some(),
            Field::FailFast => step.flow().fail_fast,
            Field::Condition => step.flow().condition.is_some(),
            Field::MaxIterations => step.flow().max_iterations.is_some(),
            Field::Carry => !step.flow().carry.is_empty(),
            Field::Signal => step.flow().signal.is_some(),
            Field::Match => step.flow().signal_match.is_some(),
            Field::Method => step.http().method.is_some(),
            Field::Url => step.http().url.is_some(),
            Field::Headers => !step.http().headers.is_empty(),
            Field::Body => step.http().body.is_some(),
            Field::Expect => !step.http().expect.is_empty(),
            Field::Outputs => !step.http().outputs.is_empty(),
        }
    }
}

/// A problem with one field of a step, found by its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// The field, as a dotted path (`params.query`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// What one attempt of a step is given.
pub struct StepContext {
    /// The run the attempt belongs to.
    pub run_id: String,
    /// The workflow the run runs (`parent.step` for a loop body).
    pub workflow_id: String,
    /// The step.
    pub step_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Stable across relaunches of the same attempt after a crash: `run/step/attempt`.
    pub idempotency_key: String,
    /// The run's parameters.
    pub params: Arc<IndexMap<String, Value>>,
    /// Outputs of the direct upstream steps, by step id.
    pub inputs: IndexMap<String, Outputs>,
    /// `command`, with `${...}` substituted.
    pub command: Option<String>,
    /// `env`, with `${...}` substituted.
    pub env: IndexMap<String, String>,
    /// `params` of the step, with `${...}` substituted.
    pub step_params: IndexMap<String, Value>,
    /// `duration`, parsed.
    pub duration: Option<Duration>,
    /// An `http` step's request, with `${...}` substituted.
    pub(crate) request: Option<http::Request>,
    /// When this attempt first started (milliseconds since the epoch); it survives a
    /// restart, so a sleep resumed after a crash only sleeps what is left.
    pub started_ms: u64,
    /// Triggered when the engine wants the step to stop (timeout, stop of the run).
    pub cancel: CancellationToken,
    /// Triggered when the run is killed: stop at once, without cleanup. `cancel` fires
    /// too, so a kind that only watches `cancel` stops as well.
    pub kill: CancellationToken,
    /// The engine's clock: a kind waits on it, so that virtual time moves its waits too.
    pub clock: Arc<dyn Clock>,
    /// The id of the engine running the attempt (`$BATON_ENGINE_ID` for a shell step).
    pub engine_id: String,
    /// Where the engine keeps attempts' scratch directories (see [`StepContext::scratch_dir`]).
    pub(crate) scratch_root: Arc<Path>,
    /// Numbers the launches of this process.
    pub(crate) launch: u64,
    /// Tells the engine that the attempt is waiting, or running again.
    pub status: StatusHandle,
}

impl StepContext {
    /// A directory reserved for the attempt's scratch files: a kind that needs one creates
    /// it and removes it when the attempt ends (the engine empties the whole scratch space
    /// when it opens and closes).
    pub fn scratch_dir(&self) -> PathBuf {
        // One per launch: an attempt launched again in this process (its run given up to
        // another engine, then taken back) never shares the directory its first launch
        // removes when it ends.
        self.scratch_root
            .join(&self.run_id)
            .join(format!("{}-{}.{}", self.step_id, self.attempt, self.launch))
    }
}

/// Lets a running attempt report that it waits (for a signal, for its code to be
/// registered by the host), with a reason shown to users, or that it runs again.
#[derive(Clone)]
pub struct StatusHandle(Arc<dyn Fn(Option<String>) + Send + Sync>);

impl StatusHandle {
    pub(crate) fn new(report: impl Fn(Option<String>) + Send + Sync + 'static) -> Self {
        StatusHandle(Arc::new(report))
    }

    /// The step is WAITING, for `reason`.
    pub fn waiting(&self, reason: impl Into<String>) {
        (self.0)(Some(reason.into()))
    }

    /// The step is RUNNING again.
    pub fn running(&self) {
        (self.0)(None)
    }
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// Outputs, or the error message.
    pub result: Result<Outputs, String>,
    /// The end of what the step printed, shown by `baton show`.
    pub log_tail: Option<String>,
    /// What kind of failure it is, for the step's retry policy.
    pub class: FailureClass,
}

/// What kind of failure an attempt's is: a retry policy treats each its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FailureClass {
    /// A failure a retry may mend (or no failure).
    #[default]
    Retryable,
    /// A command that exited with this code (`retry.final_exit_codes` may make it final).
    Exit(i32),
    /// The step's code said no retry can mend it (a Java step's `ctx.fail(...)`).
    Final,
    /// The attempt ran past its timeout (retried only with `retry.on_timeout`).
    Timeout,
}

impl StepOutcome {
    /// A success with these outputs.
    pub fn success(outputs: Outputs) -> Self {
        StepOutcome { result: Ok(outputs), log_tail: None, class: FailureClass::Retryable }
    }

    /// A failure saying why.
    pub fn failure(message: impl Into<String>) -> Self {
        StepOutcome { result: Err(message.into()), log_tail: None, class: FailureClass::Retryable }
    }
}

/// A running attempt.
pub type StepFuture = Pin<Box<dyn Future<Output = StepOutcome> + Send>>;

/// A kind of step.
pub trait StepKind: Send + Sync + 'static {
    /// The optional fields this kind uses; setting another is a definition error.
    fn fields(&self) -> &'static [Field];

    /// Problems with a step of this kind, beyond field presence.
    fn check(&self, _step: &StepDef) -> Vec<FieldProblem> {
        Vec::new()
    }

    /// True for a kind that does nothing outside the engine: its steps complete inside the
    /// scheduler without being launched.
    fn is_inline(&self) -> bool {
        false
    }

    /// True for a kind whose attempts work outside the engine from launch to end (a child
    /// process): an engine on virtual time counts them as work in motion, so that time does
    /// not move while they run (see [`crate::activity`]).
    fn works_outside(&self) -> bool {
        false
    }

    /// True for a kind that reads the `params` and `inputs` of its context (a host's kinds
    /// do). In a loop body they then also hold the names of the runs around the loop, which
    /// costs a copy of those names per attempt; the built-in kinds read only their fields.
    fn reads_names(&self) -> bool {
        true
    }

    /// True for a kind whose outputs are what someone outside the workflow sent (a
    /// signal's params): validation warns when a `${raw(...)}` runs them as shell code.
    fn outputs_from_outside(&self) -> bool {
        false
    }

    /// Runs one attempt. Must return soon after `ctx.cancel` fires.
    fn run(&self, ctx: StepContext) -> StepFuture;
}

struct Noop;

impl StepKind for Noop {
    fn fields(&self) -> &'static [Field] {
        &[]
    }
    fn is_inline(&self) -> bool {
        true
    }
    fn reads_names(&self) -> bool {
        false
    }
    fn run(&self, _ctx: StepContext) -> StepFuture {
        Box::pin(async { StepOutcome::success(Outputs::new()) })
    }
}

/// A kind that may not be registered under this name: a built-in kind's, one the host gave
/// when the engine was opened, or a name that is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReservedKind(pub String);

/// The step kinds an engine knows, by name.
#[derive(Clone)]
pub struct StepKinds {
    kinds: HashMap<String, Arc<dyn StepKind>>,
    /// Names that cannot be registered again: the built-in kinds and the host's fixed ones.
    fixed: HashSet<String>,
    /// Whether a kind not known here is taken for one a host will register (see
    /// [`StepKinds::open`]).
    open: bool,
}

impl Default for StepKinds {
    fn default() -> Self {
        let built_in: [(&str, Arc<dyn StepKind>); 4] = [
            ("noop", Arc::new(Noop)),
            ("sleep", Arc::new(Sleep)),
            ("shell", Arc::new(Shell)),
            ("http", Arc::new(Http::default())),
        ];
        StepKinds {
            fixed: built_in.iter().map(|(name, _)| name.to_string()).collect(),
            kinds: built_in.into_iter().map(|(name, kind)| (name.to_string(), kind)).collect(),
            open: false,
        }
    }
}

/// The stand-in of a kind a host has not registered yet: what every host kind takes.
struct HostKindToCome;

impl StepKind for HostKindToCome {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }
    fn run(&self, _ctx: StepContext) -> StepFuture {
        Box::pin(async { StepOutcome::failure("this step type is not registered in this engine") })
    }
}

impl StepKinds {
    /// The built-in kinds, and any other name taken for a kind a host will register (with
    /// `params` only): what a definition can be checked against before an engine runs it.
    /// The engine checks host kinds' own rules again at `register`.
    pub fn open(self) -> Self {
        StepKinds { open: true, ..self }
    }

    /// Adds a kind, or replaces one added by an earlier `register`. Built-in kinds and
    /// kinds added with [`fix`](Self::fix) cannot be replaced.
    pub fn register(
        &mut self,
        name: impl Into<String>,
        kind: Arc<dyn StepKind>,
    ) -> Result<(), ReservedKind> {
        let name = name.into();
        if let Some(problem) = crate::model::id_problem(&name, "step type name") {
            return Err(ReservedKind(problem));
        }
        if self.fixed.contains(&name) {
            return Err(ReservedKind(format!(
                "`{name}` is a built-in step type and cannot be replaced"
            )));
        }
        self.kinds.insert(name, kind);
        Ok(())
    }

    /// Adds a kind that later registrations cannot replace (the host's own kinds).
    pub fn fix(
        &mut self,
        name: impl Into<String>,
        kind: Arc<dyn StepKind>,
    ) -> Result<(), ReservedKind> {
        let name = name.into();
        self.register(name.clone(), kind)?;
        self.fixed.insert(name);
        Ok(())
    }

    /// The kind named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn StepKind>> {
        self.kinds.get(name)
    }

    /// Kind names, sorted.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.kinds.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// The optional fields each kind takes, by kind name (sorted): what a host's DSL offers.
    pub fn fields_by_kind(&self) -> std::collections::BTreeMap<&str, Vec<&'static str>> {
        self.kinds
            .iter()
            .map(|(name, kind)| (name.as_str(), kind.fields().iter().map(|f| f.name()).collect()))
            .collect()
    }

    /// Every problem with `step`'s kind and its kind-specific fields.
    pub(crate) fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let kind: &dyn StepKind = match self.get(&step.kind) {
            Some(kind) => kind.as_ref(),
            None if self.open && crate::model::is_id(&step.kind) => &HostKindToCome,
            None if step.kind.is_empty() => {
                let message =
                    format!("the step has no type; known types: {}", self.names().join(", "));
                return vec![FieldProblem { field: "type".into(), message }];
            }
            None => {
                let hint = crate::error::did_you_mean(&step.kind, self.names());
                let message = format!(
                    "unknown step type `{}`{hint}; known types: {}",
                    step.kind,
                    self.names().join(", ")
                );
                return vec![FieldProblem { field: "type".into(), message }];
            }
        };
        let problems = self.field_problems(step, kind);
        // A step the host's kinds could not take either, named like a built-in kind: a typo.
        if !problems.is_empty() && self.get(&step.kind).is_none() {
            let hint = crate::error::did_you_mean(&step.kind, self.names());
            if !hint.is_empty() {
                let message = format!("unknown step type `{}`{hint}", step.kind);
                return vec![FieldProblem { field: "type".into(), message }];
            }
        }
        problems
    }

    fn field_problems(&self, step: &StepDef, kind: &dyn StepKind) -> Vec<FieldProblem> {
        let mut problems: Vec<FieldProblem> = Field::ALL
            .iter()
            // `params` go on any step: a kind that takes none passes them downstream.
            .filter(|f| f.is_set(step) && **f != Field::Params && !kind.fields().contains(f))
            .map(|f| FieldProblem {
                field: f.name().into(),
                message: format!("`{}` is not used by `{}` steps", f.name(), step.kind),
            })
            .collect();
        problems.extend(kind.check(step));
        problems
    }
}

/// A problem saying a required field is missing.
pub(crate) fn missing(field: Field, kind: &str, example: &str) -> FieldProblem {
    FieldProblem {
        field: field.name().into(),
        message: format!(
            "`{kind}` steps need `{}` (e.g. `{}: {example}`)",
            field.name(),
            field.name()
        ),
    }
}

/// A problem saying a step needs exactly one of two fields.
pub(crate) fn one_of(step: &StepDef, kind: &str, a: Field, b: Field) -> Option<FieldProblem> {
    match (a.is_set(step), b.is_set(step)) {
        (true, false) | (false, true) => None,
        (set, _) => Some(FieldProblem {
            field: if set { b.name() } else { a.name() }.into(),
            message: format!(
                "`{kind}` steps need exactly one of `{}` and `{}`",
                a.name(),
                b.name()
            ),
        }),
    }
}

/// A problem for a field that must be an expression but is plain text; `advice` says what
/// to write instead.
pub(crate) fn not_an_expression(field: &str, text: &str, advice: &str) -> Option<FieldProblem> {
    crate::expr::Template::parse(text).is_ok_and(|t| t.is_plain()).then(|| FieldProblem {
        field: field.into(),
        message: format!("`{text}` is not an expression: write {advice}"),
    })
}

/// Whether `name` can be used as a name in expressions.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

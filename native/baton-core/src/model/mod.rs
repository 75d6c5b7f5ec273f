//! Workflow definitions: the one model behind YAML, JSON and the Java DSL.
//!
//! The model is plain data. It deserializes strictly (unknown fields are errors) but
//! checks nothing else: durations, step kinds and the graph are checked by [`crate::dag`],
//! which reports every problem at once.

mod duration;
mod load;

pub use duration::{format_duration, parse_duration, DurationSpec};
pub use load::{Format, Source};

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A workflow: parameters and a DAG of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    /// Identifier, `[A-Za-z0-9_.-]+`.
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Parameters with their default values; a run may override them.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
    /// Steps of one run running at once (default: the number of cores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<usize>,
    /// Limit on the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// How long ago a signal may have been sent and still match a `wait_signal` step
    /// (default 1 day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_retention: Option<DurationSpec>,
    pub steps: Vec<StepDef>,
    /// What starts runs on its own: cron schedules and signals (see [`crate::triggers`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerDef>,
    /// How a start relates to the runs of the workflow already going on.
    #[serde(default, skip_serializing_if = "RunStrategy::is_default")]
    pub run_strategy: RunStrategy,
    /// Runs at once under `run_strategy: parallel` (default: no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_runs: Option<usize>,
}

/// A trigger: exactly one of `cron` and `signal`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    /// A cron expression: 5 fields (minute to day of week), or 6/7 with seconds first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA zone the cron expression reads its times in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What a cron trigger does about times it missed while no engine ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire: Option<Misfire>,
    /// The signal that starts a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Which signals start a run, `${...}` over `signal.<param>`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "match")]
    pub signal_match: Option<String>,
    /// Parameters of the run; string values may use `${...}` over `trigger.*` and `signal.*`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
}

/// What a cron trigger does about the times it missed (the engine was not running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Misfire {
    /// Start nothing; the missed times are recorded as skipped.
    Skip,
    /// One run, for the latest missed time.
    #[default]
    RunOnce,
    /// A run for every missed time (the latest 100 at most).
    RunAll,
}

/// How a new run relates to the runs of its workflow already going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStrategy {
    /// One run at a time; new runs wait in order.
    Sequential,
    /// Like `sequential`, but a failed run holds the queue until the workflow is unblocked.
    StrictSequential,
    /// A new run is refused while one is going on.
    FirstOnly,
    /// A new run stops the one going on (and replaces any waiting).
    LastOnly,
    /// Runs go on side by side, `max_concurrent_runs` at most (default: no limit).
    #[default]
    Parallel,
}

impl RunStrategy {
    fn is_default(&self) -> bool {
        *self == RunStrategy::default()
    }

    pub fn name(self) -> &'static str {
        match self {
            RunStrategy::Sequential => "sequential",
            RunStrategy::StrictSequential => "strict_sequential",
            RunStrategy::FirstOnly => "first_only",
            RunStrategy::LastOnly => "last_only",
            RunStrategy::Parallel => "parallel",
        }
    }
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepDef {
    /// Identifier, unique in the workflow, `[A-Za-z0-9_.-]+`.
    pub id: String,
    /// The step kind: `noop`, `sleep`, `shell` or a kind the host registered.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Shell command (`shell` steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// How long to sleep (`sleep` steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
    /// Environment variables (`shell` steps); values may use `${...}`.
    #[serde(
        default,
        skip_serializing_if = "IndexMap::is_empty",
        deserialize_with = "scalar_map"
    )]
    pub env: IndexMap<String, String>,
    /// Parameters of host-defined step kinds; string values may use `${...}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryDef>,
    /// Limit on one attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "FailureMode::is_default")]
    pub failure_mode: FailureMode,
    /// A condition, `${...}`: false skips the step.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "when")]
    pub when: Option<String>,
    /// Which outcomes of the upstream steps let the step run.
    #[serde(default, skip_serializing_if = "Trigger::is_default")]
    pub trigger: Trigger,
    /// The list a `foreach` step iterates over, `${...}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub over: Option<String>,
    /// The name of the current item in a `foreach` body (default `item`).
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "as")]
    pub item_name: Option<String>,
    /// The body of a `foreach` or `while` step: a DAG run once per iteration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepDef>,
    /// A registered workflow: the body of a `foreach` or `while`, or what a
    /// `subworkflow` step runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
    /// A definition file a `subworkflow` step runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Iterations of a `foreach` running at once (default: the workflow's `max_parallel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<usize>,
    /// Whether the first failed iteration of a `foreach` stops the others.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fail_fast: bool,
    /// What keeps a `while` step going, `${...}`, evaluated before each iteration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The most iterations a `while` step may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_iterations: Option<u64>,
    /// The signal a `wait_signal` step waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Which signals match, `${...}` over `signal.<param>`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "match")]
    pub signal_match: Option<String>,
    /// Signals sent when the step succeeds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emit_signals: Vec<EmitSignal>,
    /// Tags, `[A-Za-z0-9_.-]+`: `Engine::set_limit` caps how many steps with a tag run
    /// at once across all runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A signal a step sends when it succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitSignal {
    pub name: String,
    /// String values may use `${...}`, with the step's own outputs visible.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
}

impl StepDef {
    /// A step of the given kind with every option at its default.
    pub fn new(id: impl Into<String>, kind: impl Into<String>) -> Self {
        StepDef {
            id: id.into(),
            kind: kind.into(),
            description: None,
            command: None,
            duration: None,
            env: IndexMap::new(),
            params: IndexMap::new(),
            retry: None,
            timeout: None,
            depends_on: Vec::new(),
            failure_mode: FailureMode::default(),
            when: None,
            trigger: Trigger::default(),
            over: None,
            item_name: None,
            steps: Vec::new(),
            workflow: None,
            file: None,
            max_parallel: None,
            fail_fast: false,
            condition: None,
            max_iterations: None,
            signal: None,
            signal_match: None,
            emit_signals: Vec::new(),
            tags: Vec::new(),
        }
    }

    /// Adds upstream steps.
    #[must_use]
    pub fn after<I, S>(mut self, upstream: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.depends_on.extend(upstream.into_iter().map(Into::into));
        self
    }
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
    /// Delay before the second attempt.
    #[serde(default = "RetryDef::default_delay")]
    pub delay: DurationSpec,
    /// Upper bound on any delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<DurationSpec>,
}

impl RetryDef {
    fn default_delay() -> DurationSpec {
        DurationSpec::from("1s")
    }
}

/// How the delay grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// The same delay every time.
    Fixed,
    /// `delay * n` before attempt `n + 1`.
    Linear,
    /// `delay * 2^(n-1)` before attempt `n + 1`.
    #[default]
    Exponential,
}

/// What a failed step (after its retries) does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// The run fails once the steps that can still run have run; downstream steps are skipped.
    #[default]
    FailAfterRunning,
    /// The run fails now: running steps are stopped, the rest skipped.
    FailImmediately,
    /// The failure is recorded, and downstream steps run as if the step had succeeded.
    IgnoreFailure,
}

impl FailureMode {
    fn is_default(&self) -> bool {
        *self == FailureMode::default()
    }
}

/// Which outcomes of the upstream steps let a step run. A step that does not run is
/// SKIPPED. An upstream step that failed with `ignore_failure` counts as succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Every upstream step succeeded.
    #[default]
    AllSuccess,
    /// Every upstream step is over, whatever its outcome.
    AllDone,
    /// One upstream step succeeded (the step starts at once).
    OneSuccess,
    /// One upstream step failed (the step starts at once).
    OneFailed,
    /// Every upstream step is over and none failed (skipped ones are fine): the join of
    /// if/else branches.
    NoneFailed,
}

impl Trigger {
    fn is_default(&self) -> bool {
        *self == Trigger::default()
    }
}

/// Accepts scalar values (`LIMIT: 100`) where a string is expected.
fn scalar_map<'de, D: Deserializer<'de>>(d: D) -> Result<IndexMap<String, String>, D::Error> {
    use serde::de::Error;
    let raw = IndexMap::<String, Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            Value::Number(n) => Ok((k, n.to_string())),
            Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(D::Error::custom(format!(
                "`{k}` must be a string, number or boolean, not {other}"
            ))),
        })
        .collect()
}

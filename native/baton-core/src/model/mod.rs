//! Workflow definitions: the one model behind YAML, JSON and the Java DSL.
//!
//! The model is plain data. It deserializes strictly (unknown fields are errors) but
//! checks nothing else: durations, step kinds and the graph are checked by
//! [`Workflow::compile`](crate::Workflow::compile), which reports every problem at once.

pub mod cron;
mod duration;
mod load;
mod nesting;
mod schema;

pub(crate) use duration::format_duration;
pub use duration::DurationSpec;
pub use load::{Format, Source};
pub use schema::{schema, Schema};

/// The longest id: ids name files, log lines and keys, so a megabyte id is a mistake.
pub const MAX_ID_LEN: usize = 255;

/// Whether `name` is a valid name for a workflow, step, tag, signal or step type:
/// `[A-Za-z0-9_.-]+`, at most [`MAX_ID_LEN`] characters. The one place this rule is written.
pub fn is_id(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ID_LEN
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Why `name` is not valid as `what` (`step id`, `tag`, ...), if it is not.
pub fn id_problem(name: &str, what: &str) -> Option<String> {
    if is_id(name) {
        return None;
    }
    let n = name.chars().count();
    if n > MAX_ID_LEN {
        // Not the whole name: it may be megabytes.
        let start: String = name.chars().take(20).collect();
        return Some(format!(
            "invalid {what} `{start}...` ({n} characters): at most {MAX_ID_LEN} characters"
        ));
    }
    Some(format!("invalid {what} `{name}`: use letters, digits, `_`, `.` and `-`"))
}

/// Why `name` is not valid as a signal name, if it is not: ids joined by `/`
/// (`prod_db/events/ready`, as Maestro names signals), at most [`MAX_ID_LEN`] characters.
pub fn signal_name_problem(name: &str) -> Option<String> {
    let segments_ok = name.split('/').all(is_id);
    if segments_ok && name.len() <= MAX_ID_LEN {
        return None;
    }
    let problem = id_problem(name, "signal name")?;
    Some(problem.replace("and `-`", "`-`, and `/` between names"))
}

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::sync::LazyLock;

/// A workflow: parameters and a DAG of steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowDef {
    /// Identifier, `[A-Za-z0-9_.-]+`.
    pub id: String,
    /// What the workflow does, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Parameters with their default values; a run may override them.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
    /// Parameters whose values are secret: they have no default, every start gives them,
    /// and no output of the engine shows them (see [`MASK`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Parameters with no default, each of a declared type: every start gives them.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub required: IndexMap<String, ParamType>,
    /// Parameters computed when a run starts, unless the start gives them: a `${...}` with
    /// `now()`, `today()` and the other parameters in scope (those declared above it here).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub computed: IndexMap<String, String>,
    /// Steps of one run running at once (default 128: the engine's `DEFAULT_MAX_PARALLEL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<usize>,
    /// Limit on the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// How long ago a signal may have been sent and still match a `wait_signal` step
    /// (default 1 day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_retention: Option<DurationSpec>,
    /// The steps, a DAG through their `depends_on`.
    pub steps: Vec<StepDef>,
    /// What starts runs on its own: cron schedules and signals.
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
    /// A cron expression: 5 fields (minute to day of week), `@hourly`-style shorthands, or
    /// 6/7 fields with seconds first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// The IANA zone the cron expression reads its times in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// What a cron trigger does about times it missed while no engine ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub misfire: Option<Misfire>,
    /// How much later than its cron times a trigger may fire: each trigger fires a fixed
    /// delay after them, under this bound and drawn from the workflow's id and the trigger's
    /// place, so that workflows on one schedule do not all start at once. The runs still see
    /// the cron time as `trigger.scheduled_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<DurationSpec>,
    /// The signal that starts a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// Which signals start a run, `${...}` over `signal.<param>`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "match")]
    pub signal_match: Option<String>,
    /// Signals a run waits for together: it starts once each of them has been sent, with
    /// the same values of their `join` params.
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "joined_signals")]
    pub signals: Vec<JoinedSignal>,
    /// The params whose values the joined signals share (`join: [date]`), unless a signal
    /// names its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
    /// Parameters of the run; string values may use `${...}` over `trigger.*` and `signal.*`
    /// (`signals.<name>.*` for joined signals).
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
}

/// One of the signals a trigger joins: a name (`table_ready`), or a map that also says
/// which of them count (`match`) and which of its params join it to the others (`join`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinedSignal {
    /// The signal's name.
    pub name: String,
    /// Which signals of that name count, `${...}` over `signal.<param>`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "match")]
    pub signal_match: Option<String>,
    /// Its params that must equal the other signals' join params, in order (default: the
    /// trigger's `join`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join: Vec<String>,
}

impl JoinedSignal {
    /// The params that join this signal to the others.
    pub fn join_params<'a>(&'a self, trigger: &'a TriggerDef) -> &'a [String] {
        if self.join.is_empty() {
            &trigger.join
        } else {
            &self.join
        }
    }
}

/// A joined signal is written as its name alone when it has nothing else.
fn joined_signals<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<JoinedSignal>, D::Error> {
    let items: Vec<Value> = Vec::deserialize(d)?;
    items
        .into_iter()
        .enumerate()
        .map(|(n, item)| match item {
            Value::String(name) => Ok(JoinedSignal { name, signal_match: None, join: Vec::new() }),
            Value::Object(_) => serde_json::from_value::<JoinedSignal>(item)
                .map_err(|e| serde::de::Error::custom(format!("signals.{n}: {e}"))),
            other => Err(serde::de::Error::custom(format!(
                "signals.{n}: a signal's name or {{name, match, join}}, not {other}"
            ))),
        })
        .collect()
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

/// The type of a parameter declared without a default (`required:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// Text.
    String,
    /// A list.
    List,
    /// A map.
    Map,
    /// Any value.
    Any,
}

impl ParamType {
    /// A value of this type: what a given value is conformed to, as to a default.
    pub fn exemplar(self) -> Value {
        match self {
            ParamType::Integer => Value::from(0),
            ParamType::Number => Value::from(0.5),
            ParamType::Boolean => Value::Bool(false),
            ParamType::String => Value::String(String::new()),
            ParamType::List => Value::Array(Vec::new()),
            ParamType::Map => Value::Object(serde_json::Map::new()),
            ParamType::Any => Value::Null,
        }
    }
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

    /// The strategy as written in definitions (`strict_sequential`).
    pub(crate) fn name(self) -> &'static str {
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
///
/// A definition may hold a million steps, most of which set little beyond their id, kind
/// and upstream steps; the other fields live in two groups allocated only when a step
/// sets one of them. Read them with [`options`](Self::options) and [`flow`](Self::flow)
/// (an absent group reads as all defaults), change them with the `_mut` methods.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "StepRepr")]
pub struct StepDef {
    /// Identifier, unique in the workflow, `[A-Za-z0-9_.-]+`.
    pub id: String,
    /// The step kind: `noop`, `sleep`, `shell` or a kind the host registered.
    pub kind: String,
    /// The ids of the upstream steps: the step runs after them, as `trigger` says.
    pub depends_on: Vec<String>,
    /// What the step's failure does to the run.
    pub failure_mode: FailureMode,
    /// Which outcomes of the upstream steps let the step run.
    pub trigger: Trigger,
    options: Option<Box<StepOptions>>,
    flow: Option<Box<StepFlow>>,
}

/// The fields any kind of step may set, beyond the ones kept in [`StepDef`] itself.
#[derive(Debug, Clone, Default)]
pub struct StepOptions {
    /// What the step does, for people.
    pub description: Option<String>,
    /// Shell command (`shell` steps).
    pub command: Option<String>,
    /// How long to sleep (`sleep` steps).
    pub duration: Option<DurationSpec>,
    /// Environment variables (`shell` steps); values may use `${...}`.
    pub env: IndexMap<String, String>,
    /// Parameters of host-defined step kinds; string values may use `${...}`.
    pub params: IndexMap<String, Value>,
    /// How failed attempts are retried (default: they are not).
    pub retry: Option<RetryDef>,
    /// Limit on one attempt.
    pub timeout: Option<DurationSpec>,
    /// A condition, `${...}`: false skips the step.
    pub when: Option<String>,
    /// Tags, `[A-Za-z0-9_.-]+`: `Engine::set_limit` caps how many steps with a tag run
    /// at once across all runs.
    pub tags: Vec<String>,
    /// The request of an `http` step; read it with [`StepDef::http`]. Boxed once more: few
    /// steps are `http` steps, and the other steps' options stay small.
    pub http: Option<Box<StepHttp>>,
    /// Whether a success is kept and served to later attempts with the same key (the
    /// result cache; see `engine/cache.rs`). Few steps set it, hence boxed too.
    pub cache: Option<Box<CacheDef>>,
}

/// A step's `cache`: its successes are kept for `ttl`, and an attempt whose key was seen
/// within it is SUCCEEDED with the kept outputs, without running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDef {
    /// How long an entry serves (required: a cache that never expires serves stale data).
    pub ttl: DurationSpec,
    /// What identifies a result, `${...}`; by default the step's rendered fields and
    /// inputs. Either way the step's own definition is part of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The fields of an `http` step: the request it sends and what it reads of the response.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepHttp {
    /// `GET` (the default), `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD` or `OPTIONS`.
    pub method: Option<String>,
    /// The URL; each `${...}` value is percent-encoded (`${raw(...)}` is written as is).
    pub url: Option<String>,
    /// Request headers; values may use `${...}`.
    pub headers: IndexMap<String, String>,
    /// The request body: a string is sent as text, a map or a list as JSON; strings in it
    /// may use `${...}` (a whole-string `${...}` keeps its type in JSON).
    pub body: Option<Value>,
    /// The status codes that make the step succeed (default: any 2xx).
    pub expect: Vec<u16>,
    /// Outputs picked from the JSON response body, by a dotted path (`data.items.0.name`).
    pub outputs: IndexMap<String, String>,
}

// An allocated `http` group of defaults reads as an absent one, as the groups of a step do.
impl PartialEq for StepOptions {
    fn eq(&self, other: &Self) -> bool {
        // Every field by name: a field added to the struct does not compile until it is here.
        let StepOptions {
            description,
            command,
            duration,
            env,
            params,
            retry,
            timeout,
            when,
            tags,
            http: _,
            cache,
        } = self;
        *description == other.description
            && *command == other.command
            && *duration == other.duration
            && *env == other.env
            && *params == other.params
            && *retry == other.retry
            && *timeout == other.timeout
            && *when == other.when
            && *tags == other.tags
            && *cache == other.cache
            && self.http.as_deref().unwrap_or(StepHttp::empty())
                == other.http.as_deref().unwrap_or(StepHttp::empty())
    }
}

impl StepHttp {
    /// The value of an absent group.
    fn empty() -> &'static StepHttp {
        static EMPTY: LazyLock<StepHttp> = LazyLock::new(StepHttp::default);
        &EMPTY
    }
}

/// The fields of loops, subworkflows and signals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StepFlow {
    /// The list a `foreach` step iterates over, `${...}`.
    pub over: Option<String>,
    /// Or the lists whose cartesian product a `foreach` iterates over, by the name each
    /// item takes in the body (`over: {region: [eu, us], day: "${days}"}`).
    pub over_product: IndexMap<String, Value>,
    /// The name of the current item in a `foreach` body (default `item`); written `as`.
    pub item_name: Option<String>,
    /// The body of a `foreach` or `while` step: a DAG run once per iteration.
    pub steps: Vec<StepDef>,
    /// A registered workflow: the body of a `foreach` or `while`, or what a
    /// `subworkflow` step runs.
    pub workflow: Option<String>,
    /// A definition file a `subworkflow` step runs.
    pub file: Option<String>,
    /// The registered version a `subworkflow` step runs (default: the active one).
    pub version: Option<u32>,
    /// Whether a `subworkflow` step passes its run's params down to the child, for the
    /// params the child declares (the step's own `params` win).
    pub inherit_params: bool,
    /// Whether a `subworkflow` step waits for its child (unset: it does). `wait: false`
    /// starts a run of the registered workflow and succeeds at once, with its `run_id`.
    pub wait: Option<bool>,
    /// Iterations of a `foreach` running at once (default: the workflow's `max_parallel`).
    pub max_parallel: Option<usize>,
    /// Whether the first failed iteration of a `foreach` stops the others.
    pub fail_fast: bool,
    /// What keeps a `while` step going, `${...}`, evaluated before each iteration.
    pub condition: Option<String>,
    /// The most iterations a `while` step may run.
    pub max_iterations: Option<u64>,
    /// The values a `while` carries from one iteration to the next, with their first
    /// values (`${...}` from the run around it): each takes, after an iteration, the
    /// output of the same name of the body's last step that has one.
    pub carry: IndexMap<String, Value>,
    /// The signal a `wait_signal` step waits for.
    pub signal: Option<String>,
    /// Which signals match, `${...}` over `signal.<param>`; written `match`.
    pub signal_match: Option<String>,
    /// Signals sent when the step succeeds.
    pub emit_signals: Vec<EmitSignal>,
}

impl StepOptions {
    /// The value of an absent group. `RandomState` cannot be made in a const, hence lazy.
    fn empty() -> &'static StepOptions {
        static EMPTY: LazyLock<StepOptions> = LazyLock::new(StepOptions::default);
        &EMPTY
    }
}

impl StepFlow {
    /// The value of an absent group.
    fn empty() -> &'static StepFlow {
        static EMPTY: LazyLock<StepFlow> = LazyLock::new(StepFlow::default);
        &EMPTY
    }
}

/// Allocates a group only when it holds something, so that equal steps have equal shapes.
fn boxed_unless_empty<T: PartialEq>(group: T, empty: &T) -> Option<Box<T>> {
    (group != *empty).then(|| Box::new(group))
}

// Equal steps may differ in whether a group is allocated (a `_mut` method allocates one
// that may stay all defaults), so groups compare by what they read as.
impl PartialEq for StepDef {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.kind == other.kind
            && self.depends_on == other.depends_on
            && self.failure_mode == other.failure_mode
            && self.trigger == other.trigger
            && self.options() == other.options()
            && self.flow() == other.flow()
    }
}

/// A step as written: the serialized form of [`StepDef`]. Its field order is the order
/// of the JSON that content-addresses a definition, so it must not change; the tests
/// check that [`StepReprRef`] writes the same text.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
// Errors name the type the user knows: "expected struct StepDef".
#[serde(deny_unknown_fields, rename = "StepDef", expecting = "struct StepDef")]
struct StepRepr {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty", deserialize_with = "scalar_map")]
    env: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    params: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry: Option<RetryDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout: Option<DurationSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "FailureMode::is_default")]
    failure_mode: FailureMode,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "when")]
    when: Option<String>,
    #[serde(default, skip_serializing_if = "Trigger::is_default")]
    trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    over: Option<Over>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "as")]
    item_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    steps: Vec<StepDef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workflow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    inherit_params: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wait: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_parallel: Option<usize>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    fail_fast: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_iterations: Option<u64>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    carry: IndexMap<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "match")]
    signal_match: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    emit_signals: Vec<EmitSignal>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty", deserialize_with = "scalar_map")]
    headers: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expect: Vec<u16>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    outputs: IndexMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cache: Option<CacheDef>,
}

impl From<StepRepr> for StepDef {
    fn from(r: StepRepr) -> Self {
        let http = StepHttp {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
            expect: r.expect,
            outputs: r.outputs,
        };
        let options = StepOptions {
            description: r.description,
            command: r.command,
            duration: r.duration,
            env: r.env,
            params: r.params,
            retry: r.retry,
            timeout: r.timeout,
            when: r.when,
            tags: r.tags,
            http: boxed_unless_empty(http, StepHttp::empty()),
            cache: r.cache.map(Box::new),
        };
        let (over, over_product) = match r.over {
            None => (None, IndexMap::new()),
            Some(Over::List(text)) => (Some(text), IndexMap::new()),
            Some(Over::Product(lists)) => (None, lists),
        };
        let flow = StepFlow {
            over,
            over_product,
            item_name: r.item_name,
            steps: r.steps,
            workflow: r.workflow,
            file: r.file,
            version: r.version,
            inherit_params: r.inherit_params,
            wait: r.wait,
            max_parallel: r.max_parallel,
            fail_fast: r.fail_fast,
            condition: r.condition,
            max_iterations: r.max_iterations,
            carry: r.carry,
            signal: r.signal,
            signal_match: r.signal_match,
            emit_signals: r.emit_signals,
        };
        StepDef {
            id: r.id,
            kind: r.kind,
            depends_on: r.depends_on,
            failure_mode: r.failure_mode,
            trigger: r.trigger,
            options: boxed_unless_empty(options, StepOptions::empty()),
            flow: boxed_unless_empty(flow, StepFlow::empty()),
        }
    }
}

/// A `foreach`'s `over`: a list expression, or lists to take the cartesian product of.
#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(untagged))]
enum Over {
    List(String),
    Product(IndexMap<String, Value>),
}

impl<'de> Deserialize<'de> for Over {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Over, D::Error> {
        match Value::deserialize(d)? {
            Value::String(text) => Ok(Over::List(text)),
            Value::Object(lists) => Ok(Over::Product(lists.into_iter().collect())),
            other => {
                let kind = match other {
                    Value::Array(_) => "a list",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                };
                Err(serde::de::Error::custom(format!(
                    "expected a list expression (`\"${{range(0, 10)}}\"`) or a map of lists (`{{region: [eu, us]}}`), not {kind}"
                )))
            }
        }
    }
}

/// [`Over`], borrowed.
#[derive(Serialize)]
#[serde(untagged)]
enum OverRef<'a> {
    List(&'a String),
    Product(&'a IndexMap<String, Value>),
}

/// [`StepRepr`] borrowed from a [`StepDef`]: serializing through it copies nothing (a
/// definition is serialized whole to hash it). Same fields, order and skips as `StepRepr`.
#[derive(Serialize)]
#[serde(rename = "StepDef")]
struct StepReprRef<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    command: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<&'a DurationSpec>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    env: &'a IndexMap<String, String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    params: &'a IndexMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry: Option<&'a RetryDef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout: Option<&'a DurationSpec>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    depends_on: &'a [String],
    #[serde(skip_serializing_if = "FailureMode::is_default")]
    failure_mode: FailureMode,
    #[serde(skip_serializing_if = "Option::is_none", rename = "when")]
    when: Option<&'a String>,
    #[serde(skip_serializing_if = "Trigger::is_default")]
    trigger: Trigger,
    #[serde(skip_serializing_if = "Option::is_none")]
    over: Option<OverRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "as")]
    item_name: Option<&'a String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    steps: &'a [StepDef],
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<u32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    inherit_params: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    wait: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_parallel: Option<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fail_fast: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_iterations: Option<u64>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    carry: &'a IndexMap<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "match")]
    signal_match: Option<&'a String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    emit_signals: &'a [EmitSignal],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    headers: &'a IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    expect: &'a [u16],
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    outputs: &'a IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache: Option<&'a CacheDef>,
}

impl Serialize for StepDef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (o, f, h) = (self.options(), self.flow(), self.http());
        StepReprRef {
            id: &self.id,
            kind: &self.kind,
            description: o.description.as_ref(),
            command: o.command.as_ref(),
            duration: o.duration.as_ref(),
            env: &o.env,
            params: &o.params,
            retry: o.retry.as_ref(),
            timeout: o.timeout.as_ref(),
            depends_on: &self.depends_on,
            failure_mode: self.failure_mode,
            when: o.when.as_ref(),
            trigger: self.trigger,
            over: match (&f.over, f.over_product.is_empty()) {
                (Some(text), _) => Some(OverRef::List(text)),
                (None, false) => Some(OverRef::Product(&f.over_product)),
                (None, true) => None,
            },
            item_name: f.item_name.as_ref(),
            steps: &f.steps,
            workflow: f.workflow.as_ref(),
            file: f.file.as_ref(),
            version: f.version,
            inherit_params: f.inherit_params,
            wait: f.wait,
            max_parallel: f.max_parallel,
            fail_fast: f.fail_fast,
            condition: f.condition.as_ref(),
            max_iterations: f.max_iterations,
            carry: &f.carry,
            signal: f.signal.as_ref(),
            signal_match: f.signal_match.as_ref(),
            emit_signals: &f.emit_signals,
            tags: &o.tags,
            method: h.method.as_ref(),
            url: h.url.as_ref(),
            headers: &h.headers,
            body: h.body.as_ref(),
            expect: &h.expect,
            outputs: &h.outputs,
            cache: o.cache.as_deref(),
        }
        .serialize(s)
    }
}

/// A signal a step sends when it succeeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitSignal {
    /// The signal's name.
    pub name: String,
    /// String values may use `${...}`, with the step's own outputs visible.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, Value>,
}

/// What every output of the engine shows in place of a secret's value.
pub const MASK: &str = "***";

impl WorkflowDef {
    /// Whether `name` is a parameter of the workflow: under `params`, `secrets`,
    /// `required` or `computed`.
    pub fn has_param(&self, name: &str) -> bool {
        self.param_names().any(|n| n == name)
    }

    /// The names of the parameters: `params`, `secrets`, `required`, then `computed`.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params
            .keys()
            .map(String::as_str)
            .chain(self.secrets.iter().map(String::as_str))
            .chain(self.required.keys().map(String::as_str))
            .chain(self.computed.keys().map(String::as_str))
    }

    /// Rewrites every valid duration in its canonical form, the largest unit that is exact
    /// (`1h30m` becomes `90m`), so that a host reads durations without a parser of its own.
    pub fn canonicalize_durations(&mut self) {
        for spec in [&mut self.timeout, &mut self.signal_retention].into_iter().flatten() {
            spec.canonicalize();
        }
        for spec in self.triggers.iter_mut().filter_map(|t| t.jitter.as_mut()) {
            spec.canonicalize();
        }
        canonicalize_steps(&mut self.steps);
    }
}

fn canonicalize_steps(steps: &mut [StepDef]) {
    for step in steps {
        if let Some(options) = &mut step.options {
            let retry = options.retry.as_mut();
            let delays = retry
                .into_iter()
                .flat_map(|r| std::iter::once(&mut r.delay).chain(r.max_delay.as_mut()));
            let ttl = options.cache.as_mut().map(|c| &mut c.ttl);
            let specs = options.duration.iter_mut().chain(options.timeout.iter_mut());
            for spec in specs.chain(delays).chain(ttl) {
                spec.canonicalize();
            }
        }
        if let Some(flow) = &mut step.flow {
            canonicalize_steps(&mut flow.steps);
        }
    }
}

impl StepDef {
    /// A step of the given kind with every option at its default.
    pub fn new(id: impl Into<String>, kind: impl Into<String>) -> Self {
        StepDef {
            id: id.into(),
            kind: kind.into(),
            depends_on: Vec::new(),
            failure_mode: FailureMode::default(),
            trigger: Trigger::default(),
            options: None,
            flow: None,
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

    /// Description, command, duration, env, params, retry, timeout, `when` and tags.
    pub fn options(&self) -> &StepOptions {
        match &self.options {
            Some(options) => options,
            None => StepOptions::empty(),
        }
    }

    /// The options to change; allocates them if the step had none.
    pub fn options_mut(&mut self) -> &mut StepOptions {
        self.options.get_or_insert_with(Default::default)
    }

    /// The fields of loops (`foreach`, `while`), subworkflows and signals.
    pub fn flow(&self) -> &StepFlow {
        match &self.flow {
            Some(flow) => flow,
            None => StepFlow::empty(),
        }
    }

    /// The flow fields to change; allocates them if the step had none.
    pub fn flow_mut(&mut self) -> &mut StepFlow {
        self.flow.get_or_insert_with(Default::default)
    }

    /// The fields of an `http` step.
    pub fn http(&self) -> &StepHttp {
        match &self.options().http {
            Some(http) => http,
            None => StepHttp::empty(),
        }
    }

    /// The `http` fields to change; allocates them if the step had none.
    pub fn http_mut(&mut self) -> &mut StepHttp {
        self.options_mut().http.get_or_insert_with(Default::default)
    }
}

/// How a failed attempt is retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// How the delay grows from one attempt to the next (default exponential).
    #[serde(default)]
    pub backoff: Backoff,
    /// Delay before the second attempt.
    #[serde(default = "RetryDef::default_delay")]
    pub delay: DurationSpec,
    /// Upper bound on any delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<DurationSpec>,
    /// Exit codes of a command that no retry can mend (a bad argument, a missing table):
    /// the step fails at once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub final_exit_codes: Vec<i32>,
    /// Whether an attempt that timed out is retried (by default it is not: a step that hangs
    /// once likely hangs again).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_timeout: bool,
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
    /// Every upstream step is over, none failed, and at least one succeeded: the join of
    /// branches that may all be skipped (Maestro's "runs when any incoming edge is taken").
    NoneFailedMinOneSuccess,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A step setting every field, in the field order of the stored JSON.
    const EVERY_FIELD: &str = concat!(
        r#"{"id":"a","type":"foreach","description":"d","command":"echo ${p}","duration":"1s","#,
        r#""env":{"X":"1"},"params":{"k":[1,{"n":null}]},"#,
        r#""retry":{"max_attempts":3,"backoff":"linear","delay":"2s","max_delay":"9s"},"timeout":"5m","#,
        r#""depends_on":["b","c"],"failure_mode":"ignore_failure","when":"${p}","trigger":"all_done","#,
        r#""over":"${p}","as":"x","steps":[{"id":"in","type":"noop","tags":["t"]}],"#,
        r#""workflow":"w","file":"f.yaml","max_parallel":4,"fail_fast":true,"condition":"${c}","#,
        r#""max_iterations":7,"signal":"s","match":"${signal.k}","#,
        r#""emit_signals":[{"name":"done","params":{"v":"${a.v}"}},{"name":"bare"}],"tags":["t1","t2"],"#,
        r#""method":"POST","url":"http://h/${p}","headers":{"H":"v"},"body":{"k":"${p}"},"#,
        r#""expect":[200,201],"outputs":{"id":"data.id"},"cache":{"ttl":"7d","key":"${p}"}}"#
    );

    #[test]
    fn a_step_stays_small() {
        // 672 bytes when every field was inline; a million steps are held at once.
        assert!(std::mem::size_of::<StepDef>() <= 96, "{}", std::mem::size_of::<StepDef>());
    }

    #[test]
    fn every_field_round_trips_to_the_same_json() {
        let step: StepDef = serde_json::from_str(EVERY_FIELD).unwrap();
        assert_eq!(serde_json::to_string(&step).unwrap(), EVERY_FIELD);
        // `StepRepr` carries the attributes of the flat struct whose JSON is stored.
        let repr: StepRepr = serde_json::from_str(EVERY_FIELD).unwrap();
        assert_eq!(serde_json::to_string(&repr).unwrap(), EVERY_FIELD);
        assert_eq!(step.flow().steps[0].options().tags, ["t"]);

        let plain = r#"{"id":"b","type":"noop","depends_on":["a"]}"#;
        let step: StepDef = serde_json::from_str(plain).unwrap();
        assert!(step.options.is_none() && step.flow.is_none());
        assert_eq!(serde_json::to_string(&step).unwrap(), plain);
        assert_eq!(step, StepDef::new("b", "noop").after(["a"]));
    }

    #[test]
    fn an_allocated_group_of_defaults_equals_an_absent_one() {
        let mut step = StepDef::new("a", "noop");
        step.options_mut().command = None;
        step.flow_mut().fail_fast = false;
        step.http_mut().url = None;
        assert_eq!(step, StepDef::new("a", "noop"));
        assert_eq!(serde_json::to_string(&step).unwrap(), r#"{"id":"a","type":"noop"}"#);
    }

    #[test]
    fn unknown_fields_and_bad_steps_are_still_named() {
        let yaml = "id: w\nsteps:\n  - id: a\n    type: noop\n    over: x\n    bogus: 1\n";
        let err = Source::new("w.yaml", yaml, Format::Yaml).parse().unwrap_err();
        let e = &err.errors[0];
        assert_eq!(
            (e.line, e.step.as_deref(), e.field.as_deref()),
            (Some(6), Some("a"), Some("bogus"))
        );
        assert!(
            e.message.starts_with("unknown field `bogus`, expected one of `id`, `type`"),
            "{}",
            e.message
        );

        let json = "{\"id\": \"w\", \"steps\": [1]}";
        let err = Source::new("w.json", json, Format::Json).parse().unwrap_err();
        assert!(
            err.errors[0].message.contains("expected struct StepDef"),
            "{}",
            err.errors[0].message
        );
    }
}

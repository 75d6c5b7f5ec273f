//! Validation, and the compiled graph the engine runs.
//!
//! [`Workflow::compile`] checks everything that can be checked before a run (ids, kinds,
//! durations, references, dependencies, cycles) and reports every problem at once. The
//! compiled graph uses step indices, not names: node `i` is `def.steps[i]`.

mod plan;

pub(crate) use plan::{RetryPolicy, StepPlan};

use crate::error::{did_you_mean, DefinitionError, InvalidDefinition};
use crate::expr::{strings_in, Template, ValueTemplate};
use crate::model::{DurationSpec, Source, StepDef, Trigger, WorkflowDef};
use crate::steps::StepKinds;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a signal stays eligible for `wait_signal` steps, unless the workflow says.
const DEFAULT_SIGNAL_RETENTION: Duration = Duration::from_secs(86_400);

/// The loop variable of a `foreach` body, unless `as` names it.
pub const DEFAULT_ITEM_NAME: &str = "item";

/// The name of the iteration number (from 0) in a `foreach` or `while` body.
pub const ITERATION: &str = "iteration";

/// Steps of one run running at once, unless the workflow says (`max_parallel`). Orchestrated
/// steps mostly wait on databases, clusters and services, not on this machine's cores, so
/// a fan-out should not queue behind the core count; 128 shell steps at once stay well
/// inside the default limit of 1,024 open files (each holds its two output pipes).
pub const DEFAULT_MAX_PARALLEL: usize = 128;

/// A validated workflow.
#[derive(Debug)]
pub struct Workflow {
    def: WorkflowDef,
    /// Edges go from a step to the steps that depend on it.
    graph: DiGraph<(), (), u32>,
    /// Step indices sorted by id, to find a step by name.
    by_id: Vec<u32>,
    timeout: Option<Duration>,
    signal_retention: Duration,
    /// The compiled inline bodies of `foreach` and `while` steps, by step index.
    bodies: HashMap<usize, Arc<Workflow>>,
    /// Each step's parsed fields, by step index; `None` for a step that sets none.
    plans: Vec<Option<Box<StepPlan>>>,
    /// The hash of the definition's JSON, made once: every run of the workflow (every
    /// iteration of a loop body) names its definition by it.
    hash: OnceLock<String>,
    /// What is valid but probably not meant (see [`Workflow::warnings`]).
    warnings: Vec<DefinitionError>,
    /// The `computed` params, parsed, in their order.
    computed: Vec<(String, Template)>,
}

impl Workflow {
    /// Validates `def` against the step kinds an engine knows.
    pub fn compile(def: WorkflowDef, kinds: &StepKinds) -> Result<Workflow, InvalidDefinition> {
        Self::compile_in(def, kinds, None)
    }

    /// Reads and validates the definition in `source`: every problem, each with the source's
    /// name, line and column. What `baton validate` and a host's `fromYaml` call.
    pub fn load(source: &Source, kinds: &StepKinds) -> Result<Workflow, InvalidDefinition> {
        let def = source.parse()?;
        let mut workflow = Self::compile(def, kinds).map_err(|e| source.locate(e))?;
        let warnings = std::mem::take(&mut workflow.warnings);
        workflow.warnings = source.locate(InvalidDefinition { errors: warnings }).errors;
        Ok(workflow)
    }

    /// What is valid but probably not meant, in the form of definition errors: a
    /// `${raw(...)}` that runs as shell code a value a run's params or a signal can set.
    pub fn warnings(&self) -> &[DefinitionError] {
        &self.warnings
    }

    /// The definition, given back.
    pub fn into_def(self) -> WorkflowDef {
        self.def
    }

    /// Validates `def`: a workflow (`outer` None), or a body whose expressions may also use
    /// the `outer` names (from the run around it). A body's id joins ids checked already
    /// (`workflow.step`), and may be longer than a user's id can be.
    fn compile_in(
        def: WorkflowDef,
        kinds: &StepKinds,
        outer: Option<&Outer>,
    ) -> Result<Workflow, InvalidDefinition> {
        let mut v = Validator::default();
        let top = Outer::default();
        // A body's id is made of ids checked already (`workflow.step`), and may be longer.
        let outer = match outer {
            Some(outer) => outer,
            None => {
                check_id(&mut v, None, "id", &def.id, "workflow id");
                &top
            }
        };
        check_secrets(&mut v, &def);
        let computed = compile_computed(&mut v, &def);
        if def.max_parallel == Some(0) {
            v.top("max_parallel", "must be at least 1");
        }
        let timeout = v.duration(None, "timeout", def.timeout.as_ref());
        let signal_retention = v
            .duration(None, "signal_retention", def.signal_retention.as_ref())
            .unwrap_or(DEFAULT_SIGNAL_RETENTION);
        if def.steps.is_empty() {
            v.top("steps", "a workflow needs at least one step");
        }

        let mut by_id: Vec<u32> = (0..def.steps.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| def.steps[a as usize].id.cmp(&def.steps[b as usize].id));
        for pair in by_id.windows(2) {
            let (first, second) = (pair[0].min(pair[1]) as usize, pair[0].max(pair[1]) as usize);
            if def.steps[first].id == def.steps[second].id {
                v.step(
                    &def,
                    second,
                    Some("id"),
                    format!("duplicate step id (also step number {})", first + 1),
                );
            }
        }
        let find = |id: &str| -> Option<u32> {
            by_id
                .binary_search_by(|&i| def.steps[i as usize].id.as_str().cmp(id))
                .ok()
                .map(|pos| by_id[pos])
        };

        let mut plans: Vec<Option<Box<StepPlan>>> = Vec::new();
        plans.resize_with(def.steps.len(), || None);
        let mut graph = DiGraph::<(), (), u32>::with_capacity(def.steps.len(), def.steps.len() * 2);
        for _ in &def.steps {
            graph.add_node(());
        }
        for (i, step) in def.steps.iter().enumerate() {
            check_step(&mut v, &def, i, step, kinds, &mut plans[i]);
            for (n, dep) in step.depends_on.iter().enumerate() {
                // Named only when there is a problem: a million steps have two million edges.
                let field = || format!("depends_on.{n}");
                if dep == &step.id {
                    v.step(&def, i, Some(&field()), "a step cannot depend on itself".into());
                } else if step.depends_on[..n].contains(dep) {
                    v.step(&def, i, Some(&field()), format!("`{dep}` is listed twice"));
                } else if let Some(d) = find(dep) {
                    graph.add_edge(NodeIndex::new(d as usize), NodeIndex::new(i), ());
                } else {
                    let hint = did_you_mean(dep, def.steps.iter().map(|s| s.id.as_str()));
                    v.step(&def, i, Some(&field()), format!("unknown step `{dep}`{hint}"));
                }
            }
        }

        let acyclic = toposort(&graph, None).is_ok();
        if !acyclic {
            for cycle in cycles(&graph) {
                let names: Vec<&str> = cycle.iter().map(|&i| def.steps[i].id.as_str()).collect();
                v.step(
                    &def,
                    cycle[0],
                    Some("depends_on"),
                    format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
                );
            }
        }
        check_expressions(&mut v, &def, &graph, find, acyclic, outer, &mut plans);
        warn_of_outside_code(&mut v, &def, kinds, &plans);
        check_triggers(&mut v, &def);
        let bodies = compile_bodies(&mut v, &def, &graph, acyclic, kinds, outer);

        if v.errors.is_empty() {
            Ok(Workflow {
                def,
                graph,
                by_id,
                timeout,
                signal_retention,
                bodies,
                plans,
                hash: OnceLock::new(),
                warnings: v.warnings,
                computed,
            })
        } else {
            Err(InvalidDefinition { errors: v.errors })
        }
    }

    /// The definition.
    pub fn def(&self) -> &WorkflowDef {
        &self.def
    }

    /// The `computed` params, parsed, in the order they are evaluated.
    pub(crate) fn computed(&self) -> &[(String, Template)] {
        &self.computed
    }

    /// The definition as stored: its JSON.
    pub fn definition_json(&self) -> Vec<u8> {
        // A definition is plain data: serializing it cannot fail.
        serde_json::to_vec(&self.def).unwrap_or_default()
    }

    /// The content hash of [`definition_json`](Self::definition_json), which names the
    /// definition in the store.
    pub fn definition_hash(&self) -> &str {
        self.hashed().0
    }

    /// The hash, with the JSON when this call made it (the first call), so that a caller
    /// about to store the definition need not serialize it again.
    pub fn hashed(&self) -> (&str, Option<Vec<u8>>) {
        let mut made = None;
        let hash = self.hash.get_or_init(|| {
            let json = self.definition_json();
            let hash = blake3::hash(&json).to_hex().to_string();
            made = Some(json);
            hash
        });
        (hash, made)
    }

    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.def.id
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.def.steps.len()
    }

    /// Whether it has no step (validation refuses such a workflow).
    pub fn is_empty(&self) -> bool {
        self.def.steps.is_empty()
    }

    /// Step number `i`.
    pub fn step(&self, i: usize) -> &StepDef {
        &self.def.steps[i]
    }

    /// The index of the step with this id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        self.by_id
            .binary_search_by(|&i| self.def.steps[i as usize].id.as_str().cmp(id))
            .ok()
            .map(|pos| self.by_id[pos] as usize)
    }

    /// Steps that depend on step `i`.
    pub fn downstream(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.neighbors_directed(NodeIndex::new(i), Direction::Outgoing).map(|n| n.index())
    }

    /// Steps step `i` depends on.
    pub fn upstream(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.neighbors_directed(NodeIndex::new(i), Direction::Incoming).map(|n| n.index())
    }

    /// Number of steps step `i` depends on.
    pub fn upstream_count(&self, i: usize) -> usize {
        self.def.steps[i].depends_on.len()
    }

    /// Limit on a whole run.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// How long a signal stays eligible for this workflow's `wait_signal` steps.
    pub fn signal_retention(&self) -> Duration {
        self.signal_retention
    }

    /// The parsed fields of step `i`.
    pub(crate) fn plan(&self, i: usize) -> &StepPlan {
        match &self.plans[i] {
            Some(plan) => plan,
            None => StepPlan::empty(),
        }
    }

    /// The compiled inline body of step `i` (a `foreach` or `while` with `steps`).
    pub fn body(&self, i: usize) -> Option<&Arc<Workflow>> {
        self.bodies.get(&i)
    }

    /// Steps of one run running at once: [`DEFAULT_MAX_PARALLEL`] unless the workflow says.
    pub fn max_parallel(&self) -> usize {
        self.def.max_parallel.unwrap_or(DEFAULT_MAX_PARALLEL)
    }

    /// The graph in Graphviz dot.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", self.def.id);
        for s in &self.def.steps {
            out.push_str(&format!("  \"{}\" [label=\"{}\\n({})\"];\n", s.id, s.id, s.kind));
        }
        for (i, s) in self.def.steps.iter().enumerate() {
            for d in self.downstream(i) {
                out.push_str(&format!("  \"{}\" -> \"{}\";\n", s.id, self.def.steps[d].id));
            }
        }
        out.push_str("}\n");
        out
    }

    /// The graph as a Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (i, s) in self.def.steps.iter().enumerate() {
            out.push_str(&format!("  s{i}[\"{} ({})\"]\n", s.id, s.kind));
        }
        for i in 0..self.len() {
            for d in self.downstream(i) {
                out.push_str(&format!("  s{i} --> s{d}\n"));
            }
        }
        out
    }
}

#[derive(Default)]
struct Validator {
    errors: Vec<DefinitionError>,
    warnings: Vec<DefinitionError>,
}

impl Validator {
    fn top(&mut self, field: &str, message: &str) {
        self.errors
            .push(DefinitionError { field: Some(field.into()), ..DefinitionError::new(message) });
    }

    fn step(&mut self, def: &WorkflowDef, i: usize, field: Option<&str>, message: String) {
        self.errors.push(Self::at_step(def, i, field, message));
    }

    fn step_warning(&mut self, def: &WorkflowDef, i: usize, field: &str, message: String) {
        self.warnings.push(Self::at_step(def, i, Some(field), message));
    }

    fn at_step(
        def: &WorkflowDef,
        i: usize,
        field: Option<&str>,
        message: String,
    ) -> DefinitionError {
        DefinitionError {
            step: Some(def.steps[i].id.clone()),
            step_index: Some(i),
            field: field.map(Into::into),
            ..DefinitionError::new(message)
        }
    }

    /// Parses an optional duration; `step` is `(def, index)` for a step's field.
    fn duration(
        &mut self,
        step: Option<(&WorkflowDef, usize)>,
        field: &str,
        spec: Option<&DurationSpec>,
    ) -> Option<Duration> {
        match spec?.parse() {
            Ok(d) => Some(d),
            Err(message) => {
                match step {
                    Some((def, i)) => self.step(def, i, Some(field), message),
                    None => self.top(field, &message),
                }
                None
            }
        }
    }
}

fn check_id(
    v: &mut Validator,
    step: Option<(&WorkflowDef, usize)>,
    field: &str,
    id: &str,
    what: &str,
) {
    if let Some(message) = crate::model::id_problem(id, what) {
        match step {
            Some((def, i)) => v.step(def, i, Some(field), message),
            None => v.top(field, &message),
        }
    }
}

/// Checks one step's own fields, and plans its durations and retry policy.
fn check_step(
    v: &mut Validator,
    def: &WorkflowDef,
    i: usize,
    step: &StepDef,
    kinds: &StepKinds,
    plan: &mut Option<Box<StepPlan>>,
) {
    check_id(v, Some((def, i)), "id", &step.id, "step id");
    for (n, tag) in step.options().tags.iter().enumerate() {
        check_id(v, Some((def, i)), &format!("tags.{n}"), tag, "tag");
    }
    for (n, emit) in step.flow().emit_signals.iter().enumerate() {
        if let Some(message) = crate::model::signal_name_problem(&emit.name) {
            v.step(def, i, Some(&format!("emit_signals.{n}.name")), message);
        }
    }
    for problem in kinds.check(step) {
        v.step(def, i, Some(&problem.field), problem.message);
    }
    let timeout = v.duration(Some((def, i)), "timeout", step.options().timeout.as_ref());
    let duration = v.duration(Some((def, i)), "duration", step.options().duration.as_ref());
    if matches!(step.trigger, Trigger::OneSuccess | Trigger::OneFailed)
        && step.depends_on.is_empty()
    {
        let name = if step.trigger == Trigger::OneSuccess { "one_success" } else { "one_failed" };
        v.step(def, i, Some("trigger"), format!("`{name}` needs upstream steps in depends_on"));
    }
    if let Some(problem) = step
        .options()
        .when
        .as_deref()
        .and_then(|w| crate::steps::not_an_expression("when", w, "`when: \"${...}\"`"))
    {
        v.step(def, i, Some(&problem.field), problem.message);
    }
    if let Some(retry) = &step.options().retry {
        if retry.max_attempts == 0 {
            v.step(
                def,
                i,
                Some("retry.max_attempts"),
                "must be at least 1 (the first attempt counts)".into(),
            );
        }
        let delay = v.duration(Some((def, i)), "retry.delay", Some(&retry.delay));
        let max_delay = match &retry.max_delay {
            Some(spec) => v.duration(Some((def, i)), "retry.max_delay", Some(spec)),
            None => Some(RetryPolicy::DEFAULT_MAX_DELAY),
        };
        for (n, &code) in retry.final_exit_codes.iter().enumerate() {
            if !(1..=255).contains(&code) {
                let field = format!("retry.final_exit_codes.{n}");
                v.step(
                    def,
                    i,
                    Some(&field),
                    format!("`{code}` is not an exit code of a failure (1-255)"),
                );
            }
        }
        if let (Some(delay), Some(max_delay)) = (delay, max_delay) {
            let policy = RetryPolicy {
                max_attempts: retry.max_attempts,
                backoff: retry.backoff,
                delay,
                max_delay,
                final_exit_codes: RetryPolicy::code_bits(&retry.final_exit_codes),
                on_timeout: retry.on_timeout,
            };
            plan.get_or_insert_with(Default::default).retry = Some(policy);
        }
    }
    if !step.options().params.is_empty() || !step.flow().emit_signals.is_empty() {
        // A template that does not parse is reported by `check_expressions`.
        let parsed = |params: &indexmap::IndexMap<String, Value>| -> Vec<(String, ValueTemplate)> {
            params
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), ValueTemplate::parse(v).ok()?)))
                .collect()
        };
        let plan = plan.get_or_insert_with(Default::default);
        plan.params = parsed(&step.options().params);
        plan.emit_params = step.flow().emit_signals.iter().map(|e| parsed(&e.params)).collect();
    }
    if timeout.is_some() || duration.is_some() {
        let plan = plan.get_or_insert_with(Default::default);
        (plan.timeout, plan.duration) = (timeout, duration);
    }
    if let Some(cache) = &step.options().cache {
        // A host's step reads every param, secrets included: its key would follow from them.
        let reads_params = kinds.get(&step.kind).is_none_or(|k| k.reads_names());
        if reads_params && !def.secrets.is_empty() {
            let message = format!("a `{}` step sees every param of the run, and this workflow has secrets: a cached step cannot read a secret (its key and outputs are kept); drop `cache`, or pass the step what it needs in `params`", step.kind);
            v.step(def, i, Some("cache"), message);
        }
        // The key's template is parsed and planned by `check_expressions`.
        if let Some(ttl) = v.duration(Some((def, i)), "cache.ttl", Some(&cache.ttl)) {
            let plan = plan.get_or_insert_with(Default::default);
            plan.cache = Some(Box::new(plan::CachePlan { ttl, key: None }));
        }
    }
    if step.options().http.is_some() {
        // A field that does not parse is reported by the kind or by `check_expressions`.
        let http = crate::steps::http::HttpPlan::compile(step).map(Box::new);
        plan.get_or_insert_with(Default::default).http = http;
    }
}

/// The names a loop body sees from the run around it, and which of them are secrets.
#[derive(Default)]
struct Outer {
    names: Vec<String>,
    secrets: Vec<String>,
}

impl Outer {
    fn is_secret(&self, def: &WorkflowDef, name: &str) -> bool {
        def.secrets.iter().chain(&self.secrets).any(|s| s == name)
    }
}

/// Checks `required` and `computed` names: each declared once among all parameters, and
/// a name expressions can use.
fn check_declared(v: &mut Validator, def: &WorkflowDef, field: &str, name: &str, before: &[&str]) {
    let place = |n: &str| {
        if def.params.contains_key(n) {
            Some("params")
        } else if def.secrets.iter().any(|s| s == n) {
            Some("secrets")
        } else {
            None
        }
    };
    if before.contains(&name) {
        v.top(field, &format!("`{name}` is declared twice (a parameter is under one of params, secrets, required and computed)"));
    } else if let Some(other) = place(name) {
        v.top(field, &format!("`{name}` is also under `{other}`; declare a parameter once"));
    } else if !crate::steps::is_identifier(name) {
        v.top(
            field,
            &format!("`{name}` is not a name expressions can use: use letters, digits and `_`"),
        );
    }
}

/// Checks `required`, and parses `computed`: each expression may use the parameters under
/// `params` and `required`, and the `computed` ones above it; not a secret (its value
/// would be stored and shown), not a step (none has run when a run starts).
fn compile_computed(v: &mut Validator, def: &WorkflowDef) -> Vec<(String, Template)> {
    let mut declared: Vec<&str> = Vec::new();
    for name in def.required.keys() {
        check_declared(v, def, &format!("required.{name}"), name, &declared);
        declared.push(name);
    }
    let mut computed = Vec::new();
    for (name, text) in &def.computed {
        let field = format!("computed.{name}");
        check_declared(v, def, &field, name, &declared);
        let visible = |n: &str| def.params.contains_key(n) || declared.contains(&n);
        match Template::parse(text) {
            Err(e) => v.top(&field, &e.to_string()),
            Ok(template) => {
                for e in template.check_constants() {
                    v.top(&field, &e.to_string());
                }
                for used in template.names() {
                    let n = used.name.as_str();
                    if visible(n) {
                        continue;
                    }
                    let why = if def.secrets.iter().any(|s| s == n) {
                        "is a secret, and a computed parameter is stored and shown".to_owned()
                    } else if def.computed.contains_key(n) {
                        "is computed below this one; computed parameters see those above them"
                            .to_owned()
                    } else {
                        let names =
                            def.params.keys().map(String::as_str).chain(declared.iter().copied());
                        format!("is not a parameter{}; a computed parameter sees `params`, `required` and the computed ones above it", did_you_mean(n, names))
                    };
                    v.top(&field, &format!("column {}: `{n}` {why}", used.column));
                }
                computed.push((name.clone(), template));
            }
        }
        declared.push(name);
    }
    computed
}

/// Checks `secrets`: each listed once, and not under `params` (a default would be a
/// secret written in the definition, which is stored and shown).
fn check_secrets(v: &mut Validator, def: &WorkflowDef) {
    for (n, name) in def.secrets.iter().enumerate() {
        let field = format!("secrets.{n}");
        if def.secrets[..n].contains(name) {
            v.top(&field, &format!("`{name}` is listed twice"));
        } else if def.params.contains_key(name) {
            v.top(&field, &format!("`{name}` is also under `params`; a secret has no default (the definition is stored and shown): list it in `secrets` only"));
        } else if !crate::steps::is_identifier(name) {
            v.top(
                &field,
                &format!("`{name}` is not a name expressions can use: use letters, digits and `_`"),
            );
        }
    }
}

/// Names a field may use beyond parameters and upstream steps.
enum Extra {
    None,
    /// These names too.
    Names(Vec<String>),
    /// Any name: they come from a body that is only known when the step runs.
    Any,
}

/// Where the engine keeps a field's parsed template, if it keeps it.
enum Slot<'a> {
    When,
    Command,
    Env(&'a str),
    Over,
    Condition,
    Match,
    /// One of `params`, evaluated as a value when an attempt starts.
    Param(&'a str),
    /// A param of an emitted signal, evaluated when the step succeeds.
    Emit,
    /// A first value of a `while`'s `carry`, evaluated when the loop starts.
    Carry,
    /// One of the lists of a `foreach` over a product, evaluated when the loop starts.
    Product,
    /// One of an `http` step's `headers`, or a string in its `body`; the step's plan
    /// ([`HttpPlan`](crate::steps::http::HttpPlan)) keeps them with its `url`.
    Http,
    /// An `http` step's `url`: values are percent-encoded, `${raw(...)}` written as is.
    Url,
    /// A step's `cache.key`, rendered when an attempt is about to launch.
    CacheKey,
}

impl Slot<'_> {
    /// Whether a secret may be used here: not where its value would be stored and shown
    /// (the items of iterations, signals).
    fn takes_secrets(&self) -> bool {
        !matches!(self, Slot::Over | Slot::Emit | Slot::Carry | Slot::Product)
    }
}

/// The fields of a step that may hold `${...}`, with their names, the extra names each
/// may use, and where the plan keeps them.
fn templated_fields(step: &StepDef) -> Vec<(String, &str, Extra, Slot<'_>)> {
    let mut fields = Vec::new();
    if let Some(w) = &step.options().when {
        fields.push(("when".to_string(), w.as_str(), Extra::None, Slot::When));
    }
    if let Some(c) = &step.options().command {
        fields.push(("command".to_string(), c.as_str(), Extra::None, Slot::Command));
    }
    for (k, value) in &step.options().env {
        fields.push((format!("env.{k}"), value.as_str(), Extra::None, Slot::Env(k)));
    }
    if let Some(url) = &step.http().url {
        fields.push(("url".to_string(), url.as_str(), Extra::None, Slot::Url));
    }
    for (k, value) in &step.http().headers {
        fields.push((format!("headers.{k}"), value.as_str(), Extra::None, Slot::Http));
    }
    if let Some(body) = &step.http().body {
        fields.extend(
            strings_in(body).into_iter().map(|s| ("body".to_string(), s, Extra::None, Slot::Http)),
        );
    }
    for (k, value) in &step.options().params {
        fields.extend(
            strings_in(value)
                .into_iter()
                .map(|s| (format!("params.{k}"), s, Extra::None, Slot::Param(k))),
        );
    }
    if let Some(over) = &step.flow().over {
        fields.push(("over".to_string(), over.as_str(), Extra::None, Slot::Over));
    }
    for (k, list) in &step.flow().over_product {
        let field = format!("over.{k}");
        fields.extend(
            strings_in(list).into_iter().map(|s| (field.clone(), s, Extra::None, Slot::Product)),
        );
    }
    if let Some(condition) = &step.flow().condition {
        // The previous iteration's outputs, by body step id.
        let extra = if step.flow().workflow.is_some() {
            Extra::Any
        } else {
            Extra::Names(
                step.flow()
                    .steps
                    .iter()
                    .map(|s| s.id.clone())
                    .chain([ITERATION.to_string()])
                    .chain(step.flow().carry.keys().cloned())
                    .collect(),
            )
        };
        fields.push(("condition".to_string(), condition.as_str(), extra, Slot::Condition));
    }
    for (k, value) in &step.flow().carry {
        let field = format!("carry.{k}");
        fields.extend(
            strings_in(value).into_iter().map(|s| (field.clone(), s, Extra::None, Slot::Carry)),
        );
    }
    if let Some(key) = step.options().cache.as_ref().and_then(|c| c.key.as_ref()) {
        fields.push(("cache.key".to_string(), key.as_str(), Extra::None, Slot::CacheKey));
    }
    if let Some(m) = &step.flow().signal_match {
        fields.push((
            "match".to_string(),
            m.as_str(),
            Extra::Names(vec!["signal".into()]),
            Slot::Match,
        ));
    }
    for (n, emit) in step.flow().emit_signals.iter().enumerate() {
        for (k, value) in &emit.params {
            let field = format!("emit_signals.{n}.params.{k}");
            fields.extend(
                strings_in(value)
                    .into_iter()
                    .map(|s| (field.clone(), s, Extra::Names(vec![step.id.clone()]), Slot::Emit)),
            );
        }
    }
    fields
}

/// Checks the `${...}` of every step: syntax, constant parts, and names. A name is a
/// parameter, or a step upstream of the one using it (its outputs); with a cycle in the
/// graph, "upstream" is not checked.
fn check_expressions(
    v: &mut Validator,
    def: &WorkflowDef,
    graph: &DiGraph<(), (), u32>,
    find: impl Fn(&str) -> Option<u32>,
    acyclic: bool,
    outer: &Outer,
    plans: &mut [Option<Box<StepPlan>>],
) {
    for (i, step) in def.steps.iter().enumerate() {
        for (field, text, extra, slot) in templated_fields(step) {
            let template = match Template::parse(text) {
                Ok(t) => t,
                Err(e) => {
                    v.step(def, i, Some(&field), e.to_string());
                    continue;
                }
            };
            let constant_errors = if field == "over" {
                template.check_constants_lazy()
            } else {
                template.check_constants()
            };
            for e in constant_errors {
                v.step(def, i, Some(&field), e.to_string());
            }
            for used in template.names() {
                let name = &used.name;
                if outer.is_secret(def, name) {
                    if step.options().cache.is_some() {
                        // Refused rather than hashed: a key or outputs kept for days must
                        // not follow from a secret.
                        let message = format!("column {}: `{name}` is a secret, and the step has `cache`: a cached step cannot read a secret (its key and outputs are kept); drop `cache` or the secret", used.column);
                        v.step(def, i, Some(&field), message);
                    } else if !slot.takes_secrets() {
                        let message = format!("column {}: `{name}` is a secret, and `{field}` is stored and shown: a secret reaches steps through `command`, `env`, `params` and an http step's `headers`, `body` and `url` only", used.column);
                        v.step(def, i, Some(&field), message);
                    } else if let Slot::Param(key) = slot {
                        let secret = &mut plans[i].get_or_insert_with(Box::default).secret_params;
                        if !secret.iter().any(|k| k == key) {
                            secret.push(key.to_owned());
                        }
                    }
                    continue;
                }
                let allowed = match &extra {
                    Extra::None => false,
                    Extra::Names(names) => names.contains(name),
                    Extra::Any => true,
                };
                let message = if allowed || def.has_param(name) {
                    continue;
                } else if let Some(target) = find(name) {
                    if !acyclic || is_upstream(graph, target as usize, i) {
                        continue;
                    }
                    format!(
                        "column {}: step `{name}` is not upstream of `{}`; add it to depends_on",
                        used.column, step.id
                    )
                } else if outer.names.contains(name) {
                    continue;
                } else {
                    let names = def
                        .param_names()
                        .chain(def.steps.iter().map(|s| s.id.as_str()))
                        .chain(outer.names.iter().map(String::as_str));
                    let hint = did_you_mean(name, names);
                    format!(
                        "column {}: `{name}` is neither a parameter nor a step{hint}; declare it under `params:`, or write `$${{...}}` for a literal",
                        used.column
                    )
                };
                v.step(def, i, Some(&field), message);
            }
            check_raw(v, def, i, &field, &template, matches!(slot, Slot::Command | Slot::Url));
            let plan = || -> Box<StepPlan> { Box::default() };
            match slot {
                Slot::When => plans[i].get_or_insert_with(plan).when = Some(template),
                Slot::Command => plans[i].get_or_insert_with(plan).command = Some(template),
                Slot::Env(key) => {
                    plans[i].get_or_insert_with(plan).env.push((key.to_owned(), template))
                }
                Slot::Over => plans[i].get_or_insert_with(plan).over = Some(template),
                Slot::Condition => plans[i].get_or_insert_with(plan).condition = Some(template),
                Slot::Match => plans[i].get_or_insert_with(plan).signal_match = Some(template),
                Slot::CacheKey => {
                    // No cache plan: its `ttl` did not parse, which is reported.
                    if let Some(cache) = plans[i].as_mut().and_then(|p| p.cache.as_mut()) {
                        cache.key = Some(template);
                    }
                }
                Slot::Param(_)
                | Slot::Emit
                | Slot::Carry
                | Slot::Product
                | Slot::Http
                | Slot::Url => {}
            }
        }
    }
}

/// `raw(...)` marks code in a shell command (and the part of an http step's `url` written
/// as is, not percent-encoded), so it must be a whole `${...}` there, and is refused
/// elsewhere.
fn check_raw(
    v: &mut Validator,
    def: &WorkflowDef,
    i: usize,
    field: &str,
    template: &Template,
    runs_code: bool,
) {
    for raw in template.raw_uses() {
        let column = raw.column;
        let message = if !runs_code {
            format!("column {column}: raw(...) marks shell code, and only a shell `command` runs code; drop it")
        } else if !raw.whole {
            format!("column {column}: raw(...) must be the whole `${{...}}` to mark code: `${{raw(flags)}}`")
        } else {
            continue;
        };
        v.step(def, i, Some(field), message);
    }
}

/// Warns of each `${raw(...)}` of a command whose value can come from outside the
/// workflow: a run's params (a start, a trigger, a signal trigger), what a step of a kind
/// like `wait_signal` received, or the run around a loop body (whose names may be either).
fn warn_of_outside_code(
    v: &mut Validator,
    def: &WorkflowDef,
    kinds: &StepKinds,
    plans: &[Option<Box<StepPlan>>],
) {
    let inside = |name: &str| {
        name == ITERATION
            || def.steps.iter().any(|s| {
                s.id == name && !kinds.get(&s.kind).is_some_and(|k| k.outputs_from_outside())
            })
    };
    for (i, plan) in plans.iter().enumerate() {
        let Some(command) = plan.as_ref().and_then(|p| p.command.as_ref()) else { continue };
        for raw in command.raw_uses() {
            if let Some(used) = raw.names.iter().find(|used| !inside(&used.name)) {
                let column = raw.column;
                let name = match &used.member {
                    Some(member) => format!("{}.{member}", used.name),
                    None => used.name.clone(),
                };
                let message = format!(
                    "column {column}: raw(...) runs `{name}` as shell code, and its value can come from outside the workflow (a run's params, a trigger, a signal); pass it as data (`${{{name}}}`) unless every sender is trusted"
                );
                v.step_warning(def, i, "command", message);
            }
        }
    }
}

/// Checks `triggers`, `run_strategy` and `max_concurrent_runs`: each trigger has exactly
/// one of `cron` and `signal`, its expression, zone and templates are valid, and its params
/// are parameters of the workflow.
fn check_triggers(v: &mut Validator, def: &WorkflowDef) {
    use crate::model::RunStrategy;
    match def.max_concurrent_runs {
        Some(0) => v.top("max_concurrent_runs", "must be at least 1"),
        Some(_) if def.run_strategy != RunStrategy::Parallel => v.top(
            "max_concurrent_runs",
            &format!("applies to `run_strategy: parallel` only, not {}", def.run_strategy.name()),
        ),
        _ => {}
    }
    for (n, trigger) in def.triggers.iter().enumerate() {
        let field = |name: &str| format!("triggers.{n}.{name}");
        let kinds = [trigger.cron.is_some(), trigger.signal.is_some(), !trigger.signals.is_empty()];
        match kinds.iter().filter(|k| **k).count() {
            0 => v.top(
                &format!("triggers.{n}"),
                "needs `cron: \"0 2 * * *\"`, `signal: <name>` or `signals: [a, b]`",
            ),
            1 => {}
            _ => v.top(
                &format!("triggers.{n}"),
                "has more than one of `cron`, `signal` and `signals`; use one trigger for each",
            ),
        }
        if let Some(expression) = &trigger.cron {
            if let Err(message) = crate::model::cron::parse_zone(trigger.timezone.as_deref()) {
                v.top(&field("timezone"), &message);
            } else if let Err(message) =
                crate::model::cron::CronSchedule::parse(expression, trigger.timezone.as_deref())
            {
                v.top(&field("cron"), &message);
            }
            v.duration(None, &field("jitter"), trigger.jitter.as_ref());
        } else {
            if trigger.timezone.is_some() {
                v.top(&field("timezone"), "applies to `cron` triggers only");
            }
            if trigger.jitter.is_some() {
                v.top(&field("jitter"), "applies to `cron` triggers only");
            }
            if trigger.misfire.is_some() {
                v.top(&field("misfire"), "applies to `cron` triggers only");
            }
        }
        let mut names = vec!["trigger".to_string()];
        match &trigger.signal {
            Some(name) => {
                if let Some(message) = crate::model::signal_name_problem(name) {
                    v.top(&field("signal"), &message);
                }
                names.push("signal".into());
            }
            None if trigger.signal_match.is_some() && !trigger.signals.is_empty() => v.top(
                &field("match"),
                "applies to one signal: give each joined signal its own (`signals: [{name: a, match: \"${...}\"}]`)",
            ),
            None if trigger.signal_match.is_some() => {
                v.top(&field("match"), "applies to `signal` triggers only")
            }
            None => {}
        }
        // What a run's params and each joined signal's `match` see.
        let mut templates: Vec<(String, &str, &[&str])> = Vec::new();
        if !trigger.signals.is_empty() {
            names.push("signals".into());
        } else if !trigger.join.is_empty() {
            v.top(&field("join"), "applies to `signals` triggers only");
        }
        let joins = trigger.signals.first().map_or(0, |s| s.join_params(trigger).len());
        for (k, joined) in trigger.signals.iter().enumerate() {
            let at = |name: &str| field(&format!("signals.{k}.{name}"));
            if let Some(message) = crate::model::signal_name_problem(&joined.name) {
                v.top(&at("name"), &message);
            }
            if trigger.signals[..k].iter().any(|other| other.name == joined.name) {
                v.top(&at("name"), &format!("`{}` is joined twice", joined.name));
            }
            if joined.join_params(trigger).len() != joins {
                v.top(&at("join"), &format!("joins on {} params, and the first signal on {joins}: each signal joins on as many, in the same order", joined.join_params(trigger).len()));
            }
            if let Some(m) = &joined.signal_match {
                if let Some(problem) = crate::steps::not_an_expression(
                    "match",
                    m,
                    "`match: \"${signal.table == 'events'}\"`",
                ) {
                    v.top(&at(&problem.field), &problem.message);
                }
                templates.push((at("match"), m.as_str(), &["signal"]));
            }
        }
        if let Some(m) = trigger.signal_match.as_ref().filter(|_| trigger.signals.is_empty()) {
            if let Some(problem) = crate::steps::not_an_expression(
                "match",
                m,
                "`match: \"${signal.table == 'events'}\"`",
            ) {
                v.top(&field(&problem.field), &problem.message);
            }
            templates.push((field("match"), m.as_str(), &[]));
        }
        for (name, value) in &trigger.params {
            if def.secrets.contains(name) {
                v.top(&field(&format!("params.{name}")), &format!("`{name}` is a secret: a trigger cannot give it (its firings are stored and shown); a host or `baton start -p` does"));
            } else if !def.has_param(name) {
                let hint = did_you_mean(name, def.param_names());
                v.top(&field(&format!("params.{name}")), &format!("`{name}` is not a parameter of the workflow{hint}; declare it under `params:`"));
            }
            templates.extend(
                strings_in(value)
                    .into_iter()
                    .map(|s| (field(&format!("params.{name}")), s, &[][..])),
            );
        }
        for (field, text, only) in templates {
            // A joined signal's `match` sees that signal, not the others.
            let names: Vec<String> = match only.is_empty() {
                true => names.clone(),
                false => only.iter().map(|n| n.to_string()).collect(),
            };
            let template = match Template::parse(text) {
                Ok(t) => t,
                Err(e) => {
                    v.top(&field, &e.to_string());
                    continue;
                }
            };
            for e in template.check_constants() {
                v.top(&field, &e.to_string());
            }
            for used in template.names() {
                if !names.contains(&used.name) && !def.params.contains_key(&used.name) {
                    let hint = did_you_mean(
                        &used.name,
                        names
                            .iter()
                            .map(String::as_str)
                            .chain(def.params.keys().map(String::as_str)),
                    );
                    let visible =
                        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
                    v.top(&field, &format!("column {}: unknown name `{}`{hint}; a trigger sees {visible} and the parameters", used.column, used.name));
                }
            }
        }
    }
}

/// Compiles the inline bodies of `foreach` and `while` steps. A body sees the names of
/// the run around it: parameters, names from further out, and the steps upstream of its
/// step. Its problems are reported on its step, at `steps.N.<field>`.
fn compile_bodies(
    v: &mut Validator,
    def: &WorkflowDef,
    graph: &DiGraph<(), (), u32>,
    acyclic: bool,
    kinds: &StepKinds,
    outer: &Outer,
) -> HashMap<usize, Arc<Workflow>> {
    let mut bodies = HashMap::new();
    for (i, step) in def.steps.iter().enumerate() {
        if step.flow().steps.is_empty() {
            continue;
        }
        let mut params = indexmap::IndexMap::new();
        if step.flow().over.is_some() {
            params.insert(
                step.flow().item_name.clone().unwrap_or_else(|| DEFAULT_ITEM_NAME.into()),
                Value::Null,
            );
        }
        for name in step.flow().over_product.keys() {
            params.insert(name.clone(), Value::Null);
        }
        params.insert(ITERATION.into(), Value::Null);
        for name in step.flow().carry.keys() {
            let field = format!("carry.{name}");
            if !crate::steps::is_identifier(name) || name == ITERATION || name == "iterations" {
                v.step(def, i, Some(&field), format!("`{name}` is not a name the body can use: use letters, digits and `_`, not `{ITERATION}` or `iterations`"));
            } else if step.flow().steps.iter().any(|b| &b.id == name) {
                v.step(def, i, Some(&field), format!("`{name}` is also a step of the body; the condition could not tell them apart"));
            }
            params.insert(name.clone(), Value::Null);
        }
        let visible = Outer {
            names: outer
                .names
                .iter()
                .cloned()
                .chain(def.param_names().map(String::from))
                .chain(upstream_of(graph, i, acyclic).map(|u| def.steps[u].id.clone()))
                .collect(),
            secrets: outer.secrets.iter().chain(&def.secrets).cloned().collect(),
        };
        let body = WorkflowDef {
            id: format!("{}.{}", def.id, step.id),
            description: None,
            params,
            secrets: Vec::new(),
            required: Default::default(),
            computed: Default::default(),
            max_parallel: def.max_parallel,
            timeout: None,
            signal_retention: def.signal_retention.clone(),
            steps: step.flow().steps.clone(),
            triggers: Vec::new(),
            run_strategy: Default::default(),
            max_concurrent_runs: None,
        };
        match Workflow::compile_in(body, kinds, Some(&visible)) {
            Ok(mut body) => {
                for w in std::mem::take(&mut body.warnings) {
                    v.warnings.push(in_body(w, step, i));
                }
                bodies.insert(i, Arc::new(body));
            }
            Err(invalid) => {
                for e in invalid.errors {
                    v.errors.push(in_body(e, step, i));
                }
            }
        }
    }
    bodies
}

/// A problem of the body of loop step number `i`, as one of the loop's.
fn in_body(mut e: DefinitionError, step: &StepDef, i: usize) -> DefinitionError {
    let inner = e.step_index.map(|j| format!("steps.{j}")).unwrap_or_else(|| "steps".into());
    e.field = Some(match &e.field {
        Some(f) => format!("{inner}.{f}"),
        None if e.step_index.is_some() => format!("{inner}.id"),
        None => inner,
    });
    e.step = Some(match &e.step {
        Some(s) => format!("{}/{s}", step.id),
        None => step.id.clone(),
    });
    e.step_index = Some(i);
    e
}

/// Whether `from` is an ancestor of `to`.
fn is_upstream(graph: &DiGraph<(), (), u32>, from: usize, to: usize) -> bool {
    ancestors(graph, to).any(|u| u == from)
}

/// The steps upstream of `step`, in one walk of the graph; with a cycle, every step (what
/// is upstream is then not checked).
fn upstream_of(
    graph: &DiGraph<(), (), u32>,
    step: usize,
    acyclic: bool,
) -> Box<dyn Iterator<Item = usize> + '_> {
    if acyclic {
        let mut found: Vec<usize> = ancestors(graph, step).collect();
        // Definition order, as the names are listed in suggestions.
        found.sort_unstable();
        Box::new(found.into_iter())
    } else {
        Box::new(0..graph.node_count())
    }
}

/// The ancestors of `step`, each once, walking up the graph lazily.
fn ancestors(graph: &DiGraph<(), (), u32>, step: usize) -> impl Iterator<Item = usize> + '_ {
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![NodeIndex::new(step)];
    let mut pending: Vec<NodeIndex<u32>> = Vec::new();
    std::iter::from_fn(move || loop {
        if let Some(up) = pending.pop() {
            if seen.insert(up) {
                stack.push(up);
                return Some(up.index());
            }
            continue;
        }
        let n = stack.pop()?;
        pending.extend(graph.neighbors_directed(n, Direction::Incoming));
    })
}

/// One cycle (as a path of step indices) per strongly connected component.
fn cycles(graph: &DiGraph<(), (), u32>) -> Vec<Vec<usize>> {
    tarjan_scc(graph)
        .into_iter()
        .filter(|scc| scc.len() > 1)
        .map(|scc| {
            let members: std::collections::HashSet<NodeIndex<u32>> = scc.iter().copied().collect();
            // Walk inside the component until a node repeats: that closes a cycle.
            let mut path = vec![scc[0]];
            let mut at = scc[0];
            loop {
                let next = graph
                    .neighbors_directed(at, Direction::Outgoing)
                    .find(|n| members.contains(n))
                    .unwrap_or(scc[0]);
                if let Some(pos) = path.iter().position(|&p| p == next) {
                    // Show the cycle in definition order of the steps.
                    let mut cycle: Vec<usize> = path[pos..].iter().map(|n| n.index()).collect();
                    let start = (0..cycle.len()).min_by_key(|&k| cycle[k]).unwrap_or(0);
                    cycle.rotate_left(start);
                    return cycle;
                }
                path.push(next);
                at = next;
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Format;

    fn compile(yaml: &str) -> Result<Workflow, InvalidDefinition> {
        Workflow::load(
            &Source::new("flow.yaml", yaml, Format::Yaml),
            &crate::engine::built_in_kinds(),
        )
    }

    fn errors(yaml: &str) -> Vec<String> {
        compile(yaml).unwrap_err().errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn compiles_a_valid_workflow() {
        let wf = compile(
            "id: etl\nparams: {date: x}\nsteps:\n  - {id: a, type: shell, command: 'echo rows=1 >> $BATON_OUTPUT'}\n  - {id: b, type: sleep, duration: 1s, depends_on: [a]}\n  - {id: c, type: shell, command: 'echo ${a.rows} ${date}', depends_on: [b]}\n",
        )
        .unwrap();
        assert_eq!(wf.len(), 3);
        assert_eq!(wf.index_of("c"), Some(2));
        assert_eq!(wf.downstream(0).collect::<Vec<_>>(), vec![1]);
        assert_eq!(wf.upstream(2).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn reports_every_problem_at_once_with_lines() {
        let errs = errors(
            "id: etl\nsteps:\n  - id: a\n    type: noop\n  - id: a\n    type: noop\n  - id: b\n    type: shel\n  - id: c\n    type: noop\n    depends_on: [extrat]\n  - id: d e\n    type: noop\n",
        );
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs[0].starts_with("flow.yaml:5:5: step `a`: id: duplicate step id"), "{errs:#?}");
        assert!(
            errs.iter().any(|e| e.contains(
                "flow.yaml:8:5: step `b`: type: unknown step type `shel` (did you mean `shell`?)"
            )),
            "{errs:#?}"
        );
        assert!(
            errs.iter()
                .any(|e| e
                    .contains("flow.yaml:11:18: step `c`: depends_on.0: unknown step `extrat`")),
            "{errs:#?}"
        );
        assert!(errs.iter().any(|e| e.contains("step `d e`: id: invalid step id")), "{errs:#?}");
    }

    #[test]
    fn names_the_steps_on_a_cycle() {
        let errs = errors(
            "id: x\nsteps:\n  - {id: a, type: noop, depends_on: [c]}\n  - {id: b, type: noop, depends_on: [a]}\n  - {id: c, type: noop, depends_on: [b]}\n  - {id: d, type: noop, depends_on: [d]}\n",
        );
        assert!(errs.iter().any(|e| e.contains("dependency cycle: a -> b -> c -> a")), "{errs:#?}");
        assert!(
            errs.iter()
                .any(|e| e.contains("step `d`: depends_on.0: a step cannot depend on itself")),
            "{errs:#?}"
        );
    }

    #[test]
    fn checks_durations_kinds_and_fields() {
        let errs = errors(
            "id: x\ntimeout: 2 hours\nsteps:\n  - {id: a, type: sleep}\n  - {id: b, type: shell, command: echo, duration: 1s, timeout: 10}\n  - {id: c, type: noop, retry: {max_attempts: 0, delay: 1x}}\n",
        );
        let all = errs.join("\n");
        for expected in [
            "timeout: unknown unit",
            "step `a`: duration: `sleep` steps need `duration`",
            "step `b`: duration: `duration` is not used by `shell` steps",
            "step `b`: timeout: duration `10` needs a unit",
            "step `c`: retry.max_attempts: must be at least 1",
            "step `c`: retry.delay: unknown unit `x`",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn checks_references() {
        let errs = errors(
            "id: x\nparams: {date: d}\nsteps:\n  - {id: a, type: shell, command: 'echo ${dat}'}\n  - {id: b, type: shell, command: 'echo ${a.rows}'}\n  - {id: c, type: shell, command: 'echo ${zz.rows} ${x', depends_on: [a]}\n  - {id: d, type: shell, command: 'echo ${date + 1 * \"x\"}'}\n",
        );
        let all = errs.join("\n");
        for expected in [
            "step `a`: command: column 8: `dat` is neither a parameter nor a step (did you mean `date`?)",
            "step `b`: command: column 8: step `a` is not upstream of `b`",
            "step `c`: command: column 20: expected `}` to close `${`, found the end of the text (write `$${` for a literal `${`)",
            "step `d`: command: column 15: cannot apply `*` to an integer and a string",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }

    #[test]
    fn checks_triggers() {
        let errs = errors(
            "id: x\nparams: {date: d}\nrun_strategy: sequential\nmax_concurrent_runs: 2\ntriggers:\n  - {cron: '0 2 * *'}\n  - {cron: '0 2 * * *', timezone: Mars/Olympus}\n  - {cron: '0 2 * * *', signal: s}\n  - {signal: 'bad name', match: '${signal.x == 1}', params: {day: '${signal.date}'}}\n  - {signal: ok, params: {date: '${sigal.date}'}}\n  - {misfire: skip}\nsteps:\n  - {id: a, type: noop}\n",
        );
        let all = errs.join("\n");
        for expected in [
            "max_concurrent_runs: applies to `run_strategy: parallel` only, not sequential",
            "triggers.0.cron: invalid cron expression `0 2 * *`: 4 fields",
            "triggers.1.timezone: unknown time zone `Mars/Olympus`",
            "triggers.2: has more than one of `cron`, `signal` and `signals`",
            "triggers.3.signal: invalid signal name `bad name`",
            "triggers.3.params.day: `day` is not a parameter of the workflow",
            "triggers.4.params.date: column 3: unknown name `sigal` (did you mean `signal`?)",
            "triggers.5: needs `cron",
            "triggers.5.misfire: applies to `cron` triggers only",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert!(compile("id: x\nparams: {date: d}\nrun_strategy: parallel\nmax_concurrent_runs: 2\ntriggers:\n  - {cron: '30 2 * * 1-5', timezone: Europe/Berlin, misfire: run_all, params: {date: \"${format_date(trigger.scheduled_time, 'yyyy-MM-dd')}\"}}\n  - {signal: table_ready, match: \"${signal.table == 'events'}\", params: {date: '${signal.date}'}}\nsteps:\n  - {id: a, type: noop}\n").is_ok());
    }

    #[test]
    fn without_an_engine_other_kinds_are_a_hosts_and_take_params_only() {
        let yaml = "id: x\nsteps:\n  - {id: a, type: spark_sql, params: {q: 1}}\n  - {id: b, type: java, command: echo}\n  - {id: c, type: '', depends_on: [c]}\n";
        let errs = Workflow::load(
            &Source::new("x.yaml", yaml, Format::Yaml),
            &crate::engine::built_in_kinds().open(),
        )
        .unwrap_err();
        let all: Vec<String> = errs.errors.iter().map(ToString::to_string).collect();
        assert_eq!(all.len(), 3, "{all:#?}");
        assert!(
            all[0].starts_with(
                "x.yaml:4:25: step `b`: command: `command` is not used by `java` steps"
            ),
            "{all:#?}"
        );
        assert!(
            all[1]
                .contains("step `c`: type: the step has no type; known types: foreach, http, noop"),
            "{all:#?}"
        );
        assert!(
            all[2].contains("step `c`: depends_on.0: a step cannot depend on itself"),
            "{all:#?}"
        );
        assert!(errors("id: x\nsteps:\n  - {id: a, type: spark_sql}\n")[0]
            .contains("unknown step type `spark_sql`"));
        // A typo of a built-in kind, with fields no host kind takes, is named as a typo.
        let typo = "id: x\nsteps:\n  - {id: a, type: shel, command: echo}\n";
        let open = crate::engine::built_in_kinds().open();
        let errs = Workflow::load(&Source::new("x.yaml", typo, Format::Yaml), &open).unwrap_err();
        assert_eq!(errs.errors.len(), 1, "{errs}");
        let text = errs.errors[0].to_string();
        assert!(text.ends_with("type: unknown step type `shel` (did you mean `shell`?)"), "{text}");
    }

    #[test]
    fn built_in_kinds_cannot_be_replaced() {
        let mut kinds = crate::engine::built_in_kinds();
        for name in
            ["noop", "sleep", "shell", "http", "foreach", "while", "subworkflow", "wait_signal"]
        {
            let shell = kinds.get("shell").unwrap().clone();
            let err = kinds.register(name, shell).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("`{name}` is a built-in step type and cannot be replaced")
            );
        }
        let noop = kinds.get("noop").unwrap().clone();
        assert!(kinds
            .register("a b", noop.clone())
            .unwrap_err()
            .to_string()
            .contains("invalid step type name `a b`"));
        kinds.fix("java", noop.clone()).unwrap();
        assert!(kinds.register("java", noop.clone()).is_err(), "a host's fixed kind stays");
        kinds.register("spark_sql", noop.clone()).unwrap();
        kinds.register("spark_sql", noop).unwrap();
    }

    #[test]
    fn durations_are_given_back_in_canonical_form() {
        let yaml = "id: x\ntimeout: 1h30m\nsteps:\n  - {id: a, type: sleep, duration: 1500ms, retry: {max_attempts: 2, delay: 60s}}\n  - {id: l, type: foreach, over: '${[1]}', steps: [{id: in, type: sleep, duration: 120m}]}\n";
        let mut def = compile(yaml).unwrap().into_def();
        def.canonicalize_durations();
        let json = serde_json::to_string(&def).unwrap();
        for expected in [
            r#""timeout":"90m""#,
            r#""duration":"1500ms""#,
            r#""delay":"1m""#,
            r#""duration":"2h""#,
        ] {
            assert!(json.contains(expected), "{expected} in {json}");
        }
    }

    #[test]
    fn the_plan_holds_every_field_parsed() {
        let wf = compile(
            "id: x\nparams: {p: 1}\nsteps:\n  - {id: a, type: shell, command: 'echo ${p}', env: {X: '${p}'}, when: '${p > 0}', timeout: 1m, retry: {max_attempts: 3, backoff: fixed, delay: 2s}}\n  - {id: b, type: noop}\n  - {id: l, type: foreach, over: '${range(0, p)}', steps: [{id: s, type: sleep, duration: 5s}]}\n",
        )
        .unwrap();
        let a = wf.plan(0);
        assert_eq!(a.timeout, Some(Duration::from_secs(60)));
        let retry = a.retry.unwrap();
        assert_eq!(
            (retry.max_attempts, retry.delay, retry.max_delay),
            (3, Duration::from_secs(2), RetryPolicy::DEFAULT_MAX_DELAY)
        );
        assert!(a.when.is_some() && a.command.is_some());
        assert_eq!(a.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["X"]);
        assert!(wf.plans[1].is_none(), "a step that sets nothing has no plan allocated");
        assert!(wf.plan(2).over.is_some());
        assert_eq!(wf.body(2).unwrap().plan(0).duration, Some(Duration::from_secs(5)));
        let hosted = compile("id: x\nparams: {p: 1}\nsteps:\n  - {id: a, type: subworkflow, workflow: w, params: {n: '${p}', list: [1, '${p + 1}']}, emit_signals: [{name: s, params: {v: '${a.x}'}}]}\n").unwrap();
        let names: Vec<&str> = hosted.plan(0).params.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["n", "list"]);
        assert_eq!(hosted.plan(0).emit_params.len(), 1);
    }

    #[test]
    fn renders_dot_and_mermaid() {
        let wf = compile(
            "id: x\nsteps:\n  - {id: a, type: noop}\n  - {id: b, type: noop, depends_on: [a]}\n",
        )
        .unwrap();
        assert!(wf.to_dot().contains("\"a\" -> \"b\";"));
        assert!(wf.to_mermaid().contains("s0 --> s1"));
    }

    #[test]
    fn raw_marks_code_in_commands_only_and_is_warned_of_when_outsiders_set_it() {
        let text = r#"
id: w
params: {flags: "-n", items: [1]}
steps:
  - {id: a, type: shell, command: 'echo x=1 >> $BATON_OUTPUT'}
  - {id: s, type: wait_signal, signal: go}
  - {id: b, type: shell, depends_on: [a, s], command: 'echo ${raw(a.x)} ${raw(flags)} ${raw(s.y)}'}
  - id: l
    type: foreach
    over: '${items}'
    steps:
      - {id: in, type: shell, command: 'echo ${raw(iteration)} ${raw(item)} ${raw(flags)}'}
"#;
        let wf = compile(text).unwrap();
        let warnings: Vec<String> = wf.warnings().iter().map(|w| w.to_string()).collect();
        // `a.x` and `iteration` are the workflow's own; the rest can come from outside.
        assert_eq!(warnings.len(), 4, "{warnings:#?}");
        assert!(warnings[0].starts_with("flow.yaml:7:"), "{}", warnings[0]);
        assert!(warnings[0].contains("raw(...) runs `flags` as shell code"), "{}", warnings[0]);
        assert!(warnings[1].contains("runs `s.y`"), "{}", warnings[1]);
        assert!(warnings[2].contains("step `l/in`") && warnings[2].contains("runs `item`"));
        assert!(warnings[3].contains("step `l/in`") && warnings[3].contains("runs `flags`"));
        let misplaced = "id: w\nparams: {p: x}\nsteps:\n  - {id: a, type: shell, command: 'echo ${\"-\" + raw(p)}', env: {E: '${raw(p)}'}}\n";
        assert_eq!(
            errors(misplaced),
            [
                "flow.yaml:4:26: step `a`: command: column 14: raw(...) must be the whole `${...}` to mark code: `${raw(flags)}`",
                "flow.yaml:4:65: step `a`: env.E: column 3: raw(...) marks shell code, and only a shell `command` runs code; drop it",
            ]
        );
    }

    #[test]
    fn signal_names_may_join_ids_with_slashes() {
        let ok = "id: x\ntriggers:\n  - {signal: prod_db/events/ready}\nsteps:\n  - {id: w, type: wait_signal, signal: prod_db/events/ready}\n  - {id: e, type: noop, emit_signals: [{name: team/done}]}\n";
        compile(ok).unwrap();
        let bad = "id: x\ntriggers:\n  - {signal: 'a//b'}\nsteps:\n  - {id: w, type: wait_signal, signal: /lead}\n  - {id: e, type: noop, emit_signals: [{name: 'sp ace'}]}\n";
        let errors = compile(bad).unwrap_err().to_string();
        for expected in [
            "triggers.0.signal: invalid signal name `a//b`",
            "`/lead`",
            "emit_signals.0.name",
            "and `/` between names",
        ] {
            assert!(errors.contains(expected), "{expected}: {errors}");
        }
    }
}

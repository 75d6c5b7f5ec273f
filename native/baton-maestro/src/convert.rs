//! Maestro's model mapped onto Baton's, construct by construct. What has no counterpart
//! is refused (a [`Refusal`] naming where and why), never changed in meaning; Maestro's
//! defaults are written out where Baton's differ.

use crate::read::Definition;
use crate::sel::{self, Names};
use crate::Refusal;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};

/// What an import found besides the definition.
#[derive(Default)]
pub(crate) struct Report {
    pub(crate) host_types: BTreeSet<String>,
    pub(crate) notes: Vec<String>,
    pub(crate) limits: Vec<(String, u64)>,
    pub(crate) refusals: Vec<Refusal>,
}

impl Report {
    fn refuse(&mut self, at: impl Into<String>, reason: impl Into<String>) {
        self.refusals.push(Refusal { at: at.into(), reason: reason.into() });
    }
}

/// Workflow fields that only describe (who owns it, labels): not part of what runs.
const METADATA: [&str; 4] = ["name", "tags", "criticality", "git_info"];

/// Maestro's retry defaults (its `Defaults`): 2 retries of an error, exponential backoff
/// from 60 s doubling up to 600 s; timeouts not retried.
const DEFAULT_ERROR_RETRIES: u64 = 2;
const DEFAULT_BACKOFF_SECS: u64 = 60;
const DEFAULT_BACKOFF_LIMIT_SECS: u64 = 600;
/// Maestro's default limit on a run and on a step: 10 days.
const DEFAULT_TIMEOUT: &str = "10d";

pub(crate) fn workflow(def: Definition, report: &mut Report) -> Value {
    let mut wf = def.workflow;
    let mut out = Map::new();
    let id = wf.remove("id").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    if id.is_empty() {
        report.refuse("workflow", "no `id`");
    }
    out.insert("id".into(), json!(id));
    let name = wf.remove("name");
    let description = match (name.as_ref().and_then(Value::as_str), wf.remove("description")) {
        (Some(n), Some(Value::String(d))) => Some(format!("{n}: {d}")),
        (Some(n), _) => Some(n.to_owned()),
        (None, Some(Value::String(d))) => Some(d),
        _ => None,
    };
    if let Some(d) = description {
        out.insert("description".into(), json!(d));
    }
    let mut props = def.properties;
    for key in ["owner", "alerting", "description"] {
        if props.remove(key).is_some() {
            report.notes.push(format!("properties.{key}: not kept (Baton has no {key} setting)"));
        }
    }
    if def.is_active == Some(false) {
        report.notes.push(
            "is_active: false: `baton register` makes a new version active; `baton activate` rolls back".into(),
        );
    }
    let at_start = Scope { run_zone: Some(run_zone(&wf)), ..Scope::default() };
    let (params, computed) = match wf.remove("params") {
        Some(Value::Object(p)) => workflow_params(p, &at_start, report),
        _ => Default::default(),
    };
    let names = Scope {
        params: params.keys().chain(computed.keys()).cloned().collect(),
        ..at_start.clone()
    };
    if !params.is_empty() {
        out.insert("params".into(), Value::Object(params));
    }
    if !computed.is_empty() {
        out.insert("computed".into(), Value::Object(computed));
    }
    if let Some(n) = wf.remove("instance_step_concurrency").and_then(|v| v.as_u64()) {
        out.insert("max_parallel".into(), json!(n));
    }
    let timeout = match wf.remove("timeout") {
        Some(t) => duration(&t).unwrap_or_else(|e| {
            report.refuse("workflow: timeout", e);
            String::new()
        }),
        None => DEFAULT_TIMEOUT.into(),
    };
    out.insert("timeout".into(), json!(timeout));
    run_strategy(props.remove("run_strategy"), &mut out, report);
    let step_tag = props.remove("step_concurrency").and_then(|v| v.as_u64()).map(|n| {
        let tag = format!("{id}.steps");
        report.limits.push((tag.clone(), n));
        tag
    });
    for key in props.keys() {
        report.refuse(format!("properties.{key}"), "not translated");
    }
    let mut triggers = Vec::new();
    if let Some(Value::Array(list)) = wf.remove("time_triggers") {
        for (i, t) in list.iter().enumerate() {
            match cron_trigger(t) {
                Ok(t) => triggers.push(t),
                Err(e) => report.refuse(format!("workflow: time_triggers.{i}"), e),
            }
        }
    }
    if let Some(Value::Array(list)) = wf.remove("signal_triggers") {
        for (i, t) in list.iter().enumerate() {
            match signal_trigger(t, report) {
                Ok(t) => triggers.push(t),
                Err(e) => report.refuse(format!("workflow: signal_triggers.{i}"), e),
            }
        }
    }
    if !triggers.is_empty() {
        out.insert("triggers".into(), Value::Array(triggers));
    }
    let steps = match wf.remove("steps") {
        Some(Value::Array(steps)) => steps,
        _ => {
            report.refuse("workflow", "no `steps`");
            Vec::new()
        }
    };
    let context = Context { tag: step_tag.as_deref() };
    out.insert("steps".into(), Value::Array(step_list(&steps, &names, &context, report)));
    let reads = names.signal_reads.borrow().clone();
    signal_params(&mut out, &reads, report);
    for key in wf.keys() {
        if METADATA.contains(&key.as_str()) {
            report.notes.push(format!("workflow.{key}: not kept (descriptive only)"));
        } else {
            report.refuse(format!("workflow.{key}"), "not translated");
        }
    }
    Value::Object(out)
}

/// What every step of the workflow gets.
struct Context<'a> {
    /// The tag that counts the steps against the workflow's `step_concurrency`.
    tag: Option<&'a str>,
}

/// The names a SEL expression may use where it stands.
#[derive(Default, Clone)]
struct Scope {
    params: HashSet<String>,
    /// The loop variables of the foreach loops around.
    loop_vars: HashSet<String>,
    /// For an edge's condition: the step it leaves and that step's params.
    source: Option<(String, HashSet<String>)>,
    /// Steps of the DAG being read (for `step__param`).
    steps: HashSet<String>,
    /// The time zone of Maestro's run date (`TARGET_RUN_DATE`): its first time trigger's,
    /// else UTC. None where no run exists yet (a trigger's condition).
    run_zone: Option<String>,
    /// The signal params the workflow reads (`getFromSignal`): each becomes a run param
    /// that the signal triggers set. Shared by every scope of the workflow.
    signal_reads: std::rc::Rc<std::cell::RefCell<BTreeSet<(String, String)>>>,
}

impl Names for Scope {
    fn of_signal(&self, signal: &str, param: &str) -> Result<String, String> {
        if self.run_zone.is_none() {
            return Err(
                "`params.getFromSignal(...)` reads the run's signal: there is no run here".into()
            );
        }
        self.signal_reads.borrow_mut().insert((signal.to_owned(), param.to_owned()));
        Ok(signal_param(signal, param))
    }

    fn param(&self, name: &str) -> Result<String, String> {
        if let Some((step, params)) = &self.source {
            if params.contains(name) {
                return self.of_step(step, name);
            }
        }
        if self.params.contains(name) || self.loop_vars.contains(name) {
            return Ok(name.to_owned());
        }
        if let Some((step, param)) = name.split_once("__").filter(|(s, _)| self.steps.contains(*s))
        {
            return self.of_step(step, param);
        }
        if let (Some(zone), Some(pattern)) = (&self.run_zone, run_date_pattern(name)) {
            // Maestro's run date is its trigger's time (else the start), in the zone.
            return Ok(format!(
                "int(format_date(scheduled_at(), '{pattern}', {}))",
                sel::quote(zone)
            ));
        }
        if name.chars().all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) {
            return Err(format!("Maestro's built-in param `{name}` has no Baton counterpart yet"));
        }
        Err(format!("`{name}` is neither a param of the workflow nor a loop variable here"))
    }
}

/// The run param that holds param `param` of the signal `signal` that started the run.
fn signal_param(signal: &str, param: &str) -> String {
    let clean = |s: &str| s.replace(|c: char| !(c.is_ascii_alphanumeric() || c == '_'), "_");
    format!("signal_{}__{}", clean(signal), clean(param))
}

/// Makes the signal params the workflow reads run params, set by the signal triggers that
/// carry them (a run started otherwise has them null).
fn signal_params(
    out: &mut Map<String, Value>,
    reads: &BTreeSet<(String, String)>,
    report: &mut Report,
) {
    for (signal, param) in reads {
        let name = signal_param(signal, param);
        let member = if param.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            format!(".{param}")
        } else {
            format!("[{}]", sel::quote(param))
        };
        out.entry("params").or_insert_with(|| json!({}))[&name] = Value::Null;
        let mut set = false;
        for trigger in out.get_mut("triggers").and_then(Value::as_array_mut).into_iter().flatten() {
            let joined = trigger.get("signals").and_then(Value::as_array).is_some_and(|list| {
                list.iter().any(|s| s.get("name").and_then(Value::as_str) == Some(signal))
            });
            let value = if trigger.get("signal").and_then(Value::as_str) == Some(signal) {
                format!("${{signal{member}}}")
            } else if joined {
                format!("${{signals[{}]{member}}}", sel::quote(signal))
            } else {
                continue;
            };
            if let Some(t) = trigger.as_object_mut() {
                t.entry("params").or_insert_with(|| json!({}))[&name] = json!(value);
            }
            set = true;
        }
        report.notes.push(match set {
            true => format!("getFromSignal('{signal}', '{param}'): the run param `{name}`, set by the signal trigger"),
            false => format!("getFromSignal('{signal}', '{param}'): the run param `{name}`; no trigger of `{signal}` sets it, so it is null unless a start gives it"),
        });
    }
}

/// The `format_date` pattern of Maestro's built-in run date params.
fn run_date_pattern(name: &str) -> Option<&'static str> {
    match name {
        "TARGET_RUN_DATE" => Some("yyyyMMdd"),
        "TARGET_RUN_HOUR" => Some("HH"),
        _ => None,
    }
}

/// The zone of Maestro's run date: the first time trigger's, else UTC.
fn run_zone(wf: &Map<String, Value>) -> String {
    let first = wf.get("time_triggers").and_then(Value::as_array).and_then(|t| t.first());
    first.and_then(|t| t.get("timezone")).and_then(Value::as_str).unwrap_or("UTC").to_owned()
}

/// Workflow params: values stay values (a constant expression too); other expressions
/// become `computed` params, evaluated when a run starts with the params above them.
fn workflow_params(
    params: Map<String, Value>,
    at_start: &Scope,
    report: &mut Report,
) -> (Map<String, Value>, Map<String, Value>) {
    let (mut values, mut computed) = (Map::new(), Map::new());
    let mut scope = at_start.clone();
    for (name, def) in params {
        let at = format!("workflow: params.{name}");
        if let Some(e) = def.get("expression") {
            let e = e.as_str().unwrap_or_default().trim().to_owned();
            match sel::translate(&e, &scope) {
                Ok(constant) if is_literal(&constant) => {
                    values.insert(name.clone(), literal_value(&constant));
                }
                Ok(expression) => {
                    computed.insert(name.clone(), json!(format!("${{{expression}}}")));
                }
                Err(reason) => report.refuse(at, format!("`{e}`: {reason}")),
            }
        } else {
            match literal(&def, &at) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(e) => report.refuse(at, e),
            }
        }
        scope.params.insert(name);
    }
    (values, computed)
}

/// The value of a SEL expression that reads nothing (`1 * 60`), evaluated as Baton would.
fn constant(sel: &str) -> Option<Value> {
    struct Nothing;
    impl baton_core::expr::Scope for Nothing {
        fn name(&self, _: &str) -> Option<Value> {
            None
        }
        fn now_ms(&self) -> u64 {
            0
        }
    }
    let expression = sel::translate(sel, &Scope::default()).ok()?;
    baton_core::expr::Template::parse(&format!("${{{expression}}}")).ok()?.evaluate(&Nothing).ok()
}

fn is_literal(expr: &str) -> bool {
    let e = expr.trim();
    (e.starts_with('\'') && e.ends_with('\'') && e.len() >= 2 && !e[1..e.len() - 1].contains('\''))
        || e.parse::<f64>().is_ok()
        || matches!(e, "true" | "false")
}

fn literal_value(expr: &str) -> Value {
    let e = expr.trim();
    if let Some(s) = e.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        return json!(s);
    }
    serde_json::from_str(e).unwrap_or(Value::Null)
}

/// A param definition's literal value (`{value, type}`; a MAP holds definitions in turn).
fn literal(def: &Value, at: &str) -> Result<Value, String> {
    let Some(value) = def.get("value") else {
        return Err("a param with neither `value` nor `expression`".into());
    };
    check_param_fields(def)?;
    let is_map =
        def.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("MAP"));
    match value {
        Value::Object(m) if is_map => m
            .iter()
            .map(|(k, d)| Ok((k.clone(), literal(d, &format!("{at}.{k}"))?)))
            .collect::<Result<Map<_, _>, String>>()
            .map(Value::Object),
        Value::String(s) if s.contains("${") => Err(format!(
            "`{s}`: Maestro's `${{...}}` in a workflow param's value is not translated"
        )),
        other => Ok(other.clone()),
    }
}

fn check_param_fields(def: &Value) -> Result<(), String> {
    for key in def.as_object().into_iter().flat_map(|m| m.keys()) {
        match key.as_str() {
            "value" | "expression" | "type" => {}
            "mode" if def[key].as_str().is_some_and(|m| m.eq_ignore_ascii_case("MUTABLE")) => {}
            other => return Err(format!("`{other}` of a param is not translated")),
        }
    }
    Ok(())
}

fn run_strategy(strategy: Option<Value>, out: &mut Map<String, Value>, report: &mut Report) {
    let (rule, concurrency) = match strategy {
        None => ("sequential".to_owned(), None),
        Some(Value::String(s)) => (s.to_ascii_lowercase(), None),
        Some(Value::Object(m)) => (
            m.get("rule").and_then(Value::as_str).unwrap_or("sequential").to_ascii_lowercase(),
            m.get("workflow_concurrency").and_then(Value::as_u64),
        ),
        Some(other) => {
            report.refuse("properties.run_strategy", format!("`{other}` is not a run strategy"));
            return;
        }
    };
    if !["sequential", "strict_sequential", "first_only", "last_only", "parallel"]
        .contains(&rule.as_str())
    {
        report.refuse("properties.run_strategy", format!("`{rule}` is not translated"));
        return;
    }
    out.insert("run_strategy".into(), json!(rule));
    if rule == "parallel" {
        // Maestro's parallel strategy runs 20 at once unless told otherwise.
        out.insert("max_concurrent_runs".into(), json!(concurrency.unwrap_or(20)));
    }
}

fn cron_trigger(t: &Value) -> Result<Value, String> {
    let cron =
        t.get("cron").and_then(Value::as_str).ok_or("only cron time triggers are translated")?;
    let mut out = json!({ "cron": cron, "misfire": "run_all" });
    if let Some(zone) = t.get("timezone").and_then(Value::as_str) {
        out["timezone"] = json!(zone);
    }
    if let Some(delay) = t.get("fuzzy_max_delay") {
        out["jitter"] = json!(duration(delay)?);
    }
    for key in t.as_object().into_iter().flat_map(|m| m.keys()) {
        if !["cron", "timezone", "fuzzy_max_delay", "type"].contains(&key.as_str()) {
            return Err(format!("`{key}` of a time trigger is not translated"));
        }
    }
    Ok(out)
}

fn signal_trigger(t: &Value, report: &mut Report) -> Result<Value, String> {
    let definitions = t.get("definitions").and_then(Value::as_object).ok_or("no `definitions`")?;
    if let Some(dedup) = t.get("dedup_expr").and_then(Value::as_str) {
        // A random key dedups nothing: every firing stands, as in Baton.
        if dedup.replace(' ', "").trim_end_matches(';') != "returnUUID.randomUUID().toString()" {
            return Err(format!("`dedup_expr` `{dedup}` is not translated"));
        }
        report
            .notes
            .push("signal trigger: dedup_expr with a random UUID dedups nothing; not kept".into());
    }
    let mut out = match definitions.len() {
        0 => return Err("no signal in `definitions`".into()),
        1 => {
            let (name, definition) = definitions.iter().next().ok_or("no signal")?;
            let mut conditions = match_params(definition.get("match_params"), "signal.")?;
            if let Some(condition) = t.get("condition").and_then(Value::as_str) {
                conditions.push(format!("({})", sel::translate(condition, &Scope::default())?));
            }
            let mut out = json!({ "signal": name });
            if !conditions.is_empty() {
                out["match"] = json!(format!("${{{}}}", conditions.join(" && ")));
            }
            out
        }
        _ => joined_signals(t, definitions, report)?,
    };
    if let Some(Value::Object(params)) = t.get("params") {
        let mut values = Map::new();
        for (k, d) in params {
            values.insert(k.clone(), literal(d, k)?);
        }
        out["params"] = Value::Object(values);
    }
    Ok(out)
}

/// A trigger of several signals: Baton's `signals`, each with its `match` and its
/// `join` params (Maestro's `join_keys`).
fn joined_signals(
    t: &Value,
    definitions: &Map<String, Value>,
    report: &mut Report,
) -> Result<Value, String> {
    if let Some(condition) = t.get("condition").and_then(Value::as_str) {
        // A condition over no signal is decided here; over the joined signals, it has no
        // Baton counterpart (each signal has its own `match`).
        match constant(condition) {
            Some(Value::Bool(true)) => report
                .notes
                .push(format!("signal trigger: condition `{condition}` always holds; not kept")),
            _ => {
                return Err(format!(
                    "the condition `{condition}` of a trigger joining signals is not translated"
                ))
            }
        }
    }
    let mut signals = Vec::new();
    for (name, definition) in definitions {
        let mut signal = json!({ "name": name });
        let conditions = match_params(definition.get("match_params"), "signal.")?;
        if !conditions.is_empty() {
            signal["match"] = json!(format!("${{{}}}", conditions.join(" && ")));
        }
        if let Some(keys) = definition.get("join_keys") {
            signal["join"] = keys.clone();
        }
        for key in definition.as_object().into_iter().flat_map(|m| m.keys()) {
            if !["match_params", "join_keys"].contains(&key.as_str()) {
                return Err(format!("`{key}` of signal `{name}` is not translated"));
            }
        }
        signals.push(signal);
    }
    Ok(json!({ "signals": signals }))
}

/// `match_params` (`{foo: {value: 'bat', operator: '='}}`) as conditions on `prefix` names.
fn match_params(params: Option<&Value>, prefix: &str) -> Result<Vec<String>, String> {
    let mut conditions = Vec::new();
    for (key, m) in params.and_then(Value::as_object).into_iter().flatten() {
        let value = m.get("value").ok_or_else(|| {
            format!(
                "match param `{key}`: only literal values are translated, not {}",
                m.get("param").map_or("this".into(), |p| p.to_string())
            )
        })?;
        let op = match m.get("operator").and_then(Value::as_str).unwrap_or("=") {
            "=" | "==" => "==",
            op @ ("<" | "<=" | ">" | ">=" | "!=") => op,
            op => return Err(format!("match param `{key}`: operator `{op}` is not translated")),
        };
        conditions.push(format!("{prefix}{key} {op} {}", expression_literal(value)?));
    }
    Ok(conditions)
}

/// A JSON value written as a Baton expression literal.
fn expression_literal(value: &Value) -> Result<String, String> {
    Ok(match value {
        Value::String(s) => sel::quote(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(expression_literal).collect::<Result<Vec<_>, _>>()?.join(", ")
        ),
        Value::Object(_) => return Err("a map literal is not translated here".into()),
        other => other.to_string(),
    })
}

/// Maestro's durations: seconds as a number, or text such as `100s`, `10 minutes`, `1 day`.
fn duration(value: &Value) -> Result<String, String> {
    if let Some(n) = value.as_u64() {
        return Ok(format!("{n}s"));
    }
    let text = value.as_str().ok_or_else(|| format!("`{value}` is not a duration"))?.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (n, unit) = (&text[..split], text[split..].trim().to_ascii_lowercase());
    let unit = match unit.as_str() {
        "ms" => "ms",
        u => match u.trim_end_matches('s') {
            "" | "sec" | "second" => "s",
            "m" | "min" | "minute" => "m",
            "h" | "hr" | "hour" => "h",
            "d" | "day" => "d",
            _ => "",
        },
    };
    let unit = match unit {
        "" => {
            return Err(format!(
                "`{text}` is not a duration Baton reads (use seconds, minutes, hours or days)"
            ))
        }
        u => u,
    };
    if n.is_empty() {
        return Err(format!("`{text}` is not a duration"));
    }
    Ok(format!("{n}{unit}"))
}

/// The steps of one DAG (the workflow's, or a loop's body), in order.
fn step_list(items: &[Value], scope: &Scope, context: &Context, report: &mut Report) -> Vec<Value> {
    // (kind, definition) of each item; its id.
    let mut steps: Vec<(String, &Map<String, Value>)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item.as_object().filter(|m| m.len() == 1).and_then(|m| m.iter().next()) {
            Some((kind, Value::Object(def))) => steps.push((kind.clone(), def)),
            _ => report.refuse(
                format!("steps.{i}"),
                "expected one of `step`, `foreach`, `while`, `subworkflow`",
            ),
        }
    }
    let id_of = |def: &Map<String, Value>| {
        def.get("id").and_then(Value::as_str).unwrap_or_default().to_owned()
    };
    let ids: HashSet<String> = steps.iter().map(|(_, d)| id_of(d)).collect();
    let params_of: HashMap<String, HashSet<String>> = steps
        .iter()
        .map(|(_, d)| {
            let params = d.get("params").and_then(Value::as_object);
            (id_of(d), params.map(|p| p.keys().cloned().collect()).unwrap_or_default())
        })
        .collect();
    // Incoming edges of each step: (source, condition), in the order of the sources.
    let mut incoming: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (_, def) in &steps {
        let source = id_of(def);
        let successors =
            def.get("transition").and_then(|t| t.get("successors")).and_then(Value::as_object);
        for (target, condition) in successors.into_iter().flatten() {
            if !ids.contains(target) {
                report.refuse(
                    format!("step `{source}`: transition"),
                    format!("unknown successor `{target}`"),
                );
                continue;
            }
            let condition =
                condition.as_str().map(str::to_owned).unwrap_or_else(|| condition.to_string());
            incoming.entry(target.clone()).or_default().push((source.clone(), condition));
        }
    }
    let conditional = |c: &str| c.trim().trim_end_matches(';').trim() != "true";
    // A step may be skipped when an edge into it has a condition or a step before it may be.
    let mut skippable: HashMap<String, bool> = HashMap::new();
    fn may_skip(
        id: &str,
        incoming: &HashMap<String, Vec<(String, String)>>,
        memo: &mut HashMap<String, bool>,
        conditional: &dyn Fn(&str) -> bool,
    ) -> bool {
        if let Some(&known) = memo.get(id) {
            return known;
        }
        memo.insert(id.to_owned(), false); // a cycle, refused by validation, ends here
        let edges = incoming.get(id).map(Vec::as_slice).unwrap_or_default();
        let answer = edges.iter().any(|(source, condition)| {
            conditional(condition) || may_skip(source, incoming, memo, conditional)
        });
        memo.insert(id.to_owned(), answer);
        answer
    }
    let scope = Scope { steps: ids.clone(), ..scope.clone() };
    let mut out = Vec::new();
    for (kind, def) in &steps {
        let id = id_of(def);
        let at = format!("step `{id}`");
        let mut step = Map::new();
        step.insert("id".into(), json!(id));
        let edges = incoming.get(&id).cloned().unwrap_or_default();
        if !edges.is_empty() {
            step.insert(
                "depends_on".into(),
                json!(edges.iter().map(|(s, _)| s).collect::<Vec<_>>()),
            );
        }
        // An edge's condition as a `when`: over the source step's params and the run's.
        let edge_when = |source: &String, condition: &str| -> Result<String, String> {
            let params = params_of.get(source).cloned().unwrap_or_default();
            let edge_scope = Scope { source: Some((source.clone(), params)), ..scope.clone() };
            sel::translate(condition, &edge_scope)
                .map(|e| format!("${{{e}}}"))
                .map_err(|e| format!("`{condition}`: {e}"))
        };
        match edges.as_slice() {
            [(source, condition)] if conditional(condition) => match edge_when(source, condition) {
                Ok(when) => {
                    step.insert("when".into(), json!(when));
                }
                Err(e) => report.refuse(format!("{at}: the edge from `{source}`"), e),
            },
            [_, _, ..] => {
                let uncertain = edges.iter().any(|(s, c)| {
                    conditional(c) || may_skip(s, &incoming, &mut skippable, &conditional)
                });
                if uncertain {
                    // Maestro runs a join when any edge into it is taken. A conditional edge
                    // becomes a noop step that runs when the edge is taken; the join waits
                    // for all, and runs if one ran and none failed.
                    let mut depends_on = Vec::new();
                    for (source, condition) in &edges {
                        if !conditional(condition) {
                            depends_on.push(json!(source));
                            continue;
                        }
                        let mut edge_id = format!("{source}.to.{id}");
                        while ids.contains(&edge_id) {
                            edge_id.push('_');
                        }
                        match edge_when(source, condition) {
                            Ok(when) => out.push(json!({
                                "id": edge_id,
                                "type": "noop",
                                "description": format!("Maestro's edge from `{source}` to `{id}`, taken when `{condition}`"),
                                "depends_on": [source],
                                "when": when,
                            })),
                            Err(e) => report.refuse(format!("{at}: the edge from `{source}`"), e),
                        }
                        depends_on.push(json!(edge_id));
                    }
                    step.insert("depends_on".into(), Value::Array(depends_on));
                    step.insert("trigger".into(), json!("none_failed_min_one_success"));
                    report.notes.push(format!(
                        "{at}: joins edges that may not be taken: it runs when one is (trigger none_failed_min_one_success), each conditional edge a noop step `<from>.to.{id}`"
                    ));
                }
            }
            _ => {}
        }
        step_body(kind, def, &mut step, &scope, context, report);
        if let Some(deps) = def.get("signal_dependencies") {
            for wait in signal_waits(&mut step, deps, &ids, &scope).unwrap_or_else(|e| {
                report.refuse(format!("{at}: signal_dependencies"), e);
                Vec::new()
            }) {
                out.push(wait);
            }
        }
        out.push(Value::Object(step));
    }
    out
}

/// Maestro's `signal_dependencies` of a step: a `wait_signal` step `<id>.signal.<n>` for
/// each, which starts when the step would (the same upstream steps, `when` and `trigger`);
/// the step waits for them. Their outputs are the signals' params.
fn signal_waits(
    step: &mut Map<String, Value>,
    deps: &Value,
    ids: &HashSet<String>,
    scope: &Scope,
) -> Result<Vec<Value>, String> {
    let deps = deps.as_array().ok_or("expected a list")?;
    let id = step["id"].as_str().unwrap_or_default().to_owned();
    let mut waits = Vec::new();
    let mut names = Vec::new();
    for (n, dep) in deps.iter().enumerate() {
        let name = dep.get("name").and_then(Value::as_str).ok_or(format!("{n}: no `name`"))?;
        let mut wait =
            json!({ "id": format!("{id}.signal.{n}"), "type": "wait_signal", "signal": name });
        while ids.contains(wait["id"].as_str().unwrap_or_default()) {
            wait["id"] = json!(format!("{}_", wait["id"].as_str().unwrap_or_default()));
        }
        let mut conditions = Vec::new();
        for (key, m) in dep.get("match_params").and_then(Value::as_object).into_iter().flatten() {
            let op = match m.get("operator").and_then(Value::as_str).unwrap_or("=") {
                "=" | "==" => "==",
                op @ ("<" | "<=" | ">" | ">=" | "!=") => op,
                op => {
                    return Err(format!(
                        "{n}: match param `{key}`: operator `{op}` is not translated"
                    ))
                }
            };
            let operand = match (m.get("value"), m.get("param")) {
                (Some(v), _) => expression_literal(v)?,
                (None, Some(p)) => {
                    match (p.get("expression").and_then(Value::as_str), p.get("value")) {
                        (Some(e), _) => format!(
                            "({})",
                            sel::translate(e, scope).map_err(|r| format!(
                                "{n}: match param `{key}`: `{}`: {r}",
                                e.trim()
                            ))?
                        ),
                        (None, Some(Value::String(v))) if v.contains("${") => {
                            return Err(format!(
                                "{n}: match param `{key}`: `{v}` is not translated"
                            ))
                        }
                        (None, Some(v)) => expression_literal(v)?,
                        (None, None) => {
                            return Err(format!("{n}: match param `{key}` has no value"))
                        }
                    }
                }
                (None, None) => return Err(format!("{n}: match param `{key}` has no value")),
            };
            conditions.push(format!("signal.{key} {op} {operand}"));
        }
        if !conditions.is_empty() {
            wait["match"] = json!(format!("${{{}}}", conditions.join(" && ")));
        }
        for field in ["depends_on", "when", "trigger", "timeout"] {
            if let Some(v) = step.get(field) {
                wait[field] = v.clone();
            }
        }
        names.push(wait["id"].clone());
        waits.push(wait);
    }
    let mut depends_on =
        step.get("depends_on").and_then(Value::as_array).cloned().unwrap_or_default();
    depends_on.extend(names);
    step.insert("depends_on".into(), Value::Array(depends_on));
    Ok(waits)
}

const STEP_FIELDS: [&str; 15] = [
    "id",
    "name",
    "description",
    "type",
    "transition",
    "params",
    "retry_policy",
    "timeout",
    "failure_mode",
    "tags",
    "signal_outputs",
    "signal_dependencies",
    "steps",
    "sync",
    "explicit_params",
];

fn step_body(
    kind: &str,
    def: &Map<String, Value>,
    step: &mut Map<String, Value>,
    scope: &Scope,
    context: &Context,
    report: &mut Report,
) {
    let id = step["id"].as_str().unwrap_or_default().to_owned();
    let at = format!("step `{id}`");
    if let Some(Value::String(d)) = def.get("description").or(def.get("name")) {
        step.insert("description".into(), json!(d));
    }
    let mut params = def.get("params").and_then(Value::as_object).cloned().unwrap_or_default();
    let mut leaf = true;
    match kind {
        "step" => {
            let maestro_type = def.get("type").and_then(Value::as_str).unwrap_or_default();
            match maestro_type.to_ascii_lowercase().as_str() {
                "noop" => {
                    step.insert("type".into(), json!("noop"));
                    leaf = false;
                }
                "sleep" => {
                    step.insert("type".into(), json!("sleep"));
                    let seconds = params.get("sleep_seconds").and_then(|p| match p.get("value") {
                        Some(v) => v.as_u64(),
                        None => constant(p.get("expression")?.as_str()?)?.as_u64(),
                    });
                    match seconds {
                        Some(n) => {
                            step.insert("duration".into(), json!(format!("{n}s")));
                        }
                        None => report.refuse(
                            format!("{at}: params.sleep_seconds"),
                            "a Sleep step needs a constant `sleep_seconds` (Baton's `duration` is fixed at validation)",
                        ),
                    }
                }
                "" => report.refuse(at.clone(), "no `type`"),
                _ => {
                    // A type Baton has no built-in for: a host step type of the same name.
                    step.insert("type".into(), json!(maestro_type));
                    report.host_types.insert(maestro_type.to_owned());
                }
            }
        }
        "foreach" => {
            leaf = false;
            step.insert("type".into(), json!("foreach"));
            let loop_params = params.remove("loop_params");
            let vars = loop_params.as_ref().and_then(|l| l.get("value")).and_then(Value::as_object);
            let own = OwnParams { scope, params: &params };
            let mut body_scope = scope.clone();
            match vars.map(|v| v.iter().collect::<Vec<_>>()).as_deref() {
                Some([(var, def)]) => {
                    let over = loop_param(def, &own).and_then(|v| match v {
                        Value::String(e) if e.starts_with("${") => Ok(e),
                        list => expression_literal(&list).map(|e| format!("${{{e}}}")),
                    });
                    match over {
                        Ok(over) => {
                            step.insert("over".into(), json!(over));
                            step.insert("as".into(), json!(var));
                        }
                        Err(e) => report.refuse(format!("{at}: loop_params.{var}"), e),
                    }
                    body_scope.loop_vars.insert((*var).clone());
                }
                Some(several) if several.len() > 1 => {
                    // Several loop params: their cartesian product, each a name in the body.
                    let mut lists = Map::new();
                    for (var, def) in several {
                        match loop_param(def, &own) {
                            Ok(list) => {
                                lists.insert((*var).clone(), list);
                            }
                            Err(e) => report.refuse(format!("{at}: loop_params.{var}"), e),
                        }
                        body_scope.loop_vars.insert((*var).clone());
                    }
                    step.insert("over".into(), Value::Object(lists));
                }
                _ => report
                    .refuse(format!("{at}: params.loop_params"), "a foreach needs one loop param"),
            }
            if let Some(n) = def.get("concurrency").and_then(Value::as_u64) {
                step.insert("max_parallel".into(), json!(n));
            }
            body(def, step, &body_scope, context, report);
        }
        "while" => {
            leaf = false;
            step.insert("type".into(), json!("while"));
            // Loop params are carried: a body step's param of the same name updates them.
            let mut body_scope = scope.clone();
            if let Some(vars) = params
                .remove("loop_params")
                .as_ref()
                .and_then(|l| l.get("value"))
                .and_then(Value::as_object)
            {
                let mut carry = Map::new();
                let own = OwnParams { scope, params: &params };
                for (var, d) in vars {
                    match loop_param(d, &own) {
                        Ok(v) => {
                            carry.insert(var.clone(), v);
                        }
                        Err(e) => report.refuse(format!("{at}: loop_params.{var}"), e),
                    }
                    body_scope.loop_vars.insert(var.clone());
                }
                step.insert("carry".into(), Value::Object(carry));
            }
            match def
                .get("condition")
                .and_then(Value::as_str)
                .map(|c| sel::translate(c, &body_scope))
            {
                Some(Ok(e)) => {
                    step.insert("condition".into(), json!(format!("${{{e}}}")));
                }
                Some(Err(e)) => report.refuse(format!("{at}: condition"), e),
                None => report.refuse(at.clone(), "a while needs a `condition`"),
            }
            body(def, step, &body_scope, context, report);
        }
        "subworkflow" => {
            leaf = false;
            step.insert("type".into(), json!("subworkflow"));
            match params
                .remove("subworkflow_id")
                .as_ref()
                .and_then(|p| p.get("value"))
                .and_then(Value::as_str)
            {
                Some(child) => {
                    step.insert("workflow".into(), json!(child));
                }
                None => report.refuse(
                    format!("{at}: params.subworkflow_id"),
                    "a literal `subworkflow_id` is needed",
                ),
            }
            match params.remove("subworkflow_version").as_ref().and_then(|p| p.get("value")) {
                None => {}
                Some(Value::String(v)) if matches!(v.as_str(), "active" | "default") => {}
                Some(Value::String(v)) if v == "latest" => report.notes.push(format!(
                    "{at}: subworkflow_version `latest` runs the active version: in Baton the latest registered version is the active one unless `baton activate` rolled back"
                )),
                Some(v) => match v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())) {
                    Some(n) => {
                        step.insert("version".into(), json!(n));
                    }
                    None => report.refuse(format!("{at}: params.subworkflow_version"), format!("`{v}` is not a version")),
                },
            }
            if def.get("sync").and_then(Value::as_bool) == Some(false) {
                step.insert("wait".into(), json!(false));
            }
            if params.keys().any(|k| k != "subworkflow_id" && k != "subworkflow_version") {
                report.notes.push(format!(
                    "{at}: the params it gives must be declared by workflow `{}` (Maestro adds undeclared ones; Baton refuses them at the start)",
                    step.get("workflow").and_then(Value::as_str).unwrap_or_default()
                ));
            }
            // Maestro passes the parent's params down unless the step says `explicit_params`.
            if def.get("explicit_params").and_then(Value::as_bool) != Some(true) {
                step.insert("inherit_params".into(), json!(true));
            }
        }
        other => report.refuse(at.clone(), format!("`{other}` steps are not translated")),
    }
    if !params.is_empty() {
        let mut values = Map::new();
        for (name, p) in &params {
            match step_param(p, scope, &params) {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(e) => report.refuse(format!("{at}: params.{name}"), e),
            }
        }
        step.insert("params".into(), Value::Object(values));
    }
    if let Some(mode) = def.get("failure_mode").and_then(Value::as_str) {
        let mode = mode.to_ascii_lowercase();
        if ["fail_after_running", "fail_immediately", "ignore_failure"].contains(&mode.as_str()) {
            step.insert("failure_mode".into(), json!(mode));
        } else {
            report.refuse(format!("{at}: failure_mode"), format!("`{mode}` is not translated"));
        }
    }
    match def.get("timeout").map(duration) {
        Some(Ok(t)) => {
            step.insert("timeout".into(), json!(t));
        }
        Some(Err(e)) => report.refuse(format!("{at}: timeout"), e),
        None if leaf => {
            step.insert("timeout".into(), json!(DEFAULT_TIMEOUT));
        }
        None => {}
    }
    if leaf {
        match retry(def.get("retry_policy")) {
            Ok(r) => {
                step.insert("retry".into(), r);
            }
            Err(e) => report.refuse(format!("{at}: retry_policy"), e),
        }
        if let Some(tag) = context.tag {
            step.insert("tags".into(), json!([tag]));
        }
    } else if def.get("retry_policy").is_some() && kind == "step" {
        report.notes.push(format!(
            "{at}: retry_policy of a NoOp step: a noop cannot fail, nothing to retry"
        ));
    }
    if def.get("tags").is_some() {
        report.notes.push(format!("{at}: tags: not kept (labels; Baton's tags are for limits)"));
    }
    if let Some(Value::Array(outputs)) = def.get("signal_outputs") {
        let mut signals = Vec::new();
        for (i, s) in outputs.iter().enumerate() {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let mut values = Map::new();
            for (k, p) in s.get("params").and_then(Value::as_object).into_iter().flatten() {
                match step_param(p, scope, &Map::new()) {
                    Ok(v) => {
                        values.insert(k.clone(), v);
                    }
                    Err(e) => report.refuse(format!("{at}: signal_outputs.{i}.params.{k}"), e),
                }
            }
            signals.push(json!({ "name": name, "params": values }));
        }
        step.insert("emit_signals".into(), Value::Array(signals));
    }
    for key in def.keys() {
        let used = STEP_FIELDS.contains(&key.as_str())
            || (kind == "foreach" && key == "concurrency")
            || (kind == "while" && key == "condition");
        if !used {
            report.refuse(format!("{at}: {key}"), "not translated");
        }
    }
}

fn body(
    def: &Map<String, Value>,
    step: &mut Map<String, Value>,
    scope: &Scope,
    context: &Context,
    report: &mut Report,
) {
    match def.get("steps") {
        Some(Value::Array(items)) => {
            step.insert("steps".into(), Value::Array(step_list(items, scope, context, report)));
        }
        _ => report.refuse(
            format!("step `{}`", step["id"].as_str().unwrap_or_default()),
            "a loop needs `steps`",
        ),
    }
}

/// A step param's value: a literal, a translated expression, or a MAP of such.
fn step_param(def: &Value, scope: &Scope, siblings: &Map<String, Value>) -> Result<Value, String> {
    check_param_fields(def)?;
    if let Some(e) = def.get("expression").and_then(Value::as_str) {
        let names = Siblings { scope, siblings };
        return sel::translate(e, &names).map(|e| json!(format!("${{{e}}}")));
    }
    let value = def.get("value").ok_or("a param with neither `value` nor `expression`")?;
    let is_map =
        def.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("MAP"));
    match value {
        Value::Object(m) if is_map => {
            let mut out = Map::new();
            for (k, d) in m {
                out.insert(k.clone(), step_param(d, scope, m).map_err(|e| format!("{k}: {e}"))?);
            }
            Ok(Value::Object(out))
        }
        other => interpolated(other, scope),
    }
}

/// A loop param's value: its SEL expression translated (`${...}`), else its literal.
fn loop_param(def: &Value, names: &dyn Names) -> Result<Value, String> {
    match def.get("expression").and_then(Value::as_str) {
        Some(e) => sel::translate(e, names).map(|e| json!(format!("${{{e}}}"))),
        None => def.get("value").cloned().ok_or_else(|| "no value".to_owned()),
    }
}

/// The names a loop's params see: Maestro evaluates them after the loop step's other
/// params, which Baton's loop fields cannot read; their values are written in instead.
struct OwnParams<'a> {
    scope: &'a Scope,
    params: &'a Map<String, Value>,
}

impl Names for OwnParams<'_> {
    fn of_signal(&self, signal: &str, param: &str) -> Result<String, String> {
        self.scope.of_signal(signal, param)
    }

    fn param(&self, name: &str) -> Result<String, String> {
        let Some(def) = self.params.get(name) else { return self.scope.param(name) };
        // A param read by a loop param is read once, where the loop starts, as in Maestro.
        let value = match def.get("expression").and_then(Value::as_str) {
            Some(e) => sel::translate(e, self.scope)?,
            None => expression_literal(def.get("value").ok_or("no value")?)?,
        };
        Ok(format!("({value})"))
    }
}

/// A step's other params are not in scope of its params in Baton: refused by name.
struct Siblings<'a> {
    scope: &'a Scope,
    siblings: &'a Map<String, Value>,
}

impl Names for Siblings<'_> {
    fn of_signal(&self, signal: &str, param: &str) -> Result<String, String> {
        self.scope.of_signal(signal, param)
    }

    fn param(&self, name: &str) -> Result<String, String> {
        match self.scope.param(name) {
            Err(_) if self.siblings.contains_key(name) => Err(format!(
                "`{name}` is another param of the same step; a step's params cannot read each other in Baton"
            )),
            other => other,
        }
    }
}

/// A literal value, with Maestro's `${name}` in its strings made Baton's `${...}`; a `${`
/// that is not an interpolation stays literal text (`$${`).
fn interpolated(value: &Value, scope: &Scope) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) if s.contains("${") => {
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end =
                    rest[start..].find('}').ok_or_else(|| format!("`{s}`: `${{` is not closed"))?;
                let name = rest[start + 2..start + end].trim();
                let name = name
                    .split_once('@')
                    .map(|(p, step)| format!("{step}__{p}"))
                    .unwrap_or(name.to_owned());
                out.push_str(&format!(
                    "${{{}}}",
                    scope.param(&name).map_err(|e| format!("`{s}`: {e}"))?
                ));
                rest = &rest[start + end + 1..];
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| interpolated(v, scope)).collect::<Result<_, _>>()?)
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), interpolated(v, scope)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Maestro's retry policy as Baton's: error retries are attempts after the first;
/// timeouts are retried only when the policy gives them retries.
fn retry(policy: Option<&Value>) -> Result<Value, String> {
    let empty = Map::new();
    let policy = policy.and_then(Value::as_object).unwrap_or(&empty);
    for key in policy.keys() {
        if !["error_retry_limit", "platform_retry_limit", "timeout_retry_limit", "backoff"]
            .contains(&key.as_str())
        {
            return Err(format!("`{key}` is not translated"));
        }
    }
    let retries =
        policy.get("error_retry_limit").and_then(Value::as_u64).unwrap_or(DEFAULT_ERROR_RETRIES);
    let timeout_retries = policy.get("timeout_retry_limit").and_then(Value::as_u64).unwrap_or(0);
    let backoff = policy.get("backoff").and_then(Value::as_object);
    let kind = backoff
        .and_then(|b| b.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("EXPONENTIAL_BACKOFF");
    let secs = |key: &str, default: u64| {
        backoff.and_then(|b| b.get(key)).and_then(Value::as_u64).unwrap_or(default)
    };
    if timeout_retries > 0 && timeout_retries != retries {
        return Err(format!(
            "{retries} retries of an error and {timeout_retries} of a timeout: Baton has one `max_attempts` for both"
        ));
    }
    let mut out = json!({ "max_attempts": retries + 1 });
    match kind.to_ascii_uppercase().as_str() {
        "FIXED_BACKOFF" => {
            out["backoff"] = json!("fixed");
            out["delay"] =
                json!(format!("{}s", secs("error_retry_backoff_in_secs", DEFAULT_BACKOFF_SECS)));
        }
        "EXPONENTIAL_BACKOFF" => {
            if backoff
                .and_then(|b| b.get("error_retry_exponent"))
                .and_then(Value::as_u64)
                .is_some_and(|e| e != 2)
            {
                return Err(
                    "an exponent other than 2 is not translated (Baton's backoff doubles)".into()
                );
            }
            out["backoff"] = json!("exponential");
            out["delay"] =
                json!(format!("{}s", secs("error_retry_backoff_in_secs", DEFAULT_BACKOFF_SECS)));
            out["max_delay"] = json!(format!(
                "{}s",
                secs("error_retry_limit_in_secs", DEFAULT_BACKOFF_LIMIT_SECS)
            ));
        }
        other => return Err(format!("backoff `{other}` is not translated")),
    }
    if timeout_retries > 0 {
        out["on_timeout"] = json!(true);
    }
    Ok(out)
}

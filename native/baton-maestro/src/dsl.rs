//! Maestro's YAML DSL, read into the create request's form. In the DSL a workflow's and a
//! job's keys that are not fields are params (`param0: 15`; `'!name': expr` for an
//! expression), and a transition is a list of `target`, `IF cond THEN target` and
//! `OTHERWISE target`.

use crate::read::Definition;
use serde_json::{json, Map, Value};

const WORKFLOW_FIELDS: [&str; 6] = ["id", "name", "description", "timeout", "tags", "jobs"];
const PROPERTIES: [&str; 3] = ["owner", "run_strategy", "step_concurrency"];
const JOB_FIELDS: [&str; 9] =
    ["id", "name", "description", "type", "transition", "failure_mode", "timeout", "tags", "jobs"];

pub(crate) fn definition(dsl: Value) -> Result<Definition, String> {
    let Value::Object(dsl) = dsl else { return Err("`Workflow` is not a map".into()) };
    let (mut workflow, mut properties, mut params) = (Map::new(), Map::new(), Map::new());
    for (key, value) in dsl {
        if key == "jobs" {
            workflow.insert("steps".into(), jobs(value)?);
        } else if WORKFLOW_FIELDS.contains(&key.as_str()) {
            workflow.insert(key, value);
        } else if PROPERTIES.contains(&key.as_str()) {
            properties.insert(key, value);
        } else {
            param(&mut params, key, value);
        }
    }
    if !params.is_empty() {
        workflow.insert("params".into(), Value::Object(params));
    }
    Ok(Definition { properties, workflow, is_active: None })
}

fn param(params: &mut Map<String, Value>, key: String, value: Value) {
    match key.strip_prefix('!') {
        Some(name) => params.insert(name.to_owned(), json!({ "expression": value })),
        None => params.insert(key, json!({ "value": value })),
    };
}

fn jobs(list: Value) -> Result<Value, String> {
    let Value::Array(list) = list else { return Err("`jobs` is not a list".into()) };
    let mut steps = Vec::new();
    for (i, item) in list.into_iter().enumerate() {
        let Value::Object(item) = item else { return Err(format!("jobs.{i} is not a map")) };
        let mut entries = item.into_iter();
        let (Some((kind, Value::Object(job))), None) = (entries.next(), entries.next()) else {
            return Err(format!(
                "jobs.{i}: expected one of `job`, `foreach`, `while`, `subworkflow`"
            ));
        };
        let kind = if kind == "job" { "step".to_owned() } else { kind };
        let mut step = Map::new();
        let mut params = Map::new();
        for (key, value) in job {
            match key.as_str() {
                "transition" => {
                    step.insert("transition".into(), json!({ "successors": transition(&value)? }));
                }
                "jobs" => {
                    step.insert("steps".into(), jobs(value)?);
                }
                _ if JOB_FIELDS.contains(&key.as_str()) => {
                    step.insert(key, value);
                }
                _ => param(&mut params, key, value),
            }
        }
        if !params.is_empty() {
            step.insert("params".into(), Value::Object(params));
        }
        steps.push(json!({ kind: step }));
    }
    Ok(Value::Array(steps))
}

/// `[job.2, "IF c THEN job.4", "OTHERWISE job.6"]` as successors with their conditions.
fn transition(value: &Value) -> Result<Map<String, Value>, String> {
    let Value::Array(lines) = value else { return Err("a transition is a list".into()) };
    let mut successors = Map::new();
    let mut conditions: Vec<String> = Vec::new();
    for line in lines {
        let line = line.as_str().ok_or("a transition's entries are text")?.trim();
        let upper = line.to_ascii_uppercase();
        let (target, condition) = if upper.starts_with("IF ") {
            let then = upper.find(" THEN ").ok_or_else(|| format!("`{line}`: IF without THEN"))?;
            let condition = line[3..then].trim().to_owned();
            conditions.push(condition.clone());
            (line[then + 6..].trim(), condition)
        } else if upper.starts_with("OTHERWISE ") {
            let none = conditions.iter().map(|c| format!("!({c})")).collect::<Vec<_>>();
            (line[10..].trim(), if none.is_empty() { "true".into() } else { none.join(" && ") })
        } else {
            (line, "true".to_owned())
        };
        let condition = match successors.remove(target) {
            Some(Value::String(before)) => format!("({before}) || ({condition})"),
            _ => condition,
        };
        successors.insert(target.to_owned(), Value::String(condition));
    }
    Ok(successors)
}

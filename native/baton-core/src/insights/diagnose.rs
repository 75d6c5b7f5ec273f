//! `baton diagnose RUN`: why a run failed, in words a non-expert can act on. The root cause
//! is the first failure in causal order (followed into child runs and loop iterations); what
//! it took down with it is counted, not listed as more problems; its error signature is
//! looked up in every step's history; the history says what mended it before; and the run
//! is compared with the last one of the step that succeeded.

use crate::dag::Workflow;
use crate::engine::history::{self, StepHistory};
use crate::engine::{records, Engine, EngineError, RunDetails, RunRecord, StepStatus};
use serde::{Deserialize, Serialize};

/// How deep a diagnosis follows failures into child runs and iterations.
const MAX_DEPTH: usize = 16;

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The run diagnosed.
    pub run_id: String,
    /// Its workflow.
    pub workflow_id: String,
    /// In plain words: what failed, what it took down, what helped before.
    pub summary: String,
    /// The first failure in causal order; none for a run that did not fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<RootCause>,
    /// Steps of the run that did not run, or were stopped, because of it.
    pub skipped: usize,
    /// Other steps of the run that failed after it (not caused by it, or not known to be).
    pub other_failures: Vec<String>,
    /// Where the same error signature was seen before.
    pub similar: Vec<Similar>,
    /// What mended this failure before, read from the step's history.
    pub resolved_before: Vec<String>,
    /// What differs from the last run in which the step succeeded.
    pub changed: Vec<String>,
}

/// The step that failed first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// The run it failed in (a child run or an iteration, for a failure inside one).
    pub run_id: String,
    /// Its workflow (`wf.loop` for a loop's body).
    pub workflow_id: String,
    /// The step.
    pub step: String,
    /// How the failure reads across runs: digits masked.
    pub signature: String,
    /// The error as it was.
    pub error: String,
    /// The attempts made.
    pub attempts: u32,
    /// The end of its output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
    /// From the run diagnosed down to it: `step`, `step[iteration 3]`, ...
    pub path: Vec<String>,
}

/// A step whose history holds the same error signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Similar {
    /// Its workflow.
    pub workflow_id: String,
    /// The step.
    pub step: String,
    /// Ends that failed with the signature.
    pub times: u64,
    /// When it last failed so (among its last outcomes), in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ms: Option<u64>,
}

/// Why run `run_id` failed, what it took down, what helped before, what changed.
pub fn diagnose(engine: &Engine, run_id: &str) -> Result<Diagnosis, EngineError> {
    let details = engine.details(run_id)?;
    let wf = super::run_workflow(engine, &details.run)?;
    let mut diagnosis = Diagnosis {
        run_id: run_id.to_owned(),
        workflow_id: details.run.workflow_id.clone(),
        summary: String::new(),
        root_cause: None,
        skipped: 0,
        other_failures: Vec::new(),
        similar: Vec::new(),
        resolved_before: Vec::new(),
        changed: Vec::new(),
    };
    let Some(first) = first_failure(&wf, &details) else {
        diagnosis.summary = match details.run.status.is_terminal() {
            true => format!("run {run_id} {}: no step failed", details.run.status),
            false => format!("run {run_id} is {}: no step has failed", details.run.status),
        };
        if let Some(error) = &details.run.error {
            diagnosis.summary.push_str(&format!(" ({error})"));
        }
        return Ok(diagnosis);
    };
    // What the first failure took down: the steps below it that never ran or were stopped.
    let below = below(&wf, first);
    diagnosis.skipped = below
        .iter()
        .filter(|&&i| {
            matches!(
                details.steps[i].record.status,
                StepStatus::Skipped | StepStatus::Stopped | StepStatus::Pending
            )
        })
        .count();
    diagnosis.other_failures = details
        .steps
        .iter()
        .enumerate()
        .filter(|(i, s)| *i != first && s.record.status == StepStatus::Failed)
        .map(|(_, s)| s.id.clone())
        .collect();
    let cause = root_cause(engine, &details, first, vec![details.steps[first].id.clone()], 0)?;
    let step_history = engine.step_history(&cause.workflow_id, &cause.step)?;
    diagnosis.similar = similar(engine, &cause)?;
    if let Some(h) = &step_history {
        diagnosis.resolved_before = resolved_before(engine, h, &cause)?;
        diagnosis.changed = changed(engine, h, &cause)?;
    }
    diagnosis.summary = summary(&diagnosis, &cause);
    diagnosis.root_cause = Some(cause);
    Ok(diagnosis)
}

/// The failed step none of whose upstream steps failed, that ended first.
fn first_failure(wf: &Workflow, details: &RunDetails) -> Option<usize> {
    let failed = |i: usize| {
        let r = &details.steps[i].record;
        r.status == StepStatus::Failed
    };
    (0..details.steps.len())
        .filter(|&i| failed(i) && !super::ancestors(wf, i).any(failed))
        .min_by_key(|&i| details.steps[i].record.ended_ms.unwrap_or(u64::MAX))
}

/// The steps below step `i`.
fn below(wf: &Workflow, i: usize) -> Vec<usize> {
    let mut seen = vec![false; wf.len()];
    let mut stack = vec![i];
    let mut out = Vec::new();
    while let Some(s) = stack.pop() {
        for d in wf.downstream(s) {
            if !seen[d] {
                seen[d] = true;
                out.push(d);
                stack.push(d);
            }
        }
    }
    out
}

/// Follows a failed subworkflow or loop step into the child run that failed.
fn root_cause(
    engine: &Engine,
    details: &RunDetails,
    i: usize,
    path: Vec<String>,
    depth: usize,
) -> Result<RootCause, EngineError> {
    let view = &details.steps[i];
    let child = match (&view.child_run, &view.rollup) {
        (Some(child), _) => Some((child.clone(), None)),
        (None, Some(rollup)) => {
            rollup.failures.first().map(|f| (f.run_id.clone(), Some(f.iteration)))
        }
        _ => None,
    };
    if let Some((child_id, iteration)) = child.filter(|_| depth < MAX_DEPTH) {
        if let Ok(child) = engine.details(&child_id) {
            let wf = super::run_workflow(engine, &child.run)?;
            if let Some(first) = first_failure(&wf, &child) {
                let mut path = path;
                if let Some(n) = iteration {
                    if let Some(last) = path.last_mut() {
                        last.push_str(&format!("[iteration {n}]"));
                    }
                }
                path.push(child.steps[first].id.clone());
                return root_cause(engine, &child, first, path, depth + 1);
            }
        }
    }
    let error = view.record.error.clone().unwrap_or_else(|| "failed".into());
    Ok(RootCause {
        run_id: details.run.id.clone(),
        workflow_id: details.run.workflow_id.clone(),
        step: view.id.clone(),
        signature: history::signature(&error),
        error,
        attempts: view.record.attempt,
        log_tail: view.record.log_tail.clone(),
        path,
    })
}

/// The steps whose history holds the root cause's signature, most often first.
fn similar(engine: &Engine, cause: &RootCause) -> Result<Vec<Similar>, EngineError> {
    let mut out = Vec::new();
    let shared = engine.shared();
    shared.history.scan(shared.store.as_ref(), |workflow, step, h| {
        if let Some(&times) = h.signatures.get(&cause.signature) {
            let last_ms = h
                .recent
                .iter()
                .rev()
                .find(|o| {
                    o.signature.as_deref() == Some(&cause.signature) && o.run_id != cause.run_id
                })
                .map(|o| o.ended_ms);
            // This very failure alone is nothing similar.
            let own = h.recent.iter().any(|o| o.run_id == cause.run_id)
                && workflow == cause.workflow_id
                && step == cause.step;
            let times = if own { times.saturating_sub(1) } else { times };
            if times > 0 {
                out.push(Similar {
                    workflow_id: workflow.into(),
                    step: step.into(),
                    times,
                    last_ms,
                });
            }
        }
    })?;
    out.sort_by_key(|s| std::cmp::Reverse(s.times));
    out.truncate(10);
    Ok(out)
}

/// What came after earlier failures of the step with the same signature, in its history:
/// the run that next succeeded, and how it differed.
fn resolved_before(
    engine: &Engine,
    h: &StepHistory,
    cause: &RootCause,
) -> Result<Vec<String>, EngineError> {
    let store = engine.shared().store.as_ref();
    let mut out = Vec::new();
    let recent: Vec<_> = h.recent.iter().collect();
    for (n, o) in recent.iter().enumerate() {
        if o.succeeded
            || o.run_id == cause.run_id
            || o.signature.as_deref() != Some(&cause.signature)
        {
            continue;
        }
        let Some(fix) = recent[n + 1..].iter().find(|x| x.succeeded) else { continue };
        let (Some(failed), Some(fixed)) =
            (records::get_run(store, &o.run_id)?, records::get_run(store, &fix.run_id)?)
        else {
            continue;
        };
        let how = if fixed.restarted_from.as_deref() == Some(failed.id.as_str()) {
            format!("run {} restarted it and succeeded", fixed.id)
        } else if fixed.definition != failed.definition {
            let version = fixed.version.map(|v| format!(" (version {v})")).unwrap_or_default();
            format!("run {} succeeded with a changed definition{version}", fixed.id)
        } else if let Some(params) = param_changes(&failed, &fixed) {
            format!("run {} succeeded with other params ({params})", fixed.id)
        } else if fix.attempts > 1 {
            format!("run {} succeeded after {} attempts (a retry)", fixed.id, fix.attempts)
        } else {
            format!("run {} succeeded with nothing changed (a transient failure?)", fixed.id)
        };
        if !out.contains(&how) {
            out.push(how);
        }
    }
    Ok(out)
}

/// What differs between the root cause's run and the last run in which the step succeeded.
fn changed(
    engine: &Engine,
    h: &StepHistory,
    cause: &RootCause,
) -> Result<Vec<String>, EngineError> {
    let store = engine.shared().store.as_ref();
    let Some(last) = h.recent.iter().rev().find(|o| o.succeeded && o.run_id != cause.run_id) else {
        return Ok(vec!["the step never succeeded before".into()]);
    };
    let (Some(now), Some(then)) =
        (records::get_run(store, &cause.run_id)?, records::get_run(store, &last.run_id)?)
    else {
        return Ok(Vec::new());
    };
    let mut out = vec![format!("last success: run {}", then.id)];
    if now.definition != then.definition {
        let version =
            |r: &RunRecord| r.version.map_or("a file".to_owned(), |v| format!("version {v}"));
        out.push(format!("the definition changed: {} then, {} now", version(&then), version(&now)));
    }
    if let Some(params) = param_changes(&then, &now) {
        out.push(format!("params changed: {params}"));
    }
    if cause.attempts > 1 {
        out.push(format!("it failed {} attempts in a row", cause.attempts));
    }
    if out.len() == 1 {
        out.push("same definition and params: the cause is likely outside the workflow (data, a service, the machine)".into());
    }
    Ok(out)
}

/// `name: old -> new` for each param that differs (secrets are masked in both).
fn param_changes(a: &RunRecord, b: &RunRecord) -> Option<String> {
    let mut changes = Vec::new();
    for (k, v) in &b.params {
        match a.params.get(k) {
            Some(old) if old == v => {}
            Some(old) => changes.push(format!("{k}: {old} -> {v}")),
            None => changes.push(format!("{k}: (none) -> {v}")),
        }
    }
    (!changes.is_empty()).then(|| changes.join(", "))
}

fn summary(d: &Diagnosis, cause: &RootCause) -> String {
    let mut out = format!("step `{}` failed first", cause.path.join(" > "));
    if cause.attempts > 1 {
        out.push_str(&format!(" after {} attempts", cause.attempts));
    }
    out.push_str(&format!(": {}", cause.error));
    if d.skipped > 0 {
        out.push_str(&format!("; {} step(s) below it did not run", d.skipped));
    }
    match d.similar.first() {
        Some(s) => out.push_str(&format!(
            "; the same error was seen {} time(s) before, in `{}` / `{}`",
            s.times, s.workflow_id, s.step
        )),
        None => out.push_str("; this error was not seen before"),
    }
    if let Some(fix) = d.resolved_before.first() {
        out.push_str(&format!("; before, {fix}"));
    }
    out
}

//! What a workflow's history tells: each step's usual duration, success and retry rates and
//! trend, the workflow's expected duration along its critical path, and a running run's
//! expected end. Read from the step histories the engine keeps ([`crate::engine::history`]).

mod diagnose;

pub use diagnose::{diagnose, Diagnosis, RootCause, Similar};

use crate::dag::Workflow;
use crate::engine::history::{StepHistory, RECENT};
use crate::engine::{Engine, EngineError, RunStatus, StepStatus};
use serde::{Deserialize, Serialize};

/// Runs of a step before its figures are given: fewer say little.
pub const MIN_RUNS: u64 = 3;

/// What the history of one step says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInsight {
    /// The step's id.
    pub step: String,
    /// Its ends recorded (runs, or iterations for a loop body's step).
    pub ended: u64,
    /// Median duration of its succeeded attempts, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<u64>,
    /// 90th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_ms: Option<u64>,
    /// 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<u64>,
    /// Ends that succeeded, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// Ends that needed more than one attempt, from 0 to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_rate: Option<f64>,
    /// Whether its recent runs take longer than usual.
    pub trend: Trend,
}

/// How a step's recent durations compare with its usual one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Too little history to tell.
    Unknown,
    /// The median of the recent runs is within 25% of the usual median.
    Steady,
    /// More than 25% slower.
    Slower,
    /// More than 20% faster.
    Faster,
}

/// What the history of a workflow's steps says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowInsights {
    /// The workflow.
    pub workflow_id: String,
    /// Its steps, in definition order.
    pub steps: Vec<StepInsight>,
    /// How long a run takes, by the steps' medians along the critical path (none until
    /// every step has history, a step that never runs aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_ms: Option<u64>,
    /// The steps of that path, first to last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub critical_path: Vec<String>,
}

/// When a running run should end, by its steps' history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eta {
    /// The expected end, in milliseconds since the epoch.
    pub at_ms: u64,
    /// From now.
    pub remaining_ms: u64,
    /// Steps still to finish that have no history: the ETA counts them as instant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

/// What the history of `workflow_id`'s active version says.
pub fn workflow(engine: &Engine, workflow_id: &str) -> Result<WorkflowInsights, EngineError> {
    let shared = engine.shared();
    of(engine, &*crate::engine::registry::registered_workflow(shared, workflow_id)?)
}

/// What the history of `wf`'s steps says.
pub fn of(engine: &Engine, wf: &Workflow) -> Result<WorkflowInsights, EngineError> {
    let histories = histories(engine, wf)?;
    let steps: Vec<StepInsight> =
        (0..wf.len()).map(|i| insight(&wf.step(i).id, histories[i].as_ref())).collect();
    let medians: Vec<Option<u64>> = steps.iter().map(|s| s.p50_ms).collect();
    // Every step that has run has enough history (one that never ran may never run).
    let complete = medians.iter().zip(&histories).all(|(m, h)| m.is_some() || h.is_none())
        && medians.iter().any(Option::is_some);
    let (expected_ms, critical_path) = match complete {
        true => {
            let (end, path) = longest_path(wf, |i| Weight::Takes(medians[i].unwrap_or(0)));
            (Some(end), path.into_iter().map(|i| wf.step(i).id.clone()).collect())
        }
        false => (None, Vec::new()),
    };
    Ok(WorkflowInsights { workflow_id: wf.id().to_owned(), steps, expected_ms, critical_path })
}

/// When run `run_id` should end: each step not over ends a median after it starts (a
/// running one, no sooner than now), once the steps before it are over. None for a run
/// that is over.
pub fn eta(engine: &Engine, run_id: &str) -> Result<Option<Eta>, EngineError> {
    let details = engine.details(run_id)?;
    if details.run.status.is_terminal() || details.run.status == RunStatus::Queued {
        return Ok(None);
    }
    let shared = engine.shared();
    let run = &details.run;
    let wf =
        match crate::engine::registry::cached_definition(shared, &run.workflow_id, &run.definition)
        {
            Some(wf) => wf,
            None => {
                let def =
                    crate::engine::records::get_definition(shared.store.as_ref(), &run.definition)?;
                std::sync::Arc::new(engine.compile(def)?)
            }
        };
    let histories = histories(engine, &wf)?;
    let now = shared.clock.now_ms();
    let mut unknown = Vec::new();
    let mut spans = Vec::with_capacity(wf.len());
    for (i, view) in details.steps.iter().enumerate() {
        let median = histories[i].as_ref().and_then(|h| h.durations.quantile(0.5));
        let r = &view.record;
        let span = match r.status {
            s if s.is_terminal() => Span::Over(r.ended_ms.unwrap_or(now)),
            StepStatus::Running | StepStatus::Waiting => {
                let started = r.started_ms.unwrap_or(now);
                Span::Running((started + median.unwrap_or(0)).max(now))
            }
            _ => Span::Ahead(median.unwrap_or(0)),
        };
        if median.is_none() && !matches!(span, Span::Over(_)) {
            unknown.push(view.id.clone());
        }
        spans.push(span);
    }
    // Steps ahead start when those before them are over, at the earliest now.
    let (end, _) = longest_path(&wf, |i| match spans[i] {
        Span::Over(at) | Span::Running(at) => Weight::EndsAt(at),
        Span::Ahead(d) => Weight::TakesFrom(d, now),
    });
    let at_ms = end.max(now);
    Ok(Some(Eta { at_ms, remaining_ms: at_ms - now, unknown }))
}

/// Where a step of a running run is, for its ETA.
enum Span {
    /// Ended at.
    Over(u64),
    /// Expected to end at.
    Running(u64),
    /// Expected to take, once it can start.
    Ahead(u64),
}

/// What a step adds to a path through the workflow.
enum Weight {
    /// It ends this long after the steps before it.
    Takes(u64),
    /// It ends this long after the steps before it, or after a time if later (it has not
    /// started: it starts now at the earliest).
    TakesFrom(u64, u64),
    /// It ends then (or when the steps before it do, if later).
    EndsAt(u64),
}

/// The longest path through `wf`, each step weighing `weight(i)`: the latest end and the
/// steps of its path. Kahn's order: no recursion, linear in steps and edges.
fn longest_path(wf: &Workflow, weight: impl Fn(usize) -> Weight) -> (u64, Vec<usize>) {
    let n = wf.len();
    let mut remaining: Vec<usize> = (0..n).map(|i| wf.upstream_count(i)).collect();
    let mut end = vec![0u64; n];
    let mut via: Vec<Option<usize>> = vec![None; n];
    let mut ready: Vec<usize> = (0..n).filter(|&i| remaining[i] == 0).collect();
    while let Some(i) = ready.pop() {
        let (start, from) =
            wf.upstream(i).map(|u| (end[u], Some(u))).max_by_key(|(e, _)| *e).unwrap_or((0, None));
        end[i] = match weight(i) {
            Weight::Takes(d) => start + d,
            Weight::TakesFrom(d, not_before) => start.max(not_before) + d,
            Weight::EndsAt(at) => at.max(start),
        };
        via[i] = from;
        for d in wf.downstream(i) {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                ready.push(d);
            }
        }
    }
    let Some(last) = (0..n).max_by_key(|&i| end[i]) else { return (0, Vec::new()) };
    let mut path = vec![last];
    while let Some(u) = via[*path.last().unwrap_or(&last)] {
        path.push(u);
    }
    path.reverse();
    (end[last], path)
}

/// The workflow a run pins.
fn run_workflow(
    engine: &Engine,
    run: &crate::engine::RunRecord,
) -> Result<std::sync::Arc<Workflow>, EngineError> {
    let shared = engine.shared();
    match crate::engine::registry::cached_definition(shared, &run.workflow_id, &run.definition) {
        Some(wf) => Ok(wf),
        None => {
            let def =
                crate::engine::records::get_definition(shared.store.as_ref(), &run.definition)?;
            Ok(std::sync::Arc::new(engine.compile(def)?))
        }
    }
}

/// The steps above step `i`, each once.
fn ancestors(wf: &Workflow, i: usize) -> impl Iterator<Item = usize> + '_ {
    let mut seen = vec![false; wf.len()];
    let mut stack: Vec<usize> = wf.upstream(i).collect();
    std::iter::from_fn(move || {
        while let Some(u) = stack.pop() {
            if !std::mem::replace(&mut seen[u], true) {
                stack.extend(wf.upstream(u));
                return Some(u);
            }
        }
        None
    })
}

fn histories(engine: &Engine, wf: &Workflow) -> Result<Vec<Option<StepHistory>>, EngineError> {
    (0..wf.len()).map(|i| engine.step_history(wf.id(), &wf.step(i).id)).collect()
}

fn insight(step: &str, history: Option<&StepHistory>) -> StepInsight {
    let Some(h) = history.filter(|h| h.ended >= MIN_RUNS) else {
        return StepInsight {
            step: step.to_owned(),
            ended: history.map_or(0, |h| h.ended),
            p50_ms: None,
            p90_ms: None,
            p99_ms: None,
            success_rate: None,
            retry_rate: None,
            trend: Trend::Unknown,
        };
    };
    let q = |q| h.durations.quantile(q);
    StepInsight {
        step: step.to_owned(),
        ended: h.ended,
        p50_ms: q(0.5),
        p90_ms: q(0.9),
        p99_ms: q(0.99),
        success_rate: Some(h.succeeded as f64 / h.ended as f64),
        retry_rate: Some(h.retried as f64 / h.ended as f64),
        trend: trend(h),
    }
}

/// The median of the last half of the recent successes against the median of all.
fn trend(h: &StepHistory) -> Trend {
    let mut recent: Vec<u64> = h
        .recent
        .iter()
        .rev()
        .filter(|o| o.succeeded)
        .take(RECENT / 2)
        .map(|o| o.duration_ms)
        .collect();
    let (Some(usual), true) = (h.durations.quantile(0.5), recent.len() >= MIN_RUNS as usize) else {
        return Trend::Unknown;
    };
    // Too few runs beyond the recent ones to have a usual apart from them.
    if h.durations.count() < 2 * recent.len() as u64 {
        return Trend::Unknown;
    }
    recent.sort_unstable();
    let now = recent[recent.len() / 2] as f64;
    let usual = usual.max(1) as f64;
    match now / usual {
        r if r > 1.25 => Trend::Slower,
        r if r < 0.8 => Trend::Faster,
        _ => Trend::Steady,
    }
}

//! `while`: runs a body again and again while a condition holds.
//!
//! The condition is evaluated before each iteration, with `iteration` (from 0) and the
//! previous iteration's outputs (by body step id; empty maps before the first) visible.
//! Iterations are child runs, one at a time; the step's [`Rollup`] records which one runs,
//! so that a relaunched step goes on from there.

use super::foreach::{count, Body};
use super::Nest;
use crate::dag::ITERATION;
use crate::engine::{EngineError, Rollup, RunRecord, RunStatus};
use crate::model::StepDef;
use crate::steps::{missing, not_an_expression, one_of, Field, FieldProblem, Outputs, StepContext};
use crate::store::Batch;
use indexmap::IndexMap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// Iterations a `while` may run unless `max_iterations` says otherwise.
pub const DEFAULT_MAX_ITERATIONS: u64 = 1000;

pub(crate) struct WhileLoop;

impl super::Flow for WhileLoop {
    fn fields(&self) -> &'static [Field] {
        &[Field::Condition, Field::Steps, Field::Workflow, Field::MaxIterations]
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let mut problems: Vec<FieldProblem> =
            one_of(step, "while", Field::Steps, Field::Workflow).into_iter().collect();
        match &step.flow().condition {
            None => problems.push(missing(Field::Condition, "while", "\"${iteration < 3}\"")),
            Some(c) => {
                problems.extend(not_an_expression("condition", c, "`condition: \"${...}\"`"))
            }
        }
        if step.flow().max_iterations == Some(0) {
            problems.push(FieldProblem {
                field: "max_iterations".into(),
                message: "must be at least 1".into(),
            });
        }
        problems
    }

    fn attempt<'a>(&'a self, nest: &'a Nest, ctx: &'a StepContext) -> super::Attempt<'a> {
        Box::pin(iterate(nest, &ctx.cancel))
    }
}

async fn iterate(nest: &Nest, cancel: &CancellationToken) -> Result<Outputs, String> {
    let step = nest.step();
    let body = Body::of(nest)?;
    let condition = nest.plan().condition.as_ref().ok_or_else(|| super::unplanned("condition"))?;
    let max = step.flow().max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS);
    let mut rollup =
        nest.rollup()?.unwrap_or(Rollup { attempt: nest.attempt(), ..Rollup::default() });

    // Before the first iteration every body step's outputs are empty.
    let mut previous: IndexMap<String, Value> = body
        .workflow
        .def()
        .steps
        .iter()
        .map(|s| (s.id.clone(), Value::Object(Default::default())))
        .collect();
    if let Some(&i) = rollup.running.first() {
        // The iteration that was running when the process died.
        let id = nest.child_id(Some(i));
        let run = nest
            .load_run(&id)?
            .ok_or_else(|| format!("iteration {i} is missing from the store ({id})"))?;
        let run =
            if run.status.is_terminal() { run } else { drive(nest, &body, run, cancel).await? };
        end_iteration(nest, &body, &mut rollup, &mut previous, i, &run)?;
    } else if rollup.started > 0 {
        let id = nest.child_id(Some(rollup.started - 1));
        previous.extend(nest.child_outputs(&id, &body.workflow)?);
    }

    loop {
        let i = rollup.started;
        let mut names = previous.clone();
        names.insert(ITERATION.into(), Value::from(i));
        let go = match condition.evaluate(&nest.names().with(&names)) {
            Ok(Value::Bool(go)) => go,
            Ok(other) => return Err(format!("condition: expected a boolean, not {other}")),
            Err(e) => return Err(format!("condition (before iteration {i}): {e}")),
        };
        if !go {
            break;
        }
        if i >= max {
            return Err(format!(
                "the condition still holds after max_iterations ({max}) iterations"
            ));
        }
        let mut batch = Batch::default();
        let params = body.params(vec![(ITERATION, Value::from(i))]);
        let run = nest.new_child(&mut batch, &body.workflow, params, Some(i))?;
        rollup.started += 1;
        rollup.running = vec![i];
        nest.put_rollup(&mut batch, &rollup);
        nest.commit(batch).await?;
        let run = drive(nest, &body, run, cancel).await?;
        end_iteration(nest, &body, &mut rollup, &mut previous, i, &run)?;
    }
    let mut batch = Batch::default();
    nest.put_rollup(&mut batch, &rollup);
    nest.commit(batch).await?;

    let mut outputs = Outputs::new();
    outputs.insert("iterations".into(), Value::from(rollup.started));
    outputs
        .extend(previous.into_iter().filter(|(_, v)| v.as_object().is_some_and(|m| !m.is_empty())));
    Ok(outputs)
}

/// Drives one iteration to its end; stops it if the step is cancelled.
async fn drive(
    nest: &Nest,
    body: &Body,
    run: RunRecord,
    cancel: &CancellationToken,
) -> Result<RunRecord, String> {
    let wf = if run.status == RunStatus::Created {
        body.workflow.clone()
    } else {
        nest.child_workflow(&run, Some(&body.workflow))?
    };
    let (child, done) = nest.spawn(wf, run, body.outer.clone())?;
    tokio::pin!(done);
    let result = tokio::select! {
        result = &mut done => result,
        _ = cancel.cancelled() => {
            child.stop.cancel();
            done.await
        }
    };
    match result {
        Ok(run) => Ok(run),
        Err(EngineError::Closed) => Err("the engine closed".into()),
        Err(e) => Err(format!("iteration run {}: {e}", child.id)),
    }
}

/// Counts a finished iteration; a failed or stopped one ends the loop.
fn end_iteration(
    nest: &Nest,
    body: &Body,
    rollup: &mut Rollup,
    previous: &mut IndexMap<String, Value>,
    i: u64,
    run: &RunRecord,
) -> Result<(), String> {
    count(rollup, i, &run.id, run.status, run.error.as_deref());
    if run.status != RunStatus::Succeeded {
        let error = run.error.as_deref().unwrap_or("no error recorded");
        return Err(format!("iteration {i} (run {}) {}: {error}", run.id, run.status));
    }
    for v in previous.values_mut() {
        *v = Value::Object(Default::default());
    }
    previous.extend(nest.child_outputs(&run.id, &body.workflow)?);
    Ok(())
}

//! `while`: runs a body again and again while a condition holds.
//!
//! The condition is evaluated before each iteration, with `iteration` (from 0), the
//! previous iteration's outputs (by body step id; empty maps before the first) and the
//! `carry` values visible. A carried value starts as `carry` gives it, and after each
//! iteration takes the output of the same name of the body's last step that has one; the
//! body reads it as a name. Iterations are child runs, one at a time; the step's
//! [`Rollup`] records which one runs, so that a relaunched step goes on from there. The
//! carried values need no record of their own: an iteration's params hold those it
//! started with, and its outputs give the next.

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
        &[Field::Condition, Field::Steps, Field::Workflow, Field::MaxIterations, Field::Carry]
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

    let carry = &step.flow().carry;
    if let Some(name) = carry.keys().find(|k| !body.workflow.def().has_param(k)) {
        return Err(format!(
            "workflow `{}` has no parameter `{name}` to receive the carried value; declare it",
            body.workflow.id()
        ));
    }
    // Before the first iteration every body step's outputs are empty.
    let mut previous: IndexMap<String, Value> = body
        .workflow
        .def()
        .steps
        .iter()
        .map(|s| (s.id.clone(), Value::Object(Default::default())))
        .collect();
    let mut carried = IndexMap::new();
    for (name, first) in carry {
        let value = crate::expr::evaluate_value(first, nest.names().as_ref())
            .map_err(|e| format!("carry.{name}: {e}"))?;
        carried.insert(name.clone(), value);
    }
    // Resumed: the last iteration begun gives the carried values, with its params and outputs.
    let last = rollup.running.first().copied().or(rollup.started.checked_sub(1));
    if let Some(i) = last {
        let id = nest.child_id(Some(i));
        let run = nest
            .load_run(&id)?
            .ok_or_else(|| format!("iteration {i} is missing from the store ({id})"))?;
        carried.extend(
            run.params
                .iter()
                .filter(|(k, _)| carry.contains_key(*k))
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        if rollup.running.first() == Some(&i) {
            // The iteration that was running when the process died.
            let run = if run.status.is_terminal() {
                run
            } else {
                drive(nest, &body, run, cancel).await?
            };
            end_iteration(nest, &body, &mut rollup, &mut previous, i, &run)?;
        } else {
            previous.extend(nest.child_outputs(&id, &body.workflow)?);
        }
        take_carried(&mut carried, &previous);
    }

    loop {
        let i = rollup.started;
        let mut names = previous.clone();
        names.extend(carried.iter().map(|(k, v)| (k.clone(), v.clone())));
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
        let mut bound = vec![(ITERATION, Value::from(i))];
        bound.extend(carried.iter().map(|(k, v)| (k.as_str(), v.clone())));
        let params = body.params(bound);
        let run = nest.new_child(&mut batch, &body.workflow, params, Some(i))?;
        rollup.started += 1;
        rollup.running = vec![i];
        nest.put_rollup(&mut batch, &rollup);
        nest.commit(batch).await?;
        let run = drive(nest, &body, run, cancel).await?;
        end_iteration(nest, &body, &mut rollup, &mut previous, i, &run)?;
        take_carried(&mut carried, &previous);
    }
    let mut batch = Batch::default();
    nest.put_rollup(&mut batch, &rollup);
    nest.commit(batch).await?;

    let mut outputs = Outputs::new();
    outputs.insert("iterations".into(), Value::from(rollup.started));
    outputs
        .extend(previous.into_iter().filter(|(_, v)| v.as_object().is_some_and(|m| !m.is_empty())));
    outputs.extend(carried);
    Ok(outputs)
}

/// Each carried value takes the output of its name of the last body step that has one.
fn take_carried(carried: &mut IndexMap<String, Value>, outputs: &IndexMap<String, Value>) {
    for (name, value) in carried.iter_mut() {
        if let Some(new) = outputs.values().rev().find_map(|o| o.get(name.as_str())) {
            *value = new.clone();
        }
    }
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

//! `subworkflow`: runs another workflow (registered, or from a file) as a child run.
//!
//! The child run's id is its parent's plus the step (`RUN:step`), so the two are linked
//! both ways, and a relaunched step finds its child instead of starting another. The
//! child's outputs, by step id, are the step's outputs.
//!
//! With `wait: false` the step starts a run of the registered workflow of its own (a
//! top-level run, under that workflow's run strategy) and succeeds at once with its
//! `run_id`. The start's request id is the attempt's idempotency key, so a step relaunched
//! after a crash finds the run it started instead of starting another.

use super::{Names, Nest};
use crate::engine::{EngineError, RunStatus};
use crate::model::{Source, StepDef};
use crate::steps::{one_of, Field, FieldProblem, Outputs, StepContext};
use crate::store::Batch;
use crate::Workflow;
use indexmap::IndexMap;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Subworkflow;

impl super::Flow for Subworkflow {
    fn fields(&self) -> &'static [Field] {
        &[
            Field::Workflow,
            Field::File,
            Field::Params,
            Field::Version,
            Field::InheritParams,
            Field::Wait,
        ]
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let mut problems: Vec<FieldProblem> =
            one_of(step, "subworkflow", Field::Workflow, Field::File).into_iter().collect();
        let flow = step.flow();
        if flow.version.is_some() && flow.workflow.is_none() {
            problems.push(FieldProblem {
                field: "version".into(),
                message: "pins a version of a registered `workflow`, not of a `file`".into(),
            });
        }
        if flow.wait == Some(false) && flow.workflow.is_none() {
            problems.push(FieldProblem {
                field: "wait".into(),
                message: "`wait: false` starts a run of a registered `workflow`, not of a `file`"
                    .into(),
            });
        }
        if flow.version == Some(0) {
            problems.push(FieldProblem {
                field: "version".into(),
                message: "versions count from 1".into(),
            });
        }
        problems
    }

    fn attempt<'a>(&'a self, nest: &'a Nest, ctx: &'a StepContext) -> super::Attempt<'a> {
        if nest.step().flow().wait == Some(false) {
            Box::pin(start_run(nest, ctx))
        } else {
            Box::pin(run_child(nest, ctx))
        }
    }
}

/// `wait: false`: starts a run of the registered workflow and gives its id.
async fn start_run(nest: &Nest, ctx: &StepContext) -> Result<Outputs, String> {
    let step = nest.step();
    let id = step.flow().workflow.as_deref().ok_or_else(|| super::unplanned("workflow"))?;
    let wf = child_workflow(nest)?;
    let params = child_params(nest, &wf, ctx);
    // A run started this way is no child: its params would be stored and shown unmasked.
    if nest.mask().finds(&Value::Object(params.clone().into_iter().collect()).to_string()) {
        return Err("a secret cannot be given to a run started with `wait: false`: its params are stored and shown".into());
    }
    let engine = nest.shared.engine.get().and_then(|e| e.upgrade()).ok_or("the engine closed")?;
    let options = crate::engine::StartOptions {
        params,
        version: step.flow().version,
        request_id: Some(format!("{}/started", ctx.idempotency_key)),
    };
    let run_id = engine
        .start_from(id, options, nest.origin())
        .await
        .map_err(|e| format!("starting workflow `{id}`: {e}"))?;
    tracing::info!(run = %nest.run_id(), started = %run_id, workflow = %id, "subworkflow started, not waited for");
    let mut outputs = Outputs::new();
    outputs.insert("run_id".into(), Value::String(run_id));
    Ok(outputs)
}

async fn run_child(nest: &Nest, ctx: &StepContext) -> Result<Outputs, String> {
    let id = nest.child_id(None);
    let (wf, run) = match nest.load_run(&id)? {
        Some(run) => (nest.child_workflow(&run, None)?, run),
        None => {
            let wf = child_workflow(nest)?;
            let mut batch = Batch::default();
            let run = nest.new_child(&mut batch, &wf, child_params(nest, &wf, ctx), None)?;
            nest.commit(batch).await?;
            tracing::info!(run = %nest.run_id(), child = %id, workflow = %wf.id(), "subworkflow started");
            (wf, run)
        }
    };
    let run = if run.status.is_terminal() {
        run
    } else {
        // A child workflow sees only its own parameters.
        let (child, done) =
            nest.spawn(wf.clone(), run, Arc::new(Names::empty(nest.clock().clone())))?;
        tokio::pin!(done);
        let result = tokio::select! {
            result = &mut done => result,
            _ = ctx.cancel.cancelled() => {
                child.stop.cancel();
                done.await
            }
        };
        match result {
            Ok(run) => run,
            Err(EngineError::Closed) => return Err("the engine closed".into()),
            Err(e) => return Err(format!("subworkflow run {id}: {e}")),
        }
    };
    match run.status {
        RunStatus::Succeeded => Ok(nest.child_outputs(&id, &wf)?.into_iter().collect()),
        status => Err(format!(
            "subworkflow run {id} {status}: {}",
            run.error.as_deref().unwrap_or("no error recorded")
        )),
    }
}

/// The params of the child run: the step's `params`, over the run's own for the params
/// the child declares when the step says `inherit_params`.
fn child_params(nest: &Nest, child: &Workflow, ctx: &StepContext) -> IndexMap<String, Value> {
    if !nest.step().flow().inherit_params {
        return ctx.step_params.clone();
    }
    let def = child.def();
    let mut params: IndexMap<String, Value> = (def.params.keys())
        .chain(def.required.keys())
        .chain(def.computed.keys())
        .filter_map(|k| ctx.params.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    params.extend(ctx.step_params.iter().map(|(k, v)| (k.clone(), v.clone())));
    params
}

/// The workflow the step names: registered in the engine (its active version, or the one
/// `version` pins), or read from its file.
fn child_workflow(nest: &Nest) -> Result<Arc<Workflow>, String> {
    let step = nest.step();
    if let Some(id) = &step.flow().workflow {
        return match step.flow().version {
            Some(version) => nest.registered_version(id, version),
            None => nest.registered(id),
        };
    }
    let path = step.flow().file.as_deref().ok_or_else(|| super::unplanned("file"))?;
    let source = Source::read(Path::new(path)).map_err(|e| e.to_string())?;
    let def = source.parse().map_err(|e| e.to_string())?;
    nest.compile(def).map(Arc::new).map_err(|e| format!("{}", source.locate(e)))
}

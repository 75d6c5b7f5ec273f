//! `subworkflow`: runs another workflow (registered, or from a file) as a child run.
//!
//! The child run's id is its parent's plus the step (`RUN:step`), so the two are linked
//! both ways, and a relaunched step finds its child instead of starting another. The
//! child's outputs, by step id, are the step's outputs.

use super::{Names, Nest};
use crate::engine::{EngineError, RunStatus};
use crate::model::{Source, StepDef};
use crate::steps::{one_of, Field, FieldProblem, Outputs, StepContext};
use crate::store::Batch;
use crate::Workflow;
use std::path::Path;
use std::sync::Arc;

pub(crate) struct Subworkflow;

impl super::Flow for Subworkflow {
    fn fields(&self) -> &'static [Field] {
        &[Field::Workflow, Field::File, Field::Params]
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        one_of(step, "subworkflow", Field::Workflow, Field::File).into_iter().collect()
    }

    fn attempt<'a>(&'a self, nest: &'a Nest, ctx: &'a StepContext) -> super::Attempt<'a> {
        Box::pin(run_child(nest, ctx))
    }
}

async fn run_child(nest: &Nest, ctx: &StepContext) -> Result<Outputs, String> {
    let id = nest.child_id(None);
    let (wf, run) = match nest.load_run(&id)? {
        Some(run) => (nest.child_workflow(&run, None)?, run),
        None => {
            let wf = child_workflow(nest)?;
            let mut batch = Batch::default();
            let run = nest.new_child(&mut batch, &wf, ctx.step_params.clone(), None)?;
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

/// The workflow the step names: registered in the engine, or read from its file.
fn child_workflow(nest: &Nest) -> Result<Arc<Workflow>, String> {
    let step = nest.step();
    if let Some(id) = &step.flow().workflow {
        return nest.registered(id);
    }
    let path = step.flow().file.as_deref().ok_or_else(|| super::unplanned("file"))?;
    let source = Source::read(Path::new(path)).map_err(|e| e.to_string())?;
    let def = source.parse().map_err(|e| e.to_string())?;
    nest.compile(def).map(Arc::new).map_err(|e| format!("{}", source.locate(e)))
}

//! The engine's own step kinds, which nest runs or wait: `foreach`, `while`, `subworkflow`
//! and `wait_signal`. Like any kind they declare their fields and check their steps, and
//! they are registered as [`StepKind`]s for validation; unlike leaf kinds their attempts
//! work with the engine itself (a [`Nest`]: child runs, signals), so the engine launches
//! them through [`attempt`], not [`StepKind::run`].

mod foreach;
mod nest;
pub(crate) mod spread;
mod subworkflow;
mod wait_signal;
mod while_loop;

pub use nest::Names;
pub(crate) use nest::{child_run_id, outputs_value, Nest};

use crate::model::StepDef;
use crate::steps::{
    Field, FieldProblem, Outputs, StepContext, StepFuture, StepKind, StepKinds, StepOutcome,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An attempt of a flow kind: its outputs, or why it failed.
type Attempt<'a> = Pin<Box<dyn Future<Output = Result<Outputs, String>> + Send + 'a>>;

/// A kind whose attempts work with the engine: its fields and checks, as any kind's, and
/// an attempt that is given the [`Nest`].
trait Flow: Send + Sync {
    fn fields(&self) -> &'static [Field];
    fn check(&self, step: &StepDef) -> Vec<FieldProblem>;
    fn attempt<'a>(&'a self, nest: &'a Nest, ctx: &'a StepContext) -> Attempt<'a>;
    /// See [`StepKind::outputs_from_outside`].
    fn outputs_from_outside(&self) -> bool {
        false
    }
}

/// The flow kinds, by name: the one list of them.
static FLOWS: [(&str, &dyn Flow); 4] = [
    ("foreach", &foreach::Foreach),
    ("while", &while_loop::WhileLoop),
    ("subworkflow", &subworkflow::Subworkflow),
    ("wait_signal", &wait_signal::WaitSignal),
];

fn flow_kind(name: &str) -> Option<&'static dyn Flow> {
    FLOWS.iter().find(|(n, _)| *n == name).map(|(_, flow)| *flow)
}

/// Whether `kind` names one of the flow kinds.
pub(crate) fn is_flow(kind: &str) -> bool {
    flow_kind(kind).is_some()
}

/// A flow kind in a registry of kinds: validation sees its fields and checks; it runs only
/// through [`attempt`].
struct Registered(&'static dyn Flow);

impl StepKind for Registered {
    fn fields(&self) -> &'static [Field] {
        self.0.fields()
    }
    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let mut problems = self.0.check(step);
        if step.options().cache.is_some() {
            // Its outcome is other runs' (a body, a child) or a signal's: no key says it.
            let message = format!("a `{}` step cannot be cached: it runs other runs or waits for a signal, whose results no key of this step identifies; put `cache` on the steps inside it", step.kind);
            problems.push(FieldProblem { field: "cache".into(), message });
        }
        problems
    }
    fn outputs_from_outside(&self) -> bool {
        self.0.outputs_from_outside()
    }
    /// Flow kinds see the names of the run through their `Nest`.
    fn reads_names(&self) -> bool {
        false
    }
    fn run(&self, _ctx: StepContext) -> StepFuture {
        Box::pin(async { StepOutcome::failure("this step type runs only inside the engine") })
    }
}

/// Adds the flow kinds to `kinds`, where they cannot be replaced.
pub(crate) fn register(kinds: &mut StepKinds) {
    for (name, flow) in FLOWS {
        // The names are ids and new to a registry of leaf kinds.
        let _ = kinds.fix(name, Arc::new(Registered(flow)));
    }
}

/// Starts an attempt of the flow kind `kind`, or gives `ctx` back if it is not one.
pub(crate) fn attempt(
    kind: &str,
    nest: Nest,
    ctx: StepContext,
) -> Result<StepFuture, Box<StepContext>> {
    let Some(flow) = flow_kind(kind) else { return Err(Box::new(ctx)) };
    Ok(Box::pin(async move {
        match flow.attempt(&nest, &ctx).await {
            Ok(outputs) => StepOutcome::success(outputs),
            Err(e) => StepOutcome::failure(e),
        }
    }))
}

/// The error for a field validation guarantees but the step lacks: a bug, never a default.
fn unplanned(field: &str) -> String {
    format!("internal error: the step has no `{field}`, which validation requires")
}

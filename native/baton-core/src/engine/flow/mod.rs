//! The engine's own step kinds, which nest runs or wait: `foreach`, `while`, `subworkflow`
//! and `wait_signal`. Like any kind they declare their fields and check their steps
//! ([`StepKind`]); unlike leaf kinds their attempts work with the engine itself (a [`Nest`]:
//! child runs, signals), so the engine launches them through [`attempt`], not
//! [`StepKind::run`].

mod foreach;
mod nest;
mod subworkflow;
mod wait_signal;
mod while_loop;

pub use nest::Names;
pub(crate) use nest::{child_run_id, outputs_value, Nest};

use crate::steps::{Outputs, StepContext, StepFuture, StepKind, StepKinds, StepOutcome};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An attempt of a flow kind: its outputs, or why it failed.
type Attempt<'a> = Pin<Box<dyn Future<Output = Result<Outputs, String>> + Send + 'a>>;

/// A kind whose attempts work with the engine.
trait Flow: StepKind {
    fn attempt<'a>(&'a self, nest: &'a Nest, ctx: &'a StepContext) -> Attempt<'a>;
}

fn flow_kind(name: &str) -> Option<&'static dyn Flow> {
    match name {
        "foreach" => Some(&foreach::Foreach),
        "while" => Some(&while_loop::WhileLoop),
        "subworkflow" => Some(&subworkflow::Subworkflow),
        "wait_signal" => Some(&wait_signal::WaitSignal),
        _ => None,
    }
}

/// Whether `kind` names one of the flow kinds.
pub(crate) fn is_flow(kind: &str) -> bool {
    flow_kind(kind).is_some()
}

/// Adds the flow kinds to `kinds`, where they cannot be replaced.
pub(crate) fn register(kinds: &mut StepKinds) {
    let flows: [(&str, Arc<dyn StepKind>); 4] = [
        ("foreach", Arc::new(foreach::Foreach)),
        ("while", Arc::new(while_loop::WhileLoop)),
        ("subworkflow", Arc::new(subworkflow::Subworkflow)),
        ("wait_signal", Arc::new(wait_signal::WaitSignal)),
    ];
    for (name, kind) in flows {
        // The names are ids and new to a registry of leaf kinds.
        let _ = kinds.fix(name, kind);
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

/// What a flow kind's [`StepKind::run`] does: they run only through [`attempt`].
fn inside_only() -> StepFuture {
    Box::pin(async { StepOutcome::failure("this step type runs only inside the engine") })
}

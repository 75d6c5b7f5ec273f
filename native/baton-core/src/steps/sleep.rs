//! `sleep`: waits for `duration`, on the engine's clock.

use super::{
    missing, Field, FieldProblem, Outputs, StepContext, StepFuture, StepKind, StepOutcome,
};
use crate::model::StepDef;

/// The `sleep` step kind.
pub struct Sleep;

impl StepKind for Sleep {
    fn fields(&self) -> &'static [Field] {
        &[Field::Duration]
    }

    fn reads_names(&self) -> bool {
        false
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        match step.options().duration {
            None => vec![missing(Field::Duration, "sleep", "30s")],
            Some(_) => Vec::new(),
        }
    }

    fn run(&self, ctx: StepContext) -> StepFuture {
        // Measured from the attempt's first start, so a restart does not sleep twice.
        let until = ctx.started_ms + ctx.duration.unwrap_or_default().as_millis() as u64;
        Box::pin(async move {
            tokio::select! {
                _ = ctx.clock.sleep_until(until) => StepOutcome::success(Outputs::new()),
                _ = ctx.cancel.cancelled() => StepOutcome::failure("stopped while sleeping"),
            }
        })
    }
}

//! `wait_signal`: waits until a signal with a given name (and, with `match`, given
//! params) has been sent; its outputs are the signal's params.
//!
//! Signals are stored, so one sent before the step started matches too, if it is younger
//! than the workflow's `signal_retention`. While nothing matches the step is WAITING.

use super::Nest;
use crate::engine::SignalRecord;
use crate::expr::Template;
use crate::model::StepDef;
use crate::steps::{missing, not_an_expression, Field, FieldProblem, Outputs, StepContext};
use indexmap::IndexMap;
use serde_json::Value;

pub(crate) struct WaitSignal;

impl super::Flow for WaitSignal {
    /// Its outputs are the params of the signal it received.
    fn outputs_from_outside(&self) -> bool {
        true
    }

    fn fields(&self) -> &'static [Field] {
        &[Field::Signal, Field::Match]
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let mut problems = Vec::new();
        match &step.flow().signal {
            None => problems.push(missing(Field::Signal, "wait_signal", "table_ready")),
            Some(name) => problems.extend(
                crate::model::signal_name_problem(name)
                    .map(|message| FieldProblem { field: "signal".into(), message }),
            ),
        }
        if let Some(m) = &step.flow().signal_match {
            problems.extend(not_an_expression(
                "match",
                m,
                "`match: \"${signal.table == 'events'}\"`",
            ));
        }
        problems
    }

    fn attempt<'a>(&'a self, nest: &'a Nest, ctx: &'a StepContext) -> super::Attempt<'a> {
        Box::pin(wait(nest, ctx))
    }
}

async fn wait(nest: &Nest, ctx: &StepContext) -> Result<Outputs, String> {
    let step = nest.step();
    let name = step.flow().signal.as_deref().ok_or_else(|| super::unplanned("signal"))?;
    let matcher = nest.plan().signal_match.as_ref();
    let since = ctx.started_ms.saturating_sub(nest.signal_retention().as_millis() as u64);
    let mut sent = nest.signal_watch();
    let mut waiting = None;
    loop {
        sent.borrow_and_update();
        let mut last_problem = None;
        for signal in nest.signals_since(name, since)? {
            match matches(nest, matcher, &signal) {
                Ok(true) => {
                    tracing::info!(run = %nest.run_id(), step = %step.id, signal = %name, id = %signal.id, "signal matched");
                    return Ok(signal.params);
                }
                Ok(false) => {}
                Err(problem) => last_problem = Some(format!("signal {}: {problem}", signal.id)),
            }
        }
        let mut reason = format!("signal `{name}`");
        if let Some(m) = &step.flow().signal_match {
            reason.push_str(&format!(" matching {m}"));
        }
        if let Some(problem) = last_problem {
            reason.push_str(&format!(" ({problem})"));
        }
        if waiting.as_ref() != Some(&reason) {
            ctx.status.waiting(reason.clone());
            waiting = Some(reason);
        }
        tokio::select! {
            changed = sent.changed() => {
                if changed.is_err() {
                    return Err("the engine closed".into());
                }
            }
            _ = ctx.cancel.cancelled() => return Err(format!("stopped while waiting for signal `{name}`")),
        }
    }
}

/// Whether `signal` satisfies the step's `match`; an expression that cannot be evaluated
/// on this signal (a missing param) does not match, and says why.
fn matches(nest: &Nest, matcher: Option<&Template>, signal: &SignalRecord) -> Result<bool, String> {
    let Some(matcher) = matcher else { return Ok(true) };
    let mut names = IndexMap::new();
    names.insert("signal".to_string(), Value::Object(signal.params.clone().into_iter().collect()));
    let result = matcher.evaluate(&nest.names().with(&names));
    match result {
        Ok(Value::Bool(b)) => Ok(b),
        Ok(other) => Err(format!("match: expected a boolean, not {other}")),
        Err(e) => Err(format!("match: {e}")),
    }
}

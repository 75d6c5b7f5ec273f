//! `foreach`: runs a body once per item of a list, as many iterations at a time as
//! `max_parallel` allows.
//!
//! Iterations are child runs, created only when a slot is free, so a million items never
//! exist at once. The step's [`Rollup`] (iterations started, running, and over per status)
//! is written with each wave of new iterations; after a crash, the iterations it lists as
//! running are resumed or, if they had finished, counted.

use super::{Names, Nest};
use crate::dag::{DEFAULT_ITEM_NAME, ITERATION};
use crate::engine::{EngineError, IterationFailure, Rollup, RunRecord, RunStatus};
use crate::expr::LazyRange;
use crate::model::StepDef;
use crate::steps::{
    is_identifier, missing, not_an_expression, one_of, Field, FieldProblem, Outputs, StepContext,
};
use crate::store::Batch;
use futures_util::stream::{FuturesUnordered, StreamExt};
use indexmap::IndexMap;
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// New iterations recorded per commit at most.
const MAX_WAVE: usize = 4096;

pub(crate) struct Foreach;

impl super::Flow for Foreach {
    fn fields(&self) -> &'static [Field] {
        &[
            Field::Over,
            Field::As,
            Field::Steps,
            Field::Workflow,
            Field::MaxParallel,
            Field::FailFast,
        ]
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let mut problems: Vec<FieldProblem> =
            one_of(step, "foreach", Field::Steps, Field::Workflow).into_iter().collect();
        let product = &step.flow().over_product;
        match &step.flow().over {
            None if product.is_empty() => {
                problems.push(missing(Field::Over, "foreach", "\"${range(0, 10)}\""))
            }
            None => {
                for (name, list) in product {
                    let field = format!("over.{name}");
                    if !is_identifier(name) || name == ITERATION {
                        problems.push(FieldProblem { field, message: format!("`{name}` cannot name an item: use letters, digits and `_`, not starting with a digit, and not `{ITERATION}`") });
                    } else if let Some(text) = list.as_str() {
                        problems.extend(not_an_expression(
                            &field,
                            text,
                            "a list, or `\"${...}\"` (a list)",
                        ));
                    } else if !list.is_array() {
                        problems.push(FieldProblem {
                            field,
                            message: "expected a list, or `\"${...}\"` (a list)".into(),
                        });
                    }
                }
                if step.flow().item_name.is_some() {
                    problems.push(FieldProblem {
                        field: "as".into(),
                        message: "the items of a product are named by the keys of `over`".into(),
                    });
                }
            }
            Some(over) => {
                problems.extend(not_an_expression("over", over, "`over: \"${...}\"` (a list)"))
            }
        }
        if let Some(name) = &step.flow().item_name {
            if !is_identifier(name) || name == ITERATION {
                problems.push(FieldProblem {
                    field: "as".into(),
                    message: format!("`{name}` cannot name the item: use letters, digits and `_`, not starting with a digit, and not `{ITERATION}`"),
                });
            }
        }
        if step.flow().max_parallel == Some(0) {
            problems.push(FieldProblem {
                field: "max_parallel".into(),
                message: "must be at least 1".into(),
            });
        }
        problems
    }

    fn attempt<'a>(&'a self, nest: &'a Nest, ctx: &'a StepContext) -> super::Attempt<'a> {
        Box::pin(iterate(nest, &ctx.cancel))
    }
}

/// What a foreach iterates over.
enum Items {
    Range(LazyRange),
    List(Vec<Value>),
    /// Every combination of the lists' items, the last list's varying fastest (as nested
    /// loops would), made one at a time from the iteration's number; and how many.
    Product(Vec<(String, Vec<Value>)>, u64),
}

impl Items {
    fn of(nest: &Nest, names: &Names) -> Result<Items, String> {
        let product = &nest.step().flow().over_product;
        if !product.is_empty() {
            let mut lists = Vec::with_capacity(product.len());
            let mut total: u64 = 1;
            for (name, list) in product {
                let list = match crate::expr::evaluate_value(list, names)
                    .map_err(|e| format!("over.{name}: {e}"))?
                {
                    Value::Array(items) => items,
                    other => return Err(format!("over.{name}: expected a list, not {other}")),
                };
                total = total
                    .checked_mul(list.len() as u64)
                    .ok_or("over: the product has more than 2^64 items")?;
                lists.push((name.clone(), list));
            }
            return Ok(Items::Product(lists, total));
        }
        let template = nest.plan().over.as_ref().ok_or_else(|| super::unplanned("over"))?;
        if let Some(range) = template.lazy_range(names) {
            return range.map(Items::Range).map_err(|e| format!("over: {e}"));
        }
        match template.evaluate(names).map_err(|e| format!("over: {e}"))? {
            Value::Array(items) => Ok(Items::List(items)),
            other => Err(format!("over: expected a list, not {other}")),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Items::Range(r) => r.count,
            Items::List(items) => items.len() as u64,
            Items::Product(_, total) => *total,
        }
    }

    /// The names iteration `i` binds, and their values.
    fn bind<'a>(&'a self, item_name: &'a str, i: u64) -> Vec<(&'a str, Value)> {
        match self {
            Items::Range(r) => vec![(item_name, Value::from(r.get(i)))],
            Items::List(items) => {
                vec![(item_name, items.get(i as usize).cloned().unwrap_or(Value::Null))]
            }
            Items::Product(lists, _) => {
                let mut rest = i;
                let mut bound: Vec<(&str, Value)> = lists
                    .iter()
                    .rev()
                    .map(|(name, list)| {
                        let n = list.len() as u64;
                        let item = list.get((rest % n) as usize).cloned().unwrap_or(Value::Null);
                        rest /= n;
                        (name.as_str(), item)
                    })
                    .collect();
                bound.reverse();
                bound
            }
        }
    }
}

type Finished = Pin<Box<dyn Future<Output = (u64, String, Result<RunRecord, EngineError>)> + Send>>;

/// The body and what its iterations are given.
pub(super) struct Body {
    pub(super) workflow: Arc<crate::Workflow>,
    /// Names the iterations see from the run around them (none for a registered workflow:
    /// it gets only its parameters).
    pub(super) outer: Arc<Names>,
}

impl Body {
    pub(super) fn of(nest: &Nest) -> Result<Body, String> {
        let workflow = nest.body()?;
        let outer = if nest.step().flow().workflow.is_some() {
            Arc::new(Names::empty(nest.clock().clone()))
        } else {
            nest.names().clone()
        };
        Ok(Body { workflow, outer })
    }

    /// The parameters of iteration `i`: the bound names the body declares.
    pub(super) fn params(&self, bound: Vec<(&str, Value)>) -> IndexMap<String, Value> {
        let declared = self.workflow.def();
        bound
            .into_iter()
            .filter(|(k, _)| declared.has_param(k))
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }
}

async fn iterate(nest: &Nest, cancel: &CancellationToken) -> Result<Outputs, String> {
    let step = nest.step();
    let body = Body::of(nest)?;
    let item_name = step.flow().item_name.as_deref().unwrap_or(DEFAULT_ITEM_NAME);
    let receivers: Vec<&str> = if step.flow().over_product.is_empty() {
        vec![item_name]
    } else {
        step.flow().over_product.keys().map(String::as_str).collect()
    };
    if let Some(name) = receivers
        .iter()
        .find(|n| step.flow().workflow.is_some() && !body.workflow.def().has_param(n))
    {
        return Err(format!(
            "workflow `{}` has no parameter `{name}` to receive the item; declare it, or set `as`",
            body.workflow.id()
        ));
    }
    let items = Items::of(nest, nest.names())?;
    let total = items.len();
    let limit = step.flow().max_parallel.unwrap_or_else(|| nest.workflow().max_parallel()).max(1);

    let mut rollup = match nest.rollup()? {
        Some(rollup) => rollup,
        None => {
            // What an earlier attempt did for the same inputs is not done again.
            let inputs = inputs(nest, &body);
            let earlier = match &inputs {
                Some(inputs) => nest.earlier_attempt(inputs)?,
                None => None,
            };
            Rollup {
                attempt: nest.attempt(),
                total: Some(total),
                inputs,
                earlier,
                ..Rollup::default()
            }
        }
    };
    let mut running: FuturesUnordered<Finished> = FuturesUnordered::new();
    let mut stops: HashMap<u64, CancellationToken> = HashMap::new();
    let mut stopping = false;

    // On a database shared with other engines, some iterations are theirs to drive.
    let peers = nest.peers();
    let mut scoped = false;
    let follow = |i: u64, id: String, stops: &mut HashMap<u64, CancellationToken>| -> Finished {
        let stop = CancellationToken::new();
        stops.insert(i, stop.clone());
        let nest = nest.clone();
        Box::pin(async move {
            let result = nest.follow(id.clone(), stop).await;
            (i, id, result)
        })
    };

    // Iterations that were running when the process died.
    for i in rollup.running.clone() {
        let id = nest.child_id(Some(i));
        match nest.load_run(&id)? {
            Some(run) if run.status.is_terminal() => {
                count(&mut rollup, i, &run.id, run.status, run.error.as_deref())
            }
            Some(run) if nest.is_offered(&run.id)? => {
                scoped = true;
                running.push(follow(i, run.id, &mut stops));
            }
            Some(run) => {
                let wf = nest.child_workflow(&run, Some(&body.workflow))?;
                let (child, done) = nest.spawn(wf, run, body.outer.clone())?;
                stops.insert(i, child.stop);
                running.push(Box::pin(async move { (i, child.id, done.await) }));
            }
            None => return Err(format!("iteration {i} is missing from the store ({id})")),
        }
    }

    let mut written: Option<futures_util::future::BoxFuture<'static, Result<(), String>>> = None;
    loop {
        // The previous wave was queued before its iterations started; by now it is
        // durable, and a failure to write it stops the loop.
        if let Some(previous) = written.take() {
            previous.await?;
        }
        let mut batch = Batch::default();
        let mut wave = Vec::new();
        let mut reused = 0;
        while !stopping
            && running.len() + wave.len() < limit
            && rollup.started < total
            && wave.len() + reused < MAX_WAVE
        {
            let i = rollup.started;
            let mut bound = items.bind(item_name, i);
            bound.push((ITERATION, Value::from(i)));
            let params = body.params(bound);
            if let Some(earlier) = &rollup.earlier {
                if let Some(id) = nest.reuse_iteration(&mut batch, earlier, i, &params)? {
                    rollup.started += 1;
                    rollup.reused += 1;
                    reused += 1;
                    count(&mut rollup, i, &id, RunStatus::Succeeded, None);
                    continue;
                }
            }
            let run = nest.new_child(&mut batch, &body.workflow, params, Some(i))?;
            rollup.started += 1;
            rollup.running.push(i);
            // One of every `peers + 1` stays here; the others go to the other engines.
            let offered = peers > 0 && i % (peers as u64 + 1) != 0;
            if offered {
                if !scoped {
                    nest.put_scope(&mut batch, &body.outer)?;
                    scoped = true;
                }
                nest.offer(&mut batch, &run);
            }
            wave.push((i, run, offered));
        }
        nest.put_rollup(&mut batch, &rollup);
        written = Some(Box::pin(nest.submit(batch)));
        for (i, run, offered) in wave {
            if offered {
                running.push(follow(i, run.id, &mut stops));
                continue;
            }
            let (child, done) = nest.spawn(body.workflow.clone(), run, body.outer.clone())?;
            stops.insert(i, child.stop);
            running.push(Box::pin(async move { (i, child.id, done.await) }));
        }
        if running.is_empty() {
            // A wave of iterations taken from an earlier attempt runs nothing: go on.
            if stopping || rollup.started >= total {
                break;
            }
            continue;
        }
        let first = tokio::select! {
            Some(first) = running.next() => Some(first),
            _ = cancel.cancelled(), if !stopping => None,
        };
        if cancel.is_cancelled() && !stopping {
            stopping = true;
            stops.values().for_each(CancellationToken::cancel);
        }
        // Everything that has finished by now counts in the next write of the rollup.
        let mut finished: Vec<_> = first.into_iter().collect();
        while let Some(Some(next)) = futures_util::FutureExt::now_or_never(running.next()) {
            finished.push(next);
        }
        for (i, id, result) in finished {
            stops.remove(&i);
            match result {
                Ok(run) => count(&mut rollup, i, &run.id, run.status, run.error.as_deref()),
                Err(EngineError::Closed) => return Err("the engine closed".into()),
                // Another engine drives the run now: it counts the iteration, not this one.
                Err(e @ EngineError::LostLease(_)) => return Err(e.to_string()),
                // The child's driver failed before writing its end.
                Err(e) => count(&mut rollup, i, &id, RunStatus::Failed, Some(&e.to_string())),
            }
            let failed = rollup.counts.get(&RunStatus::Failed).copied().unwrap_or(0) > 0;
            if step.flow().fail_fast && failed && !stopping {
                stopping = true;
                stops.values().for_each(CancellationToken::cancel);
            }
        }
    }

    if let Some(last) = written {
        last.await?;
    }
    if scoped {
        let mut batch = Batch::default();
        nest.drop_scope(&mut batch);
        nest.commit(batch).await?;
    }
    let get = |s: RunStatus| rollup.counts.get(&s).copied().unwrap_or(0);
    let (succeeded, failed, stopped) =
        (get(RunStatus::Succeeded), get(RunStatus::Failed), get(RunStatus::Stopped));
    if cancel.is_cancelled() {
        return Err(format!("stopped after {} of {total} iterations", rollup.done()));
    }
    if let Some(first) = rollup.failures.first() {
        let not_started = total - rollup.started;
        let skipped =
            if not_started > 0 { format!(", {not_started} not started") } else { String::new() };
        return Err(format!(
            "{failed} of {total} iterations failed{skipped}; first: iteration {} (run {}): {}",
            first.iteration, first.run_id, first.error
        ));
    }
    let mut outputs = Outputs::new();
    outputs.insert("iterations".into(), Value::from(total));
    outputs.insert("succeeded".into(), Value::from(succeeded));
    if rollup.reused > 0 {
        outputs.insert("reused".into(), Value::from(rollup.reused));
    }
    if stopped > 0 {
        outputs.insert("stopped".into(), Value::from(stopped));
    }
    if total <= MAX_COLLECTED && stopped == 0 {
        outputs.insert("outputs".into(), collect(nest, &body, total)?);
    }
    Ok(outputs)
}

/// A hash of what the iterations are given from outside: the body's definition and the
/// names around it. None when secrets are among them (a hash of a secret is not stored).
fn inputs(nest: &Nest, body: &Body) -> Option<String> {
    if !nest.mask().is_empty() {
        return None;
    }
    let names = serde_json::to_vec(body.outer.values()).ok()?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(body.workflow.definition_hash().as_bytes());
    hasher.update(&names);
    Some(hasher.finalize().to_hex().to_string())
}

/// Iterations whose outputs a foreach collects into lists; past it, a loop of millions
/// would read them all back (and a step's outputs are bounded in any case).
pub const MAX_COLLECTED: u64 = 10_000;

/// The outputs of every iteration as lists, by body step and output key, in iteration
/// order: `${per_day.outputs.load.rows}` is the `rows` of each iteration's `load` (null
/// where an iteration's step gave none).
fn collect(nest: &Nest, body: &Body, total: u64) -> Result<Value, String> {
    let mut lists: IndexMap<String, IndexMap<String, Vec<Value>>> = IndexMap::new();
    for i in 0..total {
        for (step, outputs) in nest.child_outputs(&nest.child_id(Some(i)), &body.workflow)? {
            let Value::Object(outputs) = outputs else { continue };
            let by_key = lists.entry(step).or_default();
            for (key, value) in outputs {
                let list = by_key.entry(key).or_insert_with(|| vec![Value::Null; i as usize]);
                list.resize(i as usize, Value::Null);
                list.push(value);
            }
        }
    }
    let as_value = |by_key: IndexMap<String, Vec<Value>>| {
        Value::Object(
            by_key
                .into_iter()
                .map(|(k, mut list)| {
                    list.resize(total as usize, Value::Null);
                    (k, Value::Array(list))
                })
                .collect(),
        )
    };
    Ok(Value::Object(lists.into_iter().map(|(step, by_key)| (step, as_value(by_key))).collect()))
}

/// Counts a finished iteration, run `run_id`, in the rollup.
pub(super) fn count(
    rollup: &mut Rollup,
    i: u64,
    run_id: &str,
    status: RunStatus,
    error: Option<&str>,
) {
    rollup.running.retain(|&r| r != i);
    *rollup.counts.entry(status).or_insert(0) += 1;
    if status == RunStatus::Succeeded {
        return;
    }
    // The lowest-numbered failures, in order, whichever ended first: iterations run at once.
    let at = rollup.failures.partition_point(|f| f.iteration < i);
    if at < Rollup::MAX_FAILURES {
        let error = error.map_or_else(|| status.to_string(), str::to_owned);
        let failure = IterationFailure { iteration: i, run_id: run_id.to_owned(), error };
        rollup.failures.insert(at, failure);
        rollup.failures.truncate(Rollup::MAX_FAILURES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rollup_keeps_the_lowest_numbered_failures_whatever_ended_first() {
        let mut rollup = Rollup::default();
        for i in (0..30).rev() {
            let status = if i % 2 == 1 { RunStatus::Failed } else { RunStatus::Succeeded };
            count(&mut rollup, i, &format!("r:{i}"), status, Some("boom"));
        }
        let kept: Vec<u64> = rollup.failures.iter().map(|f| f.iteration).collect();
        assert_eq!(kept, [1, 3, 5, 7, 9, 11, 13, 15, 17, 19]);
        assert_eq!(rollup.counts[&RunStatus::Failed], 15);
    }
}

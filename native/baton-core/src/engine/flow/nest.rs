//! Runs inside runs: what the engine gives the steps that start other runs (`foreach`,
//! `while`, `subworkflow`) or wait for signals.
//!
//! A child run is driven by a [`Driver`] like any run, with its records under an id made
//! from its parent's (`RUN:step` for a subworkflow, `RUN:step:7` for iteration 7), so that
//! a relaunched parent step finds its children again instead of starting them twice.

use super::super::records::{
    self, EarlierAttempt, Initiator, ParentLink, Rollup, RunRecord, SignalRecord,
};
use super::super::run::{Driver, Frame};
use super::super::secrets::Mask;
use super::super::{merge_params, EngineError, Shared};
use crate::activity::Activity;
use crate::clock::Clock;
use crate::dag::Workflow;
use crate::expr::{RunContext, Scope};
use crate::model::StepDef;
use crate::steps::Outputs;
use crate::store::Batch;
use indexmap::IndexMap;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How deep runs may nest (a subworkflow that starts itself ends here).
pub(crate) const MAX_DEPTH: usize = 32;

/// The names a step sees, taken when it launches: names from enclosing runs, the run's
/// parameters, then the outputs of finished steps.
pub struct Names {
    values: IndexMap<String, Value>,
    /// Which of the names are steps (their values are their outputs); the others are
    /// parameters. A host step of a loop body gets them apart: `ctx.input` and `ctx.param`.
    steps: std::collections::HashSet<String>,
    clock: Arc<dyn Clock>,
}

impl Names {
    pub(crate) fn new(
        values: IndexMap<String, Value>,
        steps: std::collections::HashSet<String>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Names { values, steps, clock }
    }

    pub(crate) fn empty(clock: Arc<dyn Clock>) -> Self {
        Names::new(IndexMap::new(), Default::default(), clock)
    }

    pub(crate) fn values(&self) -> &IndexMap<String, Value> {
        &self.values
    }

    /// Whether `name` is a step of an enclosing run.
    pub(crate) fn is_step(&self, name: &str) -> bool {
        self.steps.contains(name)
    }

    /// The names that are steps.
    pub(crate) fn steps(&self) -> impl Iterator<Item = &String> {
        self.steps.iter()
    }

    /// These names with `extra` over them.
    pub fn with<'a>(&'a self, extra: &'a IndexMap<String, Value>) -> impl Scope + 'a {
        Layered { extra, base: self }
    }
}

impl Scope for Names {
    fn name(&self, name: &str) -> Option<Value> {
        self.values.get(name).cloned()
    }
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

struct Layered<'a> {
    extra: &'a IndexMap<String, Value>,
    base: &'a Names,
}

impl Scope for Layered<'_> {
    fn name(&self, name: &str) -> Option<Value> {
        self.extra.get(name).cloned().or_else(|| self.base.name(name))
    }
    fn now_ms(&self) -> u64 {
        self.base.now_ms()
    }
}

/// A child run being driven; awaiting it gives its final record.
pub(crate) struct Child {
    pub(crate) id: String,
    /// Asks the child to stop (its running steps are stopped, the rest skipped).
    pub(crate) stop: CancellationToken,
}

/// The engine, as seen by one attempt of a step that nests runs or waits for signals.
#[derive(Clone)]
pub(crate) struct Nest {
    pub(super) shared: Arc<Shared>,
    wf: Arc<Workflow>,
    index: usize,
    run_id: String,
    attempt: u32,
    depth: usize,
    names: Arc<Names>,
    /// The run the step is evaluated for: its iterations are too.
    context: Arc<RunContext>,
    /// The secrets child runs mask: those of this run and the runs around it.
    mask: Arc<Mask>,
    /// The attempt's kill token: child runs are killed with it.
    kill: CancellationToken,
    /// Fires when this engine lost the run: the attempt is killed here, and what other
    /// engines drive for it goes on.
    abandon: CancellationToken,
    /// The fence of the top-level run, which the child runs write under too.
    fence: Option<crate::store::Expect>,
}

impl Nest {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        shared: Arc<Shared>,
        wf: Arc<Workflow>,
        index: usize,
        run_id: String,
        attempt: u32,
        depth: usize,
        names: Arc<Names>,
        context: Arc<RunContext>,
        mask: Arc<Mask>,
        kill: CancellationToken,
        abandon: CancellationToken,
        fence: Option<crate::store::Expect>,
    ) -> Self {
        Nest {
            shared,
            wf,
            index,
            run_id,
            attempt,
            depth,
            names,
            context,
            mask,
            kill,
            abandon,
            fence,
        }
    }

    /// Who starts a run from this step, and the scheduled time it keeps.
    pub(crate) fn origin(&self) -> crate::engine::admission::Origin {
        crate::engine::admission::Origin {
            initiator: Initiator::Parent,
            scheduled_ms: Some(self.context.scheduled_ms),
        }
    }

    /// The workflow of the run the step is in.
    pub(crate) fn workflow(&self) -> &Workflow {
        &self.wf
    }

    pub(crate) fn step(&self) -> &StepDef {
        self.wf.step(self.index)
    }

    /// The step's parsed fields.
    pub(crate) fn plan(&self) -> &crate::dag::StepPlan {
        self.wf.plan(self.index)
    }

    /// The names the step sees.
    pub(crate) fn names(&self) -> &Arc<Names> {
        &self.names
    }

    /// How deep the run of this step is: 0 for a top-level run.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// The secrets this step's child runs mask.
    pub(crate) fn mask(&self) -> &Mask {
        &self.mask
    }

    /// Fires when the attempt is killed.
    pub(crate) fn kill_token(&self) -> &CancellationToken {
        &self.kill
    }

    /// Whether this engine lost the run (see [`Nest::abandon`]).
    pub(crate) fn abandoned(&self) -> bool {
        self.abandon.is_cancelled()
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    pub(crate) fn run_id(&self) -> &str {
        &self.run_id
    }

    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    /// How long a signal stays eligible for `wait_signal` steps of this workflow.
    pub(crate) fn signal_retention(&self) -> Duration {
        self.wf.signal_retention()
    }

    /// The body of a `foreach` or `while`: its inline steps, or the registered workflow
    /// it names.
    pub(crate) fn body(&self) -> Result<Arc<Workflow>, String> {
        match (self.wf.body(self.index), &self.step().flow().workflow) {
            (Some(body), _) => Ok(body.clone()),
            (None, Some(id)) => self.registered(id),
            (None, None) => Err("the step has neither `steps` nor `workflow`".into()),
        }
    }

    /// A workflow registered in this engine.
    pub(crate) fn registered(&self, id: &str) -> Result<Arc<Workflow>, String> {
        super::super::registry::registered_workflow(&self.shared, id).map_err(|e| e.to_string())
    }

    /// Version `version` of the registered workflow `id`, compiled.
    pub(crate) fn registered_version(
        &self,
        id: &str,
        version: u32,
    ) -> Result<Arc<Workflow>, String> {
        super::super::registry::version_workflow(&self.shared, id, version)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// Validates a definition with this engine's step kinds.
    pub(crate) fn compile(
        &self,
        def: crate::model::WorkflowDef,
    ) -> Result<Workflow, crate::error::InvalidDefinition> {
        Workflow::compile(def, &self.shared.kinds.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The id of the child run for `iteration`, or of the subworkflow run.
    pub(crate) fn child_id(&self, iteration: Option<u64>) -> String {
        child_run_id(&self.run_id, &self.step().id, self.attempt, iteration)
    }

    pub(crate) fn load_run(&self, id: &str) -> Result<Option<RunRecord>, String> {
        records::get_run(self.shared.store.as_ref(), id).map_err(|e| e.to_string())
    }

    /// A new child run of `wf`, recorded in `batch`; it starts with [`spawn`](Nest::spawn)
    /// once the batch is durable.
    pub(crate) fn new_child(
        &self,
        batch: &mut Batch,
        wf: &Workflow,
        params: IndexMap<String, Value>,
        iteration: Option<u64>,
    ) -> Result<RunRecord, String> {
        if self.depth >= MAX_DEPTH {
            return Err(format!(
                "runs nest more than {MAX_DEPTH} deep (does a subworkflow start itself?)"
            ));
        }
        let mut run = RunRecord {
            parent: Some(ParentLink {
                run_id: self.run_id.clone(),
                step_id: self.step().id.clone(),
                iteration,
            }),
            ..RunRecord::created(
                self.child_id(iteration),
                wf,
                String::new(),
                IndexMap::new(),
                self.shared.clock.now_ms(),
            )
        };
        if iteration.is_none() {
            run.initiator = Initiator::Parent;
            run.scheduled_ms = Some(self.context.scheduled_ms);
        }
        // An iteration is evaluated for its loop's run; a subworkflow's child is a run.
        let context = match iteration {
            Some(_) => (*self.context).clone(),
            None => run.context(),
        };
        let mut params =
            merge_params(wf.def(), params).map_err(|e| format!("workflow `{}`: {e}", wf.id()))?;
        crate::engine::compute_params(wf, &mut params, &context, run.created_ms)
            .map_err(|e| format!("workflow `{}`: {e}", wf.id()))?;
        run.params = params;
        run.definition = records::put_definition(self.shared.store.as_ref(), batch, wf)
            .map_err(|e| e.to_string())?;
        // The child's own secrets, and the params this step gives it from a secret.
        let mut secrets = wf.def().secrets.clone();
        for name in &self.plan().secret_params {
            if !secrets.contains(name) {
                secrets.push(name.clone());
            }
        }
        super::super::secrets::keep(&self.shared.sealer, batch, &mut run, secrets)
            .map_err(|e| e.to_string())?;
        // Among engines, a child run names the one that drives it (an offered iteration, the
        // one that claims it).
        if self.shared.member.shared_store {
            run.engine = Some(self.shared.member.id.clone());
        }
        records::put_run(batch, &run);
        Ok(run)
    }

    /// The earlier attempt of this loop step whose succeeded iterations this one may take:
    /// the previous attempt in this run, or for a first attempt, the last attempt in the run
    /// this one restarts (unless it succeeded there: then the restart asked to run it
    /// again). Only an attempt whose iterations were given the same `inputs` qualifies.
    pub(crate) fn earlier_attempt(&self, inputs: &str) -> Result<Option<EarlierAttempt>, String> {
        let store = self.shared.store.as_ref();
        let earlier = if self.attempt > 1 {
            Some(EarlierAttempt { run_id: self.run_id.clone(), attempt: self.attempt - 1 })
        } else {
            let run = records::get_run(store, &self.run_id).map_err(|e| e.to_string())?;
            match run.and_then(|r| r.restarted_from) {
                None => None,
                Some(old) => records::get_step(store, &old, self.index)
                    .map_err(|e| e.to_string())?
                    .filter(|s| s.status != crate::engine::StepStatus::Succeeded)
                    .map(|s| EarlierAttempt { run_id: old, attempt: s.attempt }),
            }
        };
        let Some(earlier) = earlier else { return Ok(None) };
        let rollup =
            records::get_rollup(store, &earlier.run_id, self.index).map_err(|e| e.to_string())?;
        let same = rollup
            .is_some_and(|r| r.attempt == earlier.attempt && r.inputs.as_deref() == Some(inputs));
        Ok(same.then_some(earlier))
    }

    /// Takes iteration `i` from `earlier` if it succeeded there with these `params`: its
    /// records are copied under this attempt's id, in `batch`. Gives the copy's id.
    pub(crate) fn reuse_iteration(
        &self,
        batch: &mut Batch,
        earlier: &EarlierAttempt,
        i: u64,
        params: &IndexMap<String, Value>,
    ) -> Result<Option<String>, String> {
        let store = self.shared.store.as_ref();
        let step = &self.step().id;
        let old_id = child_run_id(&earlier.run_id, step, earlier.attempt, Some(i));
        let Some(old) = records::get_run(store, &old_id).map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        if old.status != crate::engine::RunStatus::Succeeded
            || !old.secrets.is_empty()
            || old.params != *params
        {
            return Ok(None);
        }
        let id = self.child_id(Some(i));
        let mut run = RunRecord {
            id: id.clone(),
            parent: Some(ParentLink {
                run_id: self.run_id.clone(),
                step_id: step.clone(),
                iteration: Some(i),
            }),
            ..old
        };
        if self.shared.member.shared_store {
            run.engine = Some(self.shared.member.id.clone());
        }
        records::put_run(batch, &run);
        records::scan_steps(store, &old_id, |s, record| records::put_step(batch, &id, s, &record))
            .map_err(|e| e.to_string())?;
        Ok(Some(id))
    }

    /// The workflow a stored child run pins.
    ///
    /// A loop's iteration of the body it runs now is that body, compiled with the names of
    /// the run around it; compiling its stored definition alone would lose them (the
    /// workflow's params, upstream outputs), and a resumed iteration would fail.
    pub(crate) fn child_workflow(
        &self,
        run: &RunRecord,
        body: Option<&Arc<Workflow>>,
    ) -> Result<Arc<Workflow>, String> {
        if let Some(body) = body.filter(|b| b.definition_hash() == run.definition) {
            return Ok(body.clone());
        }
        let def = records::get_definition(self.shared.store.as_ref(), &run.definition)
            .map_err(|e| e.to_string())?;
        self.compile(def).map(Arc::new).map_err(|e| format!("child run {}: {e}", run.id))
    }

    /// Drives a child run (new, or stored and not finished) on a task of its own.
    pub(crate) fn spawn(
        &self,
        wf: Arc<Workflow>,
        run: RunRecord,
        outer: Arc<Names>,
    ) -> Result<(Child, impl std::future::Future<Output = Result<RunRecord, EngineError>>), String>
    {
        let stop = CancellationToken::new();
        let child = Child { id: run.id.clone(), stop: stop.clone() };
        let iteration = run.parent.as_ref().is_some_and(|p| p.iteration.is_some());
        let frame = Frame {
            outer,
            context: iteration.then(|| self.context.clone()),
            mask: self.mask.clone(),
            stop,
            kill: self.kill.clone(),
            abandon: self.abandon.clone(),
            depth: self.depth + 1,
            fence: self.fence.clone(),
        };
        let driver = Driver::new(self.shared.clone(), wf, run, frame).map_err(|e| e.to_string())?;
        let (task, output) =
            Activity::track_with_output(self.shared.activity.as_ref(), driver.drive());
        // Tracked with the attempts, so that closing the engine waits for child drivers too.
        let task = self.shared.attempts.spawn(task);
        Ok((child, async move {
            match output.await {
                Some(result) => result,
                None => {
                    let message = task.await.err().map_or_else(
                        || "the driver ended without its result".to_owned(),
                        |e| e.to_string(),
                    );
                    Err(EngineError::Driver { run_id: String::new(), message })
                }
            }
        }))
    }

    /// The outputs of a finished child run, by step id.
    pub(crate) fn child_outputs(
        &self,
        run_id: &str,
        wf: &Workflow,
    ) -> Result<IndexMap<String, Value>, String> {
        let mut out = IndexMap::new();
        records::scan_steps(self.shared.store.as_ref(), run_id, |i, record| {
            if i < wf.len() && !record.outputs.is_empty() {
                out.insert(wf.step(i).id.clone(), outputs_value(record.outputs));
            }
        })
        .map_err(|e| e.to_string())?;
        // Definition order, whatever the key order of the store.
        out.sort_by_cached_key(|k, _| wf.index_of(k));
        Ok(out)
    }

    pub(crate) fn rollup(&self) -> Result<Option<Rollup>, String> {
        let rollup = records::get_rollup(self.shared.store.as_ref(), &self.run_id, self.index)
            .map_err(|e| e.to_string())?;
        Ok(rollup.filter(|r| r.attempt == self.attempt))
    }

    pub(crate) fn put_rollup(&self, batch: &mut Batch, rollup: &Rollup) {
        records::put_rollup(batch, &self.run_id, self.index, rollup);
    }

    /// Makes `batch` durable.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), String> {
        self.submit(batch).await
    }

    /// Queues `batch`; what is queued after it (a child's own records) is never durable
    /// before it. The future says when it is durable.
    pub(crate) fn submit(
        &self,
        mut batch: Batch,
    ) -> impl std::future::Future<Output = Result<(), String>> + Send + 'static {
        // Under the run's lease, as every write of its driver.
        if let (Some(fence), false) = (&self.fence, batch.is_empty()) {
            batch.expect.push(fence.clone());
        }
        // The commit runs on the store's thread: in motion until it is durable, though the
        // step waits, and though the step awaits this only later.
        let done =
            Activity::detached(self.shared.activity.as_ref(), self.shared.committer.submit(batch));
        async move { done.await.map_err(|e| e.to_string()) }
    }

    /// Signals named `name` sent at `since_ms` or later, oldest first.
    pub(crate) fn signals_since(
        &self,
        name: &str,
        since_ms: u64,
    ) -> Result<Vec<SignalRecord>, String> {
        let mut found = Vec::new();
        records::scan_signals_sent_since(self.shared.store.as_ref(), name, since_ms, |s| {
            found.push(s);
            true
        })
        .map_err(|e| e.to_string())?;
        Ok(found)
    }

    /// Changes whenever signals are sent.
    pub(crate) fn signal_watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.signal_seq.subscribe()
    }
}

/// The id of a child run: `RUN:step` for a subworkflow, `RUN:step:7` for iteration 7,
/// with `#N` after the step for its attempt N > 1.
pub(crate) fn child_run_id(
    run_id: &str,
    step_id: &str,
    attempt: u32,
    iteration: Option<u64>,
) -> String {
    let mut id = if attempt > 1 {
        format!("{run_id}:{step_id}#{attempt}")
    } else {
        format!("{run_id}:{step_id}")
    };
    if let Some(i) = iteration {
        id.push_str(&format!(":{i}"));
    }
    id
}

/// Outputs as one JSON map.
pub(crate) fn outputs_value(outputs: Outputs) -> Value {
    Value::Object(outputs.into_iter().collect())
}

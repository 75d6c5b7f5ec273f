//! What operators do to runs and steps: stop, kill, pause, resume, restart, breakpoints,
//! skip and retry of a step.
//!
//! An action on a run is carried out by the run's driver, which owns the run's state: the
//! engine sends it a message and, for the actions that change state, waits for the reply,
//! which comes once the change is durable. An action on an unfinished run that no driver
//! here is running (left by a crash and not recovered yet) first resumes the run here,
//! like [`Engine::recover`] does for one run, then acts: there is one path for state
//! changes, the driver's. A finished run never changes; [`Engine::restart`] makes a new one.
//! A run another live engine drives gets the action through the store (see `remote.rs`).

use super::records::{self, RunRecord};
use super::remote::Remote;
use super::run::{Action, Msg};
use super::{next_run_id, Engine, EngineError, RunHandle, RunStatus, StepStatus};
use crate::dag::Workflow;
use crate::store::{Batch, Store, StoreError, Table};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The breakpoints of every workflow, in memory (they are few), with a generation that
/// changes with them: a driver reads its workflow's set again only when it changed, so a
/// breakpoint set while a run goes on applies to the steps it reaches afterwards.
pub(crate) struct Breakpoints {
    by_workflow: RwLock<HashMap<String, HashSet<String>>>,
    generation: AtomicU64,
}

/// Workflow id, a 0 byte, step id.
fn breakpoint_key(workflow_id: &str, step_id: &str) -> Vec<u8> {
    let mut key = workflow_id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(step_id.as_bytes());
    key
}

impl Breakpoints {
    pub(crate) fn load(store: &dyn Store) -> Result<Self, StoreError> {
        Ok(Breakpoints {
            by_workflow: RwLock::new(Self::read(store)?),
            generation: AtomicU64::new(0),
        })
    }

    /// Takes what the store holds now, if another engine changed it; drivers see the
    /// change at their next look.
    pub(crate) fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let now = Self::read(store)?;
        let mut map = self.by_workflow.write().unwrap_or_else(|e| e.into_inner());
        if *map != now {
            *map = now;
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }

    fn read(store: &dyn Store) -> Result<HashMap<String, HashSet<String>>, StoreError> {
        let mut by_workflow: HashMap<String, HashSet<String>> = HashMap::new();
        store.scan(Table::Breakpoints, b"", &mut |key, _| {
            if let Some(zero) = key.iter().position(|&b| b == 0) {
                let workflow = String::from_utf8_lossy(&key[..zero]).into_owned();
                let step = String::from_utf8_lossy(&key[zero + 1..]).into_owned();
                by_workflow.entry(workflow).or_default().insert(step);
            }
            true
        })?;
        Ok(by_workflow)
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The indices of the steps of `wf` that have a breakpoint.
    pub(crate) fn steps_of(&self, wf: &Workflow) -> HashSet<usize> {
        let map = self.by_workflow.read().unwrap_or_else(|e| e.into_inner());
        map.get(wf.id())
            .map(|steps| steps.iter().filter_map(|s| wf.index_of(s)).collect())
            .unwrap_or_default()
    }
}

/// The refusal of an action on a finished run.
fn finished(run: &RunRecord, action: &'static str) -> EngineError {
    EngineError::IllegalAction {
        target: format!("run {}", run.id),
        action,
        state: run.status.to_string(),
        hint: " (finished runs cannot change; `baton restart` starts a new run)".into(),
    }
}

impl Engine {
    /// The handle of the driver of `run_id`, resuming the run here if it is unfinished and
    /// nobody drives it; a finished run or a child run is refused.
    fn driven(&self, run_id: &str, action: &'static str) -> Result<RunHandle, EngineError> {
        if let Some(handle) =
            self.runs.lock().unwrap_or_else(|e| e.into_inner()).get(run_id).cloned()
        {
            return Ok(handle);
        }
        let store = self.shared.store.as_ref();
        let run = records::get_run(store, run_id)?
            .ok_or_else(|| EngineError::UnknownRun(run_id.into()))?;
        if run.status.is_terminal() {
            return Err(finished(&run, action));
        }
        if run.status == RunStatus::Queued {
            // Its strategy admits it in turn: driving it here would jump the queue.
            return Err(EngineError::IllegalAction {
                target: format!("run {run_id}"),
                action,
                state: run.status.to_string(),
                hint: " (it waits for its turn under the workflow's run strategy; `baton stop` takes it out of the queue)".into(),
            });
        }
        if let Some(parent) = &run.parent {
            return Err(EngineError::IllegalAction {
                target: format!("run {run_id}"),
                action,
                state: format!("a child run of step `{}` of run {}", parent.step_id, parent.run_id),
                hint: format!(" (act on run {} instead)", parent.run_id),
            });
        }
        if self.shared.shutdown.is_cancelled() {
            return Err(EngineError::Closed);
        }
        let claim = match self.claim_of(&run)? {
            Ok(claim) => claim,
            Err(holder) => {
                return Err(EngineError::DrivenElsewhere { run_id: run_id.into(), engine: holder })
            }
        };
        let def = records::get_definition(store, &run.definition)?;
        let workflow = Arc::new(self.compile(def)?);
        tracing::info!(run = %run_id, action, "resuming the run here to act on it");
        self.spawn_driver(workflow, run, super::cluster::Owner::Claiming(claim))?;
        self.runs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(run_id)
            .cloned()
            .ok_or_else(|| EngineError::NotRunningHere(run_id.into()))
    }

    fn is_queued(&self, run_id: &str) -> Result<bool, EngineError> {
        Ok(records::get_run(self.shared.store.as_ref(), run_id)?
            .is_some_and(|r| r.status == RunStatus::Queued))
    }

    /// Sends an action to the run's driver and waits until its effect is durable.
    async fn act(
        &self,
        run_id: &str,
        action: Action,
        name: &'static str,
    ) -> Result<(), EngineError> {
        let handle = match self.driven(run_id, name) {
            Err(EngineError::DrivenElsewhere { engine, .. }) => {
                return self.forward(run_id, action.remote(), &engine).await
            }
            handle => handle?,
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = handle.control.send(Msg::Action { action, reply }).is_ok();
        match answer.await {
            Ok(result) if sent => result,
            // The run ended before the driver read the action.
            _ => match self.run(run_id)? {
                Some(run) if run.status.is_terminal() => Err(finished(&run, name)),
                _ => Err(EngineError::Closed),
            },
        }
    }

    /// Stops a run: its running steps are asked to stop (a shell command gets SIGTERM,
    /// then SIGKILL after a grace period), steps not started are skipped, and the run ends
    /// STOPPED. Returns once asked; [`wait`](Engine::wait) gives the end.
    /// A QUEUED run is taken out of its queue and ends STOPPED.
    pub async fn stop(&self, run_id: &str, reason: &str) -> Result<(), EngineError> {
        // A cheap look first: `last_only` stops running runs while it holds the admission
        // lock that taking a run out of its queue needs.
        if self.is_queued(run_id)? && self.dequeue(run_id, RunStatus::Stopped, reason).await? {
            return Ok(());
        }
        let handle = match self.driven(run_id, "stop") {
            Err(EngineError::DrivenElsewhere { engine, .. }) => {
                return self.forward(run_id, Remote::Stop(reason.to_owned()), &engine).await
            }
            handle => handle?,
        };
        let _ = handle.control.send(Msg::Stop { reason: reason.to_owned() });
        Ok(())
    }

    /// Kills a run without cleanup: its running steps are KILLED at once (a shell command
    /// gets SIGKILL), child runs are killed too, and the run ends KILLED.
    /// A QUEUED run is taken out of its queue and ends KILLED.
    pub async fn kill(&self, run_id: &str) -> Result<(), EngineError> {
        if self.is_queued(run_id)?
            && self.dequeue(run_id, RunStatus::Killed, "killed by an operator").await?
        {
            return Ok(());
        }
        let handle = match self.driven(run_id, "kill") {
            Err(EngineError::DrivenElsewhere { engine, .. }) => {
                return self.forward(run_id, Remote::Kill, &engine).await
            }
            handle => handle?,
        };
        let _ = handle.control.send(Msg::Kill);
        Ok(())
    }

    /// Pauses a run: no step starts until [`resume`](Engine::resume), and the steps that
    /// are running finish. The run is PAUSED, durably: it is still paused after a crash.
    /// A paused run whose steps are all over ends as it would have (SUCCEEDED or FAILED):
    /// pausing holds back work, it does not hold a finished run open.
    pub async fn pause(&self, run_id: &str) -> Result<(), EngineError> {
        self.act(run_id, Action::Pause, "pause").await
    }

    /// Lets a paused run start steps again.
    pub async fn resume(&self, run_id: &str) -> Result<(), EngineError> {
        self.act(run_id, Action::Resume, "resume").await
    }

    /// Lets a step WAITING at a breakpoint run.
    pub async fn continue_step(&self, run_id: &str, step_id: &str) -> Result<(), EngineError> {
        self.act(run_id, Action::Continue(step_id.into()), "continue").await
    }

    /// Marks a step SKIPPED as an operator's decision: the steps below it run as if it had
    /// succeeded. For a step not over (a running one is stopped first, and the call
    /// returns once it is skipped) or a FAILED step, in a run not finished.
    pub async fn skip_step(&self, run_id: &str, step_id: &str) -> Result<(), EngineError> {
        self.act(run_id, Action::Skip(step_id.into()), "skip").await
    }

    /// Starts a new attempt of a FAILED step in a run not finished (a run that goes on
    /// after a failure, or a paused one). The steps skipped because of it are PENDING again,
    /// and the run forgets its failure unless another step failed.
    pub async fn retry_step(&self, run_id: &str, step_id: &str) -> Result<(), EngineError> {
        self.act(run_id, Action::Retry(step_id.into()), "retry").await
    }

    /// Starts a new run of a finished run's definition and parameters, linked to it by
    /// `restarted_from`. The steps that succeeded keep their records and outputs; the others
    /// run again, with everything below them. With `from`, that step and everything below it
    /// run again too. Returns the new run's id.
    pub async fn restart(&self, run_id: &str, from: Option<&str>) -> Result<String, EngineError> {
        let store = self.shared.store.as_ref();
        let old = records::get_run(store, run_id)?
            .ok_or_else(|| EngineError::UnknownRun(run_id.into()))?;
        if !old.status.is_terminal() {
            return Err(EngineError::IllegalAction {
                target: format!("run {run_id}"),
                action: "restart",
                state: old.status.to_string(),
                hint: " (only a finished run can be restarted; `baton stop` ends it)".into(),
            });
        }
        if let Some(parent) = &old.parent {
            return Err(EngineError::IllegalAction {
                target: format!("run {run_id}"),
                action: "restart",
                state: format!("a child run of run {}", parent.run_id),
                hint: format!(" (restart run {} instead)", parent.run_id),
            });
        }
        if !old.secrets.is_empty() {
            return Err(EngineError::IllegalAction {
                target: format!("run {run_id}"),
                action: "restart",
                state: format!("a run with secrets ({})", old.secrets.join(", ")),
                hint: " (a run's secrets are not kept once it ends; start a new run giving them)"
                    .into(),
            });
        }
        let workflow = Arc::new(self.compile(records::get_definition(store, &old.definition)?)?);
        let n = workflow.len();
        let from = from
            .map(|id| {
                workflow.index_of(id).ok_or_else(|| EngineError::UnknownStep {
                    run_id: run_id.into(),
                    step_id: id.into(),
                    hint: crate::error::did_you_mean(
                        id,
                        (0..n).map(|i| workflow.step(i).id.as_str()),
                    ),
                })
            })
            .transpose()?;
        let mut kept = vec![None; n];
        records::scan_steps(store, run_id, |i, record| {
            if i < n && record.status == StepStatus::Succeeded {
                kept[i] = Some(record);
            }
        })?;
        // What runs again: every step that did not succeed, `from`, and all below them.
        let mut work: Vec<usize> = (0..n).filter(|&i| kept[i].is_none()).collect();
        if let Some(f) = from {
            if kept[f].take().is_some() {
                work.push(f);
            }
        }
        while let Some(s) = work.pop() {
            for d in workflow.downstream(s) {
                if kept[d].take().is_some() {
                    work.push(d);
                }
            }
        }
        // A restart does again what its run did: for the same trigger, at the same time.
        let mut run = RunRecord {
            restarted_from: Some(old.id.clone()),
            version: old.version,
            initiator: old.initiator,
            scheduled_ms: Some(old.scheduled_ms.unwrap_or(old.created_ms)),
            ..RunRecord::created(
                next_run_id(),
                &workflow,
                old.definition.clone(),
                old.params.clone(),
                self.shared.clock.now_ms(),
            )
        };
        let mut batch = Batch::default();
        let owner = self.own_new(&mut batch, &mut run);
        records::put_run(&mut batch, &run);
        let mut reused = 0;
        for (i, record) in kept.iter().enumerate() {
            if let Some(record) = record {
                records::put_step(&mut batch, &run.id, i, record);
                reused += 1;
            }
        }
        self.shared.committer.commit(batch).await?;
        tracing::info!(run = %run.id, restarted_from = %old.id, kept = reused, "run restarted");
        let id = run.id.clone();
        if let Some(owner) = owner {
            self.spawn_driver(workflow, run, owner)?;
        }
        Ok(id)
    }

    /// Sets (`on`) or removes a breakpoint on step `step_id` of workflow `workflow_id`:
    /// runs of that workflow that reach the step afterwards stop it before its first
    /// attempt, WAITING for [`continue_step`](Engine::continue_step). Durable.
    pub async fn set_breakpoint(
        &self,
        workflow_id: &str,
        step_id: &str,
        on: bool,
    ) -> Result<(), EngineError> {
        let mut batch = Batch::default();
        let key = breakpoint_key(workflow_id, step_id);
        if on {
            batch.put(Table::Breakpoints, key, Vec::new());
        } else {
            batch.delete(Table::Breakpoints, key);
        }
        self.shared.committer.commit(batch).await?;
        let breakpoints = &self.shared.breakpoints;
        {
            let mut map = breakpoints.by_workflow.write().unwrap_or_else(|e| e.into_inner());
            if on {
                map.entry(workflow_id.to_owned()).or_default().insert(step_id.to_owned());
            } else if let Some(steps) = map.get_mut(workflow_id) {
                steps.remove(step_id);
                if steps.is_empty() {
                    map.remove(workflow_id);
                }
            }
        }
        breakpoints.generation.fetch_add(1, Ordering::AcqRel);
        tracing::info!(workflow = %workflow_id, step = %step_id, on, "breakpoint set");
        Ok(())
    }

    /// The steps of a workflow that have a breakpoint, sorted.
    pub fn breakpoints(&self, workflow_id: &str) -> Vec<String> {
        let map = self.shared.breakpoints.by_workflow.read().unwrap_or_else(|e| e.into_inner());
        let mut steps: Vec<String> =
            map.get(workflow_id).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        steps.sort();
        steps
    }
}

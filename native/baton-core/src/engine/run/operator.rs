//! Operator actions on a run being driven: checking each against the state, applying it
//! (pause, resume, skip, retry, continue, stop, kill), and stopping a run.

use super::*;

impl Driver {
    /// Refuses an action the run's state does not allow; gives the step it is about.
    pub(super) fn check(&self, action: &Action) -> Result<Option<usize>, EngineError> {
        let run_refused = |action: &'static str, hint: &str| EngineError::IllegalAction {
            target: format!("run {}", self.run.id),
            action,
            state: if self.stopping.is_some() {
                "stopping".into()
            } else {
                self.run.status.to_string()
            },
            hint: hint.into(),
        };
        if self.stopping.is_some() {
            let name = match action {
                Action::Pause => "pause",
                Action::Resume => "resume",
                Action::Skip(_) => "skip a step of",
                Action::Retry(_) => "retry a step of",
                Action::Continue(_) => "continue a step of",
            };
            return Err(run_refused(name, " (a stopping run only ends)"));
        }
        let step = |id: &str| {
            self.wf.index_of(id).ok_or_else(|| EngineError::UnknownStep {
                run_id: self.run.id.clone(),
                step_id: id.into(),
                hint: crate::error::did_you_mean(
                    id,
                    (0..self.wf.len()).map(|i| self.wf.step(i).id.as_str()),
                ),
            })
        };
        let step_refused = |i: usize, action: &'static str, hint: &str| {
            let state = if self.at_breakpoint.contains(&i) {
                "WAITING at a breakpoint".into()
            } else {
                self.status[i].to_string()
            };
            EngineError::IllegalAction {
                target: format!("step `{}` of run {}", self.wf.step(i).id, self.run.id),
                action,
                state,
                hint: hint.into(),
            }
        };
        match action {
            Action::Pause if self.paused => Err(run_refused("pause", " already")),
            Action::Resume if !self.paused => {
                Err(run_refused("resume", " (only a PAUSED run can be resumed)"))
            }
            Action::Pause | Action::Resume => Ok(None),
            Action::Skip(id) => {
                let i = step(id)?;
                match self.status[i] {
                    StepStatus::Succeeded
                    | StepStatus::Skipped
                    | StepStatus::Stopped
                    | StepStatus::Killed => Err(step_refused(
                        i,
                        "skip",
                        " (only a step not over, or a FAILED one, can be skipped)",
                    )),
                    _ if self.skip_requested.contains_key(&i) => {
                        Err(step_refused(i, "skip", " (it is being skipped already)"))
                    }
                    _ => Ok(Some(i)),
                }
            }
            Action::Retry(id) => {
                let i = step(id)?;
                match self.status[i] {
                    StepStatus::Failed => Ok(Some(i)),
                    _ => Err(step_refused(i, "retry", " (only a FAILED step can be retried)")),
                }
            }
            Action::Continue(id) => {
                let i = step(id)?;
                if self.at_breakpoint.contains(&i) {
                    Ok(Some(i))
                } else {
                    Err(step_refused(i, "continue", ", not at a breakpoint"))
                }
            }
        }
    }

    /// Does a checked action; `reply` is answered once its effect is durable.
    pub(super) fn act(
        &mut self,
        action: Action,
        step: Option<usize>,
        reply: Reply,
    ) -> Result<(), EngineError> {
        let i = step.unwrap_or(0);
        match action {
            Action::Pause | Action::Resume => {
                let pause = matches!(action, Action::Pause);
                self.run.set_status(if pause { RunStatus::Paused } else { RunStatus::Running })?;
                self.paused = pause;
                tracing::info!(run = %self.run.id, status = %self.run.status, "run paused or resumed");
                records::put_run(&mut self.batch, &self.run);
                self.event_run();
            }
            Action::Continue(_) => {
                self.at_breakpoint.remove(&i);
                self.passed.insert(i);
                self.set(i, StepStatus::Ready)?;
                records::put_step(
                    &mut self.batch,
                    &self.run.id,
                    i,
                    &StepRecord::new(StepStatus::Ready, self.attempt[i]),
                );
                self.event_step(i, None);
                if self.completes_inline(i) {
                    self.inline_ready.push(i);
                } else {
                    self.ready.push_front(i);
                }
            }
            Action::Retry(_) => {
                tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, "step retried by an operator");
                self.reopen(i)?;
                self.set(i, StepStatus::Retrying)?;
                let now = self.shared.clock.now_ms();
                let mut record = StepRecord::new(StepStatus::Retrying, self.attempt[i]);
                record.retry_at_ms = Some(now);
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.event_step(i, None);
                self.ready.push_back(i);
            }
            Action::Skip(_) => {
                tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, "step skipped by an operator");
                match self.status[i] {
                    StepStatus::Running | StepStatus::Waiting if self.running.contains_key(&i) => {
                        // Stopped first; skipped when its attempt reports back.
                        if let Some(tokens) = self.running.get(&i) {
                            tokens.cancel.cancel();
                        }
                        self.skip_requested.insert(i, reply);
                        return Ok(());
                    }
                    StepStatus::Failed => self.reopen(i)?,
                    StepStatus::Ready | StepStatus::Retrying => {
                        self.ready.retain(|&s| s != i);
                        self.inline_ready.retain(|&s| s != i);
                        self.blocked.retain(|&s| s != i);
                    }
                    _ => {}
                }
                self.at_breakpoint.remove(&i);
                self.operator_skip(i)?;
                self.complete(i)?;
            }
        }
        self.replies.push(reply);
        Ok(())
    }

    pub(super) fn operator_skip(&mut self, i: usize) -> Result<(), EngineError> {
        self.set(i, StepStatus::Skipped)?;
        self.operator_skipped.insert(i);
        let mut record = StepRecord::new(StepStatus::Skipped, self.attempt[i]);
        record.error = Some("skipped by an operator".into());
        record.ended_ms = Some(self.shared.clock.now_ms());
        record.skipped_by_operator = true;
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, Some("skipped by an operator".into()));
        Ok(())
    }

    /// Undoes the end of FAILED step `i` (retried or skipped by an operator): the run
    /// forgets its failure, and the steps skipped below it are PENDING again, to be
    /// decided once it ends anew. Costs time in the steps below it only.
    pub(super) fn reopen(&mut self, i: usize) -> Result<(), EngineError> {
        self.failures.shift_remove(&i);
        self.ignored.remove(&i);
        self.over -= 1;
        let wf = self.wf.clone();
        let mut work = vec![i];
        while let Some(s) = work.pop() {
            for d in wf.downstream(s) {
                self.remaining[d] += 1;
                if self.status[d] == StepStatus::Skipped && !self.operator_skipped.contains(&d) {
                    self.set(d, StepStatus::Pending)?;
                    self.over -= 1;
                    records::put_step(
                        &mut self.batch,
                        &self.run.id,
                        d,
                        &StepRecord::new(StepStatus::Pending, self.attempt[d]),
                    );
                    self.event_step(d, None);
                    work.push(d);
                }
            }
        }
        Ok(())
    }

    /// Stops the run: running steps are asked to stop; once they have, [`sweep`] ends the rest.
    pub(super) fn begin_stop(&mut self, reason: String) -> Result<(), EngineError> {
        tracing::warn!(run = %self.run.id, %reason, "stopping the run");
        self.stopping = Some(reason);
        for tokens in self.running.values() {
            tokens.cancel.cancel();
        }
        self.ready.clear();
        self.inline_ready.clear();
        self.blocked.clear();
        Ok(())
    }

    /// Ends every step not over: waiting retries and steps at a breakpoint are STOPPED
    /// (KILLED if the run is killed), the others SKIPPED.
    pub(super) fn sweep(&mut self) -> Result<(), EngineError> {
        let end = if self.killed { StepStatus::Killed } else { StepStatus::Stopped };
        for i in 0..self.status.len() {
            match self.status[i] {
                StepStatus::Retrying | StepStatus::Waiting => {
                    self.at_breakpoint.remove(&i);
                    self.set(i, end)?;
                    let mut record = StepRecord::new(end, self.attempt[i]);
                    record.error = self.stopping.clone();
                    record.ended_ms = Some(self.shared.clock.now_ms());
                    records::put_step(&mut self.batch, &self.run.id, i, &record);
                    self.event_step(i, None);
                    self.over += 1;
                }
                StepStatus::Pending | StepStatus::Ready => {
                    let why = self.stopping.clone().unwrap_or_else(|| "the run stopped".into());
                    self.skip(i, &why)?;
                    self.over += 1;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Kills the run: what runs is KILLED at once, without waiting for it to stop; the
    /// rest is swept, and the run ends KILLED.
    pub(super) fn kill(&mut self) -> Result<(), EngineError> {
        if self.killed {
            return Ok(());
        }
        tracing::warn!(run = %self.run.id, "killing the run");
        self.killed = true;
        self.stopped = true;
        if self.stopping.is_none() {
            self.begin_stop("the run was killed".into())?;
        }
        let now = self.shared.clock.now_ms();
        let mut running: Vec<(usize, Tokens)> = self.running.drain().collect();
        running.sort_unstable_by_key(|(i, _)| *i);
        for (i, tokens) in running {
            tokens.kill.cancel();
            self.release(i);
            self.skip_requested.remove(&i);
            self.set(i, StepStatus::Killed)?;
            let mut record = StepRecord::new(StepStatus::Killed, self.attempt[i]);
            record.started_ms = self.started.remove(&i);
            record.ended_ms = Some(now);
            record.error = Some("killed".into());
            records::put_step(&mut self.batch, &self.run.id, i, &record);
            self.event_step(i, Some("killed".into()));
            self.over += 1;
        }
        Ok(())
    }
}

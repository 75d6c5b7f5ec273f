//! Restoring a driver's state from the step records in the store, after a crash or a
//! reopen: finished steps count as over, interrupted attempts are launched again.

use super::*;

impl Driver {
    /// Applies the stored step records: finished steps count as over, a step found RUNNING
    /// is launched again with the same attempt (and so the same idempotency key).
    pub(super) fn restore(&mut self) -> Result<(), EngineError> {
        let mut records = Vec::new();
        // A run not started yet has no step records, but for the steps a restart kept: a
        // fresh iteration costs no read.
        if self.run.status != RunStatus::Created || self.run.restarted_from.is_some() {
            records::scan_steps(self.shared.store.as_ref(), &self.run.id, |i, r| {
                records.push((i, r))
            })?;
        }
        if self.durable_events && self.run.status != RunStatus::Created {
            self.seq = events::next_seq(self.shared.store.as_ref(), &self.run.id)?;
        }
        let mut over = Vec::new();
        let mut relaunch = Vec::new();
        for (i, record) in records {
            if i >= self.status.len() {
                continue;
            }
            self.status[i] = record.status;
            self.attempt[i] = record.attempt;
            match record.status {
                StepStatus::Succeeded => {
                    if !record.outputs.is_empty() {
                        self.outputs.insert(i, record.outputs);
                    }
                    over.push(i);
                }
                StepStatus::Failed => {
                    if record.failure_ignored {
                        self.ignored.insert(i);
                    } else {
                        self.note_failure(i, record.error.as_deref().unwrap_or("failed"));
                        if self.wf.step(i).failure_mode == FailureMode::FailImmediately {
                            self.stopping.get_or_insert_with(|| {
                                format!("step `{}` failed", self.wf.step(i).id)
                            });
                        }
                    }
                    over.push(i);
                }
                StepStatus::Skipped => {
                    if record.skipped_by_operator {
                        self.operator_skipped.insert(i);
                    }
                    over.push(i);
                }
                StepStatus::Stopped | StepStatus::Killed => over.push(i),
                // A step stays at its breakpoint until it is continued.
                StepStatus::Waiting if record.waiting_for.as_deref() == Some(AT_BREAKPOINT) => {
                    self.at_breakpoint.insert(i);
                }
                StepStatus::Running | StepStatus::Waiting => {
                    let started = record.started_ms.unwrap_or_else(|| self.shared.clock.now_ms());
                    relaunch.push((i, record.attempt.max(1), started));
                }
                StepStatus::Retrying => {
                    self.started.insert(i, record.started_ms.unwrap_or(0));
                    self.timers.push((i, record.retry_at_ms.unwrap_or(0)));
                }
                // Only a step continued from a breakpoint has a READY record.
                StepStatus::Ready => {
                    self.passed.insert(i);
                    if self.completes_inline(i) {
                        self.inline_ready.push(i);
                    } else {
                        self.ready.push_back(i);
                    }
                }
                StepStatus::Pending => {}
            }
        }
        for i in over {
            self.over += 1;
            for d in self.wf.clone().downstream(i) {
                self.remaining[d] -= 1;
            }
        }
        if self.stopping.is_some() {
            // The run was stopping when the process died: what was running is stopped.
            for (i, attempt, _) in relaunch.drain(..) {
                self.status[i] = StepStatus::Stopped;
                let mut record = StepRecord::new(StepStatus::Stopped, attempt);
                record.error = self.stopping.clone();
                record.ended_ms = Some(self.shared.clock.now_ms());
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.over += 1;
            }
        }
        for (i, attempt, started_ms) in relaunch {
            tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, attempt, "relaunching a step that was running");
            // It was running: it takes its tag slots whatever the limits.
            let tags = &self.wf.step(i).options().tags;
            if !tags.is_empty() {
                let holder = self.holder(i, attempt);
                self.shared.limits.force_acquire(&self.shared, tags, holder);
                self.holding.insert(i, attempt);
            }
            let tokens = Tokens::new();
            self.started.insert(i, started_ms);
            self.running.insert(i, tokens.clone());
            self.launches.push(Launch { step: i, attempt, started_ms, tokens });
        }
        for i in 0..self.status.len() {
            if self.status[i] == StepStatus::Pending && self.settle(i, None)? {
                self.complete(i)?;
            }
        }
        Ok(())
    }
}

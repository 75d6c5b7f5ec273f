//! Readiness: which PENDING steps become READY, are skipped or fail, as their upstream
//! steps end (by counters: a step's end costs time in its out-degree only), and which READY
//! steps start, within `max_parallel`, tag limits and breakpoints.

use super::*;

/// How a step that is over counts for the steps below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// SUCCEEDED, or FAILED with `ignore_failure`.
    Success,
    Failure,
    /// SKIPPED, STOPPED or KILLED.
    NotRun,
}

/// What becomes of a PENDING step.
enum Decision {
    Wait,
    Run,
    Skip(String),
    /// It cannot be decided (its `when` does not evaluate): the step fails.
    Fail(String),
}

impl Driver {
    pub(super) fn can_schedule(&self) -> bool {
        (!self.paused && !self.inline_ready.is_empty())
            || (!self.paused
                && self.stopping.is_none()
                && !self.ready.is_empty()
                && self.running.len() < self.max_parallel)
            || (self.stopping.is_some() && self.running.is_empty() && self.over < self.status.len())
    }

    /// Completes inline steps and starts others while there are free slots.
    pub(super) fn schedule(&mut self) -> Result<(), EngineError> {
        if self.stopping.is_some() {
            if self.running.is_empty() {
                self.sweep()?;
            }
            return Ok(());
        }
        if self.paused {
            return Ok(());
        }
        let generation = self.shared.breakpoints.generation();
        if generation != self.breakpoints_seen {
            self.breakpoints_seen = generation;
            self.breakpoints = self.shared.breakpoints.steps_of(&self.wf);
        }
        while self.batch.len() < MAX_BATCH {
            if let Some(i) = self.inline_ready.pop() {
                if self.stops_at_breakpoint(i) {
                    self.stop_at_breakpoint(i)?;
                    continue;
                }
                let now = self.shared.clock.now_ms();
                if let Err(error) = self.emit_signals(i) {
                    self.set(i, StepStatus::Running)?;
                    self.attempt[i] = 1;
                    self.finished(i, 1, StepOutcome::failure(error), false)?;
                    continue;
                }
                self.set(i, StepStatus::Succeeded)?;
                let mut record = StepRecord::new(StepStatus::Succeeded, 1);
                record.started_ms = Some(now);
                record.ended_ms = Some(now);
                self.attempt[i] = 1;
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.event_step(i, None);
                self.complete(i)?;
                continue;
            }
            if self.running.len() >= self.max_parallel {
                break;
            }
            let Some(i) = self.ready.pop_front() else { break };
            if !matches!(self.status[i], StepStatus::Ready | StepStatus::Retrying) {
                // Queued twice (a retry an operator asked for and a due timer): once is enough.
                continue;
            }
            if self.stops_at_breakpoint(i) {
                self.stop_at_breakpoint(i)?;
                continue;
            }
            if self.status[i] == StepStatus::Ready && self.served_from_cache(i)? {
                continue;
            }
            // Costs nothing for a step without tags.
            let tags = &self.wf.step(i).options().tags;
            if !tags.is_empty() && !self.holding.contains_key(&i) {
                match self.shared.limits.try_acquire(tags) {
                    Take::Taken => {}
                    Take::Full => {
                        if self.slots.is_none() {
                            // A slot freed since the try is seen at the next wait.
                            let mut rx = self.shared.limits.subscribe();
                            rx.mark_changed();
                            self.slots = Some(rx);
                        }
                        self.blocked.push_back(i);
                        continue;
                    }
                    Take::Ask => {
                        self.ask_slots(i);
                        continue;
                    }
                }
                self.holding.insert(i, self.attempt[i] + 1);
            }
            let attempt = self.attempt[i] + 1;
            self.launch(i, attempt)?;
        }
        Ok(())
    }

    /// Asks the store for the tag slots of step `i`; the driver hears when it has them.
    fn ask_slots(&mut self, i: usize) {
        if self.asking.contains_key(&i) {
            return;
        }
        let holder = self.holder(i, self.attempt[i] + 1);
        let (shared, tx) = (self.shared.clone(), self.tx.clone());
        let tags = self.wf.step(i).options().tags.clone();
        let task = tokio::spawn(async move {
            if take_slots(&shared, &tags, holder, false).await {
                let _ = tx.send(Msg::SlotsTaken { step: i });
            }
        });
        self.asking.insert(i, task.abort_handle());
    }

    /// The slots of step `i` came: it launches, unless it no longer wants them.
    pub(super) fn slots_taken(&mut self, i: usize) {
        self.asking.remove(&i);
        // Asked for the attempt after the last (see `ask_slots`).
        self.holding.insert(i, self.attempt[i] + 1);
        let wanted = self.stopping.is_none()
            && matches!(self.status[i], StepStatus::Ready | StepStatus::Retrying);
        match wanted {
            true => self.ready.push_front(i),
            false => self.release(i),
        }
    }

    /// Step `i` of this run, at `attempt`, as a holder of tag slots.
    pub(super) fn holder(&self, i: usize, attempt: u32) -> Holder {
        Holder { run: self.run.id.clone(), step: i as u32, attempt }
    }

    /// Whether step `i`, about to launch for the first time, stops at a breakpoint.
    fn stops_at_breakpoint(&self, i: usize) -> bool {
        !self.breakpoints.is_empty()
            && self.status[i] == StepStatus::Ready
            && self.breakpoints.contains(&i)
            && !self.passed.contains(&i)
    }

    fn stop_at_breakpoint(&mut self, i: usize) -> Result<(), EngineError> {
        self.set(i, StepStatus::Waiting)?;
        self.at_breakpoint.insert(i);
        let mut record = StepRecord::new(StepStatus::Waiting, self.attempt[i]);
        record.waiting_for = Some(AT_BREAKPOINT.into());
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, Some(AT_BREAKPOINT.into()));
        tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, "step stopped at a breakpoint");
        Ok(())
    }

    /// Marks step `i` over and settles the steps below it whose trigger rule can now be
    /// decided; those that end without running (skipped, failed) are marked over in turn.
    pub(super) fn complete(&mut self, i: usize) -> Result<(), EngineError> {
        let wf = self.wf.clone();
        let mut work = vec![i];
        while let Some(s) = work.pop() {
            self.over += 1;
            let outcome = self.outcome(s);
            for d in wf.downstream(s) {
                self.remaining[d] -= 1;
                if self.status[d] == StepStatus::Pending && self.settle(d, Some(outcome))? {
                    work.push(d);
                }
            }
        }
        Ok(())
    }

    /// How a step that is over counts for the steps below it.
    pub(super) fn outcome(&self, i: usize) -> Outcome {
        match self.status[i] {
            StepStatus::Succeeded => Outcome::Success,
            StepStatus::Failed if self.ignored.contains(&i) => Outcome::Success,
            StepStatus::Failed => Outcome::Failure,
            StepStatus::Skipped if self.operator_skipped.contains(&i) => Outcome::Success,
            _ => Outcome::NotRun,
        }
    }

    /// Acts on the decision for a PENDING step; returns whether the step is now over
    /// without having run.
    pub(super) fn settle(&mut self, i: usize, just: Option<Outcome>) -> Result<bool, EngineError> {
        match self.decide(i, just) {
            Decision::Wait => Ok(false),
            Decision::Run => self.make_ready(i).map(|()| false),
            Decision::Skip(why) => self.skip(i, &why).map(|()| true),
            Decision::Fail(error) => {
                self.set(i, StepStatus::Ready)?;
                self.set(i, StepStatus::Failed)?;
                let mut record = StepRecord::new(StepStatus::Failed, 0);
                record.error = Some(error.clone());
                record.ended_ms = Some(self.shared.clock.now_ms());
                record.failure_ignored = self.wf.step(i).failure_mode == FailureMode::IgnoreFailure;
                records::put_step(&mut self.batch, &self.run.id, i, &record);
                self.event_step(i, Some(error.clone()));
                self.failed(i, &error)?;
                Ok(true)
            }
        }
    }

    /// The step's trigger rule, then its `when`. `just` is the outcome of the upstream
    /// step that just ended, if any.
    fn decide(&self, i: usize, just: Option<Outcome>) -> Decision {
        let step = self.wf.step(i);
        let ups = || self.wf.upstream(i).map(|u| (u, self.outcome(u)));
        let fired = |want: Outcome| {
            just == Some(want)
                || (just.is_none() && ups().any(|(u, o)| self.status[u].is_terminal() && o == want))
        };
        let early = match step.trigger {
            Trigger::OneSuccess => fired(Outcome::Success),
            Trigger::OneFailed => fired(Outcome::Failure),
            _ => false,
        };
        if !early {
            if self.remaining[i] > 0 {
                return Decision::Wait;
            }
            let id = |u: usize| &self.wf.step(u).id;
            let blocker = match step.trigger {
                Trigger::AllSuccess => ups()
                    .find(|(_, o)| *o != Outcome::Success)
                    .map(|(u, _)| format!("upstream step `{}` did not succeed", id(u))),
                Trigger::AllDone => None,
                Trigger::OneSuccess => Some("no upstream step succeeded".into()),
                Trigger::OneFailed => Some("no upstream step failed".into()),
                Trigger::NoneFailed => ups()
                    .find(|(_, o)| *o == Outcome::Failure)
                    .map(|(u, _)| format!("upstream step `{}` failed", id(u))),
                Trigger::NoneFailedMinOneSuccess => ups()
                    .find(|(_, o)| *o == Outcome::Failure)
                    .map(|(u, _)| format!("upstream step `{}` failed", id(u)))
                    .or_else(|| {
                        let any = ups().any(|(_, o)| o == Outcome::Success);
                        (!any).then(|| "no upstream step succeeded".into())
                    }),
            };
            if let Some(why) = blocker {
                return Decision::Skip(why);
            }
        }
        let Some(when) = &self.wf.plan(i).when else { return Decision::Run };
        match when.evaluate(&RunScope { driver: self, attempt: None }) {
            Ok(Value::Bool(true)) => Decision::Run,
            Ok(Value::Bool(false)) => Decision::Skip(format!(
                "`when` is false: {}",
                step.options().when.as_deref().unwrap_or_default()
            )),
            Ok(other) => Decision::Fail(format!("when: expected a boolean, not {other}")),
            Err(e) => Decision::Fail(format!("when: {e}")),
        }
    }

    fn make_ready(&mut self, i: usize) -> Result<(), EngineError> {
        self.set(i, StepStatus::Ready)?;
        let inline = self.completes_inline(i);
        if inline {
            self.inline_ready.push(i);
        } else {
            self.ready.push_back(i);
        }
        Ok(())
    }

    pub(super) fn skip(&mut self, i: usize, why: &str) -> Result<(), EngineError> {
        self.set(i, StepStatus::Skipped)?;
        let mut record = StepRecord::new(StepStatus::Skipped, self.attempt[i]);
        record.error = Some(format!("skipped: {why}"));
        record.ended_ms = Some(self.shared.clock.now_ms());
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, None);
        Ok(())
    }
}

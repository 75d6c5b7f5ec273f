//! Attempts: launching a READY step (its context, with `${...}` substituted), running it
//! on its own task under its timeout, and recording its end: success, retry or failure.

use super::*;

/// An attempt to start once the batch that records it is durable.
pub(super) struct Launch {
    pub(super) step: usize,
    pub(super) attempt: u32,
    pub(super) started_ms: u64,
    pub(super) tokens: Tokens,
}

/// What names mean in a step's fields: the run's parameters, finished steps' outputs,
/// then names from enclosing runs.
pub(super) struct RunScope<'a> {
    pub(super) driver: &'a Driver,
    /// The attempt the fields are for, once it is known (not in `when`).
    pub(super) attempt: Option<u32>,
}

impl Scope for RunScope<'_> {
    fn name(&self, name: &str) -> Option<Value> {
        let d = self.driver;
        if let Some(v) = d.params.get(name) {
            return Some(v.clone());
        }
        let Some(step) = d.wf.index_of(name) else {
            return d.frame.outer.name(name);
        };
        let outputs = d
            .outputs
            .get(&step)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Some(Value::Object(outputs))
    }

    fn now_ms(&self) -> u64 {
        self.driver.shared.clock.now_ms()
    }

    fn run(&self) -> Option<&RunContext> {
        Some(&self.driver.context)
    }

    fn attempt(&self) -> Option<u32> {
        self.attempt
    }
}

/// An attempt ready to run: its kind, its context, and the engine for a flow kind.
type Prepared = (Arc<dyn StepKind>, StepContext, Option<Nest>);

impl Driver {
    /// Gives back the tag slots step `i` holds.
    pub(super) fn release(&mut self, i: usize) {
        if let Some(attempt) = self.holding.remove(&i) {
            let holder = self.holder(i, attempt);
            self.shared.limits.release(&self.shared, &self.wf.step(i).options().tags, holder);
        }
    }

    pub(super) fn launch(&mut self, i: usize, attempt: u32) -> Result<(), EngineError> {
        let now = self.shared.clock.now_ms();
        self.set(i, StepStatus::Running)?;
        self.attempt[i] = attempt;
        self.started.insert(i, now);
        let mut record = StepRecord::new(StepStatus::Running, attempt);
        record.started_ms = Some(now);
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, None);
        let tokens = Tokens::new();
        self.running.insert(i, tokens.clone());
        self.launches.push(Launch { step: i, attempt, started_ms: now, tokens });
        Ok(())
    }

    pub(super) fn finished(
        &mut self,
        i: usize,
        attempt: u32,
        outcome: StepOutcome,
        retryable: bool,
    ) -> Result<(), EngineError> {
        let now = self.shared.clock.now_ms();
        let wf = self.wf.clone();
        let step = wf.step(i);
        // Nothing a step gives back is stored or shown with a secret in it.
        let outcome = self.mask.outcome(outcome);
        let plan = wf.plan(i);
        // Why no retry can mend this failure, when the policy says none can.
        let final_because = match (outcome.class, plan.retry) {
            (_, None) => None,
            (FailureClass::Retryable, _) => None,
            (FailureClass::Exit(code), Some(r)) => r
                .is_final_exit(code)
                .then(|| format!("exit code {code} is final (retry.final_exit_codes)")),
            (FailureClass::Final, Some(_)) => Some("the step said no retry can mend it".to_owned()),
            (FailureClass::Timeout, Some(r)) => {
                (!r.on_timeout).then(|| "a timeout is not retried (retry.on_timeout)".to_owned())
            }
        };
        let retryable = retryable && final_because.is_none();
        let mut record = StepRecord::new(StepStatus::Succeeded, attempt);
        record.started_ms = self.started.remove(&i);
        record.ended_ms = Some(now);
        record.log_tail = outcome.log_tail;
        let result = outcome.result.and_then(|outputs| {
            let size = serde_json::to_vec(&outputs).map_or(0, |b| b.len());
            if size > MAX_OUTPUT_BYTES {
                Err(format!("the step's outputs take {size} bytes; the limit is {MAX_OUTPUT_BYTES} bytes per step"))
            } else {
                Ok(outputs)
            }
        });
        let error = match result {
            Ok(outputs) => {
                if !outputs.is_empty() {
                    self.outputs.insert(i, outputs.clone());
                }
                match self.emit_signals(i) {
                    Ok(()) => {
                        self.keep_in_cache(i, &outputs);
                        self.set(i, StepStatus::Succeeded)?;
                        record.outputs = outputs;
                        self.remember(i, &record, None);
                        records::put_step(&mut self.batch, &self.run.id, i, &record);
                        self.event_step(i, None);
                        return self.complete(i);
                    }
                    Err(error) => {
                        self.outputs.remove(&i);
                        error
                    }
                }
            }
            Err(error) => error,
        };
        let error = match &final_because {
            Some(why) if attempt < plan.max_attempts() => format!("{error}; not retried: {why}"),
            _ => error,
        };
        record.error = Some(error.clone());
        if self.stopping.is_some() {
            record.status = StepStatus::Stopped;
            self.set(i, StepStatus::Stopped)?;
            records::put_step(&mut self.batch, &self.run.id, i, &record);
            self.event_step(i, Some(error));
            self.over += 1;
            return Ok(());
        }
        if retryable && attempt < plan.max_attempts() {
            let delay = plan.retry.map_or(Duration::ZERO, |r| r.delay_after(attempt));
            record.status = StepStatus::Retrying;
            record.ended_ms = None;
            record.retry_at_ms = Some(now + delay.as_millis() as u64);
            self.set(i, StepStatus::Retrying)?;
            records::put_step(&mut self.batch, &self.run.id, i, &record);
            tracing::info!(run = %self.run.id, step = %step.id, attempt, ?delay, %error, "attempt failed; retrying");
            self.timers.push((i, now + delay.as_millis() as u64));
            self.event_step(i, Some(error));
            return Ok(());
        }
        record.status = StepStatus::Failed;
        self.remember(i, &record, Some(&error));
        let mode = step.failure_mode;
        record.failure_ignored = mode == FailureMode::IgnoreFailure;
        self.set(i, StepStatus::Failed)?;
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        tracing::warn!(run = %self.run.id, step = %step.id, attempt, %error, "step failed");
        self.event_step(i, Some(error.clone()));
        self.failed(i, &error)?;
        self.complete(i)
    }

    /// Adds the end of step `i`, as `record` says, to the step's history.
    fn remember(&mut self, i: usize, record: &StepRecord, error: Option<&str>) {
        let now = self.shared.clock.now_ms();
        let outcome = crate::engine::history::Outcome {
            run_id: self.run.id.clone(),
            ended_ms: now,
            duration_ms: now.saturating_sub(record.started_ms.unwrap_or(now)),
            succeeded: error.is_none(),
            attempts: record.attempt,
            signature: error.map(crate::engine::history::signature),
        };
        self.shared.history.record(&self.run.workflow_id, &self.wf.step(i).id, outcome);
    }

    /// Writes the signals step `i` sends on success; its own outputs are visible to them.
    pub(super) fn emit_signals(&mut self, i: usize) -> Result<(), String> {
        let step = self.wf.step(i);
        if step.flow().emit_signals.is_empty() {
            return Ok(());
        }
        let scope = RunScope { driver: self, attempt: Some(self.attempt[i]) };
        let mut signals = Vec::with_capacity(step.flow().emit_signals.len());
        let planned = &self.wf.plan(i).emit_params;
        for (n, (emit, templates)) in step.flow().emit_signals.iter().zip(planned).enumerate() {
            let params = templates
                .iter()
                .map(|(k, t)| {
                    Ok((
                        k.clone(),
                        t.evaluate(&scope)
                            .map_err(|e| format!("emit_signals.{n}.params.{k}: {e}"))?,
                    ))
                })
                .collect::<Result<IndexMap<_, _>, String>>()?;
            signals.push(SignalRecord {
                id: crate::engine::next_run_id(),
                name: emit.name.clone(),
                params,
                sent_ms: self.shared.clock.now_ms(),
                source: Some(format!("{}/{}", self.run.id, step.id)),
            });
        }
        for signal in &signals {
            tracing::info!(run = %self.run.id, step = %step.id, signal = %signal.name, "signal emitted");
            records::put_signal(&mut self.batch, signal);
        }
        self.emitted = true;
        Ok(())
    }

    /// What a FAILED step does to the run, by its failure mode.
    pub(super) fn failed(&mut self, i: usize, error: &str) -> Result<(), EngineError> {
        match self.wf.step(i).failure_mode {
            FailureMode::IgnoreFailure => {
                self.ignored.insert(i);
                Ok(())
            }
            FailureMode::FailAfterRunning => {
                self.note_failure(i, error);
                Ok(())
            }
            FailureMode::FailImmediately => {
                self.note_failure(i, error);
                let id = &self.wf.step(i).id;
                self.begin_stop(format!("step `{id}` failed"))
            }
        }
    }

    pub(super) fn note_failure(&mut self, i: usize, error: &str) {
        let message = format!("step `{}` failed: {error}", self.wf.step(i).id);
        self.failures.entry(i).or_insert(message);
    }

    /// Why the run failed, if it did.
    pub(super) fn run_error(&self) -> Option<String> {
        self.first_error.clone().or_else(|| self.failures.first().map(|(_, e)| e.clone()))
    }

    /// Starts an attempt on its own task; it reports back with [`Msg::Finished`].
    pub(super) fn spawn_attempt(&self, launch: Launch) {
        let Launch { step: i, attempt, started_ms, tokens } = launch;
        let cancel = tokens.cancel.clone();
        let step = self.wf.step(i);
        let tx = self.tx.clone();
        let (kind, ctx, nest) = match self.context(i, attempt, started_ms, tokens) {
            Ok(ready) => ready,
            Err(message) => {
                let outcome = StepOutcome::failure(message);
                let _ = tx.send(Msg::Finished { step: i, attempt, outcome, retryable: false });
                return;
            }
        };
        // A kind that takes no params leaves them to the steps after it, as outputs.
        let takes_params = self
            .declared_kind(step)
            .is_none_or(|k| k.fields().contains(&crate::steps::Field::Params));
        let carried = (!takes_params).then(|| ctx.step_params.clone()).filter(|p| !p.is_empty());
        let clock = self.shared.clock.clone();
        let timeout = self.wf.plan(i).timeout;
        let outside =
            self.shared.activity.as_ref().filter(|_| kind.works_outside()).map(|a| a.busy());
        let flow_attempt = match nest {
            Some(nest) => flow::attempt(&step.kind, nest, ctx),
            None => Err(Box::new(ctx)),
        };
        self.shared.attempts.spawn(Activity::track(self.shared.activity.as_ref(), async move {
            let _outside = outside;
            // A panic in the kind fails the step only.
            let mut work = std::pin::pin!(AssertUnwindSafe(async move {
                match flow_attempt {
                    Ok(attempt) => attempt.await,
                    Err(ctx) => kind.run(*ctx).await,
                }
            })
            .catch_unwind());
            let deadline = timeout.map(|t: Duration| clock.now_ms() + t.as_millis() as u64);
            let timed_out = async {
                match deadline {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let ended = tokio::select! {
                ended = &mut work => ended,
                _ = timed_out => {
                    cancel.cancel();
                    let ended = work.await;
                    let log_tail = ended.ok().and_then(|o| o.log_tail);
                    let limit = timeout.map(crate::model::format_duration).unwrap_or_default();
                    let failure = StepOutcome::failure(format!("timed out after {limit}"));
                    Ok(StepOutcome { log_tail, class: FailureClass::Timeout, ..failure })
                }
            };
            let mut outcome = ended.unwrap_or_else(|panic| {
                StepOutcome::failure(format!(
                    "the step panicked: {}",
                    crate::error::panic_text(panic)
                ))
            });
            if let (Some(params), Ok(outputs)) = (carried, outcome.result.as_mut()) {
                // The step's own outputs win.
                for (k, v) in params {
                    outputs.entry(k).or_insert(v);
                }
            }
            let _ = tx.send(Msg::Finished { step: i, attempt, outcome, retryable: true });
        }));
    }

    /// What runs step `i`: its override if the host set one, else its declared kind.
    pub(super) fn kind(&self, i: usize) -> Option<Arc<dyn StepKind>> {
        let step = self.wf.step(i);
        let overrides = self.shared.overrides.read().unwrap_or_else(|e| e.into_inner());
        if !overrides.is_empty() {
            if let Some(kind) = overrides.get(&(self.run.workflow_id.clone(), step.id.clone())) {
                return Some(kind.clone());
            }
        }
        drop(overrides);
        self.declared_kind(step)
    }

    /// The kind step `step` declares.
    /// Whether step `i` completes inside the scheduler, not launched: an inline kind's, with
    /// no `params` to evaluate for the steps after it.
    pub(super) fn completes_inline(&self, i: usize) -> bool {
        self.kind(i).is_some_and(|k| k.is_inline()) && self.wf.plan(i).params.is_empty()
    }

    fn declared_kind(&self, step: &StepDef) -> Option<Arc<dyn StepKind>> {
        self.shared.kinds.read().unwrap_or_else(|e| e.into_inner()).get(&step.kind).cloned()
    }

    /// The context of an attempt, with `${...}` substituted.
    pub(super) fn context(
        &self,
        i: usize,
        attempt: u32,
        started_ms: u64,
        tokens: Tokens,
    ) -> Result<Prepared, String> {
        let step: &StepDef = self.wf.step(i);
        let kind = self
            .kind(i)
            .ok_or_else(|| format!("no step type `{}` is registered in this engine", step.kind))?;
        let scope = RunScope { driver: self, attempt: Some(attempt) };
        let plan = self.wf.plan(i);
        // Values reach a command as data: in variables the code refers to, never as code.
        let command = plan
            .command
            .as_ref()
            .map(|t| crate::steps::render_command(t, &scope).map_err(|e| format!("command: {e}")))
            .transpose()?;
        let mut env = plan
            .env
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.render(&scope).map_err(|e| format!("env.{k}: {e}"))?)))
            .collect::<Result<IndexMap<_, _>, String>>()?;
        let command = command.map(|c| {
            env.extend(c.values);
            c.code
        });
        // The code of a command is visible to every user (`ps`); values travel in its
        // environment, except in a quoted here-document, where they are written in.
        if command.as_deref().is_some_and(|code| self.mask.finds(code)) {
            return Err("command: a secret cannot be written into a quoted here-document (<<'EOF'): the command's text is visible to other users; use <<EOF".into());
        }
        // Values reach an http request as data too: encoded into its URL, JSON in its body.
        let request = plan.http.as_ref().map(|h| h.render(&scope, &|v| self.mask.finds(v)));
        let request = request.transpose()?;
        let step_params = plan
            .params
            .iter()
            .map(|(k, t)| {
                Ok((k.clone(), t.evaluate(&scope).map_err(|e| format!("params.{k}: {e}"))?))
            })
            .collect::<Result<IndexMap<_, _>, String>>()?;
        // The engine's own kinds work with it, unless a host put a stand-in in their place.
        let declared = || self.declared_kind(step).is_some_and(|d| Arc::ptr_eq(&kind, &d));
        let nest = (flow::is_flow(&step.kind) && declared()).then(|| {
            let (names, steps) = self.names();
            let names = Names::new(names, steps, self.shared.clock.clone());
            Nest::new(
                self.shared.clone(),
                self.wf.clone(),
                i,
                self.run.id.clone(),
                attempt,
                self.frame.depth,
                Arc::new(names),
                self.context.clone(),
                self.mask.clone(),
                tokens.kill.clone(),
                tokens.abandon.clone(),
                self.frame.fence.clone(),
            )
        });
        let mut inputs: IndexMap<String, Outputs> = IndexMap::new();
        let mut params = self.params.clone();
        // In a loop body, a host step sees the names of the runs around it, as `${...}` does.
        // Only a kind that reads them pays for the copy: it grows with the run around it.
        let outer = &self.frame.outer;
        if kind.reads_names() && !outer.values().is_empty() {
            let mut all = IndexMap::new();
            for (name, value) in outer.values() {
                if !outer.is_step(name) {
                    all.insert(name.clone(), value.clone());
                } else if let Value::Object(outputs) = value {
                    let outputs = outputs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    inputs.insert(name.clone(), outputs);
                }
            }
            all.extend(self.params.iter().map(|(k, v)| (k.clone(), v.clone())));
            params = Arc::new(all);
        }
        inputs.extend(
            self.wf.upstream(i).filter_map(|u| {
                self.outputs.get(&u).map(|o| (self.wf.step(u).id.clone(), o.clone()))
            }),
        );
        let ctx = StepContext {
            run_id: self.run.id.clone(),
            workflow_id: self.run.workflow_id.clone(),
            step_id: step.id.clone(),
            attempt,
            idempotency_key: format!("{}/{}/{}", self.run.id, step.id, attempt),
            params,
            inputs,
            command,
            env,
            step_params,
            duration: plan.duration,
            request,
            started_ms,
            cancel: tokens.cancel,
            kill: tokens.kill,
            clock: self.shared.clock.clone(),
            engine_id: self.shared.member.id.clone(),
            launch: {
                static LAUNCHES: std::sync::atomic::AtomicU64 =
                    std::sync::atomic::AtomicU64::new(0);
                LAUNCHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            scratch_root: self.shared.scratch_root.clone(),
            status: {
                let tx = self.tx.clone();
                StatusHandle::new(move |reason| {
                    let _ = tx.send(Msg::Waiting { step: i, attempt, reason });
                })
            },
        };
        Ok((kind, ctx, nest))
    }

    /// Every name the run's steps may see, for a step that evaluates expressions while it
    /// runs: enclosing runs' names, then parameters, then finished steps' outputs.
    /// Which of them are steps comes with them.
    fn names(&self) -> (IndexMap<String, Value>, std::collections::HashSet<String>) {
        let outer = &self.frame.outer;
        let mut names = outer.values().clone();
        let mut steps: std::collections::HashSet<String> =
            names.keys().filter(|n| outer.is_step(n)).cloned().collect();
        for (k, v) in self.params.iter() {
            steps.remove(k);
            names.insert(k.clone(), v.clone());
        }
        for (&i, outputs) in &self.outputs {
            let id = self.wf.step(i).id.clone();
            names.insert(id.clone(), outputs_value(outputs.clone()));
            steps.insert(id);
        }
        (names, steps)
    }
}

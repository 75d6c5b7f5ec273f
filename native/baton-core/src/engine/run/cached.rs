//! The result cache, as the driver uses it (see `engine/cache.rs`): a READY step with
//! `cache` is looked up before it launches, and served if a live entry has its key; a step
//! that missed keeps its success under that key, in the batch of its SUCCEEDED record.

use super::*;
use crate::engine::cache::{self, CachedFrom, Entry, Keyed};

impl Driver {
    /// Whether READY step `i` was served from the cache: then it is SUCCEEDED, as attempt
    /// 1 (the next attempt), with the outputs of the success the entry keeps. A step
    /// without `cache` is never looked up.
    pub(super) fn served_from_cache(&mut self, i: usize) -> Result<bool, EngineError> {
        if self.wf.plan(i).cache.is_none() {
            return Ok(false);
        }
        let Some(key) = self.cache_key(i) else { return Ok(false) };
        let now = self.shared.clock.now_ms();
        let entry = cache::lookup(self.shared.store.as_ref(), &key, now).unwrap_or_else(|e| {
            tracing::warn!(run = %self.run.id, step = %self.wf.step(i).id, error = %e, "the result cache could not be read; the step runs");
            None
        });
        let Some(Entry { outputs, from, .. }) = entry else {
            self.cache_keys.insert(i, key);
            return Ok(false);
        };
        let before = self.attempt[i];
        let attempt = before + 1;
        self.attempt[i] = attempt;
        if !outputs.is_empty() {
            self.outputs.insert(i, outputs.clone());
        }
        if let Err(error) = self.emit_signals(i) {
            // Its launch meets the same error, and fails the step with it.
            tracing::debug!(run = %self.run.id, %error, "a cached step's signals cannot be sent");
            self.outputs.remove(&i);
            self.attempt[i] = before;
            self.cache_keys.insert(i, key);
            return Ok(false);
        }
        // Slots it was given while it waited for them are not needed.
        self.release(i);
        self.set(i, StepStatus::Succeeded)?;
        let mut record = StepRecord::new(StepStatus::Succeeded, attempt);
        (record.started_ms, record.ended_ms) = (Some(now), Some(now));
        record.outputs = outputs;
        let note = format!("cached: from run {}, step {}", from.run_id, from.step_id);
        tracing::info!(run = %self.run.id, step = %self.wf.step(i).id, from = %from.run_id, "step served from the result cache");
        record.cached_from = Some(from);
        records::put_step(&mut self.batch, &self.run.id, i, &record);
        self.event_step(i, Some(note));
        self.complete(i)?;
        Ok(true)
    }

    /// Puts the success of step `i`, with `outputs`, in the cache, if the step has `cache`:
    /// in the batch of its SUCCEEDED record.
    pub(super) fn keep_in_cache(&mut self, i: usize, outputs: &Outputs) {
        let Some(ttl) = self.wf.plan(i).cache.as_ref().map(|c| c.ttl) else { return };
        // A step relaunched after a crash was not looked up here: its key is made again.
        let Some(key) = self.cache_keys.remove(&i).or_else(|| self.cache_key(i)) else {
            return;
        };
        let now = self.shared.clock.now_ms();
        let entry = Entry {
            outputs: outputs.clone(),
            from: CachedFrom { run_id: self.run.id.clone(), step_id: self.wf.step(i).id.clone() },
            created_ms: now,
            expires_ms: now.saturating_add(ttl.as_millis() as u64),
        };
        cache::put(&mut self.batch, key, &entry);
    }

    /// The store key of step `i`'s entry: its user key rendered, or its fields as its first
    /// attempt sees them; none if they do not render (its launch then fails saying why).
    fn cache_key(&self, i: usize) -> Option<Vec<u8>> {
        let plan = self.wf.plan(i).cache.as_ref()?;
        let step = self.wf.step(i);
        let definition = serde_json::to_vec(step).ok()?;
        let digest = match &plan.key {
            Some(template) => {
                let text = template.render(&RunScope { driver: self, attempt: Some(1) }).ok()?;
                cache::digest(&step.kind, &definition, Keyed::User(&text))
            }
            None => {
                let now = self.shared.clock.now_ms();
                let (kind, ctx, _) = self.context(i, 1, now, Tokens::new()).ok()?;
                let mut fields = serde_json::json!({
                    "command": ctx.command,
                    "env": ctx.env,
                    "params": ctx.step_params,
                    "duration_ms": ctx.duration.map(|d| d.as_millis() as u64),
                    "request": ctx.request.as_ref().map(|r| r.key_value()),
                });
                // A host's kind reads the run's params and its inputs; the built-in kinds
                // read only their fields, rendered above.
                if kind.reads_names() {
                    fields["run_params"] = serde_json::to_value(&*ctx.params).ok()?;
                    fields["inputs"] = serde_json::to_value(&ctx.inputs).ok()?;
                }
                cache::digest(&step.kind, &definition, Keyed::Fields(&fields))
            }
        };
        Some(cache::entry_key(&self.run.workflow_id, &step.id, &digest))
    }
}

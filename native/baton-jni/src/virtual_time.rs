//! Engines on a virtual clock, for tests: time moves only when Java says so, one timer at a
//! time, and each move returns once the engine has reacted to what it woke. How the engine
//! knows it has reacted is [`baton_core::activity`]; this module adds the work it cannot
//! see: attempts in the hands of Java (counted by the task queue) and child processes.

use crate::error::BridgeError;
use baton_core::activity::Activity;
use baton_core::clock::{Clock, VirtualClock};
use baton_core::model::StepDef;
use baton_core::steps::{Field, FieldProblem, Shell, StepContext, StepFuture, StepKind};
use baton_core::{Engine, EngineBuilder};
use std::sync::Arc;
use std::time::Duration;

/// The clock of an engine opened on virtual time, and its work in motion.
pub struct VirtualTime {
    clock: VirtualClock,
    activity: Arc<Activity>,
}

impl VirtualTime {
    pub fn starting_at(start_ms: u64) -> Self {
        VirtualTime { clock: VirtualClock::starting_at(start_ms), activity: Activity::new() }
    }

    pub fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }

    /// `builder` on this clock, counting work in motion, shell commands included.
    pub fn configure(&self, builder: EngineBuilder) -> EngineBuilder {
        let shell = OutsideWork { kind: Arc::new(Shell), activity: self.activity.clone() };
        builder
            .clock(Arc::new(self.clock.clone()))
            .activity(self.activity.clone())
            .step_kind("shell", Arc::new(shell))
    }

    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Waits up to `limit` (real time) for the engine to have nothing in motion.
    pub fn settle(&self, limit: Duration) -> Result<(), BridgeError> {
        if self.activity.wait_idle(limit) {
            return Ok(());
        }
        Err(BridgeError::new(
            "timeout",
            format!(
                "the engine is still busy after {} of real time: a step works outside virtual time \
                 (a shell command that is not mocked, a Java step that blocks?)",
                baton_core::model::format_duration(limit)
            ),
        ))
    }

    /// Moves time forward by `by`, timer by timer: each timer due by then fires in deadline
    /// order, and time moves on only once the engine has reacted to it (a retry that
    /// schedules the next one, a sleep that ends). Returns the new time.
    pub fn advance(&self, by: Duration, limit: Duration) -> Result<u64, BridgeError> {
        self.settle(limit)?;
        let target = self.now_ms().saturating_add(by.as_millis() as u64);
        while let Some(next) = self.clock.next_deadline().filter(|at| *at <= target) {
            self.move_to(next);
            self.settle(limit)?;
        }
        self.move_to(target);
        self.settle(limit)?;
        Ok(self.now_ms())
    }

    /// Fires the next timer, and the next, until no run is unfinished or no timer is left.
    /// Returns the new time.
    pub fn run_until_idle(&self, engine: &Engine, limit: Duration) -> Result<u64, BridgeError> {
        self.settle(limit)?;
        while !engine.unfinished_runs()?.is_empty() && self.clock.advance_to_next() {
            self.settle(limit)?;
        }
        Ok(self.now_ms())
    }

    fn move_to(&self, at_ms: u64) {
        self.clock.advance(Duration::from_millis(at_ms.saturating_sub(self.now_ms())));
    }
}

/// A step kind whose attempts work outside the engine (a child process): in motion from
/// launch to end, so that virtual time waits for them.
struct OutsideWork {
    kind: Arc<dyn StepKind>,
    activity: Arc<Activity>,
}

impl StepKind for OutsideWork {
    fn fields(&self) -> &'static [Field] {
        self.kind.fields()
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        self.kind.check(step)
    }

    fn is_inline(&self) -> bool {
        self.kind.is_inline()
    }

    fn run(&self, ctx: StepContext) -> StepFuture {
        let busy = self.activity.busy();
        let attempt = self.kind.run(ctx);
        Box::pin(async move {
            let outcome = attempt.await;
            drop(busy);
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host_steps::{HostKind, TaskQueue};
    use baton_core::model::{Format, Source};
    use baton_core::RunStatus;
    use indexmap::IndexMap;
    use serde_json::Value;

    const HOUR: u64 = 3_600_000;
    const LIMIT: Duration = Duration::from_secs(10);

    fn engine(time: &VirtualTime, queue: Arc<TaskQueue>) -> (tokio::runtime::Runtime, Engine) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let builder = time.configure(Engine::builder().step_kind("java", Arc::new(HostKind::java(queue))));
        let engine = {
            let _guard = rt.enter();
            builder.open().unwrap()
        };
        (rt, engine)
    }

    fn start(rt: &tokio::runtime::Runtime, engine: &Engine, yaml: &str) -> String {
        let def = Source::new("t.yaml", yaml, Format::Yaml).parse().unwrap();
        engine.register(def.clone()).unwrap();
        rt.block_on(engine.start_registered(&def.id, IndexMap::new())).unwrap()
    }

    #[test]
    fn advance_fires_each_timer_in_turn_and_returns_when_the_engine_is_idle() {
        let time = VirtualTime::starting_at(HOUR);
        let (rt, engine) = engine(&time, Arc::new(TaskQueue::default()));
        let run = start(
            &rt,
            &engine,
            "id: w\nsteps:\n  - {id: nap, type: sleep, duration: 1h}\n  \
             - {id: flaky, type: shell, command: 'exit 1', depends_on: [nap], retry: {max_attempts: 6, backoff: fixed, delay: 10m}}\n",
        );
        assert_eq!(time.advance(Duration::from_millis(HOUR + 20 * 60_000), LIMIT).unwrap(), 2 * HOUR + 20 * 60_000);
        let details = engine.details(&run).unwrap();
        assert_eq!(details.steps[1].record.attempt, 3, "attempts at 2h, 2h10m and 2h20m");
        assert_eq!(time.run_until_idle(&engine, LIMIT).unwrap(), 2 * HOUR + 50 * 60_000);
        let done = engine.run(&run).unwrap().unwrap();
        assert_eq!(done.status, RunStatus::Failed);
        assert_eq!(engine.details(&run).unwrap().steps[1].record.attempt, 6);
    }

    #[test]
    fn java_work_holds_time_until_it_is_answered() {
        let time = VirtualTime::starting_at(0);
        let queue = Arc::new(TaskQueue::counting(time.activity()));
        let (rt, engine) = engine(&time, queue.clone());
        let run = start(&rt, &engine, "id: w\nsteps:\n  - {id: a, type: java, timeout: 1m}\n");
        assert!(time.settle(Duration::from_millis(50)).is_err(), "the task is with Java");
        let task = queue.take(1, LIMIT).unwrap();
        let token = task.split('\t').nth(1).and_then(|t| t.parse().ok()).unwrap();
        queue.complete(token, r#"{"outputs": {"rows": 0}}"#).unwrap();
        assert_eq!(time.run_until_idle(&engine, LIMIT).unwrap(), 0, "no timer needed firing");
        let details = engine.details(&run).unwrap();
        assert_eq!(details.run.status, RunStatus::Succeeded);
        assert_eq!(details.steps[0].record.outputs["rows"], Value::from(0));
    }
}

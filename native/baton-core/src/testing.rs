//! Engines on virtual time, for tests: time moves only when the test says so, one timer at
//! a time, and each move returns once the engine has reacted to what it woke. Rust tests,
//! the JNI bridge and the JUnit kit all drive time through [`VirtualTime`].
//!
//! How the engine knows it has reacted is [`crate::activity`]: its own tasks, attempts of
//! kinds that [work outside](crate::steps::StepKind::works_outside) it (a child process),
//! and the [`Busy`](crate::activity::Busy) guards hosts hold for work in their hands.
//!
//! [`settle`](VirtualTime::settle), [`advance`](VirtualTime::advance) and
//! [`run_until_idle`](VirtualTime::run_until_idle) block the thread, for hosts whose engine
//! runs on a runtime of its own:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use baton_core::testing::VirtualTime;
//! use std::time::Duration;
//! let time = VirtualTime::starting_at(0);
//! let engine = time.configure(baton_core::Engine::builder()).open()?;
//! // ... register and start a run with a `sleep` of 1h ...
//! time.advance(Duration::from_secs(3600), Duration::from_secs(10))?; // the sleep has ended
//! # Ok(()) }
//! ```
//!
//! A test whose engine runs on the test's own runtime (a `#[tokio::test]`, even on one
//! thread) awaits their async forms instead, [`settled`](VirtualTime::settled),
//! [`advanced`](VirtualTime::advanced) and [`advanced_until`](VirtualTime::advanced_until):
//! they wait on tokio's blocking pool while the engine's tasks go on. A test of "nothing
//! happens" settles, then asserts; a step kind that waits for the test (a semaphore, a
//! `Notify`) is not in motion while it waits.
//!
//! ```
//! use baton_core::model::{Format, Source};
//! use baton_core::testing::VirtualTime;
//! use baton_core::{Engine, RunStatus};
//! use std::time::Duration;
//! const LIMIT: Duration = Duration::from_secs(10);
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let time = VirtualTime::starting_at(0);
//! let engine = time.configure(Engine::builder()).open().unwrap();
//! let yaml = "id: w\nsteps:\n  - {id: nap, type: sleep, duration: 1h}\n";
//! let def = Source::new("w.yaml", yaml, Format::Yaml).parse().unwrap();
//! let run = engine.start(engine.compile(def).unwrap().into(), Default::default()).await.unwrap();
//! time.settled(LIMIT).await.unwrap();
//! assert_eq!(engine.run(&run).unwrap().unwrap().status, RunStatus::Running, "asleep");
//! let ended = || engine.run(&run).unwrap().is_some_and(|r| r.status.is_terminal());
//! assert!(time.advanced_until(ended, LIMIT).await.unwrap());
//! assert_eq!(time.now_ms(), 3_600_000);
//! # });
//! ```

use crate::activity::Activity;
use crate::clock::{Clock, VirtualClock};
use crate::engine::{Engine, EngineBuilder, EngineError};
use std::sync::Arc;
use std::time::Duration;

/// Why virtual time could not move.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// The engine did not settle within the real-time limit.
    #[error(
        "the engine is still busy after {} of real time: a step works outside virtual time \
         (a shell command that is not mocked, a host step that blocks?)",
        crate::model::format_duration(*limit)
    )]
    StillBusy {
        /// The real time waited.
        limit: Duration,
    },
    /// The engine could not say which runs are unfinished.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// The clock of an engine on virtual time, and its work in motion. Clones share both: an
/// engine reopened on a clone goes on where the last one stopped.
#[derive(Clone)]
pub struct VirtualTime {
    clock: VirtualClock,
    activity: Arc<Activity>,
}

impl VirtualTime {
    /// Virtual time starting at `start_ms` (milliseconds since the epoch).
    pub fn starting_at(start_ms: u64) -> Self {
        VirtualTime { clock: VirtualClock::starting_at(start_ms), activity: Activity::new() }
    }

    /// The work in motion, for hosts that count their own (a task queue).
    pub fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }

    /// `builder` on this clock, counting work in motion.
    pub fn configure(&self, builder: EngineBuilder) -> EngineBuilder {
        builder.clock(Arc::new(self.clock.clone())).activity(self.activity.clone())
    }

    /// The virtual time, in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Waits up to `limit` (real time) for the engine to have nothing in motion.
    pub fn settle(&self, limit: Duration) -> Result<(), TimeError> {
        if self.activity.wait_idle(limit) {
            Ok(())
        } else {
            Err(TimeError::StillBusy { limit })
        }
    }

    /// Moves time forward by `by`, timer by timer: each timer due by then fires in deadline
    /// order, and time moves on only once the engine has reacted to it (a retry that
    /// schedules the next one, a sleep that ends). Returns the new time.
    pub fn advance(&self, by: Duration, limit: Duration) -> Result<u64, TimeError> {
        self.settle(limit)?;
        let target = self.target(by);
        while let Some(next) = self.due_by(target) {
            self.move_to(next);
            self.settle(limit)?;
        }
        self.move_to(target);
        self.settle(limit)?;
        Ok(self.now_ms())
    }

    /// Fires the next timer, and the next, until no run is unfinished or no timer is left.
    /// Returns the new time.
    pub fn run_until_idle(&self, engine: &Engine, limit: Duration) -> Result<u64, TimeError> {
        self.settle(limit)?;
        while !engine.unfinished_runs()?.is_empty() && self.clock.advance_to_next() {
            self.settle(limit)?;
        }
        Ok(self.now_ms())
    }

    /// The async form of [`settle`](Self::settle), for an engine on the caller's runtime:
    /// the wait runs on tokio's blocking pool while the engine's tasks go on.
    pub async fn settled(&self, limit: Duration) -> Result<(), TimeError> {
        // Most waits are over before they begin: no trip to the blocking pool then.
        if self.activity.wait_idle(Duration::ZERO) {
            return Ok(());
        }
        let activity = self.activity.clone();
        let idle = tokio::task::spawn_blocking(move || activity.wait_idle(limit)).await;
        if idle.unwrap_or(false) {
            Ok(())
        } else {
            Err(TimeError::StillBusy { limit })
        }
    }

    /// The async form of [`advance`](Self::advance).
    pub async fn advanced(&self, by: Duration, limit: Duration) -> Result<u64, TimeError> {
        self.settled(limit).await?;
        let target = self.target(by);
        while let Some(next) = self.due_by(target) {
            self.move_to(next);
            self.settled(limit).await?;
        }
        self.move_to(target);
        self.settled(limit).await?;
        Ok(self.now_ms())
    }

    /// Settles, then fires the next timer and settles again, timer by timer, until `done`
    /// holds (it is asked only when the engine is settled): a run waited for on virtual
    /// time. Returns whether `done` holds; `false` when no timer is left, as the engine then
    /// waits for something other than time (a signal, a host, an operator).
    pub async fn advanced_until(
        &self,
        mut done: impl FnMut() -> bool,
        limit: Duration,
    ) -> Result<bool, TimeError> {
        self.settled(limit).await?;
        while !done() {
            if !self.clock.advance_to_next() {
                return Ok(false);
            }
            self.settled(limit).await?;
        }
        Ok(true)
    }

    /// Now plus `by`.
    fn target(&self, by: Duration) -> u64 {
        self.now_ms().saturating_add(by.as_millis() as u64)
    }

    /// The next deadline, if it is at or before `target`.
    fn due_by(&self, target: u64) -> Option<u64> {
        self.clock.next_deadline().filter(|at| *at <= target)
    }

    fn move_to(&self, at_ms: u64) {
        self.clock.advance(Duration::from_millis(at_ms.saturating_sub(self.now_ms())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Format, Source};
    use crate::RunStatus;
    use indexmap::IndexMap;

    const HOUR: u64 = 3_600_000;
    const LIMIT: Duration = Duration::from_secs(10);

    fn start(rt: &tokio::runtime::Runtime, engine: &Engine, yaml: &str) -> String {
        let def = Source::new("t.yaml", yaml, Format::Yaml).parse().unwrap();
        engine.register(def.clone()).unwrap();
        rt.block_on(engine.start_registered(&def.id, IndexMap::new())).unwrap()
    }

    #[test]
    fn advance_fires_each_timer_in_turn_and_returns_when_the_engine_is_idle() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let time = VirtualTime::starting_at(HOUR);
        let engine = {
            let _guard = rt.enter();
            time.configure(Engine::builder()).open().unwrap()
        };
        let run = start(
            &rt,
            &engine,
            "id: w\nsteps:\n  - {id: nap, type: sleep, duration: 1h}\n  \
             - {id: flaky, type: shell, command: 'exit 1', depends_on: [nap], retry: {max_attempts: 6, backoff: fixed, delay: 10m}}\n",
        );
        assert_eq!(
            time.advance(Duration::from_millis(HOUR + 20 * 60_000), LIMIT).unwrap(),
            2 * HOUR + 20 * 60_000
        );
        let details = engine.details(&run).unwrap();
        assert_eq!(details.steps[1].record.attempt, 3, "attempts at 2h, 2h10m and 2h20m");
        assert_eq!(time.run_until_idle(&engine, LIMIT).unwrap(), 2 * HOUR + 50 * 60_000);
        let done = engine.run(&run).unwrap().unwrap();
        assert_eq!(done.status, RunStatus::Failed);
        assert_eq!(engine.details(&run).unwrap().steps[1].record.attempt, 6);
    }

    #[tokio::test]
    async fn the_async_forms_settle_an_engine_on_the_callers_own_thread() {
        let time = VirtualTime::starting_at(HOUR);
        let engine = time.configure(Engine::builder()).open().unwrap();
        let def = Source::new(
            "t.yaml",
            "id: w\nsteps:\n  - {id: nap, type: sleep, duration: 1h}\n  \
             - {id: flaky, type: shell, command: 'exit 1', depends_on: [nap], retry: {max_attempts: 3, backoff: fixed, delay: 10m}}\n",
            Format::Yaml,
        )
        .parse()
        .unwrap();
        engine.register(def.clone()).unwrap();
        let run = engine.start_registered(&def.id, IndexMap::new()).await.unwrap();
        time.settled(LIMIT).await.unwrap();
        assert_eq!(engine.details(&run).unwrap().steps[1].record.attempt, 0, "asleep");
        let at = time.advanced(Duration::from_millis(HOUR + 10 * 60_000), LIMIT).await.unwrap();
        assert_eq!(at, 2 * HOUR + 10 * 60_000);
        assert_eq!(engine.details(&run).unwrap().steps[1].record.attempt, 2);
        let ended = || engine.run(&run).unwrap().is_some_and(|r| r.status.is_terminal());
        assert!(time.advanced_until(ended, LIMIT).await.unwrap());
        assert_eq!(time.now_ms(), 2 * HOUR + 20 * 60_000);
        assert_eq!(engine.run(&run).unwrap().unwrap().status, RunStatus::Failed);
        assert!(!time.advanced_until(|| false, LIMIT).await.unwrap(), "no timer is left");
    }
}

//! What the engine tests share: engines on virtual time, a flaky host step kind, and helpers
//! to compile workflows and wait for runs. No test waits for real time: each settles the
//! engine (waits until nothing is in motion), then asserts, and moves time only then.
#![allow(dead_code)]

use baton_core::model::{Format, Source};
use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::testing::VirtualTime;
use baton_core::{Engine, EngineBuilder, StepStatus};
use indexmap::IndexMap;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const START: u64 = 1_700_000_000_000;

/// How long (real time) the engine may stay in motion before a test fails: only shell
/// commands and the engine's own work count, so this is never reached unless it hangs.
pub const LIMIT: Duration = Duration::from_secs(10);

/// What [`Flaky`] records of an attempt: step id, idempotency key and step params.
pub type Seen = (String, String, IndexMap<String, serde_json::Value>);

/// A host step kind that fails its first `failures` attempts, then records its context.
#[derive(Default)]
pub struct Flaky {
    pub failures: usize,
    pub calls: AtomicUsize,
    pub seen: Mutex<Vec<Seen>>,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
    pub hold: Option<Duration>,
}

impl Flaky {
    fn run(&'static self, ctx: StepContext) -> StepFuture {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.seen.lock().unwrap().push((
            ctx.step_id.clone(),
            ctx.idempotency_key.clone(),
            ctx.step_params.clone(),
        ));
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_running.fetch_max(now, Ordering::SeqCst);
        let fail = n < self.failures;
        let hold = self.hold;
        let me = self;
        Box::pin(async move {
            if let Some(hold) = hold {
                let until = ctx.clock.now_ms() + hold.as_millis() as u64;
                tokio::select! {
                    _ = ctx.clock.sleep_until(until) => {}
                    _ = ctx.cancel.cancelled() => {
                        me.running.fetch_sub(1, Ordering::SeqCst);
                        return StepOutcome::failure("cancelled");
                    }
                }
            }
            me.running.fetch_sub(1, Ordering::SeqCst);
            if fail {
                StepOutcome::failure(format!("failure number {}", n + 1))
            } else {
                let mut out = Outputs::new();
                out.insert("n".into(), json!(n));
                StepOutcome::success(out)
            }
        })
    }
}

pub fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

pub struct Setup {
    pub engine: Engine,
    pub time: VirtualTime,
}

impl Setup {
    /// `builder`'s engine on virtual time starting at [`START`].
    pub fn open(builder: EngineBuilder) -> Setup {
        let time = VirtualTime::starting_at(START);
        Setup { engine: time.configure(builder).open().unwrap(), time }
    }

    /// Waits until the engine has nothing in motion, so that what it has not done by now it
    /// will not do before time moves or the test acts.
    pub async fn settle(&self) {
        self.time.settled(LIMIT).await.unwrap();
    }

    /// Moves virtual time by `by`, timer by timer, letting the engine react to each.
    pub async fn advance(&self, by: Duration) {
        self.time.advanced(by, LIMIT).await.unwrap();
    }

    /// The virtual time, in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.time.now_ms()
    }
}

pub fn engine_with(kind: Option<&'static Flaky>, dir: Option<&std::path::Path>) -> Setup {
    let mut b = Engine::builder();
    if let Some(kind) = kind {
        b = b.step_kind("flaky", Arc::new(Wrapper(kind)));
    }
    if let Some(dir) = dir {
        b = b.store_dir(dir);
    }
    Setup::open(b)
}

/// Registers a leaked [`Flaky`], so the test can read its counters afterwards.
pub struct Wrapper(pub &'static Flaky);
impl StepKind for Wrapper {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }
    fn run(&self, ctx: StepContext) -> StepFuture {
        self.0.run(ctx)
    }
}

pub fn workflow(engine: &Engine, yaml: &str) -> Arc<baton_core::Workflow> {
    let source = Source::new("test.yaml", yaml, Format::Yaml);
    Arc::new(engine.compile(source.parse().unwrap()).map_err(|e| source.locate(e)).unwrap())
}

/// Waits for the run: whenever the engine is settled and the run is not over, fires the
/// next timer. Fails if the run waits for something other than time.
pub async fn finish(s: &Setup, run_id: &str) -> baton_core::RunRecord {
    let over = || s.engine.run(run_id).unwrap().is_some_and(|run| run.status.is_terminal());
    let ended = s.time.advanced_until(over, LIMIT).await.unwrap();
    assert!(ended, "run {run_id} waits for no timer: {:?}", statuses(&s.engine, run_id));
    s.engine.wait(run_id).await.unwrap()
}

pub fn status_of(engine: &Engine, run_id: &str, step: &str) -> (StepStatus, u32) {
    let d = engine.details(run_id).unwrap();
    let v = d.steps.iter().find(|s| s.id == step).unwrap();
    (v.record.status, v.record.attempt)
}

pub fn statuses(engine: &Engine, run_id: &str) -> Vec<(String, StepStatus)> {
    engine.details(run_id).unwrap().steps.into_iter().map(|s| (s.id, s.record.status)).collect()
}

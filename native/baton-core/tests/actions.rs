//! Actions on runs and steps, the timeline, and step limits by tag. The engines run on
//! virtual time: a test settles the engine (a step held at the gate is not in motion), then
//! asserts what it did, and what it did not do.

use baton_core::model::{Format, Source};
use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::{Engine, EngineError, Event, RunStatus, StepStatus};
use indexmap::IndexMap;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, Semaphore};

mod support;
use support::{finish, workflow, Setup, LIMIT};

/// A host step kind driven by the test: with `params: {sleep_ms: N}` it holds for N ms of
/// virtual time; with `params: {hold: true}` it waits for a permit of `gate` (or its
/// cancellation); it fails its first `fail: N` attempts; it counts its attempts per step and
/// the most running at once, and outputs its attempt number.
struct Gate {
    gate: Semaphore,
    calls: Mutex<HashMap<String, usize>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            gate: Semaphore::new(0),
            calls: Default::default(),
            running: Default::default(),
            max_running: Default::default(),
        }
    }
}

impl Gate {
    fn calls(&self, step: &str) -> usize {
        self.calls.lock().unwrap().get(step).copied().unwrap_or(0)
    }
    fn open(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

struct GateKind(Arc<Gate>);

impl StepKind for GateKind {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }
    fn run(&self, ctx: StepContext) -> StepFuture {
        let me = self.0.clone();
        Box::pin(async move {
            let n = {
                let mut calls = me.calls.lock().unwrap();
                let c = calls.entry(ctx.step_id.clone()).or_insert(0);
                *c += 1;
                *c
            };
            let now = me.running.fetch_add(1, Ordering::SeqCst) + 1;
            me.max_running.fetch_max(now, Ordering::SeqCst);
            let outcome = async {
                if let Some(ms) = ctx.step_params.get("sleep_ms").and_then(|v| v.as_u64()) {
                    ctx.clock.sleep_until(ctx.clock.now_ms() + ms).await;
                }
                if ctx.step_params.get("hold") == Some(&json!(true)) {
                    tokio::select! {
                        permit = me.gate.acquire() => permit.unwrap().forget(),
                        _ = ctx.cancel.cancelled() => return StepOutcome::failure("cancelled"),
                    }
                }
                let fail =
                    ctx.step_params.get("fail").and_then(|v| v.as_u64()).unwrap_or(0) as usize;
                if n <= fail {
                    return StepOutcome::failure(format!("failure {n}"));
                }
                let mut out = Outputs::new();
                out.insert("n".into(), json!(n));
                StepOutcome::success(out)
            }
            .await;
            me.running.fetch_sub(1, Ordering::SeqCst);
            outcome
        })
    }
}

/// An engine on virtual time with the `gate` kind.
fn open(gate: &Arc<Gate>, dir: Option<&std::path::Path>) -> Setup {
    let mut b = Engine::builder().step_kind("gate", Arc::new(GateKind(gate.clone())));
    if let Some(dir) = dir {
        b = b.store_dir(dir);
    }
    Setup::open(b)
}

fn record(engine: &Engine, run_id: &str, step: &str) -> baton_core::StepRecord {
    engine.details(run_id).unwrap().steps.into_iter().find(|s| s.id == step).unwrap().record
}

fn status(engine: &Engine, run_id: &str, step: &str) -> StepStatus {
    record(engine, run_id, step).status
}

/// Waits for `step` of run `run_id` to start, as `events` (subscribed before the run
/// started) tell. For shell steps: a command is in motion while it runs (real time), so the
/// engine does not settle until it ends.
async fn step_started(events: &mut broadcast::Receiver<Event>, run_id: &str, step: &str) {
    let wait = async {
        loop {
            let event = events.recv().await.unwrap();
            if let Event::Step { run_id: r, step_id, status: StepStatus::Running, .. } = event {
                if r == run_id && step_id == step {
                    return;
                }
            }
        }
    };
    // A bound on a hang, not a wait: the event comes as soon as the engine launches the step.
    let waited = tokio::time::timeout(LIMIT, wait).await;
    assert!(waited.is_ok(), "step `{step}` of run {run_id} never started");
}

fn illegal(e: EngineError) -> String {
    assert!(matches!(e, EngineError::IllegalAction { .. }), "{e}");
    e.to_string()
}

const CHAIN: &str = "id: chain\nsteps:\n  - {id: a, type: gate, params: {hold: true}}\n  - {id: b, type: gate, depends_on: [a]}\n";

#[tokio::test]
async fn pause_holds_back_new_steps_until_resume() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s.engine.start(workflow(&s.engine, CHAIN), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Running, "a running");
    s.engine.pause(&id).await.unwrap();
    assert_eq!(s.engine.run(&id).unwrap().unwrap().status, RunStatus::Paused);
    assert!(illegal(s.engine.pause(&id).await.unwrap_err()).contains("it is PAUSED already"));
    // The running step finishes; the next one does not start.
    gate.open(1);
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Succeeded, "a over");
    assert_eq!(gate.calls("b"), 0);
    assert_eq!(s.engine.run(&id).unwrap().unwrap().status, RunStatus::Paused);
    s.engine.resume(&id).await.unwrap();
    let run = s.engine.wait(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(gate.calls("b"), 1);
    let e = illegal(s.engine.resume(&id).await.unwrap_err());
    assert_eq!(e, format!("cannot resume run {id}: it is SUCCEEDED (finished runs cannot change; `baton restart` starts a new run)"));
}

#[tokio::test]
async fn a_paused_run_whose_steps_are_over_ends() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s
        .engine
        .start(
            workflow(&s.engine, "id: one\nsteps:\n  - {id: a, type: gate, params: {hold: true}}\n"),
            IndexMap::new(),
        )
        .await
        .unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Running, "a running");
    s.engine.pause(&id).await.unwrap();
    gate.open(1);
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
}

#[tokio::test]
async fn illegal_actions_are_refused_clearly() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s
        .engine
        .start(workflow(&s.engine, "id: done\nsteps:\n  - {id: a, type: gate}\n"), IndexMap::new())
        .await
        .unwrap();
    s.engine.wait(&id).await.unwrap();
    for e in [
        s.engine.pause(&id).await.unwrap_err(),
        s.engine.skip_step(&id, "a").await.unwrap_err(),
        s.engine.retry_step(&id, "a").await.unwrap_err(),
        s.engine.continue_step(&id, "a").await.unwrap_err(),
        s.engine.stop(&id, "x").await.unwrap_err(),
        s.engine.kill(&id).await.unwrap_err(),
    ] {
        assert!(illegal(e).contains("it is SUCCEEDED (finished runs cannot change"));
    }
    assert!(matches!(s.engine.pause("nope").await.unwrap_err(), EngineError::UnknownRun(_)));

    // In a live run: a step not at a breakpoint, a succeeded step, an unknown step.
    let id = s.engine.start(workflow(&s.engine, CHAIN), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Running, "a running");
    let e = illegal(s.engine.continue_step(&id, "a").await.unwrap_err());
    assert_eq!(
        e,
        format!("cannot continue step `a` of run {id}: it is RUNNING, not at a breakpoint")
    );
    assert!(illegal(s.engine.retry_step(&id, "b").await.unwrap_err())
        .contains("it is PENDING (only a FAILED step can be retried)"));
    assert!(illegal(s.engine.resume(&id).await.unwrap_err())
        .contains("it is RUNNING (only a PAUSED run can be resumed)"));
    let e = s.engine.skip_step(&id, "bb").await.unwrap_err();
    assert!(
        matches!(e, EngineError::UnknownStep { .. }) && e.to_string().contains("did you mean"),
        "{e}"
    );
    assert!(illegal(s.engine.restart(&id, None).await.unwrap_err())
        .contains("only a finished run can be restarted"));
    gate.open(1);
    s.engine.wait(&id).await.unwrap();
    assert!(illegal(s.engine.skip_step(&id, "b").await.unwrap_err()).contains("SUCCEEDED"));
}

#[tokio::test]
async fn stop_and_kill_a_running_shell_step() {
    let s = open(&Arc::new(Gate::default()), None);
    let wf = workflow(&s.engine, "id: sh\nsteps:\n  - {id: nap, type: shell, command: 'sleep 30'}\n  - {id: after, type: noop, depends_on: [nap]}\n");
    let mut events = s.engine.subscribe();
    for kill in [false, true] {
        // Real time: the command is a real process, which only stop and kill cut short.
        let started = Instant::now();
        let id = s.engine.start(wf.clone(), IndexMap::new()).await.unwrap();
        step_started(&mut events, &id, "nap").await;
        assert_eq!(status(&s.engine, &id, "nap"), StepStatus::Running);
        if kill {
            s.engine.kill(&id).await.unwrap();
        } else {
            s.engine.stop(&id, "enough").await.unwrap();
        }
        let run = s.engine.wait(&id).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10), "the sleep was cut short");
        let (run_status, step_status) = if kill {
            (RunStatus::Killed, StepStatus::Killed)
        } else {
            (RunStatus::Stopped, StepStatus::Stopped)
        };
        assert_eq!(run.status, run_status);
        assert_eq!(status(&s.engine, &id, "nap"), step_status);
        assert_eq!(status(&s.engine, &id, "after"), StepStatus::Skipped);
        if !kill {
            assert_eq!(run.error.as_deref(), Some("enough"));
        }
    }
}

#[tokio::test]
async fn killing_a_run_kills_its_child_runs() {
    let s = open(&Arc::new(Gate::default()), None);
    let child = Source::new(
        "c.yaml",
        "id: child\nsteps:\n  - {id: nap, type: shell, command: 'sleep 30'}\n",
        Format::Yaml,
    );
    s.engine.register(child.parse().unwrap()).unwrap();
    let wf = workflow(
        &s.engine,
        "id: parent\nsteps:\n  - {id: sub, type: subworkflow, workflow: child}\n",
    );
    let mut events = s.engine.subscribe();
    // Real time: the child's command is a real process, which only the kill cuts short.
    let started = Instant::now();
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let child_id = format!("{id}:sub");
    step_started(&mut events, &child_id, "nap").await;
    assert_eq!(status(&s.engine, &child_id, "nap"), StepStatus::Running);
    s.engine.kill(&id).await.unwrap();
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Killed);
    s.settle().await;
    assert_eq!(s.engine.run(&child_id).unwrap().unwrap().status, RunStatus::Killed);
    assert_eq!(status(&s.engine, &child_id, "nap"), StepStatus::Killed);
    assert!(started.elapsed() < Duration::from_secs(10));
}

const THREE: &str = "id: three\nsteps:\n  - {id: a, type: gate}\n  - {id: b, type: gate, depends_on: [a], params: {fail: 1}}\n  - {id: c, type: gate, depends_on: [b]}\n";

#[tokio::test]
async fn restart_keeps_what_succeeded_and_from_reruns_downstream() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let first = s.engine.start(workflow(&s.engine, THREE), IndexMap::new()).await.unwrap();
    assert_eq!(s.engine.wait(&first).await.unwrap().status, RunStatus::Failed);
    assert_eq!(status(&s.engine, &first, "c"), StepStatus::Skipped);

    let second = s.engine.restart(&first, None).await.unwrap();
    let run = s.engine.wait(&second).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.restarted_from.as_deref(), Some(first.as_str()));
    assert_eq!((gate.calls("a"), gate.calls("b"), gate.calls("c")), (1, 2, 1));
    // The kept step has its outputs of the first run; the others are new.
    assert_eq!(record(&s.engine, &second, "a").outputs["n"], json!(1));
    assert_eq!(record(&s.engine, &second, "b").outputs["n"], json!(2));

    let third = s.engine.restart(&second, Some("b")).await.unwrap();
    assert_eq!(s.engine.wait(&third).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!((gate.calls("a"), gate.calls("b"), gate.calls("c")), (1, 3, 2));
    assert_eq!(record(&s.engine, &third, "a").outputs["n"], json!(1));
    assert_eq!(record(&s.engine, &third, "c").outputs["n"], json!(2));
    assert!(matches!(
        s.engine.restart(&second, Some("zz")).await.unwrap_err(),
        EngineError::UnknownStep { .. }
    ));
}

#[tokio::test]
async fn a_breakpoint_waits_for_continue() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    s.engine.set_breakpoint("bp", "b", true).await.unwrap();
    assert_eq!(s.engine.breakpoints("bp"), vec!["b".to_string()]);
    let wf = workflow(&s.engine, "id: bp\nsteps:\n  - {id: a, type: gate}\n  - {id: b, type: gate, depends_on: [a]}\n  - {id: c, type: noop, depends_on: [b]}\n");
    let id = s.engine.start(wf.clone(), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Waiting, "b at the breakpoint");
    assert_eq!(record(&s.engine, &id, "b").waiting_for.as_deref(), Some("breakpoint"));
    assert_eq!(gate.calls("b"), 0);
    s.engine.continue_step(&id, "b").await.unwrap();
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!(gate.calls("b"), 1);
    // Removed: runs go through.
    s.engine.set_breakpoint("bp", "b", false).await.unwrap();
    assert!(s.engine.breakpoints("bp").is_empty());
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
}

#[tokio::test]
async fn a_breakpoint_set_while_a_run_goes_on_applies_to_steps_it_reaches_later() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s.engine.start(workflow(&s.engine, CHAIN), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Running, "a running");
    s.engine.set_breakpoint("chain", "b", true).await.unwrap();
    gate.open(1);
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Waiting, "b at the breakpoint");
    // Skipping a step at a breakpoint is allowed too.
    s.engine.skip_step(&id, "b").await.unwrap();
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
    assert!(record(&s.engine, &id, "b").skipped_by_operator);
}

#[tokio::test]
async fn skipping_a_running_step_lets_downstream_run() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s.engine.start(workflow(&s.engine, CHAIN), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Running, "a running");
    s.engine.skip_step(&id, "a").await.unwrap();
    let run = s.engine.wait(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    let a = record(&s.engine, &id, "a");
    assert_eq!(a.status, StepStatus::Skipped);
    assert!(a.skipped_by_operator);
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Succeeded);
}

/// `a` fails (the run goes on while `other` runs): its downstream `b` is skipped.
const BRANCHES: &str = "id: br\nsteps:\n  - {id: a, type: gate, params: {fail: 1}, failure_mode: fail_after_running}\n  - {id: b, type: gate, depends_on: [a]}\n  - {id: other, type: gate, params: {hold: true}}\n";

#[tokio::test]
async fn skipping_a_failed_step_unskips_downstream() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s.engine.start(workflow(&s.engine, BRANCHES), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Skipped, "b skipped");
    s.engine.skip_step(&id, "a").await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Succeeded, "b succeeded");
    gate.open(1);
    let run = s.engine.wait(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(gate.calls("a"), 1);
}

#[tokio::test]
async fn retrying_a_failed_step_unskips_downstream_and_forgets_the_failure() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s.engine.start(workflow(&s.engine, BRANCHES), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Skipped, "b skipped");
    s.engine.retry_step(&id, "a").await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Succeeded, "b succeeded");
    let a = record(&s.engine, &id, "a");
    assert_eq!((a.status, a.attempt), (StepStatus::Succeeded, 2));
    gate.open(1);
    let run = s.engine.wait(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(run.error, None);
    // The timeline tells the story of `b`: skipped, decided again, run.
    let b: Vec<StepStatus> = s
        .engine
        .timeline(&id)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Step { step_id, status, .. } if step_id == "b" => Some(status),
            _ => None,
        })
        .collect();
    assert_eq!(
        b,
        vec![StepStatus::Skipped, StepStatus::Pending, StepStatus::Running, StepStatus::Succeeded]
    );
}

#[tokio::test]
async fn a_paused_run_and_a_breakpoint_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let yaml = "id: keep\nsteps:\n  - {id: a, type: gate}\n  - {id: b, type: gate, depends_on: [a]}\n  - {id: c, type: gate, params: {hold: true}}\n";
    let id;
    {
        let s = open(&gate, Some(dir.path()));
        s.engine.set_breakpoint("keep", "b", true).await.unwrap();
        id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
        s.settle().await;
        assert_eq!(status(&s.engine, &id, "b"), StepStatus::Waiting, "b at the breakpoint");
        assert_eq!(status(&s.engine, &id, "c"), StepStatus::Running, "c running");
        s.engine.pause(&id).await.unwrap();
        s.engine.close().await;
    }
    let s = open(&gate, Some(dir.path()));
    assert_eq!(s.engine.run(&id).unwrap().unwrap().status, RunStatus::Paused);
    // Not recovered: resuming it resumes it here first.
    s.engine.resume(&id).await.unwrap();
    assert_eq!(s.engine.run(&id).unwrap().unwrap().status, RunStatus::Running);
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Waiting, "still at its breakpoint");
    s.engine.continue_step(&id, "b").await.unwrap();
    gate.open(1);
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!(gate.calls("b"), 1);
    assert_eq!(gate.calls("c"), 2, "the running step was relaunched");
    // The timeline went on numbering after the reopen.
    let seqs: Vec<u64> = s.engine.timeline(&id).unwrap().iter().map(seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
}

fn seq(e: &Event) -> u64 {
    match e {
        Event::Run { seq, .. } | Event::Step { seq, .. } => *seq,
    }
}

fn describe(e: &Event) -> String {
    match e {
        Event::Run { status, .. } => format!("run {status}"),
        Event::Step { step_id, status, .. } => format!("{step_id} {status}"),
    }
}

#[tokio::test]
async fn the_timeline_and_subscribers_see_every_change_in_order() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let mut events = s.engine.subscribe();
    let wf = workflow(&s.engine, "id: tl\nsteps:\n  - {id: a, type: noop}\n  - {id: b, type: gate, depends_on: [a], params: {fail: 1}}\n");
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    s.engine.wait(&id).await.unwrap();
    let timeline = s.engine.timeline(&id).unwrap();
    let seen: Vec<String> = timeline.iter().map(describe).collect();
    assert_eq!(seen, vec!["run RUNNING", "a SUCCEEDED", "b RUNNING", "b FAILED", "run FAILED"]);
    assert_eq!(timeline.iter().map(seq).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    let at: Vec<u64> = timeline
        .iter()
        .map(|e| match e {
            Event::Run { at_ms, .. } | Event::Step { at_ms, .. } => *at_ms,
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]) && at[0] > 0);
    let mut delivered = Vec::new();
    while let Ok(e) = events.try_recv() {
        delivered.push(e);
    }
    assert_eq!(delivered, timeline);
    assert!(matches!(s.engine.timeline("nope").unwrap_err(), EngineError::UnknownRun(_)));
}

#[tokio::test]
async fn foreach_iterations_keep_no_events_and_their_timeline_comes_from_their_records() {
    let s = open(&Arc::new(Gate::default()), None);
    let wf = workflow(&s.engine, "id: fe\nsteps:\n  - {id: each, type: foreach, over: '${[1, 2, 3]}', steps: [{id: s, type: noop}, {id: t, type: noop, depends_on: [s]}]}\n");
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!(s.engine.timeline(&id).unwrap().len(), 4, "run and step events only");
    let timeline = s.engine.timeline(&format!("{id}:each:0")).unwrap();
    let shown: Vec<String> = timeline
        .iter()
        .map(|e| match e {
            Event::Run { status, seq, .. } => format!("{seq} run {status:?}"),
            Event::Step { step_id, status, seq, .. } => format!("{seq} {step_id} {status:?}"),
        })
        .collect();
    assert_eq!(
        shown,
        [
            "0 run Running",
            "1 s Running",
            "2 s Succeeded",
            "3 t Running",
            "4 t Succeeded",
            "5 run Succeeded"
        ]
    );
}

#[tokio::test]
async fn tag_limits_hold_across_runs() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    assert!(matches!(
        s.engine.set_limit("bad tag", Some(1)).await.unwrap_err(),
        EngineError::BadTag(_)
    ));
    s.engine.set_limit("db", Some(2)).await.unwrap();
    s.engine.set_limit("other", Some(7)).await.unwrap();
    assert_eq!(s.engine.limits(), vec![("db".to_string(), 2), ("other".to_string(), 7)]);
    s.engine.set_limit("other", None).await.unwrap();
    assert_eq!(s.engine.limits(), vec![("db".to_string(), 2)]);
    let steps: String = (0..5)
        .map(|i| format!("  - {{id: s{i}, type: gate, tags: [db], params: {{sleep_ms: 20}}}}\n"))
        .collect();
    let wf = workflow(&s.engine, &format!("id: tagged\nmax_parallel: 5\nsteps:\n{steps}"));
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(s.engine.start(wf.clone(), IndexMap::new()).await.unwrap());
    }
    // Two steps of the fifteen hold at a time, across the runs.
    s.settle().await;
    assert_eq!(gate.running.load(Ordering::SeqCst), 2);
    for id in &ids {
        assert_eq!(finish(&s, id).await.status, RunStatus::Succeeded);
    }
    assert_eq!(gate.max_running.load(Ordering::SeqCst), 2);
    assert_eq!((0..5).map(|i| gate.calls(&format!("s{i}"))).sum::<usize>(), 15);
}

#[tokio::test]
async fn limits_are_durable_and_tags_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    {
        let s = open(&gate, Some(dir.path()));
        s.engine.set_limit("db", Some(3)).await.unwrap();
        s.engine.close().await;
    }
    let s = open(&gate, Some(dir.path()));
    assert_eq!(s.engine.limits(), vec![("db".to_string(), 3)]);
    let source = Source::new(
        "t.yaml",
        "id: t\nsteps:\n  - {id: a, type: noop, tags: ['no good']}\n",
        Format::Yaml,
    );
    let err = s.engine.compile(source.parse().unwrap()).unwrap_err().to_string();
    assert!(err.contains("invalid tag `no good`"), "{err}");
}

#[tokio::test]
async fn a_pending_step_can_be_skipped_and_a_paused_run_retried() {
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s.engine.start(workflow(&s.engine, CHAIN), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Running, "a running");
    s.engine.skip_step(&id, "b").await.unwrap();
    gate.open(1);
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!(gate.calls("b"), 0);

    // A fresh gate: its attempt counts are per step id.
    let gate = Arc::new(Gate::default());
    let s = open(&gate, None);
    let id = s.engine.start(workflow(&s.engine, BRANCHES), IndexMap::new()).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Skipped, "b skipped");
    s.engine.pause(&id).await.unwrap();
    s.engine.retry_step(&id, "a").await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "a"), StepStatus::Retrying, "nothing starts while paused");
    s.engine.resume(&id).await.unwrap();
    s.settle().await;
    assert_eq!(status(&s.engine, &id, "b"), StepStatus::Succeeded, "b succeeded");
    gate.open(1);
    assert_eq!(s.engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
}

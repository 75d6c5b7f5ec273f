//! The engine end to end: runs on a virtual clock, failures, retries, timeouts, recovery.

use baton_core::model::{Format, Source};
use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::{Engine, RunStatus, StepStatus, StoreEngine, StoreLocation};
use indexmap::IndexMap;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

mod support;
use support::*;

#[tokio::test]
async fn retries_with_backoff_on_the_virtual_clock() {
    let flaky = leak(Flaky { failures: 2, ..Default::default() });
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: r\nsteps:\n  - {id: a, type: flaky, retry: {max_attempts: 3, backoff: exponential, delay: 10m}}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(status_of(&s.engine, &id, "a"), (StepStatus::Succeeded, 3));
    // 10 minutes, then 20: the clock moved exactly as the policy says.
    assert_eq!(s.now_ms() - START, 30 * 60 * 1000);
    let keys: Vec<String> = flaky.seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
    assert_eq!(keys, vec![format!("{id}/a/1"), format!("{id}/a/2"), format!("{id}/a/3")]);
}

#[tokio::test]
async fn a_failure_skips_downstream_while_independent_branches_finish() {
    let flaky = leak(Flaky { failures: 100, ..Default::default() });
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: f\nsteps:\n  - {id: bad, type: flaky}\n  - {id: after_bad, type: noop, depends_on: [bad]}\n  - {id: deeper, type: noop, depends_on: [after_bad]}\n  - {id: other, type: sleep, duration: 1h}\n  - {id: after_other, type: noop, depends_on: [other]}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(
        run.error.as_deref().unwrap().contains("step `bad` failed: failure number 1"),
        "{:?}",
        run.error
    );
    assert_eq!(status_of(&s.engine, &id, "after_bad").0, StepStatus::Skipped);
    assert_eq!(status_of(&s.engine, &id, "deeper").0, StepStatus::Skipped);
    assert_eq!(status_of(&s.engine, &id, "after_other").0, StepStatus::Succeeded);
    assert_eq!(run.counts[&StepStatus::Skipped], 2);
    let d = s.engine.details(&id).unwrap();
    assert!(d.steps[1]
        .record
        .error
        .as_deref()
        .unwrap()
        .contains("upstream step `bad` did not succeed"));
}

#[tokio::test]
async fn fail_immediately_stops_the_rest() {
    let flaky = leak(Flaky { failures: 100, ..Default::default() });
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: f\nsteps:\n  - {id: bad, type: flaky, failure_mode: fail_immediately}\n  - {id: slow, type: sleep, duration: 1h}\n  - {id: later, type: noop, depends_on: [slow]}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(status_of(&s.engine, &id, "slow").0, StepStatus::Stopped);
    assert_eq!(status_of(&s.engine, &id, "later").0, StepStatus::Skipped);
    assert!(s.now_ms() - START < 3_600_000, "the sleep was cut short");
}

#[tokio::test]
async fn ignore_failure_lets_downstream_run() {
    let flaky = leak(Flaky { failures: 100, ..Default::default() });
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: f\nsteps:\n  - {id: bad, type: flaky, failure_mode: ignore_failure}\n  - {id: next, type: noop, depends_on: [bad]}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    let d = s.engine.details(&id).unwrap();
    assert_eq!(d.steps[0].record.status, StepStatus::Failed);
    assert!(d.steps[0].record.failure_ignored);
    assert_eq!(d.steps[1].record.status, StepStatus::Succeeded);
}

#[tokio::test]
async fn step_and_run_timeouts() {
    let flaky = leak(Flaky { hold: Some(Duration::from_secs(3600)), ..Default::default() });
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: t\nsteps:\n  - {id: slow, type: flaky, timeout: 5m, retry: {max_attempts: 2, delay: 1m, on_timeout: true}}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let d = s.engine.details(&id).unwrap();
    assert_eq!(d.steps[0].record.attempt, 2);
    assert_eq!(d.steps[0].record.error.as_deref(), Some("timed out after 5m"));
    assert_eq!(s.now_ms() - START, 11 * 60 * 1000, "two attempts of 5m and a 1m delay");

    // Without `on_timeout`, a timeout is not retried: a step that hung once likely hangs again.
    let wf = workflow(
        &s.engine,
        "id: t1\nsteps:\n  - {id: slow, type: flaky, timeout: 5m, retry: {max_attempts: 3, delay: 1m}}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    let d = s.engine.details(&id).unwrap();
    assert_eq!(d.steps[0].record.attempt, 1);
    assert_eq!(
        d.steps[0].record.error.as_deref(),
        Some("timed out after 5m; not retried: a timeout is not retried (retry.on_timeout)")
    );

    let wf = workflow(&s.engine, "id: t2\ntimeout: 30m\nsteps:\n  - {id: a, type: sleep, duration: 2h}\n  - {id: b, type: noop, depends_on: [a]}\n");
    let started = s.now_ms();
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("the run timed out after 30m"));
    assert_eq!(s.now_ms() - started, 30 * 60 * 1000);
    assert_eq!(status_of(&s.engine, &id, "a").0, StepStatus::Stopped);
    assert_eq!(status_of(&s.engine, &id, "b").0, StepStatus::Skipped);
}

#[tokio::test]
async fn max_parallel_is_honoured() {
    let flaky = leak(Flaky { hold: Some(Duration::from_secs(1)), ..Default::default() });
    let s = engine_with(Some(flaky), None);
    let mut yaml = String::from("id: p\nmax_parallel: 3\nsteps:\n");
    for i in 0..20 {
        yaml.push_str(&format!("  - {{id: s{i}, type: flaky}}\n"));
    }
    let id = s.engine.start(workflow(&s.engine, &yaml), IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    assert_eq!(flaky.max_running.load(Ordering::SeqCst), 3);
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 20);
}

#[tokio::test]
async fn params_and_outputs_are_substituted() {
    let flaky = leak(Flaky::default());
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: o\nparams: {date: '2026-11-24', limit: 100}\nsteps:\n  - {id: a, type: flaky}\n  - {id: b, type: flaky, depends_on: [a], params: {q: 'day ${date} n=${a.n} limit=${limit}', list: '${range(0, a.n + 3)}', big: '${limit > 5}'}}\n",
    );
    let mut overrides = IndexMap::new();
    overrides.insert("limit".to_string(), json!("7"));
    let id = s.engine.start(wf, overrides).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    let seen = flaky.seen.lock().unwrap();
    assert_eq!(seen[1].2["q"], json!("day 2026-11-24 n=0 limit=7"));
    // A whole-field expression keeps its type.
    assert_eq!(seen[1].2["list"], json!([0, 1, 2]));
    assert_eq!(seen[1].2["big"], json!(true));
    assert_eq!(
        s.engine.run(&id).unwrap().unwrap().params["limit"],
        json!(7),
        "the string override took the default's type"
    );
}

#[tokio::test]
async fn a_step_whose_id_is_no_plain_name_is_read_as_steps_by_id() {
    let flaky = leak(Flaky::default());
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: ids
steps:
  - {id: job.1, type: flaky}
  - {id: load-users, type: flaky, depends_on: [job.1], params: {n: \"${steps['job.1'].n + 1}\"}}
",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    assert_eq!(flaky.seen.lock().unwrap()[1].2["n"], json!(1));
    // Validation names a step that is not there, or not upstream, as for `${extract.rows}`.
    let source = Source::new(
        "ids.yaml",
        "id: ids\nsteps:\n  - {id: job.1, type: noop}\n  - {id: b, type: noop, when: \"${steps['job.2'].n > 0}\"}\n",
        Format::Yaml,
    );
    let error = s.engine.compile(source.parse().unwrap()).unwrap_err().to_string();
    assert!(error.contains("job.2"), "{error}");
}

#[tokio::test]
async fn a_steps_params_are_read_downstream_as_its_outputs() {
    let flaky = leak(Flaky::default());
    let s = engine_with(Some(flaky), None);
    let wf = workflow(
        &s.engine,
        "id: flow\nparams: {date: '2026-12-01'}\nsteps:\n  - {id: plan, type: noop, params: {day: '${date}', n: '${1 + 1}'}}\n  - {id: count, type: shell, depends_on: [plan], params: {rows: 1, table: events}, command: 'echo rows=${plan.n * 5} >> $BATON_OUTPUT'}\n  - {id: use, type: flaky, depends_on: [count], params: {seen: '${plan.day} ${count.rows} ${count.table}'}}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    // The shell step's own `rows` (10) wins over its param `rows` (1).
    assert_eq!(flaky.seen.lock().unwrap()[0].2["seen"], json!("2026-12-01 10 events"));
    let plan = s.engine.details(&id).unwrap().steps[0].record.outputs.clone();
    assert_eq!(plan, IndexMap::from([("day".into(), json!("2026-12-01")), ("n".into(), json!(2))]));
}

#[tokio::test]
async fn a_final_exit_code_is_not_retried_and_other_codes_are() {
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        "id: codes\nparams: {code: 3}\nsteps:\n  - {id: load, type: shell, command: 'exit ${code}', retry: {max_attempts: 3, delay: 1s, final_exit_codes: [3, 64]}}\n",
    );
    let id = s.engine.start(wf.clone(), IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    let record = s.engine.details(&id).unwrap().steps[0].record.clone();
    assert_eq!(record.attempt, 1, "{record:?}");
    assert_eq!(
        record.error.as_deref(),
        Some("command exited with code 3; not retried: exit code 3 is final (retry.final_exit_codes)")
    );
    let id = s.engine.start(wf, IndexMap::from([("code".into(), json!(4))])).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    let record = s.engine.details(&id).unwrap().steps[0].record.clone();
    assert_eq!((record.attempt, record.error.as_deref()), (3, Some("command exited with code 4")));
    let bad = Source::new("b.yaml", "id: b\nsteps:\n  - {id: a, type: shell, command: 'true', retry: {max_attempts: 2, final_exit_codes: [0, 300]}}\n", Format::Yaml);
    let errors = s.engine.compile(bad.parse().unwrap()).unwrap_err().to_string();
    assert!(
        errors.contains("retry.final_exit_codes.0: `0` is not an exit code of a failure (1-255)"),
        "{errors}"
    );
    assert!(errors.contains("retry.final_exit_codes.1"), "{errors}");
}

#[tokio::test]
async fn unknown_and_badly_typed_params_are_refused() {
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        "id: p\nparams: {date: x, limit: 1}\nsteps:\n  - {id: a, type: noop}\n",
    );
    let mut o = IndexMap::new();
    o.insert("dat".to_string(), json!("y"));
    let err = s.engine.start(wf.clone(), o).await.unwrap_err().to_string();
    assert!(err.contains("unknown parameter `dat` (did you mean `date`?)"), "{err}");
    let mut o = IndexMap::new();
    o.insert("limit".to_string(), json!("many"));
    let err = s.engine.start(wf.clone(), o).await.unwrap_err().to_string();
    assert!(err.contains("parameter `limit`: expects an integer"), "{err}");
    // Typed values from a host: checked against the declared type, never changed silently.
    for (name, value, expected) in [
        (
            "limit",
            json!(2.5),
            "parameter `limit`: expects an integer (default 1), got a float (2.5)",
        ),
        (
            "date",
            json!(20261201),
            "parameter `date`: expects a string (default \"x\"), got an integer",
        ),
        ("date", json!(null), "parameter `date`: expects a string (default \"x\"), got null"),
    ] {
        let o = IndexMap::from([(name.to_string(), value)]);
        let err = s.engine.start(wf.clone(), o).await.unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[tokio::test]
async fn a_missing_output_fails_the_step_clearly() {
    let s = engine_with(None, None);
    let wf = workflow(&s.engine, "id: m\nsteps:\n  - {id: a, type: noop}\n  - {id: b, type: shell, command: 'echo ${a.rows}', depends_on: [a]}\n");
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("command: column 8: `a` has no `rows` (it has: nothing)"), "{error}");
}

#[tokio::test]
async fn a_panicking_step_fails_only_itself() {
    struct Panics;
    impl StepKind for Panics {
        fn fields(&self) -> &'static [Field] {
            &[]
        }
        fn run(&self, _ctx: StepContext) -> StepFuture {
            Box::pin(async { panic!("boom") })
        }
    }
    let s = Setup::open(Engine::builder().step_kind("panics", Arc::new(Panics)));
    let wf =
        workflow(&s.engine, "id: p\nsteps:\n  - {id: a, type: panics}\n  - {id: b, type: noop}\n");
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("the step panicked: boom"));
    assert_eq!(status_of(&s.engine, &id, "b").0, StepStatus::Succeeded);
}

/// A run interrupted (engine closed mid-run) resumes from the store: finished steps are not
/// run again, the running one is relaunched with the same idempotency key. On every store:
/// redb and sled directories, and a PostgreSQL database when PostgreSQL is installed.
#[tokio::test]
async fn an_interrupted_run_resumes_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut stores: Vec<(StoreLocation, Option<StoreEngine>)> =
        [StoreEngine::Redb, StoreEngine::Sled]
            .into_iter()
            .map(|kind| (StoreLocation::Dir(dir.path().join(kind.name())), Some(kind)))
            .collect();
    stores.extend(baton_pgtest::database().map(|url| (url.parse().unwrap(), None)));
    for (store, engine_kind) in stores {
        let flaky = leak(Flaky { hold: Some(Duration::from_secs(60)), ..Default::default() });
        let open = || {
            let mut builder =
                Engine::builder().store(store.clone()).step_kind("flaky", Arc::new(Wrapper(flaky)));
            if let Some(kind) = engine_kind {
                builder = builder.store_engine(kind);
            }
            Setup::open(builder)
        };
        let yaml = "id: resume\nsteps:\n  - {id: a, type: flaky}\n  - {id: b, type: flaky, depends_on: [a]}\n  - {id: c, type: noop, depends_on: [b]}\n";
        let id;
        {
            let s = open();
            id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
            // Let `a` finish and `b` start, then stop the engine under it: `a` holds for
            // 60 s, and `b`, which starts then, until 120 s.
            s.settle().await;
            assert_eq!(status_of(&s.engine, &id, "a").0, StepStatus::Running);
            s.advance(Duration::from_secs(60)).await;
            assert_eq!(status_of(&s.engine, &id, "a").0, StepStatus::Succeeded);
            assert_eq!(status_of(&s.engine, &id, "b").0, StepStatus::Running);
            s.engine.close().await;
        }
        let s = open();
        assert_eq!(s.engine.unfinished_runs().unwrap(), vec![id.clone()], "{store}");
        let resumed = s.engine.recover().unwrap();
        assert_eq!(resumed.len(), 1);
        let run = finish(&s, &id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{store}");
        let keys: Vec<String> = flaky.seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
        assert_eq!(
            keys,
            vec![format!("{id}/a/1"), format!("{id}/b/1"), format!("{id}/b/1")],
            "{store}"
        );
        assert!(s.engine.unfinished_runs().unwrap().is_empty());
    }
}

#[tokio::test]
async fn events_reach_the_listener_after_they_are_durable() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let engine = Engine::builder()
        .listener(Arc::new(move |e: &baton_core::Event| sink.lock().unwrap().push(e.clone())))
        .open()
        .unwrap();
    let wf = workflow(&engine, "id: e\nsteps:\n  - {id: a, type: noop}\n  - {id: b, type: shell, command: 'exit 3', depends_on: [a]}\n");
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    let run = engine.wait(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(error.contains("command exited with code 3"), "{error}");
    let events = events.lock().unwrap();
    let statuses: Vec<String> = events
        .iter()
        .map(|e| match e {
            baton_core::Event::Run { status, .. } => format!("run {status}"),
            baton_core::Event::Step { step_id, status, .. } => format!("{step_id} {status}"),
        })
        .collect();
    assert_eq!(statuses, vec!["run RUNNING", "a SUCCEEDED", "b RUNNING", "b FAILED", "run FAILED"]);
}

#[tokio::test]
async fn a_step_can_wait_with_a_reason_and_go_on() {
    struct Gate(Arc<tokio::sync::Notify>);
    impl StepKind for Gate {
        fn fields(&self) -> &'static [Field] {
            &[]
        }
        fn run(&self, ctx: StepContext) -> StepFuture {
            let gate = self.0.clone();
            Box::pin(async move {
                ctx.status.waiting("its code is not registered yet");
                gate.notified().await;
                ctx.status.running();
                StepOutcome::success(Outputs::new())
            })
        }
    }
    let gate = Arc::new(tokio::sync::Notify::new());
    let s = Setup::open(Engine::builder().step_kind("gate", Arc::new(Gate(gate.clone()))));
    let engine = &s.engine;
    engine
        .register(
            Source::new("g.yaml", "id: g\nsteps:\n  - {id: a, type: gate}\n", Format::Yaml)
                .parse()
                .unwrap(),
        )
        .unwrap();
    let err = engine.start_registered("h", IndexMap::new()).await.unwrap_err().to_string();
    assert!(err.contains("no workflow `h` is registered"), "{err}");
    let id = engine.start_registered("g", IndexMap::new()).await.unwrap();
    // Waiting on the gate is not motion: the engine settles with the step waiting.
    s.settle().await;
    let d = engine.details(&id).unwrap();
    assert_eq!(d.steps[0].record.status, StepStatus::Waiting);
    assert_eq!(d.steps[0].record.waiting_for.as_deref(), Some("its code is not registered yet"));
    gate.notify_one();
    s.settle().await;
    assert_eq!(engine.details(&id).unwrap().steps[0].record.status, StepStatus::Succeeded);
    assert_eq!(engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
}

#[tokio::test]
async fn conditions_branch_and_triggers_join() {
    let engine = Engine::builder().open().unwrap();
    let wf = workflow(
        &engine,
        "id: branch\nparams: {threshold: 10}\nsteps:\n  - {id: count, type: shell, command: 'echo rows=5 >> $BATON_OUTPUT'}\n  - {id: big, type: noop, when: '${count.rows > threshold}', depends_on: [count]}\n  - {id: small, type: noop, when: '${count.rows <= threshold}', depends_on: [count]}\n  - {id: join, type: noop, depends_on: [big, small], trigger: none_failed}\n  - {id: strict, type: noop, depends_on: [big, small]}\n  - {id: any, type: noop, depends_on: [big, small], trigger: one_success}\n  - {id: on_fail, type: noop, depends_on: [count], trigger: one_failed}\n",
    );
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
    use StepStatus::*;
    let want = [
        ("count", Succeeded),
        ("big", Skipped),
        ("small", Succeeded),
        ("join", Succeeded),
        ("strict", Skipped),
        ("any", Succeeded),
        ("on_fail", Skipped),
    ];
    assert_eq!(statuses(&engine, &id), want.map(|(s, st)| (s.to_string(), st)).to_vec());
    let d = engine.details(&id).unwrap();
    assert_eq!(
        d.steps[1].record.error.as_deref(),
        Some("skipped: `when` is false: ${count.rows > threshold}")
    );
    assert_eq!(
        d.steps[4].record.error.as_deref(),
        Some("skipped: upstream step `big` did not succeed")
    );
}

#[tokio::test]
async fn triggers_after_a_failure() {
    let engine = Engine::builder().open().unwrap();
    let wf = workflow(
        &engine,
        "id: fail\nsteps:\n  - {id: a, type: shell, command: 'exit 1'}\n  - {id: cleanup, type: noop, depends_on: [a], trigger: one_failed}\n  - {id: always, type: noop, depends_on: [a], trigger: all_done}\n  - {id: normal, type: noop, depends_on: [a]}\n  - {id: join, type: noop, depends_on: [normal, cleanup], trigger: none_failed}\n",
    );
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(engine.wait(&id).await.unwrap().status, RunStatus::Failed);
    use StepStatus::*;
    let want = [
        ("a", Failed),
        ("cleanup", Succeeded),
        ("always", Succeeded),
        ("normal", Skipped),
        ("join", Succeeded),
    ];
    assert_eq!(statuses(&engine, &id), want.map(|(s, st)| (s.to_string(), st)).to_vec());
}

#[tokio::test]
async fn a_condition_that_cannot_be_evaluated_fails_the_step() {
    let engine = Engine::builder().open().unwrap();
    let wf = workflow(
        &engine,
        "id: bad\nsteps:\n  - {id: a, type: shell, command: 'echo name=x >> $BATON_OUTPUT'}\n  - {id: b, type: noop, when: '${a.name}', depends_on: [a]}\n  - {id: c, type: noop, depends_on: [b]}\n",
    );
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    let run = engine.wait(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("step `b` failed: when: expected a boolean, not \"x\""));
    assert_eq!(statuses(&engine, &id)[2].1, StepStatus::Skipped);
}

#[test]
fn conditions_and_triggers_are_validated() {
    let engine = Engine::builder().open().unwrap();
    let source = Source::new(
        "t.yaml",
        "id: v\nsteps:\n  - {id: a, type: noop, trigger: one_success}\n  - {id: b, type: noop, when: 'yes', depends_on: [a]}\n  - {id: c, type: noop, when: '${nope > 1}', depends_on: [a]}\n",
        Format::Yaml,
    );
    let err = engine.compile(source.parse().unwrap()).unwrap_err().to_string();
    assert!(
        err.contains("step `a`: trigger: `one_success` needs upstream steps in depends_on"),
        "{err}"
    );
    assert!(err.contains("step `b`: when: `yes` is not an expression"), "{err}");
    assert!(
        err.contains("step `c`: when: column 3: `nope` is neither a parameter nor a step"),
        "{err}"
    );
}

#[tokio::test]
async fn outputs_are_size_limited() {
    struct Big;
    impl StepKind for Big {
        fn fields(&self) -> &'static [Field] {
            &[]
        }
        fn run(&self, _ctx: StepContext) -> StepFuture {
            Box::pin(async {
                let mut out = Outputs::new();
                out.insert("blob".into(), json!("x".repeat(2 << 20)));
                StepOutcome::success(out)
            })
        }
    }
    let engine = Engine::builder().step_kind("big", Arc::new(Big)).open().unwrap();
    let wf = workflow(&engine, "id: big\nsteps:\n  - {id: a, type: big}\n");
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    let run = engine.wait(&id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    let error = run.error.unwrap();
    assert!(
        error.contains("outputs take 2097163 bytes; the limit is 1048576 bytes per step"),
        "{error}"
    );
}

#[tokio::test]
async fn an_overridden_step_runs_the_double_instead() {
    let flaky = leak(Flaky::default());
    let s = engine_with(Some(flaky), None);
    let wf = workflow(&s.engine, "id: o\nsteps:\n  - {id: a, type: shell, command: 'exit 3'}\n  - {id: b, type: noop, depends_on: [a]}\n");
    s.engine.override_step("o", "a", Some(Arc::new(Wrapper(flaky))));
    s.engine.override_step("o", "b", Some(Arc::new(Wrapper(flaky))));
    let id = s.engine.start(wf.clone(), IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    let seen: Vec<String> = flaky.seen.lock().unwrap().iter().map(|s| s.0.clone()).collect();
    assert_eq!(seen, vec!["a", "b"]);
    // Without the double, the declared shell command runs (and fails).
    s.engine.override_step("o", "a", None);
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
}

#[tokio::test]
async fn an_engine_without_a_store_directory_removes_what_killed_engines_left_in_temp() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let temp = std::env::temp_dir();
    let left = temp.join(format!("baton-{dead}-{}", ulid::Ulid::new()));
    std::fs::create_dir_all(left.join("run").join("step")).unwrap();
    let alive = temp.join(format!("baton-{}-{}", std::process::id(), ulid::Ulid::new()));
    std::fs::create_dir_all(&alive).unwrap();

    let engine = Engine::builder().open().unwrap();

    assert!(!left.exists(), "a dead engine's scratch directory is removed");
    assert!(alive.exists(), "a live engine's scratch directory stays");
    engine.close().await;
    std::fs::remove_dir_all(&alive).unwrap();
}

#[tokio::test]
async fn required_params_are_given_by_every_start_and_computed_ones_are_evaluated_at_start() {
    let s = Setup::open(Engine::builder());
    let yaml = "id: typed\nparams: {threshold: 10}\nrequired: {day: integer, tables: list}\n\
        computed:\n  started: \"${format_date(now(), 'yyyy-MM-dd')}\"\n  limit: \"${threshold * 2 + day}\"\n  label: \"${started + '/' + str(limit)}\"\n\
        steps:\n  - {id: a, type: noop, params: {seen: \"${label}\", first: \"${tables[0]}\"}}\n";
    let wf = workflow(&s.engine, yaml);
    let given = |pairs: &[(&str, serde_json::Value)]| -> IndexMap<String, serde_json::Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    };

    let missing = s.engine.start(wf.clone(), given(&[("day", json!(3))])).await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "the workflow's parameter `tables` (list) has no default; give it (`-p tables=...`, or in the start's params)"
    );
    let wrong = s.engine.start(wf.clone(), given(&[("day", json!("x")), ("tables", json!([]))]));
    assert!(wrong.await.unwrap_err().to_string().starts_with("parameter `day`: "));

    // Text is read as the declared type, as for a default's type.
    let id =
        s.engine.start(wf.clone(), given(&[("day", json!("3")), ("tables", json!("[\"t\"]"))]));
    let id = id.await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    let run = s.engine.run(&id).unwrap().unwrap();
    assert_eq!(run.params["limit"], json!(23), "threshold * 2 + day");
    assert_eq!(run.params["started"], json!("2023-11-14"), "now() at the start (virtual)");
    let a = &s.engine.details(&id).unwrap().steps[0];
    assert_eq!(a.record.outputs.get("seen"), Some(&json!("2023-11-14/23")));

    // A start may give a computed param; it is then not computed.
    let id = s
        .engine
        .start(wf, given(&[("day", json!(1)), ("tables", json!(["t"])), ("limit", json!(7))]));
    let id = id.await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    let run = s.engine.run(&id).unwrap().unwrap();
    assert_eq!(
        (run.params["limit"].clone(), run.params["label"].clone()),
        (json!(7), json!("2023-11-14/7"))
    );
}

#[test]
fn required_and_computed_params_are_checked_at_validation() {
    let kinds = baton_core::engine::built_in_kinds();
    let problems = |yaml: &str| -> Vec<String> {
        let source = Source::new("p.yaml", yaml, Format::Yaml);
        match baton_core::Workflow::load(&source, &kinds) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
        }
    };
    let found = problems(
        "id: p\nparams: {a: 1}\nsecrets: [token]\nrequired: {a: integer, day: date}\n\
         computed: {x: \"${later + 1}\", later: \"${token}\", y: \"${dat}\", z: \"${a +}\"}\nsteps: [{id: s, type: noop}]\n",
    );
    let want = [
        "p.yaml:4:29: required.day: unknown variant `date`, expected one of `integer`, `number`, `boolean`, `string`, `list`, `map`, `any`",
    ];
    assert_eq!(found, want, "a shape error stops at the first problem");
    let found = problems(
        "id: p\nparams: {a: 1}\nsecrets: [token]\nrequired: {a: integer, day: integer}\n\
         computed: {x: \"${later + 1}\", later: \"${token}\", y: \"${dat}\", z: \"${a +}\"}\nsteps: [{id: s, type: noop, params: {v: \"${z}\"}}]\n",
    );
    let expect = [
        "required.a: `a` is also under `params`; declare a parameter once",
        "computed.x: column 3: `later` is computed below this one",
        "computed.later: column 3: `token` is a secret",
        "computed.y: column 3: `dat` is not a parameter (did you mean `day`?)",
        "computed.z: column",
    ];
    for want in expect {
        assert!(found.iter().any(|f| f.contains(want)), "missing {want:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

#[tokio::test]
async fn a_join_whose_branches_may_all_be_skipped_runs_only_when_one_ran() {
    let engine = Engine::builder().open().unwrap();
    let yaml = "id: joins\nparams: {go: false}\nsteps:\n  - {id: a, type: noop, when: '${go}'}\n  - {id: b, type: noop, when: '${!go}'}\n  - {id: c, type: noop, when: '${go}'}\n  - {id: one_ran, type: noop, depends_on: [a, b], trigger: none_failed_min_one_success}\n  - {id: none_ran, type: noop, depends_on: [a, c], trigger: none_failed_min_one_success}\n  - {id: none_failed, type: noop, depends_on: [a, c], trigger: none_failed}\n";
    let wf = workflow(&engine, yaml);
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
    use StepStatus::*;
    let want = [
        ("a", Skipped),
        ("b", Succeeded),
        ("c", Skipped),
        ("one_ran", Succeeded),
        ("none_ran", Skipped),
        ("none_failed", Succeeded),
    ];
    assert_eq!(statuses(&engine, &id), want.map(|(s, st)| (s.to_string(), st)).to_vec());
    let d = engine.details(&id).unwrap();
    assert_eq!(d.steps[4].record.error.as_deref(), Some("skipped: no upstream step succeeded"));
}

#[tokio::test]
async fn expressions_read_the_run_they_are_evaluated_for() {
    let flaky = leak(Flaky { failures: 1, ..Default::default() });
    let s = engine_with(Some(flaky), None);
    let yaml = "id: ctx\n\
        computed: {day: \"${format_date(scheduled_at(), 'yyyyMMdd')}\"}\n\
        steps:\n\
        \x20 - {id: a, type: flaky, retry: {max_attempts: 2, delay: 1s}, params: {attempt: \"${attempt()}\"}}\n\
        \x20 - id: b\n    type: noop\n    depends_on: [a]\n    params: {run: \"${run_id()}\", workflow: \"${workflow_id()}\", version: \"${workflow_version()}\", by: \"${initiator()}\", started: \"${started_at()}\", due: \"${scheduled_at()}\", day: \"${day}\"}\n\
        \x20 - id: loop\n    type: foreach\n    over: \"${range(0, 2)}\"\n    steps: [{id: inner, type: noop, params: {run: \"${run_id()}\"}}]\n";
    let source = Source::new("ctx.yaml", yaml, Format::Yaml);
    s.engine.register(source.parse().unwrap()).unwrap();
    let id = s.engine.start_with("ctx", Default::default()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);

    let attempts: Vec<_> =
        flaky.seen.lock().unwrap().iter().map(|s| s.2["attempt"].clone()).collect();
    assert_eq!(attempts, vec![json!(1), json!(2)], "attempt() counts from 1");
    let details = s.engine.details(&id).unwrap();
    let outputs =
        |step: &str| details.steps.iter().find(|d| d.id == step).unwrap().record.outputs.clone();
    let b = outputs("b");
    let expected = json!({
        "run": id, "workflow": "ctx", "version": 1, "by": "manual",
        "started": "2023-11-14T22:13:20Z", "due": "2023-11-14T22:13:20Z", "day": "20231114",
    });
    assert_eq!(serde_json::to_value(&b).unwrap(), expected);
    // An iteration is evaluated for the run of its loop, not for its own child run.
    assert_eq!(outputs("loop")["outputs"]["inner"]["run"], json!([id, id]));

    // A restart is a run of its own, due when the run it restarts was.
    s.advance(Duration::from_secs(3600)).await;
    let again = s.engine.restart(&id, Some("b")).await.unwrap();
    assert_eq!(finish(&s, &again).await.status, RunStatus::Succeeded);
    let b = s.engine.details(&again).unwrap().steps[1].record.outputs.clone();
    assert_eq!((b["run"].clone(), b["due"].clone()), (json!(again), json!("2023-11-14T22:13:20Z")));
    assert_eq!(b["started"], json!("2023-11-14T23:13:21Z"));
}

#[test]
fn run_context_outside_a_step_is_an_error_when_evaluated() {
    let scope = baton_core::expr::Template::parse("${attempt()}").unwrap();
    struct Nothing;
    impl baton_core::expr::Scope for Nothing {
        fn name(&self, _: &str) -> Option<serde_json::Value> {
            None
        }
        fn now_ms(&self) -> u64 {
            0
        }
    }
    assert_eq!(
        scope.evaluate(&Nothing).unwrap_err().to_string(),
        "column 3: attempt() is known in a step's fields only"
    );
    let run = baton_core::expr::Template::parse("${run_id()}").unwrap();
    assert!(run.evaluate(&Nothing).unwrap_err().to_string().contains("there is no run yet"));
}

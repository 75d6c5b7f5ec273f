//! Control flow end to end: foreach, while, subworkflows and signals.

use baton_core::model::{Format, Source};
use baton_core::{Engine, RunStatus, StepStatus};
use indexmap::IndexMap;
use serde_json::json;
use std::time::Duration;

mod support;
use support::*;

fn params(pairs: &[(&str, serde_json::Value)]) -> IndexMap<String, serde_json::Value> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn step_record(engine: &Engine, run_id: &str, step: &str) -> baton_core::StepRecord {
    engine.details(run_id).unwrap().steps.into_iter().find(|s| s.id == step).unwrap().record
}

#[tokio::test]
async fn foreach_runs_its_body_per_item_with_outer_names() {
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        r#"
id: fe
params: {suffix: x}
steps:
  - {id: list, type: shell, command: 'echo ''parts=["a","b","c"]'' >> $BATON_OUTPUT'}
  - id: each
    type: foreach
    depends_on: [list]
    over: "${list.parts}"
    as: part
    max_parallel: 2
    steps:
      - {id: emit, type: shell, command: 'echo "v=${part}-${suffix}-${iteration}" >> $BATON_OUTPUT'}
      - {id: after, type: noop, depends_on: [emit], when: "${emit.v != ''}"}
  - {id: done, type: shell, depends_on: [each], command: 'echo "n=${each.iterations}" >> $BATON_OUTPUT'}
"#,
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(step_record(&s.engine, &id, "done").outputs["n"], json!(3));
    let rollup = s.engine.rollup(&id, 1).unwrap().unwrap();
    assert_eq!((rollup.total, rollup.started, rollup.running.len()), (Some(3), 3, 0));
    assert_eq!(rollup.counts.get(&RunStatus::Succeeded), Some(&3));
    // Each iteration is a run of its own, linked to its parent, with the item bound.
    let second = s.engine.details(&format!("{id}:each:1")).unwrap();
    assert_eq!(
        second.run.parent.as_ref().map(|p| (p.run_id.as_str(), p.iteration)),
        Some((id.as_str(), Some(1)))
    );
    assert_eq!(second.steps[0].record.outputs["v"], json!("b-x-1"));
    // Iterations are not runs of their own in the list of runs.
    assert_eq!(s.engine.runs().unwrap().len(), 1);
}

#[tokio::test]
async fn nested_foreach_and_a_lazy_range() {
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        r#"
id: nested
steps:
  - id: outer
    type: foreach
    over: "${range(0, 3)}"
    as: i
    steps:
      - id: inner
        type: foreach
        over: "${range(0, i + 2)}"
        as: j
        steps:
          - {id: leaf, type: shell, command: 'echo "p=${i * 10 + j}" >> $BATON_OUTPUT'}
"#,
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    // 2 + 3 + 4 leaves under 3 outer iterations.
    let inner = |i: u64| s.engine.rollup(&format!("{id}:outer:{i}"), 0).unwrap().unwrap();
    assert_eq!((0..3).map(|i| inner(i).started).collect::<Vec<_>>(), vec![2, 3, 4]);
    let leaf = s.engine.details(&format!("{id}:outer:2:inner:3")).unwrap();
    assert_eq!(leaf.steps[0].record.outputs["p"], json!(23));
}

#[tokio::test]
async fn foreach_failures_with_and_without_fail_fast() {
    let yaml = |fail_fast: bool| {
        format!(
            r#"
id: ff
steps:
  - id: each
    type: foreach
    over: "${{range(0, 10)}}"
    max_parallel: 1
    fail_fast: {fail_fast}
    steps:
      - {{id: work, type: shell, command: 'test $(( ${{item}} % 4 )) -ne 1'}}
"#
        )
    };
    let s = engine_with(None, None);
    let id = s.engine.start(workflow(&s.engine, &yaml(false)), IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let record = step_record(&s.engine, &id, "each");
    let error = record.error.unwrap();
    assert!(error.starts_with("3 of 10 iterations failed; first: iteration 1"), "{error}");
    let rollup = s.engine.rollup(&id, 0).unwrap().unwrap();
    assert_eq!((rollup.counts[&RunStatus::Succeeded], rollup.counts[&RunStatus::Failed]), (7, 3));
    assert_eq!(rollup.failures.iter().map(|f| f.iteration).collect::<Vec<_>>(), vec![1, 5, 9]);

    let id = s.engine.start(workflow(&s.engine, &yaml(true)), IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    let error = step_record(&s.engine, &id, "each").error.unwrap();
    assert!(
        error.starts_with("1 of 10 iterations failed, 8 not started; first: iteration 1"),
        "{error}"
    );
}

#[tokio::test]
async fn foreach_over_a_registered_workflow() {
    let s = engine_with(None, None);
    let body = Source::new("b.yaml", "id: body\nparams: {n: 0}\nsteps:\n  - {id: sq, type: shell, command: 'echo \"sq=$(( ${n} * ${n} ))\" >> $BATON_OUTPUT'}\n", Format::Yaml);
    s.engine.register(body.parse().unwrap()).unwrap();
    let wf = workflow(
        &s.engine,
        "id: p\nsteps:\n  - {id: each, type: foreach, over: '${[2, 3]}', as: n, workflow: body}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    assert_eq!(
        s.engine.details(&format!("{id}:each:1")).unwrap().steps[0].record.outputs["sq"],
        json!(9)
    );
    // A body that cannot receive the item is a clear failure.
    let wf = workflow(
        &s.engine,
        "id: q\nsteps:\n  - {id: each, type: foreach, over: '${[1]}', workflow: body}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    let error = step_record(&s.engine, &id, "each").error.unwrap();
    assert!(error.contains("workflow `body` has no parameter `item`"), "{error}");
}

#[tokio::test]
async fn while_loops_on_the_previous_iteration_outputs() {
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        r#"
id: w
params: {limit: 4}
steps:
  - id: loop
    type: while
    condition: "${iteration == 0 || count.n < limit}"
    steps:
      - {id: count, type: shell, command: 'echo "n=$(( ${iteration} + 1 ))" >> $BATON_OUTPUT'}
  - {id: after, type: shell, depends_on: [loop], command: 'echo "last=${loop.count.n} its=${loop.iterations}" >> $BATON_OUTPUT'}
"#,
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(step_record(&s.engine, &id, "after").outputs["last"], json!("4 its=4"));

    let wf = workflow(&s.engine, "id: forever\nsteps:\n  - {id: loop, type: while, condition: '${true}', max_iterations: 3, steps: [{id: a, type: noop}]}\n");
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    let error = step_record(&s.engine, &id, "loop").error.unwrap();
    assert_eq!(error, "the condition still holds after max_iterations (3) iterations");
}

#[tokio::test]
async fn subworkflow_outputs_and_links() {
    let s = engine_with(None, None);
    let child = Source::new("c.yaml", "id: child\nparams: {table: none}\nsteps:\n  - {id: load, type: shell, command: 'echo \"rows=7\" >> $BATON_OUTPUT; echo \"t=${table}\" >> $BATON_OUTPUT'}\n", Format::Yaml);
    s.engine.register(child.parse().unwrap()).unwrap();
    let wf = workflow(
        &s.engine,
        "id: parent\nparams: {t: events}\nsteps:\n  - {id: sub, type: subworkflow, workflow: child, params: {table: '${t}'}}\n  - {id: use, type: shell, depends_on: [sub], command: 'echo \"got=${sub.load.rows}/${sub.load.t}\" >> $BATON_OUTPUT'}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(step_record(&s.engine, &id, "use").outputs["got"], json!("7/events"));
    let child_run = s.engine.run(&format!("{id}:sub")).unwrap().unwrap();
    assert_eq!(child_run.workflow_id, "child");
    assert_eq!(child_run.parent.unwrap().run_id, id);
    // A child run is a run: it is listed.
    assert_eq!(s.engine.runs().unwrap().len(), 2);
}

#[tokio::test]
async fn a_subworkflow_pins_a_version_and_inherits_its_runs_params() {
    let s = engine_with(None, None);
    let register = |yaml: &str| {
        let source = Source::new("c.yaml", yaml, Format::Yaml);
        s.engine.register(source.parse().unwrap()).unwrap().version
    };
    let v1 = register("id: child\nparams: {date: none, rows: 0}\nsteps:\n  - {id: one, type: shell, command: 'echo \"seen=${date}/${rows}\" >> $BATON_OUTPUT'}\n");
    let v2 =
        register("id: child\nparams: {date: none, rows: 0}\nsteps:\n  - {id: two, type: noop}\n");
    assert_eq!((v1, v2), (1, 2));
    let wf = workflow(
        &s.engine,
        "id: parent\nparams: {date: '2026-12-01', other: x}\nsteps:\n  - {id: sub, type: subworkflow, workflow: child, version: 1, inherit_params: true, params: {rows: 3}}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    // Version 1 ran (its step is `one`), with the parent's `date` and the step's `rows`;
    // `other`, which the child does not declare, stayed with the parent.
    assert_eq!(step_record(&s.engine, &id, "sub").outputs["one"], json!({"seen": "2026-12-01/3"}));
    let child = s.engine.run(&format!("{id}:sub")).unwrap().unwrap();
    assert_eq!(
        child.params,
        IndexMap::from([("date".into(), json!("2026-12-01")), ("rows".into(), json!(3))])
    );
    let bad = Source::new(
        "p.yaml",
        "id: p\nsteps:\n  - {id: a, type: subworkflow, file: c.yaml, version: 2}\n  - {id: b, type: subworkflow, workflow: child, version: 0}\n",
        Format::Yaml,
    );
    let errors = s.engine.compile(bad.parse().unwrap()).unwrap_err().to_string();
    assert!(errors.contains("pins a version of a registered `workflow`"), "{errors}");
    assert!(errors.contains("versions count from 1"), "{errors}");
}

#[tokio::test]
async fn subworkflow_from_a_file_and_stopping_the_parent_stops_the_child() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("slow.yaml"),
        "id: slow\nsteps:\n  - {id: nap, type: sleep, duration: 1h}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("parent.yaml"),
        "id: parent\ntimeout: 10m\nsteps:\n  - {id: sub, type: subworkflow, file: slow.yaml}\n",
    )
    .unwrap();
    let s = engine_with(None, None);
    let source = Source::read(&dir.path().join("parent.yaml")).unwrap();
    let wf = std::sync::Arc::new(s.engine.compile(source.parse().unwrap()).unwrap());
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.error.as_deref(), Some("the run timed out after 10m"));
    let child = s.engine.run(&format!("{id}:sub")).unwrap().unwrap();
    assert_eq!(child.status, RunStatus::Stopped);
    assert_eq!(step_record(&s.engine, &format!("{id}:sub"), "nap").status, StepStatus::Stopped);
}

#[tokio::test]
async fn signals_sent_before_and_after_the_wait_match() {
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        r#"
id: waits
params: {date: "2026-11-24"}
steps:
  - {id: ready, type: wait_signal, signal: table_ready, match: "${signal.table == 'events' && signal.date == date}"}
  - {id: use, type: shell, depends_on: [ready], command: 'echo "rows=${ready.rows}" >> $BATON_OUTPUT'}
"#,
    );
    // Sent before the run: it matches (it is within the retention window).
    s.engine
        .signal(
            "table_ready",
            params(&[
                ("table", json!("events")),
                ("date", json!("2026-11-24")),
                ("rows", json!(5)),
            ]),
        )
        .await
        .unwrap();
    let id = s.engine.start(wf.clone(), IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    assert_eq!(step_record(&s.engine, &id, "use").outputs["rows"], json!(5));

    // Sent after the wait began; a signal for another date does not match.
    let id = s.engine.start(wf, params(&[("date", json!("2026-11-25"))])).await.unwrap();
    s.settle().await;
    let r = step_record(&s.engine, &id, "ready");
    assert_eq!(r.status, StepStatus::Waiting);
    assert_eq!(
        r.waiting_for.as_deref(),
        Some("signal `table_ready` matching ${signal.table == 'events' && signal.date == date}")
    );
    s.engine
        .signal(
            "table_ready",
            params(&[
                ("table", json!("events")),
                ("date", json!("2026-11-26")),
                ("rows", json!(1)),
            ]),
        )
        .await
        .unwrap();
    s.settle().await;
    assert_eq!(step_record(&s.engine, &id, "ready").status, StepStatus::Waiting, "not that one");
    s.engine
        .signal(
            "table_ready",
            params(&[
                ("table", json!("events")),
                ("date", json!("2026-11-25")),
                ("rows", json!(9)),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    assert_eq!(step_record(&s.engine, &id, "use").outputs["rows"], json!(9));
}

#[tokio::test]
async fn a_signal_wait_times_out_and_old_signals_are_ignored() {
    let s = engine_with(None, None);
    s.engine.signal("late", IndexMap::new()).await.unwrap();
    s.advance(Duration::from_secs(3 * 3600)).await;
    let wf = workflow(&s.engine, "id: t\nsignal_retention: 2h\nsteps:\n  - {id: w, type: wait_signal, signal: late, timeout: 30m}\n");
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(step_record(&s.engine, &id, "w").error.as_deref(), Some("timed out after 30m"));
    assert_eq!(s.now_ms() - START, 3 * 3600 * 1000 + 30 * 60 * 1000);
}

#[tokio::test]
async fn emitted_signals_chain_workflows() {
    let s = engine_with(None, None);
    let consumer = workflow(&s.engine, "id: consumer\nsteps:\n  - {id: w, type: wait_signal, signal: table_ready, match: \"${signal.table == 'events'}\"}\n");
    let waiting = s.engine.start(consumer, IndexMap::new()).await.unwrap();
    let producer = workflow(
        &s.engine,
        "id: producer\nparams: {date: d1}\nsteps:\n  - id: load\n    type: shell\n    command: 'echo rows=3 >> $BATON_OUTPUT'\n    emit_signals:\n      - {name: table_ready, params: {table: events, date: '${date}', rows: '${load.rows}'}}\n",
    );
    let id = s.engine.start(producer, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    assert_eq!(finish(&s, &waiting).await.status, RunStatus::Succeeded);
    assert_eq!(
        step_record(&s.engine, &waiting, "w").outputs,
        params(&[("table", json!("events")), ("date", json!("d1")), ("rows", json!(3))])
    );
    let sent = s.engine.signals(Some("table_ready")).unwrap();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].source.as_deref(), Some(format!("{id}/load").as_str()));
}

#[test]
fn control_flow_is_validated_with_body_paths() {
    let s = futures_free_engine();
    let source = Source::new(
        "cf.yaml",
        r#"
id: cf
steps:
  - id: each
    type: foreach
    over: items
    as: 1x
    steps:
      - {id: a, type: shell, command: 'echo ${nope}'}
  - {id: loop, type: while, steps: [{id: b, type: noop}]}
  - {id: sub, type: subworkflow, workflow: x, file: y.yaml}
  - {id: w, type: wait_signal, match: "${signal.x == 1}"}
"#,
        Format::Yaml,
    );
    let errors =
        s.compile(source.parse().unwrap()).map_err(|e| source.locate(e)).unwrap_err().to_string();
    for expected in [
        "cf.yaml:6:5: step `each`: over: `items` is not an expression",
        "cf.yaml:7:5: step `each`: as: `1x` cannot name the item",
        "cf.yaml:9:30: step `each/a`: steps.0.command: column 8: `nope` is neither a parameter nor a step",
        "cf.yaml:10:6: step `loop`: condition: `while` steps need `condition`",
        "step `sub`: file: `subworkflow` steps need exactly one of `workflow` and `file`",
        "step `w`: signal: `wait_signal` steps need `signal`",
    ] {
        assert!(errors.contains(expected), "missing {expected:?} in:\n{errors}");
    } // `over` of the wrong type says what it takes.
    let wrong = Source::new(
        "o.yaml",
        "id: o\nsteps:\n  - {id: e, type: foreach, over: [1, 2], steps: [{id: a, type: noop}]}\n",
        Format::Yaml,
    );
    let error = wrong.parse().unwrap_err().to_string();
    assert!(
        error.contains("over: expected a list expression") && error.contains("not a list"),
        "{error}"
    );
}

fn futures_free_engine() -> Engine {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _guard = rt.enter();
    Engine::builder().open().unwrap()
}

#[tokio::test]
async fn interrupted_loops_resume_with_the_names_of_the_run_around_them() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = leak(Flaky { hold: Some(Duration::from_secs(60)), ..Default::default() });
    // The bodies use a workflow param and an upstream output: names of the run around them.
    let yaml = "id: scoped\nparams: {msg: hello}\nsteps:\n  - {id: up, type: flaky}\n  - {id: each, type: foreach, depends_on: [up], over: '${range(0, 6)}', max_parallel: 2, steps: [{id: work, type: flaky, params: {m: '${msg}', n: '${up.n}', i: '${item}'}}]}\n  - {id: again, type: while, depends_on: [up], condition: '${iteration < 3}', steps: [{id: w, type: flaky, params: {m: '${msg}', n: '${up.n}'}}]}\n";
    {
        let s = engine_with(Some(flaky), Some(dir.path()));
        let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
        s.settle().await;
        // `up` ends, then the first iterations; close with iterations of both loops running.
        s.advance(Duration::from_secs(120)).await;
        assert_eq!(s.engine.rollup(&id, 1).unwrap().unwrap().running.len(), 2);
        assert_eq!(s.engine.rollup(&id, 2).unwrap().unwrap().running.len(), 1);
        s.engine.close().await;
    }
    let s = engine_with(Some(flaky), Some(dir.path()));
    let resumed = s.engine.recover().unwrap();
    assert_eq!(resumed.len(), 1);
    let run = finish(&s, &resumed[0].0).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(s.engine.rollup(&run.id, 1).unwrap().unwrap().counts[&RunStatus::Succeeded], 6);
    assert_eq!(s.engine.rollup(&run.id, 2).unwrap().unwrap().counts[&RunStatus::Succeeded], 3);
    // Every attempt of a body step, before and after the restart, saw the run's names.
    let seen = flaky.seen.lock().unwrap();
    let bodies: Vec<_> = seen.iter().filter(|(step, _, _)| step != "up").collect();
    assert!(bodies.len() > 9, "interrupted iterations ran again: {}", bodies.len());
    for (step, key, params) in bodies {
        assert_eq!(
            (params["m"].as_str(), params["n"].as_u64()),
            (Some("hello"), Some(0)),
            "{step} {key}"
        );
    }
}

#[tokio::test]
async fn an_interrupted_foreach_resumes_without_rerunning_finished_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = leak(Flaky { hold: Some(Duration::from_secs(60)), ..Default::default() });
    let yaml = "id: big\nsteps:\n  - {id: each, type: foreach, over: '${range(0, 40)}', max_parallel: 4, steps: [{id: work, type: flaky}]}\n";
    {
        let s = engine_with(Some(flaky), Some(dir.path()));
        let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
        // Let some iterations finish, then close with others running: four at a time hold
        // for 60 s each.
        s.settle().await;
        while s.engine.rollup(&id, 0).unwrap().is_none_or(|r| r.done() < 10) {
            s.advance(Duration::from_secs(60)).await;
        }
        let rollup = s.engine.rollup(&id, 0).unwrap().unwrap();
        assert_eq!((rollup.done(), rollup.running.len()), (12, 4));
        s.engine.close().await;
    }
    let before = flaky.calls.load(std::sync::atomic::Ordering::SeqCst);
    let s = engine_with(Some(flaky), Some(dir.path()));
    let resumed = s.engine.recover().unwrap();
    assert_eq!(resumed.len(), 1);
    let run = finish(&s, &resumed[0].0).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let rollup = s.engine.rollup(&run.id, 0).unwrap().unwrap();
    assert_eq!(rollup.counts[&RunStatus::Succeeded], 40);
    // Only the iterations that were running when the engine closed ran twice.
    let calls = flaky.calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(calls, 40 + 4, "{calls} calls (before the restart: {before})");
    let mut keys: Vec<String> = flaky.seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 40);
}

#[tokio::test]
async fn a_while_carries_values_from_one_iteration_to_the_next() {
    let s = engine_with(None, None);
    let yaml = r#"
id: carry
params: {start: 20200101}
steps:
  - id: count_up
    type: while
    carry: {i: "${start}", total: 0}
    condition: "${i <= 20200105}"
    steps:
      - {id: add, type: noop, params: {i: "${i + 1}", total: "${total + i}"}}
  - {id: after, type: noop, depends_on: [count_up], params: {last: "${count_up.i}", sum: "${count_up.total}", n: "${count_up.iterations}"}}
"#;
    let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let after = step_record(&s.engine, &id, "after").outputs;
    assert_eq!((after["last"].clone(), after["n"].clone()), (json!(20200106), json!(5)));
    assert_eq!(after["sum"], json!(5 * 20200103));

    let kinds = baton_core::engine::built_in_kinds();
    let bad = "id: b\nsecrets: [token]\nsteps:\n  - {id: l, type: while, condition: '${x < 1}', carry: {iteration: 0, add: 1, x: '${token}'}, steps: [{id: add, type: noop}]}\n  - {id: f, type: foreach, over: '${[1]}', carry: {y: 1}, steps: [{id: a, type: noop}]}\n";
    let source = Source::new("b.yaml", bad, Format::Yaml);
    let errors: Vec<String> = match baton_core::Workflow::load(&source, &kinds) {
        Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
        Ok(_) => panic!("valid"),
    };
    for want in [
        "step `l`: carry.iteration: `iteration` is not a name the body can use",
        "step `l`: carry.add: `add` is also a step of the body",
        "step `l`: carry.x: column 3: `token` is a secret",
        "step `f`: carry: ",
    ] {
        assert!(errors.iter().any(|e| e.contains(want)), "missing {want:?} in {errors:#?}");
    }
}

#[tokio::test]
async fn an_interrupted_while_resumes_with_its_carried_values() {
    let dir = tempfile::tempdir().unwrap();
    let flaky = leak(Flaky { hold: Some(Duration::from_secs(60)), ..Default::default() });
    let yaml = "id: carried\nsteps:\n  - {id: again, type: while, carry: {i: 0}, condition: '${i < 4}', steps: [{id: inc, type: noop, params: {i: '${i + 1}'}}, {id: w, type: flaky, depends_on: [inc], params: {i: '${i}'}}]}\n";
    {
        let s = engine_with(Some(flaky), Some(dir.path()));
        let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
        s.settle().await;
        // Two iterations end; the engine closes while the third runs.
        s.advance(Duration::from_secs(150)).await;
        assert_eq!(s.engine.rollup(&id, 0).unwrap().unwrap().running, vec![2]);
        s.engine.close().await;
    }
    let s = engine_with(Some(flaky), Some(dir.path()));
    let resumed = s.engine.recover().unwrap();
    let run = finish(&s, &resumed[0].0).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(step_record(&s.engine, &run.id, "again").outputs["i"], json!(4));
    // Each iteration's body saw the value carried into it, before the restart and after.
    let seen = flaky.seen.lock().unwrap();
    let mut values: Vec<u64> =
        seen.iter().map(|(_, _, params)| params["i"].as_u64().unwrap()).collect();
    assert!(values.len() >= 4, "{values:?}");
    values.dedup();
    assert_eq!(values, [0, 1, 2, 3], "in order, the interrupted one relaunched with its own value");
}

#[tokio::test]
async fn a_subworkflow_that_does_not_wait_starts_a_run_and_goes_on() {
    let s = engine_with(None, None);
    let child = Source::new("c.yaml", "id: publish\nparams: {table: none}\nsteps:\n  - {id: slow, type: sleep, duration: 1h}\n  - {id: done, type: noop, depends_on: [slow], params: {t: '${table}'}}\n", Format::Yaml);
    s.engine.register(child.parse().unwrap()).unwrap();
    let yaml = "id: parent\nsteps:\n  - {id: kick, type: subworkflow, workflow: publish, wait: false, params: {table: events}}\n  - {id: next, type: noop, depends_on: [kick], params: {started: '${kick.run_id}'}}\n";
    let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
    s.settle().await;
    let parent = s.engine.run(&id).unwrap().unwrap();
    assert_eq!(parent.status, RunStatus::Succeeded, "the parent does not wait: {:?}", parent.error);
    let started =
        step_record(&s.engine, &id, "next").outputs["started"].as_str().unwrap().to_owned();
    let child = s.engine.run(&started).unwrap().unwrap();
    assert_eq!(
        (child.workflow_id.as_str(), child.parent.is_none()),
        ("publish", true),
        "a run of its own"
    );
    assert!(!child.status.is_terminal(), "{:?}", child.status);
    s.advance(Duration::from_secs(3600)).await;
    assert_eq!(finish(&s, &started).await.status, RunStatus::Succeeded);
    assert_eq!(step_record(&s.engine, &started, "done").outputs["t"], json!("events"));

    let kinds = baton_core::engine::built_in_kinds();
    let bad = Source::new(
        "b.yaml",
        "id: b\nsteps:\n  - {id: k, type: subworkflow, file: c.yaml, wait: false}\n",
        Format::Yaml,
    );
    let error = baton_core::Workflow::load(&bad, &kinds).unwrap_err().to_string();
    assert!(error.contains("step `k`: wait: `wait: false` starts a run of a registered `workflow`, not of a `file`"), "{error}");
}

#[tokio::test]
async fn a_foreach_over_a_product_runs_every_combination() {
    let s = engine_with(None, None);
    let yaml = r#"
id: backfill
params: {days: [1, 2, 3]}
steps:
  - id: each
    type: foreach
    over: {region: [eu, us], day: "${days}"}
    steps:
      - {id: load, type: noop, params: {key: "${region + '-' + str(day) + '@' + str(iteration)}"}}
"#;
    let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    assert_eq!(step_record(&s.engine, &id, "each").outputs["iterations"], json!(6));
    let keys: Vec<String> = (0..6)
        .map(|i| {
            let it = format!("{id}:each:{i}");
            step_record(&s.engine, &it, "load").outputs["key"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(keys, ["eu-1@0", "eu-2@1", "eu-3@2", "us-1@3", "us-2@4", "us-3@5"]);

    let kinds = baton_core::engine::built_in_kinds();
    let bad = "id: b\nsecrets: [token]\nsteps:\n  - {id: f, type: foreach, as: x, over: {iteration: [1], a: 5, t: '${[token]}'}, steps: [{id: in, type: noop}]}\n";
    let errors = baton_core::Workflow::load(&Source::new("b.yaml", bad, Format::Yaml), &kinds)
        .unwrap_err()
        .to_string();
    for want in [
        "over.iteration: `iteration` cannot name an item",
        "over.a: expected a list",
        "as: the items of a product are named by the keys of `over`",
        "over.t: column 4: `token` is a secret",
    ] {
        assert!(errors.contains(want), "missing {want:?} in {errors}");
    }
}

#[tokio::test]
async fn a_foreach_collects_its_iterations_outputs_as_lists() {
    let s = engine_with(None, None);
    let yaml = r#"
id: collect
steps:
  - id: per_day
    type: foreach
    over: "${[1, 2, 3]}"
    as: day
    steps:
      - {id: load, type: noop, params: {rows: "${day * 10}"}}
      - {id: odd, type: noop, when: "${day % 2 == 1}", params: {day: "${day}"}}
  - {id: total, type: noop, depends_on: [per_day], params: {sum: "${sum(per_day.outputs.load.rows)}", odd: "${per_day.outputs.odd.day}"}}
"#;
    let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let total = step_record(&s.engine, &id, "total").outputs;
    assert_eq!(total["sum"], json!(60));
    assert_eq!(total["odd"], json!([1, null, 3]), "null where an iteration's step gave none");
}

/// A loop whose iteration 2 fails the first time it runs (it leaves a file saying so);
/// every iteration notes that it ran in `ran`.
fn flaky_loop(dir: &std::path::Path, retry: &str) -> String {
    let dir = dir.display();
    format!(
        r#"
id: again
params: {{dir: '{dir}'}}
steps:
  - {{id: prep, type: noop, params: {{stamp: "${{now()}}"}}}}
  - id: each
    type: foreach
    over: "${{range(0, 4)}}"
    depends_on: [prep]{retry}
    steps:
      - {{id: work, type: shell, command: 'echo ${{item}} >> ${{dir}}/ran; if [ ${{item}} = 2 ] && [ ! -e ${{dir}}/failed ]; then touch ${{dir}}/failed; exit 1; fi'}}
      - {{id: tell, type: noop, depends_on: [work], params: {{v: "${{item * 10}}"}}}}
"#
    )
}

fn ran(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("ran")).unwrap_or_default();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.sort();
    lines
}

#[tokio::test]
async fn a_retried_or_restarted_foreach_reruns_only_the_iterations_that_did_not_succeed() {
    // A retry of the loop step: attempt 2 takes iterations 0, 1 and 3 from attempt 1.
    let dir = tempfile::tempdir().unwrap();
    let s = engine_with(None, None);
    let wf =
        workflow(&s.engine, &flaky_loop(dir.path(), "\n    retry: {max_attempts: 2, delay: 1s}"));
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    assert_eq!(ran(dir.path()), ["0", "1", "2", "2", "3"], "only iteration 2 ran twice");
    let each = step_record(&s.engine, &id, "each");
    assert_eq!(each.attempt, 2);
    assert_eq!(
        (each.outputs["succeeded"].clone(), each.outputs["reused"].clone()),
        (json!(4), json!(3))
    );
    assert_eq!(each.outputs["outputs"]["tell"]["v"], json!([0, 10, 20, 30]), "taken and run alike");

    // A restart of a run whose loop failed: only the failed iteration runs again.
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(&s.engine, &flaky_loop(dir.path(), ""));
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    let again = s.engine.restart(&id, None).await.unwrap();
    assert_eq!(finish(&s, &again).await.status, RunStatus::Succeeded);
    assert_eq!(ran(dir.path()), ["0", "1", "2", "2", "3"]);
    let each = step_record(&s.engine, &again, "each");
    assert_eq!(each.outputs["reused"], json!(3));
    assert_eq!(each.outputs["outputs"]["tell"]["v"], json!([0, 10, 20, 30]));
    // The taken iterations are the restarted run's own records.
    let taken = s.engine.run(&format!("{again}:each:0")).unwrap().unwrap();
    assert_eq!(taken.status, RunStatus::Succeeded);
    assert_eq!(taken.parent.unwrap().run_id, again);

    // What the loop is given changed (`prep` ran again, at another time): all of it runs.
    let dir = tempfile::tempdir().unwrap();
    let wf = workflow(&s.engine, &flaky_loop(dir.path(), ""));
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Failed);
    s.advance(Duration::from_secs(60)).await;
    let again = s.engine.restart(&id, Some("prep")).await.unwrap();
    assert_eq!(finish(&s, &again).await.status, RunStatus::Succeeded);
    assert_eq!(ran(dir.path()), ["0", "0", "1", "1", "2", "2", "3", "3"]);
    assert!(step_record(&s.engine, &again, "each").outputs.get("reused").is_none());
}

#[tokio::test]
async fn hostile_values_through_a_product_or_a_carry_stay_text_in_a_shell_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        &format!(
            r#"
id: hostile
params: {{items: [], first: ''}}
steps:
  - id: each
    type: foreach
    over: {{x: "${{items}}", y: [1]}}
    steps:
      - {{id: a, type: shell, command: 'echo "${{x}}" >> {d}/out'}}
  - id: loop
    type: while
    carry: {{v: "${{first}}"}}
    condition: "${{iteration < 1}}"
    steps:
      - {{id: b, type: shell, command: 'echo ${{v}} >> {d}/out'}}
"#
        ),
    );
    let hostile = format!("$(touch {d}/pwned); touch {d}/pwned2");
    let run = s
        .engine
        .start(
            wf,
            params(&[("items", json!([hostile.clone()])), ("first", json!(hostile.clone()))]),
        )
        .await
        .unwrap();
    assert_eq!(finish(&s, &run).await.status, RunStatus::Succeeded);
    assert!(!dir.path().join("pwned").exists() && !dir.path().join("pwned2").exists());
    let out = std::fs::read_to_string(dir.path().join("out")).unwrap();
    assert_eq!(out, format!("{hostile}\n{hostile}\n"), "the values arrive as text");
}

//! Retention on a virtual clock: what a prune deletes (finished runs with their trees, old
//! signals and firings) and what it keeps (unfinished runs, what triggers need to fire
//! neither twice nor never).

mod support;

use baton_core::model::{Format, Source};
use baton_core::{Engine, Pruned, Retention, RunStatus, StartOptions};
use indexmap::IndexMap;
use serde_json::json;
use std::time::Duration;
use support::{finish, workflow, Setup, LIMIT, START};

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

fn register(engine: &Engine, yaml: &str) {
    engine.register(Source::new("t.yaml", yaml, Format::Yaml).parse().unwrap()).unwrap();
}

fn run_ids(engine: &Engine) -> Vec<String> {
    engine.runs().unwrap().into_iter().filter(|r| r.parent.is_none()).map(|r| r.id).collect()
}

/// A run with a step, a foreach of two iterations and a subworkflow: one run, three child
/// runs, six step records.
const TREE: &str = "id: tree\nsteps:\n  - {id: a, type: noop}\n  - {id: each, type: foreach, over: '${[1, 2]}', depends_on: [a], steps: [{id: body, type: noop}]}\n  - {id: sub, type: subworkflow, workflow: leaf, depends_on: [a]}\n";

#[tokio::test]
async fn finished_runs_go_with_their_trees_once_past_retention_and_unfinished_ones_stay() {
    let s = Setup::open(Engine::builder().retention(Retention::default()));
    register(&s.engine, "id: leaf\nsteps:\n  - {id: only, type: noop}\n");
    register(&s.engine, TREE);
    register(&s.engine, "id: waits\nsteps:\n  - {id: w, type: wait_signal, signal: never}\n");
    let start = |request: Option<&str>| StartOptions {
        request_id: request.map(str::to_owned),
        ..StartOptions::default()
    };
    let old = s.engine.start_with("tree", start(Some("once"))).await.unwrap();
    assert_eq!(finish(&s, &old).await.status, RunStatus::Succeeded);
    let waiting = s.engine.start_registered("waits", IndexMap::new()).await.unwrap();
    s.settle().await;
    let children = [format!("{old}:each:0"), format!("{old}:each:1"), format!("{old}:sub")];
    for child in &children {
        assert!(s.engine.run(child).unwrap().is_some(), "{child} exists before");
    }

    // 29 days on, nothing is old enough; the background pass runs hourly meanwhile.
    s.advance(29 * DAY).await;
    assert_eq!(run_ids(&s.engine), vec![old.clone(), waiting.clone()]);
    let recent = s.engine.start_registered("tree", IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &recent).await.status, RunStatus::Succeeded);

    // Past 30 days the old run goes, with its child runs, steps and timeline.
    s.advance(DAY + HOUR).await;
    assert_eq!(run_ids(&s.engine), vec![waiting.clone(), recent.clone()]);
    assert!(s.engine.run(&old).unwrap().is_none());
    for child in &children {
        assert!(s.engine.run(child).unwrap().is_none(), "{child} went with its parent");
    }
    assert!(s.engine.timeline(&old).is_err());
    // The unfinished run waits on, however old; the recent one is whole.
    assert_eq!(s.engine.run(&waiting).unwrap().unwrap().status, RunStatus::Running);
    assert_eq!(
        s.engine.run(&format!("{recent}:sub")).unwrap().unwrap().status,
        RunStatus::Succeeded
    );
    // The request id is free again: its run is gone.
    let again = s.engine.start_with("tree", start(Some("once"))).await.unwrap();
    assert_ne!(again, old);
    s.engine.close().await;
}

#[tokio::test]
async fn a_prune_counts_each_kind_and_a_dry_run_deletes_nothing() {
    let s = Setup::open(Engine::builder().retention(Retention::forever()));
    register(&s.engine, "id: leaf\nsteps:\n  - {id: only, type: noop}\n");
    register(&s.engine, TREE);
    let run = s.engine.start_registered("tree", IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &run).await.status, RunStatus::Succeeded);
    for i in 0..3 {
        s.engine.signal("ping", [("i".to_string(), json!(i))].into_iter().collect()).await.unwrap();
    }
    s.advance(DAY).await;
    let fresh = s.engine.signal("ping", IndexMap::new()).await.unwrap();

    let dry = s.engine.prune(HOUR, true).await.unwrap();
    let Pruned { runs, child_runs, steps, events, signals, firings, cache_entries, dry_run } =
        dry.clone();
    assert_eq!((runs, child_runs, steps, signals, firings, dry_run), (1, 3, 6, 3, 0, true));
    assert_eq!(cache_entries, 0);
    assert!(events > 0, "{dry:?}");
    assert!(s.engine.run(&run).unwrap().is_some(), "a dry run deletes nothing");
    assert_eq!(s.engine.signals(Some("ping")).unwrap().len(), 4);

    let done = s.engine.prune(HOUR, false).await.unwrap();
    assert_eq!(done, Pruned { dry_run: false, ..dry });
    assert!(s.engine.run(&run).unwrap().is_none());
    let left: Vec<String> = s.engine.signals(None).unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(left, vec![fresh], "only the signal younger than an hour is left");
    assert_eq!(s.engine.prune(HOUR, false).await.unwrap(), Pruned::default(), "nothing twice");
    s.engine.close().await;
}

#[tokio::test]
async fn a_cron_trigger_fires_each_time_once_across_prunes_and_keeps_its_newest_firing() {
    let s = Setup::open(Engine::builder().retention(Retention::forever()));
    register(
        &s.engine,
        "id: hourly\ntriggers:\n  - cron: '0 * * * *'\nsteps:\n  - {id: a, type: noop}\n",
    );
    baton_core::triggers::start_scheduler(&s.engine);
    s.settle().await;
    s.advance(3 * HOUR).await;
    assert_eq!(s.engine.firings("hourly").unwrap().len(), 3);

    let pruned = s.engine.prune(Duration::ZERO, false).await.unwrap();
    assert_eq!((pruned.runs, pruned.firings), (3, 2), "{pruned:?}");
    let kept = s.engine.firings("hourly").unwrap();
    assert_eq!(kept.len(), 1, "the newest firing stays");
    assert!(run_ids(&s.engine).is_empty());

    // Nothing fires again for the hours already handled; the next hour fires once.
    s.advance(Duration::from_secs(30 * 60)).await;
    assert!(run_ids(&s.engine).is_empty());
    s.advance(Duration::from_secs(30 * 60)).await;
    assert_eq!(run_ids(&s.engine).len(), 1);
    let firings = s.engine.firings("hourly").unwrap();
    assert_eq!(firings.len(), 2);
    assert!(firings[1].scheduled_ms > kept[0].scheduled_ms);
    s.engine.close().await;
}

#[tokio::test]
async fn a_signal_trigger_never_starts_again_from_signals_it_handled_after_they_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let time = baton_core::testing::VirtualTime::starting_at(START);
    let open = || {
        let builder = Engine::builder().store_dir(dir.path()).retention(Retention::forever());
        time.configure(builder).open().unwrap()
    };
    let engine = open();
    register(&engine, "id: on_go\ntriggers:\n  - signal: go\nsteps:\n  - {id: a, type: noop}\n");
    baton_core::triggers::start_scheduler(&engine);
    time.settled(LIMIT).await.unwrap();
    for _ in 0..3 {
        engine.signal("go", IndexMap::new()).await.unwrap();
        time.settled(LIMIT).await.unwrap();
    }
    assert_eq!(run_ids(&engine).len(), 3);
    time.advanced(DAY, LIMIT).await.unwrap();
    let pruned = engine.prune(HOUR, false).await.unwrap();
    assert_eq!((pruned.runs, pruned.signals), (3, 3), "{pruned:?}");
    engine.close().await;
    drop(engine);

    // A new engine on the same store looks on from the trigger's cursor.
    let engine = open();
    baton_core::triggers::start_scheduler(&engine);
    time.settled(LIMIT).await.unwrap();
    assert!(run_ids(&engine).is_empty(), "no start again");
    engine.signal("go", IndexMap::new()).await.unwrap();
    time.settled(LIMIT).await.unwrap();
    assert_eq!(run_ids(&engine).len(), 1, "a new signal starts one run");
    engine.close().await;
}

#[tokio::test]
async fn a_wait_matches_a_signal_of_its_window_among_many_older_ones() {
    let s = Setup::open(Engine::builder().retention(Retention::forever()));
    for i in 0..200 {
        s.engine
            .signal("table", [("n".to_string(), json!(i))].into_iter().collect())
            .await
            .unwrap();
    }
    s.advance(2 * DAY).await;
    s.engine.signal("table", [("n".to_string(), json!(-1))].into_iter().collect()).await.unwrap();
    let wf = workflow(
        &s.engine,
        "id: w\nsteps:\n  - {id: w, type: wait_signal, signal: table, match: \"${signal.n < 1}\"}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    let details = s.engine.details(&id).unwrap();
    assert_eq!(details.steps[0].record.outputs["n"], json!(-1), "not n = 0, sent 2 days ago");
    s.engine.close().await;
}

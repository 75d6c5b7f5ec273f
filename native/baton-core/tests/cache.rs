//! The result cache: a step with `cache` runs once while its key is unchanged and its
//! entry young; its later runs are SUCCEEDED from the entry, marked with where it came from.

mod support;

use baton_core::engine::{Event, RunStatus, StepStatus};
use baton_core::model::{Format, Source};
use baton_core::{Engine, StoreLocation};
use indexmap::IndexMap;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// A workflow whose `build` appends a line to `ledger` each time it really runs, and whose
/// `use` (no cache) appends to `ledger.use` and reads `build`'s output.
fn ledger_workflow(ledger: &Path, command_tail: &str, cache: &str) -> String {
    let l = ledger.display();
    format!(
        "id: cached\nparams: {{date: '2026-01-01', other: 1}}\nsteps:\n  - id: build\n    type: shell\n    command: \"echo ${{date}} >> {l}; echo rows=3 >> $BATON_OUTPUT{command_tail}\"\n    cache: {cache}\n  - id: use\n    type: shell\n    depends_on: [build]\n    command: \"echo ${{build.rows}} >> {l}.use; echo got=${{build.rows}} >> $BATON_OUTPUT\"\n"
    )
}

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

async fn run(s: &Setup, yaml: &str, params: &[(&str, serde_json::Value)]) -> String {
    let params: IndexMap<String, serde_json::Value> =
        params.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let id = s.engine.start(workflow(&s.engine, yaml), params).await.unwrap();
    assert_eq!(finish(s, &id).await.status, RunStatus::Succeeded, "{:?}", statuses(&s.engine, &id));
    id
}

fn record(engine: &Engine, run_id: &str, step: &str) -> baton_core::StepRecord {
    let d = engine.details(run_id).unwrap();
    d.steps.into_iter().find(|v| v.id == step).unwrap().record
}

#[tokio::test]
async fn a_cached_step_runs_once_and_serves_its_outputs_to_the_steps_below() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let s = engine_with(None, None);
    let yaml = ledger_workflow(&ledger, "", "{ttl: 1d}");
    let first = run(&s, &yaml, &[]).await;
    assert_eq!(record(&s.engine, &first, "build").cached_from, None);
    let second = run(&s, &yaml, &[]).await;
    assert_eq!(lines(&ledger), 1, "the second run did not run the cached step");
    // The step below it is not cached: it ran twice, with the cached output.
    assert_eq!(lines(&ledger.with_extension("use")), 2);
    let build = record(&s.engine, &second, "build");
    assert_eq!((build.status, build.attempt), (StepStatus::Succeeded, 1));
    let from = build.cached_from.expect("marked cached");
    assert_eq!((from.run_id.as_str(), from.step_id.as_str()), (first.as_str(), "build"));
    assert_eq!(build.outputs["rows"], json!(3));
    assert_eq!(record(&s.engine, &second, "use").outputs["got"], json!(3));
    assert_eq!(record(&s.engine, &second, "use").cached_from, None);
    // The timeline says so: no RUNNING for it, a SUCCEEDED with where it came from.
    let events: Vec<(StepStatus, Option<String>)> = s
        .engine
        .timeline(&second)
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            Event::Step { step_id, status, error, .. } if step_id == "build" => {
                Some((status, error))
            }
            _ => None,
        })
        .collect();
    let note = format!("cached: from run {first}, step build");
    assert_eq!(events, vec![(StepStatus::Succeeded, Some(note))]);

    // Another value of a param the command renders is another key.
    run(&s, &yaml, &[("date", json!("2026-01-02"))]).await;
    assert_eq!(lines(&ledger), 2);
    // A param the step does not read is not part of its key.
    run(&s, &yaml, &[("other", json!(2))]).await;
    assert_eq!(lines(&ledger), 2);
    let entries = s.engine.cache_entries(Some("cached")).unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert!(entries.iter().all(|e| e.step_id == "build" && e.size > 0));
}

#[tokio::test]
async fn a_changed_definition_and_an_expired_entry_miss() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let s = engine_with(None, None);
    let yaml = ledger_workflow(&ledger, "", "{ttl: 1h}");
    run(&s, &yaml, &[]).await;
    run(&s, &yaml, &[]).await;
    assert_eq!(lines(&ledger), 1);
    // The same command, written otherwise: the step's definition changed.
    let changed = ledger_workflow(&ledger, "; true", "{ttl: 1h}");
    run(&s, &changed, &[]).await;
    assert_eq!(lines(&ledger), 2, "a changed definition runs the step again");
    run(&s, &changed, &[]).await;
    assert_eq!(lines(&ledger), 2);
    // Past its ttl, on the virtual clock, the entry serves no one.
    s.advance(Duration::from_secs(3601)).await;
    let id = run(&s, &changed, &[]).await;
    assert_eq!(lines(&ledger), 3, "an expired entry runs the step again");
    assert_eq!(record(&s.engine, &id, "build").cached_from, None);
    // Retention (the hourly pass, or `prune`) deletes expired entries; the fresh one stays.
    s.advance(Duration::from_secs(1800)).await;
    let pruned = s.engine.prune(Duration::from_secs(365 * 86_400), false).await.unwrap();
    assert_eq!(pruned.runs, 0, "{pruned:?}");
    assert_eq!(s.engine.cache_entries(None).unwrap().len(), 1);
    s.advance(Duration::from_secs(1800)).await;
    s.engine.prune(Duration::from_secs(86_400), false).await.unwrap();
    assert!(s.engine.cache_entries(None).unwrap().is_empty());
    run(&s, &changed, &[]).await;
    assert_eq!(lines(&ledger), 4);
    assert_eq!(s.engine.clear_cache(Some("other"), None).await.unwrap(), 0);
    assert_eq!(s.engine.clear_cache(Some("cached"), Some("build")).await.unwrap(), 1);
    run(&s, &changed, &[]).await;
    assert_eq!(lines(&ledger), 5, "a cleared entry runs the step again");

    // `prune` counts what it deleted.
    let s = Setup::open(Engine::builder().retention(baton_core::Retention::forever()));
    run(&s, &changed, &[]).await;
    s.advance(Duration::from_secs(7200)).await;
    assert_eq!(s.engine.cache_entries(None).unwrap().len(), 1, "listed until pruned");
    let dry = s.engine.prune(Duration::from_secs(86_400), true).await.unwrap();
    assert_eq!((dry.cache_entries, s.engine.cache_entries(None).unwrap().len()), (1, 1));
    let pruned = s.engine.prune(Duration::from_secs(86_400), false).await.unwrap();
    assert_eq!(pruned.cache_entries, 1);
    assert!(s.engine.cache_entries(None).unwrap().is_empty());
}

#[tokio::test]
async fn a_user_key_decides_what_is_the_same_work() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let s = engine_with(None, None);
    // The command reads `other` too, but the key says only `date` matters.
    let yaml = ledger_workflow(&ledger, "; echo ${other} > /dev/null", "{ttl: 1d, key: '${date}'}");
    run(&s, &yaml, &[]).await;
    run(&s, &yaml, &[("other", json!(5))]).await;
    assert_eq!(lines(&ledger), 1);
    run(&s, &yaml, &[("date", json!("2026-02-02"))]).await;
    assert_eq!(lines(&ledger), 2);
}

#[tokio::test]
async fn a_step_without_cache_is_never_served_from_it() {
    let flaky = leak(Flaky::default());
    let s = engine_with(Some(flaky), None);
    let yaml = "id: plain\nsteps:\n  - {id: a, type: flaky, cache: {ttl: 1d}}\n  - {id: b, type: flaky, depends_on: [a]}\n";
    let first = run(&s, yaml, &[]).await;
    let second = run(&s, yaml, &[]).await;
    // `a` ran once (its inputs and the run's params are its key), `b` twice.
    let seen: Vec<String> = flaky.seen.lock().unwrap().iter().map(|s| s.1.clone()).collect();
    assert_eq!(seen, [format!("{first}/a/1"), format!("{first}/b/1"), format!("{second}/b/1")]);
    assert!(record(&s.engine, &second, "a").cached_from.is_some());
    assert!(record(&s.engine, &second, "b").cached_from.is_none());
    // A failure keeps nothing.
    let failing = leak(Flaky { failures: 1, ..Flaky::default() });
    let s = engine_with(Some(failing), None);
    let yaml = "id: fails\nsteps:\n  - {id: a, type: flaky, cache: {ttl: 1d}, failure_mode: ignore_failure}\n";
    let id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
    finish(&s, &id).await;
    assert_eq!(record(&s.engine, &id, "a").status, StepStatus::Failed);
    assert!(s.engine.cache_entries(None).unwrap().is_empty());
    // Retried to success, the entry is there, and a hit counts as attempt 1.
    run(&s, yaml, &[]).await;
    let hit = run(&s, yaml, &[]).await;
    assert_eq!(failing.calls.load(Ordering::SeqCst), 2);
    assert_eq!(record(&s.engine, &hit, "a").attempt, 1);
}

/// The entry is written in the batch of the step's SUCCEEDED record: an engine closed while
/// the step runs left neither, the relaunch after the reopen writes both, once.
#[tokio::test]
async fn a_crash_before_the_success_loses_nothing_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let flaky = leak(Flaky { hold: Some(Duration::from_secs(60)), ..Default::default() });
    let open = || {
        let builder =
            Engine::builder().store_dir(&store).step_kind("flaky", Arc::new(Wrapper(flaky)));
        Setup::open(builder)
    };
    let yaml = "id: crash\nsteps:\n  - {id: a, type: flaky, cache: {ttl: 1d}}\n  - {id: b, type: noop, depends_on: [a]}\n";
    let id;
    {
        let s = open();
        id = s.engine.start(workflow(&s.engine, yaml), IndexMap::new()).await.unwrap();
        s.settle().await;
        assert_eq!(record(&s.engine, &id, "a").status, StepStatus::Running);
        s.engine.close().await;
    }
    let s = open();
    assert!(s.engine.cache_entries(None).unwrap().is_empty(), "no entry without its record");
    s.engine.recover().unwrap();
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    let entries = s.engine.cache_entries(None).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].from_run, id);
    let again = run(&s, yaml, &[]).await;
    assert_eq!(
        flaky.calls.load(Ordering::SeqCst),
        2,
        "launched twice (at least once), then served"
    );
    assert_eq!(record(&s.engine, &again, "a").cached_from.unwrap().run_id, id);
    s.engine.close().await;
}

#[test]
fn cache_is_refused_where_no_key_can_say_what_the_step_did() {
    let engine = Engine::builder().open().unwrap();
    let check = |yaml: &str| {
        let source = Source::new("c.yaml", yaml, Format::Yaml);
        let def = source.parse().map_err(|e| e.to_string());
        match def {
            Err(e) => e,
            Ok(def) => engine
                .compile(def)
                .map(|_| ())
                .map_err(|e| source.locate(e).to_string())
                .unwrap_err(),
        }
    };
    let e = check("id: x\nsteps:\n  - {id: l, type: foreach, over: '${[1]}', cache: {ttl: 1d}, steps: [{id: s, type: noop}]}\n");
    assert!(e.contains("step `l`: cache: a `foreach` step cannot be cached"), "{e}");
    let e = check("id: x\nsecrets: [token]\nsteps:\n  - {id: a, type: shell, command: 'curl ${token}', cache: {ttl: 1d}}\n");
    assert!(e.contains("`token` is a secret, and the step has `cache`"), "{e}");
    let e = check("id: x\nsteps:\n  - {id: a, type: shell, command: 'x', cache: {ttl: 1 week}}\n");
    assert!(e.contains("cache.ttl"), "{e}");
    let e = check("id: x\nsteps:\n  - {id: a, type: shell, command: 'x', cache: {key: k}}\n");
    assert!(e.contains("missing field `ttl`"), "{e}");
    let e = check(
        "id: x\nsteps:\n  - {id: a, type: shell, command: 'x', cache: {ttl: 1d, key: '${nope}'}}\n",
    );
    assert!(e.contains("cache.key") && e.contains("`nope`"), "{e}");
}

/// Two engines on one database: a success kept by one serves a run on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_sharing_a_database_share_hits() {
    let Some(url) = baton_pgtest::database() else { return };
    let db: StoreLocation = url.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ledger = dir.path().join("ledger");
    let open =
        |id: &str| Engine::builder().store(db.clone()).engine_id(id).claims(false).open().unwrap();
    let (a, b) = (open("a"), open("b"));
    let yaml = ledger_workflow(&ledger, "", "{ttl: 1d}");
    for engine in [&a, &b] {
        let source = Source::new("c.yaml", &yaml, Format::Yaml);
        let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
        let id = engine.start(wf, IndexMap::new()).await.unwrap();
        let done = tokio::time::timeout(Duration::from_secs(20), engine.wait(&id)).await;
        assert_eq!(done.unwrap().unwrap().status, RunStatus::Succeeded);
    }
    assert_eq!(lines(&ledger), 1, "the second engine was served the first one's success");
    assert_eq!(b.cache_entries(None).unwrap().len(), 1);
    a.close().await;
    b.close().await;
}

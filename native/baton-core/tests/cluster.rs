//! Several engines on one PostgreSQL database: runs spread, a dead engine's runs are taken
//! over, an engine that lost a lease writes nothing more, and a cron time fires once.
//! Skipped where PostgreSQL is not installed. Real time, short leases.

use baton_core::engine::{Event, RunStatus};
use baton_core::model::{Format, Source};
use baton_core::{Engine, StoreLocation};
use indexmap::IndexMap;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

const LEASE: Duration = Duration::from_millis(900);

fn database() -> Option<StoreLocation> {
    Some(baton_pgtest::database()?.parse().unwrap())
}

fn engine(db: &StoreLocation, id: &str) -> Engine {
    Engine::builder().store(db.clone()).engine_id(id).lease(LEASE).open().unwrap()
}

fn client(db: &StoreLocation) -> Engine {
    Engine::builder().store(db.clone()).engine_id("client").drives(false).open().unwrap()
}

fn register(engine: &Engine, yaml: &str) {
    let source = Source::new("cluster.yaml", yaml, Format::Yaml);
    engine.register(source.parse().unwrap()).unwrap();
}

async fn wait_all(engine: &Engine, ids: &[String], within: Duration) {
    let all = futures_util::future::join_all(ids.iter().map(|id| engine.wait(id)));
    let runs = tokio::time::timeout(within, all).await.expect("every run ends in time");
    for run in runs {
        let run = run.unwrap();
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_client_starts_spread_over_the_engines() {
    let Some(db) = database() else { return };
    let (a, b) = (engine(&db, "a"), engine(&db, "b"));
    let client = client(&db);
    let yaml = "id: spread\nsteps:\n  - {id: one, type: sleep, duration: 200ms}\n  - {id: two, type: noop, depends_on: [one]}\n";
    register(&client, yaml);
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(client.start_registered("spread", IndexMap::new()).await.unwrap());
    }
    assert!(client.run(&ids[0]).unwrap().unwrap().engine.is_none(), "a client drives nothing");
    wait_all(&client, &ids, Duration::from_secs(30)).await;
    let mut by_engine: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let run = client.run(id).unwrap().unwrap();
        *by_engine.entry(run.engine.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(
        by_engine.keys().cloned().collect::<HashSet<_>>(),
        ["a", "b"].map(String::from).into(),
        "{by_engine:?}"
    );
    let engines = client.engines().unwrap();
    let live: Vec<&str> = engines.iter().filter(|e| e.alive).map(|e| e.id.as_str()).collect();
    assert_eq!(live, ["a", "b"], "{engines:?}");
    assert!(engines.iter().all(|e| e.kinds.contains(&"shell".to_owned())));
    a.close().await;
    b.close().await;
    let engines = client.engines().unwrap();
    assert!(engines.iter().all(|e| e.stopped && !e.alive && e.runs == 0), "{engines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_of_a_dead_engine_are_taken_over_and_finish() {
    let Some(db) = database() else { return };
    let doomed = engine(&db, "doomed");
    let yaml = "id: takeover\nsteps:\n  - {id: long, type: sleep, duration: 1500ms}\n  - {id: after, type: noop, depends_on: [long]}\n";
    register(&doomed, yaml);
    let id = doomed.start_registered("takeover", IndexMap::new()).await.unwrap();
    assert_eq!(doomed.run(&id).unwrap().unwrap().engine.as_deref(), Some("doomed"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Dropped without closing: no word to the others, its heartbeat just stops.
    let died = Instant::now();
    drop(doomed);
    let heir = engine(&db, "heir");
    let run = tokio::time::timeout(Duration::from_secs(20), heir.wait(&id)).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(run.engine.as_deref(), Some("heir"));
    let taken = died.elapsed();
    assert!(taken < LEASE * 2 + Duration::from_millis(1500) + Duration::from_secs(3), "{taken:?}");
    let timeline = heir.timeline(&id).unwrap();
    let takeover = timeline.iter().find_map(|e| match e {
        Event::Run { engine: Some(engine), error, .. } => Some((engine.clone(), error.clone())),
        _ => None,
    });
    assert_eq!(
        takeover,
        Some(("heir".to_owned(), Some("taken over from engine doomed".to_owned()))),
        "{timeline:?}"
    );
    heir.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_lost_a_lease_writes_nothing_more_for_the_run() {
    let Some(db) = database() else { return };
    let a = engine(&db, "fenced");
    let yaml = "id: fence\nsteps:\n  - {id: first, type: sleep, duration: 600ms}\n  - {id: second, type: noop, depends_on: [first]}\n";
    register(&a, yaml);
    let id = a.start_registered("fence", IndexMap::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // Another engine claims the run, as after this one froze past its lease; it is live,
    // so the run is not taken back.
    let thief = Engine::builder()
        .store(db.clone())
        .engine_id("thief")
        .claims(false)
        .lease(Duration::from_secs(30))
        .open()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lease = r#"{"engine":"thief","generation":7}"#;
    baton_pgtest::execute(
        &db.to_string(),
        &format!(
            "UPDATE baton_kv SET v = convert_to('{lease}', 'UTF8') \
             WHERE k = '\\x6f'::BYTEA || convert_to('{id}', 'UTF8')"
        ),
    );
    // The step ends (600 ms) and its end is refused: the engine gives the run up. A waiter
    // follows the run in the store, where the thief (which drives nothing) leaves it.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let waited = tokio::time::timeout(Duration::from_millis(300), a.wait(&id)).await;
    assert!(waited.is_err(), "the run did not end: {waited:?}");
    let engines = a.engines().unwrap();
    let held = |id: &str| engines.iter().find(|e| e.id == id).map(|e| e.runs);
    assert_eq!((held("fenced"), held("thief")), (Some(0), Some(1)), "{engines:?}");
    let details = a.details(&id).unwrap();
    assert_eq!(details.run.status, RunStatus::Running, "the run stays as the thief found it");
    let first = &details.steps[0].record;
    assert_eq!(
        first.status,
        baton_core::StepStatus::Running,
        "what the step reported was discarded"
    );
    assert_eq!(details.steps[1].record.attempt, 0, "nothing more was launched");
    a.close().await;
    thief.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_time_fires_once_however_many_engines_race() {
    let Some(db) = database() else { return };
    let engines: Vec<Engine> = (0..3).map(|i| engine(&db, &format!("cron-{i}"))).collect();
    for engine in &engines {
        baton_core::triggers::start_scheduler(engine);
    }
    // Registered by a client once the engines run: they see it within a second.
    let yaml =
        "id: tick\ntriggers:\n  - {cron: \"* * * * * *\"}\nsteps:\n  - {id: a, type: noop}\n";
    register(&client(&db), yaml);
    tokio::time::sleep(Duration::from_millis(4000)).await;
    for engine in &engines {
        engine.close().await;
    }
    let reader = client(&db);
    let firings = reader.firings("tick").unwrap();
    let times: Vec<u64> = firings.iter().map(|f| f.scheduled_ms).collect();
    let distinct: HashSet<u64> = times.iter().copied().collect();
    assert!(times.len() >= 2, "{firings:?}");
    let mut sorted = times.clone();
    sorted.sort();
    assert!(sorted.windows(2).all(|w| w[1] - w[0] == 1000), "every second fired: {sorted:?}");
    assert_eq!(times.len(), distinct.len(), "a time fired twice: {firings:?}");
    let runs = reader.runs().unwrap();
    let started: HashSet<&str> = firings.iter().filter_map(|f| f.run_id.as_deref()).collect();
    assert_eq!(runs.len(), started.len(), "one run per firing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_from_anywhere_reaches_the_engine_driving_the_run() {
    let Some(db) = database() else { return };
    let owner = engine(&db, "owner");
    let yaml = "id: steer\nsteps:\n  - {id: nap, type: sleep, duration: 30s}\n  - {id: after, type: noop, depends_on: [nap]}\n";
    register(&owner, yaml);
    let id = owner.start_registered("steer", IndexMap::new()).await.unwrap();
    let client = client(&db);
    client.pause(&id).await.expect("applied by the owner");
    assert_eq!(client.run(&id).unwrap().unwrap().status, RunStatus::Paused);
    client.resume(&id).await.unwrap();
    let refused = client.skip_step(&id, "nope").await.unwrap_err();
    assert!(refused.to_string().contains("has no step `nope`"), "{refused}");
    assert_eq!(refused.kind(), baton_core::error::ErrorKind::UnknownStep);
    client.stop(&id, "enough").await.unwrap();
    let run =
        tokio::time::timeout(Duration::from_secs(10), client.wait(&id)).await.unwrap().unwrap();
    assert_eq!((run.status, run.engine.as_deref()), (RunStatus::Stopped, Some("owner")));
    assert_eq!(run.error.as_deref(), Some("enough"));
    let late = client.pause(&id).await.unwrap_err();
    assert!(late.to_string().contains("cannot pause run"), "{late}");
    owner.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_strategy_holds_across_engines() {
    let Some(db) = database() else { return };
    let engines: Vec<Engine> = (0..3).map(|i| engine(&db, &format!("seq-{i}"))).collect();
    let yaml = "id: one-at-a-time\nrun_strategy: sequential\nsteps:\n  - {id: nap, type: sleep, duration: 150ms}\n";
    register(&engines[0], yaml);
    // Starts from every engine at once, and from a client.
    let client = client(&db);
    let starts = (0..9).map(|i| {
        let engine = if i % 4 == 3 { &client } else { &engines[i % 3] };
        engine.start_registered("one-at-a-time", IndexMap::new())
    });
    let ids: Vec<String> =
        futures_util::future::join_all(starts).await.into_iter().map(Result::unwrap).collect();
    wait_all(&client, &ids, Duration::from_secs(60)).await;
    let mut spans: Vec<(u64, u64, String)> = ids
        .iter()
        .map(|id| {
            let run = client.run(id).unwrap().unwrap();
            let by = format!("{} {:?} created {}", run.id, run.engine, run.created_ms);
            (run.started_ms.unwrap(), run.ended_ms.unwrap(), by)
        })
        .collect();
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "two runs at once: {spans:?}");
    }
    for engine in &engines {
        engine.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_sent_anywhere_wakes_the_engine_waiting_for_it() {
    let Some(db) = database() else { return };
    let waiter = engine(&db, "waiter");
    let yaml = "id: wake\nsteps:\n  - {id: ready, type: wait_signal, signal: go}\n  - {id: after, type: noop, depends_on: [ready]}\n";
    register(&waiter, yaml);
    let id = waiter.start_registered("wake", IndexMap::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(waiter.run(&id).unwrap().unwrap().status, RunStatus::Running);
    let client = client(&db);
    let sent = Instant::now();
    client.signal("go", IndexMap::new()).await.unwrap();
    let run =
        tokio::time::timeout(Duration::from_secs(5), waiter.wait(&id)).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    assert!(sent.elapsed() < Duration::from_secs(1), "woken after {:?}", sent.elapsed());
    waiter.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_at_capacity_leaves_the_runs_it_starts_to_the_others() {
    let Some(db) = database() else { return };
    let busy = Engine::builder().store(db.clone()).engine_id("busy").lease(LEASE).max_runs(2);
    let busy = busy.open().unwrap();
    let idle = engine(&db, "idle");
    let yaml = "id: capped\nsteps:\n  - {id: nap, type: sleep, duration: 700ms}\n";
    register(&busy, yaml);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(busy.start_registered("capped", IndexMap::new()).await.unwrap());
    }
    let owned = ids.iter().filter(|id| busy.run(id).unwrap().unwrap().engine.is_some()).count();
    assert_eq!(owned, 2, "the first two are its own, the others wait for an engine");
    wait_all(&busy, &ids, Duration::from_secs(30)).await;
    let by_idle = ids
        .iter()
        .filter(|id| busy.run(id).unwrap().unwrap().engine.as_deref() == Some("idle"))
        .count();
    assert!(by_idle >= 2, "{by_idle} runs went to the idle engine");
    let info = busy.engines().unwrap().into_iter().find(|e| e.id == "busy").unwrap();
    assert_eq!(info.max_runs, Some(2));
    busy.close().await;
    idle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breakpoint_set_anywhere_holds_on_every_engine() {
    let Some(db) = database() else { return };
    let driver = engine(&db, "driver");
    let yaml = "id: held\nsteps:\n  - {id: first, type: sleep, duration: 1200ms}\n  - {id: second, type: noop, depends_on: [first]}\n";
    register(&driver, yaml);
    let client = client(&db);
    client.set_breakpoint("held", "second", true).await.unwrap();
    let id = driver.start_registered("held", IndexMap::new()).await.unwrap();
    let waiting = async {
        loop {
            let details = client.details(&id).unwrap();
            if details.steps[1].record.status == baton_core::StepStatus::Waiting {
                return details.steps[1].record.waiting_for.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let why = tokio::time::timeout(Duration::from_secs(10), waiting).await.unwrap();
    assert_eq!(why.as_deref(), Some("breakpoint"));
    client.continue_step(&id, "second").await.unwrap();
    let run =
        tokio::time::timeout(Duration::from_secs(10), client.wait(&id)).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded);
    driver.close().await;
}

const WIDE: &str = "id: wide\nparams: {greeting: hi}\nsteps:\n  - {id: prep, type: noop}\n  - {id: loop, type: foreach, over: '${range(0, 24)}', max_parallel: 6, depends_on: [prep], steps: [{id: body, type: shell, command: 'echo ${greeting}-${item}; sleep 0.3', params: {run: '${run_id()}'}}]}\n";

/// The engines that drove the iterations of the loop `loop` of run `id`, with how many each.
fn iteration_engines(engine: &Engine, id: &str, n: u64) -> HashMap<String, usize> {
    let mut by: HashMap<String, usize> = HashMap::new();
    for i in 0..n {
        let run =
            engine.run(&format!("{id}:loop:{i}")).unwrap().expect("every iteration is stored");
        assert_eq!(run.status, RunStatus::Succeeded, "{run:?}");
        // Whichever engine drove it, an iteration is evaluated for the run of its loop.
        let body = &engine.details(&run.id).unwrap().steps[0].record.outputs;
        assert_eq!(body.get("run"), Some(&serde_json::json!(id)), "{}", run.id);
        *by.entry(run.engine.expect("a child run names its engine")).or_default() += 1;
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_spreads_its_iterations_over_the_engines() {
    let Some(db) = database() else { return };
    let (a, b) = (engine(&db, "loop-a"), engine(&db, "loop-b"));
    register(&a, WIDE);
    // b must be seen as a peer before the loop starts.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let id = a.start_registered("wide", IndexMap::new()).await.unwrap();
    let run = tokio::time::timeout(Duration::from_secs(30), a.wait(&id)).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let by = iteration_engines(&a, &id, 24);
    // One of every two stays with the loop's engine; the others go to whichever claims them.
    assert!(by.get("loop-a").is_some_and(|n| *n >= 12), "{by:?}");
    assert!(by.get("loop-b").is_some_and(|n| *n >= 3), "{by:?}");
    assert_eq!(by.values().sum::<usize>(), 24, "{by:?}");
    let rollup = a.rollup(&id, 1).unwrap().unwrap();
    assert_eq!(rollup.counts.get(&RunStatus::Succeeded), Some(&24));
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iterations_of_a_dead_engine_are_taken_over() {
    let Some(db) = database() else { return };
    let (a, b) = (engine(&db, "keeps"), engine(&db, "dies"));
    register(&a, WIDE);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let id = a.start_registered("wide", IndexMap::new()).await.unwrap();
    // Killed as soon as it drives an iteration (looked for until then, for 10 s at most:
    // under load the first claim takes a while).
    let held = || {
        (0..24)
            .filter_map(|i| a.run(&format!("{id}:loop:{i}")).unwrap())
            .filter(|r| r.engine.as_deref() == Some("dies") && !r.status.is_terminal())
            .count()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while held() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held() > 0, "the doomed engine drives iterations when it dies");
    drop(b);
    let run = tokio::time::timeout(Duration::from_secs(40), a.wait(&id)).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.error);
    let by = iteration_engines(&a, &id, 24);
    assert_eq!(by.values().sum::<usize>(), 24, "{by:?}");
    a.close().await;
}

/// When step `step` of each run ran, from its record: (started, ended, run).
fn step_spans(engine: &Engine, ids: &[String], step: usize) -> Vec<(u64, u64, String)> {
    let mut spans: Vec<(u64, u64, String)> = ids
        .iter()
        .map(|id| {
            let record = &engine.details(id).unwrap().steps[step].record;
            (record.started_ms.unwrap(), record.ended_ms.unwrap(), id.clone())
        })
        .collect();
    spans.sort();
    spans
}

/// The most spans open at once (one ending as another starts is not both at once).
fn most_at_once(spans: &[(u64, u64, String)]) -> usize {
    spans
        .iter()
        .map(|(start, _, _)| spans.iter().filter(|(s, e, _)| s <= start && e > start).count())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_limit_holds_across_engines() {
    let Some(db) = database() else { return };
    let client = client(&db);
    client.set_limit("db", Some(2)).await.unwrap();
    let (a, b) = (engine(&db, "a"), engine(&db, "b"));
    let yaml =
        "id: tagged\nsteps:\n  - {id: load, type: shell, command: 'sleep 0.3', tags: [db]}\n";
    register(&client, yaml);
    let mut ids = Vec::new();
    for i in 0..10 {
        let from = if i % 2 == 0 { &a } else { &b };
        ids.push(from.start_registered("tagged", IndexMap::new()).await.unwrap());
    }
    wait_all(&client, &ids, Duration::from_secs(60)).await;
    let spans = step_spans(&client, &ids, 0);
    assert_eq!(
        most_at_once(&spans),
        2,
        "at most two `db` steps at once, and two did run: {spans:?}"
    );
    let engines: HashSet<String> =
        ids.iter().map(|id| client.run(id).unwrap().unwrap().engine.unwrap_or_default()).collect();
    assert_eq!(engines, ["a", "b"].map(String::from).into());
    a.close().await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_engine_keeps_its_tag_slots_until_its_runs_are_taken_over() {
    let Some(db) = database() else { return };
    let client = client(&db);
    client.set_limit("db", Some(1)).await.unwrap();
    let doomed = engine(&db, "doomed");
    let yaml = "id: slot\nsteps:\n  - {id: load, type: sleep, duration: 1200ms, tags: [db]}\n";
    register(&doomed, yaml);
    let first = doomed.start_registered("slot", IndexMap::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heir = engine(&db, "heir");
    let second = heir.start_registered("slot", IndexMap::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Dropped without closing while its step runs: it never gives its slot back.
    drop(doomed);
    let ids = [first.clone(), second.clone()];
    wait_all(&client, &ids, Duration::from_secs(30)).await;
    assert_eq!(client.run(&first).unwrap().unwrap().engine.as_deref(), Some("heir"));
    let spans = step_spans(&client, &ids, 0);
    assert_eq!(spans[0].2, first, "{spans:?}");
    assert_eq!(most_at_once(&spans), 1, "the relaunched step kept the slot: {spans:?}");
    heir.close().await;
}

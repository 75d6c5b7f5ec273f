//! Registered versions, cron and signal triggers, run strategies and idempotent starts, on a
//! virtual clock: time moves only once the engine has reacted to the last move.

use baton_core::model::{Format, Source};
use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::testing::VirtualTime;
use baton_core::{Engine, EngineError, Retention, RunStatus, StartOptions, WorkflowDef};
use chrono::DateTime;
use indexmap::IndexMap;
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
/// How long (real time) the engine may stay in motion: never this long, unless it hangs.
const LIMIT: Duration = Duration::from_secs(10);

fn ms(iso: &str) -> u64 {
    DateTime::parse_from_rfc3339(iso).unwrap().timestamp_millis() as u64
}

fn iso(ms: u64) -> String {
    DateTime::from_timestamp_millis(ms as i64).unwrap().to_rfc3339()
}

fn def(yaml: &str) -> WorkflowDef {
    Source::new("t.yaml", yaml, Format::Yaml).parse().unwrap()
}

/// Fails when its `fail` param is true.
struct Check;
impl StepKind for Check {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }
    fn run(&self, ctx: StepContext) -> StepFuture {
        let fail = ctx.step_params.get("fail") == Some(&json!(true));
        Box::pin(async move {
            if fail {
                StepOutcome::failure("asked to fail")
            } else {
                StepOutcome::success(Outputs::new())
            }
        })
    }
}

struct Env {
    engine: Engine,
    time: VirtualTime,
}

impl Env {
    /// An engine on `time` (cloned: the next open goes on where this one stopped).
    fn open(time: &VirtualTime, dir: Option<&Path>) -> Env {
        let mut b = time.configure(Engine::builder()).step_kind("check", Arc::new(Check));
        if let Some(dir) = dir {
            b = b.store_dir(dir);
        }
        Env { engine: b.open().unwrap(), time: time.clone() }
    }

    fn new(start_ms: u64) -> Env {
        Env::open(&VirtualTime::starting_at(start_ms), None)
    }

    async fn settle(&self) {
        self.time.settled(LIMIT).await.expect("the engine never settled");
    }

    /// Moves time by `by`, timer by timer, letting the engine react to each.
    async fn advance(&self, by: u64) {
        self.time.advanced(Duration::from_millis(by), LIMIT).await.unwrap();
    }

    fn statuses(&self, workflow: &str) -> Vec<RunStatus> {
        self.runs(workflow).iter().map(|r| r.status).collect()
    }

    fn runs(&self, workflow: &str) -> Vec<baton_core::RunRecord> {
        self.engine.runs().unwrap().into_iter().filter(|r| r.workflow_id == workflow).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_made_by_changes_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let time = VirtualTime::starting_at(ms("2024-01-01T00:00:00Z"));
    let env = Env::open(&time, Some(dir.path()));
    let v1 = "id: w\nparams: {n: 1}\nsteps:\n  - {id: a, type: noop}\n";
    let v2 = "id: w\nparams: {n: 2}\nsteps:\n  - {id: a, type: noop}\n";
    let r = env.engine.register(def(v1)).unwrap();
    assert_eq!((r.version, r.changed), (1, true));
    let r = env.engine.register(def(v1)).unwrap();
    assert_eq!((r.version, r.changed), (1, false), "unchanged: no new version");
    let r = env.engine.register(def(v2)).unwrap();
    assert_eq!((r.version, r.changed), (2, true));

    let run = env.engine.start_registered("w", IndexMap::new()).await.unwrap();
    let run = env.engine.wait(&run).await.unwrap();
    assert_eq!((run.version, run.params["n"].clone()), (Some(2), json!(2)));
    let old = env
        .engine
        .start_with("w", StartOptions { version: Some(1), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(env.engine.wait(&old).await.unwrap().version, Some(1));

    env.engine.activate("w", 1).unwrap();
    let run = env.engine.start_registered("w", IndexMap::new()).await.unwrap();
    let run = env.engine.wait(&run).await.unwrap();
    assert_eq!((run.version, run.params["n"].clone()), (Some(1), json!(1)));
    let err = env.engine.activate("w", 7).unwrap_err();
    assert!(
        matches!(err, EngineError::UnknownVersion { .. })
            && err.to_string().contains("its versions: 1, 2"),
        "{err}"
    );
    env.engine.set_enabled("w", false).unwrap();
    env.engine.close().await;
    drop(env);

    let env = Env::open(&time, Some(dir.path()));
    let infos = env.engine.workflows().unwrap();
    assert_eq!(infos.len(), 1);
    assert_eq!((infos[0].active_version, infos[0].latest_version, infos[0].enabled), (1, 2, false));
    let versions = env.engine.versions("w").unwrap();
    assert_eq!(
        versions.iter().map(|v| (v.version, v.active)).collect::<Vec<_>>(),
        vec![(1, true), (2, false)]
    );
    assert_eq!(env.engine.definition("w", Some(2)).unwrap().params["n"], json!(2));
    assert_eq!(env.engine.definition("w", None).unwrap().params["n"], json!(1));
    // Loaded at open: starting by id needs no registration in this process.
    let run = env.engine.start_registered("w", IndexMap::new()).await.unwrap();
    assert_eq!(env.engine.wait(&run).await.unwrap().version, Some(1));
    let err = env.engine.start_registered("ww", IndexMap::new()).await.unwrap_err().to_string();
    assert!(err.contains("did you mean `w`"), "{err}");
    env.engine.close().await;
}

/// Daily jobs around the DST changes of two zones: a local time that does not exist runs
/// at the same distance past the jump, one that happens twice runs once, the first time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_runs_once_per_local_day_across_dst_changes() {
    let cases = [
        // Los Angeles springs forward 02:00 -> 03:00 on 2024-03-10.
        (
            "America/Los_Angeles",
            "30 2 * * *",
            "2024-03-09T00:00:00Z",
            ["2024-03-09T10:30:00+00:00", "2024-03-10T10:30:00+00:00", "2024-03-11T09:30:00+00:00"],
            "2024-03-10",
        ),
        // and falls back 02:00 -> 01:00 on 2024-11-03.
        (
            "America/Los_Angeles",
            "30 1 * * *",
            "2024-11-02T00:00:00Z",
            ["2024-11-02T08:30:00+00:00", "2024-11-03T08:30:00+00:00", "2024-11-04T09:30:00+00:00"],
            "2024-11-03",
        ),
        // Berlin springs forward 02:00 -> 03:00 on 2024-03-31.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2024-03-29T23:00:00Z",
            ["2024-03-30T01:30:00+00:00", "2024-03-31T01:30:00+00:00", "2024-04-01T00:30:00+00:00"],
            "2024-03-31",
        ),
        // and falls back 03:00 -> 02:00 on 2024-10-27.
        (
            "Europe/Berlin",
            "30 2 * * *",
            "2024-10-25T23:00:00Z",
            ["2024-10-26T00:30:00+00:00", "2024-10-27T00:30:00+00:00", "2024-10-28T01:30:00+00:00"],
            "2024-10-27",
        ),
    ];
    for (zone, cron, start, expected, day_of_change) in cases {
        let env = Env::new(ms(start));
        env.engine
            .register(def(&format!(
                "id: daily\nparams: {{date: ''}}\ntriggers:\n  - cron: '{cron}'\n    timezone: {zone}\n    params: {{date: \"${{format_date(trigger.scheduled_time, 'yyyy-MM-dd', '{zone}')}}\"}}\nsteps:\n  - {{id: a, type: noop}}\n"
            )))
            .unwrap();
        baton_core::triggers::start_scheduler(&env.engine);
        env.advance(3 * DAY).await;
        let firings = env.engine.firings("daily").unwrap();
        let times: Vec<String> = firings.iter().map(|f| iso(f.scheduled_ms)).collect();
        assert_eq!(times, expected, "{zone} {cron}");
        assert!(
            firings.iter().all(|f| f.run_id.is_some() && f.fired_ms == f.scheduled_ms),
            "{firings:?}"
        );
        let runs = env.runs("daily");
        assert_eq!(runs.len(), 3);
        assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded && r.version == Some(1)));
        assert_eq!(runs[1].params["date"], json!(day_of_change), "{zone}");
        assert!(runs[1].trigger.as_deref().unwrap().contains(cron), "{:?}", runs[1].trigger);
        env.engine.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_year_of_daily_cron_fires_on_a_virtual_clock_without_waiting() {
    // The year's runs are all kept: the default retention would prune those of its first
    // eleven months.
    let time = VirtualTime::starting_at(ms("2025-01-01T00:00:00Z"));
    let engine = time.configure(Engine::builder()).retention(Retention::forever()).open();
    let env = Env { engine: engine.unwrap(), time };
    env.engine
        .register(def("id: daily\nparams: {date: ''}\ntriggers:\n  - cron: '0 2 * * *'\n    timezone: America/New_York\n    params: {date: \"${format_date(trigger.scheduled_time, 'yyyy-MM-dd', 'America/New_York')}\"}\nsteps:\n  - {id: a, type: noop}\n"))
        .unwrap();
    baton_core::triggers::start_scheduler(&env.engine);
    env.advance(365 * DAY).await;
    let runs = env.runs("daily");
    assert_eq!(runs.len(), 365, "one run per local day of 2025");
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
    let dates: std::collections::BTreeSet<String> =
        runs.iter().map(|r| r.params["date"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(dates.len(), 365, "a distinct date each");
    assert_eq!(
        (dates.first().map(String::as_str), dates.last().map(String::as_str)),
        (Some("2025-01-01"), Some("2025-12-31"))
    );
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jittered_cron_fires_a_fixed_delay_after_each_time() {
    let env = Env::new(ms("2025-03-01T00:00:00Z"));
    let yaml = |id: &str| {
        format!("id: {id}\nparams: {{at: 0}}\ntriggers:\n  - {{cron: '@hourly', jitter: 20m, params: {{at: '${{trigger.scheduled_time}}'}}}}\nsteps:\n  - {{id: a, type: noop}}\n")
    };
    for id in ["east", "west", "north"] {
        env.engine.register(def(&yaml(id))).unwrap();
    }
    baton_core::triggers::start_scheduler(&env.engine);
    env.advance(3 * HOUR + 30 * 60 * 1000).await;
    let mut delays = Vec::new();
    for id in ["east", "west", "north"] {
        let firings = env.engine.firings(id).unwrap();
        assert_eq!(firings.len(), 3, "{id}: {firings:?}");
        let delay = firings[0].fired_ms - firings[0].scheduled_ms;
        assert!(delay < 20 * 60 * 1000, "{id}: {delay} ms");
        for (n, f) in firings.iter().enumerate() {
            assert_eq!(
                f.scheduled_ms,
                ms("2025-03-01T01:00:00Z") + n as u64 * HOUR,
                "{id}: the cron times"
            );
            assert_eq!(f.fired_ms - f.scheduled_ms, delay, "{id}: the same delay each hour");
        }
        // The run sees the cron time, not the time it fired.
        let run = &env.runs(id)[0];
        assert_eq!(run.params["at"], json!(firings[0].scheduled_ms));
        delays.push(delay);
    }
    delays.dedup();
    assert!(delays.len() > 1, "workflows on one schedule are spread: {delays:?}");
    let bad = Source::new(
        "t.yaml",
        "id: b\ntriggers:\n  - {signal: go, jitter: 1m}\nsteps:\n  - {id: a, type: noop}\n",
        Format::Yaml,
    );
    let error = env.engine.register(bad.parse().unwrap()).unwrap_err().to_string();
    assert!(error.contains("jitter") && error.contains("cron"), "{error}");
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misfires_after_three_days_down_follow_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let time = VirtualTime::starting_at(ms("2024-05-01T00:00:00Z"));
    let env = Env::open(&time, Some(dir.path()));
    for policy in ["skip", "run_once", "run_all"] {
        env.engine
            .register(def(&format!("id: {policy}\ntriggers:\n  - {{cron: '0 2 * * *', misfire: {policy}}}\nsteps:\n  - {{id: a, type: noop}}\n")))
            .unwrap();
    }
    baton_core::triggers::start_scheduler(&env.engine);
    env.advance(DAY).await;
    for policy in ["skip", "run_once", "run_all"] {
        assert_eq!(env.statuses(policy), vec![RunStatus::Succeeded], "{policy} fires on time");
    }
    env.engine.close().await;
    drop(env);

    // Three days pass with no engine: 2024-05-02, 03 and 04 at 02:00 are missed.
    time.advanced(Duration::from_millis(3 * DAY), LIMIT).await.unwrap();
    let env = Env::open(&time, Some(dir.path()));
    baton_core::triggers::start_scheduler(&env.engine);
    env.settle().await;
    let missed = |policy: &str| -> Vec<(String, bool)> {
        env.engine.firings(policy).unwrap()[1..]
            .iter()
            .map(|f| (iso(f.scheduled_ms), f.run_id.is_some()))
            .collect()
    };
    let days =
        ["2024-05-02T02:00:00+00:00", "2024-05-03T02:00:00+00:00", "2024-05-04T02:00:00+00:00"];
    assert_eq!(missed("skip"), days.iter().map(|d| (d.to_string(), false)).collect::<Vec<_>>());
    assert!(env.engine.firings("skip").unwrap()[1]
        .reason
        .as_deref()
        .unwrap()
        .contains("misfire: skip"));
    assert_eq!(env.runs("skip").len(), 1);
    assert_eq!(
        missed("run_once"),
        vec![(days[0].into(), false), (days[1].into(), false), (days[2].into(), true)]
    );
    assert_eq!(env.runs("run_once").len(), 2);
    assert_eq!(missed("run_all"), days.iter().map(|d| (d.to_string(), true)).collect::<Vec<_>>());
    assert_eq!(env.runs("run_all").len(), 4);
    assert!(env.runs("run_all").iter().all(|r| r.status == RunStatus::Succeeded));

    // Back on schedule: the next day fires once for each.
    env.advance(DAY).await;
    for (policy, runs) in [("skip", 2), ("run_once", 3), ("run_all", 5)] {
        assert_eq!(env.runs(policy).len(), runs, "{policy}");
    }
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_triggers_match_and_pass_params() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine
        .register(def(
            "id: load\nparams: {date: '', table: ''}\ntriggers:\n  - signal: table_ready\n    match: \"${signal.table == 'events'}\"\n    params: {date: '${signal.date}', table: '${signal.name}'}\nsteps:\n  - {id: a, type: noop}\n",
        ))
        .unwrap();
    baton_core::triggers::start_scheduler(&env.engine);
    env.settle().await;
    let params = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect::<IndexMap<_, _>>()
    };
    env.engine
        .signal("table_ready", params(&[("table", "users"), ("date", "2024-01-01")]))
        .await
        .unwrap();
    env.engine
        .signal("other", params(&[("table", "events"), ("date", "2024-01-01")]))
        .await
        .unwrap();
    let sent = env
        .engine
        .signal("table_ready", params(&[("table", "events"), ("date", "2024-01-02")]))
        .await
        .unwrap();
    env.settle().await;
    let runs = env.runs("load");
    assert_eq!(runs.len(), 1, "only the matching signal starts a run");
    assert_eq!(runs[0].params["date"], json!("2024-01-02"));
    assert_eq!(runs[0].params["table"], json!("table_ready"));
    let firings = env.engine.firings("load").unwrap();
    assert_eq!(firings.len(), 1);
    assert_eq!(
        (firings[0].signal_id.as_deref(), firings[0].run_id.as_deref()),
        (Some(sent.as_str()), Some(runs[0].id.as_str()))
    );
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_sent_right_after_registering_fires_even_before_the_scheduler_looks() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    let old = env.engine.signal("ready", IndexMap::new()).await.unwrap();
    env.engine
        .register(def("id: w\ntriggers:\n  - signal: ready\nsteps:\n  - {id: a, type: noop}\n"))
        .unwrap();
    let sent = env.engine.signal("ready", IndexMap::new()).await.unwrap();
    // The scheduler starts only now: the signal sent before registering does not count, the
    // one sent after does.
    baton_core::triggers::start_scheduler(&env.engine);
    env.settle().await;
    let firings = env.engine.firings("w").unwrap();
    assert_eq!(
        firings.iter().map(|f| f.signal_id.clone().unwrap_or_default()).collect::<Vec<_>>(),
        vec![sent.clone()],
        "not {old}"
    );
    assert_eq!(env.runs("w").len(), 1);
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_workflow_does_not_fire() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine
        .register(def(
            "id: d\ntriggers:\n  - {cron: '0 * * * *'}\nsteps:\n  - {id: a, type: noop}\n",
        ))
        .unwrap();
    baton_core::triggers::start_scheduler(&env.engine);
    env.advance(2 * HOUR).await;
    assert_eq!(env.runs("d").len(), 2);
    env.engine.set_enabled("d", false).unwrap();
    env.advance(2 * HOUR).await;
    assert_eq!(env.runs("d").len(), 2, "no runs while disabled");
    let firings = env.engine.firings("d").unwrap();
    assert_eq!(firings.len(), 4);
    assert!(
        firings[2..]
            .iter()
            .all(|f| f.run_id.is_none() && f.reason.as_deref() == Some("the workflow is disabled")),
        "{firings:?}"
    );
    env.engine.set_enabled("d", true).unwrap();
    env.advance(HOUR).await;
    assert_eq!(env.runs("d").len(), 3);
    env.engine.close().await;
}

const SLOW: &str = "params: {fail: false}\nsteps:\n  - {id: s, type: sleep, duration: 1h}\n  - {id: c, type: check, params: {fail: '${fail}'}, depends_on: [s]}\n";

fn slow(id: &str, strategy: &str) -> WorkflowDef {
    def(&format!("id: {id}\n{strategy}\n{SLOW}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_runs_one_at_a_time_in_order() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine.register(slow("seq", "run_strategy: sequential")).unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(env.engine.start_registered("seq", IndexMap::new()).await.unwrap());
    }
    env.settle().await;
    assert_eq!(env.statuses("seq"), vec![RunStatus::Running, RunStatus::Queued, RunStatus::Queued]);
    // Waiting for a queued run waits for it to be admitted and to end.
    let waiting = tokio::spawn({
        let engine = env.engine.clone();
        let last = ids[2].clone();
        async move { engine.wait(&last).await }
    });
    env.advance(HOUR).await;
    assert_eq!(
        env.statuses("seq"),
        vec![RunStatus::Succeeded, RunStatus::Running, RunStatus::Queued]
    );
    env.advance(2 * HOUR).await;
    let last = waiting.await.unwrap().unwrap();
    assert_eq!((last.id.as_str(), last.status), (ids[2].as_str(), RunStatus::Succeeded));
    let runs = env.runs("seq");
    assert!(runs.iter().all(|r| r.status == RunStatus::Succeeded));
    assert_eq!(runs.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), ids);
    for pair in runs.windows(2) {
        assert_eq!(pair[1].started_ms, pair[0].ended_ms, "each starts when the one before ends");
    }
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_is_stopped_out_of_its_queue_and_refuses_other_actions() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine.register(slow("seq", "run_strategy: sequential")).unwrap();
    let first = env.engine.start_registered("seq", IndexMap::new()).await.unwrap();
    let queued = env.engine.start_registered("seq", IndexMap::new()).await.unwrap();
    let last = env.engine.start_registered("seq", IndexMap::new()).await.unwrap();
    env.settle().await;
    let refused = env.engine.pause(&queued).await.unwrap_err();
    assert!(matches!(refused, EngineError::IllegalAction { .. }), "{refused}");
    assert!(
        refused.to_string().contains("QUEUED") && refused.to_string().contains("baton stop"),
        "{refused}"
    );
    env.engine.stop(&queued, "not needed").await.unwrap();
    env.engine.kill(&last).await.unwrap();
    env.settle().await;
    assert_eq!(
        env.statuses("seq"),
        vec![RunStatus::Running, RunStatus::Stopped, RunStatus::Killed]
    );
    // The first run ends and nothing is left to admit.
    env.advance(HOUR).await;
    assert_eq!(
        env.statuses("seq"),
        vec![RunStatus::Succeeded, RunStatus::Stopped, RunStatus::Killed]
    );
    assert_eq!(env.engine.run(&queued).unwrap().unwrap().error.as_deref(), Some("not needed"));
    assert!(env.engine.run(&first).unwrap().unwrap().error.is_none());
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_sequential_holds_the_queue_after_a_failure_until_unblocked() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine.register(slow("strict", "run_strategy: strict_sequential")).unwrap();
    let failing: IndexMap<String, Value> =
        [("fail".to_string(), json!(true))].into_iter().collect();
    let first = env.engine.start_registered("strict", failing).await.unwrap();
    env.engine.start_registered("strict", IndexMap::new()).await.unwrap();
    env.advance(3 * HOUR).await;
    assert_eq!(env.statuses("strict"), vec![RunStatus::Failed, RunStatus::Queued]);
    assert_eq!(env.engine.blocked_by("strict").unwrap(), Some(first));
    env.engine.unblock("strict").await.unwrap();
    env.advance(HOUR).await;
    assert_eq!(env.statuses("strict"), vec![RunStatus::Failed, RunStatus::Succeeded]);
    assert_eq!(env.engine.blocked_by("strict").unwrap(), None);
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_only_refuses_while_a_run_goes_on() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine
        .register(def(&format!(
            "id: first\nrun_strategy: first_only\ntriggers:\n  - {{cron: '30 * * * *'}}\n{}",
            SLOW.replace("1h", "80m")
        )))
        .unwrap();
    let first = env.engine.start_registered("first", IndexMap::new()).await.unwrap();
    let err = env.engine.start_registered("first", IndexMap::new()).await.unwrap_err();
    assert!(
        matches!(&err, EngineError::AlreadyRunning { run_id, .. } if *run_id == first),
        "{err}"
    );
    baton_core::triggers::start_scheduler(&env.engine);
    // 00:30 is refused (the run started at 00:00 goes on until 01:20); 01:30 starts a run.
    env.advance(HOUR + HOUR / 2).await;
    let firings = env.engine.firings("first").unwrap();
    assert_eq!(firings.len(), 2);
    assert!(firings[0].reason.as_deref().unwrap().contains("first_only"), "{firings:?}");
    assert!(firings[1].run_id.is_some(), "{firings:?}");
    assert_eq!(env.statuses("first"), vec![RunStatus::Succeeded, RunStatus::Running]);
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_only_stops_the_run_going_on() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine.register(slow("last", "run_strategy: last_only")).unwrap();
    env.engine.start_registered("last", IndexMap::new()).await.unwrap();
    env.advance(HOUR / 2).await;
    env.engine.start_registered("last", IndexMap::new()).await.unwrap();
    env.settle().await;
    let runs = env.runs("last");
    assert_eq!(runs[0].status, RunStatus::Stopped);
    assert_eq!(runs[1].status, RunStatus::Running);
    env.advance(HOUR).await;
    assert_eq!(env.statuses("last"), vec![RunStatus::Stopped, RunStatus::Succeeded]);
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_admits_up_to_max_concurrent_runs() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine.register(slow("par", "run_strategy: parallel\nmax_concurrent_runs: 2")).unwrap();
    for _ in 0..3 {
        env.engine.start_registered("par", IndexMap::new()).await.unwrap();
    }
    env.settle().await;
    assert_eq!(
        env.statuses("par"),
        vec![RunStatus::Running, RunStatus::Running, RunStatus::Queued]
    );
    env.advance(HOUR).await;
    assert_eq!(
        env.statuses("par"),
        vec![RunStatus::Succeeded, RunStatus::Succeeded, RunStatus::Running]
    );
    env.advance(HOUR).await;
    assert!(env.runs("par").iter().all(|r| r.status == RunStatus::Succeeded));
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_runs_stay_queued_over_a_reopen_and_go_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let time = VirtualTime::starting_at(ms("2024-01-01T00:00:00Z"));
    let env = Env::open(&time, Some(dir.path()));
    env.engine.register(slow("seq", "run_strategy: sequential")).unwrap();
    for _ in 0..3 {
        env.engine.start_registered("seq", IndexMap::new()).await.unwrap();
    }
    env.settle().await;
    env.engine.close().await;
    drop(env);

    let env = Env::open(&time, Some(dir.path()));
    assert_eq!(env.statuses("seq"), vec![RunStatus::Running, RunStatus::Queued, RunStatus::Queued]);
    let resumed = env.engine.recover().unwrap();
    assert_eq!(resumed.len(), 3);
    env.settle().await;
    assert_eq!(
        env.statuses("seq"),
        vec![RunStatus::Running, RunStatus::Queued, RunStatus::Queued],
        "recover resumes only the running one"
    );
    env.advance(3 * HOUR).await;
    assert!(env.runs("seq").iter().all(|r| r.status == RunStatus::Succeeded));
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_starts_one_run() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    env.engine.register(slow("idem", "")).unwrap();
    let options = || StartOptions { request_id: Some("req-1".into()), ..Default::default() };
    let (a, b) = tokio::join!(
        env.engine.start_with("idem", options()),
        env.engine.start_with("idem", options())
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    let again = env.engine.start_with("idem", options()).await.unwrap();
    assert_eq!(again, a);
    let runs = env.runs("idem");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].request_id.as_deref(), Some("req-1"));
    let other = env
        .engine
        .start_with("idem", StartOptions { request_id: Some("req-2".into()), ..Default::default() })
        .await
        .unwrap();
    assert_ne!(other, a);
    env.advance(HOUR).await;
    env.engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_triggered_run_knows_what_started_it_and_when_it_was_due() {
    let env = Env::new(ms("2024-01-01T00:00:00Z"));
    let context = "{by: \"${initiator()}\", due: \"${scheduled_at()}\", run: \"${run_id()}\"}";
    env.engine
        .register(def(&format!(
            "id: child\nsteps:\n  - {{id: c, type: noop, params: {context}}}\n"
        )))
        .unwrap();
    env.engine
        .register(def(&format!("id: daily\ntriggers:\n  - cron: '0 2 * * *'\nsteps:\n  - {{id: a, type: noop, params: {context}}}\n  - {{id: sub, type: subworkflow, workflow: child}}\n")))
        .unwrap();
    env.engine
        .register(def(&format!("id: on_go\ntriggers:\n  - signal: go\nsteps:\n  - {{id: a, type: noop, params: {context}}}\n")))
        .unwrap();
    baton_core::triggers::start_scheduler(&env.engine);
    env.settle().await;
    env.advance(2 * 3_600_000 + 60_000).await;
    let sent = env.engine.signal("go", IndexMap::new()).await.unwrap();
    env.settle().await;
    let outputs = |run: &str, step: &str| {
        let details = env.engine.details(run).unwrap();
        let step = details.steps.into_iter().find(|s| s.id == step).unwrap();
        serde_json::to_value(step.record.outputs).unwrap()
    };

    let daily = &env.runs("daily")[0];
    assert_eq!(daily.status, RunStatus::Succeeded);
    assert_eq!(
        outputs(&daily.id, "a"),
        json!({"by": "cron", "due": "2024-01-01T02:00:00Z", "run": daily.id})
    );
    // The child run was started by its parent, for the parent's cron time.
    let child = &env.runs("child")[0];
    assert_eq!(child.parent.as_ref().map(|p| p.run_id.as_str()), Some(daily.id.as_str()));
    assert_eq!(
        outputs(&child.id, "c"),
        json!({"by": "parent", "due": "2024-01-01T02:00:00Z", "run": child.id})
    );

    let on_go = &env.runs("on_go")[0];
    let signal =
        env.engine.signals(Some("go")).unwrap().into_iter().find(|s| s.id == sent).unwrap();
    assert_eq!(
        outputs(&on_go.id, "a"),
        json!({"by": "signal", "due": iso_secs(signal.sent_ms), "run": on_go.id})
    );
    env.engine.close().await;
}

fn iso_secs(ms: u64) -> String {
    DateTime::from_timestamp_millis(ms as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_joining_signals_starts_a_run_once_each_was_sent_for_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let time = VirtualTime::starting_at(ms("2024-01-01T00:00:00Z"));
    let env = Env::open(&time, Some(dir.path()));
    env.engine
        .register(def(
            "id: joined\nparams: {day: 0, rows: 0, by: ''}\ntriggers:\n  - signals: [db/a, {name: db/b, match: \"${signal.rows > 0}\"}]\n    join: [day]\n    params: {day: \"${signals['db/a'].day}\", rows: \"${signals['db/a'].rows + signals['db/b'].rows}\", by: \"${signals['db/b'].id}\"}\nsteps:\n  - {id: s, type: noop, params: {by: \"${initiator()}\"}}\n",
        ))
        .unwrap();
    baton_core::triggers::start_scheduler(&env.engine);
    env.settle().await;
    send(&env.engine, "db/a", 1, 5).await;
    send(&env.engine, "db/b", 2, 1).await;
    send(&env.engine, "db/b", 1, 0).await; // does not match
    env.settle().await;
    assert!(env.runs("joined").is_empty(), "no day has both signals yet");
    env.engine.close().await;
    drop(env);

    // What waits for its join is kept across a restart.
    let env = Env::open(&time, Some(dir.path()));
    baton_core::triggers::start_scheduler(&env.engine);
    let completes = send(&env.engine, "db/b", 1, 3).await;
    send(&env.engine, "db/a", 2, 7).await;
    env.settle().await;
    let mut runs = env.runs("joined");
    runs.sort_by_key(|r| r.params["day"].as_i64());
    assert_eq!(runs.len(), 2, "{runs:#?}");
    let got = |r: &baton_core::RunRecord| (r.params["day"].clone(), r.params["rows"].clone());
    assert_eq!(got(&runs[0]), (json!(1), json!(8)), "day 1: a sent 5 rows, the matching b 3");
    assert_eq!(got(&runs[1]), (json!(2), json!(8)), "day 2: b 1, a 7");
    assert_eq!(runs[0].params["by"], json!(completes));
    assert_eq!(runs[0].initiator, baton_core::engine::Initiator::Signal);
    let firings = env.engine.firings("joined").unwrap();
    assert_eq!(firings.len(), 2);
    assert_eq!(firings[0].signal_id.as_deref(), Some(completes.as_str()));

    // A signal of a join alone starts nothing, however many are sent.
    send(&env.engine, "db/a", 3, 1).await;
    send(&env.engine, "db/a", 3, 1).await;
    env.settle().await;
    assert_eq!(env.runs("joined").len(), 2);
    env.engine.close().await;
}

#[test]
fn joined_signal_triggers_are_checked_at_validation() {
    let kinds = baton_core::steps::StepKinds::default();
    let errors = |yaml: &str| -> Vec<String> {
        let source = Source::new("j.yaml", yaml, Format::Yaml);
        match baton_core::Workflow::load(&source, &kinds) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    };
    let found = errors("id: j\ntriggers:\n  - signals: [a, {name: a, join: [x, y]}, {name: c, match: \"${signals.a}\"}]\n    join: [day]\n    match: \"${signal.x}\"\n  - {cron: '@daily', join: [day]}\nsteps: [{id: s, type: noop}]\n");
    let expect = [
        "triggers.0.match: applies to one signal",
        "triggers.0.signals.1.name: `a` is joined twice",
        "triggers.0.signals.1.join: joins on 2 params, and the first signal on 1",
        "triggers.0.signals.2.match: column 3: unknown name `signals`",
        "triggers.1.join: applies to `signals` triggers only",
    ];
    for want in expect {
        assert!(found.iter().any(|f| f.contains(want)), "missing {want:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}

async fn send(engine: &Engine, name: &str, day: i64, rows: i64) -> String {
    let params: IndexMap<String, Value> =
        [("day".to_string(), json!(day)), ("rows".to_string(), json!(rows))].into();
    engine.signal(name, params).await.unwrap()
}

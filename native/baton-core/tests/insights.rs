//! Insights from step history, on a virtual clock with durations drawn from known
//! distributions: forecasts within their target, the ETA of a running run, trends, and
//! loop bodies kept as one history.

use baton_core::insights::{self, Trend};
use baton_core::model::{Format, Source};
use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::{Engine, RunStatus};
use indexmap::IndexMap;
use serde_json::json;
use std::sync::Arc;

mod support;
use support::*;

/// A host step that works for `ms` milliseconds of the engine's clock.
struct Work;
impl StepKind for Work {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }
    fn run(&self, ctx: StepContext) -> StepFuture {
        let ms = ctx.step_params.get("ms").and_then(|v| v.as_u64()).unwrap_or(0);
        Box::pin(async move {
            ctx.clock.sleep_until(ctx.started_ms + ms).await;
            StepOutcome::success(Outputs::new())
        })
    }
}

/// a, then b and c at once, then d: a run takes a + max(b, c) + d.
const ETL: &str = "id: etl\nparams: {a: 0, b: 0, c: 0, d: 0}\nsteps:\n  - {id: a, type: work, params: {ms: '${a}'}}\n  - {id: b, type: work, depends_on: [a], params: {ms: '${b}'}}\n  - {id: c, type: work, depends_on: [a], params: {ms: '${c}'}}\n  - {id: d, type: work, depends_on: [b, c], params: {ms: '${d}'}}\n";

/// The true medians of the steps' durations, in ms; each run draws around them.
const MEDIANS: [(&str, f64); 4] = [("a", 1_000.0), ("b", 3_000.0), ("c", 2_000.0), ("d", 500.0)];

/// A log-normal draw around `median` (sigma 0.25: about a quarter either way).
fn draw(rng: &mut fastrand::Rng, median: f64) -> u64 {
    let (u, v) = (rng.f64().max(1e-12), rng.f64());
    let normal = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
    (median * (0.25 * normal).exp()).round() as u64
}

fn engine() -> Setup {
    Setup::open(Engine::builder().step_kind("work", Arc::new(Work)))
}

async fn run_once(s: &Setup, durations: &[(&str, u64)]) -> (String, u64) {
    let params: IndexMap<String, serde_json::Value> =
        durations.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let id = s.engine.start_registered("etl", params).await.unwrap();
    let run = finish(s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    (id, run.ended_ms.unwrap() - run.started_ms.unwrap())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

#[tokio::test]
async fn forecasts_learn_the_steps_durations_and_the_critical_path() {
    let s = engine();
    s.engine.register(Source::new("etl.yaml", ETL, Format::Yaml).parse().unwrap()).unwrap();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut errors = Vec::new();
    for n in 0..30 {
        let durations: Vec<(&str, u64)> =
            MEDIANS.iter().map(|(step, m)| (*step, draw(&mut rng, *m))).collect();
        let forecast = insights::workflow(&s.engine, "etl").unwrap();
        if n < insights::MIN_RUNS as usize {
            assert_eq!(
                forecast.expected_ms,
                None,
                "no forecast before {} runs",
                insights::MIN_RUNS
            );
        }
        let (_, actual) = run_once(&s, &durations).await;
        // Judged after 10 runs of history, as the target says.
        if n >= 10 {
            let expected = forecast.expected_ms.unwrap() as f64;
            errors.push((expected - actual as f64).abs() / actual as f64);
        }
    }
    let error = median(errors);
    assert!(error < 0.20, "median absolute error of the run forecast: {:.1}%", error * 100.0);
    eprintln!("forecast: median absolute error {:.1}% over 20 runs", error * 100.0);

    let i = insights::workflow(&s.engine, "etl").unwrap();
    assert_eq!(i.critical_path, ["a", "b", "d"], "b is longer than c");
    for (step, truth) in MEDIANS {
        let p50 = i.steps.iter().find(|x| x.step == step).unwrap().p50_ms.unwrap() as f64;
        assert!((p50 - truth).abs() / truth < 0.15, "{step}: p50 {p50} vs {truth}");
    }
    let a = &i.steps[0];
    assert_eq!((a.ended, a.success_rate, a.retry_rate), (30, Some(1.0), Some(0.0)));
    assert!(a.p90_ms > a.p50_ms && a.p99_ms >= a.p90_ms);
    assert_eq!(a.trend, Trend::Steady);

    // b turns twice as slow: its trend says so, a's does not.
    for _ in 0..10 {
        let durations: Vec<(&str, u64)> = MEDIANS
            .iter()
            .map(|(step, m)| (*step, draw(&mut rng, if *step == "b" { m * 2.0 } else { *m })))
            .collect();
        run_once(&s, &durations).await;
    }
    let i = insights::workflow(&s.engine, "etl").unwrap();
    assert_eq!((i.steps[0].trend, i.steps[1].trend), (Trend::Steady, Trend::Slower));
}

#[tokio::test]
async fn a_running_run_knows_when_it_should_end() {
    let s = engine();
    s.engine.register(Source::new("etl.yaml", ETL, Format::Yaml).parse().unwrap()).unwrap();
    let medians: Vec<(&str, u64)> = MEDIANS.iter().map(|(k, v)| (*k, *v as u64)).collect();
    for _ in 0..3 {
        run_once(&s, &medians).await;
    }
    let params: IndexMap<String, serde_json::Value> =
        medians.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    let id = s.engine.start_registered("etl", params).await.unwrap();
    s.settle().await;
    let started = s.now_ms();
    let eta = insights::eta(&s.engine, &id).unwrap().expect("a running run has an ETA");
    let within = |got: u64, want: u64| (got as f64 - want as f64).abs() / (want as f64) < 0.05;
    assert!(within(eta.remaining_ms, 4_500), "at the start: {eta:?}");
    // 2 s in: a is over, b and c are running; 2.5 s are left.
    s.advance(std::time::Duration::from_millis(2_000)).await;
    let eta = insights::eta(&s.engine, &id).unwrap().unwrap();
    assert!(within(eta.remaining_ms, 2_500), "2 s in: {eta:?}");
    assert!(within(eta.at_ms - started, 4_500), "{eta:?}");
    assert!(eta.unknown.is_empty());
    finish(&s, &id).await;
    assert_eq!(insights::eta(&s.engine, &id).unwrap(), None, "an ended run has none");
}

#[tokio::test]
async fn a_loop_body_step_has_one_history_for_all_its_iterations() {
    let s = engine();
    let wf = workflow(
        &s.engine,
        "id: big\nsteps:\n  - {id: each, type: foreach, over: '${range(0, 50)}', steps: [{id: body, type: work, params: {ms: 10}}]}\n",
    );
    let id = s.engine.start(wf, IndexMap::new()).await.unwrap();
    finish(&s, &id).await;
    let body = s.engine.step_history("big.each", "body").unwrap().expect("the body's history");
    assert_eq!((body.ended, body.succeeded), (50, 50));
    assert_eq!(body.durations.quantile(0.5), Some(10));
    let each = s.engine.step_history("big", "each").unwrap().unwrap();
    assert_eq!(each.ended, 1);
    // What the last second added is written when the engine closes.
    let dir = tempfile::tempdir().unwrap();
    let time = baton_core::testing::VirtualTime::starting_at(START);
    let open = || {
        time.configure(Engine::builder().step_kind("work", Arc::new(Work)))
            .store_dir(dir.path())
            .open()
            .unwrap()
    };
    let engine = open();
    let wf = {
        let source = Source::new("b.yaml", "id: big\nsteps:\n  - {id: each, type: foreach, over: '${range(0, 5)}', steps: [{id: body, type: work, params: {ms: 0}}]}\n", Format::Yaml);
        Arc::new(engine.compile(source.parse().unwrap()).unwrap())
    };
    let id = engine.start(wf, IndexMap::new()).await.unwrap();
    engine.wait(&id).await.unwrap();
    engine.close().await;
    drop(engine);
    let engine = open();
    assert_eq!(engine.step_history("big.each", "body").unwrap().map(|h| h.ended), Some(5));
    engine.close().await;
}

/// Fails when its `fail` param is true, with an error that differs in its numbers each time.
struct Check(std::sync::atomic::AtomicU64);
impl StepKind for Check {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }
    fn run(&self, ctx: StepContext) -> StepFuture {
        let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let fail = ctx.step_params.get("fail") == Some(&json!(true));
        Box::pin(async move {
            match fail {
                true => StepOutcome::failure(format!(
                    "connection to db-{n} refused after {} ms",
                    3000 + n
                )),
                false => StepOutcome::success(Outputs::new()),
            }
        })
    }
}

fn register(s: &Setup, yaml: &str) {
    s.engine.register(Source::new("w.yaml", yaml, Format::Yaml).parse().unwrap()).unwrap();
}

#[tokio::test]
async fn diagnosis_names_the_root_cause_through_a_subworkflow_and_what_mended_it_before() {
    let s = Setup::open(Engine::builder().step_kind("check", Arc::new(Check(Default::default()))));
    let child = |load: &str| {
        format!("id: child\nparams: {{fail: false}}\nsteps:\n  - {{id: load, type: check, params: {{fail: {load}}}}}\n  - {{id: tail, type: noop, depends_on: [load]}}\n")
    };
    register(&s, &child("'${fail}'"));
    register(&s, "id: etl\nparams: {fail: false}\nsteps:\n  - {id: prep, type: noop}\n  - {id: sub, type: subworkflow, workflow: child, depends_on: [prep], params: {fail: '${fail}'}}\n  - {id: after, type: check, depends_on: [sub]}\n  - {id: report, type: noop, depends_on: [after]}\n  - {id: aside, type: noop}\n");
    let run = |fail: bool| {
        let engine = &s.engine;
        async move {
            let params: IndexMap<String, serde_json::Value> =
                [("fail".to_string(), json!(fail))].into();
            let id = engine.start_registered("etl", params).await.unwrap();
            id
        }
    };
    let id = run(false).await;
    assert_eq!(finish(&s, &id).await.status, RunStatus::Succeeded);
    let ok = insights::diagnose(&s.engine, &id).unwrap();
    assert!(ok.root_cause.is_none() && ok.summary.contains("no step failed"), "{ok:?}");

    // Fails; a new definition of the child mends it.
    let first_failure = run(true).await;
    assert_eq!(finish(&s, &first_failure).await.status, RunStatus::Failed);
    let d = insights::diagnose(&s.engine, &first_failure).unwrap();
    let cause = d.root_cause.clone().unwrap();
    assert_eq!((cause.workflow_id.as_str(), cause.step.as_str()), ("child", "load"), "{d:#?}");
    assert_eq!(cause.path, ["sub", "load"]);
    assert_eq!(cause.signature, "connection to db-# refused after # ms");
    assert_eq!(d.skipped, 2, "after and report did not run: {d:#?}");
    assert!(d.similar.is_empty(), "never seen before: {d:#?}");
    assert!(d.changed.iter().any(|c| c == "params changed: fail: false -> true"), "{d:#?}");
    assert!(
        d.summary.starts_with("step `sub > load` failed first: connection to db-"),
        "{}",
        d.summary
    );
    register(&s, &child("false"));
    assert_eq!(finish(&s, &run(true).await).await.status, RunStatus::Succeeded);

    // Back to the failing definition: fails again; other params mend it.
    register(&s, &child("'${fail}'"));
    assert_eq!(finish(&s, &run(true).await).await.status, RunStatus::Failed);
    assert_eq!(finish(&s, &run(false).await).await.status, RunStatus::Succeeded);

    let last = run(true).await;
    assert_eq!(finish(&s, &last).await.status, RunStatus::Failed);
    let d = insights::diagnose(&s.engine, &last).unwrap();
    assert_eq!(d.similar.len(), 1, "{d:#?}");
    assert_eq!(
        (d.similar[0].step.as_str(), d.similar[0].times),
        ("load", 2),
        "two failures before this one"
    );
    let mended = d.resolved_before.join("\n");
    assert!(mended.contains("succeeded with a changed definition"), "{mended}");
    assert!(mended.contains("succeeded with other params (fail: true -> false)"), "{mended}");
    assert!(d.summary.contains("seen 2 time(s) before"), "{}", d.summary);
}

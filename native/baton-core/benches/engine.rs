//! Engine overhead on durable stores.
//!
//! cargo bench -p baton-core --bench engine
//!
//! Steps are `noop` (completed inside the scheduler) unless named `host`: those are a
//! host step kind that returns at once, so each one goes through the full launch path
//! (RUNNING durable before launch, a task, a report back, SUCCEEDED durable).

mod gen;

use baton_core::{Engine, StoreEngine, WorkflowDef};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;

const ENGINES: [StoreEngine; 2] = [StoreEngine::Redb, StoreEngine::Sled];

/// Runs `def` to its end on a fresh store; the store is opened outside the timing.
fn bench_run(
    c: &mut Criterion,
    group: &str,
    def: WorkflowDef,
    engines: &[StoreEngine],
    samples: usize,
) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut g = c.benchmark_group(group);
    g.sample_size(samples).throughput(Throughput::Elements(def.steps.len() as u64));
    for &kind in engines {
        g.bench_function(kind.name(), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let engine = rt.block_on(async {
                        Engine::builder()
                            .store_dir(dir.path())
                            .store_engine(kind)
                            .step_kind("host", Arc::new(gen::HostNoop))
                            .open()
                            .unwrap()
                    });
                    let wf = Arc::new(engine.compile(def.clone()).unwrap());
                    (dir, engine, wf)
                },
                |(dir, engine, wf)| {
                    rt.block_on(async {
                        let id = engine.start(wf, Default::default()).await.unwrap();
                        let run = engine.wait(&id).await.unwrap();
                        assert_eq!(run.status, baton_core::RunStatus::Succeeded);
                        engine.close().await;
                    });
                    drop(dir);
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn chain(c: &mut Criterion) {
    bench_run(c, "chain_100k_noop", gen::chain(100_000, "noop"), &ENGINES, 10);
}

fn fan_out(c: &mut Criterion) {
    bench_run(c, "fan_out_100k_noop", gen::fan_out(100_000, "noop"), &ENGINES, 10);
}

fn host_steps(c: &mut Criterion) {
    // A chain pays one flush per launch and one per completion: it measures the store's
    // flush latency. A wide fan-out shares flushes between steps (group commit).
    bench_run(c, "chain_200_host", gen::chain(200, "host"), &ENGINES, 10);
    let mut wide = gen::fan_out(10_000, "host");
    wide.max_parallel = Some(256);
    bench_run(c, "fan_out_10k_host", wide, &ENGINES, 10);
}

fn million(c: &mut Criterion) {
    let def = gen::layered(1_000_000, 1000, 42);
    let mut g = c.benchmark_group("layered_1m");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let engine = Engine::builder().open().unwrap();
    g.bench_function("validate", |b| {
        b.iter_batched(|| def.clone(), |d| engine.compile(d).unwrap(), BatchSize::PerIteration)
    });
    g.finish();
    bench_run(c, "layered_1m_run", def, &[StoreEngine::Redb], 10);
}

/// Evaluating a condition and rendering a command, as the engine does per step.
fn expressions(c: &mut Criterion) {
    use baton_core::expr::{Scope, Template};
    struct Names(serde_json::Map<String, serde_json::Value>);
    impl Scope for Names {
        fn name(&self, name: &str) -> Option<serde_json::Value> {
            self.0.get(name).cloned()
        }
        fn now_ms(&self) -> u64 {
            0
        }
    }
    let serde_json::Value::Object(names) =
        serde_json::json!({"date": "2026-11-24", "extract": {"rows": 42, "table": "events"}})
    else {
        return;
    };
    let scope = Names(names);
    let condition = Template::parse("${extract.rows > 0 && date == '2026-11-24'}").unwrap();
    let command =
        Template::parse("load --table ${extract.table} --date ${date} --rows ${extract.rows * 2}")
            .unwrap();
    let mut g = c.benchmark_group("expr");
    g.bench_function("condition", |b| b.iter(|| condition.evaluate(&scope).unwrap()));
    g.bench_function("command", |b| b.iter(|| command.render(&scope).unwrap()));
    g.bench_function("parse_command", |b| {
        b.iter(|| {
            Template::parse(
                "load --table ${extract.table} --date ${date} --rows ${extract.rows * 2}",
            )
            .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, chain, fan_out, host_steps, million, expressions);
criterion_main!(benches);

//! Cluster mode on a throwaway local PostgreSQL (skipped without PostgreSQL installed):
//! the per-step cost next to redb, runs per second with 1, 2 and 3 engines in this
//! process, and a take-over.
//!
//! cargo bench -p baton-core --bench cluster
//!
//! `fan_out_10k_host` and `chain_200_host` run one workflow on one engine: the cost of a
//! step's transitions on each store. `short_runs_100/N` starts 100 runs of one host step
//! from a client that drives nothing, and waits for all: the N engines claim them (at most
//! a fair share each, every 250 ms), so it measures claiming and spreading as well as
//! driving. The engines share this machine's cores with each other and with PostgreSQL.
//! `take_over` drops an engine (no goodbye, as a crash) holding one run and times until a
//! second engine has finished it: the lease (1 s here) plus up to one claim poll.

mod gen;

use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::{Engine, StoreLocation};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;

/// A host step that takes 200 ms: the run a take-over finishes.
struct HostNap;

impl StepKind for HostNap {
    fn fields(&self) -> &'static [Field] {
        &[]
    }
    fn run(&self, _ctx: StepContext) -> StepFuture {
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            StepOutcome::success(Outputs::new())
        })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap()
}

fn builder(store: &StoreLocation) -> baton_core::EngineBuilder {
    Engine::builder()
        .store(store.clone())
        .step_kind("host", Arc::new(gen::HostNoop))
        .step_kind("nap", Arc::new(HostNap))
}

/// One workflow on one engine, on redb and on PostgreSQL.
fn per_step(c: &mut Criterion, group: &str, def: baton_core::model::WorkflowDef) {
    let Some(url) = baton_pgtest::database() else { return };
    let rt = runtime();
    let mut g = c.benchmark_group(group);
    g.sample_size(10).throughput(Throughput::Elements(def.steps.len() as u64));
    let dir = tempfile::tempdir().unwrap();
    let stores =
        [("redb", StoreLocation::Dir(dir.path().into())), ("postgresql", url.parse().unwrap())];
    for (name, store) in stores {
        let engine = rt.block_on(async { builder(&store).open().unwrap() });
        let wf = Arc::new(engine.compile(def.clone()).unwrap());
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let id = engine.start(wf.clone(), Default::default()).await.unwrap();
                    assert_eq!(
                        engine.wait(&id).await.unwrap().status,
                        baton_core::RunStatus::Succeeded
                    );
                })
            })
        });
        rt.block_on(engine.close());
    }
    g.finish();
}

fn fan_out(c: &mut Criterion) {
    let mut wide = gen::fan_out(10_000, "host");
    wide.max_parallel = Some(256);
    per_step(c, "fan_out_10k_host", wide);
}

fn chain(c: &mut Criterion) {
    per_step(c, "chain_200_host", gen::chain(200, "host"));
}

fn short_runs(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("short_runs_100");
    g.sample_size(10).throughput(Throughput::Elements(100));
    for engines in [1, 2, 3] {
        g.bench_function(format!("{engines}"), |b| {
            b.iter_batched(
                || {
                    let url = baton_pgtest::database().expect("PostgreSQL");
                    let store: StoreLocation = url.parse().unwrap();
                    rt.block_on(async {
                        let drivers: Vec<Engine> = (0..engines)
                            .map(|i| builder(&store).engine_id(format!("e{i}")).open().unwrap())
                            .collect();
                        let client =
                            builder(&store).engine_id("client").drives(false).open().unwrap();
                        let def = gen::chain(1, "host");
                        for engine in &drivers {
                            engine.register(def.clone()).unwrap();
                        }
                        (drivers, client, def.id)
                    })
                },
                |(drivers, client, workflow)| {
                    rt.block_on(async {
                        let mut ids = Vec::new();
                        for _ in 0..100 {
                            ids.push(
                                client
                                    .start_registered(&workflow, Default::default())
                                    .await
                                    .unwrap(),
                            );
                        }
                        for id in &ids {
                            client.wait(id).await.unwrap();
                        }
                        for engine in drivers {
                            engine.close().await;
                        }
                    })
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

fn take_over(c: &mut Criterion) {
    if baton_pgtest::server().is_none() {
        return;
    }
    let rt = runtime();
    let mut g = c.benchmark_group("take_over");
    g.sample_size(10);
    g.bench_function("lease_1s", |b| {
        b.iter_batched(
            || {
                let store: StoreLocation = baton_pgtest::database().unwrap().parse().unwrap();
                rt.block_on(async {
                    let lease = Duration::from_secs(1);
                    let doomed = builder(&store).engine_id("doomed").lease(lease).open().unwrap();
                    let def = gen::chain(1, "nap");
                    doomed.register(def.clone()).unwrap();
                    let id = doomed.start_registered(&def.id, Default::default()).await.unwrap();
                    // It registers the workflow too: a run of host steps goes only to an
                    // engine that has their code.
                    let heir = builder(&store).engine_id("heir").lease(lease).open().unwrap();
                    heir.register(def).unwrap();
                    (doomed, heir, id)
                })
            },
            |(doomed, heir, id)| {
                drop(doomed);
                rt.block_on(async {
                    heir.wait(&id).await.unwrap();
                    heir.close().await;
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, fan_out, chain, short_runs, take_over);
criterion_main!(benches);

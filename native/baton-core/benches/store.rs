//! What a durable commit costs on each store: redb and sled in a directory, and PostgreSQL
//! on a throwaway local server (skipped without PostgreSQL installed).
//!
//! cargo bench -p baton-core --bench store
//!
//! `commit_one_put` is one small batch through the engine's group commit, alone (a limit
//! set: one put, nothing else in flight), so it is the store's commit latency.
//! `chain_200_host` is a chain of 200 host steps: two commits per step that cannot share a
//! flush (RUNNING before launch, SUCCEEDED before the next step), so it shows what that
//! latency means per step.

mod gen;

use baton_core::{Engine, StoreEngine, StoreLocation};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::sync::Arc;

/// A new, empty store of each kind: its name, where it is, its directory engine, and the
/// directory to remove afterwards.
fn stores() -> Vec<(&'static str, StoreLocation, Option<StoreEngine>, Option<tempfile::TempDir>)> {
    let mut stores = Vec::new();
    for kind in [StoreEngine::Redb, StoreEngine::Sled] {
        let dir = tempfile::tempdir().unwrap();
        stores.push((kind.name(), StoreLocation::Dir(dir.path().into()), Some(kind), Some(dir)));
    }
    if let Some(url) = baton_pgtest::database() {
        stores.push(("postgresql", url.parse().unwrap(), None, None));
    }
    stores
}

fn open(rt: &tokio::runtime::Runtime, store: &StoreLocation, kind: Option<StoreEngine>) -> Engine {
    let _guard = rt.enter();
    let mut builder =
        Engine::builder().store(store.clone()).step_kind("host", Arc::new(gen::HostNoop));
    if let Some(kind) = kind {
        builder = builder.store_engine(kind);
    }
    builder.open().unwrap()
}

fn commit_latency(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut g = c.benchmark_group("commit_one_put");
    g.sample_size(50);
    for (name, store, kind, _dir) in stores() {
        let engine = open(&rt, &store, kind);
        let mut n = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                n += 1;
                rt.block_on(engine.set_limit("bench", Some(n))).unwrap();
            })
        });
        rt.block_on(engine.close());
    }
    g.finish();
}

fn chain(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let def = gen::chain(200, "host");
    let mut g = c.benchmark_group("chain_200_host");
    g.sample_size(10).throughput(Throughput::Elements(def.steps.len() as u64));
    for (name, store, kind, _dir) in stores() {
        let engine = open(&rt, &store, kind);
        let wf = Arc::new(engine.compile(def.clone()).unwrap());
        g.bench_function(name, |b| {
            b.iter_batched(
                || wf.clone(),
                |wf| {
                    rt.block_on(async {
                        let id = engine.start(wf, Default::default()).await.unwrap();
                        let run = engine.wait(&id).await.unwrap();
                        assert_eq!(run.status, baton_core::RunStatus::Succeeded);
                    })
                },
                BatchSize::PerIteration,
            )
        });
        rt.block_on(engine.close());
    }
    g.finish();
}

criterion_group!(benches, commit_latency, chain);
criterion_main!(benches);

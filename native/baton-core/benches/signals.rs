//! Matching a signal among many stored signals of the same name (issue 13, item 10).
//!
//! cargo bench -p baton-core --bench signals
//!
//! Each iteration starts a run whose `wait_signal` step matches the one signal of its
//! window; the store also holds 10 or 10,000 older signals of that name, sent two days
//! before (outside the default one-day `signal_retention`). `scan_all` lists every signal
//! of the name: what each match cost when matching scanned them all.

use baton_core::model::{Format, Source};
use baton_core::{Engine, Retention, RunStatus, VirtualClock};
use criterion::{criterion_group, criterion_main, Criterion};
use indexmap::IndexMap;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn signals(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut g = c.benchmark_group("signal_match");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for stored in [10usize, 10_000] {
        let dir = tempfile::tempdir().unwrap();
        let clock = VirtualClock::starting_at(1_700_000_000_000);
        let (engine, wf) = rt.block_on(async {
            let engine = Engine::builder()
                .store_dir(dir.path())
                .clock(Arc::new(clock.clone()))
                .retention(Retention::forever())
                .open()
                .unwrap();
            for i in 0..stored {
                let params = [("n".to_string(), json!(i))].into_iter().collect();
                engine.signal("table_ready", params).await.unwrap();
            }
            clock.advance(2 * DAY);
            let fresh = [("n".to_string(), json!(-1))].into_iter().collect();
            engine.signal("table_ready", fresh).await.unwrap();
            let yaml = "id: w\nsteps:\n  - {id: w, type: wait_signal, signal: table_ready, match: \"${signal.n < 0}\"}\n";
            let def = Source::new("w.yaml", yaml, Format::Yaml).parse().unwrap();
            let wf = Arc::new(engine.compile(def).unwrap());
            (engine, wf)
        });
        g.bench_function(format!("wait_signal_{stored}_stored"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let id = engine.start(wf.clone(), IndexMap::new()).await.unwrap();
                    assert_eq!(engine.wait(&id).await.unwrap().status, RunStatus::Succeeded);
                })
            })
        });
        g.bench_function(format!("scan_all_{stored}_stored"), |b| {
            b.iter(|| assert_eq!(engine.signals(Some("table_ready")).unwrap().len(), stored + 1))
        });
        rt.block_on(engine.close());
    }
    g.finish();
}

criterion_group!(benches, signals);
criterion_main!(benches);

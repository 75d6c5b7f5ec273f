//! Runs one generated random layered DAG (default 1,000,000 noop steps, about 2
//! dependencies each) on a durable store, and prints the time to validate, the time to
//! run and the peak RSS of the process.
//!
//! cargo run --release -p baton-core --example million -- [STEPS] [redb|sled]

#[path = "../benches/gen.rs"]
mod gen;

mod common;

use baton_core::{Engine, StoreEngine};
use common::peak_rss_mib;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let engine_kind: StoreEngine = args.next().map(|a| a.parse()).transpose()?.unwrap_or_default();
    let dir = tempfile::tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let def = gen::layered(n, 1000, 42);
        let engine = Engine::builder().store_dir(dir.path()).store_engine(engine_kind).open()?;
        let t = Instant::now();
        let wf = Arc::new(engine.compile(def)?);
        let validate = t.elapsed();
        let t = Instant::now();
        let id = engine.start(wf, Default::default()).await?;
        let run = engine.wait(&id).await?;
        let run_time = t.elapsed();
        engine.close().await;
        println!(
            "steps={n} engine={engine_kind} status={} validate={:.2}s run={:.2}s per_step={:.1}us peak_rss={:.0}MiB",
            run.status,
            validate.as_secs_f64(),
            run_time.as_secs_f64(),
            run_time.as_secs_f64() * 1e6 / n as f64,
            peak_rss_mib()
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

//! Runs a `foreach` of noop bodies (default 1,000,000 iterations, 64 at a time) on a
//! durable store, and prints the run id, the time it took and the peak RSS of the process.
//! The store is kept in DIR (default: a temporary directory), so that `baton show` can be
//! timed on it afterwards.
//!
//! cargo run --release -p baton-core --example foreach_million -- [ITERATIONS] [DIR]

mod common;

use baton_core::model::{Format, Source};
use baton_core::Engine;
use common::peak_rss_mib;
use std::sync::Arc;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let temp = tempfile::tempdir()?;
    let dir =
        args.next().map(std::path::PathBuf::from).unwrap_or_else(|| temp.path().to_path_buf());
    let yaml = format!(
        "id: foreach-million\nsteps:\n  - id: per_partition\n    type: foreach\n    over: \"${{range(0, {n})}}\"\n    as: partition\n    max_parallel: 64\n    steps:\n      - {{id: process, type: noop}}\n"
    );
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let engine = Engine::builder().store_dir(&dir).open()?;
        let source = Source::new("foreach-million.yaml", yaml, Format::Yaml);
        let wf = Arc::new(engine.compile(source.parse()?)?);
        let t = Instant::now();
        let id = engine.start(wf, Default::default()).await?;
        let run = engine.wait(&id).await?;
        let elapsed = t.elapsed();
        engine.close().await;
        println!(
            "run={id} iterations={n} status={} time={:.2}s per_iteration={:.1}us peak_rss={:.0}MiB",
            run.status,
            elapsed.as_secs_f64(),
            elapsed.as_secs_f64() * 1e6 / n as f64,
            peak_rss_mib()
        );
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}

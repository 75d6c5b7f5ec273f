//! Generated workflows for benchmarks: chains, fan-outs and random layered DAGs, and the
//! host step kind they run.
#![allow(dead_code)] // each user of this file uses some of the generators

use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::{StepDef, WorkflowDef};

/// A host step kind that returns at once: each step goes through the whole launch path
/// (RUNNING durable before launch, a task, a report back, SUCCEEDED durable).
pub struct HostNoop;

impl StepKind for HostNoop {
    fn fields(&self) -> &'static [Field] {
        &[]
    }
    fn run(&self, _ctx: StepContext) -> StepFuture {
        Box::pin(async { StepOutcome::success(Outputs::new()) })
    }
}

fn workflow(id: &str, steps: Vec<StepDef>) -> WorkflowDef {
    WorkflowDef {
        id: id.into(),
        description: None,
        params: Default::default(),
        secrets: Vec::new(),
        required: Default::default(),
        computed: Default::default(),
        max_parallel: None,
        timeout: None,
        signal_retention: None,
        steps,
        triggers: Vec::new(),
        run_strategy: Default::default(),
        max_concurrent_runs: None,
    }
}

/// `n` steps, each depending on the one before.
pub fn chain(n: usize, kind: &str) -> WorkflowDef {
    let steps = (0..n)
        .map(|i| {
            let s = StepDef::new(format!("s{i}"), kind);
            if i == 0 {
                s
            } else {
                s.after([format!("s{}", i - 1)])
            }
        })
        .collect();
    workflow("chain", steps)
}

/// A root, `n` steps depending on it, and a sink depending on all of them.
pub fn fan_out(n: usize, kind: &str) -> WorkflowDef {
    let mut steps = vec![StepDef::new("root", kind)];
    steps.extend((0..n).map(|i| StepDef::new(format!("s{i}"), kind).after(["root"])));
    steps.push(StepDef::new("sink", kind).after((0..n).map(|i| format!("s{i}"))));
    workflow("fan-out", steps)
}

/// `n` steps in layers of `width`; each step past the first layer depends on two random
/// steps of the layer above (so about 2 dependencies per step).
pub fn layered(n: usize, width: usize, seed: u64) -> WorkflowDef {
    let mut rng = fastrand::Rng::with_seed(seed);
    let steps = (0..n)
        .map(|i| {
            let s = StepDef::new(format!("s{i}"), "noop");
            let layer = i / width;
            if layer == 0 {
                return s;
            }
            let above = (layer - 1) * width;
            let a = above + rng.usize(0..width);
            let mut b = above + rng.usize(0..width);
            if b == a {
                b = above + (a - above + 1) % width;
            }
            s.after([format!("s{a}"), format!("s{b}")])
        })
        .collect();
    workflow("layered", steps)
}

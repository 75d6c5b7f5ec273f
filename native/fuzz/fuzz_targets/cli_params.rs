//! `-p KEY=VALUE` arguments, one a line: read as the CLI reads them (the CLI's own module),
//! then applied to a definition's defaults as a start does, and typed as a signal's are.
#![no_main]

use baton_core::fuzzing;
use baton_core::{StepDef, WorkflowDef};
use indexmap::IndexMap;
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

#[path = "../../baton-cli/src/params.rs"]
mod params;

fuzz_target!(|text: &str| {
    let mut overrides = IndexMap::new();
    let mut signal = IndexMap::new();
    for arg in text.lines() {
        let Ok((key, value)) = params::parse_param(arg) else { continue };
        signal.insert(key.clone(), params::typed(&value));
        overrides.insert(key, Value::String(value));
    }
    let def = WorkflowDef {
        id: "w".into(),
        description: None,
        secrets: Vec::new(),
        required: Default::default(),
        computed: Default::default(),
        params: [("date", json!("2026-11-25")), ("limit", json!(100)), ("dry", json!(true))]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
        max_parallel: None,
        timeout: None,
        signal_retention: None,
        steps: vec![StepDef::new("a", "noop")],
        triggers: Vec::new(),
        run_strategy: Default::default(),
        max_concurrent_runs: None,
    };
    let _ = fuzzing::params(&def, overrides);
    let _ = serde_json::to_string(&signal);
});

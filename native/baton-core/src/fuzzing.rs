//! Entry points for the fuzz targets (native/fuzz) into parsers that are private to the
//! crate. Built only by `cargo fuzz`, which passes `--cfg fuzzing`; what the public API
//! already reads (definitions, expressions, requests, cron) is fuzzed through it.

use crate::steps::Outputs;
use crate::{EngineError, WorkflowDef};
use indexmap::IndexMap;
use serde_json::Value;

/// Reads the text of a `$BATON_OUTPUT` file, as a shell step does when its command ends.
pub fn outputs(text: &str) -> Result<Outputs, String> {
    crate::steps::parse_outputs(text)
}

/// Applies a run's parameter overrides to the definition's defaults, as a start does.
pub fn params(
    def: &WorkflowDef,
    overrides: IndexMap<String, Value>,
) -> Result<IndexMap<String, Value>, EngineError> {
    crate::engine::merge_params(def, overrides)
}

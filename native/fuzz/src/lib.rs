//! What the fuzz targets share: the names an expression sees.

use baton_core::expr::Scope;
use indexmap::IndexMap;
use serde_json::{json, Value};

/// Names as a run would have them: parameters, a step's outputs, a loop's item, and
/// whatever a target adds (a signal's params under `signal`).
pub struct Names(pub IndexMap<String, Value>);

impl Default for Names {
    fn default() -> Self {
        let names = [
            ("date", json!("2026-11-25")),
            ("limit", json!(100)),
            ("ratio", json!(0.5)),
            ("tags", json!(["a", "b"])),
            ("item", json!({"n": 1, "parts": [1, 2, 3]})),
            ("extract", json!({"rows": 42, "table": "events", "ok": true})),
        ];
        Names(names.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }
}

impl Scope for Names {
    fn name(&self, name: &str) -> Option<Value> {
        self.0.get(name).cloned()
    }

    fn now_ms(&self) -> u64 {
        1_795_564_800_000 // 2026-11-25T00:00:00Z
    }

    fn env(&self, name: &str) -> Option<String> {
        (name == "HOME").then(|| "/home/baton".into())
    }
}

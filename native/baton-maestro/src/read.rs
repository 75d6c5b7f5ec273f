//! The forms a Maestro definition comes in, read into one: the create request
//! (`{properties, is_active, workflow}`), a bare workflow (`{id, steps, ...}`) and the DSL's
//! YAML (`Workflow: {id, jobs, ...}`, see [`crate::dsl`]).

use serde_json::{Map, Value};

/// A Maestro definition: its workflow and the properties it was created with.
pub(crate) struct Definition {
    pub(crate) properties: Map<String, Value>,
    pub(crate) workflow: Map<String, Value>,
    /// Whether the request said `is_active` (absent: Maestro activates the new version).
    pub(crate) is_active: Option<bool>,
}

/// Reads `text`; the error says why it is no Maestro definition.
pub(crate) fn definition(text: &str) -> Result<Definition, String> {
    let tree: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?
    } else {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| format!("neither JSON nor valid YAML: {e}"))?;
        serde_json::to_value(yaml).map_err(|e| format!("YAML that JSON cannot hold: {e}"))?
    };
    let Value::Object(mut top) = tree else {
        return Err("a Maestro definition is a map".into());
    };
    if let Some(dsl) = top.remove("Workflow") {
        return crate::dsl::definition(dsl);
    }
    match top.remove("workflow") {
        Some(Value::Object(workflow)) => {
            let properties = match top.remove("properties") {
                Some(Value::Object(p)) => p,
                None => Map::new(),
                Some(_) => return Err("`properties` is not a map".into()),
            };
            let is_active = top.remove("is_active").and_then(|v| v.as_bool());
            if let Some(other) = top.keys().next() {
                return Err(format!("the request's field `{other}` is not translated"));
            }
            Ok(Definition { properties, workflow, is_active })
        }
        Some(_) => Err("`workflow` is not a map".into()),
        None if top.contains_key("steps") || top.contains_key("id") => {
            Ok(Definition { properties: Map::new(), workflow: top, is_active: None })
        }
        None => Err(
            "neither a Maestro create request (`workflow`), a workflow (`id`, `steps`) nor the DSL (`Workflow`)"
                .into(),
        ),
    }
}

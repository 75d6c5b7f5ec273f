//! `KEY=VALUE` arguments (`-p date=2026-11-25`, signal params), read from the command line.
//!
//! A module of its own, without dependencies on the rest of the CLI, so that the fuzz
//! targets (native/fuzz) include this very file.

/// Splits `key=value` at the first `=`; the key is trimmed and may not be empty.
pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not key=value")),
    }
}

/// A value from the command line: a number or boolean when it reads as one, else text.
pub fn typed(text: &str) -> serde_json::Value {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => v,
        _ => serde_json::Value::String(text.to_owned()),
    }
}

//! Errors as Java sees them: a kind that picks the exception class, and a message.

use baton_core::error::ErrorKind;
use baton_core::testing::TimeError;
use baton_core::{EngineError, InvalidDefinition, StoreError};
use serde_json::{json, Value};

/// A failed call, returned to Java in the `{"error": ...}` envelope.
#[derive(Debug)]
pub struct BridgeError {
    kind: ErrorKind,
    message: String,
    errors: Option<InvalidDefinition>,
}

impl BridgeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        BridgeError { kind, message: message.into(), errors: None }
    }

    pub fn internal(message: impl Into<String>) -> Self {
        BridgeError::new(ErrorKind::Internal, message)
    }

    pub fn closed() -> Self {
        BridgeError::new(ErrorKind::Closed, "this Baton instance is closed")
    }

    pub fn to_json(&self) -> Value {
        let mut e = json!({ "kind": self.kind.name(), "message": self.message });
        if let Some(def) = &self.errors {
            e["errors"] = json!(def.errors);
        }
        e
    }
}

impl From<InvalidDefinition> for BridgeError {
    fn from(e: InvalidDefinition) -> Self {
        BridgeError { kind: ErrorKind::Definition, message: e.to_string(), errors: Some(e) }
    }
}

impl From<StoreError> for BridgeError {
    fn from(e: StoreError) -> Self {
        BridgeError::new(e.kind(), e.to_string())
    }
}

impl From<EngineError> for BridgeError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::Definition(def) => def.into(),
            e => BridgeError::new(e.kind(), e.to_string()),
        }
    }
}

impl From<TimeError> for BridgeError {
    fn from(e: TimeError) -> Self {
        match e {
            TimeError::StillBusy { .. } => BridgeError::new(ErrorKind::Timeout, e.to_string()),
            TimeError::Engine(e) => e.into(),
        }
    }
}

impl From<jni::errors::Error> for BridgeError {
    fn from(e: jni::errors::Error) -> Self {
        BridgeError::internal(format!("JNI: {e}"))
    }
}

impl From<serde_json::Error> for BridgeError {
    fn from(e: serde_json::Error) -> Self {
        BridgeError::internal(format!("malformed JSON from Java: {e}"))
    }
}

//! The model's shape as data: the JSON names of every object's fields and of every choice's
//! values, read from the serde definitions themselves. Hosts' DSLs (the Java builder) test
//! their mirrors against it, so a field added here cannot be forgotten there.

use super::{
    Backoff, CacheDef, EmitSignal, FailureMode, Misfire, ParamType, RetryDef, RunStrategy, StepDef,
    Trigger, TriggerDef, WorkflowDef,
};
use serde::Serialize;
use serde_aux::serde_introspection::serde_introspect;

/// Field names by object, value names by choice, as they are written in YAML and JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Schema {
    /// Fields of a workflow.
    pub workflow: &'static [&'static str],
    /// Fields of a step.
    pub step: &'static [&'static str],
    /// Fields of a workflow trigger (`triggers:`).
    pub trigger: &'static [&'static str],
    /// Fields of a step's `retry`.
    pub retry: &'static [&'static str],
    /// Fields of a step's `cache`.
    pub cache: &'static [&'static str],
    /// Fields of one of a step's `emit_signals`.
    pub emit_signal: &'static [&'static str],
    /// Values of a step's `failure_mode`.
    pub failure_mode: &'static [&'static str],
    /// Values of a step's `trigger`.
    pub step_trigger: &'static [&'static str],
    /// Values of `retry.backoff`.
    pub backoff: &'static [&'static str],
    /// Values of a workflow's `run_strategy`.
    pub run_strategy: &'static [&'static str],
    /// Values of a cron trigger's `misfire`.
    pub misfire: &'static [&'static str],
    /// Values of the types under `required`.
    pub param_type: &'static [&'static str],
}

/// The model's shape.
pub fn schema() -> Schema {
    Schema {
        workflow: serde_introspect::<WorkflowDef>(),
        step: serde_introspect::<StepDef>(),
        trigger: serde_introspect::<TriggerDef>(),
        retry: serde_introspect::<RetryDef>(),
        cache: serde_introspect::<CacheDef>(),
        emit_signal: serde_introspect::<EmitSignal>(),
        failure_mode: serde_introspect::<FailureMode>(),
        step_trigger: serde_introspect::<Trigger>(),
        backoff: serde_introspect::<Backoff>(),
        run_strategy: serde_introspect::<RunStrategy>(),
        misfire: serde_introspect::<Misfire>(),
        param_type: serde_introspect::<ParamType>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_read_from_the_model() {
        let s = schema();
        // 30 before the six fields of `http` steps (`method` .. `outputs`), then `cache`.
        assert_eq!(s.step.len(), 37, "{:?}", s.step);
        assert_eq!(&s.step[30..36], ["method", "url", "headers", "body", "expect", "outputs"]);
        assert_eq!((s.step[36], s.cache), ("cache", &["ttl", "key"][..]));
        assert_eq!(&s.step[..2], ["id", "type"]);
        assert!(s.step.contains(&"as") && s.step.contains(&"match") && s.step.contains(&"tags"));
        assert!(s.workflow.contains(&"signal_retention"));
        assert!(s.workflow.contains(&"required") && s.workflow.contains(&"computed"));
        assert_eq!(s.param_type, ["integer", "number", "boolean", "string", "list", "map", "any"]);
        assert_eq!(s.backoff, ["fixed", "linear", "exponential"]);
        assert!(s.run_strategy.contains(&"strict_sequential"));
        assert!(
            crate::model::is_id("a.b-c_1")
                && !crate::model::is_id("a b")
                && !crate::model::is_id("")
                && crate::model::is_id(&"a".repeat(crate::model::MAX_ID_LEN))
                && !crate::model::is_id(&"a".repeat(crate::model::MAX_ID_LEN + 1))
        );
        let problem = crate::model::id_problem(&"a".repeat(10 << 20), "workflow id").unwrap();
        assert_eq!(
            problem,
            "invalid workflow id `aaaaaaaaaaaaaaaaaaaa...` (10485760 characters): at most 255 characters"
        );
    }
}

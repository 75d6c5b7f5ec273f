#![warn(missing_docs)]

//! Baton's engine: durable workflow orchestration as a library.
//!
//! A workflow ([`model::WorkflowDef`], from YAML, JSON or a host's DSL) is validated and
//! compiled into a [`Workflow`]; an [`engine::Engine`] runs it, writing every state change
//! to a durable store (redb or sled in a directory, see [`StoreEngine`], or a PostgreSQL
//! database, see [`StoreLocation`]) before acting on it, so that a crash loses no run.
//!
//! This crate knows nothing about the JVM or the command line: `baton-jni` and
//! `baton-cli` are users of it like any other. Its public API is what they (and the
//! crate's tests, benchmarks and examples) use; the rest (the store, the scheduler, the
//! record encodings) is private to the crate, so that it can change freely.

pub mod activity;
pub mod clock;
pub mod control;
pub(crate) mod dag;
pub mod engine;
pub mod error;
pub mod expr;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod insights;
pub mod model;
pub(crate) mod process;
pub mod steps;
pub(crate) mod store;
pub mod testing;
pub mod triggers;

pub use activity::Activity;
pub use clock::{Clock, SystemClock, VirtualClock};
pub use dag::Workflow;
pub use engine::{CacheEntry, CachedFrom, Pruned, Retention};
pub use engine::{
    Engine, EngineBuilder, EngineError, Event, RunDetails, RunRecord, RunStatus, StepRecord,
    StepStatus, StepView,
};
pub use engine::{FiringRecord, Registered, StartOptions, VersionInfo, WorkflowInfo};
pub use error::{DefinitionError, InvalidDefinition};
pub use model::{Source, StepDef, WorkflowDef};
pub use store::{DatabaseUrl, StoreEngine, StoreError, StoreLocation};

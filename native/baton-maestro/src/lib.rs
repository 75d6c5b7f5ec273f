//! Maestro workflow definitions into Baton's: what `baton import maestro` runs.
//!
//! Reads Maestro's create-request JSON, a bare workflow JSON, or its DSL YAML, maps each
//! construct onto Baton's model or refuses it (naming the file, step, field and why; never
//! a silent change of meaning), and checks the result with baton-core's own validation
//! before anyone writes it. SEL expressions are translated for the subset definitions use
//! ([`sel`]); no Java runs. This crate is a user of baton-core like the CLI; it holds no
//! rule of Baton's model.

mod convert;
mod dsl;
mod read;
mod sel;

use baton_core::model::{Format, Source};
use baton_core::{InvalidDefinition, Workflow};

/// One imported workflow.
#[derive(Debug)]
pub struct Imported {
    /// The workflow's id (Maestro's, kept).
    pub id: String,
    /// The Baton definition, YAML.
    pub yaml: String,
    /// Step types with no Baton built-in, kept as host step types of the same name: the
    /// host registers them (a JVM with `stepTypes().register`) before it runs the workflow.
    pub host_types: Vec<String>,
    /// Tag limits that keep Maestro's `step_concurrency`: `baton limit TAG N`.
    pub limits: Vec<(String, u64)>,
    /// What was left out because it does not change what runs (owners, labels), and
    /// defaults made explicit.
    pub notes: Vec<String>,
}

/// A construct with no Baton counterpart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{at}: {reason}")]
pub struct Refusal {
    /// Where: `workflow`, `step `job.1`: params.foo`, ...
    pub at: String,
    /// What is not translated, and why.
    pub reason: String,
}

/// Why a file was not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not a Maestro definition.
    #[error("{file}: {reason}")]
    Unreadable {
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// Constructs with no Baton counterpart: nothing is written.
    #[error("{file}: {} construct{} not translated:\n{}", .refusals.len(), if .refusals.len() == 1 { "" } else { "s" }, .refusals.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n"))]
    Refused {
        /// The file.
        file: String,
        /// Each construct, where it is and why.
        refusals: Vec<Refusal>,
    },
    /// The translation is not a valid Baton definition (a defect of the importer, or an
    /// invalid Maestro definition such as a dependency cycle).
    #[error("{file}: the imported definition is not valid:\n{errors}")]
    Invalid {
        /// The file.
        file: String,
        /// Baton's validation errors, placed in the imported YAML.
        errors: InvalidDefinition,
        /// The YAML that failed.
        yaml: String,
    },
}

/// Imports the Maestro definition `text`, read from `file` (named in errors).
pub fn import(file: &str, text: &str) -> Result<Imported, ImportError> {
    let definition = read::definition(text)
        .map_err(|reason| ImportError::Unreadable { file: file.into(), reason })?;
    let mut report = convert::Report::default();
    let baton = convert::workflow(definition, &mut report);
    if !report.refusals.is_empty() {
        return Err(ImportError::Refused { file: file.into(), refusals: report.refusals });
    }
    let id = baton["id"].as_str().unwrap_or_default().to_owned();
    // Through JSON text: JSON is YAML, and numbers then stay numbers (serde_json keeps them
    // exact, in a form serde_yaml would write as a map).
    let yaml = serde_yaml::from_str::<serde_yaml::Value>(&baton.to_string())
        .and_then(|tree| serde_yaml::to_string(&tree))
        .map_err(|e| ImportError::Unreadable {
            file: file.into(),
            reason: format!("cannot write YAML: {e}"),
        })?;
    let yaml = format!("# Imported from Maestro: {file}\n{yaml}");
    let source = Source::new(format!("{id}.yaml"), yaml.clone(), Format::Yaml);
    // Host types are checked as a host will register them: with params.
    let kinds = baton_core::engine::built_in_kinds().open();
    if let Err(errors) = Workflow::load(&source, &kinds) {
        return Err(ImportError::Invalid { file: file.into(), errors, yaml });
    }
    Ok(Imported {
        id,
        yaml,
        host_types: report.host_types.into_iter().collect(),
        limits: report.limits,
        notes: report.notes,
    })
}

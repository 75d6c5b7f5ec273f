//! Registered workflows and their versions, kept in the store.
//!
//! Registering a definition that differs from the latest version (by content hash) makes
//! version N+1, the active one; registering the same definition again changes nothing.
//! Runs started by id pin the active version (or the one asked for). The compiled active
//! versions are cached in `Shared::workflows`; a definition that does not compile when the
//! engine opens (a host step kind not registered yet) is compiled when first asked for.

use super::records::{
    collect_records, decode, encode, get_definition, put_definition, scan_records,
};
use super::{EngineError, Shared};
use crate::dag::Workflow;
use crate::model::{RunStrategy, WorkflowDef};
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What [`Engine::register`](super::Engine::register) did.
#[derive(Debug, Clone)]
pub struct Registered {
    /// The definition, compiled.
    pub workflow: Arc<Workflow>,
    /// The version the definition is (new or existing).
    pub version: u32,
    /// Whether a new version was made.
    pub changed: bool,
}

/// A registered workflow, for listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowInfo {
    /// The workflow's id.
    pub id: String,
    /// The version that starts and triggers run.
    pub active_version: u32,
    /// The newest version registered.
    pub latest_version: u32,
    /// Whether its triggers fire.
    pub enabled: bool,
    /// Triggers of the active version.
    pub triggers: usize,
    /// The run strategy of the active version.
    pub run_strategy: RunStrategy,
}

/// A version of a registered workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// The version number, from 1.
    pub version: u32,
    /// The content hash of its definition.
    pub definition: String,
    /// When it was registered (milliseconds since the epoch).
    pub registered_ms: u64,
    /// Whether it is the active version.
    pub active: bool,
}

/// A workflow's entry in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WorkflowEntry {
    pub(crate) active_version: u32,
    pub(crate) latest_version: u32,
    pub(crate) enabled: bool,
}

/// A version in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub(crate) version: u32,
    pub(crate) definition: String,
    pub(crate) registered_ms: u64,
}

fn version_key(id: &str, version: u32) -> Vec<u8> {
    let mut key = id.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

pub(crate) fn get_entry(store: &dyn Store, id: &str) -> Result<Option<WorkflowEntry>, StoreError> {
    store
        .get(Table::Workflows, id.as_bytes())?
        .map(|b| decode(|| format!("workflow {id}"), &b))
        .transpose()
}

pub(crate) fn get_version(
    store: &dyn Store,
    id: &str,
    version: u32,
) -> Result<Option<VersionRecord>, StoreError> {
    store
        .get(Table::Versions, &version_key(id, version))?
        .map(|b| decode(|| format!("version {version} of workflow {id}"), &b))
        .transpose()
}

/// Every registered workflow with its entry, by id.
pub(crate) fn list_entries(store: &dyn Store) -> Result<Vec<(String, WorkflowEntry)>, StoreError> {
    let mut out = Vec::new();
    scan_records(
        store,
        Table::Workflows,
        b"",
        |key| format!("workflow {}", String::from_utf8_lossy(key)),
        |key, entry| {
            out.push((String::from_utf8_lossy(key).into_owned(), entry));
            true
        },
    )?;
    Ok(out)
}

fn list_versions(store: &dyn Store, id: &str) -> Result<Vec<VersionRecord>, StoreError> {
    let mut prefix = id.as_bytes().to_vec();
    prefix.push(0);
    collect_records(store, Table::Versions, &prefix, |_| format!("version of workflow {id}"))
}

fn compile(shared: &Shared, def: WorkflowDef) -> Result<Workflow, crate::error::InvalidDefinition> {
    Workflow::compile(def, &shared.kinds.read().unwrap_or_else(|e| e.into_inner()))
}

fn cache(
    shared: &Shared,
) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<Workflow>>> {
    shared.workflows.lock().unwrap_or_else(|e| e.into_inner())
}

/// The key in [`Table::Meta`] that changes with every change of the registry: engines
/// sharing the store read it to know when what they compiled is out of date.
const CHANGE: &[u8] = b"registry-change";

/// Marks the registry changed, in the batch that changes it.
fn changed(batch: &mut Batch) {
    batch.put(Table::Meta, CHANGE, super::next_run_id().into_bytes());
}

/// The registry's last change, by any engine of the store.
pub(crate) fn last_change(store: &dyn Store) -> Result<Option<Vec<u8>>, crate::store::StoreError> {
    store.get(Table::Meta, CHANGE)
}

/// Another engine changed the registry: workflows are compiled again when next asked
/// for, and the scheduler looks at the triggers again.
pub(crate) fn reload(shared: &Shared) {
    cache(shared).clear();
    shared.triggers.wake.notify_one();
}

/// The compiled workflow of the definition `hash`, when it is the active version of `id`
/// (most runs are): reading a run then decodes no definition.
pub(crate) fn cached_definition(shared: &Shared, id: &str, hash: &str) -> Option<Arc<Workflow>> {
    cache(shared).get(id).filter(|wf| wf.definition_hash() == hash).cloned()
}

/// Compiles the active version of every stored workflow into the cache; one that does not
/// compile now is left for [`registered_workflow`] to compile when asked for.
pub(crate) fn load_active(shared: &Shared) -> Result<(), EngineError> {
    let store = shared.store.as_ref();
    for (id, entry) in list_entries(store)? {
        let loaded = get_version(store, &id, entry.active_version)?
            .map(|v| get_definition(store, &v.definition))
            .transpose()?
            .map(|def| compile(shared, def));
        match loaded {
            Some(Ok(workflow)) => {
                cache(shared).insert(id, Arc::new(workflow));
            }
            Some(Err(e)) => {
                tracing::warn!(workflow = %id, version = entry.active_version, error = %e, "registered workflow does not compile yet; compiling it when asked for")
            }
            None => {
                tracing::error!(workflow = %id, version = entry.active_version, "the active version is missing from the store")
            }
        }
    }
    Ok(())
}

/// The active version of a registered workflow, compiled.
pub(crate) fn registered_workflow(shared: &Shared, id: &str) -> Result<Arc<Workflow>, EngineError> {
    if let Some(workflow) = cache(shared).get(id).cloned() {
        return Ok(workflow);
    }
    let store = shared.store.as_ref();
    let Some(entry) = get_entry(store, id)? else {
        let known = list_entries(store)?.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        let hint = crate::error::did_you_mean(id, known.iter().map(String::as_str));
        return Err(EngineError::UnknownWorkflow { id: id.into(), hint });
    };
    let workflow = Arc::new(version_workflow(shared, id, entry.active_version)?);
    cache(shared).insert(id.to_owned(), workflow.clone());
    Ok(workflow)
}

/// Version `version` of workflow `id`, compiled.
pub(crate) fn version_workflow(
    shared: &Shared,
    id: &str,
    version: u32,
) -> Result<Workflow, EngineError> {
    Ok(compile(shared, version_definition(shared.store.as_ref(), id, version)?)?)
}

fn version_definition(
    store: &dyn Store,
    id: &str,
    version: u32,
) -> Result<WorkflowDef, EngineError> {
    let record =
        get_version(store, id, version)?.ok_or_else(|| unknown_version(store, id, version))?;
    Ok(get_definition(store, &record.definition)?)
}

fn unknown_version(store: &dyn Store, id: &str, version: u32) -> EngineError {
    let known: Vec<String> = list_versions(store, id)
        .unwrap_or_default()
        .iter()
        .map(|v| v.version.to_string())
        .collect();
    EngineError::UnknownVersion {
        id: id.into(),
        version,
        known: if known.is_empty() { "none".into() } else { known.join(", ") },
    }
}

impl super::Engine {
    /// Validates `def` and stores it as a new version of its workflow, the active one,
    /// unless it is the same as the latest version (then nothing changes). Durable when it
    /// returns (a flush of the store on this thread: registering is rare).
    pub fn register(&self, def: WorkflowDef) -> Result<Registered, EngineError> {
        let workflow = Arc::new(self.compile(def)?);
        let id = workflow.id().to_owned();
        // This engine can run the workflow's host steps: it may take its runs from others.
        self.shared.member.workflows.lock().unwrap_or_else(|e| e.into_inner()).insert(id.clone());
        // Engines sharing a database register at once (replicas starting together): a
        // version is written by the first, and the others look again.
        let mut tries = 0;
        loop {
            match self.register_once(&workflow) {
                Err(EngineError::Store(crate::store::StoreError::Conflict)) if tries < 10 => {
                    tries += 1
                }
                result => return result,
            }
        }
    }

    fn register_once(&self, workflow: &Arc<Workflow>) -> Result<Registered, EngineError> {
        let id = workflow.id().to_owned();
        let store = self.shared.store.as_ref();
        let _registering = self.shared.triggers.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut batch = Batch::default();
        let hash = put_definition(store, &mut batch, workflow)?;
        let entry = get_entry(store, &id)?;
        if let Some(entry) = &entry {
            let latest = get_version(store, &id, entry.latest_version)?;
            if latest.is_some_and(|v| v.definition == hash) {
                if entry.active_version == entry.latest_version {
                    cache(&self.shared).insert(id, workflow.clone());
                }
                return Ok(Registered {
                    workflow: workflow.clone(),
                    version: entry.latest_version,
                    changed: false,
                });
            }
        }
        let version = entry.as_ref().map_or(1, |e| e.latest_version + 1);
        let record =
            VersionRecord { version, definition: hash, registered_ms: self.shared.clock.now_ms() };
        let entry = WorkflowEntry {
            active_version: version,
            latest_version: version,
            enabled: !matches!(entry, Some(WorkflowEntry { enabled: false, .. })),
        };
        batch.put(Table::Versions, version_key(&id, version), encode(&record));
        batch.expect(Table::Versions, version_key(&id, version), None);
        batch.put(Table::Workflows, id.as_bytes(), encode(&entry));
        super::firings::arm_cursors(store, &mut batch, workflow.def(), record.registered_ms)?;
        changed(&mut batch);
        if store.commit_all(vec![batch])? != [true] {
            return Err(crate::store::StoreError::Conflict.into());
        }
        tracing::info!(workflow = %id, version, "workflow registered");
        cache(&self.shared).insert(id, workflow.clone());
        self.shared.triggers.wake.notify_one();
        Ok(Registered { workflow: workflow.clone(), version, changed: true })
    }

    /// The active version of a registered workflow.
    pub fn workflow(&self, id: &str) -> Option<Arc<Workflow>> {
        registered_workflow(&self.shared, id).ok()
    }

    /// Every registered workflow, by id.
    pub fn workflows(&self) -> Result<Vec<WorkflowInfo>, EngineError> {
        let store = self.shared.store.as_ref();
        list_entries(store)?
            .into_iter()
            .map(|(id, entry)| {
                let def = version_definition(store, &id, entry.active_version)?;
                Ok(WorkflowInfo {
                    id,
                    active_version: entry.active_version,
                    latest_version: entry.latest_version,
                    enabled: entry.enabled,
                    triggers: def.triggers.len(),
                    run_strategy: def.run_strategy,
                })
            })
            .collect()
    }

    /// The versions of a registered workflow, oldest first.
    pub fn versions(&self, id: &str) -> Result<Vec<VersionInfo>, EngineError> {
        let store = self.shared.store.as_ref();
        let entry = self.entry(id)?;
        Ok(list_versions(store, id)?
            .into_iter()
            .map(|v| VersionInfo {
                active: v.version == entry.active_version,
                version: v.version,
                definition: v.definition,
                registered_ms: v.registered_ms,
            })
            .collect())
    }

    /// Makes `version` the one that runs started by id and triggers use.
    pub fn activate(&self, id: &str, version: u32) -> Result<(), EngineError> {
        let store = self.shared.store.as_ref();
        let _registering = self.shared.triggers.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut entry = self.entry(id)?;
        let workflow = Arc::new(version_workflow(&self.shared, id, version)?);
        entry.active_version = version;
        let mut batch = Batch::default();
        batch.put(Table::Workflows, id.as_bytes(), encode(&entry));
        super::firings::arm_cursors(store, &mut batch, workflow.def(), self.shared.clock.now_ms())?;
        changed(&mut batch);
        store.commit(&batch)?;
        tracing::info!(workflow = %id, version, "version activated");
        cache(&self.shared).insert(id.to_owned(), workflow);
        self.shared.triggers.wake.notify_one();
        Ok(())
    }

    /// Turns the workflow's triggers on or off; starts by hand are not affected.
    pub fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), EngineError> {
        let _registering = self.shared.triggers.registry.lock().unwrap_or_else(|e| e.into_inner());
        let mut entry = self.entry(id)?;
        if entry.enabled != enabled {
            entry.enabled = enabled;
            let mut batch = Batch::default();
            batch.put(Table::Workflows, id.as_bytes(), encode(&entry));
            changed(&mut batch);
            self.shared.store.commit(&batch)?;
            tracing::info!(workflow = %id, enabled, "workflow triggers switched");
        }
        self.shared.triggers.wake.notify_one();
        Ok(())
    }

    /// The definition of a version of a registered workflow (the active one for `None`).
    pub fn definition(&self, id: &str, version: Option<u32>) -> Result<WorkflowDef, EngineError> {
        let version = match version {
            Some(v) => v,
            None => self.entry(id)?.active_version,
        };
        version_definition(self.shared.store.as_ref(), id, version)
    }

    pub(crate) fn entry(&self, id: &str) -> Result<WorkflowEntry, EngineError> {
        let store = self.shared.store.as_ref();
        get_entry(store, id)?.ok_or_else(|| {
            let known = list_entries(store)
                .unwrap_or_default()
                .into_iter()
                .map(|(id, _)| id)
                .collect::<Vec<_>>();
            let hint = crate::error::did_you_mean(id, known.iter().map(String::as_str));
            EngineError::UnknownWorkflow { id: id.into(), hint }
        })
    }
}

//! The result cache: a step that asks for it (`cache: {ttl, key}`) is not run again while a
//! success of the same step, with the same key, is younger than its `ttl`. It is SUCCEEDED
//! at once with the outputs that success gave, and its record says where they came from
//! ([`CachedFrom`]).
//!
//! DESIGN.md puts the cache with the insights (what history tells); it lives here, in the
//! engine, because the driver consults it when a step is about to launch, and the insights
//! layer sits above the engine.
//!
//! An entry is keyed by workflow id, step id and a digest: of the step's kind, its own
//! definition (its JSON), and either the user's `key` rendered, or the step's fields as its
//! attempt sees them (`command`, `env`, `params`, an `http` step's request) with, for a kind
//! that reads them (a host's, a Java step), the run's params and its upstream steps'
//! outputs. A changed definition of the step changes the digest, so it misses.
//!
//! Entries live in the store ([`Table::Cache`]): on a database every engine of a cluster
//! sees every entry. A miss writes its entry in the batch of the step's SUCCEEDED record,
//! so a crash keeps both or neither. Expired entries are ignored at lookup and deleted by
//! retention (see `retention.rs`).

use super::records::{self, decode, encode};
use super::{Engine, EngineError};
use crate::steps::Outputs;
use crate::store::{Batch, Store, StoreError, Table};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a cached step's outputs came from: the run and step whose success they are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedFrom {
    /// The run that ran the step.
    pub run_id: String,
    /// The step, in that run.
    pub step_id: String,
}

/// An entry as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// What the step gave, masked as its record is.
    pub(crate) outputs: Outputs,
    /// The success they come from.
    pub(crate) from: CachedFrom,
    /// When it was written, milliseconds since the epoch.
    pub(crate) created_ms: u64,
    /// When it stops serving.
    pub(crate) expires_ms: u64,
}

/// An entry of the cache, as `baton cache list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// The workflow of the step.
    pub workflow_id: String,
    /// The cached step.
    pub step_id: String,
    /// The digest the entry is kept under (hex).
    pub key: String,
    /// The run whose success it keeps.
    pub from_run: String,
    /// When it was written, milliseconds since the epoch.
    pub created_ms: u64,
    /// When it stops serving.
    pub expires_ms: u64,
    /// The size of its outputs, serialized, in bytes.
    pub size: u64,
}

/// Workflow id, a 0 byte, step id, a 0 byte (ids hold no 0 byte, so a prefix names one
/// workflow or one step), then the digest.
pub(crate) fn entry_key(workflow_id: &str, step_id: &str, digest: &str) -> Vec<u8> {
    let mut key = prefix(Some(workflow_id), Some(step_id));
    key.extend_from_slice(digest.as_bytes());
    key
}

fn prefix(workflow_id: Option<&str>, step_id: Option<&str>) -> Vec<u8> {
    let mut key = Vec::new();
    if let Some(workflow_id) = workflow_id {
        key.extend_from_slice(workflow_id.as_bytes());
        key.push(0);
        if let Some(step_id) = step_id {
            key.extend_from_slice(step_id.as_bytes());
            key.push(0);
        }
    }
    key
}

/// What a digest is made of, beyond the step's kind and definition.
pub(crate) enum Keyed<'a> {
    /// The user's `key`, rendered.
    User(&'a str),
    /// The step's rendered fields, and what else its attempt reads, as JSON.
    Fields(&'a Value),
}

/// The digest of a step's key: blake3 over its kind, its definition's JSON and what it is
/// keyed by, each with its length first so that no two combinations read the same.
pub(crate) fn digest(kind: &str, definition: &[u8], keyed: Keyed<'_>) -> String {
    let mut hasher = blake3::Hasher::new();
    let fields;
    let (tag, text): (&[u8], &[u8]) = match keyed {
        Keyed::User(text) => (b"key", text.as_bytes()),
        Keyed::Fields(value) => {
            fields = serde_json::to_vec(value).unwrap_or_default();
            (b"fields", &fields)
        }
    };
    for part in [kind.as_bytes(), definition, tag, text] {
        hasher.update(&(part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().to_hex().to_string()
}

/// The entry under `key`, unless there is none or it expired by `now_ms`.
pub(crate) fn lookup(
    store: &dyn Store,
    key: &[u8],
    now_ms: u64,
) -> Result<Option<Entry>, StoreError> {
    let Some(bytes) = store.get(Table::Cache, key)? else { return Ok(None) };
    let entry: Entry = decode(|| "cache entry".into(), &bytes)?;
    Ok((entry.expires_ms > now_ms).then_some(entry))
}

/// Puts an entry in `batch`: the batch of the SUCCEEDED record it comes from.
pub(crate) fn put(batch: &mut Batch, key: Vec<u8>, entry: &Entry) {
    batch.put(Table::Cache, key, encode(entry));
}

/// The keys of the entries that expired by `now_ms`, up to `limit`, from `from`.
pub(crate) fn expired(
    store: &dyn Store,
    now_ms: u64,
    from: &[u8],
    limit: usize,
) -> Result<(Vec<Vec<u8>>, bool), StoreError> {
    let mut keys = Vec::new();
    let mut more = false;
    records::scan_records_from(store, Table::Cache, b"", from, |_| "cache entry".into(), {
        |key: &[u8], entry: Entry| {
            if keys.len() >= limit {
                more = true;
                return false;
            }
            if entry.expires_ms <= now_ms {
                keys.push(key.to_vec());
            }
            true
        }
    })?;
    Ok((keys, more))
}

impl Engine {
    /// The entries of the result cache, of one workflow or of all, in key order (workflow,
    /// step); expired ones too, until retention deletes them.
    pub fn cache_entries(&self, workflow_id: Option<&str>) -> Result<Vec<CacheEntry>, EngineError> {
        let store = self.shared().store.as_ref();
        let mut entries = Vec::new();
        let mut bad = None;
        store.scan(Table::Cache, &prefix(workflow_id, None), &mut |key, bytes| {
            let mut parts = key.splitn(3, |b| *b == 0);
            let (Some(workflow), Some(step), Some(digest)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return true;
            };
            match decode::<Entry>(|| "cache entry".into(), bytes) {
                Ok(entry) => entries.push(CacheEntry {
                    workflow_id: String::from_utf8_lossy(workflow).into_owned(),
                    step_id: String::from_utf8_lossy(step).into_owned(),
                    key: String::from_utf8_lossy(digest).into_owned(),
                    from_run: entry.from.run_id,
                    created_ms: entry.created_ms,
                    expires_ms: entry.expires_ms,
                    size: serde_json::to_vec(&entry.outputs).map_or(0, |b| b.len() as u64),
                }),
                Err(e) => {
                    bad = Some(e);
                    return false;
                }
            }
            true
        })?;
        match bad {
            Some(e) => Err(e.into()),
            None => Ok(entries),
        }
    }

    /// Deletes the entries of the result cache: all, a workflow's, or one step's (`step_id`
    /// needs `workflow_id`); returns how many went. The next run of those steps runs them.
    pub async fn clear_cache(
        &self,
        workflow_id: Option<&str>,
        step_id: Option<&str>,
    ) -> Result<u64, EngineError> {
        let prefix = prefix(workflow_id, step_id.filter(|_| workflow_id.is_some()));
        let mut removed = 0;
        loop {
            let mut keys = Vec::new();
            self.shared().store.scan(Table::Cache, &prefix, &mut |key, _| {
                keys.push(key.to_vec());
                keys.len() < super::retention::BATCH
            })?;
            if keys.is_empty() {
                return Ok(removed);
            }
            removed += keys.len() as u64;
            let mut batch = Batch::default();
            for key in keys {
                batch.delete(Table::Cache, key);
            }
            self.commit(batch).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_changes_with_each_part() {
        let fields = serde_json::json!({"command": "echo 1"});
        let base = digest("shell", b"{}", Keyed::Fields(&fields));
        assert_eq!(base, digest("shell", b"{}", Keyed::Fields(&fields)));
        assert_ne!(base, digest("http", b"{}", Keyed::Fields(&fields)));
        assert_ne!(base, digest("shell", b"{ }", Keyed::Fields(&fields)));
        let other = serde_json::json!({"command": "echo 2"});
        assert_ne!(base, digest("shell", b"{}", Keyed::Fields(&other)));
        assert_ne!(
            digest("shell", b"{}", Keyed::User("a")),
            digest("shell", b"{}a", Keyed::User(""))
        );
    }

    #[test]
    fn keys_of_one_step_share_a_prefix_no_other_step_has() {
        let key = entry_key("w", "a", "00ff");
        assert!(key.starts_with(&prefix(Some("w"), Some("a"))));
        assert!(!entry_key("w", "ab", "00").starts_with(&prefix(Some("w"), Some("a"))));
        assert!(!entry_key("wx", "a", "00").starts_with(&prefix(Some("w"), None)));
    }
}

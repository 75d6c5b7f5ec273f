//! The store's layout version, and bringing a store written by an older version up to it
//! when the engine opens it.
//!
//! Layout 1 had no indexes of signals by time sent and of finished runs by end time
//! ([`Table::SignalsSent`], [`Table::Finished`]); layout 2 has them. Opening a layout 1
//! store builds them from the signals and runs, in bounded batches, and then records the
//! layout in the last batch: a crash meanwhile only makes the next open build them again.

use super::records::{self, RunRecord, SignalRecord};
use crate::store::{Batch, Store, StoreError, Table};

/// The layout this version writes.
pub(crate) const LAYOUT: u32 = 2;
/// The key of the layout version in [`Table::Meta`].
const LAYOUT_KEY: &[u8] = b"layout";
/// Writes per batch while building an index.
const BATCH: usize = 1_000;

/// Brings the store to [`LAYOUT`], if it is older.
pub(crate) fn upgrade(store: &dyn Store) -> Result<(), StoreError> {
    let found = match store.get(Table::Meta, LAYOUT_KEY)? {
        Some(bytes) => records::decode::<u32>(|| "store layout".into(), &bytes)?,
        None => 1,
    };
    if found >= LAYOUT {
        return Ok(());
    }
    let mut batch = Batch::default();
    let mut indexed = 0usize;
    let flush = |batch: &mut Batch| -> Result<(), StoreError> {
        if batch.len() >= BATCH {
            store.commit(&std::mem::take(batch))?;
        }
        Ok(())
    };
    // Keys first, writes after: a scan reads a snapshot, and the batches write other tables.
    let mut sent = Vec::new();
    records::scan_records(store, Table::Signals, b"", |_| "signal".into(), {
        |_, s: SignalRecord| {
            sent.push(records::sent_key(&s.name, s.sent_ms, &s.id));
            true
        }
    })?;
    for key in sent {
        batch.put(Table::SignalsSent, key, Vec::new());
        indexed += 1;
        flush(&mut batch)?;
    }
    let mut finished = Vec::new();
    records::scan_records(store, Table::Runs, b"", |k| String::from_utf8_lossy(k).into(), {
        |_, run: RunRecord| {
            if run.parent.is_none() && run.status.is_terminal() {
                finished.push(records::finished_key(&run));
            }
            true
        }
    })?;
    for key in finished {
        batch.put(Table::Finished, key, Vec::new());
        indexed += 1;
        flush(&mut batch)?;
    }
    batch.put(Table::Meta, LAYOUT_KEY, records::encode(&LAYOUT));
    store.commit(&batch)?;
    tracing::info!(from = found, to = LAYOUT, indexed, "store layout upgraded");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Engine, RunStatus};
    use indexmap::IndexMap;
    use std::time::Duration;

    /// A store as layout 1 wrote it: a finished run and a signal, with no index and no
    /// layout version.
    fn write_layout_1(dir: &std::path::Path) {
        let opened = crate::store::open(&dir.to_path_buf().into(), None).unwrap();
        let run = serde_json::json!({
            "id": "01OLDRUN", "workflow_id": "w", "definition": "h", "params": {},
            "status": "SUCCEEDED", "step_count": 1, "created_ms": 1_000, "ended_ms": 2_000,
        });
        let signal = SignalRecord {
            id: "01OLDSIGNAL".into(),
            name: "go".into(),
            params: IndexMap::new(),
            sent_ms: 3_000,
            source: None,
        };
        let mut batch = Batch::default();
        batch.put(Table::Runs, b"01OLDRUN".to_vec(), run.to_string());
        batch.put(Table::Signals, b"go\x0001OLDSIGNAL".to_vec(), records::encode(&signal));
        opened.store.commit(&batch).unwrap();
    }

    #[tokio::test]
    async fn a_store_of_layout_1_opens_with_its_indexes_built() {
        let dir = tempfile::tempdir().unwrap();
        write_layout_1(dir.path());
        let engine = Engine::builder().store_dir(dir.path()).open().unwrap();
        let store = engine.shared().store.as_ref();
        assert_eq!(store.get(Table::Meta, LAYOUT_KEY).unwrap(), Some(b"2".to_vec()));
        let mut found = Vec::new();
        records::scan_signals_sent_since(store, "go", 3_000, |s| {
            found.push(s.id);
            true
        })
        .unwrap();
        assert_eq!(found, vec!["01OLDSIGNAL".to_string()], "a wait finds the old signal");
        assert_eq!(engine.run("01OLDRUN").unwrap().unwrap().status, RunStatus::Succeeded);
        let pruned = engine.prune(Duration::ZERO, false).await.unwrap();
        assert_eq!((pruned.runs, pruned.signals), (1, 1), "the old run and signal are indexed");
        assert!(engine.run("01OLDRUN").unwrap().is_none());
        engine.close().await;
    }
}

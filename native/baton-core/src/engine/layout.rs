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

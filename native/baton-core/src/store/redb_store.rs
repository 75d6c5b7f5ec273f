//! The redb engine.

use super::{Batch, Op, Store, StoreError, Table};
use redb::{Database, ReadableDatabase, TableDefinition};
use std::path::Path;

/// The file redb uses inside a store.
pub(super) const FILE: &str = "baton.redb";
const CACHE_BYTES: usize = 64 << 20;
/// How long, at most, to wait for a lock on the file held by a dying process's child.
const LOCK_WAITS: u32 = 100;
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
const DATA: TableDefinition<&[u8], &[u8]> = TableDefinition::new("baton");

pub(super) struct RedbStore {
    db: Database,
}

fn fail(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(e) if super::is_full(&e) => StoreError::Full { message: e.to_string() },
        e => StoreError::Engine { engine: "redb", message: e.to_string() },
    }
}

impl RedbStore {
    pub(super) fn open(dir: &Path) -> Result<Self, StoreError> {
        // The caller holds the store's lock file, so a redb lock still held is a child a dead
        // engine forked, which lets go of it when it execs or exits, in moments.
        let mut waits = 0;
        let db = loop {
            match Database::builder().set_cache_size(CACHE_BYTES).create(dir.join(FILE)) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if waits < LOCK_WAITS => {
                    waits += 1;
                    std::thread::sleep(LOCK_WAIT);
                }
                result => break result.map_err(fail)?,
            }
        };
        // Create the table once, so that readers never find it missing.
        let txn = db.begin_write().map_err(fail)?;
        txn.open_table(DATA).map_err(fail)?;
        txn.commit().map_err(fail)?;
        Ok(RedbStore { db })
    }
}

impl Store for RedbStore {
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(fail)?;
        {
            let mut table = txn.open_table(DATA).map_err(fail)?;
            for op in &batch.ops {
                match op {
                    Op::Put(t, k, v) => {
                        table.insert(t.key(k).as_slice(), v.as_slice()).map_err(fail)?;
                    }
                    Op::Delete(t, k) => {
                        table.remove(t.key(k).as_slice()).map_err(fail)?;
                    }
                }
            }
        }
        // The default durability makes commit return only once the data is synced.
        txn.commit().map_err(fail)
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let t = txn.open_table(DATA).map_err(fail)?;
        Ok(t.get(table.key(key).as_slice()).map_err(fail)?.map(|v| v.value().to_vec()))
    }

    fn scan_from(
        &self,
        table: Table,
        prefix: &[u8],
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read().map_err(fail)?;
        let t = txn.open_table(DATA).map_err(fail)?;
        let prefix = table.key(prefix);
        let start = table.key(from).max(prefix.clone());
        for entry in t.range(start.as_slice()..).map_err(fail)? {
            let (k, v) = entry.map_err(fail)?;
            let (k, v) = (k.value(), v.value());
            if !k.starts_with(&prefix) || !f(&k[1..], v) {
                break;
            }
        }
        Ok(())
    }
}

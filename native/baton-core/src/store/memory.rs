//! A store in memory: for tests and for hosts that want no durability.

use super::{Batch, Op, Store, StoreError, Table};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Keeps everything in a map; nothing survives the process.
#[derive(Default)]
pub(crate) struct MemoryStore {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // Every op leaves the map consistent, so a poisoned lock is still usable.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut map = self.map();
        for op in &batch.ops {
            match op {
                Op::Put(t, k, v) => {
                    map.insert(t.key(k), v.clone());
                }
                Op::Delete(t, k) => {
                    map.remove(&t.key(k));
                }
            }
        }
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map().get(&table.key(key)).cloned())
    }

    fn scan_from(
        &self,
        table: Table,
        prefix: &[u8],
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let prefix = table.key(prefix);
        let start = table.key(from).max(prefix.clone());
        let map = self.map();
        for (k, v) in map.range(start..) {
            if !k.starts_with(&prefix) || !f(&k[1..], v) {
                break;
            }
        }
        Ok(())
    }
}

//! The sled 0.34 engine.

use super::{Batch, Op, Store, StoreError, Table};
use std::path::Path;

/// The directory sled uses inside a store.
pub(super) const DIR: &str = "sled";
const CACHE_BYTES: u64 = 64 << 20;
/// How long, at most, to wait for a closed sled instance of this process to let go of its lock.
const LOCK_WAITS: u32 = 100;
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

pub(super) struct SledStore {
    db: sled::Db,
}

fn fail(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(e) if super::is_full(&e) => StoreError::Full { message: e.to_string() },
        e => StoreError::Engine { engine: "sled", message: e.to_string() },
    }
}

impl SledStore {
    pub(super) fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = sled::Config::new().path(dir.join(DIR)).cache_capacity(CACHE_BYTES);
        // The caller holds the store's lock file, so a sled lock still held is this process's
        // previous sled instance (its flusher thread lets go of the lock shortly after close),
        // or a child a dead engine forked, which lets go of it when it execs or exits.
        let mut waits = 0;
        loop {
            match config.open() {
                // sled words a held lock as "could not acquire lock on ..." (kind Other).
                Err(sled::Error::Io(e))
                    if (e.kind() == std::io::ErrorKind::WouldBlock
                        || e.to_string().contains("could not acquire lock"))
                        && waits < LOCK_WAITS =>
                {
                    waits += 1;
                    std::thread::sleep(LOCK_WAIT);
                }
                result => return Ok(SledStore { db: result.map_err(fail)? }),
            }
        }
    }
}

impl Store for SledStore {
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for op in &batch.ops {
            match op {
                Op::Put(t, k, v) => b.insert(t.key(k), v.as_slice()),
                Op::Delete(t, k) => b.remove(t.key(k)),
            }
        }
        self.db.apply_batch(b).map_err(fail)?;
        self.db.flush().map_err(fail)?;
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(table.key(key)).map_err(fail)?.map(|v| v.to_vec()))
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
        for entry in self.db.range(start..) {
            let (k, v) = entry.map_err(fail)?;
            if !k.starts_with(&prefix) || !f(&k[1..], &v) {
                break;
            }
        }
        Ok(())
    }
}

//! Durable state behind the [`Store`] trait: tables of byte keys and values, written in
//! atomic batches that are on disk when [`Store::commit`] returns.
//!
//! A store is a directory, where redb or sled 0.34 keeps it (see [`StoreEngine`]), or a
//! PostgreSQL database (see [`StoreLocation`]); an in-memory one serves tests.
//! [`Committer`] adds group commit on top: many callers' batches share one flush. Nothing
//! outside this module knows which engine is in use.
//!
//! The module is private to the crate: hosts choose a place with [`StoreLocation`] and an
//! engine with [`StoreEngine`], see failures as [`StoreError`], and read what is stored
//! through [`Engine`](crate::Engine), never through keys and tables.

mod commit;
mod location;
mod memory;
mod pgpass;
mod postgres_store;
mod redb_store;
mod seal;
mod sled_store;
mod tls;

pub(crate) use commit::Committer;
pub use location::{DatabaseUrl, StoreLocation};
pub(crate) use memory::MemoryStore;
pub(crate) use seal::Sealer;

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// A table: a key space of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Table {
    /// run id -> run record.
    Runs,
    /// run id -> nothing: the runs not finished yet.
    Active,
    /// run id + step index -> step record.
    Steps,
    /// content hash -> workflow definition.
    Defs,
    /// iteration run id -> run record of one iteration of a `foreach` or `while`.
    Iterations,
    /// run id + step index -> progress of a `foreach` or `while` step.
    Rollups,
    /// signal name + signal id -> signal.
    Signals,
    /// signal name + time sent + signal id -> nothing: a name's signals by time sent.
    SignalsSent,
    /// time ended + run id -> nothing: the finished runs (not child runs), oldest first.
    Finished,
    /// name -> value: what the store says of itself (its layout's version).
    Meta,
    /// workflow id -> the workflow's entry: active version, enabled, versions.
    Workflows,
    /// workflow id + version -> a registered version.
    Versions,
    /// workflow id + trigger + scheduled time -> a firing of a trigger.
    Firings,
    /// workflow id + trigger -> how far the trigger has looked (time or signal id).
    Cursors,
    /// start request id -> the run it started.
    Requests,
    /// run id + sequence -> a status change of the run or one of its steps.
    Events,
    /// workflow id + step id -> a breakpoint.
    Breakpoints,
    /// tag -> the most steps with that tag running at once.
    Limits,
    /// workflow id + run id -> a run waiting for its turn (run strategies).
    Queue,
    /// run id -> the values of the run's secrets, sealed: kept until the run ends.
    Secrets,
    /// engine id -> the engine's heartbeat and what it can run (cluster mode).
    Engines,
    /// run id -> the engine driving the unfinished run, and the lease's generation.
    Leases,
    /// `q` run id 0 request id -> an action asked of a run another engine drives;
    /// `r` request id -> what became of it.
    Actions,
    /// iteration run id -> its loop's scope id: an iteration offered to other engines.
    Offers,
    /// loop scope id -> what the loop's iterations see of its run, sealed.
    Scopes,
    /// tag -> the steps holding one of its slots, on a store engines share.
    Slots,
    /// workflow id + step id -> the step's history (durations, outcomes).
    History,
    /// workflow id 0 step id 0 digest -> a kept success of a step with `cache`.
    Cache,
}

impl Table {
    /// Engines keep every table in one key space, each under its own first byte.
    fn prefix(self) -> u8 {
        match self {
            Table::Runs => b'r',
            Table::Active => b'a',
            Table::Steps => b's',
            Table::Defs => b'd',
            Table::Iterations => b'i',
            Table::Rollups => b'u',
            Table::Signals => b'g',
            Table::SignalsSent => b'h',
            Table::Finished => b'z',
            Table::Meta => b'm',
            Table::Workflows => b'w',
            Table::Versions => b'v',
            Table::Firings => b'f',
            Table::Cursors => b'c',
            Table::Requests => b'q',
            Table::Events => b'e',
            Table::Breakpoints => b'b',
            Table::Limits => b'l',
            Table::Queue => b'k',
            Table::Secrets => b'x',
            Table::Engines => b'n',
            Table::Leases => b'o',
            Table::Actions => b't',
            Table::Offers => b'y',
            Table::Scopes => b'j',
            Table::Slots => b'p',
            // The lower-case letters are taken.
            Table::History => b'H',
            Table::Cache => b'C',
        }
    }

    fn key(self, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(key.len() + 1);
        k.push(self.prefix());
        k.extend_from_slice(key);
        k
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Op {
    /// Sets the value of a key.
    Put(Table, Vec<u8>, Vec<u8>),
    /// Removes a key, if it is there.
    Delete(Table, Vec<u8>),
}

/// What a key must hold for a batch to apply: a value, or nothing (`None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expect {
    pub(crate) table: Table,
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

/// Writes that become durable together, or not at all; with expectations, only if every
/// one holds when the batch is written (see [`Store::commit_all`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Batch {
    /// The writes, applied in order.
    pub(crate) ops: Vec<Op>,
    /// What must hold for the writes to apply: a fence (a run's lease is still ours), or a
    /// key nobody wrote yet (a firing, a request id).
    pub(crate) expect: Vec<Expect>,
}

impl Batch {
    /// Adds a write of `value` under `key`.
    pub(crate) fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put(table, key.into(), value.into()));
    }

    /// Applies the batch only if `key` then holds `value` (`None`: nothing).
    pub(crate) fn expect(&mut self, table: Table, key: impl Into<Vec<u8>>, value: Option<Vec<u8>>) {
        self.expect.push(Expect { table, key: key.into(), value });
    }

    /// Adds a removal of `key`.
    pub(crate) fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete(table, key.into()));
    }

    /// The number of writes.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there is nothing to write.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Which of `batches` apply, in order: a batch applies when each of its expectations holds
/// in the store as `read` sees it, with the writes of the batches before it that apply.
pub(crate) fn decide(
    batches: &[Batch],
    mut read: impl FnMut(Table, &[u8]) -> Result<Option<Vec<u8>>, StoreError>,
) -> Result<Vec<bool>, StoreError> {
    use std::collections::{HashMap, HashSet};
    let watched: HashSet<Vec<u8>> =
        batches.iter().flat_map(|b| &b.expect).map(|e| e.table.key(&e.key)).collect();
    // What the batches that apply leave in the watched keys.
    let mut overlay: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let mut applied = Vec::with_capacity(batches.len());
    for batch in batches {
        let mut holds = true;
        for e in &batch.expect {
            let key = e.table.key(&e.key);
            let now = match overlay.get(&key) {
                Some(v) => v.clone(),
                None => read(e.table, &e.key)?,
            };
            if now != e.value {
                holds = false;
                break;
            }
        }
        if holds {
            for op in &batch.ops {
                let (key, value) = match op {
                    Op::Put(t, k, v) => (t.key(k), Some(v.clone())),
                    Op::Delete(t, k) => (t.key(k), None),
                };
                if watched.contains(&key) {
                    overlay.insert(key, value);
                }
            }
        }
        applied.push(holds);
    }
    Ok(applied)
}

/// The writes of the batches that apply, as one batch.
pub(crate) fn merge(batches: Vec<Batch>, applied: &[bool]) -> Batch {
    let mut kept = batches.into_iter().zip(applied).filter(|(_, a)| **a).map(|(b, _)| b);
    let mut merged = kept.next().unwrap_or_default();
    merged.expect.clear();
    for mut batch in kept {
        merged.ops.append(&mut batch.ops);
    }
    merged
}

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the store.
    #[error("the store {dir} is in use by another process{}; stop it, or use another store directory", pid.as_deref().map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The store directory.
        dir: PathBuf,
        /// The holder's pid, as its lock file says.
        pid: Option<String>,
    },
    /// This process has the store open already.
    #[error(
        "the store {dir} is already open in this process; close the engine that holds it first"
    )]
    OpenHere {
        /// The store directory.
        dir: PathBuf,
    },
    /// The directory holds a database of the other engine.
    #[error("the store {dir} holds a {found} database, not {wanted}; drop --store-engine {wanted} or use another --store")]
    EngineMismatch {
        /// The store directory.
        dir: PathBuf,
        /// The engine whose files are there.
        found: StoreEngine,
        /// The engine asked for.
        wanted: StoreEngine,
    },
    /// A file of the store could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The engine below failed.
    #[error("{engine} store: {message}")]
    Engine {
        /// The engine's name (`redb`, `sled`).
        engine: &'static str,
        /// Its error.
        message: String,
    },
    /// A record does not decode.
    #[error("corrupt record in the store ({what}): {message}")]
    Corrupt {
        /// The record, in words (`run <id>`, `definition <hash>`).
        what: String,
        /// Why it does not decode.
        message: String,
    },
    /// The disk of the store is full (or the user's quota is used up). Nothing was
    /// half-written: runs stay as the last commit left them.
    #[error("the store's disk is full ({message}); the engine stopped, and its unfinished runs are kept as they were: free some space, then resume them (`baton recover`)")]
    Full {
        /// What the engine below said.
        message: String,
    },
    /// The database was written by a newer Baton.
    #[error("the database {url} has schema version {found}, newer than this Baton's ({known}): upgrade Baton to use it")]
    NewerSchema {
        /// The database, without its password.
        url: String,
        /// The version found.
        found: i32,
        /// The newest version this Baton knows.
        known: i32,
    },
    /// Talking to the database failed.
    #[error("PostgreSQL store {url}: {action} failed: {message}")]
    Database {
        /// The database, without its password.
        url: String,
        /// What failed: `connect`, `migrate`, `lock`, `commit`, `read`...
        action: &'static str,
        /// What the driver or the server said.
        message: String,
    },
    /// A directory engine was asked for on a database store.
    #[error("--store-engine {wanted} is for a store directory, and {url} is a PostgreSQL database; drop --store-engine")]
    NotADirectory {
        /// The database, without its password.
        url: String,
        /// The engine asked for.
        wanted: StoreEngine,
    },
    /// A batch's expectation did not hold: another engine wrote first (it holds the run's
    /// lease now, or fired the trigger, or used the request id). Nothing was written.
    #[error("another engine wrote first; this engine's write was not made")]
    Conflict,
    /// The store was closed.
    #[error("the store is closed")]
    Closed,
}

/// Whether `e` says the disk (or the quota) is full.
fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || e.raw_os_error().is_some_and(|code| code == libc::ENOSPC || code == libc::EDQUOT)
}

impl StoreError {
    /// The kind of failure: [`Closed`](crate::error::ErrorKind::Closed) for a call that raced
    /// the engine's close, [`Store`](crate::error::ErrorKind::Store) for the others.
    pub fn kind(&self) -> crate::error::ErrorKind {
        match self {
            StoreError::Closed => crate::error::ErrorKind::Closed,
            _ => crate::error::ErrorKind::Store,
        }
    }
}

/// A durable key-value store of tables.
pub(crate) trait Store: Send + Sync + 'static {
    /// Applies every op atomically; returns once they are on disk. Expectations are not
    /// checked: see [`commit_all`](Store::commit_all).
    fn commit(&self, batch: &Batch) -> Result<(), StoreError>;
    /// Applies, in one atomic write, the batches whose expectations hold (see [`decide`]);
    /// says which did. A store with one writer checks them by reading; a database shared by
    /// several engines checks them in the writing transaction.
    fn commit_all(&self, batches: Vec<Batch>) -> Result<Vec<bool>, StoreError> {
        let applied = match batches.iter().all(|b| b.expect.is_empty()) {
            true => vec![true; batches.len()],
            false => decide(&batches, |table, key| self.get(table, key))?,
        };
        self.commit(&merge(batches, &applied))?;
        Ok(applied)
    }
    /// Reads many values at once (a database answers in one round trip).
    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|key| self.get(table, key)).collect()
    }
    /// The time, in milliseconds since the epoch, by the clock every engine of the store
    /// shares: the database's, or this machine's for a store directory.
    fn now_ms(&self) -> Result<u64, StoreError> {
        Ok(crate::clock::Clock::now_ms(&crate::clock::SystemClock))
    }
    /// Reads one value.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Calls `f` for each entry whose key starts with `prefix`, in key order, until it
    /// returns false.
    fn scan(
        &self,
        table: Table,
        prefix: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.scan_from(table, prefix, prefix, f)
    }
    /// [`scan`](Store::scan), starting at the first key not before `from`: an index is
    /// read from where the entries wanted begin, never from its start.
    fn scan_from(
        &self,
        table: Table,
        prefix: &[u8],
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError>;
}

/// The engines a store can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreEngine {
    /// redb: ACID copy-on-write B-trees with a stable file format. The default.
    #[default]
    Redb,
    /// sled 0.34.
    Sled,
}

impl StoreEngine {
    /// The engine's name, as `--store-engine` takes it.
    pub fn name(self) -> &'static str {
        match self {
            StoreEngine::Redb => "redb",
            StoreEngine::Sled => "sled",
        }
    }

    /// Which engine's files `dir` holds, if any.
    fn found_in(dir: &Path) -> Option<StoreEngine> {
        if dir.join(redb_store::FILE).exists() {
            Some(StoreEngine::Redb)
        } else if dir.join(sled_store::DIR).exists() {
            Some(StoreEngine::Sled)
        } else {
            None
        }
    }
}

impl std::fmt::Display for StoreEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for StoreEngine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "redb" => Ok(StoreEngine::Redb),
            "sled" => Ok(StoreEngine::Sled),
            other => Err(format!("unknown store engine `{other}`: use redb or sled")),
        }
    }
}

/// An open store, holding its lock (the directory's lock file, or the database's lock)
/// while it lives.
pub(crate) struct OpenedStore {
    /// The store.
    pub(crate) store: Arc<dyn Store>,
    /// The directory engine it uses: the one found in the directory, or the one asked for.
    /// A database has none.
    pub(crate) engine: Option<StoreEngine>,
    /// The store directory; a database has none.
    pub(crate) dir: Option<PathBuf>,
    /// Seals what the store keeps of secrets, with the store's key.
    pub(crate) sealer: Arc<Sealer>,
    _lock: Option<File>,
}

/// Opens (or creates) the store at `location`. A directory holds a store of `engine`, or,
/// with `engine` unset, keeps the engine it has (a new one gets the default). A second
/// process on a directory gets [`StoreError::Locked`]; a database takes many engines.
pub(crate) fn open(
    location: &StoreLocation,
    engine: Option<StoreEngine>,
) -> Result<OpenedStore, StoreError> {
    match (location, engine) {
        (StoreLocation::Dir(dir), engine) => open_dir(dir, engine),
        (StoreLocation::Database(url), Some(wanted)) => {
            Err(StoreError::NotADirectory { url: url.to_string(), wanted })
        }
        (StoreLocation::Database(url), None) => {
            let store: Arc<dyn Store> = Arc::new(postgres_store::PostgresStore::open(url)?);
            let sealer = Arc::new(Sealer::in_store(store.as_ref())?);
            Ok(OpenedStore { store, engine: None, dir: None, sealer, _lock: None })
        }
    }
}

fn open_dir(dir: &Path, engine: Option<StoreEngine>) -> Result<OpenedStore, StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    private_dir(dir).map_err(io(dir))?;
    let lock = lock(dir)?;
    let found = StoreEngine::found_in(dir);
    let engine = match (found, engine) {
        (Some(found), Some(wanted)) if found != wanted => {
            return Err(StoreError::EngineMismatch { dir: dir.into(), found, wanted })
        }
        (found, wanted) => found.or(wanted).unwrap_or_default(),
    };
    let store: Arc<dyn Store> = match engine {
        StoreEngine::Redb => Arc::new(redb_store::RedbStore::open(dir)?),
        StoreEngine::Sled => Arc::new(sled_store::SledStore::open(dir)?),
    };
    let sealer = Arc::new(Sealer::for_dir(dir)?);
    // Files the store engine just made follow the umask; they hold params and outputs.
    let widened = make_private(dir).map_err(io(dir))?;
    if widened > 0 {
        tracing::warn!(dir = %dir.display(), entries = widened, "store was readable by others: now owner-only");
    }
    tracing::debug!(dir = %dir.display(), %engine, "store opened");
    Ok(OpenedStore {
        store,
        engine: Some(engine),
        dir: Some(dir.into()),
        sealer,
        _lock: Some(lock),
    })
}

/// Creates `dir` (and its parents) owner-only, whatever the umask: 0700.
pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// Makes everything in the store directory owner-only (directories 0700, files 0600);
/// returns how many entries were open to others. Runs at each open, so a store made by an
/// older version, or copied with wider modes, is tightened.
fn make_private(dir: &Path) -> std::io::Result<usize> {
    let mut widened = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.file_type().is_symlink() {
            continue;
        }
        let private = if meta.is_dir() { 0o700 } else { 0o600 };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            widened += 1;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & private))?;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(widened)
}

/// How long an open waits for a lock this process holds to be let go of.
const OWN_LOCK_PATIENCE: Duration = Duration::from_millis(500);
/// How long it waits when the engine the lock names is dead but a child of it still holds it.
const DEAD_HOLDER_PATIENCE: Duration = Duration::from_secs(2);
/// How often it looks again meanwhile.
const OWN_LOCK_POLL: Duration = Duration::from_millis(5);

/// Takes the directory's lock file and writes our pid in it, for the error others get.
fn lock(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("baton.lock");
    let io = |source| StoreError::Io { path: path.clone(), source };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let mut waited = Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut pid = String::new();
                file.rewind().map_err(io)?;
                let _ = file.read_to_string(&mut pid);
                let pid = Some(pid.trim().to_owned()).filter(|p| !p.is_empty());
                let ours = pid.as_deref() == Some(std::process::id().to_string().as_str());
                // The engine the lock names is dead, yet the lock is held: by a child it forked
                // (a shell step between fork and exec), which lets go of it in moments.
                let dead = pid
                    .as_deref()
                    .and_then(|p| p.parse::<libc::pid_t>().ok())
                    .is_some_and(crate::process::gone);
                let wait_for_child = dead && waited < DEAD_HOLDER_PATIENCE;
                if !ours && !wait_for_child {
                    return Err(StoreError::Locked { dir: dir.into(), pid });
                }
                // Our own lock: an engine of this process holds it, or one just closed
                // and a child process forked meanwhile (a shell step) still has the lock's
                // file open until it execs. The second passes in moments.
                if ours && waited >= OWN_LOCK_PATIENCE {
                    return Err(StoreError::OpenHere { dir: dir.into() });
                }
                std::thread::sleep(OWN_LOCK_POLL);
                waited += OWN_LOCK_POLL;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    file.set_len(0).map_err(io)?;
    file.rewind().map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    Ok(file)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The behaviour every engine must have.
    pub(crate) fn exercise(store: &dyn Store) {
        let mut b = Batch::default();
        b.put(Table::Runs, b"r1".to_vec(), b"one".to_vec());
        b.put(Table::Steps, b"r1/1".to_vec(), b"a".to_vec());
        b.put(Table::Steps, b"r1/2".to_vec(), b"b".to_vec());
        b.put(Table::Steps, b"r2/1".to_vec(), b"c".to_vec());
        b.put(Table::Active, b"r1".to_vec(), b"".to_vec());
        store.commit(&b).unwrap();
        assert_eq!(store.get(Table::Runs, b"r1").unwrap(), Some(b"one".to_vec()));
        assert_eq!(store.get(Table::Active, b"r2").unwrap(), None);
        // Tables do not see each other's keys.
        assert_eq!(store.get(Table::Defs, b"r1").unwrap(), None);
        let mut seen = Vec::new();
        store
            .scan(Table::Steps, b"r1/", &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                true
            })
            .unwrap();
        assert_eq!(
            seen,
            vec![(b"r1/1".to_vec(), b"a".to_vec()), (b"r1/2".to_vec(), b"b".to_vec())]
        );
        let mut b = Batch::default();
        b.delete(Table::Active, b"r1".to_vec());
        store.commit(&b).unwrap();
        let mut count = 0;
        store
            .scan(Table::Active, b"", &mut |_, _| {
                count += 1;
                true
            })
            .unwrap();
        assert_eq!(count, 0);
        let mut seen = Vec::new();
        store
            .scan_from(Table::Steps, b"r1/", b"r1/15", &mut |k, _| {
                seen.push(k.to_vec());
                true
            })
            .unwrap();
        assert_eq!(seen, vec![b"r1/2".to_vec()], "from a key within the prefix");
        seen.clear();
        store
            .scan_from(Table::Steps, b"r1/", b"r0", &mut |k, _| {
                seen.push(k.to_vec());
                true
            })
            .unwrap();
        assert_eq!(seen, vec![b"r1/1".to_vec(), b"r1/2".to_vec()], "never outside the prefix");
        // Ops apply in order: on one key, the last one wins.
        let mut b = Batch::default();
        b.put(Table::Runs, b"gone".to_vec(), b"x".to_vec());
        b.delete(Table::Runs, b"gone".to_vec());
        b.delete(Table::Runs, b"back".to_vec());
        b.put(Table::Runs, b"back".to_vec(), b"1".to_vec());
        b.put(Table::Runs, b"back".to_vec(), b"2".to_vec());
        store.commit(&b).unwrap();
        assert_eq!(store.get(Table::Runs, b"gone").unwrap(), None);
        assert_eq!(store.get(Table::Runs, b"back").unwrap(), Some(b"2".to_vec()));
        // Long scans, and scans stopped early, see keys in order up to where they stop; keys
        // of 0xff bytes sort last in their table.
        let mut b = Batch::default();
        for i in 0..2500u32 {
            b.put(Table::Events, [b"x".as_slice(), &i.to_be_bytes()].concat(), i.to_string());
        }
        b.put(Table::Events, vec![b'x', 0xff, 0xff, 0xff, 0xff, 0xff], b"last".to_vec());
        b.put(Table::Firings, b"x".to_vec(), b"other table".to_vec());
        store.commit(&b).unwrap();
        let mut seen = Vec::new();
        store
            .scan(Table::Events, b"x", &mut |k, v| {
                seen.push((k.to_vec(), v.to_vec()));
                true
            })
            .unwrap();
        assert_eq!(seen.len(), 2501);
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "in key order");
        assert_eq!(seen[1234].1, b"1234".to_vec());
        assert_eq!(seen[2500].1, b"last".to_vec());
        let mut read = 0;
        store
            .scan(Table::Events, b"x", &mut |_, _| {
                read += 1;
                read < 1500
            })
            .unwrap();
        assert_eq!(read, 1500, "a scan stops when told");
        // Batches with expectations apply only when they hold, in order, each seeing the
        // writes of those before it.
        let put = |key: &[u8], value: &[u8], expect: Option<&[u8]>| {
            let mut b = Batch::default();
            b.put(Table::Leases, key.to_vec(), value.to_vec());
            b.put(Table::Runs, [b"by-".as_slice(), value].concat(), b"".to_vec());
            b.expect(Table::Leases, key.to_vec(), expect.map(<[u8]>::to_vec));
            b
        };
        let mut plain = Batch::default();
        plain.put(Table::Runs, b"plain".to_vec(), b"".to_vec());
        let applied = store
            .commit_all(vec![
                put(b"run", b"a", None),
                put(b"run", b"b", None),
                put(b"run", b"c", Some(b"a")),
                plain,
                put(b"run", b"d", Some(b"a")),
            ])
            .unwrap();
        assert_eq!(applied, vec![true, false, true, true, false]);
        assert_eq!(store.get(Table::Leases, b"run").unwrap(), Some(b"c".to_vec()));
        for (key, there) in [(b"by-a", true), (b"by-b", false), (b"by-c", true), (b"by-d", false)] {
            assert_eq!(store.get(Table::Runs, key).unwrap().is_some(), there, "{key:?}");
        }
        assert!(store.get(Table::Runs, b"plain").unwrap().is_some());
        assert!(store.now_ms().unwrap() > 1_700_000_000_000, "a clock in milliseconds");
        let many = store
            .get_many(Table::Leases, &[b"run".to_vec(), b"none".to_vec(), b"run".to_vec()])
            .unwrap();
        assert_eq!(
            many,
            vec![Some(b"c".to_vec()), None, Some(b"c".to_vec())],
            "in the keys' order"
        );
    }

    /// A new database on the test server, or `None` (skipped) without PostgreSQL.
    pub(crate) fn database() -> Option<StoreLocation> {
        Some(baton_pgtest::database()?.parse().unwrap())
    }

    #[test]
    fn every_engine_behaves_the_same() {
        for engine in [StoreEngine::Redb, StoreEngine::Sled] {
            let dir = tempfile::tempdir().unwrap();
            let opened = open_dir(dir.path(), Some(engine)).unwrap();
            exercise(opened.store.as_ref());
        }
        exercise(&MemoryStore::default());
        if let Some(db) = database() {
            exercise(open(&db, None).unwrap().store.as_ref());
        }
    }

    #[test]
    fn a_database_keeps_its_data_across_opens() {
        let Some(db) = database() else { return };
        {
            let opened = open(&db, None).unwrap();
            assert_eq!((opened.engine, opened.dir.as_ref()), (None, None));
            let mut b = Batch::default();
            b.put(Table::Runs, b"k".to_vec(), b"v".to_vec());
            opened.store.commit(&b).unwrap();
        }
        let opened = open(&db, None).unwrap();
        assert_eq!(opened.store.get(Table::Runs, b"k").unwrap(), Some(b"v".to_vec()));
    }

    #[test]
    fn engines_sharing_a_database_race_for_a_key_and_one_wins() {
        let Some(db) = database() else { return };
        let engines: Vec<_> = (0..4).map(|_| open(&db, None).unwrap()).collect();
        for round in 0..20u32 {
            let key = round.to_be_bytes().to_vec();
            let writers: Vec<_> = engines
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let (store, key) = (e.store.clone(), key.clone());
                    std::thread::spawn(move || {
                        let mut b = Batch::default();
                        b.put(Table::Firings, key.clone(), vec![i as u8]);
                        b.put(Table::Runs, [key.as_slice(), &[i as u8]].concat(), vec![]);
                        b.expect(Table::Firings, key, None);
                        store.commit_all(vec![b]).unwrap()[0]
                    })
                })
                .collect();
            let won: Vec<bool> = writers.into_iter().map(|t| t.join().unwrap()).collect();
            assert_eq!(won.iter().filter(|w| **w).count(), 1, "round {round}: {won:?}");
            let winner = won.iter().position(|w| *w).unwrap() as u8;
            let store = engines[0].store.as_ref();
            assert_eq!(store.get(Table::Firings, &key).unwrap(), Some(vec![winner]));
            for i in 0..4u8 {
                let there = store.get(Table::Runs, &[key.as_slice(), &[i]].concat()).unwrap();
                assert_eq!(there.is_some(), i == winner, "only the winner's writes are made");
            }
        }
    }

    #[test]
    fn a_database_of_a_newer_baton_is_refused() {
        let Some(db) = database() else { return };
        drop(open(&db, None).unwrap());
        baton_pgtest::execute(&db.to_string(), "UPDATE baton_schema SET version = 99");
        let err = open(&db, None).err().unwrap();
        assert!(matches!(err, StoreError::NewerSchema { found: 99, .. }), "{err}");
        assert!(err.to_string().contains("upgrade Baton"), "{err}");
    }

    #[test]
    fn engines_opening_a_new_database_at_once_migrate_it_once_and_share_one_key() {
        let Some(db) = database() else { return };
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let opens: Vec<_> = (0..4)
            .map(|_| {
                let (db, barrier) = (db.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    open(&db, None)
                })
            })
            .collect();
        let opened: Vec<OpenedStore> =
            opens.into_iter().map(|o| o.join().unwrap().unwrap()).collect();
        // What one engine seals, every other unseals.
        let sealed = opened[0].sealer.seal(b"scope").unwrap();
        for o in &opened {
            assert_eq!(o.sealer.unseal(&sealed).as_deref(), Some(&b"scope"[..]));
        }
    }

    #[test]
    fn a_lost_connection_is_made_again() {
        let Some(db) = database() else { return };
        let opened = open(&db, None).unwrap();
        let mut b = Batch::default();
        b.put(Table::Runs, b"before".to_vec(), b"x".to_vec());
        opened.store.commit(&b).unwrap();
        baton_pgtest::drop_connections(&db.to_string());
        let mut b = Batch::default();
        b.put(Table::Runs, b"after".to_vec(), b"y".to_vec());
        opened.store.commit(&b).expect("the commit waits for a new connection");
        baton_pgtest::drop_connections(&db.to_string());
        // Reads reconnect too: none fails.
        for _ in 0..3 {
            assert_eq!(opened.store.get(Table::Runs, b"after").unwrap(), Some(b"y".to_vec()));
        }
    }

    #[test]
    fn data_survives_reopening() {
        for engine in [StoreEngine::Redb, StoreEngine::Sled] {
            let dir = tempfile::tempdir().unwrap();
            {
                let opened = open_dir(dir.path(), Some(engine)).unwrap();
                let mut b = Batch::default();
                b.put(Table::Runs, b"k".to_vec(), b"v".to_vec());
                opened.store.commit(&b).unwrap();
            }
            let opened = open_dir(dir.path(), None).unwrap();
            assert_eq!(opened.engine, Some(engine), "the engine is detected");
            assert_eq!(opened.store.get(Table::Runs, b"k").unwrap(), Some(b"v".to_vec()));
        }
    }

    #[test]
    fn a_second_opener_gets_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open_dir(dir.path(), None).unwrap();
        // flock locks are per open file description: a second open in this process fails
        // like one in another process, and says where the store is held.
        let err = open_dir(dir.path(), None).err().expect("second open must fail");
        let text = err.to_string();
        assert!(matches!(err, StoreError::OpenHere { .. }), "{text}");
        assert!(text.contains("already open in this process"), "{text}");
    }

    #[test]
    fn the_wrong_engine_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open_dir(dir.path(), Some(StoreEngine::Sled)).unwrap());
        let err = open_dir(dir.path(), Some(StoreEngine::Redb)).err().unwrap();
        assert!(err.to_string().contains("holds a sled database"), "{err}");
    }

    /// The mode bits of every entry under `dir`, itself included, that others may use.
    fn open_to_others(dir: &Path) -> Vec<(PathBuf, u32)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(path) = stack.pop() {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.permissions().mode() & 0o077 != 0 {
                out.push((path.clone(), meta.permissions().mode() & 0o777));
            }
            if meta.is_dir() {
                stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            }
        }
        out
    }

    #[test]
    fn a_store_is_owner_only_whatever_the_umask_and_an_old_one_is_tightened() {
        let parent = tempfile::tempdir().unwrap();
        for engine in [StoreEngine::Redb, StoreEngine::Sled] {
            let dir = parent.path().join(engine.to_string());
            // SAFETY: umask only changes this process's mask for files it creates.
            let old = unsafe { libc::umask(0o002) };
            let opened = open_dir(&dir, Some(engine));
            unsafe { libc::umask(old) };
            drop(opened.unwrap());
            assert_eq!(open_to_others(&dir), vec![], "{engine}");
            // A store left with wide modes (by an older version) is tightened at open.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::set_permissions(
                dir.join("baton.lock"),
                std::fs::Permissions::from_mode(0o644),
            )
            .unwrap();
            drop(open_dir(&dir, None).unwrap());
            assert_eq!(open_to_others(&dir), vec![], "{engine}");
        }
    }
}

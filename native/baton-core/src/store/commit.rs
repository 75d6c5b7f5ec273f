//! Group commit: batches sent while a flush is under way share the next flush.
//!
//! A batch whose expectations do not hold is not written, and its caller gets
//! [`StoreError::Conflict`]; the others of its flush are written all the same.
//!
//! The first commit that fails is the last one tried: what the engine holds in memory is
//! then ahead of the store, so every later batch fails with the same error, unwritten, and
//! `on_failure` fires so that the engine stops. The store keeps the runs as its last
//! commit left them, and the next open resumes them from there.

use super::{Batch, Store, StoreError};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Most ops merged into one commit, to bound its memory and latency.
const MAX_OPS_PER_COMMIT: usize = 200_000;

type Reply = oneshot::Sender<Written>;

/// A failed commit, as every caller sees it.
#[derive(Debug, Clone)]
struct Failure {
    full: bool,
    message: String,
}

impl Failure {
    fn of(e: &StoreError) -> Self {
        Failure { full: matches!(e, StoreError::Full { .. }), message: e.to_string() }
    }

    fn error(&self) -> StoreError {
        let message = self.message.clone();
        if self.full {
            StoreError::Full { message }
        } else {
            StoreError::Engine { engine: "commit", message }
        }
    }
}

/// What became of one caller's batch.
#[derive(Debug, Clone)]
enum Written {
    Yes,
    /// Its expectations did not hold.
    Conflict,
    Failed(Failure),
}

/// What the commit thread and its callers share.
#[derive(Default)]
struct Failed {
    first: OnceLock<Failure>,
    /// Fires with `first`.
    token: CancellationToken,
}

/// Commits batches on a thread of its own. Callers await their batch's flush without
/// blocking a tokio worker, and concurrent batches are merged into one flush.
pub(crate) struct Committer {
    tx: Mutex<Option<mpsc::Sender<(Batch, Reply)>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    failed: Arc<Failed>,
}

impl Committer {
    /// Starts the commit thread for `store`; `on_failure` fires when a commit fails.
    pub(crate) fn new(store: Arc<dyn Store>, on_failure: CancellationToken) -> Self {
        let (tx, rx) = mpsc::channel::<(Batch, Reply)>();
        let failed = Arc::new(Failed::default());
        let shared = failed.clone();
        let thread = std::thread::Builder::new()
            .name("baton-commit".into())
            .spawn(move || run(store.as_ref(), rx, &shared, &on_failure))
            .ok();
        Committer { tx: Mutex::new(Some(tx)), thread: Mutex::new(thread), failed }
    }

    /// The first commit that failed, if one did: nothing has been written since.
    pub(crate) fn failure(&self) -> Option<StoreError> {
        self.failed.first.get().map(Failure::error)
    }

    /// Returns once a commit fails, with its error.
    pub(crate) async fn failed(&self) -> StoreError {
        self.failed.token.cancelled().await;
        self.failure().unwrap_or(StoreError::Closed)
    }

    /// Returns once `batch` is durable.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.submit(batch).await
    }

    /// Queues `batch` now; the future completes once it is durable. Batches are written
    /// in the order they are queued, so a batch queued later is never durable before this
    /// one: a caller may queue, go on, and queue what depends on it.
    pub(crate) fn submit(
        &self,
        batch: Batch,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let (reply, done) = oneshot::channel();
        let empty = batch.is_empty();
        let failure = self.failure();
        let sent = !empty
            && failure.is_none()
            && match &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(tx) => tx.send((batch, reply)).is_ok(),
                None => false,
            };
        async move {
            if empty {
                return Ok(());
            }
            if let Some(failure) = failure {
                return Err(failure);
            }
            if !sent {
                return Err(StoreError::Closed);
            }
            match done.await {
                Ok(Written::Yes) => Ok(()),
                Ok(Written::Conflict) => Err(StoreError::Conflict),
                Ok(Written::Failed(failure)) => Err(failure.error()),
                Err(_) => Err(StoreError::Closed),
            }
        }
    }

    /// Finishes the commits under way and stops the thread.
    pub(crate) fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        self.close();
    }
}

fn run(
    store: &dyn Store,
    rx: mpsc::Receiver<(Batch, Reply)>,
    failed: &Failed,
    on_failure: &CancellationToken,
) {
    while let Ok((first, reply)) = rx.recv() {
        if let Some(failure) = failed.first.get() {
            let _ = reply.send(Written::Failed(failure.clone()));
            continue;
        }
        let mut ops = first.len();
        let mut batches = vec![first];
        let mut replies = vec![reply];
        while ops < MAX_OPS_PER_COMMIT {
            match rx.try_recv() {
                Ok((batch, reply)) => {
                    ops += batch.len();
                    batches.push(batch);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        match store.commit_all(batches) {
            Ok(applied) => {
                for (reply, applied) in replies.into_iter().zip(applied) {
                    let _ = reply.send(if applied { Written::Yes } else { Written::Conflict });
                }
            }
            Err(e) => {
                let failure = Failure::of(&e);
                tracing::error!(error = %failure.message, ops, "store commit failed; the engine stops");
                let _ = failed.first.set(failure.clone());
                failed.token.cancel();
                on_failure.cancel();
                for reply in replies {
                    let _ = reply.send(Written::Failed(failure.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Table};

    #[tokio::test]
    async fn concurrent_batches_all_land() {
        let store = Arc::new(MemoryStore::default());
        let committer = Arc::new(Committer::new(store.clone(), CancellationToken::new()));
        let mut tasks = Vec::new();
        for i in 0..100u32 {
            let c = committer.clone();
            tasks.push(tokio::spawn(async move {
                let mut b = Batch::default();
                b.put(Table::Runs, i.to_be_bytes().to_vec(), b"x".to_vec());
                c.commit(b).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let mut n = 0;
        store
            .scan(Table::Runs, b"", &mut |_, _| {
                n += 1;
                true
            })
            .unwrap();
        assert_eq!(n, 100);
        committer.close();
        let mut b = Batch::default();
        b.put(Table::Runs, b"late".to_vec(), b"x".to_vec());
        assert!(matches!(committer.commit(b).await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn a_batch_whose_expectation_fails_is_not_written_and_the_others_are() {
        let store = Arc::new(MemoryStore::default());
        let committer = Committer::new(store.clone(), CancellationToken::new());
        let mut first = Batch::default();
        first.put(Table::Firings, b"f".to_vec(), b"1".to_vec());
        first.expect(Table::Firings, b"f".to_vec(), None);
        let mut second = first.clone();
        second.ops.clear();
        second.put(Table::Firings, b"f".to_vec(), b"2".to_vec());
        second.put(Table::Runs, b"r2".to_vec(), b"x".to_vec());
        let mut third = Batch::default();
        third.put(Table::Runs, b"r3".to_vec(), b"x".to_vec());
        let (a, b, c) = tokio::join!(
            committer.submit(first),
            committer.submit(second),
            committer.submit(third)
        );
        a.unwrap();
        assert!(matches!(b, Err(StoreError::Conflict)), "{b:?}");
        c.unwrap();
        assert_eq!(store.get(Table::Firings, b"f").unwrap(), Some(b"1".to_vec()));
        assert_eq!(store.get(Table::Runs, b"r2").unwrap(), None, "nothing of it is written");
        assert!(committer.failure().is_none(), "a conflict does not stop the engine");
    }

    /// A store on a full disk: every commit fails, and counts that it was tried.
    #[derive(Default)]
    struct FullDisk(std::sync::atomic::AtomicUsize);

    impl Store for FullDisk {
        fn commit(&self, _: &Batch) -> Result<(), StoreError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Err(StoreError::Full { message: "No space left on device (os error 28)".into() })
        }
        fn get(&self, _: Table, _: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
        fn scan_from(
            &self,
            _: Table,
            _: &[u8],
            _: &[u8],
            _: &mut dyn FnMut(&[u8], &[u8]) -> bool,
        ) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn one_put() -> Batch {
        let mut b = Batch::default();
        b.put(Table::Runs, b"r".to_vec(), b"x".to_vec());
        b
    }

    #[tokio::test]
    async fn after_a_failed_commit_nothing_more_is_written_and_the_engine_is_told() {
        let store = Arc::new(FullDisk::default());
        let stop = CancellationToken::new();
        let committer = Committer::new(store.clone(), stop.clone());
        assert!(committer.failure().is_none());
        let first = committer.commit(one_put()).await.unwrap_err();
        assert!(matches!(first, StoreError::Full { .. }), "{first}");
        assert!(first.to_string().contains("disk is full"), "{first}");
        assert!(stop.is_cancelled());
        assert!(matches!(committer.failed().await, StoreError::Full { .. }));
        for _ in 0..3 {
            assert!(matches!(committer.commit(one_put()).await, Err(StoreError::Full { .. })));
        }
        assert_eq!(store.0.load(std::sync::atomic::Ordering::SeqCst), 1, "a later batch was tried");
    }
}

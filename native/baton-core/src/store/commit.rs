//! Group commit: batches sent while a flush is under way share the next flush.

use super::{Batch, Store, StoreError};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Most ops merged into one commit, to bound its memory and latency.
const MAX_OPS_PER_COMMIT: usize = 200_000;

type Reply = oneshot::Sender<Result<(), String>>;

/// Commits batches on a thread of its own. Callers await their batch's flush without
/// blocking a tokio worker, and concurrent batches are merged into one flush.
pub(crate) struct Committer {
    tx: Mutex<Option<mpsc::Sender<(Batch, Reply)>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    /// Starts the commit thread for `store`.
    pub(crate) fn new(store: Arc<dyn Store>) -> Self {
        let (tx, rx) = mpsc::channel::<(Batch, Reply)>();
        let thread = std::thread::Builder::new()
            .name("baton-commit".into())
            .spawn(move || run(store.as_ref(), rx))
            .ok();
        Committer { tx: Mutex::new(Some(tx)), thread: Mutex::new(thread) }
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
        let sent = !empty
            && match &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
                Some(tx) => tx.send((batch, reply)).is_ok(),
                None => false,
            };
        async move {
            if empty {
                return Ok(());
            }
            if !sent {
                return Err(StoreError::Closed);
            }
            match done.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(StoreError::Engine { engine: "commit", message }),
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

fn run(store: &dyn Store, rx: mpsc::Receiver<(Batch, Reply)>) {
    while let Ok((first, reply)) = rx.recv() {
        let mut merged = first;
        let mut replies = vec![reply];
        while merged.len() < MAX_OPS_PER_COMMIT {
            match rx.try_recv() {
                Ok((batch, reply)) => {
                    merged.ops.extend(batch.ops);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        let result = store.commit(&merged).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, ops = merged.len(), "store commit failed");
        }
        for reply in replies {
            let _ = reply.send(result.clone());
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
        let committer = Arc::new(Committer::new(store.clone()));
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
}

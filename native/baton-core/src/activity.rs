//! Knowing when an engine has nothing left to do but wait. Tests on a [`VirtualClock`]
//! move time only once the engine has reacted to what the last move woke (a retry
//! schedules the next timer, a finished sleep launches the next step), so that moving
//! three hours fires every timer due within them, in order.
//!
//! An engine given an [`Activity`] counts its work in motion: each of its tasks while it is
//! runnable or running, and each [`Busy`] guard that hosts hold for work done outside the
//! engine (a step's code in the JVM, a child process). A task is counted from the moment it
//! is woken, before it runs, and whoever hands work on does so before letting go of its own,
//! so the count never drops to zero between two links of a chain. Sleeping on the clock,
//! waiting for a signal or for a host that is not working is not motion.
//!
//! Without an `Activity` (the default) nothing is counted and nothing is wrapped.
//!
//! [`VirtualClock`]: crate::clock::VirtualClock

use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

/// The work in motion of an engine; see the [module](self).
#[derive(Default)]
pub struct Activity {
    in_motion: Mutex<usize>,
    idle: Condvar,
}

impl Activity {
    /// A counter with nothing in motion, shared between the engine and its host.
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Counts work until the guard is dropped.
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.add();
        Busy(self.clone())
    }

    /// Waits up to `limit` until nothing is in motion; returns whether that happened. Blocks
    /// the thread: call it from outside the engine's runtime.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut in_motion = self.lock();
        while *in_motion > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            in_motion =
                self.idle.wait_timeout(in_motion, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }

    /// `future`, counted while it is runnable or running when `activity` is given.
    pub(crate) fn track<F: Future>(activity: Option<&Arc<Self>>, future: F) -> Tracked<F> {
        match activity {
            None => Tracked::Plain { future },
            Some(activity) => {
                activity.add();
                let task = Arc::new(TaskState {
                    activity: activity.clone(),
                    state: AtomicU8::new(SCHEDULED),
                    waker: Mutex::new(None),
                });
                // Cooperative scheduling defers some wake-ups until after a poll, which would
                // let the count drop to zero while the task is about to run again.
                Tracked::Counted {
                    future: tokio::task::unconstrained(future),
                    task: TaskSlot(task),
                }
            }
        }
    }

    /// `future` counted as [`track`](Self::track) counts it, to spawn, and a future of its
    /// output, which gets it before the task lets go of its count: the task hands its output
    /// on to the task that waits for it. A `JoinHandle` would not: the runtime wakes whoever
    /// awaits it only after the task has ended, and so after its count dropped. `None` when
    /// the task ended without an output (it panicked, or was dropped).
    pub(crate) fn track_with_output<F>(
        activity: Option<&Arc<Self>>,
        future: F,
    ) -> (
        Tracked<impl Future<Output = ()> + Send + 'static>,
        impl Future<Output = Option<F::Output>> + Send + 'static,
    )
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = Self::track(activity, async move {
            // Wakes the waiting task, counting it, before this one stops counting.
            let _ = tx.send(future.await);
        });
        (task, async move { rx.await.ok() })
    }

    /// `work` driven on a task of its own, counted as in motion until it completes, whether
    /// or not the caller polls the returned future meanwhile: a foreach queues the commit of
    /// a wave, waits for its iterations, and awaits the commit only after. Without an
    /// `activity`, `work` itself.
    pub(crate) fn detached<F>(
        activity: Option<&Arc<Self>>,
        work: F,
    ) -> impl Future<Output = F::Output> + Send + 'static
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        use futures_util::future::Either;
        let Some(activity) = activity else {
            return Either::Left(work);
        };
        let busy = activity.busy();
        let (tx, rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // The send counts the task that waits for it, if one does, before this lets go.
            let _ = tx.send(work.await);
            drop(busy);
        });
        Either::Right(async move {
            match rx.await {
                Ok(out) => out,
                // Dropped unfinished: the runtime is shutting down, and the caller with it.
                Err(_) => std::future::pending().await,
            }
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        // A counter is consistent whatever panicked while holding it.
        self.in_motion.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self) {
        *self.lock() += 1;
    }

    fn remove(&self) {
        let mut in_motion = self.lock();
        *in_motion = in_motion.saturating_sub(1);
        if *in_motion == 0 {
            self.idle.notify_all();
        }
    }
}

/// Work in motion until dropped; made by [`Activity::busy`].
#[must_use = "the work counts only while the guard is held"]
pub struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.remove();
    }
}

pin_project! {
    /// A future made by [`Activity::track`].
    #[project = TrackedProj]
    pub(crate) enum Tracked<F> {
        Plain { #[pin] future: F },
        Counted { #[pin] future: tokio::task::Unconstrained<F>, task: TaskSlot },
    }
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            TrackedProj::Plain { future } => future.poll(cx),
            TrackedProj::Counted { future, task } => task.0.poll(future, cx),
        }
    }
}

/// Where a counted task is. IDLE is the only state not counted.
const IDLE: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
/// Woken while running: it runs again.
const NOTIFIED: u8 = 3;
const DONE: u8 = 4;

struct TaskState {
    activity: Arc<Activity>,
    state: AtomicU8,
    /// The runtime's waker for the task, from its last poll.
    waker: Mutex<Option<Waker>>,
}

/// Holds a counted task's state; a task dropped before its end stops counting.
pub(crate) struct TaskSlot(Arc<TaskState>);

impl Drop for TaskSlot {
    fn drop(&mut self) {
        if !matches!(self.0.state.swap(DONE, Ordering::AcqRel), IDLE | DONE) {
            self.0.activity.remove();
        }
    }
}

impl TaskState {
    fn poll<F: Future>(
        self: &Arc<Self>,
        future: Pin<&mut F>,
        cx: &mut Context<'_>,
    ) -> Poll<F::Output> {
        if self.state.swap(RUNNING, Ordering::AcqRel) == IDLE {
            // Polled without a wake-up of ours (the runtime may): counted while it runs.
            self.activity.add();
        }
        {
            let mut waker = self.waker.lock().unwrap_or_else(|e| e.into_inner());
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        let ours = Waker::from(self.clone());
        let result = future.poll(&mut Context::from_waker(&ours));
        match result {
            Poll::Ready(_) => {
                self.state.store(DONE, Ordering::Release);
                self.activity.remove();
            }
            Poll::Pending => {
                if self
                    .state
                    .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    self.activity.remove();
                } else {
                    // Woken during the poll: the runtime polls it again, and it stays counted.
                    self.state.store(SCHEDULED, Ordering::Release);
                }
            }
        }
        result
    }
}

impl Wake for TaskState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Counted before the runtime learns of the wake-up, so before the task can run.
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            let next = match state {
                IDLE => SCHEDULED,
                RUNNING => NOTIFIED,
                _ => break,
            };
            match self.state.compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    if state == IDLE {
                        self.activity.add();
                    }
                    break;
                }
                Err(now) => state = now,
            }
        }
        if let Some(waker) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            waker.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, VirtualClock};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chain_of_tasks_is_in_motion_until_it_sleeps_on_the_clock() {
        let activity = Activity::new();
        let clock = VirtualClock::starting_at(0);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let sleeper = {
            let clock = clock.clone();
            Activity::track(Some(&activity), async move {
                clock.sleep_until(1_000).await;
                let _ = tx.send(());
            })
        };
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let receiver = {
            let done = done.clone();
            Activity::track(Some(&activity), async move {
                rx.recv().await;
                // Work after the hand-off: still in motion.
                std::thread::sleep(Duration::from_millis(20));
                done.store(true, Ordering::Release);
            })
        };
        tokio::spawn(receiver);
        tokio::spawn(sleeper);
        let waiting = activity.clone();
        assert!(tokio::task::spawn_blocking(move || waiting.wait_idle(Duration::from_secs(5)))
            .await
            .unwrap());
        assert_eq!(clock.next_deadline(), Some(1_000));
        clock.advance_to_next();
        assert!(!activity.wait_idle(Duration::ZERO), "the woken sleeper counts before it runs");
        let waiting = activity.clone();
        assert!(tokio::task::spawn_blocking(move || waiting.wait_idle(Duration::from_secs(5)))
            .await
            .unwrap());
        assert!(done.load(Ordering::Acquire), "idle only once the receiver is done");
    }

    #[tokio::test]
    async fn detached_work_counts_until_it_completes_though_nobody_polls_it() {
        let activity = Activity::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<u8>();
        let work = Activity::detached(Some(&activity), async move { rx.await.unwrap() });
        assert!(!activity.wait_idle(Duration::ZERO), "in motion until it completes");
        tx.send(7).unwrap();
        let waiting = activity.clone();
        assert!(tokio::task::spawn_blocking(move || waiting.wait_idle(Duration::from_secs(5)))
            .await
            .unwrap());
        assert_eq!(work.await, 7, "polled only now");
    }

    #[tokio::test]
    async fn a_task_hands_its_output_on_before_it_stops_counting() {
        let activity = Activity::new();
        let (gate, opened) = tokio::sync::oneshot::channel::<()>();
        let (child, output) = Activity::track_with_output(Some(&activity), async move {
            opened.await.unwrap();
            7
        });
        let handle = tokio::spawn(child);
        let parent = {
            let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let flag = done.clone();
            let task = tokio::spawn(Activity::track(Some(&activity), async move {
                assert_eq!(output.await, Some(7));
                flag.store(true, Ordering::Release);
            }));
            (task, done)
        };
        let waiting = activity.clone();
        assert!(tokio::task::spawn_blocking(move || waiting.wait_idle(Duration::from_secs(5)))
            .await
            .unwrap());
        gate.send(()).unwrap();
        let waiting = activity.clone();
        assert!(tokio::task::spawn_blocking(move || waiting.wait_idle(Duration::from_secs(5)))
            .await
            .unwrap());
        assert!(parent.1.load(Ordering::Acquire), "idle only once the parent has the output");
        handle.await.unwrap();
        parent.0.await.unwrap();
    }

    #[test]
    fn busy_guards_count_until_dropped() {
        let activity = Activity::new();
        let busy = activity.busy();
        assert!(!activity.wait_idle(Duration::from_millis(1)));
        drop(busy);
        assert!(activity.wait_idle(Duration::from_millis(1)));
        let _plain = Activity::track(None, async {});
        assert!(activity.wait_idle(Duration::ZERO));
    }
}

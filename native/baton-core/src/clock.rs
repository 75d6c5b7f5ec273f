//! Time, behind a trait: every sleep, retry delay and timeout of the engine goes through a
//! [`Clock`], so tests drive a [`VirtualClock`] and never wait for real time.
//!
//! Times are milliseconds since the Unix epoch: they are stored, and must mean the same
//! after a restart.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// A future that completes at a deadline.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A source of time.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the epoch.
    fn now_ms(&self) -> u64;
    /// Completes once `now_ms() >= deadline_ms`.
    fn sleep_until(&self, deadline_ms: u64) -> Sleep;
    /// [`sleep_until`](Clock::sleep_until) for housekeeping (retention): on a virtual clock
    /// it completes once time has passed `deadline_ms`, but time never jumps to it, so a
    /// test that moves time "to the next timer" does not wait for housekeeping.
    fn sleep_until_passed(&self, deadline_ms: u64) -> Sleep {
        self.sleep_until(deadline_ms)
    }
}

/// The wall clock, with tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        match deadline_ms.saturating_sub(self.now_ms()) {
            // A tokio timer would wait for its next tick, up to a millisecond.
            0 => Box::pin(std::future::ready(())),
            wait => Box::pin(tokio::time::sleep(Duration::from_millis(wait))),
        }
    }
}

/// A clock that moves only when told to. Timers fire, in deadline order, as
/// [`advance`](VirtualClock::advance) passes their deadlines.
#[derive(Clone, Default)]
pub struct VirtualClock {
    inner: Arc<Mutex<Timers>>,
}

#[derive(Default)]
struct Timers {
    now_ms: u64,
    next_id: u64,
    /// (deadline, id) -> the sleeper to wake, and whether it is housekeeping
    /// ([`Clock::sleep_until_passed`]), which time does not jump to.
    waiting: BTreeMap<(u64, u64), (oneshot::Sender<()>, bool)>,
}

impl VirtualClock {
    /// A clock that reads `start_ms`.
    pub fn starting_at(start_ms: u64) -> Self {
        let clock = VirtualClock::default();
        clock.lock().now_ms = start_ms;
        clock
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timers> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves time forward by `by`, waking every sleeper whose deadline is passed.
    pub fn advance(&self, by: Duration) {
        let mut timers = self.lock();
        timers.now_ms += by.as_millis() as u64;
        let now = timers.now_ms;
        let later = timers.waiting.split_off(&(now + 1, 0));
        let due = std::mem::replace(&mut timers.waiting, later);
        drop(timers);
        for (_, (waker, _)) in due {
            let _ = waker.send(());
        }
    }

    /// The earliest deadline anyone is sleeping until.
    pub fn next_deadline(&self) -> Option<u64> {
        let mut timers = self.lock();
        // Sleepers that were dropped (a step finished before its timeout) do not count.
        timers.waiting.retain(|_, (w, _)| !w.is_closed());
        timers.waiting.iter().find(|(_, (_, passed))| !passed).map(|((deadline, _), _)| *deadline)
    }

    /// Jumps to the earliest deadline, if any; returns whether a timer fired.
    pub fn advance_to_next(&self) -> bool {
        match self.next_deadline() {
            Some(deadline) => {
                let now = self.now_ms();
                self.advance(Duration::from_millis(deadline.saturating_sub(now)));
                true
            }
            None => false,
        }
    }
}

impl Clock for VirtualClock {
    fn now_ms(&self) -> u64 {
        self.lock().now_ms
    }

    fn sleep_until(&self, deadline_ms: u64) -> Sleep {
        self.sleep(deadline_ms, false)
    }

    fn sleep_until_passed(&self, deadline_ms: u64) -> Sleep {
        self.sleep(deadline_ms, true)
    }
}

impl VirtualClock {
    fn sleep(&self, deadline_ms: u64, housekeeping: bool) -> Sleep {
        let mut timers = self.lock();
        if deadline_ms <= timers.now_ms {
            return Box::pin(std::future::ready(()));
        }
        let (tx, rx) = oneshot::channel();
        let id = timers.next_id;
        timers.next_id += 1;
        timers.waiting.insert((deadline_ms, id), (tx, housekeeping));
        Box::pin(async move {
            // A dropped clock never wakes its sleepers.
            if rx.await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_timers_fire_in_order_when_time_passes() {
        let clock = VirtualClock::starting_at(1_000);
        let late = tokio::spawn(clock.sleep_until(5_000));
        let early = tokio::spawn(clock.sleep_until(2_000));
        tokio::task::yield_now().await;
        assert_eq!(clock.next_deadline(), Some(2_000));
        clock.advance(Duration::from_millis(1_500));
        early.await.unwrap();
        assert!(!late.is_finished());
        assert!(clock.advance_to_next());
        late.await.unwrap();
        assert_eq!(clock.now_ms(), 5_000);
        assert!(!clock.advance_to_next());
    }

    #[tokio::test]
    async fn time_passes_housekeeping_timers_but_does_not_jump_to_them() {
        let clock = VirtualClock::starting_at(0);
        let chore = tokio::spawn(clock.sleep_until_passed(1_000));
        let timer = tokio::spawn(clock.sleep_until(5_000));
        tokio::task::yield_now().await;
        assert_eq!(clock.next_deadline(), Some(5_000), "the chore is no timer to jump to");
        assert!(clock.advance_to_next());
        chore.await.unwrap();
        timer.await.unwrap();
        assert!(!clock.advance_to_next());
    }

    #[tokio::test]
    async fn past_deadlines_are_ready_at_once() {
        let clock = VirtualClock::starting_at(10);
        clock.sleep_until(5).await;
    }
}

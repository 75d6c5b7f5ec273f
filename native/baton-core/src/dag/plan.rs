//! The compiled form of a step: what the engine needs of it beyond its definition, parsed
//! once at validation. A run parses no duration, retry policy or template of a step, and
//! never falls back to a default for a field it could not read: validation refused it.

use crate::expr::{Template, ValueTemplate};
use crate::model::Backoff;
use std::sync::LazyLock;
use std::time::Duration;

/// The parsed fields of one step. Most steps of a huge workflow set none of them, so the
/// plan of such a step is not allocated ([`StepPlan::empty`] stands for it).
#[derive(Debug, Default)]
pub(crate) struct StepPlan {
    /// Limit on one attempt.
    pub(crate) timeout: Option<Duration>,
    /// How long a `sleep` step sleeps.
    pub(crate) duration: Option<Duration>,
    pub(crate) retry: Option<RetryPolicy>,
    /// The `when` condition.
    pub(crate) when: Option<Template>,
    /// A `shell` step's command.
    pub(crate) command: Option<Template>,
    /// A `shell` step's environment, in definition order.
    pub(crate) env: Vec<(String, Template)>,
    /// The list a `foreach` step iterates over.
    pub(crate) over: Option<Template>,
    /// What keeps a `while` step going.
    pub(crate) condition: Option<Template>,
    /// Which signals a `wait_signal` step accepts.
    pub(crate) signal_match: Option<Template>,
    /// The step's `params`, in definition order.
    pub(crate) params: Vec<(String, ValueTemplate)>,
    /// The `params` whose values use a secret: a subworkflow's child keeps them secret.
    pub(crate) secret_params: Vec<String>,
    /// The params of each of `emit_signals`, in order.
    pub(crate) emit_params: Vec<Vec<(String, ValueTemplate)>>,
    /// An `http` step's request and what it reads of the response.
    pub(crate) http: Option<Box<crate::steps::http::HttpPlan>>,
    /// How long a success of the step serves later attempts, and the key it is kept by.
    pub(crate) cache: Option<Box<CachePlan>>,
}

/// A step's `cache`, parsed.
#[derive(Debug)]
pub(crate) struct CachePlan {
    /// How long an entry serves.
    pub(crate) ttl: Duration,
    /// The user's key, `${...}`; none: the step's rendered fields and inputs.
    pub(crate) key: Option<Template>,
}

impl StepPlan {
    /// The plan of a step that sets none of the planned fields.
    pub(crate) fn empty() -> &'static StepPlan {
        static EMPTY: LazyLock<StepPlan> = LazyLock::new(StepPlan::default);
        &EMPTY
    }

    /// Attempts in all, the first included.
    pub(crate) fn max_attempts(&self) -> u32 {
        self.retry.map_or(1, |r| r.max_attempts)
    }
}

/// How a failed attempt is retried, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub(crate) max_attempts: u32,
    pub(crate) backoff: Backoff,
    /// Delay before the second attempt.
    pub(crate) delay: Duration,
    /// Upper bound on any delay.
    pub(crate) max_delay: Duration,
    /// The exit codes (1-255) that fail a command for good, one bit each.
    pub(crate) final_exit_codes: [u64; 4],
    /// Whether a timed-out attempt is retried.
    pub(crate) on_timeout: bool,
}

impl RetryPolicy {
    /// The bound on delays when the definition sets none.
    pub(crate) const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(86_400);

    /// The bits of `codes` (each 1-255) for [`final_exit_codes`](Self::final_exit_codes).
    pub(crate) fn code_bits(codes: &[i32]) -> [u64; 4] {
        let mut bits = [0u64; 4];
        for &c in codes.iter().filter(|c| (1..=255).contains(*c)) {
            bits[c as usize / 64] |= 1 << (c as usize % 64);
        }
        bits
    }

    /// Whether exit code `code` fails the step for good.
    pub(crate) fn is_final_exit(&self, code: i32) -> bool {
        (1..=255).contains(&code)
            && self.final_exit_codes[code as usize / 64] & (1 << (code as usize % 64)) != 0
    }

    /// The delay before attempt `attempt + 1`.
    pub(crate) fn delay_after(&self, attempt: u32) -> Duration {
        let delay = match self.backoff {
            Backoff::Fixed => self.delay,
            Backoff::Linear => self.delay.saturating_mul(attempt),
            Backoff::Exponential => {
                self.delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            }
        };
        delay.min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let mut policy = RetryPolicy {
            max_attempts: 10,
            backoff: Backoff::Exponential,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            final_exit_codes: RetryPolicy::code_bits(&[2, 64, 255]),
            on_timeout: false,
        };
        assert!(policy.is_final_exit(2) && policy.is_final_exit(64) && policy.is_final_exit(255));
        assert!(!policy.is_final_exit(1) && !policy.is_final_exit(0) && !policy.is_final_exit(256));
        let delays: Vec<u64> = (1..=5).map(|a| policy.delay_after(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 5, 5]);
        policy.backoff = Backoff::Linear;
        assert_eq!(policy.delay_after(3), Duration::from_secs(3));
        policy.backoff = Backoff::Fixed;
        assert_eq!(policy.delay_after(3), Duration::from_secs(1));
    }
}

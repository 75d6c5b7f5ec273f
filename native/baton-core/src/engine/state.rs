//! Run and step statuses, and the one place that says which transitions are legal.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunStatus {
    /// Waiting for its turn under the workflow's run strategy.
    Queued,
    /// Stored, and not started yet.
    Created,
    /// Its steps are being run.
    Running,
    /// No new step starts until it is resumed; the steps running go on to their end.
    Paused,
    /// Over, with no step failed (a failure under `ignore_failure` does not count).
    Succeeded,
    /// Over, with a step failed after its retries, or the run timed out.
    Failed,
    /// Stopped by an operator, its parent step or its run strategy (`last_only`): running
    /// steps were asked to stop, the others skipped.
    Stopped,
    /// Ended at once, its steps killed without cleanup.
    Killed,
}

/// Where a step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    /// Its upstream steps are not over yet.
    Pending,
    /// Free to run, waiting for a slot (the run's `max_parallel`, a tag's limit).
    Ready,
    /// An attempt is running.
    Running,
    /// Waiting for something outside the step: a signal, a breakpoint, a host (see
    /// [`StepRecord::waiting_for`](crate::engine::StepRecord::waiting_for)).
    Waiting,
    /// Its last attempt succeeded.
    Succeeded,
    /// Its last attempt failed and no retry is left.
    Failed,
    /// An attempt failed; the next one is due at
    /// [`StepRecord::retry_at_ms`](crate::engine::StepRecord::retry_at_ms).
    Retrying,
    /// Did not run (its `trigger` or `when` said no, or its run ended first), or was
    /// skipped by an operator.
    Skipped,
    /// Stopped before it ended, because its run was stopping (asked to, timed out, or
    /// failing under `fail_immediately`).
    Stopped,
    /// Killed with its run.
    Killed,
}

/// A transition the state machine does not allow: a bug in the engine, never ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition of {what} from {from} to {to}")]
pub struct IllegalTransition {
    /// What changed: `run <id>`, or a step of a run.
    pub(crate) what: String,
    /// The status it had.
    pub(crate) from: String,
    /// The status it was asked to take.
    pub(crate) to: String,
}

impl RunStatus {
    /// Every status, in declaration order.
    pub(crate) const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Created,
        RunStatus::Running,
        RunStatus::Paused,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Stopped,
        RunStatus::Killed,
    ];

    /// Whether the run is over.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Stopped | RunStatus::Killed
        )
    }

    /// Whether `self -> to` is legal.
    pub(crate) fn can_become(self, to: RunStatus) -> bool {
        use RunStatus::*;
        match self {
            Queued => matches!(to, Created | Running | Stopped | Killed),
            Created => matches!(to, Running | Stopped | Killed | Failed),
            Running => matches!(to, Paused | Succeeded | Failed | Stopped | Killed),
            // A paused run launches nothing new, but the steps it was running still end;
            // once every step is over the run ends as it would have (see `Engine::pause`).
            Paused => matches!(to, Running | Succeeded | Failed | Stopped | Killed),
            Succeeded | Failed | Stopped | Killed => false,
        }
    }

    /// The status as written in records and shown to users (`SUCCEEDED`).
    pub(crate) fn name(self) -> &'static str {
        use RunStatus::*;
        match self {
            Queued => "QUEUED",
            Created => "CREATED",
            Running => "RUNNING",
            Paused => "PAUSED",
            Succeeded => "SUCCEEDED",
            Failed => "FAILED",
            Stopped => "STOPPED",
            Killed => "KILLED",
        }
    }
}

impl StepStatus {
    /// Every status, in declaration order.
    #[cfg(test)]
    const ALL: [StepStatus; 10] = [
        StepStatus::Pending,
        StepStatus::Ready,
        StepStatus::Running,
        StepStatus::Waiting,
        StepStatus::Succeeded,
        StepStatus::Failed,
        StepStatus::Retrying,
        StepStatus::Skipped,
        StepStatus::Stopped,
        StepStatus::Killed,
    ];

    /// Whether the step is over.
    pub fn is_terminal(self) -> bool {
        use StepStatus::*;
        matches!(self, Succeeded | Failed | Skipped | Stopped | Killed)
    }

    /// Whether `self -> to` is legal: what the engine does on its own, plus what an
    /// operator may ask for (see [`is_reopening`](StepStatus::is_reopening)).
    pub(crate) fn can_become(self, to: StepStatus) -> bool {
        use StepStatus::*;
        let by_engine = match self {
            Pending => matches!(to, Ready | Skipped | Stopped),
            // A step that completes inside the scheduler goes from READY to SUCCEEDED; one
            // whose `when` cannot be evaluated fails before it is launched. A step with a
            // breakpoint goes from READY to WAITING instead of being launched.
            Ready => matches!(to, Running | Succeeded | Failed | Skipped | Stopped | Waiting),
            // RUNNING -> SKIPPED: an operator skipped the step; it was stopped first.
            Running => {
                matches!(to, Succeeded | Failed | Retrying | Waiting | Stopped | Killed | Skipped)
            }
            // WAITING -> READY: continued from a breakpoint; -> SKIPPED: skipped by an operator.
            Waiting => matches!(
                to,
                Ready | Running | Succeeded | Failed | Retrying | Stopped | Killed | Skipped
            ),
            // RETRYING -> SKIPPED: skipped by an operator instead of the next attempt.
            Retrying => matches!(to, Running | Stopped | Killed | Skipped),
            Succeeded | Failed | Skipped | Stopped | Killed => false,
        };
        by_engine || self.is_reopening(to)
    }

    /// The only ways out of a state that is over, and only in a run that is not finished,
    /// at an operator's request: FAILED -> SKIPPED (`skip_step`: downstream runs as if it
    /// succeeded), FAILED -> RETRYING (`retry_step`), and SKIPPED -> PENDING (the steps
    /// skipped because of a step that is retried or skipped by an operator are decided
    /// again). A finished run never changes: `restart` makes a new run.
    pub(crate) fn is_reopening(self, to: StepStatus) -> bool {
        use StepStatus::*;
        matches!((self, to), (Failed, Skipped) | (Failed, Retrying) | (Skipped, Pending))
    }

    /// The status as written in records and shown to users (`SUCCEEDED`).
    pub(crate) fn name(self) -> &'static str {
        use StepStatus::*;
        match self {
            Pending => "PENDING",
            Ready => "READY",
            Running => "RUNNING",
            Waiting => "WAITING",
            Succeeded => "SUCCEEDED",
            Failed => "FAILED",
            Retrying => "RETRYING",
            Skipped => "SKIPPED",
            Stopped => "STOPPED",
            Killed => "KILLED",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for StepStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RunStatus::ALL.into_iter().find(|st| st.name().eq_ignore_ascii_case(s)).ok_or_else(|| {
            let names: Vec<&str> = RunStatus::ALL.iter().map(|s| s.name()).collect();
            format!("unknown run status `{s}`: use one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_have_no_way_out() {
        for from in StepStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in StepStatus::ALL {
                // Only an operator reopens a step that is over (in a run not finished).
                assert!(!from.can_become(to) || from.is_reopening(to), "{from} -> {to}");
            }
        }
        for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RunStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn every_non_terminal_state_can_end() {
        for from in StepStatus::ALL.into_iter().filter(|s| !s.is_terminal()) {
            assert!(
                StepStatus::ALL.iter().any(|to| to.is_terminal() && from.can_become(*to)),
                "{from}"
            );
        }
    }

    #[test]
    fn only_failed_and_skipped_steps_reopen_and_never_to_success() {
        for from in StepStatus::ALL {
            for to in StepStatus::ALL {
                if from.is_reopening(to) {
                    assert!(
                        matches!(from, StepStatus::Failed | StepStatus::Skipped),
                        "{from} -> {to}"
                    );
                    assert!(!to.is_terminal() || to == StepStatus::Skipped, "{from} -> {to}");
                }
            }
        }
        assert!(!StepStatus::Succeeded.can_become(StepStatus::Retrying));
        assert!(!StepStatus::Stopped.can_become(StepStatus::Pending));
    }

    #[test]
    fn retries_go_back_to_running() {
        assert!(StepStatus::Running.can_become(StepStatus::Retrying));
        assert!(StepStatus::Retrying.can_become(StepStatus::Running));
        assert!(!StepStatus::Pending.can_become(StepStatus::Running));
    }

    #[test]
    fn statuses_parse_case_insensitively() {
        assert_eq!("failed".parse::<RunStatus>(), Ok(RunStatus::Failed));
        assert!("nope".parse::<RunStatus>().unwrap_err().contains("SUCCEEDED"));
    }
}

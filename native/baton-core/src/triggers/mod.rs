//! What starts runs besides a host: cron schedules and signals, fired by the scheduler
//! ([`start_scheduler`]). Each firing goes through the workflow's run strategy like any
//! start, and is written with the run it starts (see the engine's firings).

mod join;
mod scheduler;

pub use scheduler::{start_scheduler, MISFIRE_GRACE_MS, MISSED_BOUND};

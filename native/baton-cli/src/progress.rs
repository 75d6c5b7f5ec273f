//! Live progress: a bar on a terminal (steps done / total, running steps, elapsed), plain
//! lines in a pipe, nothing with `--json`. In a pipe, runs of many steps print a line a
//! second and the failures, not a line per step: the listener runs on the engine's path.

use baton_core::engine::Listener;
use baton_core::{Event, StepStatus};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// In a pipe, runs of up to this many steps print a line per step.
const LINE_PER_STEP: usize = 1000;
/// Otherwise a line this often, with the failures as they come.
const LINE_EVERY: Duration = Duration::from_secs(1);

pub struct Progress {
    inner: Arc<Inner>,
}

struct Inner {
    bar: Option<ProgressBar>,
    quiet: bool,
    total: AtomicUsize,
    done: AtomicUsize,
    /// Runs counted in the total; their child runs (iterations, subworkflows) are not.
    tracked: Mutex<BTreeSet<String>>,
    /// Child runs finished.
    children_done: AtomicUsize,
    running: Mutex<BTreeSet<String>>,
    started: Instant,
    /// When the last summary line was printed (pipes, many steps).
    last_line: Mutex<Instant>,
}

impl Progress {
    /// `quiet` for machine-readable output.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed}] {bar:30} {pos}/{len} steps {prefix}{msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.enable_steady_tick(std::time::Duration::from_millis(200));
            bar
        });
        Progress {
            inner: Arc::new(Inner {
                bar,
                quiet,
                total: AtomicUsize::new(0),
                done: AtomicUsize::new(0),
                tracked: Mutex::new(BTreeSet::new()),
                children_done: AtomicUsize::new(0),
                running: Mutex::new(BTreeSet::new()),
                started: Instant::now(),
                last_line: Mutex::new(Instant::now()),
            }),
        }
    }

    /// Counts the steps of a run in the total.
    pub fn track(&self, run_id: &str, steps: usize) {
        self.inner.tracked.lock().unwrap_or_else(|e| e.into_inner()).insert(run_id.to_owned());
        let total = self.inner.total.fetch_add(steps, Ordering::Relaxed) + steps;
        if let Some(bar) = &self.inner.bar {
            bar.set_length(total as u64);
        } else if !self.inner.quiet {
            eprintln!("run {run_id}: {steps} steps");
        }
    }

    pub fn listener(&self) -> Listener {
        let inner = self.inner.clone();
        Arc::new(move |event: &Event| inner.on(event))
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.inner.bar {
            bar.finish_and_clear();
        }
    }
}

impl Inner {
    fn on(&self, event: &Event) {
        if let Event::Run { run_id, status, .. } = event {
            if status.is_terminal() && run_id.contains(':') {
                let n = self.children_done.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(bar) = &self.bar {
                    bar.set_prefix(format!("· {n} iterations/child runs done "));
                } else if !self.quiet && n.is_power_of_two() {
                    eprintln!("{n} iterations/child runs done");
                }
            }
            return;
        }
        let Event::Step { run_id, step_id, status, attempt, error, .. } = event else { return };
        let tracked = self.tracked.lock().unwrap_or_else(|e| e.into_inner()).contains(run_id);
        if !tracked {
            return;
        }
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if *status == StepStatus::Running {
            running.insert(step_id.clone());
        } else {
            running.remove(step_id);
        }
        let done = if status.is_terminal() {
            self.done.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.done.load(Ordering::Relaxed)
        };
        if let Some(bar) = &self.bar {
            bar.set_position(done as u64);
            let names: Vec<&str> = running.iter().take(5).map(String::as_str).collect();
            let more = running.len().saturating_sub(names.len());
            let mut msg = if names.is_empty() {
                String::new()
            } else {
                format!("· running: {}", names.join(", "))
            };
            if more > 0 {
                msg.push_str(&format!(" +{more}"));
            }
            bar.set_message(msg);
            if matches!(status, StepStatus::Failed | StepStatus::Retrying) {
                bar.println(line(step_id, *status, *attempt, error.as_deref()));
            }
        } else if !self.quiet && *status != StepStatus::Running {
            let total = self.total.load(Ordering::Relaxed);
            let failed = matches!(status, StepStatus::Failed | StepStatus::Retrying);
            let what = if total <= LINE_PER_STEP || failed {
                line(step_id, *status, *attempt, error.as_deref())
            } else {
                let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() < LINE_EVERY && done < total {
                    return;
                }
                *last = Instant::now();
                format!("{} running", running.len())
            };
            let elapsed = self.started.elapsed().as_secs_f64();
            // One write: stderr is unbuffered, and a formatted line is many pieces.
            let text = format!("[{done:>5}/{total}] {elapsed:>7.1}s {what}\n");
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

fn line(step: &str, status: StepStatus, attempt: u32, error: Option<&str>) -> String {
    let mut line = format!("{step} {status}");
    if attempt > 1 {
        line.push_str(&format!(" (attempt {attempt})"));
    }
    if let Some(error) = error {
        line.push_str(&format!(": {error}"));
    }
    line
}

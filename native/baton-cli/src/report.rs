//! What the commands print: run summaries, the step table of `show`, the run list.

use baton_core::engine::{
    Event, Rollup, RunDetails, RunRecord, SignalRecord, StepView, VersionInfo, WorkflowInfo,
};
use baton_core::FiringRecord;
use baton_core::StoreLocation;
use baton_core::{RunStatus, StepStatus};
use serde::Serialize;
use std::fmt::Write;
use std::time::{Duration, UNIX_EPOCH};

/// Above this many steps, `show` lists only the steps that did not succeed unless `--all`.
const SHOW_LIMIT: usize = 200;

pub fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// `baton engines`: one line per engine, live ones first.
pub fn engines(engines: &[baton_core::engine::EngineInfo]) -> String {
    if engines.is_empty() {
        return "no engine has driven runs on this store yet\n".to_owned();
    }
    let mut sorted: Vec<_> = engines.iter().collect();
    sorted.sort_by_key(|e| (!e.alive, e.id.clone()));
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut out = format!(
        "{:<24} {:<8} {:<16} {:>9} {:>5}  {}\n",
        "ENGINE", "STATE", "HOST (PID)", "HEARTBEAT", "RUNS", "CAN RUN"
    );
    for e in sorted {
        let state = match (e.alive, e.stopped) {
            (true, _) => "live",
            (false, true) => "stopped",
            (false, false) => "dead",
        };
        let ago = now.saturating_sub(e.heartbeat_ms);
        let heartbeat = format!("{}s ago", ago / 1000);
        let mut can_run = e.kinds.join(",");
        if !e.workflows.is_empty() {
            let _ = write!(can_run, "; host steps of {}", e.workflows.join(","));
        }
        if !e.claims {
            can_run.push_str(" (its own runs only)");
        }
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:<16} {:>9} {:>5}  {}",
            e.id,
            state,
            format!("{} ({})", e.host, e.pid),
            heartbeat,
            e.runs,
            can_run
        );
    }
    out
}

/// The end of `baton run`: the outcome, and where a failure is.
pub fn summary(d: &RunDetails, store: &StoreLocation) -> String {
    let run = &d.run;
    let mut out = format!(
        "run {} of `{}` {} in {} ({})\n",
        run.id,
        run.workflow_id,
        run.status,
        elapsed(run.started_ms.unwrap_or(run.created_ms), run.ended_ms),
        counts(run)
    );
    if run.status != RunStatus::Succeeded {
        if let Some(error) = &run.error {
            let _ = writeln!(out, "error: {error}");
        }
        for step in d
            .steps
            .iter()
            .filter(|s| s.record.status == StepStatus::Failed && !s.record.failure_ignored)
            .take(3)
        {
            if let Some(tail) = &step.record.log_tail {
                let _ = writeln!(
                    out,
                    "output of `{}` (last lines):\n{}",
                    step.id,
                    indent(last_lines(tail, 10))
                );
            }
        }
        let _ = writeln!(out, "inspect: baton show {} --store {}", run.id, store);
    }
    out
}

/// `baton show`.
pub fn show(d: &RunDetails, all: bool) -> String {
    let run = &d.run;
    let mut out = String::new();
    let _ = writeln!(out, "run       {}", run.id);
    match run.version {
        Some(v) => writeln!(out, "workflow  {} (version {v})", run.workflow_id),
        None => writeln!(out, "workflow  {}", run.workflow_id),
    }
    .ok();
    let _ = writeln!(out, "status    {}", run.status);
    if let Some(trigger) = &run.trigger {
        let _ = writeln!(out, "trigger   {trigger}");
    }
    if let Some(from) = &run.restarted_from {
        let _ = writeln!(out, "restarts  {from}");
    }
    if let Some(parent) = &run.parent {
        let what = match parent.iteration {
            Some(i) => format!("iteration {i} of step `{}`", parent.step_id),
            None => format!("step `{}`", parent.step_id),
        };
        let _ = writeln!(out, "parent    {} ({what})", parent.run_id);
    }
    let _ = writeln!(out, "created   {}", timestamp(run.created_ms));
    if let Some(start) = run.started_ms {
        let _ = writeln!(out, "duration  {}", elapsed(start, run.ended_ms));
    }
    if !run.params.is_empty() {
        let params: Vec<String> =
            run.params.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
        let _ = writeln!(out, "params    {}", params.join(" "));
    }
    if let Some(error) = &run.error {
        let _ = writeln!(out, "error     {error}");
    }
    let _ = writeln!(out, "steps     {}", step_counts(&d.steps));
    let hide = !all && d.steps.len() > SHOW_LIMIT;
    let shown: Vec<&StepView> =
        d.steps.iter().filter(|s| !hide || s.record.status != StepStatus::Succeeded).collect();
    let width = shown.iter().map(|s| s.id.len()).max().unwrap_or(4).max(4);
    let kinds = shown.iter().map(|s| s.kind.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        out,
        "\n{:<width$}  {:<kinds$}  {:<9}  {:>7}  {:>9}  OUTPUTS / ERROR",
        "STEP", "TYPE", "STATUS", "ATTEMPT", "DURATION"
    );
    for s in &shown {
        let r = &s.record;
        let duration = match (r.started_ms, r.ended_ms) {
            (Some(a), Some(b)) => human(Duration::from_millis(b.saturating_sub(a))),
            (Some(a), None) if r.status == StepStatus::Running => format!("{}+", elapsed(a, None)),
            _ => "-".into(),
        };
        let mut detail = match &r.error {
            Some(e) if r.failure_ignored => format!("(ignored) {e}"),
            Some(e) => e.clone(),
            None => r
                .outputs
                .iter()
                .map(|(k, v)| format!("{k}={}", plain(v)))
                .collect::<Vec<_>>()
                .join(" "),
        };
        if let Some(from) = &r.cached_from {
            let sep = if detail.is_empty() { "" } else { "; " };
            detail =
                format!("(cached from run {}, step {}){sep}{detail}", from.run_id, from.step_id);
        }
        if let Some(child) = &s.child_run {
            detail =
                format!("child run {child}{}{detail}", if detail.is_empty() { "" } else { "; " });
        }
        // A loop that is over sums its iterations up in its outputs or its error.
        if let (Some(rollup), false) = (&s.rollup, r.status.is_terminal()) {
            detail = format!(
                "{}{}{detail}",
                iterations(rollup),
                if detail.is_empty() { "" } else { "; " }
            );
        }
        let _ = writeln!(
            out,
            "{:<width$}  {:<kinds$}  {:<9}  {:>7}  {:>9}  {}",
            s.id,
            s.kind,
            r.status.to_string(),
            r.attempt,
            duration,
            detail
        );
    }
    if hide {
        let _ = writeln!(
            out,
            "({} succeeded steps not listed; --all lists them)",
            d.steps.len() - shown.len()
        );
    }
    for s in &shown {
        let Some(rollup) = &s.rollup else { continue };
        if rollup.failures.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n`{}`: {}; first failed iterations (baton show RUN shows one):",
            s.id,
            iterations(rollup)
        );
        for f in &rollup.failures {
            let _ = writeln!(out, "  {:>8}  {}  {}", f.iteration, f.run_id, f.error);
        }
    }
    for s in shown.iter().filter(|s| {
        matches!(s.record.status, StepStatus::Failed | StepStatus::Retrying | StepStatus::Stopped)
    }) {
        if let Some(tail) = &s.record.log_tail {
            let _ = writeln!(
                out,
                "\noutput of `{}` (attempt {}, last lines):\n{}",
                s.id,
                s.record.attempt,
                indent(last_lines(tail, 20))
            );
        }
    }
    out
}

/// `baton runs`.
pub fn runs(runs: &[RunRecord]) -> String {
    if runs.is_empty() {
        return "no runs\n".into();
    }
    let width = runs.iter().map(|r| r.workflow_id.len()).max().unwrap_or(8).max(8);
    let ids = runs.iter().map(|r| r.id.len()).max().unwrap_or(26).max(26);
    let mut out = format!(
        "{:<ids$}  {:<width$}  {:<9}  {:<20}  {:>9}  STEPS\n",
        "RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION"
    );
    for r in runs {
        let duration = r.started_ms.map(|s| elapsed(s, r.ended_ms)).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "{:<ids$}  {:<width$}  {:<9}  {:<20}  {:>9}  {}",
            r.id,
            r.workflow_id,
            r.status.to_string(),
            timestamp(r.created_ms),
            duration,
            if r.counts.is_empty() { r.step_count.to_string() } else { counts(r) }
        );
    }
    out
}

/// `1000000 iterations: 999998 succeeded, 2 failed, 64 running`.
fn iterations(rollup: &Rollup) -> String {
    let mut parts: Vec<String> = rollup
        .counts
        .iter()
        .map(|(s, n)| format!("{n} {}", s.to_string().to_lowercase()))
        .collect();
    if !rollup.running.is_empty() {
        parts.push(format!("{} running", rollup.running.len()));
    }
    let total = rollup.total.map(|t| t.to_string()).unwrap_or_else(|| rollup.started.to_string());
    if parts.is_empty() {
        format!("{total} iterations")
    } else {
        format!("{total} iterations: {}", parts.join(", "))
    }
}

/// `baton signals`.
pub fn signals(signals: &[SignalRecord]) -> String {
    if signals.is_empty() {
        return "no signals\n".into();
    }
    let width = signals.iter().map(|s| s.name.len()).max().unwrap_or(6).max(6);
    let mut out = format!("{:<26}  {:<width$}  {:<20}  PARAMS\n", "ID", "SIGNAL", "SENT");
    for s in signals {
        let params: Vec<String> =
            s.params.iter().map(|(k, v)| format!("{k}={}", plain(v))).collect();
        let from = s.source.as_deref().map(|f| format!("  (from {f})")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<26}  {:<width$}  {:<20}  {}{from}",
            s.id,
            s.name,
            timestamp(s.sent_ms),
            params.join(" ")
        );
    }
    out
}

fn counts(run: &RunRecord) -> String {
    let listed =
        if run.counts.is_empty() { "none finished".into() } else { per_status(&run.counts) };
    format!("{} steps: {listed}", run.step_count)
}

fn step_counts(steps: &[StepView]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for s in steps {
        *counts.entry(s.record.status).or_insert(0usize) += 1;
    }
    format!("{} ({})", steps.len(), per_status(&counts))
}

/// `3 succeeded, 1 failed`.
fn per_status(counts: &std::collections::BTreeMap<StepStatus, usize>) -> String {
    let parts: Vec<String> =
        counts.iter().map(|(s, n)| format!("{n} {}", s.to_string().to_lowercase())).collect();
    parts.join(", ")
}

fn plain(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn timestamp(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn elapsed(start_ms: u64, end_ms: Option<u64>) -> String {
    let end = end_ms.unwrap_or_else(|| baton_core::clock::Clock::now_ms(&baton_core::SystemClock));
    human(Duration::from_millis(end.saturating_sub(start_ms)))
}

fn human(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    match ms {
        0..=999 => format!("{ms}ms"),
        1_000..=59_999 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

fn last_lines(text: &str, n: usize) -> &str {
    let mut start = text.len();
    for _ in 0..n {
        match text[..start].rfind('\n') {
            Some(i) => start = i,
            None => return text,
        }
    }
    &text[start + 1..]
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  | {l}\n")).collect::<String>().trim_end().to_string()
}

/// `baton insights WORKFLOW`: each step's figures, then the expected run.
pub fn insights(i: &baton_core::insights::WorkflowInsights) -> String {
    let width = i.steps.iter().map(|s| s.step.len()).max().unwrap_or(4).max(4);
    let mut out = format!(
        "{:<width$}  {:>5}  {:>8}  {:>8}  {:>8}  {:>7}  {:>7}  TREND\n",
        "STEP", "RUNS", "P50", "P90", "P99", "SUCCESS", "RETRIED"
    );
    let ms = |v: Option<u64>| v.map_or("-".to_owned(), |ms| human(Duration::from_millis(ms)));
    let rate = |v: Option<f64>| v.map_or("-".to_owned(), |r| format!("{:.0}%", r * 100.0));
    for s in &i.steps {
        let trend = serde_json::to_value(s.trend).map(|v| plain(&v)).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<width$}  {:>5}  {:>8}  {:>8}  {:>8}  {:>7}  {:>7}  {trend}",
            s.step,
            s.ended,
            ms(s.p50_ms),
            ms(s.p90_ms),
            ms(s.p99_ms),
            rate(s.success_rate),
            rate(s.retry_rate),
        );
    }
    match i.expected_ms {
        Some(expected) => {
            let _ = writeln!(
                out,
                "\nexpected run: {} (medians along {})",
                human(Duration::from_millis(expected)),
                i.critical_path.join(" -> ")
            );
        }
        None => {
            let _ = writeln!(
                out,
                "\nno forecast yet: each step needs {} ends first",
                baton_core::insights::MIN_RUNS
            );
        }
    }
    out
}

/// `baton diagnose RUN`.
pub fn diagnosis(d: &baton_core::insights::Diagnosis) -> String {
    let mut out = format!("{}\n", d.summary);
    let Some(cause) = &d.root_cause else { return out };
    let _ = writeln!(
        out,
        "\nroot cause   {} (run {}, workflow {})",
        cause.path.join(" > "),
        cause.run_id,
        cause.workflow_id
    );
    let _ = writeln!(out, "error        {}", cause.error);
    let _ = writeln!(out, "signature    {}", cause.signature);
    if let Some(tail) = cause.log_tail.as_deref().filter(|t| !t.trim().is_empty()) {
        let _ = writeln!(out, "output\n{}", indent(last_lines(tail, 10)));
    }
    if d.skipped > 0 {
        let _ = writeln!(out, "took down    {} step(s) below it", d.skipped);
    }
    if !d.other_failures.is_empty() {
        let _ = writeln!(out, "also failed  {}", d.other_failures.join(", "));
    }
    for s in &d.similar {
        let when = s.last_ms.map(|ms| format!(", last {}", timestamp(ms))).unwrap_or_default();
        let _ = writeln!(
            out,
            "seen before  {} time(s) in {} / {}{when}",
            s.times, s.workflow_id, s.step
        );
    }
    for r in &d.resolved_before {
        let _ = writeln!(out, "mended by    {r}");
    }
    for c in &d.changed {
        let _ = writeln!(out, "since        {c}");
    }
    out
}

/// The line `baton show` adds for a running run.
pub fn eta(eta: &baton_core::insights::Eta) -> String {
    let mut line = format!(
        "eta       {} (in {})",
        timestamp(eta.at_ms),
        human(Duration::from_millis(eta.remaining_ms))
    );
    if !eta.unknown.is_empty() {
        let _ = write!(line, "; without history: {}", eta.unknown.join(", "));
    }
    line.push('\n');
    line
}

pub fn workflows(list: &[WorkflowInfo]) -> String {
    if list.is_empty() {
        return "no registered workflows (`baton register FILE`)\n".into();
    }
    let width = list.iter().map(|w| w.id.len()).max().unwrap_or(8).max(8);
    let mut out = format!(
        "{:<width$}  {:>6}  {:>6}  {:<8}  {:>8}  STRATEGY\n",
        "WORKFLOW", "ACTIVE", "LATEST", "ENABLED", "TRIGGERS"
    );
    for w in list {
        let strategy = serde_json::to_value(w.run_strategy).map(|v| plain(&v)).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<width$}  {:>6}  {:>6}  {:<8}  {:>8}  {strategy}",
            w.id,
            w.active_version,
            w.latest_version,
            if w.enabled { "yes" } else { "no" },
            w.triggers
        );
    }
    out
}

pub fn versions(list: &[VersionInfo]) -> String {
    let mut out = format!("{:>7}  {:<20}  {:<16}  ACTIVE\n", "VERSION", "REGISTERED", "DEFINITION");
    for v in list {
        let hash: String = v.definition.chars().take(16).collect();
        let _ = writeln!(
            out,
            "{:>7}  {:<20}  {hash:<16}  {}",
            v.version,
            timestamp(v.registered_ms),
            if v.active { "*" } else { "" }
        );
    }
    out
}

pub fn firings(list: &[FiringRecord]) -> String {
    if list.is_empty() {
        return "no firings\n".into();
    }
    let mut out = format!("{:>7}  {:<20}  {:<20}  OUTCOME\n", "TRIGGER", "SCHEDULED", "FIRED");
    for f in list {
        let outcome = match (&f.run_id, &f.reason) {
            (Some(run), _) => format!("run {run}"),
            (None, Some(reason)) => format!("no run: {reason}"),
            (None, None) => "no run".into(),
        };
        let _ = writeln!(
            out,
            "{:>7}  {:<20}  {:<20}  {outcome}",
            f.trigger,
            timestamp(f.scheduled_ms),
            timestamp(f.fired_ms)
        );
    }
    out
}

/// What `baton prune` deleted (or would delete), one kind a line.
pub fn pruned(p: &baton_core::Pruned) -> String {
    let verb = if p.dry_run { "would delete" } else { "deleted" };
    let mut out = format!("{verb}:\n");
    for (count, kind) in [
        (p.runs, "runs"),
        (p.child_runs, "child runs"),
        (p.steps, "steps"),
        (p.events, "events"),
        (p.signals, "signals"),
        (p.firings, "firings"),
        (p.cache_entries, "cache entries (expired)"),
    ] {
        let _ = writeln!(out, "{count:>9}  {kind}");
    }
    out
}

/// `baton cache list`: one entry a line, the key shortened.
pub fn cache(entries: &[baton_core::CacheEntry]) -> String {
    if entries.is_empty() {
        return "no cache entries\n".into();
    }
    let workflows = entries.iter().map(|e| e.workflow_id.len()).max().unwrap_or(8).max(8);
    let steps = entries.iter().map(|e| e.step_id.len()).max().unwrap_or(4).max(4);
    let runs = entries.iter().map(|e| e.from_run.len()).max().unwrap_or(8).max(8);
    let mut out = format!(
        "{:<workflows$}  {:<steps$}  {:<12}  {:<runs$}  {:<20}  {:<20}  {:>8}\n",
        "WORKFLOW", "STEP", "KEY", "FROM RUN", "CREATED", "EXPIRES", "SIZE"
    );
    for e in entries {
        let _ = writeln!(
            out,
            "{:<workflows$}  {:<steps$}  {:<12}  {:<runs$}  {:<20}  {:<20}  {:>8}",
            e.workflow_id,
            e.step_id,
            e.key.get(..12).unwrap_or(&e.key),
            e.from_run,
            timestamp(e.created_ms),
            timestamp(e.expires_ms),
            format!("{}B", e.size)
        );
    }
    out
}

pub fn timeline(events: &[Event]) -> String {
    if events.is_empty() {
        return "no events\n".into();
    }
    let mut out = String::new();
    for event in events {
        let line = match event {
            Event::Run { status, error, at_ms, .. } => {
                format!(
                    "{}  run          {status}{}",
                    timestamp(*at_ms),
                    error.as_deref().map(|e| format!("  {e}")).unwrap_or_default()
                )
            }
            Event::Step { step_id, status, attempt, error, at_ms, .. } => format!(
                "{}  step {step_id:<8} {status} (attempt {attempt}){}",
                timestamp(*at_ms),
                error
                    .as_deref()
                    .map(|e| format!("  {}", e.lines().next().unwrap_or("")))
                    .unwrap_or_default()
            ),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(12)), "12ms");
        assert_eq!(human(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(184)), "3m04s");
        assert_eq!(human(Duration::from_secs(7260)), "2h01m");
    }

    #[test]
    fn keeps_the_last_lines() {
        assert_eq!(last_lines("a\nb\nc", 2), "b\nc");
        assert_eq!(last_lines("a", 5), "a");
    }
}

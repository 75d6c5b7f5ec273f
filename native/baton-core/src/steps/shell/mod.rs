//! `shell`: runs `command` with `sh -c`. Outputs are `key=value` lines the command appends
//! to the file named by `$BATON_OUTPUT`.

mod code;
mod group;

pub(crate) use code::render as render_command;
pub(crate) use group::end_orphans;

use super::{
    missing, FailureClass, Field, FieldProblem, Outputs, StepContext, StepFuture, StepKind,
    StepOutcome,
};
use crate::model::StepDef;
use serde_json::Value;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// How much of a command's output `baton show` keeps.
const TAIL_BYTES: usize = 4096;
/// Largest `$BATON_OUTPUT` file accepted.
const MAX_OUTPUT_FILE: u64 = 1 << 20;
/// Time between SIGTERM and SIGKILL when a command is stopped.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The `shell` step kind.
pub struct Shell;

impl StepKind for Shell {
    fn fields(&self) -> &'static [Field] {
        &[Field::Command, Field::Env]
    }

    fn works_outside(&self) -> bool {
        true
    }

    /// Values reach the command through `command` and `env`, made at launch.
    fn reads_names(&self) -> bool {
        false
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        match &step.options().command {
            None => vec![missing(Field::Command, "shell", "\"echo hello\"")],
            Some(c) if c.trim().is_empty() => vec![FieldProblem {
                field: "command".into(),
                message: "the command is empty".into(),
            }],
            Some(_) => Vec::new(),
        }
    }

    fn run(&self, ctx: StepContext) -> StepFuture {
        Box::pin(run(ctx))
    }
}

async fn run(ctx: StepContext) -> StepOutcome {
    let scratch = ctx.scratch_dir();
    let outcome = run_in(&ctx, &scratch).await;
    let _ = std::fs::remove_dir_all(&scratch);
    outcome
}

async fn run_in(ctx: &StepContext, scratch: &Path) -> StepOutcome {
    let output_file = scratch.join("output");
    // A relaunched attempt starts from an empty output file.
    // Owner-only: a step's outputs may be secrets.
    if let Err(e) =
        crate::store::private_dir(scratch).and_then(|()| std::fs::write(&output_file, b""))
    {
        return StepOutcome::failure(format!("cannot create {}: {e}", output_file.display()));
    }
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(ctx.command.as_deref().unwrap_or_default())
        .envs(&ctx.env)
        .env("BATON_OUTPUT", &output_file)
        .env("BATON_IDEMPOTENCY_KEY", &ctx.idempotency_key)
        .env("BATON_RUN_ID", &ctx.run_id)
        .env("BATON_ENGINE_ID", &ctx.engine_id)
        .env("BATON_WORKFLOW_ID", &ctx.workflow_id)
        .env("BATON_STEP_ID", &ctx.step_id)
        .env("BATON_ATTEMPT", ctx.attempt.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (mut child, mut group) = match group::spawn(command, scratch) {
        Ok(started) => started,
        Err(e) => return StepOutcome::failure(format!("cannot start `sh`: {e}")),
    };
    let tail = Arc::new(Mutex::new(Tail::default()));
    let readers = [
        child.stdout.take().map(|out| tokio::spawn(collect(out, tail.clone()))),
        child.stderr.take().map(|err| tokio::spawn(collect(err, tail.clone()))),
    ];
    let status = tokio::select! {
        status = child.wait() => status,
        _ = ctx.cancel.cancelled() => {
            stop(&mut child, &group, &ctx.kill).await;
            group.ended();
            let how = if ctx.kill.is_cancelled() { "killed" } else { "stopped" };
            return StepOutcome { log_tail: take_tail(&tail), ..StepOutcome::failure(how) };
        }
    };
    group.ended();
    for reader in readers.into_iter().flatten() {
        // The readers end when the pipes close; a background grandchild holding them
        // open must not hold the step.
        let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
    }
    let log_tail = take_tail(&tail);
    let mut class = FailureClass::Retryable;
    let result = match status {
        Err(e) => Err(format!("waiting for the command failed: {e}")),
        Ok(status) if !status.success() => {
            class = status.code().map_or(FailureClass::Retryable, FailureClass::Exit);
            Err(describe_exit(status))
        }
        Ok(_) => read_outputs(&output_file),
    };
    StepOutcome { result, log_tail, class }
}

/// SIGTERM to the command's process group, then SIGKILL to whatever is left of it after a
/// grace period, or at once when `kill` fires (before or during the grace period).
async fn stop(
    child: &mut tokio::process::Child,
    group: &group::Group,
    kill: &tokio_util::sync::CancellationToken,
) {
    if !kill.is_cancelled() {
        group.signal(libc::SIGTERM);
        tokio::select! {
            _ = tokio::time::timeout(STOP_GRACE, child.wait()) => {}
            _ = kill.cancelled() => {}
        }
    }
    // The shell may be gone, but not what it started and what ignored SIGTERM.
    group.signal(libc::SIGKILL);
    let _ = child.wait().await;
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("command exited with code {code}"),
        (None, Some(signal)) => format!("command was killed by signal {signal}"),
        _ => format!("command failed: {status}"),
    }
}

/// Reads the `$BATON_OUTPUT` file, if it is not too large.
fn read_outputs(path: &std::path::Path) -> Result<Outputs, String> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > MAX_OUTPUT_FILE {
        return Err(format!(
            "$BATON_OUTPUT holds {size} bytes; outputs are limited to {MAX_OUTPUT_FILE} bytes"
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read $BATON_OUTPUT: {e}"))?;
    parse_outputs(&text)
}

/// Parses `key=value` lines; values that read as JSON numbers, booleans, lists or maps keep
/// that type (`parts=[1,2]`), anything else is a string.
pub(crate) fn parse_outputs(text: &str) -> Result<Outputs, String> {
    let mut outputs = Outputs::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(format!("line {} of $BATON_OUTPUT is not `key=value`: {line}", n + 1));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "line {} of $BATON_OUTPUT: `{key}` is not a valid output name",
                n + 1
            ));
        }
        let value = match serde_json::from_str::<Value>(value) {
            Ok(v @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => v,
            _ => Value::String(value.to_owned()),
        };
        outputs.insert(key.to_owned(), value);
    }
    Ok(outputs)
}

/// The last [`TAIL_BYTES`] of a command's output.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > 2 * TAIL_BYTES {
            self.0.drain(..self.0.len() - TAIL_BYTES);
        }
    }
}

async fn collect(mut pipe: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 8192];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if let Ok(mut t) = tail.lock() {
            t.push(&buf[..n]);
        }
    }
}

fn take_tail(tail: &Mutex<Tail>) -> Option<String> {
    let t = tail.lock().ok()?;
    let bytes = &t.0[t.0.len().saturating_sub(TAIL_BYTES)..];
    let text = String::from_utf8_lossy(bytes).trim_end().to_string();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keep_numbers_and_booleans() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        std::fs::write(&file, "rows=42\nname=events\nok=true\n# comment\n\nratio=0.5\nparts=[1, 2]\nmeta={\"a\": 1}\nodd=[not json\n").unwrap();
        let out = read_outputs(&file).unwrap();
        assert_eq!(out["rows"], serde_json::json!(42));
        assert_eq!(out["name"], serde_json::json!("events"));
        assert_eq!(out["ok"], serde_json::json!(true));
        assert_eq!(out["ratio"], serde_json::json!(0.5));
        assert_eq!(out["parts"], serde_json::json!([1, 2]));
        assert_eq!(out["meta"], serde_json::json!({"a": 1}));
        assert_eq!(out["odd"], serde_json::json!("[not json"));
    }

    #[test]
    fn bad_output_lines_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out");
        std::fs::write(&file, "rows=1\nnot a pair\n").unwrap();
        assert!(read_outputs(&file).unwrap_err().contains("line 2"));
    }

    #[test]
    fn tail_keeps_the_end() {
        let mut t = Tail::default();
        for _ in 0..10_000 {
            t.push(b"0123456789");
        }
        assert!(t.0.len() <= 2 * TAIL_BYTES);
    }
}

//! End-to-end tests of the `baton` binary: each test runs the real executable on workflow
//! files written to a temporary directory, with a store of its own, and checks exit codes,
//! what is printed and what is stored.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// A scratch directory with a store in it.
struct Env {
    dir: TempDir,
}

/// What a command did.
struct Done {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Done {
    fn from(output: Output) -> Done {
        Done {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Both streams, for assertion messages and for text that may go to either.
    fn all(&self) -> String {
        format!("--- stdout ---\n{}--- stderr ---\n{}", self.stdout, self.stderr)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.all()))
    }

    #[track_caller]
    fn expect(self, code: i32) -> Done {
        assert_eq!(self.code, code, "expected exit code {code}, got {}\n{}", self.code, self.all());
        self
    }
}

impl Env {
    fn new() -> Env {
        Env { dir: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn store(&self) -> PathBuf {
        self.path().join("store")
    }

    /// Writes a file in the scratch directory; returns its name (commands run there).
    fn file(&self, name: &str, text: &str) -> String {
        std::fs::write(self.path().join(name), text).expect("write workflow");
        name.to_owned()
    }

    /// `baton` in the scratch directory, with nothing inherited that could change it.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BATON);
        cmd.current_dir(self.path()).env_remove("BATON_HOME").env_remove("BATON_LOG").args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs `baton ARGS` (no store given).
    fn raw(&self, args: &[&str]) -> Done {
        Done::from(self.command(args).output().expect("start baton"))
    }

    /// Runs `baton --store STORE ARGS`.
    fn baton(&self, args: &[&str]) -> Done {
        self.baton_in(&self.store(), args)
    }

    fn baton_in(&self, store: &Path, args: &[&str]) -> Done {
        let store = store.to_str().expect("utf-8 path");
        let mut all = vec!["--store", store];
        all.extend_from_slice(args);
        self.raw(&all)
    }
}

fn statuses(details: &Value) -> Vec<(String, String)> {
    details["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s["status"].as_str().unwrap().to_owned()))
        .collect()
}

fn step<'a>(details: &'a Value, id: &str) -> &'a Value {
    details["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step `{id}` in {details:#}"))
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// The run ids `runs --json` lists.
fn run_ids(env: &Env, args: &[&str]) -> Vec<String> {
    let mut all = vec!["runs", "--json"];
    all.extend_from_slice(args);
    let runs = env.baton(&all).expect(0).json();
    runs.as_array().expect("a list").iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect()
}

const GOOD: &str = r#"
id: etl
params:
  date: "2026-01-01"
  limit: 10
max_parallel: 4
steps:
  - id: extract
    type: shell
    command: |
      echo "extracting ${limit} rows for ${date}"
      echo rows=42 >> "$BATON_OUTPUT"
      echo day=${date} >> "$BATON_OUTPUT"
  - id: wait
    type: sleep
    duration: 50ms
    depends_on: [extract]
  - id: report
    type: shell
    command: |
      echo "got=${extract.rows}" >> "$BATON_OUTPUT"
      echo "twice=$(( ${extract.rows} * 2 ))" >> "$BATON_OUTPUT"
    depends_on: [wait]
  - id: done
    type: noop
    depends_on: [report]
"#;

/// The same workflow as [`GOOD`], as JSON.
const GOOD_JSON: &str = r#"{
  "id": "etl",
  "params": { "date": "2026-01-01", "limit": 10 },
  "max_parallel": 4,
  "steps": [
    { "id": "extract", "type": "shell",
      "command": "echo \"extracting ${limit} rows for ${date}\"\necho rows=42 >> \"$BATON_OUTPUT\"\necho day=${date} >> \"$BATON_OUTPUT\"\n" },
    { "id": "wait", "type": "sleep", "duration": "50ms", "depends_on": ["extract"] },
    { "id": "report", "type": "shell",
      "command": "echo \"got=${extract.rows}\" >> \"$BATON_OUTPUT\"\necho \"twice=$(( ${extract.rows} * 2 ))\" >> \"$BATON_OUTPUT\"\n",
      "depends_on": ["wait"] },
    { "id": "done", "type": "noop", "depends_on": ["report"] }
  ]
}"#;

const FAILING: &str = r#"
id: failing
steps:
  - id: ok
    type: shell
    command: echo rows=5 >> "$BATON_OUTPUT"
  - id: boom
    type: shell
    command: |
      echo "reading ${ok.rows} rows"
      echo "disk on fire" >&2
      exit 7
    depends_on: [ok]
  - id: after
    type: noop
    depends_on: [boom]
"#;

const SLEEPY: &str = r#"
id: sleepy
steps:
  - id: nap
    type: sleep
    duration: 1s
  - id: after
    type: shell
    command: echo woke=yes >> "$BATON_OUTPUT"
    depends_on: [nap]
"#;

// ---------------------------------------------------------------------------------------
// validate

#[test]
fn validate_accepts_a_good_file() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let done = env.raw(&["validate", &file]).expect(0);
    assert!(done.stdout.contains("workflow `etl` is valid (4 steps)"), "{}", done.all());

    let json = env.raw(&["validate", &file, "--json"]).expect(0).json();
    assert_eq!(json["valid"], true);
    assert_eq!(json["workflow"], "etl");
    assert_eq!(json["steps"], 4);
}

const BAD: &str = r#"id: bad
params:
  date: "x"
steps:
  - id: a
    type: shell
    command: echo a
  - id: a
    type: shell
    command: echo again
  - id: b
    type: sleep
    duration: 5 parsecs
    depends_on: [a, extrct]
  - id: c
    type: shel
    command: echo c
  - id: d
    type: noop
    depends_on: [e]
  - id: e
    type: noop
    depends_on: [d]
  - id: extract
    type: noop
"#;

#[test]
fn validate_reports_every_problem_at_once() {
    let env = Env::new();
    let file = env.file("bad.yaml", BAD);
    let done = env.raw(&["validate", &file]).expect(2);
    let text = &done.stderr;
    // One line per problem, each with file:line:col and the step.
    let expected = [
        ("bad.yaml:8:5: step `a`", "duplicate step id"),
        ("bad.yaml:13:5: step `b`", "duration: unknown unit"),
        ("bad.yaml:14:21: step `b`", "unknown step `extrct` (did you mean `extract`?)"),
        ("bad.yaml:16:5: step `c`", "unknown step type `shel` (did you mean `shell`?)"),
        ("bad.yaml:20:5: step `d`", "dependency cycle: d -> e -> d"),
    ];
    for (place, message) in expected {
        assert!(
            text.lines().any(|l| l.starts_with(place) && l.contains(message)),
            "no line `{place}: ... {message}`\n{}",
            done.all()
        );
    }
    assert!(text.contains("5 problems found"), "{}", done.all());

    let json = env.raw(&["validate", &file, "--json"]).expect(2).json();
    assert_eq!(json["valid"], false);
    let errors = json["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 5, "{json:#}");
    let cycle = errors
        .iter()
        .find(|e| e["message"].as_str().unwrap().contains("cycle"))
        .expect("a cycle error");
    assert_eq!(cycle["file"], "bad.yaml");
    assert_eq!(cycle["line"], 20);
    assert_eq!(cycle["column"], 5);
    assert_eq!(cycle["step"], "d");
    let dep = errors.iter().find(|e| e["field"] == "depends_on.1").expect("the unknown dependency");
    assert_eq!(dep["step"], "b");
    assert_eq!((dep["line"].as_u64(), dep["column"].as_u64()), (Some(14), Some(21)));
}

#[test]
fn validate_suggests_the_field_meant() {
    let env = Env::new();
    let file = env.file(
        "typo.yaml",
        "id: typo\nsteps:\n  - id: a\n    type: shell\n    command: echo a\n    depends_onn: []\n",
    );
    let done = env.raw(&["validate", &file]).expect(2);
    let line = done.stderr.lines().next().unwrap_or_default();
    assert!(line.starts_with("typo.yaml:6:5: step `a`"), "{}", done.all());
    assert!(line.contains("unknown field `depends_onn`"), "{}", done.all());
    assert!(line.contains("did you mean `depends_on`?"), "{}", done.all());

    let json = env.raw(&["validate", &file, "--json"]).expect(2).json();
    assert_eq!(json["errors"][0]["step"], "a");
    assert_eq!(json["errors"][0]["line"], 6);
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let env = Env::new();
    let done = env.raw(&["validate", "nope.yaml"]).expect(2);
    assert!(
        done.stderr.contains("nope.yaml") && done.stderr.contains("cannot read"),
        "{}",
        done.all()
    );
    env.baton(&["run", "nope.yaml"]).expect(2);
}

// ---------------------------------------------------------------------------------------
// run

#[test]
fn run_succeeds() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let done = env.baton(&["run", &file]).expect(0);
    assert!(done.stdout.contains("of `etl` SUCCEEDED"), "{}", done.all());
    assert!(done.stdout.contains("4 steps: 4 succeeded"), "{}", done.all());
    // Progress goes to stderr when it is not a terminal.
    assert!(done.stderr.contains("report SUCCEEDED"), "{}", done.all());
    let runs = env.baton(&["runs", "--json"]).expect(0).json();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["status"], "SUCCEEDED");
}

#[test]
fn run_failure_says_what_failed_and_where_to_look() {
    let env = Env::new();
    let file = env.file("failing.yaml", FAILING);
    let done = env.baton(&["run", &file]).expect(1);
    let out = &done.stdout;
    assert!(out.contains("of `failing` FAILED"), "{}", done.all());
    assert!(
        out.contains("error: step `boom` failed: command exited with code 7"),
        "{}",
        done.all()
    );
    assert!(out.contains("output of `boom`"), "{}", done.all());
    assert!(out.contains("reading 5 rows") && out.contains("disk on fire"), "{}", done.all());
    let id = &run_ids(&env, &[])[0];
    assert!(out.contains(&format!("baton show {id}")), "{}", done.all());

    let json = env.baton(&["show", id, "--json"]).expect(0).json();
    assert_eq!(
        statuses(&json),
        pairs(&[("ok", "SUCCEEDED"), ("boom", "FAILED"), ("after", "SKIPPED")])
    );
}

#[test]
fn run_json_has_every_step_with_status_and_outputs() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let done = env.baton(&["run", &file, "--json"]).expect(0);
    // Nothing but the JSON on stdout, and no progress with --json.
    let json = done.json();
    assert!(done.stderr.trim().is_empty(), "{}", done.all());
    assert_eq!(json["run"]["status"], "SUCCEEDED");
    assert_eq!(json["run"]["workflow_id"], "etl");
    assert_eq!(
        statuses(&json),
        pairs(&[
            ("extract", "SUCCEEDED"),
            ("wait", "SUCCEEDED"),
            ("report", "SUCCEEDED"),
            ("done", "SUCCEEDED")
        ])
    );
    let extract = step(&json, "extract");
    assert_eq!(extract["type"], "shell");
    assert_eq!(extract["attempt"], 1);
    assert_eq!(extract["outputs"]["rows"], 42);
    assert_eq!(extract["outputs"]["day"], "2026-01-01");
    assert!(
        extract["log_tail"].as_str().unwrap().contains("extracting 10 rows for 2026-01-01"),
        "{json:#}"
    );
    assert_eq!(step(&json, "wait")["type"], "sleep");
}

#[test]
fn outputs_reach_downstream_steps() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let json = env.baton(&["run", &file, "--json"]).expect(0).json();
    let report = step(&json, "report");
    // `${extract.rows}` two steps up (through a sleep step) is substituted.
    assert_eq!(report["outputs"]["got"], 42, "{json:#}");
    assert_eq!(report["outputs"]["twice"], 84, "{json:#}");
}

#[test]
fn params_override_defaults_in_shell_steps() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let json = env
        .baton(&["run", &file, "-p", "date=2030-12-31", "--param", "limit=7", "--json"])
        .expect(0)
        .json();
    assert_eq!(json["run"]["params"]["date"], "2030-12-31");
    // A number default keeps its type.
    assert_eq!(json["run"]["params"]["limit"], 7);
    let extract = step(&json, "extract");
    assert_eq!(extract["outputs"]["day"], "2030-12-31");
    assert!(
        extract["log_tail"].as_str().unwrap().contains("extracting 7 rows for 2030-12-31"),
        "{json:#}"
    );
}

#[test]
fn values_reach_a_command_as_data_never_as_shell_code() {
    let env = Env::new();
    let pwned = env.path().join("pwned");
    // `a` outputs shell code; `b` uses a param outside quotes, an output inside double
    // quotes and the param inside single quotes (YAML doubles a single quote in a
    // single-quoted scalar).
    let yaml = format!(
        concat!(
            "id: inject\nparams: {{date: '2026-11-24'}}\nsteps:\n",
            "  - {{id: a, type: shell, command: \"echo 'v=$(touch {p}-output)' >> $BATON_OUTPUT\"}}\n",
            "  - {{id: b, type: shell, depends_on: [a], command: ",
            "'echo loading ${{date}}; echo \"got ${{a.v}}\"; echo ''single ${{date}}'''}}\n"
        ),
        p = pwned.display()
    );
    let file = env.file("inject.yaml", &yaml);
    let date = format!("x; touch {}; $(touch {0}) `touch {0}`", pwned.display());
    let json = env.baton(&["run", &file, "-p", &format!("date={date}"), "--json"]).expect(0).json();
    assert!(!pwned.exists(), "a param ran as code");
    assert!(!env.path().join("pwned-output").exists(), "an output ran as code");
    let log = step(&json, "b")["log_tail"].as_str().unwrap().to_owned();
    assert!(log.contains(&format!("loading {date}\n")), "{log}");
    assert!(log.contains(&format!("got $(touch {}-output)\n", pwned.display())), "{log}");
    assert!(log.contains(&format!("single {date}")), "{log}");
}

#[test]
fn bad_params_are_usage_errors() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let done = env.baton(&["run", &file, "-p", "dat=2030-12-31"]).expect(2);
    assert!(done.stderr.contains("unknown parameter `dat`"), "{}", done.all());
    assert!(done.stderr.contains("did you mean `date`?"), "{}", done.all());
    assert!(done.stderr.contains("date, limit"), "{}", done.all());

    let done = env.baton(&["run", &file, "-p", "limit=many"]).expect(2);
    assert!(done.stderr.contains("parameter `limit`: expects an integer"), "{}", done.all());
    let done = env.baton(&["run", &file, "-p", "limit=2.5"]).expect(2);
    assert!(
        done.stderr.contains("parameter `limit`: expects an integer (default 10), got `2.5`"),
        "{}",
        done.all()
    );

    let done = env.baton(&["run", &file, "-p", "novalue"]).expect(2);
    assert!(done.stderr.contains("is not key=value"), "{}", done.all());
    // No run was started by any of them.
    assert!(run_ids(&env, &[]).is_empty());
}

#[test]
fn a_step_that_fails_once_succeeds_on_its_second_attempt() {
    let env = Env::new();
    let file = env.file(
        "flaky.yaml",
        r#"
id: flaky
params:
  marker_dir: "."
steps:
  - id: load
    type: shell
    command: |
      marker="${marker_dir}/marker-$BATON_RUN_ID"
      echo "attempt $BATON_ATTEMPT key $BATON_IDEMPOTENCY_KEY step $BATON_STEP_ID"
      if [ ! -e "$marker" ]; then touch "$marker"; echo "busy, try again" >&2; exit 1; fi
      echo "attempt=$BATON_ATTEMPT" >> "$BATON_OUTPUT"
      echo "key=$BATON_IDEMPOTENCY_KEY" >> "$BATON_OUTPUT"
    retry: { max_attempts: 3, backoff: fixed, delay: 20ms }
"#,
    );
    let done = env.baton(&["run", &file, "--json"]).expect(0);
    let json = done.json();
    let run = json["run"]["id"].as_str().unwrap().to_owned();
    let load = step(&json, "load");
    assert_eq!(load["status"], "SUCCEEDED");
    assert_eq!(load["attempt"], 2);
    assert_eq!(load["outputs"]["attempt"], 2);
    assert_eq!(load["outputs"]["key"], format!("{run}/load/2"));

    // Without --json, progress shows the retry and `show` the attempt.
    let done = env.baton(&["run", &file]).expect(0);
    assert!(done.stderr.contains("load RETRYING: command exited with code 1"), "{}", done.all());
    assert!(done.stderr.contains("load SUCCEEDED (attempt 2)"), "{}", done.all());
    let ids = run_ids(&env, &[]);
    let show = env.baton(&["show", &ids[1]]).expect(0);
    let row = show.stdout.lines().find(|l| l.starts_with("load ")).expect("a row for load");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&cols[..4], &["load", "shell", "SUCCEEDED", "2"], "{}", show.all());
}

#[test]
fn a_step_out_of_attempts_fails_the_run() {
    let env = Env::new();
    let file = env.file(
        "hopeless.yaml",
        r#"
id: hopeless
steps:
  - id: never
    type: shell
    command: echo "attempt $BATON_ATTEMPT"; exit 3
    retry: { max_attempts: 2, delay: 10ms }
"#,
    );
    let json = env.baton(&["run", &file, "--json"]).expect(1).json();
    assert_eq!(json["run"]["status"], "FAILED");
    let never = step(&json, "never");
    assert_eq!(never["status"], "FAILED");
    assert_eq!(never["attempt"], 2);
    assert_eq!(never["log_tail"], "attempt 2");
}

// ---------------------------------------------------------------------------------------
// runs, show

#[test]
fn runs_filter_by_workflow_and_status() {
    let env = Env::new();
    let good = env.file("good.yaml", GOOD);
    let failing = env.file("failing.yaml", FAILING);
    env.baton(&["run", &good]).expect(0);
    env.baton(&["run", &failing]).expect(1);
    env.baton(&["run", &good]).expect(0);

    let all = run_ids(&env, &[]);
    assert_eq!(all.len(), 3);
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(all, sorted, "runs are listed oldest first");

    assert_eq!(run_ids(&env, &["--workflow", "etl"]), vec![all[0].clone(), all[2].clone()]);
    assert_eq!(run_ids(&env, &["--workflow", "failing"]), vec![all[1].clone()]);
    assert!(run_ids(&env, &["--workflow", "nope"]).is_empty());
    assert_eq!(run_ids(&env, &["--status", "FAILED"]), vec![all[1].clone()]);
    // Statuses are case-insensitive.
    assert_eq!(run_ids(&env, &["--status", "succeeded"]), vec![all[0].clone(), all[2].clone()]);
    assert!(run_ids(&env, &["--workflow", "failing", "--status", "SUCCEEDED"]).is_empty());

    let table = env.baton(&["runs", "--status", "failed"]).expect(0);
    assert!(table.stdout.starts_with("RUN "), "{}", table.all());
    assert_eq!(table.stdout.lines().count(), 2, "{}", table.all());
    assert!(table.stdout.contains(&all[1]) && table.stdout.contains("FAILED"), "{}", table.all());

    let done = env.baton(&["runs", "--status", "BROKEN"]).expect(2);
    assert!(done.stderr.contains("unknown run status `BROKEN`"), "{}", done.all());
}

#[test]
fn runs_on_an_empty_store() {
    let env = Env::new();
    assert_eq!(env.baton(&["runs"]).expect(0).stdout, "no runs\n");
    assert_eq!(env.baton(&["runs", "--json"]).expect(0).json(), serde_json::json!([]));
}

#[test]
fn show_lists_steps_attempts_outputs_and_the_failure() {
    let env = Env::new();
    let file = env.file("failing.yaml", FAILING);
    env.baton(&["run", &file]).expect(1);
    let id = run_ids(&env, &[]).remove(0);
    let done = env.baton(&["show", &id]).expect(0);
    let out = &done.stdout;
    assert!(out.contains(&format!("run       {id}")), "{}", done.all());
    assert!(out.contains("status    FAILED"), "{}", done.all());
    assert!(
        out.contains("error     step `boom` failed: command exited with code 7"),
        "{}",
        done.all()
    );
    assert!(out.contains("steps     3 (1 succeeded, 1 failed, 1 skipped)"), "{}", done.all());
    let row = |step: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{step} ")))
            .unwrap_or_else(|| panic!("no row for {step}\n{out}"));
        line.split_whitespace().map(str::to_owned).collect()
    };
    assert_eq!(&row("ok")[..4], &["ok", "shell", "SUCCEEDED", "1"]);
    assert_eq!(row("ok").last().unwrap(), "rows=5");
    assert_eq!(&row("boom")[..4], &["boom", "shell", "FAILED", "1"]);
    assert!(row("boom").join(" ").ends_with("command exited with code 7"), "{out}");
    assert_eq!(&row("after")[..4], &["after", "noop", "SKIPPED", "0"]);
    assert!(out.contains("skipped: upstream step `boom` did not succeed"), "{out}");
    assert!(out.contains("output of `boom` (attempt 1, last lines):"), "{out}");
    // stdout and stderr are read from two pipes: their relative order is not kept.
    assert!(out.contains("  | reading 5 rows\n") && out.contains("  | disk on fire\n"), "{out}");

    let json = env.baton(&["show", &id, "--json"]).expect(0).json();
    let boom = step(&json, "boom");
    assert_eq!(boom["error"], "command exited with code 7");
    let mut tail: Vec<&str> = boom["log_tail"].as_str().unwrap().lines().collect();
    tail.sort_unstable();
    assert_eq!(tail, ["disk on fire", "reading 5 rows"]);
    assert_eq!(step(&json, "ok")["outputs"]["rows"], 5);

    let done = env.baton(&["show", "01NOSUCHRUN"]).expect(2);
    assert!(done.stderr.contains("no run `01NOSUCHRUN`"), "{}", done.all());
}

// ---------------------------------------------------------------------------------------
// graph, formats

#[test]
fn graph_prints_dot_and_mermaid() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let dot = env.raw(&["graph", &file, "--format", "dot"]).expect(0).stdout;
    assert!(dot.starts_with("digraph \"etl\" {"), "{dot}");
    assert!(dot.contains("\"extract\" [label=\"extract\\n(shell)\"];"), "{dot}");
    for edge in ["\"extract\" -> \"wait\";", "\"wait\" -> \"report\";", "\"report\" -> \"done\";"] {
        assert!(dot.contains(edge), "no {edge} in\n{dot}");
    }
    assert_eq!(dot.matches("->").count(), 3, "{dot}");
    assert!(dot.trim_end().ends_with('}'), "{dot}");
    // dot is the default.
    assert_eq!(env.raw(&["graph", &file]).expect(0).stdout, dot);

    let mermaid = env.raw(&["graph", &file, "--format", "mermaid"]).expect(0).stdout;
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(
        mermaid.contains("s0[\"extract (shell)\"]") && mermaid.contains("s1[\"wait (sleep)\"]"),
        "{mermaid}"
    );
    for edge in ["s0 --> s1", "s1 --> s2", "s2 --> s3"] {
        assert!(mermaid.contains(edge), "no {edge} in\n{mermaid}");
    }

    env.raw(&["graph", &file, "--format", "png"]).expect(2);
    let bad = env.file("bad.yaml", BAD);
    env.raw(&["graph", &bad]).expect(2);
}

#[test]
fn a_json_file_is_the_same_workflow_as_its_yaml() {
    let env = Env::new();
    let yaml = env.file("wf.yaml", GOOD);
    let json = env.file("wf.json", GOOD_JSON);
    assert_eq!(
        env.raw(&["validate", &json, "--json"]).expect(0).json(),
        env.raw(&["validate", &yaml, "--json"]).expect(0).json()
    );
    assert_eq!(
        env.raw(&["graph", &json]).expect(0).stdout,
        env.raw(&["graph", &yaml]).expect(0).stdout
    );
    assert_eq!(
        env.raw(&["graph", &json, "--format", "mermaid"]).expect(0).stdout,
        env.raw(&["graph", &yaml, "--format", "mermaid"]).expect(0).stdout
    );
    let from_yaml = env.baton(&["run", &yaml, "--json"]).expect(0).json();
    let from_json = env.baton(&["run", &json, "--json"]).expect(0).json();
    // Runs pin their definition by content hash: the two files are one definition.
    assert_eq!(from_yaml["run"]["definition"], from_json["run"]["definition"]);
    assert_eq!(statuses(&from_yaml), statuses(&from_json));
    for s in ["extract", "report"] {
        assert_eq!(step(&from_yaml, s)["outputs"], step(&from_json, s)["outputs"]);
    }

    // Errors in JSON files are placed too.
    let bad = env.file("bad.json", "{\n  \"id\": \"x\",\n  \"steps\": [\n    { \"id\": \"a\", \"type\": \"noop\", \"dependson\": [] }\n  ]\n}\n");
    let done = env.raw(&["validate", &bad]).expect(2);
    assert!(done.stderr.starts_with("bad.json:4:"), "{}", done.all());
    assert!(done.stderr.contains("did you mean `depends_on`?"), "{}", done.all());
}

// ---------------------------------------------------------------------------------------
// the store: locking, engines, recovery

/// Waits until `pid` holds the store's lock (it writes its pid in the lock file).
fn wait_for_lock(store: &Path, pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let lock = store.join("baton.lock");
    while std::fs::read_to_string(&lock).map(|s| s.trim() != pid.to_string()).unwrap_or(true) {
        assert!(Instant::now() < deadline, "baton (pid {pid}) did not take the store lock");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_second_process_on_a_busy_store_gets_a_clear_error() {
    let env = Env::new();
    let file = env.file("sleepy.yaml", SLEEPY);
    let store = env.store();
    let first = env
        .command(&["--store", store.to_str().unwrap(), "run", &file, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton run");
    wait_for_lock(&store, first.id());

    // The running process answers for the store; recovering is its business.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let runs = env.baton(&["runs", "--json"]).expect(0).json();
        if runs[0]["status"] == "RUNNING" {
            break;
        }
        // Not started yet: no run in the store, or one CREATED.
        assert!(
            Instant::now() < deadline && (runs[0].is_null() || runs[0]["status"] == "CREATED"),
            "{runs:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let done = env.baton(&["recover"]).expect(3);
    assert!(done.stderr.contains("in use by another process"), "{}", done.all());
    assert!(done.stderr.contains(&format!("pid {}", first.id())), "{}", done.all());
    assert!(done.stderr.contains("resumes its unfinished runs itself"), "{}", done.all());

    // The first process is not disturbed.
    let first = Done::from(first.wait_with_output().expect("wait for baton run")).expect(0);
    assert_eq!(first.json()["run"]["status"], "SUCCEEDED");
    assert_eq!(run_ids(&env, &[]).len(), 1);
}

#[test]
fn recover_with_nothing_to_do() {
    let env = Env::new();
    let done = env.baton(&["recover"]).expect(0);
    assert!(done.stdout.contains("nothing to recover"), "{}", done.all());
    assert_eq!(env.baton(&["recover", "--json"]).expect(0).json(), serde_json::json!([]));
    // Also after finished runs.
    let file = env.file("good.yaml", GOOD);
    env.baton(&["run", &file]).expect(0);
    assert_eq!(env.baton(&["recover", "--json"]).expect(0).json(), serde_json::json!([]));
}

#[test]
fn recover_finishes_a_run_whose_process_was_killed() {
    let env = Env::new();
    let file = env.file("sleepy.yaml", SLEEPY);
    let store = env.store();
    let mut first = env
        .command(&["--store", store.to_str().unwrap(), "run", &file])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton run");
    // "run ID: 2 steps" is printed once the run is in the store.
    let mut line = String::new();
    BufReader::new(first.stderr.take().unwrap()).read_line(&mut line).expect("read progress");
    assert!(line.starts_with("run ") && line.trim_end().ends_with(": 2 steps"), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    first.kill().expect("SIGKILL baton"); // SIGKILL on Unix
    first.wait().expect("reap baton");

    let runs = env.baton(&["runs", "--json"]).expect(0).json();
    assert_eq!(runs[0]["status"], "RUNNING", "{runs:#}");
    let done = env.baton(&["run", &file, "--json"]).expect(0);
    assert!(done.stderr.contains("1 unfinished run(s)"), "{}", done.all());

    let recovered = env.baton(&["recover", "--json"]).expect(0).json();
    let list = recovered.as_array().expect("a list");
    assert_eq!(list.len(), 1, "{recovered:#}");
    assert_eq!(list[0]["run"]["id"], runs[0]["id"]);
    assert_eq!(list[0]["run"]["status"], "SUCCEEDED");
    assert_eq!(step(&list[0], "nap")["attempt"], 1, "the sleep resumes as the same attempt");
    assert_eq!(step(&list[0], "after")["outputs"]["woke"], "yes");
    assert_eq!(run_ids(&env, &["--status", "RUNNING"]), Vec::<String>::new());
}

#[test]
fn both_store_engines_run_workflows() {
    for (engine, marker) in [("redb", "baton.redb"), ("sled", "sled")] {
        let env = Env::new();
        let file = env.file("good.yaml", GOOD);
        let json = env.baton(&["--store-engine", engine, "run", &file, "--json"]).expect(0).json();
        assert_eq!(json["run"]["status"], "SUCCEEDED", "{engine}");
        assert_eq!(step(&json, "report")["outputs"]["got"], 42, "{engine}");
        assert!(env.store().join(marker).exists(), "{engine}: no {marker} in the store");
        // Reopened without the flag, the store keeps its engine; with it, too.
        assert_eq!(run_ids(&env, &[]).len(), 1, "{engine}");
        env.baton(&["--store-engine", engine, "run", &file]).expect(0);
        let runs = env.baton(&["runs", "--status", "SUCCEEDED", "--json"]).expect(0).json();
        assert_eq!(runs.as_array().unwrap().len(), 2, "{engine}");
        let id = runs[1]["id"].as_str().unwrap();
        let details = env.baton(&["show", id, "--json"]).expect(0).json();
        assert_eq!(step(&details, "extract")["outputs"]["rows"], 42, "{engine}");
    }
}

#[test]
fn a_store_reopened_with_the_other_engine_is_refused() {
    for (made, other) in [("sled", "redb"), ("redb", "sled")] {
        let env = Env::new();
        let file = env.file("good.yaml", GOOD);
        env.baton(&["--store-engine", made, "run", &file]).expect(0);
        let done = env.baton(&["--store-engine", other, "runs"]).expect(3);
        assert!(
            done.stderr.contains(&format!("holds a {made} database, not {other}")),
            "{made} store opened as {other}:\n{}",
            done.all()
        );
        env.baton(&["--store-engine", other, "run", &file]).expect(3);
        // Nothing was changed: the store still has its one run.
        assert_eq!(run_ids(&env, &[]).len(), 1);
    }
    let done = Env::new().baton(&["--store-engine", "rocks", "runs"]).expect(2);
    assert!(done.stderr.contains("unknown store engine `rocks`"), "{}", done.all());
}

#[test]
fn the_store_defaults_to_baton_home_then_dot_baton() {
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let home = env.path().join("home");
    let done = Done::from(env.command(&["run", &file]).env("BATON_HOME", &home).output().unwrap())
        .expect(0);
    assert!(home.join("baton.redb").exists(), "{}", done.all());
    env.raw(&["run", &file]).expect(0);
    assert!(env.path().join(".baton").join("baton.redb").exists());
}

#[test]
fn an_interrupted_run_stops_its_commands_and_stays_recoverable() {
    let env = Env::new();
    let marker = env.path().join("started");
    let file = env.file(
        "long.yaml",
        &format!(
            "id: long\nsteps:\n  - id: work\n    type: shell\n    command: \"touch {} && sleep 30 && echo late > {}\"\n",
            marker.display(),
            env.path().join("late").display()
        ),
    );
    let store = env.store();
    let child = env
        .command(&["--store", store.to_str().unwrap(), "run", &file])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton run");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the step did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let done = Done::from(child.wait_with_output().expect("wait for baton run")).expect(130);
    assert!(done.stderr.contains("baton recover"), "{}", done.all());
    // The command's process group got SIGTERM with the engine's close: it never finishes.
    std::thread::sleep(Duration::from_millis(300));
    assert!(!env.path().join("late").exists());
    let runs = env.baton(&["runs", "--json"]).expect(0).json();
    assert_eq!(runs[0]["status"], "RUNNING", "the run stays unfinished for recover");
}

/// A file of `examples/control-flow`.
fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/control-flow")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn foreach_example_runs_and_show_links_iterations() {
    let env = Env::new();
    env.baton(&["run", &example("foreach.yaml"), "-p", "partitions=5"]).expect(0);
    let id = run_ids(&env, &[])[0].clone();
    let details = env.baton(&["show", &id, "--json"]).expect(0).json();
    let each = step(&details, "per_partition");
    assert_eq!(each["rollup"]["counts"]["SUCCEEDED"], 5, "{each:#}");
    assert_eq!(each["outputs"]["iterations"], 5);
    let report = step(&details, "report");
    assert_eq!(report["status"], "SUCCEEDED");
    // An iteration is shown like a run, with its parent.
    let shown = env.baton(&["show", &format!("{id}:per_partition:3")]).expect(0);
    assert!(
        shown.stdout.contains(&format!("parent    {id} (iteration 3 of step `per_partition`)")),
        "{}",
        shown.all()
    );
    assert!(shown.stdout.contains("rows=400"), "{}", shown.all());
    // Iterations are not listed as runs.
    assert_eq!(run_ids(&env, &[]).len(), 1);
}

#[test]
fn a_failing_foreach_lists_its_first_failed_iterations() {
    let env = Env::new();
    let file = env.file(
        "fe.yaml",
        "id: fe\nsteps:\n  - id: each\n    type: foreach\n    over: '${range(0, 6)}'\n    as: n\n    steps:\n      - {id: odd, type: shell, command: 'test $(( ${n} % 2 )) -eq 0'}\n",
    );
    env.baton(&["run", &file]).expect(1);
    let id = run_ids(&env, &[])[0].clone();
    let shown = env.baton(&["show", &id]).expect(0);
    for expected in [
        "3 of 6 iterations failed; first: iteration 1",
        "first failed iterations",
        &format!("{id}:each:5"),
    ] {
        assert!(shown.stdout.contains(expected), "missing {expected:?}:\n{}", shown.all());
    }
}

#[test]
fn insights_forecast_a_workflow_and_show_gives_a_running_runs_eta() {
    let env = Env::new();
    let yaml = "id: etl\nparams: {s: '0.1'}\nsteps:\n  - {id: extract, type: shell, command: 'sleep ${s}'}\n  - {id: load, type: shell, depends_on: [extract], command: 'sleep ${s}'}\n";
    let file = env.file("etl.yaml", yaml);
    env.baton(&["register", &file]).expect(0);
    let none = env.baton(&["insights", "etl"]).expect(0);
    assert!(none.stdout.contains("no forecast yet"), "{}", none.all());
    for _ in 0..3 {
        env.baton(&["start", "etl"]).expect(0);
    }
    let insights = env.baton(&["insights", "etl", "--json"]).expect(0).json();
    let load = &insights["steps"][1];
    assert_eq!(
        (load["step"].clone(), load["ended"].clone()),
        (json!("load"), json!(3)),
        "{insights:#}"
    );
    assert!(load["p50_ms"].as_u64().unwrap() >= 90, "{insights:#}");
    assert!(insights["expected_ms"].as_u64().unwrap() >= 180, "{insights:#}");
    assert_eq!(insights["critical_path"], json!(["extract", "load"]));
    let text = env.baton(&["insights", "etl"]).expect(0);
    assert!(
        text.stdout.contains("expected run: ") && text.stdout.contains("extract -> load"),
        "{}",
        text.all()
    );
    env.baton(&["insights", "nope"]).expect(2);

    // A run going on: `show` says when it should end.
    let server = serve(&env);
    let started = env.baton(&["start", "etl", "-p", "s=2", "--json"]).expect(0).json();
    let id = started["run_id"].as_str().or(started["run"]["id"].as_str()).unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(300));
    let shown = env.baton(&["show", &id, "--json"]).expect(0).json();
    assert!(shown["eta"]["at_ms"].as_u64().is_some(), "{shown:#}");
    let text = env.baton(&["show", &id]).expect(0);
    assert!(text.stdout.contains("eta "), "{}", text.all());
    env.baton(&["stop", &id]).expect(0);
    terminate(server).expect(0);
}

#[test]
fn diagnose_names_the_step_that_failed_first_and_what_changed() {
    let env = Env::new();
    let yaml = "id: load\nparams: {port: 5432}\nsteps:\n  - {id: connect, type: shell, command: 'test ${port} = 5432 || { echo \"connection refused on port ${port}\"; exit 1; }'}\n  - {id: copy, type: shell, depends_on: [connect], command: 'true'}\n";
    let file = env.file("load.yaml", yaml);
    env.baton(&["register", &file]).expect(0);
    env.baton(&["start", "load"]).expect(0);
    let failed = env.baton(&["start", "load", "-p", "port=5433", "--json"]).expect(1).json();
    let id = failed["run"]["id"].as_str().unwrap().to_owned();
    let d = env.baton(&["diagnose", &id, "--json"]).expect(0).json();
    assert_eq!(d["root_cause"]["step"], "connect", "{d:#}");
    assert_eq!(d["skipped"], 1, "{d:#}");
    assert!(
        d["changed"].as_array().unwrap().iter().any(|c| c == "params changed: port: 5432 -> 5433"),
        "{d:#}"
    );
    let text = env.baton(&["diagnose", &id]).expect(0);
    assert!(text.stdout.starts_with("step `connect` failed first"), "{}", text.all());
    assert!(text.stdout.contains("connection refused on port 5433"), "{}", text.all());
    env.baton(&["diagnose", "nope"]).expect(2);
}

#[test]
fn every_example_validates() {
    let env = Env::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for dir in
        [root.clone(), root.join("control-flow"), root.join("triggers"), root.join("cluster")]
    {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let broken = path.file_name().is_some_and(|n| n == "broken.yaml");
            if path.extension().is_some_and(|e| e == "yaml") && !broken {
                let done = env.baton(&["validate", path.to_str().unwrap()]);
                assert_eq!(done.code, 0, "{}: {}", path.display(), done.all());
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "{checked} examples");
}

#[test]
fn the_backfill_example_runs_every_region_and_day() {
    let env = Env::new();
    let done = env.baton(&["run", &example("backfill.yaml"), "--json"]).expect(0).json();
    let per_day = step(&done, "per_day");
    assert_eq!(per_day["outputs"]["iterations"], 10, "{per_day:#}");
    // Days 1 to 5 of each region: (1 + 2 + 3 + 4 + 5) * 10 rows, twice.
    assert_eq!(step(&done, "report")["log_tail"], "10 loads, 300 rows", "{done:#}");
}

#[test]
fn while_and_subworkflow_examples_run() {
    let env = Env::new();
    let done = env.baton(&["run", &example("while.yaml"), "--json"]).expect(0).json();
    assert_eq!(step(&done, "poll")["outputs"]["iterations"], 3);
    // `carry`: each page's cursor reaches the next iteration; an empty one ends the loop.
    let done = env.baton(&["run", &example("paginate.yaml"), "--json"]).expect(0).json();
    assert_eq!(step(&done, "report")["log_tail"], "fetched 3 pages in 3 iterations", "{done:#}");
    // A relative `file:` is read next to the workflow, whatever the working directory.
    let done = env.baton(&["run", &example("subworkflow.yaml"), "--json"]).expect(0).json();
    let sub = step(&done, "load_events");
    assert_eq!(sub["outputs"]["load"]["rows"], 42);
    let child = sub["child_run"].as_str().expect("child run id").to_owned();
    let child = env.baton(&["show", &child, "--json"]).expect(0).json();
    assert_eq!(child["run"]["workflow_id"], "load-table");
    assert_eq!(child["run"]["parent"]["step_id"], "load_events");
}

#[test]
fn a_signal_sent_from_the_command_line_releases_a_waiting_run() {
    let env = Env::new();
    // Sent before the run starts: it is stored, and matches within the retention window.
    let sent = env
        .baton(&["signal", "table_ready", "table=events", "date=2026-11-24", "rows=7", "--json"])
        .expect(0)
        .json();
    assert_eq!(sent["params"]["rows"], 7);
    let done = env.baton(&["run", &example("consume.yaml"), "--json"]).expect(0).json();
    assert_eq!(step(&done, "events_ready")["outputs"]["rows"], 7);
    // A run of the producer emits another one.
    env.baton(&["run", &example("produce.yaml"), "-p", "date=2026-11-25"]).expect(0);
    let signals = env.baton(&["signals", "table_ready", "--json"]).expect(0).json();
    let dates: Vec<&str> =
        signals.as_array().unwrap().iter().map(|s| s["params"]["date"].as_str().unwrap()).collect();
    assert_eq!(dates, vec!["2026-11-24", "2026-11-25"]);
    env.baton(&["signal", "bad name"]).expect(2);
}

// ---------------------------------------------------------------------------------------
// a live engine: `baton serve` and the control socket

/// `baton serve` on the env's store, once its control socket is up.
fn serve(env: &Env) -> std::process::Child {
    let store = env.store();
    let child = env
        .command(&["--store", store.to_str().unwrap(), "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton serve");
    let socket = store.join("control.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "baton serve did not open its control socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

/// Sends SIGTERM and waits for the process.
fn terminate(child: std::process::Child) -> Done {
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill -TERM");
    Done::from(child.wait_with_output().expect("wait for baton"))
}

const LONG: &str = r#"
id: long
steps:
  - id: work
    type: shell
    command: sleep 30
"#;

#[test]
fn commands_from_other_processes_reach_the_live_engine() {
    let env = Env::new();
    let hello = env.file(
        "hello.yaml",
        "id: hello\nsteps:\n  - {id: a, type: shell, command: echo n=1 >> \"$BATON_OUTPUT\"}\n",
    );
    let long = env.file("long.yaml", LONG);
    let server = serve(&env);
    let socket = env.store().join("control.sock");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&socket).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the socket is the owner's only");

    env.baton(&["runs"]).expect(0);
    let done = env.baton(&["run", &hello, "--json"]).expect(0);
    assert_eq!(done.json()["run"]["status"], "SUCCEEDED", "{}", done.all());
    assert!(done.stderr.contains("started by the live engine"), "{}", done.all());
    assert_eq!(step(&done.json(), "a")["outputs"]["n"], 1);

    env.baton(&["signal", "ready", "day=3"]).expect(0);
    let signals = env.baton(&["signals", "--json"]).expect(0).json();
    assert_eq!(signals[0]["params"]["day"], 3, "{signals:#}");

    // A run in another process, stopped from a third one.
    let store = env.store();
    let runner = env
        .command(&["--store", store.to_str().unwrap(), "run", &long, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start run");
    let deadline = Instant::now() + Duration::from_secs(10);
    let running = loop {
        let runs = env.baton(&["runs", "--json", "--status", "RUNNING"]).expect(0).json();
        if let Some(id) = runs[0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "the long run did not start");
        std::thread::sleep(Duration::from_millis(50));
    };
    env.baton(&["stop", &running]).expect(0);
    let stopped = Done::from(runner.wait_with_output().expect("wait for run")).expect(1);
    assert_eq!(stopped.json()["run"]["status"], "STOPPED", "{}", stopped.all());
    let done = env.baton(&["stop", "no-such-run"]).expect(2);
    assert!(done.stderr.contains("no run `no-such-run`"), "{}", done.all());

    // Stopping the server lets go of the store and removes the socket.
    let stopped = terminate(server).expect(0);
    assert!(stopped.stdout.contains("control socket"), "{}", stopped.all());
    assert!(!socket.exists());
    let runs = env.baton(&["runs", "--json"]).expect(0).json();
    assert_eq!(runs.as_array().map(Vec::len), Some(2), "{runs:#}");
}

#[test]
fn a_locked_store_without_a_live_engine_is_a_clear_error() {
    let env = Env::new();
    let store = env.store();
    std::fs::create_dir_all(&store).unwrap();
    // A process holding the lock file, but no engine behind it.
    let holder = Command::new("flock")
        .arg(store.join("baton.lock"))
        .args(["sleep", "30"])
        .spawn()
        .expect("flock");
    std::thread::sleep(Duration::from_millis(300));
    let done = env.baton(&["runs"]).expect(3);
    assert!(done.stderr.contains("in use by another process"), "{}", done.all());
    assert!(done.stderr.contains("no live engine answers"), "{}", done.all());
    let mut holder = holder;
    holder.kill().ok();
    holder.wait().ok();
}

/// The run ids of a workflow, oldest first, once there are at least `n` (waits up to 15 s).
fn wait_for_runs(env: &Env, workflow: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let runs = env.baton(&["runs", "--workflow", workflow, "--json"]).expect(0).json();
        let runs = runs.as_array().cloned().unwrap_or_default();
        if runs.len() >= n {
            return runs;
        }
        assert!(Instant::now() < deadline, "{workflow}: {} run(s), expected {n}", runs.len());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn status_of(env: &Env, run: &str) -> String {
    env.baton(&["show", run, "--json"]).expect(0).json()["run"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const TICKER: &str = r#"
id: ticker
params: { at: "" }
triggers:
  - cron: "* * * * * *"
    params: { at: "${format_date(trigger.scheduled_time, 'HH:mm:ss')}" }
steps:
  - { id: tick, type: shell, command: "echo at=${at} >> $BATON_OUTPUT" }
"#;

const GATED: &str = r#"
id: gated
params: { date: "" }
triggers:
  - signal: table_ready
    match: "${signal.table == 'events'}"
    params: { date: "${signal.date}" }
steps:
  - { id: wait, type: shell, command: "sleep 30" }
  - { id: report, type: shell, depends_on: [wait], command: "echo date=${date} >> $BATON_OUTPUT" }
"#;

#[test]
fn serve_fires_cron_and_signal_triggers_and_obeys_operators_in_real_time() {
    let env = Env::new();
    let ticker = env.file("ticker.yaml", TICKER);
    let gated = env.file("gated.yaml", GATED);
    let server = serve(&env);

    // A cron trigger firing every second.
    let done = env.baton(&["register", &ticker]).expect(0);
    assert!(done.stdout.contains("registered version 1"), "{}", done.all());
    let done = env.baton(&["register", &ticker]).expect(0);
    assert!(done.stdout.contains("unchanged, still version 1"), "{}", done.all());
    let runs = wait_for_runs(&env, "ticker", 2);
    let first = env.baton(&["show", runs[0]["id"].as_str().unwrap(), "--json"]).expect(0).json();
    assert_eq!(first["run"]["version"], 1, "{first:#}");
    assert!(first["run"]["params"]["at"].as_str().is_some_and(|at| at.len() == 8), "{first:#}");
    let firings = env.baton(&["firings", "ticker", "--json"]).expect(0).json();
    assert!(
        firings.as_array().is_some_and(|f| f.iter().any(|f| f["run_id"] == runs[0]["id"])),
        "{firings:#}"
    );
    env.baton(&["disable", "ticker"]).expect(0);
    let after_disable = wait_for_runs(&env, "ticker", 0).len();
    std::thread::sleep(Duration::from_millis(2_500));
    let later = wait_for_runs(&env, "ticker", 0).len();
    assert!(
        later <= after_disable + 1,
        "a disabled workflow fired: {after_disable} then {later} runs"
    );
    let workflows = env.baton(&["workflows", "--json"]).expect(0).json();
    assert_eq!(workflows[0]["enabled"], false, "{workflows:#}");

    // A signal trigger, fired by `baton signal` from another process; then the operator's actions.
    env.baton(&["register", &gated]).expect(0);
    let follower = env
        .command(&["--store", env.store().to_str().unwrap(), "events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start events --follow");
    env.baton(&["signal", "table_ready", "table=other", "date=2026-11-23"]).expect(0);
    env.baton(&["signal", "table_ready", "table=events", "date=2026-11-24"]).expect(0);
    let runs = wait_for_runs(&env, "gated", 1);
    assert_eq!(runs.len(), 1, "only the matching signal starts a run: {runs:#?}");
    let run = runs[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(runs[0]["params"]["date"], "2026-11-24");

    env.baton(&["pause", &run]).expect(0);
    assert_eq!(status_of(&env, &run), "PAUSED");
    let done = env.baton(&["pause", &run]).expect(2);
    assert!(done.stderr.contains("PAUSED already"), "{}", done.all());
    env.baton(&["resume", &run]).expect(0);
    assert_eq!(status_of(&env, &run), "RUNNING");
    env.baton(&["stop", &run]).expect(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while status_of(&env, &run) != "STOPPED" {
        assert!(Instant::now() < deadline, "the run did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let timeline = env.baton(&["timeline", &run, "--json"]).expect(0).json();
    let run_statuses: Vec<&str> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == "run")
        .filter_map(|e| e["status"].as_str())
        .collect();
    assert_eq!(run_statuses, ["RUNNING", "PAUSED", "RUNNING", "STOPPED"], "{timeline:#}");

    let stopped = terminate(server).expect(0);
    assert!(stopped.stderr.contains("stopping"), "{}", stopped.all());
    // The follower saw the same changes, one JSON object per line, and ends with the engine.
    let followed = Done::from(follower.wait_with_output().expect("wait for events --follow"));
    let lines: Vec<Value> =
        followed.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert!(
        lines.iter().any(|e| e["run_id"] == run.as_str() && e["status"] == "PAUSED"),
        "{}",
        followed.all()
    );
    assert!(
        lines.iter().any(|e| e["run_id"] == run.as_str() && e["status"] == "STOPPED"),
        "{}",
        followed.all()
    );
}

#[test]
fn versions_activate_start_and_restart_without_a_live_engine() {
    let env = Env::new();
    let step_a = "  - id: a\n    type: shell\n    command: echo n=${n} >> $BATON_OUTPUT\n";
    let v1 = env.file("v1.yaml", &format!("id: etl\nparams: {{n: 1}}\nsteps:\n{step_a}"));
    let v2 = env.file("v2.yaml", &format!("id: etl\nparams: {{n: 2}}\nsteps:\n{step_a}  - {{id: b, type: shell, depends_on: [a], command: 'test ${{a.n}} = 7'}}\n"));
    env.baton(&["register", &v1]).expect(0);
    env.baton(&["register", &v2]).expect(0);
    let versions = env.baton(&["versions", "etl", "--json"]).expect(0).json();
    assert_eq!(versions.as_array().map(Vec::len), Some(2), "{versions:#}");
    assert_eq!(versions[1]["active"], true);

    // No live engine: `start` runs here to the end; the version is recorded.
    let done = env.baton(&["start", "etl", "--json"]).expect(1);
    assert_eq!(done.json()["run"]["version"], 2, "{}", done.all());
    let failed = done.json()["run"]["id"].as_str().unwrap().to_owned();
    let done = env.baton(&["start", "etl", "--version", "1", "-p", "n=5", "--json"]).expect(0);
    assert_eq!(step(&done.json(), "a")["outputs"]["n"], 5);
    let done = env.baton(&["start", "etl", "--version", "9"]).expect(2);
    assert!(done.stderr.contains("9"), "{}", done.all());

    // Idempotent starts.
    let one = env
        .baton(&["start", "etl", "--version", "1", "--request-id", "nightly-24", "--json"])
        .expect(0)
        .json();
    let two = env
        .baton(&["start", "etl", "--version", "1", "--request-id", "nightly-24", "--json"])
        .expect(0)
        .json();
    assert_eq!(one["run"]["id"], two["run"]["id"]);

    // Restart the failed run from `b`: `a` keeps its outputs and does not run again.
    let done = env.baton(&["restart", &failed, "--from", "b", "--json"]).expect(1);
    let restarted = done.json();
    assert_eq!(restarted["run"]["restarted_from"], failed.as_str(), "{}", done.all());
    assert_eq!(step(&restarted, "a")["outputs"]["n"], 2);
    let timeline = env
        .baton(&["timeline", restarted["run"]["id"].as_str().unwrap(), "--json"])
        .expect(0)
        .json();
    assert!(
        !timeline.as_array().unwrap().iter().any(|e| e["step_id"] == "a"),
        "a kept step does not run again: {timeline:#}"
    );
    let shown = env.baton(&["show", restarted["run"]["id"].as_str().unwrap()]).expect(0);
    assert!(shown.stdout.contains("etl (version 2)"), "{}", shown.all());
    assert!(shown.stdout.contains(&format!("restarts  {failed}")), "{}", shown.all());

    env.baton(&["activate", "etl", "1"]).expect(0);
    let workflows = env.baton(&["workflows", "--json"]).expect(0).json();
    assert_eq!(workflows[0]["active_version"], 1, "{workflows:#}");
    let done = env.baton(&["pause", &failed]).expect(2);
    assert!(done.stderr.contains("cannot pause run"), "{}", done.all());
    let done = env.baton(&["events"]).expect(2);
    assert!(done.stderr.contains("--follow"), "{}", done.all());
}

#[test]
fn the_trigger_examples_register_and_the_signal_one_fires() {
    let env = Env::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/triggers");
    let server = serve(&env);
    for file in ["nightly.yaml", "on-table-ready.yaml", "both-tables.yaml"] {
        env.baton(&["register", dir.join(file).to_str().unwrap()]).expect(0);
    }
    let workflows = env.baton(&["workflows", "--json"]).expect(0).json();
    assert_eq!(workflows.as_array().map(Vec::len), Some(3), "{workflows:#}");
    // The joined trigger fires once both tables are ready for the same date.
    env.baton(&["signal", "prod_db/orders", "date=2026-11-24"]).expect(0);
    env.baton(&["signal", "prod_db/users", "date=2026-11-23", "rows=5"]).expect(0);
    env.baton(&["signal", "prod_db/users", "date=2026-11-24", "rows=1200"]).expect(0);
    let joined = wait_for_runs(&env, "join-orders-users", 1);
    assert_eq!(
        (joined[0]["params"]["date"].clone(), joined[0]["params"]["users"].clone()),
        (serde_json::json!("2026-11-24"), serde_json::json!(1200)),
        "{joined:#?}"
    );
    env.baton(&["signal", "table_ready", "table=events", "date=2026-11-24"]).expect(0);
    let runs = wait_for_runs(&env, "load-events", 1);
    assert_eq!(runs[0]["params"]["date"], "2026-11-24", "{runs:#?}");
    assert!(runs[0]["trigger"].as_str().is_some_and(|t| t.contains("table_ready")), "{runs:#?}");
    terminate(server).expect(0);
}

#[test]
fn a_signal_sent_to_a_trigger_is_data_in_the_command_it_reaches() {
    let env = Env::new();
    let pwned = env.path().join("pwned");
    let yaml = concat!(
        "id: on_signal\nparams: {date: ''}\n",
        "triggers:\n  - {signal: load, params: {date: '${signal.date}'}}\n",
        "steps:\n",
        "  - {id: load, type: shell, env: {D: '${date}'}, command: 'echo \"loading ${date}\"; echo \"env $D\"'}\n",
    );
    let file = env.file("on_signal.yaml", yaml);
    let server = serve(&env);
    env.baton(&["register", &file]).expect(0);
    let date = format!("x; touch {}; $(touch {0}) `touch {0}`", pwned.display());
    env.baton(&["signal", "load", &format!("date={date}")]).expect(0);
    let runs = wait_for_runs(&env, "on_signal", 1);
    let run = runs[0]["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(15);
    while status_of(&env, &run) != "SUCCEEDED" {
        assert!(Instant::now() < deadline, "the run did not succeed: {}", status_of(&env, &run));
        std::thread::sleep(Duration::from_millis(100));
    }
    let json = env.baton(&["show", &run, "--json"]).expect(0).json();
    terminate(server).expect(0);
    assert!(!pwned.exists(), "a signal's param ran as code");
    let log = step(&json, "load")["log_tail"].as_str().unwrap().to_owned();
    assert!(log.contains(&format!("loading {date}\n")), "{log}");
    assert!(log.contains(&format!("env {date}")), "{log}");
}

#[test]
fn validate_warns_of_raw_code_that_outsiders_can_set() {
    let env = Env::new();
    let yaml = concat!(
        "id: flags\nparams: {flags: '-n'}\nsteps:\n",
        "  - {id: a, type: shell, command: 'echo ${raw(flags)} done'}\n",
    );
    let file = env.file("flags.yaml", yaml);
    let done = env.raw(&["validate", &file]).expect(0);
    assert!(
        done.stderr.contains("warning: flags.yaml:4:")
            && done.stderr.contains("raw(...) runs `flags` as shell code"),
        "{}",
        done.all()
    );
    let json = env.raw(&["validate", &file, "--json"]).expect(0).json();
    assert_eq!(json["warnings"][0]["step"], "a", "{json:#}");
    // The author asked for code: `-n` is an option of echo, not a word it prints.
    let run = env.baton(&["run", &file, "--json"]).expect(0).json();
    assert_eq!(step(&run, "a")["log_tail"], "done", "{run:#}");
}

// ---------------------------------------------------------------------------------------
// secrets

const SECRET: &str = "tok-5ec2e7-v4lue";

const DEPLOY: &str = r#"
id: deploy
params: { region: eu }
secrets: [token]
steps:
  - id: login
    type: shell
    env: { API_TOKEN: "${token}" }
    command: 'test "$API_TOKEN" = "${token}" && echo "logging in to ${region} with ${token}" && echo "token=${token}" >> $BATON_OUTPUT'
  - id: check
    type: shell
    command: 'echo "the token was ${login.token}"; echo "bad ${token}" >&2; exit 4'
    depends_on: [login]
    failure_mode: ignore_failure
"#;

/// Every file under `dir` whose bytes hold `text`.
fn files_holding(dir: &Path, text: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if std::fs::read(&path)
            .is_ok_and(|b| b.windows(text.len()).any(|w| w == text.as_bytes()))
        {
            found.push(path);
        }
    }
    found
}

#[test]
fn a_secret_appears_in_no_output_of_the_command_nor_in_the_store() {
    let env = Env::new();
    let deploy = env.file("deploy.yaml", DEPLOY);
    let done = env.baton(&["run", &deploy]).expect(2);
    assert!(done.stderr.contains("secret `token` is not given"), "{}", done.all());

    let param = format!("token={SECRET}");
    let mut shown = Vec::new();
    let run = Done::from(
        env.command(&["--store", env.store().to_str().unwrap(), "run", &deploy, "-p", &param])
            .env("BATON_LOG", "debug")
            .output()
            .expect("run baton"),
    )
    .expect(0);
    shown.push(run.all());
    let details = env.baton(&["run", &deploy, "-p", &param, "--json"]).expect(0).json();
    // The shell step got the value (its `test` passed); what it printed and output is masked.
    let login = step(&details, "login");
    assert_eq!(login["status"], "SUCCEEDED", "{details:#}");
    assert_eq!(login["outputs"]["token"], "***", "{details:#}");
    assert_eq!(login["log_tail"], "logging in to eu with ***", "{details:#}");
    assert_eq!(details["run"]["params"]["token"], "***", "{details:#}");
    assert_eq!(step(&details, "check")["status"], "FAILED");
    shown.push(details.to_string());
    let id = details["run"]["id"].as_str().unwrap().to_owned();
    let show = env.baton(&["show", &id]).expect(0);
    assert!(show.stdout.contains("token=***"), "{}", show.all());
    assert!(show.stdout.contains("bad ***"), "{}", show.all());
    for args in [
        vec!["show", &id],
        vec!["show", &id, "--all", "--json"],
        vec!["runs"],
        vec!["runs", "--json"],
        vec!["timeline", &id],
        vec!["timeline", &id, "--json"],
        vec!["restart", &id],
    ] {
        let done = env.baton(&args);
        shown.push(format!("baton {args:?}\n{}", done.all()));
    }
    assert!(shown.last().unwrap().contains("secrets are not kept"), "{}", shown.last().unwrap());

    // A live engine: a registered workflow started from another process, and its events.
    let server = env
        .command(&["--store", env.store().to_str().unwrap(), "serve"])
        .env("BATON_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton serve");
    let socket = env.store().join("control.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "baton serve did not open its control socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    let follower = env
        .command(&["--store", env.store().to_str().unwrap(), "events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start events --follow");
    env.baton(&["register", &deploy]).expect(0);
    shown.push(env.baton(&["start", "deploy", "-p", &param, "--wait", "--json"]).all());
    shown.push(env.baton(&["runs", "--workflow", "deploy", "--json"]).expect(0).all());
    shown.push(terminate(server).all());
    let followed = Done::from(follower.wait_with_output().expect("wait for events --follow"));
    assert!(followed.stdout.contains("\"status\":\"FAILED\""), "{}", followed.all());
    shown.push(followed.all());

    for text in &shown {
        assert!(!text.contains(SECRET), "the secret is shown:\n{text}");
    }
    assert!(shown.iter().any(|t| t.contains("***")));
    assert_eq!(files_holding(&env.store(), SECRET), Vec::<PathBuf>::new());
}

#[test]
fn the_secrets_example_runs_and_masks_its_secret() {
    let env = Env::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/secrets.yaml");
    let file = file.to_str().unwrap();
    let done = env.baton(&["run", file, "-p", "token=ex4mple-t0ken", "--json"]).expect(0).json();
    assert_eq!(step(&done, "login")["log_tail"], "logging in to eu with ***", "{done:#}");
    assert_eq!(step(&done, "check")["log_tail"], "token has 13 characters", "{done:#}");
}

/// A server on a loopback port answering `requests` requests (each on its own connection)
/// with `answer(request line, body)`, then ending; it gives back what it got.
fn http_server(
    requests: usize,
    answer: fn(&str, &str) -> (u16, String),
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let served = std::thread::spawn(move || {
        let mut got = Vec::new();
        for _ in 0..requests {
            let (mut socket, _) = listener.accept().unwrap();
            socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at;
                }
                let n = socket.read(&mut chunk).unwrap();
                assert!(n > 0 && buf.len() < 1 << 16, "a request ended early");
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let length: usize = head
                .lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .map_or(0, |(_, v)| v.trim().parse().unwrap());
            while buf.len() < head_end + 4 + length {
                let n = socket.read(&mut chunk).unwrap();
                assert!(n > 0, "a request body ended early");
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8_lossy(&buf[head_end + 4..]).into_owned();
            let (status, reply) = answer(head.lines().next().unwrap_or_default(), &body);
            let response = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
            socket.write_all(response.as_bytes()).unwrap();
            got.push(format!("{head}\r\n\r\n{body}"));
        }
        got
    });
    (base, served)
}

#[test]
fn the_http_example_runs_against_a_local_server_and_masks_its_token() {
    let (base, served) = http_server(2, |line, body| {
        if line.starts_with("POST /items?owner=first%20item ") {
            let sent: Value = serde_json::from_str(body).unwrap();
            assert_eq!(sent, serde_json::json!({"name": "first item", "tags": ["example"]}));
            (201, r#"{"id": 7, "data": {"tags": ["example"]}}"#.into())
        } else if line.starts_with("GET /items/7 ") {
            (200, r#"{"name": "first item"}"#.into())
        } else {
            (400, format!("unexpected request: {line}"))
        }
    });
    let env = Env::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/http.yaml");
    let api = format!("api={base}");
    let args = ["run", file.to_str().unwrap(), "-p", &api, "-p", "token=ex4mple-t0ken", "--json"];
    let done = env.baton(&args).expect(0).json();
    assert_eq!(step(&done, "create")["outputs"]["status"], 201, "{done:#}");
    assert_eq!(step(&done, "report")["log_tail"], "created first item as 7 (tag example)");
    let got = served.join().unwrap();
    assert!(got[0].to_lowercase().contains("\nauthorization: bearer ex4mple-t0ken"), "{got:?}");
    assert!(!done.to_string().contains("ex4mple-t0ken"), "{done:#}");
}

#[test]
fn prune_deletes_old_history_with_or_without_a_live_engine() {
    let env = Env::new();
    let hello = env.file("hello.yaml", "id: hello\nsteps:\n  - {id: a, type: noop}\n");
    env.baton(&["run", &hello]).expect(0);
    env.baton(&["signal", "go", "n=1"]).expect(0);

    // Nothing is a day old; a dry run only counts.
    let none = env.baton(&["prune", "--older-than", "1d", "--json"]).expect(0).json();
    assert_eq!((none["runs"].as_u64(), none["signals"].as_u64()), (Some(0), Some(0)));
    let dry = env.baton(&["prune", "--older-than", "0s", "--dry-run"]).expect(0);
    assert!(dry.stdout.starts_with("would delete:"), "{}", dry.all());
    assert!(dry.stdout.contains("        1  runs\n"), "{}", dry.all());
    assert_eq!(run_ids(&env, &[]).len(), 1, "a dry run deletes nothing");

    // Without a live engine the command opens the store itself.
    let done = env.baton(&["prune", "--older-than", "0s", "--json"]).expect(0).json();
    assert_eq!((done["runs"].as_u64(), done["signals"].as_u64()), (Some(1), Some(1)), "{done}");
    assert_eq!(done["dry_run"], false);
    assert!(run_ids(&env, &[]).is_empty());

    // With one, through its control socket; the server keeps history as --retain says.
    let store = env.store();
    let server = env
        .command(&["--store", store.to_str().unwrap(), "serve", "--retain", "runs=90d,every=1h"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton serve");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.join("control.sock").exists() {
        assert!(Instant::now() < deadline, "baton serve did not open its control socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    env.baton(&["run", &hello]).expect(0);
    let done = env.baton(&["prune", "--older-than", "0s"]).expect(0);
    assert!(done.stdout.contains("        1  runs\n"), "{}", done.all());
    assert!(run_ids(&env, &[]).is_empty());
    terminate(server).expect(0);

    let bad = env.baton(&["prune", "--older-than", "soon"]).expect(2);
    assert!(bad.stderr.contains("soon"), "{}", bad.all());
    let bad = env.baton(&["serve", "--retain", "logs=1d"]).expect(2);
    assert!(bad.stderr.contains("unknown kind `logs`"), "{}", bad.all());
}

// ---------------------------------------------------------------------------------------
// a PostgreSQL store

/// `baton --store URL ...` works as on a directory; a live engine on the database keeps
/// the other commands out, saying why, until cluster mode.
#[test]
fn a_postgresql_store_runs_lists_and_shows_like_a_directory() {
    let Some(url) = baton_pgtest::database() else { return };
    let env = Env::new();
    let file = env.file("good.yaml", GOOD);
    let done = env.raw(&["--store", &url, "run", &file, "--json"]).expect(0);
    let run = done.json();
    assert_eq!(run["run"]["status"], "SUCCEEDED", "{}", done.all());
    assert_eq!(step(&run, "report")["outputs"]["twice"], 84);
    let id = run["run"]["id"].as_str().unwrap().to_owned();

    let runs = env.raw(&["--store", &url, "runs", "--json"]).expect(0).json();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["id"], id.as_str());
    // BATON_HOME takes a URL too.
    let shown =
        Done::from(env.command(&["show", &id, "--json"]).env("BATON_HOME", &url).output().unwrap())
            .expect(0)
            .json();
    assert_eq!(
        statuses(&shown),
        pairs(&[
            ("extract", "SUCCEEDED"),
            ("wait", "SUCCEEDED"),
            ("report", "SUCCEEDED"),
            ("done", "SUCCEEDED")
        ])
    );
    let text = env.raw(&["--store", &url, "show", &id]).expect(0);
    assert!(text.stdout.contains("report"), "{}", text.all());

    let mut server = env
        .command(&["--store", &url, "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton serve");
    let mut line = String::new();
    BufReader::new(server.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("of the cluster"), "{line}");
    // Other commands go through the database: the serving engine drives what they start.
    env.raw(&["--store", &url, "register", &file]).expect(0);
    let started = env.raw(&["--store", &url, "start", "etl", "--json"]).expect(0).json();
    let started = started["run_id"].as_str().unwrap().to_owned();
    let waited = env.raw(&["--store", &url, "start", "etl", "--wait", "--json"]).expect(0);
    assert_eq!(waited.json()["run"]["status"], "SUCCEEDED", "{}", waited.all());
    let shown = env.raw(&["--store", &url, "show", &started, "--json"]).expect(0).json();
    let engines = env.raw(&["--store", &url, "engines", "--json"]).expect(0).json();
    let live: Vec<&serde_json::Value> =
        engines.as_array().unwrap().iter().filter(|e| e["alive"] == true).collect();
    assert_eq!(live.len(), 1, "{engines}");
    assert_eq!(live[0]["pid"], server.id(), "{engines}");
    assert_eq!(waited.json()["run"]["engine"], live[0]["id"], "the serving engine drove it");
    assert!(shown["run"]["engine"].is_string() || shown["run"]["status"] != "SUCCEEDED", "{shown}");
    let text = env.raw(&["--store", &url, "engines"]).expect(0);
    assert!(text.stdout.contains("live"), "{}", text.all());
    terminate(server).expect(0);
    env.raw(&["--store", &url, "runs"]).expect(0);
}

#[test]
fn serve_waits_for_a_database_that_is_not_up_yet() {
    let env = Env::new();
    // Nothing listens on this port: the database is "restarting".
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgresql://baton@127.0.0.1:{port}/baton");
    let server = env
        .command(&["--store", &url, "serve"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start baton serve");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let done = terminate(server);
    assert!(done.stderr.contains("waiting for the database (up to 60s)"), "{}", done.all());
    assert!(done.stderr.contains("connect failed"), "{}", done.all());
}

#[test]
fn engines_of_a_store_directory_is_the_engine_holding_it() {
    let env = Env::new();
    let listed = env.raw(&["--engine-id", "laptop", "engines", "--json"]).expect(0).json();
    let engines = listed.as_array().unwrap();
    assert_eq!(engines.len(), 1, "{listed}");
    assert_eq!((&engines[0]["id"], &engines[0]["alive"]), (&"laptop".into(), &true.into()));
    assert!(engines[0]["kinds"].as_array().unwrap().contains(&"shell".into()), "{listed}");
    let text = env.raw(&["engines"]).expect(0);
    assert!(text.stdout.contains("ENGINE") && text.stdout.contains("live"), "{}", text.all());
    let bad = env.raw(&["--engine-id", "no spaces", "runs"]).expect(2);
    assert!(bad.stderr.contains("engine id `no spaces`"), "{}", bad.all());
}

#[test]
fn a_store_url_with_a_bad_tls_mode_or_a_directory_engine_is_refused_clearly() {
    let env = Env::new();
    let tls = env.raw(&["--store", "postgresql://db/b?sslmode=verify", "runs"]).expect(2);
    assert!(tls.stderr.contains("sslmode=verify is not one of"), "{}", tls.all());
    let Some(url) = baton_pgtest::database() else { return };
    let sled = env.raw(&["--store", &url, "--store-engine", "sled", "runs"]).expect(3);
    assert!(sled.stderr.contains("is for a store directory"), "{}", sled.all());
}

#[test]
fn the_control_socket_refuses_a_client_of_another_user() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    // Our own files say who we are.
    let root = std::fs::metadata(env.path()).unwrap().uid() == 0;
    if !root || !Path::new("/usr/sbin/runuser").exists() {
        eprintln!("skipped: needs root and runuser to connect as another user");
        return;
    }
    let server = serve(&env);
    let socket = env.store().join("control.sock");
    // Opened up by hand, so that only the engine's own check (SO_PEERCRED) stands.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(env.store(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let client = concat!(
        "import socket, sys\n",
        "s = socket.socket(socket.AF_UNIX)\n",
        "s.connect(sys.argv[1])\n",
        "s.settimeout(10)\n",
        "try:\n",
        "    s.sendall(b'{\"command\": \"runs\"}\\n')\n",
        "    print('answer' if s.recv(4096) else 'closed')\n",
        "except (ConnectionResetError, BrokenPipeError):\n",
        "    print('closed')\n",
    );
    let out = Command::new("/usr/sbin/runuser")
        .args(["-u", "nobody", "--", "python3", "-c", client, socket.to_str().unwrap()])
        .output()
        .expect("run a client as nobody");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text.trim(), "closed", "a client of another user got an answer");
    // The owner still gets one.
    env.baton(&["runs", "--json"]).expect(0);
    terminate(server).expect(0);
}

#[test]
fn a_maestro_definition_imports_and_runs() {
    let env = Env::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/maestro/orders.json");
    let out = env.path().join("imported");
    let (file, out_dir) = (file.to_str().unwrap(), out.to_str().unwrap());

    let checked = env.baton(&["import", "maestro", "--check", "-o", out_dir, file]).expect(0);
    assert!(
        checked.stdout.contains("workflow `orders-daily` imports and is valid"),
        "{}",
        checked.all()
    );
    assert!(!out.exists(), "--check writes nothing");

    let done = env.baton(&["import", "maestro", "-o", out_dir, file, "--json"]).expect(0).json();
    assert_eq!(done[0]["workflow"], "orders-daily", "{done:#}");
    let yaml = out.join("orders-daily.yaml");
    let run = env.baton(&["run", yaml.to_str().unwrap(), "--json"]).expect(0).json();
    let got = statuses(&run);
    let want = [("count.orders", "SUCCEEDED"), ("big.day", "SKIPPED"), ("small.day", "SUCCEEDED")];
    assert_eq!(got, want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec(), "{run:#}");

    // A construct Baton has no counterpart for: refused, exit 2, nothing written.
    let hard = env.file(
        "hard.json",
        r#"{"id": "hard", "steps": [{"foreach": {"id": "each",
            "params": {"loop_params": {"type": "MAP", "value": {"a": {"expression": "new Thing()", "type": "LONG_ARRAY"}}}},
            "steps": [{"step": {"id": "in", "type": "NoOp"}}]}}]}"#,
    );
    let refused = env.baton(&["import", "maestro", "-o", out_dir, &hard]).expect(2);
    let want = "hard.json: 1 construct not translated:\n  step `each`: loop_params.a: `new` (a Java object) is not translated";
    assert!(refused.stderr.contains(want), "{}", refused.all());
    assert!(refused.stdout.contains("0 imported, 1 refused"), "{}", refused.all());
    assert!(!out.join("hard.yaml").exists());
}

#[test]
fn the_typed_params_example_needs_its_required_params_and_computes_the_others() {
    let env = Env::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/typed-params.yaml");
    let file = file.to_str().unwrap();
    let refused = env.baton(&["run", file]).expect(2);
    assert!(
        refused.stderr.contains("parameter `day` (string) has no default; give it (`-p day=...`"),
        "{}",
        refused.all()
    );
    let args =
        ["run", file, "-p", "day=2026-12-01", "-p", r#"tables=["events","users"]"#, "--json"];
    let done = env.baton(&args).expect(0).json();
    assert_eq!(
        step(&done, "report")["log_tail"],
        "loading 2026-12-01 (2 tables since 2026-11-24)",
        "{done:#}"
    );
    assert_eq!(done["run"]["params"]["since"], "2026-11-24", "{done:#}");
}

#[test]
fn the_cache_example_runs_its_cached_step_once_and_show_and_cache_say_so() {
    let env = Env::new();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/cache.yaml");
    let file = file.to_str().unwrap();
    let log = env.path().join("features.log");
    let lines = || std::fs::read_to_string(&log).map_or(0, |t| t.lines().count());
    env.baton(&["run", file]).expect(0);
    env.baton(&["run", file]).expect(0);
    assert_eq!(lines(), 1, "the second run was served from the cache");
    let ids = run_ids(&env, &[]);
    let details = env.baton(&["show", &ids[1], "--json"]).expect(0).json();
    let build = step(&details, "build_features");
    assert_eq!(build["status"], "SUCCEEDED");
    assert_eq!(build["cached_from"]["run_id"], ids[0].as_str(), "{build:#}");
    assert_eq!(build["cached_from"]["step_id"], "build_features");
    assert_eq!(step(&details, "report")["status"], "SUCCEEDED");
    let shown = env.baton(&["show", &ids[1]]).expect(0);
    let marked = format!("(cached from run {}, step build_features); rows=42", ids[0]);
    assert!(shown.stdout.contains(&marked), "{}", shown.all());
    let first = env.baton(&["show", &ids[0]]).expect(0);
    assert!(!first.stdout.contains("cached"), "{}", first.all());
    let timeline = env.baton(&["timeline", &ids[1]]).expect(0);
    assert!(timeline.stdout.contains("cached: from run"), "{}", timeline.all());

    let listed = env.baton(&["cache", "list"]).expect(0);
    assert!(listed.stdout.starts_with("WORKFLOW"), "{}", listed.all());
    assert!(listed.stdout.contains("cache_demo  build_features"), "{}", listed.all());
    assert!(listed.stdout.contains(&ids[0]), "{}", listed.all());
    let json = env.baton(&["cache", "list", "cache_demo", "--json"]).expect(0).json();
    let entries = json.as_array().expect("a list");
    assert_eq!(entries.len(), 1, "{json:#}");
    assert_eq!(entries[0]["from_run"], ids[0].as_str());
    assert!(entries[0]["size"].as_u64().unwrap() > 0 && entries[0]["key"].as_str().is_some());
    let none = env.baton(&["cache", "list", "other"]).expect(0);
    assert_eq!(none.stdout, "no cache entries\n");

    env.baton(&["run", file, "-p", "date=2026-01-02"]).expect(0);
    assert_eq!(lines(), 2, "another date is another key");
    let cleared = env.baton(&["cache", "clear", "cache_demo", "build_features"]).expect(0);
    assert_eq!(cleared.stdout, "removed 2 cache entries\n", "{}", cleared.all());
    env.baton(&["run", file]).expect(0);
    assert_eq!(lines(), 3, "a cleared entry runs the step again");
    let cleared = env.baton(&["cache", "clear"]).expect(0);
    assert_eq!(cleared.stdout, "removed 1 cache entry\n", "{}", cleared.all());
}

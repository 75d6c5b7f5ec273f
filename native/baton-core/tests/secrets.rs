//! Secrets: a run's secret reaches its steps (a shell step's environment, a host step's
//! context) and appears in nothing the engine stores or shows.

use baton_core::model::{Format, Source};
use baton_core::steps::{Field, Outputs, StepContext, StepFuture, StepKind, StepOutcome};
use baton_core::{Engine, EngineError, RunStatus, StepStatus, StoreEngine, WorkflowDef};
use indexmap::IndexMap;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

mod support;
use support::*;

const SECRET: &str = "tok-9f8e7d6c5b4a";

/// What a [`Probe`] attempt was given: the run's params and the step's.
type Given = (IndexMap<String, Value>, IndexMap<String, Value>);

/// A host step kind that records the params it was given, and gives the secret back in an
/// output, its log and (with `fail: true`) its error.
#[derive(Default)]
struct Probe {
    seen: Mutex<Vec<Given>>,
}

impl StepKind for &'static Probe {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }
    fn run(&self, ctx: StepContext) -> StepFuture {
        self.seen.lock().unwrap().push(((*ctx.params).clone(), ctx.step_params.clone()));
        let token = ctx.params.get("token").cloned().unwrap_or_default();
        let fail = ctx.step_params.get("fail") == Some(&json!(true));
        Box::pin(async move {
            let echo = format!("the token is {}", token.as_str().unwrap_or_default());
            let mut outcome = if fail {
                StepOutcome::failure(echo.clone())
            } else {
                let mut out = Outputs::new();
                out.insert("echo".into(), json!(echo));
                out.insert("nested".into(), json!({"list": [token]}));
                StepOutcome::success(out)
            };
            outcome.log_tail = Some(echo);
            outcome
        })
    }
}

fn def(yaml: &str) -> WorkflowDef {
    Source::new("test.yaml", yaml, Format::Yaml).parse().unwrap()
}

fn secret_params() -> IndexMap<String, Value> {
    IndexMap::from([("token".to_string(), json!(SECRET))])
}

const DEPLOY: &str = r#"
id: deploy
params: {region: eu}
secrets: [token]
steps:
  - id: login
    type: shell
    command: 'echo "logging in to ${region} with ${token}"; echo "token=${token}" >> $BATON_OUTPUT'
  - id: env
    type: shell
    env: {API_TOKEN: "${token}"}
    command: 'test "$API_TOKEN" = "${token}" && echo "env has $API_TOKEN" >&2'
    depends_on: [login]
  - {id: host, type: probe, params: {auth: "Bearer ${token}"}, depends_on: [login]}
  - {id: host_fails, type: probe, params: {fail: true}, failure_mode: ignore_failure}
  - {id: shell_fails, type: shell, command: 'echo "bad ${token}"; exit 3', failure_mode: ignore_failure}
  - {id: child, type: subworkflow, workflow: child, params: {key: "${token}"}}
  - id: loop
    type: foreach
    over: "${range(0, 2)}"
    steps:
      - {id: each, type: shell, command: 'echo "item ${item} ${token}"; echo "seen=${token}" >> $BATON_OUTPUT'}
"#;

const CHILD: &str = r#"
id: child
params: {key: ""}
steps:
  - {id: use, type: shell, command: 'echo "child got ${key}"'}
"#;

/// Every byte of every file under `dir`.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            out.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    out
}

fn holds(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

#[tokio::test]
async fn a_secret_reaches_its_steps_and_appears_in_nothing_stored_or_shown() {
    for store_engine in [StoreEngine::Redb, StoreEngine::Sled] {
        let dir = tempfile::tempdir().unwrap();
        let probe: &'static Probe = leak(Probe::default());
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let s = Setup::open(
            Engine::builder()
                .store_dir(dir.path())
                .store_engine(store_engine)
                .step_kind("probe", Arc::new(probe))
                .listener(Arc::new(move |e: &baton_core::Event| {
                    sink.lock().unwrap().push(e.clone())
                })),
        );
        s.engine.register(def(CHILD)).unwrap();
        let wf = Arc::new(s.engine.compile(def(DEPLOY)).unwrap());
        let id = s.engine.start(wf, secret_params()).await.unwrap();
        let run = finish(&s, &id).await;
        assert_eq!(run.status, RunStatus::Succeeded, "{:?}", statuses(&s.engine, &id));

        // The steps got the value: the shell step's environment held it (its test passed),
        // and the host step's context.
        assert_eq!(status_of(&s.engine, &id, "env").0, StepStatus::Succeeded);
        let seen = probe.seen.lock().unwrap().clone();
        let host = seen.iter().find(|(_, p)| p.contains_key("auth")).unwrap();
        assert_eq!(host.0["token"], json!(SECRET));
        assert_eq!(host.1["auth"], json!(format!("Bearer {SECRET}")));

        // What the engine shows: the run, its steps, a child and its iterations' rollup,
        // the timeline and the events delivered.
        assert_eq!(run.params["token"], json!("***"));
        assert_eq!(run.secrets, vec!["token".to_string()]);
        let details = s.engine.details(&id).unwrap();
        let login = &details.steps[0].record;
        assert_eq!(login.outputs["token"], json!("***"));
        assert_eq!(login.log_tail.as_deref(), Some("logging in to eu with ***"));
        let failed = &details.steps[3].record;
        assert_eq!(failed.error.as_deref(), Some("the token is ***"));
        let child = s.engine.details(&format!("{id}:child")).unwrap();
        assert_eq!(child.run.params["key"], json!("***"), "a param given from a secret is one");
        assert_eq!(child.steps[0].record.log_tail.as_deref(), Some("child got ***"));
        let mut shown = serde_json::to_string(&details).unwrap();
        shown += &serde_json::to_string(&child).unwrap();
        shown += &serde_json::to_string(&s.engine.runs().unwrap()).unwrap();
        shown += &serde_json::to_string(&s.engine.timeline(&id).unwrap()).unwrap();
        shown += &serde_json::to_string(&*events.lock().unwrap()).unwrap();
        for i in 0..2 {
            let iteration = s.engine.details(&format!("{id}:loop:{i}")).unwrap();
            assert_eq!(iteration.steps[0].record.log_tail, Some(format!("item {i} ***")));
            shown += &serde_json::to_string(&iteration).unwrap();
        }
        assert!(shown.contains("***"));
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("tok-9f8e"), "no part of it either");

        // The store: the value is nowhere in its files once the run has ended.
        s.engine.close().await;
        drop(s);
        for (path, bytes) in files_under(dir.path()) {
            assert!(!holds(&bytes, SECRET), "{store_engine}: {} holds the secret", path.display());
        }
    }
}

#[tokio::test]
async fn an_unfinished_run_resumes_with_its_secret_and_forgets_it_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let probe: &'static Probe = leak(Probe::default());
    let yaml = "id: r\nsecrets: [token]\nsteps:\n  - {id: wait, type: sleep, duration: 1h}\n  - {id: use, type: probe, depends_on: [wait]}\n";
    let open = |dir: &std::path::Path| {
        Setup::open(Engine::builder().store_dir(dir).step_kind("probe", Arc::new(probe)))
    };
    let id;
    {
        let s = open(dir.path());
        id = s.engine.start(workflow(&s.engine, yaml), secret_params()).await.unwrap();
        s.settle().await;
        assert_eq!(status_of(&s.engine, &id, "wait").0, StepStatus::Running);
        s.engine.close().await;
    }
    // While the run is unfinished, the store keeps the value, sealed: not in clear.
    for (path, bytes) in files_under(dir.path()) {
        assert!(!holds(&bytes, SECRET), "{} holds the secret", path.display());
    }
    let s = open(dir.path());
    s.engine.recover().unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Succeeded);
    assert_eq!(probe.seen.lock().unwrap()[0].0["token"], json!(SECRET), "resumed with it");
    // A finished run's secrets are gone: a restart cannot have them, and says so.
    let err = s.engine.restart(&id, None).await.unwrap_err();
    assert!(err.to_string().contains("secrets are not kept once it ends"), "{err}");
}

#[tokio::test]
async fn a_start_without_its_secret_is_refused_naming_it() {
    let s = engine_with(None, None);
    let wf =
        workflow(&s.engine, "id: s\nsecrets: [token, other]\nsteps:\n  - {id: a, type: noop}\n");
    let err = s.engine.start(wf.clone(), secret_params()).await.unwrap_err();
    assert!(matches!(&err, EngineError::MissingSecret { name } if name == "other"), "{err}");
    assert!(err.to_string().contains("`other` is not given"), "{err}");
    assert_eq!(err.kind(), baton_core::error::ErrorKind::Param);
    // A registered workflow's start refuses it the same way, and a child's too.
    s.engine.register(def("id: c\nsecrets: [key]\nsteps:\n  - {id: a, type: noop}\n")).unwrap();
    let err = s.engine.start_registered("c", IndexMap::new()).await.unwrap_err();
    assert!(err.to_string().contains("secret `key` is not given"), "{err}");
    let parent =
        workflow(&s.engine, "id: p\nsteps:\n  - {id: sub, type: subworkflow, workflow: c}\n");
    let id = s.engine.start(parent, IndexMap::new()).await.unwrap();
    let run = finish(&s, &id).await;
    assert!(run.error.unwrap().contains("secret `key` is not given"));
}

#[tokio::test]
async fn definitions_that_would_show_a_secret_are_refused() {
    let s = engine_with(None, None);
    let errors = |yaml: &str| -> String {
        match s.engine.compile(def(yaml)) {
            Ok(_) => panic!("accepted: {yaml}"),
            Err(e) => e.to_string(),
        }
    };
    let e =
        errors("id: a\nparams: {token: x}\nsecrets: [token]\nsteps:\n  - {id: a, type: noop}\n");
    assert!(e.contains("secrets.0") && e.contains("a secret has no default"), "{e}");
    let e = errors("id: a\nsecrets: [t, t]\nsteps:\n  - {id: a, type: noop}\n");
    assert!(e.contains("`t` is listed twice"), "{e}");
    let e = errors("id: a\nsecrets: [t]\nsteps:\n  - {id: a, type: foreach, over: \"${split(t, ',')}\", steps: [{id: b, type: noop}]}\n");
    assert!(e.contains("over") && e.contains("`t` is a secret"), "{e}");
    let e = errors("id: a\nsecrets: [t]\nsteps:\n  - {id: a, type: noop, emit_signals: [{name: s, params: {v: \"${t}\"}}]}\n");
    assert!(e.contains("emit_signals.0.params.v") && e.contains("`t` is a secret"), "{e}");
    // A loop body sees the secret as one too.
    let e = errors("id: a\nsecrets: [t]\nsteps:\n  - {id: l, type: foreach, over: \"${range(0, 2)}\", steps: [{id: b, type: noop, emit_signals: [{name: s, params: {v: \"${t}\"}}]}]}\n");
    assert!(e.contains("`t` is a secret"), "{e}");
    let e = errors("id: a\nsecrets: [t]\ntriggers: [{cron: '0 2 * * *', params: {t: x}}]\nsteps:\n  - {id: a, type: noop}\n");
    assert!(e.contains("triggers.0.params.t") && e.contains("a trigger cannot give it"), "{e}");
    // Where a secret may go: commands, env, params, conditions; a loop body sees it.
    s.engine
        .compile(def("id: a\nsecrets: [t]\nsteps:\n  - {id: a, type: shell, command: 'x ${t}', env: {T: '${t}'}, when: \"${t != ''}\"}\n  - {id: l, type: foreach, over: \"${range(0, 2)}\", steps: [{id: b, type: shell, command: 'y ${t}'}]}\n"))
        .unwrap();
}

#[tokio::test]
async fn a_secret_is_not_written_into_a_command_s_text() {
    let s = engine_with(None, None);
    let wf = workflow(
        &s.engine,
        "id: h\nsecrets: [token]\nsteps:\n  - {id: a, type: shell, command: \"cat <<'EOF'\\n${token}\\nEOF\"}\n",
    );
    let id = s.engine.start(wf, secret_params()).await.unwrap();
    let run = finish(&s, &id).await;
    assert_eq!(run.status, RunStatus::Failed);
    let error = s.engine.details(&id).unwrap().steps[0].record.error.clone().unwrap();
    assert!(error.contains("quoted here-document"), "{error}");
    assert!(!error.contains(SECRET));
}

#[tokio::test]
async fn a_trigger_of_a_workflow_with_secrets_records_why_it_started_nothing() {
    let s = engine_with(None, None);
    s.engine
        .register(def("id: t\nsecrets: [token]\ntriggers: [{cron: '0 * * * *'}]\nsteps:\n  - {id: a, type: noop}\n"))
        .unwrap();
    baton_core::triggers::start_scheduler(&s.engine);
    s.advance(std::time::Duration::from_secs(3600)).await;
    let firings = s.engine.firings("t").unwrap();
    assert_eq!(firings.len(), 1, "{firings:?}");
    assert_eq!(firings[0].run_id, None);
    let reason = firings[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("secret `token` is not given"), "{reason}");
}

//! `baton_maestro::import` on definitions written for these tests: what maps, how it runs
//! in Baton, and what is refused with its place and reason.

use baton_core::model::{Format, Source};
use baton_core::{Engine, RunStatus, StepStatus};
use baton_maestro::{import, ImportError};
use indexmap::IndexMap;
use serde_json::json;
use std::sync::Arc;

/// A create request in Maestro's JSON: a DAG with step params, an edge condition on the
/// source step's param, one read with `getFromStep`, a Sleep step, a retry policy.
const REQUEST: &str = r#"{
  "properties": {"owner": "data-eng", "run_strategy": "parallel", "step_concurrency": 5},
  "workflow": {
    "id": "orders.daily",
    "name": "Daily orders",
    "params": {"threshold": {"value": 10, "type": "LONG"}, "zone": {"expression": "'UTC'", "type": "STRING"},
               "double": {"expression": "params.get('threshold') * 2", "type": "LONG"}},
    "steps": [
      {"step": {"id": "count.rows", "type": "NoOp",
        "params": {"rows": {"value": 5, "type": "LONG"}, "label": {"value": "day ${zone}", "type": "STRING"}},
        "transition": {"successors": {"big": "rows > threshold", "small": "rows <= threshold"}}}},
      {"step": {"id": "big", "type": "NoOp"}},
      {"step": {"id": "small", "type": "Sleep", "params": {"sleep_seconds": {"value": 0, "type": "LONG"},
                 "twice": {"expression": "params.getFromStep('count.rows', 'rows') * 2", "type": "LONG"}},
        "retry_policy": {"error_retry_limit": 1, "backoff": {"type": "FIXED_BACKOFF", "error_retry_backoff_in_secs": 5}},
        "transition": {"successors": {"report": "true"}}}},
      {"step": {"id": "report", "type": "Notebook", "params": {"path": {"value": "s3://reports/x.ipynb", "type": "STRING"}}}}
    ]
  }
}"#;

fn imported(text: &str) -> baton_maestro::Imported {
    import("test.json", text).unwrap_or_else(|e| panic!("{e}"))
}

fn refusals(file: &str, text: &str) -> Vec<String> {
    match import(file, text) {
        Err(ImportError::Refused { refusals, .. }) => {
            refusals.iter().map(ToString::to_string).collect()
        }
        other => panic!("expected refusals, got {other:?}"),
    }
}

#[test]
fn a_create_request_maps_to_baton_with_maestros_defaults_written_out() {
    let i = imported(REQUEST);
    assert_eq!(i.id, "orders.daily");
    let def: serde_yaml::Value = serde_yaml::from_str(&i.yaml).unwrap();
    let steps = def["steps"].as_sequence().unwrap();
    let step = |id: &str| steps.iter().find(|s| s["id"].as_str() == Some(id)).unwrap().clone();
    assert_eq!(def["run_strategy"].as_str(), Some("parallel"));
    assert_eq!(def["max_concurrent_runs"].as_u64(), Some(20), "Maestro's parallel default");
    assert_eq!(def["timeout"].as_str(), Some("10d"), "Maestro's default run timeout");
    assert_eq!(def["params"]["zone"].as_str(), Some("UTC"), "a constant expression is its value");
    assert_eq!(
        def["computed"]["double"].as_str(),
        Some("${threshold * 2}"),
        "computed at the start"
    );
    assert_eq!(step("big")["depends_on"][0].as_str(), Some("count.rows"));
    assert_eq!(step("big")["when"].as_str(), Some("${steps['count.rows'].rows > threshold}"));
    assert_eq!(step("count.rows")["params"]["label"].as_str(), Some("day ${zone}"));
    assert_eq!(step("small")["type"].as_str(), Some("sleep"));
    assert_eq!(step("small")["duration"].as_str(), Some("0s"));
    assert_eq!(step("small")["params"]["twice"].as_str(), Some("${steps['count.rows'].rows * 2}"));
    assert_eq!(step("small")["retry"]["max_attempts"].as_u64(), Some(2));
    assert_eq!(step("small")["retry"]["backoff"].as_str(), Some("fixed"));
    assert_eq!(step("small")["retry"]["delay"].as_str(), Some("5s"));
    assert_eq!(step("small")["tags"][0].as_str(), Some("orders.daily.steps"));
    // A host type keeps Maestro's default retries: 3 attempts, exponential from 60 s.
    assert_eq!(step("report")["type"].as_str(), Some("Notebook"));
    assert_eq!(step("report")["retry"]["max_attempts"].as_u64(), Some(3));
    assert_eq!(step("report")["retry"]["max_delay"].as_str(), Some("600s"));
    assert_eq!(i.host_types, vec!["Notebook".to_string()]);
    assert_eq!(i.limits, vec![("orders.daily.steps".to_string(), 5)]);
    assert!(i.notes.iter().any(|n| n.contains("owner")), "{:?}", i.notes);
}

#[tokio::test]
async fn an_imported_workflow_runs_its_branches_as_maestro_would() {
    // The same request without the host type, so that it runs here.
    let text = REQUEST
        .replace(r#""transition": {"successors": {"report": "true"}}"#, r#""transition": {}"#);
    let report = text
        .find(
            r#",
      {"step": {"id": "report""#,
        )
        .unwrap();
    let text = format!("{}\n    ]\n  }}\n}}", &text[..report]);
    let i = imported(&text);
    let engine = Engine::builder().open().unwrap();
    let source = Source::new("orders.yaml", i.yaml.clone(), Format::Yaml);
    let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
    let run = engine.start(wf.clone(), IndexMap::new()).await.unwrap();
    assert_eq!(engine.wait(&run).await.unwrap().status, RunStatus::Succeeded);
    let status = |run: &str, id: &str| {
        engine.details(run).unwrap().steps.into_iter().find(|s| s.id == id).unwrap().record.status
    };
    assert_eq!(status(&run, "big"), StepStatus::Skipped, "5 rows is not above 10");
    assert_eq!(status(&run, "small"), StepStatus::Succeeded);
    let details = engine.details(&run).unwrap();
    let small = details.steps.iter().find(|s| s.id == "small").unwrap();
    assert_eq!(small.record.outputs.get("twice"), Some(&serde_json::json!(10)));

    let mut params = IndexMap::new();
    params.insert("threshold".to_string(), serde_json::json!(2));
    let run = engine.start(wf, params).await.unwrap();
    assert_eq!(engine.wait(&run).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!(status(&run, "big"), StepStatus::Succeeded);
    assert_eq!(status(&run, "small"), StepStatus::Skipped);
    engine.close().await;
}

#[test]
fn the_dsl_yaml_reads_as_the_json_does() {
    let dsl = r#"
Workflow:
  id: branches
  run_strategy: sequential
  limit: 3
  jobs:
    - job:
        id: count
        type: NoOp
        rows: 7
        transition:
          - IF rows > limit THEN big
          - OTHERWISE small
    - job: { id: big, type: NoOp, '!half': "params.get('limit') / 2" }
    - job: { id: small, type: NoOp }
"#;
    let i = import("branches.yaml", dsl).unwrap_or_else(|e| panic!("{e}"));
    let def: serde_yaml::Value = serde_yaml::from_str(&i.yaml).unwrap();
    let steps = def["steps"].as_sequence().unwrap();
    assert_eq!(def["params"]["limit"].as_u64(), Some(3));
    assert_eq!(steps[1]["when"].as_str(), Some("${count.rows > limit}"));
    assert_eq!(steps[1]["params"]["half"].as_str(), Some("${limit / 2}"));
    assert_eq!(steps[2]["when"].as_str(), Some("${!(count.rows > limit)}"));
}

#[test]
fn loops_and_subworkflows_map_to_baton_kinds() {
    let text = r#"{"id": "nested", "params": {"child": {"value": "x", "type": "STRING"}},
      "steps": [
        {"foreach": {"id": "per_day", "concurrency": 4,
          "params": {"loop_params": {"type": "MAP", "value": {"day": {"expression": "Util.dateIntsBetween(20200101, 20200104, 1)", "type": "LONG_ARRAY"}}}},
          "steps": [{"step": {"id": "load", "type": "NoOp", "params": {"d": {"expression": "day + 0", "type": "LONG"}}}}]}},
        {"subworkflow": {"id": "publish", "params": {
          "subworkflow_id": {"value": "publisher", "type": "STRING"},
          "subworkflow_version": {"value": "3", "type": "STRING"},
          "table": {"value": "orders", "type": "STRING"}}}}
      ]}"#;
    let i = imported(text);
    let def: serde_yaml::Value = serde_yaml::from_str(&i.yaml).unwrap();
    let (each, sub) = (&def["steps"][0], &def["steps"][1]);
    let loop_text = r#"{"id": "count", "steps": [{"while": {"id": "up", "condition": "i <= 20200105",
        "params": {"loop_params": {"type": "MAP", "value": {"i": {"value": 20200101, "type": "LONG"}}}},
        "steps": [{"step": {"id": "job.1", "type": "NoOp", "params": {"i": {"expression": "i+1", "type": "LONG"}}}}]}}]}"#;
    let looped: serde_yaml::Value = serde_yaml::from_str(&imported(loop_text).yaml).unwrap();
    let up = &looped["steps"][0];
    assert_eq!(up["carry"]["i"].as_u64(), Some(20200101));
    assert_eq!(up["condition"].as_str(), Some("${i <= 20200105}"));
    assert_eq!(
        up["steps"][0]["params"]["i"].as_str(),
        Some("${i + 1}"),
        "the body's param carries the value on"
    );
    let product = r#"{"id": "grid", "steps": [{"foreach": {"id": "each",
        "params": {"loop_params": {"type": "MAP", "value": {"i": {"value": [1, 2], "type": "LONG_ARRAY"},
                                                             "j": {"expression": "Util.intsBetween(0, 3, 1)", "type": "LONG_ARRAY"}}}},
        "steps": [{"step": {"id": "job", "type": "NoOp", "params": {"k": {"expression": "i * 10 + j", "type": "LONG"}}}}]}}]}"#;
    let grid: serde_yaml::Value = serde_yaml::from_str(&imported(product).yaml).unwrap();
    let product_step = &grid["steps"][0];
    assert_eq!(product_step["over"]["i"][1].as_u64(), Some(2));
    assert_eq!(product_step["over"]["j"].as_str(), Some("${range(0, 3, 1)}"));
    assert_eq!(product_step["steps"][0]["params"]["k"].as_str(), Some("${i * 10 + j}"));
    assert_eq!(each["over"].as_str(), Some("${date_ints_between(20200101, 20200104, 1)}"));
    assert_eq!(each["as"].as_str(), Some("day"));
    assert_eq!(each["max_parallel"].as_u64(), Some(4));
    assert_eq!(each["steps"][0]["params"]["d"].as_str(), Some("${day + 0}"));
    assert_eq!(sub["workflow"].as_str(), Some("publisher"));
    assert_eq!(sub["version"].as_u64(), Some(3));
    assert_eq!(
        sub["inherit_params"].as_bool(),
        Some(true),
        "Maestro passes params down by default"
    );
    assert_eq!(sub["params"]["table"].as_str(), Some("orders"));
}

#[test]
fn what_baton_cannot_express_is_refused_naming_where_and_why() {
    let text = r#"{"workflow": {"id": "hard",
      "params": {"month": {"expression": "new Random(7).nextInt();", "type": "STRING"}},
      "signal_triggers": [{"definitions": {"a": {}, "b": {}}, "condition": "a > 1"}],
      "steps": [
        {"step": {"id": "a", "type": "NoOp", "params": {"x": {"value": 1, "type": "LONG"}},
          "transition": {"successors": {"c": "x > 0", "b": "true"}}}},
        {"step": {"id": "b", "type": "NoOp", "params": {"y": {"expression": "params.getFromSignal('s', 'p')", "type": "LONG"}},
          "transition": {"successors": {"c": "true"}}}},
        {"step": {"id": "c", "type": "NoOp"}},
        {"subworkflow": {"id": "fire", "sync": false, "params": {"subworkflow_id": {"value": "other", "type": "STRING"}}}},
        {"while": {"id": "loop", "condition": "i < 3", "params": {"loop_params": {"type": "MAP", "value": {"i": {"value": 0, "type": "LONG"}}}},
          "steps": [{"step": {"id": "inc", "type": "NoOp"}}]}}
      ]}}"#;
    let found = refusals("hard.json", text);
    let expect = [
        "workflow: params.month: `new Random(7).nextInt();`: `new` (a Java object) is not translated",
        "workflow: signal_triggers.0: the condition `a > 1` of a trigger joining signals is not translated",
    ];
    for want in expect {
        assert!(found.iter().any(|f| f.starts_with(want)), "missing {want:?} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    let message = import("hard.json", text).unwrap_err().to_string();
    assert!(message.starts_with("hard.json: 2 constructs not translated:"), "{message}");
}

#[test]
fn a_broken_maestro_definition_is_refused_by_baton_validation_with_its_place() {
    let cycle = r#"{"id": "loop", "steps": [
        {"step": {"id": "a", "type": "NoOp", "transition": {"successors": {"b": "true"}}}},
        {"step": {"id": "b", "type": "NoOp", "transition": {"successors": {"a": "true"}}}}]}"#;
    match import("loop.json", cycle) {
        Err(ImportError::Invalid { errors, .. }) => {
            assert!(errors.to_string().contains("dependency cycle"), "{errors}");
        }
        other => panic!("{other:?}"),
    }
    match import("x.json", "[1, 2]") {
        Err(ImportError::Unreadable { reason, .. }) => {
            assert!(reason.contains("is a map"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_join_of_conditional_edges_runs_when_one_edge_is_taken() {
    // Maestro's own shape: job.3 branches on its param; job.6 joins the branch and the
    // path through job.4 and job.5, either of which may be skipped.
    let text = r#"{"id": "join", "params": {"p0": {"value": 15, "type": "LONG"}}, "steps": [
        {"step": {"id": "job.3", "type": "NoOp", "params": {"p2": {"expression": "params.get('p0') - 20", "type": "LONG"}},
          "transition": {"successors": {"job.4": "p2 < 0", "job.6": "p2 >= 0"}}}},
        {"step": {"id": "job.4", "type": "NoOp", "params": {"p3": {"value": 15, "type": "LONG"}},
          "transition": {"successors": {"job.5": "params.getFromStep('job.3', 'p2') < 0"}}}},
        {"step": {"id": "job.5", "type": "NoOp", "transition": {"successors": {"job.6": "true"}}}},
        {"step": {"id": "job.6", "type": "NoOp"}}]}"#;
    let i = imported(text);
    let def: serde_yaml::Value = serde_yaml::from_str(&i.yaml).unwrap();
    let steps = def["steps"].as_sequence().unwrap();
    let join = steps.iter().find(|s| s["id"].as_str() == Some("job.6")).unwrap();
    assert_eq!(join["trigger"].as_str(), Some("none_failed_min_one_success"));
    let deps: Vec<&str> =
        join["depends_on"].as_sequence().unwrap().iter().filter_map(|d| d.as_str()).collect();
    assert_eq!(deps, ["job.3.to.job.6", "job.5"]);
    let edge = steps.iter().find(|s| s["id"].as_str() == Some("job.3.to.job.6")).unwrap();
    assert_eq!(edge["when"].as_str(), Some("${steps['job.3'].p2 >= 0}"));

    let engine = Engine::builder().open().unwrap();
    let source = Source::new("join.yaml", i.yaml.clone(), Format::Yaml);
    let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
    let status = |run: &str, id: &str| {
        engine.details(run).unwrap().steps.into_iter().find(|s| s.id == id).unwrap().record.status
    };
    // p2 = -5: the path through job.4 and job.5 is taken, the direct edge is not.
    let run = engine.start(wf.clone(), IndexMap::new()).await.unwrap();
    assert_eq!(engine.wait(&run).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!(status(&run, "job.5"), StepStatus::Succeeded);
    assert_eq!(status(&run, "job.3.to.job.6"), StepStatus::Skipped);
    assert_eq!(status(&run, "job.6"), StepStatus::Succeeded);
    // p2 = 30: only the direct edge is taken.
    let params = [("p0".to_string(), serde_json::json!(50))].into_iter().collect();
    let run = engine.start(wf, params).await.unwrap();
    assert_eq!(engine.wait(&run).await.unwrap().status, RunStatus::Succeeded);
    assert_eq!(status(&run, "job.4"), StepStatus::Skipped);
    assert_eq!(status(&run, "job.5"), StepStatus::Skipped);
    assert_eq!(status(&run, "job.6"), StepStatus::Succeeded);
    engine.close().await;
}

#[tokio::test]
async fn maestros_run_date_is_the_trigger_time_in_the_first_time_triggers_zone() {
    let text = r#"{"id": "dated",
      "time_triggers": [{"cron": "0 1 * * *", "timezone": "Asia/Tokyo"}],
      "params": {"day": {"expression": "TARGET_RUN_DATE", "type": "LONG"},
                 "hour": {"expression": "TARGET_RUN_HOUR", "type": "LONG"}},
      "steps": [{"step": {"id": "s", "type": "NoOp",
        "params": {"next": {"expression": "TARGET_RUN_DATE + 1", "type": "LONG"}}}}]}"#;
    let i = imported(text);
    assert!(
        i.yaml.contains("int(format_date(scheduled_at(), 'yyyyMMdd', 'Asia/Tokyo'))"),
        "{}",
        i.yaml
    );
    let engine = Engine::builder().open().unwrap();
    let source = Source::new("dated.yaml", i.yaml.clone(), Format::Yaml);
    let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
    let run = engine.start(wf, IndexMap::new()).await.unwrap();
    let record = engine.wait(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
    // A run by hand is due when it is made.
    let made = chrono::DateTime::from_timestamp_millis(record.created_ms as i64).unwrap();
    let tokyo = made.with_timezone(&chrono_tz::Asia::Tokyo);
    let read = |pattern: &str| -> i64 { tokyo.format(pattern).to_string().parse().unwrap() };
    let (day, hour) = (read("%Y%m%d"), read("%H"));
    let params = &record.params;
    assert_eq!((params["day"].clone(), params["hour"].clone()), (json!(day), json!(hour)));
    let s = &engine.details(&run).unwrap().steps[0];
    assert_eq!(s.record.outputs.get("next"), Some(&json!(day + 1)));

    // A trigger's condition is evaluated before any run: the run date is refused there.
    let condition = r#"{"id": "cond", "signal_triggers": [{"definitions": {"go": {}}, "condition": "TARGET_RUN_DATE > 0"}],
      "steps": [{"step": {"id": "s", "type": "NoOp"}}]}"#;
    let found = refusals("cond.json", condition);
    assert!(found.iter().any(|f| f.contains("TARGET_RUN_DATE")), "{found:#?}");
    engine.close().await;
}

#[tokio::test]
async fn joda_dates_and_a_loops_own_params_translate_and_run() {
    let text = r#"{"id": "joda",
      "params": {"month": {"expression": "new DateTime(1569018000000).withZone(DateTimeZone.forID('UTC')).monthOfYear().getAsText();", "type": "STRING"},
                 "day": {"expression": "return new DateTime(1569018000000).plusDays(2).toString('yyyyMMdd');", "type": "STRING"}},
      "steps": [{"foreach": {"id": "each", "params": {
          "tables": {"value": ["a", "b"], "type": "STRING_ARRAY"},
          "loop_params": {"value": {"t": {"expression": "tables;", "type": "STRING_ARRAY"}}, "type": "MAP"}},
        "steps": [{"step": {"id": "s", "type": "NoOp", "params": {"name": {"expression": "t + '_' + day", "type": "STRING"}}}}]}}]}"#;
    let i = imported(text);
    let engine = Engine::builder().open().unwrap();
    let source = Source::new("joda.yaml", i.yaml.clone(), Format::Yaml);
    let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
    let run = engine.start(wf, IndexMap::new()).await.unwrap();
    let record = engine.wait(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}\n{}", record.error, i.yaml);
    assert_eq!(
        (record.params["month"].clone(), record.params["day"].clone()),
        (json!("September"), json!("20190922"))
    );
    let each = &engine.details(&run).unwrap().steps[0];
    assert_eq!(each.record.outputs["outputs"]["s"]["name"], json!(["a_20190922", "b_20190922"]));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_of_several_signals_joins_them_on_their_join_keys() {
    let text = r#"{"id": "both", "params": {"who": {"value": "", "type": "STRING"}},
      "signal_triggers": [{"definitions": {
          "signal_a": {"match_params": {"foo": {"value": "bat", "operator": "="}}, "join_keys": ["updated_by"]},
          "signal_b": {"match_params": {"watermark": {"value": 10, "operator": ">="}}, "join_keys": ["posted_by"]}},
        "condition": "245 > 123", "dedup_expr": "return UUID.randomUUID().toString();"}],
      "steps": [{"step": {"id": "s", "type": "NoOp"}}]}"#;
    let i = imported(text);
    assert!(i.yaml.contains("signals:"), "{}", i.yaml);
    let engine = Engine::builder().open().unwrap();
    let source = Source::new("both.yaml", i.yaml.clone(), Format::Yaml);
    engine.register(source.parse().unwrap()).unwrap();
    baton_core::triggers::start_scheduler(&engine);
    let signal = |pairs: &[(&str, serde_json::Value)]| -> IndexMap<String, serde_json::Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    };
    // Give the scheduler a moment to read the new trigger (signals from then on count).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    engine
        .signal("signal_a", signal(&[("foo", json!("bat")), ("updated_by", json!("ann"))]))
        .await
        .unwrap();
    engine
        .signal("signal_b", signal(&[("watermark", json!(5)), ("posted_by", json!("ann"))]))
        .await
        .unwrap();
    engine
        .signal("signal_b", signal(&[("watermark", json!(20)), ("posted_by", json!("bob"))]))
        .await
        .unwrap();
    engine
        .signal("signal_b", signal(&[("watermark", json!(20)), ("posted_by", json!("ann"))]))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let runs = loop {
        let runs: Vec<_> =
            engine.runs().unwrap().into_iter().filter(|r| r.workflow_id == "both").collect();
        if !runs.is_empty() || std::time::Instant::now() > deadline {
            break runs;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(runs.len(), 1, "ann's a with ann's matching b: {runs:#?}");
    engine.close().await;
}

#[tokio::test]
async fn a_steps_signal_dependencies_become_steps_that_wait_for_the_signals() {
    let text = r#"{"id": "deps", "params": {"day": {"value": 20240101, "type": "LONG"}},
      "steps": [{"step": {"id": "load", "type": "NoOp",
        "signal_dependencies": [{"name": "prod_db/foo/bar", "match_params": {
            "date": {"param": {"expression": "day + 1", "type": "LONG"}, "operator": ">="},
            "kind": {"value": "full", "operator": "="}}}]}}]}"#;
    let i = imported(text);
    assert!(i.yaml.contains("load.signal.0"), "{}", i.yaml);
    let engine = Engine::builder().open().unwrap();
    let source = Source::new("deps.yaml", i.yaml.clone(), Format::Yaml);
    let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
    let signal = |pairs: &[(&str, serde_json::Value)]| -> IndexMap<String, serde_json::Value> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    };
    // Too early a date, and the wrong kind: neither releases the step.
    engine
        .signal("prod_db/foo/bar", signal(&[("date", json!(20240101)), ("kind", json!("full"))]))
        .await
        .unwrap();
    engine
        .signal("prod_db/foo/bar", signal(&[("date", json!(20240105)), ("kind", json!("delta"))]))
        .await
        .unwrap();
    let run = engine.start(wf, IndexMap::new()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let status = |id: &str| {
        engine.details(&run).unwrap().steps.into_iter().find(|s| s.id == id).unwrap().record.status
    };
    assert_eq!(status("load"), StepStatus::Pending, "load waits for its signal");
    engine
        .signal("prod_db/foo/bar", signal(&[("date", json!(20240102)), ("kind", json!("full"))]))
        .await
        .unwrap();
    let record = engine.wait(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}", record.error);
    let wait =
        engine.details(&run).unwrap().steps.into_iter().find(|s| s.id == "load.signal.0").unwrap();
    assert_eq!(wait.record.outputs.get("date"), Some(&json!(20240102)));
    engine.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_from_signal_reads_the_signal_that_started_the_run() {
    let text = r#"{"id": "on-ready",
      "signal_triggers": [{"definitions": {"db/ready": {}}}],
      "steps": [{"step": {"id": "s", "type": "NoOp",
        "params": {"day": {"expression": "params.getFromSignal('db/ready', 'date') + 1", "type": "LONG"}}}}]}"#;
    let i = imported(text);
    assert!(i.yaml.contains("signal_db_ready__date"), "{}", i.yaml);
    let engine = Engine::builder().open().unwrap();
    let source = Source::new("on-ready.yaml", i.yaml.clone(), Format::Yaml);
    engine.register(source.parse().unwrap()).unwrap();
    baton_core::triggers::start_scheduler(&engine);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let params: IndexMap<String, serde_json::Value> =
        [("date".to_string(), json!(20240101))].into();
    engine.signal("db/ready", params).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let run = loop {
        let runs: Vec<_> =
            engine.runs().unwrap().into_iter().filter(|r| r.workflow_id == "on-ready").collect();
        if let Some(run) = runs.first() {
            break run.id.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the signal started no run");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(engine.wait(&run).await.unwrap().status, RunStatus::Succeeded);
    let s = &engine.details(&run).unwrap().steps[0];
    assert_eq!(s.record.outputs.get("day"), Some(&json!(20240102)));
    engine.close().await;
}

#[tokio::test]
async fn get_from_subworkflow_reads_a_step_of_the_child_run() {
    let engine = Engine::builder().open().unwrap();
    let child = "id: child\nsteps:\n  - {id: job.1, type: noop, params: {rows: 41}}\n";
    engine.register(Source::new("child.yaml", child, Format::Yaml).parse().unwrap()).unwrap();
    let text = r#"{"id": "parent", "steps": [
        {"subworkflow": {"id": "sub", "params": {"subworkflow_id": {"value": "child", "type": "STRING"}},
          "transition": {"successors": {"after": "true"}}}},
        {"step": {"id": "after", "type": "NoOp",
          "params": {"rows": {"expression": "params.getFromSubworkflow('sub', 'job.1', 'rows') + 1", "type": "LONG"}}}}]}"#;
    let i = imported(text);
    let source = Source::new("parent.yaml", i.yaml.clone(), Format::Yaml);
    let wf = Arc::new(engine.compile(source.parse().unwrap()).unwrap());
    let run = engine.start(wf, IndexMap::new()).await.unwrap();
    let record = engine.wait(&run).await.unwrap();
    assert_eq!(record.status, RunStatus::Succeeded, "{:?}\n{}", record.error, i.yaml);
    let after = engine.details(&run).unwrap().steps.into_iter().find(|s| s.id == "after").unwrap();
    assert_eq!(after.record.outputs.get("rows"), Some(&json!(42)));
    engine.close().await;
}

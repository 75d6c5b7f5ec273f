//! Steps that run in the JVM: the engine's [`StepKind`] for `java` steps and host-defined
//! step types. An attempt becomes a task in a queue that Java threads drain (`nextTasks`)
//! and answer (`complete`), so no native thread ever calls into the JVM.
//!
//! A batch of tasks is one string, a line per item, so that Java dispatches an attempt
//! without parsing JSON (a step that reads nothing parses nothing):
//!
//! ```text
//! T<TAB>token<TAB>type<TAB>workflow id<TAB>step id<TAB>run id<TAB>attempt<TAB>idempotency key<TAB>{"params":…,"step_params":…,"inputs":…}
//! C<TAB>token                      (the attempt is cancelled)
//! ```
//!
//! No field holds a tab or a line break: ids and type names are ids (the engine refuses a
//! kind whose name is not, [`baton_core::model::is_id`]) and compact JSON escapes both.

use baton_core::activity::{Activity, Busy};
use baton_core::model::StepDef;
use baton_core::steps::{
    FailureClass, Field, FieldProblem, Outputs, StatusHandle, StepContext, StepFuture, StepKind,
    StepOutcome,
};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// A batch stops growing past this many bytes (it holds one item at least): tasks with
/// large params would otherwise make one Java string of the whole queue.
const BATCH_BYTES: usize = 8 << 20;

/// Attempts waiting for Java, and the answers on their way back.
#[derive(Default)]
pub struct TaskQueue {
    state: Mutex<State>,
    ready: Condvar,
    /// Counts attempts while Java works on them (engines on a virtual clock).
    activity: Option<Arc<Activity>>,
}

#[derive(Default)]
struct State {
    /// Task and cancellation lines not yet taken by Java.
    items: VecDeque<String>,
    /// Attempts under way in Java, by token.
    pending: HashMap<u64, Pending>,
    next_token: u64,
    closed: bool,
}

struct Pending {
    reply: oneshot::Sender<StepOutcome>,
    status: StatusHandle,
    /// Held while Java works on the attempt; dropped after the answer is sent on.
    busy: Option<Busy>,
}

/// How Java reports an attempt's end.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JavaOutcome {
    #[serde(default)]
    outputs: Option<Outputs>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    log_tail: Option<String>,
    /// The step said no retry can mend its failure (`ctx.fail`).
    #[serde(default, rename = "final")]
    is_final: bool,
}

impl TaskQueue {
    /// A queue whose attempts count as work in motion in `activity` while Java has them.
    pub fn counting(activity: Arc<Activity>) -> Self {
        TaskQueue { activity: Some(activity), ..TaskQueue::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update leaves the state consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up to `max` items as one batch (lines), waiting up to `timeout` for the first (an
    /// empty batch if none came); `None` once closed.
    pub fn take(&self, max: usize, timeout: Duration) -> Option<String> {
        let state = self.lock();
        let (mut state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |s| s.items.is_empty() && !s.closed)
            .unwrap_or_else(|e| e.into_inner());
        if state.closed && state.items.is_empty() {
            return None;
        }
        let mut n = 0;
        let mut bytes = 0;
        for item in state.items.iter().take(max.max(1)) {
            if n > 0 && bytes + item.len() > BATCH_BYTES {
                break;
            }
            bytes += item.len();
            n += 1;
        }
        let items: Vec<String> = state.items.drain(..n).collect();
        drop(state);
        Some(items.join("\n"))
    }

    /// Java's answer for `token`; a token no longer pending (the attempt was cancelled)
    /// is ignored.
    pub fn complete(&self, token: u64, outcome_json: &str) -> Result<(), serde_json::Error> {
        let outcome: JavaOutcome = serde_json::from_str(outcome_json)?;
        let Some(pending) = self.lock().pending.remove(&token) else { return Ok(()) };
        let result = match outcome.error {
            Some(error) => Err(error),
            None => Ok(outcome.outputs.unwrap_or_default()),
        };
        let class = if outcome.is_final { FailureClass::Final } else { FailureClass::Retryable };
        let _ = pending.reply.send(StepOutcome { result, log_tail: outcome.log_tail, class });
        // Only now: the answer has woken the engine, which counts from there.
        drop(pending.busy);
        Ok(())
    }

    /// The attempt behind `token` waits for `reason`, or runs again.
    pub fn waiting(&self, token: u64, reason: Option<String>) {
        let mut state = self.lock();
        let Some(pending) = state.pending.get_mut(&token) else { return };
        let status = pending.status.clone();
        match reason {
            Some(reason) => {
                // A waiting attempt is not work in motion; the status change is, until the
                // engine has recorded it.
                let idle = pending.busy.take();
                drop(state);
                status.waiting(reason);
                drop(idle);
            }
            None => {
                if pending.busy.is_none() {
                    pending.busy = self.activity.as_ref().map(|a| a.busy());
                }
                drop(state);
                status.running();
            }
        }
    }

    /// Wakes every taker; later takes return `None` once the queue is empty.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.pending.clear();
        drop(state);
        self.ready.notify_all();
    }

    fn push(&self, item: String) {
        self.lock().items.push_back(item);
        self.ready.notify_one();
    }
}

/// What a task carries besides its header: read by Java only when the step asks.
#[derive(Serialize)]
struct TaskBody<'a> {
    params: &'a IndexMap<String, Value>,
    step_params: &'a IndexMap<String, Value>,
    inputs: &'a IndexMap<String, Outputs>,
}

/// The line of a task (see the module's documentation).
fn task_line(
    token: u64,
    kind: &str,
    ctx: &StepContext,
    step_params: &IndexMap<String, Value>,
) -> String {
    let mut line = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        line,
        "T\t{token}\t{kind}\t{}\t{}\t{}\t{}\t{}\t",
        ctx.workflow_id, ctx.step_id, ctx.run_id, ctx.attempt, ctx.idempotency_key
    );
    let body = TaskBody { params: &ctx.params, step_params, inputs: &ctx.inputs };
    // Plain data always serializes, and serde_json writes UTF-8.
    let mut bytes = std::mem::take(&mut line).into_bytes();
    let _ = serde_json::to_writer(&mut bytes, &body);
    String::from_utf8(bytes).unwrap_or_default()
}

/// A step type whose code lives in the JVM.
pub struct HostKind {
    name: String,
    queue: Arc<TaskQueue>,
    /// Declared params (`None` = required) for host-defined types; `None` for `java`,
    /// whose steps take any params.
    params: Option<IndexMap<String, Option<Value>>>,
}

impl HostKind {
    /// The kind of `java` steps, bound by (workflow id, step id) on the Java side.
    pub fn java(queue: Arc<TaskQueue>) -> Self {
        HostKind { name: "java".into(), queue, params: None }
    }

    /// A stand-in for one step (a test double), run by the Java handler bound to `name`;
    /// it takes any params.
    pub fn stand_in(name: &str, queue: Arc<TaskQueue>) -> Self {
        HostKind { name: name.into(), queue, params: None }
    }

    /// A host-defined type with its parameters: a `null` default means required.
    pub fn declared(name: &str, queue: Arc<TaskQueue>, params: IndexMap<String, Value>) -> Self {
        let params =
            params.into_iter().map(|(k, v)| (k, Some(v).filter(|v| !v.is_null()))).collect();
        HostKind { name: name.into(), queue, params: Some(params) }
    }
}

impl StepKind for HostKind {
    fn fields(&self) -> &'static [Field] {
        &[Field::Params]
    }

    fn check(&self, step: &StepDef) -> Vec<FieldProblem> {
        let Some(declared) = &self.params else { return Vec::new() };
        let mut problems: Vec<FieldProblem> = step
            .options()
            .params
            .keys()
            .filter(|k| !declared.contains_key(*k))
            .map(|k| FieldProblem {
                field: format!("params.{k}"),
                message: format!(
                    "`{}` steps take no parameter `{k}`; they take: {}",
                    self.name,
                    declared.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
            .collect();
        problems.extend(
            declared
                .iter()
                .filter(|(k, default)| default.is_none() && !step.options().params.contains_key(*k))
                .map(|(k, _)| FieldProblem {
                    field: "params".into(),
                    message: format!("`{}` steps need the parameter `{k}`", self.name),
                }),
        );
        problems
    }

    fn run(&self, ctx: StepContext) -> StepFuture {
        let mut filled;
        let mut step_params = &ctx.step_params;
        if let Some(declared) = &self.params {
            filled = ctx.step_params.clone();
            for (k, default) in declared {
                if let (Some(d), false) = (default, filled.contains_key(k)) {
                    filled.insert(k.clone(), d.clone());
                }
            }
            step_params = &filled;
        }
        let (reply, answer) = oneshot::channel();
        let token = {
            let mut state = self.queue.lock();
            let token = state.next_token;
            state.next_token += 1;
            let busy = self.queue.activity.as_ref().map(|a| a.busy());
            state.pending.insert(token, Pending { reply, status: ctx.status.clone(), busy });
            token
        };
        self.queue.push(task_line(token, &self.name, &ctx, step_params));
        let queue = self.queue.clone();
        Box::pin(async move {
            tokio::select! {
                answer = answer => answer.unwrap_or_else(|_| StepOutcome::failure("the JVM side of the engine closed")),
                _ = ctx.cancel.cancelled() => {
                    queue.lock().pending.remove(&token);
                    queue.push(format!("C\t{token}"));
                    StepOutcome::failure("stopped")
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::model::{Format, Source};
    use baton_core::{Engine, RunStatus};
    use serde_json::json;

    fn def(yaml: &str) -> baton_core::WorkflowDef {
        Source::new("t.yaml", yaml, Format::Yaml).parse().unwrap()
    }

    /// One line of a batch, as the JSON object of its fields.
    fn fields(line: &str) -> Value {
        let f: Vec<&str> = line.split('\t').collect();
        match f[0] {
            "C" => json!({ "cancel": f[1].parse::<u64>().unwrap() }),
            _ => {
                assert_eq!(f.len(), 9, "{line}");
                let mut task: Value = serde_json::from_str(f[8]).unwrap();
                task["token"] = json!(f[1].parse::<u64>().unwrap());
                task["type"] = json!(f[2]);
                task["workflow_id"] = json!(f[3]);
                task["step_id"] = json!(f[4]);
                task["run_id"] = json!(f[5]);
                task["attempt"] = json!(f[6].parse::<u32>().unwrap());
                task["idempotency_key"] = json!(f[7]);
                task
            }
        }
    }

    async fn take(queue: &Arc<TaskQueue>) -> Value {
        let q = queue.clone();
        let batch = tokio::task::spawn_blocking(move || q.take(1, Duration::from_secs(5)).unwrap())
            .await
            .unwrap();
        assert!(!batch.contains('\n'), "one item asked for: {batch}");
        fields(&batch)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_task_goes_to_java_and_its_outputs_come_back() {
        let queue = Arc::new(TaskQueue::default());
        let engine = Engine::builder()
            .step_kind("java", Arc::new(HostKind::java(queue.clone())))
            .open()
            .unwrap();
        engine.register(def("id: w\nparams: {n: 1}\nsteps:\n  - {id: a, type: java}\n  - {id: b, type: java, depends_on: [a], params: {q: 'n=${a.rows}'}}\n")).unwrap();
        let run = engine.start_registered("w", IndexMap::new()).await.unwrap();
        let a = take(&queue).await;
        assert_eq!(a["step_id"], "a");
        assert_eq!(a["params"]["n"], 1);
        assert_eq!(a["idempotency_key"], format!("{run}/a/1"));
        queue.complete(a["token"].as_u64().unwrap(), r#"{"outputs": {"rows": 42}}"#).unwrap();
        let b = take(&queue).await;
        assert_eq!(b["inputs"]["a"]["rows"], 42);
        assert_eq!(b["step_params"]["q"], "n=42");
        queue
            .complete(
                b["token"].as_u64().unwrap(),
                r#"{"error": "java.lang.IllegalStateException: boom", "log_tail": "at X.run"}"#,
            )
            .unwrap();
        let done = engine.wait(&run).await.unwrap();
        assert_eq!(done.status, RunStatus::Failed);
        let details = engine.details(&run).unwrap();
        assert_eq!(
            details.steps[1].record.error.as_deref(),
            Some("java.lang.IllegalStateException: boom")
        );
        assert_eq!(details.steps[1].record.log_tail.as_deref(), Some("at X.run"));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_timed_out_task_is_cancelled_in_java() {
        let queue = Arc::new(TaskQueue::default());
        let engine = Engine::builder()
            .step_kind("java", Arc::new(HostKind::java(queue.clone())))
            .open()
            .unwrap();
        engine.register(def("id: w\nsteps:\n  - {id: a, type: java, timeout: 50ms}\n")).unwrap();
        let run = engine.start_registered("w", IndexMap::new()).await.unwrap();
        let task = take(&queue).await;
        let cancel = take(&queue).await;
        assert_eq!(cancel["cancel"], task["token"]);
        // A late answer for the cancelled attempt is ignored.
        queue.complete(task["token"].as_u64().unwrap(), r#"{"outputs": {}}"#).unwrap();
        let done = engine.wait(&run).await.unwrap();
        assert_eq!(done.status, RunStatus::Failed);
        assert!(done.error.unwrap().contains("timed out after 50ms"));
    }

    #[test]
    fn host_types_check_their_params_and_fill_defaults() {
        let queue = Arc::new(TaskQueue::default());
        let mut params = IndexMap::new();
        params.insert("query".to_string(), Value::Null);
        params.insert("cluster".to_string(), json!("default"));
        let kind = HostKind::declared("spark_sql", queue, params);
        let mut step = StepDef::new("s", "spark_sql");
        step.options_mut().params.insert("querry".into(), json!("select 1"));
        let problems: Vec<String> =
            kind.check(&step).into_iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
        assert_eq!(
            problems,
            vec![
                "params.querry: `spark_sql` steps take no parameter `querry`; they take: query, cluster".to_string(),
                "params: `spark_sql` steps need the parameter `query`".to_string(),
            ]
        );
    }

    #[test]
    fn a_batch_is_a_line_per_item_and_type_names_are_plain() {
        let queue = TaskQueue::default();
        queue.push("T\t1\tjava\tw\ta\tR\t1\tR/a/1\t{}".into());
        queue.push("C\t1".into());
        queue.push("T\t2\tjava\tw\tb\tR\t1\tR/b/1\t{}".into());
        let batch = queue.take(2, Duration::from_millis(1)).unwrap();
        assert_eq!(
            batch.lines().map(|l| fields(l)["token"].clone()).collect::<Vec<_>>(),
            vec![json!(1), Value::Null]
        );
        assert_eq!(fields(batch.lines().nth(1).unwrap())["cancel"], 1);
    }

    #[test]
    fn java_work_holds_virtual_time_until_it_is_answered() {
        use baton_core::testing::VirtualTime;
        const LIMIT: Duration = Duration::from_secs(10);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let time = VirtualTime::starting_at(0);
        let queue = Arc::new(TaskQueue::counting(time.activity()));
        let engine = {
            let _guard = rt.enter();
            time.configure(
                Engine::builder().step_kind("java", Arc::new(HostKind::java(queue.clone()))),
            )
            .open()
            .unwrap()
        };
        engine.register(def("id: w\nsteps:\n  - {id: a, type: java, timeout: 1m}\n")).unwrap();
        let run = rt.block_on(engine.start_registered("w", IndexMap::new())).unwrap();
        assert!(time.settle(Duration::from_millis(50)).is_err(), "the task is with Java");
        let task = queue.take(1, LIMIT).unwrap();
        let token = task.split('\t').nth(1).and_then(|t| t.parse().ok()).unwrap();
        queue.complete(token, r#"{"outputs": {"rows": 0}}"#).unwrap();
        assert_eq!(time.run_until_idle(&engine, LIMIT).unwrap(), 0, "no timer needed firing");
        let details = engine.details(&run).unwrap();
        assert_eq!(details.run.status, RunStatus::Succeeded);
        assert_eq!(details.steps[0].record.outputs["rows"], Value::from(0));
    }

    #[test]
    fn a_batch_stops_growing_past_its_size_in_bytes() {
        let queue = TaskQueue::default();
        let big = "x".repeat(BATCH_BYTES / 2 + 1);
        for _ in 0..3 {
            queue.push(big.clone());
        }
        queue.push("C\t1".into());
        let wait = Duration::from_millis(1);
        // One big item alone (two would exceed the bound), however many are asked for.
        assert_eq!(queue.take(10, wait).map(|b| b.len()), Some(big.len()));
        assert_eq!(queue.take(10, wait).map(|b| b.len()), Some(big.len()));
        assert_eq!(queue.take(10, wait), Some(format!("{big}\nC\t1")));
    }

    #[test]
    fn a_closed_queue_answers_none() {
        let queue = TaskQueue::default();
        assert_eq!(queue.take(1, Duration::from_millis(1)), Some(String::new()));
        queue.close();
        assert_eq!(queue.take(1, Duration::from_millis(1)), None);
    }
}

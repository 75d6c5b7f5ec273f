//! The JNI bridge between Baton's engine and the JVM. It converts, and does nothing else:
//! JSON strings in and out, engines behind opaque `long` handles, every entry point
//! guarded against panics. The Java side is `dev.baton.internal.NativeBridge`.
//!
//! Calls answer with a JSON envelope, `{"ok": value}` or `{"error": {"kind", "message",
//! "errors"?}}`, which Java turns into typed exceptions in one place. The hot paths of
//! Java steps (`nextTasks`, `complete`, `waiting`) skip the envelope.
//!
//! No native thread calls into the JVM: Java threads take step tasks (`nextTasks`) and
//! log records (`nextLogs`) from queues, so there are no native attachments, no class
//! lookups from native threads, and nothing native keeps the JVM from exiting.

mod error;
mod host_steps;
mod logs;
mod strings;

use baton_core::engine::{built_in_kinds, MIN_LEASE};
use baton_core::error::{panic_text, ErrorKind};
use baton_core::model::{Format, Source, WorkflowDef};
use baton_core::testing::VirtualTime;
use baton_core::Workflow;
use baton_core::{Engine, Event, StoreEngine, StoreLocation};
use error::BridgeError;
use host_steps::{HostKind, TaskQueue};
use indexmap::IndexMap;
use jni::errors::ThrowRuntimeExAndDefault;
use jni::objects::{JClass, JString};
use jni::sys::{jboolean, jint, jlong, jstring};
use jni::{jni_str, Env, EnvUnowned};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

/// One engine opened by Java.
struct Bridge {
    engine: Engine,
    tasks: Arc<TaskQueue>,
    /// The engine's clock, when it runs on virtual time.
    time: Option<VirtualTime>,
    /// Event subscriptions by id (`subscribe`); each is polled by one Java thread.
    subscriptions: Mutex<HashMap<i64, Arc<Mutex<Receiver<Event>>>>>,
}

/// The runtime every engine of this library runs on. Its threads are never attached to
/// the JVM.
fn runtime() -> Result<&'static tokio::runtime::Runtime, BridgeError> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("baton-engine")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| BridgeError::internal(format!("cannot start the engine's runtime: {e}")))
}

/// Handles are indices into this table, never pointers: a call racing `close`, or a
/// stale handle, finds nothing instead of freed memory.
fn bridges() -> &'static Mutex<HashMap<i64, Arc<Bridge>>> {
    static BRIDGES: OnceLock<Mutex<HashMap<i64, Arc<Bridge>>>> = OnceLock::new();
    BRIDGES.get_or_init(Default::default)
}

/// A connection to the engine of another process (`Baton.connect`): it answers the
/// control requests; the other calls are for engines of this process.
struct Remote {
    client: tokio::sync::Mutex<baton_core::control::Client>,
}

fn remotes() -> &'static Mutex<HashMap<i64, Arc<Remote>>> {
    static REMOTES: OnceLock<Mutex<HashMap<i64, Arc<Remote>>>> = OnceLock::new();
    REMOTES.get_or_init(Default::default)
}

/// A new handle, for an engine or a connection: one series, so neither is taken for the other.
fn next_handle() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

fn remote(handle: jlong) -> Option<Arc<Remote>> {
    remotes().lock().unwrap_or_else(|e| e.into_inner()).get(&handle).cloned()
}

fn bridge(handle: jlong) -> Result<Arc<Bridge>, BridgeError> {
    bridges()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&handle)
        .cloned()
        .ok_or_else(BridgeError::closed)
}

/// A string argument; none for null. A lone surrogate becomes U+FFFD ([`strings`]).
fn string(env: &Env<'_>, s: &JString<'_>) -> Result<Option<String>, BridgeError> {
    if s.is_null() {
        return Ok(None);
    }
    Ok(Some(strings::from_java(s.mutf8_chars(env)?.to_bytes())))
}

fn required(env: &Env<'_>, s: &JString<'_>, what: &str) -> Result<String, BridgeError> {
    string(env, s)?.ok_or_else(|| BridgeError::internal(format!("{what} is null")))
}

/// Params given as a JSON object; none for a null string.
fn params_of(env: &Env<'_>, json: &JString<'_>) -> Result<IndexMap<String, Value>, BridgeError> {
    match string(env, json)? {
        Some(json) => Ok(serde_json::from_str(&json)?),
        None => Ok(IndexMap::new()),
    }
}

/// Runs `f` and answers with the envelope; a panic becomes an `internal` error. The value
/// is written straight into the envelope's text (a run's details may be large).
fn envelope<'l, T: serde::Serialize>(
    mut unowned: EnvUnowned<'l>,
    f: impl FnOnce(&mut Env<'l>) -> Result<T, BridgeError>,
) -> jstring {
    #[derive(serde::Serialize)]
    struct Ok<T> {
        ok: T,
    }
    unowned
        .with_env(|env| -> jni::errors::Result<jstring> {
            let error = match catch_unwind(AssertUnwindSafe(|| f(env))) {
                Ok(Ok(value)) => match serde_json::to_string(&Ok { ok: value }) {
                    Ok(text) => return Ok(env.new_string(text)?.into_raw()),
                    Err(e) => BridgeError::from(e),
                },
                Ok(Err(e)) => e,
                Err(panic) => BridgeError::internal(format!(
                    "internal error in the native library: {}",
                    panic_text(panic)
                )),
            };
            // An exception the JVM raised (out of memory reading a string) is the answer: no
            // JNI call may follow it.
            if env.exception_check() {
                return Ok(std::ptr::null_mut());
            }
            Ok(env.new_string(json!({ "error": error.to_json() }).to_string())?.into_raw())
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

/// For the hot paths: errors and panics become `IllegalStateException`.
fn direct<'l, T: Default>(
    mut unowned: EnvUnowned<'l>,
    f: impl FnOnce(&mut Env<'l>) -> Result<T, BridgeError>,
) -> T {
    unowned
        .with_env(|env| -> jni::errors::Result<T> {
            let message = match catch_unwind(AssertUnwindSafe(|| f(env))) {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) => e.to_json()["message"].as_str().unwrap_or_default().to_owned(),
                Err(panic) => {
                    format!("internal error in the native library: {}", panic_text(panic))
                }
            };
            if !env.exception_check() {
                let _ = env.throw_new(
                    jni_str!("java/lang/IllegalStateException"),
                    jni::strings::JNIString::new(message),
                );
            }
            Ok(T::default())
        })
        .resolve::<ThrowRuntimeExAndDefault>()
}

/// The workflow JSON the DSL sent.
fn workflow_arg(env: &Env<'_>, json: &JString<'_>) -> Result<WorkflowDef, BridgeError> {
    generated_definition(required(env, json, "the workflow")?, Format::Json)
}

/// A definition a DSL generated: its problems carry no positions.
fn generated_definition(text: String, format: Format) -> Result<WorkflowDef, BridgeError> {
    Ok(Source::new("workflow", text, format).parse().map_err(|mut e| {
        // Line numbers of generated JSON mean nothing to the user; step and field do.
        for err in &mut e.errors {
            (err.file, err.line, err.column) = (None, None, None);
        }
        e
    })?)
}

fn timeout(millis: jlong) -> Option<Duration> {
    u64::try_from(millis).ok().map(Duration::from_millis)
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_open<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    store: JString<'l>,
    options: JString<'l>,
) -> jstring {
    envelope(env, |env| open_engine(env, &store, &options, None))
}

/// How an engine opens (`BatonOptions`): each a text as the CLI takes it, parsed here.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenOptions {
    store_engine: Option<String>,
    retention: Option<String>,
    engine_id: Option<String>,
    lease: Option<String>,
    max_runs: Option<String>,
}

/// A lease as `baton serve --lease` takes it: a duration of at least [`MIN_LEASE`].
fn parse_lease(text: &str) -> Result<Duration, BridgeError> {
    let bad = |why: String| BridgeError::new(ErrorKind::InvalidRequest, format!("lease: {why}"));
    let lease = baton_core::model::DurationSpec::from(text).parse().map_err(bad)?;
    if lease < MIN_LEASE {
        let min = MIN_LEASE.as_millis();
        return Err(bad(format!("{text} is too short: a lease is at least {min}ms")));
    }
    Ok(lease)
}

/// Opens an engine, on virtual time if `time` is given; ok = the handle.
fn open_engine(
    env: &Env<'_>,
    store: &JString<'_>,
    options: &JString<'_>,
    time: Option<VirtualTime>,
) -> Result<Value, BridgeError> {
    let options: OpenOptions = match string(env, options)? {
        Some(json) => serde_json::from_str(&json).map_err(|e| {
            BridgeError::new(ErrorKind::InvalidRequest, format!("engine options: {e}"))
        })?,
        None => OpenOptions::default(),
    };
    logs::install();
    let rt = runtime()?;
    let tasks = Arc::new(match &time {
        Some(time) => TaskQueue::counting(time.activity()),
        None => TaskQueue::default(),
    });
    let mut builder = Engine::builder().step_kind("java", Arc::new(HostKind::java(tasks.clone())));
    if let Some(time) = &time {
        builder = time.configure(builder);
    }
    if let Some(store) = string(env, store)? {
        // A directory, or a PostgreSQL URL (`jdbc:postgresql://...` too).
        let store: StoreLocation =
            store.parse().map_err(|e: String| BridgeError::new(ErrorKind::Store, e))?;
        builder = builder.store(store);
    }
    if let Some(name) = options.store_engine {
        let engine: StoreEngine =
            name.parse().map_err(|e: String| BridgeError::new(ErrorKind::Store, e))?;
        builder = builder.store_engine(engine);
    }
    if let Some(text) = options.retention {
        let retention: baton_core::Retention = text.parse().map_err(|e: String| {
            BridgeError::new(ErrorKind::InvalidRequest, format!("retention: {e}"))
        })?;
        builder = builder.retention(retention);
    }
    // A bad id fails `open` below, with the core's message (EngineError::BadEngineId).
    if let Some(id) = options.engine_id {
        builder = builder.engine_id(id);
    }
    if let Some(text) = options.lease {
        builder = builder.lease(parse_lease(&text)?);
    }
    if let Some(text) = options.max_runs {
        let max = text.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
            BridgeError::new(
                ErrorKind::InvalidRequest,
                format!("maxRuns: `{text}` is not a count of at least 1"),
            )
        })?;
        builder = builder.max_runs(max);
    }
    let engine = {
        let _guard = rt.enter();
        builder.open()?
    };
    let handle = next_handle();
    bridges()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(handle, Arc::new(Bridge { engine, tasks, time, subscriptions: Mutex::default() }));
    Ok(json!(handle))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_close<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    envelope(env, |_| {
        remotes().lock().unwrap_or_else(|e| e.into_inner()).remove(&handle);
        let bridge = bridges().lock().unwrap_or_else(|e| e.into_inner()).remove(&handle);
        if let Some(bridge) = bridge {
            runtime()?.block_on(bridge.engine.close());
            bridge.tasks.close();
        }
        Ok(Value::Null)
    })
}

/// Validates a definition without an engine (host kinds are checked at `register`); ok =
/// the definition's JSON, durations in canonical form. A `source_name` names the text in
/// problems, with lines and columns; without one the text is the DSL's JSON, whose
/// positions mean nothing to the user.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_check<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    text: JString<'l>,
    source_name: JString<'l>,
    yaml: jboolean,
) -> jstring {
    envelope(env, |env| {
        let text = required(env, &text, "the definition")?;
        let format = if yaml { Format::Yaml } else { Format::Json };
        let workflow = match string(env, &source_name)? {
            Some(name) => {
                Workflow::load(&Source::new(name, text, format), &built_in_kinds().open())?
            }
            None => {
                Workflow::compile(generated_definition(text, format)?, &built_in_kinds().open())?
            }
        };
        let mut def = workflow.into_def();
        def.canonicalize_durations();
        Ok(serde_json::to_value(def)?)
    })
}

/// The model's shape, each built-in kind's fields and the error kinds, for the DSL's
/// agreement tests; ok = `{"model": {...}, "kinds": {...}, "error_kinds": [...]}`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_schema<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
) -> jstring {
    envelope(env, |_| {
        let kinds = built_in_kinds();
        Ok(
            json!({ "model": baton_core::model::schema(), "kinds": kinds.fields_by_kind(), "error_kinds": ErrorKind::ALL }),
        )
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_validate<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    workflow: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        bridge.engine.compile(workflow_arg(env, &workflow)?)?;
        Ok(Value::Null)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_register<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    workflow: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let registered = bridge.engine.register(workflow_arg(env, &workflow)?)?;
        Ok(json!(registered.version))
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_registerStepType<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    name: JString<'l>,
    spec: JString<'l>,
) -> jstring {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Spec {
        #[serde(default)]
        params: IndexMap<String, Value>,
    }
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let name = required(env, &name, "the step type name")?;
        let spec: Spec = serde_json::from_str(&required(env, &spec, "the step type")?)?;
        let kind = HostKind::declared(&name, bridge.tasks.clone(), spec.params);
        bridge.engine.register_step_kind(name, Arc::new(kind))?;
        Ok(Value::Null)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_start<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    workflow_id: JString<'l>,
    params: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let id = required(env, &workflow_id, "the workflow id")?;
        let params = params_of(env, &params)?;
        let rt = runtime()?;
        let run_id = rt.block_on(bridge.engine.start_registered(&id, params))?;
        Ok(json!(run_id))
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_await<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    run_id: JString<'l>,
    timeout_millis: jlong,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let run_id = required(env, &run_id, "the run id")?;
        let wait = bridge.engine.wait(&run_id);
        let finished = match timeout(timeout_millis) {
            Some(limit) => {
                runtime()?.block_on(async { tokio::time::timeout(limit, wait).await.ok() })
            }
            None => Some(runtime()?.block_on(wait)),
        };
        // null while the run goes on.
        finished.map(|run| Ok(bridge.engine.details(&run?.id)?)).transpose()
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_run<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    run_id: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let run_id = required(env, &run_id, "the run id")?;
        Ok(bridge.engine.details(&run_id)?)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_runs<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    envelope(env, |_| Ok(bridge(handle)?.engine.runs()?))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_recover<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    envelope(env, |_| {
        let bridge = bridge(handle)?;
        let _guard = runtime()?.enter();
        let resumed = bridge.engine.recover()?;
        Ok(resumed
            .into_iter()
            .map(|(id, result)| match result {
                Ok(()) => json!({ "run_id": id }),
                Err(e) => json!({ "run_id": id, "error": e.to_string() }),
            })
            .collect::<Vec<Value>>())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_signal<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    name: JString<'l>,
    params: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let name = required(env, &name, "the signal name")?;
        let params = params_of(env, &params)?;
        let id = runtime()?.block_on(bridge.engine.signal(&name, params))?;
        Ok(json!(id))
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_signals<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    name: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let name = string(env, &name)?;
        Ok(bridge.engine.signals(name.as_deref())?)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_nextTasks<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    max: jint,
    timeout_millis: jlong,
) -> jstring {
    direct(env, |env| {
        let tasks = bridge(handle)?.tasks.clone();
        let wait = timeout(timeout_millis).unwrap_or(Duration::from_secs(1));
        match tasks.take(max.max(1) as usize, wait) {
            Some(batch) => Ok(env.new_string(batch)?.into_raw()),
            None => Ok(std::ptr::null_mut()),
        }
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_complete<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    token: jlong,
    outcome: JString<'l>,
) {
    direct(env, |env| {
        let bridge = bridge(handle)?;
        bridge.tasks.complete(token as u64, &required(env, &outcome, "the outcome")?)?;
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_waiting<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    token: jlong,
    reason: JString<'l>,
) {
    direct(env, |env| {
        let bridge = bridge(handle)?;
        bridge.tasks.waiting(token as u64, string(env, &reason)?);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_logLevel<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    level: JString<'l>,
) {
    direct(env, |env| {
        let level = required(env, &level, "the log level")?;
        logs::set_level(&level).map_err(|e| BridgeError::new(ErrorKind::InvalidRequest, e))
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_nextLogs<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    max: jint,
    timeout_millis: jlong,
) -> jstring {
    direct(env, |env| {
        let records = logs::drain(
            max.max(1) as usize,
            timeout(timeout_millis).unwrap_or(Duration::from_secs(1)),
        );
        Ok(env.new_string(Value::Array(records).to_string())?.into_raw())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_openVirtual<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    store: JString<'l>,
    options: JString<'l>,
    start_millis: jlong,
) -> jstring {
    envelope(env, |env| {
        let start = u64::try_from(start_millis).map_err(|_| {
            BridgeError::internal(format!(
                "a virtual clock cannot start before 1970: {start_millis} ms"
            ))
        })?;
        let time = Some(VirtualTime::starting_at(start));
        open_engine(env, &store, &options, time)
    })
}

/// The virtual time of an engine opened by `openVirtual`.
fn virtual_time(bridge: &Bridge) -> Result<&VirtualTime, BridgeError> {
    bridge.time.as_ref().ok_or_else(|| {
        BridgeError::new(
            ErrorKind::State,
            "this Baton runs on the system clock, not on a virtual clock",
        )
    })
}

/// How long (real time) to wait for the engine to settle after a move of time.
fn settle_limit(millis: jlong) -> Duration {
    timeout(millis).unwrap_or(Duration::from_secs(30))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_clockNow<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    envelope(env, |_| Ok(json!(virtual_time(&*bridge(handle)?)?.now_ms())))
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_advanceClock<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    millis: jlong,
    settle_millis: jlong,
) -> jstring {
    envelope(env, |_| {
        let bridge = bridge(handle)?;
        let by = u64::try_from(millis)
            .map_err(|_| BridgeError::internal(format!("time cannot move back: {millis} ms")))?;
        Ok(json!(virtual_time(&bridge)?
            .advance(Duration::from_millis(by), settle_limit(settle_millis))?))
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_runUntilIdle<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    settle_millis: jlong,
) -> jstring {
    envelope(env, |_| {
        let bridge = bridge(handle)?;
        Ok(json!(
            virtual_time(&bridge)?.run_until_idle(&bridge.engine, settle_limit(settle_millis))?
        ))
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_awaitIdle<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    settle_millis: jlong,
) -> jstring {
    envelope(env, |_| {
        let bridge = bridge(handle)?;
        virtual_time(&bridge)?.settle(settle_limit(settle_millis))?;
        Ok(Value::Null)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_overrideStep<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    workflow_id: JString<'l>,
    step_id: JString<'l>,
    handler: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let bridge = bridge(handle)?;
        let workflow_id = required(env, &workflow_id, "the workflow id")?;
        let step_id = required(env, &step_id, "the step id")?;
        let stand_in = string(env, &handler)?
            .map(|name| Arc::new(HostKind::stand_in(&name, bridge.tasks.clone())) as _);
        bridge.engine.override_step(&workflow_id, &step_id, stand_in);
        Ok(Value::Null)
    })
}

/// One request of the control protocol (`baton_core::control::Request`, JSON); ok = the
/// response. The operator's actions reach the engine this way, as they do from the CLI.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_control<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    request: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let remote = remote(handle);
        // A stale handle is told so before its request is read.
        let bridge = if remote.is_none() { Some(bridge(handle)?) } else { None };
        let request: baton_core::control::Request =
            serde_json::from_str(&required(env, &request, "the request")?)?;
        if let Some(remote) = remote {
            let reply = runtime()?.block_on(async {
                let mut client = remote.client.lock().await;
                client.call(&request).await
            });
            let reply = reply.map_err(|e| BridgeError::new(ErrorKind::Store, e.to_string()))?;
            let response = reply.map_err(|e| BridgeError::new(e.kind, e.message))?;
            return Ok(serde_json::to_value(response)?);
        }
        let bridge = bridge.ok_or_else(BridgeError::closed)?;
        let response =
            runtime()?.block_on(baton_core::control::execute(&bridge.engine, request))?;
        Ok(serde_json::to_value(response)?)
    })
}

/// Connects to the engine of another process that holds the store in `dir`, through its
/// control socket; ok = the handle, for `control` and `close` only.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_connect<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    dir: JString<'l>,
) -> jstring {
    envelope(env, |env| {
        let dir = std::path::PathBuf::from(required(env, &dir, "the store directory")?);
        logs::install();
        let client = runtime()?.block_on(baton_core::control::Client::connect(&dir));
        let client = client.map_err(|e| {
            BridgeError::new(
                ErrorKind::Store,
                format!("cannot connect to the store {}: {e}; Baton.open(dir) opens a store no live engine holds", dir.display()),
            )
        })?;
        let handle = next_handle();
        let remote = Arc::new(Remote { client: tokio::sync::Mutex::new(client) });
        remotes().lock().unwrap_or_else(|e| e.into_inner()).insert(handle, remote);
        Ok(json!(handle))
    })
}

/// Opens the control socket in the store directory, so that `baton` commands from other
/// processes reach this engine; ok = the socket's path, or null for a store in memory.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_serveControl<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    envelope(env, |_| {
        let bridge = bridge(handle)?;
        let _guard = runtime()?.enter();
        let socket = baton_core::control::serve(&bridge.engine)?;
        Ok(json!(socket.map(|p| p.display().to_string())))
    })
}

/// Starts the scheduler of cron and signal triggers (once; later calls do nothing); ok = null.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_startScheduler<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    envelope(env, |_| {
        let bridge = bridge(handle)?;
        // The scheduler is a task of the engine's runtime.
        let _guard = runtime()?.enter();
        baton_core::triggers::start_scheduler(&bridge.engine);
        Ok(Value::Null)
    })
}

/// Subscribes to the engine's events from now on; ok = the subscription's id.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_subscribe<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
) -> jstring {
    envelope(env, |_| {
        static NEXT: AtomicI64 = AtomicI64::new(1);
        let bridge = bridge(handle)?;
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let receiver = Arc::new(Mutex::new(bridge.engine.subscribe()));
        bridge.subscriptions.lock().unwrap_or_else(|e| e.into_inner()).insert(id, receiver);
        Ok(json!(id))
    })
}

/// Up to `max` events of a subscription, waiting up to `timeout_millis` for the first; ok =
/// `{"events": [...], "lagged": n}` (`n` events missed because the subscriber fell behind), or
/// null once the subscription or the engine is gone.
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_nextEvents<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    subscription: jlong,
    max: jint,
    timeout_millis: jlong,
) -> jstring {
    envelope(env, |_| {
        let receiver = {
            let bridge = bridge(handle)?;
            let subscriptions = bridge.subscriptions.lock().unwrap_or_else(|e| e.into_inner());
            match subscriptions.get(&subscription) {
                Some(r) => r.clone(),
                None => return Ok(Value::Null),
            }
        };
        let mut receiver = receiver.lock().unwrap_or_else(|e| e.into_inner());
        let max = max.max(1) as usize;
        let wait = timeout(timeout_millis).unwrap_or(Duration::from_secs(1));
        let mut events = Vec::new();
        let mut lagged = 0u64;
        // The first event (or lag notice) may be waited for; the rest are what is there already.
        let first =
            runtime()?.block_on(async { tokio::time::timeout(wait, receiver.recv()).await });
        match first {
            Err(_elapsed) => {}
            Ok(Ok(event)) => events.push(event),
            Ok(Err(RecvError::Lagged(n))) => lagged += n,
            Ok(Err(RecvError::Closed)) => return Ok(Value::Null),
        }
        while events.len() < max {
            match receiver.try_recv() {
                Ok(event) => events.push(event),
                Err(TryRecvError::Lagged(n)) => lagged += n,
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => break,
            }
        }
        Ok(json!({ "events": events, "lagged": lagged }))
    })
}

/// Ends a subscription; ok = null (also for one already ended).
#[unsafe(no_mangle)]
pub extern "system" fn Java_dev_baton_internal_NativeBridge_unsubscribe<'l>(
    env: EnvUnowned<'l>,
    _class: JClass<'l>,
    handle: jlong,
    subscription: jlong,
) -> jstring {
    envelope(env, |_| {
        // A closed engine has no subscriptions left.
        if let Ok(bridge) = bridge(handle) {
            bridge.subscriptions.lock().unwrap_or_else(|e| e.into_inner()).remove(&subscription);
        }
        Ok(Value::Null)
    })
}

//! `baton`: run, validate, inspect and recover workflows from the command line.
//!
//! A user of `baton-core` like any other. Exit codes: 0 success, 1 a run failed,
//! 2 usage or definition error, 3 store error.

mod backend;
mod import;
mod operate;
mod params;
mod progress;
mod report;

use backend::{unexpected, Backend};
use baton_core::control::{Request, Response};
use baton_core::model::Source;
use baton_core::{
    Engine, EngineError, InvalidDefinition, Retention, RunStatus, StoreEngine, StoreError,
    StoreLocation, Workflow,
};
use clap::{Parser, Subcommand, ValueEnum};
use indexmap::IndexMap;
use params::{parse_param, typed};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "baton",
    version,
    about = "Durable workflow orchestration: run DAGs of steps that survive crashes"
)]
struct Cli {
    /// The store: a directory, or a PostgreSQL database URL (postgresql://user@host/db).
    #[arg(long, global = true, env = "BATON_HOME", default_value = ".baton", value_parser = parse_store)]
    store: StoreLocation,
    /// The store engine of a new store directory (an existing store keeps its own).
    #[arg(long, global = true, value_name = "ENGINE", value_parser = parse_engine)]
    store_engine: Option<StoreEngine>,
    /// This engine's id among the engines of a database (default: host name and pid).
    #[arg(long, global = true, value_name = "ID")]
    engine_id: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Where `baton import` reads from.
#[derive(Subcommand)]
enum ImportFrom {
    /// Netflix Maestro: create-request JSON, a workflow JSON, or DSL YAML. Each construct
    /// maps to Baton's model or the file is refused, naming the step, field and why.
    Maestro {
        /// The Maestro definitions.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where the Baton YAML goes, one file per workflow named after its id.
        #[arg(short = 'o', long = "out", value_name = "DIR", default_value = ".")]
        out: PathBuf,
        /// Prints the outcome of each file as JSON.
        #[arg(long)]
        json: bool,
        /// Imports and validates, and writes nothing.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Runs a workflow file to its end, with live progress.
    Run {
        /// The workflow, YAML or JSON (by extension).
        file: PathBuf,
        /// Overrides a parameter: -p key=value (repeatable).
        #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Prints the result as JSON.
        #[arg(long)]
        json: bool,
        /// How long history is kept while this holds the store (see `serve --retain`).
        #[arg(long, value_name = "RETENTION", value_parser = parse_retention)]
        retain: Option<Retention>,
    },
    /// Turns definitions of another orchestrator into Baton YAML files.
    Import {
        #[command(subcommand)]
        from: ImportFrom,
    },
    /// Checks a workflow file and prints every problem.
    Validate {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Lists runs.
    Runs {
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs with this status.
        #[arg(long, value_parser = |s: &str| s.parse::<RunStatus>())]
        status: Option<RunStatus>,
        #[arg(long)]
        json: bool,
    },
    /// Shows a run: each step's status, attempts, duration, outputs and errors.
    Show {
        run_id: String,
        /// Lists every step, also in very large runs.
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Sends a signal: steps waiting for it (`wait_signal`) go on.
    Signal {
        /// The signal's name.
        name: String,
        /// The signal's params: key=value (repeatable; numbers and booleans keep their type).
        #[arg(value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        #[arg(long)]
        json: bool,
    },
    /// Lists the signals in the store.
    Signals {
        /// Only signals with this name.
        name: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Registers a workflow file: a changed definition becomes a new, active version.
    Register {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Lists registered workflows: active version, enabled, triggers, run strategy.
    Workflows {
        #[arg(long)]
        json: bool,
    },
    /// Lists the versions of a registered workflow.
    Versions {
        workflow_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Makes a version the one that `start` and the triggers run.
    Activate { workflow_id: String, version: u32 },
    /// Lets a workflow's triggers fire again.
    Enable { workflow_id: String },
    /// Stops a workflow's triggers from firing (manual starts still work).
    Disable { workflow_id: String },
    /// Starts a registered workflow (its active version).
    Start {
        workflow_id: String,
        /// Overrides a parameter: -p key=value (repeatable).
        #[arg(short = 'p', long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Runs this version instead of the active one.
        #[arg(long)]
        version: Option<u32>,
        /// Makes the start idempotent: a request id used before gives that start's run.
        #[arg(long)]
        request_id: Option<String>,
        /// Waits for the run's end (always, when no live engine holds the store).
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Lists the firings of a workflow's triggers: when, which run, or why none.
    Firings {
        workflow_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Releases a strict_sequential workflow's queue held by a failed run.
    Unblock { workflow_id: String },
    /// Stops a run: its running steps are asked to stop; the run ends STOPPED.
    Stop { run_id: String },
    /// Kills a run: running steps end at once, without cleanup; the run ends KILLED.
    Kill { run_id: String },
    /// Pauses a run: no new step starts until `resume` (running ones finish).
    Pause { run_id: String },
    /// Resumes a paused run.
    Resume { run_id: String },
    /// Starts a new run from a finished one, keeping its succeeded steps' outputs.
    Restart {
        run_id: String,
        /// Re-runs this step and everything downstream of it (others keep their outputs).
        #[arg(long, value_name = "STEP")]
        from: Option<String>,
        #[arg(long)]
        wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Sets a breakpoint: runs of the workflow wait before STEP until `continue`.
    Break {
        workflow_id: String,
        step_id: String,
        /// Removes the breakpoint instead.
        #[arg(long)]
        clear: bool,
    },
    /// Lists a workflow's breakpoints.
    Breakpoints {
        workflow_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Lets a step waiting at a breakpoint run.
    Continue { run_id: String, step_id: String },
    /// Marks a step SKIPPED; the steps below it go on as if it had succeeded.
    Skip { run_id: String, step_id: String },
    /// Runs a new attempt of a failed step inside the same (unfinished) run.
    RetryStep { run_id: String, step_id: String },
    /// Every status change of a run and its steps, in order.
    Timeline {
        run_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Prints the live engine's status changes, one JSON object per line.
    Events {
        /// Keeps printing as they happen (required: stored history is `baton timeline RUN`).
        #[arg(long, required = true)]
        follow: bool,
    },
    /// Caps the steps tagged TAG running at once across all runs; without N, lists the caps.
    Limit {
        tag: Option<String>,
        /// The cap; `none` removes it.
        #[arg(value_parser = parse_limit)]
        max: Option<Option<u32>>,
        #[arg(long)]
        json: bool,
    },
    /// Holds the store and runs its engine: resumes unfinished runs, fires the triggers of
    /// registered workflows, and answers other `baton` commands through the control socket,
    /// until stopped (SIGINT or SIGTERM).
    Serve {
        /// How long history is kept: an age for all of it (`90d`), or kinds with ages
        /// (`runs=90d,signals=forever,firings=30d,every=1h`); default runs=30d, signals=7d,
        /// firings=30d, pruned every hour.
        #[arg(long, value_name = "RETENTION", value_parser = parse_retention)]
        retain: Option<Retention>,
        /// On a database: how long this engine's runs stay its own after its last
        /// heartbeat, before the other engines take them over (default 15s).
        #[arg(long, value_name = "DURATION", value_parser = parse_lease)]
        lease: Option<std::time::Duration>,
        /// On a database: the most runs this engine drives at once; past it, the runs it
        /// starts go to the other engines.
        #[arg(long, value_name = "N")]
        max_runs: Option<usize>,
    },
    /// What a registered workflow's history says: each step's p50/p90/p99 duration,
    /// success and retry rates and trend, and the expected run along the critical path.
    Insights {
        /// The workflow.
        workflow: String,
        #[arg(long)]
        json: bool,
    },
    /// Why a run failed, in plain words: the step that failed first (followed into child
    /// runs and iterations), what it took down, where its error was seen before, what
    /// mended it then, and what changed since the step last succeeded.
    Diagnose {
        /// The run.
        run_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Lists the engines of the store: on a database, every engine of the cluster, with
    /// its last heartbeat, the runs it holds and what it can run.
    Engines {
        #[arg(long)]
        json: bool,
    },
    /// Deletes finished runs (with their steps, events and child runs), signals and
    /// trigger firings older than AGE; unfinished runs and what triggers need stay.
    Prune {
        /// The age past which history goes: 30d, 12h...
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Only counts what would go.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// The result cache: what steps with `cache` keep of their successes.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Continues every unfinished run to its end.
    Recover {
        #[arg(long)]
        json: bool,
    },
    /// Prints a workflow's graph.
    Graph {
        file: PathBuf,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
    },
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Lists the entries: workflow, step, key, the run they came from, when they were made
    /// and expire, and their size.
    List {
        /// Only this workflow's entries.
        workflow_id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Deletes entries: all of them, a workflow's, or one step's; their steps run again.
    Clear {
        /// Only this workflow's entries.
        workflow_id: Option<String>,
        /// Only this step's entries.
        step_id: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

/// Why the command failed, and so its exit code.
enum Failure {
    /// A run ended, but not successfully (1).
    RunFailed,
    /// Bad input: usage or definition (2).
    Usage(String),
    /// An invalid definition, already reported in full (2).
    Invalid,
    /// The store could not be used (3).
    Store(String),
    /// The engine refused or failed: the exit code is its kind's (2 or 3).
    Engine(baton_core::error::ErrorKind, String),
    /// Stopped by SIGINT or SIGTERM; the run stays unfinished in the store (130).
    Interrupted,
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        Failure::Engine(e.kind(), e.to_string())
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e.to_string())
    }
}

impl From<InvalidDefinition> for Failure {
    fn from(e: InvalidDefinition) -> Self {
        Failure::Usage(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = ENGINE_ID.set(cli.engine_id.clone());
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::RunFailed) => ExitCode::from(1),
        Err(Failure::Invalid) => ExitCode::from(2),
        Err(Failure::Interrupted) => ExitCode::from(130),
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Store(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(3)
        }
        Err(Failure::Engine(kind, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(kind.exit_code())
        }
    }
}

async fn execute(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Validate { file, json } => validate(&file, json),
        Command::Import { from: ImportFrom::Maestro { files, out, json, check } } => {
            import::maestro(&files, &out, json, check)
        }
        Command::Graph { file, format } => {
            let wf = load(&file)?;
            print!(
                "{}",
                match format {
                    GraphFormat::Dot => wf.to_dot(),
                    GraphFormat::Mermaid => wf.to_mermaid(),
                }
            );
            Ok(())
        }
        Command::Run { file, params, json, retain } => {
            let wf = Arc::new(load(&file)?);
            let overrides: IndexMap<String, serde_json::Value> =
                params.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
            let progress = progress::Progress::new(json);
            let listener = Some(progress.listener());
            let retention = retain.unwrap_or_default();
            let role = Role::Run;
            match Backend::connect_with(&cli.store, cli.store_engine, listener, retention, role)
                .await?
            {
                Backend::Local(engine) => {
                    run_here(&engine, &progress, &cli.store, wf, overrides, json).await
                }
                mut remote => {
                    let definition = wf.def().clone();
                    let run_id = match remote
                        .call(Request::RunDefinition { definition, params: overrides })
                        .await?
                    {
                        Response::Started { run_id } => run_id,
                        other => return Err(unexpected(other)),
                    };
                    eprintln!("run {run_id} started by the live engine holding {}", cli.store);
                    operate::report_end(&mut remote, &run_id, &cli.store, json).await
                }
            }
        }
        Command::Runs { workflow, status, json } => {
            let mut backend = Backend::connect(&cli.store, cli.store_engine).await?;
            let runs = match backend.call(Request::Runs).await? {
                Response::Runs(runs) => runs,
                other => return Err(unexpected(other)),
            };
            backend.close().await;
            let runs: Vec<_> = runs
                .into_iter()
                .filter(|r| workflow.as_deref().is_none_or(|w| r.workflow_id == w))
                .filter(|r| status.is_none_or(|s| r.status == s))
                .collect();
            if json {
                println!("{}", report::json(&runs));
            } else {
                print!("{}", report::runs(&runs));
            }
            Ok(())
        }
        Command::Show { run_id, all, json } => {
            let mut backend = Backend::connect(&cli.store, cli.store_engine).await?;
            let details = show_details(&mut backend, &run_id).await?;
            // A run going on: when its steps' history says it should end.
            let eta = match details.run.status.is_terminal() {
                true => None,
                false => match backend.call(Request::Eta { run_id: run_id.clone() }).await? {
                    Response::Eta(eta) => eta,
                    other => return Err(unexpected(other)),
                },
            };
            backend.close().await;
            if json {
                let mut value = serde_json::to_value(&details).unwrap_or_default();
                if let (Some(eta), Some(object)) = (&eta, value.as_object_mut()) {
                    object.insert("eta".into(), serde_json::to_value(eta).unwrap_or_default());
                }
                println!("{}", report::json(&value));
            } else {
                print!("{}", report::show(&details, all));
                if let Some(eta) = &eta {
                    print!("{}", report::eta(eta));
                }
            }
            Ok(())
        }
        Command::Diagnose { run_id, json } => {
            let mut backend = Backend::connect(&cli.store, cli.store_engine).await?;
            let diagnosis = match backend.call(Request::Diagnose { run_id }).await? {
                Response::Diagnosis(d) => d,
                other => return Err(unexpected(other)),
            };
            backend.close().await;
            if json {
                println!("{}", report::json(&diagnosis));
            } else {
                print!("{}", report::diagnosis(&diagnosis));
            }
            Ok(())
        }
        Command::Insights { workflow, json } => {
            let mut backend = Backend::connect(&cli.store, cli.store_engine).await?;
            let insights = match backend.call(Request::Insights { workflow_id: workflow }).await? {
                Response::Insights(insights) => insights,
                other => return Err(unexpected(other)),
            };
            backend.close().await;
            if json {
                println!("{}", report::json(&insights));
            } else {
                print!("{}", report::insights(&insights));
            }
            Ok(())
        }
        Command::Signal { name, params, json } => {
            if let Some(problem) = baton_core::model::signal_name_problem(&name) {
                return Err(Failure::Usage(problem));
            }
            let params: IndexMap<String, serde_json::Value> =
                params.into_iter().map(|(k, v)| (k, typed(&v))).collect();
            let mut backend = Backend::connect(&cli.store, cli.store_engine).await?;
            let id = match backend
                .call(Request::Signal { name: name.clone(), params: params.clone() })
                .await?
            {
                Response::SignalSent { id } => id,
                other => return Err(unexpected(other)),
            };
            backend.close().await;
            if json {
                println!("{}", serde_json::json!({ "id": id, "name": name, "params": params }));
            } else {
                println!("signal {name} sent ({id})");
            }
            Ok(())
        }
        Command::Signals { name, json } => {
            let mut backend = Backend::connect(&cli.store, cli.store_engine).await?;
            let signals = match backend.call(Request::Signals { name }).await? {
                Response::Signals(signals) => signals,
                other => return Err(unexpected(other)),
            };
            backend.close().await;
            if json {
                println!("{}", report::json(&signals));
            } else {
                print!("{}", report::signals(&signals));
            }
            Ok(())
        }
        Command::Register { file, json } => {
            let definition = load(&file)?.def().clone();
            operate::call(&cli.store, cli.store_engine, Request::Register { definition }, json, "")
                .await
        }
        Command::Workflows { json } => {
            operate::call(&cli.store, cli.store_engine, Request::Workflows, json, "").await
        }
        Command::Versions { workflow_id, json } => {
            operate::call(&cli.store, cli.store_engine, Request::Versions { workflow_id }, json, "")
                .await
        }
        Command::Activate { workflow_id, version } => {
            let said = format!("workflow {workflow_id}: version {version} is active");
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Activate { workflow_id, version },
                false,
                &said,
            )
            .await
        }
        Command::Enable { workflow_id } => {
            let said = format!("workflow {workflow_id}: triggers enabled");
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Enable { workflow_id, enabled: true },
                false,
                &said,
            )
            .await
        }
        Command::Disable { workflow_id } => {
            let said = format!("workflow {workflow_id}: triggers disabled");
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Enable { workflow_id, enabled: false },
                false,
                &said,
            )
            .await
        }
        Command::Start { workflow_id, params, version, request_id, wait, json } => {
            let params =
                params.into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
            operate::start(
                &cli.store,
                cli.store_engine,
                Request::Start { workflow_id, params, version, request_id },
                wait,
                json,
            )
            .await
        }
        Command::Firings { workflow_id, json } => {
            operate::call(&cli.store, cli.store_engine, Request::Firings { workflow_id }, json, "")
                .await
        }
        Command::Unblock { workflow_id } => {
            let said = format!("workflow {workflow_id}: queue released");
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Unblock { workflow_id },
                false,
                &said,
            )
            .await
        }
        Command::Stop { run_id } => {
            let said = format!("run {run_id}: stop requested");
            operate::call(&cli.store, cli.store_engine, Request::Stop { run_id }, false, &said)
                .await
        }
        Command::Kill { run_id } => {
            let said = format!("run {run_id}: killed");
            operate::call(&cli.store, cli.store_engine, Request::Kill { run_id }, false, &said)
                .await
        }
        Command::Pause { run_id } => {
            let said = format!("run {run_id}: paused (running steps finish; no new step starts)");
            operate::call(&cli.store, cli.store_engine, Request::Pause { run_id }, false, &said)
                .await
        }
        Command::Resume { run_id } => {
            let said = format!("run {run_id}: resumed");
            operate::call(&cli.store, cli.store_engine, Request::Resume { run_id }, false, &said)
                .await
        }
        Command::Restart { run_id, from, wait, json } => {
            operate::start(
                &cli.store,
                cli.store_engine,
                Request::Restart { run_id, from },
                wait,
                json,
            )
            .await
        }
        Command::Break { workflow_id, step_id, clear } => {
            let said = if clear {
                format!("workflow {workflow_id}: breakpoint before `{step_id}` removed")
            } else {
                format!("workflow {workflow_id}: runs wait before `{step_id}` until `baton continue RUN {step_id}`")
            };
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Break { workflow_id, step_id, on: !clear },
                false,
                &said,
            )
            .await
        }
        Command::Breakpoints { workflow_id, json } => {
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Breakpoints { workflow_id },
                json,
                "",
            )
            .await
        }
        Command::Continue { run_id, step_id } => {
            let said = format!("run {run_id}: step `{step_id}` continues");
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Continue { run_id, step_id },
                false,
                &said,
            )
            .await
        }
        Command::Skip { run_id, step_id } => {
            let said = format!("run {run_id}: step `{step_id}` skipped");
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::Skip { run_id, step_id },
                false,
                &said,
            )
            .await
        }
        Command::RetryStep { run_id, step_id } => {
            let said = format!("run {run_id}: step `{step_id}` retried");
            operate::call(
                &cli.store,
                cli.store_engine,
                Request::RetryStep { run_id, step_id },
                false,
                &said,
            )
            .await
        }
        Command::Timeline { run_id, json } => {
            operate::call(&cli.store, cli.store_engine, Request::Timeline { run_id }, json, "")
                .await
        }
        Command::Events { follow: _ } => operate::follow(&cli.store, cli.store_engine).await,
        Command::Limit { tag: None, json, .. } => {
            operate::call(&cli.store, cli.store_engine, Request::Limits, json, "").await
        }
        Command::Limit { tag: Some(tag), max: None, json } => {
            let _ = json;
            Err(Failure::Usage(format!(
                "give the cap: `baton limit {tag} 4`, or `baton limit {tag} none` to remove it"
            )))
        }
        Command::Limit { tag: Some(tag), max: Some(max), json } => {
            let said = match max {
                Some(n) => format!("at most {n} steps tagged `{tag}` run at once"),
                None => format!("no cap on steps tagged `{tag}`"),
            };
            operate::call(&cli.store, cli.store_engine, Request::Limit { tag, max }, json, &said)
                .await
        }
        Command::Serve { retain, lease, max_runs } => {
            let lease = lease.unwrap_or(baton_core::engine::DEFAULT_LEASE);
            let role = Role::Serve { lease, max_runs };
            serve(&cli.store, cli.store_engine, retain.unwrap_or_default(), role).await
        }
        Command::Engines { json } => {
            let mut backend = Backend::connect(&cli.store, cli.store_engine).await?;
            let engines = match backend.call(Request::Engines).await? {
                Response::Engines(engines) => engines,
                other => return Err(unexpected(other)),
            };
            backend.close().await;
            if json {
                println!("{}", report::json(&engines));
            } else {
                print!("{}", report::engines(&engines));
            }
            Ok(())
        }
        Command::Prune { older_than, dry_run, json } => {
            let older_than_ms = older_than.as_millis() as u64;
            let request = Request::Prune { older_than_ms, dry_run };
            operate::call(&cli.store, cli.store_engine, request, json, "").await
        }
        Command::Cache { command: CacheCommand::List { workflow_id, json } } => {
            let request = Request::CacheList { workflow_id };
            operate::call(&cli.store, cli.store_engine, request, json, "").await
        }
        Command::Cache { command: CacheCommand::Clear { workflow_id, step_id } } => {
            let request = Request::CacheClear { workflow_id, step_id };
            operate::call(&cli.store, cli.store_engine, request, false, "").await
        }
        Command::Recover { json } => recover(&cli.store, cli.store_engine, json).await,
    }
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) =
        (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "interrupted",
        _ = term.recv() => "terminated",
    }
}

fn parse_store(s: &str) -> Result<StoreLocation, String> {
    s.parse()
}

fn parse_engine(s: &str) -> Result<StoreEngine, String> {
    s.parse()
}

fn parse_retention(s: &str) -> Result<Retention, String> {
    s.parse()
}

fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    let lease = parse_age(s)?;
    match lease >= baton_core::engine::MIN_LEASE {
        true => Ok(lease),
        false => Err(format!("a lease of {s} is too short: at least 300ms")),
    }
}

fn parse_age(s: &str) -> Result<std::time::Duration, String> {
    baton_core::model::DurationSpec::from(s).parse()
}

fn parse_limit(s: &str) -> Result<Option<u32>, String> {
    match s {
        "none" => Ok(None),
        n => n.parse().map(Some).map_err(|_| format!("`{s}` is not a count (or `none`)")),
    }
}

/// Reads and validates a workflow file; errors name the file, line and column.
fn load(file: &Path) -> Result<Workflow, InvalidDefinition> {
    Workflow::load(&Source::read(file)?, &baton_core::engine::built_in_kinds())
}

fn validate(file: &Path, json: bool) -> Result<(), Failure> {
    match load(file) {
        Ok(wf) => {
            if json {
                let (id, steps, warnings) = (wf.id(), wf.len(), wf.warnings());
                println!(
                    "{}",
                    serde_json::json!({ "valid": true, "workflow": id, "steps": steps, "warnings": warnings })
                );
            } else {
                for warning in wf.warnings() {
                    eprintln!("warning: {warning}");
                }
                println!(
                    "{}: workflow `{}` is valid ({} steps)",
                    file.display(),
                    wf.id(),
                    wf.len()
                );
            }
            Ok(())
        }
        Err(e) => {
            if json {
                println!("{}", serde_json::json!({ "valid": false, "errors": e.errors }));
            } else {
                eprintln!("{e}");
                let n = e.errors.len();
                eprintln!("{n} problem{} found", if n == 1 { "" } else { "s" });
            }
            Err(Failure::Invalid)
        }
    }
}

/// What an engine the CLI opens does among the engines of a database.
#[derive(Debug, Clone, Copy)]
pub enum Role {
    /// `baton serve`: drives runs, takes them from others, keeps them with a heartbeat.
    Serve { lease: std::time::Duration, max_runs: Option<usize> },
    /// `baton run`, `baton recover`: drives the runs it starts or resumes, and no others.
    Run,
    /// Every other command: on a database, writes what it is asked and drives nothing;
    /// the serving engines carry it out.
    Client,
}

/// `--engine-id`, for every engine the CLI opens.
static ENGINE_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();

fn open_engine(
    store: &StoreLocation,
    engine: Option<StoreEngine>,
    listener: Option<baton_core::engine::Listener>,
    retention: Retention,
    role: Role,
) -> Result<Engine, EngineError> {
    let mut builder = Engine::builder().store(store.clone()).retention(retention);
    if let Some(Some(id)) = ENGINE_ID.get() {
        builder = builder.engine_id(id.clone());
    }
    let database = matches!(store, StoreLocation::Database(_));
    builder = match role {
        Role::Serve { lease, max_runs: None } => builder.lease(lease),
        Role::Serve { lease, max_runs: Some(max) } => builder.lease(lease).max_runs(max),
        Role::Run => builder.claims(false),
        Role::Client => builder.claims(false).drives(!database),
    };
    if let Some(engine) = engine {
        builder = builder.store_engine(engine);
    }
    if let Some(listener) = listener {
        builder = builder.listener(listener);
    }
    builder.open()
}

/// Runs a workflow in this process, with live progress.
async fn run_here(
    engine: &Engine,
    progress: &progress::Progress,
    store: &StoreLocation,
    wf: Arc<Workflow>,
    overrides: IndexMap<String, serde_json::Value>,
    json: bool,
) -> Result<(), Failure> {
    // Other `baton` commands (runs, show, stop...) reach this run through the endpoint.
    baton_core::control::serve(engine)?;
    let unfinished = engine.unfinished_runs()?;
    if !unfinished.is_empty() {
        eprintln!(
            "note: {} unfinished run(s) in {}; `baton recover` continues them",
            unfinished.len(),
            store
        );
    }
    let id = engine.start(wf.clone(), overrides).await?;
    progress.track(&id, wf.len());
    let run = tokio::select! {
        run = engine.wait(&id) => run,
        signal = interrupted() => {
            progress.finish();
            eprintln!("{signal}: stopping the running steps; `baton recover --store {}` continues run {id}", store);
            engine.close().await;
            return Err(Failure::Interrupted);
        }
    };
    progress.finish();
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            engine.close().await;
            return Err(e.into());
        }
    };
    let details = engine.details(&run.id)?;
    engine.close().await;
    print_summary(&details, store, json);
    if run.status == RunStatus::Succeeded {
        Ok(())
    } else {
        Err(Failure::RunFailed)
    }
}

fn print_summary(details: &baton_core::RunDetails, store: &StoreLocation, json: bool) {
    if json {
        println!("{}", report::json(details));
    } else {
        print!("{}", report::summary(details, store));
    }
}

async fn show_details(
    backend: &mut Backend,
    run_id: &str,
) -> Result<baton_core::RunDetails, Failure> {
    match backend.call(Request::Show { run_id: run_id.to_owned() }).await? {
        Response::Details(details) => Ok(*details),
        other => Err(unexpected(other)),
    }
}

/// How long `baton serve` waits for a database that refuses connections at start.
const DATABASE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// `baton serve`: holds the store, resumes its runs and answers other commands until
/// SIGINT or SIGTERM.
async fn serve(
    store: &StoreLocation,
    store_engine: Option<StoreEngine>,
    retention: Retention,
    role: Role,
) -> Result<(), Failure> {
    // A service may start while its database restarts: it waits for it, a minute at most.
    let since = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(200);
    let engine = loop {
        match open_engine(store, store_engine, None, retention, role) {
            Err(EngineError::Store(e @ StoreError::Database { action: "connect", .. }))
                if since.elapsed() < DATABASE_PATIENCE =>
            {
                if pause == std::time::Duration::from_millis(200) {
                    eprintln!(
                        "{e}\nwaiting for the database (up to {}s)",
                        DATABASE_PATIENCE.as_secs()
                    );
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(std::time::Duration::from_secs(5));
            }
            opened => break opened?,
        }
    };
    for (id, resumed) in engine.recover()? {
        if let Err(e) = resumed {
            eprintln!("run {id}: cannot resume: {e}");
        }
    }
    let socket = baton_core::control::serve(&engine)?;
    baton_core::triggers::start_scheduler(&engine);
    // On a database, commands reach the engines through the database itself.
    let endpoint = match socket {
        Some(socket) => format!("control socket {}", socket.display()),
        None => format!("engine {} of the cluster", engine.engine_id()),
    };
    println!("baton serve: holding {store} (pid {}); {endpoint}", std::process::id());
    let failed = tokio::select! {
        signal = interrupted() => {
            eprintln!("{signal}: stopping; unfinished runs resume at the next start");
            None
        }
        failure = engine.store_failed() => Some(failure),
    };
    engine.close().await;
    match failed {
        Some(failure) => Err(EngineError::Store(failure).into()),
        None => Ok(()),
    }
}

async fn recover(
    store: &StoreLocation,
    engine: Option<StoreEngine>,
    json: bool,
) -> Result<(), Failure> {
    let progress = progress::Progress::new(json);
    let listener = Some(progress.listener());
    let engine = match open_engine(store, engine, listener, Retention::default(), Role::Run) {
        Ok(engine) => engine,
        Err(EngineError::Store(ref locked @ StoreError::Locked { ref dir, .. }))
            if baton_core::control::Client::connect(dir).await.is_ok() =>
        {
            return Err(Failure::Store(format!("{locked}\nthat live engine resumes its unfinished runs itself; `baton runs` shows them")));
        }
        Err(e) => return Err(e.into()),
    };
    baton_core::control::serve(&engine)?;
    let resumed = engine.recover()?;
    if resumed.is_empty() {
        if !json {
            println!("nothing to recover: every run in {} is finished", store);
        } else {
            println!("[]");
        }
        return Ok(());
    }
    let mut failed = false;
    let mut results = Vec::new();
    for (id, started) in resumed {
        if let Err(e) = started {
            eprintln!("run {id}: cannot resume: {e}");
            failed = true;
            continue;
        }
        let run = tokio::select! {
            run = engine.wait(&id) => run?,
            signal = interrupted() => {
                progress.finish();
                eprintln!("{signal}: stopping the running steps; `baton recover` continues later");
                engine.close().await;
                return Err(Failure::Interrupted);
            }
        };
        failed |= run.status != RunStatus::Succeeded;
        results.push(engine.details(&id)?);
    }
    progress.finish();
    engine.close().await;
    if json {
        println!("{}", report::json(&results));
    } else {
        for details in &results {
            print!("{}", report::summary(details, store));
        }
    }
    if failed {
        Err(Failure::RunFailed)
    } else {
        Ok(())
    }
}

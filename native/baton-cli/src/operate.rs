//! Commands that steer registered workflows and runs: versions, starts, actions, history.
//! Each is one control request, carried out by whichever engine holds the store.

use crate::backend::{unexpected, Backend};
use crate::{report, Failure};
use baton_core::control::{Request, Response};
use baton_core::RunStatus;
use baton_core::StoreLocation;

/// Sends `request` and prints what it did: `said` for an action, a table or JSON otherwise.
pub async fn call(
    store: &StoreLocation,
    engine: Option<baton_core::StoreEngine>,
    request: Request,
    json: bool,
    said: &str,
) -> Result<(), Failure> {
    let mut backend = Backend::connect(store, engine).await?;
    let response = backend.call(request).await;
    backend.close().await;
    print(response?, json, said)
}

fn print(response: Response, json: bool, said: &str) -> Result<(), Failure> {
    if json {
        let value = match &response {
            Response::Done => serde_json::json!({ "done": said }),
            other => serde_json::to_value(other).map_err(|e| Failure::Store(e.to_string()))?
                ["value"]
                .take(),
        };
        println!("{}", report::json(&value));
        return Ok(());
    }
    match response {
        Response::Done => println!("{said}"),
        Response::Registered { workflow_id, version, changed } => {
            if changed {
                println!("workflow {workflow_id}: registered version {version} (active)");
            } else {
                println!("workflow {workflow_id}: unchanged, still version {version}");
            }
        }
        Response::Workflows(list) => print!("{}", report::workflows(&list)),
        Response::Versions(list) => print!("{}", report::versions(&list)),
        Response::Firings(list) => print!("{}", report::firings(&list)),
        Response::Events(list) => print!("{}", report::timeline(&list)),
        Response::Breakpoints(list) => {
            if list.is_empty() {
                println!("no breakpoints");
            }
            for step in list {
                println!("{step}");
            }
        }
        Response::Limits(list) => {
            if list.is_empty() {
                println!("no limits");
            }
            for (tag, max) in list {
                println!("{tag}  {max}");
            }
        }
        Response::Started { run_id } => println!("{said} {run_id}"),
        Response::Pruned(pruned) => print!("{}", report::pruned(&pruned)),
        Response::CacheEntries(list) => print!("{}", report::cache(&list)),
        Response::CacheCleared(n) => {
            println!("removed {n} cache {}", if n == 1 { "entry" } else { "entries" })
        }
        other => return Err(unexpected(other)),
    }
    Ok(())
}

/// Starts a run (`start`, `restart`): with a live engine, or on a database whose engines
/// drive it, it is reported at once (and waited for with `wait`); when this process holds
/// a store directory, nothing else would drive the run, so it runs here to its end.
pub async fn start(
    store: &StoreLocation,
    engine: Option<baton_core::StoreEngine>,
    request: Request,
    wait: bool,
    json: bool,
) -> Result<(), Failure> {
    let mut backend = Backend::connect(store, engine).await?;
    let run_id = match backend.call(request).await {
        Ok(Response::Started { run_id }) => run_id,
        Ok(other) => return Err(unexpected(other)),
        Err(e) => {
            backend.close().await;
            return Err(e);
        }
    };
    if let Backend::Local(engine) = &backend {
        let takers =
            engine.engines().map(|list| list.iter().filter(|e| e.alive && e.claims).count());
        if !engine.drives() && takers.is_ok_and(|n| n == 0) {
            eprintln!("note: no live engine on {store} takes runs; the run waits for one (`baton serve --store {store}` runs one)");
        }
    }
    if !wait && backend.hands_off() {
        if json {
            println!("{}", serde_json::json!({ "run_id": run_id }));
        } else {
            println!("run {run_id} started");
        }
        return Ok(());
    }
    if !json {
        eprintln!("run {run_id} started; waiting for its end");
    }
    let ended = report_end(&mut backend, &run_id, store, json).await;
    backend.close().await;
    ended
}

/// Waits for a run to end and prints its summary; fails (exit 1) if it did not succeed.
pub async fn report_end(
    backend: &mut Backend,
    run_id: &str,
    store: &StoreLocation,
    json: bool,
) -> Result<(), Failure> {
    let run = match backend.call(Request::Wait { run_id: run_id.to_owned() }).await? {
        Response::Run(run) => run,
        other => return Err(unexpected(other)),
    };
    let details = crate::show_details(backend, run_id).await?;
    crate::print_summary(&details, store, json);
    if run.status == RunStatus::Succeeded {
        Ok(())
    } else {
        Err(Failure::RunFailed)
    }
}

/// `baton events --follow`: every status change of the live engine, one JSON object per
/// line, until interrupted.
pub async fn follow(
    store: &StoreLocation,
    engine: Option<baton_core::StoreEngine>,
) -> Result<(), Failure> {
    let backend = Backend::connect(store, engine).await?;
    let Backend::Remote(mut client) = backend else {
        backend.close().await;
        if matches!(store, StoreLocation::Database(_)) {
            return Err(Failure::Usage(format!(
                "{store} is a database: its engines' events are not streamed to other machines; `baton timeline RUN` shows a run's history, `baton runs` what goes on, and `onEvent` in each engine's host gets the events of the runs it drives"
            )));
        }
        return Err(Failure::Usage(format!(
            "no live engine holds {}: nothing runs, so there is nothing to follow; `baton serve` runs one, and `baton timeline RUN` shows a run's history",
            store
        )));
    };
    let mut reply = client.call(&Request::Events).await;
    loop {
        match reply.map_err(|e| Failure::Store(e.to_string()))? {
            Ok(Response::Event(event)) => {
                println!("{}", serde_json::to_string(&event).unwrap_or_default())
            }
            Ok(other) => return Err(unexpected(other)),
            Err(e) => return Err(Failure::Store(e.message)),
        }
        reply = client.next().await;
    }
}

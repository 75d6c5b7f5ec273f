//! The engine's side of the control endpoint.

use super::{execute, socket_path, RemoteError, Reply, Request, Response};
use crate::engine::{Engine, EngineError, WeakEngine};
use crate::store::StoreError;
use std::os::unix::fs::PermissionsExt;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};

/// Listens on the control socket of `engine`'s store directory until the engine closes;
/// returns the socket's path. A store in memory has no endpoint.
pub fn serve(engine: &Engine) -> Result<Option<std::path::PathBuf>, EngineError> {
    let Some(dir) = engine.store_dir() else { return Ok(None) };
    let path = socket_path(dir);
    let io = |source| StoreError::Io { path: path.clone(), source };
    // We hold the store's lock: a socket file left there is from a process that died.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).map_err(io)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    tracing::info!(socket = %path.display(), "control endpoint listening");
    let weak = engine.downgrade();
    let shutdown = engine.shutdown_token();
    let socket = path.clone();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let owner = unsafe { libc::geteuid() };
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => match stream.peer_cred().map(|c| c.uid()) {
                        // The socket is owner-only; the check holds even if its mode changes.
                        Ok(uid) if uid == owner => {
                            tokio::spawn(serve_connection(stream, weak.clone()));
                        }
                        peer => tracing::warn!(?peer, owner, "control endpoint: a client of another user refused"),
                    },
                    Err(e) => tracing::warn!(error = %e, "control endpoint: accept failed"),
                },
                _ = shutdown.cancelled() => break,
            }
        }
        let _ = std::fs::remove_file(&socket);
    });
    Ok(Some(path))
}

/// Answers the requests of one client, one line each, until it hangs up.
async fn serve_connection(stream: UnixStream, engine: WeakEngine) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply: Reply = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Events) => {
                stream_events(&mut write, &engine).await;
                break;
            }
            Err(e) => Err(RemoteError {
                kind: super::ErrorKind::InvalidRequest,
                message: format!("bad request: {e}"),
            }),
            Ok(request) => match engine.upgrade() {
                None => Err(EngineError::Closed.into()),
                Some(engine) => execute(&engine, request).await.map_err(RemoteError::from),
            },
        };
        if send(&mut write, &reply).await.is_err() {
            break;
        }
    }
}

async fn send(write: &mut OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    let mut text = serde_json::to_string(reply).unwrap_or_else(|e| {
        serde_json::to_string(&Reply::Err(RemoteError {
            kind: super::ErrorKind::Internal,
            message: e.to_string(),
        }))
        .unwrap_or_default()
    });
    text.push('\n');
    write.write_all(text.as_bytes()).await
}

/// Sends every event from now on until the client hangs up or the engine closes. A client
/// too slow to keep up misses events rather than holding the engine back.
async fn stream_events(write: &mut OwnedWriteHalf, engine: &WeakEngine) {
    let Some((mut events, shutdown)) =
        engine.upgrade().map(|e| (e.subscribe(), e.shutdown_token()))
    else {
        return;
    };
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = shutdown.cancelled() => return,
        };
        match event {
            Ok(event) => {
                if send(write, &Ok(Response::Event(Box::new(event)))).await.is_err() {
                    return;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "control endpoint: an event follower fell behind");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

//! The engine's side of the control endpoint.
//!
//! What a client can make the engine hold is bounded: [`Limits`] caps the clients served at
//! once, the length of one request line, and the bytes of requests buffered across all
//! clients (a client waits for room rather than growing the engine's memory).

use super::{execute, socket_path, RemoteError, Reply, Request, Response};
use crate::engine::{Engine, EngineError, WeakEngine};
use crate::store::StoreError;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds of the control endpoint.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Clients served at once; one more is answered with an error and let go.
    pub clients: usize,
    /// The longest request line, in bytes: a definition of a million steps fits.
    pub request_bytes: usize,
    /// Bytes of requests read and not yet answered, across all clients.
    pub buffered_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { clients: 64, request_bytes: 256 << 20, buffered_bytes: 512 << 20 }
    }
}

/// Listens on the control socket of `engine`'s store directory until the engine closes;
/// returns the socket's path. A store in memory has no endpoint.
pub fn serve(engine: &Engine) -> Result<Option<std::path::PathBuf>, EngineError> {
    serve_with(engine, Limits::default())
}

/// [`serve`] within `limits`.
pub fn serve_with(
    engine: &Engine,
    limits: Limits,
) -> Result<Option<std::path::PathBuf>, EngineError> {
    let Some(dir) = engine.store_dir() else { return Ok(None) };
    let path = socket_path(dir);
    let io = |source| StoreError::Io { path: path.clone(), source };
    // We hold the store's lock: a socket file left there is from a process that died.
    let _ = std::fs::remove_file(&path);
    // Bound under another name and made owner-only there, then renamed: the socket never
    // appears at its path with the umask's wider mode, not even for a moment.
    let unready = path.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&unready);
    let listener = UnixListener::bind(&unready).map_err(io)?;
    std::fs::set_permissions(&unready, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&unready, &path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&unready);
            io(e)
        })?;
    tracing::info!(socket = %path.display(), "control endpoint listening");
    let weak = engine.downgrade();
    let shutdown = engine.shutdown_token();
    // Removed however the task ends: the engine closing, or the runtime dropped when a
    // host returns on an error.
    let socket = SocketFile(path.clone());
    // SAFETY: geteuid has no preconditions and cannot fail.
    let owner = unsafe { libc::geteuid() };
    let clients = Arc::new(Semaphore::new(limits.clients));
    let budget = Arc::new(Semaphore::new(limits.buffered_bytes));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => match stream.peer_cred().map(|c| c.uid()) {
                        // The socket is owner-only; the check holds even if its mode changes.
                        Ok(uid) if uid == owner => match clients.clone().try_acquire_owned() {
                            Ok(slot) => {
                                let serving = serve_connection(stream, weak.clone(), limits, budget.clone());
                                tokio::spawn(async move {
                                    serving.await;
                                    drop(slot);
                                });
                            }
                            Err(_) => {
                                tokio::spawn(refuse(stream, limits.clients));
                            }
                        },
                        peer => tracing::warn!(?peer, owner, "control endpoint: a client of another user refused"),
                    },
                    Err(e) => tracing::warn!(error = %e, "control endpoint: accept failed"),
                },
                _ = shutdown.cancelled() => break,
            }
        }
        drop(socket);
    });
    Ok(Some(path))
}

/// The socket's file, removed on drop.
struct SocketFile(std::path::PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Tells a client over the limit why it is let go.
async fn refuse(stream: UnixStream, clients: usize) {
    let (_, mut write) = stream.into_split();
    let message = format!("the engine serves {clients} clients at once; try again");
    let _ = send(&mut write, &Err(RemoteError { kind: super::ErrorKind::InvalidRequest, message }))
        .await;
}

/// One request line read within the limits.
enum Line {
    /// The line, and the share of the budget it holds until it is answered.
    Request(String, Vec<OwnedSemaphorePermit>),
    /// Why the connection ends with an error.
    Refused(String),
    /// The client hung up.
    End,
}

/// Reads up to the next newline, taking budget for every byte it keeps.
async fn read_line(
    read: &mut BufReader<OwnedReadHalf>,
    limits: Limits,
    budget: &Arc<Semaphore>,
) -> Line {
    let mut line = Vec::new();
    let mut held = Vec::new();
    loop {
        let chunk = match read.fill_buf().await {
            Ok([]) if line.is_empty() => return Line::End,
            Ok([]) => return Line::Refused("the request ends without a newline".into()),
            Ok(chunk) => chunk,
            Err(_) => return Line::End,
        };
        let (take, complete) = match chunk.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        if line.len() + take > limits.request_bytes + 1 {
            return Line::Refused(format!(
                "a request is limited to {} bytes",
                limits.request_bytes
            ));
        }
        // A chunk is at most the reader's buffer (8 KiB), far below u32::MAX.
        match budget.clone().acquire_many_owned(take as u32).await {
            Ok(permit) => held.push(permit),
            Err(_) => return Line::End,
        }
        line.extend_from_slice(&chunk[..take]);
        read.consume(take);
        if complete {
            line.pop();
            return match String::from_utf8(line) {
                Ok(text) => Line::Request(text, held),
                Err(_) => Line::Refused("a request must be UTF-8 text".into()),
            };
        }
    }
}

/// Answers the requests of one client, one line each, until it hangs up.
async fn serve_connection(
    stream: UnixStream,
    engine: WeakEngine,
    limits: Limits,
    budget: Arc<Semaphore>,
) {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    loop {
        let (line, _held) = match read_line(&mut read, limits, &budget).await {
            Line::Request(line, held) => (line, held),
            Line::End => break,
            Line::Refused(message) => {
                let error = RemoteError { kind: super::ErrorKind::InvalidRequest, message };
                let _ = send(&mut write, &Err(error)).await;
                break;
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the endpoint answers `bytes` with, until it closes the connection.
    async fn answer(socket: &std::path::Path, bytes: &[u8], close: bool) -> String {
        let mut stream = UnixStream::connect(socket).await.unwrap();
        // The endpoint may answer and close before it has read everything.
        let _ = stream.write_all(bytes).await;
        if close {
            let _ = stream.shutdown().await;
        }
        let mut reply = String::new();
        let mut line = BufReader::new(&mut stream);
        let read = line.read_line(&mut reply);
        tokio::time::timeout(std::time::Duration::from_secs(10), read).await.unwrap().unwrap();
        reply
    }

    /// An engine on a store of its own, and its endpoint's socket.
    fn endpoint(dir: &std::path::Path, limits: Limits) -> (Engine, std::path::PathBuf) {
        let engine = Engine::builder().store_dir(dir).open().unwrap();
        let socket = serve_with(&engine, limits).unwrap().unwrap();
        (engine, socket)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn abuse_gets_an_error_or_a_closed_connection_and_the_engine_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let limits = Limits { request_bytes: 64, buffered_bytes: 1 << 16, ..Limits::default() };
        let (engine, socket) = endpoint(dir.path(), limits);
        let garbage = answer(&socket, b"\xff\xfe\x00garbage\n", false).await;
        assert!(garbage.contains("a request must be UTF-8 text"), "{garbage}");
        let long = answer(&socket, &[b'x'; 100], false).await;
        assert!(long.contains("a request is limited to 64 bytes"), "{long}");
        let truncated = answer(&socket, b"{\"command\": \"ru", true).await;
        assert!(truncated.contains("the request ends without a newline"), "{truncated}");
        let unknown = answer(&socket, b"{\"command\": \"nope\"}\n", false).await;
        assert!(unknown.contains("bad request: unknown variant `nope`"), "{unknown}");
        // The engine still answers.
        let served = answer(&socket, b"{\"command\": \"runs\"}\n", false).await;
        assert!(served.starts_with("{\"Ok\""), "{served}");
        engine.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_past_the_limit_is_let_go_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, socket) = endpoint(dir.path(), Limits { clients: 2, ..Limits::default() });
        // Connections are accepted in order: the first two hold the places.
        let _first = UnixStream::connect(&socket).await.unwrap();
        let _second = UnixStream::connect(&socket).await.unwrap();
        let third = answer(&socket, b"", false).await;
        assert!(third.contains("serves 2 clients at once; try again"), "{third}");
        engine.close().await;
    }
}

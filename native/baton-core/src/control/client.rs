//! The client's side of the control endpoint.

use super::{socket_path, Reply, Request};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

/// How long a starting engine may take to open its socket.
const STARTING: Duration = Duration::from_secs(1);

/// A connection to a live engine.
pub struct Client {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    socket: PathBuf,
}

/// Why talking to the live engine failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Nothing listens on the store's socket: no live engine holds it.
    #[error("no live engine answers on {socket}: {source}")]
    NoEngine {
        /// The socket tried.
        socket: PathBuf,
        /// Why connecting failed.
        source: std::io::Error,
    },
    /// The connection broke, or the engine's answer does not decode.
    #[error("the live engine on {socket} did not answer: {message}")]
    Broken {
        /// The socket connected to.
        socket: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl Client {
    /// Connects to the engine holding the store in `dir`. An engine takes the store's lock
    /// a moment before its socket listens, so a missing socket is tried again for up to a
    /// second before the answer is that no engine is there.
    pub async fn connect(dir: &Path) -> Result<Client, ConnectError> {
        let socket = socket_path(dir);
        let started = std::time::Instant::now();
        let stream = loop {
            match UnixStream::connect(&socket).await {
                Ok(stream) => break stream,
                Err(e)
                    if started.elapsed() < STARTING
                        && matches!(
                            e.kind(),
                            ErrorKind::NotFound | ErrorKind::ConnectionRefused
                        ) =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => return Err(ConnectError::NoEngine { socket, source }),
            }
        };
        let (read, write) = stream.into_split();
        Ok(Client { lines: BufReader::new(read).lines(), write, socket })
    }

    /// Sends one request and reads its answer.
    pub async fn call(&mut self, request: &Request) -> Result<Reply, ConnectError> {
        let broken =
            |message: String| ConnectError::Broken { socket: self.socket.clone(), message };
        let mut line = serde_json::to_string(request).map_err(|e| broken(e.to_string()))?;
        line.push('\n');
        self.write.write_all(line.as_bytes()).await.map_err(|e| broken(e.to_string()))?;
        self.next().await
    }

    /// The next answer on the connection (a request may be answered by many).
    pub async fn next(&mut self) -> Result<Reply, ConnectError> {
        let broken =
            |message: String| ConnectError::Broken { socket: self.socket.clone(), message };
        match self.lines.next_line().await {
            Ok(Some(line)) => {
                serde_json::from_str(&line).map_err(|e| broken(format!("{e}: {line}")))
            }
            Ok(None) => Err(broken("the connection closed".into())),
            Err(e) => Err(broken(e.to_string())),
        }
    }
}

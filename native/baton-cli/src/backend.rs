//! Where a command goes: an engine the CLI opens on the store, or — when another process
//! holds a store directory — that live engine, through its control socket. A database is
//! shared by every engine of its cluster: the CLI opens it as a client, which writes what
//! it is asked (a start, a signal) and leaves the driving to the serving engines.

use crate::Failure;
use baton_core::control::{self, Client, ConnectError, Request, Response};
use baton_core::engine::Listener;
use baton_core::{Engine, EngineError, Retention, StoreEngine, StoreError, StoreLocation};

pub enum Backend {
    /// The CLI holds the store.
    Local(Engine),
    /// Another process holds it and answers on its socket.
    Remote(Client),
}

impl Backend {
    /// Opens the store, or connects to the live engine holding it. Without a live engine
    /// behind the lock, the store's own error stands (exit 3).
    pub async fn connect(
        store: &StoreLocation,
        engine: Option<StoreEngine>,
    ) -> Result<Backend, Failure> {
        Self::connect_with(store, engine, None, Retention::default(), crate::Role::Client).await
    }

    /// [`connect`](Backend::connect), with `listener` receiving the events of an engine the
    /// CLI opens, which keeps history as `retention` says.
    pub async fn connect_with(
        store: &StoreLocation,
        engine: Option<StoreEngine>,
        listener: Option<Listener>,
        retention: Retention,
        role: crate::Role,
    ) -> Result<Backend, Failure> {
        match crate::open_engine(store, engine, listener, retention, role) {
            Ok(engine) => Ok(Backend::Local(engine)),
            Err(EngineError::Store(ref locked @ StoreError::Locked { ref dir, .. })) => {
                match Client::connect(dir).await {
                    Ok(client) => Ok(Backend::Remote(client)),
                    Err(e @ ConnectError::NoEngine { .. }) => {
                        Err(Failure::Store(format!("{locked}\n{e}")))
                    }
                    Err(e) => Err(Failure::Store(e.to_string())),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether other engines drive what this command starts: a live engine behind a
    /// socket, or the engines of a database.
    pub fn hands_off(&self) -> bool {
        match self {
            Backend::Local(engine) => !engine.drives(),
            Backend::Remote(_) => true,
        }
    }

    /// Carries out one request.
    pub async fn call(&mut self, request: Request) -> Result<Response, Failure> {
        match self {
            Backend::Local(engine) => Ok(control::execute(engine, request).await?),
            Backend::Remote(client) => {
                let reply =
                    client.call(&request).await.map_err(|e| Failure::Store(e.to_string()))?;
                reply.map_err(|e| Failure::Engine(e.kind, e.message))
            }
        }
    }

    /// Lets go of the store, if the CLI holds it.
    pub async fn close(self) {
        if let Backend::Local(engine) = self {
            engine.close().await;
        }
    }
}

/// The answer was not the one the request calls for: the two sides disagree.
pub fn unexpected(response: Response) -> Failure {
    Failure::Store(format!("unexpected answer from the engine: {response:?}"))
}

//! The PostgreSQL engine: the same key space as redb and sled, in one table of a database
//! (`baton_kv`, keys and values as `bytea`), created and migrated at open. Several engines
//! share one database (see `engine/cluster.rs`): what keeps them apart is the batches'
//! expectations, checked in the writing transaction.
//!
//! The [`Store`] trait is synchronous and its reads come from tokio workers, where a
//! nested runtime cannot block. So a thread of its own, with a current-thread runtime,
//! owns two connections: one writes (the group-commit thread's batches, one transaction
//! each), the other reads. Callers send requests over a channel and block on a reply, as a
//! redb read blocks a worker on the disk. Every statement is prepared once per connection.
//!
//! A lost connection is made again, with backoff: a commit waits meanwhile (so its run
//! launches nothing new) and is retried once the database is back, for up to
//! [`RECONNECT_PATIENCE`]; a read waits too, for up to [`READ_PATIENCE`]. Retrying a commit
//! whose end was not heard is safe: its writes are puts and deletes of whole values, and
//! its expectations were checked when it first ran.
//!
//! A batch with expectations is written at `SERIALIZABLE` isolation, its expected keys
//! read `FOR UPDATE` first: of two engines expecting the same key, one writes and the
//! other finds it changed. The SQL stays within what CockroachDB accepts too, but for the
//! advisory lock that orders first migrations (see the README).
//!
//! TLS is what the URL's `sslmode` and `sslrootcert` ask, as libpq does it (see `tls`).

use super::location::DatabaseUrl;
use super::tls::{self, Tls};
use super::{pgpass, Batch, Op, Store, StoreError, Table};
use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc as reply;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::config::Host;
use tokio_postgres::config::SslMode as DriverSslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Statement};

/// The schema, one migration per version: a database at version N has had the first N.
const MIGRATIONS: &[&str] = &["CREATE TABLE baton_kv (k BYTEA PRIMARY KEY, v BYTEA NOT NULL)"];
/// The schema version this Baton writes.
const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;
/// The transaction lock that makes concurrent first opens migrate one after the other
/// ("baton" in ASCII, plus one).
const MIGRATION_LOCK: i64 = 0x62_6174_6f6f;
/// Rows a scan reads at a time, so that one that stops early reads little.
const PAGE: usize = 1000;
/// How long a connection attempt may take, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long data sent may go unacknowledged before the connection counts as lost (a
/// server gone silent behind a partition), unless the URL says otherwise: a commit then
/// fails rather than hangs.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a commit waits for a lost database to come back before it fails (and its
/// engine stops).
const RECONNECT_PATIENCE: Duration = Duration::from_secs(600);
/// How long a read waits for a lost database to come back before it fails.
const READ_PATIENCE: Duration = Duration::from_secs(30);
/// The longest wait between two attempts to reconnect.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(5);
/// Times a transaction is tried again after the server found it in conflict with another
/// (a serialization failure, a deadlock).
const CONFLICT_RETRIES: usize = 50;

/// A reply channel: what the thread sends back to a blocked caller.
type Reply<T> = reply::Sender<Result<T, StoreError>>;

/// Batches to write in one transaction; the reply says which applied.
struct Write {
    batches: Vec<Batch>,
    reply: Reply<Vec<bool>>,
}

enum Read {
    /// The values of many keys, in one round trip.
    Many {
        keys: Vec<Vec<u8>>,
        reply: Reply<HashMap<Vec<u8>, Vec<u8>>>,
    },
    Get {
        key: Vec<u8>,
        reply: Reply<Option<Vec<u8>>>,
    },
    /// Up to [`PAGE`] entries with `from <= key < to`, in key order.
    Page {
        from: Vec<u8>,
        to: Vec<u8>,
        reply: Reply<Vec<(Vec<u8>, Vec<u8>)>>,
    },
    /// The server's time, in milliseconds since the epoch.
    Now {
        reply: Reply<u64>,
    },
}

pub(super) struct PostgresStore {
    url: DatabaseUrl,
    writes: Option<mpsc::UnboundedSender<Write>>,
    reads: Option<mpsc::UnboundedSender<Read>>,
    thread: Option<JoinHandle<()>>,
}

/// An error of `action` on the database at `url`.
fn error(url: &DatabaseUrl, action: &'static str, message: impl ToString) -> StoreError {
    StoreError::Database { url: url.to_string(), action, message: message.to_string() }
}

/// An error of the driver or the server in `action`; a full disk on the server is one.
fn fail(url: &DatabaseUrl, action: &'static str, e: &tokio_postgres::Error) -> StoreError {
    if e.code() == Some(&SqlState::DISK_FULL) {
        return StoreError::Full { message: format!("PostgreSQL at {url}: {}", described(e)) };
    }
    error(url, action, described(e))
}

/// Whether `e` means the connection is gone: closed, or the server said it ends it (a
/// restart, an administrator) a moment before the driver sees the socket close.
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    e.is_closed()
        || e.code().is_some_and(|code| {
            matches!(
                *code,
                SqlState::ADMIN_SHUTDOWN | SqlState::CRASH_SHUTDOWN | SqlState::CANNOT_CONNECT_NOW
            ) || code.code().starts_with("08")
        })
}

/// `e` and its causes: the driver's own words are only its kind ("db error", "error
/// connecting to server"), what happened is in the causes.
fn described(e: &tokio_postgres::Error) -> String {
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// What the database is reached with: the driver's configuration, and TLS when the URL
/// asks for it.
struct Connector {
    config: Config,
    tls: Option<Tls>,
}

impl PostgresStore {
    /// Connects, and creates or migrates the schema.
    pub(super) fn open(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let connector = connector(url)?;
        let (writes, write_rx) = mpsc::unbounded_channel();
        let (reads, read_rx) = mpsc::unbounded_channel();
        let (opened, open_result) = reply::channel();
        let thread_url = url.clone();
        let thread = std::thread::Builder::new()
            .name("baton-postgres".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
                match runtime {
                    Ok(runtime) => {
                        runtime.block_on(serve(&connector, &thread_url, opened, write_rx, read_rx))
                    }
                    Err(e) => drop(opened.send(Err(error(&thread_url, "start", e)))),
                }
            })
            .map_err(|e| error(url, "start", e))?;
        let store = PostgresStore {
            url: url.clone(),
            writes: Some(writes),
            reads: Some(reads),
            thread: Some(thread),
        };
        open_result.recv().map_err(|_| store.gone("open"))??;
        tracing::debug!(url = %url, "PostgreSQL store opened");
        Ok(store)
    }

    /// The error of a request the thread did not answer: it has ended.
    fn gone(&self, action: &'static str) -> StoreError {
        error(&self.url, action, "the connection thread has ended")
    }

    fn read<T>(&self, request: impl FnOnce(Reply<T>) -> Read) -> Result<T, StoreError> {
        let (tx, rx) = reply::channel();
        let sent = self.reads.as_ref().is_some_and(|reads| reads.send(request(tx)).is_ok());
        if !sent {
            return Err(StoreError::Closed);
        }
        rx.recv().map_err(|_| self.gone("read"))?
    }
}

impl Drop for PostgresStore {
    /// Closes both connections, and waits for it.
    fn drop(&mut self) {
        self.writes.take();
        self.reads.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store for PostgresStore {
    fn commit(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut unguarded = batch.clone();
        unguarded.expect.clear();
        self.commit_all(vec![unguarded]).map(drop)
    }

    fn commit_all(&self, batches: Vec<Batch>) -> Result<Vec<bool>, StoreError> {
        let (reply, rx) = reply::channel();
        let write = Write { batches, reply };
        let sent = self.writes.as_ref().is_some_and(|writes| writes.send(write).is_ok());
        if !sent {
            return Err(StoreError::Closed);
        }
        rx.recv().map_err(|_| self.gone("commit"))?
    }

    fn now_ms(&self) -> Result<u64, StoreError> {
        self.read(|reply| Read::Now { reply })
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let key = table.key(key);
        self.read(|reply| Read::Get { key, reply })
    }

    fn get_many(&self, table: Table, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let full: Vec<Vec<u8>> = keys.iter().map(|k| table.key(k)).collect();
        let found = self.read(|reply| Read::Many { keys: full.clone(), reply })?;
        Ok(full.iter().map(|k| found.get(k).cloned()).collect())
    }

    fn scan_from(
        &self,
        table: Table,
        prefix: &[u8],
        from: &[u8],
        f: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let start = table.key(prefix);
        let to = upper_bound(&start);
        let mut from = table.key(from).max(start);
        loop {
            let page = self.read(|reply| Read::Page { from, to: to.clone(), reply })?;
            let full = page.len() == PAGE;
            for (k, v) in &page {
                if !f(&k[1..], v) {
                    return Ok(());
                }
            }
            match page.into_iter().last() {
                // The smallest key after the last one read.
                Some((mut last, _)) if full => {
                    last.push(0);
                    from = last;
                }
                _ => return Ok(()),
            }
        }
    }
}

/// The first key past every key that starts with `start`. Keys start with a table's
/// prefix, a letter, so there is always one.
fn upper_bound(start: &[u8]) -> Vec<u8> {
    let mut end = start.to_vec();
    while end.len() > 1 && end.last() == Some(&0xff) {
        end.pop();
    }
    if let Some(last) = end.last_mut() {
        *last = last.saturating_add(1);
    }
    end
}

/// The driver's configuration for `url`, with what libpq would fill in: the user (PGUSER,
/// else the system user), the host (PGHOST, else localhost), the password (PGPASSWORD,
/// else the password file).
fn config(url: &DatabaseUrl) -> Result<Config, StoreError> {
    let invalid = |message: &str| error(url, "configure", message);
    let mut config = url.secret().parse::<Config>().map_err(|e| invalid(&e.to_string()))?;
    if config.get_user().is_none() {
        let user = std::env::var("PGUSER").or_else(|_| std::env::var("USER"));
        config.user(user.map_err(|_| invalid("no user in the URL, PGUSER or USER"))?);
    }
    if config.get_hosts().is_empty() {
        config.host(std::env::var("PGHOST").as_deref().unwrap_or("localhost"));
    }
    if config.get_password().is_none() {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            config.password(password);
        } else {
            let host = match config.get_hosts().first() {
                Some(Host::Tcp(host)) => host.clone(),
                _ => "localhost".to_owned(),
            };
            let user = config.get_user().unwrap_or_default().to_owned();
            let login = pgpass::Login {
                host: &host,
                port: config.get_ports().first().copied().unwrap_or(5432),
                database: config.get_dbname().unwrap_or(&user),
                user: &user,
            };
            if let Some(password) = pgpass::lookup(&login) {
                config.password(password);
            }
        }
    }
    if config.get_application_name().is_none() {
        config.application_name(format!("baton (pid {})", std::process::id()));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(TCP_USER_TIMEOUT);
    }
    Ok(config)
}

/// The driver's configuration for `url` (see [`config`]) and the TLS it asks for. TLS is
/// not used over Unix sockets, as libpq does not: the server accepts none there.
fn connector(url: &DatabaseUrl) -> Result<Connector, StoreError> {
    let mut config = config(url)?;
    let local = config.get_hosts().iter().all(|host| !matches!(host, Host::Tcp(_)));
    let tls = if local {
        None
    } else {
        Tls::new(url.tls(), tls::home().as_deref()).map_err(|e| error(url, "configure TLS", e))?
    };
    // The driver only asks the server for TLS; what is checked is the connector's.
    config.ssl_mode(if tls.is_some() { DriverSslMode::Require } else { DriverSslMode::Disable });
    Ok(Connector { config, tls })
}

/// The thread's work: open, say how it went, then answer until the store is dropped.
async fn serve(
    connector: &Connector,
    url: &DatabaseUrl,
    opened: Reply<()>,
    writes: mpsc::UnboundedReceiver<Write>,
    reads: mpsc::UnboundedReceiver<Read>,
) {
    let writer = match Writer::open(connector, url).await {
        Ok(writer) => writer,
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let reader = match Reader::connect(connector, url).await {
        Ok(reader) => reader,
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let _ = opened.send(Ok(()));
    tokio::join!(writer.run(connector, writes), reader.run(connector, url, reads));
}

/// A connection, its driver running as a task of the thread's runtime.
async fn connect(connector: &Connector, url: &DatabaseUrl) -> Result<Client, StoreError> {
    match &connector.tls {
        None => spawn(connector.config.connect(NoTls).await, connector, url),
        Some(tls) => spawn(connector.config.connect(tls.connector.clone()).await, connector, url),
    }
}

/// The client of a new connection, its connection driven by a task; or what failed.
fn spawn<S, T>(
    connected: Result<(Client, tokio_postgres::Connection<S, T>), tokio_postgres::Error>,
    connector: &Connector,
    url: &DatabaseUrl,
) -> Result<Client, StoreError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (client, connection) =
        connected.map_err(|e| match connector.tls.as_ref().and_then(|tls| tls.explain(&e)) {
            Some(explained) => error(url, "connect", explained),
            None => fail(url, "connect", &e),
        })?;
    let url = url.clone();
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(url = %url, error = %e, "PostgreSQL connection lost");
        }
    });
    Ok(client)
}

/// The write connection's statements.
struct WriteConn {
    client: Client,
    upsert: Statement,
    delete: Statement,
    /// The values of expected keys, locked until the transaction ends.
    lock: Statement,
}

impl WriteConn {
    async fn connect(connector: &Connector, url: &DatabaseUrl) -> Result<WriteConn, StoreError> {
        let client = connect(connector, url).await?;
        let prepare = |sql: &'static str| {
            let (client, url) = (&client, url);
            async move { client.prepare(sql).await.map_err(|e| fail(url, "prepare", &e)) }
        };
        let upsert = prepare(
            "INSERT INTO baton_kv (k, v) SELECT * FROM unnest($1::BYTEA[], $2::BYTEA[]) \
             ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        )
        .await?;
        let delete = prepare("DELETE FROM baton_kv WHERE k = ANY($1::BYTEA[])").await?;
        let lock =
            prepare("SELECT k, v FROM baton_kv WHERE k = ANY($1::BYTEA[]) ORDER BY k FOR UPDATE")
                .await?;
        Ok(WriteConn { client, upsert, delete, lock })
    }

    /// One transaction: the batches whose expectations hold are durable when it returns
    /// (synchronous commit, the server's default).
    async fn commit(&mut self, batches: &[Batch]) -> Result<Vec<bool>, tokio_postgres::Error> {
        let guarded = batches.iter().any(|b| !b.expect.is_empty());
        let txn = match guarded {
            true => self.client.build_transaction().isolation_level(IsolationLevel::Serializable),
            false => self.client.build_transaction(),
        }
        .start()
        .await?;
        let applied = if guarded {
            let mut keys: Vec<Vec<u8>> =
                batches.iter().flat_map(|b| &b.expect).map(|e| e.table.key(&e.key)).collect();
            keys.sort();
            keys.dedup();
            let found: HashMap<Vec<u8>, Vec<u8>> = txn
                .query(&self.lock, &[&keys])
                .await?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            let decided =
                super::decide(batches, |table, key| Ok(found.get(&table.key(key)).cloned()));
            decided.unwrap_or_else(|_| vec![false; batches.len()])
        } else {
            vec![true; batches.len()]
        };
        // A later op on a key wins; what is left applies in any order. Sorted keys keep
        // the index writes in order.
        let mut last: BTreeMap<Vec<u8>, Option<&[u8]>> = BTreeMap::new();
        for (batch, _) in batches.iter().zip(&applied).filter(|(_, a)| **a) {
            for op in &batch.ops {
                match op {
                    Op::Put(t, k, v) => last.insert(t.key(k), Some(v.as_slice())),
                    Op::Delete(t, k) => last.insert(t.key(k), None),
                };
            }
        }
        let (mut put_keys, mut put_values, mut deletes) = (vec![], vec![], vec![]);
        for (k, v) in last {
            match v {
                Some(v) => {
                    put_keys.push(k);
                    put_values.push(v);
                }
                None => deletes.push(k),
            }
        }
        if !deletes.is_empty() {
            txn.execute(&self.delete, &[&deletes]).await?;
        }
        if !put_keys.is_empty() {
            txn.execute(&self.upsert, &[&put_keys, &put_values]).await?;
        }
        txn.commit().await?;
        Ok(applied)
    }
}

/// The write connection, made again when it was lost.
struct Writer {
    conn: Option<WriteConn>,
    url: DatabaseUrl,
}

impl Writer {
    async fn open(connector: &Connector, url: &DatabaseUrl) -> Result<Writer, StoreError> {
        let mut client = connect(connector, url).await?;
        migrate(&mut client, url).await?;
        drop(client);
        Ok(Writer { conn: Some(WriteConn::connect(connector, url).await?), url: url.clone() })
    }

    async fn run(mut self, connector: &Connector, mut writes: mpsc::UnboundedReceiver<Write>) {
        while let Some(write) = writes.recv().await {
            let result = self.commit(connector, &write.batches).await;
            let _ = write.reply.send(result);
        }
    }

    /// Writes `batches`, trying again on a conflict the server reports and after a lost
    /// connection, until the database is back or [`RECONNECT_PATIENCE`] has passed.
    async fn commit(
        &mut self,
        connector: &Connector,
        batches: &[Batch],
    ) -> Result<Vec<bool>, StoreError> {
        let since = std::time::Instant::now();
        let mut backoff = Duration::from_millis(50);
        let mut conflicts = 0;
        loop {
            let error = match self.conn.as_mut().filter(|c| !c.client.is_closed()) {
                Some(conn) => match conn.commit(batches).await {
                    Ok(applied) => return Ok(applied),
                    Err(e) => e,
                },
                None => match WriteConn::connect(connector, &self.url).await {
                    Ok(conn) => {
                        tracing::info!(url = %self.url, "PostgreSQL store: reconnected");
                        self.conn = Some(conn);
                        continue;
                    }
                    Err(e) => {
                        if since.elapsed() > RECONNECT_PATIENCE {
                            return Err(e);
                        }
                        tracing::warn!(url = %self.url, error = %e, "PostgreSQL store: cannot reconnect; trying again");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(RECONNECT_BACKOFF);
                        continue;
                    }
                },
            };
            let retry = matches!(
                error.code(),
                Some(&SqlState::T_R_SERIALIZATION_FAILURE | &SqlState::T_R_DEADLOCK_DETECTED)
            );
            if retry && conflicts < CONFLICT_RETRIES {
                conflicts += 1;
                continue;
            }
            let lost =
                connection_lost(&error) || self.conn.as_ref().is_some_and(|c| c.client.is_closed());
            if lost && since.elapsed() < RECONNECT_PATIENCE {
                tracing::warn!(url = %self.url, error = %error, "PostgreSQL store: connection lost during a commit; it is retried once the database is back");
                self.conn = None;
                continue;
            }
            return Err(fail(&self.url, "commit", &error));
        }
    }
}

/// Brings the schema to [`SCHEMA_VERSION`], in one transaction under a lock, so that
/// engines opening a new database at once migrate it once; refuses a newer schema.
async fn migrate(client: &mut Client, url: &DatabaseUrl) -> Result<(), StoreError> {
    let failed = |e: tokio_postgres::Error| fail(url, "migrate", &e);
    let txn = client.transaction().await.map_err(failed)?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(failed)?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS baton_schema (id INT PRIMARY KEY, version INT NOT NULL)",
    )
    .await
    .map_err(failed)?;
    let found: i32 = txn
        .query_opt("SELECT version FROM baton_schema WHERE id = 1", &[])
        .await
        .map_err(failed)?
        .map_or(0, |row| row.get(0));
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema { url: url.to_string(), found, known: SCHEMA_VERSION });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    for migration in &MIGRATIONS[found.max(0) as usize..] {
        txn.batch_execute(migration).await.map_err(failed)?;
    }
    txn.execute(
        "INSERT INTO baton_schema (id, version) VALUES (1, $1) \
         ON CONFLICT (id) DO UPDATE SET version = excluded.version",
        &[&SCHEMA_VERSION],
    )
    .await
    .map_err(failed)?;
    txn.commit().await.map_err(failed)?;
    tracing::info!(url = %url, from = found, to = SCHEMA_VERSION, "PostgreSQL schema migrated");
    Ok(())
}

/// The read connection, made again when it was lost.
struct Reader {
    client: Client,
    get: Statement,
    many: Statement,
    page: Statement,
    now: Statement,
}

impl Reader {
    async fn connect(connector: &Connector, url: &DatabaseUrl) -> Result<Reader, StoreError> {
        let client = connect(connector, url).await?;
        let prepare = |sql: String| {
            let (client, url) = (&client, url);
            async move { client.prepare(&sql).await.map_err(|e| fail(url, "prepare", &e)) }
        };
        let get = prepare("SELECT v FROM baton_kv WHERE k = $1".into()).await?;
        let many = prepare("SELECT k, v FROM baton_kv WHERE k = ANY($1::BYTEA[])".into()).await?;
        let page = prepare(format!(
            "SELECT k, v FROM baton_kv WHERE k >= $1 AND k < $2 ORDER BY k LIMIT {PAGE}"
        ))
        .await?;
        let now =
            prepare("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT".into()).await?;
        Ok(Reader { client, get, many, page, now })
    }

    async fn run(
        self,
        connector: &Connector,
        url: &DatabaseUrl,
        mut reads: mpsc::UnboundedReceiver<Read>,
    ) {
        let mut reader = Some(self);
        while let Some(mut read) = reads.recv().await {
            // A lost connection is made again, with backoff, while the database restarts:
            // a read waits for it, as a commit does, for up to READ_PATIENCE.
            let since = std::time::Instant::now();
            let mut backoff = Duration::from_millis(50);
            loop {
                let r = match reader.take().filter(|r| !r.client.is_closed()) {
                    Some(r) => r,
                    None => match Reader::connect(connector, url).await {
                        Ok(r) => r,
                        Err(e) if since.elapsed() < READ_PATIENCE => {
                            tracing::debug!(url = %url, error = %e, "PostgreSQL store: cannot reconnect to read; trying again");
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(RECONNECT_BACKOFF);
                            continue;
                        }
                        Err(e) => {
                            read.fail(e);
                            break;
                        }
                    },
                };
                let outcome = r.answer(read).await;
                let lost = r.client.is_closed();
                reader = Some(r);
                match outcome {
                    Ok(()) => break,
                    Err((again, e))
                        if (lost || connection_lost(&e)) && since.elapsed() < READ_PATIENCE =>
                    {
                        reader = None;
                        read = again;
                    }
                    Err((again, e)) => {
                        again.fail(fail(url, "read", &e));
                        break;
                    }
                }
            }
        }
    }

    /// Answers `read`, or gives it back with the error.
    async fn answer(&self, read: Read) -> Result<(), (Read, tokio_postgres::Error)> {
        match read {
            Read::Many { keys, reply } => match self.client.query(&self.many, &[&keys]).await {
                Ok(rows) => {
                    let _ = reply.send(Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect()));
                    Ok(())
                }
                Err(e) => Err((Read::Many { keys, reply }, e)),
            },
            Read::Get { key, reply } => match self.client.query_opt(&self.get, &[&key]).await {
                Ok(row) => {
                    let _ = reply.send(Ok(row.map(|r| r.get(0))));
                    Ok(())
                }
                Err(e) => Err((Read::Get { key, reply }, e)),
            },
            Read::Page { from, to, reply } => {
                match self.client.query(&self.page, &[&from, &to]).await {
                    Ok(rows) => {
                        let _ = reply.send(Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect()));
                        Ok(())
                    }
                    Err(e) => Err((Read::Page { from, to, reply }, e)),
                }
            }
            Read::Now { reply } => match self.client.query_one(&self.now, &[]).await {
                Ok(row) => {
                    let _ = reply.send(Ok(row.get::<_, i64>(0).max(0) as u64));
                    Ok(())
                }
                Err(e) => Err((Read::Now { reply }, e)),
            },
        }
    }
}

impl Read {
    fn fail(self, e: StoreError) {
        match self {
            Read::Get { reply, .. } => drop(reply.send(Err(e))),
            Read::Many { reply, .. } => drop(reply.send(Err(e))),
            Read::Page { reply, .. } => drop(reply.send(Err(e))),
            Read::Now { reply } => drop(reply.send(Err(e))),
        }
    }
}

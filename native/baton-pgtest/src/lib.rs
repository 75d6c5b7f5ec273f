//! A throwaway PostgreSQL server for Baton's tests and benchmarks: `initdb` into a
//! temporary directory, `postgres` on a free port of 127.0.0.1 (and a Unix socket in that
//! directory), stopped when the test binary exits. When running as root, the server runs
//! as the `postgres` user, which PostgreSQL insists on.
//!
//! Each test takes a database of its own from [`database`], so tests of one binary share
//! a server but never data. Without PostgreSQL installed, [`database`] returns `None`
//! after saying why, and the test skips; with PostgreSQL installed, a server that cannot
//! start fails the test. What it is not: a pool, a client, or anything a user runs.
//!
//! ```no_run
//! let Some(url) = baton_pgtest::database() else { return }; // no PostgreSQL: skipped
//! // url: postgresql://postgres@127.0.0.1:PORT/baton_test_N
//! ```

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections after it starts.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running server.
pub struct Server {
    port: u16,
    /// The data directory and socket directory live under it; removed at exit.
    root: PathBuf,
    child: Mutex<Option<Child>>,
    databases: AtomicU32,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// A URL of a new, empty database on this test binary's server, started on first use.
/// `None` (after printing why) when PostgreSQL is not installed; panics, saying why, when
/// it is installed but does not start.
pub fn database() -> Option<String> {
    let server = server()?;
    let n = server.databases.fetch_add(1, Ordering::Relaxed);
    let name = format!("baton_test_{n}");
    server.admin(&format!("CREATE DATABASE {name}"));
    Some(server.url(&name))
}

/// Runs `sql` on the database at `url` (one from [`database`]); panics if it fails.
pub fn execute(url: &str, sql: &str) {
    run_sql(url, sql).unwrap_or_else(|e| panic!("PostgreSQL test server: {e}"));
}

/// Ends every connection to the database at `url` (one from [`database`]): what a restart
/// of the server or a network failure does to its clients.
pub fn drop_connections(url: &str) {
    let (Some(server), Some((_, name))) = (server(), url.rsplit_once('/')) else { return };
    server.admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{name}' AND pid <> pg_backend_pid()"
    ));
}

/// The server of this test binary, started on first use (see [`database`]).
pub fn server() -> Option<&'static Server> {
    SERVER
        .get_or_init(|| {
            let Some(bin) = binaries() else {
                eprintln!(
                    "skipped: PostgreSQL is not installed (no initdb and postgres in PATH, \
                     /usr/local/bin or /usr/lib/postgresql/*/bin); `make deps` installs it"
                );
                return None;
            };
            let server = Server::start(&bin).unwrap_or_else(|e| {
                panic!("PostgreSQL is installed ({}) but did not start: {e}", bin.display())
            });
            // SAFETY: `stop_at_exit` is a plain function that only reads a static.
            unsafe { libc::atexit(stop_at_exit) };
            Some(server)
        })
        .as_ref()
}

impl Server {
    /// The URL of database `name` on this server.
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Runs `sql` as the superuser, on the `postgres` database; panics if it fails.
    pub fn admin(&self, sql: &str) {
        run_sql(&self.url("postgres"), sql)
            .unwrap_or_else(|e| panic!("PostgreSQL test server: {e}"));
    }

    fn start(bin: &Path) -> Result<Server, String> {
        let root = tempfile::Builder::new()
            .prefix("baton-pg-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        let user = server_user()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&root, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", root.display()))?;
        }
        let data = root.join("data");
        let log = root.join("initdb.log");
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let status = as_user(Command::new(bin.join("initdb")), user)
            .args(["-D", &data.to_string_lossy(), "-U", "postgres", "--auth=trust"])
            .args(["-E", "UTF8", "--no-sync", "--no-instructions"])
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .status()
            .map_err(|e| format!("initdb: {e}"))?;
        if !status.success() {
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("initdb failed ({status}):\n{said}"));
        }
        let port = free_port()?;
        let log = root.join("postgres.log");
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let mut postgres = as_user(Command::new(bin.join("postgres")), user);
        postgres
            .args(["-D", &data.to_string_lossy(), "-k", &root.to_string_lossy()])
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .stdout(out.try_clone().map_err(|e| e.to_string())?)
            .stderr(out)
            .stdin(Stdio::null());
        let child = spawn_for_life(postgres)?;
        let server = Server { port, root, child: Mutex::new(Some(child)), databases: 0.into() };
        let started = Instant::now();
        let url = server.url("postgres");
        while let Err(e) = run_sql(&url, "SELECT 1") {
            let exited = server.child.lock().ok().and_then(|mut c| c.as_mut()?.try_wait().ok()?);
            if exited.is_some() || started.elapsed() > READY_WITHIN {
                let said = std::fs::read_to_string(&log).unwrap_or_default();
                server.stop();
                return Err(format!("not ready ({e}); its log:\n{said}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    /// Stops the server at once (what a crash of the machine would leave is recovered at
    /// its next start; nobody starts it again) and removes its files.
    fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() {
            // SIGQUIT: immediate shutdown, no waiting for clients still connected.
            // SAFETY: kill has no memory preconditions; the pid is our own child's.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

extern "C" fn stop_at_exit() {
    if let Some(Some(server)) = SERVER.get() {
        server.stop();
    }
}

/// Starts `command` from a thread that lives as long as the process, with the child set to
/// die with it (PR_SET_PDEATHSIG fires when the thread that forked ends, not the process),
/// so that a test binary killed outright leaves no server behind.
fn spawn_for_life(mut command: Command) -> Result<Child, String> {
    // SAFETY: prctl is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
            Ok(())
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(command.spawn().map_err(|e| format!("postgres: {e}")));
        loop {
            std::thread::park();
        }
    });
    rx.recv().map_err(|e| e.to_string())?
}

/// `command`, run as `user` when given.
fn as_user(mut command: Command, user: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}

/// The `postgres` user's ids when we are root (PostgreSQL refuses to run as root).
fn server_user() -> Result<Option<(u32, u32)>, String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: getpwnam returns a pointer into static storage, read at once, or null.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if entry.is_null() {
        return Err("running as root, and there is no `postgres` user to run the server".into());
    }
    // SAFETY: not null, so it points to a passwd record.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

/// The directory holding `initdb` and `postgres`: PATH, /usr/local/bin, or Debian's
/// /usr/lib/postgresql/VERSION/bin (the newest).
fn binaries() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    candidates.push("/usr/local/bin".into());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.flatten().map(|d| d.path().join("bin")).collect())
        .unwrap_or_default();
    let version = |bin: &PathBuf| bin.parent()?.file_name()?.to_str()?.parse::<u32>().ok();
    debian.sort_by_key(|bin| std::cmp::Reverse(version(bin)));
    candidates.extend(debian);
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("free port: {e}"))
}

/// Runs `sql` on `url`, on a thread of its own: the caller may be inside a runtime already.
fn run_sql(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(execute_async(&url, &sql))
    })
    .join()
    .unwrap_or_else(|_| Err("the admin connection panicked".into()))
}

async fn execute_async(url: &str, sql: &str) -> Result<(), String> {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    let connection = tokio::spawn(connection);
    let result = client.batch_execute(sql).await.map_err(|e| format!("{sql}: {e}"));
    drop(client);
    let _ = connection.await;
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_database_is_new_and_reachable() {
        let Some(a) = super::database() else { return };
        let b = super::database().unwrap();
        assert_ne!(a, b);
        super::run_sql(&a, "CREATE TABLE t (x int)").unwrap();
        super::run_sql(&b, "CREATE TABLE t (x int)").unwrap();
    }
}

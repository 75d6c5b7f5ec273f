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
//!
//! [`tls_server`] is a second server, with TLS on: a CA made for the test signed its
//! certificate (for `localhost` and `127.0.0.1`), and it takes TCP connections with TLS
//! only, so a client that gets in used TLS. [`TlsFiles`] has the CA, and one that signed
//! nothing, for a client to check the server with (or fail to).

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
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
    /// The superuser's connection string, through the Unix socket (which takes no TLS).
    admin: String,
    tls: Option<TlsFiles>,
    child: Mutex<Option<Child>>,
    databases: AtomicU32,
}

/// The certificates of a server with TLS, PEM files in its temporary directory.
pub struct TlsFiles {
    /// The CA that signed the server's certificate.
    pub ca: PathBuf,
    /// A CA that signed nothing of the server's.
    pub other_ca: PathBuf,
}

static SERVER: OnceLock<Option<Server>> = OnceLock::new();
static TLS_SERVER: OnceLock<Option<Server>> = OnceLock::new();

/// A URL of a new, empty database on this test binary's server, started on first use.
/// `None` (after printing why) when PostgreSQL is not installed; panics, saying why, when
/// it is installed but does not start.
pub fn database() -> Option<String> {
    Some(server()?.database())
}

/// Runs `sql` on the database at `url` (one from [`database`], not of the TLS server);
/// panics if it fails.
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
    start_once(&SERVER, false)
}

/// This test binary's server with TLS, started on first use (see the module's doc).
pub fn tls_server() -> Option<&'static Server> {
    start_once(&TLS_SERVER, true)
}

fn start_once(server: &'static OnceLock<Option<Server>>, tls: bool) -> Option<&'static Server> {
    server
        .get_or_init(|| {
            let Some(bin) = binaries() else {
                eprintln!(
                    "skipped: PostgreSQL is not installed (no initdb and postgres in PATH, \
                     /usr/local/bin or /usr/lib/postgresql/*/bin); `make deps` installs it"
                );
                return None;
            };
            let server = Server::start(&bin, tls).unwrap_or_else(|e| {
                panic!("PostgreSQL is installed ({}) but did not start: {e}", bin.display())
            });
            // SAFETY: `stop_at_exit` is a plain function that only reads statics.
            unsafe { libc::atexit(stop_at_exit) };
            Some(server)
        })
        .as_ref()
}

impl Server {
    /// The URL of database `name` on this server (the TLS server wants `sslmode` added).
    pub fn url(&self, name: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its certificates, if it has TLS.
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The URL of a new, empty database on this server.
    pub fn database(&self) -> String {
        let n = self.databases.fetch_add(1, Ordering::Relaxed);
        let name = format!("baton_test_{n}");
        self.admin(&format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// Runs `sql` as the superuser, on the `postgres` database; panics if it fails.
    pub fn admin(&self, sql: &str) {
        run_sql(&self.admin, sql).unwrap_or_else(|e| panic!("PostgreSQL test server: {e}"));
    }

    fn start(bin: &Path, tls: bool) -> Result<Server, String> {
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
        let tls = if tls { Some(with_tls(&mut postgres, &root, &data, user)?) } else { None };
        let child = spawn_for_life(postgres)?;
        let admin = format!(
            "host='{}' port={port} user=postgres dbname=postgres",
            root.to_string_lossy().replace('\\', "\\\\").replace('\'', "\\'")
        );
        let server =
            Server { port, root, admin, tls, child: Mutex::new(Some(child)), databases: 0.into() };
        let started = Instant::now();
        while let Err(e) = run_sql(&server.admin, "SELECT 1") {
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
    for server in [&SERVER, &TLS_SERVER] {
        if let Some(Some(server)) = server.get() {
            server.stop();
        }
    }
}

/// Turns TLS on for `postgres` (of data directory `data`): a CA, a certificate it signed
/// for localhost and 127.0.0.1 and its key, and a CA that signed nothing, written under
/// `root`; TCP connections without TLS refused (the Unix socket stays open for the admin).
fn with_tls(
    postgres: &mut Command,
    root: &Path,
    data: &Path,
    user: Option<(u32, u32)>,
) -> Result<TlsFiles, String> {
    let certs = Certificates::new().map_err(|e| format!("certificates: {e}"))?;
    let dir = root.join("tls");
    std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |name: &str, text: &str, mode: u32| -> Result<PathBuf, String> {
        let path = dir.join(name);
        let failed = |e: std::io::Error| format!("{}: {e}", path.display());
        std::fs::write(&path, text).map_err(failed)?;
        // PostgreSQL takes a key only its own user can read.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).map_err(failed)?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&path, Some(uid), Some(gid)).map_err(failed)?;
        }
        Ok(path)
    };
    let files = TlsFiles {
        ca: write("ca.crt", &certs.ca, 0o644)?,
        other_ca: write("other-ca.crt", &certs.other_ca, 0o644)?,
    };
    let cert = write("server.crt", &certs.server, 0o644)?;
    let key = write("server.key", &certs.server_key, 0o600)?;
    let hba = data.join("pg_hba.conf");
    let rules = "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 hostssl all all ::1/128 trust\n";
    std::fs::write(&hba, rules).map_err(|e| format!("{}: {e}", hba.display()))?;
    postgres.args(["-c", "ssl=on"]);
    postgres.arg("-c").arg(format!("ssl_cert_file={}", cert.display()));
    postgres.arg("-c").arg(format!("ssl_key_file={}", key.display()));
    Ok(files)
}

/// The PEM texts of a test server's certificates.
struct Certificates {
    ca: String,
    other_ca: String,
    server: String,
    server_key: String,
}

impl Certificates {
    fn new() -> Result<Certificates, rcgen::Error> {
        let ca = |name: &str| -> Result<(String, rcgen::Issuer<'static, KeyPair>), rcgen::Error> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            params.distinguished_name.push(DnType::CommonName, name);
            let key = KeyPair::generate()?;
            let cert = params.self_signed(&key)?;
            Ok((cert.pem(), rcgen::Issuer::new(params, key)))
        };
        let (ca_pem, issuer) = ca("Baton test CA")?;
        let (other_ca, _) = ca("Baton test CA that signed nothing")?;
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])?;
        params.distinguished_name.push(DnType::CommonName, "localhost");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let server = params.signed_by(&key, &issuer)?;
        Ok(Certificates {
            ca: ca_pem,
            other_ca,
            server: server.pem(),
            server_key: key.serialize_pem(),
        })
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
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.map_err(|e| described(&e))?;
    let connection = tokio::spawn(connection);
    let result = client.batch_execute(sql).await.map_err(|e| format!("{sql}: {}", described(&e)));
    drop(client);
    let _ = connection.await;
    result
}

/// `e` and its causes (the driver's own words are only its kind, as "db error").
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

    #[test]
    fn the_tls_server_refuses_tcp_without_tls() {
        let Some(server) = super::tls_server() else { return };
        let db = server.database();
        let err = super::run_sql(&db, "SELECT 1").unwrap_err();
        assert!(err.contains("no encryption"), "{err}");
        let tls = server.tls().unwrap();
        for pem in [&tls.ca, &tls.other_ca] {
            assert!(std::fs::read_to_string(pem)
                .unwrap()
                .starts_with("-----BEGIN CERTIFICATE-----"));
        }
    }
}

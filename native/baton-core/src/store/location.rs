//! Where a store is: a directory (redb or sled inside), or a PostgreSQL database named by
//! a URL. `--store`, `BATON_HOME` and hosts give either as text; [`StoreLocation`] tells
//! which it is, once, and shows a URL without its password wherever it is printed. What a
//! URL asks of TLS (libpq's `sslmode` and `sslrootcert`) is read here too: the driver
//! knows neither all of `sslmode`'s values nor `sslrootcert`, so they are taken out of the
//! URL it is given, and the store's connections do TLS themselves (`postgres_store/tls`).

use std::path::PathBuf;
use std::str::FromStr;

/// A store's place: a directory, or a PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A store directory, held by one process at a time.
    Dir(PathBuf),
    /// A PostgreSQL database.
    Database(DatabaseUrl),
}

/// The URL of a PostgreSQL database, `postgresql://` or `postgres://` (a JDBC URL,
/// `jdbc:postgresql://host/db?user=..`, is converted). It prints without its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    /// The URL as given, JDBC's prefix and options converted: what is shown (redacted).
    url: String,
    /// What tokio-postgres reads: `url` without the TLS options in `tls`.
    driver: String,
    /// What the URL asks of TLS.
    tls: TlsOptions,
}

impl DatabaseUrl {
    /// The URL for the driver, password included, TLS options left out.
    pub(crate) fn secret(&self) -> &str {
        &self.driver
    }

    /// What the URL asks of TLS.
    pub(crate) fn tls(&self) -> &TlsOptions {
        &self.tls
    }
}

/// libpq's `sslmode`: how much TLS a connection needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// No TLS.
    Disable,
    /// libpq tries without TLS first; Baton connects without TLS.
    Allow,
    /// libpq's default: libpq tries TLS first and goes on without it when the server has
    /// none; Baton connects without TLS (what it always did), so ask for `require` or
    /// stronger to have TLS.
    Prefer,
    /// TLS, the server's certificate unchecked (checked against a root certificate file
    /// when one is given or in `~/.postgresql/root.crt`, as libpq does).
    Require,
    /// TLS, the certificate's chain checked up to a root certificate, not its host name.
    VerifyCa,
    /// TLS, the chain checked and the host name too.
    VerifyFull,
}

impl SslMode {
    const ALL: [SslMode; 6] = [
        SslMode::Disable,
        SslMode::Allow,
        SslMode::Prefer,
        SslMode::Require,
        SslMode::VerifyCa,
        SslMode::VerifyFull,
    ];

    /// Its spelling in a URL.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether a connection in this mode must be encrypted.
    pub(crate) fn needs_tls(self) -> bool {
        matches!(self, SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// libpq's `sslrootcert`: the root certificates that a server's certificate is checked
/// against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCert {
    /// Not given: `~/.postgresql/root.crt` when it exists; else, for `verify-full`, the
    /// system's trusted roots.
    Default,
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the system's trusted roots (which need `verify-full`).
    System,
}

/// What a URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    pub(crate) mode: SslMode,
    pub(crate) root_cert: RootCert,
}

/// Options of libpq's about TLS that Baton does not do: refused by name, rather than as
/// the driver's "unknown option".
const UNSUPPORTED_TLS: [&str; 5] = ["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

impl TlsOptions {
    /// Takes `sslmode` and `sslrootcert` out of `url`'s query: the options, and the URL
    /// left for the driver.
    fn take(url: &str) -> Result<(TlsOptions, String), String> {
        let Some((base, query)) = url.split_once('?') else {
            return Ok((
                TlsOptions { mode: SslMode::Prefer, root_cert: RootCert::Default },
                url.into(),
            ));
        };
        let (mut mode, mut root_cert) = (None, RootCert::Default);
        let mut kept = Vec::new();
        for option in query.split('&') {
            let (key, value) = option.split_once('=').unwrap_or((option, ""));
            let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
            match key {
                "sslmode" => {
                    let found = SslMode::ALL.into_iter().find(|m| m.as_str() == value);
                    mode = Some(found.ok_or_else(|| {
                        format!(
                            "sslmode={value} is not one of disable, allow, prefer, require, \
                             verify-ca, verify-full"
                        )
                    })?);
                }
                "sslrootcert" if value == "system" => root_cert = RootCert::System,
                "sslrootcert" if value.is_empty() => {
                    return Err("sslrootcert= names no file".into())
                }
                "sslrootcert" => root_cert = RootCert::File(PathBuf::from(value.as_ref())),
                key if UNSUPPORTED_TLS.contains(&key) => {
                    return Err(format!(
                        "{key}: client certificates and revocation lists are not supported \
                         (Baton checks the server with sslmode and sslrootcert)"
                    ))
                }
                _ => kept.push(option),
            }
        }
        // As libpq: the system's roots trust any public certificate, so they mean something
        // only with the host name checked; they make verify-full the default.
        let mode = match (mode, &root_cert) {
            (None, RootCert::System) => SslMode::VerifyFull,
            (Some(weaker), RootCert::System) if weaker != SslMode::VerifyFull => {
                return Err(format!(
                    "sslrootcert=system needs sslmode=verify-full, not {weaker}: the system's \
                     roots trust any public certificate, so only the host name check makes \
                     them mean something"
                ))
            }
            (mode, _) => mode.unwrap_or(SslMode::Prefer),
        };
        let driver =
            if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        Ok((TlsOptions { mode, root_cert }, driver))
    }
}

/// The schemes of a database URL.
const SCHEMES: [&str; 2] = ["postgresql://", "postgres://"];
/// What a JDBC URL starts with, before one of [`SCHEMES`].
const JDBC: &str = "jdbc:";

impl FromStr for DatabaseUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let url = s.strip_prefix(JDBC).unwrap_or(s);
        if !SCHEMES.iter().any(|scheme| url.starts_with(scheme)) {
            return Err(format!("`{}` is not a postgresql:// URL", redact(s)));
        }
        let url = if s.starts_with(JDBC) { from_jdbc(url) } else { url.to_owned() };
        let (tls, driver) = TlsOptions::take(&url).map_err(|e| format!("{}: {e}", redact(&url)))?;
        driver
            .parse::<tokio_postgres::Config>()
            .map_err(|e| format!("{}: not a PostgreSQL URL: {e}", redact(&url)))?;
        Ok(DatabaseUrl { url, driver, tls })
    }
}

/// JDBC's spelling of TLS as libpq's: `ssl=true` is `sslmode=verify-full` (what pgjdbc
/// makes of it), `ssl=false` is `sslmode=disable`; an `sslmode` given as well wins, as in
/// pgjdbc.
fn from_jdbc(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let has_mode = query.split('&').any(|option| option.starts_with("sslmode="));
    let options: Vec<&str> = query
        .split('&')
        .filter_map(|option| match option {
            "ssl=true" | "ssl=false" if has_mode => None,
            "ssl=true" => Some("sslmode=verify-full"),
            "ssl=false" => Some("sslmode=disable"),
            other => Some(other),
        })
        .collect();
    if options.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", options.join("&"))
    }
}

/// `url` without a password, in the user part or as a `password=` option.
fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            let (authority, path) = rest.split_at(authority_end);
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, hosts)) => {
                    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                    format!("{user}@{hosts}")
                }
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_owned(),
    };
    if let Some(query) = query {
        let kept: Vec<&str> =
            query.split('&').filter(|option| !option.starts_with("password=")).collect();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
    }
    out
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.url))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

impl StoreLocation {
    /// Whether `text` names a database rather than a directory.
    fn is_url(text: &str) -> bool {
        let url = text.strip_prefix(JDBC).unwrap_or(text);
        SCHEMES.iter().any(|scheme| url.starts_with(scheme))
    }
}

impl FromStr for StoreLocation {
    type Err = String;
    /// A `postgresql://`, `postgres://` or `jdbc:postgresql://` URL names a database;
    /// anything else is a directory.
    fn from_str(s: &str) -> Result<Self, String> {
        if StoreLocation::is_url(s) {
            Ok(StoreLocation::Database(s.parse()?))
        } else {
            Ok(StoreLocation::Dir(s.into()))
        }
    }
}

impl From<PathBuf> for StoreLocation {
    fn from(dir: PathBuf) -> Self {
        StoreLocation::Dir(dir)
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Dir(dir) => write!(f, "{}", dir.display()),
            StoreLocation::Database(url) => url.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn database(text: &str) -> DatabaseUrl {
        match text.parse::<StoreLocation>().unwrap() {
            StoreLocation::Database(url) => url,
            other => panic!("{text} is not a database: {other:?}"),
        }
    }

    #[test]
    fn urls_name_databases_and_the_rest_directories() {
        assert_eq!(".baton".parse(), Ok(StoreLocation::Dir(".baton".into())));
        assert_eq!("/var/postgresql".parse(), Ok(StoreLocation::Dir("/var/postgresql".into())));
        for url in ["postgresql://baton@db/baton", "postgres://db/baton?user=baton"] {
            assert_eq!(database(url).secret(), url);
        }
        let err = "postgresql://db:notaport/baton".parse::<StoreLocation>().unwrap_err();
        assert!(err.contains("not a PostgreSQL URL"), "{err}");
    }

    #[test]
    fn a_jdbc_url_is_converted() {
        let url = database("jdbc:postgresql://db.internal:5433/baton?user=baton&ssl=false");
        assert_eq!(
            url.to_string(),
            "postgresql://db.internal:5433/baton?user=baton&sslmode=disable"
        );
        assert_eq!(url.secret(), "postgresql://db.internal:5433/baton?user=baton");
        assert_eq!(url.tls().mode, SslMode::Disable);
        // pgjdbc checks the certificate and host name for ssl=true, unless sslmode says.
        let url = database("jdbc:postgresql://db/b?ssl=true&user=baton");
        assert_eq!(url.to_string(), "postgresql://db/b?sslmode=verify-full&user=baton");
        let url = database("jdbc:postgresql://db/b?ssl=true&sslmode=require");
        assert_eq!(url.to_string(), "postgresql://db/b?sslmode=require");
        assert_eq!(url.tls().mode, SslMode::Require);
    }

    #[test]
    fn tls_options_are_read_and_left_out_of_the_driver_url() {
        let url =
            database("postgresql://db/b?sslmode=verify-ca&user=u&sslrootcert=%2Fetc%2Fca%20x.pem");
        assert_eq!(url.secret(), "postgresql://db/b?user=u");
        assert_eq!(
            url.tls(),
            &TlsOptions {
                mode: SslMode::VerifyCa,
                root_cert: RootCert::File("/etc/ca x.pem".into())
            }
        );
        assert_eq!(
            url.to_string(),
            "postgresql://db/b?sslmode=verify-ca&user=u&sslrootcert=%2Fetc%2Fca%20x.pem"
        );
        let plain = database("postgresql://db/b");
        assert_eq!(
            plain.tls(),
            &TlsOptions { mode: SslMode::Prefer, root_cert: RootCert::Default }
        );
        for mode in SslMode::ALL {
            let url = database(&format!("postgresql://db/b?sslmode={mode}"));
            assert_eq!((url.tls().mode, url.secret()), (mode, "postgresql://db/b"));
        }
    }

    #[test]
    fn the_systems_roots_go_with_verify_full_only() {
        let url = database("postgresql://db/b?sslrootcert=system");
        assert_eq!(
            url.tls(),
            &TlsOptions { mode: SslMode::VerifyFull, root_cert: RootCert::System }
        );
        let err = "postgresql://db/b?sslrootcert=system&sslmode=verify-ca".parse::<StoreLocation>();
        let err = err.unwrap_err();
        assert!(
            err.contains("sslrootcert=system needs sslmode=verify-full, not verify-ca"),
            "{err}"
        );
    }

    #[test]
    fn unknown_or_unsupported_tls_options_are_refused_by_name() {
        let err = "postgresql://u:pw@db/b?sslmode=verify".parse::<StoreLocation>().unwrap_err();
        assert!(
            err.starts_with("postgresql://u@db/b?sslmode=verify: sslmode=verify is not one of"),
            "{err}"
        );
        let err = "postgresql://db/b?sslmode=require&sslcert=c.pem".parse::<StoreLocation>();
        assert!(err.unwrap_err().contains("sslcert: client certificates"));
        let err = "postgresql://db/b?sslrootcert=".parse::<StoreLocation>().unwrap_err();
        assert!(err.contains("sslrootcert= names no file"), "{err}");
    }

    #[test]
    fn a_password_is_never_shown() {
        let url = database("postgresql://baton:s3cret@db/baton?password=s3cret&sslmode=disable");
        assert_eq!(url.to_string(), "postgresql://baton@db/baton?sslmode=disable");
        assert!(!format!("{url:?}").contains("s3cret"));
        let err = "jdbc:postgresql://u:s3cret@db:x/b".parse::<StoreLocation>().unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }
}

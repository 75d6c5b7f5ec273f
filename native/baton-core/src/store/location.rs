//! Where a store is: a directory (redb or sled inside), or a PostgreSQL database named by
//! a URL. `--store`, `BATON_HOME` and hosts give either as text; [`StoreLocation`] tells
//! which it is, once, and shows a URL without its password wherever it is printed.

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
    /// What tokio-postgres reads: the URL as given, JDBC's prefix and options converted.
    url: String,
}

impl DatabaseUrl {
    /// The URL for the driver, password included.
    pub(crate) fn secret(&self) -> &str {
        &self.url
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
        if let Some(mode) = tls_mode(&url) {
            return Err(format!(
                "{}: sslmode={mode}: TLS to PostgreSQL is not supported yet; use \
                 sslmode=disable on a trusted network, or reach the database through a \
                 local socket or a tunnel",
                redact(&url)
            ));
        }
        url.parse::<tokio_postgres::Config>()
            .map_err(|e| format!("{}: not a PostgreSQL URL: {e}", redact(&url)))?;
        Ok(DatabaseUrl { url })
    }
}

/// JDBC's spelling of TLS, `ssl=true`, as libpq's `sslmode=require`.
fn from_jdbc(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else { return url.to_owned() };
    let options: Vec<&str> = query
        .split('&')
        .map(|option| match option {
            "ssl=true" => "sslmode=require",
            "ssl=false" => "sslmode=disable",
            other => other,
        })
        .collect();
    format!("{base}?{}", options.join("&"))
}

/// The `sslmode` of `url` if it asks for TLS (without TLS, `prefer` and `allow` go on
/// unencrypted, as libpq does with a server that has no TLS).
fn tls_mode(url: &str) -> Option<&str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .filter_map(|option| option.strip_prefix("sslmode="))
        .find(|mode| !matches!(*mode, "disable" | "allow" | "prefer"))
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
        assert_eq!(url.secret(), "postgresql://db.internal:5433/baton?user=baton&sslmode=disable");
    }

    #[test]
    fn tls_is_refused_clearly_until_it_is_supported() {
        for url in ["postgresql://db/b?sslmode=verify-full", "jdbc:postgresql://db/b?ssl=true"] {
            let err = url.parse::<StoreLocation>().unwrap_err();
            assert!(err.contains("TLS to PostgreSQL is not supported yet"), "{err}");
        }
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

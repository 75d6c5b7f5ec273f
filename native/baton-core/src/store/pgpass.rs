//! The password file of PostgreSQL clients, `~/.pgpass` (or `$PGPASSFILE`), which
//! tokio-postgres does not read itself: lines of `host:port:database:user:password`, `*`
//! matching anything, `\` escaping `:` and `\`. As libpq does, a file that others can read
//! is ignored.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

/// What a password is looked up for.
pub(super) struct Login<'a> {
    pub(super) host: &'a str,
    pub(super) port: u16,
    pub(super) database: &'a str,
    pub(super) user: &'a str,
}

/// The password the password file gives for `login`, if any.
pub(super) fn lookup(login: &Login<'_>) -> Option<String> {
    let path = std::env::var_os("PGPASSFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %path.display(), "password file ignored: others can read it (chmod 600 it)");
        return None;
    }
    find(&std::fs::read_to_string(&path).ok()?, login)
}

/// The first line of `text` that matches `login`.
fn find(text: &str, login: &Login<'_>) -> Option<String> {
    let port = login.port.to_string();
    let wanted = [login.host, port.as_str(), login.database, login.user];
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let fields = split(line);
        let [host, port, database, user, password] = fields.as_slice() else { return None };
        let matches = [host, port, database, user]
            .iter()
            .zip(wanted)
            .all(|(field, wanted)| field.as_str() == "*" || field.as_str() == wanted);
        matches.then(|| password.clone())
    })
}

/// The fields of one line, escapes resolved.
fn split(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            // The password, last, may hold colons.
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let text =
            "# comment\nother:5432:*:baton:no\ndb:*:baton:baton:pa\\:ss\\\\w:rd\n*:*:*:*:any\n";
        let login = Login { host: "db", port: 5433, database: "baton", user: "baton" };
        assert_eq!(find(text, &login).as_deref(), Some("pa:ss\\w:rd"));
        let login = Login { host: "x", port: 1, database: "y", user: "z" };
        assert_eq!(find(text, &login).as_deref(), Some("any"));
        assert_eq!(find("db:5432:baton:baton\n", &login), None, "too few fields");
    }
}

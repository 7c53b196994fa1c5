//! Database dump sources: what to run to dump a database into a snapshot, and what to
//! record about it.
//!
//! A [`Database`] is parsed from a URL (`postgresql://`, `mariadb://`/`mysql://`) or a
//! SQLite file path. [`Database::dump`] gives a [`StreamSource`] for the core: the dump
//! tool's standard output goes straight into the chunker, never through a temporary
//! file, and a tool that exits non-zero fails the backup (nothing is committed).
//!
//! Credentials never go into a command's arguments, which every user of the machine can
//! read in `/proc`: PostgreSQL tools get `PGPASSWORD`, MariaDB tools `MYSQL_PWD`, both in
//! the environment of the child alone (readable by its owner and root only). A
//! [`Wrapper`] (e.g. `docker exec db`) runs the tools elsewhere and passes those
//! variables on by name.

mod accounts;
mod dump_rows;
mod mariadb;
mod postgres;
mod sqlite;

pub use accounts::AccountsDump;
pub use mariadb::MariaDb;
pub use postgres::{PgFormat, PgSnapshot, Postgres};
pub use sqlite::Sqlite;

use crate::{Error, Result};
use cairn_core::{Observer, StreamSource};
pub use dump_rows::RowCounter;
use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

/// A database to dump.
#[derive(Clone, Debug)]
pub enum Database {
    /// A PostgreSQL database, or a whole server.
    Postgres(Postgres),
    /// A MariaDB/MySQL database, or every database of a server.
    MariaDb(MariaDb),
    /// A SQLite database file.
    Sqlite(Sqlite),
}

/// A table and its number of rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    /// The table's name (`schema.table` for PostgreSQL).
    pub table: String,
    /// Its rows.
    pub rows: u64,
}

/// What a snapshot records about one dump (part of the manifest).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpInfo {
    /// `postgresql`, `mariadb` or `sqlite`.
    pub engine: String,
    /// The database dumped, or `*` for a whole server.
    pub database: String,
    /// Where it was (host and port, socket, or file), without credentials.
    pub location: String,
    /// The server's version, as it reports it.
    pub server_version: String,
    /// The dump tool and its version, e.g. `pg_dump (PostgreSQL) 15.20`.
    pub tool: String,
    /// `custom`, `plain` (SQL) or `file` (a SQLite database file).
    pub format: String,
    /// The dump's path in the snapshot.
    pub path: String,
    /// How to restore it, as a command a user can run.
    pub restore_hint: String,
    /// For a SQLite file: its owner, group and mode, which a restore gives the file
    /// when there is none to keep (the web server must still be able to open it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileOwner>,
    /// For a MariaDB database: its default character set and collation, which a
    /// database created by a restore gets again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<Charset>,
}

/// A database's default character set and collation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charset {
    /// E.g. `utf8mb4` (`utf8mb3` is what MariaDB calls i-doit's `utf8`).
    pub character_set: String,
    /// E.g. `utf8mb4_unicode_ci`.
    pub collation: String,
}

/// A file's owner, group and permission bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOwner {
    /// Owner (uid).
    pub uid: u32,
    /// Group (gid).
    pub gid: u32,
    /// Permission bits (`mode & 0o7777`).
    pub mode: u32,
}

impl FileOwner {
    /// Those of the file at `path`, if it exists.
    pub fn of(path: &std::path::Path) -> Option<FileOwner> {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).ok().map(|m| FileOwner {
            uid: m.uid(),
            gid: m.gid(),
            mode: m.mode() & 0o7777,
        })
    }
}

impl Database {
    /// Parses `postgresql://…`, `postgres://…`, `mariadb://…`, `mysql://…`, or takes
    /// anything else as a SQLite file path.
    pub fn parse(spec: &str) -> Result<Database> {
        let scheme = spec.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgresql" | "postgres") => Ok(Database::Postgres(Postgres::from_url(spec)?)),
            Some("mariadb" | "mysql") => Ok(Database::MariaDb(MariaDb::from_url(spec)?)),
            Some(other) => Err(Error::Invalid(format!(
                "unknown database URL scheme {other}:// (postgresql, mariadb, mysql)"
            ))),
            None => Ok(Database::Sqlite(Sqlite::new(spec))),
        }
    }

    /// Runs the dump tool through `wrapper` from now on.
    pub fn with_wrapper(self, wrapper: Wrapper) -> Database {
        match self {
            Database::Postgres(p) => Database::Postgres(p.with_wrapper(wrapper)),
            Database::MariaDb(m) => Database::MariaDb(m.with_wrapper(wrapper)),
            s @ Database::Sqlite(_) => s,
        }
    }

    /// The same database, reached with `password` instead of the one its URL gave. The
    /// password goes to the tools in their environment, as every password does. A
    /// SQLite file has no password: it is returned unchanged.
    pub fn with_password(mut self, password: &str) -> Database {
        match &mut self {
            Database::Postgres(p) => p.conn_mut().password = Some(password.to_string()),
            Database::MariaDb(m) => m.conn_mut().password = Some(password.to_string()),
            Database::Sqlite(_) => {}
        }
        self
    }

    /// The same database, reached as `url` says: its server (host, port, socket or
    /// other query parameters), user and password replace the ones the database had;
    /// the database name is the URL's when it names one, else the database's own. The
    /// URL's engine must be this database's (`postgresql://` for PostgreSQL,
    /// `mariadb://` or `mysql://` for MariaDB); a SQLite file cannot be reached so.
    pub fn with_connection(mut self, url: &str) -> Result<Database> {
        let given = Database::parse(url)?;
        if !matches!(
            (&self, &given),
            (Database::Postgres(_), Database::Postgres(_))
                | (Database::MariaDb(_), Database::MariaDb(_))
        ) {
            return Err(Error::Invalid(format!(
                "the database URL is for {} but the database is {}",
                given.engine(),
                self.engine()
            )));
        };
        let parts = UrlParts::parse(url)?;
        let conn = match &mut self {
            Database::Postgres(p) => p.conn_mut(),
            Database::MariaDb(m) => m.conn_mut(),
            Database::Sqlite(_) => unreachable!("matched above"),
        };
        let database = parts.database.clone().or(conn.database.take());
        *conn = UrlParts { database, ..parts };
        Ok(self)
    }

    /// Every table with its row count (exact counts, taken now). Empty for a whole
    /// server.
    pub fn tables(&self) -> Result<Vec<TableCount>> {
        match self {
            Database::Postgres(p) => p.tables(),
            Database::MariaDb(m) => m.tables(),
            Database::Sqlite(s) => s.tables(),
        }
    }

    /// The same server with another database (a name, or a path for SQLite).
    pub fn with_database(&self, name: &str) -> Database {
        match self {
            Database::Postgres(p) => Database::Postgres(p.with_database(name)),
            Database::MariaDb(m) => Database::MariaDb(m.with_database(name)),
            Database::Sqlite(_) => Database::Sqlite(Sqlite::new(name)),
        }
    }

    /// The engine's name, as [`DumpInfo::engine`] gives it.
    pub fn engine(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "postgresql",
            Database::MariaDb(_) => "mariadb",
            Database::Sqlite(_) => "sqlite",
        }
    }

    /// The database's name (file path for SQLite; `*` for a whole server).
    pub fn name(&self) -> String {
        match self {
            Database::Postgres(p) => p.database().unwrap_or("*").to_string(),
            Database::MariaDb(m) => m.database().unwrap_or("*").to_string(),
            Database::Sqlite(s) => s.path().display().to_string(),
        }
    }

    /// Where it is: host and port or socket, or the file; never credentials.
    pub fn location(&self) -> String {
        match self {
            Database::Postgres(p) => p.location(),
            Database::MariaDb(m) => m.location(),
            Database::Sqlite(s) => s.path().display().to_string(),
        }
    }

    /// Whether it exists and holds tables.
    pub fn state(&self) -> Result<TargetState> {
        match self {
            Database::Postgres(p) => p.state(),
            Database::MariaDb(m) => m.state(),
            Database::Sqlite(s) => s.state(),
        }
    }

    /// Creates it, empty.
    pub fn create(&self) -> Result<()> {
        match self {
            Database::Postgres(p) => p.create(),
            Database::MariaDb(m) => m.create(),
            Database::Sqlite(_) => Ok(()),
        }
    }

    /// Drops it if it is there and creates it empty, for the recovery of a restore cut
    /// short. The cairn that was killed may have left a `CREATE DATABASE` or `DROP
    /// DATABASE` of its own still running on the server; a create that finds the
    /// database made meanwhile drops it and tries again (three times at most). A SQLite
    /// file is removed.
    pub fn recreate(&self) -> Result<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.drop_database()?;
            match self.create() {
                Err(Error::Tool { stderr, .. })
                    if attempt < 3
                        && (stderr.contains("already exists")
                            || stderr.contains("database exists")) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(200 * attempt));
                }
                done => return done,
            }
        }
    }

    /// The same database, made ready to receive `dump`: a MariaDB database is created
    /// with the dump's character set and collation, a SQLite file restored where none
    /// is gets the owner, group and mode the dump recorded.
    pub fn ready_for(self, dump: &DumpInfo) -> Database {
        match self {
            Database::Sqlite(s) => Database::Sqlite(s.with_owner(dump.file)),
            Database::MariaDb(m) => Database::MariaDb(m.with_charset(dump.charset.clone())),
            d => d,
        }
    }

    /// Whether loading replaces it whole and atomically (a SQLite file is written beside
    /// it and renamed over it), so it need not be dropped first.
    pub fn replaced_atomically(&self) -> bool {
        matches!(self, Database::Sqlite(_))
    }

    /// Drops it with everything in it.
    pub fn drop_database(&self) -> Result<()> {
        match self {
            Database::Postgres(p) => p.drop_database(),
            Database::MariaDb(m) => m.drop_database(),
            Database::Sqlite(s) => s.remove(),
        }
    }

    /// Loads a dump of `format` (see [`DumpInfo::format`]) into it; `feed` writes the
    /// dump. PostgreSQL loads in one transaction: a failure leaves nothing behind.
    pub fn load(
        &self,
        format: &str,
        feed: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<()>,
    ) -> Result<()> {
        match self {
            Database::Postgres(p) => p.load(format, feed),
            Database::MariaDb(m) => m.load(feed),
            Database::Sqlite(s) => s.load(feed),
        }
    }

    /// Row counts that the dump will match exactly: for one PostgreSQL database they are
    /// counted inside an exported snapshot that [`Database::dump_with`] makes `pg_dump`
    /// read, so they hold even while the application writes; elsewhere they are counted
    /// just before the dump. Keep the returned [`Consistent`] until the backup is done.
    pub fn tables_consistent(&self) -> Result<(Vec<TableCount>, Consistent)> {
        match self {
            Database::Postgres(p) if p.database().is_some() => {
                let mut snap = p.export_snapshot()?;
                let tables = p.tables_in(&mut snap)?;
                Ok((tables, Consistent(Held::Postgres(snap))))
            }
            Database::Sqlite(s) => {
                let copy = s.consistent_copy()?;
                let tables = Sqlite::new(copy.path()).tables()?;
                Ok((tables, Consistent(Held::SqliteCopy(copy))))
            }
            Database::MariaDb(m) if m.database().is_some() => Ok((
                self.tables()?,
                Consistent(Held::MariaRows(Arc::new(Mutex::new(RowCounter::new())))),
            )),
            _ => Ok((self.tables()?, Consistent(Held::Nothing))),
        }
    }

    /// Like [`Database::dump`], reading the state `consistent` holds, if it holds one.
    pub fn dump_with(&self, consistent: &Consistent) -> Result<(StreamSource, DumpInfo)> {
        match (self, &consistent.0) {
            (Database::Postgres(p), Held::Postgres(snap)) => p.dump_at(Some(snap)),
            (Database::Sqlite(s), Held::SqliteCopy(copy)) => s.dump_copy(copy.path()),
            (Database::MariaDb(m), Held::MariaRows(counter)) => {
                let (mut stream, info) = m.dump()?;
                if let StreamSource::Command { observe, .. } = &mut stream {
                    let counter = counter.clone();
                    *observe = Some(Observer(Box::new(move |bytes| {
                        counter.lock().unwrap().feed(bytes)
                    })));
                }
                Ok((stream, info))
            }
            _ => self.dump(),
        }
    }

    /// Connects, asks the versions, and returns the stream to back up with what the
    /// manifest records of it. Fails with a clear message when the database cannot be
    /// reached, before anything is stored.
    pub fn dump(&self) -> Result<(StreamSource, DumpInfo)> {
        match self {
            Database::Postgres(p) => p.dump(),
            Database::MariaDb(m) => m.dump(),
            Database::Sqlite(s) => s.dump(),
        }
    }
}

/// A command prefix that runs the database tools elsewhere, e.g. `docker exec db` or
/// `ssh dbhost`. Environment variables are handed on by name where the wrapper allows
/// (`docker exec`/`podman exec` get `--env NAME`); other wrappers must pass them on
/// themselves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wrapper {
    argv: Vec<String>,
}

impl Wrapper {
    /// A wrapper from its words (empty: run the tools directly).
    pub fn new(argv: Vec<String>) -> Wrapper {
        Wrapper { argv }
    }

    /// A wrapper from a line split at white space (no quoting).
    pub fn parse(line: &str) -> Wrapper {
        Wrapper::new(line.split_whitespace().map(String::from).collect())
    }

    /// The command that runs `program args` with `env`, through the wrapper.
    pub fn command(&self, program: &str, args: &[String], env: &[(String, String)]) -> Planned {
        let env: Vec<(OsString, OsString)> =
            env.iter().map(|(k, v)| (k.into(), v.into())).collect();
        let Some((first, rest)) = self.argv.split_first() else {
            return Planned {
                program: program.into(),
                args: args.iter().map(OsString::from).collect(),
                env,
            };
        };
        let mut out: Vec<OsString> = Vec::new();
        let container = matches!(
            std::path::Path::new(first)
                .file_name()
                .and_then(|n| n.to_str()),
            Some("docker" | "podman")
        );
        for w in rest {
            out.push(w.into());
            if container && w == "exec" {
                for (k, _) in &env {
                    out.push("--env".into());
                    out.push(k.clone());
                }
            }
        }
        out.push(program.into());
        out.extend(args.iter().map(OsString::from));
        Planned {
            program: first.into(),
            args: out,
            env,
        }
    }
}

/// A command ready to run: program, arguments (no secrets) and environment.
#[derive(Clone, PartialEq, Eq)]
pub struct Planned {
    /// The program.
    pub program: OsString,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Added to its environment (may hold a password; never printed).
    pub env: Vec<(OsString, OsString)>,
}

impl std::fmt::Debug for Planned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planned")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .finish()
    }
}

/// A state of a database held open for its dump (see [`Database::tables_consistent`]);
/// dropping it lets go.
#[derive(Debug)]
pub struct Consistent(Held);

#[derive(Debug)]
enum Held {
    Nothing,
    /// PostgreSQL: the exported snapshot that the counts and `pg_dump` read.
    Postgres(PgSnapshot),
    /// SQLite: the copy that was counted and is backed up.
    SqliteCopy(tempfile::NamedTempFile),
    /// MariaDB: counts the dump's rows as it streams.
    MariaRows(Arc<Mutex<RowCounter>>),
}

impl Consistent {
    /// Where the counts were taken, for the manifest: in the state the dump holds
    /// (exact), or just before the dump (exact only while the application is stopped).
    pub fn counted(&self) -> &'static str {
        match self.0 {
            Held::Nothing | Held::MariaRows(_) => "just before the dump",
            Held::Postgres(_) => "in the dump's snapshot",
            Held::SqliteCopy(_) => "in the copy backed up",
        }
    }

    /// True when the counts describe exactly the state the dump holds.
    pub fn is_exact(&self) -> bool {
        matches!(self.0, Held::Postgres(_) | Held::SqliteCopy(_))
    }

    /// The counter that counts the dump's rows as it streams (MariaDB); after the
    /// backup, what it counted ([`RowCounter::finish`]) replaces the counts taken before
    /// the dump, and [`Consistent::COUNTED_IN_DUMP`] says so.
    pub fn dump_counter(&self) -> Option<Arc<Mutex<RowCounter>>> {
        match &self.0 {
            Held::MariaRows(c) => Some(c.clone()),
            _ => None,
        }
    }

    /// What [`Consistent::counted`] becomes when the dump's own rows were counted.
    pub const COUNTED_IN_DUMP: &'static str = "in the dump, as it streamed";
}

/// What a restore finds where it is to put a database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    /// No such database (or file).
    Missing,
    /// It exists and holds no table.
    Empty,
    /// It exists and holds this many tables.
    Tables(usize),
}

impl Planned {
    /// The command with its arguments and environment, ready to be given its standard
    /// streams and spawned.
    pub fn command(&self) -> Command {
        let mut c = cairn_core::command(&self.program);
        c.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs it with `feed` writing its standard input; its standard output is dropped,
    /// the tail of its standard error is kept for the error message.
    pub fn run_with_input(
        &self,
        what: &str,
        feed: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<()>,
    ) -> Result<()> {
        use std::io::Read;
        let mut child = self
            .command()
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| self.start_error(what, source))?;
        let mut stderr = child.stderr.take().expect("piped");
        let tail = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = stderr.read_to_end(&mut all);
            let start = all.len().saturating_sub(4096);
            String::from_utf8_lossy(&all[start..]).trim().to_string()
        });
        let mut stdin = child.stdin.take().expect("piped");
        let fed = feed(&mut stdin);
        drop(stdin);
        let status = child
            .wait()
            .map_err(|source| self.start_error(what, source))?;
        let tail = tail.join().unwrap_or_default();
        // When the dump could not be read (a damaged or missing blob), the client saw a
        // cut-off script and complains about its syntax: the cause is the repository's
        // error, so it comes first, and the client's echo of SQL stays out of it.
        let fed = match fed {
            Err(e) if !is_closed_pipe(&e) => {
                let client = match status.success() {
                    true => String::new(),
                    false => format!(
                        "; {} was stopped part-way ({status})",
                        self.program.to_string_lossy()
                    ),
                };
                return Err(Error::DumpUnreadable {
                    what: what.to_string(),
                    source: Box::new(e),
                    client,
                });
            }
            fed => fed,
        };
        if !status.success() {
            return Err(Error::Tool {
                what: what.to_string(),
                tool: self.program.to_string_lossy().into_owned(),
                status,
                stderr: tail,
            });
        }
        // A client that stopped reading early (and still exited 0) did not load it all.
        fed
    }

    /// The stream source that stores this command's output under `name`.
    pub fn into_stream(self, name: String) -> StreamSource {
        StreamSource::Command {
            name,
            program: self.program,
            args: self.args,
            env: self.env,
            observe: None,
        }
    }

    /// Runs it to the end and returns its standard output, trimmed; a failure names
    /// `what` and carries the tool's own message.
    pub fn output(&self, what: &str) -> Result<String> {
        let out = self
            .command()
            .stdin(Stdio::null())
            .output()
            .map_err(|source| self.start_error(what, source))?;
        if !out.status.success() {
            return Err(Error::Tool {
                what: what.to_string(),
                tool: self.program.to_string_lossy().into_owned(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The error of this command when it cannot be started (or waited for).
    fn start_error(&self, what: &str, source: std::io::Error) -> Error {
        Error::ToolStart {
            what: what.to_string(),
            tool: self.program.to_string_lossy().into_owned(),
            source,
        }
    }
}

/// Host, port, user, password and database of a database URL, percent-decoded.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct UrlParts {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    /// Query parameters (e.g. `host=/run/postgresql` for a socket directory).
    pub query: Vec<(String, String)>,
}

impl std::fmt::Debug for UrlParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UrlParts")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("database", &self.database)
            .finish()
    }
}

impl UrlParts {
    pub(crate) fn parse(spec: &str) -> Result<UrlParts> {
        // Never echo the URL itself in errors: it may hold a password.
        let bad = |why: &str| Error::Invalid(format!("invalid database URL: {why}"));
        let url = url::Url::parse(spec).map_err(|e| bad(&e.to_string()))?;
        // Percent-decoding as URLs define it (not form decoding: `+` stays `+`).
        let decode = |s: &str| -> Result<String> {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| bad("a percent-encoded part is not UTF-8"))
        };
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let database = url.path().trim_start_matches('/');
        if database.contains('/') {
            return Err(bad("the path must be one database name"));
        }
        Ok(UrlParts {
            host: url.host_str().and_then(nonempty),
            port: url.port(),
            user: nonempty(url.username()).map(|u| decode(&u)).transpose()?,
            password: url.password().map(decode).transpose()?,
            database: nonempty(database).map(|d| decode(&d)).transpose()?,
            query: url
                .query_pairs()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        })
    }

    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `name<TAB>count` lines.
pub(crate) fn parse_counts(text: &str, what: &str) -> Result<Vec<TableCount>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (t, n) = l
                .rsplit_once('\t')
                .ok_or_else(|| Error::Database(format!("{what}: unexpected output {l:?}")))?;
            let rows = n
                .trim()
                .parse()
                .map_err(|_| Error::Database(format!("{what}: unexpected count {n:?}")))?;
            Ok(TableCount {
                table: t.to_string(),
                rows,
            })
        })
        .collect()
}

/// A file name for a database name: anything but letters, digits, `-`, `_` and `.`
/// becomes `_`.
pub(crate) fn file_name(db: &str) -> String {
    let s: String = db
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

/// Whether `e` is a write into a client that had already stopped reading (its own exit
/// status then says why).
fn is_closed_pipe(e: &Error) -> bool {
    matches!(e, Error::Core(cairn_core::Error::Io { source, .. })
        if source.kind() == std::io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_decoding_and_no_password_in_debug() {
        let p =
            UrlParts::parse("postgresql://ann:p%40ss%2Fw@db.example:6543/app%20db?sslmode=require")
                .unwrap();
        assert_eq!(p.host.as_deref(), Some("db.example"));
        assert_eq!(p.port, Some(6543));
        assert_eq!(p.user.as_deref(), Some("ann"));
        assert_eq!(p.password.as_deref(), Some("p@ss/w"));
        assert_eq!(p.database.as_deref(), Some("app db"));
        assert_eq!(p.query("sslmode"), Some("require"));
        assert!(!format!("{p:?}").contains("p@ss"));
        // `+` is a plus and `&` a plain character in these parts (regression: they were
        // form-decoded into a space and a cut).
        let p = UrlParts::parse("postgresql://u:a+b%2Bc&d@h/x&y").unwrap();
        assert_eq!(p.password.as_deref(), Some("a+b+c&d"));
        assert_eq!(p.database.as_deref(), Some("x&y"));
        let p = UrlParts::parse("mariadb://root@127.0.0.1").unwrap();
        assert_eq!((p.database, p.password), (None, None));
        assert!(UrlParts::parse("postgresql://h/a/b").is_err());
        let e = UrlParts::parse("postgresql://u:secret@[bad").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn wrapper_passes_environment_by_name_to_containers() {
        let env = vec![("PGPASSWORD".to_string(), "pw".to_string())];
        let args = vec!["--version".to_string()];
        let direct = Wrapper::default().command("pg_dump", &args, &env);
        assert_eq!(direct.program, "pg_dump");
        assert_eq!(direct.args, vec![OsString::from("--version")]);
        let docker = Wrapper::parse("docker exec immich_postgres").command("pg_dump", &args, &env);
        assert_eq!(docker.program, "docker");
        let words: Vec<_> = docker.args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            words,
            [
                "exec",
                "--env",
                "PGPASSWORD",
                "immich_postgres",
                "pg_dump",
                "--version"
            ]
        );
        // The password is in the environment, never in the arguments or the Debug text.
        assert!(!words.contains(&"pw"));
        assert!(!format!("{docker:?}").contains("\"pw\""));
        let ssh = Wrapper::parse("ssh db1").command("pg_dump", &args, &env);
        assert_eq!(ssh.program, "ssh");
        assert_eq!(ssh.args.len(), 3);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("kimai"), "kimai");
        assert_eq!(file_name("a/b c"), "a_b_c");
        assert_eq!(file_name(".."), "_..");
        assert_eq!(file_name(""), "_");
    }
}

//! PostgreSQL: `pg_dump` of one database (custom format by default, plain SQL on
//! request), or `pg_dumpall --clean --if-exists` of a whole server.

use super::{file_name, DumpInfo, Planned, UrlParts, Wrapper};
use crate::Result;
use cairn_core::StreamSource;

/// The format of a `pg_dump`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PgFormat {
    /// `--format=custom --compress=0`: restored with `pg_restore`, which can pick tables
    /// and run in parallel. Left uncompressed so that nights deduplicate (cairn
    /// compresses the chunks).
    #[default]
    Custom,
    /// `--format=plain`: SQL, restored with `psql`.
    Plain,
}

/// A PostgreSQL database (or server) to dump.
#[derive(Clone, Debug)]
pub struct Postgres {
    conn: UrlParts,
    format: PgFormat,
    wrapper: Wrapper,
}

impl Postgres {
    /// From `postgresql://[user[:password]@][host][:port][/database][?host=/socket/dir]`.
    /// Without a database, the whole server is dumped with `pg_dumpall`.
    pub fn from_url(url: &str) -> Result<Postgres> {
        Ok(Postgres {
            conn: UrlParts::parse(url)?,
            format: PgFormat::Custom,
            wrapper: Wrapper::default(),
        })
    }

    /// Dumps in this format (one database only; a whole server is always plain SQL).
    pub fn with_format(mut self, format: PgFormat) -> Postgres {
        self.format = format;
        self
    }

    /// Runs the tools through `wrapper`.
    pub fn with_wrapper(mut self, wrapper: Wrapper) -> Postgres {
        self.wrapper = wrapper;
        self
    }

    /// The connection settings, for [`super::Database::with_password`] and
    /// [`super::Database::with_connection`].
    pub(crate) fn conn_mut(&mut self) -> &mut UrlParts {
        &mut self.conn
    }

    /// The same server, another database.
    pub fn with_database(&self, name: &str) -> Postgres {
        let mut p = self.clone();
        p.conn.database = Some(name.to_string());
        p
    }

    fn what(&self) -> String {
        format!("PostgreSQL at {}", self.location())
    }

    /// Whether the database exists and holds tables.
    pub fn state(&self) -> Result<super::TargetState> {
        let Some(db) = self.database() else {
            return Ok(super::TargetState::Tables(usize::MAX));
        };
        if !self.exists(db)? {
            return Ok(super::TargetState::Missing);
        }
        // Counting connects to the database itself. A `DROP DATABASE` committed between
        // the two queries (left running by a cairn that was killed, or anyone's) makes
        // the connection fail: the database is then missing, not unreachable.
        let counted = self
            .query(
                None,
                "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', \
                 'information_schema')",
            )
            .output(&self.what());
        let n: usize = match counted {
            Ok(n) => n.parse().unwrap_or(0),
            Err(_) if !self.exists(db)? => return Ok(super::TargetState::Missing),
            Err(e) => return Err(e),
        };
        Ok(if n == 0 {
            super::TargetState::Empty
        } else {
            super::TargetState::Tables(n)
        })
    }

    /// Whether the server lists the database `db`.
    fn exists(&self, db: &str) -> Result<bool> {
        let found = self
            .query(
                Some("postgres"),
                &format!(
                    "SELECT 1 FROM pg_database WHERE datname = {}",
                    quote_literal(db)
                ),
            )
            .output(&self.what())?;
        Ok(!found.is_empty())
    }

    /// `CREATE DATABASE`.
    pub fn create(&self) -> Result<()> {
        let db = self.database().unwrap_or("postgres");
        self.query(
            Some("postgres"),
            &format!("CREATE DATABASE {}", quote_ident(db)),
        )
        .output(&self.what())
        .map(drop)
    }

    /// `DROP DATABASE … WITH (FORCE)` (closes its connections first).
    pub fn drop_database(&self) -> Result<()> {
        let Some(db) = self.database() else {
            return Err(crate::Error::Invalid(
                "refusing to drop a whole PostgreSQL server".into(),
            ));
        };
        self.query(
            Some("postgres"),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(db)),
        )
        .output(&self.what())
        .map(drop)
    }

    /// Loads a dump: `pg_restore` (custom) or `psql` (plain), in one transaction for one
    /// database; a whole-server dump goes to `psql` on `postgres` (it creates databases,
    /// which no transaction can).
    pub fn load(
        &self,
        format: &str,
        feed: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<()>,
    ) -> Result<()> {
        let planned = match (self.database(), format) {
            (Some(db), "custom") => self.tool(
                "pg_restore",
                &[
                    &format!("--dbname={db}"),
                    "--no-owner",
                    "--exit-on-error",
                    "--single-transaction",
                ],
            ),
            (Some(db), _) => self.tool(
                "psql",
                &[
                    &format!("--dbname={db}"),
                    "--no-psqlrc",
                    "--quiet",
                    "--set=ON_ERROR_STOP=1",
                    "--single-transaction",
                ],
            ),
            // Not stopping at errors: a whole-server dump also recreates the role it is
            // loaded as, which exists already ("role … already exists" is expected, as
            // PostgreSQL's documentation says of pg_dumpall).
            (None, _) => self.tool("psql", &["--dbname=postgres", "--no-psqlrc", "--quiet"]),
        };
        planned.run_with_input(&format!("restoring into {}", self.what()), feed)
    }

    /// The database, or `None` for the whole server.
    pub fn database(&self) -> Option<&str> {
        self.conn.database.as_deref()
    }

    /// Where the server is, without credentials.
    pub fn location(&self) -> String {
        let host = self
            .conn
            .query("host")
            .or(self.conn.host.as_deref())
            .unwrap_or("local socket");
        match self.conn.port {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    /// Connection options for every libpq tool (no password: that is `PGPASSWORD`).
    fn conn_args(&self) -> Vec<String> {
        let mut a = vec!["--no-password".to_string()];
        if let Some(h) = self.conn.query("host").or(self.conn.host.as_deref()) {
            a.push(format!("--host={h}"));
        }
        if let Some(p) = self.conn.port {
            a.push(format!("--port={p}"));
        }
        if let Some(u) = &self.conn.user {
            a.push(format!("--username={u}"));
        }
        a
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(p) = &self.conn.password {
            env.push(("PGPASSWORD".to_string(), p.clone()));
        }
        if let Some(m) = self.conn.query("sslmode") {
            env.push(("PGSSLMODE".to_string(), m.to_string()));
        }
        env
    }

    /// A libpq tool with the connection options and `args`.
    pub(crate) fn tool(&self, program: &str, args: &[&str]) -> Planned {
        let mut a = self.conn_args();
        a.extend(args.iter().map(|s| s.to_string()));
        self.wrapper.command(program, &a, &self.env())
    }

    /// `psql` in `database` (or the URL's, or `postgres`), unaligned (tab-separated),
    /// without headers, stopping at the first error, then `extra`.
    fn psql(&self, database: Option<&str>, extra: &[&str]) -> Planned {
        let db = format!(
            "--dbname={}",
            database.or(self.database()).unwrap_or("postgres")
        );
        let mut args = vec![
            db.as_str(),
            "--no-psqlrc",
            "--tuples-only",
            "--no-align",
            "--quiet",
            "--field-separator=\t",
            "--set=ON_ERROR_STOP=1",
        ];
        args.extend_from_slice(extra);
        self.tool("psql", &args)
    }

    /// `psql` running one query (see [`Postgres::psql`]).
    pub(crate) fn query(&self, database: Option<&str>, sql: &str) -> Planned {
        self.psql(database, &["--command", sql])
    }

    /// The server's version (`SHOW server_version`).
    pub fn server_version(&self) -> Result<String> {
        self.query(None, "SHOW server_version")
            .output(&format!("PostgreSQL at {}", self.location()))
    }

    /// Every table of the database with its exact row count (none for a whole server).
    pub fn tables(&self) -> Result<Vec<super::TableCount>> {
        let what = self.what();
        self.count_tables(&mut |sql| self.query(None, sql).output(&what))
    }

    /// Counts every table's rows with `run` (which runs one query).
    fn count_tables(
        &self,
        run: &mut dyn FnMut(&str) -> Result<String>,
    ) -> Result<Vec<super::TableCount>> {
        if self.database().is_none() {
            return Ok(Vec::new());
        }
        let names = run(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )?;
        let names: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // The names come quoted by format('%I'); as literals they are quoted again.
        let sql = names
            .iter()
            .map(|n| format!("SELECT {}, count(*) FROM {n}", quote_literal(n)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        super::parse_counts(&run(&sql)?, &self.what())
    }

    /// Opens a read-only repeatable-read transaction and exports its snapshot, so that
    /// the row counts and the dump (`pg_dump --snapshot`) see one and the same state.
    /// The snapshot lives as long as the returned session.
    pub fn export_snapshot(&self) -> Result<PgSnapshot> {
        let mut child = self
            .psql(None, &[])
            .command()
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|source| crate::Error::ToolStart {
                what: self.what(),
                tool: "psql".into(),
                source,
            })?;
        let mut session = PgSnapshot {
            stdin: child.stdin.take(),
            stdout: std::io::BufReader::new(child.stdout.take().expect("piped")),
            child,
            id: String::new(),
            what: self.what(),
        };
        session.run("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
        session.id = session
            .run("SELECT pg_export_snapshot()")?
            .trim()
            .to_string();
        if session.id.is_empty() {
            return Err(crate::Error::Database(format!(
                "{}: no snapshot exported",
                self.what()
            )));
        }
        Ok(session)
    }

    /// Row counts taken inside an exported snapshot (see [`Postgres::export_snapshot`]).
    pub fn tables_in(&self, snapshot: &mut PgSnapshot) -> Result<Vec<super::TableCount>> {
        self.count_tables(&mut |sql| snapshot.run(sql))
    }

    /// The dump command: `pg_dump` of the database or `pg_dumpall` of the server.
    pub fn dump_command(&self) -> Planned {
        self.dump_command_at(None)
    }

    /// The dump command, reading the exported snapshot `snapshot` if given.
    fn dump_command_at(&self, snapshot: Option<&str>) -> Planned {
        match self.database() {
            Some(db) => {
                let mut args = vec![format!("--dbname={db}")];
                if let Some(id) = snapshot {
                    args.push(format!("--snapshot={id}"));
                }
                match self.format {
                    // Uncompressed: pg_dump's own compression would change every byte
                    // after a changed row and defeat deduplication between nights;
                    // cairn compresses each chunk instead.
                    PgFormat::Custom => {
                        args.extend(["--format=custom", "--compress=0"].map(String::from))
                    }
                    PgFormat::Plain => args.push("--format=plain".into()),
                }
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                self.tool("pg_dump", &args)
            }
            None => self.tool("pg_dumpall", &["--clean", "--if-exists"]),
        }
    }

    /// See [`super::Database::dump`].
    pub fn dump(&self) -> Result<(StreamSource, DumpInfo)> {
        self.dump_at(None)
    }

    /// Like [`Postgres::dump`], the dump reading the exported snapshot if given (the
    /// session must stay open until the dump has started).
    pub fn dump_at(&self, snapshot: Option<&PgSnapshot>) -> Result<(StreamSource, DumpInfo)> {
        let server_version = self.server_version()?;
        let (program, format, path) = match (self.database(), self.format) {
            (Some(db), PgFormat::Custom) => (
                "pg_dump",
                "custom",
                format!("db/postgres/{}.dump", file_name(db)),
            ),
            (Some(db), PgFormat::Plain) => (
                "pg_dump",
                "plain",
                format!("db/postgres/{}.sql", file_name(db)),
            ),
            (None, _) => ("pg_dumpall", "plain", "db/postgres/all.sql".to_string()),
        };
        let tool = self
            .wrapper
            .command(program, &["--version".to_string()], &[])
            .output(&format!("{program} --version"))?;
        let restore_hint = match (self.database(), format) {
            (Some(db), "custom") => {
                format!("cairn dump SNAPSHOT /{path} | pg_restore --dbname={db} --no-owner")
            }
            (Some(db), _) => format!("cairn dump SNAPSHOT /{path} | psql --dbname={db}"),
            (None, _) => format!("cairn dump SNAPSHOT /{path} | psql --dbname=postgres"),
        };
        let info = DumpInfo {
            engine: "postgresql".into(),
            database: self.database().unwrap_or("*").to_string(),
            location: self.location(),
            server_version,
            tool,
            format: format.into(),
            path: format!("/{path}"),
            restore_hint,
            file: None,
            charset: None,
        };
        let planned = self.dump_command_at(snapshot.map(|s| s.id.as_str()));
        Ok((planned.into_stream(path), info))
    }
}

/// An open `psql` session holding a read-only repeatable-read transaction whose
/// snapshot it exported; closing it (drop) ends the transaction.
pub struct PgSnapshot {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    id: String,
    what: String,
}

impl std::fmt::Debug for PgSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSnapshot").field("id", &self.id).finish()
    }
}

/// Printed after each statement, to know where its output ends.
const DONE: &str = "__cairn_statement_done__";

impl PgSnapshot {
    /// The exported snapshot's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs one statement in the session and returns its output.
    fn run(&mut self, sql: &str) -> Result<String> {
        use std::io::{BufRead, Read, Write};
        let fail = |s: &mut PgSnapshot, why: String| {
            let mut err = String::new();
            drop(s.stdin.take());
            if let Some(e) = s.child.stderr.as_mut() {
                let _ = e.read_to_string(&mut err);
            }
            crate::Error::Database(format!("{}: {why}: {}", s.what, err.trim()))
        };
        let stdin = self.stdin.as_mut().expect("open until drop");
        if let Err(e) = write!(stdin, "{sql};\n\\echo {DONE}\n").and_then(|()| stdin.flush()) {
            return Err(fail(self, format!("psql stopped ({e})")));
        }
        let mut out = String::new();
        loop {
            let mut line = String::new();
            match self.stdout.read_line(&mut line) {
                Ok(0) => return Err(fail(self, "psql stopped".into())),
                Ok(_) if line.trim_end() == DONE => return Ok(out),
                Ok(_) => out.push_str(&line),
                Err(e) => return Err(fail(self, e.to_string())),
            }
        }
    }
}

impl Drop for PgSnapshot {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// A SQL identifier, quoted.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_hold_no_password() {
        let pg = Postgres::from_url("postgresql://app:s%3Acret@127.0.0.1:5433/kimai").unwrap();
        let c = pg.dump_command();
        assert_eq!(c.program, "pg_dump");
        let args: Vec<_> = c.args.iter().map(|a| a.to_str().unwrap()).collect();
        assert_eq!(
            args,
            [
                "--no-password",
                "--host=127.0.0.1",
                "--port=5433",
                "--username=app",
                "--dbname=kimai",
                "--format=custom",
                "--compress=0"
            ]
        );
        assert_eq!(c.env, vec![("PGPASSWORD".into(), "s:cret".into())]);
        let all = Postgres::from_url("postgres://postgres@localhost").unwrap();
        let c = all.dump_command();
        assert_eq!(c.program, "pg_dumpall");
        assert!(c.args.iter().any(|a| a == "--if-exists"));
        assert!(c.env.is_empty());
        let sock = Postgres::from_url("postgresql:///app?host=/run/postgresql").unwrap();
        assert_eq!(sock.location(), "/run/postgresql");
    }
}

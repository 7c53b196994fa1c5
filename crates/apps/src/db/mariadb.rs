//! MariaDB and MySQL: `mariadb-dump` (or `mysqldump`) with `--single-transaction
//! --routines --events --triggers`, one database or all of them.

use super::{file_name, DumpInfo, Planned, UrlParts, Wrapper};
use crate::Result;
use cairn_core::StreamSource;

/// A MariaDB/MySQL database (or server) to dump.
#[derive(Clone, Debug)]
pub struct MariaDb {
    conn: UrlParts,
    wrapper: Wrapper,
    /// The character set and collation [`MariaDb::create`] gives the database.
    charset: Option<super::Charset>,
}

/// The first of `names` found on `PATH`, else the first name (to fail with its name).
fn program(names: &[&'static str]) -> &'static str {
    let path = std::env::var_os("PATH").unwrap_or_default();
    names
        .iter()
        .find(|n| std::env::split_paths(&path).any(|d| d.join(n).is_file()))
        .unwrap_or(&names[0])
}

impl MariaDb {
    /// From `mariadb://[user[:password]@][host][:port][/database][?socket=/path]`
    /// (`mysql://` too). Without a database, every database is dumped.
    pub fn from_url(url: &str) -> Result<MariaDb> {
        Ok(MariaDb {
            conn: UrlParts::parse(url)?,
            wrapper: Wrapper::default(),
            charset: None,
        })
    }

    /// Creates the database with this character set and collation (see
    /// [`super::Database::ready_for`]).
    pub fn with_charset(mut self, charset: Option<super::Charset>) -> MariaDb {
        self.charset = charset;
        self
    }

    /// The database's default character set and collation, as the server reports them.
    fn charset(&self) -> Result<Option<super::Charset>> {
        let Some(db) = self.database() else {
            return Ok(None);
        };
        let out = self
            .server_query(&format!(
                "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM \
                 information_schema.SCHEMATA WHERE SCHEMA_NAME = {}",
                quote_literal(db)
            ))
            .output(&self.what())?;
        Ok(out.split_once('\t').map(|(c, l)| super::Charset {
            character_set: c.trim().to_string(),
            collation: l.trim().to_string(),
        }))
    }

    /// Runs the tools through `wrapper`.
    pub fn with_wrapper(mut self, wrapper: Wrapper) -> MariaDb {
        self.wrapper = wrapper;
        self
    }

    /// The connection settings, for [`super::Database::with_password`] and
    /// [`super::Database::with_connection`].
    pub(crate) fn conn_mut(&mut self) -> &mut UrlParts {
        &mut self.conn
    }

    /// The same server, no database (for statements on the server itself).
    pub(crate) fn on_server(&self) -> MariaDb {
        let mut m = self.clone();
        m.conn.database = None;
        m
    }

    /// The same server, another database.
    pub fn with_database(&self, name: &str) -> MariaDb {
        let mut m = self.clone();
        m.conn.database = Some(name.to_string());
        m
    }

    fn what(&self) -> String {
        format!("MariaDB at {}", self.location())
    }

    /// Whether the database exists and holds tables.
    pub fn state(&self) -> Result<super::TargetState> {
        let Some(db) = self.database() else {
            return Ok(super::TargetState::Tables(usize::MAX));
        };
        let lit = quote_literal(db);
        let out = self
            .server_query(&format!(
                "SELECT COUNT(*), (SELECT COUNT(*) FROM information_schema.tables WHERE \
                 table_schema = {lit}) FROM information_schema.schemata WHERE schema_name = {lit}"
            ))
            .output(&self.what())?;
        let mut it = out
            .split('\t')
            .map(|n| n.trim().parse::<usize>().unwrap_or(0));
        let (exists, tables) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
        Ok(match (exists, tables) {
            (0, _) => super::TargetState::Missing,
            (_, 0) => super::TargetState::Empty,
            (_, n) => super::TargetState::Tables(n),
        })
    }

    /// A statement run without selecting a database.
    fn server_query(&self, sql: &str) -> Planned {
        let mut a = self.conn_args();
        a.extend(["--batch".into(), "--skip-column-names".into()]);
        a.extend(["--execute".into(), sql.to_string()]);
        self.wrapper.command(self.client_program(), &a, &self.env())
    }

    /// `CREATE DATABASE`, with the character set and collation of the database dumped
    /// (utf8mb4 when they are not known).
    pub fn create(&self) -> Result<()> {
        let db = self.database().unwrap_or_default();
        let charset = match &self.charset {
            Some(c) if is_word(&c.character_set) && is_word(&c.collation) => {
                format!("CHARACTER SET {} COLLATE {}", c.character_set, c.collation)
            }
            _ => "CHARACTER SET utf8mb4".to_string(),
        };
        self.server_query(&format!("CREATE DATABASE {} {charset}", quote_ident(db)))
            .output(&self.what())
            .map(drop)
    }

    /// `DROP DATABASE`: also the vendors' advice before loading a dump into a database
    /// with foreign keys (i-doit).
    pub fn drop_database(&self) -> Result<()> {
        let Some(db) = self.database() else {
            return Err(crate::Error::Invalid(
                "refusing to drop every database of a MariaDB server".into(),
            ));
        };
        self.server_query(&format!("DROP DATABASE IF EXISTS {}", quote_ident(db)))
            .output(&self.what())
            .map(drop)
    }

    /// Loads a dump with the client, into the database (or, for a dump of all
    /// databases, wherever it says).
    pub fn load(&self, feed: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<()>) -> Result<()> {
        let mut a = self.conn_args();
        if let Some(db) = self.database() {
            a.push(format!("--database={db}"));
        }
        a.push("--default-character-set=utf8mb4".into());
        self.wrapper
            .command(self.client_program(), &a, &self.env())
            .run_with_input(&format!("restoring into {}", self.what()), feed)
    }

    /// The database, or `None` for all of them.
    pub fn database(&self) -> Option<&str> {
        self.conn.database.as_deref()
    }

    /// Where the server is, without credentials.
    pub fn location(&self) -> String {
        if let Some(s) = self.conn.query("socket") {
            return s.to_string();
        }
        let host = self.conn.host.as_deref().unwrap_or("localhost");
        format!("{host}:{}", self.conn.port.unwrap_or(3306))
    }

    /// Connection options (no password: that is `MYSQL_PWD`).
    fn conn_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(s) = self.conn.query("socket") {
            a.push(format!("--socket={s}"));
        } else if let Some(h) = &self.conn.host {
            a.push(format!("--host={h}"));
            // "localhost" means the socket to the client library; a port asks for TCP.
            if let Some(p) = self.conn.port {
                a.push(format!("--port={p}"));
                a.push("--protocol=TCP".into());
            }
        }
        if let Some(u) = &self.conn.user {
            a.push(format!("--user={u}"));
        }
        a
    }

    fn env(&self) -> Vec<(String, String)> {
        self.conn
            .password
            .iter()
            .map(|p| ("MYSQL_PWD".to_string(), p.clone()))
            .collect()
    }

    fn dump_program(&self) -> &'static str {
        if self.wrapper == Wrapper::default() {
            program(&["mariadb-dump", "mysqldump"])
        } else {
            "mariadb-dump"
        }
    }

    fn client_program(&self) -> &'static str {
        if self.wrapper == Wrapper::default() {
            program(&["mariadb", "mysql"])
        } else {
            "mariadb"
        }
    }

    /// The client running one statement in `database` (or none), tab-separated, without
    /// column names.
    pub(crate) fn query(&self, database: Option<&str>, sql: &str) -> Planned {
        let mut a = self.conn_args();
        a.extend(["--batch".into(), "--skip-column-names".into()]);
        if let Some(db) = database.or(self.database()) {
            a.push(format!("--database={db}"));
        }
        a.extend(["--execute".into(), sql.to_string()]);
        self.wrapper.command(self.client_program(), &a, &self.env())
    }

    /// The server's version (`SELECT VERSION()`).
    pub fn server_version(&self) -> Result<String> {
        self.query(None, "SELECT VERSION()")
            .output(&format!("MariaDB at {}", self.location()))
    }

    /// Every base table of the database with its exact row count (none for a whole
    /// server).
    pub fn tables(&self) -> Result<Vec<super::TableCount>> {
        if self.database().is_none() {
            return Ok(Vec::new());
        }
        let what = format!("MariaDB at {}", self.location());
        let names = self
            .query(
                None,
                "SELECT table_name FROM information_schema.tables WHERE table_schema = \
                 DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1",
            )
            .output(&what)?;
        let names: Vec<&str> = names.lines().filter(|l| !l.is_empty()).collect();
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let sql = names
            .iter()
            .map(|n| {
                format!(
                    "SELECT '{}', COUNT(*) FROM `{}`",
                    n.replace('\\', "\\\\").replace('\'', "\\'"),
                    n.replace('`', "``")
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        super::parse_counts(&self.query(None, &sql).output(&what)?, &what)
    }

    /// The dump command.
    pub fn dump_command(&self) -> Planned {
        let mut a = self.conn_args();
        a.extend(
            [
                // One consistent read view of InnoDB tables without locking them.
                "--single-transaction",
                "--routines",
                "--events",
                "--triggers",
                // Binary columns as hex: the dump stays valid text whatever they hold.
                "--hex-blob",
                "--default-character-set=utf8mb4",
            ]
            .map(String::from),
        );
        match self.database() {
            // Without `--databases`: no CREATE DATABASE or USE in the dump, so it loads
            // into whichever database a restore names.
            Some(db) => a.push(db.to_string()),
            None => a.push("--all-databases".into()),
        }
        self.wrapper.command(self.dump_program(), &a, &self.env())
    }

    /// See [`super::Database::dump`].
    pub fn dump(&self) -> Result<(StreamSource, DumpInfo)> {
        let server_version = self.server_version()?;
        let program = self.dump_program();
        let tool = self
            .wrapper
            .command(program, &["--version".to_string()], &[])
            .output(&format!("{program} --version"))?;
        let path = match self.database() {
            Some(db) => format!("db/mariadb/{}.sql", file_name(db)),
            None => "db/mariadb/all.sql".to_string(),
        };
        let info = DumpInfo {
            engine: "mariadb".into(),
            database: self.database().unwrap_or("*").to_string(),
            location: self.location(),
            server_version,
            tool,
            format: "plain".into(),
            restore_hint: match self.database() {
                Some(db) => format!(
                    "cairn dump SNAPSHOT /{path} | {} --database={db}",
                    self.client_program()
                ),
                None => format!("cairn dump SNAPSHOT /{path} | {}", self.client_program()),
            },
            path: format!("/{path}"),
            file: None,
            charset: self.charset()?,
        };
        Ok((self.dump_command().into_stream(path), info))
    }
}

/// Whether `s` can stand in SQL as a character set's or collation's name (they come
/// from a snapshot's manifest: nothing else may reach the statement).
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A SQL identifier, quoted with backticks.
fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A SQL string literal.
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_hold_no_password() {
        let m = MariaDb::from_url("mariadb://kimai:pa%20ss@127.0.0.1:3307/kimai").unwrap();
        let c = m.dump_command();
        let args: Vec<_> = c.args.iter().map(|a| a.to_str().unwrap()).collect();
        assert!(args.starts_with(&[
            "--host=127.0.0.1",
            "--port=3307",
            "--protocol=TCP",
            "--user=kimai"
        ]));
        assert!(args.ends_with(&["--default-character-set=utf8mb4", "kimai"]));
        assert!(args.contains(&"--single-transaction"));
        assert!(!args.iter().any(|a| a.contains("pa ss")));
        assert_eq!(c.env, vec![("MYSQL_PWD".into(), "pa ss".into())]);
        let all = MariaDb::from_url("mysql://root@localhost").unwrap();
        assert!(all
            .dump_command()
            .args
            .iter()
            .any(|a| a == "--all-databases"));
        assert_eq!(all.location(), "localhost:3306");
    }
}

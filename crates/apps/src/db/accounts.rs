//! The server accounts an application's databases need: MariaDB users with their grants,
//! PostgreSQL roles. A dump of one database does not carry them (`--all-databases` and
//! `pg_dumpall` do), so a database restored on a new server would have no one to log in
//! as. cairn stores them beside the dumps, and a restore creates the accounts that are
//! missing; an account that exists is left as it is (its password is not reset).
//!
//! Each account's statements form one block of the script, opened by a comment line
//! `-- account NAME`, so a restore can run the blocks of the missing accounts only.

use super::{Database, MariaDb, Postgres};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// What a snapshot records about the accounts stored beside the dumps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsDump {
    /// `mariadb` or `postgresql`.
    pub engine: String,
    /// The server, without credentials.
    pub location: String,
    /// The script's path in the snapshot.
    pub path: String,
    /// The accounts: `'user'@'host'` (MariaDB) or role names (PostgreSQL).
    pub accounts: Vec<String>,
}

/// The line that opens an account's block.
const BLOCK: &str = "-- account ";

impl Database {
    /// The accounts that hold privileges on this database (MariaDB; `root` left out) or
    /// own it or its objects (PostgreSQL; superusers left out), and the script that
    /// creates them with their grants. `None` for SQLite.
    pub fn accounts(&self) -> Result<Option<(Vec<String>, String)>> {
        match self {
            Database::MariaDb(m) => m.accounts().map(Some),
            Database::Postgres(p) => p.accounts().map(Some),
            Database::Sqlite(_) => Ok(None),
        }
    }

    /// Which of `names` do not exist on the server.
    pub fn missing_accounts(&self, names: &[String]) -> Result<Vec<String>> {
        let existing = match self {
            Database::MariaDb(m) => m.existing_accounts()?,
            Database::Postgres(p) => p.existing_roles()?,
            Database::Sqlite(_) => return Ok(Vec::new()),
        };
        Ok(names
            .iter()
            .filter(|n| !existing.contains(n))
            .cloned()
            .collect())
    }

    /// Runs the blocks of `script` of the accounts `names` (the missing ones).
    pub fn create_accounts(&self, script: &str, names: &[String]) -> Result<()> {
        let sql = blocks_of(script, names);
        if sql.trim().is_empty() {
            return Ok(());
        }
        self.server_sql(&sql)
    }

    /// Drops the accounts `names` (those a restore created, when it is rolled back).
    pub fn drop_accounts(&self, names: &[String]) -> Result<()> {
        let sql: String = names
            .iter()
            .map(|n| match self {
                Database::MariaDb(_) => format!("DROP USER IF EXISTS {n};\n"),
                _ => format!("DROP ROLE IF EXISTS {};\n", quote_pg(n)),
            })
            .collect();
        if sql.is_empty() {
            return Ok(());
        }
        self.server_sql(&sql)
    }

    /// Runs SQL on the server, outside any of the application's databases.
    fn server_sql(&self, sql: &str) -> Result<()> {
        let feed = &mut |w: &mut dyn std::io::Write| {
            w.write_all(sql.as_bytes())
                .map_err(|e| Error::io("<accounts>", e))
        };
        match self {
            Database::MariaDb(m) => m.on_server().load(feed),
            Database::Postgres(p) => p.with_database("postgres").load("plain", feed),
            Database::Sqlite(_) => Ok(()),
        }
    }
}

/// The blocks of `script` that open with the accounts `names`.
fn blocks_of(script: &str, names: &[String]) -> String {
    let mut out = String::new();
    let mut on = false;
    for line in script.lines() {
        if let Some(name) = line.strip_prefix(BLOCK) {
            on = names.iter().any(|n| n == name.trim());
        }
        if on {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn quote_pg(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl MariaDb {
    fn accounts(&self) -> Result<(Vec<String>, String)> {
        let Some(db) = self.database() else {
            return Ok((Vec::new(), String::new()));
        };
        let what = format!("the accounts of database {db}");
        let grantees = self
            .query(
                Some("information_schema"),
                &format!(
                    "SELECT DISTINCT GRANTEE FROM SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = '{}' \
                     ORDER BY 1",
                    db.replace('\\', "\\\\").replace('\'', "\\'")
                ),
            )
            .output(&what)?;
        let mut names = Vec::new();
        let mut script = String::new();
        for g in grantees.lines().map(str::trim).filter(|g| !g.is_empty()) {
            if g.starts_with("'root'@") {
                continue;
            }
            let create = self
                .query(Some("information_schema"), &format!("SHOW CREATE USER {g}"))
                .output(&what)?;
            let grants = self
                .query(Some("information_schema"), &format!("SHOW GRANTS FOR {g}"))
                .output(&what)?;
            script.push_str(&format!("{BLOCK}{g}\n"));
            let rest = create
                .trim()
                .strip_prefix("CREATE USER ")
                .unwrap_or(create.trim());
            script.push_str(&format!("CREATE USER IF NOT EXISTS {rest};\n"));
            for grant in grants.lines().map(str::trim) {
                // The password came with CREATE USER; USAGE grants nothing more.
                if grant.starts_with("GRANT USAGE ON *.*") || grant.is_empty() {
                    continue;
                }
                script.push_str(&format!("{grant};\n"));
            }
            names.push(g.to_string());
        }
        Ok((names, script))
    }

    fn existing_accounts(&self) -> Result<Vec<String>> {
        let out = self
            .query(
                Some("mysql"),
                "SELECT CONCAT('''', User, '''@''', Host, '''') FROM mysql.user",
            )
            .output("the server's accounts")?;
        Ok(out.lines().map(|l| l.trim().to_string()).collect())
    }
}

impl Postgres {
    fn accounts(&self) -> Result<(Vec<String>, String)> {
        let what = "the roles of the database";
        let roles = self
            .query(
                None,
                "SELECT DISTINCT r.rolname FROM pg_roles r WHERE NOT r.rolsuper AND r.oid IN \
                 (SELECT datdba FROM pg_database WHERE datname = current_database() \
                 UNION SELECT relowner FROM pg_class \
                 UNION SELECT nspowner FROM pg_namespace \
                 UNION SELECT member FROM pg_auth_members m JOIN pg_class c \
                 ON c.relowner = m.roleid) ORDER BY 1",
            )
            .output(what)?;
        let mut names = Vec::new();
        let mut script = String::new();
        for role in roles.lines().map(str::trim).filter(|r| !r.is_empty()) {
            // What pg_dumpall --globals-only writes for the role: its attributes and
            // password hash, and its memberships.
            let block = self
                .query(
                    Some("postgres"),
                    &format!(
                        "SELECT format('CREATE ROLE %I;', rolname) || E'\\n' || \
                         format('ALTER ROLE %I WITH %s %s %s %s %s %s %s%s;', rolname, \
                         CASE WHEN rolinherit THEN 'INHERIT' ELSE 'NOINHERIT' END, \
                         CASE WHEN rolcreaterole THEN 'CREATEROLE' ELSE 'NOCREATEROLE' END, \
                         CASE WHEN rolcreatedb THEN 'CREATEDB' ELSE 'NOCREATEDB' END, \
                         CASE WHEN rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END, \
                         CASE WHEN rolreplication THEN 'REPLICATION' ELSE 'NOREPLICATION' END, \
                         CASE WHEN rolbypassrls THEN 'BYPASSRLS' ELSE 'NOBYPASSRLS' END, \
                         'CONNECTION LIMIT ' || rolconnlimit, \
                         COALESCE(' PASSWORD ' || quote_literal(rolpassword), '')) \
                         FROM pg_authid WHERE rolname = {}",
                        quote_literal_pg(role)
                    ),
                )
                .output(what)?;
            script.push_str(&format!("{BLOCK}{role}\n{}\n", block.trim()));
            names.push(role.to_string());
        }
        Ok((names, script))
    }

    fn existing_roles(&self) -> Result<Vec<String>> {
        let out = self
            .query(Some("postgres"), "SELECT rolname FROM pg_roles")
            .output("the server's roles")?;
        Ok(out.lines().map(|l| l.trim().to_string()).collect())
    }
}

fn quote_literal_pg(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_blocks_of_the_named_accounts_run() {
        let script = "-- account 'a'@'%'\nCREATE USER IF NOT EXISTS a;\nGRANT x TO a;\n\
                      -- account 'b'@'%'\nCREATE USER IF NOT EXISTS b;\n";
        assert_eq!(
            blocks_of(script, &["'b'@'%'".into()]),
            "-- account 'b'@'%'\nCREATE USER IF NOT EXISTS b;\n"
        );
        assert_eq!(blocks_of(script, &[]), "");
    }
}

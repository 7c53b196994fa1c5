//! Throwaway databases on the PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB
//! (127.0.0.1:3306, user root) servers the tests use, and SQL run through their clients.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// Connection options of the PostgreSQL clients.
pub const PSQL: &[&str] = &["-h", "127.0.0.1", "-p", "5432", "-U", "postgres"];
/// Connection options of the MariaDB clients.
pub const MARIADB: &[&str] = &["-h", "127.0.0.1", "-P", "3306", "-u", "root"];

/// Runs `cmd` with `sql` on its standard input (an argument is limited to 128 KiB);
/// panics with the client's message on failure.
fn run_sql(mut cmd: Command, sql: &str, server: &str) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the {server} client: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let sql = sql.to_string();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(sql.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "{server} client failed (is {server} running on 127.0.0.1?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs SQL with psql in `db` (unaligned, no headers, stop at the first error).
pub fn psql(db: &str, sql: &str) -> String {
    let mut c = Command::new("psql");
    c.args(PSQL).args([
        "--no-psqlrc",
        "--quiet",
        "--tuples-only",
        "--no-align",
        "--set=ON_ERROR_STOP=1",
        &format!("--dbname={db}"),
    ]);
    run_sql(c, sql, "PostgreSQL")
}

/// Runs SQL with the mariadb client, in `db` if given (tab-separated, no headers).
pub fn mariadb(db: Option<&str>, sql: &str) -> String {
    let mut c = Command::new("mariadb");
    c.args(MARIADB).args(["--batch", "--skip-column-names"]);
    if let Some(db) = db {
        c.arg(format!("--database={db}"));
    }
    run_sql(c, sql, "MariaDB")
}

/// A database name no other test or run uses: `cairn_e2e_<pid>_<n>_<tag>`.
fn unique_name(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "cairn_e2e_{}_{}_{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A throwaway PostgreSQL database, dropped at the end whatever happens.
pub struct TempPg(pub String);

impl TempPg {
    pub fn new(tag: &str) -> TempPg {
        let name = unique_name(tag);
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        psql("postgres", &format!("CREATE DATABASE {name}"));
        TempPg(name)
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args(PSQL)
            .args(["--dbname=postgres", "--quiet", "--command"])
            .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A throwaway MariaDB database, dropped at the end whatever happens.
pub struct TempMaria(pub String);

impl TempMaria {
    pub fn new(tag: &str) -> TempMaria {
        let name = unique_name(tag);
        mariadb(
            None,
            &format!("DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}"),
        );
        TempMaria(name)
    }
}

impl Drop for TempMaria {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(MARIADB)
            .arg("--execute")
            .arg(format!("DROP DATABASE IF EXISTS {}", self.0))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

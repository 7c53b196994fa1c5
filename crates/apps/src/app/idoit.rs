//! i-doit (IT documentation; PHP with MariaDB/MySQL).
//!
//! From the vendor's page: back up the system database and every tenant database
//! (`mysqldump`; cairn adds `--single-transaction`), the whole i-doit directory, and the
//! system configuration (Apache, PHP and MariaDB files written for i-doit). i-doit should
//! not be used during the backup: stop Apache and i-doit's cron jobs around it (hooks).
//! On restore, drop the databases first, or foreign keys make the load fail; cairn's
//! restore loads into empty databases and drops existing ones only with consent. And
//! backups should never stay on the system being secured.
//!
//! `src/config.inc.php` names the system database (`$g_db_system`: host, port, user,
//! pass, name); the system database's `isys_mandator` table names the tenant databases.

use super::{lookup, Plan};
use crate::db::{Database, MariaDb};
use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// The i-doit front-end.
#[derive(Debug)]
pub struct Idoit;

/// System configuration files that i-doit's installation writes, when present.
const SYSTEM_FILES: &[&str] = &[
    "/etc/apache2/sites-available/i-doit.conf",
    "/etc/mysql/mariadb.conf.d/99-i-doit.cnf",
];

impl Idoit {
    /// Reads the installation at `install`.
    pub fn discover(install: &Path) -> Result<Plan> {
        let install = install.canonicalize().map_err(|e| Error::io(install, e))?;
        let config = install.join("src/config.inc.php");
        let text = std::fs::read_to_string(&config).map_err(|e| {
            Error::config(
                &config,
                format!("{e}: not an i-doit installation"),
                Some(Box::new(e)),
            )
        })?;
        let system = php_array(&text, "$g_db_system")
            .ok_or_else(|| Error::config(&config, "no $g_db_system", None))?;
        let get = |k: &str| lookup(&system, k).unwrap_or("");
        let server = Server {
            host: or(get("host"), "localhost"),
            port: or(get("port"), "3306"),
            user: get("user").to_string(),
            pass: get("pass").to_string(),
        };
        let system_name = or(get("name"), "idoit_system");
        let system_db = server.database(&system_name)?;
        let mut databases = vec![Database::MariaDb(system_db.clone())];
        let mut problems = Vec::new();
        let mut missing_databases = Vec::new();
        // Every tenant, the inactive ones too: an inactive tenant still holds its data,
        // and the vendor's own backup (--all-databases) carries it.
        match tenants(&system_db, &server) {
            Ok(t) => {
                for (row, db) in t {
                    let name = db.database().unwrap_or_default().to_string();
                    match db.state() {
                        Ok(crate::db::TargetState::Missing) => missing_databases.push((name, row)),
                        // A tenant that cannot be reached is found by the dump, which
                        // names it and fails the backup.
                        _ => databases.push(Database::MariaDb(db)),
                    }
                }
            }
            Err(e) => problems.push(format!("cannot list the tenant databases: {e}")),
        }
        let mut paths = vec![install.clone()];
        paths.extend(SYSTEM_FILES.iter().map(PathBuf::from));
        if let Ok(dir) = std::fs::read_dir("/etc/php") {
            for v in dir.flatten() {
                paths.push(v.path().join("mods-available/i-doit.ini"));
            }
        }
        Ok(Plan {
            app: "idoit".into(),
            version: version(&install),
            revision: None,
            paths,
            excludes: vec![format!("{}/temp/", install.display())],
            databases,
            before: Vec::new(),
            after: Vec::new(),
            before_restore: vec![
                "stop Apache and i-doit's cron jobs, and keep them stopped until the \
                 databases and files are back"
                    .into(),
            ],
            post_restore: vec![
                "if the system configuration was lost too (Apache, PHP and MariaDB files): \
                 cairn app restore idoit --files-only --system-config"
                    .into(),
                "start Apache and the cron jobs, then log in and check the tenants".into(),
                "keep a copy of the repository away from this machine (3-2-1)".into(),
            ],
            problems,
            name: None,
            optional_paths: Vec::new(),
            not_included: Vec::new(),
            missing_databases,
            install,
        })
    }
}

fn or(v: &str, default: &str) -> String {
    if v.is_empty() {
        default.to_string()
    } else {
        v.to_string()
    }
}

/// How to reach a MariaDB server.
struct Server {
    host: String,
    port: String,
    user: String,
    pass: String,
}

impl Server {
    fn database(&self, name: &str) -> Result<MariaDb> {
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let auth = match (self.user.is_empty(), self.pass.is_empty()) {
            (true, _) => String::new(),
            (false, true) => format!("{}@", enc(&self.user)),
            (false, false) => format!("{}:{}@", enc(&self.user), enc(&self.pass)),
        };
        MariaDb::from_url(&format!(
            "mariadb://{auth}{}:{}/{}",
            self.host,
            self.port,
            enc(name)
        ))
    }
}

/// Every tenant's database, from the system database's `isys_mandator`: the row (for
/// messages: `tenant ID "TITLE" (inactive) in isys_mandator`) and the database, reached
/// with the tenant's own host, port, user and password where the row gives them.
fn tenants(system: &MariaDb, server: &Server) -> Result<Vec<(String, MariaDb)>> {
    let out = system
        .query(
            None,
            "SELECT isys_mandator__db_name, COALESCE(isys_mandator__db_host, ''), \
             COALESCE(isys_mandator__db_port, ''), COALESCE(isys_mandator__db_user, ''), \
             COALESCE(isys_mandator__db_pass, ''), isys_mandator__id, \
             COALESCE(isys_mandator__title, ''), COALESCE(isys_mandator__active, 1) \
             FROM isys_mandator ORDER BY isys_mandator__id",
        )
        .output(&format!("i-doit system database at {}", system.location()))?;
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let field = |i: usize, default: &str| {
                f.get(i)
                    .map(|v| v.trim())
                    .filter(|v| !v.is_empty() && *v != "NULL")
                    .map(String::from)
                    .unwrap_or_else(|| default.to_string())
            };
            let tenant = Server {
                host: field(1, &server.host),
                port: field(2, &server.port),
                user: field(3, &server.user),
                pass: field(4, &server.pass),
            };
            let row = format!(
                "tenant {} \"{}\"{} in isys_mandator",
                field(5, "?"),
                field(6, ""),
                if field(7, "1") == "1" {
                    ""
                } else {
                    " (inactive)"
                }
            );
            Ok((row, tenant.database(&field(0, ""))?))
        })
        .collect()
}

/// i-doit's version from `src/version.inc.php` (`$g_product_info['version']`).
fn version(install: &Path) -> Option<String> {
    let text = std::fs::read_to_string(install.join("src/version.inc.php")).ok()?;
    let info = php_array(&text, "$g_product_info")?;
    lookup(&info, "version")
        .filter(|v| !v.is_empty())
        .map(String::from)
}

/// The `'key' => 'value'` pairs of the PHP array assigned to `var` (`[ … ]` or
/// `array( … )`); values are strings or numbers. Enough for i-doit's generated files;
/// nested arrays are skipped.
fn php_array(text: &str, var: &str) -> Option<Vec<(String, String)>> {
    let start = text.find(var)? + var.len();
    let rest = text[start..].trim_start().strip_prefix('=')?.trim_start();
    let (body, close) = if let Some(b) = rest.strip_prefix('[') {
        (b, ']')
    } else {
        (
            rest.strip_prefix("array")?.trim_start().strip_prefix('(')?,
            ')',
        )
    };
    let mut tokens = Vec::new();
    let mut chars = body.char_indices().peekable();
    let mut depth = 0;
    while let Some((i, c)) = chars.next() {
        match c {
            '\'' | '"' => {
                let mut s = String::new();
                while let Some((_, d)) = chars.next() {
                    match d {
                        '\\' => {
                            if let Some((_, e)) = chars.next() {
                                s.push(e);
                            }
                        }
                        d if d == c => break,
                        d => s.push(d),
                    }
                }
                if depth == 0 {
                    tokens.push(s);
                }
            }
            '[' | '(' => depth += 1,
            ']' | ')' if depth > 0 => depth -= 1,
            c if c == close => break,
            '=' if body[i..].starts_with("=>") => {
                chars.next();
                if depth == 0 {
                    tokens.push("=>".into());
                }
            }
            c if c.is_ascii_digit() && depth == 0 => {
                let mut s = c.to_string();
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_ascii_digit() || d == '.' {
                        s.push(d);
                        chars.next();
                    } else {
                        break;
                    }
                }
                tokens.push(s);
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < tokens.len() {
        if tokens[i + 1] == "=>" && tokens[i] != "=>" && tokens[i + 2] != "=>" {
            out.push((tokens[i].clone(), tokens[i + 2].clone()));
            i += 3;
        } else {
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_php_arrays_in_both_spellings() {
        let text = r#"<?php
$g_db_system = [
    "type" => "mysql",
    "host" => "127.0.0.1",
    'port' => 3307,
    "user" => "idoit",
    "pass" => "p\"ss'w",
    "name" => "idoit_system",
    "opts" => ["x" => "y"],
];
$g_product_info = array('version' => '25', 'type' => 'PRO');
"#;
        let sys = php_array(text, "$g_db_system").unwrap();
        let get = |k: &str| lookup(&sys, k);
        assert_eq!(get("host"), Some("127.0.0.1"));
        assert_eq!(get("port"), Some("3307"));
        assert_eq!(get("pass"), Some("p\"ss'w"));
        assert_eq!(get("name"), Some("idoit_system"));
        assert_eq!(get("x"), None);
        let info = php_array(text, "$g_product_info").unwrap();
        assert_eq!(info[0], ("version".to_string(), "25".to_string()));
        assert!(php_array(text, "$g_nothing").is_none());
    }
}

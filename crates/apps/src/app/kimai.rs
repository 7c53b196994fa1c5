//! Kimai (time tracking; Symfony, PHP).
//!
//! From the vendor's backup page: back up `.env`, `config/packages/local.yaml`,
//! `var/data/`, installed plugins in `var/plugins/`, invoice templates, and the whole
//! database (every `kimai2_*` table and `migration_versions`); write down the exact
//! version (`bin/console kimai:version`, `git rev-parse HEAD`). Restore into the exact
//! same version, the database into an empty database, then `bin/console cache:clear`.
//!
//! The database is found in `DATABASE_URL` of `.env` (`.env.local` wins): MariaDB/MySQL
//! (`mysql://…`), or SQLite (`sqlite:///%kernel.project_dir%/var/data/kimai.sqlite`),
//! which is copied with SQLite's online backup API and left out of the file walk.

use super::{lookup, read_dotenv, Plan};
use crate::db::{Database, Sqlite};
use crate::{Error, Result};
use std::path::Path;
use std::process::Stdio;

/// The Kimai front-end.
#[derive(Debug)]
pub struct Kimai;

/// The files and directories of an installation worth keeping, relative to it.
const FILES: &[&str] = &[
    ".env",
    ".env.local",
    "config/packages/local.yaml",
    "var/data",
    "var/plugins",
    "var/invoices",
    "templates/invoice",
];

impl Kimai {
    /// Reads the installation at `install`.
    pub fn discover(install: &Path) -> Result<Plan> {
        let install = install.canonicalize().map_err(|e| Error::io(install, e))?;
        let env_file = super::required_file(&install, ".env", "a Kimai")?;
        let mut env = read_dotenv(&env_file)?;
        let local = install.join(".env.local");
        if local.is_file() {
            // Later pairs win in `lookup`: .env.local overrides .env.
            env.extend(read_dotenv(&local)?);
        }
        let url = lookup(&env, "DATABASE_URL")
            .ok_or_else(|| Error::config(&env_file, "no DATABASE_URL", None))?;
        let (database, excludes) = database(url, &install)?;
        Ok(Plan {
            app: "kimai".into(),
            version: version(&install),
            revision: revision(&install),
            paths: FILES.iter().map(|f| install.join(f)).collect(),
            excludes,
            databases: vec![database],
            before: Vec::new(),
            after: Vec::new(),
            before_restore: vec![
                "stop the web server (or Kimai's PHP-FPM pool), so that nothing writes while \
                 the restore runs"
                    .into(),
            ],
            post_restore: vec![
                "bin/console cache:clear".into(),
                "start the web server again and check that Kimai works (log in, open a \
                 timesheet and an invoice)"
                    .into(),
            ],
            problems: Vec::new(),
            name: None,
            optional_paths: Vec::new(),
            not_included: Vec::new(),
            missing_databases: Vec::new(),
            install,
        })
    }
}

/// The database of `DATABASE_URL`, and what the file walk must leave out for it.
fn database(url: &str, install: &Path) -> Result<(Database, Vec<String>)> {
    // Doctrine's form: `sqlite:///` then the path, `%kernel.project_dir%/var/...` or an
    // absolute `/srv/...` (so four slashes), relative ones to the project directory.
    if let Some(rest) = url.strip_prefix("sqlite:///") {
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        let path = rest.replace("%kernel.project_dir%", &install.display().to_string());
        let path = install.join(path);
        // The live file (and its journals) are copied consistently apart, never raw.
        let p = path.display().to_string();
        let excludes = ["", "-wal", "-shm", "-journal"]
            .iter()
            .map(|s| format!("{}{s}", glob_escape(&p)))
            .collect();
        return Ok((Database::Sqlite(Sqlite::new(path)), excludes));
    }
    Ok((Database::parse(url)?, Vec::new()))
}

/// Escapes glob metacharacters so a path matches only itself.
fn glob_escape(p: &str) -> String {
    p.chars()
        .flat_map(|c| match c {
            '*' | '?' | '[' | ']' | '{' | '}' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

/// `bin/console kimai:version`, if it runs.
fn version(install: &Path) -> Option<String> {
    let console = install.join("bin/console");
    if !console.is_file() {
        return None;
    }
    let out = cairn_core::command(&console)
        .arg("kimai:version")
        .current_dir(install)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// `git rev-parse HEAD` in the installation, if it is a checkout.
fn revision(install: &Path) -> Option<String> {
    if !install.join(".git").exists() {
        return None;
    }
    let out = cairn_core::command("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(install)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_a_sqlite_install() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("var/data")).unwrap();
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(
            root.join(".env"),
            "APP_ENV=prod\nDATABASE_URL=sqlite:///%kernel.project_dir%/var/data/kimai.sqlite\n",
        )
        .unwrap();
        let console = root.join("bin/console");
        std::fs::write(&console, "#!/bin/sh\necho 'Kimai 2.13.0'\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&console, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plan = Kimai::discover(root).unwrap();
        assert_eq!(plan.app, "kimai");
        assert_eq!(plan.version.as_deref(), Some("Kimai 2.13.0"));
        assert_eq!(plan.revision, None);
        let Database::Sqlite(s) = &plan.databases[0] else {
            panic!("sqlite expected")
        };
        let real = root.canonicalize().unwrap();
        assert_eq!(s.path(), real.join("var/data/kimai.sqlite"));
        assert_eq!(
            plan.excludes[0],
            real.join("var/data/kimai.sqlite").display().to_string()
        );
        assert!(plan.paths.contains(&real.join("var/data")));
    }

    #[test]
    fn discovers_a_mariadb_install_and_env_local_wins() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join(".env"),
            "DATABASE_URL=mysql://kimai:x@127.0.0.1:3306/old?charset=utf8mb4\n",
        )
        .unwrap();
        std::fs::write(
            root.join(".env.local"),
            "DATABASE_URL=\"mysql://kimai:secret@db:3307/kimai?charset=utf8mb4&serverVersion=10.11\"\n",
        )
        .unwrap();
        let plan = Kimai::discover(root).unwrap();
        let Database::MariaDb(m) = &plan.databases[0] else {
            panic!("mariadb expected")
        };
        assert_eq!(m.database(), Some("kimai"));
        assert_eq!(m.location(), "db:3307");
        assert!(plan.excludes.is_empty());
    }

    #[test]
    fn a_directory_without_env_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = Kimai::discover(dir.path()).unwrap_err();
        assert!(e.to_string().contains("not a Kimai installation"), "{e}");
    }
}

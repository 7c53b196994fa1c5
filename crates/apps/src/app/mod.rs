//! Application front-ends: from an installation directory to one consistent snapshot.
//!
//! A front-end reads the application's own configuration and makes a [`Plan`]: the
//! files to back up, the databases to dump, the hooks to run around the backup, and the
//! steps a restore needs afterwards. [`backup`] carries a plan out: before-hooks, the
//! dumps (streamed, before any file is read), the files, all in one snapshot tagged with
//! the application and holding a [`Manifest`]; the after-hooks run whatever happened.

mod idoit;
mod immich;
mod journal;
mod kestra;
mod kimai;
mod restore;

pub use idoit::Idoit;
pub use immich::Immich;
pub use journal::{Before, Journal, JournalDatabase, JournalPath, Phase};
pub use kestra::{Kestra, MetadataEncryption, MetadataExport};
pub use kimai::Kimai;
pub use restore::{
    compare_version, restore, rollback, verify, DatabaseVerify, ItemState, RestoreOptions,
    RestoreReport, RestoreStage, VersionMatch,
};

use crate::db::Consistent;
pub use crate::db::TableCount;
use crate::db::{Database, DumpInfo};
use crate::{Error, Result};
use cairn_core::{BackupOptions, BackupResult, ManifestFinish, ParentChoice, Progress, Repository};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The front-ends this build knows, by name.
pub const APPS: &[&str] = &["idoit", "immich", "kestra", "kimai"];

/// What to back up of one installation, and how.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The front-end's name, e.g. `kimai`.
    pub app: String,
    /// The installation directory.
    pub install: PathBuf,
    /// The application's version, when it can tell.
    pub version: Option<String>,
    /// The source revision (`git rev-parse HEAD`), when the install is a git checkout.
    pub revision: Option<String>,
    /// Files and directories to back up (those that exist).
    pub paths: Vec<PathBuf>,
    /// Exclude patterns for the file walk (e.g. the live SQLite file, copied apart).
    pub excludes: Vec<String>,
    /// Databases to dump.
    pub databases: Vec<Database>,
    /// Shell commands run before the backup (stop the web server, maintenance mode).
    pub before: Vec<String>,
    /// Shell commands run after it, whatever happened (start again).
    pub after: Vec<String>,
    /// What to do before a restore (stop the application), said when no before-hook
    /// does it.
    pub before_restore: Vec<String>,
    /// What to do after a restore, in order (what cairn does itself is not in it).
    pub post_restore: Vec<String>,
    /// What discovery could not find out; a backup refuses to run with any (a restore,
    /// which needs less, goes on).
    pub problems: Vec<String>,
    /// The configured installation's name (`[[app]] name`), recorded in its snapshots
    /// to tell them from another installation's of the same application.
    pub name: Option<String>,
    /// Databases the application's configuration names that do not exist (name, what
    /// names it): a backup refuses to run with any, unless they are excluded
    /// ([`DatabaseAccess::exclude`]).
    pub missing_databases: Vec<(String, String)>,
    /// Files the application can generate again (Immich's thumbnails, encoded videos
    /// and its own dumps), backed up only on request ([`AppOptions::with_generated`]).
    pub optional_paths: Vec<PathBuf>,
    /// What the application uses that the snapshot does not hold (Immich's external
    /// libraries): recorded in the manifest, and a warning at every backup.
    pub not_included: Vec<String>,
}

impl Plan {
    /// Adds the user's hooks: their before-hooks (stop the application) run before the
    /// front-end's own (an export that wants it quiet), their after-hooks after its own.
    pub fn add_hooks(&mut self, before: Vec<String>, after: Vec<String>) {
        let own = std::mem::replace(&mut self.before, before);
        self.before.extend(own);
        self.after.extend(after);
    }

    /// Dumps every database server of the plan with `password` instead of the one the
    /// application's own configuration gives (for an installation whose configuration
    /// does not hold it, or a user who keeps it elsewhere, e.g. in a file only root
    /// reads). The password reaches the dump tools in their environment, never their
    /// arguments. SQLite files have no password and stay as they are.
    pub fn override_database_password(&mut self, password: &str) {
        self.databases = std::mem::take(&mut self.databases)
            .into_iter()
            .map(|d| d.with_password(password))
            .collect();
    }

    /// Reaches the plan's databases as `url` says (`postgresql://…`, `mariadb://…`)
    /// instead of as the application's configuration does: server, user and password
    /// come from the URL (see [`Database::with_connection`]). A database name in the
    /// URL replaces the database's, so it is refused when the plan has several database
    /// servers; without a name each database keeps its own. Fails when the plan has no
    /// database server (only SQLite files) or its engine is another.
    pub fn override_database_url(&mut self, url: &str) -> Result<()> {
        let servers = self
            .databases
            .iter()
            .filter(|d| !matches!(d, Database::Sqlite(_)))
            .count();
        if servers == 0 {
            return Err(Error::Invalid(format!(
                "{} at {} has no database server whose URL could be replaced",
                self.app,
                self.install.display()
            )));
        }
        let names_one = match Database::parse(url)? {
            Database::Postgres(p) => p.database().is_some(),
            Database::MariaDb(m) => m.database().is_some(),
            Database::Sqlite(_) => {
                return Err(Error::Invalid(
                    "a database URL starts with postgresql://, mariadb:// or mysql://".into(),
                ))
            }
        };
        if names_one && servers > 1 {
            return Err(Error::Invalid(format!(
                "{} at {} has {servers} databases: a database URL for all of them must not \
                 name a database",
                self.app,
                self.install.display()
            )));
        }
        // All or nothing: a plan that failed to change keeps its databases.
        self.databases = self
            .databases
            .iter()
            .map(|d| match d {
                s @ Database::Sqlite(_) => Ok(s.clone()),
                d => d.clone().with_connection(url),
            })
            .collect::<Result<_>>()?;
        Ok(())
    }
}

/// What a snapshot of an application records (its `manifest`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The front-end, e.g. `kimai`.
    pub app: String,
    /// The application's version, if known.
    pub app_version: Option<String>,
    /// Its source revision, if known.
    pub revision: Option<String>,
    /// The installation directory.
    pub install: String,
    /// The databases, in the order dumped, each with its tables and row counts.
    pub databases: Vec<DatabaseManifest>,
    /// The files and directories included.
    pub files: Vec<String>,
    /// Exclude patterns.
    pub excludes: Vec<String>,
    /// The order the run used.
    pub order: Vec<String>,
    /// What to do after a restore.
    pub post_restore: Vec<String>,
    /// The configured installation's name, when it was one (see [`Plan::name`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation: Option<String>,
    /// What the application uses that the snapshot does not hold (see
    /// [`Plan::not_included`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_included: Vec<String>,
    /// The server accounts the databases need, stored beside the dumps (see
    /// [`crate::db::AccountsDump`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accounts: Vec<crate::db::AccountsDump>,
    /// Set on a restore point: the state of the installation taken just before an
    /// application restore replaced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_point: Option<RestorePointOf>,
}

/// What a restore point was taken for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePointOf {
    /// The snapshot whose restore it was taken before (full id).
    pub restoring: String,
}

/// The tag of every restore point (retention keeps them by a rule of their own).
pub use cairn_core::RESTORE_POINT_TAG;

impl Manifest {
    /// The manifest of an application snapshot (snapshot `id`, for messages).
    pub fn of(id: &cairn_core::Id, snap: &cairn_core::Snapshot) -> Result<Manifest> {
        let value = snap
            .manifest
            .clone()
            .ok_or_else(|| Error::NoManifest(id.short()))?;
        serde_json::from_value(value).map_err(|e| {
            cairn_core::Error::format(format!("snapshot {}: manifest", id.short()), e.to_string())
                .into()
        })
    }
}

/// One database of a manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatabaseManifest {
    /// Engine, versions, tool, format, path in the snapshot.
    #[serde(flatten)]
    pub dump: DumpInfo,
    /// Every table with its row count.
    pub tables: Vec<TableCount>,
    /// When the counts were taken: "in the dump's snapshot" (PostgreSQL) and "in the
    /// copy backed up" (SQLite) are exact; "just before the dump" (MariaDB) is exact
    /// when the application was stopped.
    #[serde(default)]
    pub counts: String,
}

/// Where installations usually are, per front-end (the vendors' install guides and
/// common packagings); `cairn app list` looks there when no installation is named.
pub const USUAL_PLACES: &[(&str, &str)] = &[
    ("idoit", "/var/www/html/i-doit"),
    ("idoit", "/var/www/i-doit"),
    ("immich", "/opt/immich"),
    ("immich", "/srv/immich"),
    ("kestra", "/opt/kestra"),
    ("kestra", "/app"),
    ("kimai", "/var/www/kimai"),
    ("kimai", "/var/www/kimai2"),
    ("kimai", "/opt/kimai"),
];

/// The installations found at [`USUAL_PLACES`]: (front-end, directory) where discovery
/// succeeds.
pub fn detect() -> Vec<(String, PathBuf)> {
    USUAL_PLACES
        .iter()
        .filter(|(_, dir)| Path::new(dir).is_dir())
        .filter(|(app, dir)| plan(app, Path::new(dir)).is_ok())
        .map(|(app, dir)| (app.to_string(), PathBuf::from(dir)))
        .collect()
}

/// How to reach an installation's databases when its own configuration is not enough:
/// another server or user (a URL), a password kept elsewhere, or a command that runs
/// the database tools where the database is (e.g. `docker exec CONTAINER`). Backup,
/// restore and verify apply the same access, so a database that was dumped with it is
/// also restored and verified with it.
#[derive(Clone, Default)]
pub struct DatabaseAccess {
    /// Reach the database servers as this URL says (see [`Plan::override_database_url`]).
    pub url: Option<String>,
    /// Log in with this password (see [`Plan::override_database_password`]).
    pub password: Option<String>,
    /// Run the database tools through this command.
    pub wrapper: Option<String>,
    /// Leave out the databases of these names (the configuration's `exclude`).
    pub exclude: Vec<String>,
}

impl std::fmt::Debug for DatabaseAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseAccess")
            .field("url", &self.url.as_ref().map(|_| "[set]"))
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("wrapper", &self.wrapper)
            .field("exclude", &self.exclude)
            .finish()
    }
}

impl DatabaseAccess {
    /// Applies the access to a plan's databases: the URL first, then the password, then
    /// the wrapper.
    pub fn apply(&self, plan: &mut Plan) -> Result<()> {
        if !self.exclude.is_empty() {
            plan.databases.retain(|d| !self.exclude.contains(&d.name()));
            plan.missing_databases
                .retain(|(name, _)| !self.exclude.contains(name));
        }
        if let Some(url) = &self.url {
            plan.override_database_url(url)?;
        }
        if let Some(pw) = &self.password {
            plan.override_database_password(pw);
        }
        if let Some(w) = &self.wrapper {
            let w = crate::db::Wrapper::parse(w);
            plan.databases = std::mem::take(&mut plan.databases)
                .into_iter()
                .map(|d| d.with_wrapper(w.clone()))
                .collect();
        }
        Ok(())
    }
}

/// What a backup of an installation takes beyond its front-end's defaults (the `[[app]]`
/// table's keys).
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    /// Back up what the application can generate again too (Immich's `thumbs`,
    /// `encoded-video` and `backups`).
    pub with_generated: bool,
    /// Kestra's metadata export: `FULL`, `TENANT`, `TENANT:name` or `off` (default: the
    /// environment's `CAIRN_KESTRA_METADATA`, else `FULL`).
    pub metadata_export: Option<String>,
    /// How Kestra's metadata export is encrypted.
    pub metadata_encryption: kestra::MetadataEncryption,
}

/// [`plan_with`], with the backup's `options`.
pub fn plan_with_options(
    app: &str,
    install: &Path,
    access: &DatabaseAccess,
    options: &AppOptions,
) -> Result<Plan> {
    let mut p = match app {
        "kestra" => {
            let export = match &options.metadata_export {
                Some(e) => kestra::MetadataExport::parse(e)?,
                None => match std::env::var("CAIRN_KESTRA_METADATA") {
                    Ok(v) => kestra::MetadataExport::parse(&v)?,
                    Err(_) => Some(kestra::MetadataExport::Full),
                },
            };
            let mut p = Kestra::discover_encrypted(install, export, &options.metadata_encryption)?;
            access.apply(&mut p)?;
            p
        }
        _ => plan_with(app, install, access)?,
    };
    if options.with_generated {
        let extra = std::mem::take(&mut p.optional_paths);
        p.paths.extend(extra);
    }
    Ok(p)
}

/// [`plan`], with `access` applied to its databases.
pub fn plan_with(app: &str, install: &Path, access: &DatabaseAccess) -> Result<Plan> {
    let mut p = plan(app, install)?;
    access.apply(&mut p)?;
    Ok(p)
}

/// Finds the front-end `app` for the installation at `install`.
pub fn plan(app: &str, install: &Path) -> Result<Plan> {
    match app {
        "idoit" | "i-doit" => Idoit::discover(install),
        "immich" => Immich::discover(install),
        "kestra" => Kestra::discover(install),
        "kimai" => Kimai::discover(install),
        other => Err(Error::Invalid(format!(
            "unknown application {other:?} (known: {})",
            APPS.join(", ")
        ))),
    }
}

/// The files of an installation that a staged restore puts back last, once the core
/// works, relative to the installation (Kimai's page: invoice templates, plugins and
/// `local.yaml`); none for the other front-ends.
pub fn restore_later(app: &str) -> &'static [&'static str] {
    match app {
        "kimai" => &[
            "config/packages/local.yaml",
            "var/plugins",
            "var/invoices",
            "templates/invoice",
        ],
        _ => &[],
    }
}

/// Runs a shell command of a hook (see [`crate::hook::run`]).
pub use crate::hook::run as run_hook;

/// How an application backup ended.
#[derive(Debug)]
pub struct AppBackup {
    /// The backup, or why it failed (nothing was committed then).
    pub result: Result<BackupResult>,
    /// Errors of after-hooks (the application may not have been started again).
    pub after_errors: Vec<Error>,
}

/// Backs up an installation: before-hooks, dumps, files, one snapshot; the after-hooks
/// run whatever happened, each even if an earlier one failed. What the hooks print goes
/// to `show`, line by line.
pub fn backup(
    repo: &Repository,
    plan: &Plan,
    tags: Vec<String>,
    progress: &dyn Progress,
    show: &mut dyn FnMut(&str),
) -> AppBackup {
    let result = plan
        .before
        .iter()
        .try_for_each(|h| run_hook("before", h, show))
        .and_then(|()| backup_between_hooks(repo, plan, tags, progress));
    let after_errors = plan
        .after
        .iter()
        .filter_map(|h| run_hook("after", h, show).err())
        .collect();
    AppBackup {
        result,
        after_errors,
    }
}

fn backup_between_hooks(
    repo: &Repository,
    plan: &Plan,
    tags: Vec<String>,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    if let Some(p) = plan.problems.first() {
        return Err(Error::Discovery {
            app: plan.app.clone(),
            install: plan.install.clone(),
            problem: p.clone(),
        });
    }
    if let Some((name, what)) = plan.missing_databases.first() {
        return Err(Error::MissingDatabase {
            app: plan.app.clone(),
            install: plan.install.clone(),
            name: name.clone(),
            named_by: what.clone(),
        });
    }
    store(repo, plan, tags, None, progress)
}

/// Stores the plan's dumps and files as one application snapshot (no hooks): a backup,
/// or, with `restore_point`, the restore point an application restore takes first.
fn store(
    repo: &Repository,
    plan: &Plan,
    mut tags: Vec<String>,
    restore_point: Option<RestorePointOf>,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let mut streams = Vec::new();
    let mut databases = Vec::new();
    // Held until the backup is done: PostgreSQL's exported snapshots, which the dumps
    // read (they start during the backup).
    let mut held = Vec::new();
    for db in &plan.databases {
        let (tables, consistent) = db.tables_consistent()?;
        let (stream, dump) = db.dump_with(&consistent)?;
        streams.push(stream);
        databases.push(DatabaseManifest {
            dump,
            tables,
            counts: consistent.counted().into(),
        });
        held.push(consistent);
    }
    // The accounts the databases need, per server: a backup stores them; a restore
    // point needs none (a rollback drops what the restore created).
    let mut accounts: Vec<crate::db::AccountsDump> = Vec::new();
    let mut not_included = plan.not_included.clone();
    if restore_point.is_none() {
        let mut scripts: Vec<String> = Vec::new();
        for db in &plan.databases {
            match db.accounts() {
                Ok(Some((names, script))) if !names.is_empty() => {
                    let (engine, location) = (db.engine().to_string(), db.location());
                    let i = match accounts
                        .iter()
                        .position(|a| a.engine == engine && a.location == location)
                    {
                        Some(i) => i,
                        None => {
                            accounts.push(crate::db::AccountsDump {
                                path: format!(
                                    "/db/{engine}/accounts{}.sql",
                                    match accounts.len() {
                                        0 => String::new(),
                                        n => format!("-{n}"),
                                    }
                                ),
                                engine,
                                location,
                                accounts: Vec::new(),
                            });
                            scripts.push(String::new());
                            accounts.len() - 1
                        }
                    };
                    for (name, block) in split_blocks(&script) {
                        if !accounts[i].accounts.contains(&name) {
                            accounts[i].accounts.push(name);
                            scripts[i].push_str(&block);
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => not_included.push(format!(
                    "the server accounts of database {} could not be read ({e}): a restore \
                     on another server must create them by hand",
                    db.name()
                )),
            }
        }
        for (a, script) in accounts.iter().zip(scripts) {
            streams.push(cairn_core::StreamSource::Reader {
                name: a.path.trim_start_matches('/').to_string(),
                reader: Box::new(std::io::Cursor::new(script.into_bytes())),
            });
        }
    }
    let paths: Vec<PathBuf> = plan.paths.iter().filter(|p| p.exists()).cloned().collect();
    let manifest = Manifest {
        app: plan.app.clone(),
        app_version: plan.version.clone(),
        revision: plan.revision.clone(),
        install: plan.install.display().to_string(),
        databases,
        files: paths.iter().map(|p| p.display().to_string()).collect(),
        excludes: plan.excludes.clone(),
        order: vec![
            "before hooks".into(),
            "database dumps".into(),
            "files".into(),
            "after hooks".into(),
        ],
        post_restore: plan.post_restore.clone(),
        installation: plan.name.clone(),
        not_included,
        accounts,
        restore_point,
    };
    if !tags.iter().any(|t| t == &plan.app) {
        tags.insert(0, plan.app.clone());
    }
    // MariaDB dumps are counted as they stream: their counts replace those taken before.
    let finish = {
        let counters: Vec<_> = held
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.dump_counter().map(|c| (i, c)))
            .collect();
        let manifest = manifest.clone();
        ManifestFinish(Box::new(move |value| {
            let mut manifest = manifest;
            for (i, c) in &counters {
                if let Some(rows) = c.lock().unwrap().finish() {
                    let d = &mut manifest.databases[*i];
                    d.tables = counted_tables(&d.tables, rows);
                    d.counts = Consistent::COUNTED_IN_DUMP.into();
                }
            }
            *value = serde_json::to_value(&manifest).expect("manifest serializes");
        }))
    };
    let opts = BackupOptions {
        paths,
        streams,
        excludes: plan.excludes.clone(),
        tags,
        parent: ParentChoice::Auto,
        app: Some(plan.app.clone()),
        manifest: Some(serde_json::to_value(&manifest).expect("manifest serializes")),
        finish_manifest: Some(finish),
        ..BackupOptions::default()
    };
    let result = cairn_core::backup(repo, opts, progress);
    drop(held);
    Ok(result?)
}

/// The blocks of an accounts script, each with its account's name.
fn split_blocks(script: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in script.lines() {
        if let Some(name) = line.strip_prefix("-- account ") {
            out.push((name.trim().to_string(), String::new()));
        }
        if let Some((_, block)) = out.last_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// The tables of a manifest with the rows counted in the dump: each table listed before
/// the dump gets its count there (0 when the dump has no row of it: emptied meanwhile),
/// and a table only the dump holds (created meanwhile) is added.
fn counted_tables(before: &[TableCount], rows: Vec<(String, u64)>) -> Vec<TableCount> {
    let mut rows: std::collections::BTreeMap<String, u64> = rows.into_iter().collect();
    let mut out: Vec<TableCount> = before
        .iter()
        .map(|t| TableCount {
            table: t.table.clone(),
            rows: rows.remove(&t.table).unwrap_or(0),
        })
        .collect();
    out.extend(
        rows.into_iter()
            .map(|(table, rows)| TableCount { table, rows }),
    );
    out
}

/// The value of `key` among `KEY=value` pairs (a dotenv file's, a PHP array's); the last
/// one wins, as where a later file overrides an earlier one.
pub fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The file `name` of the installation at `install`, which every installation of `app`
/// (with its article: "a Kimai") has; without it, the directory is not one.
fn required_file(install: &Path, name: &str, app: &str) -> Result<PathBuf> {
    let path = install.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(Error::NotAnInstallation {
            install: install.to_path_buf(),
            missing: name.into(),
            app: app.into(),
        })
    }
}

/// Reads the `KEY=value` lines of a dotenv file (`#` comments, optional quotes,
/// `export` prefixes); later lines win, as in the applications that read them.
pub fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            v[1..v.len() - 1].to_string()
        } else {
            // An unquoted value ends at a comment.
            v.split(" #").next().unwrap_or("").trim().to_string()
        };
        out.retain(|(key, _)| key != k.trim());
        out.push((k.trim().to_string(), v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_values_quotes_comments_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::write(
            &p,
            "# comment\nAPP_ENV=prod\nDATABASE_URL=\"mysql://u:p#w@127.0.0.1:3306/kimai?charset=utf8mb4\"\n\
             export MAILER_URL=null://null # trailing\nAPP_ENV='dev'\nbroken line\n",
        )
        .unwrap();
        let env = read_dotenv(&p).unwrap();
        let get = |k: &str| lookup(&env, k);
        assert_eq!(
            get("DATABASE_URL"),
            Some("mysql://u:p#w@127.0.0.1:3306/kimai?charset=utf8mb4")
        );
        assert_eq!(get("MAILER_URL"), Some("null://null"));
        assert_eq!(get("APP_ENV"), Some("dev"));
        assert_eq!(env.len(), 3);
    }

    fn plan_with(databases: Vec<Database>) -> Plan {
        Plan {
            app: "kimai".into(),
            install: "/srv/kimai".into(),
            version: None,
            revision: None,
            paths: Vec::new(),
            excludes: Vec::new(),
            databases,
            before: Vec::new(),
            after: Vec::new(),
            before_restore: Vec::new(),
            post_restore: Vec::new(),
            problems: Vec::new(),
            name: None,
            missing_databases: Vec::new(),
            optional_paths: Vec::new(),
            not_included: Vec::new(),
        }
    }

    fn dump_env_and_args(d: &Database) -> (Vec<String>, Vec<String>) {
        let c = match d {
            Database::Postgres(p) => p.dump_command(),
            Database::MariaDb(m) => m.dump_command(),
            Database::Sqlite(_) => panic!("no command for SQLite"),
        };
        let s = |o: &std::ffi::OsString| o.to_string_lossy().into_owned();
        (
            c.env
                .iter()
                .map(|(k, v)| format!("{}={}", s(k), s(v)))
                .collect(),
            c.args.iter().map(s).collect(),
        )
    }

    #[test]
    fn database_password_override_reaches_the_environment_only() {
        let mut plan = plan_with(vec![
            Database::parse("mysql://kimai:old@127.0.0.1:3306/kimai").unwrap(),
            Database::parse("postgresql://app@db/app").unwrap(),
            Database::parse("/srv/kimai/var/data/kimai.sqlite").unwrap(),
        ]);
        plan.override_database_password("n3w secret");
        let (env, args) = dump_env_and_args(&plan.databases[0]);
        assert_eq!(env, ["MYSQL_PWD=n3w secret"]);
        assert!(!args.iter().any(|a| a.contains("n3w")), "{args:?}");
        let (env, args) = dump_env_and_args(&plan.databases[1]);
        assert_eq!(env, ["PGPASSWORD=n3w secret"]);
        assert!(args.contains(&"--dbname=app".to_string()), "{args:?}");
        assert!(matches!(plan.databases[2], Database::Sqlite(_)));
    }

    #[test]
    fn database_url_override_replaces_server_and_user_and_keeps_the_name() {
        let mut plan = plan_with(vec![Database::parse(
            "mysql://kimai:pw@127.0.0.1:3306/kimai?charset=utf8mb4",
        )
        .unwrap()]);
        plan.override_database_url("mariadb://backup@db.internal:3307")
            .unwrap();
        let (env, args) = dump_env_and_args(&plan.databases[0]);
        // The application's password belonged to its user: not handed to another one.
        assert!(env.is_empty(), "{env:?}");
        assert!(args.contains(&"--host=db.internal".to_string()), "{args:?}");
        assert!(args.contains(&"--port=3307".to_string()), "{args:?}");
        assert!(args.contains(&"--user=backup".to_string()), "{args:?}");
        assert_eq!(plan.databases[0].name(), "kimai");
        plan.override_database_url("mariadb://backup@db.internal/other")
            .unwrap();
        assert_eq!(plan.databases[0].name(), "other");

        let e = plan
            .override_database_url("postgresql://u@h/x")
            .unwrap_err();
        assert!(e.to_string().contains("is for postgresql"), "{e}");
        let e = plan.override_database_url("relative/file").unwrap_err();
        assert!(e.to_string().contains("postgresql://"), "{e}");

        let mut two = plan_with(vec![
            Database::parse("mariadb://root@h/idoit_system").unwrap(),
            Database::parse("mariadb://root@h/idoit_data").unwrap(),
        ]);
        let e = two
            .override_database_url("mariadb://root@h2/x")
            .unwrap_err();
        assert!(e.to_string().contains("must not name a database"), "{e}");
        two.override_database_url("mariadb://root@h2").unwrap();
        let names: Vec<_> = two.databases.iter().map(|d| d.name()).collect();
        assert_eq!(names, ["idoit_system", "idoit_data"]);

        let mut sqlite = plan_with(vec![Database::parse("/srv/k.sqlite").unwrap()]);
        let e = sqlite
            .override_database_url("mariadb://root@h")
            .unwrap_err();
        assert!(e.to_string().contains("no database server"), "{e}");
    }
}

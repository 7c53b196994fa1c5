//! Restoring an application snapshot without putting what is there now at risk.
//!
//! The order, from the vendors' pages:
//! 1. Say what will happen, and compare the snapshot's application version with the
//!    installed one (match / different / unknown); a different version stops here unless
//!    the user accepts it.
//! 2. Put the files back (the installation's configuration comes back with them, and
//!    with it where the database is).
//! 3. For each database: a missing one is created; an empty one is used; one that holds
//!    tables is replaced only with explicit consent, after a **restore point** (a dump of
//!    it, stored as a snapshot tagged `restore-point`) was taken.
//! 4. Load the dump (PostgreSQL in one transaction), then a **health check**: the
//!    database answers, every table of the manifest exists with its row count.
//! 5. If loading or the check fails, the database is dropped and the restore point
//!    loaded back.
//! 6. The application's post-restore steps are printed (and can be run).

use super::{plan, plan_with, DatabaseAccess, Manifest};
use crate::db::{Database, TargetState};
use cairn_core::{
    browse, BackupOptions, Error, Id, NoProgress, Repository, RestoreOptions as CoreRestore,
    Result, Snapshot,
};
use std::path::PathBuf;

/// What to restore and how far to go.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    /// Where the installation goes (default: where it was).
    pub target: Option<PathBuf>,
    /// Restore the database into this one instead (a name on the same server, a URL,
    /// or a file path for SQLite).
    pub database: Option<String>,
    /// Drop and replace a database that holds tables (after a restore point).
    pub replace_existing: bool,
    /// Go on although the installed version differs from the snapshot's.
    pub ignore_version: bool,
    /// Restore the files only.
    pub skip_databases: bool,
    /// Restore the databases only.
    pub skip_files: bool,
    /// Say what would happen, change nothing.
    pub dry_run: bool,
    /// How to reach the databases, beyond the installation's own configuration.
    pub access: DatabaseAccess,
}

/// How the snapshot's version compares with the installed one.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionMatch {
    /// The same version.
    Match,
    /// Different versions: snapshot's, installed.
    Different(String, String),
    /// One of them is not known.
    Unknown,
}

/// What happened to one database.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseRestore {
    /// Engine and name.
    pub engine: String,
    /// The database restored into.
    pub database: String,
    /// The restore point taken first, if any.
    pub restore_point: Option<String>,
    /// Row counts that differ from the manifest's (table, manifest, restored).
    pub count_differences: Vec<(String, u64, u64)>,
}

/// What a restore did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreReport {
    /// The snapshot restored.
    pub snapshot: String,
    /// Where the files went.
    pub target: String,
    /// Version comparison.
    pub version: VersionMatch,
    /// Files restored.
    pub files: u64,
    /// Each database.
    pub databases: Vec<DatabaseRestore>,
    /// The steps left to do.
    pub post_restore: Vec<String>,
}

/// Compares the snapshot's version with the installation at `target`, if any.
pub fn compare_version(app: &str, manifest: &Manifest, target: &std::path::Path) -> VersionMatch {
    let installed = plan(app, target).ok().and_then(|p| p.version);
    match (&manifest.app_version, installed) {
        (Some(a), Some(b)) if *a == b => VersionMatch::Match,
        (Some(a), Some(b)) => VersionMatch::Different(a.clone(), b),
        _ => VersionMatch::Unknown,
    }
}

/// Restores an application snapshot; `say` is told each step before it is taken.
pub fn restore(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    opts: &RestoreOptions,
    say: &mut dyn FnMut(&str),
) -> Result<RestoreReport> {
    let manifest = Manifest::of(id, snap)?;
    let app = manifest.app.clone();
    let target = opts
        .target
        .clone()
        .unwrap_or_else(|| PathBuf::from(&manifest.install));
    let version = compare_version(&app, &manifest, &target);
    say(&format!(
        "restoring {app} snapshot {} ({}) into {}",
        id.short(),
        manifest.app_version.as_deref().unwrap_or("version unknown"),
        target.display()
    ));
    match &version {
        VersionMatch::Match => say("installed version matches the snapshot"),
        VersionMatch::Unknown => say("installed version unknown (no installation there yet?)"),
        VersionMatch::Different(a, b) => {
            say(&format!("version mismatch: snapshot {a}, installed {b}"));
            if !opts.ignore_version {
                return Err(Error::Invalid(format!(
                    "the snapshot is of {app} {a} but {b} is installed at {}; install {a} \
                     first (the vendor restores into the exact same version), or accept the \
                     difference explicitly; nothing was changed",
                    target.display()
                )));
            }
        }
    }
    repo.load_index()?;

    // Before touching anything: where each database goes and what is there now. When
    // there is no installation yet, that is known only once its configuration is back.
    if !opts.skip_databases && !manifest.databases.is_empty() {
        match plan_with(&app, &target, &opts.access) {
            Ok(p) => {
                for m in &manifest.databases {
                    let db = target_database(m, &p.databases, opts.database.as_deref(), &target)?;
                    let name = db.name();
                    match db.state()? {
                        TargetState::Missing => {
                            say(&format!("database {name}: missing, will be created"))
                        }
                        TargetState::Empty => say(&format!("database {name}: empty, will be used")),
                        TargetState::Tables(n) if opts.replace_existing => say(&format!(
                            "database {name}: {n} table(s), will be replaced after a restore point"
                        )),
                        TargetState::Tables(n) => {
                            return Err(Error::Invalid(format!(
                                "database {name} holds {n} table(s); restore into an empty \
                                 database (--database NAME), or allow replacing it (a restore \
                                 point is taken first); nothing was changed"
                            )))
                        }
                    }
                }
            }
            Err(_) => say(
                "databases: where they go is read from the configuration once the files are back",
            ),
        }
    }
    if opts.dry_run {
        say("dry run: nothing was changed");
        return Ok(RestoreReport {
            snapshot: id.to_hex(),
            target: target.display().to_string(),
            version,
            files: 0,
            databases: Vec::new(),
            post_restore: manifest.post_restore.clone(),
        });
    }

    let mut files = 0;
    if !opts.skip_files {
        say(&format!(
            "files: {} item(s) to {}",
            manifest.files.len(),
            target.display()
        ));
        // The snapshot holds the installation's kept files below its directory, and
        // nothing else there: restoring that directory's contents restores exactly them.
        // Files kept elsewhere (storage on another disk) go back where they were, except
        // system configuration under /etc, which the post-restore steps name.
        let install = PathBuf::from(&manifest.install);
        let restore_one = |path: &str, into: &std::path::Path| -> Result<u64> {
            let node = browse::resolve(repo, id, snap, path)?;
            let into = match node.kind {
                cairn_core::NodeKind::Dir { .. } => into.to_path_buf(),
                _ => into.parent().unwrap_or(into).to_path_buf(),
            };
            let ro = CoreRestore {
                target: into.clone(),
                ..CoreRestore::default()
            };
            let (sum, warnings) = cairn_core::restore(repo, &node, path, &ro, &NoProgress)?;
            if sum.errors > 0 {
                return Err(Error::Invalid(format!(
                    "restoring {path} into {} failed: {} error(s): {}",
                    into.display(),
                    sum.errors,
                    warnings
                        .iter()
                        .map(|w| w.to_string())
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
            Ok(sum.files_restored + sum.files_unchanged)
        };
        let (inside, outside): (Vec<&String>, Vec<&String>) = manifest
            .files
            .iter()
            .partition(|f| std::path::Path::new(f).starts_with(&install));
        if !inside.is_empty() {
            files += restore_one(&manifest.install, &target)?;
        }
        for f in outside {
            if std::path::Path::new(f).starts_with("/etc") {
                say(&format!(
                    "{f}: system configuration, not restored (see below)"
                ));
                continue;
            }
            say(&format!(
                "files: {f} (outside the installation) to where it was"
            ));
            files += restore_one(f, std::path::Path::new(f))?;
        }
    }

    let mut databases = Vec::new();
    if !opts.skip_databases && !manifest.databases.is_empty() {
        let current = plan_with(&app, &target, &opts.access)
            .map(|p| p.databases)
            .unwrap_or_default();
        if opts.database.is_some() && manifest.databases.len() > 1 {
            return Err(Error::Invalid(format!(
                "the snapshot holds {} databases; --database names one",
                manifest.databases.len()
            )));
        }
        for m in &manifest.databases {
            let db = target_database(m, &current, opts.database.as_deref(), &target)?;
            databases.push(restore_database(repo, id, snap, &app, m, &db, opts, say)?);
        }
    }
    Ok(RestoreReport {
        snapshot: id.to_hex(),
        target: target.display().to_string(),
        version,
        files,
        databases,
        post_restore: manifest.post_restore.clone(),
    })
}

#[allow(clippy::too_many_arguments)]
fn restore_database(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    app: &str,
    m: &super::DatabaseManifest,
    db: &Database,
    opts: &RestoreOptions,
    say: &mut dyn FnMut(&str),
) -> Result<DatabaseRestore> {
    let name = db.name();
    let state = db.state()?;
    let mut restore_point = None;
    match state {
        TargetState::Missing => {
            say(&format!("database {name}: creating it"));
            db.create()?;
        }
        TargetState::Empty => say(&format!("database {name}: exists and is empty")),
        TargetState::Tables(n) => {
            if !opts.replace_existing {
                return Err(Error::Invalid(format!(
                    "database {name} holds {n} table(s); restore into an empty database \
                     (--database NAME), or allow replacing it (a restore point is taken \
                     first); nothing was changed in it"
                )));
            }
            say(&format!(
                "database {name}: {n} table(s); taking a restore point"
            ));
            let (stream, info) = db.dump()?;
            let r = cairn_core::backup(
                repo,
                BackupOptions {
                    streams: vec![stream],
                    tags: vec!["restore-point".into(), app.to_string()],
                    app: None,
                    manifest: Some(serde_json::json!({ "restore_point": info })),
                    ..BackupOptions::default()
                },
                &NoProgress,
            )?;
            say(&format!(
                "database {name}: restore point is snapshot {} ({})",
                r.id.short(),
                info.path
            ));
            restore_point = Some((r.id, r.snapshot, info));
            // Dropping first: loading over existing tables with foreign keys fails
            // (i-doit's page), and a dump expects a fresh database (Immich's).
            db.drop_database()?;
            db.create()?;
        }
    }
    say(&format!("database {name}: loading {}", m.dump.path));
    let loaded = load_from(repo, id, snap, &m.dump.path, &m.dump.format, db)
        .and_then(|()| health_check(db, m));
    match loaded {
        Ok(count_differences) => {
            for (t, want, got) in &count_differences {
                say(&format!(
                    "database {name}: table {t} has {got} rows, the manifest counted {want} \
                     just before the dump (the application was writing?)"
                ));
            }
            say(&format!("database {name}: health check passed"));
            Ok(DatabaseRestore {
                engine: m.dump.engine.clone(),
                database: name,
                restore_point: restore_point.map(|(i, _, _)| i.to_hex()),
                count_differences,
            })
        }
        Err(e) => {
            say(&format!("database {name}: restore failed: {e}"));
            let _ = db.drop_database();
            if let Some((rid, rsnap, info)) = &restore_point {
                say(&format!(
                    "database {name}: rolling back to restore point {}",
                    rid.short()
                ));
                db.create()?;
                load_from(repo, rid, rsnap, &info.path, &info.format, db).map_err(|e2| {
                    Error::Invalid(format!(
                        "restore failed ({e}) and so did the rollback ({e2}); the previous \
                         database is in snapshot {rid}"
                    ))
                })?;
                say(&format!("database {name}: previous state loaded back"));
            } else if state != TargetState::Missing {
                db.create()?;
            }
            Err(Error::Invalid(format!(
                "restoring database {name} failed: {e}{}",
                if restore_point.is_some() {
                    "; the previous database was put back"
                } else {
                    ""
                }
            )))
        }
    }
}

/// Where a database of the manifest goes: `--database` (a URL, or a name on the
/// configured server); else the configured database of that name; else the database of
/// that name on the server the installation's configuration names (an application with
/// several databases, such as i-doit's tenants, keeps their names).
fn target_database(
    m: &super::DatabaseManifest,
    configured: &[Database],
    database: Option<&str>,
    install: &std::path::Path,
) -> Result<Database> {
    let same_engine: Vec<&Database> = configured
        .iter()
        .filter(|d| d.engine() == m.dump.engine)
        .collect();
    let db = match database {
        Some(spec) if spec.contains("://") => Database::parse(spec)?,
        Some(name) => same_engine
            .first()
            .map(|d| d.with_database(name))
            .ok_or_else(|| no_server(m, install))?,
        None => match same_engine.iter().find(|d| d.name() == m.dump.database) {
            Some(d) => (*d).clone(),
            None => match same_engine.first() {
                Some(d) if m.dump.database != "*" && m.dump.engine != "sqlite" => {
                    d.with_database(&m.dump.database)
                }
                Some(d) => (*d).clone(),
                None => return Err(no_server(m, install)),
            },
        },
    };
    if db.engine() != m.dump.engine {
        return Err(Error::Invalid(format!(
            "the snapshot holds a {} dump, the target is {}",
            m.dump.engine,
            db.engine()
        )));
    }
    Ok(db)
}

fn no_server(m: &super::DatabaseManifest, install: &std::path::Path) -> Error {
    Error::Invalid(format!(
        "no configuration at {} says where the {} database goes; give --database URL",
        install.display(),
        m.dump.engine
    ))
}

/// Streams a dump stored in a snapshot into the database, with the fixes the vendors'
/// pages prescribe.
fn load_from(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    path: &str,
    format: &str,
    db: &Database,
) -> Result<()> {
    let node = browse::resolve(repo, id, snap, path)?;
    db.load(format, &mut |w| {
        if format == "plain" && matches!(db, Database::Postgres(_)) {
            // pg_dump(all) empties search_path for the session; extensions' functions
            // called while loading (Immich's page) need it: the vendor's fix, line by line.
            let mut fix = SearchPathFix::new(w);
            browse::dump_file(repo, &node, &mut fix)?;
            fix.finish()
        } else {
            browse::dump_file(repo, &node, w).map(drop)
        }
    })
}

/// Rewrites `SELECT pg_catalog.set_config('search_path', '', false);` lines to keep
/// `public, pg_catalog` on the path, as Immich's restore instructions do with sed.
struct SearchPathFix<'a> {
    out: &'a mut dyn std::io::Write,
    line: Vec<u8>,
    /// The start of the current line was already written through (too long to match).
    passing: bool,
}

const EMPTY_PATH: &[u8] = b"SELECT pg_catalog.set_config('search_path', '', false);";
const FIXED_PATH: &[u8] =
    b"SELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);";

impl<'a> SearchPathFix<'a> {
    fn new(out: &'a mut dyn std::io::Write) -> Self {
        SearchPathFix {
            out,
            line: Vec::new(),
            passing: false,
        }
    }

    fn emit(&mut self) -> std::io::Result<()> {
        let trimmed = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        if !self.passing && trimmed == EMPTY_PATH {
            self.out.write_all(FIXED_PATH)?;
            self.out.write_all(b"\n")?;
        } else {
            self.out.write_all(&self.line)?;
        }
        self.line.clear();
        self.passing = false;
        Ok(())
    }

    fn finish(mut self) -> Result<()> {
        self.emit()
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::Invalid(format!("writing the dump: {e}")))
    }
}

impl std::io::Write for SearchPathFix<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..=i]);
            self.emit()?;
            rest = &rest[i + 1..];
        }
        // Only lines short enough to be the one are held back whole.
        if self.passing || self.line.len() + rest.len() > EMPTY_PATH.len() + 1 {
            self.out.write_all(&self.line)?;
            self.line.clear();
            self.out.write_all(rest)?;
            self.passing = !rest.is_empty() || self.passing;
        } else {
            self.line.extend_from_slice(rest);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The database answers and has every table of the manifest; returns the tables whose
/// row counts differ.
fn health_check(db: &Database, m: &super::DatabaseManifest) -> Result<Vec<(String, u64, u64)>> {
    if m.tables.is_empty() {
        return Ok(Vec::new());
    }
    let now = db.tables()?;
    let mut missing = Vec::new();
    let mut differ = Vec::new();
    for t in &m.tables {
        match now.iter().find(|n| n.table == t.table) {
            None => missing.push(t.table.clone()),
            Some(n) if n.rows != t.rows => differ.push((t.table.clone(), t.rows, n.rows)),
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "health check: table(s) missing after the restore: {}",
            missing.join(", ")
        )));
    }
    Ok(differ)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn search_path_fix_rewrites_only_that_line_whatever_the_pieces() {
        let dump = "SET statement_timeout = 0;\n-- long line ending like it: SELECT pg_catalog.set_config('search_path', '', false);\nSELECT pg_catalog.set_config('search_path', '', false);\nCOPY t (a) FROM stdin;\nx\n\\.\nSELECT pg_catalog.set_config('search_path', '', false); -- no\n";
        let want = dump.replacen(
            "\nSELECT pg_catalog.set_config('search_path', '', false);\n",
            "\nSELECT pg_catalog.set_config('search_path', 'public, pg_catalog', true);\n",
            1,
        );
        assert_ne!(want, dump);
        for piece in [1, 2, 3, 7, 50, 1000] {
            let mut out = Vec::new();
            let mut fix = SearchPathFix::new(&mut out);
            for c in dump.as_bytes().chunks(piece) {
                fix.write_all(c).unwrap();
            }
            fix.finish().unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "pieces of {piece}");
        }
    }
}

/// What `verify` found for one database.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseVerify {
    /// Engine and the dump's path.
    pub engine: String,
    /// The dump in the snapshot.
    pub path: String,
    /// The scratch database it was loaded into (dropped after).
    pub scratch: String,
    /// Tables of the manifest.
    pub tables: usize,
    /// Tables of the manifest missing after loading.
    pub missing: Vec<String>,
    /// Tables with another row count (table, manifest, loaded).
    pub count_differences: Vec<(String, u64, u64)>,
}

/// Loads each dump of an application snapshot into a scratch database on the same
/// server as the installation at `install` (or the server of `database`, a URL), and
/// compares its tables and row counts with the manifest. Nothing else is touched; the
/// scratch databases are dropped.
pub fn verify(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    install: Option<&std::path::Path>,
    database: Option<&str>,
    access: &DatabaseAccess,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<DatabaseVerify>> {
    let manifest = Manifest::of(id, snap)?;
    repo.load_index()?;
    let install = install
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(&manifest.install));
    let configured = plan_with(&manifest.app, &install, access)
        .map(|p| p.databases)
        .unwrap_or_default();
    let scratch_dir = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
    let mut out = Vec::new();
    for (i, m) in manifest.databases.iter().enumerate() {
        let base = match database {
            Some(url) => Database::parse(url)?,
            None => target_database(m, &configured, None, &install)?,
        };
        let scratch_name = format!("cairn_verify_{}_{i}", &id.to_hex()[..12]);
        let scratch = match &base {
            Database::Sqlite(_) => {
                base.with_database(&scratch_dir.path().join(&scratch_name).display().to_string())
            }
            _ => base.with_database(&scratch_name),
        };
        say(&format!(
            "{} {}: loading into scratch database {}",
            m.dump.engine,
            m.dump.path,
            scratch.name()
        ));
        scratch.drop_database()?;
        scratch.create()?;
        let checked = load_from(repo, id, snap, &m.dump.path, &m.dump.format, &scratch)
            .and_then(|()| scratch.tables());
        let dropped = scratch.drop_database();
        let now = checked?;
        dropped?;
        let mut v = DatabaseVerify {
            engine: m.dump.engine.clone(),
            path: m.dump.path.clone(),
            scratch: scratch.name(),
            tables: m.tables.len(),
            missing: Vec::new(),
            count_differences: Vec::new(),
        };
        for t in &m.tables {
            match now.iter().find(|n| n.table == t.table) {
                None => v.missing.push(t.table.clone()),
                Some(n) if n.rows != t.rows => {
                    v.count_differences.push((t.table.clone(), t.rows, n.rows))
                }
                Some(_) => {}
            }
        }
        out.push(v);
    }
    Ok(out)
}

//! Restoring an application snapshot as one transaction: it ends with every database
//! and path the restore touched either as the snapshot holds it or as it was before,
//! never mixed.
//!
//! 1. **Plan** (nothing is changed): compare the versions; find where each path and
//!    each database goes and what is there now; make every refusal here (version,
//!    number of databases, engines, consent to replace a database that holds tables).
//!    A restore of this installation that was cut short (its journal is there) stops
//!    the plan: it must be rolled back or finished first.
//! 2. **Restore point**: one application snapshot, tagged `restore-point`, of every
//!    path that will be written and every database that will be replaced, as they are
//!    now. It is **read back** from the repository, every blob authenticated, before
//!    anything is changed: a restore point that deduplicated onto a damaged blob is
//!    refused here, with nothing touched.
//! 3. **Journal** (see [`super::journal`]): written durably before the first
//!    destructive step.
//! 4. **Replace**: the files, then each database (dropped, created with the snapshot's
//!    character set, loaded), then the **health check** of every database.
//! 5. If any step fails, **every** path and database of the journal is put back as the
//!    restore point holds it (a database that was not there is dropped, a path that was
//!    not there is removed), and the journal is removed. After a crash the journal is
//!    still there: [`rollback`] does the same from it, or the restore is run again to
//!    finish it.
//! 6. The report says what state each database and path is in.
//!
//! When the installation's configuration cannot be read before its files are back (a
//! fresh machine), where the databases go is known only after step 4's files: they are
//! planned then, with the same refusals, and a database that holds tables is saved in
//! a second restore point before it is replaced.

use super::journal::{Before, Journal, JournalAccounts, JournalDatabase, JournalPath, Phase};
use super::{plan, plan_with, DatabaseAccess, Manifest, Plan, RestorePointOf, RESTORE_POINT_TAG};
use crate::db::{Database, TargetState};
use crate::{Error, Result};
use cairn_core::{
    browse, Id, NoProgress, NodeKind, Repository, RestoreOptions as CoreRestore, Snapshot,
};
use std::path::{Path, PathBuf};

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
    /// Shell commands run before the first change (stop the application), as a backup
    /// runs them.
    pub before: Vec<String>,
    /// Shell commands run at the end whatever happened (start it again), each even if
    /// one before it failed.
    pub after: Vec<String>,
    /// Where restore journals are kept (cairn's state directory); `None` keeps none (a
    /// crash then cannot be recovered from: only for tests of the library).
    pub journal_dir: Option<PathBuf>,
    /// Tags the restore point gets beside `restore-point` and the application's name
    /// (the configured installation's name).
    pub tags: Vec<String>,
    /// The configured installation's name, recorded in the restore point.
    pub installation: Option<String>,
    /// The command that rolls this installation back, for messages (e.g.
    /// `cairn app restore kimai --rollback`).
    pub rollback_command: String,
    /// Restore the system configuration files the snapshot holds (under `/etc`: the
    /// web server's, PHP's and the database server's files the vendor names) too.
    pub system_config: bool,
    /// Restore one stage of a staged restore.
    pub stage: Option<RestoreStage>,
    /// Finish the restore this journal describes (cut short earlier): its restore point
    /// already holds what was there before, so none is taken, and every database is
    /// replaced.
    pub finish: Option<Journal>,
}

/// A staged restore (the vendor's way for Kimai): first the core, check that the
/// application works, then the rest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreStage {
    /// The databases and the files, less those [`super::restore_later`] names.
    Core,
    /// Only the files [`super::restore_later`] names.
    Rest,
}

/// What a stage restores of the installation's files: patterns on the snapshot's paths.
enum Stage {
    None,
    Core(Vec<String>),
    Rest(Vec<String>),
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

/// The state one database or path is in when a restore or rollback has ended.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum ItemState {
    /// As the snapshot holds it.
    Restored,
    /// As it was before the restore (back from the restore point, or removed again
    /// because it was not there).
    AsBefore,
    /// Not touched (the restore stopped before it).
    Untouched,
    /// Neither: the rollback of it failed, with this error.
    Unknown(String),
}

impl std::fmt::Display for ItemState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemState::Restored => f.write_str("restored from the snapshot"),
            ItemState::AsBefore => f.write_str("as it was before the restore"),
            ItemState::Untouched => f.write_str("not touched"),
            ItemState::Unknown(e) => write!(f, "UNKNOWN: putting it back failed: {e}"),
        }
    }
}

/// What happened to one database.
#[derive(Clone, Debug, serde::Serialize)]
pub struct DatabaseRestore {
    /// Engine and name.
    pub engine: String,
    /// The database restored into.
    pub database: String,
    /// The restore point that holds what was there before, if anything was.
    pub restore_point: Option<String>,
    /// Row counts that differ from the manifest's (table, manifest, restored).
    pub count_differences: Vec<(String, u64, u64)>,
    /// Its state now.
    pub state: ItemState,
}

/// What happened to one path.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PathRestore {
    /// Where the files went.
    pub path: String,
    /// Its state now.
    pub state: ItemState,
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
    /// The restore point taken before the first change, if anything was there.
    pub restore_point: Option<String>,
    /// Each database.
    pub databases: Vec<DatabaseRestore>,
    /// Each path written.
    pub paths: Vec<PathRestore>,
    /// The steps left to do.
    pub post_restore: Vec<String>,
}

/// Compares the snapshot's version with the installation at `target`, if any.
pub fn compare_version(app: &str, manifest: &Manifest, target: &Path) -> VersionMatch {
    let installed = plan(app, target).ok().and_then(|p| p.version);
    match (&manifest.app_version, installed) {
        (Some(a), Some(b)) if *a == b => VersionMatch::Match,
        (Some(a), Some(b)) => VersionMatch::Different(a.clone(), b),
        _ => VersionMatch::Unknown,
    }
}

/// One database the restore replaces.
struct DbStep {
    /// The snapshot's dump of it.
    m: super::DatabaseManifest,
    /// Where it goes.
    db: Database,
    /// What is there before.
    before: TargetState,
}

/// One path the restore writes.
struct PathStep {
    /// The path in the snapshot.
    from: String,
    /// Where it goes.
    to: PathBuf,
    /// Whether something is there now.
    existed: bool,
}

/// Restores an application snapshot as one transaction (see the module's text); `say`
/// is told each step before it is taken.
pub fn restore(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    opts: &RestoreOptions,
    say: &mut dyn FnMut(&str),
) -> Result<RestoreReport> {
    restore_transaction(repo, id, snap, opts, say).map_err(|e| {
        // Every failure says what state the application is in. One that does not yet
        // ended before the first change (planning, the restore point): say so.
        let text = e.to_string();
        let said = [
            "nothing was changed",
            "as it was before",
            "NOT everything",
            "the restore succeeded",
        ];
        if said.iter().any(|s| text.contains(s)) {
            e
        } else {
            Error::Restore(format!("{text}; nothing was changed"))
        }
    })
}

fn restore_transaction(
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
    let nothing = "; nothing was changed";
    // A restore cut short here must be ended first: a second one would take the mixed
    // state as its restore point.
    if let (Some(dir), None) = (&opts.journal_dir, &opts.finish) {
        if let Some(j) = Journal::find(dir, &app, &target)? {
            return Err(Error::Restore(interrupted_message(
                &j,
                &opts.rollback_command,
            )));
        }
    }
    match &version {
        VersionMatch::Match => say("installed version matches the snapshot"),
        VersionMatch::Unknown => say("installed version unknown (no installation there yet?)"),
        VersionMatch::Different(a, b) => {
            say(&format!("version mismatch: snapshot {a}, installed {b}"));
            if !opts.ignore_version {
                return Err(Error::Invalid(format!(
                    "the snapshot is of {app} {a} but {b} is installed at {}; install {a} \
                     first (the vendor restores into the exact same version), or accept the \
                     difference explicitly{nothing}",
                    target.display()
                )));
            }
        }
    }
    if opts.before.is_empty() {
        if let Ok(p) = plan(&app, &target) {
            for step in &p.before_restore {
                say(&format!(
                    "before a restore: {step} (no before-hook is configured to do it)"
                ));
            }
        }
    }
    let later: Vec<String> = super::restore_later(&app)
        .iter()
        .map(|rel| format!("{}/{rel}", manifest.install.trim_end_matches('/')))
        .collect();
    let stage = match opts.stage {
        None => Stage::None,
        Some(_) if later.is_empty() => {
            return Err(Error::Invalid(format!(
                "{app} has no staged restore (kimai has: the core first, then plugins, \
                 invoice templates and local.yaml){nothing}"
            )))
        }
        Some(RestoreStage::Core) => {
            say(&format!(
                "stage 1 of 2: the databases and the files, less {}",
                super::restore_later(&app).join(", ")
            ));
            Stage::Core(later.clone())
        }
        Some(RestoreStage::Rest) => {
            say(&format!(
                "stage 2 of 2: {}",
                super::restore_later(&app).join(", ")
            ));
            Stage::Rest(later.clone())
        }
    };
    let skip_databases = opts.skip_databases || opts.stage == Some(RestoreStage::Rest);
    if !skip_databases && opts.database.is_some() && manifest.databases.len() > 1 {
        return Err(Error::Invalid(format!(
            "the snapshot holds {} databases; --database names one{nothing}",
            manifest.databases.len()
        )));
    }
    repo.load_index()?;

    // Where each path goes. With another target, nothing is written outside it: paths
    // kept outside the installation go below the target at their full path.
    let install = PathBuf::from(&manifest.install);
    let elsewhere = target != install;
    let mut paths = Vec::new();
    if !opts.skip_files {
        let (inside, outside): (Vec<&String>, Vec<&String>) = manifest
            .files
            .iter()
            .partition(|f| Path::new(f).starts_with(&install));
        if !inside.is_empty() {
            paths.push(PathStep {
                from: manifest.install.clone(),
                to: target.clone(),
                existed: exists(&target),
            });
        }
        for f in outside {
            if Path::new(f).starts_with("/etc") && !opts.system_config {
                say(&format!(
                    "{f}: system configuration, not restored (--system-config restores it)"
                ));
                continue;
            }
            let to = if elsewhere {
                target.join(f.trim_start_matches('/'))
            } else {
                PathBuf::from(f)
            };
            paths.push(PathStep {
                from: f.clone(),
                existed: exists(&to),
                to,
            });
        }
        for p in &paths {
            say(&format!(
                "files: {} to {} ({})",
                p.from,
                p.to.display(),
                if p.existed {
                    "replacing what is there"
                } else {
                    "new"
                }
            ));
        }
    }

    // Where each database goes and what is there now; every refusal before anything is
    // touched. Without a readable configuration yet, they are planned once the files
    // are back.
    let wants_dbs = !skip_databases && !manifest.databases.is_empty();
    let replace = opts.replace_existing || opts.finish.is_some();
    let mut dbs = None;
    if wants_dbs {
        match plan_with(&app, &target, &opts.access) {
            Ok(p) => {
                let planned = plan_databases(&manifest, &p.databases, opts, &target, replace)?;
                for d in &planned {
                    say(&describe_db(d));
                }
                dbs = Some(planned);
            }
            Err(_) if !paths.is_empty() => say(
                "databases: where they go is read from the configuration once the files are back",
            ),
            Err(e) => {
                return Err(Error::Restore(format!(
                    "where the databases go cannot be read from the installation at {}: \
                     {e}{nothing}",
                    target.display()
                )))
            }
        }
    }
    if opts.dry_run {
        say("dry run: nothing was changed");
        return Ok(RestoreReport {
            snapshot: id.to_hex(),
            target: target.display().to_string(),
            version,
            files: 0,
            restore_point: None,
            databases: Vec::new(),
            paths: Vec::new(),
            post_restore: manifest.post_restore.clone(),
        });
    }

    // The user's before-hooks stop the application; its after-hooks start it again,
    // whatever happened from here on.
    for h in &opts.before {
        say(&format!("before-hook: {h}"));
        if let Err(e) = super::run_hook("before", h, &mut |line| say(&format!("  {line}"))) {
            let after = run_after_hooks(opts, say);
            return Err(Error::Restore(format!("{e}; nothing was changed{after}")));
        }
    }
    let result = (|| -> Result<RestoreReport> {
        // The restore point, read back, then the journal: from here on, everything can be
        // put back.
        let mut journal = match &opts.finish {
            Some(j) => {
                say(&format!(
                    "finishing the restore cut short on {}; what was there before is in restore \
                     point {}",
                    j.install,
                    short(&j.restore_point)
                ));
                j.clone()
            }
            None => {
                let mut j = Journal::new(&app, &target, &repo.config().id.to_hex(), &id.to_hex());
                let saved: Vec<&DbStep> = dbs
                    .iter()
                    .flatten()
                    .filter(|d| matches!(d.before, TargetState::Tables(_)))
                    .collect();
                let kept: Vec<PathBuf> = paths
                    .iter()
                    .filter(|p| p.existed)
                    .map(|p| p.to.clone())
                    .collect();
                if !saved.is_empty() || !kept.is_empty() {
                    let rp = take_restore_point(repo, &app, &target, id, &kept, &saved, opts, say)?;
                    j.restore_point = rp.to_hex();
                }
                for d in dbs.iter().flatten() {
                    j.databases.push(journal_db(d, &j.restore_point));
                }
                if let Some(planned) = &dbs {
                    j.accounts = missing_accounts(&manifest, planned)?;
                }
                for p in &paths {
                    j.paths.push(JournalPath {
                        path: p.to.display().to_string(),
                        from: p.from.clone(),
                        existed: p.existed,
                    });
                }
                j
            }
        };
        let dir = opts.journal_dir.clone();
        if let Some(dir) = &dir {
            journal.phase = Phase::Restoring;
            journal.save(dir)?;
        }

        let mut files = 0u64;
        let mut counts: Vec<Vec<(String, u64, u64)>> = Vec::new();
        // Every database planned (to reach it for a rollback), and what was begun.
        let mut known: Vec<Database> = dbs.iter().flatten().map(|d| d.db.clone()).collect();
        let mut started_paths: Vec<String> = Vec::new();
        let mut started_dbs: Vec<(String, String)> = Vec::new();
        // Files first: they bring the configuration that says where the databases go.
        // Kestra's page restores the database first, then the storage: so when the
        // databases are known already.
        let databases_first = app == "kestra" && dbs.is_some();
        let outcome = (|| -> Result<()> {
            let mut files_done = false;
            let mut restore_files = |say: &mut dyn FnMut(&str)| -> Result<()> {
                for p in &paths {
                    started_paths.push(p.to.display().to_string());
                    say(&format!(
                        "files: restoring {} to {}",
                        p.from,
                        p.to.display()
                    ));
                    files += restore_path_with(repo, id, snap, &p.from, &p.to, &stage)?;
                }
                Ok(())
            };
            if !databases_first {
                restore_files(say)?;
                files_done = true;
            }
            let planned = match dbs.take() {
                Some(d) => d,
                None if wants_dbs => {
                    // The configuration is back: plan the databases now, with the same
                    // refusals; what holds tables is saved in a restore point of its own.
                    let p = plan_with(&app, &target, &opts.access)?;
                    let planned = plan_databases(&manifest, &p.databases, opts, &target, replace)?;
                    let saved: Vec<&DbStep> = planned
                        .iter()
                        .filter(|d| matches!(d.before, TargetState::Tables(_)))
                        .collect();
                    let rp = match saved.is_empty() {
                        true => String::new(),
                        false => {
                            take_restore_point(repo, &app, &target, id, &[], &saved, opts, say)?
                                .to_hex()
                        }
                    };
                    for d in &planned {
                        say(&describe_db(d));
                        journal.databases.push(journal_db(d, &rp));
                        known.push(d.db.clone());
                    }
                    if let Some(dir) = &dir {
                        journal.save(dir)?;
                    }
                    planned
                }
                None => Vec::new(),
            };
            if journal.accounts.is_empty() && !manifest.accounts.is_empty() && !databases_first {
                // Planned only now (the configuration came back with the files).
                journal.accounts = missing_accounts(&manifest, &planned)?;
                if let Some(dir) = &dir {
                    journal.save(dir)?;
                }
            }
            create_accounts(repo, id, snap, &manifest, &planned, &journal.accounts, say)?;
            for d in &planned {
                let name = d.db.name();
                started_dbs.push((d.db.engine().to_string(), name.clone()));
                if opts.finish.is_some() && !d.db.replaced_atomically() {
                    // Whatever the killed restore left, commands of its own included.
                    say(&format!("database {name}: dropping and creating it"));
                    d.db.recreate()?;
                } else {
                    if d.db.state()? != TargetState::Missing && !d.db.replaced_atomically() {
                        say(&format!("database {name}: dropping it"));
                        d.db.drop_database()?;
                    }
                    say(&format!("database {name}: creating it"));
                    d.db.create()?;
                }
                say(&format!("database {name}: loading {}", d.m.dump.path));
                load_from(repo, id, snap, &d.m.dump.path, &d.m.dump.format, &d.db)?;
            }
            if !files_done {
                restore_files(say)?;
            }
            for d in &planned {
                let differ = health_check(&d.db, &d.m)
                    .map_err(|e| Error::Restore(format!("database {}: {e}", d.db.name())))?;
                for (t, want, got) in &differ {
                    say(&format!(
                        "database {}: table {t} has {got} rows, the manifest counted {want} \
                         just before the dump (the application was writing?)",
                        d.db.name()
                    ));
                }
                say(&format!("database {}: health check passed", d.db.name()));
                counts.push(differ);
            }
            dbs = Some(planned);
            Ok(())
        })();

        match outcome {
            Ok(()) => {
                if let Some(dir) = &dir {
                    journal.remove(dir).map_err(|e| {
                        Error::Restore(format!(
                            "the restore succeeded, but its journal could not be removed \
                             ({e}): remove {} by hand",
                            Journal::path_for(dir, &journal.app, Path::new(&journal.install))
                                .display()
                        ))
                    })?;
                }
                let rp = (!journal.restore_point.is_empty()).then(|| journal.restore_point.clone());
                let planned = dbs.unwrap_or_default();
                Ok(RestoreReport {
                    snapshot: id.to_hex(),
                    target: target.display().to_string(),
                    version,
                    files,
                    restore_point: rp,
                    databases: planned
                        .iter()
                        .zip(counts)
                        .zip(&journal.databases)
                        .map(|((d, count_differences), j)| DatabaseRestore {
                            engine: d.m.dump.engine.clone(),
                            database: d.db.name(),
                            restore_point: j.saved_in(&journal),
                            count_differences,
                            state: ItemState::Restored,
                        })
                        .collect(),
                    paths: paths
                        .iter()
                        .map(|p| PathRestore {
                            path: p.to.display().to_string(),
                            state: ItemState::Restored,
                        })
                        .collect(),
                    post_restore: manifest.post_restore.clone(),
                })
            }
            Err(e) => {
                say(&format!("restore failed: {e}"));
                say("putting back everything the restore touched");
                // The databases planned in this run are reached as they were planned.
                let touched = Touched {
                    paths: Some(started_paths),
                    databases: Some(started_dbs),
                };
                let resolve = |jd: &JournalDatabase| -> Result<Database> {
                    known
                        .iter()
                        .find(|d| d.engine() == jd.engine && d.name() == jd.name)
                        .cloned()
                        .ok_or_else(|| {
                            Error::Restore(format!(
                                "{} database {} is not known",
                                jd.engine, jd.name
                            ))
                        })
                };
                let states =
                    rollback_with(repo, &mut journal, dir.as_deref(), &touched, &resolve, say);
                Err(Error::Restore(failure_message(
                    &format!("restoring {app} snapshot {} failed: {e}", id.short()),
                    &journal,
                    &states,
                    &opts.rollback_command,
                )))
            }
        }
    })();
    let after = run_after_hooks(opts, say);
    match result {
        Ok(mut report) if after.is_empty() => {
            // The steps left, as the restored installation's front-end gives them now.
            if let Ok(p) = plan_with(&app, &target, &opts.access) {
                report.post_restore = p.post_restore;
            }
            if manifest.files.iter().any(|f| f.ends_with("/thumbs")) {
                report
                    .post_restore
                    .retain(|s| !s.contains("are not in the snapshot)"));
            }
            for missing in &manifest.not_included {
                report.post_restore.push(missing.clone());
            }
            if opts.stage == Some(RestoreStage::Core) {
                report.post_restore.insert(
                    0,
                    format!(
                        "stage 1 of 2 is done: check that {app} works as expected (the \
                         vendor: do not go on before it does), then restore the rest: {} {} \
                         --stage rest",
                        opts.rollback_command.replace(" --rollback", ""),
                        &id.to_hex()[..8]
                    ),
                );
            } else if skip_databases && opts.stage.is_none() && !manifest.databases.is_empty() {
                report.post_restore.insert(
                    0,
                    format!(
                        "restore the databases too: {}",
                        opts.rollback_command
                            .replace("--rollback", "--databases-only")
                    ),
                );
            }
            if opts.skip_files && !manifest.files.is_empty() {
                report.post_restore.insert(
                    0,
                    format!(
                        "restore the files too: {}",
                        opts.rollback_command.replace("--rollback", "--files-only")
                    ),
                );
            }
            Ok(report)
        }
        Ok(_) => Err(Error::Restore(format!("the restore succeeded, but{after}"))),
        Err(e) => Err(Error::Restore(format!("{e}{after}"))),
    }
}

/// Runs every after-hook, each even if one before it failed; returns what failed, as
/// text to append to a message ("" when all ran).
fn run_after_hooks(opts: &RestoreOptions, say: &mut dyn FnMut(&str)) -> String {
    let mut failed = String::new();
    for h in &opts.after {
        say(&format!("after-hook: {h}"));
        if let Err(e) = super::run_hook("after", h, &mut |line| say(&format!("  {line}"))) {
            failed.push_str(&format!(
                "; {e}: the application may not have been started again"
            ));
        }
    }
    failed
}

fn exists(p: &Path) -> bool {
    p.symlink_metadata().is_ok()
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(8)]
}

/// A snapshot id the journal names.
fn journal_id(hex: &str, what: &str) -> Result<Id> {
    Id::from_hex(hex)
        .ok_or_else(|| Error::Restore(format!("the restore journal names no valid {what}")))
}

/// The accounts of the manifest that the servers of `planned` lack (found before any
/// change; a restore creates them, a rollback drops them).
fn missing_accounts(manifest: &Manifest, planned: &[DbStep]) -> Result<Vec<JournalAccounts>> {
    let mut out = Vec::new();
    for a in &manifest.accounts {
        let Some(d) = planned.iter().find(|d| d.db.engine() == a.engine) else {
            continue;
        };
        let created = d.db.missing_accounts(&a.accounts)?;
        if !created.is_empty() {
            out.push(JournalAccounts {
                engine: a.engine.clone(),
                location: d.db.location(),
                created,
            });
        }
    }
    Ok(out)
}

/// Creates the missing accounts, with their grants, from the scripts in the snapshot.
fn create_accounts(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    manifest: &Manifest,
    planned: &[DbStep],
    missing: &[JournalAccounts],
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    for m in missing {
        let (Some(a), Some(d)) = (
            manifest.accounts.iter().find(|a| a.engine == m.engine),
            planned.iter().find(|d| d.db.engine() == m.engine),
        ) else {
            continue;
        };
        // Those still missing: a restore finished after a crash may have made some.
        let now = d.db.missing_accounts(&m.created)?;
        if now.is_empty() {
            continue;
        }
        say(&format!(
            "{} accounts: creating {} (missing on {})",
            m.engine,
            now.join(", "),
            m.location
        ));
        let node = browse::resolve(repo, id, snap, &a.path)?;
        let mut script = Vec::new();
        browse::dump_file(repo, &node, &mut script)?;
        d.db.create_accounts(&String::from_utf8_lossy(&script), &now)?;
    }
    Ok(())
}

/// Plans every database of the manifest: where it goes and what is there; refuses a
/// database that holds tables unless `replace`.
fn plan_databases(
    manifest: &Manifest,
    configured: &[Database],
    opts: &RestoreOptions,
    target: &Path,
    replace: bool,
) -> Result<Vec<DbStep>> {
    let mut out = Vec::new();
    for m in &manifest.databases {
        let db =
            target_database(m, configured, opts.database.as_deref(), target)?.ready_for(&m.dump);
        // A database reached with an account of its own that the server lost (the
        // restore creates it first) is looked at with another account on that server.
        let before = match db.state() {
            Ok(s) => s,
            Err(e) => configured
                .iter()
                .find(|c| {
                    c.engine() == db.engine()
                        && c.location() == db.location()
                        && c.name() != db.name()
                })
                .map(|c| c.with_database(&db.name()).state())
                .unwrap_or(Err(e))?,
        };
        if let (TargetState::Tables(n), false) = (before, replace) {
            return Err(Error::Invalid(format!(
                "database {} holds {n} table(s); restore into an empty database \
                 (--database NAME), or allow replacing it (a restore point is taken first); \
                 nothing was changed",
                db.name()
            )));
        }
        out.push(DbStep {
            m: m.clone(),
            db,
            before,
        });
    }
    Ok(out)
}

fn describe_db(d: &DbStep) -> String {
    let name = d.db.name();
    match d.before {
        TargetState::Missing => format!("database {name}: missing, will be created"),
        TargetState::Empty => format!("database {name}: empty, will be used"),
        TargetState::Tables(n) => {
            format!("database {name}: {n} table(s), will be replaced after a restore point")
        }
    }
}

fn journal_db(d: &DbStep, restore_point: &str) -> JournalDatabase {
    JournalDatabase {
        engine: d.db.engine().to_string(),
        name: d.db.name(),
        location: d.db.location(),
        before: match d.before {
            TargetState::Missing => Before::Missing,
            TargetState::Empty => Before::Empty,
            TargetState::Tables(_) => Before::Tables,
        },
        saved_in: match d.before {
            TargetState::Tables(_) => Some(restore_point.to_string()),
            _ => None,
        },
    }
}

/// Takes the restore point: one application snapshot of `paths` (as they are now) and
/// of the databases `dbs`, read back before it is trusted. Returns its id.
#[allow(clippy::too_many_arguments)]
fn take_restore_point(
    repo: &Repository,
    app: &str,
    target: &Path,
    restoring: &Id,
    paths: &[PathBuf],
    dbs: &[&DbStep],
    opts: &RestoreOptions,
    say: &mut dyn FnMut(&str),
) -> Result<Id> {
    say(&format!(
        "taking a restore point of {} path(s) and {} database(s)",
        paths.len(),
        dbs.len()
    ));
    // The installation as it is now says what it keeps apart (the live SQLite file) and
    // its version; without a readable configuration, the snapshot's exclusions apply.
    let now = plan_with(app, target, &opts.access).ok();
    let excludes = match &now {
        Some(p) => p.excludes.clone(),
        None => Vec::new(),
    };
    let mut tags = vec![RESTORE_POINT_TAG.to_string(), app.to_string()];
    tags.extend(opts.tags.iter().cloned());
    let p = Plan {
        app: app.to_string(),
        install: target.to_path_buf(),
        version: now.as_ref().and_then(|p| p.version.clone()),
        revision: now.as_ref().and_then(|p| p.revision.clone()),
        paths: paths.to_vec(),
        excludes,
        databases: dbs.iter().map(|d| d.db.clone()).collect(),
        before: Vec::new(),
        after: Vec::new(),
        before_restore: Vec::new(),
        post_restore: Vec::new(),
        problems: Vec::new(),
        name: opts.installation.clone(),
        missing_databases: Vec::new(),
        optional_paths: Vec::new(),
        not_included: Vec::new(),
    };
    let stored = super::store(
        repo,
        &p,
        tags,
        Some(RestorePointOf {
            restoring: restoring.to_hex(),
        }),
        &NoProgress,
    )
    .map_err(|e| {
        Error::Restore(format!(
            "the restore point could not be taken: {e}; nothing was changed"
        ))
    })?;
    if let Some(w) = stored.warnings.first() {
        return Err(Error::Restore(format!(
            "the restore point is incomplete ({w}{}); nothing was changed",
            match stored.warnings.len() {
                1 => String::new(),
                n => format!(", and {} more", n - 1),
            }
        )));
    }
    say(&format!(
        "restore point {} taken; reading it back",
        stored.id.short()
    ));
    let v = cairn_core::verify_snapshot(repo, &stored.id).map_err(|e| {
        Error::Restore(format!(
            "the restore point cannot be trusted: {e}; nothing was changed. The repository \
             is damaged: run `cairn check --read-data`, then `cairn repair index` or \
             `cairn repair snapshots`, and try again"
        ))
    })?;
    say(&format!(
        "restore point {} verified: {} blob(s), {} byte(s) read back",
        stored.id.short(),
        v.blobs,
        v.bytes
    ));
    Ok(stored.id)
}

/// Restores `from` of a snapshot to `to`; returns the files written or found equal.
fn restore_path(repo: &Repository, id: &Id, snap: &Snapshot, from: &str, to: &Path) -> Result<u64> {
    restore_path_with(repo, id, snap, from, to, &Stage::None)
}

/// [`restore_path`], of the part `stage` names (patterns on the snapshot's paths).
fn restore_path_with(
    repo: &Repository,
    id: &Id,
    snap: &Snapshot,
    from: &str,
    to: &Path,
    stage: &Stage,
) -> Result<u64> {
    let node = browse::resolve(repo, id, snap, from)?;
    let into = match node.kind {
        NodeKind::Dir { .. } => to.to_path_buf(),
        _ => to.parent().unwrap_or(to).to_path_buf(),
    };
    let ro = CoreRestore {
        target: into.clone(),
        includes: match stage {
            Stage::Rest(p) => p.clone(),
            _ => Vec::new(),
        },
        excludes: match stage {
            Stage::Core(p) => p.clone(),
            _ => Vec::new(),
        },
        ..CoreRestore::default()
    };
    let (sum, warnings) = cairn_core::restore(repo, &node, from, &ro, &NoProgress)?;
    if sum.errors > 0 {
        return Err(Error::Restore(format!(
            "restoring {from} into {} failed: {} error(s): {}",
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
}

/// The message of a restore that was cut short.
fn interrupted_message(j: &Journal, rollback: &str) -> String {
    let finish = rollback.replace("--rollback", "--finish");
    format!(
        "a restore of {} at {} (snapshot {}) was cut short{} and its databases and files may be \
         mixed; `{rollback}` puts back what was there before (restore point {}), `{finish}` \
         completes the restore; nothing was changed now",
        j.app,
        j.install,
        short(&j.snapshot),
        match j.phase {
            Phase::Restoring => "",
            Phase::RollingBack => " while it was being rolled back",
        },
        if j.restore_point.is_empty() {
            "none: nothing was there"
        } else {
            short(&j.restore_point)
        },
    )
}

/// The message of a failed restore: what failed, the state of each item, the way back.
fn failure_message(
    cause: &str,
    j: &Journal,
    states: &[(String, ItemState)],
    rollback: &str,
) -> String {
    let mut m = cause.to_string();
    let clean = states
        .iter()
        .all(|(_, s)| *s != ItemState::Restored && !matches!(s, ItemState::Unknown(_)));
    if clean {
        m.push_str("; everything the restore touched is as it was before:");
    } else {
        m.push_str(&format!(
            "; NOT everything could be put back; run `{rollback}` to try again (restore point \
             {}):",
            short(&j.restore_point)
        ));
    }
    for (what, s) in states {
        m.push_str(&format!("\n  {what}: {s}"));
    }
    m
}

impl JournalDatabase {
    /// The restore point that holds it, if it held tables.
    fn saved_in(&self, _j: &Journal) -> Option<String> {
        self.saved_in.clone().filter(|s| !s.is_empty())
    }
}

/// Puts back every path and database of `journal` as its restore point holds them (a
/// cut-short restore found by its journal). `access` reaches the databases, with the
/// installation's configuration as it is once its files are back.
pub fn rollback(
    repo: &Repository,
    journal: &mut Journal,
    journal_dir: &Path,
    access: &DatabaseAccess,
    rollback_command: &str,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<(String, ItemState)>> {
    if journal.repository != repo.config().id.to_hex() {
        return Err(Error::Invalid(format!(
            "the cut-short restore of {} used another repository (id {}); open that one",
            journal.install,
            short(&journal.repository)
        )));
    }
    repo.load_index()?;
    let install = PathBuf::from(&journal.install);
    let app = journal.app.clone();
    let resolve = |jd: &JournalDatabase| -> Result<Database> {
        let configured = plan_with(&app, &install, access)
            .map(|p| p.databases)
            .unwrap_or_default();
        resolve_database(jd, &configured, access)
    };
    let states = rollback_with(
        repo,
        journal,
        Some(journal_dir),
        &Touched::default(),
        &resolve,
        say,
    );
    if states
        .iter()
        .any(|(_, s)| matches!(s, ItemState::Unknown(_)))
    {
        return Err(Error::Restore(failure_message(
            &format!("rolling back the restore of {} failed", journal.install),
            journal,
            &states,
            rollback_command,
        )));
    }
    Ok(states)
}

/// How a journal's database is reached: the configured database of that engine and
/// name, else that name on the configured server of that engine (or the `--database`
/// URL's), else the file (SQLite).
fn resolve_database(
    jd: &JournalDatabase,
    configured: &[Database],
    access: &DatabaseAccess,
) -> Result<Database> {
    if jd.engine == "sqlite" {
        return Ok(Database::Sqlite(crate::db::Sqlite::new(&jd.name)));
    }
    let same: Vec<&Database> = configured
        .iter()
        .filter(|d| d.engine() == jd.engine)
        .collect();
    if let Some(d) = same.iter().find(|d| d.name() == jd.name) {
        return Ok((*d).clone());
    }
    if let Some(d) = same.first() {
        return Ok(d.with_database(&jd.name));
    }
    if let Some(url) = &access.url {
        let d = Database::parse(url)?;
        if d.engine() == jd.engine {
            return Ok(d.with_database(&jd.name));
        }
    }
    Err(Error::Invalid(format!(
        "cannot reach {} database {} ({}): the installation's configuration does not name \
         its server; configure [app.database] url for it",
        jd.engine, jd.name, jd.location
    )))
}

/// What a restore has begun to change. A restore that failed in this process knows it;
/// after a crash everything the journal names is taken as touched.
#[derive(Default)]
struct Touched {
    /// The paths begun (`None`: all of them).
    paths: Option<Vec<String>>,
    /// The databases begun, by engine and name (`None`: all of them).
    databases: Option<Vec<(String, String)>>,
}

impl Touched {
    fn path(&self, p: &JournalPath) -> bool {
        self.paths
            .as_ref()
            .is_none_or(|paths| paths.contains(&p.path))
    }

    fn database(&self, d: &JournalDatabase) -> bool {
        self.databases
            .as_ref()
            .is_none_or(|dbs| dbs.contains(&(d.engine.clone(), d.name.clone())))
    }
}

/// The rollback itself: the journal says rolling back, then each path and database is
/// put back; the journal is removed when all of them are, and kept otherwise.
fn rollback_with(
    repo: &Repository,
    journal: &mut Journal,
    dir: Option<&Path>,
    touched: &Touched,
    resolve: &dyn Fn(&JournalDatabase) -> Result<Database>,
    say: &mut dyn FnMut(&str),
) -> Vec<(String, ItemState)> {
    let mut states = Vec::new();
    journal.phase = Phase::RollingBack;
    if let Some(dir) = dir {
        if let Err(e) = journal.save(dir) {
            say(&format!("the journal could not be updated: {e}"));
        }
    }
    for p in journal.paths.iter().rev() {
        let what = format!("path {}", p.path);
        if !touched.path(p) {
            states.push((what, ItemState::Untouched));
            continue;
        }
        let r = (|| -> Result<()> {
            let dest = Path::new(&p.path);
            let restoring = journal_id(&journal.snapshot, "snapshot")?;
            if p.existed {
                let rp = journal_id(&journal.restore_point, "restore point")?;
                // By the id it was first taken as: a rewrite may have renamed it.
                let (rp, rsnap) = repo.load_snapshot_first_taken_as(&rp)?;
                say(&format!(
                    "{what}: putting back restore point {}",
                    rp.short()
                ));
                // What the restore added goes first, so that putting back the restore
                // point's files also puts back their directories' times.
                remove_added(repo, &restoring, &p.from, &rp, &rsnap, &p.path, dest)?;
                restore_path(repo, &rp, &rsnap, &p.path, dest).map(drop)
            } else {
                say(&format!("{what}: removing it (it was not there)"));
                remove_all(dest)
            }
        })();
        states.push((
            what,
            r.map(|()| ItemState::AsBefore)
                .unwrap_or_else(|e| ItemState::Unknown(e.to_string())),
        ));
    }
    for jd in journal.databases.iter().rev() {
        let what = format!("database {}", jd.name);
        if !touched.database(jd) {
            states.push((what, ItemState::Untouched));
            continue;
        }
        let r = (|| -> Result<()> {
            let db = resolve(jd)?;
            match jd.before {
                Before::Missing => {
                    say(&format!("{what}: dropping it (it was not there)"));
                    db.drop_database()
                }
                Before::Empty => {
                    say(&format!("{what}: emptying it again"));
                    db.recreate()
                }
                Before::Tables => {
                    let rp = journal_id(jd.saved_in.as_deref().unwrap_or(""), "restore point")?;
                    let (rp, rsnap) = repo.load_snapshot_first_taken_as(&rp)?;
                    let m = Manifest::of(&rp, &rsnap)?;
                    let saved = m
                        .databases
                        .iter()
                        .find(|d| d.dump.engine == jd.engine && d.dump.database == jd.name)
                        .or_else(|| {
                            m.databases
                                .iter()
                                .find(|d| d.dump.engine == "sqlite" && jd.engine == "sqlite")
                        })
                        .ok_or_else(|| {
                            Error::Restore(format!(
                                "restore point {} holds no dump of it",
                                rp.short()
                            ))
                        })?;
                    say(&format!(
                        "{what}: loading it back from restore point {}",
                        rp.short()
                    ));
                    let db = db.ready_for(&saved.dump);
                    if !db.replaced_atomically() {
                        db.recreate()?;
                    }
                    load_from(repo, &rp, &rsnap, &saved.dump.path, &saved.dump.format, &db)?;
                    health_check(&db, saved).map(drop)
                }
            }
        })();
        states.push((
            what,
            r.map(|()| ItemState::AsBefore)
                .unwrap_or_else(|e| ItemState::Unknown(e.to_string())),
        ));
    }
    for a in &journal.accounts {
        let what = format!("{} accounts {}", a.engine, a.created.join(", "));
        let r = journal
            .databases
            .iter()
            .find(|d| d.engine == a.engine)
            .ok_or_else(|| Error::Restore("no database of that server in the journal".into()))
            .and_then(resolve)
            .and_then(|db| {
                say(&format!("{what}: dropping them (they were not there)"));
                db.drop_accounts(&a.created)
            });
        states.insert(
            0,
            (
                what,
                r.map(|()| ItemState::AsBefore)
                    .unwrap_or_else(|e| ItemState::Unknown(e.to_string())),
            ),
        );
    }
    states.reverse();
    if states
        .iter()
        .all(|(_, s)| matches!(s, ItemState::AsBefore | ItemState::Untouched))
    {
        if let Some(dir) = dir {
            if let Err(e) = journal.remove(dir) {
                say(&format!("the journal could not be removed: {e}"));
            }
        }
    }
    states
}

/// Removes what a restore of `from` (of snapshot `restoring`) added below `dest` that
/// the restore point (its `at`) does not hold: files first, then directories left
/// empty. What neither snapshot holds (excluded files, caches) is left alone.
fn remove_added(
    repo: &Repository,
    restoring: &Id,
    from: &str,
    rp: &Id,
    rsnap: &Snapshot,
    at: &str,
    dest: &Path,
) -> Result<()> {
    let (restoring, snap) = repo.load_snapshot_first_taken_as(restoring)?;
    let restoring = &restoring;
    let listing = |id: &Id, s: &Snapshot, path: &str| -> Result<Vec<String>> {
        let node = browse::resolve(repo, id, s, path)?;
        let mut out = Vec::new();
        if let NodeKind::Dir { subtree } = &node.kind {
            browse::walk(repo, subtree, "", &mut |p, _| {
                out.push(p.to_string());
                Ok(())
            })?;
        }
        Ok(out)
    };
    let had: std::collections::HashSet<String> = listing(rp, rsnap, at)?.into_iter().collect();
    let mut added: Vec<String> = listing(restoring, &snap, from)?
        .into_iter()
        .filter(|p| !had.contains(p))
        .collect();
    // Deepest first, so a directory is empty when its turn comes.
    added.sort_by(|a, b| b.cmp(a));
    for rel in added {
        let p = dest.join(rel.trim_start_matches('/'));
        match p.symlink_metadata() {
            Ok(m) if m.is_dir() => {
                let _ = std::fs::remove_dir(&p);
            }
            Ok(_) => std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?,
            Err(_) => {}
        }
    }
    Ok(())
}

fn remove_all(p: &Path) -> Result<()> {
    match p.symlink_metadata() {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(p).map_err(|e| Error::io(p, e)),
        Ok(_) => std::fs::remove_file(p).map_err(|e| Error::io(p, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(p, e)),
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
            Ok(browse::dump_file(repo, &node, w).map(drop)?)
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
            .map_err(|source| Error::Io {
                what: "writing the dump".into(),
                source,
            })
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
        return Err(Error::Database(format!(
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

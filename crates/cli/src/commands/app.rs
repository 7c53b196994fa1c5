//! `cairn app`: application front-ends.
//!
//! An application is named either by a configured instance (`[[app]] name = ...` in the
//! config file: its kind, path, hooks, tags, wrapper and database settings) or by a
//! front-end (`kimai`, ...) with `--path`. A flag replaces the configured value of its
//! key. An instance whose name is not its kind's tags its snapshots with its name, and
//! `restore`, `verify` and `snapshots` of that name choose among those.

use crate::output::{bytes, local_time};
use crate::password::read_password;
use crate::progress::Bar;
use crate::requests::{AppBackupRequest, AppRestoreRequest};
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use cairn_apps::app::{self, Manifest, Plan};
use cairn_config::AppConfig;
use std::path::{Path, PathBuf};

/// What a `cairn app` command's NAME stands for.
struct Named<'a> {
    /// The front-end, e.g. `kimai`.
    kind: String,
    /// The configured instance, when NAME is one.
    configured: Option<&'a AppConfig>,
}

impl Named<'_> {
    /// The tag that tells this instance's snapshots from other installations of the same
    /// front-end: its name, when it is a configured instance not named as its kind.
    fn instance_tag(&self) -> Option<&str> {
        self.configured
            .filter(|c| c.name != c.kind)
            .map(|c| c.name.as_str())
    }

    /// Whether `snap` is a snapshot of this application (of this configured
    /// installation: one that records another installation's name is not).
    fn owns(&self, snap: &cairn_core::Snapshot) -> bool {
        let recorded = snap
            .manifest
            .as_ref()
            .and_then(|m| m.get("installation"))
            .and_then(|i| i.as_str());
        snap.app.as_deref() == Some(self.kind.as_str())
            && self.instance_tag().is_none_or(|t| snap.has_tag(t))
            && match (self.configured, recorded) {
                (Some(c), Some(name)) => name == c.name,
                _ => true,
            }
    }

    /// The configured installation directory.
    fn path(&self) -> Option<PathBuf> {
        self.configured.map(|c| c.path.clone())
    }
}

/// Looks NAME up: a configured instance first, then a front-end.
fn named<'a>(s: &'a Settings, name: &str) -> Result<Named<'a>> {
    if let Some(c) = s.config.app(name) {
        return Ok(Named {
            kind: c.kind.clone(),
            configured: Some(c),
        });
    }
    let kind = if name == "i-doit" { "idoit" } else { name };
    if app::APPS.contains(&kind) {
        return Ok(Named {
            kind: kind.to_string(),
            configured: None,
        });
    }
    let file = match &s.config.file {
        Some(f) => format!("configured in {}: {}", f.display(), s.config.app_names()),
        None => "no config file was found".into(),
    };
    bail!(
        "unknown application {name:?}: it is neither a configured installation ({file}) nor \
         a front-end ({})",
        app::APPS.join(", ")
    )
}

/// How to reach the databases of the instance `c` (its `[app.database]`: URL, then
/// password) with the dump tools' wrapper.
fn access_for(c: Option<&AppConfig>, wrapper: Option<&str>) -> Result<app::DatabaseAccess> {
    let mut access = app::DatabaseAccess {
        wrapper: wrapper.map(str::to_string),
        ..app::DatabaseAccess::default()
    };
    if let Some(c) = c {
        let what = || format!("the database of {} ([app.database])", c.name);
        access.url = c.database.url.clone();
        access.exclude = c.database.exclude.clone();
        if let Some(src) = &c.database.password {
            let pw = read_password(src, false, "database password").with_context(what)?;
            let pw = std::str::from_utf8(pw.as_bytes())
                .ok()
                .with_context(|| format!("{}: the password is not UTF-8", what()))?;
            access.password = Some(pw.to_string());
        }
    }
    Ok(access)
}

/// The plan for the installation of `kind` at `path`, with what the instance `c`
/// configures for its databases, the dump tools' wrapper and its backups' options.
fn plan_for(
    kind: &str,
    path: &Path,
    c: Option<&AppConfig>,
    wrapper: Option<&str>,
    with_generated: bool,
) -> Result<Plan> {
    let access = access_for(c, wrapper)?;
    let mut options = c
        .map(|c| crate::settings::app_options(&c.options))
        .unwrap_or_default();
    options.with_generated |= with_generated;
    let what = || match c {
        Some(c) => format!("the database of {} ([app.database])", c.name),
        None => format!("{kind} at {}", path.display()),
    };
    app::plan_with_options(kind, path, &access, &options).with_context(what)
}

/// `cairn app list [KIND=DIR|NAME...]`.
pub fn list(s: &Settings, installs: &[String]) -> Result<u8> {
    let mut rows = Vec::new();
    let mut code = crate::exit::OK;
    // (name, kind, directory, configured instance)
    let mut todo: Vec<(String, String, PathBuf, Option<&AppConfig>)> = Vec::new();
    if installs.is_empty() {
        // The configured installations, then those found where they usually are.
        for c in &s.config.apps {
            todo.push((c.name.clone(), c.kind.clone(), c.path.clone(), Some(c)));
        }
        let same = |a: &Path, b: &Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        for (kind, dir) in app::detect() {
            let known = s
                .config
                .apps
                .iter()
                .any(|c| c.kind == kind && same(&c.path, &dir));
            if !known {
                todo.push((kind.clone(), kind, dir, None));
            }
        }
    }
    for spec in installs {
        if let Some(c) = s.config.app(spec) {
            todo.push((c.name.clone(), c.kind.clone(), c.path.clone(), Some(c)));
            continue;
        }
        let (kind, dir) = spec.split_once('=').with_context(|| {
            format!(
                "{spec:?}: give KIND=DIR (e.g. kimai=/var/www/kimai) or a configured name \
                 (configured: {})",
                s.config.app_names()
            )
        })?;
        todo.push((kind.to_string(), kind.to_string(), PathBuf::from(dir), None));
    }
    let journals = journal_dir()?;
    for (name, kind, dir, c) in todo {
        let configured = c.is_some();
        // A restore cut short here comes first: the installation may be half restored.
        let interrupted = match app::Journal::find(&journals, &kind, &dir) {
            Ok(Some(j)) => Some(format!(
                "a restore of snapshot {} was cut short on {} ({}); its databases and \
                 files may be mixed: `cairn app restore {name}{} --rollback` puts back what \
                 was there, `--finish` completes it",
                &j.snapshot[..8.min(j.snapshot.len())],
                jiff::Timestamp::from_second(j.started as i64)
                    .map(crate::output::local_time)
                    .unwrap_or_else(|_| j.started.to_string()),
                match j.phase {
                    app::Phase::Restoring => "restoring",
                    app::Phase::RollingBack => "while rolling back",
                },
                if configured {
                    String::new()
                } else {
                    format!(" --target {}", dir.display())
                }
            )),
            Ok(None) => None,
            Err(e) => Some(e.to_string()),
        };
        if interrupted.is_some() {
            code = crate::exit::ERROR;
        }
        let wrapper = c.and_then(|c| c.db_wrapper.as_deref());
        let plan = match plan_for(&kind, &dir, c, wrapper, false) {
            Ok(p) => p,
            Err(e) => {
                code = crate::exit::ERROR;
                rows.push(serde_json::json!({
                    "name": name,
                    "app": kind,
                    "install": dir,
                    "configured": configured,
                    "error": crate::output::error_chain(&e),
                    "interrupted_restore": interrupted,
                }));
                continue;
            }
        };
        let dbs: Vec<_> = plan
            .databases
            .iter()
            .map(|db| {
                let (what, reachable) = match db.dump() {
                    Ok((_, info)) => (
                        serde_json::json!({
                            "engine": info.engine,
                            "database": info.database,
                            "location": info.location,
                            "server_version": info.server_version,
                        }),
                        Ok(()),
                    ),
                    Err(e) => (serde_json::json!({}), Err(e.to_string())),
                };
                if reachable.is_err() {
                    code = crate::exit::ERROR;
                }
                let mut v = what;
                v["reachable"] = reachable.is_ok().into();
                if let Err(e) = reachable {
                    v["error"] = e.into();
                }
                v
            })
            .collect();
        rows.push(serde_json::json!({
            "name": name,
            "configured": configured,
            "app": plan.app,
            "install": plan.install,
            "version": plan.version,
            "revision": plan.revision,
            "files": plan.paths.iter().filter(|p| p.exists()).collect::<Vec<_>>(),
            "databases": dbs,
            "interrupted_restore": interrupted,
        }));
    }
    if s.json {
        super::print_json(&serde_json::json!({"known": app::APPS, "installs": rows}))?;
        return Ok(code);
    }
    println!("front-ends: {}", app::APPS.join(", "));
    for r in &rows {
        println!();
        let (name, kind) = (
            r["name"].as_str().unwrap_or("?"),
            r["app"].as_str().unwrap_or("?"),
        );
        let install = r["install"].as_str().unwrap_or("?");
        if r["configured"] == true {
            println!("{name} (configured, {kind}) at {install}");
        } else {
            println!("{kind} at {install}");
        }
        if let Some(e) = r["interrupted_restore"].as_str() {
            println!("  INTERRUPTED RESTORE: {e}");
        }
        if let Some(e) = r["error"].as_str() {
            println!("  error: {e}");
            continue;
        }
        if let Some(v) = r["version"].as_str() {
            println!("  version {v}");
        }
        for f in r["files"].as_array().into_iter().flatten() {
            println!("  file  {}", f.as_str().unwrap_or("?"));
        }
        for d in r["databases"].as_array().into_iter().flatten() {
            match d["error"].as_str() {
                None => println!(
                    "  db    {} {} at {} (server {}): reachable",
                    d["engine"].as_str().unwrap_or("?"),
                    d["database"].as_str().unwrap_or("?"),
                    d["location"].as_str().unwrap_or("?"),
                    d["server_version"].as_str().unwrap_or("?")
                ),
                Some(e) => println!("  db    not reachable: {e}"),
            }
        }
    }
    Ok(code)
}

/// `cairn app backup NAME [--path DIR]`.
pub fn backup(s: &Settings, a: AppBackupRequest) -> Result<u8> {
    let n = named(s, &a.app)?;
    let c = n.configured;
    let Some(path) = a.path.or_else(|| n.path()) else {
        bail!(
            "give the installation directory: cairn app backup {} --path DIR, or configure \
             it in the config file ([[app]] name = \"{}\", path = \"DIR\"; see \
             docs/config.md)",
            a.app,
            a.app
        );
    };
    // A flag replaces the configured value of its key; lists are replaced, not merged.
    let or_configured = |flag: Vec<String>, key: fn(&AppConfig) -> &Vec<String>| {
        if flag.is_empty() {
            c.map(key).cloned().unwrap_or_default()
        } else {
            flag
        }
    };
    let before = or_configured(a.before, |c| &c.before);
    let after = or_configured(a.after, |c| &c.after);
    let flag_tags: Vec<String> = a.tag.into_iter().filter(|t| !t.is_empty()).collect();
    let mut tags = or_configured(flag_tags, |c| &c.tags);
    if let Some(t) = n.instance_tag() {
        if !tags.iter().any(|x| x == t) {
            tags.insert(0, t.to_string());
        }
    }
    let wrapper = a
        .db_wrapper
        .or_else(|| c.and_then(|c| c.db_wrapper.clone()));
    let mut plan = plan_for(&n.kind, &path, c, wrapper.as_deref(), a.with_generated)?;
    for missing in &plan.not_included {
        eprintln!("cairn: warning: {missing}");
    }
    plan.name = c.map(|c| c.name.clone());
    plan.add_hooks(before, after);
    plan.excludes.extend(super::own_directories(s));
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "app backup")?;
    // i-doit's page: "Backups should never stay on the system that is being secured."
    // Every repository is a local directory for now: say it for i-doit, every run.
    if plan.app == "idoit" && !s.quiet {
        eprintln!(
            "cairn: warning: the repository {} is on the machine being backed up; keep a \
             copy elsewhere (another machine or offsite)",
            s.repo
        );
    }
    let bar = Bar::new(s.progress, None);
    let done = app::backup(&repo, &plan, tags, &bar, &mut |l| eprintln!("    {l}"));
    bar.finish();
    for e in &done.after_errors {
        eprintln!("cairn: {e}; the application may not have been started again");
    }
    let code = super::backup::report(s, &done.result?)?;
    if !done.after_errors.is_empty() {
        return Ok(crate::exit::ERROR);
    }
    Ok(code)
}

/// `cairn app show SNAPSHOT`.
pub fn show(s: &Settings, spec: &str) -> Result<u8> {
    let repo = super::open(s)?;
    let (snaps, damaged) = repo.snapshots_and_damaged()?;
    let snaps: Vec<_> = snaps
        .into_iter()
        .filter(|(_, sn)| sn.app.is_some())
        .collect();
    let (id, snap) = cairn_core::select_snapshot(snaps, &damaged, spec)?;
    let Some(value) = snap.manifest.clone() else {
        bail!("snapshot {} has no manifest", id.short());
    };
    if s.json {
        let mut v = value;
        v["snapshot"] = id.to_hex().into();
        v["time"] = snap.time.to_string().into();
        v["streams"] = serde_json::to_value(
            snap.summary
                .as_ref()
                .map(|m| m.streams.clone())
                .unwrap_or_default(),
        )?;
        super::print_json(&v)?;
        return Ok(crate::exit::OK);
    }
    let m = Manifest::of(&id, &snap)?;
    println!("snapshot  {} ({})", id.short(), local_time(snap.time));
    println!("app       {} at {}", m.app, m.install);
    println!(
        "version   {}{}",
        m.app_version.as_deref().unwrap_or("unknown"),
        m.revision
            .as_deref()
            .map(|r| format!(" (revision {r})"))
            .unwrap_or_default()
    );
    println!("order     {}", m.order.join(", then "));
    let streams = snap.summary.map(|m| m.streams).unwrap_or_default();
    for d in &m.databases {
        let timing = streams
            .iter()
            .find(|st| format!("/{}", st.name) == d.dump.path)
            .map(|st| format!(", {} in {:.1} s", bytes(st.bytes), st.duration_secs))
            .unwrap_or_default();
        println!(
            "database  {} {} at {} (server {}), {} by {}{timing}",
            d.dump.engine,
            d.dump.database,
            d.dump.location,
            d.dump.server_version,
            d.dump.format,
            d.dump.tool
        );
        println!(
            "          stored as {}; {} table(s)",
            d.dump.path,
            d.tables.len()
        );
        for t in &d.tables {
            println!("            {:<40} {:>10} rows", t.table, t.rows);
        }
    }
    for f in &m.files {
        println!("files     {f}");
    }
    if !m.excludes.is_empty() {
        println!("excluded  {}", m.excludes.join(" "));
    }
    println!("after a restore:");
    for (i, step) in m.post_restore.iter().enumerate() {
        println!("  {}. {step}", i + 1);
    }
    Ok(crate::exit::OK)
}

/// The snapshot of the application `n` that `spec` names. `latest` is the newest backup
/// (never a restore point) of the installation: the configured one's (by its name, or
/// by its directory in snapshots made before names were recorded), else the one at
/// `target`. When no snapshot is of that installation (a restore to a new place),
/// `latest` is taken only if a single installation made them all: another
/// installation's newest is never taken silently. An id may name any snapshot.
fn app_snapshot(
    repo: &cairn_core::Repository,
    name: &str,
    n: &Named,
    spec: Option<&str>,
    target: Option<&Path>,
    skip_damaged: bool,
) -> Result<(cairn_core::Id, cairn_core::Snapshot)> {
    let spec = spec.unwrap_or("latest");
    let (all, damaged) = repo.snapshots_and_damaged()?;
    let mut snaps: Vec<_> = all
        .into_iter()
        .filter(|(_, sn)| n.owns(sn))
        .filter(|(_, sn)| spec != "latest" || !sn.has_tag(app::RESTORE_POINT_TAG))
        .collect();
    if spec == "latest" {
        let same = |a: &Path, b: &Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        let install_of = |sn: &cairn_core::Snapshot| -> Option<Manifest> {
            sn.manifest
                .as_ref()
                .and_then(|v| serde_json::from_value::<Manifest>(v.clone()).ok())
        };
        let mine = |sn: &cairn_core::Snapshot| -> bool {
            let Some(m) = install_of(sn) else {
                return false;
            };
            match (n.configured, target) {
                (Some(c), _) => match &m.installation {
                    Some(i) => *i == c.name,
                    None => same(Path::new(&m.install), &c.path),
                },
                (None, Some(t)) => same(Path::new(&m.install), t),
                (None, None) => false,
            }
        };
        let own: Vec<_> = snaps.iter().filter(|(_, sn)| mine(sn)).cloned().collect();
        if !own.is_empty() {
            snaps = own;
        } else {
            let mut installs: Vec<String> = snaps
                .iter()
                .filter_map(|(_, sn)| install_of(sn))
                .map(|m| match m.installation {
                    Some(i) => format!("{i} ({})", m.install),
                    None => m.install,
                })
                .collect();
            installs.sort();
            installs.dedup();
            if installs.len() > 1 {
                bail!(
                    "the snapshots of {name} come from {} installations ({}){}; give --target \
                     DIR of one of them, or a snapshot id (cairn app snapshots {name})",
                    installs.len(),
                    installs.join(", "),
                    match target {
                        Some(t) => format!(", none from {}", t.display()),
                        None => String::new(),
                    }
                );
            }
        }
    }
    Ok(cairn_core::select_snapshot_among(
        snaps,
        &damaged,
        spec,
        &cairn_core::SnapshotFilter::default(),
        skip_damaged,
    )?)
}

/// Says a step of a restore or verify on standard error.
fn say_step(quiet: bool, line: &str) {
    if !quiet {
        eprintln!("cairn: {line}");
    }
}

/// Where the journals of application restores in progress are kept.
fn journal_dir() -> Result<PathBuf> {
    Ok(crate::settings::state_dir("the restore journal")?.join("restores"))
}

/// The command that acts on a cut-short restore of the installation of `n` at `target`
/// (`what`: `--rollback` or `--finish`).
fn recovery_command(name: &str, n: &Named, target: &Path, what: &str) -> String {
    match n.path() {
        Some(p) if p == target => format!("cairn app restore {name} {what}"),
        _ => format!(
            "cairn app restore {name} --target {} {what}",
            target.display()
        ),
    }
}

/// The journal of a cut-short restore of `n`: the one of `target`, or, without a
/// target, the only one of its front-end.
fn cut_short(dir: &Path, name: &str, n: &Named, target: Option<&Path>) -> Result<app::Journal> {
    let found = match target {
        Some(t) => app::Journal::find(dir, &n.kind, t)?.into_iter().collect(),
        None => app::Journal::all_of(dir, &n.kind)?,
    };
    match found.len() {
        0 => bail!(
            "no restore of {name}{} was cut short (no journal in {})",
            target
                .map(|t| format!(" at {}", t.display()))
                .unwrap_or_default(),
            dir.display()
        ),
        1 => Ok(found.into_iter().next().expect("one")),
        _ => bail!(
            "restores of several installations of {name} were cut short ({}); give --target DIR",
            found
                .iter()
                .map(|j| j.install.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `cairn app restore`.
pub fn restore(s: &Settings, a: AppRestoreRequest) -> Result<u8> {
    if let Some(url) = &a.database {
        cairn_config::refuse_url_password(
            "--database",
            url,
            "password-file or password-command of [app.database]",
        )?;
    }
    let n = named(s, &a.app)?;
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "app restore")?;
    let dir = journal_dir()?;
    let access = access_for(
        n.configured,
        n.configured.and_then(|c| c.db_wrapper.as_deref()),
    )?;
    let quiet = s.quiet || s.json;
    let mut say = |line: &str| say_step(quiet, line);
    let target = a.target.clone().or_else(|| n.path());
    // The hooks of a backup stop and start the application around a restore too.
    let hooks = |flag: Vec<String>, key: fn(&AppConfig) -> &Vec<String>| match flag.is_empty() {
        true => n.configured.map(key).cloned().unwrap_or_default(),
        false => flag,
    };
    let (before, after) = (hooks(a.before, |c| &c.before), hooks(a.after, |c| &c.after));

    if a.rollback {
        let mut j = cut_short(&dir, &a.app, &n, target.as_deref())?;
        let install = PathBuf::from(&j.install);
        let again = recovery_command(&a.app, &n, &install, "--rollback");
        let mut states = Ok(Vec::new());
        for h in &before {
            say(&format!("before-hook: {h}"));
            if let Err(e) = app::run_hook("before", h, &mut |l| say(&format!("  {l}"))) {
                states = Err(e);
                break;
            }
        }
        if states.is_ok() {
            states = app::rollback(&repo, &mut j, &dir, &access, &again, &mut say);
        }
        for h in &after {
            say(&format!("after-hook: {h}"));
            if let Err(e) = app::run_hook("after", h, &mut |l| say(&format!("  {l}"))) {
                eprintln!("cairn: {e}; the application may not have been started again");
            }
        }
        let states = states?;
        if s.json {
            super::print_json(&serde_json::json!({
                "rolled_back": j.snapshot,
                "restore_point": j.restore_point,
                "install": j.install,
                "items": states.iter().map(|(what, state)| serde_json::json!({
                    "item": what, "state": state,
                })).collect::<Vec<_>>(),
            }))?;
        } else if !s.quiet {
            println!(
                "the restore of {} into {} is rolled back:",
                &j.snapshot[..8],
                j.install
            );
            for (what, state) in &states {
                println!("  {what}: {state}");
            }
        }
        return Ok(crate::exit::OK);
    }

    let (id, snap, finish) = if a.finish {
        let j = cut_short(&dir, &a.app, &n, target.as_deref())?;
        if j.repository != repo.config().id.to_hex() {
            bail!(
                "the cut-short restore of {} used another repository (id {}); open that one",
                j.install,
                &j.repository[..8]
            );
        }
        let id = cairn_core::Id::from_hex(&j.snapshot)
            .context("the restore journal names no valid snapshot")?;
        // By the id it was first taken as: `key rotate --rewrite-data` renames snapshots.
        let (id, snap) = repo
            .load_snapshot_first_taken_as(&id)
            .context("the snapshot the cut-short restore was restoring")?;
        (id, snap, Some(j))
    } else {
        let (id, snap) = app_snapshot(
            &repo,
            &a.app,
            &n,
            a.snapshot.as_deref(),
            target.as_deref(),
            a.skip_damaged,
        )?;
        (id, snap, None)
    };
    let target = match &finish {
        Some(j) => PathBuf::from(&j.install),
        None => match target {
            Some(t) => t,
            None => PathBuf::from(&Manifest::of(&id, &snap)?.install),
        },
    };
    let opts = app::RestoreOptions {
        rollback_command: recovery_command(&a.app, &n, &target, "--rollback"),
        target: Some(target),
        database: a.database,
        replace_existing: a.replace_existing,
        ignore_version: a.ignore_version,
        skip_databases: a.files_only,
        skip_files: a.databases_only,
        dry_run: a.dry_run,
        access,
        journal_dir: Some(dir),
        tags: n.instance_tag().map(str::to_string).into_iter().collect(),
        installation: n.configured.map(|c| c.name.clone()),
        before,
        after,
        system_config: a.system_config,
        stage: a.stage,
        finish,
    };
    let report = app::restore(&repo, &id, &snap, &opts, &mut say)?;
    if opts.dry_run {
        if s.json {
            super::print_json(&report)?;
        }
        return Ok(crate::exit::OK);
    }
    if s.json {
        super::print_json(&report)?;
    } else if !s.quiet {
        println!(
            "restored {} file(s) and {} database(s) of snapshot {}",
            report.files,
            report.databases.len(),
            id.short()
        );
        for d in &report.databases {
            println!("  database {}: {}", d.database, d.state);
        }
        for p in &report.paths {
            println!("  path {}: {}", p.path, p.state);
        }
        if let Some(rp) = &report.restore_point {
            println!(
                "what was there before is in restore point {} (cairn app restore {} {})",
                &rp[..8],
                a.app,
                &rp[..8]
            );
        }
        println!("now:");
        for (i, step) in report.post_restore.iter().enumerate() {
            println!("  {}. {step}", i + 1);
        }
    }
    Ok(crate::exit::OK)
}

/// `cairn app verify`.
pub fn verify(
    s: &Settings,
    app_name: &str,
    spec: Option<&str>,
    path: Option<PathBuf>,
    database: Option<String>,
) -> Result<u8> {
    let n = named(s, app_name)?;
    let path = path.or_else(|| n.path());
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "app verify")?;
    let (id, snap) = app_snapshot(&repo, app_name, &n, spec, path.as_deref(), false)?;
    let quiet = s.quiet || s.json;
    let mut say = |line: &str| say_step(quiet, line);
    let found = app::verify(
        &repo,
        &id,
        &snap,
        path.as_deref(),
        database.as_deref(),
        &access_for(
            n.configured,
            n.configured.and_then(|c| c.db_wrapper.as_deref()),
        )?,
        &mut say,
    )?;
    let ok = found
        .iter()
        .all(|d| d.missing.is_empty() && d.count_differences.is_empty());
    if s.json {
        super::print_json(&serde_json::json!({
            "snapshot": id.to_hex(),
            "ok": ok,
            "databases": found,
        }))?;
    } else {
        for d in &found {
            println!(
                "{} {}: {} table(s); {} missing, {} with other row counts",
                d.engine,
                d.path,
                d.tables,
                d.missing.len(),
                d.count_differences.len()
            );
            for t in &d.missing {
                println!("  missing: {t}");
            }
            for (t, want, got) in &d.count_differences {
                println!("  {t}: {got} rows, the manifest says {want}");
            }
        }
        println!(
            "snapshot {}: {}",
            id.short(),
            if ok { "verified" } else { "differences found" }
        );
    }
    Ok(if ok {
        crate::exit::OK
    } else {
        crate::exit::ERROR
    })
}

/// `cairn app snapshots NAME [--path DIR]`.
pub fn snapshots(s: &Settings, app_name: &str, path: Option<PathBuf>) -> Result<u8> {
    let n = named(s, app_name)?;
    let path = path.or_else(|| n.path());
    let repo = super::open(s)?;
    let mut rows = Vec::new();
    for (id, snap) in repo.snapshots()? {
        if !n.owns(&snap) {
            continue;
        }
        let Ok(m) = Manifest::of(&id, &snap) else {
            continue;
        };
        let install = path.clone().unwrap_or_else(|| PathBuf::from(&m.install));
        let compat = app::compare_version(&n.kind, &m, &install);
        rows.push((id, snap, m, compat));
    }
    if s.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(id, snap, m, compat)| {
                serde_json::json!({
                    "snapshot": id.to_hex(),
                    "time": snap.time.to_string(),
                    "app_version": m.app_version,
                    "compatibility": compat,
                    "tags": snap.tags,
                    "install": m.install,
                    "installation": m.installation,
                    "restore_point": m.restore_point.as_ref().map(|r| &r.restoring),
                })
            })
            .collect();
        super::print_json(&list)?;
        return Ok(crate::exit::OK);
    }
    println!(
        "{:<9} {:<19} {:<24} {:<22} install",
        "id", "time", "version", "installed"
    );
    for (id, snap, m, compat) in &rows {
        let c = match compat {
            app::VersionMatch::Match => "match".to_string(),
            app::VersionMatch::Different(_, installed) => format!("different ({installed})"),
            app::VersionMatch::Unknown => "unknown".to_string(),
        };
        let kind = match &m.restore_point {
            Some(r) => format!(
                " (restore point, before restoring {})",
                &r.restoring[..8.min(r.restoring.len())]
            ),
            None => String::new(),
        };
        println!(
            "{:<9} {:<19} {:<24} {c:<22} {}{}{kind}",
            id.short(),
            local_time(snap.time),
            m.app_version.as_deref().unwrap_or("?"),
            m.installation
                .as_ref()
                .map(|i| format!("{i} "))
                .unwrap_or_default(),
            m.install
        );
    }
    println!("{} snapshot(s) of {app_name}", rows.len());
    Ok(crate::exit::OK)
}

//! Commands. Each takes resolved settings and its own options, never clap types.

mod app;
mod backup;
mod catalog;
mod config;
mod copy;
mod export;
mod init;
mod inspect;
mod key;
mod maintain;
mod mount;
mod read;
mod restore;
mod run;
mod schedule;
mod status;

use crate::args::{
    AppCommand, CatalogCommand, Cli, Command, ConfigCommand, KeyCommand, RepairCommand,
};
use crate::settings::Settings;
use anyhow::Result;
use cairn_core::{Backend, Lock, Repository};
use std::sync::Arc;

/// Runs the parsed command line; returns the exit code.
pub fn run(cli: Cli) -> Result<u8> {
    // `config check` reports a broken config file instead of failing on it, so it runs
    // before the settings (which need a sound one) are resolved; completions need no
    // settings at all.
    let command = match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            // Into memory first: the generator panics when its writer fails (a closed
            // pipe); writing the result ourselves turns that into an error.
            let mut script = Vec::new();
            clap_complete::generate(
                shell,
                &mut crate::args::Cli::command(),
                "cairn",
                &mut script,
            );
            std::io::stdout().write_all(&script)?;
            return Ok(crate::exit::OK);
        }
        Command::Man { dir } => return manual(dir),
        Command::Config(ConfigCommand::Check) => {
            let location = crate::config::locate(cli.global.config, &crate::settings::env_var);
            return config::check(&location, cli.global.json);
        }
        other => other,
    };
    let mut s = Settings::resolve(cli.global)?;
    s.put_only_allowed = put_only_may_run(&command);
    let result = run_command(&s, command);
    report_retries(&s);
    result
}

/// `cairn man`: the manual page on standard output, or every page into `dir`.
fn manual(dir: Option<std::path::PathBuf>) -> Result<u8> {
    use clap::CommandFactory;
    use std::io::Write;
    let cmd = crate::args::Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(cmd, &dir)?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page)?;
            std::io::stdout().write_all(&page)?;
        }
    }
    Ok(crate::exit::OK)
}

/// The backends this process opened, so that their retries are reported at the end.
static OPENED: std::sync::Mutex<Vec<Arc<dyn Backend>>> = std::sync::Mutex::new(Vec::new());

/// Says how many requests were sent again after transient failures (a dropped
/// connection, a timeout, a 5xx answer), per repository; nothing when none were.
fn report_retries(s: &Settings) {
    let opened = std::mem::take(&mut *OPENED.lock().unwrap());
    for b in opened {
        let n = b.retries();
        if n > 0 && !s.quiet {
            eprintln!(
                "cairn: {n} request(s) to {} were sent again after transient failures",
                b.location()
            );
        }
    }
}

/// Whether the command may run with a put-only key: it only adds backups (or changes
/// that key's own password). Every other command is refused before it reads anything.
fn put_only_may_run(command: &Command) -> bool {
    matches!(
        command,
        Command::Backup(_)
            | Command::App(AppCommand::Backup(_))
            | Command::Key(KeyCommand::List | KeyCommand::Passwd(_))
    )
}

fn run_command(s: &Settings, command: Command) -> Result<u8> {
    match command {
        Command::Init(a) => init::run(s, a),
        Command::Copy(a) => copy::run(s, a),
        Command::Export(a) => export::export(s, a),
        Command::Import(a) => export::import(s, a),
        Command::Status => status::run(s),
        Command::Run(a) => run::run(s, a.job, a.random_delay, a.dry_run),
        Command::Schedule(c) => schedule::run(s, schedule_request(c)),
        Command::Backup(a) => backup::run(s, a),
        Command::Snapshots(a) => read::snapshots(s, a.host, a.tag),
        Command::Ls(a) => read::ls(s, &a.snapshot, &a.select, a.long),
        Command::Dump(a) => match (a.archive, a.path) {
            (Some(format), path) => {
                let format = match format {
                    crate::args::ArchiveFormat::Tar => cairn_archive::Format::Tar,
                    crate::args::ArchiveFormat::Zip => cairn_archive::Format::Zip,
                };
                read::dump_archive(s, &a.snapshot, &a.select, path.as_deref(), format)
            }
            (None, path) => read::dump(s, &a.snapshot, &a.select, &path.unwrap_or_default()),
        },
        Command::Restore(a) => restore::run(s, a),
        Command::Mount(a) => mount::run(
            s,
            mount::MountOptions {
                mountpoint: a.mountpoint,
                allow_other: a.allow_other,
                host: a.host,
                tag: a.tag,
            },
        ),
        Command::Check(a) => read::check(s, &a),
        Command::Diff(a) => inspect::diff(s, &a.from, &a.to),
        Command::Stats(a) => inspect::stats(s, &a.snapshots),
        Command::Find(a) => inspect::find(s, a),
        Command::Forget(a) => maintain::forget(s, a),
        Command::Prune(a) => maintain::prune(s, a.max_unused, a.dry_run),
        Command::Repair(RepairCommand::Index) => maintain::repair_index(s),
        Command::Repair(RepairCommand::Snapshots { snapshots }) => {
            maintain::repair_snapshots(s, &snapshots)
        }
        Command::Tag(a) => maintain::tag(s, a),
        Command::Key(k) => match k {
            KeyCommand::Add(a) => key::add(s, a.new_password_file, a.put_only),
            KeyCommand::List => key::list(s),
            KeyCommand::Remove { id } => key::remove(s, &id),
            KeyCommand::Passwd(a) => key::passwd(s, a.new_password_file),
            KeyCommand::Rotate {
                remove_other_keys,
                rewrite_data,
            } => key::rotate(s, remove_other_keys, rewrite_data),
        },
        Command::Catalog(CatalogCommand::Rebuild) => catalog::rebuild(s),
        Command::Catalog(CatalogCommand::Info) => catalog::info(s),
        Command::App(AppCommand::List { installs }) => app::list(s, &installs),
        Command::App(AppCommand::Backup(a)) => app::backup(s, a),
        Command::App(AppCommand::Show { snapshot }) => app::show(s, &snapshot),
        Command::App(AppCommand::Snapshots { app, path }) => app::snapshots(s, &app, path),
        Command::App(AppCommand::Restore(a)) => app::restore(s, a),
        Command::App(AppCommand::Verify {
            app,
            snapshot,
            path,
            database,
        }) => app::verify(s, &app, snapshot.as_deref(), path, database),
        Command::Config(ConfigCommand::Check)
        | Command::Completions { .. }
        | Command::Man { .. } => {
            unreachable!("handled before the settings")
        }
    }
}

/// `cairn schedule`'s arguments as a request.
fn schedule_request(c: crate::args::ScheduleCommand) -> schedule::ScheduleRequest {
    use crate::args::{ScheduleCommand, ScheduleWhereArgs};
    let place = |p: ScheduleWhereArgs| cairn_schedule::Where {
        unit_dir: p.unit_dir,
        cron: p.cron,
        cron_file: p.cron_file,
    };
    match c {
        ScheduleCommand::Install(a) => schedule::ScheduleRequest::Install {
            job: a.job,
            place: place(a.place),
            options: cairn_schedule::InstallOptions {
                dry_run: a.dry_run,
                no_enable: a.no_enable,
            },
        },
        ScheduleCommand::List(p) => schedule::ScheduleRequest::List(place(p)),
        ScheduleCommand::Remove { job, place: p } => schedule::ScheduleRequest::Remove {
            job,
            place: place(p),
        },
    }
}

/// The backend for a repository location: a directory, `s3://` or `sftp://`.
pub fn backend(s: &Settings) -> Result<Arc<dyn Backend>> {
    let b = cairn_backend::open(&s.repo, &s.remote_options()?)?;
    OPENED.lock().unwrap().push(Arc::clone(&b));
    Ok(b)
}

/// Opens the repository with the password, with its local catalog attached (unless
/// `--no-cache`).
pub fn open(s: &Settings) -> Result<Repository> {
    let mut repo = open_without_catalog(s)?;
    // A put-only key deduplicates against what it stored itself, from its send log
    // beside the catalog (it cannot read the repository's index).
    if let (true, Some(dir)) = (repo.is_put_only(), &s.cache_dir) {
        let path = dir
            .join(repo.config().id.to_hex())
            .join(format!("sent-{}", &repo.key_name()[..16]));
        repo.set_send_log(path);
    }
    if let Some(path) = catalog::path(s, &repo) {
        match cairn_catalog::SqliteCatalog::open(&path, &repo.config().id) {
            Ok(c) => {
                if let (Some(why), false) = (c.replaced(), s.quiet) {
                    eprintln!(
                        "cairn: the catalog at {} was damaged ({why}); replaced it by a new one",
                        path.display()
                    );
                }
                repo.attach_catalog(Arc::new(c), catalog::trouble(s))
            }
            Err(e) => catalog::warn(s, &e),
        }
    }
    Ok(repo)
}

/// Opens the repository with the password, reading everything from it.
pub fn open_without_catalog(s: &Settings) -> Result<Repository> {
    Ok(open_with_password(s)?.0)
}

/// Opens the repository with the password, reading everything from it; returns the
/// password too (for commands that rewrite the key file in use).
pub fn open_with_password(s: &Settings) -> Result<(Repository, cairn_core::Password)> {
    let backend = backend(s)?;
    // Say "no repository" before asking for a password.
    if !backend.exists_config()? {
        return Err(cairn_core::Error::NotARepository(backend.location()).into());
    }
    let pw = s.password(false)?;
    let quiet = s.quiet;
    let warn: cairn_core::Warn = std::sync::Arc::new(move |msg: &str| {
        if !quiet {
            eprintln!("cairn: warning: {msg}");
        }
    });
    let opts = cairn_core::OpenOptions {
        key: s.key_id.clone(),
        warn: Some(warn),
    };
    let mut repo = Repository::open_with(backend, &pw, &opts)?;
    // What this machine has seen of the repository, to tell when it goes back in time
    // (kept whatever --no-cache says: it is a memory, not a cache).
    if let Some(dir) = history_dir() {
        repo.set_history(dir.join(repo.config().id.to_hex()));
    }
    if repo.is_put_only() && !s.put_only_allowed {
        return Err(cairn_core::Error::PutOnly.into());
    }
    Ok((repo, pw))
}

/// Where each repository's history is kept (see `Repository::set_history`): the state
/// directory's `history/`.
fn history_dir() -> Option<std::path::PathBuf> {
    crate::settings::state_dir("the repository history")
        .ok()
        .map(|d| d.join("history"))
}

trait ExistsConfig {
    fn exists_config(&self) -> Result<bool>;
}

impl ExistsConfig for Arc<dyn Backend> {
    fn exists_config(&self) -> Result<bool> {
        match self.read(cairn_core::FileKind::Config, "config") {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Exclude patterns for cairn's own directories, the repository, the local catalogs and
/// the repository histories: a backup of a tree that holds them (`cairn backup ~` with
/// the default repository) must not store the repository into itself, night after night.
pub fn own_directories(s: &Settings) -> Vec<String> {
    let mut dirs: Vec<std::path::PathBuf> =
        cairn_backend::local_path(&s.repo).into_iter().collect();
    dirs.extend(s.cache_dir.clone());
    dirs.extend(history_dir());
    let mut out = Vec::new();
    for d in dirs {
        let Ok(abs) = std::path::absolute(&d) else {
            continue;
        };
        let canonical = abs.canonicalize().unwrap_or_else(|_| abs.clone());
        for p in [abs, canonical] {
            let pattern = format!("{}/", globset::escape(&p.to_string_lossy()));
            if !out.contains(&pattern) {
                out.push(pattern);
            }
        }
    }
    out
}

/// Takes a shared lock (backup, restore, check, ...) unless `--no-lock` is given: a
/// repository on read-only storage can then still be read.
pub fn lock_shared(s: &Settings, repo: &Repository, command: &str) -> Result<Option<Lock>> {
    if s.locking.no_shared {
        return Ok(None);
    }
    take_lock(s, repo, false, command).map(Some)
}

/// Takes the exclusive lock (prune, repair); `--no-lock` does not apply.
pub fn lock_exclusive(s: &Settings, repo: &Repository, command: &str) -> Result<Lock> {
    take_lock(s, repo, true, command)
}

/// Takes a lock, waiting up to the `--retry-lock` time for a conflicting one to go, and
/// saying so when it waits.
fn take_lock(s: &Settings, repo: &Repository, exclusive: bool, command: &str) -> Result<Lock> {
    match repo.lock(exclusive, command, std::time::Duration::ZERO) {
        Err(cairn_core::Error::Locked(why)) if !s.locking.retry.is_zero() => {
            if !s.quiet {
                eprintln!(
                    "cairn: {why}; waiting up to {}",
                    crate::output::duration(s.locking.retry.as_secs_f64())
                );
            }
            Ok(repo.lock(exclusive, command, s.locking.retry)?)
        }
        r => Ok(r?),
    }
}

/// Prints a value as pretty JSON on standard output.
pub fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

//! Commands. Each takes resolved settings and its own request (`crate::requests`),
//! never clap types; `crate::dispatch` calls them. This module holds what they share:
//! opening the repository, locking, JSON output.

pub mod app;
pub mod backup;
pub mod catalog;
pub mod config;
pub mod copy;
pub mod export;
pub mod init;
pub mod inspect;
pub mod key;
pub mod maintain;
pub mod mount;
pub mod read;
pub mod restore;
pub mod run;
pub mod schedule;
pub mod status;

use crate::settings::Settings;
use anyhow::Result;
use cairn_core::{Backend, CatalogTrouble, Lock, Repository};
use std::path::PathBuf;
use std::sync::Arc;

/// The backends this process opened, so that their retries are reported at the end.
static OPENED: std::sync::Mutex<Vec<Arc<dyn Backend>>> = std::sync::Mutex::new(Vec::new());

/// Says how many requests were sent again after transient failures (a dropped
/// connection, a timeout, a 5xx answer), per repository; nothing when none were.
pub fn report_retries(s: &Settings) {
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

/// The backend for a repository location: a directory, `s3://`, `sftp://` or `rclone:`.
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
    if let Some(path) = catalog_path(s, &repo) {
        match cairn_catalog::SqliteCatalog::open(&path, &repo.config().id) {
            Ok(c) => {
                if let (Some(why), false) = (c.replaced(), s.quiet) {
                    eprintln!(
                        "cairn: the catalog at {} was damaged ({why}); replaced it by a new one",
                        path.display()
                    );
                }
                repo.attach_catalog(Arc::new(c), catalog_trouble(s))
            }
            Err(e) => catalog_warn(s, &e),
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

/// The catalog file of the repository, unless catalogs are off (`--no-cache`, or no
/// cache directory can be found).
pub fn catalog_path(s: &Settings, repo: &Repository) -> Option<PathBuf> {
    let dir = s.cache_dir.as_ref()?;
    Some(cairn_catalog::catalog_path(dir, &repo.config().id))
}

/// Says that the catalog cannot be used and that the command goes on without it.
pub fn catalog_warn(s: &Settings, e: &cairn_core::Error) {
    if !s.quiet {
        eprintln!(
            "cairn: warning: {e}; going on without the catalog (`cairn catalog rebuild` \
             makes a new one)"
        );
    }
}

/// What the repository calls if the catalog fails mid-command.
pub fn catalog_trouble(s: &Settings) -> CatalogTrouble {
    let s = s.clone();
    Box::new(move |e| catalog_warn(&s, e))
}

//! `cairn export`, `cairn import` and the export side of `cairn restore --from-export`.
//!
//! An export is a cairn repository that holds one snapshot, with its own key file
//! (the export password, Argon2id), laid into one file (see `cairn_backend::ExportFile`
//! and docs/exports.md). Writing one is a copy into a new repository in a temporary
//! directory next to the output, then the container written to a temporary file that
//! is synced and renamed onto the output: the output is whole or absent. Reading one
//! opens that repository read-only through [`ExportFile`]: no lock is taken there and
//! nothing is written.

use crate::output::{bytes, local_time};
use crate::password::{read_password, InlinePassword, PasswordSource};
use crate::requests::{ExportPassword, ExportRequest, ImportRequest};
use crate::settings::{env_var, Settings};
use anyhow::{bail, Context, Result};
use cairn_backend::{ExportFile, LocalBackend};
use cairn_core::{browse, Id, InitOptions, NodeKind, Password, Repository, Snapshot};
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

/// Where the export password comes from: `--export-password-file`,
/// `--export-password-command`, then `CAIRN_EXPORT_PASSWORD_FILE`,
/// `CAIRN_EXPORT_PASSWORD_COMMAND`, `CAIRN_EXPORT_PASSWORD`, else a prompt.
fn password_source(a: ExportPassword) -> PasswordSource {
    if let Some(f) = a.export_password_file {
        PasswordSource::File(f)
    } else if let Some(c) = a.export_password_command {
        PasswordSource::Command(c)
    } else if let Some(f) = env_var("CAIRN_EXPORT_PASSWORD_FILE") {
        PasswordSource::File(f.into())
    } else if let Some(c) = env_var("CAIRN_EXPORT_PASSWORD_COMMAND") {
        PasswordSource::Command(c)
    } else if let Some(p) = env_var("CAIRN_EXPORT_PASSWORD") {
        PasswordSource::Inline(InlinePassword::new(p))
    } else {
        PasswordSource::Prompt
    }
}

/// Reads the export password (asked twice when `confirm` and on a terminal).
fn export_password(a: ExportPassword, confirm: bool) -> Result<Password> {
    let src = password_source(a);
    if src == PasswordSource::Prompt
        && !std::io::stdin().is_terminal()
        && !std::io::stderr().is_terminal()
    {
        bail!(
            "no export password given: use --export-password-file or \
             --export-password-command (or CAIRN_EXPORT_PASSWORD_FILE, \
             CAIRN_EXPORT_PASSWORD_COMMAND), or run on a terminal"
        );
    }
    read_password(&src, confirm, "the export password")
}

/// Opens an export for reading: its layout is checked before the password is asked
/// for; a wrong password is [`cairn_core::Error::WrongPassword`] (exit code 12).
pub fn open_export(file: &Path, password: ExportPassword) -> Result<Repository> {
    let backend = ExportFile::open(file)?;
    let pw = export_password(password, false)?;
    Ok(Repository::open(Arc::new(backend), &pw)?)
}

/// `cairn export SNAPSHOT --output FILE`.
pub fn export(s: &Settings, a: ExportRequest) -> Result<u8> {
    if a.snapshot.contains(':') {
        bail!("an export holds a whole snapshot: give SNAPSHOT without `:path`");
    }
    let out = a.output;
    if out.symlink_metadata().is_ok() {
        bail!(
            "{} exists already; remove it or choose another name",
            out.display()
        );
    }
    let repo = super::open(s)?;
    let _lock = super::lock_shared(s, &repo, "export")?;
    let chosen = repo.find_snapshot(&a.snapshot)?;
    let pw = export_password(a.export_password, true)?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    // Removed when dropped, on every way out of this function.
    let work = tempfile::Builder::new()
        .prefix(".cairn-export-")
        .tempdir_in(&dir)
        .with_context(|| format!("creating a temporary directory in {}", dir.display()))?;
    let backend = Arc::new(LocalBackend::new(work.path().join("repository")));
    // Named and cut as the source is: the copy moves blobs as they are, and importing
    // the export back into this repository (or one made like it) reads nothing twice.
    let opts = InitOptions {
        compression_level: repo.config().compression_level,
        ..InitOptions::default()
    };
    let inner = Repository::init_like(backend, &pw, &opts, &repo)?;
    let report = cairn_core::copy(&repo, &inner, std::slice::from_ref(&chosen), 0)?;
    let (id, snap) = inner.find_snapshot("latest")?;
    let contents = contents(&inner, &snap)?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(&dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    let size = {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let n = cairn_backend::write_export(inner.backend().as_ref(), &mut w)?;
        w.flush().context("writing the export")?;
        n
    };
    tmp.as_file()
        .sync_all()
        .context("syncing the export to disk")?;
    tmp.persist_noclobber(&out)
        .map_err(|e| e.error)
        .with_context(|| format!("moving the export to {}", out.display()))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))?;
    drop(inner);
    drop(work);
    if s.json {
        super::print_json(&serde_json::json!({
            "output": out,
            "bytes": size,
            "snapshot": chosen.0.to_hex(),
            "export_snapshot": id.to_hex(),
            "files": contents.files,
            "size": contents.size,
            "blobs_read": report.blobs_read,
        }))?;
    } else if !s.quiet {
        println!(
            "exported snapshot {} ({} files, {}) to {}: {}",
            chosen.0.short(),
            contents.files,
            bytes(contents.size),
            out.display(),
            bytes(size)
        );
        println!("It opens with the export password alone: keep that password safe.");
    }
    Ok(crate::exit::OK)
}

/// `cairn import FILE [--list]`.
pub fn import(s: &Settings, a: ImportRequest) -> Result<u8> {
    let src = open_export(&a.file, a.export_password)?;
    let snaps = src.snapshots()?;
    if a.list {
        return list(s, &a.file, &src, &snaps);
    }
    let dst = super::open(s)?;
    let _lock = super::lock_shared(s, &dst, "import")?;
    let report = cairn_core::copy(&src, &dst, &snaps, 0)?;
    if s.json {
        super::print_json(&report)?;
    } else if !s.quiet {
        println!(
            "imported {} snapshot(s), {} already there; stored {} new bytes{}",
            report.copied.len(),
            report.skipped.len(),
            report.added.bytes_stored,
            if report.rechunked {
                " (every file cut again: this repository cuts otherwise than the export's source)"
            } else {
                ""
            }
        );
        for (_, to) in &report.copied {
            println!("  {}", to.short());
        }
    }
    Ok(crate::exit::OK)
}

/// What a snapshot holds.
struct Contents {
    files: u64,
    dirs: u64,
    others: u64,
    size: u64,
}

fn contents(repo: &Repository, snap: &Snapshot) -> Result<Contents> {
    repo.load_index()?;
    let mut c = Contents {
        files: 0,
        dirs: 0,
        others: 0,
        size: 0,
    };
    browse::walk(repo, &snap.tree, "", &mut |_, n| {
        match n.kind {
            NodeKind::File { .. } => {
                c.files += 1;
                c.size += n.size;
            }
            NodeKind::Dir { .. } => c.dirs += 1,
            _ => c.others += 1,
        }
        Ok(())
    })?;
    Ok(c)
}

/// `cairn import FILE --list`: the snapshots of an export, each with what it holds.
fn list(s: &Settings, file: &Path, repo: &Repository, snaps: &[(Id, Snapshot)]) -> Result<u8> {
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let mut out = Vec::new();
    for (id, snap) in snaps {
        let c = contents(repo, snap)?;
        let databases: Vec<serde_json::Value> = snap
            .manifest
            .as_ref()
            .and_then(|m| m.get("databases"))
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .map(|db| {
                        serde_json::json!({
                            "engine": db.get("engine"),
                            "database": db.get("database"),
                            "path": db.get("path"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(serde_json::json!({
            "id": id.to_hex(),
            "original": snap.original.map(|o| o.to_hex()),
            "time": snap.time,
            "hostname": snap.hostname,
            "username": snap.username,
            "paths": snap.paths,
            "tags": snap.tags,
            "app": snap.app,
            "app_version": snap.manifest.as_ref().and_then(|m| m.get("app_version")),
            "databases": databases,
            "files": c.files,
            "dirs": c.dirs,
            "others": c.others,
            "size": c.size,
        }));
    }
    if s.json {
        super::print_json(&serde_json::json!({
            "file": file,
            "bytes": size,
            "snapshots": out,
        }))?;
        return Ok(crate::exit::OK);
    }
    let mut o = std::io::stdout().lock();
    writeln!(
        o,
        "export {} ({}), {} snapshot(s)",
        file.display(),
        bytes(size),
        snaps.len()
    )?;
    for ((_, snap), v) in snaps.iter().zip(&out) {
        let original = snap.original.map(|o| o.short()).unwrap_or_default();
        writeln!(o, "snapshot  {original} of {}", local_time(snap.time))?;
        writeln!(o, "host      {} (user {})", snap.hostname, snap.username)?;
        writeln!(o, "paths     {}", snap.paths.join(" "))?;
        if !snap.tags.is_empty() {
            writeln!(o, "tags      {}", snap.tags.join(", "))?;
        }
        if let Some(app) = &snap.app {
            let version = v["app_version"].as_str().unwrap_or("unknown version");
            writeln!(o, "app       {app} ({version})")?;
        }
        for db in v["databases"].as_array().into_iter().flatten() {
            let text = |k: &str| db[k].as_str().unwrap_or("?").to_string();
            writeln!(
                o,
                "database  {} {} in {}",
                text("engine"),
                text("database"),
                text("path")
            )?;
        }
        writeln!(
            o,
            "contents  {} files, {} directories, {} other entries, {}",
            v["files"],
            v["dirs"],
            v["others"],
            bytes(v["size"].as_u64().unwrap_or(0))
        )?;
    }
    Ok(crate::exit::OK)
}

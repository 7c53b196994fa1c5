//! `cairn copy` and the other repository of `init --copy-params-from`.

use crate::password::{InlinePassword, PasswordSource};
use crate::requests::{CopyRequest, FromRepo};
use crate::settings::{env_var, Settings};
use anyhow::{bail, Context, Result};
use cairn_core::Repository;

/// The settings of the other repository: its location, and its password from
/// `--from-password-file`, `--from-password-command`, then `CAIRN_FROM_PASSWORD_FILE`,
/// `CAIRN_FROM_PASSWORD_COMMAND`, `CAIRN_FROM_PASSWORD`, else the config file's when
/// `repo` names a configured repository (its url and remote options come from there
/// too), else a prompt. Everything else (output, locking, cache) is this command's.
pub fn from_settings(s: &Settings, repo: String, from: FromRepo) -> Result<Settings> {
    let given = if let Some(f) = from.from_password_file {
        Some(PasswordSource::File(f))
    } else if let Some(c) = from.from_password_command {
        Some(PasswordSource::Command(c))
    } else if let Some(f) = env_var("CAIRN_FROM_PASSWORD_FILE") {
        Some(PasswordSource::File(f.into()))
    } else if let Some(c) = env_var("CAIRN_FROM_PASSWORD_COMMAND") {
        Some(PasswordSource::Command(c))
    } else {
        env_var("CAIRN_FROM_PASSWORD").map(|p| PasswordSource::Inline(InlinePassword::new(p)))
    };
    let mut out = match s.config.named_repository(&repo) {
        Some(rc) => s.for_repository(rc)?,
        None => Settings {
            repo,
            password: PasswordSource::Prompt,
            key_id: None,
            ..s.clone()
        },
    };
    if let Some(p) = given {
        out.password = p;
    }
    Ok(out)
}

/// Opens the other repository (read only: no lock is taken there, nothing is written).
pub fn open_from(s: &Settings, repo: String, from: FromRepo) -> Result<Repository> {
    let fs = from_settings(s, repo, from)?;
    super::open_without_catalog(&fs).with_context(|| format!("opening {}", fs.repo))
}

/// `cairn copy`.
pub fn run(s: &Settings, a: CopyRequest) -> Result<u8> {
    let Some(from_repo) = a.from_repo.or_else(|| env_var("CAIRN_FROM_REPOSITORY")) else {
        bail!("copy needs --from-repo REPO (or CAIRN_FROM_REPOSITORY)");
    };
    let src_settings = from_settings(s, from_repo.clone(), a.from)?;
    if src_settings.repo == s.repo {
        bail!("--from-repo names this repository itself ({})", s.repo);
    }
    let src = super::open_without_catalog(&src_settings)
        .with_context(|| format!("opening {}", src_settings.repo))?;
    let dst = super::open(s)?;
    let _lock = super::lock_shared(s, &dst, "copy")?;
    let (all, damaged) = src.snapshots_and_damaged()?;
    if !s.quiet {
        // Not copied: say so, rather than let the copy look complete.
        for d in &damaged {
            eprintln!("cairn: {}; not copied", d.error);
        }
    }
    let all: Vec<_> = all
        .into_iter()
        .filter(|(_, sn)| a.host.as_ref().is_none_or(|h| &sn.hostname == h))
        .filter(|(_, sn)| a.tag.as_ref().is_none_or(|t| sn.has_tag(t)))
        .collect();
    let chosen = if a.snapshots.is_empty() {
        all
    } else {
        let mut out = Vec::new();
        for spec in &a.snapshots {
            out.push(cairn_core::select_snapshot(all.clone(), &damaged, spec)?);
        }
        out
    };
    if !dst.chunks_like(&src) && !s.quiet && !s.json {
        eprintln!(
            "cairn: {} cuts blobs otherwise than {from_repo}: every file is read and cut \
             again, which costs more than a copy into a repository made with \
             `cairn init --copy-params-from`",
            s.repo
        );
    }
    let report = cairn_core::copy(&src, &dst, &chosen, 0)?;
    if s.json {
        super::print_json(&report)?;
    } else if !s.quiet {
        println!(
            "copied {} snapshot(s), {} already there; read {} blob(s) ({} bytes), stored {} \
             new bytes{}",
            report.copied.len(),
            report.skipped.len(),
            report.blobs_read,
            report.bytes_read,
            report.added.bytes_stored,
            if report.rechunked {
                " (every file cut again)"
            } else {
                ""
            }
        );
        for (from, to) in &report.copied {
            println!("  {} -> {}", from.short(), to.short());
        }
    }
    Ok(crate::exit::OK)
}

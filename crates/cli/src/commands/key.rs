use crate::password::{read_password, PasswordSource};
use crate::settings::Settings;
use anyhow::Result;
use cairn_core::{KdfParams, Password};
use std::path::PathBuf;

fn new_password(file: Option<PathBuf>) -> Result<Password> {
    let src = match file {
        Some(f) => PasswordSource::File(f),
        None => PasswordSource::Prompt,
    };
    read_password(&src, true, "new password")
}

pub fn add(s: &Settings, file: Option<PathBuf>, put_only: bool) -> Result<u8> {
    let repo = super::open_without_catalog(s)?;
    // Refuse before asking for the new password.
    repo.require_full()?;
    let pw = new_password(file)?;
    let id = if put_only {
        repo.add_put_only_key(&pw, KdfParams::DEFAULT)?
    } else {
        repo.add_key(&pw, KdfParams::DEFAULT)?
    };
    let access = if put_only { "put-only" } else { "full" };
    if s.json {
        super::print_json(&serde_json::json!({ "added": id, "access": access }))?;
    } else if !s.quiet {
        println!("added {access} key {}", &id[..8]);
    }
    Ok(crate::exit::OK)
}

pub fn list(s: &Settings) -> Result<u8> {
    let repo = super::open_without_catalog(s)?;
    let keys = repo.list_keys()?;
    if s.json {
        super::print_json(&keys)?;
    } else {
        println!(
            " {:<9} {:<9} {:<12} {:<20} created",
            "id", "access", "user", "host"
        );
        for k in keys {
            println!(
                "{}{:<9} {:<9} {:<12} {:<20} {}",
                if k.current { "*" } else { " " },
                &k.id[..8],
                k.access,
                k.username,
                k.hostname,
                k.created
            );
        }
    }
    Ok(crate::exit::OK)
}

pub fn remove(s: &Settings, id: &str) -> Result<u8> {
    let repo = super::open_without_catalog(s)?;
    let removed = repo.remove_key(id)?;
    if s.json {
        super::print_json(&serde_json::json!({ "removed": removed }))?;
    } else if !s.quiet {
        println!("removed key {}", &removed[..8]);
    }
    Ok(crate::exit::OK)
}

pub fn passwd(s: &Settings, file: Option<PathBuf>) -> Result<u8> {
    let mut repo = super::open_without_catalog(s)?;
    let pw = new_password(file)?;
    let id = repo.change_password(&pw, KdfParams::DEFAULT)?;
    if s.json {
        super::print_json(&serde_json::json!({ "key": id }))?;
    } else if !s.quiet {
        println!("password changed (new key {})", &id[..8]);
    }
    Ok(crate::exit::OK)
}

pub fn rotate(s: &Settings, remove_other_keys: bool, rewrite_data: bool) -> Result<u8> {
    let (mut repo, pw) = super::open_with_password(s)?;
    let lock = super::lock_exclusive(s, &repo, "key rotate")?;
    if rewrite_data {
        return rotate_and_rewrite(s, &mut repo, &lock, &pw, remove_other_keys);
    }
    let report = cairn_core::rotate(&mut repo, &lock, &pw, KdfParams::DEFAULT, remove_other_keys)?;
    if s.json {
        super::print_json(&report)?;
    } else if !s.quiet {
        print_rotation(&report);
        println!("what is written from now on cannot be opened with the earlier keys");
    }
    Ok(crate::exit::OK)
}

fn print_rotation(report: &cairn_core::RotateReport) {
    println!(
        "rotated to key epoch {}: new key {}, {} index file(s) rewritten",
        report.epoch,
        &report.key[..8],
        report.index_files_written
    );
    for k in &report.keys_removed {
        println!("removed key {}", &k[..8]);
    }
}

fn rotate_and_rewrite(
    s: &Settings,
    repo: &mut cairn_core::Repository,
    lock: &cairn_core::Lock,
    pw: &Password,
    remove_other_keys: bool,
) -> Result<u8> {
    // Counters on a terminal, one line overwritten in place.
    let show = s.progress;
    let progress = move |line: &str| {
        if show {
            eprint!("\r{line}\x1b[K");
        }
    };
    let result = cairn_core::rotate_and_rewrite(
        repo,
        lock,
        pw,
        KdfParams::DEFAULT,
        remove_other_keys,
        &progress,
    );
    if show {
        eprint!("\r\x1b[K");
    }
    let r = result?;
    // Temporary files of writes that a crash interrupted may hold data sealed under an
    // earlier epoch; as prune does, those older than an hour go (none is in progress
    // while the exclusive lock is held; the hour is a margin for processes that do not
    // lock).
    let temp_removed = repo
        .backend()
        .remove_stale_temp_files(std::time::Duration::from_secs(3600))?;
    if s.json {
        super::print_json(&r)?;
    } else if !s.quiet {
        match &r.rotation {
            Some(rotation) => print_rotation(rotation),
            None => println!(
                "{} file(s) were still sealed under earlier key epochs: continued re-sealing \
                 them under the current epoch {} (no new epoch made; run `cairn key rotate` \
                 first for one)",
                r.continued, r.epoch
            ),
        }
        for k in &r.keys_removed {
            println!("removed key {} of an earlier epoch", &k[..8]);
        }
        if temp_removed > 0 {
            println!("removed {temp_removed} temporary file(s) left by interrupted writes");
        }
        if r.nothing_to_do() {
            println!("nothing was sealed under an earlier key epoch: no data to rewrite");
        } else {
            println!(
                "re-sealed {} pack(s) ({} blob(s), {} bytes) into {} new pack(s); {} pack(s) \
                 were re-sealed already by an interrupted run; removed {} old pack(s) \
                 ({} no index listed)",
                r.packs_rewritten,
                r.blobs_rewritten,
                r.bytes_rewritten,
                r.packs_written,
                r.packs_already_rewritten,
                r.packs_removed,
                r.packs_unindexed_removed
            );
            println!(
                "index: {} file(s) written, {} removed; snapshots: {} re-sealed, {} re-sealed \
                 already by an interrupted run",
                r.index_files_written,
                r.index_files_removed,
                r.snapshots_rewritten.len(),
                r.snapshots_already_rewritten
            );
        }
        if r.complete() {
            println!(
                "every pack, snapshot and index file is sealed under key epoch {}: the \
                 earlier keys open none of them (only the config)",
                r.epoch
            );
        }
    }
    for l in &r.left {
        eprintln!("cairn: warning: still under an earlier key epoch: {l}");
    }
    for l in &r.refused {
        eprintln!("cairn: warning: refused and left alone (remove it): {l}");
    }
    Ok(if r.complete() {
        crate::exit::OK
    } else {
        crate::exit::ERROR
    })
}

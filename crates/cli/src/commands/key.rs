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

pub fn rotate(s: &Settings, remove_other_keys: bool) -> Result<u8> {
    let (mut repo, pw) = super::open_with_password(s)?;
    let lock = super::lock_exclusive(s, &repo, "key rotate")?;
    let report = cairn_core::rotate(&mut repo, &lock, &pw, KdfParams::DEFAULT, remove_other_keys)?;
    if s.json {
        super::print_json(&report)?;
    } else if !s.quiet {
        println!(
            "rotated to key epoch {}: new key {}, {} index file(s) rewritten",
            report.epoch,
            &report.key[..8],
            report.index_files_written
        );
        for k in &report.keys_removed {
            println!("removed key {}", &k[..8]);
        }
        println!("what is written from now on cannot be opened with the earlier keys");
    }
    Ok(crate::exit::OK)
}

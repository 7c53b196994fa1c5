use crate::requests::InitRequest;
use crate::settings::Settings;
use anyhow::Result;
use cairn_core::{InitOptions, Repository};

pub fn run(s: &Settings, a: InitRequest) -> Result<u8> {
    // The other repository first: a wrong password there creates nothing here.
    let like = match a.copy_params_from {
        Some(r) => Some(super::copy::open_from(s, r, a.from)?),
        None => None,
    };
    let backend = super::backend(s)?;
    let pw = s.password(true)?;
    let opts = InitOptions {
        compression_level: a.compression,
        version: a.repository_version.unwrap_or(cairn_core::REPO_VERSION),
        ..InitOptions::default()
    };
    let repo = match &like {
        Some(like) => Repository::init_like(backend, &pw, &opts, like)?,
        None => Repository::init(backend, &pw, &opts)?,
    };
    if s.json {
        super::print_json(&serde_json::json!({
            "repository": s.repo,
            "id": repo.config().id.to_hex(),
        }))?;
    } else if !s.quiet {
        println!(
            "created cairn repository {} at {}",
            repo.config().id.short(),
            s.repo
        );
        println!("Keep the password safe: without it the data cannot be restored.");
    }
    Ok(crate::exit::OK)
}

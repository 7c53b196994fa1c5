use crate::settings::Settings;
use anyhow::Result;
use cairn_core::{InitOptions, Repository};

pub fn run(s: &Settings, compression: i32) -> Result<u8> {
    let backend = super::backend(s)?;
    let pw = s.password(true)?;
    let opts = InitOptions {
        compression_level: compression,
        ..InitOptions::default()
    };
    let repo = Repository::init(backend, &pw, &opts)?;
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

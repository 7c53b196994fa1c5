//! The local catalog's commands: `catalog rebuild` and `catalog info` (where the
//! catalog is and what happens when it fails are in the parent module, with `open`).

use crate::output::bytes;
use crate::settings::Settings;
use anyhow::{Context, Result};
use cairn_catalog::SqliteCatalog;
use std::sync::Arc;
use std::time::Instant;

/// `cairn catalog rebuild`.
pub fn rebuild(s: &Settings) -> Result<u8> {
    let started = Instant::now();
    let mut repo = super::open_without_catalog(s)?;
    let path = super::catalog_path(s, &repo).context(
        "no cache directory: give --cache-dir or CAIRN_CACHE_DIR (or set HOME), not --no-cache",
    )?;
    let _lock = super::lock_shared(s, &repo, "catalog rebuild")?;
    cairn_catalog::delete(&path)?;
    let catalog = Arc::new(SqliteCatalog::open(&path, &repo.config().id)?);
    // Failures must fail the rebuild, not be warned about: keep the error.
    let failed: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
    let f = failed.clone();
    repo.attach_catalog(
        catalog.clone(),
        Box::new(move |e| *f.lock().unwrap() = Some(e.to_string())),
    );
    repo.load_index()?;
    let (snaps, damage) = repo.snapshots_and_damage()?;
    for e in &damage {
        eprintln!("cairn: {e}");
    }
    let trees = cairn_core::cache_trees(&repo, snaps.iter().map(|(_, sn)| sn.tree))?;
    if let Some(e) = failed.lock().unwrap().take() {
        anyhow::bail!("rebuilding the catalog failed: {e}");
    }
    let info = cairn_core::Catalog::info(catalog.as_ref())?;
    if s.json {
        super::print_json(&serde_json::json!({
            "catalog": info,
            "distinct_trees": trees,
            "damaged_snapshots": damage.len(),
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
    } else if !s.quiet {
        println!(
            "catalog rebuilt at {}: {} snapshot(s), {} tree(s), {} on disk, in {}",
            info.location,
            info.snapshots,
            info.trees,
            bytes(info.file_bytes),
            crate::output::duration(started.elapsed().as_secs_f64())
        );
    }
    Ok(if damage.is_empty() {
        crate::exit::OK
    } else {
        crate::exit::ERROR
    })
}

/// `cairn catalog info`.
pub fn info(s: &Settings) -> Result<u8> {
    let repo = super::open(s)?;
    let Some(catalog) = repo.catalog() else {
        if s.json {
            super::print_json(&serde_json::Value::Null)?;
        } else {
            println!("no catalog in use");
        }
        return Ok(crate::exit::OK);
    };
    let info = catalog.info()?;
    if s.json {
        super::print_json(&info)?;
    } else {
        println!("location        {}", info.location);
        println!("schema version  {}", info.schema_version);
        println!("snapshots       {}", info.snapshots);
        println!(
            "trees           {} ({} of sealed metadata)",
            info.trees,
            bytes(info.tree_bytes)
        );
        println!("size on disk    {}", bytes(info.file_bytes));
    }
    Ok(crate::exit::OK)
}

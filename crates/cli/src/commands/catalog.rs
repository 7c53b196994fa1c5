//! The local catalog: where it is, what happens when it fails, `catalog rebuild` and
//! `catalog info`.

use crate::output::bytes;
use crate::settings::Settings;
use anyhow::{Context, Result};
use cairn_catalog::SqliteCatalog;
use cairn_core::{CatalogTrouble, Repository};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The catalog file of the repository, unless catalogs are off (`--no-cache`, or no
/// cache directory can be found).
pub fn path(s: &Settings, repo: &Repository) -> Option<PathBuf> {
    let dir = s.cache_dir.as_ref()?;
    Some(cairn_catalog::catalog_path(dir, &repo.config().id))
}

/// Says that the catalog cannot be used and that the command goes on without it.
pub fn warn(s: &Settings, e: &cairn_core::Error) {
    if !s.quiet {
        eprintln!(
            "cairn: warning: {e}; going on without the catalog (`cairn catalog rebuild` \
             makes a new one)"
        );
    }
}

/// What the repository calls if the catalog fails mid-command.
pub fn trouble(s: &Settings) -> CatalogTrouble {
    let s = s.clone();
    Box::new(move |e| warn(&s, e))
}

/// `cairn catalog rebuild`.
pub fn rebuild(s: &Settings) -> Result<u8> {
    let started = Instant::now();
    let mut repo = super::open_without_catalog(s)?;
    let path = path(s, &repo).context(
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

//! Repair: rebuild what can be rebuilt from what is stored.
//!
//! `repair_index` reads every pack's own header (sealed inside the pack) and writes new
//! index files naming every pack that authenticates, then removes the old index files.
//! Index files are a cache of the pack headers, so nothing is lost by rebuilding them;
//! a damaged or missing index file, or one naming packs that are gone, is replaced. Packs
//! whose name does not match their bytes or whose header does not authenticate are left
//! out and reported. New index files are written before old ones are removed, so a
//! repair stopped at any point leaves every pack that was indexed still indexed.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::id::Id;
use crate::index::{IndexedPack, PackInfo};
use crate::lock::Lock;
use crate::pack::read_entries;
use crate::repository::{short, Repository};
use crate::store::PACKS_PER_INDEX;
use rayon::prelude::*;
use serde::Serialize;

/// What `repair_index` did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairIndexReport {
    /// Packs read.
    pub packs: usize,
    /// Blobs now indexed.
    pub blobs: usize,
    /// Packs left out, with why.
    pub bad_packs: Vec<String>,
    /// Index files written.
    pub index_files_written: usize,
    /// Index files removed.
    pub index_files_removed: usize,
}

/// Rebuilds the index from the pack headers; see the module documentation. Needs an
/// exclusive lock: a backup running meanwhile could write an index file for a pack that
/// this repair has not read.
pub fn repair_index(repo: &Repository, lock: &Lock) -> Result<RepairIndexReport> {
    if !lock.is_exclusive() {
        return Err(Error::Invalid("repair needs an exclusive lock".into()));
    }
    let old: Vec<String> = repo
        .backend()
        .list(FileKind::Index)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let names: Vec<String> = repo
        .backend()
        .list(FileKind::Pack)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let read: Vec<std::result::Result<IndexedPack, String>> = names
        .par_iter()
        .map(|name| {
            let what = format!("pack {}", short(name));
            let bytes = repo
                .backend()
                .read(FileKind::Pack, name)
                .map_err(|e| format!("{what}: {e}"))?;
            let id = Id::from_hex(name).ok_or_else(|| format!("{what}: not a pack name"))?;
            if Id::of_file(&bytes) != id {
                return Err(format!("{what}: contents do not match its name (damaged)"));
            }
            let (fk, entries) = read_entries(&bytes, &repo.master().data_key, &what)
                .map_err(|e| format!("{what}: {e}"))?;
            Ok((
                PackInfo {
                    id,
                    envelope: fk.envelope,
                },
                entries,
            ))
        })
        .collect();
    let mut report = RepairIndexReport {
        packs: names.len(),
        ..RepairIndexReport::default()
    };
    let mut good = Vec::new();
    for r in read {
        match r {
            Ok(p) => {
                report.blobs += p.1.len();
                good.push(p);
            }
            Err(e) => report.bad_packs.push(e),
        }
    }
    for batch in good.chunks(PACKS_PER_INDEX) {
        repo.write_index_file(batch)?;
        report.index_files_written += 1;
    }
    for name in &old {
        repo.backend().remove(FileKind::Index, name)?;
        report.index_files_removed += 1;
    }
    Ok(report)
}

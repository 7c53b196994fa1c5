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
use crate::formats::id::Id;
use crate::formats::index::{IndexedPack, PackInfo};
use crate::formats::lock::Lock;
use crate::formats::pack::read_entries;
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
    repo.require_full()?;
    lock.require_exclusive("repair")?;
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
    let data_keys = repo.master().data_keys()?;
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
            let (fk, entries) =
                read_entries(&bytes, &data_keys, &what).map_err(|e| format!("{what}: {e}"))?;
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
        repo.remove_index_file(name)?;
        report.index_files_removed += 1;
    }
    Ok(report)
}

/// What `repair_snapshot` did to one snapshot.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RepairSnapshotReport {
    /// The snapshot repaired.
    pub snapshot: String,
    /// The repaired copy, if anything was lost (`None`: the snapshot is whole).
    pub repaired: Option<String>,
    /// Paths left out because their contents or their directory cannot be read.
    pub lost: Vec<String>,
}

/// Writes a copy of a snapshot without what cannot be read: files whose data or list
/// blobs are missing from the index or do not decode, directories whose tree blob is
/// missing or damaged. The copy is tagged `repaired` and says what was lost in its
/// report; the original stays (forget removes it). Run `repair index` first, so that
/// the index names exactly the blobs the packs hold.
pub fn repair_snapshot(repo: &Repository, id: &Id) -> Result<RepairSnapshotReport> {
    repo.require_full()?;
    repo.load_index()?;
    let snap = repo.load_snapshot(&id.to_hex())?;
    let mut report = RepairSnapshotReport {
        snapshot: id.to_hex(),
        ..RepairSnapshotReport::default()
    };
    let (root, _) = crate::store::with_writer(repo, 1, |w| {
        rebuild(repo, w, &snap.tree, "", &mut report.lost)
    })?;
    if report.lost.is_empty() {
        return Ok(report);
    }
    let Some(root) = root else {
        return Err(Error::Invalid(format!(
            "snapshot {}: its root tree cannot be read; nothing to keep",
            id.short()
        )));
    };
    let mut fixed = snap.clone();
    fixed.tree = root;
    if !fixed.has_tag("repaired") {
        fixed.tags.push("repaired".into());
    }
    fixed.summary = None;
    let new = repo.save_snapshot(&fixed)?;
    report.repaired = Some(new.to_hex());
    Ok(report)
}

/// The id of a copy of tree `id` without what cannot be read, or `None` if the tree
/// itself cannot be read. Trees with nothing lost keep their id (no new blob).
fn rebuild(
    repo: &Repository,
    w: &crate::store::BlobWriter<'_>,
    id: &Id,
    path: &str,
    lost: &mut Vec<String>,
) -> Result<Option<Id>> {
    let Ok(mut tree) = repo.load_tree_from_repository(id) else {
        return Ok(None);
    };
    let before = lost.len();
    let mut keep = Vec::with_capacity(tree.nodes.len());
    for mut node in std::mem::take(&mut tree.nodes) {
        let p = format!("{path}/{}", node.display_name());
        match &node.kind {
            crate::formats::tree::NodeKind::Dir { subtree } => {
                match rebuild(repo, w, subtree, &p, lost)? {
                    Some(new) => {
                        node.kind = crate::formats::tree::NodeKind::Dir { subtree: new };
                        keep.push(node);
                    }
                    None => lost.push(format!("{p}/")),
                }
            }
            crate::formats::tree::NodeKind::File { content } => {
                let whole =
                    crate::formats::content::ContentWalk::new(repo, content).all(|e| e.is_ok());
                if whole {
                    keep.push(node);
                } else {
                    lost.push(p);
                }
            }
            _ => keep.push(node),
        }
    }
    if lost.len() == before {
        return Ok(Some(*id));
    }
    tree.nodes = keep;
    let new = w.add_tree(&tree)?;
    Ok(Some(new))
}

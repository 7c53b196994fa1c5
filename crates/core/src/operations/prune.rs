//! Prune: delete the data no snapshot needs, and repack packs that are mostly unused.
//!
//! Runs under an exclusive [`Lock`], so no backup, restore or check is running (they hold
//! shared locks, see `lock.rs`). The steps are ordered so that a prune killed at any
//! moment leaves a valid repository:
//!
//! 1. Read every snapshot and walk its trees and lists: the used blobs. A snapshot or
//!    tree that cannot be read stops the prune before anything changes, because what it
//!    needs cannot be known.
//! 2. Read every index file and list the packs. A pack whose blobs are all unused is to
//!    be deleted; one whose unused share (in bytes) is above `max_unused` is repacked;
//!    a stored pack no index names (left by an interrupted backup) is deleted.
//! 3. Repack: the used blobs of those packs are read (and authenticated) and written to
//!    new packs, with their own index files.
//! 4. Write index files for every pack that stays, then remove the old index files.
//!    Until then both old and new index files name the kept packs, which is harmless.
//! 5. Remove the packs to delete and the repacked ones. A pack removed is named by no
//!    index any more; a pack not yet removed is an unindexed pack the next prune deletes.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::formats::content::add_blobs;
use crate::formats::id::Id;
use crate::formats::index::IndexedPack;
use crate::formats::lock::Lock;
use crate::formats::pack::PackEntry;
use crate::formats::tree::NodeKind;
use crate::repository::Repository;
use crate::store::{with_writer, PACKS_PER_INDEX};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What prune does.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    /// Repack a pack when more than this share of its bytes is unused (0.0 to 1.0).
    pub max_unused: f64,
    /// Plan and report only; change nothing.
    pub dry_run: bool,
}

/// The default of [`PruneOptions::max_unused`]: a pack is repacked when more than 10% of
/// its bytes are unused. Lower values reclaim more space and rewrite more data.
pub const DEFAULT_MAX_UNUSED: f64 = 0.10;

impl Default for PruneOptions {
    fn default() -> Self {
        PruneOptions {
            max_unused: DEFAULT_MAX_UNUSED,
            dry_run: false,
        }
    }
}

/// What prune found and did (or would do, with `dry_run`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    /// Snapshots read.
    pub snapshots: usize,
    /// Blobs the snapshots use.
    pub blobs_used: usize,
    /// Blobs no snapshot uses (or second copies), in all packs.
    pub blobs_unused: usize,
    /// Packs in the index before.
    pub packs: usize,
    /// Packs deleted because nothing in them is used.
    pub packs_deleted: usize,
    /// Their bytes.
    pub bytes_deleted: u64,
    /// Packs repacked because much of them is unused.
    pub packs_repacked: usize,
    /// Their bytes.
    pub bytes_repacked: u64,
    /// Used blobs copied out of repacked packs.
    pub blobs_moved: usize,
    /// Bytes those blobs took.
    pub bytes_moved: u64,
    /// Stored packs that no index named (left by interrupted backups), deleted.
    pub packs_unindexed: usize,
    /// Their bytes.
    pub bytes_unindexed: u64,
    /// Unused bytes left in packs that stay (below the repack threshold).
    pub bytes_unused_kept: u64,
    /// Index files before.
    pub index_files: usize,
    /// Index files written.
    pub index_files_written: usize,
    /// New packs written by the repack.
    pub packs_written: u64,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// Prunes the repository; see the module documentation. Needs an exclusive lock.
pub fn prune(repo: &Repository, lock: &Lock, opts: &PruneOptions) -> Result<PruneReport> {
    repo.require_full()?;
    lock.require_exclusive("prune")?;
    if !(0.0..=1.0).contains(&opts.max_unused) {
        return Err(Error::Invalid(format!(
            "max-unused must be between 0% and 100%, not {}%",
            opts.max_unused * 100.0
        )));
    }
    // Read once: the in-memory index (for reading trees) and each pack's entries.
    let index_files = repo.read_index_files()?;
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        ..PruneReport::default()
    };

    // 1. Used blobs.
    let (snapshots, damaged) = repo.snapshots_from_repository()?;
    if let Some(e) = damaged.first() {
        return Err(Error::Invalid(format!(
            "{} snapshot(s) cannot be read ({e}); prune cannot know what they need and \
             changes nothing (run `cairn check`)",
            damaged.len()
        )));
    }
    report.snapshots = snapshots.len();
    let mut used = used_blobs(repo, snapshots.iter().map(|(_, s)| s.tree))?;

    // 2. The plan.
    report.index_files = index_files.len();
    let (packs, index_files) = crate::formats::index::packs_of_files(index_files);
    add_bases(&packs, &mut used);
    report.blobs_used = used.len();
    let stored: HashMap<String, u64> = repo.backend().list(FileKind::Pack)?.into_iter().collect();
    report.packs = packs.len();

    // Each used blob counts once, in the first pack (in id order) that holds it.
    let mut placed: HashSet<Id> = HashSet::with_capacity(used.len());
    let mut keep: Vec<&IndexedPack> = Vec::new();
    let mut delete: Vec<Id> = Vec::new();
    let mut repack: Vec<(&IndexedPack, Vec<&PackEntry>)> = Vec::new();
    for (id, packed) in &packs {
        let Some(&size) = stored.get(&id.to_hex()) else {
            if packed.1.iter().any(|e| used.contains(&e.id)) {
                return Err(Error::Invalid(format!(
                    "pack {} is missing but holds blobs that snapshots use; prune changes \
                     nothing (run `cairn check`, then `cairn repair`)",
                    id.short()
                )));
            }
            continue; // dropped from the index below
        };
        let live: Vec<&PackEntry> = packed
            .1
            .iter()
            .filter(|e| used.contains(&e.id) && placed.insert(e.id))
            .collect();
        report.blobs_unused += packed.1.len() - live.len();
        let live_bytes: u64 = live.iter().map(|e| e.sealed_len as u64).sum();
        let blob_bytes: u64 = packed.1.iter().map(|e| e.sealed_len as u64).sum();
        let unused = blob_bytes - live_bytes;
        if live.is_empty() {
            delete.push(*id);
            report.packs_deleted += 1;
            report.bytes_deleted += size;
        } else if unused as f64 > opts.max_unused * blob_bytes as f64 {
            report.packs_repacked += 1;
            report.bytes_repacked += size;
            report.blobs_moved += live.len();
            report.bytes_moved += live_bytes;
            repack.push((packed, live));
        } else {
            report.bytes_unused_kept += unused;
            keep.push(packed);
        }
    }
    let unindexed: Vec<(&String, u64)> = stored
        .iter()
        .filter(|(name, _)| Id::from_hex(name).is_none_or(|id| !packs.contains_key(&id)))
        .map(|(n, s)| (n, *s))
        .collect();
    report.packs_unindexed = unindexed.len();
    report.bytes_unindexed = unindexed.iter().map(|(_, s)| s).sum();
    if opts.dry_run {
        return Ok(report);
    }
    // Trees no snapshot uses are of no more use in the catalog either.
    repo.retain_cached_trees(&mut |id| used.contains(id));
    let changes = !delete.is_empty() || !repack.is_empty() || !unindexed.is_empty();
    let index_changes = changes || packs.len() != keep.len();
    if !index_changes {
        return Ok(report);
    }

    // 3. Repack.
    let before: HashSet<String> = index_files.iter().cloned().collect();
    if !repack.is_empty() {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let ((), stats) = with_writer(repo, workers, |w| {
            for (_, live) in &repack {
                for e in live {
                    let data = repo.read_blob(&e.id)?;
                    w.add_copy(e.kind, e.id, data)?;
                }
            }
            Ok(())
        })?;
        report.packs_written = stats.packs;
    }
    let written_by_repack: Vec<String> = repo
        .backend()
        .list(FileKind::Index)?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| !before.contains(n))
        .collect();
    report.index_files_written += written_by_repack.len();

    // 4. Index files for the packs that stay, then away with the old ones. Sealing
    // uses a fresh nonce, so a new index file never has an old one's name.
    let kept: Vec<IndexedPack> = keep.iter().map(|p| (*p).clone()).collect();
    for batch in kept.chunks(PACKS_PER_INDEX) {
        repo.write_index_file(batch)?;
        report.index_files_written += 1;
    }
    for name in &index_files {
        repo.remove_index_file(name)?;
    }

    // 5. Remove the packs.
    for id in delete.iter().chain(repack.iter().map(|(p, _)| &p.0.id)) {
        repo.backend().remove(FileKind::Pack, &id.to_hex())?;
    }
    for (name, _) in &unindexed {
        repo.backend().remove(FileKind::Pack, name)?;
    }
    Ok(report)
}

/// Every blob the trees reachable from `roots` use: trees, lists and data.
/// Adds to `used` the bases of the delta blobs in it, and theirs: a delta blob cannot be
/// read without its base. Every indexed copy of a used blob counts (prune keeps one copy,
/// whichever it is), so a base is kept when any copy needs it.
fn add_bases(packs: &BTreeMap<Id, IndexedPack>, used: &mut HashSet<Id>) {
    let mut bases: HashMap<Id, Vec<Id>> = HashMap::new();
    for (_, entries) in packs.values() {
        for e in entries {
            if let Some(b) = e.base {
                bases.entry(e.id).or_default().push(b);
            }
        }
    }
    let mut todo: Vec<Id> = used
        .iter()
        .filter(|id| bases.contains_key(id))
        .copied()
        .collect();
    while let Some(id) = todo.pop() {
        for b in bases.get(&id).into_iter().flatten() {
            if used.insert(*b) {
                todo.push(*b);
            }
        }
    }
}

pub(crate) fn used_blobs(
    repo: &Repository,
    roots: impl Iterator<Item = Id>,
) -> Result<HashSet<Id>> {
    let mut used: HashSet<Id> = HashSet::new();
    let mut trees: Vec<Id> = roots.collect();
    while let Some(id) = trees.pop() {
        if !used.insert(id) {
            continue;
        }
        for node in &repo.load_tree_from_repository(&id)?.nodes {
            match &node.kind {
                NodeKind::Dir { subtree } => trees.push(*subtree),
                NodeKind::File { content } => add_blobs(repo, content, &mut used)?,
                _ => {}
            }
        }
    }
    Ok(used)
}

//! Sizes of snapshots: what a restore writes, and what the repository holds for them.
//!
//! For each snapshot (and for all the given snapshots together):
//! - entries: files, directories (the root not counted) and other entries;
//! - `restore_size`: the sum of file sizes (holes counted; a hard-linked file counted
//!   once per name), what a restore writes;
//! - the unique blobs the snapshot needs (data blobs; trees and content lists, the
//!   metadata blobs), their plaintext bytes (`dedup_size`) and their bytes as stored,
//!   compressed and sealed, in packs (`stored_size`), from the index.
//!
//! The total's `dedup_size` and `stored_size` count each blob once however many of the
//! snapshots use it: the space the snapshots take together.
//!
//! Entry counts are a function of a tree id, so they are computed once per subtree;
//! blobs are collected per snapshot.

use crate::error::{Error, Result};
use crate::formats::content::add_blobs;
use crate::formats::id::{BlobKind, Id};
use crate::formats::snapshot::Snapshot;
use crate::formats::tree::NodeKind;
use crate::repository::Repository;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Sizes of one snapshot, or of several together.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Usage {
    /// Regular files (and streams).
    pub files: u64,
    /// Directories, the root not counted.
    pub dirs: u64,
    /// Symlinks, fifos, sockets and devices.
    pub others: u64,
    /// Sum of file sizes: what a restore writes.
    pub restore_size: u64,
    /// Unique data blobs.
    pub data_blobs: u64,
    /// Unique metadata blobs (trees and content lists).
    pub tree_blobs: u64,
    /// Plaintext bytes of the unique blobs: the size after deduplication.
    pub dedup_size: u64,
    /// Bytes the unique blobs take in packs (compressed and sealed).
    pub stored_size: u64,
    /// `dedup_size / stored_size` (1.0 when nothing is stored).
    pub compression_ratio: f64,
    /// `restore_size / dedup_size` (1.0 when nothing is stored).
    pub dedup_ratio: f64,
}

/// One snapshot's sizes.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotStats {
    /// The snapshot's id.
    pub id: Id,
    /// When it was taken.
    pub time: jiff::Timestamp,
    /// Its host.
    pub hostname: String,
    /// Its sizes.
    #[serde(flatten)]
    pub usage: Usage,
}

/// Sizes per snapshot and for all of them together.
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    /// Each snapshot, in the order given.
    pub snapshots: Vec<SnapshotStats>,
    /// All together: entry counts and restore sizes summed, blobs counted once.
    pub total: Usage,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    files: u64,
    dirs: u64,
    others: u64,
    restore_size: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.files += o.files;
        self.dirs += o.dirs;
        self.others += o.others;
        self.restore_size += o.restore_size;
    }
}

/// Computes the sizes of `snapshots`; the index must be loaded.
pub fn stats(repo: &Repository, snapshots: &[(Id, Snapshot)]) -> Result<Stats> {
    let mut memo: HashMap<Id, Counts> = HashMap::new();
    let mut all: HashSet<Id> = HashSet::new();
    let mut total = Counts::default();
    let mut out = Vec::with_capacity(snapshots.len());
    for (id, snap) in snapshots {
        let mut blobs: HashSet<Id> = HashSet::new();
        let counts = walk(repo, &snap.tree, &mut blobs, &mut memo)?;
        total.add(counts);
        let usage = usage(repo, counts, &blobs)?;
        all.extend(blobs);
        out.push(SnapshotStats {
            id: *id,
            time: snap.time,
            hostname: snap.hostname.clone(),
            usage,
        });
    }
    let total = usage(repo, total, &all)?;
    Ok(Stats {
        snapshots: out,
        total,
    })
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

fn usage(repo: &Repository, c: Counts, blobs: &HashSet<Id>) -> Result<Usage> {
    let index = repo.index();
    let mut u = Usage {
        files: c.files,
        dirs: c.dirs,
        others: c.others,
        restore_size: c.restore_size,
        ..Usage::default()
    };
    for id in blobs {
        let loc = index.get(id).ok_or_else(|| Error::MissingBlob {
            kind: "a",
            id: id.short(),
            context: String::new(),
        })?;
        match loc.kind {
            BlobKind::Data => u.data_blobs += 1,
            BlobKind::Tree => u.tree_blobs += 1,
        }
        u.dedup_size += loc.raw_len as u64;
        u.stored_size += loc.sealed_len as u64;
    }
    u.compression_ratio = ratio(u.dedup_size, u.stored_size);
    u.dedup_ratio = ratio(u.restore_size, u.dedup_size);
    Ok(u)
}

/// Adds the blobs of tree `id` (and below) to `blobs`; returns its entry counts.
fn walk(
    repo: &Repository,
    id: &Id,
    blobs: &mut HashSet<Id>,
    memo: &mut HashMap<Id, Counts>,
) -> Result<Counts> {
    if !blobs.insert(*id) {
        // Seen in this snapshot: its blobs are in, its counts known.
        if let Some(c) = memo.get(id) {
            return Ok(*c);
        }
    }
    let tree = repo.load_tree(id)?;
    let mut c = Counts::default();
    for node in &tree.nodes {
        match &node.kind {
            NodeKind::Dir { subtree } => {
                c.dirs += 1;
                c.add(walk(repo, subtree, blobs, memo)?);
            }
            NodeKind::File { content } => {
                c.files += 1;
                c.restore_size += node.size;
                add_blobs(repo, content, blobs)?;
            }
            _ => c.others += 1,
        }
    }
    memo.insert(*id, c);
    Ok(c)
}

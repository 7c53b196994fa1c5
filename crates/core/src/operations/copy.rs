//! Copy: snapshots from one repository into another (an offsite copy).
//!
//! The destination stores what it lacks, encrypted with its own keys; the source is
//! only read. A copied snapshot records the id it was first taken as
//! ([`Snapshot::original`]), so copying again skips it: an interrupted copy, run again,
//! copies the snapshots still missing, and only the blobs still missing.
//!
//! When the destination names and cuts blobs as the source does (made with
//! [`Repository::init_like`]), every blob keeps its id: trees are copied as they are,
//! each blob the destination lacks is read once, and a delta blob is stored against the
//! same base again (snapshots are copied oldest first, each in its own write session,
//! so the bases of a night are stored before it). Otherwise blob ids differ between the
//! repositories and every file is cut again with the destination's chunker; that reads
//! every file of every snapshot copied, and the report says so.

use crate::error::{Error, Result};
use crate::formats::content::{ContentBuilder, ContentWalk};
use crate::formats::id::{BlobKind, Id};
use crate::formats::repo_config::PARTS_VERSION;
use crate::formats::snapshot::Snapshot;
use crate::formats::tree::{Extent, Node, NodeKind, Tree};
use crate::report::WriteStats;
use crate::repository::Repository;
use crate::store::{with_writer, BlobWriter};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Blobs read from the source at once (pack by pack, many requests in flight), and the
/// most plaintext bytes a batch may hold.
const READ_BATCH: usize = 1024;
const READ_BATCH_BYTES: u64 = 64 << 20;

/// What a copy did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CopyReport {
    /// Snapshots copied, as (source id, destination id).
    pub copied: Vec<(Id, Id)>,
    /// Source snapshots the destination already holds.
    pub skipped: Vec<Id>,
    /// The destination cuts blobs differently: every file was read and cut again.
    pub rechunked: bool,
    /// Blobs read from the source.
    pub blobs_read: u64,
    /// Plaintext bytes read from the source.
    pub bytes_read: u64,
    /// What the destination stored.
    pub added: WriteStats,
}

/// The original id of a snapshot: its own, or the one it was copied from.
fn original(id: &Id, s: &Snapshot) -> Id {
    s.original.unwrap_or(*id)
}

/// Copies `snapshots` of `src` (oldest first) into `dst`, skipping those `dst` already
/// holds. `workers` compress and seal in the destination (0: one per core).
pub fn copy(
    src: &Repository,
    dst: &Repository,
    snapshots: &[(Id, Snapshot)],
    workers: usize,
) -> Result<CopyReport> {
    src.require_full()?;
    dst.require_full()?;
    src.load_index()?;
    dst.load_index()?;
    let held: HashSet<Id> = dst
        .snapshots()?
        .iter()
        .map(|(id, s)| original(id, s))
        .collect();
    let mut todo: Vec<&(Id, Snapshot)> = snapshots.iter().collect();
    todo.sort_by_key(|(_, s)| s.time);
    let workers = if workers == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        workers
    };
    // Trees are copied as they are only into a repository that can hold what they
    // name: parts need version 3 (a version 2 destination gets whole chunks).
    let same = dst.chunks_like(src)
        && (dst.config().version >= PARTS_VERSION || src.config().version < PARTS_VERSION);
    let pool = crate::fetch::reading_pool(src.backend().parallelism(), "cairn-copy")?;
    let mut report = CopyReport {
        rechunked: !same,
        ..CopyReport::default()
    };
    // Source ids of the snapshots copied in this run, to keep parents pointing within
    // the destination.
    let mut copied: HashMap<Id, Id> = HashMap::new();
    for (id, snap) in todo {
        if held.contains(&original(id, snap)) {
            report.skipped.push(*id);
            continue;
        }
        let mut read = (0u64, 0u64);
        let (tree, added) = with_writer(dst, workers, |w| {
            let mut c = Copier {
                src,
                dst,
                w,
                pool: &pool,
                same,
                trees: HashMap::new(),
                read: &mut read,
            };
            c.tree(&snap.tree, streams_of(snap))
        })?;
        report.blobs_read += read.0;
        report.bytes_read += read.1;
        report.added = add_stats(report.added, added);
        let mut copy = snap.clone();
        copy.tree = tree;
        copy.original = Some(original(id, snap));
        copy.parent = snap.parent.and_then(|p| copied.get(&p).copied());
        let new = dst.save_snapshot(&copy)?;
        copied.insert(*id, new);
        report.copied.push((*id, new));
    }
    Ok(report)
}

fn add_stats(a: WriteStats, b: WriteStats) -> WriteStats {
    WriteStats {
        data_blobs: a.data_blobs + b.data_blobs,
        tree_blobs: a.tree_blobs + b.tree_blobs,
        bytes_raw: a.bytes_raw + b.bytes_raw,
        bytes_stored: a.bytes_stored + b.bytes_stored,
        packs: a.packs + b.packs,
    }
}

/// The paths (from the root, without the leading `/`) of a snapshot's streams: cut
/// again with the streams' chunker, files with the files'.
fn streams_of(snap: &Snapshot) -> HashSet<String> {
    snap.summary
        .iter()
        .flat_map(|s| s.streams.iter())
        .map(|s| s.name.trim_start_matches('/').to_string())
        .collect()
}

struct Copier<'a, 'w> {
    src: &'a Repository,
    dst: &'a Repository,
    w: &'a BlobWriter<'w>,
    /// Threads that read from the source.
    pool: &'a rayon::ThreadPool,
    same: bool,
    /// Trees copied in this session: source id to destination id.
    trees: HashMap<Id, Id>,
    /// Blobs and plaintext bytes read from the source.
    read: &'a mut (u64, u64),
}

impl Copier<'_, '_> {
    fn read(&mut self, id: &Id) -> Result<(Vec<u8>, Option<Id>)> {
        let (plain, _, base) = self
            .src
            .read_blob_depth(id, crate::formats::pack::MAX_DELTA_DEPTH)?;
        self.read.0 += 1;
        self.read.1 += plain.len() as u64;
        Ok((plain, base))
    }

    /// Copies the tree `id` and everything below it; returns its id in the destination.
    /// `streams` are the snapshot's stream paths, for cutting again.
    fn tree(&mut self, id: &Id, streams: HashSet<String>) -> Result<Id> {
        self.subtree(id, "", &streams)
    }

    fn subtree(&mut self, id: &Id, path: &str, streams: &HashSet<String>) -> Result<Id> {
        if let Some(done) = self.trees.get(id) {
            return Ok(*done);
        }
        let tree = self.src.load_tree(id)?;
        let mut nodes = Vec::with_capacity(tree.nodes.len());
        for node in tree.nodes {
            let p = format!("{path}{}", String::from_utf8_lossy(&node.name));
            let kind = match node.kind {
                NodeKind::Dir { subtree } => NodeKind::Dir {
                    subtree: self.subtree(&subtree, &format!("{p}/"), streams)?,
                },
                NodeKind::File { content } => NodeKind::File {
                    content: if self.same {
                        self.content(&content)?;
                        content
                    } else {
                        self.recut(&content, streams.contains(&p))?
                    },
                },
                other => other,
            };
            nodes.push(Node { kind, ..node });
        }
        let new = Tree { nodes };
        let new_id = if self.same {
            // The same bytes, so the same id: store it as it is.
            let bytes = self.src.read_blob(id)?;
            self.w.add(BlobKind::Tree, &bytes)?;
            *id
        } else {
            self.w.add_tree(&new)?
        };
        self.trees.insert(*id, new_id);
        Ok(new_id)
    }

    /// Copies the blobs of a content the destination lacks (same ids on both sides).
    fn content(&mut self, content: &[Extent]) -> Result<()> {
        let mut lists: Vec<Id> = crate::formats::content::lists_in(content).collect();
        let mut data: Vec<Id> = content.iter().filter_map(Extent::data_blob).collect();
        // Every list is read, even one the destination holds: after an interrupted copy
        // the destination may hold a list without all of its blobs.
        while let Some(list) = lists.pop() {
            let (bytes, _) = self.read(&list)?;
            let extents =
                crate::formats::content::decode_list(&bytes, &format!("list {}", list.short()))?;
            lists.extend(crate::formats::content::lists_in(&extents));
            data.extend(extents.iter().filter_map(Extent::data_blob));
            self.w.add(BlobKind::Tree, &bytes)?;
        }
        let mut seen = HashSet::new();
        let missing: Vec<Id> = data
            .into_iter()
            .filter(|id| seen.insert(*id) && !self.dst.index().contains(id))
            .collect();
        // Read a batch at a time (the batch bounds the memory held), pack by pack with
        // many requests in flight: remote storage answers each request after a round
        // trip. The blobs are added in their order, whatever order they arrive in.
        let src = self.src;
        let mut batches: Vec<&[Id]> = Vec::new();
        let (mut start, mut bytes) = (0, 0u64);
        for (i, id) in missing.iter().enumerate() {
            bytes += src.index().get(id).map_or(0, |l| l.raw_len as u64);
            if i + 1 - start == READ_BATCH || bytes >= READ_BATCH_BYTES || i + 1 == missing.len() {
                batches.push(&missing[start..=i]);
                (start, bytes) = (i + 1, 0);
            }
        }
        for batch in batches {
            let mut read = crate::fetch::fetch_map(src, self.pool, batch);
            for id in batch {
                // A blob that could not be read is read again alone, for its error.
                let (plain, base) = match read.remove(id) {
                    Some(b) => b,
                    None => src
                        .read_blob_depth(id, crate::formats::pack::MAX_DELTA_DEPTH)
                        .map(|(plain, _, base)| (plain, base))?,
                };
                self.read.0 += 1;
                self.read.1 += plain.len() as u64;
                self.w
                    .add_with_base(BlobKind::Data, &plain, &mut |_, _| Ok([base, None]))?;
            }
        }
        Ok(())
    }

    /// Cuts a content again with the destination's chunker; returns its new extents.
    /// Memory: one run of extents per list level and the bytes not cut yet.
    fn recut(&mut self, content: &[Extent], stream: bool) -> Result<Vec<Extent>> {
        let chunker = if stream {
            self.dst.streams_chunker()
        } else {
            self.dst.files_chunker()
        };
        let src = self.src;
        let mut out = ContentBuilder::new();
        let mut buf: Vec<u8> = Vec::new();
        for item in ContentWalk::new(src, content) {
            let (e, len) = item?;
            match e {
                Extent::Data(id) | Extent::Part { id, .. } => {
                    let plain = src.read_blob(&id)?;
                    self.read.0 += 1;
                    self.read.1 += plain.len() as u64;
                    buf.extend_from_slice(crate::formats::content::extent_bytes(&e, &plain)?);
                    cut(self.w, chunker, &mut buf, &mut out, false)?;
                }
                Extent::Hole(n) => {
                    cut(self.w, chunker, &mut buf, &mut out, true)?;
                    out.push(Extent::Hole(n), len, &mut |l| {
                        self.w.add(BlobKind::Tree, l).map(|(id, _)| id)
                    })?;
                }
                Extent::List { .. } => {
                    return Err(Error::Invalid("a content walk yielded a list".into()))
                }
            }
        }
        cut(self.w, chunker, &mut buf, &mut out, true)?;
        Ok(out.finish())
    }
}

/// Stores the chunks `chunker` cuts from `buf` (all of it when `eof`) and appends them
/// to `out`; keeps the bytes after the last cut in `buf`.
fn cut(
    w: &BlobWriter<'_>,
    chunker: &cairn_chunker::Chunker,
    buf: &mut Vec<u8>,
    out: &mut ContentBuilder,
    eof: bool,
) -> Result<()> {
    let mut start = 0;
    while start < buf.len() {
        let Some(n) = chunker.next_cut(&buf[start..], eof) else {
            break;
        };
        let (id, _) = w.add(BlobKind::Data, &buf[start..start + n])?;
        out.push(Extent::Data(id), n as u64, &mut |l| {
            w.add(BlobKind::Tree, l).map(|(id, _)| id)
        })?;
        start += n;
    }
    buf.drain(..start);
    Ok(())
}

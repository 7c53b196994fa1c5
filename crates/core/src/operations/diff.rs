//! Differences between two snapshots (or any two trees).
//!
//! Both trees are walked together, entry by entry in name order (trees are sorted by
//! name bytes). A directory whose subtree id is the same on both sides holds the same
//! entries, so it is not read at all: a diff costs reading the trees that changed.
//!
//! An added or removed directory is one change (its path with a trailing `/`), not one
//! per entry below it. File contents are compared by their extent lists: equal contents
//! give equal lists (chunking and list blobs are content-defined), so no data is read.
//! Small files stored as parts of shared chunks are the exception: their bytes are
//! compared when their lists differ (see `same_bytes`).

use crate::error::Result;
use crate::formats::id::Id;
use crate::formats::snapshot::Snapshot;
use crate::formats::tree::{Extent, Node, NodeKind};
use crate::repository::Repository;
use serde::Serialize;

/// What happened to a path between the first and the second tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Only in the second tree.
    Added,
    /// Only in the first tree.
    Removed,
    /// A file whose contents differ.
    Changed,
    /// Same contents, but mode, owner, modification time, extended attributes, a link
    /// target or a device number differ.
    MetadataOnly,
    /// The entry's type differs (a file replaced by a symlink, a directory by a file...).
    TypeChanged,
}

impl ChangeKind {
    /// The one-letter mark shown by `cairn diff`: `+`, `-`, `M`, `U`, `T`.
    pub fn mark(self) -> char {
        match self {
            ChangeKind::Added => '+',
            ChangeKind::Removed => '-',
            ChangeKind::Changed => 'M',
            ChangeKind::MetadataOnly => 'U',
            ChangeKind::TypeChanged => 'T',
        }
    }
}

/// One difference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Absolute path in the snapshot (names shown lossily as UTF-8); a directory's path
    /// ends with `/` (for a type change: when it is a directory in the second tree).
    pub path: String,
    /// What changed.
    pub kind: ChangeKind,
}

impl Change {
    /// True if the path names a directory.
    pub fn is_dir(&self) -> bool {
        self.path.ends_with('/')
    }
}

/// Counts of changes by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DiffSummary {
    /// Paths added.
    pub added: usize,
    /// Paths removed.
    pub removed: usize,
    /// Files whose contents changed.
    pub changed: usize,
    /// Paths whose metadata only changed.
    pub metadata_only: usize,
    /// Paths whose type changed.
    pub type_changed: usize,
}

impl DiffSummary {
    /// Counts `changes` by kind.
    pub fn of(changes: &[Change]) -> DiffSummary {
        let mut s = DiffSummary::default();
        for c in changes {
            s.add(c.kind);
        }
        s
    }

    /// Counts one change.
    pub fn add(&mut self, kind: ChangeKind) {
        match kind {
            ChangeKind::Added => self.added += 1,
            ChangeKind::Removed => self.removed += 1,
            ChangeKind::Changed => self.changed += 1,
            ChangeKind::MetadataOnly => self.metadata_only += 1,
            ChangeKind::TypeChanged => self.type_changed += 1,
        }
    }

    /// All changes.
    pub fn total(&self) -> usize {
        self.added + self.removed + self.changed + self.metadata_only + self.type_changed
    }
}

/// The differences from snapshot `a` to snapshot `b`, in path order.
pub fn diff(repo: &Repository, a: &Snapshot, b: &Snapshot) -> Result<Vec<Change>> {
    diff_trees(repo, &a.tree, &b.tree)
}

/// The differences from the tree `a` to the tree `b` (root tree ids), in path order.
pub fn diff_trees(repo: &Repository, a: &Id, b: &Id) -> Result<Vec<Change>> {
    let mut out = Vec::new();
    diff_trees_with(repo, a, b, &mut |c| {
        out.push(c);
        Ok(())
    })?;
    Ok(out)
}

/// Like [`diff_trees`], handing each change to `emit` as it is found (depth first, in
/// name order), so that no list of changes is held.
pub fn diff_trees_with(
    repo: &Repository,
    a: &Id,
    b: &Id,
    emit: &mut dyn FnMut(Change) -> Result<()>,
) -> Result<()> {
    walk(repo, a, b, "", emit, &mut Blobs::default())
}

/// The data blobs read last while comparing files (see [`same_bytes`]).
#[derive(Default)]
struct Blobs(std::collections::VecDeque<(Id, Vec<u8>)>);

impl Blobs {
    /// At most this many are kept: the small files of a directory share a few chunks.
    const KEEP: usize = 4;

    fn get(&mut self, repo: &Repository, id: &Id) -> Result<&[u8]> {
        if let Some(i) = self.0.iter().position(|(k, _)| k == id) {
            return Ok(&self.0[i].1);
        }
        if self.0.len() == Self::KEEP {
            self.0.pop_front();
        }
        self.0.push_back((*id, repo.read_blob(id)?));
        Ok(&self.0.back().expect("just pushed").1)
    }
}

/// Files stored with others (parts of shared chunks, see decision 0027) have no extent
/// list of their own: the same bytes stored on two nights may name different chunks.
/// Two contents of equal size where either has a part are compared by their bytes.
fn same_bytes(repo: &Repository, a: &[Extent], b: &[Extent], blobs: &mut Blobs) -> Result<bool> {
    let flat = |c: &[Extent]| -> Option<Vec<Extent>> {
        c.iter()
            .all(|e| e.data_blob().is_some())
            .then(|| c.to_vec())
    };
    let has_part = |c: &[Extent]| c.iter().any(|e| matches!(e, Extent::Part { .. }));
    if !(has_part(a) || has_part(b)) {
        return Ok(false);
    }
    let (Some(a), Some(b)) = (flat(a), flat(b)) else {
        return Ok(false);
    };
    let mut bytes_a = Vec::new();
    for e in &a {
        let id = e.data_blob().expect("flat");
        bytes_a.extend_from_slice(crate::formats::content::extent_bytes(
            e,
            blobs.get(repo, &id)?,
        )?);
    }
    let mut at = 0usize;
    for e in &b {
        let id = e.data_blob().expect("flat");
        let part = crate::formats::content::extent_bytes(e, blobs.get(repo, &id)?)?;
        if bytes_a.get(at..at + part.len()) != Some(part) {
            return Ok(false);
        }
        at += part.len();
    }
    Ok(at == bytes_a.len())
}

fn walk(
    repo: &Repository,
    a: &Id,
    b: &Id,
    prefix: &str,
    emit: &mut dyn FnMut(Change) -> Result<()>,
    blobs: &mut Blobs,
) -> Result<()> {
    if a == b {
        return Ok(());
    }
    let ta = repo.load_tree(a)?;
    let tb = repo.load_tree(b)?;
    let (mut i, mut j) = (0, 0);
    while i < ta.nodes.len() || j < tb.nodes.len() {
        let order = match (ta.nodes.get(i), tb.nodes.get(j)) {
            (Some(x), Some(y)) => x.name.cmp(&y.name),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let n = &ta.nodes[i];
                emit(change(prefix, n, ChangeKind::Removed))?;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                let n = &tb.nodes[j];
                emit(change(prefix, n, ChangeKind::Added))?;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (&ta.nodes[i], &tb.nodes[j]);
                compare(repo, prefix, x, y, emit, blobs)?;
                i += 1;
                j += 1;
            }
        }
    }
    Ok(())
}

fn path_of(prefix: &str, n: &Node) -> String {
    format!("{prefix}/{}", n.display_name())
}

fn change(prefix: &str, n: &Node, kind: ChangeKind) -> Change {
    let mut path = path_of(prefix, n);
    if matches!(n.kind, NodeKind::Dir { .. }) {
        path.push('/');
    }
    Change { path, kind }
}

/// Compares two entries of the same name.
fn compare(
    repo: &Repository,
    prefix: &str,
    x: &Node,
    y: &Node,
    emit: &mut dyn FnMut(Change) -> Result<()>,
    blobs: &mut Blobs,
) -> Result<()> {
    match (&x.kind, &y.kind) {
        (NodeKind::Dir { subtree: sa }, NodeKind::Dir { subtree: sb }) => {
            if !same_metadata(x, y) {
                emit(change(prefix, y, ChangeKind::MetadataOnly))?;
            }
            walk(repo, sa, sb, &path_of(prefix, y), emit, blobs)
        }
        (NodeKind::File { content: ca }, NodeKind::File { content: cb }) => {
            let differ = x.size != y.size || (ca != cb && !same_bytes(repo, ca, cb, blobs)?);
            if differ {
                emit(change(prefix, y, ChangeKind::Changed))
            } else if !same_metadata(x, y) {
                emit(change(prefix, y, ChangeKind::MetadataOnly))
            } else {
                Ok(())
            }
        }
        (a, b) if std::mem::discriminant(a) != std::mem::discriminant(b) => {
            emit(change(prefix, y, ChangeKind::TypeChanged))
        }
        // Same type, no content: symlinks, devices, fifos, sockets.
        (a, b) => {
            if a != b || !same_metadata(x, y) {
                emit(change(prefix, y, ChangeKind::MetadataOnly))
            } else {
                Ok(())
            }
        }
    }
}

/// Metadata a user sets or sees: permission bits, owner, modification time, extended
/// attributes. Not ctime, inode, device or link count, which change without the entry
/// changing (a copy, a restore, a new hard link).
fn same_metadata(x: &Node, y: &Node) -> bool {
    x.mode == y.mode
        && x.uid == y.uid
        && x.gid == y.gid
        && x.mtime == y.mtime
        && x.xattrs == y.xattrs
}

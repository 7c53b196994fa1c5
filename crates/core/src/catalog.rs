//! The catalog port: a local, disposable index of one repository.
//!
//! The repository is the truth; a catalog only saves work. It remembers what has already
//! been read from the repository, so that it need not be read (and decrypted, and on
//! remote storage downloaded) again:
//! - **Snapshots**: every snapshot file already read. Listing snapshots then costs one
//!   listing of the snapshot names plus reading the new ones; names that are gone (forgotten
//!   on another machine) are dropped from the catalog at the same time. See
//!   [`Repository::snapshots`](crate::Repository::snapshots).
//! - **Trees**: the plaintext of tree blobs, that is the per-file metadata (names, sizes,
//!   times, inodes, contents) of every directory of every snapshot, stored once per
//!   distinct directory. Incremental backups compare files with the parent snapshot's
//!   trees, and `find`, `ls`, `diff`, `stats` and `restore` walk trees: all are served from
//!   here when the catalog has them.
//!
//! What makes a stale or damaged catalog harmless:
//! - a cached tree is used only when the in-memory index (read from the repository) lists
//!   it, and only if its keyed hash equals its id; otherwise it is read from the
//!   repository. So the catalog never makes a blob appear that the repository lacks, and
//!   never changes a byte.
//! - snapshot names are listed from the repository on every use; the catalog supplies
//!   only the contents of names still listed, and those files are immutable and named by
//!   the hash of their bytes.
//! - `check`, `prune` and `repair` read the repository itself, never the catalog.
//!
//! The contract below is what [`Repository`](crate::Repository) relies on; the SQLite
//! implementation is `cairn-catalog`'s, an in-memory one is in `cairn-testing`.

use crate::error::Result;
use crate::id::Id;
use crate::snapshot::Snapshot;

/// A local index of one repository. All methods may be called from several threads at
/// once, and several processes may share one catalog: every write is one transaction,
/// and a writer waits for another rather than failing at once.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// Where the catalog is, for messages (a file path).
    fn location(&self) -> String;

    /// Every snapshot held, in any order.
    fn snapshots(&self) -> Result<Vec<(Id, Snapshot)>>;

    /// Adds `add` (replacing a snapshot with the same id, which has the same contents)
    /// and removes `remove` (ids not held are ignored), in one transaction: after an
    /// error, neither happened.
    fn update_snapshots(&self, add: &[(Id, Snapshot)], remove: &[Id]) -> Result<()>;

    /// The plaintext of a cached tree blob, if held. The caller verifies it.
    fn tree(&self, id: &Id) -> Result<Option<Vec<u8>>>;

    /// Caches tree blobs; ids already held are left as they are (the same id is the
    /// same bytes, and a backup offers every tree it meets).
    fn put_trees(&self, trees: &[(Id, Vec<u8>)]) -> Result<()>;

    /// Replaces a held tree's bytes (a row found damaged) or adds it.
    fn replace_tree(&self, id: &Id, body: &[u8]) -> Result<()>;

    /// Drops every cached tree for which `keep` is false; returns how many went.
    fn retain_trees(&self, keep: &mut dyn FnMut(&Id) -> bool) -> Result<u64>;

    /// Drops everything held (snapshots and trees).
    fn clear(&self) -> Result<()>;

    /// Counts and sizes, for `cairn catalog info`.
    fn info(&self) -> Result<CatalogInfo>;
}

/// What a catalog holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CatalogInfo {
    /// Where it is.
    pub location: String,
    /// Its schema version.
    pub schema_version: u32,
    /// Snapshots held.
    pub snapshots: u64,
    /// Trees held.
    pub trees: u64,
    /// Bytes of tree plaintext held.
    pub tree_bytes: u64,
    /// Size on disk (0 when not on disk).
    pub file_bytes: u64,
}

/// Reads every distinct tree below `roots` through the catalog, so that it holds them all
/// (`cairn catalog rebuild`); returns how many distinct trees there are.
pub fn cache_trees(repo: &crate::Repository, roots: impl IntoIterator<Item = Id>) -> Result<u64> {
    let mut seen = std::collections::HashSet::new();
    let mut stack: Vec<Id> = roots.into_iter().collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for node in repo.load_tree(&id)?.nodes {
            if let crate::NodeKind::Dir { subtree } = node.kind {
                stack.push(subtree);
            }
        }
    }
    repo.flush_catalog();
    Ok(seen.len() as u64)
}

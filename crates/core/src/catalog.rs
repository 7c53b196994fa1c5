//! The catalog port: a local, disposable index of one repository.
//!
//! The repository is the truth; a catalog only saves work. It remembers what has already
//! been read from the repository, so that it need not be read (and, on remote storage,
//! downloaded) again:
//! - **Snapshots**: every snapshot file already read. Listing snapshots then costs one
//!   listing of the snapshot names plus reading the new ones; names that are gone (forgotten
//!   on another machine) are dropped from the catalog at the same time. See
//!   [`Repository::snapshots`](crate::Repository::snapshots).
//! - **Trees**: tree blobs, that is the per-file metadata (names, sizes, times, inodes,
//!   contents) of every directory of every snapshot, stored once per distinct directory.
//!   Incremental backups compare files with the parent snapshot's trees, and `find`, `ls`,
//!   `diff`, `stats` and `restore` walk trees: all are served from here when the catalog
//!   has them.
//!
//! **Nothing but ids and times is in clear.** A snapshot's JSON and a tree's plaintext are
//! sealed here, in cairn-core, by a [`CatalogKey`] before they reach a [`Catalog`], so an
//! implementation (the SQLite one) only ever holds [`SnapshotRow`]s and sealed tree bodies:
//! opaque bytes next to the ids (and a snapshot's time) that its queries need. The key is
//! derived from the repository's id key, which full and put-only keys both hold (a put-only
//! client keeps a catalog of the trees it stored), and every row's associated data names
//! its id, so a row moved to another id does not open.
//!
//! What makes a stale, damaged or foreign catalog harmless:
//! - a row that does not open (damaged, sealed under another key, moved) is a miss: the
//!   repository is read and the row replaced. It never fails a command.
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
use crate::formats::id::Id;
use crate::formats::snapshot::Snapshot;
use cairn_crypto::Key;

/// A local index of one repository. All methods may be called from several threads at
/// once, and several processes may share one catalog: every write is one transaction,
/// and a writer waits for another rather than failing at once.
pub trait Catalog: Send + Sync + std::fmt::Debug {
    /// Where the catalog is, for messages (a file path).
    fn location(&self) -> String;

    /// Every snapshot row held, in any order, exactly as added.
    fn snapshots(&self) -> Result<Vec<SnapshotRow>>;

    /// Adds `add` (replacing a row with the same id: the same snapshot, or a row found
    /// damaged) and removes `remove` (ids not held are ignored), in one transaction:
    /// after an error, neither happened.
    fn update_snapshots(&self, add: &[SnapshotRow], remove: &[Id]) -> Result<()>;

    /// The sealed body of a cached tree blob, if held, exactly as put. The caller opens
    /// and verifies it.
    fn tree(&self, id: &Id) -> Result<Option<Vec<u8>>>;

    /// Caches sealed tree bodies; ids already held are left as they are (the same id is
    /// the same tree, and a backup offers every tree it meets).
    fn put_trees(&self, trees: &[(Id, Vec<u8>)]) -> Result<()>;

    /// Replaces a held tree's sealed body (a row found damaged) or adds it.
    fn replace_tree(&self, id: &Id, sealed: &[u8]) -> Result<()>;

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
    /// Bytes of sealed tree bodies held.
    pub tree_bytes: u64,
    /// Size on disk (0 when not on disk).
    pub file_bytes: u64,
}

/// A snapshot as a catalog holds it: its id and time in clear (all that queries need),
/// the rest sealed by [`CatalogKey::seal_snapshot`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotRow {
    /// The snapshot file's name.
    pub id: Id,
    /// The snapshot's time, in seconds since 1970 (bound into the seal: a row whose
    /// time was changed does not open).
    pub unix_time: i64,
    /// `seal(catalog key, "cairn catalog snapshot" | id | unix_time, snapshot JSON)`.
    pub sealed: Vec<u8>,
}

/// The context of the catalog key's derivation from the id key. Distinct from every other
/// derivation (the send log's is "cairn 2026 put-only send log"), so the catalog key
/// opens nothing else and nothing else opens catalog rows.
const CATALOG_KEY_CONTEXT: &str = "cairn 2026 catalog";

/// Associated data of a sealed tree row: this prefix, then the tree's id.
const AD_TREE: &[u8] = b"cairn catalog tree";
/// Associated data of a sealed snapshot row: this prefix, the snapshot's id, then its
/// `unix_time` (i64 LE).
const AD_SNAPSHOT: &[u8] = b"cairn catalog snapshot";

/// Seals and opens catalog rows: XChaCha20-Poly1305 ([`cairn_crypto::seal`]) under
/// `id_key.derive("cairn 2026 catalog")`, the associated data naming the row's id (and a
/// snapshot's time), so that rows cannot be swapped or edited unnoticed.
///
/// Opening never fails loudly: a row that does not open is `None`, which callers treat as
/// a miss (read from the repository and replace the row).
#[derive(Clone)]
pub struct CatalogKey(Key);

impl std::fmt::Debug for CatalogKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CatalogKey([redacted])")
    }
}

impl CatalogKey {
    /// The catalog key of the repository whose id key is `id_key`.
    pub fn new(id_key: &Key) -> CatalogKey {
        CatalogKey(id_key.derive(CATALOG_KEY_CONTEXT))
    }

    fn tree_ad(id: &Id) -> [u8; AD_TREE.len() + 32] {
        let mut ad = [0u8; AD_TREE.len() + 32];
        ad[..AD_TREE.len()].copy_from_slice(AD_TREE);
        ad[AD_TREE.len()..].copy_from_slice(&id.0);
        ad
    }

    fn snapshot_ad(id: &Id, unix_time: i64) -> [u8; AD_SNAPSHOT.len() + 40] {
        let mut ad = [0u8; AD_SNAPSHOT.len() + 40];
        let (prefix, rest) = ad.split_at_mut(AD_SNAPSHOT.len());
        prefix.copy_from_slice(AD_SNAPSHOT);
        rest[..32].copy_from_slice(&id.0);
        rest[32..].copy_from_slice(&unix_time.to_le_bytes());
        ad
    }

    /// Seals a tree's plaintext for the row of `id`.
    pub fn seal_tree(&self, id: &Id, plain: &[u8]) -> Vec<u8> {
        cairn_crypto::seal(&self.0, &Self::tree_ad(id), plain)
    }

    /// Opens the sealed body of the row of `id`; `None` if it does not open.
    pub fn open_tree(&self, id: &Id, sealed: &[u8]) -> Option<Vec<u8>> {
        cairn_crypto::open(&self.0, &Self::tree_ad(id), sealed).ok()
    }

    /// The row of snapshot `id`.
    pub fn seal_snapshot(&self, id: &Id, snap: &Snapshot) -> SnapshotRow {
        let unix_time = snap.time.as_second();
        let json = serde_json::to_vec(snap).expect("snapshot serializes");
        SnapshotRow {
            id: *id,
            unix_time,
            sealed: cairn_crypto::seal(&self.0, &Self::snapshot_ad(id, unix_time), &json),
        }
    }

    /// The snapshot of a row; `None` if it does not open (or, written by a bug, does not
    /// parse, or its time is not the row's).
    pub fn open_snapshot(&self, row: &SnapshotRow) -> Option<Snapshot> {
        let ad = Self::snapshot_ad(&row.id, row.unix_time);
        let json = cairn_crypto::open(&self.0, &ad, &row.sealed).ok()?;
        let snap: Snapshot = serde_json::from_slice(&json).ok()?;
        (snap.time.as_second() == row.unix_time).then_some(snap)
    }
}

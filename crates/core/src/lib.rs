//! cairn-core: the repository format and everything done with a repository.
//!
//! Main types:
//! - [`Repository`]: an opened repository (keys, config, index). Obtained only through
//!   [`Repository::init`] or [`Repository::open`], so nothing runs on a repository whose
//!   key is not known.
//! - [`Backend`]: the port to storage (local directory, SFTP, object storage), with its
//!   contract in prose; implementations live in `cairn-backend`.
//! - [`backup()`] with [`BackupOptions`] and [`StreamSource`]: file trees and streams
//!   into one snapshot. [`restore()`], [`check()`], and [`browse`] for reading back.
//! - The formats: [`Snapshot`], [`Tree`]/[`Node`], packs and index files (see
//!   `docs/format.md` for every byte).
//! - [`Catalog`]: the port to the local, disposable index of a repository (snapshots and
//!   trees already read, sealed by a [`CatalogKey`] so that only ids and times are in
//!   clear); implemented on SQLite in `cairn-catalog`.
//! - [`Policy`]: retention, a pure function of (snapshots, policy, now, time zone) that
//!   says which snapshots `forget` keeps and why ([`Group`], [`Decision`], [`Reason`]).
//!
//! What it is not: it parses no command lines, opens no database and speaks no network
//! protocol; those are the binary's, `cairn-catalog`'s and `cairn-backend`'s.

mod backend;
mod backup;
pub mod browse;
mod catalog;
mod check;
mod compression;
mod config;
pub mod content;
mod copies;
mod copy;
mod delta;
mod diff;
mod error;
mod exclude;
mod fetch;
mod find;
#[doc(hidden)]
pub mod fuzzing;
mod history;
mod id;
mod index;
mod keys;
mod lock;
mod pack;
mod padding;
mod platform;
mod prune;
mod repair;
mod repository;
mod restore;
mod operations;
mod rewrite;
mod rotate;
mod sealed;
mod select;
mod sendlog;
mod snapshot;
mod stats;
mod store;
mod tree;

pub use backend::{validate_name, Backend, BackendError, FileKind, MAX_NAME_LEN};
pub use backup::{
    backup, scan, BackupOptions, BackupResult, BackupSummary, ManifestFinish, NoProgress, Observer,
    ParentChoice, Progress, StreamSource, StreamSummary, Warning, WarningKind,
};
pub use catalog::{cache_trees, Catalog, CatalogInfo, CatalogKey, SnapshotRow};
pub use check::{
    check, verify_snapshot, CheckOptions, CheckProgress, CheckReport, DataSubset, SnapshotVerified,
};
pub use config::{InitOptions, RepoConfig, DELTA_VERSION, REPO_VERSION};
pub use copies::{copies_status, human_age, CopiesPolicy, GroupCopies, Holding, Placement};
pub use copy::{copy, CopyReport};
pub use diff::{diff, diff_trees, diff_trees_with, Change, ChangeKind, DiffSummary};
pub use error::{Error, Result};
pub use exclude::Excludes;
pub use find::{find, name_pattern, Found};
pub use id::{BlobKind, Id};
pub use index::{BlobLocation, Index, PackInfo};
pub use keys::{KeyFile, MasterKey};
pub use lock::{FoundLock, Lock, LockInfo, REFRESH_EVERY, STALE_AFTER};
pub use pack::PackEntry;
pub use platform::{
    command, hostname, is_root, is_secret_env, secret_env, secret_env_names, secret_envs,
    take_secret_env, username,
};
pub use prune::{prune, PruneOptions, PruneReport, DEFAULT_MAX_UNUSED};
pub use repair::{repair_index, repair_snapshot, RepairIndexReport, RepairSnapshotReport};
pub use repository::{
    select_snapshot, CatalogTrouble, KeyInfo, OpenOptions, Repository, SnapshotsAndDamage,
    SnapshotsAndDamaged, Warn, PUT_ONLY,
};
pub use restore::{restore, RestoreOptions, RestoreSummary};
pub use operations::retention::{
    Decision, Group, GroupBy, GroupKey, Policy, Reason, PROTECTED_TAG, RESTORE_POINTS_KEPT,
    RESTORE_POINTS_KEPT_DAYS, RESTORE_POINT_TAG,
};
pub use rewrite::{
    earlier_epoch_files, rewrite_data, rotate_and_rewrite, RewriteProgress, RewriteReport,
};
pub use rotate::{rotate, RotateReport};
pub use sealed::{Envelope, FORMAT_VERSION};
pub use select::{select as select_snapshot_among, DamagedSnapshot, SnapshotFilter};
pub use snapshot::Snapshot;
pub use stats::{stats, SnapshotStats, Stats, Usage};
pub use store::WriteStats;
pub use tree::{Extent, Node, NodeKind, Time, Tree, Xattr};

pub use cairn_chunker::ChunkerParams;
pub use cairn_crypto::{KdfParams, Password};

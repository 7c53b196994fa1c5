//! cairn-core: the repository format and everything done with a repository.
//!
//! Arrangement, from the ground up (nothing imports upward):
//! - `report`: what operations report ([`Progress`], [`Warning`], [`BackupSummary`],
//!   [`WriteStats`]), shared by every layer and importing nothing of the crate.
//! - `formats/`: the on-disk formats, each with its encoder and decoder: ids, sealed
//!   files, keys, the repository config, padding, compression, packs, the index, trees,
//!   contents and their list blobs, snapshots, lock files, and the two files kept on the
//!   client's disk (history, send log). A format imports only formats, `report`, the
//!   errors and the ports. See `docs/format.md` for every byte.
//! - The top level: the ports [`Backend`] and [`Catalog`], [`Error`], the opened
//!   [`Repository`] (reading what is stored; [`select_snapshot`] and its rules live
//!   beside it), the write path (`store`), reading many blobs at once (`fetch`), and
//!   facts about the machine (`platform`).
//! - `operations/`: what is done with a repository, one module each: [`backup()`],
//!   [`restore()`], [`check()`], [`prune()`], [`copy()`], [`diff()`], [`find()`],
//!   [`stats()`], repair, key rotation and rewrite, [`browse`], the 3-2-1 status of copies,
//!   and retention ([`Policy`]).
//!
//! Main types:
//! - [`Repository`]: an opened repository (keys, config, index). Obtained only through
//!   [`Repository::init`] or [`Repository::open`], so nothing runs on a repository whose
//!   key is not known.
//! - [`Backend`]: the port to storage (local directory, SFTP, object storage), with its
//!   contract in prose; implementations live in `cairn-backend`.
//! - [`backup()`] with [`BackupOptions`] and [`StreamSource`]: file trees and streams
//!   into one snapshot. [`restore()`], [`check()`], and [`browse`] for reading back.
//! - The formats: [`Snapshot`], [`Tree`]/[`Node`], packs and index files.
//! - [`Catalog`]: the port to the local, disposable index of a repository (snapshots and
//!   trees already read, sealed by a [`CatalogKey`] so that only ids and times are in
//!   clear); implemented on SQLite in `cairn-catalog`.
//! - [`Policy`]: retention, a pure function of (snapshots, policy, now, time zone) that
//!   says which snapshots `forget` keeps and why ([`Group`], [`Decision`], [`Reason`]).
//!
//! What it is not: it parses no command lines, opens no database and speaks no network
//! protocol; those are the binary's, `cairn-catalog`'s and `cairn-backend`'s.

mod report;

mod formats;

mod backend;
mod catalog;
mod error;
mod fetch;
mod platform;
mod repository;
mod select;
mod store;

mod operations;

#[doc(hidden)]
pub mod fuzzing;

pub use formats::content;
pub use operations::browse;

pub use backend::{validate_name, Backend, BackendError, FileKind, Staged, MAX_NAME_LEN};
pub use catalog::{Catalog, CatalogInfo, CatalogKey, SnapshotRow};
pub use error::{Error, Result};
pub use formats::id::{BlobKind, Id};
pub use formats::index::{BlobLocation, Index, PackInfo};
pub use formats::keys::{KeyFile, MasterKey};
pub use formats::lock::{FoundLock, Lock, LockInfo, REFRESH_EVERY, STALE_AFTER};
pub use formats::pack::PackEntry;
pub use formats::repo_config::{
    InitOptions, RepoConfig, DELTA_VERSION, PARTS_VERSION, REPO_VERSION,
};
pub use formats::sealed::{Envelope, FORMAT_VERSION};
pub use formats::snapshot::Snapshot;
pub use formats::tree::{Extent, Node, NodeKind, Time, Tree, Xattr};
pub use operations::backup::{
    backup, scan, BackupOptions, BackupResult, ManifestFinish, Observer, ParentChoice, StreamSource,
};
pub use operations::check::{
    check, verify_snapshot, CheckOptions, CheckProgress, CheckReport, DataSubset, SnapshotVerified,
};
pub use operations::copies::{
    copies_status, human_age, CopiesPolicy, GroupCopies, Holding, Placement,
};
pub use operations::copy::{copy, CopyReport};
pub use operations::diff::{diff, diff_trees, diff_trees_with, Change, ChangeKind, DiffSummary};
pub use operations::exclude::Excludes;
pub use operations::find::{find, name_pattern, Found};
pub use operations::prune::{prune, PruneOptions, PruneReport, DEFAULT_MAX_UNUSED};
pub use operations::repair::{
    repair_index, repair_snapshot, RepairIndexReport, RepairSnapshotReport,
};
pub use operations::restore::{restore, RestoreOptions, RestoreSummary};
pub use operations::retention::{
    plan_forget, Decision, ForgetBy, ForgetFilter, ForgetPlan, Group, GroupBy, GroupKey, Policy,
    Reason, PROTECTED_TAG, RESTORE_POINTS_KEPT, RESTORE_POINTS_KEPT_DAYS, RESTORE_POINT_TAG,
};
pub use operations::rewrite::{
    earlier_epoch_files, rewrite_data, rotate_and_rewrite, RewriteProgress, RewriteReport,
};
pub use operations::rotate::{rotate, RotateReport};
pub use operations::stats::{stats, SnapshotStats, Stats, Usage};
pub use platform::{
    command, hostname, is_root, is_secret_env, secret_env, secret_env_names, secret_envs,
    take_secret_env, username,
};
pub use report::{
    BackupSummary, NoProgress, Progress, StreamSummary, Warning, WarningKind, WriteStats,
};
pub use repository::{
    cache_trees, select_snapshot, CatalogTrouble, KeyInfo, OpenOptions, Repository,
    SnapshotsAndDamage, SnapshotsAndDamaged, Warn, PUT_ONLY,
};
pub use select::{select as select_snapshot_among, DamagedSnapshot, SnapshotFilter};

pub use cairn_chunker::ChunkerParams;
pub use cairn_crypto::{KdfParams, Password};

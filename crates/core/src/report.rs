//! What operations report: progress while they run, per-file warnings, and the summaries
//! of what they did.
//!
//! These types are shared: a backup and a restore report through the same [`Progress`]
//! and [`Warning`]; a snapshot stores its backup's [`BackupSummary`]; a copy adds up
//! [`WriteStats`] as a backup does. They import nothing of cairn-core, so every layer
//! (formats, the repository, the operations) can use them.

use serde::{Deserialize, Serialize};
use std::path::Path;

/// Kinds of per-file problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The file or directory could not be read; it is missing from the snapshot.
    Unreadable,
    /// The file changed while it was read; the snapshot holds what was read.
    Changed,
}

/// A per-file problem found during a backup (or a restore).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// What happened.
    pub kind: WarningKind,
    /// The path concerned.
    pub path: String,
    /// Details.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            WarningKind::Unreadable => write!(f, "{}: cannot read: {}", self.path, self.message),
            WarningKind::Changed => {
                write!(f, "{}: changed while read: {}", self.path, self.message)
            }
        }
    }
}

/// Receives progress while a backup (or a restore) runs. All methods have no-op
/// defaults.
pub trait Progress: Sync {
    /// The sources hold about this many files and bytes (sent once, from a scan that
    /// runs beside the backup, so it may arrive late or never).
    fn total(&self, _files: u64, _bytes: u64) {}
    /// A file (or stream) is about to be read; `size` if known.
    fn file(&self, _path: &Path, _size: Option<u64>) {}
    /// Bytes were read or skipped as unchanged.
    fn bytes(&self, _n: u64) {}
    /// A file was finished (read or unchanged).
    fn file_done(&self) {}
    /// A per-file problem.
    fn warning(&self, _w: &Warning) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// What the writer stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteStats {
    /// New data blobs stored.
    pub data_blobs: u64,
    /// New tree blobs stored.
    pub tree_blobs: u64,
    /// Plaintext bytes of the new blobs.
    pub bytes_raw: u64,
    /// Bytes of the new blobs as stored (compressed and sealed).
    pub bytes_stored: u64,
    /// Pack files written.
    pub packs: u64,
}

/// What a backup did; stored in the snapshot and printed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// Files not in the parent.
    pub files_new: u64,
    /// Files in the parent that changed.
    pub files_changed: u64,
    /// Files taken from the parent without reading.
    pub files_unchanged: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, devices, FIFOs, sockets.
    pub others: u64,
    /// Bytes read from files and streams.
    pub bytes_read: u64,
    /// Total size of all files and streams in the snapshot.
    pub bytes_total: u64,
    /// New blobs and bytes stored.
    pub added: WriteStats,
    /// Files and directories that could not be read.
    pub unreadable: u64,
    /// Files that changed while read.
    pub changed_while_read: u64,
    /// Seconds from start to commit.
    pub duration_secs: f64,
    /// Each stream, in the order read (streams are read before any file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<StreamSummary>,
}

/// What reading one stream took.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Its path in the snapshot.
    pub name: String,
    /// Bytes read.
    pub bytes: u64,
    /// Seconds from the backup's start to the stream's start.
    pub started_secs: f64,
    /// Seconds it took.
    pub duration_secs: f64,
}

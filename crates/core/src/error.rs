//! Errors of cairn-core.
//!
//! Rules:
//! - One `thiserror` enum, [`Error`], for everything that ends an operation. Its message
//!   is one line a user can act on, naming the object or path concerned.
//! - Anything that fails authentication is [`Error::Corrupt`], naming the object; the
//!   crypto layer's opaque "tampered" error never says more than that, and neither do we.
//! - A wrong password is its own variant so the binary can say exactly that.
//! - Per-file problems during a backup walk (unreadable file, file changed while read)
//!   are not errors: they are collected as [`crate::Warning`]s in the summary and the
//!   backup goes on; the binary turns them into exit code 3.
//! - `anyhow` is for the binary only.

use crate::backend::BackendError;
use std::path::PathBuf;

/// The result type of cairn-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can end an operation of cairn-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the repository's storage failed.
    #[error(transparent)]
    Backend(#[from] BackendError),

    /// No key file of the repository opens with the given password.
    #[error("wrong password: no key in the repository opens with it")]
    WrongPassword,

    /// The repository was opened with a put-only key, and the operation needs to read
    /// packs or snapshots (or to manage keys).
    #[error("this key is put-only: it can add backups but cannot read, forget, prune or check what the repository holds, nor manage keys; use a full key")]
    PutOnly,

    /// The location holds no cairn repository.
    #[error("no cairn repository at {0} (run `cairn init` to create one)")]
    NotARepository(String),

    /// A stored object failed authentication or did not match its name.
    #[error("{what} is corrupt or has been tampered with")]
    Corrupt {
        /// The object, e.g. "pack 1a2b3c4d" or "tree blob 5e6f7a8b in pack 1a2b3c4d".
        what: String,
    },

    /// A stored object authenticated but cannot be understood (a bug, or a newer format).
    #[error("{what} cannot be decoded: {detail}")]
    Format {
        /// The object.
        what: String,
        /// What is wrong with it.
        detail: String,
    },

    /// The repository was written by a newer cairn.
    #[error("repository format version {found} is newer than this cairn understands (up to {supported}); upgrade cairn")]
    UnsupportedVersion {
        /// Version found.
        found: u32,
        /// Highest version this build reads.
        supported: u32,
    },

    /// A key file asks for key-derivation parameters below the enforced minimum, or absurd ones.
    #[error("key file {key} refused: {detail}")]
    WeakKey {
        /// The key file's short id.
        key: String,
        /// Why.
        detail: String,
    },

    /// A blob the repository should hold is not in any index.
    #[error("{kind} blob {id} is missing from the repository{context}")]
    MissingBlob {
        /// "data" or "tree".
        kind: &'static str,
        /// The blob id (short).
        id: String,
        /// Where it was needed, e.g. " (needed by /etc/passwd)".
        context: String,
    },

    /// A snapshot name matched nothing, or matched more than one snapshot.
    #[error("{0}")]
    SnapshotNotFound(String),

    /// A snapshot that a selection could have chosen cannot be read, so choosing among
    /// the readable ones might pick older data without saying so.
    #[error("{0}")]
    DamagedSnapshots(String),

    /// A path inside a snapshot does not exist.
    #[error("path {path} not found in snapshot {snapshot}")]
    PathNotFound {
        /// The path asked for.
        path: String,
        /// The snapshot's short id.
        snapshot: String,
    },

    /// A local file operation (not a per-file backup warning) failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// A stream source (stdin or a command) failed, so no snapshot is written.
    #[error("source {name} failed: {detail}")]
    SourceFailed {
        /// The stream's name in the snapshot.
        name: String,
        /// What happened (exit status, stderr tail).
        detail: String,
    },

    /// Another process holds a conflicting lock and did not let go in time.
    #[error("{0}")]
    Locked(String),

    /// Invalid arguments or settings.
    #[error("{0}")]
    Invalid(String),

    /// The local catalog failed (it can be deleted: the repository is the truth).
    #[error("catalog {0}")]
    Catalog(String),

    /// A consistency check found problems (the details were reported as they were found).
    #[error("check found {0} problem(s)")]
    CheckFailed(usize),
}

impl Error {
    /// Builds an [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds an [`Error::Corrupt`].
    pub fn corrupt(what: impl Into<String>) -> Error {
        Error::Corrupt { what: what.into() }
    }

    /// Builds an [`Error::Format`].
    pub fn format(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Format {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

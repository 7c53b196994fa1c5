//! Storage backends for cairn repositories.
//!
//! Main types:
//! - [`LocalBackend`]: a repository in a local directory (`config`, `keys/`, `data/` with
//!   256 fan-out directories, `index/`, `snapshots/`, `locks/`). Writes are atomic and
//!   durable (temp file, fsync, rename, fsync of the directory); files are read-only
//!   (`0400`), directories private (`0700`).
//! - [`validate_name`]: the file-name rule every backend applies before touching storage,
//!   so no name can escape its directory.
//!
//! The port itself, [`Backend`] with its contract, [`FileKind`] and [`BackendError`],
//! lives in `cairn-core` and is re-exported here for convenience.
//!
//! What it is not: it knows nothing of the repository format (packs, encryption, locks
//! are `cairn-core`'s), keeps no cache, and retries nothing. Only Unix is supported.

mod local;

pub use cairn_core::{validate_name, Backend, BackendError, FileKind, MAX_NAME_LEN};
pub use local::{LocalBackend, DIR_MODE, FILE_MODE, TEMP_PREFIX};

//! Storage backends for cairn repositories.
//!
//! Main types:
//! - [`LocalBackend`]: a repository in a local directory (`config`, `keys/`, `data/` with
//!   256 fan-out directories, `index/`, `snapshots/`, `locks/`). Writes are atomic and
//!   durable (temp file, fsync, rename, fsync of the directory); files are read-only
//!   (`0400`), directories private (`0700`).
//! - [`S3Backend`]: a repository under a prefix of an S3-compatible bucket
//!   (`s3://bucket/prefix`), through Apache OpenDAL. Same layout as object keys; a
//!   write is one PUT.
//! - [`SftpBackend`]: a repository in a directory on an SSH server
//!   (`sftp://user@host:port/path`), through the system `ssh`, with strict host-key
//!   checking. Same layout; a write is a temp file renamed onto its name. The same
//!   backend reaches any remote rclone reaches (`rclone:REMOTE:PATH`, in `rclone.rs`),
//!   talking SFTP to `rclone serve sftp --stdio`.
//! - [`ExportFile`]: a cairn export (one repository laid into one tar file by
//!   [`write_export`]), read in place and read-only.
//! - [`open`]: picks one of them from a location string, with [`RemoteOptions`]
//!   (endpoint, region, credentials, identity file, known_hosts file).
//! - [`validate_name`]: the file-name rule every backend applies before touching storage,
//!   so no name can escape its directory.
//!
//! The port itself, [`Backend`] with its contract, [`FileKind`] and [`BackendError`],
//! lives in `cairn-core` and is re-exported here for convenience.
//!
//! The remote backends each own a small tokio runtime and block the calling thread on
//! it, so `cairn-core` stays synchronous and knows nothing of async. They retry
//! transient failures (timeouts, 5xx answers, dropped connections) with exponential
//! backoff and count the retries (`retries()`).
//!
//! What it is not: it knows nothing of the repository format (packs, encryption, locks
//! are `cairn-core`'s) and keeps no cache. Only Unix is supported.

mod export;
mod local;
mod location;
mod options;
mod rclone;
mod s3;
mod sftp;

pub use cairn_core::{validate_name, Backend, BackendError, FileKind, MAX_NAME_LEN};
pub use export::{fuzz_scan, write_export, ExportFile, EXPORT_MARKER, EXPORT_MARKER_CONTENTS};
pub use local::{LocalBackend, DIR_MODE, FILE_MODE, TEMP_PREFIX};
pub use location::{local_path, open};
pub use options::{RemoteOptions, Secret, ENV_VARS};
pub use s3::S3Backend;
pub use sftp::SftpBackend;

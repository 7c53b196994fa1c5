//! The on-disk formats: every byte cairn writes, to the repository or to the client's own
//! disk, with its encoder and decoder (`docs/format.md` describes them for readers of the
//! bytes).
//!
//! From the ground up: [`id`] (names), [`sealed`] (the frame of every encrypted file),
//! [`keys`], [`repo_config`], [`padding`], [`compression`], [`pack`], [`index`],
//! [`tree`], [`content`] (a file's extents and the list blobs that hold long runs of
//! them), [`snapshot`], [`lock`] (lock files and the protocol that takes one), and the
//! two files kept on the client's disk: [`history`] (what it has seen of a repository)
//! and [`sendlog`] (what a put-only key stored).
//!
//! A format imports other formats, the shared reporting types (a snapshot holds its
//! backup's summary), the errors, the `Backend` port and the facts about the machine
//! (a lock file names its host); never the repository or an operation.

pub mod compression;
pub mod content;
pub mod history;
pub mod id;
pub mod index;
pub mod keys;
pub mod lock;
pub mod pack;
pub mod padding;
pub mod repo_config;
pub mod sealed;
pub mod sendlog;
pub mod snapshot;
pub mod tree;

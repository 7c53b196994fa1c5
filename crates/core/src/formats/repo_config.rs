//! The repository config: parameters every writer must agree on.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use cairn_chunker::ChunkerParams;
use serde::{Deserialize, Serialize};

/// The highest repository version this build reads and the one `init` writes.
///
/// - 1: the first format.
/// - 2: adds delta blobs (see [`crate::operations::backup::delta`]): compression byte 2 in a blob's stored
///   form, and a base id after pack and index entries flagged with it. A version 1
///   repository stays readable and writable and never receives a delta blob, so an
///   older cairn can go on using it.
/// - 3: adds parts ([`crate::formats::tree::Extent::Part`]): the small files of a
///   directory share chunks, and a file's content may name a slice of a data blob. A
///   version 2 repository stays readable and writable and never receives a part.
pub const REPO_VERSION: u32 = 3;
/// The first repository version whose blobs may be delta blobs.
pub const DELTA_VERSION: u32 = 2;
/// The first repository version whose file contents may hold parts.
pub const PARTS_VERSION: u32 = 3;

/// Stored sealed (with the meta key) as the file `config`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RepoConfig {
    /// Repository format version.
    pub version: u32,
    /// Random id of this repository (caches are keyed by it).
    pub id: Id,
    /// When `init` ran (RFC 3339).
    pub created: String,
    /// Chunking of file contents.
    pub chunker_files: ChunkerParams,
    /// Chunking of streams (stdin, command output, database dumps).
    pub chunker_streams: ChunkerParams,
    /// zstd level for new data blobs (0 stores without compression).
    pub compression_level: i32,
    /// Target size of pack files in bytes.
    pub pack_size: u32,
    /// Hex of `KH(config auth key, this config's JSON without this field)`, where the
    /// config auth key derives from the data key of epoch 0, which only full keys hold:
    /// a put-only key (which holds the meta key that seals the config) cannot write a
    /// config that full keys accept. Absent in repositories made before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
}

/// Options of `init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// Repository format version (default [`REPO_VERSION`]; 1 makes a repository that
    /// older cairn versions can use).
    pub version: u32,
    /// zstd level (default 3).
    pub compression_level: i32,
    /// Pack size target (default 16 MiB).
    pub pack_size: u32,
    /// Chunking of file contents.
    pub chunker_files: ChunkerParams,
    /// Chunking of streams.
    pub chunker_streams: ChunkerParams,
    /// Argon2id parameters of the first key.
    pub kdf: cairn_crypto::KdfParams,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            version: REPO_VERSION,
            compression_level: 3,
            // 16 MiB: large enough that a repository of 1 TB holds ~65k packs (cheap to
            // list), small enough that repacking one costs little.
            pack_size: 16 << 20,
            chunker_files: ChunkerParams::FILES,
            chunker_streams: ChunkerParams::STREAMS,
            kdf: cairn_crypto::KdfParams::DEFAULT,
        }
    }
}

impl RepoConfig {
    /// Checks every field; a config that authenticates but is unusable is a format error.
    pub fn validate(&self) -> Result<()> {
        if self.version > REPO_VERSION || self.version == 0 {
            return Err(Error::UnsupportedVersion {
                found: self.version,
                supported: REPO_VERSION,
            });
        }
        for p in [self.chunker_files, self.chunker_streams] {
            p.validate()
                .map_err(|e| Error::format("config", e.to_string()))?;
        }
        if !(0..=22).contains(&self.compression_level) {
            return Err(Error::format(
                "config",
                format!("compression level {} not in 0..=22", self.compression_level),
            ));
        }
        if !(1 << 20..=1 << 30).contains(&self.pack_size) {
            return Err(Error::format(
                "config",
                format!("pack size {} not in 1 MiB..=1 GiB", self.pack_size),
            ));
        }
        Ok(())
    }
}

//! The `Backend` port: where a repository's files live.
//!
//! A repository is a flat set of named, immutable files grouped by [`FileKind`]. Every
//! name except the config's is the lowercase hex of the BLAKE3 hash of the file's bytes,
//! so a backend never has to decide between two versions of one name: a second write of
//! a name is a write of the same bytes.

use std::fmt;
use std::io;

/// The kinds of files in a repository; each kind is one directory (or key prefix).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    /// The repository config, one file named `config`.
    Config,
    /// Key files: the master key wrapped by a password.
    Key,
    /// Pack files holding sealed blobs (file contents and trees).
    Pack,
    /// Index files: which blob lives in which pack, at which offset.
    Index,
    /// Snapshots: the commit points.
    Snapshot,
    /// Lock files (used by maintenance commands).
    Lock,
}

impl FileKind {
    /// All kinds, in the order a repository is created and listed.
    pub const ALL: [FileKind; 6] = [
        FileKind::Config,
        FileKind::Key,
        FileKind::Pack,
        FileKind::Index,
        FileKind::Snapshot,
        FileKind::Lock,
    ];

    /// The directory (or object-key prefix) of this kind inside a repository.
    pub fn dir(self) -> &'static str {
        match self {
            FileKind::Config => "",
            FileKind::Key => "keys",
            FileKind::Pack => "data",
            FileKind::Index => "index",
            FileKind::Snapshot => "snapshots",
            FileKind::Lock => "locks",
        }
    }

    /// The directory that holds the file `name` of this kind, relative to the repository
    /// root and `/`-separated: `""` for the config, `data/NA` for a pack (packs fan out
    /// into up to 256 directories by the first two characters of their name, so that no
    /// directory grows too large), the kind's [`dir`](FileKind::dir) for the others.
    /// `name` must have passed [`validate_name`] (a pack name has two characters at least).
    pub fn dir_of(self, name: &str) -> String {
        match self {
            FileKind::Config => String::new(),
            FileKind::Pack => format!("{}/{}", self.dir(), &name[..2]),
            _ => self.dir().to_owned(),
        }
    }

    /// The path of the file `name` of this kind relative to the repository root,
    /// `/`-separated (`config`, `keys/NAME`, `data/NA/NAME`, …): the repository layout
    /// every backend stores, whatever its protocol. `name` must have passed
    /// [`validate_name`].
    pub fn path_of(self, name: &str) -> String {
        match self.dir_of(name) {
            dir if dir.is_empty() => name.to_owned(),
            dir => format!("{dir}/{name}"),
        }
    }
}

/// What went wrong in a backend operation.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The named file does not exist.
    #[error("{kind:?} file {name} does not exist")]
    NotFound { kind: FileKind, name: String },
    /// `create` found a repository already there.
    #[error("a repository already exists at {0}")]
    AlreadyExists(String),
    /// A name that no repository file can have (see [`validate_name`]).
    #[error("invalid {kind:?} file name {name:?}: names are 1 to 128 characters of [0-9a-z] (packs at least 2), the config's is \"config\"")]
    InvalidName { kind: FileKind, name: String },
    /// A read asked for bytes past the end of the file.
    #[error("{kind:?} file {name} is shorter than expected (wanted {wanted} bytes at offset {offset}, file has {size})")]
    ShortRead {
        kind: FileKind,
        name: String,
        offset: u64,
        wanted: u64,
        size: u64,
    },
    /// Any other I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

impl BackendError {
    /// Wraps an I/O error with a description of the operation.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        BackendError::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the error says the file is not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, BackendError::NotFound { .. })
    }

    /// A [`BackendError::ShortRead`]: `len` bytes at `offset` were asked of the file
    /// `name` of `kind`, which has `size`.
    pub fn short_read(kind: FileKind, name: &str, offset: u64, len: u64, size: u64) -> Self {
        BackendError::ShortRead {
            kind,
            name: name.to_owned(),
            offset,
            wanted: len,
            size,
        }
    }

    /// Checks a read of `len` bytes at `offset` against the size of the file `name` of
    /// `kind`, as every backend must (see [`Backend::read_range`]): a range that ends past
    /// the end, or past `u64::MAX`, is a [`ShortRead`](BackendError::ShortRead); a length that does not
    /// fit in memory on this target is an I/O error. Gives the length to allocate.
    pub fn check_range(
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
        size: u64,
    ) -> Result<usize, Self> {
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(Self::short_read(kind, name, offset, len, size));
        }
        // `len <= size`, and `size` bytes fit in memory if the file fits on disk; a 32-bit
        // target can still refuse.
        usize::try_from(len).map_err(|_| {
            Self::io(
                format!("reading {kind:?} file {name}"),
                io::Error::new(
                    io::ErrorKind::OutOfMemory,
                    "range larger than address space",
                ),
            )
        })
    }
}

/// Longest file name a backend accepts.
pub const MAX_NAME_LEN: usize = 128;

/// Checks that `name` may be stored as a file of `kind`; every backend applies it before
/// touching storage, so no name can reach outside its directory or prefix.
///
/// The config's only name is `config`; every other name is 1 to [`MAX_NAME_LEN`]
/// characters from `[0-9a-z]`, and a pack name has at least two (its first two pick the
/// fan-out directory). This excludes `/`, `.`, `..`, empty names, and temporary names.
pub fn validate_name(kind: FileKind, name: &str) -> Result<(), BackendError> {
    let ok = match kind {
        FileKind::Config => name == "config",
        _ => {
            let min = if kind == FileKind::Pack { 2 } else { 1 };
            (min..=MAX_NAME_LEN).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        }
    };
    if ok {
        Ok(())
    } else {
        Err(BackendError::InvalidName {
            kind,
            name: name.to_string(),
        })
    }
}

/// [`Backend::read_range`] with its length checked: a backend that breaks the contract
/// and returns another number of bytes than asked for gives an error, never bytes that
/// a caller would cut out of range.
pub(crate) fn read_range_exact(
    backend: &dyn Backend,
    kind: FileKind,
    name: &str,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, BackendError> {
    let mut bytes = Vec::new();
    read_range_exact_into(backend, kind, name, offset, len, &mut bytes)?;
    Ok(bytes)
}

/// [`read_range_exact`] into a buffer the caller keeps (see [`Backend::read_range_into`]).
pub(crate) fn read_range_exact_into(
    backend: &dyn Backend,
    kind: FileKind,
    name: &str,
    offset: u64,
    len: u64,
    bytes: &mut Vec<u8>,
) -> Result<(), BackendError> {
    backend.read_range_into(kind, name, offset, len, bytes)?;
    if bytes.len() as u64 != len {
        return Err(BackendError::io(
            format!("reading {kind:?} file {name} at offset {offset}"),
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "the storage returned {} bytes instead of {len}",
                    bytes.len()
                ),
            ),
        ));
    }
    Ok(())
}

/// A file written piece by piece, stored under its name only once it is complete (see
/// [`Backend::stage`]). Dropped without [`Staged::commit`], it leaves nothing behind
/// (at most a temporary file that `remove_stale_temp_files` deletes after a crash).
pub trait Staged: Send {
    /// Appends bytes.
    fn append(&mut self, data: &[u8]) -> Result<(), BackendError>;

    /// Reads back `buf.len()` of the bytes appended so far, from `offset`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError>;

    /// Stores the appended bytes under `name`, atomically and durably as
    /// [`Backend::write`] does.
    fn commit(self: Box<Self>, name: &str) -> Result<(), BackendError>;
}

/// Storage for a repository's files.
///
/// Contract, for every implementation:
/// - **`write` is atomic and durable.** When it returns `Ok`, the whole file is stored
///   and survives a crash (local: temp file, fsync, rename, fsync of the directory;
///   object storage: one PUT). A reader never sees a partly written file under its final
///   name. Writing a name that exists is allowed and leaves one whole copy (names are
///   content hashes, so both writes carry the same bytes); it may be skipped.
/// - **A staged file (`stage`, where offered) obeys the same rule at its `commit`**:
///   nothing is listed or readable under its name before, the whole file after; a
///   staged file dropped without a commit leaves nothing that `list` shows.
/// - **`read`, `read_range` and `read_range_into`** return exactly the bytes asked for
///   or an error;
///   `ShortRead` when the file is shorter than the range.
/// - **`list`** returns every file of a kind with its size, in no particular order. A
///   file whose `write` returned before `list` started is listed.
/// - **`remove`** is idempotent: removing a missing file is `Ok`.
/// - All methods may be called from many threads at once.
pub trait Backend: Send + Sync + fmt::Debug {
    /// A human-readable location (path or URL) for messages. Never contains secrets.
    fn location(&self) -> String;

    /// Prepares an empty repository (directories, bucket prefix). Fails with
    /// `AlreadyExists` when a config file is already there.
    fn create(&self) -> Result<(), BackendError>;

    /// Stores a whole file atomically and durably (see the trait contract).
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError>;

    /// Reads a whole file.
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError>;

    /// Reads `len` bytes at `offset`.
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError>;

    /// Reads `len` bytes at `offset` into `buf`, replacing what it held: a caller that
    /// reads many ranges keeps one buffer and its memory stays mapped between reads.
    /// By default the bytes of [`Backend::read_range`].
    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), BackendError> {
        *buf = self.read_range(kind, name, offset, len)?;
        Ok(())
    }

    /// Starts a file of `kind` that is written as its bytes come and named when it is
    /// complete (a pack is named by the hash of its bytes), so that the writer need not
    /// hold it whole in memory. `None` (the default) when the backend has no cheaper way
    /// than one [`Backend::write`] of the whole file.
    fn stage(&self, kind: FileKind) -> Result<Option<Box<dyn Staged>>, BackendError> {
        let _ = kind;
        Ok(None)
    }

    /// Lists the files of a kind with their sizes in bytes.
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError>;

    /// Removes a file; removing a missing file is not an error.
    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError>;

    /// Deletes the temporary files of writes that never finished (a crash, a dropped
    /// connection) whose modification time is at least `older_than` ago; returns how
    /// many. A temporary file younger than a running write may belong to that write:
    /// pass a generous age unless no other process uses the repository. Backends whose
    /// writes leave nothing behind (one PUT) have nothing to do.
    fn remove_stale_temp_files(
        &self,
        older_than: std::time::Duration,
    ) -> Result<usize, BackendError> {
        let _ = older_than;
        Ok(0)
    }

    /// How many requests were sent again after a transient failure, since creation.
    fn retries(&self) -> u64 {
        0
    }

    /// How many requests are worth having in flight at once when many files or ranges
    /// are read or written: a few for a local disk, more where each request waits on a
    /// network round trip.
    fn parallelism(&self) -> usize {
        std::thread::available_parallelism().map_or(4, |n| 2 * n.get())
    }
}

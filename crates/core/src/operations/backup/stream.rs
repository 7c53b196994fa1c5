//! Streams: what a backup reads besides file trees (stdin, a dump command's output).

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::Read;

/// A stream to store as a file of the snapshot.
pub enum StreamSource {
    /// Any reader, e.g. stdin.
    Reader {
        /// Path of the file in the snapshot, e.g. `db/kimai.sql`.
        name: String,
        /// The bytes.
        reader: Box<dyn Read + Send>,
    },
    /// A command's standard output. A non-zero exit fails the backup.
    Command {
        /// Path of the file in the snapshot.
        name: String,
        /// The program.
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
        /// Variables added to its environment (credentials go here or in files, never
        /// in `args`, which other users can see). Never printed.
        env: Vec<(OsString, OsString)>,
        /// Sees every byte of the output as it is read (e.g. to count a dump's rows).
        observe: Option<Observer>,
    },
}

/// A function that sees every byte of a command stream's output, in order, as it is
/// read (see [`StreamSource::Command`]).
pub struct Observer(pub Box<ObserveFn>);

/// What an [`Observer`] calls with each piece read.
pub type ObserveFn = dyn FnMut(&[u8]) + Send;

impl std::fmt::Debug for Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

impl std::fmt::Debug for StreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamSource::Reader { name, .. } => write!(f, "Reader({name})"),
            StreamSource::Command { name, program, .. } => {
                write!(f, "Command({name}: {})", program.to_string_lossy())
            }
        }
    }
}

impl StreamSource {
    pub(super) fn name(&self) -> &str {
        match self {
            StreamSource::Reader { name, .. } | StreamSource::Command { name, .. } => name,
        }
    }
}

/// The path components of a stream's name in the snapshot (`db/kimai.sql`); every one
/// must be a valid entry name.
pub(super) fn stream_components(name: &str) -> Result<Vec<Vec<u8>>> {
    let comps: Vec<Vec<u8>> = name
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|c| c.as_bytes().to_vec())
        .collect();
    if comps.is_empty() || comps.iter().any(|c| !crate::formats::tree::valid_name(c)) {
        return Err(Error::Invalid(format!("invalid stream name {name:?}")));
    }
    Ok(comps)
}

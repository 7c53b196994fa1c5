//! The send log of a put-only key: what this client stored itself, kept on its own disk.
//!
//! A put-only key cannot read the repository's index (index files are sealed with the
//! data key, or to its public key), so it cannot learn whether content stored by other
//! clients exists, nor the sizes of their chunks. It deduplicates only against what it
//! stored itself, from this log: the index entries of the packs it wrote and the
//! snapshots it made (so that its next backup has a parent, and unchanged files are not
//! read again). A pack the log names that the repository no longer holds (pruned or
//! repacked) is forgotten when the log is read, so a backup never refers to a blob that
//! is gone.
//!
//! ```text
//! log    = record*
//! record = length (u32 LE) | seal(log key, "cairn send log", kind (1) | body)
//! kind 1 = the packs of one index file, as index files encode them
//! kind 2 = a snapshot: its id (32) | its JSON
//! ```
//!
//! The log key is derived from the id key (which every key of the repository holds and
//! rotation never changes): the log holds nothing in clear. A record cut short by a
//! crash ends the log; the records before it stay.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::index::{decode_index_file, encode_index_file, IndexedPack};
use crate::formats::snapshot::Snapshot;
use cairn_crypto::Key;
use std::io::Write;
use std::path::PathBuf;

const AD: &[u8] = b"cairn send log";
const KIND_PACKS: u8 = 1;
const KIND_SNAPSHOT: u8 = 2;

/// A put-only client's record of what it stored.
pub struct SendLog {
    path: PathBuf,
    key: Key,
}

impl std::fmt::Debug for SendLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What a send log holds.
#[derive(Debug, Default)]
pub struct Sent {
    /// The packs written, with their entries.
    pub packs: Vec<IndexedPack>,
    /// The snapshots written, oldest first.
    pub snapshots: Vec<(Id, Snapshot)>,
}

impl SendLog {
    /// The send log at `path`, sealed under a key derived from `id_key`.
    pub fn new(path: PathBuf, id_key: &Key) -> SendLog {
        SendLog {
            path,
            key: id_key.derive("cairn 2026 put-only send log"),
        }
    }

    /// Where it is.
    #[cfg(test)]
    fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Reads the log; a missing file is an empty log.
    pub fn read(&self) -> Result<Sent> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Sent::default()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        Ok(self.decode(&bytes))
    }

    pub(crate) fn decode(&self, bytes: &[u8]) -> Sent {
        let what = format!("send log {}", self.path.display());
        let mut sent = Sent::default();
        let mut at = 0usize;
        while at + 4 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let Some(sealed) = bytes.get(at + 4..at + 4 + len) else {
                break; // cut short by a crash
            };
            at += 4 + len;
            let Ok(plain) = cairn_crypto::open(&self.key, AD, sealed) else {
                break;
            };
            match plain.split_first() {
                Some((&KIND_PACKS, body)) => {
                    if let Ok(packs) = decode_index_file(body, &what) {
                        sent.packs.extend(packs);
                    }
                }
                Some((&KIND_SNAPSHOT, body)) if body.len() > 32 => {
                    let id = Id(body[..32].try_into().unwrap());
                    if let Ok(snap) = serde_json::from_slice::<Snapshot>(&body[32..]) {
                        sent.snapshots.push((id, snap));
                    }
                }
                _ => {}
            }
        }
        sent.snapshots
            .sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        sent
    }

    /// Records packs this client stored.
    pub fn add_packs(&self, packs: &[IndexedPack]) -> Result<()> {
        let mut body = vec![KIND_PACKS];
        body.extend_from_slice(&encode_index_file(packs));
        self.append(&body)
    }

    /// Records a snapshot this client wrote.
    pub fn add_snapshot(&self, id: &Id, snap: &Snapshot) -> Result<()> {
        let mut body = vec![KIND_SNAPSHOT];
        body.extend_from_slice(&id.0);
        body.extend_from_slice(&serde_json::to_vec(snap).expect("snapshot serializes"));
        self.append(&body)
    }

    fn append(&self, plain: &[u8]) -> Result<()> {
        let io = |e| Error::io(&self.path, e);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let sealed = cairn_crypto::seal(&self.key, AD, plain);
        let mut record = Vec::with_capacity(4 + sealed.len());
        record.extend_from_slice(&(sealed.len() as u32).to_le_bytes());
        record.extend_from_slice(&sealed);
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&self.path)
                .map_err(io)?
        };
        f.write_all(&record).map_err(io)?;
        f.sync_data().map_err(io)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::id::BlobKind;
    use crate::formats::index::PackInfo;
    use crate::formats::pack::PackEntry;

    fn pack(b: u8) -> IndexedPack {
        (
            PackInfo {
                id: Id([b; 32]),
                envelope: crate::formats::sealed::Envelope::filled(1),
            },
            vec![PackEntry {
                kind: BlobKind::Data,
                id: Id([b + 1; 32]),
                offset: 100,
                sealed_len: 50,
                raw_len: 30,
                base: None,
            }],
        )
    }

    #[test]
    fn records_survive_and_a_torn_tail_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let log = SendLog::new(dir.path().join("sent"), &Key::random());
        assert!(log.read().unwrap().packs.is_empty());
        log.add_packs(&[pack(1)]).unwrap();
        log.add_packs(&[pack(3), pack(5)]).unwrap();
        let sent = log.read().unwrap();
        assert_eq!(sent.packs.len(), 3);
        assert_eq!(sent.packs[2].1[0].id, Id([6; 32]));
        // A crash in the middle of a record: the ones before it stay.
        let mut bytes = std::fs::read(log.path()).unwrap();
        let whole = bytes.len();
        log.add_packs(&[pack(7)]).unwrap();
        bytes.extend_from_slice(&std::fs::read(log.path()).unwrap()[whole..whole + 20]);
        std::fs::write(log.path(), &bytes).unwrap();
        assert_eq!(log.read().unwrap().packs.len(), 3);
        // Nothing in clear: the pack ids are not in the file.
        assert!(!bytes.windows(32).any(|w| w == [5u8; 32]));
        // Another key reads nothing.
        let other = SendLog::new(log.path().to_path_buf(), &Key::random());
        assert!(other.read().unwrap().packs.is_empty());
    }
}

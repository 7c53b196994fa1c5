//! The index: which blob lives in which pack, in memory and as index files.
//!
//! ```text
//! index file plaintext = pack count (u32 LE) | pack*
//! pack = pack id (32) | envelope (77) | entry count (u32 LE) | entry* (see pack.rs)
//! ```
//!
//! The index repeats each pack's envelope so that blobs can be read with one ranged
//! read, without first reading the pack's head.

use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::pack::{decode_entries, encode_entries, PackEntry, ENTRY_LEN};
use crate::sealed::ENVELOPE_LEN;
use std::collections::HashMap;

/// A pack known to the index.
#[derive(Clone, Debug)]
pub struct PackInfo {
    /// The pack's file name.
    pub id: Id,
    /// The pack's key envelope.
    pub envelope: [u8; ENVELOPE_LEN],
}

/// Where a blob is. 20 bytes; with its 32-byte key and the hash table's overhead an
/// indexed blob costs about 60 bytes of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobLocation {
    /// Position of the pack in [`Index::pack`].
    pub pack: u32,
    /// Offset of the sealed blob in the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub sealed_len: u32,
    /// Length of the plaintext.
    pub raw_len: u32,
    /// Data or tree.
    pub kind: BlobKind,
}

/// The in-memory index of a repository.
#[derive(Debug, Default)]
pub struct Index {
    packs: Vec<PackInfo>,
    pack_pos: HashMap<Id, u32>,
    blobs: HashMap<Id, BlobLocation>,
}

/// One pack's entries as stored in an index file.
pub type IndexedPack = (PackInfo, Vec<PackEntry>);

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    /// Adds a pack and its blobs. A blob already indexed keeps its first location.
    pub fn add_pack(&mut self, info: &PackInfo, entries: &[PackEntry]) {
        let pos = match self.pack_pos.get(&info.id) {
            Some(&p) => p,
            None => {
                let p = self.packs.len() as u32;
                self.packs.push(info.clone());
                self.pack_pos.insert(info.id, p);
                p
            }
        };
        self.blobs.reserve(entries.len());
        for e in entries {
            self.blobs.entry(e.id).or_insert(BlobLocation {
                pack: pos,
                offset: e.offset,
                sealed_len: e.sealed_len,
                raw_len: e.raw_len,
                kind: e.kind,
            });
        }
    }

    /// Looks a blob up.
    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.blobs.get(id).copied()
    }

    /// True when the blob is indexed.
    pub fn contains(&self, id: &Id) -> bool {
        self.blobs.contains_key(id)
    }

    /// The pack at a position.
    pub fn pack(&self, pos: u32) -> &PackInfo {
        &self.packs[pos as usize]
    }

    /// All packs.
    pub fn packs(&self) -> &[PackInfo] {
        &self.packs
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.blobs.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// All blobs with their locations.
    pub fn blobs(&self) -> impl Iterator<Item = (&Id, &BlobLocation)> {
        self.blobs.iter()
    }
}

/// Encodes an index file's plaintext.
pub fn encode_index_file(packs: &[IndexedPack]) -> Vec<u8> {
    let n: usize = packs.iter().map(|(_, e)| e.len()).sum();
    let mut out = Vec::with_capacity(4 + packs.len() * (32 + ENVELOPE_LEN + 4) + n * ENTRY_LEN);
    out.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for (info, entries) in packs {
        out.extend_from_slice(&info.id.0);
        out.extend_from_slice(&info.envelope);
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        encode_entries(entries, &mut out);
    }
    out
}

/// Decodes an index file's plaintext; `what` names it for errors.
pub fn decode_index_file(bytes: &[u8], what: &str) -> Result<Vec<IndexedPack>> {
    let bad = |d: &str| Error::format(what, d.to_string());
    let mut pos = 0usize;
    let take = |pos: &mut usize, n: usize| -> Result<&[u8]> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| bad("truncated"))?;
        let s = &bytes[*pos..end];
        *pos = end;
        Ok(s)
    };
    let count = u32::from_le_bytes(take(&mut pos, 4)?.try_into().unwrap()) as usize;
    // Each pack needs at least 32 + 77 + 4 bytes: refuse counts the input cannot hold
    // before allocating for them.
    if count > bytes.len() / (32 + ENVELOPE_LEN + 4) {
        return Err(bad("pack count larger than the file"));
    }
    let mut packs = Vec::with_capacity(count);
    for _ in 0..count {
        let id = Id(take(&mut pos, 32)?.try_into().unwrap());
        let envelope: [u8; ENVELOPE_LEN] = take(&mut pos, ENVELOPE_LEN)?.try_into().unwrap();
        let n = u32::from_le_bytes(take(&mut pos, 4)?.try_into().unwrap()) as usize;
        let len = n
            .checked_mul(ENTRY_LEN)
            .ok_or_else(|| bad("entry count overflows"))?;
        let entries = decode_entries(take(&mut pos, len)?, what)?;
        packs.push((PackInfo { id, envelope }, entries));
    }
    if pos != bytes.len() {
        return Err(bad("trailing bytes"));
    }
    Ok(packs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_file_round_trip_and_truncation() {
        let info = PackInfo {
            id: Id::of_file(b"p"),
            envelope: [7u8; ENVELOPE_LEN],
        };
        let entries = vec![PackEntry {
            kind: BlobKind::Tree,
            id: Id::of_file(b"b"),
            offset: 82,
            sealed_len: 100,
            raw_len: 60,
        }];
        let enc = encode_index_file(&[(info.clone(), entries.clone())]);
        let dec = decode_index_file(&enc, "i").unwrap();
        assert_eq!(dec[0].0.id, info.id);
        assert_eq!(dec[0].1, entries);
        for n in 0..enc.len() {
            assert!(decode_index_file(&enc[..n], "i").is_err());
        }
        let mut idx = Index::new();
        idx.add_pack(&dec[0].0, &dec[0].1);
        assert_eq!(idx.get(&entries[0].id).unwrap().raw_len, 60);
    }
}

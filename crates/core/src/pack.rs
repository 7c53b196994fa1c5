//! Pack files: many sealed blobs in one file, with a sealed header at the end.
//!
//! ```text
//! pack   = magic "CRNp" | version (1) | envelope | blob* | sealed header | header length (u32 LE)
//! blob   = seal(file key, compression (1) | payload), AD = kind (1) | blob id (32)
//! header = entry*
//! entry  = kind (1) | id (32) | offset (u32 LE) | sealed length (u32 LE) | raw length (u32 LE)
//!          [| base id (32), when the kind byte has DELTA_FLAG set]
//! ```
//!
//! The header repeats what the index says about the pack, so an index can be rebuilt
//! from packs alone. Offsets are from the start of the pack file.
//!
//! A blob's stored form starts with its compression byte: [`COMPRESSION_NONE`],
//! [`COMPRESSION_ZSTD`], or [`COMPRESSION_DELTA`] for a *delta blob* (repository
//! version 2), compressed against the plaintext of another data blob, its base:
//!
//! ```text
//! delta = 2 | depth (1, 1 to MAX_DELTA_DEPTH) | base id (32) | zstd frame, with the base's plaintext as prefix
//! ```
//!
//! The depth is one more than the base's (a blob that is not a delta has depth 0), so
//! a reader follows at most [`MAX_DELTA_DEPTH`] links. The header entry names the base
//! too, so that prune and check know which blobs a delta needs without reading it.

use crate::error::{Error, Result};
use crate::id::{BlobKind, Id};
use crate::sealed::{self, EpochKeys, FileKey, Magic};
use cairn_crypto::{open, open_in_place, seal_into, seal_parts_into, Key};

/// Bytes of one header entry without a base (the shortest entry).
pub const ENTRY_LEN: usize = 1 + 32 + 4 + 4 + 4;
/// Set in an entry's kind byte when a base id follows the entry.
pub const DELTA_FLAG: u8 = 0x80;

/// Payload stored as is.
pub const COMPRESSION_NONE: u8 = 0;
/// Payload compressed with zstd.
pub const COMPRESSION_ZSTD: u8 = 1;
/// Payload compressed with zstd against a base blob (see the module documentation).
pub const COMPRESSION_DELTA: u8 = 2;
/// The most links a chain of delta blobs may have.
pub const MAX_DELTA_DEPTH: u8 = 8;
/// Bytes before the zstd frame of a delta blob: compression, depth, base id.
pub const DELTA_HEAD_LEN: usize = 1 + 1 + 32;

/// Where one blob sits in its pack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackEntry {
    /// Data or tree.
    pub kind: BlobKind,
    /// Keyed hash of the blob's plaintext.
    pub id: Id,
    /// Offset of the sealed blob from the start of the pack.
    pub offset: u32,
    /// Length of the sealed blob.
    pub sealed_len: u32,
    /// Length of the plaintext (uncompressed) blob.
    pub raw_len: u32,
    /// For a delta blob, the blob it was compressed against.
    pub base: Option<Id>,
}

/// The associated data that binds a sealed blob to its kind and id.
pub fn blob_ad(kind: BlobKind, id: &Id) -> [u8; 33] {
    let mut ad = [0u8; 33];
    ad[0] = kind.to_byte();
    ad[1..].copy_from_slice(&id.0);
    ad
}

/// Seals a blob's stored form (`compression` byte then `payload`) and appends it to `out`.
pub fn seal_blob(
    key: &Key,
    kind: BlobKind,
    id: &Id,
    compression: u8,
    payload: &[u8],
    out: &mut Vec<u8>,
) {
    seal_parts_into(key, &blob_ad(kind, id), &[&[compression], payload], out);
}

/// Opens a sealed blob (decrypting straight out of `sealed`, which may be a slice of a
/// larger read); returns the compression byte and payload.
pub fn open_blob(key: &Key, kind: BlobKind, id: &Id, sealed: &[u8]) -> Result<Vec<u8>, ()> {
    open(key, &blob_ad(kind, id), sealed).map_err(|_| ())
}

/// Encodes header entries.
pub fn encode_entries(entries: &[PackEntry], out: &mut Vec<u8>) {
    out.reserve(entries.len() * ENTRY_LEN);
    for e in entries {
        let flag = if e.base.is_some() { DELTA_FLAG } else { 0 };
        out.push(e.kind.to_byte() | flag);
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.sealed_len.to_le_bytes());
        out.extend_from_slice(&e.raw_len.to_le_bytes());
        if let Some(base) = &e.base {
            out.extend_from_slice(&base.0);
        }
    }
}

/// Decodes header entries filling `bytes`; `what` names the object for errors.
pub fn decode_entries(bytes: &[u8], what: &str) -> Result<Vec<PackEntry>> {
    let mut pos = 0;
    let mut out = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    while pos < bytes.len() {
        out.push(decode_entry(bytes, &mut pos, what)?);
    }
    Ok(out)
}

/// Decodes the entry at `*pos` and moves `*pos` past it.
pub fn decode_entry(bytes: &[u8], pos: &mut usize, what: &str) -> Result<PackEntry> {
    let truncated = || Error::format(what, "truncated entry");
    let c = bytes.get(*pos..*pos + ENTRY_LEN).ok_or_else(truncated)?;
    let kind = BlobKind::from_byte(c[0] & !DELTA_FLAG)
        .ok_or_else(|| Error::format(what, format!("unknown blob kind {}", c[0])))?;
    let u = |i: usize| u32::from_le_bytes(c[i..i + 4].try_into().unwrap());
    let mut e = PackEntry {
        kind,
        id: Id(c[1..33].try_into().unwrap()),
        offset: u(33),
        sealed_len: u(37),
        raw_len: u(41),
        base: None,
    };
    *pos += ENTRY_LEN;
    if c[0] & DELTA_FLAG != 0 {
        if kind != BlobKind::Data {
            return Err(Error::format(what, "a tree blob with a base"));
        }
        let b = bytes.get(*pos..*pos + 32).ok_or_else(truncated)?;
        e.base = Some(Id(b.try_into().unwrap()));
        *pos += 32;
    }
    Ok(e)
}

/// The depth and base of a delta blob's stored form, and its zstd frame.
pub fn delta_parts(stored: &[u8]) -> Option<(u8, Id, &[u8])> {
    if stored.len() < DELTA_HEAD_LEN || stored[0] != COMPRESSION_DELTA {
        return None;
    }
    let base = Id(stored[2..DELTA_HEAD_LEN].try_into().unwrap());
    Some((stored[1], base, &stored[DELTA_HEAD_LEN..]))
}

/// Builds one pack in memory.
#[derive(Debug)]
pub struct PackBuilder {
    buf: Vec<u8>,
    entries: Vec<PackEntry>,
}

impl PackBuilder {
    /// Starts a pack whose blobs are sealed with `fk`.
    pub fn new(fk: &FileKey, capacity: usize) -> PackBuilder {
        PackBuilder::with_buffer(fk, Vec::with_capacity(capacity))
    }

    /// Starts a pack in a buffer of an earlier one (its pages stay mapped: a fresh
    /// 16 MiB buffer for every pack costs thousands of page faults).
    pub fn with_buffer(fk: &FileKey, mut buf: Vec<u8>) -> PackBuilder {
        buf.clear();
        sealed::write_header(Magic::Pack, fk.version(), fk, &mut buf);
        PackBuilder {
            buf,
            entries: Vec::new(),
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when no blob has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals a blob straight into the pack (no intermediate buffer). `base` names the
    /// base of a delta blob (whose payload starts with its depth and base id).
    #[allow(clippy::too_many_arguments)]
    pub fn push_new(
        &mut self,
        key: &Key,
        kind: BlobKind,
        id: Id,
        raw_len: u32,
        compression: u8,
        payload: &[u8],
        base: Option<Id>,
    ) -> usize {
        let offset = self.buf.len();
        seal_blob(key, kind, &id, compression, payload, &mut self.buf);
        let sealed_len = self.buf.len() - offset;
        self.entries.push(PackEntry {
            kind,
            id,
            offset: offset as u32,
            sealed_len: sealed_len as u32,
            raw_len,
            base,
        });
        sealed_len
    }

    /// Moves every blob of `other` (sealed with the same file key) into this pack.
    pub fn absorb(&mut self, other: PackBuilder) {
        for e in &other.entries {
            let start = e.offset as usize;
            let offset = self.buf.len() as u32;
            self.buf
                .extend_from_slice(&other.buf[start..start + e.sealed_len as usize]);
            self.entries.push(PackEntry { offset, ..*e });
        }
    }

    /// Seals the header and returns the pack's name, bytes and entries.
    pub fn finish(mut self, fk: &FileKey) -> (Id, Vec<u8>, Vec<PackEntry>) {
        let mut header = Vec::new();
        encode_entries(&self.entries, &mut header);
        let before = self.buf.len();
        seal_into(&fk.key, &sealed::pack_header_ad(), &header, &mut self.buf);
        let header_len = (self.buf.len() - before) as u32;
        self.buf.extend_from_slice(&header_len.to_le_bytes());
        (Id::of_file(&self.buf), self.buf, self.entries)
    }
}

/// Reads the entries of a whole pack (used by check and index repair).
pub fn read_entries<K: EpochKeys + ?Sized>(
    pack: &[u8],
    keys: &K,
    what: &str,
) -> Result<(FileKey, Vec<PackEntry>)> {
    let (_, envelope) = sealed::read_header(Magic::Pack, pack, what)?;
    let fk = FileKey::open(Magic::Pack, keys, &envelope, what)?;
    let header_len = envelope.header_len();
    if pack.len() < header_len + 4 {
        return Err(Error::corrupt(what));
    }
    let hlen = u32::from_le_bytes(pack[pack.len() - 4..].try_into().unwrap()) as usize;
    let end = pack.len() - 4;
    if hlen > end - header_len {
        return Err(Error::corrupt(what));
    }
    let mut header = pack[end - hlen..end].to_vec();
    open_in_place(&fk.key, &sealed::pack_header_ad(), &mut header)
        .map_err(|_| Error::corrupt(format!("{what} (header)")))?;
    let entries = decode_entries(&header, what)?;
    for e in &entries {
        let stop = e.offset as u64 + e.sealed_len as u64;
        if (e.offset as usize) < header_len || stop > (end - hlen) as u64 {
            return Err(Error::format(what, "header entry points outside the pack"));
        }
    }
    Ok((fk, entries))
}

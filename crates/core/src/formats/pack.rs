//! Pack files: many sealed blobs in one file, with a sealed header at the end.
//!
//! ```text
//! pack   = magic "CRNp" | version (1) | envelope | blob* | pad | sealed header | header length (u32 LE)
//! blob   = seal(file key, compression (1) | payload), AD = kind (1) | blob id (32)
//! pad    = seal(file key, 0x00*), AD = "CRNp" | 3 | "padding"     (version 3 only)
//! header = entry* | 0xFF | 0x00*, AD = "CRNp" | 3 | "header"     (version 3)
//!        | entry*,                AD = "CRNp" | 1 | "header"     (versions 1 and 2)
//! entry  = kind (1) | id (32) | offset (u32 LE) | sealed length (u32 LE) | raw length (u32 LE)
//!          [| base id (32), when the kind byte has DELTA_FLAG set]
//! ```
//!
//! The header repeats what the index says about the pack, so an index can be rebuilt
//! from packs alone. Offsets are from the start of the pack file.
//!
//! Packs are written as version 3, padded (see `padding`) twice: the sealed header's
//! plaintext ends with the trailer `0xFF 0x00*`, so that the header length, stored in
//! clear, gives the number of entries only roughly; and the pad, a seal of zero bytes
//! between the last blob and the header, makes the whole pack [`padded_len`] bytes
//! long, so that the pack's size gives the size of its blobs only roughly. The pad looks
//! like the blobs (random bytes), so nothing in clear says where the blobs end. Both
//! are sealed with the file key, and their associated data name version 3, so neither
//! they nor the version byte can be changed undetected. In a version-3 pack the blobs
//! lie end to end from the envelope on, and the pad fills the rest up to the header.
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

use crate::backend::{BackendError, Staged};
use crate::error::{Error, Result};
use crate::formats::id::{BlobKind, Id};
use crate::formats::padding::{is_trailer, padded_len, MIN_HEADER_LEN, MIN_PACK_LEN, PAD_MARKER};
use crate::formats::sealed::{self, EpochKeys, FileKey, Magic, PADDED_VERSION};
use cairn_crypto::{open, open_in_place, seal_into, seal_parts_into, Key, SEAL_OVERHEAD};

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

/// [`open_blob`] in place, inside a larger read; returns the compression byte and
/// payload, a sub-slice of `sealed`.
pub fn open_blob_in_slice<'a>(
    key: &Key,
    kind: BlobKind,
    id: &Id,
    sealed: &'a mut [u8],
) -> Result<&'a mut [u8], ()> {
    cairn_crypto::open_in_slice(key, &blob_ad(kind, id), sealed).map_err(|_| ())
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

/// Decodes the entries of a padded (version 3) header: entries up to the padding
/// trailer, which must be there and hold only zero bytes after its marker.
pub fn decode_padded_entries(bytes: &[u8], what: &str) -> Result<Vec<PackEntry>> {
    let mut pos = 0;
    let mut out = Vec::with_capacity(bytes.len().min(1 << 20) / ENTRY_LEN);
    loop {
        match bytes.get(pos) {
            None => return Err(Error::format(what, "header without padding")),
            Some(&PAD_MARKER) if is_trailer(&bytes[pos..]) => return Ok(out),
            Some(&PAD_MARKER) => return Err(Error::format(what, "nonzero header padding")),
            Some(_) => out.push(decode_entry(bytes, &mut pos, what)?),
        }
    }
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

/// Builds one pack, in memory or written to a [`Staged`] file as it fills.
pub struct PackBuilder {
    /// The whole pack in memory; for a staged pack, the bytes not yet appended to it.
    buf: Vec<u8>,
    /// Where a staged pack's bytes go, [`SPILL_AT`] at a time.
    out: Option<StagedOut>,
    entries: Vec<PackEntry>,
    /// Bytes the entries take in the header.
    entries_len: usize,
}

struct StagedOut {
    file: Box<dyn Staged>,
    /// The hash of the bytes appended so far (a pack is named by the hash of its bytes).
    hasher: blake3::Hasher,
    /// Bytes appended so far.
    flushed: u64,
}

impl std::fmt::Debug for PackBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackBuilder")
            .field("len", &self.len())
            .field("blobs", &self.entries.len())
            .field("staged", &self.out.is_some())
            .finish()
    }
}

/// A staged pack's buffered bytes are appended to its file once they reach this.
pub const SPILL_AT: usize = 1 << 20;

/// A finished pack: its bytes, or the staged file that holds them.
pub enum Finished {
    /// The whole pack, to be written under its name.
    Bytes(Vec<u8>),
    /// The staged file, complete, to be committed under its name; `spare` is the
    /// emptied buffer, for the next pack.
    Staged {
        /// The file.
        file: Box<dyn Staged>,
        /// The buffer.
        spare: Vec<u8>,
    },
}

/// Bytes of the header entry of a blob with or without a base.
pub fn entry_len(delta: bool) -> usize {
    ENTRY_LEN + if delta { 32 } else { 0 }
}

impl PackBuilder {
    /// Starts a pack in memory whose blobs are sealed with `fk`.
    pub fn new(fk: &FileKey, capacity: usize) -> PackBuilder {
        PackBuilder::with_buffer(fk, Vec::with_capacity(capacity))
    }

    /// Starts a pack in memory in a buffer of an earlier one (its pages stay mapped: a
    /// fresh 16 MiB buffer for every pack costs thousands of page faults).
    pub fn with_buffer(fk: &FileKey, mut buf: Vec<u8>) -> PackBuilder {
        buf.clear();
        sealed::write_header(Magic::Pack, PADDED_VERSION, fk, &mut buf);
        PackBuilder {
            buf,
            out: None,
            entries: Vec::new(),
            entries_len: 0,
        }
    }

    /// Finishes a pack built in memory: see [`PackBuilder::finish`].
    pub fn finish_in_memory(self, fk: &FileKey) -> (Id, Vec<u8>, Vec<PackEntry>) {
        match self.finish(fk) {
            Ok((id, Finished::Bytes(bytes), entries)) => (id, bytes, entries),
            _ => unreachable!("a pack in memory is finished in memory"),
        }
    }

    /// Starts a pack that is appended to `file` as it fills, holding at most about
    /// [`SPILL_AT`] bytes (or one larger blob) in `buf`.
    pub fn staged(fk: &FileKey, mut buf: Vec<u8>, file: Box<dyn Staged>) -> PackBuilder {
        buf.clear();
        sealed::write_header(Magic::Pack, PADDED_VERSION, fk, &mut buf);
        PackBuilder {
            buf,
            out: Some(StagedOut {
                file,
                hasher: blake3::Hasher::new(),
                flushed: 0,
            }),
            entries: Vec::new(),
            entries_len: 0,
        }
    }

    /// Bytes so far.
    pub fn len(&self) -> usize {
        self.out.as_ref().map_or(0, |o| o.flushed as usize) + self.buf.len()
    }

    /// The length the pack would have, finished (padded), with one more blob of
    /// `sealed` bytes whose header entry takes `entry` bytes.
    pub fn padded_len_with(&self, sealed: usize, entry: usize) -> usize {
        let header = (self.entries_len + entry + 1 + SEAL_OVERHEAD) as u64;
        let header_len = padded_len(header, MIN_HEADER_LEN) as usize;
        let unpadded = self.len() + sealed + SEAL_OVERHEAD + header_len + 4;
        padded_len(unpadded as u64, MIN_PACK_LEN) as usize
    }

    /// True when a blob of `sealed` bytes (and a header entry of `entry` bytes) fits
    /// into the padding of this pack: adding it leaves the finished pack as long.
    pub fn fits_padding(&self, sealed: usize, entry: usize) -> bool {
        self.padded_len_with(sealed, entry) <= self.padded_len_with(0, 0)
    }

    /// True when no blob has been added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Seals a blob straight into the pack (no intermediate buffer). `base` names the
    /// base of a delta blob (whose payload starts with its depth and base id). A staged
    /// pack keeps the blob in memory until [`PackBuilder::spill`].
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
        let offset = self.len();
        let start = self.buf.len();
        seal_blob(key, kind, &id, compression, payload, &mut self.buf);
        self.add_entry(kind, id, offset, self.buf.len() - start, raw_len, base)
    }

    /// Seals into the pack the blob whose compression byte and payload (at most
    /// `max_len` bytes in all) `fill` appends: built where it is stored, with no buffer
    /// of the caller's and no copy. A staged pack first appends what it holds when the
    /// blob would take it past [`SPILL_AT`], so it holds at most [`SPILL_AT`] bytes or
    /// one blob, never both.
    pub fn push_filled(
        &mut self,
        key: &Key,
        kind: BlobKind,
        id: Id,
        raw_len: u32,
        max_len: usize,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Result<usize, BackendError> {
        let need = max_len + SEAL_OVERHEAD;
        if self.out.is_some() {
            if !self.buf.is_empty() && self.buf.len() + need > SPILL_AT {
                self.flush()?;
            }
            let want = self.buf.len() + need;
            if want > self.buf.capacity() {
                // Exactly: doubling would keep up to twice the largest blob.
                self.buf.reserve_exact(want.max(SPILL_AT) - self.buf.len());
            }
        } else {
            self.buf.reserve(need);
        }
        let offset = self.len();
        let start = self.buf.len();
        cairn_crypto::seal_appended(key, &blob_ad(kind, &id), &mut self.buf, fill);
        Ok(self.add_entry(kind, id, offset, self.buf.len() - start, raw_len, None))
    }

    fn add_entry(
        &mut self,
        kind: BlobKind,
        id: Id,
        offset: usize,
        sealed_len: usize,
        raw_len: u32,
        base: Option<Id>,
    ) -> usize {
        self.entries_len += entry_len(base.is_some());
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

    /// Appends what a staged pack holds in memory to its file once it reaches
    /// [`SPILL_AT`]; nothing for a pack in memory.
    pub fn spill(&mut self) -> Result<(), BackendError> {
        if self.buf.len() >= SPILL_AT {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), BackendError> {
        if let Some(out) = self.out.as_mut() {
            out.hasher.update(&self.buf);
            out.file.append(&self.buf)?;
            out.flushed += self.buf.len() as u64;
            self.buf.clear();
            // One of the rare large blobs grew it: back to what ordinary blobs need.
            if self.buf.capacity() > 4 * SPILL_AT {
                self.buf = Vec::with_capacity(2 * SPILL_AT);
            }
        }
        Ok(())
    }

    /// Moves every blob of `other` (sealed with the same file key) into this pack.
    pub fn absorb(&mut self, other: PackBuilder) -> Result<(), BackendError> {
        let mut blob = Vec::new();
        for e in &other.entries {
            let start = e.offset as u64;
            let len = e.sealed_len as usize;
            // A blob is either wholly appended to the file or wholly in the buffer.
            let bytes = match &other.out {
                Some(o) if start < o.flushed => {
                    blob.resize(len, 0);
                    o.file.read_at(start, &mut blob)?;
                    &blob[..]
                }
                o => {
                    let at = (start - o.as_ref().map_or(0, |o| o.flushed)) as usize;
                    &other.buf[at..at + len]
                }
            };
            let offset = self.len() as u32;
            self.buf.extend_from_slice(bytes);
            self.entries.push(PackEntry { offset, ..*e });
            self.entries_len += entry_len(e.base.is_some());
            self.spill()?;
        }
        Ok(())
    }

    /// Seals the pad and the header, padded so that the header is [`padded_len`] of its
    /// length (at least [`MIN_HEADER_LEN`]) and the pack [`padded_len`] of its length (at
    /// least [`MIN_PACK_LEN`]); returns the pack's name, its bytes (or its staged file,
    /// complete) and its entries.
    pub fn finish(mut self, fk: &FileKey) -> Result<(Id, Finished, Vec<PackEntry>), BackendError> {
        let mut header = Vec::new();
        encode_entries(&self.entries, &mut header);
        debug_assert_eq!(header.len(), self.entries_len);
        header.push(PAD_MARKER);
        let header_len = padded_len((header.len() + SEAL_OVERHEAD) as u64, MIN_HEADER_LEN);
        header.resize(header_len as usize - SEAL_OVERHEAD, 0);
        let len = self.len();
        let unpadded = len + SEAL_OVERHEAD + header_len as usize + 4;
        let padded = padded_len(unpadded as u64, MIN_PACK_LEN) as usize;
        self.buf.reserve_exact(padded - len);
        let pad = vec![0u8; padded - unpadded];
        seal_into(&fk.key, &sealed::pack_pad_ad(), &pad, &mut self.buf);
        let ad = sealed::pack_header_ad(PADDED_VERSION);
        seal_into(&fk.key, &ad, &header, &mut self.buf);
        self.buf
            .extend_from_slice(&(header_len as u32).to_le_bytes());
        debug_assert_eq!(self.len(), padded);
        match self.out.take() {
            None => Ok((
                Id::of_file(&self.buf),
                Finished::Bytes(self.buf),
                self.entries,
            )),
            Some(mut out) => {
                out.hasher.update(&self.buf);
                out.file.append(&self.buf)?;
                self.buf.clear();
                let id = Id(*out.hasher.finalize().as_bytes());
                Ok((
                    id,
                    Finished::Staged {
                        file: out.file,
                        spare: self.buf,
                    },
                    self.entries,
                ))
            }
        }
    }
}

/// Reads the entries of a whole pack (used by check and index repair): padded
/// (version 3) packs and the unpadded ones of versions 1 and 2 alike.
pub fn read_entries<K: EpochKeys + ?Sized>(
    pack: &[u8],
    keys: &K,
    what: &str,
) -> Result<(FileKey, Vec<PackEntry>)> {
    let (version, envelope) = sealed::read_header(Magic::Pack, pack, what)?;
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
    open_in_place(&fk.key, &sealed::pack_header_ad(version), &mut header)
        .map_err(|_| Error::corrupt(format!("{what} (header)")))?;
    let padded = version >= PADDED_VERSION;
    let entries = if padded {
        decode_padded_entries(&header, what)?
    } else {
        decode_entries(&header, what)?
    };
    for e in &entries {
        let stop = e.offset as u64 + e.sealed_len as u64;
        if (e.offset as usize) < header_len || stop > (end - hlen) as u64 {
            return Err(Error::format(what, "header entry points outside the pack"));
        }
    }
    if padded {
        // The blobs end to end, then the pad up to the header: every byte is sealed.
        let mut spans: Vec<(usize, usize)> = entries
            .iter()
            .map(|e| (e.offset as usize, e.sealed_len as usize))
            .collect();
        spans.sort_unstable();
        let mut at = header_len;
        for (offset, len) in spans {
            if offset != at {
                return Err(Error::format(what, "blobs do not lie end to end"));
            }
            at += len;
        }
        let pad = open(&fk.key, &sealed::pack_pad_ad(), &pack[at..end - hlen])
            .map_err(|_| Error::corrupt(format!("{what} (padding)")))?;
        if pad.iter().any(|&b| b != 0) {
            return Err(Error::format(what, "nonzero padding"));
        }
    }
    Ok((fk, entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::sealed::Wrap;

    fn fk(k: &Key) -> FileKey {
        FileKey::new(Magic::Pack, Wrap::Key(k, 0))
    }

    fn pack_of(k: &Key, blobs: &[&[u8]]) -> (Vec<u8>, Vec<PackEntry>) {
        let fk = fk(k);
        let mut b = PackBuilder::new(&fk, 1 << 16);
        for (i, data) in blobs.iter().enumerate() {
            let kind = if i % 2 == 0 {
                BlobKind::Data
            } else {
                BlobKind::Tree
            };
            let id = Id::of_file(data);
            b.push_new(&fk.key, kind, id, data.len() as u32, 0, data, None);
        }
        let (id, bytes, entries) = b.finish_in_memory(&fk);
        assert_eq!(id, Id::of_file(&bytes));
        (bytes, entries)
    }

    /// The layout of versions 1 and 2, as written before padding.
    fn unpadded_pack(k: &Key, data: &[u8]) -> (Vec<u8>, PackEntry) {
        let fk = fk(k);
        let mut buf = Vec::new();
        sealed::write_header(Magic::Pack, fk.version(), &fk, &mut buf);
        let id = Id::of_file(data);
        let offset = buf.len();
        seal_blob(&fk.key, BlobKind::Data, &id, 0, data, &mut buf);
        let e = PackEntry {
            kind: BlobKind::Data,
            id,
            offset: offset as u32,
            sealed_len: (buf.len() - offset) as u32,
            raw_len: data.len() as u32,
            base: None,
        };
        let mut header = Vec::new();
        encode_entries(&[e], &mut header);
        let before = buf.len();
        seal_into(&fk.key, &sealed::pack_header_ad(1), &header, &mut buf);
        let hlen = (buf.len() - before) as u32;
        buf.extend_from_slice(&hlen.to_le_bytes());
        (buf, e)
    }

    /// A staged file in memory: what was appended, and the name it was committed under.
    #[derive(Clone, Default)]
    struct Sink(std::sync::Arc<std::sync::Mutex<(Vec<u8>, Option<String>)>>);

    impl Staged for Sink {
        fn append(&mut self, data: &[u8]) -> Result<(), BackendError> {
            self.0.lock().unwrap().0.extend_from_slice(data);
            Ok(())
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
            let g = self.0.lock().unwrap();
            let start = offset as usize;
            buf.copy_from_slice(&g.0[start..start + buf.len()]);
            Ok(())
        }
        fn commit(self: Box<Self>, name: &str) -> Result<(), BackendError> {
            self.0.lock().unwrap().1 = Some(name.to_owned());
            Ok(())
        }
    }

    #[test]
    fn a_pack_written_as_it_fills_reads_as_one_built_in_memory() {
        let k = Key::random();
        let fk = fk(&k);
        let blobs: Vec<Vec<u8>> = (0..40u32)
            .map(|i| {
                (0..(i as usize * 97_003) % 700_000)
                    .map(|j| (j as u32 ^ i) as u8)
                    .collect()
            })
            .collect();
        let push = |b: &mut PackBuilder, range: std::ops::Range<usize>| {
            for data in &blobs[range] {
                let id = Id::of_file(data);
                b.push_new(
                    &fk.key,
                    BlobKind::Data,
                    id,
                    data.len() as u32,
                    0,
                    data,
                    None,
                );
                b.spill().unwrap();
            }
        };
        // A staged pack absorbs a staged one (some of it in its file, the rest still
        // in memory) and one built in memory.
        let (mine, other) = (Sink::default(), Sink::default());
        let mut a = PackBuilder::staged(&fk, Vec::new(), Box::new(mine.clone()));
        push(&mut a, 0..20);
        let mut b = PackBuilder::staged(&fk, Vec::new(), Box::new(other.clone()));
        push(&mut b, 20..30);
        assert!(
            !other.0.lock().unwrap().0.is_empty(),
            "spilled as it filled"
        );
        assert!(!b.buf.is_empty(), "the last blobs still in memory");
        let mut c = PackBuilder::new(&fk, 1 << 20);
        push(&mut c, 30..40);
        assert!(
            a.buf.len() < SPILL_AT + 700_000,
            "at most one blob past the spill mark"
        );
        a.absorb(b).unwrap();
        a.absorb(c).unwrap();
        let len = a.len();
        let (id, finished, entries) = a.finish(&fk).unwrap();
        let Finished::Staged { file, spare } = finished else {
            panic!("a staged pack finishes staged")
        };
        assert!(spare.is_empty());
        file.commit(&id.to_hex()).unwrap();
        let (bytes, name) = mine.0.lock().unwrap().clone();
        assert_eq!(name, Some(id.to_hex()));
        assert_eq!(id, Id::of_file(&bytes), "named by the hash of its bytes");
        assert!(bytes.len() >= len);
        let (rfk, read) = read_entries(&bytes, &k, "p").unwrap();
        assert_eq!(read, entries);
        assert_eq!(read.len(), blobs.len());
        for (e, data) in read.iter().zip(&blobs) {
            let sealed = &bytes[e.offset as usize..(e.offset + e.sealed_len) as usize];
            let stored = open_blob(&rfk.key, e.kind, &e.id, sealed).unwrap();
            assert_eq!(&stored[1..], &data[..]);
        }
        // As long as the same blobs in one pack built in memory: padding is the same.
        let refs: Vec<&[u8]> = blobs.iter().map(|b| &b[..]).collect();
        let (mem, _) = pack_of(&k, &refs);
        assert_eq!(bytes.len(), mem.len());
    }

    #[test]
    fn blobs_filled_in_place_hold_at_most_the_spill_mark_or_one_blob() {
        let k = Key::random();
        let fk = fk(&k);
        let sizes = [
            100usize,
            300_000,
            900_000,
            2 << 20,
            50,
            1_500_000,
            700_000,
            10,
        ];
        let blobs: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 31 + i) as u8).collect())
            .collect();
        let sink = Sink::default();
        let mut p = PackBuilder::staged(&fk, Vec::new(), Box::new(sink.clone()));
        for data in &blobs {
            let id = Id::of_file(data);
            let len = p
                .push_filled(
                    &fk.key,
                    BlobKind::Data,
                    id,
                    data.len() as u32,
                    1 + data.len(),
                    |out| {
                        out.push(0);
                        out.extend_from_slice(data);
                    },
                )
                .unwrap();
            assert_eq!(len, 1 + data.len() + SEAL_OVERHEAD);
            p.spill().unwrap();
            assert!(
                p.buf.capacity() <= SPILL_AT.max(1 + data.len() + SEAL_OVERHEAD).max(2 << 20) + 64,
                "{} bytes kept for a blob of {}",
                p.buf.capacity(),
                data.len()
            );
        }
        let (id, finished, entries) = p.finish(&fk).unwrap();
        let Finished::Staged { file, .. } = finished else {
            panic!("a staged pack finishes staged")
        };
        file.commit(&id.to_hex()).unwrap();
        let bytes = sink.0.lock().unwrap().0.clone();
        assert_eq!(id, Id::of_file(&bytes));
        let (rfk, read) = read_entries(&bytes, &k, "p").unwrap();
        assert_eq!(read, entries);
        for (e, data) in read.iter().zip(&blobs) {
            let sealed = &bytes[e.offset as usize..(e.offset + e.sealed_len) as usize];
            let stored = open_blob(&rfk.key, e.kind, &e.id, sealed).unwrap();
            assert_eq!(stored[0], 0);
            assert_eq!(&stored[1..], &data[..]);
        }
        // The same blobs pushed the usual way give a pack as long.
        let refs: Vec<&[u8]> = blobs.iter().map(|b| &b[..]).collect();
        let (mem, _) = pack_of(&k, &refs);
        assert_eq!(bytes.len(), mem.len());
    }

    fn header_len(pack: &[u8]) -> usize {
        u32::from_le_bytes(pack[pack.len() - 4..].try_into().unwrap()) as usize
    }

    #[test]
    fn packs_of_small_blobs_are_all_as_long() {
        let k = Key::random();
        let blobs: [&[&[u8]]; 4] = [
            &[],
            &[&[7u8; 100]],
            &[&[7u8; 1900]],
            &[&[1u8; 30_000], b"a", b"b", b"c", b"d"],
        ];
        for blobs in blobs {
            let (bytes, entries) = pack_of(&k, blobs);
            assert_eq!(bytes[4], PADDED_VERSION);
            // What is in clear: the pack's length and its header's.
            assert_eq!(bytes.len(), MIN_PACK_LEN as usize);
            assert_eq!(header_len(&bytes), MIN_HEADER_LEN as usize);
            let (_, read) = read_entries(&bytes, &k, "p").unwrap();
            assert_eq!(read, entries);
        }
        // A larger pack is padded by Padmé: 82 + 100,041 + 40 + 4,096 + 4 = 104,263
        // bytes, rounded up to a multiple of 2 KiB.
        let (bytes, entries) = pack_of(&k, &[&vec![3u8; 100_000]]);
        assert_eq!(bytes.len(), 104_448);
        assert_eq!(read_entries(&bytes, &k, "p").unwrap().1, entries);
    }

    #[test]
    fn padding_is_authenticated_and_bound_to_the_version() {
        let k = Key::random();
        let (bytes, entries) = pack_of(&k, &[b"hello"]);
        let header_start = bytes.len() - 4 - header_len(&bytes);
        let pad_start = (entries[0].offset + entries[0].sealed_len) as usize;
        // Every byte of the pad and of the sealed header (nonces, zeros, tags) counts.
        let positions = (pad_start..bytes.len() - 4).step_by(331);
        for i in positions.chain([pad_start, header_start - 1, header_start, bytes.len() - 5]) {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            let err = read_entries(&bad, &k, "p").unwrap_err();
            assert!(err.to_string().contains("corrupt"), "byte {i}: {err}");
            let part = if i < header_start {
                "(padding)"
            } else {
                "(header)"
            };
            assert!(err.to_string().contains(part), "byte {i}: {err}");
        }
        // A padded pack passed off as an older, unpadded one fails its header.
        for v in [1u8, 2] {
            let mut old = bytes.clone();
            old[4] = v;
            assert!(read_entries(&old, &k, "p").is_err(), "version {v}");
        }
        // Truncated, or with the pad cut out: refused.
        assert!(read_entries(&bytes[..bytes.len() - 1], &k, "p").is_err());
        let mut cut = bytes[..pad_start].to_vec();
        cut.extend_from_slice(&bytes[header_start..]);
        assert!(read_entries(&cut, &k, "p").is_err());
    }

    #[test]
    fn unpadded_packs_of_versions_1_and_2_still_read() {
        let k = Key::random();
        let (old, e) = unpadded_pack(&k, b"written before padding");
        assert_eq!(old[4], 1);
        let (fk, entries) = read_entries(&old, &k, "p").unwrap();
        assert_eq!(entries, vec![e]);
        let sealed = &old[e.offset as usize..(e.offset + e.sealed_len) as usize];
        let plain = open_blob(&fk.key, e.kind, &e.id, sealed).unwrap();
        assert_eq!(&plain[1..], b"written before padding");
        // An old pack claiming to be padded is refused.
        let mut v3 = old.clone();
        v3[4] = PADDED_VERSION;
        assert!(read_entries(&v3, &k, "p").is_err());
    }

    #[test]
    fn padded_headers_decode_only_with_their_trailer() {
        let e = PackEntry {
            kind: BlobKind::Data,
            id: Id([9; 32]),
            offset: 82,
            sealed_len: 60,
            raw_len: 19,
            base: Some(Id([8; 32])),
        };
        let mut h = Vec::new();
        encode_entries(&[e, e], &mut h);
        assert!(decode_padded_entries(&h, "p").is_err(), "no trailer");
        // The old decoder refuses the trailer: an old reader never misreads padding.
        let mut padded = h.clone();
        padded.extend_from_slice(&[PAD_MARKER, 0, 0, 0]);
        assert!(decode_entries(&padded, "p").is_err());
        assert_eq!(decode_padded_entries(&padded, "p").unwrap(), vec![e, e]);
        let mut nonzero = padded.clone();
        *nonzero.last_mut().unwrap() = 1;
        assert!(decode_padded_entries(&nonzero, "p").is_err());
        assert_eq!(decode_padded_entries(&[PAD_MARKER], "p").unwrap(), vec![]);
    }
}

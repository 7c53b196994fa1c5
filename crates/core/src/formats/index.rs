//! The index: which blob lives in which pack, in memory and as index files.
//!
//! ```text
//! index file plaintext = pack count (u32 LE) | pack*
//! pack = pack id (32) | envelope (77, or 95 for kind 2; see sealed.rs) | entry count (u32 LE)
//!        | entry* (see pack.rs; an entry is 45 bytes, 77 with the base of a delta blob)
//! ```
//!
//! Index files written now (format version 3) end with the padding trailer `0xFF |
//! 0x00*` after the packs, so that the sealed file is `padded_len` bytes long and its
//! size does not give the number of blobs (see `padding`). Readers accept files with
//! and without it.
//!
//! The index repeats each pack's envelope so that blobs can be read with one ranged
//! read, without first reading the pack's head.

use crate::error::{Error, Result};
use crate::formats::id::{BlobKind, Id};
use crate::formats::pack::{decode_entry, encode_entries, PackEntry, ENTRY_LEN};
use crate::formats::sealed::{Envelope, ENVELOPE_LEN};
use std::collections::HashMap;

/// Who wrote an index file, as far as its envelope can tell: what decides which copy of a
/// blob stored twice is read first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trust {
    /// Sealed to the data public key: written by a put-only key.
    PutOnly = 0,
    /// Sealed with the meta key (index files written before version 3), which put-only
    /// keys hold too: its writer cannot be told.
    Unknown = 1,
    /// Sealed with the data key, which only full keys hold.
    Full = 2,
}

/// A pack known to the index.
#[derive(Clone, Debug)]
pub struct PackInfo {
    /// The pack's file name.
    pub id: Id,
    /// The pack's key envelope.
    pub envelope: Envelope,
}

/// Where a blob is.
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

/// An indexed blob as held in memory: 48 bytes, the kind folded into the pack position.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: Id,
    /// Pack position, with [`TREE_BIT`] set for tree blobs.
    pack: u32,
    offset: u32,
    sealed_len: u32,
    raw_len: u32,
}

const TREE_BIT: u32 = 1 << 31;

impl Entry {
    fn new(id: Id, loc: BlobLocation) -> Entry {
        debug_assert!(loc.pack < TREE_BIT);
        Entry {
            id,
            pack: loc.pack
                | if loc.kind == BlobKind::Tree {
                    TREE_BIT
                } else {
                    0
                },
            offset: loc.offset,
            sealed_len: loc.sealed_len,
            raw_len: loc.raw_len,
        }
    }

    fn location(&self) -> BlobLocation {
        BlobLocation {
            pack: self.pack & !TREE_BIT,
            offset: self.offset,
            sealed_len: self.sealed_len,
            raw_len: self.raw_len,
            kind: if self.pack & TREE_BIT != 0 {
                BlobKind::Tree
            } else {
                BlobKind::Data
            },
        }
    }
}

/// Blobs the map of recent additions holds at least before it is merged; see [`Index`].
const MERGE_MIN: usize = 1 << 16;

/// The in-memory index of a repository.
///
/// Memory is what a deduplicating backup of a large repository spends most on, so the
/// blobs are kept compactly: a vector of 48-byte entries sorted by id, found by binary
/// search within the range of their first two bytes (a 65,537-entry directory of
/// offsets; ids are keyed hashes, so the ranges are even). Blobs added during a backup
/// go to a small hash map first, merged into the vector in place (from the back, after
/// one reallocation that the allocator serves by remapping pages) when it holds
/// 1/16 of the vector's size or [`MERGE_MIN`] entries. About 50 bytes per blob, with no
/// growth spikes.
#[derive(Debug)]
pub struct Index {
    packs: Vec<PackInfo>,
    /// How far the index files that list each pack are trusted (the most trusted one).
    trust: Vec<Trust>,
    pack_pos: HashMap<Id, u32>,
    /// Further locations of blobs stored more than once (read when the first fails).
    alternates: HashMap<Id, Vec<BlobLocation>>,
    sorted: Vec<Entry>,
    /// `sorted[dir[p]..dir[p + 1]]` are the entries whose id starts with `p` (big endian).
    dir: Vec<u32>,
    recent: HashMap<Id, Entry>,
}

impl Default for Index {
    fn default() -> Index {
        Index {
            packs: Vec::new(),
            trust: Vec::new(),
            pack_pos: HashMap::new(),
            alternates: HashMap::new(),
            sorted: Vec::new(),
            dir: vec![0; (1 << 16) + 1],
            recent: HashMap::new(),
        }
    }
}

/// One pack's entries as stored in an index file.
pub type IndexedPack = (PackInfo, Vec<PackEntry>);

fn prefix(id: &Id) -> usize {
    u16::from_be_bytes([id.0[0], id.0[1]]) as usize
}

impl Index {
    /// An empty index.
    pub fn new() -> Index {
        Index::default()
    }

    fn pack_position(&mut self, info: &PackInfo, trust: Trust) -> u32 {
        // A pack sealed to the public key was written by a put-only key, whoever lists it.
        let trust = if info.envelope.is_public() {
            Trust::PutOnly
        } else {
            trust
        };
        match self.pack_pos.get(&info.id) {
            Some(&p) => {
                let t = &mut self.trust[p as usize];
                *t = (*t).max(trust);
                p
            }
            None => {
                let p = self.packs.len() as u32;
                assert!(p < TREE_BIT, "more than 2^31 packs");
                self.packs.push(info.clone());
                self.trust.push(trust);
                self.pack_pos.insert(info.id, p);
                p
            }
        }
    }

    fn location(pos: u32, e: &PackEntry) -> BlobLocation {
        BlobLocation {
            pack: pos,
            offset: e.offset,
            sealed_len: e.sealed_len,
            raw_len: e.raw_len,
            kind: e.kind,
        }
    }

    /// Adds a pack and its blobs. A blob already indexed keeps its location.
    pub fn add_pack(&mut self, info: &PackInfo, entries: &[PackEntry]) {
        let pos = self.pack_position(info, Trust::Unknown);
        for e in entries {
            if self.find_sorted(&e.id).is_none() {
                self.recent
                    .entry(e.id)
                    .or_insert_with(|| Entry::new(e.id, Self::location(pos, e)));
            }
        }
        if self.recent.len() >= MERGE_MIN.max(self.sorted.len() / 16) {
            self.merge_recent();
        }
    }

    /// Adds many packs at once (loading the index files): one sort instead of merges.
    pub fn add_packs<'p>(&mut self, packs: impl IntoIterator<Item = &'p IndexedPack>) {
        self.extend_unsorted(packs, Trust::Unknown);
        self.finish_load();
    }

    /// Appends packs without sorting: lookups are wrong until [`Index::finish_load`].
    /// Loading calls this per batch of index files so that the decoded files and the
    /// index are not both whole in memory at once.
    pub(crate) fn extend_unsorted<'p>(
        &mut self,
        packs: impl IntoIterator<Item = &'p IndexedPack>,
        trust: Trust,
    ) {
        self.merge_recent();
        for (info, entries) in packs {
            let pos = self.pack_position(info, trust);
            self.sorted.extend(
                entries
                    .iter()
                    .map(|e| Entry::new(e.id, Self::location(pos, e))),
            );
        }
    }

    /// Makes room for `n` more blobs.
    pub(crate) fn reserve(&mut self, n: usize) {
        self.sorted.reserve_exact(n);
    }

    /// Sorts what [`Index::extend_unsorted`] appended.
    pub(crate) fn finish_load(&mut self) {
        // In place (a stable sort would need scratch space of half the index). Of equal
        // ids (one blob stored in two packs) the copy in the most trusted pack comes
        // first, so an index file a put-only key wrote never shadows a full key's; the
        // others are kept as alternates, read if the first copy turns out damaged.
        let trust = &self.trust;
        let rank = |e: &Entry| trust[(e.pack & !TREE_BIT) as usize];
        self.sorted
            .sort_unstable_by(|a, b| a.id.cmp(&b.id).then_with(|| rank(b).cmp(&rank(a))));
        let alternates = &mut self.alternates;
        self.sorted.dedup_by(|later, first| {
            let same = later.id == first.id;
            if same {
                alternates
                    .entry(later.id)
                    .or_default()
                    .push(later.location());
            }
            same
        });
        self.sorted.shrink_to_fit();
        self.rebuild_dir();
    }

    fn merge_recent(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let mut new: Vec<Entry> = self.recent.drain().map(|(_, e)| e).collect();
        self.recent.shrink_to_fit();
        new.sort_unstable_by_key(|e| e.id);
        let (n, m) = (self.sorted.len(), new.len());
        self.sorted.reserve_exact(m);
        self.sorted.extend_from_slice(&new); // placeholders, overwritten below
                                             // Merge from the back: the largest remaining entry of either goes last.
        let (mut i, mut j, mut k) = (n, m, n + m);
        while j > 0 {
            k -= 1;
            if i > 0 && self.sorted[i - 1].id > new[j - 1].id {
                self.sorted[k] = self.sorted[i - 1];
                i -= 1;
            } else {
                self.sorted[k] = new[j - 1];
                j -= 1;
            }
        }
        self.rebuild_dir();
    }

    fn rebuild_dir(&mut self) {
        let mut at = 0usize;
        for p in 0..(1usize << 16) {
            self.dir[p] = at as u32;
            while at < self.sorted.len() && prefix(&self.sorted[at].id) == p {
                at += 1;
            }
        }
        self.dir[1 << 16] = at as u32;
    }

    fn find_sorted(&self, id: &Id) -> Option<&Entry> {
        let p = prefix(id);
        let range = &self.sorted[self.dir[p] as usize..self.dir[p + 1] as usize];
        range
            .binary_search_by(|e| e.id.cmp(id))
            .ok()
            .map(|i| &range[i])
    }

    /// Looks a blob up.
    pub fn get(&self, id: &Id) -> Option<BlobLocation> {
        self.find_sorted(id)
            .or_else(|| self.recent.get(id))
            .map(Entry::location)
    }

    /// The other locations of a blob stored more than once (after the one
    /// [`Index::get`] gives), most trusted first.
    pub fn alternates(&self, id: &Id) -> &[BlobLocation] {
        self.alternates.get(id).map_or(&[], |v| v.as_slice())
    }

    /// How far the index files that list the pack at `pos` are trusted.
    pub fn trust(&self, pos: u32) -> Trust {
        self.trust[pos as usize]
    }

    /// True when the blob is indexed.
    pub fn contains(&self, id: &Id) -> bool {
        self.find_sorted(id).is_some() || self.recent.contains_key(id)
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
        self.sorted.len() + self.recent.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All blobs with their locations, in no particular order.
    pub fn blobs(&self) -> impl Iterator<Item = (&Id, BlobLocation)> {
        self.sorted
            .iter()
            .chain(self.recent.values())
            .map(|e| (&e.id, e.location()))
    }
}

/// The packs that index files list, each once (the first listing wins), by pack id;
/// and the files' names.
pub(crate) fn packs_of_files(
    files: Vec<(String, Vec<IndexedPack>)>,
) -> (std::collections::BTreeMap<Id, IndexedPack>, Vec<String>) {
    let mut packs = std::collections::BTreeMap::new();
    let names = files
        .into_iter()
        .map(|(name, file_packs)| {
            for (info, entries) in file_packs {
                packs.entry(info.id).or_insert((info, entries));
            }
            name
        })
        .collect();
    (packs, names)
}

/// Encodes an index file's plaintext, padded so that the sealed file (header, a kind-1
/// envelope, the seal's nonce and tag) is `padded_len` bytes long.
pub fn encode_index_file(packs: &[IndexedPack]) -> Vec<u8> {
    let mut out = encode_index_file_unpadded(packs);
    out.push(crate::formats::padding::PAD_MARKER);
    let sealed_extra = 5 + ENVELOPE_LEN + cairn_crypto::SEAL_OVERHEAD;
    let unpadded = (out.len() + sealed_extra) as u64;
    let padded =
        crate::formats::padding::padded_len(unpadded, crate::formats::padding::MIN_INDEX_LEN);
    out.resize(out.len() + (padded - unpadded) as usize, 0);
    out
}

/// Encodes an index file's plaintext as written before padding (format versions 1 and
/// 2): the packs only.
pub fn encode_index_file_unpadded(packs: &[IndexedPack]) -> Vec<u8> {
    let n: usize = packs.iter().map(|(_, e)| e.len()).sum();
    let mut out = Vec::with_capacity(4 + packs.len() * (32 + ENVELOPE_LEN + 4) + n * ENTRY_LEN);
    out.extend_from_slice(&(packs.len() as u32).to_le_bytes());
    for (info, entries) in packs {
        out.extend_from_slice(&info.id.0);
        out.extend_from_slice(info.envelope.as_bytes());
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
        let envelope = Envelope::parse_prefix(&bytes[pos..], what)?;
        pos += envelope.len();
        let n = u32::from_le_bytes(take(&mut pos, 4)?.try_into().unwrap()) as usize;
        // Each entry takes at least ENTRY_LEN bytes: refuse counts the rest cannot hold.
        if n > (bytes.len() - pos) / ENTRY_LEN {
            return Err(bad("entry count larger than the file"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(decode_entry(bytes, &mut pos, what)?);
        }
        packs.push((PackInfo { id, envelope }, entries));
    }
    if pos != bytes.len() && !crate::formats::padding::is_trailer(&bytes[pos..]) {
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
            envelope: Envelope::filled(1),
        };
        let entries = vec![
            PackEntry {
                kind: BlobKind::Tree,
                id: Id::of_file(b"b"),
                offset: 82,
                sealed_len: 100,
                raw_len: 60,
                base: None,
            },
            PackEntry {
                kind: BlobKind::Data,
                id: Id::of_file(b"d"),
                offset: 182,
                sealed_len: 50,
                raw_len: 900,
                base: Some(Id::of_file(b"base")),
            },
        ];
        let enc = encode_index_file(&[(info.clone(), entries.clone())]);
        let dec = decode_index_file(&enc, "i").unwrap();
        assert_eq!(dec[0].0.id, info.id);
        assert_eq!(dec[0].1, entries);
        // Cut anywhere before the padding trailer: refused. (Cutting zeros off the
        // trailer leaves a valid plaintext; the seal around it is what detects that.)
        let content = encode_index_file_unpadded(&[(info.clone(), entries.clone())]).len();
        assert_eq!(enc[content], crate::formats::padding::PAD_MARKER);
        for n in 0..content {
            assert!(decode_index_file(&enc[..n], "i").is_err(), "{n}");
        }
        let mut idx = Index::new();
        idx.add_pack(&dec[0].0, &dec[0].1);
        assert_eq!(idx.get(&entries[0].id).unwrap().raw_len, 60);
    }

    #[test]
    fn index_files_are_padded_and_unpadded_ones_still_read() {
        let sealed_len =
            |plain: &[u8]| 5 + ENVELOPE_LEN + cairn_crypto::SEAL_OVERHEAD + plain.len();
        let one = encode_index_file(&[pack(1, 0..1)]);
        let three = encode_index_file(&[pack(1, 0..3)]);
        assert_eq!(sealed_len(&one), 4096);
        assert_eq!(sealed_len(&three), 4096, "the blob count is not visible");
        let big = encode_index_file(&[pack(1, 0..100), pack(2, 100..300)]);
        assert_eq!(
            sealed_len(&big),
            14_336,
            "Padmé above the minimum (13,853 bytes: multiples of 512)"
        );
        for (plain, n) in [(&one, 1), (&three, 3), (&big, 300)] {
            let dec = decode_index_file(plain, "i").unwrap();
            assert_eq!(dec.iter().map(|(_, e)| e.len()).sum::<usize>(), n);
        }
        // Without the trailer (versions 1 and 2), as before.
        let old = encode_index_file_unpadded(&[pack(1, 0..3)]);
        assert_eq!(decode_index_file(&old, "i").unwrap()[0].1, pack(1, 0..3).1);
        // Anything but zero bytes after the marker is refused.
        let mut bad = three.clone();
        *bad.last_mut().unwrap() = 1;
        assert!(decode_index_file(&bad, "i").is_err());
        let mut no_marker = old.clone();
        no_marker.extend_from_slice(&[0, 0, 0]);
        assert!(decode_index_file(&no_marker, "i").is_err());
    }

    fn pack(n: u8, ids: impl Iterator<Item = u32>) -> IndexedPack {
        let info = PackInfo {
            id: Id::of_file(&[n]),
            envelope: Envelope::filled(1),
        };
        let entries = ids
            .map(|i| PackEntry {
                kind: if i % 3 == 0 {
                    BlobKind::Tree
                } else {
                    BlobKind::Data
                },
                id: Id::of_file(&i.to_le_bytes()),
                offset: i,
                sealed_len: i + 1,
                raw_len: n as u32,
                base: None,
            })
            .collect();
        (info, entries)
    }

    #[test]
    fn sorted_and_recent_agree_with_a_hash_map() {
        let mut idx = Index::new();
        let mut model: HashMap<Id, BlobLocation> = HashMap::new();
        let mut add_model = |idx: &Index, p: &IndexedPack| {
            let pos = idx.packs().iter().position(|i| i.id == p.0.id).unwrap() as u32;
            for e in &p.1 {
                model.entry(e.id).or_insert(Index::location(pos, e));
            }
        };
        // Bulk load, then many packs one by one (several merges), overlapping each
        // other and the bulk-loaded ones: a blob keeps the location it was indexed at.
        let bulk = vec![pack(1, 0..50_000), pack(2, 50_000..90_000)];
        idx.add_packs(&bulk);
        for p in &bulk {
            add_model(&idx, p);
        }
        for n in 3..40u8 {
            let start = n as u32 * 7_000;
            let p = pack(n, start..start + 9_000);
            idx.add_pack(&p.0, &p.1);
            add_model(&idx, &p);
        }
        assert!(idx.sorted.len() > 90_000 && idx.len() == model.len());
        for (id, loc) in &model {
            assert_eq!(idx.get(id), Some(*loc), "{}", id.short());
        }
        assert!(idx.sorted.windows(2).all(|w| w[0].id < w[1].id));
        assert!(!idx.contains(&Id::of_file(b"absent")));
        let listed: HashMap<Id, BlobLocation> = idx.blobs().map(|(i, l)| (*i, l)).collect();
        assert_eq!(listed, model);
        assert_eq!(std::mem::size_of::<Entry>(), 48);
    }
}

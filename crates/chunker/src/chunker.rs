//! The cut-point search over byte slices.

use std::fmt;
use std::iter::FusedIterator;
use std::ops::Range;
use std::sync::Arc;

use crate::params::{ChunkerError, ChunkerParams};

/// The blake3 key-derivation context of the gear table. Part of the repository format:
/// changing it (or anything in the derivation on [`Chunker::new`]) moves every chunk
/// boundary.
pub const GEAR_CONTEXT: &str = "cairn chunker gear table v1";

/// Derives the 256-entry gear table from a 32-byte seed; see [`Chunker::new`].
fn gear_from_seed(seed: &[u8; 32]) -> [u64; 256] {
    let mut xof = blake3::Hasher::new_derive_key(GEAR_CONTEXT)
        .update(seed)
        .finalize_xof();
    let mut bytes = [0u8; 256 * 8];
    xof.fill(&mut bytes);
    let mut gear = [0u64; 256];
    for (g, b) in gear.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(b);
        *g = u64::from_le_bytes(le);
    }
    gear
}

/// The gear table and its left-shifted twin (FastCDC 2020, section 3.7: `gear_ls[b] ==
/// gear[b] << 1`, so that the even byte of a pair needs no separate shift).
struct Tables {
    gear: [u64; 256],
    gear_ls: [u64; 256],
}

/// Finds FastCDC (2020) cut points with a seeded gear table.
///
/// # Algorithm
///
/// For a buffer `data`, the first chunk ends at the first position `i` with
/// `min_size <= i < min(data.len(), max_size)` such that
///
/// ```text
/// h(i) & mask(i) == 0,   where  h(min_size - 1) = 0,
///                               h(i) = (h(i - 1) << 1) + gear[data[i]]   (wrapping)
///                               mask(i) = strict if i < avg_size else loose
/// ```
///
/// and the chunk is then `data[..i]` (the byte that completed the match starts the next
/// chunk, exactly as in the fastcdc crate). With no such position the chunk is
/// `max_size` bytes, or the whole (shorter) remainder at end of input. This is normalized
/// chunking, level 1: a stricter mask (one more bit) before the average size and a looser
/// one (one bit fewer) after it bunch chunk sizes around `avg_size`.
///
/// Whether `i` is a cut point depends only on `data[min_size..=i]`, never on how much
/// data follows or on how it was read; [`next_cut`](Chunker::next_cut) and
/// [`StreamChunker`](crate::StreamChunker) rely on that.
///
/// # Speed
///
/// The loop consumes two bytes per iteration ("rolling two bytes each time", FastCDC
/// 2020): `hash << 2` plus `gear_ls[even byte]` is `h(i) << 1`, tested against
/// `mask << 1`; adding `gear[odd byte]` to it gives `h(i + 1)`, tested against `mask`.
/// It tests exactly the same positions as the byte-at-a-time definition above, in either
/// parity: a region (`min_size..avg_size`, `avg_size..limit`) of odd length ends with one
/// single-byte step, and the next region starts its pairs wherever that one ended. So,
/// unlike the fastcdc crate (whose pairs are aligned to even offsets and which never
/// tests the last byte of an odd-length tail), any `min_size`, `max_size` and data length
/// work and the result equals the simple definition; tests check both claims.
///
/// The loop is latency-bound on the hash chain (shift, add, add: about 3 cycles per two
/// bytes), exactly like the fastcdc crate's, and runs at the same speed (about 3 GiB/s
/// with [`ChunkerParams::STREAMS`] and 4 GiB/s with [`ChunkerParams::FILES`], which
/// skips more bytes, on the project's 2-core AMD EPYC; `benches/chunk.rs`). Computing
/// `gear_ls[even] + gear[odd]` off the chain would halve its latency, but LLVM
/// reassociates it back; not worth fighting the optimizer for a stage that is never the
/// bottleneck (compression and sealing are).
///
/// # Secrecy
///
/// The gear table is derived from a per-repository secret so that an observer cannot
/// predict boundaries of known content. Cloning is cheap (the tables are shared), and
/// `Debug` prints the parameters only, never the table.
#[derive(Clone)]
pub struct Chunker {
    params: ChunkerParams,
    min: usize,
    avg: usize,
    max: usize,
    mask_s: u64,
    mask_l: u64,
    tables: Arc<Tables>,
}

impl fmt::Debug for Chunker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunker")
            .field("params", &self.params)
            .field("gear", &"[redacted]")
            .finish()
    }
}

impl Chunker {
    /// A chunker whose gear table is derived from a 32-byte per-repository secret.
    ///
    /// The derivation, part of the repository format:
    ///
    /// ```text
    /// xof  = blake3::Hasher::new_derive_key("cairn chunker gear table v1")
    ///            .update(seed)
    ///            .finalize_xof()
    /// out  = the first 256 * 8 = 2048 bytes of xof
    /// gear[i] = u64::from_le_bytes(out[8 * i .. 8 * i + 8])      for i in 0..256
    /// ```
    ///
    /// That is BLAKE3 in key-derivation mode with that context string and the seed as
    /// key material, extended output; its first 32 bytes equal
    /// `blake3::derive_key("cairn chunker gear table v1", seed)`. Masks and the
    /// left-shifted table follow from `params` and `gear` (see [`Chunker`]).
    ///
    /// Why not XOR a seed into a fixed table, as the fastcdc crate does: every entry
    /// would share the same secret offset, which leaks through chunk sizes of known data
    /// (see "Breaking and Fixing Content-Defined Chunking", CCS 2025); independent
    /// pseudo-random entries leave no such structure. The table reveals nothing about
    /// the seed itself (BLAKE3 is one-way), so the table is not zeroized on drop.
    pub fn new(params: ChunkerParams, seed: &[u8; 32]) -> Result<Chunker, ChunkerError> {
        Chunker::with_gear(params, gear_from_seed(seed))
    }

    /// The same algorithm with an explicit gear table: used to prove equality with the
    /// fastcdc crate's table, and for tests.
    pub fn with_gear(params: ChunkerParams, gear: [u64; 256]) -> Result<Chunker, ChunkerError> {
        params.validate()?;
        let (mask_s, mask_l) = params.masks();
        let gear_ls = gear.map(|g| g << 1);
        Ok(Chunker {
            params,
            min: params.min_size as usize,
            avg: params.avg_size as usize,
            max: params.max_size as usize,
            mask_s,
            mask_l,
            tables: Arc::new(Tables { gear, gear_ls }),
        })
    }

    /// The (validated) parameters.
    pub fn params(&self) -> ChunkerParams {
        self.params
    }

    /// Length of the first chunk of `data`.
    ///
    /// - A content-defined cut point found in `data` gives `Some(i)` with
    ///   `min_size <= i < max_size`, whatever `eof` is.
    /// - Otherwise, if `data.len() >= max_size`: `Some(max_size)`.
    /// - Otherwise, if `eof`: the rest is the last chunk, `Some(data.len())`, or `None`
    ///   when `data` is empty.
    /// - Otherwise `None`: the caller must supply more bytes (at least up to `max_size`
    ///   to be sure of an answer; asking again with a longer buffer re-hashes from
    ///   `min_size`, so grow the buffer generously).
    ///
    /// Never returns `Some(0)` nor more than `max_size`. With `eof == false` an answer is
    /// final: it is the same as for any longer `data` with the same prefix.
    #[inline]
    pub fn next_cut(&self, data: &[u8], eof: bool) -> Option<usize> {
        let len = data.len();
        if len == 0 {
            return None;
        }
        let limit = len.min(self.max);
        if limit > self.min {
            let t = &*self.tables;
            // min <= avg (validated), so min <= split <= limit.
            let split = self.avg.min(limit);
            let hash = match scan(&data[self.min..split], 0, self.mask_s, t) {
                Ok(i) => return Some(self.min + i),
                Err(hash) => hash,
            };
            if let Ok(i) = scan(&data[split..limit], hash, self.mask_l, t) {
                return Some(split + i);
            }
        }
        if len >= self.max {
            Some(self.max)
        } else if eof {
            Some(len)
        } else {
            None
        }
    }

    /// Iterator over the chunk ranges of a complete buffer (every call is `eof = true`).
    /// The ranges are contiguous, cover `data` exactly, and are empty for empty `data`.
    pub fn cuts<'a>(&'a self, data: &'a [u8]) -> Cuts<'a> {
        Cuts {
            chunker: self,
            data,
            pos: 0,
        }
    }
}

/// Tests every position of `data` in order, continuing the gear hash `hash`: returns the
/// offset of the first position whose hash matches `mask`, or the hash after the last
/// byte. Two bytes per iteration, then one single step for an odd length; the positions
/// tested and the hash values are exactly those of a byte-at-a-time loop.
#[inline(always)]
fn scan(data: &[u8], mut hash: u64, mask: u64, t: &Tables) -> Result<usize, u64> {
    let mask_ls = mask << 1;
    let mut pairs = data.chunks_exact(2);
    let mut offset = 0;
    for pair in &mut pairs {
        let &[even, odd] = pair else { break };
        // (h << 2) + (gear[even] << 1) == h(even) << 1; bit 63 of mask is clear, so
        // testing it against mask << 1 is testing h(even) against mask.
        let shifted = (hash << 2).wrapping_add(t.gear_ls[even as usize]);
        if shifted & mask_ls == 0 {
            return Ok(offset);
        }
        hash = shifted.wrapping_add(t.gear[odd as usize]);
        if hash & mask == 0 {
            return Ok(offset + 1);
        }
        offset += 2;
    }
    if let &[last] = pairs.remainder() {
        hash = (hash << 1).wrapping_add(t.gear[last as usize]);
        if hash & mask == 0 {
            return Ok(offset);
        }
    }
    Err(hash)
}

/// The chunk ranges of a buffer; see [`Chunker::cuts`].
#[derive(Clone)]
pub struct Cuts<'a> {
    chunker: &'a Chunker,
    data: &'a [u8],
    pos: usize,
}

impl fmt::Debug for Cuts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cuts")
            .field("chunker", self.chunker)
            .field("len", &self.data.len())
            .field("pos", &self.pos)
            .finish()
    }
}

impl Iterator for Cuts<'_> {
    type Item = Range<usize>;

    #[inline]
    fn next(&mut self) -> Option<Range<usize>> {
        let rest = self.data.get(self.pos..)?;
        let n = self.chunker.next_cut(rest, true)?;
        let start = self.pos;
        self.pos += n;
        Some(start..self.pos)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Every chunk but the last is at least min_size and at most max_size bytes.
        let rest = self.data.len().saturating_sub(self.pos);
        (
            rest.div_ceil(self.chunker.max),
            Some(rest.div_ceil(self.chunker.min)),
        )
    }
}

impl FusedIterator for Cuts<'_> {}

#[cfg(test)]
impl Chunker {
    /// The gear table, for the reference implementation in the tests.
    pub(crate) fn gear(&self) -> &[u64; 256] {
        &self.tables.gear
    }
}

//! The chunker: parameters and seed come from the first bytes of the input, the rest is
//! the data. Parameters that `validate()` refuses must be refused by `Chunker::new` too
//! (and nothing else happens); for accepted ones every documented invariant is checked:
//!
//! - every chunk is `1..=max_size` bytes, and every chunk but the last `>= min_size`;
//! - the chunks of `cuts()` are contiguous and cover the input exactly;
//! - streaming (`next_cut(.., eof = false)` on growing prefixes, then `eof = true` on
//!   the whole rest) gives the same cuts as `cuts()`, i.e. an answer with `eof = false`
//!   is final;
//! - `StreamChunker` over a reader that returns short reads gives the same chunks.
//!
//! Any violation panics.
//!
//! Header layout (8 bytes; shorter inputs are ignored):
//!
//! ```text
//! byte 0      bit 7 set: "raw" mode, min/avg/max are read as little-endian numbers
//!             (mostly invalid: exercises validate()); else the low 5 bits pick
//!             avg = 1 << (b % 26), which is valid for 6..=24
//! bytes 1-2   min: raw u16, or scaled into 0..=avg (values < 64 are invalid)
//! bytes 3-5   max: raw u24 << (byte 0 & 7) in raw mode, else avg + (u24 % (7 * avg + 1))
//! byte 6      seed: [byte; 32]
//! byte 7      streaming step and short-read sizes
//! ```
#![no_main]

use std::io::Read;

use cairn_chunker::{Chunker, ChunkerParams, StreamChunker};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = 8;

fn params(h: &[u8]) -> ChunkerParams {
    let min16 = u32::from(u16::from_le_bytes([h[1], h[2]]));
    let u24 = u32::from_le_bytes([h[3], h[4], h[5], 0]);
    if h[0] & 0x80 != 0 {
        // Raw: avg from the low bits as an arbitrary (usually not power of two) number.
        let avg = u32::from(h[0] & 0x7f) << 8 | u32::from(h[2]);
        ChunkerParams {
            min_size: min16,
            avg_size: avg,
            max_size: u24 << (h[0] & 7),
        }
    } else {
        let avg = 1u32 << (h[0] % 26);
        let min = (u64::from(min16) * (u64::from(avg) + 1) / 0x1_0000) as u32;
        let span = 7 * u64::from(avg) + 1;
        let max = u64::from(avg) + u64::from(u24) % span;
        ChunkerParams {
            min_size: min,
            avg_size: avg,
            max_size: max.min(u64::from(u32::MAX)) as u32,
        }
    }
}

/// A reader that returns at most `sizes[i % len]` bytes per read (never 0 before the end).
struct ShortReads<'a> {
    data: &'a [u8],
    sizes: [usize; 4],
    i: usize,
}

impl Read for ShortReads<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.sizes[self.i % self.sizes.len()];
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fuzz_target!(|input: &[u8]| {
    if input.len() < HEADER {
        return;
    }
    let (h, data) = input.split_at(HEADER);
    let p = params(h);
    let seed = [h[6]; 32];
    let valid = p.validate().is_ok();
    let chunker = match Chunker::new(p, &seed) {
        Ok(c) => c,
        Err(e) => {
            assert!(!valid, "validate() accepted {p:?} but Chunker::new refused it: {e}");
            return;
        }
    };
    assert!(valid, "Chunker::new accepted {p:?} that validate() refuses");
    let (min, max) = (p.min_size as usize, p.max_size as usize);

    // 1. cuts(): sizes and exact coverage.
    let cuts: Vec<std::ops::Range<usize>> = chunker.cuts(data).collect();
    let mut pos = 0;
    for (i, r) in cuts.iter().enumerate() {
        assert_eq!(r.start, pos, "cut {i} does not start where the previous ended ({p:?})");
        let len = r.end.checked_sub(r.start).expect("range runs backwards");
        assert!(len > 0, "empty chunk {i} ({p:?})");
        assert!(len <= max, "chunk {i} of {len} bytes exceeds max_size ({p:?})");
        if i + 1 < cuts.len() {
            assert!(len >= min, "chunk {i} of {len} bytes below min_size, not last ({p:?})");
        }
        pos = r.end;
    }
    assert_eq!(pos, data.len(), "cuts do not cover the input ({p:?})");
    assert_eq!(chunker.next_cut(&[], true), None, "next_cut on empty data");
    assert_eq!(chunker.next_cut(&[], false), None, "next_cut on empty data");

    // 2. Streaming on growing prefixes with eof = false until the whole input is there.
    // Steps are at least len / 512 so that re-hashing from min_size each time stays cheap.
    let step = (usize::from(h[7] % 64) + 1).max(data.len() / 512);
    let mut streamed = Vec::with_capacity(cuts.len());
    let mut start = 0;
    let mut end = 0;
    while start < data.len() {
        let eof = end == data.len();
        match chunker.next_cut(&data[start..end], eof) {
            Some(n) => {
                assert!(n > 0 && n <= end - start, "next_cut returned {n} for {} bytes", end - start);
                streamed.push(start..start + n);
                start += n;
            }
            None => {
                assert!(!eof || start == end, "next_cut(eof = true) gave None with data left");
                assert!(end - start < max, "next_cut gave None with max_size bytes buffered");
                end = (end + step).min(data.len());
            }
        }
    }
    assert_eq!(streamed, cuts, "streaming cuts differ from cuts() ({p:?}, step {step})");

    // 3. StreamChunker over short reads.
    let s = usize::from(h[7]);
    let reader = ShortReads {
        data,
        sizes: [s % 7 + 1, s * 13 % 257 + 1, 4096, s * 31 % 65521 + 1],
        i: 0,
    };
    let mut sc = StreamChunker::new(chunker.clone(), reader);
    let mut pos = 0;
    let mut k = 0;
    while let Some(chunk) = sc.next_chunk().expect("in-memory reader does not fail") {
        let r = cuts.get(k).unwrap_or_else(|| panic!("StreamChunker gave more than {} chunks", cuts.len()));
        assert_eq!(pos..pos + chunk.len(), *r, "StreamChunker chunk {k} differs from cuts() ({p:?})");
        assert_eq!(chunk, &data[r.clone()], "StreamChunker chunk {k} has different bytes");
        pos += chunk.len();
        k += 1;
    }
    assert_eq!(k, cuts.len(), "StreamChunker gave fewer chunks than cuts() ({p:?})");
});

//! Tests: the optimized chunker against a byte-at-a-time reference and against the
//! fastcdc crate, streaming against whole-buffer chunking, parameter validation, and
//! golden values that freeze the on-disk-relevant behaviour.

use std::io::{self, Read};
use std::ops::Range;

use fastcdc::v2020::{self as crate_v2020, Normalization};
use proptest::prelude::*;

use crate::params::MASKS;
use crate::{Chunker, ChunkerError, ChunkerParams, StreamChunker, GEAR_CONTEXT};

// ---------------------------------------------------------------------------------------
// Helpers

/// Reproducible test data from a seed: `kind` 0 is random bytes, 1 is low entropy (three
/// byte values), 2 a short random pattern repeated, 3 all zeros.
fn test_data(seed: u64, len: usize, kind: u8) -> Vec<u8> {
    let mut random = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"cairn chunker test data")
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut random);
    match kind % 4 {
        0 => random,
        1 => random.iter().map(|b| b % 3).collect(),
        2 => {
            let period = 1 + (seed % 97) as usize;
            (0..len).map(|i| random[i % period]).collect()
        }
        _ => vec![0; len],
    }
}

fn seed_from(n: u64) -> [u8; 32] {
    *blake3::hash(&n.to_le_bytes()).as_bytes()
}

fn params(min_size: u32, avg_size: u32, max_size: u32) -> ChunkerParams {
    ChunkerParams {
        min_size,
        avg_size,
        max_size,
    }
}

/// The fastcdc crate's default gear table, through its public API (seed 0 = unchanged).
fn fastcdc_gear() -> [u64; 256] {
    let (gear, _) = crate_v2020::get_gear_with_seed(0);
    let mut out = [0u64; 256];
    out.copy_from_slice(&gear);
    out
}

/// The obviously-correct definition: one byte per step, masks from the fastcdc crate's
/// own `select_masks` (normalization level 1), the cut rule as documented on `Chunker`.
fn reference_next_cut(
    gear: &[u64; 256],
    p: ChunkerParams,
    data: &[u8],
    eof: bool,
) -> Option<usize> {
    let (min, avg, max) = (
        p.min_size as usize,
        p.avg_size as usize,
        p.max_size as usize,
    );
    let (strict, loose) = crate_v2020::select_masks(avg, Normalization::Level1);
    let mut hash = 0u64;
    for (i, &byte) in data.iter().enumerate().take(max).skip(min) {
        hash = (hash << 1).wrapping_add(gear[byte as usize]);
        let mask = if i < avg { strict } else { loose };
        if hash & mask == 0 {
            return Some(i);
        }
    }
    if data.len() >= max {
        Some(max)
    } else if eof && !data.is_empty() {
        Some(data.len())
    } else {
        None
    }
}

fn reference_cuts(gear: &[u64; 256], p: ChunkerParams, data: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(n) = reference_next_cut(gear, p, &data[pos..], true) {
        out.push(pos..pos + n);
        pos += n;
    }
    out
}

fn fastcdc_cuts(p: ChunkerParams, data: &[u8]) -> Vec<Range<usize>> {
    crate_v2020::FastCDC::new(
        data,
        p.min_size as usize,
        p.avg_size as usize,
        p.max_size as usize,
    )
    .map(|c| c.offset..c.offset + c.length)
    .collect()
}

/// Asserts our cuts equal the fastcdc crate's, except for its one known difference: the
/// crate rolls two bytes at a time from even offsets and never tests the last byte of an
/// odd-length final window (`remaining <= max_size`), where we (and the byte-at-a-time
/// definition) do. So if that byte is a cut point, our last chunk `L` (odd) is `L - 1`
/// and `1`. Returns whether that happened.
fn assert_matches_fastcdc(ours: &[Range<usize>], theirs: &[Range<usize>], max: usize) -> bool {
    if ours == theirs {
        return false;
    }
    let n = theirs.len();
    assert!(n >= 1, "ours {ours:?}, fastcdc empty");
    assert_eq!(ours.len(), n + 1, "ours {ours:?}\nfastcdc {theirs:?}");
    assert_eq!(ours[..n - 1], theirs[..n - 1]);
    let last = &theirs[n - 1];
    assert!(
        last.len() % 2 == 1 && last.len() <= max,
        "unexpected divergence at {last:?}"
    );
    assert_eq!(ours[n - 1], last.start..last.end - 1);
    assert_eq!(ours[n], last.end - 1..last.end);
    true
}

/// Chunk-level invariants of any output of `cuts`.
fn assert_invariants(p: ChunkerParams, data_len: usize, cuts: &[Range<usize>]) {
    let mut pos = 0;
    for (k, r) in cuts.iter().enumerate() {
        assert_eq!(r.start, pos, "ranges are contiguous");
        assert!(!r.is_empty(), "no empty chunk");
        assert!(r.len() <= p.max_size as usize, "chunk above max_size");
        if k + 1 < cuts.len() {
            assert!(r.len() >= p.min_size as usize, "inner chunk below min_size");
        }
        pos = r.end;
    }
    assert_eq!(pos, data_len, "ranges cover the data");
}

/// A reader that returns reads of the given sizes in turn (clamped to what is left and
/// to the buffer), and `Interrupted` before each read flagged so.
struct ChoppyReader<'a> {
    data: &'a [u8],
    pos: usize,
    script: Vec<(usize, bool)>,
    call: usize,
    interrupted: bool,
}

impl<'a> ChoppyReader<'a> {
    fn new(data: &'a [u8], script: Vec<(usize, bool)>) -> Self {
        ChoppyReader {
            data,
            pos: 0,
            script,
            call: 0,
            interrupted: false,
        }
    }
}

impl Read for ChoppyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (size, interrupt) = self.script[self.call % self.script.len()];
        if interrupt && !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        self.call += 1;
        let n = size.max(1).min(buf.len()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// All chunks of a stream, as ranges of the concatenated output.
fn stream_cuts<R: Read>(chunker: &Chunker, reader: R) -> io::Result<(Vec<Range<usize>>, Vec<u8>)> {
    let mut sc = StreamChunker::new(chunker.clone(), reader);
    let mut ranges = Vec::new();
    let mut bytes = Vec::new();
    while let Some(chunk) = sc.next_chunk()? {
        let start = bytes.len();
        bytes.extend_from_slice(chunk);
        ranges.push(start..bytes.len());
        assert!(sc.buffer_len() <= 2 * chunker.params().max_size as usize);
    }
    assert!(sc.next_chunk()?.is_none(), "end of stream is sticky");
    Ok((ranges, bytes))
}

// ---------------------------------------------------------------------------------------
// Parameters and masks

#[test]
fn presets_are_valid() {
    ChunkerParams::FILES.validate().unwrap();
    ChunkerParams::STREAMS.validate().unwrap();
}

#[test]
fn validate_accepts_the_extremes() {
    params(64, 64, 64).validate().unwrap();
    params(64, 16 << 20, 64 << 20).validate().unwrap();
    // Odd min and max are fine (unlike with the fastcdc crate).
    params(65, 128, 1001).validate().unwrap();
}

#[test]
fn validate_rejects_with_clear_messages() {
    let cases = [
        (
            params(512, 1000, 4096),
            "avg_size 1000 is not a power of two",
        ),
        (params(64, 0, 4096), "avg_size 0 is not a power of two"),
        (params(16, 32, 4096), "avg_size 32 is outside 64..=16777216"),
        (
            params(64, 32 << 20, 64 << 20),
            "avg_size 33554432 is outside",
        ),
        (
            params(63, 1024, 4096),
            "min_size 63 is below the smallest allowed, 64",
        ),
        (params(0, 1024, 4096), "min_size 0 is below"),
        (
            params(2048, 1024, 4096),
            "min_size 2048 is larger than avg_size 1024",
        ),
        (
            params(512, 1024, 1023),
            "avg_size 1024 is larger than max_size 1023",
        ),
        (
            params(512, 1024, (64 << 20) + 2),
            "max_size 67108866 is above the largest allowed, 67108864",
        ),
        (params(512, 1024, u32::MAX), "max_size 4294967295 is above"),
    ];
    for (p, want) in cases {
        let err = p.validate().unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("invalid chunker parameters: "), "{msg}");
        assert!(msg.contains(want), "{p:?}: got {msg:?}, want {want:?}");
        assert!(matches!(
            Chunker::new(p, &[0; 32]),
            Err(ChunkerError::InvalidParams(_))
        ));
        assert!(Chunker::with_gear(p, [1; 256]).is_err());
    }
}

#[test]
fn every_mask_has_as_many_bits_as_its_index() {
    for (k, mask) in MASKS.iter().enumerate().skip(5) {
        assert_eq!(mask.count_ones() as usize, k, "MASKS[{k}]");
    }
}

#[test]
fn masks_are_the_fastcdc_crates() {
    assert_eq!(MASKS, crate_v2020::MASKS);
    let mut avg = 64u32;
    while avg <= 16 << 20 {
        let p = params(64, avg, avg);
        assert_eq!(
            p.masks(),
            crate_v2020::select_masks(avg as usize, Normalization::Level1),
            "avg {avg}"
        );
        avg *= 2;
    }
}

#[test]
fn fastcdc_gear_ls_is_gear_shifted_left() {
    let (gear, gear_ls) = crate_v2020::get_gear_with_seed(0);
    for (g, gls) in gear.iter().zip(gear_ls.iter()) {
        assert_eq!(g << 1, *gls);
    }
}

// ---------------------------------------------------------------------------------------
// Gear table: derivation, secrecy

#[test]
fn gear_derivation_is_blake3_derive_key_xof() {
    let seed = seed_from(1);
    let chunker = Chunker::new(ChunkerParams::STREAMS, &seed).unwrap();
    let gear = chunker.gear();
    // The first 32 bytes of the XOF are blake3::derive_key's output.
    let key = blake3::derive_key(GEAR_CONTEXT, &seed);
    for i in 0..4 {
        let mut le = [0u8; 8];
        le.copy_from_slice(&key[8 * i..8 * i + 8]);
        assert_eq!(gear[i], u64::from_le_bytes(le));
    }
    // And the whole table is the little-endian reading of 2048 XOF bytes.
    let mut out = [0u8; 2048];
    let mut hasher = blake3::Hasher::new_derive_key(GEAR_CONTEXT);
    hasher.update(&seed);
    hasher.finalize_xof().fill(&mut out);
    for (i, g) in gear.iter().enumerate() {
        let mut le = [0u8; 8];
        le.copy_from_slice(&out[8 * i..8 * i + 8]);
        assert_eq!(*g, u64::from_le_bytes(le));
    }
}

/// Freezes the derivation (a format change must fail here, not in the field).
#[test]
fn golden_gear_table() {
    let seed: [u8; 32] = std::array::from_fn(|i| i as u8);
    let chunker = Chunker::new(ChunkerParams::FILES, &seed).unwrap();
    let gear = chunker.gear();
    assert_eq!(
        [gear[0], gear[1], gear[2], gear[255]],
        GOLDEN_GEAR,
        "{:#018x?}",
        [gear[0], gear[1], gear[2], gear[255]]
    );
}
const GOLDEN_GEAR: [u64; 4] = [
    0x08f996cfd87576f5,
    0x4802c8d2c33ab8de,
    0x918f887742bdd347,
    0xd93a472a8ce376d6,
];

#[test]
fn debug_does_not_print_the_gear_table() {
    let chunker = Chunker::new(ChunkerParams::STREAMS, &seed_from(2)).unwrap();
    let gear = *chunker.gear();
    let cuts_dbg = format!("{:?}", chunker.cuts(&[1, 2, 3]));
    let stream_dbg = format!("{:?}", StreamChunker::new(chunker.clone(), &[][..]));
    for text in [
        format!("{chunker:?}"),
        format!("{chunker:#?}"),
        cuts_dbg,
        stream_dbg,
    ] {
        assert!(text.contains("min_size: 4096"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
        for g in &gear[..8] {
            assert!(!text.contains(&g.to_string()), "{text}");
            assert!(!text.contains(&format!("{g:x}")), "{text}");
        }
    }
}

#[test]
fn boundaries_differ_between_seeds() {
    let data = test_data(3, 4 << 20, 0);
    let a = Chunker::new(ChunkerParams::STREAMS, &seed_from(10)).unwrap();
    let a2 = Chunker::new(ChunkerParams::STREAMS, &seed_from(10)).unwrap();
    let b = Chunker::new(ChunkerParams::STREAMS, &seed_from(11)).unwrap();
    let cuts_a: Vec<_> = a.cuts(&data).collect();
    let cuts_b: Vec<_> = b.cuts(&data).collect();
    assert_eq!(cuts_a, a2.cuts(&data).collect::<Vec<_>>(), "deterministic");
    assert!(cuts_a.len() > 20);
    // Not merely shifted by a chunk or two: almost no inner boundary is shared.
    let ends_a: std::collections::HashSet<usize> = cuts_a.iter().map(|r| r.end).collect();
    let shared = cuts_b.iter().filter(|r| ends_a.contains(&r.end)).count();
    assert!(
        shared <= 2,
        "{shared} of {} boundaries shared",
        cuts_b.len()
    );
    // Seeds differing in one bit also give different boundaries.
    let mut seed = seed_from(10);
    seed[31] ^= 1;
    let c = Chunker::new(ChunkerParams::STREAMS, &seed).unwrap();
    assert_ne!(cuts_a, c.cuts(&data).collect::<Vec<_>>());
}

// ---------------------------------------------------------------------------------------
// Edge cases

#[test]
fn empty_and_tiny_inputs() {
    let chunker = Chunker::new(ChunkerParams::STREAMS, &seed_from(4)).unwrap();
    assert_eq!(chunker.next_cut(&[], true), None);
    assert_eq!(chunker.next_cut(&[], false), None);
    assert_eq!(chunker.cuts(&[]).count(), 0);
    assert_eq!(chunker.next_cut(&[7], true), Some(1));
    assert_eq!(chunker.next_cut(&[7], false), None);
    assert_eq!(chunker.cuts(&[7]).collect::<Vec<_>>(), vec![0..1]);
    let small = test_data(5, 16 << 10, 0); // exactly min_size
    assert_eq!(chunker.next_cut(&small, true), Some(small.len()));
    assert_eq!(chunker.next_cut(&small, false), None);
}

#[test]
fn min_equal_to_max_gives_fixed_size_chunks() {
    let chunker = Chunker::new(params(1024, 1024, 1024), &seed_from(6)).unwrap();
    let data = test_data(6, 10_000, 0);
    let lens: Vec<usize> = chunker.cuts(&data).map(|r| r.len()).collect();
    assert_eq!(lens, [vec![1024; 9], vec![784]].concat());
}

#[test]
fn all_zeros_hit_the_same_cut_every_time() {
    // A run of one byte value drives the gear hash to a constant, so every chunk of it is
    // the same size: max_size unless that constant matches a mask.
    let chunker = Chunker::new(ChunkerParams::STREAMS, &seed_from(7)).unwrap();
    let data = vec![0u8; 5 << 20];
    let cuts: Vec<_> = chunker.cuts(&data).collect();
    assert_invariants(ChunkerParams::STREAMS, data.len(), &cuts);
    let first = cuts[0].len();
    assert!(cuts[..cuts.len() - 1].iter().all(|r| r.len() == first));
}

#[test]
fn largest_params_on_more_than_max_size() {
    let p = params(64, 16 << 20, 64 << 20);
    let chunker = Chunker::new(p, &seed_from(8)).unwrap();
    let data = vec![0xa5u8; (64 << 20) + 3];
    let cuts: Vec<_> = chunker.cuts(&data).collect();
    assert_invariants(p, data.len(), &cuts);
    assert_eq!(
        chunker.next_cut(&data[..1000], false),
        chunker.next_cut(&data, false).filter(|&n| n < 1000)
    );
}

#[test]
fn size_hint_brackets_the_count() {
    let chunker = Chunker::new(params(64, 256, 1024), &seed_from(9)).unwrap();
    for len in [0, 1, 63, 64, 65, 1000, 1024, 1025, 100_000] {
        let data = test_data(len as u64, len, 0);
        let mut cuts = chunker.cuts(&data);
        let (lo, hi) = cuts.size_hint();
        let n = cuts.by_ref().count();
        assert!(
            lo <= n && n <= hi.unwrap(),
            "len {len}: {lo} <= {n} <= {hi:?}"
        );
        assert_eq!(cuts.next(), None, "fused");
    }
}

#[test]
fn chunk_sizes_center_on_avg_size() {
    for p in [ChunkerParams::STREAMS, params(2048, 8192, 65536)] {
        let chunker = Chunker::new(p, &seed_from(12)).unwrap();
        let data = test_data(12, 16 << 20, 0);
        let cuts: Vec<_> = chunker.cuts(&data).collect();
        let mean = data.len() / cuts.len();
        let avg = p.avg_size as usize;
        assert!(
            avg * 3 / 4 < mean && mean < avg * 3 / 2,
            "{p:?}: mean {mean}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Golden boundaries

/// Freezes the whole algorithm (derivation, masks, cut rule) on reproducible data.
#[test]
fn golden_boundaries() {
    let data = test_data(2024, 1 << 20, 0);
    let chunker = Chunker::new(params(1024, 4096, 16384), &[0x42; 32]).unwrap();
    let lens: Vec<usize> = chunker.cuts(&data).map(|r| r.len()).collect();
    assert_eq!(&lens[..GOLDEN_LENS.len()], GOLDEN_LENS, "{:?}", &lens[..16]);
    assert_eq!(lens.len(), GOLDEN_COUNT, "{}", lens.len());
}
const GOLDEN_LENS: &[usize] = &[
    1064, 2240, 4345, 1419, 5876, 5130, 1930, 4378, 1239, 2284, 3947, 4720, 4143, 5370, 1142, 6374,
];
const GOLDEN_COUNT: usize = 216;

// ---------------------------------------------------------------------------------------
// Equality with the fastcdc crate

/// Regression test for the one place where the fastcdc crate's two-byte loop and the
/// byte-at-a-time definition differ: the last byte of an odd-length final window. Finds
/// a case deterministically and checks we follow the definition there.
#[test]
fn fastcdc_crate_skips_last_byte_of_odd_tail() {
    let p = params(64, 256, 1024);
    let gear = fastcdc_gear();
    let chunker = Chunker::with_gear(p, gear).unwrap();
    let mut found = 0;
    for seed in 0..20_000 {
        let data = test_data(seed, 901, 0);
        let ours: Vec<_> = chunker.cuts(&data).collect();
        assert_eq!(ours, reference_cuts(&gear, p, &data));
        if assert_matches_fastcdc(&ours, &fastcdc_cuts(p, &data), 1024) {
            found += 1;
        }
    }
    assert!(found > 0, "no divergence found; widen the search");
}

#[test]
fn equals_fastcdc_crate_on_presets() {
    let gear = fastcdc_gear();
    for (p, len) in [
        (ChunkerParams::STREAMS, 12 << 20),
        (ChunkerParams::FILES, 40 << 20),
    ] {
        let data = test_data(13, len + 1, 0);
        let chunker = Chunker::with_gear(p, gear).unwrap();
        let ours: Vec<_> = chunker.cuts(&data).collect();
        assert!(ours.len() > 20);
        assert_matches_fastcdc(&ours, &fastcdc_cuts(p, &data), p.max_size as usize);
    }
}

// ---------------------------------------------------------------------------------------
// Properties

fn params_strategy() -> impl Strategy<Value = ChunkerParams> {
    (6u32..=12, any::<u32>(), 0u32..4, any::<u32>()).prop_map(|(bits, a, factor, b)| {
        let avg = 1u32 << bits;
        let min = 64 + a % (avg - 63);
        let max = avg + b % (avg << factor).max(1);
        params(min, avg, max)
    })
}

/// Even parameters inside the fastcdc crate's accepted ranges.
fn fastcdc_params_strategy() -> impl Strategy<Value = ChunkerParams> {
    (8u32..=13, any::<u32>(), 0u32..4, any::<u32>()).prop_map(|(bits, a, factor, b)| {
        let avg = 1u32 << bits;
        let min = (64 + a % (avg - 63)) & !1;
        let max = (avg.max(1024) + b % (avg << factor)) & !1;
        params(min.max(64), avg, max)
    })
}

fn data_strategy() -> impl Strategy<Value = Vec<u8>> {
    (any::<u64>(), 0usize..60_000, 0u8..4).prop_map(|(seed, len, kind)| test_data(seed, len, kind))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn fast_path_equals_reference(p in params_strategy(), seed in any::<[u8; 32]>(), data in data_strategy()) {
        let chunker = Chunker::new(p, &seed).unwrap();
        let gear = chunker.gear();
        let ours: Vec<_> = chunker.cuts(&data).collect();
        prop_assert_eq!(&ours, &reference_cuts(gear, p, &data));
        assert_invariants(p, data.len(), &ours);
        for eof in [false, true] {
            prop_assert_eq!(chunker.next_cut(&data, eof), reference_next_cut(gear, p, &data, eof));
        }
    }

    /// An answer with `eof = false` is final: the same as for the whole data.
    #[test]
    fn next_cut_on_a_prefix_is_final(p in params_strategy(), seed in any::<[u8; 32]>(), data in data_strategy(), cut in any::<prop::sample::Index>()) {
        let chunker = Chunker::new(p, &seed).unwrap();
        let full = chunker.next_cut(&data, true);
        let prefix = cut.index(data.len() + 1);
        match chunker.next_cut(&data[..prefix], false) {
            Some(n) => prop_assert_eq!(Some(n), full),
            None => {
                prop_assert!(prefix < p.max_size as usize);
                prop_assert!(full.is_none_or(|f| f >= prefix));
            }
        }
        if prefix >= p.max_size as usize {
            prop_assert!(chunker.next_cut(&data[..prefix], false).is_some());
        }
    }

    #[test]
    fn stream_equals_whole_buffer(
        p in params_strategy(),
        data in data_strategy(),
        script in prop::collection::vec((prop_oneof![1usize..16, 1usize..70_000], prop::bool::weighted(0.1)), 1..12),
    ) {
        let chunker = Chunker::new(p, &seed_from(14)).unwrap();
        let (ranges, bytes) = stream_cuts(&chunker, ChoppyReader::new(&data, script)).unwrap();
        prop_assert_eq!(&bytes, &data);
        prop_assert_eq!(ranges, chunker.cuts(&data).collect::<Vec<_>>());
    }

    #[test]
    fn equals_fastcdc_crate(p in fastcdc_params_strategy(), data in data_strategy()) {
        let chunker = Chunker::with_gear(p, fastcdc_gear()).unwrap();
        let ours: Vec<_> = chunker.cuts(&data).collect();
        assert_matches_fastcdc(&ours, &fastcdc_cuts(p, &data), p.max_size as usize);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// With real presets the buffer grows and compacts many times.
    #[test]
    fn stream_equals_whole_buffer_with_presets(
        files in any::<bool>(),
        seed in any::<u64>(),
        extra in 0usize..100_000,
        script in prop::collection::vec((prop_oneof![1usize..5_000, 1usize..3_000_000], prop::bool::weighted(0.05)), 1..8),
    ) {
        let p = if files { ChunkerParams::FILES } else { ChunkerParams::STREAMS };
        let len = 3 * p.max_size as usize / 2 + extra;
        let data = test_data(seed, len, (seed % 3) as u8);
        let chunker = Chunker::new(p, &seed_from(seed)).unwrap();
        let (ranges, bytes) = stream_cuts(&chunker, ChoppyReader::new(&data, script)).unwrap();
        prop_assert!(bytes == data);
        prop_assert_eq!(ranges, chunker.cuts(&data).collect::<Vec<_>>());
    }
}

// ---------------------------------------------------------------------------------------
// Stream edge cases

#[test]
fn stream_of_nothing() {
    let chunker = Chunker::new(ChunkerParams::FILES, &seed_from(15)).unwrap();
    let mut sc = StreamChunker::new(chunker, io::empty());
    assert!(sc.next_chunk().unwrap().is_none());
    assert!(sc.next_chunk().unwrap().is_none());
    assert!(sc.buffer_len() <= 64 << 10, "{}", sc.buffer_len());
    let _reader: io::Empty = sc.into_inner();
}

#[test]
fn short_stream_allocates_a_small_buffer() {
    let chunker = Chunker::new(ChunkerParams::FILES, &seed_from(16)).unwrap();
    let data = test_data(16, 1000, 0);
    let mut sc = StreamChunker::new(chunker, &data[..]);
    assert_eq!(sc.next_chunk().unwrap(), Some(&data[..]));
    assert!(sc.buffer_len() <= 64 << 10);
    assert!(sc.next_chunk().unwrap().is_none());
}

/// A read error is returned, loses nothing, and the next call resumes.
#[test]
fn stream_resumes_after_a_read_error() {
    struct FailOnce<'a> {
        inner: ChoppyReader<'a>,
        calls: usize,
    }
    impl Read for FailOnce<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.calls % 7 == 0 {
                return Err(io::Error::other("flaky"));
            }
            self.inner.read(buf)
        }
    }
    let p = params(256, 1024, 4096);
    let chunker = Chunker::new(p, &seed_from(17)).unwrap();
    let data = test_data(17, 50_000, 0);
    let mut sc = StreamChunker::new(
        chunker.clone(),
        FailOnce {
            inner: ChoppyReader::new(&data, vec![(300, false), (1, false), (5000, false)]),
            calls: 0,
        },
    );
    let (mut out, mut errors) = (Vec::new(), 0);
    loop {
        match sc.next_chunk() {
            Ok(Some(chunk)) => out.push(chunk.to_vec()),
            Ok(None) => break,
            Err(e) => {
                assert_eq!(e.to_string(), "flaky");
                errors += 1;
            }
        }
    }
    assert!(errors > 0);
    let want: Vec<Vec<u8>> = chunker.cuts(&data).map(|r| data[r].to_vec()).collect();
    assert_eq!(out, want);
}

#[test]
fn stream_rejects_a_reader_that_overreports() {
    struct Liar;
    impl Read for Liar {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            Ok(buf.len() + 1)
        }
    }
    let chunker = Chunker::new(ChunkerParams::STREAMS, &seed_from(18)).unwrap();
    let mut sc = StreamChunker::new(chunker, Liar);
    let err = sc.next_chunk().unwrap_err();
    assert!(err.to_string().contains("reader claimed"), "{err}");
}

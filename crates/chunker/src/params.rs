//! Chunk-size parameters, their validation, and the cut-point masks they select.

use serde::{Deserialize, Serialize};

/// Why a [`ChunkerParams`] was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ChunkerError {
    /// The parameters break one of the rules listed on [`ChunkerParams::validate`].
    #[error("invalid chunker parameters: {0}")]
    InvalidParams(String),
}

/// Minimum, average and maximum chunk size in bytes.
///
/// These are stored in the repository config: every writer of a repository must use the
/// same values (and the same seed), or identical data cuts differently and stops
/// deduplicating. Chunk sizes obey, for every chunk but the last one of a buffer or
/// stream, `min_size <= len <= max_size`; the last one is `1..=max_size` bytes.
///
/// Deserializing does not validate: [`Chunker::new`](crate::Chunker::new) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// No cut is placed before this many bytes (cut-point skipping: these bytes are not
    /// even hashed, which is where much of FastCDC's speed comes from).
    pub min_size: u32,
    /// Target chunk size; a power of two. Below it the strict mask is used, from it on
    /// the loose one (normalized chunking), which pulls sizes towards this value.
    pub avg_size: u32,
    /// A chunk is cut here when no content-defined cut point was found before.
    pub max_size: u32,
}

/// Smallest allowed `min_size`. A chunk costs a 32-byte id plus an index entry and a
/// tree reference, so chunks of a few dozen bytes would cost more than they could ever
/// save; 64 is also the gear hash's window (a 64-bit hash shifted once per byte forgets
/// a byte after 64 steps) and the fastcdc crate's `MINIMUM_MIN`.
pub const MIN_SIZE_LOWER: u32 = 64;
/// Smallest allowed `avg_size`: the smallest size the mask table (`MASKS`) has a
/// strict/loose pair for.
pub const AVG_SIZE_LOWER: u32 = 64;
/// Largest allowed `avg_size`: the largest size the mask table (`MASKS`) has a
/// strict/loose pair for (normalization level 1 reads the masks of `2 * avg_size` and
/// `avg_size / 2`).
pub const AVG_SIZE_UPPER: u32 = 16 << 20;
/// Largest allowed `max_size`. It bounds the memory per chunk in every later stage
/// (compression, sealing, restore) and [`StreamChunker`](crate::StreamChunker) keeps a
/// buffer of twice this size, so 64 MiB caps that buffer at 128 MiB.
pub const MAX_SIZE_UPPER: u32 = 64 << 20;

impl ChunkerParams {
    /// For file contents: 512 KiB / 1 MiB / 2 MiB. Large chunks keep the index small
    /// (a 1 TB repository holds about a million chunks) and whole files that do not
    /// change dedup anyway; small edits inside huge files cost about 1 MiB each.
    ///
    /// The largest chunk sizes every buffer of a backup (segments read, blobs queued,
    /// compression and pack buffers), so it was lowered from 8 MiB for new repositories
    /// (decision 0029): about one chunk in ten is cut at 2 MiB instead of at a content
    /// boundary. A forced cut follows the cut before it, so once an edit is passed the
    /// cuts fall where they fell before, and deduplication holds.
    pub const FILES: ChunkerParams = ChunkerParams {
        min_size: 512 << 10,
        avg_size: 1 << 20,
        max_size: 2 << 20,
    };

    /// For streams such as database dumps: 4 KiB / 16 KiB / 128 KiB. Dumps change in
    /// many small places between runs (a row here, a sequence value there), so smaller
    /// chunks dedup much better, at the price of 64x more index entries per byte than
    /// files. On a real PostgreSQL series (`benches/dumps`) a night adds 0.41x what
    /// restic adds at this size, against 0.52x at 64 KiB; smaller averages gain little
    /// more, as per-chunk compression loses ratio and the content lists grow.
    pub const STREAMS: ChunkerParams = ChunkerParams {
        min_size: 4 << 10,
        avg_size: 16 << 10,
        max_size: 128 << 10,
    };

    /// Checks the rules:
    ///
    /// - `avg_size` is a power of two in `64 ..= 16 MiB` (the range the mask table covers;
    ///   a power of two because the masks are per power of two);
    /// - `64 <= min_size <= avg_size <= max_size <= 64 MiB` (see [`MIN_SIZE_LOWER`] and
    ///   [`MAX_SIZE_UPPER`] for why).
    ///
    /// Unlike the fastcdc crate, odd `min_size` and `max_size` are fine: this
    /// implementation tests exactly the positions a byte-at-a-time scan would.
    pub fn validate(&self) -> Result<(), ChunkerError> {
        let ChunkerParams {
            min_size,
            avg_size,
            max_size,
        } = *self;
        let err = |msg: String| Err(ChunkerError::InvalidParams(msg));
        if !avg_size.is_power_of_two() {
            return err(format!("avg_size {avg_size} is not a power of two"));
        }
        if !(AVG_SIZE_LOWER..=AVG_SIZE_UPPER).contains(&avg_size) {
            return err(format!(
                "avg_size {avg_size} is outside {AVG_SIZE_LOWER}..={AVG_SIZE_UPPER}"
            ));
        }
        if min_size < MIN_SIZE_LOWER {
            return err(format!(
                "min_size {min_size} is below the smallest allowed, {MIN_SIZE_LOWER}"
            ));
        }
        if min_size > avg_size {
            return err(format!(
                "min_size {min_size} is larger than avg_size {avg_size}"
            ));
        }
        if avg_size > max_size {
            return err(format!(
                "avg_size {avg_size} is larger than max_size {max_size}"
            ));
        }
        if max_size > MAX_SIZE_UPPER {
            return err(format!(
                "max_size {max_size} is above the largest allowed, {MAX_SIZE_UPPER}"
            ));
        }
        Ok(())
    }

    /// The (strict, loose) masks for this `avg_size`, FastCDC normalization level 1:
    /// strict = the mask of `2 * avg_size` (one more bit, cuts half as likely), loose =
    /// the mask of `avg_size / 2`. Level 1 is what `fastcdc::v2020::FastCDC::new` uses.
    ///
    /// Only meaningful for validated params.
    pub(crate) fn masks(&self) -> (u64, u64) {
        let bits = self.avg_size.trailing_zeros() as usize;
        (MASKS[bits + 1], MASKS[bits - 1])
    }
}

/// Cut-point masks, indexed by log2 of a chunk size: a position is a cut point when
/// `hash & mask == 0`, so a mask of `k` bits cuts with probability `2^-k` per byte and
/// `MASKS[k]` has exactly `k` bits set (indices 5 and 25 exist only as the loose/strict
/// neighbours of 64 B and 16 MiB).
///
/// The values are those of the fastcdc crate (`fastcdc::v2020::MASKS`), which took the
/// 64 B ..= 128 KiB entries from the C reference implementation (destor) and the larger
/// ones from restic's FastCDC. They are kept identical so that [`Chunker::with_gear`]
/// with the crate's gear table reproduces the crate's cut points exactly (a test proves
/// it). Their bits are spread out over bits 4 ..= 47 rather than packed at the bottom:
/// the FastCDC paper reports slightly better deduplication with spread bits, and the
/// low bits of a gear hash depend on fewer of the last bytes (bit `j` depends on the
/// last `j + 1` bytes only). Bit 63 is never set, which the two-bytes-at-a-time loop
/// relies on (it tests `mask << 1`).
///
/// [`Chunker::with_gear`]: crate::Chunker::with_gear
#[rustfmt::skip]
pub(crate) const MASKS: [u64; 26] = [
    0, 0, 0, 0, 0,      // 1 B ..= 16 B: unused
    0x0000000001804110, // 32 B (loose mask of 64 B)
    0x0000000001803110, // 64 B
    0x0000000018035100, // 128 B
    0x0000001800035300, // 256 B
    0x0000019000353000, // 512 B
    0x0000590003530000, // 1 KiB
    0x0000d90003530000, // 2 KiB
    0x0000d90103530000, // 4 KiB
    0x0000d90303530000, // 8 KiB
    0x0000d90313530000, // 16 KiB
    0x0000d90f03530000, // 32 KiB
    0x0000d90303537000, // 64 KiB
    0x0000d90703537000, // 128 KiB
    0x0000d90707537000, // 256 KiB
    0x0000d91707537000, // 512 KiB
    0x0000d91747537000, // 1 MiB
    0x0000d91767537000, // 2 MiB
    0x0000d93767537000, // 4 MiB
    0x0000d93777537000, // 8 MiB
    0x0000d93777577000, // 16 MiB
    0x0000db3777577000, // 32 MiB (strict mask of 16 MiB)
];

// The pair loop tests `hash << 1` against `mask << 1`; that is only the same test when
// shifting loses no mask bit.
const _: () = {
    let mut i = 0;
    while i < MASKS.len() {
        assert!(MASKS[i] >> 63 == 0);
        i += 1;
    }
};

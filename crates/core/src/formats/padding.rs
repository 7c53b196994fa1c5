//! Padding of packs and index files, so that their sizes say little about what they hold.
//!
//! A pack written by a backup of one small file would otherwise give that file's size
//! to within a few dozen bytes, and an index file the exact number of blobs it lists.
//! Both are therefore padded (with sealed, authenticated bytes; see `pack` and `index`)
//! to [`padded_len`]: at least a minimum size, then rounded up by Padmé
//! (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication
//! with PURBs", PETS 2019): of a length `L` with `E = floor(log2 L)`, only the top
//! `S = floor(log2 E) + 1` bits may be nonzero. The padded length then leaks
//! O(log log L) bits, and costs at most `2^-S` of `L` (1/32 for a full 16 MiB pack,
//! 1/16 for files of 256 bytes to 64 KiB, less than half of that on average).
//!
//! Inside a sealed plaintext (an index file's, a pack header's) the padding is a
//! trailer: the marker [`PAD_MARKER`], then zero bytes. The marker is never the first
//! byte of an entry (a pack header entry's kind byte is 0, 1, 0x80 or 0x81), so a
//! decoder knows where the real content ends.

/// No pack is smaller than this (64 KiB): a backup of a file under about 60 KiB writes a
/// pack of this size whatever the file's size.
pub const MIN_PACK_LEN: u64 = 64 << 10;
/// No sealed pack header is smaller than this (4 KiB, some 90 entries), so that its
/// length, stored in clear, gives the number of blobs in a pack only roughly.
pub const MIN_HEADER_LEN: u64 = 4 << 10;
/// No index file is smaller than this (4 KiB, some 85 blobs' entries).
pub const MIN_INDEX_LEN: u64 = 4 << 10;
/// The first byte of the padding trailer; the rest of it is zero bytes.
pub const PAD_MARKER: u8 = 0xFF;

/// Padmé: `len` rounded up so that only its top `floor(log2(floor(log2 len))) + 1` bits
/// may be nonzero. Lengths below 2 are returned as they are.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = 63 - u64::from(len.leading_zeros()); // floor(log2 len), >= 1
    let s = 64 - u64::from(e.leading_zeros()); // floor(log2 e) + 1
    let mask = (1u64 << (e - s)) - 1;
    (len + mask) & !mask
}

/// The length a file of `len` bytes is padded to: at least `min`, rounded up by
/// [`padme`]. `min` should be a power of two (which Padmé keeps as it is).
pub fn padded_len(len: u64, min: u64) -> u64 {
    padme(len.max(min))
}

/// True when `bytes` is a padding trailer: [`PAD_MARKER`] followed by zero bytes only.
pub fn is_trailer(bytes: &[u8]) -> bool {
    bytes.first() == Some(&PAD_MARKER) && bytes[1..].iter().all(|&b| b == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_values() {
        assert_eq!(padme(0), 0);
        assert_eq!(padme(1), 1);
        assert_eq!(padme(2), 2);
        assert_eq!(padme(3), 3);
        assert_eq!(padme(9), 10); // E = 3, S = 2: multiples of 2
        assert_eq!(padme(100), 104); // E = 6, S = 3: multiples of 8
        assert_eq!(padme(1000), 1024); // E = 9, S = 4: multiples of 32
        assert_eq!(padme(1900), 1920); // E = 10, S = 4: multiples of 64
        assert_eq!(padme(65_536), 65_536);
        assert_eq!(padme(65_537), 67_584); // E = 16, S = 5: multiples of 2 KiB
        assert_eq!(padme(16 << 20), 16 << 20);
        assert_eq!(padme((16 << 20) + 1), (16 << 20) + (512 << 10)); // multiples of 512 KiB
        assert_eq!(padme((17 << 20) - 1), 17 << 20);
        assert_eq!(padded_len(100, MIN_PACK_LEN), 65_536);
        assert_eq!(padded_len(1900, MIN_PACK_LEN), 65_536);
        assert_eq!(padded_len(300, MIN_INDEX_LEN), 4096);
        assert_eq!(padded_len(5000, MIN_INDEX_LEN), 5120); // E = 12, S = 4: 256
    }

    #[test]
    fn never_shorter_monotonic_and_bounded() {
        let mut last = 0;
        let check = |len: u64, last: &mut u64| {
            let p = padme(len);
            assert!(p >= len, "{len}");
            assert!(p >= *last, "not monotonic at {len}");
            assert_eq!(padme(p), p, "not idempotent at {len}");
            if len >= 2 {
                let e = 63 - u64::from(len.leading_zeros());
                let s = 64 - u64::from(e.leading_zeros());
                // At most 2^(E-S) - 1 bytes added, which is below L / 2^S.
                assert!(p - len < (1u64 << (e - s)), "{len}");
                assert!((p - len) as f64 <= len as f64 / (1u64 << s) as f64, "{len}");
            }
            *last = p;
        };
        for len in 0..200_000u64 {
            check(len, &mut last);
        }
        // Around full packs, sampled.
        let mut len = 15 << 20;
        last = 0;
        while len < 40 << 20 {
            check(len, &mut last);
            len += 4093;
        }
        // Over 1 KiB the overhead is below 1/16, over 256 KiB below 1/32.
        for len in [1025u64, 3000, 70_000, 300_000, 17 << 20, 1 << 30] {
            let over = (padme(len) - len) as f64 / len as f64;
            assert!(
                over < if len > 256 << 10 {
                    1.0 / 32.0
                } else {
                    1.0 / 16.0
                }
            );
        }
    }

    #[test]
    fn trailers() {
        assert!(is_trailer(&[PAD_MARKER]));
        assert!(is_trailer(&[PAD_MARKER, 0, 0, 0]));
        assert!(!is_trailer(&[]));
        assert!(!is_trailer(&[0, 0]));
        assert!(!is_trailer(&[PAD_MARKER, 0, 1]));
        assert!(!is_trailer(&[PAD_MARKER, PAD_MARKER]));
    }
}

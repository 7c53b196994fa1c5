//! A pack header's plaintext: 45-byte entries (kind, id, offset, sealed length, raw
//! length), 77 bytes for a delta blob (its base's id follows); in a padded (version 3)
//! pack, followed by the padding trailer `0xFF 0x00*`. Both decoders run on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(len) = cairn_core::fuzzing::pack_entries(data) {
        // Decoding succeeds only when the entries take the whole input.
        assert_eq!(len, data.len(), "the entries do not cover the input");
    }
    if let Ok(len) = cairn_core::fuzzing::padded_pack_entries(data) {
        // Decoding succeeds only when a trailer follows the entries.
        assert_eq!(data[len], 0xff, "no padding marker after the entries");
        assert!(data[len + 1..].iter().all(|&b| b == 0), "nonzero padding");
    }
});

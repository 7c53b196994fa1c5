//! A pack header's plaintext: 45-byte entries (kind, id, offset, sealed length, raw length).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(n) = cairn_core::fuzzing::pack_entries(data) {
        // Decoding succeeds only for whole entries, one per 45 bytes.
        assert_eq!(n * 45, data.len(), "entry count does not match the input length");
    }
});

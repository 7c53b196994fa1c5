//! A pack header's plaintext: 45-byte entries (kind, id, offset, sealed length, raw
//! length), 77 bytes for a delta blob (its base's id follows).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(len) = cairn_core::fuzzing::pack_entries(data) {
        // Decoding succeeds only when the entries take the whole input.
        assert_eq!(len, data.len(), "the entries do not cover the input");
    }
});

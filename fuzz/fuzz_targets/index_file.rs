//! Index file plaintext (`pack_count || pack*`, then in version 3 the padding trailer
//! `0xFF 0x00*`; docs/format.md "Index files").
//! Any input must give `Ok` or `Err`, never a panic, a huge allocation or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::fuzzing::index_file(data);
});

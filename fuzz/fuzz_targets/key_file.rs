//! A key file (JSON, the only plaintext file of a repository): parse, then check the
//! KDF parameters against the floor and caps. Argon2 itself never runs here.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::fuzzing::key_file(data);
});

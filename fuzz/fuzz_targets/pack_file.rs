//! A whole pack, read with a fixed wrap key: magic, version, envelope, trailing header
//! length, sealed header, entries and their bounds. The seed corpus holds packs sealed
//! with this same key (see examples/gen_corpus.rs), so the paths after authentication
//! are reached too.
#![no_main]

use cairn_crypto::Key;
use libfuzzer_sys::fuzz_target;

/// Must match `FIXED_KEY` in examples/gen_corpus.rs.
const FIXED_KEY: [u8; 32] = [0x42; 32];

fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes(FIXED_KEY);
    let _ = cairn_core::fuzzing::pack_file(data, &key);
});

//! The repository config's JSON body, parsed and validated (chunker parameters,
//! compression level, pack size).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::fuzzing::config(data);
});

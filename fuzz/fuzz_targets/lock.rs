//! A lock file's JSON body, and whether it still counts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::fuzzing::lock(data);
});

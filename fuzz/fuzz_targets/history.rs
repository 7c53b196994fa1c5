//! A repository history file, as read from the local state directory: sealed JSON, and
//! the JSON itself behind the seal.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::fuzzing::history(data);
});

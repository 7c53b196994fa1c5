//! A put-only key's send log, as read from the local disk: length-framed sealed records.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_core::fuzzing::send_log(data);
});

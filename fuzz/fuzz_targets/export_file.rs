//! An export file's container: its tar headers, names and bounds, checked before any
//! password is asked; every entry it accepts lies inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cairn_backend::fuzz_scan(data);
});

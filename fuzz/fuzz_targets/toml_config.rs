//! The TOML config file (`config.toml`), parsed and checked as `cairn config check` does
//! (without reading the secret files it names). Every problem must point inside the
//! text: a line and column that exist.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(problems) = cairn_config::parse(text, Path::new("/fuzz/config.toml"), false) {
        assert!(!problems.0.is_empty(), "an error without a problem");
        let lines = text.split('\n').count();
        for p in &problems.0 {
            assert!(
                (1..=lines).contains(&p.line) && p.column >= 1,
                "problem outside the text: {p}"
            );
        }
    }
});

//! A sealed file (config, index, snapshot or pack framing, picked by the fourth byte)
//! opened with a fixed wrap key. The seed corpus holds files sealed with this key.
#![no_main]

use cairn_crypto::Key;
use libfuzzer_sys::fuzz_target;

/// Must match `FIXED_KEY` in examples/gen_corpus.rs.
const FIXED_KEY: [u8; 32] = [0x42; 32];

/// magic (4) + version (1) + envelope (77) + body nonce (24) + body tag (16).
const MIN_SEALED_LEN: usize = 4 + 1 + 77 + 24 + 16;

fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes(FIXED_KEY);
    if let Ok(plain) = cairn_core::fuzzing::sealed_file(data, &key) {
        assert!(data.len() >= MIN_SEALED_LEN, "a file shorter than its framing opened");
        assert_eq!(
            plain.len(),
            data.len() - MIN_SEALED_LEN,
            "plaintext length does not match the framing"
        );
    }
});

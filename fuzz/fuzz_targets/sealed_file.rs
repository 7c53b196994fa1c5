//! A sealed file (config, index, snapshot or pack framing, picked by the fourth byte)
//! opened with a fixed wrap key. The seed corpus holds files sealed with this key.
#![no_main]

use cairn_crypto::Key;
use libfuzzer_sys::fuzz_target;

/// Must match `FIXED_KEY` in examples/gen_corpus.rs.
const FIXED_KEY: [u8; 32] = [0x42; 32];

/// magic (4) + version (1) + body nonce (24) + body tag (16), without the envelope.
const FRAMING: usize = 4 + 1 + 24 + 16;

fuzz_target!(|data: &[u8]| {
    let key = Key::from_bytes(FIXED_KEY);
    if let Ok(plain) = cairn_core::fuzzing::sealed_file(data, &key) {
        // The envelope's length follows from its kind: 77 (kind 1) or 95 (kind 2, as a
        // put-only key writes).
        let envelope = match data.get(5) {
            Some(1) => 77,
            Some(2) => 95,
            other => panic!("a file with envelope kind {other:?} opened"),
        };
        assert!(data.len() >= FRAMING + envelope, "a file shorter than its framing opened");
        assert_eq!(
            plain.len(),
            data.len() - FRAMING - envelope,
            "plaintext length does not match the framing"
        );
    }
});

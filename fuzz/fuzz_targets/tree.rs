//! A tree blob's plaintext: version byte 0x01 then postcard(Tree).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = cairn_core::fuzzing::tree(data) {
        // What decode accepts is what restore relies on: sorted, unique, safe names.
        for w in tree.nodes.windows(2) {
            assert!(w[0].name < w[1].name, "decoded tree is not sorted and unique");
        }
        for n in &tree.nodes {
            let name = n.name.as_slice();
            assert!(
                !name.is_empty()
                    && name != b"."
                    && name != b".."
                    && !name.contains(&b'/')
                    && !name.contains(&0),
                "decoded tree has an unsafe name {:?}",
                n.name
            );
        }
        // A decoded tree re-encodes and decodes to itself.
        let again = cairn_core::fuzzing::tree(&tree.encode()).expect("re-encoded tree decodes");
        assert_eq!(again, tree, "tree does not round-trip");
    }
});

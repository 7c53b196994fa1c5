//! `MemBackend` against the conformance suite, and its test helpers.

use cairn_core::{Backend, FileKind};
use cairn_testing::conformance::{self, hex_name};
use cairn_testing::MemBackend;

mod conformance_suite {
    use cairn_core::Backend;
    use cairn_testing::MemBackend;

    cairn_testing::backend_conformance_tests!(|| -> Box<dyn Backend> {
        Box::new(MemBackend::new())
    });
}

#[test]
fn run_all_passes() {
    conformance::run_all(&|| -> Box<dyn Backend> { Box::new(MemBackend::new()) });
}

#[test]
fn corrupt_changes_stored_bytes() {
    let backend = MemBackend::new();
    let name = hex_name(1);
    backend.write(FileKind::Pack, &name, b"abc").unwrap();
    backend.corrupt(FileKind::Pack, &name, |data| data[1] ^= 0xff);
    assert_eq!(backend.read(FileKind::Pack, &name).unwrap(), b"a\x9dc");
    backend.corrupt(FileKind::Pack, &name, Vec::clear);
    assert_eq!(backend.list(FileKind::Pack).unwrap(), vec![(name, 0)]);
}

#[test]
#[should_panic(expected = "no Pack file")]
fn corrupt_of_missing_file_panics() {
    MemBackend::new().corrupt(FileKind::Pack, "00", |_| {});
}

#[test]
fn names_and_total_bytes() {
    let backend = MemBackend::new();
    assert_eq!(backend.total_bytes(), 0);
    let (a, b) = (hex_name(1), hex_name(2));
    backend.write(FileKind::Index, &b, b"12345").unwrap();
    backend.write(FileKind::Index, &a, b"123").unwrap();
    backend.write(FileKind::Snapshot, &a, b"1").unwrap();
    backend.write(FileKind::Config, "config", b"cfg").unwrap();
    let mut sorted = vec![a.clone(), b];
    sorted.sort();
    assert_eq!(backend.names(FileKind::Index), sorted);
    assert_eq!(backend.names(FileKind::Snapshot), vec![a]);
    assert_eq!(backend.names(FileKind::Pack), Vec::<String>::new());
    assert_eq!(backend.total_bytes(), 12);
}

#[test]
fn debug_shows_counts_not_contents() {
    let backend = MemBackend::new();
    backend.write(FileKind::Key, "00", b"secret").unwrap();
    assert_eq!(format!("{backend:?}"), "MemBackend { files: 1, bytes: 6 }");
}

#[test]
fn validate_name_rule() {
    use cairn_core::validate_name;
    assert!(validate_name(FileKind::Config, "config").is_ok());
    assert!(validate_name(FileKind::Config, "other").is_err());
    assert!(validate_name(FileKind::Key, "config").is_ok());
    assert!(validate_name(FileKind::Key, "a").is_ok());
    assert!(validate_name(FileKind::Pack, "a").is_err());
    assert!(validate_name(FileKind::Pack, &"a".repeat(128)).is_ok());
    assert!(validate_name(FileKind::Pack, &"a".repeat(129)).is_err());
    let err = validate_name(FileKind::Lock, "../x").unwrap_err();
    assert!(conformance::is_invalid_name(&err));
    assert!(err.to_string().contains("\"../x\""), "{err}");
}

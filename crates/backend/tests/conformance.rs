//! `LocalBackend` against the backend conformance suite, one test per property.

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_backend::{Backend, FileKind, LocalBackend};

/// A factory of fresh backends in new subdirectories of one temporary directory, which
/// the closure owns (and deletes when the test ends).
fn fresh_backends() -> impl Fn() -> Box<dyn Backend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let count = AtomicUsize::new(0);
    move || -> Box<dyn Backend> {
        let i = count.fetch_add(1, Ordering::Relaxed);
        Box::new(LocalBackend::new(dir.path().join(format!("repo{i}"))))
    }
}

cairn_testing::backend_conformance_tests!(fresh_backends());

/// The two backends agree on every name the suite (and a few more) tries.
#[test]
fn validate_name_matches_mem_backend() {
    let mut names: Vec<String> = [
        "", ".", "..", "/", "a/b", "config", "Config", "a", "0", "00", "zz", "ABC", ".tmp-00",
        "a b", "é", "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.extend(["a".repeat(127), "a".repeat(128), "a".repeat(129)]);
    for kind in FileKind::ALL {
        for name in &names {
            assert_eq!(
                cairn_backend::validate_name(kind, name).is_ok(),
                cairn_testing::validate_name(kind, name).is_ok(),
                "{kind:?} {name:?}"
            );
        }
    }
}

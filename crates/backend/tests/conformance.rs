//! `LocalBackend` against the backend conformance suite, one test per property.

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_backend::{Backend, LocalBackend};

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

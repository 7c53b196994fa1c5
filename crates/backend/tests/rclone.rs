//! `rclone:REMOTE:PATH` repositories through a real rclone (`rclone serve sftp --stdio`
//! on rclone's local backend, `:local:`): the conformance suite, the layout, and the
//! locations it takes and refuses.

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_backend::{Backend, FileKind, SftpBackend};
use cairn_testing::conformance::hex_name;

fn location(dir: &std::path::Path) -> String {
    format!("rclone::local:{}", dir.display())
}

/// A factory of fresh backends, each in a new directory; the closure owns the directory.
fn fresh_backends() -> impl Fn() -> Box<dyn Backend> {
    let dir = tempfile::tempdir().unwrap();
    let count = AtomicUsize::new(0);
    move || -> Box<dyn Backend> {
        let i = count.fetch_add(1, Ordering::Relaxed);
        let path = dir.path().join(format!("r{i}")).join("repo");
        Box::new(SftpBackend::rclone(&location(&path)).unwrap())
    }
}

cairn_testing::backend_conformance_tests!(fresh_backends());

#[test]
fn the_repository_is_where_the_location_says_in_the_local_layout() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("offsite").join("repo");
    let b = cairn_backend::open(&location(&repo), &Default::default()).unwrap();
    assert_eq!(b.location(), location(&repo));
    b.create().unwrap();
    let name = hex_name(3);
    b.write(FileKind::Pack, &name, b"pack").unwrap();
    b.write(FileKind::Config, "config", b"c").unwrap();
    assert_eq!(
        std::fs::read(repo.join("data").join(&name[..2]).join(&name)).unwrap(),
        b"pack"
    );
    // The same repository opens as a local one, and nothing else was left beside it.
    let local = cairn_backend::LocalBackend::new(&repo);
    assert_eq!(local.list(FileKind::Pack).unwrap(), vec![(name, 4)]);
    let beside: Vec<_> = std::fs::read_dir(dir.path().join("offsite"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, vec![std::ffi::OsString::from("repo")]);
}

#[test]
fn locations_without_a_remote_or_a_directory_are_refused() {
    for bad in [
        "rclone:",
        "rclone:nocolon",
        "rclone::",
        "rclone:remote:",
        "rclone:remote:/",
        "rclone:remote:a/../b",
    ] {
        let err = SftpBackend::rclone(bad).unwrap_err().to_string();
        assert!(err.contains("rclone:") || err.contains(bad), "{bad}: {err}");
    }
    for good in [
        "rclone:remote:repo",
        "rclone:b2:bucket/cairn",
        "rclone::local:/srv/r",
    ] {
        assert!(SftpBackend::rclone(good).is_ok(), "{good}");
    }
}

#[test]
fn an_unknown_remote_is_an_error() {
    let b = SftpBackend::rclone("rclone:no-such-remote-configured:repo").unwrap();
    let err = b.create().unwrap_err().to_string();
    assert!(err.contains("rclone could not serve"), "{err}");
    // Said at once, not after the retries a dropped connection gets.
    assert_eq!(b.retries(), 0);
}

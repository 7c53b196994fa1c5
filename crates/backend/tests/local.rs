//! `LocalBackend` specifics: layout, modes, temp files, and failures.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cairn_backend::{Backend, BackendError, FileKind, LocalBackend, DIR_MODE, FILE_MODE};
use cairn_testing::conformance::hex_name;

fn repo() -> (tempfile::TempDir, LocalBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("repo"));
    backend.create().unwrap();
    (dir, backend)
}

/// Every file (not directory) below `dir`.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_below(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn temp_files_below(dir: &Path) -> Vec<PathBuf> {
    files_below(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with(".tmp-")
        })
        .collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

/// Root ignores permission bits, so tests of permission failures cannot run as root.
fn running_as_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[test]
fn new_does_no_io_and_reports_its_path() {
    let backend = LocalBackend::new("/nonexistent/cairn/repo");
    assert_eq!(backend.path(), Path::new("/nonexistent/cairn/repo"));
    assert_eq!(backend.location(), "/nonexistent/cairn/repo");
    assert!(!backend.path().exists());
}

#[test]
fn create_makes_the_layout_with_private_directories() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/repo");
    LocalBackend::new(&root).create().unwrap();
    assert_eq!(mode(&root), DIR_MODE);
    for sub in ["keys", "data", "index", "snapshots", "locks"] {
        assert_eq!(mode(&root.join(sub)), DIR_MODE, "{sub}");
    }
    let mut fanout: Vec<String> = fs::read_dir(root.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    fanout.sort();
    let expected: Vec<String> = (0..=255u8).map(|b| format!("{b:02x}")).collect();
    assert_eq!(fanout, expected);
    assert_eq!(mode(&root.join("data/a7")), DIR_MODE);
    assert!(files_below(&root).is_empty());
}

#[test]
fn create_accepts_an_existing_empty_directory_and_a_half_made_layout() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path());
    fs::create_dir(dir.path().join("keys")).unwrap();
    backend.create().unwrap();
    // Without a config it is not a repository yet: creating again finishes the job.
    backend.create().unwrap();
    backend.write(FileKind::Config, "config", b"c").unwrap();
    assert!(matches!(
        backend.create(),
        Err(BackendError::AlreadyExists(location)) if location == dir.path().display().to_string()
    ));
}

#[test]
fn files_land_in_the_layout_read_only_and_without_temp_files() {
    let (_dir, backend) = repo();
    let root = backend.path();
    let name = hex_name(1);
    for kind in FileKind::ALL {
        let name = if kind == FileKind::Config {
            "config"
        } else {
            &name
        };
        backend.write(kind, name, name.as_bytes()).unwrap();
    }
    let expected = [
        root.join("config"),
        root.join("keys").join(&name),
        root.join("data").join(&name[..2]).join(&name),
        root.join("index").join(&name),
        root.join("snapshots").join(&name),
        root.join("locks").join(&name),
    ];
    let mut found = files_below(root);
    found.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(found, expected);
    for path in &expected {
        assert_eq!(mode(path), FILE_MODE, "{}", path.display());
    }
    assert!(temp_files_below(root).is_empty());
    // A second write of an existing (read-only) file is a skip, not an error.
    backend
        .write(FileKind::Pack, &name, name.as_bytes())
        .unwrap();
    assert!(temp_files_below(root).is_empty());
}

#[test]
fn files_cannot_be_opened_for_writing() {
    if running_as_root() {
        eprintln!("skipped: running as root, which ignores permission bits");
        return;
    }
    let (_dir, backend) = repo();
    let name = hex_name(2);
    backend.write(FileKind::Snapshot, &name, b"snap").unwrap();
    let path = backend.path().join("snapshots").join(&name);
    let err = fs::OpenOptions::new().append(true).open(path).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
}

#[test]
fn write_into_read_only_directory_fails_cleanly() {
    if running_as_root() {
        eprintln!("skipped: running as root, which ignores permission bits");
        return;
    }
    let (_dir, backend) = repo();
    let keys = backend.path().join("keys");
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o500)).unwrap();
    let name = hex_name(3);
    let err = backend.write(FileKind::Key, &name, b"key").unwrap_err();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o700)).unwrap();
    match &err {
        BackendError::Io { context, source } => {
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
            assert!(context.contains(&name), "{context}");
        }
        other => panic!("expected Io, got {other:?}"),
    }
    assert!(err
        .to_string()
        .contains(&keys.join(&name).display().to_string()));
    assert!(temp_files_below(backend.path()).is_empty());
    assert!(backend.list(FileKind::Key).unwrap().is_empty());
}

#[test]
fn failed_rename_removes_the_temp_file() {
    // A directory squatting on the final name makes the rename fail (even for root)
    // after the temp file was written and synced.
    let (_dir, backend) = repo();
    let name = hex_name(4);
    let squatter = backend.path().join("index").join(&name);
    fs::create_dir(&squatter).unwrap();
    fs::write(squatter.join("x"), b"x").unwrap();
    let err = backend.write(FileKind::Index, &name, b"index").unwrap_err();
    let BackendError::Io { context, .. } = &err else {
        panic!("expected Io, got {err:?}");
    };
    assert!(
        context.contains(&squatter.display().to_string()),
        "{context}"
    );
    assert!(temp_files_below(backend.path()).is_empty());
    // The squatter is not a file, so it is neither listed nor read as one.
    assert!(backend.list(FileKind::Index).unwrap().is_empty());
    assert!(backend.read(FileKind::Index, &name).is_err());
}

#[test]
fn stale_temp_files_are_invisible_and_removable() {
    let (_dir, backend) = repo();
    let root = backend.path().to_owned();
    let name = hex_name(5);
    backend.write(FileKind::Pack, &name, b"pack").unwrap();
    let stale = [
        root.join(".tmp-00aa"),
        root.join("keys/.tmp-11bb"),
        root.join("data").join(&name[..2]).join(".tmp-22cc"),
        root.join("snapshots/.tmp-33dd"),
        // Where packs are written as they fill.
        root.join("data/.tmp-44ee"),
    ];
    for path in &stale {
        fs::write(path, b"half a file").unwrap();
    }
    assert_eq!(
        backend.list(FileKind::Pack).unwrap(),
        vec![(name.clone(), 4)]
    );
    for kind in [FileKind::Config, FileKind::Key, FileKind::Snapshot] {
        assert!(backend.list(kind).unwrap().is_empty(), "{kind:?}");
    }
    assert!(backend.read(FileKind::Key, ".tmp-11bb").is_err());

    assert_eq!(
        backend
            .remove_stale_temp_files(Duration::from_secs(3600))
            .unwrap(),
        0,
        "fresh temp files may belong to a running write"
    );
    assert_eq!(backend.remove_stale_temp_files(Duration::ZERO).unwrap(), 5);
    assert!(temp_files_below(&root).is_empty());
    assert_eq!(backend.read(FileKind::Pack, &name).unwrap(), b"pack");
    assert_eq!(backend.remove_stale_temp_files(Duration::ZERO).unwrap(), 0);
}

#[test]
fn list_skips_what_cannot_be_read_by_name() {
    let (_dir, backend) = repo();
    let root = backend.path().to_owned();
    let name = hex_name(6);
    backend.write(FileKind::Index, &name, b"idx").unwrap();
    backend.write(FileKind::Pack, &name, b"pack").unwrap();
    fs::write(root.join("index/README"), b"junk").unwrap();
    fs::write(root.join("index/abc.bak"), b"junk").unwrap();
    fs::create_dir(root.join("index/abcdef")).unwrap();
    fs::write(root.join("data/cd00"), b"not in a fan-out dir").unwrap();
    fs::write(root.join("data/ab/cd00"), b"in the wrong fan-out dir").unwrap();
    fs::write(root.join("keys/Config"), b"junk").unwrap();
    assert_eq!(
        backend.list(FileKind::Index).unwrap(),
        vec![(name.clone(), 3)]
    );
    assert_eq!(backend.list(FileKind::Pack).unwrap(), vec![(name, 4)]);
    assert!(backend.list(FileKind::Key).unwrap().is_empty());
}

#[test]
fn missing_fanout_directory_is_recreated() {
    let (_dir, backend) = repo();
    let name = hex_name(7);
    fs::remove_dir(backend.path().join("data").join(&name[..2])).unwrap();
    backend.write(FileKind::Pack, &name, b"pack").unwrap();
    assert_eq!(
        mode(&backend.path().join("data").join(&name[..2])),
        DIR_MODE
    );
    assert_eq!(backend.list(FileKind::Pack).unwrap(), vec![(name, 4)]);
}

#[test]
fn missing_kind_directories_are_recreated() {
    // As after copying a repository with a tool that drops empty directories.
    let (_dir, backend) = repo();
    fs::remove_dir(backend.path().join("locks")).unwrap();
    fs::remove_dir_all(backend.path().join("data")).unwrap();
    backend
        .write(FileKind::Lock, &hex_name(1), b"lock")
        .unwrap();
    backend
        .write(FileKind::Pack, &hex_name(2), b"pack")
        .unwrap();
    assert_eq!(mode(&backend.path().join("locks")), DIR_MODE);
    assert_eq!(mode(&backend.path().join("data")), DIR_MODE);
    assert_eq!(backend.list(FileKind::Lock).unwrap().len(), 1);
    assert_eq!(backend.list(FileKind::Pack).unwrap().len(), 1);
}

#[test]
fn uncreated_repository_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("missing"));
    let name = hex_name(8);
    let err = backend.write(FileKind::Key, &name, b"k").unwrap_err();
    assert!(
        err.to_string()
            .contains(&dir.path().join("missing/keys").display().to_string()),
        "{err}"
    );
    assert!(backend
        .read(FileKind::Key, &name)
        .unwrap_err()
        .is_not_found());
    for kind in FileKind::ALL {
        assert!(
            matches!(backend.list(kind), Err(BackendError::Io { .. })),
            "{kind:?}"
        );
    }
    backend.remove(FileKind::Key, &name).unwrap();
}

#[test]
fn a_staged_pack_is_a_read_only_file_under_its_name_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path().join("repo"));
    backend.create().unwrap();
    let root = backend.path().to_owned();
    let name = hex_name(7);

    let mut dropped = backend.stage(FileKind::Pack).unwrap().unwrap();
    dropped.append(&[1u8; 5000]).unwrap();
    assert_eq!(temp_files_below(&root).len(), 1, "written as it fills");
    drop(dropped);
    assert!(
        temp_files_below(&root).is_empty(),
        "a dropped pack leaves nothing"
    );

    // A fan-out directory that went missing is made again.
    fs::remove_dir(root.join("data").join(&name[..2])).unwrap();
    let mut staged = backend.stage(FileKind::Pack).unwrap().unwrap();
    staged.append(b"first ").unwrap();
    staged.append(b"second").unwrap();
    staged.commit(&name).unwrap();
    assert!(temp_files_below(&root).is_empty());
    let path = root.join("data").join(&name[..2]).join(&name);
    assert_eq!(fs::read(&path).unwrap(), b"first second");
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o400
    );
    assert!(
        backend.stage(FileKind::Index).unwrap().is_none(),
        "small files are written whole"
    );
}

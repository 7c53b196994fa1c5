//! The SQLite catalog: the catalog contract, privacy of its files, schema versions,
//! repository binding, and concurrent writers.

use cairn_catalog::{catalog_path, delete, SqliteCatalog, SCHEMA_VERSION};
use cairn_core::{Catalog, Error, Id, Snapshot};
use cairn_testing::{catalog_contract, sample_snapshot};
use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier, Mutex};

fn repo_id(n: u8) -> Id {
    Id([n; 32])
}

fn id(n: u32) -> Id {
    let mut b = [0x55u8; 32];
    b[..4].copy_from_slice(&n.to_le_bytes());
    Id(b)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn catalog_error(r: cairn_core::Result<SqliteCatalog>) -> String {
    match r {
        Err(Error::Catalog(m)) => m,
        Err(e) => panic!("expected a catalog error, got {e:?}"),
        Ok(c) => panic!("opened {c:?}"),
    }
}

#[test]
fn sqlite_catalog_keeps_the_contract() {
    let dirs: Mutex<Vec<tempfile::TempDir>> = Mutex::new(Vec::new());
    catalog_contract(&|| {
        let d = tempfile::tempdir().unwrap();
        let path = catalog_path(d.path(), &repo_id(1));
        dirs.lock().unwrap().push(d);
        Box::new(SqliteCatalog::open(&path, &repo_id(1)).unwrap())
    });
    assert!(dirs.lock().unwrap().len() >= 4);
}

#[test]
fn file_is_private() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let path = catalog_path(&cache, &repo_id(7));
    assert_eq!(path, cache.join(repo_id(7).to_hex()).join("catalog.sqlite"));
    let c = SqliteCatalog::open(&path, &repo_id(7)).unwrap();
    assert_eq!(c.path(), path);
    assert_eq!(mode(&path), 0o600, "database");
    assert_eq!(mode(path.parent().unwrap()), 0o700, "its directory");
    c.update_snapshots(&[(id(1), sample_snapshot(1))], &[])
        .unwrap();
    c.put_trees(&[(id(2), b"secret file names".to_vec())])
        .unwrap();
    let wal = with_suffix(&path, "-wal");
    assert!(wal.exists(), "no WAL after a write");
    for suffix in ["-wal", "-shm"] {
        let p = with_suffix(&path, suffix);
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{suffix}");
        }
    }
    let tag = std::fs::read_to_string(cache.join("CACHEDIR.TAG")).unwrap();
    assert!(
        tag.starts_with("Signature: 8a477f597d28d172789f06886806bc55"),
        "{tag}"
    );
    // Nothing else is tagged (the tag marks the cache root only).
    assert!(!path.parent().unwrap().join("CACHEDIR.TAG").exists());
}

#[test]
fn file_is_private_even_with_a_permissive_umask_and_existing_file() {
    let root = tempfile::tempdir().unwrap();
    let path = catalog_path(root.path(), &repo_id(8));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = SqliteCatalog::open(&path, &repo_id(8)).unwrap();
    assert_eq!(mode(&path), 0o600);
    c.put_trees(&[(id(1), vec![1, 2, 3])]).unwrap();
    assert_eq!(c.tree(&id(1)).unwrap(), Some(vec![1, 2, 3]));
}

#[test]
fn reopen_keeps_everything() {
    let d = tempfile::tempdir().unwrap();
    let path = catalog_path(d.path(), &repo_id(3));
    let snaps: Vec<(Id, Snapshot)> = (0..6).map(|n| (id(n), sample_snapshot(n))).collect();
    let trees: Vec<(Id, Vec<u8>)> = (0..20)
        .map(|n| (id(100 + n), vec![n as u8; 10 + n as usize]))
        .collect();
    {
        let c = SqliteCatalog::open(&path, &repo_id(3)).unwrap();
        c.update_snapshots(&snaps, &[]).unwrap();
        c.put_trees(&trees).unwrap();
    }
    let c = SqliteCatalog::open(&path, &repo_id(3)).unwrap();
    let mut got = c.snapshots().unwrap();
    got.sort_by_key(|(i, _)| *i);
    assert_eq!(got, snaps);
    for (i, body) in &trees {
        assert_eq!(c.tree(i).unwrap().as_ref(), Some(body));
    }
    let info = c.info().unwrap();
    assert_eq!(info.schema_version, SCHEMA_VERSION);
    assert_eq!(info.snapshots, snaps.len() as u64);
    assert_eq!(info.trees, trees.len() as u64);
    assert_eq!(
        info.tree_bytes,
        trees.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    assert!(info.file_bytes > 0);
    assert_eq!(info.location, path.display().to_string());
    // The version is the database's, not only the build's.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

#[test]
fn snapshots_round_trip_exactly() {
    // Snapshots come back from the catalog equal to what was stored, floats included
    // (the repository compares them with what it reads from snapshot files).
    let d = tempfile::tempdir().unwrap();
    let path = catalog_path(d.path(), &repo_id(4));
    let c = SqliteCatalog::open(&path, &repo_id(4)).unwrap();
    let mut x: u64 = 0x1234_5678_9abc_def0;
    let mut snaps = Vec::new();
    for n in 0..200u32 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let mut s = sample_snapshot(n);
        let sum = s.summary.as_mut().unwrap();
        sum.duration_secs = (x >> 11) as f64 / (1u64 << 40) as f64;
        s.time =
            jiff::Timestamp::new(1_700_000_000 + i64::from(n), (x % 1_000_000_000) as i32).unwrap();
        snaps.push((id(n), s));
    }
    c.update_snapshots(&snaps, &[]).unwrap();
    let mut got = c.snapshots().unwrap();
    got.sort_by_key(|(i, _)| *i);
    let mut want = snaps.clone();
    want.sort_by_key(|(i, _)| *i);
    assert_eq!(got.len(), want.len());
    let differ: Vec<String> = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g != w)
        .map(|((i, g), (_, w))| {
            let d = |s: &Snapshot| s.summary.as_ref().map(|m| m.duration_secs);
            format!("{}: {:?} != {:?}", i.short(), d(g), d(w))
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {} differ: {differ:#?}",
        differ.len(),
        want.len()
    );
}

#[test]
fn newer_schema_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let path = catalog_path(d.path(), &repo_id(5));
    drop(SqliteCatalog::open(&path, &repo_id(5)).unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    let msg = catalog_error(SqliteCatalog::open(&path, &repo_id(5)));
    assert!(msg.contains("newer"), "{msg}");
    // Refused, not changed: the version is still the newer one.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[test]
fn other_repository_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("shared").join("catalog.sqlite");
    {
        let c = SqliteCatalog::open(&path, &repo_id(0xA)).unwrap();
        c.update_snapshots(&[(id(1), sample_snapshot(1))], &[])
            .unwrap();
    }
    let msg = catalog_error(SqliteCatalog::open(&path, &repo_id(0xB)));
    assert!(msg.contains("belongs to repository"), "{msg}");
    // The rightful repository still opens it, contents intact.
    let c = SqliteCatalog::open(&path, &repo_id(0xA)).unwrap();
    assert_eq!(c.snapshots().unwrap().len(), 1);
}

#[test]
fn two_processes_write_at_once() {
    const HANDLES: u32 = 4;
    const ROUNDS: u32 = 50;
    let d = tempfile::tempdir().unwrap();
    let path = catalog_path(d.path(), &repo_id(9));
    // Every handle opens at the same moment (two cairn processes starting on a new
    // catalog), then each writes many small transactions.
    let start = Arc::new(Barrier::new(HANDLES as usize));
    std::thread::scope(|s| {
        for t in 0..HANDLES {
            let path = path.clone();
            let start = start.clone();
            s.spawn(move || {
                start.wait();
                let c = SqliteCatalog::open(&path, &repo_id(9)).unwrap();
                for k in 0..ROUNDS {
                    let n = t * 1000 + k;
                    c.update_snapshots(&[(id(n), sample_snapshot(n))], &[])
                        .unwrap();
                    c.put_trees(&[(id(n), vec![t as u8; 64]), (id(900_000 + k), vec![7])])
                        .unwrap();
                    // Readers go on meanwhile.
                    assert!(c.tree(&id(n)).unwrap().is_some());
                    if k % 10 == 9 {
                        // Remove one of this handle's earlier snapshots.
                        c.update_snapshots(&[], &[id(t * 1000 + k - 9)]).unwrap();
                    }
                }
            });
        }
    });
    let c = SqliteCatalog::open(&path, &repo_id(9)).unwrap();
    let held: HashSet<Id> = c.snapshots().unwrap().into_iter().map(|(i, _)| i).collect();
    let mut want = HashSet::new();
    for t in 0..HANDLES {
        for k in 0..ROUNDS {
            if k % 10 != 0 {
                want.insert(id(t * 1000 + k));
            }
        }
    }
    assert_eq!(held, want);
    for t in 0..HANDLES {
        for k in 0..ROUNDS {
            assert_eq!(c.tree(&id(t * 1000 + k)).unwrap(), Some(vec![t as u8; 64]));
        }
    }
    let info = c.info().unwrap();
    assert_eq!(info.trees, u64::from(HANDLES * ROUNDS + ROUNDS));
}

#[test]
fn delete_removes_all_files() {
    let d = tempfile::tempdir().unwrap();
    let path = catalog_path(d.path(), &repo_id(6));
    let c = SqliteCatalog::open(&path, &repo_id(6)).unwrap();
    c.put_trees(&[(id(1), vec![1; 1000])]).unwrap();
    assert!(with_suffix(&path, "-wal").exists());
    // A journal file left by a crash in rollback mode goes too.
    std::fs::write(with_suffix(&path, "-journal"), b"x").unwrap();
    drop(c);
    // SQLite may drop -wal and -shm on the last close; make sure they are there.
    std::fs::write(with_suffix(&path, "-wal"), b"").unwrap();
    std::fs::write(with_suffix(&path, "-shm"), b"").unwrap();
    delete(&path).unwrap();
    for suffix in ["", "-wal", "-shm", "-journal"] {
        assert!(!with_suffix(&path, suffix).exists(), "{suffix} left behind");
    }
    delete(&path).unwrap();
    delete(&d.path().join("never").join("there.sqlite")).unwrap();
    // A new catalog can be made in its place, empty.
    let c = SqliteCatalog::open(&path, &repo_id(6)).unwrap();
    assert_eq!(c.info().unwrap().trees, 0);
}

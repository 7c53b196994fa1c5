//! The SQLite catalog: the catalog contract, privacy of its files, schema versions (and
//! the upgrade that drops the clear rows of version 1), repository binding, and
//! concurrent writers.

use cairn_catalog::{catalog_path, delete, SqliteCatalog, SCHEMA_VERSION};
use cairn_core::{Catalog, CatalogKey, Error, Id, Snapshot, SnapshotRow};
use cairn_crypto::Key;
use cairn_testing::{catalog_contract, sample_row, sample_snapshot};
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
    c.update_snapshots(&[sample_row(1)], &[]).unwrap();
    c.put_trees(&[(id(2), b"sealed bytes".to_vec())]).unwrap();
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
    let snaps: Vec<SnapshotRow> = (0..6).map(sample_row).collect();
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
    got.sort_by_key(|r| r.id);
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
    // Snapshots come back from the catalog, sealed and opened, equal to what was stored,
    // floats included (the repository compares them with what it reads from snapshot
    // files).
    let d = tempfile::tempdir().unwrap();
    let path = catalog_path(d.path(), &repo_id(4));
    let c = SqliteCatalog::open(&path, &repo_id(4)).unwrap();
    let key = CatalogKey::new(&Key::random());
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
    let rows: Vec<SnapshotRow> = snaps.iter().map(|(i, s)| key.seal_snapshot(i, s)).collect();
    c.update_snapshots(&rows, &[]).unwrap();
    let mut got: Vec<(Id, Snapshot)> = c
        .snapshots()
        .unwrap()
        .iter()
        .map(|r| (r.id, key.open_snapshot(r).expect("a row opens")))
        .collect();
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
        c.update_snapshots(&[sample_row(1)], &[]).unwrap();
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
                    let mut row = sample_row(n);
                    row.id = id(n);
                    c.update_snapshots(&[row], &[]).unwrap();
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
    let held: HashSet<Id> = c.snapshots().unwrap().into_iter().map(|r| r.id).collect();
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

/// Schema version 1 as it shipped (its migration, verbatim), to make catalogs of the old
/// schema. Shipped migrations never change, so this stays what older cairns wrote.
const SCHEMA_1: &str = "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE snapshots (
         id BLOB PRIMARY KEY, time TEXT NOT NULL, unix_time INTEGER NOT NULL,
         hostname TEXT NOT NULL, username TEXT NOT NULL, paths TEXT NOT NULL,
         tags TEXT NOT NULL, app TEXT, parent BLOB, tree BLOB NOT NULL, files INTEGER,
         dirs INTEGER, bytes_total INTEGER, bytes_added INTEGER, json TEXT NOT NULL
     );
     CREATE INDEX snapshots_by_time ON snapshots (unix_time);
     CREATE INDEX snapshots_by_host ON snapshots (hostname, unix_time);
     CREATE TABLE trees (id BLOB PRIMARY KEY, body BLOB NOT NULL);";

/// Writes clear rows, as schema 1 held them, whose every text contains `marker`.
fn write_clear_rows(conn: &rusqlite::Connection, marker: &str, from: u32, count: u32) {
    for n in from..from + count {
        let name = format!("{marker}-{n}");
        conn.execute(
            "INSERT INTO snapshots (id, time, unix_time, hostname, username, paths, tags,
                 app, parent, tree, json)
             VALUES (?1, '2026-01-01T00:00:00Z', 0, ?2, ?2, ?3, ?3, ?2, NULL, ?4, ?5)",
            rusqlite::params![
                id(n).0.as_slice(),
                name,
                format!("[\"/srv/{name}\"]"),
                id(n + 1).0.as_slice(),
                format!("{{\"hostname\":\"{name}\",\"paths\":[\"/srv/{name}\"]}}"),
            ],
        )
        .unwrap();
        // A tree body: many file names, so the rows span many pages.
        let body: Vec<u8> = (0..40)
            .flat_map(|k| format!("{name}/file-{k}.txt\0").into_bytes())
            .collect();
        conn.execute(
            "INSERT INTO trees (id, body) VALUES (?1, ?2)",
            rusqlite::params![id(n).0.as_slice(), body],
        )
        .unwrap();
    }
}

/// True if `needle` occurs in the catalog's database, WAL or shared-memory file.
fn on_disk(path: &Path, needle: &[u8]) -> Vec<String> {
    ["", "-wal", "-shm", "-journal"]
        .into_iter()
        .filter(|suffix| {
            std::fs::read(with_suffix(path, suffix))
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
        })
        .map(|s| format!("catalog.sqlite{s}"))
        .collect()
}

#[test]
fn clear_rows_of_schema_1_do_not_survive_the_upgrade() {
    let d = tempfile::tempdir().unwrap();
    let live = d.path().join("old").join("catalog.sqlite");
    std::fs::create_dir_all(live.parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(&live).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(SCHEMA_1).unwrap();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('repository', ?1)",
            [repo_id(0x1A).to_hex()],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        write_clear_rows(&conn, "zq-clear-in-file", 0, 300);
    } // closed: checkpointed into the database file
      // More clear rows that stay in the WAL: an old cairn that crashed before its
      // checkpoint. Copy the files while its connection is open.
    let path = catalog_path(d.path(), &repo_id(0x1A));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    {
        let conn = rusqlite::Connection::open(&live).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        write_clear_rows(&conn, "zq-clear-in-wal", 1000, 100);
        std::fs::copy(&live, &path).unwrap();
        std::fs::copy(with_suffix(&live, "-wal"), with_suffix(&path, "-wal")).unwrap();
    }
    // The old file and its WAL hold the clear rows (the WAL's pages may hold some of the
    // older rows too).
    assert!(on_disk(&path, b"zq-clear-in-file").contains(&"catalog.sqlite".to_string()));
    assert!(on_disk(&path, b"zq-clear-in-wal").contains(&"catalog.sqlite-wal".to_string()));

    let c = SqliteCatalog::open(&path, &repo_id(0x1A)).unwrap();
    assert_eq!(c.replaced(), None, "upgraded, not replaced");
    assert!(c.snapshots().unwrap().is_empty());
    let info = c.info().unwrap();
    assert_eq!((info.schema_version, info.trees), (SCHEMA_VERSION, 0));
    // Still this repository's catalog.
    let msg = catalog_error(SqliteCatalog::open(&path, &repo_id(0x1B)));
    assert!(msg.contains("belongs to repository"), "{msg}");
    for marker in [&b"zq-clear-in-file"[..], b"zq-clear-in-wal"] {
        let found = on_disk(&path, marker);
        assert!(found.is_empty(), "clear rows left in {found:?} while open");
    }
    // New rows go in as the port gives them, and the catalog works on.
    c.put_trees(&[(id(1), vec![7; 50])]).unwrap();
    assert_eq!(c.tree(&id(1)).unwrap(), Some(vec![7; 50]));
    drop(c);
    for marker in [&b"zq-clear-in-file"[..], b"zq-clear-in-wal"] {
        let found = on_disk(&path, marker);
        assert!(
            found.is_empty(),
            "clear rows left in {found:?} after closing"
        );
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
}

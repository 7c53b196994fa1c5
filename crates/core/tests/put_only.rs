//! Put-only keys: what such a key can do (back up, deduplicating against what it stored
//! itself) and what it cannot (read the index or learn what others stored; open any
//! pack or snapshot, its own included; forget, prune, check, restore, copy, manage
//! keys), and that full keys read what it wrote.

mod common;

use cairn_core::{
    check, copy, prune, restore, Backend, BlobKind, CheckOptions, Error, FileKind, Id, InitOptions,
    KdfParams, KeyFile, NoProgress, Password, PruneOptions, Repository, RestoreOptions,
};
use cairn_testing::MemBackend;
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;

const PUT_PASSWORD: &[u8] = b"put-only password";

fn put_password() -> Password {
    Password::new(PUT_PASSWORD.to_vec())
}

/// A repository with one full backup, and a put-only key added to it.
fn setup(dir: &std::path::Path) -> (Arc<MemBackend>, Repository, Id) {
    let (be, full) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let first = run_backup(&full, opts(vec![dir.to_path_buf()], vec![]));
    full.add_put_only_key(&put_password(), KdfParams::DEFAULT)
        .unwrap();
    (be, full, first.id)
}

fn open_put_only(be: &Arc<MemBackend>) -> Repository {
    let repo = Repository::open(be.clone() as Arc<dyn Backend>, &put_password()).unwrap();
    assert!(repo.is_put_only());
    repo
}

/// Every file name and length in the storage.
fn listing(be: &MemBackend) -> BTreeSet<(String, usize)> {
    FileKind::ALL
        .iter()
        .flat_map(|&k| {
            be.names(k)
                .into_iter()
                .map(move |n| (n.clone(), be.read(k, &n).unwrap().len()))
        })
        .collect()
}

fn tree_with(seed: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big.bin"), random_bytes(seed, 3 << 20)).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/small.txt"), b"small file\n").unwrap();
    dir
}

#[test]
fn a_put_only_key_backs_up_and_deduplicates_and_full_keys_read_it() {
    let dir = tree_with(1);
    let (be, full, _) = setup(dir.path());
    let full_name = full.key_name().to_string();
    let mut put = open_put_only(&be);
    let log_dir = tempfile::tempdir().unwrap();
    put.set_send_log(log_dir.path().join("sent"));

    // The put-only key cannot learn what the full key stored: the unchanged big file is
    // stored again, in its own packs.
    // Above the size under which the files of a directory share chunks: its blob is
    // its own, whatever else the directory holds.
    std::fs::write(dir.path().join("sub/new.txt"), random_bytes(2, 300_000)).unwrap();
    let indexes_before: BTreeSet<String> = be.names(FileKind::Index).into_iter().collect();
    let b = run_backup(
        &put,
        opts(
            vec![dir.path().to_path_buf()],
            vec![reader_stream("db.sql", random_bytes(3, 1 << 20))],
        ),
    );
    let added = b.snapshot.summary.as_ref().unwrap().added;
    assert!(
        added.bytes_raw > 3 << 20,
        "it deduplicated against the full key's data: {added:?}"
    );

    // Against what it stored itself it deduplicates, from its send log, in a later
    // process too (with a catalog, its last snapshot is also the parent: tests/e2e).
    let mut again = open_put_only(&be);
    again.set_send_log(log_dir.path().join("sent"));
    let c = run_backup(
        &again,
        opts(
            vec![dir.path().to_path_buf()],
            vec![reader_stream("db.sql", random_bytes(3, 1 << 20))],
        ),
    );
    let second = c.snapshot.summary.as_ref().unwrap();
    assert!(
        second.added.bytes_raw < 100_000,
        "not deduplicated against its own: {:?}",
        second.added
    );
    drop(again);

    // What it wrote: packs, index files and the snapshot sealed to the public key (the
    // snapshot at version 2; packs and index files, padded, at version 3) so that an
    // older cairn refuses them rather than misreads them.
    let snap_bytes = be.read(FileKind::Snapshot, &b.id.to_hex()).unwrap();
    assert_eq!(&snap_bytes[..6], b"CRNs\x02\x02");
    let new_indexes: Vec<String> = be
        .names(FileKind::Index)
        .into_iter()
        .filter(|n| !indexes_before.contains(n))
        .collect();
    assert!(!new_indexes.is_empty());
    for n in &new_indexes {
        let bytes = be.read(FileKind::Index, n).unwrap();
        assert_eq!(&bytes[..6], b"CRNi\x03\x02", "index {n}");
    }

    // The put-only key cannot open its own snapshot or any blob.
    assert!(matches!(
        put.load_snapshot(&b.id.to_hex()),
        Err(Error::PutOnly)
    ));
    let some_blob = *put.index().blobs().next().unwrap().0;
    assert!(matches!(put.read_blob(&some_blob), Err(Error::PutOnly)));

    // Nor can any key it holds open the snapshot file: only the data key does.
    let (name, _) = be
        .list(FileKind::Key)
        .unwrap()
        .into_iter()
        .find(|(n, _)| {
            KeyFile::parse(&be.read(FileKind::Key, n).unwrap(), n)
                .unwrap()
                .is_put_only()
        })
        .unwrap();
    let kf = KeyFile::parse(&be.read(FileKind::Key, &name).unwrap(), &name).unwrap();
    let master = kf.unwrap(&put_password(), &name).unwrap().unwrap();
    assert!(master.data_key().is_err());
    for k in [&master.id_key, &master.chunker_seed, &master.meta_key] {
        assert!(cairn_core::fuzzing::sealed_file(&snap_bytes, k).is_err());
    }
    let full_master = KeyFile::parse(&be.read(FileKind::Key, &full_name).unwrap(), &full_name)
        .unwrap()
        .unwrap(&password(), &full_name)
        .unwrap()
        .unwrap();
    assert!(cairn_core::fuzzing::sealed_file(&snap_bytes, full_master.data_key().unwrap()).is_ok());

    // A full key reads it all: check with data, and a byte-exact restore.
    let full = open(&be).unwrap();
    let report = check_read_data(&full);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let snap = full.load_snapshot(&b.id.to_hex()).unwrap();
    let target = tempfile::tempdir().unwrap();
    let root = cairn_core::browse::root_node(&snap);
    restore(
        &full,
        &root,
        "/",
        &RestoreOptions {
            target: target.path().to_path_buf(),
            ..RestoreOptions::default()
        },
        &NoProgress,
    )
    .unwrap();
    let restored = target.path().join(dir.path().strip_prefix("/").unwrap());
    for f in ["big.bin", "sub/small.txt", "sub/new.txt"] {
        assert_eq!(
            std::fs::read(restored.join(f)).unwrap(),
            std::fs::read(dir.path().join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read(target.path().join("db.sql")).unwrap(),
        random_bytes(3, 1 << 20)
    );

    // A full backup of the same tree now finds every blob the put-only key stored.
    let again = run_backup(&full, opts(vec![dir.path().to_path_buf()], vec![]));
    assert_eq!(again.snapshot.summary.unwrap().added.data_blobs, 0);

    // Tampering with what the put-only key wrote is detected like any other damage: a
    // flipped byte in a kind-2 envelope of a pack, or of the snapshot.
    let put_packs: Vec<String> = be
        .names(FileKind::Pack)
        .into_iter()
        .filter(|n| be.read(FileKind::Pack, n).unwrap()[5] == 2)
        .collect();
    assert!(!put_packs.is_empty());
    for (kind, name) in put_packs
        .iter()
        .map(|n| (FileKind::Pack, n.clone()))
        .chain([(FileKind::Snapshot, b.id.to_hex())])
    {
        let damaged = copy_backend(&be);
        let mut bytes = damaged.read(kind, &name).unwrap();
        bytes[40] ^= 0x01;
        damaged.remove(kind, &name).unwrap();
        damaged.write(kind, &name, &bytes).unwrap();
        let repo = open(&damaged).unwrap();
        let report = check_read_data(&repo);
        assert!(
            report.errors.iter().any(|e| e.contains(&name[..8])),
            "{kind:?} {name}: {:?}",
            report.errors
        );
    }
}

#[test]
fn a_put_only_key_is_refused_by_everything_that_reads_or_removes() {
    let dir = tree_with(4);
    let (be, full, first) = setup(dir.path());
    let put = open_put_only(&be);
    let before = listing(&be);

    let lock = put.lock(true, "prune", std::time::Duration::ZERO).unwrap();
    assert!(matches!(
        prune(&put, &lock, &PruneOptions::default()),
        Err(Error::PutOnly)
    ));
    drop(lock);
    assert!(matches!(put.remove_snapshot(&first), Err(Error::PutOnly)));
    assert!(matches!(
        check(&put, &CheckOptions::default(), &NoProgress),
        Err(Error::PutOnly)
    ));
    assert!(matches!(put.snapshots(), Err(Error::PutOnly)));
    let other = Arc::new(MemBackend::new());
    let dst = Repository::init_like(
        other as Arc<dyn Backend>,
        &password(),
        &InitOptions::default(),
        &full,
    )
    .unwrap();
    assert!(matches!(copy(&put, &dst, &[], 1), Err(Error::PutOnly)));
    assert!(matches!(
        put.add_key(&Password::new(b"another".to_vec()), KdfParams::DEFAULT),
        Err(Error::PutOnly)
    ));
    assert!(matches!(
        put.add_put_only_key(&Password::new(b"another".to_vec()), KdfParams::DEFAULT),
        Err(Error::PutOnly)
    ));
    assert!(matches!(
        put.remove_key(full.key_name()),
        Err(Error::PutOnly)
    ));
    assert_eq!(
        listing(&be),
        before,
        "a refused command changed the storage"
    );

    // It cannot read the index: the full key's blobs are unknown to it, and unreadable.
    put.load_index().unwrap();
    full.load_index().unwrap();
    let (id, loc) = full
        .index()
        .blobs()
        .find(|(_, l)| l.kind == BlobKind::Data)
        .map(|(i, l)| (*i, l))
        .unwrap();
    assert!(loc.raw_len > 0);
    assert!(!put.index().contains(&id));
    assert!(put.read_blob(&id).is_err());
}

//! Master-key rotation: after `rotate`, nothing written from then on opens with the
//! earlier keys, everything written before still restores with the new key, other keys
//! are refused or removed, and a rotation stopped at any point leaves a repository that
//! the password opens, checks clean and restores in full.

mod common;

use cairn_core::{
    rotate, Backend, FileKind, Id, InitOptions, KdfParams, KeyFile, MasterKey, Password, Repository,
};
use cairn_testing::{MemBackend, StopAfter};
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn master_of(be: &MemBackend, name: &str, password: &Password) -> MasterKey {
    KeyFile::parse(&be.read(FileKind::Key, name).unwrap(), name)
        .unwrap()
        .unwrap(password, name)
        .unwrap()
        .unwrap()
}

fn names(be: &MemBackend, kind: FileKind) -> BTreeSet<String> {
    be.names(kind).into_iter().collect()
}

/// Every snapshot restores (through `dump` of each stream) to what was backed up.
fn assert_all_restore(repo: &Repository, expected: &[(Id, Vec<u8>)]) {
    for (id, data) in expected {
        let snap = repo.load_snapshot(&id.to_hex()).unwrap();
        let node = node_at(repo, id, &snap, "/night.sql");
        assert_eq!(&dump(repo, &node), data, "snapshot {}", id.short());
    }
}

fn night(repo: &Repository, n: u64) -> (Id, Vec<u8>) {
    let mut data = random_bytes(1, 600_000);
    data.extend_from_slice(&random_bytes(100 + n, 50_000));
    let r = run_backup(
        repo,
        opts(vec![], vec![reader_stream("night.sql", data.clone())]),
    );
    (r.id, data)
}

#[test]
fn after_rotation_the_old_keys_open_nothing_new_and_the_new_key_reads_everything() {
    let (be, mut repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let mut nights = vec![night(&repo, 0), night(&repo, 1)];
    let old = master_of(&be, repo.key_name(), &password());
    let old_snapshots = names(&be, FileKind::Snapshot);
    let old_packs = names(&be, FileKind::Pack);

    // Another key is refused, and nothing changes.
    let other = Password::new(b"someone else".to_vec());
    repo.add_key(&other, KdfParams::DEFAULT).unwrap();
    let keys_before = names(&be, FileKind::Key);
    let index_before = names(&be, FileKind::Index);
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    let err = rotate(&mut repo, &lock, &password(), KdfParams::DEFAULT, false).unwrap_err();
    assert!(err.to_string().contains("--remove-other-keys"), "{err}");
    assert_eq!(names(&be, FileKind::Key), keys_before);
    assert_eq!(names(&be, FileKind::Index), index_before);
    // So is a password other than the one in use.
    assert!(rotate(&mut repo, &lock, &other, KdfParams::DEFAULT, true).is_err());

    let report = rotate(&mut repo, &lock, &password(), KdfParams::DEFAULT, true).unwrap();
    drop(lock);
    assert_eq!(report.epoch, 1);
    assert_eq!(report.keys_removed.len(), 1);
    assert_eq!(
        names(&be, FileKind::Key),
        BTreeSet::from([report.key.clone()])
    );
    assert!(matches!(
        Repository::open(be.clone() as Arc<dyn Backend>, &other),
        Err(cairn_core::Error::WrongPassword)
    ));

    nights.push(night(&repo, 2));
    let new_snapshots: Vec<String> = names(&be, FileKind::Snapshot)
        .difference(&old_snapshots)
        .cloned()
        .collect();
    let new_packs: Vec<String> = names(&be, FileKind::Pack)
        .difference(&old_packs)
        .cloned()
        .collect();
    assert_eq!(new_snapshots.len(), 1);
    assert!(!new_packs.is_empty());

    // The earlier keys: no index file, no new snapshot, no new pack opens with them.
    for name in names(&be, FileKind::Index) {
        let bytes = be.read(FileKind::Index, &name).unwrap();
        assert!(cairn_core::fuzzing::sealed_file(&bytes, &old.meta_key).is_err());
    }
    for name in &new_snapshots {
        let bytes = be.read(FileKind::Snapshot, name).unwrap();
        assert!(cairn_core::fuzzing::sealed_file(&bytes, old.data_key().unwrap()).is_err());
    }
    for name in &new_packs {
        let bytes = be.read(FileKind::Pack, name).unwrap();
        assert!(cairn_core::fuzzing::pack_file(&bytes, old.data_key().unwrap()).is_err());
    }
    // What was written before still opens with them (as documented).
    let first = old_snapshots.iter().next().unwrap();
    let bytes = be.read(FileKind::Snapshot, first).unwrap();
    assert!(cairn_core::fuzzing::sealed_file(&bytes, old.data_key().unwrap()).is_ok());

    // The password opens the rotated repository; it checks clean and restores all.
    let repo = open(&be).unwrap();
    let report = check_read_data(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_all_restore(&repo, &nights);

    // A put-only key made now seals to the new epoch's public key; a second rotation
    // keeps every epoch readable.
    let put = Password::new(b"put-only".to_vec());
    repo.add_put_only_key(&put, KdfParams::DEFAULT).unwrap();
    let put_repo = Repository::open(be.clone() as Arc<dyn Backend>, &put).unwrap();
    let (put_id, put_data) = night(&put_repo, 3);
    let bytes = be.read(FileKind::Snapshot, &put_id.to_hex()).unwrap();
    assert_eq!(bytes[5], 2, "kind 2");
    assert_eq!(bytes[6..10], 1u32.to_le_bytes(), "epoch 1");
    nights.push((put_id, put_data));
    drop(put_repo);

    let mut repo = repo;
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    let report = rotate(&mut repo, &lock, &password(), KdfParams::DEFAULT, true).unwrap();
    drop(lock);
    assert_eq!(report.epoch, 2);
    nights.push(night(&repo, 4));
    let repo = open(&be).unwrap();
    assert!(check_read_data(&repo).errors.is_empty());
    assert_all_restore(&repo, &nights);
}

#[test]
fn a_rotation_stopped_anywhere_leaves_a_repository_the_password_opens() {
    let (template, repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let nights = vec![night(&repo, 0), night(&repo, 1)];
    drop(repo);
    let mut stops = 0;
    for n in 0.. {
        let mem = copy_backend(&template);
        let stop = Arc::new(StopAfter::new(mem.clone() as Arc<dyn Backend>));
        let mut repo = Repository::open(stop.clone() as Arc<dyn Backend>, &password()).unwrap();
        stop.arm(n);
        let done = repo
            .lock(true, "key rotate", Duration::ZERO)
            .and_then(|lock| rotate(&mut repo, &lock, &password(), KdfParams::DEFAULT, true));
        drop(repo);
        let after = open(&mem).unwrap_or_else(|e| panic!("stopped after {n} changes: {e}"));
        let report = check_read_data(&after);
        assert!(
            report.errors.is_empty(),
            "stopped after {n} changes: {:?}",
            report.errors
        );
        assert_all_restore(&after, &nights);
        // New work after the stop goes on.
        let (id, data) = night(&after, 9);
        assert_all_restore(&after, &[(id, data)]);
        match done {
            Ok(r) => {
                assert_eq!(r.epoch, 1);
                break;
            }
            Err(_) => {
                assert!(stop.stopped(), "failed without being stopped");
                stops += 1;
            }
        }
    }
    assert!(stops >= 3, "only {stops} stop points");
    eprintln!("rotation stopped at {stops} points, then completed");
}

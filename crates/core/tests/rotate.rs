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

/// The key epoch a sealed file (pack, index file, snapshot) is sealed under, and
/// whether its envelope is of kind 2 (sealed to the data public key by a put-only key).
fn epoch_and_kind(bytes: &[u8]) -> (u32, u8) {
    (
        u32::from_le_bytes(bytes[6..10].try_into().unwrap()),
        bytes[5],
    )
}

/// Every pack, index file and snapshot: (kind, name) -> (epoch, wrap kind).
fn sealed_files(be: &MemBackend) -> Vec<(FileKind, String, u32, u8)> {
    let mut out = Vec::new();
    for kind in [FileKind::Pack, FileKind::Index, FileKind::Snapshot] {
        for name in be.names(kind) {
            let (epoch, wrap) = epoch_and_kind(&be.read(kind, &name).unwrap());
            out.push((kind, name, epoch, wrap));
        }
    }
    out
}

/// The snapshots of `repo` by the id they were first taken as.
fn by_original(repo: &Repository) -> Vec<(Id, Id, cairn_core::Snapshot)> {
    repo.snapshots()
        .unwrap()
        .into_iter()
        .map(|(id, s)| (s.original.unwrap_or(id), id, s))
        .collect()
}

/// Every night restores, found by the id it was first taken as (a rewrite renames
/// snapshots); at least one snapshot stands for each, and every one that does restores.
fn assert_all_restore_by_original(repo: &Repository, nights: &[(Id, Vec<u8>)]) {
    repo.load_index().unwrap();
    let snaps = by_original(repo);
    for (first, data) in nights {
        let found: Vec<_> = snaps.iter().filter(|(o, _, _)| o == first).collect();
        assert!(!found.is_empty(), "night {} is lost", first.short());
        for (_, id, snap) in found {
            let node = node_at(repo, id, snap, "/night.sql");
            assert_eq!(&dump(repo, &node), data, "night {}", first.short());
        }
    }
}

fn no_progress(_: &str) {}

/// `key rotate --rewrite-data`: afterwards every pack, index file and snapshot is sealed
/// under the new epoch (a put-only key's stay sealed to the public key), the key that
/// was in use before opens none of them, every snapshot restores byte-exact under its
/// new name (`original` keeps the old one, `parent` follows the rename), and check
/// --read-data passes. A second run finds nothing to do.
#[test]
fn rewrite_data_reseals_every_pack_index_and_snapshot_under_the_new_epoch() {
    let (be, mut repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let mut nights = vec![night(&repo, 0), night(&repo, 1)];
    // A put-only key's backup, with data of its own.
    let put = Password::new(b"put-only".to_vec());
    repo.add_put_only_key(&put, KdfParams::DEFAULT).unwrap();
    let put_repo = Repository::open(be.clone() as Arc<dyn Backend>, &put).unwrap();
    let put_data = random_bytes(77, 300_000);
    let r = run_backup(
        &put_repo,
        opts(vec![], vec![reader_stream("night.sql", put_data.clone())]),
    );
    nights.push((r.id, put_data));
    drop(put_repo);
    let old = master_of(&be, repo.key_name(), &password());
    let before = sealed_files(&be);
    assert!(before.iter().all(|(_, _, e, _)| *e == 0));
    // Packs and snapshots sealed to the public key by the put-only key (its index file
    // is re-listed by the full key, as a rotation does).
    let public = |files: &[(FileKind, String, u32, u8)]| {
        files
            .iter()
            .filter(|f| f.0 != FileKind::Index && f.3 == 2)
            .count()
    };
    let public_before = public(&before);
    assert!(
        public_before >= 2,
        "a put-only pack and snapshot: {before:?}"
    );
    // Before: the old key opens the packs and snapshots.
    let first_pack = be.names(FileKind::Pack).into_iter().next().unwrap();
    let bytes = be.read(FileKind::Pack, &first_pack).unwrap();
    assert!(cairn_core::fuzzing::pack_file(&bytes, old.data_key().unwrap()).is_ok());
    let night1 = repo.load_snapshot(&nights[1].0.to_hex()).unwrap();
    assert_eq!(
        night1.parent,
        Some(nights[0].0),
        "night 1 has night 0 as parent"
    );

    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    let report = cairn_core::rotate_and_rewrite(
        &mut repo,
        &lock,
        &password(),
        KdfParams::DEFAULT,
        true,
        &no_progress,
    )
    .unwrap();
    drop(lock);
    assert_eq!(report.epoch, 1);
    assert!(report.rotation.is_some(), "a new epoch was made");
    assert_eq!(report.continued, 0);
    assert!(report.complete(), "{:?}", report.left);
    assert!(report.packs_rewritten >= 3, "{report:?}");
    assert_eq!(report.snapshots_rewritten.len(), 3);

    // Every file is sealed under epoch 1, of the kind it had; none has its old name.
    let after = sealed_files(&be);
    assert!(
        after.iter().all(|(_, _, e, _)| *e == 1),
        "files under an earlier epoch: {after:?}"
    );
    assert_eq!(public(&after), public_before, "{after:?}");
    let old_names: BTreeSet<&String> = before
        .iter()
        .filter(|f| f.0 != FileKind::Index)
        .map(|f| &f.1)
        .collect();
    assert!(after.iter().all(|f| !old_names.contains(&f.1)));

    // The key in use before opens none of them (any kind of file, any of its keys).
    for (kind, name, _, _) in &after {
        let bytes = be.read(*kind, name).unwrap();
        for key in [&old.meta_key, old.data_key().unwrap()] {
            assert!(cairn_core::fuzzing::sealed_file(&bytes, key).is_err());
            assert!(cairn_core::fuzzing::pack_file(&bytes, key).is_err());
        }
    }

    // Opened afresh: checks clean, every night restores, names and links are kept.
    let repo = open(&be).unwrap();
    let check = check_read_data(&repo);
    assert!(check.errors.is_empty(), "{:?}", check.errors);
    assert_all_restore_by_original(&repo, &nights);
    let renamed: std::collections::HashMap<Id, Id> =
        report.snapshots_rewritten.iter().copied().collect();
    let snaps = by_original(&repo);
    assert_eq!(snaps.len(), 3, "no snapshot lost or doubled");
    let (_, _, night1) = snaps.iter().find(|(o, _, _)| *o == nights[1].0).unwrap();
    assert_eq!(night1.parent, Some(renamed[&nights[0].0]), "parent follows");
    let (_, _, put_snap) = snaps.iter().find(|(o, _, _)| *o == nights[2].0).unwrap();
    assert_eq!(put_snap.access.as_deref(), Some("put-only"));

    // Nothing is left to do.
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    let again = cairn_core::rewrite_data(&repo, &lock, true, &no_progress).unwrap();
    assert!(again.nothing_to_do(), "{again:?}");
    assert_eq!(cairn_core::earlier_epoch_files(&repo).unwrap(), 0);
}

/// A rewrite stopped after any number of changes (as a killed process leaves it) leaves
/// a repository that checks clean and restores every night; running it again continues
/// without making another epoch, and ends with every file under the current epoch, no
/// night lost and none doubled.
#[test]
fn a_rewrite_stopped_anywhere_is_finished_by_running_it_again() {
    let (template, mut repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let nights = vec![night(&repo, 0), night(&repo, 1), night(&repo, 2)];
    // Rotated without rewriting: everything is under epoch 0, the key under epoch 1.
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    rotate(&mut repo, &lock, &password(), KdfParams::DEFAULT, true).unwrap();
    drop(lock);
    drop(repo);
    let mut stops = 0;
    for n in 0.. {
        let mem = copy_backend(&template);
        let stop = Arc::new(StopAfter::new(mem.clone() as Arc<dyn Backend>));
        let mut repo = Repository::open(stop.clone() as Arc<dyn Backend>, &password()).unwrap();
        stop.arm(n);
        let done = repo
            .lock(true, "key rotate", Duration::ZERO)
            .and_then(|lock| {
                cairn_core::rotate_and_rewrite(
                    &mut repo,
                    &lock,
                    &password(),
                    KdfParams::DEFAULT,
                    true,
                    &no_progress,
                )
            });
        drop(repo);
        // A killed process's lock is stale (its process is gone); the stopped one's
        // holder lives on in the test process, so its lock is removed by hand.
        for name in mem.names(FileKind::Lock) {
            mem.remove(FileKind::Lock, &name).unwrap();
        }
        let mut after = open(&mem).unwrap_or_else(|e| panic!("stopped after {n} changes: {e}"));
        let report = check_read_data(&after);
        assert!(
            report.errors.is_empty(),
            "stopped after {n} changes: {:?}",
            report.errors
        );
        assert_all_restore_by_original(&after, &nights);
        let finished = match done {
            Ok(r) => {
                assert!(r.rotation.is_none(), "no new epoch while data is old");
                assert!(r.complete());
                true
            }
            Err(_) => {
                assert!(stop.stopped(), "failed without being stopped");
                stops += 1;
                // Run again: it continues under epoch 1.
                let lock = after.lock(true, "key rotate", Duration::ZERO).unwrap();
                let r = cairn_core::rotate_and_rewrite(
                    &mut after,
                    &lock,
                    &password(),
                    KdfParams::DEFAULT,
                    true,
                    &no_progress,
                )
                .unwrap_or_else(|e| panic!("rerun after {n} changes: {e}"));
                drop(lock);
                assert!(
                    r.rotation.is_none(),
                    "stopped after {n}: a new epoch was made"
                );
                assert!(r.complete(), "{:?}", r.left);
                false
            }
        };
        // Everything under epoch 1 now; every night there once and restorable.
        let files = sealed_files(&mem);
        assert!(
            files.iter().all(|(_, _, e, _)| *e == 1),
            "stopped after {n} changes, then rerun: {files:?}"
        );
        assert!(mem.names(FileKind::Lock).is_empty());
        let report = check_read_data(&after);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_all_restore_by_original(&after, &nights);
        assert_eq!(by_original(&after).len(), nights.len(), "after {n} changes");
        if finished {
            break;
        }
    }
    assert!(stops >= 10, "only {stops} stop points");
    eprintln!("rewrite stopped at {stops} points, then completed");
}

/// Ids kept outside the repository (an app restore's journal names its snapshot and
/// restore point) still find their snapshot after the rewrite renamed it.
#[test]
fn a_snapshot_renamed_by_the_rewrite_is_found_by_its_first_id() {
    let (_be, mut repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let (first, data) = night(&repo, 0);
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    let report = cairn_core::rotate_and_rewrite(
        &mut repo,
        &lock,
        &password(),
        KdfParams::DEFAULT,
        true,
        &no_progress,
    )
    .unwrap();
    drop(lock);
    let (old, new) = report.snapshots_rewritten[0];
    assert_eq!(old, first);
    assert!(repo.load_snapshot(&first.to_hex()).is_err(), "renamed");
    let (id, snap) = repo.load_snapshot_first_taken_as(&first).unwrap();
    assert_eq!(id, new);
    assert_eq!(snap.original, Some(first));
    let (same, _) = repo.load_snapshot_first_taken_as(&new).unwrap();
    assert_eq!(same, new);
    repo.load_index().unwrap();
    let node = node_at(&repo, &id, &snap, "/night.sql");
    assert_eq!(dump(&repo, &node), data);
    assert!(matches!(
        repo.load_snapshot_first_taken_as(&Id([7; 32])),
        Err(cairn_core::Error::SnapshotNotFound(_))
    ));
}

/// A pack that does not authenticate cannot be re-sealed: the rewrite names it, leaves
/// it listed as it was, re-seals everything else, and the next run continues (no new
/// epoch) instead of rotating again.
#[test]
fn a_damaged_pack_is_named_and_left_and_the_rest_is_rewritten() {
    let (be, mut repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let nights = [night(&repo, 0), night(&repo, 1)];
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    rotate(&mut repo, &lock, &password(), KdfParams::DEFAULT, true).unwrap();
    drop(lock);
    // The pack holding night 1's own data (written last) gets a flipped bit in a blob.
    let damaged = {
        repo.load_index().unwrap();
        let snap = repo.load_snapshot(&nights[1].0.to_hex()).unwrap();
        let node = node_at(&repo, &nights[1].0, &snap, "/night.sql");
        let last = *data_ids(&repo, &node).last().unwrap();
        let index = repo.index();
        let loc = index.get(&last).unwrap();
        (index.pack(loc.pack).id.to_hex(), loc.offset as usize + 40)
    };
    be.corrupt(FileKind::Pack, &damaged.0, |b| b[damaged.1] ^= 1);
    let repo = open(&be).unwrap();
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    let report = cairn_core::rewrite_data(&repo, &lock, true, &no_progress).unwrap();
    drop(lock);
    assert!(!report.complete());
    assert_eq!(report.left.len(), 1, "{:?}", report.left);
    assert!(
        report.left[0].contains(&damaged.0[..8]),
        "{:?}",
        report.left
    );
    assert!(report.packs_rewritten >= 1, "{report:?}");
    assert_eq!(report.snapshots_rewritten.len(), 2);
    // Only the damaged pack is still under epoch 0, still there and still listed.
    let old: Vec<_> = sealed_files(&be)
        .into_iter()
        .filter(|f| f.2 == 0)
        .map(|f| (f.0, f.1))
        .collect();
    assert_eq!(old, [(FileKind::Pack, damaged.0.clone())]);
    let repo = open(&be).unwrap();
    assert_eq!(cairn_core::earlier_epoch_files(&repo).unwrap(), 1);
    let check = check_read_data(&repo);
    assert!(
        check.errors.iter().any(|e| e.contains(&damaged.0[..8])),
        "{:?}",
        check.errors
    );
    // Night 0 does not need that pack's damaged blob and still restores.
    assert_all_restore_by_original(&repo, &nights[..1]);
    // Run again through the rotate entry point: it continues, it makes no new epoch.
    let mut repo = repo;
    let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
    let again = cairn_core::rotate_and_rewrite(
        &mut repo,
        &lock,
        &password(),
        KdfParams::DEFAULT,
        true,
        &no_progress,
    )
    .unwrap();
    assert!(again.rotation.is_none());
    assert_eq!(again.continued, 1);
    assert_eq!(again.left.len(), 1);
}

/// Files that a removed key writes after a rotation (sealed under its old epoch, refused
/// by every command) do not make the next `rotate_and_rewrite` continue instead of
/// rotating: it makes a new epoch, re-seals everything else, names them and leaves them.
#[test]
fn files_written_by_a_removed_key_do_not_hold_back_the_next_rotation() {
    let (be, mut repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let nights = vec![night(&repo, 0)];
    let put = Password::new(b"put-only".to_vec());
    let put_name = repo.add_put_only_key(&put, KdfParams::DEFAULT).unwrap();
    let put_file = be.read(FileKind::Key, &put_name).unwrap();
    let rewrite = |repo: &mut Repository| {
        let lock = repo.lock(true, "key rotate", Duration::ZERO).unwrap();
        cairn_core::rotate_and_rewrite(
            repo,
            &lock,
            &password(),
            KdfParams::DEFAULT,
            true,
            &no_progress,
        )
        .unwrap()
    };
    let first = rewrite(&mut repo);
    assert_eq!(first.epoch, 1);
    assert!(first.complete());
    drop(repo);

    // The removed put-only key, put back, writes a pack, an index file and a snapshot
    // under epoch 0; then its key file goes again.
    be.write(FileKind::Key, &put_name, &put_file).unwrap();
    let before: BTreeSet<(FileKind, String)> =
        sealed_files(&be).into_iter().map(|f| (f.0, f.1)).collect();
    let old = Repository::open(be.clone() as Arc<dyn Backend>, &put).unwrap();
    let planted = run_backup(
        &old,
        opts(
            vec![],
            vec![reader_stream("night.sql", random_bytes(9, 70_000))],
        ),
    );
    drop(old);
    be.remove(FileKind::Key, &put_name).unwrap();
    let planted_files: Vec<(FileKind, String)> = sealed_files(&be)
        .into_iter()
        .map(|f| (f.0, f.1))
        .filter(|f| !before.contains(f))
        .collect();
    assert_eq!(planted_files.len(), 3, "{planted_files:?}");
    let mut repo = open(&be).unwrap();
    assert_eq!(cairn_core::earlier_epoch_files(&repo).unwrap(), 0);

    let second = rewrite(&mut repo);
    assert!(second.rotation.is_some(), "a new epoch is made");
    assert_eq!(second.epoch, 2);
    assert!(second.complete(), "{:?}", second.left);
    assert_eq!(second.refused.len(), 2, "{:?}", second.refused);
    assert!(second
        .refused
        .iter()
        .any(|r| r.contains(&planted.id.short())));
    // Everything else is under epoch 2; the refused index file and snapshot are left as
    // they were, and the pack only that index file listed is gone (no reader reaches it).
    for (kind, name, epoch, _) in sealed_files(&be) {
        let is_planted = planted_files.contains(&(kind, name.clone()));
        assert!(
            (is_planted && epoch == 0 && kind != FileKind::Pack) || (!is_planted && epoch == 2),
            "{kind:?} {name} under epoch {epoch}"
        );
    }
    let repo = open(&be).unwrap();
    assert_all_restore_by_original(&repo, &nights);
}

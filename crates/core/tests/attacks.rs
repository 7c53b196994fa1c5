//! The attacks of docs/security.md that need a key to mount, written through real
//! repository files: what a put-only key, or a key removed by rotation, can write, and
//! that full keys are not fooled by it.

mod common;

use cairn_core::{
    fuzzing, rotate, Backend, Error, FileKind, Id, InitOptions, KdfParams, KeyFile, MasterKey,
    Password, Repository,
};
use cairn_testing::MemBackend;
use common::*;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

fn put_password() -> Password {
    Password::new(b"put-only password".to_vec())
}

fn names(be: &MemBackend, kind: FileKind) -> BTreeSet<String> {
    be.names(kind).into_iter().collect()
}

/// The master key a key file holds, as its holder has it.
fn master_of(be: &MemBackend, name: &str, password: &Password) -> MasterKey {
    let bytes = be.read(FileKind::Key, name).unwrap();
    KeyFile::parse(&bytes, name)
        .unwrap()
        .unwrap(password, name)
        .unwrap()
        .unwrap()
}

/// A repository with one full backup of `dir` and a put-only key; returns the backend,
/// the full repository, the put-only key file's name and master key.
fn setup(dir: &std::path::Path) -> (Arc<MemBackend>, Repository, String, MasterKey) {
    let (be, full) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    run_backup(&full, opts(vec![dir.to_path_buf()], vec![]));
    let name = full
        .add_put_only_key(&put_password(), KdfParams::DEFAULT)
        .unwrap();
    let master = master_of(&be, &name, &put_password());
    assert!(master.is_put_only());
    (be, full, name, master)
}

fn secret_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pin.txt"), b"PIN 4711\n").unwrap();
    std::fs::write(dir.path().join("big.bin"), random_bytes(7, 600_000)).unwrap();
    dir
}

#[test]
fn a_put_only_key_cannot_rewrite_the_config() {
    let dir = secret_tree();
    let (be, full, _, put) = setup(dir.path());
    // The put-only key holds the meta key that seals the config: it can read it...
    let sealed = be.read(FileKind::Config, "config").unwrap();
    let plain = fuzzing::sealed_file(&sealed, &put.meta_key).unwrap();
    let mut config: serde_json::Value = serde_json::from_slice(&plain).unwrap();
    assert!(config["auth"].is_string(), "a new config is authenticated");
    // ...and write one with tiny chunks (every full key would then cut 64-byte chunks).
    config["chunker_files"] =
        serde_json::json!({"min_size": 64, "avg_size": 128, "max_size": 1024});
    for auth in [config["auth"].clone(), serde_json::Value::Null] {
        let mut forged = config.clone();
        forged["auth"] = auth;
        let json = serde_json::to_vec(&forged).unwrap();
        be.remove(FileKind::Config, "config").unwrap();
        be.write(
            FileKind::Config,
            "config",
            &fuzzing::seal_as(&put, false, b'c', 1, &json),
        )
        .unwrap();
        let err = open(&be).unwrap_err();
        assert!(
            matches!(err, Error::Corrupt { .. }),
            "a full key refuses the forged config: {err}"
        );
    }
    drop(full);
}

#[test]
fn a_put_only_key_cannot_read_the_index_nor_learn_what_others_stored() {
    let dir = secret_tree();
    let (be, full, _, put) = setup(dir.path());
    full.load_index().unwrap();
    let victim: Vec<Id> = full.index().blobs().map(|(id, _)| *id).collect();
    assert!(!victim.is_empty());
    // Every index file is sealed with the data key: the meta key opens none.
    for name in names(&be, FileKind::Index) {
        let bytes = be.read(FileKind::Index, &name).unwrap();
        assert!(fuzzing::sealed_file(&bytes, &put.meta_key).is_err());
    }
    // Opened with the put-only key, the repository knows none of the full key's blobs:
    // the existence of content it did not store cannot be tested.
    let repo = Repository::open(be.clone() as Arc<dyn Backend>, &put_password()).unwrap();
    repo.load_index().unwrap();
    for id in &victim {
        assert!(!repo.index().contains(id));
    }
    // Backing up the same files stores them again (in its own packs).
    let packs_before = names(&be, FileKind::Pack);
    let r = run_backup(&repo, opts(vec![dir.path().to_path_buf()], vec![]));
    let added = &r.snapshot.summary.as_ref().unwrap().added;
    assert!(added.bytes_raw >= 600_000, "{added:?}");
    assert!(names(&be, FileKind::Pack).len() > packs_before.len());
    // The full key sees which key wrote it.
    let full = open(&be).unwrap();
    let snap = full.load_snapshot(&r.id.to_hex()).unwrap();
    assert_eq!(snap.access.as_deref(), Some("put-only"));
}

#[test]
fn a_planted_index_entry_does_not_shadow_a_full_keys_blob() {
    let dir = secret_tree();
    let (be, full, _, put) = setup(dir.path());
    full.load_index().unwrap();
    let target = dir.path().join("big.bin");
    let (sid, snap) = full.find_snapshot("latest").unwrap();
    let node = node_at(&full, &sid, &snap, target.to_str().unwrap());
    let victim = data_ids(&full, &node);

    // The put-only key backs up something of its own, then plants an index file (in the
    // format its meta key can still write) that says each of the victim's blobs is at
    // the place of one of its own blobs.
    let put_repo = Repository::open(be.clone() as Arc<dyn Backend>, &put_password()).unwrap();
    let own = tempfile::tempdir().unwrap();
    std::fs::write(own.path().join("noise.bin"), random_bytes(99, 300_000)).unwrap();
    let before = names(&be, FileKind::Index);
    run_backup(&put_repo, opts(vec![own.path().to_path_buf()], vec![]));
    let theirs: Vec<String> = names(&be, FileKind::Index)
        .difference(&before)
        .cloned()
        .collect();
    let mut planted = Vec::new();
    for name in &theirs {
        // (Read with the full key here; the put-only client knew them when it wrote.)
        for (info, entries) in full.read_index_file(name).unwrap() {
            let mut fake = entries.clone();
            for (e, id) in fake.iter_mut().zip(victim.iter().cycle()) {
                e.id = *id;
            }
            planted.push((info, fake));
        }
    }
    for version in [1u8, 2] {
        let file = fuzzing::seal_as(&put, false, b'i', version, &fuzzing::encode_index(&planted));
        let name = blake3::hash(&file).to_hex().to_string();
        be.write(FileKind::Index, &name, &file).unwrap();
    }

    // Every time, a full key restores the victim's file byte for byte.
    for _ in 0..6 {
        let repo = open(&be).unwrap();
        repo.load_index().unwrap();
        let node = node_at(&repo, &sid, &snap, target.to_str().unwrap());
        assert_eq!(dump(&repo, &node), random_bytes(7, 600_000));
    }
}

#[test]
fn a_damaged_copy_of_a_blob_is_read_from_another_copy() {
    let dir = secret_tree();
    let (be, full, _, _) = setup(dir.path());
    // The put-only key stores the same file again: two copies of each blob.
    let put_repo = Repository::open(be.clone() as Arc<dyn Backend>, &put_password()).unwrap();
    run_backup(&put_repo, opts(vec![dir.path().to_path_buf()], vec![]));
    full.load_index().unwrap();
    let target = dir.path().join("big.bin");
    let (sid, snap) = full
        .snapshots()
        .unwrap()
        .into_iter()
        .find(|(_, s)| s.access.is_none())
        .unwrap();
    let node = node_at(&full, &sid, &snap, target.to_str().unwrap());
    // Damage the full key's copy of every blob of the file.
    for id in data_ids(&full, &node) {
        let loc = full.index().get(&id).unwrap();
        let pack = full.index().pack(loc.pack).id.to_hex();
        let mut bytes = be.read(FileKind::Pack, &pack).unwrap();
        bytes[loc.offset as usize + 30] ^= 1;
        be.remove(FileKind::Pack, &pack).unwrap();
        be.write(FileKind::Pack, &pack, &bytes).unwrap();
    }
    let repo = open(&be).unwrap();
    repo.load_index().unwrap();
    let node = node_at(&repo, &sid, &snap, target.to_str().unwrap());
    assert_eq!(dump(&repo, &node), random_bytes(7, 600_000));
}

#[test]
fn after_rotation_a_removed_key_writes_nothing_that_is_accepted() {
    let dir = secret_tree();
    let (be, mut full, put_name, _) = setup(dir.path());
    let put_file = be.read(FileKind::Key, &put_name).unwrap();
    let lock = full.lock(true, "key rotate", Duration::ZERO).unwrap();
    rotate(&mut full, &lock, &password(), KdfParams::DEFAULT, true).unwrap();
    drop(lock);
    drop(full);

    // The holder of the removed put-only key puts its key file back and backs up a
    // planted file: pack, index and snapshot sealed under the old epoch.
    be.write(FileKind::Key, &put_name, &put_file).unwrap();
    let planted = tempfile::tempdir().unwrap();
    std::fs::write(planted.path().join("pin.txt"), b"PIN 0000 (planted)\n").unwrap();
    let old = Repository::open(be.clone() as Arc<dyn Backend>, &put_password()).unwrap();
    let injected = run_backup(&old, opts(vec![planted.path().to_path_buf()], vec![]));
    drop(old);

    let repo = open(&be).unwrap();
    let (snaps, damaged) = repo.snapshots_and_damaged().unwrap();
    assert!(snaps.iter().all(|(id, _)| *id != injected.id));
    assert_eq!(damaged.len(), 1);
    assert_eq!(damaged[0].name, injected.id.to_hex());
    assert!(
        damaged[0].error.to_string().contains("rotated away"),
        "{}",
        damaged[0].error
    );
    // `latest` does not silently take the one before; check names the files.
    assert!(matches!(
        repo.find_snapshot("latest"),
        Err(Error::DamagedSnapshots(_))
    ));
    let report = check_read_data(&repo);
    let all = report.errors.join("\n");
    assert!(all.contains(&injected.id.short()), "{all}");
    assert!(all.contains("rotated away"), "{all}");
}

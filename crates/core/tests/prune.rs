//! Prune and locks: unused data goes, used data stays readable, a prune stopped at any
//! change leaves a valid repository, and locks keep prune away from running work.

mod common;

use cairn_core::{
    backup, prune, restore, Backend, Error, FileKind, InitOptions, NoProgress, PruneOptions,
    Repository, RestoreOptions,
};
use cairn_testing::{MemBackend, StopAfter};
use common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Three snapshots of a changing directory; the first two are then forgotten.
struct Setup {
    be: Arc<MemBackend>,
    _tmp: tempfile::TempDir,
    src: PathBuf,
    /// The kept snapshot's id and its files.
    kept: String,
    files: BTreeMap<String, Vec<u8>>,
}

fn write_files(dir: &Path, files: &BTreeMap<String, Vec<u8>>) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    for (name, data) in files {
        std::fs::write(dir.join(name), data).unwrap();
    }
}

fn setup() -> Setup {
    // Small packs, so that the snapshots spread over many of them.
    let (be, repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let mut files = BTreeMap::new();
    files.insert("stays".to_string(), random_bytes(1, 3 << 20));
    files.insert("goes".to_string(), random_bytes(2, 4 << 20));
    files.insert("edited".to_string(), random_bytes(3, 3 << 20));
    files.insert("log".to_string(), log_lines(20_000));
    // Small files, one blob each, many to a pack: half of them go after the first
    // backup, so packs hold used and unused blobs side by side, whatever the chunk
    // boundaries and the order the workers took them in.
    for i in 0..120u64 {
        files.insert(format!("s{i:03}"), random_bytes(100 + i, 12 << 10));
    }
    write_files(&src, &files);
    let first = run_backup(&repo, opts(vec![src.clone()], vec![]));
    files.remove("goes");
    let small_odd = |n: &str| {
        n.len() == 4 && n.starts_with('s') && n[1..].parse::<u32>().is_ok_and(|i| i % 2 == 1)
    };
    files.retain(|name, _| !small_odd(name));
    files.get_mut("edited").unwrap()[1 << 20..(1 << 20) + 4096].fill(7);
    files.insert("new".to_string(), random_bytes(4, 2 << 20));
    write_files(&src, &files);
    let second = run_backup(&repo, opts(vec![src.clone()], vec![]));
    files.insert("late".to_string(), random_bytes(5, 1 << 20));
    write_files(&src, &files);
    let third = run_backup(&repo, opts(vec![src.clone()], vec![]));
    for r in [&first, &second] {
        be.remove(FileKind::Snapshot, &r.id.to_hex()).unwrap();
    }
    Setup {
        be,
        _tmp: tmp,
        src,
        kept: third.id.to_hex(),
        files,
    }
}

fn restores_exactly(
    be: &Arc<MemBackend>,
    snap: &str,
    src: &Path,
    files: &BTreeMap<String, Vec<u8>>,
) {
    let repo = open(be).unwrap();
    repo.load_index().unwrap();
    let (id, s) = repo.find_snapshot(snap).unwrap();
    let node = cairn_core::browse::resolve(&repo, &id, &s, src.to_str().unwrap()).unwrap();
    let target = tempfile::tempdir().unwrap();
    let o = RestoreOptions {
        target: target.path().join("out"),
        ..RestoreOptions::default()
    };
    let (sum, _) = restore(&repo, &node, src.to_str().unwrap(), &o, &NoProgress).unwrap();
    assert_eq!(sum.errors, 0);
    for (name, want) in files {
        let got = std::fs::read(target.path().join("out").join(name)).unwrap();
        assert!(got == *want, "{name} differs after prune");
    }
}

fn check_clean(be: &Arc<MemBackend>) {
    let repo = open(be).unwrap();
    let r = check_read_data(&repo);
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
}

fn lock(repo: &Repository, exclusive: bool) -> cairn_core::Lock {
    repo.lock(exclusive, "test", Duration::ZERO).unwrap()
}

#[test]
fn prune_removes_unused_data_and_keeps_what_snapshots_need() {
    let s = setup();
    let before = s.be.total_bytes();
    let repo = open(&s.be).unwrap();
    let l = lock(&repo, true);
    let r = prune(&repo, &l, &PruneOptions::default()).unwrap();
    drop(l);
    assert!(r.packs_deleted + r.packs_repacked > 0, "{r:#?}");
    // At least the 4 MiB file only the forgotten snapshots had (less what packs that
    // also held used blobs keep, under the repack threshold).
    let reclaimed = r.bytes_deleted + r.bytes_repacked - r.bytes_moved;
    assert!(reclaimed >= 3 << 20, "{reclaimed} bytes reclaimed: {r:#?}");
    let after = s.be.total_bytes();
    assert!(
        after + (3 << 20) < before,
        "repository {before} → {after} bytes"
    );
    check_clean(&s.be);
    restores_exactly(&s.be, &s.kept, &s.src, &s.files);
    assert!(
        s.be.names(FileKind::Lock).is_empty(),
        "the lock is released"
    );

    // A second prune finds nothing to do.
    let repo = open(&s.be).unwrap();
    let l = lock(&repo, true);
    let again = prune(&repo, &l, &PruneOptions::default()).unwrap();
    assert_eq!(
        (
            again.packs_deleted,
            again.packs_repacked,
            again.packs_unindexed
        ),
        (0, 0, 0),
        "{again:#?}"
    );
}

#[test]
fn max_unused_zero_repacks_every_pack_with_unused_blobs() {
    let s = setup();
    let repo = open(&s.be).unwrap();
    let l = lock(&repo, true);
    let r = prune(
        &repo,
        &l,
        &PruneOptions {
            max_unused: 0.0,
            dry_run: false,
        },
    )
    .unwrap();
    assert!(r.packs_repacked > 0 && r.blobs_moved > 0, "{r:#?}");
    assert_eq!(r.bytes_unused_kept, 0);
    drop(l);
    check_clean(&s.be);
    restores_exactly(&s.be, &s.kept, &s.src, &s.files);
}

#[test]
fn dry_run_changes_nothing() {
    let s = setup();
    let listing = |be: &MemBackend| {
        FileKind::ALL
            .iter()
            .filter(|k| **k != FileKind::Lock)
            .map(|k| be.names(*k))
            .collect::<Vec<_>>()
    };
    let before = listing(&s.be);
    let repo = open(&s.be).unwrap();
    let l = lock(&repo, true);
    let r = prune(
        &repo,
        &l,
        &PruneOptions {
            max_unused: 0.0,
            dry_run: true,
        },
    )
    .unwrap();
    // It would change something: delete packs whose blobs are all unused, or (when
    // every such pack also holds a used blob, as the workers' interleaving may make
    // it) repack them.
    assert!(r.dry_run && r.packs_deleted + r.packs_repacked > 0, "{r:?}");
    assert_eq!(listing(&s.be), before);
}

#[test]
fn prune_stopped_after_any_change_leaves_a_valid_repository() {
    let s = setup();
    let mut n = 0;
    loop {
        let copy = copy_backend(&s.be);
        let stop = Arc::new(StopAfter::new(copy.clone() as Arc<dyn Backend>));
        let repo = Repository::open(stop.clone() as Arc<dyn Backend>, &password()).unwrap();
        let l = lock(&repo, true);
        stop.arm(n);
        let r = prune(
            &repo,
            &l,
            &PruneOptions {
                max_unused: 0.0,
                dry_run: false,
            },
        );
        drop(l);
        // The stopped "process" could not remove its lock; a killed one would be gone,
        // which makes its lock stale. This one still runs: remove the lock by hand.
        for name in copy.names(FileKind::Lock) {
            copy.remove(FileKind::Lock, &name).unwrap();
        }
        check_clean(&copy);
        restores_exactly(&copy, &s.kept, &s.src, &s.files);
        if r.is_ok() {
            assert!(!stop.stopped() || n > 0);
            break;
        }
        // The next prune finishes the job.
        let repo = open(&copy).unwrap();
        let l = lock(&repo, true);
        prune(&repo, &l, &PruneOptions::default()).unwrap();
        drop(l);
        check_clean(&copy);
        n += 1;
        assert!(n < 500, "prune does not finish");
    }
    assert!(
        n > 5,
        "prune made only {n} changes: the test saw too few states"
    );
}

#[test]
fn prune_refuses_to_run_when_a_snapshot_is_damaged() {
    let s = setup();
    s.be.corrupt(FileKind::Snapshot, &s.kept, |d| d[40] ^= 1);
    let before = s.be.total_bytes();
    let repo = open(&s.be).unwrap();
    let l = lock(&repo, true);
    let e = prune(&repo, &l, &PruneOptions::default()).unwrap_err();
    assert!(e.to_string().contains("cannot be read"), "{e}");
    drop(l);
    assert_eq!(s.be.total_bytes(), before);
}

#[test]
fn locks_keep_prune_and_backups_apart() {
    let (be, repo) = mem_repo(&InitOptions::default());
    let shared1 = lock(&repo, false);
    let shared2 = lock(&repo, false);
    let e = repo.lock(true, "prune", Duration::ZERO).unwrap_err();
    assert!(matches!(e, Error::Locked(_)), "{e}");
    assert!(e.to_string().contains("shared lock of `test`"), "{e}");
    drop(shared1);
    drop(shared2);
    let excl = lock(&repo, true);
    assert!(excl.is_exclusive());
    let e = repo.lock(false, "backup", Duration::ZERO).unwrap_err();
    assert!(e.to_string().contains("exclusive lock"), "{e}");
    assert!(
        repo.lock(true, "prune", Duration::ZERO).is_err(),
        "two exclusive locks"
    );
    assert_eq!(be.names(FileKind::Lock).len(), 1, "failed takers clean up");
    drop(excl);
    assert!(be.names(FileKind::Lock).is_empty());

    // A shared taker waits for an exclusive lock to go.
    let excl = lock(&repo, true);
    std::thread::scope(|sc| {
        let waiter = sc.spawn(|| repo.lock(false, "backup", Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(300));
        drop(excl);
        waiter
            .join()
            .unwrap()
            .expect("the shared lock after the exclusive one");
    });
}

#[test]
fn prune_needs_an_exclusive_lock() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let l = lock(&repo, false);
    assert!(prune(&repo, &l, &PruneOptions::default()).is_err());
}

#[test]
fn a_backup_after_prune_deduplicates_against_what_is_left() {
    let s = setup();
    let repo = open(&s.be).unwrap();
    let l = lock(&repo, true);
    prune(&repo, &l, &PruneOptions::default()).unwrap();
    drop(l);
    let repo = open(&s.be).unwrap();
    let r = backup(&repo, opts(vec![s.src.clone()], vec![]), &NoProgress).unwrap();
    let sum = r.snapshot.summary.unwrap();
    assert_eq!(sum.added.data_blobs, 0, "everything is still there");
    check_clean(&s.be);
}

#[test]
fn repair_snapshot_keeps_what_can_be_read_and_names_what_was_lost() {
    // Small packs: the large file's chunks fill packs of their own.
    let (be, repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("small"), b"small file\n").unwrap();
    std::fs::write(src.join("sub/doomed.bin"), random_bytes(7, 8 << 20)).unwrap();
    let r = run_backup(&repo, opts(vec![src.clone()], vec![]));
    let node = cairn_core::browse::resolve(
        &repo,
        &r.id,
        &r.snapshot,
        src.join("sub/doomed.bin").to_str().unwrap(),
    )
    .unwrap();
    let doomed: std::collections::HashSet<cairn_core::Id> =
        data_ids(&repo, &node).into_iter().collect();
    // A pack that holds nothing but chunks of that file.
    let pack = {
        let index = repo.index();
        let mut by_pack: BTreeMap<u32, Vec<cairn_core::Id>> = BTreeMap::new();
        for (id, loc) in index.blobs() {
            by_pack.entry(loc.pack).or_default().push(*id);
        }
        let (pos, _) = by_pack
            .iter()
            .find(|(_, ids)| ids.iter().all(|id| doomed.contains(id)))
            .expect("a pack of the large file's chunks only");
        index.pack(*pos).id.to_hex()
    };
    // The pack is lost; the index is rebuilt from what is left.
    be.remove(FileKind::Pack, &pack).unwrap();
    let repo = open(&be).unwrap();
    let l = lock(&repo, true);
    cairn_core::repair_index(&repo, &l).unwrap();
    drop(l);
    let repo = open(&be).unwrap();
    let report = cairn_core::repair_snapshot(&repo, &r.id).unwrap();
    let lost = format!("{}/sub/doomed.bin", src.display());
    assert_eq!(report.lost, vec![lost]);
    let repaired = report.repaired.expect("a repaired copy");
    // The original still names the lost blob; without it the repository checks clean.
    be.remove(FileKind::Snapshot, &r.id.to_hex()).unwrap();
    check_clean(&be);
    let repo = open(&be).unwrap();
    repo.load_index().unwrap();
    let (id, snap) = repo.find_snapshot(&repaired).unwrap();
    assert!(snap.has_tag("repaired"));
    let node = cairn_core::browse::resolve(&repo, &id, &snap, src.to_str().unwrap()).unwrap();
    let target = tempfile::tempdir().unwrap();
    let o = RestoreOptions {
        target: target.path().join("out"),
        ..RestoreOptions::default()
    };
    restore(&repo, &node, src.to_str().unwrap(), &o, &NoProgress).unwrap();
    let out = target.path().join("out");
    assert_eq!(std::fs::read(out.join("small")).unwrap(), b"small file\n");
    assert!(out.join("sub").is_dir() && !out.join("sub/doomed.bin").exists());
    // A whole snapshot needs no repair.
    let again = cairn_core::repair_snapshot(&repo, &id).unwrap();
    assert!(again.lost.is_empty() && again.repaired.is_none());
}

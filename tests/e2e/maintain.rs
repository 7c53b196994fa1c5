//! forget, prune and tag through the binary, and prune running while backups run in
//! other processes.

use crate::common::*;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

fn snapshot_ids(env: &Env) -> Vec<String> {
    env.json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn make_src(env: &Env, name: &str, seed: u64) -> PathBuf {
    let src = env.path(name);
    fs::create_dir_all(&src).unwrap();
    // Shared with every other source (deduplicates), plus data of its own.
    fs::write(src.join("common"), pseudo_random(0, 2 << 20)).unwrap();
    fs::write(
        src.join("own"),
        pseudo_random(seed, (1 << 20) + seed as usize),
    )
    .unwrap();
    fs::write(src.join("small"), format!("source {seed}\n")).unwrap();
    // Data of an older source, whose snapshot forget may have removed: a backup that
    // deduplicates against packs a concurrent prune deletes would lose it.
    if seed >= 3 {
        let old = seed - 3;
        fs::write(
            src.join("older"),
            pseudo_random(old, (1 << 20) + old as usize),
        )
        .unwrap();
    }
    src
}

#[test]
fn forget_dry_run_says_what_it_would_do_and_why() {
    let env = Env::new();
    env.init();
    let src = make_src(&env, "src", 1);
    let mut ids = Vec::new();
    for i in 0..4 {
        fs::write(src.join("small"), format!("version {i}\n")).unwrap();
        ids.push(env.backup(&[&src]));
    }
    env.ok(&["tag", &ids[0], "--add", "protected"]);
    let ids = snapshot_ids(&env); // tagging renamed the first one
    let out = env.ok(&["forget", "--keep-last", "2", "--dry-run"]);
    assert!(out.contains("4 snapshot(s), 3 kept, 1 to remove"), "{out}");
    assert!(out.contains("last 1") && out.contains("last 2"), "{out}");
    assert!(out.contains("protected"), "{out}");
    assert!(
        out.contains("remove") && out.contains("no rule keeps it"),
        "{out}"
    );
    assert!(out.contains("would remove 1 snapshot(s)"), "{out}");
    assert_eq!(snapshot_ids(&env), ids, "a dry run removes nothing");

    let v = env.json(&["forget", "--keep-last", "2"]);
    assert_eq!(v["removed"].as_array().unwrap().len(), 1);
    let kept = snapshot_ids(&env);
    assert_eq!(kept.len(), 3);
    assert!(!kept.contains(&v["removed"][0].as_str().unwrap().to_string()));

    // A protected snapshot cannot be forgotten by id either.
    let protected = env.json(&["snapshots", "--tag", "protected"]);
    let pid = protected[0]["id"].as_str().unwrap();
    let out = env.run(&["forget", pid]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("protected"));
    // No rule and no id: refused, nothing removed.
    assert!(!env.run(&["forget"]).status.success());
    assert_eq!(snapshot_ids(&env).len(), 3);
}

#[test]
fn forget_then_prune_reclaims_space_and_keeps_the_rest_restorable() {
    let env = Env::new();
    env.init();
    let a = make_src(&env, "a", 1);
    let b = make_src(&env, "b", 2);
    let first = env.backup(&[&a]);
    let second = env.backup(&[&b]);
    let size = walk_size;
    let before = size(&env.repo.join("data"));
    let dry = env.json(&["prune", "--dry-run"]);
    assert_eq!(dry["packs_deleted"], 0, "nothing unused yet: {dry}");
    env.ok(&["forget", &first]);
    let dry = env.json(&["prune", "--dry-run", "--max-unused", "0%"]);
    assert!(dry["blobs_unused"].as_u64().unwrap() > 0, "{dry}");
    assert_eq!(
        size(&env.repo.join("data")),
        before,
        "dry run deletes nothing"
    );
    let out = env.ok(&["prune", "--max-unused", "0%"]);
    assert!(out.contains("unused pack(s)"), "{out}");
    let after = size(&env.repo.join("data"));
    assert!(
        after + (1 << 20) <= before,
        "the 1 MiB only the forgotten snapshot used is gone: {before} → {after}"
    );
    env.ok(&["check", "--read-data"]);
    let target = env.path("restore");
    env.ok(&["restore", &second, "--target", target.to_str().unwrap()]);
    assert_same_tree(&b, &restored(&target, &b));
}

/// Lock files in the repository (not the temporary files of a write in progress).
fn lock_files(env: &Env) -> usize {
    fs::read_dir(env.repo.join("locks"))
        .map(|d| {
            d.filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .count()
        })
        .unwrap_or(0)
}

fn walk_size(p: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            walk_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// A snapshot's source directory and what it looked like.
type Expected = (PathBuf, BTreeMap<Vec<u8>, String>);

/// Backups run in a loop in other processes while forget + prune run in a loop: every
/// snapshot left restores byte-exact, and check reads every byte.
#[test]
fn prune_while_backups_run_loses_nothing() {
    let env = Env::new();
    env.init();
    let finished = AtomicUsize::new(0);
    let expected: Mutex<BTreeMap<String, Expected>> = Mutex::new(BTreeMap::new());
    let prunes = AtomicUsize::new(0);
    let reclaimed = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for worker in 0..2u64 {
            let (env, finished, expected) = (&env, &finished, &expected);
            s.spawn(move || {
                for i in 0..8u64 {
                    let seed = 100 * (worker + 1) + i;
                    let src = make_src(env, &format!("src-{worker}-{i}"), seed);
                    let id = env.backup(&[&src]);
                    expected
                        .lock()
                        .unwrap()
                        .insert(id, (src.clone(), describe(&src)));
                }
                finished.fetch_add(1, Ordering::SeqCst);
            });
        }
        let (env, finished, prunes, reclaimed) = (&env, &finished, &prunes, &reclaimed);
        s.spawn(move || {
            while finished.load(Ordering::SeqCst) < 2 || prunes.load(Ordering::SeqCst) < 3 {
                env.ok(&["forget", "--keep-last", "4", "--group-by", "none"]);
                let r = env.json(&["prune", "--max-unused", "0%"]);
                let changed =
                    r["packs_deleted"].as_u64().unwrap() + r["packs_repacked"].as_u64().unwrap();
                reclaimed.fetch_add(changed as usize, Ordering::SeqCst);
                prunes.fetch_add(1, Ordering::SeqCst);
            }
        });
    });
    assert!(prunes.load(Ordering::SeqCst) >= 3);
    assert!(
        reclaimed.load(Ordering::SeqCst) > 0,
        "the prunes deleted or repacked packs while backups ran"
    );
    let left = snapshot_ids(&env);
    assert!(!left.is_empty());
    env.ok(&["check", "--read-data"]);
    let expected = expected.into_inner().unwrap();
    for id in &left {
        let (src, want) = &expected[id];
        let target = env.path(&format!("r-{}", &id[..8]));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        assert!(
            &describe(&restored(&target, src)) == want,
            "snapshot {id} does not restore byte-exact"
        );
    }
    // And a backup after all that still works and deduplicates.
    let src = make_src(&env, "last", 999);
    env.backup(&[&src]);
    env.ok(&["check"]);
}

/// Starts a backup that hangs reading a command's output (`sleep 60`) and returns once
/// it holds its lock.
fn start_hanging_backup(env: &Env) -> std::process::Child {
    let child = env
        .cmd()
        .args([
            "backup",
            "--stdin-from-command",
            "slow",
            "--",
            "sleep",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while lock_files(env) == 0 {
        assert!(std::time::Instant::now() < deadline, "no lock appeared");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

#[test]
fn a_lock_left_by_a_killed_backup_does_not_block_prune() {
    let env = Env::new();
    env.init();
    // Killed while it holds its lock.
    let mut child = start_hanging_backup(&env);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(lock_files(&env), 1, "the dead backup's lock");
    // Without waiting: the lock of a process that no longer runs does not count.
    env.ok(&["prune", "--retry-lock", "0"]);
    assert_eq!(lock_files(&env), 0, "stale lock removed");
}

#[test]
fn a_running_backup_makes_prune_wait_or_give_up_with_exit_11() {
    let env = Env::new();
    env.init();
    let mut child = start_hanging_backup(&env);
    let out = env.run(&["prune", "--retry-lock", "1s"]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(11), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shared lock of `backup`"), "{err}");
}

#[test]
fn repair_index_rebuilds_lost_and_damaged_index_files_from_the_packs() {
    let env = Env::new();
    env.init();
    let a = make_src(&env, "a", 1);
    let b = make_src(&env, "b", 2);
    env.backup(&[&a]);
    let second = env.backup(&[&b]);
    let index_dir = env.repo.join("index");
    let index_files = || -> Vec<PathBuf> {
        fs::read_dir(&index_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    };
    // A damaged index file: the repository no longer opens its index.
    let first_index = index_files()[0].clone();
    let mut bytes = fs::read(&first_index).unwrap();
    bytes[120] ^= 1;
    fs::set_permissions(&first_index, fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(&first_index, &bytes).unwrap();
    assert!(!env.run(&["check"]).status.success());
    let out = env.ok(&["repair", "index"]);
    assert!(out.contains("index file(s) written"), "{out}");
    env.ok(&["check", "--read-data"]);

    // Every index file lost: the packs still hold everything.
    for f in index_files() {
        fs::remove_file(f).unwrap();
    }
    let v = env.json(&["repair", "index"]);
    assert!(v["blobs"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(v["bad_packs"].as_array().unwrap().len(), 0);
    env.ok(&["check", "--read-data"]);
    let target = env.path("restore");
    env.ok(&["restore", &second, "--target", target.to_str().unwrap()]);
    assert_same_tree(&b, &restored(&target, &b));
}

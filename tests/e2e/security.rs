//! The threat model's "cannot"s, tried through the binary on real repository files
//! (docs/security.md): a damaged newest snapshot, a key file made to hang or taken from
//! another repository, a damaged index file.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Two backups of one directory whose file changed in between; returns the env, the
/// source, and the two snapshot ids.
fn two_generations() -> (Env, PathBuf, String, String) {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("ledger.txt"), b"balance: 100\n").unwrap();
    let old = env.backup(&[&src]);
    fs::write(src.join("ledger.txt"), b"balance: 250 (newest)\n").unwrap();
    let new = env.backup(&[&src]);
    (env, src, old, new)
}

#[test]
fn a_damaged_newest_snapshot_stops_latest_instead_of_giving_older_data() {
    let (env, src, old, new) = two_generations();
    flip(&env.repo.join("snapshots").join(&new), 60);
    // As on a fresh machine after a disaster: no catalog.
    let target = env.path("restored");
    let out = env.run(&[
        "--no-cache",
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "restore latest must fail");
    let err = stderr(&out);
    assert!(err.contains(&new[..8]), "names the damaged snapshot: {err}");
    assert!(
        err.contains(&old[..8]),
        "names the newest readable one: {err}"
    );
    assert!(err.contains("--skip-damaged"), "{err}");
    assert!(files_under(&target).is_empty(), "nothing restored");

    for args in [
        vec!["--no-cache", "ls", "latest"],
        vec![
            "--no-cache",
            "dump",
            "latest",
            src.join("ledger.txt").to_str().unwrap(),
        ],
        vec!["--no-cache", "dump", "--archive", "tar", "latest"],
    ] {
        let out = env.run(&args);
        assert!(!out.status.success(), "{args:?} must fail");
        assert!(out.stdout.is_empty(), "{args:?} wrote output");
        assert!(
            stderr(&out).contains(&new[..8]),
            "{args:?}: {}",
            stderr(&out)
        );
    }

    // Asked for, the older data is given, and an id still selects exactly.
    let dumped = env.ok(&[
        "--no-cache",
        "dump",
        "latest",
        "--skip-damaged",
        src.join("ledger.txt").to_str().unwrap(),
    ]);
    assert_eq!(dumped, "balance: 100\n");
    let dumped = env.ok(&[
        "--no-cache",
        "dump",
        &old[..8],
        src.join("ledger.txt").to_str().unwrap(),
    ]);
    assert_eq!(dumped, "balance: 100\n");
    let out = env.run(&["--no-cache", "dump", &new[..8], "/x"]);
    assert!(!out.status.success());
}

#[test]
fn latest_takes_host_tag_and_app_and_snapshots_name_the_key() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"tagged\n").unwrap();
    let tagged = env.json(&["backup", src.to_str().unwrap(), "--tag", "monthly"])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(src.join("f"), b"untagged\n").unwrap();
    let plain = env.backup(&[&src]);
    let f = src.join("f");
    let f = f.to_str().unwrap();
    assert_eq!(env.ok(&["dump", "latest", f]), "untagged\n");
    assert_eq!(
        env.ok(&["dump", "latest", "--tag", "monthly", f]),
        "tagged\n"
    );
    let host = cairn_host();
    assert_eq!(
        env.ok(&["dump", "latest", "--host", &host, f]),
        "untagged\n"
    );
    let out = env.run(&["dump", "latest", "--host", "no-such-host", f]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no snapshot of host no-such-host"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["ls", "latest", "--app", "kimai"]);
    assert!(!out.status.success());
    let target = env.path("r");
    env.ok(&[
        "restore",
        "latest",
        "--tag",
        "monthly",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        fs::read(restored(&target, &src).join("f")).unwrap(),
        b"tagged\n"
    );

    // Every snapshot says which key wrote it.
    let key = env.json(&["key", "list"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = env.json(&["snapshots"]);
    for s in list.as_array().unwrap() {
        assert_eq!(s["key"], key.as_str(), "{s}");
        assert!(s.get("access").is_none(), "a full key's snapshot: {s}");
    }
    let text = env.ok(&["snapshots"]);
    assert!(text.lines().next().unwrap().contains("key"), "{text}");
    assert!(text.contains(&key[..8]), "{text}");
    let _ = (tagged, plain);
}

fn cairn_host() -> String {
    let out = std::process::Command::new("uname")
        .arg("-n")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Rewrites the informational `created` field of a key file until the file's name
/// (the BLAKE3 of its bytes) sorts before `before`, so that a reader that tries key files
/// in name order tries it first; returns the new file's name.
fn write_sorting_first(keys: &Path, mut json: serde_json::Value, before: &str) -> String {
    for i in 0.. {
        json["created"] = format!("2026-01-01T00:00:{:02}.{i}Z", i % 60).into();
        let bytes = serde_json::to_vec_pretty(&json).unwrap();
        let name = blake3::hash(&bytes).to_hex().to_string();
        if name.as_str() < before {
            fs::write(keys.join(&name), &bytes).unwrap();
            return name;
        }
    }
    unreachable!()
}

/// Runs `cairn` and kills it after `limit`: Ok(output) if it ended in time.
fn run_within(env: &Env, args: &[&str], limit: std::time::Duration) -> Result<Output, String> {
    let mut child = env
        .cmd()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Ok(child.wait_with_output().unwrap());
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{args:?} still running after {limit:?}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn a_key_file_made_to_hang_is_tried_last_and_key_id_picks_one() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"x").unwrap();
    env.backup(&[&src]);
    let keys = env.repo.join("keys");
    let good = names_in(&keys).pop().unwrap();
    let mut json: serde_json::Value =
        serde_json::from_slice(&fs::read(keys.join(&good)).unwrap()).unwrap();
    // The largest parameters a reader accepts: minutes of work and 4 GiB per try.
    json["params"] =
        serde_json::json!({"memory_kib": 4u64 << 20, "iterations": 64, "parallelism": 1});
    let slow = write_sorting_first(&keys, json, &good);

    // Well under what deriving with those parameters takes on any machine.
    let limit = std::time::Duration::from_secs(60);
    let out = run_within(&env, &["snapshots"], limit).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // --key-id picks one key file; a prefix that matches none is refused.
    let out = run_within(&env, &["--key-id", &good[..10], "snapshots"], limit).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run_within(&env, &["--key-id", "zz", "snapshots"], limit).unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no key file matches"),
        "{}",
        stderr(&out)
    );
    // A wrong password reaches the costly key file last, and says so before trying it.
    fs::write(&env.password_file, "not the password\n").unwrap();
    let mut child = env
        .cmd()
        .args(["snapshots"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    use std::io::Read;
    while err.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = String::from_utf8_lossy(&line);
    assert!(
        line.contains(&slow[..8]) && line.contains("--key-id"),
        "{line}"
    );
}

#[test]
fn a_key_file_of_another_repository_is_skipped() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), b"mine\n").unwrap();
    env.backup(&[&src]);
    let keys = env.repo.join("keys");
    let good = names_in(&keys).pop().unwrap();

    // Another repository, same password: its key opens with it, but not this config.
    let other = Env::new();
    fs::copy(&env.password_file, &other.password_file).unwrap();
    other.init();
    let theirs = names_in(&other.repo.join("keys")).pop().unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&fs::read(other.repo.join("keys").join(&theirs)).unwrap()).unwrap();
    let foreign = write_sorting_first(&keys, json, &good);

    let out = env.run(&["dump", "latest", src.join("f").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"mine\n");
    let err = stderr(&out);
    assert!(
        err.contains(&foreign[..8]) && err.contains("another repository"),
        "the foreign key is named: {err}"
    );
}

#[test]
fn a_damaged_index_file_does_not_stop_what_is_indexed_elsewhere() {
    let env = Env::new();
    env.init();
    let a = env.path("a");
    fs::create_dir_all(&a).unwrap();
    fs::write(a.join("kept.bin"), pseudo_random(1, 300_000)).unwrap();
    let first = env.backup(&[&a]);
    let index = env.repo.join("index");
    let before = names_in(&index);
    let b = env.path("b");
    fs::create_dir_all(&b).unwrap();
    fs::write(b.join("lost.bin"), pseudo_random(2, 300_000)).unwrap();
    let second = env.backup(&[&b]);
    let added: Vec<String> = names_in(&index)
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert!(!added.is_empty());
    for n in &added {
        flip(&index.join(n), 40);
    }

    let target = env.path("r1");
    let out = env.run(&[
        "--no-cache",
        "restore",
        &first,
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&added[0][..8]),
        "names the index file: {}",
        stderr(&out)
    );
    assert_eq!(
        fs::read(restored(&target, &a).join("kept.bin")).unwrap(),
        pseudo_random(1, 300_000)
    );
    // What only the damaged file listed fails, naming what is missing; nothing wrong.
    let target = env.path("r2");
    let out = env.run(&[
        "--no-cache",
        "restore",
        &second,
        "--target",
        target.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    for f in files_under(&target) {
        if f.is_file() {
            assert_eq!(fs::read(&f).unwrap(), pseudo_random(2, 300_000));
        }
    }
    // check names it, and repair index rebuilds it from the packs.
    let out = env.run(&["check"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&added[0][..8])
            || stderr(&out).contains(&added[0][..8])
    );
    env.ok(&["repair", "index"]);
    let target = env.path("r3");
    env.ok(&["restore", &second, "--target", target.to_str().unwrap()]);
    assert_eq!(
        fs::read(restored(&target, &b).join("lost.bin")).unwrap(),
        pseudo_random(2, 300_000)
    );
}

/// Whether a command's standard error reports a rollback.
fn warns_rollback(o: &Output) -> bool {
    stderr(o).contains("rolled back")
}

#[test]
fn a_repository_whose_newest_snapshot_vanishes_is_reported_by_every_command_and_check() {
    let (env, _src, old, new) = two_generations();
    // The storage shows an older state: the newest snapshot is gone.
    let saved = fs::read(env.repo.join("snapshots").join(&new)).unwrap();
    fs::remove_file(env.repo.join("snapshots").join(&new)).unwrap();
    let target = env.path("restored");
    for args in [
        vec!["snapshots"],
        vec!["--no-cache", "ls", "latest"],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
    ] {
        let out = env.run(&args);
        assert!(warns_rollback(&out), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&new[..8]),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = env.run(&["check"]);
    assert!(!out.status.success(), "check must fail");
    assert!(stderr(&out).contains(&new[..8]), "{}", stderr(&out));

    // Putting the snapshot back does not silence what was seen; accepting does.
    fs::write(env.repo.join("snapshots").join(&new), saved).unwrap();
    assert!(!env.run(&["check"]).status.success());
    let out = env.run(&["check", "--accept-rollback"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("accepted"), "{}", stderr(&out));
    let out = env.run(&["snapshots"]);
    assert!(!warns_rollback(&out), "{}", stderr(&out));
    assert!(env.run(&["check"]).status.success());

    // This machine's own forget is no rollback, nor is a newer snapshot replacing an
    // older one forgotten elsewhere.
    env.ok(&["forget", &new[..8]]);
    let out = env.run(&["snapshots"]);
    assert!(!warns_rollback(&out), "{}", stderr(&out));
    let out = env.run(&["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let _ = old;
}

#[test]
fn an_index_file_replayed_after_it_had_gone_is_reported_by_restore_and_check() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a.txt"), b"first generation\n").unwrap();
    env.backup(&[&src]);
    let index = env.repo.join("index");
    let before = names_in(&index);
    let kept: Vec<(String, Vec<u8>)> = before
        .iter()
        .map(|n| (n.clone(), fs::read(index.join(n)).unwrap()))
        .collect();
    // Index files are rewritten (as prune and repair do); the old ones go.
    env.ok(&["repair", "index"]);
    let after = names_in(&index);
    assert!(
        before.iter().all(|n| !after.contains(n)),
        "{before:?} {after:?}"
    );
    let target = env.path("restored");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(
        out.status.success() && !warns_rollback(&out),
        "{}",
        stderr(&out)
    );

    // The storage puts an old index file back.
    for (name, bytes) in &kept {
        fs::write(index.join(name), bytes).unwrap();
    }
    let target = env.path("restored-again");
    let out = env.run(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert!(warns_rollback(&out), "{}", stderr(&out));
    assert!(stderr(&out).contains(&kept[0].0[..16]), "{}", stderr(&out));
    let out = env.run(&["check"]);
    assert!(!out.status.success(), "check must fail");
    assert!(stderr(&out).contains(&kept[0].0[..16]), "{}", stderr(&out));
}

/// Every command that picks `latest` stops on a damaged newest snapshot, not only the
/// ones that restore: `tag latest` would otherwise rewrite the older snapshot, `copy
/// latest` send it offsite as the newest, `find --snapshot latest` search it.
#[test]
fn every_command_that_picks_latest_stops_on_a_damaged_newest_snapshot() {
    let (env, _src, old, new) = two_generations();
    flip(&env.repo.join("snapshots").join(&new), 60);
    let before = names_in(&env.repo.join("snapshots"));
    let dst = env.path("offsite");
    let offsite = || {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", &dst)
            .env("CAIRN_FROM_REPOSITORY", &env.repo)
            .env("CAIRN_FROM_PASSWORD_FILE", &env.password_file);
        c
    };
    succeed(offsite().args(["init"]));
    // As on a machine whose catalog never held the newest snapshot.
    for (mut cmd, what) in [
        (env.cmd(), vec!["--no-cache", "tag", "latest", "--add", "x"]),
        (
            env.cmd(),
            vec!["--no-cache", "repair", "snapshots", "latest"],
        ),
        (
            env.cmd(),
            vec!["--no-cache", "find", "--snapshot", "latest", "ledger.txt"],
        ),
        (offsite(), vec!["--no-cache", "copy", "latest"]),
    ] {
        let out = cmd.args(&what).output().unwrap();
        assert!(!out.status.success(), "{what:?} must fail");
        let err = stderr(&out);
        assert!(
            err.contains(&new[..8]),
            "{what:?} names the damaged one: {err}"
        );
        assert!(
            err.contains(&old[..8]),
            "{what:?} names the readable one: {err}"
        );
    }
    assert_eq!(
        names_in(&env.repo.join("snapshots")),
        before,
        "nothing rewritten"
    );
    assert!(
        names_in(&dst.join("snapshots")).is_empty(),
        "nothing copied"
    );
    // Copying everything copies what is readable and says what it leaves.
    let out = offsite().args(["copy"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("not copied"), "{}", stderr(&out));
    assert_eq!(names_in(&dst.join("snapshots")).len(), 1);
}

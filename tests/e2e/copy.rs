//! `cairn copy` and `cairn init --copy-params-from` through the binary: offsite copies
//! that restore byte-exact, copy again copies nothing, a killed copy finishes when run
//! again, and a copy into a repository that cuts otherwise works and says it costs more.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// A source repository with three snapshots of a changing tree (`src/`) and two of a
/// stream; returns the tree's directory.
fn source(env: &Env, mb: usize) -> PathBuf {
    env.init();
    let src = env.path("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    for night in 0..3u64 {
        fs::write(src.join("big.bin"), pseudo_random(night, mb << 20)).unwrap();
        fs::write(src.join("sub/notes.txt"), format!("night {night}\n")).unwrap();
        fs::write(src.join("same.bin"), pseudo_random(99, 200_000)).unwrap();
        env.backup(&[&src]);
    }
    for night in 0..2u8 {
        let mut dump: Vec<u8> = (0..60_000)
            .flat_map(|i| format!("{i}\trow {i}\tv1\n").into_bytes())
            .collect();
        dump[1000] = b'a' + night;
        let mut c = env
            .cmd()
            .args(["backup", "--stdin-name", "db/dump.sql"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin.take().unwrap().write_all(&dump).unwrap();
        assert!(c.wait().unwrap().success());
    }
    src
}

/// `cairn` on the repository at `repo`, copying from the environment's repository.
fn other(env: &Env, repo: &Path) -> std::process::Command {
    let mut c = env.cmd();
    c.env("CAIRN_REPOSITORY", repo)
        .env("CAIRN_FROM_REPOSITORY", &env.repo)
        .env("CAIRN_FROM_PASSWORD_FILE", &env.password_file);
    c
}

fn ok(mut c: std::process::Command, args: &[&str]) -> std::process::Output {
    let out = c.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn json(c: std::process::Command, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_slice(&ok(c, &a).stdout).unwrap()
}

/// Every snapshot of the source restores the same from `repo`.
fn restores_like_the_source(env: &Env, repo: &Path) {
    let source = env.json(&["snapshots"]);
    let copies = json(other(env, repo), &["snapshots"]);
    let (source, copies) = (source.as_array().unwrap(), copies.as_array().unwrap());
    assert_eq!(copies.len(), source.len());
    for (s, c) in source.iter().zip(copies) {
        assert_eq!(c["original"], s["id"], "{c}");
        let (a, b) = (env.path("a"), env.path("b"));
        let _ = (fs::remove_dir_all(&a), fs::remove_dir_all(&b));
        let id = |v: &serde_json::Value| v["id"].as_str().unwrap().to_string();
        env.ok(&["restore", &id(s), "--target", a.to_str().unwrap()]);
        ok(
            other(env, repo),
            &["restore", &id(c), "--target", b.to_str().unwrap()],
        );
        assert_same_tree(&a, &b);
    }
    ok(other(env, repo), &["check", "--read-data"]);
}

#[test]
fn copy_into_a_repository_made_like_the_source() {
    let env = Env::new();
    source(&env, 2);
    let dst = env.path("offsite");
    ok(
        other(&env, &dst),
        &["init", "--copy-params-from", env.repo.to_str().unwrap()],
    );
    let r = json(other(&env, &dst), &["copy"]);
    assert_eq!(r["copied"].as_array().unwrap().len(), 5, "{r}");
    assert_eq!(r["rechunked"], false);
    restores_like_the_source(&env, &dst);
    let again = json(other(&env, &dst), &["copy"]);
    assert!(again["copied"].as_array().unwrap().is_empty(), "{again}");
    assert_eq!(again["skipped"].as_array().unwrap().len(), 5);
    assert_eq!(again["blobs_read"], 0);
    // The other repository's password is checked before anything is created.
    let bad = env.path("bad-pw");
    fs::write(&bad, "wrong\n").unwrap();
    let out = other(&env, &env.path("never"))
        .env("CAIRN_FROM_PASSWORD_FILE", &bad)
        .args(["init", "--copy-params-from", env.repo.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "the wrong-password exit code");
    assert!(!env.path("never").exists());
}

#[test]
fn copy_into_any_repository_cuts_again_and_says_so() {
    let env = Env::new();
    source(&env, 1);
    let dst = env.path("plain");
    ok(other(&env, &dst), &["init"]);
    let out = ok(other(&env, &dst), &["copy"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cut again"), "{stderr}");
    restores_like_the_source(&env, &dst);
}

#[test]
fn a_killed_copy_finishes_when_run_again() {
    let env = Env::new();
    source(&env, 24);
    let dst = env.path("offsite");
    ok(
        other(&env, &dst),
        &["init", "--copy-params-from", env.repo.to_str().unwrap()],
    );
    // Kill the copy once it has stored its first pack.
    let mut child = other(&env, &dst).args(["copy", "--quiet"]).spawn().unwrap();
    let packs = |d: &Path| files_under(&d.join("data")).len();
    let started = std::time::Instant::now();
    while packs(&dst) == 0 && child.try_wait().unwrap().is_none() {
        assert!(started.elapsed().as_secs() < 60, "no pack after a minute");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let finished_first = child.try_wait().unwrap().is_some();
    let _ = child.kill();
    let _ = child.wait();
    let copied_before = json(other(&env, &dst), &["snapshots"])
        .as_array()
        .unwrap()
        .len();
    if !finished_first {
        assert!(copied_before < 5, "killed after the copy was done");
    }
    ok(other(&env, &dst), &["check"]);
    let r = json(other(&env, &dst), &["copy"]);
    assert_eq!(
        r["copied"].as_array().unwrap().len() + copied_before,
        5,
        "{r}"
    );
    restores_like_the_source(&env, &dst);
}

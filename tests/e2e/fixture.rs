//! A repository written by each format version is checked in under
//! `tests/fixtures/repo-vN`; every later cairn must read them all. The generator writes
//! one for the current version; run it only when adding the fixture of a new format
//! version, never to make these tests pass:
//! `cargo test --test e2e -- --ignored make_fixture_repository`.
//!
//! Version 2 adds delta blobs: its fixture holds a dump backed up on two nights, the
//! second stored as deltas against the first.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};

fn fixture_password(version: u32) -> String {
    format!("cairn fixture v{version}")
}

fn fixture_dir(version: u32) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/repo-v{version}"))
}

/// A table dump of night 1 or 2 of the version 2 fixture: 6,000 rows, of which night 2
/// changes one in fifty and appends 100.
fn fixture_dump(night: u32) -> Vec<u8> {
    let rows = if night == 1 { 6000 } else { 6100 };
    (0..rows)
        .flat_map(|i| {
            let v = if night == 2 && i % 50 == 7 { 2 } else { 1 };
            format!(
                "{i}\tcustomer {}\t{}.{:02}\tversion {v}\n",
                i * 7919 % 10007,
                i % 500,
                i % 100
            )
            .into_bytes()
        })
        .collect()
}

/// The tree the fixture holds, relative to the backed-up directory `fixture-src`.
fn fixture_files(version: u32) -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        ("hello.txt", b"hello from format version 1\n".to_vec()),
        ("empty", Vec::new()),
        ("dir/random.bin", pseudo_random(42, 300_000)),
        (
            "dir/text.txt",
            (0..5000)
                .flat_map(|i| format!("row {i}\n").into_bytes())
                .collect(),
        ),
    ];
    if version >= 3 {
        // Small files that share a chunk with dir/text.txt (parts).
        for (name, n) in [("dir/notes-a.txt", 300), ("dir/notes-b.txt", 40)] {
            files.push((
                name,
                (0..n)
                    .flat_map(|i| format!("note {i} of {name}\n").into_bytes())
                    .collect(),
            ));
        }
    }
    files
}

#[test]
#[ignore = "writes the checked-in fixture; run by hand for a new format version"]
fn make_fixture_repository() {
    let dir = fixture_dir(cairn_core::REPO_VERSION);
    assert!(
        !dir.exists(),
        "{} exists; a fixture is never rewritten",
        dir.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fixture-src");
    for (p, data) in fixture_files(cairn_core::REPO_VERSION) {
        let f = src.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, data).unwrap();
    }
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    let pw = tmp.path().join("pw");
    fs::write(&pw, fixture_password(cairn_core::REPO_VERSION)).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .current_dir(tmp.path())
            .env("CAIRN_REPOSITORY", &dir)
            .env("CAIRN_PASSWORD_FILE", &pw)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let tag = format!("v{}", cairn_core::REPO_VERSION);
    run(&["init"]);
    run(&["backup", "fixture-src", "--host", "fixture", "--tag", &tag]);
    for night in 1..=2 {
        let mut stream = std::process::Command::new(env!("CARGO_BIN_EXE_cairn"))
            .current_dir(tmp.path())
            .env("CAIRN_REPOSITORY", &dir)
            .env("CAIRN_PASSWORD_FILE", &pw)
            .args(["backup", "--stdin-name", "db/dump.sql", "--host", "fixture"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        stream
            .stdin
            .take()
            .unwrap()
            .write_all(&fixture_dump(night))
            .unwrap();
        assert!(stream.wait().unwrap().success());
    }
}

/// A copy of the fixture of `version` (git does not keep file modes, and nothing may
/// write into tests/), checked with --read-data; returns it and its snapshots.
fn open_fixture(version: u32) -> (Env, Vec<serde_json::Value>) {
    let env = Env::new();
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(fixture_dir(version))
        .arg(&env.repo)
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(&env.password_file, fixture_password(version)).unwrap();
    env.ok(&["check", "--read-data"]);
    let snaps = env.json(&["snapshots"]).as_array().unwrap().clone();
    assert_eq!(snaps[0]["hostname"], "fixture");
    assert_eq!(snaps[0]["tags"][0], format!("v{version}"));
    (env, snaps)
}

/// Restores the fixture's first snapshot (the file tree) and compares every file.
fn restores_the_fixture_files(env: &Env, first: &serde_json::Value, version: u32) {
    let target = env.path("out");
    env.ok(&[
        "restore",
        first["id"].as_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ]);
    let out = restored(&target, Path::new(first["paths"][0].as_str().unwrap()));
    for (p, data) in fixture_files(version) {
        assert_eq!(fs::read(out.join(p)).unwrap(), data, "{p}");
    }
    assert_eq!(
        fs::read_link(out.join("link")).unwrap(),
        Path::new("hello.txt")
    );
}

#[test]
fn format_v1_fixture_still_reads_and_verifies() {
    let (env, snaps) = open_fixture(1);
    assert_eq!(snaps.len(), 2);
    restores_the_fixture_files(&env, &snaps[0], 1);
    let second = snaps[1]["id"].as_str().unwrap();
    let dump = env
        .cmd()
        .args(["dump", second, "/db/dump.sql"])
        .output()
        .unwrap();
    assert_eq!(
        dump.stdout,
        b"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n"
    );
}

/// Dumps the stream of nights 1 and 2 (snapshots 1 and 2) and compares each.
fn dumps_both_nights(env: &Env, snaps: &[serde_json::Value]) {
    for night in 1..=2u32 {
        let id = snaps[night as usize]["id"].as_str().unwrap();
        let dump = env
            .cmd()
            .args(["dump", id, "/db/dump.sql"])
            .output()
            .unwrap();
        assert!(dump.stdout == fixture_dump(night), "night {night} differs");
    }
}

#[test]
fn format_v2_fixture_reads_its_delta_blobs() {
    let (env, snaps) = open_fixture(2);
    assert_eq!(snaps.len(), 3);
    restores_the_fixture_files(&env, &snaps[0], 2);
    dumps_both_nights(&env, &snaps);
    // The second night is stored as deltas: the index names their bases.
    use cairn_core::Backend as _;
    let backend = std::sync::Arc::new(cairn_backend::LocalBackend::new(&env.repo));
    let repo = cairn_core::Repository::open(
        backend.clone(),
        &cairn_core::Password::new(fixture_password(2).into_bytes()),
    )
    .unwrap();
    assert_eq!(repo.config().version, 2);
    let deltas: usize = backend
        .list(cairn_core::FileKind::Index)
        .unwrap()
        .iter()
        .flat_map(|(name, _)| repo.read_index_file(name).unwrap())
        .flat_map(|(_, entries)| entries)
        .filter(|e| e.base.is_some())
        .count();
    assert!(deltas > 0, "no delta blob in the version 2 fixture");
}

/// The format version bytes (byte 4) of the files of one kind in a repository directory.
fn version_bytes(repo: &Path, sub: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut dirs = vec![repo.join(sub)];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(fs::read(&p).unwrap()[4]);
            }
        }
    }
    out.sort();
    out
}

/// Unpadded packs and index files (format versions 1 and 2) beside the padded ones this
/// cairn writes: check, repair index, prune (repacking old packs) and restore all work
/// on the mix.
#[test]
fn unpadded_fixture_files_work_beside_padded_ones() {
    let (env, snaps) = open_fixture(1);
    assert!(version_bytes(&env.repo, "data").iter().all(|&v| v == 1));
    assert!(version_bytes(&env.repo, "index").iter().all(|&v| v == 1));
    let src = env.path("new");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("small.txt"), b"one small new file\n").unwrap();
    env.ok(&["backup", src.to_str().unwrap()]);
    for sub in ["data", "index"] {
        let v = version_bytes(&env.repo, sub);
        assert!(v.contains(&1) && v.contains(&3), "{sub}: {v:?}");
    }
    env.ok(&["check", "--read-data"]);
    env.ok(&["repair", "index"]);
    env.ok(&["check", "--read-data"]);
    // Dropping the dump's snapshot leaves old packs partly used: prune repacks them.
    env.ok(&["forget", snaps[1]["id"].as_str().unwrap()]);
    let pruned = env.json(&["prune", "--max-unused", "0%"]);
    assert!(
        pruned["packs_repacked"].as_u64().unwrap() + pruned["packs_deleted"].as_u64().unwrap() > 0,
        "{pruned}"
    );
    env.ok(&["check", "--read-data"]);
    restores_the_fixture_files(&env, &snaps[0], 1);
}

#[test]
fn format_v3_fixture_reads_its_parts() {
    let (env, snaps) = open_fixture(3);
    assert_eq!(snaps.len(), 3);
    restores_the_fixture_files(&env, &snaps[0], 3);
    dumps_both_nights(&env, &snaps);
    // The small files of dir/ are parts of one chunk.
    let backend = std::sync::Arc::new(cairn_backend::LocalBackend::new(&env.repo));
    let repo = cairn_core::Repository::open(
        backend,
        &cairn_core::Password::new(fixture_password(3).into_bytes()),
    )
    .unwrap();
    assert_eq!(repo.config().version, 3);
    repo.load_index().unwrap();
    let snap = repo
        .load_snapshot(snaps[0]["id"].as_str().unwrap())
        .unwrap();
    let first = snaps[0]["paths"][0].as_str().unwrap();
    let node = cairn_core::browse::resolve(
        &repo,
        &cairn_core::Id::from_hex(snaps[0]["id"].as_str().unwrap()).unwrap(),
        &snap,
        &format!("{first}/dir/notes-b.txt"),
    )
    .unwrap();
    let cairn_core::NodeKind::File { content } = &node.kind else {
        panic!("{node:?}")
    };
    assert!(
        matches!(content[..], [cairn_core::Extent::Part { .. }]),
        "{content:?}"
    );
}

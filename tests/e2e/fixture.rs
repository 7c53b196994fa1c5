//! A repository written by format version 1 is checked in under
//! `tests/fixtures/repo-v1`; every later cairn must read it. Regenerate it only when
//! adding a new fixture for a new format version, never to make this test pass:
//! `cargo test --test e2e -- --ignored make_fixture_repository`.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};

const FIXTURE_PASSWORD: &str = "cairn fixture v1";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/repo-v1")
}

/// The tree the fixture holds, relative to the backed-up directory `fixture-src`.
fn fixture_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("hello.txt", b"hello from format version 1\n".to_vec()),
        ("empty", Vec::new()),
        ("dir/random.bin", pseudo_random(42, 300_000)),
        (
            "dir/text.txt",
            (0..5000)
                .flat_map(|i| format!("row {i}\n").into_bytes())
                .collect(),
        ),
    ]
}

#[test]
#[ignore = "writes the checked-in fixture; run by hand for a new format version"]
fn make_fixture_repository() {
    let dir = fixture_dir();
    assert!(
        !dir.exists(),
        "{} exists; a fixture is never rewritten",
        dir.display()
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("fixture-src");
    for (p, data) in fixture_files() {
        let f = src.join(p);
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(f, data).unwrap();
    }
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    let pw = tmp.path().join("pw");
    fs::write(&pw, FIXTURE_PASSWORD).unwrap();
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
    run(&["init"]);
    run(&["backup", "fixture-src", "--host", "fixture", "--tag", "v1"]);
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
        .write_all(b"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n")
        .unwrap();
    assert!(stream.wait().unwrap().success());
}

#[test]
fn format_v1_fixture_still_reads_and_verifies() {
    let env = Env::new();
    // Work on a copy: git does not keep file modes, and nothing may write into tests/.
    let st = std::process::Command::new("cp")
        .arg("-r")
        .arg(fixture_dir())
        .arg(&env.repo)
        .status()
        .unwrap();
    assert!(st.success());
    fs::write(&env.password_file, FIXTURE_PASSWORD).unwrap();
    env.ok(&["check", "--read-data"]);
    let snaps = env.json(&["snapshots"]);
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["hostname"], "fixture");
    assert_eq!(snaps[0]["tags"][0], "v1");
    let target = env.path("out");
    let first = snaps[0]["id"].as_str().unwrap();
    env.ok(&["restore", first, "--target", target.to_str().unwrap()]);
    let root = Path::new(snaps[0]["paths"][0].as_str().unwrap());
    let out = restored(&target, root);
    for (p, data) in fixture_files() {
        assert_eq!(fs::read(out.join(p)).unwrap(), data, "{p}");
    }
    assert_eq!(
        fs::read_link(out.join("link")).unwrap(),
        Path::new("hello.txt")
    );
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

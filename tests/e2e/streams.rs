//! Streams from stdin and from commands, alone and together with paths.

use crate::common::*;
use std::io::Write;
use std::process::Stdio;

#[test]
fn stdin_command_and_paths_land_in_one_snapshot() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file.txt"), b"file contents").unwrap();
    let data = pseudo_random(7, 3 << 20);
    let out = with_stdin(
        env.cmd().args([
            "backup",
            src.to_str().unwrap(),
            "--stdin-name",
            "db/stdin.sql",
            "--stdin-from-command",
            "db/cmd.out",
            "--json",
            "--",
            "sh",
            "-c",
            "seq 1 100000",
        ]),
        &data,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let snap = v["snapshot"].as_str().unwrap();
    let dump = |p: &str| env.cmd().args(["dump", snap, p]).output().unwrap().stdout;
    assert_eq!(dump("/db/stdin.sql"), data);
    let seq: String = (1..=100000).map(|i| format!("{i}\n")).collect();
    assert_eq!(dump("/db/cmd.out"), seq.as_bytes());
    assert_eq!(
        dump(&format!("{}/file.txt", src.display())),
        b"file contents"
    );
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 1);
}

#[test]
fn failing_command_commits_no_snapshot() {
    let env = Env::new();
    env.init();
    let out = env.run(&[
        "backup",
        "--stdin-from-command",
        "dump.sql",
        "--",
        "sh",
        "-c",
        "echo partial output; echo 'pg_dump: error: connection refused' >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dump.sql") && err.contains("connection refused"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 0);
    env.ok(&["check"]);
    // A command that does not exist fails the same way.
    let out = env.run(&[
        "backup",
        "--stdin-from-command",
        "x",
        "--",
        "/nonexistent/cmd",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 0);
}

#[test]
fn repeated_stream_deduplicates() {
    let env = Env::new();
    env.init();
    let data = pseudo_random(9, 8 << 20);
    let run = |d: &[u8]| {
        let mut child = env
            .cmd()
            .args(["backup", "--stdin-name", "s.bin", "--json"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(d).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let a = run(&data);
    assert!(a["summary"]["added"]["bytes_raw"].as_u64().unwrap() >= 8 << 20);
    // Insert bytes in the middle: content-defined chunking keeps most chunks.
    let mut changed = data[..4 << 20].to_vec();
    changed.extend_from_slice(b"inserted");
    changed.extend_from_slice(&data[4 << 20..]);
    let b = run(&changed);
    let added = b["summary"]["added"]["bytes_raw"].as_u64().unwrap();
    assert!(
        added < 2 << 20,
        "added {added} bytes for an 8-byte insertion"
    );
}

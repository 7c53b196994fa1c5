//! Exports through the binary: `dump --archive tar|zip` read back by the system's tools.

use crate::common::*;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A name and a content that must never show in clear in an export.
const SECRET_NAME: &str = "quarterly-salaries-zebra.ods";
const SECRET_TEXT: &str = "the treasure is buried under the old oak tree";

/// A tree with nested directories, a path longer than 100 bytes, a symlink, an empty
/// file, a file of a few MiB, modes 0600 and 0755, and times in the past.
fn make_tree(root: &Path) {
    let long_dir = root.join("nested/".to_string() + &"d".repeat(60) + "/" + &"e".repeat(50));
    fs::create_dir_all(&long_dir).unwrap();
    fs::create_dir_all(root.join("sub/inner")).unwrap();
    fs::write(
        long_dir.join("f".repeat(40)),
        b"at the end of a long path\n",
    )
    .unwrap();
    fs::write(root.join("sub/inner/note.txt"), b"inside the subtree\n").unwrap();
    fs::write(root.join("sub").join(SECRET_NAME), SECRET_TEXT.repeat(50)).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("big.bin"), pseudo_random(7, 3 << 20)).unwrap();
    fs::write(root.join("private"), b"mode 0600\n").unwrap();
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("script.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("sub/inner/note.txt", root.join("link")).unwrap();
    // Times in the past, one with nanoseconds; directories last (writing into one
    // changes its time).
    let touch = |p: PathBuf, when: &str| {
        let st = Command::new("touch")
            .args(["-h", "-d", when])
            .arg(&p)
            .status()
            .unwrap();
        assert!(st.success());
    };
    touch(root.join("big.bin"), "2001-02-03 04:05:06.123456789");
    touch(root.join("private"), "1999-12-31 23:59:58");
    touch(root.join("sub/inner"), "2010-06-01 12:00:00");
}

/// Runs cairn with `args`; returns its whole standard output, asserting success.
fn stdout_of(env: &Env, args: &[&str]) -> Vec<u8> {
    let out = env.run(args);
    assert!(
        out.status.success(),
        "cairn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Extracts a tar archive with the system tar into `dir`.
fn untar(archive: &[u8], dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let out = with_stdin(
        Command::new("tar")
            .arg("-x")
            .arg("-C")
            .arg(dir)
            .arg("-f")
            .arg("-"),
        archive,
    );
    assert!(
        out.status.success(),
        "tar -x: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dump_archive_tar_and_zip_read_back_with_system_tools() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let snap = env.backup(&[&src]);

    // The whole snapshot: entries are named from the root, as the paths were.
    let tar = stdout_of(&env, &["dump", "--archive", "tar", &snap]);
    let x = env.path("x");
    untar(&tar, &x);
    assert_same_tree(&src, &restored(&x, &src));

    // A subtree, given as SNAPSHOT:path, holds that directory's entries only.
    let spec = format!("{snap}:{}/sub", src.display());
    let sub = stdout_of(&env, &["dump", "--archive", "tar", &spec]);
    let y = env.path("y");
    untar(&sub, &y);
    assert_same_tree(&src.join("sub"), &y);

    // Zip, read back with unzip, else Python's zipfile.
    let zip = stdout_of(&env, &["dump", "--archive", "zip", &spec]);
    let z = env.path("z");
    fs::create_dir_all(&z).unwrap();
    let archive = env.path("sub.zip");
    fs::write(&archive, &zip).unwrap();
    let unzipped = match Command::new("unzip")
        .arg("-q")
        .arg(&archive)
        .arg("-d")
        .arg(&z)
        .output()
    {
        Ok(out) => out,
        Err(_) => Command::new("python3")
            .args(["-m", "zipfile", "-e"])
            .arg(&archive)
            .arg(&z)
            .output()
            .unwrap(),
    };
    assert!(
        unzipped.status.success(),
        "{}",
        String::from_utf8_lossy(&unzipped.stderr)
    );
    for rel in [SECRET_NAME, "inner/note.txt"] {
        assert_eq!(
            fs::read(z.join(rel)).unwrap(),
            fs::read(src.join("sub").join(rel)).unwrap(),
            "{rel}"
        );
    }
    let whole = stdout_of(&env, &["dump", "--archive", "zip", &snap]);
    fs::write(&archive, &whole).unwrap();
    let listing = Command::new("python3")
        .args(["-m", "zipfile", "-l"])
        .arg(&archive)
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains("big.bin"), "{listing}");

    // dump without --archive still writes one file.
    let one = stdout_of(
        &env,
        &["dump", &snap, src.join("private").to_str().unwrap()],
    );
    assert_eq!(one, b"mode 0600\n");
}

#[test]
fn dump_archive_into_a_closed_pipe_ends_quietly() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.backup(&[&src]);
    for format in ["tar", "zip"] {
        let mut child = env
            .cmd()
            .args(["dump", "--archive", format, "latest"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = [0u8; 100];
        child.stdout.take().unwrap().read_exact(&mut first).unwrap();
        // The pipe is closed here, as `| head -c 100` closes it.
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert!(stderr.is_empty(), "{format}: {stderr}");
    }
}

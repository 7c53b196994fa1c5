//! Exports through the binary: `dump --archive tar|zip` read back by the system's tools,
//! and `export` / `import` / `restore --from-export` on a fresh machine, with a wrong
//! password, a damaged or truncated export, and importing twice.

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

/// A machine that knows nothing of cairn: its own HOME and XDG directories, no
/// repository, no config file, no password in the environment.
fn fresh_machine(dir: &Path) -> Command {
    for d in ["config", "cache", "data"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("XDG_DATA_HOME", dir.join("data"))
        .stdin(Stdio::null());
    c
}

/// A repository with the tree backed up, and an export of that snapshot; returns the
/// tree, the export file and the export password's file.
fn exported(env: &Env) -> (PathBuf, PathBuf, PathBuf) {
    env.init();
    let src = env.path("src");
    make_tree(&src);
    env.backup(&[&src]);
    let pw = env.path("export-password");
    fs::write(&pw, "an export password\n").unwrap();
    let file = env.path("out/web1.cairn");
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    env.ok(&[
        "export",
        "latest",
        "--output",
        file.to_str().unwrap(),
        "--export-password-file",
        pw.to_str().unwrap(),
    ]);
    // Nothing but the export is left next to it.
    let left: Vec<_> = fs::read_dir(file.parent().unwrap()).unwrap().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    (src, file, pw)
}

#[test]
fn export_restores_on_a_fresh_machine_with_its_password_alone() {
    let env = Env::new();
    let (src, file, pw) = exported(&env);
    let bytes = fs::read(&file).unwrap();
    for clear in [SECRET_NAME, SECRET_TEXT, "inside the subtree"] {
        assert!(
            !bytes.windows(clear.len()).any(|w| w == clear.as_bytes()),
            "{clear:?} shows in clear in the export"
        );
    }
    // A second export to the same name is refused; the first stays as it was.
    let again = env.run(&[
        "export",
        "latest",
        "-o",
        file.to_str().unwrap(),
        "--export-password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(fs::read(&file).unwrap(), bytes);

    let machine = env.path("fresh");
    let target = env.path("fresh-restore");
    let restore = |file: &Path, pw: &Path, target: &Path| {
        fresh_machine(&machine)
            .args(["restore", "--from-export"])
            .arg(file)
            .arg("--export-password-file")
            .arg(pw)
            .arg("--target")
            .arg(target)
            .output()
            .unwrap()
    };
    let out = restore(&file, &pw, &target);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&src, &restored(&target, &src));

    // The wrong password: exit code 12, nothing written.
    let wrong = env.path("wrong-password");
    fs::write(&wrong, "not the export password\n").unwrap();
    let nowhere = env.path("never");
    let out = restore(&file, &wrong, &nowhere);
    assert_eq!(out.status.code(), Some(12), "{out:?}");
    assert!(!nowhere.exists());

    // A flipped byte inside a pack: the restore fails and says so.
    let size_at = |h: usize| {
        let field = String::from_utf8_lossy(&bytes[h + 124..h + 135]).into_owned();
        u64::from_str_radix(&field, 8).unwrap()
    };
    let pack = (0..bytes.len())
        .step_by(512)
        .filter(|h| bytes[*h..].starts_with(b"data/"))
        .max_by_key(|h| size_at(*h))
        .expect("a pack entry");
    assert!(size_at(pack) > 1 << 20);
    let mut flipped = bytes.clone();
    flipped[pack + 512 + 600] ^= 0x01;
    let damaged = env.path("damaged.cairn");
    fs::write(&damaged, &flipped).unwrap();
    let out = restore(&damaged, &pw, &env.path("damaged-restore"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("cairn:"), "{stderr}");

    // A truncated export is refused before any password is asked for.
    let cut = env.path("cut.cairn");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let out = restore(&cut, &pw, &env.path("cut-restore"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    assert!(!env.path("cut-restore").exists());
}

#[test]
fn import_into_another_repository_once() {
    let env = Env::new();
    let (src, file, pw) = exported(&env);
    let source = env.json(&["snapshots"]);
    let source = &source.as_array().unwrap()[0];

    // What the export holds, without any repository.
    let machine = env.path("fresh");
    let list = |json: bool| {
        let mut c = fresh_machine(&machine);
        c.arg("import")
            .arg(&file)
            .arg("--list")
            .arg("--export-password-file")
            .arg(&pw);
        if json {
            c.arg("--json");
        }
        succeed(&mut c)
    };
    let summary = list(false);
    assert!(
        summary.contains(source["hostname"].as_str().unwrap()),
        "{summary}"
    );
    assert!(summary.contains(src.to_str().unwrap()), "{summary}");
    let v: serde_json::Value = serde_json::from_str(&list(true)).unwrap();
    let listed = &v["snapshots"][0];
    assert_eq!(listed["original"], source["id"]);
    assert_eq!(listed["paths"], source["paths"]);
    let files: Vec<u64> = files_under(&src)
        .iter()
        .map(|p| fs::symlink_metadata(p).unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .collect();
    assert_eq!(listed["files"], files.len(), "{listed}");
    assert_eq!(listed["size"], files.iter().sum::<u64>(), "{listed}");

    // Into a second repository: the same snapshot, checked, restored, and only once.
    let other = env.path("other");
    let with_other = || {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", &other)
            .env("CAIRN_EXPORT_PASSWORD_FILE", &pw);
        c
    };
    succeed(with_other().arg("init"));
    for _ in 0..2 {
        succeed(with_other().arg("import").arg(&file));
        let snaps: serde_json::Value =
            serde_json::from_str(&succeed(with_other().args(["snapshots", "--json"]))).unwrap();
        let snaps = snaps.as_array().unwrap();
        assert_eq!(snaps.len(), 1, "{snaps:?}");
        for key in ["time", "paths", "hostname", "tags"] {
            assert_eq!(snaps[0][key], source[key], "{key}");
        }
        assert_eq!(snaps[0]["original"], source["id"]);
    }
    succeed(with_other().args(["check", "--read-data"]));
    let target = env.path("imported");
    succeed(
        with_other()
            .args(["restore", "latest", "--target"])
            .arg(&target),
    );
    assert_same_tree(&src, &restored(&target, &src));

    // Back into the repository it came from: already there.
    let back = env.json(&[
        "import",
        file.to_str().unwrap(),
        "--export-password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(back["copied"].as_array().unwrap().len(), 0, "{back}");
    assert_eq!(back["skipped"].as_array().unwrap().len(), 1, "{back}");
}

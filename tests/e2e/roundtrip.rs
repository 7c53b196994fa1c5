//! Backup and restore of every kind of file, incremental backups, partial restores and
//! resumed restores.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

/// Builds a tree with every kind of entry the backup must keep.
pub fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("docs/empty-dir")).unwrap();
    fs::create_dir_all(root.join("deep/a/b/c/d")).unwrap();
    fs::write(root.join("docs/hello.txt"), b"hello world\n").unwrap();
    fs::write(root.join("docs/empty"), b"").unwrap();
    fs::write(root.join("deep/a/b/c/d/leaf"), b"leaf").unwrap();
    // Large enough for several chunks (chunks average 1 MiB).
    fs::write(root.join("big.bin"), pseudo_random(1, 5 << 20)).unwrap();
    let text: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    fs::write(root.join("text.log"), &text).unwrap();
    // Non-UTF-8 name.
    fs::write(root.join(os(b"caf\xe9-\xff.txt")), b"latin1 name").unwrap();
    // Symlinks: relative, absolute, dangling.
    symlink("docs/hello.txt", root.join("link-rel")).unwrap();
    symlink("/nonexistent/target", root.join("link-dangling")).unwrap();
    // Hard links.
    fs::write(root.join("hard1"), b"same inode").unwrap();
    fs::hard_link(root.join("hard1"), root.join("docs/hard2")).unwrap();
    // FIFO.
    rustix_mkfifo(&root.join("fifo"));
    // Sparse file: 64 MiB with data at the start, middle and end.
    let f = fs::File::create(root.join("sparse.img")).unwrap();
    f.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"start", 0).unwrap();
    f.write_all_at(&pseudo_random(2, 100_000), 32 << 20)
        .unwrap();
    f.write_all_at(b"end", (64 << 20) - 3).unwrap();
    drop(f);
    // Modes and an xattr.
    fs::set_permissions(
        root.join("docs/hello.txt"),
        fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    fs::set_permissions(root.join("deep/a"), fs::Permissions::from_mode(0o750)).unwrap();
    let _ = xattr::set(root.join("docs/hello.txt"), "user.cairn.test", b"value");
}

fn rustix_mkfifo(p: &Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn every_file_kind_round_trips_byte_exact_with_metadata() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let snap = env.backup(&[&src]);
    let target = env.path("restore");
    env.ok(&["restore", &snap, "--target", target.to_str().unwrap()]);
    let out = restored(&target, &src);
    assert_same_tree(&src, &out);
    // Holes stay holes: the restored sparse file uses about as many blocks as the original.
    let a = fs::metadata(src.join("sparse.img")).unwrap();
    let b = fs::metadata(out.join("sparse.img")).unwrap();
    assert_eq!(b.len(), 64 << 20);
    assert!(
        b.blocks() * 512 < 4 << 20,
        "restored sparse file allocates {} blocks",
        b.blocks()
    );
    assert!(b.blocks() <= a.blocks() + 64);
    // Hard links restored as hard links.
    let h1 = fs::metadata(out.join("hard1")).unwrap();
    let h2 = fs::metadata(out.join("docs/hard2")).unwrap();
    assert_eq!(h1.ino(), h2.ino());
    // A second restore into the same place writes nothing.
    let v = env.json(&["restore", &snap, "--target", target.to_str().unwrap()]);
    assert_eq!(v["summary"]["bytes_written"], 0, "{v}");
    assert_same_tree(&src, &out);
}

#[test]
fn second_backup_reads_nothing_and_third_sees_one_change() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let first = env.json(&["backup", src.to_str().unwrap()]);
    let files = first["summary"]["files_new"].as_u64().unwrap();
    assert!(files >= 9, "{first}");
    let second = env.json(&["backup", src.to_str().unwrap()]);
    let s = &second["summary"];
    assert_eq!(s["files_unchanged"].as_u64().unwrap(), files, "{second}");
    assert_eq!(s["bytes_read"], 0);
    assert_eq!(s["added"]["data_blobs"], 0);
    // Only the snapshot and the trees of the ancestors of `src` (whose mtimes change as
    // other tests use the temporary directory) may be new: src's own trees are identical.
    let ancestors = src.components().count() as u64 - 1;
    assert!(
        s["added"]["tree_blobs"].as_u64().unwrap() <= ancestors,
        "{second}"
    );
    fs::write(src.join("docs/hello.txt"), b"hello again\n").unwrap();
    let third = env.json(&["backup", src.to_str().unwrap()]);
    let s = &third["summary"];
    assert_eq!(s["files_changed"], 1, "{third}");
    assert_eq!(s["files_unchanged"].as_u64().unwrap(), files - 1);
    assert_eq!(s["bytes_read"], 12);
    // --force reads everything again (and finds the same contents) but stores nothing new.
    let forced = env.json(&["backup", "--force", src.to_str().unwrap()]);
    assert_eq!(
        forced["summary"]["files_unchanged"].as_u64().unwrap(),
        files
    );
    assert!(
        forced["summary"]["bytes_read"].as_u64().unwrap() > 5 << 20,
        "{forced}"
    );
    assert_eq!(forced["summary"]["added"]["data_blobs"], 0, "{forced}");
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 4);
    assert_eq!(snaps[3]["parent"], snaps[2]["id"]);
}

#[test]
fn excludes_exclude_file_and_cache_dirs() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(src.join("keep")).unwrap();
    fs::create_dir_all(src.join("cache")).unwrap();
    fs::create_dir_all(src.join("node_modules/x")).unwrap();
    fs::write(src.join("keep/a.txt"), b"a").unwrap();
    fs::write(src.join("keep/b.tmp"), b"b").unwrap();
    fs::write(src.join("keep/c.bak"), b"c").unwrap();
    fs::write(src.join("node_modules/x/y"), b"y").unwrap();
    fs::write(
        src.join("cache/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    fs::write(src.join("cache/blob"), b"cached").unwrap();
    let exfile = env.path("excludes");
    fs::write(&exfile, "# comment\n*.bak\n").unwrap();
    let v = env.json(&[
        "backup",
        src.to_str().unwrap(),
        "--exclude",
        "*.tmp",
        "--exclude",
        "node_modules",
        "--exclude-file",
        exfile.to_str().unwrap(),
        "--exclude-caches",
    ]);
    let id = v["snapshot"].as_str().unwrap();
    let ls = env.ok(&["ls", id]);
    assert!(ls.contains("keep/a.txt"), "{ls}");
    for gone in ["b.tmp", "c.bak", "node_modules", "cache/blob"] {
        assert!(!ls.contains(gone), "{gone} should be excluded:\n{ls}");
    }
}

#[test]
fn partial_restore_by_subpath_include_and_exclude() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let snap = env.backup(&[&src]);
    let sub = format!("{snap}:{}/docs", src.display());
    let t1 = env.path("t1");
    env.ok(&["restore", &sub, "--target", t1.to_str().unwrap()]);
    assert_eq!(fs::read(t1.join("hello.txt")).unwrap(), b"hello world\n");
    assert!(!t1.join("big.bin").exists());
    let t2 = env.path("t2");
    env.ok(&[
        "restore",
        &snap,
        "--target",
        t2.to_str().unwrap(),
        "--include",
        "*.txt",
        "--exclude",
        "docs",
    ]);
    let out = restored(&t2, &src);
    assert!(out.join(os(b"caf\xe9-\xff.txt")).exists());
    assert!(!out.join("docs").exists());
    assert!(!out.join("big.bin").exists());
}

#[test]
fn interrupted_restore_resumes_writing_only_what_differs() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let snap = env.backup(&[&src]);
    let target = env.path("restore");
    env.ok(&["restore", &snap, "--target", target.to_str().unwrap()]);
    let out = restored(&target, &src);
    // Damage the restore as an interruption would: a truncated file, a missing file,
    // and a file with one changed byte.
    let big = out.join("big.bin");
    let f = fs::OpenOptions::new().write(true).open(&big).unwrap();
    f.set_len(1 << 20).unwrap();
    drop(f);
    fs::remove_file(out.join("docs/hello.txt")).unwrap();
    let mut t = fs::read(out.join("text.log")).unwrap();
    t[1000] ^= 1;
    fs::write(out.join("text.log"), &t).unwrap();
    let v = env.json(&["restore", &snap, "--target", target.to_str().unwrap()]);
    let written = v["summary"]["bytes_written"].as_u64().unwrap();
    let skipped = v["summary"]["bytes_skipped"].as_u64().unwrap();
    // At most the three damaged files are written again; every other file is verified
    // in place chunk by chunk and not written.
    let damaged: u64 = ["big.bin", "docs/hello.txt", "text.log"]
        .iter()
        .map(|f| fs::metadata(src.join(f)).unwrap().len())
        .sum();
    assert!(
        written <= damaged,
        "rewrote {written} bytes, damaged {damaged}: {v}"
    );
    assert!(skipped > 0, "verified nothing in place: {v}");
    assert_eq!(v["summary"]["files_restored"], 3, "{v}");
    assert_eq!(v["summary"]["files_unchanged"], 5, "{v}");
    assert_same_tree(&src, &out);
}

#[test]
fn ls_dump_and_snapshots_json() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let snap = env.backup(&[&src]);
    let dump = env
        .cmd()
        .args(["dump", &snap[..10], &format!("{}/big.bin", src.display())])
        .output()
        .unwrap();
    assert!(dump.status.success());
    assert_eq!(dump.stdout, fs::read(src.join("big.bin")).unwrap());
    let sparse = env
        .cmd()
        .args(["dump", "latest", &format!("{}/sparse.img", src.display())])
        .output()
        .unwrap();
    assert_eq!(sparse.stdout, fs::read(src.join("sparse.img")).unwrap());
    let ls = env.ok(&["ls", "latest", "--json"]);
    let lines: Vec<serde_json::Value> = ls
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let link = lines
        .iter()
        .find(|v| v["path"].as_str().unwrap().ends_with("/link-rel"))
        .unwrap();
    assert_eq!(link["type"], "symlink");
    assert_eq!(link["target"], "docs/hello.txt");
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps[0]["id"], snap);
    assert_eq!(snaps[0]["paths"][0], src.to_str().unwrap());
    // Unknown snapshot: one clear line.
    let bad = env.run(&["ls", "ffffffff"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no snapshot matches"));
}

#[test]
fn unreadable_files_are_reported_skipped_and_exit_3() {
    // Root reads everything, so the backup runs as an unprivileged user when we are root.
    let env = Env::new();
    let src = env.path("src");
    fs::create_dir_all(src.join("d")).unwrap();
    fs::write(src.join("ok.txt"), b"fine").unwrap();
    fs::write(src.join("secret.txt"), b"no").unwrap();
    fs::set_permissions(src.join("secret.txt"), fs::Permissions::from_mode(0o000)).unwrap();
    let as_root = rustix_is_root();
    let mut c = env.cmd();
    if as_root {
        // Let the unprivileged user reach the temporary directory and password.
        for p in [env.dir.path(), src.as_path(), src.join("d").as_path()] {
            fs::set_permissions(p, fs::Permissions::from_mode(0o777)).unwrap();
        }
        fs::set_permissions(&env.password_file, fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(src.join("ok.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        c = as_nobody(&env);
    }
    let init = c.arg("init").output().unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut c2 = if as_root { as_nobody(&env) } else { env.cmd() };
    let out = c2
        .args(["backup", src.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("secret.txt"), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["unreadable"], 1);
    assert_eq!(v["summary"]["files_new"], 1);
}

/// cairn run as the unprivileged user 65534 (by root), on the test's repository.
fn as_nobody(env: &Env) -> std::process::Command {
    let mut c = std::process::Command::new("setpriv");
    c.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        env!("CARGO_BIN_EXE_cairn"),
    ]);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("CAIRN_REPOSITORY", &env.repo)
        .env("CAIRN_PASSWORD_FILE", &env.password_file);
    c
}

fn rustix_is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn one_file_system_keeps_the_mount_point_but_not_its_contents() {
    // Needs a second file system below the backed-up path: a tmpfs mounted by the test
    // (root only; skipped with a message otherwise).
    let env = Env::new();
    env.init();
    let src = env.path("src");
    let mnt = src.join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    fs::write(src.join("here.txt"), b"same fs").unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "cairn-test"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    fs::write(mnt.join("other-fs.txt"), b"other fs").unwrap();
    let with = env.json(&["backup", src.to_str().unwrap()]);
    let without = env.json(&["backup", "-x", src.to_str().unwrap()]);
    let umount = std::process::Command::new("umount")
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(umount.success());
    let ls = |v: &serde_json::Value| env.ok(&["ls", v["snapshot"].as_str().unwrap()]);
    assert!(ls(&with).contains("mnt/other-fs.txt"));
    let x = ls(&without);
    assert!(x.contains("/mnt\n") && x.contains("here.txt"), "{x}");
    assert!(!x.contains("other-fs.txt"), "{x}");
}

#[test]
fn a_file_changing_while_read_is_reported() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let path = src.join("growing.log");
    fs::write(&path, pseudo_random(5, 64 << 20)).unwrap();
    // A writer appends without pause for as long as the backup runs, so the file
    // changes between the start and the end of its read whatever the timing.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let path = path.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                f.write_all(b"x").unwrap();
            }
        })
    };
    let out = env.run(&["backup", src.to_str().unwrap(), "--json"]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["changed_while_read"], 1, "{v}");
    assert_eq!(v["warnings"][0]["kind"], "changed");
    assert!(String::from_utf8_lossy(&out.stderr).contains("growing.log"));
}

#[test]
fn device_nodes_are_kept_as_metadata() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    let made = std::process::Command::new("mknod")
        .arg(src.join("null-copy"))
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipped: mknod needs privileges");
        return;
    }
    let snap = env.backup(&[&src]);
    let ls = env.ok(&["ls", &snap, "--json"]);
    assert!(ls.contains("\"chardev\""), "{ls}");
    let target = env.path("t");
    env.ok(&["restore", &snap, "--target", target.to_str().unwrap()]);
    let m = fs::symlink_metadata(restored(&target, &src).join("null-copy")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(m.file_type().is_char_device());
    assert_eq!(
        m.rdev(),
        fs::symlink_metadata(src.join("null-copy")).unwrap().rdev()
    );
}

#[test]
fn a_backup_of_a_tree_holding_the_repository_leaves_it_out() {
    // `cairn backup ~` with the default repository and catalog under ~: neither is
    // stored into itself, so a second backup of an unchanged home adds nothing.
    let env = Env::new();
    let home = env.dir.path();
    let repo = home.join(".local/share/cairn/repository");
    let run = |args: &[&str]| {
        let out = env
            .cmd()
            .env("CAIRN_REPOSITORY", &repo)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["init"]);
    fs::create_dir_all(home.join("docs")).unwrap();
    fs::write(home.join("docs/letter.txt"), pseudo_random(5, 100_000)).unwrap();
    let home_str = home.to_str().unwrap();
    run(&["backup", home_str, "--json"]);
    let second: serde_json::Value =
        serde_json::from_str(&run(&["backup", home_str, "--json"])).unwrap();
    assert_eq!(second["summary"]["added"]["data_blobs"], 0, "{second}");
    assert_eq!(second["summary"]["bytes_read"], 0, "{second}");
    let ls = run(&["ls", "latest"]);
    assert!(ls.contains("/docs/letter.txt"), "{ls}");
    assert!(
        !ls.contains("/repository/"),
        "the repository was backed up:\n{ls}"
    );
    assert!(
        !ls.contains("catalog.sqlite"),
        "the catalog was backed up:\n{ls}"
    );
}

/// Restored files are written and given their metadata through the handle opened when
/// each was created, as many as the open-files limit allows; past that, by path. Both
/// give the same tree, and what stood where a file goes (a directory, a symlink that
/// must not be followed) is replaced.
#[test]
fn restore_under_a_low_open_files_limit_gives_the_same_tree() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    for d in 0..3 {
        let dir = src.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..150 {
            let p = dir.join(format!("f{i}"));
            fs::write(&p, pseudo_random(d * 1000 + i, (i as usize * 37) % 5000)).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600 + (i as u32 % 64))).unwrap();
            if i % 10 == 0 {
                let _ = xattr::set(&p, "user.cairn.n", format!("{i}").as_bytes());
            }
        }
    }
    fs::write(src.join("big.bin"), pseudo_random(9, 3 << 20)).unwrap();
    let snap = env.backup(&[&src]);
    for (name, limit) in [("plenty", None), ("low", Some("--nofile=300:300"))] {
        let target = env.path(name);
        let out = restored(&target, &src);
        // Where two files go: a directory with a file in it, and a symlink to a file
        // outside the target, which must not be written through.
        let outside = env.path(&format!("outside-{name}"));
        fs::write(&outside, b"not to be touched").unwrap();
        fs::create_dir_all(out.join("d0/f1/inner")).unwrap();
        fs::create_dir_all(out.join("d1")).unwrap();
        symlink(&outside, out.join("d1/f2")).unwrap();
        let mut cmd = match limit {
            Some(l) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(l).arg(env!("CARGO_BIN_EXE_cairn"));
                c.env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("HOME", env.path(""))
                    .env("CAIRN_REPOSITORY", &env.repo)
                    .env("CAIRN_PASSWORD_FILE", &env.password_file);
                c
            }
            None => env.cmd(),
        };
        succeed(cmd.args(["restore", &snap, "--target", target.to_str().unwrap()]));
        assert_same_tree(&src, &out);
        assert_eq!(fs::read(&outside).unwrap(), b"not to be touched");
    }
}

#[test]
fn an_unprivileged_restore_sets_the_modes_and_times_of_nested_directories() {
    // Directories get their metadata last, deepest first. A directory without search
    // permission (`a`, mode 600) must get its mode only after everything below it has
    // its own, or an unprivileged restore cannot reach `a/b`.
    // Only root can build and back up such a tree and then restore it as another user.
    if !rustix_is_root() {
        eprintln!("skipped: needs root to restore as an unprivileged user");
        return;
    }
    let env = Env::new();
    env.init();
    let src = env.path("src");
    let dirs = [
        ("a", 0o600),
        ("a/b", 0o755),
        ("a/b/c", 0o500),
        ("a/b/c/d", 0o711),
        ("a/e", 0o700),
        ("f", 0o555),
        ("f/g", 0o300),
    ];
    for (d, _) in dirs {
        fs::create_dir_all(src.join(d)).unwrap();
        fs::write(src.join(d).join("file"), d.as_bytes()).unwrap();
    }
    // Deepest first, so that making a directory unsearchable comes after its contents.
    for (i, (d, mode)) in dirs.iter().enumerate().rev() {
        let p = src.join(d);
        let t = filetime_of(1_600_000_000 + i as i64 * 86_400);
        rustix::fs::utimensat(
            rustix::fs::CWD,
            &p,
            &rustix::fs::Timestamps {
                last_access: t,
                last_modification: t,
            },
            rustix::fs::AtFlags::empty(),
        )
        .unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(*mode)).unwrap();
    }
    let snap = env.backup(&[&src]);
    // The unprivileged user reads the repository and owns the target.
    let target = env.path("restore");
    fs::create_dir(&target).unwrap();
    for p in [env.dir.path(), &target] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    let st = std::process::Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&env.repo)
        .arg(&env.password_file)
        .status()
        .unwrap();
    assert!(st.success());
    succeed(as_nobody(&env).args(["restore", &snap, "--target", target.to_str().unwrap()]));
    let out = restored(&target, &src);
    for (i, (d, mode)) in dirs.iter().enumerate() {
        let m = fs::metadata(out.join(d)).unwrap();
        assert_eq!(m.mode() & 0o7777, *mode, "mode of {d}");
        assert_eq!(
            m.mtime(),
            1_600_000_000 + i as i64 * 86_400,
            "modification time of {d}"
        );
        assert_eq!(fs::read(out.join(d).join("file")).unwrap(), d.as_bytes());
    }
}

fn filetime_of(secs: i64) -> rustix::fs::Timespec {
    rustix::fs::Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    }
}

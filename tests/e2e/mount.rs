//! `cairn mount` through the binary: the layout, every file's bytes and metadata read
//! through the kernel, a read in the middle of a large file, writes refused with EROFS,
//! SIGTERM unmounting cleanly; and a clear one-line error where mounting is not allowed.

use crate::common::*;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Nested directories, a file of a few MiB, an empty file, a symlink, modes 0600 and
/// 0755, times in the past.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/inner")).unwrap();
    fs::write(root.join("sub/inner/note.txt"), b"first version\n").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("big.bin"), pseudo_random(11, 5 << 20)).unwrap();
    fs::write(root.join("private"), b"mode 0600\n").unwrap();
    fs::set_permissions(root.join("private"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(root.join("script.sh"), b"#!/bin/sh\necho hi\n").unwrap();
    fs::set_permissions(root.join("script.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("sub/inner/note.txt", root.join("link")).unwrap();
    touch(&root.join("big.bin"), "2001-02-03 04:05:06.123456789");
    touch(&root.join("private"), "1999-12-31 23:59:58");
}

fn touch(p: &Path, when: &str) {
    let st = Command::new("touch")
        .args(["-h", "-d", when])
        .arg(p)
        .status()
        .unwrap();
    assert!(st.success());
}

fn is_mounted(mnt: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let m = mnt.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(m))
}

/// Unmounts (lazily) and stops cairn whatever happens to the test.
struct Mounted {
    mnt: PathBuf,
    child: Option<Child>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .args(["-u", "-z", "-q", "--"])
            .arg(&self.mnt)
            .stderr(Stdio::null())
            .status();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn errno(r: std::io::Result<impl Sized>) -> Option<i32> {
    r.err().and_then(|e| e.raw_os_error())
}

#[test]
fn mount_shows_every_snapshot_reads_files_refuses_writes_and_unmounts_on_sigterm() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_tree(&src);
    let first = env.backup(&[&src]);
    let first_big = fs::read(src.join("big.bin")).unwrap();
    // The second snapshot: one file changed, one added; tagged.
    fs::write(src.join("sub/inner/note.txt"), b"second version, longer\n").unwrap();
    fs::write(src.join("sub/added"), b"new\n").unwrap();
    let out = env.json(&["backup", src.to_str().unwrap(), "--tag", "release"]);
    let second = out["snapshot"].as_str().unwrap().to_string();
    let host = env.json(&["snapshots"])[0]["hostname"]
        .as_str()
        .unwrap()
        .to_string();

    let mnt = env.path("mnt");
    fs::create_dir(&mnt).unwrap();
    let log = env.path("mount.log");
    let child = env
        .cmd()
        .args(["mount", mnt.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut m = Mounted {
        mnt: mnt.clone(),
        child: Some(child),
    };

    // Mounted when snapshots/ lists entries; cairn must still be running meanwhile.
    let start = Instant::now();
    loop {
        if let Ok(Some(st)) = m.child.as_mut().unwrap().try_wait() {
            panic!(
                "cairn mount exited with {st} before mounting: {}",
                fs::read_to_string(&log).unwrap()
            );
        }
        if fs::read_dir(mnt.join("snapshots")).is_ok_and(|mut d| d.next().is_some()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not mounted after 20 s: {}",
            fs::read_to_string(&log).unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(is_mounted(&mnt));

    let names = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&mnt), ["apps", "hosts", "snapshots", "tags"]);
    let snaps = names(&mnt.join("snapshots"));
    assert_eq!(snaps.len(), 3, "{snaps:?}");
    assert_eq!(snaps[2], "latest");
    // Both may fall in one second: then they sort by id; find each by its id.
    let by_id = |id: &str| {
        snaps
            .iter()
            .find(|n| n.ends_with(&format!("_{}", &id[..8])))
            .unwrap_or_else(|| panic!("no snapshot {id} in {snaps:?}"))
            .clone()
    };
    let (n1, n2) = (by_id(&first), by_id(&second));
    assert!(n1.ends_with(&format!("_{}", &first[..8])), "{n1}");
    assert!(n2.ends_with(&format!("_{}", &second[..8])), "{n2}");
    assert_eq!(n1.len(), "YYYY-MM-DDTHH:MM:SS_".len() + 8, "{n1}");
    assert_eq!(
        fs::read_link(mnt.join("snapshots/latest")).unwrap(),
        PathBuf::from(&n2)
    );
    // hosts/ and tags/ link into snapshots/; `latest` in each.
    let by_host = mnt.join("hosts").join(&host);
    let mut expected = vec![n1.clone(), n2.clone()];
    expected.sort();
    expected.push("latest".into());
    assert_eq!(names(&by_host), expected);
    assert_eq!(
        fs::read_link(by_host.join(&n1)).unwrap(),
        PathBuf::from(format!("../../snapshots/{n1}"))
    );
    assert_eq!(
        fs::read_link(by_host.join("latest")).unwrap(),
        PathBuf::from(&n2)
    );
    assert_eq!(names(&mnt.join("tags")), ["release"]);
    assert_eq!(
        names(&mnt.join("tags/release")),
        [n2.clone(), "latest".into()]
    );
    assert!(names(&mnt.join("apps")).is_empty());

    // The newest snapshot through hosts/HOST/latest/: the source as it is now, every
    // byte, mode, time and link target.
    let rel = src.strip_prefix("/").unwrap();
    let newest = by_host.join("latest/").join(rel);
    assert_same_tree(&src, &newest);
    let oldest = mnt.join("snapshots").join(&n1).join(rel);
    assert_eq!(
        fs::read(oldest.join("sub/inner/note.txt")).unwrap(),
        b"first version\n"
    );
    assert!(!oldest.join("sub/added").exists());
    assert_eq!(fs::read(oldest.join("big.bin")).unwrap(), first_big);
    let meta = fs::metadata(newest.join("private")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(fs::metadata(newest.join("empty")).unwrap().len(), 0);
    assert_eq!(
        fs::read_link(newest.join("link")).unwrap(),
        PathBuf::from("sub/inner/note.txt")
    );

    // A read in the middle of the large file, across chunk boundaries.
    let mut f = fs::File::open(newest.join("big.bin")).unwrap();
    let at = (5 << 20) / 2 + 12_345;
    f.seek(SeekFrom::Start(at as u64)).unwrap();
    let mut buf = vec![0u8; 700_000];
    f.read_exact(&mut buf).unwrap();
    assert_eq!(buf, first_big[at..at + buf.len()]);

    // Read-only.
    const EROFS: i32 = 30;
    assert_eq!(errno(fs::write(newest.join("new-file"), b"x")), Some(EROFS));
    assert_eq!(errno(fs::write(newest.join("private"), b"x")), Some(EROFS));
    assert_eq!(errno(fs::create_dir(newest.join("new-dir"))), Some(EROFS));
    assert_eq!(errno(fs::remove_file(newest.join("empty"))), Some(EROFS));
    assert_eq!(
        errno(fs::rename(newest.join("empty"), newest.join("other"))),
        Some(EROFS)
    );
    assert_eq!(
        errno(fs::set_permissions(
            newest.join("empty"),
            fs::Permissions::from_mode(0o777)
        )),
        Some(EROFS)
    );

    // SIGTERM: unmounted, exit code 0.
    let pid = m.child.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = m.child.as_mut().unwrap().try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "cairn mount still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    m.child = None;
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        fs::read_to_string(&log).unwrap()
    );
    assert!(!is_mounted(&mnt), "still mounted after cairn exited");
}

#[test]
fn mount_without_the_right_to_mount_says_so_in_one_line() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("a"), b"a").unwrap();
    env.backup(&[&src]);
    let mnt = env.path("mnt");
    fs::create_dir(&mnt).unwrap();
    let _guard = Mounted {
        mnt: mnt.clone(),
        child: None,
    };

    // Without CAP_SYS_ADMIN (as a user without the right to mount): mount(2) is
    // refused, and so is fusermount3, which cannot gain the capability either.
    let out = Command::new("setpriv")
        .args(["--inh-caps=-sys_admin", "--bounding-set=-sys_admin", "--"])
        .arg(env!("CARGO_BIN_EXE_cairn"))
        .args(["mount", mnt.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", env.dir.path())
        .env("CAIRN_REPOSITORY", &env.repo)
        .env("CAIRN_PASSWORD_FILE", &env.password_file)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("cairn: FUSE is not available here: not permitted to mount"),
        "{err}"
    );
    assert!(!is_mounted(&mnt));

    // A mount point that does not exist: said before the repository is opened.
    let out = env.run(&["mount", env.path("nowhere").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot mount at") && err.contains("nowhere"),
        "{err}"
    );
}

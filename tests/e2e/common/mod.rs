//! Shared helpers for the end-to-end tests: run the built `cairn` binary against a
//! throwaway repository, build file trees, compare trees.
#![allow(dead_code)]

pub mod db;
pub use db::*;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PASSWORD: &str = "correct horse battery staple";

/// A temporary directory with a repository path and a password file.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub repo: PathBuf,
    pub password_file: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("cairn-e2e-")
            .tempdir()
            .unwrap();
        let repo = dir.path().join("repo");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        Env {
            dir,
            repo,
            password_file,
        }
    }

    /// A path inside the temporary directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A `cairn` command with repository and password set through the environment.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("CAIRN_REPOSITORY", &self.repo)
            .env("CAIRN_PASSWORD_FILE", &self.password_file)
            .stdin(Stdio::null());
        c
    }

    /// Runs cairn with arguments; returns the output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs cairn and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeed(self.cmd().args(args))
    }

    /// Runs cairn with --json and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        let s = self.ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{s}"))
    }

    pub fn init(&self) {
        self.ok(&["init"]);
    }

    /// Backs up an application installation (`cairn app backup APP --path DIR`, then
    /// `extra`); returns the snapshot id.
    pub fn app_backup(&self, app: &str, dir: &Path, extra: &[&str]) -> String {
        let mut args = vec!["app", "backup", app, "--path", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.json(&args)["snapshot"].as_str().unwrap().to_string()
    }

    /// Backs up paths; returns the snapshot id.
    pub fn backup(&self, paths: &[&Path]) -> String {
        let mut args = vec!["backup".to_string()];
        args.extend(paths.iter().map(|p| p.to_string_lossy().into_owned()));
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let v = self.json(&a);
        v["snapshot"].as_str().unwrap().to_string()
    }
}

/// `cairn --config CONFIG` as a timer or cron runs it: HOME and PATH, nothing else from
/// the environment (no CAIRN_* variable).
pub fn cairn_with_config(home: &Path, config: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cairn"));
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null());
    c
}

/// Runs `cmd` with `data` on its standard input; returns its output.
pub fn with_stdin(cmd: &mut Command, data: &[u8]) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a cairn command and asserts success; returns stdout.
pub fn succeed(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// What a tree looks like, for comparison: path → description of the entry.
pub fn describe(root: &Path) -> BTreeMap<Vec<u8>, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<Vec<u8>, String>,
    inodes: &mut BTreeMap<(u64, u64), Vec<u8>>,
) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let m = std::fs::symlink_metadata(&p).unwrap();
        let ft = m.file_type();
        let mut xattrs: Vec<String> = xattr_list(&p);
        xattrs.sort();
        let common = format!(
            "mode={:o} mtime={}.{} xattrs={:?}",
            m.mode() & 0o7777,
            m.mtime(),
            m.mtime_nsec(),
            xattrs
        );
        let d = if ft.is_dir() {
            walk(root, &p, out, inodes);
            format!("dir {common}")
        } else if ft.is_symlink() {
            format!(
                "symlink -> {:?}",
                std::fs::read_link(&p).unwrap().as_os_str().as_bytes()
            )
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap();
            let link = if m.nlink() > 1 {
                let first = inodes
                    .entry((m.dev(), m.ino()))
                    .or_insert_with(|| rel.clone());
                format!(" hardlink-group={:?}", String::from_utf8_lossy(first))
            } else {
                String::new()
            };
            format!(
                "file size={} blake3={} {common}{link}",
                data.len(),
                blake3::hash(&data).to_hex()
            )
        } else if ft.is_fifo() {
            format!("fifo {common}")
        } else {
            format!("other {common}")
        };
        out.insert(rel, d);
    }
}

fn xattr_list(p: &Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(names) = xattr::list(p) {
        for n in names {
            let val = xattr::get(p, &n).ok().flatten().unwrap_or_default();
            v.push(format!(
                "{}={}",
                n.to_string_lossy(),
                String::from_utf8_lossy(&val)
            ));
        }
    }
    v
}

/// Asserts two trees are equal, printing the first differences.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let da = describe(a);
    let db = describe(b);
    if da != db {
        let mut diffs = Vec::new();
        for (k, v) in &da {
            match db.get(k) {
                Some(w) if w == v => {}
                Some(w) => diffs.push(format!("{}: {v}\n   vs {w}", String::from_utf8_lossy(k))),
                None => diffs.push(format!(
                    "{}: missing in restore",
                    String::from_utf8_lossy(k)
                )),
            }
        }
        for k in db.keys() {
            if !da.contains_key(k) {
                diffs.push(format!("{}: extra in restore", String::from_utf8_lossy(k)));
            }
        }
        panic!("trees differ:\n{}", diffs[..diffs.len().min(20)].join("\n"));
    }
}

/// The directory a restore of the absolute path `src` ends up in.
pub fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

/// Deterministic pseudo-random bytes.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut ctr = 0u64;
    while out.len() < len {
        let mut h = blake3::Hasher::new();
        h.update(&seed.to_le_bytes());
        h.update(&ctr.to_le_bytes());
        out.extend_from_slice(h.finalize().as_bytes());
        ctr += 1;
    }
    out.truncate(len);
    out
}

/// File name bytes as an OsStr.
pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

/// A Kimai installation with its database in SQLite (`var/data/kimai.sqlite`, in WAL
/// mode, holding `users` rows in `kimai2_users` and one migration), as the real one
/// lays it out; needs `python3`. Returns the database file.
pub fn kimai_sqlite_install(root: &Path, users: usize) -> PathBuf {
    for d in ["config/packages", "var/data", "var/plugins"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join(".env"),
        "DATABASE_URL=sqlite:///%kernel.project_dir%/var/data/kimai.sqlite\n",
    )
    .unwrap();
    std::fs::write(root.join("var/data/export.csv"), "a;b\n1;2\n").unwrap();
    let db = root.join("var/data/kimai.sqlite");
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}'); c.execute('pragma journal_mode=wal'); \
             c.execute('create table kimai2_users (id integer primary key, name text)'); \
             c.execute('create table migration_versions (version text primary key)'); \
             c.executemany('insert into kimai2_users (name) values (?)', \
             [('user %d' % i,) for i in range({users})]); \
             c.execute(\"insert into migration_versions values ('Version20240101')\"); c.commit()",
            db.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    db
}

/// Flips the lowest bit of the byte at `offset` (or the last byte) of a repository file,
/// making it writable first (cairn stores files read-only).
pub fn flip(path: &Path, offset: usize) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut b = std::fs::read(path).unwrap();
    let o = offset.min(b.len() - 1);
    b[o] ^= 0x01;
    std::fs::write(path, b).unwrap();
}

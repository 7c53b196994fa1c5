//! Backup then restore of real directory trees: every file's bytes, symlink targets,
//! permission bits, times, extended attributes and hard links come back; unchanged
//! files are not read again; a restore over a partial one repairs it.

mod common;

use cairn_core::browse::resolve;
use cairn_core::{
    backup, restore, BackupSummary, Extent, Id, InitOptions, NoProgress, NodeKind, ParentChoice,
    Repository, RestoreOptions, RestoreSummary,
};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------
// Describing a tree on disk

/// What a restore must reproduce of one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(Vec<u8>),
    Fifo,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    kind: Kind,
    perm: u32,
    mtime: (i64, i64),
    /// `user.*` extended attributes.
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Relative path (raw bytes) → entry.
type Listing = BTreeMap<Vec<u8>, Entry>;
/// Sets of relative paths sharing an inode.
type LinkGroups = Vec<Vec<Vec<u8>>>;

/// Every entry below `root`, and the hard-link groups.
fn describe(root: &Path) -> (Listing, LinkGroups) {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink(
                    std::fs::read_link(&path)
                        .unwrap()
                        .as_os_str()
                        .as_bytes()
                        .to_vec(),
                )
            } else if ft.is_file() {
                if m.nlink() > 1 {
                    inodes.entry(m.ino()).or_default().push(rel.clone());
                }
                Kind::File(std::fs::read(&path).unwrap())
            } else {
                use std::os::unix::fs::FileTypeExt;
                assert!(ft.is_fifo(), "unexpected file type at {}", path.display());
                Kind::Fifo
            };
            let perm = if ft.is_symlink() {
                0
            } else {
                m.mode() & 0o7777
            };
            let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = match xattr::list(&path) {
                Ok(names) if !ft.is_symlink() => names
                    .filter(|n| n.as_bytes().starts_with(b"user."))
                    .map(|n| {
                        let v = xattr::get(&path, &n).unwrap().unwrap_or_default();
                        (n.as_bytes().to_vec(), v)
                    })
                    .collect(),
                _ => Vec::new(),
            };
            xattrs.sort();
            out.insert(
                rel,
                Entry {
                    kind,
                    perm,
                    mtime: (m.mtime(), m.mtime_nsec()),
                    xattrs,
                },
            );
        }
    }
    let mut groups: Vec<Vec<Vec<u8>>> = inodes
        .into_values()
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    groups.sort();
    (out, groups)
}

fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}

fn diff(want: &Listing, got: &Listing) -> Result<(), TestCaseError> {
    for (p, w) in want {
        let Some(g) = got.get(p) else {
            return Err(TestCaseError::fail(format!("{} not restored", show(p))));
        };
        if let (Kind::File(a), Kind::File(b)) = (&w.kind, &g.kind) {
            prop_assert!(
                a == b,
                "{}: contents differ ({} vs {} bytes)",
                show(p),
                a.len(),
                b.len()
            );
        }
        prop_assert_eq!(&w.kind, &g.kind, "{}", show(p));
        prop_assert_eq!(
            w.perm,
            g.perm,
            "{}: permissions {:o} vs {:o}",
            show(p),
            w.perm,
            g.perm
        );
        prop_assert_eq!(w.mtime, g.mtime, "{}: mtime", show(p));
        prop_assert_eq!(&w.xattrs, &g.xattrs, "{}: xattrs", show(p));
    }
    for p in got.keys() {
        prop_assert!(
            want.contains_key(p),
            "{} restored but not in the source",
            show(p)
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Generating trees

#[derive(Clone, Debug)]
enum Content {
    Random(u64, usize),
    Text(usize),
    Byte(u8, usize),
}

impl Content {
    fn bytes(&self) -> Vec<u8> {
        match *self {
            Content::Random(seed, n) => random_bytes(seed, n),
            Content::Text(n) => log_lines(n),
            Content::Byte(b, n) => vec![b; n],
        }
    }
}

#[derive(Clone, Debug)]
enum Spec {
    File {
        content: Content,
        perm: u32,
        mtime: (i64, u32),
        xattr: Option<(Vec<u8>, Vec<u8>)>,
    },
    Dir {
        perm: u32,
    },
    Symlink(Vec<u8>),
    /// A hard link to the n-th file made so far (modulo their number).
    HardLink(usize),
    Fifo,
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-z0-9._-]{1,10}".prop_map(String::into_bytes),
        // Any bytes but '/' and NUL: mostly not UTF-8.
        prop::collection::vec(1u8..=255, 1..12).prop_map(|v| v
            .into_iter()
            .map(|b| if b == b'/' { b'%' } else { b })
            .collect()),
    ]
    .prop_filter("not . or ..", |n: &Vec<u8>| n != b"." && n != b"..")
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        2 => (any::<u64>(), 0usize..200 << 10).prop_map(|(s, n)| Content::Random(s, n)),
        1 => (0usize..200 << 10).prop_map(Content::Text),
        1 => (any::<u8>(), 0usize..200 << 10).prop_map(|(b, n)| Content::Byte(b, n)),
        1 => Just(Content::Random(0, 0)),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    let file = (
        content(),
        prop::sample::select(vec![
            0o644u32, 0o600, 0o755, 0o400, 0o444, 0o640, 0o700, 0o2755,
        ]),
        // Times before and after 1970, with nanoseconds.
        (-2_000_000_000i64..4_000_000_000, 0u32..1_000_000_000),
        prop::option::of((
            "user\\.[a-z]{1,8}".prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..40),
        )),
    )
        .prop_map(|(content, perm, mtime, xattr)| Spec::File {
            content,
            perm,
            mtime,
            xattr,
        });
    prop_oneof![
        6 => file,
        2 => prop::sample::select(vec![0o755u32, 0o700, 0o750, 0o711, 0o1777])
            .prop_map(|perm| Spec::Dir { perm }),
        2 => prop::collection::vec(1u8..=255, 1..40).prop_map(Spec::Symlink),
        1 => any::<usize>().prop_map(Spec::HardLink),
        1 => Just(Spec::Fifo),
    ]
}

/// Up to 20 entries at depth 1 to 3 below the root.
fn tree() -> impl Strategy<Value = Vec<(Vec<Vec<u8>>, Spec)>> {
    prop::collection::vec((prop::collection::vec(name(), 1..=3), spec()), 0..=20)
}

fn time(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + Duration::from_nanos(nanos as u64)
    }
}

/// Makes the tree below `root` (which exists). Entries whose place is taken, or below
/// a non-directory, are skipped; missing parents are made as plain directories.
fn build(root: &Path, specs: &[(Vec<Vec<u8>>, Spec)]) {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dir_perms: Vec<(PathBuf, u32)> = Vec::new();
    'entries: for (comps, spec) in specs {
        let mut path = root.to_path_buf();
        for c in &comps[..comps.len() - 1] {
            path.push(OsStr::from_bytes(c));
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => continue 'entries,
                Err(_) => std::fs::create_dir(&path).unwrap(),
            }
        }
        path.push(OsStr::from_bytes(comps.last().unwrap()));
        if std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        match spec {
            Spec::File {
                content,
                perm,
                mtime,
                xattr,
            } => {
                std::fs::write(&path, content.bytes()).unwrap();
                if let Some((n, v)) = xattr {
                    xattr::set(&path, OsStr::from_bytes(n), v).unwrap();
                }
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*perm)).unwrap();
                let f = std::fs::File::options().write(true).open(&path);
                // A read-only file can still have its times set by its owner.
                match f {
                    Ok(f) => f.set_modified(time(mtime.0, mtime.1)).unwrap(),
                    Err(_) => {
                        let f = std::fs::File::open(&path).unwrap();
                        f.set_modified(time(mtime.0, mtime.1)).unwrap();
                    }
                }
                files.push(path);
            }
            Spec::Dir { perm } => {
                std::fs::create_dir(&path).unwrap();
                dir_perms.push((path, *perm));
            }
            Spec::Symlink(target) => {
                std::os::unix::fs::symlink(OsStr::from_bytes(target), &path).unwrap()
            }
            Spec::HardLink(k) if !files.is_empty() => {
                std::fs::hard_link(&files[k % files.len()], &path).unwrap()
            }
            Spec::HardLink(_) => {}
            Spec::Fifo => rustix::fs::mknodat(
                rustix::fs::CWD,
                &path,
                rustix::fs::FileType::Fifo,
                rustix::fs::Mode::from_bits_truncate(0o640),
                0,
            )
            .unwrap(),
        }
    }
    for (path, perm) in dir_perms {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(perm)).unwrap();
    }
}

// ---------------------------------------------------------------------------------------
// Backup and restore

fn backup_path(repo: &Repository, src: &Path, parent: ParentChoice) -> cairn_core::BackupResult {
    let mut o = opts(vec![src.to_path_buf()], vec![]);
    o.parent = parent;
    backup(repo, o, &NoProgress).unwrap()
}

fn restore_to(
    repo: &Repository,
    r: &cairn_core::BackupResult,
    src: &Path,
    target: &Path,
) -> RestoreSummary {
    let path = src.to_str().unwrap();
    let node = resolve(repo, &r.id, &r.snapshot, path).unwrap();
    let o = RestoreOptions {
        target: target.to_path_buf(),
        ..RestoreOptions::default()
    };
    let (s, warnings) = restore(repo, &node, path, &o, &NoProgress).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(s.errors, 0);
    s
}

fn round_trip(repo: &Repository, specs: &[(Vec<Vec<u8>>, Spec)]) -> Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build(&src, specs);
    let (want, links) = describe(&src);

    let r = backup_path(repo, &src, ParentChoice::None);
    prop_assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let target = tmp.path().join("target");
    restore_to(repo, &r, &src, &target);
    let (got, got_links) = describe(&target);
    diff(&want, &got)?;
    prop_assert_eq!(links, got_links, "hard-link groups");
    Ok(())
}

#[test]
fn random_trees_restore_exactly() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&tree(), |specs| round_trip(&repo, &specs))
        .unwrap();
    let report = check_read_data(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

/// A fixed tree with every kind of entry, so the property's coverage does not depend
/// on luck.
fn fixed_tree() -> Vec<(Vec<Vec<u8>>, Spec)> {
    let p = |s: &[&[u8]]| s.iter().map(|c| c.to_vec()).collect::<Vec<_>>();
    let file = |content, perm| Spec::File {
        content,
        perm,
        mtime: (1_700_000_000, 123_456_789),
        xattr: Some((b"user.k".to_vec(), b"v".to_vec())),
    };
    vec![
        (p(&[b"a.txt"]), file(Content::Text(150_000), 0o644)),
        (p(&[b"empty"]), file(Content::Random(0, 0), 0o600)),
        (
            p(&[b"caf\xe9", b"\xff\xfe"]),
            file(Content::Random(7, 200 << 10), 0o755),
        ),
        (
            p(&[b"d", b"e", b"f"]),
            file(Content::Byte(0, 100_000), 0o400),
        ),
        (p(&[b"emptydir"]), Spec::Dir { perm: 0o700 }),
        (p(&[b"d", b"link"]), Spec::Symlink(b"../a.txt".to_vec())),
        (
            p(&[b"dangling"]),
            Spec::Symlink(b"/nonexistent/\xff".to_vec()),
        ),
        (p(&[b"d", b"hard"]), Spec::HardLink(0)),
        (p(&[b"fifo"]), Spec::Fifo),
        (
            p(&[b"old"]),
            Spec::File {
                content: Content::Random(8, 10),
                perm: 0o644,
                mtime: (-86_400 * 365, 5),
                xattr: None,
            },
        ),
    ]
}

#[test]
fn a_tree_with_every_kind_of_entry_restores_exactly() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    round_trip(&repo, &fixed_tree()).unwrap();
}

fn file_count(specs: &Listing) -> u64 {
    specs
        .values()
        .filter(|e| matches!(e.kind, Kind::File(_)))
        .count() as u64
}

fn subtree(repo: &Repository, r: &cairn_core::BackupResult, src: &Path) -> Id {
    match resolve(repo, &r.id, &r.snapshot, src.to_str().unwrap())
        .unwrap()
        .kind
    {
        NodeKind::Dir { subtree } => subtree,
        k => panic!("{k:?}"),
    }
}

#[test]
fn a_second_backup_without_changes_reads_nothing() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build(&src, &fixed_tree());
    std::fs::write(src.join("big.bin"), random_bytes(3, 3 << 20)).unwrap();
    let (want, _) = describe(&src);
    // Hard links are one inode but two files of the snapshot.
    let files = file_count(&want);

    let r1 = backup_path(&repo, &src, ParentChoice::Auto);
    let s1: BackupSummary = r1.snapshot.summary.clone().unwrap();
    assert_eq!(s1.files_new, files);
    assert!(r1.snapshot.parent.is_none());

    let r2 = backup_path(&repo, &src, ParentChoice::Auto);
    let s2 = r2.snapshot.summary.clone().unwrap();
    assert_eq!(r2.snapshot.parent, Some(r1.id));
    assert_eq!(s2.files_unchanged, files, "{s2:?}");
    assert_eq!(s2.files_new + s2.files_changed, 0, "{s2:?}");
    assert_eq!(s2.bytes_read, 0, "{s2:?}");
    assert_eq!(s2.bytes_total, s1.bytes_total);
    assert_eq!(s2.added.data_blobs, 0);
    assert_eq!(
        subtree(&repo, &r2, &src),
        subtree(&repo, &r1, &src),
        "same tree"
    );

    // One changed file is read again, and only it ("a.txt" has a hard link: take another).
    let changed = random_bytes(4, 1000);
    std::fs::write(src.join("old"), &changed).unwrap();
    let r3 = backup_path(&repo, &src, ParentChoice::Auto);
    let s3 = r3.snapshot.summary.clone().unwrap();
    assert_eq!(s3.files_changed, 1, "{s3:?}");
    assert_eq!(s3.files_unchanged, files - 1, "{s3:?}");
    assert_eq!(s3.bytes_read, changed.len() as u64);
    let node = resolve(
        &repo,
        &r3.id,
        &r3.snapshot,
        &format!("{}/old", src.display()),
    )
    .unwrap();
    assert_eq!(dump(&repo, &node), changed);

    // Without a parent, everything is read again. The small files of a directory are
    // stored together as they are grouped now: since "old" changed alone, that group
    // is new, but nothing else is (not the large file).
    let r4 = backup_path(&repo, &src, ParentChoice::None);
    let s4 = r4.snapshot.summary.clone().unwrap();
    assert_eq!(s4.files_new, files);
    assert_eq!(s4.bytes_read, s4.bytes_total);
    assert!(s4.added.bytes_raw < 1 << 20, "{:?}", s4.added);
    // The same tree grouped the same way stores nothing.
    let r5 = backup_path(&repo, &src, ParentChoice::None);
    let s5 = r5.snapshot.summary.clone().unwrap();
    assert_eq!(s5.bytes_read, s5.bytes_total);
    assert_eq!(s5.added.data_blobs, 0);
}

#[test]
fn an_attribute_set_on_an_unchanged_entry_is_in_the_next_snapshot() {
    // A second backup takes the extended attributes of an entry whose inode and ctime
    // are the parent's from the parent; setting or removing one changes the ctime.
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("dir/file"), b"same bytes").unwrap();
    if xattr::set(src.join("dir/file"), "user.cairn", b"one").is_err() {
        eprintln!("skipped: the file system keeps no user attributes");
        return;
    }
    let attrs = |r: &cairn_core::BackupResult, rel: &str| {
        let path = format!("{}/{rel}", src.display());
        let node = resolve(&repo, &r.id, &r.snapshot, &path).unwrap();
        node.xattrs
            .iter()
            .map(|x| (x.name.clone(), x.value.clone()))
            .collect::<Vec<_>>()
    };
    let r1 = backup_path(&repo, &src, ParentChoice::Auto);
    assert_eq!(
        attrs(&r1, "dir/file"),
        [(b"user.cairn".to_vec(), b"one".to_vec())]
    );

    xattr::set(src.join("dir/file"), "user.cairn", b"two").unwrap();
    xattr::set(src.join("dir"), "user.on-dir", b"d").unwrap();
    let r2 = backup_path(&repo, &src, ParentChoice::Auto);
    assert_eq!(
        attrs(&r2, "dir/file"),
        [(b"user.cairn".to_vec(), b"two".to_vec())]
    );
    assert_eq!(
        attrs(&r2, "dir"),
        [(b"user.on-dir".to_vec(), b"d".to_vec())]
    );

    xattr::remove(src.join("dir/file"), "user.cairn").unwrap();
    let r3 = backup_path(&repo, &src, ParentChoice::Auto);
    assert!(attrs(&r3, "dir/file").is_empty());
    // Unchanged since: the parent's attributes carry over.
    let r4 = backup_path(&repo, &src, ParentChoice::Auto);
    assert_eq!(
        attrs(&r4, "dir"),
        [(b"user.on-dir".to_vec(), b"d".to_vec())]
    );
    assert!(attrs(&r4, "dir/file").is_empty());
}

#[test]
fn restoring_again_repairs_a_damaged_target_and_skips_what_is_right() {
    let (_be, repo) = mem_repo(&InitOptions {
        chunker_files: cairn_core::ChunkerParams {
            min_size: 16 << 10,
            avg_size: 64 << 10,
            max_size: 256 << 10,
        },
        ..InitOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    build(&src, &fixed_tree());
    let big = random_bytes(5, 2 << 20);
    std::fs::write(src.join("big.bin"), &big).unwrap();
    let (want, links) = describe(&src);
    let r = backup_path(&repo, &src, ParentChoice::None);
    let target = tmp.path().join("target");
    let first = restore_to(&repo, &r, &src, &target);
    assert_eq!(first.files_unchanged, 0);

    // Over a complete restore, nothing is written.
    let again = restore_to(&repo, &r, &src, &target);
    assert_eq!(again.bytes_written, 0, "{again:?}");
    assert_eq!(again.files_restored, 0, "{again:?}");
    diff(&want, &describe(&target).0).unwrap();

    // Damage the target: flip a byte in the middle of the big file, truncate one file,
    // delete one, replace one by a directory and one directory by a file.
    let mut b = std::fs::read(target.join("big.bin")).unwrap();
    b[1 << 20] ^= 1;
    std::fs::write(target.join("big.bin"), &b).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(target.join("a.txt"))
        .unwrap()
        .set_len(10)
        .unwrap();
    std::fs::remove_file(target.join(OsStr::from_bytes(b"caf\xe9/\xff\xfe"))).unwrap();
    std::fs::remove_file(target.join("empty")).unwrap();
    std::fs::create_dir(target.join("empty")).unwrap();
    std::fs::write(target.join("empty/x"), b"x").unwrap();
    std::fs::remove_dir(target.join("emptydir")).unwrap();
    std::fs::write(target.join("emptydir"), b"not a dir").unwrap();

    let repair = restore_to(&repo, &r, &src, &target);
    let (got, got_links) = describe(&target);
    diff(&want, &got).unwrap();
    assert_eq!(links, got_links);
    // Only the damaged chunk of the big file is written again (chunk boundaries depend
    // on the repository's secret, so compare with the chunk that holds the flipped byte).
    let damaged_chunk = repo
        .files_chunker()
        .cuts(&big)
        .find(|c| c.contains(&(1 << 20)))
        .unwrap();
    fn file_bytes(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let m = std::fs::symlink_metadata(&p).unwrap();
                if m.is_dir() {
                    file_bytes(&p)
                } else if m.is_file() {
                    m.len()
                } else {
                    0
                }
            })
            .sum()
    }
    // Besides that chunk, at most the other (small) files are written again.
    let others = file_bytes(&src) - big.len() as u64;
    assert!(
        repair.bytes_written <= damaged_chunk.len() as u64 + others,
        "rewrote {} bytes, the damaged chunk has {}, the other files {others}",
        repair.bytes_written,
        damaged_chunk.len()
    );
    // Every other chunk of the big file is verified in place.
    assert!(
        repair.bytes_skipped >= (big.len() - damaged_chunk.len()) as u64,
        "{repair:?}"
    );
}

#[test]
fn sparse_files_keep_their_holes_and_bytes() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let path = src.join("disk.img");
    let size = 64u64 << 20;
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(size).unwrap();
    use std::os::unix::fs::FileExt;
    let d1 = random_bytes(6, 300_000);
    let d2 = log_lines(1 << 20);
    f.write_all_at(&d1, 4096 * 10).unwrap();
    f.write_all_at(&d2, 40 << 20).unwrap();
    f.write_all_at(b"end", size - 3).unwrap();
    drop(f);
    let sparse = std::fs::metadata(&path).unwrap().blocks() * 512 < size;

    let r = backup_path(&repo, &src, ParentChoice::None);
    let node = resolve(&repo, &r.id, &r.snapshot, path.to_str().unwrap()).unwrap();
    assert_eq!(node.size, size);
    let content = match &node.kind {
        NodeKind::File { content } => content.clone(),
        k => panic!("{k:?}"),
    };
    if sparse {
        assert!(content.iter().any(|e| matches!(e, Extent::Hole(_))));
        let s = r.snapshot.summary.clone().unwrap();
        assert!(s.bytes_read < size / 4, "read {} of {size}", s.bytes_read);
    }
    let want = std::fs::read(&path).unwrap();
    assert!(dump(&repo, &node) == want);

    let target = tmp.path().join("target");
    restore_to(&repo, &r, &src, &target);
    let got = std::fs::read(target.join("disk.img")).unwrap();
    assert!(got == want, "restored sparse file differs");
    if sparse {
        let blocks = std::fs::metadata(target.join("disk.img")).unwrap().blocks();
        assert!(
            blocks * 512 < size / 2,
            "holes were filled: {blocks} blocks"
        );
    }
}

/// Files that end in a hole, or are nothing but one, come back at their length with
/// their times (a new file gets its length from its writes, and one that ends in a hole
/// is extended when it is finished, before its times are set).
#[test]
fn files_that_end_in_a_hole_keep_their_length_and_times() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let data = log_lines(1 << 20);
    let tail = src.join("tail-hole.img");
    std::fs::write(&tail, &data).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tail)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let all = src.join("all-hole.img");
    std::fs::File::create(&all)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    for name in ["tail-hole.img", "all-hole.img", "empty"] {
        let f = std::fs::File::options()
            .write(true)
            .open(src.join(name))
            .unwrap();
        f.set_modified(old).unwrap();
    }

    let r = backup_path(&repo, &src, ParentChoice::None);
    let target = tmp.path().join("target");
    restore_to(&repo, &r, &src, &target);
    for (name, len) in [
        ("tail-hole.img", 16u64 << 20),
        ("all-hole.img", 8 << 20),
        ("empty", 0),
    ] {
        let got = target.join(name);
        let m = std::fs::metadata(&got).unwrap();
        assert_eq!(m.len(), len, "{name}");
        assert_eq!(m.modified().unwrap(), old, "{name}: times");
        assert!(std::fs::read(&got).unwrap() == std::fs::read(src.join(name)).unwrap());
    }
}

#[test]
fn a_single_file_path_backs_up_and_restores() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("only.txt");
    let data = log_lines(50_000);
    std::fs::write(&path, &data).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let r = backup_path(&repo, &path, ParentChoice::None);
    assert_eq!(r.snapshot.paths, vec![path.to_str().unwrap().to_string()]);
    let node = resolve(&repo, &r.id, &r.snapshot, path.to_str().unwrap()).unwrap();
    let target = tmp.path().join("target");
    let o = RestoreOptions {
        target: target.clone(),
        ..RestoreOptions::default()
    };
    let (s, w) = restore(&repo, &node, path.to_str().unwrap(), &o, &NoProgress).unwrap();
    assert!(w.is_empty() && s.errors == 0, "{w:?}");
    assert_eq!(s.files_restored, 1);
    let got = target.join("only.txt");
    assert_eq!(std::fs::read(&got).unwrap(), data);
    assert_eq!(std::fs::metadata(&got).unwrap().mode() & 0o7777, 0o640);
}

/// A file larger than the reading segment (the largest chunk plus 2 MiB, 10 MiB) is cut
/// exactly as the whole buffer would be.
#[test]
fn a_file_larger_than_a_segment_cuts_like_the_whole_buffer() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let mut data = random_bytes(9, 13 << 20);
    data.extend(std::iter::repeat_n(b'x', 10 << 20)); // forced max-size cuts
    data.extend(random_bytes(10, 3 << 20));
    let path = tmp.path().join("big");
    std::fs::write(&path, &data).unwrap();
    let r = backup_path(&repo, tmp.path(), ParentChoice::None);
    let node = resolve(&repo, &r.id, &r.snapshot, path.to_str().unwrap()).unwrap();
    assert_eq!(
        data_ids(&repo, &node),
        whole_buffer_ids(&repo, repo.files_chunker(), &data)
    );
    assert!(dump(&repo, &node) == data);
}

/// Restore plans and writes files in windows (4,096 files, 65,536 chunks at most): a
/// file of more chunks than a window, more files than a window, and
/// blobs needed in several places of one window all come back exactly; a second
/// restore over the first finds everything in place.
#[test]
fn restores_larger_than_a_window_come_back_exactly() {
    let tiny = cairn_core::ChunkerParams {
        min_size: 64,
        avg_size: 128,
        max_size: 256,
    };
    let (_be, repo) = mem_repo(&InitOptions {
        chunker_files: tiny,
        ..InitOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("many")).unwrap();
    // About 90,000 chunks in one file.
    std::fs::write(src.join("big"), random_bytes(7, 12 << 20)).unwrap();
    // 5,000 files, every tenth the same bytes as another (one blob, many places).
    for i in 0..5000u32 {
        let seed = if i % 10 == 0 { 1 } else { 100 + i as u64 };
        std::fs::write(
            src.join("many").join(i.to_string()),
            random_bytes(seed, 200),
        )
        .unwrap();
    }
    let r = backup_path(&repo, &src, ParentChoice::None);
    let node = resolve(&repo, &r.id, &r.snapshot, src.join("big").to_str().unwrap()).unwrap();
    assert!(data_ids(&repo, &node).len() > 65_536 + 1_000);

    let target = tmp.path().join("target");
    let s = restore_to(&repo, &r, &src, &target);
    assert_eq!(s.files_restored, 5001);
    let (want, _) = describe(&src);
    let (got, _) = describe(&target);
    diff(&want, &got).unwrap();

    let again = restore_to(&repo, &r, &src, &target);
    assert_eq!((again.files_restored, again.files_unchanged), (0, 5001));
    assert_eq!(again.bytes_written, 0);
    diff(&want, &describe(&target).0).unwrap();
}

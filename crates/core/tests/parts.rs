//! Small files share chunks (decision 0027): the new and changed small files of a
//! directory are stored as one stream, and each file's content names parts of its
//! chunks. They restore and read back exactly, keep their parts while unchanged, and a
//! part that lies outside its blob (a hostile or damaged tree) is refused everywhere.

mod common;

use cairn_core::browse::{dump_file, resolve};
use cairn_core::{
    backup, check, diff, restore, ChangeKind, CheckOptions, Extent, InitOptions, NoProgress, Node,
    NodeKind, ParentChoice, Repository, RestoreOptions, Tree,
};
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// 300 files of 0 to 6 KiB of text-like bytes, some in a subdirectory.
fn small_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    let mut rng = Rng(7);
    let text = log_lines(20_000);
    let files: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            let name = if i % 3 == 0 {
                format!("sub/f{i:03}")
            } else {
                format!("f{i:03}")
            };
            let len = rng.below(6000) as usize;
            let start = rng.below((text.len() - len) as u64) as usize;
            let data = text[start..start + len].to_vec();
            (name, data)
        })
        .collect();
    for (name, data) in &files {
        std::fs::write(dir.join(name), data).unwrap();
    }
    files
}

fn backup_dir(repo: &Repository, dir: &Path, parent: ParentChoice) -> cairn_core::BackupResult {
    let mut o = opts(vec![dir.to_path_buf()], vec![]);
    o.parent = parent;
    let r = backup(repo, o, &NoProgress).unwrap();
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    r
}

fn content(node: &Node) -> Vec<Extent> {
    match &node.kind {
        NodeKind::File { content } => content.clone(),
        k => panic!("not a file: {k:?}"),
    }
}

fn node(repo: &Repository, r: &cairn_core::BackupResult, path: &Path) -> Node {
    resolve(repo, &r.id, &r.snapshot, path.to_str().unwrap()).unwrap()
}

#[test]
fn small_files_share_chunks_restore_exactly_and_keep_their_parts() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = small_tree(&src);
    let r1 = backup_dir(&repo, &src, ParentChoice::Auto);
    let s1 = r1.snapshot.summary.clone().unwrap();
    // Two directories of small files: a few chunks, not one blob per file.
    assert!(
        s1.added.data_blobs <= 4,
        "{} data blobs for 300 files",
        s1.added.data_blobs
    );
    let mut parts = 0;
    for (name, data) in &files {
        let n = node(&repo, &r1, &src.join(name));
        let c = content(&n);
        parts += c
            .iter()
            .filter(|e| matches!(e, Extent::Part { .. }))
            .count();
        assert!(c.len() <= 2, "{name}: {c:?}");
        assert_eq!(&dump(&repo, &n), data, "{name}");
    }
    assert!(parts >= 290, "{parts} parts");

    // A byte-exact restore.
    let out = tmp.path().join("out");
    let root = cairn_core::browse::root_node(&r1.snapshot);
    let o = RestoreOptions {
        target: out.clone(),
        ..RestoreOptions::default()
    };
    let (sum, _) = restore(&repo, &root, "/", &o, &NoProgress).unwrap();
    assert_eq!(sum.errors, 0);
    let restored = out.join(src.strip_prefix("/").unwrap());
    for (name, data) in &files {
        assert_eq!(&std::fs::read(restored.join(name)).unwrap(), data, "{name}");
    }
    // Restoring again over the same files writes nothing: each part is compared.
    let (again, _) = restore(&repo, &root, "/", &o, &NoProgress).unwrap();
    assert_eq!(again.errors, 0);
    assert_eq!(again.bytes_written, 0, "{again:?}");
    assert_eq!(again.files_unchanged, files.len() as u64, "{again:?}");

    // One file changed, one only chmod-ed: the changed one is stored alone, the other
    // keeps its parts, and diff tells them apart.
    let (changed, chmod) = (&files[1].0, &files[2].0);
    std::fs::write(src.join(changed), b"new contents\n").unwrap();
    std::fs::set_permissions(src.join(chmod), std::fs::Permissions::from_mode(0o600)).unwrap();
    let r2 = backup_dir(&repo, &src, ParentChoice::Auto);
    let s2 = r2.snapshot.summary.clone().unwrap();
    assert_eq!(s2.files_changed, 1, "{s2:?}");
    assert_eq!(s2.added.data_blobs, 1, "{:?}", s2.added);
    // Both are read: the chmod-ed one to compare with its parts.
    assert_eq!(s2.bytes_read, 13 + files[2].1.len() as u64, "{s2:?}");
    assert_eq!(
        content(&node(&repo, &r2, &src.join(chmod))),
        content(&node(&repo, &r1, &src.join(chmod)))
    );
    let changes = diff(&repo, &r1.snapshot, &r2.snapshot).unwrap();
    let kind = |name: &str| {
        let p = format!("{}/{name}", src.display());
        changes.iter().find(|c| c.path == p).map(|c| c.kind)
    };
    assert_eq!(kind(changed), Some(ChangeKind::Changed));
    assert_eq!(kind(chmod), Some(ChangeKind::MetadataOnly));
    assert_eq!(kind(&files[3].0), None);

    // Read again without a parent, the same bytes grouped anew are still equal in diff.
    let r3 = backup_dir(&repo, &src, ParentChoice::None);
    let changes = diff(&repo, &r2.snapshot, &r3.snapshot).unwrap();
    assert!(
        changes.iter().all(|c| c.kind != ChangeKind::Changed),
        "{changes:#?}"
    );
    let report = check_read_data(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn a_version_2_repository_never_receives_a_part() {
    let (_be, repo) = mem_repo(&InitOptions {
        version: 2,
        ..InitOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = small_tree(&src);
    let r = backup_dir(&repo, &src, ParentChoice::Auto);
    for (name, data) in &files {
        let n = node(&repo, &r, &src.join(name));
        assert!(
            content(&n)
                .iter()
                .all(|e| !matches!(e, Extent::Part { .. })),
            "{name}"
        );
        assert_eq!(&dump(&repo, &n), data);
    }
}

/// A tree whose file names bytes past the end of its blob (or none at all) is refused by
/// check, restore and dump, and nothing out of bounds is read.
#[test]
fn a_part_outside_its_blob_is_refused() {
    let (be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = small_tree(&src);
    let r = backup_dir(&repo, &src, ParentChoice::Auto);
    let good = node(&repo, &r, &src.join(&files[1].0));
    let Extent::Part { id, offset, len } = content(&good)[0] else {
        panic!("{:?}", content(&good));
    };
    let blob_len = repo.index().get(&id).unwrap().raw_len as u64;
    let forged = |offset: u64, len: u64| {
        let mut n = good.clone();
        n.name = b"f".to_vec();
        n.size = len;
        n.kind = NodeKind::File {
            content: vec![Extent::Part { id, offset, len }],
        };
        n
    };
    for (offset, len) in [
        (blob_len - 10, 11),          // runs past the end
        (blob_len, 1),                // starts at the end
        (u64::MAX - 2, 5),            // wraps around
        (offset, 0),                  // names nothing
        (offset + 1, len + blob_len), // longer than the blob
    ] {
        let hostile = forged(offset, len);
        let tree = Tree {
            nodes: vec![hostile.clone()],
        };
        let tree_id = cairn_core::fuzzing::store_tree(&repo, &tree).unwrap();
        let mut snap = r.snapshot.clone();
        snap.tree = tree_id;
        snap.paths = vec!["/".into()];
        let snap_id = repo.save_snapshot(&snap).unwrap();

        // check names the file.
        let repo = open(&be).unwrap();
        let report = check(&repo, &CheckOptions::default(), &NoProgress).unwrap();
        assert!(
            report
                .errors
                .iter()
                .any(|e| e.contains("outside data blob")),
            "({offset}, {len}): {:?}",
            report.errors
        );
        // dump refuses it.
        let mut out = Vec::new();
        assert!(
            dump_file(&repo, &hostile, &mut out).is_err(),
            "({offset}, {len})"
        );
        // restore fails the file and leaves nothing that looks restored.
        let target = tmp.path().join(format!("out-{offset}-{len}"));
        let o = RestoreOptions {
            target: target.clone(),
            ..RestoreOptions::default()
        };
        let failed = match restore(&repo, &hostile, "f", &o, &NoProgress) {
            Ok((s, _)) => s.errors > 0,
            Err(_) => true,
        };
        assert!(failed, "({offset}, {len})");
        assert!(!target.join("f").exists());
        // A reader at any offset errs instead of slicing out of bounds.
        let reader = cairn_core::content::ContentReader::new(&repo, &content(&hostile));
        assert!(reader.is_err(), "({offset}, {len})");
        repo.remove_snapshot(&snap_id).unwrap();
    }
}

/// A copy keeps parts into a version 3 repository made like the source (same trees, no
/// file read again) and cuts the files again into a version 2 one, which never holds a
/// part; both restore the same bytes.
#[test]
fn copy_keeps_parts_only_where_the_destination_can_hold_them() {
    let (_be, src) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    let files = small_tree(&dir);
    let r = backup_dir(&src, &dir, ParentChoice::Auto);
    let all = vec![(r.id, r.snapshot.clone())];
    for version in [3, 2] {
        let dbe = std::sync::Arc::new(cairn_testing::MemBackend::new());
        let dst = Repository::init_like(
            dbe.clone() as std::sync::Arc<dyn cairn_core::Backend>,
            &password(),
            &InitOptions {
                version,
                ..InitOptions::default()
            },
            &src,
        )
        .unwrap();
        let report = cairn_core::copy(&src, &dst, &all, 2).unwrap();
        assert_eq!(report.rechunked, version < 3, "version {version}");
        let (_, copied_id) = report.copied[0];
        let copied = dst.load_snapshot(&copied_id.to_hex()).unwrap();
        if version == 3 {
            assert_eq!(copied.tree, r.snapshot.tree);
        }
        let mut parts = 0;
        for (name, data) in &files {
            let path = dir.join(name);
            let n = resolve(&dst, &copied_id, &copied, path.to_str().unwrap()).unwrap();
            parts += content(&n)
                .iter()
                .filter(|e| matches!(e, Extent::Part { .. }))
                .count();
            assert_eq!(&dump(&dst, &n), data, "{name} in version {version}");
        }
        if version == 3 {
            assert!(parts >= 290, "{parts} parts");
        } else {
            assert_eq!(parts, 0);
        }
        assert!(check_read_data(&dst).errors.is_empty());
    }
}

//! `diff` between snapshots and `stats` of snapshots, on real directory trees.

mod common;

use cairn_core::{
    backup, diff, diff_trees, stats, Change, ChangeKind, ChunkerParams, DiffSummary, InitOptions,
    NoProgress, ParentChoice, Repository,
};
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Tiny chunks, so that a file of a few hundred KiB has its extents in list blobs.
const TINY: ChunkerParams = ChunkerParams {
    min_size: 64,
    avg_size: 256,
    max_size: 1024,
};

fn backup_dir(repo: &Repository, dir: &Path) -> cairn_core::BackupResult {
    let mut o = opts(vec![dir.to_path_buf()], vec![]);
    // Read every file again: equal contents must give equal extent lists anyway.
    o.parent = ParentChoice::None;
    backup(repo, o, &NoProgress).unwrap()
}

/// The changes below `dir` (not `dir` itself, nor its ancestors, whose modification
/// times other tests change), as (path relative to `dir`, kind).
fn below(dir: &Path, changes: &[Change]) -> Vec<(String, ChangeKind)> {
    let prefix = format!("{}/", dir.display());
    changes
        .iter()
        .filter(|c| c.path.starts_with(&prefix) && c.path.len() > prefix.len())
        .map(|c| (c.path[prefix.len()..].to_string(), c.kind))
        .collect()
}

#[test]
fn diff_reports_each_change_once_with_its_kind() {
    let (_be, repo) = mem_repo(&InitOptions {
        chunker_files: TINY,
        chunker_streams: TINY,
        ..InitOptions::default()
    });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let w = |rel: &str, data: &[u8]| std::fs::write(dir.join(rel), data).unwrap();
    let big = random_bytes(1, 1 << 20); // ~4,000 chunks: in list blobs
    w("big.bin", &big);
    w("edit-big.bin", &big);
    w("keep.txt", b"unchanged");
    w("change.txt", b"before");
    w("gone.txt", b"removed later");
    w("mode.txt", b"chmod later");
    w("link.txt", b"becomes a symlink");
    for d in ["keepdir", "gonedir", "gonedir/deep", "grows", "dir2file"] {
        std::fs::create_dir(dir.join(d)).unwrap();
    }
    w("keepdir/a", b"a");
    w("gonedir/b", b"b");
    w("gonedir/deep/c", b"c");
    w("grows/old", b"old");
    w("dir2file/x", b"x");
    let r1 = backup_dir(&repo, dir);

    // Make the changes.
    let mut edited = big.clone();
    edited[600_000..600_100].fill(7);
    w("edit-big.bin", &edited);
    w("change.txt", b"after!");
    std::fs::remove_file(dir.join("gone.txt")).unwrap();
    std::fs::set_permissions(dir.join("mode.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::remove_file(dir.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("keep.txt", dir.join("link.txt")).unwrap();
    std::fs::remove_dir_all(dir.join("gonedir")).unwrap();
    std::fs::create_dir_all(dir.join("newdir/inner")).unwrap();
    w("newdir/inner/n", b"n");
    w("grows/new", b"new");
    std::fs::remove_dir_all(dir.join("dir2file")).unwrap();
    w("dir2file", b"now a file");
    w("added.txt", b"added");
    let r2 = backup_dir(&repo, dir);

    let changes = diff(&repo, &r1.snapshot, &r2.snapshot).unwrap();
    let got = below(dir, &changes);
    use ChangeKind::*;
    let want: Vec<(String, ChangeKind)> = [
        ("added.txt", Added),
        ("change.txt", Changed),
        ("dir2file", TypeChanged),
        ("edit-big.bin", Changed),
        ("gone.txt", Removed),
        ("gonedir/", Removed),
        // A directory whose entries changed has a new modification time.
        ("grows/", MetadataOnly),
        ("grows/new", Added),
        ("link.txt", TypeChanged),
        ("mode.txt", MetadataOnly),
        ("newdir/", Added),
    ]
    .into_iter()
    .map(|(p, k)| (p.to_string(), k))
    .collect();
    assert_eq!(got, want, "all changes: {changes:#?}");

    // The other direction swaps added and removed.
    let back = diff(&repo, &r2.snapshot, &r1.snapshot).unwrap();
    let back = below(dir, &back);
    assert!(back.contains(&("gonedir/".into(), Added)), "{back:?}");
    assert!(back.contains(&("newdir/".into(), Removed)), "{back:?}");
    assert!(back.contains(&("gone.txt".into(), Added)), "{back:?}");
    assert!(back.contains(&("edit-big.bin".into(), Changed)), "{back:?}");

    // A snapshot against itself, and two snapshots of unchanged files: nothing.
    assert!(diff(&repo, &r2.snapshot, &r2.snapshot).unwrap().is_empty());
    let r3 = backup_dir(&repo, dir);
    let again = diff(&repo, &r2.snapshot, &r3.snapshot).unwrap();
    assert!(below(dir, &again).is_empty(), "{again:#?}");

    let sum = DiffSummary::of(&changes);
    assert!(
        sum.added >= 3 && sum.removed >= 2 && sum.changed == 2,
        "{sum:?}"
    );
    assert_eq!(sum.type_changed, 2);
    assert_eq!(sum.total(), changes.len());
}

#[test]
fn diff_of_equal_trees_reads_nothing() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    // A tree id that is not in the repository: equal ids must not be loaded.
    let id = cairn_core::Id::of_file(b"no such tree");
    assert!(diff_trees(&repo, &id, &id).unwrap().is_empty());
    assert!(diff_trees(&repo, &id, &cairn_core::Id::default()).is_err());
}

#[test]
fn stats_count_sizes_and_deduplicate_across_snapshots() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let a = random_bytes(2, 300_000);
    let text = log_lines(200_000);
    std::fs::write(dir.join("a.bin"), &a).unwrap();
    std::fs::write(dir.join("copy.bin"), &a).unwrap();
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::fs::write(dir.join("sub/log.txt"), &text).unwrap();
    // A sparse file: its size counts, its hole stores nothing.
    let f = std::fs::File::create(dir.join("sparse")).unwrap();
    f.set_len(4 << 20).unwrap();
    drop(f);
    std::os::unix::fs::symlink("a.bin", dir.join("link")).unwrap();
    let files_size = (2 * a.len() + text.len() + (4 << 20)) as u64;

    let r1 = backup_dir(&repo, dir);
    let one = stats(&repo, &[(r1.id, r1.snapshot.clone())]).unwrap();
    let s1 = &one.snapshots[0].usage;
    assert_eq!(one.snapshots[0].id, r1.id);
    assert_eq!(s1.files, 4);
    assert_eq!(s1.others, 1);
    // The ancestors of the directory are in the snapshot too.
    let ancestors = dir.components().count() as u64 - 1;
    assert_eq!(s1.dirs, ancestors + 1);
    assert_eq!(s1.restore_size, files_size);
    // The copy and the hole are stored once / not at all: unique plaintext is about a
    // and the log (plus a little for trees).
    let unique = (a.len() + text.len()) as u64;
    assert!(
        s1.dedup_size >= unique && s1.dedup_size < unique + (64 << 10),
        "{s1:?}"
    );
    assert!(s1.dedup_ratio > 2.0, "{s1:?}");
    assert!(s1.compression_ratio > 1.2, "log lines compress: {s1:?}");
    assert!(
        s1.data_blobs >= 2 && s1.tree_blobs >= ancestors + 2,
        "{s1:?}"
    );
    assert_eq!(one.total, *s1, "one snapshot: the total is that snapshot");

    // A second snapshot of the same data adds only trees (new times in the root).
    let r2 = backup_dir(&repo, dir);
    let both = stats(
        &repo,
        &[(r1.id, r1.snapshot.clone()), (r2.id, r2.snapshot.clone())],
    )
    .unwrap();
    let (s1, s2, t) = (
        &both.snapshots[0].usage,
        &both.snapshots[1].usage,
        &both.total,
    );
    assert_eq!(s1.dedup_size, s2.dedup_size);
    assert_eq!(t.restore_size, 2 * files_size);
    assert_eq!(t.files, 8);
    assert_eq!(t.data_blobs, s1.data_blobs, "data counted once");
    assert!(
        t.dedup_size < s1.dedup_size + (16 << 10),
        "two snapshots of the same data do not double it: {t:?}"
    );
    assert!(t.stored_size < s1.stored_size + s2.stored_size);
    assert!(t.dedup_ratio > 2.0 * s1.dedup_ratio * 0.9, "{t:?}");
    let json = serde_json::to_value(&both).unwrap();
    assert_eq!(json["total"]["restore_size"], 2 * files_size);
    assert_eq!(json["snapshots"][1]["id"], r2.id.to_hex());
    assert!(json["snapshots"][0]["dedup_size"].is_u64());
}

#[test]
fn stats_count_list_blobs_as_metadata() {
    let (_be, repo) = mem_repo(&InitOptions {
        chunker_files: TINY,
        chunker_streams: TINY,
        ..InitOptions::default()
    });
    // ~12,000 chunks of 256 bytes: at least three lists (at most 4,096 extents each).
    let data = random_bytes(3, 3 << 20);
    let r = run_backup(
        &repo,
        opts(vec![], vec![reader_stream("big", data.clone())]),
    );
    let st = stats(&repo, &[(r.id, r.snapshot.clone())]).unwrap();
    let u = &st.total;
    assert_eq!(u.files, 1);
    assert_eq!(u.restore_size, data.len() as u64);
    // Thousands of data blobs, in more than one list, plus the root tree.
    assert!(u.data_blobs > 5000, "{u:?}");
    assert!(u.tree_blobs > 3, "lists are metadata blobs: {u:?}");
    assert!(u.dedup_size > data.len() as u64, "{u:?}");
}

//! Copy between repositories: every copied snapshot reads back as in the source; a
//! destination made like the source keeps blob ids and delta chains and reads each
//! missing blob once; copying again copies nothing; a destination that cuts blobs
//! otherwise gets every file cut again.

mod common;

use cairn_core::{copy, Backend, FileKind, Id, InitOptions, Repository, Snapshot};
use cairn_testing::MemBackend;
use common::*;
use std::sync::Arc;

/// Three nights of a directory of files and a dump that changes a little each night.
fn source() -> (tempfile::TempDir, Arc<MemBackend>, Repository) {
    let dir = tempfile::tempdir().unwrap();
    let (be, repo) = mem_repo(&InitOptions::default());
    let mut dump = log_lines(3 << 20);
    for night in 0..3u8 {
        std::fs::write(
            dir.path().join("a.bin"),
            random_bytes(night as u64, 300_000),
        )
        .unwrap();
        std::fs::write(dir.path().join("same.txt"), b"unchanged\n").unwrap();
        std::fs::create_dir_all(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/log"), log_lines(500_000)).unwrap();
        for k in 0..40 {
            let at = (k * 70_001 + night as usize * 13) % dump.len();
            dump[at] = b'A' + night;
        }
        run_backup(
            &repo,
            opts(
                vec![dir.path().to_path_buf()],
                vec![reader_stream("db/dump.sql", dump.clone())],
            ),
        );
    }
    (dir, be, repo)
}

fn snapshots(repo: &Repository) -> Vec<(Id, Snapshot)> {
    repo.snapshots().unwrap()
}

/// Every file of a tree with its contents, by path.
fn files(r: &Repository, tree: &Id, path: &str, out: &mut Vec<(String, Vec<u8>)>) {
    for node in r.load_tree(tree).unwrap().nodes {
        let p = format!("{path}/{}", String::from_utf8_lossy(&node.name));
        match &node.kind {
            cairn_core::NodeKind::Dir { subtree } => files(r, subtree, &p, out),
            cairn_core::NodeKind::File { .. } => out.push((p, dump(r, &node))),
            _ => {}
        }
    }
}

/// Every file and stream of `a` in `ra` reads back the same in `b` of `rb`.
fn same_contents(ra: &Repository, a: &(Id, Snapshot), rb: &Repository, b: &(Id, Snapshot)) {
    let (mut fa, mut fb) = (Vec::new(), Vec::new());
    files(ra, &a.1.tree, "", &mut fa);
    files(rb, &b.1.tree, "", &mut fb);
    fa.sort();
    fb.sort();
    assert!(fa.len() >= 4, "{} files", fa.len());
    assert!(fa == fb, "contents differ");
}

fn deltas(be: &MemBackend, repo: &Repository) -> usize {
    be.names(FileKind::Index)
        .iter()
        .flat_map(|n| repo.read_index_file(n).unwrap())
        .flat_map(|(_, es)| es)
        .filter(|e| e.base.is_some())
        .count()
}

#[test]
fn a_destination_made_like_the_source_keeps_ids_and_deltas() {
    let (_dir, sbe, src) = source();
    src.load_index().unwrap();
    let dbe = Arc::new(MemBackend::new());
    let dst = Repository::init_like(
        dbe.clone() as Arc<dyn Backend>,
        &password(),
        &InitOptions::default(),
        &src,
    )
    .unwrap();
    assert!(dst.chunks_like(&src));
    let all = snapshots(&src);
    // First only the oldest (an interrupted copy), then everything.
    let first = copy(&src, &dst, &all[..1], 2).unwrap();
    assert_eq!(first.copied.len(), 1);
    assert!(!first.rechunked);
    let rest = copy(&src, &dst, &all, 2).unwrap();
    assert_eq!(rest.skipped, vec![all[0].0]);
    assert_eq!(rest.copied.len(), 2);
    // Each blob read once over both runs: no more than the source holds.
    let held = src.index().len() as u64;
    assert!(
        first.blobs_read + rest.blobs_read <= held,
        "read {} + {} of {held}",
        first.blobs_read,
        rest.blobs_read
    );
    let copies = snapshots(&dst);
    assert_eq!(copies.len(), 3);
    for (s, d) in all.iter().zip(&copies) {
        assert_eq!(d.1.tree, s.1.tree, "same ids, same tree");
        assert_eq!(d.1.original, Some(s.0));
        same_contents(&src, s, &dst, d);
    }
    assert!(deltas(&sbe, &src) > 0);
    assert!(
        deltas(&dbe, &dst) > 0,
        "the copied nights lost their deltas"
    );
    assert!(check_read_data(&dst).errors.is_empty());
    // Again: nothing to do.
    let again = copy(&src, &dst, &all, 2).unwrap();
    assert!(again.copied.is_empty());
    assert_eq!(again.added.bytes_stored, 0);
    // A copy of the copy knows the originals too.
    let (_b3, third) = mem_repo(&InitOptions::default());
    copy(&dst, &third, &copies, 2).unwrap();
    let back = copy(&third, &dst, &snapshots(&third), 2).unwrap();
    assert_eq!(back.skipped.len(), 3);
}

#[test]
fn a_destination_that_cuts_otherwise_gets_every_file_cut_again() {
    let (_dir, _sbe, src) = source();
    let (_dbe, dst) = mem_repo(&InitOptions::default());
    assert!(!dst.chunks_like(&src));
    let all = snapshots(&src);
    let r = copy(&src, &dst, &all, 2).unwrap();
    assert!(r.rechunked);
    assert_eq!(r.copied.len(), 3);
    let copies = snapshots(&dst);
    for (s, d) in all.iter().zip(&copies) {
        assert_ne!(d.1.tree, s.1.tree);
        same_contents(&src, s, &dst, d);
    }
    assert!(check_read_data(&dst).errors.is_empty());
}

//! Long contents: runs of extents stored as list blobs, written, read back, checked and
//! deduplicated. The repositories here chunk into tiny pieces (256 bytes on average), so
//! a few MiB make the tens of thousands of chunks that a many-GiB file would.

mod common;

use cairn_core::content::{decode_list, LIST_MAX};
use cairn_core::{
    backup, check, restore, BlobKind, CheckOptions, ChunkerParams, Extent, InitOptions, NoProgress,
    NodeKind, ParentChoice, Repository, RestoreOptions,
};
use common::*;

const TINY: ChunkerParams = ChunkerParams {
    min_size: 64,
    avg_size: 256,
    max_size: 1024,
};

fn tiny_repo() -> (std::sync::Arc<cairn_testing::MemBackend>, Repository) {
    mem_repo(&InitOptions {
        chunker_files: TINY,
        chunker_streams: TINY,
        ..InitOptions::default()
    })
}

fn lists(content: &[Extent]) -> Vec<cairn_core::Id> {
    cairn_core::content::lists_in(content).collect()
}

fn content(node: &cairn_core::Node) -> &[Extent] {
    match &node.kind {
        NodeKind::File { content } => content,
        k => panic!("not a file: {k:?}"),
    }
}

#[test]
fn a_long_stream_is_stored_as_lists_and_reads_back_exactly() {
    let (_be, repo) = tiny_repo();
    let data = random_bytes(1, 6 << 20); // ~24,000 chunks
    let r = run_backup(
        &repo,
        opts(vec![], vec![reader_stream("big", data.clone())]),
    );
    let node = node_at(&repo, &r.id, &r.snapshot, "big");
    let c = content(&node);
    assert!(
        c.len() < 2 * LIST_MAX,
        "the node holds {} extents: runs should be in lists",
        c.len()
    );
    assert!(!lists(c).is_empty());
    for id in lists(c) {
        let list = decode_list(&repo.read_blob(&id).unwrap(), "list").unwrap();
        assert!(list.len() <= LIST_MAX);
        assert_eq!(repo.index().get(&id).unwrap().kind, BlobKind::Tree);
    }
    assert_eq!(
        data_ids(&repo, &node),
        whole_buffer_ids(&repo, repo.streams_chunker(), &data),
        "the lists hold the chunks in order"
    );
    assert!(dump(&repo, &node) == data);

    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    let o = RestoreOptions {
        target: target.clone(),
        ..RestoreOptions::default()
    };
    restore(&repo, &node, "big", &o, &NoProgress).unwrap();
    let restored = std::fs::read(target.join("big")).unwrap();
    assert!(restored == data, "restored stream differs");
    // A second restore over the complete file rewrites nothing.
    let (s, _) = restore(&repo, &node, "big", &o, &NoProgress).unwrap();
    assert_eq!(s.bytes_written, 0);

    let report = check_read_data(&repo);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
}

#[test]
fn an_edit_in_a_large_file_adds_only_the_lists_around_it() {
    let (_be, repo) = tiny_repo();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("disk.img");
    let mut data = random_bytes(2, 6 << 20);
    std::fs::write(&path, &data).unwrap();
    let backup_file = |parent| {
        let mut o = opts(vec![tmp.path().to_path_buf()], vec![]);
        o.parent = parent;
        backup(&repo, o, &NoProgress).unwrap()
    };
    let first = backup_file(ParentChoice::None);
    let node1 = node_at(&repo, &first.id, &first.snapshot, path.to_str().unwrap());
    let lists1 = lists(content(&node1)).len();
    assert!(lists1 > 5, "{lists1} lists");

    // Change 100 bytes in the middle.
    let mid = data.len() / 2;
    for b in &mut data[mid..mid + 100] {
        *b ^= 0xff;
    }
    std::fs::write(&path, &data).unwrap();
    let second = backup_file(ParentChoice::Auto);
    let added = second.snapshot.summary.as_ref().unwrap().added;
    // New trees: the root, the directories down to the file, and the lists that hold
    // the changed chunks (one per level). Not all of the ~20 lists of the file.
    let depth = path.components().count() as u64;
    assert!(
        added.tree_blobs <= depth + 4,
        "{} new tree and list blobs for a 100-byte change",
        added.tree_blobs
    );
    let node2 = node_at(&repo, &second.id, &second.snapshot, path.to_str().unwrap());
    assert!(dump(&repo, &node2) == data);
    // And an unchanged file keeps its lists without being read.
    let third = backup_file(ParentChoice::Auto);
    let s = third.snapshot.summary.as_ref().unwrap();
    assert_eq!(s.bytes_read, 0);
    assert_eq!(s.files_unchanged, 1);
}

#[test]
fn a_missing_or_lying_list_is_reported_and_never_restored_as_zeros() {
    let (be, repo) = tiny_repo();
    let data = random_bytes(3, 3 << 20);
    let r = run_backup(&repo, opts(vec![], vec![reader_stream("s", data)]));
    let node = node_at(&repo, &r.id, &r.snapshot, "s");
    let list = lists(content(&node))[0];
    // Damage the list blob inside its pack.
    let loc = repo.index().get(&list).unwrap();
    let pack = repo.index().pack(loc.pack).id.to_hex();
    be.corrupt(cairn_core::FileKind::Pack, &pack, |d| {
        d[loc.offset as usize + 40] ^= 1
    });
    let repo = open(&be).unwrap();
    repo.load_index().unwrap();
    let report = check(&repo, &CheckOptions::default(), &NoProgress).unwrap();
    assert!(
        report.errors.iter().any(|e| e.contains(&list.short())),
        "{:#?}",
        report.errors
    );
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("out");
    let o = RestoreOptions {
        target: target.clone(),
        ..RestoreOptions::default()
    };
    let failed = match restore(&repo, &node, "s", &o, &NoProgress) {
        Ok((s, _)) => s.errors > 0,
        Err(_) => true,
    };
    assert!(failed, "restore reports the damaged list");
    assert!(
        !target.join("s").exists(),
        "a file that could not be restored is removed"
    );
}

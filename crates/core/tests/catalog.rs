//! The catalog attached to a repository: it saves work (snapshots and trees already read
//! are served from it) and is never trusted (the repository is the truth; a damaged,
//! stale or failing catalog changes no result and fails no operation).

mod common;

use cairn_core::browse::{resolve, walk};
use cairn_core::{
    check, prune, restore, Backend, BackendError, BlobKind, Catalog, CheckOptions, Error, FileKind,
    Id, InitOptions, NoProgress, Node, NodeKind, PruneOptions, Repository, RestoreOptions, Tree,
};
use cairn_testing::{MemBackend, MemCatalog};
use common::*;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Attaches `catalog`; its trouble callback panics (a working catalog must not fail).
fn attach(repo: &mut Repository, catalog: &Arc<MemCatalog>) {
    repo.attach_catalog(
        catalog.clone() as Arc<dyn Catalog>,
        Box::new(|e| panic!("the catalog failed: {e}")),
    );
}

/// Writes `files` (relative path → contents) below `dir`, creating directories.
fn write_tree(dir: &Path, files: &BTreeMap<&str, Vec<u8>>) {
    for (rel, data) in files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// A source directory with several levels of nested directories and a file in each.
fn nested_source(tmp: &Path) -> (PathBuf, BTreeMap<&'static str, Vec<u8>>) {
    let src = tmp.join("src");
    let mut files = BTreeMap::new();
    files.insert("top.txt", log_lines(5_000));
    files.insert("a/one.bin", random_bytes(11, 70_000));
    files.insert("a/b/two.bin", random_bytes(12, 30_000));
    files.insert("a/b/c/three.txt", b"three\n".to_vec());
    files.insert("a/b/c/d/four.bin", random_bytes(13, 10_000));
    files.insert("e/five.txt", log_lines(2_000));
    files.insert("e/f/six.bin", random_bytes(14, 50_000));
    write_tree(&src, &files);
    (src, files)
}

/// Every tree reachable from `root`, read from the repository itself: the distinct ids,
/// and how many directories (root included) lead to one.
fn reachable_trees(repo: &Repository, root: &Id) -> (HashSet<Id>, usize) {
    let mut ids = HashSet::new();
    let mut visits = 0;
    let mut stack = vec![*root];
    while let Some(id) = stack.pop() {
        visits += 1;
        ids.insert(id);
        for node in repo.load_tree_from_repository(&id).unwrap().nodes {
            if let NodeKind::Dir { subtree } = node.kind {
                stack.push(subtree);
            }
        }
    }
    (ids, visits)
}

/// A backend that counts the reads of pack files.
#[derive(Debug)]
struct CountingBackend {
    inner: Arc<MemBackend>,
    pack_reads: AtomicUsize,
}

impl CountingBackend {
    fn new(inner: Arc<MemBackend>) -> Arc<CountingBackend> {
        Arc::new(CountingBackend {
            inner,
            pack_reads: AtomicUsize::new(0),
        })
    }

    fn count(&self, kind: FileKind) {
        if kind == FileKind::Pack {
            self.pack_reads.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Backend for CountingBackend {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<(), BackendError> {
        self.inner.create()
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError> {
        self.inner.write(kind, name, data)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        self.count(kind);
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        self.count(kind);
        self.inner.read_range(kind, name, offset, len)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        self.inner.remove(kind, name)
    }
}

fn held_ids(catalog: &MemCatalog) -> HashSet<Id> {
    catalog
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect()
}

#[test]
fn snapshots_sync_with_the_repository() {
    let (be, mut a) = mem_repo(&InitOptions::default());
    let mut b = open(&be).unwrap();
    let cat_a = Arc::new(MemCatalog::new());
    let cat_b = Arc::new(MemCatalog::new());
    attach(&mut a, &cat_a);
    attach(&mut b, &cat_b);

    let tmp = tempfile::tempdir().unwrap();
    let (src, _) = nested_source(tmp.path());
    let first = run_backup(&a, opts(vec![src.clone()], vec![]));
    std::fs::write(src.join("top.txt"), b"changed\n").unwrap();
    let second = run_backup(&a, opts(vec![src.clone()], vec![]));
    assert_ne!(first.id, second.id);
    // A's own catalog learnt both as they were saved.
    assert_eq!(held_ids(&cat_a), HashSet::from([first.id, second.id]));

    // B has never read a snapshot: it finds both in the repository, and its catalog
    // now holds both.
    assert!(cat_b.snapshots().unwrap().is_empty());
    let listed: Vec<Id> = b
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, vec![first.id, second.id]);
    assert_eq!(held_ids(&cat_b), HashSet::from([first.id, second.id]));

    // Served from the catalog now, and equal to what the repository holds.
    let from_catalog = b.snapshots().unwrap();
    let (from_repo, damage) = b.snapshots_from_repository().unwrap();
    assert!(damage.is_empty());
    assert_eq!(from_catalog, from_repo);
    // And equal to what A saved, but for the float `duration_secs`: serde_json (without
    // `float_roundtrip`) may read it back one ULP off, in the repository as well.
    let same = |s: &cairn_core::Snapshot| {
        let mut s = s.clone();
        s.summary.as_mut().unwrap().duration_secs = 0.0;
        s
    };
    assert_eq!(same(&from_catalog[1].1), same(&second.snapshot));

    // A forgets the first; B no longer lists it, and B's catalog drops it.
    a.remove_snapshot(&first.id).unwrap();
    assert_eq!(held_ids(&cat_a), HashSet::from([second.id]));
    let listed: Vec<Id> = b
        .snapshots()
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(listed, vec![second.id]);
    assert_eq!(held_ids(&cat_b), HashSet::from([second.id]));
    assert!(matches!(
        b.find_snapshot(&first.id.to_hex()),
        Err(Error::SnapshotNotFound(_))
    ));
}

#[test]
fn second_backup_reads_parent_trees_from_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, files) = nested_source(tmp.path());
    let catalog = Arc::new(MemCatalog::new());
    let (be, mut repo) = mem_repo(&InitOptions::default());
    attach(&mut repo, &catalog);
    let first = run_backup(&repo, opts(vec![src.clone()], vec![]));
    let (trees, dirs) = reachable_trees(&repo, &first.snapshot.tree);
    drop(repo); // writes the pending trees
                // Every tree of the snapshot is in the catalog.
    let cached: HashSet<Id> = catalog.tree_ids().into_iter().collect();
    assert!(
        trees.is_subset(&cached),
        "{} trees not cached",
        trees.difference(&cached).count()
    );
    // At least the root, the 6 directories below src, src and its ancestors.
    assert!(trees.len() >= 8, "{} trees", trees.len());
    assert_eq!(catalog.tree_hits(), 0);

    // A freshly opened handle, on a backend that counts pack reads, with the same catalog.
    let counting = CountingBackend::new(be.clone());
    let mut repo = Repository::open(counting.clone() as Arc<dyn Backend>, &password()).unwrap();
    attach(&mut repo, &catalog);
    let second = run_backup(&repo, opts(vec![src.clone()], vec![]));
    let hits = catalog.tree_hits();
    let pack_reads = counting.pack_reads.load(Ordering::SeqCst);
    assert_eq!(second.snapshot.parent, Some(first.id));
    let sum = second.snapshot.summary.clone().unwrap();
    assert_eq!(sum.bytes_read, 0, "{sum:#?}");
    assert_eq!(sum.files_unchanged, files.len() as u64, "{sum:#?}");
    assert_eq!(sum.files_new + sum.files_changed, 0, "{sum:#?}");
    // Every directory of the parent was compared from the catalog, none from a pack.
    assert!(
        hits >= dirs as u64,
        "{hits} tree hits for {dirs} directories"
    );
    assert_eq!(pack_reads, 0, "the second backup read packs");
    // The same tree for the source (its ancestors, like /tmp, may change meanwhile).
    let path = src.to_str().unwrap();
    assert_eq!(
        resolve(&repo, &second.id, &second.snapshot, path)
            .unwrap()
            .kind,
        resolve(&repo, &first.id, &first.snapshot, path)
            .unwrap()
            .kind
    );
}

#[test]
fn damaged_cached_tree_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, _) = nested_source(tmp.path());
    let catalog = Arc::new(MemCatalog::new());
    let (be, mut repo) = mem_repo(&InitOptions::default());
    attach(&mut repo, &catalog);
    let r = run_backup(&repo, opts(vec![src.clone()], vec![]));
    let root = r.snapshot.tree;
    drop(repo);

    // A damaged row: one byte appended.
    catalog.corrupt_tree(&root);
    let mut repo = open(&be).unwrap();
    attach(&mut repo, &catalog);
    repo.load_index().unwrap();
    let want = repo.load_tree_from_repository(&root).unwrap();
    assert_eq!(repo.load_tree(&root).unwrap(), want);

    // A row holding another tree under the root's id: in clear (as a catalog of an older
    // cairn held rows), and another tree's sealed row moved to the root's id.
    let other = Arc::new(MemCatalog::new());
    other
        .put_trees(&[(root, Tree { nodes: vec![] }.encode())])
        .unwrap();
    let mut repo = open(&be).unwrap();
    attach(&mut repo, &other);
    repo.load_index().unwrap();
    let got = repo.load_tree(&root).unwrap();
    assert_eq!(other.tree_hits(), 1, "the catalog was not consulted");
    assert!(!got.nodes.is_empty());
    assert_eq!(got, want);
    drop(repo);
    let child = catalog.tree_ids().into_iter().find(|i| *i != root).unwrap();
    catalog.move_tree(&child, &root);
    let hits = catalog.tree_hits();
    let mut repo = open(&be).unwrap();
    attach(&mut repo, &catalog);
    repo.load_index().unwrap();
    assert_eq!(repo.load_tree(&root).unwrap(), want);
    assert_eq!(
        catalog.tree_hits(),
        hits + 1,
        "the catalog was not consulted"
    );
    // What a restore walks is the repository's tree too.
    let node = resolve(&repo, &r.id, &r.snapshot, src.to_str().unwrap()).unwrap();
    assert!(matches!(node.kind, NodeKind::Dir { .. }));
}

#[test]
fn cached_tree_not_in_index_is_not_used() {
    let (be, repo) = mem_repo(&InitOptions::default());
    drop(repo);
    let mut repo = open(&be).unwrap();
    let catalog = Arc::new(MemCatalog::new());
    attach(&mut repo, &catalog);
    repo.load_index().unwrap();
    let fake = Tree {
        nodes: vec![Node::synthetic(
            b"made-up".to_vec(),
            NodeKind::Dir {
                subtree: Id::default(),
            },
            0o040755,
            jiff::Timestamp::UNIX_EPOCH,
        )],
    };
    let bytes = fake.encode();
    let id = repo.blob_id(&bytes);
    // A well-formed row: the id is the keyed hash of its body.
    catalog.put_trees(&[(id, bytes)]).unwrap();
    assert!(repo.index().get(&id).is_none());
    match repo.load_tree(&id) {
        Err(Error::MissingBlob { .. }) => {}
        other => panic!("expected a missing blob, got {other:?}"),
    }
    assert_eq!(catalog.tree_hits(), 0);
}

#[test]
fn failing_catalog_never_fails_an_operation() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, files) = nested_source(tmp.path());
    let (be, repo) = mem_repo(&InitOptions::default());
    drop(repo);
    let mut repo = open(&be).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    repo.attach_catalog(
        Arc::new(MemCatalog::failing()),
        Box::new(move |e| {
            assert!(matches!(e, Error::Catalog(_)), "{e}");
            c.fetch_add(1, Ordering::SeqCst);
        }),
    );

    let first = run_backup(&repo, opts(vec![src.clone()], vec![]));
    let second = run_backup(&repo, opts(vec![src.clone()], vec![]));
    assert_eq!(second.snapshot.parent, Some(first.id));
    assert_eq!(second.snapshot.summary.as_ref().unwrap().bytes_read, 0);
    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), 2);
    let want = repo
        .load_tree_from_repository(&second.snapshot.tree)
        .unwrap();
    assert_eq!(repo.load_tree(&second.snapshot.tree).unwrap(), want);
    let mut listed = Vec::new();
    walk(&repo, &second.snapshot.tree, "", &mut |p, _| {
        listed.push(p.to_string());
        Ok(())
    })
    .unwrap();
    for rel in files.keys() {
        let full = format!("{}/{rel}", src.to_str().unwrap());
        assert!(listed.contains(&full), "{full} not listed");
    }
    let path = src.to_str().unwrap();
    let node = resolve(&repo, &second.id, &second.snapshot, path).unwrap();
    let target = tempfile::tempdir().unwrap();
    let o = RestoreOptions {
        target: target.path().join("out"),
        ..RestoreOptions::default()
    };
    let (sum, warnings) = restore(&repo, &node, path, &o, &NoProgress).unwrap();
    assert_eq!(sum.errors, 0, "{warnings:?}");
    for (rel, data) in &files {
        let got = std::fs::read(target.path().join("out").join(rel)).unwrap();
        assert!(got == *data, "{rel} differs");
    }
    repo.remove_snapshot(&first.id).unwrap();
    repo.flush_catalog();
    assert!(repo.catalog().is_none(), "a failed catalog is still in use");
    drop(repo);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn prune_drops_trees_of_forgotten_snapshots_from_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, _) = nested_source(tmp.path());
    let catalog = Arc::new(MemCatalog::new());
    let (be, mut repo) = mem_repo(&InitOptions::default());
    attach(&mut repo, &catalog);
    let first = run_backup(&repo, opts(vec![src.clone()], vec![]));
    std::fs::remove_dir_all(src.join("e")).unwrap();
    write_tree(
        &src,
        &BTreeMap::from([("g/h/seven.bin", random_bytes(15, 20_000))]),
    );
    std::fs::write(src.join("a/b/c/three.txt"), b"three, edited\n").unwrap();
    let second = run_backup(&repo, opts(vec![src.clone()], vec![]));
    let (kept, _) = reachable_trees(&repo, &second.snapshot.tree);
    let (forgotten, _) = reachable_trees(&repo, &first.snapshot.tree);
    repo.remove_snapshot(&first.id).unwrap();
    drop(repo);
    // Before prune the catalog holds trees only the forgotten snapshot used.
    let before: HashSet<Id> = catalog.tree_ids().into_iter().collect();
    let only_forgotten: HashSet<Id> = forgotten.difference(&kept).copied().collect();
    assert!(!only_forgotten.is_empty());
    assert!(only_forgotten.is_subset(&before));

    let mut repo = open(&be).unwrap();
    attach(&mut repo, &catalog);
    let l = repo.lock(true, "test", Duration::ZERO).unwrap();
    let r = prune(&repo, &l, &PruneOptions::default()).unwrap();
    drop(l);
    assert!(r.blobs_unused > 0, "{r:#?}");
    drop(repo);

    let after: HashSet<Id> = catalog.tree_ids().into_iter().collect();
    let stray: Vec<&Id> = after.difference(&kept).collect();
    assert!(
        stray.is_empty(),
        "{} trees of no snapshot stay cached",
        stray.len()
    );
    // The kept snapshot's trees are still there to be served.
    assert!(kept.is_subset(&after));
}

#[test]
fn check_reads_the_repository_not_the_catalog() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, _) = nested_source(tmp.path());
    let catalog = Arc::new(MemCatalog::new());
    let (be, mut repo) = mem_repo(&InitOptions::default());
    attach(&mut repo, &catalog);
    let r = run_backup(&repo, opts(vec![src.clone()], vec![]));
    let root = r.snapshot.tree;
    let (pack, at) = {
        let index = repo.index();
        let loc = index.get(&root).unwrap();
        assert_eq!(loc.kind, BlobKind::Tree);
        (
            index.pack(loc.pack).id.to_hex(),
            (loc.offset + loc.sealed_len / 2) as usize,
        )
    };
    drop(repo);
    assert!(catalog.tree_ids().contains(&root));
    be.corrupt(FileKind::Pack, &pack, |d| d[at] ^= 0x55);

    let mut repo = open(&be).unwrap();
    attach(&mut repo, &catalog);
    repo.load_index().unwrap();
    // The catalog would serve the good tree...
    assert!(repo.load_tree(&root).is_ok());
    assert!(repo.load_tree_from_repository(&root).is_err());
    // ...but check judges the repository.
    let report = check(&repo, &CheckOptions::default(), &NoProgress).unwrap();
    let short = root.short();
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains(&format!("tree {short}"))),
        "{:#?}",
        report.errors
    );
    assert_eq!(report.packs_read, 0, "a structure check read packs");
}

/// Every distinct tree reachable from `root`, with its plaintext as the repository holds it.
fn tree_plaintexts(repo: &Repository, root: &Id) -> Vec<(Id, Vec<u8>)> {
    let (ids, _) = reachable_trees(repo, root);
    ids.into_iter()
        .map(|id| (id, repo.read_blob(&id).unwrap()))
        .collect()
}

/// Reads back everything through the catalog and compares it with the repository.
fn assert_catalog_serves_the_repository(be: &Arc<MemBackend>, catalog: &Arc<MemCatalog>) {
    let mut repo = open(be).unwrap();
    attach(&mut repo, catalog);
    repo.load_index().unwrap();
    let (from_repo, damage) = repo.snapshots_from_repository().unwrap();
    assert!(damage.is_empty());
    assert_eq!(repo.snapshots().unwrap(), from_repo);
    for (_, snap) in &from_repo {
        for (id, _) in tree_plaintexts(&repo, &snap.tree) {
            assert_eq!(
                repo.load_tree(&id).unwrap(),
                repo.load_tree_from_repository(&id).unwrap()
            );
        }
    }
}

#[test]
fn catalog_rows_hold_no_plaintext() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    write_tree(
        &src,
        &BTreeMap::from([
            (
                "zq-secret-dir/zq-secret-file.txt",
                b"zq-secret-contents".to_vec(),
            ),
            ("other/zq-second-file.bin", random_bytes(3, 5_000)),
        ]),
    );
    std::os::unix::fs::symlink("/zq/secret/link/target", src.join("zq-link")).unwrap();
    let catalog = Arc::new(MemCatalog::new());
    let (_be, mut repo) = mem_repo(&InitOptions::default());
    attach(&mut repo, &catalog);
    let mut o = opts(vec![src.clone()], vec![]);
    o.tags = vec!["zq-secret-tag".into()];
    o.hostname = Some("zq-secret-host".into());
    let r = run_backup(&repo, o);
    assert!(repo.snapshots().unwrap().iter().any(|(id, _)| *id == r.id));
    drop(repo);
    let (snaps, trees) = catalog.rows();
    assert_eq!(snaps.len(), 1);
    assert!(trees.len() >= 3, "{} trees", trees.len());
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    for row in snaps
        .iter()
        .map(|r| &r.sealed)
        .chain(trees.iter().map(|(_, b)| b))
    {
        let src_path = src.as_os_str().as_encoded_bytes();
        for needle in [
            &b"zq-secret"[..],
            b"zq-second-file",
            b"/zq/secret",
            src_path,
        ] {
            assert!(
                !has(row, needle),
                "{:?} in a catalog row",
                String::from_utf8_lossy(needle)
            );
        }
    }
}

#[test]
fn a_sealed_row_that_does_not_open_is_a_miss() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, _) = nested_source(tmp.path());
    let catalog = Arc::new(MemCatalog::new());
    let (be, mut repo) = mem_repo(&InitOptions::default());
    attach(&mut repo, &catalog);
    let first = run_backup(&repo, opts(vec![src.clone()], vec![]));
    std::fs::write(src.join("a/b/c/three.txt"), b"three, edited\n").unwrap();
    let second = run_backup(&repo, opts(vec![src.clone()], vec![]));
    drop(repo);

    // Damaged rows: a bit flipped in every snapshot row, a byte added to every tree row.
    let (snaps, trees) = catalog.rows();
    assert_eq!(snaps.len(), 2);
    for row in &snaps {
        catalog.corrupt_snapshot(&row.id);
    }
    for (id, _) in &trees {
        catalog.corrupt_tree(id);
    }
    let (damaged_snaps, damaged_trees) = catalog.rows();
    assert_catalog_serves_the_repository(&be, &catalog);
    // Each damaged row that was read was replaced by a good one.
    let (snaps_after, trees_after) = catalog.rows();
    for row in &damaged_snaps {
        assert!(!snaps_after.contains(row), "a damaged snapshot row stayed");
    }
    for row in &damaged_trees {
        assert!(!trees_after.contains(row), "a damaged tree row stayed");
    }

    // Rows sealed under another key (a catalog of another repository, or of a key that
    // is not this repository's), holding the right plaintext all the same.
    let wrong = cairn_core::CatalogKey::new(&cairn_crypto::Key::random());
    let repo = open(&be).unwrap();
    repo.load_index().unwrap();
    let (from_repo, _) = repo.snapshots_from_repository().unwrap();
    let foreign = Arc::new(MemCatalog::new());
    let rows: Vec<_> = from_repo
        .iter()
        .map(|(id, s)| wrong.seal_snapshot(id, s))
        .collect();
    foreign.update_snapshots(&rows, &[]).unwrap();
    for (_, snap) in &from_repo {
        let sealed: Vec<(Id, Vec<u8>)> = tree_plaintexts(&repo, &snap.tree)
            .into_iter()
            .map(|(id, plain)| (id, wrong.seal_tree(&id, &plain)))
            .collect();
        foreign.put_trees(&sealed).unwrap();
    }
    drop(repo);
    let (wrong_snaps, wrong_trees) = foreign.rows();
    assert_catalog_serves_the_repository(&be, &foreign);
    let (snaps_after, trees_after) = foreign.rows();
    assert_eq!(snaps_after.len(), 2);
    assert!(snaps_after.iter().all(|r| !wrong_snaps.contains(r)));
    assert!(trees_after.iter().all(|r| !wrong_trees.contains(r)));
    assert!(foreign.tree_hits() >= wrong_trees.len() as u64);

    // And a backup with such a catalog still finds its parent and reads nothing again.
    for (id, _) in foreign.rows().1 {
        foreign.corrupt_tree(&id);
    }
    let mut repo = open(&be).unwrap();
    attach(&mut repo, &foreign);
    let third = run_backup(&repo, opts(vec![src.clone()], vec![]));
    assert_eq!(third.snapshot.parent, Some(second.id));
    assert_eq!(third.snapshot.summary.unwrap().bytes_read, 0);
    assert_ne!(first.id, second.id);
}

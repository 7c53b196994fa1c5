//! Sizes do not leak per file: the packs and index files a small backup writes are as
//! long whatever the size of the file and the number of blobs, the padding cannot be
//! changed undetected, and repositories keep working through check, repair and prune.

mod common;

use cairn_core::{FileKind, InitOptions, Repository};
use cairn_testing::MemBackend;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Sizes of the files of `kind` in `be` that are not in `before`.
fn new_sizes(be: &MemBackend, kind: FileKind, before: &BTreeSet<String>) -> Vec<usize> {
    be.names(kind)
        .into_iter()
        .filter(|n| !before.contains(n))
        .map(|n| be.read(kind, &n).unwrap().len())
        .collect()
}

fn names(be: &MemBackend, kind: FileKind) -> BTreeSet<String> {
    be.names(kind).into_iter().collect()
}

/// Backs up a directory holding `files` (name, contents) into the repository.
fn backup_files(repo: &Repository, dir: &Path, files: &[(&str, Vec<u8>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, data) in files {
        std::fs::write(dir.join(name), data).unwrap();
    }
    let r = run_backup(repo, opts(vec![dir.to_path_buf()], vec![]));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

use cairn_core::Backend as _;

#[test]
fn one_small_file_gives_packs_and_index_files_of_one_size() {
    let tmp = tempfile::tempdir().unwrap();
    let mut packs = Vec::new();
    let mut indexes = Vec::new();
    // A fresh repository, one file; then, in the same repository, one more new file
    // (the incremental backup an observer would watch).
    for (i, size) in [0usize, 1, 100, 1900, 10_000, 50_000]
        .into_iter()
        .enumerate()
    {
        let (be, repo) = mem_repo(&InitOptions::default());
        let dir = tmp.path().join(format!("src{i}"));
        backup_files(&repo, &dir, &[("a", random_bytes(i as u64, size))]);
        packs.extend(new_sizes(&be, FileKind::Pack, &BTreeSet::new()));
        indexes.extend(new_sizes(&be, FileKind::Index, &BTreeSet::new()));
        let (p0, i0) = (names(&be, FileKind::Pack), names(&be, FileKind::Index));
        backup_files(&repo, &dir, &[("b", random_bytes(100 + i as u64, size))]);
        packs.extend(new_sizes(&be, FileKind::Pack, &p0));
        indexes.extend(new_sizes(&be, FileKind::Index, &i0));
    }
    assert_eq!(packs.len(), 12, "one pack per backup");
    assert!(packs.iter().all(|&n| n == 64 << 10), "pack sizes {packs:?}");
    assert_eq!(indexes.len(), 12, "one index file per backup");
    assert!(
        indexes.iter().all(|&n| n == 4 << 10),
        "index sizes {indexes:?}"
    );
}

#[test]
fn index_files_do_not_give_the_number_of_new_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let sizes: Vec<(usize, Vec<usize>)> = [1usize, 3, 20]
        .into_iter()
        .map(|n| {
            let (be, repo) = mem_repo(&InitOptions::default());
            let files: Vec<(String, Vec<u8>)> = (0..n)
                // Each a blob of its own: above the size under which the files of a
                // directory share chunks.
                .map(|j| (format!("f{j}"), random_bytes(j as u64 + 7, 300 << 10)))
                .collect();
            let files: Vec<(&str, Vec<u8>)> =
                files.iter().map(|(n, d)| (n.as_str(), d.clone())).collect();
            backup_files(&repo, &tmp.path().join(format!("s{n}")), &files);
            let blobs = repo.index().len();
            (blobs, new_sizes(&be, FileKind::Index, &BTreeSet::new()))
        })
        .collect();
    // 1, 3 and 20 data blobs (and the trees): one index file each, all as long.
    assert_eq!(sizes[0].0 + 2, sizes[1].0);
    assert_eq!(sizes[0].0 + 19, sizes[2].0);
    for (_, s) in &sizes {
        assert_eq!(s, &vec![4096], "{sizes:?}");
    }
}

#[test]
fn padding_cannot_be_changed_undetected_and_repositories_keep_working() {
    let (be, repo) = mem_repo(&InitOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("src");
    backup_files(&repo, &dir, &[("a", random_bytes(1, 1000))]);
    let pack = be.names(FileKind::Pack).pop().unwrap();
    let index = be.names(FileKind::Index).pop().unwrap();
    let bytes = be.read(FileKind::Pack, &pack).unwrap();
    assert_eq!(bytes[4], 3, "padded packs are format version 3");
    assert_eq!(be.read(FileKind::Index, &index).unwrap()[4], 3);
    // What is in clear at the end of the pack: the header's length, padded as well.
    let hlen = u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()) as usize;
    assert_eq!((bytes.len(), hlen), (64 << 10, 4 << 10));
    // A 1000-byte file and its trees take the first 2 KiB or so; the pad fills the pack
    // up to the header, whose own padding follows its few entries.
    let in_pad = bytes.len() / 2;
    let in_header_padding = bytes.len() - 4 - hlen / 2;

    // check --read-data, repair index and prune accept padded packs and index files.
    assert!(check_read_data(&repo).errors.is_empty());
    let l = repo.lock(true, "test", Duration::ZERO).unwrap();
    let r = cairn_core::repair_index(&repo, &l).unwrap();
    assert!(r.bad_packs.is_empty(), "{:?}", r.bad_packs);
    drop(l);
    let repo = open(&be).unwrap();
    let l = repo.lock(true, "test", Duration::ZERO).unwrap();
    let p = cairn_core::prune(&repo, &l, &cairn_core::PruneOptions::default()).unwrap();
    drop(l);
    assert_eq!(
        (p.packs_deleted, p.packs_repacked),
        (0, 0),
        "padding is not unused data"
    );
    assert!(check_read_data(&repo).errors.is_empty());

    // A byte of the pack's pad, or of its header's padding, flipped: check --read-data
    // names the pack.
    for (at, part) in [(in_pad, "(padding)"), (in_header_padding, "(header)")] {
        let damaged = copy_backend(&be);
        let pack = damaged.names(FileKind::Pack).pop().unwrap();
        damaged.corrupt(FileKind::Pack, &pack, |d| d[at] ^= 0x01);
        let report = check_read_data(&open(&damaged).unwrap());
        let short = &pack[..8];
        assert!(
            report.errors.iter().any(|e| e.contains(short)
                && e.contains(part)
                && e.contains("corrupt or has been tampered with")),
            "{:?}",
            report.errors
        );
    }
    let damaged = copy_backend(&be);
    let pack = damaged.names(FileKind::Pack).pop().unwrap();
    damaged.corrupt(FileKind::Pack, &pack, |d| d[in_pad] ^= 0x01);
    // Even renamed to its new hash (a provider covering its tracks), the pack's header
    // fails to authenticate: repair index leaves it out instead of indexing it.
    let renamed = copy_backend(&damaged);
    let bad = renamed.read(FileKind::Pack, &pack).unwrap();
    renamed.remove(FileKind::Pack, &pack).unwrap();
    let new_name = cairn_core::Id::of_file(&bad).to_hex();
    renamed.write(FileKind::Pack, &new_name, &bad).unwrap();
    let repo2 = open(&renamed).unwrap();
    let l = repo2.lock(true, "test", Duration::ZERO).unwrap();
    let r = cairn_core::repair_index(&repo2, &l).unwrap();
    assert_eq!(r.bad_packs.len(), 1, "{r:?}");
    assert!(r.bad_packs[0].contains("corrupt"), "{:?}", r.bad_packs);

    // A byte of the index file's padding flipped: the index file fails to open.
    let damaged = copy_backend(&be);
    let index = damaged.names(FileKind::Index).pop().unwrap();
    let len = damaged.read(FileKind::Index, &index).unwrap().len();
    damaged.corrupt(FileKind::Index, &index, |d| d[len - 100] ^= 0x01);
    let repo3 = open(&damaged).unwrap();
    let err = repo3.read_index_file(&index).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    let report = check_read_data(&repo3);
    assert!(
        report.errors.iter().any(|e| e.contains(&index[..8])),
        "{:?}",
        report.errors
    );
}

/// The seeds of the fuzz targets for padded files decode (they are what the fuzzers
/// start from), and random mutations of them give errors, never panics, with the same
/// properties the targets assert.
#[test]
fn padded_fuzz_seeds_decode_and_mutations_do_not_panic() {
    use cairn_core::fuzzing;
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let seed = |p: &str| std::fs::read(corpus.join(p)).unwrap();
    let key = cairn_crypto::Key::from_bytes([0x42; 32]);
    assert_eq!(
        fuzzing::pack_file(&seed("pack_file/padded-two-blobs"), &key).unwrap(),
        2
    );
    assert_eq!(
        fuzzing::pack_file(&seed("pack_file/padded-no-blobs"), &key).unwrap(),
        0
    );
    let entries = seed("pack_entries/two-padded");
    assert_eq!(fuzzing::padded_pack_entries(&entries).unwrap(), 90);
    assert!(fuzzing::pack_entries(&entries).is_err());
    assert_eq!(
        fuzzing::index_file(&seed("index_file/three-packs-padded")).unwrap(),
        3
    );

    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for name in [
        "pack_entries/two-padded",
        "index_file/three-packs-padded",
        "pack_file/padded-two-blobs",
    ] {
        let base = seed(name);
        for _ in 0..3000 {
            let mut d = base.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % d.len();
                match next() % 3 {
                    0 => d[i] = next() as u8,
                    1 => d.truncate(i),
                    _ => d.insert(i, next() as u8),
                }
                if d.is_empty() {
                    break;
                }
            }
            if let Ok(len) = fuzzing::padded_pack_entries(&d) {
                assert_eq!(d[len], 0xff);
                assert!(d[len + 1..].iter().all(|&b| b == 0));
            }
            let _ = fuzzing::index_file(&d);
            let _ = fuzzing::pack_file(&d, &key);
        }
    }
}

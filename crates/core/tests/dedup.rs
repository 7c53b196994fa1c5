//! Deduplication, compression overhead, and per-repository chunking and ids.

mod common;

use cairn_core::{backup, BackupSummary, Id, InitOptions, NoProgress, ParentChoice, Repository};
use common::*;
use std::collections::HashSet;
use std::ops::Range;
use std::path::Path;

fn summary(r: &cairn_core::BackupResult) -> BackupSummary {
    r.snapshot.summary.clone().unwrap()
}

fn backup_dir(repo: &Repository, dir: &Path, parent: ParentChoice) -> cairn_core::BackupResult {
    let mut o = opts(vec![dir.to_path_buf()], vec![]);
    o.parent = parent;
    backup(repo, o, &NoProgress).unwrap()
}

#[test]
fn same_data_twice_adds_no_data_blobs() {
    let (be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let big = random_bytes(1, 5 << 20);
    let text = log_lines(3 << 20);
    std::fs::write(dir.path().join("big.bin"), &big).unwrap();
    std::fs::write(dir.path().join("log.txt"), &text).unwrap();
    let chunks = |d: &[u8]| repo.files_chunker().cuts(d).count() as u64;

    let r1 = backup_dir(&repo, dir.path(), ParentChoice::None);
    let s1 = summary(&r1);
    assert_eq!(s1.added.data_blobs, chunks(&big) + chunks(&text));
    assert_eq!(s1.files_new, 2);

    // Read everything again (no parent): every chunk is known.
    let r2 = backup_dir(&repo, dir.path(), ParentChoice::None);
    let s2 = summary(&r2);
    assert_eq!(
        s2.bytes_read,
        (big.len() + text.len()) as u64,
        "all read again"
    );
    assert_eq!(s2.added.data_blobs, 0, "{s2:?}");

    // Copies under other names, and a file made of both, add nothing either.
    std::fs::write(dir.path().join("copy.bin"), &big).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/log-copy.txt"), &text).unwrap();
    let r3 = backup_dir(&repo, dir.path(), ParentChoice::None);
    assert_eq!(summary(&r3).added.data_blobs, 0);

    // A fresh process (the index comes from index files, not memory) dedups too.
    let fresh = open(&be).unwrap();
    let r4 = backup_dir(&fresh, dir.path(), ParentChoice::None);
    let s4 = summary(&r4);
    assert_eq!(s4.added.data_blobs, 0, "{s4:?}");
    assert!(s4.added.bytes_raw < 1 << 16, "only trees are new: {s4:?}");

    // A stream of the same bytes twice. Streams are cut smaller than files, but a chunk
    // may still coincide with one the files gave (the repository's chunker seed is
    // random, so whether one does changes from run to run): only the others are new.
    let stream_ids: HashSet<Id> = whole_buffer_ids(&fresh, fresh.streams_chunker(), &big)
        .into_iter()
        .collect();
    let new = stream_ids
        .iter()
        .filter(|id| !fresh.index().contains(id))
        .count();
    assert!(
        new + 2 >= stream_ids.len(),
        "few stream chunks match file chunks"
    );
    let r5 = run_backup(&fresh, opts(vec![], vec![reader_stream("s", big.clone())]));
    assert_eq!(summary(&r5).added.data_blobs, new as u64);
    let r6 = run_backup(&fresh, opts(vec![], vec![reader_stream("t", big.clone())]));
    assert_eq!(summary(&r6).added.data_blobs, 0);

    let report = check_read_data(&fresh);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn identical_files_in_one_backup_are_stored_once() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(2, 3 << 20);
    for name in ["a", "b", "c", "d"] {
        std::fs::write(dir.path().join(name), &data).unwrap();
    }
    let r = backup_dir(&repo, dir.path(), ParentChoice::None);
    let s = summary(&r);
    let n = repo.files_chunker().cuts(&data).count() as u64;
    assert_eq!(s.added.data_blobs, n);
    assert!(s.added.bytes_raw < data.len() as u64 + (1 << 16), "{s:?}");
    assert_eq!(s.bytes_read, 4 * data.len() as u64);
}

#[test]
fn random_data_is_stored_with_almost_no_overhead() {
    let (be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let data = random_bytes(3, 8 << 20);
    std::fs::write(dir.path().join("random.bin"), &data).unwrap();
    let before = be.total_bytes();
    let r = backup_dir(&repo, dir.path(), ParentChoice::None);
    let a = summary(&r).added;
    assert!(a.bytes_raw >= data.len() as u64);
    assert!(
        a.bytes_stored <= a.bytes_raw + a.bytes_raw / 100 + 4096,
        "stored {} for {} raw",
        a.bytes_stored,
        a.bytes_raw
    );
    // Everything the backup wrote (packs, index, snapshot) stays close to the raw size:
    // sealing and headers add under 1 %, the padding of packs (docs/format.md,
    // "Padding") at most 1/32 (this one pack holds just over 8 MiB: the worst case).
    let grown = be.total_bytes() - before;
    assert!(
        grown <= a.bytes_raw + a.bytes_raw / 100 + a.bytes_raw / 32 + (16 << 10),
        "repository grew by {grown} for {} raw",
        a.bytes_raw
    );
    let node = node_at(
        &repo,
        &r.id,
        &r.snapshot,
        &format!("{}/random.bin", dir.path().display()),
    );
    assert!(dump(&repo, &node) == data);
}

#[test]
fn compressible_data_is_stored_much_smaller() {
    let (be, repo) = mem_repo(&InitOptions::default());
    let data = log_lines(8 << 20);
    let before = be.total_bytes();
    let r = run_backup(
        &repo,
        opts(vec![], vec![reader_stream("app.log", data.clone())]),
    );
    let a = summary(&r).added;
    // Log lines have no repeated chunks, so this is compression, not deduplication.
    assert_eq!(
        a.data_blobs,
        repo.streams_chunker().cuts(&data).count() as u64
    );
    assert!(a.bytes_raw >= data.len() as u64);
    assert!(
        a.bytes_stored * 5 < a.bytes_raw,
        "stored {} for {} raw",
        a.bytes_stored,
        a.bytes_raw
    );
    assert!((be.total_bytes() - before) * 4 < data.len() as u64);
    let node = node_at(&repo, &r.id, &r.snapshot, "app.log");
    assert!(dump(&repo, &node) == data);
}

#[test]
fn compression_level_zero_stores_raw() {
    let (_be, repo) = mem_repo(&InitOptions {
        compression_level: 0,
        ..InitOptions::default()
    });
    let data = log_lines(2 << 20);
    let r = run_backup(
        &repo,
        opts(vec![], vec![reader_stream("app.log", data.clone())]),
    );
    let a = summary(&r).added;
    assert!(a.bytes_stored >= a.bytes_raw, "{a:?}");
    let node = node_at(&repo, &r.id, &r.snapshot, "app.log");
    assert!(dump(&repo, &node) == data);
}

#[test]
fn a_small_edit_adds_few_blobs() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let mut data = random_bytes(4, 12 << 20);
    let path = dir.path().join("disk.img");
    std::fs::write(&path, &data).unwrap();
    let s1 = summary(&backup_dir(&repo, dir.path(), ParentChoice::None));
    assert!(s1.added.data_blobs >= 4, "{s1:?}");

    // Insert bytes near the start and overwrite some in the middle: content-defined
    // cuts resynchronize, so only the chunks around each edit are new.
    data.splice(1000..1000, b"inserted bytes".iter().copied());
    data[6 << 20] ^= 0xff;
    std::fs::write(&path, &data).unwrap();
    let s2 = summary(&backup_dir(&repo, dir.path(), ParentChoice::Auto));
    assert_eq!(s2.files_changed, 1);
    assert!(
        (1..=4).contains(&s2.added.data_blobs),
        "{} new blobs of {}",
        s2.added.data_blobs,
        s1.added.data_blobs
    );

    // The same for a database dump read as a stream, with its smaller chunks.
    let dump1 = log_lines(4 << 20);
    let mut dump2 = dump1.clone();
    dump2.splice(2_000_000..2_000_010, b"UPDATED ROW".iter().copied());
    let s3 = summary(&run_backup(
        &repo,
        opts(vec![], vec![reader_stream("db.sql", dump1)]),
    ));
    let s4 = summary(&run_backup(
        &repo,
        opts(vec![], vec![reader_stream("db.sql", dump2)]),
    ));
    assert!(s3.added.data_blobs >= 30, "{s3:?}");
    assert!(
        (1..=3).contains(&s4.added.data_blobs),
        "{} new blobs of {}",
        s4.added.data_blobs,
        s3.added.data_blobs
    );
}

fn cut_list(c: &cairn_chunker::Chunker, data: &[u8]) -> Vec<Range<usize>> {
    c.cuts(data).collect()
}

#[test]
fn repositories_cut_and_name_differently_and_a_reopened_one_identically() {
    let (be1, r1) = mem_repo(&InitOptions::default());
    let (_be2, r2) = mem_repo(&InitOptions::default());
    let data = random_bytes(5, 8 << 20);

    let c1 = cut_list(r1.files_chunker(), &data);
    let c2 = cut_list(r2.files_chunker(), &data);
    assert!(
        c1.len() >= 3 && c2.len() >= 3,
        "{} and {} chunks",
        c1.len(),
        c2.len()
    );
    assert_ne!(c1, c2, "two repositories cut 8 MiB at the same places");
    // The cuts the content chose. A chunk cut at the largest size is not one: both
    // repositories cut there when neither found a cut before it (a 2 MiB chunk from the
    // start, about once in a hundred pairs), and such shared cuts are no fingerprint.
    let max = r1.files_chunker().params().max_size as usize;
    let chosen = |c: &[Range<usize>]| -> HashSet<usize> {
        c.iter()
            .filter(|r| r.end < data.len() && r.len() < max)
            .map(|r| r.end)
            .collect()
    };
    let (inner1, inner2) = (chosen(&c1), chosen(&c2));
    assert!(
        !inner1.is_empty() && !inner2.is_empty(),
        "no cut chosen by content"
    );
    assert!(
        inner1.is_disjoint(&inner2),
        "shared cut points {:?}",
        inner1.intersection(&inner2).collect::<Vec<_>>()
    );
    let s1 = cut_list(r1.streams_chunker(), &data);
    let s2 = cut_list(r2.streams_chunker(), &data);
    assert_ne!(s1, s2);

    // Keyed ids: the same chunk has different ids in the two repositories.
    for r in c1.iter().take(3) {
        let chunk = &data[r.clone()];
        assert_ne!(r1.blob_id(chunk), r2.blob_id(chunk));
        assert_eq!(r1.blob_id(chunk), r1.blob_id(chunk));
        assert_ne!(r1.blob_id(chunk), Id::of_file(chunk), "ids must be keyed");
    }
    assert_ne!(r1.blob_id(b""), r2.blob_id(b""));

    // Through backups: no data blob id in common.
    let b1 = run_backup(&r1, opts(vec![], vec![reader_stream("x", data.clone())]));
    let b2 = run_backup(&r2, opts(vec![], vec![reader_stream("x", data.clone())]));
    let ids1: HashSet<Id> = data_ids(&r1, &node_at(&r1, &b1.id, &b1.snapshot, "x"))
        .into_iter()
        .collect();
    let ids2: HashSet<Id> = data_ids(&r2, &node_at(&r2, &b2.id, &b2.snapshot, "x"))
        .into_iter()
        .collect();
    assert!(ids1.is_disjoint(&ids2));

    // A reopened repository keeps its chunker seed and id key: same cuts, same ids.
    let again = open(&be1).unwrap();
    assert_eq!(cut_list(again.files_chunker(), &data), c1);
    assert_eq!(cut_list(again.streams_chunker(), &data), s1);
    for r in &c1 {
        assert_eq!(
            again.blob_id(&data[r.clone()]),
            r1.blob_id(&data[r.clone()])
        );
    }
    assert_eq!(again.config(), r1.config());
}

//! Streams: reader and command sources, stored as files of a snapshot.
//!
//! Properties: whatever pieces a reader hands out, a stream reads back byte for byte
//! and is cut exactly where chunking the whole buffer at once cuts it; several streams
//! and a directory share one snapshot; a failing source commits nothing.

mod common;

use cairn_core::{backup, BackupOptions, Error, InitOptions, NoProgress, StreamSource};
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::ffi::OsString;
use std::io;

/// One piece of a generated stream.
#[derive(Clone, Debug)]
enum Segment {
    /// Incompressible bytes from a seed.
    Random(u64, usize),
    /// One byte repeated.
    Byte(u8, usize),
    /// A short random pattern repeated (compressible, and cut at content-defined points
    /// only by the pattern's phase).
    Pattern(u64, usize, usize),
}

fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        (any::<u64>(), 0usize..600_000).prop_map(|(s, n)| Segment::Random(s, n)),
        (any::<u8>(), 0usize..900_000).prop_map(|(b, n)| Segment::Byte(b, n)),
        (any::<u64>(), 1usize..300, 0usize..600_000)
            .prop_map(|(s, p, n)| Segment::Pattern(s, p, n)),
    ]
}

const MAX_STREAM: usize = 3 << 20;

fn build(segments: &[Segment]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in segments {
        match *s {
            Segment::Random(seed, n) => out.extend(random_bytes(seed, n)),
            Segment::Byte(b, n) => out.extend(std::iter::repeat_n(b, n)),
            Segment::Pattern(seed, p, n) => {
                let pat = random_bytes(seed, p);
                out.extend(pat.iter().cycle().take(n));
            }
        }
    }
    out.truncate(MAX_STREAM);
    out
}

/// Largest piece the reader hands out per call: single bytes, small, and large reads.
fn max_read() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..8, 8usize..4096, 4096usize..1_500_000]
}

/// Backs `data` up as a stream read in short pieces, then checks the dump and the cuts.
fn stream_round_trip(
    repo: &cairn_core::Repository,
    data: &[u8],
    max: usize,
    seed: u64,
    interrupts: bool,
) -> Result<(), TestCaseError> {
    let name = "dumps/db.sql";
    let reader = ChoppyReader::new(data.to_vec(), max, seed, interrupts);
    let r = run_backup(
        repo,
        opts(
            vec![],
            vec![StreamSource::Reader {
                name: name.into(),
                reader: Box::new(reader),
            }],
        ),
    );
    prop_assert_eq!(r.snapshot.paths.clone(), vec![format!("/{name}")]);
    let node = node_at(repo, &r.id, &r.snapshot, name);
    prop_assert_eq!(node.size, data.len() as u64);
    let back = dump(repo, &node);
    prop_assert!(
        back == data,
        "dump differs: {} vs {} bytes",
        back.len(),
        data.len()
    );
    let ids = data_ids(repo, &node);
    let expected = whole_buffer_ids(repo, repo.streams_chunker(), data);
    prop_assert_eq!(
        ids,
        expected,
        "streaming cuts differ from whole-buffer cuts"
    );
    let s = r.snapshot.summary.as_ref().unwrap();
    prop_assert_eq!(s.bytes_read, data.len() as u64);
    prop_assert_eq!(s.bytes_total, data.len() as u64);
    prop_assert_eq!(s.files_new, 1);
    Ok(())
}

#[test]
fn streams_read_back_exactly_and_cut_like_the_whole_buffer() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        prop::collection::vec(segment(), 0..10),
        max_read(),
        any::<u64>(),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(segments, max, seed, interrupts)| {
            let data = build(&segments);
            stream_round_trip(&repo, &data, max, seed, interrupts)
        })
        .unwrap();
}

#[test]
fn empty_and_one_byte_streams() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    for data in [vec![], vec![7u8]] {
        stream_round_trip(&repo, &data, 1, 1, true).unwrap();
    }
}

/// A stream longer than the reading segment (4 MiB) in short pieces: the carry-over of
/// the uncut tail from one segment to the next must not change the cuts.
#[test]
fn stream_longer_than_a_segment_cuts_like_the_whole_buffer() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let mut data = random_bytes(11, 3 << 20);
    data.extend(std::iter::repeat_n(0u8, 2 << 20)); // max-size cuts across the boundary
    data.extend(random_bytes(12, 4 << 20));
    data.extend(log_lines(1 << 20));
    stream_round_trip(&repo, &data, 100_000, 5, true).unwrap();
    stream_round_trip(&repo, &data, 5 << 20, 6, false).unwrap();
}

#[test]
fn several_streams_and_a_directory_make_one_snapshot() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let file_data = random_bytes(1, 700_000);
    std::fs::write(dir.path().join("file.bin"), &file_data).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/notes.txt"), b"hello\n").unwrap();

    let a = log_lines(1_300_000);
    let b = random_bytes(2, 900_000);
    let c = Vec::new();
    let streams = vec![
        StreamSource::Reader {
            name: "db/kimai.sql".into(),
            reader: Box::new(ChoppyReader::new(a.clone(), 70_000, 3, true)),
        },
        reader_stream("db/blobs.bin", b.clone()),
        reader_stream("empty", c.clone()),
        StreamSource::Command {
            name: "cmd/out.txt".into(),
            program: "sh".into(),
            args: vec!["-c".into(), "printf 'one\\ntwo\\n'; echo err >&2".into()],
            env: Vec::new(),
            observe: None,
        },
    ];
    let before = repo.snapshots().unwrap().len();
    let r = run_backup(&repo, opts(vec![dir.path().to_path_buf()], streams));
    let snaps = repo.snapshots().unwrap();
    assert_eq!(snaps.len(), before + 1, "exactly one snapshot");
    assert_eq!(snaps.last().unwrap().0, r.id);

    let dir_str = dir.path().to_str().unwrap().to_string();
    let mut expected_paths = vec![
        "/cmd/out.txt".to_string(),
        "/db/blobs.bin".to_string(),
        "/db/kimai.sql".to_string(),
        "/empty".to_string(),
        dir_str.clone(),
    ];
    expected_paths.sort();
    assert_eq!(r.snapshot.paths, expected_paths);

    for (path, want) in [
        ("db/kimai.sql", &a),
        ("db/blobs.bin", &b),
        ("empty", &c),
        ("cmd/out.txt", &b"one\ntwo\n".to_vec()),
    ] {
        let node = node_at(&repo, &r.id, &r.snapshot, path);
        assert!(dump(&repo, &node) == *want, "{path} differs");
        assert_eq!(
            data_ids(&repo, &node),
            whole_buffer_ids(&repo, repo.streams_chunker(), want),
            "{path}: stream cuts"
        );
    }
    let node = node_at(&repo, &r.id, &r.snapshot, &format!("{dir_str}/file.bin"));
    assert!(dump(&repo, &node) == file_data);
    // Files are cut with the files chunker, not the streams chunker.
    assert_eq!(
        data_ids(&repo, &node),
        whole_buffer_ids(&repo, repo.files_chunker(), &file_data)
    );
    let node = node_at(
        &repo,
        &r.id,
        &r.snapshot,
        &format!("{dir_str}/sub/notes.txt"),
    );
    assert_eq!(dump(&repo, &node), b"hello\n");

    // A stream restores as a plain file.
    let target = tempfile::tempdir().unwrap();
    let node = node_at(&repo, &r.id, &r.snapshot, "db/kimai.sql");
    let ro = cairn_core::RestoreOptions {
        target: target.path().to_path_buf(),
        ..Default::default()
    };
    let (rs, w) = cairn_core::restore(&repo, &node, "/db/kimai.sql", &ro, &NoProgress).unwrap();
    assert!(w.is_empty() && rs.errors == 0, "{w:?}");
    assert!(std::fs::read(target.path().join("kimai.sql")).unwrap() == a);

    let s = r.snapshot.summary.unwrap();
    assert_eq!(s.files_new, 2 + 4, "two files and four streams");
    let total = (file_data.len() + 6 + a.len() + b.len() + 8) as u64;
    assert_eq!(s.bytes_total, total);
    assert_eq!(s.bytes_read, total);

    let report = check_read_data(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

fn failing_command(script: &str) -> StreamSource {
    StreamSource::Command {
        name: "cmd/dump.sql".into(),
        program: "sh".into(),
        args: vec![OsString::from("-c"), OsString::from(script)],
        env: Vec::new(),
        observe: None,
    }
}

#[test]
fn failing_command_fails_the_backup_and_commits_nothing() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), random_bytes(9, 100_000)).unwrap();
    run_backup(&repo, opts(vec![dir.path().to_path_buf()], vec![]));
    let before: Vec<_> = repo.snapshots().unwrap().into_iter().map(|s| s.0).collect();

    for script in [
        "echo x; exit 4",
        "echo 'pg_dump: connection refused' >&2; exit 1",
        // Enough output that some blobs reach the store before the exit status is seen.
        "head -c 3000000 /dev/zero | tr '\\0' 'a'; seq 1 200000; exit 4",
    ] {
        let err = backup(
            &repo,
            opts(
                vec![dir.path().to_path_buf()],
                vec![
                    reader_stream("other", b"fine".to_vec()),
                    failing_command(script),
                ],
            ),
            &NoProgress,
        )
        .unwrap_err();
        match &err {
            Error::SourceFailed { name, detail } => {
                assert_eq!(name, "cmd/dump.sql");
                assert!(!detail.is_empty());
                if script.contains("pg_dump") {
                    assert!(detail.contains("connection refused"), "{detail}");
                }
            }
            e => panic!("{script}: expected SourceFailed, got {e:?}"),
        }
        let after: Vec<_> = repo.snapshots().unwrap().into_iter().map(|s| s.0).collect();
        assert_eq!(after, before, "{script}: a snapshot was written");
    }

    // A program that cannot be started fails the same way.
    let err = backup(
        &repo,
        opts(
            vec![],
            vec![StreamSource::Command {
                name: "x".into(),
                program: "/nonexistent/program".into(),
                args: vec![],
                env: Vec::new(),
                observe: None,
            }],
        ),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::SourceFailed { ref name, .. } if name == "x"),
        "{err:?}"
    );

    let report = check_read_data(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let fresh = open(&_be).unwrap();
    let report = check_read_data(&fresh);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(fresh.snapshots().unwrap().len(), before.len());
}

/// A reader that fails after some bytes.
struct FailingReader {
    left: usize,
}

impl io::Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = self.left.min(buf.len()).min(10_000);
        buf[..n].fill(b'z');
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn failing_reader_fails_the_backup_and_commits_nothing() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let err = backup(
        &repo,
        opts(
            vec![],
            vec![StreamSource::Reader {
                name: "stdin".into(),
                reader: Box::new(FailingReader { left: 200_000 }),
            }],
        ),
        &NoProgress,
    )
    .unwrap_err();
    match err {
        Error::SourceFailed { name, detail } => {
            assert_eq!(name, "stdin");
            assert!(detail.contains("disk on fire"), "{detail}");
        }
        e => panic!("expected SourceFailed, got {e:?}"),
    }
    assert!(repo.snapshots().unwrap().is_empty());
    let report = check_read_data(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn bad_stream_names_and_collisions_are_refused() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let inside = format!("{}/x", dir.path().display());
    let cases: Vec<(BackupOptions, &str)> = vec![
        (opts(vec![], vec![reader_stream("", vec![1])]), "empty name"),
        (opts(vec![], vec![reader_stream("/", vec![1])]), "root"),
        (
            opts(vec![], vec![reader_stream("a/../b", vec![1])]),
            "dot-dot",
        ),
        (opts(vec![], vec![reader_stream("a/./b", vec![1])]), "dot"),
        (
            opts(
                vec![],
                vec![reader_stream("a", vec![1]), reader_stream("/a", vec![2])],
            ),
            "same name twice",
        ),
        (
            opts(
                vec![],
                vec![reader_stream("a/b", vec![1]), reader_stream("a", vec![2])],
            ),
            "stream above a stream",
        ),
        (
            opts(
                vec![dir.path().to_path_buf()],
                vec![reader_stream(&inside, vec![1])],
            ),
            "stream inside a backed-up path",
        ),
        (BackupOptions::default(), "nothing to back up"),
    ];
    for (o, what) in cases {
        match backup(&repo, o, &NoProgress) {
            Err(Error::Invalid(_)) => {}
            r => panic!("{what}: expected Error::Invalid, got {r:?}"),
        }
    }
    assert!(repo.snapshots().unwrap().is_empty());
}

/// A backup that fails after the store wrote some packs must not leave the blobs of
/// those packs in the repository's in-memory index: no index file names them, so a
/// later backup with the same `Repository` that deduplicates against them commits a
/// snapshot whose blobs are missing for every other process.
#[test]

fn failed_backup_does_not_poison_later_backups_of_the_same_repository() {
    let (be, repo) = mem_repo(&InitOptions {
        pack_size: 1 << 20,
        ..InitOptions::default()
    });
    let data = random_bytes(77, 8 << 20);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("dump");
    std::fs::write(&src, &data).unwrap();
    let script = format!("cat '{}'; exit 3", src.display());
    let mut o = opts(vec![], vec![failing_command(&script)]);
    o.threads = 2;
    assert!(matches!(
        backup(&repo, o, &NoProgress),
        Err(Error::SourceFailed { .. })
    ));
    // The same bytes, this time from a source that succeeds.
    let r = run_backup(
        &repo,
        opts(vec![], vec![reader_stream("cmd/dump.sql", data.clone())]),
    );

    let fresh = open(&be).unwrap();
    let report = check_read_data(&fresh);
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    fresh.load_index().unwrap();
    let node = node_at(&fresh, &r.id, &r.snapshot, "cmd/dump.sql");
    assert!(dump(&fresh, &node) == data);
}

/// Two streams where one's name is a directory of the other's: refusing them (as the
/// reverse order is refused) or storing both are fine; silently dropping one is not.
#[test]

fn stream_below_another_stream_is_not_silently_dropped() {
    let (_be, repo) = mem_repo(&InitOptions::default());
    let o = opts(
        vec![],
        vec![
            reader_stream("a", b"outer".to_vec()),
            reader_stream("a/b", b"inner".to_vec()),
        ],
    );
    match backup(&repo, o, &NoProgress) {
        Err(Error::Invalid(_)) => {}
        Ok(r) => {
            let node = cairn_core::browse::resolve(&repo, &r.id, &r.snapshot, "a/b")
                .expect("the snapshot lists /a/b, so it must hold it");
            assert_eq!(dump(&repo, &node), b"inner");
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

#[test]
fn streams_are_read_before_files_and_commands_get_their_environment() {
    // The "dump" writes a file into the directory being backed up and prints a variable
    // given to it: the file is in the snapshot only if the stream ran before the walk.
    // The stream's name sorts after the directory's, so tree order alone would read the
    // directory first.
    let (_be, repo) = mem_repo(&InitOptions::default());
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("written-by-dump");
    let stream = StreamSource::Command {
        name: "zz/dump.sql".into(),
        program: "sh".into(),
        args: vec![
            "-c".into(),
            format!(
                "echo made > '{}'; printf '%s' \"$CAIRN_TEST_SECRET\"",
                marker.display()
            )
            .into(),
        ],
        env: vec![("CAIRN_TEST_SECRET".into(), "s3cret".into())],
        observe: None,
    };
    let r = run_backup(&repo, opts(vec![dir.path().to_path_buf()], vec![stream]));
    let node = node_at(&repo, &r.id, &r.snapshot, "zz/dump.sql");
    assert_eq!(dump(&repo, &node), b"s3cret");
    let path = format!("{}/written-by-dump", dir.path().display());
    let node = node_at(&repo, &r.id, &r.snapshot, &path);
    assert_eq!(dump(&repo, &node), b"made\n");
}

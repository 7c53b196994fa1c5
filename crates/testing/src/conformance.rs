//! The [`Backend`] contract as executable properties, for any implementation.
//!
//! Every property takes a factory that returns a *fresh* backend on each call (a new
//! empty directory, bucket prefix, ...) on which `create` has not been called yet, and
//! panics when the backend breaks the contract. Run them all with [`run_all`], or
//! generate one `#[test]` per property with [`backend_conformance_tests!`]:
//!
//! ```
//! use cairn_core::Backend;
//! use cairn_testing::MemBackend;
//!
//! cairn_testing::conformance::run_all(&|| Box::new(MemBackend::new()) as Box<dyn Backend>);
//! ```
//!
//! Name validation is checked against the rule of `cairn_backend::validate_name`:
//! invalid names fail with [`BackendError::Io`] of kind
//! [`io::ErrorKind::InvalidInput`], never `NotFound`, and touch nothing.
//!
//! [`backend_conformance_tests!`]: crate::backend_conformance_tests

use std::collections::BTreeSet;
use std::thread;

use cairn_core::{Backend, BackendError, FileKind};

/// A factory of fresh, not yet created backends.
pub type MakeBackend<'a> = &'a dyn Fn() -> Box<dyn Backend>;

/// One property: panics when the backend made by the factory breaks it.
pub type Property = fn(MakeBackend<'_>);

/// Every property with its name (the name of its function in this module).
pub const PROPERTIES: &[(&str, Property)] = &[
    (
        "create_fails_once_config_exists",
        create_fails_once_config_exists,
    ),
    ("write_read_round_trip", write_read_round_trip),
    ("write_same_name_twice", write_same_name_twice),
    ("read_missing_is_not_found", read_missing_is_not_found),
    ("read_range_bounds", read_range_bounds),
    ("list_returns_written_files", list_returns_written_files),
    ("remove_then_list", remove_then_list),
    ("remove_missing_is_ok", remove_missing_is_ok),
    ("invalid_names_are_rejected", invalid_names_are_rejected),
    ("edge_names_are_accepted", edge_names_are_accepted),
    ("concurrent_writers", concurrent_writers),
    ("concurrent_range_reads", concurrent_range_reads),
    (
        "staged_files_appear_whole_or_not_at_all",
        staged_files_appear_whole_or_not_at_all,
    ),
];

/// Runs every property in [`PROPERTIES`], each on a fresh backend from `make`.
pub fn run_all(make: MakeBackend<'_>) {
    for (_, property) in PROPERTIES {
        property(make);
    }
}

/// A 64-character lowercase hex name derived from `seed`, like a real file name
/// (BLAKE3 hex); different seeds give names spread over all pack fan-out directories.
pub fn hex_name(seed: u64) -> String {
    let mut state = seed;
    (0..4)
        .map(|_| format!("{:016x}", splitmix64(&mut state)))
        .collect()
}

/// `len` deterministic pseudo-random bytes derived from `seed`.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x5eed_5eed_5eed_5eed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// True when `err` is the error every backend gives for an invalid file name.
pub fn is_invalid_name(err: &BackendError) -> bool {
    matches!(err, BackendError::InvalidName { .. })
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A fresh backend on which `create` succeeded.
fn created(make: MakeBackend<'_>) -> Box<dyn Backend> {
    let backend = make();
    backend
        .create()
        .unwrap_or_else(|e| panic!("create on {} failed: {e}", backend.location()));
    backend
}

/// A valid name of `kind` from `seed` (`config` for the config).
fn name_of(kind: FileKind, seed: u64) -> String {
    match kind {
        FileKind::Config => "config".to_owned(),
        _ => hex_name(seed),
    }
}

fn sorted(mut files: Vec<(String, u64)>) -> Vec<(String, u64)> {
    files.sort();
    files
}

fn list(backend: &dyn Backend, kind: FileKind) -> Vec<(String, u64)> {
    sorted(
        backend
            .list(kind)
            .unwrap_or_else(|e| panic!("list {kind:?}: {e}")),
    )
}

fn read(backend: &dyn Backend, kind: FileKind, name: &str) -> Vec<u8> {
    backend
        .read(kind, name)
        .unwrap_or_else(|e| panic!("read {kind:?} {name}: {e}"))
}

fn write(backend: &dyn Backend, kind: FileKind, name: &str, data: &[u8]) {
    backend
        .write(kind, name, data)
        .unwrap_or_else(|e| panic!("write {kind:?} {name}: {e}"));
}

/// `create` succeeds on a fresh backend, and fails with `AlreadyExists` once a config
/// is stored, leaving the config alone.
pub fn create_fails_once_config_exists(make: MakeBackend<'_>) {
    let backend = created(make);
    write(&*backend, FileKind::Config, "config", b"the config");
    match backend.create() {
        Err(BackendError::AlreadyExists(_)) => {}
        other => panic!("second create: expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(read(&*backend, FileKind::Config, "config"), b"the config");
}

/// What is written is read back, for every kind, for empty, small and 1 MiB files; the
/// same name in different kinds names different files.
pub fn write_read_round_trip(make: MakeBackend<'_>) {
    let backend = created(make);
    let shared = hex_name(7);
    for (i, kind) in FileKind::ALL.into_iter().enumerate() {
        let seed = i as u64;
        let files = [
            (name_of(kind, 100 + seed), content(seed, 0)),
            (name_of(kind, 200 + seed), content(seed, 1)),
            (name_of(kind, 300 + seed), content(seed, 1000)),
            (name_of(kind, 400 + seed), content(seed, 1 << 20)),
        ];
        // The config has one name: only its last write would be kept, so write once.
        let files = if kind == FileKind::Config {
            &files[2..3]
        } else {
            &files[..]
        };
        for (name, data) in files {
            write(&*backend, kind, name, data);
        }
        for (name, data) in files {
            assert!(
                read(&*backend, kind, name) == *data,
                "{kind:?} {name}: read differs from write ({} bytes)",
                data.len()
            );
        }
        if kind != FileKind::Config {
            write(&*backend, kind, &shared, format!("{kind:?}").as_bytes());
        }
    }
    for kind in FileKind::ALL {
        if kind != FileKind::Config {
            assert_eq!(
                read(&*backend, kind, &shared),
                format!("{kind:?}").as_bytes(),
                "same name in {kind:?} and another kind"
            );
        }
    }
}

/// A second write of a name succeeds and leaves exactly one whole copy.
pub fn write_same_name_twice(make: MakeBackend<'_>) {
    let backend = created(make);
    for kind in FileKind::ALL {
        let name = name_of(kind, 11);
        let data = content(11, 4096);
        write(&*backend, kind, &name, &data);
        write(&*backend, kind, &name, &data);
        assert_eq!(
            list(&*backend, kind),
            vec![(name.clone(), 4096)],
            "{kind:?}"
        );
        assert!(read(&*backend, kind, &name) == data, "{kind:?} {name}");
    }
}

/// Reading a missing file is `NotFound` with its kind and name, for `read` and
/// `read_range`.
pub fn read_missing_is_not_found(make: MakeBackend<'_>) {
    let backend = created(make);
    for kind in FileKind::ALL {
        let name = name_of(kind, 21);
        let results = [
            backend.read(kind, &name),
            backend.read_range(kind, &name, 0, 0),
            backend.read_range(kind, &name, 0, 1),
        ];
        for result in results {
            match result {
                Err(err @ BackendError::NotFound { .. }) => {
                    assert!(err.is_not_found());
                    let BackendError::NotFound { kind: k, name: n } = err else {
                        unreachable!()
                    };
                    assert_eq!((k, n.as_str()), (kind, name.as_str()));
                }
                other => panic!("read missing {kind:?} {name}: expected NotFound, got {other:?}"),
            }
        }
    }
}

/// `read_range` returns exactly the range inside the file, up to its end inclusive,
/// and `ShortRead` (with the file's real size) for any range past the end.
pub fn read_range_bounds(make: MakeBackend<'_>) {
    let backend = created(make);
    let name = hex_name(31);
    let data = content(31, 100);
    write(&*backend, FileKind::Pack, &name, &data);
    let ok = [(0, 0), (0, 100), (10, 20), (90, 10), (99, 1), (100, 0)];
    for (offset, len) in ok {
        let got = backend
            .read_range(FileKind::Pack, &name, offset, len)
            .unwrap_or_else(|e| panic!("read_range({offset}, {len}): {e}"));
        assert_eq!(got, &data[offset as usize..(offset + len) as usize]);
        // Into a buffer that held more (a reader's kept buffer): exactly the range.
        let mut buf = vec![0xEE; 150];
        backend
            .read_range_into(FileKind::Pack, &name, offset, len, &mut buf)
            .unwrap_or_else(|e| panic!("read_range_into({offset}, {len}): {e}"));
        assert_eq!(buf, &data[offset as usize..(offset + len) as usize]);
    }
    let short = [
        (95, 10),
        (0, 101),
        (100, 1),
        (101, 0),
        (200, 1),
        (u64::MAX, 1),
        (1, u64::MAX),
    ];
    for (offset, len) in short {
        match backend.read_range(FileKind::Pack, &name, offset, len) {
            Err(BackendError::ShortRead {
                kind,
                name: n,
                offset: o,
                wanted,
                size,
            }) => {
                assert_eq!((kind, n.as_str()), (FileKind::Pack, name.as_str()));
                assert_eq!((o, wanted, size), (offset, len, 100));
            }
            other => panic!("read_range({offset}, {len}) of 100 bytes: got {other:?}"),
        }
    }
    let empty = hex_name(32);
    write(&*backend, FileKind::Index, &empty, b"");
    assert_eq!(
        backend
            .read_range(FileKind::Index, &empty, 0, 0)
            .expect("empty range of empty file"),
        b""
    );
    assert!(matches!(
        backend.read_range(FileKind::Index, &empty, 0, 1),
        Err(BackendError::ShortRead { size: 0, .. })
    ));
}

/// `list` returns exactly the written files of a kind with their sizes, and nothing
/// on a new repository.
pub fn list_returns_written_files(make: MakeBackend<'_>) {
    let backend = created(make);
    for kind in FileKind::ALL {
        assert_eq!(
            list(&*backend, kind),
            vec![],
            "{kind:?} of a new repository"
        );
    }
    let mut expected: Vec<(FileKind, Vec<(String, u64)>)> = Vec::new();
    for (k, kind) in FileKind::ALL.into_iter().enumerate() {
        let count = if kind == FileKind::Config { 1 } else { 40 };
        let mut files = Vec::new();
        for i in 0..count {
            let seed = (k * 1000 + i) as u64;
            let name = name_of(kind, seed);
            let len = (seed % 97) as usize;
            write(&*backend, kind, &name, &content(seed, len));
            files.push((name, len as u64));
        }
        expected.push((kind, sorted(files)));
    }
    for (kind, files) in expected {
        assert_eq!(list(&*backend, kind), files, "{kind:?}");
    }
}

/// A removed file is gone from `list` and `read`, the others stay, and it can be
/// written again.
pub fn remove_then_list(make: MakeBackend<'_>) {
    let backend = created(make);
    for kind in FileKind::ALL {
        let names: Vec<String> = if kind == FileKind::Config {
            vec!["config".to_owned()]
        } else {
            (0..3).map(|i| hex_name(50 + i)).collect()
        };
        for name in &names {
            write(&*backend, kind, name, name.as_bytes());
        }
        backend
            .remove(kind, &names[0])
            .unwrap_or_else(|e| panic!("remove {kind:?}: {e}"));
        let rest: Vec<(String, u64)> = names[1..]
            .iter()
            .map(|n| (n.clone(), n.len() as u64))
            .collect();
        assert_eq!(list(&*backend, kind), sorted(rest), "{kind:?} after remove");
        assert!(
            backend
                .read(kind, &names[0])
                .is_err_and(|e| e.is_not_found()),
            "{kind:?}: removed file still readable"
        );
        write(&*backend, kind, &names[0], b"again");
        assert_eq!(read(&*backend, kind, &names[0]), b"again");
    }
}

/// Removing a missing file, or one file twice, is `Ok`.
pub fn remove_missing_is_ok(make: MakeBackend<'_>) {
    let backend = created(make);
    for kind in FileKind::ALL {
        let name = name_of(kind, 61);
        backend
            .remove(kind, &name)
            .unwrap_or_else(|e| panic!("remove missing {kind:?}: {e}"));
        write(&*backend, kind, &name, b"x");
        for _ in 0..2 {
            backend
                .remove(kind, &name)
                .unwrap_or_else(|e| panic!("remove {kind:?}: {e}"));
        }
        assert_eq!(list(&*backend, kind), vec![]);
    }
}

/// Names that could escape a directory, collide with temp files, or are not canonical
/// lowercase are refused by every method, and nothing is stored.
pub fn invalid_names_are_rejected(make: MakeBackend<'_>) {
    let backend = created(make);
    let too_long = "a".repeat(129);
    let common = [
        "",
        ".",
        "..",
        "/",
        "/abc",
        "abc/",
        "a/b",
        "../abc",
        "../../etc/passwd",
        "..\\abc",
        "ABC",
        "Abc0",
        "abc.def",
        "a b",
        "abc\n",
        "abc\0",
        "-abc",
        "é0",
        ".tmp-0123abcd",
        too_long.as_str(),
    ];
    for kind in FileKind::ALL {
        let extra: &[&str] = match kind {
            FileKind::Config => &["Config", "config2", "keys", "data", "00", "../config"],
            FileKind::Pack => &["a", "0"],
            _ => &[],
        };
        for name in common.iter().chain(extra) {
            let results = [
                ("write", backend.write(kind, name, b"x").map(|_| Vec::new())),
                ("read", backend.read(kind, name)),
                ("read_range", backend.read_range(kind, name, 0, 0)),
                ("remove", backend.remove(kind, name).map(|_| Vec::new())),
            ];
            for (method, result) in results {
                match result {
                    Err(err) if is_invalid_name(&err) => {}
                    other => panic!(
                        "{method}({kind:?}, {name:?}): expected an invalid-name error, got {other:?}"
                    ),
                }
            }
        }
    }
    for kind in FileKind::ALL {
        assert_eq!(
            list(&*backend, kind),
            vec![],
            "{kind:?} after invalid names"
        );
    }
}

/// The extremes of the name rule are accepted: one character, 128 characters, any
/// letter (not only hex), two-character packs, and `config` as a key name, which does not
/// touch the repository config.
pub fn edge_names_are_accepted(make: MakeBackend<'_>) {
    let backend = created(make);
    let longest = "z9".repeat(64);
    for kind in FileKind::ALL {
        let names: Vec<&str> = match kind {
            FileKind::Config => vec!["config"],
            FileKind::Pack => vec![
                "00",
                "ff",
                "zz",
                "zz0",
                "0123456789abcdefghijklmnopqrstuvwxyz",
                &longest,
            ],
            _ => vec![
                "0",
                "z",
                "config",
                "0123456789abcdefghijklmnopqrstuvwxyz",
                &longest,
            ],
        };
        for name in &names {
            write(&*backend, kind, name, format!("{kind:?}/{name}").as_bytes());
        }
        for name in &names {
            assert_eq!(
                read(&*backend, kind, name),
                format!("{kind:?}/{name}").as_bytes()
            );
        }
        let expected: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        let listed: BTreeSet<String> = list(&*backend, kind).into_iter().map(|(n, _)| n).collect();
        assert_eq!(listed, expected, "{kind:?}");
    }
}

/// Eight threads each write 50 distinct packs and one shared pack at once; afterwards
/// every file is listed once with its size and reads back exactly.
pub fn concurrent_writers(make: MakeBackend<'_>) {
    const THREADS: u64 = 8;
    const FILES: u64 = 50;
    let backend = created(make);
    let shared = hex_name(u64::MAX);
    let shared_data = content(u64::MAX, 3000);
    let seed = |t: u64, i: u64| 1_000_000 + t * 1000 + i;
    thread::scope(|scope| {
        for t in 0..THREADS {
            let backend = &*backend;
            let shared = &shared;
            let shared_data = &shared_data;
            scope.spawn(move || {
                for i in 0..FILES {
                    let s = seed(t, i);
                    write(
                        backend,
                        FileKind::Pack,
                        &hex_name(s),
                        &content(s, (s % 2000) as usize),
                    );
                    if i == FILES / 2 {
                        write(backend, FileKind::Pack, shared, shared_data);
                    }
                }
            });
        }
    });
    let mut expected = vec![(shared.clone(), shared_data.len() as u64)];
    for t in 0..THREADS {
        for i in 0..FILES {
            let s = seed(t, i);
            expected.push((hex_name(s), s % 2000));
        }
    }
    assert_eq!(list(&*backend, FileKind::Pack), sorted(expected));
    assert!(read(&*backend, FileKind::Pack, &shared) == shared_data);
    for t in 0..THREADS {
        for i in 0..FILES {
            let s = seed(t, i);
            assert!(
                read(&*backend, FileKind::Pack, &hex_name(s)) == content(s, (s % 2000) as usize),
                "pack {t}/{i} differs"
            );
        }
    }
}

/// Eight threads read ranges of one file at once and each gets exactly its bytes.
pub fn concurrent_range_reads(make: MakeBackend<'_>) {
    let backend = created(make);
    let name = hex_name(71);
    let data = content(71, 64 * 1024);
    write(&*backend, FileKind::Pack, &name, &data);
    thread::scope(|scope| {
        for t in 0..8u64 {
            let (backend, name, data) = (&*backend, &name, &data);
            scope.spawn(move || {
                for i in 0..200u64 {
                    let offset = (t * 7919 + i * 104_729) % (data.len() as u64 - 512);
                    let len = (i * 31 + t) % 512;
                    let got = backend
                        .read_range(FileKind::Pack, name, offset, len)
                        .unwrap_or_else(|e| panic!("read_range({offset}, {len}): {e}"));
                    assert!(got == data[offset as usize..(offset + len) as usize]);
                }
            });
        }
    });
}

/// Generates one `#[test]` per conformance property (plus one checking that no property
/// is missing), each calling the factory expression once for a fresh factory.
///
/// The expression must evaluate to something that coerces to [`MakeBackend`]: a
/// closure returning `Box<dyn Backend>` (annotate the return type). For a backend that
/// needs a directory, let the closure own a temporary directory and hand out a new
/// subdirectory per call (see `crates/backend/tests/conformance.rs`).
///
/// ```
/// mod conformance {
///     use cairn_core::Backend;
///     use cairn_testing::MemBackend;
///
///     cairn_testing::backend_conformance_tests!(|| -> Box<dyn Backend> {
///         Box::new(MemBackend::new())
///     });
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! backend_conformance_tests {
    ($make:expr) => {
        $crate::__backend_conformance_tests!(
            $make;
            create_fails_once_config_exists,
            write_read_round_trip,
            write_same_name_twice,
            read_missing_is_not_found,
            read_range_bounds,
            list_returns_written_files,
            remove_then_list,
            remove_missing_is_ok,
            invalid_names_are_rejected,
            edge_names_are_accepted,
            concurrent_writers,
            concurrent_range_reads,
            staged_files_appear_whole_or_not_at_all,
        );
    };
}

/// A staged file (for the backends that stage one: see `Backend::stage`) is listed
/// and read under its name only once committed, whole, with what was appended in
/// pieces; read back before the commit, its pieces are what was appended; dropped
/// without a commit, it leaves nothing that `list` shows. A name that exists already
/// keeps one whole copy.
pub fn staged_files_appear_whole_or_not_at_all(make: MakeBackend<'_>) {
    let backend = created(make);
    for kind in FileKind::ALL {
        let Some(mut staged) = backend
            .stage(kind)
            .unwrap_or_else(|e| panic!("stage {kind:?}: {e}"))
        else {
            continue;
        };
        let name = name_of(kind, 41);
        let data = content(41, (3 << 20) + 17);
        for piece in data.chunks(1 << 20) {
            staged.append(piece).unwrap();
        }
        let mut back = vec![0u8; 4096];
        staged.read_at((2 << 20) - 100, &mut back).unwrap();
        assert!(
            back[..] == data[(2 << 20) - 100..(2 << 20) + 3996],
            "{kind:?}"
        );
        assert!(staged.read_at(data.len() as u64 - 10, &mut back).is_err());
        assert_eq!(
            list(&*backend, kind),
            vec![],
            "{kind:?} listed before its commit"
        );
        staged.commit(&name).unwrap();
        assert_eq!(
            list(&*backend, kind),
            vec![(name.clone(), data.len() as u64)]
        );
        assert!(read(&*backend, kind, &name) == data, "{kind:?} {name}");

        // Dropped without a commit: nothing appears.
        let mut dropped = backend
            .stage(kind)
            .unwrap()
            .expect("staged once, staged again");
        dropped.append(&content(42, 5000)).unwrap();
        drop(dropped);
        assert_eq!(
            list(&*backend, kind),
            vec![(name.clone(), data.len() as u64)]
        );

        // The same name again: one whole copy.
        let mut again = backend.stage(kind).unwrap().unwrap();
        again.append(&data).unwrap();
        again.commit(&name).unwrap();
        assert_eq!(
            list(&*backend, kind),
            vec![(name.clone(), data.len() as u64)]
        );
        assert!(read(&*backend, kind, &name) == data, "{kind:?} {name}");

        // An invalid name is refused, and nothing appears.
        let mut bad = backend.stage(kind).unwrap().unwrap();
        bad.append(b"x").unwrap();
        assert!(bad.commit("../escape").is_err());
        assert_eq!(
            list(&*backend, kind),
            vec![(name.clone(), data.len() as u64)]
        );
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __backend_conformance_tests {
    ($make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let make = $make;
                $crate::conformance::$name(&make);
            }
        )*

        #[test]
        fn conformance_covers_every_property() {
            let generated: &[&str] = &[$(stringify!($name)),*];
            let all: ::std::vec::Vec<&str> =
                $crate::conformance::PROPERTIES.iter().map(|(name, _)| *name).collect();
            assert_eq!(generated, &all[..]);
        }
    };
}

//! Damage and tampering: every stored object, damaged, is detected by `check` (named by
//! its short id), refused by `open`, or fails restore; no restore ever writes wrong bytes.
//!
//! One repository is built once (a directory snapshot and a stream snapshot over several
//! packs); each case damages a copy of its files.

mod common;

use cairn_core::browse::{dump_file, resolve, walk};
use cairn_core::{
    check, restore, Backend, BlobKind, CheckOptions, CheckReport, Error, FileKind, Id, InitOptions,
    KdfParams, NoProgress, NodeKind, Password, Repository, RestoreOptions, RestoreSummary,
};
use cairn_testing::MemBackend;
use common::*;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, OnceLock};

struct Template {
    be: Arc<MemBackend>,
    /// The backed-up directory's path in the snapshot (the directory itself is gone).
    src: String,
    /// Relative path → contents of every regular file below `src`.
    files: BTreeMap<String, Vec<u8>>,
    /// Relative path → target of every symlink below `src`.
    links: BTreeMap<String, Vec<u8>>,
    /// The directory snapshot.
    s1: Id,
    /// The stream snapshot.
    s2: Id,
    stream: Vec<u8>,
    /// Every blob (trees and data) the snapshots reference.
    s1_refs: HashSet<Id>,
    s2_refs: HashSet<Id>,
}

fn refs(repo: &Repository, snap: &cairn_core::Snapshot) -> HashSet<Id> {
    let mut out = HashSet::from([snap.tree]);
    walk(repo, &snap.tree, "", &mut |_, node| {
        match &node.kind {
            NodeKind::Dir { subtree } => {
                out.insert(*subtree);
            }
            NodeKind::File { .. } => out.extend(data_ids(repo, node)),
            _ => {}
        }
        Ok(())
    })
    .unwrap();
    out
}

fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let (be, repo) = mem_repo(&InitOptions {
            pack_size: 1 << 20,
            ..InitOptions::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let mut files = BTreeMap::new();
        files.insert("big.bin".to_string(), random_bytes(1, 2_600_000));
        files.insert("log.txt".to_string(), log_lines(300_000));
        files.insert("empty".to_string(), Vec::new());
        files.insert("sub/small.bin".to_string(), random_bytes(2, 200_000));
        files.insert("sub/deeper/note".to_string(), b"note\n".to_vec());
        std::fs::create_dir_all(p.join("sub/deeper")).unwrap();
        for (rel, data) in &files {
            std::fs::write(p.join(rel), data).unwrap();
        }
        let mut links = BTreeMap::new();
        links.insert("link".to_string(), b"log.txt".to_vec());
        std::os::unix::fs::symlink("log.txt", p.join("link")).unwrap();

        let mut o = opts(vec![p.to_path_buf()], vec![]);
        o.threads = 2;
        let r1 = run_backup(&repo, o);
        let stream = random_bytes(3, 1_500_000);
        let r2 = run_backup(
            &repo,
            opts(vec![], vec![reader_stream("db.sql", stream.clone())]),
        );
        assert!(
            be.names(FileKind::Pack).len() >= 3,
            "the scenario needs several packs: {:?}",
            be.names(FileKind::Pack)
        );
        assert_eq!(be.names(FileKind::Snapshot).len(), 2);
        let report = check_read_data(&repo);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        Template {
            be,
            src: p.to_str().unwrap().to_string(),
            files,
            links,
            s1: r1.id,
            s2: r2.id,
            stream,
            s1_refs: refs(&repo, &r1.snapshot),
            s2_refs: refs(&repo, &r2.snapshot),
        }
    })
}

/// A copy of the template's repository, opened.
fn fresh() -> (Arc<MemBackend>, Repository) {
    let be = copy_backend(&template().be);
    let repo = open(&be).unwrap();
    (be, repo)
}

fn check_all(repo: &Repository) -> CheckReport {
    check_read_data(repo)
}

fn flip(be: &MemBackend, kind: FileKind, name: &str, at: usize) {
    be.corrupt(kind, name, |d| d[at] ^= 0x55);
}

fn assert_reported(report: &CheckReport, needle: &str) {
    assert!(
        report.errors.iter().any(|e| e.contains(needle)),
        "no check error names {needle:?}: {:#?}",
        report.errors
    );
}

/// Restores the directory snapshot into a new temporary target.
fn restore_s1(repo: &Repository) -> (cairn_core::Result<RestoreSummary>, tempfile::TempDir) {
    let t = template();
    let target = tempfile::tempdir().unwrap();
    let out = target.path().join("out");
    let result = (|| {
        repo.load_index()?;
        let snap = repo.load_snapshot(&t.s1.to_hex())?;
        let node = resolve(repo, &t.s1, &snap, &t.src)?;
        let opts = RestoreOptions {
            target: out,
            ..RestoreOptions::default()
        };
        restore(repo, &node, &t.src, &opts, &NoProgress).map(|(s, _)| s)
    })();
    (result, target)
}

/// Every file in the restore target holds exactly its snapshot's bytes; returns the
/// files present.
fn verify_no_wrong_bytes(target: &Path) -> BTreeSet<String> {
    let t = template();
    let mut present = BTreeSet::new();
    let root = target.join("out");
    if !root.exists() {
        return present;
    }
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(&root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(path);
            } else if ft.is_symlink() {
                let got = std::fs::read_link(&path).unwrap();
                assert_eq!(
                    Some(&got.as_os_str().as_bytes().to_vec()),
                    t.links.get(&rel)
                );
            } else {
                let want = t
                    .files
                    .get(&rel)
                    .unwrap_or_else(|| panic!("restore made an unknown file {rel}"));
                let got = std::fs::read(&path).unwrap();
                assert!(got == *want, "{rel} restored with wrong bytes");
                present.insert(rel);
            }
        }
    }
    present
}

/// Restore is complete and correct.
fn assert_restores_fully(repo: &Repository, what: &str) {
    let (r, target) = restore_s1(repo);
    let s = r.unwrap_or_else(|e| panic!("{what}: restore failed: {e}"));
    assert_eq!(s.errors, 0, "{what}");
    let present = verify_no_wrong_bytes(target.path());
    let all: BTreeSet<String> = template().files.keys().cloned().collect();
    assert_eq!(present, all, "{what}");
}

fn dump_stream(repo: &Repository) -> cairn_core::Result<Vec<u8>> {
    let t = template();
    let snap = repo.load_snapshot(&t.s2.to_hex())?;
    let node = resolve(repo, &t.s2, &snap, "db.sql")?;
    let mut out = Vec::new();
    dump_file(repo, &node, &mut out)?;
    Ok(out)
}

#[test]
fn undamaged_copy_checks_and_restores() {
    let (_be, repo) = fresh();
    let report = check_all(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.snapshots, 2);
    assert_restores_fully(&repo, "undamaged");
    assert!(dump_stream(&repo).unwrap() == template().stream);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Where {
    Magic,
    Envelope,
    Blob(Id, BlobKind),
    Header,
    HeaderLength,
}

#[test]
fn a_flipped_byte_in_any_pack_is_detected_and_never_restored() {
    let t = template();
    let (be, repo) = fresh();
    repo.load_index().unwrap();
    let mut cases: Vec<(String, usize, Where)> = Vec::new();
    {
        let index = repo.index();
        for name in be.names(FileKind::Pack) {
            let len = be.read(FileKind::Pack, &name).unwrap().len();
            cases.push((name.clone(), 0, Where::Magic));
            cases.push((name.clone(), 5 + 30, Where::Envelope));
            cases.push((name.clone(), len - 20, Where::Header));
            cases.push((name.clone(), len - 1, Where::HeaderLength));
            let mut blobs: Vec<_> = index
                .blobs()
                .filter(|(_, loc)| index.pack(loc.pack).id.to_hex() == name)
                .map(|(id, loc)| (*id, loc))
                .collect();
            blobs.sort_by_key(|(_, loc)| loc.offset);
            // The first blob, the last, and one of each kind.
            let mut picked: Vec<_> = blobs.first().into_iter().chain(blobs.last()).collect();
            picked.extend(blobs.iter().find(|(_, l)| l.kind == BlobKind::Tree));
            picked.extend(blobs.iter().find(|(_, l)| l.kind == BlobKind::Data));
            picked.dedup_by_key(|(id, _)| *id);
            for (id, loc) in picked {
                let at = (loc.offset + loc.sealed_len / 2) as usize;
                cases.push((name.clone(), at, Where::Blob(*id, loc.kind)));
            }
        }
    }
    assert!(cases
        .iter()
        .any(|c| matches!(c.2, Where::Blob(_, BlobKind::Data))));
    assert!(cases
        .iter()
        .any(|c| matches!(c.2, Where::Blob(_, BlobKind::Tree))));

    for (name, at, place) in cases {
        let what = format!("pack {} byte {at} ({place:?})", &name[..8]);
        let original = be.read(FileKind::Pack, &name).unwrap();
        flip(&be, FileKind::Pack, &name, at);

        let report = check_all(&repo);
        assert_reported(&report, &format!("pack {}", &name[..8]));
        if let Where::Blob(id, kind) = place {
            let kind = if kind == BlobKind::Data {
                "data"
            } else {
                "tree"
            };
            assert_reported(&report, &format!("{kind} blob {}", id.short()));
        }

        let (r, target) = restore_s1(&repo);
        let present = verify_no_wrong_bytes(target.path());
        match place {
            Where::Blob(id, kind) if t.s1_refs.contains(&id) => {
                assert!(
                    r.as_ref().map_or(true, |s| s.errors > 0),
                    "{what}: restore reported nothing: {r:?}"
                );
                if kind == BlobKind::Data {
                    for (rel, data) in &t.files {
                        if whole_buffer_ids(&repo, repo.files_chunker(), data).contains(&id) {
                            assert!(!present.contains(rel), "{what}: {rel} was left behind");
                        }
                    }
                }
            }
            // Restore reads blobs with ranged reads through the index (which repeats the
            // envelope), so damage outside the blobs it needs must not stop it.
            _ => {
                let s = r.unwrap_or_else(|e| panic!("{what}: restore failed: {e}"));
                assert_eq!(s.errors, 0, "{what}");
                assert_eq!(present.len(), t.files.len(), "{what}");
            }
        }
        match (dump_stream(&repo), place) {
            (Ok(bytes), _) => assert!(bytes == t.stream, "{what}: stream dumped wrong"),
            (Err(_), Where::Blob(id, _)) if t.s2_refs.contains(&id) => {}
            (Err(e), _) => panic!("{what}: dumping the stream failed: {e}"),
        }
        be.corrupt(FileKind::Pack, &name, |d| *d = original);
    }
    let report = check_all(&repo);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn swapped_packs_are_detected() {
    let (be, repo) = fresh();
    let packs = be.names(FileKind::Pack);
    let (a, b) = (&packs[0], &packs[1]);
    let da = be.read(FileKind::Pack, a).unwrap();
    let db = be.read(FileKind::Pack, b).unwrap();
    be.corrupt(FileKind::Pack, a, |d| *d = db.clone());
    be.corrupt(FileKind::Pack, b, |d| *d = da.clone());

    let report = check_all(&repo);
    for p in [a, b] {
        assert_reported(
            &report,
            &format!("pack {}: contents do not match its name", &p[..8]),
        );
    }
    let (r, target) = restore_s1(&repo);
    verify_no_wrong_bytes(target.path());
    let t = template();
    repo.load_index().unwrap();
    let touches_s1 = {
        let index = repo.index();
        t.s1_refs.iter().any(|id| {
            let pack = index.pack(index.get(id).unwrap().pack).id.to_hex();
            pack == *a || pack == *b
        })
    };
    if touches_s1 {
        assert!(r.as_ref().map_or(true, |s| s.errors > 0), "{r:?}");
    }
    if let Ok(bytes) = dump_stream(&repo) {
        assert!(bytes == t.stream);
    }
}

#[test]
fn missing_and_truncated_packs_are_found_without_reading_data() {
    let (be, repo) = fresh();
    let packs = be.names(FileKind::Pack);
    be.corrupt(FileKind::Pack, &packs[0], |d| d.truncate(d.len() / 2));
    be.remove(FileKind::Pack, &packs[1]).unwrap();
    let report = check(&repo, &CheckOptions::default(), &NoProgress).unwrap();
    assert_reported(&report, &format!("pack {} is truncated", &packs[0][..8]));
    assert_reported(&report, &format!("pack {} is missing", &packs[1][..8]));
    let (r, target) = restore_s1(&repo);
    verify_no_wrong_bytes(target.path());
    assert!(r.as_ref().map_or(true, |s| s.errors > 0) || dump_stream(&repo).is_err());
}

#[test]
fn a_flipped_byte_in_an_index_file_is_detected() {
    let names = template().be.names(FileKind::Index);
    assert!(!names.is_empty());
    for name in names {
        let be = copy_backend(&template().be);
        let len = be.read(FileKind::Index, &name).unwrap().len();
        flip(&be, FileKind::Index, &name, len / 2);
        let repo = open(&be).unwrap();
        // Skipped and reported: what other index files list still reads.
        repo.load_index().unwrap();
        assert_eq!(repo.index_damage(), vec![name.clone()]);
        let report = check_all(&repo);
        assert_reported(&report, &format!("index {}", &name[..8]));
        let repo = open(&be).unwrap();
        let (r, target) = restore_s1(&repo);
        // What other index files list comes back, never a wrong byte; a restore that
        // reports no error is whole.
        let present = verify_no_wrong_bytes(target.path());
        if matches!(&r, Ok(s) if s.errors == 0) {
            assert_eq!(present.len(), template().files.len(), "{r:?}");
        }
    }
}

#[test]
fn a_flipped_byte_in_a_snapshot_is_detected() {
    let t = template();
    let (be, repo) = fresh();
    let name = t.s1.to_hex();
    let len = be.read(FileKind::Snapshot, &name).unwrap().len();
    for at in [0, 4, 5 + 10, len / 2, len - 1] {
        let original = be.read(FileKind::Snapshot, &name).unwrap();
        flip(&be, FileKind::Snapshot, &name, at);
        let report = check_all(&repo);
        assert_reported(&report, &format!("snapshot {}", t.s1.short()));
        assert_eq!(report.snapshots, 1, "byte {at}");
        assert!(repo.load_snapshot(&name).is_err(), "byte {at}");
        let (r, target) = restore_s1(&repo);
        assert!(r.is_err(), "byte {at}");
        assert!(verify_no_wrong_bytes(target.path()).is_empty());
        be.corrupt(FileKind::Snapshot, &name, |d| *d = original);
    }
}

#[test]
fn a_snapshot_replaced_by_another_is_detected() {
    let t = template();
    let (be, repo) = fresh();
    let other = be.read(FileKind::Snapshot, &t.s2.to_hex()).unwrap();
    be.corrupt(FileKind::Snapshot, &t.s1.to_hex(), |d| *d = other);
    match repo.load_snapshot(&t.s1.to_hex()) {
        Err(Error::Corrupt { what }) => assert!(what.contains(&t.s1.short()), "{what}"),
        r => panic!("expected Corrupt, got {r:?}"),
    }
    let report = check_all(&repo);
    assert_reported(&report, &format!("snapshot {}", t.s1.short()));
    assert_eq!(report.snapshots, 1);
}

/// The current (and the only other defensible) answer to a damaged key file's sealed
/// data: the password does not open it. Error::Corrupt would be better (see below).
#[test]
fn a_damaged_key_file_does_not_open() {
    let be = copy_backend(&template().be);
    let key = be.names(FileKind::Key).pop().unwrap();
    let json = be.read(FileKind::Key, &key).unwrap();
    let at = hex_digit_after(&json, b"\"data\"");
    be.corrupt(FileKind::Key, &key, |d| d[at] = other_hex_digit(d[at]));
    match open(&be) {
        Err(Error::WrongPassword) | Err(Error::Corrupt { .. }) => {}
        r => panic!("expected WrongPassword or Corrupt, got {r:?}"),
    }
}

/// A key file that does not match its name (the hash of its bytes) is damaged, and
/// format.md says such damage is detectable without a key; reporting it as a wrong
/// password sends the user looking for another password (exit code 12).
#[test]

fn a_damaged_key_file_is_reported_as_corrupt_not_as_a_wrong_password() {
    let be = copy_backend(&template().be);
    let key = be.names(FileKind::Key).pop().unwrap();
    let json = be.read(FileKind::Key, &key).unwrap();
    let at = hex_digit_after(&json, b"\"data\"");
    be.corrupt(FileKind::Key, &key, |d| d[at] = other_hex_digit(d[at]));
    match open(&be) {
        Err(Error::Corrupt { what }) => assert!(what.contains(&key[..8]), "{what}"),
        r => panic!("expected Corrupt naming key file {}, got {r:?}", &key[..8]),
    }
}

#[test]
fn key_files_that_no_longer_parse_or_were_weakened_are_refused() {
    let be = copy_backend(&template().be);
    let key = be.names(FileKind::Key).pop().unwrap();
    let original = be.read(FileKind::Key, &key).unwrap();
    // Broken JSON under its old name: the bytes no longer match the name.
    be.corrupt(FileKind::Key, &key, |d| d[0] ^= 0x55);
    match open(&be) {
        Err(Error::Corrupt { what }) => assert!(what.contains(&key[..8]), "{what}"),
        r => panic!("expected Corrupt, got {r:?}"),
    }
    // Broken JSON renamed to match its hash, as an attacker with write access can do.
    let broken = be.read(FileKind::Key, &key).unwrap();
    let renamed = hex::encode(blake3::hash(&broken).as_bytes());
    be.remove(FileKind::Key, &key).unwrap();
    be.write(FileKind::Key, &renamed, &broken).unwrap();
    match open(&be) {
        Err(Error::Format { what, .. }) => assert!(what.contains(&renamed[..8]), "{what}"),
        r => panic!("expected Format, got {r:?}"),
    }
    be.remove(FileKind::Key, &renamed).unwrap();
    be.write(FileKind::Key, &key, &original).unwrap();
    // Memory cost lowered below the floor (65536 KiB → 55536 KiB).
    let weakened = String::from_utf8(original.clone())
        .unwrap()
        .replacen("\"memory_kib\": 65536", "\"memory_kib\": 55536", 1)
        .into_bytes();
    assert_ne!(weakened, original, "key file layout changed");
    // Renamed to match its new hash: only the parameter floor stops it.
    let renamed = hex::encode(blake3::hash(&weakened).as_bytes());
    be.remove(FileKind::Key, &key).unwrap();
    be.write(FileKind::Key, &renamed, &weakened).unwrap();
    match open(&be) {
        Err(Error::WeakKey { key: k, .. }) => assert_eq!(k, &renamed[..8]),
        r => panic!("expected WeakKey, got {r:?}"),
    }
}

#[test]
fn a_damaged_key_file_does_not_lock_out_other_keys() {
    let be = copy_backend(&template().be);
    let first = be.names(FileKind::Key).pop().unwrap();
    let second_pw = Password::new(b"second password".to_vec());
    {
        let repo = open(&be).unwrap();
        repo.add_key(&second_pw, KdfParams::DEFAULT).unwrap();
    }
    let json = be.read(FileKind::Key, &first).unwrap();
    let at = hex_digit_after(&json, b"\"data\"");
    be.corrupt(FileKind::Key, &first, |d| d[at] = other_hex_digit(d[at]));
    let repo = Repository::open(be.clone() as Arc<dyn Backend>, &second_pw).unwrap();
    assert_restores_fully(&repo, "opened with the second key");
}

#[test]
fn a_flipped_byte_in_the_config_is_refused() {
    let be = copy_backend(&template().be);
    let len = be.read(FileKind::Config, "config").unwrap().len();
    for at in [0, 5 + 20, len / 2, len - 1] {
        let original = be.read(FileKind::Config, "config").unwrap();
        flip(&be, FileKind::Config, "config", at);
        match open(&be) {
            Err(Error::Corrupt { what }) => assert_eq!(what, "config", "byte {at}"),
            r => panic!("byte {at}: expected Corrupt, got {r:?}"),
        }
        be.corrupt(FileKind::Config, "config", |d| *d = original);
    }
    open(&be).unwrap();
}

/// A damaged snapshot is reported, but the other snapshots stay usable: they can be
/// found (restore goes through `find_snapshot`) and new backups can be made.
#[test]

fn one_damaged_snapshot_does_not_hide_the_others() {
    let t = template();
    let (be, repo) = fresh();
    flip(&be, FileKind::Snapshot, &t.s1.to_hex(), 100);
    let (id, _) = repo
        .find_snapshot(&t.s2.to_hex()[..8])
        .expect("an undamaged snapshot can be found");
    assert_eq!(id, t.s2);
    let r = cairn_core::backup(
        &repo,
        opts(vec![], vec![reader_stream("db.sql", b"new".to_vec())]),
        &NoProgress,
    );
    assert!(r.is_ok(), "backup after a snapshot was damaged: {r:?}");
}

/// The position of the first hex digit after `marker`'s value starts.
fn hex_digit_after(json: &[u8], marker: &[u8]) -> usize {
    let start = json
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("marker in key file")
        + marker.len();
    let quote = start + json[start..].iter().position(|&b| b == b'"').unwrap();
    let at = quote + 1 + 10;
    assert!(json[at].is_ascii_hexdigit());
    at
}

fn other_hex_digit(b: u8) -> u8 {
    if b == b'0' {
        b'1'
    } else {
        b'0'
    }
}

#[test]
fn read_data_subsets_cover_every_pack_once_and_find_the_damage_in_one_part() {
    let (be, repo) = fresh();
    let packs = be.names(FileKind::Pack);
    assert!(packs.len() >= 3, "the template has {} packs", packs.len());
    flip(&be, FileKind::Pack, &packs[0], 100);
    let run = |subset: &str| {
        let opts = CheckOptions {
            read_data: false,
            subset: Some(subset.parse().unwrap()),
        };
        check(&repo, &opts, &NoProgress).unwrap()
    };
    let mut read = 0;
    let mut damaged_in = Vec::new();
    for n in 1..=3 {
        let r = run(&format!("{n}/3"));
        read += r.packs_read;
        // Reading the pack names it first; the structural part of every run may also
        // meet the damage if it hit a tree blob.
        let read_pack = format!("pack {}", &packs[0][..8]);
        if r.errors.iter().any(|e| e.starts_with(&read_pack)) {
            damaged_in.push(n);
        }
    }
    assert_eq!(read, packs.len(), "the three parts read every pack once");
    assert_eq!(
        damaged_in.len(),
        1,
        "the damaged pack is in exactly one part"
    );
    let all = run("100%");
    assert_eq!(all.packs_read, packs.len());
    assert!(!all.errors.is_empty());
    let some = run("1%");
    assert_eq!(some.packs_read, 1, "1% of a few packs rounds up to one");
    for bad in ["0/3", "4/3", "3", "0%", "101%", "x/y"] {
        assert!(bad.parse::<cairn_core::DataSubset>().is_err(), "{bad}");
    }
}

/// Replayed objects: after the stream snapshot is forgotten and pruned, an attacker puts
/// back the old index files and the forgotten snapshot. Check reports the blobs and
/// packs that are gone; the directory snapshot still restores fully and correctly (its
/// blobs are found where prune left them), and the replayed snapshot restores nothing
/// wrong.
#[test]
fn replayed_index_files_and_snapshots_are_detected() {
    let t = template();
    let (be, repo) = fresh();
    let old_indexes: Vec<(String, Vec<u8>)> = be
        .names(FileKind::Index)
        .into_iter()
        .map(|n| {
            let bytes = be.read(FileKind::Index, &n).unwrap();
            (n, bytes)
        })
        .collect();
    let old_snapshot = be.read(FileKind::Snapshot, &t.s2.to_hex()).unwrap();
    repo.remove_snapshot(&t.s2).unwrap();
    let lock = repo.lock(true, "prune", std::time::Duration::ZERO).unwrap();
    let report = cairn_core::prune(
        &repo,
        &lock,
        &cairn_core::PruneOptions {
            max_unused: 0.0,
            dry_run: false,
        },
    )
    .unwrap();
    drop(lock);
    assert!(
        report.packs_deleted > 0,
        "prune must delete packs: {report:?}"
    );
    // The replay.
    for (name, bytes) in &old_indexes {
        be.write(FileKind::Index, name, bytes).unwrap();
    }
    be.write(FileKind::Snapshot, &t.s2.to_hex(), &old_snapshot)
        .unwrap();
    let repo = open(&be).unwrap();
    let report = check_all(&repo);
    assert!(
        !report.errors.is_empty(),
        "the replay went unnoticed: {report:?}"
    );
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("is missing (named by the index)")),
        "{:#?}",
        report.errors
    );
    assert_restores_fully(&repo, "after the replay");
    match dump_stream(&repo) {
        Ok(bytes) => assert_eq!(bytes, t.stream, "the replayed snapshot restored wrong"),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

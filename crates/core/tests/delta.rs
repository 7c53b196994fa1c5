//! Delta blobs: a stream backed up night after night stores each changed chunk as a
//! delta against the chunk it replaces.
//!
//! Properties: every night reads back byte for byte; a night stores far less than in a
//! repository without deltas; chains of bases a backup writes stay short (a base three
//! links deep is replaced by its chain's first blob), however many nights; prune keeps
//! the bases that kept snapshots need, and check finds a base that is gone; a damaged
//! chain does not spread to the next night; a version 1 repository never receives a
//! delta blob.

mod common;

use cairn_core::{prune, Backend, FileKind, Id, InitOptions, PackEntry, PruneOptions, Repository};
use common::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const NAME: &str = "db/dump.sql";
/// The deepest chain a backup writes (`REBASE_DEPTH` in the store).
const WRITTEN_DEPTH: usize = 3;

/// A table dump: `rows` lines, the content of each given by its version.
fn render(versions: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(versions.len() * 90);
    for (i, v) in versions.iter().enumerate() {
        out.extend_from_slice(
            format!(
                "{i}\tcustomer-{}\t{}.{:02}\tshipped to street {} number {}\tv{v}\n",
                i * 7919 % 10007,
                (i * 31 + *v as usize) % 5000,
                i % 100,
                i % 997,
                (i * 13 + *v as usize * 17) % 301,
            )
            .as_bytes(),
        );
    }
    out
}

/// Nights of a table of 30,000 rows: each night 150 rows change (most among the last
/// tenth, where an application's recent rows are) and 300 are appended.
fn nights(n: usize) -> Vec<Vec<u8>> {
    let mut versions = vec![0u32; 30_000];
    let mut rng = Rng(7);
    let mut out = Vec::new();
    for night in 1..=n as u32 {
        out.push(render(&versions));
        let len = versions.len() as u64;
        for k in 0..150 {
            let row = if k % 5 == 0 {
                rng.below(len)
            } else {
                len - 1 - rng.below(len / 10)
            };
            versions[row as usize] = night;
        }
        versions.extend(std::iter::repeat_n(night, 300));
    }
    out
}

/// Every indexed pack entry, by blob id.
fn entries(be: &Arc<cairn_testing::MemBackend>, repo: &Repository) -> HashMap<Id, PackEntry> {
    let mut out = HashMap::new();
    for name in be.names(FileKind::Index) {
        for (_, es) in repo.read_index_file(&name).unwrap() {
            for e in es {
                out.insert(e.id, e);
            }
        }
    }
    out
}

/// Links from `id` to a blob that is not a delta.
fn depth(entries: &HashMap<Id, PackEntry>, id: &Id) -> usize {
    match entries[id].base {
        Some(b) => 1 + depth(entries, &b),
        None => 0,
    }
}

fn back_up_nights(repo: &Repository, nights: &[Vec<u8>]) -> Vec<(Id, u64)> {
    nights
        .iter()
        .map(|data| {
            let r = run_backup(repo, opts(vec![], vec![reader_stream(NAME, data.clone())]));
            let stored = r.snapshot.summary.as_ref().unwrap().added.bytes_stored;
            (r.id, stored)
        })
        .collect()
}

fn read_night(repo: &Repository, id: &Id) -> Vec<u8> {
    let snap = repo.find_snapshot(&id.to_hex()).unwrap().1;
    dump(repo, &node_at(repo, id, &snap, NAME))
}

#[test]
fn nightly_changes_are_stored_as_deltas_and_read_back() {
    let data = nights(12);
    let (be, repo) = mem_repo(&InitOptions::default());
    let (_be1, repo1) = mem_repo(&InitOptions {
        version: 1,
        ..InitOptions::default()
    });
    let snaps = back_up_nights(&repo, &data);
    let snaps1 = back_up_nights(&repo1, &data);

    // Each night reads back exactly.
    for ((id, _), want) in snaps.iter().zip(&data) {
        assert!(read_night(&repo, id) == *want, "night differs");
    }
    // Far less stored per night than chunks compressed alone.
    let with: u64 = snaps[1..].iter().map(|(_, n)| n).sum();
    let without: u64 = snaps1[1..].iter().map(|(_, n)| n).sum();
    assert!(
        with * 2 < without,
        "nights 2 to 12 stored {with} bytes with deltas, {without} without"
    );
    // Chains reach the written cap and never pass it in twelve nights: a base that deep
    // makes the next night's chunk a delta of its chain's first blob (depth 1).
    let es = entries(&be, &repo);
    let deltas = es.values().filter(|e| e.base.is_some()).count();
    let deepest = es.keys().map(|id| depth(&es, id)).max().unwrap();
    assert!(deltas > 20, "{deltas} delta blobs");
    assert_eq!(deepest, WRITTEN_DEPTH, "deepest chain");

    let r = check_read_data(&repo);
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    // A fresh process reads them as well (nothing cached).
    let again = open(&be).unwrap();
    again.load_index().unwrap();
    let (last, _) = snaps.last().unwrap();
    assert!(read_night(&again, last) == *data.last().unwrap());
}

#[test]
fn version_1_repositories_get_no_delta_blobs() {
    let data = nights(3);
    let (be, repo) = mem_repo(&InitOptions {
        version: 1,
        ..InitOptions::default()
    });
    back_up_nights(&repo, &data);
    assert!(entries(&be, &repo).values().all(|e| e.base.is_none()));
    assert_eq!(open(&be).unwrap().config().version, 1);
    assert!(check_read_data(&repo).errors.is_empty());
}

#[test]
fn prune_keeps_the_bases_that_kept_snapshots_need() {
    let data = nights(6);
    let (be, repo) = mem_repo(&InitOptions::default());
    let snaps = back_up_nights(&repo, &data);
    // Keep only the last night: its deltas' bases belong to forgotten nights only.
    for (id, _) in &snaps[..snaps.len() - 1] {
        repo.remove_snapshot(id).unwrap();
    }
    let lock = repo.lock(true, "test", Duration::ZERO).unwrap();
    let opts = PruneOptions {
        max_unused: 0.0,
        ..PruneOptions::default()
    };
    let r = prune(&repo, &lock, &opts).unwrap();
    drop(lock);
    assert!(r.packs_deleted + r.packs_repacked > 0, "{r:#?}");
    let repo = open(&be).unwrap();
    let r = check_read_data(&repo);
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    let (last, _) = snaps.last().unwrap();
    assert!(read_night(&repo, last) == *data.last().unwrap());
}

#[test]
fn a_missing_base_is_found_by_check_and_never_read_as_data() {
    let data = nights(3);
    let (be, repo) = mem_repo(&InitOptions::default());
    let snaps = back_up_nights(&repo, &data);
    let es = entries(&be, &repo);
    let delta = es.values().find(|e| e.base.is_some()).unwrap();
    let base = delta.base.unwrap();
    // Remove the base from the index (as if its pack and index entry were lost), keep
    // every other blob: rewrite the index files without it.
    let mut packs = Vec::new();
    for name in be.names(FileKind::Index) {
        for (info, es) in repo.read_index_file(&name).unwrap() {
            packs.push((info, es.into_iter().filter(|e| e.id != base).collect()));
        }
        be.remove(FileKind::Index, &name).unwrap();
    }
    repo.write_index_file(&packs).unwrap();
    let repo = open(&be).unwrap();
    let r = check_read_data(&repo);
    let want = format!("stored as a delta of {}, which is missing", base.short());
    assert!(
        r.errors.iter().any(|e| e.contains(&want)),
        "{:#?}",
        r.errors
    );
    // Restore of a night that needs it fails; it never yields other bytes.
    let failed = snaps.iter().zip(&data).any(|((id, _), want)| {
        let snap = repo.find_snapshot(&id.to_hex()).unwrap().1;
        let node = node_at(&repo, id, &snap, NAME);
        let mut out = Vec::new();
        match cairn_core::browse::dump_file(&repo, &node, &mut out) {
            Ok(_) => {
                assert!(out == *want, "a night read back wrong");
                false
            }
            Err(e) => {
                assert!(e.to_string().contains(&base.short()), "{e}");
                true
            }
        }
    });
    assert!(failed, "no night needed the removed base");
}

/// A chain's first blob that no longer reads (its pack damaged) does not stop the next
/// night: a chunk whose base needs it is stored whole or against another base, the
/// backup succeeds, and every blob it writes reads back without the damaged ones.
#[test]
fn a_damaged_chain_root_does_not_spread_to_the_next_night() {
    let data = nights(5);
    let (be, repo) = mem_repo(&InitOptions::default());
    back_up_nights(&repo, &data[..4]);
    let before = entries(&be, &repo);
    // The first blobs of the chains nights 2 to 4 built.
    let roots: std::collections::HashSet<Id> = before
        .values()
        .filter_map(|e| e.base)
        .filter(|b| before[b].base.is_none())
        .collect();
    assert!(!roots.is_empty(), "no chain was written");
    for name in be.names(FileKind::Index) {
        for (info, es) in repo.read_index_file(&name).unwrap() {
            for e in es.iter().filter(|e| roots.contains(&e.id)) {
                let at = e.offset as usize + e.sealed_len as usize / 2;
                be.corrupt(FileKind::Pack, &info.id.to_hex(), |b| b[at] ^= 0x40);
            }
        }
    }
    // A fresh process, so that nothing read before is cached.
    let repo = open(&be).unwrap();
    repo.load_index().unwrap();
    for r in &roots {
        assert!(repo.read_blob(r).is_err(), "a damaged root still reads");
    }
    back_up_nights(&repo, &data[4..]);
    let after = entries(&be, &repo);
    let new: Vec<&PackEntry> = after
        .values()
        .filter(|e| !before.contains_key(&e.id))
        .collect();
    assert!(
        new.iter()
            .any(|e| e.kind == cairn_core::BlobKind::Data && e.base.is_none()),
        "no chunk stored whole"
    );
    for e in new {
        let mut link = e.base;
        while let Some(b) = link {
            assert!(!roots.contains(&b), "a new blob depends on a damaged one");
            link = after[&b].base;
        }
        assert!(repo.read_blob(&e.id).is_ok(), "a new blob does not read");
    }
}

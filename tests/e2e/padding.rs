//! The cost of padding packs and index files, measured on a real repository: for each
//! pack and index file, its size against the size it would have unpadded (format
//! versions 1 and 2), computed from the index. Run by hand on a benchmark repository
//! (docs/benchmarks.md, "Padding"):
//!
//! `CAIRN_MEASURE_REPO=DIR CAIRN_MEASURE_PASSWORD=PW cargo test --test e2e -- --ignored --nocapture padding_overhead`

use cairn_core::{Backend as _, FileKind};
use std::collections::BTreeMap;

#[test]
#[ignore = "measures a repository named in the environment; run by hand"]
fn padding_overhead() {
    let dir = std::env::var("CAIRN_MEASURE_REPO").expect("CAIRN_MEASURE_REPO");
    let pw = std::env::var("CAIRN_MEASURE_PASSWORD").expect("CAIRN_MEASURE_PASSWORD");
    let backend = std::sync::Arc::new(cairn_backend::LocalBackend::new(std::path::Path::new(&dir)));
    let repo =
        cairn_core::Repository::open(backend.clone(), &cairn_core::Password::new(pw.into_bytes()))
            .unwrap();
    let sizes =
        |kind| -> BTreeMap<String, u64> { backend.list(kind).unwrap().into_iter().collect() };
    let (packs, indexes) = (sizes(FileKind::Pack), sizes(FileKind::Index));
    let entries_len = |entries: &[cairn_core::PackEntry]| -> u64 {
        entries
            .iter()
            .map(|e| 45 + 32 * u64::from(e.base.is_some()))
            .sum()
    };
    let (mut pack_actual, mut pack_unpadded, mut n_packs) = (0u64, 0u64, 0u64);
    let (mut index_actual, mut index_unpadded) = (0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    for (name, &size) in &indexes {
        let listed = repo.read_index_file(name).unwrap();
        index_actual += size;
        // 5 + envelope (77) + nonce and tag (40), the pack count, each pack's id,
        // envelope and entry count, the entries.
        index_unpadded += 122
            + 4
            + listed
                .iter()
                .map(|(info, e)| 32 + info.envelope.len() as u64 + 4 + entries_len(e))
                .sum::<u64>();
        for (info, e) in listed {
            if !seen.insert(info.id) {
                continue;
            }
            let Some(&size) = packs.get(&info.id.to_hex()) else {
                continue;
            };
            n_packs += 1;
            pack_actual += size;
            // Header, blobs, sealed header (entries + 40), its length.
            pack_unpadded += 5
                + info.envelope.len() as u64
                + e.iter().map(|e| e.sealed_len as u64).sum::<u64>()
                + 40
                + entries_len(&e)
                + 4;
        }
    }
    let total: u64 = FileKind::ALL
        .iter()
        .flat_map(|&k| backend.list(k).unwrap())
        .map(|(_, s)| s)
        .sum();
    let pct = |a: u64, u: u64| 100.0 * (a as f64 - u as f64) / u as f64;
    println!(
        "packs: {n_packs}, {pack_actual} bytes, {pack_unpadded} unpadded: +{:.3} %",
        pct(pack_actual, pack_unpadded)
    );
    println!(
        "index files: {}, {index_actual} bytes, {index_unpadded} unpadded: +{:.3} %",
        indexes.len(),
        pct(index_actual, index_unpadded)
    );
    let unpadded_total = total - (pack_actual - pack_unpadded) - (index_actual - index_unpadded);
    println!(
        "repository: {total} bytes, {unpadded_total} unpadded: +{:.3} %",
        pct(total, unpadded_total)
    );
}

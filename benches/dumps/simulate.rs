//! Offline dedup + compression simulator for nightly dump series.
//!
//! For a series of night files (in order), chunk each night with FastCDC 2020
//! (`fastcdc` crate, `v2020` module) at min = avg/4, max = avg*8, dedup against
//! every chunk seen before (BLAKE3 id), and compute the bytes a repository would
//! store for the NEW chunks under several compression strategies:
//!
//!   solo      each chunk compressed alone, zstd level L (today's cairn behaviour)
//!   dictNK    each chunk compressed alone with a zstd dictionary of N KiB trained
//!             (ZDICT) on a sample of the first night's chunks; dictionary stored once
//!   groupNK   consecutive new chunks concatenated into ~N KiB frames, each frame
//!             compressed once (reference for the best achievable ratio)
//!
//!   deltaprev (--delta) each new chunk compressed alone with the previous night's bytes
//!             around the position it replaces as a raw zstd dictionary (delta reference)
//!
//! Every strategy counts `--overhead` bytes (default 100: AEAD nonce+tag, blob
//! header and index entry) per stored chunk; a compressed blob is never stored
//! larger than the raw chunk (falls back to raw).
//!
//! With `--lists` it also emits, per (avg, night), a row with strategy `lists`: the
//! bytes of NEW content-list metadata blobs, modelled on cairn's crates/core content.rs
//! (runs of extents cut after an id whose low 10 bits are zero once the run holds 256,
//! at most 4096; ~34 bytes per extent; one level; plus `--overhead` per list blob).
//! `--list-min N --list-cut-bits B` try other list run sizes.
//! Those bytes are the same for every compression strategy and add to its growth.
//!
//! Output: one CSV row per (avg, strategy, night) on stdout:
//!   series,avg_kib,strategy,night,raw_bytes,chunks,new_chunks,new_raw_bytes,stored_bytes
//! and, on stderr, throughput of night 1 (all chunks new) per strategy:
//!   chunk+hash MB/s and chunk+hash+compress MB/s, single thread.
//!
//! Usage:
//!   simulate --series plain --avg 4,8,16,32,64 --dict 112 --group 256,1024 \
//!            [--level 3] [--overhead 100] [--lists | --lists-only] night-1.sql night-2.sql ...

use std::collections::{HashMap, HashSet};
use std::time::Instant;

struct Args {
    series: String,
    avgs: Vec<usize>,
    dicts: Vec<usize>,
    groups: Vec<usize>,
    level: i32,
    overhead: usize,
    sample_bytes_per_dict_byte: usize,
    lists: bool,
    lists_only: bool,
    list_min: usize,
    list_cut_bits: u32,
    delta: bool,
    delta_span: usize,
    delta_back: Option<usize>,
    delta_offset: bool,
    files: Vec<String>,
}

fn list(s: &str) -> Vec<usize> {
    s.split(',').filter(|x| !x.is_empty()).map(|x| x.trim().parse().expect("number")).collect()
}

fn parse_args() -> Args {
    let mut a = Args {
        series: "series".into(),
        avgs: vec![4, 8, 16, 32, 64],
        dicts: vec![112],
        groups: vec![256, 1024],
        level: 3,
        overhead: 100,
        sample_bytes_per_dict_byte: 100,
        lists: false,
        lists_only: false,
        list_min: 256,
        list_cut_bits: 10,
        delta: false,
        delta_span: 1,
        delta_back: None,
        delta_offset: false,
        files: vec![],
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        match x.as_str() {
            "--series" => a.series = it.next().unwrap(),
            "--avg" => a.avgs = list(&it.next().unwrap()),
            "--dict" => a.dicts = list(&it.next().unwrap()),
            "--group" => a.groups = list(&it.next().unwrap()),
            "--level" => a.level = it.next().unwrap().parse().unwrap(),
            "--overhead" => a.overhead = it.next().unwrap().parse().unwrap(),
            "--lists" => a.lists = true,
            "--delta" => a.delta = true,
            "--delta-back" => a.delta_back = Some(it.next().unwrap().parse().unwrap()),
            "--delta-offset" => a.delta_offset = true,
            "--delta-span" => a.delta_span = it.next().unwrap().parse().unwrap(),
            "--lists-only" => {
                a.lists = true;
                a.lists_only = true
            }
            "--list-min" => a.list_min = it.next().unwrap().parse().unwrap(),
            "--list-cut-bits" => a.list_cut_bits = it.next().unwrap().parse().unwrap(),
            "--sample-ratio" => a.sample_bytes_per_dict_byte = it.next().unwrap().parse().unwrap(),
            _ if x.starts_with("--") => panic!("unknown flag {x}"),
            _ => a.files.push(x),
        }
    }
    assert!(!a.files.is_empty(), "no night files given");
    a
}

enum Strategy {
    Solo,
    Dict(usize, Option<zstd::bulk::Compressor<'static>>, Vec<u8>),
    Group(usize),
}

impl Strategy {
    fn name(&self) -> String {
        match self {
            Strategy::Solo => "solo".into(),
            Strategy::Dict(k, ..) => format!("dict{k}K"),
            Strategy::Group(k) => format!("group{k}K"),
        }
    }
}

fn stored_len(raw: usize, compressed: usize) -> usize {
    compressed.min(raw)
}

/// Stored bytes for the new chunks of one night under `s` (chunks in stream order).
fn store(s: &mut Strategy, solo: &mut zstd::bulk::Compressor<'static>, chunks: &[&[u8]], overhead: usize) -> usize {
    let mut total = 0usize;
    match s {
        Strategy::Solo => {
            for c in chunks {
                total += stored_len(c.len(), solo.compress(c).unwrap().len()) + overhead;
            }
        }
        Strategy::Dict(_, comp, _) => {
            let comp = comp.as_mut().expect("dictionary trained");
            for c in chunks {
                total += stored_len(c.len(), comp.compress(c).unwrap().len()) + overhead;
            }
        }
        Strategy::Group(k) => {
            let target = *k << 10;
            let mut buf: Vec<u8> = Vec::with_capacity(target + (8 << 20));
            let mut flush = |buf: &mut Vec<u8>, total: &mut usize| {
                if !buf.is_empty() {
                    *total += stored_len(buf.len(), solo.compress(buf).unwrap().len());
                    buf.clear();
                }
            };
            for c in chunks {
                buf.extend_from_slice(c);
                total += overhead;
                if buf.len() >= target {
                    flush(&mut buf, &mut total);
                }
            }
            flush(&mut buf, &mut total);
        }
    }
    total
}

fn main() {
    let a = parse_args();
    let nights: Vec<Vec<u8>> = a.files.iter().map(|f| std::fs::read(f).expect(f)).collect();
    println!("series,avg_kib,strategy,night,raw_bytes,chunks,new_chunks,new_raw_bytes,stored_bytes");
    for &avg_k in &a.avgs {
        let avg = avg_k << 10;
        let (min, max) = (avg / 4, avg * 8);
        let mut seen: HashSet<[u8; 32]> = HashSet::new();
        let mut seen_lists: HashSet<[u8; 32]> = HashSet::new();
        let mut strategies: Vec<Strategy> = if a.lists_only { vec![] } else { vec![Strategy::Solo] };
        for &d in a.dicts.iter().filter(|_| !a.lists_only) {
            strategies.push(Strategy::Dict(d, None, vec![]));
        }
        for &g in a.groups.iter().filter(|_| !a.lists_only) {
            strategies.push(Strategy::Group(g));
        }
        let mut solo = zstd::bulk::Compressor::new(a.level).unwrap();
        // Previous night's chunks (offset, len) and id -> index, for --delta.
        let mut prev_chunks: Vec<(usize, usize)> = Vec::new();
        let mut prev_index: HashMap<[u8; 32], usize> = HashMap::new();
        for (n, data) in nights.iter().enumerate() {
            let prev_data: &[u8] = if n > 0 { &nights[n - 1] } else { &[] };
            let mut refs: Vec<&[u8]> = Vec::new();
            let mut cur_chunks: Vec<(usize, usize)> = Vec::new();
            let mut ptr = 0usize;
            // --delta-offset: ends of the last shared chunk in the old and the new night.
            let (mut old_end, mut new_end) = (0usize, 0usize);
            let t0 = Instant::now();
            let mut all = 0usize;
            let mut new_chunks: Vec<&[u8]> = Vec::new();
            let mut ids: Vec<[u8; 32]> = Vec::new();
            for c in fastcdc::v2020::FastCDC::new(data, min as u32, avg as u32, max as u32) {
                let bytes = &data[c.offset..c.offset + c.length];
                all += 1;
                let id = *blake3::hash(bytes).as_bytes();
                ids.push(id);
                if a.delta {
                    cur_chunks.push((c.offset, c.length));
                    if let Some(&i) = prev_index.get(&id) {
                        ptr = i + 1;
                        old_end = prev_chunks[i].0 + prev_chunks[i].1;
                        new_end = c.offset + c.length;
                    }
                }
                if seen.insert(id) {
                    new_chunks.push(bytes);
                    if a.delta {
                        // Reference: the previous night's chunks around the position this one
                        // replaces (the one after the last chunk both nights share, +-1).
                        let r = if prev_chunks.is_empty() {
                            &prev_data[0..0]
                        } else if a.delta_offset {
                            let target = old_end + (c.offset - new_end) + c.length / 2;
                            let k = prev_chunks.partition_point(|&(o, _)| o <= target).saturating_sub(1);
                            &prev_data[prev_chunks[k].0..prev_chunks[k].0 + prev_chunks[k].1]
                        } else {
                            let lo = ptr.saturating_sub(a.delta_back.unwrap_or(a.delta_span)).min(prev_chunks.len() - 1);
                            let hi = (ptr + a.delta_span).min(prev_chunks.len() - 1);
                            &prev_data[prev_chunks[lo].0..prev_chunks[hi].0 + prev_chunks[hi].1]
                        };
                        refs.push(r);
                        ptr += 1;
                    }
                }
            }
            if a.lists {
                // Content-list blobs (cairn content.rs: LIST_MIN 256, LIST_MAX 4096, LIST_CUT_BITS 10).
                let (mut list_bytes, mut start) = (0usize, 0usize);
                for i in 0..ids.len() {
                    let run = i + 1 - start;
                    let low = u16::from_le_bytes([ids[i][0], ids[i][1]]) & ((1u16 << a.list_cut_bits) - 1);
                    if (run >= a.list_min && low == 0) || run >= 4096 || i + 1 == ids.len() {
                        let mut h = blake3::Hasher::new();
                        for id in &ids[start..=i] {
                            h.update(id);
                        }
                        if seen_lists.insert(*h.finalize().as_bytes()) {
                            list_bytes += run * 34 + 1 + a.overhead;
                        }
                        start = i + 1;
                    }
                }
                let new_raw: usize = new_chunks.iter().map(|c| c.len()).sum();
                println!(
                    "{},{},lists,{},{},{},{},{},{}",
                    a.series, avg_k, n + 1, data.len(), all, new_chunks.len(), new_raw, list_bytes
                );
            }
            let chunk_secs = t0.elapsed().as_secs_f64();
            let new_raw: usize = new_chunks.iter().map(|c| c.len()).sum();
            if n == 0 {
                eprintln!(
                    "[{}] avg={}K night1 {:.1} MB: chunk+blake3 {:.0} MB/s",
                    a.series, avg_k, data.len() as f64 / 1e6, data.len() as f64 / 1e6 / chunk_secs
                );
            }
            if a.delta {
                // deltaprev: each new chunk compressed alone with its reference region of the
                // previous night as a raw-content zstd dictionary (a delta against the old
                // version; restore then needs the referenced chunks: chains).
                let tc = Instant::now();
                let mut stored = 0usize;
                for (c, r) in new_chunks.iter().zip(&refs) {
                    let z = if r.is_empty() {
                        solo.compress(c).unwrap().len()
                    } else {
                        zstd::bulk::Compressor::with_dictionary(a.level, r).unwrap().compress(c).unwrap().len()
                    };
                    stored += stored_len(c.len(), z) + a.overhead;
                }
                if n == 1 {
                    eprintln!(
                        "[{}] avg={}K deltaprev: night2 new chunks {:.1} MB compressed at {:.0} MB/s",
                        a.series, avg_k, new_raw as f64 / 1e6, new_raw as f64 / 1e6 / tc.elapsed().as_secs_f64()
                    );
                }
                println!(
                    "{},{},deltaprev,{},{},{},{},{},{}",
                    a.series, avg_k, n + 1, data.len(), all, new_chunks.len(), new_raw, stored
                );
                prev_index = cur_chunks.iter().zip(&ids).enumerate().map(|(i, (_, id))| (*id, i)).collect();
                prev_chunks = cur_chunks;
            }
            for s in strategies.iter_mut() {
                let mut extra = 0usize;
                if let Strategy::Dict(k, comp, dict) = s {
                    if comp.is_none() {
                        // Train on an evenly spaced sample of the first night's chunks.
                        let budget = (*k << 10) * a.sample_bytes_per_dict_byte;
                        let step = (new_raw / budget.max(1)).max(1);
                        let samples: Vec<&[u8]> = new_chunks.iter().step_by(step).copied().collect();
                        let tt = Instant::now();
                        *dict = zstd::dict::from_samples(&samples, *k << 10).expect("train dictionary");
                        eprintln!(
                            "[{}] avg={}K dict{}K trained on {} samples ({:.1} MB) in {:.1}s -> {} bytes",
                            a.series, avg_k, k, samples.len(),
                            samples.iter().map(|x| x.len()).sum::<usize>() as f64 / 1e6,
                            tt.elapsed().as_secs_f64(), dict.len()
                        );
                        *comp = Some(zstd::bulk::Compressor::with_dictionary(a.level, dict).unwrap());
                        extra = dict.len(); // the dictionary itself is stored once
                    }
                }
                let tc = Instant::now();
                let stored = store(s, &mut solo, &new_chunks, a.overhead) + extra;
                let comp_secs = tc.elapsed().as_secs_f64();
                if n == 0 {
                    eprintln!(
                        "[{}] avg={}K {}: night1 chunk+blake3+compress {:.0} MB/s (compress alone {:.0} MB/s)",
                        a.series, avg_k, s.name(),
                        data.len() as f64 / 1e6 / (chunk_secs + comp_secs),
                        data.len() as f64 / 1e6 / comp_secs
                    );
                }
                println!(
                    "{},{},{},{},{},{},{},{},{}",
                    a.series, avg_k, s.name(), n + 1, data.len(), all, new_chunks.len(), new_raw, stored
                );
            }
        }
    }
}

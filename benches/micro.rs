//! Micro-benchmarks of the pipeline's stages, each on 4 MiB: chunk, hash, compress
//! (text and random), seal and open; a stream's changed chunk compressed against its
//! base (delta blobs) at the levels a backup may use; a blob's compress-and-seal step as a
//! worker does it (compressed into its pack and sealed in place, against compressed aside
//! and then copied as it is sealed); the key derivation that opens a repository; a backup
//! of many small files, each its own blob against sharing chunks.
//! Run with `cargo bench --bench micro`.

use cairn_chunker::{Chunker, ChunkerParams};
use cairn_crypto::{
    derive_key, keyed_hash, open_in_place, seal_appended, seal_into, seal_parts_into, KdfParams,
    Key, Password,
};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;

const LEN: usize = 4 << 20;

fn random(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut ctr = 0u64;
    while out.len() < len {
        out.extend_from_slice(blake3::hash(&ctr.to_le_bytes()).as_bytes());
        ctr += 1;
    }
    out.truncate(len);
    out
}

fn text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0u64;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                "{i}\tcustomer-{}\t{}.{:02}\t2026-11-{:02}\tpaid\n",
                i % 997,
                i * 37 % 10000,
                i % 100,
                i % 28 + 1
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

fn benches(c: &mut Criterion) {
    let rnd = random(LEN);
    let txt = text(LEN);
    let key = Key::random();
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sample_size(20);

    let files = Chunker::new(ChunkerParams::FILES, &[7; 32]).unwrap();
    let streams = Chunker::new(ChunkerParams::STREAMS, &[7; 32]).unwrap();
    g.bench_function("chunk/files", |b| {
        b.iter(|| files.cuts(black_box(&rnd)).count())
    });
    g.bench_function("chunk/streams", |b| {
        b.iter(|| streams.cuts(black_box(&rnd)).count())
    });
    g.bench_function("hash/keyed-blake3", |b| {
        b.iter(|| keyed_hash(&key, black_box(&rnd)))
    });
    let mut zc = zstd::bulk::Compressor::new(3).unwrap();
    let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(LEN));
    g.bench_function("compress/zstd3-text", |b| {
        b.iter(|| zc.compress_to_buffer(black_box(&txt), &mut out).unwrap())
    });
    g.bench_function("compress/zstd3-random", |b| {
        b.iter(|| zc.compress_to_buffer(black_box(&rnd), &mut out).unwrap())
    });
    let mut sealed = Vec::with_capacity(LEN + 64);
    g.bench_function("seal/xchacha20poly1305", |b| {
        b.iter(|| {
            sealed.clear();
            seal_into(&key, b"ad", black_box(&rnd), &mut sealed);
        })
    });
    sealed.clear();
    seal_into(&key, b"ad", &rnd, &mut sealed);
    let mut buf = Vec::with_capacity(LEN + 64);
    g.bench_function("open/xchacha20poly1305", |b| {
        b.iter(|| {
            buf.clear();
            buf.extend_from_slice(&sealed);
            open_in_place(&key, b"ad", &mut buf).unwrap();
        })
    });
    g.finish();

    // A changed 16 KiB chunk of a dump (one row in 200 differs) against its old version,
    // as a delta blob is written: the old chunk is the zstd prefix.
    let old = text(16 << 10);
    let mut new = old.clone();
    for row in (0..new.len() - 8).step_by(80 * 200) {
        new[row..row + 8].copy_from_slice(b"changed!");
    }
    let mut g = c.benchmark_group("delta");
    g.throughput(Throughput::Bytes(new.len() as u64));
    let mut cctx = zstd::zstd_safe::CCtx::create();
    let mut frame = Vec::with_capacity(zstd::zstd_safe::compress_bound(new.len()));
    for level in [1, 3] {
        g.bench_function(format!("compress-16k-against-base/level{level}"), |b| {
            b.iter(|| {
                frame.clear();
                cctx.compress_using_dict(&mut frame, black_box(&new), &old, level)
                    .unwrap()
            })
        });
    }
    g.finish();

    // A worker's step for one blob: compress it and seal it into the pack it goes to.
    // Since decision 0030 the zstd frame is written straight into the pack's buffer and
    // sealed where it lies; before, it was compressed into a buffer of the worker's own
    // and copied into the pack as it was sealed. Both on a file's 1 MiB chunk and a
    // stream's 16 KiB chunk, of text and of random bytes (stored raw: zstd saves nothing).
    let mut g = c.benchmark_group("blob");
    g.sample_size(20);
    let mut zc = zstd::bulk::Compressor::new(3).unwrap();
    for (name, data) in [
        ("1MiB-text", &txt[..1 << 20]),
        ("1MiB-random", &rnd[..1 << 20]),
        ("16KiB-text", &txt[..16 << 10]),
    ] {
        g.throughput(Throughput::Bytes(data.len() as u64));
        let bound = zstd::zstd_safe::compress_bound(data.len());
        // A pack's buffer, emptied each time: the step appends one sealed blob to it.
        let mut pack = Vec::with_capacity(2 * bound + 64);
        let mut aside = Vec::with_capacity(bound);
        g.bench_function(format!("compress-aside-then-seal/{name}"), |b| {
            b.iter(|| {
                pack.clear();
                aside.clear();
                let n = zc.compress_to_buffer(black_box(data), &mut aside).unwrap();
                let (flag, payload): (&[u8], &[u8]) = if n < data.len() - data.len() / 32 {
                    (&[1], &aside[..n])
                } else {
                    (&[0], data)
                };
                seal_parts_into(&key, b"ad", &[flag, payload], &mut pack);
            })
        });
        g.bench_function(format!("compress-into-pack-sealed-in-place/{name}"), |b| {
            b.iter(|| {
                pack.clear();
                seal_appended(&key, b"ad", &mut pack, |out| {
                    let at = out.len();
                    out.resize(at + 1 + bound, 0);
                    out[at] = 1;
                    match zc.compress_to_buffer(black_box(data), &mut out[at + 1..]) {
                        Ok(n) if n < data.len() - data.len() / 32 => out.truncate(at + 1 + n),
                        _ => {
                            out.truncate(at);
                            out.push(0);
                            out.extend_from_slice(data);
                        }
                    }
                });
            })
        });
    }
    g.finish();

    // The key derivation every command runs once: the default parameters, one lane
    // against four (four lanes are computed on as many cores as there are).
    let mut g = c.benchmark_group("kdf");
    g.sample_size(10);
    let password = Password::new(b"correct horse battery staple".to_vec());
    for lanes in [1, 4] {
        let params = KdfParams {
            parallelism: lanes,
            ..KdfParams::DEFAULT
        };
        g.bench_function(format!("argon2id-64MiB-t3/lanes{lanes}"), |b| {
            b.iter(|| derive_key(&password, &[7; 16], black_box(&params)).unwrap())
        });
    }
    g.finish();
}

/// A first backup of 2,000 small files (0 to 8 KiB of text, 20 directories) into a
/// repository in memory: each file its own blob (version 2) against the files of a
/// directory sharing chunks (version 3, decision 0027). The repository is made outside
/// the timed part (its key derivation would dominate).
fn small_files(c: &mut Criterion) {
    use cairn_core::{backup, BackupOptions, InitOptions, NoProgress, Repository};
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let txt = text(8 << 20);
    let mut bytes = 0u64;
    for i in 0..2000usize {
        let d = src.join(format!("d{:02}", i % 20));
        std::fs::create_dir_all(&d).unwrap();
        let len = i * 7919 % 8192;
        let start = i * 104_729 % (txt.len() - 8192);
        std::fs::write(d.join(format!("f{i:04}")), &txt[start..start + len]).unwrap();
        bytes += len as u64;
    }
    let password = Password::new(b"correct horse battery staple".to_vec());
    let mut g = c.benchmark_group("backup");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    for version in [2u32, 3] {
        g.bench_function(format!("2000-small-files/repository-v{version}"), |b| {
            b.iter_batched(
                || {
                    let be = std::sync::Arc::new(cairn_testing::MemBackend::new());
                    let opts = InitOptions {
                        version,
                        kdf: KdfParams::FLOOR,
                        ..InitOptions::default()
                    };
                    Repository::init(be, &password, &opts).unwrap()
                },
                |repo| {
                    let o = BackupOptions {
                        paths: vec![src.clone()],
                        hostname: Some("bench".into()),
                        ..BackupOptions::default()
                    };
                    backup(&repo, o, &NoProgress).unwrap()
                },
                criterion::BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(micro, benches, small_files);
criterion_main!(micro);

//! Chunking throughput: `Chunker::cuts` over 64 MiB of random data with the FILES and
//! STREAMS presets, next to `fastcdc::v2020::FastCDC` with the same sizes (and its own,
//! unseeded, gear table) as the yardstick, and `StreamChunker` over the same bytes.
//!
//! Run: `cargo bench -p cairn-chunker -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use cairn_chunker::{Chunker, ChunkerParams, StreamChunker};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const LEN: usize = 64 << 20;

/// Reproducible random bytes (blake3 in XOF mode is a fast, dependency-free PRNG here).
fn random_data(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"cairn chunker bench data")
        .finalize_xof()
        .fill(&mut data);
    data
}

fn bench_chunk(c: &mut Criterion) {
    let data = random_data(LEN);
    let mut group = c.benchmark_group("chunk");
    group.throughput(Throughput::Bytes(LEN as u64));
    group.sample_size(10);
    for (name, params) in [
        ("files", ChunkerParams::FILES),
        ("streams", ChunkerParams::STREAMS),
    ] {
        let chunker = Chunker::new(params, &[42; 32]).expect("valid preset");
        group.bench_function(format!("cairn/{name}"), |b| {
            b.iter(|| chunker.cuts(black_box(&data)).count())
        });
        // Through a reader (a slice: the copy into the buffer is part of the cost).
        group.bench_function(format!("cairn-stream/{name}"), |b| {
            b.iter(|| {
                let mut stream = StreamChunker::new(chunker.clone(), black_box(&data[..]));
                let mut n = 0usize;
                while let Some(chunk) = stream.next_chunk().expect("slices do not fail") {
                    n += chunk.len();
                }
                n
            })
        });
        let (min, avg, max) = (
            params.min_size as usize,
            params.avg_size as usize,
            params.max_size as usize,
        );
        group.bench_function(format!("fastcdc-v2020/{name}"), |b| {
            b.iter(|| fastcdc::v2020::FastCDC::new(black_box(&data), min, avg, max).count())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_chunk);
criterion_main!(benches);

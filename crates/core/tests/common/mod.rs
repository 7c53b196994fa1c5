//! Helpers shared by the integration tests of cairn-core.
#![allow(dead_code)]

use cairn_core::browse::{dump_file, resolve};
use cairn_core::{
    backup, Backend, BackupOptions, BackupResult, Extent, FileKind, Id, InitOptions, NoProgress,
    Node, NodeKind, Password, Repository, Snapshot, StreamSource,
};
use cairn_testing::MemBackend;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

pub const PASSWORD: &[u8] = b"correct horse battery staple";
pub const HOST: &str = "testhost";

pub fn password() -> Password {
    Password::new(PASSWORD.to_vec())
}

/// A fresh repository in memory (one Argon2 derivation).
pub fn mem_repo(opts: &InitOptions) -> (Arc<MemBackend>, Repository) {
    let be = Arc::new(MemBackend::new());
    let repo = Repository::init(be.clone() as Arc<dyn Backend>, &password(), opts).unwrap();
    (be, repo)
}

/// Opens the repository in `be` with the test password (one Argon2 derivation).
pub fn open(be: &Arc<MemBackend>) -> cairn_core::Result<Repository> {
    Repository::open(be.clone() as Arc<dyn Backend>, &password())
}

/// A new backend holding a copy of every file of `src`.
pub fn copy_backend(src: &MemBackend) -> Arc<MemBackend> {
    let dst = Arc::new(MemBackend::new());
    for kind in FileKind::ALL {
        for name in src.names(kind) {
            let bytes = src.read(kind, &name).unwrap();
            dst.write(kind, &name, &bytes).unwrap();
        }
    }
    dst
}

/// Options for a backup from this test host.
pub fn opts(paths: Vec<PathBuf>, streams: Vec<StreamSource>) -> BackupOptions {
    BackupOptions {
        paths,
        streams,
        hostname: Some(HOST.into()),
        ..BackupOptions::default()
    }
}

pub fn run_backup(repo: &Repository, o: BackupOptions) -> BackupResult {
    backup(repo, o, &NoProgress).unwrap()
}

pub fn reader_stream(name: &str, data: Vec<u8>) -> StreamSource {
    StreamSource::Reader {
        name: name.into(),
        reader: Box::new(io::Cursor::new(data)),
    }
}

/// The node at `path` in snapshot `id`.
pub fn node_at(repo: &Repository, id: &Id, snap: &Snapshot, path: &str) -> Node {
    resolve(repo, id, snap, path).unwrap()
}

/// A file node's data blob ids, through its list blobs (panics on holes or non-files).
pub fn data_ids(repo: &Repository, node: &Node) -> Vec<Id> {
    match &node.kind {
        NodeKind::File { content } => cairn_core::content::ContentWalk::new(repo, content)
            .map(|e| match e.unwrap().0 {
                Extent::Data(id) => id,
                e => panic!("unexpected extent {e:?}"),
            })
            .collect(),
        k => panic!("not a file: {k:?}"),
    }
}

/// A file node's contents via `dump_file`.
pub fn dump(repo: &Repository, node: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    let n = dump_file(repo, node, &mut out).unwrap();
    assert_eq!(n, out.len() as u64, "dump_file's count");
    out
}

/// The ids that chunking `data` at once with `chunker` gives.
pub fn whole_buffer_ids(
    repo: &Repository,
    chunker: &cairn_chunker::Chunker,
    data: &[u8],
) -> Vec<Id> {
    chunker.cuts(data).map(|r| repo.blob_id(&data[r])).collect()
}

/// splitmix64: a small deterministic generator for test contents.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        self.fill(&mut v);
        v
    }
}

/// Incompressible bytes from a seed.
pub fn random_bytes(seed: u64, n: usize) -> Vec<u8> {
    Rng(seed).bytes(n)
}

/// Compressible but not deduplicable text: numbered log lines.
pub fn log_lines(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 100);
    let mut i = 0u64;
    while out.len() < n {
        out.extend_from_slice(
            format!(
                "2024-05-01T12:{:02}:{:02} INFO request {i} served in {} ms\n",
                (i / 60) % 60,
                i % 60,
                i % 97
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(n);
    out
}

/// A reader that hands out its data in short pieces of 1..=max bytes and now and then
/// fails with `Interrupted` (which a correct reader loop retries).
pub struct ChoppyReader {
    data: Vec<u8>,
    pos: usize,
    max: usize,
    rng: Rng,
    interrupts: bool,
}

impl ChoppyReader {
    pub fn new(data: Vec<u8>, max: usize, seed: u64, interrupts: bool) -> ChoppyReader {
        ChoppyReader {
            data,
            pos: 0,
            max: max.max(1),
            rng: Rng(seed),
            interrupts,
        }
    }
}

impl Read for ChoppyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.interrupts && self.rng.below(16) == 0 {
            return Err(io::Error::from(io::ErrorKind::Interrupted));
        }
        let rest = self.data.len() - self.pos;
        let want = 1 + self.rng.below(self.max as u64) as usize;
        let n = want.min(rest).min(buf.len());
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// `check` with every pack read.
pub fn check_read_data(repo: &Repository) -> cairn_core::CheckReport {
    let opts = cairn_core::CheckOptions {
        read_data: true,
        ..cairn_core::CheckOptions::default()
    };
    cairn_core::check(repo, &opts, &cairn_core::NoProgress).unwrap()
}

//! Adds a synthetic index of N blobs to a repository, to measure what a large index
//! costs: N random blob ids, 256 per pack (a 16 MiB pack of 64 KiB chunks), in index
//! files of 64 packs. The packs do not exist, so `check` reports them missing; backup,
//! which only asks the index whether a blob is known, runs as against a repository of
//! that many blobs.
//!
//! Usage: CAIRN_PASSWORD=... cargo run --release --example synthetic-index -- REPO N

use cairn_core::{BlobKind, Envelope, Id, PackEntry, PackInfo, Repository};
use std::sync::Arc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, repo, n] = args.as_slice() else {
        anyhow::bail!("usage: synthetic-index REPO N");
    };
    let n: u64 = n.parse()?;
    let password = std::env::var("CAIRN_PASSWORD")?;
    let backend = Arc::new(cairn_backend::LocalBackend::new(repo));
    let repo = Repository::open(backend, &cairn_core::Password::new(password.into_bytes()))?;
    const PER_PACK: u64 = 256;
    const PACKS_PER_FILE: u64 = 64;
    let mut blob = 0u64;
    let mut pack = 0u64;
    while blob < n {
        let mut packs = Vec::new();
        for _ in 0..PACKS_PER_FILE {
            if blob >= n {
                break;
            }
            let info = PackInfo {
                id: Id(*blake3::hash(format!("synthetic pack {pack}").as_bytes()).as_bytes()),
                // A kind-1 envelope's shape (its first byte says the kind).
                envelope: Envelope::parse_prefix(&[1; 77], "synthetic").unwrap(),
            };
            pack += 1;
            let mut entries = Vec::new();
            let mut offset = 82u32;
            while blob < n && entries.len() < PER_PACK as usize {
                let id = Id(*blake3::hash(&blob.to_le_bytes()).as_bytes());
                entries.push(PackEntry {
                    kind: BlobKind::Data,
                    id,
                    offset,
                    sealed_len: 65_536 + 40,
                    raw_len: 65_536,
                    base: None,
                });
                offset += 65_536 + 40;
                blob += 1;
            }
            packs.push((info, entries));
        }
        repo.write_index_file(&packs)?;
    }
    eprintln!("added {blob} blobs in {pack} packs to the index");
    Ok(())
}

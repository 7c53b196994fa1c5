//! Entry points for the fuzz targets in `fuzz/`: every decoder of bytes that come from
//! storage. Not part of the supported API.

use crate::error::{Error, Result};
use crate::formats::{
    index,
    keys::{KeyFile, MasterKey},
    pack,
    repo_config::RepoConfig,
    sealed,
    snapshot::Snapshot,
    tree::Tree,
};
use cairn_crypto::Key;

/// Decodes an index file's plaintext.
pub fn index_file(bytes: &[u8]) -> Result<usize> {
    index::decode_index_file(bytes, "fuzz").map(|p| p.len())
}

/// Decodes a pack header's plaintext entries; returns the bytes they take (45 each, 32
/// more for a delta's base id).
pub fn pack_entries(bytes: &[u8]) -> Result<usize> {
    pack::decode_entries(bytes, "fuzz").map(|e| {
        e.iter()
            .map(|e| 45 + 32 * usize::from(e.base.is_some()))
            .sum()
    })
}

/// Decodes a padded (version 3) pack header's plaintext: entries, then the padding
/// trailer; returns the bytes the entries take (the trailer starts there).
pub fn padded_pack_entries(bytes: &[u8]) -> Result<usize> {
    pack::decode_padded_entries(bytes, "fuzz").map(|e| {
        e.iter()
            .map(|e| 45 + 32 * usize::from(e.base.is_some()))
            .sum()
    })
}

/// Parses a whole pack with a fixed key (header, envelope, entries, bounds), padded
/// (version 3) or not (versions 1 and 2).
pub fn pack_file(bytes: &[u8], key: &Key) -> Result<usize> {
    pack::read_entries(bytes, key, "fuzz").map(|(_, e)| e.len())
}

/// Opens a sealed file of any kind with a fixed key.
pub fn sealed_file(bytes: &[u8], key: &Key) -> Result<Vec<u8>> {
    let magic = match bytes.get(3) {
        Some(b'c') => sealed::Magic::Config,
        Some(b'i') => sealed::Magic::Index,
        Some(b'p') => sealed::Magic::Pack,
        _ => sealed::Magic::Snapshot,
    };
    sealed::open_file(magic, key, bytes, "fuzz")
}

/// Seals `plaintext` as a put-only key does (wrap kind 2, to the public key derived
/// from `key`), as a snapshot or, with `pack` set, in a pack's framing: seeds for the
/// `sealed_file` target.
pub fn seal_as_put_only(pack: bool, key: &Key, plaintext: &[u8]) -> Vec<u8> {
    let magic = if pack {
        sealed::Magic::Pack
    } else {
        sealed::Magic::Snapshot
    };
    let public = sealed::data_public(key);
    sealed::seal_file(magic, sealed::Wrap::Public(&public, 0), plaintext)
}

/// Decodes a tree blob's plaintext.
pub fn tree(bytes: &[u8]) -> Result<Tree> {
    Tree::decode(bytes, "fuzz")
}

/// Parses a snapshot's JSON.
pub fn snapshot(bytes: &[u8]) -> Option<Snapshot> {
    serde_json::from_slice(bytes).ok()
}

/// Parses and validates a config's JSON.
pub fn config(bytes: &[u8]) -> Result<()> {
    let c: RepoConfig =
        serde_json::from_slice(bytes).map_err(|e| Error::format("fuzz", e.to_string()))?;
    c.validate()
}

/// Parses a key file and tries to open it (a wrong password must be `Ok(None)` or a
/// clear error, never a panic). Parameters below the floor are refused before Argon2
/// runs, so the fuzzer cannot make this slow except with valid parameters.
pub fn key_file(bytes: &[u8]) -> Result<()> {
    let kf = KeyFile::parse(bytes, "fuzz")?;
    kf.params
        .check()
        .map_err(|e| Error::format("fuzz", e.to_string()))?;
    Ok(())
}

/// Parses a lock file's JSON body and decides whether it still counts (never for this
/// host, so no process is probed).
pub fn lock(bytes: &[u8]) -> Option<bool> {
    let info: crate::formats::lock::LockInfo = serde_json::from_slice(bytes).ok()?;
    Some(info.is_live(jiff::Timestamp::now(), "\u{0}fuzz"))
}

/// Seals `plaintext` as a holder of `master` can: with its meta key (`data` false) or its
/// data wrap (the data key, or the public key for a put-only key), as a file of kind
/// `magic` (`b'c'` config, `b'i'` index, `b's'` snapshot) of format `version`. For the
/// attack tests of docs/security.md: what a put-only key or an old key can write.
pub fn seal_as(
    master: &MasterKey,
    data: bool,
    magic: u8,
    version: u8,
    plaintext: &[u8],
) -> Vec<u8> {
    let magic = match magic {
        b'c' => sealed::Magic::Config,
        b'i' => sealed::Magic::Index,
        _ => sealed::Magic::Snapshot,
    };
    let wrap = if data {
        master.data_wrap()
    } else {
        master.meta_wrap()
    };
    sealed::seal_file_at(magic, wrap, version, plaintext)
}

/// Encodes an index file's plaintext (for the attack tests).
pub fn encode_index(packs: &[index::IndexedPack]) -> Vec<u8> {
    index::encode_index_file(packs)
}

/// Decodes a send log (framing, then records sealed under a fixed key); returns the
/// numbers of packs and snapshots found.
pub fn send_log(bytes: &[u8]) -> (usize, usize) {
    let log =
        crate::formats::sendlog::SendLog::new(std::path::PathBuf::new(), &Key::from_bytes([7; 32]));
    let sent = log.decode(bytes);
    (sent.packs.len(), sent.snapshots.len())
}

/// Decodes a repository history file (sealed under a fixed key), and the same bytes as
/// its plaintext (the JSON behind the seal); returns how many alarms each holds.
pub fn history(bytes: &[u8]) -> (Option<usize>, Option<usize>) {
    let h =
        crate::formats::history::History::new(std::path::PathBuf::new(), &Key::from_bytes([7; 32]));
    h.decode_both(bytes)
}

/// Stores `tree` as a tree blob, as a backup would, and returns its id: the tests write
/// trees that no backup writes (a hostile writer's) with it.
pub fn store_tree(
    repo: &crate::repository::Repository,
    tree: &Tree,
) -> Result<crate::formats::id::Id> {
    repo.load_index()?;
    crate::store::with_writer(repo, 1, |w| w.add_tree(tree)).map(|(id, _)| id)
}

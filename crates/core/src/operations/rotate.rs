//! Master-key rotation: after a key may have leaked, new files are sealed under keys of
//! a new epoch that the leaked key does not hold.
//!
//! `rotate` makes a new meta key and data key (the next key epoch), keeping the earlier
//! epochs' keys in the master key so that everything written before stays readable, and
//! then:
//! 1. writes the key file of the password in use with the new master key, and removes
//!    its old key file;
//! 2. rewrites every index file under the new meta key and removes the old ones;
//! 3. removes the other key files, when asked: they hold only the earlier epochs and
//!    would open nothing written from now on (put-only keys included, which would go on
//!    sealing to the old public key). Without the request it refuses, naming them.
//!
//! What stays readable with a leaked earlier key: packs and snapshots written before the
//! rotation, the config (chunker parameters, repository id), and the id key and chunker
//! seed are not rotated (changing them would cut and name every chunk anew), so the
//! holder can still test whether a piece of content they have is stored. What it does
//! not open: any pack, snapshot, index file or lock written after the rotation.
//!
//! Each step leaves a repository that the new key reads in full: the key file is
//! written before the old one is removed, and new index files before the old ones.
//!
//! Re-sealing the packs and snapshots written before, so that the earlier keys open
//! none of them, is `rewrite` (`key rotate --rewrite-data`).

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::formats::index::{packs_of_files, IndexedPack};
use crate::formats::keys::KeyFile;
use crate::formats::lock::Lock;
use crate::repository::Repository;
use crate::store::PACKS_PER_INDEX;
use cairn_crypto::{KdfParams, Password};
use std::collections::HashSet;

/// What a rotation did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RotateReport {
    /// The new key epoch.
    pub epoch: u32,
    /// The new key file of the password in use.
    pub key: String,
    /// Index files rewritten under the new meta key (and old ones removed).
    pub index_files_written: usize,
    /// Index files removed.
    pub index_files_removed: usize,
    /// Other key files removed.
    pub keys_removed: Vec<String>,
}

/// Rotates the master key (see the module documentation). `password` must be the one
/// the repository was opened with; `lock` must be exclusive.
pub fn rotate(
    repo: &mut Repository,
    lock: &Lock,
    password: &Password,
    params: KdfParams,
    remove_other_keys: bool,
) -> Result<RotateReport> {
    repo.require_full()?;
    lock.require_exclusive("rotation")?;
    let backend = repo.backend().clone();
    let current = repo.key_name().to_string();
    // The password must open the key file in use: it is the one rewritten.
    let bytes = backend.read(FileKind::Key, &current)?;
    if KeyFile::parse(&bytes, &current)?
        .unwrap(password, &current)?
        .is_none()
    {
        return Err(Error::WrongPassword);
    }
    let others: Vec<String> = backend
        .list(FileKind::Key)?
        .into_iter()
        .map(|(n, _)| n)
        .filter(|n| *n != current)
        .collect();
    if !others.is_empty() && !remove_other_keys {
        let names: Vec<&str> = others.iter().map(|n| &n[..8.min(n.len())]).collect();
        return Err(Error::Invalid(format!(
            "{} other key(s) ({}) would not open what is written after the rotation; \
             rerun with --remove-other-keys, then add them again",
            others.len(),
            names.join(", ")
        )));
    }
    // Read every index file before anything changes. One that every reader refuses
    // (written under an earlier epoch by a key an earlier rotation removed) is left as
    // it is: such a key must not be able to stop a rotation.
    let (readable, refused) = repo.admitted_index_files()?;
    for name in &refused {
        repo.say(&format!(
            "index {} is refused (written under an earlier key epoch by a removed key); \
             left as it is: remove it",
            &name[..8.min(name.len())]
        ));
    }
    let index_files: Vec<(String, Vec<IndexedPack>)> =
        readable.into_iter().map(|f| (f.name, f.packs)).collect();

    // 1. The key file of this password, then the old one goes. It records the snapshot
    // and index files there are now: a file sealed under the old epoch that is not among
    // them was written afterwards with a removed key, and is refused.
    let mut sealed: Vec<String> = backend
        .list(FileKind::Snapshot)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    sealed.extend(index_files.iter().map(|(n, _)| n.clone()));
    let next = repo.master().rotated(&sealed)?;
    let key = repo.write_key_file(&next, password, params)?;
    backend.remove(FileKind::Key, &current)?;
    let epoch = next.epoch();
    repo.replace_master(next, key.clone());

    // 2. The index, under the new meta key.
    let (packs, old_names) = packs_of_files(index_files);
    let packs: Vec<IndexedPack> = packs.into_values().collect();
    // The in-memory index may predate packs other clients stored since it was loaded.
    repo.adopt_index(&packs);
    let mut written = HashSet::new();
    for batch in packs.chunks(PACKS_PER_INDEX) {
        written.insert(repo.write_index_file(batch)?);
    }
    let mut removed = 0;
    for name in old_names.iter().filter(|n| !written.contains(*n)) {
        repo.remove_index_file(name)?;
        removed += 1;
    }

    // 3. The other keys, when asked.
    for name in &others {
        backend.remove(FileKind::Key, name)?;
    }
    Ok(RotateReport {
        epoch,
        key,
        index_files_written: written.len(),
        index_files_removed: removed,
        keys_removed: others,
    })
}

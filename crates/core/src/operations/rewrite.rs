//! Rewriting data under the current key epoch (`cairn key rotate --rewrite-data`).
//!
//! A rotation (see `rotate`) seals what is written from then on under a new key epoch,
//! but packs and snapshots written before stay sealed under the earlier epochs, whose
//! keys a leaked key file holds. [`rewrite_data`] re-seals them under the current epoch,
//! so that afterwards no pack, snapshot or index file opens with an earlier key:
//!
//! 1. Every index file that is sealed under an earlier epoch, or lists a pack that is,
//!    is *retired*, one at a time. Each pack it lists under an earlier epoch is read
//!    whole (its header and every blob authenticate with the pack's own file key) and
//!    its blobs are re-sealed as they are stored (compressed, or delta blobs against the
//!    same base: nothing is decompressed) into a new pack under the current epoch, with a
//!    new name, since names are hashes of the bytes. A new index file lists the new packs
//!    and the packs of the current epoch that only the retired file listed; then the
//!    retired file is removed, and then the old packs no index file lists any more.
//! 2. Packs under an earlier epoch that no index file lists (left by an interrupted run,
//!    or by an interrupted backup, or listed only by an index file that every reader
//!    refuses) are removed: no reader can reach them.
//! 3. Every snapshot under an earlier epoch is re-sealed (oldest first), stored under its
//!    new name, and the old file removed. The new snapshot's `original` keeps the id it
//!    was first taken as, so that `copy` into another repository still knows it holds it
//!    and offsite status still matches it; a `parent` that this run renamed is renamed in
//!    the child too.
//!
//! The order is prune's, and makes every moment safe to stop at (it runs under the
//! exclusive lock): a new pack is stored before an index file lists it, an index file
//! before the one it replaces is removed, an old pack is removed only when no index file
//! lists it, and a new snapshot is stored before the old one is removed. Running it again
//! continues: what is still sealed under an earlier epoch is found from the envelopes, and
//! a pack whose blobs all sit already in packs of the current epoch (written by a full key,
//! listed by a full key's index file) is removed instead of being rewritten again, and a
//! snapshot already rewritten (same `original`, time and tree) is removed.
//!
//! Who wrote a file is kept: a pack or snapshot that a put-only key sealed to the data
//! public key (wrap kind 2) is sealed to the current public key again, never with the data
//! key, so it keeps the lower rank of a put-only key's copy. A blob is not re-sealed when
//! a full key's copy of the current epoch holds it; a put-only key's copy never stands in
//! for a full key's.
//!
//! What it cannot rewrite it leaves and names in the report: a pack that is missing or
//! whose bytes do not authenticate (stays listed; `check` and `repair` deal with it), a
//! snapshot that cannot be read. Every index file must be readable, or nothing is
//! changed: a pack that a damaged index file lists would look unlisted. Snapshot and
//! index files that every command refuses (sealed under an earlier epoch after it was
//! rotated away, by a key the rotation removed) are named apart and left alone; they
//! neither count as work to continue nor stop the run, so such a key cannot hold back
//! the next rotation.
//!
//! The config stays sealed under epoch 0's meta key (no backend can replace it atomically
//! today), so the earlier keys still open it: the chunker parameters and repository id.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::index::{IndexedPack, PackInfo, Trust};
use crate::formats::keys::KeyFile;
use crate::formats::lock::Lock;
use crate::formats::pack::{open_blob, read_entries, PackBuilder};
use crate::formats::sealed::{read_header, seal_file, FileKey, Magic, Wrap};
use crate::formats::snapshot::Snapshot;
use crate::operations::rotate::{rotate, RotateReport};
use crate::repository::{short, Repository, SealedIndexFile};
use crate::store::PACKS_PER_INDEX;
use cairn_crypto::{KdfParams, Password};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// What a rewrite did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RewriteReport {
    /// The key epoch everything is sealed under now.
    pub epoch: u32,
    /// The rotation made first, if one was (see [`rotate_and_rewrite`]).
    pub rotation: Option<RotateReport>,
    /// Files found still sealed under an earlier epoch before this run (a rotation was
    /// then not made: the run continued an earlier one).
    pub continued: usize,
    /// Packs under an earlier epoch whose blobs were re-sealed into new packs.
    pub packs_rewritten: usize,
    /// Their bytes.
    pub bytes_rewritten: u64,
    /// Blobs re-sealed.
    pub blobs_rewritten: usize,
    /// New packs written.
    pub packs_written: usize,
    /// Packs under an earlier epoch whose blobs were all held already by packs of the
    /// current epoch (rewritten by an interrupted run): removed without rewriting.
    pub packs_already_rewritten: usize,
    /// Packs under an earlier epoch that no index file listed, removed.
    pub packs_unindexed_removed: usize,
    /// Old packs removed (rewritten, already rewritten and unindexed).
    pub packs_removed: usize,
    /// Index files written.
    pub index_files_written: usize,
    /// Index files removed (sealed under an earlier epoch or listing a pack that was).
    pub index_files_removed: usize,
    /// Snapshots re-sealed under the current epoch (old name, new name).
    pub snapshots_rewritten: Vec<(Id, Id)>,
    /// Snapshots under an earlier epoch whose rewrite an interrupted run had stored:
    /// removed.
    pub snapshots_already_rewritten: usize,
    /// Key files of earlier epochs removed (left by an interrupted rotation).
    pub keys_removed: Vec<String>,
    /// What is still sealed under an earlier epoch and could not be rewritten, each with
    /// the reason.
    pub left: Vec<String>,
    /// Files sealed under an earlier epoch that every command refuses (written after a
    /// rotation by a key it removed): neither rewritten nor counted, left for the admin
    /// to remove.
    pub refused: Vec<String>,
}

impl RewriteReport {
    /// True when nothing is left under an earlier epoch (but the config).
    pub fn complete(&self) -> bool {
        self.left.is_empty()
    }

    /// True when nothing was under an earlier epoch to begin with.
    pub fn nothing_to_do(&self) -> bool {
        self.packs_rewritten == 0
            && self.packs_already_rewritten == 0
            && self.packs_unindexed_removed == 0
            && self.index_files_removed == 0
            && self.snapshots_rewritten.is_empty()
            && self.snapshots_already_rewritten == 0
            && self.left.is_empty()
    }
}

/// Progress of a rewrite, one line at a time (e.g. "packs: 3/40").
pub type RewriteProgress<'a> = &'a (dyn Fn(&str) + Sync);

/// Counts the files a rewrite would re-seal: index files sealed under an earlier epoch,
/// packs under one that an index file lists, and snapshots under one that this key
/// accepts (a file refused as written by a removed key is not counted: it cannot be
/// rewritten and must not stop a new rotation). Zero when every file is sealed under the
/// current epoch.
pub fn earlier_epoch_files(repo: &Repository) -> Result<usize> {
    repo.require_full()?;
    let epoch = repo.master().epoch();
    let (files, _) = repo.admitted_index_files()?;
    let mut packs = HashSet::new();
    let mut count = 0;
    for f in &files {
        if f.envelope.epoch() < epoch {
            count += 1;
        }
        for (info, _) in &f.packs {
            if info.envelope.epoch() < epoch && packs.insert(info.id) {
                count += 1;
            }
        }
    }
    // Packs that no index file lists are not counted: a removed key can still write
    // such packs, and must not keep the next run from making a new epoch. (A run
    // stopped while it removes them leaves snapshots under the earlier epoch, unless
    // there are none: then the next run rotates again, and removes them too.)
    for (name, _) in repo.backend().list(FileKind::Snapshot)? {
        let bytes = repo.backend().read(FileKind::Snapshot, &name)?;
        if let Ok((_, env)) = read_header(Magic::Snapshot, &bytes, &name) {
            if env.epoch() < epoch && repo.master().admits(env.epoch(), &name) {
                count += 1;
            }
        }
    }
    Ok(count)
}

/// `key rotate --rewrite-data`: when every file is sealed under the current epoch,
/// rotates (see [`rotate`]) and rewrites what the rotation left under the earlier epoch;
/// when some files are still sealed under an earlier one (an interrupted rewrite, or a
/// rotation made without it), makes no new epoch and rewrites them. `lock` must be
/// exclusive; `password` the one the repository was opened with.
pub fn rotate_and_rewrite(
    repo: &mut Repository,
    lock: &Lock,
    password: &Password,
    params: KdfParams,
    remove_other_keys: bool,
    progress: RewriteProgress<'_>,
) -> Result<RewriteReport> {
    repo.require_full()?;
    lock.require_exclusive("rewriting data")?;
    let pending = earlier_epoch_files(repo)?;
    let rotation = if pending == 0 {
        Some(rotate(repo, lock, password, params, remove_other_keys)?)
    } else {
        None
    };
    let mut report = rewrite_data(repo, lock, remove_other_keys, progress)?;
    report.rotation = rotation;
    report.continued = pending;
    Ok(report)
}

/// Re-seals every pack, index file and snapshot sealed under an earlier key epoch under
/// the current one; see the module documentation. Key files of earlier epochs (left by
/// an interrupted rotation) are removed with `remove_old_keys`, else refused. Needs the
/// exclusive lock.
pub fn rewrite_data(
    repo: &Repository,
    lock: &Lock,
    remove_old_keys: bool,
    progress: RewriteProgress<'_>,
) -> Result<RewriteReport> {
    repo.require_full()?;
    lock.require_exclusive("rewriting data")?;
    let epoch = repo.master().epoch();
    let mut report = RewriteReport {
        epoch,
        ..RewriteReport::default()
    };
    report.keys_removed = old_keys(repo, epoch, remove_old_keys)?;
    let result = rewrite_packs(repo, epoch, &mut report, progress)
        .and_then(|()| rewrite_snapshots(repo, epoch, &mut report, progress));
    // The packs changed under the in-memory index: read it again when next needed.
    repo.forget_index();
    result?;
    Ok(report)
}

/// Key files labelled with an earlier epoch than `epoch` (left by a rotation stopped
/// before it removed them): removed when `remove`, else an error naming them.
fn old_keys(repo: &Repository, epoch: u32, remove: bool) -> Result<Vec<String>> {
    let backend = repo.backend();
    let mut old = Vec::new();
    for (name, _) in backend.list(FileKind::Key)? {
        if name == repo.key_name() {
            continue;
        }
        let bytes = backend.read(FileKind::Key, &name)?;
        // A key file that does not parse opens nothing; it is not ours to judge here.
        if let Ok(kf) = KeyFile::parse(&bytes, &name) {
            if kf.epoch.unwrap_or(0) < epoch {
                old.push(name);
            }
        }
    }
    if old.is_empty() {
        return Ok(old);
    }
    if !remove {
        let names: Vec<String> = old.iter().map(|n| short(n)).collect();
        return Err(Error::Invalid(format!(
            "{} key(s) of earlier epochs ({}) remain from a rotation; rerun with \
             --remove-other-keys, then add them again",
            old.len(),
            names.join(", ")
        )));
    }
    for name in &old {
        backend.remove(FileKind::Key, name)?;
    }
    Ok(old)
}

/// Steps 1 and 2 of the module documentation.
fn rewrite_packs(
    repo: &Repository,
    epoch: u32,
    report: &mut RewriteReport,
    progress: RewriteProgress<'_>,
) -> Result<()> {
    let backend = repo.backend();
    let (mut files, refused) = repo.admitted_index_files()?;
    for name in refused {
        report.refused.push(format!(
            "index {} (sealed under an earlier epoch, but written after it was rotated \
             away: by a key the rotation removed; every command refuses it)",
            short(&name)
        ));
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let stored: HashSet<String> = backend
        .list(FileKind::Pack)?
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let old = |info: &PackInfo| info.envelope.epoch() < epoch;
    let retired =
        |f: &SealedIndexFile| f.envelope.epoch() < epoch || f.packs.iter().any(|(i, _)| old(i));

    // Blobs a full key's pack of the current epoch holds: they need no other copy. Only
    // packs that are stored and listed by a full key's index file count, so a put-only
    // key's copy (which may hold anything under a blob's id) never replaces a full
    // key's.
    let mut covered: HashSet<Id> = HashSet::new();
    // Packs the files that stay list, and how many retired files list each old pack.
    let mut listed_kept: HashSet<Id> = HashSet::new();
    let mut listings: HashMap<Id, usize> = HashMap::new();
    let mut total_old = HashSet::new();
    for f in &files {
        let retire = retired(f);
        for (info, entries) in &f.packs {
            if !old(info)
                && !info.envelope.is_public()
                && f.trust == Trust::Full
                && stored.contains(&info.id.to_hex())
            {
                covered.extend(entries.iter().map(|e| e.id));
            }
            if !retire {
                listed_kept.insert(info.id);
            } else if old(info) {
                *listings.entry(info.id).or_default() += 1;
                total_old.insert(info.id);
            }
        }
    }
    let total_old = total_old.len();
    let retire: Vec<SealedIndexFile> = files.into_iter().filter(|f| retired(f)).collect();
    if total_old > 0 {
        progress(&format!(
            "{total_old} pack(s) and {} index file(s) to rewrite",
            retire.len()
        ));
    }

    let mut handled: HashSet<Id> = HashSet::new();
    let mut relisted: HashSet<Id> = HashSet::new();
    // Old packs whose blobs are stored under the current epoch now: removed once no
    // index file lists them.
    let mut replaced: HashSet<Id> = HashSet::new();
    let mut now_listed: HashSet<Id> = listed_kept.clone();
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    for file in &retire {
        let mut list: Vec<IndexedPack> = Vec::new();
        let mut todo: Vec<&IndexedPack> = Vec::new();
        for packed in &file.packs {
            let (info, entries) = packed;
            if !old(info) {
                if !listed_kept.contains(&info.id) && relisted.insert(info.id) {
                    list.push(packed.clone());
                }
                continue;
            }
            if !handled.insert(info.id) {
                continue;
            }
            if !stored.contains(&info.id.to_hex()) {
                report.left.push(format!(
                    "pack {} is missing (left listed; run `cairn check`)",
                    info.id.short()
                ));
                relisted.insert(info.id);
                list.push(packed.clone());
            } else if entries.iter().all(|e| covered.contains(&e.id)) {
                report.packs_already_rewritten += 1;
                replaced.insert(info.id);
            } else {
                todo.push(packed);
            }
        }
        // Rewrite a few packs at a time: each holds a whole pack and its copy in memory.
        for batch in todo.chunks(workers) {
            let done: Vec<(&IndexedPack, Result<Rewritten>)> = batch
                .par_iter()
                .map(|p| (*p, rewrite_pack(repo, &p.0, &covered)))
                .collect();
            for (packed, r) in done {
                match r {
                    Ok(rw) => {
                        report.packs_rewritten += 1;
                        report.bytes_rewritten += rw.bytes;
                        report.blobs_rewritten += rw.blobs;
                        if let Some(new) = rw.pack {
                            report.packs_written += 1;
                            if !new.0.envelope.is_public() {
                                covered.extend(new.1.iter().map(|e| e.id));
                            }
                            now_listed.insert(new.0.id);
                            list.push(new);
                        }
                        replaced.insert(packed.0.id);
                    }
                    Err(Error::Backend(e)) => return Err(Error::Backend(e)),
                    Err(e) => {
                        report.left.push(format!("{e} (left as it is)"));
                        relisted.insert(packed.0.id);
                        list.push(packed.clone());
                    }
                }
                progress(&format!(
                    "packs: {}/{total_old}",
                    report.packs_rewritten + report.packs_already_rewritten
                ));
            }
        }
        // The new index file(s) first, then the retired one, then the old packs that no
        // index file lists any more.
        for batch in list.chunks(PACKS_PER_INDEX) {
            repo.write_index_file(batch)?;
            report.index_files_written += 1;
        }
        now_listed.extend(list.iter().map(|(i, _)| i.id));
        repo.remove_index_file(&file.name)?;
        report.index_files_removed += 1;
        for (info, _) in file.packs.iter().filter(|(i, _)| old(i)) {
            let n = listings.get_mut(&info.id).expect("counted above");
            *n -= 1;
            if *n == 0 && replaced.contains(&info.id) {
                backend.remove(FileKind::Pack, &info.id.to_hex())?;
                report.packs_removed += 1;
            }
        }
    }

    // 2. Packs under an earlier epoch that no index file lists.
    for name in unlisted_old_packs(repo, &now_listed, epoch)? {
        backend.remove(FileKind::Pack, &name)?;
        report.packs_unindexed_removed += 1;
        report.packs_removed += 1;
    }
    Ok(())
}

/// The stored packs that `listed` does not name and whose header says they are sealed
/// under an epoch before `epoch` (one short read each).
fn unlisted_old_packs(repo: &Repository, listed: &HashSet<Id>, epoch: u32) -> Result<Vec<String>> {
    let backend = repo.backend();
    let mut old = Vec::new();
    for (name, size) in backend.list(FileKind::Pack)? {
        if Id::from_hex(&name).is_some_and(|id| listed.contains(&id)) {
            continue;
        }
        let head = crate::backend::read_range_exact(
            backend.as_ref(),
            FileKind::Pack,
            &name,
            0,
            size.min(5 + crate::formats::sealed::ENVELOPE_MAX_LEN as u64),
        )?;
        if let Ok((_, env)) = read_header(Magic::Pack, &head, &name) {
            if env.epoch() < epoch {
                old.push(name);
            }
        }
    }
    Ok(old)
}

/// What became of one old pack.
struct Rewritten {
    /// The new pack, unless every blob was held elsewhere already.
    pack: Option<IndexedPack>,
    blobs: usize,
    bytes: u64,
}

/// Reads the pack `info` whole, authenticates it, and stores its blobs that `covered`
/// does not hold, re-sealed under the current epoch, in a new pack (of the same wrap
/// kind: a put-only key's pack stays sealed to the public key).
fn rewrite_pack(repo: &Repository, info: &PackInfo, covered: &HashSet<Id>) -> Result<Rewritten> {
    let name = info.id.to_hex();
    let what = format!("pack {}", info.id.short());
    let bytes = repo.backend().read(FileKind::Pack, &name)?;
    if Id::of_file(&bytes) != info.id {
        return Err(Error::corrupt(&what));
    }
    let master = repo.master();
    let (fk, entries) = read_entries(&bytes, &master.data_keys()?, &what)?;
    let wrap = if fk.envelope.is_public() {
        Wrap::Public(master.data_public(), master.epoch())
    } else {
        master.data_wrap()
    };
    let new_fk = FileKey::new(Magic::Pack, wrap);
    let mut builder = PackBuilder::new(&new_fk, bytes.len());
    let mut blobs = 0;
    for e in entries.iter().filter(|e| !covered.contains(&e.id)) {
        let sealed = &bytes[e.offset as usize..e.offset as usize + e.sealed_len as usize];
        let stored = open_blob(&fk.key, e.kind, &e.id, sealed).map_err(|_| {
            Error::corrupt(format!(
                "{} blob {} in {what}",
                crate::repository::kind_name(e.kind),
                e.id.short()
            ))
        })?;
        let (&compression, payload) = stored.split_first().ok_or_else(|| Error::corrupt(&what))?;
        builder.push_new(
            &new_fk.key,
            e.kind,
            e.id,
            e.raw_len,
            compression,
            payload,
            e.base,
        );
        blobs += 1;
    }
    let pack = if builder.is_empty() {
        None
    } else {
        let (id, out, entries) = builder.finish_in_memory(&new_fk);
        repo.backend().write(FileKind::Pack, &id.to_hex(), &out)?;
        Some((
            PackInfo {
                id,
                envelope: new_fk.envelope,
            },
            entries,
        ))
    };
    Ok(Rewritten {
        pack,
        blobs,
        bytes: bytes.len() as u64,
    })
}

/// A snapshot as read for the rewrite.
struct Found {
    id: Id,
    snap: Snapshot,
    json: Vec<u8>,
    public: bool,
}

/// Reads the snapshot file `name`: its key epoch (`None` when even its header is
/// damaged), and what it holds, or why it cannot be read. An error only when the storage
/// fails.
fn read_snapshot(repo: &Repository, name: &str) -> Result<(Option<u32>, Result<Found>)> {
    let bytes = repo.backend().read(FileKind::Snapshot, name)?;
    let what = format!("snapshot {}", short(name));
    let Ok((_, env)) = read_header(Magic::Snapshot, &bytes, &what) else {
        return Ok((None, Err(Error::corrupt(what))));
    };
    let found = Id::from_hex(name)
        .ok_or_else(|| Error::corrupt(&what))
        .and_then(|id| {
            let (snap, json, _) = repo.open_snapshot(name, &bytes)?;
            Ok(Found {
                id,
                snap,
                json,
                public: env.is_public(),
            })
        });
    Ok((Some(env.epoch()), found))
}

/// Step 3 of the module documentation.
fn rewrite_snapshots(
    repo: &Repository,
    epoch: u32,
    report: &mut RewriteReport,
    progress: RewriteProgress<'_>,
) -> Result<()> {
    let backend = repo.backend();
    let names = backend.list(FileKind::Snapshot)?;
    let read: Vec<Result<(Option<u32>, Result<Found>)>> = names
        .par_iter()
        .map(|(name, _)| read_snapshot(repo, name))
        .collect();
    let present: HashSet<Id> = names.iter().filter_map(|(n, _)| Id::from_hex(n)).collect();
    // Snapshots of the current epoch by the id they were first taken as: an interrupted
    // run may have stored the rewrite of an old one already.
    let mut current: HashMap<Id, Vec<(Id, Snapshot)>> = HashMap::new();
    let mut old: Vec<Found> = Vec::new();
    for (r, (name, _)) in read.into_iter().zip(&names) {
        let (file_epoch, found) = r?;
        match (file_epoch, found) {
            (Some(e), Ok(f)) if e >= epoch => {
                let original = f.snap.original.unwrap_or(f.id);
                current.entry(original).or_default().push((f.id, f.snap));
            }
            (Some(_), Ok(f)) => old.push(f),
            (Some(e), Err(err)) if e < epoch => {
                if repo.master().admits(e, name) {
                    report.left.push(format!("{err} (left as it is)"));
                } else {
                    report.refused.push(err.to_string());
                }
            }
            // Damaged, but not under an earlier epoch: `check` names it.
            _ => {}
        }
    }
    old.sort_by(|a, b| a.snap.time.cmp(&b.snap.time).then(a.id.cmp(&b.id)));
    let total = old.len();
    if total > 0 {
        progress(&format!("{total} snapshot(s) to rewrite"));
    }
    let master = repo.master();
    let mut renamed: HashMap<Id, Id> = HashMap::new();
    for f in old {
        let original = f.snap.original.unwrap_or(f.id);
        let done = current.get(&original).and_then(|v| {
            v.iter()
                .find(|(_, s)| s.tree == f.snap.tree && s.time == f.snap.time)
                .map(|(id, _)| *id)
        });
        if let Some(done) = done {
            backend.remove(FileKind::Snapshot, &f.id.to_hex())?;
            renamed.insert(f.id, done);
            report.snapshots_already_rewritten += 1;
            continue;
        }
        let what = || format!("snapshot {}", f.id.short());
        // The JSON as stored, with only `original` and `parent` changed: fields this
        // version does not know survive.
        let mut value: serde_json::Value =
            serde_json::from_slice(&f.json).map_err(|e| Error::format(what(), e.to_string()))?;
        let obj = value
            .as_object_mut()
            .ok_or_else(|| Error::format(what(), "not a JSON object"))?;
        obj.insert("original".into(), serde_json::json!(original.to_hex()));
        // A parent renamed by this run (or by an interrupted one) is renamed here too; a
        // parent that is gone otherwise stays as it is, as after `forget`.
        let mut snap = f.snap.clone();
        if let Some(p) = f.snap.parent {
            let moved =
                renamed
                    .get(&p)
                    .copied()
                    .or_else(|| match current.get(&p).map(Vec::as_slice) {
                        Some([(id, _)]) if !present.contains(&p) => Some(*id),
                        _ => None,
                    });
            if let Some(n) = moved {
                obj.insert("parent".into(), serde_json::json!(n.to_hex()));
                snap.parent = Some(n);
            }
        }
        let json = serde_json::to_vec(&value).expect("JSON serializes");
        let wrap = if f.public {
            Wrap::Public(master.data_public(), epoch)
        } else {
            master.data_wrap()
        };
        let bytes = seal_file(Magic::Snapshot, wrap, &json);
        let id = Id::of_file(&bytes);
        backend.write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
        backend.remove(FileKind::Snapshot, &f.id.to_hex())?;
        renamed.insert(f.id, id);
        snap.original = Some(original);
        current.entry(original).or_default().push((id, snap));
        report.snapshots_rewritten.push((f.id, id));
        progress(&format!(
            "snapshots: {}/{total}",
            report.snapshots_rewritten.len() + report.snapshots_already_rewritten
        ));
    }
    Ok(())
}

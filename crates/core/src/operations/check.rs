//! Check: is the repository whole, and does every stored byte authenticate?
//!
//! Structure (always): every index file authenticates and matches its name; every
//! pack an index names exists and is long enough; the base of every delta blob is
//! indexed; every snapshot authenticates; every tree of every snapshot decodes and
//! every blob a tree names is indexed. With
//! `read_data`, every pack is read whole: its name must be the hash of its bytes, its
//! header must agree with the index, and every blob must open and hash to its id.
//!
//! Problems are collected, not fatal, so one run names all the damage. Packs that no
//! index names (left by an interrupted backup) are reported as information only.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::formats::content::ContentSource;
use crate::formats::id::Id;
use crate::formats::pack::{delta_parts, open_blob, read_entries};
use crate::formats::tree::{Extent, NodeKind};
use crate::repository::{kind_name, short, Repository};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// The file contents met while checking trees, and the list blobs still to read.
#[derive(Default)]
struct Contents {
    /// List blobs to read, with a path that names them.
    todo: Vec<(Id, String)>,
    /// Every reference to a list blob: the list, the length claimed, where.
    claims: Vec<(Id, u64, String)>,
    /// The length each list read covers.
    lengths: HashMap<Id, u64>,
}

impl Contents {
    /// Checks that the data blobs of `extents` are indexed and queues its lists; returns
    /// the bytes the extents cover, or `None` when a data blob is missing.
    fn extents(
        &mut self,
        repo: &Repository,
        extents: &[Extent],
        path: &str,
        err: &dyn Fn(String),
    ) -> Option<u64> {
        let index = repo.index();
        let mut sum = Some(0u64);
        for e in extents {
            let len = match e {
                Extent::Data(id) => match index.get(id) {
                    Some(l) => Some(l.raw_len as u64),
                    None => {
                        err(format!("data blob {} of {path} is missing", id.short()));
                        None
                    }
                },
                Extent::Part { id, offset, len } => match index.get(id) {
                    Some(l)
                        if offset
                            .checked_add(*len)
                            .is_some_and(|end| *len > 0 && end <= l.raw_len as u64) =>
                    {
                        Some(*len)
                    }
                    Some(l) => {
                        err(format!(
                            "a part of {path} ({len} bytes at {offset}) lies outside data blob {} ({} bytes)",
                            id.short(),
                            l.raw_len
                        ));
                        None
                    }
                    None => {
                        err(format!("data blob {} of {path} is missing", id.short()));
                        None
                    }
                },
                Extent::Hole(n) => Some(*n),
                Extent::List { id, len } => {
                    self.todo.push((*id, path.to_string()));
                    self.claims.push((*id, *len, path.to_string()));
                    Some(*len)
                }
            };
            sum = sum.zip(len).and_then(|(a, b)| a.checked_add(b));
        }
        sum
    }
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// Read and authenticate every pack.
    pub read_data: bool,
    /// Read only these packs (implies reading data).
    pub subset: Option<DataSubset>,
}

/// Which packs `check` reads, to spread `--read-data` over several runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DataSubset {
    /// Group `n` of `of` (1-based): the packs whose id, as a number, is `n - 1` modulo
    /// `of`. Running 1/7 to 7/7 on successive days reads every pack once a week.
    Part {
        /// Which group, 1 to `of`.
        n: u32,
        /// How many groups.
        of: u32,
    },
    /// This share of the packs (0 to 1), chosen at random at every run.
    Fraction(f64),
}

impl std::str::FromStr for DataSubset {
    type Err = Error;

    /// Parses `n/t` (e.g. `2/7`) or `x%` (e.g. `10%`).
    fn from_str(text: &str) -> Result<DataSubset> {
        let bad = || {
            Error::Invalid(format!(
                "read-data subset {text:?}: give n/t (e.g. 2/7, 1 <= n <= t) or a percentage (e.g. 10%)"
            ))
        };
        let t = text.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(bad());
            }
            return Ok(DataSubset::Fraction(v / 100.0));
        }
        let (n, of) = t.split_once('/').ok_or_else(bad)?;
        let (n, of): (u32, u32) = (
            n.trim().parse().map_err(|_| bad())?,
            of.trim().parse().map_err(|_| bad())?,
        );
        if n == 0 || of == 0 || n > of {
            return Err(bad());
        }
        Ok(DataSubset::Part { n, of })
    }
}

impl DataSubset {
    /// The packs of `ids` this subset selects.
    pub fn select<'a>(&self, ids: Vec<&'a Id>) -> Vec<&'a Id> {
        match *self {
            DataSubset::Part { n, of } => ids
                .into_iter()
                .filter(|id| {
                    let v = u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
                    v % of as u64 == (n - 1) as u64
                })
                .collect(),
            DataSubset::Fraction(f) => {
                let mut seed = [0u8; 32];
                cairn_crypto::random_bytes(&mut seed);
                let k = ((ids.len() as f64 * f).ceil() as usize).min(ids.len());
                let mut keyed: Vec<([u8; 32], &Id)> = ids
                    .into_iter()
                    .map(|id| (*blake3::keyed_hash(&seed, &id.0).as_bytes(), id))
                    .collect();
                keyed.sort_unstable_by_key(|k| k.0);
                keyed.into_iter().take(k).map(|(_, id)| id).collect()
            }
        }
    }
}

/// What check found.
#[derive(Debug, Default, Clone, Serialize)]
pub struct CheckReport {
    /// Damage found, one line each, naming the object.
    pub errors: Vec<String>,
    /// Harmless findings (unused packs).
    pub info: Vec<String>,
    /// Snapshots checked.
    pub snapshots: usize,
    /// Distinct trees checked.
    pub trees: usize,
    /// Blobs in the index.
    pub blobs: usize,
    /// Packs in the index.
    pub packs: usize,
    /// Packs read and authenticated (all with `read_data`, some with a subset).
    pub packs_read: usize,
    /// Bytes read and authenticated with `read_data`.
    pub bytes_read: u64,
}

/// Receives check progress.
pub trait CheckProgress: Sync {
    /// A pack was read (with `read_data`).
    fn pack_read(&self, _bytes: u64) {}
    /// Total packs to read.
    fn packs_total(&self, _n: usize, _bytes: u64) {}
}

impl CheckProgress for crate::report::NoProgress {}

/// Checks the repository.
pub fn check(
    repo: &Repository,
    opts: &CheckOptions,
    progress: &dyn CheckProgress,
) -> Result<CheckReport> {
    repo.require_full()?;
    let mut report = CheckReport::default();
    let errors = Mutex::new(Vec::new());
    let err = |s: String| errors.lock().unwrap().push(s);

    // Key files: a damaged spare key would otherwise go unnoticed until it is needed.
    for (name, _) in repo.backend().list(FileKind::Key)? {
        match repo.backend().read(FileKind::Key, &name) {
            Ok(bytes) if Id::of_file(&bytes).to_hex() != name => err(format!(
                "key file {} is corrupt or has been tampered with",
                short(&name)
            )),
            Ok(bytes) => {
                if let Err(e) = crate::formats::keys::KeyFile::parse(&bytes, &name).and_then(|k| {
                    k.params.check().map_err(|e| Error::WeakKey {
                        key: short(&name),
                        detail: e.to_string(),
                    })
                }) {
                    err(e.to_string());
                }
            }
            Err(e) => err(format!("key file {}: {e}", short(&name))),
        }
    }

    // Index files, one by one so a broken one does not hide the others.
    let index_files = repo.list_index_files()?;
    let mut indexed: HashMap<Id, Vec<crate::formats::pack::PackEntry>> = HashMap::new();
    for (name, _) in &index_files {
        match repo.read_index_file(name) {
            Ok(packs) => {
                for (info, entries) in packs {
                    repo.index_packs(&[(info.clone(), entries.clone())]);
                    indexed.entry(info.id).or_default().extend(entries);
                }
            }
            Err(e) => err(format!("index {}: {e}", short(name))),
        }
    }
    report.blobs = repo.index().len();
    report.packs = indexed.len();

    // Delta blobs: each base must be indexed data (reading the delta needs it).
    {
        let index = repo.index();
        for e in indexed.values().flatten() {
            if let Some(b) = e.base {
                if index.get(&b).map(|l| l.kind) != Some(crate::formats::id::BlobKind::Data) {
                    err(format!(
                        "data blob {} is stored as a delta of {}, which is missing",
                        e.id.short(),
                        b.short()
                    ));
                }
            }
        }
    }

    // Packs: present and long enough.
    let stored: HashMap<String, u64> = repo.backend().list(FileKind::Pack)?.into_iter().collect();
    for (id, entries) in &indexed {
        let name = id.to_hex();
        let need = entries
            .iter()
            .map(|e| e.offset as u64 + e.sealed_len as u64)
            .max()
            .unwrap_or(0);
        match stored.get(&name) {
            None => err(format!(
                "pack {} is missing (named by the index)",
                id.short()
            )),
            Some(&size) if size < need => err(format!(
                "pack {} is truncated: {size} bytes, the index needs at least {need}",
                id.short()
            )),
            _ => {}
        }
    }
    for name in stored.keys() {
        if Id::from_hex(name).is_none_or(|id| !indexed.contains_key(&id)) {
            report.info.push(format!(
                "pack {} is not in any index (unused data)",
                short(name)
            ));
        }
    }

    // Snapshots and their trees.
    let listed_at = crate::formats::history::now_ms();
    let snap_names = repo.backend().list(FileKind::Snapshot)?;
    let mut roots = Vec::new();
    let mut readable = Vec::new();
    for (name, _) in &snap_names {
        match repo.load_snapshot(name) {
            Ok(s) => {
                roots.push((short(name), s.tree));
                if let Some(id) = Id::from_hex(name) {
                    readable.push((id, s));
                }
            }
            Err(e) => err(format!("snapshot {}: {e}", short(name))),
        }
    }
    // What this client remembers: a repository gone back in time is an error.
    repo.observe_snapshots(&snap_names, &readable, listed_at);
    for alarm in repo.rollback_alarms().unwrap_or_default() {
        err(alarm);
    }
    report.snapshots = roots.len();
    let mut seen: HashSet<Id> = HashSet::new();
    let mut contents = Contents::default();
    let mut stack: Vec<(Id, String)> = roots
        .into_iter()
        .map(|(s, t)| (t, format!("snapshot {s}:/")))
        .collect();
    while let Some((tree_id, path)) = stack.pop() {
        if !seen.insert(tree_id) {
            continue;
        }
        let tree = match repo.load_tree_from_repository(&tree_id) {
            Ok(t) => t,
            Err(e) => {
                err(format!("tree {} ({path}): {e}", tree_id.short()));
                continue;
            }
        };
        for node in &tree.nodes {
            let p = format!(
                "{}{}",
                path.trim_end_matches('/').to_string() + "/",
                node.display_name()
            );
            match &node.kind {
                NodeKind::Dir { subtree } => stack.push((*subtree, p)),
                NodeKind::File { content } => {
                    let sum = contents.extents(repo, content, &p, &err);
                    if sum.is_some_and(|n| n != node.size) {
                        err(format!(
                            "{p}: its contents add up to {} bytes, its size is {}",
                            sum.unwrap_or_default(),
                            node.size
                        ));
                    }
                }
                _ => {}
            }
        }
    }
    // The list blobs of long contents: each is read once, however many files share it.
    while let Some((list_id, path)) = contents.todo.pop() {
        if !seen.insert(list_id) {
            continue;
        }
        let what = format!("list {} (in {path})", list_id.short());
        match repo.list(&list_id) {
            Ok(extents) => {
                if let Some(n) = contents.extents(repo, &extents, &path, &err) {
                    contents.lengths.insert(list_id, n);
                }
            }
            Err(e) => err(format!("{what}: {e}")),
        }
    }
    for (id, claimed, path) in &contents.claims {
        if let Some(&n) = contents.lengths.get(id) {
            if n != *claimed {
                err(format!(
                    "list {} (in {path}) covers {n} bytes, {claimed} are expected",
                    id.short()
                ));
            }
        }
    }
    report.trees = seen.len();

    if opts.read_data || opts.subset.is_some() {
        let present: Vec<&Id> = indexed
            .keys()
            .filter(|id| stored.contains_key(&id.to_hex()))
            .collect();
        let chosen = match &opts.subset {
            Some(subset) => subset.select(present),
            None => present,
        };
        let packs: Vec<(&Id, &Vec<crate::formats::pack::PackEntry>)> =
            chosen.into_iter().map(|id| (id, &indexed[id])).collect();
        report.packs_read = packs.len();
        let total: u64 = packs.iter().map(|(id, _)| stored[&id.to_hex()]).sum();
        progress.packs_total(packs.len(), total);
        let bytes = std::sync::atomic::AtomicU64::new(0);
        let data_keys = repo.master().data_keys()?;
        packs.par_iter().for_each(|(id, entries)| {
            let what = format!("pack {}", id.short());
            let data = match repo.backend().read(FileKind::Pack, &id.to_hex()) {
                Ok(d) => d,
                Err(e) => return err(format!("{what}: {e}")),
            };
            bytes.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
            progress.pack_read(data.len() as u64);
            if Id::of_file(&data) != **id {
                err(format!("{what}: contents do not match its name (damaged)"));
            }
            let (fk, header) = match read_entries(&data, &data_keys, &what) {
                Ok(x) => x,
                Err(e) => return err(format!("{what}: {e}")),
            };
            let hset: HashSet<_> = header
                .iter()
                .map(|e| (e.id, e.offset, e.sealed_len, e.base))
                .collect();
            for e in entries.iter() {
                if !hset.contains(&(e.id, e.offset, e.sealed_len, e.base)) {
                    err(format!(
                        "{what}: blob {} is in the index but not in the pack header",
                        e.id.short()
                    ));
                }
            }
            for e in &header {
                let start = e.offset as usize;
                let sealed = &data[start..start + e.sealed_len as usize];
                let bwhat = || format!("{} blob {} in {what}", kind_name(e.kind), e.id.short());
                let Ok(buf) = open_blob(&fk.key, e.kind, &e.id, sealed) else {
                    err(format!("{} is corrupt or has been tampered with", bwhat()));
                    continue;
                };
                if delta_parts(&buf).map(|(_, b, _)| b) != e.base {
                    err(format!(
                        "{}: its base differs from the pack header's",
                        bwhat()
                    ));
                    continue;
                }
                if let Err(x) = repo.decode_blob(&buf, e.raw_len, &e.id, &bwhat) {
                    err(x.to_string());
                }
            }
        });
        report.bytes_read = bytes.into_inner();
    }
    report.errors = errors.into_inner().unwrap();
    report.errors.sort();
    Ok(report)
}

/// What [`verify_snapshot`] read.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct SnapshotVerified {
    /// Trees read and decoded.
    pub trees: usize,
    /// Distinct blobs (data and list) read and authenticated.
    pub blobs: usize,
    /// Their plaintext bytes.
    pub bytes: u64,
}

/// Reads back everything snapshot `id` needs, from the repository itself (never from
/// the local catalog): the snapshot file, every tree, every list blob and every data
/// blob, each authenticated and hashed to its id. The first blob that cannot be read
/// fails the call, naming it, its pack and a path that uses it.
///
/// An application restore calls this on its restore point before the first destructive
/// step: a restore point that deduplicated onto a damaged blob is found here, while
/// nothing has been changed yet.
pub fn verify_snapshot(repo: &Repository, id: &Id) -> Result<SnapshotVerified> {
    repo.require_full()?;
    repo.load_index()?;
    let snap = repo.load_snapshot(&id.to_hex())?;
    let mut out = SnapshotVerified::default();
    // Every blob, with the first path that uses it (for the message).
    let mut blobs: HashMap<Id, String> = HashMap::new();
    let mut seen_trees = HashSet::new();
    let mut todo = vec![(snap.tree, String::new())];
    while let Some((tree_id, prefix)) = todo.pop() {
        if !seen_trees.insert(tree_id) {
            continue;
        }
        let tree = repo.load_tree_from_repository(&tree_id)?;
        out.trees += 1;
        for node in &tree.nodes {
            let path = format!("{prefix}/{}", node.display_name());
            match &node.kind {
                NodeKind::Dir { subtree } => todo.push((*subtree, path)),
                NodeKind::File { content } => {
                    let mut ids = HashSet::new();
                    crate::formats::content::add_blobs(repo, content, &mut ids).map_err(|e| {
                        Error::Invalid(format!("{path} in snapshot {}: {e}", id.short()))
                    })?;
                    for b in ids {
                        blobs.entry(b).or_insert_with(|| path.clone());
                    }
                }
                _ => {}
            }
        }
    }
    let ids: Vec<Id> = blobs.keys().copied().collect();
    let failed: Mutex<Vec<(Id, String)>> = Mutex::new(Vec::new());
    let bytes = std::sync::atomic::AtomicU64::new(0);
    let pool = crate::fetch::reading_pool(repo.backend().parallelism(), "cairn-verify")?;
    pool.install(|| {
        crate::fetch::fetch_blobs(repo, &ids, &|id, blob| match blob {
            Ok((plain, _)) => {
                bytes.fetch_add(plain.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) => failed.lock().unwrap().push((*id, e.to_string())),
        })
    });
    let mut failed = failed.into_inner().unwrap();
    failed.sort();
    if let Some((blob, e)) = failed.first() {
        return Err(Error::Invalid(format!(
            "snapshot {} cannot be read back: {e} (used by {}){}",
            id.short(),
            blobs[blob],
            match failed.len() {
                1 => String::new(),
                n => format!(", and {} more blob(s) cannot be read", n - 1),
            }
        )));
    }
    out.blobs = ids.len();
    out.bytes = bytes.into_inner();
    Ok(out)
}

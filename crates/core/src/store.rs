//! The write path: deduplicate, compress, seal and pack new blobs on all cores.
//!
//! The producer (the backup walk) hands blobs to [`BlobWriter::add`], which hashes them
//! and drops those the repository or this session already has. New blobs go through a
//! bounded channel to one worker per core; each worker compresses, seals and appends to
//! its own pack, and stores the pack when it reaches the configured size (a full pack
//! still takes the blobs that fit into its padding: see `pack`). Memory stays fixed
//! whatever the size of the input: at most [`BYTES_PER_WORKER`] of blobs per worker in
//! flight (and `QUEUE_PER_WORKER` blobs), spare buffers of [`SPARE_PER_WORKER`], and the
//! unwritten end of each worker's pack, into which blobs are compressed and sealed
//! where they will be stored.
//!
//! Stored packs are added to the in-memory index at once and written to an index file
//! every [`PACKS_PER_INDEX`] packs and at the end. A crash leaves packs that no index
//! names: they are unused data, never a broken repository.

use crate::backend::FileKind;
use crate::error::{Error, Result};
use crate::formats::id::{BlobKind, Id};
use crate::formats::index::{IndexedPack, PackInfo};
use crate::formats::pack::{
    entry_len, Finished, PackBuilder, COMPRESSION_DELTA, COMPRESSION_NONE, COMPRESSION_ZSTD,
    DELTA_HEAD_LEN, ENTRY_LEN, MAX_DELTA_DEPTH,
};
use crate::formats::repo_config::DELTA_VERSION;
use crate::formats::sealed::{FileKey, Magic};
use crate::report::WriteStats;
use crate::repository::Repository;
use cairn_crypto::SEAL_OVERHEAD;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

/// Blobs queued per worker before the producer waits (streams' small chunks need a
/// deep queue; file chunks are held back by [`BYTES_PER_WORKER`] first).
const QUEUE_PER_WORKER: usize = 4;
/// Bytes of blobs per worker handed to the workers and not yet in a pack (queued or
/// being compressed); the producer waits for room before it copies a blob, so a
/// waiting reader holds no copy. One blob larger than the room goes alone.
const BYTES_PER_WORKER: usize = 2 << 20;
/// Capacity of the buffers per worker kept for the next blobs. Fewer would have the
/// readers map fresh pages for most blobs (twice the page faults, a tenth more system
/// time); more costs memory for nothing.
const SPARE_PER_WORKER: usize = 3 << 20;
/// Largest buffer capacity worth recycling (the largest file chunk).
const RECYCLE_MAX: usize = 2 << 20;
/// Largest capacity a worker keeps in its side buffers between blobs. They hold deltas
/// (of stream chunks, 128 KiB at most) and the blobs offered to a full pack's padding (a
/// file chunk among them once per pack); every other blob is compressed straight into
/// its pack. A buffer grown for a file chunk would otherwise stay at up to the largest
/// chunk for the whole backup.
const KEEP_BUFFER: usize = 512 << 10;
/// Packs per index file (about 1 GiB of data with 16 MiB packs).
pub const PACKS_PER_INDEX: usize = 64;

struct Job {
    kind: BlobKind,
    id: Id,
    data: Vec<u8>,
    /// Blobs to compress this one against (a delta blob); the one that gives the
    /// smaller blob is taken, if any is worth it.
    bases: [Option<Id>; 2],
}

struct Shared<'r> {
    repo: &'r Repository,
    file_key: FileKey,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    unindexed: Mutex<Vec<IndexedPack>>,
    /// Ids sent to the workers whose pack is not stored and indexed yet. An id leaves
    /// this set when its pack enters the index, so the set stays as small as the
    /// blobs in flight instead of growing with the backup. Lock order: `pending`, then
    /// the repository's index.
    pending: Mutex<HashSet<Id>>,
    /// The workers' last, partly filled packs, merged into as few packs as fit.
    partial: Mutex<Vec<PackBuilder>>,
    data_blobs: AtomicU64,
    tree_blobs: AtomicU64,
    bytes_raw: AtomicU64,
    bytes_stored: AtomicU64,
    packs: AtomicU64,
    flight: InFlight,
}

/// The bytes of the blobs handed to the workers and not yet in a pack, and the buffers
/// that come back from the workers for the next blobs. Memory held for blobs in flight
/// is bounded in bytes, whatever the size of the chunks: the bytes taken, plus spare
/// buffers of as many bytes at most.
struct InFlight {
    state: Mutex<Flight>,
    room: Condvar,
    /// Bytes in flight at most (but for one larger blob alone).
    cap: usize,
    /// Capacity of the spare buffers kept at most.
    spare_cap: usize,
}

#[derive(Default)]
struct Flight {
    bytes: usize,
    /// Buffers given back, reused best fit (see [`InFlight::take`]).
    spare: Vec<Vec<u8>>,
    spare_bytes: usize,
}

impl InFlight {
    fn new(cap: usize, spare_cap: usize) -> InFlight {
        InFlight {
            state: Mutex::new(Flight::default()),
            room: Condvar::new(),
            cap,
            spare_cap,
        }
    }

    /// Waits until `n` more bytes fit (or nothing is in flight), takes them, and returns
    /// a spare buffer for them when `buffer` is set (empty, maybe with capacity). Fails
    /// once `failed` is set.
    fn take(
        &self,
        n: usize,
        buffer: bool,
        failed: &AtomicBool,
    ) -> std::result::Result<Vec<u8>, ()> {
        let mut st = self.state.lock().unwrap();
        loop {
            if failed.load(Ordering::SeqCst) {
                return Err(());
            }
            if st.bytes == 0 || st.bytes + n <= self.cap {
                break;
            }
            // Woken when a worker gives bytes back; the timeout only re-checks `failed`.
            st = self
                .room
                .wait_timeout(st, std::time::Duration::from_millis(50))
                .unwrap()
                .0;
        }
        st.bytes += n;
        if !buffer {
            return Ok(Vec::new());
        }
        // The smallest spare buffer that holds `n` bytes, else the largest: a buffer
        // grows only when none is large enough, so the spare buffers keep the sizes the
        // chunks have instead of all growing to the largest chunk.
        let pick = st
            .spare
            .iter()
            .enumerate()
            .min_by_key(|(_, b)| {
                let c = b.capacity();
                if c >= n {
                    (0, c)
                } else {
                    (1, usize::MAX - c)
                }
            })
            .map(|(i, _)| i);
        let buf = pick.map(|i| st.spare.swap_remove(i)).unwrap_or_default();
        st.spare_bytes -= buf.capacity();
        Ok(buf)
    }

    /// Gives back the `n` bytes of a blob now in a pack, and its buffer.
    fn give(&self, n: usize, mut buf: Vec<u8>) {
        let mut st = self.state.lock().unwrap();
        st.bytes -= n;
        // A buffer grown for one of the rare large blobs is not kept.
        let cap = buf.capacity();
        if cap > 0 && cap <= RECYCLE_MAX && st.spare_bytes + cap <= self.spare_cap {
            buf.clear();
            st.spare_bytes += buf.capacity();
            st.spare.push(buf);
        }
        drop(st);
        self.room.notify_all();
    }

    /// Wakes every waiting producer (a worker failed or ended).
    fn wake(&self) {
        let _st = self.state.lock().unwrap();
        self.room.notify_all();
    }
}

impl Shared<'_> {
    fn fail(&self, e: Error) {
        let mut slot = self.error.lock().unwrap();
        if slot.is_none() {
            *slot = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    /// Starts a pack in `buf` (a buffer of an earlier one, or empty): written as it
    /// fills where the backend can, else in memory.
    fn new_pack(&self, buf: Vec<u8>) -> Result<PackBuilder> {
        Ok(match self.repo.backend().stage(FileKind::Pack)? {
            Some(file) => PackBuilder::staged(&self.file_key, buf, file),
            None if buf.capacity() == 0 => PackBuilder::new(
                &self.file_key,
                self.repo.config().pack_size as usize + (1 << 20),
            ),
            None => PackBuilder::with_buffer(&self.file_key, buf),
        })
    }

    /// Stores a finished pack and indexes it; returns its buffer for the next pack.
    fn store_pack(&self, builder: PackBuilder) -> Result<Vec<u8>> {
        let (id, finished, entries) = builder.finish(&self.file_key)?;
        let bytes = match finished {
            Finished::Bytes(bytes) => {
                self.repo
                    .backend()
                    .write(FileKind::Pack, &id.to_hex(), &bytes)?;
                bytes
            }
            Finished::Staged { file, spare } => {
                file.commit(&id.to_hex())?;
                spare
            }
        };
        self.packs.fetch_add(1, Ordering::Relaxed);
        let packed = (
            PackInfo {
                id,
                envelope: self.file_key.envelope,
            },
            entries,
        );
        {
            let mut pending = self.pending.lock().unwrap();
            self.repo.index_packs(std::slice::from_ref(&packed));
            for e in &packed.1 {
                pending.remove(&e.id);
            }
        }
        let batch = {
            let mut u = self.unindexed.lock().unwrap();
            u.push(packed);
            if u.len() >= PACKS_PER_INDEX {
                std::mem::take(&mut *u)
            } else {
                Vec::new()
            }
        };
        if !batch.is_empty() {
            self.repo.write_index_file(&batch)?;
        }
        Ok(bytes)
    }
}

/// Chooses the candidate bases of a blob from its id and whether it is new.
pub(crate) type PickBase<'a> = dyn FnMut(&Id, bool) -> Result<[Option<Id>; 2]> + 'a;

/// Accepts blobs from the producer; see the module documentation.
pub struct BlobWriter<'r> {
    shared: &'r Shared<'r>,
    tx: Sender<Job>,
}

impl std::fmt::Debug for BlobWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlobWriter")
    }
}

impl BlobWriter<'_> {
    /// Stores a blob unless the repository has it; returns its id and whether it was new.
    pub fn add(&self, kind: BlobKind, data: &[u8]) -> Result<(Id, bool)> {
        self.add_with_base(kind, data, &mut |_, _| Ok([None, None]))
    }

    /// Stores a blob as [`BlobWriter::add`] does; `pick_base` learns its id and whether
    /// it is new, and may name up to two data blobs to store it as a delta against (see
    /// [`crate::operations::backup::delta`]). The worker takes the one that gives the smaller blob, and
    /// stores it whole when no base is worth it: too deep in a chain, unreadable, or
    /// the repository predates delta blobs.
    pub(crate) fn add_with_base(
        &self,
        kind: BlobKind,
        data: &[u8],
        pick_base: &mut PickBase<'_>,
    ) -> Result<(Id, bool)> {
        let id = self.shared.repo.blob_id(data);
        let new = self.claim(&id)?;
        let bases = pick_base(&id, new)?;
        if !new {
            return Ok((id, false));
        }
        let mut buf = self.take(data.len(), true)?;
        buf.extend_from_slice(data);
        self.send(Job {
            kind,
            id,
            data: buf,
            bases: if kind == BlobKind::Data {
                bases
            } else {
                [None, None]
            },
        })?;
        Ok((id, true))
    }

    /// Stores a tree unless the repository has it, and remembers it for the catalog (the
    /// next backup finds its files' metadata there); returns its id.
    pub(crate) fn add_tree(&self, tree: &crate::formats::tree::Tree) -> Result<Id> {
        let bytes = tree.encode();
        let (id, _) = self.add(BlobKind::Tree, &bytes)?;
        self.shared.repo.remember_tree(id, bytes);
        Ok(id)
    }

    /// Stores a copy of a blob the index already has (prune moves blobs out of packs it
    /// deletes); `id` must be the blob's id. Returns false if this session already took it.
    pub(crate) fn add_copy(&self, kind: BlobKind, id: Id, data: Vec<u8>) -> Result<bool> {
        self.check()?;
        if !self.shared.pending.lock().unwrap().insert(id) {
            return Ok(false);
        }
        self.take(data.len(), false)?;
        self.send(Job {
            kind,
            id,
            data,
            bases: [None, None],
        })?;
        Ok(true)
    }

    /// True if the blob is new and this call is the one to store it.
    fn claim(&self, id: &Id) -> Result<bool> {
        self.check()?;
        let mut pending = self.shared.pending.lock().unwrap();
        if self.shared.repo.index().contains(id) {
            return Ok(false);
        }
        Ok(pending.insert(*id))
    }

    /// Room for a blob of `n` bytes among those in flight, and a buffer for it when
    /// `buffer` is set.
    fn take(&self, n: usize, buffer: bool) -> Result<Vec<u8>> {
        match self.shared.flight.take(n, buffer, &self.shared.failed) {
            Ok(buf) => Ok(buf),
            Err(()) => {
                self.check()?;
                Err(Error::Invalid("blob writer stopped".into()))
            }
        }
    }

    fn send(&self, job: Job) -> Result<()> {
        if self.tx.send(job).is_err() {
            self.check()?;
            return Err(Error::Invalid("blob writer stopped".into()));
        }
        Ok(())
    }

    /// Fails once a worker has failed, with that worker's error in the message. The
    /// error itself stays for [`with_writer`] to return: the producer may call this from
    /// several threads, and whichever of their errors wins, the cause must not be lost.
    pub fn check(&self) -> Result<()> {
        if self.shared.failed.load(Ordering::SeqCst) {
            return Err(match &*self.shared.error.lock().unwrap() {
                Some(e) => Error::Invalid(format!("storing blobs failed: {e}")),
                None => Error::Invalid("storing blobs failed".into()),
            });
        }
        Ok(())
    }
}

/// Runs `f` with a [`BlobWriter`], then stores the last packs and an index file.
///
/// When `f` or any worker fails, nothing more is stored and the error is returned;
/// packs already stored stay (unreferenced until a later backup reuses them or prune
/// removes them).
pub fn with_writer<T>(
    repo: &Repository,
    workers: usize,
    f: impl FnOnce(&BlobWriter<'_>) -> Result<T>,
) -> Result<(T, WriteStats)> {
    let workers = workers.max(1);
    let shared = Shared {
        repo,
        file_key: FileKey::new(Magic::Pack, repo.master().data_wrap()),
        failed: AtomicBool::new(false),
        error: Mutex::new(None),
        unindexed: Mutex::new(Vec::new()),
        pending: Mutex::new(HashSet::new()),
        partial: Mutex::new(Vec::new()),
        data_blobs: AtomicU64::new(0),
        tree_blobs: AtomicU64::new(0),
        bytes_raw: AtomicU64::new(0),
        bytes_stored: AtomicU64::new(0),
        packs: AtomicU64::new(0),
        flight: InFlight::new(BYTES_PER_WORKER * workers, SPARE_PER_WORKER * workers),
    };
    let (tx, rx) = bounded::<Job>(QUEUE_PER_WORKER * workers);
    let result = std::thread::scope(|s| {
        for _ in 0..workers {
            let rx = rx.clone();
            let shared = &shared;
            s.spawn(move || worker(shared, rx));
        }
        drop(rx);
        let writer = BlobWriter {
            shared: &shared,
            tx,
        };
        let out = f(&writer);
        if out.is_err() {
            // Store nothing more: the producer gave up, so its blobs are not needed.
            shared.failed.store(true, Ordering::SeqCst);
        }
        drop(writer);
        out
    });
    // Packs already stored are in the in-memory index; an index file must name them
    // whatever happens next, or a later backup with this `Repository` would reuse blobs
    // that no index file lists (a snapshot with missing blobs for everyone else).
    let failure = shared.error.lock().unwrap().take();
    if failure.is_some() || result.is_err() {
        let stored = std::mem::take(&mut *shared.unindexed.lock().unwrap());
        if !stored.is_empty() {
            repo.write_index_file(&stored)?;
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let value = result?;
    // Without merging, every backup would leave one small pack per worker.
    let mut merged: Option<PackBuilder> = None;
    for p in std::mem::take(&mut *shared.partial.lock().unwrap()) {
        match merged.as_mut() {
            Some(m) if m.len() + p.len() <= repo.config().pack_size as usize => m.absorb(p)?,
            _ => {
                if let Some(full) = merged.replace(p) {
                    shared.store_pack(full)?;
                }
            }
        }
    }
    if let Some(m) = merged {
        shared.store_pack(m)?;
    }
    let rest = std::mem::take(&mut *shared.unindexed.lock().unwrap());
    if !rest.is_empty() {
        repo.write_index_file(&rest)?;
    }
    let stats = WriteStats {
        data_blobs: shared.data_blobs.load(Ordering::Relaxed),
        tree_blobs: shared.tree_blobs.load(Ordering::Relaxed),
        bytes_raw: shared.bytes_raw.load(Ordering::Relaxed),
        bytes_stored: shared.bytes_stored.load(Ordering::Relaxed),
        packs: shared.packs.load(Ordering::Relaxed),
    };
    Ok((value, stats))
}

/// A base this many links deep is not extended: the new chunk is compressed against
/// the first blob of the base's chain instead (read on the way, so at no extra cost).
/// Writing a delta reads its base's whole chain back (each link decrypted, decompressed
/// and verified), so with chains that grow by one link a night every night of a stream
/// cost more than the one before; with this cap a night costs the same per changed byte
/// however many came before, and reading any blob back takes at most `REBASE_DEPTH + 1`
/// links. Decision 0025 has the measurements.
pub(crate) const REBASE_DEPTH: u8 = 3;
/// A delta against a chain's first blob that is larger than this share of the
/// plaintext (1/5; plain zstd keeps about 1/4 of a dump's bytes) is not kept: the chunk
/// has drifted too far from it and is stored whole, starting a new chain.
const REROOT_SHARE: usize = 5;
/// A first base that gives a delta under this share of the plaintext (1/8) is kept
/// without trying the second: each try costs a compression.
const GOOD_DELTA_SHARE: usize = 8;

/// The zstd level of delta frames: two below the repository's, at least 1. A delta
/// frame is mostly long matches into its base, which the fastest levels find as well:
/// at the default level 3 a delta at level 1 takes half the time for 2 % more bytes.
fn delta_level(level: i32) -> i32 {
    (level - 2).max(1)
}

/// Compresses `data` against the blob `base` into `out` (the delta blob's payload after
/// its compression byte: depth, base id, frame); `frame` is scratch space. Returns the
/// base taken (`base`, or the first blob of its chain when `base` is
/// [`REBASE_DEPTH`] links deep) when that is worth storing: the base is readable and
/// the payload is smaller than the plaintext by 1/32 at least (the rule for plain zstd
/// blobs too), and, against a chain's first blob, smaller than 1/[`REROOT_SHARE`].
fn delta_payload(
    repo: &Repository,
    level: i32,
    base: Id,
    data: &[u8],
    frame: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> Option<Id> {
    // A damaged or missing base is check's to report; this blob is then stored whole.
    let mut root = None;
    let (mut prefix, mut depth, _) = repo
        .read_blob_rooted(&base, MAX_DELTA_DEPTH - 1, Some(&mut root))
        .ok()?;
    let mut base = base;
    let mut rebased = false;
    if depth >= REBASE_DEPTH {
        let (r, plain) = root?;
        (base, prefix, depth, rebased) = (r, plain, 0, true);
    }
    crate::formats::compression::compress_against(delta_level(level), &prefix, data, frame).ok()?;
    if rebased && frame.len() > data.len() / REROOT_SHARE {
        return None;
    }
    if DELTA_HEAD_LEN - 1 + frame.len() >= data.len() - data.len() / 32 {
        return None;
    }
    out.clear();
    out.push(depth + 1);
    out.extend_from_slice(&base.0);
    out.extend_from_slice(frame);
    Some(base)
}

/// Whether a zstd frame of `n` bytes is worth storing for `raw_len` bytes: it must save
/// at least 1/32, or the blob is stored raw (reading it back then costs nothing).
fn worth_compressing(n: usize, raw_len: usize) -> bool {
    n < raw_len - raw_len / 32
}

/// Appends a blob's compression byte and payload to `out`: a zstd frame compressed
/// straight into `out` (grown by `compress_bound(data.len())` bytes for it, then cut to
/// the frame), or the raw bytes when it does not pay (see [`worth_compressing`]) or
/// there is no compressor.
fn append_payload(c: Option<&mut zstd::bulk::Compressor<'_>>, data: &[u8], out: &mut Vec<u8>) {
    let at = out.len();
    if let Some(c) = c {
        out.resize(at + 1 + zstd::zstd_safe::compress_bound(data.len()), 0);
        out[at] = COMPRESSION_ZSTD;
        match c.compress_to_buffer(data, &mut out[at + 1..]) {
            Ok(n) if worth_compressing(n, data.len()) => {
                out.truncate(at + 1 + n);
                return;
            }
            _ => out.truncate(at),
        }
    }
    out.push(COMPRESSION_NONE);
    out.extend_from_slice(data);
}

/// Marks the writer failed when a worker ends by a panic, and wakes the producers that
/// wait for room (no blob would ever give it back).
struct WorkerExit<'a, 'r>(&'a Shared<'r>);

impl Drop for WorkerExit<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.failed.store(true, Ordering::SeqCst);
        }
        self.0.flight.wake();
    }
}

fn worker(shared: &Shared<'_>, rx: Receiver<Job>) {
    let _exit = WorkerExit(shared);
    let repo = shared.repo;
    let pack_size = repo.config().pack_size as usize;
    let level = repo.config().compression_level;
    let mut compressor = if level > 0 {
        zstd::bulk::Compressor::new(level).ok()
    } else {
        None
    };
    let deltas = level > 0 && repo.config().version >= DELTA_VERSION;
    let mut compressed = Vec::new();
    let mut other = Vec::new();
    let mut frame = Vec::new();
    let mut pack: Option<PackBuilder> = None;
    let mut spare: Option<Vec<u8>> = None;
    for job in rx.iter() {
        let raw_len = job.data.len();
        // Stored unless the writer failed (then drained, so the producer never blocks).
        'job: {
            if shared.failed.load(Ordering::Relaxed) {
                break 'job;
            }
            let mut base = None;
            for b in job.bases.into_iter().flatten().filter(|_| deltas) {
                if base.is_some() && compressed.len() < raw_len / GOOD_DELTA_SHARE {
                    break;
                }
                if let Some(b) = delta_payload(repo, level, b, &job.data, &mut frame, &mut other) {
                    if base.is_none() || other.len() < compressed.len() {
                        std::mem::swap(&mut compressed, &mut other);
                        base = Some(b);
                    }
                }
            }
            // Most blobs are compressed straight into their pack: no buffer and no copy of
            // their own. Deltas, and blobs offered to a full pack's padding (their sealed
            // length decides whether the pack takes them), go through `compressed`.
            let straight = base.is_none() && pack.as_ref().is_none_or(|p| p.len() < pack_size);
            let payload: Option<(u8, &[u8])> = if straight {
                None
            } else if base.is_some() {
                Some((COMPRESSION_DELTA, &compressed))
            } else {
                // The same compression byte and payload as a blob stored straight.
                compressed.clear();
                append_payload(compressor.as_mut(), &job.data, &mut compressed);
                Some((compressed[0], &compressed[1..]))
            };
            // A full pack takes more blobs while they fit into its padding (small blobs
            // then fill what would be padding); the first that does not starts a new pack.
            if let Some((_, payload)) = payload {
                let sealed = 1 + payload.len() + SEAL_OVERHEAD;
                if pack.as_ref().is_some_and(|p| {
                    p.len() >= pack_size && !p.fits_padding(sealed, entry_len(base.is_some()))
                }) {
                    match shared.store_pack(pack.take().unwrap()) {
                        Ok(buf) => spare = Some(buf),
                        Err(e) => shared.fail(e),
                    }
                }
            }
            let p = match pack.as_mut() {
                Some(p) => p,
                None => match shared.new_pack(spare.take().unwrap_or_default()) {
                    Ok(p) => pack.insert(p),
                    Err(e) => {
                        shared.fail(e);
                        break 'job;
                    }
                },
            };
            let sealed_len = match payload {
                Some((flag, payload)) => p.push_new(
                    &shared.file_key.key,
                    job.kind,
                    job.id,
                    raw_len as u32,
                    flag,
                    payload,
                    base,
                ),
                None => {
                    let max_len = 1 + match compressor {
                        Some(_) => zstd::zstd_safe::compress_bound(raw_len).max(raw_len),
                        None => raw_len,
                    };
                    let data = &job.data;
                    let filled = p.push_filled(
                        &shared.file_key.key,
                        job.kind,
                        job.id,
                        raw_len as u32,
                        max_len,
                        |out| append_payload(compressor.as_mut(), data, out),
                    );
                    match filled {
                        Ok(n) => n,
                        Err(e) => {
                            shared.fail(e.into());
                            break 'job;
                        }
                    }
                }
            };
            if let Err(e) = p.spill() {
                shared.fail(e.into());
            }
            match job.kind {
                BlobKind::Data => shared.data_blobs.fetch_add(1, Ordering::Relaxed),
                BlobKind::Tree => shared.tree_blobs.fetch_add(1, Ordering::Relaxed),
            };
            shared
                .bytes_raw
                .fetch_add(raw_len as u64, Ordering::Relaxed);
            shared
                .bytes_stored
                .fetch_add(sealed_len as u64, Ordering::Relaxed);
            // Full, and not even the smallest blob fits into its padding: stored now.
            if p.len() >= pack_size && !p.fits_padding(1 + SEAL_OVERHEAD, ENTRY_LEN) {
                match shared.store_pack(pack.take().unwrap()) {
                    Ok(buf) => spare = Some(buf),
                    Err(e) => shared.fail(e),
                }
            }
        }
        shared.flight.give(raw_len, job.data);
        for b in [&mut compressed, &mut other, &mut frame] {
            if b.capacity() > KEEP_BUFFER {
                *b = Vec::new();
            }
        }
    }
    if let Some(p) = pack.take() {
        if !p.is_empty() {
            shared.partial.lock().unwrap().push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, BackendError};
    use crate::formats::repo_config::InitOptions;
    use cairn_crypto::{KdfParams, Password};
    use std::collections::HashMap;
    use std::sync::Arc;

    /// Files in memory; every pack write fails as a full disk does.
    #[derive(Debug, Default)]
    struct FullForPacks(Mutex<HashMap<(FileKind, String), Vec<u8>>>);

    impl Backend for FullForPacks {
        fn location(&self) -> String {
            "memory".into()
        }
        fn create(&self) -> std::result::Result<(), BackendError> {
            Ok(())
        }
        fn write(
            &self,
            kind: FileKind,
            name: &str,
            data: &[u8],
        ) -> std::result::Result<(), BackendError> {
            if kind == FileKind::Pack {
                return Err(BackendError::io(
                    format!("writing pack {name}"),
                    std::io::Error::from_raw_os_error(28),
                ));
            }
            let mut files = self.0.lock().unwrap();
            files.insert((kind, name.to_owned()), data.to_vec());
            Ok(())
        }
        fn read(&self, kind: FileKind, name: &str) -> std::result::Result<Vec<u8>, BackendError> {
            let files = self.0.lock().unwrap();
            files
                .get(&(kind, name.to_owned()))
                .cloned()
                .ok_or(BackendError::NotFound {
                    kind,
                    name: name.to_owned(),
                })
        }
        fn read_range(
            &self,
            kind: FileKind,
            name: &str,
            offset: u64,
            len: u64,
        ) -> std::result::Result<Vec<u8>, BackendError> {
            let all = self.read(kind, name)?;
            BackendError::check_range(kind, name, offset, len, all.len() as u64)?;
            Ok(all[offset as usize..(offset + len) as usize].to_vec())
        }
        fn list(&self, kind: FileKind) -> std::result::Result<Vec<(String, u64)>, BackendError> {
            let files = self.0.lock().unwrap();
            Ok(files
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|((_, n), d)| (n.clone(), d.len() as u64))
                .collect())
        }
        fn remove(&self, kind: FileKind, name: &str) -> std::result::Result<(), BackendError> {
            self.0.lock().unwrap().remove(&(kind, name.to_owned()));
            Ok(())
        }
    }

    /// Once a worker failed, every later `add` fails naming the worker's error (the
    /// producer may have several threads, and any of their errors may be the one the
    /// user sees), and `with_writer` returns that error itself.

    #[test]
    fn blobs_in_flight_are_bounded_in_bytes_and_reuse_the_best_fitting_buffer() {
        let flight = InFlight::new(100, 150);
        let ok = AtomicBool::new(false);
        // An oversized blob goes alone when nothing is in flight.
        let big = flight.take(500, true, &ok).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let b = flight.take(10, true, &ok).unwrap();
                done_tx.send(b.capacity()).unwrap();
            });
            // The second blob waits for room...
            assert!(done_rx
                .recv_timeout(std::time::Duration::from_millis(200))
                .is_err());
            // ...which giving the first back makes; the buffer is too large to keep.
            flight.give(500, vec![0; 500]);
            done_rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap();
        });
        drop(big);
        flight.give(10, Vec::new());
        // Given-back buffers are kept up to the spare capacity, and the smallest that
        // holds a blob is taken for it (else the largest).
        for cap in [80usize, 20, 40, 30] {
            flight.take(1, false, &ok).unwrap();
            flight.give(1, Vec::with_capacity(cap));
        }
        let caps = |f: &InFlight| {
            let mut c: Vec<usize> = f
                .state
                .lock()
                .unwrap()
                .spare
                .iter()
                .map(|b| b.capacity())
                .collect();
            c.sort_unstable();
            c
        };
        assert_eq!(caps(&flight), vec![20, 40, 80], "30 more would pass 150");
        assert_eq!(flight.take(25, true, &ok).unwrap().capacity(), 40);
        flight.give(25, Vec::new());
        assert_eq!(flight.take(90, true, &ok).unwrap().capacity(), 80);
        assert_eq!(flight.state.lock().unwrap().spare_bytes, 20);
        // A failed writer wakes and refuses a waiting producer.
        let failed = AtomicBool::new(false);
        std::thread::scope(|s| {
            let h = s.spawn(|| flight.take(50, true, &failed));
            std::thread::sleep(std::time::Duration::from_millis(20));
            failed.store(true, Ordering::SeqCst);
            flight.wake();
            assert!(h.join().unwrap().is_err());
        });
    }

    #[test]
    fn every_error_after_a_failed_worker_names_its_cause() {
        let opts = InitOptions {
            pack_size: 1 << 20,
            kdf: KdfParams::FLOOR,
            ..InitOptions::default()
        };
        let password = Password::new(b"pw".to_vec());
        let repo = Repository::init(Arc::new(FullForPacks::default()), &password, &opts).unwrap();
        let mut seed = 1u64;
        let mut blob = || {
            // 256 KiB that do not compress: four fill a pack.
            (0..256 << 10)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect::<Vec<u8>>()
        };
        let result = with_writer(&repo, 1, |w| {
            let first = loop {
                if let Err(e) = w.add(BlobKind::Data, &blob()) {
                    break e;
                }
            };
            let second = w.add(BlobKind::Data, &blob()).unwrap_err();
            for e in [&first, &second] {
                assert!(e.to_string().contains("No space left on device"), "{e}");
            }
            Err::<(), _>(second)
        });
        let e = result.unwrap_err().to_string();
        assert!(e.contains("No space left on device"), "{e}");
        assert!(
            !e.contains("storing blobs failed"),
            "the worker's own error: {e}"
        );
    }
}

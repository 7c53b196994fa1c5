//! Reading many blobs with few requests.
//!
//! Restore, dump and copy need thousands of blobs at once. One request per blob costs
//! little on a local disk and a round trip each on a remote repository, so here the
//! blobs asked for are grouped by pack, sorted by offset, and joined into ranges where
//! the gap between two blobs is small; the ranges are read in parallel (on the calling
//! rayon pool), and every blob is authenticated, decoded and verified before it is
//! handed over.
//!
//! Each thread keeps its read buffer and its plaintext buffer from one range to the
//! next: a restore reads gigabytes through them, and fresh buffers would cost a page
//! fault per 4 KiB and zeroing each time.

use crate::backend::{read_range_exact_into, FileKind};
use crate::error::Error;
use crate::formats::id::Id;
use crate::formats::index::{BlobLocation, PackInfo};
use crate::formats::pack::MAX_DELTA_DEPTH;
use crate::repository::Repository;
use rayon::prelude::*;

/// Two blobs of one pack are read with one request when at most this many bytes lie
/// between them (the bytes between are read and dropped).
const MAX_GAP: u64 = 256 << 10;

/// A joined range is not extended past this length, so that a pack's blobs are still
/// read by several requests in parallel and memory stays bounded (a range and its
/// decoded blobs per thread).
const MAX_RANGE: u64 = 4 << 20;

/// A blob read: its plaintext, and its base if it is stored as a delta.
pub type Fetched = (Vec<u8>, Option<Id>);

/// Receives each blob read, or why it could not be: its plaintext and its base if it is
/// stored as a delta. The plaintext is lent: a sink that keeps it takes it
/// (`std::mem::take`); what is left is reused for the next blob.
pub type Sink<'a> =
    dyn Fn(&Id, std::result::Result<(&mut Vec<u8>, Option<Id>), &Error>) + Sync + 'a;

/// A thread's buffers kept between ranges are dropped past this capacity.
const KEEP_BUFFER: usize = 16 << 20;

thread_local! {
    /// This thread's read buffer and plaintext buffer (see the module's notes).
    static BUFFERS: std::cell::Cell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// One request: a range of a pack and the blobs it holds.
struct Range {
    pack: PackInfo,
    start: u64,
    end: u64,
    blobs: Vec<(Id, BlobLocation)>,
}

/// Reads every blob of `ids` (each once, however often it is named) and calls
/// `sink(id, (plaintext, base))` for each, or `sink(id, Err(..))` for a blob that is missing or
/// cannot be read, from the threads of the current rayon pool (size it with
/// [`crate::Backend::parallelism`]). The index must be loaded.
pub fn fetch_blobs(repo: &Repository, ids: &[Id], sink: &Sink) {
    let mut wanted: Vec<Id> = ids.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let ranges = {
        let index = repo.index();
        let mut located = Vec::with_capacity(wanted.len());
        for id in wanted {
            match index.get(&id) {
                Some(loc) => located.push((id, loc)),
                None => sink(
                    &id,
                    Err(&Error::MissingBlob {
                        kind: "a",
                        id: id.short(),
                        context: String::new(),
                    }),
                ),
            }
        }
        located.sort_unstable_by_key(|(_, l)| (l.pack, l.offset));
        join_ranges(located, |pos| index.pack(pos).clone())
    };
    ranges.par_iter().for_each(|r| read_range(repo, r, sink));
}

/// Reads every blob of `ids` on `pool` as [`fetch_blobs`] does and returns those that
/// could be read. A caller reads a blob that is not there again alone
/// ([`Repository::read_blob`]), for its error.
pub fn fetch_map(
    repo: &Repository,
    pool: &rayon::ThreadPool,
    ids: &[Id],
) -> std::collections::HashMap<Id, Fetched> {
    let read = std::sync::Mutex::new(std::collections::HashMap::with_capacity(ids.len()));
    pool.install(|| {
        fetch_blobs(repo, ids, &|id, blob| {
            if let Ok((plain, base)) = blob {
                read.lock()
                    .unwrap()
                    .insert(*id, (std::mem::take(plain), base));
            }
        })
    });
    read.into_inner().unwrap()
}

/// A pool of `threads` threads named `name-N` for reading blobs (see
/// [`crate::Backend::parallelism`]).
pub fn reading_pool(threads: usize, name: &'static str) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start the {name} threads: {e}")))
}

/// Joins blobs sorted by (pack, offset) into ranges (see [`MAX_GAP`], [`MAX_RANGE`]).
fn join_ranges(
    located: Vec<(Id, BlobLocation)>,
    pack_info: impl Fn(u32) -> PackInfo,
) -> Vec<Range> {
    let mut ranges: Vec<Range> = Vec::new();
    let mut last_pack = None;
    for (id, loc) in located {
        let start = loc.offset as u64;
        let end = start + loc.sealed_len as u64;
        if let Some(r) = ranges.last_mut() {
            if last_pack == Some(loc.pack)
                && start >= r.end
                && start - r.end <= MAX_GAP
                && end - r.start <= MAX_RANGE
            {
                r.end = end;
                r.blobs.push((id, loc));
                continue;
            }
        }
        last_pack = Some(loc.pack);
        ranges.push(Range {
            pack: pack_info(loc.pack),
            start,
            end,
            blobs: vec![(id, loc)],
        });
    }
    ranges
}

fn read_range(repo: &Repository, r: &Range, sink: &Sink) {
    // Taken out while in use, so that a sink that reads blobs itself on this thread
    // starts with buffers of its own.
    let (mut bytes, mut plain) = BUFFERS.take();
    read_range_with(repo, r, sink, &mut bytes, &mut plain);
    if bytes.capacity() <= KEEP_BUFFER && plain.capacity() <= KEEP_BUFFER {
        BUFFERS.set((bytes, plain));
    }
}

fn read_range_with(
    repo: &Repository,
    r: &Range,
    sink: &Sink,
    bytes: &mut Vec<u8>,
    plain: &mut Vec<u8>,
) {
    if let Err(e) = read_range_exact_into(
        repo.backend().as_ref(),
        FileKind::Pack,
        &r.pack.id.to_hex(),
        r.start,
        r.end - r.start,
        bytes,
    ) {
        let e = Error::from(e);
        for (id, _) in &r.blobs {
            elsewhere(repo, id, &e, sink);
        }
        return;
    }
    for (id, loc) in &r.blobs {
        let at = (loc.offset as u64 - r.start) as usize;
        let sealed = &mut bytes[at..at + loc.sealed_len as usize];
        match repo.open_sealed_into(id, loc, &r.pack, sealed, plain) {
            Ok(base) => sink(id, Ok((plain, base))),
            Err(e) => elsewhere(repo, id, &e, sink),
        }
    }
}

/// A blob whose first copy failed with `e`: from another copy if the index knows one
/// that reads, else the error.
fn elsewhere(repo: &Repository, id: &Id, e: &Error, sink: &Sink) {
    match repo.read_alternates(id, MAX_DELTA_DEPTH, None) {
        Some(Ok((mut plain, _, base))) => sink(id, Ok((&mut plain, base))),
        _ => sink(id, Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::id::BlobKind;

    fn loc(pack: u32, offset: u32, len: u32) -> (Id, BlobLocation) {
        let id = Id(*blake3::hash(&[pack as u8, (offset >> 8) as u8, offset as u8]).as_bytes());
        (
            id,
            BlobLocation {
                pack,
                offset,
                sealed_len: len,
                raw_len: len,
                kind: BlobKind::Data,
            },
        )
    }

    fn info(pos: u32) -> PackInfo {
        PackInfo {
            id: Id([pos as u8; 32]),
            envelope: crate::formats::sealed::Envelope::filled(1),
        }
    }

    fn shape(ranges: &[Range]) -> Vec<(u8, u64, u64, usize)> {
        ranges
            .iter()
            .map(|r| (r.pack.id.0[0], r.start, r.end, r.blobs.len()))
            .collect()
    }

    #[test]
    fn close_blobs_of_one_pack_share_a_request() {
        let gap = MAX_GAP as u32;
        let located = vec![
            loc(0, 0, 100),
            loc(0, 100, 100),
            loc(0, 200 + gap, 50),     // exactly the largest gap: joined
            loc(0, 251 + 2 * gap, 10), // one byte more: a new range
            loc(1, 261 + 2 * gap, 10), // another pack: a new range
        ];
        let ranges = join_ranges(located, info);
        assert_eq!(
            shape(&ranges),
            vec![
                (0, 0, 250 + MAX_GAP, 3),
                (0, 251 + 2 * MAX_GAP, 261 + 2 * MAX_GAP, 1),
                (1, 261 + 2 * MAX_GAP, 271 + 2 * MAX_GAP, 1),
            ]
        );
    }

    #[test]
    fn a_range_stops_growing_at_the_largest_request() {
        let mb = 1 << 20;
        let located = (0..10).map(|i| loc(0, i * mb, mb)).collect();
        let ranges = join_ranges(located, info);
        let per = (MAX_RANGE / mb as u64) as usize;
        assert_eq!(ranges.len(), 10usize.div_ceil(per));
        assert!(ranges.iter().all(|r| r.end - r.start <= MAX_RANGE));
        assert_eq!(ranges.iter().map(|r| r.blobs.len()).sum::<usize>(), 10);
    }
}

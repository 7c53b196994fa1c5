//! Delta blobs: a stream's new chunk compressed against the chunk it replaces.
//!
//! A nightly database dump changes in a few hundred places spread through the file:
//! the database writes updated rows into freed space anywhere in a table. Content-defined
//! chunking finds most chunks unchanged, but each changed chunk differs from its old
//! version by a few rows only. Compressed alone it costs a third of its size; compressed
//! with the old version as a zstd prefix it costs the changed rows. Decision 0007 has the
//! measurements.
//!
//! Which old chunk: [`BaseFinder`] walks the previous snapshot's version of the same
//! stream alongside the new one. A chunk both share moves it to just after that chunk in
//! the old stream; a new chunk takes the old chunk there as its base and moves one on.
//! So a changed region of the dump is compressed against the same region of the
//! previous dump. The finder looks a bounded number of chunks ahead: memory does not
//! grow with the stream.
//!
//! The stored form is in [`crate::formats::pack`], the compression in [`crate::formats::compression`];
//! reading follows the chain of bases, at most [`crate::formats::pack::MAX_DELTA_DEPTH`] links,
//! each read verified like any blob.

use crate::error::Result;
use crate::formats::content::{ContentSource, ContentWalk};
use crate::formats::id::Id;
use crate::formats::tree::Extent;
use std::collections::{HashMap, VecDeque};

/// Chunks of the old stream the finder holds ahead of its position (about 16 MiB of
/// the old stream at the usual 16 KiB chunks; 40 bytes each).
const LOOKAHEAD: usize = 1024;
/// Old chunks this many bytes behind where a new chunk maps to are let go.
const BEHIND: u64 = 1 << 20;

/// A chunk of the old stream.
#[derive(Clone, Copy)]
struct Old {
    seq: u64,
    id: Id,
    offset: u64,
    len: u64,
}

/// Finds the base of each new chunk of a stream in the previous version of the stream;
/// see the module documentation.
pub(crate) struct BaseFinder<'s, S: ContentSource + ?Sized> {
    old: ContentWalk<'s, S>,
    /// Chunks of the old stream, in order, from a little behind the position on.
    ahead: VecDeque<Old>,
    /// The sequence number of each chunk in `ahead` (the latest, for a chunk the old
    /// stream holds twice).
    seq_of: HashMap<Id, u64>,
    /// Sequence number and offset of the next old chunk read.
    next_seq: u64,
    next_offset: u64,
    /// The old stream is read to its end.
    done: bool,
    /// Where the last chunk both streams share ends, in the old and in the new stream.
    old_end: u64,
    new_end: u64,
    /// The old chunk that follows, in order, the last shared one and the new chunks
    /// since.
    next_in_order: u64,
}

impl<S: ContentSource + ?Sized> std::fmt::Debug for BaseFinder<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseFinder")
            .field("ahead", &self.ahead.len())
            .field("old_end", &self.old_end)
            .field("new_end", &self.new_end)
            .finish()
    }
}

impl<'s, S: ContentSource + ?Sized> BaseFinder<'s, S> {
    /// A finder over the old stream's content.
    pub(crate) fn new(source: &'s S, old: &[Extent]) -> BaseFinder<'s, S> {
        BaseFinder {
            old: ContentWalk::new(source, old),
            ahead: VecDeque::with_capacity(LOOKAHEAD),
            seq_of: HashMap::with_capacity(LOOKAHEAD),
            next_seq: 0,
            next_offset: 0,
            done: false,
            old_end: 0,
            new_end: 0,
            next_in_order: 0,
        }
    }

    fn fill(&mut self) -> Result<()> {
        while !self.done && self.ahead.len() < LOOKAHEAD {
            match self.old.next().transpose()? {
                Some((extent, len)) => {
                    // Parts (small files) are never bases: only whole chunks of a stream.
                    if let Extent::Data(id) = extent {
                        self.ahead.push_back(Old {
                            seq: self.next_seq,
                            id,
                            offset: self.next_offset,
                            len,
                        });
                        self.seq_of.insert(id, self.next_seq);
                        self.next_seq += 1;
                    }
                    self.next_offset += len;
                }
                None => self.done = true,
            }
        }
        Ok(())
    }

    fn pop_front(&mut self) {
        if let Some(o) = self.ahead.pop_front() {
            if self.seq_of.get(&o.id) == Some(&o.seq) {
                self.seq_of.remove(&o.id);
            }
        }
    }

    /// Takes the next chunk of the new stream, `len` bytes at `offset`: returns, when it
    /// is new, up to two candidate bases: the old chunk at its offset and the old chunk
    /// at its place in order (they differ where many rows moved: offsets drift, while
    /// content-defined cuts keep the order).
    pub(crate) fn next(
        &mut self,
        id: &Id,
        offset: u64,
        len: u64,
        is_new: bool,
    ) -> Result<[Option<Id>; 2]> {
        self.fill()?;
        if !is_new {
            // Shared with the old stream (or stored elsewhere): when the old stream has
            // it ahead, the two streams agree up to here.
            if let Some(&seq) = self.seq_of.get(id) {
                while let Some(o) = self.ahead.front().copied() {
                    if o.seq > seq {
                        break;
                    }
                    self.pop_front();
                    if o.seq == seq {
                        self.old_end = o.offset + o.len;
                        self.new_end = offset + len;
                        self.next_in_order = seq + 1;
                    }
                }
            }
            return Ok([None, None]);
        }
        // The middle of this chunk, moved to the old stream by the last shared chunk.
        let target = (self.old_end + (offset + len / 2)).saturating_sub(self.new_end);
        // Old chunks far behind the target will not be shared any more.
        loop {
            match self.ahead.front() {
                Some(o) if o.offset + o.len + BEHIND <= target => self.pop_front(),
                _ => break,
            }
            self.fill()?;
        }
        let k = self.ahead.partition_point(|o| o.offset + o.len <= target);
        let by_offset = self
            .ahead
            .get(k)
            .filter(|o| o.offset <= target)
            .map(|o| o.id);
        let by_order = self.ahead.front().and_then(|f| {
            let i = self.next_in_order.checked_sub(f.seq)?;
            self.ahead.get(i as usize).map(|o| o.id)
        });
        self.next_in_order += 1;
        Ok([by_offset, by_order.filter(|b| Some(*b) != by_offset)])
    }
}

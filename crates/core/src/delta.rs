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
//! The stored form is in [`crate::pack`]; reading follows the chain of bases, at most
//! [`crate::pack::MAX_DELTA_DEPTH`] links, each read verified like any blob.

use crate::content::{ContentSource, ContentWalk};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::tree::Extent;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use zstd::zstd_safe::{CCtx, CParameter, DCtx};

/// Chunks of the old stream the finder holds ahead of its position (about 16 MiB of
/// the old stream at the usual 16 KiB chunks; 40 bytes each).
const LOOKAHEAD: usize = 1024;
/// Old chunks this many bytes behind where a new chunk maps to are let go.
const BEHIND: u64 = 1 << 20;

/// The first bytes of a trained zstd dictionary. A dictionary given to zstd that starts
/// with them is read as a trained one; any other is raw content, as a prefix always is.
const DICT_MAGIC: [u8; 4] = 0xEC30_A437u32.to_le_bytes();

thread_local! {
    // One context per thread, reused: creating one costs more than decompressing a
    // 16 KiB chunk (a third of the time reading a delta-stored dump went there).
    static CCTX: RefCell<CCtx<'static>> = RefCell::new(CCtx::create());
    static DCTX: RefCell<DCtx<'static>> = RefCell::new(DCtx::create());
}

fn zstd_error(code: usize) -> String {
    zstd::zstd_safe::get_error_name(code).to_string()
}

/// Compresses `data` at `level` with `prefix` as raw-content history into `out`
/// (cleared first): one zstd frame.
pub(crate) fn compress(level: i32, prefix: &[u8], data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let fail = |code| Error::Invalid(format!("zstd: {}", zstd_error(code)));
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(data.len()));
    if prefix.starts_with(&DICT_MAGIC) {
        // Would be read as a trained dictionary: a prefix is always raw content.
        let mut cctx = CCtx::create();
        cctx.set_parameter(CParameter::CompressionLevel(level))
            .map_err(fail)?;
        cctx.ref_prefix(prefix).map_err(fail)?;
        cctx.compress2(out, data).map_err(fail)?;
        return Ok(());
    }
    CCTX.with_borrow_mut(|c| c.compress_using_dict(out, data, prefix, level))
        .map_err(fail)?;
    Ok(())
}

/// Decompresses a frame written by [`compress`] with the same prefix, into at most
/// `raw_len` bytes.
pub(crate) fn decompress(prefix: &[u8], frame: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    let fail = |code| std::io::Error::new(std::io::ErrorKind::InvalidData, zstd_error(code));
    let mut out = Vec::with_capacity(raw_len);
    if prefix.starts_with(&DICT_MAGIC) {
        let mut dctx = DCtx::create();
        dctx.ref_prefix(prefix).map_err(fail)?;
        dctx.decompress(&mut out, frame).map_err(fail)?;
    } else {
        DCTX.with_borrow_mut(|d| d.decompress_using_dict(&mut out, frame, prefix))
            .map_err(fail)?;
    }
    Ok(out)
}

/// Decompresses a zstd frame (a blob compressed without a base) into at most `raw_len`
/// bytes, with this thread's context.
pub(crate) fn decompress_plain(frame: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(raw_len);
    DCTX.with_borrow_mut(|d| d.decompress(&mut out, frame))
        .map_err(|code| std::io::Error::new(std::io::ErrorKind::InvalidData, zstd_error(code)))?;
    Ok(out)
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trip_and_gain() {
        let old: Vec<u8> = (0..16384u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        new[1000..1010].copy_from_slice(b"0123456789");
        let mut frame = Vec::new();
        compress(3, &old, &new, &mut frame).unwrap();
        assert!(
            frame.len() < 100,
            "{} bytes for a 10-byte change",
            frame.len()
        );
        assert_eq!(decompress(&old, &frame, new.len()).unwrap(), new);
        // Another prefix does not give the data back.
        let other = vec![0u8; old.len()];
        assert_ne!(
            decompress(&other, &frame, new.len()).ok(),
            Some(new.clone())
        );
        // A prefix that starts like a trained dictionary is still raw content.
        let mut magic = old.clone();
        magic[..4].copy_from_slice(&0xEC30_A437u32.to_le_bytes());
        compress(3, &magic, &new, &mut frame).unwrap();
        assert_eq!(decompress(&magic, &frame, new.len()).unwrap(), new);
        // A frame made with a prefix reads back through the reused context, and the
        // other way round: a raw-content dictionary and a prefix are the same history.
        let mut by_prefix = Vec::with_capacity(zstd::zstd_safe::compress_bound(new.len()));
        let mut c = CCtx::create();
        c.set_parameter(CParameter::CompressionLevel(3)).unwrap();
        c.ref_prefix(&old).unwrap();
        c.compress2(&mut by_prefix, &new).unwrap();
        assert_eq!(decompress(&old, &by_prefix, new.len()).unwrap(), new);
        compress(3, &old, &new, &mut frame).unwrap();
        let mut d = DCtx::create();
        d.ref_prefix(&old).unwrap();
        let mut out = Vec::with_capacity(new.len());
        d.decompress(&mut out, &frame).unwrap();
        assert_eq!(out, new);
        // Output larger than the length given is an error, never a larger buffer.
        assert!(decompress(&old, &frame, new.len() - 1).is_err());
        let plain = zstd::bulk::compress(&new, 3).unwrap();
        assert_eq!(decompress_plain(&plain, new.len()).unwrap(), new);
        assert!(decompress_plain(&plain, new.len() - 1).is_err());
    }
}

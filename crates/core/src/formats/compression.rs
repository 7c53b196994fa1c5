//! zstd with one context per thread, reused: plain frames, and frames compressed
//! against a base blob's plaintext (delta blobs, see [`crate::operations::backup::delta`]).
//!
//! Creating a zstd context costs more than decompressing a 16 KiB chunk: a third of
//! the time of reading back a dump stored as deltas went there. Each thread keeps one
//! compression and one decompression context.

use crate::error::{Error, Result};
use std::cell::RefCell;
use zstd::zstd_safe::{CCtx, CParameter, DCtx};

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
pub(crate) fn compress_against(
    level: i32,
    prefix: &[u8],
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
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

/// Decompresses a frame written by [`compress_against`] with the same prefix, into at most
/// `raw_len` bytes.
pub(crate) fn decompress_against(
    prefix: &[u8],
    frame: &[u8],
    raw_len: usize,
) -> std::io::Result<Vec<u8>> {
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
pub(crate) fn decompress(frame: &[u8], raw_len: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_into(frame, raw_len, &mut out)?;
    Ok(out)
}

/// [`decompress`] into `out`, replacing what it held; its memory is reused.
pub(crate) fn decompress_into(
    frame: &[u8],
    raw_len: usize,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    out.clear();
    out.reserve_exact(raw_len);
    // zstd writes into the spare capacity and stops with an error past `raw_len` bytes
    // when `out` was empty; a reused buffer may hold more, so its length is checked too.
    DCTX.with_borrow_mut(|d| d.decompress(out, frame))
        .map_err(|code| std::io::Error::new(std::io::ErrorKind::InvalidData, zstd_error(code)))?;
    if out.len() > raw_len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("more than the {raw_len} bytes the index says"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reused_buffer_holds_exactly_the_frame_and_refuses_more_than_raw_len() {
        let long: Vec<u8> = (0..100_000u32).map(|i| (i % 97) as u8).collect();
        let short = b"a short blob".to_vec();
        let frame = |b: &[u8]| zstd::bulk::compress(b, 3).unwrap();
        let mut out = Vec::new();
        decompress_into(&frame(&long), long.len(), &mut out).unwrap();
        assert_eq!(out, long);
        // The buffer keeps its capacity; a shorter blob replaces its bytes.
        decompress_into(&frame(&short), short.len(), &mut out).unwrap();
        assert_eq!(out, short);
        assert!(out.capacity() >= long.len());
        // A frame longer than the index says is refused even though the buffer has room.
        assert!(decompress_into(&frame(&long), 1000, &mut out).is_err());
        // A frame that is not zstd is refused.
        assert!(decompress_into(b"not a frame", 10, &mut out).is_err());
    }

    #[test]
    fn prefix_round_trip_and_gain() {
        let old: Vec<u8> = (0..16384u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut new = old.clone();
        new[1000..1010].copy_from_slice(b"0123456789");
        let mut frame = Vec::new();
        compress_against(3, &old, &new, &mut frame).unwrap();
        assert!(
            frame.len() < 100,
            "{} bytes for a 10-byte change",
            frame.len()
        );
        assert_eq!(decompress_against(&old, &frame, new.len()).unwrap(), new);
        // Another prefix does not give the data back.
        let other = vec![0u8; old.len()];
        assert_ne!(
            decompress_against(&other, &frame, new.len()).ok(),
            Some(new.clone())
        );
        // A prefix that starts like a trained dictionary is still raw content.
        let mut magic = old.clone();
        magic[..4].copy_from_slice(&0xEC30_A437u32.to_le_bytes());
        compress_against(3, &magic, &new, &mut frame).unwrap();
        assert_eq!(decompress_against(&magic, &frame, new.len()).unwrap(), new);
        // A frame made with a prefix reads back through the reused context, and the
        // other way round: a raw-content dictionary and a prefix are the same history.
        let mut by_prefix = Vec::with_capacity(zstd::zstd_safe::compress_bound(new.len()));
        let mut c = CCtx::create();
        c.set_parameter(CParameter::CompressionLevel(3)).unwrap();
        c.ref_prefix(&old).unwrap();
        c.compress2(&mut by_prefix, &new).unwrap();
        assert_eq!(
            decompress_against(&old, &by_prefix, new.len()).unwrap(),
            new
        );
        compress_against(3, &old, &new, &mut frame).unwrap();
        let mut d = DCtx::create();
        d.ref_prefix(&old).unwrap();
        let mut out = Vec::with_capacity(new.len());
        d.decompress(&mut out, &frame).unwrap();
        assert_eq!(out, new);
        // Output larger than the length given is an error, never a larger buffer.
        assert!(decompress_against(&old, &frame, new.len() - 1).is_err());
        let plain = zstd::bulk::compress(&new, 3).unwrap();
        assert_eq!(decompress(&plain, new.len()).unwrap(), new);
        assert!(decompress(&plain, new.len() - 1).is_err());
    }
}

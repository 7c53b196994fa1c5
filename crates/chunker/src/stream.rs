//! Chunking a reader through one reused buffer.

use std::fmt;
use std::io::{self, Read};

use crate::chunker::Chunker;

/// First allocation of the buffer; it doubles up to `2 * max_size` as needed, so that
/// a short stream does not cost a full-size buffer.
const INITIAL_BUFFER: usize = 64 << 10;

/// Splits a reader into chunks through one reused buffer; no allocation per chunk.
///
/// The chunks are exactly those [`Chunker::cuts`] gives for the whole stream in one
/// buffer, however the reader splits its reads (tests feed random short reads).
///
/// Before each cut the buffer holds at least `max_size` unconsumed bytes (or the rest of
/// the stream), so [`Chunker::next_cut`] always answers on the first try and every byte
/// is hashed once. The buffer grows to at most `2 * max_size` bytes; when the
/// unconsumed tail no longer fits, it is moved to the front (less than `max_size`
/// bytes moved per at least `max_size` bytes consumed).
///
/// Takes the [`Chunker`] by value: clones share the gear table, so
/// `StreamChunker::new(chunker.clone(), reader)` is cheap.
pub struct StreamChunker<R: Read> {
    chunker: Chunker,
    reader: R,
    buf: Vec<u8>,
    /// `buf[start..end]` is read but not yet returned as a chunk.
    start: usize,
    end: usize,
    /// The reader returned `Ok(0)`.
    eof: bool,
}

impl<R: Read> fmt::Debug for StreamChunker<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamChunker")
            .field("chunker", &self.chunker)
            .field("buffered", &(self.end - self.start))
            .field("capacity", &self.buf.len())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

impl<R: Read> StreamChunker<R> {
    /// Chunks `reader` with `chunker`. Allocates nothing until the first read.
    pub fn new(chunker: Chunker, reader: R) -> Self {
        StreamChunker {
            chunker,
            reader,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
        }
    }

    /// The chunker in use.
    pub fn chunker(&self) -> &Chunker {
        &self.chunker
    }

    /// The next chunk, borrowed from the internal buffer; `Ok(None)` at the end of the
    /// stream (and on every later call).
    ///
    /// Reads are retried on [`io::ErrorKind::Interrupted`]. Any other read error is
    /// returned as is, with nothing lost: calling again resumes reading where it failed
    /// (whether that makes sense depends on the reader).
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        self.fill()?;
        let avail = &self.buf[self.start..self.end];
        match self.chunker.next_cut(avail, self.eof) {
            Some(n) => {
                let start = self.start;
                self.start += n;
                Ok(Some(&self.buf[start..start + n]))
            }
            // fill() leaves at least max_size bytes or the end of the stream, so this
            // is the end of the stream.
            None => Ok(None),
        }
    }

    /// Gives the reader back; bytes already read but not returned as chunks are lost.
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// Reads until at least `max_size` bytes are buffered or the stream ended.
    fn fill(&mut self) -> io::Result<()> {
        let max = self.chunker.params().max_size as usize;
        let cap = 2 * max;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        while !self.eof && self.end - self.start < max {
            if self.end == self.buf.len() {
                if self.buf.len() < cap {
                    let len = (self.buf.len() * 2).clamp(INITIAL_BUFFER.min(cap), cap);
                    self.buf.resize(len, 0);
                } else {
                    // end == cap and fewer than max bytes buffered, so start > max:
                    // moving frees more than max bytes.
                    self.buf.copy_within(self.start..self.end, 0);
                    self.end -= self.start;
                    self.start = 0;
                }
            }
            let space = &mut self.buf[self.end..];
            match self.reader.read(space) {
                Ok(0) => self.eof = true,
                Ok(n) if n <= space.len() => self.end += n,
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "reader claimed {n} bytes read into a buffer of {}",
                        space.len()
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
impl<R: Read> StreamChunker<R> {
    /// Bytes allocated for the buffer (tests check its bound).
    pub(crate) fn buffer_len(&self) -> usize {
        self.buf.len()
    }
}

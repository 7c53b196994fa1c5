//! Content-defined chunking for cairn: FastCDC (the 2020 variant, "rolling two bytes
//! at a time" with normalized chunking), with a gear table derived from a per-repository
//! secret so that chunk boundaries differ between repositories.
//!
//! Main types:
//! - [`ChunkerParams`]: minimum, average and maximum chunk size, with presets for file
//!   trees ([`ChunkerParams::FILES`]) and database streams ([`ChunkerParams::STREAMS`]).
//! - [`Chunker`]: finds cut points in byte slices ([`Chunker::next_cut`], [`Chunker::cuts`]);
//!   it holds no buffers, so one `Chunker` is shared by every thread.
//! - [`StreamChunker`]: splits any `Read` into chunks through one reused buffer.
//!
//! What it is not: no I/O beyond the reader it is handed, no hashing of chunk contents,
//! no allocation per chunk. The keyed gear table hides boundaries only weakly (an
//! observer of chunk sizes can still learn about content); cairn's format documentation
//! says what the storage provider can learn.
//!
//! # Example
//!
//! ```
//! use cairn_chunker::{Chunker, ChunkerParams};
//!
//! let seed = [7u8; 32]; // in cairn: derived from the repository's master key
//! let chunker = Chunker::new(ChunkerParams::STREAMS, &seed)?;
//! let data = vec![0u8; 3 << 20];
//! let mut total = 0;
//! for range in chunker.cuts(&data) {
//!     assert!(range.len() <= ChunkerParams::STREAMS.max_size as usize);
//!     total += range.len();
//! }
//! assert_eq!(total, data.len());
//!
//! let mut stream = cairn_chunker::StreamChunker::new(chunker.clone(), &data[..]);
//! let mut streamed = 0;
//! while let Some(chunk) = stream.next_chunk()? {
//!     streamed += chunk.len();
//! }
//! assert_eq!(streamed, data.len());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Format
//!
//! Chunk boundaries are part of what makes two backups share data, so the algorithm is
//! frozen: the gear-table derivation is on [`Chunker::new`], the cut rule on
//! [`Chunker`], the masks are the fastcdc crate's (normalization level 1), and golden
//! tests pin all three.

mod chunker;
mod params;
mod stream;
#[cfg(test)]
mod tests;

pub use chunker::{Chunker, Cuts, GEAR_CONTEXT};
pub use params::{
    ChunkerError, ChunkerParams, AVG_SIZE_LOWER, AVG_SIZE_UPPER, MAX_SIZE_UPPER, MIN_SIZE_LOWER,
};
pub use stream::StreamChunker;

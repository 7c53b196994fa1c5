//! Small files share chunks (decision 0027).
//!
//! Stored one by one, each small file costs its own zstd frame (which compresses a few
//! KiB poorly), its own seal, pack and index entries and its own id in its tree. So the
//! new and changed regular files under [`BUNDLE_BELOW`] of one directory are read one
//! after the other, in name order, as one stream; the stream is cut with the files'
//! chunker into ordinary data blobs, and each file's content becomes the
//! [`Extent::Part`]s of those chunks that hold its bytes (a file that straddles a cut
//! has two). A file that fills a whole chunk by itself is named by the chunk.
//!
//! Unchanged files keep their parts from the parent snapshot, so a night where one file
//! of a directory changed stores that file alone.

use super::files::{
    changed_while_read, open_for_backup, FileOutcome, FileStatus, Files, ReadError,
};
use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::tree::{Extent, Node, NodeKind};
use crate::report::{Progress, Warning, WarningKind};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Regular files smaller than this are stored with the other small files of their
/// directory: about 3 % smaller on a tree of binaries and libraries, 25 % on many
/// small text files (docs/benchmarks.md, "Many small files").
pub const BUNDLE_BELOW: u64 = 256 << 10;

/// A file to bundle: its path, its metadata as listed, and the parent snapshot's node.
#[derive(Clone, Copy)]
pub(super) struct Small<'p> {
    pub(super) path: &'p Path,
    pub(super) meta: &'p Metadata,
    pub(super) pnode: Option<&'p Node>,
}

/// Where one file's bytes lie in the stream, and how reading it went.
struct Span {
    start: u64,
    len: u64,
    /// The file's metadata when it was opened.
    opened: Option<Metadata>,
    warnings: Vec<Warning>,
    /// It could not be read: no node.
    failed: bool,
}

/// The files of a bundle as one reader: each is opened when the one before it ends. A
/// file that cannot be opened or read is skipped with a warning; the bytes it gave
/// before failing stay in the stream, named by no file.
struct Concat<'f, 'p> {
    files: &'f [Small<'p>],
    progress: &'f dyn Progress,
    next: usize,
    current: Option<File>,
    pos: u64,
    spans: Vec<Span>,
}

impl Concat<'_, '_> {
    fn warn(&mut self, kind: WarningKind, message: String) {
        let path = self.files[self.next].path;
        let w = Warning {
            kind,
            path: path.to_string_lossy().into_owned(),
            message,
        };
        self.progress.warning(&w);
        let span = self.spans.last_mut().expect("a span per file begun");
        span.warnings.push(w);
    }

    /// Ends the current file: a change seen while it was read is a warning.
    fn end_file(&mut self, failed: Option<io::Error>) {
        let file = self.current.take();
        if let Some(e) = failed {
            self.warn(WarningKind::Unreadable, e.to_string());
            self.spans.last_mut().expect("a span").failed = true;
        } else if let (Some(file), Some(before)) =
            (file, self.spans.last().and_then(|s| s.opened.clone()))
        {
            if let Some(msg) = changed_while_read(&file, &before) {
                self.warn(WarningKind::Changed, msg);
            }
        }
        self.progress.file_done();
        self.next += 1;
    }
}

impl Read for Concat<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some(f) = self.files.get(self.next) else {
                    return Ok(0);
                };
                self.progress.file(f.path, Some(f.meta.size()));
                let opened = open_for_backup(f.path);
                self.spans.push(Span {
                    start: self.pos,
                    len: 0,
                    opened: None,
                    warnings: Vec::new(),
                    failed: false,
                });
                match opened {
                    Ok((file, m)) => {
                        self.spans.last_mut().expect("pushed").opened = Some(m);
                        self.current = Some(file);
                    }
                    Err(e) => {
                        self.end_file(Some(e));
                        continue;
                    }
                }
            }
            let file = self.current.as_mut().expect("a file is open");
            match file.read(buf) {
                Ok(0) => self.end_file(None),
                Ok(n) => {
                    self.pos += n as u64;
                    self.spans.last_mut().expect("a span").len += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.end_file(Some(e)),
            }
        }
    }
}

impl Files<'_, '_> {
    /// Reads `files` (new or changed small files of one directory, in name order) as
    /// one stream and stores its chunks; returns each file's outcome, in order.
    pub(super) fn bundle(&self, files: &[Small<'_>]) -> Result<Vec<FileOutcome>> {
        // A file whose metadata changed but whose bytes did not (chmod, touch, a
        // restore) keeps its parts: stored again alone it would get new ones, and cost
        // the bytes and a "changed" in every diff.
        let mut cache = None;
        let mut out: Vec<Option<FileOutcome>> = files
            .iter()
            .map(|f| self.same_as_parent(f, &mut cache))
            .collect();
        drop(cache);
        let rest: Vec<usize> = (0..files.len()).filter(|&i| out[i].is_none()).collect();
        let read: Vec<Small> = rest.iter().map(|&i| files[i]).collect();
        for (i, o) in rest.into_iter().zip(self.bundle_read(&read)?) {
            out[i] = Some(o);
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every file has an outcome"))
            .collect())
    }

    /// The parent's outcome for a file whose bytes are those of its node in the parent
    /// snapshot (same size, read and compared); `None` when they differ or cannot be
    /// compared. `cache` keeps the parent's chunk read last: the files of a directory
    /// share a few.
    fn same_as_parent(
        &self,
        f: &Small<'_>,
        cache: &mut Option<(Id, Vec<u8>)>,
    ) -> Option<FileOutcome> {
        // Under --force too: the file is read either way, and its bytes decide.
        let p = f.pnode?;
        let NodeKind::File { content } = &p.kind else {
            return None;
        };
        if p.size != f.meta.size() || content.is_empty() {
            return None;
        }
        let (mut file, opened) = open_for_backup(f.path).ok()?;
        let mut now = Vec::with_capacity(p.size as usize + 1);
        (&mut file).take(p.size + 1).read_to_end(&mut now).ok()?;
        if now.len() as u64 != p.size {
            return None;
        }
        let mut at = 0usize;
        for e in content {
            let id = e.data_blob()?;
            if !self.repo.index().contains(&id) {
                return None;
            }
            if !matches!(cache, Some((c, _)) if *c == id) {
                *cache = None;
                *cache = Some((id, self.repo.read_blob(&id).ok()?));
            }
            let (_, blob) = cache.as_ref().expect("just read");
            let old = crate::formats::content::extent_bytes(e, blob).ok()?;
            if now.get(at..at + old.len())? != old {
                return None;
            }
            at += old.len();
        }
        if at != now.len() {
            return None;
        }
        let after = file.metadata().ok()?;
        if after.size() != opened.size()
            || after.mtime() != opened.mtime()
            || after.mtime_nsec() != opened.mtime_nsec()
        {
            return None;
        }
        self.progress.file(f.path, Some(p.size));
        self.progress.bytes(p.size);
        self.progress.file_done();
        let fresh =
            (opened.ino() != f.meta.ino() || opened.mtime() != f.meta.mtime()).then_some(opened);
        Some(FileOutcome {
            read: Some((content.clone(), p.size, fresh)),
            status: FileStatus::Unchanged,
            bytes_read: p.size,
            warnings: Vec::new(),
        })
    }

    /// Reads `files` as one stream and stores its chunks (see [`Files::bundle`]).
    fn bundle_read(&self, files: &[Small<'_>]) -> Result<Vec<FileOutcome>> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let hint = files.iter().map(|f| f.meta.size()).sum();
        let mut reader = Concat {
            files,
            progress: self.progress,
            next: 0,
            current: None,
            pos: 0,
            spans: Vec::with_capacity(files.len()),
        };
        let mut chunks: Vec<(Id, u64)> = Vec::new();
        let chunker = self.repo.files_chunker();
        match self.chunks(&mut reader, chunker, hint, None, &mut |id, n| {
            chunks.push((id, n));
            Ok(())
        }) {
            Ok(_) => {}
            Err(ReadError::Store(e)) => return Err(e),
            // The reader turns every read error into a warning on its file.
            Err(ReadError::Io(e)) => return Err(Error::Invalid(format!("bundle read: {e}"))),
        }
        let spans = reader.spans;
        debug_assert_eq!(spans.len(), files.len());
        // Each file's bytes, as parts of the chunks that hold them.
        let mut out = Vec::with_capacity(files.len());
        let (mut j, mut chunk_start) = (0usize, 0u64);
        for (f, span) in files.iter().zip(spans) {
            if span.failed {
                out.push(FileOutcome {
                    read: None,
                    status: FileStatus::Skipped,
                    bytes_read: span.len,
                    warnings: span.warnings,
                });
                continue;
            }
            let mut content = Vec::with_capacity(1);
            let (mut at, end) = (span.start, span.start + span.len);
            while at < end {
                while chunk_start + chunks[j].1 <= at {
                    chunk_start += chunks[j].1;
                    j += 1;
                }
                let (id, len) = chunks[j];
                let take = end.min(chunk_start + len) - at;
                content.push(if at == chunk_start && take == len {
                    Extent::Data(id)
                } else {
                    Extent::Part {
                        id,
                        offset: at - chunk_start,
                        len: take,
                    }
                });
                at += take;
            }
            let status = match f.pnode.map(|p| &p.kind) {
                None => FileStatus::New,
                Some(NodeKind::File { content: old }) if *old == content => FileStatus::Unchanged,
                Some(_) => FileStatus::Changed,
            };
            // Metadata taken when the file was opened, when it differs from the listing.
            let fresh = span
                .opened
                .filter(|o| o.ino() != f.meta.ino() || o.mtime() != f.meta.mtime());
            out.push(FileOutcome {
                read: Some((content, span.len, fresh)),
                status,
                bytes_read: span.len,
                warnings: span.warnings,
            });
        }
        Ok(out)
    }
}

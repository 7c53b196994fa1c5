//! Reading regular files: unchanged detection, sparse regions, chunking into the store.

use crate::error::{Error, Result};
use crate::formats::content::ContentBuilder;
use crate::formats::id::{BlobKind, Id};
use crate::formats::tree::{Extent, Node, NodeKind, Time, Xattr};
use crate::operations::backup::delta::BaseFinder;
use crate::report::{Progress, Warning, WarningKind};
use crate::repository::Repository;
use crate::store::BlobWriter;
use cairn_chunker::Chunker;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Reads files and streams in segments of this many bytes: the largest chunk (so a
/// full buffer always holds a cut) plus 2 MiB (so each refill reads at least that much
/// after the unfinished tail moves to the front), and 4 MiB at least: 4 MiB for files and
/// streams (10 MiB for files in repositories made with 8 MiB chunks).
fn segment_len(chunker: &Chunker) -> usize {
    (chunker.params().max_size as usize + (2 << 20)).max(4 << 20)
}

/// Reads regular files. Shared by the threads that read the files of a directory in
/// parallel, so it holds only shared references.
pub(super) struct Files<'a, 'w> {
    pub(super) repo: &'a Repository,
    pub(super) writer: &'a BlobWriter<'w>,
    pub(super) progress: &'a dyn Progress,
    pub(super) force: bool,
    /// Large files read at once. Small files are many and wait on the disk, so two
    /// threads per core read them; large files wait on the workers that compress and
    /// seal, and each holds a segment of up to the largest chunk plus 2 MiB, so as
    /// many large files are read at once as there are workers.
    pub(super) large: &'a Slots,
}

/// A counting semaphore (at most `n` holders at once) that keeps each holder's segment
/// buffer for the next one.
///
/// A large file's segment is 4 MiB or more, so the allocator maps fresh pages for it
/// (decision 0021) and every page is faulted in and zeroed by the kernel while the file
/// is read into it: on a tree of large files that cost more than the copy itself.
/// Handing the same `n` buffers from one large file to the next costs no more memory
/// than `n` files read at once always could hold.
pub(super) struct Slots {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    freed: std::sync::Condvar,
}

impl Slots {
    pub(super) fn new(n: usize) -> Slots {
        Slots {
            free: std::sync::Mutex::new((0..n.max(1)).map(|_| Vec::new()).collect()),
            freed: std::sync::Condvar::new(),
        }
    }

    /// Waits for a free slot; its buffer goes back with it when the guard drops.
    fn take(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap();
        loop {
            if let Some(buf) = free.pop() {
                return SlotGuard(self, buf);
            }
            free = self.freed.wait(free).unwrap();
        }
    }
}

struct SlotGuard<'s>(&'s Slots, Vec<u8>);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.1);
        self.0.free.lock().unwrap().push(buf);
        self.0.freed.notify_one();
    }
}

/// How a file compared with the parent snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FileStatus {
    New,
    Changed,
    Unchanged,
    Skipped,
}

/// What reading one regular file gave.
pub(super) struct FileOutcome {
    /// Content, size, and fresher metadata when the file changed since it was listed;
    /// `None` when the file could not be read.
    pub(super) read: Option<(Vec<Extent>, u64, Option<Metadata>)>,
    pub(super) status: FileStatus,
    pub(super) bytes_read: u64,
    pub(super) warnings: Vec<Warning>,
}

/// Largest segment buffer a reading thread keeps from one file to the next.
const KEEP_SEGMENT: usize = 1 << 20;

thread_local! {
    /// Each reading thread's segment buffer, reused from file to file. It grows to the
    /// segment length (the largest chunk plus 2 MiB) only when a file needs it.
    static SEGMENT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Files<'_, '_> {
    fn warn(&self, out: &mut Vec<Warning>, kind: WarningKind, path: &Path, message: String) {
        let w = Warning {
            kind,
            path: path.to_string_lossy().into_owned(),
            message,
        };
        self.progress.warning(&w);
        out.push(w);
    }

    /// Reads one regular file (or takes it from the parent when unchanged).
    pub(super) fn file(
        &self,
        path: &Path,
        meta: &Metadata,
        pnode: Option<&Node>,
    ) -> Result<FileOutcome> {
        let mut out = FileOutcome {
            read: None,
            status: FileStatus::Skipped,
            bytes_read: 0,
            warnings: Vec::new(),
        };
        if let Some(out) = self.unchanged_outcome(path, meta, pnode) {
            return Ok(out);
        }
        self.progress.file(path, Some(meta.size()));
        let opened = open_for_backup(path);
        let (file, before) = match opened {
            Ok(x) => x,
            Err(e) => {
                self.warn(
                    &mut out.warnings,
                    WarningKind::Unreadable,
                    path,
                    e.to_string(),
                );
                return Ok(out);
            }
        };
        let chunker = self.repo.files_chunker();
        let sparse = before.blocks().saturating_mul(512) < before.size();
        let read = if sparse {
            self.read_sparse(&file, chunker)
        } else {
            let mut content = ContentBuilder::new();
            self.chunk_reader(&mut &file, chunker, &mut content, before.size())
                .map(|n| (content.finish(), n, n))
        };
        let (content, size, bytes_read) = match read {
            Ok(r) => r,
            Err(ReadError::Store(e)) => return Err(e),
            Err(ReadError::Io(e)) => {
                self.warn(
                    &mut out.warnings,
                    WarningKind::Unreadable,
                    path,
                    e.to_string(),
                );
                return Ok(out);
            }
        };
        out.status = match pnode.map(|p| &p.kind) {
            None => FileStatus::New,
            // Read again (--force, or metadata changed) but the same contents.
            Some(NodeKind::File { content: old }) if *old == content => FileStatus::Unchanged,
            Some(_) => FileStatus::Changed,
        };
        out.bytes_read = bytes_read;
        self.progress.file_done();
        if let Some(msg) = changed_while_read(&file, &before) {
            self.warn(&mut out.warnings, WarningKind::Changed, path, msg);
        }
        let fresh = if before.ino() != meta.ino() || before.mtime() != meta.mtime() {
            Some(before)
        } else {
            None
        };
        out.read = Some((content, size, fresh));
        Ok(out)
    }

    /// The outcome of a file the parent snapshot holds unchanged, with its content; `None`
    /// when it must be read.
    pub(super) fn unchanged_outcome(
        &self,
        path: &Path,
        meta: &Metadata,
        pnode: Option<&Node>,
    ) -> Option<FileOutcome> {
        let content = self.unchanged(meta, pnode)?;
        self.progress.file(path, Some(meta.size()));
        self.progress.bytes(meta.size());
        self.progress.file_done();
        Some(FileOutcome {
            read: Some((content, meta.size(), None)),
            status: FileStatus::Unchanged,
            bytes_read: 0,
            warnings: Vec::new(),
        })
    }

    /// The parent's content when the file is unchanged and all its blobs are indexed.
    fn unchanged(&self, meta: &Metadata, pnode: Option<&Node>) -> Option<Vec<Extent>> {
        if self.force {
            return None;
        }
        let p = pnode?;
        let NodeKind::File { content } = &p.kind else {
            return None;
        };
        let same = p.size == meta.size()
            && p.mtime == Time::from_stat(meta.mtime(), meta.mtime_nsec())
            && p.ctime == Time::from_stat(meta.ctime(), meta.ctime_nsec())
            && p.inode == meta.ino();
        if !same {
            return None;
        }
        let index = self.repo.index();
        content
            .iter()
            .all(|e| match e {
                // A list's data blobs are kept as long as the list is (prune keeps
                // what a kept list names): the list's own entry is enough.
                Extent::Data(id) | Extent::List { id, .. } | Extent::Part { id, .. } => {
                    index.contains(id)
                }
                Extent::Hole(_) => true,
            })
            .then(|| content.clone())
    }

    /// Reads a sparse file's data regions; holes become [`Extent::Hole`]. Returns the
    /// content, the size and the bytes actually read.
    fn read_sparse(
        &self,
        file: &File,
        chunker: &Chunker,
    ) -> Result<(Vec<Extent>, u64, u64), ReadError> {
        use rustix::fs::{seek, SeekFrom};
        let size = file.metadata().map_err(ReadError::Io)?.size();
        let mut content = ContentBuilder::new();
        let mut pos = 0u64;
        let mut read = 0u64;
        while pos < size {
            let data = match seek(file, SeekFrom::Data(pos)) {
                Ok(d) => d,
                Err(rustix::io::Errno::NXIO) => size, // no data after pos
                Err(rustix::io::Errno::INVAL) if pos == 0 => {
                    // The file system cannot report holes: read it all.
                    seek(file, SeekFrom::Start(0)).map_err(|e| ReadError::Io(e.into()))?;
                    let n = self.chunk_reader(&mut &*file, chunker, &mut content, size)?;
                    return Ok((content.finish(), n, n));
                }
                Err(e) => return Err(ReadError::Io(e.into())),
            };
            let data = data.min(size);
            if data > pos {
                self.push(&mut content, Extent::Hole(data - pos), data - pos)?;
                self.progress.bytes(data - pos);
            }
            if data >= size {
                break;
            }
            let hole = seek(file, SeekFrom::Hole(data))
                .map_err(|e| ReadError::Io(e.into()))?
                .min(size);
            seek(file, SeekFrom::Start(data)).map_err(|e| ReadError::Io(e.into()))?;
            let mut region = Read::take(file, hole - data);
            let n = self.chunk_reader(&mut region, chunker, &mut content, hole - data)?;
            read += n;
            if n < hole - data {
                // Shrunk while read: the end is recorded as read.
                return Ok((content.finish(), data + n, read));
            }
            pos = hole;
        }
        Ok((content.finish(), size, read))
    }

    /// Appends an extent to a content, storing the list blobs it completes.
    pub(super) fn push(
        &self,
        content: &mut ContentBuilder,
        extent: Extent,
        len: u64,
    ) -> Result<(), ReadError> {
        content
            .push(extent, len, &mut |list| {
                self.writer.add(BlobKind::Tree, list).map(|(id, _)| id)
            })
            .map_err(ReadError::Store)
    }

    /// Chunks everything `r` yields into `content`; returns the byte count. `hint` is
    /// the expected length (the buffer is sized to it, up to the segment length).
    pub(super) fn chunk_reader(
        &self,
        r: &mut dyn Read,
        chunker: &Chunker,
        content: &mut ContentBuilder,
        hint: u64,
    ) -> Result<u64, ReadError> {
        self.chunk_reader_with_bases(r, chunker, content, hint, None)
    }

    /// [`Files::chunk_reader`] for a stream with an earlier version: each new chunk is
    /// stored as a delta against the base `bases` finds for it.
    pub(super) fn chunk_reader_with_bases(
        &self,
        r: &mut dyn Read,
        chunker: &Chunker,
        content: &mut ContentBuilder,
        hint: u64,
        bases: Option<&mut BaseFinder<'_, Repository>>,
    ) -> Result<u64, ReadError> {
        self.chunks(r, chunker, hint, bases, &mut |id, n| {
            self.push(content, Extent::Data(id), n)
        })
    }

    /// Chunks everything `r` yields and stores the chunks, handing each one's id and
    /// length to `sink` in order; returns the byte count. `hint` is the expected length.
    pub(super) fn chunks(
        &self,
        r: &mut dyn Read,
        chunker: &Chunker,
        hint: u64,
        bases: Option<&mut BaseFinder<'_, Repository>>,
        sink: &mut dyn FnMut(Id, u64) -> Result<(), ReadError>,
    ) -> Result<u64, ReadError> {
        if hint > KEEP_SEGMENT as u64 {
            let mut slot = self.large.take();
            return self.chunk_into(r, chunker, hint, &mut slot.1, bases, sink);
        }
        SEGMENT.with_borrow_mut(|buf| {
            let r = self.chunk_into(r, chunker, hint, buf, bases, sink);
            if buf.capacity() > KEEP_SEGMENT {
                // A large file's segment (up to the largest chunk plus 2 MiB) is not kept
                // for the next file: with two reading threads per core they would add up
                // to tens of MiB held for the rare large file.
                *buf = Vec::new();
            }
            r
        })
    }

    fn chunk_into(
        &self,
        r: &mut dyn Read,
        chunker: &Chunker,
        hint: u64,
        buf: &mut Vec<u8>,
        mut bases: Option<&mut BaseFinder<'_, Repository>>,
        sink: &mut dyn FnMut(Id, u64) -> Result<(), ReadError>,
    ) -> Result<u64, ReadError> {
        let seg = segment_len(chunker);
        // One byte more than expected, so that end of file is seen in the first pass.
        let mut limit = usize::try_from(hint.saturating_add(1))
            .unwrap_or(seg)
            .clamp(64 << 10, seg);
        if buf.len() < limit {
            // Exactly: grown by doubling, a 10 MiB segment would take 16.
            buf.reserve_exact(limit - buf.len());
            buf.resize(limit, 0);
        }
        let mut filled = 0usize;
        let mut total = 0u64;
        let mut chunked = 0u64;
        let mut eof = false;
        loop {
            while !eof && filled < limit {
                match r.read(&mut buf[filled..limit]) {
                    Ok(0) => eof = true,
                    Ok(n) => {
                        filled += n;
                        total += n as u64;
                        self.progress.bytes(n as u64);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(ReadError::Io(e)),
                }
            }
            let mut start = 0;
            while start < filled {
                match chunker.next_cut(&buf[start..filled], eof) {
                    Some(n) => {
                        let chunk = &buf[start..start + n];
                        let (id, _) = match bases.as_deref_mut() {
                            None => self.writer.add(BlobKind::Data, chunk),
                            Some(f) => {
                                self.writer
                                    .add_with_base(BlobKind::Data, chunk, &mut |id, new| {
                                        f.next(id, chunked, n as u64, new)
                                    })
                            }
                        }
                        .map_err(ReadError::Store)?;
                        sink(id, n as u64)?;
                        chunked += n as u64;
                        start += n;
                    }
                    None => break,
                }
            }
            if start == 0 && filled == limit && limit < seg {
                // A full small buffer without a cut: the file is larger than expected.
                limit = seg;
                if buf.len() < limit {
                    buf.reserve_exact(limit - buf.len());
                    buf.resize(limit, 0);
                }
            }
            buf.copy_within(start..filled, 0);
            filled -= start;
            if eof && filled == 0 {
                return Ok(total);
            }
        }
    }
}

pub(super) enum ReadError {
    /// Reading the source failed: a per-file warning (or a failed stream).
    Io(io::Error),
    /// Storing failed: the backup fails.
    Store(Error),
}

/// What changed in an open file since `before` (its metadata when it was opened), as
/// a warning's message; `None` when size, mtime and ctime are the same.
pub(super) fn changed_while_read(file: &File, before: &Metadata) -> Option<String> {
    let a = file.metadata().ok()?;
    let same = a.size() == before.size()
        && a.mtime() == before.mtime()
        && a.mtime_nsec() == before.mtime_nsec()
        && a.ctime() == before.ctime()
        && a.ctime_nsec() == before.ctime_nsec();
    (!same).then(|| {
        format!(
            "size {} → {} bytes during the read",
            before.size(),
            a.size()
        )
    })
}

/// Opens a file for reading without following a symlink swapped in after lstat, and
/// without updating its access time where the kernel allows that. What was listed as a
/// regular file must still be one: a named pipe swapped in after lstat would otherwise
/// block the open until someone writes to it (any user can make one in a directory of
/// their own), so the open does not wait (`O_NONBLOCK`, which changes nothing for a
/// regular file) and anything else is refused. Returns the file and its metadata as
/// opened.
pub(super) fn open_for_backup(path: &Path) -> io::Result<(File, Metadata)> {
    let open = |flags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags | libc::O_NONBLOCK)
            .open(path)
    };
    let file = match open(libc::O_NOFOLLOW | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(libc::O_NOFOLLOW),
        r => r,
    }?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(
            "no longer a regular file (replaced while the backup ran)",
        ));
    }
    Ok((file, meta))
}

pub(super) fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let mut out = Vec::new();
    if let Ok(names) = xattr::list(path) {
        for name in names {
            if let Ok(Some(value)) = xattr::get(path, &name) {
                out.push(Xattr {
                    name: name.as_bytes().to_vec(),
                    value,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// A directory with a `CACHEDIR.TAG` that starts with the standard signature.
pub(super) fn is_cache_dir(dir: &Path) -> bool {
    const SIG: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
    let mut buf = [0u8; 43];
    File::open(dir.join("CACHEDIR.TAG"))
        .and_then(|mut f| f.read_exact(&mut buf))
        .map(|_| buf == SIG)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named pipe where a regular file was listed is refused at once: opening it for
    /// reading would wait for a writer, and the backup with it.
    #[test]
    fn a_named_pipe_swapped_in_for_a_file_does_not_block_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("was-a-file");
        let st = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(st.success());
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_for_backup(&path).map(|_| ()));
        });
        let r = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("opening a named pipe blocked");
        let e = r.expect_err("a named pipe is not read as a file");
        assert!(e.to_string().contains("no longer a regular file"), "{e}");
        // A regular file still opens.
        let file = dir.path().join("file");
        std::fs::write(&file, b"data").unwrap();
        assert!(open_for_backup(&file).is_ok());
    }
}

//! cairn-archive: a directory of a snapshot (or one file) as a tar or zip archive, for
//! `cairn dump --archive tar|zip`.
//!
//! Main items:
//! - [`write`]: writes a node of a snapshot and everything below it, in a [`Format`],
//!   to any writer (standard output, typically: nothing needs to seek).
//! - [`Format`]: POSIX tar (ustar with PAX records where needed) or zip (deflated).
//! - [`Error`]: a repository error, an I/O error of the output, a zip error.
//!
//! Entries are named relative to the directory dumped and come in tree order, each
//! directory before its contents. File contents stream from the repository straight
//! into the archive, so memory does not grow with a file's size: tar needs the size
//! before the contents, and the tree records it; zip's streaming writer puts sizes and
//! checksums after the contents (data descriptors), as a non-seekable output requires.
//!
//! What it is not: it selects no snapshot and takes no lock (the caller resolves the
//! node and holds the repository's lock); it never unpacks an archive.

use cairn_core::content::ContentWalk;
use cairn_core::{browse, Extent, Node, NodeKind, Repository};
use std::collections::HashMap;
use std::io::{self, Write};

/// Files up to this size are read blob by blob; larger ones through
/// [`browse::dump_file`], which reads ahead with many requests in flight (worth its
/// thread pool only for large files).
const READ_AHEAD_FROM: u64 = 8 << 20;

/// Longest name (and link target) a plain ustar header holds; longer ones go in a PAX
/// record.
const USTAR_NAME: usize = 100;

/// The formats an archive can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// POSIX tar (ustar with PAX records where needed): modes, owners, times to the
    /// nanosecond, symlinks, hard links, devices, FIFOs, extended attributes.
    Tar,
    /// Zip, deflated: modes, times to two seconds, symlinks; a hard link's contents are
    /// stored again.
    Zip,
}

/// What can stop an archive half-way.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the repository (a tree, a blob) failed.
    #[error(transparent)]
    Repository(#[from] cairn_core::Error),
    /// Writing the archive failed (a closed pipe, a full disk).
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The zip writer refused an entry.
    #[error(transparent)]
    Zip(zip::result::ZipError),
    /// A file's contents do not have the size its tree records (the tar header, written
    /// first, said otherwise).
    #[error("{path}: the tree says {tree} bytes, the contents hold {contents}")]
    SizeMismatch {
        path: String,
        tree: u64,
        contents: u64,
    },
    /// A content walk yielded a list of extents instead of its items.
    #[error("a content walk yielded a list")]
    ContentList,
}

/// The result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes `node` (a directory's contents, or a lone file under its name) as an archive
/// of `format` to `out`, flushes `out` and gives it back. `skipped` hears of each entry
/// the format cannot hold (a socket; in zip anything but files, directories and
/// symlinks), as `PATH skipped: WHY`. After the first error nothing more is written to
/// `out`, so the writers' own clean-up does not write an archive's end into a closed
/// pipe.
pub fn write<W: Write>(
    repo: &Repository,
    node: &Node,
    format: Format,
    out: W,
    skipped: &dyn Fn(&str),
) -> Result<W> {
    let out = Latch::new(out);
    let mut out = match format {
        Format::Tar => {
            let mut tar = Tar {
                repo,
                builder: tar::Builder::new(out),
                links: HashMap::new(),
                skipped,
            };
            tar.top(node)?;
            tar.builder.into_inner()?.into_inner()
        }
        Format::Zip => {
            let mut zip = Zip {
                repo,
                writer: zip::ZipWriter::new_stream(out),
                skipped,
            };
            zip.top(node)?;
            zip.writer
                .finish()
                .map_err(zip_error)?
                .into_inner()
                .into_inner()
        }
    };
    out.flush()?;
    Ok(out)
}

/// A writer that, after its first error, swallows everything: the first error goes up
/// to the caller, and the archive writers' own clean-up on drop (which would write the
/// archive's end into a closed pipe and complain on standard error) finds nothing
/// failing.
struct Latch<W: Write> {
    inner: W,
    failed: bool,
}

impl<W: Write> Latch<W> {
    fn new(inner: W) -> Latch<W> {
        Latch {
            inner,
            failed: false,
        }
    }

    fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Latch<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Ok(buf.len());
        }
        self.inner.write(buf).inspect_err(|_| self.failed = true)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        self.inner.flush().inspect_err(|_| self.failed = true)
    }
}

/// Counts what passes through.
struct Counting<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    n: u64,
}

impl<W: Write + ?Sized> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a file node's contents to `out`; returns how many bytes. Every blob is
/// verified as it is read.
fn write_contents(repo: &Repository, node: &Node, out: &mut dyn Write) -> Result<u64> {
    let NodeKind::File { content } = &node.kind else {
        return Ok(0);
    };
    if node.size >= READ_AHEAD_FROM {
        return Ok(browse::dump_file(repo, node, out)?);
    }
    let mut n = 0u64;
    for item in ContentWalk::new(repo, content) {
        match item? {
            (e @ (Extent::Data(_) | Extent::Part { .. }), _) => {
                let data = repo.read_blob(&e.data_blob().expect("a data extent"))?;
                let data = cairn_core::content::extent_bytes(&e, &data)?;
                out.write_all(data)?;
                n += data.len() as u64;
            }
            (Extent::Hole(len), _) => {
                io::copy(&mut io::Read::take(io::repeat(0), len), out)?;
                n += len;
            }
            (Extent::List { .. }, _) => return Err(Error::ContentList),
        }
    }
    Ok(n)
}

/// The entry's path in the archive: its path below the dumped directory.
fn join(prefix: &[u8], name: &[u8]) -> Vec<u8> {
    if prefix.is_empty() {
        name.to_vec()
    } else {
        [prefix, b"/", name].concat()
    }
}

/// Calls `visit(path, node)` for every node below the tree `dir`, depth first, in name
/// order.
fn walk(
    repo: &Repository,
    dir: &cairn_core::Id,
    prefix: &[u8],
    visit: &mut dyn FnMut(&[u8], &Node) -> Result<()>,
) -> Result<()> {
    let tree = repo.load_tree(dir)?;
    for node in &tree.nodes {
        let path = join(prefix, &node.name);
        visit(&path, node)?;
        if let NodeKind::Dir { subtree } = &node.kind {
            walk(repo, subtree, &path, visit)?;
        }
    }
    Ok(())
}

/// Tells of an entry the format cannot hold.
fn skip(skipped: &dyn Fn(&str), path: &[u8], what: &str) {
    skipped(&format!(
        "{} skipped: {what}",
        String::from_utf8_lossy(path).trim_end_matches('/')
    ));
}

struct Tar<'a, W: Write> {
    repo: &'a Repository,
    builder: tar::Builder<W>,
    /// First path of each hard-link group (device, inode) written so far.
    links: HashMap<(u64, u64), Vec<u8>>,
    skipped: &'a dyn Fn(&str),
}

impl<W: Write> Tar<'_, W> {
    /// Writes the dumped node: a directory's contents, or a lone file under its name.
    fn top(&mut self, node: &Node) -> Result<()> {
        let repo = self.repo;
        match &node.kind {
            NodeKind::Dir { subtree } => walk(repo, subtree, b"", &mut |p, n| self.entry(p, n)),
            _ => self.entry(&node.name, node),
        }?;
        self.builder.finish()?;
        Ok(())
    }

    fn entry(&mut self, path: &[u8], node: &Node) -> Result<()> {
        use tar::EntryType;
        let mut h = tar::Header::new_ustar();
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let mut path = path.to_vec();
        let mut link: Option<Vec<u8>> = None;
        let mut size = 0;
        let kind = match &node.kind {
            NodeKind::Dir { .. } => {
                path.push(b'/');
                EntryType::Directory
            }
            NodeKind::File { .. } if node.links > 1 && node.inode != 0 => {
                match self.links.get(&(node.device, node.inode)) {
                    Some(first) => {
                        link = Some(first.clone());
                        EntryType::Link
                    }
                    None => {
                        self.links.insert((node.device, node.inode), path.clone());
                        size = node.size;
                        EntryType::Regular
                    }
                }
            }
            NodeKind::File { .. } => {
                size = node.size;
                EntryType::Regular
            }
            NodeKind::Symlink { target } => {
                link = Some(target.clone());
                EntryType::Symlink
            }
            NodeKind::Fifo => EntryType::Fifo,
            NodeKind::CharDevice { rdev } | NodeKind::BlockDevice { rdev } => {
                h.set_device_major(dev_major(*rdev))?;
                h.set_device_minor(dev_minor(*rdev))?;
                if matches!(node.kind, NodeKind::CharDevice { .. }) {
                    EntryType::Char
                } else {
                    EntryType::Block
                }
            }
            NodeKind::Socket => {
                skip(self.skipped, &path, "tar cannot hold a socket");
                return Ok(());
            }
        };
        h.set_entry_type(kind);
        set_field(&mut h.as_old_mut().name, &path);
        if path.len() > USTAR_NAME {
            pax.push(("path".into(), path.clone()));
        }
        if let Some(l) = &link {
            set_field(&mut h.as_old_mut().linkname, l);
            if l.len() > USTAR_NAME {
                pax.push(("linkpath".into(), l.clone()));
            }
        }
        h.set_mode(node.mode & 0o7777);
        h.set_size(size);
        // ustar's octal fields hold sizes below 8 GiB and ids below 2^21; PAX records
        // carry the exact values beyond (the header then holds an approximation).
        if size >= 8 << 30 {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        h.set_uid(node.uid.into());
        h.set_gid(node.gid.into());
        for (key, id) in [("uid", node.uid), ("gid", node.gid)] {
            if id >= 1 << 21 {
                pax.push((key.into(), id.to_string().into_bytes()));
            }
        }
        if let Some(ustar) = h.as_ustar_mut() {
            for (key, name, field) in [
                ("uname", &node.user, &mut ustar.uname),
                ("gname", &node.group, &mut ustar.gname),
            ] {
                let Some(name) = name else { continue };
                set_field(field, name.as_bytes());
                if name.len() >= field.len() {
                    pax.push((key.into(), name.clone().into_bytes()));
                }
            }
        }
        let mtime = node.mtime;
        h.set_mtime(mtime.secs.max(0) as u64);
        if mtime.nanos != 0 || mtime.secs < 0 {
            pax.push(("mtime".into(), pax_time(mtime).into_bytes()));
        }
        for x in &node.xattrs {
            if let Ok(name) = std::str::from_utf8(&x.name) {
                pax.push((format!("SCHILY.xattr.{name}"), x.value.clone()));
            }
        }
        if !pax.is_empty() {
            self.builder
                .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))?;
        }
        h.set_cksum();
        // The header alone, then the contents written straight to the output and padded
        // to the 512-byte block: the tar crate would want a reader, and the contents
        // come as writes.
        self.builder.append(&h, io::empty())?;
        if kind == EntryType::Regular {
            let out = self.builder.get_mut();
            let mut counting = Counting { inner: out, n: 0 };
            write_contents(self.repo, node, &mut counting)?;
            if counting.n != size {
                return Err(Error::SizeMismatch {
                    path: String::from_utf8_lossy(&path).into_owned(),
                    tree: size,
                    contents: counting.n,
                });
            }
            let pad = (512 - size % 512) % 512;
            out.write_all(&[0u8; 512][..pad as usize])?;
        }
        Ok(())
    }
}

/// Copies `value` into a NUL-padded header field, cut to the field's length (a PAX
/// record then holds the whole value).
fn set_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// A time as a PAX record writes it: the real number of seconds since the epoch, with
/// the nanoseconds as a decimal fraction (so -2 s + 0.25 s is "-1.750000000").
fn pax_time(t: cairn_core::Time) -> String {
    if t.nanos == 0 {
        return t.secs.to_string();
    }
    if t.secs >= 0 {
        format!("{}.{:09}", t.secs, t.nanos)
    } else {
        // secs + nanos/1e9 with secs < 0: e.g. -2 s + 0.25 s = -1.75 s.
        let total = -(t.secs as i128 * 1_000_000_000 + t.nanos as i128);
        format!("-{}.{:09}", total / 1_000_000_000, total % 1_000_000_000)
    }
}

/// The major number of a Linux device number (glibc's encoding).
fn dev_major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32
}

/// The minor number of a Linux device number (glibc's encoding).
fn dev_minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32
}

struct Zip<'a, W: Write> {
    repo: &'a Repository,
    writer: zip::ZipWriter<zip::write::StreamWriter<W>>,
    skipped: &'a dyn Fn(&str),
}

impl<W: Write> Zip<'_, W> {
    fn top(&mut self, node: &Node) -> Result<()> {
        let repo = self.repo;
        match &node.kind {
            NodeKind::Dir { subtree } => walk(repo, subtree, b"", &mut |p, n| self.entry(p, n)),
            _ => self.entry(&node.name, node),
        }
    }

    fn entry(&mut self, path: &[u8], node: &Node) -> Result<()> {
        use zip::write::SimpleFileOptions;
        let name = String::from_utf8_lossy(path).into_owned();
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(node.mode & 0o7777)
            .last_modified_time(zip_time(node.mtime))
            // Sizes of 4 GiB and more need the Zip64 fields, decided before the
            // contents are written.
            .large_file(node.size >= u32::MAX as u64);
        match &node.kind {
            NodeKind::Dir { .. } => self
                .writer
                .add_directory(format!("{name}/"), options)
                .map_err(zip_error)?,
            NodeKind::File { .. } => {
                self.writer.start_file(name, options).map_err(zip_error)?;
                write_contents(self.repo, node, &mut self.writer)?;
            }
            NodeKind::Symlink { target } => self
                .writer
                .add_symlink(name, String::from_utf8_lossy(target), options)
                .map_err(zip_error)?,
            _ => skip(
                self.skipped,
                path,
                "zip holds files, directories and symlinks only",
            ),
        }
        Ok(())
    }
}

/// A modification time as zip's local date and time, to two seconds; times zip cannot
/// hold (before 1980, after 2107) become 1980-01-01.
fn zip_time(t: cairn_core::Time) -> zip::DateTime {
    let local = jiff::Timestamp::new(t.secs, 0)
        .map(|ts| ts.to_zoned(jiff::tz::TimeZone::system()).datetime());
    local
        .ok()
        .and_then(|d| {
            zip::DateTime::from_date_and_time(
                u16::try_from(d.year()).ok()?,
                d.month() as u8,
                d.day() as u8,
                d.hour() as u8,
                d.minute() as u8,
                d.second() as u8,
            )
            .ok()
        })
        .unwrap_or_default()
}

/// A zip error, as an I/O error when it is one (so that a closed pipe is recognised as
/// such).
fn zip_error(e: zip::result::ZipError) -> Error {
    match e {
        zip::result::ZipError::Io(io) => Error::Io(io),
        other => Error::Zip(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = |secs, nanos| pax_time(cairn_core::Time { secs, nanos });
        assert_eq!(t(5, 0), "5");
        assert_eq!(t(5, 250_000_000), "5.250000000");
        assert_eq!(t(-2, 250_000_000), "-1.750000000");
        assert_eq!(t(-1, 0), "-1");
    }

    #[test]
    fn device_numbers() {
        // makedev(8, 1) and makedev(259, 70000) in glibc's encoding.
        let dev = |ma: u64, mi: u64| {
            ((ma & 0xffff_f000) << 32)
                | ((ma & 0xfff) << 8)
                | ((mi & 0xffff_ff00) << 12)
                | (mi & 0xff)
        };
        assert_eq!((dev_major(dev(8, 1)), dev_minor(dev(8, 1))), (8, 1));
        assert_eq!(
            (dev_major(dev(259, 70000)), dev_minor(dev(259, 70000))),
            (259, 70000)
        );
    }
}

//! Restore: a snapshot (or a subtree of it) into a target directory.
//!
//! First the trees are read and a plan is made (directories, files, links, hard-link
//! groups); then directories are created, files are written in parallel (and the
//! chunks of large files in parallel too), hard links are made, and directory
//! metadata is set last, deepest first, so that writing into a directory does not
//! change its restored mtime.
//!
//! Every blob is authenticated and its keyed hash checked before a byte of it is
//! written. A re-run over a partial restore reads what is there and writes only chunks
//! whose contents differ, so an interrupted restore resumes cheaply.

use crate::backup::{Progress, Warning, WarningKind};
use crate::content::ContentWalk;
use crate::error::{Error, Result};
use crate::exclude::Excludes;
use crate::id::Id;
use crate::repository::Repository;
use crate::tree::{Extent, Node, NodeKind, Time};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Extents of a file written in parallel at a time.
const RESTORE_BATCH: usize = 1024;

/// How to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Where to write. Created if missing.
    pub target: PathBuf,
    /// Restore only paths matching one of these (and what is below them).
    pub includes: Vec<String>,
    /// Skip paths matching one of these (and what is below them).
    pub excludes: Vec<String>,
    /// Set owners (default: only when running as root).
    pub owners: Option<bool>,
}

/// What a restore did.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RestoreSummary {
    /// Files written (fully or partly).
    pub files_restored: u64,
    /// Files already identical in the target.
    pub files_unchanged: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, FIFOs and devices.
    pub others: u64,
    /// Hard links made.
    pub hardlinks: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes found correct in the target and not written again.
    pub bytes_skipped: u64,
    /// Files or metadata that could not be restored.
    pub errors: u64,
}

struct Item {
    path: PathBuf,
    node: Node,
    /// For hard-link followers: the path of the first link restored with content.
    link_to: Option<PathBuf>,
}

/// Restores `node` (a directory's contents, or a single file) into `opts.target`.
///
/// `snap_path` is the node's path inside the snapshot (for include and exclude
/// matching); `""` for the root.
pub fn restore(
    repo: &Repository,
    node: &Node,
    snap_path: &str,
    opts: &RestoreOptions,
    progress: &dyn Progress,
) -> Result<(RestoreSummary, Vec<Warning>)> {
    repo.load_index()?;
    let includes = Excludes::new(&opts.includes)?;
    let excludes = Excludes::new(&opts.excludes)?;
    let owners = opts.owners.unwrap_or_else(crate::platform::is_root);
    std::fs::create_dir_all(&opts.target).map_err(|e| Error::io(&opts.target, e))?;

    // Plan.
    let mut items = Vec::new();
    let mut planner = Planner {
        repo,
        includes: &includes,
        has_includes: !opts.includes.is_empty(),
        excludes: &excludes,
        items: &mut items,
    };
    match &node.kind {
        NodeKind::Dir { subtree } => {
            planner.dir(subtree, snap_path, &opts.target, false)?;
        }
        _ => {
            let mut n = node.clone();
            if n.name.is_empty() {
                n.name = b"file".to_vec();
            }
            let p = opts.target.join(std::ffi::OsStr::from_bytes(&n.name));
            planner.items.push(Item {
                path: p,
                node: n,
                link_to: None,
            });
        }
    }
    // Hard-link groups: the first file of each (device, inode) with several links
    // carries the content, the others become links to it.
    let mut firsts: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for it in items.iter_mut() {
        if matches!(it.node.kind, NodeKind::File { .. }) && it.node.links > 1 && it.node.inode != 0
        {
            match firsts.get(&(it.node.device, it.node.inode)) {
                Some(first) => it.link_to = Some(first.clone()),
                None => {
                    firsts.insert((it.node.device, it.node.inode), it.path.clone());
                }
            }
        }
    }

    let names = crate::platform::NameCache::default();
    let summary = Mutex::new(RestoreSummary::default());
    let warnings = Mutex::new(Vec::new());
    let warn = |path: &Path, msg: String| {
        let w = Warning {
            kind: WarningKind::Unreadable,
            path: path.to_string_lossy().into_owned(),
            message: msg,
        };
        progress.warning(&w);
        warnings.lock().unwrap().push(w);
        summary.lock().unwrap().errors += 1;
    };

    // Directories first (so parallel file writes find their parents).
    for it in items
        .iter()
        .filter(|i| matches!(i.node.kind, NodeKind::Dir { .. }))
    {
        match ensure_dir(&it.path) {
            Ok(()) => summary.lock().unwrap().dirs += 1,
            Err(e) => warn(&it.path, e.to_string()),
        }
    }

    let written = AtomicU64::new(0);
    let skipped = AtomicU64::new(0);
    // Restoring waits on reads of packs and on file creation more than on the CPU: two
    // threads per core keep the disk busy (as the backup's reading pool does).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2 * cores)
        .thread_name(|i| format!("cairn-restore-{i}"))
        .build()
        .map_err(|e| Error::Invalid(format!("cannot start restore threads: {e}")))?;
    pool.install(|| {
        items
            .par_iter()
            .filter(|i| i.link_to.is_none() && !matches!(i.node.kind, NodeKind::Dir { .. }))
            .for_each(|it| {
                progress.file(&it.path, Some(it.node.size));
                let r = match &it.node.kind {
                    NodeKind::File { content } => restore_file(
                        repo,
                        &it.path,
                        content,
                        it.node.size,
                        progress,
                        &written,
                        &skipped,
                    )
                    .map(|changed| {
                        let mut s = summary.lock().unwrap();
                        if changed {
                            s.files_restored += 1
                        } else {
                            s.files_unchanged += 1
                        }
                    }),
                    _ => restore_special(&it.path, &it.node)
                        .map(|()| summary.lock().unwrap().others += 1),
                };
                match r {
                    Ok(()) => {
                        if let Err(e) = set_metadata(&it.path, &it.node, owners, &names) {
                            warn(&it.path, format!("metadata: {e}"));
                        }
                    }
                    Err(e) => warn(&it.path, e.to_string()),
                }
                progress.file_done();
            })
    });

    for it in items.iter().filter(|i| i.link_to.is_some()) {
        let first = it.link_to.as_ref().unwrap();
        match hard_link(first, &it.path) {
            Ok(()) => summary.lock().unwrap().hardlinks += 1,
            Err(e) => warn(&it.path, format!("hard link to {}: {e}", first.display())),
        }
    }

    // Directory metadata last, deepest first.
    for it in items
        .iter()
        .rev()
        .filter(|i| matches!(i.node.kind, NodeKind::Dir { .. }))
    {
        if let Err(e) = set_metadata(&it.path, &it.node, owners, &names) {
            warn(&it.path, format!("metadata: {e}"));
        }
    }

    let mut s = summary.into_inner().unwrap();
    s.bytes_written = written.into_inner();
    s.bytes_skipped = skipped.into_inner();
    Ok((s, warnings.into_inner().unwrap()))
}

struct Planner<'a> {
    repo: &'a Repository,
    includes: &'a Excludes,
    has_includes: bool,
    excludes: &'a Excludes,
    items: &'a mut Vec<Item>,
}

impl Planner<'_> {
    /// Plans the contents of a directory; returns true if anything was planned.
    fn dir(&mut self, tree: &Id, snap_dir: &str, out_dir: &Path, included: bool) -> Result<bool> {
        let tree = self.repo.load_tree(tree)?;
        let mut any = false;
        for node in tree.nodes {
            let snap_path = format!("{snap_dir}/{}", node.display_name());
            let is_dir = matches!(node.kind, NodeKind::Dir { .. });
            if self.excludes.is_excluded(Path::new(&snap_path), is_dir) {
                continue;
            }
            let inc = included
                || !self.has_includes
                || self.includes.is_excluded(Path::new(&snap_path), is_dir);
            let path = out_dir.join(std::ffi::OsStr::from_bytes(&node.name));
            if let NodeKind::Dir { subtree } = &node.kind {
                let subtree = *subtree;
                let pos = self.items.len();
                self.items.push(Item {
                    path: path.clone(),
                    node,
                    link_to: None,
                });
                let below = self.dir(&subtree, &snap_path, &path, inc)?;
                if inc || below {
                    any = true;
                } else {
                    self.items.truncate(pos);
                }
            } else if inc {
                self.items.push(Item {
                    path,
                    node,
                    link_to: None,
                });
                any = true;
            }
        }
        Ok(any)
    }
}

fn ensure_dir(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            std::fs::remove_file(path)?;
            std::fs::create_dir(path)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::create_dir(path),
        Err(e) => Err(e),
    }
}

/// Writes one file; returns whether anything had to be written.
fn restore_file(
    repo: &Repository,
    path: &Path,
    content: &[Extent],
    size: u64,
    progress: &dyn Progress,
    written: &AtomicU64,
    skipped: &AtomicU64,
) -> Result<bool> {
    let existing = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_file() => true,
        Ok(m) => {
            let r = if m.is_dir() {
                std::fs::remove_dir_all(path)
            } else {
                std::fs::remove_file(path)
            };
            r.map_err(|e| Error::io(path, e))?;
            false
        }
        Err(_) => false,
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    let old_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if old_len != size {
        file.set_len(size).map_err(|e| Error::io(path, e))?;
    }
    // The extents are walked in batches (list blobs are loaded as the walk reaches
    // them), each batch written in parallel: memory stays the same for any file size.
    let changed = AtomicU64::new(0);
    let write_piece = |&(off, len, e): &(u64, u64, Extent)| -> Result<()> {
        let io_err = |e| Error::io(path, e);
        match e {
            Extent::Data(id) => {
                if existing && off + len <= old_len {
                    let mut cur = vec![0u8; len as usize];
                    if file.read_exact_at(&mut cur, off).is_ok() && repo.blob_id(&cur) == id {
                        skipped.fetch_add(len, Ordering::Relaxed);
                        progress.bytes(len);
                        return Ok(());
                    }
                }
                let data = repo.read_blob(&id)?;
                file.write_all_at(&data, off).map_err(io_err)?;
                written.fetch_add(len, Ordering::Relaxed);
                changed.fetch_add(1, Ordering::Relaxed);
            }
            Extent::Hole(n) => {
                if existing && off < old_len && !is_hole(&file, off, n) {
                    punch_hole(&file, off, n).map_err(io_err)?;
                    changed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Extent::List { .. } => unreachable!("the walk expands lists"),
        }
        progress.bytes(len);
        Ok(())
    };
    let mismatch = || {
        Error::format(
            format!("file {}", path.display()),
            format!("its contents do not add up to the {size} bytes the tree says"),
        )
    };
    let result = (|| -> Result<()> {
        let mut walk = ContentWalk::new(repo, content);
        let mut batch = Vec::with_capacity(RESTORE_BATCH);
        let mut off = 0u64;
        loop {
            batch.clear();
            for item in walk.by_ref().take(RESTORE_BATCH) {
                let (e, len) = item.map_err(|e| match e {
                    Error::MissingBlob { kind, id, .. } => Error::MissingBlob {
                        kind,
                        id,
                        context: format!(" (needed by {})", path.display()),
                    },
                    e => e,
                })?;
                if off.saturating_add(len) > size {
                    return Err(mismatch());
                }
                batch.push((off, len, e));
                off += len;
            }
            if batch.is_empty() {
                break;
            }
            batch.par_iter().try_for_each(write_piece)?;
        }
        if off != size {
            return Err(mismatch());
        }
        Ok(())
    })();
    if let Err(e) = result {
        if !existing {
            // Never leave a file that looks restored but holds zeros where data failed.
            drop(file);
            let _ = std::fs::remove_file(path);
        }
        return Err(e);
    }
    Ok(!existing || old_len != size || changed.into_inner() > 0)
}

/// True when `off..off + len` of `file` holds no data (is already a hole).
fn is_hole(file: &File, off: u64, len: u64) -> bool {
    use rustix::fs::{seek, SeekFrom};
    match seek(file, SeekFrom::Data(off)) {
        Ok(next) => next >= off + len,
        Err(rustix::io::Errno::NXIO) => true,
        Err(_) => false,
    }
}

/// Makes a range read as zeros, as a hole where the file system allows.
fn punch_hole(file: &File, off: u64, len: u64) -> io::Result<()> {
    use rustix::fs::{fallocate, FallocateFlags};
    if fallocate(
        file,
        FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
        off,
        len,
    )
    .is_ok()
    {
        return Ok(());
    }
    let zeros = vec![0u8; 1 << 16];
    let mut done = 0u64;
    while done < len {
        let k = (len - done).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..k], off + done)?;
        done += k as u64;
    }
    Ok(())
}

fn restore_special(path: &Path, node: &Node) -> Result<()> {
    use rustix::fs::{mknodat, FileType, Mode, CWD};
    let io_err = |e: io::Error| Error::io(path, e);
    if let Ok(m) = std::fs::symlink_metadata(path) {
        // Keep an identical symlink; replace anything else.
        if let (NodeKind::Symlink { target }, true) = (&node.kind, m.file_type().is_symlink()) {
            if std::fs::read_link(path).is_ok_and(|t| t.as_os_str().as_bytes() == target.as_slice())
            {
                return Ok(());
            }
        }
        if m.is_dir() {
            std::fs::remove_dir_all(path).map_err(io_err)?;
        } else {
            std::fs::remove_file(path).map_err(io_err)?;
        }
    }
    let mode = Mode::from_bits_truncate(node.mode & 0o7777);
    match &node.kind {
        NodeKind::Symlink { target } => {
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), path).map_err(io_err)
        }
        NodeKind::Fifo => mknodat(CWD, path, FileType::Fifo, mode, 0).map_err(|e| io_err(e.into())),
        NodeKind::CharDevice { rdev } => {
            mknodat(CWD, path, FileType::CharacterDevice, mode, *rdev).map_err(|e| io_err(e.into()))
        }
        NodeKind::BlockDevice { rdev } => {
            mknodat(CWD, path, FileType::BlockDevice, mode, *rdev).map_err(|e| io_err(e.into()))
        }
        NodeKind::Socket => Ok(()), // a socket is made by the program that listens on it
        NodeKind::File { .. } | NodeKind::Dir { .. } => Ok(()),
    }
}

fn hard_link(first: &Path, path: &Path) -> io::Result<()> {
    if let (Ok(a), Ok(b)) = (
        std::fs::symlink_metadata(first),
        std::fs::symlink_metadata(path),
    ) {
        if a.ino() == b.ino() && a.dev() == b.dev() {
            return Ok(());
        }
        if b.is_dir() {
            std::fs::remove_dir_all(path)?;
        } else {
            std::fs::remove_file(path)?;
        }
    }
    std::fs::hard_link(first, path)
}

fn set_metadata(
    path: &Path,
    node: &Node,
    owners: bool,
    names: &crate::platform::NameCache,
) -> io::Result<()> {
    use rustix::fs::{utimensat, AtFlags, Timestamps, CWD};
    let symlink = matches!(node.kind, NodeKind::Symlink { .. });
    if matches!(node.kind, NodeKind::Socket) {
        return Ok(());
    }
    if owners {
        let uid = names.uid_for(node.user.as_deref(), node.uid);
        let gid = names.gid_for(node.group.as_deref(), node.gid);
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    for x in &node.xattrs {
        // Restoring some namespaces (security.*, trusted.*) needs privileges; report it.
        xattr::set(path, std::ffi::OsStr::from_bytes(&x.name), &x.value)?;
    }
    if !symlink {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode & 0o7777))?;
    }
    let ts = |t: Time| rustix::fs::Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos as _,
    };
    let times = Timestamps {
        last_access: ts(node.mtime),
        last_modification: ts(node.mtime),
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).map_err(io::Error::from)
}

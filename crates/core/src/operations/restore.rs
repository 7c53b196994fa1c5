//! Restore: a snapshot (or a subtree of it) into a target directory.
//!
//! First the trees are read and a plan is made (directories, files, links, hard-link
//! groups); then directories are created, and files are written window by window: a
//! window's chunks are read pack by pack, blobs close together in one request and many
//! requests in flight (which a remote repository needs), and each is written to every
//! place that holds it. Hard links are made next, and directory metadata is set last,
//! deepest first, so that writing into a directory does not change its restored mtime.
//!
//! Every blob is authenticated and its keyed hash checked before a byte of it is
//! written. A re-run over a partial restore reads what is there and writes only chunks
//! whose contents differ, so an interrupted restore resumes cheaply.

use crate::error::{Error, Result};
use crate::fetch::fetch_blobs;
use crate::formats::content::ContentWalk;
use crate::formats::id::Id;
use crate::formats::tree::{Extent, Node, NodeKind, Time, Tree};
use crate::operations::exclude::Excludes;
use crate::report::{Progress, Warning, WarningKind};
use crate::repository::Repository;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Files started per window: their chunks are planned, read pack by pack and written,
/// and their metadata set, before the next window starts. Windows bound the memory of
/// the plan whatever the size of the restore.
const WINDOW_FILES: usize = 4096;
/// Files are added to a window until their sizes add up to this.
const WINDOW_BYTES: u64 = 1 << 30;
/// Chunks planned per window, all its files together; a file cut short by it goes on
/// in windows of its own, as many chunks at a time.
const WINDOW_PIECES: isize = 65536;

/// How many restored files may be kept open at once (see [`Target::file`]): half of what
/// the open-files limit leaves after 256 for everything else, at most a window's worth.
fn open_file_budget() -> isize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    (limit.saturating_sub(256) / 2).min(WINDOW_FILES as u64) as isize
}

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
    repo.require_full()?;
    repo.load_index()?;
    let includes = Excludes::new(&opts.includes)?;
    let excludes = Excludes::new(&opts.excludes)?;
    let owners = opts.owners.unwrap_or_else(crate::platform::is_root);
    std::fs::create_dir_all(&opts.target).map_err(|e| Error::io(&opts.target, e))?;

    // Restoring waits on reads of packs and on file creation more than on the CPU: two
    // threads per core keep a local disk busy, and a remote repository asks for more
    // requests in flight.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let pool = crate::fetch::reading_pool(
        (2 * cores).max(repo.backend().parallelism()),
        "cairn-restore",
    )?;

    // Plan. Without includes every tree not excluded is needed: they are read ahead,
    // many at a time.
    let mut trees = match (&node.kind, opts.includes.is_empty()) {
        (NodeKind::Dir { subtree }, true) => {
            pool.install(|| read_trees(repo, subtree, snap_path, &excludes))?
        }
        _ => HashMap::new(),
    };
    let mut items = Vec::new();
    let mut planner = Planner {
        repo,
        trees: &mut trees,
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
    let ctx = Ctx {
        repo,
        progress,
        owners,
        names: &names,
        summary: &summary,
        warn: &warn,
        written: &written,
        skipped: &skipped,
        open_files: &AtomicIsize::new(open_file_budget()),
    };
    pool.install(|| {
        items
            .par_iter()
            .filter(|i| {
                i.link_to.is_none()
                    && !matches!(i.node.kind, NodeKind::Dir { .. } | NodeKind::File { .. })
            })
            .for_each(|it| {
                progress.file(&it.path, Some(it.node.size));
                match restore_special(&it.path, &it.node) {
                    Ok(()) => {
                        summary.lock().unwrap().others += 1;
                        if let Err(e) = set_metadata(&it.path, &it.node, owners, &names) {
                            warn(&it.path, format!("metadata: {e}"));
                        }
                    }
                    Err(e) => warn(&it.path, e.to_string()),
                }
                progress.file_done();
            });
        let files: Vec<&Item> = items
            .iter()
            .filter(|i| i.link_to.is_none() && matches!(i.node.kind, NodeKind::File { .. }))
            .collect();
        restore_files(&ctx, &files);
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
    /// Trees read ahead; a tree not here is read when it is reached.
    trees: &'a mut HashMap<Id, Tree>,
    includes: &'a Excludes,
    has_includes: bool,
    excludes: &'a Excludes,
    items: &'a mut Vec<Item>,
}

impl Planner<'_> {
    /// Plans the contents of a directory; returns true if anything was planned.
    fn dir(&mut self, tree: &Id, snap_dir: &str, out_dir: &Path, included: bool) -> Result<bool> {
        let tree = match self.trees.remove(tree) {
            Some(t) => t,
            None => self.repo.load_tree(tree)?,
        };
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

/// Reads the tree `root` and every tree below it that is not excluded, level by level,
/// the trees of a level in parallel.
fn read_trees(
    repo: &Repository,
    root: &Id,
    snap_path: &str,
    excludes: &Excludes,
) -> Result<HashMap<Id, Tree>> {
    let mut trees = HashMap::new();
    let mut level = vec![(*root, snap_path.to_string())];
    while !level.is_empty() {
        let read: Vec<(Id, String, Tree)> = level
            .par_iter()
            .map(|(id, path)| Ok((*id, path.clone(), repo.load_tree(id)?)))
            .collect::<Result<_>>()?;
        level = Vec::new();
        for (id, path, tree) in read {
            for node in &tree.nodes {
                if let NodeKind::Dir { subtree } = &node.kind {
                    let sub = format!("{path}/{}", node.display_name());
                    if !trees.contains_key(subtree) && !excludes.is_excluded(Path::new(&sub), true)
                    {
                        level.push((*subtree, sub));
                    }
                }
            }
            trees.insert(id, tree);
        }
        level.sort_unstable_by_key(|l| l.0);
        level.dedup_by(|a, b| a.0 == b.0);
    }
    Ok(trees)
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

/// What every step of writing files needs.
struct Ctx<'a> {
    repo: &'a Repository,
    progress: &'a dyn Progress,
    owners: bool,
    names: &'a crate::platform::NameCache,
    summary: &'a Mutex<RestoreSummary>,
    warn: &'a (dyn Fn(&Path, String) + Sync),
    written: &'a AtomicU64,
    skipped: &'a AtomicU64,
    /// How many more files may stay open from creation to metadata (see [`Target::file`]).
    open_files: &'a AtomicIsize,
}

/// A regular file being restored.
struct Target<'a> {
    item: &'a Item,
    /// A file was there before: its chunks are compared before they are written, and it
    /// is not removed when restoring it fails.
    existing: bool,
    old_len: u64,
    /// Something had to be written, punched or resized.
    changed: AtomicBool,
    /// The first error met; it fails the file.
    failed: Mutex<Option<String>>,
    /// The file, open from its creation until its metadata is set, so that its chunks
    /// and metadata are written through one descriptor instead of a path lookup each.
    /// Only while [`Ctx::open_files`] lasts: past it, a file is closed once planned and
    /// each write opens it again by path.
    file: RwLock<Option<File>>,
    /// This file counts against [`Ctx::open_files`] while its handle is kept.
    kept: bool,
    /// A new file kept open is not sized when it is created: its writes give it its
    /// length, and only one that ends in a hole is extended when it is finished.
    size_at_end: bool,
}

impl Target<'_> {
    fn fail(&self, msg: String) {
        self.failed.lock().unwrap().get_or_insert(msg);
    }

    fn has_failed(&self) -> bool {
        self.failed.lock().unwrap().is_some()
    }
}

/// One chunk to write: a data blob and its place in a file of the window.
struct Piece {
    target: usize,
    off: u64,
    len: u64,
    id: Id,
    /// For a part: where its bytes start in the blob's plaintext.
    part: Option<u64>,
}

/// A file whose content was planned in part: the rest is planned in later windows.
struct Unfinished<'a> {
    target: Arc<Target<'a>>,
    walk: ContentWalk<'a, Repository>,
    off: u64,
}

/// Writes the contents of regular files, window by window (see [`WINDOW_FILES`]): a
/// window's files are created and their chunks planned in parallel; the chunks are
/// then read pack by pack, with few requests (see `fetch`), and written where they go;
/// last the window's finished files get their metadata.
fn restore_files(ctx: &Ctx, files: &[&Item]) {
    let mut next = 0;
    while next < files.len() {
        let mut end = next;
        let mut bytes = 0u64;
        while end < files.len() && end - next < WINDOW_FILES && bytes < WINDOW_BYTES {
            bytes += files[end].node.size;
            end += 1;
        }
        let budget = AtomicIsize::new(WINDOW_PIECES);
        let planned: Vec<_> = files[next..end]
            .par_iter()
            .filter_map(|item| {
                ctx.progress.file(&item.path, Some(item.node.size));
                match begin_file(ctx, item) {
                    Ok(target) => {
                        let target = Arc::new(target);
                        let NodeKind::File { content } = &item.node.kind else {
                            unreachable!("only files are planned")
                        };
                        let walk = ContentWalk::new(ctx.repo, content);
                        let mut pieces = Vec::new();
                        let rest = plan_pieces(ctx, &target, walk, 0, &mut pieces, &budget);
                        if !target.kept && rest.is_none() {
                            *target.file.write().unwrap() = None;
                        }
                        Some((target, pieces, rest))
                    }
                    Err(e) => {
                        (ctx.warn)(&item.path, e.to_string());
                        ctx.progress.file_done();
                        None
                    }
                }
            })
            .collect();
        next = end;
        let mut targets = Vec::with_capacity(planned.len());
        let mut pieces = Vec::new();
        let mut unfinished = Vec::new();
        for (target, planned_pieces, rest) in planned {
            let t = targets.len();
            pieces.extend(
                planned_pieces
                    .into_iter()
                    .map(|(off, len, id, part)| Piece {
                        target: t,
                        off,
                        len,
                        id,
                        part,
                    }),
            );
            targets.push(target);
            unfinished.extend(rest);
        }
        write_pieces(ctx, &targets, &pieces);
        drop(pieces);
        // Large files go on alone, a window of chunks at a time.
        for mut u in unfinished {
            loop {
                let mut planned_pieces = Vec::new();
                let budget = AtomicIsize::new(WINDOW_PIECES);
                let rest = plan_pieces(ctx, &u.target, u.walk, u.off, &mut planned_pieces, &budget);
                let pieces: Vec<Piece> = planned_pieces
                    .into_iter()
                    .map(|(off, len, id, part)| Piece {
                        target: 0,
                        off,
                        len,
                        id,
                        part,
                    })
                    .collect();
                write_pieces(ctx, std::slice::from_ref(&u.target), &pieces);
                match rest {
                    Some(r) => u = r,
                    None => break,
                }
            }
        }
        targets.par_iter().for_each(|t| finish_file(ctx, t));
    }
}

/// Opens (creating or replacing whatever else is there) and sizes a file to restore.
fn begin_file<'a>(ctx: &Ctx, item: &'a Item) -> Result<Target<'a>> {
    let path = &item.path;
    let open = |new: bool| {
        let mut o = OpenOptions::new();
        o.read(true).write(true);
        if new {
            o.create_new(true);
        } else {
            o.create(true).truncate(false);
        }
        o.custom_flags(libc::O_NOFOLLOW).mode(0o600).open(path)
    };
    // The usual case, a new file, takes one system call; what is already there (a
    // file, a directory, a symlink, even a dangling one) is looked at first.
    let (file, existing, old_len) = match open(true) {
        Ok(file) => (file, false, 0),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let existing = replace_non_file(path)?;
            let file = open(false).map_err(|e| Error::io(path, e))?;
            let old_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
            (file, existing, old_len)
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let size = item.node.size;
    let kept = ctx.open_files.fetch_sub(1, Ordering::Relaxed) > 0;
    if !kept {
        ctx.open_files.fetch_add(1, Ordering::Relaxed);
    }
    let size_at_end = kept && !existing && old_len == 0;
    if old_len != size && !size_at_end {
        file.set_len(size).map_err(|e| Error::io(path, e))?;
    }
    Ok(Target {
        item,
        existing,
        old_len,
        changed: AtomicBool::new(!existing || old_len != size),
        failed: Mutex::new(None),
        file: RwLock::new(Some(file)),
        kept,
        size_at_end,
    })
}

/// Removes what is at `path` unless it is a regular file; true if it is one.
fn replace_non_file(path: &Path) -> Result<bool> {
    Ok(match std::fs::symlink_metadata(path) {
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
    })
}

/// Walks a file's content from `off` while the window's `budget` of extents lasts, adding
/// them to `pieces` as (offset, length, blob, where a part starts in the blob) and making holes where the content has
/// them. Returns the file's walk when there is more to plan; `None` when it is all
/// planned, or when it failed (the target then says why).
fn plan_pieces<'a>(
    ctx: &Ctx<'a>,
    target: &Arc<Target<'a>>,
    mut walk: ContentWalk<'a, Repository>,
    mut off: u64,
    pieces: &mut Vec<(u64, u64, Id, Option<u64>)>,
    budget: &AtomicIsize,
) -> Option<Unfinished<'a>> {
    let path = &target.item.path;
    let size = target.item.node.size;
    let mismatch = || {
        format!(
            "file {}: its contents do not add up to the {size} bytes the tree says",
            path.display()
        )
    };
    while budget.fetch_sub(1, Ordering::Relaxed) > 0 {
        let Some(item) = walk.next() else {
            if off != size {
                target.fail(mismatch());
            }
            return None;
        };
        let (e, len) = match item {
            Ok(x) => x,
            Err(e) => {
                target.fail(needed_by(&e, path));
                return None;
            }
        };
        if off.saturating_add(len) > size {
            target.fail(mismatch());
            return None;
        }
        match e {
            Extent::Data(id) => pieces.push((off, len, id, None)),
            Extent::Part { id, offset, .. } => pieces.push((off, len, id, Some(offset))),
            Extent::Hole(n) => {
                let file = target.file.read().unwrap();
                let file = file.as_ref().expect("a file is open while it is planned");
                if target.existing && off < target.old_len && !is_hole(file, off, n) {
                    if let Err(e) = punch_hole(file, off, n) {
                        target.fail(Error::io(path, e).to_string());
                        return None;
                    }
                    target.changed.store(true, Ordering::Relaxed);
                }
                ctx.progress.bytes(n);
            }
            Extent::List { .. } => unreachable!("the walk expands lists"),
        }
        off += len;
    }
    Some(Unfinished {
        target: Arc::clone(target),
        walk,
        off,
    })
}

/// The message of an error met while restoring `path`, naming the file for a missing
/// blob.
fn needed_by(e: &Error, path: &Path) -> String {
    match e {
        Error::MissingBlob { kind, id, .. } => Error::MissingBlob {
            kind,
            id: id.clone(),
            context: format!(" (needed by {})", path.display()),
        }
        .to_string(),
        e => e.to_string(),
    }
}

/// Writes the pieces of a window: those already right in an existing file are skipped,
/// the others are read (each blob once, however many places need it) and written.
fn write_pieces(ctx: &Ctx, targets: &[Arc<Target>], pieces: &[Piece]) {
    let todo: Vec<usize> = (0..pieces.len())
        .into_par_iter()
        .filter(|&i| {
            let p = &pieces[i];
            let t = &targets[p.target];
            if t.has_failed() {
                return false;
            }
            // A part's bytes are compared once its blob is read (see `sink`).
            if p.part.is_none() && t.existing && p.off + p.len <= t.old_len && holds(ctx.repo, t, p)
            {
                ctx.skipped.fetch_add(p.len, Ordering::Relaxed);
                ctx.progress.bytes(p.len);
                return false;
            }
            true
        })
        .collect();
    let mut places: HashMap<Id, Vec<usize>> = HashMap::new();
    for i in todo {
        places.entry(pieces[i].id).or_default().push(i);
    }
    let ids: Vec<Id> = places.keys().copied().collect();
    let sink = |id: &Id, data: std::result::Result<(&mut Vec<u8>, Option<Id>), &Error>| {
        let data = data.map(|(plain, _)| &*plain);
        for &i in &places[id] {
            let p = &pieces[i];
            let t = &targets[p.target];
            let path = &t.item.path;
            let bytes = match (&data, p.part) {
                (Err(e), _) => Err(needed_by(e, path)),
                (Ok(d), None) if d.len() as u64 != p.len => Err(format!(
                    "file {}: a chunk of {} bytes where the tree says {}",
                    path.display(),
                    d.len(),
                    p.len
                )),
                (Ok(d), None) => Ok(&d[..]),
                (Ok(d), Some(from)) => match from.checked_add(p.len) {
                    Some(end) if end <= d.len() as u64 => Ok(&d[from as usize..end as usize]),
                    _ => Err(format!(
                        "file {}: a part of {} bytes at {from} in a chunk of {}",
                        path.display(),
                        p.len,
                        d.len()
                    )),
                },
            };
            if let Ok(b) = bytes {
                if p.part.is_some()
                    && t.existing
                    && p.off + p.len <= t.old_len
                    && has_bytes(t, p.off, b)
                {
                    ctx.skipped.fetch_add(p.len, Ordering::Relaxed);
                    ctx.progress.bytes(p.len);
                    continue;
                }
            }
            let r = bytes.and_then(|d| {
                match t.file.read().unwrap().as_ref() {
                    Some(f) => f.write_all_at(d, p.off),
                    None => OpenOptions::new()
                        .write(true)
                        .custom_flags(libc::O_NOFOLLOW)
                        .open(path)
                        .and_then(|f| f.write_all_at(d, p.off)),
                }
                .map_err(|e| Error::io(path, e).to_string())
            });
            match r {
                Ok(()) => {
                    ctx.written.fetch_add(p.len, Ordering::Relaxed);
                    t.changed.store(true, Ordering::Relaxed);
                    ctx.progress.bytes(p.len);
                }
                Err(msg) => t.fail(msg),
            }
        }
    };
    fetch_blobs(ctx.repo, &ids, &sink);
}

/// True when an existing file already holds a piece's bytes.
fn holds(repo: &Repository, t: &Target, p: &Piece) -> bool {
    let Ok(file) = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&t.item.path)
    else {
        return false;
    };
    let mut cur = vec![0u8; p.len as usize];
    file.read_exact_at(&mut cur, p.off).is_ok() && repo.blob_id(&cur) == p.id
}

/// True when an existing file holds `bytes` at `off` (for a part: the blob is shared, so
/// its id says nothing about the file's bytes).
fn has_bytes(t: &Target, off: u64, bytes: &[u8]) -> bool {
    let mut cur = vec![0u8; bytes.len()];
    let read = match t.file.read().unwrap().as_ref() {
        Some(f) => f.read_exact_at(&mut cur, off),
        None => OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&t.item.path)
            .and_then(|f| f.read_exact_at(&mut cur, off)),
    };
    read.is_ok() && cur == bytes
}

/// Ends a file: on failure it is reported (and removed unless it was there before, so
/// that no file looks restored while holding zeros where data failed); otherwise its
/// metadata is set.
fn finish_file(ctx: &Ctx, t: &Target) {
    let path = &t.item.path;
    let file = t.file.write().unwrap().take();
    if t.kept {
        ctx.open_files.fetch_add(1, Ordering::Relaxed);
    }
    // One fstat serves the length of a file sized by its writes and the owner check.
    let mut owner_now = None;
    if let Some(f) = file.as_ref().filter(|_| t.size_at_end || ctx.owners) {
        if !t.has_failed() {
            let size = t.item.node.size;
            let sized = f.metadata().and_then(|m| {
                owner_now = Some((m.uid(), m.gid()));
                if t.size_at_end && m.len() < size {
                    f.set_len(size)
                } else {
                    Ok(())
                }
            });
            if let (Err(e), true) = (sized, t.size_at_end) {
                t.fail(Error::io(path, e).to_string());
            }
        }
    }
    if let Some(msg) = t.failed.lock().unwrap().take() {
        drop(file);
        if !t.existing {
            let _ = std::fs::remove_file(path);
        }
        (ctx.warn)(path, msg);
    } else {
        {
            let mut s = ctx.summary.lock().unwrap();
            if t.changed.load(Ordering::Relaxed) {
                s.files_restored += 1
            } else {
                s.files_unchanged += 1
            }
        }
        let r = match &file {
            Some(f) => set_file_metadata(f, &t.item.node, ctx.owners, ctx.names, owner_now),
            None => set_metadata(path, &t.item.node, ctx.owners, ctx.names),
        };
        drop(file);
        if let Err(e) = r {
            (ctx.warn)(path, format!("metadata: {e}"));
        }
    }
    ctx.progress.file_done();
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

/// [`set_metadata`] through an open regular file: the same steps in the same order
/// (owner, extended attributes, mode, times), without a path lookup each. `owner_now`,
/// when known, spares a change of owner to the owner it already has.
fn set_file_metadata(
    file: &File,
    node: &Node,
    owners: bool,
    names: &crate::platform::NameCache,
    owner_now: Option<(u32, u32)>,
) -> io::Result<()> {
    use xattr::FileExt as _;
    if owners {
        // A file made by this restore usually has its owner already (root restoring
        // root's files): changing it to itself would still cost a journaled update.
        let (uid, gid) = owner(node, names);
        if owner_now != Some((uid, gid)) {
            std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
        }
    }
    for x in &node.xattrs {
        file.set_xattr(std::ffi::OsStr::from_bytes(&x.name), &x.value)?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(node.mode & 0o7777))?;
    rustix::fs::futimens(file, &timestamps(node)).map_err(io::Error::from)
}

/// The owner and group to give a node: by name where this system knows the names,
/// else the numbers stored.
fn owner(node: &Node, names: &crate::platform::NameCache) -> (u32, u32) {
    (
        names.uid_for(node.user.as_deref(), node.uid),
        names.gid_for(node.group.as_deref(), node.gid),
    )
}

/// A node's modification time as both times to set (the access time is not kept).
fn timestamps(node: &Node) -> rustix::fs::Timestamps {
    let ts = |t: Time| rustix::fs::Timespec {
        tv_sec: t.secs,
        tv_nsec: t.nanos as _,
    };
    rustix::fs::Timestamps {
        last_access: ts(node.mtime),
        last_modification: ts(node.mtime),
    }
}

fn set_metadata(
    path: &Path,
    node: &Node,
    owners: bool,
    names: &crate::platform::NameCache,
) -> io::Result<()> {
    use rustix::fs::{utimensat, AtFlags, CWD};
    let symlink = matches!(node.kind, NodeKind::Symlink { .. });
    if matches!(node.kind, NodeKind::Socket) {
        return Ok(());
    }
    if owners {
        let (uid, gid) = owner(node, names);
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    for x in &node.xattrs {
        // Restoring some namespaces (security.*, trusted.*) needs privileges; report it.
        xattr::set(path, std::ffi::OsStr::from_bytes(&x.name), &x.value)?;
    }
    if !symlink {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode & 0o7777))?;
    }
    utimensat(CWD, path, &timestamps(node), AtFlags::SYMLINK_NOFOLLOW).map_err(io::Error::from)
}

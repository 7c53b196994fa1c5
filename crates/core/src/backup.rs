//! Backup: file trees and streams into one snapshot.
//!
//! One producer thread walks the sources in a fixed order, reads each file into one
//! reused buffer, cuts it into chunks and hashes them; blobs the repository lacks go to
//! the [`crate::store`] workers, which compress, seal and pack them on every core.
//! Because ids are known as soon as a chunk is hashed, trees are built during the walk
//! and never wait for the workers. The snapshot is written after every pack and index
//! is stored: it is the commit point.
//!
//! Unchanged files (same size, mtime, ctime and inode as in the parent snapshot) are
//! taken from the parent without being read. Per-file problems become [`Warning`]s and
//! the backup goes on; a failing stream source fails the backup and nothing is committed.

use crate::error::{Error, Result};
use crate::exclude::Excludes;
use crate::id::{BlobKind, Id};
use crate::platform::NameCache;
use crate::repository::Repository;
use crate::snapshot::{Snapshot, SNAPSHOT_VERSION};
use crate::store::{with_writer, BlobWriter, WriteStats};
use crate::tree::{Extent, Node, NodeKind, Time, Tree, Xattr};
use cairn_chunker::Chunker;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A stream to store as a file of the snapshot.
pub enum StreamSource {
    /// Any reader, e.g. stdin.
    Reader {
        /// Path of the file in the snapshot, e.g. `db/kimai.sql`.
        name: String,
        /// The bytes.
        reader: Box<dyn Read + Send>,
    },
    /// A command's standard output. A non-zero exit fails the backup.
    Command {
        /// Path of the file in the snapshot.
        name: String,
        /// The program.
        program: OsString,
        /// Its arguments.
        args: Vec<OsString>,
    },
}

impl std::fmt::Debug for StreamSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamSource::Reader { name, .. } => write!(f, "Reader({name})"),
            StreamSource::Command { name, program, .. } => {
                write!(f, "Command({name}: {})", program.to_string_lossy())
            }
        }
    }
}

impl StreamSource {
    fn name(&self) -> &str {
        match self {
            StreamSource::Reader { name, .. } | StreamSource::Command { name, .. } => name,
        }
    }
}

/// Which snapshot to compare against to skip unchanged files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ParentChoice {
    /// The latest snapshot of the same host and paths.
    #[default]
    Auto,
    /// No parent: read every file.
    None,
    /// This snapshot (`latest` or an id prefix).
    Snapshot(String),
}

/// What to back up and how.
#[derive(Debug, Default)]
pub struct BackupOptions {
    /// File system paths (files or directories).
    pub paths: Vec<PathBuf>,
    /// Streams, each stored as a file in the snapshot.
    pub streams: Vec<StreamSource>,
    /// Exclude patterns (see [`Excludes`]).
    pub excludes: Vec<String>,
    /// Skip directories holding a valid `CACHEDIR.TAG`.
    pub exclude_caches: bool,
    /// Do not cross file system boundaries below each path.
    pub one_file_system: bool,
    /// Tags of the snapshot.
    pub tags: Vec<String>,
    /// Host name to record (default: this host).
    pub hostname: Option<String>,
    /// Parent selection.
    pub parent: ParentChoice,
    /// Read every file even when the parent says it is unchanged.
    pub force: bool,
    /// Worker threads for compression and sealing (0: one per core).
    pub threads: usize,
}

/// Kinds of per-file problems.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// The file or directory could not be read; it is missing from the snapshot.
    Unreadable,
    /// The file changed while it was read; the snapshot holds what was read.
    Changed,
}

/// A per-file problem found during a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// What happened.
    pub kind: WarningKind,
    /// The path concerned.
    pub path: String,
    /// Details.
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.kind {
            WarningKind::Unreadable => write!(f, "{}: cannot read: {}", self.path, self.message),
            WarningKind::Changed => {
                write!(f, "{}: changed while read: {}", self.path, self.message)
            }
        }
    }
}

/// What a backup did; stored in the snapshot and printed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// Files not in the parent.
    pub files_new: u64,
    /// Files in the parent that changed.
    pub files_changed: u64,
    /// Files taken from the parent without reading.
    pub files_unchanged: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks, devices, FIFOs, sockets.
    pub others: u64,
    /// Bytes read from files and streams.
    pub bytes_read: u64,
    /// Total size of all files and streams in the snapshot.
    pub bytes_total: u64,
    /// New blobs and bytes stored.
    pub added: WriteStats,
    /// Files and directories that could not be read.
    pub unreadable: u64,
    /// Files that changed while read.
    pub changed_while_read: u64,
    /// Seconds from start to commit.
    pub duration_secs: f64,
}

/// The outcome of a backup.
#[derive(Debug)]
pub struct BackupResult {
    /// The new snapshot's id.
    pub id: Id,
    /// The snapshot.
    pub snapshot: Snapshot,
    /// Per-file problems (the snapshot was still written).
    pub warnings: Vec<Warning>,
}

/// Receives progress while a backup runs. All methods have no-op defaults.
pub trait Progress: Sync {
    /// The sources hold about this many files and bytes (sent once, from a scan that
    /// runs beside the backup, so it may arrive late or never).
    fn total(&self, _files: u64, _bytes: u64) {}
    /// A file (or stream) is about to be read; `size` if known.
    fn file(&self, _path: &Path, _size: Option<u64>) {}
    /// Bytes were read or skipped as unchanged.
    fn bytes(&self, _n: u64) {}
    /// A file was finished (read or unchanged).
    fn file_done(&self) {}
    /// A per-file problem.
    fn warning(&self, _w: &Warning) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// Counts the files and bytes below `paths` (not following symlinks, honouring
/// excludes) so that progress can show an ETA. Unreadable entries are skipped silently:
/// the backup reports them.
pub fn scan(paths: &[PathBuf], excludes: &[String], one_file_system: bool) -> (u64, u64) {
    let Ok(ex) = Excludes::new(excludes) else {
        return (0, 0);
    };
    let mut files = 0u64;
    let mut bytes = 0u64;
    for p in paths {
        let Ok(abs) = absolute(p) else { continue };
        let Ok(meta) = std::fs::symlink_metadata(&abs) else {
            continue;
        };
        let root_dev = meta.dev();
        let mut stack = vec![(abs, meta)];
        while let Some((path, meta)) = stack.pop() {
            if meta.is_file() {
                files += 1;
                bytes += meta.size();
            } else if meta.is_dir() && (!one_file_system || meta.dev() == root_dev) {
                let Ok(rd) = std::fs::read_dir(&path) else {
                    continue;
                };
                for e in rd.flatten() {
                    let child = e.path();
                    if let Ok(m) = std::fs::symlink_metadata(&child) {
                        if !ex.is_excluded(&child, m.is_dir()) {
                            stack.push((child, m));
                        }
                    }
                }
            }
        }
    }
    (files, bytes)
}

/// Reads files and streams in segments of this many bytes (at least twice the largest
/// chunk, so a cut is always found within a full buffer).
fn segment_len(chunker: &Chunker) -> usize {
    (2 * chunker.params().max_size as usize).max(4 << 20)
}

/// Backs up into `repo` and writes a snapshot.
pub fn backup(
    repo: &Repository,
    opts: BackupOptions,
    progress: &dyn Progress,
) -> Result<BackupResult> {
    let start = Instant::now();
    let time = jiff::Timestamp::now();
    if opts.paths.is_empty() && opts.streams.is_empty() {
        return Err(Error::Invalid(
            "nothing to back up: give paths or a stream".into(),
        ));
    }
    repo.load_index()?;
    let hostname = opts
        .hostname
        .clone()
        .unwrap_or_else(crate::platform::hostname);

    // Targets as absolute, normalized paths; streams by name.
    let mut root = Trie::default();
    let mut snap_paths = Vec::new();
    for p in &opts.paths {
        let abs = absolute(p)?;
        std::fs::symlink_metadata(&abs).map_err(|e| Error::io(&abs, e))?;
        snap_paths.push(abs.to_string_lossy().into_owned());
        root.insert(&components(&abs), Target::Path(abs.clone()))?;
    }
    for (i, s) in opts.streams.iter().enumerate() {
        let comps = stream_components(s.name())?;
        snap_paths.push(format!("/{}", s.name().trim_start_matches('/')));
        root.insert(&comps, Target::Stream(i))?;
    }
    snap_paths.sort();
    snap_paths.dedup();

    let excludes = Excludes::new(&opts.excludes)?;
    let parent = match &opts.parent {
        ParentChoice::None => None,
        ParentChoice::Snapshot(spec) => Some(repo.find_snapshot(spec)?),
        ParentChoice::Auto => repo
            .snapshots()?
            .into_iter()
            .rev()
            .find(|(_, s)| s.hostname == hostname && s.paths == snap_paths),
    };
    let parent_tree = match &parent {
        Some((_, s)) => Some(repo.load_tree(&s.tree)?),
        None => None,
    };

    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let mut streams: Vec<Option<StreamSource>> = opts.streams.into_iter().map(Some).collect();
    let ((tree_id, summary, warnings), added) = with_writer(repo, threads, |writer| {
        let mut walk = Walk {
            repo,
            writer,
            progress,
            files: Files {
                repo,
                writer,
                progress,
                force: opts.force,
            },
            excludes: &excludes,
            exclude_caches: opts.exclude_caches,
            one_file_system: opts.one_file_system,
            names: NameCache::default(),
            summary: BackupSummary::default(),
            warnings: Vec::new(),
            streams: &mut streams,
            time,
            root_dev: 0,
        };
        let tree = walk.build(&root, PathBuf::from("/"), parent_tree.as_ref())?;
        let (id, _) = writer.add_owned(BlobKind::Tree, tree.encode())?;
        Ok((id, walk.summary, walk.warnings))
    })?;
    let mut summary = summary;
    summary.added = added;
    summary.unreadable = warnings
        .iter()
        .filter(|w| w.kind == WarningKind::Unreadable)
        .count() as u64;
    summary.changed_while_read = warnings.len() as u64 - summary.unreadable;
    summary.duration_secs = start.elapsed().as_secs_f64();
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        time,
        tree: tree_id,
        paths: snap_paths,
        hostname,
        username: crate::platform::username(),
        tags: opts.tags,
        parent: parent.map(|(id, _)| id),
        excludes: opts.excludes,
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        summary: Some(summary),
    };
    let id = repo.save_snapshot(&snapshot)?;
    Ok(BackupResult {
        id,
        snapshot,
        warnings,
    })
}

/// Makes a path absolute and removes `.` and `..` lexically (symlinks are not followed).
fn absolute(p: &Path) -> Result<PathBuf> {
    let base = if p.is_absolute() {
        PathBuf::new()
    } else {
        std::env::current_dir().map_err(|e| Error::io(".", e))?
    };
    let mut out = PathBuf::from("/");
    for c in base.join(p).components() {
        match c {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
        }
    }
    Ok(out)
}

fn components(abs: &Path) -> Vec<Vec<u8>> {
    abs.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes().to_vec()),
            _ => None,
        })
        .collect()
}

fn stream_components(name: &str) -> Result<Vec<Vec<u8>>> {
    let comps: Vec<Vec<u8>> = name
        .split('/')
        .filter(|c| !c.is_empty())
        .map(|c| c.as_bytes().to_vec())
        .collect();
    if comps.is_empty() || comps.iter().any(|c| !crate::tree::valid_name(c)) {
        return Err(Error::Invalid(format!("invalid stream name {name:?}")));
    }
    Ok(comps)
}

#[derive(Debug)]
enum Target {
    Path(PathBuf),
    Stream(usize),
}

/// The snapshot's root: targets placed at their absolute paths.
#[derive(Debug, Default)]
struct Trie {
    children: BTreeMap<Vec<u8>, Trie>,
    target: Option<Target>,
}

impl Trie {
    fn insert(&mut self, comps: &[Vec<u8>], target: Target) -> Result<()> {
        let mut node = self;
        for (i, c) in comps.iter().enumerate() {
            if matches!(node.target, Some(Target::Path(_))) {
                // An ancestor is backed up whole: a nested path adds nothing, a stream collides.
                return match target {
                    Target::Path(_) => Ok(()),
                    Target::Stream(_) => Err(Error::Invalid(format!(
                        "stream {} lies inside a backed-up path",
                        String::from_utf8_lossy(&comps[..=i].join(&b'/'))
                    ))),
                };
            }
            node = node.children.entry(c.clone()).or_default();
        }
        match (&node.target, &target) {
            (Some(Target::Stream(_)), _) | (Some(Target::Path(_)), Target::Stream(_)) => {
                return Err(Error::Invalid(format!(
                    "two sources for /{}",
                    String::from_utf8_lossy(&comps.join(&b'/'))
                )))
            }
            (None, Target::Stream(_)) if !node.children.is_empty() => {
                return Err(Error::Invalid(format!(
                    "stream /{} collides with a directory",
                    String::from_utf8_lossy(&comps.join(&b'/'))
                )))
            }
            _ => {}
        }
        if matches!(target, Target::Path(_)) {
            node.children.clear();
        }
        node.target = Some(target);
        Ok(())
    }
}

struct Walk<'a, 'w> {
    repo: &'a Repository,
    writer: &'a BlobWriter<'w>,
    progress: &'a dyn Progress,
    files: Files<'a, 'w>,
    excludes: &'a Excludes,
    exclude_caches: bool,
    one_file_system: bool,
    names: NameCache,
    summary: BackupSummary,
    warnings: Vec<Warning>,
    streams: &'a mut Vec<Option<StreamSource>>,
    time: jiff::Timestamp,
    root_dev: u64,
}

fn time_of(secs: i64, nanos: i64) -> Time {
    Time {
        secs,
        nanos: nanos.clamp(0, 999_999_999) as u32,
    }
}

impl Walk<'_, '_> {
    fn warn(&mut self, kind: WarningKind, path: &Path, message: String) {
        let w = Warning {
            kind,
            path: path.to_string_lossy().into_owned(),
            message,
        };
        self.progress.warning(&w);
        self.warnings.push(w);
    }

    /// Builds the tree of one trie level (the root, or an ancestor of a target).
    fn build(&mut self, trie: &Trie, dir: PathBuf, parent: Option<&Tree>) -> Result<Tree> {
        let mut nodes = Vec::new();
        for (name, child) in &trie.children {
            let pnode = parent.and_then(|t| t.find(name));
            let path = dir.join(OsStr::from_bytes(name));
            let node = match &child.target {
                Some(Target::Path(p)) => {
                    let meta = std::fs::symlink_metadata(p).map_err(|e| Error::io(p, e))?;
                    self.root_dev = meta.dev();
                    self.entry(p, name.clone(), meta, pnode, None)?
                }
                Some(Target::Stream(i)) => {
                    let src = self.streams[*i].take().expect("each stream is used once");
                    Some(self.stream(name.clone(), src)?)
                }
                None => {
                    let ptree = self.parent_subtree(pnode);
                    let tree = self.build(child, path.clone(), ptree.as_ref())?;
                    let (subtree, _) = self.writer.add_owned(BlobKind::Tree, tree.encode())?;
                    let mut node = match std::fs::symlink_metadata(&path) {
                        Ok(m) if m.is_dir() => self.node_from_meta(name.clone(), &m, &path),
                        _ => self.synthetic_dir(name.clone()),
                    };
                    node.kind = NodeKind::Dir { subtree };
                    node.size = 0;
                    Some(node)
                }
            };
            if let Some(n) = node {
                nodes.push(n);
            }
        }
        Ok(Tree { nodes })
    }

    fn parent_subtree(&mut self, pnode: Option<&Node>) -> Option<Tree> {
        match pnode.map(|n| &n.kind) {
            Some(NodeKind::Dir { subtree }) => self.repo.load_tree(subtree).ok(),
            _ => None,
        }
    }

    fn synthetic_dir(&self, name: Vec<u8>) -> Node {
        let t = time_of(self.time.as_second(), self.time.subsec_nanosecond() as i64);
        Node {
            name,
            kind: NodeKind::Dir {
                subtree: Id::default(),
            },
            mode: 0o040755,
            uid: 0,
            gid: 0,
            user: None,
            group: None,
            size: 0,
            mtime: t,
            ctime: t,
            inode: 0,
            device: 0,
            links: 1,
            xattrs: Vec::new(),
        }
    }

    fn node_from_meta(&self, name: Vec<u8>, m: &Metadata, path: &Path) -> Node {
        Node {
            name,
            kind: NodeKind::Fifo, // replaced by the caller
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            user: self.names.user(m.uid()),
            group: self.names.group(m.gid()),
            size: m.size(),
            mtime: time_of(m.mtime(), m.mtime_nsec()),
            ctime: time_of(m.ctime(), m.ctime_nsec()),
            inode: m.ino(),
            device: m.dev(),
            links: m.nlink(),
            xattrs: read_xattrs(path),
        }
    }

    /// One directory entry of any kind; `None` when it was skipped.
    fn entry(
        &mut self,
        path: &Path,
        name: Vec<u8>,
        meta: Metadata,
        pnode: Option<&Node>,
        read: Option<Result<FileOutcome>>,
    ) -> Result<Option<Node>> {
        let ft = meta.file_type();
        let mut node = self.node_from_meta(name, &meta, path);
        node.kind = if ft.is_dir() {
            self.summary.dirs += 1;
            let subtree = self.dir(path, &meta, pnode)?;
            node.size = 0;
            NodeKind::Dir { subtree }
        } else if ft.is_file() {
            let out = match read {
                Some(r) => r?,
                None => self.files.file(path, &meta, pnode)?,
            };
            match out.status {
                FileStatus::New => self.summary.files_new += 1,
                FileStatus::Changed => self.summary.files_changed += 1,
                FileStatus::Unchanged => self.summary.files_unchanged += 1,
                FileStatus::Skipped => {}
            }
            self.summary.bytes_read += out.bytes_read;
            self.warnings.extend(out.warnings);
            match out.read {
                Some((content, size, m)) => {
                    self.summary.bytes_total += size;
                    if let Some(m) = m {
                        node = self.node_from_meta(node.name, &m, path);
                    }
                    node.size = size;
                    NodeKind::File { content }
                }
                None => return Ok(None),
            }
        } else {
            self.summary.others += 1;
            node.size = 0;
            if ft.is_symlink() {
                match std::fs::read_link(path) {
                    Ok(t) => NodeKind::Symlink {
                        target: t.as_os_str().as_bytes().to_vec(),
                    },
                    Err(e) => {
                        self.warn(WarningKind::Unreadable, path, e.to_string());
                        return Ok(None);
                    }
                }
            } else if ft.is_fifo() {
                NodeKind::Fifo
            } else if ft.is_socket() {
                NodeKind::Socket
            } else if ft.is_char_device() {
                NodeKind::CharDevice { rdev: meta.rdev() }
            } else if ft.is_block_device() {
                NodeKind::BlockDevice { rdev: meta.rdev() }
            } else {
                self.warn(WarningKind::Unreadable, path, "unknown file type".into());
                return Ok(None);
            }
        };
        Ok(Some(node))
    }

    /// A directory's tree; returns its blob id.
    fn dir(&mut self, path: &Path, meta: &Metadata, pnode: Option<&Node>) -> Result<Id> {
        let ptree = self.parent_subtree(pnode);
        let mut nodes = Vec::new();
        let crosses = self.one_file_system && meta.dev() != self.root_dev;
        let cache_dir = self.exclude_caches && is_cache_dir(path);
        if !crosses && !cache_dir {
            let mut names: Vec<OsString> = match std::fs::read_dir(path) {
                Ok(rd) => {
                    let mut v = Vec::new();
                    for e in rd {
                        match e {
                            Ok(e) => v.push(e.file_name()),
                            Err(e) => {
                                self.warn(WarningKind::Unreadable, path, e.to_string());
                                break;
                            }
                        }
                    }
                    v
                }
                Err(e) => {
                    self.warn(WarningKind::Unreadable, path, e.to_string());
                    Vec::new()
                }
            };
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let mut entries = Vec::with_capacity(names.len());
            for name in names {
                let child = path.join(&name);
                match std::fs::symlink_metadata(&child) {
                    Ok(m) if self.excludes.is_excluded(&child, m.is_dir()) => {}
                    Ok(m) => entries.push((name, child, m)),
                    Err(e) => self.warn(WarningKind::Unreadable, &child, e.to_string()),
                }
            }
            let pchildren: Vec<Option<&Node>> = entries
                .iter()
                .map(|(name, _, _)| ptree.as_ref().and_then(|t| t.find(name.as_bytes())))
                .collect();
            // Regular files are read in parallel (small files are bound by system calls,
            // not by bandwidth); everything else, and the recursion, stays in order.
            let files = &self.files;
            let mut reads: Vec<Option<Result<FileOutcome>>> = entries
                .par_iter()
                .zip(pchildren.par_iter())
                .map(|((_, child, meta), pchild)| {
                    meta.is_file().then(|| files.file(child, meta, *pchild))
                })
                .collect();
            for (((name, child, meta), pchild), read) in
                entries.into_iter().zip(pchildren).zip(reads.drain(..))
            {
                if let Some(n) = self.entry(&child, name.as_bytes().to_vec(), meta, pchild, read)? {
                    nodes.push(n);
                }
            }
        }
        let (id, _) = self
            .writer
            .add_owned(BlobKind::Tree, Tree { nodes }.encode())?;
        Ok(id)
    }

    /// A stream source, stored as a file node.
    fn stream(&mut self, name: Vec<u8>, src: StreamSource) -> Result<Node> {
        let label = src.name().to_string();
        self.progress.file(Path::new(&label), None);
        let repo = self.repo;
        let chunker = repo.streams_chunker();
        let mut content = Vec::new();
        let size = match src {
            StreamSource::Reader { mut reader, .. } => {
                match self
                    .files
                    .chunk_reader(&mut reader, chunker, &mut content, u64::MAX)
                {
                    Ok(n) => n,
                    Err(ReadError::Store(e)) => return Err(e),
                    Err(ReadError::Io(e)) => {
                        return Err(Error::SourceFailed {
                            name: label,
                            detail: e.to_string(),
                        })
                    }
                }
            }
            StreamSource::Command { program, args, .. } => {
                self.command(&label, &program, &args, chunker, &mut content)?
            }
        };
        self.summary.files_new += 1;
        self.summary.bytes_read += size;
        self.summary.bytes_total += size;
        self.progress.file_done();
        let t = time_of(self.time.as_second(), self.time.subsec_nanosecond() as i64);
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        Ok(Node {
            name,
            kind: NodeKind::File { content },
            mode: 0o100600,
            uid,
            gid,
            user: self.names.user(uid),
            group: self.names.group(gid),
            size,
            mtime: t,
            ctime: t,
            inode: 0,
            device: 0,
            links: 1,
            xattrs: Vec::new(),
        })
    }

    fn command(
        &mut self,
        label: &str,
        program: &OsStr,
        args: &[OsString],
        chunker: &Chunker,
        content: &mut Vec<Extent>,
    ) -> Result<u64> {
        let fail = |detail: String| Error::SourceFailed {
            name: label.to_string(),
            detail,
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", program.to_string_lossy())))?;
        let mut stderr = child.stderr.take().expect("piped");
        // Keep the tail of stderr for the error message; pass it through as it comes.
        let err_thread = std::thread::spawn(move || {
            let mut tail = Vec::new();
            let mut buf = [0u8; 8192];
            while let Ok(n) = stderr.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.extend_from_slice(&buf[..n]);
                if tail.len() > 4096 {
                    tail.drain(..tail.len() - 4096);
                }
            }
            tail
        });
        let mut stdout = child.stdout.take().expect("piped");
        let read = self
            .files
            .chunk_reader(&mut stdout, chunker, content, u64::MAX);
        drop(stdout);
        if read.is_err() {
            let _ = child.kill();
        }
        let status = child.wait().map_err(|e| fail(e.to_string()))?;
        let tail = err_thread.join().unwrap_or_default();
        let n = match read {
            Ok(n) => n,
            Err(ReadError::Store(e)) => return Err(e),
            Err(ReadError::Io(e)) => return Err(fail(format!("reading its output: {e}"))),
        };
        if !status.success() {
            let tail = String::from_utf8_lossy(&tail);
            let tail = tail.trim();
            return Err(fail(if tail.is_empty() {
                format!("command exited with {status}")
            } else {
                format!("command exited with {status}: {tail}")
            }));
        }
        Ok(n)
    }
}

/// Reads regular files. Shared by the threads that read the files of a directory in
/// parallel, so it holds only shared references.
struct Files<'a, 'w> {
    repo: &'a Repository,
    writer: &'a BlobWriter<'w>,
    progress: &'a dyn Progress,
    force: bool,
}

/// How a file compared with the parent snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileStatus {
    New,
    Changed,
    Unchanged,
    Skipped,
}

/// What reading one regular file gave.
struct FileOutcome {
    /// Content, size, and fresher metadata when the file changed since it was listed;
    /// `None` when the file could not be read.
    read: Option<(Vec<Extent>, u64, Option<Metadata>)>,
    status: FileStatus,
    bytes_read: u64,
    warnings: Vec<Warning>,
}

thread_local! {
    /// Each reading thread's segment buffer, reused from file to file. It grows to the
    /// segment length (twice the largest chunk) only when a file needs it.
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
    fn file(&self, path: &Path, meta: &Metadata, pnode: Option<&Node>) -> Result<FileOutcome> {
        let mut out = FileOutcome {
            read: None,
            status: FileStatus::Skipped,
            bytes_read: 0,
            warnings: Vec::new(),
        };
        self.progress.file(path, Some(meta.size()));
        if let Some(content) = self.unchanged(meta, pnode) {
            self.progress.bytes(meta.size());
            self.progress.file_done();
            out.status = FileStatus::Unchanged;
            out.read = Some((content, meta.size(), None));
            return Ok(out);
        }
        let file = match open_for_backup(path) {
            Ok(f) => f,
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
        let before = match file.metadata() {
            Ok(m) => m,
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
            let mut content = Vec::new();
            self.chunk_reader(&mut &file, chunker, &mut content, before.size())
                .map(|n| (content, n, n))
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
        if let Ok(a) = file.metadata() {
            if a.size() != before.size()
                || a.mtime() != before.mtime()
                || a.mtime_nsec() != before.mtime_nsec()
                || a.ctime() != before.ctime()
                || a.ctime_nsec() != before.ctime_nsec()
            {
                self.warn(
                    &mut out.warnings,
                    WarningKind::Changed,
                    path,
                    format!(
                        "size {} → {} bytes during the read",
                        before.size(),
                        a.size()
                    ),
                );
            }
        }
        let fresh = if before.ino() != meta.ino() || before.mtime() != meta.mtime() {
            Some(before)
        } else {
            None
        };
        out.read = Some((content, size, fresh));
        Ok(out)
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
            && p.mtime == time_of(meta.mtime(), meta.mtime_nsec())
            && p.ctime == time_of(meta.ctime(), meta.ctime_nsec())
            && p.inode == meta.ino();
        if !same {
            return None;
        }
        let index = self.repo.index();
        content
            .iter()
            .all(|e| match e {
                Extent::Data(id) => index.contains(id),
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
        let mut content = Vec::new();
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
                    return Ok((content, n, n));
                }
                Err(e) => return Err(ReadError::Io(e.into())),
            };
            let data = data.min(size);
            if data > pos {
                content.push(Extent::Hole(data - pos));
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
                return Ok((content, data + n, read));
            }
            pos = hole;
        }
        Ok((content, size, read))
    }

    /// Chunks everything `r` yields into `content`; returns the byte count. `hint` is
    /// the expected length (the buffer is sized to it, up to the segment length).
    fn chunk_reader(
        &self,
        r: &mut dyn Read,
        chunker: &Chunker,
        content: &mut Vec<Extent>,
        hint: u64,
    ) -> Result<u64, ReadError> {
        SEGMENT.with_borrow_mut(|buf| self.chunk_into(r, chunker, content, hint, buf))
    }

    fn chunk_into(
        &self,
        r: &mut dyn Read,
        chunker: &Chunker,
        content: &mut Vec<Extent>,
        hint: u64,
        buf: &mut Vec<u8>,
    ) -> Result<u64, ReadError> {
        let seg = segment_len(chunker);
        // One byte more than expected, so that end of file is seen in the first pass.
        let mut limit = usize::try_from(hint.saturating_add(1))
            .unwrap_or(seg)
            .clamp(64 << 10, seg);
        if buf.len() < limit {
            buf.resize(limit, 0);
        }
        let mut filled = 0usize;
        let mut total = 0u64;
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
                        let (id, _) = self
                            .writer
                            .add(BlobKind::Data, &buf[start..start + n])
                            .map_err(ReadError::Store)?;
                        content.push(Extent::Data(id));
                        start += n;
                    }
                    None => break,
                }
            }
            if start == 0 && filled == limit && limit < seg {
                // A full small buffer without a cut: the file is larger than expected.
                limit = seg;
                if buf.len() < limit {
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

enum ReadError {
    /// Reading the source failed: a per-file warning (or a failed stream).
    Io(io::Error),
    /// Storing failed: the backup fails.
    Store(Error),
}

/// Opens a file for reading without following a symlink swapped in after lstat, and
/// without updating its access time where the kernel allows that.
fn open_for_backup(path: &Path) -> io::Result<File> {
    let open = |flags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
    };
    match open(libc::O_NOFOLLOW | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(libc::O_NOFOLLOW),
        r => r,
    }
}

fn read_xattrs(path: &Path) -> Vec<Xattr> {
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
fn is_cache_dir(dir: &Path) -> bool {
    const SIG: &[u8] = b"Signature: 8a477f597d28d172789f06886806bc55";
    let mut buf = [0u8; 43];
    File::open(dir.join("CACHEDIR.TAG"))
        .and_then(|mut f| f.read_exact(&mut buf))
        .map(|_| buf == SIG)
        .unwrap_or(false)
}

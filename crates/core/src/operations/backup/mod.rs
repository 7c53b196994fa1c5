//! Backup: file trees and streams into one snapshot.
//!
//! Streams (stdin, dump commands) are read first, in the order given, then the file
//! trees: a database dump is then never newer than the files backed up with it.
//! One thread walks the sources in a fixed order ([`walk`]); the regular files of each
//! directory are read in parallel ([`files`]), each through its thread's reused
//! segment buffer, cut into chunks and hashed; blobs the repository lacks go to the
//! [`crate::store`] workers, which compress, seal and pack them on every core.
//! Because ids are known as soon as a chunk is hashed, trees are built during the walk
//! and never wait for the workers. The snapshot is written after every pack and index
//! is stored: it is the commit point.
//!
//! Unchanged files (same size, mtime, ctime and inode as in the parent snapshot) are
//! taken from the parent without being read. Per-file problems become [`Warning`]s and
//! the backup goes on; a failing stream source fails the backup and nothing is committed.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::snapshot::{Snapshot, SNAPSHOT_VERSION};
use crate::operations::exclude::Excludes;
use crate::platform::NameCache;
use crate::report::{BackupSummary, Progress, Warning, WarningKind};
use crate::repository::Repository;
use crate::store::with_writer;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

mod bundle;
mod delta;
mod files;
mod stream;
mod walk;

use stream::stream_components;
pub use stream::{Observer, StreamSource};

use files::Files;
use walk::{Target, Trie, Walk};

/// Completes the manifest once every stream and file is read, before the snapshot is
/// stored (e.g. with what an [`Observer`] counted).
pub struct ManifestFinish(pub Box<dyn FnOnce(&mut serde_json::Value) + Send>);

impl std::fmt::Debug for ManifestFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManifestFinish")
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
    /// The application front-end making the snapshot (recorded in it).
    pub app: Option<String>,
    /// What the front-end records about the run (see [`Snapshot::manifest`]).
    pub manifest: Option<serde_json::Value>,
    /// Completes `manifest` after the streams are read.
    pub finish_manifest: Option<ManifestFinish>,
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
        // A put-only key cannot read snapshots or trees: its parent is the newest
        // snapshot of its own send log, whose trees the catalog kept when they were
        // stored (without them, every file is read).
        ParentChoice::Auto if repo.is_put_only() => repo
            .sent_snapshots()
            .into_iter()
            .rev()
            .find(|(_, s)| s.hostname == hostname && s.paths == snap_paths),
        ParentChoice::Snapshot(spec) => Some(repo.find_snapshot(spec)?),
        ParentChoice::Auto => repo
            .snapshots()?
            .into_iter()
            .rev()
            .find(|(_, s)| s.hostname == hostname && s.paths == snap_paths),
    };
    let parent_tree = match &parent {
        Some((_, s)) if repo.is_put_only() => repo.load_tree(&s.tree).ok(),
        Some((_, s)) => Some(repo.load_tree(&s.tree)?),
        None => None,
    };
    let parent = parent.filter(|_| parent_tree.is_some());

    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.threads
    };
    let large = files::Slots::new(threads);
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
                large: &large,
            },
            excludes: &excludes,
            exclude_caches: opts.exclude_caches,
            one_file_system: opts.one_file_system,
            names: NameCache::default(),
            summary: std::sync::Mutex::new(BackupSummary::default()),
            warnings: std::sync::Mutex::new(Vec::new()),
            streams: Vec::new(),
            time,
            root_dev: 0,
        };
        // Reading is bound by waiting (system calls, the disk with a cold cache) more
        // than by CPU: two reading threads per core keep the disk busy, while the
        // compression workers use the cores.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2 * threads)
            .thread_name(|i| format!("cairn-read-{i}"))
            // Directories are walked recursively on these threads: room for deep trees.
            .stack_size(16 << 20)
            .build()
            .map_err(|e| Error::Invalid(format!("cannot start reading threads: {e}")))?;
        let streams = walk.read_streams(opts.streams, parent_tree.as_ref(), start)?;
        let tree = pool.install(|| walk.build(&root, PathBuf::from("/"), parent_tree.as_ref()))?;
        let id = writer.add_tree(&tree)?;
        let mut summary = walk.summary.into_inner().unwrap();
        summary.streams = streams;
        Ok((id, summary, walk.warnings.into_inner().unwrap()))
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
        app: opts.app,
        manifest: match (opts.manifest, opts.finish_manifest) {
            (Some(mut m), Some(finish)) => {
                (finish.0)(&mut m);
                Some(m)
            }
            (m, _) => m,
        },
        original: None,
        key: Some(repo.key_name().to_string()),
        access: repo
            .is_put_only()
            .then(|| crate::repository::PUT_ONLY.to_string()),
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

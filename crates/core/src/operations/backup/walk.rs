//! The walk: sources in a fixed order, directories depth first, one tree per directory.

use super::bundle::{Small, BUNDLE_BELOW};
use super::files::{is_cache_dir, read_xattrs, FileOutcome, FileStatus, Files, ReadError};
use super::stream::{stream_components, Observer, StreamSource};
use crate::error::{Error, Result};
use crate::formats::content::ContentBuilder;
use crate::formats::id::Id;
use crate::formats::repo_config::{DELTA_VERSION, PARTS_VERSION};
use crate::formats::tree::{Extent, Node, NodeKind, Time, Tree};
use crate::operations::backup::delta::BaseFinder;
use crate::operations::exclude::Excludes;
use crate::platform::NameCache;
use crate::report::{BackupSummary, Progress, StreamSummary, Warning, WarningKind};
use crate::repository::Repository;
use crate::store::BlobWriter;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;

#[derive(Debug)]
pub(super) enum Target {
    Path(PathBuf),
    Stream(usize),
}

/// The snapshot's root: targets placed at their absolute paths.
#[derive(Debug, Default)]
pub(super) struct Trie {
    children: BTreeMap<Vec<u8>, Trie>,
    target: Option<Target>,
}

impl Trie {
    pub(super) fn insert(&mut self, comps: &[Vec<u8>], target: Target) -> Result<()> {
        let mut node = self;
        for (i, c) in comps.iter().enumerate() {
            if matches!(node.target, Some(Target::Stream(_))) {
                return Err(Error::Invalid(format!(
                    "/{} lies inside stream /{}",
                    String::from_utf8_lossy(&comps.join(&b'/')),
                    String::from_utf8_lossy(&comps[..i].join(&b'/'))
                )));
            }
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

pub(super) struct Walk<'a, 'w> {
    pub(super) repo: &'a Repository,
    pub(super) writer: &'a BlobWriter<'w>,
    pub(super) progress: &'a dyn Progress,
    pub(super) files: Files<'a, 'w>,
    pub(super) excludes: &'a Excludes,
    pub(super) exclude_caches: bool,
    pub(super) one_file_system: bool,
    pub(super) names: NameCache,
    pub(super) summary: std::sync::Mutex<BackupSummary>,
    pub(super) warnings: std::sync::Mutex<Vec<Warning>>,
    /// The streams' nodes, read before any file (see [`Walk::read_streams`]) and taken
    /// by `build` where each belongs in the tree.
    pub(super) streams: Vec<Option<Node>>,
    pub(super) time: jiff::Timestamp,
    pub(super) root_dev: u64,
}

impl Walk<'_, '_> {
    fn warn(&self, kind: WarningKind, path: &Path, message: String) {
        let w = Warning {
            kind,
            path: path.to_string_lossy().into_owned(),
            message,
        };
        self.progress.warning(&w);
        self.warnings.lock().unwrap().push(w);
    }

    /// Builds the tree of one trie level (the root, or an ancestor of a target).
    pub(super) fn build(
        &mut self,
        trie: &Trie,
        dir: PathBuf,
        parent: Option<&Tree>,
    ) -> Result<Tree> {
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
                    let mut node = self.streams[*i].take().expect("each stream is used once");
                    node.name = name.clone();
                    Some(node)
                }
                None => {
                    let ptree = self.parent_subtree(pnode);
                    let tree = self.build(child, path.clone(), ptree.as_ref())?;
                    let subtree = self.writer.add_tree(&tree)?;
                    let mut node = match std::fs::symlink_metadata(&path) {
                        Ok(m) if m.is_dir() => self.node_from_meta(name.clone(), &m, &path, None),
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

    fn parent_subtree(&self, pnode: Option<&Node>) -> Option<Tree> {
        match pnode.map(|n| &n.kind) {
            Some(NodeKind::Dir { subtree }) => self.repo.load_tree(subtree).ok(),
            _ => None,
        }
    }

    fn synthetic_dir(&self, name: Vec<u8>) -> Node {
        let kind = NodeKind::Dir {
            subtree: Id::default(),
        };
        Node::synthetic(name, kind, 0o040755, self.time)
    }

    /// The entry's node from its metadata. Its extended attributes are the parent
    /// snapshot's when `pnode` is the same inode with the same change time (setting or
    /// removing an attribute changes the ctime), else read: for an unchanged tree this
    /// saves the two or three system calls per entry that listing them takes.
    fn node_from_meta(
        &self,
        name: Vec<u8>,
        m: &Metadata,
        path: &Path,
        pnode: Option<&Node>,
    ) -> Node {
        let ctime = Time::from_stat(m.ctime(), m.ctime_nsec());
        let xattrs = match pnode {
            Some(p) if !self.files.force && p.inode == m.ino() && p.ctime == ctime => {
                p.xattrs.clone()
            }
            _ => read_xattrs(path),
        };
        Node {
            name,
            kind: NodeKind::Fifo, // replaced by the caller
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            user: self.names.user(m.uid()),
            group: self.names.group(m.gid()),
            size: m.size(),
            mtime: Time::from_stat(m.mtime(), m.mtime_nsec()),
            ctime,
            inode: m.ino(),
            device: m.dev(),
            links: m.nlink(),
            xattrs,
        }
    }

    /// One directory entry of any kind; `None` when it was skipped.
    fn entry(
        &self,
        path: &Path,
        name: Vec<u8>,
        meta: Metadata,
        pnode: Option<&Node>,
        read: Option<Result<FileOutcome>>,
    ) -> Result<Option<Node>> {
        let ft = meta.file_type();
        let mut node = self.node_from_meta(name, &meta, path, pnode);
        node.kind = if ft.is_dir() {
            self.summary.lock().unwrap().dirs += 1;
            let subtree = self.dir(path, &meta, pnode)?;
            node.size = 0;
            NodeKind::Dir { subtree }
        } else if ft.is_file() {
            let out = match read {
                Some(r) => r?,
                None => self.files.file(path, &meta, pnode)?,
            };
            {
                let mut sum = self.summary.lock().unwrap();
                match out.status {
                    FileStatus::New => sum.files_new += 1,
                    FileStatus::Changed => sum.files_changed += 1,
                    FileStatus::Unchanged => sum.files_unchanged += 1,
                    FileStatus::Skipped => {}
                }
                sum.bytes_read += out.bytes_read;
                if let Some((_, size, _)) = &out.read {
                    sum.bytes_total += size;
                }
            }
            self.warnings.lock().unwrap().extend(out.warnings);
            match out.read {
                Some((content, size, m)) => {
                    if let Some(m) = m {
                        node = self.node_from_meta(node.name, &m, path, None);
                    }
                    node.size = size;
                    NodeKind::File { content }
                }
                None => return Ok(None),
            }
        } else {
            self.summary.lock().unwrap().others += 1;
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
    fn dir(&self, path: &Path, meta: &Metadata, pnode: Option<&Node>) -> Result<Id> {
        let ptree = self.parent_subtree(pnode);
        let mut nodes = Vec::new();
        let crosses = self.one_file_system && meta.dev() != self.root_dev;
        let cache_dir = self.exclude_caches && is_cache_dir(path);
        if !crosses && !cache_dir {
            let mut listed: Vec<(OsString, std::fs::DirEntry)> = match std::fs::read_dir(path) {
                Ok(rd) => {
                    let mut v = Vec::new();
                    for e in rd {
                        match e {
                            Ok(e) => v.push((e.file_name(), e)),
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
            listed.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            // lstat in parallel too: with a cold cache each one may wait for the disk.
            // Each is relative to the open directory (`DirEntry::metadata` does not
            // follow a symlink), so the kernel does not walk the whole path again.
            let stats: Vec<_> = listed
                .into_par_iter()
                .map(|(name, e)| {
                    let child = path.join(&name);
                    let meta = e.metadata();
                    (name, child, meta)
                })
                .collect();
            let mut entries = Vec::with_capacity(stats.len());
            for (name, child, meta) in stats {
                match meta {
                    Ok(m) if self.excludes.is_excluded(&child, m.is_dir()) => {}
                    Ok(m) => entries.push((name, child, m)),
                    Err(e) => self.warn(WarningKind::Unreadable, &child, e.to_string()),
                }
            }
            let pchildren: Vec<Option<&Node>> = entries
                .iter()
                .map(|(name, _, _)| ptree.as_ref().and_then(|t| t.find(name.as_bytes())))
                .collect();
            // Regular files the parent holds unchanged are taken from it; the other
            // small ones are read together, as one stream (see `bundle`), while every
            // other entry is built in parallel, subdirectories included (work stealing
            // keeps the reading threads busy however the tree is shaped).
            let mut ready: Vec<Option<FileOutcome>> = Vec::new();
            let mut small = Vec::new();
            if self.repo.config().version >= PARTS_VERSION {
                ready.resize_with(entries.len(), || None);
                for (i, ((_, child, m), p)) in entries.iter().zip(&pchildren).enumerate() {
                    if m.is_file() && m.size() > 0 && m.size() < BUNDLE_BELOW {
                        match self.files.unchanged_outcome(child, m, *p) {
                            Some(o) => ready[i] = Some(o),
                            None => small.push(i),
                        }
                    }
                }
            }
            let is_small = |i: usize| small.binary_search(&i).is_ok();
            let (bundled, built) = rayon::join(
                || {
                    let files: Vec<Small> = small
                        .iter()
                        .map(|&i| Small {
                            path: &entries[i].1,
                            meta: &entries[i].2,
                            pnode: pchildren[i],
                        })
                        .collect();
                    self.files.bundle(&files)
                },
                || {
                    entries
                        .par_iter()
                        .zip(pchildren.par_iter())
                        .enumerate()
                        .filter(|(i, _)| ready.get(*i).is_none_or(|r| r.is_none()) && !is_small(*i))
                        .map(|(i, ((name, child, meta), pchild))| {
                            let node = self.entry(
                                child,
                                name.as_bytes().to_vec(),
                                meta.clone(),
                                *pchild,
                                None,
                            )?;
                            Ok((i, node))
                        })
                        .collect::<Result<Vec<_>>>()
                },
            );
            for (i, o) in small.iter().zip(bundled?) {
                ready[*i] = Some(o);
            }
            let read: Vec<(usize, Option<Node>)> = ready
                .into_par_iter()
                .enumerate()
                .filter_map(|(i, o)| o.map(|o| (i, o)))
                .map(|(i, o)| {
                    let (name, child, meta) = &entries[i];
                    let node = self.entry(
                        child,
                        name.as_bytes().to_vec(),
                        meta.clone(),
                        pchildren[i],
                        Some(Ok(o)),
                    )?;
                    Ok((i, node))
                })
                .collect::<Result<_>>()?;
            let mut built = built?;
            built.extend(read);
            built.sort_unstable_by_key(|(i, _)| *i);
            let built = built.into_iter().map(|(_, n)| n);
            nodes.extend(built.into_iter().flatten());
        }
        self.writer.add_tree(&Tree { nodes })
    }

    /// Reads every stream, in the order given, before any file is read: a database dump
    /// then describes a state no newer than the files backed up after it (files an
    /// application wrote after the dump are extra, never missing).
    ///
    /// A stream that the parent snapshot holds too is stored against it: each new chunk
    /// as a delta against the old chunk at its place (see [`crate::operations::backup::delta`]).
    pub(super) fn read_streams(
        &mut self,
        sources: Vec<StreamSource>,
        parent: Option<&Tree>,
        start: std::time::Instant,
    ) -> Result<Vec<StreamSummary>> {
        let mut out = Vec::with_capacity(sources.len());
        for src in sources {
            let name = src.name().to_string();
            let began = std::time::Instant::now();
            let old = match parent {
                Some(t) if self.repo.config().version >= DELTA_VERSION => {
                    self.old_stream(t, &stream_components(&name)?)
                }
                _ => None,
            };
            let node = self.stream(Vec::new(), src, old)?;
            out.push(StreamSummary {
                name,
                bytes: node.size,
                started_secs: began.duration_since(start).as_secs_f64(),
                duration_secs: began.elapsed().as_secs_f64(),
            });
            self.streams.push(Some(node));
        }
        Ok(out)
    }

    /// The content of the parent snapshot's file at `components`, if it has one there.
    fn old_stream(&self, parent: &Tree, components: &[Vec<u8>]) -> Option<Vec<Extent>> {
        let (last, dirs) = components.split_last()?;
        let mut tree = std::borrow::Cow::Borrowed(parent);
        for name in dirs {
            let subtree = match &tree.find(name)?.kind {
                NodeKind::Dir { subtree } => *subtree,
                _ => return None,
            };
            tree = std::borrow::Cow::Owned(self.repo.load_tree(&subtree).ok()?);
        }
        match &tree.find(last)?.kind {
            NodeKind::File { content } => Some(content.clone()),
            _ => None,
        }
    }

    /// A stream source, stored as a file node; `old` is the content of its previous
    /// version, to store new chunks as deltas against.
    fn stream(
        &mut self,
        name: Vec<u8>,
        src: StreamSource,
        old: Option<Vec<Extent>>,
    ) -> Result<Node> {
        let label = src.name().to_string();
        self.progress.file(Path::new(&label), None);
        let repo = self.repo;
        let chunker = repo.streams_chunker();
        let mut content = ContentBuilder::new();
        let mut finder = old.as_deref().map(|old| BaseFinder::new(repo, old));
        let size = match src {
            StreamSource::Reader { mut reader, .. } => {
                match self.files.chunk_reader_with_bases(
                    &mut reader,
                    chunker,
                    &mut content,
                    u64::MAX,
                    finder.as_mut(),
                ) {
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
            StreamSource::Command {
                program,
                args,
                env,
                observe,
                ..
            } => self.command(
                &label,
                (&program, &args, &env),
                observe,
                &mut content,
                finder.as_mut(),
            )?,
        };
        {
            let mut sum = self.summary.lock().unwrap();
            sum.files_new += 1;
            sum.bytes_read += size;
            sum.bytes_total += size;
        }
        self.progress.file_done();
        let uid = rustix::process::geteuid().as_raw();
        let gid = rustix::process::getegid().as_raw();
        let content = content.finish();
        let mut node = Node::synthetic(name, NodeKind::File { content }, 0o100600, self.time);
        node.size = size;
        node.uid = uid;
        node.gid = gid;
        node.user = self.names.user(uid);
        node.group = self.names.group(gid);
        Ok(node)
    }

    fn command(
        &mut self,
        label: &str,
        (program, args, env): (&OsStr, &[OsString], &[(OsString, OsString)]),
        observe: Option<Observer>,
        content: &mut ContentBuilder,
        bases: Option<&mut BaseFinder<'_, Repository>>,
    ) -> Result<u64> {
        let chunker = self.repo.streams_chunker();
        let fail = |detail: String| Error::SourceFailed {
            name: label.to_string(),
            detail,
        };
        let mut child = crate::platform::command(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
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
        let mut stdout = Observed {
            inner: child.stdout.take().expect("piped"),
            observe,
        };
        let read =
            self.files
                .chunk_reader_with_bases(&mut stdout, chunker, content, u64::MAX, bases);
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

/// A reader that shows what it reads to an [`Observer`].
struct Observed<R> {
    inner: R,
    observe: Option<Observer>,
}

impl<R: Read> Read for Observed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(o) = self.observe.as_mut() {
            (o.0)(&buf[..n]);
        }
        Ok(n)
    }
}

//! The read-only file system `cairn mount` serves (see docs/mount.md for the layout).
//!
//! Inodes: the directories and symlinks above the snapshots (`snapshots/`, `hosts/`,
//! `apps/`, `tags/`, their listings and `latest` links) are built once at mount time;
//! the entries inside a snapshot get an inode the first time they are listed or looked
//! up, named by (parent inode, position in the parent's tree), so the same directory
//! reached through two snapshots is two inodes (the kernel refuses a directory with two
//! parents). An inode keeps only where its node is, not the node: the node is read from
//! the tree, and decoded trees are kept in a bounded cache.
//!
//! File contents are read through [`ContentReader`]: one blob at a time, whatever the
//! file's size.

use cairn_core::content::ContentReader;
use cairn_core::{Id, Node, NodeKind, Repository, Snapshot, Tree};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    OpenAccMode, OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty,
    ReplyEntry, ReplyOpen, ReplyWrite, ReplyXattr, Request,
};
use std::collections::{HashMap, VecDeque};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What ends the mount.
#[derive(Debug)]
pub enum Event {
    /// SIGINT or SIGTERM: unmount and exit.
    Signal,
    /// The file system was unmounted from outside (`fusermount3 -u`, `umount`).
    Unmounted,
}

/// A directory of `apps/`: its name, and which snapshots it holds.
pub type AppGroup = (String, Box<dyn Fn(&Snapshot) -> bool>);

/// How long the kernel may keep names and attributes: nothing here ever changes.
const TTL: Duration = Duration::from_secs(300);

/// Decoded trees kept at most. A tree of 1,000 entries is about 200 KB decoded, so
/// this bounds the cache near 100 MB in the worst case and far less in practice.
const TREE_CACHE: usize = 512;

/// What an inode is.
#[derive(Debug)]
enum Inode {
    /// A directory of the layout above the snapshots, with its entries.
    Dir(Vec<(OsString, u64)>),
    /// A symlink of the layout (`latest`, the entries of `hosts/...`).
    Link(Vec<u8>),
    /// The root of a snapshot (an index into the snapshots).
    SnapshotRoot(usize),
    /// An entry of a snapshot: the tree holding it and its position there.
    Entry { tree: Id, index: u32 },
}

/// The snapshots to show, oldest first, with the name of their directory.
#[derive(Debug)]
pub struct Shown {
    pub snap: Snapshot,
    pub name: String,
}

#[derive(Debug, Default)]
struct State {
    /// Inode `n` is `inodes[n - 1]`.
    inodes: Vec<Inode>,
    /// Inodes of snapshot entries by (parent inode, position in the parent's tree).
    children: HashMap<(u64, u32), u64>,
    trees: HashMap<Id, Arc<Tree>>,
    /// Trees in the order they were loaded, for eviction.
    order: VecDeque<Id>,
}

/// The file system. Requests arrive on one thread; the locks are for the trait's `&self`.
pub struct CairnFs {
    repo: Arc<Repository>,
    snaps: Vec<Shown>,
    state: Mutex<State>,
    open: Mutex<HashMap<u64, Arc<Mutex<ContentReader>>>>,
    next_fh: std::sync::atomic::AtomicU64,
    /// Owner and time of the layout's directories: who mounted, and when.
    uid: u32,
    gid: u32,
    mounted: SystemTime,
    /// Said when the file system ends (unmounted by anyone).
    on_destroy: Option<std::sync::mpsc::Sender<Event>>,
}

impl std::fmt::Debug for CairnFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CairnFs")
            .field("snapshots", &self.snaps.len())
            .finish_non_exhaustive()
    }
}

/// A name usable as a directory entry: `/` and NUL replaced, never empty, `.` or `..`.
pub fn entry_name(s: &str) -> String {
    let n: String = s
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    if n.is_empty() || n == "." || n == ".." {
        format!("_{n}")
    } else {
        n
    }
}

impl CairnFs {
    /// Builds the layout for `snaps` (oldest first). `apps` maps an application's
    /// directory name to whether a snapshot belongs to it.
    pub fn new(
        repo: Arc<Repository>,
        snaps: Vec<Shown>,
        apps: Vec<AppGroup>,
        on_destroy: std::sync::mpsc::Sender<Event>,
    ) -> CairnFs {
        let mut inodes: Vec<Inode> = Vec::new();
        let add = |inodes: &mut Vec<Inode>, i: Inode| {
            inodes.push(i);
            inodes.len() as u64
        };
        // 1 is the root; its entries are filled in at the end.
        add(&mut inodes, Inode::Dir(Vec::new()));
        // snapshots/: a directory per snapshot, and `latest`.
        let mut entries = Vec::new();
        for (i, s) in snaps.iter().enumerate() {
            let ino = add(&mut inodes, Inode::SnapshotRoot(i));
            entries.push((OsString::from(&s.name), ino));
        }
        if let Some(last) = newest(&snaps, |_| true) {
            let ino = add(&mut inodes, Inode::Link(last.name.clone().into_bytes()));
            entries.push(("latest".into(), ino));
        }
        let snapshots_dir = add(&mut inodes, Inode::Dir(entries));
        // hosts/, apps/, tags/: a directory per group, holding links into snapshots/.
        let group_dir = |inodes: &mut Vec<Inode>, groups: Vec<(String, Vec<usize>)>| {
            let mut top = Vec::new();
            for (name, members) in groups {
                let mut entries = Vec::new();
                for &i in &members {
                    let target = format!("../../snapshots/{}", snaps[i].name);
                    let ino = add(inodes, Inode::Link(target.into_bytes()));
                    entries.push((OsString::from(&snaps[i].name), ino));
                }
                let last = members.iter().max_by_key(|&&i| (snaps[i].snap.time, i));
                if let Some(&i) = last {
                    let ino = add(inodes, Inode::Link(snaps[i].name.clone().into_bytes()));
                    entries.push(("latest".into(), ino));
                }
                let ino = add(inodes, Inode::Dir(entries));
                top.push((OsString::from(name), ino));
            }
            add(inodes, Inode::Dir(top))
        };
        let group = |key: &dyn Fn(&Snapshot) -> Vec<String>| {
            let mut groups: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
            for (i, s) in snaps.iter().enumerate() {
                for k in key(&s.snap) {
                    groups.entry(entry_name(&k)).or_default().push(i);
                }
            }
            groups.into_iter().collect::<Vec<_>>()
        };
        let hosts = group(&|s| vec![s.hostname.clone()]);
        let tags = group(&|s| {
            let mut t = s.tags.clone();
            t.sort();
            t.dedup();
            t
        });
        let app_groups: Vec<(String, Vec<usize>)> = apps
            .iter()
            .map(|(name, owns)| {
                let members = (0..snaps.len()).filter(|&i| owns(&snaps[i].snap)).collect();
                (entry_name(name), members)
            })
            .collect::<Vec<(String, Vec<usize>)>>()
            .into_iter()
            .filter(|(_, m): &(String, Vec<usize>)| !m.is_empty())
            .collect();
        let hosts_dir = group_dir(&mut inodes, hosts);
        let apps_dir = group_dir(&mut inodes, app_groups);
        let tags_dir = group_dir(&mut inodes, tags);
        inodes[0] = Inode::Dir(vec![
            ("apps".into(), apps_dir),
            ("hosts".into(), hosts_dir),
            ("snapshots".into(), snapshots_dir),
            ("tags".into(), tags_dir),
        ]);
        CairnFs {
            repo,
            snaps,
            state: Mutex::new(State {
                inodes,
                ..State::default()
            }),
            open: Mutex::new(HashMap::new()),
            next_fh: 1.into(),
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
            mounted: SystemTime::now(),
            on_destroy: Some(on_destroy),
        }
    }

    /// A tree, from the cache or the repository (through the local catalog).
    fn tree(&self, id: &Id) -> Result<Arc<Tree>, Errno> {
        if let Some(t) = self.state.lock().unwrap().trees.get(id) {
            return Ok(Arc::clone(t));
        }
        let tree = Arc::new(self.repo.load_tree(id).map_err(|e| self.fail(&e))?);
        let mut st = self.state.lock().unwrap();
        if st.trees.insert(*id, Arc::clone(&tree)).is_none() {
            st.order.push_back(*id);
        }
        while st.order.len() > TREE_CACHE {
            if let Some(old) = st.order.pop_front() {
                st.trees.remove(&old);
            }
        }
        Ok(tree)
    }

    /// Reports a repository error on standard error; the caller gets EIO.
    fn fail(&self, e: &dyn std::fmt::Display) -> Errno {
        eprintln!("cairn: mount: {e}");
        Errno::EIO
    }

    fn with_inode<T>(&self, ino: INodeNo, f: impl FnOnce(&Inode) -> T) -> Result<T, Errno> {
        let st = self.state.lock().unwrap();
        let i = usize::try_from(ino.0).map_err(|_| Errno::ENOENT)?;
        match i.checked_sub(1).and_then(|i| st.inodes.get(i)) {
            Some(inode) => Ok(f(inode)),
            None => Err(Errno::ENOENT),
        }
    }

    /// The node of a snapshot entry.
    fn node(&self, tree: &Id, index: u32) -> Result<Node, Errno> {
        let t = self.tree(tree)?;
        t.nodes.get(index as usize).cloned().ok_or(Errno::ENOENT)
    }

    /// The tree a directory inode lists, if it is a snapshot directory.
    fn subtree(&self, ino: INodeNo) -> Result<Option<Id>, Errno> {
        enum Where {
            Root(usize),
            Entry(Id, u32),
            Other,
        }
        let w = self.with_inode(ino, |i| match i {
            Inode::SnapshotRoot(s) => Where::Root(*s),
            Inode::Entry { tree, index } => Where::Entry(*tree, *index),
            _ => Where::Other,
        })?;
        match w {
            Where::Root(s) => Ok(Some(self.snaps[s].snap.tree)),
            Where::Entry(tree, index) => match self.node(&tree, index)?.kind {
                NodeKind::Dir { subtree } => Ok(Some(subtree)),
                _ => Err(Errno::ENOTDIR),
            },
            Where::Other => Ok(None),
        }
    }

    /// The inode of entry `index` of the tree `tree` listed by `parent`.
    fn child(&self, parent: INodeNo, tree: Id, index: u32) -> u64 {
        let mut st = self.state.lock().unwrap();
        if let Some(&ino) = st.children.get(&(parent.0, index)) {
            return ino;
        }
        st.inodes.push(Inode::Entry { tree, index });
        let ino = st.inodes.len() as u64;
        st.children.insert((parent.0, index), ino);
        ino
    }

    fn attr(&self, ino: INodeNo) -> Result<FileAttr, Errno> {
        enum What {
            Dir(usize),
            Link(usize),
            Root(usize),
            Entry(Id, u32),
        }
        let w = self.with_inode(ino, |i| match i {
            Inode::Dir(e) => What::Dir(e.len()),
            Inode::Link(t) => What::Link(t.len()),
            Inode::SnapshotRoot(s) => What::Root(*s),
            Inode::Entry { tree, index } => What::Entry(*tree, *index),
        })?;
        let layout = |kind, perm, size: usize, nlink| FileAttr {
            ino,
            size: size as u64,
            blocks: 0,
            atime: self.mounted,
            mtime: self.mounted,
            ctime: self.mounted,
            crtime: self.mounted,
            kind,
            perm,
            nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        };
        Ok(match w {
            What::Dir(n) => layout(FileType::Directory, 0o555, 0, 2 + n as u32),
            What::Link(n) => layout(FileType::Symlink, 0o777, n, 1),
            What::Root(s) => node_attr(ino, &cairn_core::browse::root_node(&self.snaps[s].snap)),
            What::Entry(tree, index) => node_attr(ino, &self.node(&tree, index)?),
        })
    }
}

/// The newest of the snapshots that `pick` selects (the later one on equal times).
fn newest(snaps: &[Shown], pick: impl Fn(&Shown) -> bool) -> Option<&Shown> {
    snaps
        .iter()
        .enumerate()
        .filter(|(_, s)| pick(s))
        .max_by_key(|(i, s)| (s.snap.time, *i))
        .map(|(_, s)| s)
}

fn system_time(t: cairn_core::Time) -> SystemTime {
    if t.secs >= 0 {
        UNIX_EPOCH + Duration::new(t.secs as u64, t.nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.secs.unsigned_abs())
            + Duration::from_nanos(t.nanos as u64)
    }
}

fn file_type(kind: &NodeKind) -> FileType {
    match kind {
        NodeKind::File { .. } => FileType::RegularFile,
        NodeKind::Dir { .. } => FileType::Directory,
        NodeKind::Symlink { .. } => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::Socket => FileType::Socket,
        NodeKind::CharDevice { .. } => FileType::CharDevice,
        NodeKind::BlockDevice { .. } => FileType::BlockDevice,
    }
}

/// A node's attributes, as restore would give the file it creates.
fn node_attr(ino: INodeNo, n: &Node) -> FileAttr {
    let rdev = match n.kind {
        NodeKind::CharDevice { rdev } | NodeKind::BlockDevice { rdev } => rdev as u32,
        _ => 0,
    };
    let size = match &n.kind {
        NodeKind::Symlink { target } => target.len() as u64,
        _ => n.size,
    };
    let is_dir = matches!(n.kind, NodeKind::Dir { .. });
    FileAttr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: system_time(n.mtime),
        mtime: system_time(n.mtime),
        ctime: system_time(n.ctime),
        crtime: system_time(n.mtime),
        kind: file_type(&n.kind),
        perm: (n.mode & 0o7777) as u16,
        nlink: if is_dir {
            2
        } else {
            n.links.clamp(1, u32::MAX as u64) as u32
        },
        uid: n.uid,
        gid: n.gid,
        rdev,
        blksize: 4096,
        flags: 0,
    }
}

impl Filesystem for CairnFs {
    fn destroy(&mut self) {
        if let Some(tx) = self.on_destroy.take() {
            let _ = tx.send(Event::Unmounted);
        }
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = (|| {
            let layout = self.with_inode(parent, |i| match i {
                Inode::Dir(entries) => {
                    Some(entries.iter().find(|(n, _)| n == name).map(|(_, ino)| *ino))
                }
                _ => None,
            })?;
            let ino = match layout {
                Some(Some(ino)) => ino,
                Some(None) => return Err(Errno::ENOENT),
                None => {
                    let tree_id = self.subtree(parent)?.ok_or(Errno::ENOTDIR)?;
                    let tree = self.tree(&tree_id)?;
                    let index = tree
                        .nodes
                        .binary_search_by(|n| n.name.as_slice().cmp(name.as_bytes()))
                        .map_err(|_| Errno::ENOENT)?;
                    self.child(parent, tree_id, index as u32)
                }
            };
            self.attr(INodeNo(ino))
        })();
        match found {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let target = (|| {
            let w = self.with_inode(ino, |i| match i {
                Inode::Link(t) => Ok(t.clone()),
                Inode::Entry { tree, index } => Err(Some((*tree, *index))),
                _ => Err(None),
            })?;
            match w {
                Ok(t) => Ok(t),
                Err(Some((tree, index))) => match self.node(&tree, index)?.kind {
                    NodeKind::Symlink { target } => Ok(target),
                    _ => Err(Errno::EINVAL),
                },
                Err(None) => Err(Errno::EINVAL),
            }
        })();
        match target {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(e),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        // Entry k (`.` is 0, `..` is 1) is answered with offset k + 1: where the next
        // call starts. Only the entries from `offset` on are looked at.
        let skip = offset as usize;
        let listing = (|| -> Result<Vec<(u64, FileType, OsString)>, Errno> {
            let layout = self.with_inode(ino, |i| match i {
                Inode::Dir(entries) => Some(entries.clone()),
                _ => None,
            })?;
            let mut out = vec![
                (ino.0, FileType::Directory, OsString::from(".")),
                (ino.0, FileType::Directory, OsString::from("..")),
            ];
            match layout {
                Some(entries) => {
                    for (k, (name, child)) in entries.into_iter().enumerate() {
                        let kind = if k + 2 >= skip {
                            self.attr(INodeNo(child))?.kind
                        } else {
                            FileType::RegularFile // skipped below
                        };
                        out.push((child, kind, name));
                    }
                }
                None => {
                    let tree_id = self.subtree(ino)?.ok_or(Errno::ENOTDIR)?;
                    let tree = self.tree(&tree_id)?;
                    for (k, n) in tree.nodes.iter().enumerate() {
                        if k + 2 < skip {
                            out.push((0, FileType::RegularFile, OsString::new()));
                            continue;
                        }
                        let child = self.child(ino, tree_id, k as u32);
                        let name = OsString::from_vec(n.name.clone());
                        out.push((child, file_type(&n.kind), name));
                    }
                }
            }
            Ok(out)
        })();
        match listing {
            Ok(entries) => {
                for (k, (child, kind, name)) in entries.into_iter().enumerate().skip(skip) {
                    if reply.add(INodeNo(child), k as u64 + 1, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.acc_mode() != OpenAccMode::O_RDONLY {
            return reply.error(Errno::EROFS);
        }
        let opened = (|| {
            let w = self.with_inode(ino, |i| match i {
                Inode::Entry { tree, index } => Some((*tree, *index)),
                _ => None,
            })?;
            let (tree, index) = w.ok_or(Errno::EISDIR)?;
            let node = self.node(&tree, index)?;
            let NodeKind::File { content } = &node.kind else {
                return Err(Errno::EISDIR);
            };
            let reader = ContentReader::new(&*self.repo, content).map_err(|e| self.fail(&e))?;
            let fh = self
                .next_fh
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.open
                .lock()
                .unwrap()
                .insert(fh, Arc::new(Mutex::new(reader)));
            Ok(fh)
        })();
        match opened {
            // Contents never change: the kernel may keep them in its page cache.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let Some(reader) = self.open.lock().unwrap().get(&fh.0).cloned() else {
            return reply.error(Errno::EBADF);
        };
        let mut reader = reader.lock().unwrap();
        let mut buf = vec![0u8; size as usize];
        match reader.read_at(&*self.repo, offset, &mut buf) {
            Ok(n) => reply.data(&buf[..n]),
            Err(e) => reply.error(self.fail(&e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.open.lock().unwrap().remove(&fh.0);
        reply.ok();
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.xattrs(ino) {
            Ok(x) => {
                let mut names = Vec::new();
                for a in &x {
                    names.extend_from_slice(&a.name);
                    names.push(0);
                }
                xattr_reply(reply, size, &names)
            }
            Err(e) => reply.error(e),
        }
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.xattrs(ino) {
            Ok(x) => match x.iter().find(|a| a.name == name.as_bytes()) {
                Some(a) => xattr_reply(reply, size, &a.value),
                None => reply.error(Errno::NO_XATTR),
            },
            Err(e) => reply.error(e),
        }
    }

    // Every change fails with EROFS (the kernel already refuses most of them on a
    // read-only mount; these answer the rest the same way).

    fn setattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        _size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        _mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mknod(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn mkdir(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn unlink(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn rmdir(&self, _req: &Request, _parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }

    fn symlink(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn rename(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(Errno::EROFS);
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        reply.error(Errno::EROFS);
    }

    fn create(
        &self,
        _req: &Request,
        _parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        reply.error(Errno::EROFS);
    }

    fn setxattr(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::EROFS);
    }

    fn removexattr(&self, _req: &Request, _ino: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(Errno::EROFS);
    }
}

impl CairnFs {
    /// The extended attributes of a snapshot entry (none for the layout's inodes).
    fn xattrs(&self, ino: INodeNo) -> Result<Vec<cairn_core::Xattr>, Errno> {
        let w = self.with_inode(ino, |i| match i {
            Inode::Entry { tree, index } => Some((*tree, *index)),
            _ => None,
        })?;
        match w {
            Some((tree, index)) => Ok(self.node(&tree, index)?.xattrs),
            None => Ok(Vec::new()),
        }
    }
}

/// Answers an xattr request: the size when asked for it (size 0), else the bytes.
fn xattr_reply(reply: ReplyXattr, size: u32, bytes: &[u8]) {
    if size == 0 {
        reply.size(bytes.len() as u32);
    } else if (size as usize) < bytes.len() {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(bytes);
    }
}

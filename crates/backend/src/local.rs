//! [`LocalBackend`]: a repository in a directory of the local file system.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cairn_core::{validate_name, Backend, BackendError, FileKind, Staged};

/// Permission bits of every directory the backend creates: owner only.
pub const DIR_MODE: u32 = 0o700;

/// Permission bits of every file the backend writes: read-only, owner only.
///
/// Repository files are immutable (every name but `config` is the hash of the bytes), so
/// nothing ever needs to open one for writing. Making them read-only turns a stray
/// `open(O_WRONLY)` or `>` redirection (by cairn or by a person) into `EACCES` instead of a
/// silently damaged pack. Removing a file only needs write permission on its directory,
/// so `remove` and `prune` still work.
pub const FILE_MODE: u32 = 0o400;

/// Names of temporary files start with this; they are never listed or read.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A repository stored in a local directory.
///
/// Layout below the root:
///
/// ```text
/// config
/// keys/<name>
/// data/<first two characters of name>/<name>    (256 fan-out directories 00..ff)
/// index/<name>
/// snapshots/<name>
/// locks/<name>
/// ```
///
/// Writes go to `.tmp-<random hex>` in the target directory, are fsynced, renamed onto
/// the final name, and the directory is fsynced, so a file is either whole under its
/// name or absent, even across a crash. A crash can leave `.tmp-*` files behind; they are
/// never listed or read, and [`Backend::remove_stale_temp_files`] deletes them.
///
/// Directories are created mode `0700` and files mode `0400` (see [`FILE_MODE`]).
#[derive(Debug)]
pub struct LocalBackend {
    root: PathBuf,
    /// Open pack files for ranged reads. Restoring many small files reads many blobs
    /// from few packs; opening the pack for each blob cost one `openat` per blob.
    /// Packs are immutable, so a cached descriptor never reads stale bytes (a pack
    /// removed meanwhile still reads as it was, which is what its index promised).
    open_packs: Mutex<HashMap<PathBuf, Arc<File>>>,
}

/// Open pack files kept for ranged reads; the cache is emptied when it fills.
const OPEN_PACKS: usize = 64;

impl LocalBackend {
    fn open_for_range(
        &self,
        kind: FileKind,
        name: &str,
        path: &Path,
    ) -> Result<Arc<File>, BackendError> {
        if kind != FileKind::Pack {
            return File::open(path)
                .map(Arc::new)
                .map_err(|e| read_error(kind, name, path, e));
        }
        if let Some(f) = self.open_packs.lock().unwrap().get(path) {
            return Ok(f.clone());
        }
        let f = Arc::new(File::open(path).map_err(|e| read_error(kind, name, path, e))?);
        let mut cache = self.open_packs.lock().unwrap();
        if cache.len() >= OPEN_PACKS {
            cache.clear();
        }
        cache.insert(path.to_path_buf(), f.clone());
        Ok(f)
    }

    /// A backend for the repository at `path`. Does no I/O; [`Backend::create`] makes
    /// the directories.
    pub fn new(path: impl Into<PathBuf>) -> LocalBackend {
        LocalBackend {
            root: path.into(),
            open_packs: Mutex::new(HashMap::new()),
        }
    }

    /// The repository's root directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The directory holding `name` of `kind` (the name must be valid; see
    /// [`FileKind::dir_of`]).
    fn dir_of(&self, kind: FileKind, name: &str) -> PathBuf {
        self.root.join(kind.dir_of(name))
    }

    /// The path of `name` of `kind`, after validating the name (see
    /// [`FileKind::path_of`]).
    fn file_path(&self, kind: FileKind, name: &str) -> Result<PathBuf, BackendError> {
        validate_name(kind, name)?;
        Ok(self.root.join(kind.path_of(name)))
    }

    /// Writes `data` to a new temp file in `dir` and returns its path. The temp file is
    /// removed again on any error.
    fn write_temp(&self, dir: &Path, data: &[u8]) -> io::Result<PathBuf> {
        let tmp = dir.join(temp_name()?);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&tmp)?;
        let written = file.write_all(data).and_then(|()| file.sync_all());
        drop(file);
        match written {
            Ok(()) => Ok(tmp),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}

impl Backend for LocalBackend {
    /// Deletes `.tmp-*` files in every directory of the repository.
    fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize, BackendError> {
        let now = SystemTime::now();
        let mut dirs = vec![self.root.clone()];
        for kind in FileKind::ALL {
            if kind == FileKind::Config {
                continue;
            }
            let dir = self.root.join(kind.dir());
            if kind == FileKind::Pack {
                dirs.extend(subdirectories(&dir)?);
            }
            dirs.push(dir);
        }
        let mut removed = 0;
        for dir in dirs {
            let mut removed_here = 0;
            for entry in read_dir(&dir)? {
                let entry = entry.map_err(|e| BackendError::io(reading_dir(&dir), e))?;
                let name = entry.file_name();
                if !is_temp_name(&name) {
                    continue;
                }
                let path = entry.path();
                let meta = match entry.metadata() {
                    Ok(meta) => meta,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return Err(BackendError::io(
                            format!("inspecting {}", path.display()),
                            e,
                        ))
                    }
                };
                if !meta.is_file() {
                    continue;
                }
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|mtime| now.duration_since(mtime).ok())
                    .unwrap_or(Duration::ZERO);
                if age < older_than {
                    continue;
                }
                match fs::remove_file(&path) {
                    Ok(()) => removed_here += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(BackendError::io(format!("removing {}", path.display()), e))
                    }
                }
            }
            if removed_here > 0 {
                sync_dir(&dir)?;
                removed += removed_here;
            }
        }
        Ok(removed)
    }

    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn create(&self) -> Result<(), BackendError> {
        let config = self.root.join("config");
        match fs::symlink_metadata(&config) {
            Ok(_) => return Err(BackendError::AlreadyExists(self.location())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(BackendError::io(
                    format!("inspecting {}", config.display()),
                    e,
                ))
            }
        }
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(&self.root)
            .map_err(|e| BackendError::io(creating_dir(&self.root), e))?;
        let mut created = Vec::new();
        for kind in FileKind::ALL {
            if kind == FileKind::Config {
                continue;
            }
            let dir = self.root.join(kind.dir());
            make_dir(&dir)?;
            if kind == FileKind::Pack {
                for byte in 0..=255u8 {
                    let sub = dir.join(hex::encode([byte]));
                    make_dir(&sub)?;
                    created.push(sub);
                }
            }
            created.push(dir);
        }
        // Children before parents, so every new entry is durable once its parent is.
        for dir in &created {
            sync_dir(dir)?;
        }
        sync_dir(&self.root)?;
        if let Some(parent) = self.root.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError> {
        let path = self.file_path(kind, name)?;
        let dir = self.dir_of(kind, name);
        let context = || format!("writing {}", path.display());

        // Names are content hashes: a file already there holds these bytes. (A directory
        // in its place is not skipped; the rename below fails on it.)
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            // Another writer may have renamed it but not yet synced the directory.
            return sync_dir(&dir);
        }

        let tmp = match self.write_temp(&dir, data) {
            Err(e) if kind != FileKind::Config && e.kind() == io::ErrorKind::NotFound => {
                // A missing kind or fan-out directory: removed by hand, a name outside
                // 00..ff, or a repository copied by a tool that drops empty directories.
                let parent = dir.parent().expect("a kind directory has a parent");
                if kind == FileKind::Pack && !parent.exists() {
                    make_dir(parent)?;
                    sync_dir(parent.parent().expect("data/ has a parent"))?;
                }
                make_dir(&dir)?;
                sync_dir(parent)?;
                self.write_temp(&dir, data)
            }
            other => other,
        }
        .map_err(|e| BackendError::io(context(), e))?;

        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_file(&tmp);
            return Err(BackendError::io(context(), e));
        }
        sync_dir(&dir)
    }

    /// Packs are written to a temporary file in `data/` as they fill and renamed into
    /// their fan-out directory when complete; other kinds are small and written whole.
    fn stage(&self, kind: FileKind) -> Result<Option<Box<dyn Staged>>, BackendError> {
        if kind != FileKind::Pack {
            return Ok(None);
        }
        let dir = self.root.join(kind.dir());
        let tmp =
            dir.join(temp_name().map_err(|e| BackendError::io("naming a temporary file", e))?);
        let open = || {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&tmp)
        };
        let file = match open() {
            // `data/` removed by hand or dropped by a copy (see `write`).
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                make_dir(&dir)?;
                sync_dir(&self.root)?;
                open()
            }
            other => other,
        }
        .map_err(|e| BackendError::io(format!("creating {}", tmp.display()), e))?;
        Ok(Some(Box::new(LocalStaged {
            root: self.root.clone(),
            kind,
            file,
            tmp: Some(tmp),
        })))
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        let path = self.file_path(kind, name)?;
        fs::read(&path).map_err(|e| read_error(kind, name, &path, e))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        let mut buf = Vec::new();
        self.read_range_into(kind, name, offset, len, &mut buf)?;
        Ok(buf)
    }

    fn read_range_into(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), BackendError> {
        let path = self.file_path(kind, name)?;
        let file = self.open_for_range(kind, name, &path)?;
        let size = file
            .metadata()
            .map_err(|e| read_error(kind, name, &path, e))?
            .len();
        let n = BackendError::check_range(kind, name, offset, len, size)?;
        // Bytes already there are overwritten by the read: only growth is zeroed.
        buf.truncate(n);
        buf.resize(n, 0);
        match file.read_exact_at(buf, offset) {
            Ok(()) => Ok(()),
            // The file shrank under us; it is not what was written.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                let now = file.metadata().map(|m| m.len()).unwrap_or(0);
                Err(BackendError::short_read(kind, name, offset, len, now))
            }
            Err(e) => Err(read_error(kind, name, &path, e)),
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        // A kind's directory that is missing while the repository exists holds nothing:
        // copies made with tools that drop empty directories (git, some sync tools)
        // stay readable.
        if kind != FileKind::Config {
            let dir = self.root.join(kind.dir());
            if !dir.exists() && self.root.join("config").is_file() {
                return Ok(Vec::new());
            }
        }
        match kind {
            FileKind::Config => {
                let path = self.root.join("config");
                match fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => Ok(vec![("config".to_owned(), meta.len())]),
                    Ok(_) => Ok(Vec::new()),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        // An absent config is an empty list; an absent root is an error.
                        fs::metadata(&self.root)
                            .map_err(|e| BackendError::io(reading_dir(&self.root), e))?;
                        Ok(Vec::new())
                    }
                    Err(e) => Err(BackendError::io(
                        format!("inspecting {}", path.display()),
                        e,
                    )),
                }
            }
            FileKind::Pack => {
                let mut out = Vec::new();
                for sub in subdirectories(&self.root.join(kind.dir()))? {
                    // Only names whose fan-out directory matches: a file anywhere else
                    // could not be read back by name.
                    let prefix = sub.file_name().and_then(OsStr::to_str).unwrap_or("");
                    list_dir(&sub, kind, |name| name.starts_with(prefix), &mut out)?;
                }
                Ok(out)
            }
            _ => {
                let mut out = Vec::new();
                list_dir(&self.root.join(kind.dir()), kind, |_| true, &mut out)?;
                Ok(out)
            }
        }
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        let path = self.file_path(kind, name)?;
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir_of(kind, name)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(BackendError::io(format!("removing {}", path.display()), e)),
        }
    }
}

/// Lists the regular files of `dir` with valid names accepted by `keep` into `out`.
fn list_dir(
    dir: &Path,
    kind: FileKind,
    keep: impl Fn(&str) -> bool,
    out: &mut Vec<(String, u64)>,
) -> Result<(), BackendError> {
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| BackendError::io(reading_dir(dir), e))?;
        // Temp files, editor droppings and anything else not nameable are skipped.
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if validate_name(kind, &name).is_err() || !keep(&name) {
            continue;
        }
        // Follows symlinks, so a linked file is listed with its target's size.
        match fs::metadata(entry.path()) {
            Ok(meta) if meta.is_file() => out.push((name, meta.len())),
            Ok(_) => {}
            // Removed between readdir and stat.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(BackendError::io(
                    format!("inspecting {}", entry.path().display()),
                    e,
                ))
            }
        }
    }
    Ok(())
}

/// The subdirectories of `dir` (the pack fan-out directories).
fn subdirectories(dir: &Path) -> Result<Vec<PathBuf>, BackendError> {
    let mut subs = Vec::new();
    for entry in read_dir(dir)? {
        let entry = entry.map_err(|e| BackendError::io(reading_dir(dir), e))?;
        if is_temp_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        if fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            subs.push(path);
        }
    }
    Ok(subs)
}

/// A pack being written by [`LocalBackend::stage`]: a temporary file in `data/`.
struct LocalStaged {
    /// The repository's root directory.
    root: PathBuf,
    kind: FileKind,
    file: File,
    /// The temporary file, until it is renamed onto its name.
    tmp: Option<PathBuf>,
}

impl LocalStaged {
    fn context(&self) -> String {
        let tmp = self.tmp.as_deref().unwrap_or(Path::new(""));
        format!("writing {}", tmp.display())
    }
}

impl Staged for LocalStaged {
    fn append(&mut self, data: &[u8]) -> Result<(), BackendError> {
        self.file
            .write_all(data)
            .map_err(|e| BackendError::io(self.context(), e))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), BackendError> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| BackendError::io(self.context(), e))
    }

    fn commit(mut self: Box<Self>, name: &str) -> Result<(), BackendError> {
        validate_name(self.kind, name)?;
        let path = self.root.join(self.kind.path_of(name));
        let dir = self.root.join(self.kind.dir_of(name));
        let context = || format!("writing {}", path.display());
        self.file
            .sync_all()
            .map_err(|e| BackendError::io(self.context(), e))?;
        let tmp = self.tmp.take().expect("a staged file is committed once");
        let renamed = match fs::rename(&tmp, &path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir.parent().is_some() => {
                // A fan-out directory removed by hand or dropped by a copy (see `write`).
                make_dir(&dir).and_then(|()| sync_dir(dir.parent().unwrap()))?;
                fs::rename(&tmp, &path)
            }
            other => other,
        };
        if let Err(e) = renamed {
            let _ = fs::remove_file(&tmp);
            return Err(BackendError::io(context(), e));
        }
        sync_dir(&dir)?;
        sync_dir(tmp.parent().expect("a temporary file has a directory"))
    }
}

impl Drop for LocalStaged {
    fn drop(&mut self) {
        if let Some(tmp) = self.tmp.take() {
            let _ = fs::remove_file(tmp);
        }
    }
}

fn read_dir(dir: &Path) -> Result<fs::ReadDir, BackendError> {
    fs::read_dir(dir).map_err(|e| BackendError::io(reading_dir(dir), e))
}

fn reading_dir(dir: &Path) -> String {
    format!("reading directory {}", dir.display())
}

fn creating_dir(dir: &Path) -> String {
    format!("creating directory {}", dir.display())
}

/// Creates one directory (mode [`DIR_MODE`]); one that exists already is fine.
fn make_dir(dir: &Path) -> Result<(), BackendError> {
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(BackendError::io(creating_dir(dir), e)),
    }
}

/// Makes the entries of `dir` (creations, renames, removals) durable.
fn sync_dir(dir: &Path) -> Result<(), BackendError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackendError::io(format!("syncing directory {}", dir.display()), e))
}

/// `.tmp-` and 16 random bytes in hex.
fn temp_name() -> io::Result<String> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random)
        .map_err(|e| io::Error::other(format!("no random bytes for a temp file name: {e}")))?;
    Ok(format!("{TEMP_PREFIX}{}", hex::encode(random)))
}

fn is_temp_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

/// Maps an error opening or reading a named file; a missing file is `NotFound`.
fn read_error(kind: FileKind, name: &str, path: &Path, e: io::Error) -> BackendError {
    if e.kind() == io::ErrorKind::NotFound {
        BackendError::NotFound {
            kind,
            name: name.to_owned(),
        }
    } else {
        BackendError::io(format!("reading {}", path.display()), e)
    }
}

//! An opened repository: keys, config, index, and reading what is stored.
//!
//! A [`Repository`] exists only once `init` or `open` has succeeded, so everything that
//! needs keys (backup, restore, check) takes one and cannot run on an unopened repository.

use crate::backend::{Backend, FileKind};
use crate::catalog::{Catalog, CatalogKey};
use crate::error::{Error, Result};
use crate::formats::content::{decode_list, ContentSource};
use crate::formats::id::{BlobKind, Id};
use crate::formats::index::{
    decode_index_file, encode_index_file, BlobLocation, Index, IndexedPack, PackInfo, Trust,
};
use crate::formats::keys::{KeyFile, MasterKey};
use crate::formats::lock::{self, FoundLock, Lock};
use crate::formats::pack::{
    delta_parts, open_blob, open_blob_in_slice, COMPRESSION_DELTA, COMPRESSION_NONE,
    COMPRESSION_ZSTD, MAX_DELTA_DEPTH,
};
use crate::formats::repo_config::{InitOptions, RepoConfig};
use crate::formats::sealed::{
    open_file, seal_file, seal_file_at, Envelope, FileKey, Magic, VERSION_DATA_INDEX,
};
use crate::formats::sendlog::SendLog;
use crate::formats::snapshot::Snapshot;
use crate::formats::tree::{Extent, NodeKind, Tree};
use crate::select::{DamagedSnapshot, SnapshotFilter};
use cairn_chunker::Chunker;
use cairn_crypto::{keyed_hash, KdfParams, Key, Password};
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

/// Trees read from the repository are written to the catalog in batches of this many:
/// one transaction per tree would cost more than reading it.
const TREE_BATCH: usize = 256;

/// Called once, with the first error, when the catalog fails; the repository then goes
/// on without it.
pub type CatalogTrouble = Box<dyn Fn(&Error) + Send + Sync>;

/// A catalog attached to an opened repository, and what is waiting to be written to it.
struct Attached {
    catalog: Arc<dyn Catalog>,
    /// Seals what goes to the catalog and opens what comes back: the catalog holds
    /// nothing in clear but ids and times.
    key: CatalogKey,
    /// Plaintext of trees not yet written (sealed when they are).
    pending_trees: Mutex<HashMap<Id, Vec<u8>>>,
    /// Trees this process read from the catalog: a backup that meets one again (an
    /// unchanged directory) need not seal it once more only for the catalog to keep the
    /// row it has.
    served: Mutex<HashSet<Id>>,
    failed: std::sync::atomic::AtomicBool,
    trouble: CatalogTrouble,
}

/// A repository opened with a key.
pub struct Repository {
    backend: Arc<dyn Backend>,
    master: MasterKey,
    config: RepoConfig,
    key_name: String,
    index: RwLock<Index>,
    index_loaded: std::sync::atomic::AtomicBool,
    files_chunker: Chunker,
    streams_chunker: Chunker,
    envelope_keys: Mutex<HashMap<Envelope, Key>>,
    catalog: Option<Attached>,
    warn: Option<Warn>,
    index_damage: Mutex<Vec<String>>,
    send_log: Option<SendLog>,
    history: Option<crate::formats::history::History>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("location", &self.backend.location())
            .field("id", &self.config.id.short())
            .finish_non_exhaustive()
    }
}

impl Drop for Repository {
    fn drop(&mut self) {
        self.flush_catalog();
    }
}

/// How a snapshot sealed by a put-only key is marked (`Snapshot::access`).
pub const PUT_ONLY: &str = "put-only";

/// Readable snapshots (oldest first) and the damaged ones, by name.
pub type SnapshotsAndDamaged = (Vec<(Id, Snapshot)>, Vec<DamagedSnapshot>);

/// A blob's plaintext, its delta depth and base (see [`Repository::read_blob_depth`]).
type ReadBlob = (Vec<u8>, u8, Option<Id>);

/// An index file as read whole: its name, packs, who wrote it and its envelope.
pub(crate) struct SealedIndexFile {
    pub name: String,
    pub packs: Vec<IndexedPack>,
    pub trust: Trust,
    pub envelope: Envelope,
}

/// Readable snapshots (oldest first) and the errors of damaged ones.
pub type SnapshotsAndDamage = (Vec<(Id, Snapshot)>, Vec<Error>);

/// A key file as `key list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KeyInfo {
    /// The key file's name.
    pub id: String,
    /// True for the key this repository was opened with.
    pub current: bool,
    /// Creation time as stored.
    pub created: String,
    /// Host that created it.
    pub hostname: String,
    /// User that created it.
    pub username: String,
    /// Its Argon2id parameters.
    pub params: KdfParams,
    /// "full", or "put-only" for a key that can only add backups.
    pub access: &'static str,
}

/// How to open a repository (see [`Repository::open_with`]).
#[derive(Default)]
#[allow(missing_debug_implementations)] // a callback
pub struct OpenOptions {
    /// Only the key file whose name starts with this.
    pub key: Option<String>,
    /// Where warnings go (a skipped key file, a damaged index file); dropped if none.
    pub warn: Option<Warn>,
}

/// Receives warnings, one line each.
pub type Warn = Arc<dyn Fn(&str) + Send + Sync>;

/// The authenticator of a config (see [`RepoConfig::auth`]); needs a full key.
fn config_auth(master: &MasterKey, config: &RepoConfig) -> Result<[u8; 32]> {
    use crate::formats::sealed::EpochKeys;
    let data_keys = master.data_keys()?;
    let key = data_keys
        .for_epoch(0)
        .ok_or_else(|| Error::format("config", "the key holds no data key of epoch 0"))?
        .derive("cairn 2026 config auth");
    let mut plain = config.clone();
    plain.auth = None;
    let json = serde_json::to_vec(&plain).expect("config serializes");
    Ok(keyed_hash(&key, &json))
}

/// A full key accepts a config only if its authenticator matches: a config rewritten
/// with the meta key alone (which put-only keys hold) is refused, and so is one without
/// an authenticator in a repository made since they exist (its key files say so). In a
/// repository made before, a config without one is accepted. A put-only key cannot
/// verify it and does not try.
fn check_config_auth(master: &MasterKey, config: RepoConfig) -> Result<RepoConfig> {
    match &config.auth {
        Some(auth) if !master.is_put_only() => {
            let want = blake3::Hash::from(config_auth(master, &config)?);
            let given = hex::decode(auth)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .map(blake3::Hash::from);
            // blake3::Hash compares in constant time.
            if given != Some(want) {
                return Err(Error::corrupt(
                    "config (its authenticator does not match: it was not written by a \
                     full key)",
                ));
            }
            Ok(config)
        }
        None if master.requires_config_auth() => Err(Error::corrupt(
            "config (it carries no authenticator, which this repository's configs always \
             have: it was not written by a full key)",
        )),
        _ => Ok(config),
    }
}

/// True when a key file asks for more key derivation than `init` chooses.
fn costly(p: &KdfParams) -> bool {
    let d = KdfParams::DEFAULT;
    p.memory_kib > d.memory_kib || p.iterations > d.iterations || p.parallelism > d.parallelism
}

fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}

impl Repository {
    /// Creates a new repository in an empty location, with a first key for `password`.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &Password,
        opts: &InitOptions,
    ) -> Result<Repository> {
        Repository::init_with(backend, password, opts, MasterKey::random())
    }

    /// Creates a new repository that names and cuts blobs as `like` does: the same id
    /// key, chunker seed and chunking parameters, its own keys for everything else (the
    /// two repositories' files are encrypted apart). `copy` from `like` then moves only
    /// the blobs the new repository lacks, as they are. Whoever can read both storages
    /// learns which blobs they share, as with any two copies of one repository.
    pub fn init_like(
        backend: Arc<dyn Backend>,
        password: &Password,
        opts: &InitOptions,
        like: &Repository,
    ) -> Result<Repository> {
        let mut master = MasterKey::random();
        master.id_key = like.master.id_key.clone();
        master.chunker_seed = like.master.chunker_seed.clone();
        let opts = InitOptions {
            chunker_files: like.config.chunker_files,
            chunker_streams: like.config.chunker_streams,
            ..opts.clone()
        };
        Repository::init_with(backend, password, &opts, master)
    }

    /// True when `other` names and cuts blobs as this repository does (see
    /// [`Repository::init_like`]).
    pub fn chunks_like(&self, other: &Repository) -> bool {
        self.master.id_key == other.master.id_key
            && self.master.chunker_seed == other.master.chunker_seed
            && self.config.chunker_files == other.config.chunker_files
            && self.config.chunker_streams == other.config.chunker_streams
    }

    fn init_with(
        backend: Arc<dyn Backend>,
        password: &Password,
        opts: &InitOptions,
        master: MasterKey,
    ) -> Result<Repository> {
        if password.is_empty() {
            return Err(Error::Invalid("an empty password is not allowed".into()));
        }
        let mut id = [0u8; 32];
        cairn_crypto::random_bytes(&mut id);
        let mut config = RepoConfig {
            version: opts.version,
            id: Id(id),
            created: now_rfc3339(),
            chunker_files: opts.chunker_files,
            chunker_streams: opts.chunker_streams,
            compression_level: opts.compression_level,
            pack_size: opts.pack_size,
            auth: None,
        };
        config.validate()?;
        config.auth = Some(hex::encode(config_auth(&master, &config)?));
        // The key file before the config: a repository whose config exists always has a
        // key, and `create` refuses to run where a config already exists.
        backend.create()?;
        let kf = KeyFile::create(
            &master,
            password,
            opts.kdf,
            &crate::platform::hostname(),
            &crate::platform::username(),
            now_rfc3339(),
        )?;
        let kbytes = kf.to_bytes();
        let key_name = KeyFile::id(&kbytes).to_hex();
        backend.write(FileKind::Key, &key_name, &kbytes)?;
        let cjson = serde_json::to_vec(&config).expect("config serializes");
        backend.write(
            FileKind::Config,
            "config",
            &seal_file(Magic::Config, master.meta_wrap(), &cjson),
        )?;
        Repository::assemble(backend, master, config, key_name)
    }

    /// Opens a repository with a password. Tries every key file (see
    /// [`Repository::open_with`]); warnings are dropped.
    pub fn open(backend: Arc<dyn Backend>, password: &Password) -> Result<Repository> {
        Repository::open_with(backend, password, &OpenOptions::default())
    }

    /// Opens a repository with a password.
    ///
    /// With `opts.key`, only the key file whose name starts with it is tried. Otherwise
    /// every key file is, cheapest first: those whose key derivation costs more than
    /// `init` would choose come last, each after a warning, so that one key file made
    /// to cost minutes cannot hold up every command. A key file that cannot be used
    /// (damaged, unparsable, weakened) or that opens with the password but not this
    /// repository's config (it belongs to another repository) is skipped with a warning:
    /// another key may still open the repository.
    pub fn open_with(
        backend: Arc<dyn Backend>,
        password: &Password,
        opts: &OpenOptions,
    ) -> Result<Repository> {
        let warn = |msg: String| {
            if let Some(w) = &opts.warn {
                w(&msg)
            }
        };
        let config_bytes = match backend.read(FileKind::Config, "config") {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Err(Error::NotARepository(backend.location())),
            Err(e) => return Err(e.into()),
        };
        let mut names: Vec<String> = backend
            .list(FileKind::Key)?
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        names.sort();
        if let Some(prefix) = &opts.key {
            names.retain(|n| n.starts_with(prefix.as_str()));
            match names.len() {
                1 => {}
                0 => return Err(Error::Invalid(format!("no key file matches {prefix:?}"))),
                n => {
                    return Err(Error::Invalid(format!(
                        "{prefix:?} matches {n} key files; give more characters"
                    )))
                }
            }
        }
        // Parse every key file first (cheap), so the costly ones can be tried last.
        let mut refused = None;
        let mut usable = Vec::new();
        for name in names {
            let bytes = backend.read(FileKind::Key, &name)?;
            let parsed = if KeyFile::id(&bytes).to_hex() != name {
                Err(Error::corrupt(format!("key file {}", short(&name))))
            } else {
                KeyFile::parse(&bytes, &name)
            };
            match parsed {
                Ok(kf) => usable.push((name, kf)),
                Err(e) => {
                    warn(format!("{e}; skipped"));
                    refused.get_or_insert(e);
                }
            }
        }
        usable.sort_by_key(|(_, kf)| costly(&kf.params));
        let mut tried = false;
        let mut foreign = None;
        for (name, kf) in usable {
            if costly(&kf.params) && opts.key.is_none() {
                warn(format!(
                    "key file {} asks for more key derivation than cairn ever writes                      ({} MiB, {} passes, {} lanes): trying it last; pick a key with --key-id",
                    short(&name),
                    kf.params.memory_kib / 1024,
                    kf.params.iterations,
                    kf.params.parallelism
                ));
            }
            match kf.unwrap(password, &name) {
                Ok(Some(master)) => {
                    let config =
                        open_file(Magic::Config, &master.meta_keys(), &config_bytes, "config")
                            .and_then(|cjson| {
                                serde_json::from_slice::<RepoConfig>(&cjson)
                                    .map_err(|e| Error::format("config", e.to_string()))
                            })
                            .and_then(|c| c.validate().map(|_| c))
                            .and_then(|c| check_config_auth(&master, c));
                    match config {
                        Ok(config) => {
                            let mut repo = Repository::assemble(backend, master, config, name)?;
                            repo.warn = opts.warn.clone();
                            return Ok(repo);
                        }
                        Err(e) => {
                            warn(format!(
                                "key file {} opens with this password but not this                                  repository's config ({e}): it belongs to another repository                                  or the config is damaged; skipped",
                                short(&name)
                            ));
                            foreign.get_or_insert(e);
                        }
                    }
                }
                Ok(None) => tried = true,
                Err(e) => {
                    warn(format!("{e}; skipped"));
                    refused.get_or_insert(e);
                }
            }
        }
        // No key opened the repository. If keys opened with the password but none opened
        // the config, the config itself may be what is damaged: say that.
        match (foreign, refused) {
            (Some(e), _) => Err(e),
            (None, Some(e)) if !tried => Err(e),
            _ => Err(Error::WrongPassword),
        }
    }

    fn assemble(
        backend: Arc<dyn Backend>,
        master: MasterKey,
        config: RepoConfig,
        key_name: String,
    ) -> Result<Repository> {
        let mk = |p| {
            Chunker::new(p, master.chunker_seed.as_bytes())
                .map_err(|e| Error::format("config", e.to_string()))
        };
        let files_chunker = mk(config.chunker_files)?;
        let streams_chunker = mk(config.chunker_streams)?;
        Ok(Repository {
            backend,
            master,
            config,
            key_name,
            index: RwLock::new(Index::new()),
            index_loaded: std::sync::atomic::AtomicBool::new(false),
            files_chunker,
            streams_chunker,
            envelope_keys: Mutex::new(HashMap::new()),
            catalog: None,
            warn: None,
            index_damage: Mutex::new(Vec::new()),
            send_log: None,
            history: None,
        })
    }

    /// Attaches a catalog: from now on snapshots and trees already read are served from
    /// it, and what is read or written is remembered in it (see the `catalog` module).
    /// If the catalog fails, `trouble` is called once and the repository goes on without
    /// it: a cache never fails an operation.
    ///
    /// Rows are sealed under a key derived from the id key (see [`CatalogKey`]), which
    /// full and put-only keys both hold, so either can use the same catalog.
    pub fn attach_catalog(&mut self, catalog: Arc<dyn Catalog>, trouble: CatalogTrouble) {
        self.catalog = Some(Attached {
            catalog,
            key: CatalogKey::new(&self.master.id_key),
            pending_trees: Mutex::new(HashMap::new()),
            served: Mutex::new(HashSet::new()),
            failed: std::sync::atomic::AtomicBool::new(false),
            trouble,
        });
    }

    /// The attached catalog, unless none is or it has failed.
    pub fn catalog(&self) -> Option<&Arc<dyn Catalog>> {
        self.live_catalog().map(|a| &a.catalog)
    }

    fn live_catalog(&self) -> Option<&Attached> {
        self.catalog
            .as_ref()
            .filter(|a| !a.failed.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Runs `f` on the catalog if one is attached and working; on an error, reports it
    /// (once) and stops using the catalog.
    fn with_catalog<T>(&self, f: impl FnOnce(&dyn Catalog) -> Result<T>) -> Option<T> {
        let a = self.live_catalog()?;
        match f(a.catalog.as_ref()) {
            Ok(v) => Some(v),
            Err(e) => {
                if !a.failed.swap(true, std::sync::atomic::Ordering::AcqRel) {
                    (a.trouble)(&e);
                }
                None
            }
        }
    }

    /// Writes the trees waiting for the catalog. Done on drop too; call it to see the
    /// catalog complete while the repository is still open.
    pub fn flush_catalog(&self) {
        let Some(a) = self.live_catalog() else { return };
        let plain: Vec<(Id, Vec<u8>)> = a.pending_trees.lock().unwrap().drain().collect();
        // Sealed outside the lock, so that other threads remembering trees do not wait.
        let trees: Vec<(Id, Vec<u8>)> = plain
            .into_iter()
            .map(|(id, plain)| {
                let sealed = a.key.seal_tree(&id, &plain);
                (id, sealed)
            })
            .collect();
        if !trees.is_empty() {
            self.with_catalog(|c| c.put_trees(&trees));
        }
    }

    /// Drops from the catalog every tree for which `keep` is false (after prune).
    pub(crate) fn retain_cached_trees(&self, keep: &mut dyn FnMut(&Id) -> bool) {
        if let Some(a) = self.live_catalog() {
            a.pending_trees.lock().unwrap().retain(|id, _| keep(id));
            a.served.lock().unwrap().retain(|id| keep(id));
        }
        self.with_catalog(|c| c.retain_trees(keep));
    }

    /// Remembers a tree's plaintext for the catalog (stored or read by this process).
    pub(crate) fn remember_tree(&self, id: Id, plain: Vec<u8>) {
        let Some(a) = self.live_catalog() else { return };
        if a.served.lock().unwrap().contains(&id) {
            return;
        }
        let full = {
            let mut p = a.pending_trees.lock().unwrap();
            p.insert(id, plain);
            p.len() >= TREE_BATCH
        };
        if full {
            self.flush_catalog();
        }
    }

    /// The storage.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The config.
    pub fn config(&self) -> &RepoConfig {
        &self.config
    }

    /// The secret keys (crate-internal users only).
    pub(crate) fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The chunker for file contents.
    pub fn files_chunker(&self) -> &Chunker {
        &self.files_chunker
    }

    /// The chunker for streams.
    pub fn streams_chunker(&self) -> &Chunker {
        &self.streams_chunker
    }

    /// The keyed id of a blob's plaintext.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(keyed_hash(&self.master.id_key, plaintext))
    }

    /// Reads every index file into memory. Returns the number of blobs indexed.
    pub fn load_index(&self) -> Result<usize> {
        // Read the index files once per opened repository: commands and the library
        // functions they call both ask for it.
        if self.index_loaded.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(self.index().len());
        }
        if self.is_put_only() {
            return self.load_sent();
        }
        let files = self.list_index_files()?;
        let mut index = self.index.write().unwrap();
        // Room for every entry the files can hold (each takes ENTRY_LEN bytes there).
        let bytes: u64 = files.iter().map(|(_, n)| n).sum();
        index.reserve((bytes / crate::formats::pack::ENTRY_LEN as u64) as usize);
        // Decode in parallel, a batch of files at a time, appending as they come. A
        // damaged index file is reported and skipped: what other index files list still
        // reads (`check` names the damage, `repair index` rebuilds from the packs).
        let batch = 4 * rayon::current_num_threads();
        let mut damage = Vec::new();
        for names in files.chunks(batch) {
            let decoded: Vec<Result<(Vec<IndexedPack>, Trust)>> = names
                .par_iter()
                .map(|(name, _)| self.read_index_file_trusted(name))
                .collect();
            for (d, (name, _)) in decoded.into_iter().zip(names) {
                match d {
                    Ok((packs, trust)) => index.extend_unsorted(packs.iter(), trust),
                    Err(Error::Backend(e)) => {
                        *index = Index::new(); // never leave a half-built index behind
                        return Err(Error::Backend(e));
                    }
                    Err(e) => {
                        self.say(&format!(
                            "{e}; skipped: blobs listed only there cannot be read until \
                             `cairn repair index` (see `cairn check`)"
                        ));
                        damage.push(name.clone());
                    }
                }
            }
        }
        *self.index_damage.lock().unwrap() = damage;
        index.finish_load();
        self.index_loaded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(index.len())
    }

    /// A put-only key's index: the packs its send log names that the repository still
    /// holds (it cannot read the repository's index; see the `sendlog` module).
    fn load_sent(&self) -> Result<usize> {
        let sent = match &self.send_log {
            Some(log) => log.read().unwrap_or_else(|e| {
                self.say(&format!("{e}; every file is read and stored anew"));
                Default::default()
            }),
            None => Default::default(),
        };
        let mut index = self.index.write().unwrap();
        if !sent.packs.is_empty() {
            let held: HashSet<String> = self
                .backend
                .list(FileKind::Pack)?
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let packs: Vec<&IndexedPack> = sent
                .packs
                .iter()
                .filter(|(info, _)| held.contains(&info.id.to_hex()))
                .collect();
            index.extend_unsorted(packs, Trust::PutOnly);
            index.finish_load();
        }
        self.index_loaded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(index.len())
    }

    /// Keeps a put-only key's send log at `path` (see the `sendlog` module); without one
    /// a put-only key stores every blob anew and backs up with no parent.
    pub fn set_send_log(&mut self, path: std::path::PathBuf) {
        self.send_log = Some(SendLog::new(path, &self.master.id_key));
    }

    /// Remembers what this client sees of the repository in the file at `path`, to
    /// report a repository that goes back in time (see the `history` module). Not for
    /// put-only keys, which see only what they wrote.
    pub fn set_history(&mut self, path: std::path::PathBuf) {
        if !self.is_put_only() {
            self.history = Some(crate::formats::history::History::new(
                path,
                &self.master.id_key,
            ));
        }
    }

    /// Lists the index files, and tells the history what was listed.
    pub(crate) fn list_index_files(&self) -> Result<Vec<(String, u64)>> {
        let listed_at = crate::formats::history::now_ms();
        let files = self.backend.list(FileKind::Index)?;
        if let Some(h) = &self.history {
            let names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
            self.heed(h.observe_index(&names, listed_at));
        }
        Ok(files)
    }

    /// Removes an index file whose packs other index files list now (prune, repair), and
    /// remembers it as gone, so that it cannot come back unnoticed.
    pub(crate) fn remove_index_file(&self, name: &str) -> Result<()> {
        self.backend.remove(FileKind::Index, name)?;
        if let Some(h) = &self.history {
            // After the removal: a listing that began before now may still show it.
            if let Err(e) = h.removed_index(name, crate::formats::history::now_ms()) {
                self.say(&format!("{e}: rollbacks are not watched for"));
            }
        }
        Ok(())
    }

    /// Says the history's new alarms (or why it could not be kept).
    fn heed(&self, said: Result<Vec<String>>) {
        match said {
            Ok(alarms) => {
                for a in alarms {
                    self.say(&format!(
                        "{a} (run `cairn check`; `cairn check --accept-rollback` accepts \
                         the repository as it is)"
                    ));
                }
            }
            Err(e) => self.say(&format!("{e}: rollbacks are not watched for")),
        }
    }

    /// Rollbacks the history has recorded and the user has not accepted (see the
    /// `history` module); empty without a history.
    pub fn rollback_alarms(&self) -> Result<Vec<String>> {
        match &self.history {
            Some(h) => h.alarms(),
            None => Ok(Vec::new()),
        }
    }

    /// Accepts the repository as it is now: drops the recorded rollbacks and remembers
    /// afresh. Returns the alarms dropped.
    pub fn accept_rollback(&self) -> Result<Vec<String>> {
        match &self.history {
            Some(h) => h.accept(),
            None => Ok(Vec::new()),
        }
    }

    /// The snapshots this put-only key wrote, as its send log has them (oldest first).
    pub fn sent_snapshots(&self) -> Vec<(Id, Snapshot)> {
        match &self.send_log {
            Some(log) => log.read().map(|s| s.snapshots).unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// The index files [`Repository::load_index`] skipped because they are damaged.
    pub fn index_damage(&self) -> Vec<String> {
        self.index_damage.lock().unwrap().clone()
    }

    /// Sends a warning to the receiver given at open, if any.
    pub fn say(&self, msg: &str) {
        if let Some(w) = &self.warn {
            w(msg);
        }
    }

    /// Sets where warnings go.
    pub fn set_warn(&mut self, warn: Option<Warn>) {
        self.warn = warn;
    }

    /// Reads every index file whole and returns them by name; fills the in-memory index
    /// from them too if it is not loaded yet. For prune, which needs each pack's entries
    /// (second copies of blobs included) and the index, from one read.
    pub(crate) fn read_index_files(&self) -> Result<Vec<(String, Vec<IndexedPack>)>> {
        let names = self.list_index_files()?;
        let files: Vec<(String, Vec<IndexedPack>)> = names
            .par_iter()
            .map(|(name, _)| Ok((name.clone(), self.read_index_file(name)?)))
            .collect::<Result<_>>()?;
        let mut index = self.index.write().unwrap();
        if !self.index_loaded.load(std::sync::atomic::Ordering::Acquire) {
            index.add_packs(files.iter().flat_map(|(_, packs)| packs));
            self.index_loaded
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(files)
    }

    /// Reads and decodes one index file.
    pub fn read_index_file(&self, name: &str) -> Result<Vec<IndexedPack>> {
        Ok(self.read_index_file_trusted(name)?.0)
    }

    /// Reads and decodes one index file, and says who wrote it as far as its envelope
    /// can tell. Version-3 files are sealed with the data wrap (only full keys hold the
    /// data key; put-only keys seal to its public key); earlier ones with the meta key.
    pub fn read_index_file_trusted(&self, name: &str) -> Result<(Vec<IndexedPack>, Trust)> {
        self.read_index_file_sealed(name)
            .map(|(packs, trust, _)| (packs, trust))
    }

    /// Reads every index file whole, as [`Repository::read_index_files`] does, and
    /// returns each with who wrote it and its envelope (for the key epoch it is sealed
    /// under), or why it cannot be read. Does not fill the in-memory index.
    pub(crate) fn read_index_files_sealed(&self) -> Result<Vec<(String, Result<SealedIndexFile>)>> {
        let names = self.backend.list(FileKind::Index)?;
        Ok(names
            .par_iter()
            .map(|(name, _)| {
                let file = self
                    .read_index_file_sealed(name)
                    .map(|(packs, trust, envelope)| SealedIndexFile {
                        name: name.clone(),
                        packs,
                        trust,
                        envelope,
                    });
                (name.clone(), file)
            })
            .collect())
    }

    /// Every index file, read whole; and the names of those sealed under an earlier epoch
    /// that this key refuses (written after that epoch was rotated away, by a removed key:
    /// every reader ignores them, so the packs only they list are unreadable already). Any
    /// other index file that cannot be read is an error: a pack it lists would look unused.
    pub(crate) fn admitted_index_files(&self) -> Result<(Vec<SealedIndexFile>, Vec<String>)> {
        let epoch = self.master.epoch();
        let mut files = Vec::new();
        let mut refused = Vec::new();
        for (name, file) in self.read_index_files_sealed()? {
            match file {
                Ok(f) => files.push(f),
                Err(Error::Backend(e)) => return Err(Error::Backend(e)),
                Err(e) => {
                    let head = self.backend.read(FileKind::Index, &name)?;
                    match crate::formats::sealed::read_header(Magic::Index, &head, &name) {
                        Ok((_, env))
                            if env.epoch() < epoch && !self.master.admits(env.epoch(), &name) =>
                        {
                            refused.push(name)
                        }
                        _ => {
                            return Err(Error::Invalid(format!(
                                "{e}; every index file must be readable, or a pack it lists \
                                 would look unused (run `cairn check`, then `cairn repair index`)"
                            )))
                        }
                    }
                }
            }
        }
        Ok((files, refused))
    }

    /// Reads and decodes one index file; returns its packs, who wrote it and its envelope.
    fn read_index_file_sealed(&self, name: &str) -> Result<(Vec<IndexedPack>, Trust, Envelope)> {
        let what = format!("index {}", short(name));
        let bytes = self.backend.read(FileKind::Index, name)?;
        if Id::of_file(&bytes).to_hex() != name {
            return Err(Error::corrupt(&what));
        }
        let (version, envelope) = crate::formats::sealed::read_header(Magic::Index, &bytes, &what)?;
        self.admit(&envelope, name, &what)?;
        let (plain, trust) = if version >= VERSION_DATA_INDEX {
            let trust = if envelope.is_public() {
                Trust::PutOnly
            } else {
                Trust::Full
            };
            let plain = open_file(Magic::Index, &self.master.data_keys()?, &bytes, &what)?;
            (plain, trust)
        } else {
            if envelope.is_public() {
                return Err(Error::corrupt(&what));
            }
            let plain = open_file(Magic::Index, &self.master.meta_keys(), &bytes, &what)?;
            (plain, Trust::Unknown)
        };
        Ok((decode_index_file(&plain, &what)?, trust, envelope))
    }

    /// Writes an index file for packs this process stored; returns its name. It is
    /// padded and sealed with the data wrap (version 3): a full key's with the data key,
    /// a put-only key's to the data public key, so that put-only keys cannot read the
    /// index (and a cairn that knows neither refuses it instead of misreading it).
    pub fn write_index_file(&self, packs: &[IndexedPack]) -> Result<String> {
        let plain = encode_index_file(packs);
        let bytes = seal_file_at(
            Magic::Index,
            self.master.data_wrap(),
            VERSION_DATA_INDEX,
            &plain,
        );
        let name = Id::of_file(&bytes).to_hex();
        self.backend.write(FileKind::Index, &name, &bytes)?;
        if let (true, Some(log)) = (self.is_put_only(), &self.send_log) {
            if let Err(e) = log.add_packs(packs) {
                self.say(&format!("{e}: the next backup stores these blobs again"));
            }
        }
        Ok(name)
    }

    /// The in-memory index.
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap()
    }

    /// Empties the in-memory index; the next [`Repository::load_index`] reads the index
    /// files again (after packs were replaced under the exclusive lock).
    pub(crate) fn forget_index(&self) {
        *self.index.write().unwrap() = Index::new();
        self.envelope_keys.lock().unwrap().clear();
        self.index_loaded
            .store(false, std::sync::atomic::Ordering::Release);
    }

    /// Makes `packs` (every pack the index files list, read by the caller) the in-memory
    /// index if it is not loaded yet, as [`Repository::read_index_files`] does; else adds
    /// them to it.
    pub(crate) fn adopt_index(&self, packs: &[IndexedPack]) {
        let mut index = self.index.write().unwrap();
        if self.index_loaded.load(std::sync::atomic::Ordering::Acquire) {
            for (info, entries) in packs {
                index.add_pack(info, entries);
            }
        } else {
            index.add_packs(packs);
            self.index_loaded
                .store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// Adds packs to the in-memory index (after they are stored).
    pub(crate) fn index_packs(&self, packs: &[IndexedPack]) {
        let mut index = self.index.write().unwrap();
        for (info, entries) in packs {
            index.add_pack(info, entries);
        }
    }

    /// The file key of a pack, from its envelope (cached).
    pub(crate) fn pack_key(&self, envelope: &Envelope, what: &str) -> Result<Key> {
        if let Some(k) = self.envelope_keys.lock().unwrap().get(envelope) {
            return Ok(k.clone());
        }
        let fk = FileKey::open(Magic::Pack, &self.master.data_keys()?, envelope, what)?;
        self.envelope_keys
            .lock()
            .unwrap()
            .insert(*envelope, fk.key.clone());
        Ok(fk.key)
    }

    /// Reads, authenticates, decompresses and verifies a blob.
    pub fn read_blob(&self, id: &Id) -> Result<Vec<u8>> {
        self.read_blob_depth(id, MAX_DELTA_DEPTH)
            .map(|(plain, _, _)| plain)
    }

    /// Reads a blob as [`Repository::read_blob`] does, and returns its depth and base too
    /// (0 and none unless it is a delta blob). A delta blob deeper than `limit` is
    /// refused: each link of a chain must be shallower than the one before, so reads end.
    pub(crate) fn read_blob_depth(&self, id: &Id, limit: u8) -> Result<ReadBlob> {
        self.read_blob_rooted(id, limit, None)
    }

    /// Reads a blob as [`Repository::read_blob_depth`] does; for a delta blob, `root`
    /// receives the id and plaintext of its chain's first blob (the one that is not a
    /// delta), read on the way at no extra cost.
    pub(crate) fn read_blob_rooted(
        &self,
        id: &Id,
        limit: u8,
        mut root: Option<&mut Option<(Id, Vec<u8>)>>,
    ) -> Result<ReadBlob> {
        let (loc, pack) = {
            let index = self.index();
            let loc = index.get(id).ok_or_else(|| Error::MissingBlob {
                kind: "a",
                id: id.short(),
                context: String::new(),
            })?;
            (loc, index.pack(loc.pack).clone())
        };
        match self.read_at(id, &loc, &pack, limit, root.as_deref_mut()) {
            Ok(v) => Ok(v),
            Err(e) => match self.read_alternates(id, limit, root) {
                Some(Ok(v)) => Ok(v),
                _ => Err(e),
            },
        }
    }

    fn read_at(
        &self,
        id: &Id,
        loc: &BlobLocation,
        pack: &PackInfo,
        limit: u8,
        root: Option<&mut Option<(Id, Vec<u8>)>>,
    ) -> Result<ReadBlob> {
        let buf = crate::backend::read_range_exact(
            self.backend.as_ref(),
            FileKind::Pack,
            &pack.id.to_hex(),
            loc.offset as u64,
            loc.sealed_len as u64,
        )?;
        self.open_sealed(id, loc, pack, &buf, limit, root)
    }

    /// Reads a blob from its other copies, when the index knows more than one: `None`
    /// when it knows no other, else the first copy that reads or the last error. Used
    /// when the first copy fails, so that a damaged (or planted) copy does not make a
    /// blob unreadable while a good one exists. `root` as for
    /// [`Repository::read_blob_rooted`].
    pub(crate) fn read_alternates(
        &self,
        id: &Id,
        limit: u8,
        mut root: Option<&mut Option<(Id, Vec<u8>)>>,
    ) -> Option<Result<ReadBlob>> {
        let alternates: Vec<(BlobLocation, PackInfo)> = {
            let index = self.index();
            index
                .alternates(id)
                .iter()
                .map(|l| (*l, index.pack(l.pack).clone()))
                .collect()
        };
        let mut last = None;
        for (loc, pack) in alternates {
            match self.read_at(id, &loc, &pack, limit, root.as_deref_mut()) {
                Ok(v) => return Some(Ok(v)),
                Err(e) => last = Some(Err(e)),
            }
        }
        last
    }

    /// Authenticates, decompresses and verifies a sealed blob read from its pack
    /// (`sealed` holds exactly the blob's `loc.sealed_len` bytes); `root` as for
    /// [`Repository::read_blob_rooted`].
    pub(crate) fn open_sealed(
        &self,
        id: &Id,
        loc: &BlobLocation,
        pack: &PackInfo,
        sealed: &[u8],
        limit: u8,
        root: Option<&mut Option<(Id, Vec<u8>)>>,
    ) -> Result<ReadBlob> {
        let what = || blob_in_pack(id, loc, pack);
        let key = self.pack_key(&pack.envelope, &format!("pack {}", pack.id.short()))?;
        let stored = open_blob(&key, loc.kind, id, sealed).map_err(|_| Error::corrupt(what()))?;
        self.decode_stored(&stored, loc.raw_len, id, limit, root, &what)
    }

    /// [`Self::open_sealed`] for a blob read among others: decrypted in place in `sealed`
    /// (a slice of the caller's read) and decoded into `out`, whose memory is reused.
    /// Returns the blob's base if it is stored as a delta.
    pub(crate) fn open_sealed_into(
        &self,
        id: &Id,
        loc: &BlobLocation,
        pack: &PackInfo,
        sealed: &mut [u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Id>> {
        let what = || blob_in_pack(id, loc, pack);
        let key = self.pack_key(&pack.envelope, &format!("pack {}", pack.id.short()))?;
        let stored =
            open_blob_in_slice(&key, loc.kind, id, sealed).map_err(|_| Error::corrupt(what()))?;
        let base = match stored.first() {
            Some(&COMPRESSION_ZSTD) => {
                crate::formats::compression::decompress_into(
                    &stored[1..],
                    loc.raw_len as usize,
                    out,
                )
                .map_err(|e| Error::format(what(), format!("zstd: {e}")))?;
                None
            }
            Some(&COMPRESSION_NONE) => {
                out.clear();
                out.extend_from_slice(&stored[1..]);
                None
            }
            // Deltas (rare, and read with their bases) take the general way.
            _ => {
                let (plain, _, base) =
                    self.decode_stored(stored, loc.raw_len, id, MAX_DELTA_DEPTH, None, &what)?;
                *out = plain;
                return Ok(base);
            }
        };
        if out.len() != loc.raw_len as usize || self.blob_id(out) != *id {
            return Err(Error::corrupt(what()));
        }
        Ok(base)
    }

    /// Turns an opened blob (compression byte, payload) into its verified plaintext.
    pub(crate) fn decode_blob(
        &self,
        stored: &[u8],
        raw_len: u32,
        id: &Id,
        what: &dyn Fn() -> String,
    ) -> Result<Vec<u8>> {
        self.decode_stored(stored, raw_len, id, MAX_DELTA_DEPTH, None, what)
            .map(|(plain, _, _)| plain)
    }

    fn decode_stored(
        &self,
        stored: &[u8],
        raw_len: u32,
        id: &Id,
        limit: u8,
        mut root: Option<&mut Option<(Id, Vec<u8>)>>,
        what: &dyn Fn() -> String,
    ) -> Result<ReadBlob> {
        let (plain, depth, base) = match stored.first() {
            Some(&COMPRESSION_NONE) => (stored[1..].to_vec(), 0, None),
            Some(&COMPRESSION_ZSTD) => (
                crate::formats::compression::decompress(&stored[1..], raw_len as usize)
                    .map_err(|e| Error::format(what(), format!("zstd: {e}")))?,
                0,
                None,
            ),
            Some(&COMPRESSION_DELTA) => {
                let (depth, base, frame) =
                    delta_parts(stored).ok_or_else(|| Error::format(what(), "truncated delta"))?;
                if depth == 0 || depth > limit {
                    return Err(Error::format(
                        what(),
                        format!("delta depth {depth} (1 to {limit} allowed here)"),
                    ));
                }
                if self.index().get(&base).map(|l| l.kind) != Some(BlobKind::Data) {
                    return Err(Error::MissingBlob {
                        kind: "data",
                        id: base.short(),
                        context: format!(" (the base of {})", what()),
                    });
                }
                let (prefix, _, _) =
                    self.read_blob_rooted(&base, depth - 1, root.as_deref_mut())?;
                let plain = crate::formats::compression::decompress_against(
                    &prefix,
                    frame,
                    raw_len as usize,
                )
                .map_err(|e| Error::format(what(), format!("zstd: {e}")))?;
                (plain, depth, Some(base))
            }
            _ => return Err(Error::format(what(), "unknown compression")),
        };
        if plain.len() != raw_len as usize || self.blob_id(&plain) != *id {
            return Err(Error::corrupt(what()));
        }
        if depth == 0 {
            if let Some(r) = root {
                *r = Some((*id, plain.clone()));
            }
        }
        Ok((plain, depth, base))
    }

    /// Reads and decodes a tree: from the catalog when it holds it (and the index lists
    /// it, and its hash matches), else from the repository, remembering it in the catalog.
    pub fn load_tree(&self, id: &Id) -> Result<Tree> {
        let what = || format!("tree {}", id.short());
        let Some(a) = self.live_catalog() else {
            return self.load_tree_from_repository(id);
        };
        if self.index().get(id).is_some() {
            let pending = a.pending_trees.lock().unwrap().get(id).cloned();
            // Some(row's plaintext, None if the row does not open) when a row is held.
            let cached = match pending {
                Some(p) => Some(Some(p)),
                None => self
                    .with_catalog(|c| c.tree(id))
                    .flatten()
                    .map(|sealed| a.key.open_tree(id, &sealed)),
            };
            if let Some(opened) = cached {
                if let Some(bytes) = opened.filter(|b| self.blob_id(b) == *id) {
                    a.served.lock().unwrap().insert(*id);
                    return Tree::decode(&bytes, &what());
                }
                // A row that does not open (damaged, sealed under another key, moved from
                // another id) or holds other bytes: a miss. Replace it by the
                // repository's copy.
                let bytes = self.read_blob(id)?;
                self.with_catalog(|c| c.replace_tree(id, &a.key.seal_tree(id, &bytes)));
                return Tree::decode(&bytes, &what());
            }
        }
        let bytes = self.read_blob(id)?;
        let tree = Tree::decode(&bytes, &what())?;
        self.remember_tree(*id, bytes);
        Ok(tree)
    }

    /// Reads and decodes a tree from the repository itself, never from the catalog (for
    /// check and repair, which judge what the repository holds).
    pub fn load_tree_from_repository(&self, id: &Id) -> Result<Tree> {
        let bytes = self.read_blob(id)?;
        Tree::decode(&bytes, &format!("tree {}", id.short()))
    }

    /// Removes a snapshot file (forget). The data it used stays until prune.
    pub fn remove_snapshot(&self, id: &Id) -> Result<()> {
        self.require_full()?;
        if let Some(h) = &self.history {
            // Before the file goes, so that no listing can miss it unexplained.
            if let Err(e) = h.forgetting(id) {
                self.say(&format!("{e}: rollbacks are not watched for"));
            }
        }
        self.backend.remove(FileKind::Snapshot, &id.to_hex())?;
        self.with_catalog(|c| c.update_snapshots(&[], &[*id]));
        Ok(())
    }

    /// Stores a snapshot (the commit point of a backup) and returns its id.
    pub fn save_snapshot(&self, snap: &Snapshot) -> Result<Id> {
        let mut snap = snap.clone();
        snap.key = Some(self.key_name.clone());
        snap.access = self.is_put_only().then(|| PUT_ONLY.to_string());
        let json = serde_json::to_vec(&snap).expect("snapshot serializes");
        let bytes = seal_file(Magic::Snapshot, self.master.data_wrap(), &json);
        let id = Id::of_file(&bytes);
        self.backend
            .write(FileKind::Snapshot, &id.to_hex(), &bytes)?;
        if let (true, Some(log)) = (self.is_put_only(), &self.send_log) {
            if let Err(e) = log.add_snapshot(&id, &snap) {
                self.say(&format!("{e}: the next backup reads every file again"));
            }
        }
        if let Some(h) = &self.history {
            self.heed(h.saved(&id, &snap));
        }
        if let Some(a) = self.live_catalog() {
            let row = a.key.seal_snapshot(&id, &snap);
            self.with_catalog(|c| c.update_snapshots(&[row], &[]));
        }
        Ok(id)
    }

    /// Refuses a file sealed under a key epoch that was rotated away before it was
    /// written (by a key the rotation removed; see [`MasterKey::admits`]).
    fn admit(&self, envelope: &Envelope, name: &str, what: &str) -> Result<()> {
        let epoch = envelope.epoch();
        if self.master.admits(epoch, name) {
            return Ok(());
        }
        Err(Error::corrupt(format!(
            "{what} (sealed under key epoch {epoch}, but written after that epoch was \
             rotated away: by a key the rotation removed)"
        )))
    }

    /// Reads one snapshot by its full name.
    pub fn load_snapshot(&self, name: &str) -> Result<Snapshot> {
        let bytes = self.backend.read(FileKind::Snapshot, name)?;
        self.open_snapshot(name, &bytes).map(|(snap, _, _)| snap)
    }

    /// Reads the snapshot first taken as `id`, for ids kept outside the repository (an
    /// app restore's journal): the file of that name, or, when it is gone, the one
    /// snapshot whose `original` is `id`, since `key rotate --rewrite-data` renames the
    /// snapshots it re-seals. Returns the snapshot's current id.
    pub fn load_snapshot_first_taken_as(&self, id: &Id) -> Result<(Id, Snapshot)> {
        match self.load_snapshot(&id.to_hex()) {
            Err(Error::Backend(e)) if e.is_not_found() => {
                let mut found = self
                    .snapshots()?
                    .into_iter()
                    .filter(|(_, s)| s.original == Some(*id));
                match (found.next(), found.next()) {
                    (Some(one), None) => Ok(one),
                    _ => Err(Error::SnapshotNotFound(id.short())),
                }
            }
            r => r.map(|s| (*id, s)),
        }
    }

    /// Opens the bytes of the snapshot file `name`: the snapshot, its JSON as stored and
    /// its envelope.
    pub(crate) fn open_snapshot(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(Snapshot, Vec<u8>, Envelope)> {
        let what = format!("snapshot {}", short(name));
        if Id::of_file(bytes).to_hex() != name {
            return Err(Error::corrupt(&what));
        }
        let json = open_file(Magic::Snapshot, &self.master.data_keys()?, bytes, &what)?;
        let mut snap: Snapshot =
            serde_json::from_slice(&json).map_err(|e| Error::format(&what, e.to_string()))?;
        // Who sealed it is read from the envelope, never from the JSON: only a full key
        // can write a kind-1 envelope for a snapshot.
        let (_, envelope) = crate::formats::sealed::read_header(Magic::Snapshot, bytes, &what)?;
        self.admit(&envelope, name, &what)?;
        snap.access = envelope.is_public().then(|| PUT_ONLY.to_string());
        if snap.version != crate::formats::snapshot::SNAPSHOT_VERSION {
            return Err(Error::UnsupportedVersion {
                found: snap.version,
                supported: crate::formats::snapshot::SNAPSHOT_VERSION,
            });
        }
        Ok((snap, json, envelope))
    }

    /// All readable snapshots, oldest first. Damaged ones are left out (see
    /// [`Repository::snapshots_and_damage`]): one bad file must not hide the others.
    pub fn snapshots(&self) -> Result<Vec<(Id, Snapshot)>> {
        Ok(self.snapshots_and_damage()?.0)
    }

    /// All readable snapshots, oldest first, and the errors of those that could not be
    /// read (each naming its snapshot).
    ///
    /// The names are always listed from the repository. With a catalog, only the names
    /// it does not hold are read, and the catalog is brought in line: new snapshots are
    /// added to it, those whose names are gone (forgotten elsewhere) are removed.
    pub fn snapshots_and_damage(&self) -> Result<SnapshotsAndDamage> {
        let (snaps, damaged) = self.snapshots_and_damaged()?;
        Ok((snaps, damaged.into_iter().map(|d| d.error).collect()))
    }

    /// As [`Repository::snapshots_and_damage`], with the name of each damaged file.
    pub fn snapshots_and_damaged(&self) -> Result<SnapshotsAndDamaged> {
        self.require_full()?;
        let listed_at = crate::formats::history::now_ms();
        let names = self.backend.list(FileKind::Snapshot)?;
        let (Some(a), Some(cached)) = (self.live_catalog(), self.with_catalog(|c| c.snapshots()))
        else {
            let read = self.read_snapshots(&names)?;
            self.observe_snapshots(&names, &read.0, listed_at);
            return Ok(read);
        };
        let listed: HashSet<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
        let mut held = HashSet::new();
        let mut gone = Vec::new();
        let mut snaps = Vec::new();
        for row in cached {
            let hex = row.id.to_hex();
            if !listed.contains(hex.as_str()) {
                gone.push(row.id);
            } else if let Some(snap) = a.key.open_snapshot(&row) {
                held.insert(hex);
                snaps.push((row.id, snap));
            }
            // A listed row that does not open is a miss: the file is read below and its
            // row replaced.
        }
        let new: Vec<(String, u64)> = names
            .iter()
            .filter(|(n, _)| !held.contains(n))
            .cloned()
            .collect();
        let (added, damage) = self.read_snapshots(&new)?;
        if !added.is_empty() || !gone.is_empty() {
            let rows: Vec<_> = added
                .iter()
                .map(|(id, snap)| a.key.seal_snapshot(id, snap))
                .collect();
            self.with_catalog(|c| c.update_snapshots(&rows, &gone));
        }
        snaps.extend(added);
        snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        self.observe_snapshots(&names, &snaps, listed_at);
        Ok((snaps, damage))
    }

    /// Tells the history what a listing of snapshots taken at `listed_at` showed.
    pub(crate) fn observe_snapshots(
        &self,
        names: &[(String, u64)],
        snaps: &[(Id, Snapshot)],
        at: i64,
    ) {
        if let Some(h) = &self.history {
            let names: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
            self.heed(h.observe_snapshots(&names, snaps, at));
        }
    }

    /// Every snapshot read from the repository itself, never from the catalog (for check,
    /// prune and repair, which judge what the repository holds).
    pub fn snapshots_from_repository(&self) -> Result<SnapshotsAndDamage> {
        let listed_at = crate::formats::history::now_ms();
        let names = self.backend.list(FileKind::Snapshot)?;
        let (snaps, damaged) = self.read_snapshots(&names)?;
        self.observe_snapshots(&names, &snaps, listed_at);
        Ok((snaps, damaged.into_iter().map(|d| d.error).collect()))
    }

    /// Reads the named snapshot files: the readable ones, oldest first, and the damaged.
    fn read_snapshots(&self, names: &[(String, u64)]) -> Result<SnapshotsAndDamaged> {
        let loaded: Vec<Result<(Id, Snapshot)>> = names
            .par_iter()
            .map(|(name, _)| {
                let id = Id::from_hex(name)
                    .ok_or_else(|| Error::format("snapshots", format!("bad name {name}")))?;
                Ok((id, self.load_snapshot(name)?))
            })
            .collect();
        let mut snaps = Vec::new();
        let mut damage = Vec::new();
        for (r, (name, _)) in loaded.into_iter().zip(names) {
            match r {
                Ok(s) => snaps.push(s),
                Err(Error::Backend(e)) => return Err(Error::Backend(e)),
                Err(error) => damage.push(DamagedSnapshot {
                    name: name.clone(),
                    error,
                }),
            }
        }
        snaps.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok((snaps, damage))
    }

    /// Finds a snapshot by `latest` or a unique id prefix; fails if a damaged snapshot
    /// could be the one meant (see the `select` module).
    pub fn find_snapshot(&self, spec: &str) -> Result<(Id, Snapshot)> {
        self.select_snapshot(spec, &SnapshotFilter::default(), false)
    }

    /// Finds `latest` or the snapshot with the id prefix `spec` among those that match
    /// `filter`. A damaged snapshot that could be the one meant stops the choice, unless
    /// `skip_damaged` (see the `select` module).
    pub fn select_snapshot(
        &self,
        spec: &str,
        filter: &SnapshotFilter,
        skip_damaged: bool,
    ) -> Result<(Id, Snapshot)> {
        let (snaps, damaged) = self.snapshots_and_damaged()?;
        crate::select::select(snaps, &damaged, spec, filter, skip_damaged)
    }

    /// The key files.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        let mut out = Vec::new();
        for (name, _) in self.backend.list(FileKind::Key)? {
            let bytes = self.backend.read(FileKind::Key, &name)?;
            let kf = KeyFile::parse(&bytes, &name)?;
            let access = if kf.is_put_only() { "put-only" } else { "full" };
            out.push(KeyInfo {
                access,
                current: name == self.key_name,
                id: name,
                created: kf.created,
                hostname: kf.hostname,
                username: kf.username,
                params: kf.params,
            });
        }
        out.sort_by(|a, b| a.created.cmp(&b.created));
        Ok(out)
    }

    /// The name of the key file the repository was opened with.
    pub fn key_name(&self) -> &str {
        &self.key_name
    }

    /// Switches to a rotated master key and the key file that holds it.
    pub(crate) fn replace_master(&mut self, master: MasterKey, key_name: String) {
        self.master = master;
        self.key_name = key_name;
    }

    /// True when the repository was opened with a put-only key: it can add backups but
    /// not read packs or snapshots.
    pub fn is_put_only(&self) -> bool {
        self.master.is_put_only()
    }

    /// [`Error::PutOnly`] when the repository was opened with a put-only key. Called
    /// first by every operation that reads or removes what backups stored.
    pub fn require_full(&self) -> Result<()> {
        if self.is_put_only() {
            return Err(Error::PutOnly);
        }
        Ok(())
    }

    /// Adds a key file for another password; returns its name. A put-only key cannot
    /// add keys.
    pub fn add_key(&self, password: &Password, params: KdfParams) -> Result<String> {
        self.require_full()?;
        self.write_key_file(&self.master, password, params)
    }

    /// Adds a put-only key for another password (see [`MasterKey::put_only`]); returns
    /// its name. It needs a full key.
    pub fn add_put_only_key(&self, password: &Password, params: KdfParams) -> Result<String> {
        self.require_full()?;
        self.write_key_file(&self.master.put_only(), password, params)
    }

    /// Writes a key file wrapping `master` for `password`; returns its name.
    pub(crate) fn write_key_file(
        &self,
        master: &MasterKey,
        password: &Password,
        params: KdfParams,
    ) -> Result<String> {
        if password.is_empty() {
            return Err(Error::Invalid("an empty password is not allowed".into()));
        }
        let kf = KeyFile::create(
            master,
            password,
            params,
            &crate::platform::hostname(),
            &crate::platform::username(),
            now_rfc3339(),
        )?;
        let bytes = kf.to_bytes();
        let name = KeyFile::id(&bytes).to_hex();
        self.backend.write(FileKind::Key, &name, &bytes)?;
        Ok(name)
    }

    /// Removes a key file by id prefix. Refuses the key in use and the last key.
    pub fn remove_key(&self, prefix: &str) -> Result<String> {
        self.require_full()?;
        let keys = self.backend.list(FileKind::Key)?;
        let matches: Vec<_> = keys.iter().filter(|(n, _)| n.starts_with(prefix)).collect();
        let name = match matches.as_slice() {
            [one] => one.0.clone(),
            [] => return Err(Error::Invalid(format!("no key matches {prefix:?}"))),
            _ => return Err(Error::Invalid(format!("{prefix:?} matches several keys"))),
        };
        if name == self.key_name {
            return Err(Error::Invalid(
                "refusing to remove the key in use; open the repository with another key".into(),
            ));
        }
        self.backend.remove(FileKind::Key, &name)?;
        Ok(name)
    }

    /// Replaces the current key by one for a new password; returns the new key's name.
    pub fn change_password(&mut self, password: &Password, params: KdfParams) -> Result<String> {
        let name = self.write_key_file(&self.master, password, params)?;
        let old = std::mem::replace(&mut self.key_name, name.clone());
        self.backend.remove(FileKind::Key, &old)?;
        Ok(name)
    }
}

impl Repository {
    /// Every lock file of the repository that opens with this key; others are skipped.
    pub fn list_locks(&self) -> Result<Vec<FoundLock>> {
        lock::list(&self.backend, &self.master)
    }

    /// Takes a shared or exclusive lock for `command`, waiting up to `wait` for
    /// conflicting locks to go (see [`Lock`]).
    pub fn lock(&self, exclusive: bool, command: &str, wait: Duration) -> Result<Lock> {
        lock::take(&self.backend, &self.master, exclusive, command, wait)
    }
}

/// The contents of file nodes are read from the repository: data blobs through the
/// index, list blobs read, verified and decoded.
impl ContentSource for Repository {
    fn data_len(&self, id: &Id) -> Result<u64> {
        self.index()
            .get(id)
            .map(|l| l.raw_len as u64)
            .ok_or_else(|| Error::MissingBlob {
                kind: "data",
                id: id.short(),
                context: String::new(),
            })
    }

    fn list(&self, id: &Id) -> Result<Vec<Extent>> {
        let bytes = self.read_blob(id)?;
        decode_list(&bytes, &format!("list {}", id.short()))
    }

    fn data(&self, id: &Id) -> Result<Vec<u8>> {
        self.read_blob(id)
    }
}

/// Reads every distinct tree below `roots` through the catalog, so that it holds them all
/// (`cairn catalog rebuild`); returns how many distinct trees there are.
pub fn cache_trees(repo: &Repository, roots: impl IntoIterator<Item = Id>) -> Result<u64> {
    let mut seen = HashSet::new();
    let mut stack: Vec<Id> = roots.into_iter().collect();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for node in repo.load_tree(&id)?.nodes {
            if let NodeKind::Dir { subtree } = node.kind {
                stack.push(subtree);
            }
        }
    }
    repo.flush_catalog();
    Ok(seen.len() as u64)
}

/// Picks `latest` or the unique snapshot whose id starts with `spec` among `snaps`, which
/// the caller has read (and whose damage it has dealt with: see [`Repository::select_snapshot`]).
pub fn select_snapshot(
    snaps: Vec<(Id, Snapshot)>,
    damaged: &[DamagedSnapshot],
    spec: &str,
) -> Result<(Id, Snapshot)> {
    crate::select::select(snaps, damaged, spec, &SnapshotFilter::default(), false)
}

/// "data" or "tree".
pub(crate) fn kind_name(kind: BlobKind) -> &'static str {
    match kind {
        BlobKind::Data => "data",
        BlobKind::Tree => "tree",
    }
}

pub(crate) use crate::formats::id::short;

/// Names a blob in its pack for errors: "data blob 1a2b3c4d in pack 5e6f7a8b".
fn blob_in_pack(id: &Id, loc: &BlobLocation, pack: &PackInfo) -> String {
    format!(
        "{} blob {} in pack {}",
        kind_name(loc.kind),
        id.short(),
        pack.id.short()
    )
}

//! cairn-catalog: the core's [`Catalog`] port on SQLite.
//!
//! Main items:
//! - [`SqliteCatalog`]: one database file per repository, opened with [`SqliteCatalog::open`]
//!   at the path [`catalog_path`] gives (`<cache dir>/<repository id>/catalog.sqlite`, the
//!   cache dir from [`default_cache_dir`] unless the user names another).
//! - [`delete`]: removes a catalog and its journal files (`cairn catalog rebuild`).
//!
//! The ceremony, and why:
//! - **Schema version** in `PRAGMA user_version`, raised by **forward-only migrations**
//!   (`MIGRATIONS`), each applied in its own `BEGIN IMMEDIATE` transaction that re-reads
//!   the version first, so two processes opening a new catalog at once migrate it once. A
//!   catalog from a newer cairn is refused with a clear error (the caller goes on without
//!   it) rather than migrated backwards.
//! - **WAL** with `synchronous = NORMAL`: readers never wait for a writer, and a crash
//!   loses at most the last transactions, never consistency. That is enough for a cache:
//!   the repository is the truth and anything lost is read again.
//! - **`BEGIN IMMEDIATE`** for every write, and a **busy timeout**: concurrent cairn
//!   processes (a nightly backup while a `find` runs) queue for the write lock instead of
//!   failing half-way through a transaction.
//! - **Mode 0600** for the database (and so its journal files, which SQLite creates with
//!   the database's mode) in a 0700 directory.
//! - **Nothing in clear but ids and times**: this crate only stores what the port gives
//!   it, [`SnapshotRow`]s and tree bodies that cairn-core sealed (see
//!   [`cairn_core::CatalogKey`]); it never sees a file name or a snapshot's details.
//!   Schema version 1 held them in clear; migration 2 drops those tables, and a catalog
//!   upgraded from version 1 is then vacuumed and its WAL truncated (with
//!   `secure_delete` on during the upgrade), so the old clear text does not linger in
//!   free pages or old WAL frames.
//!
//! What it is not: not the truth about anything. Every row can be deleted at any time;
//! `cairn-core` reads the repository for whatever is missing and checks what it uses.

use cairn_core::{Catalog, CatalogInfo, Error, Id, Result, SnapshotRow};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// How long a write waits for another process's write to finish before failing. A
/// backup's catalog writes are short batches; a minute covers a rebuild elsewhere.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The migrations: `MIGRATIONS[i]` takes a catalog from schema version `i` to `i + 1`.
/// Append only; never edit one that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: snapshots and trees.
    "CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value TEXT NOT NULL
     );
     -- One row per snapshot file read from the repository. `json` is the snapshot as
     -- stored and the source of every other column; the columns are there to be queried.
     CREATE TABLE snapshots (
         id          BLOB PRIMARY KEY,  -- 32 bytes, the file's name
         time        TEXT NOT NULL,     -- RFC 3339, UTC
         unix_time   INTEGER NOT NULL,
         hostname    TEXT NOT NULL,
         username    TEXT NOT NULL,
         paths       TEXT NOT NULL,     -- JSON array
         tags        TEXT NOT NULL,     -- JSON array
         app         TEXT,
         parent      BLOB,
         tree        BLOB NOT NULL,
         files       INTEGER,           -- files in the snapshot
         dirs        INTEGER,
         bytes_total INTEGER,           -- size of its files and streams
         bytes_added INTEGER,           -- bytes it added to the repository, as stored
         json        TEXT NOT NULL
     );
     CREATE INDEX snapshots_by_time ON snapshots (unix_time);
     CREATE INDEX snapshots_by_host ON snapshots (hostname, unix_time);
     -- Tree blobs' plaintext: the per-file metadata of each distinct directory.
     CREATE TABLE trees (
         id   BLOB PRIMARY KEY,         -- 32 bytes, the blob id (keyed hash of body)
         body BLOB NOT NULL
     );",
    // 2: sealed rows. Version 1 held snapshots' details and trees' plaintext in clear;
    // its tables (and their indexes) go, rows and all: the catalog is a cache and the
    // repository is read again. Only ids and a snapshot's time stay in clear; the rest is
    // sealed by cairn-core under a key derived from the repository's id key.
    "DROP TABLE snapshots;
     DROP TABLE trees;
     CREATE TABLE snapshots (
         id        BLOB PRIMARY KEY,    -- 32 bytes, the file's name
         unix_time INTEGER NOT NULL,    -- the snapshot's time, seconds
         sealed    BLOB NOT NULL        -- the snapshot's JSON, sealed
     );
     CREATE TABLE trees (
         id     BLOB PRIMARY KEY,       -- 32 bytes, the blob id (keyed hash of the plaintext)
         sealed BLOB NOT NULL           -- the tree's plaintext, sealed
     );",
];

/// The first schema version that holds nothing in clear but ids and times. Opening a
/// catalog of an older version with rows in it also scrubs the file (see [`migrate`]).
const SEALED_SINCE: u32 = 2;

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The user's cache directory for cairn: `$XDG_CACHE_HOME/cairn`, else `~/.cache/cairn`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .map(|h| h.join(".cache"))
    })?;
    Some(base.join("cairn"))
}

/// Where the catalog of repository `repo_id` lives under `cache_dir`.
pub fn catalog_path(cache_dir: &Path, repo_id: &Id) -> PathBuf {
    cache_dir.join(repo_id.to_hex()).join("catalog.sqlite")
}

/// Removes a catalog and its journal files; a catalog that does not exist is no error.
pub fn delete(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(PathBuf::from(p), e)),
        }
    }
    Ok(())
}

/// A catalog in a SQLite database; see the crate documentation.
#[derive(Debug)]
pub struct SqliteCatalog {
    path: PathBuf,
    conn: Mutex<Connection>,
    replaced: Option<String>,
}

/// True for the errors of a file that is not a SQLite database or is a damaged one.
fn is_damage(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

/// True for "another connection holds the lock".
fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Why opening failed: SQLite's error (kept to tell damage from the rest), or a refusal.
enum OpenError {
    Sql(rusqlite::Error),
    Refused(Error),
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> OpenError {
        OpenError::Sql(e)
    }
}

impl From<Error> for OpenError {
    fn from(e: Error) -> OpenError {
        OpenError::Refused(e)
    }
}

impl OpenError {
    fn into_error(self, path: &Path) -> Error {
        match self {
            OpenError::Sql(e) => sql_error(path, e),
            OpenError::Refused(e) => e,
        }
    }
}

impl SqliteCatalog {
    /// Opens (creating if needed) the catalog at `path` for repository `repo_id`, and
    /// brings its schema up to date. A file that is not a database or a damaged one is
    /// replaced by a new, empty catalog (see [`SqliteCatalog::replaced`]). Refuses a
    /// catalog of another repository and one written by a newer cairn.
    pub fn open(path: &Path, repo_id: &Id) -> Result<SqliteCatalog> {
        let started = std::time::Instant::now();
        let mut opened = Self::open_once(path, repo_id);
        // Switching a new database to WAL takes a lock that SQLite does not wait for
        // (it returns "busy" at once when another process opens the same new file), so
        // opening waits for that itself, as long as writes wait.
        while matches!(&opened, Err(OpenError::Sql(e)) if is_busy(e))
            && started.elapsed() < BUSY_TIMEOUT
        {
            std::thread::sleep(Duration::from_millis(20));
            opened = Self::open_once(path, repo_id);
        }
        match opened {
            Ok(c) => Ok(c),
            Err(OpenError::Sql(e)) if is_damage(&e) => {
                delete(path)?;
                let mut c = Self::open_once(path, repo_id).map_err(|e| e.into_error(path))?;
                c.replaced = Some(e.to_string());
                Ok(c)
            }
            Err(e) => Err(e.into_error(path)),
        }
    }

    /// Why the catalog found at the path was replaced by an empty one, if it was.
    pub fn replaced(&self) -> Option<&str> {
        self.replaced.as_deref()
    }

    fn open_once(path: &Path, repo_id: &Id) -> std::result::Result<SqliteCatalog, OpenError> {
        if let Some(dir) = path.parent() {
            create_private_dir(dir)?;
            if let Some(cache_root) = dir.parent() {
                tag_cache_dir(cache_root);
            }
        }
        // Create the file with mode 0600 before SQLite does (it would use the umask).
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(path, e))?;
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        migrate(&mut conn, path)?;
        check_repository(&mut conn, path, repo_id)?;
        Ok(SqliteCatalog {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            replaced: None,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        sql_error(&self.path, e)
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction, committed if `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().unwrap();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let v = f(&tx).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(v)
    }
}

fn sql_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Catalog(format!("{}: {e}", path.display()))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

/// Marks the cache root with a `CACHEDIR.TAG` (bford.info/cachedir), so that backups of a
/// home directory with `--exclude-caches` leave the catalog out. Best effort. Mode 0600,
/// like everything else cairn creates.
fn tag_cache_dir(root: &Path) {
    let tag = root.join("CACHEDIR.TAG");
    if tag.exists() {
        return;
    }
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tag);
    if let Ok(mut f) = created {
        let _ = f.write_all(
            b"Signature: 8a477f597d28d172789f06886806bc55\n\
              # This file is a cache directory tag created by cairn.\n\
              # For information about cache directory tags see https://bford.info/cachedir/\n",
        );
    }
}

/// Applies the migrations the catalog lacks, one transaction each.
///
/// When this brings a catalog that held clear rows (version 1..[`SEALED_SINCE`]) past
/// them, the old clear text must not stay in the file: `secure_delete` is on while the
/// migrations run (SQLite then zeroes the pages the dropped tables free), and afterwards
/// the file is vacuumed (rewritten without free pages, so it also shrinks) and its WAL
/// checkpointed and truncated to nothing (old frames held clear pages too). Rejected:
/// leaving `secure_delete` on for good, which would cost every later delete a page write
/// to protect rows that are sealed anyway. The vacuum and truncation are best effort: if
/// another process holds the catalog open they may not complete, and the zeroed pages
/// are then what protects the main file.
fn migrate(conn: &mut Connection, path: &Path) -> std::result::Result<(), OpenError> {
    // Read outside the transactions below, so racy; it only decides the scrubbing, which
    // is harmless when another process migrated meanwhile.
    let start: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let scrub = (1..SEALED_SINCE).contains(&start);
    if scrub {
        conn.pragma_update(None, "secure_delete", true)?;
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: u32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(OpenError::Refused(Error::Catalog(format!(
                "{}: written by a newer cairn (schema {version}; this cairn knows up to \
                 {SCHEMA_VERSION})",
                path.display()
            ))));
        }
        if version == SCHEMA_VERSION {
            break;
        }
        tx.execute_batch(MIGRATIONS[version as usize])?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
    if scrub {
        conn.pragma_update(None, "secure_delete", false)?;
        let _ = conn.execute_batch("VACUUM");
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
    Ok(())
}

/// Records the repository id in a new catalog; refuses a catalog of another repository.
fn check_repository(
    conn: &mut Connection,
    path: &Path,
    repo_id: &Id,
) -> std::result::Result<(), OpenError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let held: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'repository'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match held {
        Some(id) if id != repo_id.to_hex() => {
            return Err(OpenError::Refused(Error::Catalog(format!(
                "{}: belongs to repository {}, not {}",
                path.display(),
                &id[..8.min(id.len())],
                repo_id.short()
            ))))
        }
        Some(_) => {}
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('repository', ?1)",
                [repo_id.to_hex()],
            )?;
        }
    }
    Ok(tx.commit()?)
}

fn id_from(bytes: Vec<u8>, col: usize) -> rusqlite::Result<Id> {
    <[u8; 32]>::try_from(bytes.as_slice()).map(Id).map_err(|_| {
        rusqlite::Error::InvalidColumnType(col, "id".into(), rusqlite::types::Type::Blob)
    })
}

impl Catalog for SqliteCatalog {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn snapshots(&self) -> Result<Vec<SnapshotRow>> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT id, unix_time, sealed FROM snapshots")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SnapshotRow {
                    id: id_from(r.get(0)?, 0)?,
                    unix_time: r.get(1)?,
                    sealed: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    fn update_snapshots(&self, add: &[SnapshotRow], remove: &[Id]) -> Result<()> {
        self.write(|tx| {
            let mut ins = tx.prepare_cached(
                "INSERT OR REPLACE INTO snapshots (id, unix_time, sealed) VALUES (?1, ?2, ?3)",
            )?;
            for row in add {
                ins.execute(params![row.id.0.as_slice(), row.unix_time, row.sealed])?;
            }
            let mut del = tx.prepare_cached("DELETE FROM snapshots WHERE id = ?1")?;
            for id in remove {
                del.execute([id.0.as_slice()])?;
            }
            Ok(())
        })
    }

    fn tree(&self, id: &Id) -> Result<Option<Vec<u8>>> {
        let conn = self.conn.lock().unwrap();
        let mut stmt = conn
            .prepare_cached("SELECT sealed FROM trees WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        stmt.query_row([id.0.as_slice()], |r| r.get(0))
            .optional()
            .map_err(|e| self.err(e))
    }

    fn put_trees(&self, trees: &[(Id, Vec<u8>)]) -> Result<()> {
        self.write(|tx| {
            let mut ins =
                tx.prepare_cached("INSERT OR IGNORE INTO trees (id, sealed) VALUES (?1, ?2)")?;
            for (id, sealed) in trees {
                ins.execute(params![id.0.as_slice(), sealed])?;
            }
            Ok(())
        })
    }

    fn replace_tree(&self, id: &Id, sealed: &[u8]) -> Result<()> {
        self.write(|tx| {
            tx.prepare_cached("INSERT OR REPLACE INTO trees (id, sealed) VALUES (?1, ?2)")?
                .execute(params![id.0.as_slice(), sealed])?;
            Ok(())
        })
    }

    fn retain_trees(&self, keep: &mut dyn FnMut(&Id) -> bool) -> Result<u64> {
        let ids: Vec<Id> = {
            let conn = self.conn.lock().unwrap();
            let mut stmt = conn
                .prepare_cached("SELECT id FROM trees")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| id_from(r.get(0)?, 0))
                .map_err(|e| self.err(e))?;
            rows.collect::<rusqlite::Result<_>>()
                .map_err(|e| self.err(e))?
        };
        let gone: Vec<Id> = ids.into_iter().filter(|id| !keep(id)).collect();
        if gone.is_empty() {
            return Ok(0);
        }
        self.write(|tx| {
            let mut del = tx.prepare_cached("DELETE FROM trees WHERE id = ?1")?;
            for id in &gone {
                del.execute([id.0.as_slice()])?;
            }
            Ok(gone.len() as u64)
        })
    }

    fn clear(&self) -> Result<()> {
        self.write(|tx| tx.execute_batch("DELETE FROM snapshots; DELETE FROM trees;"))
    }

    fn info(&self) -> Result<CatalogInfo> {
        let (snapshots, trees, tree_bytes) = {
            let conn = self.conn.lock().unwrap();
            let count = |sql: &str| -> Result<u64> {
                conn.query_row(sql, [], |r| r.get::<_, i64>(0))
                    .map(|n| n as u64)
                    .map_err(|e| self.err(e))
            };
            (
                count("SELECT count(*) FROM snapshots")?,
                count("SELECT count(*) FROM trees")?,
                count("SELECT coalesce(sum(length(sealed)), 0) FROM trees")?,
            )
        };
        let size = |suffix: &str| {
            let mut p = self.path.as_os_str().to_owned();
            p.push(suffix);
            std::fs::metadata(p).map_or(0, |m| m.len())
        };
        Ok(CatalogInfo {
            location: self.location(),
            schema_version: SCHEMA_VERSION,
            snapshots,
            trees,
            tree_bytes,
            file_bytes: size("") + size("-wal"),
        })
    }
}

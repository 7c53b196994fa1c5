//! SQLite: a consistent copy made with SQLite's online backup API while the application
//! may be writing, never a raw copy of a live file (which can be torn mid-write or miss
//! what is still in the `-wal` file). Restored by putting the file back in place.

use super::DumpInfo;
use crate::{Error, Result};
use cairn_core::StreamSource;
use rusqlite::{Connection, OpenFlags};
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the copy waits for a writer holding an exclusive lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// A SQLite database file to back up.
#[derive(Clone, Debug)]
pub struct Sqlite {
    path: PathBuf,
    /// The owner, group and mode a restored file gets when no file is there to keep
    /// them from.
    owner: Option<super::FileOwner>,
}

impl Sqlite {
    /// The database at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Sqlite {
        Sqlite {
            path: path.into(),
            owner: None,
        }
    }

    /// The same file, restored with `owner` when no file is there (see [`Sqlite::load`]).
    pub fn with_owner(mut self, owner: Option<super::FileOwner>) -> Sqlite {
        self.owner = owner;
        self
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> Result<Connection> {
        let what = |source| Error::Sqlite {
            what: format!("SQLite database {}", self.path.display()),
            source,
        };
        if !self.path.is_file() {
            return Err(Error::Database(format!(
                "SQLite database {}: no such file",
                self.path.display()
            )));
        }
        // Read-write without create: a database in WAL mode needs its -shm to read, and a
        // missing file must be an error, not a new empty database.
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(what)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(what)?;
        // Fails here, before the backup starts, if the file is not a database.
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(what)?;
        Ok(conn)
    }

    /// Whether the file exists and holds tables.
    pub fn state(&self) -> Result<super::TargetState> {
        if !self.path.exists() {
            return Ok(super::TargetState::Missing);
        }
        let n = self.tables()?.len();
        Ok(if n == 0 {
            super::TargetState::Empty
        } else {
            super::TargetState::Tables(n)
        })
    }

    /// Removes the file and its journals.
    pub fn remove(&self) -> Result<()> {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = self.path.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(PathBuf::from(p), e)),
            }
        }
        Ok(())
    }

    /// Puts a database file in place: written beside it, checked, then renamed over it
    /// (journals of the old file removed first, or SQLite would apply them to the new).
    pub fn load(&self, feed: &mut dyn FnMut(&mut dyn std::io::Write) -> Result<()>) -> Result<()> {
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".cairn-restore-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        feed(tmp.as_file_mut())?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| Error::io(tmp.path(), e))?;
        let check = Sqlite::new(tmp.path());
        let conn = check.open()?;
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(|source| Error::Sqlite {
                what: "restored SQLite database".into(),
                source,
            })?;
        if ok != "ok" {
            return Err(Error::Database(format!(
                "restored SQLite database fails its integrity check: {ok}"
            )));
        }
        drop(conn);
        // The file keeps the owner, group and mode of the one it replaces (else those
        // the snapshot recorded): a database owned by the web server's user must stay
        // readable by it.
        if let Some(o) = super::FileOwner::of(&self.path).or(self.owner) {
            use std::os::unix::fs::PermissionsExt;
            let now = super::FileOwner::of(tmp.path());
            if now.map(|n| (n.uid, n.gid)) != Some((o.uid, o.gid)) {
                std::os::unix::fs::chown(tmp.path(), Some(o.uid), Some(o.gid)).map_err(
                    |source| Error::Io {
                        what: format!(
                            "restored SQLite database {}: cannot give it owner {} and group \
                             {} as before",
                            self.path.display(),
                            o.uid,
                            o.gid
                        ),
                        source,
                    },
                )?;
            }
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(o.mode))
                .map_err(|e| Error::io(tmp.path(), e))?;
        }
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut p = self.path.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(&p);
        }
        tmp.persist(&self.path)
            .map_err(|e| Error::io(&self.path, e.error))?;
        Ok(())
    }

    /// Every table with its row count, read in one transaction.
    pub fn tables(&self) -> Result<Vec<super::TableCount>> {
        let mut conn = self.open()?;
        let what = |source| Error::Sqlite {
            what: format!("SQLite database {}", self.path.display()),
            source,
        };
        let tx = conn.transaction().map_err(what)?;
        let names: Vec<String> = {
            let mut st = tx
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )
                .map_err(what)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(what)?;
            rows.collect::<rusqlite::Result<_>>().map_err(what)?
        };
        names
            .into_iter()
            .map(|table| {
                let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
                let rows: i64 = tx.query_row(&sql, [], |r| r.get(0)).map_err(what)?;
                Ok(super::TableCount {
                    table,
                    rows: rows as u64,
                })
            })
            .collect()
    }

    /// Copies the database, consistently, into `dst` (a new file).
    pub fn copy_to(&self, dst: &Path) -> Result<()> {
        let src = self.open()?;
        let what = |source| Error::Sqlite {
            what: format!("copying SQLite database {}", self.path.display()),
            source,
        };
        let mut out = Connection::open(dst).map_err(what)?;
        let backup = rusqlite::backup::Backup::new(&src, &mut out).map_err(what)?;
        // All pages in one step, under one read transaction: the copy is one consistent
        // state. In steps, every write by another process would restart the copy, and a
        // busy application could keep it from ever finishing.
        let started = std::time::Instant::now();
        loop {
            match backup.step(-1).map_err(what)? {
                rusqlite::backup::StepResult::Done => return Ok(()),
                rusqlite::backup::StepResult::More => {}
                // A writer holds the lock: wait for it, as long as the busy timeout.
                _ if started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    return Err(Error::Database(format!(
                        "copying SQLite database {}: still locked by another process after {} s",
                        self.path.display(),
                        BUSY_TIMEOUT.as_secs()
                    )))
                }
            }
        }
    }

    /// A consistent copy in a new temporary file (removed when dropped).
    pub fn consistent_copy(&self) -> Result<tempfile::NamedTempFile> {
        drop(self.open()?);
        let tmp = tempfile::Builder::new()
            .prefix(".cairn-sqlite-")
            .tempfile()
            .map_err(|e| Error::io(std::env::temp_dir(), e))?;
        self.copy_to(tmp.path())?;
        Ok(tmp)
    }

    /// Like [`Sqlite::dump`], backing up `copy`, a consistent copy made before (see
    /// [`Sqlite::consistent_copy`]), which must stay until the backup is done.
    pub fn dump_copy(&self, copy: &Path) -> Result<(StreamSource, DumpInfo)> {
        let (path, info) = self.stream_info();
        let file = std::fs::File::open(copy).map_err(|e| Error::io(copy, e))?;
        Ok((
            StreamSource::Reader {
                name: path,
                reader: Box::new(file),
            },
            info,
        ))
    }

    /// See [`super::Database::dump`]. The copy is made when the core starts reading the
    /// stream (after any dump before it), into a temporary file that is removed after.
    pub fn dump(&self) -> Result<(StreamSource, DumpInfo)> {
        drop(self.open()?);
        let (path, info) = self.stream_info();
        let reader = CopyReader {
            db: self.clone(),
            copy: None,
        };
        Ok((
            StreamSource::Reader {
                name: path,
                reader: Box::new(reader),
            },
            info,
        ))
    }

    /// The stream's name in the snapshot and what the manifest records of it.
    fn stream_info(&self) -> (String, DumpInfo) {
        let name = self
            .path
            .file_name()
            .map(|n| super::file_name(&n.to_string_lossy()))
            .unwrap_or_else(|| "database.sqlite".into());
        let path = format!("db/sqlite/{name}");
        let info = DumpInfo {
            engine: "sqlite".into(),
            database: name.clone(),
            location: self.path.display().to_string(),
            server_version: rusqlite::version().to_string(),
            tool: format!("SQLite online backup API (SQLite {})", rusqlite::version()),
            format: "file".into(),
            restore_hint: format!(
                "stop the application, then: cairn dump SNAPSHOT /{path} > {}",
                self.path.display()
            ),
            path: format!("/{path}"),
            file: super::FileOwner::of(&self.path),
            charset: None,
        };
        (path, info)
    }
}

/// Makes the copy at the first read, then reads it.
struct CopyReader {
    db: Sqlite,
    copy: Option<tempfile::NamedTempFile>,
}

impl Read for CopyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.copy.is_none() {
            let tmp = tempfile::Builder::new()
                .prefix(".cairn-sqlite-")
                .tempfile()?;
            self.db
                .copy_to(tmp.path())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut tmp = tmp;
            // Reopen: the connection wrote through its own handle.
            let f = std::fs::File::open(tmp.path())?;
            *tmp.as_file_mut() = f;
            tmp.as_file_mut().rewind()?;
            self.copy = Some(tmp);
        }
        self.copy.as_mut().expect("made above").read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_a_database_being_written_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
             CREATE TABLE total (n INTEGER); INSERT INTO total VALUES (0);",
        )
        .unwrap();
        // A writer adds rows and keeps `total` equal to the row count, in transactions;
        // every copy must see the two agree.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut c = Connection::open(&path).unwrap();
                c.busy_timeout(Duration::from_secs(10)).unwrap();
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) || n < 200 {
                    let tx = c.transaction().unwrap();
                    tx.execute("INSERT INTO t (v) VALUES (?1)", [format!("row {n}")])
                        .unwrap();
                    tx.execute("UPDATE total SET n = n + 1", []).unwrap();
                    tx.commit().unwrap();
                    n += 1;
                }
                n
            })
        };
        let db = Sqlite::new(&path);
        let mut seen = Vec::new();
        for i in 0..6 {
            // Half the copies as a plain dump, half counted first (an application
            // backup): the counts must be those of the copy backed up.
            let counted = i % 2 == 1;
            let whole = super::super::Database::Sqlite(db.clone());
            let (counts, held) = if counted {
                let (t, h) = whole.tables_consistent().unwrap();
                assert!(h.is_exact());
                (Some(t), Some(h))
            } else {
                (None, None)
            };
            let (src, info) = match &held {
                Some(h) => whole.dump_with(h).unwrap(),
                None => db.dump().unwrap(),
            };
            assert_eq!(info.path, "/db/sqlite/app.sqlite");
            let StreamSource::Reader { mut reader, .. } = src else {
                panic!("a reader")
            };
            let mut bytes = Vec::new();
            reader.read_to_end(&mut bytes).unwrap();
            let out = dir.path().join(format!("copy{i}.sqlite"));
            std::fs::write(&out, &bytes).unwrap();
            let c = Connection::open(&out).unwrap();
            let rows: i64 = c
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .unwrap();
            let total: i64 = c
                .query_row("SELECT n FROM total", [], |r| r.get(0))
                .unwrap();
            assert_eq!(rows, total, "copy {i} is not one consistent state");
            if let Some(counts) = counts {
                let t = counts.iter().find(|c| c.table == "t").unwrap();
                assert_eq!(t.rows, rows as u64, "copy {i}: counts of another state");
            }
            let ok: String = c
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            assert_eq!(ok, "ok");
            seen.push(rows);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written = writer.join().unwrap();
        assert!(seen.iter().all(|&n| n <= written));
        drop(conn);
    }

    #[test]
    fn missing_and_bad_files_fail_before_the_backup() {
        let dir = tempfile::tempdir().unwrap();
        let e = Sqlite::new(dir.path().join("none.sqlite"))
            .dump()
            .unwrap_err();
        assert!(e.to_string().contains("no such file"), "{e}");
        let bad = dir.path().join("bad.sqlite");
        std::fs::write(&bad, vec![7u8; 4096]).unwrap();
        let e = Sqlite::new(&bad).dump().unwrap_err();
        assert!(e.to_string().contains("bad.sqlite"), "{e}");
        // Nothing was created where the missing file was asked for.
        assert!(!dir.path().join("none.sqlite").exists());
    }
}

//! The restore journal: what an application restore in progress has set out to change,
//! kept on the local disk so that a restore cut short (SIGKILL, power loss) is noticed
//! by the next `cairn app` command and can be rolled back or finished.
//!
//! One file per installation, `<dir>/<app>-<hash of the installation path>.json`, written
//! whole (a temporary file, fsync, rename, fsync of the directory) before the first
//! destructive step and removed when the restore has ended either way. It names the
//! snapshot being restored, the restore point that holds the state before, and each
//! database and path with what was there before. It holds no secret: databases are named
//! by engine, name and location; their credentials come from the installation's
//! configuration when the journal is acted on.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The journal format's version.
const VERSION: u32 = 1;

/// Where a restore is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Databases and files are being replaced by the snapshot's.
    Restoring,
    /// Something failed; everything is being put back as the restore point holds it.
    RollingBack,
}

/// What was at a database's place before the restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Before {
    /// Nothing: rolling back drops what the restore created.
    Missing,
    /// An empty database: rolling back leaves it empty.
    Empty,
    /// A database with tables, saved in the restore point.
    Tables,
}

/// One database the restore replaces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalDatabase {
    /// `postgresql`, `mariadb` or `sqlite`.
    pub engine: String,
    /// Its name (a file path for SQLite).
    pub name: String,
    /// Server and port, socket or file; never credentials.
    pub location: String,
    /// What was there before.
    pub before: Before,
    /// The restore point that holds its dump (full id), when `before` is `tables`.
    pub saved_in: Option<String>,
}

/// One path the restore writes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPath {
    /// Where the files go on this machine.
    pub path: String,
    /// The path in the snapshot being restored that is written there.
    pub from: String,
    /// Whether it existed before (then the restore point holds it, under `path`).
    pub existed: bool,
}

/// An application restore in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    /// The journal format's version.
    pub version: u32,
    /// The front-end, e.g. `idoit`.
    pub app: String,
    /// The installation directory being restored into.
    pub install: String,
    /// The repository's id.
    pub repository: String,
    /// The snapshot being restored (full id).
    pub snapshot: String,
    /// The restore point that holds what was there before (full id).
    pub restore_point: String,
    /// When the restore started (seconds since the epoch).
    pub started: u64,
    /// Where it is.
    pub phase: Phase,
    /// The databases it replaces, in order.
    pub databases: Vec<JournalDatabase>,
    /// The paths it writes, in order.
    pub paths: Vec<JournalPath>,
    /// The server accounts it creates (they did not exist): dropped by a rollback.
    #[serde(default)]
    pub accounts: Vec<JournalAccounts>,
}

/// Server accounts a restore creates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalAccounts {
    /// `mariadb` or `postgresql`.
    pub engine: String,
    /// The server, without credentials.
    pub location: String,
    /// The accounts.
    pub created: Vec<String>,
}

impl Journal {
    /// A new journal for restoring `snapshot` of `app` into `install`.
    pub fn new(app: &str, install: &Path, repository: &str, snapshot: &str) -> Journal {
        Journal {
            version: VERSION,
            app: app.to_string(),
            install: install.display().to_string(),
            repository: repository.to_string(),
            snapshot: snapshot.to_string(),
            restore_point: String::new(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            phase: Phase::Restoring,
            databases: Vec::new(),
            paths: Vec::new(),
            accounts: Vec::new(),
        }
    }

    /// The journal file of the installation of `app` at `install`, in `dir`.
    pub fn path_for(dir: &Path, app: &str, install: &Path) -> PathBuf {
        let key = blake3::hash(install.display().to_string().as_bytes()).to_hex();
        dir.join(format!("{app}-{}.json", &key[..16]))
    }

    /// The journal of the installation of `app` at `install`, if a restore of it was
    /// cut short. A journal that cannot be read is an error, never "no restore".
    pub fn find(dir: &Path, app: &str, install: &Path) -> Result<Option<Journal>> {
        Journal::read(&Journal::path_for(dir, app, install))
    }

    /// Every journal in `dir` of `app` (any installation), for a command that names an
    /// application but no directory.
    pub fn all_of(dir: &Path, app: &str) -> Result<Vec<Journal>> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io(dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with(&format!("{app}-")) && name.ends_with(".json") {
                if let Some(j) = Journal::read(&entry.path())? {
                    out.push(j);
                }
            }
        }
        out.sort_by(|a, b| a.install.cmp(&b.install));
        Ok(out)
    }

    fn read(path: &Path) -> Result<Option<Journal>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let j: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Restore(format!(
                "the restore journal {} cannot be read ({e}); an application restore was \
                 cut short there: look at it, then remove it by hand",
                path.display()
            ))
        })?;
        if j.version != VERSION {
            return Err(Error::Restore(format!(
                "the restore journal {} is of version {}, this cairn reads {VERSION}",
                path.display(),
                j.version
            )));
        }
        Ok(Some(j))
    }

    /// Writes the journal whole, durably, replacing the one before.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        remove_stale_temporaries(dir);
        let path = Journal::path_for(dir, &self.app, Path::new(&self.install));
        let mut tmp = tempfile::Builder::new()
            .prefix(".journal-")
            .tempfile_in(dir)
            .map_err(|e| Error::io(dir, e))?;
        let json = serde_json::to_vec_pretty(self).expect("a journal serializes");
        std::io::Write::write_all(tmp.as_file_mut(), &json)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io(tmp.path(), e))?;
        tmp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        sync_dir(dir)
    }

    /// Removes the journal: the restore has ended, one way or the other.
    pub fn remove(&self, dir: &Path) -> Result<()> {
        let path = Journal::path_for(dir, &self.app, Path::new(&self.install));
        match std::fs::remove_file(&path) {
            Ok(()) => sync_dir(dir),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// Removes the temporary files of journals whose writing was cut short (a kill between
/// creating and renaming one) once they are an hour old: a younger one may be another
/// restore's, being written now. They are never read; this only keeps the directory
/// tidy.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > std::time::Duration::from_secs(3600));
        if stale && e.file_name().to_string_lossy().starts_with(".journal-") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_is_found_for_its_installation_only_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::new("idoit", Path::new("/var/www/i-doit"), "r", "s");
        j.restore_point = "p".into();
        j.databases.push(JournalDatabase {
            engine: "mariadb".into(),
            name: "idoit_data".into(),
            location: "127.0.0.1:3306".into(),
            before: Before::Tables,
            saved_in: Some("p".into()),
        });
        j.save(dir.path()).unwrap();
        let found = Journal::find(dir.path(), "idoit", Path::new("/var/www/i-doit")).unwrap();
        assert_eq!(found.as_ref(), Some(&j));
        assert!(Journal::find(dir.path(), "idoit", Path::new("/srv/other"))
            .unwrap()
            .is_none());
        assert!(
            Journal::find(dir.path(), "kimai", Path::new("/var/www/i-doit"))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            Journal::all_of(dir.path(), "idoit").unwrap(),
            vec![j.clone()]
        );
        j.remove(dir.path()).unwrap();
        assert!(Journal::all_of(dir.path(), "idoit").unwrap().is_empty());
    }

    #[test]
    fn a_damaged_journal_is_an_error_not_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let install = Path::new("/opt/kimai");
        std::fs::write(Journal::path_for(dir.path(), "kimai", install), b"{\"vers").unwrap();
        let e = Journal::find(dir.path(), "kimai", install).unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
    }
}

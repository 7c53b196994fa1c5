//! What this client has seen of a repository, to tell when it goes back in time.
//!
//! Every file in a repository is sealed and named by its hash, so the storage cannot
//! change a byte unnoticed; but it can show an older state: delete the newest snapshots,
//! or put back an index file that a prune had removed. Each answer is valid on its own.
//! Only a memory of what was there before shows the rollback, and this is that memory,
//! kept on the client's own disk (the state directory, one file per repository):
//! - **the newest snapshot per host and application** seen in any listing, or saved here;
//! - **the index files** of the last listing, and those seen once that have gone since
//!   (index files are named by the hash of bytes that include a random nonce, so a name
//!   that comes back is the old file replayed, never a new one).
//!
//! A remembered newest snapshot that is no longer listed, when nothing as new has taken
//! its place for its host and application, and a gone index file that is listed again,
//! are **rollbacks**. Each is recorded as an alarm that stays in the file until the user
//! accepts the repository as it is (`cairn check --accept-rollback`): every command that
//! lists snapshots or index files warns about it, and `check` fails. Snapshots this
//! client forgets itself are recorded first, so its own `forget` raises nothing.
//!
//! Concurrent commands are expected (a `find` while a backup runs): every change is a
//! read-modify-write of the file under an exclusive `flock` on a lock file beside it, and
//! an observation carries the time its listing was taken, so a listing older than what
//! another process recorded since never counts as a rollback.
//!
//! The file is sealed under a key derived from the id key (which every key of the
//! repository holds and rotation never changes): it names hosts and applications, and a
//! local user who can write it can at worst make it unreadable, which is reported and
//! starts the memory anew.

use crate::error::{Error, Result};
use crate::formats::id::Id;
use crate::formats::snapshot::Snapshot;
use cairn_crypto::Key;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const AD: &[u8] = b"cairn history";
const VERSION: u32 = 1;
/// Names of gone index files are kept as prefixes of this many hex digits (64 bits:
/// enough to tell files apart, a quarter of the room).
const PREFIX: usize = 16;
/// Snapshots this client forgot are remembered this long (milliseconds): long enough for
/// every process that listed them before to have recorded what it saw.
const FORGOTTEN_FOR_MS: i64 = 7 * 24 * 3600 * 1000;

/// The file's contents.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct Seen {
    version: u32,
    /// The newest snapshot seen per host and application.
    newest: Vec<Newest>,
    /// Snapshots this client removed itself, with when (ms since the epoch).
    forgotten: BTreeMap<String, i64>,
    /// The index files of the newest listing, and when it was taken (ms since the epoch).
    index_listed: BTreeSet<String>,
    index_listed_at: i64,
    /// Prefixes of index files listed once and gone since, with when they were first
    /// missed (ms since the epoch).
    index_gone: BTreeMap<String, i64>,
    /// Rollbacks found and not yet accepted, one message each.
    alarms: Vec<String>,
}

/// The newest snapshot seen for one host and application.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
struct Newest {
    host: String,
    app: Option<String>,
    time: jiff::Timestamp,
    name: String,
    /// When this client first saw it (ms since the epoch).
    seen_at: i64,
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// The memory of one repository; see the module documentation.
pub struct History {
    path: PathBuf,
    key: Key,
    /// Alarms already shown by this process.
    said: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn describe(host: &str, app: &Option<String>) -> String {
    match app {
        Some(a) => format!("host {host}, application {a}"),
        None => format!("host {host}"),
    }
}

impl History {
    /// The history at `path`, sealed under a key derived from `id_key`.
    pub fn new(path: PathBuf, id_key: &Key) -> History {
        History {
            path,
            key: id_key.derive("cairn 2026 repository history"),
            said: Mutex::new(HashSet::new()),
        }
    }

    /// Where it is.
    #[cfg(test)]
    fn path(&self) -> &Path {
        &self.path
    }

    /// Decodes `bytes` as a history file, and as the plaintext of one (sealed here under
    /// this history's key); returns how many alarms each holds. For the fuzz target.
    pub(crate) fn decode_both(&self, bytes: &[u8]) -> (Option<usize>, Option<usize>) {
        let sealed = cairn_crypto::seal(&self.key, AD, bytes);
        (
            self.decode(bytes).map(|s| s.alarms.len()),
            self.decode(&sealed).map(|s| s.alarms.len()),
        )
    }

    /// Records a listing of index files taken at `listed_at`; returns the alarms this
    /// process has not shown yet (new ones and those recorded before).
    pub fn observe_index(&self, names: &[String], listed_at: i64) -> Result<Vec<String>> {
        self.update(|seen| {
            let now: BTreeSet<String> = names.iter().cloned().collect();
            for name in &now {
                if let Some(&gone_at) = seen.index_gone.get(&prefix(name)) {
                    // Missed by a listing taken before this one: it came back.
                    if gone_at < listed_at {
                        seen.alarm(format!(
                            "index file {} is listed again after it had gone: the \
                             repository may have been rolled back to an older state",
                            &name[..PREFIX.min(name.len())]
                        ));
                    }
                }
            }
            // Only a listing newer than the one remembered tells what has gone since.
            if listed_at >= seen.index_listed_at {
                for name in seen.index_listed.difference(&now) {
                    seen.index_gone.entry(prefix(name)).or_insert(listed_at);
                }
                seen.index_listed = now;
                seen.index_listed_at = listed_at;
            }
        })
    }

    /// Records a listing of snapshot names taken at `listed_at` and the readable
    /// snapshots among them; returns the alarms not shown yet.
    pub fn observe_snapshots(
        &self,
        names: &[String],
        snaps: &[(Id, Snapshot)],
        listed_at: i64,
    ) -> Result<Vec<String>> {
        self.update(|seen| {
            let listed: HashSet<&str> = names.iter().map(String::as_str).collect();
            let mut alarms = Vec::new();
            seen.newest.retain(|n| {
                if listed.contains(n.name.as_str()) || n.seen_at >= listed_at {
                    return true;
                }
                if seen.forgotten.contains_key(&n.name) {
                    return false; // forgotten here: the next newest takes its place
                }
                let replaced = snaps.iter().any(|(id, s)| {
                    s.hostname == n.host && s.app == n.app && s.time >= n.time && {
                        id.to_hex() != n.name
                    }
                });
                if !replaced {
                    alarms.push(format!(
                        "snapshot {} of {} ({}), the newest this machine had seen for it, \
                         is gone and nothing as new has replaced it: the repository may \
                         have been rolled back, or the snapshot was forgotten elsewhere",
                        &n.name[..8.min(n.name.len())],
                        describe(&n.host, &n.app),
                        n.time.strftime("%Y-%m-%d %H:%M:%S UTC"),
                    ));
                }
                // Keep it: the alarm stays until accepted, and an older snapshot must
                // not take its place in the meantime.
                !replaced
            });
            for a in alarms {
                seen.alarm(a);
            }
            for (id, s) in snaps {
                seen.saw(id, s, listed_at);
            }
        })
    }

    /// Records an index file this client has just removed (at `at`, after the removal).
    pub fn removed_index(&self, name: &str, at: i64) -> Result<()> {
        self.update(|seen| {
            seen.index_listed.remove(name);
            seen.index_gone.entry(prefix(name)).or_insert(at);
        })
        .map(drop)
    }

    /// Records a snapshot this client has just saved.
    pub fn saved(&self, id: &Id, snap: &Snapshot) -> Result<Vec<String>> {
        let at = now_ms();
        self.update(|seen| seen.saw(id, snap, at))
    }

    /// Records a snapshot this client is about to remove (forget).
    pub fn forgetting(&self, id: &Id) -> Result<()> {
        let at = now_ms();
        self.update(|seen| {
            seen.forgotten.insert(id.to_hex(), at);
        })
        .map(drop)
    }

    /// The alarms recorded and not yet accepted.
    pub fn alarms(&self) -> Result<Vec<String>> {
        Ok(self.read()?.alarms)
    }

    /// Accepts the repository as it is: drops the alarms and what they were about, so
    /// that the next listing is remembered afresh. Returns the alarms dropped.
    pub fn accept(&self) -> Result<Vec<String>> {
        let mut dropped = Vec::new();
        self.update(|seen| {
            dropped = std::mem::take(&mut seen.alarms);
            seen.newest.clear();
            seen.index_gone.clear();
            seen.index_listed.clear();
            seen.index_listed_at = 0;
        })?;
        Ok(dropped)
    }

    /// Applies `f` to the file's contents under the lock, writes them back when they
    /// changed, and returns the alarms this process has not shown yet.
    fn update(&self, f: impl FnOnce(&mut Seen)) -> Result<Vec<String>> {
        let _lock = self.lock()?;
        let (before, damaged) = match self.read() {
            Ok(seen) => (seen, None),
            Err(Error::Corrupt { what }) => (Seen::default(), Some(what)),
            Err(e) => return Err(e),
        };
        let mut seen = before.clone();
        f(&mut seen);
        let horizon = now_ms() - FORGOTTEN_FOR_MS;
        seen.forgotten.retain(|_, at| *at >= horizon);
        if seen != before {
            self.write(&seen)?;
        }
        let mut said = self.said.lock().unwrap();
        let damaged = damaged.map(|what| format!("{what} could not be read; started anew"));
        Ok(damaged
            .into_iter()
            .chain(
                seen.alarms
                    .iter()
                    .filter(|a| said.insert((*a).clone()))
                    .cloned(),
            )
            .collect())
    }

    fn lock(&self) -> Result<std::fs::File> {
        let mut p = self.path.as_os_str().to_owned();
        p.push(".lock");
        let lock_path = PathBuf::from(p);
        let io = |e| Error::io(&lock_path, e);
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir)?;
        }
        let f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&lock_path)
                .map_err(io)?
        };
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io(e.into()))?;
        Ok(f)
    }

    /// The contents; a missing file is an empty memory, and one that does not open (a
    /// damaged file, another repository's) is reported once and started anew.
    fn read(&self) -> Result<Seen> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Seen::default()),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        self.decode(&bytes)
            .ok_or_else(|| Error::corrupt(format!("repository history {}", self.path.display())))
    }

    fn decode(&self, bytes: &[u8]) -> Option<Seen> {
        let plain = cairn_crypto::open(&self.key, AD, bytes).ok()?;
        let seen: Seen = serde_json::from_slice(&plain).ok()?;
        (seen.version == VERSION).then_some(seen)
    }

    fn write(&self, seen: &Seen) -> Result<()> {
        let mut seen = seen.clone();
        seen.version = VERSION;
        let json = serde_json::to_vec(&seen).expect("history serializes");
        let sealed = cairn_crypto::seal(&self.key, AD, &json);
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let io = |e| Error::io(&tmp, e);
        let mut f = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io)?
        };
        f.write_all(&sealed).map_err(io)?;
        f.sync_data().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(|e| Error::io(&self.path, e))
    }
}

impl Seen {
    fn alarm(&mut self, msg: String) {
        if !self.alarms.contains(&msg) {
            self.alarms.push(msg);
        }
    }

    /// Remembers `snap` if it is the newest seen for its host and application.
    fn saw(&mut self, id: &Id, snap: &Snapshot, at: i64) {
        let name = id.to_hex();
        if self.forgotten.contains_key(&name) {
            return;
        }
        let entry = self
            .newest
            .iter_mut()
            .find(|n| n.host == snap.hostname && n.app == snap.app);
        let fresh = Newest {
            host: snap.hostname.clone(),
            app: snap.app.clone(),
            time: snap.time,
            name,
            seen_at: at,
        };
        match entry {
            None => self.newest.push(fresh),
            Some(n) if snap.time > n.time => *n = fresh,
            Some(_) => {}
        }
    }
}

fn prefix(name: &str) -> String {
    name[..PREFIX.min(name.len())].to_string()
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(host: &str, secs: i64) -> Snapshot {
        crate::formats::snapshot::sample(host, secs, &[], None)
    }

    fn hist() -> (tempfile::TempDir, History) {
        let dir = tempfile::tempdir().unwrap();
        let h = History::new(dir.path().join("state").join("history"), &Key::random());
        (dir, h)
    }

    #[test]
    fn a_newest_snapshot_that_goes_raises_an_alarm_that_stays() {
        let (_d, h) = hist();
        let a = (Id([1; 32]), snap("web", 100));
        let b = (Id([2; 32]), snap("web", 200));
        let names = |v: &[&(Id, Snapshot)]| v.iter().map(|(i, _)| i.to_hex()).collect::<Vec<_>>();
        let t = now_ms();
        assert!(h
            .observe_snapshots(&names(&[&a, &b]), &[a.clone(), b.clone()], t)
            .unwrap()
            .is_empty());
        // b is gone, a is back as the newest: a rollback.
        let said = h
            .observe_snapshots(&names(&[&a]), std::slice::from_ref(&a), t + 1)
            .unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains(&b.0.to_hex()[..8]), "{said:?}");
        // Said once per process, kept in the file.
        assert!(h
            .observe_snapshots(&names(&[&a]), std::slice::from_ref(&a), t + 2)
            .unwrap()
            .is_empty());
        assert_eq!(h.alarms().unwrap().len(), 1);
        // A new process says it again.
        let again = History {
            path: h.path.clone(),
            key: h.key.clone(),
            said: Mutex::new(HashSet::new()),
        };
        assert_eq!(
            again
                .observe_snapshots(&names(&[&a]), std::slice::from_ref(&a), t + 3)
                .unwrap()
                .len(),
            1
        );
        // Accepted: gone, and the next listing is remembered afresh.
        assert_eq!(h.accept().unwrap().len(), 1);
        assert!(h.alarms().unwrap().is_empty());
        assert!(h
            .observe_snapshots(&names(&[&a]), std::slice::from_ref(&a), t + 4)
            .unwrap()
            .is_empty());
        assert!(h.alarms().unwrap().is_empty());
    }

    #[test]
    fn forgetting_here_a_newer_one_and_an_older_listing_raise_nothing() {
        let (_d, h) = hist();
        let a = (Id([1; 32]), snap("web", 100));
        let b = (Id([2; 32]), snap("web", 200));
        let c = (Id([3; 32]), snap("web", 300));
        let t = now_ms();
        h.observe_snapshots(&[a.0.to_hex(), b.0.to_hex()], &[a.clone(), b.clone()], t)
            .unwrap();
        // Forgotten by this client.
        h.forgetting(&b.0).unwrap();
        h.observe_snapshots(&[a.0.to_hex()], std::slice::from_ref(&a), t + 1)
            .unwrap();
        assert!(h.alarms().unwrap().is_empty());
        // A newer snapshot replaces the newest (retention forgot the older elsewhere).
        // The clock is read before `saved` reads it, so the older listing below is
        // older than c's record however slowly a busy machine runs the test.
        let before_c = now_ms();
        h.saved(&c.0, &c.1).unwrap();
        let seen_c = now_ms();
        h.observe_snapshots(&[c.0.to_hex()], std::slice::from_ref(&c), seen_c + 1)
            .unwrap();
        assert!(h.alarms().unwrap().is_empty());
        // A listing taken before c was saved (a command that ran alongside the backup).
        h.observe_snapshots(&[a.0.to_hex()], std::slice::from_ref(&a), before_c - 1)
            .unwrap();
        assert!(h.alarms().unwrap().is_empty(), "{:?}", h.alarms());
    }

    #[test]
    fn a_gone_index_file_that_comes_back_raises_an_alarm() {
        let (_d, h) = hist();
        let x = "aa".repeat(32);
        let y = "bb".repeat(32);
        let t = now_ms();
        h.observe_index(&[x.clone(), y.clone()], t).unwrap();
        h.observe_index(std::slice::from_ref(&y), t + 1).unwrap(); // x pruned
                                                                   // A listing taken before the prune still shows x: not a rollback.
        assert!(h
            .observe_index(&[x.clone(), y.clone()], t)
            .unwrap()
            .is_empty());
        h.observe_index(std::slice::from_ref(&y), t + 2).unwrap();
        // An older listing that did not show z yet does not make z gone.
        let z = "cc".repeat(32);
        h.observe_index(&[y.clone(), z.clone()], t + 3).unwrap();
        h.observe_index(std::slice::from_ref(&y), t + 2).unwrap();
        assert!(h
            .observe_index(&[y.clone(), z.clone()], t + 4)
            .unwrap()
            .is_empty());
        assert!(h.alarms().unwrap().is_empty());
        let said = h.observe_index(&[x.clone(), y.clone()], t + 5).unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains(&x[..16]));
    }

    #[test]
    fn a_damaged_file_is_reported_once_and_the_memory_starts_anew() {
        let (_d, h) = hist();
        let a = (Id([1; 32]), snap("web", 100));
        h.saved(&a.0, &a.1).unwrap();
        let mut bytes = std::fs::read(h.path()).unwrap();
        bytes[30] ^= 1;
        std::fs::write(h.path(), &bytes).unwrap();
        let said = h
            .observe_snapshots(&[a.0.to_hex()], std::slice::from_ref(&a), now_ms())
            .unwrap();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("started anew"), "{said:?}");
        // Rewritten whole: readable again, with what this look saw.
        assert!(h.alarms().unwrap().is_empty());
        assert!(h
            .observe_snapshots(&[a.0.to_hex()], std::slice::from_ref(&a), now_ms())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn the_file_holds_nothing_in_clear_and_another_key_cannot_read_it() {
        let (_d, h) = hist();
        let a = (Id([1; 32]), snap("secret-host-name", 100));
        h.saved(&a.0, &a.1).unwrap();
        let bytes = std::fs::read(h.path()).unwrap();
        assert!(!bytes.windows(16).any(|w| w == b"secret-host-name"));
        let other = History::new(h.path().to_path_buf(), &Key::random());
        assert!(other.alarms().is_err());
    }
}

//! Locks: who is using a repository, so that prune never deletes what a running backup,
//! restore or check needs.
//!
//! Every command that reads or adds data takes a *shared* lock; prune takes an
//! *exclusive* one. A lock is a small sealed file in `locks/` (magic `CRNl`, JSON body,
//! named like every file by the hash of its bytes) saying who holds it and when it was
//! last refreshed. The holder rewrites it every [`REFRESH_EVERY`]; a lock not refreshed
//! for [`STALE_AFTER`], or held by a process of this host that no longer runs, is stale
//! and ignored (and removed when possible). So a crashed process never needs a manual
//! unlock: its lock stops counting by itself.
//!
//! Taking a lock: write the own lock file, then list the others. Two processes that do
//! this concurrently each write before listing, so at least one sees the other.
//! - A shared lock conflicts with a live exclusive lock: the shared taker removes its
//!   own file, waits and tries again, so a prune that waits is not starved.
//! - An exclusive lock conflicts with any other live lock. Against shared locks it
//!   keeps its file (new shared takers now wait for it) and waits for them to go.
//!   Between two exclusive takers the later one (by creation time, then name) backs off.
//!
//! Waiting ends after the caller's `wait`, with [`Error::Locked`] naming the holder.
//! Hosts that share a repository must have clocks that agree within minutes.

use crate::backend::{Backend, FileKind};
use crate::error::{Error, Result};
use crate::formats::id::{short, Id};
use crate::formats::keys::MasterKey;
use crate::formats::sealed::{open_file, seal_file, Magic, Wrap};
use cairn_crypto::Key;
use serde::{Deserialize, Serialize};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a holder rewrites its lock.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);

/// Lock JSON version.
pub const LOCK_VERSION: u32 = 1;

/// The body of a lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// JSON version (1).
    pub version: u32,
    /// Exclusive (prune) or shared (everything else).
    pub exclusive: bool,
    /// The command holding it, e.g. "backup".
    pub command: String,
    /// Host of the holder.
    pub hostname: String,
    /// User of the holder.
    pub username: String,
    /// Process id of the holder on its host.
    pub pid: u32,
    /// When the holder first took the lock.
    pub created: jiff::Timestamp,
    /// When the holder last refreshed it.
    pub refreshed: jiff::Timestamp,
    /// Random, so that two locks never share a name.
    pub nonce: String,
}

impl LockInfo {
    fn describe(&self) -> String {
        format!(
            "{} lock of `{}` by {}@{} (pid {}) since {}",
            if self.exclusive {
                "an exclusive"
            } else {
                "a shared"
            },
            self.command,
            self.username,
            self.hostname,
            self.pid,
            self.created.strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    }

    /// True when the lock still counts at `now` as seen from `host`.
    pub fn is_live(&self, now: jiff::Timestamp, host: &str) -> bool {
        let age = now.duration_since(self.refreshed);
        if age > jiff::SignedDuration::try_from(STALE_AFTER).expect("small duration") {
            return false;
        }
        if self.hostname == host && !process_exists(self.pid) {
            return false;
        }
        true
    }
}

fn process_exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    // EPERM: it exists but belongs to someone else.
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

/// A lock file as found in the repository.
#[derive(Clone, Debug)]
pub struct FoundLock {
    /// Its file name.
    pub name: String,
    /// Its contents.
    pub info: LockInfo,
}

struct Held {
    backend: Arc<dyn Backend>,
    key: Key,
    epoch: u32,
    info: LockInfo,
    name: String,
}

impl Held {
    fn write(&mut self) -> Result<()> {
        let bytes = encode(&self.key, self.epoch, &self.info);
        let name = Id::of_file(&bytes).to_hex();
        self.backend.write(FileKind::Lock, &name, &bytes)?;
        let old = std::mem::replace(&mut self.name, name);
        if !old.is_empty() {
            // Best effort: on storage that refuses deletes the old file goes stale.
            let _ = self.backend.remove(FileKind::Lock, &old);
        }
        Ok(())
    }

    fn refresh(&mut self) -> Result<()> {
        self.info.refreshed = jiff::Timestamp::now();
        self.write()
    }

    fn release(&mut self) {
        if !self.name.is_empty() {
            let _ = self.backend.remove(FileKind::Lock, &self.name);
            self.name.clear();
        }
    }
}

fn encode(key: &Key, epoch: u32, info: &LockInfo) -> Vec<u8> {
    let json = serde_json::to_vec(info).expect("lock serializes");
    seal_file(Magic::Lock, Wrap::Key(key, epoch), &json)
}

/// A lock held on a repository; released when dropped. A thread refreshes it.
pub struct Lock {
    held: Arc<Mutex<Held>>,
    stop: Option<Sender<()>>,
    refresher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let h = self.held.lock().unwrap();
        f.debug_struct("Lock")
            .field("exclusive", &h.info.exclusive)
            .field("name", &h.name)
            .finish()
    }
}

impl Lock {
    /// True for an exclusive lock.
    pub fn is_exclusive(&self) -> bool {
        self.held.lock().unwrap().info.exclusive
    }

    /// Refuses a shared lock for `what` (prune, repair, rotation, the data rewrite), which
    /// changes what other clients read.
    pub fn require_exclusive(&self, what: &str) -> crate::error::Result<()> {
        if self.is_exclusive() {
            return Ok(());
        }
        Err(crate::error::Error::Invalid(format!(
            "{what} needs the exclusive lock"
        )))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        self.held.lock().unwrap().release();
    }
}

/// Every lock file in `backend` that opens with one of `master`'s metadata keys; others
/// are skipped.
pub(crate) fn list(backend: &Arc<dyn Backend>, master: &MasterKey) -> Result<Vec<FoundLock>> {
    let mut out = Vec::new();
    for (name, _) in backend.list(FileKind::Lock)? {
        let bytes = match backend.read(FileKind::Lock, &name) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => continue, // released meanwhile
            Err(e) => return Err(e.into()),
        };
        let what = format!("lock {}", short(&name));
        let info = open_file(Magic::Lock, &master.meta_keys(), &bytes, &what)
            .ok()
            .and_then(|plain| serde_json::from_slice::<LockInfo>(&plain).ok());
        if let Some(info) = info {
            out.push(FoundLock { name, info });
        }
    }
    Ok(out)
}

/// Takes a shared or exclusive lock in `backend` for `command`, sealed under `master`'s
/// metadata key, waiting up to `wait` for conflicting locks to go (see the module
/// documentation).
pub(crate) fn take(
    backend: &Arc<dyn Backend>,
    master: &MasterKey,
    exclusive: bool,
    command: &str,
    wait: Duration,
) -> Result<Lock> {
    let now = jiff::Timestamp::now();
    let host = crate::platform::hostname();
    let mut held = Held {
        backend: backend.clone(),
        key: master.meta_key.clone(),
        epoch: master.epoch(),
        info: LockInfo {
            version: LOCK_VERSION,
            exclusive,
            command: command.to_string(),
            hostname: host.clone(),
            username: crate::platform::username(),
            pid: std::process::id(),
            created: now,
            refreshed: now,
            nonce: {
                let mut n = [0u8; 16];
                cairn_crypto::random_bytes(&mut n);
                hex::encode(n)
            },
        },
        name: String::new(),
    };
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(200);
    let mut last_write = Instant::now();
    held.write()?;
    loop {
        let now = jiff::Timestamp::now();
        let (live, stale): (Vec<FoundLock>, Vec<FoundLock>) = list(backend, master)?
            .into_iter()
            .filter(|l| l.name != held.name)
            .partition(|l| l.info.is_live(now, &host));
        for l in stale {
            // Left by a process that crashed or was killed; best effort, as the
            // storage may refuse deletes.
            let _ = backend.remove(FileKind::Lock, &l.name);
        }
        let conflict = live.into_iter().find(|l| {
            if !exclusive {
                l.info.exclusive
            } else {
                !l.info.exclusive || (l.info.created, &l.name) < (held.info.created, &held.name)
            }
        });
        let Some(conflict) = conflict else {
            break;
        };
        if Instant::now() >= deadline {
            held.release();
            return Err(Error::Locked(format!(
                "repository is locked: {}",
                conflict.info.describe()
            )));
        }
        // Back off (shared against exclusive, exclusive against an earlier
        // exclusive); an exclusive taker waiting for shared locks keeps its file.
        let back_off = !exclusive || conflict.info.exclusive;
        if back_off {
            held.release();
        }
        let mut r = [0u8; 1];
        cairn_crypto::random_bytes(&mut r);
        let jitter = Duration::from_millis(u64::from(r[0]));
        std::thread::sleep(
            (pause + jitter).min(deadline.saturating_duration_since(Instant::now())),
        );
        pause = (pause * 2).min(Duration::from_secs(5));
        if back_off {
            held.info.created = jiff::Timestamp::now();
            held.refresh()?;
            last_write = Instant::now();
        } else if last_write.elapsed() >= REFRESH_EVERY {
            held.refresh()?;
            last_write = Instant::now();
        }
    }
    let held = Arc::new(Mutex::new(held));
    let (stop, stopped) = channel::<()>();
    let h = held.clone();
    let refresher = std::thread::Builder::new()
        .name("cairn-lock".into())
        .spawn(move || loop {
            match stopped.recv_timeout(REFRESH_EVERY) {
                Err(RecvTimeoutError::Timeout) => {
                    // A failed refresh is retried at the next tick; the lock
                    // stays live until STALE_AFTER, six ticks away.
                    let _ = h.lock().unwrap().refresh();
                }
                _ => return,
            }
        })
        .map_err(|e| Error::io("lock refresh thread", e))?;
    Ok(Lock {
        held,
        stop: Some(stop),
        refresher: Some(refresher),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(host: &str, pid: u32, age_secs: i64) -> LockInfo {
        let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(age_secs);
        LockInfo {
            version: 1,
            exclusive: true,
            command: "prune".into(),
            hostname: host.into(),
            username: "u".into(),
            pid,
            created: t,
            refreshed: t,
            nonce: "n".into(),
        }
    }

    #[test]
    fn liveness() {
        let now = jiff::Timestamp::now();
        let me = std::process::id();
        assert!(info("h", me, 0).is_live(now, "h"));
        assert!(info("other", 1, 60).is_live(now, "h"), "other host, fresh");
        assert!(
            !info("other", 1, STALE_AFTER.as_secs() as i64 + 1).is_live(now, "h"),
            "not refreshed for too long"
        );
        // A process of this host that is gone: stale at once.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!info("h", pid, 0).is_live(now, "h"));
        assert!(
            info("other", pid, 0).is_live(now, "h"),
            "a pid means nothing on another host"
        );
    }
}

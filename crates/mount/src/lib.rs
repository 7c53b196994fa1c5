//! cairn-mount: the snapshots of a repository as a read-only file system (FUSE), for
//! `cairn mount MOUNTPOINT`. The layout is in docs/mount.md.
//!
//! Main items:
//! - [`serve`]: mounts the file system, serves it until it is unmounted from outside or
//!   SIGINT/SIGTERM arrives, then unmounts it; says how it [`Ended`].
//! - [`check_mountpoint`]: what can be said before the repository is opened (and a
//!   password asked for): whether this machine can mount at all, and whether the mount
//!   point is usable.
//! - [`Shown`]: a snapshot with the name of its directory; [`AppGroup`]: a directory of
//!   `apps/` and which snapshots it holds.
//! - [`Error`]: each failure as one line saying what to do about it.
//!
//! FUSE is reached through the `fuser` crate without libfuse: as root it mounts with
//! mount(2), otherwise through the setuid `fusermount3` of the fuse3 package. What can
//! fail before anything is served (no /dev/fuse, no permission, no fusermount3, a bad
//! mount point) is said in one line, at once.
//!
//! What it is not: it selects no snapshots and reads no config file (the caller chooses
//! the snapshots and the application groups, and holds the repository's lock while
//! [`serve`] runs); it never writes to the repository.

mod fs;

use cairn_core::{Id, Repository, Snapshot};
use fs::CairnFs;
pub use fs::Shown;
pub use fs::{AppGroup, Event};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What can go wrong, each as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// There is no FUSE device.
    #[error(
        "FUSE is not available here: {DEV_FUSE} is missing (load the fuse module with \
         `modprobe fuse`, or install fuse3; in a container, pass --device /dev/fuse)"
    )]
    NoFuse,
    /// The mount point is not a directory.
    #[error("cannot mount at {}: it is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// The mount point cannot be read.
    #[error("cannot mount at {}: {source}", path.display())]
    Mountpoint {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Mounting failed; the message says why and what to do about it.
    #[error("{0}")]
    Mount(String),
    /// The file system could not be unmounted after a signal (and not detached either).
    #[error("cannot unmount {}: {source}", path.display())]
    Unmount {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file system ended with an error.
    #[error("the file system ended with an error: {0}")]
    Ended(#[source] std::io::Error),
    /// Setting up the signal handling failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How [`serve`] ended (without error).
#[derive(Debug)]
pub enum Ended {
    /// Unmounted from outside, or after a signal.
    Unmounted,
    /// After a signal the mount point was busy (a shell's working directory inside, a
    /// file open): it was detached, and goes away when the last program using it ends.
    /// The reason it was busy.
    Detached(String),
}

/// The FUSE device the kernel offers.
const DEV_FUSE: &str = "/dev/fuse";

/// Whether this machine can mount at all, and whether the mount point is a directory.
pub fn check_mountpoint(mountpoint: &Path) -> Result<()> {
    if !Path::new(DEV_FUSE).exists() {
        return Err(Error::NoFuse);
    }
    match std::fs::metadata(mountpoint) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::NotADirectory(mountpoint.to_path_buf())),
        Err(source) => Err(Error::Mountpoint {
            path: mountpoint.to_path_buf(),
            source,
        }),
    }
}

/// Mounts `snaps` (oldest first) and `apps` at `mountpoint`, read-only, and serves them
/// until the file system is unmounted from outside or SIGINT/SIGTERM arrives (then it
/// unmounts it). `mounted` is called once the file system is up. The repository's index
/// must be loaded.
pub fn serve(
    repo: Arc<Repository>,
    snaps: Vec<Shown>,
    apps: Vec<AppGroup>,
    mountpoint: &Path,
    allow_other: bool,
    mounted: &dyn Fn(),
) -> Result<Ended> {
    let (tx, rx) = std::sync::mpsc::channel();
    let filesystem = CairnFs::new(repo, snaps, apps, tx.clone());
    let mut config = fuser::Config::default();
    config.mount_options = vec![
        fuser::MountOption::RO,
        fuser::MountOption::FSName("cairn".into()),
        fuser::MountOption::Subtype("cairn".into()),
        // The kernel checks each entry's mode and owner, as on the restored files.
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
    ];
    if allow_other {
        config.acl = fuser::SessionACL::All;
    }
    let session = match fuser::spawn_mount(filesystem, mountpoint, &config) {
        Ok(session) => session,
        Err(e) => return Err(Error::Mount(mount_error(mountpoint, &e))),
    };

    // Signals are taken only now: before, Ctrl-C ends cairn as usual.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let signal_handle = signals.handle();
    let forward = tx;
    let signal_thread = std::thread::Builder::new()
        .name("cairn-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = forward.send(Event::Signal);
            }
        })?;
    mounted();

    let event = loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(ev) => break ev,
            // The session ends by itself only when unmounted; `destroy` says so, and
            // this catches a session thread that ended without it.
            Err(_) if session.guard.is_finished() => break Event::Unmounted,
            Err(_) => continue,
        }
    };
    signal_handle.close();
    let _ = signal_thread.join();
    match event {
        Event::Signal => match session.umount_and_join() {
            Ok(()) => Ok(Ended::Unmounted),
            Err(e) => {
                // Busy (a shell's working directory inside, a file open): detach it,
                // so that it goes as soon as the last user leaves.
                let detached = cairn_core::command("fusermount3")
                    .args(["-u", "-z", "--"])
                    .arg(mountpoint)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|st| st.success());
                if detached {
                    Ok(Ended::Detached(e.to_string()))
                } else {
                    Err(Error::Unmount {
                        path: mountpoint.to_path_buf(),
                        source: e,
                    })
                }
            }
        },
        Event::Unmounted => session
            .join()
            .map(|()| Ended::Unmounted)
            .map_err(Error::Ended),
    }
}

impl Shown {
    /// A snapshot under the name `<local time>_<short id>`: sorts by time, unique by id.
    pub fn new(id: &Id, snap: Snapshot) -> Shown {
        let t = snap.time.to_zoned(jiff::tz::TimeZone::system());
        let name = format!("{}_{}", t.strftime("%Y-%m-%dT%H:%M:%S"), id.short());
        Shown { snap, name }
    }
}

/// One line saying why mounting failed and what to do about it.
fn mount_error(mountpoint: &Path, e: &std::io::Error) -> String {
    let at = mountpoint.display();
    // fusermount3's own message (it may span lines) as one line.
    let detail = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    // fusermount3's refusals come as ErrorKind::Other with its message (EPERM).
    let refused = e.kind() == std::io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(libc::EPERM)
        || detail.contains("Operation not permitted")
        || detail.contains("Permission denied");
    match e.kind() {
        _ if refused => format!(
            "FUSE is not available here: not permitted to mount at {at} ({detail}); run as \
             root, or install fuse3 (its fusermount3 lets users mount); --allow-other \
             needs user_allow_other in /etc/fuse.conf"
        ),
        std::io::ErrorKind::NotFound => format!(
            "FUSE is not available here: cannot mount at {at} without the privilege to \
             mount, and fusermount3 was not found (install fuse3, or run as root)"
        ),
        _ => format!("cannot mount at {at}: {detail}"),
    }
}

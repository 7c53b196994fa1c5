//! `cairn mount MOUNTPOINT`: the snapshots as a read-only file system (FUSE), until
//! unmounted or interrupted. The layout is in docs/mount.md; the file system in `fs.rs`.
//!
//! FUSE is reached through the `fuser` crate without libfuse: as root it mounts with
//! mount(2), otherwise through the setuid `fusermount3` of the fuse3 package. What can
//! fail before anything is served (no /dev/fuse, no permission, no fusermount3, a bad
//! mount point) is said in one line, at once.

mod fs;

use crate::settings::Settings;
use anyhow::{bail, Result};
use fs::{CairnFs, Shown};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What `cairn mount` takes besides the settings.
#[derive(Debug)]
pub struct MountOptions {
    pub mountpoint: PathBuf,
    pub allow_other: bool,
    pub host: Option<String>,
    pub tag: Option<String>,
}

/// What ends the mount.
#[derive(Debug)]
pub enum Event {
    /// SIGINT or SIGTERM: unmount and exit.
    Signal,
    /// The file system was unmounted from outside (`fusermount3 -u`, `umount`).
    Unmounted,
}

/// The FUSE device the kernel offers.
const DEV_FUSE: &str = "/dev/fuse";

pub fn run(s: &Settings, o: MountOptions) -> Result<u8> {
    // Said before the repository is opened (and a password asked for): whether this
    // machine can mount at all, and whether the mount point is usable.
    if !Path::new(DEV_FUSE).exists() {
        bail!(
            "FUSE is not available here: {DEV_FUSE} is missing (load the fuse module with \
             `modprobe fuse`, or install fuse3; in a container, pass --device /dev/fuse)"
        );
    }
    match std::fs::metadata(&o.mountpoint) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "cannot mount at {}: it is not a directory",
            o.mountpoint.display()
        ),
        Err(e) => bail!("cannot mount at {}: {e}", o.mountpoint.display()),
    }

    let repo = super::open(s)?;
    let lock = super::lock_shared(s, &repo, "mount")?;
    repo.load_index()?;
    let (all, damage) = repo.snapshots_and_damage()?;
    for e in &damage {
        eprintln!("cairn: {e}");
    }
    let snaps: Vec<Shown> = all
        .into_iter()
        .filter(|(_, sn)| o.host.as_ref().is_none_or(|h| &sn.hostname == h))
        .filter(|(_, sn)| o.tag.as_ref().is_none_or(|t| sn.has_tag(t)))
        .map(|(id, snap)| Shown {
            name: snapshot_name(&id, &snap),
            snap,
        })
        .collect();
    let count = snaps.len();
    let apps = app_groups(s, &snaps);
    let repo = Arc::new(repo);

    let (tx, rx) = std::sync::mpsc::channel();
    let filesystem = CairnFs::new(Arc::clone(&repo), snaps, apps, tx.clone());
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
    if o.allow_other {
        config.acl = fuser::SessionACL::All;
    }
    let session = match fuser::spawn_mount(filesystem, &o.mountpoint, &config) {
        Ok(session) => session,
        Err(e) => bail!("{}", mount_error(&o.mountpoint, &e)),
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
    if !s.quiet {
        eprintln!(
            "cairn: {count} snapshot(s) mounted at {} (read-only); unmount with \
             `fusermount3 -u {}` or Ctrl-C",
            o.mountpoint.display(),
            o.mountpoint.display()
        );
    }

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
    let result = match event {
        Event::Signal => match session.umount_and_join() {
            Ok(()) => Ok(()),
            Err(e) => {
                // Busy (a shell's working directory inside, a file open): detach it,
                // so that it goes as soon as the last user leaves.
                let detached = cairn_core::command("fusermount3")
                    .args(["-u", "-z", "--"])
                    .arg(&o.mountpoint)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|st| st.success());
                if detached {
                    eprintln!(
                        "cairn: {} was busy ({e}); detached it: it goes away when the last \
                         program using it ends",
                        o.mountpoint.display()
                    );
                    Ok(())
                } else {
                    Err(anyhow::anyhow!(
                        "cannot unmount {}: {e}",
                        o.mountpoint.display()
                    ))
                }
            }
        },
        Event::Unmounted => session
            .join()
            .map_err(|e| anyhow::anyhow!("the file system ended with an error: {e}")),
    };
    drop(lock);
    result?;
    if s.verbose {
        eprintln!("cairn: unmounted {}", o.mountpoint.display());
    }
    Ok(crate::exit::OK)
}

/// `<local time>_<short id>`: sorts by time, unique by id.
fn snapshot_name(id: &cairn_core::Id, snap: &cairn_core::Snapshot) -> String {
    let t = snap.time.to_zoned(jiff::tz::TimeZone::system());
    format!("{}_{}", t.strftime("%Y-%m-%dT%H:%M:%S"), id.short())
}

/// A directory of `apps/`: its name, and which snapshots it holds.
pub type AppGroup = (String, Box<dyn Fn(&cairn_core::Snapshot) -> bool>);

/// The directories of `apps/`: one per application front-end found in a snapshot's
/// `app` field, and one per configured instance whose name is not its kind (holding
/// the snapshots tagged with its name, as `cairn app snapshots NAME` shows them).
fn app_groups(s: &Settings, snaps: &[Shown]) -> Vec<AppGroup> {
    let mut kinds: Vec<String> = snaps.iter().filter_map(|x| x.snap.app.clone()).collect();
    kinds.sort();
    kinds.dedup();
    let mut groups: Vec<AppGroup> = Vec::new();
    for kind in kinds {
        let k = kind.clone();
        groups.push((
            kind,
            Box::new(move |sn| sn.app.as_deref() == Some(k.as_str())),
        ));
    }
    for c in &s.config.apps {
        if c.name == c.kind || groups.iter().any(|(n, _)| *n == c.name) {
            continue;
        }
        let (kind, name) = (c.kind.clone(), c.name.clone());
        groups.push((
            c.name.clone(),
            Box::new(move |sn| sn.app.as_deref() == Some(kind.as_str()) && sn.has_tag(&name)),
        ));
    }
    groups
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

//! `cairn mount MOUNTPOINT`: the snapshots as a read-only file system (FUSE), until
//! unmounted or interrupted. The file system is cairn-mount's; this command chooses the
//! snapshots and the application directories, holds the lock, and says what happens.

use crate::settings::Settings;
use anyhow::Result;
use cairn_mount::{AppGroup, Ended, Shown};
use std::path::PathBuf;
use std::sync::Arc;

/// What `cairn mount` takes besides the settings.
#[derive(Debug)]
pub struct MountOptions {
    pub mountpoint: PathBuf,
    pub allow_other: bool,
    pub host: Option<String>,
    pub tag: Option<String>,
}

pub fn run(s: &Settings, o: MountOptions) -> Result<u8> {
    // Said before the repository is opened (and a password asked for).
    cairn_mount::check_mountpoint(&o.mountpoint)?;

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
        .map(|(id, snap)| Shown::new(&id, snap))
        .collect();
    let count = snaps.len();
    let apps = app_groups(s, &snaps);
    let mounted = || {
        if !s.quiet {
            eprintln!(
                "cairn: {count} snapshot(s) mounted at {} (read-only); unmount with \
                 `fusermount3 -u {}` or Ctrl-C",
                o.mountpoint.display(),
                o.mountpoint.display()
            );
        }
    };
    let ended = cairn_mount::serve(
        Arc::new(repo),
        snaps,
        apps,
        &o.mountpoint,
        o.allow_other,
        &mounted,
    );
    drop(lock);
    if let Ended::Detached(why) = ended? {
        eprintln!(
            "cairn: {} was busy ({why}); detached it: it goes away when the last \
             program using it ends",
            o.mountpoint.display()
        );
    }
    if s.verbose {
        eprintln!("cairn: unmounted {}", o.mountpoint.display());
    }
    Ok(crate::exit::OK)
}

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

//! Facts about the machine and its users.

use std::collections::HashMap;
use std::sync::Mutex;

/// The host name (uname's nodename).
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The user running cairn: `$USER`, else the name of the effective uid.
pub fn username() -> String {
    if let Ok(u) = std::env::var("USER") {
        if !u.is_empty() {
            return u;
        }
    }
    let uid = rustix::process::geteuid().as_raw();
    uzers::get_user_by_uid(uid)
        .map(|u| u.name().to_string_lossy().into_owned())
        .unwrap_or_else(|| uid.to_string())
}

/// True when running as root (so restore may set ownership).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Caches uid/gid → name lookups for a walk (NSS lookups are slow).
#[derive(Debug, Default)]
pub struct NameCache {
    users: Mutex<HashMap<u32, Option<String>>>,
    groups: Mutex<HashMap<u32, Option<String>>>,
    uids: Mutex<HashMap<String, Option<u32>>>,
    gids: Mutex<HashMap<String, Option<u32>>>,
}

impl NameCache {
    /// The user name of `uid`, if it resolves.
    pub fn user(&self, uid: u32) -> Option<String> {
        self.users
            .lock()
            .unwrap()
            .entry(uid)
            .or_insert_with(|| {
                uzers::get_user_by_uid(uid).map(|u| u.name().to_string_lossy().into_owned())
            })
            .clone()
    }

    /// The group name of `gid`, if it resolves.
    pub fn group(&self, gid: u32) -> Option<String> {
        self.groups
            .lock()
            .unwrap()
            .entry(gid)
            .or_insert_with(|| {
                uzers::get_group_by_gid(gid).map(|g| g.name().to_string_lossy().into_owned())
            })
            .clone()
    }
}

impl NameCache {
    /// The uid of user `name` on this machine, else the stored `uid` (restore maps
    /// owners by name, like tar, so a restore on another machine gets owners right).
    pub fn uid_for(&self, name: Option<&str>, uid: u32) -> u32 {
        let Some(name) = name else { return uid };
        self.uids
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_insert_with(|| uzers::get_user_by_name(name).map(|u| u.uid()))
            .unwrap_or(uid)
    }

    /// Like [`NameCache::uid_for`] for groups.
    pub fn gid_for(&self, name: Option<&str>, gid: u32) -> u32 {
        let Some(name) = name else { return gid };
        self.gids
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_insert_with(|| uzers::get_group_by_name(name).map(|g| g.gid()))
            .unwrap_or(gid)
    }
}

//! Facts about the machine and its users, and the one way cairn starts a program
//! ([`command`]).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::process::Command;
use std::sync::Mutex;

/// Whether an environment variable holds one of cairn's own secrets or says where one
/// is: its name starts with `CAIRN_` and contains `PASSWORD` (`CAIRN_PASSWORD`,
/// `CAIRN_PASSWORD_FILE`, `CAIRN_PASSWORD_COMMAND`, `CAIRN_FROM_PASSWORD*`,
/// `CAIRN_EXPORT_PASSWORD*`, and any such variable added later). The rule is a pattern
/// rather than a list so that a new password variable is scrubbed without anyone
/// remembering to add it here. A file's or command's name is scrubbed too: the file may
/// be readable by the child, and the command prints the password when run.
pub fn is_secret_env(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.starts_with(b"CAIRN_") && name.windows(b"PASSWORD".len()).any(|w| w == b"PASSWORD")
}

/// The names among `names` that [`is_secret_env`] matches.
pub fn secret_env_names<I, S>(names: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    names
        .into_iter()
        .map(Into::into)
        .filter(|n| is_secret_env(n))
        .collect()
}

/// A [`Command`] for `program` that does not pass on cairn's secrets: every variable of
/// cairn's own environment that [`is_secret_env`] matches is removed from the child's.
/// Every program cairn starts (dump and restore tools and their wrappers, hooks,
/// `--stdin-from-command`, password commands, the scheduler's and the front-ends' tools)
/// is built here, so that a dump, a hook's log or a stored stream never holds the
/// repository password. What a caller adds with [`Command::env`] afterwards (a database
/// tool's `PGPASSWORD`, the password sources of a cairn started by `cairn run`) is given
/// on purpose, to that child only.
///
/// The `cairn` binary also moves them out of its own environment first thing
/// ([`take_secret_env`]), so that the programs libraries start (`ssh` for SFTP,
/// `fusermount3` for `cairn mount`) do not inherit them either; this scrubbing stays for
/// every other user of this library, and costs nothing.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    without_secrets(
        Command::new(program),
        std::env::vars_os().map(|(name, _)| name),
    )
}

/// `c` with those of the `inherited` variables that [`is_secret_env`] matches removed.
fn without_secrets<I, S>(mut c: Command, inherited: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: Into<std::ffi::OsString>,
{
    for name in secret_env_names(inherited) {
        c.env_remove(name);
    }
    c
}

/// cairn's password variables, once [`take_secret_env`] has moved them out of the
/// environment.
static SECRET_ENV: std::sync::OnceLock<Vec<(std::ffi::OsString, std::ffi::OsString)>> =
    std::sync::OnceLock::new();

/// Moves every variable [`is_secret_env`] matches out of the process environment into
/// memory, where [`secret_env`] finds it: no program started afterwards, by cairn or by
/// a library, inherits it. Call it first thing in `main`, before any thread starts
/// (changing the environment while another thread reads it is unsound); calls after the
/// first change nothing.
pub fn take_secret_env() {
    if SECRET_ENV.get().is_some() {
        return;
    }
    let taken: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
        .filter(|(name, _)| is_secret_env(name))
        .collect();
    for (name, _) in &taken {
        std::env::remove_var(name);
    }
    let _ = SECRET_ENV.set(taken);
}

/// The value of one of cairn's password variables: from memory once
/// [`take_secret_env`] has run, else from the environment.
pub fn secret_env(name: &str) -> Option<std::ffi::OsString> {
    match SECRET_ENV.get() {
        Some(taken) => taken
            .iter()
            .find(|(n, _)| n.as_os_str() == OsStr::new(name))
            .map(|(_, v)| v.clone()),
        None => std::env::var_os(name),
    }
}

/// Every password variable cairn was started with (for the cairn commands `cairn run`
/// starts, which need them to open the repositories).
pub fn secret_envs() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    match SECRET_ENV.get() {
        Some(taken) => taken.clone(),
        None => std::env::vars_os()
            .filter(|(name, _)| is_secret_env(name))
            .collect(),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    #[test]
    fn password_variables_are_secret_and_others_are_not() {
        for name in [
            "CAIRN_PASSWORD",
            "CAIRN_PASSWORD_FILE",
            "CAIRN_PASSWORD_COMMAND",
            "CAIRN_FROM_PASSWORD",
            "CAIRN_FROM_PASSWORD_FILE",
            "CAIRN_FROM_PASSWORD_COMMAND",
            "CAIRN_EXPORT_PASSWORD",
            "CAIRN_EXPORT_PASSWORD_FILE",
            "CAIRN_EXPORT_PASSWORD_COMMAND",
            "CAIRN_NEW_PASSWORD_FILE",
        ] {
            assert!(is_secret_env(OsStr::new(name)), "{name}");
        }
        for name in [
            "CAIRN_REPOSITORY",
            "CAIRN_CACHE_DIR",
            "CAIRN_CONFIG",
            "CAIRN_KESTRA_METADATA",
            "CAIRN_SFTP_KNOWN_HOSTS",
            // The database tools' own variables are how a database password is given.
            "PGPASSWORD",
            "MYSQL_PWD",
            "PASSWORD",
            "MY_CAIRN_PASSWORD",
            "cairn_password",
            "",
        ] {
            assert!(!is_secret_env(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn names_that_are_not_utf8_are_matched_on_their_bytes() {
        use std::os::unix::ffi::OsStrExt;
        assert!(is_secret_env(OsStr::from_bytes(b"CAIRN_PASSWORD_\xff")));
        assert!(!is_secret_env(OsStr::from_bytes(b"\xffCAIRN_PASSWORD")));
    }

    #[test]
    fn only_the_secret_names_are_picked() {
        let picked =
            secret_env_names(["PATH", "CAIRN_PASSWORD", "HOME", "CAIRN_FROM_PASSWORD_FILE"]);
        assert_eq!(picked, ["CAIRN_PASSWORD", "CAIRN_FROM_PASSWORD_FILE"]);
    }

    #[test]
    fn the_secret_variables_inherited_are_removed_and_nothing_else() {
        let c = without_secrets(
            Command::new("true"),
            [
                "PATH",
                "CAIRN_PASSWORD",
                "PGPASSWORD",
                "CAIRN_PASSWORD_COMMAND",
            ],
        );
        let mut changes: Vec<(OsString, Option<OsString>)> = c
            .get_envs()
            .map(|(k, v)| (k.to_os_string(), v.map(OsStr::to_os_string)))
            .collect();
        changes.sort();
        let expected: Vec<(OsString, Option<OsString>)> = vec![
            ("CAIRN_PASSWORD".into(), None),
            ("CAIRN_PASSWORD_COMMAND".into(), None),
        ];
        assert_eq!(changes, expected);
    }

    #[test]
    fn a_variable_set_on_purpose_after_the_scrub_reaches_the_child() {
        let mut c = without_secrets(Command::new("sh"), ["CAIRN_PASSWORD"]);
        c.env("CAIRN_PASSWORD", "given-on-purpose");
        let out = c
            .args(["-c", "printf %s \"$CAIRN_PASSWORD\""])
            .output()
            .unwrap();
        assert_eq!(out.stdout, b"given-on-purpose");
    }

    #[test]
    fn a_command_removes_every_secret_variable_of_cairns_environment() {
        // The test process's own environment is not changed (that would race with the
        // other tests' threads): the expected removals are computed from it, and
        // `get_envs` shows a removal as a name without a value.
        let c = command("true");
        let removed: Vec<_> = c
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_os_string())
            .collect();
        let mut expected = secret_env_names(std::env::vars_os().map(|(k, _)| k));
        expected.sort();
        let mut removed = removed;
        removed.sort();
        assert_eq!(removed, expected);
        // Nothing else is touched.
        assert!(c.get_envs().all(|(_, v)| v.is_none()));
    }
}

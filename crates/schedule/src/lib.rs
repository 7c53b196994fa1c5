//! cairn-schedule: the timers that run `cairn run JOB` (`cairn schedule
//! install|list|remove`): systemd units or cron entries, rendered, installed, checked,
//! listed and removed.
//!
//! Main items:
//! - [`Job`]: what a timer runs and when (a name, a calendar expression, a randomized
//!   delay, the command line), in plain types: the caller converts its config.
//! - [`Where`] and [`place`]: where the timers go ([`Place`]: a systemd unit directory,
//!   a file of /etc/cron.d, the user's crontab).
//! - [`install`], [`list`], [`remove`]; [`units`] and [`cron_entry`] render.
//! - [`Error`]: thiserror errors, each one line.
//!
//! What it is not: it reads no config file and runs no job; what it did is said through
//! a callback, one line at a time, and where those lines go is the caller's business.
//!
//! Where systemd runs (as init: `/run/systemd/system` exists), a job gets a service and
//! a timer, `cairn-JOB.service` and `cairn-JOB.timer`:
//! - the timer fires at the job's `schedule` (a systemd calendar expression; `02:00`
//!   is one), waits a random part of `randomized-delay` (so that many machines do not
//!   all start at once) and is `Persistent`: a run missed while the machine was off
//!   happens at the next boot;
//! - the service is a `oneshot` that runs `cairn --config FILE run JOB`, niced, with
//!   the lowest best-effort I/O priority, after the network is up.
//!
//! Elsewhere (or with `--cron`) a cron entry runs the same command with
//! `--random-delay`, cron having no randomized delay of its own. Cron understands only
//! the simple schedules: `HH:MM`, `hourly`, `daily`, `weekly`, `monthly`.
//!
//! Every file cairn writes starts with [`MARKER`], so `list` and `remove` never touch a
//! file or crontab line that cairn did not write.

use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The first line of every unit and cron entry cairn writes.
pub const MARKER: &str = "# Written by `cairn schedule install`";

/// What can go wrong, each as one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `HOME` is needed for the user's unit directory.
    #[error("HOME is not set")]
    NoHome,
    /// A path that a unit or cron entry cannot hold.
    #[error("{0:?}: a path with spaces, quotes or % cannot go into a timer or cron entry")]
    UnsafePath(String),
    /// A schedule cron cannot say.
    #[error(
        "the schedule {0:?} is a systemd calendar expression; a cron entry needs HH:MM, \
         hourly, daily, weekly or monthly"
    )]
    NotForCron(String),
    /// A file operation or a program (systemctl, crontab) that could not run.
    #[error("{what}")]
    Io {
        /// What was being done, e.g. `writing /etc/cron.d/cairn-nightly`.
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else that stops the change: a file cairn did not write, a unit that
    /// systemd rejects, a failing systemctl, a job that has no timer.
    #[error("{0}")]
    Refused(String),
}

/// The result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stops with [`Error::Refused`].
macro_rules! refuse {
    ($($arg:tt)*) => {
        return Err(Error::Refused(format!($($arg)*)))
    };
}

/// Adds what was being done to an I/O error.
trait Doing<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Doing<T> for std::io::Result<T> {
    fn doing(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            what: what(),
            source,
        })
    }
}

/// A job as a timer runs it.
#[derive(Debug, Clone)]
pub struct Job {
    /// The job's name (`cairn-NAME.timer`, `cairn schedule remove NAME`).
    pub name: String,
    /// When: a systemd calendar expression (`02:00` is one); cron takes only `HH:MM`,
    /// `hourly`, `daily`, `weekly` and `monthly`.
    pub calendar: String,
    /// The timer waits a random part of this many seconds more.
    pub randomized_delay: u64,
    /// The command line that runs the job (see [`command_line`]).
    pub command: String,
}

/// Where the caller asked the timers to go (`--unit-dir`, `--cron`, `--cron-file`).
#[derive(Debug, Clone, Default)]
pub struct Where {
    /// systemd units into this directory, whatever runs here.
    pub unit_dir: Option<PathBuf>,
    /// A cron entry even where systemd runs.
    pub cron: bool,
    /// The cron entry into this file (in the format of /etc/cron.d).
    pub cron_file: Option<PathBuf>,
}

/// What [`install`] does besides writing.
#[derive(Debug, Clone, Copy, Default)]
pub struct InstallOptions {
    /// Print what would be written; write nothing.
    pub dry_run: bool,
    /// Write the units, do not enable the timer.
    pub no_enable: bool,
}

/// A scheduled job found by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub job: String,
    /// The timer file, cron file, or `crontab`.
    pub file: PathBuf,
    /// When it runs: the timer's `OnCalendar=` and `RandomizedDelaySec=` lines, or the
    /// cron entry's five fields.
    pub when: String,
    /// `systemd` or `cron`.
    pub kind: &'static str,
}

/// A variable of the environment, unless unset or empty.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where the timers go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Systemd {
        dir: PathBuf,
        user: bool,
    },
    /// A file in the format of /etc/cron.d (with a user field).
    CronFile(PathBuf),
    /// The user's crontab (no user field).
    Crontab,
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Whether systemd is the running init (what `sd_booted()` checks).
fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// Where the timers of `job` go: as asked, else systemd units where systemd runs
/// (/etc/systemd/system as root, the user's unit directory otherwise), else a file of
/// /etc/cron.d as root, else the user's crontab.
pub fn place(p: &Where, job: &str) -> Result<Place> {
    if let Some(dir) = &p.unit_dir {
        return Ok(Place::Systemd {
            dir: std::path::absolute(dir).doing(|| format!("finding {}", dir.display()))?,
            user: !is_root(),
        });
    }
    if p.cron || !systemd_running() {
        if let Some(f) = &p.cron_file {
            return Ok(Place::CronFile(
                std::path::absolute(f).doing(|| format!("finding {}", f.display()))?,
            ));
        }
        if is_root() {
            // run-parts names: letters, digits, `-` and `_` only.
            let name: String = job
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            return Ok(Place::CronFile(PathBuf::from(format!(
                "/etc/cron.d/cairn-{name}"
            ))));
        }
        return Ok(Place::Crontab);
    }
    if is_root() {
        Ok(Place::Systemd {
            dir: "/etc/systemd/system".into(),
            user: false,
        })
    } else {
        let home = env_var("HOME").ok_or(Error::NoHome)?;
        let base = env_var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(home).join(".config"));
        Ok(Place::Systemd {
            dir: base.join("systemd/user"),
            user: true,
        })
    }
}

/// `EXE --config CONFIG run JOB`, the command a timer runs, with absolute paths.
pub fn command_line(exe: &Path, config: &Path, job: &str) -> Result<String> {
    let config = std::path::absolute(config).doing(|| format!("finding {}", config.display()))?;
    for p in [exe, &config] {
        let t = p.to_string_lossy();
        if t.chars()
            .any(|c| c.is_whitespace() || c == '%' || c == '"' || c == '\'')
        {
            return Err(Error::UnsafePath(t.into_owned()));
        }
    }
    Ok(format!(
        "{} --config {} run {job}",
        exe.display(),
        config.display(),
    ))
}

/// The two systemd units of a job: the service and the timer.
pub fn units(job: &Job) -> (String, String) {
    let command = &job.command;
    let name = &job.name;
    let service = format!(
        "{MARKER} {name}; `cairn schedule remove {name}` removes it.\n\
         [Unit]\n\
         Description=cairn backup job {name}\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         Type=oneshot\n\
         ExecStart={command}\n\
         # Backups yield to the services they back up.\n\
         Nice=10\n\
         IOSchedulingClass=best-effort\n\
         IOSchedulingPriority=7\n"
    );
    let timer = format!(
        "{MARKER} {name}; `cairn schedule remove {name}` removes it.\n\
         [Unit]\n\
         Description=Run cairn backup job {name}\n\
         \n\
         [Timer]\n\
         OnCalendar={}\n\
         RandomizedDelaySec={}\n\
         # A run missed while the machine was off happens when it is next up.\n\
         Persistent=true\n\
         \n\
         [Install]\n\
         WantedBy=timers.target\n",
        job.calendar, job.randomized_delay
    );
    (service, timer)
}

/// The five cron fields of a schedule, for the simple forms cron can say.
pub fn cron_fields(schedule: &str) -> Result<String> {
    let t = schedule.trim();
    let fields = match t {
        "hourly" => "0 * * * *".to_string(),
        "daily" => "0 0 * * *".to_string(),
        "weekly" => "0 0 * * 1".to_string(),
        "monthly" => "0 0 1 * *".to_string(),
        _ => {
            let parsed = t.split_once(':').and_then(|(h, m)| {
                let h: u32 = h.parse().ok()?;
                let m: u32 = m.parse().ok()?;
                (h < 24 && m < 60).then_some((h, m))
            });
            match parsed {
                Some((h, m)) => format!("{m} {h} * * *"),
                None => return Err(Error::NotForCron(t.to_string())),
            }
        }
    };
    Ok(fields)
}

/// The cron entry of a job: a marker line and the entry (`user` for /etc/cron.d).
pub fn cron_entry(job: &Job, user: Option<&str>) -> Result<String> {
    let fields = cron_fields(&job.calendar)?;
    let command = &job.command;
    let who = user.map(|u| format!("{u} ")).unwrap_or_default();
    Ok(format!(
        "{MARKER} {name}; `cairn schedule remove {name}` removes it.\n\
         {fields} {who}{command} --random-delay {}s\n",
        job.randomized_delay,
        name = job.name
    ))
}

/// Installs the timer of `job` at `place`: writes the units (checked with
/// `systemd-analyze verify` where it is installed) and enables the timer, or writes
/// the cron entry. Each line of what it did (or, with `dry_run`, of what it would
/// write) goes to `say`.
pub fn install(
    job: &Job,
    place: &Place,
    o: InstallOptions,
    say: &mut dyn FnMut(&str),
) -> Result<()> {
    match place {
        Place::Systemd { dir, user } => {
            let user = *user;
            let (service, timer) = units(job);
            let service_path = dir.join(format!("cairn-{}.service", job.name));
            let timer_path = dir.join(format!("cairn-{}.timer", job.name));
            if o.dry_run {
                say(&format!(
                    "# {}\n{service}\n# {}\n{timer}",
                    service_path.display(),
                    timer_path.display()
                ));
                return Ok(());
            }
            std::fs::create_dir_all(dir).doing(|| format!("creating {}", dir.display()))?;
            write_new(&service_path, &service)?;
            write_new(&timer_path, &timer)?;
            say(&format!(
                "wrote {} and {}",
                service_path.display(),
                timer_path.display()
            ));
            verify(&service_path, &timer_path)?;
            if o.no_enable {
                return Ok(());
            }
            if !systemd_running() {
                say(&format!(
                    "systemd is not running here: enable it later with `systemctl{} enable --now cairn-{}.timer`",
                    if user { " --user" } else { "" },
                    job.name
                ));
                return Ok(());
            }
            systemctl(user, &["daemon-reload"])?;
            systemctl(
                user,
                &["enable", "--now", &format!("cairn-{}.timer", job.name)],
            )?;
            say(&format!(
                "enabled cairn-{}.timer: {} (plus up to {} s), see `systemctl{} list-timers`",
                job.name,
                job.calendar,
                job.randomized_delay,
                if user { " --user" } else { "" }
            ));
        }
        Place::CronFile(path) => {
            // A file of /etc/cron.d names the user the entry runs as: the one installing it.
            let user = if is_root() {
                "root".to_string()
            } else {
                current_user()
            };
            let entry = cron_entry(job, Some(&user))?;
            let text = format!("SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n{entry}");
            let text = format!("{MARKER} {}\n{text}", job.name);
            if o.dry_run {
                say(&format!("# {}\n{text}", path.display()));
                return Ok(());
            }
            if parent_missing(path) {
                refuse!(
                    "{} does not exist: is cron installed? (install cron, or run systemd \
                     and use its timers)",
                    path.parent()
                        .map_or(String::new(), |d| d.display().to_string())
                );
            }
            write_new(path, &text)?;
            say(&format!("wrote {}", path.display()));
        }
        Place::Crontab => {
            let entry = cron_entry(job, None)?;
            if o.dry_run {
                say(&format!("# the crontab of {}\n{entry}", current_user()));
                return Ok(());
            }
            let old = read_crontab()?;
            let mut new = without_job(&old, &job.name);
            new.push_str(&entry);
            write_crontab(&new)?;
            say(&format!(
                "added the job {} to the crontab of {}",
                job.name,
                current_user()
            ));
        }
    }
    Ok(())
}

/// Whether the directory a file would go into is missing.
fn parent_missing(path: &Path) -> bool {
    path.parent().is_some_and(|d| !d.is_dir())
}

/// Writes a file cairn owns: a file already there must be one cairn wrote.
fn write_new(path: &Path, text: &str) -> Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if !old.starts_with(MARKER) {
            refuse!(
                "{} exists and was not written by cairn: remove it first",
                path.display()
            );
        }
    }
    let tmp = path.with_extension("cairn-tmp");
    std::fs::write(&tmp, text).doing(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).doing(|| format!("writing {}", path.display()))
}

/// Checks the units with `systemd-analyze verify` where it is installed.
fn verify(service: &Path, timer: &Path) -> Result<()> {
    let out = match cairn_core::command("systemd-analyze")
        .arg("verify")
        .arg(service)
        .arg(timer)
        .stdin(Stdio::null())
        .output()
    {
        Ok(o) => o,
        Err(_) => return Ok(()),
    };
    if !out.status.success() {
        refuse!(
            "systemd-analyze verify rejects the units:\n{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}

fn systemctl(user: bool, args: &[&str]) -> Result<()> {
    let mut cmd = cairn_core::command("systemctl");
    if user {
        cmd.arg("--user");
    }
    let status = cmd
        .args(args)
        .status()
        .doing(|| "running systemctl".into())?;
    if !status.success() {
        refuse!("systemctl {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The user, for messages.
fn current_user() -> String {
    env_var("USER")
        .or_else(|| env_var("LOGNAME"))
        .unwrap_or_else(|| format!("uid {}", rustix::process::geteuid().as_raw()))
}

fn read_crontab() -> Result<String> {
    let out = cairn_core::command("crontab")
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .doing(|| "running crontab -l (is cron installed?)".into())?;
    // `crontab -l` fails when the user has no crontab yet.
    Ok(if out.status.success() {
        String::from_utf8_lossy(&out.stdout).into_owned()
    } else {
        String::new()
    })
}

fn write_crontab(text: &str) -> Result<()> {
    use std::io::Write;
    let mut child = cairn_core::command("crontab")
        .arg("-")
        .stdin(Stdio::piped())
        .spawn()
        .doing(|| "running crontab -".into())?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())
        .doing(|| "writing to crontab -".into())?;
    let status = child.wait().doing(|| "running crontab -".into())?;
    if !status.success() {
        refuse!("crontab - failed ({status})");
    }
    Ok(())
}

/// A crontab without the entry of `job` (its marker line and the line after it).
fn without_job(crontab: &str, job: &str) -> String {
    let mut out = String::new();
    let mut skip_next = false;
    let marker = format!("{MARKER} {job};");
    for line in crontab.lines() {
        if skip_next {
            skip_next = false;
            continue;
        }
        if line.starts_with(&marker) {
            skip_next = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The jobs of cairn's files in a directory, by job name.
fn installed_units(dir: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(job) = name
            .strip_prefix("cairn-")
            .and_then(|n| n.strip_suffix(".timer"))
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        if !text.starts_with(MARKER) {
            continue;
        }
        let when = text
            .lines()
            .filter(|l| l.starts_with("OnCalendar=") || l.starts_with("RandomizedDelaySec="))
            .collect::<Vec<_>>()
            .join(", ");
        out.push(Entry {
            job: job.to_string(),
            file: e.path(),
            when,
            kind: "systemd",
        });
    }
    out.sort_by(|a, b| (&a.job, &a.file, &a.when).cmp(&(&b.job, &b.file, &b.when)));
    out
}

/// The jobs cairn scheduled where `p` says (without `--cron-file`, in every cairn file
/// of /etc/cron.d).
pub fn list(p: &Where) -> Result<Vec<Entry>> {
    let mut rows = Vec::new();
    match place(p, "")? {
        Place::Systemd { dir, .. } => rows.extend(installed_units(&dir)),
        Place::CronFile(path) => {
            // Without --cron-file: every cairn file in /etc/cron.d.
            let files: Vec<PathBuf> = if p.cron_file.is_some() {
                vec![path]
            } else {
                std::fs::read_dir("/etc/cron.d")
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.path())
                            .filter(|f| {
                                f.file_name()
                                    .is_some_and(|n| n.to_string_lossy().starts_with("cairn-"))
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            for f in files {
                rows.extend(cron_rows(
                    &std::fs::read_to_string(&f).unwrap_or_default(),
                    &f,
                ));
            }
        }
        Place::Crontab => rows.extend(cron_rows(&read_crontab()?, Path::new("crontab"))),
    }
    Ok(rows)
}

/// The cairn entries of a cron file or crontab.
fn cron_rows(text: &str, file: &Path) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix(MARKER) else {
            continue;
        };
        let Some(job) = rest.trim().split(';').next().filter(|j| !j.is_empty()) else {
            continue;
        };
        if !rest.contains(';') {
            continue; // the file's own first line
        }
        let entry = lines.next().unwrap_or_default();
        let when: Vec<&str> = entry.split_whitespace().take(5).collect();
        out.push(Entry {
            job: job.to_string(),
            file: file.to_path_buf(),
            when: when.join(" "),
            kind: "cron",
        });
    }
    out
}

/// Removes the timer (or cron entry) of the job `name` from where `p` says; disables
/// the timer first where systemd runs (unless `--unit-dir` was given). What it did goes
/// to `say`.
pub fn remove(name: &str, p: &Where, say: &mut dyn FnMut(&str)) -> Result<()> {
    match place(p, name)? {
        Place::Systemd { dir, user } => {
            let service = dir.join(format!("cairn-{name}.service"));
            let timer = dir.join(format!("cairn-{name}.timer"));
            if !installed_units(&dir).iter().any(|e| e.job == name) {
                refuse!("no timer of job {name} in {}", dir.display());
            }
            if systemd_running() && p.unit_dir.is_none() {
                systemctl(user, &["disable", "--now", &format!("cairn-{name}.timer")])?;
            }
            for f in [&timer, &service] {
                match std::fs::remove_file(f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).doing(|| format!("removing {}", f.display())),
                }
            }
            if systemd_running() && p.unit_dir.is_none() {
                systemctl(user, &["daemon-reload"])?;
            }
            say(&format!(
                "removed {} and {}",
                timer.display(),
                service.display()
            ));
        }
        Place::CronFile(path) => {
            let text = std::fs::read_to_string(&path)
                .doing(|| format!("no cron entry of job {name} at {}", path.display()))?;
            if !text.starts_with(MARKER) {
                refuse!("{} was not written by cairn", path.display());
            }
            std::fs::remove_file(&path).doing(|| format!("removing {}", path.display()))?;
            say(&format!("removed {}", path.display()));
        }
        Place::Crontab => {
            let old = read_crontab()?;
            let new = without_job(&old, name);
            if new == old {
                refuse!("no cron entry of job {name} in the crontab");
            }
            write_crontab(&new)?;
            say(&format!("removed the job {name} from the crontab"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_understands_the_simple_schedules_only() {
        assert_eq!(cron_fields("02:30").unwrap(), "30 2 * * *");
        assert_eq!(cron_fields("daily").unwrap(), "0 0 * * *");
        assert_eq!(cron_fields("weekly").unwrap(), "0 0 * * 1");
        assert!(cron_fields("Mon *-*-* 02:00").is_err());
        assert!(cron_fields("25:00").is_err());
    }

    #[test]
    fn only_the_entry_of_the_job_leaves_the_crontab() {
        let tab = format!(
            "MAILTO=a\n{MARKER} a; x\n0 2 * * * cairn run a\n{MARKER} b; x\n0 3 * * * cairn run b\n1 1 * * * other\n"
        );
        let out = without_job(&tab, "a");
        assert_eq!(
            out,
            format!("MAILTO=a\n{MARKER} b; x\n0 3 * * * cairn run b\n1 1 * * * other\n")
        );
        let rows = cron_rows(&out, Path::new("t"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].job, "b");
        assert_eq!(rows[0].when, "0 3 * * *");
    }
}

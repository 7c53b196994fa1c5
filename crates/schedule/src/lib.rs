//! `cairn schedule install|list|remove`: the timers that run `cairn run JOB`.
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

use crate::args::{ScheduleCommand, ScheduleInstallArgs, ScheduleWhereArgs};
use crate::config::JobConfig;
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// The first line of every unit and cron entry cairn writes.
const MARKER: &str = "# Written by `cairn schedule install`";

pub fn run(s: &Settings, c: ScheduleCommand) -> Result<u8> {
    match c {
        ScheduleCommand::Install(a) => install(s, a),
        ScheduleCommand::List(place) => list(s, &place),
        ScheduleCommand::Remove { job, place } => remove(s, job, &place),
    }
}

/// Where the timers go.
enum Place {
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

fn place(p: &ScheduleWhereArgs, job: &str) -> Result<Place> {
    if let Some(dir) = &p.unit_dir {
        return Ok(Place::Systemd {
            dir: std::path::absolute(dir)?,
            user: !is_root(),
        });
    }
    if p.cron || !systemd_running() {
        if let Some(f) = &p.cron_file {
            return Ok(Place::CronFile(std::path::absolute(f)?));
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
        let home = crate::settings::env_var("HOME").context("HOME is not set")?;
        let base = crate::settings::env_var("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(home).join(".config"));
        Ok(Place::Systemd {
            dir: base.join("systemd/user"),
            user: true,
        })
    }
}

/// `cairn --config FILE run JOB`, with absolute paths.
fn command_line(s: &Settings, job: &JobConfig) -> Result<String> {
    let Some(config) = &s.config.file else {
        bail!(
            "a schedule runs `cairn run` with the config file, and none was found (see \
             docs/config.md)"
        );
    };
    let config = std::path::absolute(config)?;
    let exe = std::env::current_exe().context("finding the cairn binary")?;
    for p in [&exe, &config] {
        let t = p.to_string_lossy();
        if t.chars()
            .any(|c| c.is_whitespace() || c == '%' || c == '"' || c == '\'')
        {
            bail!("{t:?}: a path with spaces, quotes or % cannot go into a timer or cron entry");
        }
    }
    Ok(format!(
        "{} --config {} run {}",
        exe.display(),
        config.display(),
        job.name
    ))
}

/// The two systemd units of a job.
fn units(s: &Settings, job: &JobConfig) -> Result<(String, String)> {
    let command = command_line(s, job)?;
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
        job.schedule, job.randomized_delay
    );
    Ok((service, timer))
}

/// The five cron fields of a schedule, for the simple forms cron can say.
fn cron_fields(schedule: &str) -> Result<String> {
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
                None => bail!(
                    "the schedule {t:?} is a systemd calendar expression; a cron entry needs \
                     HH:MM, hourly, daily, weekly or monthly"
                ),
            }
        }
    };
    Ok(fields)
}

/// The cron entry of a job: a marker line and the entry (`user` for /etc/cron.d).
fn cron_entry(s: &Settings, job: &JobConfig, user: Option<&str>) -> Result<String> {
    let fields = cron_fields(&job.schedule)?;
    let command = command_line(s, job)?;
    let who = user.map(|u| format!("{u} ")).unwrap_or_default();
    Ok(format!(
        "{MARKER} {name}; `cairn schedule remove {name}` removes it.\n\
         {fields} {who}{command} --random-delay {}s\n",
        job.randomized_delay,
        name = job.name
    ))
}

fn install(s: &Settings, a: ScheduleInstallArgs) -> Result<u8> {
    let job = s.config.job(a.job.as_deref())?;
    match place(&a.place, &job.name)? {
        Place::Systemd { dir, user } => {
            let (service, timer) = units(s, &job)?;
            let service_path = dir.join(format!("cairn-{}.service", job.name));
            let timer_path = dir.join(format!("cairn-{}.timer", job.name));
            if a.dry_run {
                println!(
                    "# {}\n{service}\n# {}\n{timer}",
                    service_path.display(),
                    timer_path.display()
                );
                return Ok(crate::exit::OK);
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            write_new(&service_path, &service)?;
            write_new(&timer_path, &timer)?;
            println!(
                "wrote {} and {}",
                service_path.display(),
                timer_path.display()
            );
            verify(&service_path, &timer_path)?;
            if a.no_enable {
                return Ok(crate::exit::OK);
            }
            if !systemd_running() {
                println!(
                    "systemd is not running here: enable it later with `systemctl{} enable --now cairn-{}.timer`",
                    if user { " --user" } else { "" },
                    job.name
                );
                return Ok(crate::exit::OK);
            }
            systemctl(user, &["daemon-reload"])?;
            systemctl(
                user,
                &["enable", "--now", &format!("cairn-{}.timer", job.name)],
            )?;
            println!(
                "enabled cairn-{}.timer: {} (plus up to {} s), see `systemctl{} list-timers`",
                job.name,
                job.schedule,
                job.randomized_delay,
                if user { " --user" } else { "" }
            );
        }
        Place::CronFile(path) => {
            // A file of /etc/cron.d names the user the entry runs as: the one installing it.
            let user = if is_root() {
                "root".to_string()
            } else {
                current_user()
            };
            let entry = cron_entry(s, &job, Some(&user))?;
            let text = format!("SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n{entry}");
            let text = format!("{MARKER} {}\n{text}", job.name);
            if a.dry_run {
                println!("# {}\n{text}", path.display());
                return Ok(crate::exit::OK);
            }
            if parent_missing(&path) {
                bail!(
                    "{} does not exist: is cron installed? (install cron, or run systemd \
                     and use its timers)",
                    path.parent()
                        .map_or(String::new(), |d| d.display().to_string())
                );
            }
            write_new(&path, &text)?;
            println!("wrote {}", path.display());
        }
        Place::Crontab => {
            let entry = cron_entry(s, &job, None)?;
            if a.dry_run {
                println!("# the crontab of {}\n{entry}", current_user());
                return Ok(crate::exit::OK);
            }
            let old = read_crontab()?;
            let mut new = without_job(&old, &job.name);
            new.push_str(&entry);
            write_crontab(&new)?;
            println!(
                "added the job {} to the crontab of {}",
                job.name,
                current_user()
            );
        }
    }
    Ok(crate::exit::OK)
}

/// Whether the directory a file would go into is missing.
fn parent_missing(path: &Path) -> bool {
    path.parent().is_some_and(|d| !d.is_dir())
}

/// Writes a file cairn owns: a file already there must be one cairn wrote.
fn write_new(path: &Path, text: &str) -> Result<()> {
    if let Ok(old) = std::fs::read_to_string(path) {
        if !old.starts_with(MARKER) {
            bail!(
                "{} exists and was not written by cairn: remove it first",
                path.display()
            );
        }
    }
    let tmp = path.with_extension("cairn-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
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
        bail!(
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
    let status = cmd.args(args).status().context("running systemctl")?;
    if !status.success() {
        bail!("systemctl {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The user, for messages.
fn current_user() -> String {
    crate::settings::env_var("USER")
        .or_else(|| crate::settings::env_var("LOGNAME"))
        .unwrap_or_else(|| format!("uid {}", rustix::process::geteuid().as_raw()))
}

fn read_crontab() -> Result<String> {
    let out = cairn_core::command("crontab")
        .arg("-l")
        .stdin(Stdio::null())
        .output()
        .context("running crontab -l (is cron installed?)")?;
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
        .context("running crontab -")?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(text.as_bytes())?;
    let status = child.wait()?;
    if !status.success() {
        bail!("crontab - failed ({status})");
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

/// The jobs of cairn's files in a directory: (job, file, schedule line).
fn installed_units(dir: &Path) -> Vec<(String, PathBuf, String)> {
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
        out.push((job.to_string(), e.path(), when));
    }
    out.sort();
    out
}

fn list(s: &Settings, p: &ScheduleWhereArgs) -> Result<u8> {
    let mut rows: Vec<serde_json::Value> = Vec::new();
    match place(p, "")? {
        Place::Systemd { dir, .. } => {
            for (job, path, when) in installed_units(&dir) {
                rows.push(
                    serde_json::json!({"job": job, "file": path, "when": when, "kind": "systemd"}),
                );
            }
        }
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
    if s.json {
        super::print_json(&rows)?;
    } else if rows.is_empty() {
        println!("no job is scheduled");
    } else {
        for r in &rows {
            println!(
                "{:<16} {}  ({})",
                r["job"].as_str().unwrap_or_default(),
                r["when"].as_str().unwrap_or_default(),
                r["file"].as_str().unwrap_or_default()
            );
        }
    }
    Ok(crate::exit::OK)
}

/// The cairn entries of a cron file or crontab.
fn cron_rows(text: &str, file: &Path) -> Vec<serde_json::Value> {
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
        out.push(
            serde_json::json!({"job": job, "file": file, "when": when.join(" "), "kind": "cron"}),
        );
    }
    out
}

fn remove(s: &Settings, job_name: Option<String>, p: &ScheduleWhereArgs) -> Result<u8> {
    let name = match job_name {
        Some(n) => n,
        None => s.config.job(None)?.name,
    };
    match place(p, &name)? {
        Place::Systemd { dir, user } => {
            let service = dir.join(format!("cairn-{name}.service"));
            let timer = dir.join(format!("cairn-{name}.timer"));
            if !installed_units(&dir).iter().any(|(j, _, _)| *j == name) {
                bail!("no timer of job {name} in {}", dir.display());
            }
            if systemd_running() && p.unit_dir.is_none() {
                systemctl(user, &["disable", "--now", &format!("cairn-{name}.timer")])?;
            }
            for f in [&timer, &service] {
                match std::fs::remove_file(f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e).with_context(|| format!("removing {}", f.display())),
                }
            }
            if systemd_running() && p.unit_dir.is_none() {
                systemctl(user, &["daemon-reload"])?;
            }
            println!("removed {} and {}", timer.display(), service.display());
        }
        Place::CronFile(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("no cron entry of job {name} at {}", path.display()))?;
            if !text.starts_with(MARKER) {
                bail!("{} was not written by cairn", path.display());
            }
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            println!("removed {}", path.display());
        }
        Place::Crontab => {
            let old = read_crontab()?;
            let new = without_job(&old, &name);
            if new == old {
                bail!("no cron entry of job {name} in the crontab");
            }
            write_crontab(&new)?;
            println!("removed the job {name} from the crontab");
        }
    }
    Ok(crate::exit::OK)
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
        assert_eq!(rows[0]["job"], "b");
        assert_eq!(rows[0]["when"], "0 3 * * *");
    }
}

//! What `cairn run JOB` runs, decided without running anything: which steps a job has,
//! in what order, on which repositories, and when a cadenced step is due. No I/O here;
//! the binary's `cairn run` runs the steps, logs and reports.
//!
//! A job's steps, in order:
//!
//! 1. the job's `before` commands;
//! 2. [`Plan::backups`]: `app backup NAME` for each app of the job, then `backup …` for
//!    each source (with the source's hooks around it);
//! 3. [`Plan::forget`] on the primary repository, when the job forgets and there are
//!    `[retention]` rules;
//! 4. for each offsite repository: [`Plan::copy`] from the primary, then forget there;
//!    when the copy fails the rest of that repository's steps are skipped
//!    ([`Plan::reachable`] leaves it out);
//! 5. [`Plan::maintenance`]: `prune`, then `check --read-data-subset`, on each reachable
//!    repository when [`due`];
//! 6. [`Plan::status`]: `status --json` over every configured repository;
//! 7. the job's `after` commands.

use crate::password::PasswordSource;
use crate::{Cadence, Config, JobConfig, SourceConfig};
use cairn_core::Policy;
use std::path::PathBuf;

/// One step to run: a cairn command on a repository, with hooks around it.
#[derive(Debug, Clone)]
pub struct Step {
    /// What it is, e.g. `app backup kimai`.
    pub label: String,
    /// The repository it runs on (a configured name).
    pub repository: String,
    /// The command's arguments after the common ones (see [`Common`]).
    pub args: Vec<String>,
    /// A source's database password: given to the child (and so to the dump tools) as
    /// `PGPASSWORD` and `MYSQL_PWD`, never on a command line.
    pub password: Option<PasswordSource>,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

impl Step {
    pub fn plain(label: &str, repository: &str, args: Vec<String>) -> Step {
        Step {
            label: label.into(),
            repository: repository.into(),
            args,
            password: None,
            before: Vec::new(),
            after: Vec::new(),
        }
    }
}

/// A cadenced step: `prune` or `check`, with its cadence and arguments.
#[derive(Debug, Clone)]
pub struct Maintenance {
    /// `prune` or `check`.
    pub what: &'static str,
    pub cadence: Cadence,
    pub args: Vec<String>,
}

/// The steps of one job.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The primary repository's name.
    pub primary: String,
    /// The backups: each app, then each source, on the primary repository.
    pub backups: Vec<Step>,
    /// `forget` with the `[retention]` rules (without a repository: it runs on the
    /// primary and on each offsite repository copied to), when the job forgets.
    pub forget: Option<Vec<String>>,
    /// The offsite repositories, in the job's order.
    pub offsite: Vec<String>,
    /// Prune, then check, each on every reachable repository when due.
    pub maintenance: Vec<Maintenance>,
}

impl Plan {
    /// The plan of `job` with the config file's sources and retention rules.
    pub fn new(config: &Config, job: &JobConfig) -> Plan {
        let primary = config.primary_name().to_string();
        Plan {
            backups: backups(job, &config.sources, &primary),
            forget: forget_args(config.retention.as_ref(), job),
            offsite: job.copy_to.clone(),
            maintenance: vec![
                Maintenance {
                    what: "prune",
                    cadence: job.prune_every,
                    args: vec!["prune".to_string()],
                },
                Maintenance {
                    what: "check",
                    cadence: job.check_every,
                    args: vec![
                        "check".to_string(),
                        "--read-data-subset".into(),
                        job.check_subset.clone(),
                    ],
                },
            ],
            primary,
        }
    }

    /// `forget` on `repository`, when the job forgets.
    pub fn forget(&self, repository: &str) -> Option<Step> {
        self.forget
            .as_ref()
            .map(|args| Step::plain("forget", repository, args.clone()))
    }

    /// The copy of the primary repository's snapshots to `offsite`.
    pub fn copy(&self, offsite: &str) -> Step {
        Step::plain(
            &format!("copy to {offsite}"),
            offsite,
            vec![
                "--json".into(),
                "copy".into(),
                "--from-repo".into(),
                self.primary.clone(),
            ],
        )
    }

    /// The repositories the maintenance steps run on: the primary, and each offsite
    /// repository whose copy succeeded (`copied(name)`), in the job's order.
    pub fn reachable(&self, copied: impl Fn(&str) -> bool) -> Vec<String> {
        std::iter::once(self.primary.clone())
            .chain(self.offsite.iter().filter(|o| copied(o)).cloned())
            .collect()
    }

    /// The last step: `status --json` over every configured repository.
    pub fn status(&self) -> Step {
        Step::plain(
            "status",
            &self.primary,
            vec!["--json".into(), "status".into()],
        )
    }
}

/// The backup steps: each app of the job, then each of its sources (a name without a
/// `[[source]]` table is left out: the config file's check reports it).
pub fn backups(job: &JobConfig, sources: &[SourceConfig], primary: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for name in &job.apps {
        steps.push(Step::plain(
            &format!("app backup {name}"),
            primary,
            vec!["--json".into(), "app".into(), "backup".into(), name.clone()],
        ));
    }
    for name in &job.sources {
        if let Some(src) = sources.iter().find(|x| &x.name == name) {
            steps.push(source_step(src, primary));
        }
    }
    steps
}

/// `forget` with the `[retention]` rules, when the job forgets and there are rules.
pub fn forget_args(retention: Option<&Policy>, job: &JobConfig) -> Option<Vec<String>> {
    let r = retention.filter(|_| job.forget)?;
    let mut args = vec!["forget".to_string()];
    for (key, value) in r.rule_pairs() {
        args.push(format!("--{key}"));
        args.push(value);
    }
    Some(args)
}

/// The `backup` step of a `[[source]]`.
pub fn source_step(src: &SourceConfig, repository: &str) -> Step {
    let mut args: Vec<String> = vec!["--json".into(), "backup".into()];
    for t in std::iter::once(&src.name).chain(&src.tags) {
        args.push("--tag".into());
        args.push(t.clone());
    }
    for e in &src.exclude {
        args.push("--exclude".into());
        args.push(e.clone());
    }
    for f in &src.exclude_files {
        args.push("--exclude-file".into());
        args.push(f.to_string_lossy().into_owned());
    }
    if src.exclude_caches {
        args.push("--exclude-caches".into());
    }
    if src.one_file_system {
        args.push("--one-file-system".into());
    }
    for u in &src.postgres {
        args.push("--postgres".into());
        args.push(u.clone());
    }
    for u in &src.mariadb {
        args.push("--mariadb".into());
        args.push(u.clone());
    }
    for p in &src.sqlite {
        args.push("--sqlite".into());
        args.push(p.to_string_lossy().into_owned());
    }
    if let Some(w) = &src.db_wrapper {
        args.push("--db-wrapper".into());
        args.push(w.clone());
    }
    args.extend(src.paths.iter().map(|p| p.to_string_lossy().into_owned()));
    let mut step = Step::plain(&format!("backup {}", src.name), repository, args);
    step.before = src.before.clone();
    step.after = src.after.clone();
    step.password = src.database_password.clone();
    step
}

/// Whether a cadenced step last run at `last` (seconds since the epoch) is due `now`.
pub fn due(cadence: Cadence, last: Option<i64>, now: i64) -> bool {
    cadence.due(last, now)
}

/// What every step's command line starts with: the config file, the repository, and
/// the global settings a child must share.
#[derive(Debug, Clone)]
pub struct Common {
    pub config_file: PathBuf,
    /// `--retry-lock`, in seconds.
    pub retry_lock_secs: u64,
    /// `--no-cache`: this run uses no catalog, so its steps neither.
    pub no_cache: bool,
}

impl Common {
    /// `--config FILE -r REPO --retry-lock Ns [--no-cache]`.
    pub fn args(&self, repository: &str) -> Vec<String> {
        let mut out = vec![
            "--config".to_string(),
            self.config_file.to_string_lossy().into_owned(),
            "-r".into(),
            repository.into(),
            "--retry-lock".into(),
            format!("{}s", self.retry_lock_secs),
        ];
        if self.no_cache {
            out.push("--no-cache".into());
        }
        out
    }

    /// The step's command line, as the log shows it (and a user can run it again).
    pub fn command_line(&self, step: &Step) -> String {
        let mut words = vec!["cairn".to_string()];
        words.extend(self.args(&step.repository));
        words.extend(step.args.iter().cloned());
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        quoted.join(" ")
    }
}

/// A word as a POSIX shell reads it back.
pub fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,%@+".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_reads_back() {
        assert_eq!(shell_quote("--keep-daily"), "--keep-daily");
        assert_eq!(shell_quote("/var/www/kimai"), "/var/www/kimai");
        assert_eq!(shell_quote("*.tmp"), "'*.tmp'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn cadences() {
        let day = 86_400;
        let weekly = Cadence::Every(7 * day);
        assert!(due(weekly, None, 100 * day));
        assert!(!due(weekly, Some(95 * day), 100 * day));
        assert!(due(weekly, Some(93 * day), 100 * day));
        assert!(due(Cadence::Always, Some(100 * day), 100 * day));
        assert!(!due(Cadence::Never, None, 100 * day));
    }

    fn config(text: &str) -> Config {
        let text = format!(
            r#"[repository]
name = "local"
url = "/srv/backup"
password-file = "/etc/cairn/pw"

[[offsite]]
name = "usb"
url = "/mnt/usb"
password-file = "/etc/cairn/pw"

[[offsite]]
name = "disk"
url = "/mnt/disk"
password-file = "/etc/cairn/pw"

[[app]]
name = "kimai"
path = "/var/www/kimai"

[[source]]
name = "etc"
paths = ["/etc"]
tags = ["system"]
exclude = ["*.tmp"]
one-file-system = true
before = ["true"]

{text}"#
        );
        crate::parse(&text, std::path::Path::new("/etc/cairn/config.toml"), false)
            .unwrap_or_else(|p| panic!("{p:?}"))
    }

    #[test]
    fn a_job_backs_up_apps_then_sources_forgets_copies_then_prunes_and_checks() {
        let c = config(
            "[retention]\nkeep-last = 2\nkeep-daily = 7\nkeep-tag = [\"release\"]\n\n\
             [[job]]\nname = \"nightly\"\nprune-every = \"always\"\ncheck-subset = \"10%\"\n",
        );
        let job = c.job(Some("nightly")).unwrap();
        let plan = Plan::new(&c, &job);
        let labels: Vec<(&str, &str)> = plan
            .backups
            .iter()
            .map(|s| (s.label.as_str(), s.repository.as_str()))
            .collect();
        assert_eq!(
            labels,
            [("app backup kimai", "local"), ("backup etc", "local")]
        );
        assert_eq!(plan.backups[0].args, ["--json", "app", "backup", "kimai"]);
        let etc = &plan.backups[1];
        assert_eq!(
            etc.args,
            [
                "--json",
                "backup",
                "--tag",
                "etc",
                "--tag",
                "system",
                "--exclude",
                "*.tmp",
                "--one-file-system",
                "/etc"
            ]
        );
        assert_eq!(etc.before, ["true"]);
        let forget = plan.forget("usb").unwrap();
        assert_eq!(forget.repository, "usb");
        assert_eq!(
            forget.args,
            [
                "forget",
                "--keep-last",
                "2",
                "--keep-daily",
                "7",
                "--keep-tag",
                "release"
            ]
        );
        assert_eq!(plan.offsite, ["usb", "disk"]);
        let copy = plan.copy("disk");
        assert_eq!(
            (copy.label.as_str(), copy.repository.as_str()),
            ("copy to disk", "disk")
        );
        assert_eq!(copy.args, ["--json", "copy", "--from-repo", "local"]);
        // An offsite repository whose copy failed gets no maintenance.
        assert_eq!(plan.reachable(|o| o != "usb"), ["local", "disk"]);
        let m: Vec<(&str, Cadence, Vec<String>)> = plan
            .maintenance
            .iter()
            .map(|m| (m.what, m.cadence, m.args.clone()))
            .collect();
        assert_eq!(m[0], ("prune", Cadence::Always, vec!["prune".to_string()]));
        assert_eq!(m[1].0, "check");
        assert_eq!(m[1].2, ["check", "--read-data-subset", "10%"]);
        assert_eq!(plan.status().args, ["--json", "status"]);
    }

    #[test]
    fn a_job_that_does_not_forget_has_no_forget_step() {
        let c = config("[retention]\nkeep-last = 2\n\n[[job]]\nname = \"n\"\nforget = false\n");
        let plan = Plan::new(&c, &c.job(None).unwrap());
        assert!(plan.forget("local").is_none());
        let c = config("");
        let plan = Plan::new(&c, &c.job(None).unwrap());
        assert!(plan.forget.is_none(), "no [retention], no forget");
    }

    #[test]
    fn command_lines_carry_the_common_options() {
        let common = Common {
            config_file: "/etc/cairn/my config.toml".into(),
            retry_lock_secs: 600,
            no_cache: true,
        };
        let step = Step::plain("check", "usb", vec!["check".into()]);
        assert_eq!(
            common.command_line(&step),
            "cairn --config '/etc/cairn/my config.toml' -r usb --retry-lock 600s --no-cache check"
        );
    }
}

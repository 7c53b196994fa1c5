//! `cairn run [JOB]`: the whole nightly job of the config file.
//!
//! A job is a list of steps, each one cairn command run as a child process of this
//! binary, in this order:
//!
//! 1. `app backup NAME` for each app of the job, and `backup …` for each source (its
//!    before-hooks first, its after-hooks whatever happened);
//! 2. `forget` with the `[retention]` rules on the primary repository;
//! 3. for each offsite repository: `copy --from-repo PRIMARY`, then `forget` there;
//! 4. `prune` on each repository when `prune-every` has passed since the last one;
//! 5. `check --read-data-subset` on each repository when `check-every` has passed;
//! 6. `status`: snapshot counts and ages for the metrics, and the `[copies]` rules.
//!
//! The job's own `before` commands run first and its `after` commands last, each a
//! step of its own.
//!
//! A step that fails does not stop the steps that do not need it: an offsite outage
//! does not skip the local backups, a failed backup does not skip the copy of what the
//! repository already holds. Only the steps of an offsite repository that could not be
//! copied to (its forget, prune and check) are skipped.
//!
//! Why child processes rather than calls: each step is exactly a command a user can
//! run by hand (the log line prints it), one step's crash or memory cannot touch the
//! next, and its output is captured whole for the failure report.
//!
//! Every step gets one log line on standard error; the summary goes to standard output
//! (`--json` too). The exit code is 0 when every step succeeded, 3 when the only
//! trouble was files that could not be read, 1 otherwise. Pings and the Prometheus
//! textfile are in [`crate::monitoring`]; when steps last ran is kept in a small state
//! file (`$XDG_STATE_HOME/cairn/jobs/JOB.json`).

use crate::config::{Cadence, JobConfig, SourceConfig};
use crate::monitoring::{self, Metrics, Ping, StepMetric};
use crate::output::{bytes, duration};
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
enum Outcome {
    Ok,
    /// A backup saved, but some files could not be read (exit code 3).
    Partial,
    Failed,
    /// Not run: what it needs failed, or it is not due.
    Skipped,
}

/// One step's result.
#[derive(Debug, serde::Serialize)]
struct StepResult {
    /// What it is, e.g. `app backup kimai`.
    step: String,
    /// The repository it ran on.
    repository: String,
    outcome: Outcome,
    seconds: f64,
    /// One line: the snapshot and bytes added, the error, why it was skipped.
    detail: String,
    /// The snapshot it saved (backups).
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<String>,
    /// Bytes it added to the repository (backups, copies).
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes_added: Option<u64>,
    /// The last lines it printed, when it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    log_tail: Vec<String>,
}

impl StepResult {
    fn metric(&self) -> StepMetric {
        StepMetric {
            step: self.step.clone(),
            repository: self.repository.clone(),
            ok: matches!(self.outcome, Outcome::Ok | Outcome::Partial),
            skipped: self.outcome == Outcome::Skipped,
            bytes_added: self.bytes_added,
        }
    }
}

/// The body of the last ping: the summary, then the end of each troubled step's output.
fn ping_body(summary: String, results: &[StepResult]) -> String {
    let mut body = summary;
    for r in results.iter().filter(|r| !r.log_tail.is_empty()) {
        body.push_str(&format!("\n--- {} ({}) ---\n", r.step, r.repository));
        for line in &r.log_tail {
            body.push_str(line);
            body.push('\n');
        }
    }
    body
}

/// What the state file keeps between runs: when each cadenced step last succeeded.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct State {
    /// The last run that ended without a failed step (seconds since the epoch).
    last_success: Option<i64>,
    /// The last prune per repository name.
    #[serde(default)]
    prune: BTreeMap<String, i64>,
    /// The last check per repository name.
    #[serde(default)]
    check: BTreeMap<String, i64>,
}

/// The lines of a failed step's output kept for the log and the failure ping.
const TAIL_LINES: usize = 20;

/// `cairn run [JOB] [--random-delay D] [--dry-run]`.
pub fn run(
    s: &Settings,
    job: Option<String>,
    random_delay: Option<Duration>,
    dry_run: bool,
) -> Result<u8> {
    let Some(config_file) = s.config.file.clone() else {
        bail!(
            "cairn run needs a config file with the repository and what to back up (see \
             docs/config.md); none was found"
        );
    };
    let job = s.config.job(job.as_deref())?;
    let runner = Runner {
        s,
        exe: std::env::current_exe().context("finding the cairn binary")?,
        config_file,
        job: &job,
    };
    let steps = runner.plan_backups();
    if dry_run {
        for p in &steps {
            println!("{}", p.command_line(&runner));
        }
        println!("then: forget, copy to each offsite repository, prune and check when due");
        return Ok(crate::exit::OK);
    }
    if steps.is_empty() {
        bail!(
            "job {} backs up nothing: configure [[app]] or [[source]] tables (or name them \
             in the job's apps and sources)",
            job.name
        );
    }
    if let Some(d) = random_delay.filter(|d| !d.is_zero()) {
        let wait = Duration::from_secs(random_below(d.as_secs().max(1)));
        log(
            s,
            &format!("waiting {} (--random-delay)", duration(wait.as_secs_f64())),
        );
        std::thread::sleep(wait);
    }
    let state_path = state_file(&job.name)?;
    let mut state = read_state(&state_path);
    let started = Instant::now();
    let started_at = jiff::Timestamp::now().as_second();
    let rid = monitoring::run_id();
    let ping = job.ping_url.as_deref().map(|u| Ping::new(u, &rid));
    if let Some(p) = &ping {
        if let Err(e) = p.start() {
            log(s, &format!("warning: {e:#}"));
        }
    }
    log(s, &format!("job {} started", job.name));

    let mut results = Vec::new();
    // The job's before-commands (mounting a disk, say). One that fails is a failed step;
    // the rest of the job still runs: the local backups do not depend on it.
    for h in &job.before {
        results.push(runner.hook("before", h));
    }
    for step in &steps {
        results.push(runner.run_step(step));
    }
    let primary = s.config.primary_name().to_string();
    let forget_args = runner.forget_args();
    if let Some(args) = &forget_args {
        results.push(runner.run_step(&Step::plain("forget", &primary, args.clone())));
    }
    let mut reachable = vec![primary.clone()];
    for offsite in &job.copy_to {
        let copy = Step::plain(
            &format!("copy to {offsite}"),
            offsite,
            vec![
                "--json".into(),
                "copy".into(),
                "--from-repo".into(),
                primary.clone(),
            ],
        );
        let r = runner.run_step(&copy);
        let ok = r.outcome == Outcome::Ok;
        results.push(r);
        if !ok {
            results.push(skipped(
                &format!("maintenance of {offsite}"),
                offsite,
                "the copy failed",
            ));
            continue;
        }
        reachable.push(offsite.clone());
        if let Some(args) = &forget_args {
            results.push(runner.run_step(&Step::plain("forget", offsite, args.clone())));
        }
    }
    let now = jiff::Timestamp::now().as_second();
    let prune = vec!["prune".to_string()];
    let check = vec![
        "check".to_string(),
        "--read-data-subset".into(),
        job.check_subset.clone(),
    ];
    for (what, cadence, last, args) in [
        ("prune", job.prune_every, &mut state.prune, prune),
        ("check", job.check_every, &mut state.check, check),
    ] {
        for repo in &reachable {
            if !cadence.due(last.get(repo).copied(), now) {
                if cadence != Cadence::Never {
                    log(s, &format!("{what} of {repo}: not due ({what}-every)"));
                }
                continue;
            }
            let r = runner.run_step(&Step::plain(what, repo, args.clone()));
            if r.outcome == Outcome::Ok {
                last.insert(repo.clone(), now);
            }
            results.push(r);
        }
    }
    let (status_result, repositories) = runner.status();
    results.push(status_result);
    for h in &job.after {
        results.push(runner.hook("after", h));
    }

    let failed = results
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    let partial = results.iter().any(|r| r.outcome == Outcome::Partial);
    let secs = started.elapsed().as_secs_f64();
    if failed == 0 {
        state.last_success = Some(started_at);
    }
    if let Err(e) = write_state(&state_path, &state) {
        log(s, &format!("warning: {e:#}"));
    }
    let summary = summary_text(&job.name, &results, failed, secs);
    if s.json {
        super::print_json(&serde_json::json!({
            "job": job.name,
            "ok": failed == 0,
            "failed_steps": failed,
            "seconds": secs,
            "steps": results,
            "repositories": repositories,
        }))?;
    } else if !s.quiet {
        print!("{summary}");
    }
    if let Some(dir) = &s.config.monitoring.textfile_dir {
        let metrics = Metrics {
            job: job.name.clone(),
            started_at,
            last_success: state.last_success,
            seconds: secs,
            failed_steps: failed,
            steps: results.iter().map(StepResult::metric).collect(),
            repositories,
            now: jiff::Timestamp::now().as_second(),
        };
        match monitoring::write_textfile(dir, &metrics) {
            Ok(path) => log(s, &format!("metrics written to {}", path.display())),
            Err(e) => log(s, &format!("warning: {e:#}")),
        }
    }
    if let Some(p) = &ping {
        let body = ping_body(summary, &results);
        let sent = if failed == 0 {
            p.success(&body)
        } else {
            p.fail(&body)
        };
        if let Err(e) = sent {
            log(s, &format!("warning: {e:#}"));
        }
    }
    Ok(if failed > 0 {
        crate::exit::ERROR
    } else if partial {
        crate::exit::PARTIAL
    } else {
        crate::exit::OK
    })
}

/// One step to run: a cairn command on a repository, with hooks around it.
#[derive(Debug)]
struct Step {
    label: String,
    repository: String,
    args: Vec<String>,
    /// A source's database password: given to the child (and so to the dump tools) as
    /// `PGPASSWORD` and `MYSQL_PWD`, never on a command line.
    password: Option<crate::password::PasswordSource>,
    before: Vec<String>,
    after: Vec<String>,
}

impl Step {
    fn plain(label: &str, repository: &str, args: Vec<String>) -> Step {
        Step {
            label: label.into(),
            repository: repository.into(),
            args,
            password: None,
            before: Vec::new(),
            after: Vec::new(),
        }
    }

    /// The command line, as the log shows it.
    fn command_line(&self, r: &Runner) -> String {
        let mut words = vec!["cairn".to_string()];
        words.extend(r.common_args(&self.repository));
        words.extend(self.args.iter().cloned());
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        quoted.join(" ")
    }
}

/// Runs the steps of one job.
struct Runner<'a> {
    s: &'a Settings,
    exe: PathBuf,
    config_file: PathBuf,
    job: &'a JobConfig,
}

impl Runner<'_> {
    /// The backup steps: each app, then each source.
    fn plan_backups(&self) -> Vec<Step> {
        let primary = self.s.config.primary_name();
        let mut steps = Vec::new();
        for name in &self.job.apps {
            steps.push(Step::plain(
                &format!("app backup {name}"),
                primary,
                vec!["--json".into(), "app".into(), "backup".into(), name.clone()],
            ));
        }
        for name in &self.job.sources {
            if let Some(src) = self.s.config.sources.iter().find(|x| &x.name == name) {
                steps.push(source_step(src, primary));
            }
        }
        steps
    }

    /// `--config FILE -r REPO` and the global settings a child must share.
    fn common_args(&self, repository: &str) -> Vec<String> {
        let mut out = vec![
            "--config".to_string(),
            self.config_file.to_string_lossy().into_owned(),
            "-r".into(),
            repository.into(),
            "--retry-lock".into(),
            format!("{}s", self.s.locking.retry.as_secs()),
        ];
        if self.s.cache_dir.is_none() {
            out.push("--no-cache".into());
        }
        out
    }

    /// `forget` with the `[retention]` rules, when the job forgets.
    fn forget_args(&self) -> Option<Vec<String>> {
        let r = self
            .s
            .config
            .retention
            .as_ref()
            .filter(|_| self.job.forget)?;
        let mut args = vec!["forget".to_string()];
        for (key, n) in &r.counts {
            args.push(format!("--{key}"));
            args.push(n.to_string());
        }
        if let Some(w) = &r.keep_within {
            args.push("--keep-within".into());
            args.push(w.clone());
        }
        for t in &r.keep_tags {
            args.push("--keep-tag".into());
            args.push(t.clone());
        }
        Some(args)
    }

    /// Runs one step (its hooks too) and logs how it ended.
    fn run_step(&self, step: &Step) -> StepResult {
        let started = Instant::now();
        log(
            self.s,
            &format!(
                "{} ({}): {}",
                step.label,
                step.repository,
                step.command_line(self)
            ),
        );
        let mut result = StepResult {
            step: step.label.clone(),
            repository: step.repository.clone(),
            outcome: Outcome::Ok,
            seconds: 0.0,
            detail: String::new(),
            snapshot: None,
            bytes_added: None,
            log_tail: Vec::new(),
        };
        let mut hook_failed = None;
        for h in &step.before {
            if let Err(e) = run_hook("before", h) {
                hook_failed = Some(e.to_string());
                break;
            }
        }
        if let Some(why) = hook_failed {
            result.outcome = Outcome::Failed;
            result.detail = why.clone();
            result.log_tail.push(why);
        } else {
            match self.child(step) {
                Ok((code, stdout, tail)) => {
                    let json: Option<serde_json::Value> = serde_json::from_str(&stdout).ok();
                    result.outcome = match code {
                        Some(0) => Outcome::Ok,
                        Some(3) => Outcome::Partial,
                        _ => Outcome::Failed,
                    };
                    if let Some(v) = &json {
                        result.snapshot = v["snapshot"].as_str().map(String::from);
                        result.bytes_added = v["summary"]["added"]["bytes_stored"]
                            .as_u64()
                            .or_else(|| v["added"]["bytes_stored"].as_u64());
                    }
                    result.detail = match (result.outcome, &result.snapshot) {
                        (Outcome::Failed, _) => tail
                            .iter()
                            .rev()
                            .find(|l| !l.trim().is_empty())
                            .cloned()
                            .unwrap_or_else(|| format!("exit code {code:?}")),
                        (_, Some(id)) => format!(
                            "snapshot {}, added {}",
                            &id[..id.len().min(8)],
                            bytes(result.bytes_added.unwrap_or(0))
                        ),
                        _ => match result.bytes_added {
                            Some(b) => format!("added {}", bytes(b)),
                            None => String::new(),
                        },
                    };
                    if result.outcome != Outcome::Ok {
                        result.log_tail = tail;
                    }
                }
                Err(e) => {
                    result.outcome = Outcome::Failed;
                    result.detail = format!("{e:#}");
                }
            }
        }
        for h in &step.after {
            if let Err(e) = run_hook("after", h) {
                let why = e.to_string();
                log(self.s, &why);
                result.log_tail.push(why.clone());
                if result.outcome != Outcome::Failed {
                    result.outcome = Outcome::Failed;
                    result.detail = why;
                }
            }
        }
        result.seconds = started.elapsed().as_secs_f64();
        let word = match result.outcome {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped",
        };
        let detail = if result.detail.is_empty() {
            String::new()
        } else {
            format!(", {}", result.detail)
        };
        log(
            self.s,
            &format!(
                "{} ({}): {word} in {}{detail}",
                step.label,
                step.repository,
                duration(result.seconds)
            ),
        );
        result
    }

    /// Runs one of the job's `before` or `after` commands as a step of its own.
    fn hook(&self, which: &str, command: &str) -> StepResult {
        let started = Instant::now();
        log(self.s, &format!("{which}: {command}"));
        let mut r = skipped(which, self.s.config.primary_name(), "");
        r.outcome = match run_hook(which, command) {
            Ok(()) => Outcome::Ok,
            Err(e) => {
                r.detail = e.to_string();
                r.log_tail.push(r.detail.clone());
                Outcome::Failed
            }
        };
        r.seconds = started.elapsed().as_secs_f64();
        let word = if r.outcome == Outcome::Ok {
            "ok"
        } else {
            "FAILED"
        };
        log(
            self.s,
            &format!("{which}: {word} in {}", duration(r.seconds)),
        );
        r
    }

    /// Runs the step's cairn command; returns its exit code, standard output, and the
    /// last lines of everything it printed. Its standard error is also passed on, each
    /// line indented, as it comes.
    fn child(&self, step: &Step) -> Result<(Option<i32>, String, Vec<String>)> {
        let mut cmd = cairn_core::command(&self.exe);
        // The step is cairn itself: it gets cairn's password variables back (they say
        // how to open the repositories), and removes them again from what it starts.
        cmd.envs(cairn_core::secret_envs());
        if let Some(source) = &step.password {
            let pw = crate::password::read_password(source, false, "database password")?;
            let pw = std::ffi::OsStr::from_bytes(pw.as_bytes()).to_os_string();
            cmd.env("PGPASSWORD", &pw).env("MYSQL_PWD", &pw);
        }
        cmd.args(self.common_args(&step.repository))
            .args(&step.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        let mut stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let quiet = self.s.quiet;
        let errors = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !quiet {
                    eprintln!("    {line}");
                }
                lines.push(line);
            }
            lines
        });
        let mut out = String::new();
        let read = stdout.read_to_string(&mut out);
        let status = child.wait().context("waiting for a step")?;
        let err_lines = errors.join().unwrap_or_default();
        read.context("reading a step's output")?;
        let mut all: Vec<String> = err_lines;
        // Standard output is a JSON document for most steps: its last lines say little.
        if serde_json::from_str::<serde_json::Value>(&out).is_err() {
            all.extend(out.lines().map(String::from));
        }
        let tail = all.split_off(all.len().saturating_sub(TAIL_LINES));
        Ok((status.code(), out, tail))
    }

    /// The last step: `status --json` over every configured repository, for the
    /// metrics (snapshot counts, newest snapshot per repository) and the `[copies]`
    /// rules.
    fn status(&self) -> (StepResult, Vec<monitoring::RepositoryMetric>) {
        let step = Step::plain(
            "status",
            self.s.config.primary_name(),
            vec!["--json".into(), "status".into()],
        );
        let started = Instant::now();
        log(self.s, &format!("status: {}", step.command_line(self)));
        let mut result = StepResult {
            step: "status".into(),
            repository: step.repository.clone(),
            outcome: Outcome::Failed,
            seconds: 0.0,
            detail: String::new(),
            snapshot: None,
            bytes_added: None,
            log_tail: Vec::new(),
        };
        let mut repos = Vec::new();
        match self.child(&step) {
            Ok((code, out, tail)) => {
                let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
                for r in v["repositories"].as_array().into_iter().flatten() {
                    repos.push(monitoring::RepositoryMetric {
                        name: r["name"].as_str().unwrap_or_default().to_string(),
                        offsite: r["offsite"].as_bool().unwrap_or(false),
                        readable: r["readable"].as_bool().unwrap_or(false),
                        snapshots: r["snapshots"].as_u64(),
                        newest: r["newest"]
                            .as_str()
                            .and_then(|t| t.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())),
                    });
                }
                let mut warnings: Vec<String> = Vec::new();
                let all = v["groups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|g| g["warnings"].as_array().cloned().unwrap_or_default());
                for w in all.filter_map(|w| w.as_str().map(String::from)) {
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                if code == Some(0) {
                    result.outcome = Outcome::Ok;
                } else {
                    result.detail = warnings
                        .first()
                        .cloned()
                        .or_else(|| tail.last().cloned())
                        .unwrap_or_else(|| "a repository cannot be read".into());
                    result.log_tail = warnings.into_iter().chain(tail).collect();
                }
            }
            Err(e) => result.detail = format!("{e:#}"),
        }
        result.seconds = started.elapsed().as_secs_f64();
        let word = if result.outcome == Outcome::Ok {
            "ok"
        } else {
            "FAILED"
        };
        log(
            self.s,
            &format!(
                "status: {word} in {}{}",
                duration(result.seconds),
                if result.detail.is_empty() {
                    String::new()
                } else {
                    format!(", {}", result.detail)
                }
            ),
        );
        (result, repos)
    }
}

/// The `backup` step of a `[[source]]`.
fn source_step(src: &SourceConfig, repository: &str) -> Step {
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

fn skipped(step: &str, repository: &str, why: &str) -> StepResult {
    StepResult {
        step: step.into(),
        repository: repository.into(),
        outcome: Outcome::Skipped,
        seconds: 0.0,
        detail: why.into(),
        snapshot: None,
        bytes_added: None,
        log_tail: Vec::new(),
    }
}

/// Runs a hook (see [`cairn_apps::hook::run`]); what it prints goes to standard error,
/// indented, like a step's output (standard output carries the summary).
fn run_hook(which: &str, command: &str) -> cairn_apps::Result<()> {
    cairn_apps::hook::run(which, command, &mut |line| eprintln!("    {line}"))
}

/// The summary printed at the end, and sent with the last ping.
fn summary_text(job: &str, results: &[StepResult], failed: usize, secs: f64) -> String {
    let mut out = format!(
        "job {job}: {} in {}\n",
        if failed == 0 {
            "ok".to_string()
        } else {
            format!("{failed} step(s) FAILED")
        },
        duration(secs)
    );
    for r in results {
        let word = match r.outcome {
            Outcome::Ok => "ok",
            Outcome::Partial => "partial",
            Outcome::Failed => "FAILED",
            Outcome::Skipped => "skipped",
        };
        let line = format!(
            "  {word:<8} {:<28} {:<12} {:>8}  {}",
            r.step,
            r.repository,
            duration(r.seconds),
            r.detail
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One log line on standard error, with the local time.
fn log(s: &Settings, line: &str) {
    if s.quiet && !line.contains("FAILED") && !line.starts_with("warning") {
        return;
    }
    let now = jiff::Zoned::now();
    eprintln!("{} cairn run: {line}", now.strftime("%Y-%m-%d %H:%M:%S"));
}

/// A word as a POSIX shell reads it back.
fn shell_quote(w: &str) -> String {
    if !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,%@+".contains(c))
    {
        w.to_string()
    } else {
        format!("'{}'", w.replace('\'', "'\\''"))
    }
}

/// A number below `n` that differs from run to run (for the random delay: no
/// cryptographic use).
fn random_below(n: u64) -> u64 {
    monitoring::random_u64() % n
}

/// `$XDG_STATE_HOME/cairn/jobs/JOB.json` (else `~/.local/state/...`).
fn state_file(job: &str) -> Result<PathBuf> {
    Ok(crate::settings::state_dir("the job's state")?
        .join("jobs")
        .join(format!("{job}.json")))
}

/// The state of the last runs; empty when there is none or it cannot be read (every
/// cadenced step is then due: the safe side).
fn read_state(path: &Path) -> State {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_state(path: &Path, state: &State) -> Result<()> {
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(state)?)
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
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
        assert!(weekly.due(None, 100 * day));
        assert!(!weekly.due(Some(95 * day), 100 * day));
        assert!(weekly.due(Some(93 * day), 100 * day));
        assert!(Cadence::Always.due(Some(100 * day), 100 * day));
        assert!(!Cadence::Never.due(None, 100 * day));
    }

    #[test]
    fn random_delays_stay_below_their_bound() {
        for n in [1, 2, 3600] {
            assert!(random_below(n) < n);
        }
    }
}

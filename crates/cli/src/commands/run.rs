//! `cairn run [JOB]`: the whole nightly job of the config file.
//!
//! A job is a list of steps, each one cairn command run as a child process of this
//! binary; which steps, in what order and on which repositories is decided in
//! [`cairn_config::plan`] (apps and sources backed up, forget, copy to each offsite repository
//! and forget there, prune and check when due, status, the job's own hooks first and
//! last). This module runs them, logs, and reports.
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
//! textfile are in [`cairn_monitor`]; when steps last ran is kept in a small state
//! file (`$XDG_STATE_HOME/cairn/jobs/JOB.json`).

use crate::output::{bytes, duration};
use crate::settings::Settings;
use anyhow::{bail, Context, Result};
use cairn_config::plan::{self, Common, Plan, Step};
use cairn_config::Cadence;
use cairn_monitor::{self as monitoring, Metrics, Ping, StepMetric};
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
        common: Common {
            config_file,
            retry_lock_secs: s.locking.retry.as_secs(),
            no_cache: s.cache_dir.is_none(),
        },
    };
    let plan = Plan::new(&s.config, &job);
    let steps = &plan.backups;
    if dry_run {
        for p in steps {
            println!("{}", runner.common.command_line(p));
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
            log(s, &format!("warning: {e}"));
        }
    }
    log(s, &format!("job {} started", job.name));

    let mut results = Vec::new();
    // The job's before-commands (mounting a disk, say). One that fails is a failed step;
    // the rest of the job still runs: the local backups do not depend on it.
    for h in &job.before {
        results.push(runner.hook("before", h));
    }
    for step in steps {
        results.push(runner.run_step(step));
    }
    if let Some(forget) = plan.forget(&plan.primary) {
        results.push(runner.run_step(&forget));
    }
    let mut copied: Vec<&str> = Vec::new();
    for offsite in &plan.offsite {
        let r = runner.run_step(&plan.copy(offsite));
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
        copied.push(offsite);
        if let Some(forget) = plan.forget(offsite) {
            results.push(runner.run_step(&forget));
        }
    }
    let reachable = plan.reachable(|o| copied.contains(&o));
    let now = jiff::Timestamp::now().as_second();
    for m in &plan.maintenance {
        let (what, cadence) = (m.what, m.cadence);
        let last = if what == "prune" {
            &mut state.prune
        } else {
            &mut state.check
        };
        for repo in &reachable {
            if !plan::due(cadence, last.get(repo).copied(), now) {
                if cadence != Cadence::Never {
                    log(s, &format!("{what} of {repo}: not due ({what}-every)"));
                }
                continue;
            }
            let r = runner.run_step(&Step::plain(what, repo, m.args.clone()));
            if r.outcome == Outcome::Ok {
                last.insert(repo.clone(), now);
            }
            results.push(r);
        }
    }
    let (status_result, repositories) = runner.status(&plan.status());
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
            // With its cause (the I/O error), as anyhow's alternate form prints it.
            Err(e) => log(s, &format!("warning: {:#}", anyhow::Error::new(e))),
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
            log(s, &format!("warning: {e}"));
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

/// Runs the steps of one job.
struct Runner<'a> {
    s: &'a Settings,
    exe: PathBuf,
    /// What every step's command line starts with.
    common: Common,
}

impl Runner<'_> {
    /// Runs one step (its hooks too) and logs how it ended.
    fn run_step(&self, step: &Step) -> StepResult {
        let started = Instant::now();
        log(
            self.s,
            &format!(
                "{} ({}): {}",
                step.label,
                step.repository,
                self.common.command_line(step)
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
        cmd.args(self.common.args(&step.repository))
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
    fn status(&self, step: &Step) -> (StepResult, Vec<monitoring::RepositoryMetric>) {
        let started = Instant::now();
        log(
            self.s,
            &format!("status: {}", self.common.command_line(step)),
        );
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
        match self.child(step) {
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
    fn random_delays_stay_below_their_bound() {
        for n in [1, 2, 3600] {
            assert!(random_below(n) < n);
        }
    }
}

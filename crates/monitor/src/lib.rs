//! cairn-monitor: what `cairn run` tells monitoring, healthchecks-style pings and a
//! Prometheus textfile.
//!
//! Main items:
//! - [`Ping`]: the pings of one run to one URL ([`Ping::start`], [`Ping::success`],
//!   [`Ping::fail`]), paired by a [`run_id`].
//! - [`Metrics`] (with [`StepMetric`] and [`RepositoryMetric`]): what a run measured;
//!   [`render`] writes it in the text exposition format and [`write_textfile`] puts it
//!   where the node exporter's textfile collector reads it.
//! - [`Error`]: a ping that could not be sent, a textfile that could not be written.
//!
//! What it is not: it runs no step and reads no repository (the binary's `cairn run`
//! does, and fills in [`Metrics`]); it decides nothing about failures: a ping that
//! cannot be sent is an error here, and a warning for the caller, never a failure of
//! the job.
//!
//! **Pings** follow the protocol of healthchecks.io (which many self-hosters run
//! themselves, and which Uptime Kuma's and others' push monitors accept in its simple
//! form): `POST URL/start` when the job starts, `POST URL` when it succeeded and
//! `POST URL/fail` when a step failed, each with `?rid=RUN-ID` so the server pairs start
//! and end (and measures the duration), the end pings with the summary and the tail of
//! the failed steps' output as body (healthchecks keeps the first 100 kB). A ping that
//! cannot be sent is a warning, never a failure of the job: monitoring must not break
//! backups. Each is tried three times, 10 seconds at most each.
//!
//! **The textfile** is `cairn_JOB.prom` in `[monitoring] textfile-dir`, for the node
//! exporter's textfile collector, written whole (temporary file, then rename) so that
//! the collector never reads half of it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What can go wrong: a ping not sent, a textfile not written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Every attempt of a ping failed. Only the host is named: the URL is a secret of
    /// sorts (anyone who has it can ping).
    #[error("the ping{suffix} to {host} failed: {reason}")]
    Ping {
        /// `/start`, `/fail`, or empty for the success ping.
        suffix: String,
        host: String,
        /// The last attempt's error.
        reason: String,
    },
    /// Writing (or renaming into place) a file of the textfile directory.
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The longest body sent with a ping (healthchecks.io keeps 100 kB).
const MAX_BODY: usize = 100_000;

/// A run's pings to one URL.
#[derive(Debug)]
pub struct Ping {
    url: String,
    rid: String,
    agent: ureq::Agent,
}

impl Ping {
    /// Pings to `url` (without a trailing `/`) for the run `rid`.
    pub fn new(url: &str, rid: &str) -> Ping {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .build();
        Ping {
            url: url.trim_end_matches('/').to_string(),
            rid: rid.to_string(),
            agent: config.into(),
        }
    }

    /// The job started.
    pub fn start(&self) -> Result<()> {
        self.send("/start", "")
    }

    /// The job succeeded; `body` is its summary.
    pub fn success(&self, body: &str) -> Result<()> {
        self.send("", body)
    }

    /// The job failed; `body` is its summary and the failed steps' output.
    pub fn fail(&self, body: &str) -> Result<()> {
        self.send("/fail", body)
    }

    fn send(&self, suffix: &str, body: &str) -> Result<()> {
        // Split the URL at its query, if any: the suffix goes before it.
        let (base, query) = match self.url.split_once('?') {
            Some((b, q)) => (b, format!("?{q}&rid={}", self.rid)),
            None => (self.url.as_str(), format!("?rid={}", self.rid)),
        };
        let url = format!("{base}{suffix}{query}");
        let body = truncate(body, MAX_BODY);
        let mut last = None;
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_secs(attempt));
            }
            match self
                .agent
                .post(&url)
                .header("Content-Type", "text/plain; charset=utf-8")
                .send(body)
            {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        // The URL is a secret of sorts (anyone who has it can ping): name its host only.
        let host = base.split('/').nth(2).unwrap_or("?");
        Err(Error::Ping {
            suffix: suffix.to_string(),
            host: host.to_string(),
            reason: last.map(|e| e.to_string()).unwrap_or_default(),
        })
    }
}

/// The first `max` bytes of `s`, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A run id in the form healthchecks.io accepts (a UUID, version 4).
pub fn run_id() -> String {
    let mut bytes = [0u8; 16];
    for half in bytes.chunks_mut(8) {
        half.copy_from_slice(&random_u64().to_le_bytes());
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// A number that differs from call to call and run to run (std's per-hasher random
/// keys, with the time): for run ids and random delays, no cryptographic use.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// What a run measured, for the textfile.
#[derive(Debug)]
pub struct Metrics {
    pub job: String,
    /// When the run started (seconds since the epoch).
    pub started_at: i64,
    /// When a run last succeeded, this one included.
    pub last_success: Option<i64>,
    /// How long the run took.
    pub seconds: f64,
    pub failed_steps: usize,
    pub steps: Vec<StepMetric>,
    pub repositories: Vec<RepositoryMetric>,
    /// When the metrics were taken, for ages.
    pub now: i64,
}

/// One step of the run.
#[derive(Debug)]
pub struct StepMetric {
    pub step: String,
    pub repository: String,
    pub ok: bool,
    pub skipped: bool,
    pub bytes_added: Option<u64>,
}

/// One repository, as `cairn status` saw it at the end of the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepositoryMetric {
    pub name: String,
    pub offsite: bool,
    pub readable: bool,
    pub snapshots: Option<u64>,
    /// The newest snapshot's time (seconds since the epoch).
    pub newest: Option<i64>,
}

/// A label value, escaped as the exposition format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The metrics in the Prometheus text exposition format.
pub fn render(m: &Metrics) -> String {
    let job = label(&m.job);
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, String)>| {
        if samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    };
    let j = format!("job=\"{job}\"");
    family(
        "cairn_job_last_run_timestamp_seconds",
        "gauge",
        "When the job last started.",
        vec![(j.clone(), m.started_at.to_string())],
    );
    family(
        "cairn_job_last_success_timestamp_seconds",
        "gauge",
        "When the job last ended with no failed step.",
        m.last_success
            .map(|t| vec![(j.clone(), t.to_string())])
            .unwrap_or_default(),
    );
    family(
        "cairn_job_success",
        "gauge",
        "1 when the last run had no failed step, else 0.",
        vec![(j.clone(), u8::from(m.failed_steps == 0).to_string())],
    );
    family(
        "cairn_job_failed_steps",
        "gauge",
        "Steps of the last run that failed.",
        vec![(j.clone(), m.failed_steps.to_string())],
    );
    family(
        "cairn_job_duration_seconds",
        "gauge",
        "How long the last run took.",
        vec![(j.clone(), format!("{:.3}", m.seconds))],
    );
    family(
        "cairn_step_success",
        "gauge",
        "1 when the step succeeded in the last run, 0 when it failed or was skipped.",
        m.steps
            .iter()
            .map(|s| {
                (
                    format!(
                        "{j},step=\"{}\",repository=\"{}\"",
                        label(&s.step),
                        label(&s.repository)
                    ),
                    u8::from(s.ok && !s.skipped).to_string(),
                )
            })
            .collect(),
    );
    family(
        "cairn_step_added_bytes",
        "gauge",
        "Bytes a backup or copy of the last run added to its repository (after \
         deduplication and compression).",
        m.steps
            .iter()
            .filter_map(|s| {
                s.bytes_added.map(|b| {
                    (
                        format!(
                            "{j},step=\"{}\",repository=\"{}\"",
                            label(&s.step),
                            label(&s.repository)
                        ),
                        b.to_string(),
                    )
                })
            })
            .collect(),
    );
    let repo_labels = |r: &RepositoryMetric| {
        format!(
            "{j},repository=\"{}\",offsite=\"{}\"",
            label(&r.name),
            r.offsite
        )
    };
    family(
        "cairn_repository_up",
        "gauge",
        "1 when the repository could be opened and read at the end of the run.",
        m.repositories
            .iter()
            .map(|r| (repo_labels(r), u8::from(r.readable).to_string()))
            .collect(),
    );
    family(
        "cairn_repository_snapshots",
        "gauge",
        "Snapshots in the repository.",
        m.repositories
            .iter()
            .filter_map(|r| r.snapshots.map(|n| (repo_labels(r), n.to_string())))
            .collect(),
    );
    family(
        "cairn_repository_newest_snapshot_timestamp_seconds",
        "gauge",
        "The time of the newest snapshot in the repository.",
        m.repositories
            .iter()
            .filter_map(|r| r.newest.map(|t| (repo_labels(r), t.to_string())))
            .collect(),
    );
    family(
        "cairn_repository_newest_snapshot_age_seconds",
        "gauge",
        "How old the newest snapshot in the repository was at the end of the run; for an \
         offsite repository, the age of its newest copy.",
        m.repositories
            .iter()
            .filter_map(|r| {
                r.newest
                    .map(|t| (repo_labels(r), (m.now - t).max(0).to_string()))
            })
            .collect(),
    );
    out
}

/// Writes `cairn_JOB.prom` into `dir` whole; returns its path.
pub fn write_textfile(dir: &Path, m: &Metrics) -> Result<PathBuf> {
    let path = dir.join(format!("cairn_{}.prom", m.job));
    // The collector reads only `*.prom`: the temporary name must not end so.
    let tmp = dir.join(format!(".cairn_{}.prom.tmp", m.job));
    std::fs::write(&tmp, render(m)).map_err(|source| Error::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, &path).map_err(|source| Error::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_version_4_uuids_and_differ() {
        let a = run_id();
        let b = run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]), "{a}");
    }

    #[test]
    fn labels_are_escaped_and_the_text_has_help_and_type() {
        let m = Metrics {
            job: "night\"ly".into(),
            started_at: 1000,
            last_success: None,
            seconds: 1.5,
            failed_steps: 1,
            steps: vec![StepMetric {
                step: "backup a".into(),
                repository: "usb".into(),
                ok: false,
                skipped: false,
                bytes_added: Some(42),
            }],
            repositories: vec![RepositoryMetric {
                name: "usb".into(),
                offsite: true,
                readable: true,
                snapshots: Some(3),
                newest: Some(900),
            }],
            now: 1000,
        };
        let text = render(&m);
        assert!(
            text.contains("cairn_job_success{job=\"night\\\"ly\"} 0\n"),
            "{text}"
        );
        assert!(!text.contains("cairn_job_last_success_timestamp_seconds"));
        assert!(text.contains(
            "cairn_repository_newest_snapshot_age_seconds{job=\"night\\\"ly\",repository=\"usb\",offsite=\"true\"} 100\n"
        ));
        assert!(text.contains("# TYPE cairn_step_added_bytes gauge\n"));
        assert_eq!(truncate("héllo", 2), "h");
    }
}

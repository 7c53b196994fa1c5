//! The resolved model: what the config file says, checked, with every default filled in.
//! [`crate::parse`] builds it; the commands read it.

use crate::duration::parse_age;
use crate::error::{Error, Result};
use crate::password::PasswordSource;
use std::path::PathBuf;

/// What the config file says, checked. The default is what no file says.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it was read from; `None` when there was none.
    pub file: Option<PathBuf>,
    /// `[repository]`: the primary repository.
    pub repository: RepositoryConfig,
    /// `[[offsite]]`: the repositories that hold copies, in the file's order.
    pub offsite: Vec<RepositoryConfig>,
    /// `[copies]`: what `cairn status` checks the copies against.
    pub copies: CopiesConfig,
    /// `[[app]]`: the application installations, in the file's order.
    pub apps: Vec<AppConfig>,
    /// `[retention]`: the rules `cairn run` applies with `forget`.
    pub retention: Option<cairn_core::Policy>,
    /// `[[source]]`: paths and databases backed up without a front-end, in the file's
    /// order.
    pub sources: Vec<SourceConfig>,
    /// `[[job]]`: the jobs of `cairn run`, in the file's order; see [`Config::jobs`].
    pub jobs: Vec<JobConfig>,
    /// `[monitoring]`.
    pub monitoring: MonitoringConfig,
}

impl Config {
    /// The configured installation named `name`.
    pub fn app(&self, name: &str) -> Option<&AppConfig> {
        self.apps.iter().find(|a| a.name == name)
    }

    /// The configured instance names, for messages: `a, b` or `none`.
    pub fn app_names(&self) -> String {
        if self.apps.is_empty() {
            return "none".into();
        }
        let names: Vec<&str> = self.apps.iter().map(|a| a.name.as_str()).collect();
        names.join(", ")
    }

    /// The jobs of `cairn run`: the `[[job]]` tables, or when there is none, one job
    /// named `nightly` with every default (every app, every source, a copy to every
    /// offsite repository).
    pub fn jobs(&self) -> Vec<JobConfig> {
        if !self.jobs.is_empty() {
            return self.jobs.clone();
        }
        vec![JobConfig::with_defaults(DEFAULT_JOB.into(), self)]
    }

    /// The job called `name`, or without a name the only job; the error names the jobs
    /// there are.
    pub fn job(&self, name: Option<&str>) -> Result<JobConfig> {
        let jobs = self.jobs();
        let names = jobs
            .iter()
            .map(|j| j.name.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        match name {
            Some(n) => match jobs.iter().find(|j| j.name == n) {
                Some(j) => Ok(j.clone()),
                None => Err(Error::NoJob {
                    name: n.to_string(),
                    jobs: names,
                }),
            },
            None if jobs.len() == 1 => Ok(jobs[0].clone()),
            None => Err(Error::SeveralJobs(names)),
        }
    }

    /// The configured repository called `name`: `[repository]` (named `primary` unless
    /// it has a name) or an `[[offsite]]`.
    pub fn named_repository(&self, name: &str) -> Option<&RepositoryConfig> {
        if self.repository.name.as_deref().unwrap_or(PRIMARY) == name {
            return Some(&self.repository);
        }
        self.offsite
            .iter()
            .find(|o| o.name.as_deref() == Some(name))
    }

    /// The name of `[repository]`.
    pub fn primary_name(&self) -> &str {
        self.repository.name.as_deref().unwrap_or(PRIMARY)
    }
}

/// The name of `[repository]` when it has none.
pub const PRIMARY: &str = "primary";

/// The name of the job of a file without `[[job]]`.
pub const DEFAULT_JOB: &str = "nightly";

/// One `[[source]]`: paths and databases backed up into one snapshot, without a
/// front-end (what `cairn backup` takes on its command line).
#[derive(Debug, Clone, Default)]
pub struct SourceConfig {
    /// `name`: how jobs name it; also a tag of its snapshots.
    pub name: String,
    /// `paths`: files and directories.
    pub paths: Vec<PathBuf>,
    /// `exclude`: patterns, as `--exclude`.
    pub exclude: Vec<String>,
    /// `exclude-file`: files of patterns, as `--exclude-file`.
    pub exclude_files: Vec<PathBuf>,
    /// `exclude-caches`: skip directories holding a CACHEDIR.TAG.
    pub exclude_caches: bool,
    /// `one-file-system`: stay on the file system of each path.
    pub one_file_system: bool,
    /// `postgres`: database URLs, without passwords.
    pub postgres: Vec<String>,
    /// `mariadb`: database URLs, without passwords.
    pub mariadb: Vec<String>,
    /// `sqlite`: database files.
    pub sqlite: Vec<PathBuf>,
    /// `db-wrapper`: the command the dump tools run through.
    pub db_wrapper: Option<String>,
    /// `database-password-file` or `-command`: the password of its database servers.
    pub database_password: Option<PasswordSource>,
    /// `tags`: tags of its snapshots, besides its name.
    pub tags: Vec<String>,
    /// `before`: shell commands run before the backup.
    pub before: Vec<String>,
    /// `after`: shell commands run after it, whatever happened.
    pub after: Vec<String>,
}

/// How often a step of a job runs: `prune-every`, `check-every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    /// `always`: on every run.
    Always,
    /// `never`.
    Never,
    /// An age such as `7d`: when the step last succeeded longer ago (or never).
    Every(i64),
}

impl Cadence {
    /// Parses `always`, `never` or an age.
    pub fn parse(text: &str) -> Result<Cadence, String> {
        match text.trim() {
            "always" => Ok(Cadence::Always),
            "never" => Ok(Cadence::Never),
            t => parse_age(t)
                .map(Cadence::Every)
                .map_err(|e| format!("{e}, always or never")),
        }
    }

    /// Whether the step is due at `now` when it last succeeded at `last` (seconds since
    /// the epoch).
    pub fn due(self, last: Option<i64>, now: i64) -> bool {
        match (self, last) {
            (Cadence::Always, _) => true,
            (Cadence::Never, _) => false,
            (Cadence::Every(_), None) => true,
            (Cadence::Every(secs), Some(t)) => now - t >= secs,
        }
    }
}

/// One job of `cairn run`, with every default filled in.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// `name`: what `cairn run` and `cairn schedule` take.
    pub name: String,
    /// `apps`: the `[[app]]` names it backs up (default: all).
    pub apps: Vec<String>,
    /// `sources`: the `[[source]]` names it backs up (default: all).
    pub sources: Vec<String>,
    /// `copy-to`: the `[[offsite]]` names it copies to (default: all).
    pub copy_to: Vec<String>,
    /// `forget`: apply `[retention]` (default: when there is one).
    pub forget: bool,
    /// `prune-every` (default `7d`).
    pub prune_every: Cadence,
    /// `check-every` (default `7d`).
    pub check_every: Cadence,
    /// `check-subset`: the share of packs a check reads (default `5%`), as
    /// `check --read-data-subset` takes it.
    pub check_subset: String,
    /// `schedule`: when the timer runs it, a systemd calendar expression or `HH:MM`
    /// (default `02:00`).
    pub schedule: String,
    /// `randomized-delay`: the timer waits up to this long more (seconds; default 1h).
    pub randomized_delay: u64,
    /// `ping-url`: a healthchecks-style URL told of start, success and failure.
    pub ping_url: Option<String>,
    /// `before`: shell commands run before the first step (e.g. mounting the disk of
    /// an offsite repository).
    pub before: Vec<String>,
    /// `after`: shell commands run after the last step, whatever happened.
    pub after: Vec<String>,
}

impl JobConfig {
    /// A job called `name` with every default of `config`.
    pub(crate) fn with_defaults(name: String, config: &Config) -> JobConfig {
        JobConfig {
            name,
            apps: config.apps.iter().map(|a| a.name.clone()).collect(),
            sources: config.sources.iter().map(|s| s.name.clone()).collect(),
            copy_to: config
                .offsite
                .iter()
                .filter_map(|o| o.name.clone())
                .collect(),
            forget: config.retention.is_some(),
            prune_every: Cadence::Every(7 * 86_400),
            check_every: Cadence::Every(7 * 86_400),
            check_subset: "5%".into(),
            schedule: "02:00".into(),
            randomized_delay: 3600,
            ping_url: None,
            before: Vec::new(),
            after: Vec::new(),
        }
    }
}

/// `[monitoring]`.
#[derive(Debug, Clone, Default)]
pub struct MonitoringConfig {
    /// `textfile-dir`: where `cairn run` writes `cairn_JOB.prom` for the Prometheus
    /// node exporter's textfile collector.
    pub textfile_dir: Option<PathBuf>,
}

/// `[copies]`.
#[derive(Debug, Clone, Default)]
pub struct CopiesConfig {
    /// `offsite-max-age`: the newest offsite copy of each group may be this old at most
    /// (seconds).
    pub offsite_max_age: Option<i64>,
    /// `min-copies`: the newest snapshot of each group must be in this many
    /// repositories at least.
    pub min_copies: Option<usize>,
}

/// `[repository]`, and each `[[offsite]]`.
#[derive(Debug, Clone, Default)]
pub struct RepositoryConfig {
    /// `name`: what `cairn status` calls it (`primary` when `[repository]` has none);
    /// required and unique in `[[offsite]]`.
    pub name: Option<String>,
    /// `url`: where the repository is (an absolute local path, `s3://`, `sftp://` or
    /// `rclone:`).
    pub url: Option<String>,
    /// `password-file`, `password-command` or `password`.
    pub password: Option<PasswordSource>,
    /// `cache-dir`: the directory of the local catalogs.
    pub cache_dir: Option<PathBuf>,
    /// `s3-*` and `sftp-*`: options of remote repositories, less the S3 secret.
    pub remote: RemoteConfig,
    /// `s3-secret-access-key-file`, `-command` or `s3-secret-access-key`; read only
    /// when an S3 repository is opened.
    pub s3_secret: Option<PasswordSource>,
}

/// The `s3-*` and `sftp-*` keys of a repository table, less the S3 secret: what the
/// binary hands to the S3 and SFTP backends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteConfig {
    /// `s3-endpoint`.
    pub s3_endpoint: Option<String>,
    /// `s3-region`.
    pub s3_region: Option<String>,
    /// `s3-path-style`.
    pub s3_path_style: Option<bool>,
    /// `s3-access-key-id`.
    pub s3_access_key_id: Option<String>,
    /// `sftp-identity-file`.
    pub sftp_identity_file: Option<PathBuf>,
    /// `sftp-known-hosts`.
    pub sftp_known_hosts: Option<PathBuf>,
}

/// The application front-ends the `kind` of an `[[app]]` may name. The same list as
/// cairn-apps' `APPS` (a test of the binary, which sees both, checks it).
pub const FRONT_ENDS: &[&str] = &["idoit", "immich", "kestra", "kimai"];

/// What an `[[app]]`'s backups take beyond its front-end's defaults; the binary turns
/// it into cairn-apps' options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppOptions {
    /// `with-generated` (Immich): what the application can generate again too.
    pub with_generated: bool,
    /// `metadata-export` (Kestra): `FULL`, `TENANT`, `TENANT:name` or `off`.
    pub metadata_export: Option<String>,
    /// `metadata-encryption` and `metadata-encryption-key-file` (Kestra).
    pub metadata_encryption: MetadataEncryption,
}

/// How Kestra's metadata export is encrypted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum MetadataEncryption {
    /// Kestra's embedded key (the default).
    #[default]
    Embedded,
    /// The key in this file (`metadata-encryption-key-file`).
    KeyFile(PathBuf),
    /// No encryption (`metadata-encryption = false`).
    None,
}

/// One `[[app]]`: an installation, by instance name.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// `name`: what `cairn app backup NAME` takes; unique in the file.
    pub name: String,
    /// `kind`: the front-end (one of [`FRONT_ENDS`]); defaults to the name.
    pub kind: String,
    /// `path`: the installation directory.
    pub path: PathBuf,
    /// `before`: shell commands run before a backup.
    pub before: Vec<String>,
    /// `after`: shell commands run after it, whatever happened.
    pub after: Vec<String>,
    /// `tags`: tags of its snapshots (besides the front-end's name).
    pub tags: Vec<String>,
    /// `db-wrapper`: the command the dump tools run through, e.g. `docker exec db`.
    pub db_wrapper: Option<String>,
    /// `[app.database]`: how its databases are reached instead of as the application's
    /// own configuration says.
    pub database: DatabaseConfig,
    /// `with-generated`, `metadata-export`, `metadata-encryption` and
    /// `metadata-encryption-key-file`: what its backups take beyond the front-end's
    /// defaults.
    pub options: AppOptions,
}

/// `[app.database]`.
#[derive(Clone, Default)]
pub struct DatabaseConfig {
    /// `url`: server, user (and database) to dump instead of the application's own.
    pub url: Option<String>,
    /// `password-file`, `password-command` or `password`.
    pub password: Option<PasswordSource>,
    /// `exclude`: databases the application's configuration names that are left out
    /// (e.g. an i-doit tenant whose database is gone).
    pub exclude: Vec<String>,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_ref().map(|_| "[redacted]"))
            .field("password", &self.password)
            .field("exclude", &self.exclude)
            .finish()
    }
}

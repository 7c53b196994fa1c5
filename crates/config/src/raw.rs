//! The tables of the file as serde reads them, before [`crate::validate`] checks them.
//!
//! Each table refuses keys it does not know: a misspelt `pasword-file` ignored would
//! leave the password to a prompt that nobody answers at night. Values that a problem
//! can be reported at keep their place in the file ([`Spanned`]).

use serde::Deserialize;
use std::path::PathBuf;
use toml::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct File {
    pub repository: Option<Repository>,
    #[serde(default)]
    pub offsite: Vec<Spanned<Repository>>,
    pub copies: Option<Copies>,
    #[serde(default)]
    pub app: Vec<Spanned<App>>,
    /// Never set: `[retention]` is taken out of the document before this table is
    /// read, and read on its own into cairn-core's `Policy` (see `validate::parse`). The
    /// field stays so that an unknown key's message lists `retention` among the keys.
    #[allow(dead_code)]
    pub retention: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    pub source: Vec<Spanned<Source>>,
    #[serde(default)]
    pub job: Vec<Spanned<Job>>,
    pub monitoring: Option<Monitoring>,
}

/// One `[[source]]`: paths and databases backed up together, without a front-end.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Source {
    pub name: Spanned<String>,
    #[serde(default)]
    pub paths: Vec<Spanned<PathBuf>>,
    #[serde(default)]
    pub exclude: Vec<Spanned<String>>,
    #[serde(default)]
    pub exclude_file: Vec<Spanned<PathBuf>>,
    #[serde(default)]
    pub exclude_caches: bool,
    #[serde(default)]
    pub one_file_system: bool,
    #[serde(default)]
    pub postgres: Vec<Spanned<String>>,
    #[serde(default)]
    pub mariadb: Vec<Spanned<String>>,
    #[serde(default)]
    pub sqlite: Vec<Spanned<PathBuf>>,
    pub db_wrapper: Option<Spanned<String>>,
    pub database_password_file: Option<Spanned<PathBuf>>,
    pub database_password_command: Option<Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    #[serde(default)]
    pub before: Vec<Spanned<String>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
}

/// One `[[job]]`: what `cairn run NAME` does, when, and whom it tells.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Job {
    pub name: Spanned<String>,
    pub apps: Option<Vec<Spanned<String>>>,
    pub sources: Option<Vec<Spanned<String>>>,
    pub copy_to: Option<Vec<Spanned<String>>>,
    pub forget: Option<bool>,
    pub prune_every: Option<Spanned<String>>,
    pub check_every: Option<Spanned<String>>,
    pub check_subset: Option<Spanned<String>>,
    pub schedule: Option<Spanned<String>>,
    pub randomized_delay: Option<Spanned<String>>,
    pub ping_url: Option<Spanned<String>>,
    #[serde(default)]
    pub before: Vec<Spanned<String>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
}

/// `[monitoring]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Monitoring {
    pub textfile_dir: Option<Spanned<PathBuf>>,
}

/// `[copies]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Copies {
    pub offsite_max_age: Option<Spanned<String>>,
    pub min_copies: Option<Spanned<usize>>,
}

/// `[repository]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Repository {
    pub name: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub password_command: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    pub cache_dir: Option<Spanned<PathBuf>>,
    pub s3_endpoint: Option<Spanned<String>>,
    pub s3_region: Option<Spanned<String>>,
    pub s3_path_style: Option<bool>,
    pub s3_access_key_id: Option<Spanned<String>>,
    pub s3_secret_access_key_file: Option<Spanned<PathBuf>>,
    pub s3_secret_access_key_command: Option<Spanned<String>>,
    pub s3_secret_access_key: Option<Spanned<String>>,
    pub sftp_identity_file: Option<Spanned<PathBuf>>,
    pub sftp_known_hosts: Option<Spanned<PathBuf>>,
}

/// One `[[app]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct App {
    pub name: Spanned<String>,
    pub kind: Option<Spanned<String>>,
    pub path: Spanned<PathBuf>,
    #[serde(default)]
    pub before: Vec<Spanned<String>>,
    #[serde(default)]
    pub after: Vec<Spanned<String>>,
    #[serde(default)]
    pub tags: Vec<Spanned<String>>,
    pub db_wrapper: Option<Spanned<String>>,
    pub database: Option<Database>,
    #[serde(default)]
    pub with_generated: bool,
    pub metadata_export: Option<Spanned<String>>,
    pub metadata_encryption: Option<bool>,
    pub metadata_encryption_key_file: Option<Spanned<PathBuf>>,
}

/// `[app.database]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct Database {
    pub url: Option<Spanned<String>>,
    pub password_file: Option<Spanned<PathBuf>>,
    pub password_command: Option<Spanned<String>>,
    pub password: Option<Spanned<String>>,
    #[serde(default)]
    pub exclude: Vec<String>,
}

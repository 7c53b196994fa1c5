//! cairn's config file (`config.toml`): the repository, offsite copies, applications,
//! sources, retention rules, jobs and monitoring.
//!
//! A TOML file; the first of these that exists is read ([`locate`]):
//! 1. `--config FILE` or `CAIRN_CONFIG` (named explicitly: it must exist);
//! 2. `$XDG_CONFIG_HOME/cairn/config.toml`, or `~/.config/cairn/config.toml` when
//!    `XDG_CONFIG_HOME` is not set;
//! 3. `/etc/cairn/config.toml`.
//!
//! None at all is fine: every setting has a default. `docs/config.md` describes every
//! key; how the file ranks against flags and the environment is the binary's business
//! (its `settings.rs`).
//!
//! Reading takes two steps ([`parse`]). Serde reads the text into the raw tables
//! (`raw.rs`), each of which refuses keys it does not know; the values keep their place
//! in the file. The validator (`validate.rs`) then checks what the types cannot say and
//! builds the resolved [`Config`] (`model.rs`) that the commands use. Every error is a
//! [`Problem`] that names the file, the line and the column, and all of them are
//! reported at once ([`Problems`]).
//!
//! [`plan`] reads a job of the file as the steps `cairn run` runs (which commands, in
//! what order, on which repositories, when a cadenced step is due), without running
//! anything.
//!
//! Also here: where a password comes from ([`PasswordSource`], read by
//! [`PasswordSource::read`]) and the durations and ages the file and the command
//! line share ([`duration`]).
//!
//! Later tables are new fields of `raw::File`, each with its own raw struct, checks in
//! the validator and a field in [`Config`].
//!
//! Not here: command-line flags, the environment, and anything that opens a repository,
//! runs a step or runs a dump.

mod error;
mod locate;
mod model;
mod raw;
mod validate;

pub mod duration;
pub mod password;
pub mod plan;

pub use duration::parse_age;
pub use error::{line_column, Error, Problem, Problems, Result};
pub use locate::{load, locate, usual_places, Location};
pub use model::{
    AppConfig, AppOptions, Cadence, Config, CopiesConfig, DatabaseConfig, JobConfig,
    MetadataEncryption, MonitoringConfig, RemoteConfig, RepositoryConfig, SourceConfig,
    DEFAULT_JOB, FRONT_ENDS, PRIMARY,
};
pub use password::{InlinePassword, PasswordSource};
pub use validate::{
    check_database_url, metadata_export_is_valid, parse, refuse_url_password, DatabaseUrl,
};

//! The second stage of the command line: what each command is asked to do, as plain
//! types, converted from clap's parsed arguments (`args.rs`). Commands take these and
//! never see clap; a value clap hands over as text (a format name) becomes an enum here.

use crate::args;
use cairn_apps::app::RestoreStage;
use cairn_apps::db::PgFormat;
use std::ffi::OsString;
use std::path::PathBuf;

/// Which snapshot `latest` means, and what to do about damaged snapshots.
#[derive(Debug, Clone, Default)]
pub struct Select {
    /// Only snapshots of this host (with `latest`: the newest of this host).
    pub host: Option<String>,
    /// Only snapshots with all of these tags.
    pub tag: Vec<String>,
    /// Only snapshots of this application or installation name.
    pub app: Option<String>,
    /// Choose among the readable snapshots even when a damaged one might be the one
    /// meant.
    pub skip_damaged: bool,
}

impl Select {
    /// The filter these options describe.
    pub fn filter(&self) -> cairn_core::SnapshotFilter {
        cairn_core::SnapshotFilter {
            host: self.host.clone(),
            tags: self.tag.clone(),
            app: self.app.clone(),
        }
    }
}

impl From<args::SelectArgs> for Select {
    fn from(a: args::SelectArgs) -> Select {
        Select {
            host: a.host,
            tag: a.tag,
            app: a.app,
            skip_damaged: a.skip_damaged,
        }
    }
}

/// The password of the other repository of `copy` and `init --copy-params-from`.
#[derive(Debug, Clone, Default)]
pub struct FromRepo {
    pub from_password_file: Option<PathBuf>,
    pub from_password_command: Option<String>,
}

impl From<args::FromRepoArgs> for FromRepo {
    fn from(a: args::FromRepoArgs) -> FromRepo {
        FromRepo {
            from_password_file: a.from_password_file,
            from_password_command: a.from_password_command,
        }
    }
}

/// The password of an export file, when given as an option.
#[derive(Debug, Clone, Default)]
pub struct ExportPassword {
    pub export_password_file: Option<PathBuf>,
    pub export_password_command: Option<String>,
}

impl From<args::ExportPasswordArgs> for ExportPassword {
    fn from(a: args::ExportPasswordArgs) -> ExportPassword {
        ExportPassword {
            export_password_file: a.export_password_file,
            export_password_command: a.export_password_command,
        }
    }
}

/// `cairn init`.
#[derive(Debug)]
pub struct InitRequest {
    /// zstd compression level for new data (0 = none).
    pub compression: i32,
    /// Repository format version (default the newest).
    pub repository_version: Option<u32>,
    /// Name and cut blobs as this repository does.
    pub copy_params_from: Option<String>,
    pub from: FromRepo,
}

impl From<args::InitArgs> for InitRequest {
    fn from(a: args::InitArgs) -> InitRequest {
        InitRequest {
            compression: a.compression,
            repository_version: a.repository_version,
            copy_params_from: a.copy_params_from,
            from: a.from.into(),
        }
    }
}

/// `cairn copy`.
#[derive(Debug)]
pub struct CopyRequest {
    /// The repository to copy from (else CAIRN_FROM_REPOSITORY).
    pub from_repo: Option<String>,
    pub from: FromRepo,
    /// Snapshots to copy; every snapshot when empty.
    pub snapshots: Vec<String>,
    pub host: Option<String>,
    pub tag: Option<String>,
}

impl From<args::CopyArgs> for CopyRequest {
    fn from(a: args::CopyArgs) -> CopyRequest {
        CopyRequest {
            from_repo: a.from_repo,
            from: a.from.into(),
            snapshots: a.snapshots,
            host: a.host,
            tag: a.tag,
        }
    }
}

/// `cairn backup`.
#[derive(Debug)]
pub struct BackupRequest {
    pub paths: Vec<PathBuf>,
    /// Standard input, stored under this name.
    pub stdin_name: Option<String>,
    /// The output of `command`, stored under this name.
    pub stdin_from_command: Option<String>,
    pub command: Vec<OsString>,
    pub postgres: Vec<String>,
    /// The format of the dumps of one PostgreSQL database.
    pub postgres_format: PgFormat,
    pub mariadb: Vec<String>,
    pub sqlite: Vec<PathBuf>,
    pub db_wrapper: Option<String>,
    pub exclude: Vec<String>,
    pub exclude_file: Vec<PathBuf>,
    pub exclude_caches: bool,
    pub one_file_system: bool,
    pub tag: Vec<String>,
    pub host: Option<String>,
    pub parent: Option<String>,
    pub force: bool,
    /// Worker threads (0: one per core).
    pub threads: usize,
}

impl From<args::BackupArgs> for BackupRequest {
    fn from(a: args::BackupArgs) -> BackupRequest {
        BackupRequest {
            paths: a.paths,
            stdin_name: a.stdin_name,
            stdin_from_command: a.stdin_from_command,
            command: a.command,
            postgres: a.postgres,
            postgres_format: match a.postgres_format {
                args::PostgresFormat::Custom => PgFormat::Custom,
                args::PostgresFormat::Plain => PgFormat::Plain,
            },
            mariadb: a.mariadb,
            sqlite: a.sqlite,
            db_wrapper: a.db_wrapper,
            exclude: a.exclude,
            exclude_file: a.exclude_file,
            exclude_caches: a.exclude_caches,
            one_file_system: a.one_file_system,
            tag: a.tag,
            host: a.host,
            parent: a.parent,
            force: a.force,
            threads: a.threads,
        }
    }
}

/// `cairn restore`.
#[derive(Debug)]
pub struct RestoreRequest {
    /// `SNAPSHOT[:path]`; with `from_export`, the export's snapshot by default.
    pub snapshot: Option<String>,
    pub from_export: Option<PathBuf>,
    pub export_password: ExportPassword,
    pub target: PathBuf,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub select: Select,
}

impl From<args::RestoreArgs> for RestoreRequest {
    fn from(a: args::RestoreArgs) -> RestoreRequest {
        RestoreRequest {
            snapshot: a.snapshot,
            from_export: a.from_export,
            export_password: a.export_password.into(),
            target: a.target,
            include: a.include,
            exclude: a.exclude,
            select: a.select.into(),
        }
    }
}

/// `cairn export`.
#[derive(Debug)]
pub struct ExportRequest {
    pub snapshot: String,
    /// The file to write (it must not exist yet).
    pub output: PathBuf,
    pub export_password: ExportPassword,
}

impl From<args::ExportArgs> for ExportRequest {
    fn from(a: args::ExportArgs) -> ExportRequest {
        ExportRequest {
            snapshot: a.snapshot,
            output: a.output,
            export_password: a.export_password.into(),
        }
    }
}

/// `cairn import`.
#[derive(Debug)]
pub struct ImportRequest {
    pub file: PathBuf,
    /// Show what the export holds; import nothing.
    pub list: bool,
    pub export_password: ExportPassword,
}

impl From<args::ImportArgs> for ImportRequest {
    fn from(a: args::ImportArgs) -> ImportRequest {
        ImportRequest {
            file: a.file,
            list: a.list,
            export_password: a.export_password.into(),
        }
    }
}

/// `cairn check`.
#[derive(Debug)]
pub struct CheckRequest {
    pub read_data: bool,
    /// `n/t` or `x%`, as given.
    pub read_data_subset: Option<String>,
    pub accept_rollback: bool,
}

impl From<args::CheckArgs> for CheckRequest {
    fn from(a: args::CheckArgs) -> CheckRequest {
        CheckRequest {
            read_data: a.read_data,
            read_data_subset: a.read_data_subset,
            accept_rollback: a.accept_rollback,
        }
    }
}

/// `cairn find`.
#[derive(Debug)]
pub struct FindRequest {
    /// Glob matched against entry names.
    pub pattern: String,
    /// Only these snapshots; all when empty.
    pub snapshots: Vec<String>,
    pub host: Option<String>,
}

impl From<args::FindArgs> for FindRequest {
    fn from(a: args::FindArgs) -> FindRequest {
        FindRequest {
            pattern: a.pattern,
            snapshots: a.snapshots,
            host: a.host,
        }
    }
}

/// `cairn tag`.
#[derive(Debug)]
pub struct TagRequest {
    pub snapshots: Vec<String>,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// Replace all tags by these.
    pub set: Vec<String>,
}

impl From<args::TagArgs> for TagRequest {
    fn from(a: args::TagArgs) -> TagRequest {
        TagRequest {
            snapshots: a.snapshots,
            add: a.add,
            remove: a.remove,
            set: a.set,
        }
    }
}

/// `cairn app backup`.
#[derive(Debug)]
pub struct AppBackupRequest {
    /// A configured installation's name, or a front-end.
    pub app: String,
    pub path: Option<PathBuf>,
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub tag: Vec<String>,
    pub db_wrapper: Option<String>,
    pub with_generated: bool,
}

impl From<args::AppBackupArgs> for AppBackupRequest {
    fn from(a: args::AppBackupArgs) -> AppBackupRequest {
        AppBackupRequest {
            app: a.app,
            path: a.path,
            before: a.before,
            after: a.after,
            tag: a.tag,
            db_wrapper: a.db_wrapper,
            with_generated: a.with_generated,
        }
    }
}

/// `cairn app restore`.
#[derive(Debug)]
pub struct AppRestoreRequest {
    pub app: String,
    pub snapshot: Option<String>,
    pub target: Option<PathBuf>,
    pub skip_damaged: bool,
    pub database: Option<String>,
    pub replace_existing: bool,
    pub ignore_version: bool,
    pub files_only: bool,
    pub databases_only: bool,
    pub dry_run: bool,
    pub rollback: bool,
    pub finish: bool,
    pub system_config: bool,
    pub stage: Option<RestoreStage>,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

impl From<args::AppRestoreArgs> for AppRestoreRequest {
    fn from(a: args::AppRestoreArgs) -> AppRestoreRequest {
        AppRestoreRequest {
            app: a.app,
            snapshot: a.snapshot,
            target: a.target,
            skip_damaged: a.skip_damaged,
            database: a.database,
            replace_existing: a.replace_existing,
            ignore_version: a.ignore_version,
            files_only: a.files_only,
            databases_only: a.databases_only,
            dry_run: a.dry_run,
            rollback: a.rollback,
            finish: a.finish,
            system_config: a.system_config,
            stage: a.stage.map(|s| match s {
                args::StageArg::Core => RestoreStage::Core,
                args::StageArg::Rest => RestoreStage::Rest,
            }),
            before: a.before,
            after: a.after,
        }
    }
}

impl From<args::ArchiveFormat> for cairn_archive::Format {
    fn from(f: args::ArchiveFormat) -> cairn_archive::Format {
        match f {
            args::ArchiveFormat::Tar => cairn_archive::Format::Tar,
            args::ArchiveFormat::Zip => cairn_archive::Format::Zip,
        }
    }
}

/// `cairn forget`: snapshots named by id, or the retention rules, with a filter.
#[derive(Debug)]
pub struct ForgetRequest {
    /// Snapshots to remove by id prefix (instead of the rules).
    pub snapshots: Vec<String>,
    /// The rules (empty when snapshots are named).
    pub policy: cairn_core::Policy,
    /// Only snapshots of this host or with this tag.
    pub filter: cairn_core::ForgetFilter,
    /// Show what would be removed; remove nothing.
    pub dry_run: bool,
    /// Run prune afterwards, repacking packs more than this share unused.
    pub prune: Option<f64>,
}

impl TryFrom<args::ForgetArgs> for ForgetRequest {
    type Error = anyhow::Error;
    /// Fails on a retention flag that does not parse (a duration, a grouping).
    fn try_from(a: args::ForgetArgs) -> anyhow::Result<ForgetRequest> {
        Ok(ForgetRequest {
            policy: a.retention.policy()?,
            snapshots: a.snapshots,
            filter: cairn_core::ForgetFilter {
                host: a.host,
                tag: a.tag,
            },
            dry_run: a.dry_run,
            prune: a.prune.then_some(a.max_unused),
        })
    }
}

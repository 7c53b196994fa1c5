//! Errors of cairn-apps.
//!
//! One `thiserror` enum, [`Error`], whose variant says what failed: a hook, a database
//! tool, an application's configuration, a database, a restore; each carries its cause
//! where there is one (the I/O error, the parse error, the exit status and the end of
//! what the program said). What the repository reports stays the core's own error,
//! wrapped whole ([`Error::Core`]), so nothing of it is lost. Like the core's, every
//! message is one line a user can act on; none repeats a database URL (it may hold a
//! password).

use std::path::PathBuf;
use std::process::ExitStatus;

/// The result type of cairn-apps.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A parse error of some configuration format (YAML, a URL, JSON, …).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can end an operation of cairn-apps.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A hook (a shell command run before or after a backup or restore) exited non-zero.
    #[error("{which} hook `{command}` failed ({status}){}", said(tail))]
    Hook {
        /// `before` or `after`.
        which: String,
        /// The command, as given to `sh -c`.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// The last lines it printed (standard output and error, in order).
        tail: Vec<String>,
    },

    /// A hook could not be started.
    #[error("{which} hook `{command}` could not be started: {source}")]
    HookStart {
        /// `before` or `after`.
        which: String,
        /// The command.
        command: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A database tool (a dump, a client, a query) exited non-zero.
    #[error("{what}: {tool} exited with {status}: {stderr}")]
    Tool {
        /// What it was run for, e.g. "PostgreSQL database kimai at localhost:5432".
        what: String,
        /// The program.
        tool: String,
        /// How it ended.
        status: ExitStatus,
        /// The end of its standard error, trimmed.
        stderr: String,
    },

    /// A database tool could not be started (or waited for).
    #[error("{what}: cannot run {tool}: {source}")]
    ToolStart {
        /// What it was run for.
        what: String,
        /// The program.
        tool: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// An application's configuration file cannot be read or says something cairn
    /// cannot use.
    #[error("{}: {problem}", file.display())]
    Config {
        /// The file (`.env`, `application.yaml`, `config.inc.php`, …).
        file: PathBuf,
        /// What is wrong, e.g. "no DATABASE_URL" or "datasources.postgres.url: …".
        problem: String,
        /// The parse error, when there is one.
        #[source]
        source: Option<BoxError>,
    },

    /// A directory is not an installation of the application it was given as.
    #[error("{} has no {missing}: not {app} installation", install.display())]
    NotAnInstallation {
        /// The directory.
        install: PathBuf,
        /// The file an installation has, e.g. `.env`.
        missing: String,
        /// The application with its article, e.g. "a Kimai".
        app: String,
    },

    /// Discovery could not find out something a backup needs.
    #[error("{app} at {}: {problem}; nothing was backed up", install.display())]
    Discovery {
        /// The front-end.
        app: String,
        /// The installation.
        install: PathBuf,
        /// What it could not find out.
        problem: String,
    },

    /// The application's configuration names a database that does not exist.
    #[error(
        "{app} at {}: {named_by} names database {name}, which does not exist; nothing was \
         backed up (no database is left out silently). Restore or create it, or leave it \
         out: exclude = [\"{name}\"] under the installation's [app.database] in the config \
         file",
        install.display()
    )]
    MissingDatabase {
        /// The front-end.
        app: String,
        /// The installation.
        install: PathBuf,
        /// The database.
        name: String,
        /// What names it.
        named_by: String,
    },

    /// A snapshot taken without an application has no manifest to restore from.
    #[error("snapshot {0} has no manifest")]
    NoManifest(String),

    /// SQLite failed on a database file.
    #[error("{what}: {source}")]
    Sqlite {
        /// What was being done, naming the file.
        what: String,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },

    /// A local operation other than on the repository failed (writing a dump to a
    /// client, giving a restored file its owner).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// A database load stopped because the dump could not be read from the repository.
    #[error("{what}: reading the dump from the repository failed: {source}{client}")]
    DumpUnreadable {
        /// The database.
        what: String,
        /// The repository's error.
        #[source]
        source: Box<Error>,
        /// What that did to the client ("; mariadb was stopped part-way (…)"), or "".
        client: String,
    },

    /// A database, or its tool, is not as it should be (unexpected output, a failed
    /// integrity check, a session that stopped, a file still locked).
    #[error("{0}")]
    Database(String),

    /// An application restore or rollback failed or was refused; the message says what
    /// it changed, what it put back and what is left to do.
    #[error("{0}")]
    Restore(String),

    /// Invalid arguments or settings.
    #[error("{0}")]
    Invalid(String),

    /// The repository's (or another core) error.
    #[error(transparent)]
    Core(#[from] cairn_core::Error),
}

impl Error {
    /// Builds an [`Error::Core`] of a local file operation on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Core(cairn_core::Error::io(path, source))
    }

    /// Builds an [`Error::Config`] about `file`, with the parse error `source` (whose
    /// text `problem` already holds, as the other messages do).
    pub fn config(
        file: impl Into<PathBuf>,
        problem: impl Into<String>,
        source: Option<BoxError>,
    ) -> Error {
        Error::Config {
            file: file.into(),
            problem: problem.into(),
            source,
        }
    }
}

/// The end of what a hook printed, for its error message: `: line / line / line`.
fn said(tail: &[String]) -> String {
    if tail.is_empty() {
        String::new()
    } else {
        format!(": {}", tail.join(" / "))
    }
}

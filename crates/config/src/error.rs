//! Errors of this crate.
//!
//! Rules: one [`Error`] enum (thiserror) for everything the crate's functions can
//! fail with; problems in the file's text are [`Problems`], every one at a line and
//! column, all of them found at once; messages never repeat a secret (a password, a
//! database URL that may hold one). The binary turns these into `anyhow` errors at its
//! edge.

use std::path::{Path, PathBuf};

/// What can go wrong reading the config file or a password it names.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the file's text.
    #[error(transparent)]
    Problems(#[from] Problems),
    /// The file named by `--config` or `CAIRN_CONFIG` is not there.
    #[error("the config file {} (named by --config or CAIRN_CONFIG) does not exist", .0.display())]
    Missing(PathBuf),
    /// The file could not be read.
    #[error("reading the config file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `cairn run NAME` names no job of the file.
    #[error("no job {name:?} in the config file (jobs: {jobs})")]
    NoJob {
        /// The name given.
        name: String,
        /// The jobs there are, comma-separated.
        jobs: String,
    },
    /// No job named, and the file has several.
    #[error("the config file has several jobs: name one (jobs: {0})")]
    SeveralJobs(String),
    /// A database URL given on the command line holds a password (the message says
    /// where to give it instead; it never repeats the URL).
    #[error("{0}")]
    UrlPassword(String),
    /// A password file could not be read.
    #[error("reading password file {}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The password command could not be started.
    #[error("running the password command")]
    PasswordCommand(#[source] std::io::Error),
    /// The password command ended with an error.
    #[error("the password command failed ({0})")]
    PasswordCommandFailed(std::process::ExitStatus),
    /// The password is empty.
    #[error("the password is empty")]
    EmptyPassword,
}

/// The result of this crate's functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One error in a config file, at a place in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Every error found in a config file (at least one).
#[derive(Debug, Clone)]
pub struct Problems(pub Vec<Problem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(Problem::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for Problems {}

/// A [`Problem`] at byte `offset` of `text`.
pub(crate) fn problem(text: &str, file: &Path, offset: usize, message: String) -> Problem {
    let (line, column) = line_column(text, offset);
    Problem {
        file: file.to_path_buf(),
        line,
        column,
        message,
    }
}

/// Line and column (both from 1; the column in characters) of byte `offset`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let text = "ä = 1\nbb = \"ü\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 2), "after the two bytes of ä");
        assert_eq!(line_column(text, text.find("bb").unwrap()), (2, 1));
        assert_eq!(line_column(text, text.find('"').unwrap()), (2, 6));
        assert_eq!(line_column(text, text.len() + 10), (3, 1));
    }
}

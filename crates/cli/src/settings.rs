//! Resolved settings: where the repository is and how to get the password.
//!
//! Precedence, written down once: command-line flags, then environment variables
//! (`CAIRN_REPOSITORY`, `CAIRN_PASSWORD_FILE`, `CAIRN_PASSWORD_COMMAND`,
//! `CAIRN_PASSWORD`, `CAIRN_CACHE_DIR`), then defaults (the local default repository; a
//! prompt on a terminal; the catalog under `~/.cache/cairn`).

use anyhow::{bail, Context, Result};
use cairn_core::Password;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// How cairn obtains the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file whose contents (less one trailing newline) are the password.
    File(PathBuf),
    /// A shell command whose output (less one trailing newline) is the password.
    Command(String),
    /// The value of `CAIRN_PASSWORD`.
    Env,
    /// Ask on the terminal.
    Prompt,
}

/// Settings shared by every command.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Repository location.
    pub repo: String,
    /// Password source.
    pub password: PasswordSource,
    /// JSON output.
    pub json: bool,
    /// Print summaries even when not on a terminal.
    pub verbose: bool,
    /// Print only errors.
    pub quiet: bool,
    /// Standard error is a terminal (progress bars).
    pub progress: bool,
    /// How locks are taken.
    pub locking: Locking,
    /// Directory of the local catalogs; `None` to use none.
    pub cache_dir: Option<PathBuf>,
}

/// How commands lock the repository.
#[derive(Clone, Copy, Debug)]
pub struct Locking {
    /// How long to wait for a conflicting lock.
    pub retry: std::time::Duration,
    /// Take no shared lock (read-only storage).
    pub no_shared: bool,
}

/// The documented default repository: `$XDG_DATA_HOME/cairn/repository`, else
/// `~/.local/share/cairn/repository`.
pub fn default_repository() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("cairn/repository"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .context("neither -r/--repo, CAIRN_REPOSITORY nor HOME is set")?;
    Ok(PathBuf::from(home).join(".local/share/cairn/repository"))
}

impl Settings {
    /// Resolves the global flags against the environment.
    pub fn resolve(flags: crate::args::GlobalArgs) -> Result<Settings> {
        let crate::args::GlobalArgs {
            repo,
            password_file,
            password_command,
            json,
            verbose,
            quiet,
            retry_lock,
            no_lock,
            cache_dir,
            no_cache,
        } = flags;
        let locking = Locking {
            retry: retry_lock,
            no_shared: no_lock,
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let repo = match repo.or_else(|| env("CAIRN_REPOSITORY")) {
            Some(r) => r,
            None => default_repository()?.to_string_lossy().into_owned(),
        };
        let password = if let Some(f) = password_file {
            PasswordSource::File(f)
        } else if let Some(c) = password_command {
            PasswordSource::Command(c)
        } else if let Some(f) = env("CAIRN_PASSWORD_FILE") {
            PasswordSource::File(f.into())
        } else if let Some(c) = env("CAIRN_PASSWORD_COMMAND") {
            PasswordSource::Command(c)
        } else if std::env::var_os("CAIRN_PASSWORD").is_some() {
            PasswordSource::Env
        } else {
            PasswordSource::Prompt
        };
        Ok(Settings {
            repo,
            password,
            json,
            verbose,
            quiet,
            progress: !quiet && !json && std::io::stderr().is_terminal(),
            locking,
            cache_dir: if no_cache {
                None
            } else {
                cache_dir
                    .or_else(|| env("CAIRN_CACHE_DIR").map(PathBuf::from))
                    .or_else(cairn_catalog::default_cache_dir)
            },
        })
    }

    /// True when summaries go to standard output.
    pub fn show_summary(&self) -> bool {
        !self.quiet && (self.verbose || std::io::stdout().is_terminal())
    }

    /// Gets the password; `confirm` asks twice on a prompt (for new passwords).
    pub fn password(&self, confirm: bool) -> Result<Password> {
        read_password(&self.password, confirm, "repository password")
    }
}

/// Removes exactly one trailing line ending ("\n" or "\r\n"), nothing else: spaces
/// and further newlines are part of the password.
pub fn trim_one_newline(mut v: Vec<u8>) -> Vec<u8> {
    if v.last() == Some(&b'\n') {
        v.pop();
        if v.last() == Some(&b'\r') {
            v.pop();
        }
    }
    v
}

/// Reads a password from a source.
pub fn read_password(src: &PasswordSource, confirm: bool, what: &str) -> Result<Password> {
    let pw = match src {
        PasswordSource::File(p) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("reading password file {}", p.display()))?;
            trim_one_newline(bytes)
        }
        PasswordSource::Command(c) => {
            let out = Command::new("sh")
                .arg("-c")
                .arg(c)
                .stdin(Stdio::inherit())
                .stderr(Stdio::inherit())
                .output()
                .context("running the password command")?;
            if !out.status.success() {
                bail!("the password command failed ({})", out.status);
            }
            trim_one_newline(out.stdout)
        }
        PasswordSource::Env => std::env::var("CAIRN_PASSWORD")
            .unwrap_or_default()
            .into_bytes(),
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
                bail!("no password given: set CAIRN_PASSWORD_FILE or CAIRN_PASSWORD_COMMAND (or run on a terminal)");
            }
            let first = rpassword::prompt_password(format!("Enter {what}: "))
                .context("reading the password from the terminal")?;
            if confirm {
                let second = rpassword::prompt_password(format!("Enter {what} again: "))
                    .context("reading the password from the terminal")?;
                if first != second {
                    bail!("the passwords do not match");
                }
            }
            first.into_bytes()
        }
    };
    if pw.is_empty() {
        bail!("the password is empty");
    }
    Ok(Password::new(pw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_exactly_one_newline() {
        assert_eq!(trim_one_newline(b"pw\n".to_vec()), b"pw");
        assert_eq!(trim_one_newline(b"pw\r\n".to_vec()), b"pw");
        assert_eq!(trim_one_newline(b"pw\n\n".to_vec()), b"pw\n");
        assert_eq!(trim_one_newline(b" pw ".to_vec()), b" pw ");
    }
}

//! Passwords: where one comes from ([`PasswordSource`]) and reading it
//! ([`PasswordSource::read`]), with exactly one trailing line ending removed from files
//! and command output. Asking on a terminal is not here: that is the binary's.

use crate::error::{Error, Result};
use cairn_core::Password;
use std::path::PathBuf;
use std::process::Stdio;
use zeroize::Zeroizing;

/// How cairn obtains the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// A file whose contents (less one trailing newline) are the password.
    File(PathBuf),
    /// A shell command whose output (less one trailing newline) is the password.
    Command(String),
    /// The value of `CAIRN_PASSWORD`.
    Env,
    /// A password written in the config file (`password = "..."`; discouraged).
    Inline(InlinePassword),
    /// Ask on the terminal.
    Prompt,
}

/// A password given in the config file; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct InlinePassword(String);

impl InlinePassword {
    /// Wraps the password.
    pub fn new(password: String) -> InlinePassword {
        InlinePassword(password)
    }
}

impl std::fmt::Debug for InlinePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
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

impl PasswordSource {
    /// Reads the password from its file, its command, `CAIRN_PASSWORD` or the config
    /// file, with exactly one trailing line ending removed from files and command
    /// output. `Ok(None)` for [`PasswordSource::Prompt`]: asking on a terminal is the
    /// caller's. An empty password is an error.
    pub fn read(&self) -> Result<Option<Password>> {
        let pw = match self {
            PasswordSource::File(p) => {
                let bytes = std::fs::read(p).map_err(|source| Error::PasswordFile {
                    path: p.clone(),
                    source,
                })?;
                trim_one_newline(bytes)
            }
            PasswordSource::Command(c) => {
                let out = cairn_core::command("sh")
                    .arg("-c")
                    .arg(c)
                    .stdin(Stdio::inherit())
                    .stderr(Stdio::inherit())
                    .output()
                    .map_err(Error::PasswordCommand)?;
                let stdout = Zeroizing::new(out.stdout);
                if !out.status.success() {
                    return Err(Error::PasswordCommandFailed(out.status));
                }
                trim_one_newline(stdout.to_vec())
            }
            PasswordSource::Env => {
                use std::os::unix::ffi::OsStringExt;
                cairn_core::secret_env("CAIRN_PASSWORD")
                    .map(OsStringExt::into_vec)
                    .unwrap_or_default()
            }
            PasswordSource::Inline(p) => p.0.clone().into_bytes(),
            PasswordSource::Prompt => return Ok(None),
        };
        // Wiped on every path, the error ones included.
        nonempty(Password::new(pw)).map(Some)
    }
}

/// The password, unless it is empty.
pub fn nonempty(pw: Password) -> Result<Password> {
    if pw.is_empty() {
        return Err(Error::EmptyPassword);
    }
    Ok(pw)
}

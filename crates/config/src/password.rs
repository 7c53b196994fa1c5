//! Passwords: where one comes from ([`PasswordSource`]) and reading it, with exactly one
//! trailing line ending removed from files and command output.

use anyhow::{bail, Context, Result};
use cairn_core::Password;
use std::io::IsTerminal;
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

/// Reads a password from a source.
pub fn read_password(src: &PasswordSource, confirm: bool, what: &str) -> Result<Password> {
    let pw = match src {
        PasswordSource::File(p) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("reading password file {}", p.display()))?;
            trim_one_newline(bytes)
        }
        PasswordSource::Command(c) => {
            let out = cairn_core::command("sh")
                .arg("-c")
                .arg(c)
                .stdin(Stdio::inherit())
                .stderr(Stdio::inherit())
                .output()
                .context("running the password command")?;
            let stdout = Zeroizing::new(out.stdout);
            if !out.status.success() {
                bail!("the password command failed ({})", out.status);
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
        PasswordSource::Prompt => {
            if !std::io::stdin().is_terminal() && !std::io::stderr().is_terminal() {
                bail!("no password given: set CAIRN_PASSWORD_FILE or CAIRN_PASSWORD_COMMAND, or password-file in the config file's [repository] (or run on a terminal)");
            }
            // Both answers are wiped when dropped; the first moves into the Password.
            let first = Zeroizing::new(
                rpassword::prompt_password(format!("Enter {what}: "))
                    .context("reading the password from the terminal")?,
            );
            if confirm {
                let second = Zeroizing::new(
                    rpassword::prompt_password(format!("Enter {what} again: "))
                        .context("reading the password from the terminal")?,
                );
                if *first != *second {
                    bail!("the passwords do not match");
                }
            }
            first.as_bytes().to_vec()
        }
    };
    // Wiped on every path, the error ones included.
    let pw = Password::new(pw);
    if pw.is_empty() {
        bail!("the password is empty");
    }
    Ok(pw)
}

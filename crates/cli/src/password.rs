//! Reading a password: from where the config file, the flags or the environment say
//! (cairn-config's [`PasswordSource`]), or by asking on the terminal.

use anyhow::{bail, Context, Result};
use cairn_core::Password;
use std::io::IsTerminal;
use zeroize::Zeroizing;

#[cfg(test)]
pub use cairn_config::password::trim_one_newline;
pub use cairn_config::password::{InlinePassword, PasswordSource};

/// Reads a password from a source; [`PasswordSource::Prompt`] asks on the terminal
/// for `what`, twice with `confirm`.
pub fn read_password(src: &PasswordSource, confirm: bool, what: &str) -> Result<Password> {
    match src.read()? {
        Some(pw) => Ok(pw),
        None => prompt(confirm, what),
    }
}

/// Asks for the password on the terminal.
fn prompt(confirm: bool, what: &str) -> Result<Password> {
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
    let pw = Password::new(first.as_bytes().to_vec());
    Ok(cairn_config::password::nonempty(pw)?)
}

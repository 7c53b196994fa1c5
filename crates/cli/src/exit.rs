//! Exit codes (documented in `--help` and the README), and which error gives which.

/// Success.
pub const OK: u8 = 0;
/// Any error.
pub const ERROR: u8 = 1;
/// The backup was written but some files could not be read.
pub const PARTIAL: u8 = 3;
/// Another process holds a conflicting lock (after waiting `--retry-lock`).
pub const LOCKED: u8 = 11;
/// No repository at the location.
pub const NO_REPOSITORY: u8 = 10;
/// Wrong password.
pub const WRONG_PASSWORD: u8 = 12;

/// The exit code of a command that failed with `e`: cairn-core's errors (also when
/// cairn-apps carries one) that a script can act on have their own code.
pub fn code_of(e: &anyhow::Error) -> u8 {
    let core = e.downcast_ref::<cairn_core::Error>().or_else(|| {
        match e.downcast_ref::<cairn_apps::Error>() {
            Some(cairn_apps::Error::Core(c)) => Some(c),
            _ => None,
        }
    });
    match core {
        Some(cairn_core::Error::WrongPassword) => WRONG_PASSWORD,
        Some(cairn_core::Error::NotARepository(_)) => NO_REPOSITORY,
        Some(cairn_core::Error::Locked(_)) => LOCKED,
        _ => ERROR,
    }
}

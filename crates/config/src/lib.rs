//! cairn's config file.

mod validate;
pub use validate::*;

pub mod duration;
pub mod password;

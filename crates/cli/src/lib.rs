//! The parts of the `cairn` binary that are a library too: the config file's parser and
//! the password sources it names, so that the fuzz targets in `fuzz/` can reach the
//! parser. Not a supported API: the binary is the interface.

pub mod config;
pub mod duration;
pub mod password;

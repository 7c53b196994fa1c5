//! The operations: what is done with a repository (backup, restore, check, prune, copy,
//! forget's retention decisions, …), one module each.
//!
//! Named `operations` rather than `ops`: the crate spells its names out (`repository`,
//! `compression`, `retention`), and `ops` reads as `std::ops`, the operator traits.

pub mod backup;
pub mod browse;
pub mod check;
pub mod copies;
pub mod copy;
pub mod diff;
pub mod exclude;
pub mod find;
pub mod prune;
pub mod repair;
pub mod restore;
pub mod retention;
pub mod rewrite;
pub mod rotate;
pub mod stats;

//! The operations: what is done with a repository (backup, restore, check, prune, copy,
//! forget's retention decisions, …), one module each.
//!
//! Named `operations` rather than `ops`: the crate spells its names out (`repository`,
//! `compression`, `retention`), and `ops` reads as `std::ops`, the operator traits.
//!
//! An operation may use the formats, the reporting types (`crate::report`), the
//! repository, the write path (`crate::store`) and batched reads (`crate::fetch`);
//! nothing outside this directory imports an operation, except the crate root that
//! re-exports them.

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

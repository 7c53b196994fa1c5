//! The operations: what is done with a repository (backup, restore, check, prune, copy,
//! forget's retention decisions, …), one module each.
//!
//! Named `operations` rather than `ops`: the crate spells its names out (`repository`,
//! `compression`, `retention`), and `ops` reads as `std::ops`, the operator traits.
//!
//! An operation may use the formats (`crate::formats`), the shared reporting types
//! (`crate::report`) and the repository; nothing below it imports an operation.

pub mod retention;

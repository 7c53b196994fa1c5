//! cairn-apps: application front-ends and database dump sources.
//!
//! Main items:
//! - [`db::Database`]: a PostgreSQL, MariaDB/MySQL or SQLite database to back up, parsed
//!   from a URL or a path; [`db::Database::dump`] gives the core a stream (the dump
//!   tool's output, or SQLite's online-backup copy) and the [`db::DumpInfo`] that the
//!   snapshot's manifest records.
//! - [`db::Wrapper`]: runs the dump tools elsewhere (`docker exec CONTAINER`).
//! - [`app::plan`]: a front-end (Kimai, ...) reads an installation's configuration and
//!   says what to back up; [`app::backup`] does it: hooks, dumps first, then files, one
//!   snapshot with an [`app::Manifest`].
//! - [`hook::run`]: the one runner of hooks (`sh -c`, output shown by the caller, a
//!   typed error with its last lines).
//! - [`Error`]: what failed (a hook, a database tool, an application's configuration, a
//!   restore), with its cause; the repository's own errors inside [`Error::Core`].
//!
//! What it is not: it stores nothing itself (the core does), and it holds no password
//! longer than the command that needs it: credentials go to the tools through their
//! environment, never their arguments.

pub mod app;
pub mod db;
pub mod error;
pub mod hook;

pub use error::{Error, Result};

//! Fakes and fixtures for cairn's tests. A dev-dependency only; nothing here is fit for
//! real repositories.
//!
//! Main items:
//! - [`MemBackend`]: a [`Backend`](cairn_core::Backend) in memory, with helpers to
//!   inspect and damage what is stored ([`MemBackend::corrupt`], [`MemBackend::names`],
//!   [`MemBackend::total_bytes`]).
//! - [`conformance`]: the backend contract as executable properties, run against any
//!   backend with [`conformance::run_all`] or, one `#[test]` per property, with
//!   [`backend_conformance_tests!`].
//!
//! - [`MemCatalog`]: a [`Catalog`](cairn_core::Catalog) in memory, and
//!   [`catalog_contract`], the catalog contract every implementation is tested against.
//! - [`StopAfter`]: a wrapper that fails every change after the next *n*, to reach each
//!   state a process killed between two changes leaves behind.
//!
//! - [`Faulty`]: a wrapper that fails, damages, delays and reorders operations at
//!   random (seeded), for the fault-injection tests.
//!
//! - [`servers`]: real S3 (`s3s-fs`) and SSH/SFTP (`sshd`) servers on loopback for the
//!   remote backends' tests, killed when their handles drop.
//!
//! What it is not: no test data generators for file trees, no durability (a
//! `MemBackend` forgets everything when dropped).

mod catalog;
pub mod conformance;
mod faults;
mod mem;
pub mod servers;
mod stop;

pub use catalog::{catalog_contract, sample_row, sample_snapshot, MemCatalog};
pub use faults::{Fault, Faulty, Op};
pub use mem::MemBackend;
pub use stop::StopAfter;

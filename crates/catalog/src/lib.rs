//! cairn-catalog: the local SQLite index of a repository (snapshots, per-file metadata,
//! index cache), implementing the core's catalog port.
//!
//! Not built yet: the core loop reads everything it needs from the repository itself
//! (the repository is the truth, and the catalog is only ever a cache of it). This
//! crate fills in with the maintenance commands (forget, prune, find).

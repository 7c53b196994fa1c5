//! End-to-end tests: they drive the built `cairn` binary on real files in temporary
//! directories. One test binary (faster to build than one per file).

#[path = "e2e/common/mod.rs"]
mod common;

#[path = "e2e/app_restore.rs"]
mod app_restore;
#[path = "e2e/apps.rs"]
mod apps;
#[path = "e2e/apps_kestra.rs"]
mod apps_kestra;
#[path = "e2e/catalog.rs"]
mod catalog;
#[path = "e2e/completions.rs"]
mod completions;
#[path = "e2e/config.rs"]
mod config;
#[path = "e2e/copy.rs"]
mod copy;
#[path = "e2e/damage.rs"]
mod damage;
#[path = "e2e/databases.rs"]
mod databases;
#[path = "e2e/disaster.rs"]
mod disaster;
#[path = "e2e/exports.rs"]
mod exports;
#[path = "e2e/faults.rs"]
mod faults;
#[path = "e2e/fixture.rs"]
mod fixture;
#[path = "e2e/inspect.rs"]
mod inspect;
#[path = "e2e/keys.rs"]
mod keys;
#[path = "e2e/kill.rs"]
mod kill;
#[path = "e2e/maintain.rs"]
mod maintain;
#[path = "e2e/mount.rs"]
mod mount;
#[path = "e2e/padding.rs"]
mod padding;
#[path = "e2e/put_only.rs"]
mod put_only;
#[path = "e2e/remote.rs"]
mod remote;
#[path = "e2e/roundtrip.rs"]
mod roundtrip;
#[path = "e2e/run.rs"]
mod run;
#[path = "e2e/schedule.rs"]
mod schedule;
#[path = "e2e/secrets.rs"]
mod secrets;
#[path = "e2e/security.rs"]
mod security;
#[path = "e2e/status.rs"]
mod status;
#[path = "e2e/streams.rs"]
mod streams;

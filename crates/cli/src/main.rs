//! The `cairn` binary: clap arguments → resolved [`settings::Settings`] and plain
//! requests ([`requests`]) → commands ([`dispatch`]).
//!
//! Error rules at this edge: commands return `anyhow::Result`; `main` prints one line
//! per error (with its causes) and maps cairn-core's errors to documented exit codes.
//! A closed standard output (e.g. `cairn ls | head`) ends quietly.

mod args;
mod commands;
mod dispatch;
mod exit;
mod output;
mod password;
mod progress;
mod requests;
mod settings;

use clap::Parser;
use std::process::ExitCode;

/// Serves buffers of 1 MiB and more (packs, segments, chunks, compression buffers)
/// from their own memory maps, returned to the system when freed (decision 0021).
///
/// By default glibc raises this threshold to the size of the last such buffer freed,
/// up to 32 MiB; backup frees packs, chunks and segments from several threads, so
/// afterwards every buffer came from the per-thread heaps, which kept tens of MiB of
/// freed buffers resident. Median max RSS of backups of a 1.5 GB tree: 147 MiB by
/// default, 100 MiB with 4 MiB; with chunks of at most 2 MiB (decision 0029), 108 MiB
/// at 4 MiB and 92 MiB at 1 MiB for the 2 GB mixed tree, in the same time. Limiting
/// the heaps to one instead (M_ARENA_MAX) gave 121 MiB but made a second backup of an
/// unchanged tree 50% slower; mimalloc kept 300 MiB. Measured with `/usr/bin/time -v`;
/// see docs/benchmarks.md.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc parameter; it is called first thing in
    // main, before any other thread exists, with a documented option and value.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    // Before any thread starts: cairn's password variables leave the environment, so no
    // program started from here on (a hook, a dump tool, ssh) inherits them.
    cairn_core::take_secret_env();
    tune_allocator();
    let cli = args::Cli::parse();
    match dispatch::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::from(exit::OK);
            }
            let code = exit::code_of(&e);
            eprintln!("cairn: {}", output::error_chain(&e));
            ExitCode::from(code)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || matches!(c.downcast_ref::<cairn_core::Error>(),
                Some(cairn_core::Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

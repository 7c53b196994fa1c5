//! Progress bars on a terminal; nothing otherwise.

use cairn_core::{CheckProgress, Progress, Warning};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Backup and restore progress: files, bytes, rate, ETA (when the total is known).
pub struct Bar {
    bar: Option<ProgressBar>,
    files: AtomicU64,
    total_files: AtomicU64,
    warnings_to_stderr: bool,
}

impl Bar {
    /// A bar on standard error when `show`; warnings are always printed.
    pub fn new(show: bool, total_bytes: Option<u64>) -> Bar {
        let bar = show.then(|| {
            let b = match total_bytes {
                Some(t) => ProgressBar::new(t),
                None => ProgressBar::no_length(),
            };
            b.set_draw_target(ProgressDrawTarget::stderr_with_hz(5));
            b.set_style(if total_bytes.is_some() {
                with_total()
            } else {
                ProgressStyle::with_template(
                    "{spinner} {elapsed_precise} {msg} {bytes} {bytes_per_sec}",
                )
                .expect("valid template")
            });
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Bar {
            bar,
            files: AtomicU64::new(0),
            total_files: AtomicU64::new(0),
            warnings_to_stderr: true,
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

fn with_total() -> ProgressStyle {
    ProgressStyle::with_template(
        "{spinner} {elapsed_precise} {msg} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {wide_bar}",
    )
    .expect("valid template")
}

impl Progress for Bar {
    fn total(&self, files: u64, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes.max(b.position()));
            b.set_style(with_total());
            self.total_files.store(files, Ordering::Relaxed);
        }
    }
    fn bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    fn file_done(&self) {
        let n = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            match self.total_files.load(Ordering::Relaxed) {
                0 => b.set_message(format!("{n} files")),
                t => b.set_message(format!("{n}/{t} files")),
            }
        }
    }
    fn file(&self, _path: &Path, _size: Option<u64>) {}
    fn warning(&self, w: &Warning) {
        if self.warnings_to_stderr {
            let line = format!("warning: {w}");
            match &self.bar {
                Some(b) => b.suspend(|| eprintln!("{line}")),
                None => eprintln!("{line}"),
            }
        }
    }
}

impl CheckProgress for Bar {
    fn packs_total(&self, _n: usize, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
        }
    }
    fn pack_read(&self, bytes: u64) {
        self.bytes(bytes);
    }
}

//! [`StopAfter`]: a backend that stops accepting changes after a set number of them.

use std::io;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use cairn_core::{Backend, BackendError, FileKind};

/// Wraps a backend and lets only the next `n` changes (writes and removes) through once
/// [`StopAfter::arm`] is called; every later change fails as if the process had been
/// killed there. Reads and lists always work.
///
/// Every change of a real backend is atomic, so stopping between changes reaches every
/// state a killed process can leave behind: a test that arms it with 0, 1, 2, ...
/// changes visits each of them.
#[derive(Debug)]
pub struct StopAfter {
    inner: Arc<dyn Backend>,
    /// Changes still allowed; negative while unarmed.
    left: AtomicI64,
}

impl StopAfter {
    /// Wraps `inner`, unarmed (every change goes through).
    pub fn new(inner: Arc<dyn Backend>) -> StopAfter {
        StopAfter {
            inner,
            left: AtomicI64::new(-1),
        }
    }

    /// Lets `n` more changes through, then fails every change.
    pub fn arm(&self, n: u32) {
        self.left.store(n as i64, Ordering::SeqCst);
    }

    /// True when a change was refused since arming.
    pub fn stopped(&self) -> bool {
        self.left.load(Ordering::SeqCst) == 0
    }

    fn allow(&self, what: &str) -> Result<(), BackendError> {
        let r = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                n if n < 0 => Some(n),
                0 => None,
                n => Some(n - 1),
            });
        match r {
            Ok(_) => Ok(()),
            Err(_) => Err(BackendError::Io {
                context: format!("{what} (stopped by the test)"),
                source: io::Error::other("stopped"),
            }),
        }
    }
}

impl Backend for StopAfter {
    fn location(&self) -> String {
        self.inner.location()
    }
    fn create(&self) -> Result<(), BackendError> {
        self.allow("create")?;
        self.inner.create()
    }
    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError> {
        self.allow("write")?;
        self.inner.write(kind, name, data)
    }
    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        self.inner.read(kind, name)
    }
    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        self.inner.read_range(kind, name, offset, len)
    }
    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        self.inner.list(kind)
    }
    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        self.allow("remove")?;
        self.inner.remove(kind, name)
    }
}

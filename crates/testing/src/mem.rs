//! [`MemBackend`]: a repository held in memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use cairn_core::{validate_name, Backend, BackendError, FileKind};

type Files = BTreeMap<(FileKind, String), Vec<u8>>;

/// A [`Backend`] that keeps every file in memory, for tests.
///
/// It validates names with the rule every backend applies ([`validate_name`]),
/// so a test that passes against it does not rely on names a real backend refuses.
#[derive(Default)]
pub struct MemBackend {
    files: Mutex<Files>,
}

impl MemBackend {
    /// An empty backend (`create` has not been called, but writes work anyway).
    pub fn new() -> MemBackend {
        MemBackend::default()
    }

    /// Changes the stored bytes of a file in place, to test corruption handling.
    ///
    /// # Panics
    /// When the file does not exist (a test asking to corrupt nothing is a broken test).
    pub fn corrupt(&self, kind: FileKind, name: &str, f: impl FnOnce(&mut Vec<u8>)) {
        let mut files = self.files();
        let data = files
            .get_mut(&(kind, name.to_owned()))
            .unwrap_or_else(|| panic!("MemBackend::corrupt: no {kind:?} file {name}"));
        f(data);
    }

    /// The names of all files of `kind`, sorted.
    pub fn names(&self, kind: FileKind) -> Vec<String> {
        self.files()
            .keys()
            .filter(|(k, _)| *k == kind)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// The total size of all stored files, in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.files().values().map(|data| data.len() as u64).sum()
    }

    fn files(&self) -> MutexGuard<'_, Files> {
        // A panicking test thread must not hide the repository from the others.
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = self.files();
        f.debug_struct("MemBackend")
            .field("files", &files.len())
            .field(
                "bytes",
                &files.values().map(|d| d.len() as u64).sum::<u64>(),
            )
            .finish()
    }
}

impl Backend for MemBackend {
    fn location(&self) -> String {
        "memory".to_owned()
    }

    fn create(&self) -> Result<(), BackendError> {
        if self
            .files()
            .contains_key(&(FileKind::Config, "config".to_owned()))
        {
            return Err(BackendError::AlreadyExists(self.location()));
        }
        Ok(())
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError> {
        validate_name(kind, name)?;
        self.files()
            .entry((kind, name.to_owned()))
            .or_insert_with(|| data.to_vec());
        Ok(())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        validate_name(kind, name)?;
        self.files()
            .get(&(kind, name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found(kind, name))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        validate_name(kind, name)?;
        let files = self.files();
        let data = files
            .get(&(kind, name.to_owned()))
            .ok_or_else(|| not_found(kind, name))?;
        let len = BackendError::check_range(kind, name, offset, len, data.len() as u64)?;
        Ok(data[offset as usize..][..len].to_vec())
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        Ok(self
            .files()
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, name), data)| (name.clone(), data.len() as u64))
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        validate_name(kind, name)?;
        self.files().remove(&(kind, name.to_owned()));
        Ok(())
    }
}

fn not_found(kind: FileKind, name: &str) -> BackendError {
    BackendError::NotFound {
        kind,
        name: name.to_owned(),
    }
}

//! [`open`]: the one function that picks a backend from a location string, and
//! [`local_path`]: whether a location is a local directory.

use std::path::PathBuf;
use std::sync::Arc;

use cairn_core::{Backend, BackendError};

use crate::local::LocalBackend;
use crate::options::{invalid_location, RemoteOptions};
use crate::s3::S3Backend;
use crate::sftp::SftpBackend;

/// The directory of a local repository location (a plain path or a `file://` URL);
/// `None` for remote ones (`s3://`, `sftp://`, any other `scheme://`).
pub fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(path) = location.strip_prefix("file://") {
        return Some(PathBuf::from(path));
    }
    // `rclone:REMOTE:PATH`, as restic names such repositories (a local directory whose
    // name starts so is `./rclone:...`).
    if location.starts_with("rclone:") {
        return None;
    }
    match location.split_once("://") {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
        {
            None
        }
        _ => Some(PathBuf::from(location)),
    }
}

/// The backend for a repository location: `s3://bucket/prefix`,
/// `sftp://[user@]host[:port]/path`, `rclone:REMOTE:PATH` (any remote rclone reaches,
/// through `rclone serve sftp`), or a local directory (a plain path or `file:///path`). Remote backends check their options here but connect lazily, on
/// the first operation.
pub fn open(location: &str, options: &RemoteOptions) -> Result<Arc<dyn Backend>, BackendError> {
    if let Some(path) = local_path(location) {
        return Ok(Arc::new(LocalBackend::new(path)));
    }
    if location.starts_with("s3://") {
        return Ok(Arc::new(S3Backend::new(location, options)?));
    }
    if location.starts_with("sftp://") {
        return Ok(Arc::new(SftpBackend::new(location, options)?));
    }
    if location.starts_with("rclone:") {
        return Ok(Arc::new(SftpBackend::rclone(location)?));
    }
    Err(invalid_location(
        location,
        "unsupported scheme (use a path, file://, s3://, sftp:// or rclone:)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_pick_the_backend() {
        assert_eq!(local_path("/srv/repo"), Some(PathBuf::from("/srv/repo")));
        assert_eq!(local_path("repo"), Some(PathBuf::from("repo")));
        assert_eq!(local_path("file:///srv/repo"), Some("/srv/repo".into()));
        assert_eq!(local_path("s3://bucket/prefix"), None);
        assert_eq!(local_path("sftp://host/repo"), None);
        assert_eq!(local_path("rclone:remote:repo"), None);
        assert_eq!(local_path("./rclone:dir"), Some("./rclone:dir".into()));
        assert_eq!(local_path("/odd/dir://x"), Some("/odd/dir://x".into()));
        let err = open("ftp://host/x", &RemoteOptions::default()).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }
}

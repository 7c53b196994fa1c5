//! [`RemoteOptions`]: what the S3 and SFTP backends need beyond the location URL, and
//! [`open`]: the one function that picks a backend from a location.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use cairn_core::{Backend, BackendError};

use crate::{LocalBackend, S3Backend, SftpBackend};

/// A secret (an S3 secret key or session token): printed as `[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Options of the remote backends; every field is optional and the local backend uses
/// none. The CLI fills them from the config file and then [`RemoteOptions::apply_env`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteOptions {
    /// S3 endpoint URL (`http://127.0.0.1:9000`); AWS's regional endpoint when unset.
    pub s3_endpoint: Option<String>,
    /// S3 region; `us-east-1` when unset (what most S3-compatible servers expect).
    pub s3_region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), the default because every
    /// S3-compatible server understands them; `false` asks for virtual-host style
    /// (`bucket.endpoint/key`).
    pub s3_path_style: Option<bool>,
    /// S3 access key id.
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key.
    pub s3_secret_access_key: Option<Secret>,
    /// S3 session token (temporary credentials).
    pub s3_session_token: Option<Secret>,
    /// SSH private key for SFTP; the ssh agent and ssh's default keys otherwise.
    pub sftp_identity_file: Option<PathBuf>,
    /// known_hosts file the SFTP server's host key is checked against; ssh's own
    /// (`~/.ssh/known_hosts`, `/etc/ssh/ssh_known_hosts`) otherwise. Checking is always
    /// strict: an unknown or changed host key ends the connection.
    pub sftp_known_hosts: Option<PathBuf>,
}

/// Environment variables read by [`RemoteOptions::apply_env`], each overriding one
/// option: the AWS names every S3 tool understands, and cairn's own for SFTP.
pub const ENV_VARS: &[&str] = &[
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "CAIRN_SFTP_IDENTITY_FILE",
    "CAIRN_SFTP_KNOWN_HOSTS",
];

impl RemoteOptions {
    /// Replaces each option whose environment variable (see [`ENV_VARS`]) is set;
    /// `env` yields the non-empty variables.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        if let Some(v) = env("AWS_ENDPOINT_URL") {
            self.s3_endpoint = Some(v);
        }
        if let Some(v) = env("AWS_REGION") {
            self.s3_region = Some(v);
        }
        if let Some(v) = env("AWS_ACCESS_KEY_ID") {
            self.s3_access_key_id = Some(v);
        }
        if let Some(v) = env("AWS_SECRET_ACCESS_KEY") {
            self.s3_secret_access_key = Some(Secret::new(v));
        }
        if let Some(v) = env("AWS_SESSION_TOKEN") {
            self.s3_session_token = Some(Secret::new(v));
        }
        if let Some(v) = env("CAIRN_SFTP_IDENTITY_FILE") {
            self.sftp_identity_file = Some(v.into());
        }
        if let Some(v) = env("CAIRN_SFTP_KNOWN_HOSTS") {
            self.sftp_known_hosts = Some(v.into());
        }
    }
}

/// The directory of a local repository location (a plain path or a `file://` URL);
/// `None` for remote ones (`s3://`, `sftp://`, any other `scheme://`).
pub fn local_path(location: &str) -> Option<PathBuf> {
    if let Some(path) = location.strip_prefix("file://") {
        return Some(PathBuf::from(path));
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
/// `sftp://[user@]host[:port]/path`, or a local directory (a plain path or
/// `file:///path`). Remote backends check their options here but connect lazily, on
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
    Err(invalid_location(
        location,
        "unsupported scheme (use a path, file://, s3:// or sftp://)",
    ))
}

/// The error for a location or option that cannot work.
pub(crate) fn invalid_location(location: &str, why: &str) -> BackendError {
    BackendError::io(
        format!("repository location {location}"),
        io::Error::new(io::ErrorKind::InvalidInput, why.to_owned()),
    )
}

/// The multi-thread runtime a remote backend runs its futures on: two workers drive the
/// connections while the calling threads block in `block_on`; more would only add idle
/// threads, since the work is waiting on the network.
pub(crate) fn runtime(name: &str) -> Result<tokio::runtime::Runtime, BackendError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| BackendError::io(format!("starting the {name} runtime"), e))
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
        assert_eq!(local_path("/odd/dir://x"), Some("/odd/dir://x".into()));
        let err = open("ftp://host/x", &RemoteOptions::default()).unwrap_err();
        assert!(err.to_string().contains("unsupported scheme"), "{err}");
    }

    #[test]
    fn the_environment_overrides_and_secrets_never_print() {
        let mut o = RemoteOptions {
            s3_region: Some("eu-west-1".into()),
            s3_access_key_id: Some("file-key".into()),
            s3_secret_access_key: Some(Secret::new("file-secret")),
            ..RemoteOptions::default()
        };
        o.apply_env(&|k| (k == "AWS_SECRET_ACCESS_KEY").then(|| "env-secret".to_owned()));
        assert_eq!(o.s3_region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.s3_access_key_id.as_deref(), Some("file-key"));
        assert_eq!(
            o.s3_secret_access_key.as_ref().unwrap().expose(),
            "env-secret"
        );
        let printed = format!("{o:?}");
        assert!(!printed.contains("secret\""), "{printed}");
        assert!(!printed.contains("env-secret"), "{printed}");
    }
}

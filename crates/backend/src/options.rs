//! [`RemoteOptions`]: what the S3 and SFTP backends need beyond the location URL, and
//! what the two share (their runtime, how many requests they keep in flight).

use std::fmt;
use std::io;
use std::path::PathBuf;

use cairn_core::BackendError;

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

/// Requests a remote backend asks to have in flight at once (see
/// [`cairn_core::Backend::parallelism`]): each waits on a round trip, so many overlap
/// even on two cores.
pub(crate) const REMOTE_PARALLELISM: usize = 16;

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

//! `rclone:REMOTE:PATH` repositories: [`SftpBackend::rclone`] makes an [`SftpBackend`]
//! whose SFTP server is `rclone serve sftp --stdio`, started by [`session`] for each
//! connection (decision 0031).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use cairn_core::BackendError;
use openssh_sftp_client::{Sftp, SftpAuxiliaryData, SftpOptions};

use crate::options::invalid_location;
use crate::sftp::{Fail, SftpBackend};

impl SftpBackend {
    /// A backend for `rclone:REMOTE:PATH`: a repository on any remote that rclone
    /// reaches (a name from rclone's config, or an on-the-fly `:backend:` remote). Each
    /// connection starts `rclone serve sftp --stdio` on the repository's parent and
    /// speaks SFTP over its standard input and output: no port, no password, nothing
    /// another local user could connect to. rclone must be installed (on `PATH`) and
    /// configured (`rclone config`) for the remote.
    pub fn rclone(location: &str) -> Result<SftpBackend, BackendError> {
        let spec = location
            .strip_prefix("rclone:")
            .ok_or_else(|| invalid_location(location, "not an rclone: location"))?;
        // The remote ends at the first ':' (after the leading one of `:backend:`).
        let skip = usize::from(spec.starts_with(':'));
        let colon = spec[skip..]
            .find(':')
            .map(|i| i + skip)
            .ok_or_else(|| invalid_location(location, "no remote (rclone:REMOTE:PATH)"))?;
        let (remote, path) = (&spec[..=colon], &spec[colon + 1..]);
        if remote.len() <= 1 + skip {
            return Err(invalid_location(location, "no remote (rclone:REMOTE:PATH)"));
        }
        let trimmed = path.trim_end_matches('/');
        if trimmed.split('/').any(|p| p == "." || p == "..") {
            return Err(invalid_location(location, "'.' and '..' in the path"));
        }
        let (parent, name) = match trimmed.rsplit_once('/') {
            Some((parent, name)) => (if parent.is_empty() { "/" } else { parent }, name),
            None => ("", trimmed),
        };
        if name.is_empty() {
            return Err(invalid_location(
                location,
                "no repository directory in the path",
            ));
        }
        SftpBackend::served_by_rclone(location, format!("{remote}{parent}"), format!("/{name}"))
    }
}

/// Starts `rclone serve sftp --stdio` on `served` and opens the SFTP session over it.
/// The process ends with the session (it is killed when the session is dropped).
pub(crate) async fn session(location: &str, served: &str) -> Result<Sftp, Fail> {
    let mut command = cairn_core::command("rclone");
    command
        .args(["serve", "sftp", "--stdio", "--log-level", "ERROR", served])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut child = tokio::process::Command::from(command)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                " (rclone is not installed or not on PATH)"
            } else {
                ""
            };
            Fail::Final(BackendError::io(
                format!("starting rclone for {location}{hint}"),
                e,
            ))
        })?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Fail::Connect("rclone's standard input or output".into()));
    };
    let child = Arc::new(tokio::sync::Mutex::new(child));
    let kept = SftpAuxiliaryData::Arced(child.clone());
    match Sftp::new_with_auxiliary(stdin, stdout, SftpOptions::default(), kept).await {
        Ok(sftp) => Ok(sftp),
        Err(e) => {
            // rclone that ended before the session began (an unknown remote, a config
            // it cannot read) has said why on standard error: no retry. (Its output
            // closes as it exits: it is given a moment to be reaped.)
            let exited = tokio::time::timeout(Duration::from_secs(2), async {
                child.lock().await.wait().await.ok()
            })
            .await
            .ok()
            .flatten();
            match exited {
                Some(status) if !status.success() => Err(Fail::Final(BackendError::io(
                    format!("rclone could not serve {location} ({status})"),
                    io::Error::other(format!(
                        "{e}; rclone's own message is above, and `rclone lsd {served}` \
                         shows whether the remote is configured"
                    )),
                ))),
                _ => Err(e.into()),
            }
        }
    }
}

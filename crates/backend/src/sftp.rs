//! [`SftpBackend`]: a repository in a directory on an SSH server, over SFTP.

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_core::{validate_name, Backend, BackendError, FileKind};
use futures_util::StreamExt;
use openssh::{KnownHosts, SessionBuilder};
use openssh_sftp_client::error::SftpErrorKind;
use openssh_sftp_client::metadata::Permissions;
use openssh_sftp_client::{Error as SftpError, Sftp, SftpOptions};
use tokio::io::AsyncSeekExt;

use crate::local::{DIR_MODE, FILE_MODE, TEMP_PREFIX};
use crate::options::{invalid_location, runtime, RemoteOptions};

/// Attempts of an operation whose connection failed (dropped, reset, timed out): the
/// connection is opened anew after 200 ms, 400 ms, 800 ms, 1.6 s, 3.2 s.
const ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// How long ssh may take to connect before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A repository in a directory reached over SFTP (`sftp://[user@]host[:port]/path`).
///
/// The layout is the local one (see [`crate::LocalBackend`]), so a repository copied
/// with `scp -r` or `rsync` opens on either side. A path in the URL is absolute;
/// `sftp://host/~/repo` is `repo` in the login directory.
///
/// [`SftpBackend::rclone`] (in `rclone.rs`) makes one for `rclone:REMOTE:PATH`
/// instead, whose SFTP server is `rclone serve sftp --stdio` (decision 0031); the rest
/// of this describes `sftp://`.
///
/// It runs the system `ssh` (through the `openssh` crate): keys, the agent and
/// `~/.ssh/config` work as for `ssh`. The server's host key is checked strictly
/// (`StrictHostKeyChecking=yes`) against [`RemoteOptions::sftp_known_hosts`] or ssh's
/// own known_hosts files: an unknown or changed key ends the connection, nothing is
/// trusted on first use. Password prompts are off (`BatchMode`).
///
/// Writes go to `.tmp-<random hex>` in the target directory, are fsynced where the
/// server offers `fsync@openssh.com`, and renamed onto the final name, so a reader never
/// sees part of a file under its name. An operation whose connection fails is retried
/// on a new connection with exponential backoff ([`SftpBackend::retries`] counts the
/// retries); authentication and host-key failures are not retried.
#[derive(Debug)]
pub struct SftpBackend {
    location: String,
    host: String,
    port: Option<u16>,
    user: Option<String>,
    /// The repository's directory on the server (absolute, or relative to the login
    /// directory), without a trailing `/`.
    root: String,
    identity_file: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    /// For an `rclone:` location, what `rclone serve sftp --stdio` serves (the
    /// repository's parent on the remote); the SFTP session runs over its standard input
    /// and output instead of over ssh.
    rclone: Option<String>,
    /// Write requests in flight per file: [`PIPELINE`] over ssh, one through rclone,
    /// whose server writes a file to the remote as a stream and fails a write that does
    /// not follow the one before (it handles requests in parallel, so pipelined ones
    /// may arrive out of order).
    write_pipeline: usize,
    conn: tokio::sync::Mutex<Option<Arc<Sftp>>>,
    retries: AtomicU64,
    runtime: tokio::runtime::Runtime,
}

/// Bytes asked for by one read or write request. OpenSSH's sftp-server takes up to
/// 255 KiB (a larger request is split by the client; a server with a lower limit gets
/// more, smaller requests).
const REQUEST_LEN: usize = 255 << 10;

/// Requests in flight for one file. SFTP answers requests one by one, so a file read or
/// written one request at a time moves one request per round trip.
const PIPELINE: usize = 16;

/// Writes `data` from the start of `file`, `pipeline` requests at a time.
async fn write_pipelined(
    file: &openssh_sftp_client::file::File,
    data: &[u8],
    pipeline: usize,
) -> Result<(), SftpError> {
    let mut pending =
        futures_util::stream::iter(data.chunks(REQUEST_LEN).enumerate().map(|(i, piece)| {
            let mut f = file.clone();
            async move {
                f.seek(io::SeekFrom::Start((i * REQUEST_LEN) as u64))
                    .await
                    .map_err(SftpError::IOError)?;
                f.write_all(piece).await
            }
        }))
        .buffer_unordered(pipeline);
    while let Some(r) = pending.next().await {
        r?;
    }
    Ok(())
}

/// Reads `len` bytes at `offset` of `file`, [`PIPELINE`] requests at a time; `None` when
/// the file ends before.
async fn read_pipelined(
    file: &openssh_sftp_client::file::File,
    offset: u64,
    len: usize,
) -> Result<Option<Vec<u8>>, SftpError> {
    let mut buf = vec![0u8; len];
    let mut pending =
        futures_util::stream::iter(buf.chunks_mut(REQUEST_LEN).enumerate().map(|(i, out)| {
            let mut f = file.clone();
            async move {
                f.seek(io::SeekFrom::Start(offset + (i * REQUEST_LEN) as u64))
                    .await
                    .map_err(SftpError::IOError)?;
                match f.read_all(out.len(), bytes::BytesMut::new()).await {
                    Ok(got) if got.len() == out.len() => {
                        out.copy_from_slice(&got);
                        Ok(true)
                    }
                    Ok(_) => Ok(false),
                    Err(SftpError::IOError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            }
        }))
        .buffer_unordered(PIPELINE);
    let mut whole = true;
    while let Some(r) = pending.next().await {
        whole &= r?;
    }
    drop(pending);
    Ok(whole.then_some(buf))
}

/// Why an attempt failed: on the SFTP protocol (the server answered), or before.
pub(crate) enum Fail {
    Sftp(SftpError),
    /// Connecting failed in a way worth another try (refused, timed out).
    Connect(String),
    /// Connecting failed for good (host key, authentication).
    Final(BackendError),
}

impl From<SftpError> for Fail {
    fn from(e: SftpError) -> Fail {
        Fail::Sftp(e)
    }
}

/// True for an answer of the server (no such file, permission denied, ...), which a
/// new connection would not change.
fn is_status(e: &SftpError) -> bool {
    matches!(e, SftpError::SftpError(..))
}

fn is_no_such_file(e: &SftpError) -> bool {
    matches!(e, SftpError::SftpError(SftpErrorKind::NoSuchFile, _))
}

impl SftpBackend {
    /// A backend for `sftp://[user@]host[:port]/path` with `options`. Checks the URL
    /// but connects only on the first operation.
    pub fn new(location: &str, options: &RemoteOptions) -> Result<SftpBackend, BackendError> {
        // Before parsing, which would resolve them silently.
        if location.split('/').skip(3).any(|p| p == "." || p == "..") {
            return Err(invalid_location(location, "'.' and '..' in the path"));
        }
        let url = url::Url::parse(location)
            .map_err(|e| invalid_location(location, &format!("not a URL: {e}")))?;
        if url.scheme() != "sftp" {
            return Err(invalid_location(location, "not an sftp:// URL"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid_location(location, "no host (sftp://user@host/path)"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| invalid_location(location, "not UTF-8 after percent-decoding"))
        };
        let user = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        if url.password().is_some() {
            return Err(invalid_location(
                location,
                "passwords in sftp:// URLs are not supported; use a key",
            ));
        }
        let path = decode(url.path())?;
        let root = match path.strip_prefix("/~") {
            Some(rest) => rest.trim_matches('/').to_owned(),
            None => format!("/{}", path.trim_matches('/')),
        };
        if root.split('/').any(|p| p == "." || p == "..") {
            return Err(invalid_location(location, "'.' and '..' in the path"));
        }
        if root.is_empty() || root == "/" {
            return Err(invalid_location(
                location,
                "no repository directory in the path",
            ));
        }
        let shown_user = user.as_ref().map(|u| format!("{u}@")).unwrap_or_default();
        let shown_port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let shown_host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.clone()
        };
        let shown_path = if root.starts_with('/') {
            root.clone()
        } else {
            format!("/~/{root}")
        };
        Ok(SftpBackend {
            location: format!("sftp://{shown_user}{shown_host}{shown_port}{shown_path}"),
            host,
            port: url.port(),
            user,
            root,
            identity_file: options.sftp_identity_file.clone(),
            known_hosts: options.sftp_known_hosts.clone(),
            rclone: None,
            write_pipeline: PIPELINE,
            conn: tokio::sync::Mutex::new(None),
            retries: AtomicU64::new(0),
            runtime: runtime("cairn-sftp")?,
        })
    }

    /// A backend whose SFTP server is `rclone serve sftp --stdio` on `served` (see
    /// [`crate::rclone`]), the repository being `root` there.
    pub(crate) fn served_by_rclone(
        location: &str,
        served: String,
        root: String,
    ) -> Result<SftpBackend, BackendError> {
        Ok(SftpBackend {
            location: location.to_owned(),
            host: String::new(),
            port: None,
            user: None,
            root,
            identity_file: None,
            known_hosts: None,
            rclone: Some(served),
            write_pipeline: 1,
            conn: tokio::sync::Mutex::new(None),
            retries: AtomicU64::new(0),
            runtime: runtime("cairn-rclone")?,
        })
    }

    /// The path of `dir` (relative to the repository root; empty for the root).
    fn path(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{rel}", self.root)
        }
    }

    /// Opens the SSH connection and the SFTP session.
    async fn connect(&self) -> Result<Sftp, Fail> {
        if let Some(served) = &self.rclone {
            return crate::rclone::session(&self.location, served).await;
        }
        let mut b = SessionBuilder::default();
        b.known_hosts_check(KnownHosts::Strict)
            .connect_timeout(CONNECT_TIMEOUT)
            .server_alive_interval(Duration::from_secs(30));
        if let Some(user) = &self.user {
            b.user(user.clone());
        }
        if let Some(port) = self.port {
            b.port(port);
        }
        if let Some(key) = &self.identity_file {
            b.keyfile(key);
        }
        if let Some(file) = &self.known_hosts {
            b.user_known_hosts_file(file);
        }
        let session = b
            .connect(&self.host)
            .await
            .map_err(|e| self.connect_error(e))?;
        // The SSH connection works: a failure to start SFTP on it is retried.
        Ok(Sftp::from_session(session, SftpOptions::default()).await?)
    }

    /// Maps a failure to connect; host-key and authentication failures are final, the
    /// others are tried again.
    fn connect_error(&self, e: openssh::Error) -> Fail {
        let text = match &e {
            openssh::Error::Connect(io) => io.to_string(),
            other => other.to_string(),
        };
        let context = format!("connecting to {}", self.location);
        let host_key = [
            "Host key verification failed",
            "REMOTE HOST IDENTIFICATION HAS CHANGED",
            "host key for",
            "No matching host key",
        ];
        if host_key.iter().any(|s| text.contains(s)) {
            let file = match &self.known_hosts {
                Some(f) => f.display().to_string(),
                None => "ssh's known_hosts files".to_owned(),
            };
            return Fail::Final(BackendError::io(
                context,
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "the host key of {} is unknown or does not match the one in {file}; \
                         verify the server's key and add it there",
                        self.host
                    ),
                ),
            ));
        }
        if text.contains("Permission denied") || text.contains("Too many authentication failures") {
            let key = match &self.identity_file {
                Some(k) => format!("the key {}", k.display()),
                None => "the ssh agent's and ssh's default keys".to_owned(),
            };
            return Fail::Final(BackendError::io(
                context,
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("authentication failed with {key}"),
                ),
            ));
        }
        // Refused, timed out, unreachable: the server may be restarting.
        Fail::Connect(text.trim().to_owned())
    }

    /// The open connection, or a new one.
    async fn session(&self) -> Result<Arc<Sftp>, Fail> {
        let mut conn = self.conn.lock().await;
        if let Some(s) = &*conn {
            return Ok(s.clone());
        }
        let s = Arc::new(self.connect().await?);
        *conn = Some(s.clone());
        Ok(s)
    }

    /// Runs `op` on a connection; when the connection fails (anything but an answer
    /// of the server), drops it and runs `op` again on a new one, with backoff.
    fn run<T, F, Fut>(&self, doing: &dyn Fn() -> String, op: F) -> Result<T, SftpOutcome>
    where
        F: Fn(Arc<Sftp>) -> Fut,
        Fut: Future<Output = Result<T, Fail>>,
    {
        self.runtime.block_on(async {
            let mut backoff = FIRST_BACKOFF;
            let mut attempt = 1;
            loop {
                let result = match self.session().await {
                    Ok(sftp) => op(sftp).await,
                    Err(e) => Err(e),
                };
                let transient = match result {
                    Ok(v) => return Ok(v),
                    Err(Fail::Final(e)) => return Err(SftpOutcome::Backend(e)),
                    Err(Fail::Sftp(e)) if is_status(&e) => return Err(SftpOutcome::Status(e)),
                    Err(Fail::Sftp(e)) => e.to_string(),
                    Err(Fail::Connect(e)) => format!("connecting: {e}"),
                };
                *self.conn.lock().await = None;
                if attempt >= ATTEMPTS {
                    return Err(SftpOutcome::Backend(BackendError::io(
                        format!(
                            "{} on {} (gave up after {} retries)",
                            doing(),
                            self.location,
                            ATTEMPTS - 1
                        ),
                        io::Error::new(io::ErrorKind::TimedOut, transient),
                    )));
                }
                self.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                attempt += 1;
            }
        })
    }

    /// Maps the final failure of an operation on a named file.
    fn file_error(&self, doing: &str, kind: FileKind, name: &str, e: SftpOutcome) -> BackendError {
        match e {
            SftpOutcome::Backend(e) => e,
            SftpOutcome::Status(e) if is_no_such_file(&e) => BackendError::NotFound {
                kind,
                name: name.to_owned(),
            },
            SftpOutcome::Status(e) => BackendError::io(
                format!("{doing} {}", self.file_location(kind, name)),
                status_io_error(e),
            ),
        }
    }

    fn file_location(&self, kind: FileKind, name: &str) -> String {
        format!("{}/{}", self.location, kind.path_of(name))
    }

    fn dir_error(&self, doing: &str, rel: &str, e: SftpOutcome) -> BackendError {
        match e {
            SftpOutcome::Backend(e) => e,
            SftpOutcome::Status(e) => BackendError::io(
                format!("{doing} {}/{rel}", self.location),
                status_io_error(e),
            ),
        }
    }

    /// Lists the regular files in `rel` with their sizes.
    async fn list_dir(sftp: &Sftp, path: String) -> Result<Vec<(String, u64, bool)>, Fail> {
        Ok(Self::list_dir_times(sftp, path)
            .await?
            .into_iter()
            .map(|(name, size, is_dir, _)| (name, size, is_dir))
            .collect())
    }

    /// [`Self::list_dir`] with each entry's modification time.
    async fn list_dir_times(
        sftp: &Sftp,
        path: String,
    ) -> Result<Vec<(String, u64, bool, Option<std::time::SystemTime>)>, Fail> {
        let dir = sftp.fs().open_dir(&path).await?;
        let mut entries = Box::pin(dir.read_dir());
        let mut out = Vec::new();
        while let Some(entry) = entries.next().await {
            let entry = entry?;
            let Some(name) = entry.filename().to_str() else {
                continue;
            };
            if name == "." || name == ".." {
                continue;
            }
            let meta = entry.metadata();
            let is_dir = meta.file_type().is_some_and(|t| t.is_dir());
            let is_file = meta.file_type().is_some_and(|t| t.is_file());
            if is_dir || is_file {
                out.push((
                    name.to_owned(),
                    meta.len().unwrap_or(0),
                    is_dir,
                    meta.modified().map(|t| t.as_system_time()),
                ));
            }
        }
        Ok(out)
    }
}

/// The end of [`SftpBackend::run`] when it failed.
enum SftpOutcome {
    /// The server answered with an error status.
    Status(SftpError),
    /// Connecting failed for good, or the connection kept failing.
    Backend(BackendError),
}

fn status_io_error(e: SftpError) -> io::Error {
    let kind = match &e {
        SftpError::SftpError(SftpErrorKind::PermDenied, _) => io::ErrorKind::PermissionDenied,
        SftpError::SftpError(SftpErrorKind::NoSuchFile, _) => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

/// Creates `path` (mode [`DIR_MODE`]); one that exists already is fine.
async fn make_dir(sftp: &Sftp, path: &str) -> Result<(), Fail> {
    let mut fs = sftp.fs();
    let created = fs
        .dir_builder()
        .permissions(Permissions::from(DIR_MODE as u16))
        .create(path)
        .await;
    match created {
        Ok(()) => Ok(()),
        Err(e) if is_status(&e) => match fs.metadata(path).await {
            Ok(meta) if meta.file_type().is_some_and(|t| t.is_dir()) => Ok(()),
            _ => Err(e.into()),
        },
        Err(e) => Err(e.into()),
    }
}

/// `.tmp-` and 16 random bytes in hex.
fn temp_name() -> Result<String, BackendError> {
    let mut random = [0u8; 16];
    getrandom::fill(&mut random).map_err(|e| {
        BackendError::io(
            "choosing a temporary file name",
            io::Error::other(format!("no random bytes: {e}")),
        )
    })?;
    Ok(format!("{TEMP_PREFIX}{}", hex::encode(random)))
}

impl Backend for SftpBackend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create(&self) -> Result<(), BackendError> {
        let root = self.root.clone();
        self.run(&|| "creating the repository".to_owned(), |sftp| {
            let root = root.clone();
            async move {
                // The root and its parents, like `mkdir -p`.
                let absolute = root.starts_with('/');
                let mut path = String::new();
                for part in root.split('/').filter(|p| !p.is_empty()) {
                    if absolute || !path.is_empty() {
                        path.push('/');
                    }
                    path.push_str(part);
                    make_dir(&sftp, &path).await?;
                }
                Ok(())
            }
        })
        .map_err(|e| self.dir_error("creating", "", e))?;
        match self.run(&|| "reading the config".to_owned(), |sftp| {
            let path = self.path("config");
            async move { Ok(sftp.fs().metadata(path).await?) }
        }) {
            Ok(_) => return Err(BackendError::AlreadyExists(self.location.clone())),
            Err(SftpOutcome::Status(e)) if is_no_such_file(&e) => {}
            Err(e) => return Err(self.dir_error("inspecting", "config", e)),
        }
        let mut dirs: Vec<String> = FileKind::ALL
            .iter()
            .filter(|k| **k != FileKind::Config)
            .map(|k| k.dir().to_owned())
            .collect();
        dirs.extend((0..=255u8).map(|b| format!("data/{b:02x}")));
        let paths: Vec<String> = dirs.iter().map(|d| self.path(d)).collect();
        self.run(
            &|| "creating the repository's directories".to_owned(),
            |sftp| {
                let paths = paths.clone();
                async move {
                    // The kind directories first (the fan-out ones live in data/), then
                    // the 256 fan-out directories with their requests in flight together.
                    for p in &paths[..5] {
                        make_dir(&sftp, p).await?;
                    }
                    let pending = paths[5..].iter().map(|p| make_dir(&sftp, p));
                    for r in futures_util::future::join_all(pending).await {
                        r?;
                    }
                    Ok(())
                }
            },
        )
        .map_err(|e| self.dir_error("creating directories in", "", e))
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError> {
        validate_name(kind, name)?;
        let dir_rel = kind.dir_of(name);
        let dir = self.path(&dir_rel);
        let final_path = format!("{dir}/{name}");
        let kind_dir = self.path(kind.dir());
        self.run(
            &|| format!("writing {}", self.file_location(kind, name)),
            |sftp| {
                let (dir, final_path, kind_dir) =
                    (dir.clone(), final_path.clone(), kind_dir.clone());
                async move {
                    let tmp = format!("{dir}/{}", temp_name().map_err(Fail::Final)?);
                    let mut opts = sftp.options();
                    opts.write(true).create_new(true);
                    let mut file = match opts.open(&tmp).await {
                        Ok(f) => f,
                        // A directory missing (as after a copy by a tool that drops empty
                        // directories): make it and try again.
                        Err(e) if is_no_such_file(&e) => {
                            if kind == FileKind::Pack {
                                make_dir(&sftp, &kind_dir).await?;
                            }
                            make_dir(&sftp, &dir).await?;
                            opts.open(&tmp).await?
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let written = async {
                        write_pipelined(&file, data, self.write_pipeline).await?;
                        if let Err(e) = file
                            .set_permissions(Permissions::from(FILE_MODE as u16))
                            .await
                        {
                            // An account that may not change modes (an append-only
                            // setup) can still have its files created read-only by the
                            // server's umask: that is the mode asked for.
                            let md = sftp.fs().metadata(&tmp).await;
                            let mode = md.ok().and_then(|m| m.permissions());
                            if mode != Some(Permissions::from(FILE_MODE as u16)) {
                                return Err(e);
                            }
                        }
                        if sftp.support_fsync() {
                            file.sync_all().await?;
                        }
                        file.close().await
                    }
                    .await;
                    let mut fs = sftp.fs();
                    if let Err(e) = written {
                        let _ = fs.remove_file(&tmp).await;
                        return Err(e.into());
                    }
                    if let Err(e) = fs.rename(&tmp, &final_path).await {
                        let _ = fs.remove_file(&tmp).await;
                        // Without posix-rename, SFTP refuses to replace a file; a file of
                        // this name holds the same bytes (names are content hashes).
                        let exists = fs
                            .metadata(&final_path)
                            .await
                            .is_ok_and(|m| m.file_type().is_some_and(|t| t.is_file()));
                        if !exists || kind == FileKind::Config {
                            return Err(e.into());
                        }
                    }
                    Ok(())
                }
            },
        )
        .map_err(|e| match e {
            // A missing directory on a write is a failure to write, not a missing file.
            SftpOutcome::Status(e) => BackendError::io(
                format!("writing {}", self.file_location(kind, name)),
                status_io_error(e),
            ),
            other => self.file_error("writing", kind, name, other),
        })
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        validate_name(kind, name)?;
        let path = self.path(&kind.path_of(name));
        self.run(
            &|| format!("reading {}", self.file_location(kind, name)),
            |sftp| {
                let path = path.clone();
                async move { Ok(sftp.fs().read(path).await?.to_vec()) }
            },
        )
        .map_err(|e| self.file_error("reading", kind, name, e))
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        validate_name(kind, name)?;
        let path = self.path(&kind.path_of(name));
        let (got, size) = self
            .run(
                &|| format!("reading {}", self.file_location(kind, name)),
                |sftp| {
                    let path = path.clone();
                    async move {
                        let mut file = sftp.open(&path).await?;
                        let Some(want) = offset.checked_add(len).and(usize::try_from(len).ok())
                        else {
                            return Ok((None, file.metadata().await?.len().unwrap_or(0)));
                        };
                        if want == 0 {
                            // Nothing to read, but the offset must lie within the file.
                            let size = file.metadata().await?.len().unwrap_or(0);
                            return Ok(((offset <= size).then(Vec::new), size));
                        }
                        match read_pipelined(&file, offset, want).await? {
                            Some(buf) => Ok((Some(buf), 0)),
                            None => Ok((None, file.metadata().await?.len().unwrap_or(0))),
                        }
                    }
                },
            )
            .map_err(|e| self.file_error("reading", kind, name, e))?;
        got.ok_or_else(|| BackendError::short_read(kind, name, offset, len, size))
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        let rel = kind.dir();
        let dir = self.path(rel);
        let found = self
            .run(&|| format!("listing {}/{rel}", self.location), |sftp| {
                let dir = dir.clone();
                async move {
                    let mut out = Vec::new();
                    for (name, size, is_dir) in Self::list_dir(&sftp, dir.clone()).await? {
                        if kind == FileKind::Pack {
                            // Fan-out directories: two characters each.
                            if !is_dir || name.len() != 2 || name.starts_with(TEMP_PREFIX) {
                                continue;
                            }
                            let sub = format!("{dir}/{name}");
                            match Self::list_dir(&sftp, sub).await {
                                Ok(files) => out.extend(
                                    files
                                        .into_iter()
                                        .filter(|(n, _, d)| !d && n.starts_with(&name))
                                        .map(|(n, s, _)| (n, s)),
                                ),
                                // Removed meanwhile.
                                Err(Fail::Sftp(e)) if is_no_such_file(&e) => {}
                                Err(e) => return Err(e),
                            }
                        } else if !is_dir {
                            out.push((name, size));
                        }
                    }
                    Ok(out)
                }
            })
            .map_err(|e| self.dir_error("listing", rel, e))?;
        Ok(found
            .into_iter()
            .filter(|(name, _)| validate_name(kind, name).is_ok())
            .collect())
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        validate_name(kind, name)?;
        let path = self.path(&kind.path_of(name));
        match self.run(
            &|| format!("removing {}", self.file_location(kind, name)),
            |sftp| {
                let path = path.clone();
                async move { Ok(sftp.fs().remove_file(path).await?) }
            },
        ) {
            Ok(()) => Ok(()),
            Err(SftpOutcome::Status(e)) if is_no_such_file(&e) => Ok(()),
            Err(e) => Err(self.file_error("removing", kind, name, e)),
        }
    }
    /// Deletes `.tmp-*` files in every directory of the repository (by the server's
    /// modification times against this machine's clock).
    fn remove_stale_temp_files(&self, older_than: Duration) -> Result<usize, BackendError> {
        let mut dirs = vec![self.root.clone()];
        for kind in FileKind::ALL {
            if kind != FileKind::Config {
                dirs.push(self.path(kind.dir()));
            }
        }
        let data = self.path(FileKind::Pack.dir());
        self.run(
            &|| format!("removing temporary files in {}", self.location),
            |sftp| {
                let (mut dirs, data) = (dirs.clone(), data.clone());
                async move {
                    for (name, _, is_dir, _) in Self::list_dir_times(&sftp, data.clone()).await? {
                        if is_dir && name.len() == 2 && !name.starts_with(TEMP_PREFIX) {
                            dirs.push(format!("{data}/{name}"));
                        }
                    }
                    let now = std::time::SystemTime::now();
                    let mut removed = 0;
                    for dir in dirs {
                        for (name, _, is_dir, mtime) in
                            Self::list_dir_times(&sftp, dir.clone()).await?
                        {
                            let age = mtime
                                .and_then(|m| now.duration_since(m).ok())
                                .unwrap_or(Duration::ZERO);
                            if is_dir || !name.starts_with(TEMP_PREFIX) || age < older_than {
                                continue;
                            }
                            match sftp.fs().remove_file(format!("{dir}/{name}")).await {
                                Ok(()) => removed += 1,
                                Err(e) if is_no_such_file(&e) => {}
                                Err(e) => return Err(e.into()),
                            }
                        }
                    }
                    Ok(removed)
                }
            },
        )
        .map_err(|e| self.dir_error("removing temporary files in", "", e))
    }

    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn parallelism(&self) -> usize {
        crate::options::REMOTE_PARALLELISM
    }
}

impl Drop for SftpBackend {
    fn drop(&mut self) {
        // Close the SFTP session (and with it the ssh processes) while the runtime that
        // drives it still runs.
        let conn = self.conn.get_mut().take();
        if let Some(sftp) = conn.and_then(|c| Arc::try_unwrap(c).ok()) {
            let _ = self.runtime.block_on(sftp.close());
        }
    }
}

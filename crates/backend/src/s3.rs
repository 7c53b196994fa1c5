//! [`S3Backend`]: a repository under a prefix of an S3-compatible bucket, through
//! Apache OpenDAL.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cairn_core::{validate_name, Backend, BackendError, FileKind};
use opendal::layers::{RetryLayer, TimeoutLayer};
use opendal::{ErrorKind, Operator};

use crate::options::{invalid_location, runtime, RemoteOptions};

/// How often a request that failed transiently (timeout, 5xx, 429, connection reset) is
/// sent again, with exponential backoff and jitter from [`MIN_BACKOFF`] up to
/// [`MAX_BACKOFF`]: about 15 seconds of waiting in all, which rides out a restarting
/// server or a short network outage without hiding a dead one for long.
const MAX_RETRIES: usize = 6;
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// A request that sends or receives nothing for this long has failed (and is retried).
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A repository in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage, ...).
///
/// Object keys below the prefix follow the local layout exactly (`config`,
/// `keys/<name>`, `data/<first two characters>/<name>`, `index/<name>`,
/// `snapshots/<name>`, `locks/<name>`), so a repository copied between a directory
/// and a bucket with plain tools (`aws s3 sync`, `rclone`) opens on either side.
///
/// Every write is one PUT, which S3 makes visible whole or not at all. Transient
/// failures are retried with exponential backoff ([`S3Backend::retries`] counts them);
/// a wrong key, a missing bucket or a refused request ends in one message naming the
/// location. The backend owns a small tokio runtime; its methods block the calling
/// thread and must not be called from inside another tokio runtime.
pub struct S3Backend {
    op: Operator,
    runtime: tokio::runtime::Runtime,
    location: String,
    bucket: String,
    endpoint: String,
    retries: Arc<AtomicU64>,
}

/// By hand: the operator holds the credentials.
impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("location", &self.location)
            .field("endpoint", &self.endpoint)
            .field("retries", &self.retries())
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// A backend for `s3://bucket/prefix` with `options`. Checks the options but sends
    /// nothing; the first operation connects.
    pub fn new(location: &str, options: &RemoteOptions) -> Result<S3Backend, BackendError> {
        let rest = location
            .strip_prefix("s3://")
            .ok_or_else(|| invalid_location(location, "not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = prefix.trim_matches('/');
        if bucket.is_empty() {
            return Err(invalid_location(location, "no bucket (s3://bucket/prefix)"));
        }
        if prefix.split('/').any(|p| p == "." || p == "..") {
            return Err(invalid_location(location, "'.' and '..' in the prefix"));
        }
        let (Some(key_id), Some(secret)) =
            (&options.s3_access_key_id, &options.s3_secret_access_key)
        else {
            return Err(invalid_location(
                location,
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                 s3-access-key-id and s3-secret-access-key(-file) in the config file",
            ));
        };
        let region = options.s3_region.as_deref().unwrap_or("us-east-1");
        let endpoint = options.s3_endpoint.clone().unwrap_or_default();
        opendal::install_default();
        // Credentials come from the options alone (the CLI merged the environment in):
        // OpenDAL's own loading of ~/.aws and the EC2 metadata service is off, so what
        // is used is exactly what docs/config.md says.
        let mut builder = opendal::services::S3::default()
            .bucket(bucket)
            .root(&format!("/{prefix}"))
            .region(region)
            .access_key_id(key_id)
            .secret_access_key(secret.expose())
            .disable_config_load()
            .disable_ec2_metadata();
        if !endpoint.is_empty() {
            builder = builder.endpoint(&endpoint);
        }
        if let Some(token) = &options.s3_session_token {
            builder = builder.session_token(token.expose());
        }
        if options.s3_path_style == Some(false) {
            builder = builder.enable_virtual_host_style();
        }
        let retries = Arc::new(AtomicU64::new(0));
        let counter = retries.clone();
        let op = Operator::new(builder)
            .map_err(|e| invalid_location(location, &e.to_string()))?
            .layer(TimeoutLayer::new().with_io_timeout(IO_TIMEOUT))
            .layer(
                RetryLayer::new()
                    .with_jitter()
                    .with_max_times(MAX_RETRIES)
                    .with_min_delay(MIN_BACKOFF)
                    .with_max_delay(MAX_BACKOFF)
                    .with_notify(move |_: opendal::layers::RetryEvent<'_>| {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }),
            );
        let location = if prefix.is_empty() {
            format!("s3://{bucket}")
        } else {
            format!("s3://{bucket}/{prefix}")
        };
        Ok(S3Backend {
            op,
            runtime: runtime("cairn-s3")?,
            location,
            bucket: bucket.to_owned(),
            endpoint: if endpoint.is_empty() {
                format!("the AWS endpoint of region {region}")
            } else {
                endpoint
            },
            retries,
        })
    }

    /// The object key of `name` of `kind` below the prefix, after validating the name
    /// (see [`FileKind::path_of`]).
    fn key(kind: FileKind, name: &str) -> Result<String, BackendError> {
        validate_name(kind, name)?;
        Ok(kind.path_of(name))
    }

    /// Maps an OpenDAL error of an operation on `what` (a file, or the bucket).
    fn error(
        &self,
        doing: &str,
        what: Option<(FileKind, &str)>,
        e: opendal::Error,
    ) -> BackendError {
        let text = e.to_string();
        let here = format!("{} at {}", self.location, self.endpoint);
        if text.contains("NoSuchBucket") {
            return BackendError::io(
                format!("{doing} {here}"),
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the bucket {} does not exist", self.bucket),
                ),
            );
        }
        match e.kind() {
            ErrorKind::NotFound => match what {
                Some((kind, name)) => BackendError::NotFound {
                    kind,
                    name: name.to_owned(),
                },
                None => BackendError::io(
                    format!("{doing} {here}"),
                    io::Error::new(io::ErrorKind::NotFound, "not found"),
                ),
            },
            ErrorKind::PermissionDenied => {
                let why = if text.contains("InvalidAccessKeyId") {
                    "the access key id is not known to the server"
                } else if text.contains("SignatureDoesNotMatch") {
                    "the secret access key does not match the access key id"
                } else {
                    ""
                };
                let why = if why.is_empty() {
                    format!(
                        "access denied{}: check the access key id, the secret access key and \
                         the bucket's permissions",
                        s3_code(&text)
                            .map(|c| format!(" ({c})"))
                            .unwrap_or_default()
                    )
                } else {
                    why.to_owned()
                };
                BackendError::io(
                    format!("{doing} {here}"),
                    io::Error::new(io::ErrorKind::PermissionDenied, why),
                )
            }
            _ => {
                let kind = if e.is_temporary() {
                    io::ErrorKind::TimedOut
                } else {
                    io::ErrorKind::Other
                };
                let retried = if e.is_temporary() {
                    format!(" (gave up after {MAX_RETRIES} retries)")
                } else {
                    String::new()
                };
                BackendError::io(
                    format!("{doing} {here}{retried}"),
                    io::Error::new(kind, text),
                )
            }
        }
    }

    fn file_error(
        &self,
        doing: &str,
        kind: FileKind,
        name: &str,
        e: opendal::Error,
    ) -> BackendError {
        self.error(
            &format!("{doing} {kind:?} file {name} of"),
            Some((kind, name)),
            e,
        )
    }

    /// The size of a file (for a short read's report).
    fn size(&self, kind: FileKind, name: &str, key: &str) -> Result<u64, BackendError> {
        let meta = self
            .runtime
            .block_on(self.op.stat(key))
            .map_err(|e| self.file_error("inspecting", kind, name, e))?;
        Ok(meta.content_length())
    }
}

/// The S3 error code in an OpenDAL error's text (`code: "AccessDenied"`).
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("code: \"")? + "code: \"".len();
    let len = text[start..].find('"')?;
    Some(&text[start..start + len]).filter(|c| !c.is_empty())
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn create(&self) -> Result<(), BackendError> {
        // A listing fails clearly on a missing bucket or wrong credentials, where a
        // HEAD of the config would only say "404" or "403" without a reason.
        self.runtime
            .block_on(async { self.op.list_with("").limit(1).await })
            .map_err(|e| self.error("listing", None, e))?;
        match self.runtime.block_on(self.op.stat("config")) {
            Ok(_) => Err(BackendError::AlreadyExists(self.location.clone())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.error("inspecting the config of", None, e)),
        }
    }

    fn write(&self, kind: FileKind, name: &str, data: &[u8]) -> Result<(), BackendError> {
        let key = Self::key(kind, name)?;
        // One PUT: S3 stores the object whole or not at all, and acknowledges only
        // what it has made durable.
        self.runtime
            .block_on(self.op.write(&key, data.to_vec()))
            .map_err(|e| self.file_error("writing", kind, name, e))?;
        Ok(())
    }

    fn read(&self, kind: FileKind, name: &str) -> Result<Vec<u8>, BackendError> {
        let key = Self::key(kind, name)?;
        match self.runtime.block_on(self.op.read(&key)) {
            Ok(buf) => Ok(buf.to_vec()),
            // "No config" means "no repository here": make sure it is not "no bucket"
            // (some servers answer a GET in a missing bucket with NoSuchKey).
            Err(e) if kind == FileKind::Config && e.kind() == ErrorKind::NotFound => {
                self.runtime
                    .block_on(async { self.op.list_with("").limit(1).await })
                    .map_err(|e| self.error("listing", None, e))?;
                Err(self.file_error("reading", kind, name, e))
            }
            Err(e) => Err(self.file_error("reading", kind, name, e)),
        }
    }

    fn read_range(
        &self,
        kind: FileKind,
        name: &str,
        offset: u64,
        len: u64,
    ) -> Result<Vec<u8>, BackendError> {
        let key = Self::key(kind, name)?;
        let short = |size| BackendError::short_read(kind, name, offset, len, size);
        let end = match offset.checked_add(len) {
            Some(end) if len > 0 => end,
            // An empty range (S3 has no such thing) or one past u64::MAX: the size
            // decides.
            _ => {
                let size = self.size(kind, name, &key)?;
                return BackendError::check_range(kind, name, offset, len, size)
                    .map(|_| Vec::new());
            }
        };
        match self
            .runtime
            .block_on(async { self.op.read_with(&key).range(offset..end).await })
        {
            Ok(buf) if buf.len() as u64 == len => Ok(buf.to_vec()),
            // The server clipped the range at the end of the object.
            Ok(_) => Err(short(self.size(kind, name, &key)?)),
            // RangeNotSatisfied (416), or OpenDAL's "reader got too little data" when
            // the server clipped the range: the size tells whether the file is short.
            Err(e) if e.kind() != ErrorKind::NotFound && !e.is_temporary() => {
                let size = self.size(kind, name, &key)?;
                if end > size {
                    Err(short(size))
                } else {
                    Err(self.file_error("reading", kind, name, e))
                }
            }
            Err(e) => Err(self.file_error("reading", kind, name, e)),
        }
    }

    fn list(&self, kind: FileKind) -> Result<Vec<(String, u64)>, BackendError> {
        if kind == FileKind::Config {
            return match self.runtime.block_on(self.op.stat("config")) {
                Ok(meta) => Ok(vec![("config".to_owned(), meta.content_length())]),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(self.error("inspecting the config of", None, e)),
            };
        }
        let dir = format!("{}/", kind.dir());
        let entries = self
            .runtime
            .block_on(async {
                self.op
                    .list_with(&dir)
                    .recursive(kind == FileKind::Pack)
                    .await
            })
            .map_err(|e| self.error(&format!("listing {dir} of"), None, e))?;
        let mut out = Vec::new();
        for entry in entries {
            if !entry.metadata().is_file() {
                continue;
            }
            let name = entry.name();
            // Only what `key` would have made: the right fan-out directory for a pack,
            // nothing nested elsewhere, valid names only.
            if validate_name(kind, name).is_err()
                || Self::key(kind, name).ok().as_deref() != Some(entry.path())
            {
                continue;
            }
            out.push((name.to_owned(), entry.metadata().content_length()));
        }
        Ok(out)
    }

    fn remove(&self, kind: FileKind, name: &str) -> Result<(), BackendError> {
        let key = Self::key(kind, name)?;
        // S3's DELETE of a missing key succeeds, and OpenDAL maps a NotFound to Ok.
        match self.runtime.block_on(self.op.delete(&key)) {
            Ok(()) => Ok(()),
            Err(e)
                if e.kind() == ErrorKind::NotFound && !e.to_string().contains("NoSuchBucket") =>
            {
                Ok(())
            }
            Err(e) => Err(self.file_error("removing", kind, name, e)),
        }
    }
    fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn parallelism(&self) -> usize {
        crate::options::REMOTE_PARALLELISM
    }
}

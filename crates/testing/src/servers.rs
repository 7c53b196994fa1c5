//! Real servers on loopback for the remote backends' tests: [`S3Server`] (`s3s-fs`, an
//! S3-compatible server over a directory) and [`SshServer`] (OpenSSH's `sshd` with its
//! built-in SFTP server). Each starts in a temporary directory on a free port and is
//! killed, its directory deleted, when the handle drops.
//!
//! A missing server program is a test failure naming the package to install, never a
//! silent skip: `scripts/test.sh` installs both.
//!
//! Why `s3s-fs`: it is a real S3 endpoint (SigV4-signed requests, ranged GETs,
//! ListObjectsV2, NoSuchBucket and credential errors) in one small binary that builds
//! from crates.io with the toolchain cairn uses; MinIO is not packaged for Debian, Garage
//! needs a cluster layout before it serves, and moto is a mock of the protocol.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections after it was started.
const STARTUP: Duration = Duration::from_secs(20);

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a free port on 127.0.0.1")
        .port()
}

/// Waits until `port` accepts connections; panics with the server's output when the
/// server exits or does not come up.
fn wait_for_port(child: &mut Child, port: u16, what: &str, log: &Path) {
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "{what} exited ({status}) before serving:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        if start.elapsed() > STARTUP {
            let _ = child.kill();
            panic!(
                "{what} did not accept connections on port {port} within {STARTUP:?}:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs a command that must succeed (key generation).
fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where the `s3s-fs` binary is: `CAIRN_TEST_S3S_FS`, else on `PATH`, else in
/// `$CARGO_HOME/bin` (`~/.cargo/bin`), where `cargo install` puts it.
pub fn s3s_fs_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CAIRN_TEST_S3S_FS") {
        return PathBuf::from(p);
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the S3 test server s3s-fs is not installed: run \
                 `cargo install --locked s3s-fs --version 0.14.1 --features binary` \
                 (or set CAIRN_TEST_S3S_FS to its path)"
            )
        })
}

/// An S3-compatible server (`s3s-fs`) on 127.0.0.1, serving a temporary directory in
/// which every subdirectory is a bucket.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl S3Server {
    /// The access key id the server accepts.
    pub const ACCESS_KEY_ID: &'static str = "cairntestkey";
    /// The secret access key the server accepts.
    pub const SECRET_ACCESS_KEY: &'static str = "cairn-test-secret-0123456789";

    /// Starts a server with no bucket.
    pub fn start() -> S3Server {
        let binary = s3s_fs_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("buckets");
        fs::create_dir(&root).unwrap();
        let log = dir.path().join("s3s-fs.log");
        let port = free_port();
        let mut child = Command::new(&binary)
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--access-key")
            .arg(Self::ACCESS_KEY_ID)
            .arg("--secret-key")
            .arg(Self::SECRET_ACCESS_KEY)
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        wait_for_port(&mut child, port, "s3s-fs", &log);
        S3Server { child, dir, port }
    }

    /// Creates a bucket (a directory of the served root).
    pub fn create_bucket(&self, name: &str) {
        fs::create_dir(self.dir.path().join("buckets").join(name)).expect("creating a bucket");
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The directory of a bucket on disk (objects are files below it).
    pub fn bucket_dir(&self, name: &str) -> PathBuf {
        self.dir.path().join("buckets").join(name)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The ordinary account that [`SshServer::start_ordinary`] logs in when the tests run
/// as root: made here if it is missing (`scripts/test.sh` makes it too), no password,
/// no home directory.
pub const ORDINARY_ACCOUNT: &str = "cairn-sftp";

/// An OpenSSH server on 127.0.0.1 with its SFTP subsystem, a fresh host key, and one
/// client key in its authorized_keys; it logs in the user running the tests, or, from
/// [`SshServer::start_ordinary`], an ordinary account whose file modes bind it.
#[derive(Debug)]
pub struct SshServer {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
    user: String,
}

/// Makes [`ORDINARY_ACCOUNT`] when it is missing, with no password and not locked:
/// without PAM, sshd refuses every login, keys included, to an account whose password
/// field starts with "!" (what `useradd` gives by default). Tests in other processes may
/// do this at the same moment; `useradd` and `usermod` then find the account files
/// locked or the account made, and this tries again.
fn ensure_ordinary_account() {
    let field = || -> Option<String> {
        let out = Command::new("getent")
            .args(["shadow", ORDINARY_ACCOUNT])
            .output()
            .expect("running getent");
        out.status.success().then(|| {
            let line = String::from_utf8_lossy(&out.stdout).into_owned();
            line.split(':').nth(1).unwrap_or("").to_owned()
        })
    };
    for attempt in 0..50 {
        let out = match field() {
            Some(pw) if !pw.starts_with('!') => return,
            Some(_) => Command::new("usermod")
                .args(["-p", "*", ORDINARY_ACCOUNT])
                .output(),
            None => Command::new("useradd")
                .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
                .args(["--shell", "/bin/sh", "--password", "*", ORDINARY_ACCOUNT])
                .output(),
        }
        .expect("running useradd or usermod (package passwd)");
        if !out.status.success() {
            assert!(
                attempt < 49,
                "making the account {ORDINARY_ACCOUNT}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    panic!("the account {ORDINARY_ACCOUNT} could not be made or unlocked");
}

/// Where `sshd` is: on `PATH`, else `/usr/sbin/sshd`.
fn sshd_binary() -> PathBuf {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin")])
        .map(|d| d.join("sshd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("sshd is not installed: run `apt-get install openssh-server openssh-client`")
        })
}

impl SshServer {
    /// Starts a server.
    pub fn start() -> SshServer {
        SshServer::start_with_sftp_options("")
    }

    /// Starts a server whose SFTP subsystem is `internal-sftp` with these options, e.g.
    /// `-P remove,rmdir` to deny requests (an account that cannot delete).
    pub fn start_with_sftp_options(options: &str) -> SshServer {
        SshServer::start_as(options, false)
    }

    /// Starts a server that logs in an ordinary account, as a real server's backup
    /// account is: when the tests run as root, [`ORDINARY_ACCOUNT`] (whose file modes
    /// bind it, where root's never do), else the user running them. [`SshServer::files`]
    /// belongs to that account.
    pub fn start_ordinary(options: &str) -> SshServer {
        SshServer::start_as(options, true)
    }

    fn start_as(options: &str, ordinary: bool) -> SshServer {
        let sshd = sshd_binary();
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "cairn-test", "-f"])
                .arg(d.join(key)));
        }
        fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let me = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("running id -un")
                .stdout,
        )
        .unwrap()
        .trim()
        .to_owned();
        let root = me == "root";
        if root {
            // sshd refuses to start without its privilege separation directory.
            let _ = fs::create_dir_all("/run/sshd");
        }
        let user = if ordinary && root {
            ensure_ordinary_account();
            ORDINARY_ACCOUNT.to_owned()
        } else {
            me
        };
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile none\n\
             AuthorizedKeysFile {keys}\nPubkeyAuthentication yes\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
             PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp {options}\n\
             LogLevel ERROR\n",
            host_key = d.join("host_key").display(),
            keys = d.join("authorized_keys").display(),
        );
        fs::write(d.join("sshd_config"), config).unwrap();
        let host_pub = fs::read_to_string(d.join("host_key.pub")).unwrap();
        fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {}", host_pub.trim()),
        )
        .unwrap();
        fs::create_dir(d.join("files")).unwrap();
        if user == ORDINARY_ACCOUNT {
            // The account reaches its authorized_keys and its files through the
            // temporary directory (root's, mode 0700 until now), and owns its files.
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
            run(Command::new("chown")
                .arg(format!("{ORDINARY_ACCOUNT}:"))
                .arg(d.join("files")));
        }
        let log = d.join("sshd.log");
        let mut child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", sshd.display()));
        wait_for_port(&mut child, port, "sshd", &log);
        SshServer {
            child,
            dir,
            port,
            user,
        }
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The account the server logs in.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// A directory on the server (the same machine) for repositories.
    pub fn files(&self) -> PathBuf {
        self.dir.path().join("files")
    }

    /// `sftp://user@127.0.0.1:port/<files>/<rel>`.
    pub fn url(&self, rel: &str) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}{}/{rel}",
            self.user,
            self.port,
            self.files().display()
        )
    }

    /// The private key the server accepts.
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_key")
    }

    /// A known_hosts file with the server's host key.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }

    /// Ends every open SSH connection, as a network failure or a restarted server
    /// would: the server's per-connection processes are killed, and it goes on
    /// accepting new connections. Returns how many connections were ended.
    pub fn drop_connections(&self) -> usize {
        let out = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string()])
            .output()
            .expect("running pgrep");
        let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if !pids.is_empty() {
            run(Command::new("kill").arg("-KILL").args(&pids));
        }
        pids.len()
    }

    /// A known_hosts file that names this server with another host key, as after a
    /// server was replaced (or impersonated).
    pub fn wrong_known_hosts(&self) -> PathBuf {
        let d = self.dir.path();
        let path = d.join("wrong_known_hosts");
        if !path.exists() {
            run(Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "impostor", "-f"])
                .arg(d.join("other_host_key")));
            let other = fs::read_to_string(d.join("other_host_key.pub")).unwrap();
            fs::write(&path, format!("[127.0.0.1]:{} {}", self.port, other.trim())).unwrap();
        }
        path
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

//! `SftpBackend` against a real OpenSSH server on loopback (`sshd`, started by the
//! tests): the conformance suite, then host keys and layout.

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_backend::{Backend, FileKind, RemoteOptions, SftpBackend};
use cairn_testing::conformance::hex_name;
use cairn_testing::servers::SshServer;

/// A server of its own for each test (it starts in milliseconds); a server in a
/// `static` would never be dropped, so never stopped.
fn server() -> SshServer {
    SshServer::start()
}

fn options(s: &SshServer) -> RemoteOptions {
    RemoteOptions {
        sftp_identity_file: Some(s.client_key()),
        sftp_known_hosts: Some(s.known_hosts()),
        ..RemoteOptions::default()
    }
}

/// A factory of fresh backends, each in a new directory of one server; the closure
/// owns the server.
fn fresh_backends() -> impl Fn() -> Box<dyn Backend> {
    let s = server();
    let count = AtomicUsize::new(0);
    move || -> Box<dyn Backend> {
        let i = count.fetch_add(1, Ordering::Relaxed);
        Box::new(SftpBackend::new(&s.url(&format!("r{i}/repo")), &options(&s)).unwrap())
    }
}

cairn_testing::backend_conformance_tests!(fresh_backends());

/// The same suite through an ordinary account (not root when the tests run as root), as
/// a real server's backup account is: the modes cairn gives its files and directories
/// bind it, so a file it made read-only cannot be opened for writing again, and every
/// directory it makes must stay writable to it.
mod ordinary_account {
    use super::*;

    fn fresh_backends() -> impl Fn() -> Box<dyn Backend> {
        let s = SshServer::start_ordinary("");
        let count = AtomicUsize::new(0);
        move || -> Box<dyn Backend> {
            let i = count.fetch_add(1, Ordering::Relaxed);
            Box::new(SftpBackend::new(&s.url(&format!("r{i}/repo")), &options(&s)).unwrap())
        }
    }

    cairn_testing::backend_conformance_tests!(fresh_backends());
}

#[test]
fn layout_matches_the_local_one_without_temp_files() {
    let s = &server();
    let b = SftpBackend::new(&s.url("layout"), &options(s)).unwrap();
    b.create().unwrap();
    let name = hex_name(1);
    b.write(FileKind::Config, "config", b"c").unwrap();
    b.write(FileKind::Pack, &name, b"p").unwrap();
    b.write(FileKind::Pack, &name, b"p").unwrap();
    let dir = s.files().join("layout");
    assert_eq!(std::fs::read(dir.join("config")).unwrap(), b"c");
    assert_eq!(
        std::fs::read(dir.join("data").join(&name[..2]).join(&name)).unwrap(),
        b"p"
    );
    assert_eq!(std::fs::read_dir(dir.join("data")).unwrap().count(), 256);
    let temp: Vec<_> = std::fs::read_dir(dir.join("data").join(&name[..2]))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(".tmp-")
        })
        .collect();
    assert!(temp.is_empty(), "{temp:?}");
    // The repository opens as a local one.
    let local = cairn_backend::LocalBackend::new(&dir);
    assert_eq!(local.list(FileKind::Pack).unwrap(), vec![(name, 1)]);
    assert_eq!(b.retries(), 0);
}

#[test]
fn a_changed_host_key_is_refused_with_a_clear_message() {
    let s = &server();
    let mut o = options(s);
    o.sftp_known_hosts = Some(s.wrong_known_hosts());
    let b = SftpBackend::new(&s.url("impostor"), &o).unwrap();
    let err = b.create().unwrap_err();
    let text = err.to_string();
    assert!(text.contains("host key of 127.0.0.1"), "{text}");
    assert!(text.contains(&s.url("impostor")), "{text}");
    assert_eq!(b.retries(), 0, "a host-key mismatch is not retried");
    assert!(!s.files().join("impostor").exists());
}

#[test]
fn an_unknown_host_key_is_refused() {
    let s = &server();
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let mut o = options(s);
    o.sftp_known_hosts = Some(empty);
    let b = SftpBackend::new(&s.url("unknown"), &o).unwrap();
    let text = b.read(FileKind::Config, "config").unwrap_err().to_string();
    assert!(text.contains("host key of 127.0.0.1"), "{text}");
}

#[test]
fn a_key_the_server_does_not_know_is_refused() {
    let s = &server();
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut o = options(s);
    o.sftp_identity_file = Some(key);
    let b = SftpBackend::new(&s.url("stranger"), &o).unwrap();
    let text = b.create().unwrap_err().to_string();
    assert!(text.contains("authentication failed"), "{text}");
}

#[test]
fn urls_are_parsed_and_shown() {
    let o = RemoteOptions::default();
    let b = SftpBackend::new("sftp://ann@example.org:2222/srv/repo/", &o).unwrap();
    assert_eq!(b.location(), "sftp://ann@example.org:2222/srv/repo");
    let b = SftpBackend::new("sftp://example.org/~/backups", &o).unwrap();
    assert_eq!(b.location(), "sftp://example.org/~/backups");
    for bad in [
        "sftp:///repo",
        "sftp://host/",
        "sftp://a:pw@host/x",
        "sftp://h/a/../b",
    ] {
        assert!(SftpBackend::new(bad, &o).is_err(), "{bad}");
    }
}

#[test]
fn an_unreachable_server_is_retried_with_backoff_then_reported() {
    // A port nobody listens on: every connection is refused, tried again with
    // backoff, and the retries are counted.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("sftp://127.0.0.1:{port}/srv/repo");
    let b = SftpBackend::new(&url, &RemoteOptions::default()).unwrap();
    let started = std::time::Instant::now();
    let err = b.read(FileKind::Key, &hex_name(1)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("gave up after 5 retries"), "{text}");
    assert!(text.contains(&url), "{text}");
    assert!(!err.is_not_found(), "{text}");
    assert_eq!(b.retries(), 5);
    // 0.2 + 0.4 + 0.8 + 1.6 + 3.2 seconds of backoff.
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(6),
        "{text}"
    );
}

#[test]
fn writing_into_an_uncreated_repository_is_an_error_not_a_missing_file() {
    let s = server();
    let b = SftpBackend::new(&s.url("nothing/here"), &options(&s)).unwrap();
    let err = b.write(FileKind::Key, &hex_name(1), b"k").unwrap_err();
    assert!(
        matches!(err, cairn_backend::BackendError::Io { .. }),
        "{err}"
    );
    assert!(b
        .read(FileKind::Config, "config")
        .unwrap_err()
        .is_not_found());
    assert!(b.list(FileKind::Key).is_err());
    b.remove(FileKind::Key, &hex_name(1)).unwrap();
}

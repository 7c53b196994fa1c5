//! `S3Backend` against a real S3-compatible server on loopback (`s3s-fs`, started by
//! the tests): the conformance suite, then the failures a user meets first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cairn_backend::{Backend, BackendError, FileKind, RemoteOptions, S3Backend, Secret};
use cairn_testing::conformance::hex_name;
use cairn_testing::servers::S3Server;

/// A server of its own for each test (it starts in milliseconds), with a bucket
/// `cairn`; a server in a `static` would never be dropped, so never stopped.
fn server() -> S3Server {
    let s = S3Server::start();
    s.create_bucket("cairn");
    s
}

fn options(s: &S3Server) -> RemoteOptions {
    RemoteOptions {
        s3_endpoint: Some(s.endpoint()),
        s3_region: Some("us-east-1".into()),
        s3_access_key_id: Some(S3Server::ACCESS_KEY_ID.into()),
        s3_secret_access_key: Some(Secret::new(S3Server::SECRET_ACCESS_KEY)),
        ..RemoteOptions::default()
    }
}

/// A factory of fresh backends, each under a new prefix of one server's bucket; the
/// closure owns the server.
fn fresh_backends() -> impl Fn() -> Box<dyn Backend> {
    let s = server();
    let count = AtomicUsize::new(0);
    move || -> Box<dyn Backend> {
        let i = count.fetch_add(1, Ordering::Relaxed);
        Box::new(S3Backend::new(&format!("s3://cairn/p{i}/repo"), &options(&s)).unwrap())
    }
}

cairn_testing::backend_conformance_tests!(fresh_backends());

#[test]
fn layout_matches_the_local_one() {
    let s = &server();
    let b = S3Backend::new("s3://cairn/layout", &options(s)).unwrap();
    b.create().unwrap();
    let name = hex_name(1);
    b.write(FileKind::Config, "config", b"c").unwrap();
    b.write(FileKind::Pack, &name, b"p").unwrap();
    b.write(FileKind::Snapshot, &name, b"s").unwrap();
    let dir = s.bucket_dir("cairn").join("layout");
    assert_eq!(std::fs::read(dir.join("config")).unwrap(), b"c");
    assert_eq!(
        std::fs::read(dir.join("data").join(&name[..2]).join(&name)).unwrap(),
        b"p"
    );
    assert_eq!(
        std::fs::read(dir.join("snapshots").join(&name)).unwrap(),
        b"s"
    );
    assert_eq!(b.location(), "s3://cairn/layout");
    assert_eq!(b.retries(), 0);
}

#[test]
fn open_picks_s3_and_reports_the_location() {
    let s = &server();
    let b: Arc<dyn Backend> = cairn_backend::open("s3://cairn/opened/", &options(s)).unwrap();
    assert_eq!(b.location(), "s3://cairn/opened");
    b.create().unwrap();
    b.write(FileKind::Key, &hex_name(2), b"k").unwrap();
    assert_eq!(b.list(FileKind::Key).unwrap(), vec![(hex_name(2), 1)]);
}

/// The message of an error, checked to be about `location` and free of the secret.
fn message(err: BackendError, location: &str) -> String {
    let text = err.to_string();
    assert!(text.contains(location), "{text}");
    assert!(!text.contains(S3Server::SECRET_ACCESS_KEY), "{text}");
    text
}

#[test]
fn wrong_credentials_give_one_clear_message() {
    let s = &server();
    let mut o = options(s);
    o.s3_secret_access_key = Some(Secret::new("not-the-secret"));
    let b = S3Backend::new("s3://cairn/wrong-secret", &o).unwrap();
    let text = message(b.create().unwrap_err(), "s3://cairn/wrong-secret");
    assert!(text.contains("secret access key does not match"), "{text}");
    let text = message(
        b.read(FileKind::Config, "config").unwrap_err(),
        "s3://cairn/wrong-secret",
    );
    assert!(text.contains("secret access key does not match"), "{text}");
    assert_eq!(b.retries(), 0, "an authentication failure is not retried");

    let mut o = options(s);
    o.s3_access_key_id = Some("nobody".into());
    let b = S3Backend::new("s3://cairn/wrong-key", &o).unwrap();
    let text = message(b.create().unwrap_err(), "s3://cairn/wrong-key");
    // Servers name this case differently (InvalidAccessKeyId, NotSignedUp, ...).
    assert!(
        text.contains("access key id is not known") || text.contains("access denied ("),
        "{text}"
    );
}

#[test]
fn a_missing_bucket_gives_one_clear_message() {
    let s = &server();
    let b = S3Backend::new("s3://no-such-bucket/repo", &options(s)).unwrap();
    let text = message(b.create().unwrap_err(), "s3://no-such-bucket/repo");
    assert!(
        text.contains("the bucket no-such-bucket does not exist"),
        "{text}"
    );
    let err = b.read(FileKind::Config, "config").unwrap_err();
    assert!(
        !err.is_not_found(),
        "a missing bucket is not a missing config: {err}"
    );
    let text = message(err, "s3://no-such-bucket/repo");
    assert!(text.contains("does not exist"), "{text}");
}

#[test]
fn secrets_never_print() {
    let s = server();
    let b = S3Backend::new("s3://cairn/debug", &options(&s)).unwrap();
    let printed = format!("{b:?} {:?}", options(&s));
    assert!(!printed.contains(S3Server::SECRET_ACCESS_KEY), "{printed}");
}

#[test]
fn missing_credentials_are_refused_before_any_request() {
    let err = S3Backend::new("s3://cairn/x", &RemoteOptions::default()).unwrap_err();
    assert!(err.to_string().contains("AWS_ACCESS_KEY_ID"), "{err}");
}

#[test]
fn an_unreachable_endpoint_is_retried_then_reported() {
    // A port nobody listens on: every request fails to connect, is retried with
    // backoff, and the retries are counted.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = server();
    let mut o = options(&s);
    o.s3_endpoint = Some(format!("http://127.0.0.1:{port}"));
    let b = S3Backend::new("s3://cairn/down", &o).unwrap();
    let err = b.read(FileKind::Config, "config").unwrap_err();
    assert!(!err.is_not_found(), "{err}");
    assert!(b.retries() > 0, "{err}");
    message(err, "s3://cairn/down");
}

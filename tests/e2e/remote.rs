//! The binary against remote repositories on real servers on loopback: an S3-compatible
//! one (`s3s-fs`, options from the environment) and OpenSSH's SFTP (options from the
//! config file). Each runs init, backup, snapshots, restore and check --read-data.

use crate::common::*;
use cairn_testing::servers::{S3Server, SshServer};
use std::fs;
use std::path::Path;
use std::process::Command;

/// A small tree: a multi-chunk file, text, an empty file, a nested directory.
fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("big.bin"), pseudo_random(7, 3 << 20)).unwrap();
    fs::write(root.join("sub/notes.txt"), b"remote repositories\n").unwrap();
    fs::write(root.join("sub/deeper/empty"), b"").unwrap();
}

/// init, backup, snapshots, restore (byte-exact), check --read-data with `cmd` building
/// each cairn command.
fn round_trip(env: &Env, cmd: &dyn Fn(&[&str]) -> Command, location: &str) {
    let ok = |args: &[&str]| -> String {
        let out = cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "cairn {args:?} on {location} failed\nstdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let src = env.path("src");
    make_tree(&src);
    ok(&["init"]);
    let out = cmd(&["init"]).output().unwrap();
    assert!(
        !out.status.success(),
        "a second init on {location} succeeded"
    );
    let v: serde_json::Value =
        serde_json::from_str(&ok(&["backup", src.to_str().unwrap(), "--json"])).unwrap();
    let snap = v["snapshot"].as_str().unwrap().to_owned();
    let list: serde_json::Value = serde_json::from_str(&ok(&["snapshots", "--json"])).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let target = env.path("restore");
    ok(&["restore", &snap, "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &restored(&target, &src));
    assert_eq!(
        fs::read(restored(&target, &src).join("big.bin")).unwrap(),
        pseudo_random(7, 3 << 20)
    );
    ok(&["check", "--read-data"]);
}

#[test]
fn s3_repository_round_trips_with_options_from_the_environment() {
    let server = S3Server::start();
    server.create_bucket("backups");
    let env = Env::new();
    let location = "s3://backups/hosts/web1";
    let cmd = |args: &[&str]| {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", location)
            .env("CAIRN_CACHE_DIR", env.path("cache"))
            .env("AWS_ENDPOINT_URL", server.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", S3Server::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3Server::SECRET_ACCESS_KEY)
            .args(args);
        c
    };
    round_trip(&env, &cmd, location);
    assert!(server
        .bucket_dir("backups")
        .join("hosts/web1/config")
        .is_file());
}

#[test]
fn sftp_repository_round_trips_with_options_from_the_config_file() {
    let server = SshServer::start();
    let env = Env::new();
    let location = server.url("repo");
    let config = env.path("config.toml");
    fs::write(
        &config,
        format!(
            "[repository]\nurl = {location:?}\nsftp-identity-file = {:?}\nsftp-known-hosts = {:?}\n",
            server.client_key().display().to_string(),
            server.known_hosts().display().to_string(),
        ),
    )
    .unwrap();
    let cmd = |args: &[&str]| {
        let mut c = env.cmd();
        c.env_remove("CAIRN_REPOSITORY")
            .env("CAIRN_CONFIG", &config)
            .env("CAIRN_CACHE_DIR", env.path("cache"))
            .args(args);
        c
    };
    round_trip(&env, &cmd, &location);
    assert!(server.files().join("repo/config").is_file());
    assert_eq!(
        fs::read_dir(server.files().join("repo/data"))
            .unwrap()
            .count(),
        256
    );
}

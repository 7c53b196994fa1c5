//! The binary against remote repositories on real servers on loopback: an S3-compatible
//! one (`s3s-fs`, options from the environment), OpenSSH's SFTP (options from the
//! config file) and rclone (`rclone serve sftp`, on its local backend). Each runs init,
//! backup, snapshots, restore and check --read-data.

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
    let ok = |args: &[&str]| run_ok(cmd, args);
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
    let cmd = s3_cmd(&env, &server, location);
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

/// An `rclone:` repository: cairn starts rclone itself, on rclone's local backend here
/// (`:local:`, any configured remote works the same); forget and prune run through it
/// too, and no rclone process outlives a command.
#[test]
fn rclone_repository_round_trips_and_prunes() {
    let env = Env::new();
    let on_disk = env.path("offsite/web1");
    let location = format!("rclone::local:{}", on_disk.display());
    let cmd = location_cmd(&env, &location);
    round_trip(&env, &cmd, &location);
    assert!(on_disk.join("config").is_file());
    assert_eq!(fs::read_dir(on_disk.join("data")).unwrap().count(), 256);
    let serving = |dir: &Path| {
        let out = Command::new("pgrep")
            .args([
                "-f",
                &format!("rclone serve sftp --stdio .*{}", dir.display()),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(serving(&env.path("offsite")), "", "rclone still running");

    let env = Env::new();
    let on_disk = env.path("offsite/web1");
    let location = format!("rclone::local:{}", on_disk.display());
    let cmd = location_cmd(&env, &location);
    forget_and_prune(&env, &cmd, &on_disk.join("data"));
    assert_eq!(serving(&env.path("offsite")), "", "rclone still running");
}

/// A command line for the repository at `location`, which needs no options.
fn location_cmd<'a>(env: &'a Env, location: &'a str) -> impl Fn(&[&str]) -> Command + 'a {
    move |args: &[&str]| {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", location)
            .env("CAIRN_CACHE_DIR", env.path("cache"))
            .args(args);
        c
    }
}

/// Runs `cmd(args)` and returns its standard output; fails the test on failure.
fn run_ok(cmd: &dyn Fn(&[&str]) -> Command, args: &[&str]) -> String {
    succeed(&mut cmd(args))
}

/// Bytes of the regular files below `dir` (recursively).
fn bytes_below(dir: &Path) -> u64 {
    let mut n = 0;
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        n += if m.is_dir() {
            bytes_below(&e.path())
        } else {
            m.len()
        };
    }
    n
}

/// forget and prune on a remote repository: of two snapshots the older is forgotten,
/// prune gives its data back (`data` is where the server keeps the repository's packs),
/// the newer restores byte-exact and check --read-data passes.
fn forget_and_prune(env: &Env, cmd: &dyn Fn(&[&str]) -> Command, data: &Path) {
    let src = env.path("src");
    make_tree(&src);
    fs::write(src.join("old.bin"), pseudo_random(11, 4 << 20)).unwrap();
    run_ok(cmd, &["init"]);
    run_ok(cmd, &["backup", src.to_str().unwrap()]);
    fs::remove_file(src.join("old.bin")).unwrap();
    fs::write(src.join("new.bin"), pseudo_random(12, 1 << 20)).unwrap();
    run_ok(cmd, &["backup", src.to_str().unwrap()]);
    let before = bytes_below(data);
    run_ok(cmd, &["forget", "--keep-last", "1"]);
    let list: serde_json::Value =
        serde_json::from_str(&run_ok(cmd, &["snapshots", "--json"])).unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    run_ok(cmd, &["prune"]);
    let after = bytes_below(data);
    assert!(
        after + (3 << 20) < before,
        "prune freed too little: {before} bytes of packs before, {after} after"
    );
    let target = env.path("restore");
    run_ok(
        cmd,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    assert_same_tree(&src, &restored(&target, &src));
    run_ok(cmd, &["check", "--read-data"]);
}

#[test]
fn forget_and_prune_on_s3() {
    let server = S3Server::start();
    server.create_bucket("backups");
    let env = Env::new();
    let cmd = s3_cmd(&env, &server, "s3://backups/web1");
    forget_and_prune(&env, &cmd, &server.bucket_dir("backups").join("web1/data"));
}

/// An S3 command line for `location` on `server`, options in the environment.
fn s3_cmd<'a>(
    env: &'a Env,
    server: &'a S3Server,
    location: &'a str,
) -> impl Fn(&[&str]) -> Command + 'a {
    move |args: &[&str]| {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", location)
            .env("CAIRN_CACHE_DIR", env.path("cache"))
            .env("AWS_ENDPOINT_URL", server.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", S3Server::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3Server::SECRET_ACCESS_KEY)
            .args(args);
        c
    }
}

/// An SFTP command line for `server`'s repository `repo`, options in the environment.
fn sftp_cmd<'a>(env: &'a Env, server: &'a SshServer) -> impl Fn(&[&str]) -> Command + 'a {
    move |args: &[&str]| {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", server.url("repo"))
            .env("CAIRN_CACHE_DIR", env.path("cache"))
            .env("CAIRN_SFTP_IDENTITY_FILE", server.client_key())
            .env("CAIRN_SFTP_KNOWN_HOSTS", server.known_hosts())
            .args(args);
        c
    }
}

/// On SFTP, prune also removes the temporary files of writes that never finished (a
/// dropped connection leaves them) once they are an hour old, and keeps younger ones,
/// which may belong to a write still running.
#[test]
fn forget_and_prune_on_sftp_and_stale_temporary_files() {
    let server = SshServer::start();
    let env = Env::new();
    let cmd = sftp_cmd(&env, &server);
    let repo = server.files().join("repo");
    let stale = [
        repo.join("data/ab/.tmp-0123abcd"),
        repo.join("index/.tmp-4567ef01"),
    ];
    let fresh = repo.join("data/cd/.tmp-89abcdef");
    let plant = || {
        for p in stale.iter().chain([&fresh]) {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, b"part of a pack").unwrap();
        }
        let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
        for p in &stale {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
    };
    // The temporary files are planted once the repository exists (after the first
    // backup), so that forget_and_prune's prune meets them.
    let planting = |args: &[&str]| {
        if args.first() == Some(&"forget") {
            plant();
        }
        cmd(args)
    };
    forget_and_prune(&env, &planting, &repo.join("data"));
    for p in &stale {
        assert!(!p.exists(), "{} was not removed", p.display());
    }
    assert!(fresh.exists(), "a young temporary file was removed");
}

/// A connection that drops in the middle of a backup is opened again and the backup
/// completes; the run says that it sent requests again, and the repository is whole.
#[test]
fn an_sftp_backup_goes_on_after_its_connection_drops() {
    let server = SshServer::start();
    let env = Env::new();
    let cmd = sftp_cmd(&env, &server);
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..12 {
        fs::write(
            src.join(format!("part{i}")),
            pseudo_random(100 + i, 8 << 20),
        )
        .unwrap();
    }
    run_ok(&cmd, &["init"]);
    let mut backup = cmd(&["backup", src.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Drop the connection once the first pack is stored: the backup is then under way.
    let data = server.files().join("repo/data");
    let packs = || {
        fs::read_dir(&data)
            .unwrap()
            .flat_map(|d| fs::read_dir(d.unwrap().path()).unwrap())
            .filter(|f| {
                !f.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".tmp-")
            })
            .count()
    };
    while packs() == 0 {
        assert!(
            backup.try_wait().unwrap().is_none(),
            "the backup ended before a pack was stored"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(
        backup.try_wait().unwrap().is_none(),
        "the backup ended before its connection could be dropped"
    );
    assert!(server.drop_connections() > 0);
    let out = backup.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("were sent again after transient failures"),
        "{stderr}"
    );
    let target = env.path("restore");
    run_ok(
        &cmd,
        &["restore", "latest", "--target", target.to_str().unwrap()],
    );
    assert_same_tree(&src, &restored(&target, &src));
    run_ok(&cmd, &["check", "--read-data"]);
}

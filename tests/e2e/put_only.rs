//! Put-only keys through the binary: a machine holding one backs up (files and a
//! database-dump stream) and deduplicates, every command that would read, remove or
//! manage keys is refused with one clear line and leaves the repository as it was, and
//! a full key restores what the put-only key wrote byte for byte.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::common::*;

/// Every file of the repository with its length.
fn listing(repo: &Path) -> BTreeMap<std::path::PathBuf, u64> {
    files_under(repo)
        .into_iter()
        .map(|p| {
            let len = fs::metadata(&p).unwrap().len();
            (p, len)
        })
        .collect()
}

fn dir_size(dir: &Path) -> u64 {
    listing(dir).values().sum()
}

#[test]
fn a_put_only_key_backs_up_but_cannot_read_forget_or_prune() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(src.join("www")).unwrap();
    fs::write(src.join("www/big.bin"), pseudo_random(11, 4 << 20)).unwrap();
    fs::write(src.join("www/index.php"), b"<?php echo 'hello';\n").unwrap();
    let first = env.backup(&[&src]);

    let put_pw = env.path("put-password");
    fs::write(&put_pw, "put only, nothing else\n").unwrap();
    let added = env.json(&[
        "key",
        "add",
        "--put-only",
        "--new-password-file",
        put_pw.to_str().unwrap(),
    ]);
    assert_eq!(added["access"], "put-only");
    let put = |args: &[&str]| {
        env.cmd()
            .env("CAIRN_PASSWORD_FILE", &put_pw)
            .args(args)
            .output()
            .unwrap()
    };
    let keys = put(&["key", "list", "--json"]);
    assert!(keys.status.success());
    let keys: serde_json::Value = serde_json::from_slice(&keys.stdout).unwrap();
    let current: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["current"] == true)
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["access"], "put-only");

    // Back up with the put-only key: a changed tree and a stream, twice (the second
    // night's stream shares most of its chunks with the first).
    fs::write(src.join("www/upload.jpg"), pseudo_random(12, 300_000)).unwrap();
    let size_before = dir_size(&env.repo);
    let night = |n: u64| {
        let mut dump = pseudo_random(13, 2 << 20);
        dump.extend_from_slice(&pseudo_random(100 + n, 100_000));
        let out = with_stdin(
            env.cmd().env("CAIRN_PASSWORD_FILE", &put_pw).args([
                "backup",
                "--json",
                "--stdin-name",
                "db/dump.sql",
                src.to_str().unwrap(),
            ]),
            &dump,
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (v["snapshot"].as_str().unwrap().to_string(), dump, v)
    };
    let (_, _, _) = night(1);
    let after_first = dir_size(&env.repo);
    // The put-only key cannot learn what other keys stored: the 4 MiB file the full key
    // backed up is stored again by its first backup.
    assert!(
        after_first - size_before > 4 << 20,
        "the put-only backup stored {} bytes: it deduplicated against another key's data",
        after_first - size_before
    );
    let (second, dump2, v) = night(2);
    // Against what it stored itself it deduplicates (its send log), and with its own
    // last snapshot as parent it does not read unchanged files again.
    let grown = dir_size(&env.repo) - after_first;
    assert!(
        grown < 600_000,
        "the second put-only backup stored {grown} bytes: not deduplicated"
    );
    assert_eq!(v["summary"]["files_unchanged"], 3, "{v}");

    // An application backup (files and its SQLite database) with the put-only key.
    let kimai = env.path("kimai");
    kimai_sqlite_install(&kimai, 50);
    let out = put(&[
        "app",
        "backup",
        "kimai",
        "--path",
        kimai.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let app_snap: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let app_snap = app_snap["snapshot"].as_str().unwrap().to_string();

    // Everything that reads, removes or manages keys is refused, and changes nothing.
    let before = listing(&env.repo);
    let target = env.path("restored-by-put");
    let other = env.path("other-repo");
    let refused: Vec<Vec<&str>> = vec![
        vec!["snapshots"],
        vec!["ls", "latest"],
        vec!["dump", "latest", "/db/dump.sql"],
        vec!["restore", "latest", "--target", target.to_str().unwrap()],
        vec!["forget", "--keep-last", "1"],
        vec!["forget", &first],
        vec!["prune"],
        vec!["check"],
        vec!["check", "--read-data"],
        vec!["diff", &first, "latest"],
        vec!["stats"],
        vec!["status"],
        vec!["find", "*.php"],
        vec!["tag", "--add", "x", &first],
        vec!["repair", "index"],
        vec![
            "key",
            "add",
            "--new-password-file",
            put_pw.to_str().unwrap(),
        ],
        vec!["key", "remove", &first[..4]],
    ];
    for args in &refused {
        let out = put(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("put-only"), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert_eq!(
            listing(&env.repo),
            before,
            "{args:?} changed the repository"
        );
    }
    assert!(!target.exists());
    // Copying out of the repository with the put-only key is refused too.
    let other_s = other.to_str().unwrap();
    succeed(
        env.cmd()
            .env("CAIRN_FROM_PASSWORD_FILE", &env.password_file)
            .args(["-r", other_s, "init", "--copy-params-from"])
            .arg(&env.repo),
    );
    let out = env
        .cmd()
        .env("CAIRN_FROM_PASSWORD_FILE", &put_pw)
        .args(["-r", other_s, "copy", "--from-repo"])
        .arg(&env.repo)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("put-only"), "{err}");
    assert_eq!(listing(&env.repo), before);

    // A full key sees the snapshots, finds the repository sound and restores the put-only
    // snapshot byte for byte, stream included.
    let snaps = env.json(&["snapshots"]);
    assert_eq!(snaps.as_array().unwrap().len(), 4);
    let shown = env.ok(&["app", "show", &app_snap]);
    assert!(shown.contains("kimai"), "{shown}");
    let listed = env.ok(&["ls", &app_snap]);
    assert!(listed.contains("kimai.sqlite"), "{listed}");
    assert!(listed.contains("export.csv"), "{listed}");
    env.ok(&["check", "--read-data"]);
    let restored = env.path("restored");
    env.ok(&["restore", &second, "--target", restored.to_str().unwrap()]);
    assert_same_tree(&src, &crate::common::restored(&restored, &src));
    let dumped = env
        .cmd()
        .args(["dump", &second, "/db/dump.sql"])
        .output()
        .unwrap();
    assert!(dumped.status.success());
    assert_eq!(dumped.stdout, dump2);

    // The full key can forget and prune what the put-only key wrote.
    env.ok(&["forget", "--keep-last", "1", "--prune"]);
    env.ok(&["check", "--read-data"]);
}

/// The storage side of an append-only setup: an SFTP account whose server denies
/// deleting files and directories and changing modes, and whose umask makes every file
/// read-only. (It still allows `posix-rename`, which cairn's writes need and which can
/// replace a file: docs/offsite.md says what that leaves open.) A put-only key backs up through it night after night; a full key
/// cannot forget or prune through it either; on the server (the admin's side) a full key
/// finds the repository sound and restores the put-only snapshots.
#[test]
fn a_put_only_key_on_an_append_only_sftp_account() {
    append_only_sftp_account(false);
}

/// The same through an ordinary account (not root when the tests run as root), as
/// docs/offsite.md recommends: there the modes bind, and the account cannot open a file
/// of the repository for writing again.
#[test]
fn a_put_only_key_on_an_append_only_sftp_account_of_an_ordinary_user() {
    append_only_sftp_account(true);
}

const APPEND_ONLY: &str =
    "-u 0277 -P remove,rmdir,setstat,fsetstat,lsetstat,hardlink,symlink,copy-data";

fn append_only_sftp_account(ordinary: bool) {
    use cairn_testing::servers::SshServer;
    let server = if ordinary {
        SshServer::start_ordinary(APPEND_ONLY)
    } else {
        SshServer::start_with_sftp_options(APPEND_ONLY)
    };
    let env = Env::new();
    let on_server = server.files().join("repo");
    // The admin creates the repository where the server keeps it, and a put-only key.
    let admin = |args: &[&str]| {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", &on_server).args(args);
        c
    };
    succeed(&mut admin(&["init"]));
    let put_pw = env.path("put-password");
    fs::write(&put_pw, "web server's put-only key\n").unwrap();
    succeed(&mut admin(&[
        "key",
        "add",
        "--put-only",
        "--new-password-file",
        put_pw.to_str().unwrap(),
    ]));
    if ordinary {
        // ...and gives it to the account (docs/offsite.md).
        let status = std::process::Command::new("chown")
            .arg("-R")
            .arg(format!("{}:", server.user()))
            .arg(&on_server)
            .status()
            .unwrap();
        assert!(status.success());
    }

    // The web server reaches it only through the restricted account.
    let config = env.path("config.toml");
    fs::write(
        &config,
        format!(
            "[repository]\nurl = {:?}\nsftp-identity-file = {:?}\nsftp-known-hosts = {:?}\n",
            server.url("repo"),
            server.client_key().display().to_string(),
            server.known_hosts().display().to_string(),
        ),
    )
    .unwrap();
    let client = |password: &Path, args: &[&str]| {
        let mut c = env.cmd();
        c.env_remove("CAIRN_REPOSITORY")
            .env("CAIRN_CONFIG", &config)
            .env("CAIRN_PASSWORD_FILE", password)
            .env("CAIRN_CACHE_DIR", env.path("cache"))
            .args(args);
        c
    };
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("db.sqlite"), pseudo_random(21, 1 << 20)).unwrap();
    let mut snaps = Vec::new();
    for night in 0..2u64 {
        fs::write(
            src.join(format!("upload-{night}")),
            pseudo_random(30 + night, 50_000),
        )
        .unwrap();
        let out = succeed(&mut client(
            &put_pw,
            &["backup", "--json", src.to_str().unwrap()],
        ));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        snaps.push(v["snapshot"].as_str().unwrap().to_string());
    }
    // What the server holds is read-only, and nothing was left behind but lock files the
    // account could not remove.
    let before = listing(&on_server);
    for path in before.keys() {
        let mode = fs::metadata(path).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o222, 0, "{} is writable", path.display());
    }

    if ordinary {
        // Through the account itself, not cairn: a file of the repository cannot be
        // opened for writing again (an SFTP `put` over a pack).
        let pack = before
            .keys()
            .find(|p| p.parent().and_then(Path::parent) == Some(&on_server.join("data")))
            .expect("a pack")
            .clone();
        let other = env.path("other-bytes");
        fs::write(&other, b"not what was stored").unwrap();
        let mut sftp = std::process::Command::new("sftp")
            .args(["-q", "-b", "-", "-P", &server.port().to_string()])
            .arg("-i")
            .arg(server.client_key())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                server.known_hosts().display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .arg(format!("{}@127.0.0.1", server.user()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(
            sftp.stdin.take().unwrap(),
            "put {} {}",
            other.display(),
            pack.display()
        )
        .unwrap();
        let out = sftp.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "the account overwrote {}",
            pack.display()
        );
        assert!(err.contains("ermission denied"), "{err}");
        assert_eq!(fs::metadata(&pack).unwrap().len(), before[&pack]);
    }

    // Even a full key cannot remove anything through this account: forget fails, and
    // prune, with data to drop (the admin forgot the first night on the server), fails
    // too, leaving every file where it was.
    let full = env.password_file.clone();
    let out = client(&full, &["forget", snaps[1].as_str()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "forget succeeded on an append-only account"
    );
    succeed(&mut admin(&["forget", snaps[0].as_str()]));
    let before = listing(&on_server);
    let out = client(&full, &["prune", "--max-unused", "0"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "prune succeeded on an append-only account"
    );
    assert!(err.contains("ermission denied"), "{err}");
    let after = listing(&on_server);
    for (path, len) in &before {
        assert_eq!(
            after.get(path),
            Some(len),
            "{} was removed or changed",
            path.display()
        );
    }

    // The admin, on the server, with a full key: the second night, a sound repository,
    // a byte-exact restore.
    let list = succeed(&mut admin(&["snapshots", "--json"]));
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    succeed(&mut admin(&["check", "--read-data"]));
    let target = env.path("restored");
    succeed(&mut admin(&[
        "restore",
        &snaps[1],
        "--target",
        target.to_str().unwrap(),
    ]));
    assert_same_tree(&src, &restored(&target, &src));
}

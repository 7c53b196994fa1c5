//! Disaster recovery: an application backed up to a local repository and copied to an
//! S3-compatible server and to an SFTP server; then the machine is lost (repository,
//! cache, catalog and the installation gone). On a new machine, with only the offsite
//! repository's address and the password, the application comes back byte-exact.

use crate::common::*;
use cairn_testing::servers::{S3Server, SshServer};
use std::fs;
use std::path::Path;
use std::process::Command;

/// The rows of the Kimai users table, in order.
fn users(db: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c = sqlite3.connect('{}'); \
             print(list(c.execute('select id, name from kimai2_users order by id')))",
            db.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn an_application_comes_back_from_an_offsite_copy_with_the_password_alone() {
    let s3 = S3Server::start();
    s3.create_bucket("offsite");
    let ssh = SshServer::start();
    let env = Env::new();
    let s3_env = |c: &mut Command| {
        c.env("AWS_ENDPOINT_URL", s3.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", S3Server::ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", S3Server::SECRET_ACCESS_KEY)
            .env("CAIRN_SFTP_IDENTITY_FILE", ssh.client_key())
            .env("CAIRN_SFTP_KNOWN_HOSTS", ssh.known_hosts());
    };
    let run = |repo: &str, cache: &Path, args: &[&str]| {
        let mut c = env.cmd();
        s3_env(&mut c);
        c.env("CAIRN_REPOSITORY", repo)
            .env("CAIRN_CACHE_DIR", cache)
            .env("CAIRN_FROM_REPOSITORY", &env.repo)
            .env("CAIRN_FROM_PASSWORD_FILE", &env.password_file)
            .args(args);
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "cairn {args:?} on {repo}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let local = env.repo.to_str().unwrap().to_string();
    let cache = env.path("cache");

    // The machine: Kimai on SQLite, backed up two nights into the local repository.
    let install = env.path("srv/kimai");
    let db = kimai_sqlite_install(&install, 500);
    fs::write(
        install.join("var/plugins/plugin.php"),
        pseudo_random(3, 500_000),
    )
    .unwrap();
    run(&local, &cache, &["init"]);
    let app = [
        "app",
        "backup",
        "kimai",
        "--path",
        install.to_str().unwrap(),
    ];
    run(&local, &cache, &app);
    fs::write(install.join("var/data/export.csv"), "a;b\n3;4\n").unwrap();
    run(&local, &cache, &app);
    let want_files = files_under(&install);
    let want_users = users(&db);

    // Offsite: S3 made like the local repository, SFTP made on its own (cut again).
    let s3_repo = "s3://offsite/web1";
    let sftp_repo = ssh.url("cairn/web1");
    run(s3_repo, &cache, &["init", "--copy-params-from", &local]);
    run(s3_repo, &cache, &["copy"]);
    run(&sftp_repo, &cache, &["init"]);
    run(&sftp_repo, &cache, &["copy"]);

    // The machine is lost.
    fs::remove_dir_all(&env.repo).unwrap();
    fs::remove_dir_all(&cache).unwrap();
    fs::remove_dir_all(env.path("srv")).unwrap();

    // A new machine: no cache, no catalog, no local repository; the address and the
    // password.
    for (repo, fresh) in [
        (s3_repo.to_string(), "new-s3"),
        (sftp_repo.clone(), "new-sftp"),
    ] {
        let cache = env.path(&format!("{fresh}-cache"));
        let snaps: serde_json::Value =
            serde_json::from_str(&run(&repo, &cache, &["snapshots", "--json"])).unwrap();
        assert_eq!(snaps.as_array().unwrap().len(), 2, "{repo}: {snaps}");
        run(
            &repo,
            &cache,
            &[
                "app",
                "restore",
                "kimai",
                "--target",
                install.to_str().unwrap(),
            ],
        );
        assert_eq!(files_under(&install), want_files, "{repo}");
        assert_eq!(users(&db), want_users, "{repo}");
        assert_eq!(
            fs::read_to_string(install.join("var/data/export.csv")).unwrap(),
            "a;b\n3;4\n"
        );
        assert_eq!(
            fs::read(install.join("var/plugins/plugin.php")).unwrap(),
            pseudo_random(3, 500_000)
        );
        run(&repo, &cache, &["check", "--read-data"]);
        fs::remove_dir_all(env.path("srv")).unwrap();
    }
}

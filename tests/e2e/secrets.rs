//! Secrets hygiene through the binary: the password never appears in what cairn prints
//! (even when it fails), neither the password nor file names nor file contents appear
//! in the repository's bytes, files and directories cairn creates are private to their
//! owner, and a password file or command loses exactly one trailing newline. No
//! program cairn starts (a `--stdin-from-command` command, a hook, a dump tool, a
//! password command) sees cairn's password variables, and a database URL holding a
//! password is refused on the command line.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::db::TempPg;
use crate::common::{cairn_with_config, files_under, kimai_sqlite_install, succeed, Env, PASSWORD};

/// A password with spaces at both ends: they are part of it.
const SECRET: &str = "  Pw-Xq7Zk9-hunter2  ";
const FILE_NAME: &str = "Confidential-Merger-Plan-Q3.txt";
const CONTENT: &str = "TOP-SECRET-CONTENT-MARKER acquisition of ExampleCorp at 42 per share\n";

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn env_with_secret() -> Env {
    let env = Env::new();
    // One newline at the end of the file is not part of the password.
    fs::write(&env.password_file, format!("{SECRET}\n")).unwrap();
    env
}

#[test]
fn the_password_file_names_and_contents_never_leak() {
    let env = env_with_secret();
    let src = env.path("src");
    fs::create_dir_all(src.join("board")).unwrap();
    fs::write(src.join("board").join(FILE_NAME), CONTENT.repeat(200)).unwrap();
    let second = env.path("second-password");
    fs::write(&second, "another password\n").unwrap();
    let wrong = env.path("wrong-password");
    fs::write(&wrong, format!("{}\n", SECRET.trim())).unwrap();

    let mut printed = Vec::new();
    let mut run = |args: &[&str], password_file: &Path, expect_ok: bool| {
        let out = env
            .cmd()
            .env("CAIRN_PASSWORD_FILE", password_file)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            expect_ok,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.extend_from_slice(&out.stdout);
        printed.extend_from_slice(&out.stderr);
    };
    let pw = env.password_file.clone();
    let target = env.path("restored");
    let target = target.to_str().unwrap();
    let src_s = src.to_str().unwrap();
    run(&["init"], &pw, true);
    run(&["backup", "--verbose", src_s], &pw, true);
    run(&["backup", "--json", src_s], &pw, true);
    run(&["snapshots"], &pw, true);
    run(&["ls", "latest"], &pw, true);
    run(&["stats"], &pw, true);
    run(&["check", "--read-data"], &pw, true);
    run(&["restore", "latest", "--target", target], &pw, true);
    run(
        &[
            "key",
            "add",
            "--new-password-file",
            second.to_str().unwrap(),
        ],
        &pw,
        true,
    );
    run(&["key", "list"], &pw, true);
    // Failures: a wrong password (the secret without its spaces), a wrong command.
    run(&["snapshots"], &wrong, false);
    run(&["restore", "nonexistent", "--target", target], &pw, false);
    let printed_text = String::from_utf8_lossy(&printed);
    assert!(
        !contains(&printed, SECRET.trim()),
        "the password was printed:\n{printed_text}"
    );
    // The commands did print the file name (ls): the scan below is not vacuous.
    assert!(contains(&printed, FILE_NAME));

    // The repository holds none of them, in any file.
    let files = files_under(&env.repo);
    assert!(files.len() > 5);
    for f in &files {
        let bytes = fs::read(f).unwrap();
        for needle in [
            SECRET.trim(),
            FILE_NAME,
            "TOP-SECRET-CONTENT-MARKER",
            "board",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{} holds {needle:?} in plain text",
                f.display()
            );
        }
    }

    // Everything cairn created (repository, catalogs, caches) is its owner's alone.
    let home = env.dir.path();
    let mut created = vec![env.repo.clone()];
    for dir in [".cache", ".local", ".config"] {
        if home.join(dir).exists() {
            created.push(home.join(dir));
        }
    }
    let mut checked = 0;
    for root in &created {
        for f in files_under(root).into_iter().chain(dirs_under(root)) {
            let mode = fs::symlink_metadata(&f).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{} is mode {:o}",
                f.display(),
                mode & 0o777
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} files and directories checked");
}

/// Every directory under `root`, `root` included.
fn dirs_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(dirs_under(&p));
            }
        }
    }
    out
}

/// Exactly one trailing newline is removed from a password file or command: spaces
/// stay, and a second newline is part of the password.
#[test]
fn password_sources_lose_exactly_one_newline() {
    let env = env_with_secret();
    env.init();
    let status = |var: &str, value: &str| {
        env.cmd()
            .env_remove("CAIRN_PASSWORD_FILE")
            .env(var, value)
            .args(["snapshots"])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(status("CAIRN_PASSWORD", SECRET), Some(0));
    assert_eq!(status("CAIRN_PASSWORD", SECRET.trim()), Some(12));
    let printf = |s: &str| format!("printf '%s' '{s}'");
    assert_eq!(status("CAIRN_PASSWORD_COMMAND", &printf(SECRET)), Some(0));
    assert_eq!(
        status("CAIRN_PASSWORD_COMMAND", &format!("printf '{SECRET}\\n'")),
        Some(0)
    );
    assert_eq!(
        status(
            "CAIRN_PASSWORD_COMMAND",
            &format!("printf '{SECRET}\\r\\n'")
        ),
        Some(0)
    );
    assert_eq!(
        status(
            "CAIRN_PASSWORD_COMMAND",
            &format!("printf '{SECRET}\\n\\n'")
        ),
        Some(12)
    );
    let file = env.path("two-newlines");
    fs::write(&file, format!("{SECRET}\n\n")).unwrap();
    assert_eq!(
        status("CAIRN_PASSWORD_FILE", file.to_str().unwrap()),
        Some(12)
    );
}

// ---------------------------------------------------------------------------------------
// What the programs cairn starts can see

/// A variable that is not cairn's secret: it must reach the children, which shows that
/// the environment they wrote down is theirs (the checks below are not vacuous).
const UNRELATED: (&str, &str) = ("CAIRN_TEST_UNRELATED", "reaches-the-children");

/// cairn's password variables, each with a value of its own, all set at once (the
/// repository's own password is given separately: it opens the repository).
const OTHER_SECRETS: &[(&str, &str)] = &[
    ("CAIRN_FROM_PASSWORD", "from-secret-9f2c"),
    ("CAIRN_FROM_PASSWORD_FILE", "/from/password-file-9f2c"),
    ("CAIRN_FROM_PASSWORD_COMMAND", "echo from-command-9f2c"),
    ("CAIRN_EXPORT_PASSWORD", "export-secret-9f2c"),
    ("CAIRN_EXPORT_PASSWORD_FILE", "/export/password-file-9f2c"),
];

/// `cmd` with [`OTHER_SECRETS`] and [`UNRELATED`] in its environment.
fn with_other_secrets(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for (k, v) in OTHER_SECRETS {
        cmd.env(k, v);
    }
    cmd.env(UNRELATED.0, UNRELATED.1)
}

/// Asserts that an environment (as `env` prints it) holds no password variable of
/// cairn and no value of one, and does hold [`UNRELATED`].
fn assert_no_cairn_secret(what: &str, environment: &str, password_file: &Path) {
    assert!(
        environment.contains(&format!("{}={}", UNRELATED.0, UNRELATED.1)),
        "{what}: the unrelated variable is missing, so this is not the child's \
         environment:\n{environment}"
    );
    for line in environment.lines() {
        let name = line.split('=').next().unwrap_or_default();
        assert!(
            !(name.starts_with("CAIRN_") && name.contains("PASSWORD")),
            "{what} saw {line:?}"
        );
    }
    let file = password_file.to_str().unwrap();
    let mut needles = vec![PASSWORD, file];
    needles.extend(OTHER_SECRETS.iter().map(|(_, v)| *v));
    for needle in needles {
        assert!(
            !environment.contains(needle),
            "{what} saw {needle:?}:\n{environment}"
        );
    }
}

/// Regression: `cairn backup --stdin-from-command env.txt -- env` stored the repository
/// password (CAIRN_PASSWORD) in the snapshot.
#[test]
fn a_stored_command_output_never_holds_cairns_passwords() {
    let env = Env::new();
    env.init();
    // The password in CAIRN_PASSWORD itself, then in CAIRN_PASSWORD_FILE (with a
    // CAIRN_PASSWORD_COMMAND beside it, unused since the file comes first).
    succeed(
        with_other_secrets(
            env.cmd()
                .env_remove("CAIRN_PASSWORD_FILE")
                .env("CAIRN_PASSWORD", PASSWORD),
        )
        .args(["backup", "--stdin-from-command", "env.txt", "--", "env"]),
    );
    // Read back with `restore`.
    let target = env.path("restored");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    let restored = fs::read_to_string(target.join("env.txt")).unwrap();
    assert_no_cairn_secret(
        "the stored command (restore)",
        &restored,
        &env.password_file,
    );

    succeed(
        with_other_secrets(
            env.cmd()
                .env("CAIRN_PASSWORD_COMMAND", "echo command-secret-9f2c"),
        )
        .args(["backup", "--stdin-from-command", "env-2.txt", "--", "env"]),
    );

    // Read back with `dump`.
    let dumped = env.ok(&["dump", "latest", "/env-2.txt"]);
    assert_no_cairn_secret("the stored command (dump)", &dumped, &env.password_file);
    assert!(!dumped.contains("command-secret-9f2c"), "{dumped}");
    assert!(
        dumped.contains("CAIRN_REPOSITORY="),
        "other settings still reach it"
    );
}

/// A password command runs without cairn's other password variables (nor its own).
#[test]
fn a_password_command_sees_no_other_password_variable() {
    let env = Env::new();
    env.init();
    let seen = env.path("password-command-env.txt");
    let command = format!(
        "env > '{}'; cat '{}'",
        seen.display(),
        env.password_file.display()
    );
    succeed(
        with_other_secrets(
            env.cmd()
                .env_remove("CAIRN_PASSWORD_FILE")
                .env("CAIRN_PASSWORD_COMMAND", &command),
        )
        .args(["snapshots"]),
    );
    let seen = fs::read_to_string(&seen).unwrap();
    assert_no_cairn_secret("the password command", &seen, &env.password_file);
}

/// The hooks of `cairn run` (a source's before and after commands) and of `cairn app
/// backup` run without cairn's password variables; the steps `cairn run` starts (cairn
/// itself) still get them, or they could not open the repository.
#[test]
fn hooks_never_see_cairns_passwords() {
    let env = Env::new();
    env.init();
    fs::create_dir_all(env.path("data")).unwrap();
    fs::write(env.path("data/a.txt"), "a\n").unwrap();
    let (before, after) = (env.path("before-env.txt"), env.path("after-env.txt"));
    let config = env.path("config.toml");
    // No password in the config file: it comes from the environment, as from a
    // systemd unit's EnvironmentFile.
    fs::write(
        &config,
        format!(
            "[repository]\nurl = \"{}\"\n\n[[source]]\nname = \"data\"\npaths = [\"{}\"]\n\
             before = [\"env > '{}'\"]\nafter = [\"env > '{}'\"]\n",
            env.repo.display(),
            env.path("data").display(),
            before.display(),
            after.display()
        ),
    )
    .unwrap();
    let out = with_other_secrets(
        cairn_with_config(env.dir.path(), &config)
            .env("CAIRN_PASSWORD_FILE", &env.password_file)
            .env("CAIRN_PASSWORD", PASSWORD),
    )
    .arg("run")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("backup data (primary): ok"), "{stderr}");
    for (what, file) in [("the before hook", &before), ("the after hook", &after)] {
        let seen = fs::read_to_string(file).unwrap();
        assert_no_cairn_secret(what, &seen, &env.password_file);
    }

    // An application's hooks.
    let kimai = env.path("kimai");
    kimai_sqlite_install(&kimai, 2);
    let app_hook = env.path("app-hook-env.txt");
    let hook = format!("env > '{}'", app_hook.display());
    succeed(
        with_other_secrets(&mut env.cmd())
            .args(["app", "backup", "kimai", "--path"])
            .arg(&kimai)
            .args(["--before", &hook]),
    );
    let seen = fs::read_to_string(&app_hook).unwrap();
    assert_no_cairn_secret("an app's before hook", &seen, &env.password_file);
}

/// pg_dump and psql, started for `--postgres` (through a `--db-wrapper` that writes its
/// environment down and runs them), see no password variable of cairn; the dump is made.
#[test]
fn dump_tools_never_see_cairns_passwords() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("secrets");
    crate::common::db::psql(
        &db.0,
        "CREATE TABLE t (x text); INSERT INTO t VALUES ('row');",
    );
    let log = env.path("tool-env.txt");
    let wrapper = env.path("wrapper.sh");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n{{ echo \"--- $1\"; env; }} >> '{}'\nexec \"$@\"\n",
            log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let url = format!("postgresql://postgres@127.0.0.1:5432/{}", db.0);
    succeed(
        with_other_secrets(
            env.cmd()
                .env_remove("CAIRN_PASSWORD_FILE")
                .env("CAIRN_PASSWORD", PASSWORD),
        )
        .args(["backup", "--postgres", &url, "--db-wrapper"])
        .arg(&wrapper),
    );
    let seen = fs::read_to_string(&log).unwrap();
    assert!(seen.contains("--- pg_dump\n"), "{seen}");
    assert!(seen.contains("--- psql\n"), "{seen}");
    for call in seen.split("--- ").filter(|c| !c.is_empty()) {
        let tool = call.lines().next().unwrap_or_default();
        assert_no_cairn_secret(tool, call, &env.password_file);
    }
    let dump = env
        .cmd()
        .args(["dump", "latest", &format!("/db/postgres/{}.dump", db.0)])
        .output()
        .unwrap()
        .stdout;
    assert!(dump.starts_with(b"PGDMP"));
}

/// Every file of the repository with its length and contents.
fn repository_state(env: &Env) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = files_under(&env.repo)
        .into_iter()
        .map(|f| {
            let bytes = fs::read(&f).unwrap();
            (f, bytes)
        })
        .collect();
    files.sort();
    files
}

/// A database URL holding a password is refused on the command line as in the config
/// file (`ps` shows every process's arguments to every local user): a clear message
/// that says how to give the password, no password echoed, nothing written.
#[test]
fn a_database_url_with_a_password_is_refused_on_the_command_line() {
    let env = Env::new();
    env.init();
    let before = repository_state(&env);
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "backup",
                "--postgres",
                "postgresql://u:secret-9f2c@127.0.0.1/db",
            ],
            "--postgres holds a password, which would show in the process list: set \
             PGPASSWORD or use ~/.pgpass",
        ),
        (
            &[
                "backup",
                "--mariadb",
                "mariadb://root:secret-9f2c@127.0.0.1:3306/db",
            ],
            "--mariadb holds a password, which would show in the process list: set \
             MYSQL_PWD or use ~/.my.cnf",
        ),
        (
            &[
                "app",
                "restore",
                "kimai",
                "--database",
                "mysql://root:secret-9f2c@127.0.0.1/kimai",
            ],
            "--database holds a password, which would show in the process list: set \
             MYSQL_PWD or use ~/.my.cnf",
        ),
    ];
    for (args, said) in cases {
        let out = env.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        assert!(stderr.contains("in the config file:"), "{stderr}");
        assert!(!stderr.contains("secret-9f2c"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
    assert_eq!(repository_state(&env), before, "the repository changed");
    assert_eq!(env.json(&["snapshots"]).as_array().unwrap().len(), 0);
}

/// Every program cairn starts is built by `cairn_core::command`, which leaves cairn's
/// password variables out: a `Command::new` anywhere else in the crates' code (tests
/// and the testing crate aside) would start one that inherits them. (A tokio command
/// made `from` one that `cairn_core::command` built is the one exception.)
#[test]
fn every_program_is_started_without_cairns_secrets() {
    fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                rust_files(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates");
    let mut files = Vec::new();
    for c in fs::read_dir(&crates).unwrap() {
        let c = c.unwrap().path();
        if c.file_name().is_some_and(|n| n != "testing") && c.join("src").is_dir() {
            rust_files(&c.join("src"), &mut files);
        }
    }
    assert!(files.len() > 50, "{} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        if f.ends_with("crates/core/src/platform.rs") {
            continue;
        }
        let text = fs::read_to_string(f).unwrap();
        // The code before the tests (a file's `#[cfg(test)]` module comes last).
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in code.lines().enumerate() {
            let tokio_own =
                line.contains("tokio::process") && !line.contains("tokio::process::Command::from(");
            if line.contains("Command::new(") || tokio_own {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "programs started some other way:\n{}",
        found.join("\n")
    );
}

/// A wrapper named `program` in a new directory of `env`, which writes its environment
/// to a log and runs the real one found on the PATH: returns the PATH, the wrapper's
/// directory (to put first on it) and the log.
fn env_logging_wrapper(env: &Env, program: &str) -> (String, PathBuf, PathBuf) {
    let path = std::env::var("PATH").unwrap_or_default();
    let real = path
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} on the PATH"));
    let bin = env.path("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = env.path(&format!("{program}-env.txt"));
    let wrapper = bin.join(program);
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nenv >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    (path, bin, log)
}

/// `rclone`, which cairn starts for an `rclone:` repository, does not get cairn's
/// password variables: a wrapper named `rclone` first on the PATH writes its
/// environment down and runs the real one.
#[test]
fn rclone_started_for_a_repository_never_sees_cairns_passwords() {
    let env = Env::new();
    let (path, bin, log) = env_logging_wrapper(&env, "rclone");
    let location = format!("rclone::local:{}", env.path("offsite/repo").display());
    let run = |args: &[&str]| {
        let mut c = env.cmd();
        c.env("PATH", format!("{}:{path}", bin.display()))
            .env("CAIRN_REPOSITORY", &location)
            .env_remove("CAIRN_PASSWORD_FILE")
            .env("CAIRN_PASSWORD", PASSWORD);
        with_other_secrets(&mut c).args(args);
        succeed(&mut c)
    };
    run(&["init"]);
    run(&["snapshots"]);
    let seen = fs::read_to_string(&log).expect("the wrapper ran");
    assert_no_cairn_secret("rclone", &seen, &env.password_file);
}

/// `ssh`, which the SFTP backend's library starts (cairn does not build its command
/// line), does not inherit cairn's password variables either: the binary moves them out
/// of its own environment before anything starts. A wrapper named `ssh` first on the
/// PATH writes its environment down and runs the real one.
#[test]
fn ssh_started_for_sftp_never_sees_cairns_passwords() {
    let server = cairn_testing::servers::SshServer::start();
    let env = Env::new();
    let (path, bin, log) = env_logging_wrapper(&env, "ssh");
    let run = |args: &[&str]| {
        let mut c = env.cmd();
        c.env("PATH", format!("{}:{path}", bin.display()))
            .env("CAIRN_REPOSITORY", server.url("repo"))
            .env("CAIRN_SFTP_IDENTITY_FILE", server.client_key())
            .env("CAIRN_SFTP_KNOWN_HOSTS", server.known_hosts())
            .env_remove("CAIRN_PASSWORD_FILE")
            .env("CAIRN_PASSWORD", PASSWORD);
        with_other_secrets(&mut c).args(args);
        succeed(&mut c)
    };
    run(&["init"]);
    run(&["snapshots"]);
    let seen = fs::read_to_string(&log).expect("the wrapper ran");
    assert_no_cairn_secret("ssh", &seen, &env.password_file);
}

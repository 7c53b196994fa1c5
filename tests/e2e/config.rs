//! The config file through the binary: a repository and an application configured once,
//! then used with no flags; `cairn config check`; flags and the environment over it.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

/// A `cairn` command with neither repository nor password in the environment: they
/// come from the config file (or the flags given).
fn bare(env: &Env) -> Command {
    let mut c = env.cmd();
    c.env_remove("CAIRN_REPOSITORY")
        .env_remove("CAIRN_PASSWORD_FILE");
    c
}

fn run(env: &Env, args: &[&str]) -> Output {
    bare(env).args(args).output().unwrap()
}

fn ok(env: &Env, args: &[&str]) -> String {
    let out = run(env, args);
    assert!(
        out.status.success(),
        "cairn {args:?} failed with {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    let s = ok(env, &a);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad JSON from {args:?}: {e}\n{s}"))
}

/// The usual place of the user's config file: `~/.config/cairn/config.toml` (`HOME` is
/// the test's directory and `XDG_CONFIG_HOME` is not set).
fn write_user_config(env: &Env, text: &str) -> std::path::PathBuf {
    let path = env.path(".config/cairn/config.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

/// `[repository]` naming the test's repository and password file.
fn repository_table(env: &Env) -> String {
    format!(
        "[repository]\nurl = {:?}\npassword-file = {:?}\n",
        env.repo.display().to_string(),
        env.password_file.display().to_string()
    )
}

fn tags(snap: &serde_json::Value) -> Vec<String> {
    snap["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn quoted(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

#[test]
fn a_configured_kimai_backs_up_with_no_flags_and_runs_its_hooks() {
    let env = Env::new();
    let install = env.path("kimai");
    kimai_sqlite_install(&install, 120);
    let stopped = env.path("stopped");
    let started = env.path("started");
    write_user_config(
        &env,
        &format!(
            "{}\n[[app]]\nname = \"kimai\"\npath = {}\nbefore = [\"touch {}\"]\n\
             after = [\"touch {}\"]\ntags = [\"nightly\"]\n",
            repository_table(&env),
            quoted(&install),
            stopped.display(),
            started.display()
        ),
    );

    ok(&env, &["init"]);
    assert!(
        env.repo.join("config").is_file(),
        "init did not use the url"
    );
    let done = json(&env, &["app", "backup", "kimai"]);
    let id = done["snapshot"].as_str().unwrap().to_string();
    assert!(stopped.exists(), "the configured before hook did not run");
    assert!(started.exists(), "the configured after hook did not run");

    let snaps = json(&env, &["snapshots"]);
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(snaps[0]["id"].as_str().unwrap(), id);
    assert_eq!(snaps[0]["app"], "kimai");
    assert_eq!(tags(&snaps[0]), ["kimai", "nightly"]);
    let m = json(&env, &["app", "show", "latest"]);
    assert_eq!(m["app"], "kimai");
    assert_eq!(
        m["install"].as_str().unwrap(),
        install.canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(m["databases"][0]["engine"], "sqlite");
    assert_eq!(m["databases"][0]["tables"][0]["rows"], 120);
    let ls = ok(&env, &["ls", &id]);
    assert!(ls.contains("/db/sqlite/kimai.sqlite"), "{ls}");
    assert!(ls.contains("var/data/export.csv"), "{ls}");

    // The configured installation is listed as such.
    let list = json(&env, &["app", "list"]);
    let first = &list["installs"][0];
    assert_eq!(first["name"], "kimai", "{list}");
    assert_eq!(first["configured"], true, "{list}");
    assert_eq!(first["databases"][0]["reachable"], true, "{list}");
    let text = ok(&env, &["app", "list"]);
    assert!(
        text.contains(&format!(
            "kimai (configured, kimai) at {}",
            install.display()
        )),
        "{text}"
    );
    // `app snapshots` and `app verify` compare with the configured installation.
    let listed = json(&env, &["app", "snapshots", "kimai"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let v = json(&env, &["app", "verify", "kimai"]);
    assert_eq!(v["ok"], true, "{v}");

    // A flag replaces the configured value of its key: --tag replaces the tags, and
    // --before and --after the hooks.
    std::fs::remove_file(&stopped).unwrap();
    std::fs::remove_file(&started).unwrap();
    let other = env.path("other-hook");
    json(
        &env,
        &[
            "app",
            "backup",
            "kimai",
            "--tag",
            "manual",
            "--before",
            &format!("touch {}", other.display()),
        ],
    );
    let snaps = json(&env, &["snapshots"]);
    let newest = snaps.as_array().unwrap().last().unwrap().clone();
    assert_eq!(tags(&newest), ["kimai", "manual"]);
    assert!(other.exists(), "the --before hook did not run");
    assert!(
        !stopped.exists(),
        "the configured before hook ran despite --before"
    );
    assert!(started.exists(), "the configured after hook did not run");
}

#[test]
fn an_instance_with_its_own_name_and_unknown_names() {
    let env = Env::new();
    let install = env.path("timesheets-install");
    kimai_sqlite_install(&install, 3);
    let config = write_user_config(
        &env,
        &format!(
            "{}\n[[app]]\nname = \"timesheets\"\nkind = \"kimai\"\npath = {}\n",
            repository_table(&env),
            quoted(&install)
        ),
    );
    ok(&env, &["init"]);
    json(&env, &["app", "backup", "timesheets"]);
    let snaps = json(&env, &["snapshots"]);
    assert_eq!(snaps[0]["app"], "kimai");
    assert_eq!(tags(&snaps[0]), ["kimai", "timesheets"]);
    let listed = json(&env, &["app", "snapshots", "timesheets"]);
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // Neither configured nor a front-end: the configured names are listed.
    let out = run(&env, &["app", "backup", "timesheet"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "unknown application \"timesheet\": it is neither a configured installation \
             (configured in {}: timesheets)",
            config.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("idoit, immich, kestra, kimai"), "{stderr}");
    // A front-end that is not configured still needs --path.
    let out = run(&env, &["app", "backup", "kimai"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--path DIR"), "{stderr}");
    assert_eq!(json(&env, &["snapshots"]).as_array().unwrap().len(), 1);
}

#[test]
fn config_check_reports_a_misspelt_key_with_its_line() {
    let env = Env::new();
    let good = env.path("good.toml");
    let text = format!(
        "# cairn\n{}\n[[app]]\nname = \"kimai\"\npath = \"/var/www/kimai\"\n\
         [app.database]\npassword-file = {}\n\n[retention]\nkeep-daily = 7\n",
        repository_table(&env),
        quoted(&env.password_file)
    );
    std::fs::write(&good, &text).unwrap();
    let g = good.to_str().unwrap();
    let out = ok(&env, &["config", "check", "--config", g]);
    assert!(out.contains(&format!("config file {g}: ok")), "{out}");
    assert!(
        out.contains(&format!("repository  {}", env.repo.display())),
        "{out}"
    );
    assert!(
        out.contains("app         kimai (kimai) at /var/www/kimai"),
        "{out}"
    );
    assert!(out.contains("retention   keep-daily 7"), "{out}");
    let v = json(&env, &["config", "check", "--config", g]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["apps"][0]["kind"], "kimai");

    // Line 10 (`password-file` under [app.database]) misspelt.
    let bad = env.path("bad.toml");
    let typo = text.replace("\npassword-file = \"/", "\npasword-file = \"/");
    assert_eq!(typo.matches("pasword-file").count(), 2, "{typo}");
    let typo = typo.replacen("pasword-file", "password-file", 1);
    assert_eq!(
        typo.lines().position(|l| l.starts_with("pasword-file")),
        Some(9),
        "{typo}"
    );
    std::fs::write(&bad, &typo).unwrap();
    let b = bad.to_str().unwrap();
    let out = run(&env, &["config", "check", "--config", b]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{b}:10:1: unknown field `pasword-file`, expected one of `url`, `password-file`"
        )),
        "{stderr}"
    );
    let out = run(&env, &["config", "check", "--config", b, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(
        (
            v["errors"][0]["line"].clone(),
            v["errors"][0]["column"].clone()
        ),
        (10.into(), 1.into())
    );

    // Every other command refuses the file too: an unknown key is never ignored.
    let out = bare(&env)
        .env("CAIRN_CONFIG", &bad)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{b}:10:1: unknown field")),
        "{stderr}"
    );

    // Named explicitly but missing.
    let out = run(
        &env,
        &["config", "check", "--config", "/nonexistent/cairn.toml"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("config file /nonexistent/cairn.toml (named by --config or CAIRN_CONFIG) does not exist"),
        "{stderr}"
    );
    // None at all is fine.
    let out = ok(&env, &["config", "check"]);
    assert!(out.starts_with("no config file"), "{out}");
}

#[test]
fn the_repo_flag_and_the_environment_override_the_configured_repository() {
    let env = Env::new();
    write_user_config(&env, &repository_table(&env));
    let data = env.path("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("f.txt"), "hello").unwrap();
    let d = data.to_str().unwrap();
    ok(&env, &["init"]);
    json(&env, &["backup", d]);

    // -r names another repository; the configured password still applies.
    let other = env.path("other-repo");
    let o = other.to_str().unwrap();
    ok(&env, &["-r", o, "init"]);
    assert!(other.join("config").is_file());
    json(&env, &["-r", o, "backup", d]);
    json(&env, &["-r", o, "backup", d]);
    assert_eq!(
        json(&env, &["-r", o, "snapshots"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(json(&env, &["snapshots"]).as_array().unwrap().len(), 1);
    // CAIRN_REPOSITORY ranks above the config file too.
    let out = bare(&env)
        .env("CAIRN_REPOSITORY", &other)
        .args(["snapshots", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2);
    // And a password flag above the configured password file.
    let wrong = env.path("wrong-password");
    std::fs::write(&wrong, "not it\n").unwrap();
    let out = run(
        &env,
        &["--password-file", wrong.to_str().unwrap(), "snapshots"],
    );
    assert_eq!(out.status.code(), Some(12), "wrong password expected");
}

#[test]
fn configured_database_credentials_reach_the_dump_tools() {
    let env = Env::new();
    let db = TempMaria::new("cfg_kimai");
    mariadb(
        Some(&db.0),
        "CREATE TABLE kimai2_users (id INT PRIMARY KEY); INSERT INTO kimai2_users VALUES (1), (2);",
    );
    // The application's own configuration names a user that cannot log in.
    let install = env.path("kimai");
    std::fs::create_dir_all(install.join("var/data")).unwrap();
    std::fs::write(
        install.join(".env"),
        format!("DATABASE_URL=mysql://nobody:nope@127.0.0.1:3306/{}\n", db.0),
    )
    .unwrap();
    let wrong = env.path("db-password");
    std::fs::write(&wrong, "certainly-wrong\n").unwrap();
    let config = |database: &str| {
        write_user_config(
            &env,
            &format!(
                "{}\n[[app]]\nname = \"kimai\"\npath = {}\n[app.database]\n{database}\n",
                repository_table(&env),
                quoted(&install)
            ),
        )
    };
    // The configured URL (server and user, no database name) replaces the .env's.
    config("url = \"mariadb://root@127.0.0.1:3306\"");
    ok(&env, &["init"]);
    json(&env, &["app", "backup", "kimai"]);
    let m = json(&env, &["app", "show", "latest"]);
    assert_eq!(m["databases"][0]["engine"], "mariadb");
    assert_eq!(m["databases"][0]["database"], db.0.as_str());
    assert_eq!(m["databases"][0]["tables"][0]["rows"], 2, "{m}");
    // Verify and restore reach the database the same way (the .env's user cannot).
    let v = json(&env, &["app", "verify", "kimai"]);
    assert_eq!(v["ok"], true, "{v}");
    mariadb(Some(&db.0), "DELETE FROM kimai2_users WHERE id = 2;");
    json(&env, &["app", "restore", "kimai", "--replace-existing"]);
    assert_eq!(
        mariadb(Some(&db.0), "SELECT COUNT(*) FROM kimai2_users").trim(),
        "2"
    );

    // A configured password file reaches the tools (root has no password: refused).
    let before = json(&env, &["snapshots"]).as_array().unwrap().len();
    config(&format!(
        "url = \"mariadb://root@127.0.0.1:3306\"\npassword-file = {}",
        quoted(&wrong)
    ));
    let out = run(&env, &["app", "backup", "kimai"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Access denied"), "{stderr}");
    assert!(stderr.contains("using password: YES"), "{stderr}");
    assert!(!stderr.contains("certainly-wrong"), "{stderr}");
    assert_eq!(json(&env, &["snapshots"]).as_array().unwrap().len(), before);
}

//! `cairn schedule`: the systemd units it writes pass `systemd-analyze verify`, the cron
//! entry says the schedule, and list and remove find only what cairn wrote.

use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn cairn(env: &Env, config: &Path, args: &[&str]) -> Output {
    cairn_with_config(env.dir.path(), config)
        .args(args)
        .output()
        .unwrap()
}

fn write_config(env: &Env, jobs: &str) -> std::path::PathBuf {
    let path = env.path("config.toml");
    fs::write(
        &path,
        format!(
            "[repository]\nurl = \"{}\"\npassword-file = \"{}\"\n\n[[source]]\nname = \"etc\"\n\
             paths = [\"/etc\"]\n\n{jobs}",
            env.repo.display(),
            env.password_file.display()
        ),
    )
    .unwrap();
    path
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn systemd_units_verify_and_list_and_remove_find_them() {
    let env = Env::new();
    let config = write_config(
        &env,
        "[[job]]\nname = \"nightly\"\nschedule = \"Mon..Fri *-*-* 01:30\"\n\
         randomized-delay = \"45m\"\n\n[[job]]\nname = \"hourly-db\"\nschedule = \"hourly\"\n",
    );
    let units = env.path("units");
    let dir = units.to_str().unwrap();
    let out = cairn(&env, &config, &["schedule", "install"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("several jobs: name one"),
        "{}",
        text(&out.stderr)
    );

    for job in ["nightly", "hourly-db"] {
        let out = cairn(
            &env,
            &config,
            &["schedule", "install", job, "--unit-dir", dir, "--no-enable"],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let service = fs::read_to_string(units.join("cairn-nightly.service")).unwrap();
    let timer = fs::read_to_string(units.join("cairn-nightly.timer")).unwrap();
    assert!(
        timer.contains("OnCalendar=Mon..Fri *-*-* 01:30\n"),
        "{timer}"
    );
    assert!(timer.contains("RandomizedDelaySec=2700\n"), "{timer}");
    assert!(timer.contains("Persistent=true\n"), "{timer}");
    let exec = format!(
        "ExecStart={} --config {} run nightly\n",
        env!("CARGO_BIN_EXE_cairn"),
        config.display()
    );
    assert!(service.contains(&exec), "{service}");
    assert!(service.contains("Type=oneshot\n"), "{service}");

    // systemd's own check of the units, as systemd would load them.
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(units.join("cairn-nightly.service"))
        .arg(units.join("cairn-nightly.timer"))
        .arg(units.join("cairn-hourly-db.timer"))
        .output();
    match verify {
        Ok(o) => assert!(o.status.success(), "systemd-analyze: {}", text(&o.stderr)),
        Err(e) => panic!("systemd-analyze is needed for this test (package systemd): {e}"),
    }

    // A schedule systemd cannot parse is refused at install, and nothing is enabled.
    let bad = config_with_bad_schedule(&env);
    let out = cairn(
        &env,
        &bad,
        &[
            "schedule",
            "install",
            "--unit-dir",
            env.path("bad").to_str().unwrap(),
            "--no-enable",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("systemd-analyze verify rejects"),
        "{}",
        text(&out.stderr)
    );

    // A unit cairn did not write is never replaced.
    fs::write(
        units.join("cairn-other.timer"),
        "[Timer]\nOnCalendar=daily\n",
    )
    .unwrap();
    let out = cairn(
        &env,
        &config,
        &["schedule", "list", "--unit-dir", dir, "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let jobs: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["job"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["hourly-db", "nightly"]);

    let out = cairn(
        &env,
        &config,
        &["schedule", "remove", "nightly", "--unit-dir", dir],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!units.join("cairn-nightly.timer").exists());
    assert!(!units.join("cairn-nightly.service").exists());
    assert!(units.join("cairn-hourly-db.timer").exists());
    let out = cairn(
        &env,
        &config,
        &["schedule", "remove", "other", "--unit-dir", dir],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(units.join("cairn-other.timer").exists());
}

fn config_with_bad_schedule(env: &Env) -> std::path::PathBuf {
    let path = env.path("bad.toml");
    fs::write(
        &path,
        format!(
            "[repository]\nurl = \"{}\"\n\n[[source]]\nname = \"etc\"\npaths = [\"/etc\"]\n\n\
             [[job]]\nname = \"nightly\"\nschedule = \"every full moon\"\n",
            env.repo.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_cron_entry_runs_the_job_with_its_random_delay() {
    let env = Env::new();
    let config = write_config(&env, "[[job]]\nname = \"nightly\"\nschedule = \"03:15\"\n");
    let file = env.path("cron.d/cairn-nightly");
    let f = file.to_str().unwrap();
    // No cron.d directory: cron is not installed, and the message says so.
    let out = cairn(
        &env,
        &config,
        &["schedule", "install", "--cron", "--cron-file", f],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is cron installed?"),
        "{}",
        text(&out.stderr)
    );
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    let out = cairn(
        &env,
        &config,
        &["schedule", "install", "--cron", "--cron-file", f],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let entry = fs::read_to_string(&file).unwrap();
    let line = entry
        .lines()
        .find(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no entry in\n{entry}"));
    assert_eq!(
        line,
        format!(
            "15 3 * * * root {} --config {} run nightly --random-delay 3600s",
            env!("CARGO_BIN_EXE_cairn"),
            config.display()
        )
    );
    let out = cairn(
        &env,
        &config,
        &["schedule", "list", "--cron", "--cron-file", f, "--json"],
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["job"], "nightly");
    assert_eq!(rows[0]["when"], "15 3 * * *");
    // Cron cannot say a systemd calendar expression: refused, with the reason.
    let config = write_config(
        &env,
        "[[job]]\nname = \"nightly\"\nschedule = \"Sat 04:00\"\n",
    );
    let out = cairn(
        &env,
        &config,
        &["schedule", "install", "--cron", "--cron-file", f],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("a cron entry needs HH:MM"),
        "{}",
        text(&out.stderr)
    );
    let out = cairn(
        &env,
        &config,
        &["schedule", "remove", "--cron", "--cron-file", f],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!file.exists());
}

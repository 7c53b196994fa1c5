//! `cairn run`: the nightly job of a config file with two repositories and two apps,
//! its pings to a healthchecks-style server on loopback and its Prometheus textfile;
//! an offsite repository that cannot be reached fails the copy, not the backups.

use crate::common::*;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// One request the ping server received: method, target (path and query), body.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub body: String,
}

/// A small HTTP server on a free loopback port that answers every request with
/// 200 OK and records it.
pub struct PingServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<Request>>>,
}

impl PingServer {
    pub fn start() -> PingServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let mut parts = line.split_whitespace();
                let method = parts.next().unwrap_or_default().to_string();
                let target = parts.next().unwrap_or_default().to_string();
                let mut length = 0usize;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.split_once(':') {
                        if k.eq_ignore_ascii_case("content-length") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(Request {
                    method,
                    target,
                    body: String::from_utf8_lossy(&body).into_owned(),
                });
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                );
            }
        });
        PingServer { port, requests }
    }

    pub fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

/// A Kimai installation on SQLite, as Kimai lays it out.
fn kimai(root: &Path) {
    fs::create_dir_all(root.join("var/data")).unwrap();
    fs::create_dir_all(root.join("config/packages")).unwrap();
    fs::write(
        root.join(".env"),
        "DATABASE_URL=sqlite:///%kernel.project_dir%/var/data/kimai.sqlite\n",
    )
    .unwrap();
    fs::write(root.join("config/packages/local.yaml"), "kimai: {}\n").unwrap();
    fs::write(root.join("var/data/invoice.pdf"), pseudo_random(1, 300_000)).unwrap();
    succeed(Command::new("python3").arg("-c").arg(format!(
        "import sqlite3; c = sqlite3.connect('{}'); \
             c.execute('create table kimai2_users (id integer primary key, name text)'); \
             c.executemany('insert into kimai2_users (name) values (?)', \
             [('user %d' % i,) for i in range(50)]); c.commit()",
        root.join("var/data/kimai.sqlite").display()
    )));
}

/// An Immich installation with its database on the PostgreSQL server of the tests.
fn immich(root: &Path, db: &str) {
    let user = "6c3e2a4e-5a0b-4b8e-9d1c-1f2e3d4c5b6a";
    for d in [
        "upload",
        "profile",
        "library",
        "thumbs",
        "encoded-video",
        "backups",
    ] {
        fs::create_dir_all(root.join("library").join(d).join(user)).unwrap();
    }
    fs::write(
        root.join(".env"),
        format!(
            "UPLOAD_LOCATION=./library\nIMMICH_VERSION=v1.120.0\nDB_PASSWORD=postgres\n\
             DB_USERNAME=postgres\nDB_DATABASE_NAME={db}\nDB_HOSTNAME=127.0.0.1\nDB_PORT=5432\n"
        ),
    )
    .unwrap();
    fs::write(
        root.join("docker-compose.yml"),
        "name: immich\nservices: {}\n",
    )
    .unwrap();
    for i in 0..5u64 {
        fs::write(
            root.join(format!("library/upload/{user}/IMG_{i}.jpg")),
            pseudo_random(10 + i, 50_000),
        )
        .unwrap();
    }
    psql(
        db,
        "CREATE TABLE version_history (id serial PRIMARY KEY, version text NOT NULL); \
         INSERT INTO version_history (version) VALUES ('1.120.0'); \
         CREATE TABLE assets (id serial PRIMARY KEY, path text); \
         INSERT INTO assets (path) SELECT 'IMG_' || g FROM generate_series(1, 5) g;",
    );
}

/// The test's machine: two repositories, two apps, a source of plain paths, a ping
/// server, a textfile directory and a state directory.
struct Machine {
    env: Env,
    config: PathBuf,
    offsite: PathBuf,
    textfiles: PathBuf,
    state: PathBuf,
    pings: PingServer,
    _db: TempPg,
}

impl Machine {
    fn new() -> Machine {
        let env = Env::new();
        env.init();
        let offsite = env.path("usb");
        let out = env
            .cmd()
            .env("CAIRN_REPOSITORY", &offsite)
            .env("CAIRN_FROM_PASSWORD_FILE", &env.password_file)
            .args(["init", "--copy-params-from", env.repo.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let db = TempPg::new("run_immich");
        kimai(&env.path("kimai"));
        immich(&env.path("immich"), &db.0);
        fs::create_dir_all(env.path("etc/app")).unwrap();
        fs::write(env.path("etc/app/app.conf"), "listen = 8080\n").unwrap();
        fs::write(env.path("etc/app/cache.tmp"), "skip me\n").unwrap();
        let textfiles = env.path("textfiles");
        fs::create_dir_all(&textfiles).unwrap();
        let pings = PingServer::start();
        let config = env.path("config.toml");
        fs::write(
            &config,
            format!(
                r#"[repository]
name = "local"
url = "{repo}"
password-file = "{pw}"

[[offsite]]
name = "usb"
url = "{usb}"
password-file = "{pw}"

[[app]]
name = "kimai"
path = "{dir}/kimai"

[[app]]
name = "photos"
kind = "immich"
path = "{dir}/immich"

[[source]]
name = "etc"
paths = ["{dir}/etc"]
exclude = ["*.tmp"]
before = ["touch {dir}/before-ran"]
after = ["touch {dir}/after-ran"]

[retention]
keep-last = 2

[[job]]
name = "nightly"
before = ["test -d {usb} || (echo the disk is not plugged in >&2; exit 4)"]
after = ["echo night done >> {dir}/job-log"]
prune-every = "always"
check-every = "always"
check-subset = "100%"
ping-url = "http://127.0.0.1:{port}/ping/0d8f2e"

[monitoring]
textfile-dir = "{textfiles}"
"#,
                repo = env.repo.display(),
                pw = env.password_file.display(),
                usb = offsite.display(),
                dir = env.dir.path().display(),
                port = pings.port,
                textfiles = textfiles.display(),
            ),
        )
        .unwrap();
        let state = env.path("state");
        Machine {
            env,
            config,
            offsite,
            textfiles,
            state,
            pings,
            _db: db,
        }
    }

    /// `cairn ARGS` as a timer runs it: the config file, HOME and a state directory;
    /// nothing else in the environment.
    fn cairn(&self, args: &[&str]) -> Output {
        cairn_with_config(self.env.dir.path(), &self.config)
            .env("XDG_STATE_HOME", &self.state)
            .args(args)
            .output()
            .unwrap()
    }

    fn snapshots(&self, repo: &str) -> Vec<serde_json::Value> {
        let out = self.cairn(&["-r", repo, "snapshots", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    }

    fn textfile(&self) -> String {
        fs::read_to_string(self.textfiles.join("cairn_nightly.prom")).unwrap()
    }
}

/// The value of the sample whose name and labels start with `prefix`.
fn sample(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn the_nightly_job_backs_up_copies_reports_and_survives_an_offsite_outage() {
    let m = Machine::new();

    // The plan: the commands it would run.
    let out = m.cairn(&["run", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(
        plan.contains("-r local --retry-lock 3600s --json app backup kimai"),
        "{plan}"
    );
    assert!(
        plan.contains("backup --tag etc --exclude '*.tmp'"),
        "{plan}"
    );
    assert!(m.pings.take().is_empty(), "a dry run pings nothing");

    // Night 1: everything works.
    let out = m.cairn(&["run"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("job nightly: ok"), "{stdout}");
    for step in [
        "app backup kimai (local): ok",
        "app backup photos (local): ok",
        "backup etc (local): ok",
        "forget (local): ok",
        "copy to usb (usb): ok",
        "forget (usb): ok",
        "prune (local): ok",
        "prune (usb): ok",
        "check (local): ok",
        "check (usb): ok",
        "status: ok",
        "before: ok",
        "after: ok",
    ] {
        assert!(stderr.contains(step), "no log line {step:?}:\n{stderr}");
    }
    assert!(m.env.path("before-ran").exists() && m.env.path("after-ran").exists());
    let local = m.snapshots("local");
    assert_eq!(local.len(), 3, "{local:?}");
    let etc = local
        .iter()
        .find(|s| s["tags"].as_array().unwrap().contains(&"etc".into()))
        .expect("the source's snapshot is tagged with its name");
    let etc_id = etc["id"].as_str().unwrap();
    let ls = text(&m.cairn(&["-r", "local", "ls", etc_id]).stdout);
    assert!(ls.contains("app.conf") && !ls.contains("cache.tmp"), "{ls}");
    assert_eq!(m.snapshots("usb").len(), 3);

    let pings = m.pings.take();
    let targets: Vec<&str> = pings.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets.len(), 2, "{targets:?}");
    assert!(
        targets[0].starts_with("/ping/0d8f2e/start?rid="),
        "{targets:?}"
    );
    let rid = &targets[0]["/ping/0d8f2e/start?rid=".len()..];
    assert_eq!(rid.len(), 36, "a UUID: {rid}");
    assert_eq!(
        targets[1],
        format!("/ping/0d8f2e?rid={rid}"),
        "success, same run"
    );
    assert!(pings.iter().all(|r| r.method == "POST"));
    assert!(
        pings[1].body.contains("job nightly: ok"),
        "{}",
        pings[1].body
    );

    let metrics = m.textfile();
    assert_eq!(sample(&metrics, "cairn_job_success{job=\"nightly\"}"), 1.0);
    assert_eq!(
        sample(&metrics, "cairn_job_failed_steps{job=\"nightly\"}"),
        0.0
    );
    let first_success = sample(&metrics, "cairn_job_last_success_timestamp_seconds{");
    assert!(first_success > 1.7e9, "{metrics}");
    assert!(sample(&metrics, "cairn_job_duration_seconds{") > 0.0);
    assert_eq!(
        sample(
            &metrics,
            "cairn_repository_snapshots{job=\"nightly\",repository=\"usb\""
        ),
        3.0
    );
    let age = sample(
        &metrics,
        "cairn_repository_newest_snapshot_age_seconds{job=\"nightly\",repository=\"usb\"",
    );
    assert!((0.0..600.0).contains(&age), "{metrics}");
    assert!(
        sample(
            &metrics,
            "cairn_step_added_bytes{job=\"nightly\",step=\"app backup kimai\",repository=\"local\"}"
        ) > 100_000.0,
        "the first backup stores the 300 kB invoice: {metrics}"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&fs::read(m.state.join("cairn/jobs/nightly.json")).unwrap())
            .unwrap();
    assert!(
        state["prune"]["usb"].is_i64() && state["check"]["local"].is_i64(),
        "{state}"
    );

    // Night 2: the offsite disk is gone. The local backups are still taken, the copy
    // fails, the run says so and exits 1, and the failure ping carries the log.
    fs::write(m.env.path("etc/app/app.conf"), "listen = 9090\n").unwrap();
    let away = m.env.path("usb-unplugged");
    fs::rename(&m.offsite, &away).unwrap();
    let out = m.cairn(&["run", "nightly"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stderr.contains("copy to usb (usb): FAILED"), "{stderr}");
    assert!(stderr.contains("before: FAILED"), "{stderr}");
    assert!(stdout.contains("the disk is not plugged in"), "{stdout}");
    assert!(stderr.contains("backup etc (local): ok"), "{stderr}");
    assert!(
        !stderr.contains("prune (usb)"),
        "nothing more is tried on usb:\n{stderr}"
    );
    assert!(stderr.contains("check (local): ok"), "{stderr}");
    // keep-last 2 per host and paths: two of each of the three.
    let local = m.snapshots("local");
    assert_eq!(local.len(), 6, "{local:?}");
    let pings = m.pings.take();
    assert_eq!(pings.len(), 2, "{pings:?}");
    assert!(
        pings[1].target.starts_with("/ping/0d8f2e/fail?rid="),
        "{pings:?}"
    );
    assert!(pings[1].body.contains("copy to usb"), "{}", pings[1].body);
    assert!(
        pings[1].body.contains("no cairn repository at"),
        "the log tail: {}",
        pings[1].body
    );
    let metrics = m.textfile();
    assert_eq!(sample(&metrics, "cairn_job_success{job=\"nightly\"}"), 0.0);
    assert_eq!(
        sample(
            &metrics,
            "cairn_repository_up{job=\"nightly\",repository=\"usb\""
        ),
        0.0
    );
    assert_eq!(
        sample(&metrics, "cairn_job_last_success_timestamp_seconds{"),
        first_success,
        "the last success is still night 1's"
    );
    assert_eq!(
        sample(
            &metrics,
            "cairn_step_success{job=\"nightly\",step=\"copy to usb\",repository=\"usb\"}"
        ),
        0.0
    );

    // Night 3: the disk is back; the copy catches up and the retention applies there.
    fs::rename(&away, &m.offsite).unwrap();
    let out = m.cairn(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(m.snapshots("local").len(), 6);
    assert_eq!(m.snapshots("usb").len(), 6);
    let restored = m.env.path("restored");
    let out = m.cairn(&[
        "-r",
        "usb",
        "restore",
        "latest",
        "--target",
        restored.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(m.pings.take().len(), 2);
    assert_eq!(
        fs::read_to_string(m.env.path("job-log")).unwrap(),
        "night done\n".repeat(3),
        "the job's after-command ran every night, the failed one too"
    );
}

#[test]
fn a_config_without_jobs_runs_the_default_job_and_a_bad_job_name_is_refused() {
    let env = Env::new();
    env.init();
    fs::create_dir_all(env.path("data")).unwrap();
    fs::write(env.path("data/a.txt"), "a\n").unwrap();
    let config = env.path("config.toml");
    fs::write(
        &config,
        format!(
            "[repository]\nurl = \"{}\"\npassword-file = \"{}\"\n\n[[source]]\nname = \"data\"\n\
             paths = [\"{}\"]\n",
            env.repo.display(),
            env.password_file.display(),
            env.path("data").display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        cairn_with_config(env.dir.path(), &config)
            .args(args)
            .output()
            .unwrap()
    };
    // config check says what the job will do.
    let out = run(&["config", "check"]);
    let said = text(&out.stdout);
    assert!(said.contains("job         nightly: source data"), "{said}");
    assert!(
        said.contains("no copy; no forget; prune every 7 days"),
        "{said}"
    );
    let out = run(&["run", "weekly"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no job \"weekly\" in the config file (jobs: nightly)"));
    let out = run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("backup data (primary): ok"), "{stderr}");
    // No [retention]: nothing is forgotten; a check and a prune are due on a first run.
    assert!(!stderr.contains("forget"), "{stderr}");
    assert!(stderr.contains("check (primary): ok"), "{stderr}");
    // The state went to ~/.local/state without XDG_STATE_HOME.
    assert!(env.path(".local/state/cairn/jobs/nightly.json").exists());
    // A second run the same day: prune and check are not due.
    let out = run(&["run"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("prune of primary: not due"), "{stderr}");
    assert!(!stderr.contains("check (primary): ok"), "{stderr}");
    // --json: the whole report.
    let out = run(&["run", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["job"], "nightly");
    assert_eq!(v["ok"], true);
    let steps: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["backup data", "status"]);
    assert_eq!(v["steps"][0]["snapshot"].as_str().unwrap().len(), 64);
    assert_eq!(v["repositories"][0]["snapshots"], 3);
}

//! An application restore never makes things worse: it is one transaction across every
//! database and path it touches. A failure in any step, a damaged repository, or a
//! SIGKILL at any moment ends with every database and path either as the snapshot holds
//! it or as it was before, all of them together, never mixed.
//!
//! `CAIRN_APP_KILL_ROUNDS` sets the number of kills that land mid-restore in each
//! campaign (default 30).

use crate::apps::{checksums, idoit_install};
use crate::common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An i-doit installation (system and tenant databases, foreign keys) backed up once,
/// then changed in both databases and in its files: the state a restore starts from.
struct Idoit {
    env: Env,
    system: TempMaria,
    tenant: TempMaria,
    install: PathBuf,
    snap: String,
    /// Files and tables as the snapshot holds them, and as they are before the restore.
    at_snapshot: State,
    before: State,
}

#[derive(Clone, Debug, PartialEq)]
struct State {
    files: BTreeMap<Vec<u8>, String>,
    system: Vec<String>,
    tenant: Vec<String>,
}

impl Idoit {
    /// `extra_rows` more objects in the tenant (a longer load to kill).
    fn new(extra_rows: u32) -> Idoit {
        let env = Env::new();
        env.init();
        let system = TempMaria::new("rsys");
        let tenant = TempMaria::new("rten");
        let install = env.path("i-doit");
        idoit_install(&install, &system.0, &tenant.0);
        if extra_rows > 0 {
            mariadb(
                Some(&tenant.0),
                &format!(
                    "INSERT INTO isys_obj SELECT seq, 1 + seq % 3, CONCAT('Object ', seq, ' \
                     {}') FROM seq_501_to_{}",
                    "x".repeat(60),
                    500 + extra_rows
                ),
            );
        }
        let snap = env.app_backup("idoit", &install, &[]);
        let mut case = Idoit {
            env,
            system,
            tenant,
            install,
            snap,
            at_snapshot: State {
                files: BTreeMap::new(),
                system: Vec::new(),
                tenant: Vec::new(),
            },
            before: State {
                files: BTreeMap::new(),
                system: Vec::new(),
                tenant: Vec::new(),
            },
        };
        case.at_snapshot = case.state();
        case.change();
        case.before = case.state();
        assert_ne!(case.before.system, case.at_snapshot.system);
        assert_ne!(case.before.tenant, case.at_snapshot.tenant);
        assert_ne!(case.before.files, case.at_snapshot.files);
        case
    }

    /// From the snapshot's state to the state before the restore: both databases and
    /// the files change (a file changed, a file the snapshot holds removed).
    fn change(&self) {
        mariadb(
            Some(&self.system.0),
            "UPDATE isys_settings SET isys_settings__value = 'UTC'; \
             INSERT INTO isys_settings VALUES ('added.later', 'x')",
        );
        mariadb(
            Some(&self.tenant.0),
            "DELETE FROM isys_obj WHERE isys_obj__id > 400; \
             UPDATE isys_obj_type SET isys_obj_type__const = 'changed'",
        );
        fs::write(self.install.join("imports/servers.csv"), "changed\n").unwrap();
        fs::remove_file(self.install.join("upload/files/manual.pdf")).unwrap();
    }

    fn state(&self) -> State {
        // What each path holds (times change each time the state is made again).
        let mut files = BTreeMap::new();
        for p in files_under(&self.install) {
            let rel = p.strip_prefix(&self.install).unwrap();
            if !rel.starts_with("temp") {
                let hash = blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string();
                files.insert(rel.as_os_str().as_encoded_bytes().to_vec(), hash);
            }
        }
        State {
            files,
            system: checksums(&self.system.0),
            tenant: checksums(&self.tenant.0),
        }
    }

    /// Which whole state the installation is in: the snapshot's, the one before, or
    /// a mix (named part by part).
    fn which(&self) -> &'static str {
        let now = self.state();
        if now == self.at_snapshot {
            "snapshot"
        } else if now == self.before {
            "before"
        } else {
            let part = |a: bool, b: bool| match (a, b) {
                (true, _) => "snapshot",
                (_, true) => "before",
                _ => "neither",
            };
            eprintln!(
                "MIXED: files {}, system {}, tenant {}",
                part(
                    now.files == self.at_snapshot.files,
                    now.files == self.before.files
                ),
                part(
                    now.system == self.at_snapshot.system,
                    now.system == self.before.system
                ),
                part(
                    now.tenant == self.at_snapshot.tenant,
                    now.tenant == self.before.tenant
                ),
            );
            "mixed"
        }
    }

    fn restore(&self) -> Command {
        let mut c = self.env.cmd();
        c.args(["app", "restore", "idoit", &self.snap, "--replace-existing"]);
        c
    }

    fn journals(&self) -> usize {
        open_journals(&self.env)
    }

    /// Waits until no session of another process uses the two databases (a client
    /// that lost its cairn reads to the end of its input and leaves).
    fn wait_for_clients(&self) {
        let t = Instant::now();
        loop {
            let n = mariadb(
                None,
                &format!(
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> \
                     CONNECTION_ID() AND DB IN ('{}', '{}')",
                    self.system.0, self.tenant.0
                ),
            );
            if n.trim() == "0" {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "a client still uses the databases after 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A `mariadb` client that fails once while loading the database named `victim` (after
/// reading some of the dump), and passes everything else to the real client.
fn failing_client(env: &Env, victim: &str) -> String {
    let fake = env.path("fakebin");
    let marker = env.path("failed-once");
    fs::create_dir_all(&fake).unwrap();
    let real = Command::new("sh")
        .args(["-c", "command -v mariadb"])
        .output()
        .unwrap()
        .stdout;
    fs::write(
        fake.join("mariadb"),
        format!(
            "#!/bin/sh\ncase \"$*\" in *--execute*) exec {real} \"$@\";; esac\n\
             case \"$*\" in *--database={victim}*) if [ ! -e {m} ]; then touch {m}; \
             head -c 20000 >/dev/null; \
             echo 'ERROR 2013: Lost connection to server during query' >&2; exit 1; fi;; esac\n\
             exec {real} \"$@\"\n",
            real = String::from_utf8(real).unwrap().trim(),
            m = marker.display(),
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(fake.join("mariadb"), fs::Permissions::from_mode(0o755)).unwrap();
    format!("{}:{}", fake.display(), std::env::var("PATH").unwrap())
}

#[test]
fn a_failed_tenant_load_puts_back_the_system_database_and_the_files_too() {
    let case = Idoit::new(0);
    // The system database loads, then the tenant's client dies.
    let path = failing_client(&case.env, &case.tenant.0);
    let described = describe(&case.install);
    let out = case.restore().env("PATH", &path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(case.which(), "before", "{stderr}");
    // Modes, times and owners too.
    assert_eq!(describe(&case.install), described);
    // The end says what state each database and path is in.
    for name in [&case.system.0, &case.tenant.0] {
        assert!(
            stderr.contains(&format!("database {name}: as it was before the restore")),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains(&format!(
            "path {}: as it was before the restore",
            case.install.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("Lost connection"), "{stderr}");
    assert_eq!(case.journals(), 0, "the journal outlived the rollback");
    // The restore point is an application snapshot of its own, listed as such, and
    // `latest` still means the newest backup.
    let list = case.env.json(&["app", "snapshots", "idoit"]);
    let points: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["restore_point"].is_null())
        .collect();
    assert_eq!(points.len(), 1, "{list}");
    assert_eq!(points[0]["restore_point"], case.snap.as_str());
    assert_eq!(
        points[0]["install"],
        case.install.display().to_string().as_str()
    );
    // With a working client, the whole snapshot comes back.
    succeed(&mut case.restore());
    assert_eq!(case.which(), "snapshot");
    // And the restore point restores by id like any snapshot: back to before.
    let rp = points[0]["snapshot"].as_str().unwrap();
    succeed(
        case.env
            .cmd()
            .args(["app", "restore", "idoit", &rp[..12], "--replace-existing"]),
    );
    // Databases and every file as before (a restore, unlike a rollback, leaves the
    // files that the snapshot does not hold, here the one the other restore added).
    let now = case.state();
    assert_eq!(
        (&now.system, &now.tenant),
        (&case.before.system, &case.before.tenant)
    );
    for (path, meta) in &case.before.files {
        assert_eq!(
            now.files.get(path),
            Some(meta),
            "{}",
            String::from_utf8_lossy(path)
        );
    }
}

#[test]
fn a_refusal_is_decided_before_any_file_is_touched() {
    let case = Idoit::new(0);
    // One --database for a snapshot of two databases: refused, nothing written.
    let out = case.env.run(&[
        "app",
        "restore",
        "idoit",
        &case.snap,
        "--database",
        "other",
        "--replace-existing",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("holds 2 databases"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(case.which(), "before");
    // No consent to replace databases that hold tables: refused, nothing written.
    let out = case.env.run(&["app", "restore", "idoit", &case.snap]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(case.which(), "before");
    assert_eq!(case.journals(), 0);
}

/// Damages every pack written since `before` (a listing of the
/// repository's packs).
fn damage_new_packs(repo: &Path, before: &[PathBuf]) -> usize {
    let mut n = 0;
    for p in files_under(&repo.join("data")) {
        if before.contains(&p) {
            continue;
        }
        // A byte in every 512: every blob of the pack is damaged.
        let mut d = fs::read(&p).unwrap();
        for at in (100..d.len()).step_by(512) {
            d[at] ^= 0x55;
        }
        fs::write(&p, d).unwrap();
        n += 1;
    }
    n
}

#[test]
fn a_restore_point_on_damaged_data_is_refused_before_anything_changes() {
    // The databases are as the snapshot holds them, so the restore point's dumps
    // deduplicate onto the snapshot's blobs; those are damaged.
    let env = Env::new();
    env.init();
    let system = TempMaria::new("dsys");
    let tenant = TempMaria::new("dten");
    let install = env.path("i-doit");
    idoit_install(&install, &system.0, &tenant.0);
    let repo = env.path("repo");
    let packs = files_under(&repo.join("data"));
    let snap = env.app_backup("idoit", &install, &[]);
    assert!(damage_new_packs(&repo, &packs) > 0);
    let before = (
        checksums(&system.0),
        checksums(&tenant.0),
        describe(&install),
    );
    let out = env.run(&["app", "restore", "idoit", &snap, "--replace-existing"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("restore point cannot be trusted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("is corrupt or has been tampered with"),
        "{stderr}"
    );
    assert!(stderr.contains("in pack "), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(
        (
            checksums(&system.0),
            checksums(&tenant.0),
            describe(&install)
        ),
        before,
        "the installation changed although the restore was refused"
    );
}

#[test]
fn a_damaged_blob_in_a_dump_feed_is_named_and_everything_is_put_back() {
    // The snapshot's dumps are damaged; the databases now hold other data, so the
    // restore point shares no blob with them and is sound.
    let env = Env::new();
    env.init();
    let system = TempMaria::new("fsys");
    let tenant = TempMaria::new("ften");
    let install = env.path("i-doit");
    idoit_install(&install, &system.0, &tenant.0);
    let repo = env.path("repo");
    let packs = files_under(&repo.join("data"));
    let snap = env.app_backup("idoit", &install, &[]);
    assert!(damage_new_packs(&repo, &packs) > 0);
    for db in [&system.0, &tenant.0] {
        mariadb(None, &format!("DROP DATABASE {db}; CREATE DATABASE {db}"));
        mariadb(
            Some(db),
            "CREATE TABLE other (id INT PRIMARY KEY, v TEXT); \
             INSERT INTO other VALUES (1, 'now'), (2, 'here')",
        );
    }
    let before = (checksums(&system.0), checksums(&tenant.0));
    let out = env.run(&[
        "app",
        "restore",
        "idoit",
        &snap,
        "--replace-existing",
        "--databases-only",
        "--database",
        "unused",
    ]);
    // (--database with two databases is refused up front; now the real attempt.)
    assert!(!out.status.success());
    let out = env.run(&[
        "app",
        "restore",
        "idoit",
        &snap,
        "--replace-existing",
        "--databases-only",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    // The cause is the repository's, named with its pack, not the client's echo.
    assert!(
        stderr.contains("reading the dump from the repository failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("is corrupt or has been tampered with"),
        "{stderr}"
    );
    assert!(!stderr.contains("syntax"), "{stderr}");
    assert!(
        stderr.contains("everything the restore touched is as it was before"),
        "{stderr}"
    );
    assert_eq!((checksums(&system.0), checksums(&tenant.0)), before);
}

/// SIGKILL after a random share of a restore's duration; true when it landed while the
/// restore ran.
struct Killer {
    full: Duration,
    x: u64,
}

impl Killer {
    fn run(&mut self, cmd: &mut Command) -> bool {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        // From a quarter of the way in (the restore point is taken first, and kills
        // there are many anyway) to a little past the end.
        let delay = self
            .full
            .mul_f64(0.25 + (self.x % 1000) as f64 / 1000.0 * 0.85);
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let landed = child.try_wait().unwrap().is_none();
        if landed {
            child.kill().unwrap();
        }
        child.wait().unwrap();
        landed
    }
}

fn kill_rounds() -> usize {
    std::env::var("CAIRN_APP_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30)
}

#[test]
fn sigkill_at_any_moment_of_a_two_database_restore_never_leaves_it_mixed() {
    let case = Idoit::new(20_000);
    // Time one whole restore, then go back to the state before.
    let t = Instant::now();
    succeed(&mut case.restore());
    let full = t.elapsed();
    assert_eq!(case.which(), "snapshot");
    case.change();
    assert_eq!(case.which(), "before");
    let mut killer = Killer {
        full,
        x: 0x2545f4914f6cdd1d,
    };
    let rounds = kill_rounds();
    let (mut landed, mut tries) = (0, 0);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    while landed < rounds && tries < rounds * 3 {
        tries += 1;
        if !killer.run(&mut case.restore()) {
            // It finished first: the whole snapshot is back.
            assert_eq!(case.which(), "snapshot");
            case.change();
            continue;
        }
        landed += 1;
        case.wait_for_clients();
        let outcome = if case.journals() == 0 {
            // Killed before the first change (or after the last): never mixed.
            match case.which() {
                "before" => "killed before any change",
                "snapshot" => "killed after the restore ended",
                other => panic!("round {tries}: no journal and the state is {other}"),
            }
        } else {
            // Every later command sees it and says what to do.
            let out = case
                .env
                .run(&["app", "restore", "idoit", &case.snap, "--dry-run"]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{stderr}");
            assert!(stderr.contains("was cut short"), "{stderr}");
            assert!(stderr.contains("--rollback"), "{stderr}");
            if landed % 2 == 1 {
                succeed(
                    case.env
                        .cmd()
                        .args(["app", "restore", "idoit", "--rollback"]),
                );
                assert_eq!(case.which(), "before", "round {tries}: after --rollback");
                "journal found, rolled back"
            } else {
                succeed(case.env.cmd().args(["app", "restore", "idoit", "--finish"]));
                assert_eq!(case.which(), "snapshot", "round {tries}: after --finish");
                "journal found, finished"
            }
        };
        assert_eq!(case.journals(), 0);
        *outcomes.entry(outcome).or_default() += 1;
        if case.which() == "snapshot" {
            case.change();
        }
    }
    eprintln!("kills landed: {landed} of {tries} runs; outcomes: {outcomes:?}");
    assert_eq!(landed, rounds, "too few kills landed mid-restore");
    assert!(
        outcomes.keys().any(|k| k.starts_with("journal found")),
        "no kill landed during the destructive steps: {outcomes:?}"
    );
    // The interrupted state is visible in `app list` too (checked once, at the end).
    let out = case
        .env
        .cmd()
        .args(["app", "list", &format!("idoit={}", case.install.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Row checksum of the Kimai SQLite database.
fn sqlite_sum(db: &Path) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3, hashlib; c = sqlite3.connect('{}'); \
             print(hashlib.sha256(repr(c.execute('select * from kimai2_users order by id')\
             .fetchall()).encode()).hexdigest())",
            db.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn sigkill_at_any_moment_of_a_sqlite_restore_never_leaves_it_mixed() {
    let env = Env::new();
    env.init();
    let install = env.path("kimai");
    let db = kimai_sqlite_install(&install, 200_000);
    let snap = env.app_backup("kimai", &install, &[]);
    let csv = install.join("var/data/export.csv");
    let state = || (fs::read_to_string(&csv).unwrap(), sqlite_sum(&db));
    let at_snapshot = state();
    let change = || {
        fs::write(&csv, "changed\n").unwrap();
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import sqlite3; c = sqlite3.connect('{}'); \
                 c.execute('delete from kimai2_users where id % 7 = 0'); c.commit()",
                db.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    change();
    let before = state();
    assert_ne!(before, at_snapshot);
    let restore = || {
        let mut c = env.cmd();
        c.args(["app", "restore", "kimai", &snap, "--replace-existing"]);
        c
    };
    let t = Instant::now();
    succeed(&mut restore());
    let full = t.elapsed();
    assert_eq!(state(), at_snapshot);
    change();
    let open_journals = || open_journals(&env);
    let mut killer = Killer {
        full,
        x: 0x9e3779b97f4a7c15,
    };
    let rounds = kill_rounds();
    let (mut landed, mut tries) = (0, 0);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    while landed < rounds && tries < rounds * 3 {
        tries += 1;
        if !killer.run(&mut restore()) {
            assert_eq!(state(), at_snapshot);
            change();
            continue;
        }
        landed += 1;
        let outcome = if open_journals() == 0 {
            let now = state();
            assert!(
                now == before || now == at_snapshot,
                "round {tries}: mixed {now:?}"
            );
            "no journal, never mixed"
        } else if landed % 2 == 1 {
            succeed(env.cmd().args(["app", "restore", "kimai", "--rollback"]));
            assert_eq!(state(), before, "round {tries}: after --rollback");
            "journal found, rolled back"
        } else {
            succeed(env.cmd().args(["app", "restore", "kimai", "--finish"]));
            assert_eq!(state(), at_snapshot, "round {tries}: after --finish");
            "journal found, finished"
        };
        assert_eq!(open_journals(), 0);
        *outcomes.entry(outcome).or_default() += 1;
        if state() == at_snapshot {
            change();
        }
    }
    eprintln!("kills landed: {landed} of {tries} runs; outcomes: {outcomes:?}");
    assert_eq!(landed, rounds, "too few kills landed mid-restore");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

fn owner_and_mode(p: &Path) -> (u32, u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(p).unwrap();
    (m.uid(), m.gid(), m.mode() & 0o7777)
}

#[test]
fn a_sqlite_database_keeps_its_owner_group_and_mode() {
    if !is_root() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    let env = Env::new();
    env.init();
    let install = env.path("kimai");
    let db = kimai_sqlite_install(&install, 100);
    // Owned by the web server's user (www-data is 33 on Debian), readable by its group.
    std::os::unix::fs::chown(&db, Some(33), Some(33)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&db, fs::Permissions::from_mode(0o640)).unwrap();
    let snap = env.app_backup("kimai", &install, &[]);
    // Replacing the file keeps what it had.
    succeed(
        env.cmd()
            .args(["app", "restore", "kimai", &snap, "--replace-existing"]),
    );
    assert_eq!(owner_and_mode(&db), (33, 33, 0o640));
    // With no file there, the snapshot's record gives them.
    fs::remove_file(&db).unwrap();
    succeed(
        env.cmd()
            .args(["app", "restore", "kimai", &snap, "--databases-only"]),
    );
    assert_eq!(owner_and_mode(&db), (33, 33, 0o640));
    assert_eq!(sqlite_sum(&db).len(), 64);
}

fn charset_of(db: &str) -> String {
    mariadb(
        None,
        &format!(
            "SELECT CONCAT(DEFAULT_CHARACTER_SET_NAME, ' ', DEFAULT_COLLATION_NAME) FROM \
             information_schema.SCHEMATA WHERE SCHEMA_NAME = '{db}'"
        ),
    )
    .trim()
    .to_string()
}

#[test]
fn a_recreated_database_keeps_its_character_set_and_collation() {
    let env = Env::new();
    env.init();
    let system = TempMaria::new("csys");
    let tenant = TempMaria::new("cten");
    // i-doit's own setup: utf8 with utf8_unicode_ci; Kimai's: utf8mb4_unicode_ci.
    mariadb(
        None,
        &format!(
            "ALTER DATABASE {} CHARACTER SET utf8 COLLATE utf8_unicode_ci; \
             ALTER DATABASE {} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci",
            system.0, tenant.0
        ),
    );
    let install = env.path("i-doit");
    idoit_install(&install, &system.0, &tenant.0);
    let before = (charset_of(&system.0), charset_of(&tenant.0));
    assert!(before.0.ends_with("utf8_unicode_ci") || before.0.ends_with("utf8mb3_unicode_ci"));
    assert_eq!(before.1, "utf8mb4 utf8mb4_unicode_ci");
    let snap = env.app_backup("idoit", &install, &[]);
    mariadb(
        None,
        &format!("DROP DATABASE {}; DROP DATABASE {}", system.0, tenant.0),
    );
    succeed(
        env.cmd()
            .args(["app", "restore", "idoit", &snap, "--databases-only"]),
    );
    assert_eq!((charset_of(&system.0), charset_of(&tenant.0)), before);
    // Replacing them (drop, create, load) keeps them too.
    succeed(env.cmd().args([
        "app",
        "restore",
        "idoit",
        &snap,
        "--databases-only",
        "--replace-existing",
    ]));
    assert_eq!((charset_of(&system.0), charset_of(&tenant.0)), before);
}

#[test]
fn target_never_writes_outside_the_target() {
    // Immich's UPLOAD_LOCATION is an absolute path outside the installation.
    let env = Env::new();
    env.init();
    let db = TempPg::new("tgt");
    psql(&db.0, "CREATE TABLE assets (id int PRIMARY KEY, path text)");
    let install = env.path("immich");
    let photos = env.path("photos");
    fs::create_dir_all(&install).unwrap();
    let img = photos.join("upload/u1/IMG_0001.jpg");
    fs::create_dir_all(img.parent().unwrap()).unwrap();
    fs::write(&img, pseudo_random(1, 30_000)).unwrap();
    fs::write(
        install.join(".env"),
        format!(
            "UPLOAD_LOCATION={}\nIMMICH_VERSION=v1.120.0\nDB_PASSWORD=postgres\n\
             DB_USERNAME=postgres\nDB_DATABASE_NAME={}\nDB_HOSTNAME=127.0.0.1\nDB_PORT=5432\n",
            photos.display(),
            db.0
        ),
    )
    .unwrap();
    let snap = env.app_backup("immich", &install, &[]);
    // A newer photo at the live place, which a restore elsewhere must not touch.
    fs::write(&img, pseudo_random(2, 31_000)).unwrap();
    let live = describe(&photos);
    let elsewhere = env.path("restore-test");
    succeed(env.cmd().args([
        "app",
        "restore",
        "immich",
        &snap,
        "--target",
        elsewhere.to_str().unwrap(),
        "--files-only",
    ]));
    assert_eq!(
        describe(&photos),
        live,
        "the live upload location was written"
    );
    let moved = elsewhere.join(img.strip_prefix("/").unwrap());
    assert_eq!(fs::read(&moved).unwrap(), pseudo_random(1, 30_000));
    assert!(elsewhere.join(".env").is_file());
}

#[test]
fn restore_points_are_kept_by_their_own_rule_and_shown_by_status() {
    let env = Env::new();
    env.init();
    let install = env.path("kimai");
    kimai_sqlite_install(&install, 50);
    let first = env.app_backup("kimai", &install, &[]);
    env.app_backup("kimai", &install, &[]);
    // Four restores over a database that holds tables: four restore points.
    for _ in 0..4 {
        succeed(
            env.cmd()
                .args(["app", "restore", "kimai", &first, "--replace-existing"]),
        );
    }
    let points = env.json(&["snapshots", "--tag", "restore-point"]);
    assert_eq!(points.as_array().unwrap().len(), 4, "{points}");
    // A policy that keeps one backup neither counts nor removes them: all are younger
    // than a week.
    let out = env.ok(&["forget", "--keep-last", "1", "--group-by", "app"]);
    assert!(out.contains("restore point within 7d"), "{out}");
    assert_eq!(
        env.json(&["snapshots", "--tag", "restore-point"])
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let backups: Vec<_> = env
        .json(&["snapshots"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            !s["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "restore-point")
        })
        .cloned()
        .collect();
    assert_eq!(backups.len(), 1, "{backups:?}");
    // `status` lists them apart from the backups.
    let status = env.json(&["status"]);
    let rp = &status["restore_points"][0];
    assert_eq!(rp["count"], 4, "{status}");
    assert!(
        rp["installation"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":{}", install.display())),
        "{status}"
    );
    let text = env.ok(&["status"]);
    assert!(
        text.contains("restore points (kept: the 3 newest"),
        "{text}"
    );
}

#[test]
fn two_installations_of_one_application_are_told_apart() {
    let env = Env::new();
    env.init();
    let a = env.path("kimai-a");
    let b = env.path("kimai-b");
    let db_a = kimai_sqlite_install(&a, 10);
    kimai_sqlite_install(&b, 20);
    let from_a = env.app_backup("kimai", &a, &[]);
    let from_b = env.app_backup("kimai", &b, &[]);
    let want = sqlite_sum(&db_a);
    // A's database is damaged; restoring A takes A's snapshot, not B's newer one.
    fs::remove_file(&db_a).unwrap();
    let out = succeed(env.cmd().args([
        "app",
        "restore",
        "kimai",
        "--target",
        a.to_str().unwrap(),
        "--databases-only",
        "--json",
    ]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["snapshot"], from_a.as_str(), "{report}");
    assert_eq!(sqlite_sum(&db_a), want);
    // Without saying which installation: refused, naming both.
    let out = env.run(&["app", "restore", "kimai", "--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("2 installations"), "{stderr}");
    assert!(stderr.contains(a.to_str().unwrap()) && stderr.contains(b.to_str().unwrap()));
    // A new place takes an id, and `app snapshots` shows whose each snapshot is.
    let list = env.json(&["app", "snapshots", "kimai"]);
    let install_of = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["snapshot"] == id)
            .map(|s| s["install"].as_str().unwrap().to_string())
    };
    assert_eq!(install_of(&from_a).as_deref(), a.to_str());
    assert_eq!(install_of(&from_b).as_deref(), b.to_str());
}

#[test]
fn configured_installations_record_their_name_and_restore_their_own() {
    let env = Env::new();
    env.init();
    let a = env.path("kimai-a");
    let b = env.path("kimai-b");
    let db_a = kimai_sqlite_install(&a, 10);
    kimai_sqlite_install(&b, 20);
    let config = env.path("cairn.toml");
    fs::write(
        &config,
        format!(
            "[[app]]\nname = \"kimai\"\nkind = \"kimai\"\npath = \"{}\"\n\n\
             [[app]]\nname = \"kimai-test\"\nkind = \"kimai\"\npath = \"{}\"\n",
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut c = env.cmd();
        c.arg("--config").arg(&config).args(args);
        succeed(&mut c)
    };
    run(&["app", "backup", "kimai"]);
    run(&["app", "backup", "kimai-test"]);
    let list: serde_json::Value =
        serde_json::from_str(&run(&["app", "snapshots", "kimai", "--json"])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["installation"], "kimai");
    let want = sqlite_sum(&db_a);
    fs::remove_file(&db_a).unwrap();
    // "kimai" is configured under the kind's own name, so it has no tag of its own:
    // the recorded name keeps kimai-test's newer snapshot out.
    let out = run(&["app", "restore", "kimai", "--databases-only", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["snapshot"], list[0]["snapshot"]);
    assert_eq!(sqlite_sum(&db_a), want);
}

#[test]
fn a_restore_runs_the_backup_hooks_and_always_starts_the_application_again() {
    let env = Env::new();
    env.init();
    let install = env.path("kimai");
    kimai_sqlite_install(&install, 10);
    let snap = env.app_backup("kimai", &install, &[]);
    // Unconfigured, without hooks: the advice to stop comes first.
    let out = env.run(&[
        "app",
        "restore",
        "kimai",
        &snap,
        "--dry-run",
        "--replace-existing",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("before a restore: stop the web server"),
        "{stderr}"
    );

    let log = env.path("hooks.log");
    let config = env.path("cairn.toml");
    let write_config = |before: &str| {
        fs::write(
            &config,
            format!(
                "[[app]]\nname = \"kimai\"\nkind = \"kimai\"\npath = \"{}\"\n\
                 before = [{before}]\nafter = [\"echo start >> {log}\"]\n",
                install.display(),
                log = log.display()
            ),
        )
        .unwrap();
    };
    let run = |args: &[&str]| {
        let mut c = env.cmd();
        c.arg("--config").arg(&config).args(args);
        c.output().unwrap()
    };
    write_config(&format!("\"echo stop >> {}\"", log.display()));
    let out = run(&["app", "restore", "kimai", &snap, "--replace-existing"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(fs::read_to_string(&log).unwrap(), "stop\nstart\n");
    assert!(!stderr.contains("before a restore:"), "{stderr}");
    // The steps left are those cairn did not do.
    assert!(stdout.contains("bin/console cache:clear"), "{stdout}");
    assert!(!stdout.contains("restore the database"), "{stdout}");
    // The hooks ran around the restore point and the change: stop came before it.
    let stop = stderr.find("before-hook").unwrap();
    assert!(
        stop < stderr.find("taking a restore point").unwrap(),
        "{stderr}"
    );

    // A restore that fails still starts the application again.
    fs::write(&log, "").unwrap();
    let out = run(&[
        "app",
        "restore",
        "kimai",
        &snap,
        "--databases-only",
        "--database",
        "/proc/cairn-cannot-write-here.sqlite",
    ]);
    assert!(!out.status.success());
    assert_eq!(fs::read_to_string(&log).unwrap(), "stop\nstart\n");

    // A before-hook that fails stops the restore before any change, and the
    // after-hooks still run.
    fs::write(&log, "").unwrap();
    write_config(&format!("\"echo stop >> {}\", \"false\"", log.display()));
    let out = run(&["app", "restore", "kimai", &snap, "--replace-existing"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(fs::read_to_string(&log).unwrap(), "stop\nstart\n");
}

/// A MariaDB user, dropped at the end whatever happens.
struct TempUser(String);

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("mariadb")
            .args(MARIADB)
            .arg("--execute")
            .arg(format!("DROP USER IF EXISTS '{}'@'%'", self.0))
            .output();
    }
}

#[test]
fn idoit_tenants_inactive_with_their_own_credentials_or_missing() {
    let env = Env::new();
    env.init();
    let system = TempMaria::new("tsys");
    let tenant = TempMaria::new("tten");
    let second = TempMaria::new("tsec");
    let install = env.path("i-doit");
    idoit_install(&install, &system.0, &tenant.0);
    // An inactive tenant whose database only its own user may reach.
    let user = TempUser(format!(
        "u{}",
        &second.0[second.0.len().saturating_sub(20)..]
    ));
    mariadb(
        None,
        &format!(
            "CREATE USER '{u}'@'%' IDENTIFIED BY 'tenant-pw'; \
             GRANT ALL ON `{db}`.* TO '{u}'@'%'",
            u = user.0,
            db = second.0
        ),
    );
    mariadb(
        Some(&second.0),
        "CREATE TABLE isys_obj (isys_obj__id INT PRIMARY KEY, isys_obj__title TEXT); \
         INSERT INTO isys_obj VALUES (1, 'archived')",
    );
    mariadb(
        Some(&system.0),
        &format!(
            "INSERT INTO isys_mandator VALUES (2, 'Archive', '{}', '127.0.0.1', 3306, '{}', \
             'tenant-pw', 0), (3, 'Gone', 'cairn_e2e_no_such_tenant_db', '', NULL, '', '', 1)",
            second.0, user.0
        ),
    );
    // The missing tenant database stops the backup, naming the row and the way out.
    let out = env.run(&[
        "app",
        "backup",
        "idoit",
        "--path",
        install.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "tenant 3 \"Gone\" in isys_mandator names database cairn_e2e_no_such_tenant_db"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("exclude = [\"cairn_e2e_no_such_tenant_db\"]"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was backed up"), "{stderr}");
    assert!(env.json(&["snapshots"]).as_array().unwrap().is_empty());
    // Left out by the configuration, the others are all backed up, the inactive one too.
    let config = env.path("cairn.toml");
    fs::write(
        &config,
        format!(
            "[[app]]\nname = \"idoit\"\npath = \"{}\"\n\n[app.database]\n\
             exclude = [\"cairn_e2e_no_such_tenant_db\"]\n",
            install.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut c = env.cmd();
        c.arg("--config").arg(&config).args(args);
        succeed(&mut c)
    };
    run(&["app", "backup", "idoit"]);
    let m = env.json(&["app", "show", "latest"]);
    let names: Vec<&str> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["database"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![&system.0, &tenant.0, &second.0]);
    // The tenant's own user is stored beside the dumps, as --all-databases would.
    let grantee = format!("'{}'@'%'", user.0);
    assert!(
        m["accounts"][0]["accounts"]
            .as_array()
            .unwrap()
            .contains(&grantee.as_str().into()),
        "{m}"
    );
    // The server lost the tenant's database and its user: a restore that fails puts
    // back what was there, and drops the user it had created.
    let before = checksums(&second.0);
    mariadb(
        None,
        &format!("DROP DATABASE {}; DROP USER {grantee}", second.0),
    );
    let user_exists = || {
        mariadb(
            None,
            &format!("SELECT COUNT(*) FROM mysql.user WHERE User = '{}'", user.0),
        )
        .trim()
            == "1"
    };
    let path = failing_client(&env, &second.0);
    let out = env
        .cmd()
        .env("PATH", &path)
        .arg("--config")
        .arg(&config)
        .args([
            "app",
            "restore",
            "idoit",
            "--databases-only",
            "--replace-existing",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("accounts: creating"), "{stderr}");
    assert!(
        !user_exists(),
        "the user the failed restore created is still there: {stderr}"
    );
    // Then the restore: the user first, then the inactive tenant, loaded through it.
    run(&[
        "app",
        "restore",
        "idoit",
        "--databases-only",
        "--replace-existing",
    ]);
    assert!(user_exists());
    assert_eq!(checksums(&second.0), before);
    let out = Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            "3306",
            "-u",
            &user.0,
            "-ptenant-pw",
            "--batch",
        ])
        .arg(format!("--database={}", second.0))
        .args(["--execute", "SELECT isys_obj__title FROM isys_obj"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("archived"),
        "the restored user cannot read its database: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kimai_staged_restore_puts_plugins_templates_and_local_yaml_back_last() {
    let env = Env::new();
    env.init();
    let install = env.path("kimai");
    let db = kimai_sqlite_install(&install, 30);
    fs::write(install.join("config/packages/local.yaml"), "kimai: {}\n").unwrap();
    fs::create_dir_all(install.join("var/plugins/CustomBundle")).unwrap();
    fs::write(
        install.join("var/plugins/CustomBundle/Plugin.php"),
        "<?php\n",
    )
    .unwrap();
    fs::create_dir_all(install.join("var/invoices")).unwrap();
    fs::write(
        install.join("var/invoices/company.html.twig"),
        "{{ invoice }}\n",
    )
    .unwrap();
    let snap = env.app_backup("kimai", &install, &[]);
    let want = sqlite_sum(&db);
    // The files (the database file is compared by its rows: it is a new file).
    let files = |root: &Path| {
        let mut d = describe(root);
        d.retain(|k, _| !k.starts_with(b"var/data"));
        d
    };
    let all = files(&install);
    fs::remove_dir_all(&install).unwrap();
    // Stage 1: the database and the core files, not the later ones.
    let out = succeed(
        env.cmd()
            .args(["app", "restore", "kimai", &snap, "--stage", "core"]),
    );
    assert!(out.contains("--stage rest"), "{out}");
    assert_eq!(sqlite_sum(&db), want);
    assert!(install.join(".env").is_file());
    for later in ["config/packages/local.yaml", "var/plugins", "var/invoices"] {
        assert!(
            !install.join(later).exists(),
            "{later} came back in stage 1"
        );
    }
    // Stage 2: the rest, the database untouched.
    succeed(
        env.cmd()
            .args(["app", "restore", "kimai", &snap, "--stage", "rest"]),
    );
    assert_eq!(files(&install), all);
    assert_eq!(sqlite_sum(&db), want);
    // Only Kimai has stages.
    let out = env.run(&[
        "app",
        "restore",
        "idoit",
        "--stage",
        "core",
        "--target",
        "/nonexistent",
    ]);
    assert!(!out.status.success());
}

#[test]
fn immich_generated_files_on_request_and_external_libraries_named() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("gen");
    psql(&db.0, "CREATE TABLE assets (id int PRIMARY KEY, path text)");
    let install = env.path("immich");
    let library = install.join("library");
    for d in [
        "upload/u1",
        "thumbs/u1",
        "encoded-video/u1",
        "profile",
        "backups",
    ] {
        fs::create_dir_all(library.join(d)).unwrap();
    }
    fs::write(
        library.join("upload/u1/IMG_1.jpg"),
        pseudo_random(3, 20_000),
    )
    .unwrap();
    fs::write(
        library.join("thumbs/u1/IMG_1.webp"),
        pseudo_random(4, 2_000),
    )
    .unwrap();
    let external = env.path("nas-photos");
    fs::create_dir_all(&external).unwrap();
    fs::write(
        install.join(".env"),
        format!(
            "UPLOAD_LOCATION=./library\nDB_DATA_LOCATION=./postgres\nIMMICH_VERSION=v1.120.0\n\
             DB_PASSWORD=postgres\nDB_USERNAME=postgres\nDB_DATABASE_NAME={}\n\
             DB_HOSTNAME=127.0.0.1\nDB_PORT=5432\n",
            db.0
        ),
    )
    .unwrap();
    // The vendor's compose file, with an external library mounted read-only.
    fs::write(
        install.join("docker-compose.yml"),
        format!(
            "name: immich\nservices:\n  immich-server:\n    volumes:\n      \
             - ${{UPLOAD_LOCATION}}:/usr/src/app/upload\n      \
             - /etc/localtime:/etc/localtime:ro\n      \
             - {}:/mnt/media/nas:ro\n  database:\n    volumes:\n      \
             - ${{DB_DATA_LOCATION}}:/var/lib/postgresql/data\n",
            external.display()
        ),
    )
    .unwrap();
    let out = env.run(&[
        "app",
        "backup",
        "immich",
        "--path",
        install.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let warning = format!(
        "external library {} (mounted at /mnt/media/nas",
        external.display()
    );
    assert!(stderr.contains(&warning), "{stderr}");
    assert_eq!(stderr.matches("external library").count(), 1, "{stderr}");
    let m = env.json(&["app", "show", "latest"]);
    assert_eq!(m["not_included"].as_array().unwrap().len(), 1, "{m}");
    let ls = env.ok(&["ls", "latest"]);
    assert!(!ls.contains("/library/thumbs"), "{ls}");
    // On request, the generated files too.
    succeed(env.cmd().args([
        "app",
        "backup",
        "immich",
        "--path",
        install.to_str().unwrap(),
        "--with-generated",
    ]));
    let ls = env.ok(&["ls", "latest"]);
    assert!(ls.contains("/library/thumbs/u1/IMG_1.webp"), "{ls}");
    assert!(ls.contains("/library/encoded-video"), "{ls}");
    // The steps after a restore say what is not in the snapshot.
    let out = succeed(env.cmd().args([
        "app",
        "restore",
        "immich",
        "--target",
        install.to_str().unwrap(),
        "--files-only",
    ]));
    assert!(out.contains(&warning), "{out}");
    assert!(
        !out.contains("thumbs and encoded-video are not in the snapshot"),
        "{out}"
    );
}

/// An Immich installation in `env` whose database is `db` on the local PostgreSQL,
/// with `images` uploaded files (`IMG_i.jpg`, 50,000 bytes of `pseudo_random(i, ..)`);
/// gives the installation and the upload directory.
fn immich_on_postgres(env: &Env, db: &str, images: u64) -> (PathBuf, PathBuf) {
    let install = env.path("immich");
    let upload = install.join("library/upload/u1");
    fs::create_dir_all(&upload).unwrap();
    fs::write(
        install.join(".env"),
        format!(
            "UPLOAD_LOCATION=./library\nIMMICH_VERSION=v1.120.0\nDB_PASSWORD=postgres\n\
             DB_USERNAME=postgres\nDB_DATABASE_NAME={db}\nDB_HOSTNAME=127.0.0.1\nDB_PORT=5432\n"
        ),
    )
    .unwrap();
    for i in 0..images {
        fs::write(
            upload.join(format!("IMG_{i}.jpg")),
            pseudo_random(i, 50_000),
        )
        .unwrap();
    }
    (install, upload)
}

/// Restore journals left in `env`'s state directory (not the temporary file of one
/// whose writing a kill cut short).
fn open_journals(env: &Env) -> usize {
    fs::read_dir(env.path(".local/state/cairn/restores"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn sigkill_at_any_moment_of_a_postgresql_restore_never_leaves_it_mixed() {
    use crate::apps::pg_checksums;
    let env = Env::new();
    env.init();
    let db = TempPg::new("kill");
    psql(
        &db.0,
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL UNIQUE);
         CREATE TABLE assets (id int PRIMARY KEY, owner int NOT NULL REFERENCES users(id), \
             path text NOT NULL);
         INSERT INTO users SELECT g, 'u' || g || '@example.org' FROM generate_series(1, 50) g;
         INSERT INTO assets SELECT g, 1 + g % 50, repeat('library/upload/', 4) || g || '.jpg' \
             FROM generate_series(1, 200000) g;",
    );
    let (install, upload) = immich_on_postgres(&env, &db.0, 20);
    let snap = env.app_backup("immich", &install, &[]);
    let state = || {
        let mut files = BTreeMap::new();
        for p in files_under(&install) {
            files.insert(
                p.clone(),
                blake3::hash(&fs::read(&p).unwrap()).to_hex().to_string(),
            );
        }
        (files, pg_checksums(&db.0))
    };
    let at_snapshot = state();
    let change = || {
        psql(
            &db.0,
            "DELETE FROM assets WHERE id % 3 = 0; UPDATE users SET email = 'x' || email",
        );
        fs::write(upload.join("IMG_0.jpg"), b"edited").unwrap();
        fs::remove_file(upload.join("IMG_1.jpg")).unwrap();
    };
    change();
    let before = state();
    let restore = || {
        let mut c = env.cmd();
        c.args([
            "app",
            "restore",
            "immich",
            &snap,
            "--replace-existing",
            "--target",
        ])
        .arg(&install);
        c
    };
    let t = Instant::now();
    succeed(&mut restore());
    let full = t.elapsed();
    assert!(state() == at_snapshot);
    change();
    let open_journals = || open_journals(&env);
    let wait_for_clients = || {
        let t = Instant::now();
        loop {
            let n = psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND pid <> \
                     pg_backend_pid()",
                    db.0
                ),
            );
            if n.trim() == "0" {
                return;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "a client stays connected"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut killer = Killer {
        full,
        x: 0x853c49e6748fea9b,
    };
    let rounds = kill_rounds();
    let (mut landed, mut tries) = (0, 0);
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    while landed < rounds && tries < rounds * 3 {
        tries += 1;
        if !killer.run(&mut restore()) {
            assert!(state() == at_snapshot);
            change();
            continue;
        }
        landed += 1;
        wait_for_clients();
        let outcome = if open_journals() == 0 {
            let now = state();
            assert!(now == before || now == at_snapshot, "round {tries}: mixed");
            "no journal, never mixed"
        } else if landed % 2 == 1 {
            succeed(env.cmd().args(["app", "restore", "immich", "--rollback"]));
            assert!(state() == before, "round {tries}: after --rollback");
            "journal found, rolled back"
        } else {
            succeed(env.cmd().args(["app", "restore", "immich", "--finish"]));
            assert!(state() == at_snapshot, "round {tries}: after --finish");
            "journal found, finished"
        };
        assert_eq!(open_journals(), 0);
        *outcomes.entry(outcome).or_default() += 1;
        if state() == at_snapshot {
            change();
        }
    }
    eprintln!("kills landed: {landed} of {tries} runs; outcomes: {outcomes:?}");
    assert_eq!(landed, rounds, "too few kills landed mid-restore");
}

/// The moment the random kills above can hit only under load, made to happen every
/// time: the killed restore leaves its `DROP DATABASE` running on the server (a
/// transaction holding a lock on the database makes it wait), and `--finish` starts
/// while it waits. Finishing looks at the database while the drop goes through; it must
/// see the database gone and restore it, not fail on it.
#[test]
fn finish_restores_a_database_that_a_killed_restore_was_still_dropping() {
    use crate::apps::pg_checksums;
    let env = Env::new();
    env.init();
    let db = TempPg::new("held");
    psql(
        &db.0,
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);
         INSERT INTO users SELECT g, 'u' || g || '@example.org' FROM generate_series(1, 500) g;",
    );
    let (install, upload) = immich_on_postgres(&env, &db.0, 1);
    let snap = env.app_backup("immich", &install, &[]);
    let at_snapshot = pg_checksums(&db.0);
    psql(&db.0, "DELETE FROM users WHERE id % 2 = 0");
    assert_ne!(pg_checksums(&db.0), at_snapshot);

    // Locks on the database object that wait: the drop, then whoever connects after it.
    let waiting = || -> usize {
        psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'object' \
                 AND classid = 'pg_database'::regclass AND objid = \
                 (SELECT oid FROM pg_database WHERE datname = '{}')",
                db.0
            ),
        )
        .trim()
        .parse()
        .unwrap_or(0)
    };
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        let t = Instant::now();
        while !done() {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "waited too long for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // A transaction that holds a lock on the database, so that dropping it waits.
    let mut holder = Command::new("psql")
        .args(PSQL)
        .args(["--no-psqlrc", "--quiet", "--dbname=postgres"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut hold = holder.stdin.take().unwrap();
    use std::io::Write;
    writeln!(hold, "BEGIN; COMMENT ON DATABASE {} IS 'held';", db.0).unwrap();
    let held = || {
        psql(
            "postgres",
            &format!(
                "SELECT count(*) FROM pg_locks l JOIN pg_database d ON l.objid = d.oid \
                 WHERE l.locktype = 'object' AND l.granted AND d.datname = '{}' \
                 AND l.mode = 'ShareUpdateExclusiveLock'",
                db.0
            ),
        )
        .trim()
            == "1"
    };
    wait_until("the lock", &held);

    // The restore reaches its drop, which waits; it is killed there.
    let mut restore = env
        .cmd()
        .args([
            "app",
            "restore",
            "immich",
            &snap,
            "--replace-existing",
            "--target",
        ])
        .arg(&install)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the restore's drop", &|| waiting() == 1);
    restore.kill().unwrap();
    restore.wait().unwrap();

    // Finishing starts, and waits to look into the database behind the drop.
    let finish = env
        .cmd()
        .args(["app", "restore", "immich", "--finish"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("--finish to look into the database", &|| waiting() == 2);
    writeln!(hold, "COMMIT;").unwrap();
    drop(hold);
    holder.wait().unwrap();
    let out = finish.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "--finish failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pg_checksums(&db.0), at_snapshot);
    assert_eq!(
        fs::read(upload.join("IMG_0.jpg")).unwrap(),
        pseudo_random(0, 50_000)
    );
    assert_eq!(open_journals(&env), 0, "the journal is gone once finished");
}

/// A file created for the test where none was, removed at the end with the directories
/// created for it.
struct Placed(Vec<PathBuf>);

impl Drop for Placed {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = fs::remove_file(p).or_else(|_| fs::remove_dir(p));
        }
    }
}

#[test]
fn system_configuration_is_restored_on_request_and_below_another_target() {
    let conf = Path::new("/etc/apache2/sites-available/i-doit.conf");
    if !is_root() || conf.exists() {
        eprintln!("skipped: needs root and no i-doit.conf of a real Apache");
        return;
    }
    let mut placed = Vec::new();
    for d in ["/etc/apache2", "/etc/apache2/sites-available"] {
        if !Path::new(d).exists() {
            fs::create_dir(d).unwrap();
            placed.push(PathBuf::from(d));
        }
    }
    fs::write(conf, "<VirtualHost *:80>\n</VirtualHost>\n").unwrap();
    placed.push(conf.to_path_buf());
    let _placed = Placed(placed);
    let env = Env::new();
    env.init();
    let system = TempMaria::new("esys");
    let tenant = TempMaria::new("eten");
    let install = env.path("i-doit");
    idoit_install(&install, &system.0, &tenant.0);
    let snap = env.app_backup("idoit", &install, &[]);
    let elsewhere = env.path("moved");
    // Without the flag: the system configuration is left alone.
    let out = env.run(&[
        "app",
        "restore",
        "idoit",
        &snap,
        "--files-only",
        "--target",
        elsewhere.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moved_conf = elsewhere.join("etc/apache2/sites-available/i-doit.conf");
    assert!(!moved_conf.exists());
    // With it: restored too, below the other target, the live file untouched.
    fs::write(conf, "changed\n").unwrap();
    succeed(env.cmd().args([
        "app",
        "restore",
        "idoit",
        &snap,
        "--files-only",
        "--system-config",
        "--target",
        elsewhere.to_str().unwrap(),
    ]));
    assert_eq!(
        fs::read_to_string(&moved_conf).unwrap(),
        "<VirtualHost *:80>\n</VirtualHost>\n"
    );
    assert_eq!(fs::read_to_string(conf).unwrap(), "changed\n");
}

/// A PostgreSQL role owning a database, both dropped at the end whatever happens (the
/// database first: a role that owns one cannot be dropped).
struct TempRole(String, String);

impl Drop for TempRole {
    fn drop(&mut self) {
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.1),
            format!("DROP ROLE IF EXISTS {}", self.0),
        ] {
            let _ = Command::new("psql")
                .args(PSQL)
                .args(["--dbname=postgres", "--quiet", "--command", &sql])
                .output();
        }
    }
}

#[test]
fn immich_roles_come_back_with_the_database() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("roles");
    let role = TempRole(format!("{}_owner", db.0), db.0.clone());
    psql(
        "postgres",
        &format!(
            "CREATE ROLE {r} LOGIN PASSWORD 'owner-pw'; ALTER DATABASE {d} OWNER TO {r}",
            r = role.0,
            d = db.0
        ),
    );
    psql(
        &db.0,
        &format!(
            "CREATE TABLE assets (id int PRIMARY KEY, path text); \
             INSERT INTO assets VALUES (1, 'a.jpg'); ALTER TABLE assets OWNER TO {}",
            role.0
        ),
    );
    let install = env.path("immich");
    fs::create_dir_all(install.join("library/upload")).unwrap();
    fs::write(
        install.join(".env"),
        format!(
            "UPLOAD_LOCATION=./library\nIMMICH_VERSION=v1.120.0\nDB_PASSWORD=postgres\n\
             DB_USERNAME=postgres\nDB_DATABASE_NAME={}\nDB_HOSTNAME=127.0.0.1\nDB_PORT=5432\n",
            db.0
        ),
    )
    .unwrap();
    env.app_backup("immich", &install, &[]);
    let m = env.json(&["app", "show", "latest"]);
    assert_eq!(m["accounts"][0]["accounts"][0], role.0.as_str(), "{m}");
    // A new server: the database and its role are gone.
    psql(
        "postgres",
        &format!("DROP DATABASE {} WITH (FORCE); DROP ROLE {}", db.0, role.0),
    );
    succeed(env.cmd().args([
        "app",
        "restore",
        "immich",
        "--target",
        install.to_str().unwrap(),
        "--databases-only",
    ]));
    let owner = psql(
        &db.0,
        "SELECT tableowner FROM pg_tables WHERE tablename = 'assets'",
    );
    assert_eq!(owner.trim(), role.0);
    let login = psql(
        "postgres",
        &format!(
            "SELECT rolcanlogin FROM pg_roles WHERE rolname = '{}'",
            role.0
        ),
    );
    assert_eq!(login.trim(), "t");
}

#[test]
fn every_failure_says_what_state_the_application_is_in() {
    let env = Env::new();
    env.init();
    let install = env.path("kimai");
    kimai_sqlite_install(&install, 10);
    let snap = env.app_backup("kimai", &install, &[]);
    // Refused while planning, for reasons of every kind: each says nothing was changed.
    for args in [
        vec!["--database", "mariadb://root@127.0.0.1:1/kimai"],
        vec!["--database", "postgresql://postgres@127.0.0.1:1/kimai"],
    ] {
        let out = env
            .cmd()
            .args(["app", "restore", "kimai", &snap, "--replace-existing"])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        let last = stderr
            .trim_end()
            .lines()
            .last()
            .unwrap_or_default()
            .to_string();
        assert!(last.ends_with("nothing was changed"), "{stderr}");
    }
}

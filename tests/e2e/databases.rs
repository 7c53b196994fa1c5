//! Database dumps (`--postgres`, `--mariadb`, `--sqlite`) against the real servers on
//! 127.0.0.1: round trips through restore, failures that must commit nothing, and
//! passwords that must stay out of command lines.
//!
//! Every test works in throwaway databases named `cairn_e2e_<pid>_<n>_<test>`, dropped by
//! a guard even when the test fails. A server that cannot be reached fails the test.

use crate::common::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const PG_HOST: &str = "127.0.0.1";
const PG_PORT: &str = "5432";
const MARIA_HOST: &str = "127.0.0.1";
const MARIA_PORT: &str = "3306";
/// The password of the password test's database user (given in PGPASSWORD and MYSQL_PWD).
const SECRET: &str = "S3cr@t";

/// A unique name for a throwaway database (or user).
fn unique(test: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "cairn_e2e_{}_{}_{test}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs a command to the end with `stdin` as its input, panicking with its output if it
/// fails; returns stdout.
fn run_ok(mut cmd: Command, stdin: &[u8], what: &str) -> String {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    // Written from a thread: a large input must not deadlock against a full stdout pipe.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `cairn dump SNAPSHOT PATH | consumer`: asserts both ends succeed; returns the
/// consumer's stdout.
fn pipe_dump(env: &Env, snapshot: &str, path: &str, mut consumer: Command) -> String {
    let mut dump = env
        .cmd()
        .args(["dump", snapshot, path])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = consumer
        .stdin(Stdio::from(dump.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {consumer:?}: {e}"));
    // The command keeps its copy of the pipe's read end: drop it, or a consumer that
    // exits early leaves `cairn dump` blocked on a pipe nobody reads.
    let shown = format!("{consumer:?}");
    drop(consumer);
    let out = child.wait_with_output().unwrap();
    let d = dump.wait_with_output().unwrap();
    assert!(
        d.status.success(),
        "cairn dump {snapshot} {path} failed: {}",
        text(&d.stderr)
    );
    assert!(
        out.status.success(),
        "restore of {path} with {shown} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Writes an executable shell script.
fn script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A small file tree to back up beside the databases.
fn small_tree(env: &Env) -> PathBuf {
    let src = env.path("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("readme.txt"), b"backed up with the databases\n").unwrap();
    std::fs::write(src.join("sub/data.bin"), pseudo_random(41, 300_000)).unwrap();
    std::fs::write(src.join("sub/empty"), b"").unwrap();
    src
}

/// The snapshot `id` as `cairn snapshots --json` lists it.
fn snapshot(env: &Env, id: &str) -> serde_json::Value {
    let snaps = env.json(&["snapshots"]);
    snaps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("snapshot {id} not listed: {snaps}"))
        .clone()
}

fn snapshot_count(env: &Env) -> usize {
    env.json(&["snapshots"]).as_array().unwrap().len()
}

/// Runs `cairn backup ARGS --json`, asserts success, returns the snapshot id.
fn backup(env: &Env, args: &[&str]) -> String {
    let mut a = vec!["backup"];
    a.extend_from_slice(args);
    env.json(&a)["snapshot"].as_str().unwrap().to_string()
}

/// The one database entry of a snapshot's manifest.
fn manifest_db(env: &Env, id: &str) -> serde_json::Value {
    let snap = snapshot(env, id);
    let dbs = snap["manifest"]["databases"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifest.databases in {snap}"));
    assert_eq!(dbs.len(), 1, "{snap}");
    dbs[0].clone()
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

fn psql_cmd(db: &str) -> Command {
    let mut c = Command::new("psql");
    c.args([
        "--host",
        PG_HOST,
        "--port",
        PG_PORT,
        "--username",
        "postgres",
        "--no-password",
        "--no-psqlrc",
        "--tuples-only",
        "--no-align",
        "--quiet",
        "--set",
        "ON_ERROR_STOP=1",
        "--dbname",
        db,
    ]);
    c
}

/// Runs SQL in `db`; returns the output, trimmed.
fn psql(db: &str, sql: &str) -> String {
    run_ok(psql_cmd(db), sql.as_bytes(), &format!("psql on {db}"))
        .trim()
        .to_string()
}

/// Fails the test, clearly, when the PostgreSQL server is not there.
fn require_postgres() {
    let out = psql_cmd("postgres")
        .args(["--command", "SELECT 1"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "PostgreSQL at {PG_HOST}:{PG_PORT} (user postgres, trust) is not reachable; these \
             tests need it: {}",
            text(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run psql (PostgreSQL client tools are needed): {e}"),
    }
}

/// A throwaway PostgreSQL database, dropped when the guard goes.
struct PgDb {
    name: String,
}

impl PgDb {
    fn create(name: &str) -> PgDb {
        let db = PgDb {
            name: name.to_string(),
        };
        psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        db
    }

    fn drop_now(&self) {
        psql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
        );
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // Not psql(): no panic inside a panic.
        let _ = psql_cmd("postgres")
            .args([
                "--command",
                &format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
            ])
            .stdin(Stdio::null())
            .output();
    }
}

const PG_TABLES: [&str; 3] = ["parent", "child", "misc"];

const PG_SCHEMA_AND_DATA: &str = r#"
CREATE TABLE parent (
    id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    created timestamptz
);
CREATE TABLE child (
    id bigserial PRIMARY KEY,
    parent_id integer NOT NULL REFERENCES parent (id),
    payload bytea,
    doc jsonb,
    note text
);
CREATE SEQUENCE ticket_seq START 1000 INCREMENT 7;
CREATE TABLE misc (
    k text PRIMARY KEY,
    v text,
    ticket bigint DEFAULT nextval('ticket_seq'),
    amount numeric(12, 3),
    flags boolean[]
);
INSERT INTO parent (name, created)
SELECT 'parent ' || i || E' it''s "quoted"\nsecond line\ttab \\ backslash ünïcødé 日本 🦀',
       CASE WHEN i % 7 = 0 THEN NULL
            ELSE timestamptz '2020-01-01 00:00:00.123456+00' + i * interval '1 hour 3.5 seconds' END
FROM generate_series(1, 500) i;
INSERT INTO child (parent_id, payload, doc, note)
SELECT (i % 500) + 1,
       CASE WHEN i % 11 = 0 THEN NULL
            ELSE decode(md5(i::text) || '00ff5c270a0d22', 'hex') END,
       CASE WHEN i % 13 = 0 THEN NULL
            ELSE jsonb_build_object('i', i, 'tags', jsonb_build_array('a', 'b"c', E'tab\there', 'ü'),
                                    'nested', jsonb_build_object('x', i * 1.5, 'null', NULL)) END,
       CASE WHEN i % 5 = 0 THEN NULL
            ELSE E'note\\ with backslash and ''quote'' ' || repeat('x', i % 50) END
FROM generate_series(1, 3000) i;
INSERT INTO misc (k, v, amount, flags)
SELECT 'key-' || i, CASE WHEN i % 3 = 0 THEN NULL ELSE E'line1\nline2\r\n' || i END,
       i * 1.125, ARRAY[i % 2 = 0, NULL, true]
FROM generate_series(1, 200) i;
"#;

/// Per-table row count and checksum of the rows, and the sequence positions.
fn pg_fingerprint(db: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in PG_TABLES {
        let v = psql(
            db,
            &format!(
                "SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '-') \
                 FROM {t} t"
            ),
        );
        out.push((t.to_string(), v));
    }
    let seqs = psql(
        db,
        "SELECT string_agg(sequencename || '=' || coalesce(last_value::text, 'null'), ',' \
         ORDER BY sequencename) FROM pg_sequences",
    );
    out.push(("sequences".into(), seqs));
    out
}

/// What must be true of a restored copy beyond equal contents: the foreign key and the
/// identity still work.
fn pg_check_restored(db: &str, original_rows: &str) {
    assert_eq!(
        psql(
            db,
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND conrelid = 'child'::regclass"
        ),
        "1",
        "foreign key of child missing in {db}"
    );
    // The identity goes on after the restored rows.
    assert_eq!(
        psql(
            db,
            "INSERT INTO parent (name) VALUES ('after restore') RETURNING id"
        ),
        "501"
    );
    // The foreign key is enforced.
    let out = psql_cmd(db)
        .args(["--command", "INSERT INTO child (parent_id) VALUES (999999)"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out.stderr).contains("foreign key"),
        "an orphan child row was accepted in {db}: {}",
        text(&out.stderr)
    );
    assert!(original_rows.starts_with("3000 "), "{original_rows}");
}

#[test]
fn postgres_round_trip_custom_and_plain() {
    require_postgres();
    let env = Env::new();
    env.init();
    let src = small_tree(&env);
    let name = unique("pgrt");
    let db = PgDb::create(&name);
    psql(&name, PG_SCHEMA_AND_DATA);
    let before = pg_fingerprint(&name);
    assert!(before[1].1.starts_with("3000 "), "{before:?}");
    let url = format!("postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}");

    let custom = backup(&env, &[src.to_str().unwrap(), "--postgres", &url]);
    let plain = backup(
        &env,
        &[
            src.to_str().unwrap(),
            "--postgres",
            &url,
            "--postgres-format",
            "plain",
        ],
    );
    let custom_path = format!("/db/postgres/{name}.dump");
    let plain_path = format!("/db/postgres/{name}.sql");
    for (id, format, path) in [
        (&custom, "custom", &custom_path),
        (&plain, "plain", &plain_path),
    ] {
        let m = manifest_db(&env, id);
        assert_eq!(m["engine"], "postgresql", "{m}");
        assert_eq!(m["database"], name.as_str(), "{m}");
        assert_eq!(m["format"], format, "{m}");
        assert_eq!(m["path"], path.as_str(), "{m}");
        assert_eq!(m["location"], format!("{PG_HOST}:{PG_PORT}"), "{m}");
        let version = m["server_version"].as_str().unwrap();
        assert!(
            version.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "server_version {version:?}"
        );
        assert!(m["tool"].as_str().unwrap().contains("pg_dump"), "{m}");
        assert!(
            m["restore_hint"].as_str().unwrap().contains(path.as_str()),
            "{m}"
        );
    }
    // The custom dump is pg_dump's archive (uncompressed), the plain one SQL text.
    let raw = env
        .cmd()
        .args(["dump", &custom, &custom_path])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    assert!(raw.stdout.starts_with(b"PGDMP"), "not a custom archive");
    let sql = env.ok(&["dump", &plain, &plain_path]);
    assert!(
        sql.contains("CREATE TABLE public.child"),
        "plain dump:\n{sql:.2000}"
    );
    // The plain snapshot is the latest, and holds no custom dump.
    assert_eq!(env.ok(&["dump", "latest", &plain_path]), sql);
    assert!(!env.run(&["dump", "latest", &custom_path]).status.success());

    // The database is gone; restore each dump into a fresh, empty one.
    db.drop_now();
    let restored_custom = PgDb::create(&name);
    let mut pg_restore = Command::new("pg_restore");
    pg_restore.args([
        "--host",
        PG_HOST,
        "--port",
        PG_PORT,
        "--username",
        "postgres",
        "--no-password",
        &format!("--dbname={name}"),
        "--no-owner",
        "--exit-on-error",
    ]);
    pipe_dump(&env, &custom, &custom_path, pg_restore);
    assert_eq!(pg_fingerprint(&name), before, "custom dump restore differs");
    pg_check_restored(&name, &before[1].1);

    let plain_name = unique("pgrtp");
    let restored_plain = PgDb::create(&plain_name);
    pipe_dump(&env, "latest", &plain_path, psql_cmd(&plain_name));
    assert_eq!(
        pg_fingerprint(&plain_name),
        before,
        "plain dump restore differs"
    );
    pg_check_restored(&plain_name, &before[1].1);

    // The files backed up beside the dumps come back byte for byte.
    for id in [&custom, &plain] {
        let target = env.path(&format!("restore-{id}"));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        assert_same_tree(&src, &restored(&target, &src));
    }
    env.ok(&["check"]);
    drop(restored_plain);
    drop(restored_custom);
}

/// Two nights of a real database: the second night's dump is stored as deltas against
/// the first (a small fraction of the first night's bytes) and restores exactly.
#[test]
fn postgres_second_night_stores_little_and_restores_exactly() {
    require_postgres();
    let env = Env::new();
    env.init();
    let name = unique("pgnight");
    let db = PgDb::create(&name);
    psql(
        &name,
        "CREATE TABLE orders (id serial PRIMARY KEY, customer int, amount numeric(10,2), \
           note text);
         INSERT INTO orders (customer, amount, note)
           SELECT i % 997, (i * 37 % 10000) / 100.0, 'order ' || i || ' shipped to street ' || (i % 311)
           FROM generate_series(1, 40000) i;",
    );
    let sum = "SELECT count(*) || ' ' || md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o";
    let url = format!("postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}");
    let path = format!("/db/postgres/{name}.sql");
    let night = |env: &Env| {
        let id = backup(env, &["--postgres", &url, "--postgres-format", "plain"]);
        let stored = snapshot(env, &id)["summary"]["added"]["bytes_stored"]
            .as_u64()
            .unwrap();
        (id, stored)
    };
    let (_, first) = night(&env);
    // A night of an application's changes (updates to recent rows, a few deletes, new
    // rows), then the next dump.
    psql(
        &name,
        "UPDATE orders SET amount = amount + 1 WHERE id > 36000 AND id % 20 = 0;
         DELETE FROM orders WHERE id % 4999 = 5;
         INSERT INTO orders (customer, amount, note)
           SELECT i % 997, 1.00, 'new order ' || i FROM generate_series(1, 500) i;
         VACUUM orders;",
    );
    let want = psql(&name, sum);
    let (second_id, second) = night(&env);
    assert!(
        second * 4 < first,
        "the second night stored {second} bytes, the first {first}"
    );
    // Restore the second night into a fresh database.
    db.drop_now();
    let restored = PgDb::create(&name);
    pipe_dump(&env, &second_id, &path, psql_cmd(&name));
    assert_eq!(psql(&name, sum), want);
    env.ok(&["check", "--read-data"]);
    drop(restored);
}

// ---------------------------------------------------------------------------------------
// MariaDB

fn maria_cmd(user: &str) -> Command {
    let mut c = Command::new("mariadb");
    c.args([
        "--host",
        MARIA_HOST,
        "--port",
        MARIA_PORT,
        "--protocol=TCP",
        "--user",
        user,
        "--batch",
        "--skip-column-names",
        "--default-character-set=utf8mb4",
    ]);
    c
}

/// Runs SQL as root; returns the output, trimmed.
fn maria(sql: &str) -> String {
    run_ok(maria_cmd("root"), sql.as_bytes(), "mariadb")
        .trim()
        .to_string()
}

fn require_mariadb() {
    let out = maria_cmd("root")
        .args(["--execute", "SELECT 1"])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "MariaDB at {MARIA_HOST}:{MARIA_PORT} (root, no password) is not reachable; these \
             tests need it: {}",
            text(&o.stderr).trim()
        ),
        Err(e) => panic!("cannot run mariadb (MariaDB client tools are needed): {e}"),
    }
}

/// A throwaway MariaDB database (and user, if one was made), dropped when the guard goes.
struct MariaDb {
    name: String,
    user: Option<String>,
}

impl MariaDb {
    fn create(name: &str) -> MariaDb {
        let db = MariaDb {
            name: name.to_string(),
            user: None,
        };
        maria(&format!(
            "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        ));
        db
    }

    /// A user `name`@127.0.0.1 with `password` and every privilege on this database.
    fn add_user(&mut self, name: &str, password: &str) {
        self.user = Some(name.to_string());
        maria(&format!(
            "CREATE USER '{name}'@'127.0.0.1' IDENTIFIED BY '{password}'; \
             CREATE USER '{name}'@'localhost' IDENTIFIED BY '{password}'; \
             GRANT ALL PRIVILEGES ON `{db}`.* TO '{name}'@'127.0.0.1'; \
             GRANT ALL PRIVILEGES ON `{db}`.* TO '{name}'@'localhost';",
            db = self.name
        ));
    }

    fn cleanup_sql(&self) -> String {
        let mut sql = format!("DROP DATABASE IF EXISTS `{}`;", self.name);
        if let Some(u) = &self.user {
            sql.push_str(&format!(
                " DROP USER IF EXISTS '{u}'@'127.0.0.1'; DROP USER IF EXISTS '{u}'@'localhost';"
            ));
        }
        sql
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = maria_cmd("root")
            .args(["--execute", &self.cleanup_sql()])
            .stdin(Stdio::null())
            .output();
    }
}

/// A MariaDB string literal.
fn my_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn maria_schema_and_data(db: &str) -> String {
    let mut sql = format!(
        "USE `{db}`;
CREATE TABLE parent (
    id INT AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(300) NOT NULL,
    created DATETIME(6) NULL
) ENGINE=InnoDB;
CREATE TABLE child (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    parent_id INT NOT NULL,
    payload BLOB,
    doc JSON,
    note TEXT,
    CONSTRAINT child_parent FOREIGN KEY (parent_id) REFERENCES parent (id)
) ENGINE=InnoDB;
CREATE TABLE audit (
    id INT AUTO_INCREMENT PRIMARY KEY,
    child_id BIGINT NOT NULL
) ENGINE=InnoDB;
CREATE TRIGGER child_audit AFTER INSERT ON child
    FOR EACH ROW INSERT INTO audit (child_id) VALUES (NEW.id);
DELIMITER //
CREATE PROCEDURE count_children(IN p INT, OUT n INT)
BEGIN
    SELECT COUNT(*) INTO n FROM child WHERE parent_id = p;
END//
DELIMITER ;
"
    );
    let mut rows = Vec::new();
    for i in 1..=400u32 {
        let name = format!(
            "parent {i} it's \"quoted\"\nsecond line\ttab \\ backslash \\n not a newline ünïcødé 日本 🦀"
        );
        let created = if i % 7 == 0 {
            "NULL".to_string()
        } else {
            format!(
                "'2021-{:02}-{:02} {:02}:{:02}:{:02}.{:06}'",
                i % 12 + 1,
                i % 28 + 1,
                i % 24,
                i % 60,
                (i * 7) % 60,
                i * 1234 % 1_000_000
            )
        };
        rows.push(format!("({}, {created})", my_str(&name)));
    }
    sql.push_str(&format!(
        "INSERT INTO parent (name, created) VALUES {};\n",
        rows.join(",\n")
    ));
    let mut rows = Vec::new();
    for i in 1..=3000u32 {
        let payload = if i % 11 == 0 {
            "NULL".to_string()
        } else {
            // Every byte value turns up, NUL, quote and backslash among them.
            let mut b = pseudo_random(u64::from(i), (i as usize % 200) + 1);
            b.extend_from_slice(b"\0'\\\"\n\r\x1a");
            let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
            format!("X'{hex}'")
        };
        let doc = if i % 13 == 0 {
            "NULL".to_string()
        } else {
            my_str(&format!(
                r#"{{"i": {i}, "s": "quote \" backslash \\ ü", "tags": ["a", "b"], "n": null}}"#
            ))
        };
        let note = if i % 5 == 0 {
            "NULL".to_string()
        } else {
            my_str(&format!(
                "note {i} 'single' \\ {}",
                "x".repeat(i as usize % 50)
            ))
        };
        rows.push(format!("({}, {payload}, {doc}, {note})", i % 400 + 1));
    }
    sql.push_str(&format!(
        "INSERT INTO child (parent_id, payload, doc, note) VALUES {};\n",
        rows.join(",\n")
    ));
    sql
}

const MARIA_TABLES: [&str; 3] = ["parent", "child", "audit"];

/// Per table: row count, CHECKSUM TABLE, an md5 of the ordered rows, and the next
/// AUTO_INCREMENT value.
fn maria_fingerprint(db: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let columns = [
        (
            "parent",
            "CONCAT_WS('#', id, name, IFNULL(created, '<null>'))",
        ),
        (
            "child",
            "CONCAT_WS('#', id, parent_id, IFNULL(HEX(payload), '<null>'), IFNULL(doc, '<null>'), \
             IFNULL(note, '<null>'))",
        ),
        ("audit", "CONCAT_WS('#', id, child_id)"),
    ];
    for (t, row) in columns {
        let v = maria(&format!(
            "SET SESSION group_concat_max_len = 1073741824; \
             SELECT COUNT(*), IFNULL(MD5(GROUP_CONCAT({row} ORDER BY id SEPARATOR '|')), '-') \
             FROM `{db}`.{t}; \
             CHECKSUM TABLE `{db}`.{t}; \
             SELECT AUTO_INCREMENT FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{t}';"
        ));
        out.push((t.to_string(), v.replace(&format!("{db}."), "")));
    }
    assert_eq!(out.len(), MARIA_TABLES.len());
    out
}

#[test]
fn mariadb_round_trip() {
    require_mariadb();
    let env = Env::new();
    env.init();
    let src = small_tree(&env);
    let name = unique("myrt");
    let db = MariaDb::create(&name);
    run_ok(
        maria_cmd("root"),
        maria_schema_and_data(&name).as_bytes(),
        "creating the MariaDB test data",
    );
    let before = maria_fingerprint(&name);
    assert!(before[1].1.starts_with("3000\t"), "{before:?}");
    assert!(
        before[2].1.starts_with("3000\t"),
        "trigger did not fire: {before:?}"
    );

    let url = format!("mariadb://root@{MARIA_HOST}:{MARIA_PORT}/{name}");
    let id = backup(&env, &[src.to_str().unwrap(), "--mariadb", &url]);
    let path = format!("/db/mariadb/{name}.sql");
    let m = manifest_db(&env, &id);
    assert_eq!(m["engine"], "mariadb", "{m}");
    assert_eq!(m["database"], name.as_str(), "{m}");
    assert_eq!(m["format"], "plain", "{m}");
    assert_eq!(m["path"], path.as_str(), "{m}");
    assert_eq!(m["location"], format!("{MARIA_HOST}:{MARIA_PORT}"), "{m}");
    assert!(
        m["server_version"].as_str().unwrap().contains("MariaDB"),
        "{m}"
    );
    assert!(!m["tool"].as_str().unwrap().is_empty(), "{m}");

    // Gone. The dump names no database (so it loads into any): create it, load into it.
    maria(&format!("DROP DATABASE `{name}`"));
    assert_eq!(
        maria(&format!(
            "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"
        )),
        "0"
    );
    maria(&format!("CREATE DATABASE `{name}`"));
    let mut load = maria_cmd("root");
    load.arg(format!("--database={name}"));
    pipe_dump(&env, "latest", &path, load);
    assert_eq!(
        maria_fingerprint(&name),
        before,
        "restored database differs"
    );

    // The trigger and the procedure are back, and work.
    assert_eq!(
        maria(&format!(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{name}'"
        )),
        "child_audit"
    );
    assert_eq!(
        maria(&format!(
            "SELECT ROUTINE_NAME FROM information_schema.ROUTINES \
             WHERE ROUTINE_SCHEMA = '{name}' AND ROUTINE_TYPE = 'PROCEDURE'"
        )),
        "count_children"
    );
    assert_eq!(
        maria(&format!(
            "USE `{name}`; CALL count_children(2, @n); SELECT @n; \
             SELECT COUNT(*) FROM child WHERE parent_id = 2;"
        )),
        "8\n8"
    );
    assert_eq!(
        maria(&format!(
            "USE `{name}`; INSERT INTO child (parent_id) VALUES (1); \
             SELECT COUNT(*), MAX(child_id) FROM audit;"
        )),
        "3001\t3001"
    );
    // The foreign key is enforced.
    let out = maria_cmd("root")
        .args([
            "--execute",
            &format!("INSERT INTO `{name}`.child (parent_id) VALUES (999999)"),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success() && text(&out.stderr).contains("foreign key"),
        "an orphan child row was accepted: {}",
        text(&out.stderr)
    );

    let target = env.path("restore");
    env.ok(&["restore", &id, "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &restored(&target, &src));
    env.ok(&["check"]);
    drop(db);
}

// ---------------------------------------------------------------------------------------
// Failures and credentials

#[test]
fn failing_dump_commits_no_snapshot() {
    require_postgres();
    let env = Env::new();
    env.init();
    let src = small_tree(&env);
    let name = unique("pgfail");
    let _db = PgDb::create(&name);
    psql(
        &name,
        "CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);",
    );
    backup(&env, &[src.to_str().unwrap()]);

    // pg_dump starts writing, then fails; psql and `pg_dump --version` work.
    let wrapper = env.path("wrapper.sh");
    script(
        &wrapper,
        "#!/bin/sh\n\
         if [ \"$1\" = pg_dump ] && [ \"$2\" != --version ]; then\n\
         \x20 printf 'PGDMP partial archive bytes'\n\
         \x20 echo 'pg_dump: error: simulated failure in the middle' >&2\n\
         \x20 exit 3\n\
         fi\n\
         exec \"$@\"\n",
    );
    let url = format!("postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}");
    let out = env.run(&[
        "backup",
        src.to_str().unwrap(),
        "--postgres",
        &url,
        "--db-wrapper",
        wrapper.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert!(!out.status.success(), "backup succeeded: {err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("db/postgres/{name}.dump")),
        "stderr does not name the stream: {err}"
    );
    assert!(
        err.contains("simulated failure in the middle"),
        "stderr does not tell the failure: {err}"
    );
    assert_eq!(snapshot_count(&env), 1, "a snapshot was committed");
    env.ok(&["check"]);
    // The data left by the failed run is not referenced; a normal run still works.
    let id = backup(&env, &[src.to_str().unwrap(), "--postgres", &url]);
    assert_eq!(snapshot_count(&env), 2);
    assert!(env
        .cmd()
        .args(["dump", &id, &format!("/db/postgres/{name}.dump")])
        .output()
        .unwrap()
        .stdout
        .starts_with(b"PGDMP"));
    env.ok(&["check"]);
}

/// One logged call of the wrapper: its arguments and the two password variables.
#[derive(Debug)]
struct Call {
    args: Vec<String>,
    pgpassword: Option<String>,
    mysql_pwd: Option<String>,
}

fn parse_log(log: &str) -> Vec<Call> {
    let mut calls = Vec::new();
    for block in log.split("--- call\n").filter(|b| !b.is_empty()) {
        let mut c = Call {
            args: Vec::new(),
            pgpassword: None,
            mysql_pwd: None,
        };
        for line in block.lines() {
            if let Some(a) = line.strip_prefix("arg:") {
                c.args.push(a.to_string());
            } else if let Some(v) = line.strip_prefix("PGPASSWORD=") {
                c.pgpassword = Some(v.to_string());
            } else if let Some(v) = line.strip_prefix("MYSQL_PWD=") {
                c.mysql_pwd = Some(v.to_string());
            }
        }
        calls.push(c);
    }
    calls
}

#[test]
fn password_goes_in_the_environment_not_argv() {
    require_postgres();
    require_mariadb();
    let env = Env::new();
    env.init();
    let pg_name = unique("pgpw");
    let _pg = PgDb::create(&pg_name);
    psql(
        &pg_name,
        "CREATE TABLE t (x text); INSERT INTO t VALUES ('pg row');",
    );
    let my_name = unique("mypw");
    let mut my = MariaDb::create(&my_name);
    // root has no password here; a user of our own has one.
    let user = unique("u");
    my.add_user(&user, SECRET);
    maria(&format!(
        "CREATE TABLE `{my_name}`.t (x TEXT); INSERT INTO `{my_name}`.t VALUES ('maria row');"
    ));

    let log = env.path("calls.log");
    let wrapper = env.path("wrapper.sh");
    script(
        &wrapper,
        &format!(
            "#!/bin/sh\n\
             {{\n\
             \x20 echo '--- call'\n\
             \x20 for a in \"$@\"; do echo \"arg:$a\"; done\n\
             \x20 if [ -n \"${{PGPASSWORD+x}}\" ]; then echo \"PGPASSWORD=$PGPASSWORD\"; fi\n\
             \x20 if [ -n \"${{MYSQL_PWD+x}}\" ]; then echo \"MYSQL_PWD=$MYSQL_PWD\"; fi\n\
             }} >> '{}'\n\
             exec \"$@\"\n",
            log.display()
        ),
    );
    // A password in a URL on the command line is refused (the process list would show
    // it): each server's password is in its tool's variable, one backup per server so
    // that each tool is seen with its own variable only.
    let pg_url = format!("postgresql://postgres@{PG_HOST}:{PG_PORT}/{pg_name}");
    let my_url = format!("mariadb://{user}@{MARIA_HOST}:{MARIA_PORT}/{my_name}");
    let backup = |flag: &str, url: &str, variable: &str| -> String {
        let out = env
            .cmd()
            .env(variable, SECRET)
            .args(["backup", flag, url, "--db-wrapper"])
            .arg(&wrapper)
            .arg("--json")
            .output()
            .unwrap();
        assert!(out.status.success(), "backup failed: {}", text(&out.stderr));
        for s in [text(&out.stdout), text(&out.stderr)] {
            assert!(!s.contains(SECRET), "{s}");
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["snapshot"].as_str().unwrap().to_string()
    };
    let pg_id = backup("--postgres", &pg_url, "PGPASSWORD");
    let my_id = backup("--mariadb", &my_url, "MYSQL_PWD");
    // The dumps were made (MariaDB only lets the user in with the password).
    let pg_dump = env
        .cmd()
        .args(["dump", &pg_id, &format!("/db/postgres/{pg_name}.dump")])
        .output()
        .unwrap()
        .stdout;
    assert!(pg_dump.starts_with(b"PGDMP"));
    assert!(pg_dump.windows(6).any(|w| w == b"pg row"));
    let my_dump = env.ok(&["dump", &my_id, &format!("/db/mariadb/{my_name}.sql")]);
    assert!(my_dump.contains("maria row"), "{my_dump:.2000}");
    // The snapshots record where, never the password.
    let snaps = env.ok(&["snapshots", "--json"]);
    assert!(!snaps.contains("S3cr"), "{snaps}");

    let calls = parse_log(&std::fs::read_to_string(&log).unwrap());
    for c in &calls {
        for a in &c.args {
            assert!(
                !a.contains(SECRET) && !a.contains("S3cr%40t") && !a.contains("S3cr"),
                "password in the arguments of {c:?}"
            );
        }
    }
    let program = |c: &Call| c.args.first().cloned().unwrap_or_default();
    let is_version = |c: &Call| c.args.iter().any(|a| a == "--version");
    let pg_dump_call = calls
        .iter()
        .find(|c| program(c) == "pg_dump" && !is_version(c))
        .unwrap_or_else(|| panic!("no pg_dump call logged: {calls:?}"));
    let maria_dump_call = calls
        .iter()
        .find(|c| program(c).ends_with("dump") && program(c) != "pg_dump" && !is_version(c))
        .unwrap_or_else(|| panic!("no mariadb-dump call logged: {calls:?}"));
    let mut checked = 0;
    for c in calls.iter().filter(|c| !is_version(c)) {
        match program(c).as_str() {
            "pg_dump" | "psql" | "pg_dumpall" => {
                assert_eq!(c.pgpassword.as_deref(), Some(SECRET), "{c:?}");
                assert_eq!(c.mysql_pwd, None, "{c:?}");
                checked += 1;
            }
            "mariadb" | "mysql" | "mariadb-dump" | "mysqldump" => {
                assert_eq!(c.mysql_pwd.as_deref(), Some(SECRET), "{c:?}");
                assert_eq!(c.pgpassword, None, "{c:?}");
                checked += 1;
            }
            other => panic!("unexpected program {other} through the wrapper: {c:?}"),
        }
    }
    // psql and mariadb (versions), pg_dump and mariadb-dump.
    assert!(checked >= 4, "{calls:?}");
    assert!(pg_dump_call.args.iter().any(|a| a == "--username=postgres"));
    assert!(maria_dump_call
        .args
        .iter()
        .any(|a| a == &format!("--user={user}")));
    drop(my);
}

// ---------------------------------------------------------------------------------------
// SQLite

const SQLITE_WRITER: &str = r#"
import os, sqlite3, sys, time
path, started, stop = sys.argv[1], sys.argv[2], sys.argv[3]
c = sqlite3.connect(path, timeout=60, isolation_level=None)
n = 0
while not os.path.exists(stop):
    c.execute("BEGIN IMMEDIATE")
    c.execute("INSERT INTO rows (v) VALUES (?)", ("row %d %s" % (n, "x" * (n % 300)),))
    c.execute("UPDATE total SET n = n + 1")
    c.execute("COMMIT")
    n += 1
    if n == 200:
        open(started, "w").close()
print(n)
"#;

const SQLITE_CHECK: &str = r#"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
ok = c.execute("PRAGMA integrity_check").fetchone()[0]
rows = c.execute("SELECT count(*) FROM rows").fetchone()[0]
total = c.execute("SELECT n FROM total").fetchone()[0]
print(ok, rows, total)
"#;

/// Kills the writer (started by this test) if the test fails before stopping it.
struct Writer(Option<Child>);

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}"))
}

#[test]
fn sqlite_copy_while_written() {
    let env = Env::new();
    env.init();
    let db = env.path("app.sqlite");
    let out = python(&[
        "-c",
        "import sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1])\n\
         assert c.execute('PRAGMA journal_mode=WAL').fetchone()[0] == 'wal'\n\
         c.executescript('CREATE TABLE rows (id INTEGER PRIMARY KEY, v TEXT); \
         CREATE TABLE total (n INTEGER); INSERT INTO total VALUES (0);')\n\
         c.close()\n",
        db.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let started = env.path("writer.started");
    let stop = env.path("writer.stop");
    let mut writer = Writer(Some(
        Command::new("python3")
            .args([
                "-c",
                SQLITE_WRITER,
                db.to_str().unwrap(),
                started.to_str().unwrap(),
                stop.to_str().unwrap(),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    let t0 = Instant::now();
    while !started.exists() {
        if let Some(status) = writer.0.as_mut().unwrap().try_wait().unwrap() {
            panic!("the writer stopped early: {status}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the writer did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut seen = Vec::new();
    for i in 0..4 {
        let id = backup(&env, &["--sqlite", db.to_str().unwrap()]);
        let m = manifest_db(&env, &id);
        assert_eq!(m["engine"], "sqlite", "{m}");
        assert_eq!(m["format"], "file", "{m}");
        assert_eq!(m["path"], "/db/sqlite/app.sqlite", "{m}");
        let out = env
            .cmd()
            .args(["dump", &id, "/db/sqlite/app.sqlite"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let copy = env.path(&format!("copy{i}.sqlite"));
        std::fs::write(&copy, &out.stdout).unwrap();
        let check = python(&["-c", SQLITE_CHECK, copy.to_str().unwrap()]);
        assert!(
            check.status.success(),
            "copy {i} cannot be read: {}",
            text(&check.stderr)
        );
        let s = text(&check.stdout);
        let f: Vec<&str> = s.split_whitespace().collect();
        assert_eq!(f.len(), 3, "{s}");
        assert_eq!(f[0], "ok", "copy {i} fails the integrity check: {s}");
        assert_eq!(f[1], f[2], "copy {i} is not one consistent state: {s}");
        let rows: u64 = f[1].parse().unwrap();
        assert!(rows >= 200, "copy {i} misses committed rows: {s}");
        seen.push(rows);
        std::thread::sleep(Duration::from_millis(150));
    }
    std::fs::write(&stop, b"").unwrap();
    let out = writer.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the writer failed while being backed up: {}",
        text(&out.stderr)
    );
    let written: u64 = text(&out.stdout).trim().parse().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.iter().all(|&n| n <= written), "{seen:?} > {written}");
    assert!(
        seen.first() < seen.last(),
        "the copies did not follow the writer: {seen:?}"
    );
    env.ok(&["check"]);
}

// ---------------------------------------------------------------------------------------
// Unreachable

#[test]
fn unreachable_database_fails_before_storing() {
    require_postgres();
    require_mariadb();
    let env = Env::new();
    env.init();
    let src = small_tree(&env);
    backup(&env, &[src.to_str().unwrap()]);
    std::fs::write(src.join("new.txt"), pseudo_random(5, 100_000)).unwrap();
    let packs = files_under(&env.repo.join("data"));
    assert!(!packs.is_empty());
    let missing = unique("nodb");
    let cases = [
        (
            "--postgres",
            format!("postgresql://postgres@{PG_HOST}:{PG_PORT}/{missing}"),
            "PostgreSQL",
            format!("{PG_HOST}:{PG_PORT}"),
        ),
        // Nothing listens on port 1.
        (
            "--postgres",
            format!("postgresql://postgres@{PG_HOST}:1/postgres"),
            "PostgreSQL",
            format!("{PG_HOST}:1"),
        ),
        (
            "--mariadb",
            format!("mariadb://root@{MARIA_HOST}:{MARIA_PORT}/{missing}"),
            "MariaDB",
            format!("{MARIA_HOST}:{MARIA_PORT}"),
        ),
        (
            "--sqlite",
            env.path("none.sqlite").to_str().unwrap().to_string(),
            "SQLite",
            env.path("none.sqlite").to_str().unwrap().to_string(),
        ),
    ];
    for (flag, url, engine, location) in &cases {
        let out = env.run(&["backup", src.to_str().unwrap(), flag, url]);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{flag} {url} succeeded: {err}");
        assert!(
            err.contains(engine) && err.contains(location.as_str()),
            "{flag} {url}: the message does not name {engine} at {location}: {err}"
        );
        assert_eq!(snapshot_count(&env), 1, "{flag} {url} committed a snapshot");
        assert_eq!(
            files_under(&env.repo.join("data")),
            packs,
            "{flag} {url} stored data"
        );
    }
    assert!(!env.path("none.sqlite").exists());
    env.ok(&["check"]);
}

// ---------------------------------------------------------------------------------------
// A whole PostgreSQL server: pg_dumpall, on throwaway clusters of our own

/// A PostgreSQL cluster of its own in a temporary directory, on a free loopback port,
/// run as `nobody` (the server refuses to run as root); stopped and removed on drop.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
}

/// A PostgreSQL server program: on PATH, else in Debian's versioned directory.
fn pg_bin(name: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(p) = std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
    {
        return p;
    }
    let mut found: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|v| v.path().join("bin").join(name))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("{name} not found: install Debian's postgresql package"))
}

fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(pg_bin(program));
    c
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("cairn-pg-")
            .tempdir()
            .unwrap();
        let st = Command::new("chown")
            .args(["nobody:nogroup"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success());
        let data = dir.path().join("data");
        let out = as_nobody("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb (PostgreSQL server binaries) must be installed");
        assert!(out.status.success(), "initdb: {}", text(&out.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let out = as_nobody("pg_ctl")
            .args(["-w", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                dir.path().display()
            ))
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {}", text(&out.stderr));
        Cluster { dir, port }
    }

    fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-qAt",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .arg(format!("--port={}", self.port))
            .arg(format!("--dbname={db}"))
            .arg("--command")
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "psql: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_nobody("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

#[test]
fn whole_postgres_server_round_trip_with_pg_dumpall() {
    let env = Env::new();
    env.init();
    let a = Cluster::start();
    a.psql("postgres", "CREATE ROLE app LOGIN PASSWORD 'x'");
    a.psql("postgres", "CREATE DATABASE shop OWNER app");
    a.psql("postgres", "CREATE DATABASE wiki");
    a.psql(
        "shop",
        "CREATE TABLE items (id serial PRIMARY KEY, name text, price numeric(10,2)); \
         INSERT INTO items (name, price) SELECT 'item ' || g, g * 1.25 FROM generate_series(1, 2000) g; \
         ALTER TABLE items OWNER TO app",
    );
    a.psql(
        "wiki",
        "CREATE TABLE pages (title text PRIMARY KEY, body text); \
         INSERT INTO pages SELECT 'p' || g, repeat('wiki text ', g % 50) FROM generate_series(1, 500) g",
    );
    let sum = |c: &Cluster, db: &str, table: &str| {
        c.psql(
            db,
            &format!("SELECT count(*) || ' ' || md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {table} t"),
        )
    };
    let before = (sum(&a, "shop", "items"), sum(&a, "wiki", "pages"));

    let out = env.json(&["backup", "--postgres", &a.url()]);
    let id = out["snapshot"].as_str().unwrap().to_string();
    let snaps = env.json(&["snapshots"]);
    let m = &snaps[0]["manifest"]["databases"][0];
    assert_eq!(m["database"], "*", "{m}");
    assert_eq!(m["path"], "/db/postgres/all.sql", "{m}");
    assert!(
        m["tool"].as_str().unwrap().contains("pg_dumpall")
            || m["tool"].as_str().unwrap().contains("PostgreSQL"),
        "{m}"
    );
    let dump = env.ok(&["dump", &id, "/db/postgres/all.sql"]);
    assert!(
        dump.contains("DROP DATABASE IF EXISTS shop;"),
        "not a --clean --if-exists dump"
    );
    assert!(
        dump.contains("CREATE ROLE app;"),
        "roles are part of a whole-server dump"
    );

    // Into a fresh server, as the manifest's restore hint says: psql on `postgres`.
    let b = Cluster::start();
    let hint = m["restore_hint"].as_str().unwrap();
    assert!(hint.contains("| psql --dbname=postgres"), "{hint}");
    let mut load = Command::new("psql");
    load.args([
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-q",
        "--dbname=postgres",
    ])
    .arg(format!("--port={}", b.port));
    pipe_dump(&env, &id, "/db/postgres/all.sql", load);
    assert_eq!((sum(&b, "shop", "items"), sum(&b, "wiki", "pages")), before);
    assert_eq!(
        b.psql(
            "shop",
            "SELECT tableowner FROM pg_tables WHERE tablename = 'items'"
        )
        .trim(),
        "app"
    );
}

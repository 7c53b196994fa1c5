//! The Kestra front-end through the binary, against a real PostgreSQL: back up an
//! installation (database, internal storage, metadata export), destroy the storage and
//! the database, restore, and compare every file and every table.

use crate::common::*;
use std::fs;
use std::path::Path;

/// Every table's rows as one checksum per table (md5 of the ordered rows), and the
/// queue's sequence.
fn checksums(db: &str) -> Vec<String> {
    let tables = psql(
        db,
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    );
    let mut out: Vec<String> = tables
        .lines()
        .filter(|t| !t.is_empty())
        .map(|t| {
            let sum = psql(
                db,
                &format!(
                    "SELECT count(*) || ' rows ' || coalesce(md5(string_agg(t::text, E'\\n' \
                     ORDER BY t::text)), '-') FROM public.\"{t}\" t"
                ),
            );
            format!("{t} {}", sum.trim())
        })
        .collect();
    out.push(format!(
        "queues_offset_seq {}",
        psql(db, "SELECT last_value FROM queues_offset_seq").trim()
    ));
    out
}

/// The stand-in for Kestra's enterprise `kestra` command: `--version`, and `backups
/// create FULL|TENANT` writing its export into the internal storage and printing the
/// vendor's log lines (summary, then the URI).
const KESTRA: &str = r#"#!/bin/sh
here=$(cd "$(dirname "$0")/.." && pwd)
case "$1" in
  --version) echo 'Kestra 0.19.0-e2e'; exit 0 ;;
  backups) ;;
  *) echo "unexpected: $*" >&2; exit 2 ;;
esac
[ "$2" = create ] || exit 2
printf '%s\n' "$@" > "$here/last-args"
[ -f application.yaml ] || { echo 'no application.yaml in the working directory' >&2; exit 3; }
[ -e "$here/fail-export" ] && { echo 'ERROR io.kestra.ee.backup.BackupService boom' >&2; exit 4; }
kind=$(echo "$3" | tr 'A-Z' 'a-z')
ts=20240917163312
mkdir -p "$here/storage/main/backups/$kind"
summary='Backup summary: [BINDING: 3, BLUEPRINT: 1, FLOW: 13, GROUP: 1, NAMESPACE: 1, ROLE: 6, SECRET: 1, SECURITY_INTEGRATION: 0, SETTING: 1, TENANT: 1, TENANT_ACCESS: 2, TRIGGER: 2, USER: 1]'
printf 'KESTRA-BACKUP %s 0.19.0-e2e\n%s\n' "$3" "$summary" > "$here/storage/main/backups/$kind/backup-$ts.kestra"
echo "2024-09-17 16:33:12,706 INFO  create       io.kestra.ee.backup.BackupService $summary"
echo "2024-09-17 16:33:12,706 INFO  create       io.kestra.ee.backup.BackupService Backup instance created in 508 ms"
echo "Backup created: kestra:///backups/$kind/backup-$ts.kestra"
"#;

/// A Kestra installation as the container image lays it out (configuration, local
/// internal storage, the `kestra` command), with its database in PostgreSQL.
fn kestra_install(root: &Path, db: &str) {
    for d in [
        "bin",
        "storage/company/team/_files",
        "storage/company/team/hello-world/executions/exec1/tasks/hello/t1",
        "storage/main/company/team/hello-world/executions/exec2/trigger/schedule",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(
        root.join("application.yaml"),
        format!(
            "datasources:\n  postgres:\n    url: jdbc:postgresql://127.0.0.1:5432/{db}\n    \
             driverClassName: org.postgresql.Driver\n    username: postgres\n    \
             password: ${{KESTRA_E2E_UNSET_PASSWORD:}}\n\
             kestra:\n  server:\n    basic-auth:\n      enabled: false\n  repository:\n    \
             type: postgres\n  queue:\n    type: postgres\n  storage:\n    type: local\n    \
             local:\n      base-path: \"storage\"\n"
        ),
    )
    .unwrap();
    fs::write(
        root.join("storage/company/team/_files/script.py"),
        "print('hello from kestra')\n",
    )
    .unwrap();
    fs::write(
        root.join("storage/company/team/hello-world/executions/exec1/tasks/hello/t1/output.ion"),
        pseudo_random(7, 150_000),
    )
    .unwrap();
    fs::write(
        root.join(
            "storage/main/company/team/hello-world/executions/exec2/trigger/schedule/data.csv",
        ),
        "id,name\n1,ünïcödé\n2,\"quoted, comma\"\n",
    )
    .unwrap();
    let exe = root.join("bin/kestra");
    fs::write(&exe, KESTRA).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    psql(
        db,
        r#"
        CREATE TYPE queue_type AS ENUM ('io.kestra.core.models.executions.Execution',
            'io.kestra.core.models.flows.FlowInterface', 'io.kestra.core.models.executions.LogEntry');
        CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50),
            description varchar(200) NOT NULL, script varchar(1000) NOT NULL, success bool NOT NULL);
        CREATE TABLE flows (key varchar(250) NOT NULL PRIMARY KEY, value jsonb NOT NULL,
            deleted bool GENERATED ALWAYS AS (CAST(value ->> 'deleted' AS bool)) STORED,
            id varchar(100) GENERATED ALWAYS AS (value ->> 'id') STORED,
            namespace varchar(150) GENERATED ALWAYS AS (value ->> 'namespace') STORED,
            source_code text NOT NULL);
        CREATE INDEX flows_namespace ON flows (namespace);
        CREATE TABLE executions (key varchar(250) NOT NULL PRIMARY KEY, value jsonb NOT NULL,
            flow_key varchar(250) NOT NULL REFERENCES flows (key),
            state_current varchar(50) GENERATED ALWAYS AS (value #>> '{state,current}') STORED,
            start_date timestamptz NOT NULL);
        CREATE TABLE logs (key varchar(30) NOT NULL PRIMARY KEY, value jsonb NOT NULL,
            execution_key varchar(250) REFERENCES executions (key) ON DELETE CASCADE,
            "timestamp" timestamptz NOT NULL,
            message text GENERATED ALWAYS AS (value ->> 'message') STORED);
        CREATE TABLE queues ("offset" bigserial PRIMARY KEY, type queue_type NOT NULL,
            key varchar(250) NOT NULL, value jsonb NOT NULL, consumers varchar(250)[]);
        INSERT INTO flyway_schema_history VALUES (1, '1.1', 'init', 'V1_1__init.sql', true),
            (2, '1.2', 'logs index', 'V1_2__logs.sql', true);
        INSERT INTO flows (key, value, source_code)
            SELECT 'company.team_flow' || i || '_1',
                jsonb_build_object('id', 'flow' || i, 'namespace', 'company.team', 'revision', 1,
                    'deleted', i = 5, 'tasks', jsonb_build_array(jsonb_build_object('id', 'hello',
                    'type', 'io.kestra.plugin.core.log.Log', 'message', 'Hällo "q" ''s'))),
                E'id: flow' || i || E'\nnamespace: company.team\ntasks: []\n'
            FROM generate_series(1, 5) i;
        INSERT INTO executions (key, value, flow_key, start_date)
            SELECT 'exec' || i, jsonb_build_object('id', 'exec' || i, 'state',
                    jsonb_build_object('current', CASE WHEN i % 7 = 0 THEN 'FAILED' ELSE 'SUCCESS' END)),
                'company.team_flow' || (1 + i % 5) || '_1',
                timestamptz '2024-09-17 16:00:00+00' + i * interval '1 minute'
            FROM generate_series(1, 2000) i;
        INSERT INTO logs (key, value, execution_key, "timestamp")
            SELECT 'log' || i, jsonb_build_object('message', 'line ' || i || E'\ttab\nnewline'),
                'exec' || (1 + i % 2000),
                timestamptz '2024-09-17 16:00:00+00' + i * interval '1 second'
            FROM generate_series(1, 5000) i;
        INSERT INTO queues (type, key, value, consumers)
            SELECT 'io.kestra.core.models.executions.Execution', 'exec' || i,
                jsonb_build_object('id', 'exec' || i), ARRAY['executor', 'indexer']
            FROM generate_series(1, 300) i;
        "#,
    );
}

#[test]
fn kestra_with_postgres_backs_up_and_restores_exactly() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("kestra");
    let install = env.path("kestra");
    fs::create_dir_all(&install).unwrap();
    let install = install.canonicalize().unwrap();
    kestra_install(&install, &db.0);
    let before_tables = checksums(&db.0);
    // Five tables and the queue's sequence.
    assert_eq!(before_tables.len(), 6, "{before_tables:?}");

    let snap = env.app_backup("kestra", &install, &[]);
    // What the front-end keeps: everything but the application's code (bin/), taken
    // after the backup since the metadata export writes into the storage.
    let kept = |root: &Path| {
        let mut d = describe(root);
        d.retain(|k, _| !k.starts_with(b"bin"));
        d
    };
    let before_files = kept(&install);
    let export = ".cairn/kestra-backup/backup-20240917163312.kestra";
    assert!(
        install.join(export).is_file(),
        "no copy of the export: {:?}",
        before_files.keys().map(|k| os(k)).collect::<Vec<_>>()
    );
    assert!(install
        .join("storage/main/backups/full/backup-20240917163312.kestra")
        .is_file());

    let m = env.json(&["app", "show", "latest"]);
    assert_eq!(m["snapshot"], snap.as_str());
    assert_eq!(m["app"], "kestra");
    assert_eq!(m["app_version"], "Kestra 0.19.0-e2e");
    let dbm = &m["databases"][0];
    assert_eq!(dbm["engine"], "postgresql", "{m}");
    assert_eq!(dbm["database"], db.0.as_str());
    assert_eq!(dbm["format"], "custom");
    let tables: Vec<(String, u64)> = dbm["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["rows"].as_u64().unwrap(),
            )
        })
        .collect();
    for want in [
        ("public.executions", 2000),
        ("public.logs", 5000),
        ("public.queues", 300),
        ("public.flows", 5),
        ("public.flyway_schema_history", 2),
    ] {
        assert!(
            tables.contains(&(want.0.to_string(), want.1)),
            "{want:?} not in {tables:?}"
        );
    }
    let files: Vec<&str> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    let abs = |rel: &str| install.join(rel).display().to_string();
    for want in ["storage", "application.yaml", ".cairn/kestra-backup"] {
        assert!(files.contains(&abs(want).as_str()), "{want}: {files:?}");
    }
    assert!(
        m["post_restore"]
            .to_string()
            .contains("kestra backups restore"),
        "{m}"
    );
    // The export and its summary are in the snapshot.
    let ls = env.ok(&["ls", &snap]);
    assert!(ls.contains(&abs(export)), "{ls}");
    let summary = env.ok(&["dump", &snap, &abs(".cairn/kestra-backup/summary.txt")]);
    assert!(summary.contains("Backup summary: [BINDING: 3"), "{summary}");
    assert!(
        summary.contains("Backup created: kestra:///backups/full/backup-20240917163312.kestra"),
        "{summary}"
    );
    let snaps = env.json(&["snapshots"]);
    let last = snaps.as_array().unwrap().last().unwrap();
    assert_eq!(last["app"], "kestra");
    assert!(last["tags"].as_array().unwrap().contains(&"kestra".into()));

    // Disaster: the internal storage, the export and the database are gone.
    fs::remove_dir_all(install.join("storage")).unwrap();
    fs::remove_dir_all(install.join(".cairn")).unwrap();
    psql("postgres", &format!("DROP DATABASE {} WITH (FORCE)", db.0));

    let out = env.run(&["app", "restore", "kestra"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("version matches"), "{stderr}");
    assert!(stderr.contains("creating it"), "{stderr}");
    assert!(stderr.contains("health check passed"), "{stderr}");
    // The vendor's order: the database, then the internal storage.
    let loaded = stderr.find(": loading /").unwrap();
    let files = stderr.find("files: restoring").unwrap();
    assert!(loaded < files, "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("start Kestra"), "{stdout}");

    assert_eq!(kept(&install), before_files, "files differ after restore");
    assert_eq!(
        checksums(&db.0),
        before_tables,
        "tables differ after restore"
    );

    // Verify loads the dump into a scratch database and finds every table and count.
    let v = env.json(&["app", "verify", "kestra"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["databases"][0]["tables"], 5, "{v}");
    let scratch = format!("cairn_verify_{}_0", &snap[..12]);
    let left = psql(
        "postgres",
        &format!("SELECT datname FROM pg_database WHERE datname = '{scratch}'"),
    );
    assert!(
        left.trim().is_empty(),
        "scratch database left behind: {left}"
    );
}

#[test]
fn a_failing_metadata_export_commits_nothing_and_still_runs_the_after_hooks() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("kestra_fail");
    let install = env.path("kestra");
    fs::create_dir_all(&install).unwrap();
    kestra_install(&install, &db.0);
    fs::write(install.join("fail-export"), "").unwrap();
    let started = env.path("started");
    let out = env.run(&[
        "app",
        "backup",
        "kestra",
        "--path",
        install.to_str().unwrap(),
        "--after",
        &format!("touch {}", started.display()),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("kestra backups create failed"), "{stderr}");
    assert!(stderr.contains("boom"), "{stderr}");
    assert!(
        started.exists(),
        "the after hook did not run after a failure"
    );
    let snaps = env.json(&["snapshots"]);
    assert!(
        snaps.as_array().unwrap().is_empty(),
        "a snapshot was committed: {snaps}"
    );
}

/// Kestra's storage is often an absolute path elsewhere (e.g. `/var/lib/kestra/storage`).
/// Regression: `app restore` once brought back only what lies below the installation
/// directory, and still exited 0.
#[test]
fn kestra_storage_outside_the_installation_comes_back() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("kestra_outside");
    let install = env.path("kestra");
    fs::create_dir_all(&install).unwrap();
    let install = install.canonicalize().unwrap();
    kestra_install(&install, &db.0);
    // The storage moves out of the installation, to an absolute base path.
    let outside = install.parent().unwrap().join("kestra-storage");
    fs::rename(install.join("storage"), &outside).unwrap();
    let config = fs::read_to_string(install.join("application.yaml")).unwrap();
    fs::write(
        install.join("application.yaml"),
        config.replace(
            "base-path: \"storage\"",
            &format!("base-path: \"{}\"", outside.display()),
        ),
    )
    .unwrap();
    fs::remove_file(install.join("bin/kestra")).unwrap();
    let before = describe(&outside);
    env.json(&[
        "app",
        "backup",
        "kestra",
        "--path",
        install.to_str().unwrap(),
    ]);
    let m = env.json(&["app", "show", "latest"]);
    let files = m["files"].to_string();
    assert!(files.contains(&outside.display().to_string()), "{files}");
    fs::remove_dir_all(&outside).unwrap();
    env.ok(&["app", "restore", "kestra", "--replace-existing"]);
    assert!(
        outside.is_dir(),
        "the storage outside the installation was not restored"
    );
    assert_eq!(describe(&outside), before);
}

#[test]
fn kestra_metadata_export_and_its_encryption_come_from_the_config() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("kenc");
    let install = env.path("kestra");
    fs::create_dir_all(&install).unwrap();
    let install = install.canonicalize().unwrap();
    kestra_install(&install, &db.0);
    let key = env.path("kestra-key");
    fs::write(&key, "s3cr3t-backup-key").unwrap();
    let config = env.path("cairn.toml");
    let backup = |table: &str| {
        fs::write(
            &config,
            format!(
                "[[app]]\nname = \"kestra\"\npath = \"{}\"\n{table}",
                install.display()
            ),
        )
        .unwrap();
        let mut c = env.cmd();
        c.arg("--config")
            .arg(&config)
            .args(["app", "backup", "kestra"]);
        succeed(&mut c);
        fs::read_to_string(install.join("last-args")).unwrap()
    };
    // A tenant's export, encrypted with the key of the file (read when the hook runs).
    let args = backup(&format!(
        "metadata-export = \"TENANT:acme\"\nmetadata-encryption-key-file = \"{}\"\n",
        key.display()
    ));
    assert_eq!(
        args,
        "backups\ncreate\nTENANT\n--tenant=acme\n--encryption-key=s3cr3t-backup-key\n"
    );
    // The key is in no snapshot's manifest.
    let m = env.json(&["app", "show", "latest"]);
    assert!(!m.to_string().contains("s3cr3t"), "{m}");
    // Without encryption.
    let args = backup("metadata-encryption = false\n");
    assert_eq!(args, "backups\ncreate\nFULL\n--no-encryption\n");
    // The default: Kestra's embedded key.
    let args = backup("");
    assert_eq!(args, "backups\ncreate\nFULL\n");
}

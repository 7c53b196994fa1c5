//! Application front-ends through the binary, against a real MariaDB: back up an
//! installation, destroy it, restore it, and compare every file and every table.

use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Every table's rows, as one checksum per table.
pub(crate) fn checksums(db: &str) -> Vec<String> {
    let tables = mariadb(
        Some(db),
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() \
         ORDER BY 1",
    );
    tables
        .lines()
        .map(|t| {
            let sum = mariadb(Some(db), &format!("CHECKSUM TABLE `{t}` EXTENDED"));
            let rows = mariadb(Some(db), &format!("SELECT COUNT(*) FROM `{t}`"));
            format!(
                "{t} {} rows {}",
                sum.split('\t').nth(1).unwrap_or("?").trim(),
                rows.trim()
            )
        })
        .collect()
}

/// A Kimai installation as the real one lays it out, with its database in MariaDB.
fn kimai_install(root: &Path, db: &str) {
    for d in [
        "config/packages",
        "var/data",
        "var/plugins/DemoBundle",
        "var/invoices",
        "bin",
    ] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(
        root.join(".env"),
        format!(
            "APP_ENV=prod\nAPP_SECRET=change_this\n\
             DATABASE_URL=mysql://root@127.0.0.1:3306/{db}?charset=utf8mb4&serverVersion=10.11\n"
        ),
    )
    .unwrap();
    fs::write(
        root.join("config/packages/local.yaml"),
        "kimai:\n  timesheet:\n    rounding:\n      default: {begin: 15}\n",
    )
    .unwrap();
    fs::write(
        root.join("var/plugins/DemoBundle/DemoBundle.php"),
        "<?php // demo\n",
    )
    .unwrap();
    fs::write(
        root.join("var/invoices/company.html.twig"),
        "<h1>{{ model.invoiceNumber }}</h1>\n",
    )
    .unwrap();
    fs::write(root.join("var/data/export.pdf"), pseudo_random(3, 200_000)).unwrap();
    let console = root.join("bin/console");
    fs::write(
        &console,
        "#!/bin/sh\n[ \"$1\" = kimai:version ] && echo 'Kimai 2.13.0' && exit 0\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&console, fs::Permissions::from_mode(0o755)).unwrap();
    mariadb(
        Some(db),
        "CREATE TABLE kimai2_users (id INT AUTO_INCREMENT PRIMARY KEY, username VARCHAR(180) \
             NOT NULL UNIQUE, alias VARCHAR(60) NULL, avatar BLOB NULL) ENGINE=InnoDB;
         CREATE TABLE kimai2_customers (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(150) \
             NOT NULL, comment TEXT NULL) ENGINE=InnoDB;
         CREATE TABLE kimai2_projects (id INT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT \
             NULL, name VARCHAR(150) NOT NULL, FOREIGN KEY (customer_id) REFERENCES \
             kimai2_customers (id) ON DELETE CASCADE) ENGINE=InnoDB;
         CREATE TABLE kimai2_timesheet (id INT AUTO_INCREMENT PRIMARY KEY, user INT NOT NULL, \
             project_id INT NOT NULL, start_time DATETIME NOT NULL, duration INT NULL, \
             description TEXT NULL, FOREIGN KEY (user) REFERENCES kimai2_users (id), \
             FOREIGN KEY (project_id) REFERENCES kimai2_projects (id)) ENGINE=InnoDB;
         CREATE TABLE migration_versions (version VARCHAR(191) PRIMARY KEY, executed_at \
             DATETIME NULL, execution_time INT NULL) ENGINE=InnoDB;
         INSERT INTO migration_versions VALUES ('DoctrineMigrations\\\\Version20230126002049', \
             '2024-01-01 00:00:00', 12), ('DoctrineMigrations\\\\Version20240214061246', NULL, NULL);
         INSERT INTO kimai2_users (username, alias, avatar) VALUES ('anna', 'Änna \"A\" O''Neil', \
             x'00ff10'), ('bob', NULL, NULL);
         INSERT INTO kimai2_customers (name, comment) VALUES ('Acme', 'line1\\nline2\\ttab'), \
             ('Globex', NULL);
         INSERT INTO kimai2_projects (customer_id, name) VALUES (1, 'Website'), (2, 'App');",
    );
    let mut rows = Vec::new();
    for i in 0..3000 {
        rows.push(format!(
            "({}, {}, '2024-03-{:02} 09:00:00', {}, 'task {i} – ünïcödé')",
            1 + i % 2,
            1 + i % 2,
            1 + i % 28,
            i * 60
        ));
    }
    mariadb(
        Some(db),
        &format!(
            "INSERT INTO kimai2_timesheet (user, project_id, start_time, duration, description) \
             VALUES {}",
            rows.join(",")
        ),
    );
}

#[test]
fn kimai_with_mariadb_backs_up_and_restores_exactly() {
    let env = Env::new();
    env.init();
    let db = TempMaria::new("kimai");
    let install = env.path("kimai");
    kimai_install(&install, &db.0);
    // What the front-end keeps: everything but the application's code (bin/), which a
    // restore takes from a fresh install of the same version.
    let kept = |root: &Path| {
        let mut d = describe(root);
        d.retain(|k, _| !k.starts_with(b"bin"));
        d
    };
    let before_files = kept(&install);
    let before_tables = checksums(&db.0);
    assert!(before_tables.len() == 5, "{before_tables:?}");

    let listed = env.json(&["app", "list", &format!("kimai={}", install.display())]);
    assert_eq!(
        listed["installs"][0]["databases"][0]["reachable"], true,
        "{listed}"
    );

    let snap = env.app_backup("kimai", &install, &[]);
    let m = env.json(&["app", "show", "latest"]);
    assert_eq!(m["snapshot"], snap.as_str());
    assert_eq!(m["app"], "kimai");
    assert_eq!(m["app_version"], "Kimai 2.13.0");
    let dbm = &m["databases"][0];
    assert_eq!(dbm["engine"], "mariadb");
    assert_eq!(dbm["database"], db.0.as_str());
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
    assert!(
        tables.contains(&("kimai2_timesheet".into(), 3000)),
        "{tables:?}"
    );
    assert!(
        tables.contains(&("migration_versions".into(), 2)),
        "{tables:?}"
    );
    let snaps = env.json(&["snapshots"]);
    let last = snaps.as_array().unwrap().last().unwrap();
    assert_eq!(last["app"], "kimai");
    assert!(last["tags"].as_array().unwrap().contains(&"kimai".into()));

    // Disaster: the installation and the database are gone.
    fs::remove_dir_all(&install).unwrap();
    mariadb(None, &format!("DROP DATABASE {}", db.0));

    // Restore: the files to where they were (the .env with them), then the database
    // where the .env says, created since it is missing.
    let out = env.run(&["app", "restore", "kimai"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("creating it"), "{stderr}");
    assert!(stderr.contains("health check passed"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("bin/console cache:clear"), "{stdout}");

    assert_eq!(kept(&install), before_files, "files differ after restore");
    assert_eq!(
        checksums(&db.0),
        before_tables,
        "tables differ after restore"
    );

    // Verify loads the dump into a scratch database and finds every table and count.
    let v = env.json(&["app", "verify", "kimai"]);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["databases"][0]["tables"], 5);
    let left = mariadb(None, "SHOW DATABASES LIKE 'cairn_verify_%'");
    assert!(
        left.trim().is_empty(),
        "scratch database left behind: {left}"
    );
}

#[test]
fn restore_protects_a_database_that_holds_data() {
    let env = Env::new();
    env.init();
    let db = TempMaria::new("kimai_protect");
    let install = env.path("kimai");
    kimai_install(&install, &db.0);
    let snap = env.app_backup("kimai", &install, &[]);
    // Life goes on after the backup.
    mariadb(
        Some(&db.0),
        "DELETE FROM kimai2_timesheet WHERE id > 2500; \
         INSERT INTO kimai2_customers (name) VALUES ('Initech')",
    );
    let now = checksums(&db.0);

    let local = install.join("config/packages/local.yaml");
    fs::write(&local, "kimai: {changed: true}\n").unwrap();

    // Another Kimai version installed: said before anything changes, and refused.
    let console = install.join("bin/console");
    let original = fs::read_to_string(&console).unwrap();
    fs::write(&console, original.replace("Kimai 2.13.0", "Kimai 2.14.1")).unwrap();
    let out = env.run(&["app", "restore", "kimai", &snap, "--replace-existing"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("version mismatch: snapshot Kimai 2.13.0, installed Kimai 2.14.1"),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(checksums(&db.0), now);
    assert_eq!(
        fs::read_to_string(&local).unwrap(),
        "kimai: {changed: true}\n"
    );
    fs::write(&console, original).unwrap();

    // A dry run says what would happen and changes nothing.
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
        stderr.contains("will be replaced after a restore point"),
        "{stderr}"
    );
    assert!(stderr.contains("installed version matches"), "{stderr}");
    assert_eq!(checksums(&db.0), now);
    assert_eq!(
        fs::read_to_string(&local).unwrap(),
        "kimai: {changed: true}\n"
    );

    // Without consent, a database with tables is not touched, and neither are the files.
    let out = env.run(&["app", "restore", "kimai", &snap]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--database") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(checksums(&db.0), now);
    assert_eq!(
        fs::read_to_string(&local).unwrap(),
        "kimai: {changed: true}\n"
    );

    // With consent, but the load fails half-way (a client that dies after reading a
    // little, once): the restore point is loaded back.
    let fake = env.path("fakebin");
    fs::create_dir_all(&fake).unwrap();
    let marker = env.path("failed-once");
    let real = Command::new("sh")
        .args(["-c", "command -v mariadb"])
        .output()
        .unwrap()
        .stdout;
    let real = String::from_utf8(real).unwrap();
    fs::write(
        fake.join("mariadb"),
        format!(
            "#!/bin/sh\ncase \"$*\" in *--execute*) exec {real} \"$@\";; esac\n\
             if [ ! -e {m} ]; then touch {m}; head -c 20000 >/dev/null; \
             echo 'ERROR 1064: broken' >&2; exit 1; fi\nexec {real} \"$@\"\n",
            real = real.trim(),
            m = marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(fake.join("mariadb"), fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let out = env
        .cmd()
        .env("PATH", &path)
        .args([
            "app",
            "restore",
            "kimai",
            &snap,
            "--replace-existing",
            "--databases-only",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(marker.exists(), "the failing client was not used");
    assert!(stderr.contains("restore point"), "{stderr}");
    assert!(
        stderr.contains("everything the restore touched is as it was before")
            && stderr.contains(": as it was before the restore"),
        "{stderr}"
    );
    assert_eq!(
        checksums(&db.0),
        now,
        "the database is not as it was before"
    );
    let points = env.json(&["snapshots", "--tag", "restore-point"]);
    assert_eq!(points.as_array().unwrap().len(), 1, "{points}");

    // With consent and a working client, the snapshot's state comes back.
    env.ok(&[
        "app",
        "restore",
        "kimai",
        &snap,
        "--replace-existing",
        "--databases-only",
    ]);
    let restored = checksums(&db.0);
    assert_ne!(restored, now);
    assert!(
        restored
            .iter()
            .any(|t| t.starts_with("kimai2_timesheet ") && t.ends_with(" rows 3000")),
        "{restored:?}"
    );
}

#[test]
fn a_failing_app_backup_commits_nothing_and_still_runs_the_after_hooks() {
    let env = Env::new();
    env.init();
    let db = TempMaria::new("kimai_fail");
    let install = env.path("kimai");
    kimai_install(&install, &db.0);
    let wrapper = env.path("wrapper.sh");
    fs::write(
        &wrapper,
        "#!/bin/sh\ncase \"$1 $2\" in\n  *dump\\ --version) ;;\n  mariadb-dump*|mysqldump*) echo partial; exit 2 ;;\nesac\nexec \"$@\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    let stopped = env.path("stopped");
    let started = env.path("started");
    let out = env.run(&[
        "app",
        "backup",
        "kimai",
        "--path",
        install.to_str().unwrap(),
        "--db-wrapper",
        wrapper.to_str().unwrap(),
        "--before",
        &format!("touch {}", stopped.display()),
        "--after",
        &format!("touch {}", started.display()),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("db/mariadb/{}.sql", db.0)),
        "{stderr}"
    );
    assert!(stopped.exists(), "the before hook did not run");
    assert!(
        started.exists(),
        "the after hook did not run after a failure"
    );
    let snaps = env.json(&["snapshots"]);
    assert!(
        snaps.as_array().unwrap().is_empty(),
        "a snapshot was committed: {snaps}"
    );
    env.ok(&["check"]);
}

/// Every table's rows as `table count md5`.
pub(crate) fn pg_checksums(db: &str) -> Vec<String> {
    let tables = psql(
        db,
        "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
         WHERE schemaname = 'public' ORDER BY 1",
    );
    tables
        .lines()
        .map(|t| {
            let v = psql(
                db,
                &format!(
                    "SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY \
                     x::text)), '-') FROM {t} x"
                ),
            );
            format!("{t} {}", v.trim())
        })
        .collect()
}

#[test]
fn immich_with_postgres_backs_up_originals_and_restores_exactly() {
    let env = Env::new();
    env.init();
    let db = TempPg::new("immich");
    let install = env.path("immich");
    let upload = install.join("library");
    let user = "6c3e2a4e-5a0b-4b8e-9d1c-1f2e3d4c5b6a";
    for d in [
        "upload",
        "profile",
        "library",
        "thumbs",
        "encoded-video",
        "backups",
    ] {
        fs::create_dir_all(upload.join(d).join(user)).unwrap();
    }
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
    fs::write(
        install.join("docker-compose.yml"),
        "name: immich\nservices: {}\n",
    )
    .unwrap();
    psql(
        &db.0,
        "CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL UNIQUE, \
             \"profileImagePath\" text NOT NULL DEFAULT '');
         CREATE TABLE assets (id uuid PRIMARY KEY, \"ownerId\" uuid NOT NULL REFERENCES users(id) \
             ON DELETE CASCADE, \"originalPath\" text NOT NULL, \"fileCreatedAt\" timestamptz, \
             \"exifInfo\" jsonb, checksum bytea NOT NULL);
         CREATE TABLE version_history (id serial PRIMARY KEY, \"createdAt\" timestamptz NOT NULL \
             DEFAULT now(), version text NOT NULL);
         INSERT INTO version_history (version) VALUES ('1.119.1'), ('1.120.0');",
    );
    psql(
        &db.0,
        &format!(
            "INSERT INTO users VALUES ('{user}', 'ann@example.org', \
             'library/profile/{user}/avatar.jpg')"
        ),
    );
    let mut inserts = Vec::new();
    for i in 0..40u64 {
        let rel = format!("library/upload/{user}/{:02}/IMG_{i:04}.jpg", i % 4);
        let path = install.join(&rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, pseudo_random(100 + i, 20_000 + (i as usize) * 997)).unwrap();
        fs::write(
            upload.join(format!("thumbs/{user}/IMG_{i:04}.webp")),
            pseudo_random(500 + i, 3000),
        )
        .unwrap();
        inserts.push(format!(
            "(gen_random_uuid(), '{user}', '{}', '2024-05-{:02} 10:00:00+00', \
             '{{\"make\": \"Fuji\", \"iso\": {}}}', decode(md5('{i}'), 'hex'))",
            path.display(),
            1 + i % 28,
            100 * (i + 1)
        ));
    }
    psql(
        &db.0,
        &format!("INSERT INTO assets VALUES {}", inserts.join(",")),
    );
    fs::write(
        upload.join(format!("profile/{user}/avatar.jpg")),
        pseudo_random(9, 5000),
    )
    .unwrap();
    fs::write(
        upload.join("backups/immich-db-backup-1.sql.gz"),
        pseudo_random(7, 9000),
    )
    .unwrap();

    let before_tables = pg_checksums(&db.0);
    let originals = |root: &Path| {
        let mut d = describe(root);
        d.retain(|k, _| {
            let k = String::from_utf8_lossy(k);
            !k.starts_with("library/thumbs")
                && !k.starts_with("library/encoded-video")
                && !k.starts_with("library/backups")
        });
        d
    };
    let before_files = originals(&install);

    let snap = env.app_backup("immich", &install, &[]);
    let m = env.json(&["app", "show", &snap]);
    assert_eq!(m["app"], "immich");
    assert_eq!(m["app_version"], "v1.120.0");
    assert_eq!(m["databases"][0]["format"], "plain");
    // Each snapshot's version against the installed one, as Immich's own page shows.
    let list = env.json(&["app", "snapshots", "immich"]);
    assert_eq!(list[0]["compatibility"], "match", "{list}");
    let env_file = install.join(".env");
    let text = fs::read_to_string(&env_file).unwrap();
    fs::write(&env_file, text.replace("v1.120.0", "v1.121.0")).unwrap();
    let list = env.json(&["app", "snapshots", "immich"]);
    assert_eq!(
        list[0]["compatibility"]["different"],
        serde_json::json!(["v1.120.0", "v1.121.0"]),
        "{list}"
    );
    let ls = env.ok(&["ls", &snap]);
    assert!(ls.contains("/library/upload/"), "{ls}");
    assert!(
        !ls.contains("/library/thumbs"),
        "generated files were backed up:\n{ls}"
    );

    // Disaster, then restore: files, a fresh database, the health check.
    fs::remove_dir_all(&install).unwrap();
    psql("postgres", &format!("DROP DATABASE {} WITH (FORCE)", db.0));
    let out = env.run(&[
        "app",
        "restore",
        "immich",
        "--target",
        install.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("health check passed"), "{stderr}");

    assert_eq!(originals(&install), before_files, "originals differ");
    assert_eq!(pg_checksums(&db.0), before_tables, "tables differ");
    // Every asset the database knows is on disk again.
    for p in psql(&db.0, "SELECT \"originalPath\" FROM assets").lines() {
        assert!(Path::new(p).is_file(), "{p} missing after restore");
    }
    let v = env.json(&[
        "app",
        "verify",
        "immich",
        "--path",
        install.to_str().unwrap(),
    ]);
    assert_eq!(v["ok"], true, "{v}");
}

/// An i-doit installation: the directory, `src/config.inc.php` naming the system
/// database, whose `isys_mandator` names one tenant database with foreign keys.
pub(crate) fn idoit_install(root: &Path, system: &str, tenant: &str) {
    for d in ["src", "upload/files", "imports", "temp/cache"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(
        root.join("src/config.inc.php"),
        format!(
            "<?php\n$g_db_system = [\n    \"type\" => \"mysql\",\n    \"host\" => \"127.0.0.1\",\n    \
             \"port\" => 3306,\n    \"user\" => \"root\",\n    \"pass\" => \"\",\n    \
             \"name\" => \"{system}\",\n];\n$g_crypto_hash = \"0123abcd\";\n"
        ),
    )
    .unwrap();
    fs::write(
        root.join("src/version.inc.php"),
        "<?php\n$g_product_info = ['version' => '25', 'step' => '', 'type' => 'OPEN'];\n",
    )
    .unwrap();
    fs::write(
        root.join("index.php"),
        "<?php require 'src/bootstrap.inc.php';\n",
    )
    .unwrap();
    fs::write(
        root.join("upload/files/manual.pdf"),
        pseudo_random(21, 150_000),
    )
    .unwrap();
    fs::write(root.join("imports/servers.csv"), "name;ip\nweb1;10.0.0.1\n").unwrap();
    fs::write(root.join("temp/cache/x.cache"), "regenerated\n").unwrap();
    mariadb(
        Some(system),
        &format!(
            "CREATE TABLE isys_mandator (isys_mandator__id INT AUTO_INCREMENT PRIMARY KEY, \
                 isys_mandator__title VARCHAR(255), isys_mandator__db_name VARCHAR(255), \
                 isys_mandator__db_host VARCHAR(255), isys_mandator__db_port INT, \
                 isys_mandator__db_user VARCHAR(255), isys_mandator__db_pass VARCHAR(255), \
                 isys_mandator__active INT) ENGINE=InnoDB;
             INSERT INTO isys_mandator VALUES (1, 'Tenant', '{tenant}', '', NULL, '', '', 1);
             CREATE TABLE isys_settings (isys_settings__key VARCHAR(255) PRIMARY KEY, \
                 isys_settings__value TEXT) ENGINE=InnoDB;
             INSERT INTO isys_settings VALUES ('system.timezone', 'Europe/Berlin');"
        ),
    );
    let mut objs = Vec::new();
    let mut globals = Vec::new();
    for i in 1..=500 {
        objs.push(format!("({i}, {}, 'Object {i} – Ω')", 1 + i % 3));
        globals.push(format!("({i}, {i}, 'described \\'{i}\\'')"));
    }
    mariadb(
        Some(tenant),
        &format!(
            "CREATE TABLE isys_obj_type (isys_obj_type__id INT PRIMARY KEY, \
                 isys_obj_type__const VARCHAR(255)) ENGINE=InnoDB;
             INSERT INTO isys_obj_type VALUES (1, 'C__OBJTYPE__SERVER'), \
                 (2, 'C__OBJTYPE__CLIENT'), (3, 'C__OBJTYPE__SWITCH');
             CREATE TABLE isys_obj (isys_obj__id INT PRIMARY KEY, isys_obj__isys_obj_type__id \
                 INT NOT NULL, isys_obj__title VARCHAR(255), FOREIGN KEY \
                 (isys_obj__isys_obj_type__id) REFERENCES isys_obj_type (isys_obj_type__id)) \
                 ENGINE=InnoDB;
             CREATE TABLE isys_catg_global_list (isys_catg_global_list__id INT PRIMARY KEY, \
                 isys_catg_global_list__isys_obj__id INT NOT NULL, \
                 isys_catg_global_list__description TEXT, FOREIGN KEY \
                 (isys_catg_global_list__isys_obj__id) REFERENCES isys_obj (isys_obj__id) \
                 ON DELETE CASCADE) ENGINE=InnoDB;
             INSERT INTO isys_obj VALUES {};
             INSERT INTO isys_catg_global_list VALUES {};",
            objs.join(","),
            globals.join(",")
        ),
    );
}

#[test]
fn idoit_with_tenants_backs_up_and_restores_over_foreign_keys() {
    let env = Env::new();
    env.init();
    let system = TempMaria::new("idsys");
    let tenant = TempMaria::new("idten");
    let install = env.path("i-doit");
    idoit_install(&install, &system.0, &tenant.0);
    let kept = |root: &Path| {
        let mut d = describe(root);
        d.retain(|k, _| !k.starts_with(b"temp"));
        d
    };
    let before_files = kept(&install);
    let before = (checksums(&system.0), checksums(&tenant.0));
    let stopped = env.path("apache-stopped");
    let out = env.run(&[
        "app",
        "backup",
        "idoit",
        "--path",
        install.to_str().unwrap(),
        "--before",
        &format!("touch {}", stopped.display()),
        "--after",
        &format!("rm {}", stopped.display()),
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("is on the machine being backed up"),
        "{stderr}"
    );
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let snap = out["snapshot"].as_str().unwrap().to_string();
    assert!(!stopped.exists(), "the after hook did not run");
    let m = env.json(&["app", "show", &snap]);
    assert_eq!(m["app_version"], "25");
    let names: Vec<_> = m["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["database"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec![system.0.clone(), tenant.0.clone()]);

    // The tenant changed since; restore over it: a restore point, drop, load.
    mariadb(
        Some(&tenant.0),
        "DELETE FROM isys_obj WHERE isys_obj__id > 400; \
         UPDATE isys_obj_type SET isys_obj_type__const = 'changed'",
    );
    let out = env.run(&[
        "app",
        "restore",
        "idoit",
        &snap,
        "--replace-existing",
        "--databases-only",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!((checksums(&system.0), checksums(&tenant.0)), before);

    // Disaster: directory and both databases gone; everything comes back.
    fs::remove_dir_all(&install).unwrap();
    mariadb(
        None,
        &format!("DROP DATABASE {}; DROP DATABASE {}", system.0, tenant.0),
    );
    let out = env.run(&["app", "restore", "idoit", &snap]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(kept(&install), before_files, "files differ");
    assert!(
        !install.join("temp/cache/x.cache").exists(),
        "temp/ was backed up"
    );
    assert_eq!((checksums(&system.0), checksums(&tenant.0)), before);
    let v = env.json(&["app", "verify", "idoit", &snap]);
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn kimai_with_sqlite_restores_the_file_consistently() {
    let env = Env::new();
    env.init();
    let install = env.path("kimai");
    for d in ["config/packages", "var/data", "var/plugins"] {
        fs::create_dir_all(install.join(d)).unwrap();
    }
    fs::write(
        install.join(".env"),
        "DATABASE_URL=sqlite:///%kernel.project_dir%/var/data/kimai.sqlite\n",
    )
    .unwrap();
    fs::write(install.join("var/data/export.csv"), "a;b\n1;2\n").unwrap();
    let db = install.join("var/data/kimai.sqlite");
    let py = |code: &str| {
        let out = Command::new("python3")
            .arg("-c")
            .arg(code)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    py(&format!(
        "import sqlite3; c = sqlite3.connect('{}'); c.execute('pragma journal_mode=wal'); \
         c.execute('create table kimai2_users (id integer primary key, name text)'); \
         c.execute('create table migration_versions (version text primary key)'); \
         c.executemany('insert into kimai2_users (name) values (?)', \
         [('user %d' % i,) for i in range(300)]); \
         c.execute(\"insert into migration_versions values ('Version20240101')\"); c.commit()",
        db.display()
    ));
    let dump_rows = |p: &Path| {
        py(&format!(
            "import sqlite3; c = sqlite3.connect('{}'); \
             print(c.execute('select count(*), group_concat(name) from kimai2_users').fetchone())",
            p.display()
        ))
    };
    let before = dump_rows(&db);
    let snap = env.app_backup("kimai", &install, &[]);
    let ls = env.ok(&["ls", &snap]);
    assert!(ls.contains("/db/sqlite/kimai.sqlite"), "{ls}");
    assert!(
        !ls.contains("/var/data/kimai.sqlite"),
        "the live file was copied raw:\n{ls}"
    );
    let m = env.json(&["app", "show", &snap]);
    assert_eq!(m["databases"][0]["engine"], "sqlite");
    assert_eq!(m["databases"][0]["tables"][0]["rows"], 300);

    // The file is damaged; the restore replaces it (with consent), keeping a restore point.
    fs::write(&db, b"garbage").unwrap();
    let out = env.run(&["app", "restore", "kimai", &snap, "--databases-only"]);
    assert!(
        !out.status.success(),
        "a garbage file counts as data to protect"
    );
    fs::remove_file(&db).unwrap();
    let out = env.run(&["app", "restore", "kimai", &snap]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(dump_rows(&db), before);
    assert_eq!(
        fs::read_to_string(install.join("var/data/export.csv")).unwrap(),
        "a;b\n1;2\n"
    );
    let v = env.json(&["app", "verify", "kimai"]);
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn postgres_row_counts_match_the_dump_while_the_application_writes() {
    // Counts and dump read one exported snapshot: verify finds them equal even though a
    // writer inserted rows all through the backup.
    let env = Env::new();
    env.init();
    let db = TempPg::new("busy");
    let install = env.path("kimai");
    fs::create_dir_all(install.join("var/data")).unwrap();
    fs::write(
        install.join(".env"),
        format!(
            "DATABASE_URL=postgresql://postgres@127.0.0.1:5432/{}\n",
            db.0
        ),
    )
    .unwrap();
    psql(
        &db.0,
        "CREATE TABLE kimai2_timesheet (id serial PRIMARY KEY, note text); \
         INSERT INTO kimai2_timesheet (note) SELECT 'n' || g FROM generate_series(1, 20000) g",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, name) = (stop.clone(), db.0.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                psql(&name, "INSERT INTO kimai2_timesheet (note) VALUES ('live')");
                n += 1;
            }
            n
        })
    };
    let snap = env.app_backup("kimai", &install, &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let inserted = writer.join().unwrap();
    assert!(inserted > 0, "the writer never ran");
    let m = env.json(&["app", "show", &snap]);
    assert_eq!(m["databases"][0]["counts"], "in the dump's snapshot", "{m}");
    let v = env.json(&["app", "verify", "kimai", &snap]);
    assert_eq!(v["ok"], true, "{v}");
}

#[test]
fn mariadb_row_counts_match_the_dump_while_the_application_writes() {
    // mariadb-dump reads a snapshot no other session can share: the rows are counted in
    // the dump as it streams, so verify finds them equal although a writer inserted
    // rows all through the backup.
    let env = Env::new();
    env.init();
    let db = TempMaria::new("busy");
    let install = env.path("kimai");
    fs::create_dir_all(install.join("var/data")).unwrap();
    fs::write(
        install.join(".env"),
        format!("DATABASE_URL=mysql://root@127.0.0.1:3306/{}\n", db.0),
    )
    .unwrap();
    mariadb(
        Some(&db.0),
        "CREATE TABLE kimai2_timesheet (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT); \
         INSERT INTO kimai2_timesheet (note) SELECT CONCAT('n(', seq, ')''s') FROM seq_1_to_20000; \
         CREATE TABLE kimai2_empty (id INT PRIMARY KEY);",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, name) = (stop.clone(), db.0.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                mariadb(
                    Some(&name),
                    "INSERT INTO kimai2_timesheet (note) VALUES ('live, (x)')",
                );
                n += 1;
            }
            n
        })
    };
    let snap = env.app_backup("kimai", &install, &[]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let inserted = writer.join().unwrap();
    assert!(inserted > 0, "the writer never ran");
    let m = env.json(&["app", "show", &snap]);
    let d = &m["databases"][0];
    assert_eq!(d["counts"], "in the dump, as it streamed", "{m}");
    let rows = |t: &str| {
        d["tables"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["table"] == t)
            .unwrap_or_else(|| panic!("{t} not in {d}"))["rows"]
            .as_u64()
            .unwrap()
    };
    assert!(rows("kimai2_timesheet") >= 20_000, "{d}");
    assert_eq!(rows("kimai2_empty"), 0);
    let v = env.json(&["app", "verify", "kimai", &snap]);
    assert_eq!(v["ok"], true, "{v}");
}

//! The local catalog through the binary: it can be deleted or damaged at any time and
//! nothing is lost; it follows snapshots added and removed by other machines.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// The catalog files under a cache directory (one per repository).
fn catalogs(cache: &Path) -> Vec<PathBuf> {
    let Ok(dirs) = fs::read_dir(cache) else {
        return Vec::new();
    };
    dirs.map(|d| d.unwrap().path().join("catalog.sqlite"))
        .filter(|p| p.exists())
        .collect()
}

/// Everything a user reads from a repository, as the binary prints it.
fn views(env: &Env, src: &Path) -> Vec<String> {
    let root = src.to_string_lossy().into_owned();
    [
        vec!["snapshots", "--json"],
        vec!["find", "*", "--json"],
        vec!["ls", "latest", "--long"],
        vec!["stats", "--json"],
        vec!["diff", "--json"],
    ]
    .into_iter()
    .map(|args| {
        if args[0] == "diff" {
            let snaps = env.json(&["snapshots"]);
            let first = snaps[0]["id"].as_str().unwrap().to_string();
            return env.ok(&["diff", &first, "latest", "--json"]);
        }
        let out = env.ok(&args);
        // stats reports how long it took; leave timings out of the comparison.
        out.lines()
            .filter(|l| !l.contains("seconds"))
            .collect::<Vec<_>>()
            .join("\n")
    })
    .chain([root])
    .collect()
}

fn make_history(env: &Env, src: &Path) {
    fs::create_dir_all(src.join("etc/app")).unwrap();
    fs::create_dir_all(src.join("var/data")).unwrap();
    fs::write(src.join("etc/app/app.conf"), "port = 80\n").unwrap();
    fs::write(src.join("var/data/blob"), pseudo_random(1, 300_000)).unwrap();
    env.backup(&[src]);
    fs::write(src.join("etc/app/app.conf"), "port = 8080\n").unwrap();
    fs::write(src.join("var/data/new.conf"), "x\n").unwrap();
    let second = env.backup(&[src]);
    env.ok(&["tag", &second[..8], "--add", "release"]);
    fs::remove_file(src.join("var/data/blob")).unwrap();
    let third = env.backup(&[src]);
    env.backup(&[src]);
    env.ok(&["forget", &third[..8]]);
}

#[test]
fn deleting_the_catalog_loses_nothing() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    make_history(&env, &src);
    let cache = env.path(".cache/cairn");
    assert_eq!(catalogs(&cache).len(), 1, "the commands made one catalog");
    let info = env.json(&["catalog", "info"]);
    assert_eq!(info["snapshots"], 3);
    assert!(info["trees"].as_u64().unwrap() >= 6, "{info}");

    let before = views(&env, &src);
    // The same views straight from the repository.
    let no_cache = {
        let mut c = env.cmd();
        c.args(["snapshots", "--json", "--no-cache"]);
        String::from_utf8(c.output().unwrap().stdout).unwrap()
    };
    assert_eq!(before[0], no_cache.trim_end());

    fs::remove_dir_all(&cache).unwrap();
    let after = views(&env, &src);
    assert_eq!(before, after, "views differ after deleting the catalog");
    assert_eq!(env.json(&["catalog", "info"])["snapshots"], 3);

    let rebuilt = env.json(&["catalog", "rebuild"]);
    assert_eq!(rebuilt["catalog"]["snapshots"], 3);
    assert!(rebuilt["distinct_trees"].as_u64().unwrap() >= 6);
    assert_eq!(views(&env, &src), before, "views differ after a rebuild");

    // And a restore without any catalog equals the source.
    fs::remove_dir_all(&cache).unwrap();
    let target = env.path("target");
    env.ok(&["restore", "latest", "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &restored(&target, &src));
    env.ok(&["check"]);
}

#[test]
fn catalogs_of_two_machines_follow_the_repository() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "one\n").unwrap();
    let a_cache = env.path("cache-a");
    let b_cache = env.path("cache-b");
    let on = |cache: &Path, args: &[&str]| -> serde_json::Value {
        let mut a = vec!["--cache-dir", cache.to_str().unwrap()];
        a.extend_from_slice(args);
        env.json(&a)
    };
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };

    let first = on(&a_cache, &["backup", src.to_str().unwrap()])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ids(&on(&b_cache, &["snapshots"])), vec![first.clone()]);
    fs::write(src.join("f"), "two\n").unwrap();
    let second = on(&a_cache, &["backup", src.to_str().unwrap()])["snapshot"]
        .as_str()
        .unwrap()
        .to_string();
    // B sees A's new snapshot, and finds files in it.
    assert_eq!(
        ids(&on(&b_cache, &["snapshots"])),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(on(&b_cache, &["catalog", "info"])["snapshots"], 2);
    let found = on(&b_cache, &["find", "f"]);
    assert_eq!(found.as_array().unwrap().len(), 2, "{found}");

    // A forgets the first; B's catalog lets go of it at B's next look.
    on(&a_cache, &["forget", &first]);
    assert_eq!(ids(&on(&b_cache, &["snapshots"])), vec![second.clone()]);
    assert_eq!(on(&b_cache, &["catalog", "info"])["snapshots"], 1);
    let found = on(&b_cache, &["find", "f"]);
    assert_eq!(found.as_array().unwrap().len(), 1, "{found}");
}

#[test]
fn a_damaged_catalog_is_replaced() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "data\n").unwrap();
    let id = env.backup(&[&src]);
    let cache = env.path(".cache/cairn");
    let [catalog] = catalogs(&cache).try_into().unwrap();
    fs::write(&catalog, vec![0x5a; 8192]).unwrap();
    let _ = fs::remove_file(catalog.with_extension("sqlite-wal"));

    // The command works, from the repository, says what happened, and leaves a new
    // catalog that holds what it read.
    let out = env.run(&["snapshots", "--json"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was damaged") && stderr.contains("replaced it by a new one"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], id.as_str());
    let out = env.run(&["catalog", "info", "--json"]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["snapshots"], 1);

    fs::write(src.join("g"), "more\n").unwrap();
    env.backup(&[&src]);
    assert_eq!(env.json(&["catalog", "info"])["snapshots"], 2);
}

#[test]
fn a_catalog_of_a_newer_cairn_is_left_alone() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "data\n").unwrap();
    env.backup(&[&src]);
    let [catalog] = catalogs(&env.path(".cache/cairn")).try_into().unwrap();
    // PRAGMA user_version is the big-endian u32 at offset 60 of the database header.
    let mut bytes = fs::read(&catalog).unwrap();
    bytes[60..64].copy_from_slice(&999u32.to_be_bytes());
    fs::write(&catalog, &bytes).unwrap();

    let out = env.run(&["snapshots"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("newer cairn") && stderr.contains("going on without the catalog"),
        "{stderr}"
    );
    assert_eq!(
        fs::read(&catalog).unwrap(),
        bytes,
        "the newer catalog was changed"
    );
}

#[test]
fn no_cache_writes_no_catalog() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "data\n").unwrap();
    env.ok(&["--no-cache", "backup", src.to_str().unwrap()]);
    env.ok(&["--no-cache", "snapshots"]);
    assert!(catalogs(&env.path(".cache/cairn")).is_empty());
    let v = env.json(&["--no-cache", "catalog", "info"]);
    assert!(v.is_null(), "{v}");
}

/// Every occurrence of `needle` in the files of a catalog's directory (the database, its
/// WAL and shared-memory files), by file name.
fn in_catalog_files(catalog: &Path, needle: &[u8]) -> Vec<String> {
    fs::read_dir(catalog.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_catalog_holds_no_names_in_clear() {
    let env = Env::new();
    env.init();
    let src = env.path("zq-secret-root");
    fs::create_dir_all(src.join("zq-secret-dir")).unwrap();
    fs::write(
        src.join("zq-secret-dir/zq-secret-file.txt"),
        "zq-secret-contents\n",
    )
    .unwrap();
    fs::write(src.join("zq-second-file.bin"), pseudo_random(5, 20_000)).unwrap();
    std::os::unix::fs::symlink("/zq/secret/link/target", src.join("zq-secret-link")).unwrap();
    let xattr_set = xattr::set(
        src.join("zq-second-file.bin"),
        "user.zqkey",
        b"zq-secret-xattr-value",
    )
    .is_ok();
    let run = |args: &[&str]| env.ok(args);
    let src_s = src.to_str().unwrap();
    run(&[
        "backup",
        "--host",
        "zq-secret-host",
        "--tag",
        "zq-secret-tag",
        src_s,
    ]);
    fs::write(src.join("zq-secret-dir/zq-later-file"), "x\n").unwrap();
    run(&[
        "backup",
        "--host",
        "zq-secret-host",
        "--tag",
        "zq-secret-tag",
        src_s,
    ]);
    let [catalog] = catalogs(&env.path(".cache/cairn")).try_into().unwrap();
    let mut needles: Vec<&[u8]> = vec![
        b"zq-secret",
        b"zq-second-file",
        b"zq-later-file",
        b"/zq/secret/link/target",
        b"user.zqkey",
        // The temporary directory's name: every snapshot's paths and ancestor trees.
        env.dir.path().file_name().unwrap().as_encoded_bytes(),
    ];
    if !xattr_set {
        needles.retain(|n| *n != b"user.zqkey");
    }
    let scan = |when: &str| {
        for needle in &needles {
            let found = in_catalog_files(&catalog, needle);
            assert!(
                found.is_empty(),
                "{:?} in clear in {found:?} {when}",
                String::from_utf8_lossy(needle)
            );
        }
    };
    scan("after two backups");
    // The catalog was used: it holds what the commands read.
    let info = env.json(&["catalog", "info"]);
    assert_eq!(info["snapshots"], 2);
    assert!(info["trees"].as_u64().unwrap() >= 3, "{info}");
    let found = env.json(&["find", "zq-secret-file.txt"]);
    assert_eq!(found.as_array().unwrap().len(), 2, "{found}");
    run(&["ls", "latest", "--long"]);
    run(&["snapshots", "--json"]);
    run(&["catalog", "rebuild"]);
    scan("after find, ls, snapshots and a rebuild");
}

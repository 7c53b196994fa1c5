//! Keys: wrong password, add, list, remove, change.

use crate::common::*;

#[test]
fn wrong_password_says_so_in_one_line_and_exits_12() {
    let env = Env::new();
    env.init();
    let bad = env.path("bad");
    std::fs::write(&bad, "not the password").unwrap();
    let out = env
        .cmd()
        .env("CAIRN_PASSWORD_FILE", &bad)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("wrong password"), "{err}");
    assert!(!err.contains("not the password"));
}

#[test]
fn missing_repository_exits_10_and_init_twice_fails() {
    let env = Env::new();
    let out = env.run(&["snapshots"]);
    assert_eq!(out.status.code(), Some(10));
    env.init();
    let again = env.run(&["init"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[test]
fn password_from_env_and_command() {
    let env = Env::new();
    env.init();
    let out = env
        .cmd()
        .env_remove("CAIRN_PASSWORD_FILE")
        .env("CAIRN_PASSWORD", PASSWORD)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = env
        .cmd()
        .env_remove("CAIRN_PASSWORD_FILE")
        .env(
            "CAIRN_PASSWORD_COMMAND",
            format!("printf '%s\\n' '{PASSWORD}'"),
        )
        .args(["snapshots"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn add_list_remove_and_change_keys() {
    let env = Env::new();
    env.init();
    let second = env.path("second");
    std::fs::write(&second, "second password").unwrap();
    env.ok(&[
        "key",
        "add",
        "--new-password-file",
        second.to_str().unwrap(),
    ]);
    let keys = env.json(&["key", "list"]);
    assert_eq!(keys.as_array().unwrap().len(), 2);
    let other = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The second password opens the repository.
    let out = env
        .cmd()
        .env("CAIRN_PASSWORD_FILE", &second)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // The key in use cannot be removed; the other can.
    let current = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        env.run(&["key", "remove", &current[..8]]).status.code(),
        Some(1)
    );
    env.ok(&["key", "remove", &other[..8]]);
    let out = env
        .cmd()
        .env("CAIRN_PASSWORD_FILE", &second)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12));
    // passwd: the old password stops working, the new one works.
    let third = env.path("third");
    std::fs::write(&third, "third password").unwrap();
    env.ok(&[
        "key",
        "passwd",
        "--new-password-file",
        third.to_str().unwrap(),
    ]);
    assert_eq!(env.run(&["snapshots"]).status.code(), Some(12));
    let out = env
        .cmd()
        .env("CAIRN_PASSWORD_FILE", &third)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
fn downgraded_key_file_is_refused() {
    let env = Env::new();
    env.init();
    let kdir = env.repo.join("keys");
    let name = std::fs::read_dir(&kdir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&name).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["params"]["memory_kib"] = 8.into();
    let mut perm = std::fs::metadata(&name).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o600);
    std::fs::set_permissions(&name, perm).unwrap();
    // Written under the name of its new hash, as an attacker with write access can.
    let bytes = serde_json::to_vec(&v).unwrap();
    std::fs::remove_file(&name).unwrap();
    std::fs::write(kdir.join(blake3::hash(&bytes).to_hex().as_str()), &bytes).unwrap();
    let out = env.run(&["snapshots"]);
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused") && err.contains("minimum"), "{err}");
}

/// `key rotate` through the binary: refused while another key exists (named), done with
/// --remove-other-keys; afterwards every snapshot restores and checks, and someone who
/// kept the old key file (a leaked key) opens the snapshots written before the rotation
/// but not the one written after.
#[test]
fn key_rotate_keeps_the_past_readable_and_locks_the_old_key_out_of_the_future() {
    use std::fs;
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("before.txt"), pseudo_random(1, 300_000)).unwrap();
    let before = env.backup(&[&src]);
    let old_keys = files_under(&env.repo.join("keys"));
    assert_eq!(old_keys.len(), 1);
    let old_key_file = fs::read(&old_keys[0]).unwrap();

    let second = env.path("second");
    fs::write(&second, "another admin\n").unwrap();
    env.ok(&[
        "key",
        "add",
        "--new-password-file",
        second.to_str().unwrap(),
    ]);
    let out = env.run(&["key", "rotate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("--remove-other-keys"), "{err}");
    assert_eq!(files_under(&env.repo.join("keys")).len(), 2);

    let report = env.json(&["key", "rotate", "--remove-other-keys"]);
    assert_eq!(report["epoch"], 1);
    assert_eq!(report["keys_removed"].as_array().unwrap().len(), 1);
    fs::write(src.join("after.txt"), pseudo_random(2, 300_000)).unwrap();
    let after = env.backup(&[&src]);
    env.ok(&["check", "--read-data"]);
    let target = env.path("restored");
    env.ok(&["restore", &after, "--target", target.to_str().unwrap()]);
    assert_same_tree(&src, &restored(&target, &src));
    let out = env
        .cmd()
        .env("CAIRN_PASSWORD_FILE", &second)
        .args(["snapshots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(12), "a removed key still opens");

    // The leaked old key, on a copy of today's storage.
    let leaked = env.path("leaked");
    succeed(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&env.repo)
            .arg(&leaked),
    );
    for k in files_under(&leaked.join("keys")) {
        fs::remove_file(k).unwrap();
    }
    fs::write(
        leaked.join("keys").join(old_keys[0].file_name().unwrap()),
        &old_key_file,
    )
    .unwrap();
    let with_old = |args: &[&str]| {
        env.cmd()
            .env("CAIRN_REPOSITORY", &leaked)
            .env("CAIRN_CACHE_DIR", env.path("leaked-cache"))
            .args(args)
            .output()
            .unwrap()
    };
    // It lists the earlier snapshots and says the newer one is sealed under an epoch it
    // does not hold.
    let out = with_old(&["snapshots"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(listed.contains(&before[..8]), "{listed}");
    assert!(!listed.contains(&after[..8]), "{listed}");
    assert!(err.contains("key epoch 1"), "{err}");
    let out = with_old(&["dump", &after, &format!("{}/after.txt", src.display())]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    // The index was rewritten under the new key: even the earlier snapshot's blobs
    // cannot be located with the old key alone.
    let out = with_old(&["dump", &before, &format!("{}/before.txt", src.display())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("key epoch 1"), "{err}");
    assert!(out.stdout.is_empty());
}

/// The key epoch of every pack, index file and snapshot under `repo`, by path.
fn epochs_under(repo: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    let mut out = Vec::new();
    for dir in ["data", "index", "snapshots"] {
        for f in files_under(&repo.join(dir)) {
            let b = std::fs::read(&f).unwrap();
            out.push((f, u32::from_le_bytes(b[6..10].try_into().unwrap())));
        }
    }
    out
}

/// `key rotate --remove-other-keys --rewrite-data` through the binary: every pack, index
/// file and snapshot is sealed under the new epoch afterwards, check --read-data passes,
/// every snapshot restores byte-exact, and someone who kept the old key file (a leaked
/// key) opens none of what is stored: no snapshot lists, nothing restores.
#[test]
fn key_rotate_rewrite_data_leaves_the_old_key_nothing_to_open() {
    use std::fs;
    let env = Env::new();
    env.init();
    let (one, two) = (env.path("one"), env.path("two"));
    fs::create_dir_all(&one).unwrap();
    fs::create_dir_all(&two).unwrap();
    fs::write(one.join("a.bin"), pseudo_random(1, 700_000)).unwrap();
    fs::write(one.join("b.txt"), "first\n".repeat(20_000)).unwrap();
    fs::write(two.join("c.bin"), pseudo_random(2, 500_000)).unwrap();
    let first = env.backup(&[&one]);
    let second = env.backup(&[&two]);
    let old_keys = files_under(&env.repo.join("keys"));
    let old_key_file = fs::read(&old_keys[0]).unwrap();
    assert!(epochs_under(&env.repo).iter().all(|(_, e)| *e == 0));
    let other = env.path("other");
    fs::write(&other, "another admin\n").unwrap();
    env.ok(&["key", "add", "--new-password-file", other.to_str().unwrap()]);

    let report = env.json(&["key", "rotate", "--remove-other-keys", "--rewrite-data"]);
    assert_eq!(report["epoch"], 1, "{report}");
    assert_eq!(report["rotation"]["epoch"], 1, "{report}");
    assert_eq!(report["left"].as_array().unwrap().len(), 0, "{report}");
    assert_eq!(report["snapshots_rewritten"].as_array().unwrap().len(), 2);
    assert!(report["packs_rewritten"].as_u64().unwrap() >= 2, "{report}");
    let epochs = epochs_under(&env.repo);
    assert!(epochs.len() >= 5, "{epochs:?}");
    assert!(
        epochs.iter().all(|(_, e)| *e == 1),
        "under an earlier epoch: {epochs:?}"
    );
    env.ok(&["check", "--read-data"]);
    // Both snapshots restore, found by the ids they were first taken as.
    let snaps = env.json(&["snapshots"]);
    let snaps = snaps.as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    for (was, src) in [(&first, &one), (&second, &two)] {
        let s = snaps
            .iter()
            .find(|s| s["original"].as_str() == Some(was.as_str()))
            .unwrap_or_else(|| panic!("no snapshot stands for {was}: {snaps:?}"));
        let id = s["id"].as_str().unwrap();
        assert_ne!(id, was.as_str(), "a new name");
        let target = env.path(&format!("r-{}", &was[..8]));
        env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
        assert_same_tree(src, &restored(&target, src));
    }
    // A second run has nothing left under an earlier epoch: it rotates anew (epoch 2).
    // Not run here; see docs/maintenance.md.

    // The leaked old key, on a copy of today's storage: it opens nothing.
    let leaked = env.path("leaked");
    succeed(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&env.repo)
            .arg(&leaked),
    );
    for k in files_under(&leaked.join("keys")) {
        fs::remove_file(k).unwrap();
    }
    fs::write(
        leaked.join("keys").join(old_keys[0].file_name().unwrap()),
        &old_key_file,
    )
    .unwrap();
    let with_old = |args: &[&str]| {
        env.cmd()
            .env("CAIRN_REPOSITORY", &leaked)
            .env("CAIRN_CACHE_DIR", env.path("leaked-cache"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = with_old(&["snapshots", "--json"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    for s in snaps {
        let id = s["id"].as_str().unwrap();
        assert!(!listed.contains(&id[..8]), "{listed}");
    }
    assert!(!listed.contains(&first[..8]) && !listed.contains(&second[..8]));
    assert!(err.contains("key epoch 1"), "{err}");
    for (was, src) in [(&first, &one), (&second, &two)] {
        let target = env.path(&format!("leak-{}", &was[..8]));
        let out = with_old(&["restore", was, "--target", target.to_str().unwrap()]);
        assert!(!out.status.success());
        assert!(!restored(&target, src).exists());
    }
    let out = with_old(&["check", "--read-data"]);
    assert!(!out.status.success(), "the old key reads the repository");
}

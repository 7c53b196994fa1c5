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

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

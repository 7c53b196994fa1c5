//! `cairn status`: the 3-2-1 status of a primary repository and its configured copies.

use crate::common::*;
use std::fs;

#[test]
fn status_shows_where_snapshots_are_and_what_falls_short() {
    let env = Env::new();
    let (usb, cloud) = (env.path("usb"), env.path("cloud"));
    let config = env.path("config.toml");
    let pw = env.password_file.display().to_string();
    let write_config = |cloud_url: &str| {
        fs::write(
            &config,
            format!(
                "[repository]\nname = \"local\"\n\n\
                 [[offsite]]\nname = \"usb\"\nurl = {:?}\npassword-file = {pw:?}\n\n\
                 [[offsite]]\nname = \"cloud\"\nurl = {cloud_url:?}\npassword-file = {pw:?}\n\n\
                 [copies]\noffsite-max-age = \"2d\"\nmin-copies = 2\n",
                usb.display().to_string(),
            ),
        )
        .unwrap();
    };
    write_config(cloud.to_str().unwrap());
    let cairn = |args: &[&str]| {
        let mut c = env.cmd();
        c.env("CAIRN_CONFIG", &config).args(args);
        c.output().unwrap()
    };
    let status = || {
        let out = cairn(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        (out.status.code(), v)
    };
    env.init();
    for r in [&usb, &cloud] {
        let out = cairn(&["-r", r.to_str().unwrap(), "init"]);
        assert!(out.status.success());
    }
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"one").unwrap();
    env.backup(&[&src]);
    fs::write(src.join("a"), b"two").unwrap();
    env.backup(&[&src]);

    // Nothing copied yet: no offsite copy, the newest snapshot in one repository.
    let (code, v) = status();
    assert_eq!(code, Some(1), "{v}");
    let g = &v["groups"][0];
    assert_eq!(g["recent"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(g["recent"][0]["held_by"], serde_json::json!(["local"]));
    let warnings = g["warnings"].to_string();
    assert!(warnings.contains("no offsite copy"), "{warnings}");
    assert!(warnings.contains("1 repository (2 wanted)"), "{warnings}");

    // Copied to the USB disk: both snapshots in two repositories, all is well.
    let out = env
        .cmd()
        .env("CAIRN_REPOSITORY", &usb)
        .env("CAIRN_FROM_REPOSITORY", &env.repo)
        .env("CAIRN_FROM_PASSWORD_FILE", &env.password_file)
        .arg("copy")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, v) = status();
    assert_eq!(code, Some(0), "{v}");
    let g = &v["groups"][0];
    assert_eq!(
        g["recent"][0]["held_by"],
        serde_json::json!(["local", "usb"])
    );
    assert_eq!(
        g["recent"][1]["held_by"],
        serde_json::json!(["local", "usb"])
    );
    assert!(g["newest_offsite"][1].as_i64().unwrap() < 3600, "{v}");
    assert_eq!(v["repositories"][2]["snapshots"], 0);

    // An offsite repository that cannot be reached is reported, and fails the status.
    write_config(env.path("gone").to_str().unwrap());
    let (code, v) = status();
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["repositories"][2]["readable"], false);
    assert!(v["groups"][0]["warnings"]
        .to_string()
        .contains("cloud could not be read"));
    // The text form says the same.
    let text = String::from_utf8(cairn(&["status"]).stdout).unwrap();
    assert!(text.contains("WARNING: cloud could not be read"), "{text}");
    assert!(text.contains("newest offsite copy:"), "{text}");
}

//! diff and stats through the binary.

use crate::common::*;
use std::fs;

#[test]
fn diff_lists_changes_and_stats_measure_snapshots() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(src.join("olddir")).unwrap();
    fs::write(src.join("keep"), "same\n").unwrap();
    fs::write(src.join("edit"), "before\n").unwrap();
    fs::write(src.join("gone"), "bye\n").unwrap();
    fs::write(src.join("olddir/f"), "f\n").unwrap();
    let data = pseudo_random(7, 1 << 20);
    fs::write(src.join("data.bin"), &data).unwrap();
    let a = env.backup(&[&src]);

    fs::write(src.join("edit"), "after, longer\n").unwrap();
    fs::remove_file(src.join("gone")).unwrap();
    fs::remove_dir_all(src.join("olddir")).unwrap();
    fs::write(src.join("new"), "hello\n").unwrap();
    let b = env.backup(&[&src]);

    let root = src.to_string_lossy().into_owned();
    let out = env.ok(&["diff", &a[..8], "latest"]);
    for line in [
        format!("+  {root}/new\n"),
        format!("-  {root}/gone\n"),
        format!("-  {root}/olddir/\n"),
        format!("M  {root}/edit\n"),
    ] {
        assert!(out.contains(&line), "no {line:?} in:\n{out}");
    }
    assert!(!out.contains(&format!("{root}/keep")), "{out}");
    assert!(!out.contains(&format!("{root}/data.bin")), "{out}");
    assert!(!out.contains(&format!("{root}/olddir/f")), "{out}");
    assert!(out.contains("1 added, 2 removed, 1 changed"), "{out}");

    let v = env.json(&["diff", &a, &b]);
    assert_eq!(v["from"], a.as_str());
    assert_eq!(v["to"], b.as_str());
    let changes = v["changes"].as_array().unwrap();
    let find = |p: &str| {
        changes
            .iter()
            .find(|c| c["path"] == format!("{root}/{p}").as_str())
            .map(|c| c["kind"].as_str().unwrap().to_string())
    };
    assert_eq!(find("new").as_deref(), Some("added"));
    assert_eq!(find("olddir/").as_deref(), Some("removed"));
    assert_eq!(find("edit").as_deref(), Some("changed"));
    assert_eq!(find("keep"), None);
    assert_eq!(v["summary"]["added"], 1);

    // Same snapshot twice: no change.
    let same = env.json(&["diff", &b, &b]);
    assert!(same["changes"].as_array().unwrap().is_empty());

    let st = env.json(&["stats"]);
    let snaps = st["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 2);
    assert_eq!(snaps[0]["id"], a.as_str());
    assert_eq!(snaps[0]["files"], 5);
    assert_eq!(snaps[1]["files"], 4);
    let size_a = 5 + 7 + 4 + 2 + data.len() as u64;
    let size_b = 5 + 14 + 6 + data.len() as u64;
    assert_eq!(snaps[0]["restore_size"], size_a);
    assert_eq!(snaps[1]["restore_size"], size_b);
    let total = &st["total"];
    assert_eq!(total["restore_size"], size_a + size_b);
    let dedup = total["dedup_size"].as_u64().unwrap();
    assert!(
        dedup < size_a + (64 << 10),
        "the big file is stored once: {total}"
    );
    assert!(total["stored_size"].as_u64().unwrap() > data.len() as u64);
    assert!(total["dedup_ratio"].as_f64().unwrap() > 1.8, "{total}");
    assert!(
        total["compression_ratio"].as_f64().unwrap() > 0.9,
        "{total}"
    );

    let one = env.json(&["stats", "latest"]);
    assert_eq!(one["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(one["snapshots"][0]["id"], b.as_str());

    let table = env.ok(&["stats"]);
    assert!(
        table.contains(&a[..8]) && table.contains(&b[..8]),
        "{table}"
    );
    assert!(table.contains("total"), "{table}");
}

#[test]
fn diff_of_an_unknown_snapshot_fails() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("f"), "f").unwrap();
    env.backup(&[&src]);
    let out = env.run(&["diff", "latest", "ffffffff"]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
}

#[test]
fn find_lists_every_snapshot_and_path_where_a_name_matches() {
    let env = Env::new();
    env.init();
    let src = env.path("src");
    std::fs::create_dir_all(src.join("etc/app")).unwrap();
    std::fs::write(src.join("etc/app/main.conf"), "a = 1\n").unwrap();
    std::fs::write(src.join("etc/other.txt"), "x").unwrap();
    let first = env.backup(&[&src]);
    std::fs::write(src.join("site.conf"), "b = 2\n").unwrap();
    let second = env.backup(&[&src]);
    let v = env.json(&["find", "*.conf"]);
    let mut got: Vec<(String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["snapshot"].as_str().unwrap().to_string(),
                f["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    got.sort();
    let p = |rel: &str| format!("{}/{rel}", src.display());
    let mut want = vec![
        (first.clone(), p("etc/app/main.conf")),
        (second.clone(), p("etc/app/main.conf")),
        (second.clone(), p("site.conf")),
    ];
    want.sort();
    assert_eq!(got, want);
    // One snapshot only; names, not paths: `app` matches the directory.
    let v = env.json(&["find", "app", "--snapshot", &first]);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["kind"], "d");
    assert_eq!(
        env.json(&["find", "*.nothing"]).as_array().unwrap().len(),
        0
    );
    let out = env.run(&["find", "[unclosed"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid pattern"));
}

//! Secrets hygiene through the binary: the password never appears in what cairn prints
//! (even when it fails), neither the password nor file names nor file contents appear
//! in the repository's bytes, files and directories cairn creates are private to their
//! owner, and a password file or command loses exactly one trailing newline.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::{files_under, Env};

/// A password with spaces at both ends: they are part of it.
const SECRET: &str = "  Pw-Xq7Zk9-hunter2  ";
const FILE_NAME: &str = "Confidential-Merger-Plan-Q3.txt";
const CONTENT: &str = "TOP-SECRET-CONTENT-MARKER acquisition of ExampleCorp at 42 per share\n";

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

fn env_with_secret() -> Env {
    let env = Env::new();
    // One newline at the end of the file is not part of the password.
    fs::write(&env.password_file, format!("{SECRET}\n")).unwrap();
    env
}

#[test]
fn the_password_file_names_and_contents_never_leak() {
    let env = env_with_secret();
    let src = env.path("src");
    fs::create_dir_all(src.join("board")).unwrap();
    fs::write(src.join("board").join(FILE_NAME), CONTENT.repeat(200)).unwrap();
    let second = env.path("second-password");
    fs::write(&second, "another password\n").unwrap();
    let wrong = env.path("wrong-password");
    fs::write(&wrong, format!("{}\n", SECRET.trim())).unwrap();

    let mut printed = Vec::new();
    let mut run = |args: &[&str], password_file: &Path, expect_ok: bool| {
        let out = env
            .cmd()
            .env("CAIRN_PASSWORD_FILE", password_file)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            expect_ok,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        printed.extend_from_slice(&out.stdout);
        printed.extend_from_slice(&out.stderr);
    };
    let pw = env.password_file.clone();
    let target = env.path("restored");
    let target = target.to_str().unwrap();
    let src_s = src.to_str().unwrap();
    run(&["init"], &pw, true);
    run(&["backup", "--verbose", src_s], &pw, true);
    run(&["backup", "--json", src_s], &pw, true);
    run(&["snapshots"], &pw, true);
    run(&["ls", "latest"], &pw, true);
    run(&["stats"], &pw, true);
    run(&["check", "--read-data"], &pw, true);
    run(&["restore", "latest", "--target", target], &pw, true);
    run(
        &[
            "key",
            "add",
            "--new-password-file",
            second.to_str().unwrap(),
        ],
        &pw,
        true,
    );
    run(&["key", "list"], &pw, true);
    // Failures: a wrong password (the secret without its spaces), a wrong command.
    run(&["snapshots"], &wrong, false);
    run(&["restore", "nonexistent", "--target", target], &pw, false);
    let printed_text = String::from_utf8_lossy(&printed);
    assert!(
        !contains(&printed, SECRET.trim()),
        "the password was printed:\n{printed_text}"
    );
    // The commands did print the file name (ls): the scan below is not vacuous.
    assert!(contains(&printed, FILE_NAME));

    // The repository holds none of them, in any file.
    let files = files_under(&env.repo);
    assert!(files.len() > 5);
    for f in &files {
        let bytes = fs::read(f).unwrap();
        for needle in [
            SECRET.trim(),
            FILE_NAME,
            "TOP-SECRET-CONTENT-MARKER",
            "board",
        ] {
            assert!(
                !contains(&bytes, needle),
                "{} holds {needle:?} in plain text",
                f.display()
            );
        }
    }

    // Everything cairn created (repository, catalogs, caches) is its owner's alone.
    let home = env.dir.path();
    let mut created = vec![env.repo.clone()];
    for dir in [".cache", ".local", ".config"] {
        if home.join(dir).exists() {
            created.push(home.join(dir));
        }
    }
    let mut checked = 0;
    for root in &created {
        for f in files_under(root).into_iter().chain(dirs_under(root)) {
            let mode = fs::symlink_metadata(&f).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o077,
                0,
                "{} is mode {:o}",
                f.display(),
                mode & 0o777
            );
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} files and directories checked");
}

/// Every directory under `root`, `root` included.
fn dirs_under(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_path_buf()];
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(dirs_under(&p));
            }
        }
    }
    out
}

/// Exactly one trailing newline is removed from a password file or command: spaces
/// stay, and a second newline is part of the password.
#[test]
fn password_sources_lose_exactly_one_newline() {
    let env = env_with_secret();
    env.init();
    let status = |var: &str, value: &str| {
        env.cmd()
            .env_remove("CAIRN_PASSWORD_FILE")
            .env(var, value)
            .args(["snapshots"])
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(status("CAIRN_PASSWORD", SECRET), Some(0));
    assert_eq!(status("CAIRN_PASSWORD", SECRET.trim()), Some(12));
    let printf = |s: &str| format!("printf '%s' '{s}'");
    assert_eq!(status("CAIRN_PASSWORD_COMMAND", &printf(SECRET)), Some(0));
    assert_eq!(
        status("CAIRN_PASSWORD_COMMAND", &format!("printf '{SECRET}\\n'")),
        Some(0)
    );
    assert_eq!(
        status(
            "CAIRN_PASSWORD_COMMAND",
            &format!("printf '{SECRET}\\r\\n'")
        ),
        Some(0)
    );
    assert_eq!(
        status(
            "CAIRN_PASSWORD_COMMAND",
            &format!("printf '{SECRET}\\n\\n'")
        ),
        Some(12)
    );
    let file = env.path("two-newlines");
    fs::write(&file, format!("{SECRET}\n\n")).unwrap();
    assert_eq!(
        status("CAIRN_PASSWORD_FILE", file.to_str().unwrap()),
        Some(12)
    );
}

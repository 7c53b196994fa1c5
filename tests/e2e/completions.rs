//! Shell completions and manual pages: `cairn completions SHELL` prints a script that the shell accepts,
//! and that completes subcommands (nested ones too) and options in bash and fish.

use std::fs;
use std::process::Command;

use crate::common::*;

fn script(env: &Env, shell: &str) -> std::path::PathBuf {
    let out = env.ok(&["completions", shell]);
    assert!(!out.is_empty());
    let path = env.path(&format!("completion.{shell}"));
    fs::write(&path, out).unwrap();
    path
}

fn shell_out(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/test.sh installs zsh and fish)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_for_bash_zsh_and_fish_parse_and_complete() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let path = script(&env, shell);
        // Each shell reads its script without a syntax error.
        shell_out(Command::new(shell).arg("-n").arg(&path));
    }

    // bash: complete `cairn ba`, `cairn key ro` and `cairn key add --p`.
    let bash = script(&env, "bash");
    let complete = |words: &str| {
        let n = words.split(' ').count() - 1;
        shell_out(Command::new("bash").arg("-c").arg(format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD={n}; \
             _cairn cairn \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            bash.display()
        )))
    };
    assert!(complete("cairn ba").lines().any(|l| l == "backup"));
    assert!(complete("cairn key ro").lines().any(|l| l == "rotate"));
    assert!(complete("cairn key add --p")
        .lines()
        .any(|l| l == "--put-only"));

    // fish: the same through `complete -C`.
    let fish = script(&env, "fish");
    let complete = |line: &str| {
        shell_out(
            Command::new("fish")
                .arg("-c")
                .arg(format!("source {}; complete -C '{line}'", fish.display())),
        )
    };
    assert!(complete("cairn ba")
        .lines()
        .any(|l| l.starts_with("backup")));
    assert!(complete("cairn key ro")
        .lines()
        .any(|l| l.starts_with("rotate")));
    assert!(complete("cairn key add --p")
        .lines()
        .any(|l| l.starts_with("--put-only")));

    // zsh: the script defines the completion function for cairn.
    let zsh = fs::read_to_string(script(&env, "zsh")).unwrap();
    assert!(zsh.starts_with("#compdef cairn"), "{}", &zsh[..40]);
    assert!(zsh.contains("rotate") && zsh.contains("--put-only"));
}

#[test]
fn manual_pages_for_every_command_render_without_warnings() {
    let env = Env::new();
    let dir = env.path("man1");
    env.ok(&["man", "--dir", dir.to_str().unwrap()]);
    let mut pages: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for page in [
        "cairn.1",
        "cairn-backup.1",
        "cairn-run.1",
        "cairn-schedule-install.1",
        "cairn-key-rotate.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "no {page} in {pages:?}");
    }
    // groff's own check of the roff: no warning of any kind (-ww), output thrown away.
    for page in &pages {
        let out = Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(dir.join(page))
            .output()
            .unwrap_or_else(|e| panic!("groff (package groff-base, with man-db): {e}"));
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "{page}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // `man` shows the page, examples included.
    let out = Command::new("man")
        .arg("-l")
        .arg(dir.join("cairn-run.1"))
        .env("MANWIDTH", "100")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("--random-delay"), "{text}");
    assert!(text.contains("cairn run nightly --dry-run"), "{text}");
    // Without --dir: the main page on standard output.
    let page = env.ok(&["man"]);
    assert!(
        page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH cairn 1"),
        "{page}"
    );
}

//! Hooks: the shell commands run before and after a backup or a restore (stop the
//! application, start it again), and around the steps of a job.
//!
//! One runner for all of them, [`run`]: `sh -c COMMAND`, standard input empty, its
//! output captured line by line and handed to the caller as it comes (which shows it on
//! standard error: standard output stays free for `--json` and summaries), and a typed
//! error that carries the end of that output when the command fails.

use crate::error::{Error, Result};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How many of a failed hook's last lines its error carries.
pub const TAIL_LINES: usize = 3;

/// How long the output of a hook that has exited is still waited for: a program it
/// started in the background (a daemon that forgot to close its output) may hold the
/// pipe open for ever, and must not hold the backup with it.
const LINGER: Duration = Duration::from_millis(200);

/// Runs the hook `command` (`which`: `before` or `after`, for messages) with `sh -c`,
/// standard input empty, and hands each line it prints, standard output and error
/// alike, to `show` as it comes. Fails with [`Error::HookStart`] when it cannot be
/// started and [`Error::Hook`] (with its last [`TAIL_LINES`] lines) when it exits
/// non-zero.
pub fn run(which: &str, command: &str, show: &mut dyn FnMut(&str)) -> Result<()> {
    let start_error = |source| Error::HookStart {
        which: which.to_string(),
        command: command.to_string(),
        source,
    };
    let mut child = cairn_core::command("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(start_error)?;
    let (lines, received) = mpsc::channel::<String>();
    let pipes: [Option<Box<dyn Read + Send>>; 2] = [
        child.stdout.take().map(|p| Box::new(p) as _),
        child.stderr.take().map(|p| Box::new(p) as _),
    ];
    for pipe in pipes.into_iter().flatten() {
        let lines = lines.clone();
        std::thread::spawn(move || forward_lines(pipe, &lines));
    }
    drop(lines);
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES + 1);
    let mut take = |line: String| {
        show(&line);
        tail.push_back(line);
        if tail.len() > TAIL_LINES {
            tail.pop_front();
        }
    };
    let status = loop {
        match received.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => take(line),
            // Both pipes closed: the hook is done, or about to be.
            Err(RecvTimeoutError::Disconnected) => break child.wait().map_err(start_error)?,
            Err(RecvTimeoutError::Timeout) => {
                if let Some(status) = child.try_wait().map_err(start_error)? {
                    while let Ok(line) = received.recv_timeout(LINGER) {
                        take(line);
                    }
                    break status;
                }
            }
        }
    };
    if status.success() {
        Ok(())
    } else {
        Err(Error::Hook {
            which: which.to_string(),
            command: command.to_string(),
            status,
            tail: tail.into(),
        })
    }
}

/// Sends each line read from `pipe` (lossily decoded, without its line end); when no
/// one listens any more, goes on reading so that the writer never gets a broken pipe.
fn forward_lines(pipe: Box<dyn Read + Send>, lines: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']).to_string();
                let _ = lines.send(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_shown_as_it_comes_and_a_failure_carries_its_end() {
        let mut shown = Vec::new();
        run("before", "echo one; echo two >&2", &mut |l| {
            shown.push(l.to_string())
        })
        .unwrap();
        shown.sort();
        assert_eq!(shown, ["one", "two"]);

        let mut shown = Vec::new();
        let e = run(
            "after",
            "for i in 1 2 3 4 5; do echo line $i; done; exit 4",
            &mut |l| shown.push(l.to_string()),
        )
        .unwrap_err();
        assert_eq!(shown.len(), 5);
        match &e {
            Error::Hook {
                which,
                status,
                tail,
                ..
            } => {
                assert_eq!(which, "after");
                assert_eq!(status.code(), Some(4));
                assert_eq!(tail, &["line 3", "line 4", "line 5"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string()
                .ends_with("failed (exit status: 4): line 3 / line 4 / line 5"),
            "{e}"
        );
    }

    #[test]
    fn standard_input_is_empty() {
        let mut shown = Vec::new();
        run("before", "cat; echo end", &mut |l| {
            shown.push(l.to_string())
        })
        .unwrap();
        assert_eq!(shown, ["end"]);
    }

    #[test]
    fn a_background_program_holding_the_output_does_not_hold_the_hook() {
        let started = std::time::Instant::now();
        run("after", "sleep 5 & echo started", &mut |_| {}).unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
    }
}

//! Crash safety: `cairn backup` killed with SIGKILL at random moments never breaks the
//! repository. After every kill, `check` passes, every snapshot that finished earlier
//! restores byte-exact, and the next backup succeeds.
//!
//! `CAIRN_KILL_ROUNDS` sets the number of kills (default 30); `benches/soak/kill.sh`
//! runs many more.

use crate::common::*;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn mutate(src: &Path, round: u64) {
    // Change a few files and add one, so every backup has new data to write.
    fs::write(
        src.join(format!("new-{round}.bin")),
        pseudo_random(1000 + round, 2 << 20),
    )
    .unwrap();
    let f = src.join(format!("f{}", round % 8));
    let mut d = fs::read(&f).unwrap();
    let at = (round as usize * 7919) % d.len();
    d[at] ^= 0xff;
    fs::write(&f, d).unwrap();
}

/// Kills a command at random moments, aimed within the time it takes: each delay is a
/// random share (up to `stretch` times) of the expected duration; when the command
/// finishes first, the window shrinks to what it took, and by a fifth at least.
struct Killer {
    full: Duration,
    shortest: Duration,
    stretch: f64,
    /// xorshift state: deterministic delays without another dependency.
    x: u64,
}

impl Killer {
    fn new(full: Duration, shortest: Duration, stretch: f64, seed: u64) -> Killer {
        Killer {
            full: full.max(shortest),
            shortest,
            stretch,
            x: seed,
        }
    }

    /// Starts `cmd` (output discarded) and kills it after a random delay; true when the
    /// kill landed while it ran.
    fn run(&mut self, cmd: &mut std::process::Command) -> bool {
        self.x ^= self.x << 13;
        self.x ^= self.x >> 7;
        self.x ^= self.x << 17;
        let delay = self
            .full
            .mul_f64((self.x % 1000) as f64 / 1000.0 * self.stretch);
        let t = Instant::now();
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let landed = if child.try_wait().unwrap().is_some() {
            self.full = t.elapsed().min(self.full.mul_f64(0.8)).max(self.shortest);
            false
        } else {
            child.kill().unwrap();
            true
        };
        child.wait().unwrap();
        landed
    }
}

#[test]
fn sigkill_during_backup_leaves_a_valid_repository() {
    let rounds: u64 = std::env::var("CAIRN_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        fs::write(src.join(format!("f{i}")), pseudo_random(i, 3 << 20)).unwrap();
    }
    // Time a full backup to spread the kills over its duration.
    let t = Instant::now();
    let first = env.backup(&[&src]);
    let mut killer = Killer::new(
        t.elapsed(),
        Duration::from_millis(50),
        1.2,
        0x9e3779b97f4a7c15,
    );
    let mut expected: BTreeMap<String, BTreeMap<Vec<u8>, String>> = BTreeMap::new();
    expected.insert(first, describe(&src));
    // Kills that land after the backup finished do not count: go on until `rounds`
    // kills landed mid-backup (a busy machine slows the backups down, a quiet one
    // speeds them up; the delays adapt to what is seen).
    let mut killed_mid_run = 0;
    let mut round = 0;
    while killed_mid_run < rounds && round < rounds * 4 {
        mutate(&src, round);
        if killer.run(env.cmd().args(["backup", src.to_str().unwrap()])) {
            killed_mid_run += 1;
        }
        env.ok(&["check"]);
        // Record the state of snapshots finished so far (a kill may land after the
        // commit point: then that snapshot is complete and must restore too).
        let snaps = env.json(&["snapshots"]);
        for s in snaps.as_array().unwrap() {
            let id = s["id"].as_str().unwrap().to_string();
            expected.entry(id).or_insert_with(|| describe(&src));
        }
        // Every fifth round: restore every snapshot, then back up to completion.
        if round % 5 == 4 || killed_mid_run == rounds {
            for (id, want) in &expected {
                let target = env.path(&format!("r-{round}-{}", &id[..8]));
                env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
                let got = describe(&restored(&target, &src));
                assert!(
                    &got == want,
                    "snapshot {id} does not restore byte-exact after round {round}"
                );
                fs::remove_dir_all(&target).unwrap();
            }
            let id = env.backup(&[&src]);
            expected.insert(id, describe(&src));
        }
        round += 1;
    }
    assert!(
        killed_mid_run >= rounds,
        "only {killed_mid_run} of {round} kills landed mid-backup"
    );
    env.ok(&["check", "--read-data"]);
}

/// `cairn prune` killed with SIGKILL at random moments: after every kill `check
/// --read-data` passes, the kept snapshots restore byte-exact, and the next prune
/// finishes the job. `CAIRN_PRUNE_KILLS` sets the number of kills that must land while
/// prune runs (default 10).
#[test]
fn sigkill_during_prune_leaves_a_valid_repository() {
    let kills: u64 = std::env::var("CAIRN_PRUNE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        fs::write(src.join(format!("f{i}")), pseudo_random(i, 2 << 20)).unwrap();
    }
    let mut kept = env.backup(&[&src]);
    // Each round: new data, a backup, forget the previous snapshot, prune (killed).
    let mut killer = Killer::new(
        Duration::from_millis(200),
        Duration::from_millis(20),
        1.0,
        0x2545f4914f6cdd1d,
    );
    let (mut landed, mut round) = (0, 0u64);
    while landed < kills && round < kills * 6 {
        mutate(&src, 100 + round);
        let id = env.backup(&[&src]);
        env.ok(&["forget", &kept]);
        kept = id;
        let want = describe(&src);
        if killer.run(env.cmd().args(["prune", "--max-unused", "0%"])) {
            landed += 1;
        }
        env.ok(&["check", "--read-data"]);
        let target = env.path(&format!("r-{round}"));
        env.ok(&["restore", &kept, "--target", target.to_str().unwrap()]);
        assert!(
            describe(&restored(&target, &src)) == want,
            "the kept snapshot does not restore byte-exact after kill {landed}"
        );
        fs::remove_dir_all(&target).unwrap();
        round += 1;
    }
    assert!(
        landed >= kills,
        "only {landed} of {round} kills landed mid-prune"
    );
    // The next prune (its killed predecessor's lock is stale) cleans up the rest.
    env.ok(&["prune", "--max-unused", "0%", "--retry-lock", "0"]);
    let left = env.json(&["prune", "--dry-run", "--max-unused", "0%"]);
    assert_eq!(left["packs_deleted"], 0, "{left}");
    assert_eq!(left["packs_unindexed"], 0, "{left}");
    env.ok(&["check", "--read-data"]);
}

/// `cairn copy` killed with SIGKILL at random moments: after every kill the
/// destination's `check --read-data` passes and every snapshot it lists restores
/// byte-exact as the source was when that snapshot was taken; the next copy resumes
/// and, at the end, the destination holds every snapshot. `CAIRN_COPY_KILLS` sets the
/// number of kills that must land while copy runs (default 8).
#[test]
fn sigkill_during_copy_leaves_a_valid_destination() {
    let kills: u64 = std::env::var("CAIRN_COPY_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let env = Env::new();
    env.init();
    let dst = env.path("offsite");
    let to_dst = || {
        let mut c = env.cmd();
        c.env("CAIRN_REPOSITORY", &dst)
            .env("CAIRN_FROM_REPOSITORY", &env.repo)
            .env("CAIRN_FROM_PASSWORD_FILE", &env.password_file);
        c
    };
    succeed(to_dst().args(["init", "--copy-params-from", env.repo.to_str().unwrap()]));
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        fs::write(src.join(format!("f{i}")), pseudo_random(i, 2 << 20)).unwrap();
    }
    // What each source snapshot holds, by id.
    let mut trees: BTreeMap<String, BTreeMap<Vec<u8>, String>> = BTreeMap::new();
    trees.insert(env.backup(&[&src]), describe(&src));
    let mut killer = Killer::new(
        Duration::from_millis(300),
        Duration::from_millis(20),
        1.0,
        0x9e3779b97f4a7c15,
    );
    let (mut landed, mut round) = (0, 0u64);
    while landed < kills && round < kills * 6 {
        // Two new snapshots a round, so every copy has data to move.
        for k in 0..2 {
            mutate(&src, 200 + 2 * round + k);
            trees.insert(env.backup(&[&src]), describe(&src));
        }
        if killer.run(to_dst().args(["copy", "-q"])) {
            landed += 1;
        }
        succeed(to_dst().args(["check", "--read-data"]));
        // Every snapshot the destination lists is whole.
        let listed: serde_json::Value =
            serde_json::from_str(&succeed(to_dst().args(["snapshots", "--json"]))).unwrap();
        for s in listed.as_array().unwrap() {
            let original = s["original"].as_str().unwrap();
            let target = env.path("r");
            let _ = fs::remove_dir_all(&target);
            succeed(to_dst().args([
                "restore",
                s["id"].as_str().unwrap(),
                "--target",
                target.to_str().unwrap(),
            ]));
            assert!(
                describe(&restored(&target, &src)) == trees[original],
                "copy of {original} does not restore byte-exact after kill {landed}"
            );
        }
        round += 1;
    }
    assert!(
        landed >= kills,
        "only {landed} of {round} kills landed mid-copy"
    );
    // The next copy moves what is still missing; then the destination has it all.
    succeed(to_dst().args(["copy", "-q", "--retry-lock", "0"]));
    let listed: serde_json::Value =
        serde_json::from_str(&succeed(to_dst().args(["snapshots", "--json"]))).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), trees.len());
    succeed(to_dst().args(["check", "--read-data"]));
}

/// The epoch of the key file in use (its label, in clear) and of every pack, index file
/// and snapshot (from their envelopes).
fn epochs(repo: &Path) -> (Vec<u32>, Vec<u32>) {
    // A write that a kill interrupted leaves a temporary file (`.tmp-*`), in `keys/` as
    // anywhere else: never listed or read as a key.
    let temporary = |f: &Path| {
        f.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(".tmp-")
    };
    let keys = files_under(&repo.join("keys"))
        .iter()
        .filter(|k| !temporary(k))
        .map(|k| {
            let v: serde_json::Value = serde_json::from_slice(&fs::read(k).unwrap()).unwrap();
            v["epoch"].as_u64().unwrap_or(0) as u32
        })
        .collect();
    let mut files = Vec::new();
    for dir in ["data", "index", "snapshots"] {
        for f in files_under(&repo.join(dir)) {
            // Prune and the rewrite remove temporary files older than an hour.
            if temporary(&f) {
                continue;
            }
            let b = fs::read(&f).unwrap();
            files.push(u32::from_le_bytes(b[6..10].try_into().unwrap()));
        }
    }
    (keys, files)
}

/// `cairn key rotate --rewrite-data` killed with SIGKILL at random moments: after every
/// kill `check --read-data` passes and every snapshot restores byte-exact (found by the
/// id it was first taken as: the rewrite renames snapshots), none is lost or doubled for
/// good, and running it again finishes: every file is then sealed under the epoch of the
/// key. `CAIRN_REWRITE_KILLS` sets the number of kills that must land mid-run (default 6).
#[test]
fn sigkill_during_rewrite_data_leaves_a_valid_repository() {
    let kills: u64 = std::env::var("CAIRN_REWRITE_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let env = Env::new();
    env.init();
    let src = env.path("src");
    fs::create_dir_all(&src).unwrap();
    for i in 0..8 {
        fs::write(src.join(format!("f{i}")), pseudo_random(i, 2 << 20)).unwrap();
    }
    let mut expected: BTreeMap<String, BTreeMap<Vec<u8>, String>> = BTreeMap::new();
    for round in 0..3 {
        let id = env.backup(&[&src]);
        expected.insert(id, describe(&src));
        mutate(&src, 200 + round);
    }
    let rewrite = ["key", "rotate", "--remove-other-keys", "--rewrite-data"];
    // Time a whole run (rotation and rewrite) to aim the kills.
    let t = Instant::now();
    env.ok(&rewrite);
    let mut killer = Killer::new(
        t.elapsed(),
        Duration::from_millis(20),
        1.0,
        0x5851f42d4c957f2d,
    );
    let verify = |when: &str| {
        env.ok(&["check", "--read-data"]);
        let snaps = env.json(&["snapshots"]);
        let snaps = snaps.as_array().unwrap();
        for (first, want) in &expected {
            let standing: Vec<&str> = snaps
                .iter()
                .filter(|s| s["original"].as_str().or(s["id"].as_str()) == Some(first.as_str()))
                .map(|s| s["id"].as_str().unwrap())
                .collect();
            assert!(!standing.is_empty(), "snapshot {first} lost {when}");
            // Two stand for one only while its rewrite is stored and the old not removed.
            assert!(standing.len() <= 2, "{when}: {standing:?}");
            for id in standing {
                let target = env.path(&format!("r-{}", &id[..8]));
                env.ok(&["restore", id, "--target", target.to_str().unwrap()]);
                assert!(
                    describe(&restored(&target, &src)) == *want,
                    "snapshot {id} (first {first}) does not restore byte-exact {when}"
                );
                fs::remove_dir_all(&target).unwrap();
            }
        }
        snaps.len()
    };
    let (mut landed, mut round) = (0, 0);
    while landed < kills && round < kills * 6 {
        if killer.run(env.cmd().args(rewrite)) {
            landed += 1;
        }
        verify(&format!("after kill round {round}"));
        round += 1;
    }
    assert!(
        landed >= kills,
        "only {landed} of {round} kills landed mid-rewrite"
    );
    // Run again until nothing is under an earlier epoch: a killed run's work is
    // continued (no new epoch), a finished one's is redone under a new epoch.
    let report = env.json(&rewrite);
    assert_eq!(report["left"].as_array().unwrap().len(), 0, "{report}");
    let (keys, files) = epochs(&env.repo);
    assert_eq!(keys.len(), 1, "one key left");
    assert!(
        files.iter().all(|e| *e == keys[0]),
        "files {files:?}, key epoch {}",
        keys[0]
    );
    assert_eq!(verify("at the end"), expected.len(), "no snapshot doubled");
}

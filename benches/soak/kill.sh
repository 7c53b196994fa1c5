#!/usr/bin/env bash
# Kill soak: the end-to-end crash-safety test (tests/e2e/kill.rs) with many more kills
# than CI runs (CI: 30).
#
# The test backs up a tree of 8 files of 3 MiB, then for every round changes one file,
# adds a new one of 2 MiB, starts `cairn backup` and kills it with SIGKILL after a
# random delay (0 to 1.2 times the duration of the first, full backup). After every kill
# `cairn check` must pass; every fifth round every snapshot taken so far must restore
# byte-exact and a backup must run to completion; at the end `cairn check --read-data`
# must pass, and at least a third of the kills must have landed while the backup ran.
#
# Environment:
#   ROUNDS   number of kills of backup (default 300)
#   PRUNE_KILLS, COPY_KILLS  kills that must land mid-prune and mid-copy (default
#            ROUNDS / 10 each; each is followed by check --read-data and a restore of
#            every kept or copied snapshot)
#   TMPDIR   where the test's repository and trees go (default /tmp)
#   LOG      a file to copy the output to (default: none)
#
# The cost grows faster than the number of rounds: the tree grows by 2 MiB a round and
# every snapshot is restored every fifth round.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-300}
cd "$ROOT"

if [ -n "${LOG:-}" ]; then
    exec > >(tee "$LOG") 2>&1
fi

echo "kill soak: $ROUNDS rounds, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (modified tree)'), $(date -u +%FT%TZ)"
# Build first, so the time below is the test's alone.
cargo test --release --test e2e --no-run

start=$(date +%s)
status=0
CAIRN_KILL_ROUNDS=$ROUNDS CAIRN_PRUNE_KILLS=${PRUNE_KILLS:-$((ROUNDS / 10))} \
    CAIRN_COPY_KILLS=${COPY_KILLS:-$((ROUNDS / 10))} cargo test --release --test e2e kill -- --nocapture || status=$?
secs=$(($(date +%s) - start))

printf 'kill soak: %s rounds, %s in %dm%02ds\n' "$ROUNDS" \
    "$([ $status -eq 0 ] && echo passed || echo "FAILED (exit $status)")" $((secs / 60)) $((secs % 60))
exit $status

#!/usr/bin/env bash
# Fault soak: the fault-injection campaign (tests/e2e/faults.rs) with many more rounds
# than CI runs (CI: 12 rounds at a fault rate of 0.04).
#
# Each round changes the source tree, then runs backup, every third round forget +
# prune, a copy into a second repository and a restore, each on a repository whose
# operations fail at random (EIO, ENOSPC, reset connections, lost answers), come back
# short or with a flipped bit, or are delayed. After each command: check --read-data
# and a byte-exact restore of every snapshot. The test prints what was injected and how
# each command ended.
#
# Environment:
#   ROUNDS   rounds (default 200)
#   RATE     probability of a fault per operation (default 0.04)
#   LOG      a file to copy the output to (default: none)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-200}
RATE=${RATE:-0.04}
cd "$ROOT"

if [ -n "${LOG:-}" ]; then
    exec > >(tee "$LOG") 2>&1
fi

echo "fault soak: $ROUNDS rounds at rate $RATE, commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u +%FT%TZ)"
cargo test --release --test e2e --no-run

start=$(date +%s)
status=0
CAIRN_FAULT_ROUNDS=$ROUNDS CAIRN_FAULT_RATE=$RATE \
    cargo test --release --test e2e faults::commands_under_random_faults -- --nocapture 2>&1 |
    grep -v ' failed: ' || status=$?
secs=$(($(date +%s) - start))

printf 'fault soak: %s rounds, %s in %dm%02ds\n' "$ROUNDS" \
    "$([ $status -eq 0 ] && echo passed || echo "FAILED (exit $status)")" $((secs / 60)) $((secs % 60))
exit $status

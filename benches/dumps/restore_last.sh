#!/usr/bin/env bash
# Time reading the last night back from the repositories cairn_nights.sh and
# restic_nights.sh left (cairn's newest dump is a chain of deltas up to 8 links deep),
# and compare it with the night file. Prints CSV: tool,series,seconds
# Usage: restore_last.sh SERIES_NAME WORKDIR night-7.sql
set -euo pipefail
series=$1; work=$2; last=$3
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CAIRN=${CAIRN:-$ROOT/target/release/cairn}
echo "tool,series,seconds"
start=$(date +%s.%N)
CAIRN_REPOSITORY=$work/cairn-$series CAIRN_PASSWORD=${CAIRN_PASSWORD:-cairn-bench} \
  CAIRN_CACHE_DIR=$work/cairn-cache-$series "$CAIRN" dump latest /db.sql > "$work/restored-cairn"
echo "cairn,$series,$(echo "$(date +%s.%N) - $start" | bc)"
cmp "$work/restored-cairn" "$last"
start=$(date +%s.%N)
RESTIC_PASSWORD=${RESTIC_PASSWORD:-cairn-bench} RESTIC_CACHE_DIR=$work/restic-cache-$series \
  restic --repo "$work/restic-$series" dump --quiet latest db.sql > "$work/restored-restic"
echo "restic,$series,$(echo "$(date +%s.%N) - $start" | bc)"
cmp "$work/restored-restic" "$last"
rm -f "$work/restored-cairn" "$work/restored-restic"

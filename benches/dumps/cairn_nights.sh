#!/usr/bin/env bash
# Back up a series of night files with cairn (--stdin-name), one snapshot per night, and
# print the repository size (du -sb) after each night as CSV, like restic_nights.sh:
#   series,night,repo_bytes,growth_bytes,seconds
# Usage: cairn_nights.sh SERIES_NAME WORKDIR night-1.sql night-2.sql ...
# Environment: CAIRN (default target/release/cairn).
set -euo pipefail
series=$1; work=$2; shift 2
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CAIRN=${CAIRN:-$ROOT/target/release/cairn}
export CAIRN_REPOSITORY=$work/cairn-$series
export CAIRN_PASSWORD=${CAIRN_PASSWORD:-cairn-bench}
export CAIRN_CACHE_DIR=$work/cairn-cache-$series
unset CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND
rm -rf "$CAIRN_REPOSITORY" "$CAIRN_CACHE_DIR"
"$CAIRN" --version >&2
"$CAIRN" init >&2
echo "series,night,repo_bytes,growth_bytes,seconds"
prev=$(du -sb "$CAIRN_REPOSITORY" | cut -f1)
n=0
for f in "$@"; do
  n=$((n+1))
  start=$(date +%s.%N)
  "$CAIRN" backup --quiet --stdin-name db.sql --host bench < "$f" >&2
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  size=$(du -sb "$CAIRN_REPOSITORY" | cut -f1)
  echo "$series,$n,$size,$((size-prev)),$secs"
  prev=$size
done

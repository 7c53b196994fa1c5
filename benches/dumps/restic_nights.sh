#!/usr/bin/env bash
# Back up a series of night files with restic (--stdin), one snapshot per night,
# and print the repository size (du -sb) after each night as CSV:
#   series,night,repo_bytes,growth_bytes,seconds
# Usage: restic_nights.sh SERIES_NAME WORKDIR night-1.sql night-2.sql ...
set -euo pipefail
series=$1; work=$2; shift 2
repo=$work/restic-$series
export RESTIC_PASSWORD=${RESTIC_PASSWORD:-cairn-bench}
export RESTIC_CACHE_DIR=$work/restic-cache-$series
rm -rf "$repo" "$RESTIC_CACHE_DIR"
restic version >&2
restic init --repo "$repo" --repository-version 2 >&2
echo "series,night,repo_bytes,growth_bytes,seconds"
prev=$(du -sb "$repo" | cut -f1)
n=0
for f in "$@"; do
  n=$((n+1))
  start=$(date +%s.%N)
  restic --repo "$repo" backup --quiet --stdin --stdin-filename db.sql --host bench < "$f" >&2
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  size=$(du -sb "$repo" | cut -f1)
  echo "$series,$n,$size,$((size-prev)),$secs"
  prev=$size
done

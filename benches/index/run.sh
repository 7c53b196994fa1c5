#!/usr/bin/env bash
# Memory and time of a backup against a large index.
#
# For each blob count in COUNTS, in a fresh repository: add a synthetic index of that
# many blobs (examples `synthetic-index`: random ids, 256 per pack, packs that do not
# exist), then under GNU time (`/usr/bin/time -v`):
#   small backup   a directory of 1,000 small files
#   stream backup  a 1 GiB random stream (16,000 new blobs looked up and added)
# and print max RSS and wall time of each, and the index's size on disk.
#
# Environment: COUNTS (default "0 1000000 10000000"), INDEX_DIR (default
# /var/tmp/cairn-index; about 0.5 GiB of index files and 1 GiB of packs per count),
# CAIRN (default target/release/cairn).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
COUNTS=${COUNTS:-"0 1000000 10000000"}
INDEX_DIR=${INDEX_DIR:-/var/tmp/cairn-index}
CAIRN=${CAIRN:-$ROOT/target/release/cairn}
export CAIRN_PASSWORD=cairn-index-bench
unset CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND

(cd "$ROOT" && cargo build --release --quiet --bin cairn --example synthetic-index)
SYNTH=$ROOT/target/release/examples/synthetic-index
mkdir -p "$INDEX_DIR"
small=$INDEX_DIR/small
if [ ! -d "$small" ]; then
    mkdir -p "$small"
    for i in $(seq 1 1000); do head -c $((i * 37)) /dev/urandom > "$small/f$i"; done
fi

measure() { # label, command... (standard input passes through to the command)
    local label=$1; shift
    /usr/bin/time -v -o "$INDEX_DIR/time.txt" "$@" > /dev/null
    local rss wall
    rss=$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$INDEX_DIR/time.txt")
    wall=$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$INDEX_DIR/time.txt")
    printf '%-12s %-14s max RSS %8s MiB   wall %s\n' "$count" "$label" "$rss" "$wall"
}

printf '%-12s %-14s\n' "blobs" "step"
for count in $COUNTS; do
    repo=$INDEX_DIR/repo-$count
    rm -rf "$repo"
    "$CAIRN" -r "$repo" init > /dev/null
    if [ "$count" -gt 0 ]; then "$SYNTH" "$repo" "$count" 2> /dev/null; fi
    printf '%-12s %-14s %s\n' "$count" "index on disk" "$(du -sh "$repo/index" | cut -f1)"
    measure "small backup" "$CAIRN" -r "$repo" backup "$small"
    head -c 1073741824 /dev/urandom | measure "stream backup" "$CAIRN" -r "$repo" backup --stdin-name big
    rm -rf "$repo"
done
rm -f "$INDEX_DIR/time.txt"

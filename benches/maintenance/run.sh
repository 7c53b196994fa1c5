#!/usr/bin/env bash
# Maintenance commands on a repository of many snapshots of a large tree.
#
# Copies the tree of 100,000 small files that benches/e2e/run.sh generates (run
# `benches/e2e/run.sh --datasets-only` first), backs it up SNAPSHOTS times (default 100),
# changing a file in a different directory before each backup, then times under
# /usr/bin/time -v (wall time, max RSS):
#   find      a name that occurs once per snapshot, and one matching 1% of the files,
#             served from the catalog (which the backups filled) and with --no-cache
#             (every tree read from the repository)
#   snapshots from the catalog and with --no-cache
#   catalog rebuild (and the catalog's size)
#   check     --read-data (with the bytes read: throughput)
#   forget    --keep-last half of the snapshots
#   prune     --max-unused 0% (deletes and repacks what the forgotten ones alone used)
#
# Environment: SNAPSHOTS (100), FIND_DIR (/var/tmp/cairn-maintenance), BENCH_DIR
# (/var/tmp/cairn-bench), CAIRN (target/release/cairn).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SNAPSHOTS=${SNAPSHOTS:-100}
FIND_DIR=${FIND_DIR:-/var/tmp/cairn-maintenance}
BENCH_DIR=${BENCH_DIR:-/var/tmp/cairn-bench}
CAIRN=${CAIRN:-$ROOT/target/release/cairn}
DATA=$BENCH_DIR/data/small-100000
[ -d "$DATA" ] || { echo "no $DATA: run benches/e2e/run.sh --datasets-only" >&2; exit 1; }
export CAIRN_PASSWORD=cairn-maintenance-bench CAIRN_REPOSITORY=$FIND_DIR/repo
export CAIRN_CACHE_DIR=$FIND_DIR/cache
unset CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND
rm -rf "$FIND_DIR"; mkdir -p "$FIND_DIR"
cp -a "$DATA" "$FIND_DIR/tree"
"$CAIRN" init > /dev/null
dirs=("$FIND_DIR"/tree/*/*)
start=$(date +%s)
for i in $(seq 1 "$SNAPSHOTS"); do
    d=${dirs[$(( (i * 7919) % ${#dirs[@]} ))]}
    echo "change $i" > "$d/changed-$i.log"
    "$CAIRN" backup "$FIND_DIR/tree" > /dev/null
done
echo "$SNAPSHOTS snapshots of $(find "$FIND_DIR/tree" -type f | wc -l) files in $(( $(date +%s) - start )) s"
# measure LABEL COMMAND...: runs it under GNU time, output in $FIND_DIR/out.txt.
measure() {
    local label=$1; shift
    /usr/bin/time -v -o "$FIND_DIR/time.txt" "$@" > "$FIND_DIR/out.txt" 2> /dev/null
    printf '%-28s wall %8s  max RSS %7s MiB  %s\n' "$label" \
        "$(awk -F': ' '/Elapsed \(wall/ {print $2}' "$FIND_DIR/time.txt")" \
        "$(awk -F': ' '/Maximum resident/ {printf "%.1f", $2/1024}' "$FIND_DIR/time.txt")" \
        "${NOTE:-}"
}
echo "repository: $(du -sh "$CAIRN_REPOSITORY" | cut -f1)"
for pattern in 'changed-1.log' '*77.txt'; do
    measure "find '$pattern'" "$CAIRN" find "$pattern"
    echo "    $(wc -l < "$FIND_DIR/out.txt") matches (from the catalog)"
    measure "find '$pattern' --no-cache" "$CAIRN" --no-cache find "$pattern"
    echo "    $(wc -l < "$FIND_DIR/out.txt") matches (from the repository)"
done
measure "snapshots" "$CAIRN" snapshots
measure "snapshots --no-cache" "$CAIRN" --no-cache snapshots
measure "catalog rebuild" "$CAIRN" catalog rebuild
sed 's/^/    /' "$FIND_DIR/out.txt"
measure "check --read-data" "$CAIRN" check --read-data --verbose
echo "    $(tail -2 "$FIND_DIR/out.txt" | head -1)"
measure "forget --keep-last $((SNAPSHOTS / 2))" "$CAIRN" forget --keep-last $((SNAPSHOTS / 2)) --group-by none
measure "prune --max-unused 0%" "$CAIRN" prune --max-unused 0% --verbose
sed 's/^/    /' "$FIND_DIR/out.txt"
measure "check after prune" "$CAIRN" check
rm -rf "$FIND_DIR"

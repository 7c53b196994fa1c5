#!/usr/bin/env bash
# Incremental backups and `find` through the catalog, two cairn binaries side by side
# (before and after a change to the catalog), on one machine, in one run.
#
# Makes the tree of small files (benches/e2e/gen_small.py, FILES files), backs it up
# SNAPSHOTS times with binary A (a file added in another directory before each), copies
# that repository for B, and fills each binary's own catalog with `catalog rebuild`.
# Then ROUNDS times, alternating A and B (each on its own repository copy and catalog):
# adds a file to the tree, times `backup` (incremental: the parent's trees from the
# catalog), `find changed-1.log` (one match per snapshot) and `find '*77.txt'` (1% of
# the files in every snapshot), under GNU time. Prints each step's median wall and CPU
# (user + system) time and the ratios B/A.
#
# Usage: benches/catalog/run.sh A_BINARY B_BINARY
# Environment: FILES (100000), SNAPSHOTS (20), ROUNDS (7), DIR (/var/tmp/cairn-catbench).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
A=$(realpath "$1"); B=$(realpath "$2")
FILES=${FILES:-100000}; SNAPSHOTS=${SNAPSHOTS:-20}; ROUNDS=${ROUNDS:-7}
DIR=${DIR:-/var/tmp/cairn-catbench}
export CAIRN_PASSWORD=cairn-catalog-bench
unset CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND CAIRN_REPOSITORY CAIRN_CACHE_DIR
rm -rf "$DIR/a" "$DIR/b" "$DIR/tree"; mkdir -p "$DIR"
if [ ! -d "$DIR/data-$FILES" ]; then
    python3 "$ROOT/benches/e2e/gen_small.py" "$DIR/data-$FILES.tmp" "$FILES" 42
    mv "$DIR/data-$FILES.tmp" "$DIR/data-$FILES"
fi
cp -a "$DIR/data-$FILES" "$DIR/tree"
mkdir -p "$DIR/a" "$DIR/b"
on() { # on a|b ARGS...: runs that side's binary on its repository and catalog
    local side=$1; shift
    local bin=$A; [ "$side" = b ] && bin=$B
    env CAIRN_REPOSITORY="$DIR/$side/repo" CAIRN_CACHE_DIR="$DIR/$side/cache" "$bin" "$@"
}
on a init > /dev/null
dirs=("$DIR"/tree/*/*)
change() { local i=$1; echo "change $i" > "${dirs[$(( (i * 7919) % ${#dirs[@]} ))]}/changed-$i.log"; }
for i in $(seq 1 "$SNAPSHOTS"); do change "$i"; on a backup "$DIR/tree" > /dev/null; done
cp -a "$DIR/a/repo" "$DIR/b/repo"
for side in a b; do on $side catalog rebuild > /dev/null; done
# times a|b ARGS...: "wall cpu" seconds of one run of that side (cpu = user + system).
times() {
    local side=$1; shift
    local bin=$A; [ "$side" = b ] && bin=$B
    /usr/bin/time -f '%e %U %S' -o "$DIR/time.txt" env CAIRN_REPOSITORY="$DIR/$side/repo" \
        CAIRN_CACHE_DIR="$DIR/$side/cache" "$bin" "$@" > /dev/null 2>&1
    awk '{printf "%s %.2f", $1, $2 + $3}' "$DIR/time.txt"
}
declare -A W C
for r in $(seq 1 "$ROUNDS"); do
    change $((SNAPSHOTS + r))
    # Alternate which side goes first, so neither always runs on a warmer machine.
    order="a b"; [ $((r % 2)) = 0 ] && order="b a"
    for side in $order; do
        for step in backup find1 find77; do
            case $step in
                backup) t=$(times $side backup "$DIR/tree") ;;
                find1) t=$(times $side find changed-1.log) ;;
                find77) t=$(times $side find '*77.txt') ;;
            esac
            W[$side,$step]+="${t% *} "; C[$side,$step]+="${t#* } "
        done
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
printf '%-8s %9s %9s %7s   %9s %9s %7s\n' step "wall A" "wall B" B/A "cpu A" "cpu B" B/A
for step in backup find1 find77; do
    wa=$(echo "${W[a,$step]}" | median); wb=$(echo "${W[b,$step]}" | median)
    ca=$(echo "${C[a,$step]}" | median); cb=$(echo "${C[b,$step]}" | median)
    printf '%-8s %8.2fs %8.2fs %7.3f   %8.2fs %8.2fs %7.3f\n' "$step" "$wa" "$wb" \
        "$(echo "$wb / $wa" | bc -l)" "$ca" "$cb" "$(echo "$cb / $ca" | bc -l)"
done
for side in a b; do
    echo "catalog $side: $(du -sh "$DIR/$side/cache" | cut -f1), $(find "$DIR/$side/repo/snapshots" -type f | wc -l) snapshots"
done
rm -rf "$DIR/a" "$DIR/b" "$DIR/tree" "$DIR/time.txt"

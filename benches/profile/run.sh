#!/usr/bin/env bash
# Profile of cairn's backups, stage by stage (see stages.py for the stages).
#
# Usage: benches/profile/run.sh
#   Records `perf record -g` profiles of four runs on the datasets of benches/e2e
#   (make them first: benches/e2e/run.sh --datasets-only):
#     tree-first   first backup of the mixed tree
#     tree-again   backup of the same tree, unchanged
#     stream-1     night 1 of the dumps from standard input
#     stream-5     night 5, after nights 2 to 4
#   and prints, for each, the wall time and the CPU seconds per stage.
#
# Environment: CAIRN [target/release/cairn], BENCH_DIR [/var/tmp/cairn-bench],
#   MIXED [mixed-2.0G], DUMPS [dumps-5x390MB], FREQ [999 samples a second].
# Needs perf (linux-perf) with permission to record (root, or
# kernel.perf_event_paranoid <= 1), python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORKSPACE=$(cd "$HERE/../.." && pwd)
CAIRN=${CAIRN:-$WORKSPACE/target/release/cairn}
BENCH_DIR=${BENCH_DIR:-/var/tmp/cairn-bench}
MIXED=$BENCH_DIR/data/${MIXED:-mixed-2.0G}
DUMPS=$BENCH_DIR/data/${DUMPS:-dumps-5x390MB}
FREQ=${FREQ:-999}
OUT=$BENCH_DIR/profile-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
[[ -d $MIXED && -d $DUMPS ]] || { echo "datasets missing: run benches/e2e/run.sh --datasets-only" >&2; exit 1; }

export CAIRN_PASSWORD=cairn-profile XDG_CACHE_HOME=$OUT/cache
record() { # NAME CMD... (stdin from $IN when set)
    local name=$1
    shift
    /usr/bin/time -f '%e %U %S %M' -o "$OUT/$name.time" \
        perf record -q -g -F "$FREQ" -o "$OUT/$name.data" "$@" <"${IN:-/dev/null}" >/dev/null 2>"$OUT/$name.err"
    read -r wall user sys rss <"$OUT/$name.time"
    echo "### $name: wall $wall s, CPU $user + $sys s, max RSS $((rss / 1024)) MiB"
    python3 "$HERE/stages.py" "$OUT/$name.data"
    echo
}

export CAIRN_REPOSITORY=$OUT/tree
"$CAIRN" init >/dev/null
record tree-first "$CAIRN" backup "$MIXED"
record tree-again "$CAIRN" backup "$MIXED"

export CAIRN_REPOSITORY=$OUT/stream
"$CAIRN" init >/dev/null
IN=$DUMPS/night-1.sql record stream-1 "$CAIRN" backup --stdin-name db.sql
for n in 2 3 4; do "$CAIRN" backup --stdin-name db.sql <"$DUMPS/night-$n.sql" >/dev/null; done
IN=$DUMPS/night-5.sql record stream-5 "$CAIRN" backup --stdin-name db.sql
rm -rf "$OUT/tree" "$OUT/stream" "$OUT/cache"
echo "profiles in $OUT (perf report -i FILE.data)"

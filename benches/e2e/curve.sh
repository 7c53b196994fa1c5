#!/usr/bin/env bash
# The compression curve: one first backup per tool and compression setting, on the
# datasets of run.sh; wall time, CPU time and repository size for each.
#
# Usage: benches/e2e/curve.sh            (datasets from benches/e2e/run.sh --datasets-only)
#
# Environment: CAIRN [target/release/cairn], BENCH_DIR [/var/tmp/cairn-bench],
#   DATASETS ["mixed-2.0G small-100000"] (names under $BENCH_DIR/data),
#   CAIRN_LEVELS ["1 2 3 6"], RESTIC_MODES ["auto max"], BUPSTASH_MODES
#   ["zstd:1 zstd:3 zstd:6"], BORG_MODES ["lz4 zstd,3"], TOOLS ["cairn restic bupstash borg"].
# The page cache is warm (each dataset is read once before its first backup), so the
# figures are the tools' CPU and the compression trade, not the disk.
# Prints a markdown table and keeps it as $BENCH_DIR/curve-<run>.md.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORKSPACE=$(cd "$HERE/../.." && pwd)
CAIRN=${CAIRN:-$WORKSPACE/target/release/cairn}
BENCH_DIR=${BENCH_DIR:-/var/tmp/cairn-bench}
DATASETS=${DATASETS:-mixed-2.0G small-100000}
CAIRN_LEVELS=${CAIRN_LEVELS:-1 2 3 6}
RESTIC_MODES=${RESTIC_MODES:-auto max}
BUPSTASH_MODES=${BUPSTASH_MODES:-zstd:1 zstd:3 zstd:6}
BORG_MODES=${BORG_MODES:-lz4 zstd,3}
TOOLS=${TOOLS:-cairn restic bupstash borg}
RUN=$BENCH_DIR/curve-run
OUT=$BENCH_DIR/curve-$(date +%Y%m%d-%H%M%S).md
PW=cairn-bench-password
export CAIRN_PASSWORD=$PW RESTIC_PASSWORD=$PW BORG_PASSPHRASE=$PW BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

rows=()
one() { # TOOL SETTING DATASET
    local tool=$1 setting=$2 ds=$3 src=$BENCH_DIR/data/$3 repo=$RUN/repo
    rm -rf "$RUN" && mkdir -p "$RUN/home"
    export XDG_CACHE_HOME=$RUN/home/cache RESTIC_CACHE_DIR=$RUN/home/restic BORG_BASE_DIR=$RUN/home
    export BUPSTASH_SEND_LOG=$RUN/home/sendlog BUPSTASH_QUERY_CACHE=$RUN/home/query
    local cmd
    case $tool in
        cairn) CAIRN_REPOSITORY=$repo "$CAIRN" init --compression "$setting" >/dev/null
            cmd=(env CAIRN_REPOSITORY="$repo" "$CAIRN" backup "$src") ;;
        restic) RESTIC_REPOSITORY=$repo restic init -q
            cmd=(env RESTIC_REPOSITORY="$repo" restic backup -q --compression "$setting" "$src") ;;
        bupstash) bupstash new-key -o "$RUN/key" && BUPSTASH_REPOSITORY=$repo bupstash init >/dev/null
            cmd=(env BUPSTASH_REPOSITORY="$repo" BUPSTASH_KEY="$RUN/key" bupstash put --compression "$setting" "$src") ;;
        borg) borg init --encryption=repokey-blake2 "$repo" >/dev/null 2>&1
            cmd=(borg create --compression "$setting" "$repo::a" "$src") ;;
    esac
    /usr/bin/time -f '%e %U %S %M' -o "$RUN/time" "${cmd[@]}" >/dev/null 2>"$RUN/err" || { echo "$tool $setting $ds failed:" >&2; tail -5 "$RUN/err" >&2; return; }
    local wall user sys rss size
    read -r wall user sys rss <"$RUN/time"
    size=$(du -sb "$repo" | cut -f1)
    rows+=("$(printf '| %s | %s | %s | %.2f | %.2f | %.1f | %d |' "$ds" "$tool" "$setting" "$wall" "$(echo "$user + $sys" | bc)" "$(echo "$size / 1048576" | bc -l)" $((rss / 1024)))")
    echo "${rows[-1]}" >&2
}

for ds in $DATASETS; do
    tar -cf - -C "$BENCH_DIR/data" "$ds" | cat >/dev/null # warm the page cache
    for tool in $TOOLS; do
        case $tool in
            cairn) modes=$CAIRN_LEVELS ;; restic) modes=$RESTIC_MODES ;;
            bupstash) modes=$BUPSTASH_MODES ;; borg) modes=$BORG_MODES ;;
        esac
        for m in $modes; do one "$tool" "$m" "$ds"; done
    done
done
rm -rf "$RUN"
{
    echo "| dataset | tool | compression | wall s | CPU s | repository MiB | max RSS MiB |"
    echo "|---|---|---|--:|--:|--:|--:|"
    printf '%s\n' "${rows[@]}"
} | tee "$OUT"

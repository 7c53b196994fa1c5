#!/usr/bin/env bash
# Peak memory of cairn against the size of what it backs up, restores and dumps.
#
# For every size in SIZES (GiB), in fresh repositories:
#   stream backup   a random stream of that size piped to `cairn backup --stdin-name big.bin`
#   stream dump     `cairn dump latest /big.bin > /dev/null`
#   stream restore  `cairn restore latest --target DIR`: the stream restored as a file
#   file backup     that restored file backed up as a path, into a new repository (a
#                   large regular file, through the file chunker)
#   sparse backup   a sparse file of that size (a few MiB of data at a few offsets, the rest
#                   holes) backed up as a path
#   sparse restore  `cairn restore latest --target DIR` of that file
# Each step runs under GNU time (`/usr/bin/time -v`), which gives the peak resident set
# size (max RSS) of cairn's process. The stream is checked (the CRC and length, from
# `cksum`, of a second dump and of the restored file against those of the stream); the
# restored sparse file is compared with the original (`cmp`) and its allocated size
# (`du`) is shown next to the original's, to show that holes stay holes.
#
# Exit status 1 if a check fails or if a step's max RSS grows with size: by more than
# 16 MiB from the smallest to the largest size, beyond what the repository's index needs
# for the blobs a backup adds (80 bytes each at most; see the end of the script).
#
# Environment:
#   SIZES     sizes in GiB (default "1 5 20")
#   MEM_DIR   work directory (default /var/tmp/cairn-mem); repositories are deleted
#             after each size, the results stay in $MEM_DIR/results.tsv
#   CAIRN     the binary (default target/release/cairn, built if missing)
#   GEN       random stream generator: openssl, urandom or python (default: the fastest
#             of those available, measured on 256 MiB)
#   VERIFY    1 (default) to check the dumped and restored stream and the restored
#             sparse file, 0 not to
#
# Random data neither compresses nor deduplicates: a repository holds about the size of
# the data, and the restored stream is kept until the file backup is done, so the run
# needs about twice the largest size free under MEM_DIR (20 GiB: ~42 GiB).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIZES=${SIZES:-"1 5 20"}
MEM_DIR=${MEM_DIR:-/var/tmp/cairn-mem}
CAIRN=${CAIRN:-$ROOT/target/release/cairn}
VERIFY=${VERIFY:-1}
GIB=$((1 << 30))
MIB=$((1 << 20))

die() { echo "error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

[ -x /usr/bin/time ] && /usr/bin/time --version 2>&1 | grep -q GNU ||
    die "GNU time is needed at /usr/bin/time (apt-get install time)"
for t in cmp du dd truncate cksum head; do
    command -v "$t" >/dev/null || die "$t is needed"
done
if [ ! -x "$CAIRN" ]; then
    log "building cairn"
    (cd "$ROOT" && cargo build --release)
fi

mkdir -p "$MEM_DIR"
MEM_DIR=$(cd "$MEM_DIR" && pwd)
# Run a copy, so a rebuild during the run does not change the binary under test.
cp "$CAIRN" "$MEM_DIR/cairn.bin"
CAIRN=$MEM_DIR/cairn.bin
trap 'rm -f "$MEM_DIR/cairn.bin" "$MEM_DIR/time.txt"' EXIT
log "cairn $("$CAIRN" --version 2>/dev/null || true), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' (modified tree)')"
export CAIRN_PASSWORD=cairn-memory-bench
unset CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND

# ---------------------------------------------------------------- stream generators
# gen NAME BYTES: BYTES random bytes on stdout. openssl and python are deterministic
# (AES-CTR keystream, seeded PRNG); urandom is not.
gen() {
    case $1 in
    # openssl dies of SIGPIPE when head has enough: not an error.
    openssl) { openssl enc -aes-128-ctr -pass pass:cairn -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } | head -c "$2" ;;
    urandom) head -c "$2" /dev/urandom ;;
    python) python3 -c '
import random, sys
n = int(sys.argv[1]); r = random.Random(7); out = sys.stdout.buffer; b = 1 << 22
while n > 0:
    k = min(n, b); out.write(r.randbytes(k)); n -= k
' "$2" ;;
    *) die "unknown generator $1" ;;
    esac
}

available_gens() {
    command -v openssl >/dev/null && echo openssl
    echo urandom
    command -v python3 >/dev/null && python3 -c 'import random; random.Random(1).randbytes(1)' 2>/dev/null && echo python
    return 0
}

if [ -z "${GEN:-}" ]; then
    best=0
    for g in $(available_gens); do
        start=$(date +%s%N)
        gen "$g" $((256 * MIB)) >/dev/null
        ns=$(($(date +%s%N) - start))
        mbs=$((256 * 1000000000 / (ns > 0 ? ns : 1)))
        log "generator $g: $mbs MiB/s"
        if [ "$mbs" -gt "$best" ]; then best=$mbs; GEN=$g; fi
    done
fi
log "using generator $GEN"

# ---------------------------------------------------------------- measuring
RESULTS=$MEM_DIR/results.tsv
printf 'size_gib\top\tmax_rss_kib\twall_s\tcpu_s\n' >"$RESULTS"

# measure SIZE OP CMD...: runs CMD under GNU time (stdin and stdout as given), records
# max RSS, wall and CPU time. Fails the run if CMD fails.
measure() {
    local size=$1 op=$2; shift 2
    local tf=$MEM_DIR/time.txt
    if ! /usr/bin/time -v -o "$tf" "$@"; then
        cat "$tf" >&2
        die "$op at $size GiB failed"
    fi
    local rss wall user sys
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tf")
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {
        n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s }' "$tf")
    user=$(awk -F': ' '/User time/ {print $2}' "$tf")
    sys=$(awk -F': ' '/System time/ {print $2}' "$tf")
    printf '%s\t%s\t%s\t%s\t%s\n' "$size" "$op" "$rss" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN {printf "%.1f", u + s}')" >>"$RESULTS"
    log "  $op: max RSS $((rss / 1024)) MiB, ${wall}s"
}

FAILED=()
SPARSE_ROWS=()

for size in $SIZES; do
    bytes=$((size * GIB))
    work=$MEM_DIR/$size
    rm -rf "$work"
    mkdir -p "$work"

    # ---- (a) stream backup, (c) dump
    log "$size GiB: stream"
    export CAIRN_REPOSITORY=$work/repo-stream
    "$CAIRN" init >/dev/null
    if [ "$VERIFY" = 1 ]; then
        # The checksum of the stream, taken on the way into cairn (a FIFO, so it also works
        # for a non-deterministic generator).
        mkfifo "$work/fifo"
        cksum <"$work/fifo" >"$work/stream.cksum" &
        hasher=$!
        gen "$GEN" "$bytes" | tee "$work/fifo" |
            measure "$size" stream-backup "$CAIRN" backup --stdin-name big.bin >/dev/null
        wait "$hasher"
        rm -f "$work/fifo"
    else
        gen "$GEN" "$bytes" |
            measure "$size" stream-backup "$CAIRN" backup --stdin-name big.bin >/dev/null
    fi
    measure "$size" stream-dump "$CAIRN" dump latest /big.bin >/dev/null
    if [ "$VERIFY" = 1 ]; then
        got=$("$CAIRN" dump latest /big.bin | cksum)
        want=$(cat "$work/stream.cksum")
        if [ "$got" = "$want" ]; then
            log "  dump matches the stream (CRC and length: $want)"
        else
            log "  MISMATCH: dump cksum $got, stream cksum $want"
            FAILED+=("$size GiB: dumped stream differs from the stream backed up")
        fi
    fi
    # The stream restored as a file: restore of a large file with real data.
    measure "$size" stream-restore "$CAIRN" restore latest --target "$work/restore-stream" >/dev/null
    big=$work/restore-stream/big.bin
    if [ "$VERIFY" = 1 ]; then
        got=$(cksum <"$big")
        if [ "$got" = "$want" ]; then
            log "  restored stream matches"
        else
            log "  MISMATCH: restored cksum $got, stream cksum $want"
            FAILED+=("$size GiB: restored stream differs from the stream backed up")
        fi
    fi
    log "  repository: $(du -sh "$CAIRN_REPOSITORY" | cut -f1)"
    rm -rf "$CAIRN_REPOSITORY"

    # ---- the restored stream backed up as a regular file (file chunker, file path)
    log "$size GiB: large file"
    export CAIRN_REPOSITORY=$work/repo-file
    "$CAIRN" init >/dev/null
    measure "$size" file-backup "$CAIRN" backup "$big" >/dev/null
    rm -rf "$CAIRN_REPOSITORY" "$work/restore-stream"

    # ---- (b) sparse file backup and restore
    log "$size GiB: sparse file"
    export CAIRN_REPOSITORY=$work/repo-sparse
    "$CAIRN" init >/dev/null
    f=$work/sparse.bin
    truncate -s "$bytes" "$f"
    # Data at the start, at an unaligned offset a third in, in the middle, and near the
    # end (leaving a trailing hole of 3 MiB). 13 MiB of data in all.
    for spec in "0 4" "$((bytes / 3 + 12345)) 3" "$((bytes / 2)) 4" "$((bytes - 5 * MIB)) 2"; do
        set -- $spec
        head -c $(($2 * MIB)) /dev/urandom |
            dd of="$f" bs=1M seek="$1" oflag=seek_bytes conv=notrunc status=none
    done
    sync "$f"
    measure "$size" sparse-backup "$CAIRN" backup "$f" >/dev/null
    measure "$size" sparse-restore "$CAIRN" restore latest --target "$work/restore" >/dev/null
    r=$work/restore$f
    if [ "$VERIFY" = 1 ]; then
        if cmp "$f" "$r"; then
            log "  restored file is identical"
        else
            FAILED+=("$size GiB: restored sparse file differs")
        fi
    fi
    orig_du=$(du -k "$f" | cut -f1)
    rest_du=$(du -k "$r" | cut -f1)
    log "  allocated: original $((orig_du / 1024)) MiB, restored $((rest_du / 1024)) MiB (apparent size $size GiB)"
    SPARSE_ROWS+=("$size	$(du -k --apparent-size "$f" | cut -f1)	$orig_du	$rest_du")
    if [ "$rest_du" -gt $((orig_du * 2 + 16 * 1024)) ]; then
        FAILED+=("$size GiB: restored sparse file allocates $rest_du KiB against $orig_du KiB: holes were filled")
    fi
    rm -rf "$work"
done

# ---------------------------------------------------------------- report
ops="stream-backup stream-dump stream-restore file-backup sparse-backup sparse-restore"
echo
echo "Max RSS (MiB) by size (GiB); wall time in parentheses"
echo
printf '| size |'; for op in $ops; do printf ' %s |' "$op"; done; echo
printf '|---:|'; for op in $ops; do printf -- '---:|'; done; echo
for size in $SIZES; do
    printf '| %s GiB |' "$size"
    for op in $ops; do
        awk -F'\t' -v s="$size" -v o="$op" '$1 == s && $2 == o {
            printf " %.1f (%ss) |", $3 / 1024, $4 }' "$RESULTS"
    done
    echo
done
echo
echo "Sparse file: apparent size, allocated (du) original and restored, KiB"
echo
echo "| size | apparent | original du | restored du |"
echo "|---:|---:|---:|---:|"
for row in "${SPARSE_ROWS[@]}"; do
    IFS=$'\t' read -r s a o r <<<"$row"
    echo "| $s GiB | $a | $o | $r |"
done
echo

# Ceiling and growth: an operation's RSS at the largest size against the smallest, and
# the slope between them in MiB of RSS per GiB of data.
ceiling=$(awk -F'\t' 'NR > 1 && $3 > m {m = $3} END {printf "%.1f", m / 1024}' "$RESULTS")
echo "Ceiling: max RSS over all operations and sizes: $ceiling MiB"
first=${SIZES%% *}
last=${SIZES##* }
if [ "$first" != "$last" ]; then
    for op in $ops; do
        a=$(awk -F'\t' -v s="$first" -v o="$op" '$1 == s && $2 == o {print $3}' "$RESULTS")
        b=$(awk -F'\t' -v s="$last" -v o="$op" '$1 == s && $2 == o {print $3}' "$RESULTS")
        slope=$(awk -v a="$a" -v b="$b" -v x="$first" -v y="$last" \
            'BEGIN {printf "%.1f", (b - a) / 1024 / (y - x)}')
        line="$op: $((a / 1024)) MiB at $first GiB, $((b / 1024)) MiB at $last GiB ($slope MiB per GiB)"
        # A backup adds blobs to the repository's index, which is in memory: 48 bytes per
        # blob, up to 80 while new ones wait in a hash map to be merged. That growth is
        # the repository's, the same for many small backups; it is allowed, per blob
        # added (streams: 16 KiB chunks on average, files: 1 MiB), on top of 16 MiB.
        case $op in
        stream-backup) per=$((16 * 1024)) ;;
        file-backup) per=$((1024 * 1024)) ;;
        *) per=0 ;;
        esac
        index_kib=0
        if [ "$per" -gt 0 ]; then
            index_kib=$(( (last - first) * GIB / per * 80 / 1024 ))
        fi
        if [ "$b" -gt $((a + 16 * 1024 + index_kib)) ]; then
            echo "GROWS   $line"
            FAILED+=("max RSS grows with size: $line")
        elif [ "$index_kib" -gt 0 ]; then
            echo "flat    $line (the index's share allowed: $((index_kib / 1024)) MiB)"
        else
            echo "flat    $line"
        fi
    done
fi
echo "Raw results: $RESULTS"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo
    echo "FAILURES:"
    printf '  %s\n' "${FAILED[@]}"
    exit 1
fi

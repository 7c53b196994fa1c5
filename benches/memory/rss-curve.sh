#!/usr/bin/env bash
# RSS of `cairn backup --stdin-name` over the course of one stream backup: every
# INTERVAL seconds, the bytes cairn has read so far and its current RSS. Shows whether
# memory grows with the data read (run.sh only gives the peak).
#
# Environment: SIZE (GiB, default 20), INTERVAL (seconds, default 5), MEM_DIR (default
# /var/tmp/cairn-mem-curve, deleted at the end), CAIRN (default target/release/cairn).
# Needs about SIZE GiB free under MEM_DIR, and openssl for the random stream.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIZE=${SIZE:-20}
INTERVAL=${INTERVAL:-5}
MEM_DIR=${MEM_DIR:-/var/tmp/cairn-mem-curve}
CAIRN=${CAIRN:-$ROOT/target/release/cairn}

rm -rf "$MEM_DIR"
mkdir -p "$MEM_DIR"
trap 'rm -rf "$MEM_DIR"' EXIT
cp "$CAIRN" "$MEM_DIR/cairn"
export CAIRN_REPOSITORY=$MEM_DIR/repo CAIRN_PASSWORD=cairn-memory-bench
unset CAIRN_PASSWORD_FILE CAIRN_PASSWORD_COMMAND
"$MEM_DIR/cairn" init >/dev/null

{ openssl enc -aes-128-ctr -pass pass:cairn -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
    head -c $((SIZE << 30)) |
    /usr/bin/time -f '%M' -o "$MEM_DIR/peak" "$MEM_DIR/cairn" backup --stdin-name big.bin >/dev/null &
job=$!

pid=
for _ in $(seq 100); do
    pid=$(pgrep -f "^$MEM_DIR/cairn backup" | head -1 || true)
    [ -n "$pid" ] && break
    sleep 0.1
done
[ -n "$pid" ] || { echo "cairn did not start" >&2; exit 1; }

echo "GiB read  RSS MiB"
while [ -r "/proc/$pid/status" ]; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    read_bytes=$(awk '/^rchar/ {print $2}' "/proc/$pid/io" 2>/dev/null || true)
    [ -n "$rss" ] && [ -n "$read_bytes" ] &&
        awk -v b="$read_bytes" -v r="$rss" 'BEGIN {printf "%8.2f  %7.1f\n", b / 2^30, r / 1024}'
    sleep "$INTERVAL"
done
wait "$job"
awk '{printf "peak (max RSS): %.1f MiB\n", $1 / 1024}' "$MEM_DIR/peak"

#!/usr/bin/env bash
# Reproduce the whole nightly-dump dedup experiment (see README.md).
# Needs: PostgreSQL at 127.0.0.1:5432 (user postgres, trust), pg_dump, psql, restic, cargo.
# Scratch: $WORK (default /var/tmp/cairn-dumps-exp), ~6 GB. Runtime ~15 min on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/var/tmp/cairn-dumps-exp}
mkdir -p "$WORK"; cd "$WORK"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$here/../../target}
(cd "$here/sim" && cargo build --release)
S=$CARGO_TARGET_DIR/release/simulate

# 1. Dump series: "wide" = update mean distance 5% of the table (default), "m1" = 1%.
python3 "$here/pg_nights.py" --out "$WORK/dumps"
python3 "$here/pg_nights.py" --out "$WORK/dumps-m1" --update-mean 0.01

# 2. restic baseline (repo size after each night).
"$here/restic_nights.sh" plain     "$WORK" dumps/night-{1..7}.sql     > restic-plain.csv
"$here/restic_nights.sh" custom    "$WORK" dumps/night-{1..7}.dump    > restic-custom.csv
"$here/restic_nights.sh" plain-m1  "$WORK" dumps-m1/night-{1..7}.sql  > restic-plain-m1.csv
"$here/restic_nights.sh" custom-m1 "$WORK" dumps-m1/night-{1..7}.dump > restic-custom-m1.csv

# 3. Simulation (chunk/dedup/compress strategies).
$S --series plain       --avg 4,8,16,32,64   --dict 112 --group 256,1024 dumps/night-{1..7}.sql     > sim-plain.csv        2> sim-plain.log
$S --series plain-small --avg 1,2            --dict 112 --group 256,1024 dumps/night-{1..7}.sql     > sim-plain-small.csv  2> sim-plain-small.log
$S --series plain-l9    --avg 2,4,8 --level 9 --dict 112 --group 1024    dumps/night-{1..7}.sql     > sim-plain-l9.csv     2> sim-plain-l9.log
$S --series custom      --avg 4,8,16,32,64   --dict 112 --group 256,1024 dumps/night-{1..7}.dump    > sim-custom.csv       2> sim-custom.log
$S --series custom-small --avg 1,2           --dict 112 --group 256,1024 dumps/night-{1..7}.dump    > sim-custom-small.csv 2> sim-custom-small.log
$S --series plain-m1    --avg 2,4,8,16,32,64 --dict 112 --group 256,1024 dumps-m1/night-{1..7}.sql  > sim-plain-m1.csv     2> sim-plain-m1.log
$S --series custom-m1   --avg 2,4,8,16,32,64 --dict 112 --group 256,1024 dumps-m1/night-{1..7}.dump > sim-custom-m1.csv    2> sim-custom-m1.log

# 3b. Content-list metadata (cairn content.rs list blobs), same for every strategy.
for s in plain:dumps:sql custom:dumps:dump plain-m1:dumps-m1:sql custom-m1:dumps-m1:dump; do
  IFS=: read -r n d e <<< "$s"
  $S --series "$n" --lists-only --avg 1,2,4,8,16,32,64 "$d"/night-{1..7}."$e" > "lists-$n.csv" 2>/dev/null
  # 3c. Delta against the previous night's version of the region (deltaprev).
  $S --series "$n-delta" --delta --avg 4,8,16,32,64 --dict '' --group '' "$d"/night-{1..7}."$e" > "sim-$n-delta.csv" 2> "sim-$n-delta.log"
done
# Smaller list blobs (LIST_MIN 16, 6 cut bits) for comparison.
$S --series plain-list16 --lists-only --list-min 16 --list-cut-bits 6 --avg 1,2,4,8,16,32,64 dumps/night-{1..7}.sql > lists-plain-list16.csv 2>/dev/null

# 4. Throughput (single thread, night 1 = every chunk new), run on a quiet machine.
$S --series timing --avg 2,4,8,16,32,64 --dict 112 --group 1024 dumps/night-1.sql > /dev/null 2> timing.log

# 5. Tables (growth includes modelled content-list metadata in the "incl. lists" column).
for s in plain custom plain-m1 custom-m1; do
  echo "### $s"; python3 "$here/summarize.py" "sim-$s.csv" "restic-$s.csv" "lists-$s.csv"; echo
  echo "### $s delta"; python3 "$here/summarize.py" "sim-$s-delta.csv" "restic-$s.csv" "lists-$s.csv"; echo
done
echo "### plain 1-2K";   python3 "$here/summarize.py" sim-plain-small.csv  restic-plain.csv  lists-plain.csv; echo
echo "### plain zstd 9"; python3 "$here/summarize.py" sim-plain-l9.csv     restic-plain.csv  lists-plain.csv; echo
echo "### custom 1-2K";  python3 "$here/summarize.py" sim-custom-small.csv restic-custom.csv lists-custom.csv
grep -v trained timing.log

#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for FUZZ_SECONDS each, one after the other,
# and prints one summary line per target. Needs nightly and cargo-fuzz.
#
#   fuzz/run.sh                      # all targets, 60 s each
#   FUZZ_SECONDS=600 fuzz/run.sh tree chunker
#   fuzz/run.sh --build-only         # just build every target
#
# Environment: FUZZ_SECONDS (default 60), FUZZ_MAX_LEN (default 65536),
# FUZZ_TIMEOUT (seconds per input before libFuzzer calls it a hang, default 10),
# CARGO_TARGET_DIR (default fuzz/target).
#
# The committed seeds in corpus/<target>/ are only read; inputs the fuzzer finds go to
# target/fuzz-corpus/<target>/ (kept between runs, not committed), crashes to
# artifacts/<target>/, full logs to target/fuzz-logs/<target>.log. Inputs in
# regressions/<target>/ are replayed first. Exit status is 1 if anything crashed.
set -euo pipefail
cd "$(dirname "$0")"

ALL=(index_file pack_entries pack_file sealed_file tree snapshot config key_file chunker lock toml_config export_file send_log history)
build_only=0
targets=()
for a in "$@"; do
    case "$a" in
        --build-only) build_only=1 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) targets+=("$a") ;;
    esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${ALL[@]}")

SECS=${FUZZ_SECONDS:-60}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
TIMEOUT=${FUZZ_TIMEOUT:-10}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
TRIPLE=$(rustc +nightly -vV | sed -n 's/^host: //p')
BIN_DIR="$CARGO_TARGET_DIR/$TRIPLE/release"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2
    exit 2
fi

for t in "${targets[@]}"; do
    cargo +nightly fuzz build "$t"
done
[ $build_only -eq 0 ] || { echo "built: ${targets[*]}"; exit 0; }

mkdir -p "$CARGO_TARGET_DIR/fuzz-logs"
failed=0
summary=()
for t in "${targets[@]}"; do
    # Replay known crashers (each must now pass).
    reg_total=0 reg_fail=0
    if [ -d "regressions/$t" ]; then
        for f in "regressions/$t"/*; do
            [ -f "$f" ] || continue
            reg_total=$((reg_total + 1))
            if ! "$BIN_DIR/$t" "$f" >/dev/null 2>&1; then
                reg_fail=$((reg_fail + 1))
                echo "regression still crashes: $f" >&2
            fi
        done
    fi

    work="$CARGO_TARGET_DIR/fuzz-corpus/$t"
    log="$CARGO_TARGET_DIR/fuzz-logs/$t.log"
    mkdir -p "$work"
    echo "== $t: fuzzing for ${SECS}s (log: $log)" >&2
    set +e
    cargo +nightly fuzz run "$t" "$work" "corpus/$t" -- \
        -max_total_time="$SECS" -max_len="$MAX_LEN" -timeout="$TIMEOUT" \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    runs=$(stat number_of_executed_units)
    speed=$(stat average_exec_per_sec)
    crashes=0
    artifact=""
    if [ $rc -ne 0 ]; then
        crashes=1
        artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -1)
        failed=1
    fi
    [ $reg_fail -eq 0 ] || failed=1
    line=$(printf '%-13s runs=%-10s execs/s=%-7s crashes=%d regressions=%d/%d failing%s' \
        "$t" "${runs:-?}" "${speed:-?}" "$crashes" "$reg_fail" "$reg_total" \
        "${artifact:+  artifact=$artifact}")
    echo "$line"
    summary+=("$line")
done

echo
echo "summary (${SECS}s per target):"
printf '  %s\n' "${summary[@]}"
exit $failed

#!/usr/bin/env bash
# The short form of the fuzzing campaign, as CI runs it: builds every target without
# cargo-fuzz (the machine's toolchain, libFuzzer's coverage instrumentation, no
# sanitizer, the dev profile: minutes instead of a quarter of an hour on two cores),
# replays every input of regressions/<target>/, then fuzzes each target for
# FUZZ_SMOKE_SECONDS (default 5) from its committed seeds. Exit status 1 if anything
# crashed. fuzz/run.sh is the long form (nightly, cargo-fuzz, AddressSanitizer).
set -euo pipefail
cd "$(dirname "$0")"

ALL=(index_file pack_entries pack_file sealed_file tree snapshot config key_file chunker lock toml_config export_file send_log history)
SECS=${FUZZ_SMOKE_SECONDS:-5}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/smoke"
# The flags cargo-fuzz passes for coverage-guided fuzzing, minus the sanitizer.
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"

# With an explicit --target, the flags apply to the targets only, not to build scripts.
triple=$(rustc -vV | sed -n 's/^host: //p')
cargo build --quiet --bins --target "$triple"
bin="$CARGO_TARGET_DIR/$triple/debug"
failed=0
for t in "${ALL[@]}"; do
    regs=0
    if [ -d "regressions/$t" ]; then
        for f in "regressions/$t"/*; do
            [ -f "$f" ] || continue
            regs=$((regs + 1))
            if ! "$bin/$t" "$f" >/dev/null 2>&1; then
                echo "regression still crashes: $f" >&2
                failed=1
            fi
        done
    fi
    scratch=$(mktemp -d)
    log="$scratch/log"
    if "$bin/$t" "$scratch" "corpus/$t" -max_total_time="$SECS" -max_len=65536 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$scratch/" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        printf '%-13s runs=%-9s regressions=%d replayed\n' "$t" "${runs:-?}" "$regs"
    else
        echo "$t crashed:" >&2
        tail -30 "$log" >&2
        mkdir -p artifacts/"$t"
        cp "$scratch"/crash-* "$scratch"/leak-* "$scratch"/timeout-* artifacts/"$t"/ 2>/dev/null || true
        failed=1
    fi
    rm -rf "$scratch"
done
exit $failed

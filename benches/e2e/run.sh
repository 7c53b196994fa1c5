#!/usr/bin/env bash
# End-to-end benchmark: cairn against restic, borg and bupstash on the same data.
#
# Usage:
#   benches/e2e/run.sh [--regen] [--datasets-only] [--help]
#   benches/e2e/run.sh --report FILE.jsonl...  # print the table of earlier runs
#                                              # (several files merge as rounds)
#
# What it does:
#   1. Generates (or reuses) four datasets under $BENCH_DIR/data:
#        mixed  a copy of system files (/usr/bin, /usr/lib, /usr/share, ...): binaries,
#               libraries, text, compressed files; MIXED_GB in size (cp -a).
#        small  SMALL_FILES files of 0-8 KiB of text-like content, ~100 per directory.
#        dumps  DUMP_NIGHTS nightly plain-SQL dumps (pg_dump COPY format) of a simulated
#               app database, the first DUMP_MB MB; rows are appended, ~2% updated
#               (recent rows mostly) and a few deleted each night, and updated rows
#               move inside the dump as PostgreSQL's MVCC moves them.
#        image  disk.img, an ext4 file system image of IMAGE_GB GiB made without mounting
#               (mkfs.ext4 -d) from system files (IMAGE_SOURCES) that fill about half
#               of it; the rest stays zeros, as on a real disk.  Fixed UUID, hash
#               seed and times: every generation gives the same bytes (gen_image.py).
#      Datasets are deterministic and cached: they are generated again only when
#      missing or with --regen.  Their names carry their parameters.
#   2. RUNS times (rounds), for each scenario and tool, in a fresh repository (and
#      fresh tool cache), times every step with GNU time (wall, user CPU, system
#      CPU, max RSS):
#        mixed  backup, backup again (unchanged), restore latest into an empty
#               directory (checked against the source with diff -r and a metadata
#               listing)
#        small  backup, backup again (unchanged)
#        dumps  one backup per night from standard input (name db.sql), then a
#               restore of the last night (checked with cmp)
#        image  backup of the directory holding disk.img, backup again (unchanged),
#               restore (checked with cmp)
#      and records the repository size (du -sb) after every step.  Each tool ends a
#      scenario with its own `check` (recorded, shown only if it fails; bupstash has
#      none and runs `list` instead).  The tools take turns going first: round R
#      starts with the R-th tool of TOOLS and goes on in their order.
#      The page cache is dropped before every timed step when possible (root);
#      otherwise the run says the cache is warm.
#   3. Prints a markdown table (also saved as $BENCH_DIR/results-<run>.md) and writes
#      one JSON object per step (with its "round") to $BENCH_DIR/results-<run>.jsonl.
#      With several rounds each value is the median with the min-max spread, and the
#      ratios are ratios of medians (report.py).
#   A failing step is reported (stderr tail), marked FAILED, and the run goes on.
#   --datasets-only stops after step 1 (to prepare the data ahead of a run).
#
# Environment (defaults in brackets; QUICK=1 switches to the smaller ones):
#   BENCH_DIR      work directory [/var/tmp/cairn-bench]
#   TOOLS          tools to run ["cairn restic borg bupstash"]; a missing one is
#                  recorded and skipped
#   SCENARIOS      scenarios to run ["mixed small dumps image"]
#   RUNS           rounds of the whole scenario/tool loop, in one results file [1]
#   QUICK          1 = smoke-test sizes [0]
#   MIXED_GB       size of the mixed tree in GB (1e9 bytes) [2.0; QUICK 0.1]
#   MIXED_SOURCES  directories copied into the mixed tree
#                  ["/usr/bin /usr/sbin /usr/lib /usr/libexec /usr/share /usr/include"]
#   MIXED_MAX_FILE_MB  skip bigger files when building the mixed tree [128]
#   SMALL_FILES    number of small files [100000; QUICK 5000]
#   DUMP_NIGHTS    number of nightly dumps [5; QUICK 3]
#   DUMP_MB        size of the first dump in MB [390; QUICK 10]
#   IMAGE_GB       size of the disk image in GiB [2; QUICK 0.2]
#   IMAGE_SOURCES  directories the image's files come from ["/usr/lib /usr/share"]
#   CAIRN          cairn binary [<workspace>/target/release/cairn]
#   DROP_CACHES    auto (try, fall back to warm cache), 1 (must work), 0 (never) [auto]
#   KEEP=1         keep repositories and restored trees under $BENCH_DIR/run [0]
#   RESTORE_FS     where restores write: loop (each into a fresh ext4 file system on a
#                  sparse image, mounted on the target; needs root and loop devices),
#                  dir (a fresh directory of $BENCH_DIR's file system), auto (loop
#                  when it works) [auto].  ext4 does not reuse an inode freed in the
#                  last minute and reads inode tables to find another, so a restore
#                  into a directory right after another tool's restored tree was
#                  removed ran up to three times slower, depending on the order.
#
# Tool settings: cairn defaults; restic defaults (repository format 2, compression
# auto = zstd); borg `init --encryption=repokey-blake2` and the default lz4
# compression; bupstash defaults (zstd:3), a key file made with `new-key` before init
# (untimed), its send log and query cache in the fresh tool home, restore with
# --ownership (as the others restore owners when run as root).  Passwords are given
# through CAIRN_PASSWORD, RESTIC_PASSWORD and BORG_PASSPHRASE.  Needs bash, python3,
# GNU time (/usr/bin/time), diff, du, cmp; the image needs e2fsprogs (mkfs.ext4,
# debugfs, dumpe2fs).  bupstash 0.12 builds from crates.io with libsodium-dev and
# pkg-config: `cargo install --locked bupstash` (it has no "warning" exit code: any
# error is 1).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORKSPACE=$(cd "$HERE/../.." && pwd)

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

REGEN=0
DATASETS_ONLY=0
REPORT_ONLY=()
while [[ $# -gt 0 ]]; do
    case $1 in
        --regen) REGEN=1 ;;
        --datasets-only) DATASETS_ONLY=1 ;;
        --report) shift; REPORT_ONLY=("$@"); [[ $# -gt 0 ]] || { echo "--report needs a file" >&2; exit 2; }
            break ;;
        -h | --help) usage; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ ${#REPORT_ONLY[@]} -gt 0 ]]; then
    exec python3 "$HERE/report.py" "${REPORT_ONLY[@]}"
fi

BENCH_DIR=${BENCH_DIR:-/var/tmp/cairn-bench}
QUICK=${QUICK:-0}
if [[ $QUICK == 1 ]]; then
    MIXED_GB=${MIXED_GB:-0.1}
    SMALL_FILES=${SMALL_FILES:-5000}
    DUMP_NIGHTS=${DUMP_NIGHTS:-3}
    DUMP_MB=${DUMP_MB:-10}
    IMAGE_GB=${IMAGE_GB:-0.2}
else
    MIXED_GB=${MIXED_GB:-2.0}
    SMALL_FILES=${SMALL_FILES:-100000}
    DUMP_NIGHTS=${DUMP_NIGHTS:-5}
    DUMP_MB=${DUMP_MB:-390}
    IMAGE_GB=${IMAGE_GB:-2}
fi
TOOLS=${TOOLS:-cairn restic borg bupstash}
RUNS=${RUNS:-1}
SCENARIOS=${SCENARIOS:-mixed small dumps image}
MIXED_SOURCES=${MIXED_SOURCES:-/usr/bin /usr/sbin /usr/lib /usr/libexec /usr/share /usr/include}
MIXED_MAX_FILE_MB=${MIXED_MAX_FILE_MB:-128}
IMAGE_SOURCES=${IMAGE_SOURCES:-/usr/lib /usr/share}
CAIRN=${CAIRN:-$WORKSPACE/target/release/cairn}
DROP_CACHES=${DROP_CACHES:-auto}
KEEP=${KEEP:-0}
RESTORE_FS=${RESTORE_FS:-auto}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "RUNS must be a positive number, not '$RUNS'" >&2; exit 2; }
ROUND=1
TIME=/usr/bin/time
PASSWORD=cairn-bench-password

RUN_ID=$(date +%Y%m%d-%H%M%S)
DATA=$BENCH_DIR/data
RUN=$BENCH_DIR/run
LOGS=$BENCH_DIR/logs/$RUN_ID
RESULTS=$BENCH_DIR/results-$RUN_ID.jsonl
mkdir -p "$DATA" "$RUN" "$LOGS"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ -x $TIME ]] || die "GNU time is needed at $TIME (apt-get install time)"
command -v python3 >/dev/null || die "python3 is needed"

# ---------------------------------------------------------------------------------
# Restore targets

# fresh_fs DIR BYTES: mounts a fresh ext4 file system of about BYTES on DIR (an empty
# directory); its image is DIR.img.
fresh_fs() {
    truncate -s "$2" "$1.img" && mkfs.ext4 -q -F -E nodiscard "$1.img" 2>/dev/null &&
        mount -o loop "$1.img" "$1" 2>/dev/null || { rm -f "$1.img"; return 1; }
}
drop_target() { # DIR
    if mountpoint -q "$1" 2>/dev/null; then umount "$1"; fi
    rm -rf "$1" "$1.img"
}
case $RESTORE_FS in
    dir) ;;
    loop | auto)
        probe=$RUN/restore-probe
        drop_target "$probe"
        mkdir -p "$probe"
        if fresh_fs "$probe" $((64 << 20)); then
            RESTORE_FS=loop
        elif [[ $RESTORE_FS == loop ]]; then
            die "cannot mount a fresh ext4 file system for restores (needs root, mkfs.ext4 and loop devices) and RESTORE_FS=loop"
        else
            RESTORE_FS=dir
        fi
        drop_target "$probe"
        ;;
    *) die "RESTORE_FS must be loop, dir or auto, not '$RESTORE_FS'" ;;
esac
if [[ $RESTORE_FS == loop ]]; then
    log "restores: each into a fresh ext4 file system (RESTORE_FS=loop)"
    # Nothing stays mounted when the run stops early.
    trap 'for d in "$RUN"/restore-*; do mountpoint -q "$d" 2>/dev/null && umount "$d"; done; true' EXIT
else
    log "restores: each into a fresh directory of $BENCH_DIR's file system (RESTORE_FS=dir)"
fi
# new_target DIR BYTES: an empty directory to restore BYTES into.
new_target() {
    drop_target "$1"
    mkdir -p "$1"
    if [[ $RESTORE_FS == loop ]]; then
        # Three times the data and 1 GiB more (the image is sparse): a restore target
        # with room, as a real one has. ext4 writes back early once its free space falls
        # under twice the data waiting to be written, and stops delaying allocation
        # under 1.5 times: at 1.3 times the data plus 512 MiB, restoring the mixed tree
        # took 40 % longer than with room.
        fresh_fs "$1" $(($2 * 3 + (1 << 30))) || die "cannot mount a fresh file system on $1"
    fi
}
done_target() { # DIR
    [[ $KEEP == 1 ]] || drop_target "$1"
}

# ---------------------------------------------------------------------------------
# Page cache

CACHE_MODE=warm
drop_caches() { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null
case $DROP_CACHES in
    0) ;;
    *)
        if drop_caches; then
            CACHE_MODE=cold
        elif [[ $DROP_CACHES == 1 ]]; then
            die "cannot drop the page cache (needs root) and DROP_CACHES=1"
        fi
        ;;
esac
if [[ $CACHE_MODE == cold ]]; then
    log "page cache: dropped before every timed step (cold cache)"
elif [[ $DROP_CACHES == 0 ]]; then
    log "page cache: not dropped (warm cache, DROP_CACHES=0)"
else
    log "page cache: NOT dropped (warm cache; run as root to measure cold)"
fi

# ---------------------------------------------------------------------------------
# Datasets.  Each is built in NAME.tmp, renamed, then marked with NAME.done
# ("bytes files") and NAME.recipe (generator checksum and parameters); it is reused
# while both exist and the recipe has not changed.

MIXED_NAME=mixed-${MIXED_GB}G
SMALL_NAME=small-${SMALL_FILES}
DUMPS_NAME=dumps-${DUMP_NIGHTS}x${DUMP_MB}MB
IMAGE_NAME=image-${IMAGE_GB}G

tree_stats() { # PATH -> "bytes files"
    printf '%s %s\n' "$(du -sb "$1" | cut -f1)" "$(find "$1" -type f | wc -l)"
}

recipe() { # NAME -> what the dataset is made from
    case $1 in
        mixed-*) echo "$(md5sum <"$HERE/mixed_list.py") $MIXED_GB $MIXED_MAX_FILE_MB $MIXED_SOURCES" ;;
        small-*) echo "$(md5sum <"$HERE/gen_small.py") $SMALL_FILES 42" ;;
        dumps-*) echo "$(md5sum <"$HERE/gen_dumps.py") $DUMP_NIGHTS $DUMP_MB 7" ;;
        image-*) echo "$(cat "$HERE/gen_image.py" "$HERE/mixed_list.py" | md5sum) $IMAGE_GB half max-file:min($MIXED_MAX_FILE_MB,1/16) $IMAGE_SOURCES" ;;
    esac
}

dataset_ready() {
    [[ -f $DATA/$1.done && -d $DATA/$1 && -f $DATA/$1.recipe ]] &&
        [[ $(cat "$DATA/$1.recipe") == "$(recipe "$1")" ]]
}

prepare_dataset() { # NAME
    local name=$1 dir=$DATA/$1 tmp=$DATA/$1.tmp
    if [[ $REGEN == 1 ]]; then rm -rf "$dir" "$dir.done"; fi
    if dataset_ready "$name"; then
        log "dataset $name: cached ($(cat "$dir.done"))"
        return
    fi
    rm -rf "$dir" "$dir.done" "$dir.recipe" "$tmp"
    mkdir -p "$tmp"
    log "dataset $name: generating"
    local t0=$SECONDS
    case $name in
        mixed-*)
            local budget max
            budget=$(python3 -c "print(int(float('$MIXED_GB') * 1e9))")
            max=$((MIXED_MAX_FILE_MB * 1024 * 1024))
            # shellcheck disable=SC2086 # MIXED_SOURCES is a list of directories
            python3 "$HERE/mixed_list.py" "$budget" "$max" $MIXED_SOURCES >"$DATA/$name.list"
            # cp -a --parents keeps the absolute layout (usr/lib/...) and the metadata
            # (run inside the target: it sets the parents' attributes by relative path);
            # files that vanished or cannot be copied are skipped.
            (cd "$tmp" && xargs -0 -n 2000 cp -a --parents -t . <"$DATA/$name.list") 2>"$DATA/$name.cp-errors" ||
                log "dataset $name: some files were skipped ($(wc -l <"$DATA/$name.cp-errors") errors)"
            python3 "$HERE/mixed_list.py" --fix-dirs "$tmp"
            rm -f "$DATA/$name.list"
            ;;
        small-*) python3 "$HERE/gen_small.py" "$tmp" "$SMALL_FILES" 42 ;;
        dumps-*) python3 "$HERE/gen_dumps.py" "$tmp" "$DUMP_NIGHTS" "$DUMP_MB" 7 ;;
        image-*)
            # A tree of system files filling about half the image (mkfs needs room for
            # its own metadata), copied as for mixed, then mkfs.ext4 -d copies it into
            # the image; the tree is removed afterwards.
            local size src=$DATA/$name.src
            if ! command -v mkfs.ext4 >/dev/null || ! command -v debugfs >/dev/null; then
                die "the image dataset needs mkfs.ext4 and debugfs (apt-get install e2fsprogs)"
            fi
            size=$(python3 -c "print(int(float('$IMAGE_GB') * 2**30))")
            rm -rf "$src" && mkdir -p "$src"
            local max=$((MIXED_MAX_FILE_MB * 1024 * 1024))
            ((max < size / 16)) || max=$((size / 16)) # so the last file does not overshoot much
            # shellcheck disable=SC2086 # IMAGE_SOURCES is a list of directories
            python3 "$HERE/mixed_list.py" $((size / 2)) "$max" $IMAGE_SOURCES >"$DATA/$name.list"
            (cd "$src" && xargs -0 -n 2000 cp -a --parents -t . <"$DATA/$name.list") 2>"$DATA/$name.cp-errors" ||
                log "dataset $name: some files were skipped ($(wc -l <"$DATA/$name.cp-errors") errors)"
            python3 "$HERE/mixed_list.py" --fix-dirs "$src"
            python3 "$HERE/gen_image.py" "$tmp/disk.img" "$size" "$src"
            rm -rf "$src" "$DATA/$name.list"
            ;;
    esac
    mv "$tmp" "$dir"
    tree_stats "$dir" >"$dir.done"
    recipe "$name" >"$dir.recipe"
    log "dataset $name: done in $((SECONDS - t0)) s ($(cat "$dir.done"))"
}

# ---------------------------------------------------------------------------------
# Tools

export CAIRN_PASSWORD=$PASSWORD RESTIC_PASSWORD=$PASSWORD BORG_PASSPHRASE=$PASSWORD
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

tool_bin() {
    case $1 in
        cairn) echo "$CAIRN" ;;
        restic) command -v restic || true ;;
        borg) command -v borg || true ;;
        bupstash) command -v bupstash || true ;;
    esac
}

tool_version() {
    case $1 in
        cairn)
            local v
            v=$("$CAIRN" --version 2>/dev/null | head -n1) || true
            echo "${v:-cairn (unknown version)}"
            ;;
        restic) restic version | head -n1 ;;
        borg) borg --version | head -n1 ;;
        bupstash) bupstash version | head -n1 ;;
    esac
}

# Point the tools at a fresh repository and fresh caches/state for TOOL and SCENARIO.
fresh_repo() { # TOOL SCENARIO
    REPO=$RUN/repos/$1-$2
    TOOL_HOME=$RUN/home/$1-$2
    rm -rf "$REPO" "$TOOL_HOME"
    mkdir -p "$RUN/repos" "$TOOL_HOME"
    export CAIRN_REPOSITORY=$REPO RESTIC_REPOSITORY=$REPO BORG_REPO=$REPO
    export RESTIC_CACHE_DIR=$TOOL_HOME/restic-cache BORG_BASE_DIR=$TOOL_HOME
    export XDG_CACHE_HOME=$TOOL_HOME/cache XDG_CONFIG_HOME=$TOOL_HOME/config
    # bupstash: a key file (no password) made here, untimed; its send log and query
    # cache (by default under XDG_CACHE_HOME) in the fresh home too.
    export BUPSTASH_REPOSITORY=$REPO BUPSTASH_KEY=$TOOL_HOME/bupstash.key
    export BUPSTASH_SEND_LOG=$TOOL_HOME/bupstash.sendlog BUPSTASH_QUERY_CACHE=$TOOL_HOME/bupstash.qcache
    if [[ $1 == bupstash ]]; then
        bupstash new-key -o "$BUPSTASH_KEY" || die "bupstash new-key failed"
    fi
    BORG_LAST=
    BUP_LAST=
}

# The command line of one operation, into the array CMD.
build_cmd() { # TOOL OP [ARG...]
    local tool=$1 op=$2
    shift 2
    case $tool:$op in
        cairn:init) CMD=("$CAIRN" init) ;;
        cairn:backup) CMD=("$CAIRN" backup "$@") ;;
        cairn:backup-stdin) CMD=("$CAIRN" backup --stdin-name "$1") ;;
        cairn:restore) CMD=("$CAIRN" restore latest --target "$1") ;;
        cairn:check) CMD=("$CAIRN" check) ;;
        restic:init) CMD=(restic init) ;;
        restic:backup) CMD=(restic backup "$@") ;;
        restic:backup-stdin) CMD=(restic backup --stdin --stdin-filename "$1") ;;
        restic:restore) CMD=(restic restore latest --target "$1") ;;
        restic:check) CMD=(restic check) ;;
        borg:init) CMD=(borg init --encryption=repokey-blake2) ;;
        borg:backup) BORG_SEQ=$((BORG_SEQ + 1)); BORG_LAST=$STEP_NAME-$BORG_SEQ
            CMD=(borg create "::$BORG_LAST" "$@") ;;
        borg:backup-stdin) BORG_SEQ=$((BORG_SEQ + 1)); BORG_LAST=$STEP_NAME-$BORG_SEQ
            CMD=(borg create --stdin-name "$1" "::$BORG_LAST" -) ;;
        borg:restore) CMD=(borg extract "::$BORG_LAST") ;; # run in the target directory
        borg:check) CMD=(borg check) ;;
        # bupstash snapshots get a tag bench=SCENARIO-N, and the restore asks for the
        # last one.  A directory put keeps paths relative to the directory: restore
        # --into TARGET puts its contents straight into TARGET.  A stream (stdin) is
        # read back with get, into TARGET/NAME (standard output goes there).
        bupstash:init) CMD=(bupstash init) ;;
        bupstash:backup) BUP_SEQ=$((BUP_SEQ + 1)); BUP_LAST=$STEP_NAME-$BUP_SEQ
            CMD=(bupstash put --no-progress "bench=$BUP_LAST" "$@") ;;
        bupstash:backup-stdin) BUP_SEQ=$((BUP_SEQ + 1)); BUP_LAST=$STEP_NAME-$BUP_SEQ
            CMD=(bupstash put --no-progress "name=$1" "bench=$BUP_LAST" -) ;;
        bupstash:restore) CMD=(bupstash restore --no-progress --ownership --into "$1" "bench=$BUP_LAST") ;;
        bupstash:restore-stream) CMD=(bupstash get --no-progress "bench=$BUP_LAST")
            CMD_STDOUT=$1/$2 ;;
        # bupstash 0.12 has no check: list the snapshots (reads the item log) instead.
        bupstash:check) CMD=(bupstash list) ;;
        *:restore-stream) build_cmd "$tool" restore "$1" ;; # restores the stream as NAME
        *) die "no command for $tool $op" ;;
    esac
}
BORG_SEQ=0
BUP_SEQ=0

# Exit codes that mean "done, with warnings" (unreadable files).  bupstash has none:
# it exits 1 on any error (put stops at an unreadable file unless told to ignore it).
is_warning() { # TOOL RC
    case $1:$2 in cairn:3 | restic:3 | borg:1) return 0 ;; *) return 1 ;; esac
}

json_str() { # STRING -> JSON string (control characters become spaces)
    local s
    s=$(printf '%s' "$1" | tr '\000-\037' ' ')
    s=${s//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

# measure TOOL SCENARIO STEP OP [ARG...]
#   Runs the operation under GNU time, with $STEP_STDIN as standard input and
#   $STEP_CWD as working directory when set; appends a JSON line to $RESULTS.
#   Sets STEP_STATUS (ok, warn, FAILED).  $STEP_INPUT_BYTES and
#   $STEP_NOTE go into the record too.
measure() {
    local tool=$1 scenario=$2 step=$3 op=$4
    shift 4
    STEP_NAME=$scenario
    CMD_STDOUT=
    build_cmd "$tool" "$op" "$@"
    local base=$LOGS/r$ROUND-$tool-$scenario-${step// /_}
    local tfile=$base.time out=${CMD_STDOUT:-$base.out}
    local stdin=${STEP_STDIN:-/dev/null} cwd=${STEP_CWD:-$RUN}
    { printf '%q ' "${CMD[@]}"; if [[ -n $CMD_STDOUT ]]; then printf '> %q' "$CMD_STDOUT"; fi; } >"$base.cmd"
    # Cold: the page cache is dropped. Warm: the writes of the step before are flushed,
    # so that its write-back does not throttle this step's writes.
    if [[ $CACHE_MODE == cold ]]; then drop_caches || true; else sync; fi
    local rc=0
    (cd "$cwd" && exec "$TIME" -f '%e %U %S %M' -o "$tfile" "${CMD[@]}" <"$stdin" >"$out" 2>"$base.err") || rc=$?
    local wall=null user=null sys=null rss=null
    if [[ -s $tfile ]]; then
        read -r wall user sys rss < <(tail -n1 "$tfile") || true
        [[ $wall =~ ^[0-9.]+$ ]] || { wall=null; user=null; sys=null; rss=null; }
    fi
    if [[ $rc == 0 ]]; then
        STEP_STATUS=ok
    elif is_warning "$tool" "$rc"; then
        STEP_STATUS=warn
    else
        STEP_STATUS=FAILED
    fi
    local repo_bytes=null
    [[ -d $REPO ]] && repo_bytes=$(du -sb "$REPO" | cut -f1)
    {
        printf '{"kind":"step","run":"%s","round":%s,"date":"%s","quick":%s,"cache":"%s",' \
            "$RUN_ID" "$ROUND" "$(date -Iseconds)" "$([[ $QUICK == 1 ]] && echo true || echo false)" "$CACHE_MODE"
        printf '"tool":"%s","version":%s,"scenario":"%s","dataset":"%s","step":"%s",' \
            "$tool" "$(json_str "${TOOL_VERSION[$tool]}")" "$scenario" "${DATASET_OF[$scenario]}" "$step"
        printf '"status":"%s","rc":%s,"wall_s":%s,"user_s":%s,"sys_s":%s,"max_rss_kib":%s,' \
            "$STEP_STATUS" "$rc" "$wall" "$user" "$sys" "$rss"
        printf '"repo_bytes":%s,"input_bytes":%s,"note":%s,"command":%s}\n' \
            "$repo_bytes" "${STEP_INPUT_BYTES:-null}" "$(json_str "${STEP_NOTE:-}")" \
            "$(json_str "$(cat "$base.cmd")")"
    } >>"$RESULTS"
    local shown="[round $ROUND] $tool $scenario $step: $STEP_STATUS rc=$rc wall=${wall}s cpu=${user}+${sys}s rss=${rss}KiB repo=${repo_bytes}B"
    log "$shown"
    if [[ $STEP_STATUS != ok ]]; then
        log "--- stderr of $tool $step (last 20 lines, full log $base.err) ---"
        tail -n 20 "$base.err" >&2 || true
        log "---"
    fi
    STEP_STDIN='' STEP_CWD='' STEP_INPUT_BYTES='' STEP_NOTE=''
}

# Record a line without timing (verification results and skipped tools).
record() { # TOOL SCENARIO STEP STATUS NOTE
    printf '{"kind":"step","run":"%s","round":%s,"date":"%s","quick":%s,"cache":"%s","tool":"%s","scenario":"%s","dataset":"%s","step":"%s","status":"%s","note":%s}\n' \
        "$RUN_ID" "$ROUND" "$(date -Iseconds)" "$([[ $QUICK == 1 ]] && echo true || echo false)" "$CACHE_MODE" \
        "$1" "$2" "${DATASET_OF[$2]:-}" "$3" "$4" "$(json_str "$5")" >>"$RESULTS"
    log "[round $ROUND] $1 $2 $3: $4 $5"
}

# Where a tool put the restored copy of SRC under TARGET: restic and borg keep the
# absolute path (TARGET/var/tmp/...); a tool may also restore the last component only,
# or (bupstash) the contents straight into TARGET.
restored_root() { # TARGET SRC
    local c
    for c in "$1$2" "$1/$(basename "$2")"; do
        if [[ -d $c ]]; then echo "$c"; return; fi
    done
    echo "$1"
}

# Compare a restored tree with its source: contents (diff -r, symlinks compared as
# links) and a metadata listing (type, mode, size, link target, file mtime, owner).
verify_tree() { # TOOL SCENARIO SRC RESTORED
    local tool=$1 scenario=$2 src=$3 dst=$4 base=$LOGS/r$ROUND-$1-$2-verify
    if diff -r --no-dereference -q "$src" "$dst" >"$base.diff" 2>&1; then
        local listing='%P\t%y\t%m\t%u:%g\t%s\t%l\t%TY-%Tm-%Td %TH:%TM:%TS\n' nmeta
        find "$src" -mindepth 1 \( -type d -printf '%P\t%y\t%m\t%u:%g\n' \) -o -printf "$listing" | sort >"$base.meta-src"
        find "$dst" -mindepth 1 \( -type d -printf '%P\t%y\t%m\t%u:%g\n' \) -o -printf "$listing" | sort >"$base.meta-dst"
        nmeta=$(diff "$base.meta-src" "$base.meta-dst" | grep -c '^>' || true)
        if [[ $nmeta == 0 ]]; then
            record "$tool" "$scenario" verify ok "restore identical to the source (contents and metadata)"
        else
            record "$tool" "$scenario" verify ok "contents identical; metadata differs for $nmeta entries (see $base.meta-*)"
        fi
    else
        record "$tool" "$scenario" verify FAILED "restore differs from the source: $(wc -l <"$base.diff") lines of diff -r, see $base.diff"
        head -n 10 "$base.diff" >&2
    fi
}

# ---------------------------------------------------------------------------------
# Scenarios

scenario_mixed() { # TOOL
    local tool=$1 src=$DATA/$MIXED_NAME target=$RUN/restore-$1
    local bytes
    bytes=$(cut -d' ' -f1 "$src.done")
    STEP_INPUT_BYTES=$bytes measure "$tool" mixed "backup" backup "$src"
    STEP_INPUT_BYTES=$bytes measure "$tool" mixed "backup again" backup "$src"
    new_target "$target" "$bytes"
    STEP_INPUT_BYTES=$bytes STEP_CWD=$target measure "$tool" mixed "restore" restore "$target"
    if [[ $STEP_STATUS != FAILED ]]; then
        verify_tree "$tool" mixed "$src" "$(restored_root "$target" "$src")"
    fi
    done_target "$target"
}

scenario_small() { # TOOL
    local tool=$1 src=$DATA/$SMALL_NAME bytes
    bytes=$(cut -d' ' -f1 "$src.done")
    STEP_INPUT_BYTES=$bytes measure "$tool" small "backup" backup "$src"
    STEP_INPUT_BYTES=$bytes measure "$tool" small "backup again" backup "$src"
}

scenario_dumps() { # TOOL
    local tool=$1 dir=$DATA/$DUMPS_NAME n file target=$RUN/restore-$1
    for ((n = 1; n <= DUMP_NIGHTS; n++)); do
        file=$dir/night-$n.sql
        STEP_STDIN=$file STEP_INPUT_BYTES=$(stat -c %s "$file") \
            measure "$tool" dumps "night $n" backup-stdin db.sql
    done
    new_target "$target" "$(stat -c %s "$file")"
    STEP_INPUT_BYTES=$(stat -c %s "$file") STEP_CWD=$target \
        measure "$tool" dumps "restore night $DUMP_NIGHTS" restore-stream "$target" db.sql
    if [[ $STEP_STATUS != FAILED ]]; then
        local got
        got=$(find "$target" -name db.sql -type f | head -n1)
        if [[ -n $got ]] && cmp -s "$file" "$got"; then
            record "$tool" dumps verify ok "restored db.sql identical to night $DUMP_NIGHTS"
        else
            record "$tool" dumps verify FAILED "restored db.sql (${got:-missing}) differs from night $DUMP_NIGHTS"
        fi
    fi
    done_target "$target"
}

# A disk image: one big file, mostly unchanged between backups on a real server.
scenario_image() { # TOOL
    local tool=$1 dir=$DATA/$IMAGE_NAME target=$RUN/restore-$1 bytes
    bytes=$(stat -c %s "$dir/disk.img")
    STEP_INPUT_BYTES=$bytes measure "$tool" image "backup" backup "$dir"
    STEP_INPUT_BYTES=$bytes measure "$tool" image "backup again" backup "$dir"
    new_target "$target" "$bytes"
    STEP_INPUT_BYTES=$bytes STEP_CWD=$target measure "$tool" image "restore" restore "$target"
    if [[ $STEP_STATUS != FAILED ]]; then
        local got
        got=$(find "$target" -name disk.img -type f | head -n1)
        if [[ -n $got ]] && cmp -s "$dir/disk.img" "$got"; then
            record "$tool" image verify ok "restored disk.img identical to the image"
        else
            record "$tool" image verify FAILED "restored disk.img (${got:-missing}) differs from the image"
        fi
    fi
    done_target "$target"
}

# ---------------------------------------------------------------------------------
# Main

declare -A DATASET_OF=([mixed]=$MIXED_NAME [small]=$SMALL_NAME [dumps]=$DUMPS_NAME [image]=$IMAGE_NAME)
declare -A TOOL_VERSION=()

for s in $SCENARIOS; do
    [[ -n ${DATASET_OF[$s]:-} ]] || die "unknown scenario '$s' (mixed, small, dumps, image)"
done

log "run $RUN_ID: tools [$TOOLS], scenarios [$SCENARIOS], rounds $RUNS, quick=$QUICK, work dir $BENCH_DIR"
log "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(free -g | awk '/^Mem:/{print $2}') GiB RAM"

ACTIVE_TOOLS=()
for tool in $TOOLS; do
    bin=$(tool_bin "$tool")
    if [[ -z $bin || ! -x $bin ]]; then
        log "$tool: not found (${bin:-not on PATH}), skipped"
        record "$tool" none all MISSING "binary not found: ${bin:-not on PATH}"
        continue
    fi
    TOOL_VERSION[$tool]=$(tool_version "$tool")
    log "$tool: ${TOOL_VERSION[$tool]}"
    ACTIVE_TOOLS+=("$tool")
done

printf '{"kind":"machine","run":"%s","date":"%s","quick":%s,"cache":"%s","rounds":%s,"cores":%s,"cpu":%s,"mem_kib":%s,"kernel":%s}\n' \
    "$RUN_ID" "$(date -Iseconds)" "$([[ $QUICK == 1 ]] && echo true || echo false)" "$CACHE_MODE" "$RUNS" "$(nproc)" \
    "$(json_str "$(lscpu | sed -n 's/^Model name: *//p' | head -n1)")" \
    "$(awk '/^MemTotal:/{print $2}' /proc/meminfo)" "$(json_str "$(uname -sr)")" >>"$RESULTS"
for tool in ${ACTIVE_TOOLS[@]+"${ACTIVE_TOOLS[@]}"}; do
    printf '{"kind":"tool","run":"%s","tool":"%s","version":%s}\n' \
        "$RUN_ID" "$tool" "$(json_str "${TOOL_VERSION[$tool]}")" >>"$RESULTS"
done

if [[ $DATASETS_ONLY == 1 ]]; then
    for s in $SCENARIOS; do prepare_dataset "${DATASET_OF[$s]}"; done
    rm -f "$RESULTS"
    rmdir "$LOGS" 2>/dev/null || true
    exit 0
fi

for s in $SCENARIOS; do
    prepare_dataset "${DATASET_OF[$s]}"
    read -r dbytes dfiles <"$DATA/${DATASET_OF[$s]}.done"
    printf '{"kind":"dataset","run":"%s","scenario":"%s","name":"%s","bytes":%s,"files":%s}\n' \
        "$RUN_ID" "$s" "${DATASET_OF[$s]}" "$dbytes" "$dfiles" >>"$RESULTS"
done

# RUNS rounds of every scenario and tool; the tools take turns going first: round R
# starts with the R-th tool of TOOLS (round 1 with the first). The first tool of a
# scenario often pays for reclaiming the page cache that the scenario before filled
# (its system time doubled or tripled on the disk image), so no tool may go first in
# more rounds than another. Alternating the order instead put the first tool first in
# every odd round: two of three rounds, so in the median.
for ((ROUND = 1; ROUND <= RUNS; ROUND++)); do
    ROUND_TOOLS=()
    for ((j = 0; j < ${#ACTIVE_TOOLS[@]}; j++)); do
        ROUND_TOOLS[j]=${ACTIVE_TOOLS[(j + ROUND - 1) % ${#ACTIVE_TOOLS[@]}]}
    done
    log "=== round $ROUND of $RUNS: tools [${ROUND_TOOLS[*]-}] ==="
    for s in $SCENARIOS; do
        for tool in ${ROUND_TOOLS[@]+"${ROUND_TOOLS[@]}"}; do
            log "=== round $ROUND: $tool / $s ==="
            fresh_repo "$tool" "$s"
            measure "$tool" "$s" init init
            if [[ $STEP_STATUS == FAILED ]]; then
                log "$tool: init failed, skipping scenario $s"
                continue
            fi
            "scenario_$s" "$tool"
            if [[ $tool == bupstash ]]; then STEP_NOTE="bupstash has no check command: list instead"; fi
            measure "$tool" "$s" check check
            [[ $KEEP == 1 ]] || rm -rf "$REPO" "$TOOL_HOME"
        done
    done
done
ROUND=1

python3 "$HERE/report.py" "$RESULTS" | tee "${RESULTS%.jsonl}.md"
log "results: $RESULTS (table: ${RESULTS%.jsonl}.md, logs: $LOGS)"

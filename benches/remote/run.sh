#!/usr/bin/env bash
# Backup, restore and copy throughput: a local repository against S3 (s3s-fs) and SFTP
# (OpenSSH's sshd), both on loopback, started here and stopped at the end.
#
#   benches/remote/run.sh [DATA_DIR]     # default: the 100,000 small files of benches/e2e
#
# For each of local, s3 and sftp, in a fresh repository, each step under GNU time:
#   backup   cairn backup DATA
#   restore  cairn restore latest --target (an empty directory)
#   copy     cairn copy from the local repository into a repository made with
#            init --copy-params-from (local -> s3, local -> sftp)
# Prints CSV: backend,step,seconds,max_rss_kib,mb_per_s. Needs: s3s-fs (see .ci/run),
# sshd and ssh-keygen (openssh-server), a release build (target/release/cairn).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CAIRN=${CAIRN:-$ROOT/target/release/cairn}
DATA=${1:-/var/tmp/cairn-bench/data/small-100000}
WORK=${WORK:-/var/tmp/cairn-remote-bench}
S3S=${S3S_FS:-$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")}
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
[ -x "$CAIRN" ] || { echo "build first: cargo build --release" >&2; exit 2; }
[ -d "$DATA" ] || { echo "no data at $DATA (benches/e2e/run.sh --datasets-only)" >&2; exit 2; }
rm -rf "$WORK"; mkdir -p "$WORK"/{s3,ssh/files}
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return; sleep 0.1; done; echo "no server on $1" >&2; exit 1; }

# The servers.
S3_PORT=$(port); SSH_PORT=$(port)
mkdir -p "$WORK/s3/bench"
"$S3S" --host 127.0.0.1 --port "$S3_PORT" --access-key benchkey --secret-key bench-secret-0123456789 "$WORK/s3" >"$WORK/s3.log" 2>&1 &
S3_PID=$!
for k in host_key client_key; do ssh-keygen -q -t ed25519 -N '' -f "$WORK/ssh/$k"; done
cp "$WORK/ssh/client_key.pub" "$WORK/ssh/authorized_keys"
mkdir -p /run/sshd 2>/dev/null || true
cat >"$WORK/ssh/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $WORK/ssh/host_key
PidFile none
AuthorizedKeysFile $WORK/ssh/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
LogLevel ERROR
EOF
echo "[127.0.0.1]:$SSH_PORT $(cat "$WORK/ssh/host_key.pub")" >"$WORK/ssh/known_hosts"
"$SSHD" -D -e -f "$WORK/ssh/sshd_config" >"$WORK/sshd.log" 2>&1 &
SSH_PID=$!
trap 'kill $S3_PID $SSH_PID 2>/dev/null || true' EXIT
wait_port "$S3_PORT"; wait_port "$SSH_PORT"

export CAIRN_PASSWORD=bench CAIRN_CACHE_DIR=$WORK/cache
export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=bench-secret-0123456789
export CAIRN_SFTP_IDENTITY_FILE=$WORK/ssh/client_key CAIRN_SFTP_KNOWN_HOSTS=$WORK/ssh/known_hosts
declare -A REPO=(
  [local]=$WORK/local
  [s3]=s3://bench/repo
  [sftp]=sftp://$(id -un)@127.0.0.1:$SSH_PORT$WORK/ssh/files/repo
)
BYTES=$(du -sb "$DATA" | cut -f1)

step() { # backend step command...
  local b=$1 s=$2; shift 2
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  read -r secs rss <"$WORK/time"
  echo "$b,$s,$secs,$rss,$(python3 -c "print(round($BYTES/1e6/$secs, 1))")"
}

echo "backend,step,seconds,max_rss_kib,mb_per_s"
for b in local s3 sftp; do
  r=${REPO[$b]}
  rm -rf "$CAIRN_CACHE_DIR"
  "$CAIRN" -r "$r" init -q >/dev/null 2>&1 || "$CAIRN" -r "$r" init >/dev/null
  step "$b" backup "$CAIRN" -r "$r" backup -q "$DATA"
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  rm -rf "$WORK/out"
  step "$b" restore "$CAIRN" -r "$r" restore -q latest --target "$WORK/out"
  rm -rf "$WORK/out"
done
# Copies from the local repository into fresh remote ones made like it.
for b in s3 sftp; do
  r=${REPO[$b]}-copy
  "$CAIRN" -r "$r" init --copy-params-from "${REPO[local]}" --from-password-command 'echo bench' >/dev/null
  step "$b" copy env CAIRN_FROM_REPOSITORY="${REPO[local]}" CAIRN_FROM_PASSWORD=bench "$CAIRN" -r "$r" copy -q
done

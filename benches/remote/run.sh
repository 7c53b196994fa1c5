#!/usr/bin/env bash
# Backup, restore and copy throughput: a local repository against S3 (s3s-fs) and SFTP
# (OpenSSH's sshd), both on loopback, started here and stopped at the end; and Garage
# as a second S3-compatible server when its binary is there.
#
#   benches/remote/run.sh [DATA_DIR]     # default: the 100,000 small files of benches/e2e
#   GARAGE=/path/to/garage benches/remote/run.sh DATA_DIR    # Garage too
#   STREAM=/path/to/dump.sql benches/remote/run.sh DATA_DIR  # and a stream: backup, dump
#   BACKENDS="local sftp" benches/remote/run.sh DATA_DIR    # only these (local s3 sftp)
#
# For each backend, in a fresh repository, each step under GNU time:
#   backup   cairn backup DATA
#   restore  cairn restore latest --target (an empty directory)
#   stream   cairn backup --stdin-name dump.sql < STREAM   (with STREAM)
#   dump     cairn dump latest /dump.sql > a file            (with STREAM)
#   copy     cairn copy from the local repository into a repository made with
#            init --copy-params-from (local -> each remote)
# Prints CSV: backend,step,seconds,cairn_cpu_s,server_cpu_s,max_rss_kib,mb_per_s.
# cairn_cpu_s is cairn's user+system time (with its ssh child); server_cpu_s the
# server's over the step (s3s-fs, Garage, or sshd with its per-connection processes).
# On loopback both share the machine's cores, so a step is also bounded by their sum.
# Needs: s3s-fs (see scripts/test.sh), sshd and ssh-keygen (openssh-server), a release build.
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
BACKENDS=${BACKENDS:-local s3 sftp}

# Garage (optional): one node, a bucket, a key; the objects on the local disk.
GARAGE=${GARAGE:-$(command -v garage || true)}
if [ -n "$GARAGE" ] && [ -x "$GARAGE" ]; then
  G_S3=$(port); G_RPC=$(port); G_ADMIN=$(port)
  mkdir -p "$WORK/garage"
  cat >"$WORK/garage/garage.toml" <<EOF
metadata_dir = "$WORK/garage/meta"
data_dir = "$WORK/garage/data"
db_engine = "sqlite"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$G_RPC"
rpc_public_addr = "127.0.0.1:$G_RPC"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$G_S3"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$G_ADMIN"
EOF
  G="$GARAGE -c $WORK/garage/garage.toml"
  $G server >"$WORK/garage.log" 2>&1 &
  G_PID=$!
  trap 'kill $S3_PID $SSH_PID $G_PID 2>/dev/null || true' EXIT
  wait_port "$G_S3"
  for _ in $(seq 50); do NODE=$($G node id -q 2>/dev/null | cut -d@ -f1) && [ -n "$NODE" ] && break; sleep 0.2; done
  $G layout assign -z dc1 -c 10G "$NODE" >/dev/null
  $G layout apply --version 1 >/dev/null
  $G bucket create bench >/dev/null
  KEY=$($G key create bench-key)
  G_ID=$(echo "$KEY" | awk '/Key ID/ {print $NF}')
  G_SECRET=$(echo "$KEY" | awk '/Secret key/ {print $NF}')
  $G bucket allow --read --write --owner bench --key bench-key >/dev/null
  REPO[garage]=s3://bench/repo
  BACKENDS="$BACKENDS garage"
fi
BYTES=$(du -sb "$DATA" | cut -f1)

# The environment of each backend (Garage has its own endpoint, region and key).
with() { # backend command...
  local b=$1; shift
  if [ "$b" = garage ]; then
    env AWS_ENDPOINT_URL="http://127.0.0.1:$G_S3" AWS_REGION=garage \
      AWS_ACCESS_KEY_ID="$G_ID" AWS_SECRET_ACCESS_KEY="$G_SECRET" "$@"
  else
    "$@"
  fi
}

# CPU seconds the server of a backend has used so far.
server_cpu() {
  local pid
  case $1 in
    s3) pid=$S3_PID ;;
    garage) pid=$G_PID ;;
    sftp)
      # Per-connection processes count once they have ended and been reaped.
      for _ in $(seq 100); do [ -z "$(pgrep -P "$SSH_PID")" ] && break; sleep 0.02; done
      pid=$SSH_PID ;;
    *) echo 0; return ;;
  esac
  awk '{printf "%.2f", ($14 + $15 + $16 + $17) / 100}' "/proc/$pid/stat"
}

step() { # backend step bytes command...
  local b=$1 s=$2 n=$3; shift 3
  local before after
  before=$(server_cpu "$b")
  with "$b" /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/err" || { cat "$WORK/err" >&2; exit 1; }
  read -r secs user sys rss <"$WORK/time"
  after=$(server_cpu "$b")
  python3 -c "print('$b,$s,$secs,%.2f,%.2f,$rss,%.1f' % ($user + $sys, $after - $before, $n / 1e6 / $secs))"
}

echo "backend,step,seconds,cairn_cpu_s,server_cpu_s,max_rss_kib,mb_per_s"
for b in $BACKENDS; do
  r=${REPO[$b]}
  rm -rf "$CAIRN_CACHE_DIR"
  with "$b" "$CAIRN" -r "$r" init -q >/dev/null
  step "$b" backup "$BYTES" "$CAIRN" -r "$r" backup -q "$DATA"
  sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
  rm -rf "$WORK/out"
  step "$b" restore "$BYTES" "$CAIRN" -r "$r" restore -q latest --target "$WORK/out"
  rm -rf "$WORK/out"
  if [ -n "${STREAM:-}" ]; then
    SB=$(stat -c %s "$STREAM")
    step "$b" stream "$SB" sh -c 'exec "$0" -r "$1" backup -q --stdin-name dump.sql <"$2"' "$CAIRN" "$r" "$STREAM"
    step "$b" dump "$SB" sh -c 'exec "$0" -r "$1" dump latest /dump.sql >"$2"' "$CAIRN" "$r" "$WORK/dump.out"
    cmp -s "$STREAM" "$WORK/dump.out" || { echo "the dump from $b differs" >&2; exit 1; }
    rm -f "$WORK/dump.out"
  fi
done
# Copies from the local repository into fresh remote ones made like it.
for b in $BACKENDS; do
  [[ " $BACKENDS " == *" local "* ]] || break
  [ "$b" = local ] && continue
  r=${REPO[$b]}-copy
  with "$b" "$CAIRN" -r "$r" init --copy-params-from "${REPO[local]}" --from-password-command 'echo bench' >/dev/null
  step "$b" copy "$BYTES" env CAIRN_FROM_REPOSITORY="${REPO[local]}" CAIRN_FROM_PASSWORD=bench "$CAIRN" -r "$r" copy -q
done

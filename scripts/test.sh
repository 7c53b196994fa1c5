#!/usr/bin/env bash
# Runs every test of cairn on this machine: first installs what the tests need, where it
# is missing, then runs the workspace's tests and the short fuzzing campaign:
#
#     cargo test --workspace && fuzz/smoke.sh
#
# scripts/test.sh               install what is missing, then run every test
# scripts/test.sh --setup-only  install what is missing and check the servers, then stop
#                               (also CAIRN_TEST_SETUP_ONLY=1)
#
# Installing is idempotent: a program already on the PATH is not installed again. Debian
# packages go through apt-get (as root, else through sudo when there is one; otherwise the
# script names the packages and stops). CI runs this same script (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

setup_only=${CAIRN_TEST_SETUP_ONLY:-0}
case "${1:-}" in
  --setup-only) setup_only=1 ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--setup-only]" >&2; exit 2 ;;
esac

say() { printf 'test.sh: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null; then
  say "cargo is not installed: install Rust 1.85 or newer (https://rustup.rs), then run this again"
  exit 1
fi

# Debian packages, named by a program each provides.
need=()
# A C and C++ compiler: zstd and SQLite (bundled) are built from C, libFuzzer from C++
# (fuzz/smoke.sh builds the fuzz targets with this same toolchain: no nightly, no
# cargo-fuzz; only fuzz/run.sh, the long campaign, needs those).
command -v cc >/dev/null || need+=(gcc)
command -v c++ >/dev/null || need+=(g++)
command -v setpriv >/dev/null || need+=(util-linux)
command -v mkfifo >/dev/null || need+=(coreutils)
command -v tar >/dev/null || need+=(tar)
command -v python3 >/dev/null || need+=(python3)
# Database clients for the dump tests, and PostgreSQL's server programs for the
# throwaway clusters of the whole-server test.
command -v pg_dump >/dev/null || need+=(postgresql-client)
command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v mariadb-dump >/dev/null || command -v mysqldump >/dev/null || need+=(mariadb-client)
# Kimai's front-end reads the installed version with git.
command -v git >/dev/null || need+=(git)
# OpenSSH's server and client for the SFTP backend's tests (they start their own sshd).
command -v ssh >/dev/null || need+=(openssh-client)
command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
# rclone: the rclone: repositories' tests run `rclone serve sftp` on its local backend.
command -v rclone >/dev/null || need+=(rclone)
# Run as root, the SFTP tests also log in an ordinary account (cairn-sftp), which they
# make with useradd when it is missing.
command -v useradd >/dev/null || [ -x /usr/sbin/useradd ] || need+=(passwd)
# Shells whose completion scripts the tests check.
command -v zsh >/dev/null || need+=(zsh)
command -v fish >/dev/null || need+=(fish)
# The manual pages' test renders them; the schedule test verifies systemd units.
command -v man >/dev/null || need+=(man-db)
command -v groff >/dev/null || need+=(groff-base)
command -v systemd-analyze >/dev/null || need+=(systemd)
# `cairn mount`'s test mounts through FUSE (fuser needs no libfuse to build; fusermount3
# is how users other than root mount).
command -v fusermount3 >/dev/null || need+=(fuse3)

if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "the tests need these Debian packages (or your system's equivalent): ${need[*]}"
    say "install them, then run this again"
    exit 1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    sudo=()
  elif command -v sudo >/dev/null; then
    sudo=(sudo)
  else
    say "the tests need these packages, and installing them needs root: ${need[*]}"
    say "as root: apt-get install ${need[*]}; then run this again"
    exit 1
  fi
  say "installing ${need[*]}"
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi

# The S3-compatible server of the S3 backend's tests (crates/testing/src/servers.rs says
# why this one, and also looks at CAIRN_TEST_S3S_FS). Built once into cargo's bin
# directory (about three minutes on two cores); 0.14.1 is the newest release that builds
# with the toolchain here.
s3s_fs="${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs"
if [ ! -x "${CAIRN_TEST_S3S_FS:-$s3s_fs}" ] && ! command -v s3s-fs >/dev/null; then
  say "installing s3s-fs (the tests' S3 server)"
  cargo install --locked --quiet s3s-fs --version 0.14.1 --features binary
fi

# The database tests use running servers: PostgreSQL on 127.0.0.1:5432 (user postgres,
# no password) and MariaDB on 127.0.0.1:3306 (user root, no password); see
# tests/e2e/common/db.rs. They are not set up here: that changes a machine's databases.
servers_ok=1
if ! psql -h 127.0.0.1 -p 5432 -U postgres -w -Atqc 'SELECT 1' postgres >/dev/null 2>&1; then
  say "no PostgreSQL server answers on 127.0.0.1:5432: the database tests need one that"
  say "accepts the user postgres without a password (trust for 127.0.0.1 in pg_hba.conf)"
  servers_ok=0
fi
mariadb=$(command -v mariadb || command -v mysql)
if ! "$mariadb" --connect-timeout=5 -h 127.0.0.1 -P 3306 -u root -e 'SELECT 1' >/dev/null 2>&1; then
  say "no MariaDB server accepts root without a password on 127.0.0.1:3306: the database"
  say "tests need one (package mariadb-server, root@localhost with an empty password)"
  servers_ok=0
fi
[ "$servers_ok" -eq 1 ] || exit 1

say "everything the tests need is here"
[ "$setup_only" = 1 ] && exit 0

cargo test --workspace && fuzz/smoke.sh

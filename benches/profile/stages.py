#!/usr/bin/env python3
"""Where a cairn run's CPU time goes, stage by stage, from a `perf record -g` profile.

Usage: stages.py PERF.DATA [--threads]

Reads `perf script` output and puts every sample in one stage, by its stack (the
kernel part of a stack is always whole; of the user part the leaf is enough):

  kdf        the key derivation (argon2) that opens the repository
  walk       listing directories, lstat, extended attributes (the system calls and
             cairn's walk)
  read       reading file or stream bytes (read system calls, page cache copies)
  chunk      content-defined chunking (FastCDC)
  hash       keyed BLAKE3 of chunks (and of blobs read back to verify them)
  index      index lookups and the set of blobs claimed in this run
  compress   zstd compression (and decompression of delta bases read back)
  seal       XChaCha20-Poly1305
  write      writing packs, index files, snapshots (write system calls)
  fsync      fsync and the journal waits it causes
  alloc      malloc/free, page faults and page clearing, memcpy
  other      everything else (thread handoffs, catalog, serialization...)

With --threads, one table per thread (by thread id) as well.
Prints a markdown table: samples, share, and seconds (samples / sampling rate).
"""
import collections
import re
import subprocess
import sys

STAGES = ["kdf", "walk", "read", "chunk", "hash", "index", "compress", "seal", "write",
          "fsync", "alloc", "other"]

# Kernel entry points (system calls) -> stage; the first one found from the leaf wins.
SYSCALLS = [
    (re.compile(r"sys_(fsync|fdatasync|sync_file_range)"), "fsync"),
    (re.compile(r"sys_(write|pwrite64|writev|pwritev2?|copy_file_range|renameat2?|rename|linkat|unlinkat)\b"), "write"),
    (re.compile(r"sys_(read|pread64|readv|preadv2?)\b"), "read"),
    (re.compile(r"sys_(newfstatat|statx|newlstat|newstat|lstat|getdents64|openat|listxattr|llistxattr|getxattr|lgetxattr|readlink|readlinkat|close)\b"), "walk"),
]
# User-space leaf symbols -> stage.
LEAVES = [
    (re.compile(r"argon2"), "kdf"),
    (re.compile(r"fastcdc|cairn_chunker|Chunker|chunk_reader|chunk_into"), "chunk"),
    (re.compile(r"blake3"), "hash"),
    (re.compile(r"ZSTD_|HUF_|FSE_|HIST_|zstd"), "compress"),
    (re.compile(r"chacha|poly1305|xchacha|aead"), "seal"),
    (re.compile(r"Index::|index::|claim|hashbrown|HashSet|HashMap"), "index"),
    (re.compile(r"Walk::|walk::|read_dir|symlink_metadata|xattr|NameCache"), "walk"),
    (re.compile(r"malloc|_int_free|cfree|free@|realloc|memmove|memcpy|memset|clear_page|page_fault|exc_page_fault|do_anonymous_page|alloc_pages|consolidate"), "alloc"),
]
KERNEL_FSYNC = re.compile(r"jbd2|file_write_and_wait|ext4_sync_file")


def classify(frames):
    """frames: list of symbol names, leaf first."""
    for sym in frames:
        if KERNEL_FSYNC.search(sym):
            return "fsync"
        for rx, stage in SYSCALLS:
            if rx.search(sym):
                # Page faults and page clearing inside a system call stay with it.
                return stage
    leaf = frames[0] if frames else ""
    for rx, stage in LEAVES:
        if rx.search(leaf):
            return stage
    return "other"


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    per_thread = "--threads" in sys.argv
    if not args:
        print(__doc__)
        sys.exit(2)
    out = subprocess.run(["perf", "script", "-i", args[0], "-F", "tid,period,event,ip,sym"],
                         capture_output=True, text=True, errors="replace").stdout
    header = subprocess.run(["perf", "report", "-i", args[0], "--header-only"],
                            capture_output=True, text=True, errors="replace").stdout
    m = re.search(r"sample_freq\D*(\d+)", header) or re.search(r"freq = (\d+)", header)
    freq = int(m.group(1)) if m else None

    total = collections.Counter()
    threads = collections.defaultdict(collections.Counter)
    tid, frames = None, []

    def flush():
        if tid is not None:
            st = classify(frames)
            total[st] += 1
            threads[tid][st] += 1

    head_rx = re.compile(r"^\s*(\d+)\s+\d+\s+\S+:\s*(?:([0-9a-f]+)\s+(.*))?$")
    for line in out.splitlines():
        m = head_rx.match(line)
        if m:
            # "tid period event: [ip sym]": without call chains the sample is one line.
            flush()
            tid, frames = m.group(1), []
            if m.group(3):
                frames.append(m.group(3))
        elif line.strip() and tid is not None:
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else "")
    flush()

    def table(counter, title):
        n = sum(counter.values()) or 1
        print(f"\n{title} ({n} samples{'' if not freq else f' at {freq} Hz'})\n")
        print("| stage | samples | share | CPU s |")
        print("|---|--:|--:|--:|")
        for st in STAGES:
            c = counter.get(st, 0)
            secs = "-" if not freq else f"{c / freq:.2f}"
            print(f"| {st} | {c} | {100 * c / n:.1f} % | {secs} |")

    table(total, "All threads")
    if per_thread:
        for t, c in sorted(threads.items(), key=lambda kv: -sum(kv[1].values()))[:6]:
            table(c, f"Thread {t}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""List system files for the "mixed" dataset, up to a byte budget.

Usage: mixed_list.py BUDGET_BYTES MAX_FILE_BYTES ROOT... > list (NUL-separated paths)
       mixed_list.py --fix-dirs DEST


Walks each ROOT in sorted order and takes files from the roots in turn, always from
the root that has contributed the fewest bytes so far, so the result is a balanced mix
of libraries, executables, documentation, compressed files and text.  Only regular
files readable by the current user (and not larger than MAX_FILE_BYTES) and symbolic
links are listed; sockets, FIFOs, devices and unreadable files are skipped.  Stops when the budget is reached.
The list is deterministic for a given system.

`cp -a --parents` (coreutils 9.1) creates the parent directories with mode 700;
--fix-dirs gives every directory under DEST (a copy of /) the mode, owner and times of
the directory it copies.
"""
import os
import stat
import sys


def walk(root, max_size):
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: None):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                yield path, 0
            elif (stat.S_ISREG(st.st_mode) and st.st_size <= max_size
                  and os.access(path, os.R_OK)):
                yield path, st.st_size


def fix_dirs(dest):
    for dirpath, _, _ in os.walk(dest, topdown=False):
        rel = os.path.relpath(dirpath, dest)
        if rel == ".":
            continue
        try:
            st = os.lstat("/" + rel)
        except OSError:
            continue
        os.chown(dirpath, st.st_uid, st.st_gid)
        os.chmod(dirpath, stat.S_IMODE(st.st_mode))
        os.utime(dirpath, ns=(st.st_atime_ns, st.st_mtime_ns))


def main():
    if sys.argv[1] == "--fix-dirs":
        fix_dirs(sys.argv[2])
        return
    budget = int(float(sys.argv[1]))
    max_size = int(float(sys.argv[2]))
    roots = [r for r in sys.argv[3:] if os.path.isdir(r)]
    gens = {r: walk(r, max_size) for r in roots}
    taken = {r: 0 for r in roots}
    total = 0
    out = sys.stdout.buffer
    while gens and total < budget:
        root = min(gens, key=lambda r: (taken[r], r))
        try:
            path, size = next(gens[root])
        except StopIteration:
            del gens[root]
            continue
        out.write(os.fsencode(path) + b"\0")
        taken[root] += size
        total += size
    sys.stderr.write("mixed: selected %.1f MiB from %s\n" % (
        total / 2**20, ", ".join("%s %.0f MiB" % (r, taken[r] / 2**20) for r in roots)))


if __name__ == "__main__":
    main()

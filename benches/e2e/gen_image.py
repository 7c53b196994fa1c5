#!/usr/bin/env python3
"""Make the "image" dataset: an ext4 file system image, without mounting it.

Usage: gen_image.py IMAGE SIZE_BYTES SRCDIR

Creates IMAGE (a sparse file of SIZE_BYTES) and formats it with `mkfs.ext4 -d SRCDIR`,
which copies the tree into the new file system; the space SRCDIR does not fill stays
zeros, as on a real disk.

Two generations from the same SRCDIR give the same bytes (checked with e2fsprogs
1.47.0):
  * the UUID and the directory hash seed are fixed (-U, -E hash_seed=),
  * E2FSPROGS_FAKE_TIME and SOURCE_DATE_EPOCH fix the times mkfs takes from the clock
    (superblock, root and lost+found),
  * mkfs copies each inode's atime and ctime from SRCDIR, and these change (a ctime
    cannot be set from user space, and mkfs reads a directory before it copies its
    atime): both are set afterwards to a fixed time with debugfs, for every inode in
    use (found in dumpe2fs's lists of free inodes),
  * SRCDIR's own mtime (the root directory's) is set to the fixed time.
SRCDIR must be the same, of course (same files, modes, owners and mtimes): a tree
copied from /usr stays the same until packages are installed or removed.
"""
import os
import re
import subprocess
import sys

FIXED_TIME = 1_700_000_000
FS_UUID = "6f2b8e0a-4c1d-4e5f-9a7b-0c3d2e1f4a5b"


def used_inodes(image, env):
    out = subprocess.run(["dumpe2fs", image], capture_output=True, text=True,
                         check=True, env=env).stdout
    per_group = int(re.search(r"^Inodes per group:\s+(\d+)", out, re.M).group(1))
    for m in re.finditer(r"^Group (\d+):.*?Free inodes: ([^\n]*)", out, re.M | re.S):
        group = int(m.group(1))
        free = set()
        for r in filter(None, (x.strip() for x in m.group(2).split(","))):
            a, _, b = r.partition("-")
            free.update(range(int(a), int(b or a) + 1))
        for ino in range(group * per_group + 1, (group + 1) * per_group + 1):
            if ino not in free:
                yield ino


def main():
    image, size, src = sys.argv[1], int(float(sys.argv[2])), sys.argv[3]
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(FIXED_TIME),
               SOURCE_DATE_EPOCH=str(FIXED_TIME), LC_ALL="C")
    os.utime(src, (FIXED_TIME, FIXED_TIME))
    if os.path.exists(image):
        os.unlink(image)
    with open(image, "wb") as f:
        f.truncate(size)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-U", FS_UUID, "-E", "hash_seed=" + FS_UUID,
                    "-L", "bench", "-d", src, image], check=True, env=env)
    cmds = "".join("sif <%d> %s\n" % (i, f) for i in used_inodes(image, env)
                   for f in ("atime @%d" % FIXED_TIME, "atime_extra 0",
                             "ctime @%d" % FIXED_TIME, "ctime_extra 0"))
    subprocess.run(["debugfs", "-w", "-f", "-", image], input=cmds, text=True, check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.utime(image, (FIXED_TIME, FIXED_TIME))


if __name__ == "__main__":
    main()

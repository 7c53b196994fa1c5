#!/usr/bin/env python3
"""Generate the "small" dataset: many small text-like files in nested directories.

Usage: gen_small.py DEST NFILES [SEED]

Files are 0-8 KiB (uniform sizes), about 100 per directory, in a two-level tree
(dNN/dNNN/fNNNNNN.txt).  Content is pseudo-random prose-like text drawn from a fixed
vocabulary with some digits and punctuation (compresses roughly like source code or
notes).  Everything, including mtimes, is deterministic for a given seed.
"""
import os
import random
import sys

PER_DIR = 100
MTIME = 1_700_000_000  # fixed mtime for files and directories


def make_corpus(rng, nbytes):
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "on", "er", "an", "qu", "is",
            "tor", "el", "ve", "dra", "po", "un", "st", "ch", "ix", "ab", "ze", "wy"]
    vocab = ["".join(rng.choice(syll) for _ in range(rng.randint(1, 4)))
             for _ in range(6000)]
    vocab += ["the", "and", "of", "to", "in", "is", "for", "return", "if", "else",
              "self", "None", "value", "error", "config", "user", "data"] * 40
    seps = [" "] * 30 + [", ", ". ", ".\n", "\n", ": ", " = ", "();\n", "\n    "]
    words = rng.choices(vocab, k=nbytes // 5)
    punct = rng.choices(seps, k=len(words))
    nums = [str(rng.randint(0, 99999)) if rng.random() < 0.04 else "" for _ in range(len(words))]
    return "".join(w + n + p for w, n, p in zip(words, nums, punct)).encode()


def main():
    dest = sys.argv[1]
    nfiles = int(sys.argv[2])
    seed = int(sys.argv[3]) if len(sys.argv) > 3 else 42
    rng = random.Random(seed)
    corpus = make_corpus(rng, 24 << 20)
    limit = len(corpus) - 8192
    ndirs = (nfiles + PER_DIR - 1) // PER_DIR
    top = max(1, int(round(ndirs ** 0.5)))
    dirs = []
    for i in range(nfiles):
        d = i // PER_DIR
        sub = os.path.join(dest, "d%02d" % (d % top), "d%04d" % d)
        if i % PER_DIR == 0:
            os.makedirs(sub, exist_ok=True)
            dirs.append(sub)
        size = rng.randint(0, 8192)
        off = rng.randrange(limit)
        path = os.path.join(sub, "f%06d.txt" % i)
        with open(path, "wb") as f:
            f.write(corpus[off:off + size])
        os.utime(path, (MTIME, MTIME))
    for d in dirs + sorted({os.path.dirname(d) for d in dirs}) + [dest]:
        os.utime(d, (MTIME, MTIME))


if __name__ == "__main__":
    main()

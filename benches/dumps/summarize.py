#!/usr/bin/env python3
"""Summarize simulate.rs CSV output against restic_nights.sh CSV output.

Usage: summarize.py SIM_CSV RESTIC_CSV [LISTS_CSV ...]
(LISTS_CSV: output of `simulate --lists --dict '' --group ''`, i.e. only `lists` rows,
whose new content-list metadata bytes are added to every strategy's growth.)
Prints a markdown table: per chunk avg and strategy, first night stored bytes,
mean growth per night over nights 2..N, ratio to restic's mean growth, mean chunks
per night (total chunks referenced and new chunks stored).
"""
import csv
import sys
from collections import defaultdict

sim = list(csv.DictReader(open(sys.argv[1])))
res = list(csv.DictReader(open(sys.argv[2])))
res_sizes = {int(r["night"]): int(r["repo_bytes"]) for r in res}
last = max(res_sizes)
r_growth = (res_sizes[last] - res_sizes[1]) / (last - 1)
print("restic (%s): night 1 repo %.1f MB, mean growth nights 2-%d: %.2f MB/night" % (
    res[0]["series"], res_sizes[1] / 1e6, last, r_growth / 1e6))
rows = defaultdict(dict)
lists = defaultdict(dict)  # avg -> night -> new content-list metadata bytes (simulate --lists)
for r in sim:
    if r["strategy"] == "lists":
        lists[int(r["avg_kib"])][int(r["night"])] = int(r["stored_bytes"])
    else:
        rows[(int(r["avg_kib"]), r["strategy"])][int(r["night"])] = r
for extra in sys.argv[3:]:  # further CSVs holding only `lists` rows
    for r in csv.DictReader(open(extra)):
        if r["strategy"] == "lists":
            lists[int(r["avg_kib"])][int(r["night"])] = int(r["stored_bytes"])
print()
print("| avg KiB | strategy | night 1 stored MB | growth/night MB (2-%d) | x restic | + list metadata MB/night | x restic incl. lists | chunks/night | new chunks/night | new raw MB/night |" % last)
print("|---|---|---|---|---|---|---|---|---|---|")
for (avg, strat), nights in sorted(rows.items()):
    later = [nights[n] for n in sorted(nights) if n > 1]
    g = sum(int(x["stored_bytes"]) for x in later) / len(later)
    ch = sum(int(x["chunks"]) for x in later) / len(later)
    nc = sum(int(x["new_chunks"]) for x in later) / len(later)
    nr = sum(int(x["new_raw_bytes"]) for x in later) / len(later)
    lb = [lists[avg][n] for n in sorted(nights) if n > 1 and n in lists.get(avg, {})]
    lm = sum(lb) / len(lb) if lb else None
    print("| %d | %s | %.1f | %.2f | %.3f | %s | %s | %.0f | %.0f | %.1f |" % (
        avg, strat, int(nights[1]["stored_bytes"]) / 1e6, g / 1e6, g / r_growth,
        "%.2f" % (lm / 1e6) if lm is not None else "-",
        "%.3f" % ((g + lm) / r_growth) if lm is not None else "-", ch, nc, nr / 1e6))

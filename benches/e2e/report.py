#!/usr/bin/env python3
"""Print the markdown table of a benchmark run from its results-*.jsonl file.

Usage: report.py RESULTS.jsonl

One row per scenario, step and tool: wall time, CPU time (user + system), maximum
resident set size, repository size after the step.  On cairn's rows, the ratios to
restic: wall restic/cairn (above 1 = cairn faster), and cairn/restic for CPU, RSS and
repository size (below 1 = cairn uses less).  Setup steps (init, check) and the
restore checks only appear in the status column or when they fail.
"""
import json
import sys

TOOLS = ["cairn", "restic", "borg"]
MiB = 1024 * 1024


def fmt(x, digits=1):
    return "-" if x is None else "%.*f" % (digits, x)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def main():
    lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    machine = next((l for l in lines if l.get("kind") == "machine"), {})
    versions = {l["tool"]: l["version"] for l in lines if l.get("kind") == "tool"}
    datasets = [l for l in lines if l.get("kind") == "dataset"]
    steps = [l for l in lines if l.get("kind") == "step"]

    out = []
    out.append("Run %s (%s, %s cache%s): %s cores, %s, %.0f GiB RAM" % (
        machine.get("run", "?"), machine.get("date", "?")[:10], machine.get("cache", "?"),
        ", QUICK smoke sizes" if machine.get("quick") else "", machine.get("cores", "?"),
        machine.get("cpu", "?"), machine.get("mem_kib", 0) / 2**20))
    out.append("")
    for t in TOOLS:
        if t in versions:
            out.append("- %s: %s" % (t, versions[t]))
    for d in datasets:
        out.append("- dataset %s: %s, %.1f MiB, %d files" % (d["scenario"], d["name"], d["bytes"] / MiB, d["files"]))
    for s in steps:
        if s.get("status") == "MISSING":
            out.append("- %s: %s" % (s["tool"], s.get("note", "missing")))
    out.append("")

    # Restore checks become notes on the tool's last row of the scenario.
    notes = {}
    for s in steps:
        if s["step"] == "verify":
            label = "verify " + s["status"]
            if s["status"] == "ok" and "metadata differs" in s.get("note", ""):
                label = "verify: contents ok, metadata differs"
            notes.setdefault((s["tool"], s["scenario"]), []).append(label)

    # init and check rows only when they failed.
    timed = [s for s in steps if s["step"] not in ("verify", "all")
             and (s["step"] not in ("init", "check") or s["status"] != "ok")]
    keys = []
    by_key = {}
    for s in timed:
        k = (s["scenario"], s["step"])
        if k not in by_key:
            keys.append(k)
            by_key[k] = {}
        by_key[k][s["tool"]] = s

    out.append("| scenario | step | tool | wall s | CPU s | max RSS MiB | repo MiB "
               "| wall restic/cairn | CPU cairn/restic | RSS cairn/restic | repo cairn/restic | status |")
    out.append("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for k in keys:
        row = by_key[k]
        vals = {}
        for t, s in row.items():
            ok = s["status"] in ("ok", "warn")
            cpu = (s["user_s"] + s["sys_s"]) if ok and s.get("user_s") is not None else None
            vals[t] = dict(
                wall=s.get("wall_s") if ok else None, cpu=cpu,
                rss=s["max_rss_kib"] / 1024 if ok and s.get("max_rss_kib") is not None else None,
                repo=s["repo_bytes"] / MiB if s.get("repo_bytes") is not None else None)
        for t in [t for t in TOOLS if t in row] + [t for t in row if t not in TOOLS]:
            s, v = row[t], vals[t]
            status = s["status"] if s["status"] != "ok" else "ok"
            if s["status"] not in ("ok",):
                status += " (rc %s)" % s.get("rc")
            last_of_scenario = k == [kk for kk in keys if kk[0] == k[0] and t in by_key[kk]][-1]
            if last_of_scenario and (t, k[0]) in notes:
                status += "; " + "; ".join(notes[(t, k[0])])
            r = ["-"] * 4
            if t == "cairn" and "restic" in vals:
                rv = vals["restic"]
                r = [fmt(ratio(rv["wall"], v["wall"]), 2), fmt(ratio(v["cpu"], rv["cpu"]), 2),
                     fmt(ratio(v["rss"], rv["rss"]), 2), fmt(ratio(v["repo"], rv["repo"]), 2)]
            wall = fmt(v["wall"], 2) if s["status"] in ("ok", "warn") else "FAILED"
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                k[0], k[1], t, wall, fmt(v["cpu"], 2), fmt(v["rss"]), fmt(v["repo"]),
                r[0], r[1], r[2], r[3], status))
    print("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Print the markdown table of benchmark runs from their results-*.jsonl files.

Usage: report.py RESULTS.jsonl [MORE.jsonl ...]

Every round of every file is one measurement: a file written with RUNS=N holds rounds
1..N (a "round" field on each step), an older file without that field is one round,
and several files are merged as further rounds (same scenario, step and tool).

One row per scenario, step and tool: wall time, CPU time (user + system), maximum
resident set size, repository size after the step.  With more than one round each
value is the median, followed by the spread (min-max) over the rounds, e.g.
`7.65 (7.40-7.90)`.  On cairn's rows, the ratios of the medians: wall restic/cairn
(above 1 = cairn faster), and cairn/restic for CPU, RSS and repository size (below 1 =
cairn uses less); when bupstash ran, also wall bupstash/cairn and repo cairn/bupstash.
Setup steps (init, check) and the restore checks only appear in the status column or
when they fail.
"""
import json
import statistics
import sys

TOOLS = ["cairn", "restic", "borg", "bupstash"]
MiB = 1024 * 1024


def fmt(x, digits=1):
    return "-" if x is None else "%.*f" % (digits, x)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_spread(xs, digits=1):
    """Median of the rounds, with (min-max) when the rounds differ in number."""
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    m = fmt(statistics.median(xs), digits)
    if len(xs) == 1:
        return m
    return "%s (%s\u2013%s)" % (m, fmt(min(xs), digits), fmt(max(xs), digits))


def load(paths):
    """All records of the files; steps get a "round" key unique across the files."""
    machines, versions, datasets, steps = [], {}, {}, []
    for i, path in enumerate(paths):
        rounds = {}
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                rec = json.loads(line)
                kind = rec.get("kind")
                if kind == "machine":
                    machines.append(rec)
                elif kind == "tool":
                    versions.setdefault(rec["tool"], set()).add(rec["version"])
                elif kind == "dataset":
                    datasets.setdefault((rec["scenario"], rec["name"]), rec)
                elif kind == "step":
                    r = rec.get("round", 1)
                    rounds.setdefault(r, len(rounds))
                    rec["round"] = (i, r)
                    steps.append(rec)
    return machines, versions, datasets, steps


def status_text(recs, nrounds):
    """ok, or what went wrong in how many of the rounds."""
    bad = [s for s in recs if s["status"] != "ok"]
    if not bad:
        return "ok"
    parts = []
    for st in sorted({s["status"] for s in bad}):
        these = [s for s in bad if s["status"] == st]
        rcs = sorted({str(s.get("rc")) for s in these if s.get("rc") is not None})
        text = st + (" (rc %s)" % ", ".join(rcs) if rcs else "")
        if nrounds > 1:
            text += " in %d/%d rounds" % (len(these), nrounds)
        parts.append(text)
    return "; ".join(parts)


def main():
    paths = sys.argv[1:]
    if not paths:
        sys.exit(__doc__.strip().splitlines()[2])
    machines, versions, datasets, steps = load(paths)
    rounds = sorted({s["round"] for s in steps if s["step"] not in ("all",)})
    nrounds = len(rounds)

    out = []
    for m in machines:
        out.append("Run %s (%s, %s cache%s%s): %s cores, %s, %.0f GiB RAM" % (
            m.get("run", "?"), m.get("date", "?")[:10], m.get("cache", "?"),
            ", QUICK smoke sizes" if m.get("quick") else "",
            ", %s rounds" % m["rounds"] if m.get("rounds", 1) > 1 else "",
            m.get("cores", "?"), m.get("cpu", "?"), m.get("mem_kib", 0) / 2**20))
    if nrounds > 1:
        out.append("")
        out.append("%d rounds: each value is the median, with the min\u2013max spread." % nrounds)
    out.append("")
    check_notes = {}
    for s in steps:
        if s["step"] == "check" and s.get("note"):
            check_notes.setdefault(s["tool"], s["note"])
    for t in TOOLS + sorted(t for t in versions if t not in TOOLS):
        if t in versions:
            out.append("- %s: %s%s" % (t, " / ".join(sorted(versions[t])),
                                       " (%s)" % check_notes[t] if t in check_notes else ""))
    for d in datasets.values():
        out.append("- dataset %s: %s, %.1f MiB, %d files" % (d["scenario"], d["name"], d["bytes"] / MiB, d["files"]))
    missing = {}
    for s in steps:
        if s.get("status") == "MISSING":
            missing.setdefault(s["tool"], s.get("note", "missing"))
    for t, note in missing.items():
        out.append("- %s: %s" % (t, note))
    out.append("")

    # Restore checks become notes on the tool's last row of the scenario.
    verifies = {}
    for s in steps:
        if s["step"] == "verify":
            verifies.setdefault((s["tool"], s["scenario"]), []).append(s)
    notes = {}
    for key, recs in verifies.items():
        n = len(recs)
        failed = [s for s in recs if s["status"] != "ok"]
        meta = [s for s in recs if s["status"] == "ok" and "metadata differs" in s.get("note", "")]
        if failed:
            label = "verify FAILED" + (" in %d/%d rounds" % (len(failed), n) if n > 1 else "")
        elif meta:
            label = "verify: contents ok, metadata differs"
        else:
            label = "verify ok"
        notes[key] = label

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
        by_key[k].setdefault(s["tool"], []).append(s)

    extra = any("bupstash" in row for row in by_key.values())
    head = ("| scenario | step | tool | wall s | CPU s | max RSS MiB | repo MiB "
            "| wall restic/cairn | CPU cairn/restic | RSS cairn/restic | repo cairn/restic ")
    rule = "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    if extra:
        head += "| wall bupstash/cairn | repo cairn/bupstash "
        rule += "--:|--:|"
    out.append(head + "| status |")
    out.append(rule + "---|")
    for k in keys:
        row = by_key[k]
        series = {}
        for t, recs in row.items():
            ser = dict(wall=[], cpu=[], rss=[], repo=[])
            for s in recs:
                ok = s["status"] in ("ok", "warn")
                ser["wall"].append(s.get("wall_s") if ok else None)
                ser["cpu"].append((s["user_s"] + s["sys_s"])
                                  if ok and s.get("user_s") is not None else None)
                ser["rss"].append(s["max_rss_kib"] / 1024
                                  if ok and s.get("max_rss_kib") is not None else None)
                ser["repo"].append(s["repo_bytes"] / MiB if s.get("repo_bytes") is not None else None)
            series[t] = ser
        med = {t: {f: median(v) for f, v in ser.items()} for t, ser in series.items()}
        for t in [t for t in TOOLS if t in row] + [t for t in row if t not in TOOLS]:
            recs, ser, v = row[t], series[t], med[t]
            status = status_text(recs, len(recs))
            last_of_scenario = k == [kk for kk in keys if kk[0] == k[0] and t in by_key[kk]][-1]
            if last_of_scenario and (t, k[0]) in notes:
                status += "; " + notes[(t, k[0])]
            r = ["-"] * (6 if extra else 4)
            if t == "cairn" and "restic" in med:
                rv = med["restic"]
                r[:4] = [fmt(ratio(rv["wall"], v["wall"]), 2), fmt(ratio(v["cpu"], rv["cpu"]), 2),
                         fmt(ratio(v["rss"], rv["rss"]), 2), fmt(ratio(v["repo"], rv["repo"]), 2)]
            if extra and t == "cairn" and "bupstash" in med:
                bv = med["bupstash"]
                r[4:] = [fmt(ratio(bv["wall"], v["wall"]), 2), fmt(ratio(v["repo"], bv["repo"]), 2)]
            wall = fmt_spread(ser["wall"], 2) if v["wall"] is not None else "FAILED"
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                k[0], k[1], t, wall, fmt_spread(ser["cpu"], 2), fmt_spread(ser["rss"]),
                fmt_spread(ser["repo"]), " | ".join(r), status))
    print("\n".join(out))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""bench helper: query latency, `mailvault search --count` against `notmuch count`, whole processes.

  querybench.py QUERIES OUTPREFIX MAILVAULT CONF [RUNS]

QUERIES: tab-separated lines "mailvault query<TAB>notmuch query" (# comments and blank lines skipped).
notmuch takes its configuration from NOTMUCH_CONFIG (set by the caller). One warm-up round (every query
once per tool, untimed), then RUNS rounds (default 5); in each round every query runs once per tool, the tool
that goes first alternating from round to round. Each run is a whole process timed from fork to exit with
time.perf_counter around subprocess.run. CONF names mailvault-web's socket ([web] socket): the searches go
there, as an officer's do. A run that fails, or a count that changes from run to run, stops
the benchmark (exit 1). Percentiles are nearest-rank over all runs of a tool (p95 of 100 runs = the 95th
smallest).

Writes OUTPREFIX.md (the per-query table, markdown), OUTPREFIX.summary ("key value" lines: mv_p50 mv_p95
nm_p50 nm_p95 mv_mean nm_mean mv_max nm_max in ms, runs, queries, zero_flags) and OUTPREFIX.json (every
time).
"""

import json
import math
import subprocess
import sys
import time


def percentile(xs, p):
    """Nearest-rank percentile of xs (p in 0..100)."""
    s = sorted(xs)
    k = max(1, math.ceil(p / 100.0 * len(s)))
    return s[k - 1]


def run(argv):
    """Runs argv; returns (seconds, stdout stripped); exits on failure."""
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.stderr.write("querybench: %r failed (exit %d): %s\n" % (argv, r.returncode, r.stderr.strip()))
        sys.exit(1)
    return dt, r.stdout.strip()


def md_code(s):
    """A query as inline code in a markdown table cell."""
    return "`" + s.replace("|", "\\|") + "`"


def main():
    if len(sys.argv) < 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    qfile, prefix, mvcli, conf = sys.argv[1:5]
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    queries = []
    with open(qfile) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            mv, nm = line.split("\t")
            queries.append((mv, nm))
    tools = {
        "mv": lambda q: [mvcli, "-c", conf, "search", "--count", q],
        "nm": lambda q: ["notmuch", "count", q],
    }
    counts = {t: [None] * len(queries) for t in tools}
    times = {t: [[] for _ in queries] for t in tools}

    def one(tool, i, record):
        dt, out = run(tools[tool](queries[i][1 if tool == "nm" else 0]))
        try:
            n = int(out.split()[-1])
        except (ValueError, IndexError):
            sys.stderr.write("querybench: %s printed %r for %r\n" % (tool, out, queries[i]))
            sys.exit(1)
        if counts[tool][i] is None:
            counts[tool][i] = n
        elif counts[tool][i] != n:
            sys.stderr.write("querybench: %s count changed from %d to %d for %r\n" % (tool, counts[tool][i], n, queries[i]))
            sys.exit(1)
        if record:
            times[tool][i].append(dt)

    for i in range(len(queries)):          # warm-up round, untimed
        for tool in tools:
            one(tool, i, False)
    for r in range(runs):
        order = list(tools) if r % 2 == 0 else list(reversed(list(tools)))
        for i in range(len(queries)):
            for tool in order:
                one(tool, i, True)

    ms = {t: [x * 1000.0 for xs in times[t] for x in xs] for t in tools}
    summary = {}
    for t in tools:
        summary[t + "_p50"] = percentile(ms[t], 50)
        summary[t + "_p95"] = percentile(ms[t], 95)
        summary[t + "_mean"] = sum(ms[t]) / len(ms[t])
        summary[t + "_min"] = min(ms[t])
        summary[t + "_max"] = max(ms[t])
    zero_flags = 0
    with open(prefix + ".md", "w") as fh:
        fh.write("| # | mailvault query | notmuch query | mailvault count | notmuch count | mailvault p50 ms | notmuch p50 ms | note |\n")
        fh.write("|---:|---|---|---:|---:|---:|---:|---|\n")
        for i, (mv, nm) in enumerate(queries):
            a, b = counts["mv"][i], counts["nm"][i]
            note = ""
            if (a == 0) != (b == 0):
                note = "**one side 0**"
                zero_flags += 1
            elif a != b:
                note = "%+.0f %%" % (100.0 * (a - b) / b)
            fh.write("| %d | %s | %s | %d | %d | %.1f | %.1f | %s |\n" % (
                i + 1, md_code(mv), md_code(nm), a, b,
                percentile([x * 1000 for x in times["mv"][i]], 50),
                percentile([x * 1000 for x in times["nm"][i]], 50), note))
    with open(prefix + ".summary", "w") as fh:
        for k in sorted(summary):
            fh.write("%s %.1f\n" % (k, summary[k]))
        fh.write("runs %d\nqueries %d\nzero_flags %d\n" % (runs, len(queries), zero_flags))
    with open(prefix + ".json", "w") as fh:
        json.dump({"queries": queries, "counts": counts, "seconds": times}, fh, indent=1)


if __name__ == "__main__":
    main()

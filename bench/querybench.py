#!/usr/bin/python3
"""bench helper: query latency, `mailvault search --count` against `notmuch count`, whole processes.

  querybench.py QUERIES OUTPREFIX MAILVAULT SOCKET [ROUNDS [SETS]]

QUERIES: tab-separated lines "mailvault query<TAB>notmuch query" (# comments and blank lines skipped).
notmuch takes its configuration from NOTMUCH_CONFIG (set by the caller). mailvault runs as an officer runs
it: no configuration file, the service's socket from MAILVAULT_SOCKET (SOCKET); the searches go there.

SETS runs (default 3), each one warm-up round (every query once per tool, untimed) and ROUNDS timed rounds
(default 5); in each round every query runs once per tool, the tool that goes first alternating from round
to round. Each run is a whole process timed from fork to exit with time.perf_counter around
subprocess.run. A run that fails, or a count that changes from run to run, stops the benchmark (exit 1).
Percentiles are nearest-rank over all runs of a tool in a set (p95 of 120 runs = the 114th smallest); each
figure reported is the median of the sets' figures, as the issue asks.

Writes OUTPREFIX.md (the per-query table, markdown; p50 per query over every set), OUTPREFIX.summary ("key
value" lines: mv_p50 mv_p95 nm_p50 nm_p95 mv_mean nm_mean mv_min nm_min mv_max nm_max in ms, the medians
of the sets; mv_p95_sets and nm_p95_sets, each set's p95 joined by "/"; runs (rounds per set), sets,
queries, zero_flags) and OUTPREFIX.json (every time).
"""


import json
import math
import os
import statistics
import subprocess
import sys
import time


def percentile(xs, p):
    """Nearest-rank percentile of xs (p in 0..100)."""
    s = sorted(xs)
    k = max(1, math.ceil(p / 100.0 * len(s)))
    return s[k - 1]


def run(argv, env=None):
    """Runs argv; returns (seconds, stdout stripped); exits on failure."""
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
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
    qfile, prefix, mvcli, sock = sys.argv[1:5]
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    sets = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    queries = []
    with open(qfile) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            mv, nm = line.split("\t")
            queries.append((mv, nm))
    tools = {
        "mv": lambda q: [mvcli, "search", "--count", q],
        "nm": lambda q: ["notmuch", "count", q],
    }
    envs = {"mv": dict(os.environ, MAILVAULT_SOCKET=sock), "nm": None}
    counts = {t: [None] * len(queries) for t in tools}
    # times[set][tool][query] = [seconds, ...]
    times = [{t: [[] for _ in queries] for t in tools} for _ in range(sets)]

    def one(tool, i, record):
        dt, out = run(tools[tool](queries[i][1 if tool == "nm" else 0]), envs[tool])
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
        if record is not None:
            record[tool][i].append(dt)

    for st in range(sets):
        for i in range(len(queries)):          # warm-up round, untimed
            for tool in tools:
                one(tool, i, None)
        for r in range(runs):
            order = list(tools) if r % 2 == 0 else list(reversed(list(tools)))
            for i in range(len(queries)):
                for tool in order:
                    one(tool, i, times[st])

    summary = {}
    for t in tools:
        per_set = [[x * 1000.0 for xs in times[st][t] for x in xs] for st in range(sets)]
        stats = {
            "p50": [percentile(ms, 50) for ms in per_set],
            "p95": [percentile(ms, 95) for ms in per_set],
            "mean": [sum(ms) / len(ms) for ms in per_set],
            "min": [min(ms) for ms in per_set],
            "max": [max(ms) for ms in per_set],
        }
        for k, v in stats.items():
            summary[t + "_" + k] = statistics.median(v)
        summary[t + "_p95_sets"] = "/".join("%.1f" % x for x in stats["p95"])
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
            p50 = {t: percentile([x * 1000 for st in range(sets) for x in times[st][t][i]], 50) for t in tools}
            fh.write("| %d | %s | %s | %d | %d | %.1f | %.1f | %s |\n" % (
                i + 1, md_code(mv), md_code(nm), a, b, p50["mv"], p50["nm"], note))
    with open(prefix + ".summary", "w") as fh:
        for k in sorted(summary):
            v = summary[k]
            fh.write(("%s %s\n" % (k, v)) if isinstance(v, str) else ("%s %.1f\n" % (k, v)))
        fh.write("runs %d\nsets %d\nqueries %d\nzero_flags %d\n" % (runs, sets, len(queries), zero_flags))
    with open(prefix + ".json", "w") as fh:
        json.dump({"queries": queries, "counts": counts, "seconds_by_set": times}, fh, indent=1)


if __name__ == "__main__":
    main()

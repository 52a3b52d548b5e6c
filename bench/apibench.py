#!/usr/bin/python3
"""bench helper: search throughput with 16 concurrent clients, mailvault-web's API against notmuch count.

  apibench.py QUERIES OUTPREFIX URL TOKEN [SECONDS [RUNS [CLIENTS]]]

QUERIES: the tab-separated "mailvault query<TAB>notmuch query" lines of bench/queries.tsv. Each run gives
each tool SECONDS (default 10): mailvault as GET URL/api/v1/count?q=... from wrk with CLIENTS (default 16)
connections over 2 threads, each request the next query in turn (bench/apibench.lua); notmuch as CLIENTS
Python threads, each running `notmuch count` on the next query in turn, as whole processes (notmuch
has no server: this is how 16 people or scripts use it at once). The tools alternate which goes first
from run to run. Per tool and run: completed searches per second, p50 and p95 latency; the figures kept
are the medians over RUNS (default 3) runs. A failed request stops the benchmark (exit 1).

Writes OUTPREFIX.summary ("key value": mv_rate mv_p50 mv_p95 nm_rate nm_p50 nm_p95 and each run's) and
OUTPREFIX.md (a table of every run).
"""

import math
import os
import re
import statistics
import subprocess
import sys
import threading
import time


def percentile(xs, p):
    s = sorted(xs)
    k = max(1, math.ceil(p / 100.0 * len(s)))
    return s[k - 1]


def run_wrk(qfile, url, token, seconds, clients):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, MV_QUERIES=qfile, MV_TOKEN=token)
    r = subprocess.run(["wrk", "-t2", "-c%d" % clients, "-d%ds" % seconds, "--timeout", "30s",
                        "-s", os.path.join(here, "apibench.lua"), url],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    m = re.search(r"APIBENCH requests (\d+) seconds ([\d.]+) p50_ms ([\d.]+) p95_ms ([\d.]+) errors (\d+)", r.stdout)
    if r.returncode != 0 or m is None:
        sys.stderr.write("apibench: wrk failed: %s %s\n" % (r.stdout, r.stderr))
        sys.exit(1)
    req, secs, p50, p95, errors = int(m[1]), float(m[2]), float(m[3]), float(m[4]), int(m[5])
    if errors:
        sys.stderr.write("apibench: %d requests failed:\n%s\n" % (errors, r.stdout))
        sys.exit(1)
    return req / secs, p50, p95


def run_notmuch(queries, seconds, clients):
    lat, stop, failed = [], time.perf_counter() + seconds, []
    lock = threading.Lock()

    def worker(k):
        i = k
        while time.perf_counter() < stop and not failed:
            q = queries[i % len(queries)]
            i += 1
            t0 = time.perf_counter()
            r = subprocess.run(["notmuch", "count", q], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            dt = time.perf_counter() - t0
            if r.returncode != 0:
                failed.append(r.stderr)
            with lock:
                lat.append(dt * 1000.0)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failed:
        sys.stderr.write("apibench: notmuch count failed: %r\n" % failed[0])
        sys.exit(1)
    return len(lat) / elapsed, percentile(lat, 50), percentile(lat, 95)


def main():
    if len(sys.argv) < 5:
        sys.stderr.write(__doc__)
        sys.exit(2)
    qfile, prefix, url, token = sys.argv[1:5]
    seconds = int(sys.argv[5]) if len(sys.argv) > 5 else 10
    runs = int(sys.argv[6]) if len(sys.argv) > 6 else 3
    clients = int(sys.argv[7]) if len(sys.argv) > 7 else 16
    nm_queries = []
    with open(qfile) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.strip() and not line.lstrip().startswith("#"):
                nm_queries.append(line.split("\t")[1])
    res = {"mv": [], "nm": []}
    for r in range(runs):
        for tool in (["mv", "nm"] if r % 2 == 0 else ["nm", "mv"]):
            if tool == "mv":
                res["mv"].append(run_wrk(qfile, url, token, seconds, clients))
            else:
                res["nm"].append(run_notmuch(nm_queries, seconds, clients))
    summary = {}
    for tool in res:
        for j, key in enumerate(["rate", "p50", "p95"]):
            summary["%s_%s" % (tool, key)] = statistics.median(x[j] for x in res[tool])
    with open(prefix + ".summary", "w") as fh:
        for k in sorted(summary):
            fh.write("%s %.2f\n" % (k, summary[k]))
        fh.write("runs %d\nclients %d\nseconds %d\n" % (runs, clients, seconds))
    with open(prefix + ".md", "w") as fh:
        fh.write("| run | mailvault API searches/s | p50 ms | p95 ms | notmuch count searches/s | p50 ms | p95 ms | ratio |\n")
        fh.write("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
        for i in range(runs):
            a, b = res["mv"][i], res["nm"][i]
            fh.write("| %d | %.0f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n" % (i + 1, a[0], a[1], a[2], b[0], b[1], b[2],
                                                                               a[0] / b[0]))
        fh.write("| **median** | **%.0f** | **%.1f** | **%.1f** | **%.1f** | **%.1f** | **%.1f** | **%.1f** |\n" % (
            summary["mv_rate"], summary["mv_p50"], summary["mv_p95"], summary["nm_rate"], summary["nm_p50"],
            summary["nm_p95"], summary["mv_rate"] / summary["nm_rate"]))


if __name__ == "__main__":
    main()

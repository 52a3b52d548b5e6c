#!/usr/bin/python3
"""bench helper: where the wall time of one `mailvault search --count` process goes (diagnostics, untimed).

  searchphases.py QUERIES OUT MAILVAULT CONF

1. Process start alone: `mailvault --version` and `notmuch --version`, 20 runs each, no tracing (p50).
2. Each query of QUERIES (as in querybench.py) once under `strace -tt -e trace=execve,connect,sendto,
   recvfrom,exit_group`; the PostgreSQL messages the CLI sends name the phases:
     start     execve -> connect() to PostgreSQL (loading shared libraries, reading the configuration)
     connect   connect() -> first reply (a new backend: fork, authentication, session start)
     scope     "SELECT name FROM accounts" sent -> answered (the officer's scope)
     xapian    scope answered -> audit sent (open the index, parse, build the query with the scope filter,
               count)
     audit     "SELECT mailvault_audit(...)" sent -> answered (hash-chained audit row, durable commit)
     exit      audit answered -> process gone (disconnect, exit)
   strace slows system calls, so "start" (hundreds of mmap/openat) reads high; the untraced process start
   of step 1 is the better figure for it. Medians over the queries.
Writes OUT (markdown table) and OUT.summary ("key ms" lines).
"""

import re
import statistics
import subprocess
import sys
import time


def ts(line):
    m = re.match(r"(\d+):(\d+):(\d+\.\d+) ", line)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def p50_of(argv, n=20):
    xs = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        xs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(xs)


def phases(mvcli, conf, query):
    r = subprocess.run(["strace", "-tt", "-e", "trace=execve,connect,sendto,recvfrom,exit_group", mvcli, "-c", conf,
                        "search", "--count", query], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    t = {}
    pending = None
    for line in r.stderr.splitlines():
        when = ts(line)
        if when is None:
            continue
        if "execve(" in line and "exec" not in t:
            t["exec"] = when
        elif "connect(" in line and ".s.PGSQL" in line and "connect" not in t:
            t["connect"] = when
            pending = "connected"
        elif "sendto(" in line and "SELECT name FROM accounts" in line:
            t["scope_sent"] = when
            pending = "scope_done"
        elif "sendto(" in line and "mailvault_audit" in line:
            t["audit_sent"] = when
            pending = "audit_done"
        elif "recvfrom(" in line and pending is not None and pending not in t:
            t[pending] = when
        elif "+++ exited" in line:
            t["gone"] = when
    need = ["exec", "connect", "connected", "scope_sent", "scope_done", "audit_sent", "audit_done", "gone"]
    if any(k not in t for k in need):
        return None
    return {
        "start": t["connect"] - t["exec"],
        "connect": t["connected"] - t["connect"],
        "scope": t["scope_done"] - t["scope_sent"],
        "xapian": t["audit_sent"] - t["scope_done"],
        "audit": t["audit_done"] - t["audit_sent"],
        "exit": t["gone"] - t["audit_done"],
        "other": (t["scope_sent"] - t["connected"]),
        "total": t["gone"] - t["exec"],
    }


def main():
    qfile, out, mvcli, conf = sys.argv[1:5]
    queries = []
    with open(qfile) as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.strip() and not line.lstrip().startswith("#"):
                queries.append(line.split("\t")[0])
    mv_start = p50_of([mvcli, "--version"])
    nm_start = p50_of(["notmuch", "--version"])
    rows = [p for p in (phases(mvcli, conf, q) for q in queries) if p is not None]
    keys = ["start", "connect", "other", "scope", "xapian", "audit", "exit", "total"]
    med = {k: statistics.median([r[k] * 1000 for r in rows]) if rows else 0.0 for k in keys}
    desc = {
        "start": "process start to connect() (shared libraries, configuration; inflated by strace)",
        "connect": "PostgreSQL connection (new backend, authentication)",
        "other": "between connection and scope query",
        "scope": "scope query (SELECT name FROM accounts)",
        "xapian": "Xapian: open index, build query with the scope filter, count",
        "audit": "audit row (SELECT mailvault_audit(...), commit)",
        "exit": "disconnect and exit",
        "total": "total under strace",
    }
    with open(out, "w") as fh:
        fh.write("| phase of one `mailvault search --count` (strace, median of %d queries) | ms |\n" % len(rows))
        fh.write("|---|---:|\n")
        for k in keys:
            fh.write("| %s | %.1f |\n" % (desc[k], med[k]))
        fh.write("| untraced process start alone: `mailvault --version` / `notmuch --version` (p50 of 20) | %.1f / %.1f |\n"
                 % (mv_start, nm_start))
    with open(out + ".summary", "w") as fh:
        for k in keys:
            fh.write("%s %.1f\n" % (k, med[k]))
        fh.write("mv_version %.1f\nnm_version %.1f\nqueries %d\n" % (mv_start, nm_start, len(rows)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""bench helper: where a running indexer spends its wall time, by sampling thread states from /proc.

  threadsample.py OUT ROOT_PID [PG_MASTER_PID]

Every 20 ms, until ROOT_PID is gone, it reads the state of the threads of ROOT_PID's process (or of its
first child when ROOT_PID is /usr/bin/time) and of PG_MASTER_PID's children (the PostgreSQL backends and
helpers), and puts the sample in one of these classes (the indexer's threads: the main thread fetching
batches from PostgreSQL and marking them indexed, and one thread per shard parsing and writing):

  cpu-2       two or more indexer threads running: both cores at work
  cpu-1       exactly one indexer thread running
  disk        none running, one or more in uninterruptible sleep (D): waiting on the disk (fsync)
  wait-pg     none running or in D, a PostgreSQL process running: waiting for a query
  wait-other  none running or in D, nothing of PostgreSQL running

It writes OUT: one line per class "class samples percent seconds", then "pg_busy_percent P" (share of
samples with any PostgreSQL process running), "samples N interval_s I". Reads a handful of small /proc files
per sample (~0.1 ms), so the sampler itself costs about 1 % of a core.
"""

import os
import sys
import time

INTERVAL = 0.02
CLASSES = ("cpu-2", "cpu-1", "disk", "wait-pg", "wait-other")


def state_of(path):
    """The one-letter state in a /proc .../stat file, or None if it is gone."""
    try:
        with open(path) as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rfind(")") + 2:].split(" ", 1)[0]


def children(pid):
    """Direct children of pid (via /proc/PID/task/PID/children), or []."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def main():
    out, root = sys.argv[1], int(sys.argv[2])
    pg_master = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    counts = dict.fromkeys(CLASSES, 0)
    pg_busy = 0
    n = 0
    target = None
    t_start = time.monotonic()
    while os.path.exists("/proc/%d" % root):
        if target is None or not os.path.exists("/proc/%d" % target):
            target = root
            if comm(root) == "time":
                kids = children(root)
                target = kids[0] if kids else None
        if target is not None:
            try:
                tids = os.listdir("/proc/%d/task" % target)
            except OSError:
                tids = []
            states = [state_of("/proc/%d/task/%s/stat" % (target, t)) for t in tids]
            states = [s for s in states if s is not None]
            main_state = state_of("/proc/%d/task/%d/stat" % (target, target))
            pg_run = False
            if pg_master:
                for c in children(pg_master):
                    if state_of("/proc/%d/stat" % c) == "R":
                        pg_run = True
                        break
            if main_state is not None:
                n += 1
                pg_busy += pg_run
                running = states.count("R")
                if running >= 2:
                    counts["cpu-2"] += 1
                elif running == 1:
                    counts["cpu-1"] += 1
                elif "D" in states:
                    counts["disk"] += 1
                elif pg_run:
                    counts["wait-pg"] += 1
                else:
                    counts["wait-other"] += 1
        time.sleep(INTERVAL)
    wall = time.monotonic() - t_start
    with open(out, "w") as fh:
        for c in CLASSES:
            pct = 100.0 * counts[c] / n if n else 0.0
            fh.write("%s %d %.1f %.1f\n" % (c, counts[c], pct, wall * pct / 100.0))
        fh.write("pg_busy_percent %.1f\n" % (100.0 * pg_busy / n if n else 0.0))
        fh.write("samples %d interval_s %.3f\n" % (n, wall / n if n else 0.0))


if __name__ == "__main__":
    main()

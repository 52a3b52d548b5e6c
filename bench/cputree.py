#!/usr/bin/env python3
"""bench helper: CPU seconds used so far by whole process trees (a server and everything it forked).

  cputree.py PID...    prints one line per PID: "PID SECONDS"

SECONDS = utime + stime + cutime + cstime of PID and of every live descendant. A child that exited and was
reaped is in its parent's cutime/cstime, so the difference of two snapshots is the CPU the tree used in
between, short-lived children (one Dovecot imap process per login, one PostgreSQL backend per connection)
included. A PID that is gone prints 0.
"""

import os
import sys


def read_procs():
    """Maps pid -> (ppid, cpu ticks incl. reaped children) for every readable process."""
    procs = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as fh:
                data = fh.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: split after the last ')'
        rest = data[data.rfind(")") + 2:].split()
        ppid = int(rest[1])
        ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        procs[int(name)] = (ppid, ticks)
    return procs


def main():
    hz = os.sysconf("SC_CLK_TCK")
    procs = read_procs()
    children = {}
    for pid, (ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    for arg in sys.argv[1:]:
        root = int(arg)
        total = 0
        stack = [root] if root in procs else []
        while stack:
            p = stack.pop()
            total += procs[p][1]
            stack.extend(children.get(p, []))
        print("%d %.2f" % (root, total / hz))


if __name__ == "__main__":
    main()

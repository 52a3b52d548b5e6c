#!/usr/bin/python3
"""bench helper: what a Xapian database holds, by term prefix (needs python3-xapian).

  xapstats.py DB

Prints "prefix terms postings occurrences" lines, largest occurrences first, then
"ALL terms postings occurrences" and "documents N", "avglength L", "revision R" (the number of commits).
  terms        distinct terms with that prefix
  postings     sum of their term frequencies (documents per term): the size driver of postlist.glass and
               of termlist.glass (every posting is in both)
  occurrences  sum of their collection frequencies (wdf summed over documents): for text indexed with
               positions this is the number of positions, the size driver of position.glass
A term's prefix is the longest known prefix of mailvault (indexer/prefixes.h) or notmuch it starts with,
else its leading capitals; "Z" + prefix is the stemmed form (Xapian's convention); "(none)" = unprefixed.
"""

import sys

import xapian

KNOWN = [
    # mailvault (indexer/prefixes.h)
    "XFA", "XFD", "XTA", "XTD", "XCA", "XCD", "XBA", "XBD", "XFN", "XMID", "XMT", "XACC", "XFOL", "XHAS",
    # notmuch (lib/database.cc prefix table)
    "XFROM", "XTO", "XSUBJECT", "XATTACHMENT", "XMIMETYPE", "XFOLDER", "XPATH", "XDIRECTORY",
    "XFDIRENTRY", "XPROPERTY", "XREFERENCE", "XREPLYTO", "XTIMESTAMP", "XMODIFIED", "XLASTMOD", "XBODY",
]
KNOWN.sort(key=len, reverse=True)


def prefix_of(term):
    z = ""
    t = term
    if t.startswith("Z"):
        z, t = "Z", t[1:]
    for p in KNOWN:
        if t.startswith(p):
            return z + p
    n = 0
    while n < len(t) and "A" <= t[n] <= "Z":
        n += 1
    p = z + t[:n]
    return p if p else "(none)"


def main():
    db = xapian.Database(sys.argv[1])
    stats = {}
    for item in db.allterms():
        term = item.term.decode("utf-8", "replace")
        p = prefix_of(term)
        s = stats.setdefault(p, [0, 0, 0])
        s[0] += 1
        s[1] += item.termfreq
        s[2] += db.get_collection_freq(item.term)
    total = [sum(s[i] for s in stats.values()) for i in range(3)]
    for p, s in sorted(stats.items(), key=lambda kv: -kv[1][2]):
        print("%s %d %d %d" % (p, s[0], s[1], s[2]))
    print("ALL %d %d %d" % tuple(total))
    print("documents %d" % db.get_doccount())
    print("avglength %.1f" % db.get_avlength())
    # a sharded index (a XAPIANDB stub naming one database per shard): commits per shard, the most of any
    try:
        rev = db.get_revision()
    except xapian.InvalidOperationError:
        import os
        stub = os.path.join(sys.argv[1], "XAPIANDB")
        shards = [l.split()[1] for l in open(stub) if l.strip()]
        rev = max(xapian.Database(os.path.join(sys.argv[1], s)).get_revision() for s in shards)
    print("revision %d" % rev)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Test oracle: what an archive of a scripted server's mailboxes must hold, computed from the script alone.

  simap_expected.py SCRIPT [--exclude PATTERN]... [--only PATTERN]...

Prints "folder<TAB>uidvalidity<TAB>uid<TAB>sha256" for every message of every selectable mailbox, sorted as
the tests' mv_archived_set sorts (folder, uidvalidity, uid). Folder names are the names people read:
modified UTF-7 (RFC 3501 5.1.3) decoded here independently of mailvault (base64 of UTF-16BE), names already
in UTF-8 kept, and other bytes written \\xNN. Patterns are IMAP LIST wildcards (* and %, the rest literal)
matched with fnmatch after escaping, so the oracle shares no code with the C matcher.
"""
import base64
import fnmatch
import hashlib
import json
import os
import re
import sys


def latin1(s):
    return s.encode("latin-1")


def mutf7_decode(raw):
    """Decodes modified UTF-7; a malformed &...- run stays as written."""
    out, i = [], 0
    while i < len(raw):
        c = raw[i:i + 1]
        if c == b"&":
            end = raw.find(b"-", i + 1)
            if end == i + 1:
                out.append("&")
                i = end + 1
                continue
            if end > 0:
                b64 = raw[i + 1:end].replace(b",", b"/")
                try:
                    data = base64.b64decode(b64 + b"=" * (-len(b64) % 4), validate=True)
                    if len(data) % 2 == 0 and data:
                        out.append(data.decode("utf-16-be"))
                        i = end + 1
                        continue
                except (ValueError, UnicodeDecodeError):
                    pass
        out.append(c.decode("ascii"))
        i += 1
    return "".join(out)


def display(raw):
    if raw.upper() == b"INBOX":
        return "INBOX"
    if all(b < 0x80 for b in raw):
        return mutf7_decode(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace")


def list_match(pattern, name):
    rx = "".join(".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.S) is not None


def main():
    args = sys.argv[1:]
    script = args.pop(0)
    excludes, only = [], []
    while args:
        opt, val = args.pop(0), args.pop(0)
        (excludes if opt == "--exclude" else only).append(val)
    base = os.path.dirname(os.path.abspath(script))
    s = json.load(open(script))
    rows = []
    for mb in s["mailboxes"]:
        attrs = [a.lower() for a in mb.get("attributes", [])]
        if mb.get("noselect") or "\\noselect" in attrs or "\\nonexistent" in attrs:
            continue
        name = display(latin1(mb["name"]))
        if only and not any(list_match(p, name) for p in only):
            continue
        if any(list_match(p, name) for p in excludes):
            continue
        for m in mb.get("messages", []):
            body = open(os.path.join(base, m["file"]), "rb").read() if "file" in m else latin1(m["body"])
            rows.append((name, int(mb.get("uidvalidity", 1)), int(m["uid"]), hashlib.sha256(body).hexdigest()))
    for r in sorted(rows):
        print("%s\t%d\t%d\t%s" % r)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Test harness: an independent IMAP client that lists what a server holds, one line per message.

  imap_hashes.py --host localhost --port P --cafile CA --user U --password PW [--folder F]... [--starttls]

Logs in over IMAPS (or STARTTLS with --starttls) verifying the certificate and the host name, LISTs all
selectable folders (or takes the --folder ones), EXAMINEs each (read-only: the mailbox is never changed),
fetches every message with UID FETCH (UID FLAGS BODY.PEEK[]) in chunks and prints

  FOLDER<TAB>UIDVALIDITY<TAB>UID<TAB>SHA256_HEX<TAB>SIZE<TAB>FLAGS

FOLDER is the mailbox name as the server sent it (modified UTF-7, unquoted); FLAGS are space-separated in
the server's order, without the session-only \\Recent unless --keep-recent; empty if none. Folders come in
LIST order, messages in UID order. Exits 1 with a message on stderr on any failure.
"""

import argparse
import hashlib
import imaplib
import re
import ssl
import sys

imaplib._MAXLINE = 10_000_000

LIST_RE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delim>"(?:[^"\\]|\\.)*"|NIL) ?(?P<name>.*)$', re.I)
UID_RE = re.compile(rb"\bUID (\d+)", re.I)
FLAGS_RE = re.compile(rb"\bFLAGS \(([^)]*)\)", re.I)


class Fail(Exception):
    pass


def check(typ, data, what):
    """Raises Fail unless the command answered OK."""
    if typ != "OK":
        raise Fail("%s failed: %s %r" % (what, typ, data))
    return data


def unquote(b):
    """Decodes an IMAP quoted string or atom (bytes) to str."""
    if b[:1] == b'"' and b[-1:] == b'"':
        b = re.sub(rb"\\(.)", rb"\1", b[1:-1])
    return b.decode("utf-8", "surrogateescape")


def quote(name):
    """Quotes a mailbox name for a command."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def list_folders(imap):
    """Returns the selectable folders in LIST order."""
    data = check(*imap.list('""', "*"), "LIST")
    folders = []
    for item in data:
        if item is None:
            continue
        if isinstance(item, tuple):  # name sent as a literal
            line, name = item[0], item[1].decode("utf-8", "surrogateescape")
            m = LIST_RE.match(line)
            if not m:
                raise Fail("cannot parse LIST response %r" % (item,))
        else:
            m = LIST_RE.match(item)
            if not m:
                raise Fail("cannot parse LIST response %r" % item)
            name = unquote(m.group("name"))
        flags = m.group("flags").lower().split()
        if b"\\noselect" in flags or b"\\nonexistent" in flags:
            continue
        folders.append(name)
    return folders


def parse_fetch(data):
    """Yields (uid, flags, body) from a FETCH answer as imaplib returns it."""
    i = 0
    n = len(data)
    while i < n:
        item = data[i]
        i += 1
        if not isinstance(item, tuple):
            continue  # a FETCH without a literal (e.g. an unsolicited flag update) or a closing b')'
        head, body = item
        rest = b""
        if i < n and isinstance(data[i], bytes):  # the text after the literal: b' FLAGS (...))' or b')'
            rest = data[i]
            i += 1
        meta = head + b" " + rest
        if b"BODY[]" not in head.upper():
            continue
        m = UID_RE.search(meta)
        f = FLAGS_RE.search(meta)
        if not m or f is None:
            raise Fail("FETCH response without UID or FLAGS: %r" % head)
        yield int(m.group(1)), f.group(1).decode("utf-8", "surrogateescape").split(), body


def dump_folder(imap, folder, chunk, keep_recent, out):
    """EXAMINEs FOLDER and prints one line per message; returns how many."""
    check(*imap.select(quote(folder), readonly=True), "EXAMINE %s" % folder)
    uv = imap.response("UIDVALIDITY")[1]
    if not uv or uv[0] is None:
        raise Fail("no UIDVALIDITY for %s" % folder)
    uidvalidity = int(uv[0])
    data = check(*imap.uid("SEARCH", "ALL"), "UID SEARCH %s" % folder)
    uids = sorted(int(u) for u in b" ".join(d for d in data if d).split())
    count = 0
    for start in range(0, len(uids), chunk):
        part = uids[start:start + chunk]
        want = set(part)
        data = check(*imap.uid("FETCH", "%d:%d" % (part[0], part[-1]), "(UID FLAGS BODY.PEEK[])"),
                     "UID FETCH %s" % folder)
        got = {}
        for uid, flags, body in parse_fetch(data):
            if uid in want:
                got[uid] = (flags, body)
        missing = want - set(got)
        if missing:
            raise Fail("%s: server sent no body for UIDs %s" % (folder, sorted(missing)[:10]))
        for uid in part:
            flags, body = got[uid]
            if not keep_recent:
                flags = [f for f in flags if f.lower() != "\\recent"]
            out.write("%s\t%d\t%d\t%s\t%d\t%s\n" % (folder, uidvalidity, uid, hashlib.sha256(body).hexdigest(),
                                                   len(body), " ".join(flags)))
            count += 1
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="localhost")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--folder", action="append", default=[])
    ap.add_argument("--starttls", action="store_true", help="plain connection upgraded with STARTTLS")
    ap.add_argument("--chunk", type=int, default=500, help="messages per UID FETCH")
    ap.add_argument("--keep-recent", action="store_true")
    args = ap.parse_args()

    ctx = ssl.create_default_context(cafile=args.cafile)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        if args.starttls:
            imap = imaplib.IMAP4(args.host, args.port, timeout=60)
            check(*imap.starttls(ssl_context=ctx), "STARTTLS")
        else:
            imap = imaplib.IMAP4_SSL(args.host, args.port, ssl_context=ctx, timeout=60)
        check(*imap.login(args.user, args.password), "LOGIN")
        folders = args.folder or list_folders(imap)
        out = sys.stdout
        for folder in folders:
            dump_folder(imap, folder, args.chunk, args.keep_recent, out)
        out.flush()
        try:
            imap.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    except (Fail, imaplib.IMAP4.error, OSError, ssl.SSLError, ValueError) as e:
        sys.stderr.write("imap_hashes: %s:%d: %s\n" % (args.host, args.port, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

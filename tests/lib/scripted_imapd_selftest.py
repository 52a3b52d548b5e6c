#!/usr/bin/python3
"""Self-test of scripted_imapd.py: runs it with a throw-away CA and checks it with imaplib over verified TLS.

  scripted_imapd_selftest.py [--keep]      (--keep: leave the temp dir with scripts, logs and certificates)

Prints "ok - ..." / "not ok - ..." per check and a last line "scripted-imapd-selftest: N passed, M failed";
exits 1 if any check failed.
"""

import base64
import hashlib
import imaplib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "scripted_imapd.py")
PY = "/usr/bin/python3"
imaplib._MAXLINE = 50_000_000            # big bodies arrive as literals, but be generous anyway
imaplib.Commands.setdefault("ID", ("NONAUTH", "AUTH", "SELECTED"))  # imaplib refuses commands it does not know
counts = [0, 0]


def check(name, cond, detail=""):
    """Records and prints one result."""
    counts[0 if cond else 1] += 1
    print(("ok - " if cond else "not ok - ") + name + ("" if cond or not detail else f"  [{detail!r}]"), flush=True)


def make_certs(d):
    """A throw-away CA and a localhost server certificate signed by it."""
    def ossl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=scripted-imapd selftest CA", "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    ossl("req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    with open(os.path.join(d, "ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    ossl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf")
    return ssl.create_default_context(cafile=os.path.join(d, "ca.pem"))


def start(d, name, script):
    """Starts a server on a free port; returns (process, port, log path, stderr path)."""
    path = os.path.join(d, name + ".json")
    with open(path, "w") as f:
        json.dump(script, f, indent=1)  # ensure_ascii: chars 0x80-0xff become \u00XX, i.e. bytes
    pf, log, err = (os.path.join(d, name + ext) for ext in (".port", ".log", ".stderr"))
    proc = subprocess.Popen([PY, SERVER, "--script", path, "--cert", os.path.join(d, "server.pem"),
                             "--key", os.path.join(d, "server.key"), "--port-file", pf, "--log", log],
                            stderr=open(err, "wb"))
    for _ in range(200):
        if os.path.exists(pf):
            return proc, int(open(pf).read()), log, err
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"server {name} did not start: {open(err).read()}")


class Raw:
    """A bare TLS IMAP client: exact lines out, exact lines in (literals kept inline)."""

    def __init__(self, port, ctx):
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                                 server_hostname="localhost")
        self.f = self.s.makefile("rb")
        self.greeting = self.line()

    def line(self):
        """One response line with any literal it announces."""
        line = self.f.readline()
        if not line:
            raise EOFError
        m = re.search(rb"\{(\d+)\}\r\n$", line)
        if m:
            line += self.f.read(int(m.group(1))) + self.line()
        return line

    def until(self, tag):
        """Lines up to and including the tagged one."""
        lines = []
        while not lines or not lines[-1].startswith(tag + b" "):
            lines.append(self.line())
        return lines

    def cmd(self, tag, text):
        """Sends one command, returns its response lines."""
        self.s.sendall(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def close(self):
        """Closes without LOGOUT."""
        self.f.close()
        self.s.close()


def connect(port, ctx, user="alice", pw="alice-pw"):
    """An imaplib session, logged in unless user is None."""
    m = imaplib.IMAP4_SSL("localhost", port, ssl_context=ctx)
    if user:
        m.login(user, pw)
    return m


def fetches(data):
    """imaplib FETCH data as [(response text, body or None)]."""
    out = []
    for d in data:
        if isinstance(d, tuple):
            out.append((d[0], d[1]))
        elif d not in (None, b")"):
            out.append((d, None))
    return out


def uids(data):
    """The UIDs of FETCH data, in answer order."""
    return [int(re.search(rb"UID (\d+)", t).group(1)) for t, _ in fetches(data)]


def fails(fn):
    """The IMAP4.error text of a call that should fail, or None."""
    try:
        fn()
    except imaplib.IMAP4.error as e:
        return str(e)
    return None


def msg(uid, text, **kw):
    """A message object with an inline body."""
    return dict(uid=uid, body=text, **kw)


def mailboxes():
    """The model both servers serve; bodies include 8-bit and invalid UTF-8 bytes."""
    return [
        {"name": "INBOX", "uidvalidity": 7, "messages": [
            {"uid": 1, "file": "small.eml", "flags": ["\\Seen"]},
            msg(2, "Subject: two\r\n\r\n\xe4\xff\xfe\r\n", flags=["\\Flagged", "$Label\xe9"],
                internaldate="17-Jul-1996 02:44:25 -0700"),
            {"uid": 5, "file": "big.eml"},
            msg(9, "Subject: nine\r\n\r\nnine\r\n")]},
        {"name": "Sent", "uidvalidity": 3, "special_use": "\\Sent", "messages": [msg(1, "sent\r\n")]},
        {"name": "Work", "noselect": True},
        {"name": "Work/Projects/Q3 2001", "uidvalidity": 5, "messages": [msg(u, "q%d\r\n" % u) for u in (1, 2, 3)]},
        {"name": 'Quote"d\\Back', "uidvalidity": 5, "uidnext": 4, "messages": [msg(u, "x\r\n") for u in (1, 2, 3)]},
        {"name": "B\xe4r\xff", "uidvalidity": 11, "messages": [msg(4, "bear\r\n", flags=["\\Seen"])]},
        {"name": "Junk", "uidvalidity": 2},
        {"name": "Quirky", "uidvalidity": 13, "messages": [
            msg(1, "one\r\n", omit_size_times=1), msg(2, "two\r\n", omit_body_times=1),
            msg(3, "three\r\n", omit_all_times=1), msg(4, "four\r\n", duplicate_body="other bytes\r\n"),
            msg(5, "five\r\n", malformed_fetch_times=1)]},
    ]


def script(quirks=None, rules=None):
    """A whole script."""
    return {"capabilities": "IMAP4rev1 SASL-IR AUTH=PLAIN ID ENABLE LIST-EXTENDED LIST-STATUS SPECIAL-USE",
            "delimiter": "/", "users": {"alice": "alice-pw", "bob": 'p"w\\d'}, "mailboxes": mailboxes(),
            "quirks": quirks or {}, "rules": rules or []}


def test_bad_scripts(d):
    """Exit status 2 and a message naming the problem."""
    for name, doc, needle in [
            ("bad-quirk", {"users": {"a": "b"}, "mailboxes": [], "quirks": {"fetch_revers": True}}, "fetch_revers"),
            ("bad-file", {"users": {"a": "b"}, "mailboxes": [{"name": "INBOX", "messages": [
                {"uid": 1, "file": "nope.eml"}]}]}, "nope.eml"),
            ("bad-key", {"users": {"a": "b"}, "mailboxes": [{"name": "INBOX", "messages": [
                {"uid": 1, "body": "x", "omit_sizes_times": 1}]}]}, "omit_sizes_times")]:
        path = os.path.join(d, name + ".json")
        with open(path, "w") as f:
            json.dump(doc, f)
        r = subprocess.run([PY, SERVER, "--script", path, "--cert", os.path.join(d, "server.pem"),
                            "--key", os.path.join(d, "server.key")], capture_output=True, timeout=20)
        check(f"bad script ({name}) exits 2 naming {needle}", r.returncode == 2 and needle.encode() in r.stderr,
              (r.returncode, r.stderr))


def test_login(port, ctx):
    """LOGIN (quoted, escaped, literal), AUTHENTICATE PLAIN both ways, pre-login BAD, ID."""
    m = connect(port, ctx, None)
    check("greeting carries CAPABILITY", b"[CAPABILITY IMAP4rev1 SASL-IR" in m.welcome, m.welcome)
    m.state = "AUTH"  # imaplib would refuse to send LIST before login; the server must say BAD
    check("LIST before login is BAD", "Log in first" in (fails(lambda: m.list()) or ""))
    m.state = "NONAUTH"
    check("wrong password gets NO [AUTHENTICATIONFAILED]",
          "AUTHENTICATIONFAILED" in (fails(lambda: m.login("alice", "nope")) or ""))
    check("LOGIN with quoted strings", m.login("alice", "alice-pw")[0] == "OK")
    typ, _ = m._simple_command("ID", '("name" "selftest")')
    check("ID answers * ID NIL", typ == "OK" and m.untagged_responses.get("ID") == [b"NIL"])
    check("SELECT is BAD", fails(lambda: m.select("INBOX")) is not None)
    m.logout()
    m = connect(port, ctx, "bob", 'p"w\\d')
    check("LOGIN with \\\" and \\\\ escapes", m.state == "AUTH")
    m.logout()
    m = connect(port, ctx, None)
    m.literal = b"alice-pw"
    check("LOGIN with a literal password", m._simple_command("LOGIN", "alice")[0] == "OK")
    m.logout()
    m = connect(port, ctx, None)
    check("AUTHENTICATE PLAIN with a continuation",
          m.authenticate("PLAIN", lambda _: b"\0alice\0alice-pw")[0] == "OK")
    m.logout()
    m = connect(port, ctx, None)
    ir = base64.b64encode(b"\0alice\0wrong").decode()
    typ, data = m._simple_command("AUTHENTICATE", "PLAIN", ir)
    check("AUTHENTICATE PLAIN (SASL-IR) wrong password is NO", typ == "NO" and b"AUTHENTICATIONFAILED" in data[0])
    ir = base64.b64encode(b"\0alice\0alice-pw").decode()
    check("AUTHENTICATE PLAIN with SASL-IR", m._simple_command("AUTHENTICATE", "PLAIN", ir)[0] == "OK")
    m.logout()


def list_lines(m, *args):
    """Raw untagged LIST (and STATUS) data of one LIST command."""
    m.untagged_responses.clear()
    typ, _ = m._simple_command("LIST", *args)
    return typ, m.untagged_responses.pop("LIST", []), m.untagged_responses.pop("STATUS", [])


def attrs_of(lines, name):
    """The attribute text of a mailbox in LIST data."""
    for line in lines:
        if line.endswith(b' "/" ' + name):
            return line[:line.index(b")") + 1]
    return None


def test_list_status(port, ctx):
    """LIST with wildcards and RETURN options, STATUS quoting, 8-bit names."""
    m = connect(port, ctx)
    _, lines, _ = list_lines(m, '""', '"*"')
    check("LIST * lists every mailbox, quoted, 8-bit bytes intact",
          len(lines) == 8 and attrs_of(lines, b'"B\xe4r\xff"') == b"()" and
          attrs_of(lines, b'"Quote\\"d\\\\Back"') is not None, lines)
    check("plain LIST: \\Noselect shown, no special-use",
          attrs_of(lines, b'"Work"') == b"(\\Noselect)" and attrs_of(lines, b'"Sent"') == b"()", lines)
    _, lines, _ = list_lines(m, '""', "%")
    check("LIST % stays at the top level", len(lines) == 7 and attrs_of(lines, b'"Work/Projects/Q3 2001"') is None)
    _, lines, _ = list_lines(m, '""', '"Work/*"')
    check("LIST Work/* finds the child", len(lines) == 1 and b"Q3 2001" in lines[0], lines)
    _, lines, _ = list_lines(m, '""', '"*"', "RETURN", "(SPECIAL-USE)")
    check("LIST RETURN (SPECIAL-USE) shows \\Sent and \\Noselect",
          attrs_of(lines, b'"Sent"') == b"(\\Sent)" and attrs_of(lines, b'"Work"') == b"(\\Noselect)", lines)
    _, lines, st = list_lines(m, '""', '"*"', "RETURN", "(SPECIAL-USE STATUS (UIDVALIDITY UIDNEXT MESSAGES))")
    check("LIST-STATUS: a STATUS for each selectable mailbox, names quoted",
          len(lines) == 8 and len(st) == 7 and b'"Work/Projects/Q3 2001" (UIDVALIDITY 5 UIDNEXT 4 MESSAGES 3)' in st
          and b'"B\xe4r\xff" (UIDVALIDITY 11 UIDNEXT 5 MESSAGES 1)' in st, st)
    typ, data = m.status('"Quote\\"d\\\\Back"', "(MESSAGES UIDNEXT UIDVALIDITY)")
    check("STATUS quotes \" and \\ in names", data == [b'"Quote\\"d\\\\Back" (MESSAGES 3 UIDNEXT 4 UIDVALIDITY 5)'],
          data)
    typ, data = m.status(b'"B\xe4r\xff"', "(MESSAGES UNSEEN UIDNEXT)")
    check("STATUS of an 8-bit name round-trips as bytes", data == [b'"B\xe4r\xff" (MESSAGES 1 UNSEEN 0 UIDNEXT 5)'],
          data)
    typ, data = m.status('"Work"', "(MESSAGES)")
    check("STATUS of a \\Noselect mailbox is NO", typ == "NO", (typ, data))
    m.logout()


def test_examine_fetch(port, ctx, d):
    """EXAMINE, UID FETCH sets, bodies, flags, dates."""
    m = connect(port, ctx)
    typ, data = m.select("INBOX", readonly=True)
    u = dict(m.untagged_responses)
    check("EXAMINE: EXISTS, UIDVALIDITY, UIDNEXT, READ-ONLY",
          typ == "OK" and data == [b"4"] and u.get("UIDVALIDITY") == [b"7"] and u.get("UIDNEXT") == [b"10"]
          and "READ-ONLY" in u and u.get("PERMANENTFLAGS") == [b"()"] and b"$Label\xe9" in u["FLAGS"][0], u)
    for s, want in [("2,5:9", [2, 5, 9]), ("10:*", [9]), ("*", [9]), ("6:3", [5]), ("3:4", []),
                    ("1:*", [1, 2, 5, 9]), ("9,1,2:2", [1, 2, 9])]:
        typ, data = m.uid("FETCH", s, "(UID)")
        check(f"UID FETCH {s} gives {want}", typ == "OK" and uids(data) == want, data)
    check("UID FETCH with a bad set is BAD", fails(lambda: m.uid("FETCH", "0:x", "(UID)")) is not None)
    typ, data = m.uid("FETCH", "1:*", "(UID RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[])")
    want = {1: open(os.path.join(d, "small.eml"), "rb").read(), 2: b"Subject: two\r\n\r\n\xe4\xff\xfe\r\n",
            5: open(os.path.join(d, "big.eml"), "rb").read(), 9: b"Subject: nine\r\n\r\nnine\r\n"}
    got = {int(re.search(rb"UID (\d+)", t).group(1)): (t, b) for t, b in fetches(data)}
    check("bodies arrive byte-exact (incl. a 5 MB one)", sorted(got) == [1, 2, 5, 9] and all(
        hashlib.sha256(got[k][1]).digest() == hashlib.sha256(v).digest() for k, v in want.items()))
    check("RFC822.SIZE matches the body", all(b"RFC822.SIZE %d " % len(v) in got[k][0] for k, v in want.items()))
    check("8-bit flags and INTERNALDATE exact",
          b'INTERNALDATE "17-Jul-1996 02:44:25 -0700" FLAGS (\\Flagged $Label\xe9)' in got[2][0], got[2][0])
    typ, _ = m.select('"Work"', readonly=True)
    check("EXAMINE of a \\Noselect mailbox is NO", typ == "NO")
    typ, data = m.select('"Nope"', readonly=True)
    check("EXAMINE of a missing mailbox is NO [NONEXISTENT]", typ == "NO" and b"[NONEXISTENT]" in data[0], data)
    m.logout()


def test_message_quirks(port, ctx):
    """omit_size/omit_body/omit_all/duplicate_body/malformed_fetch, each for the first time only."""
    m = connect(port, ctx)
    m.select("Quirky", readonly=True)
    _, first = m.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
    _, second = m.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
    check("omit_all_times: no FETCH response the first time only", uids(first) == [1, 2, 4, 5] and
          uids(second) == [1, 2, 3, 4, 5], (first, second))
    check("omit_size_times: RFC822.SIZE left out the first time only",
          first[0] == b"1 (UID 1)" and second[0] == b"1 (UID 1 RFC822.SIZE 5)", (first, second))
    _, first = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    _, second = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    f1, f2 = fetches(first), fetches(second)
    check("omit_body_times: BODY[] left out the first time, UID and FLAGS kept",
          (b"2 (UID 2 FLAGS ())", None) in f1 and (b"2 (UID 2 FLAGS () BODY[] {5}", b"two\r\n") in f2, f1)
    dup = (b"4 (UID 4 BODY[] {13}", b"other bytes\r\n")
    check("duplicate_body: a second FETCH with other bytes follows, every time",
          f1.count(dup) == 1 and f2.count(dup) == 1 and f1.index(dup) == f1.index(
              (b"4 (UID 4 FLAGS () BODY[] {6}", b"four\r\n")) + 1, f1)
    check("malformed_fetch_times: broken line the first time only",
          (b'5 (UID 5 BODY[] "unterminated', None) in f1 and (b"5 (UID 5 FLAGS () BODY[] {6}", b"five\r\n") in f2, f1)
    m.logout()


def test_raw(port, ctx):
    """Pipelining, LIST-STATUS order, rules (before/replace/times/after/close), resilience."""
    r = Raw(port, ctx)
    r.s.sendall(b"a1 NOOP\r\na2 LOGIN alice alice-pw\r\na3 STATUS Sent (MESSAGES)\r\na4 CAPABILITY\r\n")
    lines = r.until(b"a4")
    tags = [ln.split(b" ")[0] for ln in lines if not ln.startswith(b"*")]
    check("pipelined commands answered in order", tags == [b"a1", b"a2", b"a3", b"a4"] and
          b'* STATUS "Sent" (MESSAGES 1)\r\n' in lines, lines)
    lines = r.cmd(b"b1", b'LIST "" "*" RETURN (STATUS (MESSAGES))')
    order = [ln.split(b" ")[1] for ln in lines[:-1]]
    check("LIST-STATUS: STATUS right after its LIST line",
          order[:6] == [b"LIST", b"STATUS", b"LIST", b"STATUS", b"LIST", b"LIST"] and
          lines[4].startswith(b"* LIST (\\Noselect)") and lines[6].startswith(b"* STATUS"), lines)
    first, second = r.cmd(b"c1", b'STATUS "Junk" (MESSAGES)'), r.cmd(b"c2", b'STATUS "Junk" (MESSAGES)')
    check("rule with before/replace fires once (times)",
          first == [b"* 1 RECENT\r\n", b"* STATUS Junk (MESSAGES 1\r\n", b"c1 OK done\r\n"] and
          second == [b'* STATUS "Junk" (MESSAGES 0)\r\n', b"c2 OK STATUS completed\r\n"], (first, second))
    lines = r.cmd(b"d1", b"ID NIL") + [r.line()]
    check("rule with after", lines == [b"* ID NIL\r\n", b"d1 OK ID completed\r\n", b"* OK [ALERT] after id\r\n"],
          lines)
    check("other commands are BAD", r.cmd(b"e1", b"UID STORE 1 +FLAGS (\\Deleted)")[-1].startswith(b"e1 BAD") and
          r.cmd(b"e2", b"FROB")[-1].startswith(b"e2 BAD") and r.cmd(b"e3", b'STATUS "unterminated')[-1]
          .startswith(b"e3 BAD"))
    r.s.sendall(b'\r\nx1\r\nx2 LIST (\r\nx3 STATUS "a\\q" (MESSAGES)\r\nx4 UID FETCH 1:* (UID)\r\n\xff\x00 NOOP\r\n')
    lines = [r.line() for _ in range(6)]
    check("malformed input gets BAD", [ln.split(b" ")[:2] for ln in lines] == [[b"*", b"BAD"], [b"x1", b"BAD"], [
        b"x2", b"BAD"], [b"x3", b"BAD"], [b"x4", b"BAD"], [b"*", b"BAD"]], lines)
    lines = r.cmd(b"f1", b"EXAMINE {5}\r\nINBOX")
    check("EXAMINE with a literal name", lines[0] == b"+ Ready for literal data\r\n" and b"[READ-ONLY]" in lines[-1])
    r.s.sendall(b'g1 EXAMINE "Crash"\r\n')
    got = [r.line()]
    try:
        got.append(r.line())
    except (EOFError, OSError):
        got.append("EOF")
    check("rule with close drops the connection", got == [b"* BYE going down\r\n", "EOF"], got)
    r.close()
    # a client that hangs up in the middle of a 5 MB body, and one that never finishes its TLS handshake
    idle = socket.create_connection(("127.0.0.1", port))
    r = Raw(port, ctx)
    r.cmd(b"h1", b"LOGIN alice alice-pw")
    r.cmd(b"h2", b"EXAMINE INBOX")
    r.s.sendall(b"h3 UID FETCH 5 (BODY.PEEK[])\r\n")
    r.f.read(1000)
    r.close()
    m = connect(port, ctx)
    check("server survives a client leaving mid-body and a stalled handshake", m.noop()[0] == "OK")
    m.logout()
    idle.close()


def test_quirk_server(port, ctx):
    """The connection-wide quirks."""
    r = Raw(port, ctx)
    r.cmd(b"a", b"LOGIN alice alice-pw")
    lines = r.cmd(b"b", b'STATUS "Quote\\"d\\\\Back" (MESSAGES UIDNEXT UIDVALIDITY)')
    check("status_name_raw: name unquoted with \" inside", lines[0] == b'* STATUS Quote"d\\Back (MESSAGES 3 UIDNEXT 4'
          b' UIDVALIDITY 5)\r\n', lines)
    lines = r.cmd(b"c", b'LIST "" "Work/*" RETURN (STATUS (MESSAGES))')
    check("status_name_raw in LIST-STATUS: name with spaces unquoted",
          lines[1] == b"* STATUS Work/Projects/Q3 2001 (MESSAGES 3)\r\n", lines)
    lines = r.cmd(b"d", b'LIST "" "*" RETURN (SPECIAL-USE)')
    check("extended_list_drops_noselect: no \\Noselect with RETURN", b'* LIST () "/" "Work"\r\n' in lines, lines)
    lines = r.cmd(b"e", b'LIST "" "*"')
    check("plain LIST keeps \\Noselect; special_use_always shows \\Sent",
          b'* LIST (\\Noselect) "/" "Work"\r\n' in lines and b'* LIST (\\Sent) "/" "Sent"\r\n' in lines, lines)
    lines = r.cmd(b"f", b"EXAMINE INBOX")
    check("examine_no_uidnext: no [UIDNEXT] in EXAMINE", not any(b"UIDNEXT" in ln for ln in lines) and
          b"[READ-ONLY]" in lines[-1], lines)
    check("examine_no_uidnext: STATUS still has UIDNEXT",
          r.cmd(b"g", b"STATUS INBOX (UIDNEXT)")[0] == b'* STATUS INBOX (UIDNEXT 10)\r\n')
    lines = r.cmd(b"h", b"UID FETCH 1:* (UID RFC822.SIZE)")
    got = [int(re.search(rb"UID (\d+)", ln).group(1)) for ln in lines[:-1]]
    check("fetch_reverse + fetch_uid_repeat: descending, each UID twice", got == [9, 9, 5, 5, 2, 2, 1, 1], got)
    lines = r.cmd(b"i", b"UID FETCH 1,2 (UID BODY.PEEK[])")
    check("fetch_uid_repeat leaves body fetches alone", [ln[:16] for ln in lines[:-1]] ==
          [b"* 2 FETCH (UID 2", b"* 1 FETCH (UID 1"], lines)
    r.cmd(b"j", b"LOGOUT")
    r.close()


def test_log(log):
    """The command log: every line, credentials masked, bytes kept."""
    data = open(log, "rb").read()
    lines = data.splitlines()
    conns = {ln.split(b" ")[0] for ln in lines}
    check("log: one line per command, prefixed by the connection number",
          len(conns) > 5 and all(re.match(rb"\d+ ", ln) for ln in lines) and
          re.search(rb"\n(\d+) \n\1 x1\n\1 x2 LIST \(\n", data), lines[:5])
    check("log: credentials masked", b"alice-pw" not in data and b'p\\"w' not in data and
          base64.b64encode(b"\0alice\0alice-pw") not in data and re.search(rb"\n\d+ \S+ LOGIN \*\*\*\n", data) and
          re.search(rb"\n\d+ \S+ AUTHENTICATE PLAIN \*\*\*\n", data) and
          re.search(rb"\n\d+ \S+ AUTHENTICATE PLAIN\n", data))
    check("log: 8-bit mailbox names as bytes, literals on one line",
          b'STATUS "B\xe4r\xff"' in data and b"EXAMINE {5}\\r\\nINBOX\n" in data)
    check("log: SELECT and UID STORE were logged, nothing else changing mail",
          b" SELECT INBOX\n" in data and b"UID STORE" in data and b"EXPUNGE" not in data)


def main():
    """Runs everything in a temp dir."""
    d = tempfile.mkdtemp(prefix="scripted-imapd-selftest.")
    procs = []
    try:
        ctx = make_certs(d)
        with open(os.path.join(d, "small.eml"), "wb") as f:
            f.write(b"From: a@example.org\r\nSubject: small\r\n\r\nhello \xc3\xa9 \xff\r\n")
        with open(os.path.join(d, "big.eml"), "wb") as f:
            f.write(b"Subject: big\r\n\r\n" + os.urandom(5 * 1024 * 1024) + b"\r\n")
        test_bad_scripts(d)
        rules = [{"match": '^STATUS "Junk"', "times": 1, "before": ["* 1 RECENT"],
                  "replace": ["* STATUS Junk (MESSAGES 1", "{tag} OK done"]},
                 {"match": "^ID ", "after": ["* OK [ALERT] after id"]},
                 {"match": '^EXAMINE "Crash"', "replace": ["* BYE going down"], "close": True}]
        proc, port, log, err = start(d, "plain", script(rules=rules))
        procs.append(proc)
        test_login(port, ctx)
        test_list_status(port, ctx)
        test_examine_fetch(port, ctx, d)
        test_message_quirks(port, ctx)
        test_raw(port, ctx)
        test_log(log)
        quirks = {q: True for q in ("status_name_raw", "examine_no_uidnext", "extended_list_drops_noselect",
                                    "special_use_always", "fetch_reverse", "fetch_uid_repeat")}
        proc2, port2, _, _ = start(d, "quirky", script(quirks=quirks))
        procs.append(proc2)
        test_quirk_server(port2, ctx)
        for p in procs:
            p.send_signal(signal.SIGTERM)
        check("SIGTERM: exit 0 and port file removed", all(p.wait(10) == 0 for p in procs) and
              not os.path.exists(os.path.join(d, "plain.port")))
        stderr = open(err).read()
        check("no internal errors on the server", "internal error" not in stderr, stderr)
    except Exception as e:  # a crash in a check is a failure, not a traceback without a summary
        import traceback
        traceback.print_exc()
        check(f"self-test ran to the end ({type(e).__name__}: {e})", False)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if "--keep" in sys.argv:
            print(f"# kept {d}")
        else:
            shutil.rmtree(d, ignore_errors=True)
    print(f"scripted-imapd-selftest: {counts[0]} passed, {counts[1]} failed")
    return 1 if counts[1] else 0


if __name__ == "__main__":
    sys.exit(main())

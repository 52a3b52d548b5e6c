#!/usr/bin/python3
r"""Test harness: a scripted IMAPS server that imitates the quirks of real IMAP servers (imap4d, Courier, Cyrus...).

  scripted_imapd.py --script SCRIPT.json --cert server.pem --key server.key [--port N] [--port-file FILE] [--log FILE]

Listens on 127.0.0.1 (port 0 or none: any free port) with TLS from the first byte; writes the port to
--port-file once connections are accepted (a temp file renamed into place; a stale file is removed at start,
ours at exit); serves any number of concurrent connections until SIGTERM (exit 0). Every command line received
is appended to --log as "CONN TAG COMMAND ARGS" (CONN numbers connections from 1; LOGIN and AUTHENTICATE
credentials are written ***; CR and LF inside literals as \r and \n). A bad script, certificate or key: a
message naming the problem on stderr and exit status 2.

A read-only RFC 3501 subset: CAPABILITY, NOOP, LOGOUT, ID (* ID NIL), ENABLE, LOGIN, AUTHENTICATE PLAIN (SASL-IR
or continuation), LIST (* and %; RETURN (SPECIAL-USE STATUS (...))), STATUS, EXAMINE, UID FETCH of UID,
RFC822.SIZE, INTERNALDATE, FLAGS, BODY.PEEK[]/BODY[], FAST, and FETCH of the same by sequence number. Anything else is BAD (SELECT, STORE, EXPUNGE...),
as is anything but CAPABILITY/LOGIN/AUTHENTICATE/LOGOUT/NOOP/ID before login. The model never changes.

The script (JSON; a complete example):

{"capabilities": "IMAP4rev1 SASL-IR AUTH=PLAIN ID ENABLE LIST-EXTENDED LIST-STATUS SPECIAL-USE",
 "capabilities_after_login": "IMAP4rev1 ID ENABLE LIST-EXTENDED LIST-STATUS SPECIAL-USE",
 "greeting": "* OK scripted server ready", "greeting_caps": true, "delimiter": "/",
 "users": {"alice": "alice-pw"},
 "mailboxes": [
   {"name": "INBOX", "uidvalidity": 7, "uidnext": 10, "messages": [
      {"uid": 1, "file": "msg1.eml", "flags": ["\\Seen"]},
      {"uid": 2, "body": "Subject: hi\r\n\r\ntext\r\n", "flags": ["\\Flagged", "$Label\u00e9"],
       "internaldate": "17-Jul-1996 02:44:25 -0700", "omit_size_times": 1, "omit_body_times": 0,
       "omit_all_times": 0, "malformed_fetch_times": 0, "duplicate_body": "other bytes\r\n"}]},
   {"name": "Sent", "uidvalidity": 3, "special_use": "\\Sent", "highestmodseq": 5},
   {"name": "Work", "noselect": true, "attributes": ["\\HasChildren"]},
   {"name": "Work/Q3 2001", "uidvalidity": 4},
   {"name": "B\u00e4r", "uidvalidity": 11, "comment": "8-bit bytes, invalid UTF-8"}],
 "quirks": {"status_name_raw": true, "examine_no_uidnext": false, "extended_list_drops_noselect": false,
            "special_use_always": false, "fetch_reverse": false, "fetch_uid_repeat": false},
 "rules": [{"match": "^STATUS \"Junk\"", "times": 1, "before": ["* 1 RECENT"],
            "replace": ["* STATUS Junk (MESSAGES 1", "{tag} OK done"], "after": ["* OK [ALERT] x"], "close": false}]}

Strings that are names, flags, bodies, user names, passwords, the greeting or raw lines are latin-1 strings
standing for bytes ("\u00ff" is the byte 0xff; "B&APw-cher" stays ASCII). Unknown keys are errors; "comment" is
allowed anywhere. Only "users" and "mailboxes" are required. Defaults: capabilities "IMAP4rev1 AUTH=PLAIN";
capabilities_after_login the same; greeting "* OK scripted server ready" ("* PREAUTH ..." logs in as the first
user, "* BYE ..." hangs up), to which "[CAPABILITY ...]" is added after OK/PREAUTH unless greeting_caps is false
or the text starts with a "[" code; delimiter "/" (null: NIL). Every user sees the same mailboxes.
Mailbox: uidvalidity 1; uidnext highest UID + 1; highestmodseq (STATUS HIGHESTMODSEQ, default 1; when set,
EXAMINE also sends the code); special_use a string or list, shown with RETURN (SPECIAL-USE); noselect (or a
\Noselect/\NonExistent attribute): LIST says \Noselect, EXAMINE and STATUS answer NO; attributes are added to LIST.
Message: "uid" and one of "file" (relative to the script's folder; read each time it is sent) or "body";
flags are sent as atoms, bytes exactly; internaldate defaults to "01-Jan-2000 00:00:00 +0000".

Quirks (booleans, default false):
  status_name_raw               * STATUS names are the model's bytes unquoted, even with spaces or '"' (GNU imap4d)
  examine_no_uidnext            EXAMINE sends no [UIDNEXT] code; STATUS still reports UIDNEXT (Courier)
  extended_list_drops_noselect  a LIST with a RETURN clause leaves \Noselect and \NonExistent out
  special_use_always            special-use attributes in every LIST, not only with RETURN (SPECIAL-USE) (Dovecot)
  fetch_reverse                 UID FETCH answers in descending UID order
  fetch_uid_repeat              a UID FETCH asking for RFC822.SIZE without a body sends each FETCH response twice
Per-message quirks, counted per server process (shared by all connections), checked in this order:
  omit_all_times N         the first N FETCH answers that would include the message send nothing for it
  malformed_fetch_times N  the first N body fetches send '* SEQ FETCH (UID U BODY[] "unterminated' instead
  omit_size_times N        the first N answers asking for RFC822.SIZE leave that item out
  omit_body_times N        the first N answers asking for BODY.PEEK[] leave BODY[] out (UID, FLAGS... still sent)
  duplicate_body "..."     whenever the body is sent, '* SEQ FETCH (UID U BODY[] {m}' with these bytes follows
Rules are tried in order on the command without its tag (latin-1 text, literals inline as {n}\r\n<bytes>) with
re.search; the first that matches and has "times" left fires. "before" lines go out before the normal answer,
"replace" lines instead of it, "after" lines after it; "{tag}" becomes the command's tag; each line gets CRLF
(a line may carry a literal as "{n}\r\n<n bytes>"). A replaced command is not run, except that a replaced
LOGIN/AUTHENTICATE/EXAMINE whose lines include "{tag} OK" logs in / selects the mailbox, so the session can
go on. "close": true then drops the connection without a TLS close_notify, like a crashed server.
"""

import argparse
import base64
import binascii
import bisect
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field

MAX_LINE = 64 * 1024          # longest command line accepted (outside literals)
MAX_LITERAL = 1024 * 1024     # longest literal a client may send; commands only carry names and credentials
FLUSH_AT = 64 * 1024          # small responses are gathered into TLS writes of about this size
DEFAULT_DATE = b"01-Jan-2000 00:00:00 +0000"
QUIRKS = {"status_name_raw", "examine_no_uidnext", "extended_list_drops_noselect", "special_use_always",
          "fetch_reverse", "fetch_uid_repeat"}
TOP_KEYS = {"capabilities", "capabilities_after_login", "greeting", "greeting_caps", "delimiter", "users",
            "mailboxes", "quirks", "rules"}
MAILBOX_KEYS = {"name", "uidvalidity", "uidnext", "highestmodseq", "special_use", "noselect", "attributes",
                "messages"}
MESSAGE_KEYS = {"uid", "file", "body", "flags", "internaldate", "omit_size_times", "omit_body_times",
                "omit_all_times", "duplicate_body", "malformed_fetch_times"}
RULE_KEYS = {"match", "times", "before", "replace", "after", "close"}
DATE_RE = re.compile(rb"(?: \d|[0-3]\d)-(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-\d{4} "
                     rb"\d\d:\d\d:\d\d [+-]\d{4}")
TAG_RE = re.compile(rb'[^\x00-\x20\x7f-\xff(){%*"\\+]+')
LITERAL_RE = re.compile(rb"\{(\d+)(\+?)\}\r\n")
LITERAL_END_RE = re.compile(rb"\{(\d+)(\+?)\}\r\n$")
NOSELECT_ATTRS = {b"\\NOSELECT", b"\\NONEXISTENT"}
SYSTEM_FLAGS = [b"\\Answered", b"\\Flagged", b"\\Deleted", b"\\Seen", b"\\Draft"]
STATUS_ITEMS = {b"MESSAGES", b"RECENT", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"HIGHESTMODSEQ"}
FETCH_ITEMS = {b"UID": ["UID"], b"RFC822.SIZE": ["RFC822.SIZE"], b"INTERNALDATE": ["INTERNALDATE"],
               b"FLAGS": ["FLAGS"], b"BODY.PEEK[]": ["BODY"], b"BODY[]": ["BODY"],
               b"FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"]}


# ---------------------------------------------------------------- the script

class ScriptError(Exception):
    """A problem in the script, with where it is."""


@dataclass
class Message:
    """One message of the model, with its quirk counters."""
    uid: int
    path: str | None
    inline: bytes | None
    flags: list
    internaldate: bytes
    omit_size_times: int = 0
    omit_body_times: int = 0
    omit_all_times: int = 0
    malformed_fetch_times: int = 0
    duplicate_body: bytes | None = None
    used: dict = field(default_factory=dict)  # quirk -> times fired so far, across connections

    def size(self):
        """RFC822.SIZE: the body's length in bytes."""
        return len(self.inline) if self.inline is not None else os.path.getsize(self.path)

    def body(self):
        """The message bytes (files are read at each use so the model stays small)."""
        if self.inline is not None:
            return self.inline
        with open(self.path, "rb") as f:
            return f.read()


@dataclass
class Mailbox:
    """One mailbox of the model."""
    name: bytes
    uidvalidity: int
    uidnext: int
    highestmodseq: int | None
    special_use: list
    attributes: list
    noselect: bool
    messages: list
    uids: list


@dataclass
class Rule:
    """A scripted raw response."""
    regex: re.Pattern
    times: int | None
    before: list
    replace: list | None
    after: list
    close: bool
    fired: int = 0


@dataclass
class Script:
    """The whole server model."""
    capabilities: bytes
    capabilities_after_login: bytes
    greeting: bytes
    greeting_caps: bool
    delimiter: bytes | None
    users: dict
    mailboxes: list
    quirks: set
    rules: list

    def find(self, name):
        """The mailbox called name (INBOX in any case), or None."""
        for m in self.mailboxes:
            if m.name == name or (name.upper() == b"INBOX" and m.name.upper() == b"INBOX"):
                return m
        return None


def _bytes(value, where):
    """A JSON latin-1 string as the bytes it stands for."""
    if not isinstance(value, str):
        raise ScriptError(f"{where}: must be a string")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ScriptError(f"{where}: has a character above U+00FF (write the byte 0xNN as \\u00NN)") from None


def _int(obj, key, where, default, minimum=0):
    """An optional integer member, at least minimum."""
    if key not in obj:
        return default
    v = obj[key]
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum or v > 0xFFFFFFFF:
        raise ScriptError(f"{where}.{key}: must be an integer from {minimum} to 4294967295")
    return v


def _bool(obj, key, where, default=False):
    """An optional boolean member."""
    v = obj.get(key, default)
    if not isinstance(v, bool):
        raise ScriptError(f"{where}.{key}: must be true or false")
    return v


def _keys(obj, allowed, where):
    """Checks that obj is an object with known keys only (typos would silently disable a quirk)."""
    if not isinstance(obj, dict):
        raise ScriptError(f"{where}: must be an object")
    unknown = sorted(set(obj) - allowed - {"comment"})
    if unknown:
        raise ScriptError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def _list(obj, key, where, default=None):
    """An optional list of latin-1 strings as bytes."""
    if key not in obj:
        return default
    v = obj[key]
    if not isinstance(v, list):
        raise ScriptError(f"{where}.{key}: must be a list of strings")
    return [_bytes(s, f"{where}.{key}[{i}]") for i, s in enumerate(v)]


def _message(obj, where, base):
    """Validates one message object."""
    _keys(obj, MESSAGE_KEYS, where)
    if "uid" not in obj:
        raise ScriptError(f"{where}: missing \"uid\"")
    uid = _int(obj, "uid", where, None, 1)
    if ("file" in obj) == ("body" in obj):
        raise ScriptError(f"{where}: needs exactly one of \"file\" and \"body\"")
    path = inline = None
    if "file" in obj:
        if not isinstance(obj["file"], str):
            raise ScriptError(f"{where}.file: must be a string")
        path = os.path.join(base, obj["file"])
        try:
            open(path, "rb").close()
        except OSError as e:
            raise ScriptError(f"{where}.file: cannot read {path}: {e.strerror}") from None
    else:
        inline = _bytes(obj["body"], f"{where}.body")
    flags = _list(obj, "flags", where, [])
    for i, fl in enumerate(flags):
        if not fl or re.search(rb"[ ()\r\n\x00]", fl):
            raise ScriptError(f"{where}.flags[{i}]: a flag must be non-empty without space, parentheses, CR, LF")
    date = _bytes(obj.get("internaldate", DEFAULT_DATE.decode()), f"{where}.internaldate")
    if not DATE_RE.fullmatch(date):
        raise ScriptError(f"{where}.internaldate: not in the form \"17-Jul-1996 02:44:25 -0700\"")
    dup = _bytes(obj["duplicate_body"], f"{where}.duplicate_body") if "duplicate_body" in obj else None
    return Message(uid, path, inline, flags, date, _int(obj, "omit_size_times", where, 0),
                   _int(obj, "omit_body_times", where, 0), _int(obj, "omit_all_times", where, 0),
                   _int(obj, "malformed_fetch_times", where, 0), dup)


def _mailbox(obj, where, base):
    """Validates one mailbox object."""
    _keys(obj, MAILBOX_KEYS, where)
    if "name" not in obj:
        raise ScriptError(f"{where}: missing \"name\"")
    name = _bytes(obj["name"], f"{where}.name")
    if not name or re.search(rb"[\r\n\x00]", name):
        raise ScriptError(f"{where}.name: must be non-empty without CR, LF or NUL")
    msgs = obj.get("messages", [])
    if not isinstance(msgs, list):
        raise ScriptError(f"{where}.messages: must be a list")
    messages = sorted((_message(m, f"{where}.messages[{i}]", base) for i, m in enumerate(msgs)),
                      key=lambda m: m.uid)
    uids = [m.uid for m in messages]
    if len(set(uids)) != len(uids):
        raise ScriptError(f"{where}: two messages have the same uid")
    su = obj.get("special_use", [])
    if not isinstance(su, (str, list)):
        raise ScriptError(f"{where}.special_use: must be a string or a list of strings")
    special = [_bytes(s, f"{where}.special_use") for s in ([su] if isinstance(su, str) else su)]
    attrs = _list(obj, "attributes", where, [])
    noselect = _bool(obj, "noselect", where) or any(a.upper() in NOSELECT_ATTRS for a in attrs)
    hms = _int(obj, "highestmodseq", where, None, 1)
    return Mailbox(name, _int(obj, "uidvalidity", where, 1, 1), _int(obj, "uidnext", where, (uids or [0])[-1] + 1, 1),
                   hms, special, attrs, noselect, messages, uids)


def _rule(obj, where):
    """Validates one rule object."""
    _keys(obj, RULE_KEYS, where)
    if not isinstance(obj.get("match"), str):
        raise ScriptError(f"{where}.match: missing or not a string")
    try:
        regex = re.compile(obj["match"])
    except re.error as e:
        raise ScriptError(f"{where}.match: bad regular expression: {e}") from None
    return Rule(regex, _int(obj, "times", where, None), _list(obj, "before", where, []),
                _list(obj, "replace", where), _list(obj, "after", where, []), _bool(obj, "close", where))


def load_script(path):
    """Reads and validates the script; raises ScriptError naming the problem."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise ScriptError(f"cannot read: {e.strerror}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ScriptError(f"not valid JSON: {e}") from None
    _keys(doc, TOP_KEYS, "script")
    base = os.path.dirname(os.path.abspath(path))
    quirks = doc.get("quirks", {})
    if not isinstance(quirks, dict):
        raise ScriptError("quirks: must be an object")
    for q in quirks:
        if q not in QUIRKS:
            raise ScriptError(f"quirks: unknown quirk {q!r} (known: {', '.join(sorted(QUIRKS))})")
    users = doc.get("users")
    if not isinstance(users, dict) or not users:
        raise ScriptError("users: must be a non-empty object of user name to password")
    delim = doc.get("delimiter", "/")
    if delim is not None and (not isinstance(delim, str) or len(delim) != 1):
        raise ScriptError("delimiter: must be one character or null")
    mbs = doc.get("mailboxes")
    if not isinstance(mbs, list):
        raise ScriptError("mailboxes: missing or not a list")
    mailboxes = [_mailbox(m, f"mailboxes[{i}]", base) for i, m in enumerate(mbs)]
    names = [m.name.upper() if m.name.upper() == b"INBOX" else m.name for m in mailboxes]
    if len(set(names)) != len(names):
        raise ScriptError("mailboxes: two mailboxes have the same name")
    rules = doc.get("rules", [])
    if not isinstance(rules, list):
        raise ScriptError("rules: must be a list")
    caps = _bytes(doc.get("capabilities", "IMAP4rev1 AUTH=PLAIN"), "capabilities")
    return Script(
        capabilities=caps,
        capabilities_after_login=_bytes(doc.get("capabilities_after_login", caps.decode("latin-1")),
                                        "capabilities_after_login"),
        greeting=_bytes(doc.get("greeting", "* OK scripted server ready"), "greeting"),
        greeting_caps=_bool(doc, "greeting_caps", "script", True),
        delimiter=_bytes(delim, "delimiter") if delim is not None else None,
        users={_bytes(u, "users"): _bytes(p, f"users.{u}") for u, p in users.items()},
        mailboxes=mailboxes,
        quirks={q for q in quirks if _bool(quirks, q, "quirks")},
        rules=[_rule(r, f"rules[{i}]") for i, r in enumerate(rules)])


# ---------------------------------------------------------------- command parsing

class Bad(Exception):
    """A malformed or unsupported command: answered with tagged BAD."""


class Atom(bytes):
    """An unquoted token (atom, number, sequence set, NIL, fetch item)."""


class Str(bytes):
    """A quoted string or a literal."""


def tokenize(data):
    """Splits command arguments into Atoms, Strs and (nested) lists."""
    stack = [[]]
    i, n = 0, len(data)
    while i < n:
        c = data[i]
        if c == 0x20:
            i += 1
        elif c == 0x28:  # (
            stack.append([])
            i += 1
        elif c == 0x29:  # )
            if len(stack) == 1:
                raise Bad("Unbalanced parenthesis")
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif c == 0x22:  # "
            out = bytearray()
            i += 1
            while True:
                if i >= n or data[i] in b"\r\n":
                    raise Bad("Unterminated quoted string")
                if data[i] == 0x5C:  # only \" and \\ are valid escapes (RFC 3501 quoted-specials)
                    if i + 1 >= n or data[i + 1] not in b'"\\':
                        raise Bad("Bad escape in quoted string")
                    out.append(data[i + 1])
                    i += 2
                elif data[i] == 0x22:
                    i += 1
                    break
                else:
                    out.append(data[i])
                    i += 1
            stack[-1].append(Str(out))
        elif c == 0x7B:  # {
            m = LITERAL_RE.match(data, i)
            if not m or m.end() + int(m.group(1)) > n:
                raise Bad("Malformed literal")
            end = m.end() + int(m.group(1))
            stack[-1].append(Str(data[m.end():end]))
            i = end
        else:
            j = i
            while j < n and data[j] not in b' (){"':
                if data[j] < 0x20 or data[j] == 0x7F:
                    raise Bad("Control character in atom")
                if data[j] == 0x5B:  # [ ... ] may hold spaces and parentheses (BODY.PEEK[HEADER.FIELDS (A B)])
                    close = data.find(b"]", j)
                    if close < 0:
                        raise Bad("Unterminated [")
                    j = close
                j += 1
            stack[-1].append(Atom(data[i:j]))
            i = j
    if len(stack) != 1:
        raise Bad("Unbalanced parenthesis")
    return stack[0]


def astring(tok):
    """An atom or string argument as bytes."""
    if isinstance(tok, (Atom, Str)):
        return bytes(tok)
    raise Bad("Expected a string, got a list")


def show(tok):
    """A token for an error message."""
    return tok.decode("latin-1") if isinstance(tok, bytes) else "(...)"


def quote(name):
    """An IMAP quoted string (raw 8-bit bytes are kept, as most servers do)."""
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def parse_uid_set(text, highest):
    """Merged (low, high) UID ranges of a sequence set; '*' is the highest UID (None: empty mailbox)."""
    if not isinstance(text, Atom):
        raise Bad("Invalid sequence set")
    ranges = []
    for part in bytes(text).split(b","):
        ends = part.split(b":")
        if len(ends) > 2:
            raise Bad("Invalid sequence set")
        vals = []
        for e in ends:
            if e == b"*":
                vals.append(highest)
            elif e.isdigit() and 0 < int(e) <= 0xFFFFFFFF:
                vals.append(int(e))
            else:
                raise Bad("Invalid sequence set")
        if None not in vals:  # n:* in an empty mailbox matches nothing
            ranges.append((min(vals), max(vals)))  # RFC 3501: a:b is b:a, so n:* above the top is the top
    merged = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def parse_fetch_items(tok):
    """Fetch item names in answer order (UID first, BODY last), duplicates removed."""
    toks = tok if isinstance(tok, list) else [tok]
    if not toks:
        raise Bad("No fetch items")
    items = ["UID"]
    for t in toks:
        if not isinstance(t, Atom) or t.upper() not in FETCH_ITEMS:
            raise Bad(f"Unsupported fetch item {show(t)}")
        items += [i for i in FETCH_ITEMS[t.upper()] if i not in items]
    if "BODY" in items:
        items.remove("BODY")
        items.append("BODY")
    return items


def parse_status_items(tok):
    """STATUS item names, upper case."""
    if not isinstance(tok, list) or not tok:
        raise Bad("Expected a list of status items")
    items = []
    for t in tok:
        if not isinstance(t, Atom) or t.upper() not in STATUS_ITEMS:
            raise Bad(f"Unsupported status item {show(t)}")
        items.append(t.upper())
    return items


# ---------------------------------------------------------------- a connection

class Out:
    """Gathers small response lines into large TLS writes; big bodies are sent straight through."""

    def __init__(self, sock):
        self.sock, self.buf = sock, bytearray()

    def write(self, data):
        """Queues bytes, sending once enough have gathered."""
        if len(data) >= FLUSH_AT:
            self.flush()
            self.sock.sendall(data)
            return
        self.buf += data
        if len(self.buf) >= FLUSH_AT:
            self.flush()

    def flush(self):
        """Sends everything queued."""
        if self.buf:
            self.sock.sendall(self.buf)
            self.buf.clear()


class Connection:
    """One client session, served by its own thread."""

    COMMANDS = {"CAPABILITY", "NOOP", "LOGOUT", "ID", "ENABLE", "LOGIN", "AUTHENTICATE", "LIST", "STATUS",
                "EXAMINE", "UID", "FETCH"}
    BEFORE_LOGIN = {"CAPABILITY", "NOOP", "LOGOUT", "ID", "LOGIN", "AUTHENTICATE"}

    def __init__(self, server, raw, no):
        self.server, self.script, self.raw, self.no = server, server.script, raw, no
        self.tls = self.rfile = self.out = None
        self.user = None       # bytes once logged in
        self.selected = None   # the EXAMINEd Mailbox
        self.closing = None    # "graceful" (LOGOUT) or "crash" (a rule's close)

    def run(self):
        """Thread body: handshake, greeting, command loop; never lets an exception escape."""
        try:
            self.raw.settimeout(30)
            try:
                self.tls = self.server.ssl_ctx.wrap_socket(self.raw, server_side=True)
            except (OSError, ValueError) as e:
                self.server.note(f"connection {self.no}: TLS handshake failed: {e}")
                return
            self.tls.settimeout(None)  # clients may idle between polls; SIGTERM ends everything anyway
            self.rfile = self.tls.makefile("rb")
            self.out = Out(self.tls)
            self.greet()
            while not self.closing:
                raw = self.read_command()
                if raw is None:
                    break
                self.handle(raw)
                self.out.flush()
        except (OSError, EOFError):
            pass  # the client went away mid-answer or sent garbage TLS: nothing to do but close
        except Exception:
            self.server.note(f"connection {self.no}: internal error\n{traceback.format_exc()}")
        finally:
            self.close()

    def close(self):
        """Closes the socket; a lingering read keeps unread client bytes from turning our FIN into an RST."""
        if self.out is not None:
            try:
                self.out.flush()
            except OSError:
                pass
        if self.rfile is not None:
            self.rfile.close()
        sock = self.tls or self.raw
        try:
            if self.closing == "graceful" and self.tls is not None:
                sock.settimeout(1.0)
                sock.unwrap()  # close_notify, as a real server says goodbye; may time out waiting for the peer's
        except (OSError, ValueError):
            pass
        try:
            sock.shutdown(socket.SHUT_WR)  # on an SSLSocket this drops TLS without close_notify
            sock.settimeout(0.5)
            for _ in range(64):
                if not sock.recv(65536):
                    break
        except (OSError, ValueError):
            pass
        finally:
            sock.close()
            self.raw.close()

    def send(self, line):
        """Queues one response line, adding CRLF."""
        self.out.write(line + b"\r\n")

    def greet(self):
        """Sends the greeting, with the CAPABILITY code unless the script says otherwise."""
        g, s = self.script.greeting, self.script
        parts = g.split(b" ", 2)
        kind = parts[1].upper() if len(parts) > 1 and parts[0] == b"*" else b""
        rest = parts[2] if len(parts) > 2 else b""
        if s.greeting_caps and kind in (b"OK", b"PREAUTH") and not rest.startswith(b"["):
            g = b"* " + parts[1] + b" [CAPABILITY " + s.capabilities + b"] " + (rest or b"ready")
        if kind == b"PREAUTH":
            self.user = next(iter(s.users))
        elif kind == b"BYE":
            self.closing = "graceful"
        self.send(g)
        self.out.flush()

    def read_command(self):
        """One command with its literals, CRLF-normalized, final CRLF removed; None at end of input."""
        parts = []
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line.endswith(b"\n"):
                if len(line) > MAX_LINE:
                    self.send(b"* BYE Command line too long")
                    self.closing = "crash"
                return None
            if not line.endswith(b"\r\n"):
                line = line[:-1] + b"\r\n"  # lenient: a bare LF ends a line too
            parts.append(line)
            m = LITERAL_END_RE.search(line)
            if not m:
                return b"".join(parts)[:-2]
            size = int(m.group(1))
            if size > MAX_LITERAL:
                self.send(b"* BYE Literal too large")
                self.closing = "crash"
                return None
            if not m.group(2):  # synchronizing literal: the client waits for this
                self.send(b"+ Ready for literal data")
                self.out.flush()
            data = self.rfile.read(size)
            if len(data) < size:
                return None
            parts.append(data)

    def log_form(self, raw, verb):
        """The command as logged: credentials masked, one line."""
        tag, _, rest = raw.partition(b" ")
        words = rest.split(b" ", 2)
        if verb == "LOGIN" and len(words) > 1:
            raw = tag + b" " + words[0] + b" ***"
        elif verb == "AUTHENTICATE" and len(words) > 2:
            raw = tag + b" " + words[0] + b" " + words[1] + b" ***"
        return raw.replace(b"\r", b"\\r").replace(b"\n", b"\\n")

    def handle(self, raw):
        """Answers one command, applying the first matching rule."""
        tag, _, rest = raw.partition(b" ")
        verb_b, _, args = rest.partition(b" ")
        verb = verb_b.upper().decode("latin-1")
        self.server.log(self.no, self.log_form(raw, verb))
        if not TAG_RE.fullmatch(tag):
            self.send(b"* BAD Missing or invalid tag")
            return
        if not verb:
            self.send(tag + b" BAD Missing command")
            return
        rule = self.server.take_rule(rest.decode("latin-1"))
        if rule is None:
            self.dispatch(tag, verb, args)
            return
        for line in rule.before:
            self.send(line.replace(b"{tag}", tag))
        if rule.replace is None:
            self.dispatch(tag, verb, args)
        else:
            lines = [line.replace(b"{tag}", tag) for line in rule.replace]
            for line in lines:
                self.send(line)
            if any(line.upper().startswith(tag.upper() + b" OK") for line in lines):
                self.replaced_ok(verb, args)
        for line in rule.after:
            self.send(line.replace(b"{tag}", tag))
        if rule.close:
            self.closing = "crash"

    def replaced_ok(self, verb, args):
        """The state change of a command whose scripted answer was OK, so the session can go on."""
        if verb in ("LOGIN", "AUTHENTICATE") and self.user is None:
            self.user = next(iter(self.script.users))
        elif verb == "EXAMINE":
            try:
                self.selected = self.script.find(astring(tokenize(args)[0]))
            except (Bad, IndexError):
                self.selected = None

    def dispatch(self, tag, verb, args):
        """Runs the command's handler; BAD for unknown, out-of-state or malformed commands."""
        if verb not in self.COMMANDS:
            self.send(tag + b" BAD Unknown or unsupported command")
            return
        if self.user is None and verb not in self.BEFORE_LOGIN:
            self.send(tag + b" BAD Log in first")
            return
        if self.user is not None and verb in ("LOGIN", "AUTHENTICATE"):
            self.send(tag + b" BAD Already logged in")
            return
        try:
            getattr(self, "cmd_" + verb.lower())(tag, tokenize(args))
        except Bad as e:
            self.send(tag + b" BAD " + str(e).encode("latin-1", "replace"))

    # ------------------------------------------------ commands

    def cmd_capability(self, tag, args):
        """CAPABILITY: before or after login."""
        caps = self.script.capabilities if self.user is None else self.script.capabilities_after_login
        self.send(b"* CAPABILITY " + caps)
        self.send(tag + b" OK CAPABILITY completed")

    def cmd_noop(self, tag, args):
        """NOOP: the model never changes, so nothing to report."""
        self.send(tag + b" OK NOOP completed")

    def cmd_logout(self, tag, args):
        """LOGOUT: BYE, OK, close."""
        self.send(b"* BYE Logging out")
        self.send(tag + b" OK LOGOUT completed")
        self.closing = "graceful"

    def cmd_id(self, tag, args):
        """ID: we say nothing about ourselves."""
        if len(args) != 1:
            raise Bad("ID takes one argument")
        self.send(b"* ID NIL")
        self.send(tag + b" OK ID completed")

    def cmd_enable(self, tag, args):
        """ENABLE: accepted, nothing enabled."""
        self.send(b"* ENABLED")
        self.send(tag + b" OK ENABLE completed")

    def login(self, tag, user, password):
        """Checks credentials and answers."""
        if self.script.users.get(user) == password:
            self.user = user
            self.send(tag + b" OK Logged in")
        else:
            self.send(tag + b" NO [AUTHENTICATIONFAILED] Authentication failed")

    def cmd_login(self, tag, args):
        """LOGIN user password (atoms, quoted strings or literals)."""
        if len(args) != 2:
            raise Bad("LOGIN takes a user name and a password")
        if b"LOGINDISABLED" in self.script.capabilities.upper().split():
            self.send(tag + b" NO LOGIN is disabled")
            return
        self.login(tag, astring(args[0]), astring(args[1]))

    def cmd_authenticate(self, tag, args):
        """AUTHENTICATE PLAIN, with the response inline (SASL-IR) or after a continuation."""
        if not args or not isinstance(args[0], Atom) or len(args) > 2:
            raise Bad("AUTHENTICATE takes a mechanism and an optional initial response")
        if args[0].upper() != b"PLAIN":
            self.send(tag + b" NO Unsupported authentication mechanism")
            return
        if len(args) == 2:
            response = b"" if args[1] == b"=" else astring(args[1])
        else:
            self.send(b"+ ")
            self.out.flush()
            line = self.rfile.readline(MAX_LINE)
            if not line.endswith(b"\n"):
                raise EOFError
            response = line.rstrip(b"\r\n")
            if response == b"*":
                self.send(tag + b" BAD Authentication cancelled")
                return
        try:
            authz, user, password = base64.b64decode(response, validate=True).split(b"\0")
        except (binascii.Error, ValueError):
            raise Bad("Malformed PLAIN response") from None
        if authz not in (b"", user):
            self.send(tag + b" NO [AUTHORIZATIONFAILED] Cannot act as another user")
            return
        self.login(tag, user, password)

    def list_attributes(self, mbox, has_return, special_use):
        """The attributes of a LIST line, as the quirks want them."""
        attrs = ([b"\\Noselect"] if mbox.noselect else []) + [a for a in mbox.attributes if a.upper() != b"\\NOSELECT"]
        if has_return and "extended_list_drops_noselect" in self.script.quirks:
            attrs = [a for a in attrs if a.upper() not in NOSELECT_ATTRS]
        if special_use or "special_use_always" in self.script.quirks:
            attrs += [a for a in mbox.special_use if a not in attrs]
        return attrs

    def cmd_list(self, tag, args):
        """LIST ref pattern [RETURN (SPECIAL-USE CHILDREN SUBSCRIBED STATUS (...))]."""
        if len(args) not in (2, 4):
            raise Bad("LIST takes a reference, a pattern and an optional RETURN clause")
        ref, pattern = astring(args[0]), astring(args[1])
        special_use, status_items, has_return = False, None, len(args) == 4
        if has_return:
            if not isinstance(args[2], Atom) or args[2].upper() != b"RETURN" or not isinstance(args[3], list):
                raise Bad("Expected RETURN (...)")
            opts = args[3]
            i = 0
            while i < len(opts):
                opt = opts[i].upper() if isinstance(opts[i], Atom) else None
                if opt == b"SPECIAL-USE":
                    special_use = True
                elif opt == b"STATUS" and i + 1 < len(opts):
                    i += 1
                    status_items = parse_status_items(opts[i])
                elif opt not in (b"CHILDREN", b"SUBSCRIBED"):
                    raise Bad("Unsupported RETURN option")
                i += 1
        delim = self.script.delimiter
        delim_out = quote(delim) if delim is not None else b"NIL"
        if not pattern:  # RFC 3501: an empty pattern asks for the hierarchy delimiter
            self.send(b"* LIST (\\Noselect) " + delim_out + b' ""')
            self.send(tag + b" OK LIST completed")
            return
        regex = list_regex(inbox_canon(ref + pattern, delim), delim)
        for mbox in self.script.mailboxes:
            if not regex.fullmatch(inbox_canon(mbox.name, delim)):
                continue
            attrs = self.list_attributes(mbox, has_return, special_use)
            self.send(b"* LIST (" + b" ".join(attrs) + b") " + delim_out + b" " + quote(mbox.name))
            if status_items is not None and not mbox.noselect:
                self.send(self.status_line(mbox, status_items))
        self.send(tag + b" OK LIST completed")

    def status_line(self, mbox, items):
        """An untagged STATUS response; status_name_raw writes the name unquoted like GNU imap4d."""
        name = mbox.name if "status_name_raw" in self.script.quirks else quote(mbox.name)
        values = {b"MESSAGES": len(mbox.messages), b"RECENT": 0, b"UIDNEXT": mbox.uidnext,
                  b"UIDVALIDITY": mbox.uidvalidity,
                  b"UNSEEN": sum(1 for m in mbox.messages if b"\\seen" not in (f.lower() for f in m.flags)),
                  b"HIGHESTMODSEQ": mbox.highestmodseq or 1}
        return b"* STATUS " + name + b" (" + b" ".join(b"%s %d" % (i, values[i]) for i in items) + b")"

    def mailbox_arg(self, tag, tok):
        """The named selectable mailbox, or None after answering NO."""
        mbox = self.script.find(astring(tok))
        if mbox is None:
            self.send(tag + b" NO [NONEXISTENT] No such mailbox")
        elif mbox.noselect:
            self.send(tag + b" NO Mailbox is not selectable")
        else:
            return mbox
        return None

    def cmd_status(self, tag, args):
        """STATUS mailbox (items)."""
        if len(args) != 2:
            raise Bad("STATUS takes a mailbox and a list of items")
        items = parse_status_items(args[1])
        mbox = self.mailbox_arg(tag, args[0])
        if mbox is not None:
            self.send(self.status_line(mbox, items))
            self.send(tag + b" OK STATUS completed")

    def cmd_examine(self, tag, args):
        """EXAMINE mailbox [(parameters, ignored)]: read-only selection."""
        if len(args) not in (1, 2) or (len(args) == 2 and not isinstance(args[1], list)):
            raise Bad("EXAMINE takes a mailbox name")
        self.selected = None  # RFC 3501: a failed EXAMINE leaves no mailbox selected
        mbox = self.mailbox_arg(tag, args[0])
        if mbox is None:
            return
        flags = list(SYSTEM_FLAGS)
        for m in mbox.messages:
            flags += [f for f in m.flags if f not in flags]
        self.send(b"* %d EXISTS" % len(mbox.messages))
        self.send(b"* 0 RECENT")
        self.send(b"* OK [UIDVALIDITY %d] UIDs valid" % mbox.uidvalidity)
        if "examine_no_uidnext" not in self.script.quirks:
            self.send(b"* OK [UIDNEXT %d] Predicted next UID" % mbox.uidnext)
        if mbox.highestmodseq is not None:
            self.send(b"* OK [HIGHESTMODSEQ %d] Highest" % mbox.highestmodseq)
        self.send(b"* FLAGS (" + b" ".join(flags) + b")")
        self.send(b"* OK [PERMANENTFLAGS ()] Read-only mailbox")
        self.send(tag + b" OK [READ-ONLY] EXAMINE completed")
        self.selected = mbox

    def cmd_uid(self, tag, args):
        """UID FETCH set items (the only UID command: nothing may change the model)."""
        if not args or not isinstance(args[0], Atom) or args[0].upper() != b"FETCH":
            raise Bad("Only UID FETCH is supported")
        if self.selected is None:
            raise Bad("No mailbox selected")
        if len(args) != 3:
            raise Bad("UID FETCH takes a UID set and fetch items")
        mbox = self.selected
        ranges = parse_uid_set(args[1], mbox.uids[-1] if mbox.uids else None)
        items = parse_fetch_items(args[2])
        starts = [lo for lo, _ in ranges]
        chosen = []
        for seq, msg in enumerate(mbox.messages, 1):
            k = bisect.bisect_right(starts, msg.uid) - 1
            if k >= 0 and msg.uid <= ranges[k][1]:
                chosen.append((seq, msg))
        if "fetch_reverse" in self.script.quirks:
            chosen.reverse()
        repeat = ("fetch_uid_repeat" in self.script.quirks and "RFC822.SIZE" in items and "BODY" not in items)
        for seq, msg in chosen:
            self.fetch_one(seq, msg, items, repeat)
        self.send(tag + b" OK UID FETCH completed")

    def cmd_fetch(self, tag, args):
        """FETCH by message sequence number (read-only: BODY.PEEK[] never sets \\Seen here)."""
        if self.selected is None:
            raise Bad("No mailbox selected")
        if len(args) != 2:
            raise Bad("FETCH takes a sequence set and fetch items")
        mbox = self.selected
        ranges = parse_uid_set(args[0], len(mbox.messages) if mbox.messages else None)
        items = parse_fetch_items(args[1])
        for seq, msg in enumerate(mbox.messages, 1):
            if any(lo <= seq <= hi for lo, hi in ranges):
                self.fetch_one(seq, msg, items, False)
        self.send(tag + b" OK FETCH completed")

    def fetch_one(self, seq, msg, items, repeat):
        """The FETCH response(s) for one message, with its per-message quirks."""
        take = self.server.take
        if take(msg, "omit_all", msg.omit_all_times):
            return
        want_body = "BODY" in items
        if want_body and take(msg, "malformed", msg.malformed_fetch_times):
            self.send(b'* %d FETCH (UID %d BODY[] "unterminated' % (seq, msg.uid))
            return
        omit_size = "RFC822.SIZE" in items and take(msg, "omit_size", msg.omit_size_times)
        omit_body = want_body and take(msg, "omit_body", msg.omit_body_times)
        parts = [b"UID %d" % msg.uid]
        for item in items:
            if item == "RFC822.SIZE" and not omit_size:
                parts.append(b"RFC822.SIZE %d" % msg.size())
            elif item == "INTERNALDATE":
                parts.append(b'INTERNALDATE "' + msg.internaldate + b'"')
            elif item == "FLAGS":
                parts.append(b"FLAGS (" + b" ".join(msg.flags) + b")")
        head = b"* %d FETCH (" % seq + b" ".join(parts)
        if not want_body or omit_body:
            for _ in range(2 if repeat else 1):
                self.send(head + b")")
            return
        body = msg.body()
        self.out.write(head + b" BODY[] {%d}\r\n" % len(body))
        self.out.write(body)
        self.send(b")")
        if msg.duplicate_body is not None:
            dup = msg.duplicate_body
            self.out.write(b"* %d FETCH (UID %d BODY[] {%d}\r\n" % (seq, msg.uid, len(dup)) + dup + b")\r\n")


def inbox_canon(name, delim):
    """Name with a leading INBOX (any case) written INBOX, since only INBOX is case-insensitive."""
    if name[:5].upper() == b"INBOX" and (len(name) == 5 or (delim is not None and name[5:6] == delim)):
        return b"INBOX" + name[5:]
    return name


def list_regex(pattern, delim):
    """A compiled regex for a LIST pattern: * matches anything, % anything but the delimiter."""
    out = []
    for ch in pattern:
        if ch == 0x2A:
            out.append(b".*")
        elif ch == 0x25:
            out.append(b"[^" + re.escape(delim) + b"]*" if delim is not None else b".*")
        else:
            out.append(re.escape(bytes([ch])))
    return re.compile(b"".join(out), re.DOTALL)


# ---------------------------------------------------------------- the server

class Server:
    """Shared state: the script, quirk and rule counters, the command log."""

    def __init__(self, script, ssl_ctx, log_file):
        self.script, self.ssl_ctx, self.log_file = script, ssl_ctx, log_file
        self.lock = threading.Lock()
        self.connections = 0

    def take(self, msg, quirk, limit):
        """True (and counted) while a per-message quirk has times left."""
        with self.lock:
            n = msg.used.get(quirk, 0)
            if n >= limit:
                return False
            msg.used[quirk] = n + 1
            return True

    def take_rule(self, text):
        """The first rule matching the command that has times left, counted; None if none."""
        with self.lock:
            for rule in self.script.rules:
                if (rule.times is None or rule.fired < rule.times) and rule.regex.search(text):
                    rule.fired += 1
                    return rule
        return None

    def log(self, no, line):
        """Appends one command line to the log, flushed so tests can read it while we run."""
        if self.log_file is not None:
            with self.lock:
                self.log_file.write(b"%d %s\n" % (no, line))
                self.log_file.flush()

    def note(self, text):
        """A diagnostic on stderr."""
        with self.lock:
            print(f"scripted_imapd: {text}", file=sys.stderr, flush=True)

    def serve(self, listener):
        """Accepts connections forever, one thread each (a slow client never blocks the others)."""
        while True:
            try:
                raw, _ = listener.accept()
            except OSError as e:  # e.g. out of file descriptors: keep serving the connections we have
                self.note(f"accept failed: {e}")
                time.sleep(0.1)
                continue
            self.connections += 1
            conn = Connection(self, raw, self.connections)
            threading.Thread(target=conn.run, name=f"imap-{self.connections}", daemon=True).start()


class Stop(Exception):
    """Raised by the SIGTERM/SIGINT handler to leave the accept loop."""


def _stop(signum, frame):
    """Signal handler."""
    raise Stop()


def write_port_file(path, port):
    """Writes the port atomically, so a waiting test never reads a half-written file."""
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def main():
    """Parses arguments, loads the script, serves until SIGTERM."""
    ap = argparse.ArgumentParser(description="Scripted IMAPS server for tests.")
    ap.add_argument("--script", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    a = ap.parse_args()
    try:
        script = load_script(a.script)
    except ScriptError as e:
        print(f"scripted_imapd: bad script {a.script}: {e}", file=sys.stderr)
        return 2
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        ctx.load_cert_chain(a.cert, a.key)
    except (OSError, ssl.SSLError) as e:
        print(f"scripted_imapd: cannot load certificate {a.cert} / key {a.key}: {e}", file=sys.stderr)
        return 2
    if a.port_file and os.path.exists(a.port_file):
        os.unlink(a.port_file)  # a stale port from an earlier run must not be mistaken for ours
    try:
        log_file = open(a.log, "ab") if a.log else None
        listener = socket.create_server(("127.0.0.1", a.port), backlog=128)
    except OSError as e:
        print(f"scripted_imapd: cannot start: {e}", file=sys.stderr)
        return 2
    server = Server(script, ctx, log_file)
    port = listener.getsockname()[1]
    try:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        if a.port_file:
            write_port_file(a.port_file, port)
        server.note(f"listening on 127.0.0.1:{port}")
        server.serve(listener)
    except Stop:
        code = 0
    except OSError as e:  # serve() handles its own errors: this is the port file
        server.note(f"cannot write the port file: {e}")
        code = 2
    finally:
        listener.close()
        if a.port_file and os.path.exists(a.port_file):
            os.unlink(a.port_file)
        with server.lock:
            server.log_file = None  # connection threads still running must not write to a closed file
            if log_file is not None:
                log_file.close()
    sys.stderr.flush()
    os._exit(code)  # daemon threads may be mid-send; no need to wait for them


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Test oracle: expected hit counts for a fixed set of searches, computed from the raw message files
with Python's own email package, independently of mailvault's indexer (GMime + Xapian).

  expected_hits.py MANIFEST NOW

MANIFEST lines are "ACCOUNT<TAB>FOLDER<TAB>FILE" for every message loaded into the test's Dovecot;
NOW is the ingest time (epoch seconds) that stands in for messages without a readable Date.
Prints "QUERY<TAB>COUNT" per query. Counts are of distinct messages (the archive stores each once):
the key is the SHA-256 of the bytes as the IMAP server sends them (bare LF become CRLF).
Queries keep to what has one reading: exact addresses and domains, phrases (unstemmed), free words
(stemmed with Snowball's English stemmer, the algorithm Xapian uses, in subject and body; as written in
the names and address words of From, To, Cc and Bcc), trailing wildcards over the same words, date and
size ranges, account and folder, has:attachment (the rule README.md states), and boolean combinations.
"""
import calendar
import email
import email.policy
import email.utils
import hashlib
import re
import sys
from email.header import decode_header, make_header

import snowballstemmer

STEM = snowballstemmer.stemmer("english")

# words as Xapian's TermGenerator cuts them: runs of word characters, an apostrophe inside a word
# keeping it whole (California's is one term)
WORD = re.compile(r"\w+(?:['\u2019]\w+)*", re.UNICODE)


def addresses(msg, field):
    """Lower-cased addr-specs of every address in every instance of the field."""
    values = [str(v) for v in msg.get_all(field, [])]
    return {a.lower() for _, a in email.utils.getaddresses(values) if "@" in a}


def words(text):
    return [w.lower().replace("\u2019", "'") for w in WORD.findall(text or "")]


def address_words(msg, fields):
    """Per address of the fields: the words of its display name, then of the address split at . _ - + @
    (one sequence each: a phrase never spans two addresses)."""
    seqs = []
    for field in fields:
        values = [decoded(str(v)) for v in msg.get_all(field, [])]
        for name, addr in email.utils.getaddresses(values):
            seqs.append(words(name) + words(re.sub(r"[._\-+@]", " ", addr)))
    return seqs


TEXTY_MESSAGES = {"delivery-status", "disposition-notification", "feedback-report", "global-delivery-status",
                  "global-disposition-notification", "global-headers", "partial"}


def has_attachment(part, depth=0):
    """README's rule: a part that is not text, a text part or attached message with Content-Disposition:
    attachment or a file name; not the parts of multipart/encrypted, nor what follows the signed part of
    multipart/signed."""
    if depth > 7:
        return False
    ctype = part.get_content_type()
    named = part.get_content_disposition() == "attachment" or bool(part.get_filename() or part.get_param("name"))
    if ctype == "message/rfc822":
        inner = part.get_payload()
        return named or any(has_attachment(m, depth + 1) for m in (inner if isinstance(inner, list) else []))
    if part.is_multipart():
        if ctype == "multipart/encrypted":
            return False
        kids = part.get_payload()
        if ctype == "multipart/signed":
            kids = kids[:1]
        return any(has_attachment(k, depth + 1) for k in kids)
    main, sub = ctype.split("/", 1)
    texty = main == "text" or (main == "message" and sub in TEXTY_MESSAGES)
    return not texty or named


def has_phrase(tokens, phrase):
    p = words(phrase)
    n = len(p)
    return any(tokens[i:i + n] == p for i in range(len(tokens) - n + 1))


def decoded(value):
    try:
        return str(make_header(decode_header(value)))
    except Exception:
        return value or ""


class Msg:
    def __init__(self, raw, now):
        crlf = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        self.key = hashlib.sha256(crlf).hexdigest()
        self.size = len(crlf)
        m = email.message_from_bytes(raw, policy=email.policy.compat32)
        self.frm = addresses(m, "From")
        self.to = addresses(m, "To")
        self.cc = addresses(m, "Cc")
        self.bcc = addresses(m, "Bcc")
        self.subject = words(decoded(m.get("Subject", "")))
        body = m.get_payload(decode=True) if not m.is_multipart() else b""
        self.body = words((body or b"").decode("utf-8", "replace"))
        self.text = self.subject + ["\x00"] + self.body  # subject and body never join in a phrase
        self.names = address_words(m, ("From", "To", "Cc", "Bcc"))
        self.name_words = {w for seq in self.names for w in seq}
        self.stems = set(STEM.stemWords(self.subject + self.body))
        self.attachment = has_attachment(m)
        self.date = now
        try:
            d = email.utils.parsedate_tz(m.get("Date", ""))
            if d is not None:
                self.date = calendar.timegm(d[:9]) - (d[9] or 0)
        except Exception:
            pass
        self.accounts, self.folders = set(), set()


def day(s):
    return calendar.timegm(tuple(int(x) for x in s.split("-")) + (0, 0, 0, 0, 0, 0))


def domain(addrs, d):
    return any(a.endswith("@" + d) for a in addrs)


def free(m, word):
    """A free word: its stem in the subject or body, or the word itself among names and address words."""
    return STEM.stemWord(word) in m.stems or word in m.name_words


def free_phrase(m, phrase):
    """A free phrase: in the subject, the body, or one address's words."""
    return has_phrase(m.subject, phrase) or has_phrase(m.body, phrase) or any(has_phrase(s, phrase) for s in m.names)


def free_prefix(m, start):
    """A free trailing wildcard: any word of the subject, body, names or addresses starting so."""
    return any(w.startswith(start) for w in m.subject + m.body) or any(w.startswith(start) for w in m.name_words)


QUERIES = [
    ("from:susan.mara@enron.com", lambda m: "susan.mara@enron.com" in m.frm),
    ("from:vkaminski@aol.com", lambda m: "vkaminski@aol.com" in m.frm),
    ("from:@aol.com", lambda m: domain(m.frm, "aol.com")),
    ("from:@enron.com", lambda m: domain(m.frm, "enron.com")),
    ("to:@enron.com", lambda m: domain(m.to, "enron.com")),
    ("cc:@enron.com", lambda m: domain(m.cc, "enron.com")),
    ("bcc:@enron.com", lambda m: domain(m.bcc, "enron.com")),
    ("participants:jeff.dasovich@enron.com",
     lambda m: "jeff.dasovich@enron.com" in (m.frm | m.to | m.cc | m.bcc)),
    ('subject:"power"', lambda m: "power" in m.subject),
    ('subject:"energy crisis"', lambda m: has_phrase(m.subject, "energy crisis")),
    ('"natural gas"', lambda m: has_phrase(m.text, "natural gas")),
    ('"natural gas" -subject:"natural gas"',
     lambda m: has_phrase(m.text, "natural gas") and not has_phrase(m.subject, "natural gas")),
    ('"price cap" OR "price caps"', lambda m: has_phrase(m.text, "price cap") or has_phrase(m.text, "price caps")),
    ('from:@enron.com "california"', lambda m: domain(m.frm, "enron.com") and "california" in m.text),
    ("from:(@aol.com OR @yahoo.com)", lambda m: domain(m.frm, "aol.com") or domain(m.frm, "yahoo.com")),
    ("after:2001-05-01 before:2001-06-01", lambda m: day("2001-05-01") <= m.date < day("2001-06-01")),
    ("on:2001-05-15", lambda m: day("2001-05-15") <= m.date < day("2001-05-16")),
    ("after:2001-10-01T00:00-07:00", lambda m: m.date >= day("2001-10-01") + 7 * 3600),
    ("larger:20K", lambda m: m.size >= 20 * 1024),
    ("smaller:2K", lambda m: m.size < 2 * 1024),
    ("account:alice", lambda m: "alice" in m.accounts),
    ("folder:Projects", lambda m: "Projects" in m.folders),
    ("account:bob -from:@enron.com", lambda m: "bob" in m.accounts and not domain(m.frm, "enron.com")),
    ("NOT account:alice", lambda m: "alice" not in m.accounts),
    # free words find custodians' names in From, To, Cc and Bcc as well as in the text
    ("dasovich", lambda m: free(m, "dasovich")),
    ("kaminski", lambda m: free(m, "kaminski")),
    ("germany", lambda m: free(m, "germany")),
    ("enron", lambda m: free(m, "enron")),
    ("mara", lambda m: free(m, "mara")),
    ("dasovich -from:jeff.dasovich@enron.com", lambda m: free(m, "dasovich") and "jeff.dasovich@enron.com" not in m.frm),
    ("budget", lambda m: free(m, "budget")),
    ('"jeff dasovich"', lambda m: free_phrase(m, "jeff dasovich")),
    ('"conference call"', lambda m: free_phrase(m, "conference call")),
    # body: is the body (and attached text) only, never the subject
    ('body:"conference call"', lambda m: has_phrase(m.body, "conference call")),
    ('body:"natural gas"', lambda m: has_phrase(m.body, "natural gas")),
    ("body:dasovich", lambda m: STEM.stemWord("dasovich") in set(STEM.stemWords(m.body))),
    # trailing wildcards over the same words as free words
    ("dasov*", lambda m: free_prefix(m, "dasov")),
    ("enr*", lambda m: free_prefix(m, "enr")),
    ("kamin*", lambda m: free_prefix(m, "kamin")),
    ("has:attachment", lambda m: m.attachment),
    ("has:attachment -account:att", lambda m: m.attachment and "att" not in m.accounts),
    ("account:att -has:attachment", lambda m: not m.attachment and "att" in m.accounts),
]


def main():
    manifest, now = sys.argv[1], int(sys.argv[2])
    msgs = {}
    with open(manifest, encoding="utf-8") as f:
        for line in f:
            account, folder, path = line.rstrip("\n").split("\t")
            with open(path, "rb") as g:
                m = Msg(g.read(), now)
            m = msgs.setdefault(m.key, m)
            m.accounts.add(account)
            m.folders.add(folder)
    for q, pred in QUERIES:
        print("%s\t%d" % (q, sum(1 for m in msgs.values() if pred(m))))


if __name__ == "__main__":
    main()

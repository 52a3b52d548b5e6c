#!/usr/bin/env bash
# Real servers' quirks, imitated by scripted IMAP servers (tests/lib/scripted_imapd.py): names imap4d does not
# quote, Courier's EXAMINE without UIDNEXT, a Gmail-like server that drops \Noselect, 8-bit flags and names,
# FETCH answers that miss items, repeat UIDs or send two bodies for one, broken connections and throttling.
# Each time: every message the server holds is archived byte-exact (or recorded, never skipped), one bad
# folder costs only that folder, and status names it. The oracle is computed from the script alone.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"
. "$(dirname "$0")/lib/simap.sh"

t_tmpdir
D=$T_DIR
mv_setup "$D" "batch_messages = 4"
"$MV_PYTHON" - "$D" <<'PY'
import hashlib, json, os, sys
d = sys.argv[1]
# a long Message-ID that does not compress, so PostgreSQL's index on message_id refuses it (2704 bytes at most)
noise = "".join(hashlib.sha256(b"%d" % i).hexdigest() for i in range(100))

def msg(uid, subject, extra=None, size=0, **quirks):
    body = ("From: Sender %d <s%d@example.com>\r\nTo: r@example.com\r\nSubject: %s\r\nMessage-ID: <m%d.%s@example.com>\r\n"
            "Date: Mon, 1 Jan 2001 10:00:00 +0000\r\n%s\r\nbody of %s\r\n" % (uid, uid, subject, uid, abs(hash(subject)),
            extra or "", subject)) + "x" * size
    m = {"uid": uid, "body": body}
    m.update(quirks)
    return m

def write(name, script):
    with open(os.path.join(d, name + ".json"), "w") as f:
        json.dump(script, f)

# GNU Mailutils imap4d: STATUS echoes names unquoted; no LIST-STATUS; 8-bit flags; names in modified UTF-7
write("imap4d", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN LITERAL+", "users": {"u": "pw"},
    "quirks": {"status_name_raw": True},
    "mailboxes": [
        {"name": "INBOX", "uidvalidity": 5, "messages": [msg(1, "one", flags=["\\Seen", "$Label\u00e9"]), msg(2, "two")]},
        {"name": "Quote\"d", "uidvalidity": 6, "messages": [msg(1, "quoted name"), msg(2, "quoted again")]},
        {"name": "Work/Projects/Q3 2001", "uidvalidity": 7, "messages": [msg(3, "q3"), msg(9, "q3 later")]},
        {"name": "B&APw-cher", "uidvalidity": 8, "messages": [msg(1, "books"), msg(2, "more books")]},
        {"name": "Caf\u00e9 \u00ff", "uidvalidity": 9, "messages": [msg(1, "8-bit name")]},
        {"name": "Tom &- Jerry", "uidvalidity": 10, "messages": [msg(1, "ampersand")]},
    ]})
# a Gmail-like server: SPECIAL-USE without LIST-EXTENDED, and \Noselect dropped when sent RETURN options
write("gmailish", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN SPECIAL-USE", "users": {"u": "pw"},
    "quirks": {"extended_list_drops_noselect": True},
    "mailboxes": [
        {"name": "INBOX", "uidvalidity": 1, "messages": [msg(1, "inbox")]},
        {"name": "[Gmail]", "noselect": True},
        {"name": "[Gmail]/All Mail", "uidvalidity": 2, "special_use": "\\All", "messages": [msg(1, "all"), msg(2, "all 2")]},
        {"name": "[Gmail]/Spam", "uidvalidity": 3, "special_use": "\\Junk", "messages": [msg(1, "spam")]},
        {"name": "Junk", "uidvalidity": 4, "messages": [msg(1, "junk")]},
        {"name": "G", "uidvalidity": 5, "messages": [msg(1, "a folder [Gmail] matched as a character class")]},
    ]})
# Courier: EXAMINE without [UIDNEXT]; STATUS has it
write("courier", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN", "users": {"u": "pw"},
    "quirks": {"examine_no_uidnext": True},
    "mailboxes": [
        {"name": "INBOX", "uidvalidity": 11, "messages": [msg(1, "c1"), msg(2, "c2")]},
        {"name": "INBOX.Sent", "uidvalidity": 12, "messages": [msg(1, "c3")]},
    ]})
# FETCH answers that miss items, repeat and reorder UIDs, send two bodies for one UID, or do not parse
write("hostile", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN LIST-EXTENDED LIST-STATUS", "users": {"u": "pw"},
    "quirks": {"fetch_reverse": True, "fetch_uid_repeat": True},
    "mailboxes": [
        {"name": "INBOX", "uidvalidity": 21, "messages": [
            msg(1, "no size at first", omit_size_times=1),
            msg(2, "no body at first", omit_body_times=1),
            msg(3, "nothing at first", omit_all_times=1),
            msg(4, "unreadable at first", malformed_fetch_times=1),
            msg(5, "two bodies", duplicate_body="Subject: the other body\r\n\r\nsecond\r\n"),
            msg(6, "never sent", omit_body_times=1000),
            msg(7, "seven"),
            msg(8, "big", size=20000),
            msg(9, "last"),
            msg(10, "an INTERNALDATE that is no date", internaldate="31-Feb-2001 10:00:00 +0000")]},
        {"name": "Headers", "uidvalidity": 22, "messages": [
            {"uid": 1, "body": "Message-ID: <%s@example.com>\r\nSubject: a Message-ID longer than an index row\r\n\r\nx\r\n" % noise}]},
    ]})
# a folder whose EXAMINE the server refuses once, one that breaks the connection once, and the rest
write("flaky", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN", "users": {"u": "pw"},
    "mailboxes": [
        {"name": "A", "uidvalidity": 31, "messages": [msg(1, "a")]},
        {"name": "Broken", "uidvalidity": 32, "messages": [msg(1, "b")]},
        {"name": "Drop", "uidvalidity": 33, "messages": [msg(1, "d")]},
        {"name": "Z", "uidvalidity": 34, "messages": [msg(1, "z"), msg(2, "z2")]},
    ],
    "rules": [
        {"match": "^EXAMINE \"Broken\"", "times": 1, "replace": ["{tag} NO [CANNOT] Mailbox is locked"]},
        {"match": "^EXAMINE \"Drop\"", "times": 1, "replace": ["* 1 EXISTS"], "close": True},
    ]})
# text in no known charset, numbers out of range, an EXAMINE without EXISTS
def examine(uv, extra):
    return ["* FLAGS (\\Seen)", "* OK [UIDVALIDITY %d] ok" % uv] + extra + ["{tag} OK [READ-ONLY] done"]
write("odd", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN", "users": {"u": "pw"},
    "mailboxes": [
        {"name": "Latin", "uidvalidity": 41, "messages": [msg(1, "l")]},
        {"name": "Huge", "uidvalidity": 42, "messages": [msg(1, "h1"), msg(2, "h2")]},
        {"name": "NoExists", "uidvalidity": 43, "messages": [msg(1, "n1"), msg(2, "n2")]},
        {"name": "Z", "uidvalidity": 44, "messages": [msg(1, "z")]},
    ],
    "rules": [
        {"match": "^EXAMINE \"Latin\"", "times": 1, "replace": ["{tag} NO Dossier verrouill\u00e9 (caf\u00e9)"]},
        {"match": "^EXAMINE \"Huge\"", "replace": examine(42, ["* 2 EXISTS", "* OK [UIDNEXT 99999999999999] far"])},
        {"match": "^UID FETCH 1:\\* \\(UID RFC822.SIZE\\)", "times": 1,
         "replace": ["* 1 FETCH (UID 1 RFC822.SIZE 18446744073709551000)", "* 2 FETCH (UID 2 RFC822.SIZE 9223372036854775999)",
                     "{tag} OK done"]},
        {"match": "^EXAMINE \"NoExists\"", "replace": examine(43, [])},
    ]})
# a UIDVALIDITY that changes and comes back, with other bytes at a UID archived before
flip_x = msg(1, "the first bytes")
flip_y = "Subject: other bytes at the same UID\r\n\r\ny\r\n"
def flip_fetch(body):
    return ["* 1 FETCH (UID 1 RFC822.SIZE %d INTERNALDATE \"01-Jan-2001 10:00:00 +0000\" FLAGS () BODY[] {%d}\r\n%s)"
            % (len(body), len(body), body), "{tag} OK done"]
write("flip", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN", "users": {"u": "pw"},
    "mailboxes": [{"name": "Flip", "uidvalidity": 50, "messages": [flip_x]}],
    "rules": [
        {"match": "^STATUS \"Flip\"", "times": 1, "replace": ["* STATUS \"Flip\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 50)", "{tag} OK done"]},
        {"match": "^STATUS \"Flip\"", "times": 1, "replace": ["* STATUS \"Flip\" (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 51)", "{tag} OK done"]},
        {"match": "^EXAMINE \"Flip\"", "times": 1, "replace": examine(50, ["* 1 EXISTS", "* OK [UIDNEXT 2] n"])},
        {"match": "^EXAMINE \"Flip\"", "times": 1, "replace": examine(51, ["* 1 EXISTS", "* OK [UIDNEXT 2] n"])},
        {"match": "^UID FETCH 1 \\(UID RFC822.SIZE INTERNALDATE FLAGS BODY", "times": 2, "replace": flip_fetch(flip_x["body"])},
        {"match": "^UID FETCH 1 \\(UID RFC822.SIZE INTERNALDATE FLAGS BODY", "times": 1, "replace": flip_fetch(flip_y)},
    ]})
# a throttling server with an absurd Suggested Backoff Time
write("throttle", {
    "capabilities": "IMAP4rev1 AUTH=PLAIN", "users": {"u": "pw"},
    "mailboxes": [{"name": "INBOX", "uidvalidity": 1, "messages": [msg(1, "t")]}],
    "rules": [{"match": "^(AUTHENTICATE|LOGIN)", "replace": [
        "{tag} NO [UNAVAILABLE] Request is throttled. Suggested Backoff Time: 999999999999 milliseconds"]}]})
PY

# add_simap NAME [ACCOUNT ADD OPTIONS...]: a scripted server and an account on it, named NAME
add_simap() {
	local name=$1
	shift
	simap_start "$D" "$name" "$D/$name.json" || return 1
	mv_pw "$D" "$name" pw u >/dev/null
	mvcli account add "$name" --host localhost --port "$SIMAP_PORT" --user u --secret "$name" "$@" >/dev/null
}
# expected NAME [--exclude P]...: the oracle's set; archived NAME: the archive's; both sorted alike
expected() { "$MV_PYTHON" "$MV_ROOT/tests/lib/simap_expected.py" "$D/$1.json" "${@:2}" | LC_ALL=C sort; }
archived() { mv_archived_set "$1" | LC_ALL=C sort; }
# poll NAME: one pass of mailvaultd over that account alone, log in $D/NAME.log; prints the exit status
poll() {
	local rc=0 others
	others=$(mv_sql "SELECT string_agg(name, ' ') FROM accounts WHERE name <> '$1' AND enabled")
	for o in $others; do mvcli account disable "$o" >/dev/null; done
	"$MV_BUILD/mailvaultd" -c "$MV_CONF" --once >"$D/$1.log" 2>&1 || rc=$?
	for o in $others; do mvcli account enable "$o" >/dev/null; done
	echo "$rc"
}

# --- imap4d: unquoted names in STATUS, modified UTF-7, 8-bit flags and names ---
add_simap imap4d
t_eq "imap4d: one pass archives everything (exit status 0)" 0 "$(poll imap4d)"
t_eq "imap4d: the archive holds exactly the server's messages, byte for byte" "$(expected imap4d)" "$(archived imap4d)"
t_contains "imap4d: the STATUS that does not parse costs nothing but an EXAMINE, and the log names the folder" \
	"$(cat "$D/imap4d.log")" "folder Quote\"d: the server's STATUS answer cannot be read"
t_eq "imap4d: folder names are shown in UTF-8; the server's bytes are kept for the protocol" \
	"Bücher|B&APw-cher" "$(mv_sql "SELECT name || '|' || convert_from(server_name, 'SQL_ASCII') FROM folders WHERE name LIKE 'B%cher'")"
t_eq "imap4d: a name that is not UTF-8 keeps its bytes, shown as \\xNN" "Caf\\xe9 \\xff|436166e920ff" \
	"$(mv_sql "SELECT name || '|' || encode(server_name, 'hex') FROM folders WHERE server_name = '\\x436166e920ff'")"
t_eq "imap4d: ls --folder takes the UTF-8 name" 2 "$(mvcli ls --folder 'Bücher' | wc -l)"
t_eq "imap4d: and not the modified UTF-7 one" 0 "$(mvcli ls --folder 'B&APw-cher' | wc -l)"
t_eq "imap4d: an 8-bit flag is stored, its byte written \\xNN" '{"\\Seen","$Label\\xe9"}' \
	"$(mv_sql "SELECT l.flags FROM locations l JOIN folders f ON f.id = l.folder_id WHERE f.name = 'INBOX' AND l.uid = 1 AND f.account_id = (SELECT id FROM accounts WHERE name = 'imap4d')")"
t_eq "imap4d: a second pass succeeds" 0 "$(poll imap4d)"
t_contains "imap4d: and skips the folders whose unquoted STATUS names were matched (Work/Projects/Q3 2001)" \
	"$(cat "$D/imap4d.log")" "account imap4d: 1 folder synced, 5 unchanged, 0 failed"
t_ok "imap4d: the server logged the session (so the next check is not vacuous)" grep -q 'UID FETCH' "$D/simap-imap4d/log"
t_eq "imap4d: the server was never asked to change anything" "" \
	"$(simap_log "$D" imap4d | grep -E '^[0-9]+ [^ ]+ (SELECT|STORE|UID STORE|EXPUNGE|UID EXPUNGE|COPY|MOVE|APPEND|DELETE)' || true)"

# --- a Gmail-like server: LIST RETURN only with LIST-EXTENDED, and LIST wildcards ---
add_simap gmailish --exclude '[Gmail]/Spam' --exclude 'Jun?'
t_eq "gmailish: one pass archives every selected folder (exit status 0)" 0 "$(poll gmailish)"
t_ok "gmailish: the server logged the LIST it was sent" grep -q ' LIST ' "$D/simap-gmailish/log"
t_eq "gmailish: no extended LIST was sent to a server without LIST-EXTENDED" "" \
	"$(simap_log "$D" gmailish | grep 'LIST .*RETURN' || true)"
t_eq "gmailish: [Gmail]/Spam is excluded as written, ? is literal, [Gmail] was never examined" \
	"$(expected gmailish --exclude '[Gmail]/Spam')" "$(archived gmailish)"
out=$(mvcli account list)
t_contains "gmailish: account list says what each pattern matched" "$out" "exclude [Gmail]/Spam         matches [Gmail]/Spam"
t_contains "gmailish: and which match nothing" "$out" "exclude Jun?                 matches no folder the server listed"
t_contains "gmailish: status counts the folders archived" "$(mvcli status)" "gmailish             enabled        4"

# --- Courier: no UIDNEXT in EXAMINE, so STATUS's serves to skip unchanged folders ---
add_simap courier
t_eq "courier: first pass" 0 "$(poll courier)"
t_eq "courier: the archive equals the server's set" "$(expected courier)" "$(archived courier)"
t_eq "courier: second pass" 0 "$(poll courier)"
t_contains "courier: unchanged folders are skipped although EXAMINE never gave UIDNEXT" "$(cat "$D/courier.log")" \
	"account courier: 0 folders synced, 2 unchanged, 0 failed"

# --- hostile FETCH answers: nothing skipped, everything archived or recorded ---
add_simap hostile
sed 's/^batch_messages = 4$/&\nmax_message_bytes = 8K/' "$MV_CONF" >"$D/small.conf"
rc=0
"$MV_BUILD/mailvaultd" -c "$D/small.conf" --once >"$D/hostile.log" 2>&1 || rc=$?
t_eq "hostile: the pass ends without a failed folder" 0 "$rc"
hostile_set=$(archived hostile)
exp=$(expected hostile | grep -vP '^INBOX\t21\t(6|8)\t')
t_eq "hostile: every message the server did send is archived once, byte for byte (all but UID 6 and the big UID 8)" \
	"$exp" "$hostile_set"
t_eq "hostile: the message with the huge Message-ID is kept without its parsed header fields, and says why" 1 \
	"$(mv_sql "SELECT count(*) FROM messages WHERE subject IS NULL AND header_error LIKE 'parsed header fields not stored, PostgreSQL refused them%'")"
errs() { mv_sql "SELECT e.uid || ' ' || e.kind || ' ' || e.retry || ' ' || EXISTS (SELECT 1 FROM locations l WHERE l.folder_id = e.folder_id AND l.uidvalidity = e.uidvalidity AND l.uid = e.uid) FROM ingest_errors e JOIN folders f ON f.id = e.folder_id WHERE f.account_id = (SELECT id FROM accounts WHERE name = 'hostile') ORDER BY e.uid, e.id"; }
t_eq "hostile: every problem is recorded (kind, asked for again, archived since): bodies sent at the second request, the second body of UID 5, the body never sent, the big one" \
	"$(printf '2 no-body true true\n4 no-body true true\n5 second-body false true\n6 no-body true false\n8 oversize true false')" "$(errs)"
t_contains "hostile: the message left out of a listing was asked for by its sequence number" "$(cat "$D/hostile.log")" \
	"the server's answer left out 1 message: asking for it by sequence number"
t_eq "hostile: the second body of UID 5 is stored as a message of its own, named by its record" 1 \
	"$(mv_sql "SELECT count(*) FROM ingest_errors e JOIN messages m ON m.sha256 = e.sha256 JOIN blobs b ON b.sha256 = m.sha256 WHERE e.kind = 'second-body' AND b.raw = convert_to(E'Subject: the other body\r\n\r\nsecond\r\n', 'UTF8') AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.message_serial = m.serial)")"
t_contains "hostile: and the record names both SHA-256s" "$(mv_sql "SELECT reason FROM ingest_errors WHERE kind = 'second-body'")" \
	"the first (sha256 $(mv_sql "SELECT encode(m.sha256, 'hex') FROM locations l JOIN messages m ON m.serial = l.message_serial JOIN folders f ON f.id = l.folder_id WHERE f.name = 'INBOX' AND l.uid = 5 AND l.uidvalidity = 21")) is archived at this UID, the second (sha256 $(printf 'Subject: the other body\r\n\r\nsecond\r\n' | sha256sum | cut -c1-64))"
out=$(mvcli status)
t_contains "hostile: status shows the message asked for again" "$out" "hostile/INBOX uid 6 ("
t_contains "hostile: with the reason" "$out" "bytes): the server's FETCH answer held no body; asked for again until it is archived or gone [asked for again at every poll]"
t_contains "hostile: and the ones archived after a second request" "$out" "hostile/INBOX uid 2"
t_eq "hostile: the folder's watermark moved past the recorded UIDs" 10 "$(mv_sql "SELECT last_uid FROM folders WHERE name = 'INBOX' AND uidvalidity = 21")"
t_eq "hostile: an INTERNALDATE that is no date (31-Feb) is kept as unknown; the message is archived" "" \
	"$(mv_sql "SELECT coalesce(l.internaldate::text, '') FROM locations l JOIN folders f ON f.id = l.folder_id WHERE f.name = 'INBOX' AND l.uidvalidity = 21 AND l.uid = 10")"
t_eq "hostile: (that location exists)" 1 "$(mv_sql "SELECT count(*) FROM locations l JOIN folders f ON f.id = l.folder_id WHERE f.name = 'INBOX' AND l.uidvalidity = 21 AND l.uid = 10")"
t_contains "hostile: status shows the second body as kept" "$(mvcli status)" "[both bodies archived; the UID names the first]"
t_eq "hostile: the next pass" 0 "$(poll hostile)"
t_contains "hostile: asks again for what is pending, the big message too now that the limit allows it" \
	"$(cat "$D/hostile.log")" "asking again for 2 UIDs recorded as not yet archived"
t_eq "hostile: the big message is archived once the limit allows it" "$(expected hostile | grep -vP '^INBOX\t21\t6\t')" "$(archived hostile)"
t_eq "hostile: only the message the server never sends is left, asked for again" \
	"$(printf '2 no-body true true\n4 no-body true true\n5 second-body false true\n6 no-body true false\n8 oversize true true')" "$(errs)"

# --- one folder failing costs that folder only; a dropped connection is opened again ---
add_simap flaky
t_eq "flaky: a pass where some folders failed exits with the distinct status 3" 3 "$(poll flaky)"
log=$(cat "$D/flaky.log")
t_contains "flaky: the refused folder is named" "$log" 'folder Broken: EXAMINE refused by the server: Mailbox is locked'
t_contains "flaky: after the connection broke, the poller connected again" "$log" "connected again to go on with the next folders"
t_contains "flaky: the log counts failed folders apart" "$log" "account flaky: 2 folders synced, 0 unchanged, 2 failed"
t_eq "flaky: the other folders are archived" "$(expected flaky | grep -vP '^(Broken|Drop)\t')" "$(archived flaky)"
out=$(mvcli status)
t_contains "flaky: status names each failed folder" "$out" "flaky/Broken: EXAMINE refused by the server: Mailbox is locked"
t_contains "flaky: the dropped one too" "$out" "flaky/Drop: EXAMINE failed"
t_ok "flaky: the account counts as polled (last success set)" test -n "$(mv_sql "SELECT last_success FROM accounts WHERE name = 'flaky' AND failures = 0")"
t_eq "flaky: next pass archives the rest" 0 "$(poll flaky)"
t_eq "flaky: the archive equals the server's set" "$(expected flaky)" "$(archived flaky)"
t_eq "flaky: no folder error is left" 0 "$(mv_sql "SELECT count(*) FROM folders WHERE last_error IS NOT NULL")"

# --- text in no known charset, numbers out of range, no EXISTS: the folder alone fails, nothing is lost ---
add_simap odd
t_eq "odd: a refusal in Latin-1 fails that folder only (exit status 3)" 3 "$(poll odd)"
t_contains "odd: its text is kept, the bytes that are not UTF-8 replaced" \
	"$(mv_sql "SELECT last_error FROM folders WHERE name = 'Latin'")" "EXAMINE refused by the server: Dossier verrouill"
t_contains "odd: status names it" "$(mvcli status)" "odd/Latin: EXAMINE refused by the server"
t_eq "odd: sizes past 2^63 are taken as unknown, UIDNEXT past 2^32 as absent, a missing EXISTS as unknown: all archived" \
	"$(expected odd | grep -vP '^Latin\t')" "$(archived odd)"
t_eq "odd: the next pass archives the rest" 0 "$(poll odd)"
t_eq "odd: the archive equals the server's set" "$(expected odd)" "$(archived odd)"

# --- a UIDVALIDITY that comes back, with other bytes at a UID archived before: both kept ---
add_simap flip
t_eq "flip: first pass (UIDVALIDITY 50)" 0 "$(poll flip)"
t_eq "flip: second pass (UIDVALIDITY 51)" 0 "$(poll flip)"
t_eq "flip: third pass (UIDVALIDITY 50 again, other bytes at UID 1)" 0 "$(poll flip)"
t_eq "flip: both bodies are archived" 2 \
	"$(mv_sql "SELECT count(*) FROM messages WHERE subject IN ('the first bytes', 'other bytes at the same UID')")"
t_eq "flip: UID 1 of generation 50 still names the first bytes" "the first bytes" \
	"$(mv_sql "SELECT m.subject FROM locations l JOIN messages m ON m.serial = l.message_serial JOIN folders f ON f.id = l.folder_id WHERE f.name = 'Flip' AND l.uidvalidity = 50 AND l.uid = 1")"
t_eq "flip: the other bytes are recorded, kept as a message of their own" "second-body" \
	"$(mv_sql "SELECT e.kind FROM ingest_errors e JOIN messages m ON m.sha256 = e.sha256 WHERE e.uid = 1 AND e.uidvalidity = 50")"
t_contains "flip: and status shows it" "$(mvcli status)" "[both bodies archived; the UID names the first]"

# --- throttling: a server's Suggested Backoff Time is honoured, at most an hour ---
add_simap throttle
t_eq "throttle: the refused login fails the account" 1 "$(poll throttle)"
t_eq "throttle: the next poll is at most an hour (plus jitter) away, not 31 years" t \
	"$(mv_sql "SELECT next_poll < now() + interval '73 minutes' AND next_poll > now() + interval '45 minutes' FROM accounts WHERE name = 'throttle'")"
t_done it-quirks

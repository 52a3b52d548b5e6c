#!/usr/bin/env bash
# Search end to end: archive real mail, index it with mailvault-indexer, and check that searches return
# the counts an independent oracle (tests/lib/expected_hits.py) computes from the raw files; that
# officers see only their accounts; that every look is audited; that the index survives a crash and
# drift is detected; and that the hard MIME corpus indexes without a crash, each message findable.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
# under ASan, reports go to files: mailvault-web runs in the background (checked at the end)
case "$MV_BUILD" in *asan*) MV_ASAN_LOG=$D/asan; export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$MV_ASAN_LOG" ;; esac
t_unpack enron-inbox.tar.xz "$D" enron_inbox/maildir/dasovich-j enron_inbox/maildir/kaminski-v \
	enron_inbox/maildir/germany-c
t_unpack mime-edge.tar.xz "$D"
E=$D/enron_inbox/maildir
: >"$D/manifest"
load() { # USER FOLDER FILES(stdin)
	local f
	while IFS= read -r f; do
		printf '%s\t%s\t%s\n' "$1" "$2" "$f" >>"$D/manifest"
		printf '%s\n' "$f"
	done | maildir_add "$D" "$1" "$2" -
}
dovecot_add_user "$D" alice alice-pw
dovecot_add_user "$D" bob bob-pw
dovecot_add_user "$D" edge edge-pw
find "$E/dasovich-j/inbox" -maxdepth 1 -type f | sort | head -700 | load alice INBOX
find "$E/kaminski-v/inbox" -type f | sort | head -300 | load alice Projects
find "$E/germany-c/inbox" -type f | sort | load bob INBOX
# the same messages in both accounts: one document, visible to officers of either
find "$E/dasovich-j/inbox" -maxdepth 1 -type f | sort | head -40 | load bob Projects
find "$D/mime_edge" "$D/notmuch" -type f | sort | maildir_add "$D" edge INBOX -
# has:attachment, case by case (README.md states the rule; the oracle applies it with Python's email package)
mkdir -p "$D/att"
"$MV_PYTHON" - "$D/att" <<'PY'
import os, sys
d = sys.argv[1]
H = "From: clerk@example.com\nTo: officer@example.com\nDate: Mon, 3 Sep 2001 10:00:00 +0000\nMIME-Version: 1.0\n"
def mp(ctype, parts, extra=""):
    b = "b0undary"
    return ('Content-Type: %s; boundary="%s"%s\n\n' % (ctype, b, extra) +
            "".join("--%s\n%s\n" % (b, p) for p in parts) + "--%s--\n" % b)
TEXT = "Content-Type: text/plain\n\nhello\n"
msgs = {
    "01-plain": "Content-Type: text/plain\n\njust text\n",
    "02-pdf": mp("multipart/mixed", [TEXT, 'Content-Type: application/pdf\nContent-Disposition: attachment; filename="r.pdf"\n'
                                     'Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n']),
    "03-inline-image": mp("multipart/related", [TEXT, "Content-Type: image/png\nContent-Transfer-Encoding: base64\n\niVBORw0KGgo=\n"]),
    "04-alternative": mp("multipart/alternative", [TEXT, "Content-Type: text/html\n\n<p>hello</p>\n"]),
    "05-text-attached": mp("multipart/mixed", [TEXT, 'Content-Type: text/plain\nContent-Disposition: attachment; filename="notes.txt"\n\nnotes\n']),
    "06-calendar": mp("multipart/mixed", [TEXT, "Content-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n"]),
    "07-text-named": mp("multipart/mixed", [TEXT, 'Content-Type: text/plain; name="list.csv"\n\na,b\n']),
    "08-message-attached": mp("multipart/mixed", [TEXT, 'Content-Type: message/rfc822\nContent-Disposition: attachment; filename="fwd.eml"\n\n'
                                                  "Subject: inner\n\ninner text\n"]),
    "09-message-inline": mp("multipart/mixed", [TEXT, "Content-Type: message/rfc822\n\nSubject: inner\n\ninner text\n"]),
    "10-signed": mp("multipart/signed", [TEXT, "Content-Type: application/pgp-signature\n\n-----BEGIN PGP SIGNATURE-----\n"],
                    '; protocol="application/pgp-signature"'),
    "11-encrypted": mp("multipart/encrypted", ["Content-Type: application/pgp-encrypted\n\nVersion: 1\n",
                                               "Content-Type: application/octet-stream\n\n-----BEGIN PGP MESSAGE-----\n"],
                       '; protocol="application/pgp-encrypted"'),
    "12-report": mp("multipart/report", [TEXT, "Content-Type: message/delivery-status\n\nReporting-MTA: dns; x\n",
                                         "Content-Type: text/rfc822-headers\n\nSubject: lost\n"], "; report-type=delivery-status"),
    "13-message-inline-with-pdf": mp("multipart/mixed", [TEXT, "Content-Type: message/rfc822\n\n" +
                                     mp("multipart/mixed", [TEXT, 'Content-Type: application/pdf; name="in.pdf"\n\n%PDF\n'])]),
}
for name, body in msgs.items():
    with open(os.path.join(d, name + ".eml"), "w") as f:
        f.write(H + "Subject: attachment case " + name + "\nMessage-ID: <" + name + "@att.example.com>\n" + body)
PY
dovecot_add_user "$D" att att-pw
find "$D/att" -type f | sort | load att INBOX

mv_setup "$D" ""
printf '[indexer]\nindex_path = %s/index\nshards = 2\n' "$D" >>"$MV_CONF"
mvcli account add alice --host localhost --port "$DOVECOT_IMAPS_PORT" --user alice --secret "$(mv_pw "$D" alice alice-pw)" >/dev/null
mvcli account add bob --host localhost --port "$DOVECOT_IMAPS_PORT" --user bob --secret "$(mv_pw "$D" bob bob-pw)" >/dev/null
mvcli account add att --host localhost --port "$DOVECOT_IMAPS_PORT" --user att --secret "$(mv_pw "$D" att att-pw)" >/dev/null
t_ok "the Enron mailboxes are archived" mvd --once
now=$(date +%s)
IDX=$MV_BUILD/mailvault-indexer

# --- indexing: killed part-way, restarted, consistent ---
"$IDX" -c "$MV_CONF" --once >"$D/indexer.log" 2>&1 &
pid=$!
# the kill lands once the indexer has opened its shards and is at work, before it could finish
for ((i = 0; i < 100; i++)); do grep -q 'one writer thread each' "$D/indexer.log" && break; sleep 0.05; done
sleep 0.2
kill -KILL "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
t_contains "the indexer had started when it was killed" "$(cat "$D/indexer.log")" "one writer thread each"
t_eq "and had not finished: the kill landed mid-run" "" "$(grep -o 'indexed [0-9]* messages in' "$D/indexer.log")"
t_ok "nothing was marked indexed that its kill lost" test "$(mv_sql 'SELECT count(*) FROM messages WHERE indexed_at IS NOT NULL')" -lt \
	"$(mv_sql 'SELECT count(*) FROM messages')"
t_ok "the indexer completes after a kill -9" "$IDX" -c "$MV_CONF" --once
total=$(mv_sql 'SELECT count(*) FROM messages')
t_eq "every message is indexed" "$total" "$(mv_sql 'SELECT count(*) FROM messages WHERE indexed_at IS NOT NULL')"
t_contains "index verify finds no drift" "$(mvcli index verify)" "$total messages indexed and present, 0 not yet indexed, 0 missing, 0 extra"
t_contains "status reports the index" "$(mvcli status)" "index: indexed $total of $total"

# --- search counts equal the independent oracle ---
"$MV_PYTHON" "$MV_ROOT/tests/lib/expected_hits.py" "$D/manifest" "$now" >"$D/expected"
t_eq "the oracle covers the fixed query set" 42 "$(wc -l <"$D/expected")"
sed 's/^/# oracle: /' "$D/expected"
while IFS=$'\t' read -r query expected; do
	t_eq "search --count $query" "$expected" "$(mvcli search --count "$query" 2>&1)"
done <"$D/expected"
t_ok "the queries are not vacuous (most match something)" \
	test "$(awk -F'\t' '$2 > 0' "$D/expected" | wc -l)" -ge 20

# --- results, sorting and paging ---
json=$(mvcli search --json --limit 5 --sort date 'from:@enron.com "california"')
t_eq "--json --limit 5 gives 5 objects with the documented fields" \
	"5 ['account', 'cc', 'date', 'folder', 'from', 'serial', 'sha256', 'size', 'subject', 'to']" \
	"$("$MV_PYTHON" -c 'import json,sys; r=[json.loads(l) for l in sys.stdin]; print(len(r), sorted(r[0]))' <<<"$json")"
t_eq "--sort date is oldest first" "sorted" "$("$MV_PYTHON" -c 'import json,sys
d=[json.loads(l)["date"] for l in sys.stdin]; print("sorted" if d == sorted(d) else d)' <<<"$json")"
page1=$(mvcli search --limit 3 --sort -date 'from:@enron.com' 2>/dev/null | cut -f1)
page2=$(mvcli search --limit 3 --offset 3 --sort -date 'from:@enron.com' 2>/dev/null | cut -f1)
both=$(mvcli search --limit 6 --sort -date 'from:@enron.com' 2>/dev/null | cut -f1)
t_eq "--offset pages through the same order" "$both" "$(printf '%s\n%s' "$page1" "$page2")"
serial=$(mvcli search --limit 1 'subject:"power"' 2>/dev/null | cut -f1)
shown=$(mvcli show "$serial")
t_contains "show prints the stored fields" "$shown" "Subject"
t_contains "show prints the decoded body" "$shown" "$(mvcli show --raw "$serial" | tr -d '\r' | awk 'body && NF {print; exit} /^$/ {body=1}' | cut -c1-30)"

# --- hostile and malformed queries: a clear error, never a crash ---
for q in 'frm:jeff' 'subject:"unterminated' '(a OR b' 'a OR' 'after:2001-02-30' 'larger:12Q' "$(printf '(%.0s' {1..200})x"; do
	out=$(mvcli search --count "$q" 2>&1)
	rc=$?
	t_eq "malformed query [$q] exits 2 with a message" "2 yes" "$rc $([ -n "$out" ] && echo yes)"
done
t_contains "the error points at the problem" "$(mvcli search 'from:x frm:y' 2>&1)" "unknown field 'frm' at column 8"
t_eq "a wildcard that matches nothing is no error" 0 "$(mvcli search --count 'zzqqxxnotaword*' 2>&1)"

# --- officers see only their accounts: mailvault-web applies the scope; officers have no database login ---
# officers' Unix users run the mailvault command (a copy they can reach) against the service's socket
mkdir -p "$D/bin" && cp "$MV_BUILD/mailvault" "$D/bin/mailvault" && chmod 755 "$D/bin"
t_unix_user mvo_a && t_unix_user mvo_all && t_unix_user mvo_none
t_ok "officer_a may see alice" mvcli officer add officer_a --accounts alice --role legal --unix-user mvo_a
t_ok "officer_all may see everything" mvcli officer add officer_all --all --role auditor --unix-user mvo_all
t_contains "an officer for a missing Unix user is refused" "$(mvcli officer add ghost --all --unix-user nosuchuser 2>&1)" "no Unix user 'nosuchuser'"
t_contains "an officer for a missing account is refused" "$(mvcli officer add officer_b --accounts nope 2>&1)" "no account named 'nope'"
t_contains "a second officer for the same Unix user is refused" "$(mvcli officer add officer_c --all --unix-user mvo_a 2>&1)" "is another officer's"
as() { local who=$1; shift; runuser -u "mvo_${who#officer_}" -- env MAILVAULT_SOCKET="$MV_WEB_SOCKET" "$D/bin/mailvault" "$@"; }
alice_n=$(grep -P '^account:alice\t' "$D/expected" | cut -f2)
t_eq "officer_a counts only alice's messages" "$alice_n" "$(as officer_a search --count 'NOT account:nosuch')"
t_eq "officer_a sees nothing of bob's own folder" 0 "$(as officer_a search --count 'account:bob -account:alice')"
t_eq "officer_a finds the shared messages (they are also alice's)" 40 "$(as officer_a search --count 'account:bob account:alice')"
t_eq "officer_all counts everything" "$total" "$(as officer_all search --count 'NOT account:nosuch')"
# the oracle again, over alice's messages alone, against officer_a's counts (queries that name no account or
# folder: a message alice and bob share carries bob's folder names too)
awk -F'\t' '$1 == "alice"' "$D/manifest" >"$D/manifest.alice"
"$MV_PYTHON" "$MV_ROOT/tests/lib/expected_hits.py" "$D/manifest.alice" "$now" | grep -Ev 'account:|folder:' >"$D/expected.alice"
while IFS=$'\t' read -r query expected; do
	t_eq "officer_a: search --count $query" "$expected" "$(as officer_a search --count "$query" 2>&1)"
done <"$D/expected.alice"
bob_only=$(mv_sql "SELECT min(l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id
  WHERE a.name = 'bob' AND l.message_serial NOT IN (SELECT l2.message_serial FROM locations l2 JOIN folders f2 ON f2.id = l2.folder_id JOIN accounts a2 ON a2.id = f2.account_id WHERE a2.name = 'alice')")
missing=$(( $(mv_sql "SELECT max(serial) FROM messages") + 1000 ))
t_eq "officer_a asks for a serial that does not exist" \
	"mailvault: no message with serial $missing" "$(as officer_a show "$missing" 2>&1)"
t_eq "bob's message, guessed, gets the same words" "mailvault: no message with serial $bob_only" "$(as officer_a show "$bob_only" 2>&1)"
t_contains "nor its raw bytes" "$(as officer_a show --raw "$bob_only" 2>&1)" "no message with serial $bob_only"
t_ok "officer_all can show it" as officer_all show "$bob_only"
t_eq "officer_a's JSON results name only alice" "alice" \
	"$(as officer_a search --json --limit 100 'from:@enron.com' | "$MV_PYTHON" -c 'import json,sys; print(",".join(sorted({json.loads(l)["account"] for l in sys.stdin})))')"
t_fail "an officer's Unix user cannot run administration (ls reads the database as its owner)" as officer_a ls
t_contains "a Unix user that is no officer's cannot search" "$(as officer_none search --count 'from:@enron.com' 2>&1)" "not an enabled officer"
t_eq "no database role exists for an officer or their Unix user" 0 \
	"$(mv_sql "SELECT count(*) FROM pg_roles WHERE rolname IN ('officer_a', 'officer_all', 'mvo_a', 'mvo_all')")"
t_fail "an officer's Unix user cannot log in to PostgreSQL" runuser -u mvo_a -- psql -X "$MV_CONNINFO user=mvo_a" -c 'SELECT 1'
t_fail "nor read the index, which holds every message's text" runuser -u mvo_a -- ls "$D/index"
t_fail "nor any shard file" runuser -u mvo_a -- cat "$(find "$D/index" -type f | head -1)"
t_eq "the index is the indexer's alone (no access for others)" "0" \
	"$(find "$D/index" -perm /o=rwx | wc -l)"

# --- every look is audited, with who, what, the scope and the count ---
t_eq "officer_a's searches and counts are audited with their scope" "$(( 4 + $(wc -l <"$D/expected.alice") ))" \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE actor = 'officer_a' AND action IN ('search', 'count') AND details->'scope' = '[\"alice\"]'")"
t_eq "officer_a's refused show attempts are audited, missing and out of scope alike" "3" \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE actor = 'officer_a' AND action = 'show' AND target IN ('$bob_only', '$missing') AND details->>'found' = 'false'")"
t_eq "the recorded count is the count the officer saw" "$alice_n" \
	"$(mv_sql "SELECT details->>'count' FROM audit_log WHERE actor = 'officer_a' AND action = 'count' AND target = 'NOT account:nosuch' ORDER BY seq LIMIT 1")"
t_eq "the rows say how the officer authenticated and from where" "unix-user mvo_a unix:mvo_a mv_web" \
	"$(mv_sql "SELECT DISTINCT via || ' ' || client || ' ' || recorded_by FROM audit_log WHERE actor = 'officer_a'")"
t_eq "the audit chain links every row to the previous one" 0 \
	"$(mv_sql "SELECT count(*) FROM audit_log a JOIN audit_log p ON p.seq = a.seq - 1 WHERE a.prev_hash <> p.hash")"
# every hash recomputed outside the database (here in Python, in mailvault-web in C) from the row's stored
# fields: a row changed behind the triggers' back would not hash to what it holds
audit_rows() {
	mv_sql "SELECT json_agg(json_build_object('seq', seq, 'form', form, 'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),
	        'actor', actor, 'via', via, 'client', client, 'recorded_by', recorded_by, 'action', action, 'target', target,
	        'details', details::text, 'prev', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')) ORDER BY seq) FROM audit_log"
}
audit_verify() {
	"$MV_PYTHON" -c '
import hashlib, json, struct, sys
rows = json.load(sys.stdin)
def field(v):
    if v is None:
        return b"\xff" * 8
    b = v.encode()
    return struct.pack(">Q", len(b)) + b
prev, bad = "", []
for r in rows:
    if r["form"] == 1:
        data = "|".join([str(r["seq"]), r["at"], r["actor"], r["action"], r["target"] or "", r["details"]]).encode()
    else:
        data = b"mailvault-audit-2" + b"".join(field(v) for v in [str(r["seq"]), r["at"] + "Z", r["actor"], r["via"],
                r["client"], r["recorded_by"], r["action"], r["target"], r["details"]])
    if r["prev"] != prev or r["hash"] != hashlib.sha256(bytes.fromhex(prev) + data).hexdigest():
        bad.append(r["seq"])
    prev = r["hash"]
print(len(rows), "rows,", "broken at " + ",".join(map(str, bad)) if bad else "all verified")'
}
n_audit=$(mv_sql "SELECT count(*) FROM audit_log")
t_eq "every audit row's hash is recomputed independently and matches" "$n_audit rows, all verified" "$(audit_rows | audit_verify)"
t_eq "the recomputation finds a row changed behind the triggers' back" "$n_audit rows, broken at 2" \
	"$(audit_rows | "$MV_PYTHON" -c 'import json,sys; r=json.load(sys.stdin); r[1]["action"] += "x"; print(json.dumps(r))' | audit_verify)"
t_contains "audit verify (C, in the service) agrees" "$(mvcli audit verify)" "audit verify: all $((n_audit)) rows verify"
t_fail "an officer without the auditor role cannot verify the log" as officer_a audit verify
t_contains "and is told why" "$(as officer_a audit list 2>&1)" "the audit log is for the auditor and admin roles"
t_eq "the refusal is audited too" 2 "$(mv_sql "SELECT count(*) FROM audit_log WHERE actor = 'officer_a' AND action = 'denied'")"

# --- the service: scope changes apply at once, malformed requests, a PostgreSQL restart ---
mvcli officer set officer_a --accounts bob >/dev/null
bob_n=$(mv_sql "SELECT count(DISTINCT l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'bob'")
t_eq "a change of scope applies at once" "$bob_n" "$(as officer_a search --count 'NOT account:nosuch')"
mvcli officer set officer_a --accounts alice >/dev/null
t_eq "and back" "$alice_n" "$(as officer_a search --count 'NOT account:nosuch')"
mvcli officer disable officer_a >/dev/null
t_contains "a disabled officer is refused" "$(as officer_a search --count x 2>&1)" "not an enabled officer"
mvcli officer enable officer_a >/dev/null
"$MV_PYTHON" - "$MV_WEB_SOCKET" <<'PY'
import socket, sys
for junk in (b"", b"\x00\x00\x00\x00", b"GET /api/v1/count?q=x HTTP/1.1\r\n" + b"X-A: " + b"a" * 100000 + b"\r\n\r\n",
             b"GARBAGE\r\n\r\n", b"GET /api/v1/count?q=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n"):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(junk)
    s.settimeout(5)
    try:
        s.recv(65536)
    except OSError:
        pass
    s.close()
PY
t_eq "the service survives malformed requests" "$alice_n" "$(as officer_a search --count 'NOT account:nosuch')"
pg_stop "$D" && pg_start "$D" >/dev/null
t_eq "a PostgreSQL restart costs no officer a failed search" "$alice_n" "$(as officer_a search --count 'NOT account:nosuch')"
t_eq "and the audit rows go on" "$alice_n" \
	"$(mv_sql "SELECT details->>'count' FROM audit_log WHERE actor = 'officer_a' AND action = 'count' ORDER BY seq DESC LIMIT 1")"

# --- a message seen in a new place is re-indexed, so scope follows it ---
maildir_add "$D" alice Forwarded "$(find "$E/germany-c/inbox" -type f | sort | head -1)"
t_ok "the new location is archived" mvd --once
t_ok "the indexer catches up" "$IDX" -c "$MV_CONF" --once
t_eq "officer_a now finds that message of bob's in alice's new folder" 1 "$(as officer_a search --count 'folder:Forwarded')"

# --- drift is detected and repaired ---
cp -a "$D/index" "$D/index.old"
find "$E/kaminski-v/inbox" -type f | sort | sed -n 301,303p | load alice Later
t_ok "three more messages archived" mvd --once
t_ok "and indexed" "$IDX" -c "$MV_CONF" --once
rm -rf "$D/index" && mv "$D/index.old" "$D/index"
out=$(mvcli index verify)
t_fail "index verify fails when the index lost documents" mvcli index verify
t_contains "and says how many" "$out" "3 missing, 0 extra"
t_ok "index rebuild" mvcli index rebuild
t_ok "the indexer rebuilds" "$IDX" -c "$MV_CONF" --once
t_ok "index verify is clean again" mvcli index verify

# --- an index written by an earlier version is named by index verify, and a rebuild brings it up to date ---
t_eq "every shard carries this version's format mark" "2 2" \
	"$(for s in "$D"/index/shard-*; do xapian-metadata get "$s" mailvault.index-format; done | paste -sd' ')"
t_ok "a shard loses its mark, as one built before format marks" xapian-metadata set "$D/index/shard-1" mailvault.index-format ""
out=$(mvcli index verify)
t_eq "index verify fails for an index an earlier indexer wrote" 1 "$?"
t_contains "and says which shard, and what to do" "$out" "shard-1 was built by an earlier mailvault-indexer (index format 1, this version writes 2): run \`mailvault index rebuild\`"
t_ok "an ordinary pass does not claim the format" "$IDX" -c "$MV_CONF" --once
t_fail "so verify still says so" mvcli index verify
t_ok "index rebuild" mvcli index rebuild
t_ok "then the indexer re-indexes every message" "$IDX" -c "$MV_CONF" --once
t_ok "and index verify is clean: the shard is marked again" mvcli index verify

# --- the hard MIME corpus: indexed without a crash, every message findable by its Message-ID ---
mvcli account add edge --host localhost --port "$DOVECOT_IMAPS_PORT" --user edge --secret "$(mv_pw "$D" edge edge-pw)" >/dev/null
t_ok "the hard MIME corpus is archived" mvd --once
t_ok "and indexed" "$IDX" -c "$MV_CONF" --once
t_ok "index verify is clean" mvcli index verify
missing=0 checked=0
while IFS= read -r id; do
	checked=$((checked + 1))
	n=$(mvcli search --count "msgid:\"$(printf '%s' "$id" | sed 's/[\\"]/\\&/g')\"" 2>&1)
	[ "$n" = 1 ] || [ "$n" -gt 1 ] 2>/dev/null || { missing=$((missing + 1)); echo "# msgid [$id]: $n"; }
done < <(mv_sql "SELECT DISTINCT m.message_id FROM messages m JOIN locations l ON l.message_serial = m.serial JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'edge' AND m.message_id IS NOT NULL AND m.message_id !~ '[[:space:][:cntrl:]]'")
t_ok "hundreds of Message-IDs were checked ($checked)" test "$checked" -ge 300
t_eq "every message of the hard corpus is findable by its Message-ID" 0 "$missing"
if [ -n "${MV_ASAN_LOG:-}" ]; then
	t_eq "no sanitizer report from any process, mailvault-web included" "" "$(ls "$MV_ASAN_LOG".* 2>/dev/null)"
fi
t_done it-search

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
# under ASan, reports go to files: a search session's stderr is /dev/null (checked at the end)
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
	"5 ['account', 'date', 'folder', 'from', 'serial', 'sha256', 'subject', 'to']" \
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

# --- officers see only their accounts, in search, count and show ---
pg_psql "CREATE ROLE officer_a LOGIN; CREATE ROLE officer_all LOGIN; CREATE ROLE nobody_special LOGIN" >/dev/null
t_ok "officer_a may see alice" mvcli officer add officer_a --accounts alice
t_ok "officer_all may see everything" mvcli officer add officer_all --all
t_contains "an officer for a missing role is refused" "$(mvcli officer add ghost --all 2>&1)" "no PostgreSQL role 'ghost'"
t_contains "an officer for a missing account is refused" "$(mvcli officer add officer_a --accounts nope 2>&1)" "no account named 'nope'"
as() { local who=$1; shift; sed "s|^conninfo = .*|conninfo = $MV_CONNINFO user=$who|" "$MV_CONF" >"$D/$who.conf"; "$MV_BUILD/mailvault" -c "$D/$who.conf" "$@"; }
alice_n=$(grep -P '^account:alice\t' "$D/expected" | cut -f2)
t_eq "officer_a counts only alice's messages" "$alice_n" "$(as officer_a search --count 'NOT account:nosuch')"
t_eq "officer_a sees nothing of bob's own folder" 0 "$(as officer_a search --count 'account:bob -account:alice')"
t_eq "officer_a finds the shared messages (they are also alice's)" 40 "$(as officer_a search --count 'account:bob account:alice')"
t_eq "officer_all counts everything" "$total" "$(as officer_all search --count 'NOT account:nosuch')"
bob_only=$(mv_sql "SELECT min(l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id
  WHERE a.name = 'bob' AND l.message_serial NOT IN (SELECT l2.message_serial FROM locations l2 JOIN folders f2 ON f2.id = l2.folder_id JOIN accounts a2 ON a2.id = f2.account_id WHERE a2.name = 'alice')")
t_contains "officer_a cannot show bob's message by guessing its serial" "$(as officer_a show "$bob_only" 2>&1)" "no message with serial $bob_only"
t_contains "nor its raw bytes" "$(as officer_a show --raw "$bob_only" 2>&1)" "no message with serial $bob_only"
t_ok "officer_all can show it" as officer_all show "$bob_only"
t_eq "officer_a's JSON results name only alice" "alice" \
	"$(as officer_a search --json --limit 100 'from:@enron.com' | "$MV_PYTHON" -c 'import json,sys; print(",".join(sorted({json.loads(l)["account"] for l in sys.stdin})))')"
t_eq "officer_a's ls shows only alice's locations" "alice" "$(as officer_a ls | cut -f3 | sort -u | paste -sd,)"
t_fail "a login that is no officer cannot search" as nobody_special search --count 'from:@enron.com'
t_fail "an officer cannot write the audit log directly" \
	psql -X -v ON_ERROR_STOP=1 "$MV_CONNINFO user=officer_a" -c "INSERT INTO audit_log (seq, actor, action, prev_hash, hash) VALUES (999, 'x', 'x', '', '')"
t_eq "an officer reading tables directly sees no row of other accounts" "0 0 1" \
	"$(psql -X -At "$MV_CONNINFO user=officer_a" -c "SELECT (SELECT count(*) FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.name = 'bob'),
	   (SELECT count(*) FROM accounts WHERE name = 'bob'), (SELECT count(*) FROM accounts WHERE name = 'alice')" | tr '|' ' ')"

# --- every look is audited, with who, what, the scope and the count ---
t_eq "officer_a's searches and counts are audited with their scope" "4" \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE actor = 'officer_a' AND action IN ('search', 'count') AND details->'scope' = '[\"alice\"]'")"
t_eq "officer_a's refused show attempts are audited" "2" \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE actor = 'officer_a' AND action = 'show' AND target = '$bob_only' AND details->>'found' = 'false'")"
t_eq "the recorded count is the count the officer saw" "$alice_n" \
	"$(mv_sql "SELECT details->>'count' FROM audit_log WHERE actor = 'officer_a' AND action = 'count' AND target = 'NOT account:nosuch'")"
t_eq "the audit chain links every row to the previous one" 0 \
	"$(mv_sql "SELECT count(*) FROM audit_log a JOIN audit_log p ON p.seq = a.seq - 1 WHERE a.prev_hash <> p.hash")"
# every hash recomputed outside the database from the row's stored fields: a row changed behind the
# triggers' back would not hash to what it holds, nor to what the next row says came before it
audit_rows() {
	mv_sql "SELECT json_agg(json_build_object('seq', seq, 'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'),
	        'actor', actor, 'action', action, 'target', coalesce(target, ''), 'details', details::text,
	        'prev', encode(prev_hash, 'hex'), 'hash', encode(hash, 'hex')) ORDER BY seq) FROM audit_log"
}
audit_verify() {
	"$MV_PYTHON" -c '
import hashlib, json, sys
rows = json.load(sys.stdin)
prev, bad = "", []
for r in rows:
    text = "|".join([str(r["seq"]), r["at"], r["actor"], r["action"], r["target"], r["details"]])
    if r["prev"] != prev or r["hash"] != hashlib.sha256(bytes.fromhex(prev) + text.encode()).hexdigest():
        bad.append(r["seq"])
    prev = r["hash"]
print(len(rows), "rows,", "broken at " + ",".join(map(str, bad)) if bad else "all verified")'
}
n_audit=$(mv_sql "SELECT count(*) FROM audit_log")
t_eq "every audit row's hash is recomputed independently and matches" "$n_audit rows, all verified" "$(audit_rows | audit_verify)"
t_eq "the recomputation finds a row changed behind the triggers' back" "$n_audit rows, broken at 2" \
	"$(audit_rows | "$MV_PYTHON" -c 'import json,sys; r=json.load(sys.stdin); r[1]["target"] += "x"; print(json.dumps(r))' | audit_verify)"

# --- search sessions: a warm process per user and configuration, same answers, same audit ---
# sess_pid CONF: the pid of the session serving CONF, if one is running
sess_pid() { pgrep -f "^mailvault -c $1 session-agent\$"; }
# sess_wait CONF up|down: waits up to 10 s for the session to answer (up) or to be gone (down)
sess_wait() {
	local i
	for ((i = 0; i < 100; i++)); do
		if [ "$2" = up ]; then front "$1" search --count x >/dev/null 2>&1 && return 0
		else sess_pid "$1" >/dev/null || return 0; fi
		sleep 0.1
	done
	return 1
}
# a front end alone (no mailvault-cli beside it): whatever it answers, a session answered
mkdir -p "$D/frontonly"
cp "$MV_BUILD/mailvault" "$D/frontonly/mailvault"
front() { "$D/frontonly/mailvault" -c "$1" "${@:2}"; }
as officer_a search --count 'from:@enron.com' >/dev/null
SC=$D/officer_a.conf
t_ok "a search starts a session for the next one" sess_wait "$SC" up
sed 's/^\[indexer\]/[search]\nsession_idle = 0\n&/' "$SC" >"$D/nosession.conf"
t_eq "the session answers with the in-process count" \
	"$("$MV_BUILD/mailvault" -c "$D/nosession.conf" search --count 'NOT account:nosuch')" "$(front "$SC" search --count 'NOT account:nosuch')"
t_eq "and with the in-process results (--json, sorted by date)" \
	"$("$MV_BUILD/mailvault" -c "$D/nosession.conf" search --json --limit 30 --sort date 'subject:energy OR body:gas' | md5sum)" \
	"$(front "$SC" search --json --limit 30 --sort date 'subject:energy OR body:gas' | md5sum)"
alice_serial=$(mv_sql "SELECT min(l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'alice'")
t_eq "show --raw through the session is byte-exact" "$(mv_sql "SELECT encode(sha256, 'hex') FROM messages WHERE serial = $alice_serial")" \
	"$(front "$SC" show --raw "$alice_serial" | sha256sum | cut -d' ' -f1)"
t_contains "the session still refuses another account's message" "$(front "$SC" show "$bob_only" 2>&1)" "no message with serial $bob_only"
t_contains "a bad query gets the same error through the session" "$(front "$SC" search 'from:x frm:y' 2>&1)" "unknown field 'frm' at column 8"
t_eq "and the same exit status" 2 "$(front "$SC" search 'from:x frm:y' >/dev/null 2>&1; echo $?)"
before=$(mv_sql "SELECT count(*) FROM audit_log WHERE actor = 'officer_a'")
for q in 'from:@enron.com' 'subject:power' 'to:dasovich'; do front "$SC" search --count "$q" >/dev/null; done
t_eq "each search through the session is audited, as the officer" $((before + 3)) \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE actor = 'officer_a'")"
mvcli officer add officer_a --accounts bob >/dev/null
bob_n=$(mv_sql "SELECT count(DISTINCT l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'bob'")
t_eq "a change of scope applies to the running session at once" "$bob_n" "$(front "$SC" search --count 'NOT account:nosuch')"
mvcli officer add officer_a --accounts alice >/dev/null
t_eq "and back" "$alice_n" "$(front "$SC" search --count 'NOT account:nosuch')"
sed "s|^conninfo = .*|conninfo = $MV_CONNINFO user=officer_all|" "$SC" >"$D/other.conf"
t_fail "another configuration (another login) is not served by that session" front "$D/other.conf" search --count x
t_fail "nor the same one with another PG environment" env PGAPPNAME=other "$D/frontonly/mailvault" -c "$SC" search --count x
t_fail "another Unix user cannot reach the session's socket" runuser -u nobody -- "$MV_PYTHON" -c \
	"import socket,glob,sys; s=socket.socket(socket.AF_UNIX); s.connect(glob.glob(sys.argv[1] + '/mailvault/*.sock')[0])" "$XDG_RUNTIME_DIR"
"$MV_PYTHON" - "$XDG_RUNTIME_DIR" <<'PY'
import glob, socket, sys
for junk in (b"", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7fhello", b"\x05\x00\x00\x00abc"):
    for path in glob.glob(sys.argv[1] + "/mailvault/*.sock"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
        s.sendall(junk)
        s.close()
PY
t_eq "a session survives malformed requests" "$alice_n" "$(front "$SC" search --count 'NOT account:nosuch')"
# a session blocked on output nobody reads (a pager left open) must not hold the user's next search
( front "$SC" search --limit 2000 'NOT account:nosuch' 2>/dev/null | sleep 8 ) &
busy=$!
sleep 1
t_eq "a busy session does not hold up the next search (it runs in-process)" "$alice_n" \
	"$(timeout 5 "$MV_BUILD/mailvault" -c "$SC" search --count 'NOT account:nosuch')"
wait "$busy"
t_eq "and serves again once the reader is gone" "$alice_n" "$(front "$SC" search --count 'NOT account:nosuch')"
kill -KILL "$(sess_pid "$SC")"
t_eq "a killed session costs nothing: the search runs in-process" "$alice_n" "$(as officer_a search --count 'NOT account:nosuch')"
t_ok "and a new session starts" sess_wait "$SC" up
pg_stop "$D" && pg_start "$D" >/dev/null
t_ok "a session ends when PostgreSQL goes away" sess_wait "$SC" down
t_eq "and the next search still works" "$alice_n" "$(as officer_a search --count 'NOT account:nosuch')"
t_ok "session_idle = 0: no session" test -z "$(sess_pid "$D/nosession.conf")"
sed 's/^\[indexer\]/[search]\nsession_idle = 1\n&/' "$SC" >"$D/short.conf"
"$MV_BUILD/mailvault" -c "$D/short.conf" search --count x >/dev/null
sleep 0.5
t_ok "a session ends after session_idle seconds without a search" sess_wait "$D/short.conf" down

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
	t_eq "no sanitizer report from any process, sessions included" "" "$(ls "$MV_ASAN_LOG".* 2>/dev/null)"
fi
t_done it-search

#!/usr/bin/env bash
# The officers' service end to end: mailvault-web on loopback (plain HTTP, as behind a reverse proxy, and
# HTTPS), its JSON API and its socket, against a real archive. Logins with passwords and TOTP codes,
# sessions (cookie, CSRF, idle and absolute expiry, logout), API tokens (expiry, revocation), throttling
# per name and per address, X-Forwarded-For believed only from a trusted proxy; scopes and roles; one
# audit row per access, denied ones included, and a tampered row found by audit verify at its place;
# attachments with hostile names served safely; raw bytes exact.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
case "$MV_BUILD" in *asan*) MV_ASAN_LOG=$D/asan; export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$MV_ASAN_LOG" ;; esac
t_unpack enron-inbox.tar.xz "$D" enron_inbox/maildir/dasovich-j/inbox enron_inbox/maildir/germany-c/inbox
E=$D/enron_inbox/maildir
dovecot_add_user "$D" alice alice-pw
dovecot_add_user "$D" bob bob-pw
find "$E/dasovich-j/inbox" -maxdepth 1 -type f | sort | head -60 | maildir_add "$D" alice INBOX -
find "$E/germany-c/inbox" -maxdepth 1 -type f | sort | head -40 | maildir_add "$D" bob INBOX -
# a message whose attachments have names meant to escape: a path, a header injection, terminal escapes,
# a quote that would end the filename parameter
"$MV_PYTHON" - "$D/hostile.eml" <<'PY'
import base64, sys, urllib.parse
names = ["../../etc/passwd", "evil\r\nX-Injected: 1.txt", "\x1b]0;owned\x07.pdf", 'a"; filename=evil.exe', "résumé.pdf"]
parts = []
for i, n in enumerate(names):
    enc = urllib.parse.quote(n, safe="")   # RFC 2231: any byte, percent-encoded
    body = base64.b64encode(("attachment %d body\n" % i).encode() * 20).decode()
    parts.append("Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''%s\n"
                 "Content-Transfer-Encoding: base64\n\n%s\n" % (enc, body))
msg = ("From: mallory@example.com\nTo: alice@example.com\nSubject: hostile attachment names\n"
       "Date: Mon, 3 Sep 2001 10:00:00 +0000\nMessage-ID: <hostile@example.com>\nMIME-Version: 1.0\n"
       'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\nsee attached\n' +
       "".join("--b\n" + p for p in parts) + "--b--\n")
open(sys.argv[1], "w").write(msg)
PY
maildir_add "$D" alice INBOX "$D/hostile.eml"

mv_setup "$D" ""
read -r PORT TLS_PORT < <(mv_free_ports 2 | paste -sd' ')
printf '[indexer]\nindex_path = %s/index\nshards = 1\n[web]\nlisten = 127.0.0.1:%s\ntrusted_proxies = 127.0.0.2\n' \
	"$D" "$PORT" >>"$MV_CONF"
mvcli account add alice --host localhost --port "$DOVECOT_IMAPS_PORT" --user alice --secret "$(mv_pw "$D" alice alice-pw)" >/dev/null
mvcli account add bob --host localhost --port "$DOVECOT_IMAPS_PORT" --user bob --secret "$(mv_pw "$D" bob bob-pw)" >/dev/null
t_ok "the mailboxes are archived" mvd --once
t_ok "and indexed" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once
t_ok "mailvault-web starts" mv_web_start
URL=http://127.0.0.1:$PORT/api/v1

# --- officers ---
printf 'correct horse battery staple\n' >"$D/pw"
printf 'short\n' >"$D/weak"
t_contains "a weak password is refused" "$(mvcli officer add weak --all --password-file "$D/weak" 2>&1)" "at least 12 characters"
t_ok "jane (legal) sees alice, logs in with a password" mvcli officer add jane --accounts alice --role legal --password-file "$D/pw"
t_ok "audrey (auditor) sees everything" mvcli officer add audrey --all --role auditor --password-file "$D/pw"
t_contains "an unknown role is refused" "$(mvcli officer add x --all --role boss 2>&1)" "--role must be auditor, legal or admin"
t_contains "a name that is not a name is refused" "$(mvcli officer add 'a b' --all 2>&1)" "an officer's name may use"
TOKEN=$(mvcli officer token add jane --expires 1d --label ci 2>/dev/null)
t_ok "a token is shown once, in its documented shape" grep -qE '^mvt_[A-Za-z0-9_-]{43}$' <<<"$TOKEN"
t_eq "only its hash is stored" 0 "$(mv_sql "SELECT count(*) FROM api_tokens WHERE convert_to('$TOKEN', 'UTF8') = token_hash OR position(convert_to('$TOKEN', 'UTF8') in token_hash) > 0")"
t_eq "and the password as an Argon2id hash" "1" "$(mv_sql "SELECT count(*) FROM officers WHERE name = 'jane' AND password_hash LIKE '\$argon2id\$%'")"
t_contains "officer list says how each logs in" "$(mvcli officer list)" "jane                     legal    enabled   -            password,1 token(s)"
t_eq "no officer is a database role" 0 "$(mv_sql "SELECT count(*) FROM pg_roles WHERE rolname IN ('jane', 'audrey')")"

# api [curl options] PATH: the HTTP status, then the body, of one request
api() { local p=${*: -1}; curl -s -o "$D/body" -w '%{http_code}' "${@:1:$#-1}" "$URL$p"; }
body() { cat "$D/body"; }
jq_() { "$MV_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
audit_n() { mv_sql "SELECT count(*) FROM audit_log"; }

# --- tokens ---
alice_n=$(mv_sql "SELECT count(DISTINCT l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'alice'")
t_eq "a token counts within its officer's scope" "200 $alice_n" "$(api -H "Authorization: Bearer $TOKEN" "/count?q=NOT%20account:nosuch") $(body | jq_ 'd["count"]')"
for q in 'from:@enron.com' 'subject:power' 'dasovich' '"natural gas"' 'after:2001-05-01' 'has:attachment'; do
	enc=$("$MV_PYTHON" -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$q")
	t_eq "API count of [$q] equals the socket's for the same scope" "$(mvcli search --count "account:alice AND ($q)")" \
		"$(api -H "Authorization: Bearer $TOKEN" "/count?q=$enc" >/dev/null; body | jq_ 'd["count"]')"
done
t_eq "a malformed query is a 400 that names the column" "400 8" "$(api -H "Authorization: Bearer $TOKEN" "/count?q=from:x%20frm:y") $(body | jq_ 'd["column"]')"
t_eq "an unknown token is refused" 401 "$(api -H "Authorization: Bearer mvt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" /count?q=x)"
t_eq "a malformed one too" 401 "$(api -H "Authorization: Bearer x' OR 1=1 --" /count?q=x)"
t_eq "no credentials: 401" 401 "$(api /count?q=x)"
t_contains "with a JSON reason" "$(body)" '"error":"authentication required'
id=$(mv_sql "SELECT max(id) FROM api_tokens")
mv_sql "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $id" >/dev/null
t_eq "an expired token is refused" 401 "$(api -H "Authorization: Bearer $TOKEN" /count?q=x)"
mv_sql "UPDATE api_tokens SET expires_at = now() + interval '1 day' WHERE id = $id" >/dev/null
t_ok "token revoke" mvcli officer token revoke "$id"
t_eq "a revoked token is refused" 401 "$(api -H "Authorization: Bearer $TOKEN" /count?q=x)"
t_contains "token list shows it revoked, by whom" "$(mvcli officer token list jane)" "revoked"
t_eq "creation and revocation are audited" "token-add token-revoke" \
	"$(mv_sql "SELECT string_agg(action, ' ' ORDER BY seq) FROM audit_log WHERE action LIKE 'token-%' AND target = 'jane'")"
TOKEN=$(mvcli officer token add jane 2>/dev/null)

# --- scope, guessed serials and attachments: out of scope answers exactly as missing ---
bob_serial=$(mv_sql "SELECT min(l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'bob'")
hostile=$(mv_sql "SELECT serial FROM messages WHERE message_id = 'hostile@example.com'")
missing=$(( $(mv_sql "SELECT max(serial) FROM messages") + 7 ))
A=(-H "Authorization: Bearer $TOKEN")
t_eq "bob's message, guessed: 404" 404 "$(api "${A[@]}" "/messages/$bob_serial")"
b1=$(body | sed "s/$bob_serial/N/")
api "${A[@]}" "/messages/$missing" >/dev/null
t_eq "in the same words as a serial that does not exist" "$(body | sed "s/$missing/N/")" "$b1"
t_eq "its raw bytes: 404" 404 "$(api "${A[@]}" "/messages/$bob_serial/raw")"
t_eq "its attachment: 404" 404 "$(api "${A[@]}" "/messages/$bob_serial/attachments/1")"
t_eq "an attachment number past the last: 404" 404 "$(api "${A[@]}" "/messages/$hostile/attachments/6")"
t_eq "a path that is no route: 404" 404 "$(api "${A[@]}" "/messages/$hostile/../../../etc/passwd")"
t_eq "search results name only alice" "alice" \
	"$(api "${A[@]}" "/search?q=NOT%20account:nosuch&limit=1000" >/dev/null; body | jq_ '",".join(sorted({r["account"] for r in d["results"]}))')"
t_eq "search gives the total and the documented fields" "$alice_n account,cc,date,folder,from,serial,sha256,size,subject,to" \
	"$(body | jq_ 'str(d["total"]) + " " + ",".join(sorted(d["results"][0]))')"
t_eq "a message's view: headers, places, attachments, text" "hostile attachment names alice 5 see attached" \
	"$(api "${A[@]}" "/messages/$hostile" >/dev/null; body | jq_ 'd["subject"] + " " + d["places"][0]["account"] + " " + str(len(d["attachments"])) + " " + d["text"]')"
t_eq "raw bytes are exactly the stored bytes" "$(mv_sql "SELECT encode(sha256, 'hex') FROM messages WHERE serial = $hostile")" \
	"$(curl -s "${A[@]}" "$URL/messages/$hostile/raw" | sha256sum | cut -c1-64)"
t_contains "as message/rfc822" "$(curl -s -D - -o /dev/null "${A[@]}" "$URL/messages/$hostile/raw")" "Content-Type: message/rfc822"

# --- hostile attachment names: one header, no path, no control character, the bytes exact ---
for k in 1 2 3 4 5; do
	curl -s -D "$D/h$k" -o "$D/a$k" "${A[@]}" "$URL/messages/$hostile/attachments/$k"
done
want=$("$MV_PYTHON" - "$D/hostile.eml" <<'PY'
import email, hashlib, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"))
print(" ".join(hashlib.sha256(p.get_payload(decode=True)).hexdigest()[:16] for p in m.walk() if p.get_filename()))
PY
)
t_eq "every attachment's bytes are the decoded part" "$want" "$(for k in 1 2 3 4 5; do sha256sum "$D/a$k" | cut -c1-16; done | paste -sd' ')"
t_eq "a path becomes its last element" 'attachment; filename="passwd"; filename*=UTF-8'"''"'passwd' \
	"$(grep -i '^Content-Disposition' "$D/h1" | cut -d' ' -f2- | tr -d '\r')"
t_eq "a header injection stays inside the one header" "0 1" \
	"$(grep -ci '^X-Injected' "$D/h2") $(grep -ci '^Content-Disposition' "$D/h2")"
t_eq "no control character reaches a header" 0 "$(cat "$D"/h? | tr -d '\r\n' | LC_ALL=C grep -c '[[:cntrl:]]' || true)"
t_eq "a quote cannot end the filename parameter" 'attachment; filename="a___filename=evil.exe"' \
	"$(grep -i '^Content-Disposition' "$D/h4" | cut -d' ' -f2- | tr -d '\r' | sed 's/; filename\*=.*//')"
t_contains "the exact name travels percent-encoded" "$(grep -i '^Content-Disposition' "$D/h5")" "filename*=UTF-8''r%C3%A9sum%C3%A9.pdf"
t_eq "attachments are never rendered: octet-stream, nosniff" "2" \
	"$(grep -ciE '^(Content-Type: application/octet-stream|X-Content-Type-Options: nosniff)' "$D/h1")"

# --- passwords, sessions, CSRF ---
login() { # NAME PASSWORD [TOTP] [curl options...]
	local n=$1 p=$2 t=${3:-}
	shift 3 2>/dev/null || shift $#
	api -c "$D/jar" -H 'Content-Type: application/json' "$@" \
		--data "$("$MV_PYTHON" -c 'import json,sys; d={"name":sys.argv[1],"password":sys.argv[2]}
if sys.argv[3]: d["totp"]=sys.argv[3]
print(json.dumps(d))' "$n" "$p" "$t")" /login
}
before=$(audit_n)
t_eq "a wrong password: 401" 401 "$(login jane wrong-password-here)"
t_eq "an unknown name: the same answer" "401 $(body)" "$(login nobody wrong-password-here) $(body)"
t_eq "both are audited, with the name typed" "login-failed:jane login-failed:nobody" \
	"$(mv_sql "SELECT string_agg(action || ':' || target, ' ' ORDER BY seq) FROM audit_log WHERE seq > $before")"
t_eq "the right password: 200" 200 "$(login jane 'correct horse battery staple')"
CSRF=$(body | jq_ 'd["csrf"]')
cookie=$(curl -s -o /dev/null -D - -H 'Content-Type: application/json' \
	--data '{"name":"jane","password":"correct horse battery staple"}' "$URL/login" | grep -i '^Set-Cookie')
t_eq "the cookie is HttpOnly and SameSite=Strict (no Secure over plain HTTP from a loopback client)" "1 1 1 0" \
	"$(grep -c '#HttpOnly_127.0.0.1' "$D/jar") $(grep -c 'HttpOnly' <<<"$cookie") $(grep -c 'SameSite=Strict' <<<"$cookie") $(grep -c 'Secure' <<<"$cookie")"
t_eq "the session counts in scope" "200 $alice_n" "$(api -b "$D/jar" "/count?q=NOT%20account:nosuch") $(body | jq_ 'd["count"]')"
t_eq "me says who and how" "jane legal session (password) alice" \
	"$(api -b "$D/jar" /me >/dev/null; body | jq_ '" ".join([d["officer"], d["role"], d["via"], ",".join(d["accounts"])])')"
t_eq "logout without the CSRF token is refused" 401 "$(api -b "$D/jar" -X POST /logout)"
t_eq "with a wrong one too" 401 "$(api -b "$D/jar" -X POST -H "X-CSRF-Token: $CSRF-x" /logout)"
t_eq "the session still works after those" 200 "$(api -b "$D/jar" /count?q=x)"
t_eq "logout with it" 200 "$(api -b "$D/jar" -c "$D/jar" -X POST -H "X-CSRF-Token: $CSRF" /logout)"
login jane 'correct horse battery staple' >/dev/null
cp "$D/jar" "$D/jar.old"
api -b "$D/jar.old" -X POST -H "X-CSRF-Token: $(body | jq_ 'd["csrf"]')" /logout >/dev/null
t_eq "a logged-out session's cookie no longer works" 401 "$(api -b "$D/jar.old" /count?q=x)"
login jane 'correct horse battery staple' >/dev/null
mv_sql "UPDATE web_sessions SET last_seen_at = now() - interval '31 minutes' WHERE ended_at IS NULL" >/dev/null
t_eq "a session idle past session_idle is refused" 401 "$(api -b "$D/jar" /count?q=x)"
login jane 'correct horse battery staple' >/dev/null
mv_sql "UPDATE web_sessions SET expires_at = now() - interval '1 second' WHERE ended_at IS NULL" >/dev/null
t_eq "a session past session_max is refused, however active" 401 "$(api -b "$D/jar" /count?q=x)"
t_eq "sessions keep only hashes of cookie and CSRF token" 0 \
	"$(mv_sql "SELECT count(*) FROM web_sessions WHERE position(convert_to('$CSRF', 'UTF8') in csrf_hash) > 0")"

# --- TOTP: a code is needed, good once ---
uri=$(mvcli officer totp jane 2>/dev/null)
t_ok "officer totp shows an otpauth URI" grep -q '^otpauth://totp/mailvault:jane?secret=[A-Z2-7]*&issuer=mailvault' <<<"$uri"
t_contains "and refuses to replace a key without --reset" "$(mvcli officer totp jane 2>&1)" "--reset"
secret=$(sed 's/.*secret=\([A-Z2-7]*\).*/\1/' <<<"$uri")
code() { "$MV_PYTHON" - "$secret" "${1:-0}" <<'PY'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1] + "=" * (-len(sys.argv[1]) % 8))
step = int(time.time()) // 30 + int(sys.argv[2])
mac = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
off = mac[-1] & 15
print("%06d" % ((struct.unpack(">I", mac[off:off + 4])[0] & 0x7fffffff) % 1000000))
PY
}
t_eq "a password alone is no longer enough" 401 "$(login jane 'correct horse battery staple')"
t_eq "a wrong code is refused" 401 "$(login jane 'correct horse battery staple' 000000)"
c=$(code)
t_eq "the right code logs in" 200 "$(login jane 'correct horse battery staple' "$c")"
t_eq "and says so" "session (password+totp)" "$(api -b "$D/jar" /me >/dev/null; body | jq_ 'd["via"]')"
t_eq "the same code does not work twice" 401 "$(login jane 'correct horse battery staple' "$c")"
t_eq "nor the step before it" 401 "$(login jane 'correct horse battery staple' "$(code -1)")"
mv_sql "DELETE FROM login_failures" >/dev/null

# --- throttling, and X-Forwarded-For believed only from a trusted proxy ---
# from 127.0.0.2 (a trusted proxy) the client is the last untrusted address X-Forwarded-For names
for i in 1 2 3 4 5; do login audrey "wrong $i wrong $i" "" --interface 127.0.0.2 -H "X-Forwarded-For: 192.0.2.$i" >/dev/null; done
t_eq "after 5 failures for a name, even the right password is refused" 429 \
	"$(login audrey 'correct horse battery staple' "" --interface 127.0.0.2 -H 'X-Forwarded-For: 192.0.2.99')"
t_contains "with Retry-After" "$(curl -s -D - -o /dev/null --interface 127.0.0.2 -H 'X-Forwarded-For: 192.0.2.99' \
	-H 'Content-Type: application/json' --data '{"name":"audrey","password":"x"}' "$URL/login")" "Retry-After: 900"
t_eq "throttled attempts are audited" 2 "$(mv_sql "SELECT count(*) FROM audit_log WHERE action = 'login-throttled' AND target = 'audrey'")"
t_eq "the failures were recorded under the proxy's clients, not the proxy" "192.0.2.1 192.0.2.2 192.0.2.3 192.0.2.4 192.0.2.5" \
	"$(mv_sql "SELECT string_agg(client, ' ' ORDER BY seq) FROM audit_log WHERE action = 'login-failed' AND target = 'audrey'")"
t_eq "a trusted proxy's chain: the client is the last address before it" "200 198.51.100.7" \
	"$(api "${A[@]}" --interface 127.0.0.2 -H 'X-Forwarded-For: 203.0.113.9, 198.51.100.7' /count?q=x) $(mv_sql "SELECT client FROM audit_log ORDER BY seq DESC LIMIT 1")"
t_eq "a forged X-Forwarded-For from an untrusted peer is ignored" "200 127.0.0.1" \
	"$(api "${A[@]}" -H 'X-Forwarded-For: 203.0.113.9' /count?q=x) $(mv_sql "SELECT client FROM audit_log ORDER BY seq DESC LIMIT 1")"
mvcli officer add mallet --all --password-file "$D/pw" >/dev/null
for i in $(seq 20); do login "guess$i" "wrong password $i" "" --interface 127.0.0.2 -H 'X-Forwarded-For: 192.0.2.200' >/dev/null; done
t_eq "after 20 failures from one address, any name is refused from it" 429 \
	"$(login mallet 'correct horse battery staple' "" --interface 127.0.0.2 -H 'X-Forwarded-For: 192.0.2.200')"
t_eq "while another address still logs in" 200 \
	"$(login mallet 'correct horse battery staple' "" --interface 127.0.0.2 -H 'X-Forwarded-For: 192.0.2.201')"
t_eq "a proxy that says HTTPS gets a Secure cookie" 1 \
	"$(curl -s -o /dev/null -D - --interface 127.0.0.2 -H 'X-Forwarded-Proto: https' -H 'Content-Type: application/json' \
	   --data '{"name":"mallet","password":"correct horse battery staple"}' "$URL/login" | grep -i '^Set-Cookie' | grep -c '; Secure')"

pids=()
for i in $(seq 12); do
	curl -s -o /dev/null --interface 127.0.0.2 -H "X-Forwarded-For: 192.0.2.$((120 + i))" -H 'Content-Type: application/json' \
		--data '{"name":"audrey-race","password":"wrong password here"}' "$URL/login" & pids+=($!)
done
wait "${pids[@]}"
t_ok "12 guesses at once: no more than 5 are checked, the others are throttled" \
	test "$(mv_sql "SELECT count(*) FROM audit_log WHERE target = 'audrey-race' AND action = 'login-failed'")" -le 5
t_eq "and every one of the 12 is in the audit log" 12 \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE target = 'audrey-race' AND action IN ('login-failed', 'login-throttled')")"

# --- roles ---
AT=$(mvcli officer token add audrey 2>/dev/null)
t_eq "legal may not read the audit log" 403 "$(api "${A[@]}" /audit)"
t_eq "an auditor may" 200 "$(api -H "Authorization: Bearer $AT" "/audit?actor=jane&limit=5")"
t_eq "rows come with who, how, from where, and what" "jane" "$(body | jq_ '",".join(sorted({r["actor"] for r in d["rows"]}))')"
t_eq "a malformed since is a 400" 400 "$(api -H "Authorization: Bearer $AT" "/audit?since=yesterday-ish")"

# --- exactly one audit row per access, denied ones included, written before the answer ---
before=$(audit_n)
api "${A[@]}" /count?q=x >/dev/null                    # 1 count
api "${A[@]}" "/search?q=x&limit=3" >/dev/null         # 2 search
api "${A[@]}" "/messages/$hostile" >/dev/null          # 3 show
api "${A[@]}" "/messages/$hostile/raw" >/dev/null      # 4 show (raw)
api "${A[@]}" "/messages/$hostile/attachments/1" >/dev/null  # 5 attachment
api "${A[@]}" "/messages/$bob_serial" >/dev/null       # 6 show, not found
api "${A[@]}" "/messages/$bob_serial/attachments/1" >/dev/null  # 7 attachment, not found
api "${A[@]}" /audit >/dev/null                        # 8 denied (role)
api /count?q=x >/dev/null                              # 9 denied (no credentials)
api -H "Authorization: Bearer $AT" /audit/verify >/dev/null  # 10 audit-verify
t_eq "ten accesses, ten audit rows" $((before + 10)) "$(audit_n)"
t_eq "in order, with their outcome" "count search show show attachment show attachment denied denied audit-verify" \
	"$(mv_sql "SELECT string_agg(action, ' ' ORDER BY seq) FROM audit_log WHERE seq > $before")"
t_eq "out-of-scope looks are recorded as not found" "false false" \
	"$(mv_sql "SELECT string_agg(details->>'found', ' ' ORDER BY seq) FROM audit_log WHERE seq > $before AND (target = '$bob_serial' OR target LIKE '$bob_serial/%')")"
t_eq "each row names the officer and the token" "jane token" \
	"$(mv_sql "SELECT DISTINCT actor || ' ' || split_part(via, ' ', 1) FROM audit_log WHERE seq > $before AND action = 'search'")"

# --- concurrent searches: every row durable, the chain whole ---
before=$(audit_n)
pids=()
for i in $(seq 16); do curl -s -o "$D/par$i" "${A[@]}" "$URL/count?q=dasovich%20$i" & pids+=($!); done
wait "${pids[@]}"
t_eq "16 concurrent searches: 16 answers" 16 "$(cat "$D"/par* | grep -c '"count"')"
t_eq "and 16 rows" $((before + 16)) "$(audit_n)"
t_eq "audit verify over the API: the chain is whole" "True" \
	"$(api -H "Authorization: Bearer $AT" /audit/verify >/dev/null; body | jq_ 'd["ok"]')"

# --- the service's database connections ended under it (a PostgreSQL restart, an administrator's
#     pg_terminate_backend): the next request connects again, prepares its statements again, and is audited ---
n_before=$(mvcli search --count dasovich)
a_before=$(curl -s "${A[@]}" "$URL/count?q=dasovich")
t_contains "(a count over the API to compare with)" "$a_before" "\"count\""
kill_conns() { mv_sql "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '$1'"; }
before=$(audit_n)
t_eq "the audit connection is ended" 1 "$(kill_conns 'mailvault-web audit')"
t_eq "the next count over the socket is answered as before" "$n_before" "$(mvcli search --count dasovich)"
t_eq "and audited, on a new audit connection" $((before + 1)) "$(audit_n)"
t_ok "the workers' connections are ended" test "$(kill_conns mailvault-web)" -ge 1
t_eq "the next count over the socket is answered as before" "$n_before" "$(mvcli search --count dasovich)"
t_eq "and the next over the API" "$a_before" "$(curl -s "${A[@]}" "$URL/count?q=dasovich")"
t_eq "each audited once" $((before + 3)) "$(audit_n)"

# --- the audit connection lost in the middle of a write: the row is written once, never twice. A second
#     service reaches PostgreSQL through a proxy that cuts its connection at a chosen moment ---
mkdir -p "$D/pgproxy"
"$MV_PYTHON" "$MV_ROOT/tests/lib/pg_cut_proxy.py" "$D/pgproxy" "$MV_PGHOST" "$MV_PGPORT" &
t_register_pid $!
for i in $(seq 50); do [ -S "$D/pgproxy/.s.PGSQL.$MV_PGPORT" ] && break; sleep 0.1; done
sed -e "s|^web_conninfo = .*|web_conninfo = host=$D/pgproxy port=$MV_PGPORT dbname=mailvault user=mv_web sslmode=disable gssencmode=disable|" \
	-e "s|^socket = .*|socket = $D/proxied.sock|" -e "s|^listen = .*|listen = 127.0.0.1:$(mv_free_ports 1)|" \
	"$MV_CONF" >"$D/proxied.conf"
"$MV_BUILD/mailvault-web" -c "$D/proxied.conf" >"$D/proxied.log" 2>&1 &
proxied_pid=$!
t_register_pid $proxied_pid
for i in $(seq 50); do [ -S "$D/proxied.sock" ] && break; sleep 0.1; done
pcount() { MAILVAULT_SOCKET=$D/proxied.sock "$MV_BUILD/mailvault" search --count dasovich; }
t_eq "a count through the proxied service" "$n_before" "$(pcount)"
echo after-commit >"$D/pgproxy/cut"
before=$(audit_n)
t_eq "its row committed as the connection was cut: the count is answered" "$n_before" "$(pcount)"
t_ok "(the proxy made the cut)" test -e "$D/pgproxy/cut.done"
t_eq "and the row is there once, not written again" $((before + 1)) "$(audit_n)"
t_contains "the service says why" "$(cat "$D/proxied.log")" "lost after its rows were committed: they are not written again"
rm -f "$D/pgproxy/cut.done"
echo before-execute >"$D/pgproxy/cut"
before=$(audit_n)
s0=$(mv_sql "SELECT max(seq) FROM audit_log")
t_eq "cut before the statement ran: the count is answered" "$n_before" "$(pcount)"
t_ok "(the proxy made the cut)" test -e "$D/pgproxy/cut.done"
t_eq "its row written on a new connection, once" $((before + 1)) "$(audit_n)"
t_eq "every row the service writes carries its request id" "0" \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE seq > $s0 AND coalesce(details->>'request', '') !~ '^[A-Za-z0-9_-]{43}$'")"
# cut while its statement waits for the chain's lock (another session holds it): the old server process
# would commit the row once it gets the lock; the service ends that process before it looks
rm -f "$D/pgproxy/cut.done"
before=$(audit_n)
ended() { grep -c "terminating connection due to administrator command" "$D/pg/log" || true; }
ended_before=$(ended)
mv_sql "SELECT pg_advisory_lock(727172), pg_sleep(3)" >/dev/null &
holder=$!
for i in $(seq 50); do
	[ "$(mv_sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 727172 AND granted")" = 1 ] && break
	sleep 0.1
done
echo after-send >"$D/pgproxy/cut"
t_eq "cut while its row waited for the chain's lock: the count is answered" "$n_before" "$(pcount)"
wait "$holder"
t_ok "(the proxy made the cut)" test -e "$D/pgproxy/cut.done"
t_eq "one row, not two" $((before + 1)) "$(audit_n)"
t_eq "(the old server process was ended, not waited for)" $((ended_before + 1)) "$(ended)"
t_contains "the chain still verifies" "$(mvcli audit verify)" "rows verify"
# the statements the service prepared on a connection vanish without the connection ending (a pooler, an
# administrator's DISCARD), or a table they read changes: they are prepared again
rm -f "$D/pgproxy/cut.done"
: >"$D/pgproxy/errors"
echo deallocate-all >"$D/pgproxy/cut"
before=$(audit_n)
t_eq "its prepared statements gone from under it: the count is answered" "$n_before" "$(pcount)"
t_ok "(the proxy ran DEALLOCATE ALL on its connection)" test -e "$D/pgproxy/cut.done"
t_contains "(the service met the missing statement: 26000)" "$(cat "$D/pgproxy/errors" 2>/dev/null)" "26000"
t_eq "and audited once" $((before + 1)) "$(audit_n)"
: >"$D/pgproxy/errors"
mv_sql "ALTER TABLE officers ALTER COLUMN role TYPE varchar(16)" >/dev/null
before=$(audit_n)
t_eq "a column its officer lookup returns changes type: the count is answered" "$n_before" "$(pcount)"
t_contains "(the service met the changed result type: 0A000)" "$(cat "$D/pgproxy/errors" 2>/dev/null)" "0A000"
t_eq "and audited once" $((before + 1)) "$(audit_n)"
mv_sql "ALTER TABLE officers ALTER COLUMN role TYPE text" >/dev/null
t_eq "and again once it changes back" "$n_before" "$(pcount)"
kill "$proxied_pid"

# --- a tampered row is found at its place ---
victim=$(mv_sql "SELECT min(seq) FROM audit_log WHERE actor = 'jane' AND action = 'search'")
mv_sql "ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable; UPDATE audit_log SET target = 'nothing to see' WHERE seq = $victim;
        ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable" >/dev/null
out=$(mvcli audit verify)
t_eq "audit verify fails" 1 "$?"
t_contains "and names the row the superuser changed" "$out" "row $victim does not verify: its hash is not the hash of its fields"
t_eq "so does the API" "False $victim" \
	"$(api -H "Authorization: Bearer $AT" /audit/verify >/dev/null; body | jq_ 'str(d["ok"]) + " " + str(d["broken_seq"])')"
mv_sql "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate" >/dev/null
mv_sql "ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable; DELETE FROM audit_log WHERE seq = $((victim + 1));
        ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable" >/dev/null
t_contains "a row taken out is named too" "$(mvcli audit verify --json)" '"ok":false'

# --- nobody without credentials can break or fill the audit log ---
before=$(audit_n)
t_eq "a path that is not UTF-8, without credentials: refused" 401 "$(api "/%FF%FE")"
t_eq "and audited, its bytes replaced" "denied 1" \
	"$(mv_sql "SELECT action, count(*) FROM audit_log WHERE seq > $before AND details->>'path' LIKE '%'||chr(65533)||'%' GROUP BY action" | tr '\t' ' ')"
t_eq "the officers' requests go on" 200 "$(api "${A[@]}" /count?q=x)"
before=$(audit_n)
flood() { curl -s -o /dev/null -w '%{http_code}\n' --interface 127.0.0.2 -H 'X-Forwarded-For: 198.51.100.66' "$URL/count?q=$1"; }
codes=$(for i in $(seq 105); do flood "x$i"; done | sort | uniq -c | awk '{ print $2 ":" $1 }' | paste -sd' ')
t_eq "an address without credentials gets 100 refusals, then 429" "401:100 429:5" "$codes"
t_eq "100 rows and one that says it is throttled, not 105" "100 1" \
	"$(mv_sql "SELECT count(*) FILTER (WHERE action = 'denied'), count(*) FILTER (WHERE action = 'denied-throttled') FROM audit_log WHERE seq > $before" | tr '\t' ' ')"
t_eq "another address is not affected" 401 "$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -H 'X-Forwarded-For: 198.51.100.67' "$URL/count?q=x")"
t_eq "a long path is kept to 256 bytes" 256 \
	"$(api "/$(printf 'a%.0s' $(seq 3000))" >/dev/null; mv_sql "SELECT octet_length(target) FROM audit_log ORDER BY seq DESC LIMIT 1")"

# --- the listener: plain HTTP only on loopback; HTTPS with a certificate ---
cp "$MV_CONF" "$D/exposed.conf"
sed -i "s/^listen = .*/listen = 0.0.0.0:$TLS_PORT/; s|^socket = .*|socket = $D/exposed.sock|" "$D/exposed.conf"
t_contains "plain HTTP off loopback is refused" "$("$MV_BUILD/mailvault-web" -c "$D/exposed.conf" 2>&1)" \
	"plain HTTP is only served on a loopback address"
cp "$MV_CONF" "$D/tls.conf"
sed -i "s/^listen = .*/listen = 127.0.0.1:$TLS_PORT\ntls_cert = ${D//\//\\/}\/dovecot\/tls\/server.pem\ntls_key = ${D//\//\\/}\/dovecot\/tls\/server.key/; s|^socket = .*|socket = $D/tls.sock|" "$D/tls.conf"
"$MV_BUILD/mailvault-web" -c "$D/tls.conf" >"$D/tls.log" 2>&1 &
t_register_pid $!
for i in $(seq 50); do [ -S "$D/tls.sock" ] && break; sleep 0.1; done
t_eq "HTTPS answers with a verified certificate" 200 \
	"$(curl -s -o /dev/null -w '%{http_code}' --cacert "$MV_CA_FILE" -H "Authorization: Bearer $AT" "https://localhost:$TLS_PORT/api/v1/count?q=x")"
t_eq "and its cookies are Secure" 1 \
	"$(curl -s -o /dev/null -D - --cacert "$MV_CA_FILE" -H 'Content-Type: application/json' --data '{"name":"mallet","password":"correct horse battery staple"}' \
	   "https://localhost:$TLS_PORT/api/v1/login" | grep -i '^Set-Cookie' | grep -c '; Secure')"
t_fail "plain HTTP to the HTTPS port gets nothing" curl -sf -o /dev/null "http://127.0.0.1:$TLS_PORT/api/v1/count?q=x"

# --- the per-user search sessions of earlier versions are gone; their setting only gets a warning ---
cp "$MV_CONF" "$D/old.conf" && printf '[search]\nsession_idle = 300\n' >>"$D/old.conf"
t_contains "[search] session_idle is accepted with a warning" "$("$MV_BUILD/mailvault" -c "$D/old.conf" status 2>&1 >/dev/null)" \
	"[search] session_idle no longer does anything"

if [ -n "${MV_ASAN_LOG:-}" ]; then
	mv_web_stop
	t_eq "no sanitizer report from any process" "" "$(ls "$MV_ASAN_LOG".* 2>/dev/null)"
fi
t_done it-web

#!/usr/bin/env bash
# Anchoring the audit chain outside the database: `mailvault audit anchor` records the chain's head in a
# file, time-stamped by an RFC 3161 authority (a local one: tests/lib/tsa_server.py around `openssl ts
# -reply`, with a throwaway CA); `audit verify --anchor` checks every token and has mailvault-web judge
# the chain and every anchor. As the PostgreSQL superuser (triggers disabled), a changed row, a removed
# row, a removed tail and a changed anchored head are each found, also when the chain was rewritten with
# fresh hashes so that it verifies on its own. Tokens against the wrong CA, edited anchor lines, replayed
# or garbled replies, malformed lines, plain HTTP off loopback and the legal role are all refused.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
case "$MV_BUILD" in *asan*) MV_ASAN_LOG=$D/asan; export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$MV_ASAN_LOG" ;; esac
mv_setup "$D" ""
t_ok "mailvault-web starts" mv_web_start
last_row() { mv_sql "SELECT seq || ' ' || encode(hash, 'hex') FROM audit_log ORDER BY seq DESC LIMIT 1"; }
audit_n() { mv_sql "SELECT count(*) FROM audit_log"; }
field() { "$MV_PYTHON" -c 'import json,sys; print(json.loads(sys.stdin.readlines()[int(sys.argv[2])-1])[sys.argv[1]])' "$@"; }
# rows to anchor: each verify writes one
for i in 1 2 3 4 5; do mvcli audit verify >/dev/null; done

# --- anchoring without a time stamp ---
t_denied "anchor without --file says to give one" "give --file FILE" mvcli audit anchor
t_ok "the refusal wrote no file" test ! -e "$D/anchors"
head_before=$(last_row)
t_ok "audit anchor --file appends the head" mvcli audit anchor --file "$D/anchors"
t_contains "and prints it" "$(cat "$_t_out")" "audit anchor: the chain's head is row ${head_before%% *}, hash ${head_before#* }"
t_eq "one line, with the seq and hash of the last row psql saw before" "$head_before" \
	"$(field seq 1 <"$D/anchors") $(field hash 1 <"$D/anchors")"
t_eq "the file is created with mode 0640" 640 "$(stat -c %a "$D/anchors")"
t_eq "the service wrote an audit-anchor row after the head, naming it" "$head_before" \
	"$(mv_sql "SELECT (details->>'head_seq') || ' ' || (details->>'head_hash') FROM audit_log WHERE action = 'audit-anchor' AND seq = ${head_before%% *} + 1")"
t_ok "audit verify --anchor passes" mvcli audit verify --anchor "$D/anchors"
t_contains "and says the anchor matches" "$(cat "$_t_out")" "all 1 anchor of $D/anchors match; the newest names row ${head_before%% *}"

# --- a local time-stamp authority with a throwaway CA (and a second CA that did not sign it) ---
mkdir -p "$D/pki"
mkca() { # NAME: a self-signed CA
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/pki/$1.key" -out "$D/pki/$1.pem" \
		-days 2 -subj "/CN=mailvault test $1" -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
}
mkca ca && mkca ca2
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$D/pki/tsa.key" -out "$D/pki/tsa.csr" \
	-subj "/CN=mailvault test TSA" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n' >"$D/pki/tsa.ext"
openssl x509 -req -in "$D/pki/tsa.csr" -CA "$D/pki/ca.pem" -CAkey "$D/pki/ca.key" -CAcreateserial -days 2 \
	-extfile "$D/pki/tsa.ext" -out "$D/pki/tsa.pem" 2>/dev/null
t_ok "the TSA certificate is for time stamping, issued by the CA" openssl verify -purpose timestampsign -CAfile "$D/pki/ca.pem" "$D/pki/tsa.pem"
"$MV_PYTHON" "$MV_ROOT/tests/lib/tsa_server.py" --dir "$D/tsa" --cert "$D/pki/tsa.pem" --key "$D/pki/tsa.key" \
	--chain "$D/pki/ca.pem" --port-file "$D/tsa.port" 2>"$D/tsa.log" &
t_register_pid $!
for i in $(seq 100); do [ -s "$D/tsa.port" ] && break; sleep 0.1; done
TSA=http://127.0.0.1:$(cat "$D/tsa.port")/tsr
CA=$D/pki/ca.pem
tsa_requests() { wc -l <"$D/tsa/requests.log" 2>/dev/null || echo 0; }

# --- anchoring with a time stamp ---
head_before=$(last_row)
t_ok "audit anchor --tsa --tsa-ca succeeds" mvcli audit anchor --file "$D/anchors" --tsa "$TSA" --tsa-ca "$CA"
t_contains "and says the token was verified" "$(cat "$_t_out")" "time-stamped by $TSA at "
t_contains "against the CA" "$(cat "$_t_out")" "(token signature and certificate chain verified against --tsa-ca)"
t_eq "the second line names the new head" "$head_before" "$(field seq 2 <"$D/anchors") $(field hash 2 <"$D/anchors")"
t_eq "with the authority, its time and a token" "$TSA yes yes" \
	"$(field tsa 2 <"$D/anchors") $(field tsa_time 2 <"$D/anchors" | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' && echo yes) $(field tst 2 <"$D/anchors" | grep -qE '^[A-Za-z0-9+/]{200,}=*$' && echo yes)"
# the token checked by OpenSSL's own command against the documented text: SHA-256 of
# "mailvault-audit-anchor\n<seq>\n<hash>\n"
field tst 2 <"$D/anchors" | base64 -d >"$D/token.der"
digest=$(printf 'mailvault-audit-anchor\n%s\n%s\n' "${head_before%% *}" "${head_before#* }" | sha256sum | cut -c1-64)
t_ok "openssl ts -verify accepts the token for the documented anchor text" \
	openssl ts -verify -digest "$digest" -token_in -in "$D/token.der" -CAfile "$CA"
t_eq "the token's time is the line's tsa_time" "$(field tsa_time 2 <"$D/anchors")" \
	"$(openssl ts -reply -token_in -in "$D/token.der" -token_out -text 2>/dev/null | sed -n 's/^Time stamp: //p' | xargs -I{} date -u -d '{}' +%Y-%m-%dT%H:%M:%SZ)"
t_ok "audit verify --anchor --tsa-ca passes" mvcli audit verify --anchor "$D/anchors" --tsa-ca "$CA"
t_contains "checking the token's signature and chain" "$(cat "$_t_out")" "1 time-stamp token verified: imprint, signature and certificate chain against $CA"
t_ok "without --tsa-ca it passes too" mvcli audit verify --anchor "$D/anchors"
t_contains "saying the tokens were checked for imprint only" "$(cat "$_t_out")" "checked for imprint only: their signatures were not verified (give --tsa-ca FILE)"
t_ok "anchoring again, with --json" mvcli audit anchor --file "$D/anchors" --tsa "$TSA" --tsa-ca "$CA" --json
t_eq "--json prints the line written, and where" "$(tail -n 1 "$D/anchors" | field hash 1) $D/anchors True" \
	"$(field hash 1 <"$_t_out") $(field file 1 <"$_t_out") $(field tsa_signature_checked 1 <"$_t_out")"
t_eq "three anchors" 3 "$(wc -l <"$D/anchors")"
H=$(tail -n 1 "$D/anchors" | field seq 1)
AT=$(tail -n 1 "$D/anchors" | field anchored_at 1)
t_ok "verify --anchor with three anchors passes" mvcli audit verify --anchor "$D/anchors" --tsa-ca "$CA"

# --- refusals before anything is asked of the authority ---
rows=$(audit_n) reqs=$(tsa_requests)
SECONDS=0
t_denied "an http:// authority off loopback is refused" "plain http:// is only accepted to a loopback address" \
	mvcli audit anchor --file "$D/anchors" --tsa "http://192.0.2.1:$(cat "$D/tsa.port")/tsr"
t_ok "at once, without contacting it (192.0.2.1 would take the 10 s connect timeout)" test "$SECONDS" -lt 5
t_eq "and before the service recorded an anchoring" "$rows" "$(audit_n)"
t_denied "a URL that is not http(s) is refused" "only https:// time-stamp authorities are accepted" \
	mvcli audit anchor --file "$D/anchors" --tsa "ftp://127.0.0.1/tsr"
t_denied "--tsa-ca alone is refused" "give --tsa URL too" mvcli audit anchor --file "$D/anchors" --tsa-ca "$CA"
t_eq "the authority was asked nothing" "$reqs" "$(tsa_requests)"
t_eq "and nothing was appended" 3 "$(wc -l <"$D/anchors")"

# --- refusals of what the authority answers: nothing that claims a time stamp is appended ---
t_denied "a token that does not verify against the given CA (another one) is refused" \
	"the time-stamp token does not verify against --tsa-ca $D/pki/ca2.pem" \
	mvcli audit anchor --file "$D/anchors" --tsa "$TSA" --tsa-ca "$D/pki/ca2.pem"
t_contains "saying nothing was appended" "$(cat "$_t_out")" "nothing was appended to $D/anchors"
t_contains "and why (OpenSSL's verify error)" "$(cat "$_t_out")" "(certificate verify error: Verify error:"
echo replay >"$D/tsa/mode"
t_denied "a replayed reply (another anchor's token) is refused" "the time-stamp token's imprint is not the anchor's" \
	mvcli audit anchor --file "$D/anchors" --tsa "$TSA" --tsa-ca "$CA"
echo other-nonce >"$D/tsa/mode"
t_denied "a reply to the same imprint with another nonce is refused" "does not carry the nonce of the request" \
	mvcli audit anchor --file "$D/anchors" --tsa "$TSA" --tsa-ca "$CA"
echo garbage >"$D/tsa/mode"
t_denied "a reply that is no TimeStampResp is refused" "reply is not a TimeStampResp" \
	mvcli audit anchor --file "$D/anchors" --tsa "$TSA"
rm -f "$D/tsa/mode"
t_denied "https:// to a server that speaks no TLS fails, with no fall-back to plain text" "cannot reach the time-stamp authority" \
	mvcli audit anchor --file "$D/anchors" --tsa "https://127.0.0.1:$(cat "$D/tsa.port")/tsr"
t_eq "none of these appended a line" 3 "$(wc -l <"$D/anchors")"

# --- roles: legal may not anchor, an auditor may ---
t_unix_user mva_legal && t_unix_user mva_aud
mvcli officer add lena --all --role legal --unix-user mva_legal >/dev/null
mvcli officer add audra --all --role auditor --unix-user mva_aud >/dev/null
# the officers' copy of the programs: mailvault, and mailvault-cli beside it, which runs the anchor commands
mkdir -p "$D/bin" "$D/aud" "$D/legal" && cp "$MV_BUILD/mailvault" "$MV_BUILD/mailvault-cli" "$D/bin/" &&
	chown mva_aud "$D/aud" && chown mva_legal "$D/legal"
as() { local u=$1; shift; runuser -u "$u" -- env MAILVAULT_SOCKET="$MV_WEB_SOCKET" ASAN_OPTIONS="${ASAN_OPTIONS:-}" "$D/bin/mailvault" "$@"; }
t_denied "an officer of role legal is refused anchoring" "audit anchor: the audit log is for the auditor and admin roles" \
	as mva_legal audit anchor --file "$D/legal/anchors"
t_eq "the refusal is audited" "denied /api/v1/audit/head legal" \
	"$(mv_sql "SELECT action || ' ' || target || ' ' || (details->>'role') FROM audit_log WHERE actor = 'lena' ORDER BY seq DESC LIMIT 1")"
t_eq "and nothing was appended to its file" 0 "$(wc -c <"$D/legal/anchors")"
cp "$D/anchors" "$D/legal/copy" && chmod 644 "$D/legal/copy"
t_denied "and verifying against anchors" "the audit log is for the auditor and admin roles" \
	as mva_legal audit verify --anchor "$D/legal/copy"
t_ok "an officer of role auditor anchors" as mva_aud audit anchor --file "$D/aud/anchors"
t_ok "and verifies" as mva_aud audit verify --anchor "$D/aud/anchors"

# --- the anchor file itself: malformed and edited lines ---
cp "$D/anchors" "$D/bad1" && echo 'not json' >>"$D/bad1"
t_denied "a malformed line is reported with its line number" "$D/bad1 line 4 is not an anchor: it is not a JSON object" \
	mvcli audit verify --anchor "$D/bad1"
sed '2s/"hash":"[0-9a-f]*"/"hash":"abc"/' "$D/anchors" >"$D/bad2"
t_denied "a line with a short hash names line 2" "$D/bad2 line 2 is not an anchor: its \"hash\" is not 64 lower-case hex digits" \
	mvcli audit verify --anchor "$D/bad2"
printf '\n' >"$D/bad3" && cat "$D/anchors" >>"$D/bad3"
t_denied "an empty line is reported too" "$D/bad3 line 1 is not an anchor: it is empty" mvcli audit verify --anchor "$D/bad3"
: >"$D/empty"
t_denied "a file without anchors proves nothing" "holds no anchors" mvcli audit verify --anchor "$D/empty"
# an edited hash: the line's token no longer time-stamps it, whatever the database says
h2=$(field hash 2 <"$D/anchors")
other=$(mv_sql "SELECT encode(hash, 'hex') FROM audit_log WHERE seq = 2")
sed "2s/$h2/$other/" "$D/anchors" >"$D/edited"
t_denied "an anchor line whose hash was edited fails its token check" \
	"$D/edited line 2 (row $(field seq 2 <"$D/anchors")): the time-stamp token's imprint is not the anchor's" \
	mvcli audit verify --anchor "$D/edited" --tsa-ca "$CA"
t_denied "also without --tsa-ca (the imprint is always checked)" "the time-stamp token's imprint is not the anchor's" \
	mvcli audit verify --anchor "$D/edited"
s2=$(field seq 2 <"$D/anchors")
sed "2s/\"seq\":$s2,/\"seq\":$((s2 - 1)),/" "$D/anchors" >"$D/edited-seq"
t_denied "an edited seq too" "the time-stamp token's imprint is not the anchor's" mvcli audit verify --anchor "$D/edited-seq"
sed -E '2s/"tsa_time":"[0-9]{4}/"tsa_time":"1999/' "$D/anchors" >"$D/edited-time"
t_denied "an edited time-stamp time" "is not the token's time" mvcli audit verify --anchor "$D/edited-time"
t_denied "tokens that do not verify against the given CA are refused" "does not verify against --tsa-ca $D/pki/ca2.pem" \
	mvcli audit verify --anchor "$D/anchors" --tsa-ca "$D/pki/ca2.pem"

# --- tampering as the PostgreSQL superuser, each found against the anchors, restored between cases ---
mv_sql "CREATE TABLE audit_saved AS SELECT * FROM audit_log" >/dev/null
as_superuser() { mv_sql "ALTER TABLE audit_log DISABLE TRIGGER USER; $1; ALTER TABLE audit_log ENABLE TRIGGER USER" >/dev/null; }
restore() { as_superuser "DELETE FROM audit_log; INSERT INTO audit_log SELECT * FROM audit_saved"; }
# rechain FROM: recomputes every hash from row FROM on, as a superuser covering their tracks would
rechain() {
	as_superuser "DO \$\$ DECLARE r record; prev bytea; BEGIN
	  SELECT hash INTO prev FROM audit_log WHERE seq < $1 ORDER BY seq DESC LIMIT 1;
	  FOR r IN SELECT * FROM audit_log WHERE seq >= $1 ORDER BY seq LOOP
	    UPDATE audit_log SET prev_hash = coalesce(prev, '\\x'::bytea), hash = sha256(coalesce(prev, '\\x'::bytea)
	      || convert_to('mailvault-audit-2', 'UTF8') || mailvault_audit_field(r.seq::text)
	      || mailvault_audit_field(to_char(r.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))
	      || mailvault_audit_field(r.actor) || mailvault_audit_field(r.via) || mailvault_audit_field(r.client)
	      || mailvault_audit_field(r.recorded_by) || mailvault_audit_field(r.action) || mailvault_audit_field(r.target)
	      || mailvault_audit_field(r.details::text)) WHERE seq = r.seq RETURNING hash INTO prev;
	  END LOOP; END \$\$"
}
verify_anchored() { mvcli audit verify --anchor "$D/anchors" --tsa-ca "$CA"; }
V=$((H - 1))   # after the second anchor, so only the newest anchor covers it

# (a) a row before the anchored head changed
as_superuser "UPDATE audit_log SET details = '{\"nothing\": \"to see\"}' WHERE seq = $V"
t_denied "(a) a row changed before the anchored head is found" "row $V does not verify: its hash is not the hash of its fields" verify_anchored
restore
t_ok "restored: verify --anchor passes again" verify_anchored
as_superuser "UPDATE audit_log SET details = '{\"nothing\": \"to see\"}' WHERE seq = $V"
rechain "$V"
t_ok "(a') the same change with every later hash recomputed: the chain alone verifies" mvcli audit verify
t_denied "but not against the anchors: the anchored head no longer carries its hash" \
	"row $H no longer carries the hash anchored on $AT: the log up to it was changed" verify_anchored
t_eq "--json says which anchors failed and how" "False True changed" \
	"$(mvcli audit verify --anchor "$D/anchors" --json | "$MV_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], d["chain_ok"], d["anchors"][-1]["status"])')"
restore

# (b) a row removed from the middle
as_superuser "DELETE FROM audit_log WHERE seq = $V"
t_denied "(b) a row removed from the middle is found" "row $((V + 1)) does not verify: rows before it are missing" verify_anchored
restore
t_ok "restored" verify_anchored

# (c) the newest rows removed, the anchored head with them: the chain that is left verifies
as_superuser "DELETE FROM audit_log WHERE seq >= $((H - 1))"
t_denied "(c) a truncated tail is found" "the log ends at row $((H - 2)); the anchor of $AT names row $H" verify_anchored
t_eq "--json calls it truncated" "False True truncated" \
	"$(mvcli audit verify --anchor "$D/anchors" --json | "$MV_PYTHON" -c 'import json,sys; d=json.load(sys.stdin); print(d["ok"], d["chain_ok"], d["anchors"][-1]["status"])')"
t_ok "which the chain alone cannot see" mvcli audit verify
restore
t_ok "restored" verify_anchored

# (d) the anchored head row itself changed
as_superuser "UPDATE audit_log SET actor = 'someone else' WHERE seq = $H"
t_denied "(d) a changed anchored head is found" "row $H does not verify: its hash is not the hash of its fields" verify_anchored
restore
as_superuser "UPDATE audit_log SET actor = 'someone else' WHERE seq = $H"
rechain "$H"
t_ok "(d') with its hash and the later ones recomputed, the chain alone verifies" mvcli audit verify
t_denied "but the anchor finds it" "row $H no longer carries the hash anchored on $AT" verify_anchored
restore
t_ok "restored: verify --anchor passes" verify_anchored
t_eq "a verification against anchors is audited with its outcome" "3 3 true" \
	"$(mv_sql "SELECT concat_ws(' ', details->>'anchors', details->>'anchors_matched', details->>'ok') FROM audit_log WHERE action = 'audit-verify' ORDER BY seq DESC LIMIT 1")"
mv_sql "DROP TABLE audit_saved" >/dev/null

# --- the API: the head and anchored verification, without the CLI ---
t_contains "GET /audit/verify without anchors answers as before" \
	"$(curl -s --unix-socket "$MV_WEB_SOCKET" http://localhost/api/v1/audit/verify)" '"ok":true,"rows":'
t_contains "a malformed anchor in the POST body is a 400 that names it" \
	"$(curl -s --unix-socket "$MV_WEB_SOCKET" -H 'Content-Type: application/json' --data '{"anchors":[{"seq":1,"hash":"zz"}]}' http://localhost/api/v1/audit/verify)" \
	'"error":"anchor 1: the body must be'

if [ -n "${MV_ASAN_LOG:-}" ]; then
	mv_web_stop
	t_eq "no sanitizer report from any process" "" "$(ls "$MV_ASAN_LOG".* 2>/dev/null)"
fi
t_done it-anchor

#!/usr/bin/env bash
# make demo: a private PostgreSQL and Dovecot under ./var/demo, a slice of the Enron mail in four
# mailboxes (one of them shared by the legal team), one archiving pass, and a look at the result.
set -eu  # no pipefail: `| head` ends the listings early on purpose
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
. tests/lib/pg.sh
. tests/lib/dovecot.sh
. tests/lib/util.sh
D=$root/var/demo
SHARED=${MV_SHARED:-$root/../shared}
build=$root/build

# a fresh demo each time: stop what an earlier run left and start over
[ -d "$D" ] && { dovecot_stop "$D" || true; pg_stop "$D" || true; rm -rf "$D"; }
mkdir -p "$D" && chmod 755 "$root/var" "$D"
corpus=$(mktemp -d /tmp/mailvault-demo.XXXXXX)
web_pid=
trap 'rm -rf "$corpus"; [ -n "$web_pid" ] && kill "$web_pid" 2>/dev/null; true' EXIT

echo "== unpacking a slice of the Enron corpus"
tar -xJf "$SHARED/corpora/enron-inbox.tar.xz" -C "$corpus" \
	enron_inbox/maildir/dasovich-j enron_inbox/maildir/lay-k enron_inbox/maildir/skilling-j enron_inbox/maildir/kean-s
E=$corpus/enron_inbox/maildir
echo "== starting PostgreSQL and Dovecot under var/demo (127.0.0.1 only)"
pg_start "$D" >/dev/null
for u in jeff.dasovich ken.lay jeff.skilling legal-shared; do dovecot_add_user "$D" "$u" "demo-$u"; done
dovecot_start "$D" >/dev/null
load() { # USER FOLDER SOURCE_DIR
	find "$3" -maxdepth 1 -type f | sort | maildir_add "$D" "$1" "$2" -
}
load jeff.dasovich INBOX "$E/dasovich-j/inbox"
load ken.lay INBOX "$E/lay-k/inbox"
load jeff.skilling INBOX "$E/skilling-j/inbox"
# the legal team's shared mailbox: what was forwarded to it, filed by matter
load legal-shared INBOX "$E/kean-s/inbox"
for sub in "$E"/*/inbox/*/; do
	[ -d "$sub" ] && load legal-shared "Matters/$(basename "$sub")" "$sub"
done

web_port=$(mv_free_ports 1)
cat >"$D/mailvault.conf" <<CONF
[database]
conninfo = $MV_CONNINFO
ingest_conninfo = $MV_CONNINFO user=demo_poller
web_conninfo = $MV_CONNINFO user=demo_web
retention_conninfo = $MV_CONNINFO user=demo_retention
[web]
listen = 127.0.0.1:$web_port
socket = $D/web.sock
[daemon]
workers = 2
log_level = info
[tls]
ca_file = $MV_CA_FILE
[indexer]
index_path = $D/index
[retention]
# the demo's mail was archived a minute ago: no floor, so that you see it go (the default is 7d)
min_age = 0d
CONF
mv() { "$build/mailvault" -c "$D/mailvault.conf" "$@"; }
echo
echo "== mailvault init"
mv init
# the poller logs in as its own role, which may insert but never change or delete; the officers' service
# as its own, which reads content only under row-level security for the officer it names
pg_psql "CREATE ROLE demo_poller LOGIN IN ROLE mailvault_ingest; CREATE ROLE demo_web LOGIN IN ROLE mailvault_web;
         CREATE ROLE demo_retention LOGIN IN ROLE mailvault_retention" >/dev/null
echo
echo "== officers are people, not database logins: you, as an officer with the admin role, by your Unix user"
mv officer add admin --all --role admin --unix-user "$(id -un)"
echo
echo "== mailvault-web: the officers' service (JSON API on 127.0.0.1:$web_port, the mailvault command on its socket)"
"$build/mailvault-web" -c "$D/mailvault.conf" >"$D/web.log" 2>&1 &
web_pid=$!
for _ in $(seq 100); do [ -S "$D/web.sock" ] && break; sleep 0.1; done
cat "$D/web.log"
# secrets live in the configuration, each bound to the one server and login it may be sent to
for u in jeff.dasovich ken.lay jeff.skilling legal-shared; do
	(umask 077 && echo "demo-$u" >"$D/secret-$u")
	printf '[secret %s]\nsource = file:%s\nhost = localhost\nuser = %s\n' "$u" "$D/secret-$u" "$u" >>"$D/mailvault.conf"
done
mv account add jeff.dasovich --host localhost --port "$DOVECOT_IMAPS_PORT" --user jeff.dasovich --secret jeff.dasovich
mv account add ken.lay --host localhost --port "$DOVECOT_IMAPS_PORT" --user ken.lay --secret ken.lay
mv account add jeff.skilling --host localhost --port "$DOVECOT_IMAP_PORT" --tls starttls --user jeff.skilling --secret jeff.skilling
mv account add legal-shared --host localhost --port "$DOVECOT_IMAPS_PORT" --user legal-shared --secret legal-shared \
	--interval 60 --include 'INBOX' --include 'Matters/*' --exclude 'Matters/genie'
echo
echo "== mailvaultd --once (archive every account once)"
"$build/mailvaultd" -c "$D/mailvault.conf" --once 2>&1 | grep -E 'one pass|poll finished|error'
echo
echo "== mailvault account list: what each folder pattern matched (IMAP LIST patterns: * and %, the rest literal)"
mv account list
echo
echo "== a second pass adds nothing: folders are unchanged since the last sync"
"$build/mailvaultd" -c "$D/mailvault.conf" --once 2>&1 | grep -E 'one pass|unchanged' | head -3
echo
echo "== mailvault status"
mv status
echo
echo "== mailvault ls --account ken.lay (first 5: serial, sha256, account, folder, uidvalidity, uid, internaldate, size)"
mv ls --account ken.lay | head -5
serial=$(mv ls --account ken.lay | head -1 | cut -f1)
echo
echo "== mailvault show $serial"
mv show "$serial"
echo
echo "== the stored bytes are exactly what the server sent"
echo "   show --raw | sha256sum: $(mv show --raw "$serial" | sha256sum | cut -d' ' -f1)"
echo "   key in the archive:     $(mv ls --account ken.lay | head -1 | cut -f2)"
echo
echo "== mailvault-indexer --once (GMime parses, Xapian indexes)"
"$build/mailvault-indexer" -c "$D/mailvault.conf" --once 2>&1 | grep -E 'indexed|error'
mv status | grep '^index:'
search() { echo; echo "\$ mailvault search $*"; mv search "$@"; }
search --limit 3 'from:@enron.com subject:california'
search --count 'participants:@enron.com after:2001-05-01 before:2001-06-01'
search --limit 3 --sort relevance '"price caps" -from:jeff.dasovich@enron.com'
echo
echo "== an officer sees only the accounts the legal team granted; scripts use the JSON API with a token"
mv officer add lay-counsel --accounts ken.lay --role legal
token=$(mv officer token add lay-counsel --expires 30d --label demo)
echo "\$ mailvault search --count 'from:@enron.com'          (you: every account)"
mv search --count 'from:@enron.com'
echo "\$ curl -H 'Authorization: Bearer mvt_...' 'http://127.0.0.1:$web_port/api/v1/count?q=from:@enron.com'   (lay-counsel)"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$web_port/api/v1/count?q=from:@enron.com"
echo "\$ curl ... '/api/v1/search?q=subject:california&limit=2'"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$web_port/api/v1/search?q=subject:california&limit=2" |
	python3 -m json.tool | head -30
other=$(mv ls --account jeff.dasovich | head -1 | cut -f1)
echo "\$ curl ... '/api/v1/messages/$other'   (a serial of another account: answered as if it did not exist)"
curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$web_port/api/v1/messages/$other"
echo
echo "== every access is in the hash-chained audit log, with who, how and from where: mailvault audit list"
mv audit list --since "$(date -u +%Y-%m-%d)" | tail -5 | cut -c1-160
echo "\$ mailvault audit verify   (every hash recomputed in C, apart from the database)"
mv audit verify
echo
echo "== the database refuses to alter or delete archived mail, even for its owner"
pg_psql "UPDATE messages SET subject = 'forged' WHERE serial = $serial" 2>&1 | grep -o 'mailvault: .*' || true
pg_psql "DELETE FROM locations WHERE message_serial = $serial" 2>&1 | grep -o 'mailvault: .*' || true
pg_psql "DELETE FROM audit_log" 2>&1 | grep -o 'mailvault: .*' || true
echo "   and the poller cannot store bytes under a key that is not their SHA-256:"
psql -X -q "$MV_CONNINFO user=demo_poller" -c "INSERT INTO blobs (sha256, size, raw) VALUES (sha256('a'), 1, 'b')" 2>&1 |
	grep -o 'violates check constraint.*' || true
echo
echo "== mailvault verify: every stored message hashed again (the weekly integrity sweep)"
mv verify
echo
echo "== retention: policies are the admin role's, set through mailvault-web; the database computes every date"
echo "\$ mailvault policy add enron-7y --keep 7y --all"
mv policy add enron-7y --keep 7y --all || true
echo "\$ mailvault policy add enron-7y --keep 7y --all --confirm"
mv policy add enron-7y --keep 7y --all --confirm
echo "\$ mailvault policy add legal-forever --keep forever --accounts legal-shared; mailvault policy lock legal-forever"
mv policy add legal-forever --keep forever --accounts legal-shared
mv policy lock legal-forever
echo "\$ mailvault policy set legal-forever --keep 7y --confirm      (a locked policy only grows)"
mv policy set legal-forever --keep 7y --confirm || true
mv policy list
echo
echo "== a matter and its legal holds (role legal or admin): by account, and by query"
mv matter add sec-2001 --description "SEC inquiry into 2001 disclosures"
mv hold add lay-custodian --matter sec-2001 --reason "Kenneth Lay is a custodian" --accounts ken.lay
mv hold add california --matter sec-2001 --reason "California energy crisis" --all --query 'subject:california'
echo "   (the indexer records which messages each hold's query covers; until it has, nothing it could cover goes)"
"$build/mailvault-indexer" -c "$D/mailvault.conf" --once 2>&1 | grep -E 'coverage|error' || true
mv hold list
echo "\$ mailvault hold show california --limit 3"
mv hold show california --limit 3
echo
echo "== mailvault-retention --dry-run: what would go now, per policy and per account, and what holds keep"
"$build/mailvault-retention" -c "$D/mailvault.conf" --once --dry-run 2>&1 | grep -v warn
echo
echo "== mailvault-retention --once: disposal, batch by batch, each with its proofs in the audit chain"
"$build/mailvault-retention" -c "$D/mailvault.conf" --once 2>&1 | grep -E 'disposed|vacuum|error'
echo "\$ mailvault audit list --action dispose | head -2   (the proof outlives the message)"
mv audit list --action dispose | head -2 | cut -c1-400
"$build/mailvault-indexer" -c "$D/mailvault.conf" --once 2>&1 | grep -E 'applied|no longer holds|error' || true
mv status | grep -E '^(retention|last disposal|index removals)'
echo "\$ mailvault search --count 'subject:california'   (held: still there)"
mv search --count 'subject:california'
echo "\$ mailvault search --count 'from:@enron.com'"
mv search --count 'from:@enron.com'
echo
echo "== the audit chain's head, anchored outside the database (a file here; add --tsa URL for an RFC 3161 time stamp)"
mv audit anchor --file "$D/audit-anchors"
mv audit verify --anchor "$D/audit-anchors"
echo "   the superuser now removes the newest audit rows, triggers disabled (what no officer or program can do):"
pg_psql "ALTER TABLE audit_log DISABLE TRIGGER USER; DELETE FROM audit_log WHERE seq > (SELECT max(seq) - 3 FROM audit_log);
         ALTER TABLE audit_log ENABLE TRIGGER USER" >/dev/null
echo "\$ mailvault audit verify                     (the chain alone cannot see a removed tail)"
mv audit verify || true
echo "\$ mailvault audit verify --anchor var/demo/audit-anchors"
mv audit verify --anchor "$D/audit-anchors" || true
kill "$web_pid" && wait "$web_pid" 2>/dev/null
web_pid=
dovecot_stop "$D"
pg_stop "$D"
cat <<EOF

Demo done. The archive stays in var/demo; to look again:
  . tests/lib/pg.sh && pg_start var/demo && build/mailvault -c var/demo/mailvault.conf status
  build/mailvault-web -c var/demo/mailvault.conf &   # then: build/mailvault -c var/demo/mailvault.conf search ...
EOF

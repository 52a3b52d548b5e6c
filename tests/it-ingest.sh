#!/usr/bin/env bash
# Ingestion end to end against real Dovecot and PostgreSQL: what the server holds is archived byte-exact,
# once, without touching the mailbox; reruns add nothing; UIDVALIDITY resets duplicate nothing.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
t_unpack enron-inbox.tar.xz "$D"
t_unpack mime-edge.tar.xz "$D"
E=$D/enron_inbox/maildir

# --- mailboxes: two custodians, a shared mailbox, hard MIME, an oversized message ---
dovecot_add_user "$D" alice 'a-pass "quoted" \ ok'
dovecot_add_user "$D" bob bob-pass
dovecot_add_user "$D" legal-shared shared-pass
find "$E/dean-c/inbox" -maxdepth 1 -type f | sort | head -120 | maildir_add "$D" alice INBOX -
find "$E/allen-p/inbox" -maxdepth 1 -type f | sort | head -40 | maildir_add "$D" alice "Projects/2001" -
find "$D/mime_edge" -type f -size -600k | sort | head -150 | maildir_add "$D" alice Edge -
find "$E/motley-m/inbox" -type f | sort | head -80 | maildir_add "$D" bob INBOX -
# the same message in two mailboxes is stored once, seen twice
maildir_add "$D" bob Forwarded "$(find "$E/dean-c/inbox" -maxdepth 1 -type f | sort | head -1)"
find "$E/lay-k/inbox" -maxdepth 1 -type f | sort | head -30 | maildir_add "$D" legal-shared INBOX -
# invalid UTF-8 and 8-bit headers, and no header/body separator at all
printf 'From: \xff\xfe broken <x@example.com>\nSubject: caf\xe9 \x80\x81\nDate: not a date\n\nbody\n' >"$D/bad1.eml"
printf 'this message has no header at all\n\x01\x02 binary-ish\n' >"$D/bad2.eml"
maildir_add "$D" alice Edge "$D/bad1.eml" "$D/bad2.eml"
# a 2 MiB message against a 1 MiB limit: recorded, not archived, nothing else skipped
"$MV_PYTHON" - "$D/big.eml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("From: big@example.com\nSubject: big attachment\nMessage-ID: <big@example.com>\n\n")
    f.write(("x" * 76 + "\n") * 27000)
PY
maildir_add "$D" alice Big "$D/big.eml" "$(find "$E/dean-c/inbox" -maxdepth 1 -type f | sort | sed -n 2p)"

mv_setup "$D" "max_message_bytes = 1M
batch_messages = 25"
mvcli account add alice --host localhost --port "$DOVECOT_IMAPS_PORT" --user alice \
	--secret "$(mv_pw "$D" alice 'a-pass "quoted" \ ok')" >/dev/null
mvcli account add bob --host localhost --port "$DOVECOT_IMAP_PORT" --tls starttls --user bob \
	--secret "$(mv_pw "$D" bob bob-pass)" >/dev/null
mvcli account add legal-shared --host localhost --port "$DOVECOT_IMAPS_PORT" --user legal-shared \
	--secret "$(mv_pw "$D" shared shared-pass legal-shared)" --exclude 'Trash*' >/dev/null

server_alice_before=$("$MV_PYTHON" "$MV_ROOT/tests/lib/imap_hashes.py" --host localhost --port "$DOVECOT_IMAPS_PORT" \
	--cafile "$MV_CA_FILE" --user alice --password 'a-pass "quoted" \ ok')
t_ok "first pass archives every account (IMAPS and STARTTLS)" mvd --once

# --- every message the server holds is archived, byte for byte ---
for u in "alice:a-pass \"quoted\" \\ ok" bob:bob-pass legal-shared:shared-pass; do
	user=${u%%:*} pw=${u#*:}
	expected=$(mv_server_set "$user" "$pw")
	[ "$user" = alice ] && expected=$(printf '%s\n' "$expected" | grep -v "^Big"$'\t'"[0-9]*"$'\t'"1"$'\t')
	t_eq "$user: archived (folder, uidvalidity, uid, sha256) equals the server's BODY.PEEK[] set" \
		"$expected" "$(mv_archived_set "$user")"
done
total_server=$(( $(mv_server_set alice "a-pass \"quoted\" \\ ok" | wc -l) - 1 + $(mv_server_set bob bob-pass | wc -l) \
	+ $(mv_server_set legal-shared shared-pass | wc -l) ))
t_eq "one location per server message (all but the oversized one)" "$total_server" "$(mv_sql 'SELECT count(*) FROM locations')"
t_eq "the message present in two mailboxes is stored once" \
	"$(mv_sql 'SELECT count(DISTINCT sha256) FROM messages m JOIN locations l ON l.message_serial = m.serial')" \
	"$(mv_sql 'SELECT count(*) FROM blobs')"
t_eq "one message seen in two accounts has two locations" "2" \
	"$(mv_sql "SELECT count(*) FROM locations l JOIN folders f ON f.id = l.folder_id WHERE l.message_serial =
	  (SELECT l2.message_serial FROM locations l2 JOIN folders f2 ON f2.id = l2.folder_id WHERE f2.name = 'Forwarded')")"

# show --raw gives back exactly the stored bytes, whose hash is the key (every blob checked in SQL,
# the command on a sample that includes every malformed message)
t_eq "every stored blob hashes to its key" 0 "$(mv_sql 'SELECT count(*) FROM blobs WHERE sha256 <> sha256(raw)')"
bad=0 n=0
while IFS=$'\t' read -r serial sha; do
	n=$((n + 1))
	got=$(mvcli show --raw "$serial" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$sha" ] || { bad=$((bad + 1)); echo "# serial $serial: $got != $sha"; }
done < <(mv_sql "SELECT serial, encode(sha256, 'hex') FROM messages WHERE serial % 7 = 0 OR header_error IS NOT NULL ORDER BY serial")
t_ok "show --raw was checked on a real sample ($n messages)" test "$n" -ge 50
t_eq "show --raw of each sampled message hashes to its SHA-256" 0 "$bad"
t_eq "blob sizes match their bytes" "0" "$(mv_sql 'SELECT count(*) FROM blobs WHERE length(raw) <> size')"

# --- malformed input is archived all the same, with what could be read ---
t_eq "a message with invalid UTF-8 headers is archived with a readable subject" "1" \
	"$(mv_sql "SELECT count(*) FROM messages WHERE subject LIKE 'caf%' AND header_error IS NOT NULL")"
t_eq "a message with no header is archived with the reason noted" "1" \
	"$(mv_sql "SELECT count(*) FROM messages m JOIN blobs b ON b.sha256 = m.sha256 WHERE m.header_error =
	  'no header fields found' AND position(convert_to('this message has no header at all', 'UTF8') in b.raw) = 1")"
t_eq "parsed fields decode RFC 2047 and addresses" "1" \
	"$(mv_sql "SELECT count(*) FROM messages WHERE message_id = '4123674.1075840015077.JavaMail.evans@thyme'
	           AND from_addr = 'pete.davis@enron.com' AND date = '2002-02-07 14:38:16+00'")"

# --- the oversized message is visible, not silently dropped ---
t_eq "the oversized message is recorded in ingest_errors" "1" \
	"$(mv_sql "SELECT count(*) FROM ingest_errors WHERE reason LIKE '%exceeds max_message_bytes%' AND uid = 1")"
t_contains "status shows the ingest error" "$(mvcli status)" "exceeds max_message_bytes"

# --- the source mailbox is unchanged: no \Seen, same flags ---
server_alice_after=$("$MV_PYTHON" "$MV_ROOT/tests/lib/imap_hashes.py" --host localhost --port "$DOVECOT_IMAPS_PORT" \
	--cafile "$MV_CA_FILE" --user alice --password 'a-pass "quoted" \ ok')
t_eq "alice's mailbox (bodies and flags) is unchanged by archiving" "$server_alice_before" "$server_alice_after"
t_eq "no message got \\Seen" "0" "$(printf '%s\n' "$server_alice_after" | cut -f6 | grep -c 'Seen')"

# --- a second run adds nothing and skips unchanged folders cheaply ---
counts() { mv_sql "SELECT (SELECT count(*) FROM blobs), (SELECT count(*) FROM messages), (SELECT count(*) FROM locations), (SELECT count(*) FROM ingest_errors)"; }
before=$(counts)
t_ok "second pass succeeds" mvd --once
t_eq "second pass adds nothing" "$before" "$(counts)"
log=$(mvd --once 2>&1)
t_contains "unchanged folders are skipped without EXAMINE" "$log" "account alice: 0 folders synced, 4 unchanged"

# --- new mail is picked up by UID, and only it ---
maildir_add "$D" alice INBOX "$(find "$E/dean-c/inbox" -maxdepth 1 -type f | sort | sed -n 200p)"
t_ok "third pass after one new message" mvd --once
t_eq "exactly one location was added" "$(( $(echo "$before" | cut -f3) + 1 ))" "$(mv_sql 'SELECT count(*) FROM locations')"
t_eq "alice still matches the server" "$(mv_server_set alice "a-pass \"quoted\" \\ ok" | grep -v "^Big"$'\t'"[0-9]*"$'\t'"1"$'\t')" "$(mv_archived_set alice)"

# --- UIDVALIDITY reset: a new generation, nothing stored twice, nothing deleted ---
dovecot_stop "$D"
dovecot_reset_uidvalidity "$D" alice INBOX
dovecot_start "$D" >/dev/null
before=$(counts)
old_uv=$(mv_sql "SELECT uidvalidity FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.name='alice' AND f.name='INBOX'")
t_ok "pass after the UIDVALIDITY reset" mvd --once
new_uv=$(mv_sql "SELECT uidvalidity FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.name='alice' AND f.name='INBOX'")
t_ok "the folder has a new UIDVALIDITY ($old_uv -> $new_uv)" test "$old_uv" != "$new_uv"
t_eq "no blob or message stored twice after the reset" "$(echo "$before" | cut -f1,2)" "$(counts | cut -f1,2)"
t_eq "the reset is recorded" "1" "$(mv_sql 'SELECT count(*) FROM uidvalidity_changes')"
inbox_n=$(mv_server_set alice "a-pass \"quoted\" \\ ok" | grep -c "^INBOX"$'\t')
t_eq "the old generation's provenance is kept and the new one added" "$(( $(echo "$before" | cut -f3) + inbox_n ))" \
	"$(mv_sql 'SELECT count(*) FROM locations')"
t_eq "the new generation matches the server" \
	"$(mv_server_set alice "a-pass \"quoted\" \\ ok" | grep "^INBOX"$'\t')" \
	"$(mv_archived_set alice | grep "^INBOX"$'\t'"$new_uv"$'\t')"

# --- least privilege and immutability, enforced by the database ---
poller="$MV_CONNINFO user=mv_poller"
# each refusal is asserted with the database's own words, not as any error
t_denied "the ingest role cannot UPDATE blobs" "permission denied for table blobs" \
	psql -X -v ON_ERROR_STOP=1 "$poller" -c "SET ROLE mailvault_ingest; UPDATE blobs SET size = size"
t_denied "the ingest role cannot DELETE messages" "permission denied for table messages" \
	psql -X -v ON_ERROR_STOP=1 "$poller" -c "DELETE FROM messages"
t_denied "the ingest role cannot UPDATE messages" "permission denied for table messages" \
	psql -X -v ON_ERROR_STOP=1 "$poller" -c "UPDATE messages SET subject = 'x'"
t_denied "the ingest role cannot DELETE locations" "permission denied for table locations" \
	psql -X -v ON_ERROR_STOP=1 "$poller" -c "DELETE FROM locations"
t_denied "the ingest role cannot DELETE blobs" "permission denied for table blobs" \
	psql -X -v ON_ERROR_STOP=1 "$poller" -c "DELETE FROM blobs"
t_denied "even the owner cannot UPDATE stored bytes" "UPDATE on blobs is refused: archived content is immutable" \
	mv_sql "UPDATE blobs SET raw = raw || 'x'::bytea, size = size + 1"
t_denied "even the owner cannot rewrite a message's fields" "archived message fields are immutable" \
	mv_sql "UPDATE messages SET subject = 'forged'"
t_denied "even the owner cannot rewrite provenance" "provenance is immutable" mv_sql "UPDATE locations SET uid = uid + 1000"
t_denied "TRUNCATE of blobs is refused" "TRUNCATE on blobs is refused" mv_sql "TRUNCATE blobs CASCADE"
t_eq "after all that, the bytes are intact" "0" \
	"$(mv_sql "SELECT count(*) FROM blobs WHERE sha256 <> sha256(raw)")"

t_done it-ingest

#!/usr/bin/env bash
# Nothing forged, nothing lost, tried as the roles that could do it: the poller cannot store bytes under
# another key, write lifecycle columns or move watermarks at will; nothing deletes archived content but
# the disposal function; the superuser's tampering is found by verify; a secret goes only where its
# section says; the index follows every place a message is seen, in whatever order pollers commit, and
# index verify reads what each document says; text from mail cannot drive a terminal.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
t_unpack enron-inbox.tar.xz "$D" enron_inbox/maildir/dean-c
E=$D/enron_inbox/maildir/dean-c
dovecot_add_user "$D" alice alice-pw
dovecot_add_user "$D" bob bob-pw
find "$E/inbox" -maxdepth 1 -type f | sort | head -20 | maildir_add "$D" alice INBOX -
find "$E/inbox" -maxdepth 1 -type f | sort | sed -n 21,25p | maildir_add "$D" alice Sub -
find "$E/inbox" -maxdepth 1 -type f | sort | sed -n 26,30p | maildir_add "$D" bob INBOX -
# a message that tries to drive the terminal of whoever reads it
printf 'From: x@example.com\nSubject: Hi \033]0;owned\007 there \302\2332J\nMessage-ID: <esc@example.com>\n\nbody \033[2J cleared\n' >"$D/esc.eml"
maildir_add "$D" alice INBOX "$D/esc.eml"
mv_setup "$D"
printf '[indexer]\nindex_path = %s/index\n' "$D" >>"$MV_CONF"
mvcli account add alice --host localhost --port "$DOVECOT_IMAPS_PORT" --user alice --secret "$(mv_pw "$D" alice alice-pw)" >/dev/null
mvcli account add bob --host localhost --port "$DOVECOT_IMAPS_PORT" --user bob --secret "$(mv_pw "$D" bob bob-pw)" >/dev/null
t_ok "the mailboxes are archived" mvd --once
t_ok "and indexed" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once

POLLER="$MV_CONNINFO user=mv_poller"
# as_role ROLE SQL: one statement (or a transaction) as that program's role, through the poller's login
# for the poller and SET ROLE from the superuser for the others
as_poller() { psql -X -q -v ON_ERROR_STOP=1 "$POLLER" -c "SET ROLE mailvault_ingest" -c "$1"; }
as_role() { psql -X -q -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "SET ROLE $1" -c "$2"; }
# in_tx SQL: SQL inside a transaction that is rolled back; prints its rows
in_tx() { psql -X -At -q -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c BEGIN -c "$1" -c ROLLBACK; }
folder_id() { mv_sql "SELECT f.id FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.name = '$1' AND f.name = '$2'"; }
INBOX=$(folder_id alice INBOX)
UV=$(mv_sql "SELECT uidvalidity FROM folders WHERE id = $INBOX")
LAST=$(mv_sql "SELECT last_uid FROM folders WHERE id = $INBOX")
# records of each kind, so that row triggers have rows to refuse
as_poller "INSERT INTO ingest_errors (account_id, folder_id, uidvalidity, uid, size, reason, kind) VALUES ((SELECT account_id FROM folders WHERE id = $INBOX), $INBOX, $UV, 999999, 1, 'a record for the tests', 'other')"
mv_sql "INSERT INTO uidvalidity_changes (folder_id, old_uidvalidity, new_uidvalidity, old_last_uid) VALUES ($INBOX, 1, $UV, 0)" >/dev/null
counts() { mv_sql "SELECT (SELECT count(*) FROM blobs), (SELECT count(*) FROM messages), (SELECT count(*) FROM locations), (SELECT count(*) FROM ingest_errors), (SELECT count(*) FROM uidvalidity_changes)"; }
before=$(counts)

# --- the poller forges nothing ---
t_denied "the poller cannot store bytes under a SHA-256 that is not theirs" "blobs_sha256_is_hash_of_raw" \
	as_poller "INSERT INTO blobs (sha256, size, raw) VALUES (sha256('the real bytes'), 6, 'forged')"
t_ok "the poller stores a blob under its true hash (the check is not a blanket refusal)" \
	as_poller "BEGIN; INSERT INTO blobs (sha256, size, raw) VALUES (sha256('probe'), 5, 'probe'); ROLLBACK"
t_denied "the poller cannot insert a message already marked indexed" "permission denied for table messages" \
	as_poller "BEGIN; INSERT INTO blobs (sha256, size, raw) VALUES (sha256('m1'), 2, 'm1'); INSERT INTO messages (sha256, size, indexed_at) VALUES (sha256('m1'), 2, now())"
t_denied "nor one whose retention ran out in 1970" "permission denied for table messages" \
	as_poller "BEGIN; INSERT INTO blobs (sha256, size, raw) VALUES (sha256('m2'), 2, 'm2'); INSERT INTO messages (sha256, size, retain_until) VALUES (sha256('m2'), 2, '1970-01-01')"
t_denied "nor choose a message's serial" "permission denied for table messages" \
	as_poller "BEGIN; INSERT INTO blobs (sha256, size, raw) VALUES (sha256('m3'), 2, 'm3'); INSERT INTO messages (serial, sha256, size) VALUES (1, sha256('m3'), 2)"
serial1=$(mv_sql "SELECT min(serial) FROM messages")
t_denied "the poller cannot insert a location already marked expunged" "permission denied for table locations" \
	as_poller "INSERT INTO locations (message_serial, folder_id, uidvalidity, uid, expunged_at) VALUES ($serial1, $INBOX, $UV, 999999, now())"
t_denied "the poller cannot set a folder's watermark directly" "permission denied for table folders" \
	as_poller "UPDATE folders SET last_uid = 0 WHERE id = $INBOX"
t_denied "nor move it back through the function" "cannot move back from $LAST to 1" \
	as_poller "SELECT mailvault_folder_advance($INBOX, $UV, 1)"
t_denied "nor forward past what its transaction stored" "may only advance to a UID this transaction stored" \
	as_poller "SELECT mailvault_folder_advance($INBOX, $UV, $((LAST + 100)))"
t_ok "but forward to a UID its transaction stored, yes (then rolled back)" \
	as_poller "BEGIN; INSERT INTO locations (message_serial, folder_id, uidvalidity, uid) VALUES ($serial1, $INBOX, $UV, $((LAST + 100))); SELECT mailvault_folder_advance($INBOX, $UV, $((LAST + 100))); ROLLBACK"
t_denied "nor under another UIDVALIDITY" "is at UIDVALIDITY $UV, not 7" \
	as_poller "SELECT mailvault_folder_advance($INBOX, 7, $((LAST + 1)))"
t_denied "nor write the UIDVALIDITY history itself" "permission denied for table uidvalidity_changes" \
	as_poller "INSERT INTO uidvalidity_changes (folder_id, old_uidvalidity, new_uidvalidity, old_last_uid) VALUES ($INBOX, 1, 2, 0)"
t_denied "nor point an account at another secret" "permission denied for table accounts" \
	as_poller "UPDATE accounts SET secret_name = 'bob' WHERE name = 'alice'"
t_eq "the watermark is where the poller left it" "$LAST" "$(mv_sql "SELECT last_uid FROM folders WHERE id = $INBOX")"

# --- nothing deletes archived content but the disposal function, which refuses everything for now ---
for t in blobs messages locations ingest_errors uidvalidity_changes; do
	t_denied "the poller cannot DELETE from $t" "permission denied for table $t" as_poller "DELETE FROM $t"
	t_denied "the superuser's DELETE on $t is refused by the database" \
		"DELETE on $t is refused: archived content leaves only through retention disposal" mv_sql "DELETE FROM $t"
	t_denied "even with the disposal setting set by hand" "DELETE on $t is refused" \
		mv_sql "SET mailvault.disposing = 'on'; DELETE FROM $t"
	t_denied "TRUNCATE of $t is refused" "TRUNCATE on $t is refused" mv_sql "TRUNCATE $t CASCADE"
done
t_denied "the retention role has no DELETE of its own" "permission denied for table messages" \
	as_role mailvault_retention "SET mailvault.disposing = 'on'; DELETE FROM messages"
t_eq_ok "and its one way, the disposal function, removes nothing that no policy lets expire" 0 \
	in_tx "SET ROLE mailvault_retention; SELECT count(*) FROM mailvault_dispose_batch(0, 1000, 1000) WHERE reason <> 'continue'"
# the mechanism the disposal function will use: a SECURITY DEFINER function of the owner with the setting
probe() { # NAME SETTING: a function of mailvault_owner that deletes one location, with or without the setting
	mv_sql "CREATE FUNCTION $1() RETURNS bigint LANGUAGE sql SECURITY DEFINER $2 AS
	        \$\$ WITH d AS (DELETE FROM locations WHERE id = (SELECT max(id) FROM locations) RETURNING 1) SELECT count(*) FROM d \$\$;
	        ALTER FUNCTION $1() OWNER TO mailvault_owner" >/dev/null
}
probe probe_with "SET mailvault.disposing = 'on'"
probe probe_without ""
t_eq_ok "a SECURITY DEFINER function of the owner that sets mailvault.disposing can delete (rolled back)" 1 \
	in_tx "SELECT probe_with()"
t_denied "the same function without the setting cannot" "DELETE on locations is refused" in_tx "SELECT probe_without()"
mv_sql "DROP FUNCTION probe_with(); DROP FUNCTION probe_without()" >/dev/null
t_eq "after all that, nothing was stored, changed or deleted" "$before" "$(counts)"

# --- no temporary object can stand in for a table in a function that runs with the owner's rights ---
t_denied "the poller cannot make temporary tables (they could shadow a table's name)" \
	"permission denied to create temporary tables" as_poller "CREATE TEMP TABLE locations (folder_id bigint)"
mv_sql "CREATE ROLE stranger LOGIN" >/dev/null
t_denied "a login that is none of mailvault's roles cannot even connect" "permission denied for database" \
	psql -X -v ON_ERROR_STOP=1 "$MV_CONNINFO user=stranger" -c "SELECT 1"
t_eq "every function that runs with the owner's rights looks names up in pg_temp last" 0 \
	"$(mv_sql "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
	  AND p.prosecdef AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, public, pg_temp'], false)")"
t_ok "there are such functions to look at" test "$(mv_sql "SELECT count(*) FROM pg_proc WHERE prosecdef AND pronamespace = 'public'::regnamespace")" -ge 6
# even were an administrator to allow temporary tables, a shadowing table would not fool the watermark
mv_sql "GRANT TEMPORARY ON DATABASE mailvault TO mailvault_ingest" >/dev/null
t_denied "a temporary 'locations' does not stand in for the real one" "may only advance to a UID this transaction stored" \
	as_poller "CREATE TEMP TABLE locations (folder_id bigint, uidvalidity bigint, uid bigint, first_seen timestamptz);
	           INSERT INTO locations VALUES ($INBOX, $UV, 4294967295, now());
	           SELECT mailvault_folder_advance($INBOX, $UV, 4294967295)"
mv_sql "REVOKE TEMPORARY ON DATABASE mailvault FROM mailvault_ingest" >/dev/null

# --- tables belong to a role nobody logs in as ---
t_eq "every table, sequence and function belongs to mailvault_owner" "0 0 0" \
	"$(mv_sql "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r','S','v') AND c.relowner <> 'mailvault_owner'::regrole),
	  (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.proowner <> 'mailvault_owner'::regrole),
	  (SELECT count(*) FROM pg_roles WHERE rolname = 'mailvault_owner' AND rolcanlogin)" | tr '\t' ' ')"
t_ok "a second init keeps it so" mvcli init
t_eq "no program role owns anything" 0 "$(mv_sql "SELECT count(*) FROM pg_class WHERE relowner IN (SELECT oid FROM pg_roles WHERE rolname LIKE 'mailvault\_%' AND rolname <> 'mailvault_owner')")"

# --- what the superuser can do is found: verify hashes every blob again ---
nblobs=$(mv_sql "SELECT count(*) FROM blobs")
out=$(mvcli verify)
t_eq "verify finds every blob intact (exit status 0)" 0 "$?"
t_contains "and says how many it hashed" "$out" "verify: $nblobs blobs ("
t_contains "with no mismatch" "$out" ": 0 mismatches"
victim=$(mv_sql "SELECT encode(sha256, 'hex') FROM messages WHERE serial = $serial1")
mv_sql "ALTER TABLE blobs DROP CONSTRAINT blobs_sha256_is_hash_of_raw; ALTER TABLE blobs DISABLE TRIGGER blobs_immutable;
        UPDATE blobs SET raw = overlay(raw placing 'X'::bytea from 10 for 1) WHERE sha256 = '\\x$victim'" >/dev/null
out=$(mvcli verify 2>&1)
rc=$?
t_eq "verify fails when a stored message changed behind the database's back" 1 "$rc"
t_contains "and names the blob" "$out" "CORRUPT blob $victim"
t_contains "and counts it" "$out" ": 1 mismatch"
t_eq "a sample of one blob is one blob" 1 "$(mvcli --json verify --sample 1 | "$MV_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["checked"])')"
t_eq "each sweep is audited with its result" "1" \
	"$(mv_sql "SELECT details->>'mismatches' FROM audit_log WHERE action = 'verify' AND target = 'all' ORDER BY seq DESC LIMIT 1")"

# --- a secret goes only to the host and user of its section, whatever the accounts table says ---
mv_sql "UPDATE accounts SET secret_name = 'alice' WHERE name = 'bob'" >/dev/null
bob_logins=$(grep -c 'user=<bob>' "$D/dovecot/log")
out=$(mvd --once 2>&1)
t_contains "an account pointed at another account's secret is refused before connecting" "$out" \
	"account bob: secret 'alice' may be sent only to localhost as alice"
t_eq "Dovecot saw no new login as bob" "$bob_logins" "$(grep -c 'user=<bob>' "$D/dovecot/log")"
mv_sql "UPDATE accounts SET secret_name = 'bob', host = '127.0.0.1' WHERE name = 'bob'" >/dev/null
t_contains "an account moved to another host keeps its secret home" "$(mvd --once 2>&1)" \
	"secret 'bob' may be sent only to localhost as bob"
mv_sql "UPDATE accounts SET host = 'localhost' WHERE name = 'bob'" >/dev/null
t_denied "the database holds a secret's name, never a command" "accounts_secret_name_check" \
	mv_sql "UPDATE accounts SET secret_name = 'cmd:touch /tmp/mv-pwned' WHERE name = 'bob'"

# --- the index follows a place committed out of order ---
msg=$(mv_sql "SELECT m.serial FROM messages m JOIN locations l ON l.message_serial = m.serial WHERE l.folder_id = $INBOX AND m.message_id IS NOT NULL ORDER BY 1 LIMIT 1")
mid=$(mv_sql "SELECT message_id FROM messages WHERE serial = $msg")
other=$(mv_sql "SELECT m.serial FROM messages m JOIN locations l ON l.message_serial = m.serial WHERE l.folder_id = $INBOX ORDER BY 1 DESC LIMIT 1")
BOBBOX=$(folder_id bob INBOX)
BUV=$(mv_sql "SELECT uidvalidity FROM folders WHERE id = $BOBBOX")
t_eq "the message is not in bob's account yet" 0 "$(mvcli search --count "account:bob msgid:\"$mid\"")"
# A takes the lower location id and commits last; B takes a higher one and commits first
psql -X -q "$POLLER" -c "SET ROLE mailvault_ingest" -c "BEGIN; INSERT INTO locations (message_serial, folder_id, uidvalidity, uid) VALUES ($msg, $BOBBOX, $BUV, 800001); SELECT pg_sleep(3); COMMIT" >"$D/slow.log" 2>&1 &
slow=$!
sleep 1
t_ok "a later location commits first" as_poller "INSERT INTO locations (message_serial, folder_id, uidvalidity, uid) VALUES ($other, $BOBBOX, $BUV, 800002)"
t_ok "the indexer runs between the two commits" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once
wait "$slow"
t_eq "the earlier location commits last" 0 "$?"
t_eq "its id is the lower one" t "$(mv_sql "SELECT (SELECT id FROM locations WHERE uid = 800001) < (SELECT id FROM locations WHERE uid = 800002)")"
t_ok "the indexer runs again" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once
t_eq "the message is found in bob's account: its re-index was queued with the location" 1 \
	"$(mvcli search --count "account:bob msgid:\"$mid\"")"
t_contains "index verify compares what every document says and finds nothing amiss" "$(mvcli index verify)" \
	"0 missing, 0 extra; 0 documents differ from the archive in accounts or folders; 0 queued"

# --- index verify reads what each document says ---
mv_sql "UPDATE folders SET name = 'Renamed' WHERE id = $(folder_id alice Sub)" >/dev/null
out=$(mvcli index verify)
rc=$?
t_eq "index verify fails when documents name places the archive no longer has" 1 "$rc"
t_contains "it says what a document lacks" "$out" "lacks a place the archive has it in: folder 'Renamed'"
t_contains "and what it names wrongly" "$out" "names a place the archive does not have it in: folder 'Sub'"
t_contains "and counts the documents" "$out" "5 documents differ from the archive"
t_ok "a rebuild" mvcli index rebuild
t_ok "and a pass of the indexer" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once
t_ok "repair it" mvcli index verify

# --- text from mail never drives the terminal ---
esc=$(mv_sql "SELECT serial FROM messages WHERE message_id = 'esc@example.com'")
out=$(mvcli show "$esc")
t_eq "show prints no ESC, BEL or C1 byte" 0 "$(printf '%s' "$out" | LC_ALL=C grep -c $'[\x1b\x07]\|\xc2\x9b' || true)"
t_contains "and shows them escaped" "$out" 'Hi \x1b]0;owned\x07 there \u009b2J'
t_contains "in the body too" "$out" 'body \x1b[2J cleared'
out=$(mvcli search 'msgid:esc@example.com' 2>&1)
t_contains "search escapes the subject" "$out" 'Hi \x1b]0;owned\x07 there'
t_eq "search --json escapes it as JSON does" '"Hi \u001b]0;owned\u0007 there \u009b2J"' \
	"$(mvcli search --json 'msgid:esc@example.com' | "$MV_PYTHON" -c 'import sys,re; print(re.search(r"\"subject\":(\"[^\"]*\")", sys.stdin.read()).group(1))')"
t_eq "show --raw into a pipe stays byte-exact" "$(mv_sql "SELECT encode(sha256, 'hex') FROM messages WHERE serial = $esc")" \
	"$(mvcli show --raw "$esc" | sha256sum | cut -c1-64)"
script -qec "$MV_BUILD/mailvault -c $MV_CONF show --raw $esc" /dev/null >"$D/tty.out" 2>&1
t_eq "show --raw to a terminal escapes" 0 "$(LC_ALL=C grep -c $'\x1b' "$D/tty.out" || true)"
t_contains "and says so" "$(cat "$D/tty.out")" "standard output is a terminal: control characters are shown escaped"
t_done it-integrity

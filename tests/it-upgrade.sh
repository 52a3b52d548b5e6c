#!/usr/bin/env bash
# Upgrading an archive made by an earlier version: `mailvault init` moves secret references out of the
# database (accounts keep their names as secret names and wait for their section), decodes folder names
# and queues their messages for re-indexing, warns about folder patterns whose meaning changed, hands
# the tables to mailvault_owner and still verifies every stored blob; officers who were database logins
# lose every grant and wait, disabled, for a way into mailvault-web; the audit chain written in the first
# form runs on into the second and verifies whole. What was archived is untouched.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
pg_start "$D" >/dev/null
MV_CONF=$D/mailvault.conf
printf '[database]\nconninfo = %s\n' "$MV_CONNINFO" >"$MV_CONF"
# the schema as version 3 left it, with what an archive of that time held
for f in "$MV_ROOT"/sql/00[123]_*.sql; do
	psql -X -q -v ON_ERROR_STOP=1 "$MV_CONNINFO" -f "$f" >/dev/null 2>&1 || { echo "not ok - cannot apply $f"; exit 1; }
done
mv_sql "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO schema_migrations (version, name) VALUES (1, '001_core'), (2, '002_roles'), (3, '003_search');
        INSERT INTO accounts (name, host, port, tls, username, secret_ref, exclude_patterns)
          VALUES ('jdoe', 'imap.example.com', 993, 'imaps', 'jdoe@example.com', 'file:/etc/mailvault/jdoe.pw', '{\"[Gmail]\",Junk*}'),
                 ('legal', 'imap.example.com', 993, 'imaps', 'legal@example.com', 'cmd:pass show mail/legal', '{}');
        INSERT INTO folders (account_id, name, uidvalidity, last_uid) VALUES (1, 'B&APw-cher', 7, 2), (1, 'INBOX', 8, 1);
        INSERT INTO blobs (sha256, size, raw) VALUES (sha256('one'), 3, 'one'), (sha256('two'), 3, 'two');
        INSERT INTO messages (sha256, size, indexed_at) VALUES (sha256('one'), 3, now()), (sha256('two'), 3, now());
        INSERT INTO locations (message_serial, folder_id, uidvalidity, uid) VALUES (1, 1, 7, 1), (2, 1, 7, 2), (1, 2, 8, 1);
        CREATE ROLE legacy_officer LOGIN IN ROLE mailvault_officer;
        INSERT INTO officers (role) VALUES ('legacy_officer');
        INSERT INTO officer_accounts (role, account_id) VALUES ('legacy_officer', 1);
        SELECT mailvault_audit('officer-add', 'legacy_officer', '{\"accounts\": \"jdoe\"}')" >/dev/null
# audit rows of the first form, as the officer's own login did them then
psql -X -q -v ON_ERROR_STOP=1 "$MV_CONNINFO user=legacy_officer" -c "SELECT mailvault_audit('search', 'from:x | y', '{\"count\": 2}')" \
	-c "SELECT mailvault_audit('show', '1', NULL)" >/dev/null
t_eq "the officer's login could read its account's messages" 2 \
	"$(psql -X -At "$MV_CONNINFO user=legacy_officer" -c "SELECT count(*) FROM messages")"
before=$(mv_sql "SELECT string_agg(encode(sha256, 'hex'), ',' ORDER BY sha256) FROM blobs")

out=$("$MV_BUILD/mailvault" -c "$MV_CONF" init 2>&1)
out_init=$out
t_contains "init applies the integrity migration" "$out" "applied 004_integrity"
t_contains "it shows the folder under the name people read" "$out" "folder B&APw-cher is now shown as Bücher"
t_contains "it warns about a pattern whose meaning changed" "$out" "account jdoe: the folder pattern '[Gmail]' now follows IMAP LIST"
t_eq "and not about one that kept it" "" "$(grep "'Junk\*'" <<<"$out")"
t_eq "each account takes its own name as its secret's; the old reference is kept only as a hint" \
	"jdoe|jdoe|file:/etc/mailvault/jdoe.pw legal|legal|cmd:pass show mail/legal" \
	"$(mv_sql "SELECT string_agg(name || '|' || secret_name || '|' || legacy_secret_ref, ' ' ORDER BY name) FROM accounts")"
t_eq "the folder keeps its server name for the protocol" "B&APw-cher|Bücher" \
	"$(mv_sql "SELECT convert_from(server_name, 'UTF8') || '|' || name FROM folders WHERE id = 1")"
t_eq "its messages are queued for re-indexing (the index holds the old name)" "1,2" \
	"$(mv_sql "SELECT string_agg(DISTINCT serial::text, ',') FROM index_queue WHERE op = 'reindex'")"
t_eq "the tables now belong to mailvault_owner" 0 \
	"$(mv_sql "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> 'mailvault_owner'")"
t_eq "the archived bytes are untouched and pass the new hash check" "$before" \
	"$(mv_sql "SELECT string_agg(encode(sha256, 'hex'), ',' ORDER BY sha256) FROM blobs")"
t_contains "verify hashes them again" "$("$MV_BUILD/mailvault" -c "$MV_CONF" verify)" "verify: 2 blobs"
out=$("$MV_BUILD/mailvault" -c "$MV_CONF" status)
t_contains "status says the accounts cannot be polled yet" "$out" "jdoe                 nosecret"
t_contains "and gives the exact section to add, with the old reference as its source" "$out" \
	"$(printf '  [secret jdoe]\n  source = file:/etc/mailvault/jdoe.pw\n  host = imap.example.com\n  user = jdoe@example.com')"
t_contains "for every account" "$out" "$(printf '  [secret legal]\n  source = cmd:pass show mail/legal')"
printf '[secret jdoe]\nsource = file:/etc/mailvault/jdoe.pw\nhost = imap.example.com\nuser = jdoe@example.com\n' >>"$MV_CONF"
t_contains "once the section is there, the account is pollable" "$("$MV_BUILD/mailvault" -c "$MV_CONF" status)" \
	"jdoe                 enabled"
t_contains "a second init applies nothing" "$("$MV_BUILD/mailvault" -c "$MV_CONF" init)" "(0 migrations applied)"

# --- officers: no longer database logins ---
t_contains "init applied the officers' service" "$out_init" "applied 005_officers_service"
t_contains "and printed the steps for the officer who was a login" "$out_init" \
	"officer legacy_officer was the database login legacy_officer, which no longer reads the archive"
t_denied "that login reads no message any more" "permission denied" \
	psql -X -v ON_ERROR_STOP=1 "$MV_CONNINFO user=legacy_officer" -c "SELECT count(*) FROM messages"
t_denied "nor writes the audit log" "permission denied" \
	psql -X -v ON_ERROR_STOP=1 "$MV_CONNINFO user=legacy_officer" -c "SELECT mailvault_audit('search', 'x', NULL)"
t_eq "it is no member of the officers' old role" 0 \
	"$(mv_sql "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'legacy_officer'")"
t_eq "the officer is kept, disabled, with its scope" "legacy_officer|auditor|false|legacy_officer|jdoe" \
	"$(mv_sql "SELECT o.name || '|' || o.role || '|' || o.enabled || '|' || o.legacy_login || '|' || a.name FROM officers o
	           JOIN officer_accounts oa ON oa.officer = o.name JOIN accounts a ON a.id = oa.account_id")"
t_contains "officer list shows it" "$("$MV_BUILD/mailvault" -c "$MV_CONF" officer list)" "legacy_officer           auditor  disabled"

# --- the audit chain: rows of the first form, then of the second, verified as one chain by the service ---
mv_sql "CREATE ROLE upg_web LOGIN IN ROLE mailvault_web" >/dev/null
MV_DIR=$D MV_WEB_SOCKET=$D/web.sock
printf '[database]\nweb_conninfo = %s user=upg_web\n[web]\nsocket = %s\n' "$MV_CONNINFO" "$MV_WEB_SOCKET" >>"$MV_CONF"
"$MV_BUILD/mailvault" -c "$MV_CONF" officer add admin --all --role admin --unix-user "$(id -un)" >/dev/null
mv_web_start
t_eq "the log holds rows of both forms" "1:3 2:3" \
	"$(mv_sql "SELECT string_agg(form || ':' || n, ' ' ORDER BY form) FROM (SELECT form, count(*) n FROM audit_log GROUP BY form) f")"
out=$("$MV_BUILD/mailvault" -c "$MV_CONF" audit verify)
t_contains "audit verify recomputes both forms and finds the chain whole" "$out" "audit verify: all 6 rows verify"
mv_sql "ALTER TABLE audit_log DISABLE TRIGGER audit_log_immutable; UPDATE audit_log SET target = 'from:x' WHERE seq = 2;
        ALTER TABLE audit_log ENABLE TRIGGER audit_log_immutable" >/dev/null
out=$("$MV_BUILD/mailvault" -c "$MV_CONF" audit verify)
t_eq "a first-form row changed by the superuser is found" 1 "$?"
t_contains "at the right row" "$out" "audit verify: row 2 does not verify: its hash is not the hash of its fields"
t_done it-upgrade

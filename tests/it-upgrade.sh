#!/usr/bin/env bash
# Upgrading an archive made by an earlier version: `mailvault init` moves secret references out of the
# database (accounts keep their names as secret names and wait for their section), decodes folder names
# and queues their messages for re-indexing, warns about folder patterns whose meaning changed, hands
# the tables to mailvault_owner and still verifies every stored blob; what was archived is untouched.
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
        INSERT INTO locations (message_serial, folder_id, uidvalidity, uid) VALUES (1, 1, 7, 1), (2, 1, 7, 2), (1, 2, 8, 1)" >/dev/null
before=$(mv_sql "SELECT string_agg(encode(sha256, 'hex'), ',' ORDER BY sha256) FROM blobs")

out=$("$MV_BUILD/mailvault" -c "$MV_CONF" init 2>&1)
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
t_done it-upgrade

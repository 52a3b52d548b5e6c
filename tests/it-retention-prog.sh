#!/usr/bin/env bash
# mailvault-retention, the program: a dry run says exactly what a run then removes (per policy, per account,
# what holds keep); a run removes messages, places and blobs with one proof each, vacuums, and wakes the
# indexer, which drops the documents and records when; a query hold is evaluated by the indexer before
# anything it might cover can go, and a query that does not parse keeps everything; SIGTERM stops after
# the batch in hand, kill -9 leaves every message whole or gone with its proof; status says all of it.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
t_unpack enron-inbox.tar.xz "$D" enron_inbox/maildir/dean-c
E=$D/enron_inbox/maildir/dean-c
dovecot_add_user "$D" alice alice-pw
dovecot_add_user "$D" bob bob-pw
find "$E/inbox" -maxdepth 1 -type f | sort | head -400 | maildir_add "$D" alice INBOX -
find "$E/inbox" -maxdepth 1 -type f | sort | sed -n 401,420p | maildir_add "$D" alice Sub -
find "$E/inbox" -maxdepth 1 -type f | sort | sed -n 421,450p | maildir_add "$D" bob INBOX -
mv_setup "$D"
printf '[indexer]\nindex_path = %s/index\n' "$D" >>"$MV_CONF"
mvcli account add alice --host localhost --port "$DOVECOT_IMAPS_PORT" --user alice --secret "$(mv_pw "$D" alice alice-pw)" >/dev/null
mvcli account add bob --host localhost --port "$DOVECOT_IMAPS_PORT" --user bob --secret "$(mv_pw "$D" bob bob-pw)" >/dev/null
t_ok "the mailboxes are archived" mvd --once
indexer() { "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once; }
ret() { "$MV_BUILD/mailvault-retention" -c "$MV_CONF" "$@"; }
t_ok "and indexed" indexer
# jget PATH: a value of the JSON object on stdin, by a Python expression on j
jget() { "$MV_PYTHON" -c "import json,sys; j=json.load(sys.stdin); print($1)"; }
counts() { mv_sql "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM blobs), (SELECT count(*) FROM locations), (SELECT count(*) FROM audit_log WHERE action = 'dispose')" | tr '\t' ' '; }
doccount() { local n=0 s c; for s in "$D"/index/shard-*; do c=$(xapian-delve "$s" | sed -n 's/^number of documents = //p'); n=$((n + c)); done; echo "$n"; }

# --- configuration: [retention] keys, strictly read, copied by init ---
t_eq "the messages are there" "450 450 450 0" "$(counts)"
cp "$MV_CONF" "$D/bad.conf"
printf '[retention]\nmin_age = 7 days\n' >>"$D/bad.conf"
t_denied "a duration that is not N followed by a unit is a configuration error with file:line" \
	"bad.conf:$(wc -l <"$D/bad.conf"): bad value for 'min_age'" ret -c "$D/bad.conf" --dry-run
printf '[retention]\nmin_age = 0d\nrelease_grace = 0d\nbatch = 50\n' >>"$MV_CONF"
out=$(mvcli init)
t_contains "init copies min_age into the database and says so" "$out" "retention min_age is now 00:00:00 (was 7 days)"
t_contains "and release_grace" "$out" "retention release_grace is now 00:00:00 (was 30 days)"
t_eq "a second init changes nothing and says nothing of it" "" "$(mvcli init | grep retention)"
out=$(mvcli status)
t_contains "status: no policy, no hold yet" "$out" "retention: 0 policies, 0 active holds; 0 messages past retain_until kept by holds"
t_contains "status: no disposal yet" "$out" "last disposal: none yet"

# --- holds and a policy (as the superuser; the officers' commands are another test's) ---
BOB=$(mv_sql "SELECT id FROM accounts WHERE name = 'bob'")
read -r -a held_ids <<<"$(mv_sql "SELECT string_agg(message_id, ' ') FROM (SELECT m.message_id FROM messages m JOIN locations l ON l.message_serial = m.serial JOIN folders f ON f.id = l.folder_id WHERE f.name = 'Sub' AND m.message_id IS NOT NULL ORDER BY m.serial LIMIT 2) x")"
mv_sql "INSERT INTO matters (name, description, created_by) VALUES ('m1', 'a matter', 'test');
        INSERT INTO holds (name, matter_id, reason, account_ids, placed_by) VALUES ('bobhold', 1, 'custodian', '{$BOB}', 'test');
        INSERT INTO holds (name, matter_id, reason, all_accounts, query, placed_by)
            VALUES ('qhold', 1, 'two messages', true, 'msgid:\"${held_ids[0]}\" OR msgid:\"${held_ids[1]}\"', 'test');
        INSERT INTO policies (name, keep, all_accounts, folder_pattern, created_by) VALUES ('short', '1 day', true, 'Sub', 'test')" >/dev/null
t_eq "the policy expires the 20 messages of Sub (their Date is of 2000-2001)" 20 \
	"$(mv_sql "SELECT count(*) FROM messages WHERE retain_until <= now()")"
t_eq_ok "before the indexer has evaluated the query hold, nothing may go" 0 \
	bash -c "'$MV_BUILD/mailvault-retention' -c '$MV_CONF' --dry-run --json | $MV_PYTHON -c 'import json,sys; print(json.load(sys.stdin)[\"dispose\"][\"messages\"])'"
out=$(indexer 2>&1)
t_contains "the indexer records what the query hold covers" "$out" "coverage: hold 2's query matches 2 messages (2 newly recorded)"
t_eq "and up to when" 1 "$(mv_sql "SELECT count(*) FROM holds WHERE name = 'qhold' AND covered_through IS NOT NULL")"

# --- the dry run ---
json=$(ret --dry-run --json)
t_eq "--dry-run --json: 18 messages would go" 18 "$(jget 'j["dispose"]["messages"]' <<<"$json")"
t_eq "with their bytes" "$(mv_sql "SELECT sum(m.size) FROM messages m WHERE m.retain_until <= now() AND NOT mailvault_held(m.serial)")" \
	"$(jget 'j["dispose"]["bytes"]' <<<"$json")"
t_eq "all by policy short" "short 18" "$(jget '" ".join("%s %d" % (p["policy"], p["messages"]) for p in j["by_policy"])' <<<"$json")"
t_eq "all in account alice" "alice 18" "$(jget '" ".join("%s %d" % (p["account"], p["messages"]) for p in j["by_account"])' <<<"$json")"
t_eq "2 expired messages are kept, by qhold" "2 qhold 2" \
	"$(jget '"%d %s" % (j["kept_by_holds"]["messages"], " ".join("%s %d" % (h["hold"], h["messages"]) for h in j["kept_by_holds"]["by_hold"]))' <<<"$json")"
t_eq "no erasure pending" 0 "$(jget 'j["erasures_pending"]["messages"]' <<<"$json")"
out=$(ret --dry-run)
t_contains "the table says the same" "$out" "would be disposed of now"
t_contains "per policy" "$out" "policy   short"
t_contains "per hold" "$out" "hold     qhold"
t_eq "the dry run changed nothing" "450 450 450 0" "$(counts)"
t_eq "and recorded no run" 0 "$(mv_sql "SELECT count(*) FROM disposal_runs")"

# --- a run ---
docs_before=$(doccount)
out=$(ret --once 2>&1)
t_eq "a run succeeds (exit status 0)" 0 "$?"
t_contains "and says what it did" "$out" "disposed 18 messages ("
t_contains "and what holds kept" "$out" "kept 2 under holds"
t_eq "messages, blobs and places dropped by exactly 18, with one proof each" "432 432 432 18" "$(counts)"
t_eq "the proofs carry SHA-256, policy and accounts" 18 \
	"$(mv_sql "SELECT count(*) FROM audit_log WHERE action = 'dispose' AND length(details->>'sha256') = 64 AND details->>'policy' = 'short' AND details->'accounts' = '[\"alice\"]'")"
t_eq "the held ones are still there" 2 "$(mv_sql "SELECT count(*) FROM messages m JOIN locations l ON l.message_serial = m.serial JOIN folders f ON f.id = l.folder_id WHERE f.name = 'Sub'")"
t_eq "the run is recorded, vacuumed" "18 0 t f" \
	"$(mv_sql "SELECT disposed, erased, vacuumed_at IS NOT NULL, index_purged_at IS NOT NULL FROM disposal_runs" | tr '\t' ' ')"
out=$(mvcli status)
t_contains "status: the policy and holds" "$out" "retention: 1 policy, 2 active holds; 2 messages past retain_until kept by holds"
t_contains "status: the last disposal, vacuumed, not yet out of the index" "$out" "messages disposed of and 0 erased"
t_contains "status: not yet out of the index" "$out" "removed from the index: not yet"
t_contains "status: removals pending" "$out" "index removals pending: 18"
t_ok "the indexer drains the removals" indexer
t_eq "the index holds 18 documents fewer" "$((docs_before - 18))" "$(doccount)"
t_eq "and the run records when" 1 "$(mv_sql "SELECT count(*) FROM disposal_runs WHERE index_purged_at IS NOT NULL")"
out=$(mvcli status)
t_contains "status: nothing pending" "$out" "index removals pending: 0"
t_eq "status: the index purge time is shown" "" "$(grep -o 'removed from the index: not yet' <<<"$out")"
t_ok "index verify agrees with the archive" mvcli index verify
t_eq "a second dry run finds nothing more" 0 "$(ret --dry-run --json | jget 'j["dispose"]["messages"]')"

# --- a query that does not parse keeps everything ---
mv_sql "INSERT INTO holds (name, matter_id, reason, all_accounts, query, placed_by) VALUES ('badq', 1, 'typo', true, 'frm:nobody', 'test');
        INSERT INTO policies (name, keep, all_accounts, created_by) VALUES ('all', '1 day', true, 'test')" >/dev/null
out=$(indexer 2>&1)
t_contains "the indexer names the hold whose query does not parse" "$out" "hold 3: its query cannot be evaluated"
t_eq "nothing may go while it is unevaluated" 0 "$(ret --dry-run --json | jget 'j["dispose"]["messages"]')"
mv_sql "UPDATE holds SET released_at = now(), released_by = 'test', release_reason = 'typo' WHERE name = 'badq'" >/dev/null
json=$(ret --dry-run --json)
t_eq "released (release_grace 0d), the 400 messages of alice's INBOX may go" 400 "$(jget 'j["dispose"]["messages"]' <<<"$json")"
t_eq "bob's 30 and qhold's 2 are kept" "32 bobhold:30 qhold:2" \
	"$(jget '"%d %s" % (j["kept_by_holds"]["messages"], " ".join("%s:%d" % (h["hold"], h["messages"]) for h in j["kept_by_holds"]["by_hold"]))' <<<"$json")"

# --- SIGTERM stops after the batch in hand; kill -9 leaves nothing half done ---
# each deletion made slow, so that the run can be stopped in its middle (a scratch database)
mv_sql "CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN PERFORM pg_sleep(0.01); RETURN NULL; END \$\$;
        CREATE TRIGGER slow AFTER DELETE ON messages FOR EACH ROW EXECUTE FUNCTION slow()" >/dev/null
wait_proofs() { # N: waits until at least N proofs exist
	local i
	for ((i = 0; i < 300; i++)); do
		[ "$(mv_sql "SELECT count(*) FROM audit_log WHERE action = 'dispose'")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
"$MV_BUILD/mailvault-retention" -c "$MV_CONF" --once >"$D/term.log" 2>&1 &
pid=$!
t_register_pid "$pid"
wait_proofs 30
kill -TERM "$pid"
wait "$pid"
t_eq "SIGTERM: the run ends with status 0" 0 "$?"
t_contains "and says it stopped early" "$(cat "$D/term.log")" "stopped early on request"
n=$(mv_sql "SELECT count(*) FROM audit_log WHERE action = 'dispose'")
t_ok "after some batches, not all" test "$n" -gt 18 -a "$n" -lt 418
t_eq "its run is recorded as finished, with what it did" "$((n - 18))" \
	"$(mv_sql "SELECT disposed FROM disposal_runs WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1")"
"$MV_BUILD/mailvault-retention" -c "$MV_CONF" --once >"$D/kill.log" 2>&1 &
pid=$!
t_register_pid "$pid"
wait_proofs $((n + 60))
kill -KILL "$pid"
wait "$pid" 2>/dev/null
# the batch in hand ends on the server as it would have (committed, or rolled back when the server finds the
# client gone): wait until no disposal statement is running before counting
for _ in $(seq 300); do
	[ "$(mv_sql "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%mailvault_dispose_batch%' AND pid <> pg_backend_pid()")" = 0 ] && break
	sleep 0.1
done
n=$(mv_sql "SELECT count(*) FROM audit_log WHERE action = 'dispose'")
t_ok "kill -9 in the middle: some went, not all" test "$n" -gt 78 -a "$n" -lt 418
t_eq "every message is either whole or gone with its proof" "450" \
	"$(mv_sql "SELECT (SELECT count(*) FROM messages) + (SELECT count(*) FROM audit_log WHERE action = 'dispose')")"
t_eq "no message lost a place or its blob; no proof names a message still there" "0 0 0" \
	"$(mv_sql "SELECT (SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM locations l WHERE l.message_serial = m.serial)),
	           (SELECT count(*) FROM messages m WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = m.sha256)),
	           (SELECT count(*) FROM audit_log a JOIN messages m ON m.serial = (a.details->>'serial')::bigint WHERE a.action = 'dispose')" | tr '\t' ' ')"
t_eq "and no blob outlived its message" "$(mv_sql "SELECT count(*) FROM messages")" "$(mv_sql "SELECT count(*) FROM blobs")"
mv_sql "DROP TRIGGER slow ON messages; DROP FUNCTION slow()" >/dev/null
# this time VACUUM runs on a login that does not own the tables (the poller's)
printf 'vacuum_conninfo = %s user=mv_poller\n' "$MV_CONNINFO" >>"$MV_CONF"
out=$(ret --once 2>&1)
t_eq "the next run finishes the rest" 0 "$?"
t_contains "exactly the rest" "$out" "disposed $((418 - n)) messages ("
t_contains "a VACUUM that may not run is a warning that says where the bytes stay and what to set" "$out" \
	"the disposed messages' bytes stay in the table files until autovacuum reclaims them; set [retention] vacuum_conninfo"
t_eq "and recorded on the run" "t f" "$(mv_sql "SELECT vacuum_error IS NOT NULL, vacuumed_at IS NOT NULL FROM disposal_runs ORDER BY id DESC LIMIT 1" | tr '\t' ' ')"
t_contains "status shows it" "$(mvcli status)" "its VACUUM failed ("
t_eq "in all, the 418 the dry runs announced went, the 32 held stay" "32 32 32 418" "$(counts)"
t_eq "what is left is what the holds keep" 32 "$(mv_sql "SELECT count(*) FROM messages WHERE mailvault_held(serial)")"
t_ok "the indexer drains every removal" indexer
t_eq "the index holds the 32 kept" 32 "$(doccount)"
t_ok "index verify agrees" mvcli index verify
t_eq "every finished run is out of the index" 0 "$(mv_sql "SELECT count(*) FROM disposal_runs WHERE finished_at IS NOT NULL AND index_purged_at IS NULL")"
t_eq "the audit chain verifies" 0 "$(mvcli audit verify >/dev/null 2>&1; echo $?)"
t_done it-retention-prog

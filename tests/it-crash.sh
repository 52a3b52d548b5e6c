#!/usr/bin/env bash
# Crash safety: mailvaultd killed with SIGKILL at random moments, again and again, then restarted, ends
# with exactly the server's messages, none twice; SIGTERM finishes the batch in hand and exits cleanly.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
t_unpack enron-inbox.tar.xz "$D"
E=$D/enron_inbox/maildir

dovecot_add_user "$D" carol carol-pw
dovecot_add_user "$D" dave dave-pw
# about 6,000 messages: enough that a dozen kills all land in the middle of the ingest
for u in kaminski-v shackleton-s nemec-g; do find "$E/$u/inbox" -type f; done | sort | maildir_add "$D" carol INBOX -
for u in germany-c kean-s lay-k; do find "$E/$u/inbox" -type f; done | sort | maildir_add "$D" dave INBOX -
for u in skilling-j; do find "$E/$u/inbox" -type f; done | sort | maildir_add "$D" dave Archive -
# overlap between the two mailboxes exercises concurrent inserts of the same content
find "$E/kaminski-v/inbox" -type f | sort | head -300 | maildir_add "$D" dave Copies -

# small batches so that kills land between, inside and across many transactions
mv_setup "$D" "batch_messages = 10
batch_bytes = 128K"
mvcli account add carol --host localhost --port "$DOVECOT_IMAPS_PORT" --user carol --secret "$(mv_pw "$D" carol carol-pw)" >/dev/null
mvcli account add dave --host localhost --port "$DOVECOT_IMAPS_PORT" --user dave --secret "$(mv_pw "$D" dave dave-pw)" >/dev/null

total=$(( $(mv_server_set carol carol-pw | wc -l) + $(mv_server_set dave dave-pw | wc -l) ))
echo "# the server holds $total messages"

# the binary itself goes to the background (not a shell function), so $! is the daemon's pid. The kill
# moment adapts to this machine's speed: later when a pass archived nothing, sooner when it archived
# much, randomised around that; a kill counts only if it cut into an ingest that had begun and not ended.
kills=0 tries=0 progress=0 delay=150
while [ "$kills" -lt 12 ] && [ "$tries" -lt 80 ]; do
	tries=$((tries + 1))
	"$MV_BUILD/mailvaultd" -c "$MV_CONF" --once >>"$D/daemon.log" 2>&1 &
	pid=$!
	ms=$((delay * (70 + RANDOM % 61) / 100))
	sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
	before=$progress
	killed=0
	kill -KILL "$pid" 2>/dev/null && killed=1
	wait "$pid" 2>/dev/null
	progress=$(mv_sql "SELECT count(*) FROM locations")
	if [ "$killed" = 1 ] && [ "$progress" -gt 0 ] && [ "$progress" -lt "$total" ]; then
		kills=$((kills + 1))
	fi
	if [ "$progress" = "$before" ]; then
		delay=$((delay + 100))
	elif [ $((progress - before)) -gt $((total / 20)) ]; then
		delay=$((delay * 2 / 3 > 30 ? delay * 2 / 3 : 30))
	fi
	echo "# try $tries: SIGKILL after ${ms} ms (counted kills: $kills), $before -> $progress of $total locations"
	[ "$progress" = "$total" ] && break
done
t_ok "the daemon was killed at least 10 times in the middle of one ingest ($kills)" test "$kills" -ge 10

# SIGTERM: finish the batch in hand, release the lease, exit 0
"$MV_BUILD/mailvaultd" -c "$MV_CONF" >"$D/term.log" 2>&1 &
pid=$!
sleep 0.3
# SIGHUP first: the configuration is read again without a restart
sed -i 's/^log_level = info/log_level = debug/' "$MV_CONF"
kill -HUP "$pid"
sleep 0.3
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
t_eq "SIGTERM stops the daemon cleanly" 0 "$rc"
t_contains "SIGHUP reloaded the configuration" "$(cat "$D/term.log")" "configuration reloaded from"
t_contains "SIGTERM let the batch in hand finish" "$(cat "$D/term.log")" "stopped"
sed -i 's/^log_level = debug/log_level = info/' "$MV_CONF"
t_eq "no lease is left behind after SIGTERM" 0 "$(mv_sql 'SELECT count(*) FROM accounts WHERE lease_owner IS NOT NULL')"

t_ok "a restart after the kills completes the archive" mvd --once
for u in carol:carol-pw dave:dave-pw; do
	t_eq "${u%%:*}: archive equals the server's set exactly" "$(mv_server_set "${u%%:*}" "${u#*:}")" "$(mv_archived_set "${u%%:*}")"
done
t_eq "exactly one location per server message" "$total" "$(mv_sql 'SELECT count(*) FROM locations')"
t_eq "no message stored twice" "$(mv_sql 'SELECT count(DISTINCT sha256) FROM messages')" "$(mv_sql 'SELECT count(*) FROM messages')"
t_eq "every message has its blob and every blob its message" "$(mv_sql 'SELECT count(*) FROM blobs')" "$(mv_sql 'SELECT count(*) FROM messages')"
t_eq "stored bytes hash to their key" 0 "$(mv_sql 'SELECT count(*) FROM blobs WHERE sha256 <> sha256(raw)')"
t_eq "nothing was recorded as an ingest error" 0 "$(mv_sql 'SELECT count(*) FROM ingest_errors')"
t_eq "the watermark is each folder's highest UID" \
	"$(mv_sql "SELECT f.name || ':' || f.last_uid FROM folders f ORDER BY f.id")" \
	"$(mv_sql "SELECT f.name || ':' || max(l.uid) FROM folders f JOIN locations l ON l.folder_id = f.id GROUP BY f.id, f.name ORDER BY f.id")"
t_done it-crash

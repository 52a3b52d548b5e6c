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
# erin's mailbox, big enough to take a while, gets an account only for the SIGHUP and SIGTERM checks
dovecot_add_user "$D" erin erin-pw
for u in dasovich-j campbell-l salisbury-h buy-r may-l; do find "$E/$u/inbox" -type f; done | sort | maildir_add "$D" erin INBOX -
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

# SIGHUP and SIGTERM while a poll is at work: erin's mailbox, archived only from now on
erin_total=$(mv_server_set erin erin-pw | wc -l)
t_ok "erin's mailbox is big enough to take a while ($erin_total messages)" test "$erin_total" -gt 3000
mvcli account add erin --host localhost --port "$DOVECOT_IMAPS_PORT" --user erin --secret "$(mv_pw "$D" erin erin-pw)" >/dev/null
erin_n() { mv_sql "SELECT count(*) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'erin'"; }
sed -i 's/^log_level = info/log_level = debug/' "$MV_CONF"
"$MV_BUILD/mailvaultd" -c "$MV_CONF" >"$D/term.log" 2>&1 &
pid=$!
for ((i = 0; i < 200; i++)); do [ "$(erin_n)" -gt 0 ] && break; sleep 0.05; done
# SIGHUP: a new configuration, with batches of 500, for the polls that start later; the poll at work
# keeps the one it started with (batches of 10)
sed -i 's/^batch_messages = 10$/batch_messages = 500/' "$MV_CONF"
kill -HUP "$pid"
sleep 0.2
at_term=$(erin_n)
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
after=$(erin_n)
log=$(cat "$D/term.log")
t_eq "SIGTERM stops the daemon cleanly" 0 "$rc"
t_contains "SIGHUP reloaded the configuration" "$log" "configuration reloaded from"
t_ok "the signals came while erin's mailbox was being archived ($at_term of $erin_total)" \
	test "$at_term" -gt 0 -a "$at_term" -lt "$erin_total"
t_ok "the poll at work stored batches after the reload" bash -c "sed -n '/configuration reloaded/,\$p' '$D/term.log' | grep -q 'account erin folder INBOX: stored a batch of'"
t_eq "and kept its configuration: every batch it stored after the reload held at most 10" "" \
	"$(sed -n '/configuration reloaded/,$p' "$D/term.log" | grep 'account erin folder INBOX: stored a batch of' |
	   grep -v 'stored a batch of \([0-9]\|10\) messages' || true)"
t_contains "SIGTERM came with a batch in hand" "$log" "stopping: finishing the batches in hand"
t_ok "and that batch was stored before the daemon left" bash -c "sed -n '/stopping: finishing/,\$p' '$D/term.log' | grep -q 'account erin folder INBOX: stored a batch of'"
t_ok "then it stopped without finishing the mailbox ($after of $erin_total)" test "$after" -lt "$erin_total"
t_contains "and said so" "$log" "stopped"
sed -i 's/^log_level = debug/log_level = info/; s/^batch_messages = 500$/batch_messages = 10/' "$MV_CONF"
total=$((total + erin_total))
t_eq "no lease is left behind after SIGTERM" 0 "$(mv_sql 'SELECT count(*) FROM accounts WHERE lease_owner IS NOT NULL')"

t_ok "a restart after the kills completes the archive" mvd --once
for u in carol:carol-pw dave:dave-pw erin:erin-pw; do
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

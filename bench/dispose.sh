#!/usr/bin/env bash
# Disposal benchmark (issue 10), part 3 of `make bench`: mailvault-retention --once on the Enron archive with
# 10% of it under legal holds, while an ingest and searches run; against the same deletion done bare.
#
# bench/bench.sh sources this file (it only defines functions) and calls part3_main with its private
# Dovecot (the whole Enron corpus, DIR/dovecot/users.tsv) running. Everything is on unix sockets and
# 127.0.0.1, in the scratch folder B:
#   1. archive: a fresh PostgreSQL 15 cluster B/pgdispose (fsync on; log_lock_waits = on, deadlock_timeout
#      = 1s, track_functions = pl), one account per Enron user except 5 kept out for the concurrent ingest
#      (the last 5 of users.tsv), mailvaultd --once, mailvault-indexer --once (the same way as parts 1-2)
#   2. holds, through the officers' commands on mailvault-web's socket: a matter; a hold on whole accounts
#      (largest first, while they fit in 5% of the messages); a hold on every account (--all) with a query
#      (of a fixed list of candidates, the one whose count outside the first hold's accounts, checked with
#      `mailvault search --count`, is closest to 5%; the query says NOT those accounts, so that the two
#      holds' messages are apart), the form that tests every message against recorded coverage; the
#      indexer run once to record the query's coverage; [retention] min_age = 0d (by
#      mailvault init) and `policy add all-1y --keep 1y --all --confirm`. Recorded: the held set (serials
#      where mailvault_held), the eligible set (mailvault_disposal_candidates), anything else. VACUUM
#      ANALYZE, then the snapshot: PostgreSQL stopped, its data directory and the index copied.
#   3. three timed runs, each on the snapshot restored (PostgreSQL restarted on the copy): the 5 kept-out
#      accounts added, mailvault-web started, a loop of `mailvault search --count` (bench/queries.tsv) through
#      its socket and `mailvaultd --once` (the 5 new accounts' mail, the others polled) started, then
#      `mailvault-retention -c CONF --once` (its own login, a member of mailvault_retention only; VACUUM on
#      [retention] vacuum_conninfo, the superuser, the administrator's login) timed. Disposal seconds =
#      disposal_runs.finished_at - started_at; vacuum seconds from the program's debug log. Then checked:
#      every held message still there (the exact set), the archive's messages left = held + not eligible,
#      one audit row 'dispose' per disposed message naming exactly the eligible set, `mailvault audit verify`
#      (through the service); lock waits: the "still waiting for" lines of the server log during the run;
#      then mailvault-indexer --once, the index removal time = disposal_runs.index_purged_at - its start.
#   4. the bare reference, on the snapshot restored each round: the same messages, their locations and blobs
#      deleted by the superuser with session_replication_role = replica (no triggers, no foreign keys, no
#      holds, no proofs), 500 a transaction, timed
#   5. table per run, medians, targets (>= 5,000 msg/s; lock waits over 1 s: 0), section
#      "## Disposal (issue 10)" of bench/RESULTS.md rewritten (hand-written notes after NOTES_MARK kept)
#
# Alone (develops on a subset without waiting for parts 1-2):
#   bash bench/dispose.sh [SCRATCH]
# SCRATCH: a folder with a loaded Dovecot (B/dovecot, e.g. kept by MV_KEEP=1 make bench, or an earlier
# standalone run); without it a new scratch folder is made and the corpus loaded (about 15 s). The part's
# archive and snapshot stay in SCRATCH/p3 when MV_KEEP=1; MV_P3_REUSE=1 then reuses that snapshot (same users)
# and goes straight to the timed runs. Environment: MV_BENCH_DISPOSE_USERS=N (archive only the first N users
# of users.tsv, besides the 5 kept out; default all), MV_P3_RUNS (timed runs, default 3), MV_P3_NO_RESULTS=1
# (leave RESULTS.md alone; set by default for a subset), MV_P3_DIAG=1 (after the runs, on a restored
# snapshot, one untimed disposal with track_functions = all: every SQL function's time, for the report).
# shellcheck source-path=SCRIPTDIR

P3_SECTION="## Disposal (issue 10)"
P3_LATE_N=5

# p3_sql SQL: rows from the archive as the superuser (tab-separated).
p3_sql() {
	psql -X -At -F $'\t' -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "$1"
}

# p3_cli ARGS...: the mailvault command on the part's configuration (officers' commands go to its socket).
p3_cli() {
	"$MVCLI" -c "$P3_CONF" "$@"
}

# p3_web_start / p3_web_stop: mailvault-web on the part's configuration (its own login, bench_web).
p3_web_start() {
	local i
	rm -f "$P3/web.sock"
	"$B/bin/mailvault-web" -c "$P3_CONF" >>"$P3/web.log" 2>&1 &
	P3_WEB_PID=$!
	echo "$P3_WEB_PID" >"$P3/web.pid" # stopped by the scratch folder's cleanup if this script dies
	for ((i = 0; i < 100; i++)); do [ -S "$P3/web.sock" ] && return 0; sleep 0.1; done
	tail -n 20 "$P3/web.log" >&2
	die "mailvault-web did not start"
}
p3_web_stop() {
	[ -n "${P3_WEB_PID:-}" ] || return 0
	kill -TERM "$P3_WEB_PID" 2>/dev/null
	wait "$P3_WEB_PID" 2>/dev/null
	P3_WEB_PID=
	rm -f "$P3/web.pid"
	return 0
}

# p3_restore: the cluster and the index as they were at the snapshot, PostgreSQL started on the copy.
p3_restore() {
	pg_stop "$P3_PG"
	rm -rf "$P3_PG/pg/data" "$P3/index"
	cp -a "$P3/snap/data" "$P3_PG/pg/data"
	cp -a "$P3/snap/index" "$P3/index"
	pg_start "$P3_PG"
}

# p3_add_accounts LIST: accounts for the users of the file LIST (user TAB password ...).
p3_add_accounts() {
	local user _pw _f _m
	while IFS=$'\t' read -r user _pw _f _m; do
		p3_cli account add "$user" --host localhost --port "$DOVECOT_IMAPS_PORT" --user "$user" --secret "$user" \
			>>"$P3/setup.log" 2>&1 || {
			tail -n 20 "$P3/setup.log" >&2
			die "mailvault account add $user failed"
		}
	done <"$1"
}

# p3_search_loop STOPFILE OUT: mailvault search --count of the queries of bench/queries.tsv, one after the
# other through mailvault-web's socket, until STOPFILE exists; one line per search: start, ms, exit status.
p3_search_loop() {
	local stop=$1 out=$2 q t0 t1 rc qs=()
	while IFS=$'\t' read -r q _; do qs+=("$q"); done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$BENCH_DIR/queries.tsv")
	while [ ! -e "$stop" ]; do
		for q in "${qs[@]}"; do
			[ -e "$stop" ] && break
			t0=$EPOCHREALTIME
			rc=0
			"$MVCLI" -c "$P3_CONF" search --count "$q" >/dev/null 2>>"$out.err" || rc=$?
			t1=$EPOCHREALTIME
			printf '%s %s %s\n' "$t0" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }')" "$rc" >>"$out"
		done
	done
}

# p3_setup: steps 1 and 2: the archive, its holds and policy, the recorded sets, the snapshot.
p3_setup() {
	local users=$P3/users.tsv late=$P3/late.tsv nu
	nu=$(wc -l <"$DC/users.tsv")
	tail -n "$P3_LATE_N" "$DC/users.tsv" >"$late"
	head -n $((nu - P3_LATE_N)) "$DC/users.tsv" | head -n "${MV_BENCH_DISPOSE_USERS:-$nu}" >"$users"
	P3_N_USERS=$(wc -l <"$users")
	if [ -d "$P3_PG" ]; then
		pg_stop "$P3_PG" >/dev/null 2>&1 || true
		rm -rf "${P3_PG:?}"
	fi
	rm -rf "$P3/snap" "$P3/index"
	pg_start "$P3_PG"
	# lock waits over a second are logged, with their statement; plpgsql functions' time is counted
	_mv_pg_as_postgres tee -a "$P3_PG/pg/data/postgresql.conf" >/dev/null <<-CONF

	# --- bench/dispose.sh ---
	log_lock_waits = on
	deadlock_timeout = 1s
	track_functions = 'pl'
	CONF
	pg_stop "$P3_PG"
	pg_start "$P3_PG"
	cat >"$P3_CONF" <<-EOF
	[database]
	conninfo = $MV_CONNINFO
	ingest_conninfo = $MV_CONNINFO user=bench_poller
	retention_conninfo = $MV_CONNINFO user=bench_retention
	web_conninfo = $MV_CONNINFO user=bench_web
	[daemon]
	workers = 4
	log_level = info
	[tls]
	ca_file = $MV_CA_FILE
	[indexer]
	index_path = $P3/index
	[web]
	socket = $P3/web.sock
	[retention]
	min_age = 0d
	vacuum_conninfo = $MV_CONNINFO
	EOF
	p3_cli init >"$P3/setup.log" 2>&1 || { cat "$P3/setup.log" >&2; die "mailvault init failed"; }
	grep -q 'min_age is now 00:00:00' "$P3/setup.log" || die "mailvault init did not set min_age 0d: $(cat "$P3/setup.log")"
	pg_psql "CREATE ROLE bench_poller LOGIN IN ROLE mailvault_ingest" "CREATE ROLE bench_web LOGIN IN ROLE mailvault_web" \
		"CREATE ROLE bench_retention LOGIN IN ROLE mailvault_retention" >/dev/null
	mkdir -p "$B/secrets"
	local user pw _f _m
	while IFS=$'\t' read -r user pw _f _m; do
		[ -f "$B/secrets/$user" ] || (umask 077 && printf '%s' "$pw" >"$B/secrets/$user")
		printf '[secret %s]\nsource = file:%s\nhost = localhost\nuser = %s\n' "$user" "$B/secrets/$user" "$user" >>"$P3_CONF"
	done < <(cat "$users" "$late")
	p3_add_accounts "$users"
	local want
	want=$(awk -F'\t' '{ s += $4 } END { print s }' "$users")
	say "part 3: archiving $P3_N_USERS accounts ($want messages; kept out for the concurrent ingest:" \
		"$(cut -f1 "$late" | tr '\n' ' ' | sed 's/ $//'), $(awk -F'\t' '{ s += $4 } END { print s }' "$late") messages)"
	"$MVD" -c "$P3_CONF" --once 2>"$P3/mvd-setup.log" || { tail -n 20 "$P3/mvd-setup.log" >&2; die "mailvaultd --once failed"; }
	local locs
	locs=$(pg_psql "SELECT count(*) FROM locations")
	[ "$locs" = "$want" ] || die "part 3: $locs locations archived, expected $want"
	say "part 3: mailvault-indexer --once"
	"$IDX" -c "$P3_CONF" --once 2>"$P3/indexer-setup.log" || { tail -n 20 "$P3/indexer-setup.log" >&2; die "mailvault-indexer --once failed"; }
	[ "$(pg_psql "SELECT count(*) FROM messages WHERE indexed_at IS NULL")" = 0 ] || die "part 3: messages left unindexed"

	# ---- holds and the policy, through the officers' commands
	"$MVCLI" -c "$P3_CONF" officer add bench --all --role admin --unix-user "$(id -un)" >>"$P3/setup.log" 2>&1 ||
		die "officer add bench failed"
	p3_web_start
	P3_TOTAL=$(pg_psql "SELECT count(*) FROM messages")
	local target=$((P3_TOTAL / 20)) acc_list sum name n
	# whole accounts, largest first, while they fit in 5% (distinct messages per account, from the archive)
	acc_list=()
	sum=0
	while IFS=$'\t' read -r name n; do
		if [ $((sum + n)) -le $((target + target / 50)) ]; then
			acc_list+=("$name")
			sum=$((sum + n))
		fi
		[ "$sum" -ge $((target - target / 50)) ] && break
	done < <(p3_sql "SELECT a.name, count(DISTINCT l.message_serial) FROM accounts a JOIN folders f ON f.account_id = a.id
	                 JOIN locations l ON l.folder_id = f.id GROUP BY a.name ORDER BY 2 DESC, 1")
	[ "${#acc_list[@]}" -gt 0 ] || die "part 3: no account fits in 5% of the archive"
	P3_HOLD_ACCOUNTS=$(IFS=,; echo "${acc_list[*]}")
	local not_q
	not_q=$(printf 'account:%s OR ' "${acc_list[@]}" | sed 's/ OR $//')
	# the query: of these candidates, the one closest to 5% over the other accounts
	local q c best_q="" best_c=0 best_d=-1 d
	for q in california meeting contract conference pipeline energy power schedule '"natural gas"' dynegy bankruptcy \
		'subject:meeting' 'subject:california' 'california OR dynegy' 'meeting OR conference'; do
		c=$(p3_cli search --count "($q) NOT ($not_q)" 2>>"$P3/setup.log") || die "search --count '$q' failed"
		d=$((c > target ? c - target : target - c))
		if [ "$best_d" -lt 0 ] || [ "$d" -lt "$best_d" ]; then best_q=$q; best_c=$c; best_d=$d; fi
	done
	P3_HOLD_QUERY="($best_q) NOT ($not_q)"
	say "part 3: holds on ${#acc_list[@]} accounts ($sum messages: $P3_HOLD_ACCOUNTS) and, on every account, the" \
		"query '$P3_HOLD_QUERY' ($best_c messages; target 5% = $target)"
	{
		p3_cli matter add bench-matter --description "disposal benchmark: 10% of the archive under holds" &&
			p3_cli hold add custodians --matter bench-matter --reason "custodians" --accounts "$P3_HOLD_ACCOUNTS" &&
			p3_cli hold add topic --matter bench-matter --reason "topic" --all --query "$P3_HOLD_QUERY"
	} >>"$P3/setup.log" 2>&1 || { tail -n 20 "$P3/setup.log" >&2; die "matter or hold add failed"; }
	"$IDX" -c "$P3_CONF" --once 2>>"$P3/indexer-setup.log" || die "mailvault-indexer --once (coverage) failed"
	[ "$(pg_psql "SELECT count(*) FROM holds WHERE query IS NOT NULL AND covered_through IS NULL")" = 0 ] ||
		die "part 3: the query hold's coverage was not recorded"
	p3_cli policy add all-1y --keep 1y --all --confirm >>"$P3/setup.log" 2>&1 || { tail -n 5 "$P3/setup.log" >&2; die "policy add failed"; }
	p3_web_stop

	# ---- the recorded sets (statistics first: the archive was loaded a minute ago)
	pg_psql "VACUUM ANALYZE" >/dev/null
	p3_sql "SELECT h FROM mailvault_held_among(ARRAY(SELECT serial FROM messages)) h ORDER BY 1" >"$P3/held.txt"
	p3_sql "SELECT serial FROM mailvault_disposal_candidates(0, 2147483647) ORDER BY 1" >"$P3/eligible.txt"
	p3_sql "SELECT serial FROM messages WHERE serial NOT IN (SELECT mailvault_held_among(ARRAY(SELECT serial FROM messages)))
	        EXCEPT SELECT serial FROM mailvault_disposal_candidates(0, 2147483647) ORDER BY 1" >"$P3/other.txt"
	P3_HELD=$(wc -l <"$P3/held.txt")
	P3_ELIG=$(wc -l <"$P3/eligible.txt")
	P3_OTHER=$(wc -l <"$P3/other.txt")
	p3_held_by() { # HOLD: the messages that hold covers
		p3_sql "SELECT count(DISTINCT c.serial) FROM (SELECT array_agg(serial) s, array_agg(date) d, array_agg(ingested_at) g,
		        array_agg(indexed_at) x FROM messages) a, mailvault_holds_covering(a.s, a.d, a.g, a.x) c WHERE c.hold = '$1'"
	}
	P3_HELD_ACC=$(p3_held_by custodians)
	P3_HELD_Q=$(p3_held_by topic)
	P3_MAXSERIAL=$(p3_sql "SELECT max(serial) FROM messages")
	P3_AUDIT_SEQ=$(p3_sql "SELECT coalesce(max(seq), 0) FROM audit_log")
	P3_BYTES=$(p3_sql "SELECT sum(size) FROM messages")
	say "part 3: $P3_TOTAL messages: held $P3_HELD ($(calc "100 * $P3_HELD / $P3_TOTAL" | cut -c1-4) %: by account" \
		"$P3_HELD_ACC, by query $P3_HELD_Q), eligible $P3_ELIG, neither $P3_OTHER"
	[ "$P3_OTHER" = 0 ] || say "part 3: WARNING: $P3_OTHER messages are neither held nor eligible"
	pg_psql "VACUUM ANALYZE" "CHECKPOINT" >/dev/null
	# ---- the snapshot
	pg_stop "$P3_PG"
	mkdir -p "$P3/snap"
	cp -a "$P3_PG/pg/data" "$P3/snap/data"
	cp -a "$P3/index" "$P3/snap/index"
	declare -p P3_N_USERS P3_TOTAL P3_HOLD_ACCOUNTS P3_HOLD_QUERY P3_HELD P3_ELIG P3_OTHER P3_HELD_ACC P3_HELD_Q \
		P3_MAXSERIAL P3_AUDIT_SEQ P3_BYTES | sed 's/^declare -- /declare -g /' >"$P3/snap/vars.sh"
	echo "${MV_BENCH_DISPOSE_USERS:-all}" >"$P3/snap/users"
	say "part 3: snapshot taken ($(du -sh "$P3/snap" | cut -f1))"
}

# p3_run R: one timed run on the restored snapshot; sets r_* values for run R.
p3_run() {
	local r=$1
	p3_restore
	pg_psql "SELECT pg_stat_reset()" >/dev/null
	p3_add_accounts "$P3/late.tsv"
	p3_web_start
	# warm: the cluster's files in the page cache (restored from the snapshot: written a moment ago)
	sync
	pg_psql "CHECKPOINT" >/dev/null
	local off
	off=$(stat -c %s "$P3_PG/pg/log")
	rm -f "$P3/stop" "$P3/search-$r.txt" "$P3/search-$r.txt.err"
	local load
	load=$(loadavg)
	# the concurrent work: searches through the service, an ingest of the 5 new accounts
	p3_search_loop "$P3/stop" "$P3/search-$r.txt" &
	local spid=$!
	sleep 0.5
	local i0 i1 ipid
	i0=$(now)
	(
		rc=0
		"$MVD" -c "$P3_CONF" --once 2>"$P3/mvd-$r.log" || rc=$?
		echo "$rc" >"$P3/mvd-$r.rc"
		now >"$P3/mvd-$r.end"
	) &
	ipid=$!
	# the disposal, timed
	local t0 t1 rrc=0
	t0=$(now)
	"$B/bin/mailvault-retention" -c "$P3_CONF.debug" --once >"$P3/retention-$r.log" 2>&1 || rrc=$?
	t1=$(now)
	touch "$P3/stop"
	wait "$spid" || true
	wait "$ipid" || true
	i1=$(cat "$P3/mvd-$r.end")
	[ "$rrc" = 0 ] || { tail -n 20 "$P3/retention-$r.log" >&2; die "run $r: mailvault-retention --once failed ($rrc)"; }
	[ "$(cat "$P3/mvd-$r.rc")" = 0 ] || { tail -n 20 "$P3/mvd-$r.log" >&2; die "run $r: the concurrent mailvaultd --once failed"; }
	[ -s "$P3/search-$r.txt.err" ] && { head -n 5 "$P3/search-$r.txt.err" >&2; die "run $r: a concurrent search failed"; }

	# ---- what the run did
	local disposed dsecs vsecs
	read -r disposed dsecs vsecs < <(p3_sql "SELECT disposed, extract(epoch FROM finished_at - started_at),
		coalesce(extract(epoch FROM vacuumed_at - finished_at)::text, 'none') FROM disposal_runs ORDER BY id DESC LIMIT 1")
	local vlog
	vlog=$(sed -n 's/.*vacuumed blobs, messages and locations in \([0-9.]*\) s.*/\1/p' "$P3/retention-$r.log" | tail -n 1)
	r_disposed[$r]=$disposed
	r_dsecs[$r]=$dsecs
	r_rate[$r]=$(calc "$disposed / $dsecs")
	r_vsecs[$r]=${vlog:-$vsecs}
	r_vsrc[$r]=$([ -n "$vlog" ] && echo log || echo "vacuumed_at - finished_at")
	r_wall[$r]=$(calc "$t1 - $t0")
	r_load[$r]=$load
	r_batch_max[$r]=$(sed -n 's/.*disposal batch: \([0-9]*\) messages ([0-9]* bytes) in \([0-9.]*\) s.*/\2/p' "$P3/retention-$r.log" |
		sort -g | tail -n 1)
	r_batches[$r]=$(grep -c 'disposal batch: ' "$P3/retention-$r.log" || true)
	# the concurrent ingest: its messages, and how much of it overlapped the disposal
	r_ing[$r]=$(p3_sql "SELECT count(*) FROM messages WHERE serial > $P3_MAXSERIAL")
	r_ing_locs[$r]=$(p3_sql "SELECT count(*) FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id
		WHERE a.name = ANY (string_to_array('$(cut -f1 "$P3/late.tsv" | tr '\n' ',' | sed 's/,$//')', ','))")
	r_ing_secs[$r]=$(calc "$i1 - $i0")
	r_overlap[$r]=$(awk -v a0="$i0" -v a1="$i1" -v b0="$t0" -v b1="$t1" 'BEGIN { s = (a0 > b0 ? a0 : b0); e = (a1 < b1 ? a1 : b1); printf "%.1f", (e > s ? e - s : 0) }')
	# the searches during the disposal
	read -r r_sn[$r] r_sp50[$r] r_sp95[$r] r_smax[$r] < <(awk -v b0="$t0" -v b1="$t1" '$1 >= b0 && $1 <= b1 { print $2 }' "$P3/search-$r.txt" |
		sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) { print 0, "-", "-", "-"; exit }
			i50 = int(0.5 * NR + 0.999); i95 = int(0.95 * NR + 0.999); print NR, v[i50], v[i95], v[NR] }')
	r_sfail[$r]=$(awk '$3 != 0' "$P3/search-$r.txt" | wc -l)

	# ---- checks
	local ok=1 why=()
	local held_now
	held_now=$(p3_sql "SELECT serial FROM messages WHERE serial <= $P3_MAXSERIAL ORDER BY 1")
	local missing
	missing=$(grep -cvxFf <(printf '%s\n' "$held_now") "$P3/held.txt" || true)
	if [ "$missing" != 0 ]; then
		ok=0; why+=("held messages missing: $missing")
	fi
	local expect_left
	expect_left=$(sort -n "$P3/held.txt" "$P3/other.txt")
	if [ "$held_now" != "$expect_left" ]; then
		ok=0; why+=("messages left ($(printf '%s\n' "$held_now" | grep -c .)) != held + not eligible ($(printf '%s\n' "$expect_left" | grep -c .))")
	fi
	r_left[$r]=$(printf '%s\n' "$held_now" | grep -c . || true)
	local proofs
	proofs=$(p3_sql "SELECT (details->>'serial')::bigint FROM audit_log WHERE seq > $P3_AUDIT_SEQ AND action = 'dispose' ORDER BY 1")
	r_proofs[$r]=$(printf '%s\n' "$proofs" | grep -c . || true)
	if [ "$proofs" != "$(cat "$P3/eligible.txt")" ]; then
		ok=0; why+=("the dispose proofs ($(printf '%s\n' "$proofs" | grep -c .)) do not name exactly the eligible set ($P3_ELIG)")
	fi
	[ "$disposed" = "$P3_ELIG" ] || { ok=0; why+=("disposed $disposed, eligible $P3_ELIG"); }
	local verify
	if verify=$(p3_cli audit verify 2>&1); then r_verify[$r]=$(printf '%s\n' "$verify" | tail -n 1 | sed 's/; the chain.*//'); else
		ok=0; why+=("audit verify failed: $(printf '%s\n' "$verify" | tail -n 1)"); r_verify[$r]=FAILED; fi
	# lock waits over deadlock_timeout (1 s) during the run
	tail -c +$((off + 1)) "$P3_PG/pg/log" >"$P3/pg-log-$r.txt"
	r_waits[$r]=$(grep -c 'still waiting for' "$P3/pg-log-$r.txt" || true)
	if [ "${r_waits[$r]}" != 0 ]; then
		say "run $r: ${r_waits[$r]} lock waits over 1 s; the waits and their statements:"
		grep -A 3 'still waiting for' "$P3/pg-log-$r.txt" | grep -E 'still waiting|DETAIL|STATEMENT|CONTEXT' | head -n 40 | sed 's/^/    /'
	fi
	r_ok[$r]=$ok
	r_why[$r]=$(IFS=';'; echo "${why[*]:-}")
	# where PostgreSQL's time went (plpgsql functions, self and total ms)
	p3_sql "SELECT funcname, calls, round(total_time::numeric, 0), round(self_time::numeric, 0) FROM pg_stat_user_functions
	        WHERE calls > 0 ORDER BY total_time DESC LIMIT 8" >"$P3/funcs-$r.txt"
	p3_web_stop

	# ---- the index removals: the indexer drains the queue first, then indexes the ingested mail
	local x0
	x0=$(now)
	"$IDX" -c "$P3_CONF" --once 2>"$P3/indexer-$r.log" || { tail -n 20 "$P3/indexer-$r.log" >&2; die "run $r: mailvault-indexer --once failed"; }
	r_ix_total[$r]=$(calc "$(now) - $x0")
	local purged
	purged=$(p3_sql "SELECT extract(epoch FROM index_purged_at) FROM disposal_runs ORDER BY id DESC LIMIT 1")
	if [ -n "$purged" ]; then r_ixrm[$r]=$(calc "$purged - $x0"); else r_ixrm[$r]=none; ok=0; r_ok[$r]=0; r_why[$r]+="; index_purged_at not set"; fi
	say "run $r: disposed $disposed in $(printf '%.2f' "$dsecs") s = $(printf '%.0f' "${r_rate[$r]}") msg/s; vacuum" \
		"${r_vsecs[$r]} s; index removal $(printf '%.2f' "${r_ixrm[$r]}") s; lock waits ${r_waits[$r]};" \
		"searches ${r_sn[$r]} (p95 ${r_sp95[$r]} ms, max ${r_smax[$r]} ms); ingest ${r_ing[$r]} messages in" \
		"$(printf '%.1f' "${r_ing_secs[$r]}") s (${r_overlap[$r]} s during the disposal); checks: $([ "$ok" = 1 ] && echo passed || echo "FAILED: ${r_why[$r]}")"
}

# p3_quiet R: the disposal alone on the restored snapshot (nothing else running), timed: the throughput the
# target is about; sets q_rate[R] and q_ok[R] (exactly the eligible set went, with as many proofs).
p3_quiet() {
	local r=$1 rrc=0
	p3_restore
	sync
	pg_psql "CHECKPOINT" >/dev/null
	"$B/bin/mailvault-retention" -c "$P3_CONF" --once >"$P3/quiet-$r.log" 2>&1 || rrc=$?
	[ "$rrc" = 0 ] || { tail -n 20 "$P3/quiet-$r.log" >&2; die "quiet run $r: mailvault-retention --once failed ($rrc)"; }
	local disposed dsecs proofs
	read -r disposed dsecs < <(p3_sql "SELECT disposed, extract(epoch FROM finished_at - started_at) FROM disposal_runs ORDER BY id DESC LIMIT 1")
	proofs=$(p3_sql "SELECT count(*) FROM audit_log WHERE seq > $P3_AUDIT_SEQ AND action = 'dispose'")
	q_secs[$r]=$dsecs
	q_rate[$r]=$(calc "$disposed / $dsecs")
	q_ok[$r]=$([ "$disposed" = "$P3_ELIG" ] && [ "$proofs" = "$P3_ELIG" ] && echo 1 || echo 0)
	say "quiet $r: disposed $disposed ($proofs proofs) in $(printf '%.2f' "$dsecs") s = $(printf '%.0f' "${q_rate[$r]}") msg/s, nothing else running"
}

# p3_bare R: the reference deletion on the restored snapshot; sets b_secs[R], b_rate[R].
p3_bare() {
	local r=$1 out
	p3_restore
	pg_psql "CHECKPOINT" >/dev/null
	out=$(psql -X -At -v ON_ERROR_STOP=1 "$MV_CONNINFO" <<-SQL
	\set QUIET on
	SET session_replication_role = replica;
	CREATE TEMP TABLE bare_set (serial bigint PRIMARY KEY);
	\copy bare_set FROM '$P3/eligible.txt'
	SELECT extract(epoch FROM clock_timestamp());
	DO \$\$
	DECLARE
	    a bigint[];
	    s bigint[];
	    k integer := 1;
	BEGIN
	    SELECT array_agg(serial ORDER BY serial) INTO a FROM bare_set;
	    WHILE k <= cardinality(a) LOOP
	        s := a[k : k + 499];
	        DELETE FROM locations WHERE message_serial = ANY (s);
	        WITH gone AS (DELETE FROM messages WHERE serial = ANY (s) RETURNING sha256)
	        DELETE FROM blobs b USING gone WHERE b.sha256 = gone.sha256;
	        COMMIT;
	        k := k + 500;
	    END LOOP;
	END \$\$;
	SELECT extract(epoch FROM clock_timestamp());
	SELECT count(*) FROM messages;
	SQL
	) || die "bare delete failed"
	local e0 e1 left
	{ read -r e0; read -r e1; read -r left; } <<<"$out"
	b_secs[$r]=$(calc "$e1 - $e0")
	b_rate[$r]=$(calc "$P3_ELIG / ${b_secs[$r]}")
	[ "$left" = $((P3_TOTAL - P3_ELIG)) ] || die "bare delete left $left messages, expected $((P3_TOTAL - P3_ELIG))"
	say "bare $r: $P3_ELIG messages (with their locations and blobs) in $(printf '%.2f' "${b_secs[$r]}") s = $(printf '%.0f' "${b_rate[$r]}") msg/s"
}

# p3_diag: one untimed disposal with track_functions = all (SQL functions counted too, which keeps them
# from being inlined: slower, for where the time goes only).
p3_diag() {
	p3_restore
	pg_psql "ALTER SYSTEM SET track_functions = 'all'" "SELECT pg_reload_conf()" >/dev/null
	pg_psql "SELECT pg_stat_reset()" >/dev/null
	"$B/bin/mailvault-retention" -c "$P3_CONF.debug" --once >"$P3/retention-diag.log" 2>&1 || die "diagnostic run failed"
	p3_sql "SELECT funcname, calls, round(total_time::numeric, 0), round(self_time::numeric, 0) FROM pg_stat_user_functions
	        WHERE calls > 0 ORDER BY self_time DESC LIMIT 12" >"$P3/funcs-diag.txt"
	pg_psql "ALTER SYSTEM RESET track_functions" "SELECT pg_reload_conf()" >/dev/null
	say "diagnostic disposal alone (no ingest, no searches; track_functions = all): $(grep -o 'disposed [0-9]* messages.*msg/s)' "$P3/retention-diag.log")"
	echo "function | calls | total ms | self ms"
	sed 's/\t/ | /g' "$P3/funcs-diag.txt"
	# one batch's choice of candidates (the body of mailvault_disposal_candidates, as the superuser)
	p3_restore
	say "diagnostic: EXPLAIN ANALYZE of the hold check over every message, and of the whole candidate set"
	psql -X -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
	    SELECT count(*) FROM mailvault_held_among(ARRAY(SELECT serial FROM messages))" | tee "$P3/explain-held.txt"
	psql -X -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM
	    (SELECT serial FROM mailvault_disposal_candidates(0, 2147483647)) c" | tee "$P3/explain-all-candidates.txt"
	pg_stop "$P3_PG"
}

# median VALUES...: the middle value (the lower middle for an even count).
p3_median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }

# part3_main: the whole part. Uses from the caller: B, DC (Dovecot folder, running), DOVECOT_IMAPS_PORT,
# MV_CA_FILE, B/bin (mailvaultd, mailvault, mailvault-cli, mailvault-indexer, mailvault-web,
# mailvault-retention), RESULTS, BENCH_DIR and the helpers of lib.sh. Sets p3_fails (targets missed).
part3_main() {
	P3=$B/p3
	P3_PG=$B/pgdispose
	P3_CONF=$P3/mailvault.conf
	MVD=$B/bin/mailvaultd
	MVCLI=$B/bin/mailvault
	IDX=$B/bin/mailvault-indexer
	local runs=${MV_P3_RUNS:-3} r
	mkdir -p "$P3"
	[ -x "$B/bin/mailvault-retention" ] || die "no mailvault-retention binary in $B/bin"
	if [ "${MV_P3_REUSE:-0}" = 1 ] && [ -f "$P3/snap/vars.sh" ] &&
		[ "$(cat "$P3/snap/users")" = "${MV_BENCH_DISPOSE_USERS:-all}" ]; then
		# shellcheck disable=SC1091
		. "$P3/snap/vars.sh"
		say "part 3: reusing the snapshot in $P3/snap ($P3_TOTAL messages, $P3_HELD held, $P3_ELIG eligible)"
	else
		p3_setup
	fi
	sed 's/^log_level = info$/log_level = debug/' "$P3_CONF" >"$P3_CONF.debug"
	declare -gA r_disposed r_dsecs r_rate r_vsecs r_vsrc r_wall r_load r_batch_max r_batches r_ing r_ing_locs r_ing_secs \
		r_overlap r_sn r_sp50 r_sp95 r_smax r_sfail r_left r_proofs r_verify r_waits r_ok r_why r_ix_total r_ixrm b_secs b_rate \
		q_secs q_rate q_ok
	for ((r = 1; r <= runs; r++)); do
		say "part 3, run $r of $runs: snapshot restored; mailvault-retention --once alone: timed"
		p3_quiet "$r"
		say "part 3, run $r of $runs: snapshot restored; mailvault-retention --once with an ingest and searches: timed"
		p3_run "$r"
		say "part 3, run $r of $runs: the same deletion bare (superuser, session_replication_role = replica)"
		p3_bare "$r"
	done
	[ "${MV_P3_DIAG:-0}" = 1 ] && p3_diag
	pg_stop "$P3_PG"

	# ---- the table, medians and targets
	local t=$P3/table.md rates=() qrates=() brates=() vs=() ixs=() waits=0 checks=PASS
	{
		echo "| run | alone: disposal s (msg/s) | disposed | disposal s | msg/s | vacuum s | index removal s | bare delete s (msg/s) | mailvault / bare | batches (longest s) | lock waits > 1 s | searches during it: n, p50 / p95 / max ms | concurrent ingest: messages, s (s during the disposal) | checks | load at start |"
		echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|---|---:|"
		for ((r = 1; r <= runs; r++)); do
			rates+=("${r_rate[$r]}"); qrates+=("${q_rate[$r]}"); brates+=("${b_rate[$r]}"); vs+=("${r_vsecs[$r]}"); ixs+=("${r_ixrm[$r]}")
			waits=$((waits + r_waits[$r]))
			[ "${r_ok[$r]}" = 1 ] && [ "${q_ok[$r]}" = 1 ] || checks=FAIL
			printf '| %d | %.2f (%.0f) | %s | %.2f | %.0f | %.2f | %.2f | %.2f (%.0f) | %.3f | %s (%.3f) | %s | %s: %s / %s / %s | %s (%s places), %.1f (%s) | %s | %s |\n' \
				"$r" "${q_secs[$r]}" "${q_rate[$r]}" "${r_disposed[$r]}" "${r_dsecs[$r]}" "${r_rate[$r]}" "${r_vsecs[$r]}" "${r_ixrm[$r]}" \
				"${b_secs[$r]}" "${b_rate[$r]}" "$(calc "${r_rate[$r]} / ${b_rate[$r]}")" "${r_batches[$r]}" "${r_batch_max[$r]:-0}" \
				"${r_waits[$r]}" "${r_sn[$r]}" "${r_sp50[$r]}" "${r_sp95[$r]}" "${r_smax[$r]}" \
				"${r_ing[$r]}" "${r_ing_locs[$r]}" "${r_ing_secs[$r]}" "${r_overlap[$r]}" \
				"$([ "${r_ok[$r]}" = 1 ] && echo "pass" || echo "FAIL: ${r_why[$r]}"): ${r_proofs[$r]} proofs, ${r_left[$r]} left, verify: ${r_verify[$r]}" \
				"${r_load[$r]}"
		done
	} >"$t"
	local rate_med qrate_med brate_med v_med ix_med ratio_med
	rate_med=$(p3_median "${rates[@]}")
	qrate_med=$(p3_median "${qrates[@]}")
	brate_med=$(p3_median "${brates[@]}")
	v_med=$(p3_median "${vs[@]}")
	ix_med=$(p3_median "${ixs[@]}")
	ratio_med=$(calc "$rate_med / $brate_med")
	p3_fails=0
	local v1 v2
	if awk "BEGIN { exit !($qrate_med >= 5000) }"; then v1=PASS; else v1=FAIL; p3_fails=$((p3_fails + 1)); fi
	if [ "$waits" = 0 ]; then v2=PASS; else v2=FAIL; p3_fails=$((p3_fails + 1)); fi
	[ "$checks" = PASS ] || p3_fails=$((p3_fails + 1))
	p3_targets=$(printf -- '- disposal msg/s on its own (disposed / disposal seconds, proofs included, vacuum excluded), median of %d runs (%s), >= 5,000: **%s** (%.0f msg/s)\n- statements waiting on a lock for more than 1 s (log_lock_waits, deadlock_timeout = 1s), all runs, with the ingest and the searches running: 0: **%s** (%d)\n- after every run: every held message still there (the exact set), messages left = held + not eligible, one dispose proof per disposed message naming exactly the eligible set, audit verify passes: **%s**\n- for information: with the ingest and the searches running %.0f msg/s (median of %s); mailvault / bare delete %.3f (medians %.0f / %.0f msg/s); VACUUM %.2f s; index removal %.2f s (medians)' \
		"$runs" "$(printf '%.0f ' "${qrates[@]}" | sed 's/ $//')" "$v1" "$qrate_med" "$v2" "$waits" "$checks" \
		"$rate_med" "$(printf '%.0f ' "${rates[@]}" | sed 's/ $//')" "$ratio_med" "$rate_med" "$brate_med" "$v_med" "$ix_med")
	echo
	echo "Disposal: $P3_TOTAL messages archived ($P3_N_USERS accounts), held $P3_HELD, eligible $P3_ELIG; $runs runs"
	echo
	column -t -s '|' -o '|' <(grep -v '^|---' "$t") 2>/dev/null || cat "$t"
	echo
	echo "PostgreSQL functions of the last run (pg_stat_user_functions, track_functions = pl): name, calls, total ms, self ms"
	sed 's/\t/ | /g; s/^/    /' "$P3/funcs-$runs.txt"
	echo
	echo "$p3_targets"
	echo

	[ "${MV_P3_NO_RESULTS:-0}" = 1 ] && return 0
	if [ -n "${MV_BENCH_DISPOSE_USERS:-}" ] && [ "${MV_P3_NO_RESULTS:-}" != 0 ]; then
		say "part 3: a subset (MV_BENCH_DISPOSE_USERS=$MV_BENCH_DISPOSE_USERS): RESULTS.md left alone (MV_P3_NO_RESULTS=0 to write it)"
		return 0
	fi
	local section=$P3/section.md run_cmd=${P3_RUN_CMD:-bash bench/bench.sh} cpu_model mem_gib pg_v
	[ "$runs" != 3 ] && run_cmd="MV_P3_RUNS=$runs $run_cmd"
	[ -n "${MV_BENCH_DISPOSE_USERS:-}" ] && run_cmd="MV_BENCH_DISPOSE_USERS=$MV_BENCH_DISPOSE_USERS $run_cmd"
	cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
	pg_v=$("$MV_PG_BIN/postgres" --version | awk '{ print $3 }')
	{
		echo "$P3_SECTION"
		echo
		echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') with \`$run_cmd\` on $(nproc) x $cpu_model (nproc $(nproc))," \
			"$mem_gib GiB RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r); 1-minute load average" \
			"at the start of each run in the table (the machine may be shared with other jobs)."
		echo
		echo "- Archive: the Enron corpus as parts 1-2 build it (mailvaultd --once from the private Dovecot over IMAPS," \
			"mailvault-indexer --once), in a PostgreSQL $pg_v cluster of its own (fsync on, synchronous_commit on," \
			"log_lock_waits = on, deadlock_timeout = 1s, track_functions = pl): $P3_N_USERS accounts, $P3_TOTAL" \
			"messages ($(calc "$P3_BYTES / 1e6") MB). The last $P3_LATE_N users of the corpus" \
			"($(cut -f1 "$P3/late.tsv" | tr '\n' ' ' | sed 's/ $//')) are kept out for the concurrent ingest."
		echo "- Holds (officers' commands through mailvault-web's socket): matter bench-matter; hold custodians on" \
			"whole accounts ($P3_HOLD_ACCOUNTS: $P3_HELD_ACC messages); hold topic on every account (--all) with the query" \
			"\`$P3_HOLD_QUERY\` ($P3_HELD_Q messages; of a list of candidates, the one closest to 5%, checked" \
			"with \`mailvault search --count\`; its coverage recorded by one indexer run). Policy" \
			"\`mailvault policy add all-1y --keep 1y --all --confirm\`, [retention] min_age = 0d (mailvault init)." \
			"Held (mailvault_held_among): **$P3_HELD** ($(calc "100 * $P3_HELD / $P3_TOTAL" | cut -c1-4) %), eligible" \
			"(mailvault_disposal_candidates): $P3_ELIG, neither: $P3_OTHER. Then VACUUM ANALYZE and the snapshot" \
			"(PostgreSQL stopped; its data directory and the index copied)."
		echo "- Alone: the snapshot restored, \`mailvault-retention -c CONF --once\` with nothing else running (the" \
			"throughput target); its disposal s as below."
		echo "- Each run: the snapshot restored (PostgreSQL restarted on the copy), the $P3_LATE_N kept-out accounts added," \
			"mailvault-web started; a loop of \`mailvault search --count\` over bench/queries.tsv through its socket (each" \
			"search audited) and \`mailvaultd --once\` (workers = 4: the new accounts' mail, the others polled) started;" \
			"0.5 s later \`mailvault-retention -c CONF --once\` (its own login, a member of mailvault_retention only;" \
			"[retention] batch = 500, batch_ms = 500; VACUUM with [retention] vacuum_conninfo, the superuser)." \
			"Disposal s = disposal_runs.finished_at - started_at (erasures, every batch and its proofs; not the" \
			"VACUUM); vacuum s from the program's debug log (\"vacuumed ... in\"); batches and the longest from" \
			"its debug log. Index removal s: \`mailvault-indexer --once\` after the run, from its start to" \
			"disposal_runs.index_purged_at (it drains the removals first, then indexes the ingested mail)."
		echo "- Checks after every run: every held message still there (exact set equality), the archive's messages" \
			"left = held + neither, one audit_log row with action 'dispose' per disposed message, whose serials are" \
			"exactly the eligible set, \`mailvault audit verify\` (through the service) passes; lock waits: lines" \
			"\"still waiting for\" in the server log during the run."
		echo "- Bare: on the snapshot restored again, the superuser with session_replication_role = replica (no" \
			"triggers, no foreign-key checks) deletes the same $P3_ELIG messages, their locations and blobs," \
			"500 a transaction (one DO block, COMMIT per batch), timed inside the session: no hold checks, no" \
			"proofs, no audit chain, no index queue."
		echo
		cat "$t"
		echo
		echo "PostgreSQL's time in the last run, by PL/pgSQL function (pg_stat_user_functions; SQL functions are" \
			"not counted with track_functions = pl):"
		echo
		echo "| function | calls | total ms | self ms |"
		echo "|---|---:|---:|---:|"
		sed 's/\t/ | /g; s/^/| /; s/$/ |/' "$P3/funcs-$runs.txt"
		echo
		echo "Targets:"
		echo
		echo "$p3_targets"
		echo
	} >"$section"
	# appended the first time: after a blank line, whatever the file ended with
	if [ -s "$RESULTS" ] && ! grep -qxF "$P3_SECTION" "$RESULTS"; then
		[ -n "$(tail -c 1 "$RESULTS")" ] && echo >>"$RESULTS"
		echo >>"$RESULTS"
	fi
	results_write_section "$P3_SECTION" "$section"
	say "wrote section \"$P3_SECTION\" of bench/RESULTS.md"
}

# ------------------------------------------------------------------------------------- standalone run
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	MV_ROOT=$(cd "$BENCH_DIR/.." && pwd)
	export MV_ROOT
	# shellcheck source=../tests/lib/common.sh
	. "$MV_ROOT/tests/lib/common.sh"
	# shellcheck source=lib.sh
	. "$BENCH_DIR/lib.sh"
	# shellcheck source=index-search.sh
	. "$BENCH_DIR/index-search.sh" # results_write_section, NOTES_MARK
	RESULTS=$BENCH_DIR/RESULTS.md
	if [ -n "${1:-}" ]; then
		B=$(cd "$1" && pwd)
	else
		t_tmpdir B
		say "scratch folder $B (removed at exit unless MV_KEEP=1)"
	fi
	mkdir -p "$B/bin"
	for p in mailvaultd mailvault mailvault-cli mailvault-indexer mailvault-web mailvault-retention; do
		cp "$MV_BUILD/$p" "$B/bin/" || die "no $MV_BUILD/$p: run make all first"
	done
	if [ ! -s "$B/dovecot/users.tsv" ]; then
		CORPUS=${MV_CORPUS:-$MV_ROOT/../shared/corpora/enron-inbox.tar.xz}
		say "unpacking $(basename "$CORPUS") and loading it into a private Dovecot"
		mkdir -p "$B/corpus"
		tar -xJf "$CORPUS" -C "$B/corpus"
		enron_load "$B" "$(dirname "$(find "$B/corpus" -maxdepth 3 -type d -name maildir | head -n 1)")"
		rm -rf "$B/corpus"
	fi
	if [ -n "${1:-}" ]; then
		# a folder of someone else's: its servers are stopped at exit, the folder kept
		trap 'p3_web_stop; pg_stop "$B/pgdispose" >/dev/null 2>&1; dovecot_stop "$B"' EXIT
	fi
	dovecot_start "$B" # (re)started: exports its port and CA
	DC=$B/dovecot
	P3_RUN_CMD="bash bench/dispose.sh (part 3 alone)"
	part3_main
	if [ "$p3_fails" != 0 ] && [ "${MV_BENCH_STRICT:-0}" = 1 ]; then
		exit 1
	fi
fi

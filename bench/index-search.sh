#!/usr/bin/env bash
# Index and search benchmark (issues 3 and 9), part 2 of `make bench`: mailvault-indexer --once against
# notmuch new on the same messages; then 24 queries as whole processes, mailvault search --count (through
# mailvault-web's socket) against notmuch count; then searches per second with 16 clients, mailvault-web's
# API against notmuch count run 16 at a time.
#
# bench/bench.sh sources this file (it only defines functions) and calls part2_main once part 1 is done,
# with the archive of its last mailvaultd run (workers = 4) still in PostgreSQL and the maildir that its
# mbsync run wrote (the same 44,755 messages as the server serves).
#   1. mailvault: [indexer] index_path added to the run's configuration; sync, CHECKPOINT, page cache warmed
#      (the cluster's files read); /usr/bin/time -v mailvault-indexer -c CONF --once, timed, with PostgreSQL's
#      CPU (cputree.py) and where the wall time goes (threadsample.py); then mailvault index verify must
#      pass and no message may be left with indexed_at IS NULL
#   2. notmuch: private NOTMUCH_CONFIG, database path = the mbsync maildir; sync, page cache warmed (every
#      file read); /usr/bin/time -v notmuch new, timed; notmuch count '*' and --output=files checked
#   3. index sizes: du -sb of mailvault's index folder and of notmuch's .notmuch/xapian, as the tools left
#      them (neither compacted; a compacted copy of each is measured too, for information), with the
#      Xapian tables and the terms by prefix (bench/xapstats.py; xapian-tools and python3-xapian are
#      installed if missing)
#   4. mailvault-web started for the archive (its own login, the running user an admin officer, a token);
#      bench/queries.tsv, 3 runs of one warm-up round and 5 timed rounds of every query by both tools, as
#      an officer runs mailvault (MAILVAULT_SOCKET, no configuration file) (bench/querybench.py); p50/p95
#      over the (queries x rounds) processes of each run and tool, the median of the 3 runs, counts side by
#      side; then
#      16 clients for 10 s per tool, 3 runs (bench/apibench.py: wrk with bench/apibench.lua, and 16 threads of
#      notmuch count); searches/s, p50/p95, medians; audit verify afterwards
#   5. targets (indexing msg/s >= 3 x notmuch's; index size <= notmuch's; search p95 through the socket
#      <= 1/3 of notmuch count's; API searches/s >= 10 x notmuch's with 16 clients),
#      section "## Index and search (issue 3)" of bench/RESULTS.md rewritten (hand-written notes kept)
#
# Alone, on a scratch folder kept by `MV_KEEP=1 make bench` (reruns part 2 only, e.g. to measure its spread):
#   bash bench/index-search.sh /tmp/mvt.XXXXXX [pgw4]
# It restarts that folder's PostgreSQL cluster, marks every message unindexed, removes both indexes, and
# then does the same as above (and rewrites the same section of RESULTS.md unless MV_P2_NO_RESULTS=1).
# Environment: MV_P2_RUNS (timed query rounds, default 5), MV_P2_SETS (runs of them, 3), MV_P2_API_SECONDS (10) and MV_P2_API_RUNS (3),
# MV_P2_DIAG=1 (also perf record the indexer,
# untimed, for the report; needs perf).
# shellcheck source-path=SCRIPTDIR

P2_SECTION="## Index and search (issue 3)"
# A line in a section of RESULTS.md after which hand-written notes are kept when the script rewrites it.
NOTES_MARK="<!-- hand-written notes below this line are kept when bench.sh rewrites the section -->"

# results_write_section HEAD SECTIONFILE: replaces the section HEAD of $RESULTS by SECTIONFILE (or appends
# it), keeping the old section's hand-written notes (everything after NOTES_MARK).
results_write_section() {
	local head=$1 secfile=$2
	if [ ! -f "$RESULTS" ]; then
		printf '%s\n\n%s\n\n' "# mailvault benchmarks" \
			"Figures written by \`make bench\`; each part below is replaced by the run that produced it." >"$RESULTS"
	fi
	awk -v secfile="$secfile" -v head="$head" -v mark="$NOTES_MARK" '
		BEGIN { while ((getline line < secfile) > 0) sec = sec line "\n" }
		/^## / {
			if (insec) { flush(1); insec = 0 }
			if ($0 == head) { insec = 1; innotes = 0; notes = ""; next }
		}
		insec { if (innotes) notes = notes $0 "\n"; else if ($0 == mark) innotes = 1; next }
		{ print }
		# more: another section follows (a blank line after the notes keeps them apart)
		function flush(more) {
			printf "%s", sec
			if (notes != "") {
				sub(/\n+$/, "\n", notes)
				printf "%s\n%s%s", mark, notes, (more ? "\n" : "")
			}
			done = 1
		}
		END { if (insec) flush(0); if (!done) printf "%s", sec }
	' "$RESULTS" >"$RESULTS.new"
	mv "$RESULTS.new" "$RESULTS"
}

# p2_du DIR: bytes of every file under DIR (du -sb).
p2_du() {
	du -sb "$1" | cut -f1
}

# p2_mib BYTES: BYTES in MiB with one decimal.
p2_mib() {
	awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'
}

# p2_tables DB: "table bytes" per Xapian table file of the glass database DB.
p2_tables() {
	# a sharded index keeps one glass database per shard: each table summed over the shards
	find "$1" -maxdepth 2 -name '*.glass' -type f -printf '%f %s\n' |
		awk '{ sub(/\.glass$/, "", $1); t[$1] += $2 } END { for (k in t) print k, t[k] }'
}

# p2_stats DB OUT: terms, postings and occurrences by prefix, documents, average length, revision
# (bench/xapstats.py); p2_stat OUT KEY [COLUMN]: one figure of it.
p2_stats() {
	/usr/bin/python3 "$BENCH_DIR/xapstats.py" "$1" >"$2" || die "xapstats.py $1 failed"
}
p2_stat() {
	awk -v k="$2" -v c="${3:-2}" '$1 == k { print $c; exit }' "$1"
}

# p2_write_notmuch_config FILE MAILDIR: the private notmuch configuration.
p2_write_notmuch_config() {
	cat >"$1" <<-EOF
	# notmuch configuration written by bench/index-search.sh
	[database]
	path=$2
	[user]
	name=bench
	primary_email=bench@localhost
	[new]
	tags=unread;inbox;
	ignore=.mbsyncstate;.uidvalidity;
	[search]
	exclude_tags=
	[maildir]
	synchronize_flags=false
	EOF
}

# p2_web_start CONF: mailvault-web for the archive of CONF: its own login (bench_web), [web] settings,
# the running user an officer with the admin role (bench), an API token; sets P2_WEB_PID, P2_URL, P2_TOKEN.
p2_web_start() {
	local conf=$1 port i
	port=$(mv_free_ports 1)
	pg_psql "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'bench_web') THEN
	         CREATE ROLE bench_web LOGIN IN ROLE mailvault_web; END IF; END \$\$" >/dev/null
	grep -v -e '^web_conninfo' -e '^socket' -e '^listen' "$conf" | sed '/^\[web\]$/d' >"$conf.tmp"
	printf '[database]\nweb_conninfo = %s user=bench_web\n[web]\nsocket = %s/web.sock\nlisten = 127.0.0.1:%s\n' \
		"$MV_CONNINFO" "$B" "$port" >>"$conf.tmp"
	mv "$conf.tmp" "$conf"
	"$MVCLI" -c "$conf" officer remove bench >/dev/null 2>&1 || true
	"$MVCLI" -c "$conf" officer add bench --all --role admin --unix-user "$(id -un)" >/dev/null ||
		die "officer add bench failed"
	P2_TOKEN=$("$MVCLI" -c "$conf" officer token add bench --expires 1d 2>/dev/null) || die "officer token add failed"
	"$B/bin/mailvault-web" -c "$conf" >"$B/web.log" 2>&1 &
	P2_WEB_PID=$!
	for ((i = 0; i < 100; i++)); do [ -S "$B/web.sock" ] && break; sleep 0.1; done
	[ -S "$B/web.sock" ] || { cat "$B/web.log" >&2; die "mailvault-web did not start"; }
	P2_URL=http://127.0.0.1:$port
}

# p2_web_stop: stops mailvault-web.
p2_web_stop() {
	kill -TERM "$P2_WEB_PID" 2>/dev/null
	wait "$P2_WEB_PID" 2>/dev/null
	return 0
}

# mv_p2_sql SQL: one value from the archive.
mv_p2_sql() {
	psql -X -At -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "$1"
}

# p2_warm_files DIR: reads every regular file under DIR (page cache warm-up).
p2_warm_files() {
	find "$1" -type f -print0 | xargs -0 -r cat >/dev/null
}

# part2_main NAME MAILDIR: the benchmark on the archive in cluster $B/NAME (configuration $B/NAME.conf, the
# cluster running) and the maildir MAILDIR. Uses from the caller: B, MVCLI, IDX, RESULTS, EXPECT_MSGS,
# BENCH_DIR, say, die, calc, now, loadavg, cpu_of. Sets p2_fails (targets missed).
part2_main() {
	local name=$1 maildir=$2 conf=$B/$1.conf
	local ix=$B/index nmconf=$B/notmuch-config p2=$B/p2
	mkdir -p "$p2"
	command -v notmuch >/dev/null || die "notmuch is not installed (apt-get install notmuch)"
	local pkgs=()
	command -v xapian-compact >/dev/null || pkgs+=(xapian-tools)
	/usr/bin/python3 -c 'import xapian' 2>/dev/null || pkgs+=(python3-xapian)
	if [ "${#pkgs[@]}" != 0 ]; then
		if [ "$(id -u)" = 0 ]; then
			say "installing ${pkgs[*]} for the index statistics (xapian-compact, bench/xapstats.py)"
			DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null ||
				die "apt-get install ${pkgs[*]} failed"
		else
			die "missing for the index statistics: apt-get install ${pkgs[*]}"
		fi
	fi
	[ -x "$IDX" ] || die "no mailvault-indexer binary at $IDX"
	[ -d "$maildir" ] || die "no maildir at $maildir (part 1's mbsync run)"
	local pg_master
	pg_master=$(head -n 1 "$B/$name/pg/data/postmaster.pid")

	# ------------------------------------------------------------------------ 1. mailvault-indexer
	rm -rf "$ix"
	grep -q '^\[indexer\]' "$conf" || printf '[indexer]\nindex_path = %s\n' "$ix" >>"$conf"
	local n_arch n_pending
	read -r n_arch n_pending < <(pg_psql "SELECT count(*), count(*) FILTER (WHERE indexed_at IS NULL) FROM messages" | tr '|' ' ')
	[ "$n_pending" = "$n_arch" ] || die "$n_pending of $n_arch messages unindexed before the indexer ran"
	say "index: sync, CHECKPOINT, warming the page cache with the cluster's files"
	sync
	pg_psql "CHECKPOINT" >/dev/null
	p2_warm_files "$B/$name/pg/data"
	say "mailvault-indexer --once over $n_arch archived messages: timed"
	local ix_load pg0 pg1 t0 t1 tpid
	ix_load=$(loadavg)
	read -r pg0 < <(cpu_of "$pg_master")
	t0=$(now)
	/usr/bin/time -v -o "$p2/indexer.time" "$IDX" -c "$conf" --once 2>"$p2/indexer.log" &
	tpid=$!
	python3 "$BENCH_DIR/threadsample.py" "$p2/indexer.sample" "$tpid" "$pg_master" &
	local spid=$!
	wait "$tpid" || {
		tail -n 20 "$p2/indexer.log" >&2
		die "mailvault-indexer --once failed"
	}
	t1=$(now)
	read -r pg1 < <(cpu_of "$pg_master")
	wait "$spid" || true
	ix_secs=$(calc "$t1 - $t0")
	ix_rss=$(awk -F': ' '/Maximum resident/ { print $2 }' "$p2/indexer.time")
	ix_cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$p2/indexer.time")
	ix_usr=$(awk -F': ' '/User time/ { printf "%.1f", $2 }' "$p2/indexer.time")
	ix_pgcpu=$(calc "$pg1 - $pg0")
	ix_logline=$(grep -E 'indexed [0-9]+ messages in' "$p2/indexer.log" | tail -n 1 | sed 's/^.*\(indexed [0-9]\)/\1/')
	ix_notes=$(grep -c 'indexed from what could be read' "$p2/indexer.log" || true)
	local verify left
	verify=$("$MVCLI" -c "$conf" index verify 2>&1) || {
		printf '%s\n' "$verify" | tail -n 20 >&2
		die "mailvault index verify failed"
	}
	ix_verify=$(printf '%s\n' "$verify" | tail -n 1)
	left=$(pg_psql "SELECT count(*) FROM messages WHERE indexed_at IS NULL")
	[ "$left" = 0 ] || die "SELECT count(*) FROM messages WHERE indexed_at IS NULL = $left after mailvault-indexer --once"
	p2_stats "$ix" "$p2/ix.stats"
	ix_docs=$(p2_stat "$p2/ix.stats" documents)
	[ "$ix_docs" = "$n_arch" ] || die "the index holds $ix_docs documents, the archive $n_arch messages"
	ix_size=$(p2_du "$ix")
	say "  mailvault-indexer: $(printf '%.1f' "$ix_secs") s, $ix_docs documents, index $(p2_mib "$ix_size") MiB; $ix_verify"

	# ------------------------------------------------------------------------------- 2. notmuch new
	p2_write_notmuch_config "$nmconf" "$maildir"
	export NOTMUCH_CONFIG=$nmconf TZ=UTC
	rm -rf "$maildir/.notmuch"
	nm_files_disk=$(find "$maildir" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l)
	[ "$nm_files_disk" = "$EXPECT_MSGS" ] || die "the maildir $maildir holds $nm_files_disk messages, expected $EXPECT_MSGS"
	say "notmuch: sync, warming the page cache with every maildir file"
	sync
	p2_warm_files "$maildir"
	say "notmuch new over $nm_files_disk maildir files: timed"
	local nm_load
	nm_load=$(loadavg)
	t0=$(now)
	/usr/bin/time -v -o "$p2/notmuch.time" notmuch new >"$p2/notmuch.log" 2>&1 || {
		tail -n 20 "$p2/notmuch.log" >&2
		die "notmuch new failed"
	}
	t1=$(now)
	nm_secs=$(calc "$t1 - $t0")
	nm_rss=$(awk -F': ' '/Maximum resident/ { print $2 }' "$p2/notmuch.time")
	nm_cpu=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$p2/notmuch.time")
	nm_docs=$(notmuch count '*')
	nm_files=$(notmuch count --output=files '*')
	# notmuch skips what it does not take for mail (a message whose header starts with a blank line)
	tr '\r' '\n' <"$p2/notmuch.log" >"$p2/notmuch.lines"
	nm_processed=$(sed -n 's/^Processed \([0-9]*\) total files.*/\1/p' "$p2/notmuch.lines")
	nm_nonmail=$(grep -c 'Ignoring non-mail file' "$p2/notmuch.lines" || true)
	[ "$nm_processed" = "$EXPECT_MSGS" ] || die "notmuch new processed ${nm_processed:-?} files, expected $EXPECT_MSGS"
	[ $((nm_files + nm_nonmail)) = "$EXPECT_MSGS" ] ||
		die "notmuch knows $nm_files files and ignored $nm_nonmail, expected $EXPECT_MSGS in all"
	nm_db=$maildir/.notmuch/xapian
	[ -d "$nm_db" ] || die "no notmuch database at $nm_db"
	nm_size=$(p2_du "$nm_db")
	nm_logline=$(grep -E '^(Note|Added|Processed)' "$p2/notmuch.lines" | sed "s|$maildir/||" | tr '\n' ' ' | sed 's/ *$//')
	say "  notmuch new: $(printf '%.1f' "$nm_secs") s, $nm_docs messages ($nm_files files), database $(p2_mib "$nm_size") MiB"

	# ---------------------------------------------------------------------------- 3. index statistics
	say "index statistics (xapstats.py) and compacted copies of both (information only)"
	local db
	for db in ix nm; do
		local path=$ix
		[ "$db" = nm ] && path=$nm_db
		p2_tables "$path" >"$p2/$db.tables"
		[ "$db" = nm ] && p2_stats "$path" "$p2/$db.stats"
		rm -rf "$p2/$db.compact"
		xapian-compact "$path" "$p2/$db.compact" >/dev/null 2>&1 || die "xapian-compact $path failed"
	done
	ix_csize=$(p2_du "$p2/ix.compact")
	nm_csize=$(p2_du "$p2/nm.compact")
	rm -rf "$p2/ix.compact" "$p2/nm.compact"

	# ------------------------------------------------------------------------------------- 4. queries
	local runs=${MV_P2_RUNS:-5} sets=${MV_P2_SETS:-3} nq
	nq=$(grep -cv -e '^#' -e '^[[:space:]]*$' "$BENCH_DIR/queries.tsv")
	say "queries: $nq, each by both tools, $sets times one warm-up round then $runs timed rounds (whole processes)"
	q_load=$(loadavg)
	# officers search through mailvault-web: its own login, the running user an admin officer (the socket),
	# and a token for the API
	p2_web_start "$conf"
	/usr/bin/python3 "$BENCH_DIR/querybench.py" "$BENCH_DIR/queries.tsv" "$p2/queries" "$MVCLI" "$B/web.sock" \
		"$runs" "$sets" ||
		die "the query benchmark failed"
	q_get() { awk -v k="$1" '$1 == k { print $2 }' "$p2/queries.summary"; }
	local api_secs=${MV_P2_API_SECONDS:-10} api_runs=${MV_P2_API_RUNS:-3}
	say "API throughput: 16 clients, $api_secs s per tool and run, $api_runs runs (wrk against notmuch count x 16)"
	a_load=$(loadavg)
	/usr/bin/python3 "$BENCH_DIR/apibench.py" "$BENCH_DIR/queries.tsv" "$p2/api" "$P2_URL" "$P2_TOKEN" "$api_secs" \
		"$api_runs" 16 || die "the API benchmark failed"
	a_get() { awk -v k="$1" '$1 == k { print $2 }' "$p2/api.summary"; }
	a_rows=$(mv_p2_sql "SELECT count(*) FROM audit_log WHERE actor = 'bench'")
	# the design the service avoids, for comparison: one transaction (and flush) per audit row, 16 clients
	# queueing on the chain's lock (pgbench as the service's login, the same function)
	say "audit rows, one transaction each, 16 clients (pgbench, 10 s): the cost the group commit avoids"
	printf '%s\n' "SELECT mailvault_audit_as('pgbench', 'token 0', '127.0.0.1', 'count', 'energy', '{\"count\": 1, \"scope\": \"all accounts\"}');" \
		>"$p2/audit.pgbench"
	a_single=$("$MV_PG_BIN/pgbench" -n -c 16 -j 2 -T 10 -f "$p2/audit.pgbench" "$MV_CONNINFO user=bench_web" 2>&1 |
		awk '/^tps = / { printf "%.0f", $3 }')
	[ -n "$a_single" ] || die "pgbench of the audit function failed"
	a_verify=$("$MVCLI" -c "$conf" audit verify 2>&1) || die "audit verify after the benchmark: $a_verify"
	p2_web_stop

	# ------------------------------------------------------------------------------------- 5. targets
	local ix_rate nm_rate idx_ratio size_ratio
	ix_rate=$(calc "$EXPECT_MSGS / $ix_secs")
	nm_rate=$(calc "$EXPECT_MSGS / $nm_secs")
	idx_ratio=$(calc "$nm_secs / $ix_secs")
	size_ratio=$(calc "$ix_size / $nm_size")
	p2_fails=0
	local v1 v2 v3
	if awk "BEGIN { exit !($idx_ratio >= 3.0) }"; then v1=PASS; else v1=FAIL; p2_fails=$((p2_fails + 1)); fi
	if [ "$ix_size" -le "$nm_size" ]; then v2=PASS; else v2=FAIL; p2_fails=$((p2_fails + 1)); fi
	if awk "BEGIN { exit !($(q_get mv_p95) * 3 <= $(q_get nm_p95)) }"; then v3=PASS; else v3=FAIL; p2_fails=$((p2_fails + 1)); fi
	local v4 api_ratio
	api_ratio=$(calc "$(a_get mv_rate) / $(a_get nm_rate)")
	if awk "BEGIN { exit !($api_ratio >= 10) }"; then v4=PASS; else v4=FAIL; p2_fails=$((p2_fails + 1)); fi
	p2_targets=$(printf -- '- indexing msg/s mailvault-indexer / notmuch new >= 3.0: **%s** (%.2f: %.0f vs %.0f msg/s)\n- index size mailvault <= notmuch (du -sb, both uncompacted): **%s** (%.1f MiB vs %.1f MiB, ratio %.2f)\n- search p95, whole process through the socket: mailvault search --count <= 1/3 of notmuch count: **%s** (%.1f ms vs %.1f ms, ratio %.2f; median of %s runs)\n- searches/s with 16 clients: the API >= 10 x notmuch count (16 at a time): **%s** (%.0f vs %.1f per s, %.1f x; median of %s runs)' \
		"$v1" "$idx_ratio" "$ix_rate" "$nm_rate" "$v2" "$(p2_mib "$ix_size")" "$(p2_mib "$nm_size")" "$size_ratio" \
		"$v3" "$(q_get mv_p95)" "$(q_get nm_p95)" "$(calc "$(q_get mv_p95) / $(q_get nm_p95)")" "$(q_get sets)" \
		"$v4" "$(a_get mv_rate)" "$(a_get nm_rate)" "$api_ratio" "$(a_get runs)")

	# the tables
	local t_idx=$p2/table-index.md t_size=$p2/table-size.md t_lat=$p2/table-latency.md t_where=$p2/table-where.md
	{
		echo "| tool | seconds | msg/s | vs notmuch | documents | CPU s: tool (user) / postgres | peak RSS | load at start |"
		echo "|---|---:|---:|---:|---:|---|---:|---:|"
		printf '| notmuch new | %.1f | %.0f | 1.00 | %s messages (%s files; %s non-mail file ignored) | %s / - | %.1f MiB | %s |\n' \
			"$nm_secs" "$nm_rate" "$nm_docs" "$nm_files" "$nm_nonmail" "$nm_cpu" "$(calc "$nm_rss / 1024")" "$nm_load"
		printf '| mailvault-indexer --once | %.1f | %.0f | %.2f | %s | %s (%s) / %.1f | %.1f MiB | %s |\n' \
			"$ix_secs" "$ix_rate" "$idx_ratio" "$ix_docs" "$ix_cpu" "$ix_usr" "$ix_pgcpu" "$(calc "$ix_rss / 1024")" "$ix_load"
	} >"$t_idx"
	{
		echo "| Xapian table (file size) | mailvault | notmuch |"
		echo "|---|---:|---:|"
		join -a1 -a2 -e 0 -o 0,1.2,2.2 <(sort "$p2/ix.tables") <(sort "$p2/nm.tables") |
			awk '{ printf "| %s | %.1f MiB | %.1f MiB |\n", $1, $2 / 1048576, $3 / 1048576 }'
		printf '| **du -sb, as left by the tool** | **%.1f MiB** | **%.1f MiB** |\n' "$(calc "$ix_size / 1048576")" "$(calc "$nm_size / 1048576")"
		printf '| xapian-compact copy (information) | %.1f MiB | %.1f MiB |\n' "$(calc "$ix_csize / 1048576")" "$(calc "$nm_csize / 1048576")"
		printf '| documents | %s | %s |\n' "$ix_docs" "$nm_docs"
		printf '| average document length (wdf) | %s | %s |\n' "$(p2_stat "$p2/ix.stats" avglength)" "$(p2_stat "$p2/nm.stats" avglength)"
		printf '| commits (Xapian revision) | %s | %s |\n' "$(p2_stat "$p2/ix.stats" revision)" "$(p2_stat "$p2/nm.stats" revision)"
	} >"$t_size"
	# the ten largest prefixes of each (by occurrences), side by side
	local t_pfx=$p2/table-prefixes.md
	{
		echo "| mailvault prefix | terms | postings | occurrences | notmuch prefix | terms | postings | occurrences |"
		echo "|---|---:|---:|---:|---|---:|---:|---:|"
		paste -d' ' <(awk 'NF == 4 && $1 != "ALL"' "$p2/ix.stats" | head -n 10) <(awk 'NF == 4 && $1 != "ALL"' "$p2/nm.stats" | head -n 10) |
			awk '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
		printf '| **all** | %s | %s | %s | **all** | %s | %s | %s |\n' "$(p2_stat "$p2/ix.stats" ALL 2)" \
			"$(p2_stat "$p2/ix.stats" ALL 3)" "$(p2_stat "$p2/ix.stats" ALL 4)" "$(p2_stat "$p2/nm.stats" ALL 2)" \
			"$(p2_stat "$p2/nm.stats" ALL 3)" "$(p2_stat "$p2/nm.stats" ALL 4)"
	} >"$t_pfx"
	{
		echo "| tool | p50 ms | p95 ms | mean ms | min ms | max ms | p95 of each run, ms | runs x processes |"
		echo "|---|---:|---:|---:|---:|---:|---:|---:|"
		printf '| mailvault search --count | %s | %s | %s | %s | %s | %s | %s x %s |\n' "$(q_get mv_p50)" \
			"$(q_get mv_p95)" "$(q_get mv_mean)" "$(q_get mv_min)" "$(q_get mv_max)" "$(q_get mv_p95_sets)" "$sets" \
			"$(($(q_get queries) * runs))"
		printf '| notmuch count | %s | %s | %s | %s | %s | %s | %s x %s |\n' "$(q_get nm_p50)" "$(q_get nm_p95)" \
			"$(q_get nm_mean)" "$(q_get nm_min)" "$(q_get nm_max)" "$(q_get nm_p95_sets)" "$sets" \
			"$(($(q_get queries) * runs))"
	} >"$t_lat"
	{
		echo "| mailvault-indexer wall time, sampled every 20 ms (threadsample.py) | share | ~seconds |"
		echo "|---|---:|---:|"
		awk '$1 == "cpu-2" { d = "two or more indexer threads on CPU (shard threads parsing and writing, main thread fetching)" }
			$1 == "cpu-1" { d = "one indexer thread on CPU" }
			$1 == "disk" { d = "no thread on CPU, one in disk wait (fsync of Xapian commits)" }
			$1 == "wait-pg" { d = "all threads waiting, PostgreSQL running (batch SELECT, UPDATE indexed_at)" }
			$1 == "wait-other" { d = "all threads waiting, PostgreSQL idle" }
			d != "" { printf "| %s | %s %% | %s |\n", d, $3, $4; d = "" }' "$p2/indexer.sample"
	} >"$t_where"

	echo
	echo "Indexing: $EXPECT_MSGS messages (same input for both; rates are $EXPECT_MSGS / seconds)"
	echo
	cat "$t_idx"
	echo
	cat "$t_where"
	echo
	cat "$t_size"
	echo
	cat "$t_pfx"
	echo
	cat "$t_lat"
	echo
	cat "$p2/queries.md"
	echo
	cat "$p2/api.md"
	echo
	echo "$p2_targets"
	echo

	[ "${MV_P2_NO_RESULTS:-0}" = 1 ] && return 0
	local section=$p2/section.md run_cmd cpu_model mem_gib nm_v xap_v
	run_cmd=${P2_RUN_CMD:-bash bench/bench.sh}
	cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
	nm_v=$(notmuch --version | awk '{ print $2 }')
	xap_v=$(dpkg-query -W -f '${Version}' libxapian30 2>/dev/null || echo '?')
	{
		echo "$P2_SECTION"
		echo
		echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') with \`$run_cmd\` on $(nproc) x $cpu_model (nproc $(nproc))," \
			"$mem_gib GiB RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r); 1-minute load" \
			"average at the start of each timed part in the tables (the machine may be shared with other jobs)."
		echo
		echo "- Input: the archive of part 1's last mailvaultd run (workers = 4; $n_arch distinct messages by SHA-256," \
			"$EXPECT_MSGS locations) in its PostgreSQL 15 cluster (fsync on), and the maildir part 1's mbsync run" \
			"wrote ($EXPECT_MSGS files, the same messages as the server serves). Rates are $EXPECT_MSGS / seconds" \
			"for both tools (same input); each tool's own document count is shown."
		echo "- mailvault: \`mailvault-indexer -c CONF --once\` ([indexer] index_path added; shards = nproc, each" \
			"with one thread that parses and writes its messages while the main thread fetches the next batch;" \
			"Xapian flushes every 500 documents per shard, commits every 10,000 documents or 10 s); its log: \"$ix_logline\"" \
			"($ix_notes messages indexed from what could be read). \`mailvault index verify\`: \"$ix_verify\";" \
			"no message left with indexed_at IS NULL."
		echo "- Peer: notmuch $nm_v (Xapian $xap_v) \`notmuch new\` with a private NOTMUCH_CONFIG (database path =" \
			"the maildir; new.tags = unread;inbox; new.ignore = .mbsyncstate;.uidvalidity; maildir.synchronize_flags" \
			"= false; search.exclude_tags empty), TZ=UTC; its output: \"$nm_logline\"."
		echo "- Warm for both: \`sync\` (and a PostgreSQL CHECKPOINT) before each timed run, then every file of the" \
			"PostgreSQL cluster, resp. of the maildir, read once (cat > /dev/null); the page cache is never dropped."
		echo "- CPU s: user + system CPU seconds of the tool (/usr/bin/time -v, user in parentheses) and of the whole" \
			"PostgreSQL process tree during the run (bench/cputree.py)."
		echo
		cat "$t_idx"
		echo
		echo "Where mailvault-indexer's wall time goes (bench/threadsample.py: the indexer's thread states and" \
			"PostgreSQL's, every 20 ms; PostgreSQL busy in $(awk '$1 == "pg_busy_percent" { print $2 }' "$p2/indexer.sample") % of the samples):"
		echo
		cat "$t_where"
		echo
		echo "Index size: du -sb of mailvault's index folder and of notmuch's .notmuch/xapian, both as the tools" \
			"left them (glass, uncompacted: neither tool compacts); the compacted copies (xapian-compact, both)" \
			"are for information only. Terms by prefix from bench/xapstats.py (python3-xapian): distinct" \
			"terms, postings (documents per term, summed: the driver of postlist and termlist) and occurrences" \
			"(wdf summed: the number of positions, the driver of position); Z + prefix = stemmed form."
		echo
		cat "$t_size"
		echo
		cat "$t_pfx"
		echo
		echo "Query latency: bench/queries.tsv, $(q_get queries) queries with the same meaning in both languages" \
			"(size has no notmuch equivalent and is left out), each run as a whole process: \`mailvault search" \
			"--count Q\` and \`notmuch count Q\`. mailvault runs as an officer runs it: no configuration file (an" \
			"officer cannot read the administrator's), the socket named by MAILVAULT_SOCKET; the command (libc and" \
			"json-c, linked statically) sends the query over mailvault-web's Unix socket; the service names the" \
			"officer by the socket's peer, reads their scope, counts in its open index and writes the audit row," \
			"durable (one commit, fsync on), before it answers. $sets runs, each one untimed warm-up round then" \
			"$runs rounds, the order of the tools alternating; wall time per process from time.perf_counter around" \
			"subprocess.run (bench/querybench.py); percentiles nearest-rank over the $(($(q_get queries) * runs))" \
			"processes of a run and tool; each figure is the median of the $sets runs'. Load at start: $q_load."
		echo
		cat "$t_lat"
		echo
		echo "Counts side by side (mailvault p50 / notmuch p50 per query over its $((runs * sets)) processes; note: relative" \
			"difference mailvault vs notmuch, or a flag when one side finds nothing). Counts differ because the" \
			"tools tokenise and parse addresses differently: notmuch counts one message per Message-ID, mailvault" \
			"one per SHA-256; notmuch's to: covers To, Cc and Bcc (written as to/cc/bcc OR for mailvault); notmuch's" \
			"from:enron.com is a phrase over the From text, mailvault's from:@enron.com the exact domain;" \
			"both tools let a bare word or wildcard (enr*) match the subject, the body and the names and" \
			"addresses in From, To, Cc and Bcc; notmuch's attachment tag comes from a part's disposition" \
			"or file name, mailvault's has:attachment follows the rule in README.md."
		echo
		cat "$p2/queries.md"
		echo
		echo "Throughput with 16 clients at once (bench/apibench.py, load at start: $a_load): mailvault as" \
			"\`GET /api/v1/count?q=Q\` with an officer's token, from wrk (16 connections, 2 threads; bench/apibench.lua)," \
			"each request the next query in turn; notmuch as 16 threads each running \`notmuch count Q\` on the next" \
			"query in turn (notmuch has no server: that is how 16 people or scripts use it at once). Each tool" \
			"$api_secs s per run, the tools alternating which goes first; the figures are the medians of $api_runs" \
			"runs. Every API search wrote its audit row before its answer: $a_rows rows by the bench officer over" \
			"the run, and \`mailvault audit verify\` afterwards: \"$a_verify\". For comparison, the design the" \
			"service avoids, one transaction and flush per audit row with 16 clients queueing on the chain's lock" \
			"(pgbench -c 16, the same function, as the service's login): $a_single rows/s, the ceiling of searches" \
			"per second it would allow whatever the index could do."
		echo
		cat "$p2/api.md"
		echo
		echo "Targets:"
		echo
		echo "$p2_targets"
		echo
	} >"$section"
	results_write_section "$P2_SECTION" "$section"
	say "wrote section \"$P2_SECTION\" of bench/RESULTS.md"
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
	B=${1:?usage: bash bench/index-search.sh SCRATCH_FOLDER [CLUSTER_NAME]}
	B=$(cd "$B" && pwd)
	name=${2:-pgw4}
	EXPECT_MSGS=44755
	RESULTS=$BENCH_DIR/RESULTS.md
	MVCLI=$B/bin/mailvault
	IDX=$B/bin/mailvault-indexer
	if [ ! -x "$IDX" ] || [ ! -x "$B/bin/mailvault-cli" ] || [ ! -x "$B/bin/mailvault-web" ]; then
		mkdir -p "$B/bin"
		cp "$MV_BUILD/mailvault-indexer" "$MV_BUILD/mailvault" "$MV_BUILD/mailvault-cli" "$MV_BUILD/mailvault-web" "$B/bin/"
	fi
	[ -d "$B/$name/pg/data" ] || die "no PostgreSQL cluster at $B/$name (run MV_KEEP=1 make bench first)"
	trap 'pg_stop "$B/$name"' EXIT
	pg_start "$B/$name"
	say "standalone: cluster $B/$name restarted; every message marked unindexed, both indexes removed"
	pg_psql "UPDATE messages SET indexed_at = NULL WHERE indexed_at IS NOT NULL" "DELETE FROM index_queue" \
		"VACUUM messages" >/dev/null
	P2_RUN_CMD="bash bench/index-search.sh SCRATCH (part 2 alone, on the scratch folder of MV_KEEP=1 make bench)"
	part2_main "$name" "$B/mbsync"
	if [ "${MV_P2_DIAG:-0}" = 1 ]; then
		say "diagnostics: perf record of a second, untimed indexer run"
		pg_psql "UPDATE messages SET indexed_at = NULL" >/dev/null
		rm -rf "$B/index"
		perf record -g -o "$B/p2/perf.data" "$IDX" -c "$B/$name.conf" --once 2>"$B/p2/indexer-perf.log" >/dev/null 2>&1
		perf report -i "$B/p2/perf.data" --no-children --sort dso,sym --stdio 2>/dev/null | head -n 80 >"$B/p2/perf.txt"
		say "perf report: $B/p2/perf.txt"
	fi
	if [ "$p2_fails" != 0 ] && [ "${MV_BENCH_STRICT:-0}" = 1 ]; then
		exit 1
	fi
fi

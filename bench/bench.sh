#!/usr/bin/env bash
# Ingest benchmark (issue 2): mailvaultd --once vs mbsync -a over the whole Enron corpus on a private Dovecot;
# then (part 2, issue 3, bench/index-search.sh) mailvault-indexer vs notmuch new and search latency on the result.
#
# Run by `make bench` (after `make all`) as `bash bench/bench.sh`. Everything lives in a scratch folder under
# /tmp that is removed at the end (MV_KEEP=1 keeps it); only loopback and unix sockets are used.
#   1. private Dovecot (IMAPS, "localhost") + the whole Enron corpus: 137 users, 44,755 messages
#   2. warm-up, untimed: read every maildir file, one mbsync pass and one mailvaultd pass into scratch stores
#   3-4. MV_BENCH_ROUNDS rounds (default 3), each: mbsync -q -a (FSync yes), one channel per user, all folders
#      -> local maildirs, timed, files counted; then mailvaultd -c CONF --once for each worker count (fresh
#      PostgreSQL 15 cluster, durable commits, the database's checks on: the SHA-256 CHECK of every blob,
#      column grants, the watermark function), timed, peak RSS from /usr/bin/time -v, locations checked
#   4b. the cost of the SHA-256 check: on the last archive, PostgreSQL's sha256() over every blob, timed
#      against reading the same bytes without hashing (median of 3), in CPU seconds of one backend
#   5. table per round + medians + targets (median msg/s ratio >= 4.0; peak RSS < 64 MiB + 2 x largest
#      message), section "## Ingest (issues 2 and 7)" of bench/RESULTS.md rewritten
#   6. part 2 (bench/index-search.sh, see there): on the archive of the workers = 4 run (its cluster kept
#      running) and the maildir of the mbsync run (kept): mailvault-indexer --once vs notmuch new, index
#      sizes, 20 queries (bench/queries.tsv) as whole processes; section "## Index and search (issue 3)"
#   7. part 3 (bench/dispose.sh, see there): on an archive of its own from the same Dovecot (all users but 5,
#      indexed), 10% under holds, three timed mailvault-retention --once runs from one snapshot with an
#      ingest and searches running, against a bare superuser DELETE; section "## Disposal (issue 10)"
# Each section of RESULTS.md is rewritten by its part; hand-written notes after the line NOTES_MARK (see
# index-search.sh) in a section are kept.
# Environment: MV_BENCH_WORKERS (default "2 4"), MV_BENCH_ROUNDS (default 3), MV_CORPUS (default
# ../shared/corpora/enron-inbox.tar.xz),
# MV_KEEP=1 (keep the scratch folder), MV_BENCH_STRICT=1 (exit 1 when a target fails, not only on errors),
# MV_BENCH_SEARCH=0 (no part 2), MV_P2_RUNS (timed query rounds of part 2, default 5), MV_BENCH_PARTS (the
# parts to run, default "1 2 3"; part 2 needs part 1; "3" alone loads Dovecot and runs the disposal part
# only), MV_BENCH_DISPOSE_USERS=N and the other MV_P3_* settings of bench/dispose.sh.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MV_ROOT=$(cd "$BENCH_DIR/.." && pwd)
export MV_ROOT
# shellcheck source=../tests/lib/common.sh
. "$MV_ROOT/tests/lib/common.sh"
# shellcheck source=lib.sh
. "$BENCH_DIR/lib.sh"
# shellcheck source=index-search.sh
. "$BENCH_DIR/index-search.sh"
# shellcheck source=dispose.sh
. "$BENCH_DIR/dispose.sh"

CORPUS=${MV_CORPUS:-$MV_ROOT/../shared/corpora/enron-inbox.tar.xz}
WORKERS_LIST=${MV_BENCH_WORKERS:-2 4}
ROUNDS=${MV_BENCH_ROUNDS:-3}
EXPECT_MSGS=44755
EXPECT_USERS=137
MVD=$MV_BUILD/mailvaultd
MVCLI=$MV_BUILD/mailvault
IDX=$MV_BUILD/mailvault-indexer
PARTS=" ${MV_BENCH_PARTS:-1 2 3} "
PART2=${MV_BENCH_SEARCH:-1}
[[ "$PARTS" == *" 2 "* ]] || PART2=0
PART3=0
[[ "$PARTS" == *" 3 "* ]] && PART3=1
if [[ "$PARTS" != *" 1 "* ]] && [ "$PART2" = 1 ]; then
	die "part 2 indexes part 1's archive: MV_BENCH_PARTS must include 1 with 2"
fi
RESULTS=$BENCH_DIR/RESULTS.md
SECTION="## Ingest (issues 2 and 7)"
OLD_SECTION="## Ingest (issue 2)"


# the command that produced these figures, with the settings that differ from the defaults
run_cmd="bash bench/bench.sh"
[ -n "${MAKELEVEL:-}" ] && run_cmd="make bench"
[ "$MV_BUILD" != "$MV_ROOT/build" ] && run_cmd="MV_BUILD=$MV_BUILD $run_cmd"
[ "$WORKERS_LIST" != "2 4" ] && run_cmd="MV_BENCH_WORKERS='$WORKERS_LIST' $run_cmd"
[ "$ROUNDS" != 3 ] && run_cmd="MV_BENCH_ROUNDS=$ROUNDS $run_cmd"
[ -n "${MV_CORPUS:-}" ] && run_cmd="MV_CORPUS=$MV_CORPUS $run_cmd"
[ -n "${MV_BENCH_PARTS:-}" ] && run_cmd="MV_BENCH_PARTS='$MV_BENCH_PARTS' $run_cmd"

# ---------------------------------------------------------------------------------------------- checks
if [ ! -x "$MVD" ] || [ ! -x "$MVCLI" ]; then
	die "build/mailvaultd and build/mailvault are missing: run make all first"
fi
if [ "$PART2" = 1 ] && [ ! -x "$IDX" ]; then
	die "build/mailvault-indexer is missing: run make all first (or MV_BENCH_SEARCH=0 for part 1 only)"
fi
if [ "$PART3" = 1 ] && [ ! -x "$MV_BUILD/mailvault-retention" ]; then
	die "build/mailvault-retention is missing: run make all first (or MV_BENCH_PARTS='1 2' without part 3)"
fi
command -v mbsync >/dev/null || die "mbsync (package isync) is not installed"
if [ ! -x /usr/bin/time ]; then
	if [ "$(id -u)" = 0 ]; then
		say "installing GNU time (package time) for peak RSS"
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time >/dev/null ||
			die "apt-get install time failed"
	else
		die "/usr/bin/time is missing: apt-get install time"
	fi
fi
[ -r "$CORPUS" ] || die "corpus $CORPUS not readable"

bench_t0=$(now)
t_tmpdir B
say "scratch folder $B (removed at exit unless MV_KEEP=1)"
# private copies: the build folder may be rebuilt by someone else while the bench runs
mkdir -p "$B/bin"
cp "$MVD" "$MVCLI" "$MV_BUILD/mailvault-cli" "$B/bin/"
[ "$PART2" = 1 ] || [ "$PART3" = 1 ] && cp "$IDX" "$MV_BUILD/mailvault-web" "$B/bin/"
[ "$PART3" = 1 ] && cp "$MV_BUILD/mailvault-retention" "$B/bin/"
MVD=$B/bin/mailvaultd
MVCLI=$B/bin/mailvault
IDX=$B/bin/mailvault-indexer

# ------------------------------------------------------------------------------- 1. Dovecot + corpus
say "unpacking $(basename "$CORPUS")"
mkdir -p "$B/corpus"
tar -xJf "$CORPUS" -C "$B/corpus"
root=$(dirname "$(find "$B/corpus" -maxdepth 3 -type d -name maildir | head -n 1)")
[ -d "$root/maildir" ] || die "no maildir/ folder in $CORPUS"
say "loading the corpus into a private Dovecot (enron_load)"
enron_load "$B" "$root"
rm -rf "$B/corpus"
dovecot_start "$B"
DC=$B/dovecot
read -r n_users n_folders n_msgs < <(awk -F'\t' '{ f += $3; m += $4 } END { print NR, f, m }' "$DC/users.tsv")
n_files=$(find "$DC/mail" -type f -path '*/cur/*' | wc -l)
say "Dovecot on 127.0.0.1:$DOVECOT_IMAPS_PORT (IMAPS): $n_users users, $n_folders folders, $n_msgs messages" \
	"($n_files maildir files)"
if [ "$n_msgs" != "$EXPECT_MSGS" ] || [ "$n_files" != "$EXPECT_MSGS" ]; then
	die "expected $EXPECT_MSGS messages, users.tsv says $n_msgs, the maildirs hold $n_files"
fi
[ "$n_users" = "$EXPECT_USERS" ] || die "expected $EXPECT_USERS users, got $n_users"

# mbsync -a keeps every account's connection open until it ends (137 at once). Over TLS each connection
# holds one imap-login process (service_count = 1), and imap-login inherits default_process_limit = 100:
# connections 101+ are dropped ("process_limit (100) reached"). Local workaround: raise it and reload.
lim=$(doveconf -c "$DOVECOT_CONF" -h service/imap-login/process_limit 2>/dev/null || echo 0)
[ "$lim" = 0 ] && lim=$(doveconf -c "$DOVECOT_CONF" -h default_process_limit 2>/dev/null || echo 100)
if [ "$lim" -lt $((n_users + 50)) ]; then
	say "raising Dovecot's imap-login process_limit from $lim to 500 (bench workaround, see bench.sh)"
	printf '\n# bench/bench.sh: mbsync -a holds one TLS connection per account open at once\n%s\n' \
		'service imap-login {' '  process_limit = 500' '}' >>"$DOVECOT_CONF"
	dovecot_reload "$B"
	lim=$(doveconf -c "$DOVECOT_CONF" -h service/imap-login/process_limit)
	[ "$lim" -ge $((n_users + 50)) ] || die "could not raise imap-login process_limit (now $lim)"
fi
dc_master=$(cat "$DC/run/master.pid")

# part 3 alone (MV_BENCH_PARTS=3): its own archive from this Dovecot, nothing of parts 1-2
if [[ "$PARTS" != *" 1 "* ]]; then
	p3_fails=0
	if [ "$PART3" = 1 ]; then
		say "part 3 (issue 10): disposal, on an archive of its own from this Dovecot"
		P3_RUN_CMD=$run_cmd
		part3_main
	fi
	say "bench took $(printf '%.0f' "$(calc "$(now) - $bench_t0")") s"
	[ "$p3_fails" != 0 ] && [ "${MV_BENCH_STRICT:-0}" = 1 ] && exit 1
	exit 0
fi

# ------------------------------------------------------------------------------------------- helpers
# write_mbsyncrc FILE TARGET FSYNC: one IMAPAccount/IMAPStore/MaildirStore/Channel per user.
write_mbsyncrc() {
	local file=$1 target=$2 fsync=$3 user pw _f _m
	{
		echo "# mbsync configuration written by bench/bench.sh"
		echo "FSync $fsync"
		while IFS=$'\t' read -r user pw _f _m; do
			mkdir -p "$target/$user"
			cat <<-EOF

			IMAPAccount $user
			Host localhost
			Port $DOVECOT_IMAPS_PORT
			User "$user"
			Pass "$pw"
			SSLType IMAPS
			CertificateFile $MV_CA_FILE

			IMAPStore $user-far
			Account $user

			MaildirStore $user-near
			Path $target/$user/
			Inbox $target/$user/INBOX
			SubFolders Verbatim

			Channel $user
			Far :$user-far:
			Near :$user-near:
			Patterns *
			Create Near
			Sync Pull
			SyncState *
			EOF
		done <"$DC/users.tsv"
	} >"$file"
}

# count_maildir TARGET: number of message files in the maildirs under TARGET.
count_maildir() {
	find "$1" -type f \( -path '*/cur/*' -o -path '*/new/*' \) | wc -l
}


# mv_setup NAME WORKERS: fresh PostgreSQL cluster $B/NAME, CONF $B/NAME.conf, init, one account per user.
mv_setup() {
	local name=$1 workers=$2 user pw _f _m
	# fresh even when MV_KEEP=1 kept an earlier round's cluster of the same name
	if [ -d "$B/$name" ]; then
		pg_stop "$B/$name" >/dev/null 2>&1 || true
		rm -rf "${B:?}/${name:?}"
	fi
	pg_start "$B/$name"
	MV_CONF=$B/$name.conf
	cat >"$MV_CONF" <<-EOF
	[database]
	conninfo = $MV_CONNINFO
	[daemon]
	workers = $workers
	log_level = info
	[tls]
	ca_file = $MV_CA_FILE
	EOF
	"$MVCLI" -c "$MV_CONF" init >"$B/$name.setup.log" 2>&1 || {
		cat "$B/$name.setup.log" >&2
		die "mailvault init failed"
	}
	mkdir -p "$B/secrets"
	# each account's secret: a section of the configuration, bound to the one host and user it may go to
	while IFS=$'\t' read -r user pw _f _m; do
		if [ ! -f "$B/secrets/$user" ]; then
			(umask 077 && printf '%s' "$pw" >"$B/secrets/$user")
		fi
		printf '[secret %s]\nsource = file:%s\nhost = localhost\nuser = %s\n' "$user" "$B/secrets/$user" "$user" \
			>>"$MV_CONF"
	done <"$DC/users.tsv"
	while IFS=$'\t' read -r user pw _f _m; do
		"$MVCLI" -c "$MV_CONF" account add "$user" --host localhost --port "$DOVECOT_IMAPS_PORT" \
			--user "$user" --secret "$user" >>"$B/$name.setup.log" 2>&1 || {
			tail -n 20 "$B/$name.setup.log" >&2
			die "mailvault account add $user failed"
		}
	done <"$DC/users.tsv"
}

# mv_teardown NAME: stops the run's cluster and frees its disk space (kept with MV_KEEP=1).
mv_teardown() {
	pg_stop "$B/$1"
	[ "${MV_KEEP:-0}" = 1 ] || rm -rf "${B:?}/${1:?}"
}

# mv_check NAME: the archive holds every message once per location, every folder, no ingest error.
mv_check() {
	local locs folders errs
	read -r locs folders errs < <(pg_psql "SELECT (SELECT count(*) FROM locations), (SELECT count(*) FROM folders),
		(SELECT count(*) FROM ingest_errors)" | tr '|' ' ')
	say "  $1: locations $locs, folders $folders, ingest errors $errs"
	[ "$locs" = "$EXPECT_MSGS" ] || die "$1: SELECT count(*) FROM locations = $locs, expected $EXPECT_MSGS"
	[ "$folders" = "$n_folders" ] || die "$1: $folders folders archived, expected $n_folders"
	[ "$errs" = 0 ] || die "$1: $errs ingest errors"
}

# mvd_fail NAME LOG: explains a failed mailvaultd run and stops.
mvd_fail() {
	echo "--- tail of $2 ---" >&2
	tail -n 30 "$2" >&2
	grep -E ' (warn|error|fatal):' "$2" | head -n 20 >&2 || true
	die "$1: mailvaultd --once failed"
}

# ------------------------------------------------------------------------------------------ 2. warm-up
say "warm-up (untimed): reading every maildir file"
find "$DC/mail" -type f -print0 | xargs -0 cat >/dev/null
say "warm-up (untimed): one mbsync -a pass (FSync no) into a scratch maildir"
write_mbsyncrc "$B/mbsyncrc.warm" "$B/mbsync-warm" no
mbsync -c "$B/mbsyncrc.warm" -q -a >"$B/mbsync-warm.log" 2>&1 || {
	tail -n 20 "$B/mbsync-warm.log" >&2
	die "warm-up mbsync failed"
}
rm -rf "$B/mbsync-warm"
say "warm-up (untimed): one mailvaultd --once pass (workers = 4) into a scratch database"
mv_setup pgwarm 4
"$MVD" -c "$MV_CONF" --once 2>"$B/mvd-warm.log" || mvd_fail warm-up "$B/mvd-warm.log"
mv_check warm-up
# the byte total as Dovecot sends it (CRLF lines), and the largest message, from the archive
read -r total_bytes max_msg uniq_msgs < <(pg_psql "SELECT (SELECT sum(m.size) FROM locations l JOIN messages m
	ON m.serial = l.message_serial), (SELECT max(size) FROM messages), (SELECT count(*) FROM messages)" | tr '|' ' ')
mv_teardown pgwarm
say "  $EXPECT_MSGS messages ($uniq_msgs distinct), $total_bytes bytes as sent by the server, largest $max_msg bytes"

# ---------------------------------------------------------------------------- 3-4. rounds: mbsync, mailvaultd
# the run the targets are about (workers = 4, else the last); part 2 indexes its archive of the last round
target_w=4
case " $WORKERS_LIST " in *" 4 "*) ;; *) target_w=${WORKERS_LIST##* } ;; esac
write_mbsyncrc "$B/mbsyncrc" "$B/mbsync" yes
declare -A mb_secs mb_rss mb_cpu mb_dccpu mb_load mv_secs mv_rss mv_cpu mv_pgcpu mv_dccpu mv_load
for ((r = 1; r <= ROUNDS; r++)); do
	rm -rf "$B/mbsync"
	write_mbsyncrc "$B/mbsyncrc" "$B/mbsync" yes
	say "round $r of $ROUNDS: mbsync -q -a (FSync yes, $n_users channels, Patterns *): timed"
	mb_load[$r]=$(loadavg)
	read -r dc0 < <(cpu_of "$dc_master")
	t0=$(now)
	/usr/bin/time -v -o "$B/mbsync.time" mbsync -c "$B/mbsyncrc" -q -a >"$B/mbsync.log" 2>&1 || {
		tail -n 20 "$B/mbsync.log" >&2
		die "mbsync -a failed"
	}
	t1=$(now)
	read -r dc1 < <(cpu_of "$dc_master")
	mb_secs[$r]=$(calc "$t1 - $t0")
	mb_files=$(count_maildir "$B/mbsync")
	[ "$mb_files" = "$EXPECT_MSGS" ] || die "mbsync fetched $mb_files messages, expected $EXPECT_MSGS"
	mb_rss[$r]=$(awk -F': ' '/Maximum resident/ { print $2 }' "$B/mbsync.time")
	mb_cpu[$r]=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$B/mbsync.time")
	mb_dccpu[$r]=$(calc "$dc1 - $dc0")
	say "  mbsync: $(printf '%.1f' "${mb_secs[$r]}") s, $mb_files files, peak RSS $((mb_rss[$r] / 1024)) MiB"
	for w in $WORKERS_LIST; do
		k=$r.$w
		say "round $r of $ROUNDS: mailvaultd --once, workers = $w: fresh database, $n_users accounts"
		mv_setup "pgw$w" "$w"
		pg_master=$(head -n 1 "$B/pgw$w/pg/data/postmaster.pid")
		mv_load[$k]=$(loadavg)
		read -r pg0 dc0 < <(cpu_of "$pg_master" "$dc_master")
		t0=$(now)
		/usr/bin/time -v -o "$B/mvd-w$w.time" "$MVD" -c "$MV_CONF" --once 2>"$B/mvd-w$w.log" ||
			mvd_fail "workers=$w" "$B/mvd-w$w.log"
		t1=$(now)
		read -r pg1 dc1 < <(cpu_of "$pg_master" "$dc_master")
		mv_secs[$k]=$(calc "$t1 - $t0")
		mv_rss[$k]=$(awk -F': ' '/Maximum resident/ { print $2 }' "$B/mvd-w$w.time")
		mv_cpu[$k]=$(awk -F': ' '/User time|System time/ { s += $2 } END { printf "%.1f", s }' "$B/mvd-w$w.time")
		mv_pgcpu[$k]=$(calc "$pg1 - $pg0")
		mv_dccpu[$k]=$(calc "$dc1 - $dc0")
		mv_check "workers=$w"
		"$MVCLI" -c "$MV_CONF" status >"$B/status-w$w.txt" 2>&1 || die "mailvault status failed"
		say "  workers=$w: $(printf '%.1f' "${mv_secs[$k]}") s, peak RSS $((mv_rss[$k] / 1024)) MiB"
		# the last round's target archive stays for the hash check and part 2 (idle meanwhile)
		if [ "$r" != "$ROUNDS" ] || [ "$w" != "$target_w" ]; then
			mv_teardown "pgw$w"
		fi
	done
done
# part 2 indexes the last round's maildir with notmuch
[ "${MV_KEEP:-0}" = 1 ] || [ "$PART2" = 1 ] || rm -rf "$B/mbsync"

# ------------------------------------------------------------------- 4b. what the SHA-256 check costs
# The CHECK (sha256 = sha256(raw)) hashes each blob once as it is inserted. Its cost on this corpus: one
# backend computing sha256() over every stored blob, minus the same backend reading the same bytes
# (detoasting them) without hashing; CPU seconds of that backend from /proc, median of 3 each.
pg_start "$B/pgw$target_w"
hash_sql() { # SQL: CPU seconds one backend spends on it
	psql -X -q -At "$MV_CONNINFO" <<-SQL | tail -n 1
	SELECT pg_backend_pid() AS pid \gset
	\setenv MV_BACKEND :pid
	\! awk '{ print \$14 + \$15 }' /proc/\$MV_BACKEND/stat > $B/cpu0
	\o /dev/null
	$1;
	\o
	\! awk '{ print \$14 + \$15 }' /proc/\$MV_BACKEND/stat > $B/cpu1
	\! awk -v t="\$(getconf CLK_TCK)" 'NR == FNR { a = \$1; next } { printf "%.3f\n", (\$1 - a) / t }' $B/cpu0 $B/cpu1
	SQL
}
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
hash_q="SELECT count(*) FROM blobs WHERE sha256(raw) = sha256"
read_q="SELECT count(*) FROM blobs WHERE length(raw) >= 0 AND sha256 IS NOT NULL"
hash_s=$(median3 "$(hash_sql "$hash_q")" "$(hash_sql "$hash_q")" "$(hash_sql "$hash_q")")
read_s=$(median3 "$(hash_sql "$read_q")" "$(hash_sql "$read_q")" "$(hash_sql "$read_q")")
blob_bytes=$(pg_psql "SELECT sum(size) FROM blobs")
blob_n=$(pg_psql "SELECT count(*) FROM blobs")
check_cpu=$(calc "$hash_s - $read_s")
say "SHA-256 check: $blob_n blobs ($(calc "$blob_bytes / 1e6") MB): hashing $hash_s CPU s, reading alone $read_s CPU s"
[ "$PART2" = 1 ] || mv_teardown "pgw$target_w"

# --------------------------------------------------------------------------------------- 5. the table
rss_limit_kib=$(calc "64 * 1024 + 2 * $max_msg / 1024")
fails=0
table=$B/table.md
declare -A ratio
{
	echo "| round | tool | seconds | msg/s | MB/s | msg/s vs mbsync | peak RSS | CPU s: tool / postgres / dovecot | load at start |"
	echo "|---:|---|---:|---:|---:|---:|---:|---|---:|"
	for ((r = 1; r <= ROUNDS; r++)); do
		printf '| %d | mbsync -a (FSync yes) | %.1f | %.0f | %.2f | 1.00 | %.1f MiB | %s / - / %.1f | %s |\n' "$r" \
			"${mb_secs[$r]}" "$(calc "$EXPECT_MSGS / ${mb_secs[$r]}")" "$(calc "$total_bytes / 1e6 / ${mb_secs[$r]}")" \
			"$(calc "${mb_rss[$r]} / 1024")" "${mb_cpu[$r]}" "${mb_dccpu[$r]}" "${mb_load[$r]}"
		for w in $WORKERS_LIST; do
			k=$r.$w
			ratio[$k]=$(calc "${mb_secs[$r]} / ${mv_secs[$k]}")
			printf '| %d | mailvaultd --once, workers = %s | %.1f | %.0f | %.2f | %.2f | %.1f MiB | %s / %.1f / %.1f | %s |\n' \
				"$r" "$w" "${mv_secs[$k]}" "$(calc "$EXPECT_MSGS / ${mv_secs[$k]}")" \
				"$(calc "$total_bytes / 1e6 / ${mv_secs[$k]}")" "${ratio[$k]}" \
				"$(calc "${mv_rss[$k]} / 1024")" "${mv_cpu[$k]}" "${mv_pgcpu[$k]}" "${mv_dccpu[$k]}" "${mv_load[$k]}"
		done
	done
} >"$table"
# medians over the rounds (the middle value; for an even count the lower middle)
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
ratios=()
pgcpus=()
rsss=()
for ((r = 1; r <= ROUNDS; r++)); do
	ratios+=("${ratio[$r.$target_w]}")
	pgcpus+=("${mv_pgcpu[$r.$target_w]}")
	rsss+=("${mv_rss[$r.$target_w]}")
done
ratio_med=$(median "${ratios[@]}")
pgcpu_med=$(median "${pgcpus[@]}")
rss_max=$(printf '%s\n' "${rsss[@]}" | sort -n | tail -n 1)
if awk "BEGIN { exit !($ratio_med >= 4.0) }"; then ratio_v=PASS; else ratio_v=FAIL; fails=$((fails + 1)); fi
if [ "$rss_max" -lt "${rss_limit_kib%.*}" ]; then rss_v=PASS; else rss_v=FAIL; fails=$((fails + 1)); fi
targets=$(printf -- '- msg/s ratio mailvaultd (workers = %s) / mbsync, median of %d rounds (%s), with the database checks on, >= 4.0: **%s** (%.2f)\n- peak RSS of mailvaultd (workers = %s), largest of the rounds, < 64 MiB + 2 x largest message (%s B) = %.1f MiB: **%s** (%.1f MiB)\n- cost of the SHA-256 check: sha256() over all %s blobs (%.1f MB) takes %.2f CPU s of one PostgreSQL backend beyond reading them (%.2f s with hashing, %.2f s without; median of 3 each), that is %.1f %% of the %.1f CPU s PostgreSQL spends on an ingest (median, workers = %s)' \
	"$target_w" "$ROUNDS" "$(printf '%.2f ' "${ratios[@]}" | sed 's/ $//')" "$ratio_v" "$ratio_med" \
	"$target_w" "$max_msg" "$(calc "$rss_limit_kib / 1024")" "$rss_v" "$(calc "$rss_max / 1024")" \
	"$blob_n" "$(calc "$blob_bytes / 1e6")" "$check_cpu" "$hash_s" "$read_s" \
	"$(calc "100 * $check_cpu / $pgcpu_med")" "$pgcpu_med" "$target_w")

echo
echo "Ingest benchmark: $EXPECT_MSGS messages, $n_folders folders, $n_users accounts," \
	"$(calc "$total_bytes / 1e6") MB as sent by the server; largest message $max_msg B; $ROUNDS rounds"
echo
column -t -s '|' -o '|' <(grep -v '^|---' "$table") 2>/dev/null || cat "$table"
echo
echo "$targets"
echo

# ------------------------------------------------------------------------------------- RESULTS.md
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
dovecot_v=$(dovecot --version 2>/dev/null | cut -d' ' -f1)
pg_v=$("$MV_PG_BIN/postgres" --version | awk '{ print $3 }')
mbsync_v=$(mbsync --version | awk '{ print $2 }')
section=$B/section.md
{
	echo "$SECTION"
	echo
	echo "Run $(date -u '+%Y-%m-%d %H:%M UTC') with \`$run_cmd\` on $(nproc) x $cpu_model" \
		"(nproc $(nproc)), $mem_gib GiB RAM, $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r)."
	echo
	echo "- Corpus: Enron inbox, whole: $n_users accounts, $n_folders folders, $EXPECT_MSGS messages ($uniq_msgs distinct)," \
		"$(printf '%.1f' "$(calc "$total_bytes / 1e6")") MB as Dovecot sends them (CRLF; sum of RFC822.SIZE over" \
		"all locations), largest message $max_msg B. MB = 10^6 bytes, MiB = 2^20 bytes."
	echo "- Servers, all on this machine, loopback only: Dovecot $dovecot_v (IMAPS, TLS >= 1.2, host localhost," \
		"certificate verified), PostgreSQL $pg_v with fsync = on and synchronous_commit = on (durable commits;" \
		"a fresh cluster for each mailvaultd run)."
	echo "- Peer: mbsync (isync $mbsync_v) \`mbsync -q -a\` with FSync yes (durable)," \
		"one IMAPAccount/IMAPStore/MaildirStore/Channel per account (Patterns *, Create Near, Sync Pull, SyncState *); it syncs the accounts" \
		"one after another. mailvaultd: \`mailvaultd -c CONF --once\`, batch defaults, log_level = info, with" \
		"the database's checks on (the SHA-256 CHECK on every blob, column grants, the watermark functions," \
		"the re-index trigger). Each round runs mbsync, then mailvaultd for each worker count."
	echo "- Warm server for both: the page cache was not dropped; before timing, every maildir file was read and" \
		"one untimed pass of each tool (mbsync FSync no, mailvaultd workers = 4) went through Dovecot, so its" \
		"indexes and caches exist. Both tools were checked to have fetched all $EXPECT_MSGS messages (maildir" \
		"files; SELECT count(*) FROM locations)."
	echo "- CPU s: user + system CPU seconds of the tool (/usr/bin/time -v), and of the whole PostgreSQL and" \
		"Dovecot process trees during the run (bench/cputree.py). Load at start: 1-minute load average" \
		"(the machine may be shared with other jobs)."
	echo
	cat "$table"
	echo
	echo "Targets:"
	echo
	echo "$targets"
	echo
} >"$section"
# the section's earlier name, from before the checks of issue 7, gives way to this one
if grep -qxF "$OLD_SECTION" "$RESULTS" 2>/dev/null; then
	sed -i "s/^$OLD_SECTION\$/$SECTION/" "$RESULTS"
fi
results_write_section "$SECTION" "$section"
say "wrote section \"$SECTION\" of bench/RESULTS.md"

# --------------------------------------------------------------------------- 6. part 2: index and search
p2_fails=0
if [ "$PART2" = 1 ]; then
	say "part 2 (issue 3): index and search, on the archive of workers = $target_w and the mbsync maildir"
	pg_start "$B/pgw$target_w" # running: exports its connection variables again
	P2_RUN_CMD=$run_cmd
	part2_main "pgw$target_w" "$B/mbsync"
	mv_teardown "pgw$target_w"
	[ "${MV_KEEP:-0}" = 1 ] || rm -rf "$B/mbsync"
fi
# ------------------------------------------------------------------------------------ 7. part 3: disposal
p3_fails=0
if [ "$PART3" = 1 ]; then
	say "part 3 (issue 10): disposal, on an archive of its own from the same Dovecot"
	P3_RUN_CMD=$run_cmd
	part3_main
fi
say "bench took $(printf '%.0f' "$(calc "$(now) - $bench_t0")") s"

if [ $((fails + p2_fails + p3_fails)) != 0 ] && [ "${MV_BENCH_STRICT:-0}" = 1 ]; then
	exit 1
fi
exit 0

# Test harness: a whole mailvault installation in a scratch folder (sourced after common.sh).
# shellcheck shell=bash
#   mv_setup DIR      start PostgreSQL and Dovecot in DIR, write DIR/mailvault.conf, run `mailvault init`,
#                     and give the poller its own login (mv_poller, member of mailvault_ingest only);
#                     exports MV_CONF
#                     and gives mailvault-web its login (mv_web) and the running user an officer (admin, all
#                     accounts, role admin) so that search, show and audit work as before
#   mvcli CMD...      the mailvault CLI with that config; its first search, show or audit starts mailvault-web
#   mv_web_start      starts mailvault-web on MV_CONF (after the test wrote its [indexer] settings); the log is
#                     DIR/web.log, the socket DIR/web.sock (MV_WEB_SOCKET)
#   mv_web_stop       stops it (mv_web_start again reads a changed configuration)
#   mvd ARGS...       mailvaultd with that config
#   mv_pw DIR NAME PW [USER] [HOST]
#                     writes a secret file DIR/secret-NAME and a [secret NAME] section for it in MV_CONF
#                     (bound to USER, default NAME, at HOST, default localhost); prints NAME
#   mv_secret_section NAME SOURCE USER [HOST]
#                     (re)writes the [secret NAME] section of MV_CONF
#   mv_sql SQL        one value (or rows, tab-separated) from the archive database

# mv_setup DIR [EXTRA_DAEMON_SETTINGS]: everything a test needs, started and configured.
mv_setup() {
	local dir=${1:?usage: mv_setup DIR} extra=${2:-}
	pg_start "$dir" >/dev/null
	dovecot_start "$dir" >/dev/null
	MV_CONF=$dir/mailvault.conf
	export MV_CONF
	# runtime files of this test live in its folder, not in the machine's /tmp
	XDG_RUNTIME_DIR=$dir/run
	mkdir -p -m 700 "$XDG_RUNTIME_DIR"
	export XDG_RUNTIME_DIR
	MV_DIR=$dir
	MV_WEB_SOCKET=$dir/web.sock
	export MV_DIR MV_WEB_SOCKET
	cat >"$MV_CONF" <<CONF
# written by tests/lib/mv.sh
[database]
conninfo = $MV_CONNINFO
ingest_conninfo = $MV_CONNINFO user=mv_poller
web_conninfo = $MV_CONNINFO user=mv_web
[web]
socket = $MV_WEB_SOCKET
[daemon]
workers = 2
log_level = info
$extra
[tls]
ca_file = $MV_CA_FILE
CONF
	"$MV_BUILD/mailvault" -c "$MV_CONF" init >/dev/null
	pg_psql "CREATE ROLE mv_poller LOGIN IN ROLE mailvault_ingest; CREATE ROLE mv_web LOGIN IN ROLE mailvault_web" >/dev/null
	"$MV_BUILD/mailvault" -c "$MV_CONF" officer add admin --all --role admin --unix-user "$(id -un)" >/dev/null
}

# mv_web_start: mailvault-web in the background (its pid in DIR/web.pid, so that a start from a subshell
# is seen by the next call and stopped at exit); waits until its socket is there.
mv_web_start() {
	local i pid
	pid=$(cat "$MV_DIR/web.pid" 2>/dev/null)
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ -S "$MV_WEB_SOCKET" ] && return 0
	"$MV_BUILD/mailvault-web" -c "$MV_CONF" >>"$MV_DIR/web.log" 2>&1 &
	pid=$!
	echo "$pid" >"$MV_DIR/web.pid"
	for ((i = 0; i < 100; i++)); do
		[ -S "$MV_WEB_SOCKET" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "mv_web_start: mailvault-web did not start; its log:" >&2
	cat "$MV_DIR/web.log" >&2
	return 1
}

# mv_web_stop: stops mailvault-web and waits for it.
mv_web_stop() {
	local pid i
	pid=$(cat "$MV_DIR/web.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	rm -f "$MV_DIR/web.pid"
}

# mvcli CMD...: the CLI (the officers' commands go to mailvault-web, started on first use).
mvcli() {
	local a
	for a in "$@"; do
		case $a in
		search | show | audit) mv_web_start || return 1; break ;;
		-*) ;;
		*) break ;;
		esac
	done
	"$MV_BUILD/mailvault" -c "$MV_CONF" "$@"
}

# mvd ARGS...: the poller.
mvd() {
	"$MV_BUILD/mailvaultd" -c "$MV_CONF" "$@"
}

# mv_secret_section NAME SOURCE USER [HOST]: the [secret NAME] section of MV_CONF, replacing an earlier one.
mv_secret_section() {
	"$MV_PYTHON" - "$MV_CONF" "$1" "$2" "$3" "${4:-localhost}" <<'PY'
import re, sys
conf, name, source, user, host = sys.argv[1:]
lines = open(conf).read().splitlines()
out, skip = [], False
for line in lines:
    m = re.match(r"\s*\[(.*)\]\s*$", line)
    if m:
        skip = m.group(1).split() == ["secret", name]
    if not skip:
        out.append(line)
out += ["[secret %s]" % name, "source = " + source, "host = " + host, "user = " + user]
open(conf, "w").write("\n".join(out) + "\n")
PY
}

# mv_pw DIR NAME PASSWORD [USER] [HOST]: a secret file readable only by its owner, and its section; prints NAME.
mv_pw() {
	local f=$1/secret-$2
	(umask 077 && printf '%s\n' "$3" >"$f")
	mv_secret_section "$2" "file:$f" "${4:-$2}" "${5:-localhost}"
	printf '%s\n' "$2"
}

# mv_sql SQL: query result, unaligned and tab-separated.
mv_sql() {
	psql -X -At -F $'\t' -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "$1"
}

# mv_archived_set: "folder<TAB>uidvalidity<TAB>uid<TAB>sha256" for one account, sorted, from the archive.
mv_archived_set() {
	mv_sql "SELECT f.name, l.uidvalidity, l.uid, encode(m.sha256, 'hex') FROM locations l
	        JOIN messages m ON m.serial = l.message_serial JOIN folders f ON f.id = l.folder_id
	        JOIN accounts a ON a.id = f.account_id WHERE a.name = '$1' ORDER BY 1, 2, 3"
}

# mv_server_set USER PASSWORD: the same four columns, from the server through an independent client.
mv_server_set() {
	"$MV_PYTHON" "$MV_ROOT/tests/lib/imap_hashes.py" --host localhost --port "$DOVECOT_IMAPS_PORT" \
		--cafile "$MV_CA_FILE" --user "$1" --password "$2" | cut -f1-4 | sort -t $'\t' -k1,1 -k2,2n -k3,3n
}

# Test harness: a whole mailvault installation in a scratch folder (sourced after common.sh).
# shellcheck shell=bash
#   mv_setup DIR      start PostgreSQL and Dovecot in DIR, write DIR/mailvault.conf, run `mailvault init`,
#                     and give the poller its own login (mv_poller, member of mailvault_ingest only);
#                     exports MV_CONF
#   mvcli CMD...      the mailvault CLI with that config
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
	# search sessions of this test live in its folder, not in the machine's /tmp/mailvault-UID
	XDG_RUNTIME_DIR=$dir/run
	mkdir -p -m 700 "$XDG_RUNTIME_DIR"
	export XDG_RUNTIME_DIR
	cat >"$MV_CONF" <<CONF
# written by tests/lib/mv.sh
[database]
conninfo = $MV_CONNINFO
ingest_conninfo = $MV_CONNINFO user=mv_poller
[daemon]
workers = 2
log_level = info
$extra
[tls]
ca_file = $MV_CA_FILE
CONF
	"$MV_BUILD/mailvault" -c "$MV_CONF" init >/dev/null
	pg_psql "CREATE ROLE mv_poller LOGIN IN ROLE mailvault_ingest" >/dev/null
}

# mvcli CMD...: the CLI.
mvcli() {
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

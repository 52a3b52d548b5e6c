# Test harness: a private, throw-away PostgreSQL 15 cluster on a unix socket only (sourced by tests and benchmarks).
# shellcheck shell=bash source-path=SCRIPTDIR
#
# pg_start DIR        create (first time) and start the cluster in DIR/pg; exports MV_PGHOST, MV_PGPORT,
#                     MV_CONNINFO ("host=DIR/pg/sock port=P dbname=mailvault user=postgres")
# pg_stop DIR [MODE]  stop it (MODE fast by default; "immediate" simulates a crash); safe to call twice
# pg_psql SQL...      run each SQL argument with psql -X -At -v ON_ERROR_STOP=1 against $MV_CONNINFO
# pg_running DIR      true if the cluster in DIR/pg is running
#
# Layout: DIR/pg/data (PGDATA), DIR/pg/sock (socket directory), DIR/pg/log (server log), DIR/pg/port.
# The cluster is durable (fsync on, synchronous_commit on) so benchmarks measure honest commits.
# No TCP listener at all: listen_addresses = ''.

MV_PG_BIN=${MV_PG_BIN:-/usr/lib/postgresql/15/bin}
_mv_pg_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=util.sh
. "$_mv_pg_lib_dir/util.sh"

# _mv_pg_as_postgres CMD...: runs CMD as the postgres system user.
_mv_pg_as_postgres() {
	mv_as_user postgres "$@"
}

# _mv_pg_export DIR: exports the connection variables for the cluster in DIR/pg.
_mv_pg_export() {
	local pgdir
	pgdir=$(cd "$1/pg" && pwd -P)
	MV_PGHOST=$pgdir/sock
	MV_PGPORT=$(cat "$pgdir/port")
	MV_CONNINFO="host=$MV_PGHOST port=$MV_PGPORT dbname=mailvault user=postgres"
	export MV_PGHOST MV_PGPORT MV_CONNINFO
}

# pg_running DIR: true if the cluster in DIR/pg is up.
pg_running() {
	[ -f "$1/pg/data/postmaster.pid" ] || return 1
	_mv_pg_as_postgres "$MV_PG_BIN/pg_ctl" status -D "$1/pg/data" >/dev/null 2>&1
}

# pg_start DIR: creates the cluster on first use, starts it, creates database mailvault, exports MV_*.
pg_start() {
	local dir=${1:?usage: pg_start DIR} pgdir port sockpath fresh=0
	mkdir -p "$dir/pg"
	pgdir=$(cd "$dir/pg" && pwd -P)
	chown postgres:postgres "$pgdir"
	chmod 755 "$pgdir"
	mv_make_traversable postgres "$pgdir"
	if [ ! -f "$pgdir/data/PG_VERSION" ]; then
		fresh=1
		port=$(mv_free_port)
		sockpath="$pgdir/sock/.s.PGSQL.$port"
		if [ "${#sockpath}" -gt 100 ]; then
			echo "pg_start: socket path too long for a unix socket (${#sockpath} > 100): $sockpath" >&2
			return 1
		fi
		rm -rf "$pgdir/data"
		_mv_pg_as_postgres install -d -m 700 "$pgdir/data"
		_mv_pg_as_postgres install -d -m 755 "$pgdir/sock"
		if ! _mv_pg_as_postgres "$MV_PG_BIN/initdb" -D "$pgdir/data" -A trust -E UTF8 --locale=C.UTF-8 \
			-U postgres --no-instructions >"$pgdir/initdb.log" 2>&1; then
			echo "pg_start: initdb failed; see $pgdir/initdb.log:" >&2
			tail -n 20 "$pgdir/initdb.log" >&2
			return 1
		fi
		cat >>"$pgdir/data/postgresql.conf" <<-CONF

		# --- mailvault test harness ---
		listen_addresses = ''
		port = $port
		unix_socket_directories = '$pgdir/sock'
		unix_socket_permissions = 0777
		fsync = on
		synchronous_commit = on
		full_page_writes = on
		max_connections = 200
		logging_collector = off
		log_min_messages = warning
		log_line_prefix = '%m [%p] %q%u@%d '
		log_timezone = 'UTC'
		timezone = 'UTC'
		CONF
		echo "$port" | _mv_pg_as_postgres tee "$pgdir/port" >/dev/null
	fi
	if ! pg_running "$dir"; then
		_mv_pg_as_postgres touch "$pgdir/log"
		if ! _mv_pg_as_postgres "$MV_PG_BIN/pg_ctl" start -w -t 60 -D "$pgdir/data" -l "$pgdir/log" >/dev/null; then
			echo "pg_start: the server did not start; tail of $pgdir/log:" >&2
			tail -n 20 "$pgdir/log" >&2
			return 1
		fi
	fi
	_mv_pg_export "$dir"
	if [ "$fresh" = 1 ]; then
		psql -X -q -v ON_ERROR_STOP=1 "host=$MV_PGHOST port=$MV_PGPORT dbname=postgres user=postgres" \
			-c 'CREATE DATABASE mailvault' >/dev/null || return 1
	fi
}

# pg_stop DIR [MODE]: stops the cluster in DIR/pg (MODE: fast, smart or immediate); no-op if it is not running.
pg_stop() {
	local dir=${1:?usage: pg_stop DIR [MODE]} mode=${2:-fast}
	[ -f "$dir/pg/data/postmaster.pid" ] || return 0
	pg_running "$dir" || return 0
	_mv_pg_as_postgres "$MV_PG_BIN/pg_ctl" stop -w -t 60 -m "$mode" -D "$dir/pg/data" >/dev/null
}

# pg_psql SQL...: runs each SQL argument in turn (one psql, one -c each) and prints unaligned, tuples-only output.
pg_psql() {
	local args=() s
	: "${MV_CONNINFO:?pg_psql: call pg_start first}"
	for s in "$@"; do
		args+=(-c "$s")
	done
	psql -X -At -v ON_ERROR_STOP=1 "$MV_CONNINFO" "${args[@]}"
}

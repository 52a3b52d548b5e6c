# Test harness: scripted IMAP servers (tests/lib/scripted_imapd.py) on 127.0.0.1, sourced after mv.sh.
# shellcheck shell=bash
#   simap_start DIR NAME SCRIPT   starts a server for the JSON script in DIR/simap-NAME with the test CA's
#                                 certificate for "localhost" (the one Dovecot uses: mv_setup first);
#                                 sets SIMAP_PORT; its command log is DIR/simap-NAME/log; stopped at exit
#   simap_log DIR NAME            the commands the server received, one a line ("CONN TAG COMMAND ...")

# simap_start DIR NAME SCRIPT: the server, started and answering.
simap_start() {
	local dir=$1 name=$2 script=$3 d i
	d=$dir/simap-$name
	mkdir -p "$d"
	: "${MV_CA_FILE:?simap_start: start Dovecot first (mv_setup), its CA signs the server certificate}"
	"$MV_PYTHON" "$MV_ROOT/tests/lib/scripted_imapd.py" --script "$script" --cert "${MV_CA_FILE%/*}/server.pem" \
		--key "${MV_CA_FILE%/*}/server.key" --port-file "$d/port" --log "$d/log" 2>"$d/stderr" &
	t_register_pid $!
	for ((i = 0; i < 200; i++)); do
		[ -s "$d/port" ] && break
		kill -0 "$!" 2>/dev/null || break
		sleep 0.05
	done
	if [ ! -s "$d/port" ]; then
		echo "simap_start: the scripted server $name did not start:" >&2
		cat "$d/stderr" >&2
		return 1
	fi
	SIMAP_PORT=$(cat "$d/port")
	export SIMAP_PORT
}

# simap_log DIR NAME: the server's command log.
simap_log() {
	cat "$1/simap-$2/log"
}

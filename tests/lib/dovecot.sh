# Test harness: private Dovecot 2.3 instances (IMAPS + STARTTLS, or plain text only) on 127.0.0.1 (sourced).
# shellcheck shell=bash source-path=SCRIPTDIR
#
# Functions (DIR is a scratch folder; everything lives in DIR/dovecot):
#   dovecot_add_user DIR USER PASSWORD   add or replace a user ({PLAIN} passwd-file); before or after start
#   maildir_add DIR USER FOLDER FILE...  copy messages into USER's FOLDER ("INBOX", "a/b", ...) as new
#                                        maildir files in cur/ (no flags); FILE "-" reads names from stdin,
#                                        one a line; creates the folder; prints nothing
#   dovecot_start DIR                    start the TLS instance (first start creates CA, certificate, ports);
#                                        exports DOVECOT_IMAPS_PORT, DOVECOT_IMAP_PORT (STARTTLS),
#                                        MV_CA_FILE, DOVECOT_CONF; restarts keep the same ports and CA
#   dovecot_start_plain DIR              start a plain-text-only instance (ssl = no, no STARTTLS, plaintext
#                                        auth allowed); exports DOVECOT_PLAIN_PORT, DOVECOT_PLAIN_CONF
#   dovecot_stop DIR [kill]              stop the instance in DIR (SIGTERM to the master, wait ~1 s, SIGKILL
#                                        what is left); "kill": SIGKILL every process at once, like a crash;
#                                        safe to repeat
#   dovecot_reload DIR                   SIGHUP: re-read the configuration
#   dovecot_running DIR                  true if the instance's master process is alive
#   dovecot_doveadm DIR ARGS...          doveadm against that instance (e.g. dovecot_doveadm D mailbox list -u alice)
#   dovecot_reset_uidvalidity DIR USER FOLDER   forget the folder's UIDs (stop Dovecot first): the next access
#                                        gives the folder a new UIDVALIDITY and renumbers its messages
#   enron_load DIR CORPUS_ROOT [MAX_USERS] [MAX_PER_FOLDER]
#                                        one user per Enron custodian (password "pw-USER"); CORPUS_ROOT is
#                                        the folder holding maildir/ (or maildir/ itself); USER/inbox ->
#                                        INBOX, USER/inbox/x/y -> "x/y"; writes DIR/dovecot/users.tsv
#                                        (user TAB password TAB folders TAB messages), sorted by user
#
# Server facts tests may rely on: host name "localhost" (the certificate has CN=localhost and only
# DNS:localhost as subject alternative name, so verifying against "127.0.0.1" fails), 127.0.0.1 only,
# TLS 1.2 minimum, plaintext LOGIN refused before STARTTLS (LOGINDISABLED), hierarchy separator "/",
# maildir LAYOUT=fs under DIR/dovecot/mail/USER (INBOX at the root), Dovecot's index and control files
# (dovecot-uidlist...) kept apart in DIR/dovecot/index and DIR/dovecot/control, log in DIR/dovecot/log.
# Mail processes run as the system user "mail" (uid 8; override with MV_DOVECOT_MAIL_USER): Dovecot's imap
# refuses uid 0 whatever first_valid_uid says ("Mail access not allowed for root"), so the mail, index,
# control and home folders belong to that user, maildir_add/enron_load chown what they write, and the
# folders leading to DIR are given o+x where that user could not pass. The master runs as root.
# The STARTTLS port is starttls_relay.py in front of a haproxy listener: Dovecot counts a connection
# whose local and remote addresses are equal (127.0.0.1 -> 127.0.0.1) as secured and would then allow
# plaintext LOGIN without STARTTLS; through the relay it does not (its log shows lip=127.0.0.2, a label
# in the PROXY header only). Benchmarks wanting raw speed should use the IMAPS port, which is direct.
# Message files are stored as given; IMAP serves them with CRLF line endings (Dovecot turns the
# corpora's bare LFs into CRLF), so hash what imap_hashes.py reports, not the corpus files.
# Conventions: EXAMINE never changes the maildirs (checked); folders/messages added while Dovecot runs
# are seen at the next command (mailbox_list_index = no); UIDs follow the order files were given in.

_mv_dc_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=util.sh
. "$_mv_dc_lib_dir/util.sh"

MV_DOVECOT_BIN=${MV_DOVECOT_BIN:-/usr/sbin/dovecot}
MV_DOVEADM_BIN=${MV_DOVEADM_BIN:-/usr/bin/doveadm}
MV_DOVECOT_MAIL_USER=${MV_DOVECOT_MAIL_USER:-mail}

# _mv_dc_dir DIR: prints the absolute path of DIR/dovecot (created if needed).
_mv_dc_dir() {
	mkdir -p "$1/dovecot"
	(cd "$1/dovecot" && pwd -P)
}

# _mv_dc_owner: sets _mv_dc_owner_ids to UID:GID of the user the mail processes run as (cached).
_mv_dc_owner() {
	if [ "${_mv_dc_owner_user:-}" != "$MV_DOVECOT_MAIL_USER" ]; then
		_mv_dc_owner_ids="$(id -u "$MV_DOVECOT_MAIL_USER"):$(id -g "$MV_DOVECOT_MAIL_USER")"
		_mv_dc_owner_user=$MV_DOVECOT_MAIL_USER
	fi
}

# _mv_dc_init DIR: creates the instance's folders and password file; prints the instance folder.
_mv_dc_init() {
	local d
	d=$(_mv_dc_dir "$1")
	if [ ! -d "$d/mail" ]; then
		mkdir -p "$d/mail" "$d/index" "$d/control" "$d/home" "$d/state"
		chown "$MV_DOVECOT_MAIL_USER:" "$d/mail" "$d/index" "$d/control" "$d/home"
		mv_make_traversable "$MV_DOVECOT_MAIL_USER" "$d/mail"
	fi
	if [ ! -f "$d/users" ]; then
		: >"$d/users"
		chmod 600 "$d/users"
	fi
	printf '%s\n' "$d"
}

# _mv_dc_tls D: creates the test CA and the server certificate in D/tls unless they exist.
_mv_dc_tls() {
	local t=$1/tls
	[ -f "$t/server.pem" ] && [ -f "$t/ca.pem" ] && return 0
	mkdir -p "$t"
	(
		set -e
		cd "$t"
		umask 077
		openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout ca.key -out ca.pem -days 3650 -subj "/O=mailvault tests/CN=mailvault test CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout server.key -out server.csr -subj "/O=mailvault tests/CN=localhost"
		printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost" >server.ext
		openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 3650 \
			-extfile server.ext -out server.pem
		chmod 644 ca.pem server.pem
	) >"$t/openssl.log" 2>&1 || {
		echo "dovecot.sh: making the test certificates failed:" >&2
		cat "$t/openssl.log" >&2
		return 1
	}
}

# _mv_dc_write_conf D MODE IMAP_PORT IMAPS_PORT INTERNAL_PORT: writes D/dovecot.conf for MODE tls or plain.
_mv_dc_write_conf() {
	local d=$1 mode=$2 imap=$3 imaps=$4 internal=$5 inst
	inst=mvtest-$(printf '%s' "$d" | sha256sum | cut -c1-10)
	{
		cat <<-EOF
		# Private Dovecot for the mailvault tests ($mode); written by tests/lib/dovecot.sh, no system config used.
		instance_name = $inst
		base_dir = $d/run
		state_dir = $d/state
		log_path = $d/log
		info_log_path = $d/log
		debug_log_path = $d/log
		protocols = imap
		listen = 127.0.0.1
		shutdown_clients = yes

		auth_verbose = no
		auth_debug = no
		auth_mechanisms = plain login
		auth_cache_size = 0
		passdb {
		  driver = passwd-file
		  args = scheme=PLAIN username_format=%u $d/users
		}
		userdb {
		  driver = passwd-file
		  args = username_format=%u $d/users
		  override_fields = home=$d/home/%u
		}
		# Dovecot's imap never runs as root: mail processes use this system user.
		first_valid_uid = $(id -u "$MV_DOVECOT_MAIL_USER")
		first_valid_gid = $(id -g "$MV_DOVECOT_MAIL_USER")
		mail_uid = $(id -u "$MV_DOVECOT_MAIL_USER")
		mail_gid = $(id -g "$MV_DOVECOT_MAIL_USER")

		mail_location = maildir:$d/mail/%u:LAYOUT=fs:INDEX=$d/index/%u:CONTROL=$d/control/%u
		# Folders and files are added behind Dovecot's back: always look at the disk.
		mailbox_list_index = no
		maildir_very_dirty_syncs = no
		maildir_copy_with_hardlinks = no
		mail_max_userip_connections = 500
		mail_plugins =
		namespace inbox {
		  inbox = yes
		  separator = /
		  prefix =
		  mailbox Drafts {
		    special_use = \\Drafts
		  }
		  mailbox Sent {
		    special_use = \\Sent
		  }
		  mailbox Trash {
		    special_use = \\Trash
		  }
		  mailbox Junk {
		    special_use = \\Junk
		  }
		  mailbox Archive {
		    special_use = \\Archive
		  }
		}
		protocol imap {
		  imap_idle_notify_interval = 1 mins
		}
		service imap {
		  process_limit = 500
		}
		service auth {
		  # read the password file whatever the permissions on the way to DIR
		  user = root
		}
		EOF
		if [ "$mode" = tls ]; then
			cat <<-EOF
			ssl = required
			ssl_cert = <$d/tls/server.pem
			ssl_key = <$d/tls/server.key
			ssl_min_protocol = TLSv1.2
			ssl_prefer_server_ciphers = yes
			disable_plaintext_auth = yes
			# The STARTTLS port $imap is starttls_relay.py, which passes connections here with a PROXY
			# header, so Dovecot does not treat 127.0.0.1 -> 127.0.0.1 as secured and requires STARTTLS.
			haproxy_trusted_networks = 127.0.0.1/32
			service imap-login {
			  process_min_avail = 1
			  # one login process per IMAPS connection: room for a peer that opens one per account
			  process_limit = 500
			  inet_listener imap {
			    address = 127.0.0.1
			    port = $internal
			    haproxy = yes
			  }
			  inet_listener imaps {
			    address = 127.0.0.1
			    port = $imaps
			    ssl = yes
			  }
			}
			EOF
			[ -r /usr/share/dovecot/dh.pem ] && echo "ssl_dh = </usr/share/dovecot/dh.pem"
		else
			cat <<-EOF
			ssl = no
			disable_plaintext_auth = no
			service imap-login {
			  process_min_avail = 1
			  inet_listener imap {
			    address = 127.0.0.1
			    port = $imap
			  }
			  inet_listener imaps {
			    port = 0
			  }
			}
			EOF
		fi
	} >"$d/dovecot.conf.new"
	mv "$d/dovecot.conf.new" "$d/dovecot.conf"
}

# _mv_dc_pid DIR: prints the master's pid if it is running.
_mv_dc_pid() {
	local f=$1/dovecot/run/master.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	# a recycled pid must still be a dovecot master
	grep -q dovecot "/proc/$pid/comm" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

# dovecot_running DIR: true if the instance in DIR is running.
dovecot_running() {
	_mv_dc_pid "$1" >/dev/null
}

# _mv_dc_export D MODE: exports the instance's variables from D/ports.
_mv_dc_export() {
	local d=$1 imap imaps
	read -r imap imaps _ <"$d/ports"
	if [ "$2" = tls ]; then
		DOVECOT_IMAP_PORT=$imap
		DOVECOT_IMAPS_PORT=$imaps
		MV_CA_FILE=$d/tls/ca.pem
		DOVECOT_CONF=$d/dovecot.conf
		export DOVECOT_IMAP_PORT DOVECOT_IMAPS_PORT MV_CA_FILE DOVECOT_CONF
	else
		DOVECOT_PLAIN_PORT=$imap
		DOVECOT_PLAIN_CONF=$d/dovecot.conf
		export DOVECOT_PLAIN_PORT DOVECOT_PLAIN_CONF
	fi
}

# _mv_dc_start DIR MODE: starts the instance (tls or plain), waiting until every listener greets.
_mv_dc_start() {
	local dir=$1 mode=$2 d ports i base imap imaps internal
	d=$(_mv_dc_init "$dir") || return 1
	if [ -f "$d/mode" ] && [ "$(cat "$d/mode")" != "$mode" ]; then
		echo "dovecot.sh: $d was made as a $(cat "$d/mode") instance, not $mode" >&2
		return 1
	fi
	echo "$mode" >"$d/mode"
	base="$d/run/login/imap-urlauth"
	if [ "${#base}" -gt 100 ]; then
		echo "dovecot.sh: $d is too deep for Dovecot's unix sockets; use a shorter DIR" >&2
		return 1
	fi
	if dovecot_running "$dir"; then
		_mv_dc_export "$d" "$mode"
		[ "$mode" = tls ] && { _mv_dc_relay_start "$d" || return 1; }
		return 0
	fi
	[ "$mode" = tls ] && { _mv_dc_tls "$d" || return 1; }
	if [ ! -f "$d/ports" ]; then
		# imap (what clients use), imaps, internal (Dovecot's haproxy listener behind the relay)
		if [ "$mode" = tls ]; then
			ports=$(mv_free_ports 3 | tr '\n' ' ')
		else
			ports="$(mv_free_port) 0 0"
		fi
		echo "$ports" >"$d/ports"
	fi
	read -r imap imaps internal <"$d/ports"
	_mv_dc_write_conf "$d" "$mode" "$imap" "$imaps" "$internal"
	if ! "$MV_DOVEADM_BIN" -c "$d/dovecot.conf" config -n >/dev/null 2>"$d/doveconf.err" ||
		[ -s "$d/doveconf.err" ]; then
		echo "dovecot.sh: the configuration $d/dovecot.conf is not clean:" >&2
		cat "$d/doveconf.err" >&2
		return 1
	fi
	if ! "$MV_DOVECOT_BIN" -c "$d/dovecot.conf" 2>"$d/start.err"; then
		echo "dovecot.sh: dovecot did not start:" >&2
		cat "$d/start.err" >&2
		tail -n 20 "$d/log" >&2 2>/dev/null
		return 1
	fi
	_mv_dc_export "$d" "$mode"
	[ "$mode" = tls ] && { _mv_dc_relay_start "$d" || return 1; }
	# Wait for the greeting on the plain-text listener: Dovecot sends it once auth is ready.
	for ((i = 0; i < 200; i++)); do
		mv_imap_greets "$imap" && break
		sleep 0.05
	done
	if ! mv_imap_greets "$imap"; then
		echo "dovecot.sh: no IMAP greeting on 127.0.0.1:$imap; tail of $d/log:" >&2
		tail -n 20 "$d/log" >&2
		return 1
	fi
	if [ "$imaps" != 0 ] && ! mv_port_listening "$imaps"; then
		echo "dovecot.sh: nothing listens on 127.0.0.1:$imaps; tail of $d/log:" >&2
		tail -n 20 "$d/log" >&2
		return 1
	fi
}

# _mv_dc_relay_pid D: prints the pid of the instance's STARTTLS relay if it runs.
_mv_dc_relay_pid() {
	local pid
	[ -f "$1/relay.pid" ] || return 1
	pid=$(cat "$1/relay.pid" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
	grep -q starttls_relay "/proc/$pid/cmdline" 2>/dev/null || return 1
	printf '%s\n' "$pid"
}

# _mv_dc_relay_start D: starts the STARTTLS relay (see starttls_relay.py) unless it runs.
_mv_dc_relay_start() {
	local d=$1 imap imaps internal i
	_mv_dc_relay_pid "$d" >/dev/null && return 0
	read -r imap imaps internal <"$d/ports"
	rm -f "$d/relay.pid"
	setsid "$MV_PYTHON" "$_mv_dc_lib_dir/starttls_relay.py" "$imap" "$internal" "$d/relay.pid" \
		</dev/null >>"$d/relay.log" 2>&1 &
	for ((i = 0; i < 200; i++)); do
		_mv_dc_relay_pid "$d" >/dev/null && return 0
		sleep 0.05
	done
	echo "dovecot.sh: the STARTTLS relay did not start; $d/relay.log:" >&2
	tail -n 20 "$d/relay.log" >&2
	return 1
}

# _mv_dc_relay_stop D: stops the STARTTLS relay and waits for it.
_mv_dc_relay_stop() {
	local pid i
	pid=$(_mv_dc_relay_pid "$1") || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# dovecot_start DIR: starts (or restarts) the TLS instance in DIR/dovecot.
dovecot_start() {
	local dir=${1:?usage: dovecot_start DIR}
	if [ -f "$dir/dovecot/mode" ] && [ "$(cat "$dir/dovecot/mode")" = plain ]; then
		_mv_dc_start "$dir" plain
	else
		_mv_dc_start "$dir" tls
	fi
}

# dovecot_start_plain DIR: starts (or restarts) a plain-text-only instance in DIR/dovecot.
dovecot_start_plain() {
	_mv_dc_start "${1:?usage: dovecot_start_plain DIR}" plain
}

# _mv_dc_tree PID: prints PID and all its descendants.
_mv_dc_tree() {
	local p kids
	printf '%s\n' "$1"
	kids=$(cat "/proc/$1/task/"*/children 2>/dev/null) || true
	for p in $kids; do
		_mv_dc_tree "$p"
	done
}

# dovecot_stop DIR [kill]: stops the instance in DIR and waits for all its processes to go; no-op if not running.
dovecot_stop() {
	local dir=${1:?usage: dovecot_stop DIR [kill]} mode=${2:-term} pid pids p i alive
	[ -d "$dir/dovecot" ] && _mv_dc_relay_stop "$dir/dovecot"
	pid=$(_mv_dc_pid "$dir") || return 0
	pids=$(_mv_dc_tree "$pid")
	if [ "$mode" = kill ]; then
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
	else
		kill -TERM "$pid" 2>/dev/null || true
	fi
	for ((i = 0; i < 100; i++)); do
		alive=
		for p in $pids; do
			if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
				alive="$alive $p"
			fi
		done
		[ -z "$alive" ] && break
		sleep 0.05
	done
	if [ -n "$alive" ]; then
		echo "dovecot.sh: killing leftover dovecot processes:$alive" >&2
		# shellcheck disable=SC2086
		kill -KILL $alive 2>/dev/null || true
		sleep 0.1
	fi
	rm -f "$dir/dovecot/run/master.pid"
}

# dovecot_reload DIR: asks the running instance to re-read its configuration.
dovecot_reload() {
	local pid
	pid=$(_mv_dc_pid "${1:?usage: dovecot_reload DIR}") || {
		echo "dovecot_reload: no Dovecot running in $1" >&2
		return 1
	}
	kill -HUP "$pid"
	sleep 0.2
}

# dovecot_doveadm DIR ARGS...: runs doveadm against the instance in DIR.
dovecot_doveadm() {
	local dir=${1:?usage: dovecot_doveadm DIR ARGS...}
	shift
	"$MV_DOVEADM_BIN" -c "$dir/dovecot/dovecot.conf" "$@"
}

# dovecot_add_user DIR USER PASSWORD: adds USER (or replaces its password) in the instance's passwd-file.
dovecot_add_user() {
	local dir=${1:?usage: dovecot_add_user DIR USER PASSWORD} user=${2:?} pw=${3?} d
	case "$user$pw" in
	*:* | *$'\n'* | *$'\r'*)
		echo "dovecot_add_user: user name and password may not hold ':' or line breaks" >&2
		return 1
		;;
	esac
	case "$user" in
	*/* | .* | '')
		echo "dovecot_add_user: bad user name '$user'" >&2
		return 1
		;;
	esac
	d=$(_mv_dc_init "$dir") || return 1
	_mv_dc_owner
	{
		grep -v "^$(printf '%s' "$user" | sed 's/[][\.*^$]/\\&/g'):" "$d/users" || true
		printf '%s:{PLAIN}%s::::::\n' "$user" "$pw"
	} >"$d/users.new"
	chmod 600 "$d/users.new"
	mv "$d/users.new" "$d/users"
	printf '\0' | "$MV_PYTHON" "$_mv_dc_lib_dir/maildir_add.py" add "$d/mail/$user" INBOX "$_mv_dc_owner_ids"
}

# maildir_add DIR USER FOLDER FILE...: copies the files into the folder as new messages (see the top).
maildir_add() {
	local dir=${1:?usage: maildir_add DIR USER FOLDER FILE...} user=${2:?} folder=${3:?} d
	shift 3
	# fast path (no subshell) once the instance folder exists: this is called in loops
	if [ -d "$dir/dovecot/mail" ]; then
		d=$dir/dovecot
	else
		d=$(_mv_dc_init "$dir") || return 1
	fi
	_mv_dc_owner
	if [ "$#" = 1 ] && [ "$1" = - ]; then
		tr '\n' '\0'
	else
		[ "$#" -gt 0 ] && printf '%s\0' "$@"
	fi | "$MV_PYTHON" -S "$_mv_dc_lib_dir/maildir_add.py" add "$d/mail/$user" "$folder" "$_mv_dc_owner_ids"
}

# dovecot_reset_uidvalidity DIR USER FOLDER: drops the folder's uidlist and indexes (Dovecot must be stopped).
dovecot_reset_uidvalidity() {
	local dir=${1:?usage: dovecot_reset_uidvalidity DIR USER FOLDER} user=${2:?} folder=${3:?} d sub
	d=$(_mv_dc_dir "$dir")
	if dovecot_running "$dir"; then
		echo "dovecot_reset_uidvalidity: stop Dovecot first" >&2
		return 1
	fi
	# with CONTROL= and INDEX= set, even INBOX has its own folder there (control/USER/INBOX)
	sub=$user/$folder
	if [ ! -f "$d/control/$sub/dovecot-uidlist" ]; then
		echo "dovecot_reset_uidvalidity: no $d/control/$sub/dovecot-uidlist (was the folder ever opened?)" >&2
		return 1
	fi
	rm -f "$d/control/$sub/dovecot-uidlist" "$d/control/$sub/dovecot-uidlist.lock" "$d/index/$sub"/dovecot.index*
	# dovecot-uidvalidity* in the control root hands out the next, different UIDVALIDITY
}

# enron_load DIR CORPUS_ROOT [MAX_USERS] [MAX_PER_FOLDER]: loads the Enron corpus (see the top).
enron_load() {
	local dir=${1:?usage: enron_load DIR CORPUS_ROOT [MAX_USERS] [MAX_PER_FOLDER]} root=${2:?} d
	d=$(_mv_dc_init "$dir") || return 1
	_mv_dc_owner
	"$MV_PYTHON" "$_mv_dc_lib_dir/maildir_add.py" enron "$d" "$root" "${3:-0}" "${4:-0}" "$_mv_dc_owner_ids"
}

# Test harness: small shared helpers (free loopback ports, readiness probes, folder access); sourced by pg.sh and dovecot.sh.
# shellcheck shell=bash source-path=SCRIPTDIR

# Debian's python3: a python3 earlier in PATH may be a slow wrapper (pyenv shims cost ~0.7 s a call).
if [ -z "${MV_PYTHON:-}" ]; then
	if [ -x /usr/bin/python3 ]; then MV_PYTHON=/usr/bin/python3; else MV_PYTHON=python3; fi
fi
export MV_PYTHON

# mv_free_ports N: prints N distinct port numbers that were free on 127.0.0.1 a moment ago, one a line.
# All N sockets are held open together so the same number is never printed twice.
mv_free_ports() {
	"$MV_PYTHON" - "${1:-1}" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
PY
}

# mv_free_port: prints one free port number on 127.0.0.1.
mv_free_port() {
	mv_free_ports 1
}

# mv_port_listening PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
mv_port_listening() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# mv_imap_greets PORT: true if an IMAP server on 127.0.0.1:PORT sends its "* OK" greeting (plain text port).
mv_imap_greets() (
	line=
	exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
	IFS= read -r -t 5 line <&3 || line=
	printf 'g LOGOUT\r\n' >&3 || true
	case "$line" in "* OK"*) exit 0 ;; *) exit 1 ;; esac
) 2>/dev/null

# mv_as_user USER CMD...: runs CMD as USER (directly if we already are USER). setpriv, unlike runuser,
# skips PAM, which costs a few hundred milliseconds a call on a busy machine.
mv_as_user() {
	local u=$1 home
	shift
	if [ "$(id -un)" = "$u" ]; then
		"$@"
	elif command -v setpriv >/dev/null; then
		home=$(getent passwd "$u" | cut -d: -f6)
		setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups env HOME="${home:-/}" USER="$u" LOGNAME="$u" "$@"
	else
		runuser -u "$u" -- "$@"
	fi
}

# mv_make_traversable USER DIR: adds o+x to each folder on the way to DIR that USER cannot pass through.
mv_make_traversable() {
	local u=$1 d path=/ part parts paths=() blocked
	d=$(cd "$2" && pwd -P)
	IFS=/ read -ra parts <<<"$d"
	for part in "${parts[@]}"; do
		[ -n "$part" ] || continue
		path=${path%/}/$part
		paths+=("$path")
	done
	[ "${#paths[@]}" -gt 0 ] || return 0
	# one process checks them all, as USER
	# shellcheck disable=SC2016
	blocked=$(mv_as_user "$u" sh -c 'for p in "$@"; do [ -x "$p" ] || echo "$p"; done' sh "${paths[@]}")
	[ -n "$blocked" ] || return 0
	while IFS= read -r path; do
		echo "tests/lib: adding o+x on $path so $u can reach $d" >&2
		chmod o+x "$path"
	done <<<"$blocked"
}

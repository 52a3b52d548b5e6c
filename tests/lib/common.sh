# Test harness: assertions and self-cleaning scratch folders for the integration tests (tests/it-*.sh).
# shellcheck shell=bash source-path=SCRIPTDIR
#
# Source it first: it also sources pg.sh and dovecot.sh.
#   t_ok "desc" CMD...            passes if CMD exits 0 (CMD runs in this shell, so exports stick;
#                                 its output goes to a file, shown on failure)
#   t_fail "desc" CMD...          passes if CMD exits non-zero
#   t_denied "desc" NEEDLE CMD... passes if CMD exits non-zero and its output says NEEDLE (the refusal
#                                 asserted, not just any error)
#   t_eq_ok "desc" EXPECTED CMD...  passes if CMD exits 0 and its output (stdout) equals EXPECTED
#   t_eq "desc" EXPECTED ACTUAL   passes if the two strings are equal
#   t_contains "desc" HAYSTACK NEEDLE   passes if NEEDLE occurs in HAYSTACK
#   t_done NAME                   prints "NAME: N passed, N failed"; exits 1 if any failed, else 0
#   t_tmpdir [VAR]                makes a scratch folder under /tmp (mode 755) and sets VAR (default T_DIR)
#                                 to it; at exit, the PostgreSQL clusters and Dovecot instances started
#                                 in it are stopped, registered pids killed, and it is removed (kept when
#                                 MV_KEEP=1). Call it directly, never as $(t_tmpdir).
#   t_register_pid PID            kill PID (TERM, then KILL) at exit, before the servers stop
# Each check prints "ok - desc" or "not ok - desc" followed by "#" lines saying what was wrong.
# Environment: MV_ROOT (the repository), MV_BUILD (build folder, default $MV_ROOT/build).

_t_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pg.sh
. "$_t_lib_dir/pg.sh"
# shellcheck source=dovecot.sh
. "$_t_lib_dir/dovecot.sh"

MV_ROOT=${MV_ROOT:-$(cd "$_t_lib_dir/../.." && pwd)}
MV_BUILD=${MV_BUILD:-$MV_ROOT/build}
export MV_ROOT MV_BUILD

T_PASSED=0
T_FAILED=0
T_TMPDIRS=()
T_PIDS=()
T_USERS=()
_t_out=
_t_trap_set=0

# _t_pass DESC / _t_nok DESC: count and print one result.
_t_pass() {
	T_PASSED=$((T_PASSED + 1))
	printf 'ok - %s\n' "$1"
}
_t_nok() {
	T_FAILED=$((T_FAILED + 1))
	printf 'not ok - %s\n' "$1"
}

# _t_show_output: prints the tail of the last command's output as "#" lines.
_t_show_output() {
	[ -s "$_t_out" ] || return 0
	echo "#   output (last 20 lines):"
	tail -n 20 "$_t_out" | sed 's/^/#     /'
}

# _t_run CMD...: runs CMD in this shell with its output in $_t_out; returns its status.
_t_run() {
	if [ -z "$_t_out" ]; then
		_t_out=$(mktemp /tmp/mv-t-out.XXXXXX)
		_t_ensure_trap
	fi
	"$@" >"$_t_out" 2>&1
}

# t_ok DESC CMD...: passes if CMD succeeds.
t_ok() {
	local desc=$1 rc=0
	shift
	_t_run "$@" || rc=$?
	if [ "$rc" = 0 ]; then
		_t_pass "$desc"
	else
		_t_nok "$desc"
		echo "#   command failed with status $rc: $*"
		_t_show_output
	fi
}

# t_fail DESC CMD...: passes if CMD fails.
t_fail() {
	local desc=$1 rc=0
	shift
	_t_run "$@" || rc=$?
	if [ "$rc" != 0 ]; then
		_t_pass "$desc"
	else
		_t_nok "$desc"
		echo "#   command succeeded but should have failed: $*"
		_t_show_output
	fi
}

# t_denied DESC NEEDLE CMD...: passes if CMD fails and its output contains NEEDLE.
t_denied() {
	local desc=$1 needle=$2 rc=0
	shift 2
	_t_run "$@" || rc=$?
	if [ "$rc" != 0 ] && grep -qF -- "$needle" "$_t_out"; then
		_t_pass "$desc"
	else
		_t_nok "$desc"
		if [ "$rc" = 0 ]; then
			echo "#   command succeeded but should have been refused: $*"
		else
			echo "#   command failed (status $rc), but without saying: $needle"
		fi
		_t_show_output
	fi
}

# t_eq_ok DESC EXPECTED CMD...: passes if CMD succeeds and prints exactly EXPECTED (a failing command
# never passes by printing nothing).
t_eq_ok() {
	local desc=$1 expected=$2 rc=0 out
	shift 2
	out=$("$@" 2>"${_t_out:-/dev/null}") || rc=$?
	if [ "$rc" = 0 ] && [ "$out" == "$expected" ]; then
		_t_pass "$desc"
	else
		_t_nok "$desc"
		[ "$rc" != 0 ] && echo "#   command failed with status $rc: $*"
		printf '#   expected: %s\n#   actual:   %s\n' "$expected" "$out" | head -n 40
	fi
}

# t_eq DESC EXPECTED ACTUAL: passes if the strings are equal.
t_eq() {
	if [ "$2" == "$3" ]; then
		_t_pass "$1"
	else
		_t_nok "$1"
		printf '#   expected: %s\n#   actual:   %s\n' "$2" "$3" | head -n 40
	fi
}

# t_contains DESC HAYSTACK NEEDLE: passes if NEEDLE occurs in HAYSTACK.
t_contains() {
	if [[ "$2" == *"$3"* ]]; then
		_t_pass "$1"
	else
		_t_nok "$1"
		printf '#   missing:  %s\n#   in:       %s\n' "$3" "$2" | head -n 40
	fi
}

# t_done NAME: prints the closing line the runner reads and exits (1 if anything failed).
t_done() {
	printf '%s: %d passed, %d failed\n' "${1:?usage: t_done NAME}" "$T_PASSED" "$T_FAILED"
	[ "$T_FAILED" = 0 ] || exit 1
	exit 0
}

# t_unix_user NAME: a Unix user without a home or a shell (for an officer on mailvault-web's socket),
# created if missing and removed at exit if this test created it.
t_unix_user() {
	id -u "$1" >/dev/null 2>&1 && return 0
	useradd --system --no-create-home --shell /usr/sbin/nologin "$1" || return 1
	T_USERS+=("$1")
	_t_ensure_trap
}

# t_register_pid PID: kills PID at exit.
t_register_pid() {
	T_PIDS+=("$1")
	_t_ensure_trap
}

# t_tmpdir [VAR]: creates a scratch folder, sets VAR (default T_DIR) and cleans it up at exit.
# t_unpack NAME DIR [MEMBER...]: unpacks the shared corpus NAME (../shared/corpora/NAME, or $MV_SHARED/corpora)
# into DIR; a missing corpus or a failed unpack ends the test with a failure that says so.
t_unpack() {
	local name=$1 dir=$2 shared=${MV_SHARED:-$MV_ROOT/../shared} me=${0##*/}
	me=${me%.sh}
	shift 2
	if [ ! -f "$shared/corpora/$name" ]; then
		echo "not ok - the shared corpus $shared/corpora/$name is missing (set MV_SHARED to the folder holding corpora/)"
		echo "$me: 0 passed, 1 failed"
		exit 1
	fi
	tar -xJf "$shared/corpora/$name" -C "$dir" "$@" || { echo "not ok - cannot unpack $name"; echo "$me: 0 passed, 1 failed"; exit 1; }
}

t_tmpdir() {
	local var=${1:-T_DIR} d
	if [ "$BASH_SUBSHELL" != 0 ]; then
		echo "t_tmpdir: call it directly (t_tmpdir VAR), not in \$(...): the cleanup would be lost" >&2
		return 1
	fi
	d=$(mktemp -d /tmp/mvt.XXXXXX)
	chmod 755 "$d"
	T_TMPDIRS+=("$d")
	_t_ensure_trap
	printf -v "$var" '%s' "$d"
	export "${var?}"
}

# _t_ensure_trap: installs the exit cleanup once.
_t_ensure_trap() {
	[ "$_t_trap_set" = 1 ] && return 0
	_t_trap_set=1
	trap '_t_cleanup' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

# _t_cleanup: the EXIT trap: kills registered pids, stops servers in the scratch folders, removes them.
_t_cleanup() {
	local rc=$? p d f i
	set +e
	for p in "${T_PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "$p" 2>/dev/null || break
			grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && break
			sleep 0.1
		done
		if kill -0 "$p" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null; then
			kill -KILL "$p" 2>/dev/null
		fi
		wait "$p" 2>/dev/null
	done
	for d in "${T_TMPDIRS[@]}"; do
		[ -d "$d" ] || continue
		# mailvault-web servers started for this folder (mv_web_start writes web.pid, even in a subshell)
		while IFS= read -r f; do
			p=$(cat "$f" 2>/dev/null) && [ -n "$p" ] && kill -TERM "$p" 2>/dev/null
			for ((i = 0; i < 50; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$p" 2>/dev/null
		done < <(find "$d" -maxdepth 3 -name web.pid 2>/dev/null)
		while IFS= read -r f; do
			dovecot_stop "$f"
		done < <(find "$d" -maxdepth 6 \( -path '*/dovecot/run/master.pid' -o -path '*/dovecot/relay.pid' \) \
			2>/dev/null | sed -E 's#/dovecot/(run/master|relay)\.pid$##' | sort -u)
		while IFS= read -r f; do
			pg_stop "${f%/pg/data/postmaster.pid}"
		done < <(find "$d" -maxdepth 6 -path '*/pg/data/postmaster.pid' 2>/dev/null)
		if [ "${MV_KEEP:-0}" = 1 ]; then
			echo "# kept $d (MV_KEEP=1)" >&2
		else
			rm -rf "$d"
		fi
	done
	for f in "${T_USERS[@]}"; do
		userdel "$f" 2>/dev/null
	done
	[ -n "$_t_out" ] && rm -f "$_t_out"
	exit "$rc"
}

#!/usr/bin/env bash
# The `make check` runner: unit test binaries (plain and ASan builds), then integration scripts tests/it-*.sh.
#
# Usage: tests/run.sh [PATTERN...]   runs only the tests whose name contains one of the PATTERNs
#                                    (names: test-foo, asan/test-foo, it-bar)
# Each test's output goes to build/test-logs/NAME.log; every test must end by printing
# "NAME: N passed, N failed". The last line is the sum, "N passed, N failed"; the exit status is
# non-zero if any check failed, a test exited non-zero, or a test ended without that closing line.
# MV_TEST_TIMEOUT: seconds one test may take (default 1800; 0 = no limit).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
logdir=$root/build/test-logs
mkdir -p "$logdir"
timeout_s=${MV_TEST_TIMEOUT:-1800}
export MV_ROOT=$root
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

total_passed=0
total_failed=0
problems=0
ran=0

# selected NAME: true if NAME matches one of the patterns (or no pattern was given).
selected() {
	local p
	[ "$#" -gt 0 ] || return 1
	[ "${#patterns[@]}" = 0 ] && return 0
	for p in "${patterns[@]}"; do
		[[ "$1" == *"$p"* ]] && return 0
	done
	return 1
}
patterns=("$@")

# report NAME LOG RC: reads the closing line from LOG, prints one line and adds to the totals.
report() {
	local name=$1 log=$2 rc=$3 line passed failed
	line=$(grep -aE '^.+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
	if [ -n "$line" ]; then
		passed=$(sed -E 's/^.*: ([0-9]+) passed, ([0-9]+) failed$/\1/' <<<"$line")
		failed=$(sed -E 's/^.*: ([0-9]+) passed, ([0-9]+) failed$/\2/' <<<"$line")
		total_passed=$((total_passed + passed))
		total_failed=$((total_failed + failed))
	else
		failed=0
	fi
	if [ -n "$line" ] && [ "$rc" = 0 ] && [ "$failed" = 0 ]; then
		printf 'PASS %-28s %s\n' "$name" "$line"
		return
	fi
	problems=$((problems + 1))
	if [ -z "$line" ]; then
		printf 'FAILED %-26s exited with status %s without reporting (log: %s)\n' "$name" "$rc" "${log#"$root"/}"
		total_failed=$((total_failed + 1))
	elif [ "$rc" != 0 ] && [ "$failed" = 0 ]; then
		printf 'FAILED %-26s %s, but exited with status %s (log: %s)\n' "$name" "$line" "$rc" "${log#"$root"/}"
		total_failed=$((total_failed + 1))
	else
		printf 'FAILED %-26s %s (log: %s)\n' "$name" "$line" "${log#"$root"/}"
	fi
	tail -n 25 "$log" | sed 's/^/    | /'
}

# run_one NAME LOG CMD...: runs one test with its output in LOG and reports it.
run_one() {
	local name=$1 log=$2 rc=0
	shift 2
	ran=$((ran + 1))
	if [ "$timeout_s" != 0 ]; then
		timeout -k 10 "$timeout_s" "$@" </dev/null >"$log" 2>&1 || rc=$?
		[ "$rc" = 124 ] && echo "tests/run.sh: killed after ${timeout_s}s (MV_TEST_TIMEOUT)" >>"$log"
	else
		"$@" </dev/null >"$log" 2>&1 || rc=$?
	fi
	report "$name" "$log" "$rc"
}

# Unit tests: every tests/test-*.c must have been built into build/tests and build-asan/tests.
shopt -s nullglob
for build in build build-asan; do
	prefix=
	[ "$build" = build-asan ] && prefix=asan/
	names=()
	for src in tests/test-*.c; do
		names+=("$(basename "$src" .c)")
	done
	# binaries whose source is gone still run (nothing is skipped silently)
	for bin in "$build"/tests/test-*; do
		case "$bin" in *.o | *.d) continue ;; esac
		[ -x "$bin" ] || continue
		n=$(basename "$bin")
		[[ " ${names[*]} " == *" $n "* ]] || names+=("$n")
	done
	for n in "${names[@]}"; do
		selected "$prefix$n" || continue
		if [ ! -x "$build/tests/$n" ]; then
			printf 'FAILED %-26s missing %s/tests/%s: run make%s first\n' "$prefix$n" "$build" "$n" \
				"$([ "$build" = build-asan ] && echo ' SANITIZE=1')"
			problems=$((problems + 1))
			total_failed=$((total_failed + 1))
			continue
		fi
		run_one "$prefix$n" "$logdir/${prefix%/}${prefix:+-}$n.log" "$build/tests/$n"
	done
done

# Integration tests.
for script in tests/it-*.sh; do
	n=$(basename "$script" .sh)
	selected "$n" || continue
	run_one "$n" "$logdir/$n.log" bash "$script"
done

# The same programs built with ASan and UBSan, on the tests that feed them hostile input and failures.
for n in ${MV_ASAN_IT:-it-ingest it-tls it-search it-quirks it-integrity it-web it-anchor it-retention it-retention-prog}; do
	selected "asan/$n" || continue
	[ -f "tests/$n.sh" ] || continue
	run_one "asan/$n" "$logdir/asan-$n.log" env MV_BUILD="$root/build-asan" bash "tests/$n.sh"
done

if [ "$ran" = 0 ] && [ "$problems" = 0 ]; then
	if [ "${#patterns[@]}" -gt 0 ]; then
		echo "tests/run.sh: no test matches '${patterns[*]}'" >&2
		problems=1
	else
		echo "tests/run.sh: no tests found" >&2
	fi
fi
echo "$total_passed passed, $total_failed failed"
[ "$problems" = 0 ] && [ "$total_failed" = 0 ]

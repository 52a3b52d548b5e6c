# The benchmark's small helpers, shared by bench/bench.sh and bench/index-search.sh run on its own.
# Needs BENCH_DIR. shellcheck shell=bash

# say MESSAGE: a time-stamped progress line.
say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# die MESSAGE: the benchmark cannot go on.
die() {
	printf 'bench: FAILED: %s\n' "$*" >&2
	exit 1
}
# now: seconds since the epoch, with nanoseconds.
now() { date +%s.%N; }
# calc EXPR: floating point arithmetic (awk), printed with up to 6 significant digits unless EXPR formats
calc() { awk "BEGIN { print $1 }"; }
# loadavg: the 1-minute load average.
loadavg() { cut -d' ' -f1 /proc/loadavg; }
# cpu_of PID...: CPU seconds used so far by each process tree, space-separated.
cpu_of() {
	python3 "$BENCH_DIR/cputree.py" "$@" | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $2 } END { print "" }'
}

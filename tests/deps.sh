#!/usr/bin/env bash
# Installs the Debian packages mailvault needs to build and test (`make deps`); quick no-op when all are there.
#
# As root: apt-get update once, then apt-get install of what is missing, non-interactively, without
# letting the packages start their system services (policy-rc.d); a system PostgreSQL or Dovecot that
# the installation started anyway is stopped again. Not root: prints the command to run and exits 1.
set -euo pipefail

packages=(build-essential pkg-config libssl-dev libpq-dev libgmime-3.0-dev libxapian-dev postgresql
	postgresql-contrib dovecot-imapd isync notmuch openssl python3 python3-snowballstemmer xapian-tools xz-utils
	ca-certificates procps time libmicrohttpd-dev libjson-c-dev libsodium-dev curl wrk libcurl4-openssl-dev)

# missing_packages: prints the packages of the list that are not installed, one a line.
missing_packages() {
	local installed
	installed=$(dpkg-query -W -f='${db:Status-Status} ${Package}\n' "${packages[@]}" 2>/dev/null |
		awk '$1 == "installed" { print $2 }') || true
	local p
	for p in "${packages[@]}"; do
		grep -qxF "$p" <<<"$installed" || echo "$p"
	done
}

mapfile -t missing < <(missing_packages)
[ "${#missing[@]}" = 0 ] && exit 0

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: run as root:  $cmd" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive

# system services that were running before we started are left alone; others are stopped afterwards
pg_was_running=0
dovecot_was_running=0
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | awk '$4 == "online"' | grep -q .; then
	pg_was_running=1
fi
if [ -f /run/dovecot/master.pid ] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
	dovecot_was_running=1
fi

# Debian's way to keep maintainer scripts from starting daemons: policy-rc.d answering 101.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# written by mailvault tests/deps.sh during an install; removed afterwards\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	made_policy=1
fi
cleanup() {
	[ "$made_policy" = 1 ] && rm -f "$policy"
	return 0
}
trap cleanup EXIT

apt-get update
apt-get install -y --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"

if [ "$pg_was_running" = 0 ] && command -v pg_lsclusters >/dev/null; then
	pg_lsclusters -h 2>/dev/null | awk '$4 == "online" { print $1, $2 }' | while read -r ver name; do
		echo "deps.sh: stopping the system PostgreSQL cluster $ver/$name that the installation started"
		pg_ctlcluster "$ver" "$name" stop -m fast || true
	done
fi
if [ "$dovecot_was_running" = 0 ] && [ -f /run/dovecot/master.pid ]; then
	pid=$(cat /run/dovecot/master.pid)
	if kill -0 "$pid" 2>/dev/null; then
		echo "deps.sh: stopping the system Dovecot that the installation started"
		kill -TERM "$pid" || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
fi

mapfile -t still < <(missing_packages)
if [ "${#still[@]}" != 0 ]; then
	echo "deps.sh: still missing after the install: ${still[*]}" >&2
	exit 1
fi
echo "deps.sh: done"

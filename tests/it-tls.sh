#!/usr/bin/env bash
# Secure by default: wrong passwords, untrusted certificates, host-name mismatches and servers without
# STARTTLS each fail with a clear message, archive nothing, and never leak the secret.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
t_unpack enron-inbox.tar.xz "$D" enron_inbox/maildir/dean-c
dovecot_add_user "$D" erin 'Erin-Real-Pw-5521'
find "$D/enron_inbox/maildir/dean-c/inbox" -maxdepth 1 -type f | head -5 | maildir_add "$D" erin INBOX -
mv_setup "$D"
mkdir -p "$D/plain"
dovecot_add_user "$D/plain" erin 'Erin-Real-Pw-5521'
dovecot_start_plain "$D/plain" >/dev/null

SECRET='Wrong-Pw-Leak-Canary-7731'
# each case: one account, one pass, then the account is removed (nothing was archived from it)
try_account() { # NAME EXPECTED_MESSAGE ACCOUNT_ADD_ARGS...
	local name=$1 expect=$2 out rc=0
	shift 2
	mvcli account add "$name" "$@" >/dev/null
	out=$("$MV_BUILD/mailvaultd" -c "$MV_CONF" --once 2>&1) || rc=$?
	t_ok "$name: the pass fails (exit status $rc)" test "$rc" -ne 0
	t_contains "$name: the error says why" "$out" "$expect"
	t_contains "$name: the error is recorded on the account" "$(mvcli status)" "$expect"
	t_eq "$name: nothing archived" 0 "$(mv_sql 'SELECT count(*) FROM locations')"
	case $out in *"$SECRET"*) t_eq "$name: the secret never appears in the log" absent present ;;
	*) t_eq "$name: the secret never appears in the log" absent absent ;; esac
	t_ok "$name: removed again" mvcli account remove "$name"
}

try_account wrong-password "login as erin on localhost failed" \
	--host localhost --port "$DOVECOT_IMAPS_PORT" --user erin --secret "$(mv_pw "$D" wrong "$SECRET" erin)"
try_account untrusted-cert "TLS certificate verification failed for localhost" \
	--host localhost --port "$DOVECOT_IMAPS_PORT" --user erin --secret "$(mv_pw "$D" wrong "$SECRET" erin)" \
	--ca-file /etc/ssl/certs/ca-certificates.crt
try_account host-mismatch "TLS certificate verification failed for 127.0.0.1" \
	--host 127.0.0.1 --port "$DOVECOT_IMAPS_PORT" --user erin --secret "$(mv_pw "$D" wrong-ip "$SECRET" erin 127.0.0.1)"
try_account starttls-mismatch "TLS certificate verification failed for 127.0.0.1" \
	--host 127.0.0.1 --port "$DOVECOT_IMAP_PORT" --tls starttls --user erin --secret "$(mv_pw "$D" wrong-ip "$SECRET" erin 127.0.0.1)"
try_account no-starttls "does not offer STARTTLS: refusing to log in without TLS" \
	--host localhost --port "$DOVECOT_PLAIN_PORT" --tls starttls --user erin --secret "$(mv_pw "$D" wrong "$SECRET" erin)"
try_account imaps-on-plain-port "TLS handshake with localhost failed" \
	--host localhost --port "$DOVECOT_PLAIN_PORT" --user erin --secret "$(mv_pw "$D" wrong "$SECRET" erin)"
mv_secret_section nosuchvar env:MV_NO_SUCH_VARIABLE erin
try_account missing-secret "the secret's environment variable is not set" \
	--host localhost --port "$DOVECOT_IMAPS_PORT" --user erin --secret nosuchvar
try_account closed-port "cannot connect to localhost port 1" \
	--host localhost --port 1 --user erin --secret "$(mv_pw "$D" wrong "$SECRET" erin)"

t_eq "the plain-text server never saw a login attempt" 0 \
	"$(grep -cE 'user=<erin>|Login: |auth failed|[1-9][0-9]* auth attempts' "$D/plain/dovecot/log" || true)"
t_ok "the plain-text server did see our connections (the check above is not vacuous)" \
	grep -q 'no auth attempts' "$D/plain/dovecot/log"
t_ok "the whole database can be dumped (so the next check reads it all)" pg_dump -a -f "$D/dump.sql" "$MV_CONNINFO"
t_eq "the database never holds a secret" 0 "$(grep -c "$SECRET\|Erin-Real-Pw" "$D/dump.sql")"

# and the right settings work, through the environment and a command as well as a file
export MV_TEST_ERIN_PW='Erin-Real-Pw-5521'
mv_secret_section erin-env env:MV_TEST_ERIN_PW erin
mv_secret_section erin-cmd "cmd:printf %s Erin-Real-Pw-5521" erin
mvcli account add erin-env --host localhost --port "$DOVECOT_IMAPS_PORT" --user erin --secret erin-env >/dev/null
mvcli account add erin-cmd --host localhost --port "$DOVECOT_IMAP_PORT" --tls starttls --user erin \
	--auth login --secret erin-cmd >/dev/null
t_ok "correct credentials (env: over IMAPS, cmd: with LOGIN over STARTTLS) archive the mailbox" \
	"$MV_BUILD/mailvaultd" -c "$MV_CONF" --once
t_eq "both accounts archived the 5 messages" 10 "$(mv_sql 'SELECT count(*) FROM locations')"
t_done it-tls

#!/usr/bin/env bash
# The administrator's commands: strict configuration, account management that never forgets archived
# mail, listings in text and JSON, and clear errors for wrong input.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
t_unpack enron-inbox.tar.xz "$D" enron_inbox/maildir/dean-c
dovecot_add_user "$D" frank frank-pw
find "$D/enron_inbox/maildir/dean-c/inbox" -maxdepth 1 -type f | sort | head -12 | maildir_add "$D" frank INBOX -
find "$D/enron_inbox/maildir/dean-c/inbox" -maxdepth 1 -type f | sort | sed -n 13,20p | maildir_add "$D" frank "Deals/2001" -
mv_setup "$D"
M=$MV_BUILD/mailvault

# --- configuration is strict and says where the problem is ---
bad() { printf '[database]\nconninfo = x\n%s\n' "$1" >"$D/bad.conf"; "$M" -c "$D/bad.conf" status 2>&1; }
t_contains "an unknown key names file and line" "$(bad $'[daemon]\nwokers = 4')" "bad.conf:4: unknown key 'wokers' in [daemon]"
t_contains "an unknown section is an error" "$(bad '[deamon]')" "bad.conf:3: unknown section [deamon]"
t_contains "a bad number is an error" "$(bad $'[daemon]\nworkers = many')" "bad.conf:4: bad value for 'workers'"
t_contains "a bad size is an error" "$(bad $'[daemon]\nmax_message_bytes = 12Q')" "bad.conf:4: bad value for 'max_message_bytes'"
printf '[database]\nconninfo = host=x\n[daemon]\nlog_level = chatty\n' >"$D/bad.conf"
out=$("$M" -c "$D/bad.conf" status 2>&1)
t_contains "a bad log level is an error" "$out" "bad.conf:4: bad value for 'log_level'"
t_fail "a missing file is an error" "$M" -c "$D/none.conf" status
t_fail "mailvaultd refuses a bad configuration too" "$MV_BUILD/mailvaultd" -c "$D/bad.conf" --once
t_contains "a missing conninfo is an error" "$(printf '[daemon]\nworkers = 2\n' >"$D/bad.conf"; "$M" -c "$D/bad.conf" status 2>&1)" \
	"[database] conninfo is required"

# --- the mailvault command starts for every search: it links libc and json-c, nothing else (libcurl, for
#     anchors, brought GnuTLS, Kerberos and LDAP and cost each search 10 ms; anchors are mailvault-cli's),
#     and statically, so no dynamic loader runs at each search (the sanitizers' build links them shared) ---
needs=$(readelf -d "$M" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | tr '\n' ' ')
others=$(for n in $needs; do echo "$n"; done |
	grep -Ev '^(libc\.so\.6|libjson-c\.so\.5|libasan\.so\.[0-9]+|libubsan\.so\.[0-9]+)$' | tr '\n' ' ')
t_eq "the mailvault command links libc and json-c only" "" "$others"
if [ "$(basename "$MV_BUILD")" = build-asan ]; then
	t_contains "(readelf read its needs)" "$needs" "libjson-c.so"
else
	t_eq "the mailvault command needs no shared library" "" "$needs"
	t_eq "the mailvault command has no program interpreter (static)" "0" \
		"$(readelf -l "$M" | grep -c 'Requesting program interpreter')"
	t_eq "(nm read it: json-c is in it)" "1" "$(nm "$M" | grep -c ' T json_tokener_parse$')"
fi
mkdir -p "$D/loop" && cp "$M" "$D/loop/mailvault" && cp "$M" "$D/loop/mailvault-cli"
t_denied "a mailvault-cli that is a copy of the command is said to be one, not run for ever" \
	"is the mailvault command itself, not the administration program" timeout 10 "$D/loop/mailvault" status

# --- init is idempotent ---
t_contains "a second init applies nothing" "$(mvcli init)" "(0 migrations applied)"

# --- account add validates before storing anything ---
ref=$(mv_pw "$D" frank frank-pw)
out=$(mvcli account add x --host localhost --user u --secret "file:$D/secret-frank" 2>&1)
t_contains "a secret reference in the database is refused: secrets are named sections of the configuration" \
	"$out" "--secret takes the name of a [secret NAME] section"
t_contains "and the section to write is shown" "$out" "source = file:$D/secret-frank"
t_contains "a secret name with a space is refused" \
	"$(mvcli account add x --host localhost --user u --secret 'frank pw' 2>&1)" "--secret takes the name"
t_contains "a secret bound to another user is refused" \
	"$(mvcli account add x --host localhost --user u --secret "$ref" 2>&1)" "[secret frank] may be sent only to localhost as frank"
t_contains "plain-text IMAP is not offered" \
	"$(mvcli account add x --host localhost --user frank --secret "$ref" --tls none 2>&1)" "--tls must be imaps or starttls"
t_contains "a bad port is refused" "$(mvcli account add x --host localhost --port 70000 --user frank --secret "$ref" 2>&1)" "--port"
t_contains "a bad name is refused" "$(mvcli account add 'a b' --host localhost --user frank --secret "$ref" 2>&1)" \
	"letters, digits"
t_fail "missing --host is refused" mvcli account add x --user frank --secret "$ref"
t_eq "nothing was stored by the refused commands" 0 "$(mv_sql 'SELECT count(*) FROM accounts')"
t_ok "a valid account is added" mvcli account add frank --host localhost --port "$DOVECOT_IMAPS_PORT" --user frank \
	--secret "$ref" --interval 90 --include 'INBOX' --include 'Deals/*'
t_contains "a duplicate name is refused" "$(mvcli account add frank --host localhost --user frank --secret "$ref" 2>&1)" \
	"an account with that name exists"
t_contains "account list shows it" "$(mvcli account list)" "frank                enabled  imaps://localhost:$DOVECOT_IMAPS_PORT"
json=$(mvcli --json account list)
t_eq "account list --json is one valid object per account" "frank 90 True" \
	"$("$MV_PYTHON" -c 'import json,sys; o=json.loads(sys.stdin.read()); print(o["name"], o["interval"], o["enabled"])' <<<"$json")"

# --- archiving, listing, showing ---
t_ok "the account is archived" mvd --once
t_eq "ls lists every location" 20 "$(mvcli ls | wc -l)"
t_eq "ls --folder filters" 8 "$(mvcli ls --account frank --folder Deals/2001 | wc -l)"
t_eq "ls --account of another account lists nothing" 0 "$(mvcli ls --account nobody | wc -l)"
t_eq "ls --json: valid objects with the documented fields" \
	"20 ['account', 'folder', 'internaldate', 'serial', 'sha256', 'size', 'uid', 'uidvalidity']" \
	"$(mvcli ls --json | "$MV_PYTHON" -c 'import json,sys
rows=[json.loads(l) for l in sys.stdin]
print(len(rows), sorted(rows[0]))')"
serial=$(mvcli ls --folder INBOX | head -1 | cut -f1)
t_contains "show prints the stored fields" "$(mvcli show "$serial")" "Seen-In      frank/INBOX uidvalidity"
t_contains "show of an unknown serial is a clear error" "$(mvcli show 999999 2>&1)" "no message with serial 999999"
t_contains "show of a non-number is a clear error" "$(mvcli show abc 2>&1)" "usage: mailvault show SERIAL"
t_contains "an unknown command is a clear error" "$(mvcli frobnicate 2>&1)" "unknown command 'frobnicate'"
t_contains "status shows the account and its messages" "$(mvcli status)" "frank"
t_eq "status --json reports the counts" "20 2" \
	"$(mvcli status --json | "$MV_PYTHON" -c 'import json,sys; o=json.loads(sys.stdin.readline()); print(o["messages"], o["folders"])')"

# --- the archive never forgets silently ---
t_contains "remove is refused while messages are archived" "$(mvcli account remove frank 2>&1)" \
	"has 20 archived message locations: refusing to remove it"
t_ok "disable works" mvcli account disable frank
log=$(mvd --once 2>&1)
t_contains "a disabled account is not polled" "$log" "one pass done: 0 accounts"
t_ok "enable works" mvcli account enable frank
t_contains "enable of an unknown account is an error" "$(mvcli account enable ghost 2>&1)" "no account named 'ghost'"
out=$(mvcli account add spare --host localhost --user u --secret spare 2>&1)
t_contains "an account whose secret is not configured yet is added with a warning" "$out" "has no [secret spare] section"
out=$(mvcli status)
t_contains "status shows that it cannot be polled" "$out" "spare                nosecret"
t_contains "and the exact section to add" "$out" "$(printf '[secret spare]\n  source = file:/etc/mailvault/secrets/NAME')"
t_contains "for its host and user" "$out" "$(printf '  host = localhost\n  user = u')"
t_ok "an account with nothing archived can be removed" mvcli account remove spare
t_eq "only frank is left" "frank" "$(mv_sql "SELECT string_agg(name, ',') FROM accounts")"
# --- a server without LIST-STATUS (and without CONDSTORE or SPECIAL-USE): STATUS per folder ---
printf '\n# it-cli: a plainer server\nimap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN\n' >>"$DOVECOT_CONF"
dovecot_reload "$D"
sleep 1
find "$D/enron_inbox/maildir/dean-c/inbox" -maxdepth 1 -type f | sort | sed -n 21,23p | maildir_add "$D" frank "Deals/2001" -
sed 's/^log_level = .*/log_level = debug/' "$MV_CONF" >"$D/debug.conf"
log=$("$MV_BUILD/mailvaultd" -c "$D/debug.conf" --once 2>&1)
t_contains "without LIST-STATUS the poller asks STATUS per folder" "$log" "with LIST, then STATUS per folder"
t_contains "and still archives the new messages" "$log" "folder Deals/2001: archived 3 messages"
t_eq "the archive equals the server's set" "$(mv_server_set frank frank-pw)" "$(mv_archived_set frank)"
log=$("$MV_BUILD/mailvaultd" -c "$D/debug.conf" --once 2>&1)
t_contains "unchanged folders are still skipped, from STATUS" "$log" "account frank: 0 folders synced, 2 unchanged"
t_done it-cli

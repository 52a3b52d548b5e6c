#!/usr/bin/env bash
# Retention, legal holds and provable disposal, through the officers' service and the database: the longest
# policy wins; a locked policy only grows, whoever asks (the service's and retention's database roles
# included); holds beat expiry, cover mail archived after them, and outlive their release by the grace
# period; nothing younger than min_age goes; disposal removes exactly the eligible set, leaves one proof
# per message in the audit chain and takes the message out of search; a held message cannot be deleted even
# by a direct DELETE; erasure needs two different officers and is refused under a hold.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/mv.sh"

t_tmpdir
D=$T_DIR
# under ASan, every process's reports go to files the end of the test looks for (a crash of the service
# would otherwise show only as refused connections)
case "$MV_BUILD" in *asan*) MV_ASAN_LOG=$D/asan; export ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$MV_ASAN_LOG" ;; esac
t_unpack enron-inbox.tar.xz "$D" enron_inbox/maildir/dean-c
E=$D/enron_inbox/maildir/dean-c
for u in alice bob carol dave; do dovecot_add_user "$D" "$u" "$u-pw"; done
files() { find "$E/inbox" -maxdepth 1 -type f | sort | sed -n "$1"; }
files 1,20p | maildir_add "$D" alice INBOX -
files 21,25p | maildir_add "$D" alice Sent -
files 26,30p | maildir_add "$D" bob INBOX -
files 31,40p | maildir_add "$D" carol INBOX -
# messages a query finds alone, and one whose Date is absurd (its INTERNALDATE counts instead)
mk() { printf 'From: %s\nTo: x@example.com\nSubject: %s\nDate: %s\nMessage-ID: <%s@example.com>\n\n%s\n' "$@"; }
mk a@example.com "zanzibar shipment" "Tue, 15 May 2001 10:00:00 +0000" zanzibar "held by a query" >"$D/zanzibar.eml"
mk b@example.com "quokka photos" "Tue, 15 May 2001 11:00:00 +0000" quokka "to be erased" >"$D/quokka.eml"
mk c@example.com "from the past" "Thu, 01 Jan 1970 00:00:00 +0000" epoch "absurd date" >"$D/epoch.eml"
maildir_add "$D" alice INBOX "$D/zanzibar.eml" "$D/quokka.eml" "$D/epoch.eml"
mv_setup "$D"
printf '[indexer]\nindex_path = %s/index\n[retention]\nmin_age = 0d\nrelease_grace = 30d\n' "$D" >>"$MV_CONF"
mvcli init >/dev/null
for u in alice bob carol dave; do
	mvcli account add "$u" --host localhost --port "$DOVECOT_IMAPS_PORT" --user "$u" --secret "$(mv_pw "$D" "$u" "$u-pw")" >/dev/null
done
t_ok "the mailboxes are archived" mvd --once
t_ok "and indexed" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once
mv_web_start
total=$(mv_sql "SELECT count(*) FROM messages")
t_eq "every message is archived (40 + 3)" 43 "$total"
serial_of() { mv_sql "SELECT serial FROM messages WHERE message_id = '$1@example.com'"; }
ZAN=$(serial_of zanzibar)
QUO=$(serial_of quokka)
EPO=$(serial_of epoch)
acct_serials() { mv_sql "SELECT DISTINCT l.message_serial FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = '$1' ORDER BY 1"; }

# officers on the socket: a legal officer, a second admin, an auditor
mkdir -p "$D/bin" && cp "$MV_BUILD/mailvault" "$D/bin/mailvault" && chmod 755 "$D/bin"
t_unix_user mvo_legal && t_unix_user mvo_admin2 && t_unix_user mvo_aud
mvcli officer add lena --all --role legal --unix-user mvo_legal >/dev/null
mvcli officer add adam --all --role admin --unix-user mvo_admin2 >/dev/null
mvcli officer add audrey --all --role auditor --unix-user mvo_aud >/dev/null
as() { local u=$1; shift; runuser -u "$u" -- env MAILVAULT_SOCKET="$MV_WEB_SOCKET" "$D/bin/mailvault" "$@"; }
ME=admin   # the running user's officer (role admin), made by mv_setup

# --- policies: the database computes retain_until; the longest wins ---
t_eq "with no policy nothing has a retention date (everything is kept)" 0 "$(mv_sql "SELECT count(*) FROM messages WHERE retain_until IS NOT NULL")"
t_denied "an auditor cannot set a policy" "admin role" as mvo_aud policy add short --keep 1y --all
t_denied "a first policy that lets messages expire must be confirmed, and says how many" \
	"makes $total messages eligible for disposal sooner" mvcli policy add oneyear --keep 1y --all
t_eq "nothing changed without --confirm" 0 "$(mv_sql "SELECT count(*) FROM policies")"
t_ok "with --confirm it is set" mvcli policy add oneyear --keep 1y --all --confirm
t_eq "every message's retention is its Date plus a year" "$total" \
	"$(mv_sql "SELECT count(*) FROM messages WHERE retain_policy = 'oneyear' AND retain_until = date + interval '1 year' OR serial = $EPO AND retain_policy = 'oneyear'")"
t_eq "a message dated 1970 counts from its INTERNALDATE" "t" \
	"$(mv_sql "SELECT retain_until = (SELECT min(internaldate) FROM locations WHERE message_serial = $EPO) + interval '1 year' FROM messages WHERE serial = $EPO")"
t_eq "the confirmation is audited with its number" "$total" \
	"$(mv_sql "SELECT details->>'sooner' FROM audit_log WHERE action = 'policy-add' AND target = 'oneyear'")"
t_ok "a longer policy for bob needs no confirmation" mvcli policy add bob10y --keep 10y --accounts bob
t_eq "bob's messages keep the longest" "$(acct_serials bob | wc -l)	$(acct_serials bob | wc -l)" \
	"$(mv_sql "SELECT count(*) FILTER (WHERE retain_policy = 'bob10y'), count(*) FILTER (WHERE retain_until = date + interval '10 years') FROM messages m WHERE serial IN (SELECT l.message_serial FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'bob')")"
t_ok "a folder policy keeps alice's Sent for 3 years" mvcli policy add sent3y --keep 3y --accounts alice --folders 'Sen*'
t_eq "it decides alice's Sent messages" 5 "$(mv_sql "SELECT count(*) FROM messages WHERE retain_policy = 'sent3y'")"
show=$(mvcli policy show sent3y)
t_contains "policy show counts what it covers now" "$show" "covers 5 messages now"
t_denied "a bad duration is refused" "keep is a number of years" mvcli policy add bad --keep 7x --all
t_denied "an unknown account is refused" "no account nobody" mvcli policy add bad --keep 7y --accounts nobody

# --- a locked policy only grows, by every path ---
t_ok "bob10y is locked" mvcli policy lock bob10y
t_denied "it cannot be shortened" "can be lengthened, not shortened" mvcli policy set bob10y --keep 2y --confirm
t_denied "nor removed" "cannot be removed" mvcli policy remove bob10y --confirm
t_denied "nor narrowed to a folder" "can be widened, not narrowed" mvcli policy set bob10y --folders INBOX --confirm
t_denied "nor shortened by counting in days (7y compares equal to 2520 days, but lasts 2556)" "not shortened" \
	mvcli policy set bob10y --keep 2521d --confirm
t_ok "it can be lengthened" mvcli policy set bob10y --keep 50y
t_ok "and widened" mvcli policy set bob10y --accounts bob,carol
t_eq "carol's messages now keep 50 years" "$(acct_serials carol | wc -l)" "$(mv_sql "SELECT count(*) FROM messages WHERE retain_policy = 'bob10y' AND retain_until = date + interval '50 years' AND serial IN ($(acct_serials carol | paste -sd,))")"
as_role() { psql -X -q -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "SET ROLE $1" -c "$2"; }
t_denied "the service's database role cannot shorten it by SQL" "not shortened" \
	as_role mailvault_web "UPDATE policies SET keep = '1 day' WHERE name = 'bob10y'"
t_denied "nor unlock it" "cannot be unlocked" as_role mailvault_web "UPDATE policies SET locked = false WHERE name = 'bob10y'"
t_denied "nor delete it" "cannot be removed" as_role mailvault_web "DELETE FROM policies WHERE name = 'bob10y'"
t_denied "retention's role cannot touch policies" "permission denied for table policies" \
	as_role mailvault_retention "UPDATE policies SET keep = '1 day' WHERE name = 'bob10y'"
t_denied "nor write a retention date" "permission denied for table messages" \
	as_role mailvault_retention "UPDATE messages SET retain_until = '2000-01-01' WHERE serial = $ZAN"
t_denied "even the superuser's UPDATE of a retention date is refused" "computed by the database" \
	mv_sql "UPDATE messages SET retain_until = '2000-01-01' WHERE serial = $ZAN"
t_denied "the owner cannot shorten a locked policy either" "not shortened" \
	psql -X -q -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "SET ROLE mailvault_owner" -c "UPDATE policies SET keep = '1 day' WHERE name = 'bob10y'"
t_eq "every refusal by the database is audited" 4 "$(mv_sql "SELECT count(*) FROM audit_log WHERE action = 'denied' AND details->>'refused_by' = 'database'")"

# --- matters and holds ---
t_denied "an auditor cannot open a matter" "legal and admin roles" as mvo_aud matter add case1 --description x
t_ok "the legal officer opens a matter" as mvo_legal matter add case1 --description "SEC inquiry 2026-114"
t_ok "and holds bob's mailbox for it" as mvo_legal hold add hold-bob --matter case1 --reason "custodian" --accounts bob
t_ok "and every message a query finds" as mvo_legal hold add hold-zan --matter case1 --reason "shipments" --all --query 'subject:zanzibar'
t_ok "and carol's mail of May 2001" as mvo_legal hold add hold-carol --matter case1 --reason "window" --accounts carol --from 2001-05-01 --to 2001-05-31
t_ok "and dave's mailbox, still empty" as mvo_legal hold add hold-dave --matter case1 --reason "new custodian" --accounts dave
t_denied "a hold's query must parse" "does not parse" as mvo_legal hold add hold-bad --matter case1 --reason r --all --query 'subject:"open'
t_denied "a hold needs a reason" "needs a reason" as mvo_legal hold add hold-x --matter case1 --accounts bob
t_denied "a hold needs an open matter" "no such matter" as mvo_legal hold add hold-x --matter nocase --reason r --accounts bob
t_ok "the indexer records what the query covers" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once
t_eq "the query hold covers exactly the zanzibar message" "$ZAN" "$(mv_sql "SELECT string_agg(serial::text, ',') FROM hold_coverage c JOIN holds h ON h.id = c.hold_id WHERE h.name = 'hold-zan'")"
carol_may=$(mv_sql "SELECT count(DISTINCT m.serial) FROM messages m JOIN locations l ON l.message_serial = m.serial JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'carol' AND m.date >= '2001-05-01' AND m.date < '2001-06-01'")
t_contains "hold show counts carol's May mail" "$(as mvo_legal hold show hold-carol)" "covers $carol_may messages now"
# mail archived after the hold is covered too
files 41,43p | maildir_add "$D" dave INBOX -
t_ok "dave's new mail is archived" mvd --once
t_contains "and covered by the hold placed before it" "$(as mvo_legal hold show hold-dave)" "covers 3 messages now"
t_denied "a matter with active holds cannot be closed" "has active holds" as mvo_legal matter close case1
t_ok "hold list shows them" as mvo_legal hold list --matter case1
t_eq "hold list --json names four holds" 4 "$(as mvo_legal hold list --json | "$MV_PYTHON" -c 'import json,sys; print(len(json.load(sys.stdin)["holds"]))')"
# officers of one account: holds and policies that cover none of their accounts are unknown to them
t_unix_user mvo_scoped && mvcli officer add scoped --accounts alice --role admin --unix-user mvo_scoped >/dev/null
t_unix_user mvo_bob && mvcli officer add bobby --accounts bob --role admin --unix-user mvo_bob >/dev/null
names() { "$MV_PYTHON" -c "import json,sys; print(' '.join(x['name'] for x in json.load(sys.stdin)['$1']))"; }
t_eq "an officer of alice sees the holds that cover alice (here the one on every account)" "hold-zan" \
	"$(as mvo_scoped hold list --json | names holds)"
t_eq "and the policies" "oneyear sent3y" "$(as mvo_scoped policy list --json | names policies)"
t_eq "bob's hold is unknown to them" "mailvault: hold show: no such hold" "$(as mvo_scoped hold show hold-bob 2>&1)"
t_eq "as a missing one is" "mailvault: hold show: no such hold" "$(as mvo_scoped hold show hold-nobody 2>&1)"
t_eq "releasing it answers as releasing a missing one does" "$(as mvo_scoped hold release hold-nobody --reason x 2>&1)" \
	"$(as mvo_scoped hold release hold-bob --reason "not mine" 2>&1)"
t_contains "(which is a refusal)" "$(as mvo_scoped hold release hold-bob --reason "not mine" 2>&1)" "no such active hold"
t_eq "bob10y is unknown to them too" "mailvault: policy show: no such policy" "$(as mvo_scoped policy show bob10y 2>&1)"
for act in "lock" "remove --confirm" "set --keep 60y"; do
	t_eq "policy $act on bob10y answers as on a missing policy" "$(as mvo_scoped policy $act nopolicy 2>&1)" \
		"$(as mvo_scoped policy $act bob10y 2>&1 | sed 's/bob10y/nopolicy/g')"
done
t_eq "and bob10y is unchanged" "50 years true" "$(mv_sql "SELECT keep || ' ' || locked FROM policies WHERE name = 'bob10y'")"
t_eq "an officer of bob sees bob's hold and bob10y" "hold-bob hold-zan / bob10y oneyear" \
	"$(as mvo_bob hold list --json | names holds) / $(as mvo_bob policy list --json | names policies)"
t_denied "but cannot change bob10y, which covers carol too" "covers accounts you do not see" \
	as mvo_bob policy set bob10y --keep 60y
t_eq "hold-bob is still active" "active" "$(mv_sql "SELECT CASE WHEN released_at IS NULL THEN 'active' END FROM holds WHERE name = 'hold-bob'")"
t_denied "nor change a policy on every account" "covers accounts you do not see" as mvo_scoped policy set oneyear --keep 1d --confirm
t_denied "nor cover every account with a new one" "only an officer who sees every account" as mvo_scoped policy add mine --keep 1d --all
t_denied "no program role may create objects where the owner's functions look names up" "permission denied for schema public" \
	as_role mailvault_ingest "CREATE TABLE public.shadow (a int)"
t_denied "the service's role cannot delete a hold" "permission denied for table holds" as_role mailvault_web "DELETE FROM holds WHERE name = 'hold-bob'"
t_denied "nor can the owner" "holds are records" as_role mailvault_owner "DELETE FROM holds WHERE name = 'hold-bob'"
t_denied "nor quietly change one" "only released, once" as_role mailvault_web "UPDATE holds SET released_at = now(), released_by = 'x', release_reason = 'y' WHERE name = 'hold-bob'; UPDATE holds SET released_at = NULL, released_by = NULL, release_reason = NULL WHERE name = 'hold-bob'"


# --- erasure: asked by one officer, approved by a different admin; refused under a hold or a locked policy ---
t_denied "erasing a held message is refused, and the hold is named" "under hold hold-zan" \
	as mvo_legal erase request --query 'subject:zanzibar' --reason "GDPR Art. 17, request 41"
t_denied "erasing what a locked policy keeps is refused, and the policy is named" "kept by locked policy bob10y" \
	as mvo_legal erase request --query 'account:carol' --reason "GDPR Art. 17, request 42"
t_denied "an auditor cannot ask for an erasure" "legal and admin roles" as mvo_aud erase request --query 'subject:quokka' --reason r
t_ok "the legal officer asks to erase the quokka message" as mvo_legal erase request --query 'subject:quokka' --reason "GDPR Art. 17, request 43"
RQ=$(mv_sql "SELECT id FROM erasure_requests WHERE reason = 'GDPR Art. 17, request 43'")
t_eq "the request names exactly that message, pending" "$QUO pending" "$(mv_sql "SELECT serial || ' ' || state FROM erasure_items WHERE request_id = $RQ")"
t_denied "the legal officer cannot approve it" "approved by the admin role" as mvo_legal erase approve "$RQ"
t_ok "an admin asks for another erasure" mvcli erase request --query 'subject:quokka' --reason "duplicate request"
RQ2=$(mv_sql "SELECT id FROM erasure_requests WHERE reason = 'duplicate request'")
t_denied "and cannot approve their own request" "a different officer must approve it" mvcli erase approve "$RQ2"
t_contains "a different admin approves the first" "$(as mvo_admin2 erase approve "$RQ")" "erasure request $RQ: approved; 1 messages wait"
t_eq "the request and its approval are in the audit log, by their officers" "erase-request lena
erase-approve adam" "$(mv_sql "SELECT action || ' ' || actor FROM audit_log WHERE action IN ('erase-request', 'erase-approve') AND target = '$RQ' ORDER BY seq")"

# --- erasure requests and scope: an officer sees the items of the accounts they see, and approves only a
#     request whose every message they see ---
t_eq "an officer who sees none of a request's messages does not know it" "mailvault: erase show: no such erasure request" \
	"$(as mvo_bob erase show "$RQ2" 2>&1)"
t_eq "as they do not know a missing one" "mailvault: erase show: no such erasure request" "$(as mvo_bob erase show 999999 2>&1)"
t_eq "nor is it listed to them" "[]" "$(as mvo_bob erase list --json | "$MV_PYTHON" -c 'import json,sys; print([q["id"] for q in json.load(sys.stdin)["requests"]])')"
t_eq "nor can they approve it: it answers as a missing one" "mailvault: erase approve: no such erasure request" \
	"$(as mvo_bob erase approve "$RQ2" 2>&1)"
t_eq "a missing one answers the same" "mailvault: erase approve: no such erasure request" "$(as mvo_bob erase approve 999999 2>&1)"
t_ok "a request over two accounts (alice's quokka, bob's mail)" \
	as mvo_legal erase request --query 'subject:quokka OR account:bob' --reason "GDPR Art. 17, request 44"
RQM=$(mv_sql "SELECT id FROM erasure_requests WHERE reason = 'GDPR Art. 17, request 44'")
bob_n=$(acct_serials bob | wc -l)
t_eq "its items record their accounts" "alice 1
bob $bob_n" "$(mv_sql "SELECT a.name || ' ' || count(*) FROM erasure_items i JOIN accounts a ON a.id = ANY (i.account_ids)
	WHERE i.request_id = $RQM GROUP BY a.name ORDER BY 1")"
show_items() { as "$1" erase show "$RQM" --json | "$MV_PYTHON" -c 'import json,sys; q=json.load(sys.stdin); print(q["messages"], " ".join(str(i["serial"]) for i in q["items"]))'; }
t_eq "an officer of alice's account sees alice's item only, and counts it only" "1 $QUO" "$(show_items mvo_scoped)"
t_eq "an officer of every account sees all of them" "$((bob_n + 1))" "$(show_items mvo_legal | cut -d' ' -f1)"
t_eq "bob's officer sees bob's" "$bob_n $(acct_serials bob | paste -sd' ')" "$(show_items mvo_bob)"
t_denied "an admin who does not see every account of a request cannot approve it" \
	"names messages in accounts scoped does not see" as mvo_scoped erase approve "$RQM"
t_eq "the refusal is audited, by the database" "denied scoped database" \
	"$(mv_sql "SELECT action || ' ' || actor || ' ' || (details->>'refused_by') FROM audit_log WHERE target LIKE '%/erasures/$RQM/%' ORDER BY seq DESC LIMIT 1")"
t_denied "the database refuses it too, whoever calls it" "names messages in accounts bobby does not see" \
	as_role mailvault_web "SELECT mailvault_erasure_approve($RQM, 'bobby')"
t_eq "and the request is still pending" "pending" "$(mv_sql "SELECT status FROM erasure_requests WHERE id = $RQM")"
# a copy that arrived in another account after the request counts too (tried in a transaction rolled back)
t_denied "an admin who saw every account when it was asked for, but not one it is in now, cannot approve it" \
	"names messages in accounts scoped does not see" psql -X -q -v ON_ERROR_STOP=1 "$MV_CONNINFO" \
	-c "BEGIN" -c "INSERT INTO locations (message_serial, folder_id, uidvalidity, uid) SELECT $QUO, f.id, 1, 999999
	    FROM folders f JOIN accounts a ON a.id = f.account_id WHERE a.name = 'bob' LIMIT 1" \
	-c "SET ROLE mailvault_web" -c "SELECT mailvault_erasure_approve($RQ2, 'scoped')" -c "ROLLBACK"
t_eq "(which the same admin may approve as it is)" "1" "$(psql -X -q -At -v ON_ERROR_STOP=1 "$MV_CONNINFO" -c "BEGIN" \
	-c "SET ROLE mailvault_web" -c "SELECT mailvault_erasure_approve($RQ2, 'scoped')" -c "ROLLBACK")"
t_eq "quokka is in alice's account alone" "alice" "$(mv_sql "SELECT string_agg(DISTINCT a.name, ',') FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE l.message_serial = $QUO")"

# --- disposal: exactly what expired and no hold covers; a proof per message; gone from search ---
retention() { "$MV_BUILD/mailvault-retention" -c "$MV_CONF" "$@"; }
expired_free=$(mv_sql "SELECT serial FROM messages WHERE retain_until <= now() AND NOT mailvault_held(serial) AND serial <> $QUO ORDER BY 1")
t_eq "alice's INBOX and Sent have expired with no hold (25 messages)" 25 "$(wc -l <<<"$expired_free")"
gone_sha=$(mv_sql "SELECT encode(sha256, 'hex') FROM messages WHERE serial IN ($(paste -sd, <<<"$expired_free")) ORDER BY 1")
kept=$(mv_sql "SELECT serial FROM messages WHERE serial NOT IN ($(paste -sd, <<<"$expired_free"), $QUO) ORDER BY 1")
t_contains "the dry run reports what would go (the erased message too: it has expired as well)" "$(retention --once --dry-run 2>&1)" "26"
t_eq "and changes nothing" "$total" "$(( $(mv_sql "SELECT count(*) FROM messages") - 3 ))"
t_eq "the service's disposal report agrees" 26 "$(curl -s --unix-socket "$MV_WEB_SOCKET" http://localhost/api/v1/disposal |
	"$MV_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["messages"])')"
t_ok "mailvault-retention disposes" retention --once
t_eq "exactly the others remain" "$kept" "$(mv_sql "SELECT serial FROM messages ORDER BY 1")"
t_eq "one proof per disposed message, carrying its SHA-256" "$gone_sha" \
	"$(mv_sql "SELECT details->>'sha256' FROM audit_log WHERE action = 'dispose' AND details->>'reason' = 'retention' ORDER BY 1")"
t_eq "the proofs name the policy that expired them" "oneyear 20
sent3y 5" "$(mv_sql "SELECT (details->>'policy') || ' ' || count(*) FROM audit_log WHERE action = 'dispose' AND details->>'reason' = 'retention' GROUP BY details->>'policy' ORDER BY 1")"
t_eq "the approved erasure went the same way, with its request" "$QUO $RQ" \
	"$(mv_sql "SELECT details->>'serial' || ' ' || (details->>'erasure_request') FROM audit_log WHERE action = 'dispose' AND details->>'reason' = 'erasure'")"
t_eq "the erasure request is done" "done erased" "$(mv_sql "SELECT q.status || ' ' || i.state FROM erasure_requests q JOIN erasure_items i ON i.request_id = q.id WHERE q.id = $RQ")"
t_eq "no blob or place is left without its message" "0 0" \
	"$(mv_sql "SELECT (SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.sha256 = b.sha256)) || ' ' || (SELECT count(*) FROM locations l WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.serial = l.message_serial))")"
t_ok "the audit chain, proofs included, verifies" mvcli audit verify
first_gone=$(head -1 <<<"$expired_free")
gone_id=$(mv_sql "SELECT details->>'message_id' FROM audit_log WHERE action = 'dispose' AND details->>'serial' = '$first_gone'")
t_ok "the indexer drains the removals" "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once
t_eq "a disposed message is no longer found" 0 "$(mvcli search --count "msgid:$gone_id")"
t_eq "nor the erased one" 0 "$(mvcli search --count 'subject:quokka')"
t_eq "the held one still is" 1 "$(mvcli search --count 'subject:zanzibar')"
t_eq "the index holds exactly the messages left" "$(mv_sql "SELECT count(*) FROM messages")" "$(mvcli search --count 'NOT msgid:nosuchid')"

# --- a held message cannot be deleted, by any role, by any path ---
t_denied "not by retention's role with a direct DELETE" "permission denied for table messages" \
	as_role mailvault_retention "DELETE FROM messages WHERE serial = $ZAN"
# functions of the owner on the disposal path, as the disposal deletes (the message, then its places) and
# the other way round
mv_sql "CREATE FUNCTION probe_delete(bigint) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET mailvault.disposing = 'on'
        AS \$\$ BEGIN SET CONSTRAINTS ALL DEFERRED; DELETE FROM messages WHERE serial = \$1;
                     DELETE FROM locations WHERE message_serial = \$1; DELETE FROM hold_coverage WHERE serial = \$1; END \$\$;
        ALTER FUNCTION probe_delete(bigint) OWNER TO mailvault_owner;
        CREATE FUNCTION probe_delete_places_first(bigint) RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET mailvault.disposing = 'on'
        AS \$\$ BEGIN DELETE FROM locations WHERE message_serial = \$1; DELETE FROM messages WHERE serial = \$1; END \$\$;
        ALTER FUNCTION probe_delete_places_first(bigint) OWNER TO mailvault_owner" >/dev/null
BOB1=$(acct_serials bob | head -1)
t_denied "not even by a function of the owner on the disposal path (a query hold)" "message $ZAN is under a legal hold" \
	mv_sql "SELECT probe_delete($ZAN)"
t_denied "nor an account hold" "message $BOB1 is under a legal hold" mv_sql "SELECT probe_delete($BOB1)"
t_denied "nor by taking the places away first" "message $BOB1 is under a legal hold" mv_sql "SELECT probe_delete_places_first($BOB1)"
mv_sql "DROP FUNCTION probe_delete(bigint); DROP FUNCTION probe_delete_places_first(bigint)" >/dev/null

# --- release, grace, and the min_age floor ---
t_ok "dave's hold is released" as mvo_legal hold release hold-dave --reason "custodian cleared"
t_ok "a run after the release" retention --once
t_eq "dave's mail stays through the grace period" 3 "$(mv_sql "SELECT count(*) FROM messages WHERE serial IN ($(acct_serials dave | paste -sd,))")"
sed -i 's/^release_grace = .*/release_grace = 0d/' "$MV_CONF"
t_ok "init takes a new release_grace into the database" mvcli init
t_ok "a run with no grace left" retention --once
t_eq "dave's mail is gone once the grace has passed" 0 "$(mv_sql "SELECT count(*) FROM messages m JOIN locations l ON l.message_serial = m.serial JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE a.name = 'dave'")"
printf 'Subject: late arrival\nDate: Tue, 15 May 2001 12:00:00 +0000\nMessage-ID: <late@example.com>\n\nnew\n' >"$D/late.eml"
maildir_add "$D" alice INBOX "$D/late.eml"
sed -i 's/^min_age = .*/min_age = 7d/' "$MV_CONF"
t_ok "and a min_age of 7 days" mvcli init
mvd --once >/dev/null 2>&1 && "$MV_BUILD/mailvault-indexer" -c "$MV_CONF" --once >/dev/null 2>&1
LATE=$(serial_of late)
t_eq "a message archived just now has long expired by its Date" t "$(mv_sql "SELECT retain_until < now() FROM messages WHERE serial = $LATE")"
t_ok "a run with min_age 7d" retention --once
t_eq "the new message is kept by the min_age floor" 1 "$(mv_sql "SELECT count(*) FROM messages WHERE serial = $LATE")"
t_denied "a program cannot lower the floor: retention_settings belong to the owner" "permission denied" \
	as_role mailvault_retention "UPDATE retention_settings SET min_age = '0'"
t_ok "the matter closes once its holds are released" sh -c "for h in hold-bob hold-zan hold-carol; do runuser -u mvo_legal -- env MAILVAULT_SOCKET='$MV_WEB_SOCKET' '$D/bin/mailvault' hold release \$h --reason done || exit 1; done; runuser -u mvo_legal -- env MAILVAULT_SOCKET='$MV_WEB_SOCKET' '$D/bin/mailvault' matter close case1"
t_eq "and its holds stay on record" 4 "$(mv_sql "SELECT count(*) FROM holds WHERE released_at IS NOT NULL")"

if [ -n "${MV_ASAN_LOG:-}" ]; then
	mv_web_stop
	t_eq "no sanitizer report from any process" "" "$(ls "$MV_ASAN_LOG".* 2>/dev/null)"
	cat "$MV_ASAN_LOG".* 2>/dev/null | head -60
fi
t_done it-retention

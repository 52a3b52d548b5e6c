/* mailvault-retention --dry-run: what a run would remove now and what holds keep, changing nothing. */
#include "db.h"
#include "json-out.h"
#include "retention.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One statement, so every figure comes from the same snapshot. Rows: kind, name, messages, bytes.
   kind: total (what would go), policy, account (a message in several accounts counts in each), expired
   (every message past retain_until), held (expired, kept by holds), hold (per hold), erasure (approved,
   pending: messages still in the archive), requests (approved requests with pending messages). */
static const char report_sql[] =
	"WITH c AS MATERIALIZED (SELECT serial, size, policy FROM mailvault_disposal_candidates(0, 2147483647)), "
	"e AS MATERIALIZED (SELECT m.serial, m.size, m.date, m.ingested_at, m.indexed_at FROM messages m "
	"                   WHERE m.retain_until <= now()), "
	/* the holds of every expired message in one statement */
	"eh AS MATERIALIZED (SELECT h.serial, h.hold FROM (SELECT array_agg(serial) s, array_agg(date) d, "
	"                    array_agg(ingested_at) g, array_agg(indexed_at) x FROM e) a, "
	"                    mailvault_holds_covering(a.s, a.d, a.g, a.x) h), "
	"ea AS (SELECT c.size, a.name FROM c CROSS JOIN LATERAL (SELECT DISTINCT f.account_id FROM locations l "
	"       JOIN folders f ON f.id = l.folder_id WHERE l.message_serial = c.serial) x JOIN accounts a ON a.id = x.account_id), "
	"er AS (SELECT DISTINCT i.request_id, i.serial, m.size FROM erasure_items i JOIN erasure_requests q ON q.id = i.request_id "
	"       JOIN messages m ON m.serial = i.serial WHERE q.status = 'approved' AND i.state = 'pending') "
	"SELECT 0, 'total', NULL, count(*), coalesce(sum(size), 0) FROM c "
	"UNION ALL SELECT 1, 'policy', coalesce(policy, '(none)'), count(*), sum(size) FROM c GROUP BY policy "
	"UNION ALL SELECT 2, 'account', name, count(*), sum(size) FROM ea GROUP BY name "
	"UNION ALL SELECT 3, 'erasure', NULL, count(DISTINCT serial), coalesce(sum(size), 0) FROM "
	"          (SELECT DISTINCT serial, size FROM er) s "
	"UNION ALL SELECT 4, 'requests', NULL, count(DISTINCT request_id), 0 FROM er "
	"UNION ALL SELECT 5, 'expired', NULL, count(*), coalesce(sum(size), 0) FROM e "
	"UNION ALL SELECT 6, 'held', NULL, count(*), coalesce(sum(size), 0) FROM e WHERE serial IN (SELECT serial FROM eh) "
	"UNION ALL SELECT 7, 'hold', eh.hold, count(*), sum(e.size) FROM eh JOIN e ON e.serial = eh.serial GROUP BY eh.hold "
	"ORDER BY 1, 3";

/* A figure of the report. */
struct report_row {
	const char *kind, *name;
	long long messages, bytes;
};

/* Adds {"name": ..., "messages": N, "bytes": B} rows of one kind to a JSON array under key. */
static void report_json_list(json_object *o, const char *key, const char *namekey, const struct report_row *rows,
			     int n, const char *kind)
{
	json_object *a = json_object_new_array();
	for (int i = 0; i < n; i++) {
		if (strcmp(rows[i].kind, kind) != 0)
			continue;
		json_object *r = json_object_new_object();
		json_object_object_add(r, namekey, json_text(rows[i].name));
		json_object_object_add(r, "messages", json_object_new_int64(rows[i].messages));
		json_object_object_add(r, "bytes", json_object_new_int64(rows[i].bytes));
		json_object_array_add(a, r);
	}
	json_object_object_add(o, key, a);
}

/* {"messages": N, "bytes": B} of the one row of kind. */
static json_object *report_json_total(const struct report_row *rows, int n, const char *kind)
{
	json_object *r = json_object_new_object();
	for (int i = 0; i < n; i++) {
		if (strcmp(rows[i].kind, kind) == 0) {
			json_object_object_add(r, "messages", json_object_new_int64(rows[i].messages));
			json_object_object_add(r, "bytes", json_object_new_int64(rows[i].bytes));
		}
	}
	return r;
}

/* The row of kind (a total), or a row of zeros. */
static struct report_row report_get(const struct report_row *rows, int n, const char *kind)
{
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].kind, kind) == 0)
			return rows[i];
	return (struct report_row){ kind, NULL, 0, 0 };
}

/* Prints the rows of one kind as table lines. */
static void report_print_kind(const struct report_row *rows, int n, const char *kind, const char *label)
{
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].kind, kind) == 0)
			printf("  %-8s %-27s %10lld %14lld\n", label, util_term(rows[i].name), rows[i].messages, rows[i].bytes);
}

/* The dry run, as retention.h says. */
int retention_report(PGconn *db, bool json, const char **error_r)
{
	PGresult *res = db_query(db, report_sql, 0, NULL, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	struct report_row *rows = xcalloc((size_t)n + 1, sizeof(*rows));
	for (int i = 0; i < n; i++) {
		rows[i].kind = PQgetvalue(res, i, 1);
		rows[i].name = PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2);
		rows[i].messages = atoll(PQgetvalue(res, i, 3));
		rows[i].bytes = atoll(PQgetvalue(res, i, 4));
	}
	struct report_row total = report_get(rows, n, "total"), expired = report_get(rows, n, "expired"),
			  held = report_get(rows, n, "held"), erasure = report_get(rows, n, "erasure"),
			  requests = report_get(rows, n, "requests");
	/* past retain_until, not held, not eligible yet: archived less than min_age ago, not yet indexed, or a
	   hold's or policy's query not yet evaluated on it */
	long long waiting = expired.messages - held.messages - total.messages;
	if (waiting < 0)
		waiting = 0;
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "dry_run", json_object_new_boolean(1));
		json_object_object_add(o, "dispose", report_json_total(rows, n, "total"));
		report_json_list(o, "by_policy", "policy", rows, n, "policy");
		report_json_list(o, "by_account", "account", rows, n, "account");
		json_object *er = report_json_total(rows, n, "erasure");
		json_object_object_add(er, "requests", json_object_new_int64(requests.messages));
		json_object_object_add(o, "erasures_pending", er);
		json_object *h = report_json_total(rows, n, "held");
		report_json_list(h, "by_hold", "hold", rows, n, "hold");
		json_object_object_add(o, "kept_by_holds", h);
		json_object_object_add(o, "expired", report_json_total(rows, n, "expired"));
		json_object *w = json_object_new_object();
		json_object_object_add(w, "messages", json_object_new_int64(waiting));
		json_object_object_add(o, "expired_not_yet_eligible", w);
		json_print_line(stdout, o);
	} else {
		printf("dry run: nothing is changed\n");
		printf("  %-36s %10s %14s\n", "", "MESSAGES", "BYTES");
		printf("  %-36s %10lld %14lld\n", "would be disposed of now", total.messages, total.bytes);
		report_print_kind(rows, n, "policy", "policy");
		report_print_kind(rows, n, "account", "account");
		printf("  %-36s %10lld %14lld\n", "approved erasures pending", erasure.messages, erasure.bytes);
		if (requests.messages > 0)
			printf("  %-36s %10lld\n", "  in approved requests", requests.messages);
		printf("  %-36s %10lld %14lld\n", "past retain_until, kept by holds", held.messages, held.bytes);
		report_print_kind(rows, n, "hold", "hold");
		printf("  %-36s %10lld\n", "past retain_until, not yet eligible", waiting);
		if (waiting > 0)
			printf("    (archived less than min_age ago, not yet indexed, or a query not yet evaluated on them)\n");
		if (total.messages > 0 && n > 0)
			printf("a message in several accounts counts once in each account's line\n");
	}
	free(rows);
	PQclear(res);
	return 0;
}

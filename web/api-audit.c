/* mailvault-web: the audit log for auditors and administrators. /api/v1/audit lists rows (filtered by
 * time, actor and action, paged by sequence number); /api/v1/audit/verify recomputes every hash in C
 * (lib/audit-chain.c), independently of the database function that wrote them, and names the first row
 * that does not verify. */
#include "web.h"
#include "audit-chain.h"
#include "db.h"
#include "log.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define AUDIT_LIST_MAX 10000

enum MHD_Result api_audit_list(struct request *r)
{
	if (!web_role_allows(&r->who, "auditor"))
		return web_forbidden(r, "the audit log is for the auditor and admin roles");
	const char *since = web_arg(r, "since"), *actor = web_arg(r, "actor"), *action = web_arg(r, "action");
	const char *after_s = web_arg(r, "after"), *err;
	uint64_t limit = 1000, after = 0;
	const char *ls = web_arg(r, "limit");
	if (ls != NULL && util_parse_uint(ls, 1, AUDIT_LIST_MAX, &limit) < 0)
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "limit must be 1 to 10000", 0);
	if (after_s != NULL && util_parse_uint(after_s, 0, INT64_MAX, &after) < 0)
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "after must be a sequence number", 0);
	char lim[24], aft[24];
	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)limit);
	snprintf(aft, sizeof(aft), "%llu", (unsigned long long)after);
	if (web_begin_as(r, &err) < 0)
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
	/* a malformed time is the caller's mistake: checked before anything is read */
	if (since != NULL) {
		const char *sp[] = { since };
		if (db_exec(r->ctx->db, "SELECT $1::timestamptz", 1, sp, &err) < 0) {
			web_end(r, false);
			return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "since must be a date or time (2026-11-28, "
					       "2026-11-28T08:00:00Z)", 0);
		}
	}
	const char *p[] = { since, actor, action, aft, lim };
	PGresult *res = db_query(r->ctx->db,
		"SELECT seq, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), actor, via, client, "
		"recorded_by, action, target, details::text FROM audit_log "
		"WHERE ($1::timestamptz IS NULL OR at >= $1::timestamptz) AND ($2::text IS NULL OR actor = $2) "
		"AND ($3::text IS NULL OR action = $3) AND seq > $4::bigint ORDER BY seq LIMIT $5::bigint", 5, p, &err);
	if (res == NULL) {
		web_end(r, false);
		log_error("audit list: %s", err);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the audit log", 0);
	}
	json_object *d = json_object_new_object();
	json_object_object_add(d, "rows", json_object_new_int(PQntuples(res)));
	if (since)
		json_object_object_add(d, "since", json_object_new_string(since));
	if (actor)
		json_object_object_add(d, "actor", json_object_new_string(actor));
	if (action)
		json_object_object_add(d, "action", json_object_new_string(action));
	json_object_object_add(d, "after", json_object_new_uint64(after));
	if (web_audit(r, "audit-list", NULL, d) < 0) {
		PQclear(res);
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	}
	web_end(r, true);
	json_object *rows = json_object_new_array();
	static const char *keys[] = { "seq", "at", "actor", "via", "client", "recorded_by", "action", "target", "details" };
	for (int i = 0; i < PQntuples(res); i++) {
		json_object *row = json_object_new_object();
		for (int k = 0; k < 9; k++) {
			json_object *v = NULL;
			if (PQgetisnull(res, i, k))
				v = NULL;
			else if (k == 0)
				v = json_object_new_int64(strtoll(PQgetvalue(res, i, k), NULL, 10));
			else if (k == 8)
				v = json_tokener_parse(PQgetvalue(res, i, k));
			else
				v = json_object_new_string(PQgetvalue(res, i, k));
			json_object_object_add(row, keys[k], v);
		}
		json_object_array_add(rows, row);
	}
	PQclear(res);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "rows", rows);
	return web_reply_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result api_audit_verify(struct request *r)
{
	if (!web_role_allows(&r->who, "auditor"))
		return web_forbidden(r, "the audit log is for the auditor and admin roles");
	const char *err;
	if (web_ctx_connect(r->web, r->ctx, &err) < 0)
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
	PGconn *db = r->ctx->db;
	/* row by row, so a log of millions of rows needs no more memory than one */
	if (!PQsendQueryParams(db, "SELECT seq, form, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
			       "actor, via, client, recorded_by, action, target, details::text, encode(prev_hash, 'hex'), "
			       "encode(hash, 'hex') FROM audit_log ORDER BY seq", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(db))
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read the audit log", 0);
	struct audit_verify v;
	audit_verify_init(&v);
	bool failed = false;
	PGresult *res;
	while ((res = PQgetResult(db)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_SINGLE_TUPLE && !v.broken) {
			unsigned char prev[64], hash[64];
			struct audit_row row = {
				.seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10),
				.form = atoi(PQgetvalue(res, 0, 1)),
			};
			const char **fields[] = { &row.at, &row.actor, &row.via, &row.client, &row.recorded_by, &row.action,
						  &row.target, &row.details };
			for (int k = 0; k < 8; k++)
				*fields[k] = PQgetisnull(res, 0, k + 2) ? NULL : PQgetvalue(res, 0, k + 2);
			/* a stored hash that is no hash (too long) reads as empty: the row then does not verify */
			ssize_t pl = util_unhex(PQgetvalue(res, 0, 10), prev, sizeof(prev));
			ssize_t hl = util_unhex(PQgetvalue(res, 0, 11), hash, sizeof(hash));
			row.prev_len = pl < 0 ? 0 : (size_t)pl;
			row.prev_hash = prev;
			row.hash_len = hl < 0 ? 0 : (size_t)hl;
			row.hash = hash;
			audit_verify_row(&v, &row);
		} else if (st != PGRES_SINGLE_TUPLE && st != PGRES_TUPLES_OK) {
			log_error("audit verify: %s", PQresultErrorMessage(res));
			failed = true;
		}
		PQclear(res);
	}
	if (failed)
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the audit log", 0);
	json_object *o = json_object_new_object();
	char head[65] = "";
	util_hex(v.last_hash, v.last_len, head);
	json_object_object_add(o, "ok", json_object_new_boolean(!v.broken));
	json_object_object_add(o, "rows", json_object_new_int64(v.rows));
	json_object_object_add(o, "head_seq", json_object_new_int64(v.last_seq));
	json_object_object_add(o, "head_hash", json_object_new_string(head));
	if (v.broken) {
		json_object_object_add(o, "broken_seq", json_object_new_int64(v.broken_seq));
		json_object_object_add(o, "reason", json_object_new_string(v.reason));
	}
	if (web_audit(r, "audit-verify", NULL, json_object_get(o)) < 0) {
		json_object_put(o);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	}
	return web_reply_json(r, MHD_HTTP_OK, o);
}

/* mailvault-web: the audit log for auditors and administrators. /api/v1/audit lists rows (filtered by
 * time, actor and action, paged by sequence number); /api/v1/audit/verify recomputes every hash in C
 * (lib/audit-chain.c), independently of the database function that wrote them, and names the first row
 * that does not verify; POSTed anchors (heads recorded outside the database) are checked in the same
 * walk, so a rewritten chain or a removed tail is found too. /api/v1/audit/head gives the head to anchor. */
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

/* An anchor held outside the database: row seq carried hash when it was anchored (at, as the caller
   recorded it). The walk over the log says whether it still does. */
struct audit_anchor {
	int64_t seq;
	unsigned char hash[32];
	char hex[65];
	char at[48];                 /* "" when the caller gave no time */
	const char *status;          /* match, changed, missing, truncated, unverified */
	char reason[320];
};

#define AUDIT_ANCHORS_MAX 2000   /* a request body of WEB_MAX_BODY holds fewer: the client sends batches */

/* Orders anchors by sequence number. */
static int audit_anchor_cmp(const void *a, const void *b)
{
	const struct audit_anchor *x = *(const struct audit_anchor *const *)a, *y = *(const struct audit_anchor *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Judges anchor a against the row at its seq (stored hash of hash_len bytes), read after the walk's
   chain check of that row (v). */
static void audit_anchor_judge(struct audit_anchor *a, const unsigned char *hash, size_t hash_len,
			       const struct audit_verify *v)
{
	char on[64] = "";
	if (a->at[0] != '\0')
		snprintf(on, sizeof(on), " on %s", a->at);
	if (hash_len != sizeof(a->hash) || memcmp(hash, a->hash, sizeof(a->hash)) != 0) {
		a->status = "changed";
		snprintf(a->reason, sizeof(a->reason), "row %lld no longer carries the hash anchored%s: the log up to it "
			 "was changed", (long long)a->seq, on);
	} else if (v->broken && v->broken_seq == a->seq) {
		a->status = "unverified";
		snprintf(a->reason, sizeof(a->reason), "row %lld carries the hash anchored%s, but does not verify: %s",
			 (long long)a->seq, on, v->reason);
	} else if (v->broken) {
		a->status = "unverified";
		snprintf(a->reason, sizeof(a->reason), "row %lld carries the hash anchored%s, but the chain breaks before "
			 "it, at row %lld: %s", (long long)a->seq, on, (long long)v->broken_seq, v->reason);
	} else {
		a->status = "match";
	}
}

/* Recomputes every hash in C, row by row (a log of millions of rows needs no more memory than one), and
   judges each anchor (sorted by seq) on the way: its row must be there, verify, and carry the anchored
   hash. *last_seen_r is the last row read, verified or not. 0, or -1 when the log cannot be read. */
static int audit_verify_walk(PGconn *db, struct audit_verify *v, struct audit_anchor **sorted, size_t n,
			     int64_t *last_seen_r)
{
	if (!PQsendQueryParams(db, "SELECT seq, form, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
			       "actor, via, client, recorded_by, action, target, details::text, encode(prev_hash, 'hex'), "
			       "encode(hash, 'hex') FROM audit_log ORDER BY seq", 0, NULL, NULL, NULL, NULL, 0) ||
	    !PQsetSingleRowMode(db))
		return -1;
	audit_verify_init(v);
	bool failed = false;
	size_t k = 0;
	int64_t last_seen = 0;
	PGresult *res;
	while ((res = PQgetResult(db)) != NULL) {
		ExecStatusType st = PQresultStatus(res);
		if (st == PGRES_SINGLE_TUPLE && (!v->broken || k < n)) {
			unsigned char prev[64], hash[64];
			int64_t seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			/* a stored hash that is no hash (too long) reads as empty: the row then does not verify */
			ssize_t hl = util_unhex(PQgetvalue(res, 0, 11), hash, sizeof(hash));
			size_t hash_len = hl < 0 ? 0 : (size_t)hl;
			last_seen = seq;
			if (!v->broken) {
				struct audit_row row = { .seq = seq, .form = atoi(PQgetvalue(res, 0, 1)) };
				const char **fields[] = { &row.at, &row.actor, &row.via, &row.client, &row.recorded_by,
							  &row.action, &row.target, &row.details };
				for (int f = 0; f < 8; f++)
					*fields[f] = PQgetisnull(res, 0, f + 2) ? NULL : PQgetvalue(res, 0, f + 2);
				ssize_t pl = util_unhex(PQgetvalue(res, 0, 10), prev, sizeof(prev));
				row.prev_len = pl < 0 ? 0 : (size_t)pl;
				row.prev_hash = prev;
				row.hash_len = hash_len;
				row.hash = hash;
				audit_verify_row(v, &row);
			}
			/* anchors of rows the walk passed without seeing were removed from the middle */
			for (; k < n && sorted[k]->seq < seq; k++) {
				sorted[k]->status = "missing";
				snprintf(sorted[k]->reason, sizeof(sorted[k]->reason), "row %lld, anchored%s%s, is missing "
					 "from the log", (long long)sorted[k]->seq, sorted[k]->at[0] ? " on " : "", sorted[k]->at);
			}
			for (; k < n && sorted[k]->seq == seq; k++)
				audit_anchor_judge(sorted[k], hash, hash_len, v);
		} else if (st == PGRES_SINGLE_TUPLE) {
			last_seen = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		} else if (st != PGRES_TUPLES_OK) {
			log_error("audit verify: %s", PQresultErrorMessage(res));
			failed = true;
		}
		PQclear(res);
	}
	/* anchors past the last row: the log's tail was taken away */
	for (; k < n; k++) {
		sorted[k]->status = "truncated";
		char of[64] = "";
		if (sorted[k]->at[0] != '\0')
			snprintf(of, sizeof(of), " of %s", sorted[k]->at);
		if (last_seen == 0)
			snprintf(sorted[k]->reason, sizeof(sorted[k]->reason), "the log has no rows; the anchor%s names row %lld",
				 of, (long long)sorted[k]->seq);
		else
			snprintf(sorted[k]->reason, sizeof(sorted[k]->reason), "the log ends at row %lld; the anchor%s names "
				 "row %lld", (long long)last_seen, of, (long long)sorted[k]->seq);
	}
	*last_seen_r = last_seen;
	return failed ? -1 : 0;
}

/* The verification and its audit row. anchors (n of them, NULL for none) are judged too; then "ok" means
   the chain verifies and every anchor matches. */
static enum MHD_Result audit_verify_reply(struct request *r, struct audit_anchor *anchors, size_t n)
{
	const char *err;
	if (web_ctx_connect(r->web, r->ctx, &err) < 0)
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
	struct audit_anchor **sorted = xcalloc(n ? n : 1, sizeof(*sorted));
	for (size_t i = 0; i < n; i++)
		sorted[i] = &anchors[i];
	qsort(sorted, n, sizeof(*sorted), audit_anchor_cmp);
	struct audit_verify v;
	int64_t last_seen = 0;
	int walked = audit_verify_walk(r->ctx->db, &v, sorted, n, &last_seen);
	free(sorted);
	if (walked < 0)
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the audit log", 0);
	size_t matched = 0;
	for (size_t i = 0; i < n; i++)
		matched += strcmp(anchors[i].status, "match") == 0;
	bool ok = !v.broken && matched == n;
	json_object *o = json_object_new_object();
	char head[65] = "";
	util_hex(v.last_hash, v.last_len, head);
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "rows", json_object_new_int64(v.rows));
	json_object_object_add(o, "head_seq", json_object_new_int64(v.last_seq));
	json_object_object_add(o, "head_hash", json_object_new_string(head));
	if (v.broken) {
		json_object_object_add(o, "broken_seq", json_object_new_int64(v.broken_seq));
		json_object_object_add(o, "reason", json_object_new_string(v.reason));
	}
	/* without anchors the answer (and its audit row) is what it always was */
	json_object *details;
	if (anchors == NULL) {
		details = json_object_get(o);
	} else {
		details = json_object_new_object();
		json_object_object_foreach(o, key, val)
			json_object_object_add(details, key, json_object_get(val));
		json_object *list = json_object_new_array(), *failed = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			struct audit_anchor *a = &anchors[i];
			json_object *j = json_object_new_object();
			json_object_object_add(j, "seq", json_object_new_int64(a->seq));
			json_object_object_add(j, "hash", json_object_new_string(a->hex));
			if (a->at[0] != '\0')
				json_object_object_add(j, "at", json_object_new_string(a->at));
			json_object_object_add(j, "ok", json_object_new_boolean(strcmp(a->status, "match") == 0));
			json_object_object_add(j, "status", json_object_new_string(a->status));
			if (a->reason[0] != '\0')
				json_object_object_add(j, "reason", json_object_new_string(a->reason));
			json_object_array_add(list, j);
			/* the audit row names the failures (a few), not every anchor */
			if (strcmp(a->status, "match") != 0 && json_object_array_length(failed) < 20) {
				json_object *fj = json_object_new_object();
				json_object_object_add(fj, "seq", json_object_new_int64(a->seq));
				json_object_object_add(fj, "status", json_object_new_string(a->status));
				json_object_array_add(failed, fj);
			}
		}
		json_object_object_add(o, "chain_ok", json_object_new_boolean(!v.broken));
		json_object_object_add(o, "log_ends_at", json_object_new_int64(last_seen));
		json_object_object_add(o, "anchors_ok", json_object_new_boolean(matched == n));
		json_object_object_add(o, "anchors", list);
		json_object_object_add(details, "chain_ok", json_object_new_boolean(!v.broken));
		json_object_object_add(details, "anchors", json_object_new_int64((int64_t)n));
		json_object_object_add(details, "anchors_matched", json_object_new_int64((int64_t)matched));
		json_object_object_add(details, "anchors_failed", failed);
	}
	if (web_audit(r, "audit-verify", NULL, details) < 0) {
		json_object_put(o);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	}
	return web_reply_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result api_audit_verify(struct request *r)
{
	if (!web_role_allows(&r->who, "auditor"))
		return web_forbidden(r, "the audit log is for the auditor and admin roles");
	return audit_verify_reply(r, NULL, 0);
}

/* Reads one anchor {"seq": N, "hash": "64 hex", "at": "TIME"} of a request body; 0 or -1. */
static int audit_anchor_read(json_object *j, struct audit_anchor *a)
{
	json_object *seq, *hash, *at;
	if (!json_object_is_type(j, json_type_object) || !json_object_object_get_ex(j, "seq", &seq) ||
	    !json_object_is_type(seq, json_type_int) || !json_object_object_get_ex(j, "hash", &hash) ||
	    !json_object_is_type(hash, json_type_string))
		return -1;
	memset(a, 0, sizeof(*a));
	a->seq = json_object_get_int64(seq);
	const char *hex = json_object_get_string(hash);
	if (a->seq < 1 || a->seq == INT64_MAX || strlen(hex) != 64 || util_unhex(hex, a->hash, sizeof(a->hash)) != 32)
		return -1;
	util_hex(a->hash, sizeof(a->hash), a->hex);
	if (json_object_object_get_ex(j, "at", &at) && at != NULL) {
		/* it goes into messages: a time's characters only */
		const char *s = json_object_is_type(at, json_type_string) ? json_object_get_string(at) : NULL;
		if (s == NULL || strlen(s) >= sizeof(a->at) || strspn(s, "0123456789TZ:.+- ") != strlen(s))
			return -1;
		snprintf(a->at, sizeof(a->at), "%s", s);
	}
	return 0;
}

enum MHD_Result api_audit_verify_anchors(struct request *r)
{
	if (!web_role_allows(&r->who, "auditor"))
		return web_forbidden(r, "the audit log is for the auditor and admin roles");
	static const char usage[] = "the body must be {\"anchors\": [{\"seq\": N, \"hash\": \"64 hex digits\"[, \"at\": "
				    "TIME]}, ...]} with 1 to 2000 anchors";
	json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *body = r->body.len ? json_tokener_parse_ex(tok, (const char *)r->body.data, (int)r->body.len) : NULL;
	bool whole = body != NULL && json_tokener_get_parse_end(tok) == r->body.len;
	json_tokener_free(tok);
	json_object *list;
	size_t n = 0;
	if (!whole || !json_object_object_get_ex(body, "anchors", &list) || !json_object_is_type(list, json_type_array) ||
	    (n = json_object_array_length(list)) == 0 || n > AUDIT_ANCHORS_MAX) {
		json_object_put(body);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, usage, 0);
	}
	struct audit_anchor *anchors = xcalloc(n, sizeof(*anchors));
	for (size_t i = 0; i < n; i++)
		if (audit_anchor_read(json_object_array_get_idx(list, i), &anchors[i]) < 0) {
			free(anchors);
			json_object_put(body);
			char msg[sizeof(usage) + 48];
			snprintf(msg, sizeof(msg), "anchor %zu: %s", i + 1, usage);
			return web_reply_error(r, MHD_HTTP_BAD_REQUEST, msg, 0);
		}
	json_object_put(body);
	enum MHD_Result ret = audit_verify_reply(r, anchors, n);
	free(anchors);
	return ret;
}

enum MHD_Result api_audit_head(struct request *r)
{
	if (!web_role_allows(&r->who, "auditor"))
		return web_forbidden(r, "the audit log is for the auditor and admin roles");
	const char *err;
	if (web_ctx_connect(r->web, r->ctx, &err) < 0)
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
	/* the head is read first; the row that records the anchoring comes after it, for the next anchor */
	PGresult *res = db_query(r->ctx->db,
		"SELECT h.seq, encode(h.hash, 'hex'), to_char(clock_timestamp() AT TIME ZONE 'UTC', "
		"'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM (SELECT 1) AS one LEFT JOIN LATERAL "
		"(SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS h ON true", 0, NULL, &err);
	if (res == NULL) {
		log_error("audit head: %s", err);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the audit log", 0);
	}
	bool empty = PQgetisnull(res, 0, 0);
	int64_t seq = empty ? 0 : strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	char *hash = xstrdup(empty ? "" : PQgetvalue(res, 0, 1)), *at = xstrdup(PQgetvalue(res, 0, 2));
	PQclear(res);
	json_object *d = json_object_new_object();
	if (empty) {
		json_object_object_add(d, "empty", json_object_new_boolean(true));
	} else {
		json_object_object_add(d, "head_seq", json_object_new_int64(seq));
		json_object_object_add(d, "head_hash", json_object_new_string(hash));
	}
	enum MHD_Result ret;
	if (web_audit(r, "audit-anchor", NULL, d) < 0) {
		ret = web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	} else if (empty) {
		ret = web_reply_error(r, MHD_HTTP_CONFLICT, "the audit log had no rows to anchor (this request wrote the "
			"first): anchor again", 0);
	} else {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "seq", json_object_new_int64(seq));
		json_object_object_add(o, "hash", json_object_new_string(hash));
		json_object_object_add(o, "at", json_object_new_string(at));
		ret = web_reply_json(r, MHD_HTTP_OK, o);
	}
	free(hash);
	free(at);
	return ret;
}

/* mailvault-web: GET /api/v1/count and /api/v1/search. The officer's scope is part of the Xapian query
 * (nothing outside it is matched, counted or ranked) and of every SQL statement (row-level security);
 * the audit row, with the query, the scope and the count, is durable before the answer leaves. */
#include "web.h"
#include "db.h"
#include "log.h"
#include "pg-array.h"
#include "prefixes.h"
#include "query.h"
#include "util.h"
#include "xapian_shim.h"

#include <stdlib.h>
#include <string.h>

json_object *web_scope(struct request *r)
{
	if (r->who.all_accounts)
		return json_object_new_string("all accounts");
	return json_object_get(r->who.accounts);
}

/* The column an error message names ("... at column N"), or 0. */
static long search_error_column(const char *msg)
{
	const char *c = strstr(msg, "at column ");
	return c ? strtol(c + 10, NULL, 10) : 0;
}

/* Reads a number argument within [min, max]; def when absent; -1 if malformed. */
static int search_arg_uint(struct request *r, const char *name, uint64_t min, uint64_t max, uint64_t def,
			   uint64_t *v)
{
	const char *s = web_arg(r, name);
	if (s == NULL) {
		*v = def;
		return 0;
	}
	return util_parse_uint(s, min, max, v);
}

/* Runs the query in the officer's scope: fills total (and the page's document ids unless count_only);
   replies itself and returns -1 on any failure. */
static int search_run(struct request *r, const char *text, bool count_only, enum xs_sort sort, uint64_t offset,
		      uint64_t limit, json_object **scope_r, uint64_t **docids, size_t *ndocs, uint64_t *total,
		      enum MHD_Result *reply)
{
	char *perr = NULL;
	struct qnode *tree = query_parse(text, &perr);
	if (tree == NULL) {
		*reply = web_reply_error(r, MHD_HTTP_BAD_REQUEST, perr, search_error_column(perr));
		free(perr);
		return -1;
	}
	json_object *scope = web_scope(r);
	char *xerr = NULL;
	struct xs_db *xdb = web_ctx_index(r->web, r->ctx, &xerr);
	struct xs_query *q = xdb ? query_to_xapian(xdb, tree, &xerr) : NULL;
	query_free(&tree);
	if (q == NULL) {
		json_object_put(scope);
		*reply = xdb ? web_reply_error(r, MHD_HTTP_BAD_REQUEST, xerr, search_error_column(xerr))
			     : web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the index cannot be opened (has "
					       "mailvault-indexer run?)", 0);
		if (xdb == NULL)
			log_error("index: %s", xerr);
		free(xerr);
		return -1;
	}
	/* the scope is part of the query: nothing outside it is matched, counted or ranked (an officer of every
	   account needs no filter) */
	if (!r->who.all_accounts) {
		struct xs_query *filter = xs_query_none();
		for (size_t i = 0; i < json_object_array_length(r->who.accounts); i++)
			filter = xs_query_or(filter, xs_query_term(PFX_ACCOUNT, json_object_get_string(
									  json_object_array_get_idx(r->who.accounts, i))));
		q = xs_query_filter(q, filter);
	}
	enum xs_status st = count_only ? xs_count(xdb, q, total, &xerr)
				       : xs_search(xdb, q, sort, offset, limit, docids, ndocs, total, &xerr);
	xs_query_free(&q);
	if (st != XS_OK) {
		json_object_put(scope);
		/* a query too broad to answer exactly (a wildcard past its limit) is the query's fault */
		*reply = st == XS_ERR_QUERY ? web_reply_error(r, MHD_HTTP_BAD_REQUEST, xerr, search_error_column(xerr))
					    : web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "search failed", 0);
		if (st != XS_ERR_QUERY)
			log_error("search: %s", xerr);
		free(xerr);
		return -1;
	}
	*scope_r = scope;
	return 0;
}

/* Count and search share all but the answer. */
static enum MHD_Result search_serve(struct request *r, bool count_only)
{
	const char *text = web_arg(r, "q"), *err;
	if (text == NULL || *text == '\0')
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "q is required (e.g. q=from:@enron.com subject:budget)", 0);
	uint64_t limit = 50, offset = 0;
	enum xs_sort sort = XS_SORT_DATE_DESC;
	const char *sort_name = web_arg(r, "sort");
	if (!count_only) {
		if (search_arg_uint(r, "limit", 1, 100000, 50, &limit) < 0)
			return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "limit must be 1 to 100000", 0);
		if (search_arg_uint(r, "offset", 0, UINT32_MAX, 0, &offset) < 0)
			return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "offset must be a number", 0);
		if (sort_name == NULL || strcmp(sort_name, "-date") == 0)
			sort_name = "-date";
		else if (strcmp(sort_name, "date") == 0)
			sort = XS_SORT_DATE_ASC;
		else if (strcmp(sort_name, "relevance") == 0)
			sort = XS_SORT_RELEVANCE;
		else
			return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "sort must be date, -date or relevance", 0);
	}
	json_object *scope = NULL;
	uint64_t *docids = NULL, total = 0;
	size_t ndocs = 0;
	enum MHD_Result reply;
	if (search_run(r, text, count_only, sort, offset, limit, &scope, &docids, &ndocs, &total, &reply) < 0)
		return reply;
	/* audit before showing anything */
	json_object *d = json_object_new_object();
	json_object_object_add(d, "count", json_object_new_uint64(total));
	json_object_object_add(d, "scope", json_object_get(scope));
	if (!count_only) {
		json_object_object_add(d, "sort", json_object_new_string(sort_name));
		json_object_object_add(d, "limit", json_object_new_uint64(limit));
		json_object_object_add(d, "offset", json_object_new_uint64(offset));
	}
	json_object_put(scope);
	if (web_audit(r, count_only ? "count" : "search", text, d) < 0) {
		free(docids);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	}
	json_object *o = json_object_new_object();
	if (count_only) {
		json_object_object_add(o, "count", json_object_new_uint64(total));
		return web_reply_json(r, MHD_HTTP_OK, o);
	}
	if (web_begin_as(r, &err) < 0) {
		free(docids);
		json_object_put(o);
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
	}
	/* the page's metadata from PostgreSQL, through row-level security again */
	struct pg_array ids = PG_ARRAY_INIT;
	for (size_t i = 0; i < ndocs; i++)
		pg_array_add_int(&ids, (int64_t)docids[i]);
	const char *p[] = { pg_array_text(&ids) };
	/* in the order of the hits; a message row-level security hides is never shown */
	PGresult *res = db_query(r->ctx->db,
		"SELECT m.serial, to_char(m.date AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), m.from_addr, m.to_addr, "
		"m.cc_addr, m.subject, encode(m.sha256, 'hex'), m.size, l.account, l.folder "
		"FROM unnest($1::bigint[]) WITH ORDINALITY AS d(serial, n) JOIN messages m ON m.serial = d.serial "
		"LEFT JOIN LATERAL (SELECT a.name AS account, f.name AS folder FROM locations l "
		" JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id "
		" WHERE l.message_serial = m.serial ORDER BY l.id LIMIT 1) l ON true ORDER BY d.n", 1, p, &err);
	pg_array_free(&ids);
	web_end(r, res != NULL);
	if (res == NULL) {
		free(docids);
		json_object_put(o);
		log_error("search metadata: %s", err);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the results' metadata", 0);
	}
	json_object *results = json_object_new_array();
	static const char *keys[] = { "serial", "date", "from", "to", "cc", "subject", "sha256", "size", "account",
				      "folder" };
	for (int row = 0; row < PQntuples(res); row++) {
		json_object *m = json_object_new_object();
		for (int k = 0; k < 10; k++) {
			json_object *v = NULL;
			if (PQgetisnull(res, row, k))
				v = NULL;
			else if (k == 0 || k == 7)
				v = json_object_new_int64(strtoll(PQgetvalue(res, row, k), NULL, 10));
			else
				v = json_object_new_string(PQgetvalue(res, row, k));
			json_object_object_add(m, keys[k], v);
		}
		json_object_array_add(results, m);
	}
	PQclear(res);
	free(docids);
	json_object_object_add(o, "total", json_object_new_uint64(total));
	json_object_object_add(o, "offset", json_object_new_uint64(offset));
	json_object_object_add(o, "results", results);
	return web_reply_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result api_count(struct request *r)
{
	return search_serve(r, true);
}

enum MHD_Result api_search(struct request *r)
{
	return search_serve(r, false);
}

int web_search_all(struct request *r, const char *text, uint64_t max, uint64_t **docids, size_t *n, uint64_t *total,
		   enum MHD_Result *reply)
{
	json_object *scope = NULL;
	if (search_run(r, text, false, XS_SORT_DATE_ASC, 0, max, &scope, docids, n, total, reply) < 0)
		return -1;
	json_object_put(scope);
	return 0;
}

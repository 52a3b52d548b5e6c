/* mailvault-web: retention policies (role admin), matters and legal holds (role legal), the disposal report,
 * and erasure requests (four eyes). The service decides who may act (by role and scope); the database
 * decides what may change at all (triggers of sql/006_retention.sql: a locked policy only grows, holds and
 * matters are records). Each change and its audit row commit in one transaction. */
#include "web.h"
#include "db.h"
#include "json-out.h"
#include "log.h"
#include "pg-array.h"
#include "query.h"
#include "util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define RT_ERASE_MAX 100000  /* messages one erasure request may name */
#define RT_SHOW_MAX 1000     /* messages listed by a show */

/* --- small helpers --- */

/* The request's JSON body as an object, or NULL after replying 400. */
static json_object *rt_body(struct request *r, enum MHD_Result *reply)
{
	json_object *o = NULL;
	if (r->body.len > 0) {
		buf_append(&r->body, "", 1); /* NUL-terminate */
		o = json_tokener_parse((const char *)r->body.data);
	}
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*reply = web_reply_error(r, MHD_HTTP_BAD_REQUEST, "the request body must be a JSON object", 0);
		return NULL;
	}
	return o;
}

/* A string member, or NULL when absent or null; *bad set when present and not a string. */
static const char *rt_str(json_object *o, const char *key, bool *bad)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*bad = true;
		return NULL;
	}
	return json_object_get_string(v);
}

/* A boolean member (false when absent); *bad set when present and not a boolean. */
static bool rt_bool(json_object *o, const char *key, bool *bad)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return false;
	if (!json_object_is_type(v, json_type_boolean)) {
		*bad = true;
		return false;
	}
	return json_object_get_boolean(v);
}

/* True if s is valid UTF-8 of at most max bytes with no control characters but tab. */
static bool rt_text_ok(const char *s, size_t max)
{
	size_t len = strlen(s);
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len;) {
		size_t n = util_utf8_seq_len((const unsigned char *)s + i, len - i);
		if (n == 0)
			return false;
		if (n == 1 && ((unsigned char)s[i] < 0x20 && s[i] != '\t'))
			return false;
		i += n;
	}
	return true;
}

/* "7y", "18m", "12w", "400d" as a PostgreSQL interval ("7 years"); "forever" as NULL with *forever. 0 or -1. */
static int rt_keep(const char *s, char *out, size_t cap, bool *forever)
{
	*forever = false;
	if (strcmp(s, "forever") == 0) {
		*forever = true;
		return 0;
	}
	size_t n = strspn(s, "0123456789");
	uint64_t v;
	char num[8];
	if (n == 0 || n > 5 || s[n] == '\0' || s[n + 1] != '\0')
		return -1;
	memcpy(num, s, n);
	num[n] = '\0';
	if (util_parse_uint(num, 1, 36500, &v) < 0)
		return -1;
	const char *unit = s[n] == 'y' ? "years" : s[n] == 'm' ? "months" : s[n] == 'w' ? "weeks" : s[n] == 'd' ? "days" : NULL;
	if (unit == NULL || (s[n] == 'y' && v > 1000))
		return -1;
	snprintf(out, cap, "%llu %s", (unsigned long long)v, unit);
	return 0;
}

/* The message of a PostgreSQL error as people should read it (without "mailvault: "). */
static const char *rt_pg_message(const PGresult *res)
{
	const char *m = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (m == NULL)
		return "the archive database refused the change";
	return strncmp(m, "mailvault: ", 11) == 0 ? m + 11 : m;
}

/* Runs one statement inside the request's transaction. On failure rolls back, replies (403 for what the
   database refuses on principle, 409 for a conflict, 400 for a bad value, 500 otherwise), audits a refusal
   and returns NULL. */
static PGresult *rt_sql(struct request *r, const char *sql, int n, const char *const *p, enum MHD_Result *reply)
{
	PGresult *res = PQexecParams(r->ctx->db, sql, n, NULL, p, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return res;
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	char msg[512];
	snprintf(msg, sizeof(msg), "%s", rt_pg_message(res));
	web_end(r, false);
	unsigned status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	if (state != NULL && strcmp(state, "42501") == 0)
		status = MHD_HTTP_FORBIDDEN;
	else if (state != NULL && (strcmp(state, "23505") == 0 || strcmp(state, "23514") == 0 || strcmp(state, "02000") == 0 ||
				   strcmp(state, "P0002") == 0))
		status = MHD_HTTP_CONFLICT;
	else if (state != NULL && strncmp(state, "22", 2) == 0)
		status = MHD_HTTP_BAD_REQUEST;
	if (status == MHD_HTTP_INTERNAL_SERVER_ERROR)
		log_error("%s %s: %s", r->method, r->url, PQresultErrorMessage(res));
	PQclear(res);
	if (status == MHD_HTTP_FORBIDDEN) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "reason", json_text(msg));
		json_object_object_add(d, "refused_by", json_object_new_string("database"));
		char target[257];
		snprintf(target, sizeof(target), "%s", r->url);
		if (web_audit(r, "denied", target, d) < 0) {
			*reply = web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
			return NULL;
		}
	}
	*reply = web_reply_error(r, status, status == MHD_HTTP_INTERNAL_SERVER_ERROR ? "the archive database failed" : msg, 0);
	return NULL;
}

/* The audit row of a change, in the change's own transaction. Takes details. 0, or -1 after replying. */
static int rt_audit(struct request *r, const char *action, const char *target, json_object *details,
		    enum MHD_Result *reply)
{
	const char *d = json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN);
	char *dtext = util_utf8_sanitize(d, strlen(d)), *t = target ? util_utf8_sanitize(target, strlen(target)) : NULL;
	const char *p[] = { r->who.name, r->who.via, r->client, action, t, dtext };
	PGresult *res = rt_sql(r, "SELECT mailvault_audit_as($1, $2, $3, $4, $5, $6::jsonb)", 6, p, reply);
	free(dtext);
	free(t);
	json_object_put(details);
	if (res == NULL)
		return -1;
	PQclear(res);
	r->audited = true;
	return 0;
}

/* Commits the change; replies 500 and returns -1 if the commit failed. */
static int rt_commit(struct request *r, enum MHD_Result *reply)
{
	if (web_end(r, true) < 0) {
		*reply = web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "the change could not be committed", 0);
		return -1;
	}
	return 0;
}

/* Connects and begins the request's transaction as its officer. 0, or -1 after replying 503. */
static int rt_begin(struct request *r, enum MHD_Result *reply)
{
	const char *err;
	if (web_ctx_connect(r->web, r->ctx, &err) < 0 || web_begin_as(r, &err) < 0) {
		*reply = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
		return -1;
	}
	return 0;
}

/* A cell as JSON: NULL as null, columns listed in ints as numbers, booleans "t"/"f" as booleans. */
static json_object *rt_cell(PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return NULL;
	const char *v = PQgetvalue(res, row, col);
	Oid type = PQftype(res, col);
	if (type == 20 || type == 23 || type == 21) /* int8, int4, int2 */
		return json_object_new_int64(strtoll(v, NULL, 10));
	if (type == 16) /* bool */
		return json_object_new_boolean(v[0] == 't');
	if (type == 114 || type == 3802) /* json, jsonb: arrays of names */
		return json_tokener_parse(v);
	return json_text(v);
}

/* Adds row i of res to o, the column names as keys. Returns o. */
static json_object *rt_add_row(json_object *o, PGresult *res, int i)
{
	for (int c = 0; c < PQnfields(res); c++)
		json_object_object_add(o, PQfname(res, c), rt_cell(res, i, c));
	return o;
}

/* Every row of res as an object with the column names as keys. */
static json_object *rt_rows(PGresult *res)
{
	json_object *a = json_object_new_array();
	for (int i = 0; i < PQntuples(res); i++)
		json_object_array_add(a, rt_add_row(json_object_new_object(), res, i));
	return a;
}

/* Writes the audit row of a read (takes details), then replies o; 500 if the row cannot be written. */
static enum MHD_Result rt_reply_audited(struct request *r, json_object *o, const char *action, const char *target,
					json_object *details)
{
	if (web_audit(r, action, target, details) < 0) {
		json_object_put(o);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	}
	return web_reply_json(r, MHD_HTTP_OK, o);
}

/* A listing: the rows of sql under key, audited as action (takes details). */
static enum MHD_Result rt_list(struct request *r, const char *sql, int n, const char *const *p, const char *key,
			       const char *action, json_object *details)
{
	enum MHD_Result reply;
	PGresult *res = NULL;
	if (rt_begin(r, &reply) < 0 || (res = rt_sql(r, sql, n, p, &reply)) == NULL) {
		json_object_put(details);
		return reply;
	}
	web_end(r, true);
	json_object *o = json_object_new_object();
	json_object_object_add(o, key, rt_rows(res));
	PQclear(res);
	return rt_reply_audited(r, o, action, NULL, details);
}

/* The accounts scope of a body: "all": true, or "accounts": [names], resolved to ids under the officer's
   scope (an account they cannot see is unknown to them). Fills ids (a bigint[] literal) and names (a JSON
   array, new). 0, or -1 after replying (and rolling back). */
static int rt_accounts(struct request *r, json_object *body, bool *all, struct pg_array *ids, json_object **names,
		       enum MHD_Result *reply)
{
	bool bad = false;
	*all = rt_bool(body, "all", &bad);
	json_object *list = NULL;
	bool has_list = json_object_object_get_ex(body, "accounts", &list) && list != NULL;
	if (bad || (has_list && !json_object_is_type(list, json_type_array))) {
		web_end(r, false);
		*reply = web_reply_error(r, MHD_HTTP_BAD_REQUEST, "accounts is a list of account names, all a boolean", 0);
		return -1;
	}
	if (*all == (has_list && json_object_array_length(list) > 0)) {
		web_end(r, false);
		*reply = web_reply_error(r, MHD_HTTP_BAD_REQUEST, "give either the accounts (--accounts A,B) or all (--all)", 0);
		return -1;
	}
	if (*all) {
		if (!r->who.all_accounts) {
			web_end(r, false);
			*reply = web_forbidden(r, "only an officer who sees every account may cover all of them");
			return -1;
		}
		*names = json_object_new_string("all");
		return 0;
	}
	struct pg_array want = PG_ARRAY_INIT;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		json_object *e = json_object_array_get_idx(list, i);
		if (!json_object_is_type(e, json_type_string) || !config_name_valid(json_object_get_string(e))) {
			pg_array_free(&want);
			web_end(r, false);
			*reply = web_reply_error(r, MHD_HTTP_BAD_REQUEST, "an account name is letters, digits and . _ @ + -", 0);
			return -1;
		}
		pg_array_add_str(&want, json_object_get_string(e));
	}
	const char *p[] = { pg_array_text(&want) };
	PGresult *res = rt_sql(r, "SELECT a.id, a.name FROM accounts a WHERE a.name = ANY ($1::text[]) ORDER BY a.name", 1, p,
			       reply);
	if (res == NULL) {
		pg_array_free(&want);
		return -1;
	}
	if ((size_t)PQntuples(res) != json_object_array_length(list)) {
		/* the first one missing */
		const char *missing = "?";
		for (size_t i = 0; i < json_object_array_length(list) && strcmp(missing, "?") == 0; i++) {
			const char *n = json_object_get_string(json_object_array_get_idx(list, i));
			bool found = false;
			for (int k = 0; k < PQntuples(res); k++)
				found = found || strcmp(PQgetvalue(res, k, 1), n) == 0;
			if (!found)
				missing = n;
		}
		char msg[256];
		snprintf(msg, sizeof(msg), "no account %s among those you see (or it is named twice)", missing);
		PQclear(res);
		pg_array_free(&want);
		web_end(r, false);
		*reply = web_reply_error(r, MHD_HTTP_BAD_REQUEST, msg, 0);
		return -1;
	}
	*names = json_object_new_array();
	for (int k = 0; k < PQntuples(res); k++) {
		pg_array_add_int(ids, strtoll(PQgetvalue(res, k, 0), NULL, 10));
		json_object_array_add(*names, json_object_new_string(PQgetvalue(res, k, 1)));
	}
	PQclear(res);
	pg_array_free(&want);
	return 0;
}

/* Checks that a query parses (the indexer evaluates it later). 0, or -1 after replying 400. */
static int rt_query_ok(struct request *r, const char *q, enum MHD_Result *reply)
{
	char *perr = NULL;
	struct qnode *tree = query_parse(q, &perr);
	if (tree == NULL) {
		char msg[512];
		snprintf(msg, sizeof(msg), "the query does not parse: %s", perr ? perr : "?");
		free(perr);
		*reply = web_reply_error(r, MHD_HTTP_BAD_REQUEST, msg, 0);
		return -1;
	}
	query_free(&tree);
	return 0;
}

/* The officer's "sees every account" as an SQL boolean parameter (for RT_SEES and RT_ITEM_VISIBLE). */
static const char *rt_sees_all(const struct request *r)
{
	return r->who.all_accounts ? "true" : "false";
}

/* The ids of the accounts the officer sees: the accounts table answers only those (row-level security). */
#define RT_SEEN_ACCOUNTS "ARRAY(SELECT a.id FROM accounts a)"
/* True (SQL) if the officer sees every account (all, a boolean parameter) or one of ids (an integer[]). */
#define RT_SEES_ANY(ids, all) "(" all "::boolean OR " ids " && " RT_SEEN_ACCOUNTS ")"
/* True (SQL) if the officer sees the hold or policy x: it covers every account, or one they see. */
#define RT_SEES(x, all) "(" x ".all_accounts OR " RT_SEES_ANY(x ".account_ids", all) ")"

/* Whether the officer sees every account the hold or policy called name covers (all of them for one on all
   accounts): one who does not may not release, change, lock or remove it. 0 (also when there is no such
   row: the caller answers 404), or -1 after rolling back and replying 403. */
static int rt_scope_covers(struct request *r, bool hold, const char *name, enum MHD_Result *reply)
{
	const char *p[] = { name, rt_sees_all(r) };
	/* one that covers none of the officer's accounts is unknown to them, as a missing one is (RT_SEES): the
	   statement that follows does not find it either */
#define RT_SCOPE_SQL(table) \
	"SELECT x.all_accounts, x.account_ids <@ " RT_SEEN_ACCOUNTS " FROM " table " x WHERE x.name = $1 AND " \
	RT_SEES("x", "$2")
	PGresult *res = rt_sql(r, hold ? RT_SCOPE_SQL("holds") : RT_SCOPE_SQL("policies"), 2, p, reply);
#undef RT_SCOPE_SQL
	if (res == NULL)
		return -1;
	bool seen = PQntuples(res) == 1;
	bool all = seen && strcmp(PQgetvalue(res, 0, 0), "t") == 0, covered = seen && strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	PQclear(res);
	if (!seen || (all ? r->who.all_accounts : covered))
		return 0;
	web_end(r, false);
	*reply = web_forbidden(r, hold ? "this hold covers accounts you do not see: an officer who sees them releases it"
				       : "this policy covers accounts you do not see: an officer who sees them changes it");
	return -1;
}

/* Splits "/NAME[/ACTION]" after a collection's path into name and action ("" when none). -1 if malformed. */
static int rt_split(const char *rest, char *name, size_t cap, const char **action)
{
	if (*rest != '/')
		return -1;
	rest++;
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n == 0 || n >= cap)
		return -1;
	memcpy(name, rest, n);
	name[n] = '\0';
	*action = slash ? slash + 1 : "";
	return 0;
}

/* --- policies (role admin to change; every officer may read those that cover an account they see) --- */


#define POLICY_COLUMNS \
	"p.name, CASE WHEN p.keep IS NULL THEN 'forever' ELSE p.keep::text END AS keep, " \
	"CASE WHEN p.all_accounts THEN to_jsonb('all'::text) ELSE to_jsonb(ARRAY(SELECT a.name FROM accounts a " \
	"WHERE a.id = ANY (p.account_ids) ORDER BY a.name)) END AS accounts, p.folder_pattern AS folders, p.query, " \
	"p.locked, p.locked_at::text, p.locked_by, p.created_by, p.created_at::text, p.changed_by, p.changed_at::text, " \
	"p.covered_through::text AS query_evaluated_through"

static enum MHD_Result policy_list(struct request *r)
{
	const char *p[] = { rt_sees_all(r) };
	return rt_list(r, "SELECT " POLICY_COLUMNS ", (SELECT count(*) FROM messages m WHERE m.retain_policy = p.name) "
		       "AS deciding FROM policies p WHERE " RT_SEES("p", "$1") " ORDER BY p.name", 1, p, "policies",
		       "policy-list", NULL);
}

static enum MHD_Result policy_show(struct request *r, const char *name)
{
	enum MHD_Result reply;
	const char *p[] = { name, rt_sees_all(r) };
	if (rt_begin(r, &reply) < 0)
		return reply;
	PGresult *res = rt_sql(r, "SELECT " POLICY_COLUMNS " FROM policies p WHERE p.name = $1 AND " RT_SEES("p", "$2"), 2, p,
			       &reply);
	if (res == NULL)
		return reply;
	if (PQntuples(res) == 0) {
		PQclear(res);
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such policy", 0);
	}
	json_object *o = rt_add_row(json_object_new_object(), res, 0);
	PQclear(res);
	/* what it covers now, among the messages this officer sees */
	res = rt_sql(r, "SELECT count(*) AS covered, coalesce(sum(m.size), 0)::bigint AS bytes, "
		     "count(*) FILTER (WHERE m.retain_policy = p.name) AS deciding, "
		     "count(*) FILTER (WHERE m.retain_until <= now()) AS expired, "
		     "min(m.retain_until)::text AS first_expiry "
		     "FROM policies p JOIN messages m ON mailvault_policy_covers(p, m.serial) WHERE p.name = $1", 1, p, &reply);
	if (res == NULL) {
		json_object_put(o);
		return reply;
	}
	rt_add_row(o, res, 0);
	PQclear(res);
	web_end(r, true);
	return rt_reply_audited(r, o, "policy-show", name, NULL);
}

/* The number of messages the statement just run made eligible sooner (the policies' trigger counts them). */
static long long rt_sooner(struct request *r, enum MHD_Result *reply)
{
	PGresult *res = rt_sql(r, "SELECT coalesce(nullif(current_setting('mailvault.sooner', true), ''), '0')::bigint", 0,
			       NULL, reply);
	if (res == NULL)
		return -1;
	long long n = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return n;
}

/* After a change to policies: commits it with its audit row, or, when it makes messages eligible sooner
   and confirm was not given, rolls it back and says how many (409 with "sooner"). */
static enum MHD_Result policy_finish(struct request *r, const char *action, const char *name, json_object *d,
				     bool confirm)
{
	enum MHD_Result reply;
	long long sooner = rt_sooner(r, &reply);
	if (sooner < 0) {
		json_object_put(d);
		return reply;
	}
	if (sooner > 0 && !confirm) {
		web_end(r, false);
		json_object_put(d);
		json_object *o = json_object_new_object();
		char msg[200];
		snprintf(msg, sizeof(msg), "this change makes %lld message%s eligible for disposal sooner: confirm it "
			 "(--confirm) to go ahead", sooner, sooner == 1 ? "" : "s");
		json_object_object_add(o, "error", json_object_new_string(msg));
		json_object_object_add(o, "sooner", json_object_new_int64(sooner));
		json_object_object_add(o, "needs_confirm", json_object_new_boolean(true));
		return web_reply_json(r, MHD_HTTP_CONFLICT, o);
	}
	json_object_object_add(d, "sooner", json_object_new_int64(sooner));
	json_object_object_add(d, "confirmed", json_object_new_boolean(confirm));
	if (rt_audit(r, action, name, json_object_get(d), &reply) < 0 || rt_commit(r, &reply) < 0) {
		json_object_put(d);
		return reply;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "policy", json_object_new_string(name));
	json_object_object_add(o, "sooner", json_object_new_int64(sooner));
	json_object_object_add(o, "details", d);
	return web_reply_json(r, MHD_HTTP_OK, o);
}

/* POST /policies (add) and POST /policies/NAME (set): the same fields; absent ones stay as they are on set. */
static enum MHD_Result policy_write(struct request *r, const char *existing)
{
	enum MHD_Result reply;
	json_object *b = rt_body(r, &reply);
	if (b == NULL)
		return reply;
	bool bad = false;
	const char *name = existing ? existing : rt_str(b, "name", &bad), *keep = rt_str(b, "keep", &bad),
		   *folders = rt_str(b, "folders", &bad), *query = rt_str(b, "query", &bad);
	bool confirm = rt_bool(b, "confirm", &bad);
	bool scope_given = json_object_object_get_ex(b, "accounts", NULL) || json_object_object_get_ex(b, "all", NULL);
	char interval[48] = "";
	bool forever = false;
	const char *why = NULL;
	if (bad)
		why = "name, keep, folders and query are strings; all and confirm booleans";
	else if (name == NULL || !config_name_valid(name))
		why = "a policy needs a name: letters, digits and . _ @ + -";
	else if (existing == NULL && keep == NULL)
		why = "a policy needs --keep DURATION (e.g. 7y, 18m, 400d) or --keep forever";
	else if (keep != NULL && rt_keep(keep, interval, sizeof(interval), &forever) < 0)
		why = "keep is a number of years, months, weeks or days (7y, 18m, 12w, 400d) or forever";
	else if (existing == NULL && !scope_given)
		why = "a policy covers --accounts A,B or --all";
	else if (folders != NULL && !rt_text_ok(folders, 1000))
		why = "folders is an IMAP LIST pattern (e.g. INBOX or Sent*)";
	else if (query != NULL && !rt_text_ok(query, 4000))
		why = "the query is empty, too long or not UTF-8";
	if (why != NULL) {
		json_object_put(b);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, why, 0);
	}
	if (query != NULL && rt_query_ok(r, query, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	if (rt_begin(r, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	if (existing != NULL && rt_scope_covers(r, false, existing, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	bool all = false;
	struct pg_array ids = PG_ARRAY_INIT;
	json_object *names = NULL;
	if (scope_given && rt_accounts(r, b, &all, &ids, &names, &reply) < 0) {
		json_object_put(b);
		pg_array_free(&ids);
		return reply;
	}
	const char *keep_p = forever ? NULL : (interval[0] ? interval : NULL);
	const char *p[] = { name, keep_p, scope_given ? (all ? "t" : "f") : NULL, scope_given ? pg_array_text(&ids) : NULL,
			    folders, query, r->who.name, keep != NULL ? "t" : "f", rt_sees_all(r) };
	PGresult *res;
	if (existing == NULL)
		res = rt_sql(r, "INSERT INTO policies (name, keep, all_accounts, account_ids, folder_pattern, query, created_by) "
			     "VALUES ($1, $2::interval, $3::boolean, $4::integer[], $5, $6, $7) RETURNING id", 7, p, &reply);
	else
		res = rt_sql(r, "UPDATE policies SET keep = CASE WHEN $8::boolean THEN $2::interval ELSE keep END, "
			     "all_accounts = coalesce($3::boolean, all_accounts), account_ids = coalesce($4::integer[], account_ids), "
			     "folder_pattern = coalesce($5, folder_pattern), query = coalesce($6, query), "
			     "changed_by = $7, changed_at = now() WHERE name = $1 AND " RT_SEES("policies", "$9") " RETURNING id",
			     9, p, &reply);
	pg_array_free(&ids);
	if (res == NULL) {
		json_object_put(names);
		json_object_put(b);
		return reply;
	}
	bool found = PQntuples(res) == 1;
	PQclear(res);
	if (!found) {
		json_object_put(names);
		json_object_put(b);
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such policy", 0);
	}
	json_object *d = json_object_new_object();
	json_object_object_add(d, "keep", keep ? json_object_new_string(keep) : NULL);
	json_object_object_add(d, "accounts", names);
	json_object_object_add(d, "folders", folders ? json_text(folders) : NULL);
	json_object_object_add(d, "query", query ? json_text(query) : NULL);
	/* name may point into the body: the body goes last */
	enum MHD_Result ret = policy_finish(r, existing ? "policy-set" : "policy-add", name, d, confirm);
	json_object_put(b);
	return ret;
}

static enum MHD_Result policy_lock_or_remove(struct request *r, const char *name, bool lock)
{
	enum MHD_Result reply;
	bool confirm = false, bad = false;
	if (r->body.len > 0) {
		json_object *b = rt_body(r, &reply);
		if (b == NULL)
			return reply;
		confirm = rt_bool(b, "confirm", &bad);
		json_object_put(b);
		if (bad)
			return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "confirm is a boolean", 0);
	}
	if (rt_begin(r, &reply) < 0 || rt_scope_covers(r, false, name, &reply) < 0)
		return reply;
	const char *p[] = { name, rt_sees_all(r), r->who.name };
	PGresult *res = lock ? rt_sql(r, "UPDATE policies SET locked = true, locked_at = now(), locked_by = $3 WHERE name = $1 "
				      "AND " RT_SEES("policies", "$2") " AND NOT locked RETURNING id", 3, p, &reply)
			     : rt_sql(r, "DELETE FROM policies WHERE name = $1 AND " RT_SEES("policies", "$2") " RETURNING id", 2, p,
				      &reply);
	if (res == NULL)
		return reply;
	bool found = PQntuples(res) == 1;
	PQclear(res);
	if (!found) {
		web_end(r, false);
		return web_reply_error(r, lock ? MHD_HTTP_CONFLICT : MHD_HTTP_NOT_FOUND,
				       lock ? "no such policy, or it is locked already" : "no such policy", 0);
	}
	return policy_finish(r, lock ? "policy-lock" : "policy-remove", name, json_object_new_object(), confirm);
}

static enum MHD_Result policy_route(struct request *r, const char *rest, bool get, bool post)
{
	char name[160];
	const char *action = "";
	if (*rest == '\0')
		return get ? policy_list(r) : post ? (web_role_allows(&r->who, "admin") ? policy_write(r, NULL)
							     : web_forbidden(r, "retention policies are set by the admin role"))
			   : web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or POST", 0);
	if (rt_split(rest, name, sizeof(name), &action) < 0 || !config_name_valid(name))
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such policy", 0);
	if (get && *action == '\0')
		return policy_show(r, name);
	if (!post)
		return web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST", 0);
	if (!web_role_allows(&r->who, "admin"))
		return web_forbidden(r, "retention policies are set by the admin role");
	if (*action == '\0')
		return policy_write(r, name);
	if (strcmp(action, "lock") == 0)
		return policy_lock_or_remove(r, name, true);
	if (strcmp(action, "remove") == 0)
		return policy_lock_or_remove(r, name, false);
	return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such API path", 0);
}

/* --- matters and holds (role legal or admin to change; every officer may read) --- */

static enum MHD_Result matter_list(struct request *r)
{
	return rt_list(r, "SELECT m.name, m.description, m.created_by, m.created_at::text, m.closed_by, m.closed_at::text, "
		       "(SELECT count(*) FROM holds h WHERE h.matter_id = m.id AND h.released_at IS NULL) AS active_holds, "
		       "(SELECT count(*) FROM holds h WHERE h.matter_id = m.id) AS holds FROM matters m ORDER BY m.name",
		       0, NULL, "matters", "matter-list", NULL);
}

static enum MHD_Result matter_add(struct request *r)
{
	enum MHD_Result reply;
	json_object *b = rt_body(r, &reply);
	if (b == NULL)
		return reply;
	bool bad = false;
	const char *name = rt_str(b, "name", &bad), *desc = rt_str(b, "description", &bad);
	if (bad || name == NULL || !config_name_valid(name) || desc == NULL || !rt_text_ok(desc, 4000)) {
		json_object_put(b);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "a matter needs a name (letters, digits and . _ @ + -) and "
				       "--description TEXT", 0);
	}
	const char *p[] = { name, desc, r->who.name };
	PGresult *res = NULL;
	if (rt_begin(r, &reply) < 0 ||
	    (res = rt_sql(r, "INSERT INTO matters (name, description, created_by) VALUES ($1, $2, $3)", 3, p, &reply)) == NULL) {
		json_object_put(b);
		return reply;
	}
	PQclear(res);
	json_object *d = json_object_new_object();
	json_object_object_add(d, "description", json_text(desc));
	if (rt_audit(r, "matter-add", name, d, &reply) < 0 || rt_commit(r, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "matter", json_object_new_string(name));
	json_object_put(b);
	return web_reply_json(r, MHD_HTTP_OK, o);
}

static enum MHD_Result matter_close(struct request *r, const char *name)
{
	enum MHD_Result reply;
	const char *p[] = { name, r->who.name };
	PGresult *res = NULL;
	if (rt_begin(r, &reply) < 0 ||
	    (res = rt_sql(r, "UPDATE matters SET closed_at = now(), closed_by = $2 WHERE name = $1 AND closed_at IS NULL "
			  "RETURNING id", 2, p, &reply)) == NULL)
		return reply;
	bool found = PQntuples(res) == 1;
	PQclear(res);
	if (!found) {
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such open matter", 0);
	}
	if (rt_audit(r, "matter-close", name, json_object_new_object(), &reply) < 0 || rt_commit(r, &reply) < 0)
		return reply;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "matter", json_object_new_string(name));
	json_object_object_add(o, "closed", json_object_new_boolean(true));
	return web_reply_json(r, MHD_HTTP_OK, o);
}

#define HOLD_COLUMNS \
	"h.name, mt.name AS matter, h.reason, CASE WHEN h.all_accounts THEN to_jsonb('all'::text) ELSE " \
	"to_jsonb(ARRAY(SELECT a.name FROM accounts a WHERE a.id = ANY (h.account_ids) ORDER BY a.name)) END AS accounts, " \
	"to_char(h.date_from AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS \"from\", " \
	"to_char((h.date_to AT TIME ZONE 'UTC') - interval '1 day', 'YYYY-MM-DD') AS \"to\", h.query, h.placed_by, " \
	"h.placed_at::text, h.released_by, h.released_at::text, h.release_reason, " \
	"CASE WHEN h.released_at IS NULL THEN 'active' WHEN h.released_at + s.release_grace > now() THEN 'released, in grace' " \
	"ELSE 'released' END AS status, (h.released_at + s.release_grace)::text AS grace_ends, " \
	"h.covered_through::text AS query_evaluated_through"

static enum MHD_Result hold_list(struct request *r)
{
	const char *matter = web_arg(r, "matter");
	const char *p[] = { matter, rt_sees_all(r) };
	json_object *d = json_object_new_object();
	json_object_object_add(d, "matter", matter ? json_text(matter) : NULL);
	return rt_list(r, "SELECT " HOLD_COLUMNS " FROM holds h JOIN matters mt ON mt.id = h.matter_id, retention_settings s "
		       "WHERE ($1::text IS NULL OR mt.name = $1) AND " RT_SEES("h", "$2") " ORDER BY h.placed_at, h.name", 2, p,
		       "holds", "hold-list", d);
}

static enum MHD_Result hold_show(struct request *r, const char *name)
{
	enum MHD_Result reply;
	uint64_t limit = 20;
	const char *ls = web_arg(r, "limit");
	if (ls != NULL && util_parse_uint(ls, 0, RT_SHOW_MAX, &limit) < 0)
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "limit must be 0 to 1000", 0);
	char lim[24];
	snprintf(lim, sizeof(lim), "%llu", (unsigned long long)limit);
	const char *p[] = { name, lim }, *pv[] = { name, rt_sees_all(r) };
	if (rt_begin(r, &reply) < 0)
		return reply;
	PGresult *res = rt_sql(r, "SELECT " HOLD_COLUMNS " FROM holds h JOIN matters mt ON mt.id = h.matter_id, retention_settings s "
			       "WHERE h.name = $1 AND " RT_SEES("h", "$2"), 2, pv, &reply);
	if (res == NULL)
		return reply;
	if (PQntuples(res) == 0) {
		PQclear(res);
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such hold", 0);
	}
	json_object *o = rt_add_row(json_object_new_object(), res, 0);
	PQclear(res);
	/* what it covers now, among the messages this officer sees */
	/* (one statement for every message: the database's own judgement of what the hold covers, whatever its state) */
	res = rt_sql(r, "WITH v AS MATERIALIZED (SELECT m.serial, m.size, m.date, m.subject, m.retain_until, m.ingested_at, "
		     "m.indexed_at FROM messages m), "
		     "a AS (SELECT array_agg(serial) s, array_agg(date) d, array_agg(ingested_at) g, array_agg(indexed_at) x FROM v), "
		     "c AS (SELECT v.* FROM v WHERE v.serial IN (SELECT cov.serial FROM a, holds h, "
		     "      mailvault_holds_covering(a.s, a.d, a.g, a.x, h.id) cov WHERE h.name = $1)) "
		     "SELECT (SELECT count(*) FROM c) AS covered, (SELECT coalesce(sum(size), 0)::bigint FROM c) AS bytes, "
		     "(SELECT count(*) FROM c WHERE retain_until <= now()) AS kept_past_retention, "
		     "(SELECT coalesce(jsonb_agg(jsonb_build_object('serial', serial, 'date', date, 'subject', subject) "
		     "ORDER BY serial), '[]') FROM (SELECT * FROM c ORDER BY serial LIMIT $2::integer) x) AS messages",
		     2, p, &reply);
	if (res == NULL) {
		json_object_put(o);
		return reply;
	}
	rt_add_row(o, res, 0);
	PQclear(res);
	web_end(r, true);
	return rt_reply_audited(r, o, "hold-show", name, NULL);
}

/* A date for a hold's range: YYYY-MM-DD. */
static bool rt_date_ok(const char *s)
{
	return strlen(s) == 10 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
	       isdigit((unsigned char)s[3]) && s[4] == '-' && isdigit((unsigned char)s[5]) && isdigit((unsigned char)s[6]) &&
	       s[7] == '-' && isdigit((unsigned char)s[8]) && isdigit((unsigned char)s[9]);
}

static enum MHD_Result hold_add(struct request *r)
{
	enum MHD_Result reply;
	json_object *b = rt_body(r, &reply);
	if (b == NULL)
		return reply;
	bool bad = false;
	const char *name = rt_str(b, "name", &bad), *matter = rt_str(b, "matter", &bad), *reason = rt_str(b, "reason", &bad),
		   *from = rt_str(b, "from", &bad), *to = rt_str(b, "to", &bad), *query = rt_str(b, "query", &bad);
	const char *why = NULL;
	if (bad)
		why = "name, matter, reason, from, to and query are strings";
	else if (name == NULL || !config_name_valid(name))
		why = "a hold needs a name: letters, digits and . _ @ + -";
	else if (matter == NULL || !config_name_valid(matter))
		why = "a hold belongs to a matter (--matter M)";
	else if (reason == NULL || !rt_text_ok(reason, 4000))
		why = "a hold needs a reason (--reason TEXT)";
	else if ((from != NULL && !rt_date_ok(from)) || (to != NULL && !rt_date_ok(to)))
		why = "--from and --to are dates, YYYY-MM-DD (--to is the last day covered)";
	else if (query != NULL && !rt_text_ok(query, 4000))
		why = "the query is empty, too long or not UTF-8";
	if (why != NULL) {
		json_object_put(b);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, why, 0);
	}
	if (query != NULL && rt_query_ok(r, query, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	if (rt_begin(r, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	bool all = false;
	struct pg_array ids = PG_ARRAY_INIT;
	json_object *names = NULL;
	if (rt_accounts(r, b, &all, &ids, &names, &reply) < 0) {
		pg_array_free(&ids);
		json_object_put(b);
		return reply;
	}
	const char *p[] = { name, matter, reason, all ? "t" : "f", pg_array_text(&ids), from, to, query, r->who.name };
	PGresult *res = rt_sql(r, "INSERT INTO holds (name, matter_id, reason, all_accounts, account_ids, date_from, date_to, query, "
			       "placed_by) SELECT $1, m.id, $3, $4::boolean, $5::integer[], $6::date::timestamp AT TIME ZONE 'UTC', "
			       "($7::date + 1)::timestamp AT TIME ZONE 'UTC', $8, $9 FROM matters m WHERE m.name = $2 RETURNING id",
			       9, p, &reply);
	pg_array_free(&ids);
	if (res == NULL) {
		json_object_put(names);
		json_object_put(b);
		return reply;
	}
	bool found = PQntuples(res) == 1;
	PQclear(res);
	if (!found) {
		json_object_put(names);
		json_object_put(b);
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such matter (mailvault matter add M --description TEXT)", 0);
	}
	json_object *d = json_object_new_object();
	json_object_object_add(d, "matter", json_object_new_string(matter));
	json_object_object_add(d, "reason", json_text(reason));
	json_object_object_add(d, "accounts", names);
	json_object_object_add(d, "from", from ? json_object_new_string(from) : NULL);
	json_object_object_add(d, "to", to ? json_object_new_string(to) : NULL);
	json_object_object_add(d, "query", query ? json_text(query) : NULL);
	if (rt_audit(r, "hold-add", name, d, &reply) < 0 || rt_commit(r, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "hold", json_object_new_string(name));
	json_object_put(b);
	return web_reply_json(r, MHD_HTTP_OK, o);
}

static enum MHD_Result hold_release(struct request *r, const char *name)
{
	enum MHD_Result reply;
	json_object *b = rt_body(r, &reply);
	if (b == NULL)
		return reply;
	bool bad = false;
	const char *reason = rt_str(b, "reason", &bad);
	if (bad || reason == NULL || !rt_text_ok(reason, 4000)) {
		json_object_put(b);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "releasing a hold needs a reason (--reason TEXT)", 0);
	}
	const char *p[] = { name, r->who.name, reason, rt_sees_all(r) };
	PGresult *res = NULL;
	if (rt_begin(r, &reply) < 0 || rt_scope_covers(r, true, name, &reply) < 0 ||
	    (res = rt_sql(r, "UPDATE holds h SET released_at = now(), released_by = $2, release_reason = $3 FROM retention_settings s "
			  "WHERE h.name = $1 AND h.released_at IS NULL AND " RT_SEES("h", "$4") " RETURNING "
			  "(now() + s.release_grace)::text", 4, p, &reply)) == NULL) {
		json_object_put(b);
		return reply;
	}
	bool found = PQntuples(res) == 1;
	char grace[64] = "";
	if (found)
		snprintf(grace, sizeof(grace), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!found) {
		json_object_put(b);
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such active hold", 0);
	}
	json_object *d = json_object_new_object();
	json_object_object_add(d, "reason", json_text(reason));
	json_object_object_add(d, "grace_ends", json_object_new_string(grace));
	json_object_put(b);
	if (rt_audit(r, "hold-release", name, d, &reply) < 0 || rt_commit(r, &reply) < 0)
		return reply;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "hold", json_object_new_string(name));
	json_object_object_add(o, "grace_ends", json_object_new_string(grace));
	return web_reply_json(r, MHD_HTTP_OK, o);
}

static enum MHD_Result matter_route(struct request *r, const char *rest, bool get, bool post)
{
	char name[160];
	const char *action = "";
	if (*rest == '\0')
		return get ? matter_list(r) : post ? (web_role_allows(&r->who, "legal") ? matter_add(r)
							     : web_forbidden(r, "matters are opened by the legal and admin roles"))
			   : web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or POST", 0);
	if (rt_split(rest, name, sizeof(name), &action) < 0 || !config_name_valid(name) || strcmp(action, "close") != 0)
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such API path", 0);
	if (!post)
		return web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST", 0);
	if (!web_role_allows(&r->who, "legal"))
		return web_forbidden(r, "matters are closed by the legal and admin roles");
	return matter_close(r, name);
}

static enum MHD_Result hold_route(struct request *r, const char *rest, bool get, bool post)
{
	char name[160];
	const char *action = "";
	if (*rest == '\0')
		return get ? hold_list(r) : post ? (web_role_allows(&r->who, "legal") ? hold_add(r)
							   : web_forbidden(r, "holds are placed by the legal and admin roles"))
			   : web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or POST", 0);
	if (rt_split(rest, name, sizeof(name), &action) < 0 || !config_name_valid(name))
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such hold", 0);
	if (get && *action == '\0')
		return hold_show(r, name);
	if (!post || strcmp(action, "release") != 0)
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such API path", 0);
	if (!web_role_allows(&r->who, "legal"))
		return web_forbidden(r, "holds are released by the legal and admin roles");
	return hold_release(r, name);
}

/* --- the disposal report (what mailvault-retention would remove now) --- */

static enum MHD_Result disposal_report(struct request *r)
{
	if (!web_role_allows(&r->who, "admin"))
		return web_forbidden(r, "the disposal report is for the admin role");
	enum MHD_Result reply;
	if (rt_begin(r, &reply) < 0)
		return reply;
	/* the candidates the disposal itself would take, restricted to the messages this officer sees */
	PGresult *res = rt_sql(r,
		"WITH c AS (SELECT c.serial, c.size, c.policy FROM mailvault_disposal_candidates(0, 2147483647) c "
		"           JOIN messages m ON m.serial = c.serial), "
		"held AS (SELECT h FROM mailvault_held_among(ARRAY(SELECT m.serial FROM messages m WHERE m.retain_until <= now())) h "
		"         WHERE h IN (SELECT serial FROM messages)) "
		"SELECT (SELECT count(*) FROM c) AS messages, (SELECT coalesce(sum(size), 0)::bigint FROM c) AS bytes, "
		"(SELECT coalesce(jsonb_agg(x ORDER BY x.policy), '[]') FROM (SELECT coalesce(policy, '-') AS policy, count(*) AS messages, "
		"  sum(size)::bigint AS bytes FROM c GROUP BY 1) x) AS by_policy, "
		"(SELECT coalesce(jsonb_agg(y ORDER BY y.account), '[]') FROM (SELECT a.name AS account, count(DISTINCT c.serial) AS messages "
		"  FROM c JOIN locations l ON l.message_serial = c.serial JOIN folders f ON f.id = l.folder_id "
		"  JOIN accounts a ON a.id = f.account_id GROUP BY a.name) y) AS by_account, "
		"(SELECT count(*) FROM held) AS kept_by_holds, "
		"(SELECT count(*) FROM erasure_items i JOIN erasure_requests q ON q.id = i.request_id "
		"  WHERE q.status = 'approved' AND i.state = 'pending') AS erasures_pending",
		0, NULL, &reply);
	if (res == NULL)
		return reply;
	web_end(r, true);
	json_object *o = json_object_new_object();
	rt_add_row(o, res, 0);
	PQclear(res);
	json_object *d = json_object_new_object();
	json_object_object_add(d, "messages", json_object_get(json_object_object_get(o, "messages")));
	return rt_reply_audited(r, o, "disposal-report", NULL, d);
}

/* --- erasure requests: asked by a legal or admin officer, approved by a different admin --- */

/* True (SQL) if the officer sees erasure item i ($2: whether they see every account): its message was in
   one of their accounts when it was asked for. A request with none of them is unknown to the officer, as a
   missing one is. */
#define RT_ITEM_VISIBLE RT_SEES_ANY("i.account_ids", "$2")

static enum MHD_Result erasure_list(struct request *r, int64_t id)
{
	enum MHD_Result reply;
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *p[] = { ids, rt_sees_all(r) };
	if (rt_begin(r, &reply) < 0)
		return reply;
	/* the counts are of the items the officer sees, read once (by the request's key when one is asked for) */
	PGresult *res = rt_sql(r,
		"WITH v AS (SELECT i.request_id, count(*) AS messages, count(*) FILTER (WHERE i.state = 'pending') AS pending, "
		"  count(*) FILTER (WHERE i.state = 'erased') AS erased, count(*) FILTER (WHERE i.state = 'refused') AS refused "
		"  FROM erasure_items i WHERE ($1::bigint = 0 OR i.request_id = $1::bigint) AND " RT_ITEM_VISIBLE
		"  GROUP BY i.request_id) "
		"SELECT q.id, q.query, q.reason, q.requested_by, q.requested_at::text, q.approved_by, q.approved_at::text, q.status, "
		"q.completed_at::text, v.messages, v.pending, v.erased, v.refused, "
		"CASE WHEN $1::bigint > 0 THEN (SELECT coalesce(jsonb_agg(jsonb_build_object('serial', i.serial, 'sha256', "
		"  encode(i.sha256, 'hex'), 'state', i.state, 'note', i.note) ORDER BY i.serial), '[]') FROM erasure_items i "
		"  WHERE i.request_id = q.id AND " RT_ITEM_VISIBLE ") END AS items "
		"FROM erasure_requests q JOIN v ON v.request_id = q.id ORDER BY q.id", 2, p, &reply);
	if (res == NULL)
		return reply;
	web_end(r, true);
	if (id > 0 && PQntuples(res) == 0) {
		PQclear(res);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such erasure request", 0);
	}
	json_object *o = json_object_new_object();
	if (id > 0)
		rt_add_row(o, res, 0);
	else
		json_object_object_add(o, "requests", rt_rows(res));
	PQclear(res);
	return rt_reply_audited(r, o, id > 0 ? "erase-show" : "erase-list", id > 0 ? ids : NULL, NULL);
}

static enum MHD_Result erasure_request(struct request *r)
{
	enum MHD_Result reply;
	json_object *b = rt_body(r, &reply);
	if (b == NULL)
		return reply;
	bool bad = false;
	const char *query = rt_str(b, "query", &bad), *reason = rt_str(b, "reason", &bad);
	if (bad || query == NULL || !rt_text_ok(query, 4000) || reason == NULL || !rt_text_ok(reason, 4000)) {
		json_object_put(b);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "an erasure request needs --query QUERY and --reason TEXT", 0);
	}
	/* the messages the requester's query finds in their own scope, fixed now */
	uint64_t *docids = NULL, total = 0;
	size_t n = 0;
	if (web_search_all(r, query, RT_ERASE_MAX, &docids, &n, &total, &reply) < 0) {
		json_object_put(b);
		return reply;
	}
	if (total > RT_ERASE_MAX) {
		free(docids);
		json_object_put(b);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "the query finds more than 100000 messages: narrow it", 0);
	}
	if (n == 0) {
		free(docids);
		json_object_put(b);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "the query finds no message to erase", 0);
	}
	struct pg_array serials = PG_ARRAY_INIT;
	for (size_t i = 0; i < n; i++)
		pg_array_add_int(&serials, (int64_t)docids[i]);
	free(docids);
	const char *p[] = { r->who.name, query, reason, pg_array_text(&serials) };
	PGresult *res = NULL;
	if (rt_begin(r, &reply) < 0 ||
	    (res = rt_sql(r, "SELECT mailvault_erasure_request($1, $2, $3, $4::bigint[])", 4, p, &reply)) == NULL) {
		pg_array_free(&serials);
		json_object_put(b);
		return reply;
	}
	pg_array_free(&serials);
	char id[24];
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	const char *pid[] = { id };
	if ((res = rt_sql(r, "SELECT q.id, (SELECT count(*) FROM erasure_items i WHERE i.request_id = q.id), "
			  "(SELECT count(*) FROM erasure_items i WHERE i.request_id = q.id AND i.state = 'refused'), q.status, "
			  "(SELECT coalesce(jsonb_agg(jsonb_build_object('serial', i.serial, 'note', i.note) ORDER BY i.serial), '[]') "
			  " FROM erasure_items i WHERE i.request_id = q.id AND i.state = 'refused') "
			  "FROM erasure_requests q WHERE q.id = $1::bigint", 1, pid, &reply)) == NULL) {
		json_object_put(b);
		return reply;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", rt_cell(res, 0, 0));
	json_object_object_add(o, "messages", rt_cell(res, 0, 1));
	json_object_object_add(o, "refused", rt_cell(res, 0, 2));
	json_object_object_add(o, "status", rt_cell(res, 0, 3));
	json_object_object_add(o, "refusals", rt_cell(res, 0, 4));
	char target[24];
	snprintf(target, sizeof(target), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	json_object *d = json_object_new_object();
	json_object_object_add(d, "query", json_text(query));
	json_object_object_add(d, "reason", json_text(reason));
	json_object_object_add(d, "messages", json_object_get(json_object_object_get(o, "messages")));
	json_object_object_add(d, "refused", json_object_get(json_object_object_get(o, "refused")));
	json_object_put(b);
	if (rt_audit(r, "erase-request", target, d, &reply) < 0 || rt_commit(r, &reply) < 0) {
		json_object_put(o);
		return reply;
	}
	return web_reply_json(r, MHD_HTTP_OK, o);
}

static enum MHD_Result erasure_approve(struct request *r, int64_t id)
{
	enum MHD_Result reply;
	char ids[24];
	snprintf(ids, sizeof(ids), "%lld", (long long)id);
	const char *p[] = { ids, r->who.name }, *pv[] = { ids, rt_sees_all(r) };
	PGresult *res = NULL;
	if (rt_begin(r, &reply) < 0 ||
	    (res = rt_sql(r, "SELECT EXISTS (SELECT 1 FROM erasure_items i WHERE i.request_id = $1::bigint AND "
			  RT_ITEM_VISIBLE ")", 2, pv, &reply)) == NULL)
		return reply;
	/* a request the officer sees nothing of answers as a missing one (the database refuses one they see in
	   part: the approver must see every account) */
	bool known = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (!known) {
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such erasure request", 0);
	}
	if ((res = rt_sql(r, "SELECT mailvault_erasure_approve($1::bigint, $2)", 2, p, &reply)) == NULL)
		return reply;
	json_object *o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_int64(id));
	json_object_object_add(o, "pending", rt_cell(res, 0, 0));
	PQclear(res);
	/* a statement of its own: it sees what the approval just changed */
	if ((res = rt_sql(r, "SELECT (SELECT status FROM erasure_requests WHERE id = $1::bigint), "
			  "(SELECT coalesce(jsonb_agg(jsonb_build_object('serial', i.serial, 'note', i.note) ORDER BY i.serial), '[]') "
			  " FROM erasure_items i WHERE i.request_id = $1::bigint AND i.state = 'refused')", 1, p, &reply)) == NULL) {
		json_object_put(o);
		return reply;
	}
	json_object_object_add(o, "status", rt_cell(res, 0, 0));
	json_object_object_add(o, "refusals", rt_cell(res, 0, 1));
	PQclear(res);
	json_object *d = json_object_new_object();
	json_object_object_add(d, "pending", json_object_get(json_object_object_get(o, "pending")));
	json_object_object_add(d, "status", json_object_get(json_object_object_get(o, "status")));
	if (rt_audit(r, "erase-approve", ids, d, &reply) < 0 || rt_commit(r, &reply) < 0) {
		json_object_put(o);
		return reply;
	}
	return web_reply_json(r, MHD_HTTP_OK, o);
}

static enum MHD_Result erasure_route(struct request *r, const char *rest, bool get, bool post)
{
	if (*rest == '\0')
		return get ? erasure_list(r, 0) : post ? (web_role_allows(&r->who, "legal") ? erasure_request(r)
							      : web_forbidden(r, "erasure is requested by the legal and admin roles"))
			   : web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or POST", 0);
	char num[24];
	const char *action = "";
	uint64_t id;
	if (rt_split(rest, num, sizeof(num), &action) < 0 || util_parse_uint(num, 1, INT64_MAX, &id) < 0)
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such erasure request", 0);
	if (get && *action == '\0')
		return erasure_list(r, (int64_t)id);
	if (!post || strcmp(action, "approve") != 0)
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such API path", 0);
	if (!web_role_allows(&r->who, "admin"))
		return web_forbidden(r, "erasure requests are approved by the admin role");
	return erasure_approve(r, (int64_t)id);
}

int api_retention_route(struct request *r, const char *path, bool get, bool post, enum MHD_Result *reply)
{
	static const struct {
		const char *prefix;
		enum MHD_Result (*fn)(struct request *, const char *, bool, bool);
	} routes[] = { { "/policies", policy_route }, { "/matters", matter_route }, { "/holds", hold_route },
		       { "/erasures", erasure_route } };
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		size_t n = strlen(routes[i].prefix);
		if (strncmp(path, routes[i].prefix, n) == 0 && (path[n] == '\0' || path[n] == '/')) {
			*reply = routes[i].fn(r, path + n, get, post);
			return 0;
		}
	}
	if (strcmp(path, "/disposal") == 0) {
		*reply = get ? disposal_report(r) : web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET", 0);
		return 0;
	}
	return -1;
}

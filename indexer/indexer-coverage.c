/* mailvault-indexer: records what each hold's and policy's query covers among the indexed messages, so
   that the database can tell which messages a query hold keeps and a query policy governs. */
#include "indexer-coverage.h"
#include "db.h"
#include "index-layout.h"
#include "log.h"
#include "pg-array.h"
#include "query.h"
#include "util.h"
#include "xapian_shim.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Serials per call of mailvault_coverage_record. */
#define COVERAGE_CHUNK 10000

/* The scopes whose coverage is behind: no record yet, or messages indexed since. */
static const char coverage_scopes_sql[] =
	"WITH s AS (SELECT 'hold' AS kind, id, query, covered_through FROM holds WHERE query IS NOT NULL AND "
	"           (released_at IS NULL OR released_at + (SELECT release_grace FROM retention_settings) > now()) "
	"           UNION ALL SELECT 'policy', id, query, covered_through FROM policies WHERE query IS NOT NULL), "
	"     last AS (SELECT max(indexed_at) AS t FROM messages) "
	"SELECT s.kind, s.id, s.query FROM s, last "
	"WHERE s.covered_through IS NULL OR last.t > s.covered_through ORDER BY 1, 2";

/* Every document the query matches, over every shard; fills *serials_r (malloc'd) and *n_r. Returns 0,
   1 when the query does not parse or cannot be built (*qerr_r, malloc'd), or -1 with *error_r. */
static int coverage_match(const char *index_path, const char *text, uint64_t **serials_r, size_t *n_r, char **qerr_r,
			  const char **error_r)
{
	*serials_r = NULL;
	*n_r = 0;
	struct qnode *tree = query_parse(text, qerr_r);
	if (tree == NULL)
		return 1;
	char *xerr = NULL;
	size_t nshards;
	char **paths = index_layout_shards(index_path, &nshards, &xerr);
	if (paths == NULL) {
		query_free(&tree);
		*error_r = db_error_set("cannot open the index", xerr);
		free(xerr);
		return -1;
	}
	struct xs_db *xdb = NULL;
	enum xs_status st = xs_db_open_readonly((const char *const *)paths, nshards, &xdb, &xerr);
	index_layout_free(&paths);
	if (st != XS_OK) {
		query_free(&tree);
		*error_r = db_error_set("cannot open the index for reading", xerr);
		free(xerr);
		return -1;
	}
	struct xs_query *q = query_to_xapian(xdb, tree, qerr_r);
	query_free(&tree);
	if (q == NULL) {
		xs_db_close(&xdb);
		return 1;
	}
	uint64_t total = 0;
	/* date order uses no weights; the limit is clamped to the document count: every match comes back */
	st = xs_search(xdb, q, XS_SORT_DATE_ASC, 0, SIZE_MAX, serials_r, n_r, &total, &xerr);
	xs_query_free(&q);
	xs_db_close(&xdb);
	if (st == XS_ERR_QUERY) {
		*qerr_r = xerr;
		return 1;
	}
	if (st != XS_OK) {
		*error_r = db_error_set("search failed", xerr);
		free(xerr);
		return -1;
	}
	return 0;
}

/* Evaluates one scope in a transaction of its own and records what it covers, complete up to that
   transaction's start. Returns 0 (also when its query is bad: logged) or -1 with *error_r. */
static int coverage_scope(PGconn *db, const char *index_path, const char *kind, const char *id, const char *text,
			  const char **error_r)
{
	if (db_begin(db, error_r) < 0)
		return -1;
	/* T: every message indexed up to now is committed in Xapian (this process commits the index before it
	   marks messages indexed), and the reader opened below sees it */
	PGresult *res = db_query(db, "SELECT now()", 0, NULL, error_r);
	if (res == NULL) {
		db_rollback(db);
		return -1;
	}
	char *through = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	uint64_t *serials;
	size_t n;
	char *qerr = NULL;
	int r = coverage_match(index_path, text, &serials, &n, &qerr, error_r);
	if (r != 0) {
		db_rollback(db);
		free(through);
		if (r < 0)
			return -1;
		log_error("%s %s: its query cannot be evaluated (%s): its coverage stays unrecorded, so %s until the "
			  "query is corrected", kind, id, qerr ? util_term(qerr) : "unknown error",
			  strcmp(kind, "hold") == 0 ? "it keeps every message of its accounts and dates"
						    : "no message is eligible for disposal");
		free(qerr);
		return 0;
	}
	struct pg_array a = PG_ARRAY_INIT;
	uint64_t added = 0;
	int rc = 0;
	size_t i = 0;
	do {
		pg_array_reset(&a);
		size_t end = i + COVERAGE_CHUNK < n ? i + COVERAGE_CHUNK : n;
		for (; i < end; i++)
			pg_array_add_int(&a, (int64_t)serials[i]);
		/* the last call carries T: coverage is complete only once every chunk is in */
		const char *p[] = { kind, id, pg_array_text(&a), i >= n ? through : NULL };
		res = db_query(db, "SELECT mailvault_coverage_record($1, $2::bigint, $3::bigint[], $4::timestamptz)", 4, p,
			       error_r);
		if (res == NULL) {
			rc = -1;
			break;
		}
		added += strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	} while (i < n);
	pg_array_free(&a);
	free(serials);
	if (rc == 0 && db_commit(db, error_r) < 0)
		rc = -1;
	if (rc < 0) {
		db_rollback(db);
	} else {
		log_info("coverage: %s %s's query matches %zu messages (%" PRIu64 " newly recorded), complete through %s",
			 kind, id, n, added, through);
	}
	free(through);
	return rc;
}

/* Brings every scope's coverage up to date, as indexer-coverage.h says. */
int indexer_coverage(PGconn *db, const char *index_path, const char **error_r)
{
	PGresult *res = db_query(db, coverage_scopes_sql, 0, NULL, error_r);
	if (res == NULL)
		return -1;
	int rc = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++)
		rc = coverage_scope(db, index_path, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
				    error_r);
	PQclear(res);
	return rc;
}

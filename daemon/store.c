/* Stores fetched batches: one transaction each, pipelined through libpq, nothing stored twice. */
#include "poller.h"
#include "db.h"
#include "log.h"
#include "msg-headers.h"
#include "sha256.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Blob and message in one statement; both keyed by SHA-256, so a repeat inserts nothing. */
static const char store_sql_message[] =
	"WITH b AS (INSERT INTO blobs (sha256, size, raw) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING) "
	"INSERT INTO messages (sha256, message_id, date, from_addr, to_addr, cc_addr, subject, size, header_error) "
	"VALUES ($1, $4, $5, $6, $7, $8, $9, $2, $10) ON CONFLICT (sha256) DO NOTHING";
/* A separate statement, so that its snapshot sees a message another poller committed meanwhile. */
static const char store_sql_location[] =
	"INSERT INTO locations (message_serial, folder_id, uidvalidity, uid, internaldate, flags) "
	"SELECT serial, $2, $3, $4, $5, $6 FROM messages WHERE sha256 = $1 RETURNING id";
static const char store_sql_skipped[] =
	"INSERT INTO ingest_errors (account_id, folder_id, uidvalidity, uid, size, reason) "
	"VALUES ($1, $2, $3, $4, $5, $6)";
static const char store_sql_watermark[] =
	"UPDATE folders SET last_uid = $2 WHERE id = $1 AND last_uid < $2";
/* Renewing the lease inside the batch's transaction proves we still own the account. */
static const char store_sql_lease[] =
	"UPDATE accounts SET lease_expires = now() + make_interval(secs => $3) "
	"WHERE id = $1 AND lease_owner = $2 RETURNING id";

/* Per-message values computed before the transaction (hash and headers). */
struct store_prep {
	struct fetched_msg *msg;
	unsigned char sha[SHA256_LEN];
	struct msg_headers h;
	char date[40];
};

/* Queues one statement in the pipeline. */
static int store_send(PGconn *db, const char *sql, int n, const char *const *vals, const int *lens,
		      const int *fmts, const char **error_r)
{
	if (PQsendQueryParams(db, sql, n, NULL, vals, lens, fmts, 0) != 1) {
		*error_r = db_error_set("cannot queue statement", PQerrorMessage(db));
		return -1;
	}
	return 0;
}

/* Reads one statement's result from the pipeline; expect_rows < 0 means any. A deadlock or
   serialization failure sets *retry_r: the whole batch may simply be tried again. */
static int store_recv(PGconn *db, int expect_rows, const char *what, const char **error_r, bool *retry_r)
{
	PGresult *res = PQgetResult(db);
	int ok = 0;
	if (res == NULL) {
		*error_r = db_error_set("pipeline out of step", what);
		return -1;
	}
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (state != NULL && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
			*retry_r = true;
		if (st != PGRES_PIPELINE_ABORTED)
			*error_r = db_error_set(what, PQresultErrorMessage(res));
		else
			*error_r = db_error_set(what, "skipped after an earlier error");
		ok = -1;
	} else if (expect_rows >= 0 && PQntuples(res) != expect_rows) {
		*error_r = db_error_set(what, "unexpected row count");
		ok = -1;
	}
	PQclear(res);
	/* each result is followed by a NULL */
	res = PQgetResult(db);
	PQclear(res);
	return ok;
}

/* Stores one batch atomically. */
int store_batch(struct poll_ctx *ctx, const struct account *acct, int64_t folder_id, uint64_t uidvalidity,
		struct fetched_msg *msgs, size_t nmsgs, const struct skipped_msg *skipped, size_t nskipped,
		uint64_t new_last_uid, const char **error_r, bool *retry_r)
{
	PGconn *db = ctx->db;
	*retry_r = false;
	struct store_prep *prep = xcalloc(nmsgs ? nmsgs : 1, sizeof(*prep));
	char s_acct[24], s_folder[24], s_uv[24], s_last[24], s_lease[24];
	int rc = -1, sent = 0;
	snprintf(s_acct, sizeof(s_acct), "%d", acct->id);
	snprintf(s_folder, sizeof(s_folder), "%lld", (long long)folder_id);
	snprintf(s_uv, sizeof(s_uv), "%llu", (unsigned long long)uidvalidity);
	snprintf(s_last, sizeof(s_last), "%llu", (unsigned long long)new_last_uid);
	snprintf(s_lease, sizeof(s_lease), "%u", ctx->cfg->lease_seconds);

	for (size_t i = 0; i < nmsgs; i++) {
		prep[i].msg = &msgs[i];
		sha256_digest(msgs[i].raw, msgs[i].size, prep[i].sha);
		msg_headers_parse(msgs[i].raw, msgs[i].size, &prep[i].h);
		if (prep[i].h.has_date) {
			time_t t = (time_t)prep[i].h.date;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(prep[i].date, sizeof(prep[i].date), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
	}

	if (PQenterPipelineMode(db) != 1) {
		*error_r = db_error_set("cannot enter pipeline mode", PQerrorMessage(db));
		goto out;
	}
	const char *lease_vals[] = { s_acct, ctx->lease_owner, s_lease };
	if (store_send(db, "BEGIN", 0, NULL, NULL, NULL, error_r) < 0 ||
	    store_send(db, store_sql_lease, 3, lease_vals, NULL, NULL, error_r) < 0)
		goto abort;
	sent = 2;
	for (size_t i = 0; i < nmsgs; i++) {
		struct store_prep *p = &prep[i];
		char s_size[24], s_uid[24];
		snprintf(s_size, sizeof(s_size), "%zu", p->msg->size);
		snprintf(s_uid, sizeof(s_uid), "%llu", (unsigned long long)p->msg->uid);
		const char *mv[] = { (const char *)p->sha, s_size, (const char *)p->msg->raw, p->h.message_id,
				     p->h.has_date ? p->date : NULL, p->h.from, p->h.to, p->h.cc, p->h.subject,
				     p->h.error };
		int ml[10] = { SHA256_LEN, 0, (int)p->msg->size };
		int mf[10] = { 1, 0, 1 };
		const char *lv[] = { (const char *)p->sha, s_folder, s_uv, s_uid, p->msg->internaldate, p->msg->flags };
		int ll[6] = { SHA256_LEN };
		int lf[6] = { 1 };
		if (store_send(db, store_sql_message, 10, mv, ml, mf, error_r) < 0 ||
		    store_send(db, store_sql_location, 6, lv, ll, lf, error_r) < 0)
			goto abort;
		sent += 2;
	}
	for (size_t i = 0; i < nskipped; i++) {
		char s_uid[24], s_size[24];
		snprintf(s_uid, sizeof(s_uid), "%llu", (unsigned long long)skipped[i].uid);
		snprintf(s_size, sizeof(s_size), "%llu", (unsigned long long)skipped[i].size);
		const char *ev[] = { s_acct, s_folder, s_uv, s_uid, s_size, skipped[i].reason };
		if (store_send(db, store_sql_skipped, 6, ev, NULL, NULL, error_r) < 0)
			goto abort;
		sent++;
	}
	const char *wv[] = { s_folder, s_last };
	/* wakes the indexer when the transaction commits */
	if (nmsgs > 0) {
		if (store_send(db, "NOTIFY mailvault_new_mail", 0, NULL, NULL, NULL, error_r) < 0)
			goto abort;
		sent++;
	}
	if (store_send(db, store_sql_watermark, 2, wv, NULL, NULL, error_r) < 0 ||
	    store_send(db, "COMMIT", 0, NULL, NULL, NULL, error_r) < 0 || PQpipelineSync(db) != 1)
		goto abort;
	sent += 2;

	/* read back in order: BEGIN, lease, (message, location)*, skipped*, watermark, COMMIT */
	int failed = 0;
	const char *first_error = NULL;
	for (int i = 0; i < sent; i++) {
		int expect = -1;
		const char *what = "batch statement";
		if (i == 1) {
			expect = 1;
			what = "lease renewal (another poller owns this account now)";
		} else if (i >= 2 && i < 2 + 2 * (int)nmsgs) {
			if ((i - 2) % 2 == 1)
				expect = 1;
			what = (i - 2) % 2 == 0 ? "storing message" : "recording provenance";
		}
		if (store_recv(db, expect, what, error_r, retry_r) < 0 && !failed) {
			failed = 1;
			first_error = xstrdup(*error_r);
		}
	}
	PGresult *syncres = PQgetResult(db); /* PGRES_PIPELINE_SYNC */
	PQclear(syncres);
	PQexitPipelineMode(db);
	if (failed) {
		db_rollback(db);
		*error_r = db_error_set(first_error, NULL);
		free((char *)first_error);
		goto out;
	}
	rc = 0;
	goto out;
abort:
	/* a send failed: drain what was queued, then make sure no transaction stays open */
	PQpipelineSync(db);
	for (;;) {
		PGresult *r = PQgetResult(db);
		if (r == NULL) {
			r = PQgetResult(db);
			if (r == NULL)
				break;
		}
		ExecStatusType st = PQresultStatus(r);
		PQclear(r);
		if (st == PGRES_PIPELINE_SYNC)
			break;
	}
	PQexitPipelineMode(db);
	db_rollback(db);
out:
	for (size_t i = 0; i < nmsgs; i++)
		msg_headers_free(&prep[i].h);
	free(prep);
	return rc;
}

/* Stores fetched batches: one transaction each, pipelined through libpq, nothing stored twice, nothing wedged. */
#include "poller.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "msg-headers.h"
#include "pg-array.h"
#include "sha256.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Blob and message in one statement; both keyed by SHA-256, so a repeat inserts nothing. The database
   checks that the key is the hash of the bytes. */
static const char store_sql_message[] =
	"WITH b AS (INSERT INTO blobs (sha256, size, raw) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING) "
	"INSERT INTO messages (sha256, message_id, date, from_addr, to_addr, cc_addr, subject, size, header_error) "
	"VALUES ($1, $4, $5, $6, $7, $8, $9, $2, $10) ON CONFLICT (sha256) DO NOTHING";
/* Every location of the batch in one statement, after the messages, so that its snapshot also sees a
   message another poller committed meanwhile; the database queues the re-index of messages it had
   before, once per statement. */
static const char store_sql_locations[] =
	"INSERT INTO locations (message_serial, folder_id, uidvalidity, uid, internaldate, flags) "
	"SELECT m.serial, $1, $2, v.uid, v.idate, v.flags::text[] "
	"FROM unnest($3::bytea[], $4::bigint[], $5::timestamptz[], $6::text[]) AS v(sha, uid, idate, flags) "
	"JOIN messages m ON m.sha256 = v.sha RETURNING id";
/* One location (the careful path). */
static const char store_sql_location[] =
	"INSERT INTO locations (message_serial, folder_id, uidvalidity, uid, internaldate, flags) "
	"SELECT serial, $2, $3, $4, $5, $6 FROM messages WHERE sha256 = $1 RETURNING id";
/* Whether the location a UID already has holds these bytes. */
static const char store_sql_location_same[] =
	"SELECT m.sha256 = $4 FROM locations l JOIN messages m ON m.serial = l.message_serial "
	"WHERE l.folder_id = $1 AND l.uidvalidity = $2 AND l.uid = $3";
static const char store_sql_skipped[] =
	"INSERT INTO ingest_errors (account_id, folder_id, uidvalidity, uid, size, reason, retry, sha256, kind) "
	"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/* Only forward, only to a UID this transaction stored: the database checks both. */
static const char store_sql_watermark[] = "SELECT mailvault_folder_advance($1, $2, $3)";
/* Renewing the lease inside the batch's transaction proves we still own the account: the function
   raises an error otherwise, so nothing of the batch is committed. */
static const char store_sql_lease[] = "SELECT mailvault_lease_renew($1, $2, $3)";

/* Per-message values computed before the transaction (hash and headers), as statement parameters. */
struct store_prep {
	struct fetched_msg *msg;
	unsigned char sha[SHA256_LEN];
	char sha_hex[2 * SHA256_LEN + 3];   /* "\x" and hex: the bytea text form */
	struct msg_headers h;
	char date[40], size[24], uid[24];
};

/* Parameters of one batch's statements, shared by the fast and the careful path. */
struct store_ctx {
	PGconn *db;
	struct store_batch *b;
	struct store_prep *prep;
	char acct[24], folder[24], uv[24], last[24], lease[24];
	const char *lease_owner;
};

/* How a pipelined or careful store ended. */
enum store_failure { STORE_FAILED_NONE, STORE_FAILED_RETRY, STORE_FAILED_LEASE, STORE_FAILED_CONTENT, STORE_FAILED_DB };

/* What a failed statement means for the batch, from its SQLSTATE. */
static enum store_failure store_failure_of(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	if (state != NULL && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0))
		return STORE_FAILED_RETRY;    /* a deadlock with another poller: try again */
	if (state != NULL && strcmp(state, "55P03") == 0)
		return STORE_FAILED_LEASE;    /* another poller holds the account */
	return STORE_FAILED_CONTENT;
}

/* Fills the message statement's parameters; without_headers (not NULL) leaves the parsed header fields
   out and says why in header_error. */
static void store_message_params(const struct store_prep *p, const char *without_headers, const char *v[10],
				 int l[10], int f[10])
{
	memset(l, 0, 10 * sizeof(int));
	memset(f, 0, 10 * sizeof(int));
	v[0] = (const char *)p->sha;
	v[1] = p->size;
	v[2] = (const char *)p->msg->raw;
	for (int k = 3; k < 9; k++)
		v[k] = NULL;
	if (without_headers == NULL) {
		v[3] = p->h.message_id;
		v[4] = p->h.has_date ? p->date : NULL;
		v[5] = p->h.from;
		v[6] = p->h.to;
		v[7] = p->h.cc;
		v[8] = p->h.subject;
	}
	v[9] = without_headers ? without_headers : p->h.error;
	l[0] = SHA256_LEN;
	l[2] = (int)p->msg->size;
	f[0] = f[2] = 1;
}

/* Fills one location's parameters; bare leaves INTERNALDATE and FLAGS out. */
static void store_location_params(const struct store_ctx *sc, const struct store_prep *p, bool bare, const char *v[6],
				  int l[6], int f[6])
{
	memset(l, 0, 6 * sizeof(int));
	memset(f, 0, 6 * sizeof(int));
	v[0] = (const char *)p->sha;
	v[1] = sc->folder;
	v[2] = sc->uv;
	v[3] = p->uid;
	v[4] = bare ? NULL : p->msg->internaldate;
	v[5] = bare ? "{}" : p->msg->flags;
	l[0] = SHA256_LEN;
	f[0] = 1;
}

/* Fills an ingest_errors row's parameters; s_uid and s_size are the caller's buffers, *reason_r a copy of
   the reason made safe for a text column (server text may be anything) that the caller frees. */
static void store_skipped_params(const struct store_ctx *sc, const struct skipped_msg *s, char *s_uid, char *s_size,
				 char **reason_r, const char *v[9], int l[9], int f[9])
{
	memset(l, 0, 9 * sizeof(int));
	memset(f, 0, 9 * sizeof(int));
	snprintf(s_uid, 24, "%llu", (unsigned long long)s->uid);
	snprintf(s_size, 24, "%llu", (unsigned long long)s->size);
	*reason_r = util_utf8_sanitize(s->reason, strlen(s->reason));
	v[0] = sc->acct;
	v[1] = sc->folder;
	v[2] = sc->uv;
	v[3] = s->uid ? s_uid : NULL;
	v[4] = s_size;
	v[5] = *reason_r;
	v[6] = s->retry ? "true" : "false";
	v[7] = s->have_sha256 ? (const char *)s->sha256 : NULL;
	v[8] = s->kind ? s->kind : "other";
	l[7] = SHA256_LEN;
	f[7] = 1;
}

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

/* Reads one statement's result from the pipeline; expect_rows < 0 means any. */
static enum store_failure store_recv(PGconn *db, int expect_rows, const char *what, const char **error_r)
{
	PGresult *res = PQgetResult(db);
	enum store_failure failure = STORE_FAILED_NONE;
	if (res == NULL) {
		*error_r = db_error_set("pipeline out of step", what);
		return STORE_FAILED_DB;
	}
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_PIPELINE_ABORTED) {
		*error_r = db_error_set(what, "skipped after an earlier error");
		failure = STORE_FAILED_CONTENT;
	} else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		failure = store_failure_of(res);
		*error_r = db_error_set(what, PQresultErrorMessage(res));
	} else if (expect_rows >= 0 && PQntuples(res) != expect_rows) {
		*error_r = db_error_set(what, "unexpected row count");
		failure = STORE_FAILED_CONTENT;
	}
	PQclear(res);
	/* each result is followed by a NULL */
	res = PQgetResult(db);
	PQclear(res);
	return failure;
}

/* The whole batch in one pipelined round trip: BEGIN, lease, a statement per message, one for all
   locations, one per skipped UID, NOTIFY, the watermark, COMMIT. */
static enum store_failure store_pipelined(struct store_ctx *sc, char **error_r)
{
	PGconn *db = sc->db;
	struct store_batch *b = sc->b;
	const char *err = NULL;
	int sent = 0, nlocations = 0;
	enum { Q_OTHER, Q_LEASE, Q_MESSAGE, Q_LOCATIONS } *kinds = xcalloc(b->nmsgs + b->nskipped + 8, sizeof(*kinds));
	struct pg_array shas = PG_ARRAY_INIT, uids = PG_ARRAY_INIT, idates = PG_ARRAY_INIT, flags = PG_ARRAY_INIT;
	if (PQenterPipelineMode(db) != 1) {
		*error_r = xstrdup(db_error_set("cannot enter pipeline mode", PQerrorMessage(db)));
		free(kinds);
		return STORE_FAILED_DB;
	}
	const char *lease_vals[] = { sc->acct, sc->lease_owner, sc->lease };
	if (store_send(db, "BEGIN", 0, NULL, NULL, NULL, &err) < 0)
		goto abort;
	kinds[sent++] = Q_OTHER;
	if (store_send(db, store_sql_lease, 3, lease_vals, NULL, NULL, &err) < 0)
		goto abort;
	kinds[sent++] = Q_LEASE;
	for (size_t i = 0; i < b->nmsgs; i++) {
		struct store_prep *p = &sc->prep[i];
		const char *mv[10];
		int ml[10], mf[10];
		store_message_params(p, NULL, mv, ml, mf);
		if (store_send(db, store_sql_message, 10, mv, ml, mf, &err) < 0)
			goto abort;
		kinds[sent++] = Q_MESSAGE;
		if (p->msg->no_location)
			continue;
		pg_array_add_str(&shas, p->sha_hex);
		pg_array_add_int(&uids, (int64_t)p->msg->uid);
		pg_array_add_str(&idates, p->msg->internaldate);
		pg_array_add_str(&flags, p->msg->flags);
		nlocations++;
	}
	if (nlocations > 0) {
		const char *lv[] = { sc->folder, sc->uv, pg_array_text(&shas), pg_array_text(&uids), pg_array_text(&idates),
				     pg_array_text(&flags) };
		if (store_send(db, store_sql_locations, 6, lv, NULL, NULL, &err) < 0)
			goto abort;
		kinds[sent++] = Q_LOCATIONS;
	}
	for (size_t i = 0; i < b->nskipped; i++) {
		char s_uid[24], s_size[24], *reason;
		const char *ev[9];
		int el[9], ef[9];
		store_skipped_params(sc, &b->skipped[i], s_uid, s_size, &reason, ev, el, ef);
		int r = store_send(db, store_sql_skipped, 9, ev, el, ef, &err);
		free(reason);
		if (r < 0)
			goto abort;
		kinds[sent++] = Q_OTHER;
	}
	/* wakes the indexer when the transaction commits */
	if (b->nmsgs > 0) {
		if (store_send(db, "NOTIFY mailvault_new_mail", 0, NULL, NULL, NULL, &err) < 0)
			goto abort;
		kinds[sent++] = Q_OTHER;
	}
	if (b->new_last_uid > 0) {
		const char *wv[] = { sc->folder, sc->uv, sc->last };
		if (store_send(db, store_sql_watermark, 3, wv, NULL, NULL, &err) < 0)
			goto abort;
		kinds[sent++] = Q_OTHER;
	}
	if (store_send(db, "COMMIT", 0, NULL, NULL, NULL, &err) < 0 || PQpipelineSync(db) != 1)
		goto abort;
	kinds[sent++] = Q_OTHER;
	pg_array_free(&shas);
	pg_array_free(&uids);
	pg_array_free(&idates);
	pg_array_free(&flags);

	enum store_failure failed = STORE_FAILED_NONE;
	for (int i = 0; i < sent; i++) {
		int expect = kinds[i] == Q_LOCATIONS ? nlocations : -1;
		const char *what = kinds[i] == Q_LEASE ? "lease renewal"
				 : kinds[i] == Q_MESSAGE ? "storing message" : kinds[i] == Q_LOCATIONS ? "recording provenance"
				 : "batch statement";
		enum store_failure f = store_recv(db, expect, what, &err);
		if (f != STORE_FAILED_NONE && failed == STORE_FAILED_NONE) {
			failed = f;
			*error_r = xstrdup(err);
		}
	}
	PGresult *syncres = PQgetResult(db); /* PGRES_PIPELINE_SYNC */
	PQclear(syncres);
	PQexitPipelineMode(db);
	free(kinds);
	if (failed != STORE_FAILED_NONE) {
		db_rollback(db);
		if (db_conn_lost(db))
			failed = STORE_FAILED_DB;
	}
	return failed;
abort:
	/* a send failed: drain what was queued, then make sure no transaction stays open */
	*error_r = xstrdup(err ? err : "cannot queue statement");
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
	free(kinds);
	pg_array_free(&shas);
	pg_array_free(&uids);
	pg_array_free(&idates);
	pg_array_free(&flags);
	return STORE_FAILED_DB;
}

/* Runs one statement of the careful path: its result, or NULL with *error_r and *failure_r. */
static PGresult *store_exec(PGconn *db, const char *sql, int n, const char *const *v, const int *l, const int *f,
			    const char **error_r, enum store_failure *failure_r)
{
	PGresult *res = PQexecParams(db, sql, n, NULL, v, l, f, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		*error_r = db_error_set("database", PQresultErrorMessage(res));
		if (failure_r != NULL)
			*failure_r = db_conn_lost(db) ? STORE_FAILED_DB : store_failure_of(res);
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Runs a statement whose rows are not needed; 0 or -1 with *error_r. */
static int store_do(PGconn *db, const char *sql, int n, const char *const *v, const int *l, const int *f,
		    const char **error_r)
{
	PGresult *res = store_exec(db, sql, n, v, l, f, error_r, NULL);
	PQclear(res);
	return res ? 0 : -1;
}

/* Inserts one ingest_errors row; 0 or -1. */
static int store_record(struct store_ctx *sc, const struct skipped_msg *s, const char **error_r)
{
	char s_uid[24], s_size[24], *reason;
	const char *ev[9];
	int el[9], ef[9];
	store_skipped_params(sc, s, s_uid, s_size, &reason, ev, el, ef);
	int r = store_do(sc->db, store_sql_skipped, 9, ev, el, ef, error_r);
	free(reason);
	return r;
}

/* The location of one message in its own savepoint. A UID that already has a location (a reused UID, or a
   UIDVALIDITY that came back) keeps it: the same bytes are a repeat; other bytes are kept as a message of
   their own and recorded with both SHA-256s. 0 done, 1 the location itself was refused, -1 failure. */
static int store_location_carefully(struct store_ctx *sc, struct store_prep *p, bool bare, const char **error_r)
{
	PGconn *db = sc->db;
	const char *lv[6];
	int ll[6], lf[6];
	if (store_do(db, "SAVEPOINT loc", 0, NULL, NULL, NULL, error_r) < 0)
		return -1;
	store_location_params(sc, p, bare, lv, ll, lf);
	PGresult *res = PQexecParams(db, store_sql_location, 6, NULL, lv, ll, lf, 0);
	ExecStatusType st = PQresultStatus(res);
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	bool ok = (st == PGRES_TUPLES_OK && PQntuples(res) == 1);
	bool taken = !ok && state != NULL && strcmp(state, "23505") == 0;
	if (!ok)
		*error_r = db_error_set("database", st == PGRES_TUPLES_OK ? "the message row is missing" : PQresultErrorMessage(res));
	PQclear(res);
	if (ok)
		return store_do(db, "RELEASE SAVEPOINT loc", 0, NULL, NULL, NULL, error_r);
	if (store_do(db, "ROLLBACK TO SAVEPOINT loc", 0, NULL, NULL, NULL, error_r) < 0)
		return -1;
	if (!taken)
		return 1;
	const char *qv[] = { sc->folder, sc->uv, p->uid, (const char *)p->sha };
	int ql[4] = { 0, 0, 0, SHA256_LEN }, qf[4] = { 0, 0, 0, 1 };
	res = store_exec(db, store_sql_location_same, 4, qv, ql, qf, error_r, NULL);
	if (res == NULL)
		return -1;
	bool same = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (same)
		return 0;
	char hex[2 * SHA256_LEN + 1];
	util_hex(p->sha, SHA256_LEN, hex);
	struct skipped_msg s = { .uid = p->msg->uid, .size = p->msg->size, .kind = "second-body", .retry = false,
				 .have_sha256 = true,
				 .reason = xasprintf("UID %s of this folder generation is archived already with other bytes: "
						     "these (sha256 %s) are kept as a message of their own", p->uid, hex) };
	memcpy(s.sha256, p->sha, SHA256_LEN);
	log_warn("UID %s came again with other bytes: kept as a message of its own (sha256 %s)", p->uid, hex);
	int r = store_record(sc, &s, error_r);
	free(s.reason);
	return r;
}

/* Stores one message in a savepoint: whole; else without its parsed header fields; else without its
   INTERNALDATE and FLAGS too; else records why it cannot be stored (asked for again at later polls).
   0, or -1 if even that failed. */
static int store_one_carefully(struct store_ctx *sc, struct store_prep *p, enum store_failure *failure_r)
{
	PGconn *db = sc->db;
	const char *err = "", *v[10];
	int l[10], f[10];
	char *why = NULL;
	for (int attempt = 0; attempt < 3; attempt++) {
		if (store_do(db, "SAVEPOINT msg", 0, NULL, NULL, NULL, &err) < 0)
			goto fail;
		store_message_params(p, why, v, l, f);
		PGresult *res = store_exec(db, store_sql_message, 10, v, l, f, &err, NULL);
		int r = res ? 0 : 1;
		PQclear(res);
		if (r == 0 && !p->msg->no_location)
			r = store_location_carefully(sc, p, attempt == 2, &err);
		if (r < 0)
			goto fail;
		if (r == 0) {
			free(why);
			return store_do(db, "RELEASE SAVEPOINT msg", 0, NULL, NULL, NULL, &err) < 0 ? -1 : 0;
		}
		if (store_do(db, "ROLLBACK TO SAVEPOINT msg", 0, NULL, NULL, NULL, &err) < 0)
			goto fail;
		char *next = xasprintf(attempt == 0 ? "parsed header fields not stored, PostgreSQL refused them: %s"
				       : "parsed header fields, INTERNALDATE and FLAGS not stored, PostgreSQL refused them: %s", err);
		free(why);
		why = util_utf8_sanitize(next, strlen(next));
		free(next);
		if (attempt < 2)
			log_warn("UID %s: %s", p->uid, why);
	}
	free(why);
	struct skipped_msg s = { .uid = p->msg->uid, .size = p->msg->size, .retry = true, .kind = "refused",
				 .reason = xasprintf("PostgreSQL refused to store it: %s", err) };
	log_error("UID %s cannot be stored, recorded in ingest_errors: %s", p->uid, s.reason);
	int r = store_record(sc, &s, &err);
	free(s.reason);
	if (r == 0)
		return 0;
fail:
	free(why);
	*failure_r = db_conn_lost(db) ? STORE_FAILED_DB : STORE_FAILED_CONTENT;
	return -1;
}

/* The batch again, statement by statement, each message in a savepoint, so one message PostgreSQL
   refuses is recorded and the rest are stored. */
static enum store_failure store_carefully(struct store_ctx *sc, char **error_r)
{
	PGconn *db = sc->db;
	struct store_batch *b = sc->b;
	const char *err = "";
	enum store_failure failure = STORE_FAILED_CONTENT;
	const char *lease_vals[] = { sc->acct, sc->lease_owner, sc->lease };
	if (store_do(db, "BEGIN", 0, NULL, NULL, NULL, &err) < 0)
		goto fail;
	PGresult *res = store_exec(db, store_sql_lease, 3, lease_vals, NULL, NULL, &err, &failure);
	if (res == NULL)
		goto fail;
	PQclear(res);
	for (size_t i = 0; i < b->nmsgs; i++)
		if (store_one_carefully(sc, &sc->prep[i], &failure) < 0)
			goto fail;
	for (size_t i = 0; i < b->nskipped; i++)
		if (store_record(sc, &b->skipped[i], &err) < 0)
			goto fail;
	const char *wv[] = { sc->folder, sc->uv, sc->last };
	if ((b->nmsgs > 0 && store_do(db, "NOTIFY mailvault_new_mail", 0, NULL, NULL, NULL, &err) < 0) ||
	    (b->new_last_uid > 0 && store_do(db, store_sql_watermark, 3, wv, NULL, NULL, &err) < 0) ||
	    store_do(db, "COMMIT", 0, NULL, NULL, NULL, &err) < 0)
		goto fail;
	return STORE_FAILED_NONE;
fail:
	*error_r = xstrdup(err);
	db_rollback(db);
	return db_conn_lost(db) ? STORE_FAILED_DB : failure;
}

/* Stores one batch atomically, falling back to the careful path when PostgreSQL refuses its content. */
int store_batch(struct poll_ctx *ctx, const struct account *acct, struct store_batch *b, const char **error_r)
{
	struct store_ctx sc = { .db = ctx->db, .b = b, .lease_owner = ctx->lease_owner };
	sc.prep = xcalloc(b->nmsgs ? b->nmsgs : 1, sizeof(*sc.prep));
	snprintf(sc.acct, sizeof(sc.acct), "%d", acct->id);
	snprintf(sc.folder, sizeof(sc.folder), "%lld", (long long)b->folder_id);
	snprintf(sc.uv, sizeof(sc.uv), "%llu", (unsigned long long)b->uidvalidity);
	snprintf(sc.last, sizeof(sc.last), "%llu", (unsigned long long)b->new_last_uid);
	snprintf(sc.lease, sizeof(sc.lease), "%u", ctx->cfg->lease_seconds);
	for (size_t i = 0; i < b->nmsgs; i++) {
		struct store_prep *p = &sc.prep[i];
		p->msg = &b->msgs[i];
		sha256_digest(p->msg->raw, p->msg->size, p->sha);
		memcpy(p->sha_hex, "\\x", 2);
		util_hex(p->sha, SHA256_LEN, p->sha_hex + 2);
		msg_headers_parse(p->msg->raw, p->msg->size, &p->h);
		snprintf(p->size, sizeof(p->size), "%zu", p->msg->size);
		snprintf(p->uid, sizeof(p->uid), "%llu", (unsigned long long)p->msg->uid);
		if (p->h.has_date) {
			time_t t = (time_t)p->h.date;
			struct tm tm;
			gmtime_r(&t, &tm);
			strftime(p->date, sizeof(p->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
		}
	}
	char *err = NULL;
	enum store_failure f = STORE_FAILED_RETRY;
	/* two pollers storing the same new message may deadlock; PostgreSQL aborts one: try it again */
	for (int attempt = 0; attempt < 5 && f == STORE_FAILED_RETRY; attempt++) {
		FREE(err);
		f = store_pipelined(&sc, &err);
		if (f == STORE_FAILED_RETRY)
			log_info("account %s: batch conflicted with another poller, retrying", acct->name);
	}
	if (f == STORE_FAILED_CONTENT || f == STORE_FAILED_RETRY) {
		log_warn("account %s: PostgreSQL refused a batch (%s): storing it message by message", acct->name, err);
		for (int attempt = 0; attempt < 3; attempt++) {
			FREE(err);
			f = store_carefully(&sc, &err);
			if (f != STORE_FAILED_CONTENT && f != STORE_FAILED_RETRY)
				break;
		}
	}
	for (size_t i = 0; i < b->nmsgs; i++)
		msg_headers_free(&sc.prep[i].h);
	free(sc.prep);
	/* the database or the lease gone: the account's poll ends here; anything else fails this folder */
	if (f == STORE_FAILED_DB || f == STORE_FAILED_LEASE)
		ctx->account_fatal = true;
	if (f == STORE_FAILED_NONE) {
		free(err);
		return 0;
	}
	*error_r = db_error_set(err ? err : "batch failed", NULL);
	free(err);
	return -1;
}

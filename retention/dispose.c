/* mailvault-retention: one disposal run: approved erasures, then expiry, through the database's one
   deletion path, batch by batch; the run's record; the indexer woken; the deleted bytes vacuumed. */
#include "db.h"
#include "log.h"
#include "retention.h"
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Carries out approved erasures until none is pending (each call of mailvault_erase_batch is one
   transaction). */
static int dispose_erasures(const struct config *cfg, PGconn *db, struct retention_totals *t, const char **error_r)
{
	char limit[16];
	snprintf(limit, sizeof(limit), "%u", cfg->retention_batch);
	const char *p[] = { limit };
	while (!retention_stop) {
		PGresult *res = db_query(db, "SELECT serial, size, request, state, note FROM mailvault_erase_batch($1)", 1, p,
					 error_r);
		if (res == NULL)
			return -1;
		int n = PQntuples(res);
		for (int i = 0; i < n; i++) {
			if (strcmp(PQgetvalue(res, i, 3), "erased") == 0 && !PQgetisnull(res, i, 1)) {
				t->erased++;
				t->erased_bytes += strtoull(PQgetvalue(res, i, 1), NULL, 10);
			} else if (strcmp(PQgetvalue(res, i, 3), "refused") == 0) {
				t->refused++;
				log_info("erasure request %s: message %s is not erased: %s", PQgetvalue(res, i, 2),
					 PQgetvalue(res, i, 0), util_term(PQgetvalue(res, i, 4)));
			}
		}
		PQclear(res);
		if (n == 0)
			break;
		log_debug("erasure batch: %d messages handled", n);
	}
	return 0;
}

/* Disposes of every eligible message, batch after batch, each call of mailvault_dispose_batch its own
   transaction (autocommit): a batch is wholly done or not at all, whatever stops the program. */
static int dispose_expired(const struct config *cfg, PGconn *db, struct retention_totals *t, const char **error_r)
{
	char after[24] = "0", limit[16], ms[16];
	snprintf(limit, sizeof(limit), "%u", cfg->retention_batch);
	snprintf(ms, sizeof(ms), "%u", cfg->retention_batch_ms);
	while (!retention_stop) {
		const char *p[] = { after, limit, ms };
		double t0 = util_now();
		PGresult *res = db_query(db, "SELECT serial, size, reason FROM mailvault_dispose_batch($1::bigint, $2, $3)",
					 3, p, error_r);
		if (res == NULL)
			return -1;
		int n = PQntuples(res);
		uint64_t count = 0, bytes = 0;
		bool done = true;
		for (int i = 0; i < n; i++) {
			if (strcmp(PQgetvalue(res, i, 2), "continue") == 0) {
				/* the last row: where the next batch starts, NULL when nothing is left */
				done = PQgetisnull(res, i, 0);
				if (!done)
					snprintf(after, sizeof(after), "%s", PQgetvalue(res, i, 0));
			} else {
				count++;
				bytes += strtoull(PQgetvalue(res, i, 1), NULL, 10);
			}
		}
		PQclear(res);
		t->disposed += count;
		t->disposed_bytes += bytes;
		log_debug("disposal batch: %" PRIu64 " messages (%" PRIu64 " bytes) in %.3f s, next after serial %s",
			  count, bytes, util_now() - t0, done ? "(none: done)" : after);
		if (done)
			break;
	}
	return 0;
}

/* Collects the warnings VACUUM gives instead of failing (a table it may not vacuum is skipped). */
static void dispose_vacuum_notice(void *arg, const PGresult *res)
{
	char **first = arg;
	const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	if (*first == NULL && sev != NULL && strcmp(sev, "WARNING") == 0)
		*first = xstrdup(PQresultErrorMessage(res));
}

/* VACUUMs the tables that held what was deleted, so their space is reused (not FULL: it would lock them
   against ingest and search); the TOAST table of blobs, where the bytes are, is vacuumed with it.
   Returns NULL, or why not (malloc'd). */
static char *dispose_vacuum(const struct config *cfg)
{
	const char *conninfo = cfg->retention_vacuum_conninfo ? cfg->retention_vacuum_conninfo : cfg->conninfo;
	const char *err;
	PGconn *vdb = db_connect(conninfo, "mailvault-retention vacuum", NULL, &err);
	if (vdb == NULL)
		return xstrdup(err);
	char *warning = NULL;
	PQsetNoticeReceiver(vdb, dispose_vacuum_notice, &warning);
	char *why = NULL;
	double t0 = util_now();
	if (db_exec(vdb, "VACUUM blobs, messages, locations", 0, NULL, &err) < 0)
		why = xstrdup(err);
	else if (warning != NULL)
		why = xstrdup(db_error_set("VACUUM skipped a table", warning));
	else
		log_debug("vacuumed blobs, messages and locations in %.1f s", util_now() - t0);
	free(warning);
	db_close(&vdb);
	return why;
}

/* ANALYZEs the tables the choice of candidates reads, with the VACUUM login, before a run: right after a
   large ingest their statistics may be missing, and the plans that choose and check candidates degrade
   from milliseconds to seconds per batch. ANALYZE samples a bounded number of rows, whatever the size. A
   login that may not is only noted (autovacuum analyzes later). */
static void dispose_analyze(const struct config *cfg)
{
	const char *conninfo = cfg->retention_vacuum_conninfo ? cfg->retention_vacuum_conninfo : cfg->conninfo;
	const char *err;
	PGconn *adb = db_connect(conninfo, "mailvault-retention analyze", NULL, &err);
	if (adb == NULL) {
		log_debug("no ANALYZE before the run: %s", err);
		return;
	}
	char *warning = NULL;
	PQsetNoticeReceiver(adb, dispose_vacuum_notice, &warning);
	if (db_exec(adb, "ANALYZE messages, locations, folders, hold_coverage, policy_coverage, index_queue", 0, NULL, &err) < 0)
		log_debug("no ANALYZE before the run: %s", err);
	else if (warning != NULL)
		log_debug("ANALYZE before the run skipped a table: %s", warning);
	free(warning);
	db_close(&adb);
}

/* Sets the run's record to what was done. */
static int dispose_record(PGconn *db, const char *run, const struct retention_totals *t, const char **error_r)
{
	char disposed[24], erased[24], bytes[24];
	snprintf(disposed, sizeof(disposed), "%" PRIu64, t->disposed);
	snprintf(erased, sizeof(erased), "%" PRIu64, t->erased);
	snprintf(bytes, sizeof(bytes), "%" PRIu64, t->disposed_bytes + t->erased_bytes);
	const char *p[] = { run, disposed, erased, bytes };
	return db_exec(db, "UPDATE disposal_runs SET finished_at = now(), disposed = $2, erased = $3, bytes = $4 "
		       "WHERE id = $1", 4, p, error_r);
}

/* One run, as retention.h says. */
int retention_run(const struct config *cfg, PGconn *db, struct retention_totals *totals_r, const char **error_r)
{
	memset(totals_r, 0, sizeof(*totals_r));
	struct retention_totals *t = totals_r;
	double t0 = util_now();
	PGresult *res = db_query(db, "INSERT INTO disposal_runs (started_at) VALUES (now()) RETURNING id", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	char run[24];
	snprintf(run, sizeof(run), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	dispose_analyze(cfg);
	int rc = dispose_erasures(cfg, db, t, error_r);
	if (rc == 0)
		rc = dispose_expired(cfg, db, t, error_r);
	double dt = util_now() - t0;
	/* what went before a failure went for good: it is recorded all the same */
	char *saved = rc < 0 ? xstrdup(*error_r) : NULL;
	const char *err;
	bool removed = t->disposed + t->erased > 0;
	/* the indexer listens on the poller's channel: it drains the queued removals at once */
	if (removed && db_exec(db, "NOTIFY mailvault_new_mail", 0, NULL, &err) < 0)
		log_warn("cannot wake the indexer (it removes the documents at its next pass): %s", err);
	if (dispose_record(db, run, t, &err) < 0) {
		if (saved == NULL)
			saved = xstrdup(err);
		else
			log_error("cannot record disposal run %s: %s", run, err);
		rc = -1;
	}
	uint64_t kept = 0;
	res = db_query(db, "SELECT count(*) FROM mailvault_held_among(ARRAY(SELECT m.serial FROM messages m WHERE m.retain_until <= now()))", 0,
		       NULL, &err);
	if (res != NULL) {
		kept = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
		PQclear(res);
	} else {
		log_warn("cannot count the messages kept by holds: %s", err);
	}
	log_info("disposed %" PRIu64 " messages (%" PRIu64 " bytes) in %.1f s (%.0f msg/s); erased %" PRIu64
		 "; kept %" PRIu64 " under holds%s", t->disposed, t->disposed_bytes, dt,
		 dt > 0 ? (double)t->disposed / dt : 0.0, t->erased, kept,
		 retention_stop ? "; stopped early on request" : "");
	if (t->refused > 0)
		log_info("%" PRIu64 " messages of approved erasure requests were refused (under a hold or a locked policy)",
			 t->refused);

	/* disposal is done when the bytes are gone, not only the rows */
	if (removed) {
		char *why = dispose_vacuum(cfg);
		const char *p[] = { run, why };
		if (why != NULL) {
			log_warn("VACUUM after disposal run %s failed: %s; the disposed messages' bytes stay in the table "
				 "files until autovacuum reclaims them; set [retention] vacuum_conninfo to a login that owns "
				 "the tables (a member of mailvault_owner) or a superuser", run, why);
			if (db_exec(db, "UPDATE disposal_runs SET vacuum_error = $2 WHERE id = $1", 2, p, &err) < 0)
				log_warn("cannot record the VACUUM error of run %s: %s", run, err);
		} else if (db_exec(db, "UPDATE disposal_runs SET vacuumed_at = now(), vacuum_error = NULL WHERE id = $1",
				   1, p, &err) < 0) {
			log_warn("cannot record the VACUUM of run %s: %s", run, err);
		}
		free(why);
	}
	if (saved != NULL) {
		*error_r = db_error_set(saved, NULL);
		free(saved);
	}
	return rc;
}

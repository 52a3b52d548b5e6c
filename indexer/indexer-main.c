/* mailvault-indexer: keeps the Xapian index in step with the archive. Takes messages with indexed_at
   IS NULL in serial order; one thread per shard parses and writes that shard's messages while the main
   thread fetches the next batch; all shards commit Xapian, and only then are the messages marked
   indexed in PostgreSQL, so a crash at any point re-indexes idempotently. */
#include "buf.h"
#include "config.h"
#include "db.h"
#include "doc-build.h"
#include "index-layout.h"
#include "indexer-coverage.h"
#include "log.h"
#include "mime-extract.h"
#include "pg-array.h"
#include "program.h"
#include "util.h"
#include "xapian_shim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FETCH_MAX_MESSAGES 1000
#define FETCH_MAX_BYTES (32u * 1024 * 1024)
#define COMMIT_EVERY_MESSAGES 10000
#define COMMIT_EVERY_SECONDS 10.0
/* Documents a shard's writer holds in memory before Xapian writes them into its tables (not a commit:
   the shim keeps a transaction open). Xapian's default, 10,000, makes its in-memory postings large and
   slow: flushing every 500 halves the indexing time. */
#define XAPIAN_FLUSH_EVERY "500"

static volatile sig_atomic_t stop_requested;

/* SIGTERM/SIGINT: finish the batch in hand, commit, exit. */
static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

/* One message on its way into the index. */
struct item {
	int64_t serial;
	const unsigned char *raw;    /* points into the PGresult */
	size_t len;
	int64_t fallback_date;
	uint64_t size;
	char *locs_text;             /* the places it was seen, as DOC_LOCATIONS_SQL gives them */
	size_t locs_len;
	bool has_attachment;         /* set by the shard thread that indexed it */
	char *note;                  /* what could not be read, if anything (set likewise) */
};

/* What the main thread hands to the shard threads, in order: a batch of fetched messages (each shard
   indexes its own) or a commit request (each shard commits its database). */
struct unit {
	struct unit *next;           /* the main thread's list of units not yet reaped, oldest first */
	bool commit;
	PGresult *res;               /* a batch: the fetched rows, which items point into */
	struct item *items;
	size_t n;
	size_t remaining;            /* shards that have not finished the unit yet (under ix->lock) */
	char *error;                 /* the first Xapian error of any shard, malloc'd (under ix->lock) */
};

#define SHARD_QUEUE 16           /* units queued per shard at most: a few batches and commits */
#define MAX_BATCHES_IN_FLIGHT 2  /* batches queued but not yet indexed, beside the one being fetched */

/* One shard's writer thread and its queue of units. */
struct shard {
	struct indexer *ix;
	size_t k;
	pthread_t tid;
	struct unit *queue[SHARD_QUEUE];
	size_t head, count;
};

/* The indexer's state for one run. */
struct indexer {
	struct config *cfg;
	PGconn *db;
	struct xs_db **xdbs;         /* one writer per shard, used by that shard's thread only while it runs */
	size_t nshards;
	struct shard *shards;
	pthread_mutex_t lock;
	pthread_cond_t work, done;   /* shards wait for units; the main thread for finished ones */
	bool quit;
	struct unit *first, *last;   /* queued and not yet reaped (main thread's list, changed under lock) */
	size_t batches_in_flight;
	char *failed;                /* the first error of a unit reaped since the last drain, malloc'd */
	/* indexed in Xapian but not yet committed and marked in PostgreSQL */
	struct pg_array pending_serials, pending_flags;
	size_t npending;
	/* queued since the last commit request */
	size_t nqueued;
	double last_commit;
	uint64_t total_indexed;
};

/* Parses one message and builds its document. */
static struct xs_doc *item_build(struct item *it)
{
	struct mime_extract mx;
	mime_extract(it->raw, it->len, &mx);
	struct doc_location *locs;
	size_t k = doc_locations_parse(it->locs_text, it->locs_len, &locs);
	struct xs_doc *doc = doc_build(&mx, locs, k, it->fallback_date, it->size);
	it->has_attachment = mx.nattachments > 0;
	it->note = mx.problem ? xstrdup(mx.problem) : NULL;
	doc_locations_free(locs, k);
	mime_extract_free(&mx);
	return doc;
}

/* Does a shard's part of one unit; returns the first Xapian error (malloc'd) or NULL. */
static char *shard_do_unit(struct shard *sh, struct unit *u)
{
	struct indexer *ix = sh->ix;
	char *xerr = NULL;
	if (u->commit) {
		if (xs_db_commit(ix->xdbs[sh->k], &xerr) != XS_OK)
			return xerr ? xerr : xstrdup("unknown error");
		return NULL;
	}
	for (size_t i = 0; i < u->n; i++) {
		struct item *it = &u->items[i];
		if (index_layout_shard_of((uint64_t)it->serial, ix->nshards) != sh->k)
			continue;
		struct xs_doc *doc = item_build(it);
		enum xs_status st = xs_db_replace(ix->xdbs[sh->k], (uint64_t)it->serial, doc, &xerr);
		xs_doc_free(&doc);
		if (st != XS_OK)
			return xerr ? xerr : xstrdup("unknown error");
	}
	return NULL;
}

/* A shard's thread: parses, builds and writes its messages of every batch, and commits its database
   when asked, in the order the units were queued; so every core both parses and writes, and the
   shards commit at the same time. */
static void *shard_thread(void *arg)
{
	struct shard *sh = arg;
	struct indexer *ix = sh->ix;
	pthread_mutex_lock(&ix->lock);
	for (;;) {
		while (sh->count == 0 && !ix->quit)
			pthread_cond_wait(&ix->work, &ix->lock);
		if (sh->count == 0)
			break;
		struct unit *u = sh->queue[sh->head];
		sh->head = (sh->head + 1) % SHARD_QUEUE;
		sh->count--;
		pthread_mutex_unlock(&ix->lock);
		char *err = shard_do_unit(sh, u);
		pthread_mutex_lock(&ix->lock);
		if (err != NULL && u->error == NULL)
			u->error = err;
		else
			free(err);
		if (--u->remaining == 0)
			pthread_cond_broadcast(&ix->done);
	}
	pthread_mutex_unlock(&ix->lock);
	return NULL;
}

/* Starts one thread per shard. */
static void pipeline_start(struct indexer *ix)
{
	pthread_mutex_init(&ix->lock, NULL);
	pthread_cond_init(&ix->work, NULL);
	pthread_cond_init(&ix->done, NULL);
	ix->shards = xcalloc(ix->nshards, sizeof(*ix->shards));
	for (size_t k = 0; k < ix->nshards; k++) {
		ix->shards[k].ix = ix;
		ix->shards[k].k = k;
		if (pthread_create(&ix->shards[k].tid, NULL, shard_thread, &ix->shards[k]) != 0)
			log_fatal("cannot start a shard thread");
	}
}

/* Stops the shard threads once their queues are empty. */
static void pipeline_stop(struct indexer *ix)
{
	if (ix->shards == NULL)
		return;
	pthread_mutex_lock(&ix->lock);
	ix->quit = true;
	pthread_cond_broadcast(&ix->work);
	pthread_mutex_unlock(&ix->lock);
	for (size_t k = 0; k < ix->nshards; k++)
		pthread_join(ix->shards[k].tid, NULL);
	free(ix->shards);
	ix->shards = NULL;
	pthread_cond_destroy(&ix->done);
	pthread_cond_destroy(&ix->work);
	pthread_mutex_destroy(&ix->lock);
}

/* Records in PostgreSQL what a finished commit made durable in every shard. */
static void indexer_mark_committed(struct indexer *ix)
{
	if (ix->npending == 0)
		return;
	const char *p[] = { pg_array_text(&ix->pending_serials), pg_array_text(&ix->pending_flags) };
	const char *err;
	if (db_exec(ix->db, "UPDATE messages m SET indexed_at = now(), has_attachments = v.h "
		    "FROM unnest($1::bigint[], $2::boolean[]) AS v(s, h) WHERE m.serial = v.s", 2, p, &err) < 0) {
		if (ix->failed == NULL)
			ix->failed = xstrdup(err);
	} else {
		ix->total_indexed += ix->npending;
		log_debug("committed %zu documents", ix->npending);
	}
	pg_array_reset(&ix->pending_serials);
	pg_array_reset(&ix->pending_flags);
	ix->npending = 0;
}

/* Takes in a finished unit (called without the lock): a batch's messages become pending, a commit
   marks the pending ones indexed; after an error nothing more is marked. Frees the unit. */
static void indexer_reap_unit(struct indexer *ix, struct unit *u)
{
	if (u->error != NULL && ix->failed == NULL) {
		ix->failed = xstrdup(db_error_set(u->commit ? "Xapian commit failed" : "Xapian write failed", u->error));
	}
	if (u->commit) {
		if (ix->failed == NULL)
			indexer_mark_committed(ix);
	} else {
		for (size_t i = 0; i < u->n; i++) {
			struct item *it = &u->items[i];
			if (ix->failed == NULL) {
				pg_array_add_int(&ix->pending_serials, it->serial);
				pg_array_add_bool(&ix->pending_flags, it->has_attachment);
				ix->npending++;
			}
			if (it->note != NULL) {
				char s[24];
				snprintf(s, sizeof(s), "%lld", (long long)it->serial);
				const char *p[] = { s, it->note };
				const char *err;
				log_info("message %s indexed from what could be read: %s", s, it->note);
				if (db_exec(ix->db, "UPDATE messages SET index_note = $2 WHERE serial = $1", 2, p, &err) < 0)
					log_warn("cannot record the index note of message %s: %s", s, err);
			}
			free(it->note);
			free(it->locs_text);
		}
		free(u->items);
		PQclear(u->res);
	}
	free(u->error);
	free(u);
}

/* Reaps finished units in queue order; with wait, first waits until the oldest one is finished
   (if there is one). */
static void indexer_reap(struct indexer *ix, bool wait)
{
	pthread_mutex_lock(&ix->lock);
	while (wait && ix->first != NULL && ix->first->remaining > 0)
		pthread_cond_wait(&ix->done, &ix->lock);
	while (ix->first != NULL && ix->first->remaining == 0) {
		struct unit *u = ix->first;
		ix->first = u->next;
		if (ix->first == NULL)
			ix->last = NULL;
		if (!u->commit)
			ix->batches_in_flight--;
		pthread_mutex_unlock(&ix->lock);
		indexer_reap_unit(ix, u);
		pthread_mutex_lock(&ix->lock);
	}
	pthread_mutex_unlock(&ix->lock);
}

/* Queues a unit for every shard (waiting for room in their queues). */
static void indexer_queue(struct indexer *ix, struct unit *u)
{
	u->remaining = ix->nshards;
	pthread_mutex_lock(&ix->lock);
	for (;;) {
		bool room = true;
		for (size_t k = 0; k < ix->nshards; k++)
			room = room && ix->shards[k].count < SHARD_QUEUE;
		if (room)
			break;
		pthread_mutex_unlock(&ix->lock);
		indexer_reap(ix, true);
		pthread_mutex_lock(&ix->lock);
	}
	for (size_t k = 0; k < ix->nshards; k++) {
		struct shard *sh = &ix->shards[k];
		sh->queue[(sh->head + sh->count) % SHARD_QUEUE] = u;
		sh->count++;
	}
	if (ix->last != NULL)
		ix->last->next = u;
	else
		ix->first = u;
	ix->last = u;
	if (!u->commit)
		ix->batches_in_flight++;
	pthread_cond_broadcast(&ix->work);
	pthread_mutex_unlock(&ix->lock);
}

/* Asks every shard to commit what it has written so far; once all have, those messages are marked
   indexed in PostgreSQL (when the commit unit is reaped). */
static void indexer_queue_commit(struct indexer *ix)
{
	if (ix->nqueued == 0)
		return;
	struct unit *u = xcalloc(1, sizeof(*u));
	u->commit = true;
	indexer_queue(ix, u);
	ix->nqueued = 0;
	ix->last_commit = util_now();
}

/* Waits for every queued unit and takes it in. Returns -1 with *error_r if one failed since the last
   drain (nothing after the failure is marked indexed). */
static int indexer_drain(struct indexer *ix, const char **error_r)
{
	for (;;) {
		indexer_reap(ix, true);
		pthread_mutex_lock(&ix->lock);
		bool empty = ix->first == NULL;
		pthread_mutex_unlock(&ix->lock);
		if (empty)
			break;
	}
	if (ix->failed != NULL) {
		*error_r = db_error_set(ix->failed, NULL);
		free(ix->failed);
		ix->failed = NULL;
		pg_array_reset(&ix->pending_serials);
		pg_array_reset(&ix->pending_flags);
		ix->npending = 0;
		return -1;
	}
	return 0;
}

/* Fails the run in hand: waits for the queued units without marking anything more indexed. Returns -1
   with *error_r set to the first error (err, unless a unit failed before). */
static int indexer_fail(struct indexer *ix, const char *err, const char **error_r)
{
	if (ix->failed == NULL)
		ix->failed = xstrdup(err);
	return indexer_drain(ix, error_r);
}

/* Commits everything queued, waits for it and marks it indexed. */
static int indexer_commit(struct indexer *ix, const char **error_r)
{
	indexer_queue_commit(ix);
	return indexer_drain(ix, error_r);
}

/* Fetches one batch (where sql selects the messages) and queues it for the shard threads, which
   index it while the main thread fetches the next one. */
static int indexer_run_batch(struct indexer *ix, const char *sql, const char *const *params, int nparams,
			     size_t *count_r, int64_t *last_serial_r, const char **error_r)
{
	PGresult *res = PQexecParams(ix->db, sql, nparams, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		const char *err = db_error_set("cannot read messages to index", PQresultErrorMessage(res));
		PQclear(res);
		return indexer_fail(ix, err, error_r);
	}
	size_t n = (size_t)PQntuples(res);
	*count_r = n;
	if (n == 0) {
		PQclear(res);
		return 0;
	}
	struct item *items = xcalloc(n, sizeof(*items));
	for (size_t i = 0; i < n; i++) {
		/* binary results: text columns arrive as their bytes, not NUL-terminated */
		char tmp[32];
		int len = PQgetlength(res, (int)i, 0);
		snprintf(tmp, sizeof(tmp), "%.*s", len, PQgetvalue(res, (int)i, 0));
		items[i].serial = strtoll(tmp, NULL, 10);
		items[i].raw = (const unsigned char *)PQgetvalue(res, (int)i, 1);
		items[i].len = (size_t)PQgetlength(res, (int)i, 1);
		len = PQgetlength(res, (int)i, 2);
		snprintf(tmp, sizeof(tmp), "%.*s", len, PQgetvalue(res, (int)i, 2));
		items[i].fallback_date = strtoll(tmp, NULL, 10);
		items[i].size = items[i].len;
		items[i].locs_len = (size_t)PQgetlength(res, (int)i, 3);
		items[i].locs_text = xstrndup(PQgetvalue(res, (int)i, 3), items[i].locs_len);
	}
	*last_serial_r = items[n - 1].serial;

	/* bounded memory: at most MAX_BATCHES_IN_FLIGHT batches queued besides this one */
	for (;;) {
		indexer_reap(ix, false);
		pthread_mutex_lock(&ix->lock);
		bool room = ix->batches_in_flight < MAX_BATCHES_IN_FLIGHT;
		pthread_mutex_unlock(&ix->lock);
		if (room)
			break;
		indexer_reap(ix, true);
	}
	struct unit *u = xcalloc(1, sizeof(*u));
	u->res = res;
	u->items = items;
	u->n = n;
	indexer_queue(ix, u);
	ix->nqueued += n;
	if (ix->nqueued >= COMMIT_EVERY_MESSAGES || util_now() - ix->last_commit >= COMMIT_EVERY_SECONDS)
		indexer_queue_commit(ix);
	if (ix->failed != NULL)
		return indexer_drain(ix, error_r);
	return 0;
}

/* Columns of a batch, in binary result format: serial, raw, fallback date, the places it was seen. */
#define BATCH_COLUMNS \
	"SELECT m.serial::text, b.raw, " \
	"extract(epoch FROM coalesce(m.date, m.ingested_at))::bigint::text, " DOC_LOCATIONS_SQL("m.serial") \
	" FROM messages m JOIN blobs b ON b.sha256 = m.sha256 "

/* Indexes every message not yet indexed, in serial order, in batches bounded by count and bytes. */
static int indexer_index_pending(struct indexer *ix, const char **error_r)
{
	int64_t after = 0;
	for (;;) {
		if (stop_requested)
			break;
		/* choose the batch's upper bound so it holds at most FETCH_MAX_BYTES of raw mail */
		char s_after[24], s_limit[24], s_hi[24];
		snprintf(s_after, sizeof(s_after), "%lld", (long long)after);
		snprintf(s_limit, sizeof(s_limit), "%d", FETCH_MAX_MESSAGES);
		const char *p[] = { s_after, s_limit };
		PGresult *res = db_query(ix->db, "SELECT serial, size FROM messages WHERE indexed_at IS NULL AND "
					 "serial > $1 ORDER BY serial LIMIT $2", 2, p, error_r);
		if (res == NULL)
			return indexer_fail(ix, *error_r, error_r);
		int rows = PQntuples(res);
		if (rows == 0) {
			PQclear(res);
			break;
		}
		uint64_t bytes = 0;
		int last = 0;
		for (int i = 0; i < rows; i++) {
			bytes += strtoull(PQgetvalue(res, i, 1), NULL, 10);
			if (i > 0 && bytes > FETCH_MAX_BYTES)
				break;
			last = i;
		}
		snprintf(s_hi, sizeof(s_hi), "%s", PQgetvalue(res, last, 0));
		PQclear(res);
		const char *q[] = { s_after, s_hi };
		size_t n;
		int64_t last_serial;
		if (indexer_run_batch(ix, BATCH_COLUMNS "WHERE m.indexed_at IS NULL AND m.serial > $1 AND m.serial <= $2 "
				      "ORDER BY m.serial", q, 2, &n, &last_serial, error_r) < 0)
			return -1;
		after = strtoll(s_hi, NULL, 10);
	}
	return indexer_commit(ix, error_r);
}

/* Applies one read of the queue (at most 10000 changes): removals (retention) go to Xapian; a re-index
   (a message seen in a new place, queued in the same transaction as the place) makes the message pending
   again, so this pass indexes it whole with every place it is known in. *n_r: the changes read;
   *deletes_r: how many were removals. */
static int indexer_drain_queue_once(struct indexer *ix, int *n_r, size_t *deletes_r, const char **error_r)
{
	*n_r = 0;
	*deletes_r = 0;
	PGresult *res = db_query(ix->db, "SELECT id, serial, op FROM index_queue ORDER BY id LIMIT 10000", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	*n_r = n;
	struct pg_array ids = PG_ARRAY_INIT, again = PG_ARRAY_INIT;
	size_t deletes = 0;
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		char *xerr = NULL;
		uint64_t serial = strtoull(PQgetvalue(res, i, 1), NULL, 10);
		if (strcmp(PQgetvalue(res, i, 2), "delete") == 0) {
			if (xs_db_delete(ix->xdbs[index_layout_shard_of(serial, ix->nshards)], serial, &xerr) != XS_OK) {
				*error_r = db_error_set("Xapian delete failed", xerr);
				rc = -1;
			}
			deletes++;
			free(xerr);
		} else {
			pg_array_add_int(&again, (int64_t)serial);
		}
		pg_array_add_int(&ids, strtoll(PQgetvalue(res, i, 0), NULL, 10));
	}
	PQclear(res);
	*deletes_r = deletes;
	if (rc == 0 && n > 0) {
		char *xerr = NULL;
		for (size_t k = 0; k < ix->nshards && rc == 0 && deletes > 0; k++) {
			if (xs_db_commit(ix->xdbs[k], &xerr) != XS_OK) {
				*error_r = db_error_set("Xapian commit failed", xerr);
				rc = -1;
			}
		}
		free(xerr);
		const char *p_ids[] = { pg_array_text(&ids) }, *p_again[] = { pg_array_text(&again) };
		if (rc == 0 &&
		    (db_begin(ix->db, error_r) < 0 ||
		     db_exec(ix->db, "UPDATE messages SET indexed_at = NULL WHERE serial = ANY($1::bigint[]) AND "
			     "indexed_at IS NOT NULL", 1, p_again, error_r) < 0 ||
		     db_exec(ix->db, "DELETE FROM index_queue WHERE id = ANY($1::bigint[])", 1, p_ids, error_r) < 0 ||
		     db_commit(ix->db, error_r) < 0)) {
			db_rollback(ix->db);
			rc = -1;
		}
		if (rc == 0)
			log_info("applied %d queued index changes (%zu removals, %zu re-indexed)", n, deletes, again.count);
	}
	pg_array_free(&ids);
	pg_array_free(&again);
	return rc;
}

/* Commits every shard once more, with nothing but a time stamp changed: Xapian (glass) keeps the blocks of
   the revision before the last commit for readers still on it, so the revision that held the removed
   documents is dropped only by the commit after the one that removed them. */
static int indexer_drop_old_revision(struct indexer *ix, const char **error_r)
{
	char stamp[32];
	snprintf(stamp, sizeof(stamp), "%.0f", (double)time(NULL));
	for (size_t k = 0; k < ix->nshards; k++) {
		char *xerr = NULL;
		if (xs_db_set_metadata(ix->xdbs[k], "mailvault.purged", stamp, &xerr) != XS_OK ||
		    xs_db_commit(ix->xdbs[k], &xerr) != XS_OK) {
			*error_r = db_error_set("cannot commit the index after removals", xerr);
			free(xerr);
			return -1;
		}
	}
	return 0;
}

/* Applies the whole queue, read after read, then records on every finished disposal run whose removals
   were all in the queue when it was first read that they are gone from the index. */
static int indexer_drain_queue(struct indexer *ix, const char **error_r)
{
	PGresult *res = db_query(ix->db, "SELECT now()", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	/* a run finished by then had committed every removal it queued before this first read */
	char *read_at = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	int n;
	size_t deletes, total_deletes = 0;
	int rc = 0;
	do {
		if (indexer_drain_queue_once(ix, &n, &deletes, error_r) < 0) {
			rc = -1;
			break;
		}
		total_deletes += deletes;
	} while (n == 10000 && !stop_requested);
	if (rc == 0 && total_deletes > 0)
		rc = indexer_drop_old_revision(ix, error_r);
	/* only once the queue as it was at read_at is wholly applied */
	if (rc == 0 && n < 10000) {
		const char *p[] = { read_at };
		res = db_query(ix->db, "UPDATE disposal_runs SET index_purged_at = now() WHERE finished_at IS NOT NULL "
			       "AND index_purged_at IS NULL AND finished_at <= $1::timestamptz RETURNING id", 1, p, error_r);
		if (res == NULL) {
			rc = -1;
		} else {
			if (PQntuples(res) > 0)
				log_info("the index no longer holds what %d disposal run%s removed", PQntuples(res),
					 PQntuples(res) == 1 ? "" : "s");
			PQclear(res);
		}
	}
	free(read_at);
	return rc;
}

/* Marks every shard as written the way this version writes (after a full pass, or when it is new). */
static int indexer_mark_format(struct indexer *ix, const char **error_r)
{
	for (size_t k = 0; k < ix->nshards; k++) {
		char *xerr = NULL;
		if (xs_db_set_metadata(ix->xdbs[k], INDEX_FORMAT_KEY, INDEX_FORMAT, &xerr) != XS_OK ||
		    xs_db_commit(ix->xdbs[k], &xerr) != XS_OK) {
			*error_r = db_error_set("cannot mark the index's format", xerr);
			free(xerr);
			return -1;
		}
	}
	return 0;
}

/* One pass: the queue (removals, re-indexing), then every pending message. A pass that re-indexes the
   whole archive (after `mailvault index rebuild`) leaves every document in this version's format. */
static int indexer_pass(struct indexer *ix, const char **error_r)
{
	double t0 = util_now();
	uint64_t before = ix->total_indexed;
	if (indexer_drain_queue(ix, error_r) < 0)
		return -1;
	PGresult *res = db_query(ix->db, "SELECT EXISTS (SELECT 1 FROM messages) AND NOT EXISTS (SELECT 1 FROM messages "
				 "WHERE indexed_at IS NOT NULL)", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	bool whole = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (indexer_index_pending(ix, error_r) < 0)
		return -1;
	if (whole && !stop_requested && indexer_mark_format(ix, error_r) < 0)
		return -1;
	/* what the holds' and policies' queries cover, among what is now committed and marked indexed */
	if (!stop_requested && indexer_coverage(ix->db, ix->cfg->index_path, error_r) < 0)
		return -1;
	uint64_t done = ix->total_indexed - before;
	if (done > 0) {
		double dt = util_now() - t0;
		log_info("indexed %llu messages in %.1f s (%.0f msg/s)", (unsigned long long)done, dt,
			 dt > 0 ? (double)done / dt : 0.0);
	}
	return 0;
}

/* Waits for the poller's NOTIFY or a timeout. */
static void indexer_wait(struct indexer *ix, unsigned seconds)
{
	int fd = PQsocket(ix->db);
	for (unsigned waited = 0; waited < seconds && !stop_requested; waited++) {
		fd_set rfds;
		FD_ZERO(&rfds);
		FD_SET(fd, &rfds);
		struct timeval tv = { .tv_sec = 1 };
		if (select(fd + 1, &rfds, NULL, NULL, &tv) > 0) {
			PQconsumeInput(ix->db);
			PGnotify *n;
			bool woke = false;
			while ((n = PQnotifies(ix->db)) != NULL) {
				PQfreemem(n);
				woke = true;
			}
			if (woke)
				return;
		}
	}
}

int main(int argc, char **argv)
{
	bool once;
	int status;
	struct indexer ix = { 0 };
	ix.cfg = program_start(argc, argv, "mailvault-indexer", "index everything pending and exit", &once, &status);
	if (ix.cfg == NULL)
		return status;
	const char *cfg_path = ix.cfg->path;
	if (ix.cfg->index_path == NULL)
		log_fatal("%s: [indexer] index_path is required", cfg_path);
	/* the index holds every message's text: its owner and group (mailvault-web's) only, never others */
	umask(027);
	struct stat ist;
	if (stat(ix.cfg->index_path, &ist) == 0 && (ist.st_mode & 07) != 0 &&
	    chmod(ix.cfg->index_path, ist.st_mode & 07770) < 0)
		log_warn("%s: others may read the index, and it cannot be changed: %s", ix.cfg->index_path, strerror(errno));
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want_shards = ix.cfg->index_shards ? ix.cfg->index_shards
			       : ncpu < 1 ? 1 : ncpu > INDEX_MAX_SHARDS ? INDEX_MAX_SHARDS : (unsigned)ncpu;
	mime_extract_init();
	/* read by Xapian when a writer opens; before any thread starts, and an administrator's value wins */
	setenv("XAPIAN_FLUSH_THRESHOLD", XAPIAN_FLUSH_EVERY, 0);
	struct sigaction sa = { .sa_handler = on_stop };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	const char *err;
	char *xerr = NULL;
	ix.db = db_connect(config_conninfo_for(ix.cfg, "indexer"), "mailvault-indexer", "mailvault_indexer", &err);
	if (ix.db == NULL)
		log_fatal("%s", err);
	char **paths = index_layout_create(ix.cfg->index_path, want_shards, &ix.nshards, &xerr);
	if (paths == NULL)
		log_fatal("cannot open the index: %s", xerr);
	ix.xdbs = xcalloc(ix.nshards, sizeof(*ix.xdbs));
	for (size_t k = 0; k < ix.nshards; k++) {
		uint64_t docs = 0;
		if (xs_db_open_writable(paths[k], &ix.xdbs[k], &xerr) != XS_OK ||
		    xs_db_doccount(ix.xdbs[k], &docs, &xerr) != XS_OK)
			log_fatal("cannot open index shard %s: %s", paths[k], xerr);
		/* a new shard holds only what this version writes */
		if (docs == 0 && (xs_db_set_metadata(ix.xdbs[k], INDEX_FORMAT_KEY, INDEX_FORMAT, &xerr) != XS_OK ||
				  xs_db_commit(ix.xdbs[k], &xerr) != XS_OK))
			log_fatal("cannot mark index shard %s: %s", paths[k], xerr);
	}
	index_layout_free(&paths);
	log_info("index at %s: %zu shard%s, one writer thread each", ix.cfg->index_path, ix.nshards,
		 ix.nshards == 1 ? "" : "s");
	if (!once && db_exec(ix.db, "LISTEN mailvault_new_mail", 0, NULL, &err) < 0)
		log_fatal("%s", err);
	ix.last_commit = util_now();
	pipeline_start(&ix);
	int rc = 0;
	do {
		if (indexer_pass(&ix, &err) < 0) {
			log_error("%s", err);
			rc = 1;
			if (once)
				break;
			/* a lost database connection is re-established; anything else is retried after a pause */
			if (db_conn_lost(ix.db)) {
				db_close(&ix.db);
				ix.db = db_connect(config_conninfo_for(ix.cfg, "indexer"), "mailvault-indexer",
						   "mailvault_indexer", &err);
				if (ix.db == NULL || db_exec(ix.db, "LISTEN mailvault_new_mail", 0, NULL, &err) < 0)
					log_error("%s", err);
			}
			sleep(5);
			continue;
		}
		rc = 0;
		if (!once && ix.db != NULL)
			indexer_wait(&ix, 30);
	} while (!once && !stop_requested);
	pipeline_stop(&ix);
	for (size_t k = 0; k < ix.nshards; k++)
		xs_db_close(&ix.xdbs[k]);
	free(ix.xdbs);
	db_close(&ix.db);
	pg_array_free(&ix.pending_serials);
	pg_array_free(&ix.pending_flags);
	config_free(&ix.cfg);
	return rc;
}

/* mailvault-indexer: keeps the Xapian index in step with the archive. Takes messages with indexed_at
   IS NULL in serial order, parses them on every core, writes them with one writer, commits Xapian,
   and only then marks them indexed in PostgreSQL, so a crash at any point re-indexes idempotently. */
#include "buf.h"
#include "config.h"
#include "db.h"
#include "doc-build.h"
#include "index-layout.h"
#include "log.h"
#include "mime-extract.h"
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
#include <unistd.h>

#define FETCH_MAX_MESSAGES 1000
#define FETCH_MAX_BYTES (32u * 1024 * 1024)
#define COMMIT_EVERY_MESSAGES 10000
#define COMMIT_EVERY_SECONDS 10.0

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
	char *locs_text;             /* "account\tfolder\n..." */
	struct xs_doc *doc;          /* built by a parser thread */
	bool has_attachment;
	char *note;                  /* what could not be read, if anything */
};

/* The indexer's state for one run. */
struct indexer {
	struct config *cfg;
	PGconn *db;
	struct xs_db **xdbs;         /* one writer per shard */
	size_t nshards;
	/* indexed in Xapian but not yet committed and marked in PostgreSQL */
	struct buf pending_serials, pending_flags;
	size_t npending;
	double last_commit;
	uint64_t total_indexed;
};

/* Parses one message and builds its document. */
static void item_build(struct item *it)
{
	struct mime_extract mx;
	mime_extract(it->raw, it->len, &mx);
	/* locations as (account, folder) pairs, from "account\tfolder" lines */
	size_t nlocs = 0;
	for (const char *p = it->locs_text; p && *p; p++)
		nlocs += *p == '\n';
	if (it->locs_text && *it->locs_text)
		nlocs++;
	struct doc_location *locs = xcalloc(nlocs ? nlocs : 1, sizeof(*locs));
	size_t k = 0;
	for (char *line = it->locs_text; line && *line && k < nlocs;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		char *tab = strchr(line, '\t');
		if (tab) {
			*tab = '\0';
			locs[k].account = line;
			locs[k].folder = tab + 1;
			k++;
		}
		line = nl ? nl + 1 : NULL;
	}
	it->doc = doc_build(&mx, locs, k, it->fallback_date, it->size);
	it->has_attachment = mx.nattachments > 0;
	it->note = mx.problem ? xstrdup(mx.problem) : NULL;
	free(locs);
	mime_extract_free(&mx);
}

/* One shard's share of a batch: its thread parses and writes its own messages, so every core
   both parses and writes (a single Xapian writer would be the bottleneck). */
struct shard_job {
	struct indexer *ix;
	struct item *items;
	size_t n, shard;
	char *error;                 /* the first write error, malloc'd */
};

/* Parses, builds and writes the batch's messages of one shard. */
static void *shard_thread(void *arg)
{
	struct shard_job *job = arg;
	for (size_t i = 0; i < job->n; i++) {
		struct item *it = &job->items[i];
		if (index_layout_shard_of((uint64_t)it->serial, job->ix->nshards) != job->shard)
			continue;
		item_build(it);
		char *xerr = NULL;
		if (job->error == NULL &&
		    xs_db_replace(job->ix->xdbs[job->shard], (uint64_t)it->serial, it->doc, &xerr) != XS_OK)
			job->error = xerr ? xerr : xstrdup("unknown error");
		else
			free(xerr);
		xs_doc_free(&it->doc);
	}
	return NULL;
}

/* Commits Xapian, then records in PostgreSQL what that commit made durable. */
static int indexer_commit(struct indexer *ix, const char **error_r)
{
	char *xerr = NULL;
	if (ix->npending == 0)
		return 0;
	/* every shard first: PostgreSQL hears only of what all of them made durable */
	for (size_t k = 0; k < ix->nshards; k++) {
		if (xs_db_commit(ix->xdbs[k], &xerr) != XS_OK) {
			*error_r = db_error_set("Xapian commit failed", xerr);
			free(xerr);
			return -1;
		}
	}
	buf_append_str(&ix->pending_serials, "}");
	buf_append_str(&ix->pending_flags, "}");
	const char *p[] = { (const char *)ix->pending_serials.data, (const char *)ix->pending_flags.data };
	int r = db_exec(ix->db, "UPDATE messages m SET indexed_at = now(), has_attachments = v.h "
			"FROM unnest($1::bigint[], $2::boolean[]) AS v(s, h) WHERE m.serial = v.s", 2, p, error_r);
	buf_reset(&ix->pending_serials);
	buf_reset(&ix->pending_flags);
	if (r < 0)
		return -1;
	ix->total_indexed += ix->npending;
	log_debug("committed %zu documents", ix->npending);
	ix->npending = 0;
	ix->last_commit = util_now();
	return 0;
}

/* Fetches, parses and writes one batch; where selects the messages (after $1, up to $2). */
static int indexer_run_batch(struct indexer *ix, const char *sql, const char *const *params, int nparams,
			     size_t *count_r, int64_t *last_serial_r, const char **error_r)
{
	PGresult *res = PQexecParams(ix->db, sql, nparams, NULL, params, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		*error_r = db_error_set("cannot read messages to index", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
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
		items[i].locs_text = xstrndup(PQgetvalue(res, (int)i, 3), (size_t)PQgetlength(res, (int)i, 3));
	}
	*last_serial_r = items[n - 1].serial;

	pthread_t tids[INDEX_MAX_SHARDS];
	struct shard_job jobs[INDEX_MAX_SHARDS];
	for (size_t k = 0; k < ix->nshards; k++) {
		jobs[k] = (struct shard_job){ .ix = ix, .items = items, .n = n, .shard = k };
		if (k > 0)
			pthread_create(&tids[k], NULL, shard_thread, &jobs[k]);
	}
	shard_thread(&jobs[0]);
	int rc = 0;
	for (size_t k = 0; k < ix->nshards; k++) {
		if (k > 0)
			pthread_join(tids[k], NULL);
		if (jobs[k].error != NULL && rc == 0) {
			*error_r = db_error_set("Xapian write failed", jobs[k].error);
			rc = -1;
		}
		free(jobs[k].error);
	}

	for (size_t i = 0; i < n; i++) {
		if (rc == 0) {
			buf_append_str(&ix->pending_serials, ix->npending ? "," : "{");
			buf_printf(&ix->pending_serials, "%lld", (long long)items[i].serial);
			buf_append_str(&ix->pending_flags, ix->npending ? "," : "{");
			buf_append_str(&ix->pending_flags, items[i].has_attachment ? "t" : "f");
			ix->npending++;
			if (items[i].note != NULL) {
				char s[24];
				snprintf(s, sizeof(s), "%lld", (long long)items[i].serial);
				const char *p[] = { s, items[i].note };
				const char *err;
				log_info("message %s indexed from what could be read: %s", s, items[i].note);
				if (db_exec(ix->db, "UPDATE messages SET index_note = $2 WHERE serial = $1", 2, p, &err) < 0)
					log_warn("cannot record the index note of message %s: %s", s, err);
			}
		}
		xs_doc_free(&items[i].doc);
		free(items[i].note);
		free(items[i].locs_text);
	}
	free(items);
	PQclear(res);
	return rc;
}

/* Columns of a batch, in binary result format: serial, raw, fallback date, "account\tfolder" lines. */
#define BATCH_COLUMNS \
	"SELECT m.serial::text, b.raw, " \
	"extract(epoch FROM coalesce(m.date, m.ingested_at))::bigint::text, " \
	"(SELECT string_agg(DISTINCT a.name || E'\\t' || f.name, E'\\n') FROM locations l " \
	" JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE l.message_serial = m.serial) " \
	"FROM messages m JOIN blobs b ON b.sha256 = m.sha256 "

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
			return -1;
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
		if ((ix->npending >= COMMIT_EVERY_MESSAGES || util_now() - ix->last_commit >= COMMIT_EVERY_SECONDS) &&
		    indexer_commit(ix, error_r) < 0)
			return -1;
	}
	return indexer_commit(ix, error_r);
}

/* Re-indexes messages that were seen in a new place since the last run, so account and folder
   filters know every place; then moves the watermark. */
static int indexer_reindex_new_locations(struct indexer *ix, const char **error_r)
{
	PGresult *res = db_query(ix->db, "SELECT s.location_watermark, (SELECT coalesce(max(id), 0) FROM locations) "
				 "FROM indexer_state s WHERE s.id = 1", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	char w_old[24], w_now[24];
	snprintf(w_old, sizeof(w_old), "%s", PQgetvalue(res, 0, 0));
	snprintf(w_now, sizeof(w_now), "%s", PQgetvalue(res, 0, 1));
	PQclear(res);
	if (strcmp(w_old, w_now) == 0)
		return 0;
	/* in chunks, in serial order: a big shared mailbox may repeat much of what is archived */
	char s_after[24] = "0", s_limit[16];
	snprintf(s_limit, sizeof(s_limit), "%d", FETCH_MAX_MESSAGES / 4);
	size_t n, total = 0;
	do {
		const char *p[] = { w_old, w_now, s_after, s_limit };
		int64_t last = 0;
		if (indexer_run_batch(ix, BATCH_COLUMNS "WHERE m.indexed_at IS NOT NULL AND m.serial > $3 AND m.serial IN "
				      "(SELECT l.message_serial FROM locations l WHERE l.id > $1 AND l.id <= $2) "
				      "ORDER BY m.serial LIMIT $4", p, 4, &n, &last, error_r) < 0)
			return -1;
		snprintf(s_after, sizeof(s_after), "%lld", (long long)last);
		total += n;
	} while (n > 0 && !stop_requested);
	if (indexer_commit(ix, error_r) < 0)
		return -1;
	if (total > 0)
		log_info("re-indexed %zu messages seen in new places", total);
	if (stop_requested)
		return 0; /* the watermark stays: the rest is done next time */
	const char *w[] = { w_now };
	return db_exec(ix->db, "UPDATE indexer_state SET location_watermark = $1 WHERE id = 1", 1, w, error_r);
}

/* Applies removals queued by retention (and explicit re-index requests). */
static int indexer_drain_queue(struct indexer *ix, const char **error_r)
{
	PGresult *res = db_query(ix->db, "SELECT id, serial, op FROM index_queue ORDER BY id LIMIT 10000", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	struct buf ids = { 0 };
	buf_append_str(&ids, "{");
	for (int i = 0; i < n; i++) {
		char *xerr = NULL;
		uint64_t serial = strtoull(PQgetvalue(res, i, 1), NULL, 10);
		if (strcmp(PQgetvalue(res, i, 2), "delete") == 0 &&
		    xs_db_delete(ix->xdbs[index_layout_shard_of(serial, ix->nshards)], serial, &xerr) != XS_OK) {
			*error_r = db_error_set("Xapian delete failed", xerr);
			free(xerr);
			PQclear(res);
			buf_free(&ids);
			return -1;
		}
		buf_printf(&ids, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
	}
	PQclear(res);
	buf_append_str(&ids, "}");
	int rc = 0;
	if (n > 0) {
		char *xerr = NULL;
		const char *p[] = { (const char *)ids.data };
		for (size_t k = 0; k < ix->nshards && rc == 0; k++) {
			if (xs_db_commit(ix->xdbs[k], &xerr) != XS_OK) {
				*error_r = db_error_set("Xapian commit failed", xerr);
				rc = -1;
			}
		}
		if (rc == 0) {
			rc = db_exec(ix->db, "DELETE FROM index_queue WHERE id = ANY($1::bigint[])", 1, p, error_r);
			/* re-index requests become ordinary pending messages */
			if (rc == 0)
				log_info("applied %d queued index changes", n);
		}
		free(xerr);
	}
	buf_free(&ids);
	return rc;
}

/* One pass: removals, new locations, new messages. */
static int indexer_pass(struct indexer *ix, const char **error_r)
{
	double t0 = util_now();
	uint64_t before = ix->total_indexed;
	if (indexer_drain_queue(ix, error_r) < 0 || indexer_reindex_new_locations(ix, error_r) < 0 ||
	    indexer_index_pending(ix, error_r) < 0)
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
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned want_shards = ix.cfg->index_shards ? ix.cfg->index_shards
			       : ncpu < 1 ? 1 : ncpu > INDEX_MAX_SHARDS ? INDEX_MAX_SHARDS : (unsigned)ncpu;
	mime_extract_init();
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
	for (size_t k = 0; k < ix.nshards; k++)
		if (xs_db_open_writable(paths[k], &ix.xdbs[k], &xerr) != XS_OK)
			log_fatal("cannot open index shard %s: %s", paths[k], xerr);
	index_layout_free(&paths);
	log_info("index at %s: %zu shard%s, one writer thread each", ix.cfg->index_path, ix.nshards,
		 ix.nshards == 1 ? "" : "s");
	if (!once && db_exec(ix.db, "LISTEN mailvault_new_mail", 0, NULL, &err) < 0)
		log_fatal("%s", err);
	ix.last_commit = util_now();
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
	for (size_t k = 0; k < ix.nshards; k++)
		xs_db_close(&ix.xdbs[k]);
	free(ix.xdbs);
	db_close(&ix.db);
	buf_free(&ix.pending_serials);
	buf_free(&ix.pending_flags);
	config_free(&ix.cfg);
	return rc;
}

/* mailvault-web: audit rows, durable before any answer leaves the server, without one commit per row.
 *
 * The chain is linear (each row's hash covers the one before), so rows are written one writer at a time
 * under the database's advisory lock. Taking that lock and committing once per search would serialise
 * every search on a disk flush. Instead requests hand their row to one writer thread and wait; the writer
 * takes everything queued, writes it in one statement (one transaction, one flush) and wakes them all.
 * A request whose row could not be committed fails: nothing unaudited is returned. */
#include "web.h"
#include "db.h"
#include "log.h"
#include "pg-array.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

#define AUDIT_BATCH_MAX 512

struct audit_item {
	char *actor, *via, *client, *action, *target, *details;
	int result;                /* 0 written, -1 failed; valid once done */
	bool done;
	struct audit_item *next;
};

struct audit_writer {
	char *conninfo;
	PGconn *db;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work, written;
	struct audit_item *head, **tail;
	bool stopping;
};

#define AUDIT_WRITE_SQL \
	"SELECT mailvault_audit_as(a.actor, a.via, a.client, a.action, a.target, a.details::jsonb) " \
	"FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) " \
	"WITH ORDINALITY AS a(actor, via, client, action, target, details, n) ORDER BY a.n"

/* Writes the rows of batch (up to stop, exclusive) in one statement: one transaction, one flush. 0 or -1
   with *err; *lost when the connection went away (then worth one more try). */
static int audit_writer_statement(struct audit_writer *aw, struct audit_item *batch, struct audit_item *stop,
				  const char **err, bool *lost)
{
	struct pg_array cols[6] = { PG_ARRAY_INIT, PG_ARRAY_INIT, PG_ARRAY_INIT, PG_ARRAY_INIT, PG_ARRAY_INIT,
				    PG_ARRAY_INIT };
	for (struct audit_item *it = batch; it != stop; it = it->next) {
		pg_array_add_str(&cols[0], it->actor);
		pg_array_add_str(&cols[1], it->via);
		pg_array_add_str(&cols[2], it->client);
		pg_array_add_str(&cols[3], it->action);
		pg_array_add_str(&cols[4], it->target);
		pg_array_add_str(&cols[5], it->details);
	}
	const char *p[6];
	for (int i = 0; i < 6; i++)
		p[i] = pg_array_text(&cols[i]);
	int rc = -1;
	*lost = false;
	if (aw->db == NULL || db_conn_lost(aw->db)) {
		db_close(&aw->db);
		aw->db = db_connect(aw->conninfo, "mailvault-web audit", NULL, err);
	}
	if (aw->db != NULL) {
		rc = db_exec(aw->db, AUDIT_WRITE_SQL, 6, p, err);
		*lost = rc < 0 && db_conn_lost(aw->db);
	} else {
		*lost = true;
	}
	for (int i = 0; i < 6; i++)
		pg_array_free(&cols[i]);
	return rc;
}

/* Writes one batch; every item gets its result. A batch PostgreSQL refuses is written again row by row,
   so one row it cannot take never costs the others theirs. */
static void audit_writer_flush(struct audit_writer *aw, struct audit_item *batch)
{
	const char *err = NULL;
	bool lost;
	int rc = audit_writer_statement(aw, batch, NULL, &err, &lost);
	if (rc < 0 && lost)
		rc = audit_writer_statement(aw, batch, NULL, &err, &lost);
	if (rc < 0 && !lost && batch->next != NULL) {
		log_warn("audit records refused as a batch (%s): writing them one by one", err ? err : "?");
		for (struct audit_item *it = batch; it; it = it->next) {
			it->result = audit_writer_statement(aw, it, it->next, &err, &lost);
			if (it->result < 0)
				log_error("cannot write an audit record; its request fails: %s", err ? err : "?");
		}
	} else {
		if (rc < 0)
			log_error("cannot write audit records; the requests they belong to fail: %s", err ? err : "?");
		for (struct audit_item *it = batch; it; it = it->next)
			it->result = rc;
	}
	pthread_mutex_lock(&aw->lock);
	for (struct audit_item *it = batch; it; it = it->next)
		it->done = true;
	pthread_cond_broadcast(&aw->written);
	pthread_mutex_unlock(&aw->lock);
}

/* The writer thread: waits for rows, writes what is queued, again. */
static void *audit_writer_main(void *arg)
{
	struct audit_writer *aw = arg;
	pthread_mutex_lock(&aw->lock);
	for (;;) {
		while (aw->head == NULL && !aw->stopping)
			pthread_cond_wait(&aw->work, &aw->lock);
		if (aw->head == NULL && aw->stopping)
			break;
		/* take up to AUDIT_BATCH_MAX rows off the queue */
		struct audit_item *batch = aw->head, *last = batch;
		for (int n = 1; n < AUDIT_BATCH_MAX && last->next != NULL; n++)
			last = last->next;
		aw->head = last->next;
		if (aw->head == NULL)
			aw->tail = &aw->head;
		last->next = NULL;
		pthread_mutex_unlock(&aw->lock);
		audit_writer_flush(aw, batch);
		pthread_mutex_lock(&aw->lock);
	}
	pthread_mutex_unlock(&aw->lock);
	return NULL;
}

struct audit_writer *audit_writer_start(const char *conninfo, char **error_r)
{
	struct audit_writer *aw = xcalloc(1, sizeof(*aw));
	aw->conninfo = xstrdup(conninfo);
	aw->tail = &aw->head;
	pthread_mutex_init(&aw->lock, NULL);
	pthread_cond_init(&aw->work, NULL);
	pthread_cond_init(&aw->written, NULL);
	int e = pthread_create(&aw->thread, NULL, audit_writer_main, aw);
	if (e != 0) {
		*error_r = xasprintf("cannot start the audit writer: %s", strerror(e));
		free(aw->conninfo);
		free(aw);
		return NULL;
	}
	return aw;
}

void audit_writer_stop(struct audit_writer **awp)
{
	struct audit_writer *aw = *awp;
	if (aw == NULL)
		return;
	pthread_mutex_lock(&aw->lock);
	aw->stopping = true;
	pthread_cond_signal(&aw->work);
	pthread_mutex_unlock(&aw->lock);
	pthread_join(aw->thread, NULL);
	db_close(&aw->db);
	pthread_mutex_destroy(&aw->lock);
	pthread_cond_destroy(&aw->work);
	pthread_cond_destroy(&aw->written);
	free(aw->conninfo);
	free(aw);
	*awp = NULL;
}

/* A copy of s as valid UTF-8 without NULs, or NULL. */
static char *audit_text(const char *s)
{
	return s ? util_utf8_sanitize(s, strlen(s)) : NULL;
}

int audit_writer_write(struct audit_writer *aw, const char *actor, const char *via, const char *client,
		       const char *action, const char *target, json_object *details)
{
	struct audit_item it = { 0 };
	it.actor = audit_text(actor);
	it.via = audit_text(via);
	it.client = audit_text(client);
	it.action = audit_text(action);
	it.target = audit_text(target);
	/* valid UTF-8, whatever a client put in a path or a name: PostgreSQL refuses anything else */
	const char *dtext = details ? json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN) : "{}";
	it.details = util_utf8_sanitize(dtext, strlen(dtext));
	json_object_put(details);
	pthread_mutex_lock(&aw->lock);
	*aw->tail = &it;
	aw->tail = &it.next;
	pthread_cond_signal(&aw->work);
	while (!it.done)
		pthread_cond_wait(&aw->written, &aw->lock);
	pthread_mutex_unlock(&aw->lock);
	free(it.actor);
	free(it.via);
	free(it.client);
	free(it.action);
	free(it.target);
	free(it.details);
	return it.result;
}

int web_audit(struct request *r, const char *action, const char *target, json_object *details)
{
	r->audited = true;
	return audit_writer_write(r->web->audit, r->authed ? r->who.name : "-", r->authed ? r->who.via : NULL,
				  r->client, action, target, details);
}

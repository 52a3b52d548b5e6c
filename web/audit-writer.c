/* mailvault-web: audit rows, durable before any answer leaves the server, without one commit per row.
 *
 * The chain is linear (each row's hash covers the one before), so rows are written one writer at a time
 * under the database's advisory lock. Taking that lock and committing once per search would serialise
 * every search on a disk flush. Instead rows are committed in groups, leader and followers: a request
 * queues its row; if no write is under way it becomes the leader, takes what is queued (up to
 * AUDIT_BATCH_MAX rows, its own among them unless more were queued before it), writes it in one statement
 * (one transaction, one flush) on the writer's connection and wakes the others; rows queued meanwhile wait,
 * and one of their requests leads the next group. Alone, a request writes its own row with
 * no hand-off to another thread. A request whose row could not be committed fails: nothing unaudited is
 * returned.
 *
 * A connection lost while a group was being written leaves it unknown whether the group committed: the
 * server may not even have noticed yet, and still be waiting for the chain's lock. On a new connection
 * the writer ends the old server process (a transaction it had not committed is then rolled back) and
 * waits until it is gone; then it looks for the group's first row, by the random request id every row
 * carries in its details, among the rows written since it last knew the chain's head, and writes the
 * group again only if it is not there. A row is never written twice, and a group nobody can vouch for
 * fails its requests. */
#include "web.h"
#include "credential.h"
#include "db.h"
#include "log.h"
#include "pg-array.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUDIT_BATCH_MAX 512
#define AUDIT_RETRY_SECONDS 30.0

struct audit_item {
	char *actor, *via, *client, *action, *target, *details;
	char *request;             /* the random id in details, to find the row after a lost connection */
	int result;                /* 0 written, -1 failed; valid once done */
	bool done;
	struct audit_item *next;
};

struct audit_writer {
	char *conninfo;
	PGconn *db;                /* used by the leader only */
	char seen[24];             /* a seq at or below the chain's head before the group being written ("" unknown) */
	int backend;               /* the server process of db and when it started (kept once db is lost): */
	char backend_start[64];    /* the process ended after a write lost with its connection */
	pthread_mutex_t lock;
	pthread_cond_t written;    /* a group was written, or the leader stepped down */
	struct audit_item *head, **tail;
	bool leading;              /* a group is being written */
};

#define AUDIT_WRITE_SQL \
	"SELECT mailvault_audit_as(a.actor, a.via, a.client, a.action, a.target, a.details::jsonb) " \
	"FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) " \
	"WITH ORDINALITY AS a(actor, via, client, action, target, details, n) ORDER BY a.n"

/* Reads the chain's head into aw->seen; leaves it "" (and *err set) when it cannot. */
static void audit_writer_learn_head(struct audit_writer *aw, const char **err)
{
	PGresult *res = db_query(aw->db, "SELECT coalesce(max(seq), 0) FROM audit_log", 0, NULL, err);
	if (res != NULL && PQntuples(res) == 1)
		snprintf(aw->seen, sizeof(aw->seen), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
}

/* The writer's connection, made again when lost, with the chain's head known (for audit_writer_committed):
   0, or -1 with *err. */
static int audit_writer_connect(struct audit_writer *aw, const char **err)
{
	if (aw->db == NULL || db_conn_lost(aw->db)) {
		db_close(&aw->db);
		aw->db = db_connect(aw->conninfo, "mailvault-web audit", NULL, err);
		/* durable before the answer whatever the server's default says; a server that hangs fails the
		   requests waiting for their rows instead of holding them for ever */
		if (aw->db != NULL && (db_exec(aw->db, "SET synchronous_commit = on", 0, NULL, err) < 0 ||
				       db_exec(aw->db, "SET statement_timeout = '30s'", 0, NULL, err) < 0))
			db_close(&aw->db);
		/* who serves it, to end that process if the connection is lost during a write: a connection that
		   cannot say is not used (a lost write could then not be told from a late one) */
		PGresult *res = aw->db ? db_query(aw->db, "SELECT backend_start FROM pg_stat_activity "
						  "WHERE pid = pg_backend_pid()", 0, NULL, err) : NULL;
		if (res != NULL && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
			aw->backend = PQbackendPID(aw->db);
			snprintf(aw->backend_start, sizeof(aw->backend_start), "%s", PQgetvalue(res, 0, 0));
		} else if (aw->db != NULL) {
			if (res != NULL)
				*err = "the audit connection cannot tell its server process";
			db_close(&aw->db);
		}
		PQclear(res);
	}
	/* the head before anything of ours: the lower bound for finding a group after a lost connection */
	if (aw->db != NULL && aw->seen[0] == '\0')
		audit_writer_learn_head(aw, err);
	return aw->db != NULL && aw->seen[0] != '\0' ? 0 : -1;
}

/* How long the writer waits for the server process of a lost connection to end. */
#define AUDIT_OLD_BACKEND_SECONDS 10.0

/* After a lost connection (whose server process was pid, started at start): 1 when the group whose first
   row is first was committed (its rows are one transaction: all or none), 0 when it was not, -1 when that
   cannot be told. Connects again if needed. */
static int audit_writer_committed(struct audit_writer *aw, const struct audit_item *first, int pid,
				  const char *start, const char **err)
{
	if (aw->seen[0] == '\0')
		return 0;   /* no statement is sent without a known head: nothing can have been written */
	if (audit_writer_connect(aw, err) < 0)
		return -1;
	/* the old process may still be waiting for the chain's lock, or running the statement: ended, it
	   rolls back what it had not committed; a commit under way completes first */
	char pidtext[16];
	snprintf(pidtext, sizeof(pidtext), "%d", pid);
	const char *o[] = { pidtext, start };
	const char *ignored;
	PQclear(db_query(aw->db, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
			 "WHERE pid = $1::int AND backend_start = $2::timestamptz", 2, o, &ignored));
	double give_up = util_now() + AUDIT_OLD_BACKEND_SECONDS;
	for (;;) {
		int alive = db_query_bool(aw->db, "SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
					  "WHERE pid = $1::int AND backend_start = $2::timestamptz)", 2, o, err);
		if (alive == 0)
			break;
		if (alive < 0 || util_now() > give_up) {
			if (alive > 0)
				*err = "the server process of the lost audit connection did not end";
			return -1;
		}
		struct timespec ts = { 0, 20 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	const char *p[] = { aw->seen, first->request };
	return db_query_bool(aw->db, "SELECT EXISTS (SELECT 1 FROM audit_log WHERE seq > $1::bigint "
			     "AND details->>'request' = $2)", 2, p, err);
}

/* Writes the rows of batch (up to stop, exclusive) in one statement: one transaction, one flush. 0 or -1
   with *err; *lost when the connection went away (audit_writer_committed then tells whether it was written). */
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
	if (audit_writer_connect(aw, err) == 0) {
		PGresult *res = db_query_named(aw->db, "audit_write", AUDIT_WRITE_SQL, 6, p, err);
		rc = res ? 0 : -1;
		/* the last row of the group is the new lower bound (rows come back in the group's order) */
		if (res != NULL && PQntuples(res) > 0)
			snprintf(aw->seen, sizeof(aw->seen), "%s", PQgetvalue(res, PQntuples(res) - 1, 0));
		PQclear(res);
		*lost = rc < 0 && db_conn_lost(aw->db);
	} else {
		*lost = true;
	}
	for (int i = 0; i < 6; i++)
		pg_array_free(&cols[i]);
	return rc;
}

/* Writes one batch; every item gets its result (the caller marks them done). A batch PostgreSQL refuses is
   written again row by row, so one row it cannot take never costs the others theirs; for at most
   AUDIT_RETRY_SECONDS: when the database is what fails (a statement that times out), the rows left fail
   together instead of each waiting for its own timeout. */
static void audit_writer_flush(struct audit_writer *aw, struct audit_item *batch)
{
	const char *err = NULL;
	bool lost;
	int rc = audit_writer_statement(aw, batch, NULL, &err, &lost);
	if (rc < 0 && lost) {
		/* written or not? Once more only if certainly not; unknown fails the requests */
		char start[sizeof(aw->backend_start)];
		int pid = aw->backend;
		snprintf(start, sizeof(start), "%s", aw->backend_start);
		int committed = audit_writer_committed(aw, batch, pid, start, &err);
		if (committed == 1) {
			log_warn("the audit connection was lost after its rows were committed: they are not written again");
			rc = 0;
		} else if (committed == 0) {
			rc = audit_writer_statement(aw, batch, NULL, &err, &lost);
		}
	}
	if (rc < 0 && !lost && batch->next != NULL) {
		log_warn("audit records refused as a batch (%s): writing them one by one", err ? err : "?");
		double give_up = util_now() + AUDIT_RETRY_SECONDS;
		for (struct audit_item *it = batch; it; it = it->next) {
			it->result = util_now() < give_up ? audit_writer_statement(aw, it, it->next, &err, &lost) : -1;
			if (it->result < 0)
				log_error("cannot write an audit record; its request fails: %s", err ? err : "?");
		}
	} else {
		if (rc < 0)
			log_error("cannot write audit records; the requests they belong to fail: %s", err ? err : "?");
		for (struct audit_item *it = batch; it; it = it->next)
			it->result = rc;
	}
}

struct audit_writer *audit_writer_start(const char *conninfo)
{
	struct audit_writer *aw = xcalloc(1, sizeof(*aw));
	aw->conninfo = xstrdup(conninfo);
	aw->tail = &aw->head;
	pthread_mutex_init(&aw->lock, NULL);
	pthread_cond_init(&aw->written, NULL);
	return aw;
}

void audit_writer_stop(struct audit_writer **awp)
{
	struct audit_writer *aw = *awp;
	if (aw == NULL)
		return;
	db_close(&aw->db);
	pthread_mutex_destroy(&aw->lock);
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
	struct audit_item it = { .result = -1 };   /* not written until the leader says so */
	it.actor = audit_text(actor);
	it.via = audit_text(via);
	it.client = audit_text(client);
	it.action = audit_text(action);
	it.target = audit_text(target);
	it.request = credential_random_id();
	if (details == NULL)
		details = json_object_new_object();
	json_object_object_add(details, "request", json_object_new_string(it.request));
	/* valid UTF-8, whatever a client put in a path or a name: PostgreSQL refuses anything else */
	const char *dtext = json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN);
	it.details = util_utf8_sanitize(dtext, strlen(dtext));
	json_object_put(details);
	pthread_mutex_lock(&aw->lock);
	*aw->tail = &it;
	aw->tail = &it.next;
	while (!it.done) {
		if (aw->leading) {
			pthread_cond_wait(&aw->written, &aw->lock);
			continue;
		}
		/* lead: take up to AUDIT_BATCH_MAX rows off the queue (this one among them unless more than that
		   were queued before it: then it waits for a later group) */
		aw->leading = true;
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
		/* the rows' owners may return (and free them) once done is set: nothing of them is read after */
		for (struct audit_item *b = batch, *next; b != NULL; b = next) {
			next = b->next;
			b->done = true;
		}
		aw->leading = false;
		/* the followers see their rows written; rows queued meanwhile: one of their requests leads next */
		pthread_cond_broadcast(&aw->written);
	}
	pthread_mutex_unlock(&aw->lock);
	free(it.actor);
	free(it.via);
	free(it.client);
	free(it.action);
	free(it.target);
	free(it.details);
	free(it.request);
	return it.result;
}

int web_audit(struct request *r, const char *action, const char *target, json_object *details)
{
	r->audited = true;
	return audit_writer_write(r->web->audit, r->authed ? r->who.name : "-", r->authed ? r->who.via : NULL,
				  r->client, action, target, details);
}

/* mailvaultd: the poller. Leases due accounts from PostgreSQL and archives them with a pool of workers. */
#include "poller.h"
#include "db.h"
#include "log.h"
#include "msg-headers.h"
#include "program.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* --once exit statuses: everything archived; an account failed; some folders failed, the rest archived. */
#define EXIT_ALL_ARCHIVED 0
#define EXIT_ACCOUNT_FAILED 1
#define EXIT_FOLDERS_FAILED 3

/* Set by the main thread when SIGTERM or SIGINT arrives: workers finish the batch in hand and leave. */
static atomic_int stop_requested;

/* One loaded configuration, shared by the polls that started with it: a reload makes a new one and
   never changes a configuration a running poll reads. */
struct config_ref {
	struct config *cfg;
	unsigned refs;            /* under pool->lock */
};

/* Shared state of the worker pool. */
struct pool {
	pthread_mutex_t lock;
	struct config_ref *current;
	bool once;
	int *once_ids;            /* --once: the accounts to poll, handed out in order */
	size_t once_count, once_next;
	int failures;             /* --once: accounts that failed */
	int partial;              /* --once: accounts with failed folders */
	unsigned running;         /* workers that have not finished */
	char lease_owner[256];
};

/* Takes a reference to the current configuration for one poll. */
static struct config_ref *pool_config_get(struct pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	struct config_ref *r = pool->current;
	r->refs++;
	pthread_mutex_unlock(&pool->lock);
	return r;
}

/* Drops a reference; the last one frees the configuration. */
static void pool_config_put(struct pool *pool, struct config_ref *r)
{
	pthread_mutex_lock(&pool->lock);
	bool last = --r->refs == 0;
	pthread_mutex_unlock(&pool->lock);
	if (last) {
		config_free(&r->cfg);
		free(r);
	}
}

/* Counts one account's outcome for --once. */
static void pool_count(struct pool *pool, enum poll_outcome outcome)
{
	pthread_mutex_lock(&pool->lock);
	if (outcome == POLL_FAILED)
		pool->failures++;
	else if (outcome == POLL_PARTIAL)
		pool->partial++;
	pthread_mutex_unlock(&pool->lock);
}

/* Columns every account query returns, in the order account_from_row() reads them. */
#define ACCOUNT_COLUMNS "id, name, host, port, tls, username, auth, secret_name, ca_file, poll_interval, " \
	"array_to_string(include_patterns, E'\\n'), array_to_string(exclude_patterns, E'\\n'), failures"

/* Splits newline-separated patterns into a NULL-terminated array. */
static char **split_lines(const char *s)
{
	size_t n = 0, cap = 4;
	char **v = xcalloc(cap, sizeof(char *));
	while (*s) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);
		if (n + 2 > cap) {
			cap *= 2;
			v = xrealloc(v, cap * sizeof(char *));
		}
		v[n++] = xstrndup(s, len);
		s += len + (nl ? 1 : 0);
	}
	v[n] = NULL;
	return v;
}

/* Builds an account from a result row. */
static void account_from_row(PGresult *res, int row, struct account *a)
{
	memset(a, 0, sizeof(*a));
	a->id = atoi(PQgetvalue(res, row, 0));
	a->name = xstrdup(PQgetvalue(res, row, 1));
	a->host = xstrdup(PQgetvalue(res, row, 2));
	a->port = (unsigned)atoi(PQgetvalue(res, row, 3));
	a->tls = strcmp(PQgetvalue(res, row, 4), "starttls") == 0 ? IMAP_TLS_STARTTLS : IMAP_TLS_IMAPS;
	a->username = xstrdup(PQgetvalue(res, row, 5));
	const char *auth = PQgetvalue(res, row, 6);
	a->auth = strcmp(auth, "login") == 0 ? IMAP_AUTH_LOGIN : strcmp(auth, "xoauth2") == 0 ? IMAP_AUTH_XOAUTH2
		: strcmp(auth, "oauthbearer") == 0 ? IMAP_AUTH_OAUTHBEARER : IMAP_AUTH_PLAIN;
	a->secret_name = xstrdup(PQgetvalue(res, row, 7));
	a->ca_file = PQgetisnull(res, row, 8) ? NULL : xstrdup(PQgetvalue(res, row, 8));
	a->poll_interval = (unsigned)atoi(PQgetvalue(res, row, 9));
	a->include = split_lines(PQgetvalue(res, row, 10));
	a->exclude = split_lines(PQgetvalue(res, row, 11));
	a->failures = atoi(PQgetvalue(res, row, 12));
}

/* Leases the next due account (continuous mode) or the given one (--once). 1 leased, 0 none, -1 error. */
static int lease_account(struct pool *pool, const struct config *cfg, PGconn *db, int only_id, struct account *a,
			 const char **error_r)
{
	char s_lease[24], s_id[24];
	snprintf(s_lease, sizeof(s_lease), "%u", cfg->lease_seconds);
	snprintf(s_id, sizeof(s_id), "%d", only_id);
	const char *p[] = { pool->lease_owner, s_lease, s_id };
	PGresult *res = db_query(db, only_id > 0
		? "UPDATE accounts SET lease_owner = $1, lease_expires = now() + make_interval(secs => $2) "
		  "WHERE id = (SELECT id FROM accounts WHERE id = $3 AND enabled AND (lease_expires IS NULL OR "
		  "lease_expires < now() OR lease_owner = $1) FOR UPDATE SKIP LOCKED) RETURNING " ACCOUNT_COLUMNS
		: "UPDATE accounts SET lease_owner = $1, lease_expires = now() + make_interval(secs => $2) "
		  "WHERE id = (SELECT id FROM accounts WHERE enabled AND next_poll <= now() AND (lease_expires IS NULL "
		  "OR lease_expires < now()) AND $3::int = 0 ORDER BY next_poll LIMIT 1 FOR UPDATE SKIP LOCKED) "
		  "RETURNING " ACCOUNT_COLUMNS, 3, p, error_r);
	if (res == NULL)
		return -1;
	int n = PQntuples(res);
	if (n == 1)
		account_from_row(res, 0, a);
	PQclear(res);
	return n == 1;
}

/* Releases the lease and schedules the next poll. A failed account backs off exponentially with jitter;
   an account whose folders partly failed keeps its interval (each failed folder is retried then and
   shows its error in status). */
static void release_account(struct pool *pool, PGconn *db, const struct account *a, const struct poll_ctx *ctx,
			    enum poll_outcome outcome, const char *error)
{
	const char *err;
	char s_id[24], s_delay[32], s_fail[24];
	double delay = a->poll_interval;
	int failures = outcome == POLL_FAILED ? a->failures + 1 : 0;
	if (outcome == POLL_FAILED) {
		/* 30 s, 60 s, 120 s ... capped at the poll interval (and at an hour), +/- 20 % jitter */
		double backoff = 30.0 * (double)(1u << (failures < 8 ? failures - 1 : 7));
		if (backoff > 3600)
			backoff = 3600;
		if (backoff < delay)
			delay = backoff;
		if (ctx->backoff_ms / 1000.0 > delay)
			delay = ctx->backoff_ms / 1000.0;
		delay *= 0.8 + 0.4 * ((double)rand() / RAND_MAX);
	}
	snprintf(s_id, sizeof(s_id), "%d", a->id);
	snprintf(s_delay, sizeof(s_delay), "%.3f", delay);
	snprintf(s_fail, sizeof(s_fail), "%d", failures);
	/* the error may quote the server, in any charset */
	char *safe = error ? util_utf8_sanitize(error, strlen(error)) : NULL;
	const char *p[] = { s_id, pool->lease_owner, s_delay, s_fail, safe, outcome == POLL_FAILED ? "f" : "t" };
	if (db_exec(db, "UPDATE accounts SET lease_owner = NULL, lease_expires = NULL, failures = $4, "
		    "next_poll = now() + make_interval(secs => $3::double precision), "
		    "last_success = CASE WHEN $6::boolean THEN now() ELSE last_success END, "
		    "last_error = $5, last_error_at = CASE WHEN $5::text IS NULL THEN last_error_at ELSE now() END "
		    "WHERE id = $1 AND lease_owner = $2", 6, p, &err) < 0)
		log_error("cannot release account %s: %s", a->name, err);
	free(safe);
}

/* Clears leases held by pollers of this host that died (kill -9, power loss) so work resumes at once. */
static void reclaim_dead_leases(struct pool *pool, PGconn *db)
{
	const char *err;
	char host[128];
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	char *prefix = xasprintf("%s/%%", host);
	const char *p[] = { prefix };
	PGresult *res = db_query(db, "SELECT id, lease_owner FROM accounts WHERE lease_owner LIKE $1", 1, p, &err);
	free(prefix);
	if (res == NULL) {
		log_warn("cannot look for stale leases: %s", err);
		return;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *owner = PQgetvalue(res, i, 1);
		const char *slash = strchr(owner, '/');
		pid_t pid = slash ? (pid_t)atol(slash + 1) : 0;
		if (pid <= 0 || strcmp(owner, pool->lease_owner) == 0 || (kill(pid, 0) < 0 && errno != ESRCH))
			continue;
		if (kill(pid, 0) == 0)
			continue; /* still alive: a poller on this host is working on it */
		const char *q[] = { PQgetvalue(res, i, 0), owner };
		if (db_exec(db, "UPDATE accounts SET lease_owner = NULL, lease_expires = NULL WHERE id = $1 "
			    "AND lease_owner = $2", 2, q, &err) == 0)
			log_info("reclaimed the lease of account id %s from dead poller %s", q[0], owner);
	}
	PQclear(res);
}

/* Sleeps up to seconds, waking early when a stop is requested. */
static void worker_nap(unsigned seconds)
{
	for (unsigned i = 0; i < seconds && !atomic_load(&stop_requested); i++)
		sleep(1);
}

/* One worker: lease, poll, release, until told to stop. */
static void *worker_main(void *arg)
{
	struct pool *pool = arg;
	const char *err;
	PGconn *db = NULL;
	unsigned idle = 0;
	while (!atomic_load(&stop_requested)) {
		struct config_ref *cref = pool_config_get(pool);
		const struct config *cfg = cref->cfg;
		if (db_conn_lost(db)) {
			db_close(&db);
			db = db_connect(config_conninfo_for(cfg, "ingest"), "mailvaultd", "mailvault_ingest", &err);
			if (db == NULL) {
				log_error("%s", err);
				pool_config_put(pool, cref);
				if (pool->once) {
					pthread_mutex_lock(&pool->lock);
					pool->failures += (int)(pool->once_count - pool->once_next);
					pool->once_next = pool->once_count;
					pthread_mutex_unlock(&pool->lock);
					break;
				}
				worker_nap(5);
				continue;
			}
		}
		int only_id = 0;
		if (pool->once) {
			pthread_mutex_lock(&pool->lock);
			only_id = pool->once_next < pool->once_count ? pool->once_ids[pool->once_next++] : -1;
			pthread_mutex_unlock(&pool->lock);
			if (only_id < 0) {
				pool_config_put(pool, cref);
				break;
			}
		}
		struct account a;
		int r = lease_account(pool, cfg, db, only_id, &a, &err);
		if (r <= 0) {
			if (r < 0)
				log_error("cannot lease an account: %s", err);
			else if (pool->once)
				log_error("account id %d is being polled by another mailvaultd (or was disabled)", only_id);
			pool_config_put(pool, cref);
			if (pool->once) {
				pool_count(pool, POLL_FAILED);
				continue;
			}
			/* nothing due: look again soon (new accounts and expired leases show up here) */
			worker_nap(r < 0 ? 5 : idle < 5 ? 1 + idle : 5);
			idle++;
			continue;
		}
		idle = 0;
		struct poll_ctx ctx = { .cfg = cfg, .db = db, .lease_owner = pool->lease_owner, .stop = &stop_requested };
		char *error = NULL;
		double t0 = util_now();
		enum poll_outcome outcome = account_poll(&ctx, &a, &error);
		if (outcome == POLL_FAILED)
			log_error("account %s: %s", a.name, error);
		else if (outcome == POLL_PARTIAL)
			log_warn("account %s: polled in %.1f s, but %s", a.name, util_now() - t0, error);
		else
			log_info("account %s: poll finished in %.1f s", a.name, util_now() - t0);
		if (db_conn_lost(db)) {
			/* the release must still happen: reconnect once for it */
			db_close(&db);
			db = db_connect(config_conninfo_for(cfg, "ingest"), "mailvaultd", "mailvault_ingest", &err);
		}
		if (db != NULL)
			release_account(pool, db, &a, &ctx, outcome, error);
		if (pool->once)
			pool_count(pool, outcome);
		free(error);
		account_free(&a);
		pool_config_put(pool, cref);
	}
	db_close(&db);
	pthread_mutex_lock(&pool->lock);
	pool->running--;
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* SIGHUP: a new configuration for the polls that start from now on. */
static void pool_reload(struct pool *pool, const char *cfg_path)
{
	char *cerr;
	struct config *fresh = config_load(cfg_path, &cerr);
	if (fresh == NULL) {
		log_error("reload failed, keeping the running configuration: %s", cerr);
		free(cerr);
		return;
	}
	struct config_ref *r = xcalloc(1, sizeof(*r));
	r->cfg = fresh;
	r->refs = 1;
	pthread_mutex_lock(&pool->lock);
	struct config_ref *old = pool->current;
	pool->current = r;
	unsigned old_workers = old->cfg->workers;
	pthread_mutex_unlock(&pool->lock);
	log_set_level(fresh->log_level);
	if (fresh->workers != old_workers)
		log_warn("a change of workers takes effect at the next restart");
	pool_config_put(pool, old);
	log_info("configuration reloaded from %s", cfg_path);
}

int main(int argc, char **argv)
{
	bool once;
	int status;
	struct pool pool = { 0 };
	struct config *cfg = program_start(argc, argv, "mailvaultd",
					   "poll every enabled account once and exit: 0 if everything was archived, 3 if "
					   "some folders failed (each recorded) and the rest were archived, 1 if an "
					   "account failed", &once, &status);
	if (cfg == NULL)
		return status;
	pool.once = once;
	char *cfg_path = xstrdup(cfg->path);
	pool.current = xcalloc(1, sizeof(*pool.current));
	pool.current->cfg = cfg;
	pool.current->refs = 1;
	msg_headers_init();
	pthread_mutex_init(&pool.lock, NULL);
	char host[128];
	gethostname(host, sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(pool.lease_owner, sizeof(pool.lease_owner), "%s/%ld/%ld", host, (long)getpid(), (long)time(NULL));
	srand((unsigned)(getpid() ^ time(NULL)));

	/* the signals are taken by sigtimedwait() in this thread only: no handler races, and every thread
	   started below inherits the mask */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	const char *err;
	PGconn *db = db_connect(config_conninfo_for(cfg, "ingest"), "mailvaultd", "mailvault_ingest", &err);
	if (db == NULL)
		log_fatal("%s", err);
	reclaim_dead_leases(&pool, db);
	if (once) {
		PGresult *res = db_query(db, "SELECT id FROM accounts WHERE enabled ORDER BY id", 0, NULL, &err);
		if (res == NULL)
			log_fatal("%s", err);
		pool.once_count = (size_t)PQntuples(res);
		pool.once_ids = xcalloc(pool.once_count ? pool.once_count : 1, sizeof(int));
		for (size_t i = 0; i < pool.once_count; i++)
			pool.once_ids[i] = atoi(PQgetvalue(res, (int)i, 0));
		PQclear(res);
	}
	db_close(&db);

	unsigned nworkers = cfg->workers;
	if (once && pool.once_count < nworkers)
		nworkers = pool.once_count ? (unsigned)pool.once_count : 1;
	log_info("starting %u workers%s", nworkers, once ? " (one pass)" : "");
	pthread_t *threads = xcalloc(nworkers, sizeof(pthread_t));
	unsigned started = 0;
	for (unsigned i = 0; i < nworkers; i++) {
		pthread_mutex_lock(&pool.lock);
		pool.running++;
		pthread_mutex_unlock(&pool.lock);
		int e = pthread_create(&threads[started], NULL, worker_main, &pool);
		if (e != 0) {
			pthread_mutex_lock(&pool.lock);
			pool.running--;
			pthread_mutex_unlock(&pool.lock);
			log_error("cannot start worker %u: %s", i + 1, strerror(e));
			continue;
		}
		started++;
	}
	if (started == 0) {
		log_error("no worker could be started");
		return EXIT_ACCOUNT_FAILED;
	}

	/* the main thread waits for signals, and in --once mode for the workers to finish */
	for (;;) {
		pthread_mutex_lock(&pool.lock);
		unsigned running = pool.running;
		pthread_mutex_unlock(&pool.lock);
		if (running == 0 || (!once && atomic_load(&stop_requested)))
			break;
		struct timespec tick = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
		int sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			if (!atomic_exchange(&stop_requested, 1))
				log_info("stopping: finishing the batches in hand");
		} else if (sig == SIGHUP && !once) {
			pool_reload(&pool, cfg_path);
		}
	}
	for (unsigned i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	free(threads);
	int failures = pool.failures, partial = pool.partial;
	free(pool.once_ids);
	pool_config_put(&pool, pool.current);
	free(cfg_path);
	if (once) {
		log_info("one pass done: %zu accounts, %d failed, %d with failed folders", pool.once_count, failures, partial);
		if (failures > 0 || atomic_load(&stop_requested))
			return EXIT_ACCOUNT_FAILED;
		return partial > 0 ? EXIT_FOLDERS_FAILED : EXIT_ALL_ARCHIVED;
	}
	log_info("stopped");
	return 0;
}

/* mailvault-web: the workers' resources. A request takes one worker context (a database connection as
 * the service's login, and the index kept open) for as long as it is served; a context is never shared,
 * so neither libpq nor Xapian is used from two threads at once. */
#include "web.h"
#include "db.h"
#include "index-layout.h"
#include "log.h"
#include "util.h"
#include "xapian_shim.h"

#include <stdlib.h>
#include <string.h>

int web_pool_init(struct web *w, char **error_r)
{
	(void)error_r;
	size_t n = w->cfg->web_workers;
	w->ctxs = xcalloc(n, sizeof(struct web_ctx));
	for (size_t i = 0; i < n; i++) {
		w->ctxs[i].next_free = w->free_ctxs;
		w->free_ctxs = &w->ctxs[i];
	}
	pthread_mutex_init(&w->pool_lock, NULL);
	pthread_cond_init(&w->pool_cond, NULL);
	return 0;
}

struct web_ctx *web_pool_take(struct web *w)
{
	pthread_mutex_lock(&w->pool_lock);
	while (w->free_ctxs == NULL)
		pthread_cond_wait(&w->pool_cond, &w->pool_lock);
	struct web_ctx *c = w->free_ctxs;
	w->free_ctxs = c->next_free;
	pthread_mutex_unlock(&w->pool_lock);
	return c;
}

void web_pool_give(struct web *w, struct web_ctx *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&w->pool_lock);
	c->next_free = w->free_ctxs;
	w->free_ctxs = c;
	pthread_cond_signal(&w->pool_cond);
	pthread_mutex_unlock(&w->pool_lock);
}

void web_pool_free(struct web *w)
{
	for (size_t i = 0; w->ctxs != NULL && i < w->cfg->web_workers; i++) {
		db_close(&w->ctxs[i].db);
		xs_db_close(&w->ctxs[i].index);
		index_layout_free(&w->ctxs[i].index_paths);
	}
	free(w->ctxs);
	w->ctxs = NULL;
	pthread_mutex_destroy(&w->pool_lock);
	pthread_cond_destroy(&w->pool_cond);
}

int web_ctx_connect(struct web *w, struct web_ctx *c, const char **error_r)
{
	if (c->db != NULL && !db_conn_lost(c->db))
		return 0;
	db_close(&c->db);
	c->db = db_connect(w->conninfo, "mailvault-web", NULL, error_r);
	return c->db ? 0 : -1;
}

/* True if two NULL-terminated path arrays are equal. */
static bool web_paths_equal(char *const *a, char *const *b)
{
	for (; *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return *a == NULL && *b == NULL;
}

struct xs_db *web_ctx_index(struct web *w, struct web_ctx *c, char **error_r)
{
	if (w->cfg->index_path == NULL) {
		*error_r = xstrdup("no index configured ([indexer] index_path)");
		return NULL;
	}
	size_t n;
	char **paths = index_layout_shards(w->cfg->index_path, &n, error_r);
	if (paths == NULL)
		return NULL;
	if (c->index != NULL && web_paths_equal(paths, c->index_paths)) {
		char *xerr = NULL;
		if (xs_db_reopen(c->index, &xerr) == XS_OK) {
			index_layout_free(&paths);
			return c->index;
		}
		free(xerr);
	}
	/* first use, a rebuild that changed the shards, or a reopen that failed: open anew */
	xs_db_close(&c->index);
	index_layout_free(&c->index_paths);
	if (xs_db_open_readonly((const char *const *)paths, n, &c->index, error_r) != XS_OK) {
		index_layout_free(&paths);
		return NULL;
	}
	c->index_paths = paths;
	return c->index;
}

int web_begin_as(struct request *r, const char **error_r)
{
	const char *p[] = { r->who.name };
	if (db_begin(r->ctx->db, error_r) < 0)
		return -1;
	/* transaction-local: the next request on this connection starts with no officer, seeing nothing */
	if (db_exec(r->ctx->db, "SELECT set_config('mailvault.officer', $1, true)", 1, p, error_r) < 0) {
		db_rollback(r->ctx->db);
		return -1;
	}
	return 0;
}

int web_end(struct request *r, bool ok)
{
	const char *err;
	if (!ok) {
		db_rollback(r->ctx->db);
		return 0;
	}
	if (db_commit(r->ctx->db, &err) < 0) {
		log_msg(LOG_LEVEL_WARN, "commit: %s", err);
		return -1;
	}
	return 0;
}

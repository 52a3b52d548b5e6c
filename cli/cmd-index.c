/* mailvault index verify | rebuild: the index against the archive, and re-indexing everything. */
#include "cli.h"
#include "buf.h"
#include "db.h"
#include "index-layout.h"
#include "pg-array.h"
#include "prefixes.h"
#include "util.h"
#include "xapian_shim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Opens the index read-only; NULL after printing why. Close with xs_db_close(). */
static struct xs_db *index_open(struct cli *cli)
{
	char *xerr = NULL;
	struct xs_db *xdb = NULL;
	if (cli->cfg->index_path == NULL) {
		cli_error("no index configured: set [indexer] index_path in %s", cli->cfg->path);
		return NULL;
	}
	size_t n;
	char **paths = index_layout_shards(cli->cfg->index_path, &n, &xerr);
	if (paths == NULL || xs_db_open_readonly((const char *const *)paths, n, &xdb, &xerr) != XS_OK) {
		cli_error("cannot open the index: %s (has mailvault-indexer run?)", xerr);
		free(xerr);
		index_layout_free(&paths);
		return NULL;
	}
	index_layout_free(&paths);
	return xdb;
}

/* Collects Xapian document ids. */
struct docid_set {
	uint64_t *ids;
	size_t n, cap;
};

/* Appends one id (they arrive in ascending order). */
static bool docid_collect(uint64_t docid, void *ctx)
{
	struct docid_set *s = ctx;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->ids = xrealloc(s->ids, s->cap * sizeof(uint64_t));
	}
	s->ids[s->n++] = docid;
	return true;
}

/* One thing a document says, or the archive says of a message: it is in account (A) or folder (F) value. */
struct fact {
	uint64_t serial;
	char kind;
	char *value;       /* as the index stores it after the prefix (xs_term_value) */
};

struct facts {
	struct fact *items;
	size_t n, cap;
};

/* Adds a fact (takes value; NULL is ignored). */
static void facts_add(struct facts *f, uint64_t serial, char kind, char *value)
{
	if (value == NULL)
		return;
	if (f->n == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 1024;
		f->items = xrealloc(f->items, f->cap * sizeof(*f->items));
	}
	f->items[f->n++] = (struct fact){ serial, kind, value };
}

/* Frees the facts. */
static void facts_free(struct facts *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->items[i].value);
	FREE(f->items);
	f->n = f->cap = 0;
}

/* Orders facts by message, kind, value. */
static int fact_cmp(const void *a, const void *b)
{
	const struct fact *x = a, *y = b;
	if (x->serial != y->serial)
		return x->serial < y->serial ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->value, y->value);
}

/* Sorts facts and drops repeats (a message in two accounts' INBOX is in folder INBOX once). */
static void facts_sort_unique(struct facts *f)
{
	qsort(f->items, f->n, sizeof(struct fact), fact_cmp);
	size_t n = 0;
	for (size_t i = 0; i < f->n; i++) {
		if (n > 0 && fact_cmp(&f->items[n - 1], &f->items[i]) == 0) {
			free(f->items[i].value);
			continue;
		}
		f->items[n++] = f->items[i];
	}
	f->n = n;
}

/* Where one prefix's postings go. */
struct fact_sink {
	struct facts *f;
	char kind;
};

/* Collects one (term, document) pair. */
static bool index_fact_collect(const char *value, size_t len, uint64_t docid, void *ctx)
{
	struct fact_sink *sink = ctx;
	facts_add(sink->f, docid, sink->kind, xstrndup(value, len));
	return true;
}

/* What every document says of its accounts and folders. */
static int index_facts_collect(struct xs_db *xdb, struct facts *f, char **error_r)
{
	struct fact_sink a = { f, 'A' }, fo = { f, 'F' };
	if (xs_db_each_posting(xdb, PFX_ACCOUNT, index_fact_collect, &a, error_r) != XS_OK ||
	    xs_db_each_posting(xdb, PFX_FOLDER, index_fact_collect, &fo, error_r) != XS_OK)
		return -1;
	return 0;
}

/* True if the sorted array of n serials holds serial. */
static bool serial_in(const uint64_t *sorted, size_t n, uint64_t serial)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sorted[mid] < serial)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && sorted[lo] == serial;
}

/* Prints every difference between what documents say and what the archive says, for the messages that
   have a document (in_idx, sorted) and are marked indexed (in_arch, sorted), not queued for re-indexing
   (messages missing from one side are counted apart); returns how many documents differ. A document
   that names no place at all is compared too. */
static size_t index_facts_compare(struct facts *idx, struct facts *arch, const uint64_t *in_idx, size_t nidx,
				  const uint64_t *in_arch, size_t narch, const uint64_t *queued, size_t nqueued)
{
	facts_sort_unique(idx);
	facts_sort_unique(arch);
	size_t i = 0, j = 0, differ = 0;
	uint64_t last_bad = 0;
	while (i < idx->n || j < arch->n) {
		const struct fact *x = i < idx->n ? &idx->items[i] : NULL, *y = j < arch->n ? &arch->items[j] : NULL;
		int c = x == NULL ? 1 : y == NULL ? -1 : fact_cmp(x, y);
		if (c == 0) {
			i++;
			j++;
			continue;
		}
		const struct fact *odd = c < 0 ? x : y;
		if (c < 0)
			i++;
		else
			j++;
		if (!serial_in(in_idx, nidx, odd->serial) || !serial_in(in_arch, narch, odd->serial) ||
		    serial_in(queued, nqueued, odd->serial))
			continue;
		printf("document %llu %s %s '%s'\n", (unsigned long long)odd->serial,
		       c < 0 ? "names a place the archive does not have it in:" : "lacks a place the archive has it in:",
		       odd->kind == 'A' ? "account" : "folder", util_term(odd->value));
		if (odd->serial != last_bad)
			differ++;
		last_bad = odd->serial;
	}
	return differ;
}

/* How many shards lack this version's format mark, each reported: documents an earlier indexer wrote
   may answer some queries differently (body: matched subjects before format 2). */
static size_t index_old_shards(struct cli *cli)
{
	size_t n, old = 0;
	char *xerr = NULL;
	char **paths = index_layout_shards(cli->cfg->index_path, &n, &xerr);
	for (size_t k = 0; paths != NULL && k < n; k++) {
		struct xs_db *shard = NULL;
		char *format = NULL;
		const char *one[] = { paths[k] };
		if (xs_db_open_readonly(one, 1, &shard, &xerr) == XS_OK &&
		    xs_db_get_metadata(shard, INDEX_FORMAT_KEY, &format, &xerr) == XS_OK &&
		    strcmp(format, INDEX_FORMAT) != 0) {
			printf("shard %s was built by an earlier mailvault-indexer (index format %s, this version writes %s): "
			       "run `mailvault index rebuild` so every document is written again\n", paths[k],
			       *format ? format : "1", INDEX_FORMAT);
			old++;
		}
		free(format);
		free(xerr);
		xerr = NULL;
		xs_db_close(&shard);
	}
	index_layout_free(&paths);
	free(xerr);
	return old;
}

/* index verify: Xapian's document ids, then what each document says, against the archive; index rebuild:
   re-index everything. */
int cmd_index(struct cli *cli, int argc, char **argv)
{
	const char *err;
	if (argc < 1 || (strcmp(argv[0], "verify") != 0 && strcmp(argv[0], "rebuild") != 0))
		return cli_error("usage: mailvault index verify | index rebuild");
	if (cli_connect(cli) < 0)
		return 1;
	if (strcmp(argv[0], "rebuild") == 0) {
		/* every message becomes pending; replace_document makes re-indexing idempotent, and
		   documents of messages no longer in the archive are queued for removal */
		struct xs_db *xdb = index_open(cli);
		struct docid_set s = { 0 };
		char *xerr = NULL;
		if (xdb != NULL && xs_db_each_docid(xdb, docid_collect, &s, &xerr) != XS_OK) {
			cli_error("index rebuild: %s", xerr);
			free(xerr);
		}
		xs_db_close(&xdb);
		struct pg_array arr = PG_ARRAY_INIT;
		for (size_t i = 0; i < s.n; i++)
			pg_array_add_int(&arr, (int64_t)s.ids[i]);
		free(s.ids);
		const char *p[] = { pg_array_text(&arr) };
		PGresult *res = NULL;
		if (db_begin(cli->db, &err) < 0 ||
		    db_exec(cli->db, "INSERT INTO index_queue (serial, op) SELECT d, 'delete' FROM unnest($1::bigint[]) d "
			    "WHERE d NOT IN (SELECT serial FROM messages)", 1, p, &err) < 0 ||
		    (res = db_query(cli->db, "UPDATE messages SET indexed_at = NULL RETURNING serial", 0, NULL, &err)) == NULL ||
		    cli_audit(cli, "index-rebuild", cli->cfg->index_path, NULL) < 0 || db_commit(cli->db, &err) < 0) {
			db_rollback(cli->db);
			pg_array_free(&arr);
			PQclear(res);
			return cli_error("index rebuild: %s", err);
		}
		printf("%d messages queued for re-indexing; mailvault-indexer rebuilds the index from the archive\n",
		       PQntuples(res));
		PQclear(res);
		pg_array_free(&arr);
		return 0;
	}
	struct xs_db *xdb = index_open(cli);
	if (xdb == NULL)
		return 1;
	struct docid_set s = { 0 };
	struct facts idx = { 0 };
	char *xerr = NULL;
	if (xs_db_each_docid(xdb, docid_collect, &s, &xerr) != XS_OK || index_facts_collect(xdb, &idx, &xerr) < 0) {
		xs_db_close(&xdb);
		free(s.ids);
		facts_free(&idx);
		cli_error("index verify: %s", xerr);
		free(xerr);
		return 1;
	}
	xs_db_close(&xdb);
	PGresult *res = db_query(cli->db, "SELECT serial, indexed_at IS NOT NULL FROM messages ORDER BY serial", 0, NULL, &err);
	if (res == NULL) {
		free(s.ids);
		facts_free(&idx);
		return cli_error("index verify: %s", err);
	}
	size_t i = 0, missing = 0, extra = 0, pending = 0, ok = 0, nindexed = 0;
	int rows = PQntuples(res), r = 0;
	uint64_t *indexed = xcalloc(rows ? (size_t)rows : 1, sizeof(uint64_t));
	for (int k = 0; k < rows; k++)
		if (strcmp(PQgetvalue(res, k, 1), "t") == 0)
			indexed[nindexed++] = strtoull(PQgetvalue(res, k, 0), NULL, 10);
	while (r < rows || i < s.n) {
		uint64_t serial = r < rows ? strtoull(PQgetvalue(res, r, 0), NULL, 10) : UINT64_MAX;
		uint64_t docid = i < s.n ? s.ids[i] : UINT64_MAX;
		if (serial == docid) {
			ok++;
			r++;
			i++;
		} else if (serial < docid) {
			if (strcmp(PQgetvalue(res, r, 1), "t") == 0) {
				printf("missing from the index: message %llu\n", (unsigned long long)serial);
				missing++;
			} else {
				pending++;
			}
			r++;
		} else {
			printf("in the index but not in the archive: document %llu\n", (unsigned long long)docid);
			extra++;
			i++;
		}
	}
	PQclear(res);
	/* what each document says (accounts, folders) against the archive, for the messages marked indexed;
	   those queued for re-indexing are known to be stale and are redone by the indexer */
	struct facts arch = { 0 };
	res = db_query(cli->db, "SELECT DISTINCT m.serial, a.name, f.name FROM messages m JOIN locations l ON "
		       "l.message_serial = m.serial JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id "
		       "WHERE m.indexed_at IS NOT NULL", 0, NULL, &err);
	PGresult *q = res ? db_query(cli->db, "SELECT DISTINCT serial FROM index_queue ORDER BY 1", 0, NULL, &err) : NULL;
	if (res == NULL || q == NULL) {
		PQclear(res);
		facts_free(&idx);
		free(s.ids);
		free(indexed);
		return cli_error("index verify: %s", err);
	}
	for (r = 0; r < PQntuples(res); r++) {
		uint64_t serial = strtoull(PQgetvalue(res, r, 0), NULL, 10);
		facts_add(&arch, serial, 'A', xs_term_value(PFX_ACCOUNT, PQgetvalue(res, r, 1)));
		facts_add(&arch, serial, 'F', xs_term_value(PFX_FOLDER, PQgetvalue(res, r, 2)));
	}
	PQclear(res);
	size_t queued = (size_t)PQntuples(q);
	uint64_t *skip = xcalloc(queued ? queued : 1, sizeof(uint64_t));
	for (size_t k = 0; k < queued; k++)
		skip[k] = strtoull(PQgetvalue(q, (int)k, 0), NULL, 10);
	PQclear(q);
	size_t differ = index_facts_compare(&idx, &arch, s.ids, s.n, indexed, nindexed, skip, queued);
	free(skip);
	free(s.ids);
	free(indexed);
	facts_free(&idx);
	facts_free(&arch);
	size_t old_shards = index_old_shards(cli);
	printf("index verify: %zu messages indexed and present, %zu not yet indexed, %zu missing, %zu extra; "
	       "%zu document%s differ from the archive in accounts or folders; %zu queued for re-indexing\n", ok,
	       pending, missing, extra, differ, differ == 1 ? "" : "s", queued);
	return missing == 0 && extra == 0 && differ == 0 && old_shards == 0 ? 0 : 1;
}

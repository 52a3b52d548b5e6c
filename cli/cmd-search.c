/* mailvault search, officer and index: the officers' search, who may see what, and index health. */
#include "cli.h"
#include "buf.h"
#include "db.h"
#include "index-layout.h"
#include "json.h"
#include "pg-array.h"
#include "prefixes.h"
#include "query.h"
#include "util.h"
#include "xapian_shim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes an audit row through the database's one audit function; details is a JSON object text. */
int cli_audit(struct cli *cli, const char *action, const char *target, const char *details)
{
	const char *err;
	const char *p[] = { action, target, details };
	if (db_exec(cli->db, "SELECT mailvault_audit($1, $2, $3::jsonb)", 3, p, &err) < 0) {
		/* an action that cannot be audited is not performed */
		cli_error("cannot write the audit record: %s", err);
		return -1;
	}
	return 0;
}

/* The accounts this login may see: row-level security answers (the owner sees all). */
static int search_scope(struct cli *cli, char ***names_r, size_t *n_r)
{
	const char *err;
	PGresult *res = db_query(cli->db, "SELECT name FROM accounts ORDER BY name", 0, NULL, &err);
	if (res == NULL)
		return cli_error("cannot read your scope: %s", err), -1;
	size_t n = (size_t)PQntuples(res);
	char **names = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		names[i] = xstrdup(PQgetvalue(res, (int)i, 0));
	PQclear(res);
	*names_r = names;
	*n_r = n;
	return 0;
}

/* Frees a NULL-terminated string array. */
static void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* True if two NULL-terminated path arrays are equal. */
static bool strv_equal(char *const *a, char *const *b)
{
	for (; *a && *b; a++, b++)
		if (strcmp(*a, *b) != 0)
			return false;
	return *a == NULL && *b == NULL;
}

/* Opens the index read-only. A session keeps it open and only reopens it to see the indexer's latest
   commit, unless the shard layout changed (a rebuild). Release with search_close_index(). */
static struct xs_db *search_open_index(struct cli *cli)
{
	char *xerr = NULL;
	struct xs_db *xdb = NULL;
	if (cli->cfg->index_path == NULL) {
		cli_error("no index configured: set [indexer] index_path in %s", cli->cfg->path);
		return NULL;
	}
	size_t n;
	char **paths = index_layout_shards(cli->cfg->index_path, &n, &xerr);
	if (paths != NULL && cli->keep_index && cli->index != NULL && strv_equal(paths, cli->index_paths)) {
		if (xs_db_reopen(cli->index, &xerr) == XS_OK) {
			index_layout_free(&paths);
			return cli->index;
		}
		free(xerr);
		xerr = NULL;
	}
	if (paths == NULL || xs_db_open_readonly((const char *const *)paths, n, &xdb, &xerr) != XS_OK) {
		cli_error("cannot open the index: %s (has mailvault-indexer run?)", xerr);
		free(xerr);
		index_layout_free(&paths);
		return NULL;
	}
	if (cli->keep_index) {
		session_index_close(cli);
		cli->index = xdb;
		cli->index_paths = paths;
		return xdb;
	}
	index_layout_free(&paths);
	return xdb;
}

/* Releases what search_open_index() returned (a session's kept index stays open). */
static void search_close_index(struct cli *cli, struct xs_db **xdb)
{
	if (*xdb != NULL && *xdb == cli->index)
		*xdb = NULL;
	else
		xs_db_close(xdb);
}

void session_index_close(struct cli *cli)
{
	xs_db_close(&cli->index);
	index_layout_free(&cli->index_paths);
}

/* search [--json] [--count] [--limit N] [--offset N] [--sort date|-date|relevance] QUERY */
int cmd_search(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "count", no_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' }, { "offset", required_argument, NULL, 'o' },
		{ "sort", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 } };
	bool count_only = false;
	uint64_t limit = 50, offset = 0;
	enum xs_sort sort = XS_SORT_DATE_DESC;
	const char *sort_name = "-date";
	int c;
	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': break;
		case 'n': count_only = true; break;
		case 'l':
			if (util_parse_uint(optarg, 1, 100000, &limit) < 0)
				return cli_error("search: --limit must be 1 to 100000");
			break;
		case 'o':
			if (util_parse_uint(optarg, 0, UINT32_MAX, &offset) < 0)
				return cli_error("search: --offset must be a number");
			break;
		case 's':
			sort_name = optarg;
			if (strcmp(optarg, "date") == 0)
				sort = XS_SORT_DATE_ASC;
			else if (strcmp(optarg, "-date") == 0)
				sort = XS_SORT_DATE_DESC;
			else if (strcmp(optarg, "relevance") == 0)
				sort = XS_SORT_RELEVANCE;
			else
				return cli_error("search: --sort must be date, -date or relevance");
			break;
		default:
			return cli_error("usage: mailvault search [--json] [--count] [--limit N] [--offset N] "
					 "[--sort date|-date|relevance] QUERY");
		}
	}
	/* the query is every remaining word, so quoting the whole query is optional */
	struct buf qtext = { 0 };
	for (int i = optind; i <= argc; i++) {
		if (strcmp(argv[i - 1], "--json") == 0)
			continue;
		buf_printf(&qtext, "%s%s", qtext.len ? " " : "", argv[i - 1]);
	}
	if (qtext.len == 0) {
		buf_free(&qtext);
		return cli_error("usage: mailvault search [options] QUERY (e.g. from:@enron.com subject:budget)");
	}
	char *perr = NULL;
	struct qnode *tree = query_parse((const char *)qtext.data, &perr);
	if (tree == NULL) {
		cli_error("search: %s", perr);
		free(perr);
		buf_free(&qtext);
		return 2;
	}
	int rc = 1;
	char **scope = NULL;
	size_t nscope = 0;
	struct xs_db *xdb = NULL;
	struct xs_query *q = NULL;
	uint64_t *docids = NULL;
	size_t ndocs = 0;
	uint64_t total = 0;
	struct buf details = { 0 };
	struct pg_array ids = PG_ARRAY_INIT;
	if (cli_connect(cli) < 0 || search_scope(cli, &scope, &nscope) < 0 || (xdb = search_open_index(cli)) == NULL)
		goto out;
	char *xerr = NULL;
	q = query_to_xapian(xdb, tree, &xerr);
	if (q == NULL) {
		cli_error("search: %s", xerr);
		free(xerr);
		rc = 2;
		goto out;
	}
	/* the scope is part of the Xapian query: nothing outside it is matched, counted or ranked */
	struct xs_query *filter = xs_query_none();
	for (size_t i = 0; i < nscope; i++)
		filter = xs_query_or(filter, xs_query_term(PFX_ACCOUNT, scope[i]));
	q = xs_query_filter(q, filter);
	enum xs_status st = count_only ? xs_count(xdb, q, &total, &xerr)
				       : xs_search(xdb, q, sort, offset, limit, &docids, &ndocs, &total, &xerr);
	if (st != XS_OK) {
		/* a query too broad to answer exactly (a wildcard past its limit) is the query's fault: exit 2 */
		cli_error(st == XS_ERR_QUERY ? "search: %s" : "search failed: %s", xerr);
		free(xerr);
		rc = st == XS_ERR_QUERY ? 2 : 1;
		goto out;
	}
	/* audit before showing anything */
	buf_append_str(&details, "{");
	json_append_key(&details, "count");
	buf_printf(&details, "%llu", (unsigned long long)total);
	json_append_key(&details, "scope");
	buf_append_str(&details, "[");
	for (size_t i = 0; i < nscope; i++) {
		if (i)
			buf_append_str(&details, ",");
		json_append_string(&details, scope[i]);
	}
	buf_append_str(&details, "]");
	if (!count_only) {
		json_append_key(&details, "sort");
		json_append_string(&details, sort_name);
		json_append_key(&details, "limit");
		buf_printf(&details, "%llu", (unsigned long long)limit);
		json_append_key(&details, "offset");
		buf_printf(&details, "%llu", (unsigned long long)offset);
	}
	buf_append_str(&details, "}");
	if (cli_audit(cli, count_only ? "count" : "search", (const char *)qtext.data, (const char *)details.data) < 0)
		goto out;
	if (count_only) {
		if (cli->json)
			printf("{\"count\":%llu}\n", (unsigned long long)total);
		else
			printf("%llu\n", (unsigned long long)total);
		rc = 0;
		goto out;
	}
	/* metadata from PostgreSQL, through row-level security again */
	for (size_t i = 0; i < ndocs; i++)
		pg_array_add_int(&ids, (int64_t)docids[i]);
	const char *p[] = { pg_array_text(&ids) };
	const char *err;
	PGresult *res = db_query(cli->db,
		"SELECT m.serial, to_char(m.date AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), m.from_addr, m.to_addr, "
		"m.subject, encode(m.sha256, 'hex'), "
		"(SELECT string_agg(a.name || '/' || f.name, E'\\n' ORDER BY l.id) FROM locations l JOIN folders f ON "
		" f.id = l.folder_id JOIN accounts a ON a.id = f.account_id WHERE l.message_serial = m.serial) "
		"FROM messages m WHERE m.serial = ANY($1::bigint[])", 1, p, &err);
	if (res == NULL) {
		cli_error("search: %s", err);
		goto out;
	}
	if (!cli->json)
		fprintf(stderr, "%llu match%s%s\n", (unsigned long long)total, total == 1 ? "" : "es",
			total > offset + ndocs ? " (use --offset for more)" : "");
	for (size_t i = 0; i < ndocs; i++) {
		int row = -1;
		for (int r = 0; r < PQntuples(res) && row < 0; r++)
			if (strtoull(PQgetvalue(res, r, 0), NULL, 10) == docids[i])
				row = r;
		if (row < 0)
			continue; /* not visible through row-level security: never shown */
		const char *locs = PQgetisnull(res, row, 6) ? "" : PQgetvalue(res, row, 6);
		char *first = xstrndup(locs, strcspn(locs, "\n"));
		char *slash = strchr(first, '/');
		if (cli->json) {
			struct buf b = { 0 };
			buf_append_str(&b, "{");
			json_append_key(&b, "serial");
			buf_append_str(&b, PQgetvalue(res, row, 0));
			static const char *keys[] = { NULL, "date", "from", "to", "subject", "sha256" };
			for (int k = 1; k <= 5; k++) {
				json_append_key(&b, keys[k]);
				json_append_string(&b, PQgetisnull(res, row, k) ? NULL : PQgetvalue(res, row, k));
			}
			json_append_key(&b, "account");
			if (slash)
				*slash = '\0';
			json_append_string(&b, first);
			json_append_key(&b, "folder");
			json_append_string(&b, slash ? slash + 1 : NULL);
			buf_append_str(&b, "}");
			puts((char *)b.data);
			buf_free(&b);
		} else {
			printf("%s\t%s\t%s\t%s\t%s\t%s\n", PQgetvalue(res, row, 0),
			       PQgetisnull(res, row, 1) ? "-" : PQgetvalue(res, row, 1),
			       PQgetisnull(res, row, 2) ? "-" : util_term(PQgetvalue(res, row, 2)),
			       PQgetisnull(res, row, 3) ? "-" : util_term(PQgetvalue(res, row, 3)),
			       PQgetisnull(res, row, 4) ? "-" : util_term(PQgetvalue(res, row, 4)), util_term(first));
		}
		free(first);
	}
	PQclear(res);
	rc = 0;
out:
	free(docids);
	xs_query_free(&q);
	search_close_index(cli, &xdb);
	query_free(&tree);
	strv_free(scope);
	buf_free(&qtext);
	buf_free(&details);
	pg_array_free(&ids);
	return rc;
}

/* officer add ROLE (--accounts A,B | --all) | list | remove ROLE */
int cmd_officer(struct cli *cli, int argc, char **argv)
{
	const char *err;
	if (cli_connect(cli) < 0)
		return 1;
	if (argc >= 1 && strcmp(argv[0], "list") == 0) {
		PGresult *res = db_query(cli->db, "SELECT o.role, CASE WHEN o.all_accounts THEN '(all accounts)' ELSE "
					 "coalesce((SELECT string_agg(a.name, ',' ORDER BY a.name) FROM officer_accounts oa "
					 "JOIN accounts a ON a.id = oa.account_id WHERE oa.role = o.role), '(none)') END "
					 "FROM officers o ORDER BY o.role", 0, NULL, &err);
		if (res == NULL)
			return cli_error("officer list: %s", err);
		for (int i = 0; i < PQntuples(res); i++)
			printf("%-24s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
		PQclear(res);
		return 0;
	}
	if (argc == 2 && strcmp(argv[0], "remove") == 0) {
		const char *p[] = { argv[1] };
		PGresult *res = db_query(cli->db, "DELETE FROM officers WHERE role = $1 RETURNING role", 1, p, &err);
		if (res == NULL)
			return cli_error("officer remove: %s", err);
		int n = PQntuples(res);
		PQclear(res);
		if (n == 0)
			return cli_error("no officer named '%s'", argv[1]);
		if (cli_audit(cli, "officer-remove", argv[1], "{}") < 0)
			return 1;
		printf("officer %s removed (the login keeps its role membership; REVOKE mailvault_officer FROM it too)\n",
		       argv[1]);
		return 0;
	}
	if (argc != 4 && argc != 3)
		goto usage;
	if (strcmp(argv[0], "add") != 0)
		goto usage;
	const char *role = argv[1];
	bool all = argc == 3 && strcmp(argv[2], "--all") == 0;
	const char *accounts = argc == 4 && strcmp(argv[2], "--accounts") == 0 ? argv[3] : NULL;
	if (!all && accounts == NULL)
		goto usage;
	const char *p[] = { role };
	PGresult *res = db_query(cli->db, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", 1, p, &err);
	if (res == NULL)
		return cli_error("officer add: %s", err);
	if (PQntuples(res) == 0) {
		PQclear(res);
		return cli_error("no PostgreSQL role '%s': create the officer's login first (CREATE ROLE %s LOGIN ...)",
				 role, role);
	}
	PQclear(res);
	/* the role name is checked against pg_roles above and quoted by quote_ident: no injection */
	struct pg_array arr = PG_ARRAY_INIT;
	if (accounts != NULL) {
		char *copy = xstrdup(accounts), *save = NULL;
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			pg_array_add_str(&arr, tok);
		free(copy);
	}
	const char *q[] = { role, all ? "true" : "false", pg_array_text(&arr) };
	int rc = 1;
	if (db_begin(cli->db, &err) < 0)
		goto fail;
	res = db_query(cli->db, "SELECT n FROM unnest($1::text[]) AS n WHERE n NOT IN (SELECT name FROM accounts)",
		       1, q + 2, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) > 0) {
		cli_error("officer add: no account named '%s'", PQgetvalue(res, 0, 0));
		PQclear(res);
		db_rollback(cli->db);
		goto out;
	}
	PQclear(res);
	res = db_query(cli->db, "SELECT format('GRANT mailvault_officer TO %I', $1::text)", 1, p, &err);
	if (res == NULL)
		goto fail;
	char *grant = xstrdup(PQgetvalue(res, 0, 0));
	PQclear(res);
	int g = db_exec(cli->db, grant, 0, NULL, &err);
	free(grant);
	if (g < 0 ||
	    db_exec(cli->db, "INSERT INTO officers (role, all_accounts) VALUES ($1, $2) ON CONFLICT (role) DO UPDATE "
		    "SET all_accounts = EXCLUDED.all_accounts", 2, q, &err) < 0 ||
	    db_exec(cli->db, "DELETE FROM officer_accounts WHERE role = $1", 1, p, &err) < 0 ||
	    db_exec(cli->db, "INSERT INTO officer_accounts (role, account_id) SELECT $1, a.id FROM accounts a "
		    "WHERE a.name = ANY($3::text[]) AND NOT $2::boolean", 3, q, &err) < 0)
		goto fail;
	struct buf d = { 0 };
	buf_append_str(&d, "{");
	json_append_key(&d, "all_accounts");
	buf_append_str(&d, all ? "true" : "false");
	json_append_key(&d, "accounts");
	json_append_string(&d, accounts ? accounts : "");
	buf_append_str(&d, "}");
	int a = cli_audit(cli, "officer-add", role, (const char *)d.data);
	buf_free(&d);
	if (a < 0 || db_commit(cli->db, &err) < 0) {
		db_rollback(cli->db);
		goto out;
	}
	printf("officer %s may see %s\n", role, all ? "all accounts" : accounts);
	rc = 0;
	goto out;
fail:
	db_rollback(cli->db);
	cli_error("officer add: %s", err);
out:
	pg_array_free(&arr);
	return rc;
usage:
	return cli_error("usage: mailvault officer add ROLE (--accounts A,B | --all) | officer list | officer remove ROLE");
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
		struct xs_db *xdb = search_open_index(cli);
		struct docid_set s = { 0 };
		char *xerr = NULL;
		if (xdb != NULL && xs_db_each_docid(xdb, docid_collect, &s, &xerr) != XS_OK) {
			cli_error("index rebuild: %s", xerr);
			free(xerr);
		}
		search_close_index(cli, &xdb);
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
		    cli_audit(cli, "index-rebuild", cli->cfg->index_path, "{}") < 0 || db_commit(cli->db, &err) < 0) {
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
	struct xs_db *xdb = search_open_index(cli);
	if (xdb == NULL)
		return 1;
	struct docid_set s = { 0 };
	struct facts idx = { 0 };
	char *xerr = NULL;
	if (xs_db_each_docid(xdb, docid_collect, &s, &xerr) != XS_OK || index_facts_collect(xdb, &idx, &xerr) < 0) {
		search_close_index(cli, &xdb);
		free(s.ids);
		facts_free(&idx);
		cli_error("index verify: %s", xerr);
		free(xerr);
		return 1;
	}
	search_close_index(cli, &xdb);
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

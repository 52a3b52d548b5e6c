/* Polls one account: log in, list folders, and archive each selected folder's new messages by UID. */
#include "poller.h"
#include "db.h"
#include "log.h"
#include "secret.h"
#include "util.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* A folder as the server lists it, with STATUS values when known. */
struct folder {
	char *name;
	char *special_use;
	bool noselect;
	bool have_status;
	uint64_t uidvalidity, uidnext, highestmodseq;
	/* from the database */
	int64_t id;
	bool have_db;
	uint64_t db_uidvalidity, db_last_uid, db_uidnext;
	bool db_uidvalidity_null, db_uidnext_null;
};

struct folder_list {
	struct folder *items;
	size_t count, cap;
};

/* Frees an account's strings. */
void account_free(struct account *a)
{
	FREE(a->name);
	FREE(a->host);
	FREE(a->username);
	FREE(a->secret_ref);
	FREE(a->ca_file);
	for (char **p = a->include; p && *p; p++)
		free(*p);
	for (char **p = a->exclude; p && *p; p++)
		free(*p);
	FREE(a->include);
	FREE(a->exclude);
}

/* Finds a folder by name (INBOX is case-insensitive, RFC 3501 5.1). */
static struct folder *folders_find(struct folder_list *fl, const char *name)
{
	for (size_t i = 0; i < fl->count; i++) {
		const char *n = fl->items[i].name;
		if (strcmp(n, name) == 0 || (strcasecmp(n, "INBOX") == 0 && strcasecmp(name, "INBOX") == 0))
			return &fl->items[i];
	}
	return NULL;
}

/* Reads a STATUS attribute list into the folder. */
static void folder_take_status(struct folder *f, const struct imap_arg *list)
{
	const struct imap_arg *v;
	if ((v = imap_list_find(list, "UIDVALIDITY")) && imap_arg_as_u64(v, &f->uidvalidity) == 0)
		f->have_status = true;
	if ((v = imap_list_find(list, "UIDNEXT")))
		imap_arg_as_u64(v, &f->uidnext);
	if ((v = imap_list_find(list, "HIGHESTMODSEQ")))
		imap_arg_as_u64(v, &f->highestmodseq);
}

/* Untagged LIST and STATUS responses build the folder list. */
static void folders_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct folder_list *fl = ctxp;
	if (r->status != IMAP_STATUS_NONE || r->count < 1)
		return;
	if (imap_arg_atom_equals(&r->args[0], "LIST") && r->count >= 4 && r->args[1].type == IMAP_ARG_LIST) {
		const char *name = imap_arg_as_string(&r->args[3]);
		if (name == NULL || folders_find(fl, name) != NULL)
			return;
		if (fl->count == fl->cap) {
			fl->cap = fl->cap ? fl->cap * 2 : 16;
			fl->items = xrealloc(fl->items, fl->cap * sizeof(*fl->items));
		}
		struct folder *f = &fl->items[fl->count++];
		memset(f, 0, sizeof(*f));
		f->name = xstrdup(strcasecmp(name, "INBOX") == 0 ? "INBOX" : name);
		const struct imap_arg *flags = &r->args[1];
		for (size_t i = 0; i < flags->count; i++) {
			const struct imap_arg *a = &flags->list[i];
			if (imap_arg_atom_equals(a, "\\Noselect") || imap_arg_atom_equals(a, "\\NonExistent"))
				f->noselect = true;
			static const char *uses[] = { "\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk",
						      "\\Sent", "\\Trash", "\\Important" };
			for (size_t u = 0; u < sizeof(uses) / sizeof(uses[0]); u++)
				if (imap_arg_atom_equals(a, uses[u]) && f->special_use == NULL)
					f->special_use = xstrdup(uses[u]);
		}
	} else if (imap_arg_atom_equals(&r->args[0], "STATUS") && r->count >= 3 &&
		   r->args[2].type == IMAP_ARG_LIST) {
		const char *name = imap_arg_as_string(&r->args[1]);
		struct folder *f = name ? folders_find(fl, name) : NULL;
		if (f != NULL)
			folder_take_status(f, &r->args[2]);
	}
}

/* True if the folder is selected by the account's include/exclude patterns. */
static bool account_wants_folder(const struct account *a, const char *name)
{
	bool included = a->include == NULL || a->include[0] == NULL;
	for (char **p = a->include; p && *p && !included; p++)
		included = fnmatch(*p, name, 0) == 0;
	for (char **p = a->exclude; p && *p && included; p++)
		if (fnmatch(*p, name, 0) == 0)
			included = false;
	return included;
}

/* Appends a mailbox name to a command, quoted. */
static int cmd_mailbox(struct buf *b, const char *name)
{
	return imap_quote(b, name);
}

/* LIST (with LIST-STATUS where offered, STATUS otherwise) into fl. */
static int account_list_folders(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *a,
				struct folder_list *fl, char **error_r)
{
	const char *text;
	bool list_status = imap_conn_has_capability(conn, "LIST-STATUS");
	bool condstore = imap_conn_has_capability(conn, "CONDSTORE");
	struct buf cmd = { 0 };
	buf_append_str(&cmd, "LIST \"\" \"*\"");
	if (list_status || imap_conn_has_capability(conn, "SPECIAL-USE")) {
		buf_append_str(&cmd, " RETURN (");
		if (imap_conn_has_capability(conn, "SPECIAL-USE"))
			buf_append_str(&cmd, "SPECIAL-USE");
		if (list_status)
			buf_printf(&cmd, "%sSTATUS (UIDVALIDITY UIDNEXT MESSAGES%s)",
				   imap_conn_has_capability(conn, "SPECIAL-USE") ? " " : "",
				   condstore ? " HIGHESTMODSEQ" : "");
		buf_append_str(&cmd, ")");
	}
	log_debug("account %s: listing folders %s", a->name,
		  list_status ? "with LIST-STATUS" : "with LIST, then STATUS per folder (no LIST-STATUS)");
	enum imap_conn_status st = imap_conn_run(conn, (const char *)cmd.data, folders_on_untagged, fl, &text);
	buf_free(&cmd);
	if (st != IMAP_CONN_OK) {
		*error_r = xasprintf("LIST failed on %s: %s", a->name, text);
		return -1;
	}
	if (!list_status) {
		/* pipelined STATUS, a bounded number in flight */
		unsigned tags[IMAP_CONN_MAX_INFLIGHT];
		size_t head = 0, inflight = 0;
		for (size_t i = 0; i <= fl->count; i++) {
			if ((inflight == IMAP_CONN_MAX_INFLIGHT || i == fl->count) && inflight > 0) {
				while (inflight > 0) {
					if (imap_conn_wait(conn, tags[head % IMAP_CONN_MAX_INFLIGHT], folders_on_untagged,
							   fl, &text) == IMAP_CONN_ERROR) {
						*error_r = xasprintf("STATUS failed on %s: %s", a->name, text);
						return -1;
					}
					head++;
					inflight--;
				}
			}
			if (i == fl->count)
				break;
			struct folder *f = &fl->items[i];
			if (f->noselect || !account_wants_folder(a, f->name))
				continue;
			buf_append_str(&cmd, "STATUS ");
			cmd_mailbox(&cmd, f->name);
			buf_printf(&cmd, " (UIDVALIDITY UIDNEXT MESSAGES%s)", condstore ? " HIGHESTMODSEQ" : "");
			tags[(head + inflight) % IMAP_CONN_MAX_INFLIGHT] = imap_conn_send(conn, (const char *)cmd.data);
			inflight++;
			buf_free(&cmd);
		}
	}
	(void)ctx;
	return 0;
}

/* Loads the account's known folders' sync state from the database. */
static int account_load_db_folders(struct poll_ctx *ctx, const struct account *a, struct folder_list *fl,
				   char **error_r)
{
	const char *err;
	char s_acct[24];
	snprintf(s_acct, sizeof(s_acct), "%d", a->id);
	const char *p[] = { s_acct };
	PGresult *res = db_query(ctx->db, "SELECT name, id, uidvalidity, last_uid, uidnext FROM folders "
				 "WHERE account_id = $1", 1, p, &err);
	if (res == NULL) {
		*error_r = xstrdup(err);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		struct folder *f = folders_find(fl, PQgetvalue(res, i, 0));
		if (f == NULL)
			continue;
		f->have_db = true;
		f->id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		f->db_uidvalidity_null = PQgetisnull(res, i, 2);
		f->db_uidvalidity = strtoull(PQgetvalue(res, i, 2), NULL, 10);
		f->db_last_uid = strtoull(PQgetvalue(res, i, 3), NULL, 10);
		f->db_uidnext_null = PQgetisnull(res, i, 4);
		f->db_uidnext = strtoull(PQgetvalue(res, i, 4), NULL, 10);
	}
	PQclear(res);
	return 0;
}

/* Creates the folder's row the first time it is seen. */
static int folder_db_create(struct poll_ctx *ctx, const struct account *a, struct folder *f, char **error_r)
{
	const char *err;
	char s_acct[24];
	snprintf(s_acct, sizeof(s_acct), "%d", a->id);
	const char *p[] = { s_acct, f->name, f->special_use };
	PGresult *res = db_query(ctx->db, "INSERT INTO folders (account_id, name, special_use) VALUES ($1, $2, $3) "
				 "RETURNING id", 3, p, &err);
	if (res == NULL) {
		*error_r = xasprintf("cannot record folder %s: %s", f->name, err);
		return -1;
	}
	f->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	f->have_db = true;
	f->db_uidvalidity_null = f->db_uidnext_null = true;
	PQclear(res);
	return 0;
}

/* What EXAMINE told us. */
struct examine_state {
	uint64_t uidvalidity, uidnext, highestmodseq, exists;
	bool have_uidvalidity, have_uidnext;
};

/* Untagged responses of EXAMINE. */
static void examine_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct examine_state *e = ctxp;
	if (r->status == IMAP_STATUS_OK && r->code_args != NULL && r->code_count >= 2) {
		if (imap_arg_atom_equals(&r->code_args[0], "UIDVALIDITY"))
			e->have_uidvalidity = imap_arg_as_u64(&r->code_args[1], &e->uidvalidity) == 0;
		else if (imap_arg_atom_equals(&r->code_args[0], "UIDNEXT"))
			e->have_uidnext = imap_arg_as_u64(&r->code_args[1], &e->uidnext) == 0;
		else if (imap_arg_atom_equals(&r->code_args[0], "HIGHESTMODSEQ"))
			imap_arg_as_u64(&r->code_args[1], &e->highestmodseq);
	} else if (r->status == IMAP_STATUS_NONE && r->count >= 2 && imap_arg_atom_equals(&r->args[1], "EXISTS")) {
		imap_arg_as_u64(&r->args[0], &e->exists);
	}
}

/* UIDs and sizes of the new messages. */
struct uid_list {
	uint64_t *uids, *sizes;
	size_t count, cap;
	uint64_t above;  /* only UIDs greater than this are new */
};

/* Collects "* n FETCH (UID u RFC822.SIZE s)". */
static void uids_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct uid_list *ul = ctxp;
	uint64_t uid, size = 0;
	if (r->status != IMAP_STATUS_NONE || r->count < 3 || !imap_arg_atom_equals(&r->args[1], "FETCH") ||
	    r->args[2].type != IMAP_ARG_LIST)
		return;
	const struct imap_arg *v = imap_list_find(&r->args[2], "UID");
	if (v == NULL || imap_arg_as_u64(v, &uid) < 0 || uid <= ul->above)
		return; /* "n:*" also returns the highest UID when it is below n */
	if ((v = imap_list_find(&r->args[2], "RFC822.SIZE")) == NULL || imap_arg_as_u64(v, &size) < 0)
		return; /* a flags-only update, not our answer */
	if (ul->count == ul->cap) {
		ul->cap = ul->cap ? ul->cap * 2 : 256;
		ul->uids = xrealloc(ul->uids, ul->cap * sizeof(uint64_t));
		ul->sizes = xrealloc(ul->sizes, ul->cap * sizeof(uint64_t));
	}
	ul->uids[ul->count] = uid;
	ul->sizes[ul->count] = size;
	ul->count++;
}

/* Sorts UIDs (with their sizes) ascending; servers usually answer in order already. */
static void uids_sort(struct uid_list *ul)
{
	for (size_t i = 1; i < ul->count; i++) {
		uint64_t u = ul->uids[i], s = ul->sizes[i];
		size_t j = i;
		while (j > 0 && ul->uids[j - 1] > u) {
			ul->uids[j] = ul->uids[j - 1];
			ul->sizes[j] = ul->sizes[j - 1];
			j--;
		}
		ul->uids[j] = u;
		ul->sizes[j] = s;
	}
}

/* One planned batch: a range of indexes into the uid list. */
struct batch {
	size_t first, end;        /* [first, end) */
	struct fetched_msg *msgs;
	size_t nmsgs, cap;
	uint64_t max_message;
	struct skipped_msg *skipped;
	size_t nskipped;
	const struct uid_list *ul;
};

/* Converts IMAP's "17-Jul-1996 02:44:25 -0700" into ISO 8601 for PostgreSQL. */
static char *internaldate_to_iso(const char *s)
{
	struct tm tm = { 0 };
	while (*s == ' ')
		s++;
	const char *end = strptime(s, "%d-%b-%Y %H:%M:%S %z", &tm);
	if (end == NULL)
		return NULL;
	long off = tm.tm_gmtoff;
	return xasprintf("%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 3600, (labs(off) % 3600) / 60);
}

/* Renders a FLAGS list as a PostgreSQL text[] literal. */
static char *flags_to_pg_array(const struct imap_arg *flags)
{
	struct buf b = { 0 };
	buf_append_str(&b, "{");
	for (size_t i = 0; flags && i < flags->count; i++) {
		const char *f = imap_arg_as_string(&flags->list[i]);
		if (f == NULL)
			continue;
		if (b.len > 1)
			buf_append_str(&b, ",");
		buf_append_str(&b, "\"");
		for (const char *p = f; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_append_str(&b, "\\");
			buf_append(&b, p, 1);
		}
		buf_append_str(&b, "\"");
	}
	buf_append_str(&b, "}");
	return buf_steal(&b);
}

/* Adds a skipped UID to the batch. */
static void batch_skip(struct batch *bt, uint64_t uid, uint64_t size, char *reason)
{
	bt->skipped = xrealloc(bt->skipped, (bt->nskipped + 1) * sizeof(*bt->skipped));
	bt->skipped[bt->nskipped++] = (struct skipped_msg){ uid, size, reason };
}

/* Collects the bodies of a batch from FETCH responses. */
static void batch_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct batch *bt = ctxp;
	uint64_t uid;
	if (r->status != IMAP_STATUS_NONE || r->count < 3 || !imap_arg_atom_equals(&r->args[1], "FETCH") ||
	    r->args[2].type != IMAP_ARG_LIST)
		return;
	const struct imap_arg *l = &r->args[2];
	const struct imap_arg *v = imap_list_find(l, "UID");
	const struct imap_arg *body = imap_list_find(l, "BODY[]");
	if (v == NULL || imap_arg_as_u64(v, &uid) < 0 || body == NULL)
		return; /* unsolicited flag updates carry no body */
	bool ours = false;
	for (size_t i = bt->first; i < bt->end && !ours; i++)
		ours = bt->ul->uids[i] == uid;
	if (!ours)
		return;
	for (size_t i = 0; i < bt->nmsgs; i++)
		if (bt->msgs[i].uid == uid)
			return; /* the server repeated itself */
	if (body->type == IMAP_ARG_NIL || (body->type == IMAP_ARG_LITERAL && body->oversize) ||
	    body->type == IMAP_ARG_LIST) {
		batch_skip(bt, uid, body->len,
			   body->oversize ? xasprintf("message of %zu bytes exceeds max_message_bytes (%llu) although "
						      "the server announced a smaller size", body->len,
						      (unsigned long long)bt->max_message)
					  : xstrdup("the server returned no body for this message"));
		return;
	}
	if (bt->nmsgs == bt->cap) {
		bt->cap = bt->cap ? bt->cap * 2 : 64;
		bt->msgs = xrealloc(bt->msgs, bt->cap * sizeof(*bt->msgs));
	}
	struct fetched_msg *m = &bt->msgs[bt->nmsgs++];
	m->uid = uid;
	m->size = body->len;
	m->raw = xmalloc(body->len + 1);
	memcpy(m->raw, body->data, body->len);
	const char *idate = (v = imap_list_find(l, "INTERNALDATE")) ? imap_arg_as_string(v) : NULL;
	m->internaldate = idate ? internaldate_to_iso(idate) : NULL;
	v = imap_list_find(l, "FLAGS");
	m->flags = flags_to_pg_array(v && v->type == IMAP_ARG_LIST ? v : NULL);
}

/* Frees what a batch collected. */
static void batch_clear(struct batch *bt)
{
	for (size_t i = 0; i < bt->nmsgs; i++) {
		free(bt->msgs[i].raw);
		free(bt->msgs[i].internaldate);
		free(bt->msgs[i].flags);
	}
	for (size_t i = 0; i < bt->nskipped; i++)
		free(bt->skipped[i].reason);
	FREE(bt->msgs);
	FREE(bt->skipped);
	bt->nmsgs = bt->cap = bt->nskipped = 0;
}

/* Sends UID FETCH for the batch's fetchable UIDs; returns the tag, 0 when nothing is to be fetched. */
static unsigned batch_send(struct imap_conn *conn, const struct batch *bt, uint64_t max_message)
{
	struct buf cmd = { 0 };
	buf_append_str(&cmd, "UID FETCH ");
	size_t n = 0;
	for (size_t i = bt->first; i < bt->end; i++) {
		if (bt->ul->sizes[i] > max_message)
			continue;
		/* compress runs into ranges to keep the command short */
		size_t j = i;
		while (j + 1 < bt->end && bt->ul->uids[j + 1] == bt->ul->uids[j] + 1 && bt->ul->sizes[j + 1] <= max_message)
			j++;
		buf_printf(&cmd, "%s%llu", n++ ? "," : "", (unsigned long long)bt->ul->uids[i]);
		if (j > i)
			buf_printf(&cmd, ":%llu", (unsigned long long)bt->ul->uids[j]);
		i = j;
	}
	buf_append_str(&cmd, " (UID RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[])");
	unsigned tag = n ? imap_conn_send(conn, (const char *)cmd.data) : 0;
	buf_free(&cmd);
	return tag;
}

/* Archives a folder's new messages; 0, or -1 with *error_r and *fatal_r when the connection is gone. */
static int folder_sync(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *a, struct folder *f,
		       char **error_r, bool *fatal_r)
{
	const struct config *cfg = ctx->cfg;
	const char *text, *err;
	struct buf cmd = { 0 };
	struct examine_state ex = { 0 };
	char s_id[24], s_a[24], s_b[24], s_c[24];
	*fatal_r = false;
	snprintf(s_id, sizeof(s_id), "%lld", (long long)f->id);

	buf_append_str(&cmd, "EXAMINE ");
	if (cmd_mailbox(&cmd, f->name) < 0) {
		buf_free(&cmd);
		*error_r = xasprintf("folder %s: name cannot be sent to the server", f->name);
		return -1;
	}
	enum imap_conn_status st = imap_conn_run(conn, (const char *)cmd.data, examine_on_untagged, &ex, &text);
	buf_free(&cmd);
	if (st != IMAP_CONN_OK || !ex.have_uidvalidity) {
		*fatal_r = st == IMAP_CONN_ERROR;
		*error_r = xasprintf("EXAMINE %s failed: %s", f->name, st == IMAP_CONN_OK ? "no UIDVALIDITY" : text);
		return -1;
	}
	uint64_t last_uid = f->db_last_uid;
	if (f->db_uidvalidity_null || f->db_uidvalidity != ex.uidvalidity) {
		/* first sight, or a new generation: start from UID 1; blobs dedupe by content */
		snprintf(s_a, sizeof(s_a), "%llu", (unsigned long long)ex.uidvalidity);
		snprintf(s_b, sizeof(s_b), "%llu", (unsigned long long)f->db_uidvalidity);
		snprintf(s_c, sizeof(s_c), "%llu", (unsigned long long)f->db_last_uid);
		const char *p[] = { s_id, s_a, s_b, s_c };
		if (!f->db_uidvalidity_null) {
			log_warn("account %s folder %s: UIDVALIDITY changed from %s to %s: archiving the new generation "
				 "from UID 1", a->name, f->name, s_b, s_a);
			if (db_exec(ctx->db, "WITH c AS (INSERT INTO uidvalidity_changes (folder_id, new_uidvalidity, "
				    "old_uidvalidity, old_last_uid) VALUES ($1, $2, $3, $4)) "
				    "UPDATE folders SET uidvalidity = $2, last_uid = 0, uidnext = NULL WHERE id = $1",
				    4, p, &err) < 0)
				goto db_fail;
		} else if (db_exec(ctx->db, "UPDATE folders SET uidvalidity = $2, last_uid = 0 WHERE id = $1", 2, p,
				   &err) < 0) {
			goto db_fail;
		}
		last_uid = 0;
	}

	struct uid_list ul = { .above = last_uid };
	if (ex.exists > 0) {
		buf_printf(&cmd, "UID FETCH %llu:* (UID RFC822.SIZE)", (unsigned long long)last_uid + 1);
		st = imap_conn_run(conn, (const char *)cmd.data, uids_on_untagged, &ul, &text);
		buf_free(&cmd);
		if (st != IMAP_CONN_OK) {
			*fatal_r = st == IMAP_CONN_ERROR;
			*error_r = xasprintf("UID FETCH in %s failed: %s", f->name, text);
			free(ul.uids);
			free(ul.sizes);
			return -1;
		}
		uids_sort(&ul);
	}

	/* plan batches bounded by count and bytes; oversized messages are recorded, not fetched */
	size_t nbatches = 0, cap = 0;
	struct batch *batches = NULL;
	for (size_t i = 0; i < ul.count;) {
		size_t j = i, n = 0;
		uint64_t bytes = 0;
		while (j < ul.count && n < cfg->batch_messages &&
		       (n == 0 || ul.sizes[j] > cfg->max_message_bytes || bytes + ul.sizes[j] <= cfg->batch_bytes)) {
			if (ul.sizes[j] <= cfg->max_message_bytes)
				bytes += ul.sizes[j];
			n++;
			j++;
		}
		if (nbatches == cap) {
			cap = cap ? cap * 2 : 16;
			batches = xrealloc(batches, cap * sizeof(*batches));
		}
		batches[nbatches++] = (struct batch){ .first = i, .end = j, .ul = &ul, .max_message = cfg->max_message_bytes };
		i = j;
	}

	int rc = 0;
	size_t total_msgs = 0, total_bytes = 0;
	unsigned tag = nbatches > 0 ? batch_send(conn, &batches[0], cfg->max_message_bytes) : 0;
	for (size_t b = 0; b < nbatches; b++) {
		struct batch *bt = &batches[b];
		if (tag != 0) {
			st = imap_conn_wait(conn, tag, batch_on_untagged, bt, &text);
			if (st != IMAP_CONN_OK) {
				*fatal_r = st == IMAP_CONN_ERROR;
				*error_r = xasprintf("fetching from %s failed: %s", f->name, text);
				rc = -1;
			}
		}
		/* pipelining: the server prepares the next batch while we commit this one */
		tag = (rc == 0 && b + 1 < nbatches && !*ctx->stop) ? batch_send(conn, &batches[b + 1], cfg->max_message_bytes) : 0;
		if (rc == 0) {
			for (size_t i = bt->first; i < bt->end; i++) {
				bool got = false;
				for (size_t k = 0; k < bt->nmsgs && !got; k++)
					got = bt->msgs[k].uid == ul.uids[i];
				for (size_t k = 0; k < bt->nskipped && !got; k++)
					got = bt->skipped[k].uid == ul.uids[i];
				if (got)
					continue;
				if (ul.sizes[i] > cfg->max_message_bytes) {
					log_warn("account %s folder %s: UID %llu is %llu bytes, over max_message_bytes: recorded "
						 "in ingest_errors, not archived", a->name, f->name,
						 (unsigned long long)ul.uids[i], (unsigned long long)ul.sizes[i]);
					batch_skip(bt, ul.uids[i], ul.sizes[i],
						   xasprintf("message of %llu bytes exceeds max_message_bytes (%llu)",
							     (unsigned long long)ul.sizes[i],
							     (unsigned long long)cfg->max_message_bytes));
				} else {
					batch_skip(bt, ul.uids[i], ul.sizes[i],
						   xstrdup("expunged from the server before it could be fetched"));
				}
			}
			uint64_t new_last = ul.uids[bt->end - 1];
			/* two pollers storing the same new message may deadlock; PostgreSQL aborts one: retry it */
			bool retry = true;
			int r = -1;
			for (int attempt = 0; attempt < 5 && retry; attempt++) {
				r = store_batch(ctx, a, f->id, ex.uidvalidity, bt->msgs, bt->nmsgs, bt->skipped,
						bt->nskipped, new_last, &err, &retry);
				if (r < 0 && retry)
					log_info("account %s folder %s: batch conflicted with another poller, retrying",
						 a->name, f->name);
			}
			if (r < 0) {
				*error_r = xasprintf("storing messages from %s failed: %s", f->name, err);
				*fatal_r = true;
				rc = -1;
			} else {
				for (size_t k = 0; k < bt->nmsgs; k++)
					total_bytes += bt->msgs[k].size;
				total_msgs += bt->nmsgs;
				log_debug("account %s folder %s: archived UIDs up to %llu", a->name, f->name,
					  (unsigned long long)new_last);
			}
		}
		batch_clear(bt);
		if (rc < 0 || *ctx->stop)
			break;
	}
	/* a stop or error may leave the next fetch in flight: its answer is drained on LOGOUT */
	for (size_t b = 0; b < nbatches; b++)
		batch_clear(&batches[b]);
	free(batches);
	free(ul.uids);
	free(ul.sizes);
	if (total_msgs > 0)
		log_info("account %s folder %s: archived %zu messages (%.1f MB)", a->name, f->name, total_msgs,
			 (double)total_bytes / 1e6);
	if (rc < 0 || *ctx->stop)
		return rc;

	/* fully synced up to EXAMINE's UIDNEXT: next time an unchanged STATUS skips the folder */
	snprintf(s_a, sizeof(s_a), "%llu", (unsigned long long)ex.uidnext);
	snprintf(s_b, sizeof(s_b), "%llu", (unsigned long long)ex.highestmodseq);
	const char *p[] = { s_id, ex.have_uidnext ? s_a : NULL, ex.highestmodseq ? s_b : NULL };
	if (db_exec(ctx->db, "UPDATE folders SET uidnext = $2, highestmodseq = $3, last_sync = now() WHERE id = $1",
		    3, p, &err) < 0)
		goto db_fail;
	return 0;
db_fail:
	*error_r = xasprintf("database error on folder %s: %s", f->name, err);
	*fatal_r = true;
	return -1;
}

/* Polls the account end to end. */
int account_poll(struct poll_ctx *ctx, const struct account *a, char **error_r)
{
	const char *serr;
	ctx->backoff_ms = 0;
	ctx->auth_failed = false;
	char *secret = secret_resolve(a->secret_ref, &serr);
	if (secret == NULL) {
		*error_r = xasprintf("account %s: %s (%.*s)", a->name, serr,
				     (int)(strchr(a->secret_ref, ':') - a->secret_ref), a->secret_ref);
		return -1;
	}
	struct imap_conn_settings s = {
		.host = a->host, .port = a->port, .tls = a->tls,
		.ca_file = a->ca_file ? a->ca_file : ctx->cfg->ca_file,
		.username = a->username, .secret = secret, .auth = a->auth,
		.timeout_secs = ctx->cfg->timeout,
		.max_literal = ctx->cfg->max_message_bytes,
	};
	char *cerr = NULL;
	struct imap_conn *conn = imap_conn_open(&s, &cerr, &ctx->auth_failed);
	secret_free(&secret);
	if (conn == NULL) {
		*error_r = xasprintf("account %s: %s", a->name, cerr);
		free(cerr);
		return -1;
	}

	struct folder_list fl = { 0 };
	char *ferr = NULL;
	int rc = 0;
	if (account_list_folders(ctx, conn, a, &fl, &ferr) < 0 || account_load_db_folders(ctx, a, &fl, &ferr) < 0) {
		*error_r = xasprintf("account %s: %s", a->name, ferr);
		free(ferr);
		ctx->backoff_ms = imap_conn_backoff_ms(conn);
		rc = -1;
		goto out;
	}
	struct buf errors = { 0 };
	size_t synced = 0, skipped = 0;
	for (size_t i = 0; i < fl.count && !*ctx->stop; i++) {
		struct folder *f = &fl.items[i];
		if (f->noselect || !account_wants_folder(a, f->name))
			continue;
		if (!f->have_db && folder_db_create(ctx, a, f, &ferr) < 0) {
			buf_printf(&errors, "%s%s", errors.len ? "; " : "", ferr);
			FREE(ferr);
			rc = -1;
			break;
		}
		/* unchanged since the last full sync: no need to even EXAMINE it */
		if (f->have_status && !f->db_uidvalidity_null && !f->db_uidnext_null &&
		    f->uidvalidity == f->db_uidvalidity && f->uidnext == f->db_uidnext) {
			skipped++;
			continue;
		}
		bool fatal;
		if (folder_sync(ctx, conn, a, f, &ferr, &fatal) < 0) {
			log_warn("account %s: %s", a->name, ferr);
			buf_printf(&errors, "%s%s", errors.len ? "; " : "", ferr);
			FREE(ferr);
			rc = -1;
			if (fatal)
				break;
		}
		synced++;
	}
	log_info("account %s: %zu folders synced, %zu unchanged%s", a->name, synced, skipped,
		 *ctx->stop ? " (stopping)" : "");
	ctx->backoff_ms = imap_conn_backoff_ms(conn);
	if (rc < 0)
		*error_r = xasprintf("account %s: %s", a->name, errors.data ? (char *)errors.data : "failed");
	buf_free(&errors);
out:
	for (size_t i = 0; i < fl.count; i++) {
		free(fl.items[i].name);
		free(fl.items[i].special_use);
	}
	free(fl.items);
	imap_conn_close(&conn);
	return rc;
}

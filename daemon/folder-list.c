/* An account's folders: what LIST and STATUS say, which ones the account's patterns select, and their rows. */
#include "poller.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "mailbox.h"
#include "pg-array.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* What the untagged handler needs while LIST and STATUS answers arrive. */
struct list_state {
	struct folder_list *fl;
	long awaiting;                /* the folder whose STATUS command is being waited for, or -1 */
	long last_listed;             /* with LIST-STATUS: the folder listed last (its STATUS follows), or -1 */
	unsigned malformed;
};

/* True if the server's names a and b are the same mailbox (INBOX is case-insensitive, RFC 3501 5.1). */
static bool folder_name_equal(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	if (alen == 5 && blen == 5 && strncasecmp((const char *)a, "INBOX", 5) == 0 &&
	    strncasecmp((const char *)b, "INBOX", 5) == 0)
		return true;
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* The folder with the server's name, or NULL. */
static struct folder *folders_find(struct folder_list *fl, const unsigned char *name, size_t len)
{
	for (size_t i = 0; i < fl->count; i++)
		if (folder_name_equal(fl->items[i].raw, fl->items[i].raw_len, name, len))
			return &fl->items[i];
	return NULL;
}

/* A mailbox name from args[first..last]: one string, atom or literal, or (imap4d, which does not quote
   names) several atoms that were one name with spaces. Into out; false if it is not a name. */
static bool folder_name_from_args(const struct imap_arg *args, size_t first, size_t last, struct buf *out)
{
	buf_reset(out);
	if (first > last)
		return false;
	for (size_t i = first; i <= last; i++) {
		const struct imap_arg *a = &args[i];
		if (a->type == IMAP_ARG_NIL || a->type == IMAP_ARG_LIST || imap_arg_as_string(a) == NULL)
			return false;
		if (first != last && a->type != IMAP_ARG_ATOM)
			return false;
		if (i > first)
			buf_append(out, " ", 1);
		buf_append(out, a->data, a->len);
	}
	return out->len > 0;
}

/* Reads a STATUS attribute list into the folder. */
static void folder_take_status(struct folder *f, const struct imap_arg *list)
{
	const struct imap_arg *v;
	if ((v = imap_list_find(list, "UIDVALIDITY")) && imap_arg_as_u64(v, &f->uidvalidity) == 0)
		f->have_status = true;
	if ((v = imap_list_find(list, "UIDNEXT")) && imap_arg_as_u64(v, &f->uidnext) == 0 &&
	    f->uidnext <= (uint64_t)UINT32_MAX + 1)
		f->have_status_uidnext = true;
	if ((v = imap_list_find(list, "HIGHESTMODSEQ")))
		imap_arg_as_u64(v, &f->highestmodseq);
}

/* Adds a listed folder (LIST answer: args[1] flags, args[2] delimiter, args[3..] name). */
static void folders_take_list(struct list_state *ls, const struct imap_response *r)
{
	struct folder_list *fl = ls->fl;
	struct buf name = { 0 };
	/* an extended LIST answer may end with a list of extended data: not part of the name */
	size_t last = r->count - 1;
	if (last > 3 && r->args[last].type == IMAP_ARG_LIST)
		last--;
	if (!folder_name_from_args(r->args, 3, last, &name) || memchr(name.data, '\0', name.len) != NULL) {
		if (fl->problem == NULL)
			fl->problem = xstrdup("the server listed a folder whose name cannot be read or used "
					      "(a NUL byte, or no name at all): that folder is not archived");
		buf_free(&name);
		return;
	}
	if (folders_find(fl, name.data, name.len) != NULL) {
		buf_free(&name);
		return;
	}
	if (fl->count == fl->cap) {
		fl->cap = fl->cap ? fl->cap * 2 : 16;
		fl->items = xrealloc(fl->items, fl->cap * sizeof(*fl->items));
	}
	struct folder *f = &fl->items[fl->count++];
	memset(f, 0, sizeof(*f));
	if (name.len == 5 && strncasecmp((const char *)name.data, "INBOX", 5) == 0)
		memcpy(name.data, "INBOX", 5);
	f->raw_len = name.len;
	f->raw = (unsigned char *)buf_steal(&name);
	f->name = mailbox_display_name(f->raw, f->raw_len);
	const char *delim = imap_arg_as_string(&r->args[2]);
	f->delimiter = delim != NULL && r->args[2].len == 1 ? delim[0] : 0;
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
	ls->last_listed = (long)(fl->count - 1);
}

/* Untagged LIST and STATUS answers build the folder list; answers that do not parse are noted. */
static void folders_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct list_state *ls = ctxp;
	struct folder_list *fl = ls->fl;
	if (r->malformed != NULL) {
		ls->malformed++;
		if (ls->awaiting >= 0) {
			/* the STATUS of the folder we asked about: it will be examined instead of skipped */
			struct folder *f = &fl->items[ls->awaiting];
			log_warn("folder %s: the server's STATUS answer cannot be read (%s): examining the folder instead",
				 f->name, r->malformed);
			f->have_status = f->have_status_uidnext = false;
		} else if (fl->problem == NULL) {
			fl->problem = xasprintf("a LIST answer cannot be read, a folder may be missing: %s", r->malformed);
		}
		return;
	}
	if (r->status != IMAP_STATUS_NONE || r->count < 1)
		return;
	if (imap_arg_atom_equals(&r->args[0], "LIST") && r->count >= 4 && r->args[1].type == IMAP_ARG_LIST) {
		folders_take_list(ls, r);
	} else if (imap_arg_atom_equals(&r->args[0], "STATUS") && r->count >= 3 &&
		   r->args[r->count - 1].type == IMAP_ARG_LIST) {
		struct buf name = { 0 };
		struct folder *f = NULL;
		if (folder_name_from_args(r->args, 1, r->count - 2, &name))
			f = folders_find(fl, name.data, name.len);
		/* a name the server wrote differently from its LIST (unquoted, re-encoded): the answer belongs
		   to the folder whose STATUS we wait for, or with LIST-STATUS to the folder just listed */
		if (f == NULL && ls->awaiting >= 0)
			f = &fl->items[ls->awaiting];
		else if (f == NULL && ls->last_listed >= 0)
			f = &fl->items[ls->last_listed];
		if (f != NULL)
			folder_take_status(f, &r->args[r->count - 1]);
		buf_free(&name);
	}
}

/* True if the folder is selected by the account's include/exclude patterns (IMAP LIST wildcards,
   matched against the name people read). */
static bool account_wants_folder(const struct account *a, const struct folder *f)
{
	bool included = a->include == NULL || a->include[0] == NULL;
	for (char **p = a->include; p && *p && !included; p++)
		included = mailbox_pattern_match(*p, f->name, f->delimiter);
	for (char **p = a->exclude; p && *p && included; p++)
		if (mailbox_pattern_match(*p, f->name, f->delimiter))
			included = false;
	return included;
}

/* STATUS for every selected folder, a bounded number in flight; each answer is matched to its folder. */
static int folders_status(struct imap_conn *conn, struct list_state *ls, char **error_r)
{
	struct folder_list *fl = ls->fl;
	bool condstore = imap_conn_has_capability(conn, "CONDSTORE");
	unsigned tags[IMAP_CONN_MAX_INFLIGHT];
	size_t which[IMAP_CONN_MAX_INFLIGHT];
	size_t head = 0, inflight = 0;
	const char *text;
	for (size_t i = 0; i <= fl->count; i++) {
		while (inflight > 0 && (inflight == IMAP_CONN_MAX_INFLIGHT || i == fl->count)) {
			size_t k = head % IMAP_CONN_MAX_INFLIGHT;
			ls->awaiting = (long)which[k];
			enum imap_conn_status st = imap_conn_wait(conn, tags[k], folders_on_untagged, ls, &text);
			ls->awaiting = -1;
			if (st == IMAP_CONN_ERROR) {
				*error_r = xasprintf("STATUS failed: %s", text);
				return -1;
			}
			if (st != IMAP_CONN_OK)
				log_info("folder %s: STATUS refused (%s): examining it instead", fl->items[which[k]].name, text);
			head++;
			inflight--;
		}
		if (i == fl->count)
			break;
		struct folder *f = &fl->items[i];
		if (f->noselect || !f->selected)
			continue;
		struct buf cmd = { 0 };
		buf_append_str(&cmd, "STATUS ");
		if (imap_conn_append_mailbox(conn, &cmd, f->raw, f->raw_len) < 0) {
			buf_free(&cmd);
			continue;
		}
		buf_printf(&cmd, " (UIDVALIDITY UIDNEXT MESSAGES%s)", condstore ? " HIGHESTMODSEQ" : "");
		size_t k = (head + inflight) % IMAP_CONN_MAX_INFLIGHT;
		tags[k] = imap_conn_send(conn, (const char *)cmd.data);
		which[k] = i;
		inflight++;
		buf_free(&cmd);
	}
	return 0;
}

/* Decodes lower-case hex into bytes (for bytea read as encode(x, 'hex')); returns the length. */
static size_t folder_unhex(const char *hex, unsigned char *out)
{
	size_t n = 0;
	for (const char *p = hex; p[0] && p[1]; p += 2) {
		unsigned v;
		if (sscanf(p, "%2x", &v) != 1)
			break;
		out[n++] = (unsigned char)v;
	}
	return n;
}

/* True if two optional strings differ. */
static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/* Matches listed folders with their rows: sync state, and whether the listed attributes changed. */
static int folders_load_db(struct poll_ctx *ctx, const struct account *a, struct folder_list *fl, char **error_r)
{
	const char *err;
	char s_acct[24], s_max[24];
	snprintf(s_acct, sizeof(s_acct), "%d", a->id);
	snprintf(s_max, sizeof(s_max), "%llu", (unsigned long long)ctx->cfg->max_message_bytes);
	const char *p[] = { s_acct, s_max };
	PGresult *res = db_query(ctx->db, "SELECT encode(server_name, 'hex'), id, uidvalidity, last_uid, uidnext, "
				 "name, delimiter, special_use, selectable, selected, last_error IS NOT NULL, "
				 "EXISTS (SELECT 1 " FOLDER_PENDING_RETRIES_FROM("f0.id", "$2") ") FROM folders f0 WHERE account_id = $1",
				 2, p, &err);
	if (res == NULL) {
		*error_r = xstrdup(err);
		return -1;
	}
	for (int i = 0; i < PQntuples(res); i++) {
		const char *hex = PQgetvalue(res, i, 0);
		unsigned char *raw = xmalloc(strlen(hex) / 2 + 1);
		size_t len = folder_unhex(hex, raw);
		struct folder *f = folders_find(fl, raw, len);
		free(raw);
		if (f == NULL)
			continue;
		f->have_db = true;
		f->id = strtoll(PQgetvalue(res, i, 1), NULL, 10);
		f->db_uidvalidity_null = PQgetisnull(res, i, 2);
		f->db_uidvalidity = strtoull(PQgetvalue(res, i, 2), NULL, 10);
		f->db_last_uid = strtoull(PQgetvalue(res, i, 3), NULL, 10);
		f->db_uidnext_null = PQgetisnull(res, i, 4);
		f->db_uidnext = strtoull(PQgetvalue(res, i, 4), NULL, 10);
		char delim[2] = { f->delimiter, '\0' };
		f->db_changed = strcmp(PQgetvalue(res, i, 5), f->name) != 0 ||
				str_differs(PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6), f->delimiter ? delim : NULL) ||
				str_differs(PQgetisnull(res, i, 7) ? NULL : PQgetvalue(res, i, 7), f->special_use) ||
				(strcmp(PQgetvalue(res, i, 8), "t") == 0) == f->noselect ||
				(strcmp(PQgetvalue(res, i, 9), "t") == 0) != f->selected;
		f->db_failed = strcmp(PQgetvalue(res, i, 10), "t") == 0;
		f->has_retries = strcmp(PQgetvalue(res, i, 11), "t") == 0;
	}
	PQclear(res);
	return 0;
}

/* Creates the rows of folders seen for the first time, updates what changed, notes that each was listed. */
static int folders_save_db(struct poll_ctx *ctx, const struct account *a, struct folder_list *fl, char **error_r)
{
	const char *err;
	char s_acct[24];
	struct pg_array listed = PG_ARRAY_INIT;
	snprintf(s_acct, sizeof(s_acct), "%d", a->id);
	for (size_t i = 0; i < fl->count; i++) {
		struct folder *f = &fl->items[i];
		char delim[2] = { f->delimiter, '\0' };
		const char *p[] = { s_acct, (const char *)f->raw, f->name, f->delimiter ? delim : NULL, f->special_use,
				    f->noselect ? "false" : "true", f->selected ? "true" : "false", NULL };
		int lens[8] = { 0, (int)f->raw_len };
		int fmts[8] = { 0, 1 };
		if (!f->have_db) {
			PGresult *res = PQexecParams(ctx->db, "INSERT INTO folders (account_id, server_name, name, delimiter, "
						     "special_use, selectable, selected, listed_at) VALUES ($1, $2, $3, $4, $5, $6, "
						     "$7, now()) RETURNING id", 7, NULL, p, lens, fmts, 0);
			if (PQresultStatus(res) != PGRES_TUPLES_OK) {
				*error_r = xasprintf("cannot record folder %s: %s", f->name,
						     db_error_set("database error", PQresultErrorMessage(res)));
				PQclear(res);
				pg_array_free(&listed);
				return -1;
			}
			f->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
			f->have_db = true;
			f->db_uidvalidity_null = f->db_uidnext_null = true;
			PQclear(res);
			continue;
		}
		if (f->db_changed) {
			char s_id[24];
			snprintf(s_id, sizeof(s_id), "%lld", (long long)f->id);
			p[1] = s_id;
			if (db_exec(ctx->db, "UPDATE folders SET name = $3, delimiter = $4, special_use = $5, selectable = $6, "
				    "selected = $7, listed_at = now() WHERE id = $2 AND account_id = $1", 7, p, &err) < 0) {
				*error_r = xasprintf("cannot update folder %s: %s", f->name, err);
				pg_array_free(&listed);
				return -1;
			}
			continue;
		}
		pg_array_add_int(&listed, f->id);
	}
	const char *q[] = { pg_array_text(&listed) };
	int r = listed.count == 0 ? 0 : db_exec(ctx->db, "UPDATE folders SET listed_at = now() WHERE id = ANY($1::bigint[])",
					       1, q, &err);
	pg_array_free(&listed);
	if (r < 0) {
		*error_r = xasprintf("cannot note the listed folders: %s", err);
		return -1;
	}
	return 0;
}

/* LIST (the extended form only where the server offers it), STATUS where LIST-STATUS is missing, rows. */
int folders_list(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *a, struct folder_list *fl,
		 char **error_r)
{
	const char *text;
	bool list_status = imap_conn_has_capability(conn, "LIST-STATUS");
	/* RETURN options are LIST-EXTENDED syntax (RFC 5258; LIST-STATUS implies it): a server that offers
	   SPECIAL-USE alone may misread them, and dropped \Noselect from its answer when sent them */
	bool extended = imap_conn_has_capability(conn, "LIST-EXTENDED") || list_status;
	bool special_use = imap_conn_has_capability(conn, "SPECIAL-USE");
	bool condstore = imap_conn_has_capability(conn, "CONDSTORE");
	struct list_state ls = { .fl = fl, .awaiting = -1, .last_listed = -1 };
	struct buf cmd = { 0 };
	buf_append_str(&cmd, "LIST \"\" \"*\"");
	if (extended && (special_use || list_status)) {
		buf_append_str(&cmd, " RETURN (");
		if (special_use)
			buf_append_str(&cmd, "SPECIAL-USE");
		if (list_status)
			buf_printf(&cmd, "%sSTATUS (UIDVALIDITY UIDNEXT MESSAGES%s)", special_use ? " " : "",
				   condstore ? " HIGHESTMODSEQ" : "");
		buf_append_str(&cmd, ")");
	}
	log_debug("account %s: listing folders %s", a->name,
		  list_status ? "with LIST-STATUS" : "with LIST, then STATUS per folder (no LIST-STATUS)");
	enum imap_conn_status st = imap_conn_run(conn, (const char *)cmd.data, folders_on_untagged, &ls, &text);
	buf_free(&cmd);
	if (st != IMAP_CONN_OK) {
		*error_r = xasprintf("LIST failed: %s", text);
		return -1;
	}
	for (size_t i = 0; i < fl->count; i++)
		fl->items[i].selected = !fl->items[i].noselect && account_wants_folder(a, &fl->items[i]);
	if (!list_status && folders_status(conn, &ls, error_r) < 0)
		return -1;
	if (folders_load_db(ctx, a, fl, error_r) < 0 || folders_save_db(ctx, a, fl, error_r) < 0)
		return -1;
	return 0;
}

/* Unchanged since the last full sync, no error to clear, nothing to retry: no need even to EXAMINE. */
bool folder_unchanged(const struct folder *f)
{
	return f->have_status && f->have_status_uidnext && !f->db_uidvalidity_null && !f->db_uidnext_null &&
	       !f->db_failed && !f->has_retries && f->uidvalidity == f->db_uidvalidity && f->uidnext == f->db_uidnext;
}

/* The folder's last error, or none after a success. */
void folder_record_result(struct poll_ctx *ctx, const struct folder *f, const char *error)
{
	const char *err;
	char s_id[24];
	snprintf(s_id, sizeof(s_id), "%lld", (long long)f->id);
	const char *p[] = { s_id, error };
	if (!f->have_db || db_conn_lost(ctx->db))
		return;
	/* the error may quote the server, in any charset */
	char *safe = error ? util_utf8_sanitize(error, strlen(error)) : NULL;
	p[1] = safe;
	if (db_exec(ctx->db, error ? "UPDATE folders SET last_error = $2, last_error_at = now() WHERE id = $1"
			     : "UPDATE folders SET last_error = NULL WHERE id = $1 AND last_error IS NOT NULL",
		    error ? 2 : 1, p, &err) < 0)
		log_warn("folder %s: cannot record the outcome of its sync: %s", f->name, err);
	free(safe);
}

/* Frees every folder and the list. */
void folders_free(struct folder_list *fl)
{
	for (size_t i = 0; i < fl->count; i++) {
		free(fl->items[i].raw);
		free(fl->items[i].name);
		free(fl->items[i].special_use);
	}
	FREE(fl->items);
	FREE(fl->problem);
	fl->count = fl->cap = 0;
}

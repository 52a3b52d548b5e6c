/* Syncs one folder: EXAMINE, new UIDs above the watermark in pipelined batches, then the UIDs to retry. */
#include "poller.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "pg-array.h"
#include "sha256.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SIZE_UNKNOWN UINT64_MAX   /* a FETCH answer that did not say RFC822.SIZE */
#define RETRIES_PER_POLL 1000     /* UIDs asked for again at one poll of a folder, at most */

/* What EXAMINE told us. */
struct examine_state {
	uint64_t uidvalidity, uidnext, highestmodseq, exists;
	bool have_uidvalidity, have_uidnext, have_exists;
};

/* Untagged responses of EXAMINE. */
static void examine_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct examine_state *e = ctxp;
	if (r->malformed != NULL) {
		log_debug("ignoring an answer to EXAMINE: %s", r->malformed);
	} else if (r->status == IMAP_STATUS_OK && r->code_args != NULL && r->code_count >= 2) {
		if (imap_arg_atom_equals(&r->code_args[0], "UIDVALIDITY"))
			e->have_uidvalidity = imap_arg_as_u64(&r->code_args[1], &e->uidvalidity) == 0 &&
					      e->uidvalidity > 0 && e->uidvalidity <= UINT32_MAX;
		else if (imap_arg_atom_equals(&r->code_args[0], "UIDNEXT"))
			e->have_uidnext = imap_arg_as_u64(&r->code_args[1], &e->uidnext) == 0 &&
					  e->uidnext <= (uint64_t)UINT32_MAX + 1;
		else if (imap_arg_atom_equals(&r->code_args[0], "HIGHESTMODSEQ"))
			imap_arg_as_u64(&r->code_args[1], &e->highestmodseq);
	} else if (r->status == IMAP_STATUS_NONE && r->count >= 2 && imap_arg_atom_equals(&r->args[1], "EXISTS")) {
		e->have_exists = imap_arg_as_u64(&r->args[0], &e->exists) == 0;
	}
}

/* UIDs to fetch, with their sizes (SIZE_UNKNOWN where the server did not say), and what the listing says
   about the mailbox, to notice a message the server left out of it. */
struct uid_list {
	uint64_t *uids, *sizes, *seqs;
	size_t count, cap;
	uint64_t above;          /* only UIDs greater than this count (the watermark) */
	uint64_t anchor_seq;     /* the sequence number of the watermark's own message, 0 if not seen */
	uint64_t exists;         /* messages in the mailbox: EXAMINE's EXISTS, then EXISTS and EXPUNGE since */
	size_t limit;            /* more UIDs than this is not a listing but a flood: the folder fails */
	bool overflow;
	char *malformed;         /* the first answer that could not be read, if any */
};

/* Collects "* n FETCH (UID u RFC822.SIZE s)"; a UID without its size is kept too, to be fetched. Follows
   EXISTS and EXPUNGE, which move sequence numbers. */
static void uids_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct uid_list *ul = ctxp;
	uint64_t uid, seq, size = SIZE_UNKNOWN;
	if (r->malformed != NULL) {
		if (ul->malformed == NULL)
			ul->malformed = xstrdup(r->malformed);
		return;
	}
	if (r->status != IMAP_STATUS_NONE || r->count < 2 || imap_arg_as_u64(&r->args[0], &seq) < 0)
		return;
	if (imap_arg_atom_equals(&r->args[1], "EXISTS")) {
		ul->exists = seq;
		return;
	}
	if (imap_arg_atom_equals(&r->args[1], "EXPUNGE")) {
		/* the messages after it move down by one */
		if (ul->exists > 0)
			ul->exists--;
		if (ul->anchor_seq == seq)
			ul->anchor_seq = 0;
		else if (ul->anchor_seq > seq)
			ul->anchor_seq--;
		/* the message itself no longer has a number: it cannot stand for a neighbour the server left out */
		for (size_t i = 0; i < ul->count; i++)
			if (ul->seqs[i] > seq)
				ul->seqs[i]--;
			else if (ul->seqs[i] == seq)
				ul->seqs[i] = 0;
		return;
	}
	if (r->count < 3 || !imap_arg_atom_equals(&r->args[1], "FETCH") || r->args[2].type != IMAP_ARG_LIST)
		return;
	const struct imap_arg *v = imap_list_find(&r->args[2], "UID");
	if (v == NULL || imap_arg_as_u64(v, &uid) < 0 || uid == 0 || uid > UINT32_MAX)
		return; /* a FETCH without UID is a flag change */
	if (uid == ul->above)
		ul->anchor_seq = seq;
	if (uid <= ul->above)
		return; /* "n:*" also returns the highest UID when it is below n */
	if ((v = imap_list_find(&r->args[2], "RFC822.SIZE")) != NULL && imap_arg_as_u64(v, &size) == 0 &&
	    size > (uint64_t)INT64_MAX)
		size = SIZE_UNKNOWN;
	if (ul->count >= ul->limit) {
		ul->overflow = true;
		return;
	}
	if (ul->count == ul->cap) {
		ul->cap = ul->cap ? ul->cap * 2 : 256;
		ul->uids = xrealloc(ul->uids, ul->cap * sizeof(uint64_t));
		ul->sizes = xrealloc(ul->sizes, ul->cap * sizeof(uint64_t));
		ul->seqs = xrealloc(ul->seqs, ul->cap * sizeof(uint64_t));
	}
	ul->uids[ul->count] = uid;
	ul->sizes[ul->count] = size;
	ul->seqs[ul->count] = seq;
	ul->count++;
}

/* Orders (uid, size) pairs by UID. */
static int uid_pair_cmp(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Sorts by UID and drops repeats (servers may answer out of order, or name a UID twice), keeping a
   known size over an unknown one. */
static void uids_sort_unique(struct uid_list *ul)
{
	uint64_t *pairs = xmalloc((ul->count ? ul->count : 1) * 2 * sizeof(uint64_t));
	for (size_t i = 0; i < ul->count; i++) {
		pairs[2 * i] = ul->uids[i];
		pairs[2 * i + 1] = ul->sizes[i];
	}
	qsort(pairs, ul->count, 2 * sizeof(uint64_t), uid_pair_cmp);
	size_t n = 0;
	for (size_t i = 0; i < ul->count; i++) {
		if (n > 0 && ul->uids[n - 1] == pairs[2 * i]) {
			if (ul->sizes[n - 1] == SIZE_UNKNOWN)
				ul->sizes[n - 1] = pairs[2 * i + 1];
			continue;
		}
		ul->uids[n] = pairs[2 * i];
		ul->sizes[n] = pairs[2 * i + 1];
		n++;
	}
	ul->count = n;
	free(pairs);
}

/* Frees a UID list. */
static void uids_free(struct uid_list *ul)
{
	FREE(ul->uids);
	FREE(ul->sizes);
	FREE(ul->seqs);
	FREE(ul->malformed);
	ul->count = ul->cap = 0;
}

/* Appends a set of UIDs, runs compressed into ranges, to a command. */
static void uid_set_append(struct buf *cmd, const uint64_t *uids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		buf_printf(cmd, "%s%llu", i ? "," : "", (unsigned long long)uids[i]);
		if (j > i)
			buf_printf(cmd, ":%llu", (unsigned long long)uids[j]);
		i = j;
	}
}

/* One planned batch: a range of the UID list, and what came back for it. */
struct batch {
	size_t first, end;        /* [first, end) of ul */
	const struct uid_list *ul;
	uint64_t max_message;
	struct fetched_msg *msgs; /* bodies with a location first; second bodies (no_location) are appended */
	size_t nmsgs, cap;
	struct skipped_msg *skipped;
	size_t nskipped;
	char *malformed;          /* the first answer that could not be read */
	bool *seen;               /* per UID of the range: some FETCH answer named it */
	uint64_t bytes, budget;   /* body bytes kept, and at most (a server may send more than it announced) */
	size_t extras;            /* second bodies kept */
	bool over_budget;
};

/* Second bodies for repeated UIDs kept per batch, at most. */
#define BATCH_MAX_EXTRAS 64

/* Converts IMAP's "17-Jul-1996 02:44:25 -0700" into ISO 8601 for PostgreSQL; NULL if it is not one. */
static char *internaldate_to_iso(const char *s)
{
	struct tm tm = { 0 };
	while (*s == ' ')
		s++;
	const char *end = strptime(s, "%d-%b-%Y %H:%M:%S %z", &tm);
	if (end == NULL || tm.tm_year < 0 || tm.tm_year > 8000)
		return NULL;
	/* strptime takes 31-Feb; PostgreSQL would not: a date that does not survive normalising is no date */
	struct tm check = tm;
	long off = tm.tm_gmtoff;
	check.tm_isdst = 0;
	if (timegm(&check) == (time_t)-1 || check.tm_mday != tm.tm_mday || check.tm_mon != tm.tm_mon ||
	    check.tm_hour != tm.tm_hour || check.tm_min != tm.tm_min || check.tm_sec != tm.tm_sec ||
	    labs(off) > 24 * 3600)
		return NULL;
	return xasprintf("%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
			 tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+', labs(off) / 3600, (labs(off) % 3600) / 60);
}

/* Renders a FLAGS list as a PostgreSQL text[] literal; bytes that are not UTF-8 (flags are meant to be
   ASCII atoms, some servers send 8-bit ones) are written \xNN so the row can always be stored. */
static char *flags_to_pg_array(const struct imap_arg *flags)
{
	struct pg_array arr = PG_ARRAY_INIT;
	for (size_t i = 0; flags && i < flags->count; i++) {
		const struct imap_arg *a = &flags->list[i];
		if (imap_arg_as_string(a) == NULL)
			continue;
		char *text = util_utf8_escape_invalid(a->data, a->len);
		pg_array_add_str(&arr, text);
		free(text);
	}
	char *out = xstrdup(pg_array_text(&arr));
	pg_array_free(&arr);
	return out;
}

/* Adds a skipped UID to the batch. */
static struct skipped_msg *batch_skip(struct batch *bt, uint64_t uid, uint64_t size, const char *kind, bool retry,
				      char *reason)
{
	bt->skipped = xrealloc(bt->skipped, (bt->nskipped + 1) * sizeof(*bt->skipped));
	struct skipped_msg *s = &bt->skipped[bt->nskipped++];
	*s = (struct skipped_msg){ .uid = uid, .size = size, .kind = kind, .reason = reason, .retry = retry };
	return s;
}

/* The index of uid in the batch's range, or -1. */
static long batch_index_of(const struct batch *bt, uint64_t uid)
{
	size_t lo = bt->first, hi = bt->end;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (bt->ul->uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < bt->end && bt->ul->uids[lo] == uid ? (long)(lo - bt->first) : -1;
}

/* Adds a fetched body to the batch (copied: the parser's memory is reused). */
static void batch_add_body(struct batch *bt, uint64_t uid, const struct imap_arg *l, const struct imap_arg *body,
			   bool no_location)
{
	if (bt->nmsgs == bt->cap) {
		bt->cap = bt->cap ? bt->cap * 2 : 64;
		bt->msgs = xrealloc(bt->msgs, bt->cap * sizeof(*bt->msgs));
	}
	struct fetched_msg *m = &bt->msgs[bt->nmsgs++];
	memset(m, 0, sizeof(*m));
	m->uid = uid;
	m->no_location = no_location;
	m->size = body->len;
	m->raw = xmalloc(body->len + 1);
	memcpy(m->raw, body->data, body->len);
	const struct imap_arg *v = imap_list_find(l, "INTERNALDATE");
	const char *idate = v ? imap_arg_as_string(v) : NULL;
	m->internaldate = idate ? internaldate_to_iso(idate) : NULL;
	v = imap_list_find(l, "FLAGS");
	m->flags = flags_to_pg_array(v && v->type == IMAP_ARG_LIST ? v : NULL);
}

/* Collects the bodies of a batch from FETCH responses. */
static void batch_on_untagged(const struct imap_response *r, void *ctxp)
{
	struct batch *bt = ctxp;
	uint64_t uid;
	if (r->malformed != NULL) {
		if (bt->malformed == NULL)
			bt->malformed = xstrdup(r->malformed);
		return;
	}
	if (r->status != IMAP_STATUS_NONE || r->count < 3 || !imap_arg_atom_equals(&r->args[1], "FETCH") ||
	    r->args[2].type != IMAP_ARG_LIST)
		return;
	const struct imap_arg *l = &r->args[2];
	const struct imap_arg *v = imap_list_find(l, "UID");
	if (v == NULL || imap_arg_as_u64(v, &uid) < 0)
		return; /* an unsolicited flag change */
	long k = batch_index_of(bt, uid);
	if (k < 0)
		return;
	bt->seen[k] = true;
	const struct imap_arg *body = imap_list_find(l, "BODY[]");
	if (body == NULL || body->type == IMAP_ARG_NIL || body->type == IMAP_ARG_LIST)
		return; /* no body in this answer: the UID is recorded as missing unless another answer has it */
	if (body->type == IMAP_ARG_LITERAL && body->oversize) {
		for (size_t i = 0; i < bt->nskipped; i++)
			if (bt->skipped[i].uid == uid)
				return;
		batch_skip(bt, uid, body->len, "oversize", true,
			   xasprintf("message of %zu bytes exceeds max_message_bytes (%llu) although the server announced "
				     "%s: recorded, and archived once the limit is raised", body->len,
				     (unsigned long long)bt->max_message,
				     bt->ul->sizes[bt->first + (size_t)k] == SIZE_UNKNOWN ? "no size" : "a smaller size"));
		return;
	}
	/* the same UID again: the same bytes are a harmless repeat; different bytes are kept too */
	bool first = true;
	for (size_t i = 0; i < bt->nmsgs; i++) {
		struct fetched_msg *m = &bt->msgs[i];
		if (m->uid != uid)
			continue;
		first = false;
		if (m->size == body->len && memcmp(m->raw, body->data, body->len) == 0)
			return;
	}
	/* memory stays bounded whatever the server sends: what is over the budget is asked for again */
	if (bt->bytes + body->len > bt->budget || (!first && bt->extras >= BATCH_MAX_EXTRAS)) {
		if (!bt->over_budget)
			log_warn("the server sent more bytes or bodies in one FETCH answer than it announced: the rest are "
				 "asked for again");
		bt->over_budget = true;
		return;
	}
	bt->bytes += body->len;
	bt->extras += !first;
	batch_add_body(bt, uid, l, body, !first);
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
	FREE(bt->malformed);
	FREE(bt->seen);
	bt->nmsgs = bt->cap = bt->nskipped = 0;
}

/* Sends UID FETCH for the batch's UIDs that may be fetched; returns the tag, 0 when there are none. */
static unsigned batch_send(struct imap_conn *conn, struct batch *bt)
{
	uint64_t *want = xmalloc((bt->end - bt->first + 1) * sizeof(uint64_t));
	size_t n = 0;
	for (size_t i = bt->first; i < bt->end; i++)
		if (bt->ul->sizes[i] == SIZE_UNKNOWN || bt->ul->sizes[i] <= bt->max_message)
			want[n++] = bt->ul->uids[i];
	unsigned tag = 0;
	if (n > 0) {
		struct buf cmd = { 0 };
		buf_append_str(&cmd, "UID FETCH ");
		uid_set_append(&cmd, want, n);
		buf_append_str(&cmd, " (UID RFC822.SIZE INTERNALDATE FLAGS BODY.PEEK[])");
		tag = imap_conn_send(conn, (const char *)cmd.data);
		buf_free(&cmd);
	}
	free(want);
	return tag;
}

/* After the batch's answer: every UID of the range has a body, or is recorded with the reason. Second
   bodies get their SHA-256 and a record naming both. With retrying, UIDs already recorded are not
   recorded again: they stay pending. */
static void batch_account_for_all(const struct account *a, const struct folder *f, struct batch *bt, bool retrying)
{
	for (size_t i = bt->first; i < bt->end; i++) {
		uint64_t uid = bt->ul->uids[i], size = bt->ul->sizes[i];
		bool got = false;
		for (size_t k = 0; k < bt->nmsgs && !got; k++)
			got = bt->msgs[k].uid == uid && !bt->msgs[k].no_location;
		for (size_t k = 0; k < bt->nskipped && !got; k++)
			got = bt->skipped[k].uid == uid;
		if (got)
			continue;
		if (retrying) {
			log_info("account %s folder %s: UID %llu still cannot be archived; asked for again at the next poll",
				 a->name, f->name, (unsigned long long)uid);
			continue;
		}
		if (size != SIZE_UNKNOWN && size > bt->max_message) {
			log_warn("account %s folder %s: UID %llu is %llu bytes, over max_message_bytes: recorded in "
				 "ingest_errors, not archived", a->name, f->name, (unsigned long long)uid,
				 (unsigned long long)size);
			batch_skip(bt, uid, size, "oversize", true,
				   xasprintf("message of %llu bytes exceeds max_message_bytes (%llu): recorded, and archived "
					     "once the limit is raised", (unsigned long long)size,
					     (unsigned long long)bt->max_message));
		} else {
			char *why = bt->over_budget ? xstrdup("the server's FETCH answer brought more bytes than announced, "
							      "this body beyond the batch's budget")
				  : bt->seen[i - bt->first] ? xstrdup("the server's FETCH answer held no body")
				  : bt->malformed ? xasprintf("the server sent no readable FETCH answer for it (one that "
							      "could not be read: %s)", bt->malformed)
				  : xstrdup("the server sent no FETCH answer for it");
			log_warn("account %s folder %s: UID %llu: %s: recorded, asked for again", a->name, f->name,
				 (unsigned long long)uid, why);
			batch_skip(bt, uid, size == SIZE_UNKNOWN ? 0 : size, "no-body", true,
				   xasprintf("%s; asked for again until it is archived or gone", why));
			free(why);
		}
	}
	for (size_t k = 0; k < bt->nmsgs; k++) {
		struct fetched_msg *m = &bt->msgs[k];
		if (!m->no_location)
			continue;
		unsigned char first_sha[SHA256_LEN], sha[SHA256_LEN];
		char first_hex[2 * SHA256_LEN + 1] = "(none)", hex[2 * SHA256_LEN + 1];
		sha256_digest(m->raw, m->size, sha);
		util_hex(sha, SHA256_LEN, hex);
		for (size_t j = 0; j < bt->nmsgs; j++) {
			if (bt->msgs[j].uid == m->uid && !bt->msgs[j].no_location) {
				sha256_digest(bt->msgs[j].raw, bt->msgs[j].size, first_sha);
				util_hex(first_sha, SHA256_LEN, first_hex);
			}
		}
		log_warn("account %s folder %s: the server sent UID %llu again with a different body: both are kept",
			 a->name, f->name, (unsigned long long)m->uid);
		struct skipped_msg *s = batch_skip(bt, m->uid, m->size, "second-body", false,
			xasprintf("the server sent UID %llu twice in one FETCH with different bodies: the first (sha256 %s) is "
				  "archived at this UID, the second (sha256 %s) is kept as a message of its own",
				  (unsigned long long)m->uid, first_hex, hex));
		memcpy(s->sha256, sha, SHA256_LEN);
		s->have_sha256 = true;
	}
}

/* Fetches and stores the UIDs of ul in batches bounded by count and bytes, the next batch requested while
   the current one is stored. New UIDs move the watermark; retried ones do not. 0, or -1 with *error_r. */
static int folder_fetch(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *a, struct folder *f,
			uint64_t uidvalidity, const struct uid_list *ul, bool retrying, size_t *msgs_r, uint64_t *bytes_r,
			char **error_r)
{
	const struct config *cfg = ctx->cfg;
	const char *text, *err;
	size_t nbatches = 0, cap = 0;
	struct batch *batches = NULL;
	for (size_t i = 0; i < ul->count;) {
		size_t j = i, n = 0;
		uint64_t bytes = 0;
		while (j < ul->count && n < cfg->batch_messages) {
			uint64_t s = ul->sizes[j];
			bool fetched = s == SIZE_UNKNOWN || s <= cfg->max_message_bytes;
			/* a message of unknown size may be as big as the limit allows: it counts so */
			uint64_t cost = s == SIZE_UNKNOWN ? cfg->max_message_bytes : s;
			if (n > 0 && fetched && bytes + cost > cfg->batch_bytes)
				break;
			if (fetched)
				bytes += cost;
			n++;
			j++;
		}
		if (nbatches == cap) {
			cap = cap ? cap * 2 : 16;
			batches = xrealloc(batches, cap * sizeof(*batches));
		}
		batches[nbatches++] = (struct batch){ .first = i, .end = j, .ul = ul, .max_message = cfg->max_message_bytes,
						      .budget = cfg->batch_bytes + cfg->max_message_bytes };
		i = j;
	}

	int rc = 0;
	unsigned tag = nbatches > 0 ? batch_send(conn, &batches[0]) : 0;
	for (size_t b = 0; b < nbatches; b++) {
		struct batch *bt = &batches[b];
		bt->seen = xcalloc(bt->end - bt->first, sizeof(bool));
		if (tag == 0 && imap_conn_broken(conn)) {
			/* the request never left: nothing of the batch is to be recorded as missing */
			*error_r = xasprintf("fetching messages failed: the connection broke");
			rc = -1;
		} else if (tag != 0) {
			enum imap_conn_status st = imap_conn_wait(conn, tag, batch_on_untagged, bt, &text);
			if (st == IMAP_CONN_ERROR) {
				*error_r = xasprintf("fetching messages failed: %s", text);
				rc = -1;
			} else if (st != IMAP_CONN_OK) {
				/* a refused FETCH: each UID of the batch is recorded below and asked for again */
				log_warn("account %s folder %s: UID FETCH refused: %s", a->name, f->name, text);
				if (bt->malformed == NULL)
					bt->malformed = xasprintf("UID FETCH refused: %s", text);
			}
		}
		/* pipelining: the server prepares the next batch while we store this one */
		tag = (rc == 0 && b + 1 < nbatches && !*ctx->stop) ? batch_send(conn, &batches[b + 1]) : 0;
		if (rc == 0) {
			batch_account_for_all(a, f, bt, retrying);
			struct store_batch sb = {
				.folder_id = f->id, .uidvalidity = uidvalidity, .msgs = bt->msgs, .nmsgs = bt->nmsgs,
				.skipped = bt->skipped, .nskipped = bt->nskipped,
				.new_last_uid = retrying ? 0 : ul->uids[bt->end - 1],
			};
			if (store_batch(ctx, a, &sb, &err) < 0) {
				*error_r = xasprintf("storing messages failed: %s", err);
				rc = -1;
			} else {
				for (size_t k = 0; k < bt->nmsgs; k++)
					*bytes_r += bt->msgs[k].size;
				*msgs_r += bt->nmsgs;
				log_debug("account %s folder %s: stored a batch of %zu messages%s up to UID %llu", a->name,
					  f->name, bt->nmsgs, retrying ? " asked for again" : "",
					  (unsigned long long)ul->uids[bt->end - 1]);
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
	return rc;
}

/* Asks UID FETCH for uids' sizes (a set, or "n:*") into ul; -1 with *error_r if the answer cannot be
   trusted to be complete (a failure, or an answer that could not be read). */
static int folder_list_uids(struct imap_conn *conn, const char *set, struct uid_list *ul, char **error_r)
{
	const char *text;
	struct buf cmd = { 0 };
	buf_printf(&cmd, "UID FETCH %s (UID RFC822.SIZE)", set);
	enum imap_conn_status st = imap_conn_run(conn, (const char *)cmd.data, uids_on_untagged, ul, &text);
	buf_free(&cmd);
	if (st != IMAP_CONN_OK) {
		*error_r = xasprintf("UID FETCH of UIDs and sizes failed: %s", text);
		return -1;
	}
	if (ul->overflow) {
		*error_r = xasprintf("the server listed more than %zu UIDs, more than the folder can hold: the folder is "
				     "not advanced", ul->limit);
		return -1;
	}
	if (ul->malformed != NULL) {
		/* a UID we could not read might be skipped for ever: the watermark stays until it can be read */
		*error_r = xasprintf("an answer listing UIDs could not be read, so the folder is not advanced "
				     "(%s)", ul->malformed);
		return -1;
	}
	return 0;
}

/* The sequence numbers after the watermark's message that the listing did not name: the messages above
   the watermark are the mailbox's last ones, so every number from the watermark's (or 1) to EXISTS must
   have come. Returns how many are missing and fills *missing_r (malloc'd). */
static size_t folder_unlisted_seqs(const struct uid_list *ul, uint64_t **missing_r)
{
	*missing_r = NULL;
	if (ul->exists == 0 || ul->exists > 50u * 1000 * 1000)
		return 0;
	uint64_t lo = ul->above == 0 ? 1 : ul->anchor_seq + 1;
	if (ul->above > 0 && ul->anchor_seq == 0) {
		/* the watermark's message is gone: the lowest sequence number listed is the best start */
		lo = UINT64_MAX;
		for (size_t i = 0; i < ul->count; i++)
			lo = ul->seqs[i] != 0 && ul->seqs[i] < lo ? ul->seqs[i] : lo;
		if (lo == UINT64_MAX)
			return 0;
	}
	if (lo > ul->exists)
		return 0;
	bool *seen = xcalloc((size_t)(ul->exists - lo + 1), sizeof(bool));
	for (size_t i = 0; i < ul->count; i++)
		if (ul->seqs[i] != 0 && ul->seqs[i] >= lo && ul->seqs[i] <= ul->exists)
			seen[ul->seqs[i] - lo] = true;
	size_t n = 0;
	uint64_t *missing = NULL;
	for (uint64_t s = lo; s <= ul->exists; s++) {
		if (seen[s - lo])
			continue;
		missing = xrealloc(missing, (n + 1) * sizeof(uint64_t));
		missing[n++] = s;
	}
	free(seen);
	*missing_r = missing;
	return n;
}

/* The new UIDs above the watermark; a message the server left out of its answer is asked for by its
   sequence number, and one it still does not name is reported (it cannot be recorded by UID). */
static int folder_list_new_uids(struct imap_conn *conn, const struct account *a, const struct folder *f,
				struct uid_list *ul, char **error_r)
{
	char range[48];
	snprintf(range, sizeof(range), "%llu:*", (unsigned long long)(ul->above > 0 ? ul->above : 1));
	if (folder_list_uids(conn, range, ul, error_r) < 0)
		return -1;
	uint64_t *missing;
	size_t n = folder_unlisted_seqs(ul, &missing);
	if (n > 0) {
		log_warn("account %s folder %s: the server's answer left out %zu message%s: asking for %s by sequence number",
			 a->name, f->name, n, n == 1 ? "" : "s", n == 1 ? "it" : "them");
		struct buf cmd = { 0 };
		const char *text;
		buf_append_str(&cmd, "FETCH ");
		uid_set_append(&cmd, missing, n);
		buf_append_str(&cmd, " (UID RFC822.SIZE)");
		enum imap_conn_status st = imap_conn_run(conn, (const char *)cmd.data, uids_on_untagged, ul, &text);
		buf_free(&cmd);
		free(missing);
		if (st == IMAP_CONN_ERROR) {
			*error_r = xasprintf("FETCH by sequence number failed: %s", text);
			return -1;
		}
		n = folder_unlisted_seqs(ul, &missing);
		free(missing);
		if (n > 0) {
			*error_r = xasprintf("the server does not list %zu of its messages, even when asked by sequence "
					     "number: the folder is not advanced until it does", n);
			return -1;
		}
	}
	uids_sort_unique(ul);
	return 0;
}

/* The UIDs recorded as retryable: asked for again; the ones the server no longer has are given up on. */
static int folder_retry(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *a, struct folder *f,
			uint64_t uidvalidity, size_t *msgs_r, uint64_t *bytes_r, char **error_r)
{
	const char *err;
	char s_id[24], s_limit[24], s_max[24];
	snprintf(s_id, sizeof(s_id), "%lld", (long long)f->id);
	snprintf(s_limit, sizeof(s_limit), "%d", RETRIES_PER_POLL);
	snprintf(s_max, sizeof(s_max), "%llu", (unsigned long long)ctx->cfg->max_message_bytes);
	const char *p[] = { s_id, s_limit, s_max };
	PGresult *res = db_query(ctx->db, "SELECT DISTINCT e.uid " FOLDER_PENDING_RETRIES_FROM("$1", "$3")
				 " ORDER BY 1 LIMIT $2", 3, p, &err);
	if (res == NULL) {
		*error_r = xasprintf("cannot read the UIDs to retry: %s", err);
		ctx->account_fatal = db_conn_lost(ctx->db);
		return -1;
	}
	size_t n = (size_t)PQntuples(res);
	uint64_t *want = xcalloc(n ? n : 1, sizeof(uint64_t));
	for (size_t i = 0; i < n; i++)
		want[i] = strtoull(PQgetvalue(res, (int)i, 0), NULL, 10);
	PQclear(res);
	if (n == 0) {
		free(want);
		return 0;
	}
	log_info("account %s folder %s: asking again for %zu UID%s recorded as not yet archived", a->name, f->name, n,
		 n == 1 ? "" : "s");
	struct buf set = { 0 };
	uid_set_append(&set, want, n);
	struct uid_list ul = { .above = 0, .limit = 2 * n + 100 };
	int rc = folder_list_uids(conn, (const char *)set.data, &ul, error_r);
	buf_free(&set);
	if (rc == 0)
		uids_sort_unique(&ul);
	if (rc == 0) {
		/* the ones that are gone are given up on, with a record that says so */
		struct batch gone = { 0 };
		for (size_t i = 0; i < n; i++) {
			bool present = false;
			for (size_t k = 0; k < ul.count && !present; k++)
				present = ul.uids[k] == want[i];
			if (!present)
				batch_skip(&gone, want[i], 0, "gone", false,
					   xstrdup("no longer on the server: expunged before it could be archived"));
		}
		if (gone.nskipped > 0) {
			log_warn("account %s folder %s: %zu UID%s recorded earlier are gone from the server", a->name, f->name,
				 gone.nskipped, gone.nskipped == 1 ? "" : "s");
			struct store_batch sb = { .folder_id = f->id, .uidvalidity = uidvalidity, .skipped = gone.skipped,
						  .nskipped = gone.nskipped };
			if (store_batch(ctx, a, &sb, &err) < 0) {
				*error_r = xasprintf("storing messages failed: %s", err);
				rc = -1;
			}
		}
		batch_clear(&gone);
	}
	if (rc == 0 && ul.count > 0)
		rc = folder_fetch(ctx, conn, a, f, uidvalidity, &ul, true, msgs_r, bytes_r, error_r);
	uids_free(&ul);
	free(want);
	return rc;
}

/* Archives a folder's new messages, then retries what is pending. */
int folder_sync(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *a, struct folder *f,
		char **error_r)
{
	const char *text, *err;
	struct buf cmd = { 0 };
	struct examine_state ex = { 0 };
	char s_id[24], s_a[24], s_b[24];
	snprintf(s_id, sizeof(s_id), "%lld", (long long)f->id);

	buf_append_str(&cmd, "EXAMINE ");
	if (imap_conn_append_mailbox(conn, &cmd, f->raw, f->raw_len) < 0) {
		buf_free(&cmd);
		*error_r = xstrdup("its name cannot be sent to the server (a CR, LF or NUL in it)");
		return -1;
	}
	enum imap_conn_status st = imap_conn_run(conn, (const char *)cmd.data, examine_on_untagged, &ex, &text);
	buf_free(&cmd);
	if (st != IMAP_CONN_OK) {
		*error_r = xasprintf("EXAMINE %s: %s", st == IMAP_CONN_ERROR ? "failed" : "refused by the server", text);
		return -1;
	}
	if (!ex.have_uidvalidity) {
		*error_r = xstrdup("EXAMINE gave no usable UIDVALIDITY");
		return -1;
	}
	/* first sight or a new generation: from UID 1 again; blobs stay single by content */
	snprintf(s_a, sizeof(s_a), "%llu", (unsigned long long)ex.uidvalidity);
	const char *gp[] = { s_id, s_a };
	PGresult *res = db_query(ctx->db, "SELECT mailvault_folder_generation($1, $2)", 2, gp, &err);
	if (res == NULL) {
		*error_r = xasprintf("database error: %s", err);
		ctx->account_fatal = db_conn_lost(ctx->db);
		return -1;
	}
	bool new_generation = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	uint64_t last_uid = f->db_last_uid;
	if (new_generation) {
		if (!f->db_uidvalidity_null)
			log_warn("account %s folder %s: UIDVALIDITY changed from %llu to %llu: archiving the new generation "
				 "from UID 1", a->name, f->name, (unsigned long long)f->db_uidvalidity,
				 (unsigned long long)ex.uidvalidity);
		last_uid = 0;
	}
	/* the UIDNEXT recorded after a full sync lets the next poll skip the folder; Courier's EXAMINE has
	   none, then STATUS's (asked before EXAMINE, so never too high) serves, if of the same generation */
	bool have_uidnext = ex.have_uidnext;
	uint64_t uidnext = ex.uidnext;
	if (!have_uidnext && f->have_status_uidnext && f->have_status && f->uidvalidity == ex.uidvalidity) {
		have_uidnext = true;
		uidnext = f->uidnext;
	}

	size_t total_msgs = 0;
	uint64_t total_bytes = 0;
	int rc = 0;
	/* a folder that said how many messages it holds is listed when it holds any; one that did not, always */
	if (ex.exists > 0 || !ex.have_exists) {
		struct uid_list ul = { .above = last_uid, .exists = ex.exists,
				       .limit = (size_t)(ex.exists < 50u * 1000 * 1000 ? ex.exists : 50u * 1000 * 1000) + 100000 };
		rc = folder_list_new_uids(conn, a, f, &ul, error_r);
		if (rc == 0)
			rc = folder_fetch(ctx, conn, a, f, ex.uidvalidity, &ul, false, &total_msgs, &total_bytes, error_r);
		uids_free(&ul);
	}
	if (rc == 0 && !*ctx->stop) {
		/* fully synced up to UIDNEXT: an unchanged STATUS skips the folder next time (unless UIDs wait
		   to be retried) */
		snprintf(s_a, sizeof(s_a), "%llu", (unsigned long long)uidnext);
		snprintf(s_b, sizeof(s_b), "%llu", (unsigned long long)ex.highestmodseq);
		const char *p[] = { s_id, have_uidnext ? s_a : NULL, ex.highestmodseq ? s_b : NULL };
		if (db_exec(ctx->db, "UPDATE folders SET uidnext = $2, highestmodseq = $3, last_sync = now() WHERE id = $1",
			    3, p, &err) < 0) {
			*error_r = xasprintf("database error: %s", err);
			ctx->account_fatal = db_conn_lost(ctx->db);
			rc = -1;
		}
		if (rc == 0)
			rc = folder_retry(ctx, conn, a, f, ex.uidvalidity, &total_msgs, &total_bytes, error_r);
	}
	if (total_msgs > 0)
		log_info("account %s folder %s: archived %zu messages (%.1f MB)", a->name, f->name, total_msgs,
			 (double)total_bytes / 1e6);
	return rc;
}

/* Turns a parsed query tree (query.h) into a Xapian query through the C shim (xapian_shim.h). */
#include "query.h"
#include "xapian_shim.h"
#include "prefixes.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Where a text node's words are looked up: up to six prefixes (prefixes.h), some with stemmed copies
   (text), some without (names and address words). */
struct text_fields {
	const char *stemmed[3], *plain[4];
	size_t nstemmed, nplain;
};

/* Free words and phrases search the body and attached text, the subject, and the names and address words
   of From, To, Cc and Bcc, as Gmail and notmuch do; body: searches the body and attached text only; a
   name field its own prefix, unstemmed; subject: and filename: their own prefix. */
static void text_fields_of(const struct qnode *n, struct text_fields *tf)
{
	const char *p = n->prefix;
	memset(tf, 0, sizeof(*tf));
	if (strcmp(p, PFX_BODY) == 0 && !n->body_only) {
		tf->stemmed[tf->nstemmed++] = PFX_BODY;
		tf->stemmed[tf->nstemmed++] = PFX_SUBJECT;
		tf->plain[tf->nplain++] = PFX_FROM;
		tf->plain[tf->nplain++] = PFX_TO;
		tf->plain[tf->nplain++] = PFX_CC;
		tf->plain[tf->nplain++] = PFX_BCC;
	} else if (strcmp(p, PFX_FROM) == 0 || strcmp(p, PFX_TO) == 0 || strcmp(p, PFX_CC) == 0 ||
		   strcmp(p, PFX_BCC) == 0) {
		tf->plain[tf->nplain++] = p;
	} else {
		tf->stemmed[tf->nstemmed++] = p;
	}
}

/* Words under the fields: each word (a QueryParser word: stemmed where the field has stemmed copies,
   trailing * a wildcard) may match in any of them. */
static struct xs_query *text_query(struct xs_db *db, const struct qnode *n, char **error_r)
{
	struct text_fields tf;
	struct xs_query *a = NULL, *b = NULL;
	text_fields_of(n, &tf);
	if (tf.nstemmed > 0 && (a = xs_query_text_fields(db, tf.stemmed, tf.nstemmed, true, n->text, error_r)) == NULL)
		return NULL;
	if (tf.nplain > 0 && (b = xs_query_text_fields(db, tf.plain, tf.nplain, false, n->text, error_r)) == NULL) {
		xs_query_free(&a);
		return NULL;
	}
	return a == NULL ? b : b == NULL ? a : xs_query_or(a, b);
}

/* A phrase within one field (never across two), in any of the node's fields. */
static struct xs_query *phrase_query(struct xs_db *db, const struct qnode *n, char **error_r)
{
	struct text_fields tf;
	const char *all[7];
	size_t k = 0;
	text_fields_of(n, &tf);
	for (size_t i = 0; i < tf.nstemmed; i++)
		all[k++] = tf.stemmed[i];
	for (size_t i = 0; i < tf.nplain; i++)
		all[k++] = tf.plain[i];
	return xs_query_phrase_fields(db, all, k, n->text, error_r);
}

/* Builds the query for n; NULL with *error_r (malloc'd) on failure. Partial results are freed. */
static struct xs_query *build(struct xs_db *db, const struct qnode *n, char **error_r)
{
	struct xs_query *a, *b, *q = NULL;
	if (n == NULL) {
		*error_r = xstrdup("empty query tree");
		return NULL;
	}
	switch (n->kind) {
	case QN_TEXT:
		q = text_query(db, n, error_r);
		break;
	case QN_PHRASE:
		q = phrase_query(db, n, error_r);
		break;
	case QN_TERM:
		q = xs_query_term(n->prefix, n->text);
		break;
	case QN_WILDCARD:
		q = xs_query_term_wildcard(db, n->prefix, n->text);
		break;
	case QN_RANGE:
		q = xs_query_range(n->slot, n->lo, n->hi);
		break;
	case QN_ALL:
		q = xs_query_all();
		break;
	case QN_NOT:
		/* a NOT on its own means everything but */
		if ((b = build(db, n->left, error_r)) == NULL)
			return NULL;
		if ((a = xs_query_all()) == NULL) {
			xs_query_free(&b);
			break;
		}
		q = xs_query_and_not(a, b);
		break;
	case QN_AND:
	case QN_OR:
		if ((a = build(db, n->left, error_r)) == NULL)
			return NULL;
		/* AND(x, NOT(y)) is x AND_NOT y: no detour through "all documents" */
		if (n->kind == QN_AND && n->right && n->right->kind == QN_NOT)
			b = build(db, n->right->left, error_r);
		else
			b = build(db, n->right, error_r);
		if (b == NULL) {
			xs_query_free(&a);
			return NULL;
		}
		if (n->kind == QN_OR)
			q = xs_query_or(a, b);
		else if (n->right->kind == QN_NOT)
			q = xs_query_and_not(a, b);
		else
			q = xs_query_and(a, b);
		break;
	default:
		*error_r = xasprintf("unknown query node kind %d", (int)n->kind);
		return NULL;
	}
	if (q == NULL && *error_r == NULL)
		*error_r = xasprintf("cannot build the query at byte %zu", n->pos);
	return q;
}

struct xs_query *query_to_xapian(struct xs_db *db, const struct qnode *n, char **error_r)
{
	*error_r = NULL;
	return build(db, n, error_r);
}

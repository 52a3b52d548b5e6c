/* Turns a parsed query tree (query.h) into a Xapian query through the C shim (xapian_shim.h). */
#include "query.h"
#include "xapian_shim.h"
#include "prefixes.h"
#include "util.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The prefixes a free-text prefix's words are indexed under (prefixes.h), and whether with stemmed copies:
   names and address words are indexed unstemmed, and free words (body:) also search the subject, which is
   indexed once under its own prefix. Returns how many prefixes were put in prefixes[]. */
static size_t text_fields(const char *prefix, const char *prefixes[2], bool *stem_r)
{
	*stem_r = !(strcmp(prefix, PFX_FROM) == 0 || strcmp(prefix, PFX_TO) == 0 || strcmp(prefix, PFX_CC) == 0 ||
		    strcmp(prefix, PFX_BCC) == 0);
	prefixes[0] = prefix;
	if (strcmp(prefix, PFX_BODY) == 0) {
		prefixes[1] = PFX_SUBJECT;
		return 2;
	}
	return 1;
}

/* Builds the query for n; NULL with *error_r (malloc'd) on failure. Partial results are freed. */
static struct xs_query *build(struct xs_db *db, const struct qnode *n, char **error_r)
{
	struct xs_query *a, *b, *q = NULL;
	const char *fields[2];
	size_t nf;
	bool stem;
	if (n == NULL) {
		*error_r = xstrdup("empty query tree");
		return NULL;
	}
	switch (n->kind) {
	case QN_TEXT:
		nf = text_fields(n->prefix, fields, &stem);
		q = xs_query_text_fields(db, fields, nf, stem, n->text, error_r);
		break;
	case QN_PHRASE:
		nf = text_fields(n->prefix, fields, &stem);
		q = xs_query_phrase_fields(db, fields, nf, n->text, error_r);
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

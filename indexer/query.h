/* The officers' query language (Gmail / Google Vault style), parsed into a tree that
   query_to_xapian() turns into a Xapian query. */
#ifndef MAILVAULT_QUERY_H
#define MAILVAULT_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/*
 * Grammar (case-insensitive field names and operators AND/OR/NOT must be upper case, like Gmail):
 *   query   := orexpr ( [AND] orexpr )*          implicit AND between terms
 *   orexpr  := unary ( OR unary )*               OR binds tighter than AND, as in Gmail
 *   unary   := ( NOT | - ) unary | primary
 *   primary := "(" query ")" | field ":" value | word | "phrase"
 *   value   := word | "phrase" | "(" query ")"   from:(alice OR bob) applies the field inside
 * Fields: from to cc bcc participants subject body filename has(:attachment) account folder msgid
 *         mimetype after before on larger smaller.
 * Words may end in * (wildcard). Dates: YYYY-MM-DD (UTC midnight) or YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM|-HH:MM);
 * after: is inclusive, before: exclusive, on: the whole day. Sizes: N, NK, NM, NG (binary units);
 * larger: is >=, smaller: is <.
 * Addresses: from:jeff@enron.com (whole address), from:@enron.com (domain), from:jeff (name or address words).
 */

enum qnode_kind {
	QN_AND,        /* left AND right */
	QN_OR,         /* left OR right */
	QN_NOT,        /* NOT left (only ever as the right side of AND, or alone: then "all but") */
	QN_TEXT,       /* free words under prefix (QueryParser semantics: stemming, trailing *) */
	QN_PHRASE,     /* exact phrase under prefix */
	QN_TERM,       /* exact term prefix+text */
	QN_WILDCARD,   /* exact terms starting with prefix+text */
	QN_RANGE,      /* value slot within [lo, hi] */
	QN_ALL,        /* every document */
};

struct qnode {
	enum qnode_kind kind;
	struct qnode *left, *right;
	const char *prefix;     /* a PFX_* constant from prefixes.h */
	bool body_only;         /* TEXT/PHRASE under PFX_BODY from body: (body and attached text only); without
	                           it, free words, which also search the subject, names and addresses */
	char *text;
	unsigned slot;
	double lo, hi;          /* -INFINITY / INFINITY for open ends */
	size_t pos;             /* byte offset in the query where this node starts */
};

/* Parses text. Returns the tree (free with query_free), or NULL with *error_r (malloc'd) such as
   "unknown field 'frm' at column 1 (fields are: from, to, ...)" or "unbalanced ')' at column 12".
   Queries longer than 8 KiB or nested deeper than 64 are refused. */
struct qnode *query_parse(const char *text, char **error_r);
/* A canonical description for tests: AND(TEXT(F:jeff), RANGE(0:[981072000,inf])) etc.; caller frees. */
char *query_describe(const struct qnode *n);
/* Frees the tree; sets *n to NULL. */
void query_free(struct qnode **n);

struct xs_db;
struct xs_query;
/* Builds the Xapian query for a parsed tree; NULL with *error_r on failure. */
struct xs_query *query_to_xapian(struct xs_db *db, const struct qnode *n, char **error_r);

#endif

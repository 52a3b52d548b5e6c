/* IMAP server-response parser with no I/O: fed bytes, it answers need-more, done or error. */
#ifndef MAILVAULT_IMAP_PARSER_H
#define MAILVAULT_IMAP_PARSER_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

enum imap_arg_type {
	IMAP_ARG_ATOM,     /* atom, number, flag (\Seen), fetch item name (BODY[HEADER.FIELDS (A B)]<0>) */
	IMAP_ARG_STRING,   /* quoted string, escapes already removed */
	IMAP_ARG_LITERAL,  /* {n} or ~{n} literal; may contain NULs */
	IMAP_ARG_NIL,      /* NIL, any case */
	IMAP_ARG_LIST,     /* parenthesised list */
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM/STRING/LITERAL: bytes and length; always followed by a NUL not counted in len.
	   LIST: data is NULL, len is 0. */
	const unsigned char *data;
	size_t len;
	/* LITERAL only: the server announced more than max_literal bytes; they were read and
	   discarded, data is NULL and len is the announced size. */
	bool oversize;
	bool literal8;               /* LITERAL only: it was sent as ~{n} */
	const struct imap_arg *list; /* LIST: the elements */
	size_t count;                /* LIST: how many */
};

enum imap_response_kind {
	IMAP_RESPONSE_UNTAGGED,      /* "* ..." */
	IMAP_RESPONSE_TAGGED,        /* "A1 OK ..." */
	IMAP_RESPONSE_CONTINUATION,  /* "+ ..." */
};

enum imap_status {
	IMAP_STATUS_NONE,            /* not a status response (e.g. "* 3 EXISTS", "* LIST ...") */
	IMAP_STATUS_OK,
	IMAP_STATUS_NO,
	IMAP_STATUS_BAD,
	IMAP_STATUS_BYE,
	IMAP_STATUS_PREAUTH,
};

struct imap_response {
	enum imap_response_kind kind;
	const char *tag;             /* TAGGED: the tag; otherwise NULL */
	enum imap_status status;     /* OK/NO/BAD/BYE/PREAUTH (any case) or NONE */
	/* Status responses: the response code between [ and ], raw (NULL if none) and, when it
	   parses as IMAP arguments, as arguments ([UIDVALIDITY 5] -> atom UIDVALIDITY, atom 5;
	   [PERMANENTFLAGS (\Seen \*)] -> atom, list); code_args is NULL if it did not parse. */
	const char *code_raw;
	const struct imap_arg *code_args;
	size_t code_count;
	/* Status responses and CONTINUATION: the human-readable text after the code ("" if none). */
	const char *text;
	/* Other untagged responses: every argument after "*", e.g. "* 12 FETCH (...)" ->
	   atom 12, atom FETCH, list; "* LIST (\Noselect) "/" foo" -> atom LIST, list, string, atom. */
	const struct imap_arg *args;
	size_t count;
	/* Set by the connection layer (never by the parser) on an untagged response that arrived whole but
	   does not parse and was skipped (IMAP_PARSE_SKIPPED): why, with the start of the line. Then
	   status is NONE, count is 0 and text is "". */
	const char *malformed;
};

struct imap_parser_limits {
	size_t max_line;     /* bytes of one response outside literals; 0 = default (16 MiB) */
	size_t max_literal;  /* bytes of one literal kept; larger ones are skipped (oversize);
	                        0 = default (64 MiB) */
	unsigned max_depth;  /* nesting of lists; 0 = default (32) */
};

enum imap_parse_result {
	IMAP_PARSE_NEED_MORE,  /* push more bytes, then call imap_parser_next() again */
	IMAP_PARSE_DONE,       /* *resp_r holds one whole response */
	IMAP_PARSE_ERROR,      /* the stream is not IMAP; *error_r says why and where; the parser
	                          stays in error: the connection should be dropped */
	IMAP_PARSE_SKIPPED,    /* an untagged response arrived whole (up to its line end) but does not
	                          parse: *error_r says why and quotes its start; it was dropped and the
	                          parser is ready for the next response (a tagged or continuation line
	                          that does not parse is an ERROR: its command could never complete) */
};

struct imap_parser;

/* Returns a new parser; limits may be NULL for the defaults. Free with imap_parser_free(). */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits);
/* Frees the parser and everything it returned; sets *parser to NULL. */
void imap_parser_free(struct imap_parser **parser);
/* Appends bytes received from the server; the parser keeps its own copy. */
void imap_parser_push(struct imap_parser *parser, const void *data, size_t len);
/* Parses the next response from the pushed bytes. On DONE, *resp_r points into memory owned by the
   parser that stays valid until the next call of imap_parser_next() or imap_parser_free().
   On ERROR, *error_r is a static-lifetime-for-the-parser message. Line ends may be CRLF or bare LF;
   runs of spaces between arguments and trailing spaces before the line end are tolerated. */
enum imap_parse_result imap_parser_next(struct imap_parser *parser, const struct imap_response **resp_r,
					const char **error_r);
/* Bytes pushed but not yet consumed by a returned response (after a literal-skipping discard,
   skipped bytes are not counted). */
size_t imap_parser_pending(const struct imap_parser *parser);

/* Helpers for callers. */
/* True if arg is an ATOM equal to s, ignoring ASCII case. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *s);
/* ATOM, STRING or LITERAL (not oversize) as a NUL-terminated string; NIL and LIST give NULL. */
const char *imap_arg_as_string(const struct imap_arg *arg);
/* ATOM holding a number that fits uint64; returns 0 on success, -1 otherwise. */
int imap_arg_as_u64(const struct imap_arg *arg, uint64_t *value_r);
/* In a list of alternating names and values (a FETCH or STATUS list), the value after the name
   matching name ignoring case; NULL if absent. */
const struct imap_arg *imap_list_find(const struct imap_arg *list, const char *name);

#endif

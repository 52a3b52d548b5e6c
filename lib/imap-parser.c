/* Incremental parser of IMAP4rev1/IMAP4rev2 server responses (RFC 3501, RFC 9051) with no I/O. */
#include "imap-parser.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * How it works, and why.
 *
 * Parsing is split in two passes so that neither ever rescans bytes:
 *
 * 1. The framer (imap_parser_frame) walks the pushed bytes once, as they arrive, with a small
 *    resumable state machine. It only needs to know where a response ends: at the first LF that is
 *    neither inside a quoted string nor part of a literal. Literal bytes are skipped in O(1) per
 *    call, so waiting for a 1 MB literal fed one byte at a time costs O(1) per byte. Oversize
 *    literals are cut out of the buffer as they arrive (and absorbed directly in push when
 *    possible), so memory stays bounded by max_literal, max_line and the caller's chunk size.
 *    Status and continuation lines are "line mode": their text runs to LF and may contain
 *    anything, so quotes and "{n}" in text are never taken for strings or literals.
 *
 * 2. Once a whole response is framed, it is moved out of the input buffer into the response store
 *    (by handing over the input buffer itself when that is cheaper than copying) and parsed once,
 *    in place: quoted strings are unescaped in place, and every returned token is NUL-terminated
 *    by overwriting the separator byte after it, which is only done after the whole response has
 *    parsed (the separator is still needed while parsing). Returned pointers therefore point into
 *    the response store, which later pushes never move.
 *
 * The parser keeps the rule for "this is a literal header" identical in both passes; for malformed
 * input where they could disagree, the parse pass bounds-checks against the frame and reports an
 * error instead of reading past it.
 */

#define IMAP_PARSER_DEFAULT_MAX_LINE ((size_t)16 * 1024 * 1024)
#define IMAP_PARSER_DEFAULT_MAX_LITERAL ((size_t)64 * 1024 * 1024)
#define IMAP_PARSER_DEFAULT_MAX_DEPTH 32u
/* Buffers larger than this are released after use instead of being kept, so that one huge
   response does not pin its memory for the rest of a long session. */
#define IMAP_PARSER_KEEP_BYTES ((size_t)1024 * 1024)
#define IMAP_PARSER_KEEP_ARGS ((size_t)16384)
#define IMAP_PARSER_MIN_BUF ((size_t)4096)

enum imap_parser_frame_state {
	IMAP_FRAME_START,       /* first byte of a response */
	IMAP_FRAME_UNTAGGED_SP, /* after "*": the spaces before the first word */
	IMAP_FRAME_WORD,        /* first word after "*": decides status line or arguments */
	IMAP_FRAME_LINE,        /* tagged, status or continuation line: text up to LF */
	IMAP_FRAME_ARGS,        /* arguments, outside quoted strings and literals */
	IMAP_FRAME_QUOTED,      /* inside a quoted string */
	IMAP_FRAME_QUOTED_ESC,  /* after a backslash inside a quoted string */
	IMAP_FRAME_LIT_SIZE,    /* after "{": the digits of a literal size */
	IMAP_FRAME_LIT_PLUS,    /* after "{n+": expects "}" */
	IMAP_FRAME_LIT_CLOSE,   /* after "{n}": expects CR or LF */
	IMAP_FRAME_LIT_CR,      /* after "{n}\r": expects LF */
	IMAP_FRAME_LIT_DATA,    /* inside a literal that is kept */
	IMAP_FRAME_LIT_SKIP,    /* inside an oversize literal whose bytes are discarded */
};

struct imap_parser_buf {
	unsigned char *data;
	size_t used, cap;
};

struct imap_parser_argv {
	struct imap_arg *data;
	size_t used, cap;
};

/* An open "(" while parsing: where its elements start on the stack, and where it was. */
struct imap_parser_mark {
	size_t stack_index;
	size_t pos;
};

struct imap_parser {
	size_t max_line, max_literal;
	unsigned max_depth;

	/* Pushed bytes; [in_start, in.used) is not yet returned, [in_start, scan) is framed. */
	struct imap_parser_buf in;
	size_t in_start, scan;

	/* Resumable framer state. */
	enum imap_parser_frame_state fstate;
	size_t line_bytes;       /* bytes of the current response outside literal data */
	unsigned char word[8];   /* first word after "*" */
	size_t word_len;
	size_t lit_size, lit_digits, lit_left;

	/* The frame of the current response lives here; reused as the next input buffer. */
	struct imap_parser_buf store;
	/* Elements of lists being parsed, and the finished elements the response points to. */
	struct imap_parser_argv stack, out;
	struct imap_parser_mark *marks;
	size_t marks_used, marks_cap;
	/* NUL-terminated copy of the response code (code arguments are unescaped in place). */
	char *code;
	size_t code_cap;

	struct imap_response resp;
	/* Indexes into out of the code arguments and the arguments until the response is finished. */
	size_t code_first, args_first;
	bool code_parsed;
	bool failed;
	char error[200];
	/* the start of the current frame as it arrived, quoted in the message of a skipped response */
	char excerpt[100];
	char skipped[320];
};

/* Returns realloc'ed memory or aborts: an allocation failure is not something a parser can handle. */
static void *imap_parser_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size == 0 ? 1 : size);
	if (p == NULL)
		abort();
	return p;
}

/* Returns a capacity of at least need, doubling from cap so that appends are amortised O(1). */
static size_t imap_parser_grow(size_t cap, size_t need, size_t elem_size)
{
	size_t c = cap < 16 ? 16 : cap;
	while (c < need) {
		if (c > SIZE_MAX / 2) {
			c = need;
			break;
		}
		c *= 2;
	}
	if (c > SIZE_MAX / elem_size)
		abort();
	return c;
}

/* Makes room for need bytes in b. */
static void imap_parser_buf_reserve(struct imap_parser_buf *b, size_t need)
{
	if (need <= b->cap)
		return;
	b->cap = imap_parser_grow(b->cap < IMAP_PARSER_MIN_BUF ? IMAP_PARSER_MIN_BUF : b->cap, need, 1);
	b->data = imap_parser_xrealloc(b->data, b->cap);
}

/* Frees b's memory and empties it. */
static void imap_parser_buf_free(struct imap_parser_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->used = b->cap = 0;
}

/* Makes room for need arguments in v. */
static void imap_parser_argv_reserve(struct imap_parser_argv *v, size_t need)
{
	if (need <= v->cap)
		return;
	v->cap = imap_parser_grow(v->cap, need, sizeof(struct imap_arg));
	v->data = imap_parser_xrealloc(v->data, v->cap * sizeof(struct imap_arg));
}

/* Appends a zeroed argument to v and returns it; valid until the next append. */
static struct imap_arg *imap_parser_argv_push(struct imap_parser_argv *v)
{
	struct imap_arg *arg;

	imap_parser_argv_reserve(v, v->used + 1);
	arg = &v->data[v->used++];
	memset(arg, 0, sizeof(*arg));
	return arg;
}

/* Frees v's memory when it grew large, so one huge response does not pin it. */
static void imap_parser_argv_trim(struct imap_parser_argv *v)
{
	if (v->cap > IMAP_PARSER_KEEP_ARGS) {
		free(v->data);
		v->data = NULL;
		v->cap = 0;
	}
	v->used = 0;
}

/* Formats the error message of the parser (does not put it in the error state). */
__attribute__((format(printf, 2, 3)))
static void imap_parser_set_error(struct imap_parser *parser, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(parser->error, sizeof(parser->error), fmt, ap);
	va_end(ap);
}

/* ASCII letter test that ignores the locale. */
static bool imap_parser_is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ASCII lower-casing that ignores the locale. */
static unsigned char imap_parser_lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

/* True if the len bytes at a equal the NUL-terminated s ignoring ASCII case. */
static bool imap_parser_equals_icase(const unsigned char *a, size_t len, const char *s)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] == '\0' || imap_parser_lower(a[i]) != imap_parser_lower((unsigned char)s[i]))
			return false;
	}
	return s[len] == '\0';
}

/* Returns the status a word names (OK, NO, BAD, BYE, PREAUTH in any case) or IMAP_STATUS_NONE. */
static enum imap_status imap_parser_status_word(const unsigned char *w, size_t len)
{
	if (imap_parser_equals_icase(w, len, "OK"))
		return IMAP_STATUS_OK;
	if (imap_parser_equals_icase(w, len, "NO"))
		return IMAP_STATUS_NO;
	if (imap_parser_equals_icase(w, len, "BAD"))
		return IMAP_STATUS_BAD;
	if (imap_parser_equals_icase(w, len, "BYE"))
		return IMAP_STATUS_BYE;
	if (imap_parser_equals_icase(w, len, "PREAUTH"))
		return IMAP_STATUS_PREAUTH;
	return IMAP_STATUS_NONE;
}

/* True for bytes an atom may hold. Lenient on purpose: "]", "%", "*", "\" (flags such as \Seen and
   \*) and 8-bit bytes appear in real server output; "[" is handled by the caller (sections). */
static bool imap_parser_is_atom_char(unsigned char c)
{
	if (c <= 0x20 || c == 0x7f)
		return false;
	return c != '(' && c != ')' && c != '{' && c != '"';
}

/* True for bytes a tag may hold: ASTRING-CHAR except "+" (RFC 9051). */
static bool imap_parser_is_tag_char(unsigned char c)
{
	if (c <= 0x20 || c >= 0x7f)
		return false;
	return strchr("(){%*\"\\+", c) == NULL;
}

/* Returns a new parser with the given limits, zero fields meaning the defaults. */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits)
{
	struct imap_parser *parser = imap_parser_xrealloc(NULL, sizeof(*parser));

	memset(parser, 0, sizeof(*parser));
	parser->max_line = limits != NULL && limits->max_line != 0 ? limits->max_line : IMAP_PARSER_DEFAULT_MAX_LINE;
	parser->max_literal = limits != NULL && limits->max_literal != 0 ?
		limits->max_literal : IMAP_PARSER_DEFAULT_MAX_LITERAL;
	parser->max_depth = limits != NULL && limits->max_depth != 0 ? limits->max_depth : IMAP_PARSER_DEFAULT_MAX_DEPTH;
	parser->fstate = IMAP_FRAME_START;
	return parser;
}

/* Frees the parser and all it returned; sets *parser_p to NULL. */
void imap_parser_free(struct imap_parser **parser_p)
{
	struct imap_parser *parser;

	if (parser_p == NULL || *parser_p == NULL)
		return;
	parser = *parser_p;
	imap_parser_buf_free(&parser->in);
	imap_parser_buf_free(&parser->store);
	free(parser->stack.data);
	free(parser->out.data);
	free(parser->marks);
	free(parser->code);
	free(parser);
	*parser_p = NULL;
}

/* Drops consumed input from the front of the buffer, only when that costs no more than the bytes
   consumed since the last move (amortised O(1) per byte, even with byte-by-byte pushes). */
static void imap_parser_compact(struct imap_parser *parser)
{
	struct imap_parser_buf *in = &parser->in;
	size_t keep = in->used - parser->in_start;

	if (parser->in_start > 0 && parser->in_start >= keep) {
		if (keep > 0)
			memmove(in->data, in->data + parser->in_start, keep);
		parser->scan -= parser->in_start;
		in->used = keep;
		parser->in_start = 0;
	}
	if (parser->in_start == 0 && in->cap > IMAP_PARSER_KEEP_BYTES && in->used < in->cap / 4) {
		/* A huge response has gone: give its memory back. */
		in->cap = in->used * 2 < IMAP_PARSER_MIN_BUF ? IMAP_PARSER_MIN_BUF : in->used * 2;
		in->data = imap_parser_xrealloc(in->data, in->cap);
	}
}

/* Appends pushed bytes to the input, except those of an oversize literal, which are dropped. */
void imap_parser_push(struct imap_parser *parser, const void *data, size_t len)
{
	const unsigned char *bytes = data;

	if (parser->failed || len == 0)
		return;
	imap_parser_compact(parser);
	if (parser->fstate == IMAP_FRAME_LIT_SKIP && parser->scan == parser->in.used) {
		/* Inside an oversize literal with everything before it framed: drop the bytes here
		   instead of buffering them. */
		size_t skip = len < parser->lit_left ? len : parser->lit_left;

		bytes += skip;
		len -= skip;
		parser->lit_left -= skip;
		if (parser->lit_left == 0)
			parser->fstate = IMAP_FRAME_ARGS;
		if (len == 0)
			return;
	}
	imap_parser_buf_reserve(&parser->in, parser->in.used + len);
	memcpy(parser->in.data + parser->in.used, bytes, len);
	parser->in.used += len;
}

/* Returns how many pushed bytes no returned response has consumed yet. */
size_t imap_parser_pending(const struct imap_parser *parser)
{
	return parser->in.used - parser->in_start;
}

/* Enters the state for literal data after a complete "{n}" line end. */
static void imap_parser_frame_literal(struct imap_parser *parser)
{
	parser->lit_left = parser->lit_size;
	if (parser->lit_size > parser->max_literal)
		parser->fstate = IMAP_FRAME_LIT_SKIP;
	else if (parser->lit_size == 0)
		parser->fstate = IMAP_FRAME_ARGS;
	else
		parser->fstate = IMAP_FRAME_LIT_DATA;
}

/* Advances the resumable scan over the pushed bytes; returns 1 when a whole response lies in
   [in_start, scan), 0 if more bytes are needed, -1 (error set) if the response is too long. */
static int imap_parser_frame(struct imap_parser *parser)
{
	size_t i = parser->scan;
	bool done = false;

	while (i < parser->in.used && !done) {
		unsigned char *d = parser->in.data;
		size_t n = parser->in.used;
		unsigned char c;
		bool consume = true;

		switch (parser->fstate) {
		case IMAP_FRAME_LIT_DATA: {
			size_t k = n - i < parser->lit_left ? n - i : parser->lit_left;

			i += k;
			parser->lit_left -= k;
			if (parser->lit_left == 0)
				parser->fstate = IMAP_FRAME_ARGS;
			continue;
		}
		case IMAP_FRAME_LIT_SKIP: {
			size_t k = n - i < parser->lit_left ? n - i : parser->lit_left;

			memmove(d + i, d + i + k, n - i - k);
			parser->in.used -= k;
			parser->lit_left -= k;
			if (parser->lit_left == 0)
				parser->fstate = IMAP_FRAME_ARGS;
			continue;
		}
		case IMAP_FRAME_LINE: {
			unsigned char *lf = memchr(d + i, '\n', n - i);
			size_t upto = lf != NULL ? (size_t)(lf - d) + 1 : n;

			parser->line_bytes += upto - i;
			i = upto;
			done = lf != NULL;
			continue;
		}
		case IMAP_FRAME_ARGS:
			/* Fast path: ordinary argument bytes need no state change. */
			while (i < n && d[i] != '"' && d[i] != '{' && d[i] != '\n') {
				i++;
				parser->line_bytes++;
			}
			if (i == n)
				continue;
			c = d[i];
			if (c == '\n')
				done = true;
			else if (c == '"')
				parser->fstate = IMAP_FRAME_QUOTED;
			else {
				parser->fstate = IMAP_FRAME_LIT_SIZE;
				parser->lit_size = 0;
				parser->lit_digits = 0;
			}
			break;
		case IMAP_FRAME_QUOTED:
			while (i < n && d[i] != '"' && d[i] != '\\' && d[i] != '\n') {
				i++;
				parser->line_bytes++;
			}
			if (i == n)
				continue;
			c = d[i];
			if (c == '\n')
				done = true; /* unterminated: the parse pass reports it */
			else if (c == '"')
				parser->fstate = IMAP_FRAME_ARGS;
			else
				parser->fstate = IMAP_FRAME_QUOTED_ESC;
			break;
		case IMAP_FRAME_QUOTED_ESC:
			if (d[i] == '\n')
				done = true;
			parser->fstate = IMAP_FRAME_QUOTED;
			break;
		case IMAP_FRAME_START:
			if (d[i] == '*')
				parser->fstate = IMAP_FRAME_UNTAGGED_SP;
			else {
				/* Tagged and continuation responses are always single text lines. */
				parser->fstate = IMAP_FRAME_LINE;
				consume = false;
			}
			break;
		case IMAP_FRAME_UNTAGGED_SP:
			if (d[i] != ' ') {
				parser->fstate = IMAP_FRAME_WORD;
				parser->word_len = 0;
				consume = false;
			}
			break;
		case IMAP_FRAME_WORD:
			c = d[i];
			if (imap_parser_is_alpha(c) && parser->word_len < sizeof(parser->word)) {
				parser->word[parser->word_len++] = c;
			} else {
				/* Must match the decision in imap_parser_parse_untagged(). */
				bool status = (c == ' ' || c == '\r' || c == '\n') &&
					imap_parser_status_word(parser->word, parser->word_len) != IMAP_STATUS_NONE;

				parser->fstate = status ? IMAP_FRAME_LINE : IMAP_FRAME_ARGS;
				consume = false;
			}
			break;
		case IMAP_FRAME_LIT_SIZE:
			c = d[i];
			if (c >= '0' && c <= '9' && parser->lit_size <= (SIZE_MAX - (size_t)(c - '0')) / 10) {
				parser->lit_size = parser->lit_size * 10 + (size_t)(c - '0');
				parser->lit_digits++;
			} else if (c == '+' && parser->lit_digits > 0) {
				parser->fstate = IMAP_FRAME_LIT_PLUS;
			} else if (c == '}' && parser->lit_digits > 0) {
				parser->fstate = IMAP_FRAME_LIT_CLOSE;
			} else {
				/* Not a literal header (or an overflowing size): the parse pass reports it. */
				parser->fstate = IMAP_FRAME_ARGS;
				consume = false;
			}
			break;
		case IMAP_FRAME_LIT_PLUS:
			if (d[i] == '}') {
				parser->fstate = IMAP_FRAME_LIT_CLOSE;
			} else {
				parser->fstate = IMAP_FRAME_ARGS;
				consume = false;
			}
			break;
		case IMAP_FRAME_LIT_CLOSE:
			if (d[i] == '\r') {
				parser->fstate = IMAP_FRAME_LIT_CR;
			} else if (d[i] == '\n') {
				imap_parser_frame_literal(parser);
			} else {
				parser->fstate = IMAP_FRAME_ARGS;
				consume = false;
			}
			break;
		case IMAP_FRAME_LIT_CR:
			if (d[i] == '\n') {
				imap_parser_frame_literal(parser);
			} else {
				parser->fstate = IMAP_FRAME_ARGS;
				consume = false;
			}
			break;
		}
		if (consume) {
			i++;
			parser->line_bytes++;
		}
	}
	parser->scan = i;
	if (parser->line_bytes > parser->max_line) {
		imap_parser_set_error(parser, "response longer than %zu bytes outside literals (max_line)",
				      parser->max_line);
		return -1;
	}
	return done ? 1 : 0;
}

/* Moves the framed response [in_start, scan) out of the input buffer into the response store and
   returns where it starts; the cheaper of copying the frame or the bytes after it is done. */
static unsigned char *imap_parser_take_frame(struct imap_parser *parser)
{
	size_t start = parser->in_start, end = parser->scan;
	size_t frame_len = end - start, rest = parser->in.used - end;

	if (rest < frame_len) {
		/* Hand the input buffer (with the big frame) to the response; the rest moves. */
		struct imap_parser_buf old = parser->in;

		parser->in = parser->store;
		parser->in.used = 0;
		if (rest > 0) {
			imap_parser_buf_reserve(&parser->in, rest);
			memcpy(parser->in.data, old.data + end, rest);
		}
		parser->in.used = rest;
		parser->store = old;
		parser->store.used = end;
		parser->in_start = parser->scan = 0;
		return parser->store.data + start;
	}
	imap_parser_buf_reserve(&parser->store, frame_len);
	memcpy(parser->store.data, parser->in.data + start, frame_len);
	parser->store.used = frame_len;
	parser->in_start = parser->scan = end;
	return parser->store.data;
}

/* If a "]" closes a bracket before the line end, sets *close_r to it; quoted strings are skipped. */
static bool imap_parser_find_code_end(const unsigned char *f, size_t pos, size_t eol, size_t *close_r)
{
	bool quoted = false;
	size_t i;

	for (i = pos; i < eol; i++) {
		if (quoted) {
			if (f[i] == '\\' && i + 1 < eol)
				i++;
			else if (f[i] == '"')
				quoted = false;
		} else if (f[i] == '"') {
			quoted = true;
		} else if (f[i] == ']') {
			*close_r = i;
			return true;
		}
	}
	/* An unbalanced quote in a code such as [ALERT "x] is text, not a string: take the first "]". */
	for (i = pos; i < eol; i++) {
		if (f[i] == ']') {
			*close_r = i;
			return true;
		}
	}
	return false;
}

/* Position of the first "]", CR or LF at or after from (end if none). Cached, because "[" may
   start many atoms on one line and rescanning the line for each would be quadratic. */
static size_t imap_parser_next_bracket(const unsigned char *f, size_t from, size_t end,
				       size_t *cache_from, size_t *cache_pos)
{
	size_t i;

	if (*cache_pos != SIZE_MAX && from >= *cache_from && from <= *cache_pos)
		return *cache_pos;
	for (i = from; i < end; i++) {
		if (f[i] == ']' || f[i] == '\r' || f[i] == '\n')
			break;
	}
	*cache_from = from;
	*cache_pos = i;
	return i;
}

/* Closes the innermost open list: moves its elements to parser->out and leaves a LIST on the stack. */
static void imap_parser_close_list(struct imap_parser *parser)
{
	size_t mark = parser->marks[--parser->marks_used].stack_index;
	size_t count = parser->stack.used - mark, first = parser->out.used;
	struct imap_arg *list;

	if (count > 0) {
		imap_parser_argv_reserve(&parser->out, first + count);
		memcpy(parser->out.data + first, parser->stack.data + mark, count * sizeof(struct imap_arg));
		parser->out.used += count;
	}
	parser->stack.used = mark;
	list = imap_parser_argv_push(&parser->stack);
	list->type = IMAP_ARG_LIST;
	/* Index into parser->out until imap_parser_finish() turns it into the list pointer: out may
	   still move while parsing. */
	list->len = first;
	list->count = count;
}

/* Parses a quoted string starting at f[*pos] == '"', unescaping it in place. */
static int imap_parser_parse_quoted(struct imap_parser *parser, unsigned char *f, size_t *pos, size_t end,
				    struct imap_arg *arg)
{
	size_t start = *pos, q = start + 1, w = start + 1;

	for (;;) {
		unsigned char c;

		if (q >= end || f[q] == '\r' || f[q] == '\n') {
			imap_parser_set_error(parser, "unterminated quoted string at byte %zu of response", start);
			return -1;
		}
		c = f[q];
		if (c == '"')
			break;
		if (c == '\\') {
			/* RFC 9051 only escapes \" and \\; any other escaped byte is kept as is. */
			q++;
			if (q >= end || f[q] == '\r' || f[q] == '\n') {
				imap_parser_set_error(parser, "unterminated quoted string at byte %zu of response",
						      start);
				return -1;
			}
			c = f[q];
		}
		f[w++] = c;
		q++;
	}
	arg->type = IMAP_ARG_STRING;
	arg->data = f + start + 1;
	arg->len = w - (start + 1);
	*pos = q + 1;
	return 0;
}

/* Parses a literal header "{n}", "{n+}" or "~{n}" at f[*pos] and its data. The rule must match the
   framer's: digits that fit size_t, optional "+", "}", then CRLF or LF. */
static int imap_parser_parse_literal(struct imap_parser *parser, unsigned char *f, size_t *pos, size_t end,
				     struct imap_arg *arg)
{
	size_t start = *pos, p = *pos, size = 0, digits = 0;

	arg->type = IMAP_ARG_LITERAL;
	if (f[p] == '~') {
		arg->literal8 = true;
		p++;
	}
	p++; /* "{" */
	while (p < end && f[p] >= '0' && f[p] <= '9') {
		size_t digit = (size_t)(f[p] - '0');

		if (size > (SIZE_MAX - digit) / 10) {
			imap_parser_set_error(parser, "bad literal size (overflow) at byte %zu of response", start);
			return -1;
		}
		size = size * 10 + digit;
		digits++;
		p++;
	}
	if (p < end && f[p] == '+' && digits > 0)
		p++;
	if (digits == 0 || p >= end || f[p] != '}') {
		imap_parser_set_error(parser, "bad literal size at byte %zu of response", start);
		return -1;
	}
	p++;
	if (p + 1 < end && f[p] == '\r' && f[p + 1] == '\n') {
		p += 2;
	} else if (p < end && f[p] == '\n') {
		p++;
	} else {
		imap_parser_set_error(parser, "expected line end after literal size at byte %zu of response", p);
		return -1;
	}
	if (size > parser->max_literal) {
		/* The framer discarded the bytes: nothing of them is in the frame. */
		arg->oversize = true;
		arg->data = NULL;
		arg->len = size;
	} else {
		if (size > end - p) {
			imap_parser_set_error(parser, "literal truncated at byte %zu of response", start);
			return -1;
		}
		arg->data = f + p;
		arg->len = size;
		p += size;
	}
	*pos = p;
	return 0;
}

/* Parses an atom at f[*pos]; a "[" with a "]" later on the line takes everything up to it, spaces
   and parentheses included, so BODY[HEADER.FIELDS (FROM TO)]<0> is one atom. */
static void imap_parser_parse_atom(unsigned char *f, size_t *pos, size_t end, struct imap_arg *arg,
				   size_t *cache_from, size_t *cache_pos)
{
	size_t start = *pos, p = *pos;

	while (p < end) {
		unsigned char c = f[p];

		if (c == '[') {
			size_t close = imap_parser_next_bracket(f, p + 1, end, cache_from, cache_pos);

			p = close < end && f[close] == ']' ? close + 1 : p + 1;
			continue;
		}
		if (!imap_parser_is_atom_char(c))
			break;
		p++;
	}
	arg->data = f + start;
	arg->len = p - start;
	arg->type = imap_parser_equals_icase(arg->data, arg->len, "NIL") ? IMAP_ARG_NIL : IMAP_ARG_ATOM;
	*pos = p;
}

/* Parses arguments from f[pos] to the line end that closes the frame (f[end-1] is its LF) or, in
   code mode, up to end (the "]" of a response code). Appends them to parser->out and returns the
   index of the first one and their number; -1 with the error set if they do not parse. */
static int imap_parser_parse_args(struct imap_parser *parser, unsigned char *f, size_t pos, size_t end,
				  bool code_mode, size_t *first_r, size_t *count_r)
{
	size_t stack_base = parser->stack.used, marks_base = parser->marks_used, count;
	size_t cache_from = 0, cache_pos = SIZE_MAX;
	/* What may follow the previous argument: anything (after "(" or a space), a space, or, after
	   ")", also "(" since multipart BODYSTRUCTUREs are written "(...)(...)" (RFC 3501). */
	enum { SEP_NONE, SEP_SPACE, SEP_AFTER_LIST } need_sep = SEP_NONE;

	for (;;) {
		struct imap_arg *arg;
		unsigned char c;

		if (pos >= end) {
			if (code_mode)
				break;
			imap_parser_set_error(parser, "response ends inside an argument at byte %zu", pos);
			goto fail;
		}
		c = f[pos];
		if (c == ' ') {
			pos++;
			need_sep = SEP_NONE;
			continue;
		}
		if (c == '\r' || c == '\n') {
			if (code_mode) {
				imap_parser_set_error(parser, "line end in response code at byte %zu", pos);
				goto fail;
			}
			if (c == '\r' && (pos + 1 >= end || f[pos + 1] != '\n')) {
				imap_parser_set_error(parser, "stray CR at byte %zu of response", pos);
				goto fail;
			}
			if (pos + (c == '\r' ? 2 : 1) != end) {
				imap_parser_set_error(parser, "unexpected line end at byte %zu of response", pos);
				goto fail;
			}
			break;
		}
		if (c == ')') {
			if (parser->marks_used == marks_base) {
				imap_parser_set_error(parser, "unexpected ')' at byte %zu of response", pos);
				goto fail;
			}
			imap_parser_close_list(parser);
			pos++;
			need_sep = SEP_AFTER_LIST;
			continue;
		}
		if (need_sep == SEP_SPACE || (need_sep == SEP_AFTER_LIST && c != '(')) {
			imap_parser_set_error(parser, "expected space after argument at byte %zu of response", pos);
			goto fail;
		}
		if (c == '(') {
			if (parser->marks_used - marks_base >= parser->max_depth) {
				imap_parser_set_error(parser, "nesting too deep at byte %zu of response (limit %u)",
						      pos, parser->max_depth);
				goto fail;
			}
			if (parser->marks_used == parser->marks_cap) {
				parser->marks_cap = imap_parser_grow(parser->marks_cap, parser->marks_used + 1,
								     sizeof(*parser->marks));
				parser->marks = imap_parser_xrealloc(parser->marks,
								     parser->marks_cap * sizeof(*parser->marks));
			}
			parser->marks[parser->marks_used].stack_index = parser->stack.used;
			parser->marks[parser->marks_used].pos = pos;
			parser->marks_used++;
			pos++;
			need_sep = SEP_NONE;
			continue;
		}
		arg = imap_parser_argv_push(&parser->stack);
		if (c == '"') {
			if (imap_parser_parse_quoted(parser, f, &pos, end, arg) < 0)
				goto fail;
		} else if (c == '{' || (c == '~' && pos + 1 < end && f[pos + 1] == '{')) {
			if (code_mode) {
				imap_parser_set_error(parser, "literal in response code at byte %zu", pos);
				goto fail;
			}
			if (imap_parser_parse_literal(parser, f, &pos, end, arg) < 0)
				goto fail;
		} else if (imap_parser_is_atom_char(c)) {
			imap_parser_parse_atom(f, &pos, end, arg, &cache_from, &cache_pos);
		} else {
			imap_parser_set_error(parser, "unexpected byte 0x%02x at byte %zu of response", c, pos);
			goto fail;
		}
		need_sep = SEP_SPACE;
	}
	if (parser->marks_used > marks_base) {
		imap_parser_set_error(parser, "unterminated list opened at byte %zu of response",
				      parser->marks[parser->marks_used - 1].pos);
		goto fail;
	}
	count = parser->stack.used - stack_base;
	*first_r = parser->out.used;
	*count_r = count;
	if (count > 0) {
		imap_parser_argv_reserve(&parser->out, parser->out.used + count);
		memcpy(parser->out.data + parser->out.used, parser->stack.data + stack_base,
		       count * sizeof(struct imap_arg));
		parser->out.used += count;
	}
	parser->stack.used = stack_base;
	return 0;
fail:
	parser->stack.used = stack_base;
	parser->marks_used = marks_base;
	return -1;
}

/* Returns the byte after the spaces starting at f[pos], not beyond end. */
static size_t imap_parser_skip_spaces(const unsigned char *f, size_t pos, size_t end)
{
	while (pos < end && f[pos] == ' ')
		pos++;
	return pos;
}

/* Checks that a text line holds no CR except the one before its LF. */
static int imap_parser_check_line(struct imap_parser *parser, const unsigned char *f, size_t eol)
{
	const unsigned char *cr = memchr(f, '\r', eol);

	if (cr != NULL) {
		imap_parser_set_error(parser, "stray CR at byte %zu of response", (size_t)(cr - f));
		return -1;
	}
	return 0;
}

/* Sets the text of the response to f[pos..eol) without trailing spaces; *text_end_r is where its
   NUL goes once parsing is over. */
static void imap_parser_set_text(struct imap_parser *parser, unsigned char *f, size_t pos, size_t eol,
				 unsigned char **text_end_r)
{
	while (eol > pos && f[eol - 1] == ' ')
		eol--;
	if (eol == pos) {
		parser->resp.text = "";
		*text_end_r = NULL;
	} else {
		parser->resp.text = (const char *)(f + pos);
		*text_end_r = f + eol;
	}
}

/* Parses "[code] text" after a status word at f[pos]. */
static void imap_parser_parse_status_rest(struct imap_parser *parser, unsigned char *f, size_t pos, size_t eol,
					  unsigned char **text_end_r)
{
	size_t close, out_used, first, count;

	pos = imap_parser_skip_spaces(f, pos, eol);
	if (pos < eol && f[pos] == '[' && imap_parser_find_code_end(f, pos + 1, eol, &close)) {
		size_t code_len = close - (pos + 1);

		if (parser->code_cap < code_len + 1) {
			parser->code_cap = imap_parser_grow(parser->code_cap, code_len + 1, 1);
			parser->code = imap_parser_xrealloc(parser->code, parser->code_cap);
		}
		/* Copied before the arguments are parsed: parsing rewrites the bytes in place. */
		memcpy(parser->code, f + pos + 1, code_len);
		parser->code[code_len] = '\0';
		parser->resp.code_raw = parser->code;
		out_used = parser->out.used;
		if (imap_parser_parse_args(parser, f, pos + 1, close, true, &first, &count) == 0 && count > 0) {
			/* An index for now: imap_parser_finish() makes it a pointer. */
			parser->resp.code_count = count;
			parser->code_first = first;
			parser->code_parsed = true;
		} else {
			parser->out.used = out_used;
		}
		pos = imap_parser_skip_spaces(f, close + 1, eol);
	}
	imap_parser_set_text(parser, f, pos, eol, text_end_r);
}

/* Parses an untagged response "* ...": a status line or a sequence of arguments. */
static int imap_parser_parse_untagged(struct imap_parser *parser, unsigned char *f, size_t n, size_t eol,
				      unsigned char **text_end_r)
{
	struct imap_response *resp = &parser->resp;
	size_t pos, word, first, count;
	enum imap_status status;

	resp->kind = IMAP_RESPONSE_UNTAGGED;
	if (f[1] == '\r' || f[1] == '\n' || (f[1] == ' ' && imap_parser_skip_spaces(f, 1, eol) == eol)) {
		imap_parser_set_error(parser, "empty untagged response");
		return -1;
	}
	if (f[1] != ' ') {
		imap_parser_set_error(parser, "expected space after '*' at byte 1 of response");
		return -1;
	}
	pos = word = imap_parser_skip_spaces(f, 1, eol);
	while (pos < eol && imap_parser_is_alpha(f[pos]))
		pos++;
	/* Must match the framer's decision in IMAP_FRAME_WORD: a status line is framed as text. */
	status = pos - word <= 8 ? imap_parser_status_word(f + word, pos - word) : IMAP_STATUS_NONE;
	if (status != IMAP_STATUS_NONE && (f[pos] == ' ' || f[pos] == '\r' || f[pos] == '\n')) {
		if (imap_parser_check_line(parser, f, eol) < 0)
			return -1;
		resp->status = status;
		imap_parser_parse_status_rest(parser, f, pos, eol, text_end_r);
		return 0;
	}
	resp->text = "";
	if (imap_parser_parse_args(parser, f, word, n, false, &first, &count) < 0)
		return -1;
	parser->args_first = first;
	resp->count = count;
	return 0;
}

/* Parses a tagged response "tag OK|NO|BAD|BYE|PREAUTH [code] text". */
static int imap_parser_parse_tagged(struct imap_parser *parser, unsigned char *f, size_t eol,
				    unsigned char **tag_end_r, unsigned char **text_end_r)
{
	struct imap_response *resp = &parser->resp;
	size_t pos = 0, word;
	enum imap_status status;

	resp->kind = IMAP_RESPONSE_TAGGED;
	if (eol == 0) {
		imap_parser_set_error(parser, "empty response line");
		return -1;
	}
	if (imap_parser_check_line(parser, f, eol) < 0)
		return -1;
	while (pos < eol && f[pos] != ' ') {
		if (!imap_parser_is_tag_char(f[pos])) {
			imap_parser_set_error(parser, "bad byte 0x%02x in tag at byte %zu of response", f[pos], pos);
			return -1;
		}
		pos++;
	}
	if (pos == 0) {
		imap_parser_set_error(parser, "missing tag at byte 0 of response");
		return -1;
	}
	*tag_end_r = f + pos;
	resp->tag = (const char *)f;
	pos = word = imap_parser_skip_spaces(f, pos, eol);
	while (pos < eol && imap_parser_is_alpha(f[pos]))
		pos++;
	status = imap_parser_status_word(f + word, pos - word);
	if (status == IMAP_STATUS_NONE || (pos < eol && f[pos] != ' ')) {
		imap_parser_set_error(parser, "expected OK, NO, BAD, BYE or PREAUTH after tag at byte %zu of response",
				      word);
		return -1;
	}
	resp->status = status;
	imap_parser_parse_status_rest(parser, f, pos, eol, text_end_r);
	return 0;
}

/* Turns the indexes left in list arguments into pointers and NUL-terminates every token, now that
   parsing is over and parser->out no longer moves. */
static void imap_parser_finish(struct imap_parser *parser)
{
	struct imap_response *resp = &parser->resp;
	size_t i;

	for (i = 0; i < parser->out.used; i++) {
		struct imap_arg *arg = &parser->out.data[i];

		if (arg->type == IMAP_ARG_LIST) {
			arg->list = arg->count > 0 ? parser->out.data + arg->len : NULL;
			arg->len = 0;
		} else if (arg->data != NULL) {
			/* The byte after a token is a separator (or inside its quotes) and is no longer
			   needed; the memory is the parser's own, so writing through the cast is fine. */
			((unsigned char *)arg->data)[arg->len] = '\0';
		}
	}
	if (parser->code_parsed)
		resp->code_args = parser->out.data + parser->code_first;
	if (resp->count > 0)
		resp->args = parser->out.data + parser->args_first;
}

/* Parses the framed response f[0..n), which ends with LF, into parser->resp. */
static int imap_parser_parse(struct imap_parser *parser, unsigned char *f, size_t n)
{
	struct imap_response *resp = &parser->resp;
	unsigned char *tag_end = NULL, *text_end = NULL;
	size_t eol = n - 1;

	memset(resp, 0, sizeof(*resp));
	parser->stack.used = 0;
	parser->out.used = 0;
	parser->marks_used = 0;
	parser->code_parsed = false;
	parser->code_first = parser->args_first = 0;
	if (eol > 0 && f[eol - 1] == '\r')
		eol--;

	if (f[0] == '+') {
		/* Continuation: the rest is text or base64, never arguments. */
		resp->kind = IMAP_RESPONSE_CONTINUATION;
		if (imap_parser_check_line(parser, f, eol) < 0)
			return -1;
		imap_parser_set_text(parser, f, imap_parser_skip_spaces(f, 1, eol), eol, &text_end);
	} else if (f[0] == '*') {
		if (imap_parser_parse_untagged(parser, f, n, eol, &text_end) < 0)
			return -1;
	} else {
		if (imap_parser_parse_tagged(parser, f, eol, &tag_end, &text_end) < 0)
			return -1;
	}
	imap_parser_finish(parser);
	if (tag_end != NULL)
		*tag_end = '\0';
	if (text_end != NULL)
		*text_end = '\0';
	return 0;
}

/* Releases what the previous response held on to, once it is no longer valid. */
static void imap_parser_release(struct imap_parser *parser)
{
	memset(&parser->resp, 0, sizeof(parser->resp));
	if (parser->store.cap > IMAP_PARSER_KEEP_BYTES)
		imap_parser_buf_free(&parser->store);
	parser->store.used = 0;
	imap_parser_argv_trim(&parser->stack);
	imap_parser_argv_trim(&parser->out);
	if (parser->code_cap > IMAP_PARSER_KEEP_BYTES) {
		free(parser->code);
		parser->code = NULL;
		parser->code_cap = 0;
	}
}

/* Keeps the start of a frame, printable, for the message of a response that turns out not to parse
   (parsing rewrites the frame in place). */
static void imap_parser_keep_excerpt(struct imap_parser *parser, const unsigned char *f, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < sizeof(parser->excerpt); i++) {
		unsigned char c = f[i];
		if (c == '\r' || c == '\n')
			break;
		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			o += (size_t)snprintf(parser->excerpt + o, sizeof(parser->excerpt) - o, "\\x%02x", c);
		else
			parser->excerpt[o++] = (char)c;
	}
	parser->excerpt[o] = '\0';
}

/* Frames and parses the next response, invalidating the previous one. */
enum imap_parse_result imap_parser_next(struct imap_parser *parser, const struct imap_response **resp_r,
					const char **error_r)
{
	unsigned char *frame;
	size_t frame_len;
	int ret;

	if (resp_r != NULL)
		*resp_r = NULL;
	if (error_r != NULL)
		*error_r = NULL;
	if (parser->failed)
		goto error;
	imap_parser_release(parser);
	imap_parser_compact(parser);
	ret = imap_parser_frame(parser);
	if (ret < 0)
		goto fail;
	if (ret == 0)
		return IMAP_PARSE_NEED_MORE;

	frame_len = parser->scan - parser->in_start;
	frame = imap_parser_take_frame(parser);
	parser->fstate = IMAP_FRAME_START;
	parser->line_bytes = 0;
	if (frame[0] == '*')
		imap_parser_keep_excerpt(parser, frame, frame_len);
	if (imap_parser_parse(parser, frame, frame_len) < 0) {
		if (frame[0] != '*')
			goto fail;
		/* The frame ended at its line end, so the next response starts right after it: skip this one. */
		memset(&parser->resp, 0, sizeof(parser->resp));
		snprintf(parser->skipped, sizeof(parser->skipped), "%s in \"%s\"", parser->error, parser->excerpt);
		if (error_r != NULL)
			*error_r = parser->skipped;
		return IMAP_PARSE_SKIPPED;
	}
	if (resp_r != NULL)
		*resp_r = &parser->resp;
	return IMAP_PARSE_DONE;
fail:
	/* Sticky: after garbage there is no way to find where the next response starts. */
	parser->failed = true;
	memset(&parser->resp, 0, sizeof(parser->resp));
	imap_parser_buf_free(&parser->in);
	parser->in_start = parser->scan = 0;
error:
	if (error_r != NULL)
		*error_r = parser->error;
	return IMAP_PARSE_ERROR;
}

/* True if arg is an ATOM equal to s ignoring ASCII case. */
bool imap_arg_atom_equals(const struct imap_arg *arg, const char *s)
{
	return arg != NULL && arg->type == IMAP_ARG_ATOM && s != NULL &&
		imap_parser_equals_icase(arg->data, arg->len, s);
}

/* Returns the bytes of an ATOM, STRING or kept LITERAL as a C string, else NULL. */
const char *imap_arg_as_string(const struct imap_arg *arg)
{
	if (arg == NULL || arg->data == NULL)
		return NULL;
	switch (arg->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_STRING:
	case IMAP_ARG_LITERAL:
		return (const char *)arg->data;
	case IMAP_ARG_NIL:
	case IMAP_ARG_LIST:
		break;
	}
	return NULL;
}

/* Parses an all-digit ATOM into *value_r; -1 if empty, not digits or above UINT64_MAX. */
int imap_arg_as_u64(const struct imap_arg *arg, uint64_t *value_r)
{
	uint64_t value = 0;
	size_t i;

	if (arg == NULL || arg->type != IMAP_ARG_ATOM || arg->len == 0)
		return -1;
	for (i = 0; i < arg->len; i++) {
		unsigned char c = arg->data[i];

		if (c < '0' || c > '9' || value > (UINT64_MAX - (uint64_t)(c - '0')) / 10)
			return -1;
		value = value * 10 + (uint64_t)(c - '0');
	}
	*value_r = value;
	return 0;
}

/* Returns the value after the name matching name in a list of name/value pairs, or NULL. */
const struct imap_arg *imap_list_find(const struct imap_arg *list, const char *name)
{
	size_t i;

	if (list == NULL || list->type != IMAP_ARG_LIST)
		return NULL;
	for (i = 0; i + 1 < list->count; i += 2) {
		if (imap_arg_atom_equals(&list->list[i], name))
			return &list->list[i + 1];
	}
	return NULL;
}

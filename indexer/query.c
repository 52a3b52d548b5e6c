/* The officers' query language: a tokenizer and recursive-descent parser into a struct qnode tree. */
#include "query.h"
#include "prefixes.h"
#include "xapian_shim.h"
#include "buf.h"
#include "util.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define QUERY_MAX_LEN   8192
#define QUERY_MAX_DEPTH 64

/* The fields of the language; F_NONE is a bare word or phrase. */
enum field {
	F_NONE, F_FROM, F_TO, F_CC, F_BCC, F_PARTICIPANTS, F_SUBJECT, F_BODY, F_FILENAME, F_HAS,
	F_ACCOUNT, F_FOLDER, F_MSGID, F_MIMETYPE, F_AFTER, F_BEFORE, F_ON, F_LARGER, F_SMALLER,
	F_COUNT
};

/* Field names, indexed by enum field (F_NONE has none). */
static const char *const field_names[F_COUNT] = {
	[F_NONE] = NULL, [F_FROM] = "from", [F_TO] = "to", [F_CC] = "cc", [F_BCC] = "bcc",
	[F_PARTICIPANTS] = "participants", [F_SUBJECT] = "subject", [F_BODY] = "body",
	[F_FILENAME] = "filename", [F_HAS] = "has", [F_ACCOUNT] = "account", [F_FOLDER] = "folder",
	[F_MSGID] = "msgid", [F_MIMETYPE] = "mimetype", [F_AFTER] = "after", [F_BEFORE] = "before",
	[F_ON] = "on", [F_LARGER] = "larger", [F_SMALLER] = "smaller",
};

#define FIELD_LIST "from, to, cc, bcc, participants, subject, body, filename, has, account, folder, " \
	"msgid, mimetype, after, before, on, larger, smaller"

/* Prefixes of the address fields: free text, whole address, domain. */
static const struct {
	const char *text, *addr, *domain;
} addr_prefixes[] = {
	[F_FROM] = { PFX_FROM, PFX_FROM_ADDR, PFX_FROM_DOMAIN },
	[F_TO] = { PFX_TO, PFX_TO_ADDR, PFX_TO_DOMAIN },
	[F_CC] = { PFX_CC, PFX_CC_ADDR, PFX_CC_DOMAIN },
	[F_BCC] = { PFX_BCC, PFX_BCC_ADDR, PFX_BCC_DOMAIN },
};

enum tok_type { T_WORD, T_PHRASE, T_LPAREN, T_RPAREN, T_AND, T_OR, T_NOT, T_FIELD, T_EOF };

struct token {
	enum tok_type type;
	size_t pos;          /* byte offset in the query */
	char *text;          /* T_WORD, T_PHRASE: the value (phrases unescaped); T_NOT: "NOT" or "-" */
	enum field field;    /* T_FIELD: which; its value is the next token (word, phrase or "(") */
};

struct parser {
	const char *query;
	struct token *toks;
	size_t ntoks, cap, i;
	unsigned depth;      /* parentheses currently open */
	char *error;
};

/* ASCII-only classification: the language's syntax is ASCII, everything else passes through. */
static bool q_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool q_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool q_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* True for the bytes that end a word. */
static bool q_word_end(unsigned char c)
{
	return c == '\0' || q_space(c) || c == '(' || c == ')' || c == '"';
}

/* Lower-cases ASCII letters in place (UTF-8 bytes are left alone). */
static void q_lower(char *s)
{
	for (; *s; s++)
		if (*s >= 'A' && *s <= 'Z')
			*s = (char)(*s - 'A' + 'a');
}

/* The 1-based column of byte offset pos, counted in UTF-8 characters. */
static size_t q_column(const char *query, size_t pos)
{
	size_t col = 1;
	for (size_t k = 0; k < pos && query[k]; k++)
		if (((unsigned char)query[k] & 0xc0) != 0x80)
			col++;
	return col;
}

/* Records the first error: fmt is completed with " at column N" and an optional tail. */
static void __attribute__((format(printf, 4, 5)))
p_error(struct parser *p, size_t pos, const char *tail, const char *fmt, ...)
{
	if (p->error)
		return;
	struct buf b = { 0 };
	va_list ap;
	va_start(ap, fmt);
	char *msg;
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	buf_append_str(&b, msg ? msg : "query error");
	free(msg);
	buf_printf(&b, " at column %zu", q_column(p->query, pos));
	if (tail)
		buf_append_str(&b, tail);
	p->error = buf_steal(&b);
}

/* Appends a token; text (may be NULL) becomes the token's. */
static void p_push(struct parser *p, enum tok_type type, size_t pos, char *text, enum field f)
{
	if (p->ntoks == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 32;
		p->toks = xrealloc(p->toks, p->cap * sizeof(*p->toks));
	}
	p->toks[p->ntoks++] = (struct token){ .type = type, .pos = pos, .text = text, .field = f };
}

/* Looks a field name up (case-insensitive); F_NONE if it is not one. */
static enum field field_lookup(const char *name, size_t len)
{
	for (int f = F_NONE + 1; f < F_COUNT; f++)
		if (strlen(field_names[f]) == len && strncasecmp(field_names[f], name, len) == 0)
			return (enum field)f;
	return F_NONE;
}

/* Reads a "quoted phrase" starting at s[i] == '"'; returns the offset past it, 0 on error. */
static size_t lex_phrase(struct parser *p, size_t i)
{
	const char *s = p->query;
	struct buf b = { 0 };
	size_t j = i + 1;
	for (;;) {
		char c = s[j];
		if (c == '\0') {
			buf_free(&b);
			p_error(p, i, NULL, "unterminated quote");
			return 0;
		}
		if (c == '"')
			break;
		if (c == '\\' && (s[j + 1] == '"' || s[j + 1] == '\\')) {
			buf_append(&b, &s[j + 1], 1);
			j += 2;
			continue;
		}
		buf_append(&b, &c, 1);
		j++;
	}
	p_push(p, T_PHRASE, i, buf_steal(&b), F_NONE);
	return j + 1;
}

/* Splits the query into tokens; a field token is followed by its value's token. 0 or -1. */
static int lex(struct parser *p)
{
	const char *s = p->query;
	size_t i = 0;
	for (;;) {
		while (q_space((unsigned char)s[i]))
			i++;
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			break;
		if (c == '(' || c == ')') {
			p_push(p, c == '(' ? T_LPAREN : T_RPAREN, i, NULL, F_NONE);
			i++;
			continue;
		}
		if (c == '"') {
			if ((i = lex_phrase(p, i)) == 0)
				return -1;
			continue;
		}
		/* a leading '-' negates what follows it; a lone "-" (or "-)") is a word */
		if (c == '-' && s[i + 1] != '\0' && !q_space((unsigned char)s[i + 1]) && s[i + 1] != ')') {
			p_push(p, T_NOT, i, xstrdup("-"), F_NONE);
			i++;
			continue;
		}
		size_t j = i;
		while (!q_word_end((unsigned char)s[j]))
			j++;
		size_t len = j - i;
		if ((len == 3 && strncmp(s + i, "AND", 3) == 0) || (len == 2 && strncmp(s + i, "OR", 2) == 0) ||
		    (len == 3 && strncmp(s + i, "NOT", 3) == 0)) {
			enum tok_type t = s[i] == 'A' ? T_AND : s[i] == 'O' ? T_OR : T_NOT;
			p_push(p, t, i, xstrndup(s + i, len), F_NONE);
			i = j;
			continue;
		}
		const char *colon = memchr(s + i, ':', len);
		size_t k = colon ? (size_t)(colon - s) : j;   /* offset of the ':' */
		bool letters = colon && k > i;
		for (size_t m = i; letters && m < k; m++)
			letters = q_alpha((unsigned char)s[m]);
		/* "scheme://..." is a URL, not a field */
		if (letters && s[k + 1] == '/' && s[k + 2] == '/')
			letters = false;
		if (!letters) {
			p_push(p, T_WORD, i, xstrndup(s + i, len), F_NONE);
			i = j;
			continue;
		}
		enum field f = field_lookup(s + i, k - i);
		if (f == F_NONE) {
			char *name = xstrndup(s + i, k - i);
			p_error(p, i, " (fields are: " FIELD_LIST ")", "unknown field '%s'", name);
			free(name);
			return -1;
		}
		p_push(p, T_FIELD, i, NULL, f);
		if (k + 1 < j) {
			p_push(p, T_WORD, k + 1, xstrndup(s + k + 1, j - k - 1), F_NONE);
		} else if (s[j] != '"' && s[j] != '(') {
			p_error(p, i, NULL, "missing value after '%s:'", field_names[f]);
			return -1;
		}
		i = j;
	}
	p_push(p, T_EOF, i, NULL, F_NONE);
	return 0;
}

/* A new node of kind at pos; text (may be NULL) is copied. */
static struct qnode *node_new(enum qnode_kind kind, const char *prefix, const char *text, size_t pos)
{
	struct qnode *n = xcalloc(1, sizeof(*n));
	n->kind = kind;
	n->prefix = prefix;
	n->text = text ? xstrdup(text) : NULL;
	n->pos = pos;
	return n;
}

/* A binary node over l and r (owned), starting where l does. */
static struct qnode *node_bin(enum qnode_kind kind, struct qnode *l, struct qnode *r)
{
	struct qnode *n = node_new(kind, NULL, NULL, l->pos < r->pos ? l->pos : r->pos);
	n->left = l;
	n->right = r;
	return n;
}

/* A value-range node. */
static struct qnode *node_range(unsigned slot, double lo, double hi, size_t pos)
{
	struct qnode *n = node_new(QN_RANGE, NULL, NULL, pos);
	n->slot = slot;
	n->lo = lo;
	n->hi = hi;
	return n;
}

/* A NOT standing alone means "everything but": AND(ALL, NOT x), so NOT is only ever a right side of AND. */
static struct qnode *node_anchor_not(struct qnode *n)
{
	if (n->kind != QN_NOT)
		return n;
	return node_bin(QN_AND, node_new(QN_ALL, NULL, NULL, n->pos), n);
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
	y -= m <= 2;
	long long era = (y >= 0 ? y : y - 399) / 400;
	long long yoe = y - era * 400;
	long long doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* Reads between min and max digits at s[*i]; -1 if there are fewer than min. */
static int read_num(const char *s, size_t *i, int min, int max, int *v_r)
{
	int n = 0, v = 0;
	while (n < max && q_digit((unsigned char)s[*i])) {
		v = v * 10 + (s[*i] - '0');
		(*i)++;
		n++;
	}
	if (n < min)
		return -1;
	*v_r = v;
	return 0;
}

/* Parses YYYY-MM-DD or YYYY/MM/DD, optionally THH:MM[:SS] and Z or +-HH:MM. Sets the instant and the
   start of that day in the given zone (UTC seconds). 0, -1 for a malformed date, -2 for a day or
   time that does not exist. */
static int parse_date(const char *s, double *instant_r, double *day_r)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	size_t i = 0;
	int y, mo, d, h = 0, mi = 0, sec = 0, zh = 0, zm = 0, zsign = 1;
	if (read_num(s, &i, 4, 4, &y) < 0 || (s[i] != '-' && s[i] != '/'))
		return -1;
	char sep = s[i++];
	if (read_num(s, &i, 1, 2, &mo) < 0 || s[i++] != sep || read_num(s, &i, 1, 2, &d) < 0)
		return -1;
	if (s[i] == 'T' || s[i] == 't') {
		i++;
		if (read_num(s, &i, 2, 2, &h) < 0 || s[i++] != ':' || read_num(s, &i, 2, 2, &mi) < 0)
			return -1;
		if (s[i] == ':') {
			i++;
			if (read_num(s, &i, 2, 2, &sec) < 0)
				return -1;
		}
		if (s[i] == 'Z' || s[i] == 'z') {
			i++;
		} else if (s[i] == '+' || s[i] == '-') {
			zsign = s[i++] == '-' ? -1 : 1;
			if (read_num(s, &i, 2, 2, &zh) < 0 || s[i++] != ':' || read_num(s, &i, 2, 2, &zm) < 0)
				return -1;
		}
	}
	if (s[i] != '\0')
		return -1;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 ||
	    sec > 59 || zh > 23 || zm > 59)
		return -2;
	long long day = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400LL;
	long long offset = zsign * (zh * 3600LL + zm * 60LL);
	*day_r = (double)(day - offset);
	*instant_r = (double)(day + h * 3600LL + mi * 60LL + sec - offset);
	return 0;
}

/* Parses N with an optional K/M/G (binary, any case) and an optional B. 0 or -1. */
static int parse_size(const char *s, uint64_t *bytes_r)
{
	uint64_t v = 0, mult = 1;
	size_t i = 0;
	if (!q_digit((unsigned char)s[0]))
		return -1;
	for (; q_digit((unsigned char)s[i]); i++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	switch (s[i]) {
	case 'k': case 'K': mult = 1ULL << 10; i++; break;
	case 'm': case 'M': mult = 1ULL << 20; i++; break;
	case 'g': case 'G': mult = 1ULL << 30; i++; break;
	default: break;
	}
	if (s[i] == 'b' || s[i] == 'B')
		i++;
	if (s[i] != '\0' || v > UINT64_MAX / mult)
		return -1;
	*bytes_r = v * mult;
	return 0;
}

/* True if s has an ASCII white-space byte. */
static bool has_space(const char *s)
{
	for (; *s; s++)
		if (q_space((unsigned char)*s))
			return true;
	return false;
}

/* from/to/cc/bcc: an address, a domain (@x) or words of names and addresses. */
static struct qnode *map_address(struct parser *p, enum field f, const char *v, bool quoted, size_t pos)
{
	if (strchr(v, '@') == NULL || (quoted && has_space(v)))
		return node_new(quoted ? QN_PHRASE : QN_TEXT, addr_prefixes[f].text, v, pos);
	char *a = xstrdup(v);
	size_t len = strlen(a);
	bool wild = !quoted && len > 0 && a[len - 1] == '*';
	if (wild)
		a[--len] = '\0';
	char *s = a;
	if (s[0] == '<' && len > 1 && s[len - 1] == '>') {
		s[len - 1] = '\0';
		s++;
	}
	q_lower(s);
	struct qnode *n;
	if (s[0] == '@') {
		if (s[1] == '\0')
			p_error(p, pos, NULL, "missing domain after '@' in '%s:%s'", field_names[f], v);
		n = p->error ? NULL : node_new(wild ? QN_WILDCARD : QN_TERM, addr_prefixes[f].domain, s + 1, pos);
	} else {
		n = node_new(wild ? QN_WILDCARD : QN_TERM, addr_prefixes[f].addr, s, pos);
	}
	free(a);
	return n;
}

/* Turns one value of field f (a word, or a phrase if quoted) into a node; NULL on error. */
static struct qnode *map_value(struct parser *p, enum field f, const char *v, bool quoted, size_t pos)
{
	double instant, day;
	uint64_t size;
	int ret;
	if (quoted) {
		const char *c = v;
		while (q_space((unsigned char)*c))
			c++;
		if (*c == '\0') {
			p_error(p, pos, NULL, "empty phrase");
			return NULL;
		}
	}
	switch (f) {
	case F_NONE:
		return node_new(quoted ? QN_PHRASE : QN_TEXT, PFX_BODY, v, pos);
	case F_BODY: {
		struct qnode *n = node_new(quoted ? QN_PHRASE : QN_TEXT, PFX_BODY, v, pos);
		n->body_only = true;
		return n;
	}
	case F_SUBJECT:
		return node_new(quoted ? QN_PHRASE : QN_TEXT, PFX_SUBJECT, v, pos);
	case F_FILENAME:
		return node_new(quoted ? QN_PHRASE : QN_TEXT, PFX_FILENAME, v, pos);
	case F_FROM:
	case F_TO:
	case F_CC:
	case F_BCC:
		return map_address(p, f, v, quoted, pos);
	case F_PARTICIPANTS: {
		struct qnode *n = NULL;
		for (enum field a = F_FROM; a <= F_BCC; a++) {
			struct qnode *x = map_address(p, a, v, quoted, pos);
			if (x == NULL) {
				query_free(&n);
				return NULL;
			}
			n = n ? node_bin(QN_OR, n, x) : x;
		}
		return n;
	}
	case F_HAS:
		if (strcasecmp(v, "attachment") == 0)
			return node_new(QN_TERM, PFX_HAS, "attachment", pos);
		p_error(p, pos, " (supported: has:attachment)", "unsupported value '%s' for has:", v);
		return NULL;
	case F_ACCOUNT:
		return node_new(QN_TERM, PFX_ACCOUNT, v, pos);
	case F_FOLDER:
		return node_new(QN_TERM, PFX_FOLDER, strcasecmp(v, "inbox") == 0 ? "INBOX" : v, pos);
	case F_MSGID: {
		char *m = xstrdup(v), *s = m;
		size_t len = strlen(s);
		bool wild = !quoted && len > 0 && s[len - 1] == '*';
		if (wild)
			s[--len] = '\0';
		if (s[0] == '<') {
			s++;
			len--;
		}
		if (len > 0 && s[len - 1] == '>')
			s[--len] = '\0';
		struct qnode *n = NULL;
		if (len == 0)
			p_error(p, pos, NULL, "empty message-id '%s'", v);
		else
			n = node_new(wild ? QN_WILDCARD : QN_TERM, PFX_MSGID, s, pos);
		free(m);
		return n;
	}
	case F_MIMETYPE: {
		char *m = xstrdup(v);
		size_t len = strlen(m);
		bool wild = !quoted && len > 1 && m[len - 1] == '*';
		if (wild)
			m[--len] = '\0';
		q_lower(m);
		struct qnode *n = NULL;
		const char *slash = strchr(m, '/');
		if (!wild && (slash == NULL || slash == m || slash[1] == '\0' || has_space(m)))
			p_error(p, pos, " (expected type/subtype, e.g. application/pdf)", "invalid MIME type '%s'", v);
		else
			n = node_new(wild ? QN_WILDCARD : QN_TERM, PFX_MIMETYPE, m, pos);
		free(m);
		return n;
	}
	case F_AFTER:
	case F_BEFORE:
	case F_ON:
		ret = parse_date(v, &instant, &day);
		if (ret == -1) {
			p_error(p, pos, " (expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM|-HH:MM])",
				"invalid date '%s'", v);
			return NULL;
		}
		if (ret == -2) {
			p_error(p, pos, " (no such day or time)", "invalid date '%s'", v);
			return NULL;
		}
		if (f == F_AFTER)
			return node_range(XS_SLOT_DATE, instant, INFINITY, pos);
		if (f == F_BEFORE)
			return node_range(XS_SLOT_DATE, -INFINITY, instant - 1, pos);
		return node_range(XS_SLOT_DATE, day, day + 86399, pos);
	case F_LARGER:
	case F_SMALLER:
		if (parse_size(v, &size) < 0) {
			p_error(p, pos, " (expected a number of bytes with an optional K, M or G suffix)",
				"invalid size '%s'", v);
			return NULL;
		}
		if (f == F_LARGER)
			return node_range(XS_SLOT_SIZE, (double)size, INFINITY, pos);
		return node_range(XS_SLOT_SIZE, 0, size == 0 ? -1 : (double)(size - 1), pos);
	case F_COUNT:
		break;
	}
	p_error(p, pos, NULL, "internal error: no field %d", (int)f);
	return NULL;
}

static struct qnode *parse_query(struct parser *p, enum field ctx);

/* The current token. */
static const struct token *p_peek(const struct parser *p)
{
	return &p->toks[p->i];
}

/* True if the current token ends an operand list (end of input or ')'). */
static bool p_at_end(const struct parser *p)
{
	enum tok_type t = p_peek(p)->type;
	return t == T_EOF || t == T_RPAREN;
}

/* "(" query ")" with the field context ctx; the current token is the "(". */
static struct qnode *parse_group(struct parser *p, enum field ctx)
{
	size_t open = p_peek(p)->pos;
	if (p->depth >= QUERY_MAX_DEPTH) {
		p_error(p, open, NULL, "parentheses nested deeper than %d", QUERY_MAX_DEPTH);
		return NULL;
	}
	p->i++;
	if (p_peek(p)->type == T_RPAREN) {
		p_error(p, open, NULL, "empty parentheses");
		return NULL;
	}
	if (p_peek(p)->type == T_EOF) {
		p_error(p, open, NULL, "unbalanced '('");
		return NULL;
	}
	p->depth++;
	struct qnode *n = parse_query(p, ctx);
	p->depth--;
	if (n == NULL)
		return NULL;
	if (p_peek(p)->type != T_RPAREN) {
		query_free(&n);
		p_error(p, open, NULL, "unbalanced '('");
		return NULL;
	}
	p->i++;
	return n;
}

/* primary := "(" query ")" | field ":" value | word | "phrase". */
static struct qnode *parse_primary(struct parser *p, enum field ctx)
{
	const struct token *t = p_peek(p);
	switch (t->type) {
	case T_LPAREN:
		return parse_group(p, ctx);
	case T_WORD:
	case T_PHRASE:
		p->i++;
		return map_value(p, ctx, t->text, t->type == T_PHRASE, t->pos);
	case T_FIELD: {
		enum field f = t->field;
		p->i++;
		const struct token *v = p_peek(p);
		if (v->type == T_LPAREN)
			return parse_group(p, f);
		if (v->type == T_WORD || v->type == T_PHRASE) {
			p->i++;
			return map_value(p, f, v->text, v->type == T_PHRASE, v->pos);
		}
		p_error(p, t->pos, NULL, "missing value after '%s:'", field_names[f]);
		return NULL;
	}
	case T_AND:
	case T_OR:
		p_error(p, t->pos, NULL, "'%s' with nothing before it", t->text);
		return NULL;
	case T_RPAREN:
		p_error(p, t->pos, NULL, "unbalanced ')'");
		return NULL;
	case T_NOT:
	case T_EOF:
		break;
	}
	p_error(p, t->pos, NULL, "unexpected end of query");
	return NULL;
}

/* unary := ( NOT | - ) unary | primary; pairs of negations cancel out. */
static struct qnode *parse_unary(struct parser *p, enum field ctx)
{
	bool neg = false;
	size_t pos = p_peek(p)->pos;
	while (p_peek(p)->type == T_NOT) {
		const struct token *t = p_peek(p);
		p->i++;
		neg = !neg;
		if (p_at_end(p)) {
			p_error(p, t->pos, NULL, "'%s' with nothing after it", t->text);
			return NULL;
		}
	}
	struct qnode *n = parse_primary(p, ctx);
	if (n == NULL || !neg)
		return n;
	struct qnode *x = node_new(QN_NOT, NULL, NULL, pos);
	x->left = n;
	return x;
}

/* orexpr := unary ( OR unary )*. */
static struct qnode *parse_or(struct parser *p, enum field ctx)
{
	struct qnode *n = parse_unary(p, ctx);
	while (n && p_peek(p)->type == T_OR) {
		const struct token *t = p_peek(p);
		p->i++;
		if (p_at_end(p)) {
			p_error(p, t->pos, NULL, "'OR' with nothing after it");
			query_free(&n);
			return NULL;
		}
		struct qnode *r = parse_unary(p, ctx);
		if (r == NULL) {
			query_free(&n);
			return NULL;
		}
		n = node_bin(QN_OR, node_anchor_not(n), node_anchor_not(r));
	}
	return n;
}

/* query := orexpr ( [AND] orexpr )*: the positive operands in order, then the negations subtracted
   from them (from ALL when there is nothing positive). */
static struct qnode *parse_query(struct parser *p, enum field ctx)
{
	struct qnode *pos = NULL, *neg = NULL;   /* neg: a chain of NOT nodes linked through ->right */
	struct qnode **neg_tail = &neg;
	bool any = false;
	while (!p_at_end(p)) {
		const struct token *t = p_peek(p);
		if (t->type == T_AND) {
			if (!any) {
				p_error(p, t->pos, NULL, "'AND' with nothing before it");
				goto fail;
			}
			p->i++;
			if (p_at_end(p)) {
				p_error(p, t->pos, NULL, "'AND' with nothing after it");
				goto fail;
			}
		}
		struct qnode *x = parse_or(p, ctx);
		if (x == NULL)
			goto fail;
		any = true;
		if (x->kind == QN_NOT) {
			*neg_tail = x;
			neg_tail = &x->right;
		} else {
			pos = pos ? node_bin(QN_AND, pos, x) : x;
		}
	}
	if (!any) {
		if (p_peek(p)->type == T_RPAREN)
			p_error(p, p_peek(p)->pos, NULL, "unbalanced ')'");
		else
			p_error(p, p_peek(p)->pos, NULL, "empty query");
		return NULL;
	}
	while (neg) {
		struct qnode *x = neg;
		neg = x->right;
		x->right = NULL;
		pos = node_bin(QN_AND, pos ? pos : node_new(QN_ALL, NULL, NULL, x->pos), x);
	}
	return pos;
fail:
	query_free(&pos);
	while (neg) {
		struct qnode *x = neg;
		neg = x->right;
		x->right = NULL;
		query_free(&x);
	}
	return NULL;
}

struct qnode *query_parse(const char *text, char **error_r)
{
	struct parser p = { .query = text ? text : "" };
	struct qnode *n = NULL;
	size_t len = strnlen(p.query, QUERY_MAX_LEN + 1);
	*error_r = NULL;
	if (len > QUERY_MAX_LEN) {
		*error_r = xasprintf("query too long (more than %d bytes)", QUERY_MAX_LEN);
		return NULL;
	}
	if (lex(&p) == 0) {
		if (p.ntoks == 1)
			p.error = xstrdup("empty query");
		else if ((n = parse_query(&p, F_NONE)) != NULL && p_peek(&p)->type != T_EOF) {
			p_error(&p, p_peek(&p)->pos, NULL, "unbalanced ')'");
			query_free(&n);
		}
	}
	for (size_t k = 0; k < p.ntoks; k++)
		free(p.toks[k].text);
	free(p.toks);
	if (n == NULL)
		*error_r = p.error ? p.error : xstrdup("invalid query");
	else
		free(p.error);
	return n;
}

/* Appends a number the way query_describe shows it. */
static void describe_num(struct buf *b, double v)
{
	if (isinf(v))
		buf_append_str(b, v < 0 ? "-inf" : "inf");
	else
		buf_printf(b, "%.0f", v);
}

/* Appends the description of n. */
static void describe(struct buf *b, const struct qnode *n)
{
	static const char *const names[] = {
		[QN_AND] = "AND", [QN_OR] = "OR", [QN_NOT] = "NOT", [QN_TEXT] = "TEXT", [QN_PHRASE] = "PHRASE",
		[QN_TERM] = "TERM", [QN_WILDCARD] = "WILDCARD", [QN_RANGE] = "RANGE", [QN_ALL] = "ALL",
	};
	if (n == NULL) {
		buf_append_str(b, "NULL");
		return;
	}
	if ((unsigned)n->kind > QN_ALL) {
		buf_append_str(b, "?");
		return;
	}
	buf_append_str(b, names[n->kind]);
	switch (n->kind) {
	case QN_AND:
	case QN_OR:
		buf_append_str(b, "(");
		describe(b, n->left);
		buf_append_str(b, ",");
		describe(b, n->right);
		buf_append_str(b, ")");
		break;
	case QN_NOT:
		buf_append_str(b, "(");
		describe(b, n->left);
		buf_append_str(b, ")");
		break;
	case QN_TEXT:
	case QN_PHRASE:
	case QN_TERM:
	case QN_WILDCARD:
		buf_printf(b, "(%s:%s%s)", n->body_only ? "body" : n->prefix ? n->prefix : "", n->text ? n->text : "",
			   n->kind == QN_WILDCARD ? "*" : "");
		break;
	case QN_RANGE:
		buf_printf(b, "(%u:[", n->slot);
		describe_num(b, n->lo);
		buf_append_str(b, ",");
		describe_num(b, n->hi);
		buf_append_str(b, "])");
		break;
	case QN_ALL:
		break;
	}
}

char *query_describe(const struct qnode *n)
{
	struct buf b = { 0 };
	describe(&b, n);
	return buf_steal(&b);
}

void query_free(struct qnode **n)
{
	if (n == NULL || *n == NULL)
		return;
	query_free(&(*n)->left);
	query_free(&(*n)->right);
	free((*n)->text);
	free(*n);
	*n = NULL;
}

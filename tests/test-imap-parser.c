/* Unit tests of lib/imap-parser.c: every case is fed whole, byte by byte and split in two, then fuzzed. */
#include "imap-parser.h"
#include "unit.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>

/* A growing NUL-terminated string. */
struct sb {
	char *s;
	size_t len, cap;
};

/* Appends n bytes to b. */
static void sb_add(struct sb *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 256;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL)
			abort();
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* Appends a NUL-terminated string to b. */
static void sb_str(struct sb *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* Appends printf output to b. */
__attribute__((format(printf, 2, 3)))
static void sb_printf(struct sb *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	sb_add(b, tmp, n < 0 ? 0 : (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* Appends bytes readably: non-printables as \xHH; with quote != 0 also escapes quote and backslash. */
static void sb_escaped(struct sb *b, const unsigned char *p, size_t n, char quote)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] >= 0x7f)
			sb_printf(b, "\\x%02x", p[i]);
		else if (quote != 0 && (p[i] == (unsigned char)quote || p[i] == '\\'))
			sb_printf(b, "\\%c", p[i]);
		else
			sb_add(b, &p[i], 1);
	}
}

static void dump_args(struct sb *b, const struct imap_arg *args, size_t count);

/* Broken invariants seen by the dumpers; each also leaves a "!..." mark in the log. */
static unsigned dump_broken;

/* Appends a mark for a broken invariant and counts it. */
static void sb_broken(struct sb *b, const char *mark)
{
	dump_broken++;
	sb_str(b, mark);
}

/* Appends one argument: atoms raw, strings in '', literals as {n}'...', lists in (); "!..." marks
   a broken invariant so that it shows up in the comparison. */
static void dump_arg(struct sb *b, const struct imap_arg *a)
{
	switch (a->type) {
	case IMAP_ARG_ATOM:
		if (a->data == NULL || a->len == 0)
			sb_broken(b, "!EMPTYATOM");
		else
			sb_escaped(b, a->data, a->len, 0);
		break;
	case IMAP_ARG_STRING:
		sb_str(b, "'");
		sb_escaped(b, a->data, a->len, '\'');
		sb_str(b, "'");
		break;
	case IMAP_ARG_LITERAL:
		if (a->literal8)
			sb_str(b, "~");
		if (a->oversize) {
			sb_printf(b, "{%zu,oversize}", a->len);
			if (a->data != NULL)
				sb_broken(b, "!DATA");
		} else {
			sb_printf(b, "{%zu}'", a->len);
			sb_escaped(b, a->data, a->len, '\'');
			sb_str(b, "'");
		}
		break;
	case IMAP_ARG_NIL:
		sb_str(b, "NIL");
		break;
	case IMAP_ARG_LIST:
		sb_str(b, "(");
		dump_args(b, a->list, a->count);
		sb_str(b, ")");
		if (a->data != NULL || a->len != 0)
			sb_broken(b, "!LIST");
		break;
	default:
		sb_broken(b, "!TYPE");
	}
	if (a->type != IMAP_ARG_LIST && a->type != IMAP_ARG_NIL && a->data != NULL && a->data[a->len] != '\0')
		sb_broken(b, "!NUL");
	if (a->type != IMAP_ARG_LITERAL && (a->oversize || a->literal8))
		sb_broken(b, "!FLAGS");
}

/* Appends count arguments separated by spaces. */
static void dump_args(struct sb *b, const struct imap_arg *args, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		if (i > 0)
			sb_str(b, " ");
		dump_arg(b, &args[i]);
	}
}

/* Appends one response: "tag|*|+ [STATUS] [[code]=(args)|=?] [|text|] [args]". */
static void dump_response(struct sb *b, const struct imap_response *r)
{
	static const char *const status_names[] = { "", " OK", " NO", " BAD", " BYE", " PREAUTH" };

	switch (r->kind) {
	case IMAP_RESPONSE_TAGGED:
		if (r->tag != NULL)
			sb_str(b, r->tag);
		else
			sb_broken(b, "!NOTAG");
		break;
	case IMAP_RESPONSE_UNTAGGED:
		sb_str(b, "*");
		if (r->tag != NULL)
			sb_broken(b, "!TAG");
		break;
	case IMAP_RESPONSE_CONTINUATION:
		sb_str(b, "+");
		if (r->tag != NULL)
			sb_broken(b, "!TAG");
		break;
	}
	sb_str(b, status_names[r->status]);
	if (r->code_raw != NULL) {
		sb_str(b, " [");
		sb_escaped(b, (const unsigned char *)r->code_raw, strlen(r->code_raw), 0);
		sb_str(b, "]");
		if (r->code_args != NULL) {
			sb_str(b, "=(");
			dump_args(b, r->code_args, r->code_count);
			sb_str(b, ")");
		} else {
			sb_str(b, "=?");
			if (r->code_count != 0)
				sb_broken(b, "!COUNT");
		}
	} else if (r->code_args != NULL || r->code_count != 0) {
		sb_broken(b, " !CODE");
	}
	if (r->text == NULL) {
		sb_broken(b, " !NOTEXT");
		return;
	}
	if (r->status != IMAP_STATUS_NONE || r->kind == IMAP_RESPONSE_CONTINUATION) {
		sb_str(b, " |");
		sb_escaped(b, (const unsigned char *)r->text, strlen(r->text), 0);
		sb_str(b, "|");
		if (r->count != 0 || r->args != NULL)
			sb_broken(b, " !ARGS");
	} else {
		if (r->count == 0 || r->args == NULL)
			sb_broken(b, " !NOARGS");
		sb_str(b, " ");
		dump_args(b, r->args, r->count);
	}
}

/* Called on every response of a check; index counts the responses of one feed. */
typedef void response_fn(const struct imap_response *resp, unsigned index, void *ctx);

/* Chunk size for feed() that asks for random chunks drawn from *feed_rng. */
#define FEED_RANDOM ((size_t)-1)
static uint64_t feed_rng = 0x9e3779b97f4a7c15u;

/* Returns the next number of a fixed-seed xorshift generator. */
static uint32_t test_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return (uint32_t)(*state >> 16);
}

/* Feeds in to a new parser all at once (chunk 0 and split 0), in chunks of chunk bytes (FEED_RANDOM:
   random sizes from 1 to 256), or in two pushes split at byte split; after each push takes every
   response. Returns the log (to free): one line per response, then "NEED_MORE" or "ERROR: ...". */
static char *feed(const unsigned char *in, size_t len, const struct imap_parser_limits *lim, size_t chunk,
		  size_t split, response_fn *fn, void *ctx)
{
	struct imap_parser *parser = imap_parser_new(lim);
	struct sb log = { 0 };
	enum imap_parse_result ret = IMAP_PARSE_NEED_MORE;
	const char *error = NULL;
	unsigned index = 0;
	size_t off = 0;

	while (off < len && ret != IMAP_PARSE_ERROR) {
		size_t n = len - off, want = chunk;
		const struct imap_response *resp;

		if (chunk == FEED_RANDOM)
			want = 1 + test_rand(&feed_rng) % (1u << (test_rand(&feed_rng) % 9));
		if (want > 0 && n > want)
			n = want;
		if (split > 0 && off < split && n > split - off)
			n = split - off;
		imap_parser_push(parser, in + off, n);
		off += n;
		while ((ret = imap_parser_next(parser, &resp, &error)) == IMAP_PARSE_DONE || ret == IMAP_PARSE_SKIPPED) {
			if (ret == IMAP_PARSE_SKIPPED) {
				/* a whole untagged response that does not parse: dropped, the next one follows */
				sb_str(&log, "SKIPPED: ");
				if (error == NULL || error[0] == '\0' || resp != NULL)
					sb_broken(&log, "!NOERROR");
				else
					sb_str(&log, error);
				sb_str(&log, "\n");
				if (++index > len) {
					sb_broken(&log, "!LOOP\n");
					break;
				}
				continue;
			}
			if (resp == NULL) {
				sb_broken(&log, "!NULLRESP\n");
				break;
			}
			dump_response(&log, resp);
			sb_str(&log, "\n");
			if (fn != NULL)
				fn(resp, index, ctx);
			/* Every response consumes at least one byte: more would be a loop. */
			if (++index > len) {
				sb_broken(&log, "!LOOP\n");
				break;
			}
		}
		if (ret != IMAP_PARSE_DONE && ret != IMAP_PARSE_NEED_MORE && ret != IMAP_PARSE_ERROR &&
		    ret != IMAP_PARSE_SKIPPED) {
			sb_broken(&log, "!RESULT\n");
			break;
		}
	}
	if (ret == IMAP_PARSE_ERROR) {
		const struct imap_response *resp;
		const char *again = NULL;

		sb_str(&log, "ERROR: ");
		if (error == NULL || error[0] == '\0')
			sb_broken(&log, "!NOERROR");
		else
			sb_str(&log, error);
		/* The error is sticky, whatever comes next. */
		imap_parser_push(parser, "* 1 EXISTS\r\n", 12);
		if (imap_parser_next(parser, &resp, &again) != IMAP_PARSE_ERROR || resp != NULL ||
		    again == NULL || error == NULL || strcmp(again, error) != 0)
			sb_broken(&log, " !NOTSTICKY");
	} else {
		sb_str(&log, "NEED_MORE");
		if (imap_parser_pending(parser) > len)
			sb_broken(&log, " !PENDING");
	}
	imap_parser_free(&parser);
	if (parser != NULL)
		sb_broken(&log, " !NOTFREED");
	return log.s;
}

/* Parses in whole and byte by byte (and, when short, split in two at every position), checks that
   all give the same result and, if expected is not NULL, that it is expected. fn sees the
   responses of the whole and the byte-by-byte runs. */
static void check_parse(int line, const void *in, size_t len, const struct imap_parser_limits *lim,
			const char *expected, response_fn *fn, void *ctx)
{
	char *whole = feed(in, len, lim, 0, 0, fn, ctx);
	char *bytes = feed(in, len, lim, 1, 0, fn, ctx);
	size_t split;

	if (strcmp(whole, bytes) != 0)
		fprintf(stderr, "test at line %d: whole and byte-by-byte differ\n", line);
	CHECK_STR(bytes, whole);
	if (len <= 4096) {
		int bad = 0;

		for (split = 1; split < len; split++) {
			char *two = feed(in, len, lim, 0, split, NULL, NULL);

			if (strcmp(two, whole) != 0 && bad++ == 0)
				fprintf(stderr, "test at line %d: split at %zu differs:\n%s\n", line, split, two);
			free(two);
		}
		CHECK(bad == 0);
	}
	if (expected != NULL) {
		if (strcmp(whole, expected) != 0)
			fprintf(stderr, "test at line %d: unexpected result\n", line);
		CHECK_STR(whole, expected);
	}
	free(whole);
	free(bytes);
}

#define TLF(lim, lit, exp, fn, ctx) check_parse(__LINE__, lit, sizeof(lit) - 1, lim, exp, fn, ctx)
#define TL(lim, lit, exp) TLF(lim, lit, exp, NULL, NULL)
#define TF(lit, exp, fn, ctx) TLF(NULL, lit, exp, fn, ctx)
#define T(lit, exp) TLF(NULL, lit, exp, NULL, NULL)

/* The value of a list's item as a number, or UINT64_MAX. */
static uint64_t item_u64(const struct imap_arg *list, const char *name)
{
	uint64_t v;

	return imap_arg_as_u64(imap_list_find(list, name), &v) == 0 ? v : UINT64_MAX;
}

/* Checks the struct view of the Dovecot greeting. */
static void greeting_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	(void)ctx;
	CHECK(index == 0);
	CHECK(r->kind == IMAP_RESPONSE_UNTAGGED && r->status == IMAP_STATUS_OK);
	CHECK(r->code_count == 9);
	CHECK(imap_arg_atom_equals(&r->code_args[0], "capability"));
	CHECK(imap_arg_atom_equals(&r->code_args[8], "AUTH=PLAIN"));
	CHECK(!imap_arg_atom_equals(&r->code_args[8], "AUTH=PLAI"));
	CHECK(!imap_arg_atom_equals(&r->code_args[8], "AUTH=PLAINX"));
	CHECK_STR(r->code_raw, "CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN");
	CHECK_STR(r->text, "Dovecot (Debian) ready.");
}

/* Dovecot's greeting and a capability response after login. */
static void test_greeting(void)
{
	TF("* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN] Dovecot (Debian) ready.\r\n",
	   "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN]="
	   "(CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN) |Dovecot (Debian) ready.|\n"
	   "NEED_MORE", greeting_fn, NULL);
	T("* PREAUTH [CAPABILITY IMAP4rev2] Logged in as joe\r\n"
	  "* CAPABILITY IMAP4rev1 IMAP4rev2 UTF8=ACCEPT AUTH=PLAIN\r\n"
	  "* ENABLED UTF8=ACCEPT\r\n"
	  "* ID (\"name\" \"Dovecot\" \"version\" NIL)\r\n"
	  "* NAMESPACE ((\"\" \"/\")) NIL ((\"Shared/\" \"/\"))\r\n"
	  "A1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 MOVE] Logged in\r\n",
	  "* PREAUTH [CAPABILITY IMAP4rev2]=(CAPABILITY IMAP4rev2) |Logged in as joe|\n"
	  "* CAPABILITY IMAP4rev1 IMAP4rev2 UTF8=ACCEPT AUTH=PLAIN\n"
	  "* ENABLED UTF8=ACCEPT\n"
	  "* ID ('name' 'Dovecot' 'version' NIL)\n"
	  "* NAMESPACE (('' '/')) NIL (('Shared/' '/'))\n"
	  "A1 OK [CAPABILITY IMAP4rev1 IMAP4rev2 MOVE]=(CAPABILITY IMAP4rev1 IMAP4rev2 MOVE) |Logged in|\n"
	  "NEED_MORE");
}

/* Checks the literal mailbox name of the LIST transcript. */
static void list_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	(void)ctx;
	if (index == 3) {
		CHECK(r->count == 4 && r->args[3].type == IMAP_ARG_LITERAL);
		CHECK_STR(imap_arg_as_string(&r->args[3]), "Weird \"name");
		CHECK(r->args[1].type == IMAP_ARG_LIST && r->args[1].count == 3);
		CHECK(imap_arg_atom_equals(&r->args[1].list[1], "\\trash"));
	}
	if (index == 6) {
		CHECK(r->args[2].type == IMAP_ARG_NIL);
		CHECK(imap_arg_as_string(&r->args[2]) == NULL);
		CHECK(r->args[1].type == IMAP_ARG_LIST && r->args[1].count == 0);
	}
}

/* LIST with flags, SPECIAL-USE, quoted, literal, 8-bit and bracketed names; LIST-STATUS. */
static void test_list(void)
{
	TF("* LIST (\\HasNoChildren) \"/\" INBOX\r\n"
	   "* LIST (\\Noselect \\HasChildren) \"/\" \"Public Folders\"\r\n"
	   "* LIST (\\HasNoChildren \\Sent) \"/\" Sent\r\n"
	   "* LIST (\\HasNoChildren \\Trash \\UnMarked) \".\" {11}\r\nWeird \"name\r\n"
	   "* LIST (\\HasNoChildren \\Junk) \"/\" \"[Gmail]/Spam\"\r\n"
	   "* LIST (\\All \\HasNoChildren) \"/\" [Gmail]/All\r\n"
	   "* LIST () NIL \"Entw\xc3\xbcrfe\"\r\n"
	   "* LIST (\\noselect) \"\\\\\" \"a\\\"b\\\\c\"\r\n"
	   "A2 OK List completed (0.001 + 0.000 secs).\r\n",
	   "* LIST (\\HasNoChildren) '/' INBOX\n"
	   "* LIST (\\Noselect \\HasChildren) '/' 'Public Folders'\n"
	   "* LIST (\\HasNoChildren \\Sent) '/' Sent\n"
	   "* LIST (\\HasNoChildren \\Trash \\UnMarked) '.' {11}'Weird \"name'\n"
	   "* LIST (\\HasNoChildren \\Junk) '/' '[Gmail]/Spam'\n"
	   "* LIST (\\All \\HasNoChildren) '/' [Gmail]/All\n"
	   "* LIST () NIL 'Entw\\xc3\\xbcrfe'\n"
	   "* LIST (\\noselect) '\\\\' 'a\"b\\\\c'\n"
	   "A2 OK |List completed (0.001 + 0.000 secs).|\n"
	   "NEED_MORE", list_fn, NULL);
	T("* LIST () \".\" \"INBOX\"\r\n"
	  "* STATUS \"INBOX\" (MESSAGES 17 UIDNEXT 4392 UNSEEN 2)\r\n"
	  "* LIST (\\HasChildren) \".\" \"Archive\"\r\n"
	  "* STATUS \"Archive\" (MESSAGES 0 UIDNEXT 1 UNSEEN 0)\r\n"
	  "* LIST (\\HasNoChildren) \".\" {7}\r\nA \"b\" c\r\n"
	  "* STATUS {7}\r\nA \"b\" c (MESSAGES 3)\r\n"
	  "A3 OK List completed.\r\n",
	  "* LIST () '.' 'INBOX'\n"
	  "* STATUS 'INBOX' (MESSAGES 17 UIDNEXT 4392 UNSEEN 2)\n"
	  "* LIST (\\HasChildren) '.' 'Archive'\n"
	  "* STATUS 'Archive' (MESSAGES 0 UIDNEXT 1 UNSEEN 0)\n"
	  "* LIST (\\HasNoChildren) '.' {7}'A \"b\" c'\n"
	  "* STATUS {7}'A \"b\" c' (MESSAGES 3)\n"
	  "A3 OK |List completed.|\n"
	  "NEED_MORE");
}

/* Checks STATUS values through imap_list_find and imap_arg_as_u64. */
static void status_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	(void)ctx;
	if (index != 0)
		return;
	CHECK(imap_arg_atom_equals(&r->args[0], "STATUS"));
	CHECK_STR(imap_arg_as_string(&r->args[1]), "blurdybloop");
	CHECK(item_u64(&r->args[2], "messages") == 231);
	CHECK(item_u64(&r->args[2], "UIDNEXT") == 44292);
	CHECK(item_u64(&r->args[2], "HIGHESTMODSEQ") == 7011231777);
	CHECK(imap_list_find(&r->args[2], "UNSEEN") == NULL);
	CHECK(imap_list_find(&r->args[2], "44292") == NULL); /* values are not names */
	CHECK(imap_list_find(&r->args[1], "MESSAGES") == NULL); /* not a list */
	CHECK(imap_list_find(NULL, "MESSAGES") == NULL);
}

/* STATUS. */
static void test_status(void)
{
	TF("* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777)\r\n"
	   "A042 OK STATUS completed\r\n",
	   "* STATUS blurdybloop (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777)\n"
	   "A042 OK |STATUS completed|\n"
	   "NEED_MORE", status_fn, NULL);
}

/* Checks the numbers in the EXAMINE response codes. */
static void examine_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	uint64_t v = 0;

	(void)ctx;
	if (index == 1) {
		CHECK(r->code_count == 2 && r->code_args[1].type == IMAP_ARG_LIST && r->code_args[1].count == 0);
	} else if (index == 5) {
		CHECK(imap_arg_atom_equals(&r->code_args[0], "UIDVALIDITY"));
		CHECK(imap_arg_as_u64(&r->code_args[1], &v) == 0 && v == 3857529045u);
	} else if (index == 7) {
		CHECK(imap_arg_as_u64(&r->code_args[1], &v) == 0 && v == 715194045007u);
	} else if (index == 8) {
		CHECK(r->kind == IMAP_RESPONSE_TAGGED && r->status == IMAP_STATUS_OK);
		CHECK_STR(r->tag, "A142");
		CHECK(r->code_count == 1 && imap_arg_atom_equals(&r->code_args[0], "read-only"));
	}
}

/* EXAMINE with the usual response codes. */
static void test_examine(void)
{
	TF("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
	   "* OK [PERMANENTFLAGS ()] Read-only mailbox.\r\n"
	   "* 172 EXISTS\r\n"
	   "* 1 RECENT\r\n"
	   "* OK [UNSEEN 12] Message 12 is first unseen\r\n"
	   "* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
	   "* OK [UIDNEXT 4392] Predicted next UID\r\n"
	   "* OK [HIGHESTMODSEQ 715194045007] Highest\r\n"
	   "A142 OK [READ-ONLY] EXAMINE completed (0.002 + 0.000 secs).\r\n",
	   "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\n"
	   "* OK [PERMANENTFLAGS ()]=(PERMANENTFLAGS ()) |Read-only mailbox.|\n"
	   "* 172 EXISTS\n"
	   "* 1 RECENT\n"
	   "* OK [UNSEEN 12]=(UNSEEN 12) |Message 12 is first unseen|\n"
	   "* OK [UIDVALIDITY 3857529045]=(UIDVALIDITY 3857529045) |UIDs valid|\n"
	   "* OK [UIDNEXT 4392]=(UIDNEXT 4392) |Predicted next UID|\n"
	   "* OK [HIGHESTMODSEQ 715194045007]=(HIGHESTMODSEQ 715194045007) |Highest|\n"
	   "A142 OK [READ-ONLY]=(READ-ONLY) |EXAMINE completed (0.002 + 0.000 secs).|\n"
	   "NEED_MORE", examine_fn, NULL);
}

/* Response codes: lists, sets, strings, codes that do not parse, no code at all. */
static void test_codes(void)
{
	T("* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)] Limited\r\n"
	  "A3 OK [COPYUID 38505 304,319:320 3956:3958] Done\r\n"
	  "A4 NO [BADCHARSET (\"a\" UTF-8)] charset\r\n"
	  "* OK [ALERT] System shutdown in 10 minutes\r\n"
	  "A5 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"
	  "* OK [REFERRAL imap://user;AUTH=GSSAPI@SERVER2/] Server not accepting\r\n"
	  "* NO [ALERT \"unterminated] text\r\n"
	  "* NO [BADCHARSET (\"x]\")] quoted bracket\r\n"
	  "* OK [] empty\r\n"
	  "* OK [ALERT (] unbalanced\r\n"
	  "* OK [ALERT no closing bracket\r\n"
	  "A6 OK [READ-WRITE]\r\n"
	  "A7 OK [CLOSED]done\r\n",
	  "* OK [PERMANENTFLAGS (\\Seen \\Deleted \\*)]=(PERMANENTFLAGS (\\Seen \\Deleted \\*)) |Limited|\n"
	  "A3 OK [COPYUID 38505 304,319:320 3956:3958]=(COPYUID 38505 304,319:320 3956:3958) |Done|\n"
	  "A4 NO [BADCHARSET (\"a\" UTF-8)]=(BADCHARSET ('a' UTF-8)) |charset|\n"
	  "* OK [ALERT]=(ALERT) |System shutdown in 10 minutes|\n"
	  "A5 NO [AUTHENTICATIONFAILED]=(AUTHENTICATIONFAILED) |Authentication failed.|\n"
	  "* OK [REFERRAL imap://user;AUTH=GSSAPI@SERVER2/]=(REFERRAL imap://user;AUTH=GSSAPI@SERVER2/) "
	  "|Server not accepting|\n"
	  "* NO [ALERT \"unterminated]=? |text|\n"
	  "* NO [BADCHARSET (\"x]\")]=(BADCHARSET ('x]')) |quoted bracket|\n"
	  "* OK []=? |empty|\n"
	  "* OK [ALERT (]=? |unbalanced|\n"
	  "* OK |[ALERT no closing bracket|\n"
	  "A6 OK [READ-WRITE]=(READ-WRITE) ||\n"
	  "A7 OK [CLOSED]=(CLOSED) |done|\n"
	  "NEED_MORE");
}

/* Checks the FETCH literal with CRLF, NUL and ")" through the helpers. */
static void fetch_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	const struct imap_arg *body;

	(void)ctx;
	if (index != 0)
		return;
	CHECK(r->count == 3);
	CHECK(imap_arg_atom_equals(&r->args[1], "fetch"));
	CHECK(item_u64(&r->args[2], "UID") == 5);
	CHECK(item_u64(&r->args[2], "RFC822.SIZE") == 11);
	CHECK_STR(imap_arg_as_string(imap_list_find(&r->args[2], "INTERNALDATE")), "17-Jul-1996 02:44:25 -0700");
	body = imap_list_find(&r->args[2], "body[]");
	CHECK(body != NULL && body->type == IMAP_ARG_LITERAL && body->len == 11 && !body->literal8);
	CHECK(body != NULL && memcmp(body->data, "ab\r\nc\0d)e\r\n", 12) == 0);
}

/* Checks the section items of the second FETCH. */
static void sections_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	const struct imap_arg *a;

	(void)ctx;
	if (index != 0)
		return;
	a = imap_list_find(&r->args[2], "body[header.fields (from to)]");
	CHECK(a != NULL && a->type == IMAP_ARG_LITERAL && a->len == 11);
	a = imap_list_find(&r->args[2], "BODY[]<0>");
	CHECK_STR(imap_arg_as_string(a), "Hello");
	a = imap_list_find(&r->args[2], "BODY[1.2.MIME]");
	CHECK(a != NULL && a->type == IMAP_ARG_NIL);
	a = imap_list_find(&r->args[2], "BINARY[1]");
	CHECK(a != NULL && a->type == IMAP_ARG_LITERAL && a->literal8 && a->len == 3 && a->data[0] == 0);
	a = imap_list_find(&r->args[2], "BODY[HEADER.FIELDS.NOT (\"X-Foo\" BCC)]");
	CHECK(a != NULL && a->type == IMAP_ARG_STRING && a->len == 0);
	CHECK_STR(imap_arg_as_string(a), "");
}

/* FETCH: the usual items, sections with spaces, origins, NIL, literal8, {0}, {n+}, bare LF. */
static void test_fetch(void)
{
	TF("* 1 FETCH (UID 5 RFC822.SIZE 11 INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" FLAGS (\\Seen \\Recent) "
	   "BODY[] {11}\r\nab\r\nc\0d)e\r\n)\r\n"
	   "A1 OK Fetch completed.\r\n",
	   "* 1 FETCH (UID 5 RFC822.SIZE 11 INTERNALDATE '17-Jul-1996 02:44:25 -0700' FLAGS (\\Seen \\Recent) "
	   "BODY[] {11}'ab\\x0d\\x0ac\\x00d)e\\x0d\\x0a')\n"
	   "A1 OK |Fetch completed.|\n"
	   "NEED_MORE", fetch_fn, NULL);
	TF("* 2 FETCH (UID 6 BODY[HEADER.FIELDS (FROM TO)] {11}\r\nFrom: a\r\n\r\n BODY[]<0> {5}\r\nHello "
	   "BODY[1.2.MIME] NIL BINARY[1] ~{3}\r\n\x00\x01\x02 BODY[HEADER.FIELDS.NOT (\"X-Foo\" BCC)] \"\")\r\n",
	   "* 2 FETCH (UID 6 BODY[HEADER.FIELDS (FROM TO)] {11}'From: a\\x0d\\x0a\\x0d\\x0a' BODY[]<0> {5}'Hello' "
	   "BODY[1.2.MIME] NIL BINARY[1] ~{3}'\\x00\\x01\\x02' BODY[HEADER.FIELDS.NOT (\"X-Foo\" BCC)] '')\n"
	   "NEED_MORE", sections_fn, NULL);
	T("* 3 FETCH (BODY[] {0}\r\n FLAGS ())\r\n"
	  "* 4 FETCH (BODY[TEXT] {3+}\r\nabc BINARY.SIZE[1] 3 BINARY[1] ~{0}\r\n)\r\n"
	  "* 5 FETCH (BODY[] {9}\r\n{2}\r\n\"x\"\n)\r\n"
	  "* 6 FETCH (BODY[] {2}\n\r\n)\n"
	  "* 7 FETCH (MODSEQ (624140003) UID 9 BODY[1]<1024> {1}\r\n()\r\n",
	  "* 3 FETCH (BODY[] {0}'' FLAGS ())\n"
	  "* 4 FETCH (BODY[TEXT] {3}'abc' BINARY.SIZE[1] 3 BINARY[1] ~{0}'')\n"
	  "* 5 FETCH (BODY[] {9}'{2}\\x0d\\x0a\"x\"\\x0a')\n"
	  "* 6 FETCH (BODY[] {2}'\\x0d\\x0a')\n"
	  "* 7 FETCH (MODSEQ (624140003) UID 9 BODY[1]<1024> {1}'(')\n"
	  "NEED_MORE");
	/* Two responses in one push, untagged data before the tagged reply, a partial one left over. */
	T("* 3 EXISTS\r\n* 1 RECENT\r\n* 2 FETCH (FLAGS (\\Seen))\r\n* 1 EXPUNGE\r\n"
	  "A7 OK [HIGHESTMODSEQ 9] Noop completed.\r\n* 4 EXI",
	  "* 3 EXISTS\n* 1 RECENT\n* 2 FETCH (FLAGS (\\Seen))\n* 1 EXPUNGE\n"
	  "A7 OK [HIGHESTMODSEQ 9]=(HIGHESTMODSEQ 9) |Noop completed.|\n"
	  "NEED_MORE");
	/* A literal still waiting for its bytes. */
	T("* 1 FETCH (BODY[] {10}\r\nabc", "NEED_MORE");
	T("* 1 FETCH (BODY[] {10}\r\n0123456789", "NEED_MORE");
}

/* BODYSTRUCTURE and ENVELOPE: nested lists, "(...)(...)" without a space. */
static void test_nested(void)
{
	T("* 12 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
	  "(\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\" \"NAME\" \"cc.diff\") "
	  "\"<960723163407.20117h@cac.washington.edu>\" \"Compiler diff\" \"BASE64\" 4554 73) \"MIXED\"))\r\n"
	  "* 7 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary\" "
	  "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) NIL NIL ((NIL NIL \"imap\" \"cac.washington.edu\")) "
	  "NIL NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n"
	  "* X ((())) (() ()) ((a)(b))\r\n",
	  "* 12 FETCH (BODYSTRUCTURE (('TEXT' 'PLAIN' ('CHARSET' 'US-ASCII') NIL NIL '7BIT' 1152 23) "
	  "('TEXT' 'PLAIN' ('CHARSET' 'US-ASCII' 'NAME' 'cc.diff') "
	  "'<960723163407.20117h@cac.washington.edu>' 'Compiler diff' 'BASE64' 4554 73) 'MIXED'))\n"
	  "* 7 FETCH (ENVELOPE ('Wed, 17 Jul 1996 02:23:25 -0700 (PDT)' 'IMAP4rev1 WG mtg summary' "
	  "(('Terry Gray' NIL 'gray' 'cac.washington.edu')) NIL NIL ((NIL NIL 'imap' 'cac.washington.edu')) "
	  "NIL NIL NIL '<B27397-0100000@cac.washington.edu>'))\n"
	  "* X ((())) (() ()) ((a) (b))\n"
	  "NEED_MORE");
}

/* The depth cap: limits.max_depth and the default of 32. */
static void test_depth(void)
{
	struct imap_parser_limits lim = { .max_depth = 3 };
	char buf[200];
	int i, n;

	TL(&lim, "* X ((()))\r\n* Y ((((a))))\r\n",
	   "* X ((()))\n"
	   "SKIPPED: nesting too deep at byte 7 of response (limit 3) in \"* Y ((((a))))\"\n"
	   "NEED_MORE");
	TL(&lim, "* OK [X ((((a))))] deep code\r\n", "* OK [X ((((a))))]=? |deep code|\nNEED_MORE");
	for (n = 32; n <= 33; n++) {
		size_t len = 0;

		len += (size_t)sprintf(buf, "* X ");
		for (i = 0; i < n; i++)
			buf[len++] = '(';
		for (i = 0; i < n; i++)
			buf[len++] = ')';
		len += (size_t)sprintf(buf + len, "\r\n");
		{
			char *got = feed((const unsigned char *)buf, len, NULL, 0, 0, NULL, NULL);
			char *bytes = feed((const unsigned char *)buf, len, NULL, 1, 0, NULL, NULL);

			CHECK_STR(bytes, got);
			if (n == 32)
				CHECK(strncmp(got, "* X ((((((((((((((((((((((((((((((((", 36) == 0 && strstr(got, "ERROR") == NULL);
			else
				CHECK(strncmp(got, "SKIPPED: nesting too deep at byte 36 of response (limit 32) in \"* X (((", 66) == 0 &&
				      strstr(got, "\nNEED_MORE") != NULL);
			free(got);
			free(bytes);
		}
	}
}

/* NIL in any case, against strings and atoms that only look like it. */
static void test_nil(void)
{
	T("* X NIL nil Nil \"NIL\" NILS (NIL) {3}\r\nNIL ()\r\n",
	  "* X NIL NIL NIL 'NIL' NILS (NIL) {3}'NIL' ()\n"
	  "NEED_MORE");
}

/* Checks the arguments of the oversize-literal transcript. */
static void oversize_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	const struct imap_arg *body;

	(void)ctx;
	if (index != 0)
		return;
	body = imap_list_find(&r->args[2], "BODY[]");
	CHECK(body != NULL && body->type == IMAP_ARG_LITERAL && body->oversize && body->data == NULL && body->len == 20);
	CHECK(imap_arg_as_string(body) == NULL);
	CHECK(item_u64(&r->args[2], "UID") == 7);
}

/* Literals above max_literal are skipped, reported oversize, and parsing goes on. */
static void test_oversize(void)
{
	struct imap_parser_limits lim = { .max_literal = 8 };

	TLF(&lim, "* 1 FETCH (UID 7 BODY[] {20}\r\n01234567890123456789 FLAGS (\\Seen) BODY[HEADER] {8}\r\nabcdefgh)\r\n"
	    "* 2 FETCH (BINARY[] ~{9}\r\n\0\0\0\0\0\0\0\0\0)\r\n"
	    "* 2 EXISTS\r\n",
	    "* 1 FETCH (UID 7 BODY[] {20,oversize} FLAGS (\\Seen) BODY[HEADER] {8}'abcdefgh')\n"
	    "* 2 FETCH (BINARY[] ~{9,oversize})\n"
	    "* 2 EXISTS\n"
	    "NEED_MORE", oversize_fn, NULL);
	TL(&lim, "* 1 FETCH (BODY[] {100}\r\n0123456789", "NEED_MORE");
}

/* Pushes an 8 MiB oversize literal in 16 KiB chunks (and a smaller one byte by byte) and checks that
   the parser never holds more than a chunk of it. */
static void test_oversize_memory(void)
{
	struct imap_parser_limits lim = { .max_literal = 1024 };
	static unsigned char chunk[16384];
	size_t total = (size_t)8 * 1024 * 1024, sizes[2] = { sizeof(chunk), 1 };
	int mode;

	memset(chunk, 'x', sizeof(chunk));
	for (mode = 0; mode < 2; mode++) {
		struct imap_parser *parser = imap_parser_new(&lim);
		const struct imap_response *resp = NULL;
		const char *error = NULL;
		size_t left = mode == 0 ? total : 65536, max_pending = 0;
		char head[64];
		int dones = 0;

		snprintf(head, sizeof(head), "* 1 FETCH (BODY[] {%zu}\r\n", left);
		imap_parser_push(parser, head, strlen(head));
		CHECK(imap_parser_next(parser, &resp, &error) == IMAP_PARSE_NEED_MORE);
		while (left > 0) {
			size_t n = left < sizes[mode] ? left : sizes[mode];

			imap_parser_push(parser, chunk, n);
			left -= n;
			if (imap_parser_pending(parser) > max_pending)
				max_pending = imap_parser_pending(parser);
			if (imap_parser_next(parser, &resp, &error) != IMAP_PARSE_NEED_MORE)
				break;
		}
		CHECK(left == 0);
		CHECK(max_pending <= strlen(head) + sizes[mode]);
		imap_parser_push(parser, " UID 3)\r\n* 9 EXISTS\r\n", 21);
		while (imap_parser_next(parser, &resp, &error) == IMAP_PARSE_DONE) {
			if (dones++ == 0) {
				const struct imap_arg *body = imap_list_find(&resp->args[2], "BODY[]");

				CHECK(body != NULL && body->oversize && body->len == (mode == 0 ? total : 65536));
				CHECK(item_u64(&resp->args[2], "uid") == 3);
			} else {
				CHECK(imap_arg_atom_equals(&resp->args[1], "EXISTS"));
			}
		}
		CHECK(dones == 2);
		CHECK(imap_parser_pending(parser) == 0);
		imap_parser_free(&parser);
		CHECK(parser == NULL);
	}
}

/* Checks the 1 MiB literal without serialising it. */
static void big_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	const struct imap_arg *body = imap_list_find(&r->args[2], "BODY[]");
	size_t i, bad = 0;

	(void)ctx;
	CHECK(index == 0);
	CHECK(body != NULL && body->type == IMAP_ARG_LITERAL && body->len == 1024 * 1024);
	if (body == NULL || body->data == NULL)
		return;
	for (i = 0; i < body->len; i++)
		bad += body->data[i] != (unsigned char)(i * 7 + 3);
	CHECK(bad == 0 && body->data[body->len] == '\0');
}

/* A 1 MiB literal fed whole and byte by byte: waiting on literal bytes must not be quadratic. */
static void test_big_literal(void)
{
	size_t size = 1024 * 1024, i;
	const char *head = "* 1 FETCH (UID 1 BODY[] {1048576}\r\n", *tail = ")\r\n";
	size_t hlen = strlen(head), len = hlen + size + 3;
	unsigned char *buf = malloc(len);

	if (buf == NULL)
		abort();
	memcpy(buf, head, hlen);
	for (i = 0; i < size; i++)
		buf[hlen + i] = (unsigned char)(i * 7 + 3);
	memcpy(buf + hlen + size, tail, 3);
	check_parse(__LINE__, buf, len, NULL, NULL, big_fn, NULL);
	free(buf);
}

/* max_line caps the bytes outside literals. */
static void test_max_line(void)
{
	struct imap_parser_limits lim = { .max_line = 32 };

	TL(&lim, "* 1 EXISTS\r\n* LIST () \"/\" \"a very long mailbox name that exceeds\"\r\n",
	   "* 1 EXISTS\n"
	   "ERROR: response longer than 32 bytes outside literals (max_line)");
	TL(&lim, "* OK 0123456789012345678901234\r\n* OK 01234567890123456789012345\r\n",
	   "* OK |0123456789012345678901234|\n"
	   "ERROR: response longer than 32 bytes outside literals (max_line)");
	TL(&lim, "* 1 FETCH (BODY[] {40}\r\n0123456789012345678901234567890123456789)\r\n",
	   "* 1 FETCH (BODY[] {40}'0123456789012345678901234567890123456789')\n"
	   "NEED_MORE");
	/* No line end at all: the error comes without waiting for one. */
	TL(&lim, "* 1 FETCH (FLAGS (\\Seen \\Answered \\Flagged", "ERROR: response longer than 32 bytes outside literals (max_line)");
}

/* BYE, NO with a throttling text (Office 365), continuations, lower case, spaces, bare LF, odd text. */
static void test_status_lines(void)
{
	T("* BYE Autologout; idle for too long\r\n"
	  "* BYE [UNAVAILABLE] Server shutting down\r\n"
	  "A5 NO Request is throttled. Suggested Backoff Time: 92132 milliseconds\r\n"
	  "A6 BAD Command Error. 12\r\n"
	  "A1 OK\r\n"
	  "A2 OK   \r\n",
	  "* BYE |Autologout; idle for too long|\n"
	  "* BYE [UNAVAILABLE]=(UNAVAILABLE) |Server shutting down|\n"
	  "A5 NO |Request is throttled. Suggested Backoff Time: 92132 milliseconds|\n"
	  "A6 BAD |Command Error. 12|\n"
	  "A1 OK ||\n"
	  "A2 OK ||\n"
	  "NEED_MORE");
	T("+ dGVzdA==\r\n+\r\n+ \r\n+ Ready for literal data\r\n+ idling\r\n+ \"(( {5}\r\n",
	  "+ |dGVzdA==|\n+ ||\n+ ||\n+ |Ready for literal data|\n+ |idling|\n+ |\"(( {5}|\n"
	  "NEED_MORE");
	T("a1 ok done\r\n* ok [alert] hi\r\n* bye\r\n* preauth x\r\nb2 No nope\r\nc3 bAd what\r\n* no\r\n",
	  "a1 OK |done|\n* OK [alert]=(alert) |hi|\n* BYE ||\n* PREAUTH |x|\nb2 NO |nope|\nc3 BAD |what|\n* NO ||\n"
	  "NEED_MORE");
	T("* 3   EXISTS   \r\n* LIST ( \\Noselect  )  \"/\"   foo \r\nA1 OK   done  \r\n* SEARCH\r\n"
	  "* SEARCH 2 84 882\r\n*   OK   spaced  \r\n",
	  "* 3 EXISTS\n* LIST (\\Noselect) '/' foo\nA1 OK |done|\n* SEARCH\n* SEARCH 2 84 882\n* OK |spaced|\n"
	  "NEED_MORE");
	T("* 3 EXISTS\n* 1 FETCH (BODY[] {3}\nabc)\nA1 OK done\n+\n",
	  "* 3 EXISTS\n* 1 FETCH (BODY[] {3}'abc')\nA1 OK |done|\n+ ||\n"
	  "NEED_MORE");
	T("A1 NO [ALERT] can't \"open (folder ] {5}\r\n* OK \"(((\r\n* NO ))) [x\r\nA2 OK te\0xt\r\n",
	  "A1 NO [ALERT]=(ALERT) |can't \"open (folder ] {5}|\n* OK |\"(((|\n* NO |))) [x|\n"
	  "A2 OK |te|\n"
	  "NEED_MORE");
	/* Words that only start like a status are data. */
	T("* OKAY 1\r\n* NOOP\r\n* STATUS x ()\r\n* ESEARCH (TAG \"A282\") UID MIN 2 COUNT 3\r\n"
	  "* VANISHED (EARLIER) 300:310,405\r\n* QUOTA \"\" (STORAGE 10 512)\r\n",
	  "* OKAY 1\n* NOOP\n* STATUS x ()\n* ESEARCH (TAG 'A282') UID MIN 2 COUNT 3\n"
	  "* VANISHED (EARLIER) 300:310,405\n* QUOTA '' (STORAGE 10 512)\n"
	  "NEED_MORE");
}

/* Malformed input gives an error that says what and where. */
static void test_errors(void)
{
	/* an untagged response that arrives whole but does not parse is skipped, quoted in the message,
	   and the next response is read as usual (one bad line costs what it concerns, not the session) */
	T("* 1 FETCH (X \"abc\r\n", "SKIPPED: unterminated quoted string at byte 13 of response in \"* 1 FETCH (X \\x22abc\"\nNEED_MORE");
	T("* 1 FETCH (X \"abc\\\r\n", "SKIPPED: unterminated quoted string at byte 13 of response in \"* 1 FETCH (X \\x22abc\\x5c\"\nNEED_MORE");
	T("* 1 FETCH (BODY[] {12x}\r\n", "SKIPPED: bad literal size at byte 18 of response in \"* 1 FETCH (BODY[] {12x}\"\nNEED_MORE");
	T("* 1 FETCH (BODY[] {}\r\n", "SKIPPED: bad literal size at byte 18 of response in \"* 1 FETCH (BODY[] {}\"\nNEED_MORE");
	T("* 1 FETCH (BODY[] {+}\r\n", "SKIPPED: bad literal size at byte 18 of response in \"* 1 FETCH (BODY[] {+}\"\nNEED_MORE");
	T("* 1 FETCH (BODY[] {99999999999999999999999}\r\n",
	  "SKIPPED: bad literal size (overflow) at byte 18 of response in \"* 1 FETCH (BODY[] {99999999999999999999999}\"\nNEED_MORE");
	T("* 1 FETCH (BODY[] {5}x\r\n", "SKIPPED: expected line end after literal size at byte 21 of response in \"* 1 FETCH (BODY[] {5}x\"\nNEED_MORE");
	/* what follows a broken literal header is a line of its own, and garbage as a response: fatal */
	T("* 1 FETCH (BODY[] {5} \r\nabcde)\r\n", "SKIPPED: expected line end after literal size at byte 21 of response in "
	  "\"* 1 FETCH (BODY[] {5} \"\nERROR: bad byte 0x29 in tag at byte 5 of response");
	T("* 1 )\r\n", "SKIPPED: unexpected ')' at byte 4 of response in \"* 1 )\"\nNEED_MORE");
	T("* 1 FETCH (UID 5))\r\n", "SKIPPED: unexpected ')' at byte 17 of response in \"* 1 FETCH (UID 5))\"\nNEED_MORE");
	T("* 1 FETCH (UID 5\r\n* 2 EXISTS\r\n",
	  "SKIPPED: unterminated list opened at byte 10 of response in \"* 1 FETCH (UID 5\"\n* 2 EXISTS\nNEED_MORE");
	/* imap4d's STATUS with a mailbox name it did not quote, and what follows it */
	T("* STATUS Quote\"d (MESSAGES 3 UIDNEXT 4)\r\n* 3 EXISTS\r\nA5 OK done\r\n",
	  "SKIPPED: expected space after argument at byte 14 of response in \"* STATUS Quote\\x22d (MESSAGES 3 UIDNEXT 4)\"\n"
	  "* 3 EXISTS\nA5 OK |done|\nNEED_MORE");
	/* tagged and continuation lines that do not parse end the session: their command cannot complete */
	T("\x01garbage\r\n", "ERROR: bad byte 0x01 in tag at byte 0 of response");
	T("garbage line here\r\n", "ERROR: expected OK, NO, BAD, BYE or PREAUTH after tag at byte 8 of response");
	T("A1\r\n", "ERROR: expected OK, NO, BAD, BYE or PREAUTH after tag at byte 2 of response");
	T("A1 OK[READ-ONLY] x\r\n", "ERROR: expected OK, NO, BAD, BYE or PREAUTH after tag at byte 3 of response");
	T(" * OK x\r\n", "ERROR: missing tag at byte 0 of response");
	T("(A1 OK x\r\n", "ERROR: bad byte 0x28 in tag at byte 0 of response");
	T("* \r\n", "SKIPPED: empty untagged response in \"* \"\nNEED_MORE");
	T("*\r\n", "SKIPPED: empty untagged response in \"*\"\nNEED_MORE");
	T("\r\n", "ERROR: empty response line");
	T("*FOO\r\n", "SKIPPED: expected space after '*' at byte 1 of response in \"*FOO\"\nNEED_MORE");
	T("* 1 \"a\"\"b\"\r\n", "SKIPPED: expected space after argument at byte 7 of response in \"* 1 \\x22a\\x22\\x22b\\x22\"\nNEED_MORE");
	T("* 1 FETCH (A\x01)\r\n", "SKIPPED: expected space after argument at byte 12 of response in \"* 1 FETCH (A\\x01)\"\nNEED_MORE");
	T("* 1 FETCH (FLAGS ()UID 1)\r\n", "SKIPPED: expected space after argument at byte 19 of response in \"* 1 FETCH (FLAGS ()UID 1)\"\nNEED_MORE");
	T("* 1 \x01\r\n", "SKIPPED: unexpected byte 0x01 at byte 4 of response in \"* 1 \\x01\"\nNEED_MORE");
	T("A1 OK fo\ro\r\n", "ERROR: stray CR at byte 8 of response");
	T("* 1 EXISTS\rX\r\n", "SKIPPED: stray CR at byte 10 of response in \"* 1 EXISTS\"\nNEED_MORE");
	T("* 1 EXISTS\r\n\x80\x81\r\n", "* 1 EXISTS\nERROR: bad byte 0x80 in tag at byte 0 of response");
	/* a long bad line is quoted by its start only */
	T("* 1 FETCH (UID 1 X \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789\r\n",
	  "SKIPPED: unterminated quoted string at byte 19 of response in \"* 1 FETCH (UID 1 X \\x22012345678901234567890123456789012345678901234567890123456789012345678901\"\nNEED_MORE");
}

/* Checks imap_arg_as_u64 on the arguments of one response. */
static void u64_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	uint64_t v = 42;

	(void)ctx;
	(void)index;
	CHECK(r->count == 10);
	CHECK(imap_arg_as_u64(&r->args[1], &v) == 0 && v == UINT64_MAX);
	v = 42;
	CHECK(imap_arg_as_u64(&r->args[2], &v) == -1 && v == 42);   /* 2^64: overflow */
	CHECK(imap_arg_as_u64(&r->args[3], &v) == -1);               /* 99999999999999999999 */
	CHECK(imap_arg_as_u64(&r->args[4], &v) == 0 && v == 0);
	CHECK(imap_arg_as_u64(&r->args[5], &v) == 0 && v == 7);      /* 007 */
	CHECK(imap_arg_as_u64(&r->args[6], &v) == -1);               /* 12a */
	CHECK(imap_arg_as_u64(&r->args[7], &v) == -1);               /* -1 */
	CHECK(imap_arg_as_u64(&r->args[8], &v) == -1);               /* "5" is a string */
	CHECK(imap_arg_as_u64(&r->args[9], &v) == -1);               /* NIL */
	CHECK(imap_arg_as_u64(NULL, &v) == -1);
	CHECK(!imap_arg_atom_equals(&r->args[9], "NIL"));            /* NIL is not an atom */
	CHECK(!imap_arg_atom_equals(&r->args[8], "5"));
	CHECK(!imap_arg_atom_equals(NULL, "5"));
}

/* The helpers on edge cases. */
static void test_helpers(void)
{
	struct imap_arg empty = { .type = IMAP_ARG_ATOM, .data = (const unsigned char *)"", .len = 0 };
	struct imap_arg list = { .type = IMAP_ARG_LIST };
	uint64_t v;

	TF("* X 18446744073709551615 18446744073709551616 99999999999999999999 0 007 12a -1 \"5\" NIL\r\n",
	   "* X 18446744073709551615 18446744073709551616 99999999999999999999 0 007 12a -1 '5' NIL\n"
	   "NEED_MORE", u64_fn, NULL);
	CHECK(imap_arg_as_u64(&empty, &v) == -1);
	CHECK(imap_arg_as_string(&list) == NULL);
	CHECK(imap_list_find(&list, "X") == NULL);
	CHECK(imap_arg_as_string(NULL) == NULL);
}

/* A list whose last name has no value. */
static void odd_fn(const struct imap_response *r, unsigned index, void *ctx)
{
	(void)ctx;
	(void)index;
	CHECK(imap_list_find(&r->args[2], "UID") != NULL);
	CHECK(imap_list_find(&r->args[2], "FLAGS") == NULL);
	CHECK(imap_arg_as_string(&r->args[2]) == NULL);
}

/* imap_list_find on an odd list. */
static void test_list_find(void)
{
	TF("* 1 FETCH (UID 4 FLAGS)\r\n", "* 1 FETCH (UID 4 FLAGS)\nNEED_MORE", odd_fn, NULL);
}

/* A response stays valid when more bytes are pushed before the next imap_parser_next(); pending()
   counts what no returned response consumed. Both with the whole input and byte by byte. */
static void test_lifetime(void)
{
	static const char in[] = "* 1 FETCH (BODY[] {5}\r\nhello)\r\n* 2 EXISTS\r\n* 3 EX";
	static const char small[] = "* 2 EXISTS\r\n* 1 FETCH (FLAGS (\\Seen) BODY[] {100000}\r\n";
	static unsigned char filler[100000];
	int mode;

	memset(filler, '*', sizeof(filler));
	for (mode = 0; mode < 2; mode++) {
		struct imap_parser *parser = imap_parser_new(NULL);
		const struct imap_response *resp = NULL, *r2 = NULL;
		const char *error;
		size_t off = 0, len = sizeof(in) - 1;

		if (mode == 0) {
			imap_parser_push(parser, in, len);
			off = len;
			CHECK(imap_parser_pending(parser) == len);
			CHECK(imap_parser_next(parser, &resp, &error) == IMAP_PARSE_DONE);
		} else {
			while (resp == NULL && off < len) {
				imap_parser_push(parser, in + off++, 1);
				if (imap_parser_next(parser, &resp, &error) == IMAP_PARSE_NEED_MORE)
					CHECK(imap_parser_pending(parser) == off);
			}
		}
		CHECK(resp != NULL && imap_parser_pending(parser) == len - 31 - (len - off));
		/* Push a lot (the input buffer moves), then look at the response again. */
		imap_parser_push(parser, filler, sizeof(filler));
		CHECK(resp != NULL && resp->count == 3);
		CHECK(resp != NULL && resp->args[2].count == 2 && resp->args[2].list[1].len == 5);
		CHECK(resp != NULL && strcmp((const char *)resp->args[2].list[1].data, "hello") == 0);
		imap_parser_free(&parser);

		/* The other path: a small response followed by much more input. */
		parser = imap_parser_new(NULL);
		imap_parser_push(parser, small, strlen(small));
		CHECK(imap_parser_next(parser, &r2, &error) == IMAP_PARSE_DONE);
		imap_parser_push(parser, filler, mode == 0 ? sizeof(filler) : 1);
		CHECK(r2 != NULL && imap_arg_atom_equals(&r2->args[1], "exists") && r2->args[1].data[6] == '\0');
		CHECK(imap_parser_pending(parser) == strlen(small) - 12 + (mode == 0 ? sizeof(filler) : 1));
		if (mode == 0) {
			CHECK(imap_parser_next(parser, &r2, &error) == IMAP_PARSE_NEED_MORE);
			imap_parser_push(parser, ")\r\n", 3);
			CHECK(imap_parser_next(parser, &r2, &error) == IMAP_PARSE_DONE);
			CHECK(r2 != NULL && imap_list_find(&r2->args[2], "BODY[]")->len == 100000);
			CHECK(imap_parser_pending(parser) == 0);
		}
		imap_parser_free(&parser);
	}
	imap_parser_free(NULL);
}

/* A long session of small responses keeps the pending bytes (and so the buffer) small. */
static void test_long_session(void)
{
	size_t chunks[2] = { 16384, 1 };
	int mode;

	for (mode = 0; mode < 2; mode++) {
		struct imap_parser *parser = imap_parser_new(NULL);
		struct sb all = { 0 };
		const struct imap_response *resp;
		const char *error;
		size_t off, max_pending = 0;
		unsigned i, count = 0, wrong = 0;

		for (i = 0; i < 100000; i++)
			sb_printf(&all, "* %u FETCH (UID %u FLAGS (\\Seen))\r\n", i, i + 1);
		for (off = 0; off < all.len; off += chunks[mode]) {
			size_t n = all.len - off < chunks[mode] ? all.len - off : chunks[mode];

			imap_parser_push(parser, all.s + off, n);
			while (imap_parser_next(parser, &resp, &error) == IMAP_PARSE_DONE) {
				if (item_u64(&resp->args[2], "UID") != count + 1)
					wrong++;
				count++;
			}
			if (imap_parser_pending(parser) > max_pending)
				max_pending = imap_parser_pending(parser);
		}
		CHECK(count == 100000 && wrong == 0);
		CHECK(max_pending < 64);
		imap_parser_free(&parser);
		free(all.s);
	}
}

/* Valid transcripts the fuzzer mutates (they may hold NULs, hence the explicit lengths). */
#define FUZZ_SEED(lit) { lit, sizeof(lit) - 1 }
static const struct {
	const char *data;
	size_t len;
} fuzz_seeds[] = {
	FUZZ_SEED("* OK [CAPABILITY IMAP4rev1 LITERAL+ AUTH=PLAIN] Dovecot ready.\r\n"),
	FUZZ_SEED("* LIST (\\HasNoChildren \\Trash) \".\" {11}\r\nWeird \"name\r\nA2 OK List completed.\r\n"),
	FUZZ_SEED("* STATUS \"INBOX\" (MESSAGES 17 UIDNEXT 4392 UNSEEN 2)\r\n"),
	FUZZ_SEED("* OK [PERMANENTFLAGS (\\Seen \\*)] x\r\n* 172 EXISTS\r\nA142 OK [READ-ONLY] EXAMINE completed.\r\n"),
	FUZZ_SEED("* 1 FETCH (UID 5 RFC822.SIZE 11 FLAGS (\\Seen) BODY[] {11}\r\nab\r\nc\0d)e\r\n)\r\n"),
	FUZZ_SEED("* 2 FETCH (BODY[HEADER.FIELDS (FROM TO)] {11}\r\nFrom: a\r\n\r\n BODY[]<0> {5}\r\nHello "
		  "BINARY[1] ~{3}\r\nabc)\r\n"),
	FUZZ_SEED("* 12 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)"
		  "(\"TEXT\" \"HTML\" NIL NIL NIL \"BASE64\" 4554 73) \"MIXED\"))\r\n"),
	FUZZ_SEED("+ dGVzdA==\r\n+\r\nA5 NO Request is throttled.\r\n* BYE bye\r\n"),
	FUZZ_SEED("* 3 FETCH (BODY[] {0}\r\n FLAGS ()) \n* X \"a\\\"b\\\\c\" NIL nil\n"),
	FUZZ_SEED("A1 NO [BADCHARSET (\"a\")] can't \"open (folder ] {5}\r\n"),
	FUZZ_SEED("* 4 FETCH (BODY[TEXT] {3+}\r\nabc MODSEQ (624140003))\r\n* ESEARCH (TAG \"A1\") UID ALL 1:3\r\n"),
	FUZZ_SEED("* 5 FETCH (BODY[] {40}\r\n0123456789012345678901234567890123456789 UID 3)\r\n"),
};

/* Mutates valid transcripts 20,000 times and feeds each whole and in random chunks, with random
   limits: the parser must never crash (ASan/UBSan), loop, break an invariant of what it returns,
   or answer anything but DONE, NEED_MORE or ERROR; and the chunking must not change the result. */
static void test_fuzz(void)
{
	static const char specials[] = "(){}[]<>\"\\\r\n *~+0123456789%]NIL";
	uint64_t state = 0x2545f4914f6cdd1du;
	unsigned char buf[8192];
	unsigned iter, bad = 0, differ = 0, broken = dump_broken;

	for (iter = 0; iter < 20000; iter++) {
		struct imap_parser_limits lim = { 0 };
		size_t len = 0;
		unsigned k, nseeds = 1 + test_rand(&state) % 3, nmut = test_rand(&state) % 6;
		char *whole, *chunked;

		for (k = 0; k < nseeds; k++) {
			unsigned which = test_rand(&state) % (sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]));

			memcpy(buf + len, fuzz_seeds[which].data, fuzz_seeds[which].len);
			len += fuzz_seeds[which].len;
		}
		if (test_rand(&state) % 50 == 0) {
			len = test_rand(&state) % 512;
			for (k = 0; k < len; k++)
				buf[k] = (unsigned char)test_rand(&state);
		}
		for (k = 0; k < nmut && len > 0; k++) {
			size_t at = test_rand(&state) % len, n;
			unsigned char c = test_rand(&state) % 4 == 0 ? (unsigned char)test_rand(&state) :
				(unsigned char)specials[test_rand(&state) % (sizeof(specials) - 1)];

			switch (test_rand(&state) % 6) {
			case 0: /* replace a byte */
				buf[at] = c;
				break;
			case 1: /* insert a byte */
				if (len < sizeof(buf)) {
					memmove(buf + at + 1, buf + at, len - at);
					buf[at] = c;
					len++;
				}
				break;
			case 2: /* delete a run */
				n = 1 + test_rand(&state) % 8;
				n = n > len - at ? len - at : n;
				memmove(buf + at, buf + at + n, len - at - n);
				len -= n;
				break;
			case 3: /* duplicate a run */
				n = 1 + test_rand(&state) % 64;
				n = n > len - at ? len - at : n;
				if (len + n <= sizeof(buf)) {
					memmove(buf + at + n, buf + at, len - at);
					len += n;
				}
				break;
			case 4: /* truncate */
				len = at;
				break;
			default: /* change a digit (literal sizes, numbers) or start a literal */
				if (buf[at] >= '0' && buf[at] <= '9')
					buf[at] = (unsigned char)('0' + test_rand(&state) % 10);
				else
					buf[at] = '{';
				break;
			}
		}
		if (test_rand(&state) % 3 == 0) {
			lim.max_literal = 1 + test_rand(&state) % 16;
			lim.max_depth = 1 + test_rand(&state) % 4;
			lim.max_line = 16 + test_rand(&state) % 200;
		}
		whole = feed(buf, len, &lim, 0, 0, NULL, NULL);
		chunked = feed(buf, len, &lim, FEED_RANDOM, 0, NULL, NULL);
		if (strcmp(whole, chunked) != 0 && differ++ == 0)
			fprintf(stderr, "fuzz iteration %u: chunking changed the result:\n%s\n--- vs ---\n%s\n",
				iter, whole, chunked);
		free(whole);
		free(chunked);
	}
	bad = dump_broken - broken;
	if (bad != 0 || differ != 0)
		fprintf(stderr, "fuzz: %u broken invariants, %u chunking differences\n", bad, differ);
	CHECK(bad == 0 && differ == 0);
}

int main(void)
{
	test_greeting();
	test_list();
	test_status();
	test_examine();
	test_codes();
	test_fetch();
	test_nested();
	test_depth();
	test_nil();
	test_oversize();
	test_oversize_memory();
	test_big_literal();
	test_max_line();
	test_status_lines();
	test_errors();
	test_helpers();
	test_list_find();
	test_lifetime();
	test_long_session();
	test_fuzz();
	CHECK(dump_broken == 0);
	return unit_finish("test-imap-parser");
}

/* Unit tests of indexer/query.c: the tree of every field and operator, dates, sizes, errors, and a fuzz loop. */
#include "doc-build.h"
#include "mime-extract.h"
#include "query.h"
#include "prefixes.h"
#include "xapian_shim.h"
#include "unit.h"

#include <ftw.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Parses q and returns its description, or "ERROR: message"; caller frees. */
static char *parse_desc(const char *q)
{
	char *error = NULL;
	struct qnode *n = query_parse(q, &error);
	char *out;
	if (n == NULL) {
		size_t len = strlen(error ? error : "") + 8;
		out = malloc(len);
		snprintf(out, len, "ERROR: %s", error ? error : "");
	} else {
		out = query_describe(n);
	}
	query_free(&n);
	CHECK(n == NULL);
	free(error);
	return out;
}

/* Checks that q parses into the tree described by want. */
#define OK(q, want) do { char *d_ = parse_desc(q); CHECK_STR(d_, want); free(d_); } while (0)

/* Checks that q is refused with an error starting with want. */
#define ERR(q, want) do { \
	char *d_ = parse_desc(q); \
	const char *w_ = "ERROR: " want; \
	if (strncmp(d_, w_, strlen(w_)) == 0) unit_passed++; \
	else { unit_failed++; fprintf(stderr, "FAIL %s:%d: %s -> \"%s\", wanted \"%s...\"\n", \
		__FILE__, __LINE__, q, d_, w_); } \
	free(d_); \
} while (0)

/* Bare words, phrases, operators and precedence. */
static void test_operators(void)
{
	OK("budget", "TEXT(:budget)");
	OK("  budget\t", "TEXT(:budget)");
	OK("a b", "AND(TEXT(:a),TEXT(:b))");
	OK("a b c", "AND(AND(TEXT(:a),TEXT(:b)),TEXT(:c))");
	OK("a AND b", "AND(TEXT(:a),TEXT(:b))");
	OK("a OR b", "OR(TEXT(:a),TEXT(:b))");
	OK("a OR b OR c", "OR(OR(TEXT(:a),TEXT(:b)),TEXT(:c))");
	/* OR binds tighter than AND, like Gmail */
	OK("a b OR c", "AND(TEXT(:a),OR(TEXT(:b),TEXT(:c)))");
	OK("a OR b c", "AND(OR(TEXT(:a),TEXT(:b)),TEXT(:c))");
	OK("a AND b OR c", "AND(TEXT(:a),OR(TEXT(:b),TEXT(:c)))");
	OK("(a b) OR c", "OR(AND(TEXT(:a),TEXT(:b)),TEXT(:c))");
	OK("(a)", "TEXT(:a)");
	OK("((a))", "TEXT(:a)");
	OK("(a OR b) (c OR d)", "AND(OR(TEXT(:a),TEXT(:b)),OR(TEXT(:c),TEXT(:d)))");
	/* negation: the positive operands first, the negations subtracted from them */
	OK("-a b", "AND(TEXT(:b),NOT(TEXT(:a)))");
	OK("a -b", "AND(TEXT(:a),NOT(TEXT(:b)))");
	OK("a AND NOT b", "AND(TEXT(:a),NOT(TEXT(:b)))");
	OK("a NOT b", "AND(TEXT(:a),NOT(TEXT(:b)))");
	OK("NOT a", "AND(ALL,NOT(TEXT(:a)))");
	OK("-a", "AND(ALL,NOT(TEXT(:a)))");
	OK("-a -b", "AND(AND(ALL,NOT(TEXT(:a))),NOT(TEXT(:b)))");
	OK("-from:x", "AND(ALL,NOT(TEXT(F:x)))");
	OK("NOT NOT a", "TEXT(:a)");
	OK("--a", "TEXT(:a)");
	OK("-(a b)", "AND(ALL,NOT(AND(TEXT(:a),TEXT(:b))))");
	OK("-\"a b\"", "AND(ALL,NOT(PHRASE(:a b)))");
	OK("a OR -b", "OR(TEXT(:a),AND(ALL,NOT(TEXT(:b))))");
	OK("-a OR b", "OR(AND(ALL,NOT(TEXT(:a))),TEXT(:b))");
	OK("a (-b)", "AND(TEXT(:a),AND(ALL,NOT(TEXT(:b))))");
	OK("NOT (NOT a)", "AND(ALL,NOT(AND(ALL,NOT(TEXT(:a)))))");
	/* lower-case operators are words, like Gmail; '-' inside a word or alone is literal */
	OK("a and b", "AND(AND(TEXT(:a),TEXT(:and)),TEXT(:b))");
	OK("a or b", "AND(AND(TEXT(:a),TEXT(:or)),TEXT(:b))");
	OK("not", "TEXT(:not)");
	OK("e-mail", "TEXT(:e-mail)");
	OK("a - b", "AND(AND(TEXT(:a),TEXT(:-)),TEXT(:b))");
	OK("(a -)", "AND(TEXT(:a),TEXT(:-))");
	OK("ANDROID ORACLE NOTE", "AND(AND(TEXT(:ANDROID),TEXT(:ORACLE)),TEXT(:NOTE))");
	/* phrases */
	OK("\"quarterly results\"", "PHRASE(:quarterly results)");
	OK("\"say \\\"hi\\\" now\"", "PHRASE(:say \"hi\" now)");
	OK("\"back\\\\slash\"", "PHRASE(:back\\slash)");
	OK("\"c:\\temp\"", "PHRASE(:c:\\temp)");
	OK("\"a\"\"b\"", "AND(PHRASE(:a),PHRASE(:b))");
	OK("x\"a b\"y", "AND(AND(TEXT(:x),PHRASE(:a b)),TEXT(:y))");
	OK("\"a OR b\"", "PHRASE(:a OR b)");
	/* wildcards go to QueryParser */
	OK("budg*", "TEXT(:budg*)");
	/* UTF-8 passes through */
	OK("café naïve", "AND(TEXT(:café),TEXT(:naïve))");
	OK("subject:\"日本語 テスト\"", "PHRASE(S:日本語 テスト)");
	/* words with colons that are not fields */
	OK("10:30", "TEXT(:10:30)");
	OK("http://example.com/x", "TEXT(:http://example.com/x)");
	OK(":x", "TEXT(::x)");
	OK("a1:b", "TEXT(:a1:b)");
}

/* Every field. */
static void test_fields(void)
{
	OK("body:budget", "TEXT(body:budget)");
	OK("body:\"a b\"", "PHRASE(body:a b)");
	OK("subject:budget", "TEXT(S:budget)");
	OK("SUBJECT:budget", "TEXT(S:budget)");
	OK("subject:\"quarterly results\"", "PHRASE(S:quarterly results)");
	OK("subject:re:budget", "TEXT(S:re:budget)");
	OK("subject:AND", "TEXT(S:AND)");
	OK("filename:report.pdf", "TEXT(XFN:report.pdf)");
	OK("filename:\"q3 report\"", "PHRASE(XFN:q3 report)");
	/* addresses */
	OK("from:jeff@enron.com", "TERM(XFA:jeff@enron.com)");
	OK("from:Jeff.Skilling@ENRON.com", "TERM(XFA:jeff.skilling@enron.com)");
	OK("from:<jeff@enron.com>", "TERM(XFA:jeff@enron.com)");
	OK("from:\"jeff@enron.com\"", "TERM(XFA:jeff@enron.com)");
	OK("from:@Enron.COM", "TERM(XFD:enron.com)");
	OK("from:jeff", "TEXT(F:jeff)");
	OK("from:Jeff", "TEXT(F:Jeff)");
	OK("from:\"Jeff Skilling\"", "PHRASE(F:Jeff Skilling)");
	OK("from:\"Jeff <jeff@enron.com>\"", "PHRASE(F:Jeff <jeff@enron.com>)");
	OK("from:jeff*", "TEXT(F:jeff*)");
	OK("from:jeff@enron*", "WILDCARD(XFA:jeff@enron*)");
	OK("from:JEFF@*", "WILDCARD(XFA:jeff@*)");
	OK("from:@enron.*", "WILDCARD(XFD:enron.*)");
	OK("to:kay@enron.com", "TERM(XTA:kay@enron.com)");
	OK("to:@enron.com", "TERM(XTD:enron.com)");
	OK("to:kay", "TEXT(T:kay)");
	OK("cc:kay@enron.com", "TERM(XCA:kay@enron.com)");
	OK("cc:@enron.com", "TERM(XCD:enron.com)");
	OK("cc:\"Kay Mann\"", "PHRASE(C:Kay Mann)");
	OK("bcc:kay@enron.com", "TERM(XBA:kay@enron.com)");
	OK("bcc:@enron.com", "TERM(XBD:enron.com)");
	OK("bcc:kay", "TEXT(B:kay)");
	OK("participants:@enron.com",
	   "OR(OR(OR(TERM(XFD:enron.com),TERM(XTD:enron.com)),TERM(XCD:enron.com)),TERM(XBD:enron.com))");
	OK("participants:kay",
	   "OR(OR(OR(TEXT(F:kay),TEXT(T:kay)),TEXT(C:kay)),TEXT(B:kay))");
	OK("participants:Kay@Enron.com",
	   "OR(OR(OR(TERM(XFA:kay@enron.com),TERM(XTA:kay@enron.com)),TERM(XCA:kay@enron.com)),"
	   "TERM(XBA:kay@enron.com))");
	OK("budget (from:jeff@enron.com OR to:@enron.com)",
	   "AND(TEXT(:budget),OR(TERM(XFA:jeff@enron.com),TERM(XTD:enron.com)))");
	/* a field applies to every word inside its parentheses */
	OK("from:(alice OR bob)", "OR(TEXT(F:alice),TEXT(F:bob))");
	OK("from:(alice bob@x.org)", "AND(TEXT(F:alice),TERM(XFA:bob@x.org))");
	OK("from:(alice -\"Bob Smith\")", "AND(TEXT(F:alice),NOT(PHRASE(F:Bob Smith)))");
	OK("from:((a OR b) c)", "AND(OR(TEXT(F:a),TEXT(F:b)),TEXT(F:c))");
	OK("from:(a subject:b)", "AND(TEXT(F:a),TEXT(S:b))");
	OK("subject:(a OR b) c", "AND(OR(TEXT(S:a),TEXT(S:b)),TEXT(:c))");
	OK("participants:(a OR @b.com)",
	   "OR(OR(OR(OR(TEXT(F:a),TEXT(T:a)),TEXT(C:a)),TEXT(B:a)),"
	   "OR(OR(OR(TERM(XFD:b.com),TERM(XTD:b.com)),TERM(XCD:b.com)),TERM(XBD:b.com)))");
	/* exact terms */
	OK("has:attachment", "TERM(XHAS:attachment)");
	OK("has:Attachment", "TERM(XHAS:attachment)");
	OK("-has:attachment", "AND(ALL,NOT(TERM(XHAS:attachment)))");
	OK("account:Legal-Box", "TERM(XACC:Legal-Box)");
	OK("account:\"Shared Box\"", "TERM(XACC:Shared Box)");
	OK("folder:Sent", "TERM(XFOL:Sent)");
	OK("folder:inbox", "TERM(XFOL:INBOX)");
	OK("folder:InBox", "TERM(XFOL:INBOX)");
	OK("folder:INBOX/Projects", "TERM(XFOL:INBOX/Projects)");
	OK("folder:\"Sent Items\"", "TERM(XFOL:Sent Items)");
	OK("msgid:<1234.JavaMail@thyme>", "TERM(XMID:1234.JavaMail@thyme)");
	OK("msgid:1234.JavaMail@thyme", "TERM(XMID:1234.JavaMail@thyme)");
	OK("msgid:<1234.*", "WILDCARD(XMID:1234.*)");
	OK("mimetype:Application/PDF", "TERM(XMT:application/pdf)");
	OK("mimetype:image/*", "WILDCARD(XMT:image/*)");
	OK("mimetype:\"text/plain\"", "TERM(XMT:text/plain)");
}

/* after:, before:, on: in UTC and in zones. */
static void test_dates(void)
{
	OK("after:2001-05-01", "RANGE(0:[988675200,inf])");
	OK("after:2001/05/01", "RANGE(0:[988675200,inf])");
	OK("after:2001/5/1", "RANGE(0:[988675200,inf])");
	OK("before:2001-05-01", "RANGE(0:[-inf,988675199])");
	OK("on:2001-05-01", "RANGE(0:[988675200,988761599])");
	OK("after:1970-01-01", "RANGE(0:[0,inf])");
	OK("before:1969-12-31", "RANGE(0:[-inf,-86401])");
	OK("after:2000-02-29", "RANGE(0:[951782400,inf])");
	OK("after:2038-01-19T03:14:08Z", "RANGE(0:[2147483648,inf])");
	OK("after:2001-05-01T10:30", "RANGE(0:[988713000,inf])");
	OK("after:2001-05-01T10:30:15Z", "RANGE(0:[988713015,inf])");
	OK("after:2001-05-01T10:30+02:00", "RANGE(0:[988705800,inf])");
	OK("before:2001-05-01T10:30-05:30", "RANGE(0:[-inf,988732799])");
	/* on: with a zone is that whole day in that zone */
	OK("on:2001-05-01T23:00+02:00", "RANGE(0:[988668000,988754399])");
	OK("on:2001-05-01T01:00-07:00", "RANGE(0:[988700400,988786799])");
	OK("on:2001-05-01T12:00Z", "RANGE(0:[988675200,988761599])");
	OK("after:2001-01-01 before:2002-01-01",
	   "AND(RANGE(0:[978307200,inf]),RANGE(0:[-inf,1009843199]))");
	OK("after:\"2001-05-01\"", "RANGE(0:[988675200,inf])");
	ERR("after:2001-02-29", "invalid date '2001-02-29' at column 7");
	ERR("on:2001-02-30", "invalid date '2001-02-30' at column 4");
	ERR("after:1900-02-29", "invalid date '1900-02-29' at column 7");
	ERR("after:2001-13-01", "invalid date '2001-13-01' at column 7");
	ERR("after:2001-00-10", "invalid date '2001-00-10' at column 7");
	ERR("after:2001-04-31", "invalid date '2001-04-31' at column 7");
	ERR("after:2001-04-00", "invalid date '2001-04-00' at column 7");
	ERR("after:yesterday", "invalid date 'yesterday' at column 7 (expected YYYY-MM-DD");
	ERR("after:01-05-2001", "invalid date '01-05-2001' at column 7");
	ERR("after:2001-05/01", "invalid date '2001-05/01' at column 7");
	ERR("after:2001-05-01T24:00", "invalid date '2001-05-01T24:00' at column 7");
	ERR("after:2001-05-01T10:60", "invalid date '2001-05-01T10:60' at column 7");
	ERR("after:2001-05-01T10", "invalid date '2001-05-01T10' at column 7");
	ERR("after:2001-05-01T10:30+2", "invalid date '2001-05-01T10:30+2' at column 7");
	ERR("after:2001-05-01Z", "invalid date '2001-05-01Z' at column 7");
	ERR("after:2001-05-01x", "invalid date '2001-05-01x' at column 7");
	ERR("after:2001-05-011", "invalid date '2001-05-011' at column 7");
	ERR("a after:2001-05", "invalid date '2001-05' at column 9");
}

/* larger:, smaller:. */
static void test_sizes(void)
{
	OK("larger:1000", "RANGE(1:[1000,inf])");
	OK("larger:10K", "RANGE(1:[10240,inf])");
	OK("larger:10kb", "RANGE(1:[10240,inf])");
	OK("larger:2M", "RANGE(1:[2097152,inf])");
	OK("larger:1G", "RANGE(1:[1073741824,inf])");
	OK("larger:5B", "RANGE(1:[5,inf])");
	OK("smaller:1M", "RANGE(1:[0,1048575])");
	OK("smaller:1mB", "RANGE(1:[0,1048575])");
	OK("smaller:0", "RANGE(1:[0,-1])");
	OK("larger:1M smaller:2M", "AND(RANGE(1:[1048576,inf]),RANGE(1:[0,2097151]))");
	ERR("larger:big", "invalid size 'big' at column 8");
	ERR("larger:10X", "invalid size '10X' at column 8");
	ERR("larger:K", "invalid size 'K' at column 8");
	ERR("larger:-5", "invalid size '-5' at column 8");
	ERR("larger:1.5M", "invalid size '1.5M' at column 8");
	ERR("larger:99999999999999999999", "invalid size '99999999999999999999' at column 8");
	ERR("larger:17179869184G", "invalid size '17179869184G' at column 8");
	ERR("smaller:10KBB", "invalid size '10KBB' at column 9");
}

/* Every error, with its message and column. */
static void test_errors(void)
{
	ERR("", "empty query");
	ERR("   \t ", "empty query");
	ERR("\"abc", "unterminated quote at column 1");
	ERR("a \"b \\\" c", "unterminated quote at column 3");
	ERR("a \"b\\", "unterminated quote at column 3");
	ERR("(a", "unbalanced '(' at column 1");
	ERR("a (b (c)", "unbalanced '(' at column 3");
	ERR("(", "unbalanced '(' at column 1");
	ERR("a)", "unbalanced ')' at column 2");
	ERR(")", "unbalanced ')' at column 1");
	ERR("(a) b) c", "unbalanced ')' at column 6");
	ERR("()", "empty parentheses at column 1");
	ERR("a ( ) b", "empty parentheses at column 3");
	ERR("from:()", "empty parentheses at column 6");
	ERR("frm:jeff", "unknown field 'frm' at column 1 (fields are: from, to, cc, bcc, participants, subject");
	ERR("a b Frm:jeff", "unknown field 'Frm' at column 5");
	ERR("re: budget", "unknown field 're' at column 1");
	ERR("日本 frm:x", "unknown field 'frm' at column 4");
	ERR("from:", "missing value after 'from:' at column 1");
	ERR("a from: b", "missing value after 'from:' at column 3");
	ERR("(from:)", "missing value after 'from:' at column 2");
	ERR("a OR", "'OR' with nothing after it at column 3");
	ERR("(a OR) b", "'OR' with nothing after it at column 4");
	ERR("OR a", "'OR' with nothing before it at column 1");
	ERR("a OR OR b", "'OR' with nothing before it at column 6");
	ERR("a AND", "'AND' with nothing after it at column 3");
	ERR("AND a", "'AND' with nothing before it at column 1");
	ERR("(AND a)", "'AND' with nothing before it at column 2");
	ERR("a AND AND b", "'AND' with nothing before it at column 7");
	ERR("NOT", "'NOT' with nothing after it at column 1");
	ERR("a NOT", "'NOT' with nothing after it at column 3");
	ERR("a OR NOT", "'NOT' with nothing after it at column 6");
	ERR("(NOT) a", "'NOT' with nothing after it at column 2");
	ERR("-NOT", "'NOT' with nothing after it at column 2");
	ERR("\"\"", "empty phrase at column 1");
	ERR("subject:\"  \"", "empty phrase at column 9");
	ERR("has:pdf", "unsupported value 'pdf' for has: at column 5 (supported: has:attachment)");
	ERR("from:@", "missing domain after '@' in 'from:@' at column 6");
	ERR("participants:@", "missing domain after '@' in 'from:@' at column 14");
	ERR("to:@*", "missing domain after '@' in 'to:@*' at column 4");
	ERR("msgid:<>", "empty message-id '<>' at column 7");
	ERR("mimetype:pdf", "invalid MIME type 'pdf' at column 10");
	ERR("mimetype:/pdf", "invalid MIME type '/pdf' at column 10");
	ERR("after:(2001-02-30)", "invalid date '2001-02-30' at column 8");
	/* length and depth limits */
	char big[8300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ERR(big, "query too long");
	big[8192] = '\0';
	char *d = parse_desc(big);
	CHECK(strncmp(d, "TEXT(:aaa", 9) == 0);
	free(d);
	char deep[300];
	size_t k = 0;
	for (int i = 0; i < 64; i++)
		deep[k++] = '(';
	deep[k++] = 'x';
	for (int i = 0; i < 64; i++)
		deep[k++] = ')';
	deep[k] = '\0';
	OK(deep, "TEXT(:x)");
	k = 0;
	for (int i = 0; i < 65; i++)
		deep[k++] = '(';
	deep[k++] = 'x';
	for (int i = 0; i < 65; i++)
		deep[k++] = ')';
	deep[k] = '\0';
	ERR(deep, "parentheses nested deeper than 64 at column 65");
	/* NULL is an empty query, and the error pointer is cleared on success */
	char *error = (char *)"stale";
	struct qnode *n = query_parse(NULL, &error);
	CHECK(n == NULL && error && strcmp(error, "empty query") == 0);
	free(error);
	n = query_parse("a", &error);
	CHECK(n != NULL && error == NULL);
	CHECK(n->pos == 0 && n->kind == QN_TEXT);
	query_free(&n);
	CHECK(n == NULL);
	query_free(&n);
	query_free(NULL);
	n = query_parse("a  from:b", &error);
	CHECK(n && n->right && n->right->pos == 8);
	query_free(&n);
}

/* The fuzz alphabet: tokens that exercise every branch of the lexer and parser. */
static const char *const fuzz_tokens[] = {
	" ", " ", " ", "\t", "(", ")", "\"", "\\", "\\\"", ":", "-", "*", "@", "a", "budget", "AND", "OR", "NOT",
	"and", "from:", "to:", "cc:", "bcc:", "participants:", "subject:", "body:", "filename:", "has:",
	"has:attachment", "account:", "folder:", "folder:inbox", "msgid:", "mimetype:", "after:", "before:",
	"on:", "larger:", "smaller:", "frm:", "re:", "10:30", "http://x", "jeff@enron.com", "@enron.com", "<",
	">", "2001-05-01", "2001-02-29", "2000-02-29T10:30+02:00", "T", "Z", "+", "10K", "99999999999999999999G",
	"é", "日本", "\xff", "\xc3", "/", "x*", "-(", "\"a b\"", "0", "9",
};

/* Appends s to a bounded query buffer. */
static void fuzz_add(char *q, size_t *len, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > cap)
		return;
	memcpy(q + *len, s, n);
	*len += n;
	q[*len] = '\0';
}

/* 50,000 random queries: each must give a tree or an error, never both, never a crash. */
static void test_fuzz(void)
{
	uint64_t state = 0x9e3779b97f4a7c15ULL;
	size_t ntok = sizeof(fuzz_tokens) / sizeof(fuzz_tokens[0]);
	static char q[9000];
	int bad = 0, trees = 0, errors = 0;
	for (int iter = 0; iter < 50000; iter++) {
		size_t len = 0;
		q[0] = '\0';
		state = state * 6364136223846793005ULL + 1442695040888963407ULL;
		unsigned count = (unsigned)(state >> 33) % 24;
		if (iter % 1000 == 999)
			count = 3000;   /* long queries, some over the limit */
		for (unsigned t = 0; t < count; t++) {
			state = state * 6364136223846793005ULL + 1442695040888963407ULL;
			unsigned r = (unsigned)(state >> 33);
			if (r % 97 == 0) {
				char rnd[4] = { (char)(1 + (r >> 8) % 255), (char)(1 + (r >> 16) % 255), 0, 0 };
				fuzz_add(q, &len, sizeof(q), rnd);
			} else {
				fuzz_add(q, &len, sizeof(q), fuzz_tokens[r % ntok]);
			}
		}
		char *error = NULL;
		struct qnode *n = query_parse(q, &error);
		if ((n == NULL) == (error == NULL))
			bad++;
		if (n) {
			trees++;
			char *d = query_describe(n);
			if (d == NULL || d[0] == '\0')
				bad++;
			free(d);
		} else {
			errors++;
		}
		query_free(&n);
		free(error);
	}
	CHECK(bad == 0 && trees > 1000 && errors > 1000);
}

/* nftw callback removing one file or directory. */
static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Adds one document to the test index, built by doc_build as the indexer builds it. */
static void add_doc(struct xs_db *db, uint64_t id, const char *from, const char *to, const char *subject,
		    const char *body, double date, double size, bool attachment)
{
	struct mime_address fa = { .addr = (char *)from }, ta = { .addr = (char *)to };
	struct mime_attachment att = { .filename = (char *)"report.pdf", .mimetype = (char *)"application/pdf" };
	struct mime_extract mx = {
		.subject = (char *)subject,
		.has_date = true,
		.date = (int64_t)date,
		.from = { &fa, 1 },
		.to = { &ta, 1 },
		.body = (char *)body,
		.body_len = strlen(body),
		.attachments = attachment ? &att : NULL,
		.nattachments = attachment ? 1 : 0,
	};
	struct doc_location loc = { "work", "INBOX" };
	struct xs_doc *doc = doc_build(&mx, &loc, 1, 0, (uint64_t)size);
	char *error = NULL;
	CHECK(xs_db_replace(db, id, doc, &error) == XS_OK);
	free(error);
	xs_doc_free(&doc);
}

/* How many documents q matches through query_to_xapian, or -1 on error. */
static long count_matches(struct xs_db *db, const char *q)
{
	char *error = NULL;
	struct qnode *n = query_parse(q, &error);
	long count = -1;
	if (n) {
		struct xs_query *xq = query_to_xapian(db, n, &error);
		uint64_t c;
		if (xq && xs_count(db, xq, &c, &error) == XS_OK)
			count = (long)c;
		xs_query_free(&xq);
	}
	if (error)
		fprintf(stderr, "query '%s': %s\n", q, error);
	free(error);
	query_free(&n);
	return count;
}

/* query_to_xapian end to end: a small index, the number of matches of each kind of query. */
static void test_xapian(void)
{
	char dir[] = "/tmp/test-query-XXXXXX";
	struct xs_db *db = NULL;
	char *error = NULL;
	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	CHECK(xs_db_open_writable(dir, &db, &error) == XS_OK);
	free(error);
	error = NULL;
	if (db == NULL)
		return;
	add_doc(db, 1, "jeff@enron.com", "kay@enron.com", "quarterly results", "the budget meeting",
		988711200, 5000, true);                                 /* 2001-05-01T10:00Z */
	add_doc(db, 2, "kay@enron.com", "jeff@enron.com", "lunch", "budget lunch", 991353600, 2 << 20, false);
	add_doc(db, 3, "bob@other.org", "ann@other.org", "game", "football results", 946684800, 100, false);
	CHECK(xs_db_commit(db, &error) == XS_OK);
	free(error);
	error = NULL;

	CHECK(count_matches(db, "budget") == 2);
	CHECK(count_matches(db, "-budget") == 1);
	CHECK(count_matches(db, "NOT (NOT budget)") == 2);
	CHECK(count_matches(db, "budget -from:kay@enron.com") == 1);
	CHECK(count_matches(db, "-from:kay@enron.com budget") == 1);
	CHECK(count_matches(db, "football OR -budget") == 1);
	CHECK(count_matches(db, "budget OR football") == 3);
	CHECK(count_matches(db, "budget OR football -lunch") == 2);
	CHECK(count_matches(db, "from:@enron.com") == 2);
	CHECK(count_matches(db, "from:(jeff OR bob)") == 2);
	CHECK(count_matches(db, "participants:jeff@enron.com") == 2);
	CHECK(count_matches(db, "participants:@other.org") == 1);
	CHECK(count_matches(db, "from:jeff@enr*") == 1);
	CHECK(count_matches(db, "subject:\"quarterly results\"") == 1);
	CHECK(count_matches(db, "\"results quarterly\"") == 0);
	CHECK(count_matches(db, "subject:results") == 1);
	CHECK(count_matches(db, "results") == 2);
	CHECK(count_matches(db, "budg*") == 2);
	/* the subject is indexed once (S) and found by free words and phrases, not by body: */
	CHECK(count_matches(db, "quarterly") == 1);
	CHECK(count_matches(db, "body:quarterly") == 0);
	CHECK(count_matches(db, "body:\"quarterly results\"") == 0);
	CHECK(count_matches(db, "body:budget") == 2);
	CHECK(count_matches(db, "body:\"budget meeting\"") == 1);
	/* free words and phrases also find names and address words (unstemmed), as Gmail and notmuch do */
	CHECK(count_matches(db, "jeff") == 2);                  /* from jeff, to jeff */
	CHECK(count_matches(db, "kay") == 2);
	CHECK(count_matches(db, "other") == 1);
	CHECK(count_matches(db, "\"jeff enron\"") == 2);
	CHECK(count_matches(db, "\"enron jeff\"") == 0);
	CHECK(count_matches(db, "jeff budget") == 2);           /* one word in a name, one in the body */
	CHECK(count_matches(db, "jeff meeting") == 1);
	CHECK(count_matches(db, "enr*") == 2);
	CHECK(count_matches(db, "body:jeff") == 0);
	CHECK(count_matches(db, "body:enr*") == 0);
	CHECK(count_matches(db, "subject:jeff") == 0);
	CHECK(count_matches(db, "jeffs") == 0);                 /* names are not stemmed: no "jeff" from "jeffs" */
	CHECK(count_matches(db, "\"quarterly results\"") == 1);
	CHECK(count_matches(db, "quarterly budget") == 1);      /* a subject word and a body word */
	CHECK(count_matches(db, "\"results the\"") == 0);     /* a phrase never joins subject and body */
	CHECK(count_matches(db, "quart*") == 1);
	CHECK(count_matches(db, "subject:budget") == 0);
	CHECK(count_matches(db, "lunch") == 1);
	/* address words are indexed unstemmed: found as written, in any case, by wildcard and phrase */
	CHECK(count_matches(db, "from:jeff") == 1);
	CHECK(count_matches(db, "from:JEFF") == 1);
	CHECK(count_matches(db, "from:enron") == 2);
	CHECK(count_matches(db, "from:enr*") == 2);
	CHECK(count_matches(db, "from:\"jeff enron\"") == 1);
	CHECK(count_matches(db, "from:\"enron jeff\"") == 0);
	CHECK(count_matches(db, "to:kay") == 1);
	CHECK(count_matches(db, "participants:kay") == 2);
	CHECK(count_matches(db, "filename:report") == 1);
	CHECK(count_matches(db, "account:work") == 3);
	CHECK(count_matches(db, "after:2001-05-01") == 2);
	CHECK(count_matches(db, "after:2001-05-01T10:00:01Z") == 1);
	CHECK(count_matches(db, "before:2001-05-01") == 1);
	CHECK(count_matches(db, "on:2001-05-01") == 1);
	CHECK(count_matches(db, "on:2001-05-01T00:00+12:00") == 1);
	CHECK(count_matches(db, "on:2001-05-01T00:00-12:00") == 0);
	CHECK(count_matches(db, "larger:1M") == 1);
	CHECK(count_matches(db, "smaller:5000") == 1);
	CHECK(count_matches(db, "smaller:5001") == 2);
	CHECK(count_matches(db, "has:attachment") == 1);
	CHECK(count_matches(db, "folder:inbox") == 3);
	CHECK(count_matches(db, "-folder:inbox") == 0);

	/* a NOT standing alone in a hand-built tree means "all but" */
	struct qnode text = { .kind = QN_TEXT, .prefix = PFX_BODY, .text = (char *)"football" };
	struct qnode not = { .kind = QN_NOT, .left = &text };
	struct xs_query *xq = query_to_xapian(db, &not, &error);
	uint64_t c = 0;
	CHECK(xq != NULL && xs_count(db, xq, &c, &error) == XS_OK && c == 2);
	xs_query_free(&xq);
	CHECK(query_to_xapian(db, NULL, &error) == NULL && error != NULL);
	free(error);

	xs_db_close(&db);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A wildcard that would match more words than the limit is an error, never a silent cut. */
static void test_wildcard_limit(void)
{
	char dir[] = "/tmp/test-query-XXXXXX";
	struct xs_db *db = NULL;
	char *error = NULL;
	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	CHECK(xs_db_open_writable(dir, &db, &error) == XS_OK);
	free(error);
	error = NULL;
	if (db == NULL)
		return;
	/* 1100 different words starting with zq, in the body of one message and the names of another */
	char body[1100 * 7 + 1], *p = body;
	for (int i = 0; i < 1100; i++)
		p += sprintf(p, "zq%04d ", i);
	add_doc(db, 1, "a@x.org", "b@x.org", "s", body, 0, 1, false);
	add_doc(db, 2, "zq9999@x.org", "b@x.org", "s", "nothing", 0, 1, false);
	CHECK(xs_db_commit(db, &error) == XS_OK);
	free(error);
	error = NULL;
	CHECK(count_matches(db, "zq000*") == 1);               /* ten words: fine */
	CHECK(count_matches(db, "zq99*") == 1);                /* found in a name */
	struct qnode *n = query_parse("zq*", &error);
	struct xs_query *xq = n ? query_to_xapian(db, n, &error) : NULL;
	uint64_t c = 0;
	CHECK(xq != NULL && xs_count(db, xq, &c, &error) == XS_ERR_QUERY);
	CHECK(error != NULL && strstr(error, "a wildcard matches more than 1024 different words: make it longer") != NULL);
	free(error);
	xs_query_free(&xq);
	query_free(&n);
	xs_db_close(&db);
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
	test_operators();
	test_fields();
	test_dates();
	test_sizes();
	test_errors();
	test_fuzz();
	test_xapian();
	test_wildcard_limit();
	return unit_finish("test-query");
}

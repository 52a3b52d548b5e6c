/* Unit tests of lib/mailbox.c (names and LIST patterns), lib/pg-array.c and util_term_safe(). */
#include "mailbox.h"
#include "pg-array.h"
#include "util.h"
#include "unit.h"

#include <stdlib.h>

/* The display name of a NUL-terminated raw name, checked against want. */
static void check_display(const char *raw, const char *want)
{
	char *got = mailbox_display_name((const unsigned char *)raw, strlen(raw));
	CHECK_STR(got, want);
	free(got);
}

/* Modified UTF-7 (RFC 3501 5.1.3), UTF-8 as sent, and what is neither. */
static void test_display_names(void)
{
	check_display("INBOX", "INBOX");
	check_display("inbox", "INBOX");
	check_display("Inbox/Sub", "Inbox/Sub");
	check_display("B&APw-cher", "B\xc3\xbc" "cher");
	check_display("&-", "&");
	check_display("Tom &- Jerry", "Tom & Jerry");
	/* RFC 3501's own example: ~peter/mail/&U,BTFw-/&ZeVnLIqe- */
	check_display("~peter/mail/&U,BTFw-/&ZeVnLIqe-", "~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e");
	/* a code point outside the BMP: a surrogate pair, U+1F600 */
	check_display("&2D3eAA-", "\xf0\x9f\x98\x80");
	/* malformed runs stay as written */
	check_display("AT&T", "AT&T");
	check_display("A&B", "A&B");
	check_display("&AP-", "&AP-");       /* padding bits not zero */
	check_display("&2D0-", "&2D0-");     /* an unpaired high surrogate */
	check_display("&-&APw", "&&APw");    /* unterminated run */
	check_display("Tr&AGE-sh", "Tr&AGE-sh"); /* printable ASCII encoded: not a second "Trash" */
	check_display("Trash&AAA-x", "Trash&AAA-x"); /* an encoded NUL would cut the name short */
	check_display("a&ABs-b", "a\x1b" "b");  /* a control character may be encoded (shown escaped later) */
	/* a name sent as UTF-8 already (UTF8=ACCEPT, or a careless server) */
	check_display("B\xc3\xbc" "cher & co", "B\xc3\xbc" "cher & co");
	/* neither UTF-8 nor ASCII: readable parts kept, the rest as \xNN */
	check_display("Caf\xe9 \xff", "Caf\\xe9 \\xff");
	check_display("", "");
}

/* IMAP LIST wildcards: * anything, % anything but the delimiter, the rest literal. */
static void test_patterns(void)
{
	CHECK(mailbox_pattern_match("Junk*", "Junk", '/'));
	CHECK(mailbox_pattern_match("Junk*", "Junk/Old", '/'));
	CHECK(mailbox_pattern_match("Junk*", "JunkMail", '/'));
	CHECK(!mailbox_pattern_match("Junk*", "Old Junk", '/'));
	CHECK(mailbox_pattern_match("[Gmail]", "[Gmail]", '/'));
	CHECK(!mailbox_pattern_match("[Gmail]", "G", '/'));
	CHECK(!mailbox_pattern_match("[Gmail]", "[Gmail]/Spam", '/'));
	CHECK(mailbox_pattern_match("[Gmail]/*", "[Gmail]/All Mail", '/'));
	CHECK(mailbox_pattern_match("%", "INBOX", '/'));
	CHECK(!mailbox_pattern_match("%", "a/b", '/'));
	CHECK(mailbox_pattern_match("a/%", "a/b", '/'));
	CHECK(!mailbox_pattern_match("a/%", "a/b/c", '/'));
	CHECK(mailbox_pattern_match("a/%/c", "a/b/c", '/'));
	CHECK(mailbox_pattern_match("%", "a.b", '/'));
	CHECK(mailbox_pattern_match("*", "", '/'));
	CHECK(!mailbox_pattern_match("?", "a", '/'));
	CHECK(mailbox_pattern_match("?", "?", '/'));
	CHECK(mailbox_pattern_match("a\\b", "a\\b", '/'));
	CHECK(mailbox_pattern_match("inbox", "INBOX", '/'));
	CHECK(mailbox_pattern_match("inbox/*", "INBOX/x", '/'));
	CHECK(!mailbox_pattern_match("inboxes", "INBOXES", '/'));
	CHECK(!mailbox_pattern_match("Junk", "junk", '/'));
	CHECK(mailbox_pattern_match("B\xc3\xbc" "cher*", "B\xc3\xbc" "cher/2001", '/'));
	CHECK(mailbox_pattern_match("%", "a/b", 0));
	/* no exponential backtracking on hostile patterns */
	char name[4001];
	memset(name, 'a', 4000);
	name[4000] = '\0';
	CHECK(!mailbox_pattern_match("*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", name, '/'));
	CHECK(mailbox_pattern_was_glob("[Gmail]"));
	CHECK(mailbox_pattern_was_glob("Junk?"));
	CHECK(mailbox_pattern_was_glob("a\\*"));
	CHECK(!mailbox_pattern_was_glob("Junk*"));
}

/* Array literals quote what PostgreSQL's array input would misread. */
static void test_pg_array(void)
{
	struct pg_array a = PG_ARRAY_INIT;
	CHECK_STR(pg_array_text(&a), "{}");
	pg_array_add_str(&a, "plain");
	pg_array_add_str(&a, "with \"quote\" and \\ backslash");
	pg_array_add_str(&a, "{braces},commas");
	pg_array_add_str(&a, NULL);
	pg_array_add_str(&a, "");
	CHECK_STR(pg_array_text(&a), "{\"plain\",\"with \\\"quote\\\" and \\\\ backslash\",\"{braces},commas\",NULL,\"\"}");
	pg_array_add_str(&a, "more");
	CHECK_STR(pg_array_text(&a), "{\"plain\",\"with \\\"quote\\\" and \\\\ backslash\",\"{braces},commas\",NULL,\"\",\"more\"}");
	pg_array_reset(&a);
	pg_array_add_int(&a, -5);
	pg_array_add_int(&a, 9007199254740993LL);
	CHECK_STR(pg_array_text(&a), "{-5,9007199254740993}");
	pg_array_reset(&a);
	CHECK_STR(pg_array_text(&a), "{}");
	pg_array_add_bool(&a, 1);
	pg_array_add_bool(&a, 0);
	CHECK_STR(pg_array_text(&a), "{t,f}");
	pg_array_free(&a);
}

/* Control characters never reach a terminal as themselves. */
static void test_term_safe(void)
{
	char *s = util_term_safe("Re: \x1b]0;owned\x07 hi", false);
	CHECK_STR(s, "Re: \\x1b]0;owned\\x07 hi");
	free(s);
	s = util_term_safe("line1\r\nline2\rover\ttab\x7f", true);
	CHECK_STR(s, "line1\nline2\\x0dover\ttab\\x7f");
	free(s);
	s = util_term_safe("a\nb", false);
	CHECK_STR(s, "a\\x0ab");
	free(s);
	/* C1 as UTF-8 (U+009B is CSI on some terminals), and bytes that are not UTF-8 */
	s = util_term_safe("x\xc2\x9b" "31m y\xc2\xa0z \x9b", false);
	CHECK_STR(s, "x\\u009b31m y\xc2\xa0z \\x9b");
	free(s);
	s = util_term_safe("Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac", false);
	CHECK_STR(s, "Gr\xc3\xbc\xc3\x9f" "e \xe2\x82\xac");
	free(s);
	CHECK_STR(util_term("\x1b[2J"), "\\x1b[2J");
	CHECK(util_term(NULL) == NULL);
}

int main(void)
{
	test_display_names();
	test_patterns();
	test_pg_array();
	test_term_safe();
	return unit_finish("test-mailbox");
}

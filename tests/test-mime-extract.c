/* Unit tests of indexer/mime-extract.c: exact decodings of hard cases, HTML reduction, hostile input,
   and the MIME edge corpus swept once in one thread and again in two threads at once. */
#include "mime-extract.h"
#include "unit.h"

#include <gmime/gmime.h>
#include <ftw.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CORPUS "/work/shared/corpora/mime-edge.tar.xz"

/* Extracts a NUL-terminated message. */
static void ex(const char *raw, struct mime_extract *m)
{
	mime_extract((const unsigned char *)raw, strlen(raw), m);
}

/* Whether m lists the MIME type t. */
static int has_type(const struct mime_extract *m, const char *t)
{
	for (size_t i = 0; i < m->nmimetypes; i++)
		if (strcmp(m->mimetypes[i], t) == 0)
			return 1;
	return 0;
}

/* Whether s contains needle (s may be NULL). */
static int contains(const char *s, const char *needle)
{
	return s != NULL && strstr(s, needle) != NULL;
}

/* Headers, ISO-2022-JP in body and in an encoded word, date, addresses, message-id. */
static void test_headers_iso2022jp(void)
{
	struct mime_extract m;
	ex("From: \"Doe, John\" <John.Doe@Example.COM>\r\n"
	   "To: a@example.org\r\n"
	   "Bcc: Hidden Person <HIDDEN@example.net>\r\n"
	   "Subject: =?ISO-2022-JP?B?GyRCN29MPiVGJTklSBsoQg==?=\r\n"
	   "Message-ID: <abc.123@example.com>\r\n"
	   "Date: Tue, 15 Nov 1994 08:12:31 -0500\r\n"
	   "MIME-Version: 1.0\r\n"
	   "Content-Type: text/plain; charset=ISO-2022-JP\r\n"
	   "Content-Transfer-Encoding: 7bit\r\n"
	   "\r\n"
	   "\x1b" "$BF|K\\8l$N%F%-%9%H" "\x1b" "(B\r\n", &m);
	CHECK_STR(m.subject, "件名テスト");
	CHECK_STR(m.body, "日本語のテキスト");
	CHECK_STR(m.message_id, "abc.123@example.com");
	CHECK(m.has_date && m.date == 784905151);
	CHECK(m.from.count == 1);
	if (m.from.count == 1) {
		CHECK_STR(m.from.items[0].name, "Doe, John");
		CHECK_STR(m.from.items[0].addr, "john.doe@example.com");
	}
	CHECK(m.to.count == 1 && m.to.items[0].name == NULL);
	CHECK(m.bcc.count == 1);
	if (m.bcc.count == 1) {
		CHECK_STR(m.bcc.items[0].name, "Hidden Person");
		CHECK_STR(m.bcc.items[0].addr, "hidden@example.net");
	}
	CHECK(m.cc.count == 0);
	CHECK(m.nmimetypes == 1 && has_type(&m, "text/plain"));
	CHECK(m.nattachments == 0 && m.attachment_text_len == 0);
	CHECK(m.problem == NULL);
	CHECK(m.body_len == strlen(m.body));
	mime_extract_free(&m);
	CHECK(m.body == NULL && m.subject == NULL);
}

/* Extracts a single text/plain message with the given charset and transfer-encoded body. */
static char *body_of(const char *charset, const char *cte, const char *body)
{
	char raw[4096];
	snprintf(raw, sizeof(raw),
		 "Subject: t\nContent-Type: text/plain; charset=%s\nContent-Transfer-Encoding: %s\n\n%s",
		 charset, cte, body);
	struct mime_extract m;
	ex(raw, &m);
	char *out = strdup(m.body);
	mime_extract_free(&m);
	return out;
}

/* Charsets: declared, unknown and lying; transfer encodings. */
static void test_charsets(void)
{
	struct { const char *charset, *cte, *body, *want; } cases[] = {
		{ "koi8-r", "8bit", "\xf0\xd2\xc9\xd7\xc5\xd4, \xcd\xc9\xd2\n", "Привет, мир" },
		{ "KOI8-R", "quoted-printable", "=F0=D2=C9=D7=C5=D4, =CD=C9=D2\n", "Привет, мир" },
		{ "gb2312", "8bit", "\xd6\xd0\xce\xc4\xb2\xe2\xca\xd4\n", "中文测试" },
		{ "windows-1252", "8bit", "\x93Smart\x94 quotes \x96 caf\xe9 \x80" "5\n", "“Smart” quotes – café €5" },
		{ "\"iso-8859-1\"", "8bit", "caf\xe9\n", "café" },
		{ "x-unknown", "8bit", "caf\xe9 cr\xe8me\n", "café crème" },
		{ "x-unknown", "8bit", "na\xc3\xafve\n", "naïve" },
		{ "no-such-charset-42", "8bit", "r\xe9sum\xe9\n", "résumé" },
		{ "us-ascii", "8bit", "na\xc3\xafve r\xc3\xa9sum\xc3\xa9\n", "naïve résumé" },   /* lying */
		{ "iso-8859-1", "8bit", "na\xc3\xafve\n", "naïve" },                               /* lying */
		{ "utf-8", "8bit", "caf\xe9\n", "café" },                                           /* lying */
		{ "utf-8", "quoted-printable", "Hello wor=\r\nld, caf=C3=A9 au lait=\r\n!\r\n", "Hello world, café au lait!" },
		{ "utf-8", "quoted-printable", "soft=\nbreak with LF\n", "softbreak with LF" },
		{ "utf-8", "base64", "SGVsbG8gYmFz\r\nZTY0IHdvcmxkDQo=\r\n", "Hello base64 world" },
		{ "iso-2022-jp", "7bit", "\x1b" "$BF|K\\8l" "\x1b" "(B\n", "日本語" },
		{ "utf-16le", "base64", "aABpAA==\n", "hi" },
		{ "'bad charset name'", "8bit", "ok\n", "ok" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = body_of(cases[i].charset, cases[i].cte, cases[i].body);
		CHECK_STR(got, cases[i].want);
		free(got);
	}
}

/* Attachments: RFC 2231 and RFC 2047 file names, text and binary attachments. */
static void test_attachments(void)
{
	struct mime_extract m;
	ex("Subject: files\n"
	   "MIME-Version: 1.0\n"
	   "Content-Type: multipart/mixed; boundary=\"XX\"\n"
	   "\n"
	   "preamble is not indexed\n"
	   "--XX\n"
	   "Content-Type: text/plain; charset=utf-8\n"
	   "\n"
	   "The body text.\n"
	   "--XX\n"
	   "Content-Type: application/PDF\n"
	   "Content-Disposition: attachment;\n"
	   " filename*0*=utf-8''%E2%82%AC%20rates;\n"
	   " filename*1=.pdf\n"
	   "Content-Transfer-Encoding: base64\n"
	   "\n"
	   "JVBERi0xLjQK\n"
	   "--XX\n"
	   "Content-Type: text/plain; charset=utf-8; name=\"=?utf-8?B?w6ljb2xlLnR4dA==?=\"\n"
	   "Content-Disposition: inline; filename=\"=?utf-8?B?w6ljb2xlLnR4dA==?=\"\n"
	   "\n"
	   "notes about school\n"
	   "--XX\n"
	   "Content-Type: text/plain\n"
	   "Content-Disposition: attachment; filename=notes.txt\n"
	   "\n"
	   "attached words\n"
	   "--XX\n"
	   "Content-Type: application/octet-stream\n"
	   "Content-Disposition: attachment; filename=\"blob.bin\"\n"
	   "Content-Transfer-Encoding: base64\n"
	   "\n"
	   "AAECQklOQVJZTUFSSw==\n"
	   "--XX--\n"
	   "epilogue\n", &m);
	CHECK_STR(m.body, "The body text.");
	CHECK(m.nattachments == 4);
	if (m.nattachments == 4) {
		CHECK_STR(m.attachments[0].filename, "€ rates.pdf");
		CHECK_STR(m.attachments[0].mimetype, "application/pdf");
		CHECK(m.attachments[0].size == 9 && !m.attachments[0].is_text);
		CHECK_STR(m.attachments[1].filename, "école.txt");
		CHECK(m.attachments[1].is_text && m.attachments[1].size == 18);
		CHECK_STR(m.attachments[2].filename, "notes.txt");
		CHECK_STR(m.attachments[2].mimetype, "text/plain");
		CHECK(m.attachments[2].is_text && m.attachments[2].size == 14);
		CHECK_STR(m.attachments[3].filename, "blob.bin");
		CHECK_STR(m.attachments[3].mimetype, "application/octet-stream");
		CHECK(m.attachments[3].size == 13 && !m.attachments[3].is_text);
	}
	CHECK_STR(m.attachment_text, "notes about school\nattached words");
	CHECK(!contains(m.body, "BINARYMARK") && !contains(m.attachment_text, "BINARYMARK"));
	CHECK(!contains(m.body, "preamble") && !contains(m.body, "epilogue"));
	CHECK(m.nmimetypes == 4 && has_type(&m, "multipart/mixed") && has_type(&m, "application/pdf") &&
	      has_type(&m, "text/plain") && has_type(&m, "application/octet-stream"));
	CHECK(m.problem == NULL);
	mime_extract_free(&m);
}

/* HTML-only messages, multipart/alternative, message/rfc822, signed and encrypted. */
static void test_structure(void)
{
	struct mime_extract m;
	ex("Subject: html\n"
	   "Content-Type: text/html; charset=utf-8\n"
	   "\n"
	   "<html><head><title>Ignored title</title><style>p { color: red }</style></head><body>"
	   "<p>Fish &amp; chips &lt;3</p><script>var x = \"<p>no</p>\";</script>"
	   "<div>caf&eacute;   costs &#8364;5 &#x41;&nbsp;B</div>Line<br>break &unknown; a < b</body></html>\n", &m);
	CHECK_STR(m.body, "Fish & chips <3\n\ncafé costs €5 A B\nLine\nbreak &unknown; a < b");
	CHECK(m.nattachments == 0 && has_type(&m, "text/html"));
	mime_extract_free(&m);

	ex("Subject: alt\n"
	   "Content-Type: multipart/alternative; boundary=b1\n"
	   "\n"
	   "--b1\n"
	   "Content-Type: text/plain\n"
	   "\n"
	   "Plain version\n"
	   "--b1\n"
	   "Content-Type: text/html\n"
	   "\n"
	   "<p>HTML version</p>\n"
	   "--b1--\n", &m);
	CHECK_STR(m.body, "Plain version");
	CHECK(has_type(&m, "text/html") && has_type(&m, "text/plain") && has_type(&m, "multipart/alternative"));
	mime_extract_free(&m);

	/* an empty text/plain next to HTML: the HTML is read */
	ex("Subject: alt2\n"
	   "Content-Type: multipart/alternative; boundary=b1\n"
	   "\n"
	   "--b1\n"
	   "Content-Type: text/plain\n"
	   "\n"
	   "  \n"
	   "--b1\n"
	   "Content-Type: multipart/related; boundary=b2\n"
	   "\n"
	   "--b2\n"
	   "Content-Type: text/html\n"
	   "\n"
	   "<p>Only <b>HTML</b> here</p>\n"
	   "--b2\n"
	   "Content-Type: image/png; name=logo.png\n"
	   "Content-Transfer-Encoding: base64\n"
	   "\n"
	   "iVBORw0KGgo=\n"
	   "--b2--\n"
	   "--b1--\n", &m);
	CHECK_STR(m.body, "Only HTML here");
	CHECK(m.nattachments == 1 && m.attachments[0].size == 8);
	mime_extract_free(&m);

	ex("Subject: outer\n"
	   "Content-Type: multipart/mixed; boundary=\"=_outer\"\n"
	   "\n"
	   "--=_outer\n"
	   "Content-Type: text/plain\n"
	   "\n"
	   "See attached.\n"
	   "--=_outer\n"
	   "Content-Type: message/rfc822\n"
	   "Content-Disposition: attachment; filename=fwd.eml\n"
	   "\n"
	   "From: Inner Person <inner@example.org>\n"
	   "Subject: =?utf-8?q?Inner_subj=C3=A9ct?=\n"
	   "Message-ID: <inner@example.org>\n"
	   "\n"
	   "inner secret words\n"
	   "--=_outer--\n", &m);
	CHECK_STR(m.body, "See attached.\nFrom: Inner Person <inner@example.org>\n"
			  "Subject: Inner subjéct\ninner secret words");
	CHECK_STR(m.subject, "outer");
	CHECK(m.message_id == NULL);
	CHECK(m.nattachments == 1);
	if (m.nattachments == 1) {
		CHECK_STR(m.attachments[0].filename, "fwd.eml");
		CHECK_STR(m.attachments[0].mimetype, "message/rfc822");
		CHECK(!m.attachments[0].is_text && m.attachments[0].size > 0);
	}
	CHECK(has_type(&m, "message/rfc822"));
	mime_extract_free(&m);

	ex("Subject: signed\n"
	   "Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=s\n"
	   "\n"
	   "--s\n"
	   "Content-Type: text/plain\n"
	   "\n"
	   "signed words\n"
	   "--s\n"
	   "Content-Type: application/pgp-signature; name=signature.asc\n"
	   "\n"
	   "-----BEGIN PGP SIGNATURE-----\nSIGDATA\n-----END PGP SIGNATURE-----\n"
	   "--s--\n", &m);
	CHECK_STR(m.body, "signed words");
	CHECK(m.nattachments == 0 && has_type(&m, "application/pgp-signature"));
	mime_extract_free(&m);

	ex("Subject: encrypted\n"
	   "Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\"; boundary=e\n"
	   "\n"
	   "--e\n"
	   "Content-Type: application/pgp-encrypted\n"
	   "\n"
	   "Version: 1\n"
	   "--e\n"
	   "Content-Type: application/octet-stream; name=encrypted.asc\n"
	   "\n"
	   "-----BEGIN PGP MESSAGE-----\nCIPHER\n-----END PGP MESSAGE-----\n"
	   "--e--\n", &m);
	CHECK_STR(m.body, "");
	CHECK(m.nattachments == 0 && has_type(&m, "application/pgp-encrypted") && !contains(m.attachment_text, "CIPHER"));
	CHECK_STR(m.subject, "encrypted");
	mime_extract_free(&m);

	ex("Subject: part 1\n"
	   "Message-ID: <p1@example.org>\n"
	   "Content-Type: message/partial; id=\"abc@host\"; number=1; total=2\n"
	   "\n"
	   "Subject: the whole\n"
	   "\n"
	   "first half of the words\n", &m);
	CHECK(contains(m.body, "first half of the words"));
	CHECK(m.nattachments == 0 && has_type(&m, "message/partial"));
	mime_extract_free(&m);
}

/* Addresses: groups flattened, names decoded, odd addresses. */
static void test_addresses(void)
{
	struct mime_extract m;
	ex("From: =?utf-8?q?Jos=C3=A9?= <JOSE@Example.ES>\n"
	   "To: Team: a@x.org, \"B\" <B@X.ORG>;, c@y.org\n"
	   "Cc: undisclosed-recipients:;\n"
	   "Bcc: root\n"
	   "\n"
	   "x\n", &m);
	CHECK(m.from.count == 1);
	if (m.from.count == 1) {
		CHECK_STR(m.from.items[0].name, "José");
		CHECK_STR(m.from.items[0].addr, "jose@example.es");
	}
	CHECK(m.to.count == 4);
	if (m.to.count == 4) {
		CHECK_STR(m.to.items[0].name, "Team");
		CHECK(m.to.items[0].addr == NULL);
		CHECK(m.to.items[1].name == NULL);
		CHECK_STR(m.to.items[1].addr, "a@x.org");
		CHECK_STR(m.to.items[2].name, "B");
		CHECK_STR(m.to.items[2].addr, "b@x.org");
		CHECK_STR(m.to.items[3].addr, "c@y.org");
	}
	CHECK(m.cc.count == 1 && m.cc.items[0].addr == NULL);
	if (m.cc.count == 1)
		CHECK_STR(m.cc.items[0].name, "undisclosed-recipients");
	CHECK(m.bcc.count == 1);
	if (m.bcc.count == 1)
		CHECK_STR(m.bcc.items[0].addr, "root");
	mime_extract_free(&m);
}

/* Broken input: invalid UTF-8 in headers, NULs, no header/body split, bad dates, deep nesting. */
static void test_broken(void)
{
	struct mime_extract m;
	ex("Subject: caf\xe9 ol\xe9 \xff\n"
	   "Date: not a date at all\n"
	   "Message-ID: no-brackets@example.com\n"
	   "\n"
	   "body\n", &m);
	CHECK_STR(m.subject, "café olé ÿ");
	CHECK(!m.has_date);
	CHECK_STR(m.message_id, "no-brackets@example.com");
	mime_extract_free(&m);

	static const char nul_msg[] = "Subject: nul\nContent-Type: text/plain; charset=utf-8\n\nabc\0def\0\n";
	mime_extract((const unsigned char *)nul_msg, sizeof(nul_msg) - 1, &m);
	CHECK_STR(m.body, "abcdef");
	CHECK(m.body_len == 6);
	mime_extract_free(&m);

	ex("Just some text\nwithout any headers\n", &m);
	CHECK_STR(m.body, "Just some text\nwithout any headers");
	CHECK(contains(m.problem, "raw text"));
	CHECK(m.subject == NULL && m.nmimetypes == 0);
	mime_extract_free(&m);

	ex("Subject: split\nMessage-ID: <split@x>\nthis line is the body\nand more body\n", &m);
	CHECK_STR(m.subject, "split");
	CHECK_STR(m.message_id, "split@x");
	CHECK(contains(m.body, "this line is the body\nand more body"));
	CHECK(contains(m.problem, "no header/body split"));
	mime_extract_free(&m);

	/* a first line of text with no empty line before it: GMime skips it, we keep it */
	ex("Subject: stray\nHi John,\n\nThe rest.\n", &m);
	CHECK_STR(m.subject, "stray");
	CHECK_STR(m.body, "Hi John,\nThe rest.");
	CHECK(contains(m.problem, "kept as body text"));
	mime_extract_free(&m);

	ex("Subject: only headers\nMessage-ID: <h@x>\n", &m);
	CHECK_STR(m.subject, "only headers");
	CHECK_STR(m.body, "");
	CHECK(m.problem == NULL);
	mime_extract_free(&m);

	ex("From someone@example.com Sat Jan  3 01:05:34 1996\nSubject: mbox\n\nmbox body\n", &m);
	CHECK_STR(m.subject, "mbox");
	CHECK_STR(m.body, "mbox body");
	CHECK(m.problem == NULL);
	mime_extract_free(&m);

	ex("\xef\xbb\xbf" "From: bom@example.com\nSubject: bom\n\nafter a byte order mark\n", &m);
	CHECK_STR(m.subject, "bom");
	CHECK_STR(m.body, "after a byte order mark");
	mime_extract_free(&m);

	mime_extract((const unsigned char *)"", 0, &m);
	CHECK_STR(m.body, "");
	CHECK(m.problem != NULL);
	mime_extract_free(&m);

	ex("Subject: =?utf-8?b?invalid_base64!!?= =?x-nonsense?q?abc?= =?utf-8?q?=FF?=\n\nx\n", &m);
	CHECK(m.subject != NULL && g_utf8_validate(m.subject, -1, NULL));
	mime_extract_free(&m);

	/* 40 levels of multipart/mixed, each with a text part: the walk stops at 32 */
	char *deep = malloc(40 * 160 + 256);
	size_t n = (size_t)sprintf(deep, "Subject: deep\nContent-Type: multipart/mixed; boundary=b0\n\n");
	for (int level = 0; level < 40; level++) {
		n += (size_t)sprintf(deep + n, "--b%d\nContent-Type: text/plain\n\nlevel %d\n", level, level);
		if (level < 39)
			n += (size_t)sprintf(deep + n, "--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n", level, level + 1);
	}
	for (int level = 39; level >= 0; level--)
		n += (size_t)sprintf(deep + n, "--b%d--\n", level);
	mime_extract((const unsigned char *)deep, n, &m);
	CHECK(contains(m.body, "level 0\nlevel 1\n"));
	CHECK(contains(m.body, "level 31") && !contains(m.body, "level 32"));
	CHECK(contains(m.problem, "nesting deeper than 32"));
	CHECK(m.nmimetypes == 2);
	mime_extract_free(&m);
	free(deep);
}

/* mime_html_to_text on malformed input: every case ends inside something unfinished. */
static void test_html(void)
{
	struct { const char *html, *want; } cases[] = {
		{ "<b>unclosed <i attr=\"x>y", "unclosed y" },
		{ "<b>unclosed <i attr=x", "unclosed" },
		{ "a <", "a <" },
		{ "a <3 b", "a <3 b" },
		{ "x<!-- never closed", "x" },
		{ "x<script>evil()", "x" },
		{ "<STYLE>p{}</STYLE >shown", "shown" },
		{ "<head><title>t</title><body>kept", "kept" },
		{ "&#0;&#xD800;&#99999999999;&#150;", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xe2\x80\x93" },
		{ "&amp &#65 &#x42", "&amp A B" },
		{ "<p>one</p><p>two</p><br><br><br>three", "one\n\ntwo\n\nthree" },
		{ "<ul><li>a</li><li>b</li></ul>", "a\nb" },
		{ "<table><tr><td>1</td><td>2</td></tr><tr><td>3</td></tr></table>", "1 2\n3" },
		{ "<pre>line1\nline2</pre>after  \n  text", "line1\nline2\nafter text" },
		{ "<a href='x>y'>link</a> <img src=\"a.png\" alt='<'>", "link" },
		{ "<", "<" },
		{ "&", "&" },
		{ "", "" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *t = mime_html_to_text(cases[i].html, strlen(cases[i].html), &len);
		CHECK_STR(t, cases[i].want);
		CHECK(len == strlen(t));
		free(t);
	}
	/* invalid UTF-8 and NULs come out as valid UTF-8 */
	size_t len;
	char *t = mime_html_to_text("a\xff\0b", 4, &len);
	CHECK_STR(t, "a\xef\xbf\xbd b");
	free(t);
}

/* A message to extract in another thread, and what came out. */
struct job {
	const unsigned char *data;
	size_t len;
	struct mime_extract m;
};

/* Thread body: extracts the job's message. */
static void *job_run(void *arg)
{
	struct job *j = arg;
	mime_extract(j->data, j->len, &j->m);
	return NULL;
}

/* Extracts in a thread with the given stack size (0: the default). */
static void run_job(struct job *j, size_t stack)
{
	pthread_attr_t attr;
	pthread_t th;
	pthread_attr_init(&attr);
	if (stack)
		pthread_attr_setstacksize(&attr, stack);
	if (pthread_create(&th, &attr, job_run, j) != 0)
		abort();
	pthread_join(th, NULL);
	pthread_attr_destroy(&attr);
}

/* Hostile input: text past the 8 MiB cap, megabyte header fields, huge charset names. */
static void test_hostile(void)
{
	size_t big = 9u * 1024 * 1024;
	const char *head = "Subject: big\nContent-Type: text/plain\n\n";
	size_t hl = strlen(head);
	unsigned char *msg = malloc(hl + big);
	memcpy(msg, head, hl);
	for (size_t i = 0; i < big; i++)
		msg[hl + i] = (i % 64 == 63) ? '\n' : (unsigned char)('a' + i % 26);
	struct job j = { msg, hl + big, { 0 } };
	run_job(&j, 0);
	CHECK(j.m.body_len <= 8u * 1024 * 1024 && j.m.body_len > 8u * 1024 * 1024 - 100);
	CHECK(contains(j.m.problem, "truncated at 8 MiB"));
	mime_extract_free(&j.m);
	free(msg);

	/* a 4 MiB Subject line and a To: folded over 200,000 lines: cut at 256 KiB each */
	size_t cap = 4u * 1024 * 1024 + 200000 * 24 + 256;
	char *hdr = malloc(cap);
	size_t n = (size_t)sprintf(hdr, "Subject: ");
	memset(hdr + n, 's', 4u * 1024 * 1024);
	n += 4u * 1024 * 1024;
	n += (size_t)sprintf(hdr + n, "\nTo: a@example.com");
	for (int i = 0; i < 200000; i++)
		n += (size_t)sprintf(hdr + n, ",\n u%06d@example.com", i);
	n += (size_t)sprintf(hdr + n, "\n\nbody after long headers\n");
	struct job h = { (unsigned char *)hdr, n, { 0 } };
	run_job(&h, 0);
	CHECK_STR(h.m.body, "body after long headers");
	CHECK(h.m.subject != NULL && strlen(h.m.subject) <= 256 * 1024 && strlen(h.m.subject) > 200 * 1024);
	CHECK(h.m.to.count == 10000); /* ~11,900 addresses fit in 256 KiB; 10,000 are kept */
	CHECK(contains(h.m.problem, "header field over 256 KiB cut"));
	mime_extract_free(&h.m);
	free(hdr);

	/* "=?<200 KiB>?q?x?=" and "x-junk*=<200 KiB>'en'v": GMime 3.2.13 copies such charset names to
	   the stack with alloca (twice), which overflows this 256 KiB thread stack unless defused */
	size_t name = 200u * 1024;
	unsigned char *evil = malloc(2 * name + 256);
	n = (size_t)sprintf((char *)evil, "Subject: =?");
	memset(evil + n, 'a', name);
	n += name;
	n += (size_t)sprintf((char *)evil + n, "?q?x?=\nContent-Type: text/plain; x-junk*=");
	memset(evil + n, 'b', name);
	n += name;
	n += (size_t)sprintf((char *)evil + n, "'en'v\n\nevil body\n");
	struct job k = { evil, n, { 0 } };
	run_job(&k, 256u * 1024);
	CHECK_STR(k.m.body, "evil body");
	CHECK(k.m.subject != NULL && k.m.nattachments == 0);
	mime_extract_free(&k.m);
	free(evil);
}

/* ---------- the corpus ---------- */

struct file {
	char *path;
	unsigned char *data;
	size_t len;
};

static struct file *files;
static size_t nfiles, files_cap;

/* nftw callback: records every regular file. */
static int collect(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)ftw;
	if (type != FTW_F || !S_ISREG(st->st_mode))
		return 0;
	if (nfiles == files_cap) {
		files_cap = files_cap ? files_cap * 2 : 1024;
		files = realloc(files, files_cap * sizeof(*files));
	}
	files[nfiles].path = strdup(path);
	files[nfiles].data = NULL;
	files[nfiles].len = 0;
	nfiles++;
	return 0;
}

/* Reads a whole file; 0 on success. */
static int slurp(struct file *f)
{
	FILE *fp = fopen(f->path, "rb");
	if (fp == NULL)
		return -1;
	struct stat st;
	if (fstat(fileno(fp), &st) != 0) {
		fclose(fp);
		return -1;
	}
	f->data = malloc((size_t)st.st_size + 1);
	f->len = fread(f->data, 1, (size_t)st.st_size, fp);
	fclose(fp);
	return f->len == (size_t)st.st_size ? 0 : -1;
}

/* FNV-1a over a field, with its length so that fields cannot run into each other. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 1099511628211ULL;
	for (size_t i = 0; i < sizeof(n); i++)
		h = (h ^ ((n >> (8 * i)) & 0xff)) * 1099511628211ULL;
	return h;
}

/* Hash of a string field (NULL distinct from ""). */
static uint64_t fnv_str(uint64_t h, const char *s)
{
	return s ? fnv(h, s, strlen(s)) : fnv(h, "\xff", 1);
}

/* Hash of everything extracted (subject, message-id, body, attachment names, and the rest). */
static uint64_t result_hash(const struct mime_extract *m)
{
	uint64_t h = 14695981039346656037ULL;
	h = fnv_str(h, m->subject);
	h = fnv_str(h, m->message_id);
	h = fnv(h, m->body, m->body_len);
	for (size_t i = 0; i < m->nattachments; i++) {
		h = fnv_str(h, m->attachments[i].filename);
		h = fnv_str(h, m->attachments[i].mimetype);
		h = fnv(h, &m->attachments[i].size, sizeof(m->attachments[i].size));
	}
	h = fnv(h, m->attachment_text, m->attachment_text_len);
	for (size_t i = 0; i < m->nmimetypes; i++)
		h = fnv_str(h, m->mimetypes[i]);
	const struct mime_address_list *lists[] = { &m->from, &m->to, &m->cc, &m->bcc };
	for (size_t l = 0; l < 4; l++)
		for (size_t i = 0; i < lists[l]->count; i++) {
			h = fnv_str(h, lists[l]->items[i].name);
			h = fnv_str(h, lists[l]->items[i].addr);
		}
	h = fnv(h, &m->date, sizeof(m->date));
	h = fnv_str(h, m->problem);
	return h;
}

/* One sweep over all files, forwards or backwards, storing the hashes. */
struct sweep {
	uint64_t *hashes;
	int backwards;
};

/* Thread body: extracts every file. */
static void *sweep_run(void *arg)
{
	struct sweep *s = arg;
	for (size_t k = 0; k < nfiles; k++) {
		size_t i = s->backwards ? nfiles - 1 - k : k;
		struct mime_extract m;
		mime_extract(files[i].data, files[i].len, &m);
		s->hashes[i] = result_hash(&m);
		mime_extract_free(&m);
	}
	return NULL;
}

/* Whether every string in m is valid UTF-8 (util_utf8_sanitize would not change it). */
static int valid_utf8(const char *s)
{
	return s == NULL || g_utf8_validate(s, -1, NULL);
}

/* Whether GMime itself (default options) reads a Message-ID with something in it. */
static int gmime_sees_message_id(const struct file *f)
{
	GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)f->data, f->len);
	GMimeParser *parser = g_mime_parser_new_with_stream(stream);
	GMimeMessage *msg = g_mime_parser_construct_message(parser, NULL);
	int seen = 0;
	if (msg != NULL) {
		const char *v = g_mime_object_get_header(GMIME_OBJECT(msg), "Message-ID");
		seen = v != NULL && v[strspn(v, " \t\r\n<>")] != '\0';
		g_object_unref(msg);
	}
	g_object_unref(parser);
	g_object_unref(stream);
	return seen;
}

/* Unpacks the corpus, extracts every file, checks Message-IDs, then repeats in two threads. */
static void test_corpus(void)
{
	char dir[] = "/tmp/test-mime-extract.XXXXXX";
	if (mkdtemp(dir) == NULL) {
		CHECK(!"mkdtemp");
		return;
	}
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "tar -xJf %s -C %s", CORPUS, dir);
	CHECK(system(cmd) == 0);
	const char *subdirs[] = { "mime_edge", "notmuch" };
	for (size_t i = 0; i < 2; i++) {
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		CHECK(nftw(path, collect, 32, FTW_PHYS) == 0);
	}
	CHECK(nfiles >= 1000);
	size_t read_ok = 0;
	for (size_t i = 0; i < nfiles; i++)
		read_ok += slurp(&files[i]) == 0;
	CHECK(read_ok == nfiles);

	uint64_t *single = calloc(nfiles, sizeof(uint64_t));
	size_t processed = 0, with_id = 0, id_missing = 0, bad_utf8 = 0, problems = 0;
	for (size_t i = 0; i < nfiles; i++) {
		struct mime_extract m;
		mime_extract(files[i].data, files[i].len, &m);
		processed++;
		single[i] = result_hash(&m);
		if (m.problem != NULL)
			problems++;
		if (!valid_utf8(m.subject) || !valid_utf8(m.message_id) || !valid_utf8(m.body) ||
		    !valid_utf8(m.attachment_text) || strlen(m.body) != m.body_len) {
			bad_utf8++;
			fprintf(stderr, "invalid UTF-8 from %s\n", files[i].path);
		}
		if (gmime_sees_message_id(&files[i])) {
			with_id++;
			if (m.message_id == NULL || m.message_id[0] == '\0') {
				id_missing++;
				fprintf(stderr, "no message_id from %s\n", files[i].path);
			}
		}
		mime_extract_free(&m);
	}
	CHECK(processed == nfiles);
	CHECK(id_missing == 0);
	CHECK(bad_utf8 == 0);
	CHECK(with_id > 500);
	printf("corpus: %zu files, %zu with a Message-ID, %zu with a problem noted\n", nfiles, with_id, problems);

	/* the same files in two threads at once (one forwards, one backwards): identical results */
	struct sweep a = { calloc(nfiles, sizeof(uint64_t)), 0 }, b = { calloc(nfiles, sizeof(uint64_t)), 1 };
	pthread_t ta, tb;
	CHECK(pthread_create(&ta, NULL, sweep_run, &a) == 0);
	CHECK(pthread_create(&tb, NULL, sweep_run, &b) == 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	size_t differ = 0;
	for (size_t i = 0; i < nfiles; i++)
		if (a.hashes[i] != single[i] || b.hashes[i] != single[i]) {
			differ++;
			fprintf(stderr, "threaded result differs: %s\n", files[i].path);
		}
	CHECK(differ == 0);
	free(a.hashes);
	free(b.hashes);
	free(single);

	for (size_t i = 0; i < nfiles; i++) {
		free(files[i].path);
		free(files[i].data);
	}
	free(files);
	files = NULL;
	nfiles = files_cap = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
}

int main(void)
{
	mime_extract_init();
	test_headers_iso2022jp();
	test_charsets();
	test_attachments();
	test_structure();
	test_addresses();
	test_broken();
	test_html();
	test_hostile();
	test_corpus();
	return unit_finish("test-mime-extract");
}

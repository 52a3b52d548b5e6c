/* Reads a raw message with GMime 3 into decoded header fields, addresses, body text and attachments. */
#include "mime-extract.h"
#include "buf.h"
#include "util.h"

#include <gmime/gmime.h>
#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Thread safety (checked against the GMime 3.2.13 sources and by tests/test-mime-extract.c under TSan):
   - g_mime_init() is a plain counter plus type registration: it runs once, under pthread_once;
   - every GType of GMime is registered by g_mime_init(); their get_type() functions use an unlocked
     "static GType type" and are only read afterwards; the content-type -> GType registry likewise;
   - the charset-name cache (g_mime_charset_iconv_name) is under GMime's own GMutex, and
     g_mime_iconv_open() in 3.2 has no cache at all: it is iconv_open(), which glibc makes thread-safe;
   - the default parser options are a global that must not be changed: each call builds its own
     GMimeParserOptions (its headers keep a pointer to them, so they live until the message is freed);
   - everything else (parser, streams, filters, message objects) belongs to one call.
   So no lock is needed around parsing different messages concurrently. Under TSan, with GMime itself
   rebuilt from its 3.2.13 sources with -fsanitize=thread, the two-thread corpus sweep reports only
   accesses inside GLib (GMutex is a futex, refcounts are atomics) and ld.so (gconv modules loaded
   under its own lock), which TSan cannot see synchronised; nothing in GMime or here.
   One process-wide cost remains: GMime caches every charset name it is asked about, for good.

   mime_extract leaves body and attachment_text non-NULL (possibly ""). */

/* Total text (body + attachment text) kept per message. */
#define MIME_EXTRACT_TEXT_MAX ((size_t)8 * 1024 * 1024)
/* Our walk stops descending below this many levels of nesting. */
#define MIME_EXTRACT_DEPTH_MAX 32
/* Parts visited per message; a hostile message can have millions of empty ones. */
#define MIME_EXTRACT_PARTS_MAX 10000
/* Distinct MIME types kept. */
#define MIME_EXTRACT_TYPES_MAX 256
/* Addresses kept per header. */
#define MIME_EXTRACT_ADDRS_MAX 10000
/* GMime copies charset names (of encoded words and RFC 2231 parameters) onto the stack with alloca;
   a name longer than this is neutralised before parsing (real names are under 40 bytes). */
#define MIME_EXTRACT_CHARSET_NAME_MAX 1024
/* Header fields are cut at this size before GMime sees them: GMime grows its header buffer 64 bytes
   at a time, which is quadratic for a field of megabytes (and real fields are far smaller). */
#define MIME_EXTRACT_FIELD_MAX ((size_t)256 * 1024)

/* What one extraction collects while walking the message. */
struct mime_extract_ctx {
	struct mime_extract *out;
	struct buf body, atext;
	size_t attachments_cap;
	size_t nparts;
	bool truncated, depth_cut, parts_cut, types_cut, field_cut;
	unsigned warnings;           /* bit per GMime critical warning seen */
	size_t want;                 /* the attachment whose decoded bytes go to capture (SIZE_MAX: none) */
	struct buf *capture;
	bool captured;
};

static pthread_once_t mime_extract_once = PTHREAD_ONCE_INIT;

/* Runs g_mime_init exactly once (it is not thread-safe itself). */
static void mime_extract_do_init(void)
{
	g_mime_init();
}

/* Public initialiser. */
void mime_extract_init(void)
{
	pthread_once(&mime_extract_once, mime_extract_do_init);
}

/* ---------- text helpers ---------- */

/* Counts valid multi-byte UTF-8 sequences and invalid bytes in p. */
static void mime_extract_utf8_scan(const unsigned char *p, size_t len, size_t *multi_r, size_t *invalid_r)
{
	size_t multi = 0, invalid = 0, i = 0;
	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n = util_utf8_seq_len(p + i, len - i);
		if (n == 0) {
			invalid++;
			i++;
		} else {
			multi++;
			i += n;
		}
	}
	*multi_r = multi;
	*invalid_r = invalid;
}

/* Appends code point cp as UTF-8. */
static void mime_extract_put_cp(struct buf *b, uint32_t cp)
{
	unsigned char s[4];
	size_t n;
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) { s[0] = (unsigned char)cp; n = 1; }
	else if (cp < 0x800) {
		s[0] = (unsigned char)(0xc0 | (cp >> 6)); s[1] = (unsigned char)(0x80 | (cp & 0x3f)); n = 2;
	}
	else if (cp < 0x10000) {
		s[0] = (unsigned char)(0xe0 | (cp >> 12)); s[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		s[2] = (unsigned char)(0x80 | (cp & 0x3f)); n = 3;
	} else {
		s[0] = (unsigned char)(0xf0 | (cp >> 18)); s[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		s[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f)); s[3] = (unsigned char)(0x80 | (cp & 0x3f)); n = 4;
	}
	buf_append(b, s, n);
}

/* windows-1252 code points of 0x80..0x9f; the five holes keep their Latin-1 (C1) value. */
static const uint16_t mime_extract_cp1252_high[32] = {
	0x20ac, 0x0081, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021,
	0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d, 0x017d, 0x008f,
	0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014,
	0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178,
};

/* Converts windows-1252 (a superset of Latin-1's printable range) to UTF-8; cannot fail. */
static void mime_extract_from_cp1252(const unsigned char *p, size_t len, struct buf *out)
{
	buf_reserve(out, len + len / 2);
	size_t i = 0;
	while (i < len) {
		size_t run = i;
		while (run < len && p[run] < 0x80)
			run++;
		buf_append(out, p + i, run - i);
		i = run;
		if (i < len) {
			unsigned char c = p[i++];
			mime_extract_put_cp(out, c < 0xa0 ? mime_extract_cp1252_high[c - 0x80] : c);
		}
	}
}

/* Text in no known charset: UTF-8 if it mostly is (bad bytes become U+FFFD later), else windows-1252. */
static void mime_extract_auto_text(const unsigned char *p, size_t len, struct buf *out)
{
	size_t multi, invalid;
	mime_extract_utf8_scan(p, len, &multi, &invalid);
	if (invalid == 0 || multi > invalid)
		buf_append(out, p, len);
	else
		mime_extract_from_cp1252(p, len, out);
}

/* Converts with iconv, replacing what does not convert with U+FFFD; returns the number of errors
   (stops early, returning a large count, when the input is clearly not in this charset). */
static size_t mime_extract_iconv(iconv_t cd, const unsigned char *in, size_t len, struct buf *out)
{
	char *ip = (char *)in;
	size_t il = len, errors = 0;
	while (il > 0) {
		buf_reserve(out, il * 2 + 64);
		char *op = (char *)out->data + out->len;
		size_t ol = out->cap - out->len - 1;
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		int e = errno;
		out->len = (size_t)((unsigned char *)op - out->data);
		if (r != (size_t)-1)
			break;
		if (e == E2BIG) {
			buf_reserve(out, out->cap);
			continue;
		}
		errors++;
		buf_append(out, "\xef\xbf\xbd", 3);
		if (e == EILSEQ && errors < 1000 + len / 16) {
			ip++;
			il--;
			continue;
		}
		if (e != EINVAL)
			errors = SIZE_MAX / 2; /* hopeless: let the caller fall back */
		break;
	}
	/* flush the shift state of stateful charsets (ISO-2022-JP) */
	for (int tries = 0; tries < 8; tries++) {
		buf_reserve(out, 64);
		char *op = (char *)out->data + out->len;
		size_t ol = out->cap - out->len - 1;
		size_t r = iconv(cd, NULL, NULL, &op, &ol);
		int e = errno;
		out->len = (size_t)((unsigned char *)op - out->data);
		if (r != (size_t)-1 || e != E2BIG)
			break;
	}
	out->data[out->len] = '\0';
	return errors;
}

/* Lower-case copy of a charset name without quotes and blanks, or NULL if it is not a plausible name. */
static char *mime_extract_charset_name(const char *charset)
{
	if (charset == NULL)
		return NULL;
	while (*charset == ' ' || *charset == '\t' || *charset == '"' || *charset == '\'')
		charset++;
	size_t n = strlen(charset);
	while (n > 0 && (charset[n - 1] == ' ' || charset[n - 1] == '\t' || charset[n - 1] == '"' ||
			 charset[n - 1] == '\''))
		n--;
	if (n == 0 || n > 64)
		return NULL;
	char *name = xstrndup(charset, n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		if (c >= 'A' && c <= 'Z')
			name[i] = (char)(c + 32);
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-_.:+()", c))) {
			free(name);
			return NULL;
		}
	}
	return name;
}

/* Charsets decoded as a superset that real mail often uses under their name. */
static const char *mime_extract_charset_superset(const char *name)
{
	static const struct { const char *name, *use; } map[] = {
		{ "gb2312", "GB18030" }, { "gbk", "GB18030" }, { "x-gbk", "GB18030" }, { "euc-cn", "GB18030" },
		{ "cp936", "GB18030" }, { "ks_c_5601-1987", "CP949" }, { "euc-kr", "CP949" },
		{ "big5", "BIG5-HKSCS" },
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(name, map[i].name) == 0)
			return map[i].use;
	return name;
}

/* Converts text in the declared charset to UTF-8 (appended to out); never fails. The declared charset
   is tried first; if it is unknown or the bytes do not convert, valid UTF-8 is taken as such (a
   "lying" charset), a few bad bytes become U+FFFD, and anything else is read as windows-1252. */
static void mime_extract_to_utf8(const char *declared, const unsigned char *p, size_t len, struct buf *out)
{
	char *name = mime_extract_charset_name(declared);
	if (name == NULL || strcmp(name, "utf-8") == 0 || strcmp(name, "utf8") == 0 ||
	    strcmp(name, "us-ascii") == 0 || strcmp(name, "ascii") == 0 || strcmp(name, "x-unknown") == 0 ||
	    strcmp(name, "unknown-8bit") == 0 || strcmp(name, "unknown") == 0 || strcmp(name, "default") == 0) {
		/* no usable charset (x-unknown would make GMime use the process's locale) */
		mime_extract_auto_text(p, len, out);
		free(name);
		return;
	}
	if (strcmp(name, "iso-8859-1") == 0 || strcmp(name, "latin1") == 0 || strcmp(name, "iso8859-1") == 0 ||
	    strcmp(name, "windows-1252") == 0 || strcmp(name, "cp1252") == 0) {
		/* single-byte charsets never fail: only UTF-8 that claims to be Latin-1 is caught */
		size_t multi, invalid;
		mime_extract_utf8_scan(p, len, &multi, &invalid);
		if (multi > 0 && invalid == 0)
			buf_append(out, p, len);
		else
			mime_extract_from_cp1252(p, len, out);
		free(name);
		return;
	}
	iconv_t cd = g_mime_iconv_open("UTF-8", mime_extract_charset_superset(name));
	free(name);
	if (cd == (iconv_t)-1) {
		mime_extract_auto_text(p, len, out);
		return;
	}
	struct buf tmp = { 0 };
	size_t errors = mime_extract_iconv(cd, p, len, &tmp);
	g_mime_iconv_close(cd);
	size_t multi, invalid;
	if (errors == 0) {
		buf_append(out, tmp.data, tmp.len);
	} else if (mime_extract_utf8_scan(p, len, &multi, &invalid), invalid == 0 && multi > 0) {
		buf_append(out, p, len);
	} else if (errors <= len / 100 + 1) {
		buf_append(out, tmp.data, tmp.len); /* mostly right: keep it, with U+FFFD for the few bad bytes */
	} else {
		mime_extract_auto_text(p, len, out);
	}
	buf_free(&tmp);
}

/* Copy of a GMime string as sanitised UTF-8 (trimmed of surrounding blanks), or NULL if empty. */
static char *mime_extract_str(const char *s)
{
	if (s == NULL)
		return NULL;
	char *clean = util_utf8_sanitize(s, strlen(s));
	char *start = clean;
	while (*start == ' ' || *start == '\t' || *start == '\r' || *start == '\n')
		start++;
	size_t n = strlen(start);
	while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t' || start[n - 1] == '\r' || start[n - 1] == '\n'))
		n--;
	char *out = n ? xstrndup(start, n) : NULL;
	free(clean);
	return out;
}

/* ---------- HTML ---------- */

/* Named entities we decode (the common ones; others stay as written). */
static const struct { const char *name; uint32_t cp; } mime_extract_entities[] = {
	{ "amp", '&' }, { "lt", '<' }, { "gt", '>' }, { "quot", '"' }, { "apos", '\'' }, { "nbsp", ' ' },
	{ "ensp", ' ' }, { "emsp", ' ' }, { "thinsp", ' ' }, { "shy", 0 }, { "zwnj", 0 }, { "zwj", 0 },
	{ "copy", 0xa9 }, { "reg", 0xae }, { "trade", 0x2122 }, { "hellip", 0x2026 }, { "mdash", 0x2014 },
	{ "ndash", 0x2013 }, { "lsquo", 0x2018 }, { "rsquo", 0x2019 }, { "sbquo", 0x201a }, { "ldquo", 0x201c },
	{ "rdquo", 0x201d }, { "bdquo", 0x201e }, { "bull", 0x2022 }, { "middot", 0xb7 }, { "euro", 0x20ac },
	{ "pound", 0xa3 }, { "yen", 0xa5 }, { "cent", 0xa2 }, { "sect", 0xa7 }, { "deg", 0xb0 },
	{ "laquo", 0xab }, { "raquo", 0xbb }, { "times", 0xd7 }, { "divide", 0xf7 }, { "plusmn", 0xb1 },
	{ "para", 0xb6 }, { "iexcl", 0xa1 }, { "iquest", 0xbf }, { "acute", 0xb4 }, { "uml", 0xa8 },
	{ "agrave", 0xe0 }, { "aacute", 0xe1 }, { "acirc", 0xe2 }, { "atilde", 0xe3 }, { "auml", 0xe4 },
	{ "aring", 0xe5 }, { "aelig", 0xe6 }, { "ccedil", 0xe7 }, { "egrave", 0xe8 }, { "eacute", 0xe9 },
	{ "ecirc", 0xea }, { "euml", 0xeb }, { "igrave", 0xec }, { "iacute", 0xed }, { "icirc", 0xee },
	{ "iuml", 0xef }, { "ntilde", 0xf1 }, { "ograve", 0xf2 }, { "oacute", 0xf3 }, { "ocirc", 0xf4 },
	{ "otilde", 0xf5 }, { "ouml", 0xf6 }, { "oslash", 0xf8 }, { "ugrave", 0xf9 }, { "uacute", 0xfa },
	{ "ucirc", 0xfb }, { "uuml", 0xfc }, { "yacute", 0xfd }, { "yuml", 0xff }, { "szlig", 0xdf },
	{ "Agrave", 0xc0 }, { "Aacute", 0xc1 }, { "Acirc", 0xc2 }, { "Auml", 0xc4 }, { "Aring", 0xc5 },
	{ "AElig", 0xc6 }, { "Ccedil", 0xc7 }, { "Egrave", 0xc8 }, { "Eacute", 0xc9 }, { "Ntilde", 0xd1 },
	{ "Oacute", 0xd3 }, { "Ouml", 0xd6 }, { "Oslash", 0xd8 }, { "Uacute", 0xda }, { "Uuml", 0xdc },
};

/* Elements whose start or end breaks the line: 1 starts a new line, 2 leaves an empty line too. */
static const struct { const char *name; int lines; } mime_extract_block_tags[] = {
	{ "p", 2 }, { "h1", 2 }, { "h2", 2 }, { "h3", 2 }, { "h4", 2 }, { "h5", 2 }, { "h6", 2 },
	{ "blockquote", 2 }, { "div", 1 }, { "tr", 1 }, { "li", 1 }, { "ul", 1 }, { "ol", 1 }, { "dl", 1 },
	{ "dt", 1 }, { "dd", 1 }, { "table", 1 }, { "pre", 1 }, { "hr", 1 }, { "section", 1 },
	{ "article", 1 }, { "header", 1 }, { "footer", 1 }, { "address", 1 }, { "form", 1 },
	{ "fieldset", 1 }, { "figure", 1 }, { "figcaption", 1 }, { "main", 1 }, { "nav", 1 }, { "aside", 1 },
	{ "center", 1 }, { "caption", 1 }, { "title", 1 }, { "body", 1 }, { "html", 1 }, { "thead", 1 },
	{ "tbody", 1 }, { "tfoot", 1 },
};

/* The output side of mime_html_to_text: white space is collapsed as it is emitted. */
struct mime_extract_html_out {
	struct buf b;
	bool space;          /* white space seen since the last text */
	int newlines;        /* newlines at the end of b */
};

/* Emits text bytes, preceded by one space if white space came before. */
static void mime_extract_html_text(struct mime_extract_html_out *o, const void *p, size_t n)
{
	if (n == 0)
		return;
	if (o->space && o->b.len > 0 && o->newlines == 0)
		buf_append(&o->b, " ", 1);
	o->space = false;
	o->newlines = 0;
	buf_append(&o->b, p, n);
}

/* Ends the line so that at least lines (1 or 2) line breaks end the text; none at the start. */
static void mime_extract_html_break(struct mime_extract_html_out *o, int lines)
{
	o->space = false;
	if (o->b.len == 0)
		return;
	if (lines > 2)
		lines = 2;
	while (o->newlines < lines) {
		buf_append(&o->b, "\n", 1);
		o->newlines++;
	}
}

/* Case-insensitive search for needle (lower case) in p[from..len); returns its offset or len. */
static size_t mime_extract_find_ci(const char *p, size_t len, size_t from, const char *needle)
{
	size_t n = strlen(needle);
	for (size_t i = from; i + n <= len; i++) {
		if (g_ascii_tolower(p[i]) != needle[0])
			continue;
		size_t k = 1;
		while (k < n && g_ascii_tolower(p[i + k]) == needle[k])
			k++;
		if (k == n)
			return i;
	}
	return len;
}

/* Decodes the entity at p[i] == '&'; emits it and returns the bytes consumed (0: not an entity). */
static size_t mime_extract_html_entity(struct mime_extract_html_out *o, const char *p, size_t len, size_t i)
{
	size_t j = i + 1;
	if (j < len && p[j] == '#') {
		j++;
		bool hex = j < len && (p[j] == 'x' || p[j] == 'X');
		if (hex)
			j++;
		size_t start = j;
		uint32_t cp = 0;
		while (j < len && j - start < 8 && (hex ? g_ascii_isxdigit(p[j]) : g_ascii_isdigit(p[j]))) {
			cp = cp * (hex ? 16 : 10) + (uint32_t)(hex ? g_ascii_xdigit_value(p[j]) : p[j] - '0');
			j++;
		}
		if (j == start)
			return 0;
		while (j < len && (hex ? g_ascii_isxdigit(p[j]) : g_ascii_isdigit(p[j]))) {
			cp = 0x110000; /* too many digits */
			j++;
		}
		if (j < len && p[j] == ';')
			j++;
		if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			cp = 0xfffd;
		else if (cp >= 0x80 && cp <= 0x9f)
			cp = mime_extract_cp1252_high[cp - 0x80]; /* as browsers do */
		struct buf tmp = { 0 };
		if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
			o->space = true;
		} else {
			mime_extract_put_cp(&tmp, cp);
			mime_extract_html_text(o, tmp.data, tmp.len);
		}
		buf_free(&tmp);
		return j - i;
	}
	size_t start = j;
	while (j < len && j - start < 32 && g_ascii_isalnum(p[j]))
		j++;
	if (j == start || j >= len || p[j] != ';')
		return 0;
	for (size_t e = 0; e < sizeof(mime_extract_entities) / sizeof(mime_extract_entities[0]); e++) {
		const char *ename = mime_extract_entities[e].name;
		if (strlen(ename) == j - start && memcmp(ename, p + start, j - start) == 0) {
			uint32_t cp = mime_extract_entities[e].cp;
			if (cp == ' ') {
				o->space = true;
			} else if (cp != 0) {
				struct buf tmp = { 0 };
				mime_extract_put_cp(&tmp, cp);
				mime_extract_html_text(o, tmp.data, tmp.len);
				buf_free(&tmp);
			}
			return j + 1 - i;
		}
	}
	return 0;
}

/* Reduces HTML to text; see the header. Linear in len: every scan moves forward. */
char *mime_html_to_text(const char *html, size_t len, size_t *out_len)
{
	struct mime_extract_html_out o = { 0 };
	const char *p = html ? html : "";
	bool quotes_ok = true; /* cleared once a quote in a tag ran to the end: unbalanced quotes */
	bool pre = false;
	size_t i = 0;
	if (html == NULL)
		len = 0;
	while (i < len) {
		unsigned char c = (unsigned char)p[i];
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v' || c == '\0') {
			if (pre && c == '\n')
				mime_extract_html_break(&o, o.newlines + 1);
			else
				o.space = true;
			i++;
			continue;
		}
		if (c == '&') {
			size_t n = mime_extract_html_entity(&o, p, len, i);
			if (n == 0) {
				mime_extract_html_text(&o, "&", 1);
				n = 1;
			}
			i += n;
			continue;
		}
		if (c != '<') {
			size_t run = i + 1;
			while (run < len && !strchr(" \t\r\n\f\v&<", p[run]) && p[run] != '\0')
				run++;
			mime_extract_html_text(&o, p + i, run - i);
			i = run;
			continue;
		}
		/* '<': a tag, a comment, a declaration, or just a '<' in text */
		unsigned char next = i + 1 < len ? (unsigned char)p[i + 1] : 0;
		if (next == '!') {
			size_t end;
			if (i + 3 < len && p[i + 2] == '-' && p[i + 3] == '-') {
				size_t k = mime_extract_find_ci(p, len, i + 4, "-->");
				end = k < len ? k + 3 : len;
			} else {
				const char *gt = memchr(p + i, '>', len - i);
				end = gt ? (size_t)(gt - p) + 1 : len;
			}
			i = end;
			continue;
		}
		if (next == '?') {
			const char *gt = memchr(p + i, '>', len - i);
			i = gt ? (size_t)(gt - p) + 1 : len;
			continue;
		}
		bool closing = next == '/';
		size_t j = i + 1 + (closing ? 1 : 0);
		if (j >= len || !g_ascii_isalpha(p[j])) {
			mime_extract_html_text(&o, "<", 1);
			i++;
			continue;
		}
		char name[16];
		size_t nl = 0;
		while (j < len && (g_ascii_isalnum(p[j]) || p[j] == '-' || p[j] == ':')) {
			if (nl < sizeof(name) - 1)
				name[nl++] = g_ascii_tolower(p[j]);
			j++;
		}
		name[nl] = '\0';
		/* the end of the tag: the first '>' outside quoted attribute values */
		size_t end = len;
		if (quotes_ok) {
			char q = 0;
			size_t k;
			for (k = j; k < len; k++) {
				if (q) {
					if (p[k] == q)
						q = 0;
				} else if (p[k] == '"' || p[k] == '\'') {
					q = p[k];
				} else if (p[k] == '>') {
					break;
				}
			}
			if (k < len)
				end = k + 1;
			else if (q)
				quotes_ok = false;
		}
		if (!quotes_ok && end == len) {
			const char *gt = memchr(p + j, '>', len - j);
			end = gt ? (size_t)(gt - p) + 1 : len;
		}
		i = end;
		if (!closing && (strcmp(name, "script") == 0 || strcmp(name, "style") == 0)) {
			/* raw text up to the end tag (or the end of the document, as browsers do) */
			size_t k = mime_extract_find_ci(p, len, i, strcmp(name, "script") == 0 ? "</script" : "</style");
			if (k < len) {
				const char *gt = memchr(p + k, '>', len - k);
				i = gt ? (size_t)(gt - p) + 1 : len;
			} else {
				i = len;
			}
			o.space = true;
			continue;
		}
		if (!closing && strcmp(name, "head") == 0) {
			/* skip to </head> or, if that is missing, to <body> */
			size_t k = i;
			while (k < len) {
				const char *lt = memchr(p + k, '<', len - k);
				if (lt == NULL) {
					k = len;
					break;
				}
				k = (size_t)(lt - p);
				if (mime_extract_find_ci(p, k + 6 <= len ? k + 6 : len, k, "</head") == k ||
				    mime_extract_find_ci(p, k + 5 <= len ? k + 5 : len, k, "<body") == k)
					break;
				k++;
			}
			if (k < len && p[k + 1] == '/') {
				const char *gt = memchr(p + k, '>', len - k);
				i = gt ? (size_t)(gt - p) + 1 : len;
			} else {
				i = k; /* the <body> tag is read normally */
			}
			continue;
		}
		if (strcmp(name, "pre") == 0)
			pre = !closing;
		if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0 || strcmp(name, "img") == 0) {
			o.space = true;
			continue;
		}
		if (strcmp(name, "br") == 0) {
			mime_extract_html_break(&o, o.newlines + 1);
			continue;
		}
		for (size_t t = 0; t < sizeof(mime_extract_block_tags) / sizeof(mime_extract_block_tags[0]); t++) {
			if (strcmp(name, mime_extract_block_tags[t].name) == 0) {
				mime_extract_html_break(&o, mime_extract_block_tags[t].lines);
				break;
			}
		}
	}
	/* drop trailing line breaks */
	while (o.b.len > 0 && o.b.data[o.b.len - 1] == '\n')
		o.b.len--;
	char *text = util_utf8_sanitize(o.b.data ? (const char *)o.b.data : "", o.b.len);
	buf_free(&o.b);
	if (out_len)
		*out_len = strlen(text);
	return text;
}

/* ---------- collecting ---------- */

/* Adds a note to out->problem (notes joined with "; "). */
static void mime_extract_problem(struct mime_extract_ctx *ctx, const char *note)
{
	struct mime_extract *out = ctx->out;
	if (out->problem != NULL && strstr(out->problem, note) != NULL)
		return;
	char *p = out->problem ? xasprintf("%s; %s", out->problem, note) : xstrdup(note);
	free(out->problem);
	out->problem = p;
}

/* Text budget left for body and attachment text together. */
static size_t mime_extract_budget(const struct mime_extract_ctx *ctx)
{
	size_t used = ctx->body.len + ctx->atext.len;
	return used < MIME_EXTRACT_TEXT_MAX ? MIME_EXTRACT_TEXT_MAX - used : 0;
}

/* Appends a piece of text to dst on a line of its own, within the budget (cut at a character). */
static void mime_extract_add_text(struct mime_extract_ctx *ctx, struct buf *dst, const unsigned char *s, size_t n)
{
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return;
	size_t left = mime_extract_budget(ctx);
	if (left <= 1) {
		ctx->truncated = true;
		return;
	}
	if (dst->len > 0) {
		buf_append(dst, "\n", 1);
		left--;
	}
	if (n > left) {
		n = left;
		while (n > 0 && (s[n] & 0xc0) == 0x80)
			n--;
		ctx->truncated = true;
	}
	buf_append(dst, s, n);
}

/* Records a MIME type once. */
static void mime_extract_add_type(struct mime_extract_ctx *ctx, GMimeObject *obj)
{
	struct mime_extract *out = ctx->out;
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	char *mt = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	if (mt == NULL)
		return;
	char *clean = util_utf8_sanitize(mt, strlen(mt));
	g_free(mt);
	char *lower = g_ascii_strdown(clean, -1);
	free(clean);
	for (size_t i = 0; i < out->nmimetypes; i++) {
		if (strcmp(out->mimetypes[i], lower) == 0) {
			g_free(lower);
			return;
		}
	}
	if (out->nmimetypes >= MIME_EXTRACT_TYPES_MAX) {
		ctx->types_cut = true;
		g_free(lower);
		return;
	}
	out->mimetypes = xrealloc(out->mimetypes, (out->nmimetypes + 1) * sizeof(char *));
	out->mimetypes[out->nmimetypes++] = xstrdup(lower);
	g_free(lower);
}

static size_t mime_extract_decode(GMimePart *part, size_t keep, struct buf *out);

/* Adds an attachment entry. */
static void mime_extract_add_attachment(struct mime_extract_ctx *ctx, const char *filename, GMimeObject *obj,
					size_t size, bool is_text)
{
	struct mime_extract *out = ctx->out;
	if (out->nattachments == ctx->attachments_cap) {
		ctx->attachments_cap = ctx->attachments_cap ? ctx->attachments_cap * 2 : 4;
		out->attachments = xrealloc(out->attachments, ctx->attachments_cap * sizeof(*out->attachments));
	}
	if (ctx->capture != NULL && out->nattachments == ctx->want) {
		/* the bytes an officer downloads: the part decoded from its transfer encoding, or the
		   attached message as it was written */
		if (GMIME_IS_PART(obj)) {
			mime_extract_decode(GMIME_PART(obj), SIZE_MAX, ctx->capture);
		} else if (GMIME_IS_MESSAGE_PART(obj)) {
			GMimeMessage *msg = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
			GByteArray *arr = g_byte_array_new();
			GMimeStream *mem = g_mime_stream_mem_new_with_byte_array(arr);
			g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
			if (msg != NULL)
				g_mime_object_write_to_stream(GMIME_OBJECT(msg), NULL, mem);
			buf_append(ctx->capture, arr->data, arr->len);
			g_object_unref(mem);
			g_byte_array_free(arr, TRUE);
		}
		ctx->captured = true;
	}
	struct mime_attachment *a = &out->attachments[out->nattachments++];
	memset(a, 0, sizeof(*a));
	a->filename = mime_extract_str(filename);
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	char *mt = ct ? g_mime_content_type_get_mime_type(ct) : NULL;
	char *clean = mt ? util_utf8_sanitize(mt, strlen(mt)) : xstrdup("application/octet-stream");
	g_free(mt);
	for (char *c = clean; *c; c++)
		*c = g_ascii_tolower(*c);
	a->mimetype = clean;
	a->size = size;
	a->is_text = is_text;
}

/* Decodes a part's transfer encoding; keeps at most keep bytes in out and returns the decoded size. */
static size_t mime_extract_decode(GMimePart *part, size_t keep, struct buf *out)
{
	GMimeDataWrapper *content = g_mime_part_get_content(part);
	if (content == NULL)
		return 0;
	GMimeStream *stream = g_mime_data_wrapper_get_stream(content);
	if (stream == NULL)
		return 0;
	GMimeContentEncoding enc = g_mime_data_wrapper_get_encoding(content);
	g_mime_stream_reset(stream);
	GMimeStream *src = g_mime_stream_filter_new(stream);
	if (enc == GMIME_CONTENT_ENCODING_BASE64 || enc == GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE ||
	    enc == GMIME_CONTENT_ENCODING_UUENCODE) {
		GMimeFilter *filter = g_mime_filter_basic_new(enc, FALSE);
		g_mime_stream_filter_add(GMIME_STREAM_FILTER(src), filter);
		g_object_unref(filter);
	}
	size_t total = 0;
	char chunk[16384];
	for (;;) {
		ssize_t n = g_mime_stream_read(src, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		if (out != NULL && out->len < keep) {
			size_t take = (size_t)n < keep - out->len ? (size_t)n : keep - out->len;
			buf_append(out, chunk, take);
		}
		total += (size_t)n;
	}
	g_object_unref(src);
	g_mime_stream_reset(stream);
	return total;
}

/* Whether a part is text: text/any, or one of the message/ types whose content is text. */
static bool mime_extract_is_texty(GMimeObject *obj)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	if (ct == NULL)
		return true; /* GMime's default is text/plain */
	const char *type = g_mime_content_type_get_media_type(ct);
	const char *sub = g_mime_content_type_get_media_subtype(ct);
	if (type == NULL || g_ascii_strcasecmp(type, "text") == 0)
		return true;
	if (g_ascii_strcasecmp(type, "message") == 0 && sub != NULL) {
		static const char *const texty[] = { "delivery-status", "disposition-notification", "feedback-report",
			"global-delivery-status", "global-disposition-notification", "global-headers", "partial" };
		for (size_t i = 0; i < sizeof(texty) / sizeof(texty[0]); i++)
			if (g_ascii_strcasecmp(sub, texty[i]) == 0)
				return true;
	}
	return false;
}

/* Whether obj is of type/subtype (case-insensitive). */
static bool mime_extract_is_type(GMimeObject *obj, const char *type, const char *subtype)
{
	GMimeContentType *ct = g_mime_object_get_content_type(obj);
	return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

/* The part's decoded file name (RFC 2231 / RFC 2047), or NULL if it has none or an empty one. */
static const char *mime_extract_part_filename(GMimePart *part)
{
	const char *f = g_mime_part_get_filename(part);
	return f != NULL && *f != '\0' ? f : NULL;
}

/* Whether a leaf part is an attachment rather than body text. */
static bool mime_extract_is_attachment(GMimeObject *obj)
{
	if (!mime_extract_is_texty(obj))
		return true;
	GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
	if (d != NULL && g_mime_content_disposition_is_attachment(d))
		return true;
	return GMIME_IS_PART(obj) && mime_extract_part_filename(GMIME_PART(obj)) != NULL;
}

/* Decodes a text part to UTF-8 text in out (HTML reduced to text); returns the decoded byte size. */
static size_t mime_extract_part_text(struct mime_extract_ctx *ctx, GMimePart *part, struct buf *out)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	struct buf raw = { 0 };
	/* room for the budget (plus a little, so that a cut falls inside the text, not before it) */
	size_t keep = mime_extract_budget(ctx) + 16;
	size_t size = mime_extract_decode(part, keep, &raw);
	if (raw.len > 0) {
		const char *charset = g_mime_object_get_content_type_parameter(obj, "charset");
		if (mime_extract_is_type(obj, "text", "html")) {
			struct buf utf8 = { 0 };
			mime_extract_to_utf8(charset, raw.data, raw.len, &utf8);
			size_t n;
			char *text = mime_html_to_text((const char *)utf8.data, utf8.len, &n);
			buf_append(out, text, n);
			free(text);
			buf_free(&utf8);
		} else {
			mime_extract_to_utf8(charset, raw.data, raw.len, out);
		}
	}
	buf_free(&raw);
	return size;
}

/* Whether text is only white space. */
static bool mime_extract_blank(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if (!g_ascii_isspace(b->data[i]))
			return false;
	return true;
}

/* Appends "From: ..." and "Subject: ..." lines of an embedded message to the body. */
static void mime_extract_embedded_headers(struct mime_extract_ctx *ctx, GMimeMessage *msg)
{
	struct buf lines = { 0 };
	InternetAddressList *from = g_mime_message_get_from(msg);
	if (from != NULL && internet_address_list_length(from) > 0) {
		char *s = internet_address_list_to_string(from, NULL, FALSE);
		char *clean = mime_extract_str(s);
		g_free(s);
		if (clean)
			buf_printf(&lines, "From: %s\n", clean);
		free(clean);
	}
	char *subject = mime_extract_str(g_mime_message_get_subject(msg));
	if (subject)
		buf_printf(&lines, "Subject: %s\n", subject);
	free(subject);
	mime_extract_add_text(ctx, &ctx->body, lines.data, lines.len);
	buf_free(&lines);
}

static void mime_extract_walk(struct mime_extract_ctx *ctx, GMimeObject *obj, int depth, bool body_ok);

/* Records the types of obj and everything under it, without reading any content. */
static void mime_extract_types_only(struct mime_extract_ctx *ctx, GMimeObject *obj, int depth)
{
	if (obj == NULL || depth > MIME_EXTRACT_DEPTH_MAX || ctx->nparts >= MIME_EXTRACT_PARTS_MAX)
		return;
	ctx->nparts++;
	mime_extract_add_type(ctx, obj);
	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		for (int i = 0; i < n; i++)
			mime_extract_types_only(ctx, g_mime_multipart_get_part(mp, i), depth + 1);
	}
}

/* Chooses the child of a multipart/alternative to read: text/plain (unless empty), else HTML, else
   a nested multipart, else the first. */
static int mime_extract_pick_alternative(struct mime_extract_ctx *ctx, GMimeMultipart *mp)
{
	int n = g_mime_multipart_get_count(mp);
	int plain = -1, html = -1, multi = -1, text = -1;
	for (int i = 0; i < n; i++) {
		GMimeObject *child = g_mime_multipart_get_part(mp, i);
		if (GMIME_IS_MULTIPART(child)) {
			if (multi < 0)
				multi = i;
			continue;
		}
		if (!GMIME_IS_PART(child) || mime_extract_is_attachment(child))
			continue;
		if (plain < 0 && mime_extract_is_type(child, "text", "plain"))
			plain = i;
		else if (html < 0 && mime_extract_is_type(child, "text", "html"))
			html = i;
		else if (text < 0 && mime_extract_is_type(child, "text", "*"))
			text = i;
	}
	if (plain >= 0 && (html >= 0 || multi >= 0)) {
		/* an empty text/plain next to a real HTML part is common in generated mail */
		struct buf tmp = { 0 };
		mime_extract_part_text(ctx, GMIME_PART(g_mime_multipart_get_part(mp, plain)), &tmp);
		bool blank = mime_extract_blank(&tmp);
		buf_free(&tmp);
		if (blank)
			plain = -1;
	}
	if (plain >= 0)
		return plain;
	if (html >= 0)
		return html;
	if (multi >= 0)
		return multi;
	if (text >= 0)
		return text;
	return n > 0 ? 0 : -1;
}

/* Reads a leaf part: body text, or an attachment (with its text if it is text). */
static void mime_extract_leaf(struct mime_extract_ctx *ctx, GMimePart *part, bool body_ok)
{
	GMimeObject *obj = GMIME_OBJECT(part);
	if (mime_extract_is_attachment(obj)) {
		bool texty = mime_extract_is_texty(obj);
		size_t size;
		if (texty) {
			struct buf text = { 0 };
			size = mime_extract_part_text(ctx, part, &text);
			mime_extract_add_text(ctx, &ctx->atext, text.data, text.len);
			buf_free(&text);
		} else {
			size = mime_extract_decode(part, 0, NULL);
		}
		mime_extract_add_attachment(ctx, mime_extract_part_filename(part), obj, size, texty);
		return;
	}
	if (!body_ok)
		return;
	struct buf text = { 0 };
	mime_extract_part_text(ctx, part, &text);
	mime_extract_add_text(ctx, &ctx->body, text.data, text.len);
	buf_free(&text);
}

/* Walks one MIME object (depth counts from the top-level part); body_ok is false inside the
   alternatives not chosen, where only attachments and types are collected. */
static void mime_extract_walk(struct mime_extract_ctx *ctx, GMimeObject *obj, int depth, bool body_ok)
{
	if (obj == NULL)
		return;
	if (depth > MIME_EXTRACT_DEPTH_MAX) {
		ctx->depth_cut = true;
		return;
	}
	if (ctx->nparts >= MIME_EXTRACT_PARTS_MAX) {
		ctx->parts_cut = true;
		return;
	}
	ctx->nparts++;
	mime_extract_add_type(ctx, obj);

	if (GMIME_IS_MESSAGE_PART(obj)) {
		GMimeMessage *msg = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
		GMimeContentDisposition *d = g_mime_object_get_content_disposition(obj);
		const char *filename = d ? g_mime_content_disposition_get_parameter(d, "filename") : NULL;
		if (filename == NULL || *filename == '\0')
			filename = g_mime_object_get_content_type_parameter(obj, "name");
		if (filename != NULL && *filename == '\0')
			filename = NULL;
		if ((d != NULL && g_mime_content_disposition_is_attachment(d)) || filename != NULL) {
			size_t size = 0;
			if (msg != NULL) {
				GMimeStream *null = g_mime_stream_null_new();
				ssize_t n = g_mime_object_write_to_stream(GMIME_OBJECT(msg), NULL, null);
				size = n > 0 ? (size_t)n : 0;
				g_object_unref(null);
			}
			/* its text is in the body (below), so it is not a text attachment */
			mime_extract_add_attachment(ctx, filename, obj, size, false);
		}
		if (msg != NULL) {
			if (body_ok)
				mime_extract_embedded_headers(ctx, msg);
			mime_extract_walk(ctx, g_mime_message_get_mime_part(msg), depth + 1, body_ok);
		}
		return;
	}

	if (GMIME_IS_MULTIPART(obj)) {
		GMimeMultipart *mp = GMIME_MULTIPART(obj);
		int n = g_mime_multipart_get_count(mp);
		if (GMIME_IS_MULTIPART_ENCRYPTED(obj)) {
			/* never decrypted: the control part and the ciphertext have nothing to read */
			for (int i = 0; i < n; i++)
				mime_extract_types_only(ctx, g_mime_multipart_get_part(mp, i), depth + 1);
			return;
		}
		if (GMIME_IS_MULTIPART_SIGNED(obj)) {
			/* the signed content is read; the signature part is not an attachment */
			for (int i = 0; i < n; i++) {
				if (i == 0)
					mime_extract_walk(ctx, g_mime_multipart_get_part(mp, i), depth + 1, body_ok);
				else
					mime_extract_types_only(ctx, g_mime_multipart_get_part(mp, i), depth + 1);
			}
			return;
		}
		int chosen = -1;
		bool alternative = mime_extract_is_type(obj, "multipart", "alternative");
		if (alternative && body_ok)
			chosen = mime_extract_pick_alternative(ctx, mp);
		for (int i = 0; i < n; i++)
			mime_extract_walk(ctx, g_mime_multipart_get_part(mp, i), depth + 1,
				body_ok && (!alternative || i == chosen));
		return;
	}

	if (GMIME_IS_PART(obj))
		mime_extract_leaf(ctx, GMIME_PART(obj), body_ok);
}

/* Appends the addresses of list to dst, groups flattened (the group itself kept with a NULL addr). */
static void mime_extract_addresses(InternetAddressList *list, struct mime_address_list *dst, size_t *cap,
				   int depth)
{
	if (list == NULL || depth > 4)
		return;
	int n = internet_address_list_length(list);
	for (int i = 0; i < n && dst->count < MIME_EXTRACT_ADDRS_MAX; i++) {
		InternetAddress *ia = internet_address_list_get_address(list, i);
		if (ia == NULL)
			continue;
		if (dst->count == *cap) {
			*cap = *cap ? *cap * 2 : 4;
			dst->items = xrealloc(dst->items, *cap * sizeof(*dst->items));
		}
		struct mime_address *a = &dst->items[dst->count++];
		a->name = mime_extract_str(internet_address_get_name(ia));
		a->addr = NULL;
		if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
			char *addr = mime_extract_str(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia)));
			if (addr != NULL) {
				char *lower = g_utf8_strdown(addr, -1);
				a->addr = xstrdup(lower);
				g_free(lower);
				free(addr);
			}
		} else if (INTERNET_ADDRESS_IS_GROUP(ia)) {
			mime_extract_addresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), dst, cap, depth + 1);
		}
	}
}

/* True for the bytes an address may hold in the wild (RFC 5322 atext, dots and the domain's). */
static bool mime_extract_addr_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80 ||
	       strchr(".!#$%&*+/=?^_`{|}~-", c) != NULL;
}

/* Adds the addresses GMime refused to parse. Real mail is full of addresses that break RFC 5322
   (Enron's "w..cantrell@enron.com", unbalanced quotes): an archive must still find them by address,
   so every local@domain token of the raw field that is not already listed is added. */
static void mime_extract_lenient_addresses(GMimeObject *obj, const char *field, struct mime_address_list *dst,
					   size_t *cap)
{
	GMimeHeaderList *headers = g_mime_object_get_header_list(obj);
	int nh = headers ? g_mime_header_list_get_count(headers) : 0;
	for (int h = 0; h < nh; h++) {
		GMimeHeader *header = g_mime_header_list_get_header_at(headers, h);
		if (g_ascii_strcasecmp(g_mime_header_get_name(header), field) != 0)
			continue;
		const char *raw = g_mime_header_get_raw_value(header);
		for (const char *at = raw ? strchr(raw, '@') : NULL; at != NULL && dst->count < MIME_EXTRACT_ADDRS_MAX;
		     at = strchr(at + 1, '@')) {
			const char *b = at, *e = at + 1;
			while (b > raw && mime_extract_addr_char((unsigned char)b[-1]))
				b--;
			while (*e && mime_extract_addr_char((unsigned char)*e))
				e++;
			while (b < at && *b == '.')
				b++;
			while (e > at + 1 && e[-1] == '.')
				e--;
			if (b == at || e == at + 1)
				continue;
			char *addr = g_ascii_strdown(b, e - b);
			bool known = false;
			for (size_t i = 0; i < dst->count && !known; i++)
				known = dst->items[i].addr != NULL && strcmp(dst->items[i].addr, addr) == 0;
			if (!known && g_utf8_validate(addr, -1, NULL)) {
				if (dst->count == *cap) {
					*cap = *cap ? *cap * 2 : 4;
					dst->items = xrealloc(dst->items, *cap * sizeof(*dst->items));
				}
				dst->items[dst->count++] = (struct mime_address){ .name = NULL, .addr = xstrdup(addr) };
			}
			g_free(addr);
		}
	}
}

/* Decodes the top-level header fields. */
static void mime_extract_headers(GMimeMessage *msg, struct mime_extract *out)
{
	out->subject = mime_extract_str(g_mime_message_get_subject(msg));
	out->message_id = mime_extract_str(g_mime_message_get_message_id(msg));
	if (out->message_id == NULL) {
		/* GMime found no addr-spec in it: keep what is there, without blanks and brackets */
		const char *raw = g_mime_object_get_header(GMIME_OBJECT(msg), "Message-ID");
		if (raw != NULL) {
			while (*raw == ' ' || *raw == '\t' || *raw == '\r' || *raw == '\n' || *raw == '<')
				raw++;
			size_t n = strlen(raw);
			while (n > 0 && strchr(" \t\r\n>", raw[n - 1]))
				n--;
			char *id = xstrndup(raw, n);
			out->message_id = mime_extract_str(id);
			free(id);
		}
	}
	GDateTime *dt = g_mime_message_get_date(msg);
	if (dt != NULL) {
		gint64 t = g_date_time_to_unix(dt);
		int year = g_date_time_get_year(dt);
		if (year >= 1 && year <= 9999) {
			out->has_date = true;
			out->date = t;
		}
	}
	const struct { GMimeAddressType type; const char *field; struct mime_address_list *dst; } lists[] = {
		{ GMIME_ADDRESS_TYPE_FROM, "From", &out->from }, { GMIME_ADDRESS_TYPE_TO, "To", &out->to },
		{ GMIME_ADDRESS_TYPE_CC, "Cc", &out->cc }, { GMIME_ADDRESS_TYPE_BCC, "Bcc", &out->bcc },
	};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		size_t cap = lists[i].dst->count;
		mime_extract_addresses(g_mime_message_get_addresses(msg, lists[i].type), lists[i].dst, &cap, 0);
		mime_extract_lenient_addresses(GMIME_OBJECT(msg), lists[i].field, lists[i].dst, &cap);
	}
}

/* GMime's warnings that mean part of the input was not read as structure. */
static void mime_extract_on_warning(gint64 offset, GMimeParserWarning errcode, const gchar *item,
				    gpointer user_data)
{
	(void)offset;
	(void)item;
	struct mime_extract_ctx *ctx = user_data;
	if (errcode < 32)
		ctx->warnings |= 1u << errcode;
}

/* How the top-level header block ends. */
enum mime_extract_split {
	MIME_EXTRACT_SPLIT_OK,          /* an empty line (or the end) after header fields */
	MIME_EXTRACT_SPLIT_STRAY,       /* the same, with lines of text among the fields (GMime skips them) */
	MIME_EXTRACT_SPLIT_NO_HEADER,   /* the first line is not a header field: GMime reads nothing */
	MIME_EXTRACT_SPLIT_BROKEN,      /* no empty line, and text after the fields: the body with no separator */
};

/* Whether a header line's field name is what GMime accepts: no controls, blanks only before ':'. */
static bool mime_extract_header_line(const unsigned char *line, size_t n)
{
	bool blank = false;
	size_t i;
	for (i = 0; i < n && line[i] != ':'; i++) {
		if (line[i] == ' ' || line[i] == '\t')
			blank = true;
		else if (blank || line[i] < 32 || line[i] == 127)
			return false;
	}
	return i > 0 && i < n;
}

/* Looks at the header block as GMime will. GMime skips lines that are not header fields; they are
   copied to skipped (a first paragraph written without the empty line before it, say) so that
   their text is not lost. */
static enum mime_extract_split mime_extract_check_split(const unsigned char *raw, size_t len, struct buf *skipped)
{
	size_t pos = 0, nlines = 0;
	bool in_bad = false, blank = false;
	const unsigned char *line;
	size_t n;
	while (util_next_line(raw, len, &pos, &line, &n)) {
		if (n == 0) {
			blank = true;
			break;
		}
		if (nlines == 0 && n >= 5 && memcmp(line, "From ", 5) == 0)
			continue; /* an mbox From line, which GMime skips */
		nlines++;
		if (nlines > 1 && (line[0] == ' ' || line[0] == '\t')) {
			if (in_bad) /* GMime drops the continuation of a bad line with it */
				buf_append(skipped, line, n), buf_append(skipped, "\n", 1);
			continue;
		}
		in_bad = !mime_extract_header_line(line, n);
		if (in_bad) {
			if (nlines == 1)
				return MIME_EXTRACT_SPLIT_NO_HEADER;
			buf_append(skipped, line, n);
			buf_append(skipped, "\n", 1);
		}
	}
	if (nlines == 0)
		return MIME_EXTRACT_SPLIT_NO_HEADER;
	if (skipped->len == 0)
		return MIME_EXTRACT_SPLIT_OK;
	return blank ? MIME_EXTRACT_SPLIT_STRAY : MIME_EXTRACT_SPLIT_BROKEN;
}

/* Offset of the first empty line at or after pos (or len). */
static size_t mime_extract_empty_line_after(const unsigned char *p, size_t len, size_t pos)
{
	while (pos < len) {
		const unsigned char *nl = memchr(p + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (p + pos)) : len - pos;
		if (n == 0 || (n == 1 && p[pos] == '\r'))
			return pos;
		pos += n + (nl ? 1 : 0);
	}
	return len;
}

/* Whether a line starts a header field with a token-like name ("Name:" or "Name :"). */
static bool mime_extract_field_start(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n && (g_ascii_isalnum(p[i]) || p[i] == '-' || p[i] == '_'))
		i++;
	if (i == 0)
		return false;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

/* Copies raw into out, cutting header fields (in the top header block and in those after lines
   starting with "--") at MIME_EXTRACT_FIELD_MAX bytes; returns whether anything was cut. */
static bool mime_extract_copy_capped(const unsigned char *raw, size_t len, GByteArray *out)
{
	bool in_header = true, in_field = false, cut = false;
	size_t field = 0, pos = 0, pending = 0; /* raw[pending..pos) is still to be copied */
	const unsigned char *line;
	size_t n, start = pos;
	for (; util_next_line(raw, len, &pos, &line, &n); start = pos) {
		if (!in_header) {
			if (n >= 2 && line[0] == '-' && line[1] == '-')
				in_header = true;
			continue;
		}
		if (n == 0) {
			in_header = in_field = false;
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			if (!in_field)
				continue;
		} else if (mime_extract_field_start(line, n)) {
			in_field = true;
			field = 0;
		} else {
			in_field = false;
			continue;
		}
		if (field + n <= MIME_EXTRACT_FIELD_MAX) {
			field += n;
			continue;
		}
		/* over the limit: keep what fits of this line, drop the rest of the field */
		size_t keep = field < MIME_EXTRACT_FIELD_MAX ? MIME_EXTRACT_FIELD_MAX - field : 0;
		g_byte_array_append(out, raw + pending, (guint)(start - pending));
		if (keep > 0) {
			g_byte_array_append(out, line, (guint)keep);
			g_byte_array_append(out, (const guint8 *)"\n", 1);
		}
		pending = pos;
		field = MIME_EXTRACT_FIELD_MAX;
		cut = true;
	}
	g_byte_array_append(out, raw + pending, (guint)(len - pending));
	return cut;
}

/* Neutralises charset names longer than GMime can safely copy to its stack (it uses alloca): in
   "=?name?" encoded words and "param*=name'lang'value" parameters, looked for only in header blocks
   (the top one, and after lines starting with "--"). Only absurd input is changed. */
static void mime_extract_defuse(unsigned char *p, size_t len)
{
	bool in_header = true;
	size_t pos = 0, next_q = 0, next_apos = 0, region_end = 0;
	while (pos < len) {
		unsigned char *nl = memchr(p + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - p) : len;   /* the line is p[pos..end) */
		size_t n = end - pos;
		if (n > 0 && p[end - 1] == '\r')
			n--;
		if (!in_header) {
			if (n >= 2 && p[pos] == '-' && p[pos + 1] == '-')
				in_header = true;
		} else if (n == 0) {
			in_header = false;
		} else {
			if (region_end <= pos)
				region_end = mime_extract_empty_line_after(p, len, pos);
			for (size_t i = pos; i + 1 < end; i++) {
				if (p[i] == '=' && p[i + 1] == '?') {
					if (next_q <= i + 1) {
						const unsigned char *q = i + 2 < end ? memchr(p + i + 2, '?', end - i - 2) : NULL;
						next_q = q ? (size_t)(q - p) : end;
					}
					if (next_q < end && next_q - (i + 2) > MIME_EXTRACT_CHARSET_NAME_MAX)
						p[i + 1] = '_';
				} else if (p[i] == '*' && p[i + 1] == '=') {
					if (next_apos <= i + 1) {
						const unsigned char *a = i + 2 < len ? memchr(p + i + 2, '\'', len - i - 2) : NULL;
						next_apos = a ? (size_t)(a - p) : len;
					}
					if (next_apos < region_end && next_apos - (i + 2) > MIME_EXTRACT_CHARSET_NAME_MAX)
						p[i] = '_';
				}
			}
		}
		pos = end + (nl ? 1 : 0);
	}
}

/* Extracts everything, and the decoded bytes of attachment number want into capture when capture is set;
   returns whether that attachment was found. */
static bool mime_extract_run(const unsigned char *raw, size_t len, struct mime_extract *out, size_t want,
			     struct buf *capture)
{
	struct mime_extract_ctx ctx = { .out = out, .want = want, .capture = capture };
	memset(out, 0, sizeof(*out));
	mime_extract_init();
	if (raw == NULL)
		len = 0;
	if (len >= 3 && memcmp(raw, "\xef\xbb\xbf", 3) == 0) {
		/* a UTF-8 byte order mark written by some Windows tools: GMime would see no header */
		raw += 3;
		len -= 3;
	}

	struct buf skipped = { 0 };
	enum mime_extract_split split = mime_extract_check_split(raw, len, &skipped);
	GMimeMessage *msg = NULL;
	GMimeParser *parser = NULL;
	GMimeStream *stream = NULL;
	GMimeParserOptions *options = NULL;
	if (split != MIME_EXTRACT_SPLIT_NO_HEADER && len <= (size_t)G_MAXINT) {
		/* per call: GMime's default options are global, and headers keep a pointer to them */
		options = g_mime_parser_options_new();
		const char *fallback[] = { "utf-8", "windows-1252", NULL };
		g_mime_parser_options_set_fallback_charsets(options, fallback);
		g_mime_parser_options_set_rfc2047_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
		g_mime_parser_options_set_address_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
		g_mime_parser_options_set_parameter_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
		g_mime_parser_options_set_allow_addresses_without_domain(options, TRUE);
		g_mime_parser_options_set_warning_callback(options, mime_extract_on_warning, &ctx);
		GByteArray *bytes = g_byte_array_sized_new((guint)len);
		ctx.field_cut = mime_extract_copy_capped(raw, len, bytes);
		mime_extract_defuse(bytes->data, bytes->len);
		stream = g_mime_stream_mem_new_with_byte_array(bytes); /* owns bytes */
		parser = g_mime_parser_new_with_stream(stream);
		msg = g_mime_parser_construct_message(parser, options);
	}

	if (msg != NULL) {
		mime_extract_headers(msg, out);
		if (split == MIME_EXTRACT_SPLIT_STRAY) {
			mime_extract_add_text(&ctx, &ctx.body, skipped.data, skipped.len);
			mime_extract_problem(&ctx, "text lines among the header fields: kept as body text");
		}
		mime_extract_walk(&ctx, g_mime_message_get_mime_part(msg), 0, true);
	}
	buf_free(&skipped);
	if (msg == NULL || split == MIME_EXTRACT_SPLIT_BROKEN) {
		/* read the whole input as text: nothing is lost, whatever its shape */
		struct buf text = { 0 };
		size_t take = len < MIME_EXTRACT_TEXT_MAX ? len : MIME_EXTRACT_TEXT_MAX + 4;
		mime_extract_to_utf8(NULL, raw, take, &text);
		buf_reset(&ctx.body);
		mime_extract_add_text(&ctx, &ctx.body, text.data, text.len);
		if (len > take)
			ctx.truncated = true;
		buf_free(&text);
		mime_extract_problem(&ctx, msg == NULL ? "no MIME structure: indexed the raw text"
					     : "no header/body split: indexed the raw text");
	}

	if (ctx.warnings & (1u << GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY))
		mime_extract_problem(&ctx, "multipart without boundary: read as one part");
	if (ctx.warnings & (1u << GMIME_CRIT_NESTING_OVERFLOW))
		mime_extract_problem(&ctx, "MIME nesting overflow");
	if (ctx.warnings & (1u << GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT))
		mime_extract_problem(&ctx, "MIME part without headers or content");
	if (ctx.depth_cut)
		mime_extract_problem(&ctx, "MIME nesting deeper than 32 levels: deeper parts skipped");
	if (ctx.parts_cut)
		mime_extract_problem(&ctx, "more than 10000 MIME parts: the rest skipped");
	if (ctx.types_cut)
		mime_extract_problem(&ctx, "more than 256 MIME types: the rest not listed");
	if (ctx.field_cut)
		mime_extract_problem(&ctx, "header field over 256 KiB cut");
	if (ctx.truncated)
		mime_extract_problem(&ctx, "text truncated at 8 MiB");

	/* valid UTF-8 without NULs, whatever came through */
	out->body = util_utf8_sanitize(ctx.body.data ? (const char *)ctx.body.data : "", ctx.body.len);
	out->body_len = strlen(out->body);
	out->attachment_text = util_utf8_sanitize(ctx.atext.data ? (const char *)ctx.atext.data : "", ctx.atext.len);
	out->attachment_text_len = strlen(out->attachment_text);
	buf_free(&ctx.body);
	buf_free(&ctx.atext);

	if (msg != NULL)
		g_object_unref(msg);
	if (parser != NULL)
		g_object_unref(parser);
	if (stream != NULL)
		g_object_unref(stream);
	if (options != NULL)
		g_mime_parser_options_free(options);
	return ctx.captured;
}

void mime_extract(const unsigned char *raw, size_t len, struct mime_extract *out)
{
	mime_extract_run(raw, len, out, SIZE_MAX, NULL);
}

bool mime_extract_attachment(const unsigned char *raw, size_t len, size_t index, struct mime_extract *out,
			     struct buf *bytes)
{
	return mime_extract_run(raw, len, out, index, bytes);
}

/* Frees an address list's contents. */
static void mime_extract_free_addresses(struct mime_address_list *l)
{
	for (size_t i = 0; i < l->count; i++) {
		free(l->items[i].name);
		free(l->items[i].addr);
	}
	FREE(l->items);
	l->count = 0;
}

/* Frees everything inside out. */
void mime_extract_free(struct mime_extract *out)
{
	if (out == NULL)
		return;
	FREE(out->subject);
	FREE(out->message_id);
	mime_extract_free_addresses(&out->from);
	mime_extract_free_addresses(&out->to);
	mime_extract_free_addresses(&out->cc);
	mime_extract_free_addresses(&out->bcc);
	FREE(out->body);
	FREE(out->attachment_text);
	for (size_t i = 0; i < out->nattachments; i++) {
		free(out->attachments[i].filename);
		free(out->attachments[i].mimetype);
	}
	FREE(out->attachments);
	for (size_t i = 0; i < out->nmimetypes; i++)
		free(out->mimetypes[i]);
	FREE(out->mimetypes);
	FREE(out->problem);
	memset(out, 0, sizeof(*out));
}

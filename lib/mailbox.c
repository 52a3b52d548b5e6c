/* Mailbox names as servers send them and as people read them: modified UTF-7, UTF-8, LIST wildcards. */
#include "mailbox.h"
#include "buf.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The value of a modified-BASE64 character (RFC 3501 uses "," where RFC 2045 has "/"), or -1. */
static int mailbox_b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == ',')
		return 63;
	return -1;
}

/* Appends code point cp as UTF-8. */
static void mailbox_put_utf8(struct buf *out, uint32_t cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xc0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xe0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xf0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (unsigned char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, u, n);
}

/* Decodes the shifted run after an "&" at p[0..len): appends its UTF-8 to out and returns the bytes
   it used including the closing "-", or 0 (out untouched) when it is not well-formed modified UTF-7. */
static size_t mailbox_decode_run(const unsigned char *p, size_t len, struct buf *out)
{
	size_t i = 0, start_len = out->len;
	uint32_t bits = 0, high = 0;
	unsigned nbits = 0;
	bool any = false;
	if (len > 0 && p[0] == '-') {
		buf_append(out, "&", 1);
		return 1;
	}
	for (; i < len && p[i] != '-'; i++) {
		int v = mailbox_b64_value(p[i]);
		if (v < 0)
			goto bad;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits >= 16) {
			nbits -= 16;
			uint32_t unit = (bits >> nbits) & 0xffff;
			bits &= (1u << nbits) - 1;
			any = true;
			if (high != 0) {
				if (unit < 0xdc00 || unit > 0xdfff)
					goto bad;
				mailbox_put_utf8(out, 0x10000 + ((high - 0xd800) << 10) + (unit - 0xdc00));
				high = 0;
			} else if (unit >= 0xd800 && unit <= 0xdbff) {
				high = unit;
			} else if (unit >= 0xdc00 && unit <= 0xdfff) {
				goto bad;
			} else if (unit == 0 || (unit >= 0x20 && unit <= 0x7e)) {
				/* RFC 3501: printable ASCII stands for itself, never encoded; an encoded one (or a
				   NUL) would let "Tr&AGE-sh" pass for "Trash" */
				goto bad;
			} else {
				mailbox_put_utf8(out, unit);
			}
		}
	}
	/* closed by "-", something decoded, no half pair, and the padding bits are zero */
	if (i == len || !any || high != 0 || nbits >= 6 || bits != 0)
		goto bad;
	return i + 1;
bad:
	out->len = start_len;
	if (out->data)
		out->data[out->len] = '\0';
	return 0;
}

/* Decodes modified UTF-7 in an all-ASCII name; malformed runs stay as written. */
static void mailbox_decode_mutf7(const unsigned char *raw, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		if (raw[i] == '&') {
			size_t used = mailbox_decode_run(raw + i + 1, len - i - 1, out);
			if (used > 0) {
				i += used;
				continue;
			}
		}
		buf_append(out, raw + i, 1);
	}
}

/* Display form of a server's mailbox name. */
char *mailbox_display_name(const unsigned char *raw, size_t len)
{
	struct buf out = { 0 };
	bool ascii = true, utf8 = true;
	if (len == 5 && strncasecmp((const char *)raw, "INBOX", 5) == 0)
		return xstrdup("INBOX");
	for (size_t i = 0; i < len;) {
		size_t n = util_utf8_seq_len(raw + i, len - i);
		if (raw[i] >= 0x80)
			ascii = false;
		if (n == 0 || raw[i] == '\0') {
			utf8 = false;
			break;
		}
		i += n;
	}
	if (ascii) {
		mailbox_decode_mutf7(raw, len, &out);
	} else if (utf8) {
		buf_append(&out, raw, len);
	} else {
		/* neither: keep what is readable, write the rest as \xNN */
		return util_utf8_escape_invalid(raw, len);
	}
	if (out.data == NULL)
		return xstrdup("");
	return buf_steal(&out);
}

/* True if s starts with INBOX (any case) followed by the end, the delimiter or a wildcard. */
static bool mailbox_starts_inbox(const char *s, char delimiter)
{
	return strncasecmp(s, "INBOX", 5) == 0 &&
	       (s[5] == '\0' || s[5] == '*' || s[5] == '%' || (delimiter != 0 && s[5] == delimiter));
}

/* LIST wildcard matching by dynamic programming: linear memory, no backtracking blow-up. */
bool mailbox_pattern_match(const char *pattern, const char *name, char delimiter)
{
	size_t np = strlen(pattern), nn = strlen(name);
	bool *prev = xcalloc(nn + 1, sizeof(bool)), *cur = xcalloc(nn + 1, sizeof(bool));
	bool inbox = mailbox_starts_inbox(pattern, delimiter) && mailbox_starts_inbox(name, delimiter);
	prev[0] = true; /* the empty pattern matches the empty name */
	for (size_t i = 1; i <= np; i++) {
		/* INBOX is case-insensitive (RFC 3501 5.1): compare its five letters folded */
		char c = pattern[i - 1];
		bool fold = inbox && i <= 5;
		cur[0] = prev[0] && (c == '*' || c == '%');
		for (size_t j = 1; j <= nn; j++) {
			char n = name[j - 1];
			if (c == '*')
				cur[j] = prev[j] || cur[j - 1];
			else if (c == '%')
				cur[j] = prev[j] || (cur[j - 1] && (delimiter == 0 || n != delimiter));
			else if (fold)
				cur[j] = prev[j - 1] && (c | 0x20) == (n | 0x20) && j == i;
			else
				cur[j] = prev[j - 1] && c == n;
		}
		bool *t = prev;
		prev = cur;
		cur = t;
	}
	bool match = prev[nn];
	free(prev);
	free(cur);
	return match;
}

/* Patterns whose meaning changed when fnmatch gave way to LIST wildcards. */
bool mailbox_pattern_was_glob(const char *pattern)
{
	return strpbrk(pattern, "?[\\") != NULL;
}

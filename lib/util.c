/* Small shared utilities: allocation that succeeds or aborts, string helpers, time. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Aborts with a message: running out of memory is not something we try to limp through. */
static void util_oom(size_t size)
{
	fprintf(stderr, "mailvault: fatal: out of memory allocating %zu bytes\n", size);
	abort();
}

/* malloc that never returns NULL. */
void *xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);
	if (p == NULL)
		util_oom(size);
	return p;
}

/* calloc that never returns NULL. */
void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (p == NULL)
		util_oom(n * size);
	return p;
}

/* realloc that never returns NULL. */
void *xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);
	if (p == NULL)
		util_oom(size);
	return p;
}

/* strdup that never returns NULL. */
char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* strndup that never returns NULL. */
char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* vasprintf that never returns NULL. */
char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *out;
	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0)
		util_oom(strlen(fmt));
	va_end(ap);
	return out;
}

/* Parses a size with an optional K/M/G suffix (powers of 1024). */
int util_parse_size(const char *s, uint64_t *bytes_r)
{
	char *end;
	uint64_t mult = 1;
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mult = 1024ULL; end++; break;
	case 'm': case 'M': mult = 1024ULL * 1024; end++; break;
	case 'g': case 'G': mult = 1024ULL * 1024 * 1024; end++; break;
	default: return -1;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || v > UINT64_MAX / mult)
		return -1;
	*bytes_r = v * mult;
	return 0;
}

/* Parses "90d" and the like into seconds: a number, then s, m, h, d, w or y (365 days). */
int util_parse_duration(const char *s, uint64_t *seconds_r)
{
	char *end;
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mult;
	switch (*end) {
	case 's': mult = 1; break;
	case 'm': mult = 60; break;
	case 'h': mult = 3600; break;
	case 'd': mult = 86400; break;
	case 'w': mult = 7 * 86400; break;
	case 'y': mult = 365 * 86400; break;
	default: return -1;
	}
	if (errno != 0 || end[1] != '\0' || v > 1000ULL * 365 * 86400 / mult)
		return -1;
	*seconds_r = v * mult;
	return 0;
}

/* Parses a bounded decimal integer with nothing else around it. */
int util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *value_r)
{
	char *end;
	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*value_r = v;
	return 0;
}

/* Seconds on the monotonic clock, for durations and backoff. */
double util_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Next line of a buffer, for the header readers. */
bool util_next_line(const unsigned char *data, size_t len, size_t *pos, const unsigned char **line_r, size_t *n_r)
{
	if (*pos >= len)
		return false;
	const unsigned char *line = data + *pos;
	const unsigned char *nl = memchr(line, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - line) : len - *pos;
	*pos += n + (nl ? 1 : 0);
	if (n > 0 && line[n - 1] == '\r')
		n--;
	*line_r = line;
	*n_r = n;
	return true;
}

/* Reads hex (either case) into out, at most cap bytes; the count, or -1 if s is not whole hex pairs. */
ssize_t util_unhex(const char *s, unsigned char *out, size_t cap)
{
	size_t n = strlen(s);
	if (n % 2 != 0 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		int v = 0;
		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + k];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (d < 0)
				return -1;
			v = v * 16 + d;
		}
		out[i] = (unsigned char)v;
	}
	return (ssize_t)(n / 2);
}

/* Writes lower-case hex. */
void util_hex(const unsigned char *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 15];
	}
	out[2 * len] = '\0';
}

/* Length of the valid UTF-8 sequence at p (1..4; a NUL counts as 1), or 0 if it is not valid. */
size_t util_utf8_seq_len(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	size_t n;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1f; }
	else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0f; }
	else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07; }
	else return 0;
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	/* reject overlong forms, surrogates and values past U+10FFFF */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Copies len bytes keeping valid UTF-8; every other byte, and NUL, becomes \xNN text (escape) or, for
   PostgreSQL text columns, U+FFFD (a NUL is dropped). */
static char *util_utf8_rewrite(const unsigned char *p, size_t len, bool escape)
{
	char *out = xmalloc(len * 4 + 1), *o = out;
	for (size_t i = 0; i < len;) {
		size_t n = util_utf8_seq_len(p + i, len - i);
		if (n == 0 || p[i] == '\0') {
			if (escape)
				o += sprintf(o, "\\x%02x", p[i]);
			else if (n == 0) {
				memcpy(o, "\xef\xbf\xbd", 3);
				o += 3;
			}
			i++;
		} else {
			memcpy(o, p + i, n);
			o += n;
			i += n;
		}
	}
	*o = '\0';
	return out;
}

/* Copies text into valid UTF-8 without NULs, which PostgreSQL text columns require. */
char *util_utf8_sanitize(const char *data, size_t len)
{
	return util_utf8_rewrite((const unsigned char *)data, len, false);
}

/* Valid UTF-8 stays, anything else becomes \xNN. */
char *util_utf8_escape_invalid(const unsigned char *data, size_t len)
{
	return util_utf8_rewrite(data, len, true);
}

/* Escapes what a terminal would act on; everything printable stays as it is. */
char *util_term_safe(const char *s, bool multiline)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s);
	char *out = xmalloc(len * 6 + 1), *o = out;
	for (size_t i = 0; i < len;) {
		size_t n = util_utf8_seq_len(p + i, len - i);
		unsigned c = p[i];
		if (n == 0) {
			o += sprintf(o, "\\x%02x", c);
			i++;
		} else if (n == 2 && c == 0xc2 && p[i + 1] < 0xa0) {
			o += sprintf(o, "\\u%04x", (unsigned)p[i + 1]);
			i += 2;
		} else if (n == 1 && (c == 0x7f || (c < 0x20 && c != '\t' && !(multiline && c == '\n')))) {
			if (multiline && c == '\r' && p[i + 1] == '\n') {
				i++;
				continue;
			}
			o += sprintf(o, "\\x%02x", c);
			i++;
		} else {
			memcpy(o, p + i, n);
			o += n;
			i += n;
		}
	}
	*o = '\0';
	return out;
}

/* A ring of escaped strings, so several can be printf arguments at once. */
const char *util_term(const char *s)
{
	static __thread char *ring[16];
	static __thread unsigned next;
	if (s == NULL)
		return NULL;
	unsigned k = next++ % 16;
	free(ring[k]);
	ring[k] = util_term_safe(s, false);
	return ring[k];
}

/* Small shared utilities: allocation that succeeds or aborts, string helpers, time. */
#ifndef MAILVAULT_UTIL_H
#define MAILVAULT_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdbool.h>

#define MAILVAULT_VERSION "0.1.0"

/* Allocation wrappers: they never return NULL (they abort the process on exhaustion). */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a new string that the caller frees. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees *p and sets it to NULL. */
#define FREE(p) do { free(p); (p) = NULL; } while (0)

/* Parses "123", "10K", "16M", "2G" (binary units) into bytes; 0 on success, -1 on bad input. */
int util_parse_size(const char *s, uint64_t *bytes_r);
/* Parses a duration such as "90d", "12h", "7y" (units s m h d w y, a year being 365 days, at most 1000
   years) into seconds; 0 on success, -1 on bad input. */
int util_parse_duration(const char *s, uint64_t *seconds_r);
/* Parses a non-negative decimal integer within [min, max]; 0 on success, -1 otherwise. */
int util_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *value_r);
/* Monotonic clock in seconds. */
double util_now(void);
/* Steps through data line by line: returns the line at *pos without its LF (and a CR before it) in
   *line_r and *n_r and moves *pos past it; false once *pos reaches len. */
bool util_next_line(const unsigned char *data, size_t len, size_t *pos, const unsigned char **line_r, size_t *n_r);
/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void util_hex(const unsigned char *data, size_t len, char *out);
/* Reads hex (either case) into out, at most cap bytes; the count, or -1 if s is not whole hex pairs or longer. */
ssize_t util_unhex(const char *s, unsigned char *out, size_t cap);
/* Length of the valid UTF-8 sequence at p (1..4; a NUL counts as 1), or 0 if invalid (overlong forms,
   surrogates and values past U+10FFFF are invalid). left is how many bytes p holds. */
size_t util_utf8_seq_len(const unsigned char *p, size_t left);
/* Replaces invalid UTF-8 with U+FFFD and drops NUL bytes; returns a new string the caller frees. */
char *util_utf8_sanitize(const char *data, size_t len);
/* Keeps valid UTF-8 and writes every other byte, and NUL, as \\xNN: text PostgreSQL accepts that still
   shows what the bytes were (flags and names a server sent in no known charset). The caller frees. */
char *util_utf8_escape_invalid(const unsigned char *data, size_t len);
/* Text from mail made safe for a terminal (notmuch's rule): control characters (C0 but tab, DEL, and
   the C1 range U+0080..U+009F) and bytes that are not UTF-8 are written as \xNN or \uNNNN, so a
   subject carrying ESC ]0;...BEL cannot retitle or drive the terminal. With multiline, LF stays and a
   CR before an LF is dropped. Returns a new string the caller frees. */
char *util_term_safe(const char *s, bool multiline);
/* The same into a small ring of buffers owned by this thread, for printf arguments: valid until 16
   more calls. NULL gives NULL. */
const char *util_term(const char *s);

#endif

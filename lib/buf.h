/* A growable byte buffer with an explicit length; the one buffer type of the code base. */
#ifndef MAILVAULT_BUF_H
#define MAILVAULT_BUF_H

#include <stddef.h>

struct buf {
	unsigned char *data;  /* always NUL-terminated past len, for convenience with text */
	size_t len;
	size_t cap;
};

/* Ensures room for extra more bytes (plus the terminating NUL). */
void buf_reserve(struct buf *b, size_t extra);
/* Appends bytes. */
void buf_append(struct buf *b, const void *data, size_t len);
/* Appends a NUL-terminated string. */
void buf_append_str(struct buf *b, const char *s);
/* Appends formatted text. */
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (consumed input). */
void buf_consume(struct buf *b, size_t n);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Frees the memory; the buffer may be reused after. */
void buf_free(struct buf *b);
/* Hands the data to the caller (who frees it) and empties the buffer. */
char *buf_steal(struct buf *b);

#endif

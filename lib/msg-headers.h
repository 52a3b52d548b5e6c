/* Reads the few header fields stored with each archived message, decoded to UTF-8 with GMime. */
#ifndef MAILVAULT_MSG_HEADERS_H
#define MAILVAULT_MSG_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct msg_headers {
	/* each NULL when absent; all valid UTF-8 without NULs; owned by the struct */
	char *message_id;   /* without the angle brackets */
	char *from, *to, *cc;
	char *subject;
	bool has_date;
	int64_t date;       /* seconds since the epoch, UTC */
	char *error;        /* why the header could not be read (the message is archived all the same) */
};

/* Initialises GMime once per process; safe to call more than once. */
void msg_headers_init(void);
/* Parses the header block of a raw message; never fails: what cannot be read is left NULL and
   described in h->error. Thread-safe. */
void msg_headers_parse(const unsigned char *data, size_t len, struct msg_headers *h);
/* Frees the fields. */
void msg_headers_free(struct msg_headers *h);

#endif

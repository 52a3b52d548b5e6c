/* Reads a raw message with GMime into what the index and `mailvault show` need: decoded header fields,
   addresses, body text, attachments. Never fails: what cannot be parsed is read as well as it can be. */
#ifndef MAILVAULT_MIME_EXTRACT_H
#define MAILVAULT_MIME_EXTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

struct mime_address {
	char *name;       /* display name, decoded to UTF-8 (RFC 2047), or NULL */
	char *addr;       /* addr-spec, lower-cased, or NULL for a group/unparsable entry */
};

struct mime_address_list {
	struct mime_address *items;
	size_t count;
};

struct mime_attachment {
	char *filename;   /* decoded (RFC 2047 / RFC 2231) UTF-8, or NULL */
	char *mimetype;   /* "type/subtype", lower-cased */
	size_t size;      /* decoded size in bytes */
	bool is_text;     /* a text (text/...) attachment whose text is in attachment_text */
};

struct mime_extract {
	/* Header fields decoded to UTF-8 (all strings valid UTF-8, no NULs; NULL when absent). */
	char *subject;
	char *message_id;              /* without angle brackets */
	bool has_date;
	int64_t date;                  /* seconds since the epoch, UTC */
	struct mime_address_list from, to, cc, bcc;
	/* Text of the message's own text parts, decoded from transfer encoding and charset: in
	   multipart/alternative the text/plain part is preferred, else HTML reduced to text; parts of
	   attached message/rfc822 messages are included (their headers' subject/from as text too). */
	char *body;
	size_t body_len;
	/* Text of text (text/...) parts that are attachments (Content-Disposition: attachment or a file name). */
	char *attachment_text;
	size_t attachment_text_len;
	struct mime_attachment *attachments;
	size_t nattachments;
	char **mimetypes;              /* every part's type/subtype, lower-cased, unique */
	size_t nmimetypes;
	/* NULL if GMime parsed the message cleanly; otherwise what went wrong and what was used instead
	   (e.g. "no MIME structure: indexed the raw text"). */
	char *problem;
};

/* Initialises GMime once per process (thread-safe; also done implicitly by mime_extract). */
void mime_extract_init(void);
/* Extracts everything from raw (len bytes, may contain NULs, CRLF or LF line ends). Thread-safe: may
   run in several threads at once. Bounded work and memory for hostile input (deep nesting is cut at
   32 levels, total text kept is capped at 8 MiB per message and noted in problem). */
void mime_extract(const unsigned char *raw, size_t len, struct mime_extract *out);
/* mime_extract(), and the decoded bytes of attachment number index (0-based, in the order of
   out->attachments) appended to bytes; false if the message has no such attachment. */
bool mime_extract_attachment(const unsigned char *raw, size_t len, size_t index, struct mime_extract *out,
			     struct buf *bytes);
/* Frees everything inside out (not out itself). */
void mime_extract_free(struct mime_extract *out);
/* Reduces HTML to plain text (tags dropped, scripts and styles skipped, entities decoded, block
   elements become line breaks); returns a new UTF-8 string the caller frees. */
char *mime_html_to_text(const char *html, size_t len, size_t *out_len);

#endif

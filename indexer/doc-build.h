/* Turns an extracted message and its locations into a Xapian document (terms per prefixes.h). */
#ifndef MAILVAULT_DOC_BUILD_H
#define MAILVAULT_DOC_BUILD_H

#include <stddef.h>
#include <stdint.h>
#include "mime-extract.h"

struct xs_doc;

/* Where a message was seen: account and folder names. */
struct doc_location {
	const char *account;
	const char *folder;
};

/* SQL giving the places message `serial` (an SQL expression) was seen, as the text doc_locations_parse()
   reads: "account:folder" pairs with both names hex-encoded (names may hold any character), joined by ",",
   each pair once; NULL when there is none. */
#define DOC_LOCATIONS_SQL(serial) \
	"(SELECT string_agg(DISTINCT encode(convert_to(a.name, 'UTF8'), 'hex') || ':' || " \
	"encode(convert_to(f.name, 'UTF8'), 'hex'), ',') FROM locations l JOIN folders f ON f.id = l.folder_id " \
	"JOIN accounts a ON a.id = f.account_id WHERE l.message_serial = " serial ")"

/* Reads DOC_LOCATIONS_SQL's text (len bytes) into *locs_r, an array the caller frees with
   doc_locations_free(); returns how many pairs. Malformed pairs are skipped. */
size_t doc_locations_parse(const char *text, size_t len, struct doc_location **locs_r);
/* Frees what doc_locations_parse() returned. */
void doc_locations_free(struct doc_location *locs, size_t n);

/* Builds the document (caller frees with xs_doc_free). date is used when the message has no
   readable Date header (the archive's parsed date, or its ingest time); size is the raw size. */
struct xs_doc *doc_build(const struct mime_extract *mx, const struct doc_location *locs, size_t nlocs,
			 int64_t fallback_date, uint64_t size);

#endif

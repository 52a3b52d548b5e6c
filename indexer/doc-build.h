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

/* Builds the document (caller frees with xs_doc_free). date is used when the message has no
   readable Date header (the archive's parsed date, or its ingest time); size is the raw size. */
struct xs_doc *doc_build(const struct mime_extract *mx, const struct doc_location *locs, size_t nlocs,
			 int64_t fallback_date, uint64_t size);

#endif

/* PostgreSQL array literals ({"a","b"}, {1,2}) built safely: the one home of their quoting rules. */
#ifndef MAILVAULT_PG_ARRAY_H
#define MAILVAULT_PG_ARRAY_H

#include <stdint.h>
#include "buf.h"

/* An array literal being built; start from PG_ARRAY_INIT, pass the result of pg_array_text() as one
   query parameter (cast in SQL: $1::text[], $1::bigint[]), free with pg_array_free(). */
struct pg_array {
	struct buf b;
	size_t count;
};
#define PG_ARRAY_INIT { { 0 }, 0 }

/* Appends a string element, quoted ("..." with \" and \\ escaped); NULL appends SQL NULL. The bytes are
   copied as given: callers pass valid UTF-8 without NUL for text[]. */
void pg_array_add_str(struct pg_array *a, const char *s);
/* Appends an integer element. */
void pg_array_add_int(struct pg_array *a, int64_t v);
/* Appends a boolean element. */
void pg_array_add_bool(struct pg_array *a, int v);
/* The literal so far, closed ("{}" when empty); valid until the next change or pg_array_free(). */
const char *pg_array_text(struct pg_array *a);
/* Empties the array for reuse, keeping its memory. */
void pg_array_reset(struct pg_array *a);
/* Frees the memory. */
void pg_array_free(struct pg_array *a);

#endif

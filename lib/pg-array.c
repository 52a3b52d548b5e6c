/* PostgreSQL array literals ({"a","b"}, {1,2}) built safely: the one home of their quoting rules. */
#include "pg-array.h"

#include <inttypes.h>
#include <string.h>

/* Opens the literal or adds the separator before the next element. */
static void pg_array_next(struct pg_array *a)
{
	if (a->count == 0)
		buf_reset(&a->b); /* drop the "{}" pg_array_text() may have written */
	else if (a->b.data[a->b.len - 1] == '}')
		a->b.data[--a->b.len] = '\0'; /* reopen a literal pg_array_text() closed */
	buf_append_str(&a->b, a->count++ == 0 ? "{" : ",");
}

/* Quoted element: PostgreSQL's array input unescapes \" and \\ inside double quotes. */
void pg_array_add_str(struct pg_array *a, const char *s)
{
	pg_array_next(a);
	if (s == NULL) {
		buf_append_str(&a->b, "NULL");
		return;
	}
	buf_append_str(&a->b, "\"");
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_str(&a->b, "\\");
		buf_append(&a->b, p, 1);
	}
	buf_append_str(&a->b, "\"");
}

/* Numbers need no quoting. */
void pg_array_add_int(struct pg_array *a, int64_t v)
{
	pg_array_next(a);
	buf_printf(&a->b, "%" PRId64, v);
}

/* t or f. */
void pg_array_add_bool(struct pg_array *a, int v)
{
	pg_array_next(a);
	buf_append_str(&a->b, v ? "t" : "f");
}

/* Closes the literal (idempotent). */
const char *pg_array_text(struct pg_array *a)
{
	if (a->count == 0) {
		buf_reset(&a->b);
		buf_append_str(&a->b, "{}");
	} else if (a->b.data[a->b.len - 1] != '}') {
		buf_append_str(&a->b, "}");
	}
	return (const char *)a->b.data;
}

/* Back to empty. */
void pg_array_reset(struct pg_array *a)
{
	buf_reset(&a->b);
	a->count = 0;
}

/* Releases the buffer. */
void pg_array_free(struct pg_array *a)
{
	buf_free(&a->b);
	a->count = 0;
}

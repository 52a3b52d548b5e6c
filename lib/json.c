/* Minimal JSON output for --json: one object per line, strings escaped per RFC 8259. */
#include "json.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

/* Escapes quotes, backslashes and control characters. */
void json_append_string(struct buf *b, const char *s)
{
	if (s == NULL) {
		buf_append_str(b, "null");
		return;
	}
	char *clean = util_utf8_sanitize(s, strlen(s));
	buf_append_str(b, "\"");
	for (const unsigned char *p = (const unsigned char *)clean; *p; p++) {
		switch (*p) {
		case '"': buf_append_str(b, "\\\""); break;
		case '\\': buf_append_str(b, "\\\\"); break;
		case '\n': buf_append_str(b, "\\n"); break;
		case '\r': buf_append_str(b, "\\r"); break;
		case '\t': buf_append_str(b, "\\t"); break;
		default:
			if (*p < 0x20)
				buf_printf(b, "\\u%04x", *p);
			else
				buf_append(b, p, 1);
		}
	}
	buf_append_str(b, "\"");
	free(clean);
}

/* Writes the member name, separating members with commas. */
void json_append_key(struct buf *b, const char *key)
{
	if (b->len > 0 && b->data[b->len - 1] != '{')
		buf_append_str(b, ",");
	json_append_string(b, key);
	buf_append_str(b, ":");
}

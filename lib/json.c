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
			/* control characters, DEL and the C1 range escaped, so JSON read on a terminal stays inert */
			if (*p < 0x20 || *p == 0x7f) {
				buf_printf(b, "\\u%04x", *p);
			} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) {
				buf_printf(b, "\\u%04x", p[1]);
				p++;
			} else {
				buf_append(b, p, 1);
			}
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

/* JSON for people's terminals and scripts (see json-out.h). */
#include "json-out.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

json_object *json_text(const char *s)
{
	if (s == NULL)
		return NULL;
	char *clean = util_utf8_sanitize(s, strlen(s));
	json_object *o = json_object_new_string(clean);
	free(clean);
	return o;
}

void json_print_line(FILE *out, json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '\\' && (p[1] == 'b' || p[1] == 'f')) {
			fprintf(out, "\\u%04x", p[1] == 'b' ? 0x08 : 0x0c);
			p++;
		} else if (*p == '\\' && p[1] != '\0') {
			/* any other escape passes whole, so its second character is not read as a first */
			fwrite(p, 1, 2, out);
			p++;
		} else if (*p == 0x7f) {
			fputs("\\u007f", out);
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0) {
			fprintf(out, "\\u%04x", p[1]);
			p++;
		} else {
			putc(*p, out);
		}
	}
	putc('\n', out);
	json_object_put(o);
}

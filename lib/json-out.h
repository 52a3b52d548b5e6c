/* JSON for people's terminals and scripts: json-c objects (the one JSON library of the code base),
   strings made valid UTF-8, and lines printed so that nothing in them can drive a terminal. */
#ifndef MAILVAULT_JSON_OUT_H
#define MAILVAULT_JSON_OUT_H

#include <json-c/json.h>
#include <stdio.h>

/* A JSON string of s with invalid UTF-8 replaced (U+FFFD), or NULL (JSON null) for NULL. */
json_object *json_text(const char *s);
/* Writes o on one line to out and frees it. json-c writes DEL and the C1 controls as raw bytes (U+009B
   acts as an escape on many terminals): they are written \u00XX here, as are U+0008 and U+000C. */
void json_print_line(FILE *out, json_object *o);

#endif

/* Minimal JSON output for --json: one object per line, strings escaped per RFC 8259. */
#ifndef MAILVAULT_JSON_H
#define MAILVAULT_JSON_H

#include "buf.h"

/* Appends s as a JSON string (NULL becomes null); invalid UTF-8 is replaced by U+FFFD. */
void json_append_string(struct buf *b, const char *s);
/* Appends "key": before a value, with a comma when the object already has members. */
void json_append_key(struct buf *b, const char *key);

#endif

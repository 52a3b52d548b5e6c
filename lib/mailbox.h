/* Mailbox names as servers send them and as people read them: modified UTF-7, UTF-8, LIST wildcards. */
#ifndef MAILVAULT_MAILBOX_H
#define MAILVAULT_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>

/* The name people read and type for a mailbox the server names with the len bytes at raw (no NUL
   inside): RFC 3501 modified UTF-7 decoded to UTF-8 ("B&APw-cher" -> "Bücher", "&-" -> "&"); a name
   that already is UTF-8 (UTF8=ACCEPT servers, or servers that ignore the RFC) is kept; a name that is
   neither keeps its ASCII, a malformed "&...-" run stays as written, and bytes that are not UTF-8 are
   written \xNN. "INBOX" in any case becomes "INBOX". Returns a string the caller frees. */
char *mailbox_display_name(const unsigned char *raw, size_t len);

/* True if name matches the IMAP LIST pattern (RFC 3501 6.3.8): "*" matches any characters, "%" any
   but the hierarchy delimiter, everything else only itself ("[Gmail]" is literal). A pattern that
   starts with INBOX matches the INBOX of any case. delimiter 0 means the server has none. */
bool mailbox_pattern_match(const char *pattern, const char *name, char delimiter);

/* True if the pattern would have meant something else as a shell (fnmatch) pattern, the meaning it
   had before patterns followed IMAP LIST: it holds "?", "[" or "\". */
bool mailbox_pattern_was_glob(const char *pattern);

#endif

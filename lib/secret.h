/* Secrets: named [secret NAME] entries of mailvault.conf, resolved at use, sent only where they may go. */
#ifndef MAILVAULT_SECRET_H
#define MAILVAULT_SECRET_H

#include "config.h"

/* The secret an account names, if it may be sent to host as user: the entry exists in cfg, and its host
   (without case) and user (exactly) are the account's. Returns the entry, or NULL with *error_r (a
   malloc'd message naming the entry, never a secret). */
const struct config_secret *secret_for(const struct config *cfg, const char *name, const char *host,
				       const char *user, char **error_r);
/* Resolves the entry's source: file:PATH (read, at most 64 KiB), env:NAME, or cmd:COMMAND, which runs
   without a shell (words split at spaces, '...' and "..." quoting, \ escapes), stdin from /dev/null,
   and is killed after the entry's timeout; one trailing newline is dropped. Returns a string the caller
   frees with secret_free(), or NULL with *error_r (a static message that never holds the secret). */
char *secret_resolve(const struct config_secret *secret, const char **error_r);
/* Splits a cmd: command line into a NULL-terminated argv (free with secret_argv_free()); NULL with
   *error_r for an unterminated quote or an empty command. */
char **secret_split_command(const char *command, const char **error_r);
/* Frees what secret_split_command() returned. */
void secret_argv_free(char **argv);
/* Wipes and frees a resolved secret; sets *secret to NULL. */
void secret_free(char **secret);

#endif

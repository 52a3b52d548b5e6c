/* Secret references (file:PATH, env:NAME, cmd:COMMAND): the database stores only the reference. */
#ifndef MAILVAULT_SECRET_H
#define MAILVAULT_SECRET_H

/* Checks that ref has a known scheme and a non-empty value; 0 or -1 with *error_r. */
int secret_ref_validate(const char *ref, const char **error_r);
/* Resolves ref to the secret (trailing newline removed). Returns a string the caller must free with
   secret_free(), or NULL with *error_r (which never contains the secret). */
char *secret_resolve(const char *ref, const char **error_r);
/* Wipes and frees a resolved secret; sets *secret to NULL. */
void secret_free(char **secret);

#endif

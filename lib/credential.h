/* Officers' credentials: Argon2id password hashes (libsodium), API tokens, and RFC 6238 TOTP codes. */
#ifndef MAILVAULT_CREDENTIAL_H
#define MAILVAULT_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CREDENTIAL_TOTP_KEY_LEN 20    /* 160 bits, RFC 4226's recommended length for HMAC-SHA-1 */
#define CREDENTIAL_TOTP_STEP 30       /* seconds per code */
#define CREDENTIAL_TOTP_DIGITS 6
#define CREDENTIAL_PASSWORD_MIN 12    /* characters a new password must have at least */
#define CREDENTIAL_PASSWORD_MAX 1024

/* Initialises libsodium; 0, or -1 when the system cannot give random numbers. Safe to call again. */
int credential_init(void);

/* The Argon2id hash of password, in libsodium's self-describing string form (it carries the salt and
   the cost), or NULL with *error_r when memory for the hash is refused. The caller frees it. */
char *credential_password_hash(const char *password, const char **error_r);
/* True if password matches hash (constant time in what the hash holds). */
bool credential_password_verify(const char *hash, const char *password);
/* NULL if password is acceptable as a new one, else why not. */
const char *credential_password_weak(const char *password);

/* A new API token: "mvt_" and 43 characters of base64url (256 random bits). The caller frees it. */
char *credential_token_new(void);
/* True if s looks like a token credential_token_new() makes (checked before any lookup). */
bool credential_token_well_formed(const char *s);
/* SHA-256 of the token's text, the form in which tokens, session ids and CSRF tokens are stored. */
void credential_token_hash(const char *token, unsigned char out[32]);
/* A random session id or CSRF token: 43 characters of base64url. The caller frees it. */
char *credential_random_id(void);

/* Fills key with a new random TOTP key. */
void credential_totp_key_new(unsigned char key[CREDENTIAL_TOTP_KEY_LEN]);
/* The 6-digit code of key for time step `step` (RFC 6238 with HMAC-SHA-1, as authenticator apps use). */
uint32_t credential_totp_code(const unsigned char *key, size_t keylen, uint64_t step);
/* Checks a code typed at time now against the steps now-1..now+1 (clock drift), refusing any step at or
   before *last_step (a code is used once). On success returns true and sets *last_step to the step. */
bool credential_totp_check(const unsigned char *key, size_t keylen, const char *code, time_t now, int64_t *last_step);
/* RFC 4648 base32 without padding, as otpauth URIs carry keys. The caller frees it. */
char *credential_base32(const unsigned char *data, size_t len);
/* The otpauth:// URI an authenticator app reads (issuer "mailvault"); the caller frees it. */
char *credential_totp_uri(const char *officer, const unsigned char *key, size_t keylen);

#endif

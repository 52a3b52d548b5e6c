/* SHA-256 of stored messages: the key of the archive's content store. */
#ifndef MAILVAULT_SHA256_H
#define MAILVAULT_SHA256_H

#include <stddef.h>

#define SHA256_LEN 32
#define SHA256_HEX_LEN 64

/* Hashes len bytes into digest (32 bytes). */
void sha256_digest(const void *data, size_t len, unsigned char digest[SHA256_LEN]);
/* Hashes len bytes into lower-case hex (65 bytes with the NUL). */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1]);

#endif

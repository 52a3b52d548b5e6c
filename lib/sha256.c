/* SHA-256 of stored messages, through OpenSSL's EVP interface. */
#include "sha256.h"
#include "util.h"

#include <openssl/evp.h>
#include <stdlib.h>

/* One-shot digest; EVP_Digest picks the fastest implementation for this CPU. */
void sha256_digest(const void *data, size_t len, unsigned char digest[SHA256_LEN])
{
	unsigned int out_len = 0;
	if (EVP_Digest(data, len, digest, &out_len, EVP_sha256(), NULL) != 1 || out_len != SHA256_LEN)
		abort(); /* cannot happen with a working libcrypto; never store a wrong key */
}

/* Digest as hex. */
void sha256_hex(const void *data, size_t len, char hex[SHA256_HEX_LEN + 1])
{
	unsigned char d[SHA256_LEN];
	sha256_digest(data, len, d);
	util_hex(d, SHA256_LEN, hex);
}

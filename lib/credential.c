/* Officers' credentials: Argon2id password hashes (libsodium), API tokens, and RFC 6238 TOTP codes. */
#include "credential.h"
#include "buf.h"
#include "sha256.h"
#include "util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <string.h>

int credential_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

char *credential_password_hash(const char *password, const char **error_r)
{
	char out[crypto_pwhash_STRBYTES];
	/* the interactive cost (64 MiB, 2 passes): a login stays well under a second on modest hardware */
	if (crypto_pwhash_str(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
			      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
		*error_r = "not enough memory to hash the password";
		return NULL;
	}
	return xstrdup(out);
}

bool credential_password_verify(const char *hash, const char *password)
{
	if (hash == NULL || password == NULL || strlen(password) > CREDENTIAL_PASSWORD_MAX)
		return false;
	return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

const char *credential_password_weak(const char *password)
{
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)password; *p; p++)
		chars += (*p & 0xc0) != 0x80; /* count characters, not bytes */
	if (chars < CREDENTIAL_PASSWORD_MIN)
		return "a password needs at least 12 characters";
	if (strlen(password) > CREDENTIAL_PASSWORD_MAX)
		return "a password may have at most 1024 bytes";
	for (const unsigned char *p = (const unsigned char *)password; *p;) {
		size_t n = util_utf8_seq_len(p, strlen((const char *)p));
		if (n == 0)
			return "a password must be UTF-8 text";
		if (*p < 0x20 || *p == 0x7f)
			return "a password may not hold control characters";
		p += n;
	}
	return NULL;
}

/* base64url without padding of len random bytes. */
static char *credential_random_b64(size_t len)
{
	unsigned char raw[64];
	char out[sodium_base64_ENCODED_LEN(64, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
	randombytes_buf(raw, len);
	sodium_bin2base64(out, sizeof(out), raw, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
	return xstrdup(out);
}

char *credential_token_new(void)
{
	char *r = credential_random_b64(32);
	char *t = xasprintf("mvt_%s", r);
	sodium_memzero(r, strlen(r));
	free(r);
	return t;
}

bool credential_token_well_formed(const char *s)
{
	if (s == NULL || strncmp(s, "mvt_", 4) != 0 || strlen(s) != 4 + 43)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		      *p == '_'))
			return false;
	return true;
}

void credential_token_hash(const char *token, unsigned char out[32])
{
	sha256_digest(token, strlen(token), out);
}

char *credential_random_id(void)
{
	return credential_random_b64(32);
}

void credential_totp_key_new(unsigned char key[CREDENTIAL_TOTP_KEY_LEN])
{
	randombytes_buf(key, CREDENTIAL_TOTP_KEY_LEN);
}

uint32_t credential_totp_code(const unsigned char *key, size_t keylen, uint64_t step)
{
	unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	for (int i = 7; i >= 0; i--, step >>= 8)
		msg[i] = (unsigned char)(step & 0xff);
	HMAC(EVP_sha1(), key, (int)keylen, msg, sizeof(msg), mac, &maclen);
	/* RFC 4226 5.3: dynamic truncation */
	unsigned off = mac[maclen - 1] & 0x0f;
	uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
		       ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
	return bin % 1000000;
}

bool credential_totp_check(const unsigned char *key, size_t keylen, const char *code, time_t now, int64_t *last_step)
{
	if (code == NULL || strlen(code) != CREDENTIAL_TOTP_DIGITS || now < 0)
		return false;
	uint32_t want = 0;
	for (const char *p = code; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		want = want * 10 + (uint32_t)(*p - '0');
	}
	int64_t step = (int64_t)(now / CREDENTIAL_TOTP_STEP);
	bool ok = false;
	int64_t hit = 0;
	/* every step of the window is computed, so the time taken does not say which one matched */
	for (int64_t s = step - 1; s <= step + 1; s++) {
		if (s < 0)
			continue;
		bool same = credential_totp_code(key, keylen, (uint64_t)s) == want;
		if (same && s > *last_step && !ok) {
			ok = true;
			hit = s;
		}
	}
	if (ok)
		*last_step = hit;
	return ok;
}

char *credential_base32(const unsigned char *data, size_t len)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	struct buf b = { 0 };
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		acc = (acc << 8) | data[i];
		bits += 8;
		while (bits >= 5) {
			buf_append(&b, &alphabet[(acc >> (bits - 5)) & 31], 1);
			bits -= 5;
		}
	}
	if (bits > 0)
		buf_append(&b, &alphabet[(acc << (5 - bits)) & 31], 1);
	buf_append(&b, "", 1);
	return (char *)b.data;
}

char *credential_totp_uri(const char *officer, const unsigned char *key, size_t keylen)
{
	char *secret = credential_base32(key, keylen);
	struct buf label = { 0 };
	/* the officer's name is of [A-Za-z0-9._@+-]; '@' and '+' are percent-encoded in the label */
	for (const char *p = officer; *p; p++) {
		if (*p == '@' || *p == '+' || *p == ':' || *p == '/' || *p == '?' || *p == '#' || *p == '%' ||
		    (unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			buf_printf(&label, "%%%02X", (unsigned char)*p);
		else
			buf_append(&label, p, 1);
	}
	buf_append(&label, "", 1);
	char *uri = xasprintf("otpauth://totp/mailvault:%s?secret=%s&issuer=mailvault&algorithm=SHA1&digits=%d&period=%d",
			      (char *)label.data, secret, CREDENTIAL_TOTP_DIGITS, CREDENTIAL_TOTP_STEP);
	sodium_memzero(secret, strlen(secret));
	free(secret);
	buf_free(&label);
	return uri;
}

/* Unit tests of lib/credential.c: RFC 6238 and RFC 4648 test vectors, one-time use of TOTP codes,
   password rules and hashes, token shapes. */
#include "credential.h"
#include "unit.h"

#include <stdlib.h>

/* RFC 6238 Appendix B, SHA-1, key "12345678901234567890": the last six digits of each 8-digit code. */
static void test_totp_vectors(void)
{
	static const unsigned char key[] = "12345678901234567890";
	static const struct { uint64_t t; uint32_t code; } v[] = {
		{ 59, 287082 }, { 1111111109, 81804 }, { 1111111111, 50471 },
		{ 1234567890, 5924 }, { 2000000000, 279037 }, { 20000000000ULL, 353130 },
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		CHECK(credential_totp_code(key, 20, v[i].t / CREDENTIAL_TOTP_STEP) == v[i].code);
}

/* A code is good for the step before, its own and the one after, once; never an older step again. */
static void test_totp_check(void)
{
	static const unsigned char key[] = "12345678901234567890";
	int64_t last = -1;
	CHECK(credential_totp_check(key, 20, "287082", 59, &last));
	CHECK(last == 1);
	CHECK(!credential_totp_check(key, 20, "287082", 59, &last));       /* replayed */
	last = -1;
	CHECK(credential_totp_check(key, 20, "287082", 59 + 30, &last));   /* one step late: drift */
	last = -1;
	CHECK(!credential_totp_check(key, 20, "287082", 59 + 60, &last));  /* two steps late */
	CHECK(last == -1);
	CHECK(!credential_totp_check(key, 20, "28708", 59, &last));        /* too short */
	CHECK(!credential_totp_check(key, 20, "2870821", 59, &last));      /* too long */
	CHECK(!credential_totp_check(key, 20, "28708a", 59, &last));
	CHECK(!credential_totp_check(key, 20, NULL, 59, &last));
	CHECK(!credential_totp_check(key, 20, "081804", 59, &last));       /* another time's code */
	/* a later code after an earlier one is fine; an earlier one after a later one is not */
	last = -1;
	char code[8];
	snprintf(code, sizeof(code), "%06u", credential_totp_code(key, 20, 1000));
	CHECK(credential_totp_check(key, 20, code, 1000 * 30 + 5, &last));
	snprintf(code, sizeof(code), "%06u", credential_totp_code(key, 20, 999));
	CHECK(!credential_totp_check(key, 20, code, 1000 * 30 + 5, &last));
	snprintf(code, sizeof(code), "%06u", credential_totp_code(key, 20, 1001));
	CHECK(credential_totp_check(key, 20, code, 1000 * 30 + 5, &last));
	CHECK(last == 1001);
}

/* RFC 4648 section 10, without padding (as otpauth URIs carry it). */
static void test_base32(void)
{
	static const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *out[] = { "", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI" };
	for (size_t i = 0; i < 7; i++) {
		char *b = credential_base32((const unsigned char *)in[i], strlen(in[i]));
		CHECK_STR(b, out[i]);
		free(b);
	}
	static const unsigned char key[] = "12345678901234567890";
	char *uri = credential_totp_uri("jane.roe@example.com", key, 20);
	CHECK_STR(uri, "otpauth://totp/mailvault:jane.roe%40example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
		       "&issuer=mailvault&algorithm=SHA1&digits=6&period=30");
	free(uri);
}

static void test_passwords(void)
{
	CHECK(credential_password_weak("short") != NULL);
	CHECK(credential_password_weak("elevenchars") != NULL);
	CHECK(credential_password_weak("twelve chars") == NULL);
	CHECK(credential_password_weak("ééééééééééé") != NULL);   /* 11 characters, 22 bytes */
	CHECK(credential_password_weak("éééééééééééé") == NULL);
	CHECK(credential_password_weak("tab\there is bad") != NULL);
	CHECK(credential_password_weak("not utf-8 \xff\xfe at all") != NULL);
	const char *err = NULL;
	char *h = credential_password_hash("correct horse battery", &err);
	CHECK(h != NULL && strncmp(h, "$argon2id$", 10) == 0);
	CHECK(credential_password_verify(h, "correct horse battery"));
	CHECK(!credential_password_verify(h, "correct horse batterY"));
	CHECK(!credential_password_verify(h, ""));
	CHECK(!credential_password_verify(NULL, "correct horse battery"));
	char *h2 = credential_password_hash("correct horse battery", &err);
	CHECK(h2 != NULL && strcmp(h, h2) != 0);   /* salted */
	free(h);
	free(h2);
}

static void test_tokens(void)
{
	char *t = credential_token_new(), *u = credential_token_new();
	CHECK(credential_token_well_formed(t));
	CHECK(strcmp(t, u) != 0);
	unsigned char a[32], b[32];
	credential_token_hash(t, a);
	credential_token_hash(u, b);
	CHECK(memcmp(a, b, 32) != 0);
	CHECK(!credential_token_well_formed("mvt_short"));
	CHECK(!credential_token_well_formed(NULL));
	t[10] = '/';
	CHECK(!credential_token_well_formed(t));
	char *id = credential_random_id();
	CHECK(strlen(id) == 43);
	free(t);
	free(u);
	free(id);
}

int main(void)
{
	if (credential_init() < 0)
		return 1;
	test_totp_vectors();
	test_totp_check();
	test_base32();
	test_passwords();
	test_tokens();
	return unit_finish("test-credential");
}

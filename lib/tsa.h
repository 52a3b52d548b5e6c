/* RFC 3161 time stamps for the audit chain's anchors: a request built and a reply checked with OpenSSL's
   TS API, sent to the time-stamp authority over HTTPS with libcurl, and stored tokens verified again. */
#ifndef MAILVAULT_TSA_H
#define MAILVAULT_TSA_H

#include <stdbool.h>
#include <stddef.h>

#define TSA_TIME_LEN 32          /* "2026-11-28T08:00:00Z" and its NUL, with room */
#define TSA_MAX_REPLY (256 * 1024) /* a reply carries a token and a few certificates: a few KB */
#define TSA_CONNECT_TIMEOUT 10   /* seconds */
#define TSA_TIMEOUT 30           /* seconds for the whole exchange */

/* A time stamp obtained from an authority. */
struct tsa_stamp {
	char *token_b64;             /* base64 of the DER TimeStampToken (CMS SignedData); the caller frees */
	char gen_time[TSA_TIME_LEN]; /* the authority's genTime, UTC, "YYYY-MM-DDTHH:MM:SSZ" */
};

/* Checks that url may be sent to: https://, or http:// to a loopback address (127.0.0.1, ::1,
   localhost), whose traffic never leaves the machine. 0, or -1 with *error_r (the caller frees). */
int tsa_url_check(const char *url, char **error_r);

/* Asks the authority at url to time-stamp a SHA-256 digest: a TimeStampReq with a random nonce and the
   certificate requested, POSTed as application/timestamp-query. The reply must be granted and carry the
   same imprint and nonce; with ca_file (PEM), its signature and the authority's certificate chain
   (extended key usage timeStamping) are verified against it. 0 with *out filled (free it with
   tsa_stamp_free), or -1 with *error_r (the caller frees). */
int tsa_stamp(const char *url, const unsigned char digest[32], const char *ca_file, struct tsa_stamp *out,
	      char **error_r);
void tsa_stamp_free(struct tsa_stamp *s);

/* Checks a stored token (base64 DER) against a SHA-256 digest: it must time-stamp exactly that digest;
   with ca_file, its signature and chain are verified too. Its genTime goes to gen_time. 0, or -1 with
   *error_r (the caller frees). */
int tsa_token_verify(const char *token_b64, const unsigned char digest[32], const char *ca_file,
		     char gen_time[TSA_TIME_LEN], char **error_r);

#endif

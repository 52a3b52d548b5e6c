/* RFC 3161 time stamps for the audit chain's anchors (see tsa.h): OpenSSL's TS API builds the request and
 * checks the reply and stored tokens; libcurl carries them, verifying the authority's TLS certificate and
 * host name, with bounded time and size. */
#include "tsa.h"
#include "buf.h"
#include "util.h"

#include <curl/curl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pkcs7.h>
#include <openssl/rand.h>
#include <openssl/ts.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Sets *error_r to fmt's text followed by the reason OpenSSL queued, if any (the queue is emptied). */
static int tsa_fail(char **error_r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tsa_fail(char **error_r, const char *fmt, ...)
{
	char msg[512], why[320] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the first reason says what failed; the first detail (a certificate's verify error) says why */
	const char *data = NULL;
	int flags = 0;
	unsigned long e;
	bool have_reason = false, have_detail = false;
	char reason[160] = "", detail[160] = "";
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		if (!have_reason && ERR_reason_error_string(e) != NULL) {
			snprintf(reason, sizeof(reason), "%s", ERR_reason_error_string(e));
			have_reason = true;
		}
		if (!have_detail && data != NULL && (flags & ERR_TXT_STRING) && *data != '\0') {
			snprintf(detail, sizeof(detail), "%s", data);
			have_detail = true;
		}
	}
	if (have_reason || have_detail)
		snprintf(why, sizeof(why), " (%s%s%s)", reason, have_reason && have_detail ? ": " : "", detail);
	*error_r = xasprintf("%s%s", msg, why);
	return -1;
}

int tsa_url_check(const char *url, char **error_r)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = -1;
	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		*error_r = xasprintf("--tsa %s is not a URL (e.g. https://tsa.example.com/tsr)", util_term(url));
		goto out;
	}
	if (strcasecmp(scheme, "https") != 0 && strcasecmp(scheme, "http") != 0) {
		*error_r = xasprintf("--tsa %s: only https:// time-stamp authorities are accepted", util_term(url));
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		*error_r = xasprintf("--tsa %s names no host", util_term(url));
		goto out;
	}
	if (strcasecmp(scheme, "https") == 0) {
		rc = 0;
	} else if (strcasecmp(scheme, "http") == 0) {
		/* plain HTTP only where it cannot leave the machine: a reply is signed, but its path is not private */
		static const char *const loopback[] = { "127.0.0.1", "[::1]", "::1", "localhost" };
		for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
			if (strcasecmp(host, loopback[i]) == 0)
				rc = 0;
		if (rc < 0)
			*error_r = xasprintf("--tsa %s: plain http:// is only accepted to a loopback address (127.0.0.1, ::1, "
					     "localhost); use https://", util_term(url));
	}
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* Collects a reply, refusing more than TSA_MAX_REPLY bytes. */
struct tsa_sink {
	struct buf b;
	bool too_large;
};

static size_t tsa_sink_write(char *data, size_t size, size_t n, void *userdata)
{
	struct tsa_sink *s = userdata;
	size_t len = size * n;
	if (s->b.len + len > TSA_MAX_REPLY) {
		s->too_large = true;
		return 0;
	}
	buf_append(&s->b, data, len);
	return len;
}

/* POSTs a DER TimeStampReq to url; 0 with the DER reply in *reply, or -1 with *error_r. */
static int tsa_post(const char *url, const unsigned char *req, size_t req_len, struct buf *reply, char **error_r)
{
	if (tsa_url_check(url, error_r) < 0)
		return -1;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		*error_r = xstrdup("cannot initialise libcurl");
		return -1;
	}
	CURL *c = curl_easy_init();
	if (c == NULL) {
		curl_global_cleanup();
		*error_r = xstrdup("cannot initialise libcurl");
		return -1;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	struct tsa_sink sink = { 0 };
	struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/timestamp-query");
	hdrs = curl_slist_append(hdrs, "Accept: application/timestamp-reply");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);        /* a redirect could lead off loopback or to http */
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (strncasecmp(url, "http:", 5) == 0)
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");       /* loopback traffic stays on this machine */
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)TSA_CONNECT_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)TSA_TIMEOUT);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)TSA_MAX_REPLY);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)req);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req_len);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "mailvault/" MAILVAULT_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tsa_sink_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	CURLcode cc = curl_easy_perform(c);
	long status = 0;
	char *ctype = NULL;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype);
	int rc = -1;
	if (sink.too_large || cc == CURLE_FILESIZE_EXCEEDED)
		*error_r = xasprintf("the time-stamp authority at %s sent more than %d bytes", util_term(url), TSA_MAX_REPLY);
	else if (cc != CURLE_OK)
		*error_r = xasprintf("cannot reach the time-stamp authority at %s: %s", util_term(url),
				     util_term(*errbuf ? errbuf : curl_easy_strerror(cc)));
	else if (status != 200)
		*error_r = xasprintf("the time-stamp authority at %s answered HTTP %ld", util_term(url), status);
	else if (ctype == NULL || (strncasecmp(ctype, "application/timestamp-reply", 27) != 0 &&
				   strncasecmp(ctype, "application/timestamp-response", 30) != 0))
		*error_r = xasprintf("the time-stamp authority at %s answered %s, not application/timestamp-reply",
				     util_term(url), ctype ? util_term(ctype) : "without a content type");
	else
		rc = 0;
	if (rc == 0)
		buf_append(reply, sink.b.data, sink.b.len);
	buf_free(&sink.b);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	curl_global_cleanup();
	return rc;
}

/* A TimeStampReq for a SHA-256 digest, asking for the authority's certificate; with a nonce (a new
   random 64-bit number) when nonce is true. NULL on an OpenSSL failure. */
static TS_REQ *tsa_request(const unsigned char digest[32], bool nonce)
{
	TS_REQ *req = TS_REQ_new();
	TS_MSG_IMPRINT *imprint = TS_MSG_IMPRINT_new();
	X509_ALGOR *alg = X509_ALGOR_new();
	ASN1_INTEGER *n = NULL;
	bool ok = req && imprint && alg && TS_REQ_set_version(req, 1) &&
		  X509_ALGOR_set0(alg, OBJ_nid2obj(NID_sha256), V_ASN1_NULL, NULL) &&
		  TS_MSG_IMPRINT_set_algo(imprint, alg) && TS_MSG_IMPRINT_set_msg(imprint, (unsigned char *)digest, 32) &&
		  TS_REQ_set_msg_imprint(req, imprint) && TS_REQ_set_cert_req(req, 1);
	if (ok && nonce) {
		unsigned char r[8];
		BIGNUM *bn = NULL;
		ok = RAND_bytes(r, sizeof(r)) == 1 && (bn = BN_bin2bn(r, sizeof(r), NULL)) != NULL &&
		     (n = BN_to_ASN1_INTEGER(bn, NULL)) != NULL && TS_REQ_set_nonce(req, n);
		BN_free(bn);
	}
	ASN1_INTEGER_free(n);
	X509_ALGOR_free(alg);
	TS_MSG_IMPRINT_free(imprint);
	if (!ok) {
		TS_REQ_free(req);
		return NULL;
	}
	return req;
}

/* The genTime of tst as "YYYY-MM-DDTHH:MM:SSZ"; 0 or -1. */
static int tsa_gen_time(TS_TST_INFO *tst, char out[TSA_TIME_LEN])
{
	const ASN1_GENERALIZEDTIME *t = TS_TST_INFO_get_time(tst);
	struct tm tm;
	if (t == NULL || !ASN1_TIME_to_tm((const ASN1_TIME *)t, &tm))
		return -1;
	return strftime(out, TSA_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) > 0 ? 0 : -1;
}

/* Our own checks of a token's content, with messages that say which: version 1, a SHA-256 imprint of
   exactly digest, and (nonce not NULL) the nonce sent. 0 or -1 with *error_r. */
static int tsa_check_content(TS_TST_INFO *tst, const unsigned char digest[32], const ASN1_INTEGER *nonce,
			     char **error_r)
{
	if (TS_TST_INFO_get_version(tst) != 1)
		return tsa_fail(error_r, "the time-stamp token has an unknown version");
	TS_MSG_IMPRINT *mi = TS_TST_INFO_get_msg_imprint(tst);
	X509_ALGOR *alg = mi ? TS_MSG_IMPRINT_get_algo(mi) : NULL;
	const ASN1_OBJECT *obj = NULL;
	if (alg != NULL)
		X509_ALGOR_get0(&obj, NULL, NULL, alg);
	ASN1_OCTET_STRING *msg = mi ? TS_MSG_IMPRINT_get_msg(mi) : NULL;
	if (obj == NULL || OBJ_obj2nid(obj) != NID_sha256)
		return tsa_fail(error_r, "the time-stamp token is not over a SHA-256 imprint");
	if (msg == NULL || ASN1_STRING_length(msg) != 32 || memcmp(ASN1_STRING_get0_data(msg), digest, 32) != 0)
		return tsa_fail(error_r, "the time-stamp token's imprint is not the anchor's: it time-stamps something else");
	if (nonce != NULL) {
		const ASN1_INTEGER *got = TS_TST_INFO_get_nonce(tst);
		if (got == NULL || ASN1_INTEGER_cmp(got, nonce) != 0)
			return tsa_fail(error_r, "the time-stamp reply does not carry the nonce of the request (a replayed reply?)");
	}
	return 0;
}

/* OpenSSL's own verification of a reply (resp) or a token, against what req asked: version, imprint,
   nonce, and with ca_file the signature, the signer's certificate chain for time stamping and its name.
   0 or -1 with *error_r. */
static int tsa_verify_openssl(TS_REQ *req, TS_RESP *resp, PKCS7 *token, const char *ca_file, char **error_r)
{
	TS_VERIFY_CTX *ctx = TS_REQ_to_TS_VERIFY_CTX(req, NULL);
	if (ctx == NULL)
		return tsa_fail(error_r, "cannot set up the time-stamp verification");
	int flags = TS_VFY_VERSION | TS_VFY_IMPRINT;
	if (TS_REQ_get_nonce(req) != NULL)
		flags |= TS_VFY_NONCE;
	if (ca_file != NULL) {
		X509_STORE *store = X509_STORE_new();
		if (store == NULL || !X509_STORE_load_file(store, ca_file)) {
			X509_STORE_free(store);
			TS_VERIFY_CTX_free(ctx);
			return tsa_fail(error_r, "cannot read the certificates of --tsa-ca %s", util_term(ca_file));
		}
		TS_VERIFY_CTX_set_store(ctx, store); /* the context owns it now */
		flags |= TS_VFY_SIGNATURE | TS_VFY_SIGNER;
	}
	TS_VERIFY_CTX_set_flags(ctx, flags);
	int ok = resp != NULL ? TS_RESP_verify_response(ctx, resp) : TS_RESP_verify_token(ctx, token);
	TS_VERIFY_CTX_free(ctx);
	if (ok != 1)
		return tsa_fail(error_r, ca_file != NULL ? "the time-stamp token does not verify against --tsa-ca %s"
							 : "the time-stamp token does not verify%s",
				ca_file != NULL ? util_term(ca_file) : "");
	return 0;
}

/* Base64 of len bytes (no line breaks); the caller frees. */
static char *tsa_b64_encode(const unsigned char *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* Bytes of base64 text s (strict: whole groups, padding only at the end); NULL when s is not base64. */
static unsigned char *tsa_b64_decode(const char *s, size_t *len_r)
{
	size_t n = strlen(s);
	if (n == 0 || n % 4 != 0 || n > 4 * (size_t)TSA_MAX_REPLY)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		bool b64 = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '+' ||
			   ch == '/';
		if (!b64 && !(ch == '=' && (i == n - 1 || (i == n - 2 && s[n - 1] == '='))))
			return NULL;
	}
	unsigned char *out = xmalloc(n / 4 * 3 + 1);
	int got = EVP_DecodeBlock(out, (const unsigned char *)s, (int)n);
	if (got < 0) {
		free(out);
		return NULL;
	}
	*len_r = (size_t)got - (s[n - 1] == '=') - (s[n - 2] == '=');
	return out;
}

int tsa_stamp(const char *url, const unsigned char digest[32], const char *ca_file, struct tsa_stamp *out,
	      char **error_r)
{
	memset(out, 0, sizeof(*out));
	TS_REQ *req = tsa_request(digest, true);
	TS_RESP *resp = NULL;
	unsigned char *der = NULL, *token_der = NULL;
	struct buf reply = { 0 };
	int rc = -1;
	if (req == NULL) {
		tsa_fail(error_r, "cannot build the time-stamp request");
		goto out;
	}
	int der_len = i2d_TS_REQ(req, &der);
	if (der_len <= 0) {
		tsa_fail(error_r, "cannot encode the time-stamp request");
		goto out;
	}
	if (tsa_post(url, der, (size_t)der_len, &reply, error_r) < 0)
		goto out;
	const unsigned char *p = reply.data;
	resp = reply.len > 0 && reply.len < (size_t)INT32_MAX ? d2i_TS_RESP(NULL, &p, (long)reply.len) : NULL;
	if (resp == NULL || p != reply.data + reply.len) {
		tsa_fail(error_r, "the time-stamp authority's reply is not a TimeStampResp");
		goto out;
	}
	TS_STATUS_INFO *si = TS_RESP_get_status_info(resp);
	long status = si ? ASN1_INTEGER_get(TS_STATUS_INFO_get0_status(si)) : -1;
	if (status != 0 && status != 1) {
		const STACK_OF(ASN1_UTF8STRING) *text = si ? TS_STATUS_INFO_get0_text(si) : NULL;
		const ASN1_UTF8STRING *first = text && sk_ASN1_UTF8STRING_num(text) > 0 ? sk_ASN1_UTF8STRING_value(text, 0) : NULL;
		char *said = first ? xstrndup((const char *)ASN1_STRING_get0_data(first), (size_t)ASN1_STRING_length(first))
				   : NULL;
		tsa_fail(error_r, "the time-stamp authority refused the request (status %ld%s%s)", status,
			 said ? ": " : "", said ? util_term(said) : "");
		free(said);
		goto out;
	}
	PKCS7 *token = TS_RESP_get_token(resp);
	TS_TST_INFO *tst = TS_RESP_get_tst_info(resp);
	if (token == NULL || tst == NULL) {
		tsa_fail(error_r, "the time-stamp authority granted the request but sent no token");
		goto out;
	}
	if (tsa_check_content(tst, digest, TS_REQ_get_nonce(req), error_r) < 0 ||
	    tsa_verify_openssl(req, resp, NULL, ca_file, error_r) < 0)
		goto out;
	if (tsa_gen_time(tst, out->gen_time) < 0) {
		tsa_fail(error_r, "the time-stamp token's time cannot be read");
		goto out;
	}
	int token_len = i2d_PKCS7(token, &token_der);
	if (token_len <= 0) {
		tsa_fail(error_r, "cannot encode the time-stamp token");
		goto out;
	}
	out->token_b64 = tsa_b64_encode(token_der, (size_t)token_len);
	rc = 0;
out:
	OPENSSL_free(der);
	OPENSSL_free(token_der);
	TS_RESP_free(resp);
	TS_REQ_free(req);
	buf_free(&reply);
	ERR_clear_error();
	return rc;
}

void tsa_stamp_free(struct tsa_stamp *s)
{
	FREE(s->token_b64);
}

int tsa_token_verify(const char *token_b64, const unsigned char digest[32], const char *ca_file,
		     char gen_time[TSA_TIME_LEN], char **error_r)
{
	size_t len = 0;
	unsigned char *der = tsa_b64_decode(token_b64, &len);
	PKCS7 *token = NULL;
	TS_TST_INFO *tst = NULL;
	TS_REQ *req = NULL;
	int rc = -1;
	const unsigned char *p = der;
	if (der == NULL || (token = d2i_PKCS7(NULL, &p, (long)len)) == NULL || p != der + len ||
	    (tst = PKCS7_to_TS_TST_INFO(token)) == NULL) {
		tsa_fail(error_r, "the time-stamp token is not a base64 DER TimeStampToken");
		goto out;
	}
	if ((req = tsa_request(digest, false)) == NULL) {
		tsa_fail(error_r, "cannot set up the time-stamp verification");
		goto out;
	}
	if (tsa_check_content(tst, digest, NULL, error_r) < 0 || tsa_verify_openssl(req, NULL, token, ca_file, error_r) < 0)
		goto out;
	if (tsa_gen_time(tst, gen_time) < 0) {
		tsa_fail(error_r, "the time-stamp token's time cannot be read");
		goto out;
	}
	rc = 0;
out:
	TS_REQ_free(req);
	TS_TST_INFO_free(tst);
	PKCS7_free(token);
	free(der);
	ERR_clear_error();
	return rc;
}

/* The audit log's hash chain, recomputed in C independently of the database function that wrote it. */
#include "audit-chain.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* Feeds one field as form 2 hashes it: its length in 8 big-endian bytes, then its bytes; NULL is eight
   0xff bytes and nothing else, so NULL and "" differ and no field can run into the next. */
static void audit_field(EVP_MD_CTX *ctx, const char *s)
{
	unsigned char len[8];
	if (s == NULL) {
		memset(len, 0xff, sizeof(len));
		EVP_DigestUpdate(ctx, len, sizeof(len));
		return;
	}
	uint64_t n = strlen(s);
	for (int i = 7; i >= 0; i--, n >>= 8)
		len[i] = (unsigned char)(n & 0xff);
	EVP_DigestUpdate(ctx, len, sizeof(len));
	EVP_DigestUpdate(ctx, s, strlen(s));
}

void audit_chain_hash(const struct audit_row *r, const unsigned char *prev, size_t prevlen, unsigned char out[32])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	char seq[24], at[48];
	unsigned int outlen = 0;
	snprintf(seq, sizeof(seq), "%lld", (long long)r->seq);
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	EVP_DigestUpdate(ctx, prev, prevlen);
	if (r->form == 1) {
		/* earlier versions: seq|at|actor|action|target|details, target NULL as empty */
		const char *parts[] = { seq, r->at ? r->at : "", r->actor ? r->actor : "", r->action ? r->action : "",
					r->target ? r->target : "", r->details ? r->details : "{}" };
		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
			if (i)
				EVP_DigestUpdate(ctx, "|", 1);
			EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
		}
	} else {
		static const char tag[] = "mailvault-audit-2";
		EVP_DigestUpdate(ctx, tag, strlen(tag));
		snprintf(at, sizeof(at), "%sZ", r->at ? r->at : "");
		const char *fields[] = { seq, at, r->actor, r->via, r->client, r->recorded_by, r->action, r->target,
					 r->details };
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			audit_field(ctx, fields[i]);
	}
	EVP_DigestFinal_ex(ctx, out, &outlen);
	EVP_MD_CTX_free(ctx);
}

void audit_verify_init(struct audit_verify *v)
{
	memset(v, 0, sizeof(*v));
}

/* Marks the chain broken at r. */
static bool audit_broken(struct audit_verify *v, const struct audit_row *r, const char *why)
{
	v->broken = true;
	v->broken_seq = r->seq;
	snprintf(v->reason, sizeof(v->reason), "%s", why);
	return false;
}

bool audit_verify_row(struct audit_verify *v, const struct audit_row *r)
{
	if (v->broken)
		return false;
	if (r->form != 1 && r->form != 2)
		return audit_broken(v, r, "it has an unknown form");
	if (r->seq != v->last_seq + 1)
		return audit_broken(v, r, v->last_len == 0 && v->rows == 0 ? "the log does not start at row 1"
									   : "rows before it are missing");
	if (r->prev_len != v->last_len || memcmp(r->prev_hash, v->last_hash, v->last_len) != 0)
		return audit_broken(v, r, "its previous hash is not the hash of the row before it");
	unsigned char want[32];
	audit_chain_hash(r, v->last_hash, v->last_len, want);
	if (r->hash_len != sizeof(want) || memcmp(r->hash, want, sizeof(want)) != 0)
		return audit_broken(v, r, "its hash is not the hash of its fields: the row was changed");
	memcpy(v->last_hash, want, sizeof(want));
	v->last_len = sizeof(want);
	v->last_seq = r->seq;
	v->rows++;
	return true;
}

/* The audit log's hash chain, recomputed in C independently of the database function that wrote it. */
#ifndef MAILVAULT_AUDIT_CHAIN_H
#define MAILVAULT_AUDIT_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One row as stored. Text fields are NULL when SQL NULL; at is the time as the database formats it for
   hashing: to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), without a zone letter. */
struct audit_row {
	int64_t seq;
	int form;                       /* 1: fields joined by '|' (earlier versions); 2: length-prefixed */
	const char *at, *actor, *via, *client, *recorded_by, *action, *target, *details;
	const unsigned char *prev_hash; /* as stored */
	size_t prev_len;
	const unsigned char *hash;      /* as stored */
	size_t hash_len;
};

/* The hash row r must carry when the row before it has hash prev (prevlen 0 for the first row). */
void audit_chain_hash(const struct audit_row *r, const unsigned char *prev, size_t prevlen, unsigned char out[32]);

/* Walks the log in seq order. */
struct audit_verify {
	int64_t rows;                   /* rows checked and found good */
	int64_t last_seq;
	unsigned char last_hash[32];
	size_t last_len;                /* 0 before the first row */
	bool broken;
	int64_t broken_seq;             /* the first row that does not verify */
	char reason[160];               /* why, e.g. "its hash is not the hash of its fields" */
};

void audit_verify_init(struct audit_verify *v);
/* Checks the next row; false once the chain is broken (v says where and why; later rows are not read). */
bool audit_verify_row(struct audit_verify *v, const struct audit_row *r);

#endif

/* mailvaultd internals: an account to poll, the folder sync and the batch store. */
#ifndef MAILVAULT_POLLER_H
#define MAILVAULT_POLLER_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "imap-conn.h"

/* One account as leased from the database. */
struct account {
	int id;
	char *name, *host, *username, *secret_ref, *ca_file;
	unsigned port, poll_interval;
	enum imap_tls_mode tls;
	enum imap_auth auth;
	char **include, **exclude;   /* NULL-terminated fnmatch patterns */
	int failures;
};

/* What a worker needs to poll one account. */
struct poll_ctx {
	const struct config *cfg;
	PGconn *db;
	const char *lease_owner;
	volatile sig_atomic_t *stop;  /* set by SIGTERM: finish the batch, then leave */
	unsigned backoff_ms;          /* set by a throttling server */
	bool auth_failed;
};

/* One message fetched from the server, owned by the batch. */
struct fetched_msg {
	uint64_t uid;
	char *internaldate;   /* ISO 8601, or NULL */
	char *flags;          /* PostgreSQL text[] literal */
	unsigned char *raw;
	size_t size;
};

/* One UID that could not be archived, and why. */
struct skipped_msg {
	uint64_t uid;
	uint64_t size;
	char *reason;
};

/* Polls every selected folder of the account: returns 0 if all went well, -1 with *error_r
   (malloc'd) otherwise. Folders that succeeded stay archived whatever happens to the others. */
int account_poll(struct poll_ctx *ctx, const struct account *acct, char **error_r);
/* Frees an account's strings. */
void account_free(struct account *acct);

/* Stores one batch in one transaction: blobs, messages, locations, skipped UIDs, the folder's new
   watermark, and the lease renewal. 0 on success, -1 with *error_r (thread-local buffer); *retry_r
   tells a transient conflict (deadlock with another poller storing the same message) from a failure. */
int store_batch(struct poll_ctx *ctx, const struct account *acct, int64_t folder_id, uint64_t uidvalidity,
		struct fetched_msg *msgs, size_t nmsgs, const struct skipped_msg *skipped, size_t nskipped,
		uint64_t new_last_uid, const char **error_r, bool *retry_r);

#endif

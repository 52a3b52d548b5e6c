/* mailvaultd internals: an account to poll, its folders, the folder sync and the batch store. */
#ifndef MAILVAULT_POLLER_H
#define MAILVAULT_POLLER_H

#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"
#include "imap-conn.h"

/* One account as leased from the database. */
struct account {
	int id;
	char *name, *host, *username, *secret_name, *ca_file;
	unsigned port, poll_interval;
	enum imap_tls_mode tls;
	enum imap_auth auth;
	char **include, **exclude;   /* NULL-terminated IMAP LIST patterns (* and %) */
	int failures;
};

/* What a worker needs to poll one account. */
struct poll_ctx {
	const struct config *cfg;     /* the configuration this poll started with (a reload never changes it) */
	PGconn *db;
	const char *lease_owner;
	const atomic_int *stop;       /* set on SIGTERM: finish the batch, then leave */
	unsigned backoff_ms;          /* set by a throttling server */
	bool account_fatal;           /* a failure of the account, not of one folder: the database or the lease */
};

/* How a poll ended. */
enum poll_outcome {
	POLL_OK,          /* every selected folder archived */
	POLL_PARTIAL,     /* the account was polled, some folders failed (each recorded on its folder) */
	POLL_FAILED,      /* nothing could be done: login, LIST, secret, database */
};

/* A folder as the server lists it, with STATUS values when known, and its row in the database. */
struct folder {
	unsigned char *raw;           /* the server's exact name (NUL-terminated for convenience) */
	size_t raw_len;
	char *name;                   /* the name people read (UTF-8, modified UTF-7 decoded) */
	char delimiter;               /* hierarchy delimiter, 0 if the server has none */
	char *special_use;
	bool noselect, selected;
	bool have_status, have_status_uidnext;
	uint64_t uidvalidity, uidnext, highestmodseq;
	/* from the database */
	int64_t id;
	bool have_db, db_changed;     /* db_changed: its listed attributes differ from the row */
	bool db_uidvalidity_null, db_uidnext_null, db_failed, has_retries;
	uint64_t db_uidvalidity, db_last_uid, db_uidnext;
};

struct folder_list {
	struct folder *items;
	size_t count, cap;
	char *problem;                /* a LIST or STATUS answer that could not be read (malloc'd), if any */
};

/* The UIDs this poller asks for again (after SELECT e.uid or SELECT 1): recorded as retryable, not
   archived since, not given up on, and (for a message over the size limit) now within max_bytes; only
   the folder's current generation counts. folder_id and max_bytes are SQL expressions. */
#define FOLDER_PENDING_RETRIES_FROM(folder_id, max_bytes) \
	"FROM ingest_errors e JOIN folders fr ON fr.id = e.folder_id " \
	"WHERE e.folder_id = " folder_id " AND e.retry AND e.uidvalidity = fr.uidvalidity " \
	"AND (e.kind <> 'oversize' OR e.size <= " max_bytes ") " \
	"AND NOT EXISTS (SELECT 1 FROM locations l WHERE l.folder_id = e.folder_id AND l.uidvalidity = e.uidvalidity " \
	" AND l.uid = e.uid) " \
	"AND NOT EXISTS (SELECT 1 FROM ingest_errors g WHERE g.folder_id = e.folder_id AND g.uidvalidity = e.uidvalidity " \
	" AND g.uid = e.uid AND NOT g.retry AND g.id > e.id)"

/* Polls every selected folder of the account. *error_r (malloc'd) says why it failed or which folders
   failed; folders that succeeded stay archived whatever happens to the others. */
enum poll_outcome account_poll(struct poll_ctx *ctx, const struct account *acct, char **error_r);
/* Frees an account's strings. */
void account_free(struct account *acct);

/* Lists the account's folders (LIST, with LIST-STATUS where offered, STATUS per folder otherwise),
   decides which are selected, and brings their rows in the database up to date. 0, or -1 with
   *error_r (malloc'd). */
int folders_list(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *acct, struct folder_list *fl,
		 char **error_r);
/* True if the folder need not even be examined: unchanged since its last full sync. */
bool folder_unchanged(const struct folder *f);
/* Records the outcome of a folder's sync on its row (error NULL: success). */
void folder_record_result(struct poll_ctx *ctx, const struct folder *f, const char *error);
/* Frees the list. */
void folders_free(struct folder_list *fl);

/* Archives a folder's new messages, then retries the ones recorded as retryable. 0, or -1 with *error_r
   (malloc'd); after a failure imap_conn_broken() tells whether the connection is gone. */
int folder_sync(struct poll_ctx *ctx, struct imap_conn *conn, const struct account *acct, struct folder *f,
		char **error_r);

/* One message fetched from the server, owned by the batch. */
struct fetched_msg {
	uint64_t uid;
	char *internaldate;   /* ISO 8601, or NULL */
	char *flags;          /* PostgreSQL text[] literal */
	unsigned char *raw;
	size_t size;
	bool no_location;     /* a second body the server sent for a UID: stored without a location */
};

/* One UID that could not be archived, and why. */
struct skipped_msg {
	uint64_t uid;
	uint64_t size;
	char *reason;
	const char *kind;     /* ingest_errors.kind: oversize, no-body, gone, second-body, refused */
	bool retry;           /* the poller asks for it again at later polls */
	unsigned char sha256[32];
	bool have_sha256;     /* the row names stored bytes (the second body of a repeated UID) */
};

/* One batch to store in one transaction. */
struct store_batch {
	int64_t folder_id;
	uint64_t uidvalidity;
	struct fetched_msg *msgs;
	size_t nmsgs;
	struct skipped_msg *skipped;
	size_t nskipped;
	uint64_t new_last_uid;   /* the folder's new watermark; 0 leaves it where it is (retries) */
};

/* Stores one batch atomically: blobs, messages, locations, skipped UIDs, the watermark and the lease
   renewal. A batch PostgreSQL refuses is stored again message by message, each in a savepoint: a message
   whose parsed header fields are refused is kept without them, one that still cannot be stored is
   recorded in ingest_errors, so nothing wedges the folder. 0 on success, -1 with *error_r (thread-local
   buffer) when the transaction itself cannot be done (the database is gone, the lease was lost). */
int store_batch(struct poll_ctx *ctx, const struct account *acct, struct store_batch *b, const char **error_r);

#endif

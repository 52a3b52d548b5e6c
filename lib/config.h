/* mailvault.conf: a small INI file; unknown sections or keys and bad values are errors with file:line. */
#ifndef MAILVAULT_CONFIG_H
#define MAILVAULT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/mailvault/mailvault.conf"

struct config {
	char *path;
	/* [database] */
	char *conninfo;            /* libpq connection string used by the CLI (and by default by all) */
	char *ingest_conninfo;     /* optional: mailvaultd's own login, for least privilege */
	char *indexer_conninfo;
	char *retention_conninfo;
	/* [daemon] */
	unsigned workers;          /* accounts polled at once */
	unsigned batch_messages;   /* messages per fetch batch / transaction */
	uint64_t batch_bytes;      /* bytes per fetch batch / transaction */
	uint64_t max_message_bytes;/* larger messages are recorded in ingest_errors, not fetched */
	unsigned poll_interval;    /* default seconds between polls of an account */
	unsigned timeout;          /* seconds of network silence before a connection is dropped */
	unsigned lease_seconds;    /* how long an account lease lasts without renewal */
	enum log_level log_level;
	bool log_syslog;
	/* [tls] */
	char *ca_file;             /* CA bundle; NULL means the system's trust store */
	/* [indexer] */
	char *index_path;          /* directory of the index's shards */
	unsigned index_shards;     /* shards (and writer threads) of a new index; 0 = one per core */
	/* [search] */
	unsigned session_idle;     /* seconds a user's search session stays warm after use; 0 = none */
};

/* Reads and validates FILE. Returns a config to free with config_free(), or NULL with *error_r
   (a message the caller frees) such as "mailvault.conf:12: unknown key 'wokers' in [daemon]". */
struct config *config_load(const char *path, char **error_r);
/* Frees the config; sets *cfg to NULL. */
void config_free(struct config **cfg);
/* The conninfo a program should use: its own if set, else the shared one. */
const char *config_conninfo_for(const struct config *cfg, const char *program);

#endif

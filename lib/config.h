/* mailvault.conf: a small INI file; unknown sections or keys and bad values are errors with file:line. */
#ifndef MAILVAULT_CONFIG_H
#define MAILVAULT_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/mailvault/mailvault.conf"
#define CONFIG_DEFAULT_WEB_SOCKET "/run/mailvault/web.sock"
/* Largest message that can be archived: PostgreSQL's bytea holds at most 1 GiB, less row overhead. */
#define CONFIG_MAX_MESSAGE_BYTES (1000ULL * 1024 * 1024)

/* A [secret NAME] section: where a password or token comes from, and the one host and user it may be
   sent to, so that whoever can write the accounts table can neither run a command on the poller's host
   nor send a secret elsewhere. */
struct config_secret {
	char *name;
	char *source;              /* file:PATH, env:NAME or cmd:COMMAND (run without a shell) */
	char *host;                /* the IMAP server it may be sent to (compared without case) */
	char *user;                /* the login it may be sent as (compared exactly) */
	unsigned timeout;          /* seconds a cmd: source may take */
	unsigned line;             /* where the section starts, for messages */
};

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
	/* [search] session_idle: per-user search sessions are retired (mailvault-web is warm for everyone);
	   the key is still accepted, and its line kept so programs can warn that it does nothing */
	unsigned session_idle;
	unsigned search_session_idle_line;
	/* [web]: mailvault-web, the officers' service */
	char *web_conninfo;        /* [database] web_conninfo: its own login, a member of mailvault_web */
	char *web_listen;          /* HOST:PORT for HTTPS (plain HTTP only on a loopback address), or NULL */
	char *web_socket;          /* the Unix socket of the mailvault command; NULL: CONFIG_DEFAULT_WEB_SOCKET */
	char *web_tls_cert, *web_tls_key;
	char *web_trusted_proxies; /* addresses whose X-Forwarded-For is believed, separated by , or spaces */
	unsigned web_workers;      /* requests served at once (each with its own database connection and index) */
	unsigned web_session_idle; /* seconds a browser session lives without use */
	unsigned web_session_max;  /* seconds a browser session lives at most */
	/* [retention]: mailvault-retention, and what `mailvault init` copies into retention_settings */
	uint64_t retention_min_age;       /* seconds: no message is disposed of sooner after it was archived */
	uint64_t retention_release_grace; /* seconds a released hold still keeps its messages */
	unsigned retention_batch;         /* messages per disposal transaction (1..10000) */
	unsigned retention_batch_ms;      /* milliseconds a disposal transaction may take at most */
	unsigned retention_interval;      /* seconds between runs without --once */
	char *retention_vacuum_conninfo;  /* a login that may VACUUM the archive's tables; NULL: conninfo */
	/* [secret NAME] sections, in file order */
	struct config_secret *secrets;
	size_t nsecrets;
};

/* Reads and validates FILE. Returns a config to free with config_free(), or NULL with *error_r
   (a message the caller frees) such as "mailvault.conf:12: unknown key 'wokers' in [daemon]". */
struct config *config_load(const char *path, char **error_r);
/* Frees the config; sets *cfg to NULL. */
void config_free(struct config **cfg);
/* The [secret NAME] section called name, or NULL. */
const struct config_secret *config_secret_find(const struct config *cfg, const char *name);
/* True if name may name an account or a secret: a letter or digit, then letters, digits and . _ @ + -,
   at most 128 characters. */
bool config_name_valid(const char *name);
/* A duration in seconds as a PostgreSQL interval literal ("7 days", "90 seconds"), in buf; returns buf. */
const char *config_interval_text(uint64_t seconds, char *buf, size_t size);
/* The conninfo a program should use: its own if set, else the shared one. */
const char *config_conninfo_for(const struct config *cfg, const char *program);

#endif

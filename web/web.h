/* mailvault-web: the officers' service. One process that officers cannot control does every officer
 * action: it authenticates them (password and TOTP, API token, or their Unix user on its socket),
 * applies their scope to the index and to PostgreSQL (row-level security keyed on the officer it names
 * for each transaction), and writes the audit row of every access before anything is returned. */
#ifndef MAILVAULT_WEB_H
#define MAILVAULT_WEB_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "config.h"

struct xs_db;
struct audit_writer;

#define WEB_MAX_BODY (64 * 1024)      /* a request body (login, later issues' forms) */
#define WEB_LOGIN_WINDOW 900          /* seconds over which failed logins are counted */
#define WEB_LOGIN_MAX_PER_NAME 5      /* failures per officer name in the window before refusal */
#define WEB_LOGIN_MAX_PER_CLIENT 20   /* failures per client address in the window */
#define WEB_SESSION_COOKIE "mailvault_session"

/* One worker's resources: a database connection (as mailvault_web) and the index, kept open. */
struct web_ctx {
	PGconn *db;
	struct xs_db *index;
	char **index_paths;
	struct web_ctx *next_free;
};

/* The server. */
struct web {
	struct config *cfg;
	const char *conninfo;
	bool tls;                          /* the TCP listener speaks HTTPS */
	struct sockaddr_storage *proxies;  /* [web] trusted_proxies */
	size_t nproxies;
	/* the worker pool: at most cfg->web_workers requests use the database and the index at once */
	struct web_ctx *ctxs;
	struct web_ctx *free_ctxs;
	pthread_mutex_t pool_lock;
	pthread_cond_t pool_cond;
	struct audit_writer *audit;
	char *dummy_hash;                  /* verified against when a name is unknown, so timing tells nothing */
};

/* Who the request is from, once authenticated. */
struct officer {
	char name[160];
	char role[16];                     /* auditor, legal or admin */
	char via[64];                      /* how: "unix-user root", "token 12", "password", "password+totp" */
	bool cookie;                       /* by a session cookie: POSTs need the CSRF token */
	bool all_accounts;                 /* sees every account */
	json_object *accounts;             /* else the names of the accounts they see (a JSON array) */
	unsigned char session_hash[32];    /* the session's id hash (cookie) */
	unsigned char csrf_hash[32];
};

/* One HTTP request being served. */
struct request {
	struct web *web;
	struct MHD_Connection *conn;
	const char *method, *url;
	struct buf body;
	bool body_too_large;
	bool on_socket;                    /* came in on the Unix socket */
	bool https;                        /* the client spoke HTTPS (directly or to a trusted proxy) */
	char client[INET6_ADDRSTRLEN + 16];/* the client's address ("unix:UID" on the socket) */
	struct web_ctx *ctx;               /* the worker's resources while it is served */
	struct officer who;
	bool authed;
	bool audited;                      /* this request's audit row is written (at most one) */
};

/* --- http.c: serving --- */
/* MHD's access handler and completion callback. */
enum MHD_Result web_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls);
void web_request_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe);
/* Replies with a JSON object (takes it). */
enum MHD_Result web_reply_json(struct request *r, unsigned status, json_object *obj);
/* Replies {"error": msg} with status; column > 0 adds "column". */
enum MHD_Result web_reply_error(struct request *r, unsigned status, const char *msg, long column);
/* Replies with bytes (copied) of content type; disposition NULL for none. */
enum MHD_Result web_reply_bytes(struct request *r, unsigned status, const char *type, const void *data, size_t len,
				const char *disposition);
/* The value of query parameter name, or NULL. */
const char *web_arg(struct request *r, const char *name);

/* --- pool.c: workers' resources --- */
int web_pool_init(struct web *w, char **error_r);
struct web_ctx *web_pool_take(struct web *w);
void web_pool_give(struct web *w, struct web_ctx *c);
void web_pool_free(struct web *w);
/* Makes sure c->db is connected; 0 or -1 with *error_r. */
int web_ctx_connect(struct web *w, struct web_ctx *c, const char **error_r);
/* The index, reopened at its latest commit (and reopened whole after a rebuild changed the shards). */
struct xs_db *web_ctx_index(struct web *w, struct web_ctx *c, char **error_r);
/* BEGIN and name the officer for row-level security; 0 or -1 with *error_r. */
int web_begin_as(struct request *r, const char **error_r);
/* COMMIT (or ROLLBACK when ok is false). */
int web_end(struct request *r, bool ok);

/* --- audit-writer.c: durable audit rows, many requests per commit (a leader writes each group) --- */
/* The writer connects on first use (and again when its connection is lost). */
struct audit_writer *audit_writer_start(const char *conninfo);
/* Only once no request is being served. */
void audit_writer_stop(struct audit_writer **aw);
/* Writes one row on behalf of actor and waits until it is committed; 0, or -1 when it could not be
   written (the request must then fail: nothing is returned that is not audited). Takes details. */
int audit_writer_write(struct audit_writer *aw, const char *actor, const char *via, const char *client,
		       const char *action, const char *target, json_object *details);
/* The request's audit row, as its officer (or "-" before authentication); marks it audited. */
int web_audit(struct request *r, const char *action, const char *target, json_object *details);

/* --- auth.c --- */
/* Authenticates r (socket peer, bearer token or session cookie); 0, or -1 after replying. */
int web_authenticate(struct request *r, enum MHD_Result *reply);
enum MHD_Result api_login(struct request *r);
enum MHD_Result api_logout(struct request *r);
enum MHD_Result api_me(struct request *r);
/* True if the officer's role may do what needs role (auditor: auditor or admin). */
bool web_role_allows(const struct officer *o, const char *needs);
/* Replies 403 and audits the refusal. */
enum MHD_Result web_forbidden(struct request *r, const char *why);

/* --- api-search.c, api-message.c, api-audit.c --- */
enum MHD_Result api_count(struct request *r);
enum MHD_Result api_search(struct request *r);
enum MHD_Result api_message(struct request *r, uint64_t serial);
enum MHD_Result api_message_raw(struct request *r, uint64_t serial);
enum MHD_Result api_attachment(struct request *r, uint64_t serial, uint64_t index);
enum MHD_Result api_audit_list(struct request *r);
enum MHD_Result api_audit_verify(struct request *r);
/* POST /api/v1/audit/verify {"anchors": [{"seq", "hash"[, "at"]}]}: the chain and each anchor judged. */
enum MHD_Result api_audit_verify_anchors(struct request *r);
/* GET /api/v1/audit/head: the last row's seq and hash, read before its "audit-anchor" row is written. */
enum MHD_Result api_audit_head(struct request *r);

/* Every message (up to max) the query matches in the officer's scope, in date order: their serials in
   *docids (freed by the caller). 0, or -1 after replying (a bad query, no index). Writes no audit row. */
int web_search_all(struct request *r, const char *text, uint64_t max, uint64_t **docids, size_t *n, uint64_t *total,
		   enum MHD_Result *reply);

/* --- api-retention.c: policies, matters, holds, disposal report, erasure requests --- */
/* Serves a path under /policies, /matters, /holds, /disposal or /erasures; -1 if it is none of them. */
int api_retention_route(struct request *r, const char *path, bool get, bool post, enum MHD_Result *reply);

/* The request's officer's scope as the audit rows record it: "all accounts", or the array of names (a new
   reference). */
json_object *web_scope(struct request *r);

#endif

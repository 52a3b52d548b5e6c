/* mailvault-web: who is asking. On the Unix socket the kernel says (SO_PEERCRED) and the officer is the
 * one whose --unix-user that is; elsewhere an API token (Authorization: Bearer) or a session cookie from
 * POST /api/v1/login (a password, and a TOTP code when the officer has one). Sessions live in PostgreSQL,
 * so any instance of the service serves any request; only hashes of cookies and tokens are stored. */
#include "web.h"
#include "credential.h"
#include "db.h"
#include "log.h"
#include "util.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Hex of a 32-byte hash, for a bytea parameter ('\x...'). */
static void auth_bytea(const unsigned char h[32], char out[2 + 64 + 1])
{
	out[0] = '\\';
	out[1] = 'x';
	util_hex(h, 32, out + 2);
}

/* The columns every officer lookup ends with: the officer's scope (mailvault_officer_scope, one call). */
#define AUTH_SCOPE_COLS "s.all_accounts, array_to_json(s.accounts)"
#define AUTH_SCOPE_FROM "CROSS JOIN LATERAL mailvault_officer_scope(o.name) s"

/* Copies an officer row (name, role, and the scope in columns col and col + 1) into r->who. */
static void auth_set(struct request *r, const char *name, const char *role, const char *via, PGresult *q, int col)
{
	snprintf(r->who.name, sizeof(r->who.name), "%s", name);
	snprintf(r->who.role, sizeof(r->who.role), "%s", role);
	snprintf(r->who.via, sizeof(r->who.via), "%s", via);
	r->who.all_accounts = strcmp(PQgetvalue(q, 0, col), "t") == 0;
	json_object_put(r->who.accounts);
	r->who.accounts = PQgetisnull(q, 0, col + 1) ? json_object_new_array()
						    : json_tokener_parse(PQgetvalue(q, 0, col + 1));
	if (r->who.accounts == NULL || !json_object_is_type(r->who.accounts, json_type_array)) {
		json_object_put(r->who.accounts);
		r->who.accounts = json_object_new_array(); /* unreadable: sees nothing */
		r->who.all_accounts = false;
	}
	r->authed = true;
}

/* Refusals of unauthenticated requests, counted per client address, so that nobody without credentials
   can fill the audit log (which nothing may delete): the first WEB_ANON_MAX in a window are audited one
   by one, then one row says the address is throttled, and it gets 429 until the window ends. */
#define WEB_ANON_MAX 100
#define WEB_ANON_WINDOW 600
#define WEB_ANON_SLOTS 1024
static struct anon_slot {
	char client[sizeof(((struct request *)0)->client)];
	time_t start;
	unsigned n;
} anon_slots[WEB_ANON_SLOTS];
static pthread_mutex_t anon_lock = PTHREAD_MUTEX_INITIALIZER;

/* How many refusals this address had in its current window, this one included. */
static unsigned auth_anon_count(const char *client)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)client; *p; p++)
		h = (h ^ *p) * 16777619u;
	time_t now = time(NULL);
	pthread_mutex_lock(&anon_lock);
	struct anon_slot *s = &anon_slots[h % WEB_ANON_SLOTS];
	if (strcmp(s->client, client) != 0 || now - s->start >= WEB_ANON_WINDOW) {
		snprintf(s->client, sizeof(s->client), "%s", client);
		s->start = now;
		s->n = 0;
	}
	unsigned n = ++s->n;
	pthread_mutex_unlock(&anon_lock);
	return n;
}

/* The request's path as an audit row keeps it: at most 256 bytes (the rest is the client's to waste). */
static json_object *auth_path(struct request *r)
{
	size_t n = strlen(r->url);
	return json_object_new_string_len(r->url, (int)(n > 256 ? 256 : n));
}

/* Refuses the request: audited (as nobody, with why), 401. */
static enum MHD_Result auth_refuse(struct request *r, const char *why)
{
	unsigned n = auth_anon_count(r->client);
	if (n > WEB_ANON_MAX) {
		if (n == WEB_ANON_MAX + 1) {
			json_object *d = json_object_new_object();
			json_object_object_add(d, "refused", json_object_new_int(WEB_ANON_MAX));
			json_object_object_add(d, "window_seconds", json_object_new_int(WEB_ANON_WINDOW));
			if (web_audit(r, "denied-throttled", r->client, d) < 0)
				return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
		}
		return web_reply_error(r, MHD_HTTP_TOO_MANY_REQUESTS, "too many requests without valid credentials", 0);
	}
	json_object *d = json_object_new_object();
	json_object_object_add(d, "path", auth_path(r));
	json_object_object_add(d, "reason", json_object_new_string(why));
	char target[257];
	snprintf(target, sizeof(target), "%s", r->url);
	if (web_audit(r, "denied", target, d) < 0)
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	return web_reply_error(r, MHD_HTTP_UNAUTHORIZED, why, 0);
}

/* The officer whose Unix user is on the other end of the socket. */
static int auth_peer(struct request *r, const char **why)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (ci == NULL || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		*why = "cannot tell who is on the other end of the socket";
		return -1;
	}
	snprintf(r->client, sizeof(r->client), "unix:%u", (unsigned)cred.uid);
	char pwbuf[4096];
	struct passwd pw, *res = NULL;
	if (getpwuid_r(cred.uid, &pw, pwbuf, sizeof(pwbuf), &res) != 0 || res == NULL) {
		*why = "your Unix user has no name on this host";
		return -1;
	}
	snprintf(r->client, sizeof(r->client), "unix:%s", pw.pw_name);
	const char *p[] = { pw.pw_name }, *err;
	/* every request on the socket starts with this one: prepared once per connection */
	PGresult *q = db_query_named(r->ctx->db, "auth_peer", "SELECT o.name, o.role, " AUTH_SCOPE_COLS " FROM officers o "
				     AUTH_SCOPE_FROM " WHERE o.unix_user = $1 AND o.enabled", 1, p, &err);
	if (q == NULL) {
		*why = "cannot read officers";
		return -1;
	}
	if (PQntuples(q) != 1) {
		PQclear(q);
		*why = "your Unix user is not an enabled officer's (ask the administrator: mailvault officer add NAME "
		       "--unix-user USER)";
		return -1;
	}
	char via[64];
	snprintf(via, sizeof(via), "unix-user %s", pw.pw_name);
	auth_set(r, PQgetvalue(q, 0, 0), PQgetvalue(q, 0, 1), via, q, 2);
	PQclear(q);
	return 0;
}

/* An API token: well formed, known by its hash, not revoked or expired, its officer enabled. */
static int auth_token(struct request *r, const char *token, const char **why)
{
	if (!credential_token_well_formed(token)) {
		*why = "malformed API token";
		return -1;
	}
	unsigned char h[32];
	char hex[67];
	credential_token_hash(token, h);
	auth_bytea(h, hex);
	const char *p[] = { hex }, *err;
	PGresult *q = db_query(r->ctx->db,
		"SELECT t.id, o.name, o.role, t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute', "
		AUTH_SCOPE_COLS " FROM api_tokens t JOIN officers o ON o.name = t.officer " AUTH_SCOPE_FROM
		" WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now()) "
		"AND o.enabled", 1, p, &err);
	if (q == NULL) {
		*why = "cannot read tokens";
		return -1;
	}
	if (PQntuples(q) != 1) {
		PQclear(q);
		*why = "unknown, expired or revoked API token";
		return -1;
	}
	char via[64];
	snprintf(via, sizeof(via), "token %s", PQgetvalue(q, 0, 0));
	auth_set(r, PQgetvalue(q, 0, 1), PQgetvalue(q, 0, 2), via, q, 4);
	/* when it was last used, to the minute: not a write per request */
	if (strcmp(PQgetvalue(q, 0, 3), "t") == 0) {
		const char *id[] = { PQgetvalue(q, 0, 0) };
		db_exec(r->ctx->db, "UPDATE api_tokens SET last_used_at = now() WHERE id = $1", 1, id, &err);
	}
	PQclear(q);
	return 0;
}

/* A session cookie: known, not ended, not idle too long, not past its end, its officer enabled. */
static int auth_cookie(struct request *r, const char *sid, const char **why)
{
	unsigned char h[32];
	char hex[67], idle[24];
	credential_token_hash(sid, h);
	auth_bytea(h, hex);
	snprintf(idle, sizeof(idle), "%u", r->web->cfg->web_session_idle);
	const char *p[] = { hex, idle }, *err;
	PGresult *q = db_query(r->ctx->db,
		"SELECT o.name, o.role, w.via, encode(w.csrf_hash, 'hex'), w.last_seen_at < now() - interval '30 seconds', "
		AUTH_SCOPE_COLS " FROM web_sessions w JOIN officers o ON o.name = w.officer " AUTH_SCOPE_FROM
		" WHERE w.id_hash = $1 AND w.ended_at IS NULL AND w.expires_at > now() "
		"AND w.last_seen_at > now() - make_interval(secs => $2::int) AND o.enabled", 2, p, &err);
	if (q == NULL) {
		*why = "cannot read sessions";
		return -1;
	}
	if (PQntuples(q) != 1) {
		PQclear(q);
		*why = "no session, or it ended or expired: log in again";
		return -1;
	}
	char via[64];
	snprintf(via, sizeof(via), "session (%s)", PQgetvalue(q, 0, 2));
	auth_set(r, PQgetvalue(q, 0, 0), PQgetvalue(q, 0, 1), via, q, 5);
	r->who.cookie = true;
	memcpy(r->who.session_hash, h, 32);
	if (util_unhex(PQgetvalue(q, 0, 3), r->who.csrf_hash, sizeof(r->who.csrf_hash)) != 32)
		memset(r->who.csrf_hash, 0, sizeof(r->who.csrf_hash)); /* matches no token's hash */
	if (strcmp(PQgetvalue(q, 0, 4), "t") == 0)
		db_exec(r->ctx->db, "UPDATE web_sessions SET last_seen_at = now() WHERE id_hash = $1", 1, p, &err);
	PQclear(q);
	return 0;
}

/* The session cookie's value from the Cookie header, or NULL. */
static const char *auth_cookie_value(struct request *r)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, WEB_SESSION_COOKIE);
}

static int auth_identify(struct request *r, const char *authz, const char *sid, const char **why_r);

int web_authenticate(struct request *r, enum MHD_Result *reply)
{
	const char *err, *why = NULL;
	if (web_ctx_connect(r->web, r->ctx, &err) < 0) {
		log_error("database: %s", err);
		*reply = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
		return -1;
	}
	const char *authz = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
	const char *sid = auth_cookie_value(r);
	int rc = -1;
	for (int attempt = 0; attempt < 2; attempt++) {
		rc = auth_identify(r, authz, sid, &why);
		/* a connection PostgreSQL dropped (a restart) is noticed only when used: connect again, once */
		if (rc == 0 || !db_conn_lost(r->ctx->db) || web_ctx_connect(r->web, r->ctx, &err) < 0)
			break;
	}
	if (rc < 0) {
		r->authed = false;
		*reply = auth_refuse(r, why);
		return -1;
	}
	return 0;
}

/* Who the request is from, by the first credential it carries; 0 or -1 with *why. */
static int auth_identify(struct request *r, const char *authz, const char *sid, const char **why_r)
{
	const char *why = NULL;
	int rc;
	if (authz != NULL) {
		rc = strncmp(authz, "Bearer ", 7) == 0 ? auth_token(r, authz + 7, &why)
						       : (why = "only Authorization: Bearer TOKEN is accepted", -1);
	} else if (r->on_socket) {
		rc = auth_peer(r, &why);
	} else if (sid != NULL) {
		rc = auth_cookie(r, sid, &why);
		/* a browser's POST must carry the CSRF token the login returned */
		if (rc == 0 && strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
			const char *csrf = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-CSRF-Token");
			unsigned char h[32];
			if (csrf != NULL)
				credential_token_hash(csrf, h);
			if (csrf == NULL || CRYPTO_memcmp(h, r->who.csrf_hash, 32) != 0) {
				r->authed = false;
				why = "missing or wrong X-CSRF-Token header";
				rc = -1;
			}
		}
	} else {
		why = "authentication required: log in, or send Authorization: Bearer TOKEN";
		rc = -1;
	}
	*why_r = why;
	return rc;
}

bool web_role_allows(const struct officer *o, const char *needs)
{
	if (strcmp(o->role, "admin") == 0)
		return true;
	return strcmp(o->role, needs) == 0;
}

enum MHD_Result web_forbidden(struct request *r, const char *why)
{
	json_object *d = json_object_new_object();
	json_object_object_add(d, "path", auth_path(r));
	json_object_object_add(d, "reason", json_object_new_string(why));
	json_object_object_add(d, "role", json_object_new_string(r->who.role));
	char target[257];
	snprintf(target, sizeof(target), "%s", r->url);
	if (web_audit(r, "denied", target, d) < 0)
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	return web_reply_error(r, MHD_HTTP_FORBIDDEN, why, 0);
}

/* Audits a login event as the name that was typed (the actor "-": nobody is authenticated yet). */
static int auth_audit_login(struct request *r, const char *action, const char *name, const char *reason)
{
	json_object *d = json_object_new_object();
	if (reason != NULL)
		json_object_object_add(d, "reason", json_object_new_string(reason));
	return web_audit(r, action, name, d);
}

/* Audits a failed login (its attempt stays counted in login_failures) and replies 401 with one message for
   every cause. */
static enum MHD_Result auth_login_failed(struct request *r, const char *name, const char *reason)
{
	if (auth_audit_login(r, "login-failed", name, reason) < 0)
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	return web_reply_error(r, MHD_HTTP_UNAUTHORIZED, "wrong name, password or code", 0);
}

/* A string member of a JSON object, or NULL. */
static const char *auth_json_str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* A Set-Cookie value for the session (empty id and Max-Age=0 to clear it). */
static char *auth_cookie_header(struct request *r, const char *sid, unsigned max_age)
{
	return xasprintf(WEB_SESSION_COOKIE "=%s; Path=/; Max-Age=%u; HttpOnly; SameSite=Strict%s", sid, max_age,
			 r->https ? "; Secure" : "");
}

/* Replies with a JSON object and a Set-Cookie header. */
static enum MHD_Result auth_reply_cookie(struct request *r, json_object *o, const char *cookie)
{
	size_t len;
	const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);
	json_object_put(o);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
	MHD_add_response_header(resp, "Set-Cookie", cookie);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result api_login(struct request *r)
{
	const char *err;
	if (web_ctx_connect(r->web, r->ctx, &err) < 0)
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
	json_object *in = r->body.len ? json_tokener_parse((const char *)r->body.data) : NULL;
	const char *name = in ? auth_json_str(in, "name") : NULL, *password = in ? auth_json_str(in, "password") : NULL;
	const char *totp = in ? auth_json_str(in, "totp") : NULL;
	if (name == NULL || password == NULL || strlen(name) > 128) {
		json_object_put(in);
		return web_reply_error(r, MHD_HTTP_BAD_REQUEST, "send {\"name\": ..., \"password\": ...[, \"totp\": ...]}", 0);
	}
	char *who = util_utf8_sanitize(name, strlen(name));
	enum MHD_Result ret;
	char window[16], per_name[16], per_client[16];
	snprintf(window, sizeof(window), "%d", WEB_LOGIN_WINDOW);
	const char *tp[] = { who, r->client, window };
	/* failures older than the window count for nothing: they go, so the table stays small */
	const char *wp[] = { window };
	db_exec(r->ctx->db, "DELETE FROM login_failures WHERE at < now() - make_interval(secs => $1::int)", 1, wp, &err);
	/* the attempt counts as a failure from the start (removed if it succeeds), so attempts made at the same
	   time, on any instance, see each other: no more than the limit are ever checked */
	PGresult *ins = db_query(r->ctx->db, "INSERT INTO login_failures (name, client) VALUES ($1, $2) RETURNING id", 2,
				 tp, &err);
	if (ins == NULL) {
		ret = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
		goto out;
	}
	char attempt[24];
	snprintf(attempt, sizeof(attempt), "%s", PQgetvalue(ins, 0, 0));
	PQclear(ins);
	PGresult *q = db_query(r->ctx->db,
		"SELECT (SELECT count(*) FROM login_failures WHERE name = $1 AND at > now() - make_interval(secs => $3::int)), "
		"(SELECT count(*) FROM login_failures WHERE client = $2 AND at > now() - make_interval(secs => $3::int))",
		3, tp, &err);
	if (q == NULL) {
		ret = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
		goto out;
	}
	snprintf(per_name, sizeof(per_name), "%s", PQgetvalue(q, 0, 0));
	snprintf(per_client, sizeof(per_client), "%s", PQgetvalue(q, 0, 1));
	PQclear(q);
	/* this attempt included: the (limit + 1)th is refused */
	if (atoi(per_name) > WEB_LOGIN_MAX_PER_NAME || atoi(per_client) > WEB_LOGIN_MAX_PER_CLIENT) {
		const char *ap[] = { attempt };
		db_exec(r->ctx->db, "DELETE FROM login_failures WHERE id = $1", 1, ap, &err);
		/* throttled: not even checked, so guessing cannot go on at any speed */
		if (auth_audit_login(r, "login-throttled", who, atoi(per_name) > WEB_LOGIN_MAX_PER_NAME ? "name" : "address") < 0) {
			ret = web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
			goto out;
		}
		struct MHD_Response *resp = NULL;
		json_object *o = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string("too many failed logins: try again later"));
		const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
		json_object_put(o);
		char retry[16];
		snprintf(retry, sizeof(retry), "%d", WEB_LOGIN_WINDOW);
		MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
		MHD_add_response_header(resp, "Retry-After", retry);
		ret = MHD_queue_response(r->conn, MHD_HTTP_TOO_MANY_REQUESTS, resp);
		MHD_destroy_response(resp);
		goto out;
	}
	const char *np[] = { who };
	q = db_query(r->ctx->db, "SELECT o.role, o.password_hash, encode(o.totp_secret, 'hex'), "
		     "coalesce(o.totp_last_step, -1), " AUTH_SCOPE_COLS " FROM officers o " AUTH_SCOPE_FROM
		     " WHERE o.name = $1 AND o.enabled", 1, np, &err);
	if (q == NULL) {
		ret = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
		goto out;
	}
	bool known = PQntuples(q) == 1 && !PQgetisnull(q, 0, 1);
	/* an unknown name costs the same Argon2id work as a known one: timing does not tell names apart */
	bool pw_ok = credential_password_verify(known ? PQgetvalue(q, 0, 1) : r->web->dummy_hash, password) && known;
	if (!pw_ok) {
		PQclear(q);
		ret = auth_login_failed(r, who, known ? "wrong password" : "no such enabled officer, or no password");
		goto out;
	}
	char role[16];
	snprintf(role, sizeof(role), "%s", PQgetvalue(q, 0, 0));
	const char *via = "password";
	auth_set(r, who, role, via, q, 4);
	r->authed = false; /* not before the second factor */
	if (!PQgetisnull(q, 0, 2)) {
		unsigned char key[64];
		ssize_t keylen = util_unhex(PQgetvalue(q, 0, 2), key, sizeof(key));
		int64_t last = strtoll(PQgetvalue(q, 0, 3), NULL, 10);
		/* a key that does not read fails closed */
		bool ok = totp != NULL && keylen > 0 && credential_totp_check(key, (size_t)keylen, totp, time(NULL), &last);
		memset(key, 0, sizeof(key));
		if (ok) {
			/* the step is used once, across every instance: only one login can move it forward */
			char step[24];
			snprintf(step, sizeof(step), "%lld", (long long)last);
			const char *sp[] = { who, step };
			PGresult *u = db_query(r->ctx->db, "UPDATE officers SET totp_last_step = $2::bigint WHERE name = $1 "
					       "AND coalesce(totp_last_step, -1) < $2::bigint RETURNING 1", 2, sp, &err);
			ok = u != NULL && PQntuples(u) == 1;
			PQclear(u);
		}
		if (!ok) {
			PQclear(q);
			ret = auth_login_failed(r, who, totp == NULL ? "no TOTP code" : "wrong or reused TOTP code");
			goto out;
		}
		via = "password+totp";
		snprintf(r->who.via, sizeof(r->who.via), "%s", via);
	}
	PQclear(q);
	char *sid = credential_random_id(), *csrf = credential_random_id();
	unsigned char sh[32], ch[32];
	char shex[67], chex[67], max[16];
	credential_token_hash(sid, sh);
	credential_token_hash(csrf, ch);
	auth_bytea(sh, shex);
	auth_bytea(ch, chex);
	snprintf(max, sizeof(max), "%u", r->web->cfg->web_session_max);
	const char *ip[] = { shex, who, chex, via, r->client, max };
	if (db_exec(r->ctx->db, "INSERT INTO web_sessions (id_hash, officer, csrf_hash, via, client, expires_at) "
		    "VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6::int))", 6, ip, &err) < 0) {
		ret = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot start a session", 0);
		goto done;
	}
	db_exec(r->ctx->db, "DELETE FROM login_failures WHERE name = $1", 1, np, &err);
	r->authed = true;
	if (web_audit(r, "login", who, NULL) < 0) {
		ret = web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
		goto done;
	}
	json_object *o = json_object_new_object();
	json_object_object_add(o, "officer", json_object_new_string(who));
	json_object_object_add(o, "role", json_object_new_string(role));
	json_object_object_add(o, "csrf", json_object_new_string(csrf));
	json_object_object_add(o, "expires_in", json_object_new_int64(r->web->cfg->web_session_max));
	char *cookie = auth_cookie_header(r, sid, r->web->cfg->web_session_max);
	ret = auth_reply_cookie(r, o, cookie);
	free(cookie);
done:
	free(sid);
	free(csrf);
out:
	free(who);
	json_object_put(in);
	return ret;
}

enum MHD_Result api_logout(struct request *r)
{
	const char *err;
	if (r->who.cookie) {
		char hex[67];
		auth_bytea(r->who.session_hash, hex);
		const char *p[] = { hex };
		db_exec(r->ctx->db, "UPDATE web_sessions SET ended_at = now() WHERE id_hash = $1", 1, p, &err);
	}
	if (web_audit(r, "logout", r->who.name, NULL) < 0)
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "ok", json_object_new_boolean(1));
	char *cookie = auth_cookie_header(r, "", 0);
	enum MHD_Result ret = auth_reply_cookie(r, o, cookie);
	free(cookie);
	return ret;
}

enum MHD_Result api_me(struct request *r)
{
	json_object *scope = web_scope(r);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "officer", json_object_new_string(r->who.name));
	json_object_object_add(o, "role", json_object_new_string(r->who.role));
	json_object_object_add(o, "via", json_object_new_string(r->who.via));
	json_object_object_add(o, "client", json_object_new_string(r->client));
	json_object_object_add(o, "accounts", scope);
	return web_reply_json(r, MHD_HTTP_OK, o);
}

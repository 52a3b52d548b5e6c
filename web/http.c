/* mailvault-web: requests in, replies out. Routes /api/v1/, finds the client's address, and gives every
 * reply the headers that keep a browser from sniffing, framing or caching what an officer read. */
#include "web.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

/* Headers on every reply: nothing is cached, sniffed, framed or sent on as a referrer. */
static void web_common_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
}

/* Queues resp with status and frees it. */
static enum MHD_Result web_queue(struct request *r, unsigned status, struct MHD_Response *resp)
{
	if (resp == NULL)
		return MHD_NO;
	web_common_headers(resp);
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

enum MHD_Result web_reply_json(struct request *r, unsigned status, json_object *obj)
{
	size_t len;
	const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
							     &len);
	struct buf b = { 0 };
	buf_append(&b, text, len);
	buf_append(&b, "\n", 1);
	json_object_put(obj);
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(b.len, b.data, free);
	if (resp == NULL) {
		buf_free(&b);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
	return web_queue(r, status, resp);
}

enum MHD_Result web_reply_error(struct request *r, unsigned status, const char *msg, long column)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "error", json_object_new_string(msg));
	if (column > 0)
		json_object_object_add(o, "column", json_object_new_int64(column));
	return web_reply_json(r, status, o);
}

enum MHD_Result web_reply_bytes(struct request *r, unsigned status, const char *type, const void *data, size_t len,
				const char *disposition)
{
	void *copy = xmalloc(len ? len : 1);
	memcpy(copy, data, len);
	struct MHD_Response *resp = MHD_create_response_from_buffer_with_free_callback(len, copy, free);
	if (resp == NULL) {
		free(copy);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	if (disposition != NULL)
		MHD_add_response_header(resp, "Content-Disposition", disposition);
	return web_queue(r, status, resp);
}

const char *web_arg(struct request *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* True if the address is one of [web] trusted_proxies. */
static bool web_trusted(const struct web *w, const struct sockaddr *sa)
{
	for (size_t i = 0; i < w->nproxies; i++) {
		const struct sockaddr *p = (const struct sockaddr *)&w->proxies[i];
		if (p->sa_family != sa->sa_family)
			continue;
		if (sa->sa_family == AF_INET &&
		    ((const struct sockaddr_in *)p)->sin_addr.s_addr == ((const struct sockaddr_in *)sa)->sin_addr.s_addr)
			return true;
		if (sa->sa_family == AF_INET6 && memcmp(&((const struct sockaddr_in6 *)p)->sin6_addr,
							&((const struct sockaddr_in6 *)sa)->sin6_addr, 16) == 0)
			return true;
	}
	return false;
}

/* The client's address: the peer's, or behind a trusted proxy the last address X-Forwarded-For names
   that is not itself a trusted proxy (the ones before it are the client's own claims). */
static void web_client_address(struct request *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;
	snprintf(r->client, sizeof(r->client), "unknown");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->client, sizeof(r->client));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->client, sizeof(r->client));
	else
		return;
	if (!web_trusted(r->web, sa))
		return;
	const char *proto = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-Proto");
	if (proto != NULL && strcmp(proto, "https") == 0)
		r->https = true;
	const char *xff = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Forwarded-For");
	if (xff == NULL)
		return;
	/* from the right: skip the trusted proxies, take the first address that is not one */
	char *copy = xstrdup(xff);
	for (;;) {
		char *comma = strrchr(copy, ',');
		char *item = comma ? comma + 1 : copy;
		while (*item == ' ' || *item == '\t')
			item++;
		size_t n = strlen(item);
		while (n > 0 && (item[n - 1] == ' ' || item[n - 1] == '\t'))
			item[--n] = '\0';
		struct sockaddr_storage ss = { 0 };
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, item, &s4->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, item, &s6->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else
			break; /* not an address: keep the proxy's own */
		if (!web_trusted(r->web, (struct sockaddr *)&ss) || comma == NULL) {
			snprintf(r->client, sizeof(r->client), "%s", item);
			break;
		}
		*comma = '\0';
	}
	free(copy);
}

/* Parses "/api/v1/messages/N[/raw|/attachments/K]"; returns the route's kind or 0. */
static int web_message_route(const char *rest, uint64_t *serial, uint64_t *index)
{
	char num[24];
	size_t n = strspn(rest, "0123456789");
	if (n == 0 || n >= sizeof(num))
		return 0;
	memcpy(num, rest, n);
	num[n] = '\0';
	if (util_parse_uint(num, 1, INT64_MAX, serial) < 0)
		return 0;
	rest += n;
	if (*rest == '\0')
		return 1;
	if (strcmp(rest, "/raw") == 0)
		return 2;
	if (strncmp(rest, "/attachments/", 13) == 0) {
		rest += 13;
		n = strspn(rest, "0123456789");
		if (n == 0 || n >= sizeof(num) || rest[n] != '\0')
			return 0;
		memcpy(num, rest, n);
		num[n] = '\0';
		return util_parse_uint(num, 1, 1000000, index) == 0 ? 3 : 0;
	}
	return 0;
}

/* Serves one whole request: route, authenticate, act. */
static enum MHD_Result web_route(struct request *r)
{
	const char *url = r->url;
	bool get = strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0;
	bool post = strcmp(r->method, "POST") == 0;
	if (strncmp(url, "/api/v1/", 8) != 0)
		return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such page: the API is under /api/v1/", 0);
	const char *path = url + 7;
	if (r->body_too_large)
		return web_reply_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large", 0);
	if (strcmp(path, "/login") == 0)
		return post ? api_login(r) : web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST", 0);
	enum MHD_Result reply;
	if (web_authenticate(r, &reply) < 0)
		return reply;
	if (strcmp(path, "/logout") == 0)
		return post ? api_logout(r) : web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use POST", 0);
	if (api_retention_route(r, path, get, post, &reply) == 0)
		return reply;
	if (post && strcmp(path, "/audit/verify") == 0)
		return api_audit_verify_anchors(r);
	if (!get)
		return web_reply_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET", 0);
	if (strcmp(path, "/me") == 0)
		return api_me(r);
	if (strcmp(path, "/count") == 0)
		return api_count(r);
	if (strcmp(path, "/search") == 0)
		return api_search(r);
	if (strcmp(path, "/audit") == 0)
		return api_audit_list(r);
	if (strcmp(path, "/audit/verify") == 0)
		return api_audit_verify(r);
	if (strcmp(path, "/audit/head") == 0)
		return api_audit_head(r);
	if (strncmp(path, "/messages/", 10) == 0) {
		uint64_t serial = 0, index = 0;
		switch (web_message_route(path + 10, &serial, &index)) {
		case 1: return api_message(r, serial);
		case 2: return api_message_raw(r, serial);
		case 3: return api_attachment(r, serial, index);
		default: break;
		}
	}
	return web_reply_error(r, MHD_HTTP_NOT_FOUND, "no such API path", 0);
}

enum MHD_Result web_handle(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	(void)version;
	struct request *r = *con_cls;
	if (r == NULL) {
		r = xcalloc(1, sizeof(*r));
		r->web = cls;
		r->conn = conn;
		r->method = method;
		r->url = url;
		const union MHD_ConnectionInfo *di = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
		const union MHD_DaemonInfo *fi = di ? MHD_get_daemon_info(di->daemon, MHD_DAEMON_INFO_FLAGS) : NULL;
		r->https = fi != NULL && (fi->flags & MHD_USE_TLS);
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		r->on_socket = ci != NULL && ci->client_addr != NULL && ci->client_addr->sa_family == AF_UNIX;
		if (!r->on_socket)
			web_client_address(r);
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (r->body.len + *upload_data_size > WEB_MAX_BODY)
			r->body_too_large = true;
		else
			buf_append(&r->body, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	r->ctx = web_pool_take(r->web);
	enum MHD_Result ret = web_route(r);
	web_pool_give(r->web, r->ctx);
	r->ctx = NULL;
	return ret;
}

void web_request_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct request *r = *con_cls;
	if (r == NULL)
		return;
	buf_free(&r->body);
	json_object_put(r->who.accounts);
	free(r);
	*con_cls = NULL;
}

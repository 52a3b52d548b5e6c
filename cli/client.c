/* The mailvault command as a client of mailvault-web (see client.h). A small HTTP/1.1 client: one request
 * per connection (Connection: close), a Content-Length body read to the end; and what every officer's
 * command does with an answer (errors, JSON members, audit verify's options), shared by the front end and
 * by mailvault-cli's anchor commands. */
#include "client.h"
#include "config.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_MS (10 * 60 * 1000)  /* a verify of a long audit log can take minutes */
#define CLIENT_MAX_HEADER (64 * 1024)

char *client_socket_path(const char *cfg_path, bool cfg_given)
{
	const char *env = getenv("MAILVAULT_SOCKET");
	if (env != NULL && *env != '\0')
		return xstrdup(env);
	if (cfg_given || access(cfg_path, R_OK) == 0) {
		char *err = NULL;
		struct config *cfg = config_load(cfg_path, &err);
		if (cfg == NULL) {
			fprintf(stderr, "mailvault: %s\n", err);
			free(err);
			return NULL;
		}
		char *path = xstrdup(cfg->web_socket ? cfg->web_socket : CONFIG_DEFAULT_WEB_SOCKET);
		config_free(&cfg);
		return path;
	}
	return xstrdup(CONFIG_DEFAULT_WEB_SOCKET);
}

void client_url_encode(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p))
			buf_append(b, p, 1);
		else
			buf_printf(b, "%%%02X", *p);
	}
}

/* Writes everything. */
static int client_send_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until the peer closes, waiting at most the timeout for each piece. */
static int client_read_all(int fd, struct buf *b)
{
	char chunk[65536];
	for (;;) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int pr = poll(&pf, 1, CLIENT_TIMEOUT_MS);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0)
			return -1;
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		buf_append(b, chunk, (size_t)n);
	}
}

int client_get(const char *socket_path, const char *path, struct buf *body)
{
	return client_request(socket_path, "GET", path, NULL, body);
}

int client_request(const char *socket_path, const char *method, const char *path, const char *json_body,
		   struct buf *body)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(socket_path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "mailvault: socket path too long: %s\n", socket_path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "mailvault: cannot reach mailvault-web at %s: %s (is it running? MAILVAULT_SOCKET or "
			"[web] socket name another place)\n", socket_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	struct buf req = { 0 }, resp = { 0 };
	buf_printf(&req, "%s %s HTTP/1.1\r\nHost: localhost\r\nUser-Agent: mailvault/%s\r\nAccept: */*\r\n"
			 "Connection: close\r\n", method, path, MAILVAULT_VERSION);
	if (json_body != NULL)
		buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", strlen(json_body),
			   json_body);
	else
		buf_append_str(&req, "\r\n");
	int rc = -1;
	if (client_send_all(fd, req.data, req.len) < 0 || client_read_all(fd, &resp) < 0) {
		fprintf(stderr, "mailvault: mailvault-web at %s did not answer: %s\n", socket_path,
			errno ? strerror(errno) : "timed out");
		goto out;
	}
	/* status line, headers, body */
	const char *text = (const char *)resp.data;
	const char *end = resp.len ? memmem(text, resp.len < CLIENT_MAX_HEADER ? resp.len : CLIENT_MAX_HEADER,
					    "\r\n\r\n", 4) : NULL;
	int status = 0;
	if (end == NULL || sscanf(text, "HTTP/1.%*d %d", &status) != 1 || status < 100 || status > 599) {
		fprintf(stderr, "mailvault: mailvault-web at %s sent a malformed answer\n", socket_path);
		goto out;
	}
	size_t hdr_len = (size_t)(end - text) + 4;
	/* a Content-Length shorter than what came is believed; a longer one means the answer was cut */
	size_t blen = resp.len - hdr_len;
	for (const char *h = strstr(text, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
		if (strncasecmp(h + 2, "Content-Length:", 15) == 0) {
			unsigned long long cl = strtoull(h + 17, NULL, 10);
			if (cl > blen) {
				fprintf(stderr, "mailvault: the answer from mailvault-web was cut short\n");
				goto out;
			}
			blen = (size_t)cl;
		}
	}
	buf_append(body, resp.data + hdr_len, blen);
	rc = status;
out:
	close(fd);
	buf_free(&req);
	buf_free(&resp);
	return rc;
}

const char *client_error_text(json_object *parsed, const struct buf *body)
{
	json_object *e;
	if (parsed != NULL && json_object_object_get_ex(parsed, "error", &e) && json_object_is_type(e, json_type_string))
		return json_object_get_string(e);
	return body->len ? (const char *)body->data : "mailvault-web gave no reason";
}

/* Prints "mailvault: [what: ]MESSAGE" and returns rc. */
int client_fail(int rc, const char *what, const char *msg)
{
	fprintf(stderr, "mailvault: %s%s%s\n", what ? what : "", what ? ": " : "", msg);
	return rc;
}

/* GETs path and parses a JSON answer. Returns the HTTP status (*out set for JSON bodies) or -1. */
int client_json(const char *sock, const char *path, json_object **out, struct buf *body)
{
	int status = client_get(sock, path, body);
	*out = status > 0 && body->len ? json_tokener_parse((const char *)body->data) : NULL;
	return status;
}

/* A member's string, or NULL. */
const char *client_member(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return NULL;
	return json_object_get_string(v);
}

/* Maps a refusal to the exit status and message the command always gave. */
int client_refused(int status, json_object *j, const struct buf *body, const char *what)
{
	const char *msg = client_error_text(j, body);
	if (status == 400)
		return client_fail(2, what, msg);
	if (status == 404)
		return client_fail(1, NULL, msg);
	return client_fail(1, what, msg);
}

int client_verify_options(int argc, char **argv, const char **anchor, const char **tsa_ca)
{
	static const char usage[] = "usage: mailvault audit verify [--anchor FILE [--tsa-ca FILE]] [--json]";
	static const struct option opts[] = {
		{ "anchor", required_argument, NULL, 'a' }, { "tsa-ca", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': *anchor = optarg; break;
		case 'c': *tsa_ca = optarg; break;
		case 'j': break;
		default: return client_fail(-1, NULL, usage);
		}
	}
	if (optind != argc || (*tsa_ca != NULL && *anchor == NULL))
		return client_fail(-1, NULL, usage);
	return 0;
}

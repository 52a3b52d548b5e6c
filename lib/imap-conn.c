/* IMAP client connection over OpenSSL: TLS with verification, STARTTLS, SASL login, pipelined commands. */
#include "imap-conn.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct imap_tag_done {
	unsigned tag;
	enum imap_conn_status status;
	char *text;
};

struct imap_conn {
	int fd;
	SSL_CTX *ssl_ctx;
	SSL *ssl;                 /* NULL before STARTTLS */
	struct imap_parser *parser;
	const char *host;
	unsigned timeout_secs;
	unsigned next_tag;
	char **caps;              /* upper-case capability names */
	size_t ncaps;
	unsigned caps_generation; /* bumped whenever the server tells us its capabilities */
	bool broken;
	char *bye;                /* the server's BYE text, reported when it then closes */
	unsigned backoff_ms;
	char *text;               /* last completion text or error */
	struct imap_tag_done done[IMAP_CONN_MAX_INFLIGHT]; /* completions that arrived out of order */
	size_t ndone;
	struct imap_response malformed;  /* handed to callers for an untagged response that was skipped */
	char *malformed_text;
	unsigned malformed_run;   /* skipped responses in a row: many mean the stream is out of step */
};

/* Skipped responses in a row after which the connection is given up. */
#define IMAP_CONN_MAX_MALFORMED_RUN 64
/* A server's Suggested Backoff Time is honoured up to an hour. */
#define IMAP_CONN_MAX_BACKOFF_MS (3600u * 1000)

/* Records the connection's current message text. */
static void conn_set_text(struct imap_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_set_text(struct imap_conn *c, const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = xstrdup("out of memory");
	va_end(ap);
	free(c->text);
	c->text = s;
}

/* Marks the connection unusable and records why. */
static enum imap_conn_status conn_fail(struct imap_conn *c, const char *why)
{
	c->broken = true;
	conn_set_text(c, "%s", why);
	return IMAP_CONN_ERROR;
}

/* Opens a TCP connection to host:port, trying each address, with a connect timeout. */
static int conn_tcp_connect(const char *host, unsigned port, unsigned timeout_secs, char **error_r)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res, *ai;
	char portstr[16];
	snprintf(portstr, sizeof(portstr), "%u", port);
	int gai = getaddrinfo(host, portstr, &hints, &res);
	if (gai != 0) {
		*error_r = xasprintf("cannot resolve %s: %s", host, gai_strerror(gai));
		return -1;
	}
	int fd = -1, last_errno = 0;
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0) {
			last_errno = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (errno == EINPROGRESS) {
			struct pollfd pfd = { .fd = fd, .events = POLLOUT };
			int err = 0;
			socklen_t len = sizeof(err);
			int pr = poll(&pfd, 1, (int)timeout_secs * 1000);
			if (pr == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
				break;
			last_errno = pr == 0 ? ETIMEDOUT : (err ? err : errno);
		} else {
			last_errno = errno;
		}
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		*error_r = xasprintf("cannot connect to %s port %u: %s", host, port, strerror(last_errno));
		return -1;
	}
	/* back to blocking with timeouts: simple reads that still never hang forever */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	struct timeval tv = { .tv_sec = timeout_secs };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Describes the latest OpenSSL failure. */
static const char *conn_ssl_error(void)
{
	static __thread char buf[256];
	unsigned long e = ERR_get_error();
	if (e == 0)
		return errno ? strerror(errno) : "connection closed during TLS handshake";
	ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	return buf;
}

/* Performs the TLS handshake with chain and host-name verification. */
static int conn_start_tls(struct imap_conn *c, const struct imap_conn_settings *s, char **error_r)
{
	c->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (c->ssl_ctx == NULL) {
		*error_r = xasprintf("TLS setup failed: %s", conn_ssl_error());
		return -1;
	}
	SSL_CTX_set_min_proto_version(c->ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(c->ssl_ctx, SSL_VERIFY_PEER, NULL);
	if (s->ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(c->ssl_ctx, s->ca_file, NULL) != 1) {
			*error_r = xasprintf("cannot load CA file %s: %s", s->ca_file, conn_ssl_error());
			return -1;
		}
	} else if (SSL_CTX_set_default_verify_paths(c->ssl_ctx) != 1) {
		*error_r = xasprintf("cannot load the system trust store: %s", conn_ssl_error());
		return -1;
	}
	c->ssl = SSL_new(c->ssl_ctx);
	if (c->ssl == NULL) {
		*error_r = xasprintf("TLS setup failed: %s", conn_ssl_error());
		return -1;
	}
	unsigned char addr[16];
	bool is_ip = inet_pton(AF_INET, s->host, addr) == 1 || inet_pton(AF_INET6, s->host, addr) == 1;
	/* a name or address that cannot be set for verification would mean no verification: refuse */
	if (is_ip) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), s->host) != 1) {
			*error_r = xasprintf("cannot set %s as the address to verify the certificate against", s->host);
			return -1;
		}
	} else {
		SSL_set_hostflags(c->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set_tlsext_host_name(c->ssl, s->host) != 1 || SSL_set1_host(c->ssl, s->host) != 1) {
			*error_r = xasprintf("cannot set %s as the host name to verify the certificate against", s->host);
			return -1;
		}
	}
	if (SSL_set_fd(c->ssl, c->fd) != 1) {
		*error_r = xasprintf("TLS setup failed: %s", conn_ssl_error());
		return -1;
	}
	ERR_clear_error();
	if (SSL_connect(c->ssl) != 1) {
		long v = SSL_get_verify_result(c->ssl);
		if (v != X509_V_OK)
			*error_r = xasprintf("TLS certificate verification failed for %s: %s", s->host,
					     X509_verify_cert_error_string(v));
		else
			*error_r = xasprintf("TLS handshake with %s failed: %s", s->host, conn_ssl_error());
		return -1;
	}
	return 0;
}

/* Writes all bytes, through TLS when it is up. */
static int conn_write(struct imap_conn *c, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n;
		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
			n = r > 0 ? r : -1;
		} else {
			n = send(c->fd, p, len, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR)
				continue;
		}
		if (n <= 0) {
			conn_fail(c, errno == EAGAIN ? "timed out writing to the server" : "connection lost while writing");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads what the server has sent into the parser; -1 on EOF, timeout or error. */
static int conn_fill(struct imap_conn *c)
{
	unsigned char tmp[65536];
	ssize_t n;
	for (;;) {
		errno = 0;
		if (c->ssl) {
			ERR_clear_error();
			int r = SSL_read(c->ssl, tmp, sizeof(tmp));
			n = r > 0 ? r : -1;
			if (r <= 0 && SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN)
				n = 0;
		} else {
			n = recv(c->fd, tmp, sizeof(tmp), 0);
			if (n < 0 && errno == EINTR)
				continue;
		}
		break;
	}
	if (n > 0) {
		imap_parser_push(c->parser, tmp, (size_t)n);
		return 0;
	}
	conn_fail(c, c->bye ? c->bye
		  : n == 0 ? "the server closed the connection"
		  : (errno == EAGAIN || errno == EWOULDBLOCK) ? "timed out waiting for the server"
		  : "connection lost while reading");
	return -1;
}

/* Reads the next whole response; NULL on failure (text says why). */
static const struct imap_response *conn_read(struct imap_conn *c)
{
	const struct imap_response *resp;
	const char *err;
	if (c->broken)
		return NULL;
	for (;;) {
		switch (imap_parser_next(c->parser, &resp, &err)) {
		case IMAP_PARSE_DONE:
			c->malformed_run = 0;
			return resp;
		case IMAP_PARSE_SKIPPED:
			/* one bad untagged response costs what it concerns, not the connection */
			if (++c->malformed_run > IMAP_CONN_MAX_MALFORMED_RUN) {
				conn_set_text(c, "%u malformed responses in a row from the server, the last: %s",
					      c->malformed_run, err);
				c->broken = true;
				return NULL;
			}
			free(c->malformed_text);
			c->malformed_text = xasprintf("malformed response from the server: %s", err);
			c->malformed = (struct imap_response){ .kind = IMAP_RESPONSE_UNTAGGED, .text = "",
							       .malformed = c->malformed_text };
			return &c->malformed;
		case IMAP_PARSE_ERROR:
			conn_set_text(c, "malformed response from server: %s", err);
			c->broken = true;
			return NULL;
		case IMAP_PARSE_NEED_MORE:
			if (conn_fill(c) < 0)
				return NULL;
			break;
		}
	}
}

/* Forgets the capabilities (after STARTTLS and login they must be learnt again). */
static void conn_clear_caps(struct imap_conn *c)
{
	for (size_t i = 0; i < c->ncaps; i++)
		free(c->caps[i]);
	FREE(c->caps);
	c->ncaps = 0;
}

/* Replaces the capability list with the given atoms. */
static void conn_set_caps(struct imap_conn *c, const struct imap_arg *args, size_t count)
{
	conn_clear_caps(c);
	c->caps_generation++;
	c->caps = xcalloc(count ? count : 1, sizeof(char *));
	c->ncaps = 0;
	for (size_t i = 0; i < count; i++) {
		const char *s = imap_arg_as_string(&args[i]);
		if (s == NULL || args[i].type != IMAP_ARG_ATOM)
			continue;
		char *u = xstrdup(s);
		for (char *p = u; *p; p++)
			*p = (char)toupper((unsigned char)*p);
		c->caps[c->ncaps++] = u;
	}
}

/* Notes capabilities, BYE and throttling hints from any response. */
static void conn_observe(struct imap_conn *c, const struct imap_response *r)
{
	if (r->status != IMAP_STATUS_NONE && r->code_args != NULL && r->code_count > 0 &&
	    imap_arg_atom_equals(&r->code_args[0], "CAPABILITY"))
		conn_set_caps(c, r->code_args + 1, r->code_count - 1);
	if (r->kind == IMAP_RESPONSE_UNTAGGED && r->status == IMAP_STATUS_NONE && r->count > 0 &&
	    imap_arg_atom_equals(&r->args[0], "CAPABILITY"))
		conn_set_caps(c, r->args + 1, r->count - 1);
	if (r->text != NULL && r->status != IMAP_STATUS_OK) {
		/* Office 365: "Request is throttled. Suggested Backoff Time: 92132 milliseconds" */
		const char *p = strcasestr(r->text, "Suggested Backoff Time:");
		if (p != NULL) {
			unsigned long long ms = strtoull(p + strlen("Suggested Backoff Time:"), NULL, 10);
			c->backoff_ms = ms > IMAP_CONN_MAX_BACKOFF_MS ? IMAP_CONN_MAX_BACKOFF_MS : (unsigned)ms;
		}
	}
	if (r->kind == IMAP_RESPONSE_UNTAGGED && r->status == IMAP_STATUS_BYE) {
		free(c->bye);
		c->bye = xasprintf("server said BYE: %s", r->text ? r->text : "");
	}
}

/* Public: capability test. */
bool imap_conn_has_capability(const struct imap_conn *c, const char *cap)
{
	for (size_t i = 0; i < c->ncaps; i++)
		if (strcasecmp(c->caps[i], cap) == 0)
			return true;
	return false;
}

/* Public: whether the connection is still usable. */
bool imap_conn_broken(const struct imap_conn *c)
{
	return c->broken;
}

/* Public: backoff hint. */
unsigned imap_conn_backoff_ms(const struct imap_conn *c)
{
	return c->backoff_ms;
}

/* Public: sends a tagged command. */
unsigned imap_conn_send(struct imap_conn *c, const char *command)
{
	if (c->broken)
		return 0;
	unsigned tag = ++c->next_tag;
	struct buf b = { 0 };
	buf_printf(&b, "A%u %s\r\n", tag, command);
	int r = conn_write(c, b.data, b.len);
	explicit_bzero(b.data, b.len); /* the line may carry credentials */
	buf_free(&b);
	return r < 0 ? 0 : tag;
}

/* Maps a tagged status to our status. */
static enum imap_conn_status conn_status_of(const struct imap_response *r)
{
	switch (r->status) {
	case IMAP_STATUS_OK: return IMAP_CONN_OK;
	case IMAP_STATUS_NO: return IMAP_CONN_NO;
	default: return IMAP_CONN_BAD;
	}
}

/* Public: waits for a tag's completion. */
enum imap_conn_status imap_conn_wait(struct imap_conn *c, unsigned tag, imap_untagged_cb *cb, void *ctx,
				     const char **text_r)
{
	char want[16];
	snprintf(want, sizeof(want), "A%u", tag);
	/* it may already have completed while we waited for another tag */
	for (size_t i = 0; i < c->ndone; i++) {
		if (c->done[i].tag == tag) {
			enum imap_conn_status st = c->done[i].status;
			free(c->text);
			c->text = c->done[i].text;
			c->done[i] = c->done[--c->ndone];
			*text_r = c->text;
			return st;
		}
	}
	if (tag == 0) {
		*text_r = c->text ? c->text : "connection failed";
		return IMAP_CONN_ERROR;
	}
	for (;;) {
		const struct imap_response *r = conn_read(c);
		if (r == NULL) {
			*text_r = c->text;
			return IMAP_CONN_ERROR;
		}
		conn_observe(c, r);
		if (r->kind == IMAP_RESPONSE_TAGGED) {
			enum imap_conn_status st = conn_status_of(r);
			if (strcmp(r->tag, want) == 0) {
				conn_set_text(c, "%s", r->text ? r->text : "");
				*text_r = c->text;
				return st;
			}
			if (c->ndone < IMAP_CONN_MAX_INFLIGHT && r->tag[0] == 'A') {
				c->done[c->ndone].tag = (unsigned)strtoul(r->tag + 1, NULL, 10);
				c->done[c->ndone].status = st;
				c->done[c->ndone].text = xstrdup(r->text ? r->text : "");
				c->ndone++;
				continue;
			}
			conn_fail(c, "server completed a command we did not send");
			*text_r = c->text;
			return IMAP_CONN_ERROR;
		}
		if (r->kind == IMAP_RESPONSE_CONTINUATION) {
			conn_fail(c, "unexpected continuation request from server");
			*text_r = c->text;
			return IMAP_CONN_ERROR;
		}
		if (cb != NULL)
			cb(r, ctx);
	}
}

/* Public: one command, start to finish. */
enum imap_conn_status imap_conn_run(struct imap_conn *c, const char *command, imap_untagged_cb *cb, void *ctx,
				    const char **text_r)
{
	unsigned tag = imap_conn_send(c, command);
	return imap_conn_wait(c, tag, cb, ctx, text_r);
}

/* Public: IMAP quoted string. */
int imap_quote(struct buf *b, const char *s)
{
	if (strpbrk(s, "\r\n") != NULL)
		return -1;
	buf_append_str(b, "\"");
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append(b, "\\", 1);
		buf_append(b, p, 1);
	}
	buf_append_str(b, "\"");
	return 0;
}

/* Public: a mailbox name as a command argument: quoted when it is 7-bit, a non-synchronizing literal
   when it has 8-bit bytes and the server takes them (LITERAL+, or LITERAL- up to 4096 bytes), quoted
   with its raw bytes otherwise, which most servers accept. */
int imap_conn_append_mailbox(const struct imap_conn *c, struct buf *b, const unsigned char *name, size_t len)
{
	bool eight_bit = false;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '\0' || name[i] == '\r' || name[i] == '\n')
			return -1;
		eight_bit |= name[i] >= 0x80;
	}
	if (eight_bit && (imap_conn_has_capability(c, "LITERAL+") ||
			  (imap_conn_has_capability(c, "LITERAL-") && len <= 4096))) {
		buf_printf(b, "{%zu+}\r\n", len);
		buf_append(b, name, len);
		return 0;
	}
	char *s = xstrndup((const char *)name, len);
	int r = imap_quote(b, s);
	free(s);
	return r;
}

/* Base64 of len bytes into a new string. */
static char *conn_base64(const unsigned char *data, size_t len)
{
	char *out = xmalloc(4 * ((len + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* Builds the SASL initial response for the chosen mechanism (caller wipes and frees). */
static char *conn_sasl_response(const struct imap_conn_settings *s, const char **mech_r)
{
	struct buf raw = { 0 };
	switch (s->auth) {
	case IMAP_AUTH_PLAIN:
	case IMAP_AUTH_LOGIN:
		*mech_r = "PLAIN";
		buf_append(&raw, "", 1);
		buf_append_str(&raw, s->username);
		buf_append(&raw, "", 1);
		buf_append_str(&raw, s->secret);
		break;
	case IMAP_AUTH_XOAUTH2:
		*mech_r = "XOAUTH2";
		buf_printf(&raw, "user=%s\001auth=Bearer %s\001\001", s->username, s->secret);
		break;
	case IMAP_AUTH_OAUTHBEARER:
		*mech_r = "OAUTHBEARER";
		buf_printf(&raw, "n,a=%s,\001host=%s\001port=%u\001auth=Bearer %s\001\001", s->username, s->host,
			   s->port, s->secret);
		break;
	}
	char *b64 = conn_base64(raw.data, raw.len);
	explicit_bzero(raw.data, raw.len);
	buf_free(&raw);
	return b64;
}

/* AUTHENTICATE with SASL-IR when offered, answering continuations; never logs the exchange. */
static enum imap_conn_status conn_authenticate(struct imap_conn *c, const struct imap_conn_settings *s)
{
	const char *mech = "PLAIN";
	char *ir = conn_sasl_response(s, &mech);
	bool sasl_ir = imap_conn_has_capability(c, "SASL-IR");
	struct buf cmd = { 0 };
	buf_printf(&cmd, "AUTHENTICATE %s%s%s", mech, sasl_ir ? " " : "", sasl_ir ? ir : "");
	unsigned tag = imap_conn_send(c, (const char *)cmd.data);
	explicit_bzero(cmd.data, cmd.len);
	buf_free(&cmd);
	char want[16];
	snprintf(want, sizeof(want), "A%u", tag);
	bool sent_ir = sasl_ir;
	enum imap_conn_status st = IMAP_CONN_ERROR;
	while (tag != 0) {
		const struct imap_response *r = conn_read(c);
		if (r == NULL)
			break;
		conn_observe(c, r);
		if (r->kind == IMAP_RESPONSE_CONTINUATION) {
			/* first "+": send the response; a later "+" carries an error: answer it empty (RFC 7628) */
			const char *answer = sent_ir ? (s->auth == IMAP_AUTH_OAUTHBEARER ? "AQ==" : "") : ir;
			sent_ir = true;
			if (conn_write(c, answer, strlen(answer)) < 0 || conn_write(c, "\r\n", 2) < 0)
				break;
			continue;
		}
		if (r->kind == IMAP_RESPONSE_TAGGED && strcmp(r->tag, want) == 0) {
			st = conn_status_of(r);
			conn_set_text(c, "%s", r->text ? r->text : "");
			break;
		}
	}
	explicit_bzero(ir, strlen(ir));
	free(ir);
	return st;
}

/* LOGIN command with quoted credentials. */
static enum imap_conn_status conn_login(struct imap_conn *c, const struct imap_conn_settings *s)
{
	struct buf cmd = { 0 };
	const char *text;
	buf_append_str(&cmd, "LOGIN ");
	if (imap_quote(&cmd, s->username) < 0 || (buf_append_str(&cmd, " "), imap_quote(&cmd, s->secret)) < 0) {
		explicit_bzero(cmd.data, cmd.len);
		buf_free(&cmd);
		conn_set_text(c, "user name or password contains a line break");
		return IMAP_CONN_NO;
	}
	unsigned tag = imap_conn_send(c, (const char *)cmd.data);
	explicit_bzero(cmd.data, cmd.len);
	buf_free(&cmd);
	return imap_conn_wait(c, tag, NULL, NULL, &text);
}

/* Asks for CAPABILITY when the server did not volunteer it. */
static int conn_refresh_caps(struct imap_conn *c)
{
	const char *text;
	conn_clear_caps(c);
	return imap_conn_run(c, "CAPABILITY", NULL, NULL, &text) == IMAP_CONN_OK ? 0 : -1;
}

/* Public: the whole way from TCP to an authenticated session. */
struct imap_conn *imap_conn_open(const struct imap_conn_settings *s, char **error_r,
				 struct imap_open_failure *failure_r)
{
	struct imap_parser_limits limits = { .max_literal = s->max_literal };
	const char *text;
	if (failure_r)
		*failure_r = (struct imap_open_failure){ 0 };
	int fd = conn_tcp_connect(s->host, s->port, s->timeout_secs ? s->timeout_secs : 120, error_r);
	if (fd < 0)
		return NULL;
	struct imap_conn *c = xcalloc(1, sizeof(*c));
	c->fd = fd;
	c->host = s->host;
	c->parser = imap_parser_new(&limits);
	if (s->tls == IMAP_TLS_IMAPS && conn_start_tls(c, s, error_r) < 0)
		goto fail;

	const struct imap_response *g = conn_read(c);
	if (g == NULL || g->kind != IMAP_RESPONSE_UNTAGGED ||
	    (g->status != IMAP_STATUS_OK && g->status != IMAP_STATUS_PREAUTH)) {
		*error_r = xasprintf("%s did not greet as an IMAP server: %s", s->host,
				     g == NULL ? c->text : (g->text ? g->text : "unexpected greeting"));
		goto fail;
	}
	bool preauth = g->status == IMAP_STATUS_PREAUTH;
	conn_observe(c, g);
	if (s->tls == IMAP_TLS_STARTTLS) {
		if (preauth) {
			*error_r = xasprintf("%s sent PREAUTH before TLS: refusing an unprotected session", s->host);
			goto fail;
		}
		if (c->ncaps == 0 && conn_refresh_caps(c) < 0) {
			*error_r = xasprintf("CAPABILITY failed on %s: %s", s->host, c->text);
			goto fail;
		}
		if (!imap_conn_has_capability(c, "STARTTLS")) {
			*error_r = xasprintf("%s does not offer STARTTLS: refusing to log in without TLS", s->host);
			goto fail;
		}
		if (imap_conn_run(c, "STARTTLS", NULL, NULL, &text) != IMAP_CONN_OK) {
			*error_r = xasprintf("STARTTLS refused by %s: %s", s->host, text);
			goto fail;
		}
		/* bytes after the OK were sent in clear before the handshake: an injection attempt */
		if (imap_parser_pending(c->parser) > 0) {
			*error_r = xasprintf("%s sent data after the STARTTLS reply: refusing (possible injection)", s->host);
			goto fail;
		}
		if (conn_start_tls(c, s, error_r) < 0)
			goto fail;
		conn_clear_caps(c); /* capabilities learnt in clear are not to be trusted */
	}
	if (c->ncaps == 0 && conn_refresh_caps(c) < 0) {
		*error_r = xasprintf("CAPABILITY failed on %s: %s", s->host, c->text);
		goto fail;
	}
	if (!preauth) {
		enum imap_conn_status st;
		/* the tagged OK of the login usually carries the post-login capabilities */
		unsigned generation = c->caps_generation;
		if (s->auth == IMAP_AUTH_LOGIN ||
		    (s->auth == IMAP_AUTH_PLAIN && !imap_conn_has_capability(c, "AUTH=PLAIN"))) {
			if (imap_conn_has_capability(c, "LOGINDISABLED")) {
				*error_r = xasprintf("%s has LOGINDISABLED and no AUTH=PLAIN", s->host);
				goto fail;
			}
			st = conn_login(c, s);
		} else {
			st = conn_authenticate(c, s);
		}
		if (st != IMAP_CONN_OK) {
			if (st != IMAP_CONN_ERROR && failure_r)
				failure_r->auth_failed = true;
			*error_r = xasprintf("login as %s on %s failed: %s", s->username, s->host,
					     c->text ? c->text : "no reason given");
			goto fail;
		}
		if (c->caps_generation == generation)
			conn_clear_caps(c); /* none volunteered: ask again below */
	}
	if (c->ncaps == 0 && conn_refresh_caps(c) < 0) {
		*error_r = xasprintf("CAPABILITY after login failed on %s: %s", s->host, c->text);
		goto fail;
	}
	if (imap_conn_has_capability(c, "ID"))
		(void)imap_conn_run(c, "ID (\"name\" \"mailvault\" \"version\" \"" MAILVAULT_VERSION "\")", NULL, NULL, &text);
	if (c->broken) {
		*error_r = xasprintf("connection to %s lost: %s", s->host, c->text);
		goto fail;
	}
	return c;
fail:
	if (failure_r)
		failure_r->backoff_ms = c->backoff_ms;
	c->broken = true;
	imap_conn_close(&c);
	return NULL;
}

/* Public: LOGOUT and free. */
void imap_conn_close(struct imap_conn **cp)
{
	struct imap_conn *c = *cp;
	if (c == NULL)
		return;
	if (!c->broken) {
		const char *text;
		(void)imap_conn_run(c, "LOGOUT", NULL, NULL, &text);
	}
	if (c->ssl) {
		if (!c->broken)
			SSL_shutdown(c->ssl);
		SSL_free(c->ssl);
	}
	SSL_CTX_free(c->ssl_ctx);
	if (c->fd >= 0)
		close(c->fd);
	imap_parser_free(&c->parser);
	conn_clear_caps(c);
	free(c->bye);
	for (size_t i = 0; i < c->ndone; i++)
		free(c->done[i].text);
	free(c->text);
	free(c->malformed_text);
	free(c);
	*cp = NULL;
}

/* mailvault-web -c CONF: the officers' service (see web.h). Listens on [web] socket, a Unix socket for the
 * mailvault command, and on [web] listen, HTTPS (plain HTTP only on a loopback address, for a reverse
 * proxy). Runs until SIGTERM or SIGINT. */
#include "web.h"
#include "credential.h"
#include "db.h"
#include "log.h"
#include "mime-extract.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Reads a whole file (a TLS certificate or key) as text; NULL with *error_r. */
static char *web_read_file(const char *path, char **error_r)
{
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return NULL;
	}
	struct buf b = { 0 };
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len < 1024 * 1024)
		buf_append(&b, chunk, n);
	fclose(f);
	return buf_steal(&b);
}

/* True for 127.0.0.0/8 and ::1. */
static bool web_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, &in6addr_loopback, 16) == 0;
	return false;
}

/* Parses [web] trusted_proxies: addresses separated by commas or blanks. */
static int web_parse_proxies(struct web *w, char **error_r)
{
	const char *list = w->cfg->web_trusted_proxies;
	if (list == NULL)
		return 0;
	char *copy = xstrdup(list), *save = NULL;
	for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct sockaddr_storage ss = { 0 };
		if (inet_pton(AF_INET, tok, &((struct sockaddr_in *)&ss)->sin_addr) == 1)
			ss.ss_family = AF_INET;
		else if (inet_pton(AF_INET6, tok, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1)
			ss.ss_family = AF_INET6;
		else {
			*error_r = xasprintf("[web] trusted_proxies: '%s' is not an IP address", tok);
			free(copy);
			return -1;
		}
		w->proxies = xrealloc(w->proxies, (w->nproxies + 1) * sizeof(*w->proxies));
		w->proxies[w->nproxies++] = ss;
	}
	free(copy);
	return 0;
}

/* Binds [web] listen (HOST:PORT, [V6]:PORT); -1 with *error_r. Plain HTTP is refused off loopback. */
static int web_bind_tcp(struct web *w, char **error_r)
{
	const char *spec = w->cfg->web_listen;
	char host[256], port[16];
	const char *colon = strrchr(spec, ':');
	if (colon == NULL || colon == spec || strlen(colon + 1) == 0 || strlen(colon + 1) >= sizeof(port) ||
	    (size_t)(colon - spec) >= sizeof(host)) {
		*error_r = xasprintf("[web] listen must be HOST:PORT (e.g. 127.0.0.1:8443), not '%s'", spec);
		return -1;
	}
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	snprintf(port, sizeof(port), "%s", colon + 1);
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV | AI_PASSIVE }, *ai = NULL;
	int e = getaddrinfo(host, port, &hints, &ai);
	if (e != 0) {
		*error_r = xasprintf("[web] listen %s: %s", spec, gai_strerror(e));
		return -1;
	}
	if (!w->tls && !web_loopback(ai->ai_addr)) {
		freeaddrinfo(ai);
		*error_r = xasprintf("[web] listen %s: plain HTTP is only served on a loopback address (behind a reverse "
				     "proxy); set tls_cert and tls_key to serve HTTPS there", spec);
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 128) < 0) {
		*error_r = xasprintf("[web] listen %s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* Binds the Unix socket, world-connectable: who may act is decided per connection by SO_PEERCRED. */
static int web_bind_unix(const char *path, char **error_r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*error_r = xasprintf("[web] socket %s: path too long", path);
		return -1;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = xasprintf("[web] socket %s exists and is not a socket", path);
			return -1;
		}
		unlink(path); /* left by an earlier run */
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 || listen(fd, 128) < 0) {
		*error_r = xasprintf("[web] socket %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Starts an MHD daemon on a bound socket. */
static struct MHD_Daemon *web_start(struct web *w, int fd, bool tls, const char *cert, const char *key)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (tls)
		flags |= MHD_USE_TLS;
	if (tls)
		return MHD_start_daemon(flags, 0, NULL, NULL, web_handle, w, MHD_OPTION_LISTEN_SOCKET, fd,
					MHD_OPTION_NOTIFY_COMPLETED, web_request_done, w,
					MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT,
					(unsigned)512, MHD_OPTION_HTTPS_MEM_CERT, cert, MHD_OPTION_HTTPS_MEM_KEY, key,
					MHD_OPTION_END);
	return MHD_start_daemon(flags, 0, NULL, NULL, web_handle, w, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_NOTIFY_COMPLETED, web_request_done, w, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)60, MHD_OPTION_CONNECTION_LIMIT, (unsigned)512, MHD_OPTION_END);
}

static void usage(FILE *out)
{
	fprintf(out, "usage: mailvault-web [-c FILE]\n"
		     "  serves officers: the JSON API under /api/v1/ on [web] listen, and the mailvault command on\n"
		     "  [web] socket (default " CONFIG_DEFAULT_WEB_SOCKET ")\n");
}

int main(int argc, char **argv)
{
	const char *cfg_path = CONFIG_DEFAULT_PATH;
	/* Each request runs in a new thread, and glibc hands a result page's buffers (a search page of long
	   To lists is 150 KB of JSON, built and copied twice) back to the kernel once freed: every request
	   then faulted them in again, 12 us a page on a virtual machine, 5 ms of a 15 ms search. Buffers up
	   to 4 MiB stay in the heap and up to 8 MiB of free heap is kept per arena (at most 128 MiB over
	   glibc's 16 on two processors); larger ones (raw messages, attachments) are still mapped and
	   returned. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 8 << 20);
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					      { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (c == 'c') {
			cfg_path = optarg;
		} else if (c == 'h') {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	char *err = NULL;
	struct web w = { 0 };
	w.cfg = config_load(cfg_path, &err);
	if (w.cfg == NULL) {
		fprintf(stderr, "mailvault-web: %s\n", err);
		return 1;
	}
	log_init("mailvault-web", w.cfg->log_level, w.cfg->log_syslog);
	if (w.cfg->search_session_idle_line)
		log_warn("%s:%u: [search] session_idle no longer does anything: mailvault-web keeps the index open for "
			 "every officer; remove the line", w.cfg->path, w.cfg->search_session_idle_line);
	if (credential_init() < 0)
		log_fatal("cannot initialise libsodium (no source of random numbers?)");
	const char *hash_err;
	char *rnd = credential_random_id();
	w.dummy_hash = credential_password_hash(rnd, &hash_err);
	free(rnd);
	if (w.dummy_hash == NULL)
		log_fatal("%s", hash_err);
	w.conninfo = config_conninfo_for(w.cfg, "web");
	w.tls = w.cfg->web_tls_cert != NULL || w.cfg->web_tls_key != NULL;
	if (w.tls && (w.cfg->web_tls_cert == NULL || w.cfg->web_tls_key == NULL))
		log_fatal("[web] tls_cert and tls_key go together");
	if (web_parse_proxies(&w, &err) < 0)
		log_fatal("%s", err);
	mime_extract_init();
	/* the database must answer as the service's role before anything listens */
	const char *dberr;
	PGconn *probe = db_connect(w.conninfo, "mailvault-web", NULL, &dberr);
	if (probe == NULL)
		log_fatal("database: %s", dberr);
	/* fail closed: a login that bypasses row-level security would show every officer everything */
	PGresult *role = db_query(probe, "SELECT pg_has_role(current_user, 'mailvault_web', 'MEMBER'), "
			     "pg_has_role(current_user, 'mailvault_owner', 'MEMBER') OR r.rolsuper OR r.rolbypassrls "
			     "OR pg_has_role(current_user, 'mailvault_ingest', 'MEMBER') "
			     "OR pg_has_role(current_user, 'mailvault_indexer', 'MEMBER') "
			     "OR pg_has_role(current_user, 'mailvault_retention', 'MEMBER') "
			     "FROM pg_roles r WHERE r.rolname = current_user", 0, NULL, &dberr);
	if (role == NULL)
		log_fatal("database: %s (has `mailvault init` run?)", dberr);
	if (strcmp(PQgetvalue(role, 0, 1), "t") == 0)
		log_fatal("the service's login (%s) is a superuser, bypasses row-level security, can act as the tables' "
			  "owner or is a member of a program's role (which sees every row): officers' scopes would not hold. Give it a login of its own: CREATE ROLE mailvault_web_login "
			  "LOGIN PASSWORD '...' IN ROLE mailvault_web, and set [database] web_conninfo", PQuser(probe));
	if (strcmp(PQgetvalue(role, 0, 0), "t") != 0)
		log_fatal("the service's login (%s) is not a member of mailvault_web (GRANT mailvault_web TO %s)",
			  PQuser(probe), PQuser(probe));
	PQclear(role);
	db_close(&probe);
	if (web_pool_init(&w, &err) < 0)
		log_fatal("%s", err);
	w.audit = audit_writer_start(w.conninfo);

	/* signals are taken in this thread only */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	const char *sock_path = w.cfg->web_socket ? w.cfg->web_socket : CONFIG_DEFAULT_WEB_SOCKET;
	int ufd = web_bind_unix(sock_path, &err);
	if (ufd < 0)
		log_fatal("%s", err);
	struct MHD_Daemon *ud = web_start(&w, ufd, false, NULL, NULL), *td = NULL;
	if (ud == NULL)
		log_fatal("cannot serve the socket %s", sock_path);
	char *cert = NULL, *key = NULL;
	if (w.cfg->web_listen != NULL) {
		if (w.tls) {
			if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
				log_fatal("this libmicrohttpd has no TLS support");
			if ((cert = web_read_file(w.cfg->web_tls_cert, &err)) == NULL ||
			    (key = web_read_file(w.cfg->web_tls_key, &err)) == NULL)
				log_fatal("[web] tls: %s", err);
		}
		int tfd = web_bind_tcp(&w, &err);
		if (tfd < 0)
			log_fatal("%s", err);
		td = web_start(&w, tfd, w.tls, cert, key);
		if (td == NULL)
			log_fatal("cannot serve %s%s", w.cfg->web_listen, w.tls ? " (is the certificate or key malformed?)" : "");
	}
	log_info("serving officers on %s%s%s%s", sock_path, td ? " and " : "", td ? (w.tls ? "https://" : "http://") : "",
		 td ? w.cfg->web_listen : "");
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			log_info("SIGHUP: the configuration is read at start; restart mailvault-web to apply changes");
			continue;
		}
		log_info("signal %d: stopping", sig);
		break;
	}
	if (td)
		MHD_stop_daemon(td);
	MHD_stop_daemon(ud);
	unlink(sock_path);
	audit_writer_stop(&w.audit);
	web_pool_free(&w);
	if (key)
		memset(key, 0, strlen(key));
	free(cert);
	free(key);
	free(w.proxies);
	free(w.dummy_hash);
	config_free(&w.cfg);
	return 0;
}

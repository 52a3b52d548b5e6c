/* Naming a user's search session, and the socket I/O of both sides (see session-key.h). */
#include "session-key.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

/* Appends printf output to a growing string (aborts when out of memory, as the x* allocators do). */
static void key_append(char **s, size_t *len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void key_append(char **s, size_t *len, const char *fmt, ...)
{
	va_list ap, ap2;
	va_start(ap, fmt);
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = n < 0 ? NULL : realloc(*s, *len + (size_t)n + 1);
	if (p == NULL)
		abort();
	vsnprintf(p + *len, (size_t)n + 1, fmt, ap2);
	va_end(ap2);
	*s = p;
	*len += (size_t)n;
}

/* Orders environment entries by name, so the key does not depend on their order. */
static int key_cmp_env(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* FNV-1a: spreads keys over socket names; the session checks the whole key, so collisions are harmless. */
static uint64_t key_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

int session_key_make(const char *cfg_path, struct session_key *k, const char **error_r)
{
	memset(k, 0, sizeof(*k));
	char real[PATH_MAX];
	struct stat st;
	if (realpath(cfg_path, real) == NULL || stat(real, &st) < 0 || !S_ISREG(st.st_mode)) {
		*error_r = "the configuration file cannot be found";
		return -1;
	}
	size_t len = 0, nenv = 0;
	key_append(&k->key, &len, "mailvault-session 1\nuid %lu\nconfig %s\nid %llu:%llu:%lld:%lld.%09ld\n",
		   (unsigned long)getuid(), real, (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		   (long long)st.st_size, (long long)st.st_mtim.tv_sec, (long)st.st_mtim.tv_nsec);
	for (char **e = environ; e && *e; e++)
		nenv += strncmp(*e, "PG", 2) == 0;
	char **env = calloc(nenv + 1, sizeof(char *));
	if (env == NULL)
		abort();
	nenv = 0;
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "PG", 2) == 0)
			env[nenv++] = *e;
	qsort(env, nenv, sizeof(char *), key_cmp_env);
	for (size_t i = 0; i < nenv; i++)
		key_append(&k->key, &len, "env %s\n", env[i]);
	free(env);

	/* the user's private runtime folder, as systemd gives it, else one of our own in /tmp */
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	size_t dlen = 0;
	if (xdg != NULL && xdg[0] == '/')
		key_append(&k->dir, &dlen, "%s/mailvault", xdg);
	else
		key_append(&k->dir, &dlen, "/tmp/mailvault-%lu", (unsigned long)getuid());
	size_t slen = 0, llen = 0;
	uint64_t h = key_hash(k->key);
	key_append(&k->sock_path, &slen, "%s/search-%016llx.sock", k->dir, (unsigned long long)h);
	key_append(&k->lock_path, &llen, "%s/search-%016llx.lock", k->dir, (unsigned long long)h);
	if (slen >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		session_key_free(k);
		*error_r = "the session socket's path is too long (set XDG_RUNTIME_DIR to a shorter folder)";
		return -1;
	}
	return 0;
}

int session_key_check_dir(const char *dir, bool create, const char **error_r)
{
	struct stat st;
	if (create && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = "cannot create the session folder";
		return -1;
	}
	if (lstat(dir, &st) < 0) {
		*error_r = "no session folder";
		return -1;
	}
	/* someone else's folder (say, planted in /tmp) must never carry our searches */
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077) != 0) {
		*error_r = "the session folder is not a private folder of this user";
		return -1;
	}
	return 0;
}

void session_key_free(struct session_key *k)
{
	free(k->key);
	free(k->dir);
	free(k->sock_path);
	free(k->lock_path);
	memset(k, 0, sizeof(*k));
}

/* Moves exactly len bytes through the socket, sending or receiving; 0, or -1 on error, EOF or timeout. */
static int session_transfer(int fd, char *p, size_t len, bool sending)
{
	while (len > 0) {
		ssize_t n = sending ? send(fd, p, len, MSG_NOSIGNAL) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int session_send_all(int fd, const void *buf, size_t len)
{
	return session_transfer(fd, (char *)buf, len, true);
}

int session_recv_all(int fd, void *buf, size_t len)
{
	return session_transfer(fd, buf, len, false);
}

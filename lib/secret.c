/* Secrets: named [secret NAME] entries of mailvault.conf, resolved at use, sent only where they may go. */
#include "secret.h"
#include "buf.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SECRET_MAX 65536

/* The entry, checked against where the account would send it. */
const struct config_secret *secret_for(const struct config *cfg, const char *name, const char *host,
				       const char *user, char **error_r)
{
	const struct config_secret *s = config_secret_find(cfg, name);
	if (s == NULL) {
		*error_r = xasprintf("secret '%s' is not defined in %s: add a [secret %s] section with source, host "
				     "and user", name, cfg->path, name);
		return NULL;
	}
	if (strcasecmp(s->host, host) != 0 || strcmp(s->user, user) != 0) {
		*error_r = xasprintf("secret '%s' may be sent only to %s as %s (%s:%u), not to %s as %s: refusing to "
				     "send it", name, s->host, s->user, cfg->path, s->line, host, user);
		return NULL;
	}
	return s;
}

/* Drops one trailing newline (files and commands usually end with one). */
static void secret_chomp(struct buf *b)
{
	if (b->len > 0 && b->data[b->len - 1] == '\n')
		b->data[--b->len] = '\0';
	if (b->len > 0 && b->data[b->len - 1] == '\r')
		b->data[--b->len] = '\0';
}

/* Wipes the buffer's bytes before freeing them. */
static void secret_buf_wipe(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

/* Appends what fd gives until EOF, at most SECRET_MAX bytes; with a deadline (monotonic seconds, 0 =
   none) it gives up when time runs out. 0 at EOF, -1 on error or overflow, -2 on timeout. */
static int secret_read_fd(int fd, struct buf *b, double deadline)
{
	char tmp[4096];
	for (;;) {
		if (deadline > 0) {
			double left = deadline - util_now();
			if (left <= 0)
				return -2;
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			int r = poll(&pfd, 1, (int)(left * 1000) + 1);
			if (r < 0 && errno == EINTR)
				continue;
			if (r == 0)
				return -2;
		}
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (b->len + (size_t)n > SECRET_MAX) {
			explicit_bzero(tmp, sizeof(tmp));
			return -1;
		}
		buf_append(b, tmp, (size_t)n);
		explicit_bzero(tmp, (size_t)n);
	}
}

/* Shell-like word splitting without any expansion: no variables, globs, command substitution. */
char **secret_split_command(const char *command, const char **error_r)
{
	size_t n = 0;
	char **argv = xcalloc(1, sizeof(char *));
	const char *p = command;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		struct buf w = { 0 };
		buf_append(&w, "", 0);
		while (*p != '\0' && *p != ' ' && *p != '\t') {
			if (*p == '\'') {
				const char *end = strchr(p + 1, '\'');
				if (end == NULL)
					goto unterminated;
				buf_append(&w, p + 1, (size_t)(end - p - 1));
				p = end + 1;
			} else if (*p == '"') {
				for (p++; *p != '"'; p++) {
					if (*p == '\0')
						goto unterminated;
					if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
						p++;
					buf_append(&w, p, 1);
				}
				p++;
			} else if (*p == '\\' && p[1] != '\0') {
				buf_append(&w, p + 1, 1);
				p += 2;
			} else {
				buf_append(&w, p++, 1);
			}
			continue;
unterminated:
			buf_free(&w);
			secret_argv_free(argv);
			*error_r = "the secret command has an unterminated quote";
			return NULL;
		}
		argv = xrealloc(argv, (n + 2) * sizeof(char *));
		argv[n++] = buf_steal(&w);
		argv[n] = NULL;
	}
	if (n == 0) {
		secret_argv_free(argv);
		*error_r = "the secret command is empty";
		return NULL;
	}
	return argv;
}

/* Frees an argv from secret_split_command(). */
void secret_argv_free(char **argv)
{
	for (char **a = argv; a && *a; a++)
		free(*a);
	free(argv);
}

/* Runs the command with its output into b, killed (with its process group) at the timeout. */
static int secret_run_command(const struct config_secret *s, struct buf *b, const char **error_r)
{
	char **argv = secret_split_command(s->source + 4, error_r);
	if (argv == NULL)
		return -1;
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		secret_argv_free(argv);
		*error_r = "cannot create a pipe for the secret command";
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		secret_argv_free(argv);
		*error_r = "cannot fork the secret command";
		return -1;
	}
	if (pid == 0) {
		/* its own process group, so a timeout kills whatever it started too */
		setpgid(0, 0);
		int devnull = open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			dup2(devnull, 0);
		dup2(fds[1], 1);
		/* the daemon's blocked signals and ignored SIGPIPE must not reach the command */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		_exit(127);
	}
	secret_argv_free(argv);
	close(fds[1]);
	int r = secret_read_fd(fds[0], b, util_now() + s->timeout);
	close(fds[0]);
	if (r == -2) {
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
	}
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (r == -2) {
		*error_r = "the secret command did not finish within its timeout: killed";
		return -1;
	}
	if (r < 0) {
		*error_r = "cannot read the secret command's output (or it is larger than 64 KiB)";
		return -1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		*error_r = "the secret command cannot be run (not found or not executable)";
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		*error_r = "the secret command failed (non-zero exit status)";
		return -1;
	}
	return 0;
}

/* Resolves the source; errors name what failed, never the secret. */
char *secret_resolve(const struct config_secret *s, const char **error_r)
{
	struct buf b = { 0 };
	const char *src = s->source;
	if (strncmp(src, "env:", 4) == 0) {
		const char *v = getenv(src + 4);
		if (v == NULL) {
			*error_r = "the secret's environment variable is not set";
			return NULL;
		}
		buf_append_str(&b, v);
	} else if (strncmp(src, "file:", 5) == 0) {
		int fd = open(src + 5, O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0) {
			*error_r = "cannot open the secret file";
			return NULL;
		}
		int r = secret_read_fd(fd, &b, 0);
		close(fd);
		if (r < 0) {
			secret_buf_wipe(&b);
			*error_r = "cannot read the secret file (or it is larger than 64 KiB)";
			return NULL;
		}
	} else if (strncmp(src, "cmd:", 4) == 0) {
		if (secret_run_command(s, &b, error_r) < 0) {
			secret_buf_wipe(&b);
			return NULL;
		}
	} else {
		*error_r = "the secret's source is not file:, env: or cmd:";
		return NULL;
	}
	secret_chomp(&b);
	if (b.len == 0 || memchr(b.data, '\0', b.len) != NULL) {
		secret_buf_wipe(&b);
		*error_r = "the secret is empty or contains a NUL byte";
		return NULL;
	}
	char *out = xstrndup((const char *)b.data, b.len);
	secret_buf_wipe(&b);
	return out;
}

/* Wipes then frees. */
void secret_free(char **secret)
{
	if (*secret) {
		explicit_bzero(*secret, strlen(*secret));
		free(*secret);
		*secret = NULL;
	}
}

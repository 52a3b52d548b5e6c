/* Secret references (file:PATH, env:NAME, cmd:COMMAND): resolved at use, wiped after. */
#include "secret.h"
#include "buf.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SECRET_MAX 65536

/* Validates the form of a reference without resolving it. */
int secret_ref_validate(const char *ref, const char **error_r)
{
	if ((strncmp(ref, "file:", 5) == 0 || strncmp(ref, "env:", 4) == 0 || strncmp(ref, "cmd:", 4) == 0) &&
	    strchr(ref, ':')[1] != '\0')
		return 0;
	*error_r = "secret must be a reference: file:PATH, env:NAME or cmd:COMMAND";
	return -1;
}

/* Drops one trailing newline (files and commands usually end with one). */
static void secret_chomp(struct buf *b)
{
	if (b->len > 0 && b->data[b->len - 1] == '\n')
		b->data[--b->len] = '\0';
	if (b->len > 0 && b->data[b->len - 1] == '\r')
		b->data[--b->len] = '\0';
}

/* Reads all of fd, bounded, into b. */
static int secret_read_fd(int fd, struct buf *b)
{
	char tmp[4096];
	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return 0;
		if (b->len + (size_t)n > SECRET_MAX)
			return -1;
		buf_append(b, tmp, (size_t)n);
	}
}

/* Wipes the buffer's bytes before freeing them. */
static void secret_buf_wipe(struct buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	buf_free(b);
}

/* Resolves a reference; errors name the reference's source, never its content. */
char *secret_resolve(const char *ref, const char **error_r)
{
	struct buf b = { 0 };
	if (secret_ref_validate(ref, error_r) < 0)
		return NULL;
	if (strncmp(ref, "env:", 4) == 0) {
		const char *v = getenv(ref + 4);
		if (v == NULL) {
			*error_r = "secret environment variable is not set";
			return NULL;
		}
		buf_append_str(&b, v);
	} else if (strncmp(ref, "file:", 5) == 0) {
		int fd = open(ref + 5, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			*error_r = "cannot open secret file";
			return NULL;
		}
		int r = secret_read_fd(fd, &b);
		close(fd);
		if (r < 0) {
			secret_buf_wipe(&b);
			*error_r = "cannot read secret file (or it is larger than 64 KiB)";
			return NULL;
		}
	} else {
		/* cmd: runs through /bin/sh, like isync's PassCmd; stdout is the secret */
		int fds[2];
		if (pipe2(fds, O_CLOEXEC) < 0) {
			*error_r = "cannot create pipe for secret command";
			return NULL;
		}
		pid_t pid = fork();
		if (pid < 0) {
			close(fds[0]);
			close(fds[1]);
			*error_r = "cannot fork secret command";
			return NULL;
		}
		if (pid == 0) {
			dup2(fds[1], 1);
			execl("/bin/sh", "sh", "-c", ref + 4, (char *)NULL);
			_exit(127);
		}
		close(fds[1]);
		int r = secret_read_fd(fds[0], &b);
		close(fds[0]);
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			secret_buf_wipe(&b);
			*error_r = "secret command failed";
			return NULL;
		}
	}
	secret_chomp(&b);
	if (b.len == 0 || memchr(b.data, '\0', b.len) != NULL) {
		secret_buf_wipe(&b);
		*error_r = "secret is empty or contains a NUL byte";
		return NULL;
	}
	char *s = xstrndup((const char *)b.data, b.len);
	secret_buf_wipe(&b);
	return s;
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

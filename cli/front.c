/* mailvault: the front end. A search or show goes to the user's warm search session when one is running;
 * everything else, and any search no session takes, runs in mailvault-cli (the full program, exec'd).
 * This file links nothing but libc, so a search served by the session starts in about a millisecond. */
#include "args.h"
#include "session-key.h"
#include "session-proto.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Runs the full program with the same arguments; returns only on failure. */
static int front_exec_full(char **argv)
{
	char self[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "mailvault: cannot find my own program file: %s\n", strerror(errno));
		return 1;
	}
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	/* beside this program (the build tree), then where `make install` puts it */
	static const char *const places[] = { "%s/mailvault-cli", "%s/../libexec/mailvault/mailvault-cli" };
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		snprintf(path, sizeof(path), places[i], self);
		if (access(path, X_OK) == 0) {
			execv(path, argv);
			fprintf(stderr, "mailvault: cannot run %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "mailvault: cannot find mailvault-cli in %s or %s/../libexec/mailvault (is the installation "
		"complete?)\n", self, self);
	return 1;
}

/* Asks the session to run the command. Returns its exit status, or -1 when the command must run here
   (no session, or it declined before doing anything). */
static int front_try_session(int argc, char **argv, const char *cfg_path)
{
	struct session_key k;
	const char *why;
	if (session_key_make(cfg_path, &k, &why) < 0)
		return -1;
	int fd = -1, rc = -1;
	char *payload = NULL;
	if (session_key_check_dir(k.dir, false, &why) < 0)
		goto out;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", k.sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto out;
	/* the peer must be this user's own process */
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != getuid())
		goto out;
	/* the key, then argv[1] on, each with its NUL */
	size_t len = strlen(k.key) + 1;
	for (int i = 1; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (len > SESSION_MAX_REQUEST || (payload = malloc(len)) == NULL)
		goto out;
	char *end = stpcpy(payload, k.key) + 1;
	for (int i = 1; i < argc; i++)
		end = stpcpy(end, argv[i]) + 1;
	/* the length, with our standard output and error attached */
	uint32_t hdr = (uint32_t)len;
	int fds[2] = { STDOUT_FILENO, STDERR_FILENO };
	union { char buf[CMSG_SPACE(sizeof(fds))]; struct cmsghdr align; } ctl;
	memset(&ctl, 0, sizeof(ctl));
	struct iovec iov = { .iov_base = &hdr, .iov_len = sizeof(hdr) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	ssize_t sent;
	do
		sent = sendmsg(fd, &msg, MSG_NOSIGNAL);
	while (sent < 0 && errno == EINTR);
	if (sent != (ssize_t)sizeof(hdr) || session_send_all(fd, payload, len) < 0)
		goto out;
	/* 'F': run it here. 'S': the session is ready; our 'G' lets it run the command. A session busy with
	   another command (say, one whose output waits in a pager) is not waited for beyond SESSION_WAIT_MS. */
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	int pr;
	do
		pr = poll(&pf, 1, SESSION_WAIT_MS);
	while (pr < 0 && errno == EINTR);
	unsigned char reply[2];
	char go = SESSION_REQUEST_GO;
	if (pr <= 0 || read(fd, reply, 1) != 1 || reply[0] != SESSION_REPLY_STARTED ||
	    session_send_all(fd, &go, 1) < 0)
		goto out; /* nothing was done: run it here */
	if (session_recv_all(fd, reply, sizeof(reply)) == 0 && reply[0] == SESSION_REPLY_DONE) {
		rc = reply[1];
	} else {
		fprintf(stderr, "mailvault: the search session ended in the middle of the command\n");
		rc = 1;
	}
out:
	if (fd >= 0)
		close(fd);
	free(payload);
	session_key_free(&k);
	return rc;
}

int main(int argc, char **argv)
{
	struct cli_args a;
	cli_args_parse(argc, argv, &a);
	if (!a.bad && !a.help && !a.version && a.cmd < argc && SESSION_COMMAND(argv[a.cmd])) {
		int rc = front_try_session(argc, argv, a.cfg_path);
		if (rc >= 0)
			return rc;
	}
	return front_exec_full(argv);
}

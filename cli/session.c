/* A user's search session: a background process of that user that keeps their PostgreSQL login and the
 * index open, so that `mailvault search` and `show` skip loading libraries, starting a backend and opening
 * the index each time (like ssh's ControlPersist). It runs the very same commands, as the same login:
 * scope, row-level security and the audit row are what they would be without it. Only the same Unix
 * user can reach it (a private folder, and the peer's credentials checked on every connection). */
#include "cli.h"
#include "args.h"
#include "db.h"
#include "session-key.h"
#include "session-proto.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void session_spawn(const char *cfg_path)
{
	char real[PATH_MAX];
	if (realpath(cfg_path, real) == NULL)
		return;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid > 0) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		return;
	}
	/* detached: its own session, no terminal, none of our descriptors; the grandchild is the session */
	setsid();
	if (fork() != 0)
		_exit(0);
	int null = open("/dev/null", O_RDWR);
	if (null < 0 || chdir("/") < 0)
		_exit(1);
	dup2(null, STDIN_FILENO);
	dup2(null, STDOUT_FILENO);
	dup2(null, STDERR_FILENO);
	closefrom(STDERR_FILENO + 1);
	execl("/proc/self/exe", "mailvault", "-c", real, "session-agent", (char *)NULL);
	_exit(127);
}

/* Runs one command with the caller's standard output and error; returns its exit status. */
static int session_run(struct cli *cli, int out, int err, int argc, char **argv, const struct cli_args *a)
{
	fflush(NULL);
	int save_out = dup(STDOUT_FILENO), save_err = dup(STDERR_FILENO);
	if (save_out < 0 || save_err < 0 || dup2(out, STDOUT_FILENO) < 0 || dup2(err, STDERR_FILENO) < 0) {
		if (save_out >= 0)
			close(save_out);
		if (save_err >= 0)
			close(save_err);
		return -1;
	}
	cli->json = a->json;
	int rc = cli_run(cli, argc - a->cmd, argv + a->cmd);
	fflush(stdout);
	fflush(stderr);
	/* a reader that left early (search ... | head) leaves an error flag that must not stick */
	clearerr(stdout);
	clearerr(stderr);
	dup2(save_out, STDOUT_FILENO);
	dup2(save_err, STDERR_FILENO);
	close(save_out);
	close(save_err);
	return rc;
}

/* Serves one connection: checks who it is, reads the request, runs it or declines. */
static void session_handle(struct cli *cli, int fd, const char *key)
{
	int fds[2] = { -1, -1 };
	char **argv = NULL;
	char *payload = NULL;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 || cred.uid != getuid())
		goto out; /* another user: not a word */
	/* a caller that stalls is dropped rather than holding the session */
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	uint32_t len = 0;
	union { char buf[CMSG_SPACE(sizeof(fds))]; struct cmsghdr align; } ctl;
	struct iovec iov = { .iov_base = &len, .iov_len = sizeof(len) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		/* every descriptor received is kept or closed, however many a caller sent */
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int got;
			memcpy(&got, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (i < 2 && fds[i] < 0)
				fds[i] = got;
			else
				close(got);
		}
	}
	if (n != (ssize_t)sizeof(len) || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) || fds[0] < 0 || fds[1] < 0 ||
	    len == 0 || len > SESSION_MAX_REQUEST)
		goto out;
	payload = malloc(len);
	if (payload == NULL || session_recv_all(fd, payload, len) < 0 || payload[len - 1] != '\0')
		goto out;
	/* the key first: a caller with another login, configuration or environment runs the command itself */
	char fallback = SESSION_REPLY_FALLBACK;
	if (strcmp(payload, key) != 0 || db_conn_lost(cli->db)) {
		(void)session_send_all(fd, &fallback, 1);
		goto out;
	}
	int argc = 1;
	for (char *p = payload + strlen(payload) + 1; p < payload + len; p += strlen(p) + 1)
		argc++;
	argv = calloc((size_t)argc + 1, sizeof(char *));
	if (argv == NULL)
		goto out;
	argv[0] = "mailvault";
	int i = 1;
	for (char *p = payload + strlen(payload) + 1; p < payload + len; p += strlen(p) + 1)
		argv[i++] = p;
	struct cli_args a;
	cli_args_parse(argc, argv, &a);
	if (a.bad || a.help || a.version || a.cmd >= argc || !SESSION_COMMAND(argv[a.cmd])) {
		(void)session_send_all(fd, &fallback, 1);
		goto out;
	}
	/* 'S', then the caller's go-ahead: a caller that gave up waiting (a busy session) runs the command
	   itself, so it must never run here too */
	char started = SESSION_REPLY_STARTED, go = 0;
	if (session_send_all(fd, &started, 1) < 0 || session_recv_all(fd, &go, 1) < 0 || go != SESSION_REQUEST_GO)
		goto out;
	int rc = session_run(cli, fds[0], fds[1], argc, argv, &a);
	/* whatever the command left behind, the next one starts outside a transaction */
	if (cli->db != NULL && PQtransactionStatus(cli->db) != PQTRANS_IDLE)
		db_rollback(cli->db);
	unsigned char done[2] = { SESSION_REPLY_DONE, (unsigned char)(rc < 0 ? 1 : rc) };
	(void)session_send_all(fd, done, sizeof(done));
out:
	for (int k = 0; k < 2; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	free(argv);
	free(payload);
}

/* True if the configuration file still is the one the session was started with. */
static bool session_config_same(const char *cfg_path, const char *key)
{
	struct session_key now;
	const char *why;
	if (session_key_make(cfg_path, &now, &why) < 0)
		return false;
	bool same = strcmp(now.key, key) == 0;
	session_key_free(&now);
	return same;
}

int session_serve(struct cli *cli, const char *cfg_path)
{
	struct session_key k;
	const char *why;
	int lock = -1, lsock = -1, rc = 1;
	bool bound = false;
	signal(SIGPIPE, SIG_IGN);
	if (cli->cfg->session_idle == 0 || session_key_make(cfg_path, &k, &why) < 0)
		return 1;
	umask(077);
	if (session_key_check_dir(k.dir, true, &why) < 0)
		goto out;
	/* one session per key: whoever holds the lock serves; a second one started at the same time leaves */
	for (;;) {
		lock = open(k.lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (lock < 0 || flock(lock, LOCK_EX | LOCK_NB) < 0) {
			rc = 0;
			goto out;
		}
		/* a session that ended removes its lock file: ours must still be the one at the path */
		struct stat held, now;
		if (fstat(lock, &held) == 0 && stat(k.lock_path, &now) == 0 && held.st_ino == now.st_ino &&
		    held.st_dev == now.st_dev)
			break;
		close(lock);
	}
	/* log in and open the index before taking requests, so the first one is already warm */
	if (cli_connect(cli) < 0)
		goto out;
	cli->keep_index = true;
	unlink(k.sock_path);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", k.sock_path);
	lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lsock, 64) < 0)
		goto out;
	bound = true;
	time_t last = time(NULL);
	for (;;) {
		struct pollfd pf[2] = { { .fd = lsock, .events = POLLIN }, { .fd = PQsocket(cli->db), .events = POLLIN } };
		time_t left = (time_t)cli->cfg->session_idle - (time(NULL) - last);
		if (left <= 0)
			break;
		int r = poll(pf, 2, left > 60 ? 60000 : (int)left * 1000);
		if (r < 0 && errno != EINTR)
			break;
		/* the server closed our backend (restart, pg_terminate_backend): the session ends with it */
		if (pf[1].revents) {
			PQconsumeInput(cli->db);
			if (db_conn_lost(cli->db))
				break;
			PGnotify *nt;
			while ((nt = PQnotifies(cli->db)) != NULL)
				PQfreemem(nt);
		}
		/* a changed or removed configuration ends the session (the next search starts a new one) */
		if (!session_config_same(cfg_path, k.key))
			break;
		if (r <= 0 || !(pf[0].revents & POLLIN))
			continue;
		int fd = accept4(lsock, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		session_handle(cli, fd, k.key);
		close(fd);
		last = time(NULL);
		if (db_conn_lost(cli->db))
			break;
	}
	rc = 0;
out:
	/* the socket goes first, while the lock still says it is ours to remove */
	if (bound)
		unlink(k.sock_path);
	if (lsock >= 0)
		close(lsock);
	if (lock >= 0 && rc == 0 && bound)
		unlink(k.lock_path);
	if (lock >= 0)
		close(lock);
	session_key_free(&k);
	return rc;
}

/* mailvault: the front end. The officers' commands (search, show, audit, policy, matter, hold, erase) are answered by mailvault-web over
 * its Unix socket, for whoever runs them; everything else is administration, run by mailvault-cli (exec'd,
 * with the same arguments), as are audit anchors. This program opens no database connection and no index,
 * and links only libc and json-c: it starts for every search. */
#include "args.h"
#include "client.h"
#include "client-cmds.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Runs the administration program with the same arguments; returns only on failure. */
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
	/* a mailvault-cli that is a copy of this program would run itself for ever: it says so instead */
	if (getenv("MAILVAULT_FRONT_EXECED") != NULL) {
		fprintf(stderr, "mailvault: the mailvault-cli beside %s is the mailvault command itself, not the "
			"administration program (is the installation complete?)\n", self);
		return 1;
	}
	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		snprintf(path, sizeof(path), places[i], self);
		if (access(path, X_OK) == 0) {
			setenv("MAILVAULT_FRONT_EXECED", "1", 1);
			execv(path, argv);
			fprintf(stderr, "mailvault: cannot run %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	fprintf(stderr, "mailvault: cannot find mailvault-cli in %s or %s/../libexec/mailvault (is the installation "
		"complete?)\n", self, self);
	return 1;
}

int main(int argc, char **argv)
{
	struct cli_args a;
	cli_args_parse(argc, argv, &a);
	if (a.bad || a.help || a.version || a.cmd >= argc || !CLIENT_COMMAND(argv[a.cmd]))
		return front_exec_full(argv);
	char *sock = client_socket_path(a.cfg_path, a.cfg_given);
	if (sock == NULL)
		return 1;
	const char *cmd = argv[a.cmd];
	int sub_argc = argc - a.cmd;
	char **sub_argv = argv + a.cmd;
	int rc = strcmp(cmd, "search") == 0 ? client_search(sock, a.json, sub_argc, sub_argv)
		 : strcmp(cmd, "show") == 0 ? client_show(sock, a.json, sub_argc, sub_argv)
		 : strcmp(cmd, "audit") == 0 ? client_audit(sock, a.json, sub_argc, sub_argv)
					     : client_retention(sock, a.json, sub_argc, sub_argv);
	free(sock);
	/* audit anchor and verify --anchor are mailvault-cli's (it links OpenSSL and libcurl; this program
	   stays small, because every search starts it) */
	return rc == CLIENT_RUN_FULL ? front_exec_full(argv) : rc;
}

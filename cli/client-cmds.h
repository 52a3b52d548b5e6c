/* The officers' commands, answered by mailvault-web (client-cmds.c). Each gets the socket path, whether
   --json was given, and its arguments with argv[0] the command's own name; returns the exit status. */
#ifndef MAILVAULT_CLIENT_CMDS_H
#define MAILVAULT_CLIENT_CMDS_H

#include <stdbool.h>

int client_search(const char *sock, bool json, int argc, char **argv);
int client_show(const char *sock, bool json, int argc, char **argv);
int client_audit(const char *sock, bool json, int argc, char **argv);
/* policy, matter, hold and erase (client-retention.c) */
int client_retention(const char *sock, bool json, int argc, char **argv);

/* What a command returns when mailvault-cli must run it: `audit anchor` and `audit verify --anchor`
   time-stamp and check tokens with OpenSSL and libcurl, which the front end does not load (they cost every
   search several milliseconds of start-up). */
#define CLIENT_RUN_FULL (-2)

/* audit anchor and audit verify --anchor (client-anchor.c, in mailvault-cli), argv[0] being "audit". */
int client_anchor(const char *sock, bool json, int argc, char **argv);

/* True if the command is an officer's command answered by the service. */
#define CLIENT_COMMAND(name) \
	(strcmp((name), "search") == 0 || strcmp((name), "show") == 0 || strcmp((name), "audit") == 0 || \
	 strcmp((name), "policy") == 0 || strcmp((name), "matter") == 0 || strcmp((name), "hold") == 0 || \
	 strcmp((name), "erase") == 0)

#endif

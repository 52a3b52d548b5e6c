/* The mailvault command: shared declarations of its subcommands. */
#ifndef MAILVAULT_CLI_H
#define MAILVAULT_CLI_H

#include <json-c/json.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include "config.h"

struct cli {
	struct config *cfg;
	PGconn *db;     /* connected as the configured administrator's login */
	bool json;
};

/* The administration commands: each gets the arguments after its name and returns the exit status.
   (search, show and audit are the officers' commands, answered by mailvault-web: client-cmds.h.) */
int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_account(struct cli *cli, int argc, char **argv);
int cmd_ls(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_officer(struct cli *cli, int argc, char **argv);
int cmd_index(struct cli *cli, int argc, char **argv);
int cmd_verify(struct cli *cli, int argc, char **argv);

/* Runs the subcommand argv[0] with its arguments; returns the exit status. */
int cli_run(struct cli *cli, int argc, char **argv);

/* common.c: writes an audit row (actor = the login; takes details, NULL for none); -1 after printing the
   error: the action must not proceed. */
int cli_audit(struct cli *cli, const char *action, const char *target, json_object *details);

/* Prints the [secret NAME] section an account needs (source NULL: a placeholder), each line after indent. */
void cli_print_secret_section(FILE *out, const char *indent, const char *name, const char *host, const char *user,
			      const char *source);
/* Prints "mailvault: MESSAGE" to stderr and returns 1 (for `return cli_error(...)`). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Connects cli->db if not yet connected; 0 or -1 after printing the error. */
int cli_connect(struct cli *cli);

#endif

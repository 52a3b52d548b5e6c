/* The mailvault command: shared declarations of its subcommands. */
#ifndef MAILVAULT_CLI_H
#define MAILVAULT_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>
#include "config.h"

struct cli {
	struct config *cfg;
	PGconn *db;     /* connected as the configured (administrator or officer) login */
	bool json;
};

/* Each subcommand gets the arguments after its name and returns the exit status. */
int cmd_init(struct cli *cli, int argc, char **argv);
int cmd_account(struct cli *cli, int argc, char **argv);
int cmd_ls(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_status(struct cli *cli, int argc, char **argv);
int cmd_search(struct cli *cli, int argc, char **argv);
int cmd_officer(struct cli *cli, int argc, char **argv);
int cmd_index(struct cli *cli, int argc, char **argv);

/* Writes an audit row (actor = the login); -1 after printing the error: the action must not proceed. */
int cli_audit(struct cli *cli, const char *action, const char *target, const char *details);

/* Prints "mailvault: MESSAGE" to stderr and returns 1 (for `return cli_error(...)`). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Connects cli->db if not yet connected; 0 or -1 after printing the error. */
int cli_connect(struct cli *cli);

#endif

/* The mailvault command: shared declarations of its subcommands. */
#ifndef MAILVAULT_CLI_H
#define MAILVAULT_CLI_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include "config.h"

struct xs_db;

struct cli {
	struct config *cfg;
	PGconn *db;     /* connected as the configured (administrator or officer) login */
	bool json;
	/* in a search session: the index kept open between commands, and the shard paths it was opened on */
	bool keep_index;
	struct xs_db *index;
	char **index_paths;
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
int cmd_verify(struct cli *cli, int argc, char **argv);

/* Runs the subcommand argv[0] with its arguments; returns the exit status. */
int cli_run(struct cli *cli, int argc, char **argv);

/* The search session (session.c): serves this user's searches and shows from a warm process until it is
   idle for [search] session_idle seconds, the database goes away or the configuration changes. */
int session_serve(struct cli *cli, const char *cfg_path);
/* Starts a session in the background for this configuration unless one is running; never fails the
   caller (a search without a session is only slower). */
void session_spawn(const char *cfg_path);
/* Closes the index a session kept open. */
void session_index_close(struct cli *cli);

/* Writes an audit row (actor = the login); -1 after printing the error: the action must not proceed. */
int cli_audit(struct cli *cli, const char *action, const char *target, const char *details);

/* Prints the [secret NAME] section an account needs (source NULL: a placeholder), each line after indent. */
void cli_print_secret_section(FILE *out, const char *indent, const char *name, const char *host, const char *user,
			      const char *source);
/* Prints "mailvault: MESSAGE" to stderr and returns 1 (for `return cli_error(...)`). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Connects cli->db if not yet connected; 0 or -1 after printing the error. */
int cli_connect(struct cli *cli);

#endif

/* mailvault-cli: the administration commands of mailvault, which the `mailvault` front end runs for
 * everything but the officers' commands (those go to mailvault-web). */
#include "cli.h"
#include "args.h"
#include "client.h"
#include "client-cmds.h"
#include "db.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints usage. */
static void usage(FILE *out)
{
	fprintf(out,
		"usage: mailvault [-c FILE] [--json] COMMAND [ARGS]\n"
		"Officers' commands, answered by mailvault-web on its socket for the officer whose Unix user you are\n"
		"(MAILVAULT_SOCKET, else [web] socket, else " CONFIG_DEFAULT_WEB_SOCKET "):\n"
		"  search [--json] [--count] [--limit N] [--offset N] [--sort date|-date|relevance] QUERY\n"
		"                                     e.g. from:@enron.com subject:\"gas prices\" after:2001-05-01 -has:attachment\n"
		"                                     (a query that starts with - goes after --: search -- -from:x)\n"
		"  show SERIAL [--raw] [--json]       a message (--raw: the exact stored bytes)\n"
		"  audit list [--since TIME] [--actor NAME] [--action ACTION] [--json]\n"
		"  audit verify [--anchor FILE [--tsa-ca FILE]] [--json]\n"
		"                                     every hash recomputed; with --anchor, the heads anchored in FILE too\n"
		"  audit anchor --file FILE [--tsa URL [--tsa-ca FILE]] [--json]\n"
		"                                     append the chain's head to FILE, time-stamped by an RFC 3161 authority\n"
		"  policy add NAME --keep 7y|400d|forever (--accounts A,B | --all) [--folders PATTERN] [--query Q] [--confirm]\n"
		"  policy set NAME [--keep D] [--accounts A,B | --all] [--folders P] [--query Q] [--confirm]   (admin)\n"
		"  policy list | show NAME | lock NAME | remove NAME [--confirm]   (a locked policy only grows)\n"
		"  matter add M --description TEXT | matter close M | matter list                 (legal, admin)\n"
		"  hold add NAME --matter M --reason TEXT (--accounts A,B | --all) [--from DATE] [--to DATE] [--query Q]\n"
		"  hold list [--matter M] | hold show NAME [--limit N] | hold release NAME --reason TEXT\n"
		"  erase request --query Q --reason TEXT | erase approve ID (another admin) | erase list | erase show ID\n"
		"Administration, directly on the database as its owner ([database] conninfo):\n"
		"  init                               create or migrate the schema and roles (idempotent)\n"
		"  account add NAME --host H --user U --secret SECRET [--port P] [--tls imaps|starttls]\n"
		"              [--auth plain|login|xoauth2|oauthbearer] [--ca-file F] [--interval S]\n"
		"              [--include PATTERN]... [--exclude PATTERN]...\n"
		"  account list | enable NAME | disable NAME | remove NAME\n"
		"  ls [--account A] [--folder F]      archived messages with their provenance\n"
		"  status                             per account: folders, messages, bytes, sync, errors; index lag\n"
		"  officer add NAME (--accounts A,B | --all) [--role auditor|legal|admin] [--unix-user USER]\n"
		"              [--password-file FILE]\n"
		"  officer set NAME [--accounts A,B | --all] [--role R] [--unix-user USER | --no-unix-user]\n"
		"  officer passwd NAME [--password-file FILE] | officer totp NAME [--reset | --off]\n"
		"  officer token add NAME [--expires 90d] [--label TEXT] | token list [NAME] | token revoke ID\n"
		"  officer list | enable NAME | disable NAME | remove NAME\n"
		"  index verify | index rebuild       compare the index with the archive; re-index everything\n"
		"  verify [--sample N | --all]        hash every stored message again (or N at random); report any change\n"
		"SECRET names a [secret SECRET] section of the configuration (source = file:PATH, env:NAME or\n"
		"cmd:COMMAND, and the host and user it may be sent to); secrets are never stored in the database.\n"
		"Folder patterns are IMAP LIST patterns: * and %% are wildcards, everything else is literal.\n");
}

/* The subcommands. */
static const struct cli_command {
	const char *name;
	int (*fn)(struct cli *, int, char **);
} cli_commands[] = {
	{ "init", cmd_init }, { "account", cmd_account }, { "ls", cmd_ls },
	{ "status", cmd_status }, { "officer", cmd_officer },
	{ "index", cmd_index }, { "verify", cmd_verify },
};

/* The subcommand called name, or NULL. */
static const struct cli_command *cli_command_find(const char *name)
{
	for (size_t k = 0; k < sizeof(cli_commands) / sizeof(cli_commands[0]); k++)
		if (strcmp(name, cli_commands[k].name) == 0)
			return &cli_commands[k];
	return NULL;
}

int cli_run(struct cli *cli, int argc, char **argv)
{
	const struct cli_command *c = cli_command_find(argv[0]);
	if (c == NULL) {
		cli_error("unknown command '%s' (see mailvault --help)", argv[0]);
		return 2;
	}
	return c->fn(cli, argc - 1, argv + 1);
}

int main(int argc, char **argv)
{
	/* the front end's mark that it ran this program is for this program alone: a command it runs in turn
	   (a secret's command) that runs `mailvault` must not be taken for a loop */
	unsetenv("MAILVAULT_FRONT_EXECED");
	struct cli cli = { 0 };
	struct cli_args a;
	cli_args_parse(argc, argv, &a);
	if (a.help) {
		usage(stdout);
		return 0;
	}
	if (a.version) {
		printf("mailvault %s\n", MAILVAULT_VERSION);
		return 0;
	}
	if (a.bad || a.cmd >= argc) {
		usage(stderr);
		return 2;
	}
	/* the front end hands over audit anchor and audit verify --anchor: a client of the socket, as it is */
	if (strcmp(argv[a.cmd], "audit") == 0) {
		char *sock = client_socket_path(a.cfg_path, a.cfg_given);
		if (sock == NULL)
			return 1;
		int rc = client_anchor(sock, a.json, argc - a.cmd, argv + a.cmd);
		free(sock);
		return rc;
	}
	if (cli_command_find(argv[a.cmd]) == NULL) {
		cli_error("unknown command '%s' (see mailvault --help)", argv[a.cmd]);
		return 2;
	}
	char *err;
	cli.cfg = config_load(a.cfg_path, &err);
	if (cli.cfg == NULL) {
		cli_error("%s", err);
		free(err);
		return 1;
	}
	log_init("mailvault", cli.cfg->log_level, false);
	cli.json = a.json;
	if (cli.cfg->search_session_idle_line)
		fprintf(stderr, "mailvault: warning: %s:%u: [search] session_idle no longer does anything (mailvault-web "
			"keeps the index open for every officer); remove the line\n", cli.cfg->path,
			cli.cfg->search_session_idle_line);
	int rc = cli_run(&cli, argc - a.cmd, argv + a.cmd);
	db_close(&cli.db);
	config_free(&cli.cfg);
	return rc;
}

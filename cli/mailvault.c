/* mailvault: the command-line front end for administrators and compliance officers. */
#include "cli.h"
#include "args.h"
#include "session-proto.h"
#include "db.h"
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints an error the user can act on. */
int cli_error(const char *fmt, ...)
{
	va_list ap;
	fputs("mailvault: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Lazily connects with the configured login. */
int cli_connect(struct cli *cli)
{
	const char *err;
	if (cli->db != NULL)
		return 0;
	cli->db = db_connect(cli->cfg->conninfo, "mailvault", NULL, &err);
	if (cli->db == NULL) {
		cli_error("%s", err);
		return -1;
	}
	return 0;
}

/* Prints usage. */
static void usage(FILE *out)
{
	fprintf(out,
		"usage: mailvault [-c FILE] [--json] COMMAND [ARGS]\n"
		"  init                               create or migrate the schema and roles (idempotent)\n"
		"  account add NAME --host H --user U --secret SECRET [--port P] [--tls imaps|starttls]\n"
		"              [--auth plain|login|xoauth2|oauthbearer] [--ca-file F] [--interval S]\n"
		"              [--include PATTERN]... [--exclude PATTERN]...\n"
		"  account list | enable NAME | disable NAME | remove NAME\n"
		"  ls [--account A] [--folder F]      archived messages with their provenance\n"
		"  show SERIAL [--raw]                a message (--raw: the exact stored bytes)\n"
		"  status                             per account: folders, messages, bytes, sync, errors; index lag\n"
		"  search [--json] [--count] [--limit N] [--offset N] [--sort date|-date|relevance] QUERY\n"
		"                                     e.g. from:@enron.com subject:\"gas prices\" after:2001-05-01 -has:attachment\n"
		"                                     (a query that starts with - goes after --: search -- -from:x)\n"
		"  officer add ROLE (--accounts A,B | --all) | officer list | officer remove ROLE\n"
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
	{ "init", cmd_init }, { "account", cmd_account }, { "ls", cmd_ls }, { "show", cmd_show },
	{ "status", cmd_status }, { "search", cmd_search }, { "officer", cmd_officer },
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
	bool agent = strcmp(argv[a.cmd], "session-agent") == 0;
	if (!agent && cli_command_find(argv[a.cmd]) == NULL) {
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
	int rc;
	if (agent) {
		rc = session_serve(&cli, a.cfg_path);
	} else {
		/* a search or show started here warms a session for the next one (mailvault.conf [search]) */
		if (SESSION_COMMAND(argv[a.cmd]) && cli.cfg->session_idle > 0)
			session_spawn(a.cfg_path);
		rc = cli_run(&cli, argc - a.cmd, argv + a.cmd);
	}
	session_index_close(&cli);
	db_close(&cli.db);
	config_free(&cli.cfg);
	return rc;
}

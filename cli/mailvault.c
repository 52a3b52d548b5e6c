/* mailvault: the command-line front end for administrators and compliance officers. */
#include "cli.h"
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
		"  account add NAME --host H --user U --secret REF [--port P] [--tls imaps|starttls]\n"
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
		"REF is file:PATH, env:NAME or cmd:COMMAND; secrets are never stored in the database.\n");
}

int main(int argc, char **argv)
{
	const char *cfg_path = CONFIG_DEFAULT_PATH;
	struct cli cli = { 0 };
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			cfg_path = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			cli.json = true;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("mailvault %s\n", MAILVAULT_VERSION);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	static const struct { const char *name; int (*fn)(struct cli *, int, char **); } cmds[] = {
		{ "init", cmd_init }, { "account", cmd_account }, { "ls", cmd_ls }, { "show", cmd_show },
		{ "status", cmd_status }, { "search", cmd_search }, { "officer", cmd_officer },
		{ "index", cmd_index },
	};
	for (size_t k = 0; k < sizeof(cmds) / sizeof(cmds[0]); k++) {
		if (strcmp(argv[i], cmds[k].name) != 0)
			continue;
		char *err;
		cli.cfg = config_load(cfg_path, &err);
		if (cli.cfg == NULL) {
			cli_error("%s", err);
			free(err);
			return 1;
		}
		log_init("mailvault", cli.cfg->log_level, false);
		/* --json may also come after the subcommand */
		for (int j = i + 1; j < argc; j++)
			if (strcmp(argv[j], "--json") == 0)
				cli.json = true;
		int rc = cmds[k].fn(&cli, argc - i - 1, argv + i + 1);
		db_close(&cli.db);
		config_free(&cli.cfg);
		return rc;
	}
	cli_error("unknown command '%s' (see mailvault --help)", argv[i]);
	return 2;
}

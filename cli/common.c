/* What every administration command shares: errors, the database connection, the audit row. */
#include "cli.h"
#include "db.h"

#include <stdarg.h>
#include <stdio.h>

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

int cli_audit(struct cli *cli, const char *action, const char *target, json_object *details)
{
	const char *err;
	const char *p[] = { action, target, details ? json_object_to_json_string_ext(details, JSON_C_TO_STRING_PLAIN) : "{}" };
	int rc = db_exec(cli->db, "SELECT mailvault_audit($1, $2, $3::jsonb)", 3, p, &err);
	json_object_put(details);
	if (rc < 0) {
		/* an action that cannot be audited is not performed */
		cli_error("cannot write the audit record: %s", err);
		return -1;
	}
	return 0;
}

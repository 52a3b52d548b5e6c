/* mailvault init: applies the embedded schema migrations in order, once each, under a lock. */
#include "cli.h"
#include "db.h"
#include "migrations.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs a migration's SQL text (several statements; the text is ours, not user input). */
static int init_run_sql(PGconn *db, const char *sql, const char **error_r)
{
	PGresult *res = PQexec(db, sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
		*error_r = db_error_set("migration failed", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

/* Creates or migrates the schema. Idempotent: a second run applies nothing. */
int cmd_init(struct cli *cli, int argc, char **argv)
{
	const char *err;
	(void)argv;
	if (argc > 0 && !(argc == 1 && strcmp(argv[0], "--json") == 0))
		return cli_error("usage: mailvault init");
	if (cli_connect(cli) < 0)
		return 1;
	PGconn *db = cli->db;
	/* NOTICEs such as "already exists, skipping" are noise for the operator */
	if (db_exec(db, "SET client_min_messages = warning", 0, NULL, &err) < 0 || db_begin(db, &err) < 0 ||
	    /* one init at a time, even from several hosts */
	    db_exec(db, "SELECT pg_advisory_xact_lock(727171)", 0, NULL, &err) < 0 ||
	    db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
		    "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())", 0, NULL, &err) < 0)
		goto fail;
	int applied = 0, current = 0;
	for (const struct migration *m = migrations; m->name != NULL; m++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", m->version);
		const char *p[] = { v, m->name };
		PGresult *res = db_query(db, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, p, &err);
		if (res == NULL)
			goto fail;
		int have = PQntuples(res);
		PQclear(res);
		if (!have) {
			if (init_run_sql(db, m->sql, &err) < 0 ||
			    db_exec(db, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, p, &err) < 0)
				goto fail;
			printf("applied %s\n", m->name);
			applied++;
		}
		current = m->version;
	}
	if (db_commit(db, &err) < 0)
		goto fail;
	/* the administrator may act as each program (SET ROLE) for a single-login setup */
	PGresult *res = PQexec(db, "GRANT mailvault_ingest, mailvault_indexer, mailvault_retention TO CURRENT_USER");
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		fprintf(stderr, "mailvault: note: could not grant the program roles to the current login (%s); "
			"give each program its own login in the [database] section\n", PQresultErrorMessage(res));
	PQclear(res);
	printf("schema at version %d (%d migration%s applied)\n", current, applied, applied == 1 ? "" : "s");
	return 0;
fail:
	db_rollback(db);
	return cli_error("init: %s", err);
}

/* mailvault init: applies the embedded schema migrations in order, once each, under a lock. */
#include "cli.h"
#include "db.h"
#include "mailbox.h"
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

/* Hands every table, sequence and function of the schema to mailvault_owner, a role no program logs in
   as (migrations create them as the login that runs init); what an extension installed stays its own. */
static const char init_sql_take_ownership[] =
	"DO $$\n"
	"DECLARE r record; owner oid := 'mailvault_owner'::regrole;\n"
	"BEGIN\n"
	"  FOR r IN SELECT c.oid::regclass AS obj FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
	"           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm') AND c.relowner <> owner\n"
	"           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass\n"
	"                           AND d.objid = c.oid AND d.deptype = 'e') LOOP\n"
	"    EXECUTE format('ALTER TABLE %s OWNER TO mailvault_owner', r.obj);\n"
	"  END LOOP;\n"
	"  FOR r IN SELECT c.oid::regclass AS obj FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace\n"
	"           WHERE n.nspname = 'public' AND c.relkind = 'S' AND c.relowner <> owner\n"
	"           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass\n"
	"                           AND d.objid = c.oid AND d.deptype = 'e') LOOP\n"
	"    EXECUTE format('ALTER SEQUENCE %s OWNER TO mailvault_owner', r.obj);\n"
	"  END LOOP;\n"
	"  FOR r IN SELECT p.oid::regprocedure AS obj FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace\n"
	"           WHERE n.nspname = 'public' AND p.proowner <> owner\n"
	"           AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass\n"
	"                           AND d.objid = p.oid AND d.deptype = 'e') LOOP\n"
	"    EXECUTE format('ALTER FUNCTION %s OWNER TO mailvault_owner', r.obj);\n"
	"  END LOOP;\n"
	"END $$";

/* Folder names become the names people read (modified UTF-7 decoded); the messages of a renamed folder
   are queued for re-indexing so folder: searches find them under the new name. */
static int init_folder_names(PGconn *db, const char **error_r)
{
	PGresult *res = PQexecParams(db, "SELECT id, server_name, name FROM folders", 0, NULL, NULL, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK) {
		*error_r = db_error_set("cannot read folder names", PQresultErrorMessage(res));
		PQclear(res);
		return -1;
	}
	int renamed = 0, rc = 0;
	for (int i = 0; i < PQntuples(res) && rc == 0; i++) {
		char *shown = mailbox_display_name((const unsigned char *)PQgetvalue(res, i, 1), (size_t)PQgetlength(res, i, 1));
		char *old = xstrndup(PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2));
		if (strcmp(shown, old) != 0) {
			char id[24];
			uint64_t v = 0;
			/* binary results: the id is a big-endian int8 */
			for (int k = 0; k < 8; k++)
				v = (v << 8) | (unsigned char)PQgetvalue(res, i, 0)[k];
			snprintf(id, sizeof(id), "%llu", (unsigned long long)v);
			const char *p[] = { id, shown };
			rc = db_exec(db, "UPDATE folders SET name = $2 WHERE id = $1", 2, p, error_r);
			if (rc == 0)
				rc = db_exec(db, "INSERT INTO index_queue (serial, op) SELECT DISTINCT message_serial, 'reindex' "
					     "FROM locations WHERE folder_id = $1", 1, p, error_r);
			if (rc == 0) {
				printf("folder %s is now shown as %s\n", util_term(old), util_term(shown));
				renamed++;
			}
		}
		free(shown);
		free(old);
	}
	PQclear(res);
	return rc;
}

/* Folder patterns became IMAP LIST wildcards: says which stored ones now mean something else. */
static void init_warn_patterns(PGconn *db)
{
	const char *err;
	PGresult *res = db_query(db, "SELECT a.name, p FROM accounts a, unnest(a.include_patterns || a.exclude_patterns) p "
				 "ORDER BY 1, 2", 0, NULL, &err);
	if (res == NULL)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *pat = PQgetvalue(res, i, 1);
		if (mailbox_pattern_was_glob(pat))
			fprintf(stderr, "mailvault: warning: account %s: the folder pattern '%s' now follows IMAP LIST (only * "
				"and %% are wildcards): its ?, [ ] and \\ are literal characters; see `mailvault account "
				"list` for what it matches\n", util_term(PQgetvalue(res, i, 0)), util_term(pat));
	}
	PQclear(res);
}

/* Officers of earlier versions were database logins; they are kept, disabled, until the administrator
   says how they log in to mailvault-web. Prints the steps for each. */
static void init_legacy_officers(PGconn *db)
{
	const char *err;
	PGresult *res = db_query(db, "SELECT name, legacy_login FROM officers WHERE legacy_login IS NOT NULL AND NOT enabled "
				 "AND password_hash IS NULL AND unix_user IS NULL ORDER BY name", 0, NULL, &err);
	if (res == NULL)
		return;
	for (int i = 0; i < PQntuples(res); i++) {
		const char *n = util_term(PQgetvalue(res, i, 0));
		printf("officer %s was the database login %s, which no longer reads the archive (its grants are gone); "
		       "officers now use mailvault-web. To let them in again:\n"
		       "  mailvault officer set %s --unix-user USER     (their Unix user, for the mailvault command)\n"
		       "  mailvault officer passwd %s                   (a password, for the API and the web)\n"
		       "  mailvault officer enable %s\n", n, util_term(PQgetvalue(res, i, 1)), n, n, n);
	}
	PQclear(res);
}

/* Copies [retention] min_age and release_grace into retention_settings, where the disposal functions read
   them (no program passes its own); says so when they changed. */
static int init_retention_settings(struct cli *cli, const char **error_r)
{
	char min_age[48], grace[48];
	const char *p[] = { config_interval_text(cli->cfg->retention_min_age, min_age, sizeof(min_age)),
			    config_interval_text(cli->cfg->retention_release_grace, grace, sizeof(grace)) };
	/* compared as text: 1 year and 360 days are equal intervals to PostgreSQL, not to a reader */
	PGresult *res = db_query(cli->db,
		"UPDATE retention_settings s SET min_age = $1::interval, release_grace = $2::interval, changed_at = now() "
		"FROM (SELECT min_age::text AS min_age, release_grace::text AS release_grace FROM retention_settings "
		"WHERE id = 1) o WHERE s.id = 1 AND (s.min_age::text IS DISTINCT FROM $1::interval::text OR "
		"s.release_grace::text IS DISTINCT FROM $2::interval::text) "
		"RETURNING o.min_age, s.min_age::text, o.release_grace, s.release_grace::text", 2, p, error_r);
	if (res == NULL)
		return -1;
	if (PQntuples(res) == 1) {
		if (strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)) != 0)
			printf("retention min_age is now %s (was %s)\n", PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 0));
		if (strcmp(PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3)) != 0)
			printf("retention release_grace is now %s (was %s)\n", PQgetvalue(res, 0, 3), PQgetvalue(res, 0, 2));
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
	bool patterns_changed = false;
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
			patterns_changed |= m->version == 4;
		}
		current = m->version;
	}
	if (init_folder_names(db, &err) < 0 || db_exec(db, init_sql_take_ownership, 0, NULL, &err) < 0 ||
	    init_retention_settings(cli, &err) < 0 || db_commit(db, &err) < 0)
		goto fail;
	if (patterns_changed)
		init_warn_patterns(db);
	init_legacy_officers(db);
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

/* PostgreSQL access through libpq: connecting with a program's role, parameterised queries only. */
#include "db.h"
#include "log.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static __thread char db_errbuf[2048];

/* Formats "prefix: detail" into the thread's error buffer, on one line. */
const char *db_error_set(const char *prefix, const char *detail)
{
	snprintf(db_errbuf, sizeof(db_errbuf), "%s%s%s", prefix, detail && *detail ? ": " : "", detail ? detail : "");
	for (char *p = db_errbuf; *p; p++)
		if (*p == '\n')
			*p = (p[1] == '\0') ? '\0' : ' ';
	return db_errbuf;
}

/* Connects, names the session and drops to the program's role. */
PGconn *db_connect(const char *conninfo, const char *application, const char *role, const char **error_r)
{
	const char *keys[] = { "dbname", "fallback_application_name", "client_encoding", NULL };
	const char *vals[] = { conninfo, application, "UTF8", NULL };
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
		*error_r = db_error_set("cannot connect to PostgreSQL", conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return NULL;
	}
	if (role != NULL) {
		/* least privilege: a program that logs in as someone who can become the archive's owner could
		   undo what the database enforces, if it were ever taken over */
		PGresult *who = PQexec(conn, "SELECT session_user, r.rolsuper OR CASE WHEN EXISTS (SELECT 1 FROM pg_roles "
				       "WHERE rolname = 'mailvault_owner') THEN pg_has_role(session_user, 'mailvault_owner', "
				       "'MEMBER') ELSE false END FROM pg_roles r WHERE r.rolname = session_user");
		if (PQresultStatus(who) == PGRES_TUPLES_OK && PQntuples(who) == 1 && strcmp(PQgetvalue(who, 0, 1), "t") == 0)
			log_warn("%s logs in as %s, who can act as the archive's owner: give it a login of its own that is "
				 "only a member of %s (least privilege)", application, PQgetvalue(who, 0, 0), role);
		PQclear(who);
		char *sql = xasprintf("SET ROLE %s", role); /* role is a compile-time constant, never user input */
		int r = db_exec(conn, sql, 0, NULL, error_r);
		free(sql);
		if (r < 0) {
			*error_r = db_error_set("cannot switch to the program's database role (grant it to the login role)",
						*error_r);
			PQfinish(conn);
			return NULL;
		}
	}
	return conn;
}

/* Finishes the connection. */
void db_close(PGconn **conn)
{
	if (*conn) {
		PQfinish(*conn);
		*conn = NULL;
	}
}

/* A result that is not a success becomes NULL with *error_r. */
static PGresult *db_result(PGconn *conn, PGresult *res, const char **error_r)
{
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
		*error_r = db_error_set("database error", res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* Executes with parameters; the only way SQL is run with values in it. */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char **error_r)
{
	return db_result(conn, PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0), error_r);
}

/* True if res failed with the SQLSTATE state. */
static bool db_failed_with(const PGresult *res, const char *state)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	return s != NULL && strcmp(s, state) == 0;
}

PGresult *db_query_named(PGconn *conn, const char *name, const char *sql, int nparams, const char *const *params,
			 const char **error_r)
{
	/* a failed statement would abort the caller's transaction: there, no prepared statement */
	if (PQtransactionStatus(conn) != PQTRANS_IDLE)
		return db_query(conn, sql, nparams, params, error_r);
	PGresult *res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
	/* 26000: not prepared on this connection yet (or it was deallocated); 0A000: prepared before a change
	   of the tables it reads ("cached plan must not change result type"): prepared again */
	bool stale = db_failed_with(res, "0A000");
	if (db_failed_with(res, "26000") || stale) {
		PQclear(res);
		char dealloc[128];
		snprintf(dealloc, sizeof(dealloc), "DEALLOCATE %s", name);
		if (stale)
			PQclear(PQexec(conn, dealloc));
		PGresult *prep = PQprepare(conn, name, sql, nparams, NULL);
		bool prepared = prep != NULL && PQresultStatus(prep) == PGRES_COMMAND_OK;
		PQclear(prep);
		res = prepared ? PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0) : NULL;
		/* a pooler may run the next statement on another server connection, which lacks it again */
		if (res == NULL || db_failed_with(res, "26000")) {
			PQclear(res);
			return db_query(conn, sql, nparams, params, error_r);
		}
	}
	return db_result(conn, res, error_r);
}

int db_query_bool(PGconn *conn, const char *sql, int nparams, const char *const *params, const char **error_r)
{
	PGresult *res = db_query(conn, sql, nparams, params, error_r);
	if (res == NULL)
		return -1;
	int v = PQntuples(res) == 1 && PQnfields(res) == 1 && !PQgetisnull(res, 0, 0)
		? strcmp(PQgetvalue(res, 0, 0), "t") == 0 : -1;
	PQclear(res);
	if (v < 0)
		*error_r = db_error_set("database error", "the statement did not answer one boolean");
	return v;
}

/* Executes and discards the result. */
int db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, const char **error_r)
{
	PGresult *res = db_query(conn, sql, nparams, params, error_r);
	if (res == NULL)
		return -1;
	PQclear(res);
	return 0;
}

/* Starts a transaction. */
int db_begin(PGconn *conn, const char **error_r)
{
	return db_exec(conn, "BEGIN", 0, NULL, error_r);
}

/* Commits; with synchronous_commit on this is the durability point. */
int db_commit(PGconn *conn, const char **error_r)
{
	return db_exec(conn, "COMMIT", 0, NULL, error_r);
}

/* Rolls back, ignoring errors (the connection may already be gone). */
void db_rollback(PGconn *conn)
{
	PGresult *res = PQexec(conn, "ROLLBACK");
	PQclear(res);
}

/* Reports a dead connection. */
bool db_conn_lost(PGconn *conn)
{
	return conn == NULL || PQstatus(conn) != CONNECTION_OK;
}

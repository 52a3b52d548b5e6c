/* PostgreSQL access through libpq: connecting with a program's role, parameterised queries only. */
#ifndef MAILVAULT_DB_H
#define MAILVAULT_DB_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Connects with conninfo and, if role is not NULL, switches to that role (SET ROLE) so the program
   runs with its least privilege. Returns the connection or NULL with *error_r (a message valid until
   the next db_* call in this thread; it never contains the conninfo's password). */
PGconn *db_connect(const char *conninfo, const char *application, const char *role, const char **error_r);
/* Closes and sets *conn to NULL. */
void db_close(PGconn **conn);

/* Runs a parameterised statement with text parameters (NULL entries are SQL NULL). Returns a result
   the caller frees with PQclear(), or NULL with *error_r on any failure. */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params, const char **error_r);
/* Same for statements whose rows are not needed; 0 on success, -1 with *error_r. */
int db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params, const char **error_r);
/* Runs sql as db_query does, as the connection's prepared statement called name: parsed and planned once
   per connection for statements run on every request. The statement is prepared when the connection does
   not have it yet (or lost it); where that cannot hold (inside a transaction block, or behind a pooler
   that moves statements between server connections) sql is run unprepared. */
PGresult *db_query_named(PGconn *conn, const char *name, const char *sql, int nparams, const char *const *params,
			 const char **error_r);
/* Runs a statement that answers one boolean: 1 true, 0 false, -1 with *error_r (an error, or not one
   boolean). */
int db_query_bool(PGconn *conn, const char *sql, int nparams, const char *const *params, const char **error_r);
/* Runs BEGIN/COMMIT/ROLLBACK; 0 or -1 with *error_r. */
int db_begin(PGconn *conn, const char **error_r);
int db_commit(PGconn *conn, const char **error_r);
void db_rollback(PGconn *conn);
/* True when the connection is broken and should be re-established. */
bool db_conn_lost(PGconn *conn);
/* SQL that formats a timestamptz column as ISO 8601 in UTC, e.g. 2001-05-14T23:39:00Z. */
#define ISO_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* Stores a message in this thread's error buffer and returns it (for *error_r). */
const char *db_error_set(const char *prefix, const char *detail);

#endif

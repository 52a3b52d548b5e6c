/* IMAP client connection over OpenSSL: TLS with verification, STARTTLS, SASL login, pipelined commands. */
#ifndef MAILVAULT_IMAP_CONN_H
#define MAILVAULT_IMAP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"
#include "imap-parser.h"

enum imap_tls_mode { IMAP_TLS_IMAPS, IMAP_TLS_STARTTLS };
enum imap_auth { IMAP_AUTH_PLAIN, IMAP_AUTH_LOGIN, IMAP_AUTH_XOAUTH2, IMAP_AUTH_OAUTHBEARER };

struct imap_conn_settings {
	const char *host;
	unsigned port;
	enum imap_tls_mode tls;
	const char *ca_file;       /* NULL: the system trust store */
	const char *username;
	const char *secret;        /* password or OAuth token; never logged */
	enum imap_auth auth;
	unsigned timeout_secs;     /* network silence before giving up */
	size_t max_literal;        /* larger literals are skipped (arg->oversize) */
};

enum imap_conn_status {
	IMAP_CONN_OK,
	IMAP_CONN_NO,      /* the server refused the command */
	IMAP_CONN_BAD,     /* the server did not understand it */
	IMAP_CONN_ERROR,   /* network, TLS or protocol failure: the connection is unusable */
};

struct imap_conn;

/* Why imap_conn_open() failed, beyond its message. */
struct imap_open_failure {
	bool auth_failed;          /* the server rejected the credentials, as opposed to a network or TLS failure */
	unsigned backoff_ms;       /* the server asked to be left alone this long (Suggested Backoff Time), or 0 */
};

/* Connects, secures (IMAPS or STARTTLS, certificate and host name verified, TLS 1.2+), logs in and
   refreshes capabilities. Returns the connection, or NULL with *error_r (malloc'd, caller frees;
   never contains the secret) and *failure_r (may be NULL) filled in. */
struct imap_conn *imap_conn_open(const struct imap_conn_settings *settings, char **error_r,
				 struct imap_open_failure *failure_r);
/* Sends LOGOUT (best effort), closes and frees; sets *conn to NULL. */
void imap_conn_close(struct imap_conn **conn);
/* True if the server advertised capability cap (case-insensitive, e.g. "LIST-STATUS"). */
bool imap_conn_has_capability(const struct imap_conn *conn, const char *cap);

/* Called for each untagged response read while waiting for a command to complete. */
typedef void imap_untagged_cb(const struct imap_response *resp, void *ctx);

/* Sends one command line (without tag and CRLF); returns its tag number, or 0 if the connection
   failed. At most IMAP_CONN_MAX_INFLIGHT commands may be outstanding. */
#define IMAP_CONN_MAX_INFLIGHT 8
unsigned imap_conn_send(struct imap_conn *conn, const char *command);
/* Reads until command tag completes, passing untagged responses to cb (may be NULL). *text_r gets the
   completion text or the error (owned by conn, valid until the next call). */
enum imap_conn_status imap_conn_wait(struct imap_conn *conn, unsigned tag, imap_untagged_cb *cb, void *ctx,
				     const char **text_r);
/* imap_conn_send + imap_conn_wait. */
enum imap_conn_status imap_conn_run(struct imap_conn *conn, const char *command, imap_untagged_cb *cb,
				    void *ctx, const char **text_r);
/* True once the connection is unusable (network, TLS or protocol failure, or BYE). */
bool imap_conn_broken(const struct imap_conn *conn);
/* Appends a mailbox name (the server's exact bytes) as a command argument: a quoted string, or a
   non-synchronizing literal for 8-bit names when the server offers LITERAL+ or LITERAL-. -1 if the name
   cannot be sent (NUL, CR or LF). */
int imap_conn_append_mailbox(const struct imap_conn *conn, struct buf *b, const unsigned char *name, size_t len);
/* Milliseconds the server asked us to back off (Office 365 "Suggested Backoff Time", at most an hour),
   0 if none. */
unsigned imap_conn_backoff_ms(const struct imap_conn *conn);

/* Appends s as an IMAP quoted string; -1 if it cannot be quoted (CR, LF or NUL). */
int imap_quote(struct buf *b, const char *s);

#endif

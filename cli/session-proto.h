/* The few bytes between `mailvault` and a user's search session, over a Unix socket.
 *
 * The front end sends one request: a 4-byte length (host order) and that many bytes of payload, the
 * session key text and then the command line's arguments (argv[1] on), each ending in a NUL. The same
 * sendmsg carries the caller's standard output and error (SCM_RIGHTS): the session writes the results
 * there itself. The session answers 'F' before doing anything when the caller must run the command
 * itself; otherwise 'S', ready to start. The caller answers 'G' (go) if it still wants the session to run
 * it, or hangs up when it got tired of waiting for a busy session and runs the command itself; then, once
 * the command has run, the session sends 'R' and the exit status (one byte). */
#ifndef MAILVAULT_SESSION_PROTO_H
#define MAILVAULT_SESSION_PROTO_H

#define SESSION_MAX_REQUEST (1024 * 1024)
#define SESSION_REPLY_STARTED 'S'
#define SESSION_REPLY_DONE 'R'
#define SESSION_REQUEST_GO 'G'
/* how long a caller waits for a busy session's 'S' before running the command itself */
#define SESSION_WAIT_MS 1000
#define SESSION_REPLY_FALLBACK 'F'

/* The commands a session runs: read-only looks at the archive, each audited by the session. */
#define SESSION_COMMAND(name) (strcmp((name), "search") == 0 || strcmp((name), "show") == 0)

#endif

/* Naming a user's search session: which warm process serves which caller, and the socket I/O both sides
 * share (libc only, for the front end).
 *
 * A session serves one Unix user with one configuration as that user would run it: the key covers the
 * user id, the configuration file (its real path and identity: device, inode, size, modification time)
 * and every PG* environment variable (libpq reads the login from them). Any difference means another
 * session, so a session never answers with a login or settings its caller would not have used. */
#ifndef MAILVAULT_SESSION_KEY_H
#define MAILVAULT_SESSION_KEY_H

#include <stdbool.h>
#include <stddef.h>

struct session_key {
	char *key;       /* the full key text; the session compares it byte for byte */
	char *dir;       /* the user's private folder of session sockets */
	char *sock_path; /* the session's socket in dir */
	char *lock_path; /* held (flock) by the live session */
};

/* Computes the key for the configuration at cfg_path. Returns 0, or -1 with *error_r (static text) when
   no session can be used (e.g. the configuration cannot be found or the socket path would be too long). */
int session_key_make(const char *cfg_path, struct session_key *k, const char **error_r);
/* Checks that dir exists, is a directory owned by this user and closed to everyone else; with create,
   makes it first (mode 0700). Returns 0, or -1 with *error_r. */
int session_key_check_dir(const char *dir, bool create, const char **error_r);
/* Frees the strings. */
void session_key_free(struct session_key *k);

/* Sends all of buf on a socket (a peer that went away is -1, not a SIGPIPE); 0 or -1. */
int session_send_all(int fd, const void *buf, size_t len);
/* Reads exactly len bytes; -1 on error, end of file or timeout. */
int session_recv_all(int fd, void *buf, size_t len);

#endif

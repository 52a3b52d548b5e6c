/* The mailvault command as a client of mailvault-web: HTTP/1.1 over the service's Unix socket, where the
   kernel tells the service who is asking (SO_PEERCRED). */
#ifndef MAILVAULT_CLIENT_H
#define MAILVAULT_CLIENT_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* The socket: $MAILVAULT_SOCKET, else [web] socket of the configuration (cfg_path, when given with -c or
   readable at the default place), else /run/mailvault/web.sock. Returns a string the caller frees, or
   NULL after printing why (a configuration given with -c that cannot be read). */
char *client_socket_path(const char *cfg_path, bool cfg_given);

/* One GET of path (already URL-encoded) on the socket. Returns the HTTP status with the body in *body,
   or -1 after printing why the service could not be reached. */
int client_get(const char *socket_path, const char *path, struct buf *body);

/* One request of method on path with an optional JSON body (POST); like client_get otherwise. */
int client_request(const char *socket_path, const char *method, const char *path, const char *json_body,
		   struct buf *body);

/* Appends s percent-encoded for a query string. */
void client_url_encode(struct buf *b, const char *s);

/* The "error" member of a JSON error body (or the body itself, or a generic text); valid while body is. */
const char *client_error_text(json_object *parsed, const struct buf *body);

/* Prints "mailvault: [what: ]MESSAGE" to stderr and returns rc. */
int client_fail(int rc, const char *what, const char *msg);

/* GETs path and parses a JSON answer. Returns the HTTP status (*out set for JSON bodies) or -1. */
int client_json(const char *sock, const char *path, json_object **out, struct buf *body);

/* A member's string, or NULL. */
const char *client_member(json_object *o, const char *key);

/* Maps a refusal to the exit status and message the commands always gave (2 for a malformed request). */
int client_refused(int status, json_object *j, const struct buf *body, const char *what);

/* Reads audit verify's options (argv[0] is "verify"): 0, or -1 after printing the usage. */
int client_verify_options(int argc, char **argv, const char **anchor, const char **tsa_ca);

#endif

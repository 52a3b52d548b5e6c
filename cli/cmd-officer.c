/* mailvault officer ...: the administrator manages the people mailvault-web serves. Officers are not
 * database logins: each has a role, a scope (accounts), and ways to authenticate to the service (a Unix
 * user on its socket, a password with an optional TOTP second factor, API tokens). Passwords are kept as
 * Argon2id hashes, tokens as SHA-256; both are shown once and never again. Every change is audited. */
#include "cli.h"
#include "credential.h"
#include "db.h"
#include "pg-array.h"
#include "json-out.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* A new password: from FILE's first line ("-": standard input), or typed twice at the terminal.
   NULL after printing why; the caller wipes and frees it. */
static char *officer_read_password(const char *file)
{
	char line[CREDENTIAL_PASSWORD_MAX + 2];
	if (file == NULL && !isatty(STDIN_FILENO)) {
		cli_error("give the password with --password-file FILE (or - for standard input), or run at a terminal");
		return NULL;
	}
	if (file != NULL) {
		FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
		if (f == NULL) {
			cli_error("%s: %s", file, strerror(errno));
			return NULL;
		}
		char *got = fgets(line, sizeof(line), f);
		if (f != stdin)
			fclose(f);
		if (got == NULL) {
			cli_error("%s: no password in it", file);
			return NULL;
		}
	} else {
		char again[sizeof(line)];
		struct termios old, quiet;
		tcgetattr(STDIN_FILENO, &old);
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
		fputs("New password: ", stderr);
		char *a = fgets(line, sizeof(line), stdin);
		fputs("\nAgain: ", stderr);
		char *b = a ? fgets(again, sizeof(again), stdin) : NULL;
		fputc('\n', stderr);
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		bool same = a && b && strcmp(line, again) == 0;
		explicit_bzero(again, sizeof(again));
		if (!same) {
			explicit_bzero(line, sizeof(line));
			cli_error("the passwords differ");
			return NULL;
		}
	}
	line[strcspn(line, "\r\n")] = '\0';
	const char *weak = credential_password_weak(line);
	if (weak != NULL) {
		explicit_bzero(line, sizeof(line));
		cli_error("%s", weak);
		return NULL;
	}
	char *pw = xstrdup(line);
	explicit_bzero(line, sizeof(line));
	return pw;
}

/* Checks a role's name. */
static bool officer_role_valid(const char *role)
{
	return strcmp(role, "auditor") == 0 || strcmp(role, "legal") == 0 || strcmp(role, "admin") == 0;
}

/* Sets the officer's accounts (all, or the comma-separated names, each of which must exist). */
static int officer_set_scope(struct cli *cli, const char *name, bool all, const char *accounts, const char **err)
{
	struct pg_array arr = PG_ARRAY_INIT;
	if (accounts != NULL) {
		char *copy = xstrdup(accounts), *save = NULL;
		for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			pg_array_add_str(&arr, tok);
		free(copy);
	}
	const char *q[] = { name, all ? "true" : "false", pg_array_text(&arr) };
	PGresult *res = db_query(cli->db, "SELECT n FROM unnest($3::text[]) AS n WHERE n NOT IN (SELECT name FROM accounts) "
				 "AND $1::text IS NOT NULL AND $2::boolean IS NOT NULL", 3, q, err);
	int rc = -1;
	if (res == NULL)
		goto out;
	if (PQntuples(res) > 0) {
		static __thread char msg[200];
		snprintf(msg, sizeof(msg), "no account named '%s'", util_term(PQgetvalue(res, 0, 0)));
		*err = msg;
		PQclear(res);
		goto out;
	}
	PQclear(res);
	if (db_exec(cli->db, "UPDATE officers SET all_accounts = $2::boolean, changed_at = now() WHERE name = $1", 2, q, err) < 0 ||
	    db_exec(cli->db, "DELETE FROM officer_accounts WHERE officer = $1", 1, q, err) < 0 ||
	    db_exec(cli->db, "INSERT INTO officer_accounts (officer, account_id) SELECT $1, a.id FROM accounts a "
		    "WHERE a.name = ANY($3::text[]) AND NOT $2::boolean", 3, q, err) < 0)
		goto out;
	rc = 0;
out:
	pg_array_free(&arr);
	return rc;
}

/* Runs fn inside a transaction with the audit row; prints the error and returns 1 on failure. */
static int officer_commit(struct cli *cli, const char *what, const char *err)
{
	if (err != NULL) {
		db_rollback(cli->db);
		return cli_error("officer %s: %s", what, err);
	}
	if (db_commit(cli->db, &err) < 0) {
		db_rollback(cli->db);
		return cli_error("officer %s: %s", what, err);
	}
	return 0;
}

/* True if the officer exists (after printing an error when not). */
static bool officer_exists(struct cli *cli, const char *name)
{
	const char *p[] = { name }, *err;
	PGresult *res = db_query(cli->db, "SELECT 1 FROM officers WHERE name = $1", 1, p, &err);
	bool found = res != NULL && PQntuples(res) == 1;
	if (res == NULL)
		cli_error("%s", err);
	else if (!found)
		cli_error("no officer named '%s' (see mailvault officer list)", name);
	PQclear(res);
	return found;
}

/* Checks that a Unix user exists on this host (the socket is local, so the service sees this host's users). */
static int officer_unix_user_check(const char *user)
{
	if (getpwnam(user) == NULL)
		return cli_error("no Unix user '%s' on this host (mailvault-web names the caller by the socket's peer)",
				 user);
	return 0;
}

/* The options of officer add and officer set. */
struct officer_opts {
	const char *accounts, *role, *unix_user, *pwfile;
	bool all, no_unix, want_pw;
};

/* Reads add's or set's options (set has --no-unix-user, add --password-file); optind then indexes the
   officer's name. -1 on an unknown option. */
static int officer_opts_parse(int argc, char **argv, bool add, struct officer_opts *o)
{
	static const struct option opts[] = {
		{ "accounts", required_argument, NULL, 'a' }, { "all", no_argument, NULL, 'A' },
		{ "role", required_argument, NULL, 'r' }, { "unix-user", required_argument, NULL, 'u' },
		{ "password-file", required_argument, NULL, 'p' }, { "no-unix-user", no_argument, NULL, 'U' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': o->accounts = optarg; break;
		case 'A': o->all = true; break;
		case 'r': o->role = optarg; break;
		case 'u': o->unix_user = optarg; break;
		case 'p': if (!add) return -1; o->pwfile = optarg, o->want_pw = true; break;
		case 'U': if (add) return -1; o->no_unix = true; break;
		case 'j': break;
		default: return -1;
		}
	}
	return 0;
}

/* officer add NAME (--accounts A,B | --all) [--role R] [--unix-user USER] [--password-file FILE] */
static int officer_add(struct cli *cli, int argc, char **argv)
{
	struct officer_opts o = { .role = "auditor" };
	if (officer_opts_parse(argc, argv, true, &o) < 0 || optind != argc - 1 || o.all == (o.accounts != NULL))
		goto usage;
	const char *accounts = o.accounts, *role = o.role, *unix_user = o.unix_user, *pwfile = o.pwfile;
	bool all = o.all, want_pw = o.want_pw;
	const char *name = argv[optind];
	if (!config_name_valid(name))
		return cli_error("an officer's name may use letters, digits and . _ @ + - (at most 128)");
	if (!officer_role_valid(role))
		return cli_error("--role must be auditor, legal or admin");
	if (unix_user != NULL && officer_unix_user_check(unix_user) != 0)
		return 1;
	char *pw = NULL, *hash = NULL;
	const char *err = NULL;
	if (want_pw) {
		if ((pw = officer_read_password(pwfile)) == NULL)
			return 1;
		hash = credential_password_hash(pw, &err);
		explicit_bzero(pw, strlen(pw));
		free(pw);
		if (hash == NULL)
			return cli_error("%s", err);
	}
	if (cli_connect(cli) < 0 || db_begin(cli->db, &err) < 0) {
		free(hash);
		return err ? cli_error("%s", err) : 1;
	}
	const char *p[] = { name, role, unix_user, hash };
	PGresult *res = db_query(cli->db, "INSERT INTO officers (name, role, unix_user, password_hash) VALUES ($1, $2, $3, $4) "
				 "ON CONFLICT DO NOTHING RETURNING 1", 4, p, &err);
	free(hash);
	if (res != NULL && PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(cli->db);
		return cli_error("officer add: '%s' exists (officer set changes it), or the Unix user '%s' is another "
				 "officer's", name, unix_user ? unix_user : "-");
	}
	PQclear(res);
	if (res != NULL && officer_set_scope(cli, name, all, accounts, &err) == 0) {
		json_object *d = json_object_new_object();
		json_object_object_add(d, "role", json_object_new_string(role));
		json_object_object_add(d, "all_accounts", json_object_new_boolean(all));
		json_object_object_add(d, "accounts", json_object_new_string(accounts ? accounts : ""));
		json_object_object_add(d, "unix_user", unix_user ? json_object_new_string(unix_user) : NULL);
		json_object_object_add(d, "password", json_object_new_boolean(want_pw));
		if (cli_audit(cli, "officer-add", name, d) < 0) {
			db_rollback(cli->db);
			return 1;
		}
	}
	if (officer_commit(cli, "add", res == NULL || err ? (err ? err : "?") : NULL) != 0)
		return 1;
	printf("officer %s (%s) may see %s%s%s\n", name, role, all ? "all accounts" : accounts,
	       unix_user ? "; Unix user " : "", unix_user ? unix_user : "");
	if (unix_user == NULL && !want_pw)
		printf("officer %s has no way to log in yet: give a Unix user (officer set %s --unix-user USER), a password "
		       "(officer passwd %s) or a token (officer token add %s)\n", name, name, name, name);
	return 0;
usage:
	return cli_error("usage: mailvault officer add NAME (--accounts A,B | --all) [--role auditor|legal|admin] "
			 "[--unix-user USER] [--password-file FILE]");
}

/* officer set NAME [--accounts A,B | --all] [--role R] [--unix-user USER | --no-unix-user] */
static int officer_set(struct cli *cli, int argc, char **argv)
{
	struct officer_opts o = { 0 };
	if (officer_opts_parse(argc, argv, false, &o) < 0 || optind != argc - 1 || (o.all && o.accounts) ||
	    (o.unix_user && o.no_unix))
		goto usage;
	const char *accounts = o.accounts, *role = o.role, *unix_user = o.unix_user;
	bool all = o.all, no_unix = o.no_unix;
	const char *name = argv[optind], *err = NULL;
	if (role != NULL && !officer_role_valid(role))
		return cli_error("--role must be auditor, legal or admin");
	if (unix_user != NULL && officer_unix_user_check(unix_user) != 0)
		return 1;
	if (cli_connect(cli) < 0 || !officer_exists(cli, name) || db_begin(cli->db, &err) < 0)
		return err ? cli_error("%s", err) : 1;
	json_object *d = json_object_new_object();
	const char *p[] = { name, role }, *pu[] = { name, unix_user };
	if (role != NULL && db_exec(cli->db, "UPDATE officers SET role = $2, changed_at = now() WHERE name = $1", 2, p, &err) == 0)
		json_object_object_add(d, "role", json_object_new_string(role));
	if (!err && (unix_user || no_unix) &&
	    db_exec(cli->db, "UPDATE officers SET unix_user = $2, changed_at = now() WHERE name = $1", 2, pu, &err) == 0)
		json_object_object_add(d, "unix_user", unix_user ? json_object_new_string(unix_user) : NULL);
	if (!err && (all || accounts) && officer_set_scope(cli, name, all, accounts, &err) == 0) {
		json_object_object_add(d, "all_accounts", json_object_new_boolean(all));
		json_object_object_add(d, "accounts", json_object_new_string(accounts ? accounts : ""));
	}
	if (err || cli_audit(cli, "officer-set", name, d) < 0) {
		if (err)
			json_object_put(d);
		return officer_commit(cli, "set", err ? err : "cannot audit");
	}
	if (officer_commit(cli, "set", NULL) != 0)
		return 1;
	printf("officer %s changed\n", name);
	return 0;
usage:
	return cli_error("usage: mailvault officer set NAME [--accounts A,B | --all] [--role auditor|legal|admin] "
			 "[--unix-user USER | --no-unix-user]");
}

/* officer passwd NAME [--password-file FILE]: a new password; the officer's browser sessions end. */
static int officer_passwd(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "password-file", required_argument, NULL, 'p' }, { NULL, 0, NULL, 0 } };
	const char *pwfile = NULL, *err = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'p')
			return cli_error("usage: mailvault officer passwd NAME [--password-file FILE]");
		pwfile = optarg;
	}
	if (optind != argc - 1)
		return cli_error("usage: mailvault officer passwd NAME [--password-file FILE]");
	const char *name = argv[optind];
	if (cli_connect(cli) < 0 || !officer_exists(cli, name))
		return 1;
	char *pw = officer_read_password(pwfile);
	if (pw == NULL)
		return 1;
	char *hash = credential_password_hash(pw, &err);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	if (hash == NULL)
		return cli_error("%s", err);
	const char *p[] = { name, hash };
	int rc = db_begin(cli->db, &err) < 0 ||
		 db_exec(cli->db, "UPDATE officers SET password_hash = $2, changed_at = now() WHERE name = $1", 2, p, &err) < 0 ||
		 db_exec(cli->db, "UPDATE web_sessions SET ended_at = now() WHERE officer = $1 AND ended_at IS NULL", 1, p,
			 &err) < 0;
	free(hash);
	if (!rc && cli_audit(cli, "officer-passwd", name, NULL) < 0)
		rc = 1, err = "cannot audit";
	if (officer_commit(cli, "passwd", rc ? err : NULL) != 0)
		return 1;
	printf("officer %s has a new password; their browser sessions were ended\n", name);
	return 0;
}

/* officer totp NAME [--reset | --off]: a TOTP key, shown once as an otpauth:// URI. */
static int officer_totp(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = { { "reset", no_argument, NULL, 'r' }, { "off", no_argument, NULL, 'o' },
					      { NULL, 0, NULL, 0 } };
	bool reset = false, off = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r')
			reset = true;
		else if (c == 'o')
			off = true;
		else
			goto usage;
	}
	if (optind != argc - 1 || (reset && off))
		goto usage;
	const char *name = argv[optind], *err = NULL;
	if (cli_connect(cli) < 0 || !officer_exists(cli, name))
		return 1;
	const char *p0[] = { name };
	PGresult *res = db_query(cli->db, "SELECT totp_secret IS NOT NULL FROM officers WHERE name = $1", 1, p0, &err);
	if (res == NULL)
		return cli_error("%s", err);
	bool has = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	if (has && !reset && !off)
		return cli_error("officer %s has a TOTP key already: --reset makes a new one, --off removes it", name);
	unsigned char key[CREDENTIAL_TOTP_KEY_LEN];
	char hex[2 + 2 * CREDENTIAL_TOTP_KEY_LEN + 1] = "\\x";
	credential_totp_key_new(key);
	util_hex(key, sizeof(key), hex + 2);
	const char *p[] = { name, off ? NULL : hex };
	int bad = db_begin(cli->db, &err) < 0 ||
		  db_exec(cli->db, "UPDATE officers SET totp_secret = $2::bytea, totp_last_step = NULL, changed_at = now() "
			  "WHERE name = $1", 2, p, &err) < 0;
	explicit_bzero(hex, sizeof(hex));
	json_object *d = json_object_new_object();
	json_object_object_add(d, "totp", json_object_new_string(off ? "off" : has ? "reset" : "set"));
	if (!bad && cli_audit(cli, "officer-totp", name, d) < 0)
		bad = 1, err = "cannot audit";
	else if (bad)
		json_object_put(d);
	if (officer_commit(cli, "totp", bad ? err : NULL) != 0)
		return 1;
	if (off) {
		printf("officer %s logs in with a password alone now\n", name);
		return 0;
	}
	char *uri = credential_totp_uri(name, key, sizeof(key));
	char *b32 = credential_base32(key, sizeof(key));
	explicit_bzero(key, sizeof(key));
	printf("%s\n", uri);
	fprintf(stderr, "officer %s: add this to an authenticator app (as a QR code of the line above, or the key %s); "
		"it is not shown again. A password login now needs the app's 6-digit code.\n", name, b32);
	explicit_bzero(uri, strlen(uri));
	explicit_bzero(b32, strlen(b32));
	free(uri);
	free(b32);
	return 0;
usage:
	return cli_error("usage: mailvault officer totp NAME [--reset | --off]");
}

/* officer token add NAME [--expires 90d|never] [--label TEXT] | token list [NAME] | token revoke ID */
static int officer_token(struct cli *cli, int argc, char **argv)
{
	const char *err = NULL;
	if (argc >= 2 && strcmp(argv[1], "add") == 0) {
		static const struct option opts[] = { { "expires", required_argument, NULL, 'e' },
						      { "label", required_argument, NULL, 'l' }, { NULL, 0, NULL, 0 } };
		const char *expires = "90d", *label = NULL;
		int c;
		optind = 0;
		while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
			if (c == 'e')
				expires = optarg;
			else if (c == 'l')
				label = optarg;
			else
				goto usage;
		}
		if (optind != argc - 2)
			goto usage;
		const char *name = argv[1 + optind];
		uint64_t secs = 0;
		bool never = strcmp(expires, "never") == 0;
		if (!never && util_parse_duration(expires, &secs) < 0)
			return cli_error("--expires must be a duration such as 90d, 12h or 1y, or never");
		if (cli_connect(cli) < 0 || !officer_exists(cli, name))
			return 1;
		char *token = credential_token_new();
		unsigned char h[32];
		char hex[2 + 64 + 1] = "\\x", sec[24];
		credential_token_hash(token, h);
		util_hex(h, 32, hex + 2);
		snprintf(sec, sizeof(sec), "%llu", (unsigned long long)secs);
		char *clean_label = label ? util_utf8_sanitize(label, strlen(label)) : NULL;
		const char *p[] = { name, hex, clean_label, never ? NULL : sec };
		PGresult *res = NULL;
		int bad = db_begin(cli->db, &err) < 0 ||
			  (res = db_query(cli->db, "INSERT INTO api_tokens (officer, token_hash, label, expires_at) VALUES ($1, $2, $3, "
					  "now() + make_interval(secs => $4::bigint)) RETURNING id, " ISO_UTC("expires_at"), 4, p,
					  &err)) == NULL;
		free(clean_label);
		char id[24] = "", until[40] = "never";
		if (!bad) {
			snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
			if (!PQgetisnull(res, 0, 1))
				snprintf(until, sizeof(until), "%s", PQgetvalue(res, 0, 1));
			json_object *d = json_object_new_object();
			json_object_object_add(d, "token", json_object_new_int64(strtoll(id, NULL, 10)));
			json_object_object_add(d, "expires", json_object_new_string(until));
			if (label)
				json_object_object_add(d, "label", json_object_new_string(label));
			if (cli_audit(cli, "token-add", name, d) < 0)
				bad = 1, err = "cannot audit";
		}
		PQclear(res);
		if (officer_commit(cli, "token add", bad ? err : NULL) != 0) {
			explicit_bzero(token, strlen(token));
			free(token);
			return 1;
		}
		printf("%s\n", token);
		fprintf(stderr, "token %s for officer %s, valid until %s: send it as \"Authorization: Bearer TOKEN\"; it is "
			"not shown again\n", id, name, until);
		explicit_bzero(token, strlen(token));
		free(token);
		return 0;
	}
	if ((argc == 2 || argc == 3) && strcmp(argv[1], "list") == 0) {
		if (cli_connect(cli) < 0)
			return 1;
		const char *p[] = { argc == 3 ? argv[2] : NULL };
		PGresult *res = db_query(cli->db,
			"SELECT id, officer, coalesce(label, '-'), " ISO_UTC("created_at") ", created_by, "
			"coalesce(" ISO_UTC("expires_at") ", 'never'), CASE WHEN revoked_at IS NOT NULL THEN 'revoked ' || "
			ISO_UTC("revoked_at") " || ' by ' || revoked_by WHEN expires_at <= now() THEN 'expired' ELSE 'active' END, "
			"coalesce(" ISO_UTC("last_used_at") ", 'never') FROM api_tokens WHERE $1::text IS NULL OR officer = $1 "
			"ORDER BY id", 1, p, &err);
		if (res == NULL)
			return cli_error("officer token list: %s", err);
		printf("%-6s %-20s %-16s %-20s %-20s %-24s %s\n", "ID", "OFFICER", "LABEL", "CREATED", "EXPIRES", "STATE",
		       "LAST USED");
		for (int i = 0; i < PQntuples(res); i++)
			printf("%-6s %-20s %-16s %-20s %-20s %-24s %s\n", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
			       util_term(PQgetvalue(res, i, 2)), PQgetvalue(res, i, 3), PQgetvalue(res, i, 5),
			       PQgetvalue(res, i, 6), PQgetvalue(res, i, 7));
		PQclear(res);
		return 0;
	}
	if (argc == 3 && strcmp(argv[1], "revoke") == 0) {
		uint64_t id;
		if (util_parse_uint(argv[2], 1, INT64_MAX, &id) < 0)
			goto usage;
		if (cli_connect(cli) < 0 || db_begin(cli->db, &err) < 0)
			return err ? cli_error("%s", err) : 1;
		const char *p[] = { argv[2] };
		PGresult *res = db_query(cli->db, "UPDATE api_tokens SET revoked_at = now(), revoked_by = session_user "
					 "WHERE id = $1 AND revoked_at IS NULL RETURNING officer", 1, p, &err);
		if (res == NULL || PQntuples(res) == 0) {
			PQclear(res);
			db_rollback(cli->db);
			return err ? cli_error("officer token revoke: %s", err)
				   : cli_error("no active token %s (see mailvault officer token list)", argv[2]);
		}
		char *officer = xstrdup(PQgetvalue(res, 0, 0));
		PQclear(res);
		json_object *d = json_object_new_object();
		json_object_object_add(d, "token", json_object_new_int64((int64_t)id));
		int bad = cli_audit(cli, "token-revoke", officer, d) < 0;
		if (officer_commit(cli, "token revoke", bad ? "cannot audit" : NULL) != 0) {
			free(officer);
			return 1;
		}
		printf("token %s of officer %s revoked\n", argv[2], officer);
		free(officer);
		return 0;
	}
usage:
	return cli_error("usage: mailvault officer token add NAME [--expires 90d|never] [--label TEXT] | "
			 "token list [NAME] | token revoke ID");
}

/* officer list: who, role, how they can log in, what they see. */
static int officer_list(struct cli *cli)
{
	const char *err;
	if (cli_connect(cli) < 0)
		return 1;
	PGresult *res = db_query(cli->db,
		"SELECT o.name, o.role, CASE WHEN o.enabled THEN 'enabled' ELSE 'disabled' END, coalesce(o.unix_user, '-'), "
		"concat_ws(',', CASE WHEN o.unix_user IS NOT NULL THEN 'socket' END, CASE WHEN o.password_hash IS NOT NULL THEN 'password' END, "
		" CASE WHEN o.totp_secret IS NOT NULL THEN 'totp' END, "
		" (SELECT count(*) || ' token(s)' FROM api_tokens t WHERE t.officer = o.name AND t.revoked_at IS NULL AND "
		"  (t.expires_at IS NULL OR t.expires_at > now()) HAVING count(*) > 0)), "
		"CASE WHEN o.all_accounts THEN '(all accounts)' ELSE coalesce((SELECT string_agg(a.name, ',' ORDER BY a.name) "
		" FROM officer_accounts oa JOIN accounts a ON a.id = oa.account_id WHERE oa.officer = o.name), '(none)') END, "
		"o.legacy_login FROM officers o ORDER BY o.name", 0, NULL, &err);
	if (res == NULL)
		return cli_error("officer list: %s", err);
	if (cli->json) {
		for (int i = 0; i < PQntuples(res); i++) {
			json_object *o = json_object_new_object();
			static const char *keys[] = { "name", "role", "state", "unix_user", "auth", "accounts", "legacy_login" };
			for (int k = 0; k < 7; k++)
				json_object_object_add(o, keys[k], PQgetisnull(res, i, k) ? NULL : json_object_new_string(PQgetvalue(res, i, k)));
			json_print_line(stdout, o);
		}
		PQclear(res);
		return 0;
	}
	printf("%-24s %-8s %-9s %-12s %-28s %s\n", "OFFICER", "ROLE", "STATE", "UNIX USER", "LOGS IN WITH", "ACCOUNTS");
	for (int i = 0; i < PQntuples(res); i++) {
		const char *auth = PQgetvalue(res, i, 4);
		printf("%-24s %-8s %-9s %-12s %-28s %s\n", util_term(PQgetvalue(res, i, 0)), PQgetvalue(res, i, 1),
		       PQgetvalue(res, i, 2), util_term(PQgetvalue(res, i, 3)), *auth ? auth : "(nothing yet)",
		       util_term(PQgetvalue(res, i, 5)));
	}
	PQclear(res);
	return 0;
}

/* officer enable|disable|remove NAME */
static int officer_state(struct cli *cli, const char *verb, const char *name)
{
	const char *err = NULL;
	if (cli_connect(cli) < 0 || !officer_exists(cli, name) || db_begin(cli->db, &err) < 0)
		return err ? cli_error("%s", err) : 1;
	const char *p[] = { name };
	int bad;
	if (strcmp(verb, "remove") == 0)
		bad = db_exec(cli->db, "DELETE FROM officers WHERE name = $1", 1, p, &err) < 0;
	else
		bad = db_exec(cli->db, strcmp(verb, "enable") == 0
			      ? "UPDATE officers SET enabled = true, changed_at = now() WHERE name = $1"
			      : "UPDATE officers SET enabled = false, changed_at = now() WHERE name = $1", 1, p, &err) < 0 ||
		      (strcmp(verb, "disable") == 0 &&
		       db_exec(cli->db, "UPDATE web_sessions SET ended_at = now() WHERE officer = $1 AND ended_at IS NULL", 1,
			       p, &err) < 0);
	char action[32];
	snprintf(action, sizeof(action), "officer-%s", verb);
	if (!bad && cli_audit(cli, action, name, NULL) < 0)
		bad = 1, err = "cannot audit";
	if (officer_commit(cli, verb, bad ? err : NULL) != 0)
		return 1;
	printf("officer %s %s\n", name, strcmp(verb, "remove") == 0 ? "removed (their audit rows stay)" :
	       strcmp(verb, "enable") == 0 ? "enabled" : "disabled; their browser sessions were ended");
	return 0;
}

int cmd_officer(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1) {
		const char *sub = argv[0];
		if (strcmp(sub, "add") == 0)
			return officer_add(cli, argc, argv);
		if (strcmp(sub, "set") == 0)
			return officer_set(cli, argc, argv);
		if (strcmp(sub, "passwd") == 0)
			return officer_passwd(cli, argc, argv);
		if (strcmp(sub, "totp") == 0)
			return officer_totp(cli, argc, argv);
		if (strcmp(sub, "token") == 0)
			return officer_token(cli, argc, argv);
		if (strcmp(sub, "list") == 0 && (argc == 1 || (argc == 2 && strcmp(argv[1], "--json") == 0)))
			return officer_list(cli);
		if ((strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0 || strcmp(sub, "remove") == 0) && argc == 2)
			return officer_state(cli, sub, argv[1]);
	}
	return cli_error("usage: mailvault officer add | set | passwd | totp | token | list | enable | disable | remove "
			 "(see mailvault --help)");
}

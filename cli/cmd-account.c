/* mailvault account: add, list, enable, disable and remove the mailboxes the archive polls. */
#include "cli.h"
#include "buf.h"
#include "db.h"
#include "json.h"
#include "secret.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Appends a pattern to a PostgreSQL text[] literal being built. */
static void pg_array_add(struct buf *b, const char *s)
{
	buf_append_str(b, b->len > 1 ? ",\"" : "\"");
	for (const char *p = s; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_append_str(b, "\\");
		buf_append(b, p, 1);
	}
	buf_append_str(b, "\"");
}

/* account add NAME --host H --user U --secret REF [...] */
static int account_add(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' }, { "port", required_argument, NULL, 'p' },
		{ "tls", required_argument, NULL, 't' }, { "user", required_argument, NULL, 'u' },
		{ "secret", required_argument, NULL, 's' }, { "auth", required_argument, NULL, 'a' },
		{ "ca-file", required_argument, NULL, 'C' }, { "interval", required_argument, NULL, 'i' },
		{ "include", required_argument, NULL, 'I' }, { "exclude", required_argument, NULL, 'E' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	const char *host = NULL, *port = NULL, *tls = "imaps", *user = NULL, *secret = NULL, *auth = "plain";
	const char *ca_file = NULL, *interval = NULL, *err;
	struct buf inc = { 0 }, exc = { 0 };
	uint64_t v;
	int c, rc = 1;
	buf_append_str(&inc, "{");
	buf_append_str(&exc, "{");
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'H': host = optarg; break;
		case 'p': port = optarg; break;
		case 't': tls = optarg; break;
		case 'u': user = optarg; break;
		case 's': secret = optarg; break;
		case 'a': auth = optarg; break;
		case 'C': ca_file = optarg; break;
		case 'i': interval = optarg; break;
		case 'I':
		case 'E':
			if (strchr(optarg, '\n') != NULL || *optarg == '\0') {
				cli_error("account add: a folder pattern must be a non-empty single line");
				goto out;
			}
			pg_array_add(c == 'I' ? &inc : &exc, optarg);
			break;
		case 'j': break;
		default: goto usage;
		}
	}
	if (optind != argc - 1 || host == NULL || user == NULL || secret == NULL)
		goto usage;
	const char *name = argv[optind];
	if (strcmp(tls, "imaps") != 0 && strcmp(tls, "starttls") != 0) {
		cli_error("account add: --tls must be imaps or starttls (plain text is not offered)");
		goto out;
	}
	if (strcmp(auth, "plain") != 0 && strcmp(auth, "login") != 0 && strcmp(auth, "xoauth2") != 0 &&
	    strcmp(auth, "oauthbearer") != 0) {
		cli_error("account add: --auth must be plain, login, xoauth2 or oauthbearer");
		goto out;
	}
	if (port != NULL && util_parse_uint(port, 1, 65535, &v) < 0) {
		cli_error("account add: --port must be a number from 1 to 65535");
		goto out;
	}
	if (interval != NULL && util_parse_uint(interval, 1, 7 * 86400, &v) < 0) {
		cli_error("account add: --interval must be a number of seconds from 1 to 604800");
		goto out;
	}
	if (secret_ref_validate(secret, &err) < 0) {
		cli_error("account add: %s", err);
		goto out;
	}
	if (strncmp(secret, "file:", 5) == 0 && access(secret + 5, R_OK) != 0)
		fprintf(stderr, "mailvault: warning: secret file %s is not readable by this user; make sure the "
			"daemon can read it\n", secret + 5);
	if (ca_file != NULL && access(ca_file, R_OK) != 0) {
		cli_error("account add: CA file %s is not readable", ca_file);
		goto out;
	}
	buf_append_str(&inc, "}");
	buf_append_str(&exc, "}");
	char s_port[8], s_interval[16];
	snprintf(s_port, sizeof(s_port), "%s", port ? port : strcmp(tls, "imaps") == 0 ? "993" : "143");
	snprintf(s_interval, sizeof(s_interval), "%u", interval ? (unsigned)atoi(interval) : cli->cfg->poll_interval);
	if (cli_connect(cli) < 0)
		goto out;
	const char *p[] = { name, host, s_port, tls, user, auth, secret, ca_file, s_interval,
			    (const char *)inc.data, (const char *)exc.data };
	if (db_exec(cli->db, "INSERT INTO accounts (name, host, port, tls, username, auth, secret_ref, ca_file, "
		    "poll_interval, include_patterns, exclude_patterns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
		    "$10, $11)", 11, p, &err) < 0) {
		cli_error("account add: %s", strstr(err, "accounts_name_key") ? "an account with that name exists"
			  : strstr(err, "accounts_name_check") ? "the name may use letters, digits and . _ @ + -" : err);
		goto out;
	}
	printf("account %s added (%s://%s:%s as %s)\n", name, tls, host, s_port, user);
	rc = 0;
	goto out;
usage:
	cli_error("usage: mailvault account add NAME --host H --user U --secret file:PATH|env:NAME|cmd:COMMAND "
		  "[--port P] [--tls imaps|starttls] [--auth plain|login|xoauth2|oauthbearer] [--ca-file F] "
		  "[--interval SECONDS] [--include PATTERN]... [--exclude PATTERN]...");
out:
	buf_free(&inc);
	buf_free(&exc);
	return rc;
}

/* account list: one line (or JSON object) per account. */
static int account_list(struct cli *cli)
{
	const char *err;
	if (cli_connect(cli) < 0)
		return 1;
	PGresult *res = db_query(cli->db,
		"SELECT name, host, port, tls, username, auth, enabled, poll_interval, "
		"array_to_string(include_patterns, ' '), array_to_string(exclude_patterns, ' '), "
		"to_char(last_success AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), last_error "
		"FROM accounts ORDER BY name", 0, NULL, &err);
	if (res == NULL)
		return cli_error("account list: %s", err);
	if (!cli->json && PQntuples(res) > 0)
		printf("%-20s %-8s %-30s %-20s %-8s %s\n", "NAME", "STATE", "SERVER", "USER", "INTERVAL", "LAST SUCCESS");
	for (int i = 0; i < PQntuples(res); i++) {
		bool enabled = strcmp(PQgetvalue(res, i, 6), "t") == 0;
		if (cli->json) {
			struct buf b = { 0 };
			buf_append_str(&b, "{");
			static const char *keys[] = { "name", "host", "port", "tls", "user", "auth", "enabled",
						      "interval", "include", "exclude", "last_success", "last_error" };
			for (int k = 0; k < 12; k++) {
				json_append_key(&b, keys[k]);
				if (k == 2 || k == 7)
					buf_append_str(&b, PQgetvalue(res, i, k));
				else if (k == 6)
					buf_append_str(&b, enabled ? "true" : "false");
				else
					json_append_string(&b, PQgetisnull(res, i, k) ? NULL : PQgetvalue(res, i, k));
			}
			buf_append_str(&b, "}");
			puts((char *)b.data);
			buf_free(&b);
		} else {
			char server[300];
			snprintf(server, sizeof(server), "%s://%s:%s", PQgetvalue(res, i, 3), PQgetvalue(res, i, 1),
				 PQgetvalue(res, i, 2));
			printf("%-20s %-8s %-30s %-20s %-8s %s\n", PQgetvalue(res, i, 0), enabled ? "enabled" : "disabled",
			       server, PQgetvalue(res, i, 4), PQgetvalue(res, i, 7),
			       PQgetisnull(res, i, 10) ? "never" : PQgetvalue(res, i, 10));
		}
	}
	PQclear(res);
	return 0;
}

/* account enable|disable NAME */
static int account_set_enabled(struct cli *cli, const char *name, bool enabled)
{
	const char *err;
	if (cli_connect(cli) < 0)
		return 1;
	const char *p[] = { name, enabled ? "true" : "false" };
	PGresult *res = db_query(cli->db, "UPDATE accounts SET enabled = $2, next_poll = now() WHERE name = $1 "
				 "RETURNING id", 2, p, &err);
	if (res == NULL)
		return cli_error("account: %s", err);
	int n = PQntuples(res);
	PQclear(res);
	if (n == 0)
		return cli_error("no account named '%s'", name);
	printf("account %s %s\n", name, enabled ? "enabled" : "disabled");
	return 0;
}

/* account remove NAME: only while nothing from it is archived (the archive never forgets silently). */
static int account_remove(struct cli *cli, const char *name)
{
	const char *err;
	if (cli_connect(cli) < 0)
		return 1;
	const char *p[] = { name };
	if (db_begin(cli->db, &err) < 0)
		return cli_error("account remove: %s", err);
	PGresult *res = db_query(cli->db,
		"SELECT a.id, (SELECT count(*) FROM locations l JOIN folders f ON f.id = l.folder_id "
		"WHERE f.account_id = a.id) FROM accounts a WHERE a.name = $1 FOR UPDATE", 1, p, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(cli->db);
		return cli_error("no account named '%s'", name);
	}
	long long archived = atoll(PQgetvalue(res, 0, 1));
	char id[24];
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (archived > 0) {
		db_rollback(cli->db);
		return cli_error("account %s has %lld archived message location%s: refusing to remove it "
				 "(disable it instead: mailvault account disable %s)", name, archived,
				 archived == 1 ? "" : "s", name);
	}
	const char *q[] = { id };
	if (db_exec(cli->db, "DELETE FROM ingest_errors WHERE account_id = $1", 1, q, &err) < 0 ||
	    db_exec(cli->db, "DELETE FROM uidvalidity_changes WHERE folder_id IN (SELECT id FROM folders "
		    "WHERE account_id = $1)", 1, q, &err) < 0 ||
	    db_exec(cli->db, "DELETE FROM folders WHERE account_id = $1", 1, q, &err) < 0 ||
	    db_exec(cli->db, "DELETE FROM accounts WHERE id = $1", 1, q, &err) < 0 || db_commit(cli->db, &err) < 0)
		goto fail;
	printf("account %s removed\n", name);
	return 0;
fail:
	db_rollback(cli->db);
	return cli_error("account remove: %s", err);
}

/* Dispatches the account subcommands. */
int cmd_account(struct cli *cli, int argc, char **argv)
{
	if (argc >= 1 && strcmp(argv[0], "add") == 0)
		return account_add(cli, argc, argv);
	if (argc >= 1 && strcmp(argv[0], "list") == 0)
		return account_list(cli);
	if (argc == 2 && strcmp(argv[0], "enable") == 0)
		return account_set_enabled(cli, argv[1], true);
	if (argc == 2 && strcmp(argv[0], "disable") == 0)
		return account_set_enabled(cli, argv[1], false);
	if (argc == 2 && strcmp(argv[0], "remove") == 0)
		return account_remove(cli, argv[1]);
	return cli_error("usage: mailvault account add|list|enable|disable|remove ...");
}

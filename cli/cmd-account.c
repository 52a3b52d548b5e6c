/* mailvault account: add, list, enable, disable and remove the mailboxes the archive polls. */
#include "cli.h"
#include "json-out.h"
#include "buf.h"
#include "db.h"
#include "mailbox.h"
#include "pg-array.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Prints the [secret NAME] section an account needs, for the administrator to paste into mailvault.conf. */
void cli_print_secret_section(FILE *out, const char *indent, const char *name, const char *host, const char *user,
			      const char *source)
{
	fprintf(out, "%s[secret %s]\n%ssource = %s\n%shost = %s\n%suser = %s\n", indent, util_term(name), indent,
		source ? util_term(source) : "file:/etc/mailvault/secrets/NAME   (or env:VARIABLE, or cmd:COMMAND ARGS)",
		indent, util_term(host), indent, util_term(user));
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
	struct pg_array inc = PG_ARRAY_INIT, exc = PG_ARRAY_INIT;
	uint64_t v;
	int c, rc = 1;
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
			pg_array_add_str(c == 'I' ? &inc : &exc, optarg);
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
	if (strchr(secret, ':') != NULL || !config_name_valid(secret)) {
		cli_error("account add: --secret takes the name of a [secret NAME] section of %s, which says where "
			  "the secret comes from and the one host and user it may be sent to, for example:", cli->cfg->path);
		cli_print_secret_section(stderr, "    ", name, host, user, strchr(secret, ':') ? secret : NULL);
		goto out;
	}
	const struct config_secret *entry = config_secret_find(cli->cfg, secret);
	if (entry == NULL) {
		fprintf(stderr, "mailvault: warning: %s has no [secret %s] section: the account is not polled until "
			"the poller's configuration has one, such as:\n", cli->cfg->path, util_term(secret));
		cli_print_secret_section(stderr, "    ", secret, host, user, NULL);
	} else if (strcasecmp(entry->host, host) != 0 || strcmp(entry->user, user) != 0) {
		cli_error("account add: [secret %s] may be sent only to %s as %s (%s:%u), not to %s as %s", secret,
			  util_term(entry->host), util_term(entry->user), cli->cfg->path, entry->line, util_term(host),
			  util_term(user));
		goto out;
	} else if (strncmp(entry->source, "file:", 5) == 0 && access(entry->source + 5, R_OK) != 0) {
		fprintf(stderr, "mailvault: warning: secret file %s is not readable by this user; make sure the "
			"daemon can read it\n", util_term(entry->source + 5));
	}
	if (ca_file != NULL && access(ca_file, R_OK) != 0) {
		cli_error("account add: CA file %s is not readable", ca_file);
		goto out;
	}
	char s_port[8], s_interval[16];
	snprintf(s_port, sizeof(s_port), "%s", port ? port : strcmp(tls, "imaps") == 0 ? "993" : "143");
	snprintf(s_interval, sizeof(s_interval), "%u", interval ? (unsigned)atoi(interval) : cli->cfg->poll_interval);
	if (cli_connect(cli) < 0)
		goto out;
	const char *p[] = { name, host, s_port, tls, user, auth, secret, ca_file, s_interval, pg_array_text(&inc),
			    pg_array_text(&exc) };
	if (db_exec(cli->db, "INSERT INTO accounts (name, host, port, tls, username, auth, secret_name, ca_file, "
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
	cli_error("usage: mailvault account add NAME --host H --user U --secret SECRET_NAME "
		  "[--port P] [--tls imaps|starttls] [--auth plain|login|xoauth2|oauthbearer] [--ca-file F] "
		  "[--interval SECONDS] [--include PATTERN]... [--exclude PATTERN]...");
out:
	pg_array_free(&inc);
	pg_array_free(&exc);
	return rc;
}

/* The folders of one account the poller last listed: names people read, and the delimiter. */
struct known_folders {
	PGresult *res;       /* name, delimiter, account id */
	int first, end;      /* this account's rows */
};

/* For each include/exclude pattern of an account, which of its known folders it matches: as text lines
   under the account, or added to the JSON array json as {kind, pattern, matches}. */
static void account_print_patterns(struct cli *cli, json_object *json, const char *kind, const char *patterns,
				   const struct known_folders *kf)
{
	char *copy = xstrdup(patterns), *save = NULL;
	for (char *pat = strtok_r(copy, "\n", &save); pat; pat = strtok_r(NULL, "\n", &save)) {
		struct buf line = { 0 };
		json_object *matches = json != NULL ? json_object_new_array() : NULL;
		size_t n = 0;
		for (int r = kf->first; r < kf->end; r++) {
			const char *fname = PQgetvalue(kf->res, r, 0), *d = PQgetvalue(kf->res, r, 1);
			if (!mailbox_pattern_match(pat, fname, PQgetisnull(kf->res, r, 1) ? 0 : d[0]))
				continue;
			if (json != NULL)
				json_object_array_add(matches, json_text(fname));
			else
				buf_printf(&line, "%s%s", n ? ", " : "", util_term(fname));
			n++;
		}
		if (json != NULL) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "kind", json_text(kind));
			json_object_object_add(o, "pattern", json_text(pat));
			json_object_object_add(o, "matches", matches);
			json_object_array_add(json, o);
		} else {
			printf("    %s %-20s matches %s\n", kind, util_term(pat), n ? (char *)line.data
			       : "no folder the server listed (the patterns follow IMAP LIST: * and % are wildcards, the rest is literal)");
		}
		buf_free(&line);
	}
	free(copy);
	(void)cli;
}

/* account list: one line (or JSON object) per account, and what its folder patterns match. */
static int account_list(struct cli *cli)
{
	const char *err;
	if (cli_connect(cli) < 0)
		return 1;
	PGresult *res = db_query(cli->db,
		"SELECT name, host, port, tls, username, auth, enabled, poll_interval, "
		"array_to_string(include_patterns, E'\\n'), array_to_string(exclude_patterns, E'\\n'), "
		"to_char(last_success AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), last_error, secret_name, id "
		"FROM accounts ORDER BY name", 0, NULL, &err);
	if (res == NULL)
		return cli_error("account list: %s", err);
	struct known_folders kf = { 0 };
	kf.res = db_query(cli->db, "SELECT name, delimiter, account_id FROM folders WHERE listed_at IS NOT NULL "
			  "ORDER BY account_id, name", 0, NULL, &err);
	if (kf.res == NULL) {
		PQclear(res);
		return cli_error("account list: %s", err);
	}
	if (!cli->json && PQntuples(res) > 0)
		printf("%-20s %-8s %-30s %-20s %-8s %s\n", "NAME", "STATE", "SERVER", "USER", "INTERVAL", "LAST SUCCESS");
	for (int i = 0; i < PQntuples(res); i++) {
		bool enabled = strcmp(PQgetvalue(res, i, 6), "t") == 0;
		const char *id = PQgetvalue(res, i, 13);
		kf.first = kf.end = 0;
		for (int r = 0; r < PQntuples(kf.res); r++) {
			if (strcmp(PQgetvalue(kf.res, r, 2), id) != 0)
				continue;
			if (kf.end == 0)
				kf.first = r;
			kf.end = r + 1;
		}
		if (cli->json) {
			json_object *o = json_object_new_object();
			static const char *keys[] = { "name", "host", "port", "tls", "user", "auth", "enabled",
						      "interval", "include", "exclude", "last_success", "last_error", "secret" };
			for (int k = 0; k < 13; k++) {
				json_object *v;
				if (k == 2 || k == 7)
					v = json_object_new_int64(strtoll(PQgetvalue(res, i, k), NULL, 10));
				else if (k == 6)
					v = json_object_new_boolean(enabled);
				else
					v = json_text(PQgetisnull(res, i, k) ? NULL : PQgetvalue(res, i, k));
				json_object_object_add(o, keys[k], v);
			}
			json_object *patterns = json_object_new_array();
			account_print_patterns(cli, patterns, "include", PQgetvalue(res, i, 8), &kf);
			account_print_patterns(cli, patterns, "exclude", PQgetvalue(res, i, 9), &kf);
			json_object_object_add(o, "patterns", patterns);
			json_print_line(stdout, o);
		} else {
			char server[300];
			snprintf(server, sizeof(server), "%s://%s:%s", PQgetvalue(res, i, 3), util_term(PQgetvalue(res, i, 1)),
				 PQgetvalue(res, i, 2));
			printf("%-20s %-8s %-30s %-20s %-8s %s\n", PQgetvalue(res, i, 0), enabled ? "enabled" : "disabled",
			       server, util_term(PQgetvalue(res, i, 4)), PQgetvalue(res, i, 7),
			       PQgetisnull(res, i, 10) ? "never" : PQgetvalue(res, i, 10));
			account_print_patterns(cli, NULL, "include", PQgetvalue(res, i, 8), &kf);
			account_print_patterns(cli, NULL, "exclude", PQgetvalue(res, i, 9), &kf);
		}
	}
	PQclear(kf.res);
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
		"WHERE f.account_id = a.id), (SELECT count(*) FROM ingest_errors e WHERE e.account_id = a.id) + "
		"(SELECT count(*) FROM uidvalidity_changes u JOIN folders f ON f.id = u.folder_id WHERE f.account_id = a.id) "
		"FROM accounts a WHERE a.name = $1 FOR UPDATE", 1, p, &err);
	if (res == NULL)
		goto fail;
	if (PQntuples(res) == 0) {
		PQclear(res);
		db_rollback(cli->db);
		return cli_error("no account named '%s'", name);
	}
	long long archived = atoll(PQgetvalue(res, 0, 1)), records = atoll(PQgetvalue(res, 0, 2));
	char id[24];
	snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (archived > 0) {
		db_rollback(cli->db);
		return cli_error("account %s has %lld archived message location%s: refusing to remove it "
				 "(disable it instead: mailvault account disable %s)", name, archived,
				 archived == 1 ? "" : "s", name);
	}
	if (records > 0) {
		db_rollback(cli->db);
		return cli_error("account %s has %lld records of what could not be archived or of UIDVALIDITY changes: "
				 "refusing to remove it (disable it instead: mailvault account disable %s)", name, records, name);
	}
	const char *q[] = { id };
	if (db_exec(cli->db, "DELETE FROM folders WHERE account_id = $1", 1, q, &err) < 0 ||
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

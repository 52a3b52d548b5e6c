/* mailvault ls, show and status: what the archive holds, where each copy came from, how ingestion goes. */
#include "cli.h"
#include "json-out.h"
#include "buf.h"
#include "db.h"
#include "mime-extract.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ls [--account A] [--folder F] [--json]: one row per location, streamed. */
int cmd_ls(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "account", required_argument, NULL, 'a' }, { "folder", required_argument, NULL, 'f' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	const char *account = NULL, *folder = NULL;
	int c;
	optind = 0;
	char **av = argv - 1; /* getopt wants a program name in front */
	while ((c = getopt_long(argc + 1, av, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': account = optarg; break;
		case 'f': folder = optarg; break;
		case 'j': break;
		default: return cli_error("usage: mailvault ls [--account A] [--folder F] [--json]");
		}
	}
	if (optind != argc + 1)
		return cli_error("usage: mailvault ls [--account A] [--folder F] [--json]");
	if (cli_connect(cli) < 0)
		return 1;
	const char *p[] = { account, folder };
	if (PQsendQueryParams(cli->db,
		"SELECT m.serial, encode(m.sha256, 'hex'), a.name, f.name, l.uidvalidity, l.uid, "
		ISO_UTC("l.internaldate") ", m.size FROM locations l JOIN messages m ON m.serial = l.message_serial "
		"JOIN folders f ON f.id = l.folder_id JOIN accounts a ON a.id = f.account_id "
		"WHERE ($1::text IS NULL OR a.name = $1) AND ($2::text IS NULL OR f.name = $2) "
		"ORDER BY m.serial, l.id", 2, NULL, p, NULL, NULL, 0) != 1 || PQsetSingleRowMode(cli->db) != 1)
		return cli_error("ls: %s", PQerrorMessage(cli->db));
	int rc = 0;
	struct buf b = { 0 };
	PGresult *res;
	while ((res = PQgetResult(cli->db)) != NULL) {
		if (PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
			if (cli->json) {
				static const char *keys[] = { "serial", "sha256", "account", "folder", "uidvalidity", "uid",
							      "internaldate", "size" };
				json_object *o = json_object_new_object();
				for (int k = 0; k < 8; k++) {
					json_object *v;
					if (k == 0 || k == 4 || k == 5 || k == 7)
						v = json_object_new_int64(strtoll(PQgetvalue(res, 0, k), NULL, 10));
					else
						v = json_text(PQgetisnull(res, 0, k) ? NULL : PQgetvalue(res, 0, k));
					json_object_object_add(o, keys[k], v);
				}
				json_print_line(stdout, o);
			} else {
				buf_reset(&b);
				buf_printf(&b, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
					   util_term(PQgetvalue(res, 0, 2)), util_term(PQgetvalue(res, 0, 3)), PQgetvalue(res, 0, 4),
					   PQgetvalue(res, 0, 5), PQgetisnull(res, 0, 6) ? "-" : PQgetvalue(res, 0, 6),
					   PQgetvalue(res, 0, 7));
				puts((char *)b.data);
			}
		} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = cli_error("ls: %s", PQresultErrorMessage(res));
		}
		PQclear(res);
	}
	buf_free(&b);
	return rc;
}

/* The retention lines of status: policies and holds, what holds keep past its expiry, the last disposal
   and when its bytes were gone from the tables and the index, and the index removals still queued. */
static int status_retention(struct cli *cli, const char **error_r)
{
	PGresult *res = db_query(cli->db,
		"SELECT (SELECT count(*) FROM policies), (SELECT count(*) FROM holds WHERE released_at IS NULL), "
		"(SELECT count(*) FROM holds h, retention_settings s WHERE h.released_at IS NOT NULL "
		" AND h.released_at + s.release_grace > now()), "
		"(SELECT count(*) FROM mailvault_held_among(ARRAY(SELECT m.serial FROM messages m WHERE m.retain_until <= now()))), "
		"(SELECT count(*) FROM index_queue WHERE op = 'delete'), "
		"(SELECT " ISO_UTC("max(finished_at)") " FROM disposal_runs)", 0, NULL, error_r);
	if (res == NULL)
		return -1;
	printf("retention: %s polic%s, %s active hold%s", PQgetvalue(res, 0, 0),
	       strcmp(PQgetvalue(res, 0, 0), "1") == 0 ? "y" : "ies", PQgetvalue(res, 0, 1),
	       strcmp(PQgetvalue(res, 0, 1), "1") == 0 ? "" : "s");
	if (strcmp(PQgetvalue(res, 0, 2), "0") != 0)
		printf(" (and %s released, still in their grace period)", PQgetvalue(res, 0, 2));
	printf("; %s messages past retain_until kept by holds\n", PQgetvalue(res, 0, 3));
	char *pending = xstrdup(PQgetvalue(res, 0, 4));
	char *last_run = PQgetisnull(res, 0, 5) ? NULL : xstrdup(PQgetvalue(res, 0, 5));
	PQclear(res);
	res = db_query(cli->db, "SELECT " ISO_UTC("finished_at") ", disposed, erased, bytes, " ISO_UTC("vacuumed_at")
		       ", vacuum_error, " ISO_UTC("index_purged_at") " FROM disposal_runs WHERE finished_at IS NOT NULL "
		       "AND disposed + erased > 0 ORDER BY id DESC LIMIT 1", 0, NULL, error_r);
	if (res == NULL) {
		free(pending);
		free(last_run);
		return -1;
	}
	if (PQntuples(res) == 0) {
		if (last_run)
			printf("last disposal: none yet (last run %s removed nothing)\n", last_run);
		else
			printf("last disposal: none yet\n");
	} else {
		printf("last disposal: %s, %s messages disposed of and %s erased (%.1f MB); bytes vacuumed from the "
		       "tables: %s; removed from the index: %s\n", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
		       PQgetvalue(res, 0, 2), atof(PQgetvalue(res, 0, 3)) / 1e6,
		       PQgetisnull(res, 0, 4) ? "not yet" : PQgetvalue(res, 0, 4),
		       PQgetisnull(res, 0, 6) ? "not yet" : PQgetvalue(res, 0, 6));
		if (!PQgetisnull(res, 0, 5))
			printf("  its VACUUM failed (%s): the bytes stay until autovacuum; see [retention] vacuum_conninfo\n",
			       util_term(PQgetvalue(res, 0, 5)));
	}
	printf("index removals pending: %s\n", pending);
	PQclear(res);
	free(pending);
	free(last_run);
	return 0;
}

/* status: per account folders, messages, bytes, last success, last error and ingest errors; folders that
   failed, by name; accounts whose secret is not configured, with the section to add; the index. */
int cmd_status(struct cli *cli, int argc, char **argv)
{
	const char *err;
	(void)argv;
	if (argc > 0 && !(argc == 1 && strcmp(argv[0], "--json") == 0))
		return cli_error("usage: mailvault status [--json]");
	if (cli_connect(cli) < 0)
		return 1;
	PGresult *res = db_query(cli->db,
		"SELECT a.name, a.enabled, "
		"(SELECT count(*) FROM folders f WHERE f.account_id = a.id AND f.selected AND f.selectable), "
		"(SELECT count(DISTINCT l.message_serial) FROM locations l JOIN folders f ON f.id = l.folder_id "
		" WHERE f.account_id = a.id), "
		"(SELECT coalesce(sum(m.size), 0) FROM messages m WHERE m.serial IN (SELECT l.message_serial FROM "
		" locations l JOIN folders f ON f.id = l.folder_id WHERE f.account_id = a.id)), "
		ISO_UTC("a.last_success") ", a.last_error, "
		"(SELECT count(*) FROM ingest_errors e WHERE e.account_id = a.id AND (e.kind = 'second-body' OR NOT EXISTS "
		" (SELECT 1 FROM locations l WHERE l.folder_id = e.folder_id AND l.uidvalidity = e.uidvalidity AND l.uid = e.uid))), "
		ISO_UTC("a.next_poll") ", a.lease_owner, a.secret_name, a.host, a.username, a.legacy_secret_ref, "
		"(SELECT count(*) FROM folders f WHERE f.account_id = a.id AND f.last_error IS NOT NULL AND f.selected) "
		"FROM accounts a ORDER BY a.name", 0, NULL, &err);
	if (res == NULL)
		return cli_error("status: %s", err);
	if (!cli->json)
		printf("%-20s %-8s %7s %9s %10s %-20s %7s  %s\n", "ACCOUNT", "STATE", "FOLDERS", "MESSAGES", "MB",
		       "LAST SUCCESS", "ERRORS", "LAST ERROR");
	int unconfigured = 0;
	for (int i = 0; i < PQntuples(res); i++) {
		bool enabled = strcmp(PQgetvalue(res, i, 1), "t") == 0;
		const struct config_secret *sec = config_secret_find(cli->cfg, PQgetvalue(res, i, 10));
		bool secret_ok = sec != NULL && strcasecmp(sec->host, PQgetvalue(res, i, 11)) == 0 &&
				 strcmp(sec->user, PQgetvalue(res, i, 12)) == 0;
		unconfigured += !secret_ok;
		if (cli->json) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "account", json_text(PQgetvalue(res, i, 0)));
			json_object_object_add(o, "enabled", json_object_new_boolean(enabled));
			static const char *nkeys[] = { "folders", "messages", "bytes" };
			for (int k = 0; k < 3; k++)
				json_object_object_add(o, nkeys[k],
						       json_object_new_int64(strtoll(PQgetvalue(res, i, 2 + k), NULL, 10)));
			json_object_object_add(o, "last_success",
					       json_text(PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5)));
			json_object_object_add(o, "last_error",
					       json_text(PQgetisnull(res, i, 6) ? NULL : PQgetvalue(res, i, 6)));
			json_object_object_add(o, "ingest_errors",
					       json_object_new_int64(strtoll(PQgetvalue(res, i, 7), NULL, 10)));
			json_object_object_add(o, "failed_folders",
					       json_object_new_int64(strtoll(PQgetvalue(res, i, 14), NULL, 10)));
			json_object_object_add(o, "secret", json_text(PQgetvalue(res, i, 10)));
			json_object_object_add(o, "secret_configured", json_object_new_boolean(secret_ok));
			json_object_object_add(o, "next_poll", json_text(PQgetvalue(res, i, 8)));
			json_print_line(stdout, o);
		} else {
			printf("%-20s %-8s %7s %9s %10.1f %-20s %7s  %s\n", PQgetvalue(res, i, 0),
			       !enabled ? "disabled" : !secret_ok ? "nosecret" : PQgetisnull(res, i, 9) ? "enabled" : "polling",
			       PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), atof(PQgetvalue(res, i, 4)) / 1e6,
			       PQgetisnull(res, i, 5) ? "never" : PQgetvalue(res, i, 5), PQgetvalue(res, i, 7),
			       PQgetisnull(res, i, 6) ? "-" : util_term(PQgetvalue(res, i, 6)));
		}
	}
	if (cli->json) {
		PQclear(res);
		return 0;
	}
	if (unconfigured > 0) {
		printf("\naccounts the poller cannot poll: their secret is not defined in %s (or names another host "
		       "or user).\nAdd these sections to the configuration mailvaultd reads, then reload it (SIGHUP):\n",
		       util_term(cli->cfg->path));
		for (int i = 0; i < PQntuples(res); i++) {
			const char *name = PQgetvalue(res, i, 10);
			const struct config_secret *sec = config_secret_find(cli->cfg, name);
			if (sec != NULL && strcasecmp(sec->host, PQgetvalue(res, i, 11)) == 0 &&
			    strcmp(sec->user, PQgetvalue(res, i, 12)) == 0)
				continue;
			printf("\n  # account %s%s\n", util_term(PQgetvalue(res, i, 0)),
			       sec != NULL ? " (the section that exists names another host or user)" : "");
			cli_print_secret_section(stdout, "  ", name, PQgetvalue(res, i, 11), PQgetvalue(res, i, 12),
						 PQgetisnull(res, i, 13) ? NULL : PQgetvalue(res, i, 13));
		}
	}
	PQclear(res);
	res = db_query(cli->db, "SELECT a.name, f.name, f.last_error, " ISO_UTC("f.last_error_at") " FROM folders f "
		       "JOIN accounts a ON a.id = f.account_id WHERE f.last_error IS NOT NULL AND f.selected "
		       "ORDER BY a.name, f.name", 0, NULL, &err);
	if (res == NULL)
		return cli_error("status: %s", err);
	if (PQntuples(res) > 0)
		printf("\nfolders that failed at their last sync (retried at every poll):\n");
	for (int i = 0; i < PQntuples(res); i++)
		printf("  %s %s/%s: %s\n", PQgetvalue(res, i, 3), util_term(PQgetvalue(res, i, 0)),
		       util_term(PQgetvalue(res, i, 1)), util_term(PQgetvalue(res, i, 2)));
	PQclear(res);
	res = db_query(cli->db, "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM locations), "
		       "(SELECT coalesce(sum(size), 0) FROM blobs), pg_total_relation_size('blobs')", 0, NULL, &err);
	if (res == NULL)
		return cli_error("status: %s", err);
	printf("\narchive: %s unique messages, %s locations, %.1f MB raw, %.1f MB on disk\n", PQgetvalue(res, 0, 0),
	       PQgetvalue(res, 0, 1), atof(PQgetvalue(res, 0, 2)) / 1e6, atof(PQgetvalue(res, 0, 3)) / 1e6);
	PQclear(res);
	res = db_query(cli->db, "SELECT count(*) FILTER (WHERE indexed_at IS NOT NULL), count(*), "
		       "coalesce(extract(epoch FROM now() - min(ingested_at) FILTER (WHERE indexed_at IS NULL))::bigint, 0), "
		       "(SELECT count(*) FROM index_queue) FROM messages", 0, NULL, &err);
	if (res == NULL)
		return cli_error("status: %s", err);
	long long lag = atoll(PQgetvalue(res, 0, 2));
	printf("index: indexed %s of %s", PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
	if (strcmp(PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1)) != 0)
		printf("; oldest unindexed message waiting %lld s", lag);
	if (atoll(PQgetvalue(res, 0, 3)) > 0)
		printf("; %s queued changes", PQgetvalue(res, 0, 3));
	printf("\n");
	PQclear(res);
	if (status_retention(cli, &err) < 0)
		return cli_error("status: %s", err);
	/* what could not be archived; an error whose UID was archived later says so */
	res = db_query(cli->db, "SELECT a.name, coalesce(f.name, '-'), e.uid, e.size, e.reason, " ISO_UTC("e.occurred_at")
		       ", EXISTS (SELECT 1 FROM locations l WHERE l.folder_id = e.folder_id AND l.uidvalidity = e.uidvalidity "
		       "AND l.uid = e.uid), e.retry, e.kind FROM ingest_errors e JOIN accounts a ON a.id = e.account_id "
		       "LEFT JOIN folders f ON f.id = e.folder_id ORDER BY e.id DESC LIMIT 20", 0, NULL, &err);
	if (res == NULL)
		return cli_error("status: %s", err);
	if (PQntuples(res) > 0)
		printf("\ningest errors (newest first):\n");
	for (int i = 0; i < PQntuples(res); i++) {
		bool archived = strcmp(PQgetvalue(res, i, 6), "t") == 0;
		const char *kind = PQgetvalue(res, i, 8);
		printf("  %s %s/%s uid %s (%s bytes): %s%s\n", PQgetvalue(res, i, 5), util_term(PQgetvalue(res, i, 0)),
		       util_term(PQgetvalue(res, i, 1)), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
		       util_term(PQgetvalue(res, i, 4)),
		       strcmp(kind, "second-body") == 0 ? " [both bodies archived; the UID names the first]"
		       : archived ? " [archived since]"
		       : strcmp(PQgetvalue(res, i, 7), "t") == 0 ? " [asked for again at every poll]" : "");
	}
	PQclear(res);
	return 0;
}

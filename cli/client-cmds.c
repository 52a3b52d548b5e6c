/* The officers' commands: search, show and audit (list, verify), answered by mailvault-web over its
 * socket (anchors, which need OpenSSL and libcurl, are mailvault-cli's: client-anchor.c). Whoever runs them (an administrator too) is the officer whose --unix-user they are; the service
 * applies the scope and writes the audit row. Output and exit status are those the commands always had: 0 done, 1 refused or
 * failed, 2 a malformed query or usage. */
#include "client-cmds.h"
#include "client.h"
#include "json-out.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Prints a line of fields for a terminal (control characters escaped), "-" for a missing one. */
static const char *shown(json_object *o, const char *key)
{
	const char *v = client_member(o, key);
	return v ? util_term(v) : "-";
}

int client_search(const char *sock, bool json, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' }, { "count", no_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' }, { "offset", required_argument, NULL, 'o' },
		{ "sort", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 } };
	bool count_only = false;
	uint64_t limit = 50, offset = 0;
	const char *sort = "-date";
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'j': break;
		case 'n': count_only = true; break;
		case 'l':
			if (util_parse_uint(optarg, 1, 100000, &limit) < 0)
				return client_fail(1, "search", "--limit must be 1 to 100000");
			break;
		case 'o':
			if (util_parse_uint(optarg, 0, UINT32_MAX, &offset) < 0)
				return client_fail(1, "search", "--offset must be a number");
			break;
		case 's':
			if (strcmp(optarg, "date") != 0 && strcmp(optarg, "-date") != 0 && strcmp(optarg, "relevance") != 0)
				return client_fail(1, "search", "--sort must be date, -date or relevance");
			sort = optarg;
			break;
		default:
			return client_fail(1, NULL, "usage: mailvault search [--json] [--count] [--limit N] [--offset N] "
						    "[--sort date|-date|relevance] QUERY");
		}
	}
	/* the query is every remaining word, so quoting the whole query is optional */
	struct buf q = { 0 }, path = { 0 }, body = { 0 };
	for (int i = optind; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			continue;
		buf_printf(&q, "%s%s", q.len ? " " : "", argv[i]);
	}
	if (q.len == 0) {
		buf_free(&q);
		return client_fail(1, NULL, "usage: mailvault search [options] QUERY (e.g. from:@enron.com subject:budget)");
	}
	buf_append_str(&path, count_only ? "/api/v1/count?q=" : "/api/v1/search?q=");
	client_url_encode(&path, (const char *)q.data);
	if (!count_only)
		buf_printf(&path, "&limit=%llu&offset=%llu&sort=%s", (unsigned long long)limit, (unsigned long long)offset,
			   sort);
	json_object *j = NULL;
	int status = client_json(sock, (const char *)path.data, &j, &body);
	int rc = 1;
	if (status < 0)
		goto out;
	if (status != 200 || j == NULL) {
		rc = client_refused(status, j, &body, "search");
		goto out;
	}
	if (count_only) {
		json_object *n;
		if (!json_object_object_get_ex(j, "count", &n)) {
			rc = client_fail(1, "search", "the service's answer has no count");
			goto out;
		}
		if (json)
			printf("{\"count\":%llu}\n", (unsigned long long)json_object_get_uint64(n));
		else
			printf("%llu\n", (unsigned long long)json_object_get_uint64(n));
		rc = 0;
		goto out;
	}
	json_object *results, *total_j;
	if (!json_object_object_get_ex(j, "results", &results) || !json_object_is_type(results, json_type_array) ||
	    !json_object_object_get_ex(j, "total", &total_j)) {
		rc = client_fail(1, "search", "the service's answer has no results");
		goto out;
	}
	uint64_t total = json_object_get_uint64(total_j);
	size_t n = json_object_array_length(results);
	if (!json)
		fprintf(stderr, "%llu match%s%s\n", (unsigned long long)total, total == 1 ? "" : "es",
			total > offset + n ? " (use --offset for more)" : "");
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(results, i);
		if (json) {
			json_print_line(stdout, json_object_get(m));
			continue;
		}
		const char *acct = client_member(m, "account"), *folder = client_member(m, "folder");
		char *place = xasprintf("%s%s%s", acct ? acct : "", folder ? "/" : "", folder ? folder : "");
		printf("%s\t", shown(m, "serial"));
		printf("%s\t", shown(m, "date"));
		printf("%s\t", shown(m, "from"));
		printf("%s\t", shown(m, "to"));
		printf("%s\t", shown(m, "subject"));
		printf("%s\n", util_term(place));
		free(place);
	}
	rc = 0;
out:
	json_object_put(j);
	buf_free(&q);
	buf_free(&path);
	buf_free(&body);
	return rc;
}

/* The raw bytes to stdout: exactly, or escaped (and said so) when stdout is a terminal. */
static int client_write_raw(const struct buf *body)
{
	if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, "mailvault: standard output is a terminal: control characters are shown escaped; "
			"redirect it to a file or a pipe for the exact bytes\n");
		struct buf b = { 0 };
		for (size_t i = 0; i < body->len; i++) {
			if (body->data[i] == '\0')
				buf_append_str(&b, "\\x00");
			else
				buf_append(&b, body->data + i, 1);
		}
		char *safe = util_term_safe(b.data ? (const char *)b.data : "", true);
		int rc = fputs(safe, stdout) >= 0 && fflush(stdout) == 0 ? 0 : 1;
		free(safe);
		buf_free(&b);
		return rc;
	}
	return fwrite(body->data, 1, body->len, stdout) == body->len && fflush(stdout) == 0 ? 0 : 1;
}

int client_show(const char *sock, bool json, int argc, char **argv)
{
	static const struct option opts[] = { { "raw", no_argument, NULL, 'r' }, { "json", no_argument, NULL, 'j' },
					      { NULL, 0, NULL, 0 } };
	bool raw = false;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'r')
			raw = true;
		else if (c != 'j')
			return client_fail(1, NULL, "usage: mailvault show SERIAL [--raw]");
	}
	uint64_t serial;
	if (optind != argc - 1 || util_parse_uint(argv[optind], 1, INT64_MAX, &serial) < 0)
		return client_fail(1, NULL, "usage: mailvault show SERIAL [--raw] (SERIAL is a message number from ls or search)");
	char path[96];
	snprintf(path, sizeof(path), "/api/v1/messages/%llu%s", (unsigned long long)serial, raw ? "/raw" : "");
	struct buf body = { 0 };
	json_object *j = NULL;
	int status = raw ? client_get(sock, path, &body) : client_json(sock, path, &j, &body);
	int rc = 1;
	if (status < 0)
		goto out;
	if (status != 200) {
		if (raw)
			j = body.len ? json_tokener_parse((const char *)body.data) : NULL;
		rc = client_refused(status, j, &body, "show");
		goto out;
	}
	if (raw) {
		rc = client_write_raw(&body);
		goto out;
	}
	if (j == NULL) {
		rc = client_fail(1, "show", "the service's answer is not JSON");
		goto out;
	}
	if (json) {
		json_print_line(stdout, json_object_get(j));
		rc = 0;
		goto out;
	}
	static const char *keys[] = { "serial", "sha256", "message_id", "date", "from", "to", "cc", "subject", "size",
				      "archived", "header_error" };
	static const char *labels[] = { "Serial", "SHA-256", "Message-ID", "Date", "From", "To", "Cc", "Subject", "Size",
					"Archived", "Header-Error" };
	for (int k = 0; k < 11; k++)
		if (client_member(j, keys[k]) != NULL)
			printf("%-12s %s\n", labels[k], util_term(client_member(j, keys[k])));
	json_object *places, *atts;
	if (json_object_object_get_ex(j, "places", &places) && json_object_is_type(places, json_type_array))
		for (size_t i = 0; i < json_object_array_length(places); i++) {
			json_object *p = json_object_array_get_idx(places, i);
			const char *idate = client_member(p, "internaldate"), *flags = client_member(p, "flags");
			printf("%-12s %s/", "Seen-In", util_term(client_member(p, "account")));
			printf("%s uidvalidity %s uid %s internaldate %s ", util_term(client_member(p, "folder")),
			       client_member(p, "uidvalidity"), client_member(p, "uid"), idate ? idate : "");
			printf("flags (%s) first seen %s\n", flags ? util_term(flags) : "", client_member(p, "first_seen"));
		}
	if (json_object_object_get_ex(j, "attachments", &atts) && json_object_is_type(atts, json_type_array))
		for (size_t i = 0; i < json_object_array_length(atts); i++) {
			json_object *a = json_object_array_get_idx(atts, i);
			const char *name = client_member(a, "filename");
			printf("%-12s %s", "Attachment", name ? util_term(name) : "(no name)");
			printf(" (%s, %s bytes)\n", util_term(client_member(a, "mimetype")), client_member(a, "size"));
		}
	if (client_member(j, "note") != NULL)
		printf("%-12s %s\n", "Note", util_term(client_member(j, "note")));
	const char *text = client_member(j, "text");
	char *safe = util_term_safe(text ? text : "", true);
	printf("\n%s\n", safe);
	free(safe);
	rc = 0;
out:
	json_object_put(j);
	buf_free(&body);
	return rc;
}

/* audit list [--since TIME] [--actor NAME] [--action ACTION] [--json]: every matching row, page by page. */
static int client_audit_list(const char *sock, bool json, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 's' }, { "actor", required_argument, NULL, 'a' },
		{ "action", required_argument, NULL, 'x' }, { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	const char *since = NULL, *actor = NULL, *action = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': since = optarg; break;
		case 'a': actor = optarg; break;
		case 'x': action = optarg; break;
		case 'j': break;
		default:
			return client_fail(1, NULL, "usage: mailvault audit list [--since TIME] [--actor NAME] [--action ACTION] [--json]");
		}
	}
	if (optind != argc)
		return client_fail(1, NULL, "usage: mailvault audit list [--since TIME] [--actor NAME] [--action ACTION] [--json]");
	long long after = 0;
	for (;;) {
		struct buf path = { 0 }, body = { 0 };
		buf_printf(&path, "/api/v1/audit?limit=1000&after=%lld", after);
		const char *names[] = { "since", "actor", "action" }, *values[] = { since, actor, action };
		for (int k = 0; k < 3; k++)
			if (values[k] != NULL) {
				buf_printf(&path, "&%s=", names[k]);
				client_url_encode(&path, values[k]);
			}
		json_object *j = NULL, *rows;
		int status = client_json(sock, (const char *)path.data, &j, &body);
		buf_free(&path);
		if (status < 0) {
			buf_free(&body);
			return 1;
		}
		if (status != 200 || j == NULL || !json_object_object_get_ex(j, "rows", &rows) ||
		    !json_object_is_type(rows, json_type_array)) {
			int rc = client_refused(status, j, &body, "audit list");
			json_object_put(j);
			buf_free(&body);
			return rc;
		}
		size_t n = json_object_array_length(rows);
		for (size_t i = 0; i < n; i++) {
			json_object *row = json_object_array_get_idx(rows, i), *det;
			after = json_object_get_int64(json_object_object_get(row, "seq"));
			if (json) {
				json_print_line(stdout, json_object_get(row));
				continue;
			}
			det = json_object_object_get(row, "details");
			printf("%lld\t%s\t", after, shown(row, "at"));
			printf("%s\t", shown(row, "actor"));
			printf("%s\t", shown(row, "via"));
			printf("%s\t", shown(row, "client"));
			printf("%s\t", shown(row, "action"));
			printf("%s\t", shown(row, "target"));
			printf("%s\n", util_term(det ? json_object_to_json_string_ext(det, JSON_C_TO_STRING_PLAIN) : "{}"));
		}
		json_object_put(j);
		buf_free(&body);
		if (n < 1000)
			return 0;
	}
}

/* audit verify: the service recomputes every hash; the first row that does not verify is named. */
static int client_audit_verify(const char *sock, bool json)
{
	struct buf body = { 0 };
	json_object *j = NULL;
	int status = client_json(sock, "/api/v1/audit/verify", &j, &body);
	int rc = 1;
	if (status < 0)
		goto out;
	if (status != 200 || j == NULL) {
		rc = client_refused(status, j, &body, "audit verify");
		goto out;
	}
	json_object *ok = json_object_object_get(j, "ok");
	bool good = ok != NULL && json_object_get_boolean(ok);
	if (json)
		json_print_line(stdout, json_object_get(j));
	else if (good)
		printf("audit verify: all %s rows verify; the chain's head is row %s, hash %s\n", client_member(j, "rows"),
		       client_member(j, "head_seq"), client_member(j, "head_hash"));
	else
		printf("audit verify: row %s does not verify: %s (the %s rows before it verify)\n", client_member(j, "broken_seq"),
		       client_member(j, "reason"), client_member(j, "rows"));
	rc = good ? 0 : 1;
out:
	json_object_put(j);
	buf_free(&body);
	return rc;
}

int client_audit(const char *sock, bool json, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return client_audit_list(sock, json, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "anchor") == 0)
		return CLIENT_RUN_FULL;
	if (argc >= 2 && strcmp(argv[1], "verify") == 0) {
		const char *anchor = NULL, *tsa_ca = NULL;
		if (client_verify_options(argc - 1, argv + 1, &anchor, &tsa_ca) < 0)
			return 1;
		return anchor ? CLIENT_RUN_FULL : client_audit_verify(sock, json);
	}
	return client_fail(1, NULL, "usage: mailvault audit list [--since TIME] [--actor NAME] [--action ACTION] [--json] "
				    "| audit verify [--anchor FILE [--tsa-ca FILE]] | audit anchor --file FILE [--tsa URL "
				    "[--tsa-ca FILE]]");
}

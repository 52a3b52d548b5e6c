/* The officers' retention commands, answered by mailvault-web: policy, matter, hold and erase. The service
 * decides who may (by role) and writes the audit row with each change; the database decides what may change
 * at all. Exit status: 0 done, 1 refused or failed, 2 usage. */
#include "client-cmds.h"
#include "client.h"
#include "json-out.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prints "mailvault: CMD: MESSAGE" and returns rc. */
static int rc_fail(int rc, const char *cmd, const char *msg)
{
	fprintf(stderr, "mailvault: %s: %s\n", cmd, msg);
	return rc;
}

/* A member as a string for a terminal, "-" when absent or null. */
static const char *rc_shown(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || v == NULL)
		return "-";
	return util_term(json_object_get_string(v));
}

/* One call: method on path with an optional body (taken). Returns 0 with *out (the answer, to free), or the
   exit status after printing why not. */
static int rc_call(const char *sock, const char *cmd, const char *method, const char *path, json_object *body,
		   json_object **out)
{
	struct buf resp = { 0 };
	const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
	int status = client_request(sock, method, path, text, &resp);
	json_object_put(body);
	if (status < 0) {
		buf_free(&resp);
		return 1;
	}
	buf_append(&resp, "", 1);
	json_object *j = json_tokener_parse((const char *)resp.data);
	if (status != 200) {
		json_object *v;
		int rc = status == 400 ? 2 : 1;
		if (status == 409 && j && json_object_object_get_ex(j, "needs_confirm", &v))
			fprintf(stderr, "mailvault: %s: %s\n", cmd, client_error_text(j, &resp));
		else
			rc_fail(rc, cmd, client_error_text(j, &resp));
		json_object_put(j);
		buf_free(&resp);
		return rc;
	}
	buf_free(&resp);
	if (j == NULL)
		return rc_fail(1, cmd, "mailvault-web sent an answer that is not JSON");
	*out = j;
	return 0;
}

/* "a,b,c" as a JSON array of names. */
static json_object *rc_list(const char *csv)
{
	json_object *a = json_object_new_array();
	char *copy = xstrdup(csv), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
		if (*t)
			json_object_array_add(a, json_object_new_string(t));
	free(copy);
	return a;
}

/* Appends "/" and a name to path, percent-encoded. */
static void rc_path(struct buf *b, const char *base, const char *name, const char *action)
{
	buf_append_str(b, base);
	if (name) {
		buf_append_str(b, "/");
		client_url_encode(b, name);
	}
	if (action) {
		buf_append_str(b, "/");
		buf_append_str(b, action);
	}
	buf_append(b, "", 1);
	b->len--;
}

/* Prints the answer as JSON or calls the printer; frees it. */
static int rc_print(json_object *j, bool json, void (*print)(json_object *))
{
	if (json)
		json_print_line(stdout, j);
	else {
		print(j);
		json_object_put(j);
	}
	return 0;
}

/* --- policy --- */

static void print_policy_line(json_object *p)
{
	json_object *acc = json_object_object_get(p, "accounts");
	printf("%-20s keep %-12s accounts %-24s folders %-10s query %s%s\n", rc_shown(p, "name"), rc_shown(p, "keep"),
	       acc ? util_term(json_object_to_json_string_ext(acc, JSON_C_TO_STRING_PLAIN)) : "-", rc_shown(p, "folders"),
	       rc_shown(p, "query"), json_object_get_boolean(json_object_object_get(p, "locked")) ? "  [locked]" : "");
}

static void print_policies(json_object *j)
{
	json_object *a = json_object_object_get(j, "policies");
	if (json_object_array_length(a) == 0)
		printf("no retention policy: every message is kept\n");
	for (size_t i = 0; i < json_object_array_length(a); i++)
		print_policy_line(json_object_array_get_idx(a, i));
}

static void print_policy(json_object *p)
{
	print_policy_line(p);
	printf("covers %s messages now (%s bytes); decides the retention of %s; %s past it (first expiry %s)\n",
	       rc_shown(p, "covered"), rc_shown(p, "bytes"), rc_shown(p, "deciding"), rc_shown(p, "expired"),
	       rc_shown(p, "first_expiry"));
	printf("created by %s at %s", rc_shown(p, "created_by"), rc_shown(p, "created_at"));
	if (json_object_get_boolean(json_object_object_get(p, "locked")))
		printf("; locked by %s at %s", rc_shown(p, "locked_by"), rc_shown(p, "locked_at"));
	printf("\n");
}

static void print_policy_change(json_object *j)
{
	printf("policy %s: done; %s message%s eligible for disposal sooner\n", rc_shown(j, "policy"), rc_shown(j, "sooner"),
	       strcmp(rc_shown(j, "sooner"), "1") == 0 ? "" : "s");
}

#define POLICY_USAGE \
	"usage: mailvault policy add NAME --keep DURATION|forever (--accounts A,B | --all) [--folders PATTERN] [--query QUERY] " \
	"[--confirm]\n       mailvault policy set NAME [--keep D] [--accounts A,B | --all] [--folders P] [--query Q] [--confirm]\n" \
	"       mailvault policy list | show NAME | lock NAME | remove NAME [--confirm]"

static int client_policy(const char *sock, bool json, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "keep", required_argument, NULL, 'k' }, { "accounts", required_argument, NULL, 'a' },
		{ "all", no_argument, NULL, 'A' }, { "folders", required_argument, NULL, 'f' },
		{ "query", required_argument, NULL, 'q' }, { "confirm", no_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	if (argc < 2)
		return rc_fail(2, "policy", POLICY_USAGE);
	const char *sub = argv[1];
	json_object *b = json_object_new_object();
	int c;
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': json_object_object_add(b, "keep", json_object_new_string(optarg)); break;
		case 'a': json_object_object_add(b, "accounts", rc_list(optarg)); break;
		case 'A': json_object_object_add(b, "all", json_object_new_boolean(true)); break;
		case 'f': json_object_object_add(b, "folders", json_object_new_string(optarg)); break;
		case 'q': json_object_object_add(b, "query", json_object_new_string(optarg)); break;
		case 'c': json_object_object_add(b, "confirm", json_object_new_boolean(true)); break;
		case 'j': json = true; break;
		default: json_object_put(b); return rc_fail(2, "policy", POLICY_USAGE);
		}
	}
	int rest = argc - 1 - optind;
	const char *name = rest >= 1 ? argv[1 + optind] : NULL;
	struct buf path = { 0 };
	json_object *out = NULL;
	int rc;
	if (strcmp(sub, "list") == 0 && rest == 0) {
		json_object_put(b);
		rc = rc_call(sock, "policy list", "GET", "/api/v1/policies", NULL, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_policies);
	} else if (strcmp(sub, "show") == 0 && rest == 1) {
		json_object_put(b);
		rc_path(&path, "/api/v1/policies", name, NULL);
		rc = rc_call(sock, "policy show", "GET", (const char *)path.data, NULL, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_policy);
	} else if ((strcmp(sub, "add") == 0 || strcmp(sub, "set") == 0) && rest == 1) {
		if (strcmp(sub, "add") == 0) {
			json_object_object_add(b, "name", json_object_new_string(name));
			rc_path(&path, "/api/v1/policies", NULL, NULL);
		} else {
			rc_path(&path, "/api/v1/policies", name, NULL);
		}
		rc = rc_call(sock, strcmp(sub, "add") == 0 ? "policy add" : "policy set", "POST", (const char *)path.data, b, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_policy_change);
	} else if ((strcmp(sub, "lock") == 0 || strcmp(sub, "remove") == 0) && rest == 1) {
		rc_path(&path, "/api/v1/policies", name, sub);
		rc = rc_call(sock, strcmp(sub, "lock") == 0 ? "policy lock" : "policy remove", "POST", (const char *)path.data, b,
			     &out);
		if (rc == 0)
			rc = rc_print(out, json, print_policy_change);
	} else {
		json_object_put(b);
		rc = rc_fail(2, "policy", POLICY_USAGE);
	}
	buf_free(&path);
	return rc;
}

/* --- matter --- */

static void print_matters(json_object *j)
{
	json_object *a = json_object_object_get(j, "matters");
	if (json_object_array_length(a) == 0)
		printf("no matter\n");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		json_object *m = json_object_array_get_idx(a, i);
		printf("%-20s %-8s active holds %s of %s  opened by %s  %s\n", rc_shown(m, "name"),
		       strcmp(rc_shown(m, "closed_at"), "-") == 0 ? "open" : "closed", rc_shown(m, "active_holds"),
		       rc_shown(m, "holds"), rc_shown(m, "created_by"), rc_shown(m, "description"));
	}
}

static void print_done(json_object *j)
{
	json_object_object_foreach(j, k, v) {
		printf("%s %s ", k, v ? util_term(json_object_get_string(v)) : "-");
	}
	printf("\n");
}

#define MATTER_USAGE "usage: mailvault matter add M --description TEXT | matter close M | matter list"

static int client_matter(const char *sock, bool json, int argc, char **argv)
{
	static const struct option opts[] = { { "description", required_argument, NULL, 'd' },
					      { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	if (argc < 2)
		return rc_fail(2, "matter", MATTER_USAGE);
	const char *sub = argv[1], *desc = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'd')
			desc = optarg;
		else if (c == 'j')
			json = true;
		else
			return rc_fail(2, "matter", MATTER_USAGE);
	}
	int rest = argc - 1 - optind;
	const char *name = rest >= 1 ? argv[1 + optind] : NULL;
	json_object *out = NULL;
	struct buf path = { 0 };
	int rc;
	if (strcmp(sub, "list") == 0 && rest == 0) {
		rc = rc_call(sock, "matter list", "GET", "/api/v1/matters", NULL, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_matters);
	} else if (strcmp(sub, "add") == 0 && rest == 1) {
		if (desc == NULL)
			return rc_fail(2, "matter add", "a matter needs --description TEXT");
		json_object *b = json_object_new_object();
		json_object_object_add(b, "name", json_object_new_string(name));
		json_object_object_add(b, "description", json_object_new_string(desc));
		rc = rc_call(sock, "matter add", "POST", "/api/v1/matters", b, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_done);
	} else if (strcmp(sub, "close") == 0 && rest == 1) {
		rc_path(&path, "/api/v1/matters", name, "close");
		rc = rc_call(sock, "matter close", "POST", (const char *)path.data, json_object_new_object(), &out);
		if (rc == 0)
			rc = rc_print(out, json, print_done);
	} else {
		rc = rc_fail(2, "matter", MATTER_USAGE);
	}
	buf_free(&path);
	return rc;
}

/* --- hold --- */

static void print_hold_line(json_object *h)
{
	json_object *acc = json_object_object_get(h, "accounts");
	printf("%-20s matter %-14s %-18s accounts %s", rc_shown(h, "name"), rc_shown(h, "matter"), rc_shown(h, "status"),
	       acc ? util_term(json_object_to_json_string_ext(acc, JSON_C_TO_STRING_PLAIN)) : "-");
	if (strcmp(rc_shown(h, "from"), "-") != 0 || strcmp(rc_shown(h, "to"), "-") != 0)
		printf(" dates %s..%s", rc_shown(h, "from"), rc_shown(h, "to"));
	if (strcmp(rc_shown(h, "query"), "-") != 0)
		printf(" query %s", rc_shown(h, "query"));
	printf("  (%s)\n", rc_shown(h, "reason"));
}

static void print_holds(json_object *j)
{
	json_object *a = json_object_object_get(j, "holds");
	if (json_object_array_length(a) == 0)
		printf("no hold\n");
	for (size_t i = 0; i < json_object_array_length(a); i++)
		print_hold_line(json_object_array_get_idx(a, i));
}

static void print_hold(json_object *h)
{
	print_hold_line(h);
	printf("placed by %s at %s", rc_shown(h, "placed_by"), rc_shown(h, "placed_at"));
	if (strcmp(rc_shown(h, "released_at"), "-") != 0)
		printf("; released by %s at %s (%s); grace ends %s", rc_shown(h, "released_by"), rc_shown(h, "released_at"),
		       rc_shown(h, "release_reason"), rc_shown(h, "grace_ends"));
	printf("\ncovers %s messages now (%s bytes), %s of them past their retention\n", rc_shown(h, "covered"),
	       rc_shown(h, "bytes"), rc_shown(h, "kept_past_retention"));
	json_object *ms = json_object_object_get(h, "messages");
	for (size_t i = 0; ms && i < json_object_array_length(ms); i++) {
		json_object *m = json_object_array_get_idx(ms, i);
		printf("  %8s  %-25s  %s\n", rc_shown(m, "serial"), rc_shown(m, "date"), rc_shown(m, "subject"));
	}
}

#define HOLD_USAGE \
	"usage: mailvault hold add NAME --matter M --reason TEXT (--accounts A,B | --all) [--from DATE] [--to DATE] " \
	"[--query QUERY]\n       mailvault hold list [--matter M] | hold show NAME [--limit N] | hold release NAME --reason TEXT"

static int client_hold(const char *sock, bool json, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "matter", required_argument, NULL, 'm' }, { "reason", required_argument, NULL, 'r' },
		{ "accounts", required_argument, NULL, 'a' }, { "all", no_argument, NULL, 'A' },
		{ "from", required_argument, NULL, 'f' }, { "to", required_argument, NULL, 't' },
		{ "query", required_argument, NULL, 'q' }, { "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	if (argc < 2)
		return rc_fail(2, "hold", HOLD_USAGE);
	const char *sub = argv[1], *matter = NULL, *limit = NULL;
	json_object *b = json_object_new_object();
	int c;
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': matter = optarg; json_object_object_add(b, "matter", json_object_new_string(optarg)); break;
		case 'r': json_object_object_add(b, "reason", json_object_new_string(optarg)); break;
		case 'a': json_object_object_add(b, "accounts", rc_list(optarg)); break;
		case 'A': json_object_object_add(b, "all", json_object_new_boolean(true)); break;
		case 'f': json_object_object_add(b, "from", json_object_new_string(optarg)); break;
		case 't': json_object_object_add(b, "to", json_object_new_string(optarg)); break;
		case 'q': json_object_object_add(b, "query", json_object_new_string(optarg)); break;
		case 'l': limit = optarg; break;
		case 'j': json = true; break;
		default: json_object_put(b); return rc_fail(2, "hold", HOLD_USAGE);
		}
	}
	int rest = argc - 1 - optind;
	const char *name = rest >= 1 ? argv[1 + optind] : NULL;
	json_object *out = NULL;
	struct buf path = { 0 };
	int rc;
	if (strcmp(sub, "list") == 0 && rest == 0) {
		json_object_put(b);
		buf_append_str(&path, "/api/v1/holds");
		if (matter) {
			buf_append_str(&path, "?matter=");
			client_url_encode(&path, matter);
		}
		buf_append(&path, "", 1);
		rc = rc_call(sock, "hold list", "GET", (const char *)path.data, NULL, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_holds);
	} else if (strcmp(sub, "show") == 0 && rest == 1) {
		json_object_put(b);
		rc_path(&path, "/api/v1/holds", name, NULL);
		if (limit) {
			buf_append_str(&path, "?limit=");
			client_url_encode(&path, limit);
			buf_append(&path, "", 1);
		}
		rc = rc_call(sock, "hold show", "GET", (const char *)path.data, NULL, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_hold);
	} else if (strcmp(sub, "add") == 0 && rest == 1) {
		json_object_object_add(b, "name", json_object_new_string(name));
		rc = rc_call(sock, "hold add", "POST", "/api/v1/holds", b, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_done);
	} else if (strcmp(sub, "release") == 0 && rest == 1) {
		rc_path(&path, "/api/v1/holds", name, "release");
		rc = rc_call(sock, "hold release", "POST", (const char *)path.data, b, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_done);
	} else {
		json_object_put(b);
		rc = rc_fail(2, "hold", HOLD_USAGE);
	}
	buf_free(&path);
	return rc;
}

/* --- erase --- */

static void print_refusals(json_object *j)
{
	json_object *a = json_object_object_get(j, "refusals");
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		json_object *e = json_object_array_get_idx(a, i);
		printf("  refused: message %s: %s\n", rc_shown(e, "serial"), rc_shown(e, "note"));
	}
}

static void print_erase_request(json_object *j)
{
	printf("erasure request %s: %s messages, %s refused; status %s\n", rc_shown(j, "id"), rc_shown(j, "messages"),
	       rc_shown(j, "refused"), rc_shown(j, "status"));
	print_refusals(j);
	if (strcmp(rc_shown(j, "status"), "pending") == 0)
		printf("a different officer of the admin role approves it: mailvault erase approve %s\n", rc_shown(j, "id"));
}

static void print_erase_approve(json_object *j)
{
	printf("erasure request %s: %s; %s messages wait for mailvault-retention\n", rc_shown(j, "id"), rc_shown(j, "status"),
	       rc_shown(j, "pending"));
	print_refusals(j);
}

static void print_erase_line(json_object *q)
{
	printf("%-6s %-9s by %-12s approved by %-12s messages %s (pending %s, erased %s, refused %s)  %s\n", rc_shown(q, "id"),
	       rc_shown(q, "status"), rc_shown(q, "requested_by"), rc_shown(q, "approved_by"), rc_shown(q, "messages"),
	       rc_shown(q, "pending"), rc_shown(q, "erased"), rc_shown(q, "refused"), rc_shown(q, "reason"));
}

static void print_erase_list(json_object *j)
{
	json_object *a = json_object_object_get(j, "requests");
	if (json_object_array_length(a) == 0)
		printf("no erasure request\n");
	for (size_t i = 0; i < json_object_array_length(a); i++)
		print_erase_line(json_object_array_get_idx(a, i));
}

static void print_erase_show(json_object *q)
{
	print_erase_line(q);
	printf("query: %s\n", rc_shown(q, "query"));
	json_object *items = json_object_object_get(q, "items");
	for (size_t i = 0; items && i < json_object_array_length(items); i++) {
		json_object *e = json_object_array_get_idx(items, i);
		printf("  %8s  %-8s %s %s\n", rc_shown(e, "serial"), rc_shown(e, "state"), rc_shown(e, "sha256"),
		       strcmp(rc_shown(e, "note"), "-") ? rc_shown(e, "note") : "");
	}
}

#define ERASE_USAGE \
	"usage: mailvault erase request --query QUERY --reason TEXT | erase approve ID | erase list | erase show ID"

static int client_erase(const char *sock, bool json, int argc, char **argv)
{
	static const struct option opts[] = { { "query", required_argument, NULL, 'q' },
					      { "reason", required_argument, NULL, 'r' },
					      { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	if (argc < 2)
		return rc_fail(2, "erase", ERASE_USAGE);
	const char *sub = argv[1], *query = NULL, *reason = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		if (c == 'q')
			query = optarg;
		else if (c == 'r')
			reason = optarg;
		else if (c == 'j')
			json = true;
		else
			return rc_fail(2, "erase", ERASE_USAGE);
	}
	int rest = argc - 1 - optind;
	const char *id = rest >= 1 ? argv[1 + optind] : NULL;
	json_object *out = NULL;
	struct buf path = { 0 };
	int rc;
	uint64_t n;
	if (strcmp(sub, "request") == 0 && rest == 0) {
		if (query == NULL || reason == NULL)
			return rc_fail(2, "erase request", "give --query QUERY and --reason TEXT");
		json_object *b = json_object_new_object();
		json_object_object_add(b, "query", json_object_new_string(query));
		json_object_object_add(b, "reason", json_object_new_string(reason));
		rc = rc_call(sock, "erase request", "POST", "/api/v1/erasures", b, &out);
		/* a request whose every message is refused erases nothing: the command says so by its status */
		bool refused = rc == 0 && strcmp(rc_shown(out, "status"), "refused") == 0;
		if (rc == 0)
			rc = rc_print(out, json, print_erase_request);
		if (refused)
			rc = rc_fail(1, "erase request", "refused: every message it names is under a hold or a locked policy");
	} else if (strcmp(sub, "list") == 0 && rest == 0) {
		rc = rc_call(sock, "erase list", "GET", "/api/v1/erasures", NULL, &out);
		if (rc == 0)
			rc = rc_print(out, json, print_erase_list);
	} else if ((strcmp(sub, "approve") == 0 || strcmp(sub, "show") == 0) && rest == 1 &&
		   util_parse_uint(id, 1, INT64_MAX, &n) == 0) {
		bool approve = strcmp(sub, "approve") == 0;
		rc_path(&path, "/api/v1/erasures", id, approve ? "approve" : NULL);
		rc = rc_call(sock, approve ? "erase approve" : "erase show", approve ? "POST" : "GET", (const char *)path.data,
			     approve ? json_object_new_object() : NULL, &out);
		if (rc == 0)
			rc = rc_print(out, json, approve ? print_erase_approve : print_erase_show);
	} else {
		rc = rc_fail(2, "erase", ERASE_USAGE);
	}
	buf_free(&path);
	return rc;
}

int client_retention(const char *sock, bool json, int argc, char **argv)
{
	if (strcmp(argv[0], "policy") == 0)
		return client_policy(sock, json, argc, argv);
	if (strcmp(argv[0], "matter") == 0)
		return client_matter(sock, json, argc, argv);
	if (strcmp(argv[0], "hold") == 0)
		return client_hold(sock, json, argc, argv);
	return client_erase(sock, json, argc, argv);
}

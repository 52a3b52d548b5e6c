/* mailvault audit anchor and audit verify --anchor: the chain's head recorded outside the database, time-stamped
 * by an RFC 3161 authority, and checked again later. Run by mailvault-cli (the front end hands these two over:
 * they need OpenSSL's TS API and libcurl), as a client of mailvault-web's socket like the other officers'
 * commands. */
#include "client-cmds.h"
#include "client.h"
#include "json-out.h"
#include "sha256.h"
#include "tsa.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* --- anchoring the chain outside the database ---
 * An anchor is one line of JSON in a file the administrator names (kept off the database's machine, or
 * on write-once storage): {"seq":N,"hash":"<hex>","anchored_at":"<UTC>"[,"tsa":URL,"tsa_time":"<UTC>",
 * "tst":"<base64 DER TimeStampToken>"]}. The time stamp covers SHA-256 of ANCHOR_TEXT, so it proves the
 * head existed then; the hash chain makes that head commit to every row before it. */

#define ANCHOR_TEXT "mailvault-audit-anchor\n%lld\n%s\n"
#define ANCHOR_FILE_MAX (64 * 1024 * 1024)
#define ANCHORS_PER_REQUEST 400  /* each ~120 bytes of JSON: well inside the service's 64 KB body limit */

/* One line of an anchor file. */
struct anchor_line {
	unsigned line;               /* its line number in the file */
	int64_t seq;
	char hash[65];
	char *at, *tsa, *tsa_time, *tst;   /* owned; tsa, tsa_time, tst NULL when not time-stamped */
	bool token_checked;
};

/* The digest an anchor's time stamp covers. */
static void anchor_digest(int64_t seq, const char *hex, unsigned char digest[SHA256_LEN])
{
	char *text = xasprintf(ANCHOR_TEXT, (long long)seq, hex);
	sha256_digest(text, strlen(text), digest);
	free(text);
}

/* True if s is 64 lower-case hex digits. */
static bool anchor_is_hash(const char *s)
{
	return s != NULL && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* True if s reads as a UTC time as the service and the authority give it (digits, T, Z, : . + - ). */
static bool anchor_is_time(const char *s)
{
	return s != NULL && *s != '\0' && strlen(s) < 48 && strspn(s, "0123456789TZ:.+-") == strlen(s);
}

static void anchor_lines_free(struct anchor_line *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].at);
		free(a[i].tsa);
		free(a[i].tsa_time);
		free(a[i].tst);
	}
	free(a);
}

/* A string member of o, or NULL when missing; *bad set when present but not a string. */
static const char *anchor_string(json_object *o, const char *key, bool *bad)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string)) {
		*bad = true;
		return NULL;
	}
	return json_object_get_string(v);
}

/* Reads one line into *a; NULL, or why it is no anchor (static text). */
static const char *anchor_parse(const unsigned char *text, size_t len, struct anchor_line *a)
{
	if (len == 0)
		return "it is empty";
	if (memchr(text, '\0', len) != NULL || len > 64 * 1024)
		return "it is not a line of JSON";
	json_tokener *tok = json_tokener_new();
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *o = json_tokener_parse_ex(tok, (const char *)text, (int)len);
	bool whole = o != NULL && json_tokener_get_parse_end(tok) == len;
	json_tokener_free(tok);
	const char *why = NULL;
	json_object *seq;
	bool bad = false;
	const char *hash, *at, *tsa, *tsa_time, *tst;
	if (!whole || !json_object_is_type(o, json_type_object)) {
		why = "it is not a JSON object";
	} else if (!json_object_object_get_ex(o, "seq", &seq) || !json_object_is_type(seq, json_type_int) ||
		   json_object_get_int64(seq) < 1 || json_object_get_int64(seq) == INT64_MAX) {
		why = "its \"seq\" is not a row number";
	} else if (!anchor_is_hash(hash = anchor_string(o, "hash", &bad))) {
		why = "its \"hash\" is not 64 lower-case hex digits";
	} else if (!anchor_is_time(at = anchor_string(o, "anchored_at", &bad))) {
		why = "its \"anchored_at\" is not a time";
	} else {
		tsa = anchor_string(o, "tsa", &bad);
		tsa_time = anchor_string(o, "tsa_time", &bad);
		tst = anchor_string(o, "tst", &bad);
		if (bad)
			why = "its \"tsa\", \"tsa_time\" or \"tst\" is not a string";
		else if ((tsa_time != NULL || tsa != NULL) && tst == NULL)
			why = "it names a time-stamp authority or time but carries no token (\"tst\")";
		else if (tst != NULL && (tsa == NULL || !anchor_is_time(tsa_time)))
			why = "its token comes without \"tsa\" and \"tsa_time\"";
		else {
			a->seq = json_object_get_int64(seq);
			snprintf(a->hash, sizeof(a->hash), "%s", hash);
			a->at = xstrdup(at);
			a->tsa = tsa ? xstrdup(tsa) : NULL;
			a->tsa_time = tsa_time ? xstrdup(tsa_time) : NULL;
			a->tst = tst ? xstrdup(tst) : NULL;
		}
	}
	json_object_put(o);
	return why;
}

/* Reads every anchor of path; 0, or -1 with *error_r (the caller frees) naming the line at fault. */
static int anchor_file_read(const char *path, struct anchor_line **out, size_t *n_r, char **error_r)
{
	*out = NULL;
	*n_r = 0;
	FILE *f = fopen(path, "rbe");
	if (f == NULL) {
		*error_r = xasprintf("cannot read the anchor file %s: %s", util_term(path), strerror(errno));
		return -1;
	}
	struct buf data = { 0 };
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0 && data.len <= ANCHOR_FILE_MAX)
		buf_append(&data, chunk, got);
	bool failed = ferror(f);
	fclose(f);
	if (failed || data.len > ANCHOR_FILE_MAX) {
		*error_r = xasprintf("cannot read the anchor file %s: %s", util_term(path),
				     failed ? "read error" : "larger than 64 MB");
		buf_free(&data);
		return -1;
	}
	struct anchor_line *a = NULL;
	size_t n = 0, cap = 0, pos = 0, len;
	const unsigned char *line;
	unsigned lineno = 0;
	int rc = 0;
	while (util_next_line(data.data, data.len, &pos, &line, &len)) {
		lineno++;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			a = xrealloc(a, cap * sizeof(*a));
		}
		memset(&a[n], 0, sizeof(a[n]));
		a[n].line = lineno;
		const char *why = anchor_parse(line, len, &a[n]);
		if (why != NULL) {
			*error_r = xasprintf("%s line %u is not an anchor: %s", util_term(path), lineno, why);
			rc = -1;
			break;
		}
		n++;
	}
	buf_free(&data);
	if (rc == 0 && n == 0) {
		*error_r = xasprintf("the anchor file %s holds no anchors", util_term(path));
		rc = -1;
	}
	if (rc < 0) {
		anchor_lines_free(a, n);
		return -1;
	}
	*out = a;
	*n_r = n;
	return 0;
}

/* Appends line (and a newline) to fd, after a newline of its own if the file's last line lacks one, and
   makes it durable. 0, or -1 with errno. */
static int anchor_append(int fd, const char *line)
{
	struct stat st;
	char last = '\n';
	if (fstat(fd, &st) < 0 || (st.st_size > 0 && pread(fd, &last, 1, st.st_size - 1) != 1))
		return -1;
	struct buf b = { 0 };
	if (last != '\n')
		buf_append_str(&b, "\n");
	buf_printf(&b, "%s\n", line);
	/* one write: O_APPEND keeps two anchors at once from interleaving */
	ssize_t w = write(fd, b.data, b.len);
	int rc = w == (ssize_t)b.len && fsync(fd) == 0 ? 0 : -1;
	if (w >= 0 && w != (ssize_t)b.len)
		errno = ENOSPC;
	buf_free(&b);
	return rc;
}

/* Makes a file's new directory entry durable. */
static void anchor_sync_dir(const char *path)
{
	char *copy = xstrdup(path);
	char *slash = strrchr(copy, '/');
	const char *dir = slash == NULL ? "." : slash == copy ? "/" : (*slash = '\0', copy);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	free(copy);
}

/* audit anchor --file FILE [--tsa URL [--tsa-ca FILE]] [--json]: the chain's head, recorded outside. */
static int client_audit_anchor(const char *sock, bool json, int argc, char **argv)
{
	static const char usage[] = "usage: mailvault audit anchor --file FILE [--tsa URL [--tsa-ca FILE]] [--json]";
	static const struct option opts[] = {
		{ "file", required_argument, NULL, 'f' }, { "tsa", required_argument, NULL, 't' },
		{ "tsa-ca", required_argument, NULL, 'c' }, { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	const char *file = NULL, *tsa = NULL, *tsa_ca = NULL;
	int c;
	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f': file = optarg; break;
		case 't': tsa = optarg; break;
		case 'c': tsa_ca = optarg; break;
		case 'j': break;
		default: return client_fail(1, NULL, usage);
		}
	}
	if (optind != argc)
		return client_fail(1, NULL, usage);
	if (file == NULL)
		return client_fail(1, "audit anchor", "give --file FILE: the anchor is appended to a file kept outside the "
				   "database (another machine's share, write-once storage)");
	if (tsa_ca != NULL && tsa == NULL)
		return client_fail(1, "audit anchor", "--tsa-ca FILE verifies a time-stamp authority's token: give --tsa URL too");
	/* everything that can be refused is refused before the service records an anchoring */
	char *err = NULL;
	if (tsa != NULL && tsa_url_check(tsa, &err) < 0) {
		int rc = client_fail(1, "audit anchor", err);
		free(err);
		return rc;
	}
	if (tsa_ca != NULL && access(tsa_ca, R_OK) < 0) {
		fprintf(stderr, "mailvault: audit anchor: cannot read --tsa-ca %s: %s\n", util_term(tsa_ca), strerror(errno));
		return 1;
	}
	struct stat st;
	bool created = stat(file, &st) < 0 && errno == ENOENT;
	int fd = open(file, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0) {
		fprintf(stderr, "mailvault: audit anchor: cannot open %s: %s\n", util_term(file), strerror(errno));
		return 1;
	}
	struct buf body = { 0 };
	json_object *j = NULL, *line = NULL;
	struct tsa_stamp stamp = { 0 };
	int rc = 1;
	int status = client_json(sock, "/api/v1/audit/head", &j, &body);
	if (status < 0)
		goto out;
	if (status != 200 || j == NULL) {
		rc = client_refused(status, j, &body, "audit anchor");
		goto out;
	}
	json_object *seq_j;
	const char *hash = client_member(j, "hash"), *at = client_member(j, "at");
	if (!json_object_object_get_ex(j, "seq", &seq_j) || !json_object_is_type(seq_j, json_type_int) ||
	    json_object_get_int64(seq_j) < 1 || !anchor_is_hash(hash) || !anchor_is_time(at)) {
		rc = client_fail(1, "audit anchor", "the service's answer has no chain head");
		goto out;
	}
	int64_t seq = json_object_get_int64(seq_j);
	if (!json)
		printf("audit anchor: the chain's head is row %lld, hash %s (%s)\n", (long long)seq, hash, at);
	fflush(stdout);
	line = json_object_new_object();
	json_object_object_add(line, "seq", json_object_new_int64(seq));
	json_object_object_add(line, "hash", json_object_new_string(hash));
	json_object_object_add(line, "anchored_at", json_object_new_string(at));
	if (tsa != NULL) {
		unsigned char digest[SHA256_LEN];
		anchor_digest(seq, hash, digest);
		if (tsa_stamp(tsa, digest, tsa_ca, &stamp, &err) < 0) {
			fprintf(stderr, "mailvault: audit anchor: %s; nothing was appended to %s\n", err, util_term(file));
			free(err);
			goto out;
		}
		json_object_object_add(line, "tsa", json_object_new_string(tsa));
		json_object_object_add(line, "tsa_time", json_object_new_string(stamp.gen_time));
		json_object_object_add(line, "tst", json_object_new_string(stamp.token_b64));
	}
	if (anchor_append(fd, json_object_to_json_string_ext(line, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) < 0) {
		fprintf(stderr, "mailvault: audit anchor: cannot write %s: %s\n", util_term(file), strerror(errno));
		goto out;
	}
	if (created)
		anchor_sync_dir(file);
	if (json) {
		json_object_object_add(line, "file", json_object_new_string(file));
		json_object_object_add(line, "tsa_signature_checked", json_object_new_boolean(tsa != NULL && tsa_ca != NULL));
		json_print_line(stdout, json_object_get(line));
	} else if (tsa != NULL) {
		printf("audit anchor: appended to %s, time-stamped by %s at %s", util_term(file), util_term(tsa), stamp.gen_time);
		printf(" (%s)\n", tsa_ca ? "token signature and certificate chain verified against --tsa-ca"
					 : "token signature not verified: give --tsa-ca FILE to check the authority");
	} else {
		printf("audit anchor: appended to %s (no time stamp: give --tsa URL to have an authority attest it)\n",
		       util_term(file));
	}
	rc = 0;
out:
	close(fd);
	tsa_stamp_free(&stamp);
	json_object_put(line);
	json_object_put(j);
	buf_free(&body);
	return rc;
}

/* POSTs anchors [from, to) for the service to judge; the HTTP status with its JSON answer in *out, or -1. */
static int anchor_verify_batch(const char *sock, const struct anchor_line *a, size_t from, size_t to, json_object **out,
			       struct buf *body)
{
	json_object *req = json_object_new_object(), *list = json_object_new_array();
	for (size_t i = from; i < to; i++) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "seq", json_object_new_int64(a[i].seq));
		json_object_object_add(o, "hash", json_object_new_string(a[i].hash));
		json_object_object_add(o, "at", json_object_new_string(a[i].at));
		json_object_array_add(list, o);
	}
	json_object_object_add(req, "anchors", list);
	const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	int status = client_request(sock, "POST", "/api/v1/audit/verify", text, body);
	json_object_put(req);
	*out = status > 0 && body->len ? json_tokener_parse((const char *)body->data) : NULL;
	return status;
}

/* audit verify --anchor FILE [--tsa-ca FILE]: every token checked here, then the chain and every anchor
   judged by the service in one walk over the log (a few walks for a file of many hundreds of anchors). */
static int client_audit_verify_anchored(const char *sock, bool json, const char *file, const char *tsa_ca)
{
	struct anchor_line *a = NULL;
	size_t n = 0, tokens = 0;
	char *err = NULL;
	json_object *result = NULL, *all = json_object_new_array();
	int rc = 1;
	if (anchor_file_read(file, &a, &n, &err) < 0)
		goto failed;
	if (tsa_ca != NULL && access(tsa_ca, R_OK) < 0) {
		err = xasprintf("cannot read --tsa-ca %s: %s", util_term(tsa_ca), strerror(errno));
		goto failed;
	}
	/* a token proves the line's seq and hash existed at its time: an edited line no longer matches it */
	for (size_t i = 0; i < n; i++) {
		if (a[i].tst == NULL)
			continue;
		unsigned char digest[SHA256_LEN];
		char gen_time[TSA_TIME_LEN], *why = NULL;
		anchor_digest(a[i].seq, a[i].hash, digest);
		if (tsa_token_verify(a[i].tst, digest, tsa_ca, gen_time, &why) < 0) {
			err = xasprintf("%s line %u (row %lld): %s", util_term(file), a[i].line, (long long)a[i].seq, why);
			free(why);
			goto failed;
		}
		if (strcmp(gen_time, a[i].tsa_time) != 0) {
			err = xasprintf("%s line %u (row %lld): its tsa_time %s is not the token's time %s", util_term(file),
					a[i].line, (long long)a[i].seq, a[i].tsa_time, gen_time);
			goto failed;
		}
		a[i].token_checked = true;
		tokens++;
	}
	for (size_t from = 0; from < n; from += ANCHORS_PER_REQUEST) {
		size_t to = from + ANCHORS_PER_REQUEST < n ? from + ANCHORS_PER_REQUEST : n;
		struct buf body = { 0 };
		json_object *j = NULL, *list;
		int status = anchor_verify_batch(sock, a, from, to, &j, &body);
		if (status < 0) {
			buf_free(&body);
			goto out;
		}
		if (status != 200 || j == NULL || !json_object_object_get_ex(j, "anchors", &list) ||
		    !json_object_is_type(list, json_type_array) || json_object_array_length(list) != to - from) {
			rc = client_refused(status, j, &body, "audit verify");
			json_object_put(j);
			buf_free(&body);
			goto out;
		}
		for (size_t i = from; i < to; i++) {
			json_object *r = json_object_get(json_object_array_get_idx(list, i - from));
			json_object_object_add(r, "line", json_object_new_int64(a[i].line));
			if (a[i].tst != NULL) {
				json_object_object_add(r, "tsa", json_object_new_string(a[i].tsa));
				json_object_object_add(r, "tsa_time", json_object_new_string(a[i].tsa_time));
			}
			json_object_array_add(all, r);
		}
		/* the chain's verdict: the last walk's, unless an earlier one found it broken */
		bool broken_before = result != NULL && !json_object_get_boolean(json_object_object_get(result, "chain_ok"));
		if (!broken_before) {
			json_object_put(result);
			result = json_object_get(j);
		}
		json_object_put(j);
		buf_free(&body);
	}
	size_t failed_n = 0;
	json_object *first_bad = NULL, *newest = NULL;
	json_object *chain_ok_j = json_object_object_get(result, "chain_ok");
	bool chain_ok = chain_ok_j != NULL && json_object_get_boolean(chain_ok_j);
	for (size_t i = 0; i < n; i++) {
		json_object *r = json_object_array_get_idx(all, i);
		bool ok = json_object_get_boolean(json_object_object_get(r, "ok"));
		if (!ok) {
			failed_n++;
			/* with the chain broken, anchors past the break say only that: name one that says more */
			const char *st = client_member(r, "status");
			if (first_bad == NULL && (chain_ok || (st && strcmp(st, "unverified") != 0)))
				first_bad = r;
		}
		if (newest == NULL || a[i].seq > json_object_get_int64(json_object_object_get(newest, "seq")))
			newest = r;
	}
	bool good = chain_ok && failed_n == 0;
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_foreach(result, key, val) {
			if (strcmp(key, "anchors") != 0)
				json_object_object_add(o, key, json_object_get(val));
		}
		json_object_object_add(o, "ok", json_object_new_boolean(good));
		json_object_object_add(o, "anchors_ok", json_object_new_boolean(failed_n == 0));
		json_object_object_add(o, "anchor_file", json_object_new_string(file));
		json_object_object_add(o, "tokens_checked", json_object_new_int64((int64_t)tokens));
		json_object_object_add(o, "token_signatures_checked", json_object_new_boolean(tsa_ca != NULL && tokens > 0));
		json_object_object_add(o, "anchors", json_object_get(all));
		json_print_line(stdout, o);
	} else if (good) {
		printf("audit verify: all %s rows verify; the chain's head is row %s, hash %s\n", client_member(result, "rows"),
		       client_member(result, "head_seq"), client_member(result, "head_hash"));
		printf("audit verify: all %zu anchor%s of %s match; the newest names row %s, anchored on %s", n,
		       n == 1 ? "" : "s", util_term(file), client_member(newest, "seq"), client_member(newest, "at"));
		if (client_member(newest, "tsa") != NULL)
			printf(", time-stamped by %s at %s", util_term(client_member(newest, "tsa")), client_member(newest, "tsa_time"));
		printf("\n");
		if (tokens > 0 && tsa_ca != NULL)
			printf("audit verify: %zu time-stamp token%s verified: imprint, signature and certificate chain against %s\n",
			       tokens, tokens == 1 ? "" : "s", util_term(tsa_ca));
		else if (tokens > 0)
			printf("audit verify: %zu time-stamp token%s checked for imprint only: their signatures were not "
			       "verified (give --tsa-ca FILE)\n", tokens, tokens == 1 ? "" : "s");
	} else {
		if (!chain_ok)
			printf("audit verify: row %s does not verify: %s (the %s rows before it verify)\n",
			       client_member(result, "broken_seq"), client_member(result, "reason"), client_member(result, "rows"));
		if (first_bad != NULL) {
			printf("audit verify: %s (%s line %s)", client_member(first_bad, "reason"), util_term(file),
			       client_member(first_bad, "line"));
			if (failed_n > 1)
				printf("; %zu more anchor%s fail%s", failed_n - 1, failed_n == 2 ? "" : "s", failed_n == 2 ? "s" : "");
			printf("\n");
		}
	}
	rc = good ? 0 : 1;
	goto out;
failed:
	if (json) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "ok", json_object_new_boolean(false));
		json_object_object_add(o, "anchor_file", json_object_new_string(file));
		json_object_object_add(o, "error", json_text(err));
		json_print_line(stdout, o);
	}
	fprintf(stderr, "mailvault: audit verify: %s\n", err);
out:
	free(err);
	json_object_put(result);
	json_object_put(all);
	anchor_lines_free(a, n);
	return rc;
}

int client_anchor(const char *sock, bool json, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "anchor") == 0)
		return client_audit_anchor(sock, json, argc - 1, argv + 1);
	const char *anchor = NULL, *tsa_ca = NULL;
	if (argc >= 2 && strcmp(argv[1], "verify") == 0) {
		if (client_verify_options(argc - 1, argv + 1, &anchor, &tsa_ca) < 0)
			return 1;
		if (anchor != NULL)
			return client_audit_verify_anchored(sock, json, anchor, tsa_ca);
	}
	return client_fail(1, NULL, "usage: mailvault audit verify --anchor FILE [--tsa-ca FILE] | audit anchor --file "
				    "FILE [--tsa URL [--tsa-ca FILE]] (the other audit commands are the mailvault command's)");
}

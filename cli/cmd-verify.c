/* mailvault verify: the administrator's integrity sweep: every stored blob's bytes hashed again in C. */
#include "cli.h"
#include "json-out.h"
#include "db.h"
#include "sha256.h"
#include "util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* verify [--sample N | --all]: recomputes the SHA-256 of stored blobs (all of them, or N drawn at random)
   and reports every blob whose bytes no longer hash to its key. The sweep is audited when it starts and
   with its result. Exit status 0 when every blob checked is intact. */
int cmd_verify(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sample", required_argument, NULL, 's' }, { "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
	uint64_t sample = 0;
	int c;
	optind = 0;
	while ((c = getopt_long(argc + 1, argv - 1, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (util_parse_uint(optarg, 1, UINT32_MAX, &sample) < 0)
				return cli_error("verify: --sample takes a number of blobs");
			break;
		case 'a': sample = 0; break;
		case 'j': break;
		default: return cli_error("usage: mailvault verify [--sample N | --all] [--json]");
		}
	}
	if (optind != argc + 1)
		return cli_error("usage: mailvault verify [--sample N | --all] [--json]");
	if (cli_connect(cli) < 0)
		return 1;
	char s_sample[24];
	snprintf(s_sample, sizeof(s_sample), "%llu", (unsigned long long)sample);
	json_object *details = json_object_new_object();
	json_object_object_add(details, "sample", sample ? json_object_new_int64((int64_t)sample) : NULL);
	if (cli_audit(cli, "verify-start", sample ? "sample" : "all", details) < 0)
		return 1;
	/* streamed a row at a time: memory stays at one message whatever the archive's size */
	const char *p[] = { s_sample };
	if (PQsendQueryParams(cli->db, sample
			      ? "SELECT b.sha256, b.raw FROM blobs b JOIN (SELECT sha256 FROM blobs ORDER BY random() "
				"LIMIT $1::bigint) s ON s.sha256 = b.sha256"
			      : "SELECT sha256, raw FROM blobs WHERE $1::bigint = 0",
			      1, NULL, p, NULL, NULL, 1) != 1 || PQsetSingleRowMode(cli->db) != 1)
		return cli_error("verify: %s", PQerrorMessage(cli->db));
	double t0 = util_now();
	uint64_t checked = 0, bytes = 0, bad = 0;
	int rc = 0;
	PGresult *res;
	json_object *bad_keys = cli->json ? json_object_new_array() : NULL;
	while ((res = PQgetResult(cli->db)) != NULL) {
		if (PQresultStatus(res) == PGRES_SINGLE_TUPLE) {
			unsigned char sha[SHA256_LEN];
			size_t len = (size_t)PQgetlength(res, 0, 1);
			sha256_digest(PQgetvalue(res, 0, 1), len, sha);
			checked++;
			bytes += len;
			if (PQgetlength(res, 0, 0) != SHA256_LEN || memcmp(sha, PQgetvalue(res, 0, 0), SHA256_LEN) != 0) {
				char key[2 * SHA256_LEN + 1] = "", now[2 * SHA256_LEN + 1];
				if (PQgetlength(res, 0, 0) == SHA256_LEN)
					util_hex((const unsigned char *)PQgetvalue(res, 0, 0), SHA256_LEN, key);
				util_hex(sha, SHA256_LEN, now);
				bad++;
				if (cli->json) {
					json_object_array_add(bad_keys, json_object_new_string(key));
				} else {
					printf("CORRUPT blob %s (%zu bytes): its bytes hash to %s\n", key, len, now);
				}
			}
		} else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
			rc = cli_error("verify: %s", PQresultErrorMessage(res));
		}
		PQclear(res);
	}
	double secs = util_now() - t0;
	details = json_object_new_object();
	json_object_object_add(details, "checked", json_object_new_int64((int64_t)checked));
	json_object_object_add(details, "bytes", json_object_new_int64((int64_t)bytes));
	json_object_object_add(details, "mismatches", json_object_new_int64((int64_t)bad));
	json_object_object_add(details, "complete", json_object_new_boolean(rc == 0));
	if (cli_audit(cli, "verify", sample ? "sample" : "all", details) < 0)
		rc = 1;
	if (cli->json) {
		/* seconds keeps its three decimals */
		char s_secs[32];
		snprintf(s_secs, sizeof(s_secs), "%.3f", secs);
		json_object *o = json_object_new_object();
		json_object_object_add(o, "checked", json_object_new_int64((int64_t)checked));
		json_object_object_add(o, "bytes", json_object_new_int64((int64_t)bytes));
		json_object_object_add(o, "seconds", json_object_new_double_s(secs, s_secs));
		json_object_object_add(o, "mismatches", bad_keys);
		json_print_line(stdout, o);
	} else {
		printf("verify: %llu blob%s (%.1f MB) hashed again in %.1f s: %llu mismatch%s\n", (unsigned long long)checked,
		       checked == 1 ? "" : "s", (double)bytes / 1e6, secs, (unsigned long long)bad, bad == 1 ? "" : "es");
	}
	return rc != 0 || bad > 0 ? 1 : 0;
}

/* Unit tests of lib/audit-chain.c: the chain is recomputed, and every kind of change is found at the
   row where it happened. (it-web checks the same code against rows the database wrote.) */
#include "audit-chain.h"
#include "sha256.h"
#include "unit.h"

#include <stdio.h>

#define ROWS 5

static struct audit_row rows[ROWS];
static unsigned char hashes[ROWS][32];

/* Builds a good chain: row 1 of the first form, the rest of the second. */
static void build(void)
{
	static const char *actors[ROWS] = { "admin", "jane", "jane", "mailvault-web", "bob" };
	for (int i = 0; i < ROWS; i++) {
		rows[i] = (struct audit_row){ .seq = i + 1, .form = i == 0 ? 1 : 2, .at = "2026-11-28T08:00:00.123456",
					      .actor = actors[i], .via = i ? "token" : NULL, .client = i ? "127.0.0.1" : NULL,
					      .recorded_by = i ? "web" : NULL, .action = "search", .target = "budget",
					      .details = "{\"count\": 3}" };
		rows[i].prev_hash = i ? hashes[i - 1] : (const unsigned char *)"";
		rows[i].prev_len = i ? 32 : 0;
		audit_chain_hash(&rows[i], rows[i].prev_hash, rows[i].prev_len, hashes[i]);
		rows[i].hash = hashes[i];
		rows[i].hash_len = 32;
	}
}

/* Verifies the chain; returns the seq of the first broken row, or 0. */
static int64_t verify(void)
{
	struct audit_verify v;
	audit_verify_init(&v);
	for (int i = 0; i < ROWS; i++)
		if (!audit_verify_row(&v, &rows[i]))
			return v.broken_seq;
	return 0;
}

int main(void)
{
	build();
	CHECK(verify() == 0);

	/* the first form is what 003's function hashed: prev || "seq|at|actor|action|target|details" */
	unsigned char want[32];
	const char *text = "1|2026-11-28T08:00:00.123456|admin|search|budget|{\"count\": 3}";
	sha256_digest(text, strlen(text), want);
	CHECK(memcmp(hashes[0], want, 32) == 0);

	/* a changed field breaks its own row */
	rows[2].target = "budgets";
	CHECK(verify() == 3);
	build();
	rows[3].client = "10.0.0.1";
	CHECK(verify() == 4);
	build();
	/* NULL and "" hash differently, and fields cannot run into each other */
	rows[1].via = "";
	CHECK(verify() == 2);
	build();
	rows[1].action = "searchb";
	rows[1].target = "udget";
	CHECK(verify() == 2);
	build();
	/* a row taken out: the next one says so */
	rows[2] = rows[3];
	rows[3] = rows[4];
	struct audit_verify v;
	audit_verify_init(&v);
	bool ok = true;
	for (int i = 0; i < ROWS - 1 && ok; i++)
		ok = audit_verify_row(&v, &rows[i]);
	CHECK(!ok && v.broken_seq == 4 && strstr(v.reason, "missing") != NULL);
	build();
	/* a row rewritten with a fresh hash of its new fields: the row after it no longer links */
	rows[1].actor = "mallory";
	audit_chain_hash(&rows[1], rows[1].prev_hash, rows[1].prev_len, hashes[1]);
	CHECK(verify() == 3);
	build();
	/* a log that does not start at 1 */
	audit_verify_init(&v);
	CHECK(!audit_verify_row(&v, &rows[1]) && v.broken_seq == 2);
	return unit_finish("test-audit-chain");
}

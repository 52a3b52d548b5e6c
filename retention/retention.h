/* mailvault-retention: what its files share (the run, the dry-run report, the stop flag). */
#ifndef MAILVAULT_RETENTION_H
#define MAILVAULT_RETENTION_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "config.h"

/* Set by SIGTERM/SIGINT: the batch in hand finishes (it is one transaction), then the run stops. */
extern volatile sig_atomic_t retention_stop;

/* What one run removed. */
struct retention_totals {
	uint64_t disposed, disposed_bytes;
	uint64_t erased, erased_bytes, refused;
};

/* One run on db (the retention role's connection): approved erasures, then every expired message no hold
   keeps, in batches of [retention] batch messages and batch_ms milliseconds, each its own transaction;
   records the run in disposal_runs, wakes the indexer, and VACUUMs what was deleted (on a connection of
   its own, [retention] vacuum_conninfo). Fills *totals_r with what went (also after a failure: what went
   before it). Returns 0, or -1 with *error_r (valid until the next db_* call). */
int retention_run(const struct config *cfg, PGconn *db, struct retention_totals *totals_r, const char **error_r);

/* The dry run: prints what a run would remove now (per policy and per account), the approved erasures
   pending and the expired messages kept by holds (per hold), as a table or, with json, one JSON object
   on one line. Changes nothing. Returns 0, or -1 with *error_r. */
int retention_report(PGconn *db, bool json, const char **error_r);

#endif

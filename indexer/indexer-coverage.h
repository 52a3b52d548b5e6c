/* mailvault-indexer: records what each hold's and policy's query covers among the indexed messages. */
#ifndef MAILVAULT_INDEXER_COVERAGE_H
#define MAILVAULT_INDEXER_COVERAGE_H

#include <libpq-fe.h>

/* For every query of an active (or still in grace) hold and of every policy, when messages were indexed
   since its coverage was last recorded (or it never was): runs the query over the whole index (all
   shards under index_path) and records the matching serials with mailvault_coverage_record, complete up
   to the time of that transaction. A query that does not parse is logged and left unrecorded (its hold
   keeps everything; a policy's leaves nothing eligible). Returns 0, or -1 with *error_r on a database or
   index failure. */
int indexer_coverage(PGconn *db, const char *index_path, const char **error_r);

#endif

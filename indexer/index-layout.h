/* The index on disk: a directory of shards, each one Xapian database with one writer, searched together.
   Messages go to shard serial % n; n is fixed when the index is created (recorded in DIR/shards). */
#ifndef MAILVAULT_INDEX_LAYOUT_H
#define MAILVAULT_INDEX_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define INDEX_MAX_SHARDS 64
/* The metadata key and value marking a shard whose every document was written the way this version
   writes them: the subject under its own prefix only, so body: never matches it (format 2). A shard
   without the mark may hold documents of an earlier version: index verify says so, and `mailvault index
   rebuild` followed by a full pass of the indexer marks it. */
#define INDEX_FORMAT_KEY "mailvault.index-format"
#define INDEX_FORMAT "2"

/* The shard paths of an existing index. Returns a NULL-terminated array (free with
   index_layout_free) and *n_r, or NULL with *error_r (malloc'd). */
char **index_layout_shards(const char *index_path, size_t *n_r, char **error_r);
/* Same, creating the layout with n shards first if the index does not exist yet; an existing index
   keeps the shard count it was created with. */
char **index_layout_create(const char *index_path, unsigned n, size_t *n_r, char **error_r);
/* Frees a path array; sets *paths to NULL. */
void index_layout_free(char ***paths);
/* The shard a message's document lives in. */
static inline size_t index_layout_shard_of(uint64_t serial, size_t n)
{
	return (size_t)(serial % n);
}

#endif

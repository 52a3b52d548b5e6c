/* The index on disk: a directory of shards, each one Xapian database with one writer, searched together. */
#include "index-layout.h"
#include "util.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Builds DIR/shard-0 ... DIR/shard-(n-1). */
static char **layout_paths(const char *index_path, size_t n)
{
	char **paths = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		paths[i] = xasprintf("%s/shard-%zu", index_path, i);
	return paths;
}

/* Reads the shard count of an existing index. */
char **index_layout_shards(const char *index_path, size_t *n_r, char **error_r)
{
	char *file = xasprintf("%s/shards", index_path);
	FILE *f = fopen(file, "r");
	if (f == NULL) {
		*error_r = xasprintf("no index at %s (%s: %s)", index_path, file, strerror(errno));
		free(file);
		return NULL;
	}
	unsigned n = 0;
	int ok = fscanf(f, "%u", &n) == 1 && n >= 1 && n <= INDEX_MAX_SHARDS;
	fclose(f);
	if (!ok) {
		*error_r = xasprintf("%s does not hold a shard count from 1 to %d", file, INDEX_MAX_SHARDS);
		free(file);
		return NULL;
	}
	free(file);
	*n_r = n;
	return layout_paths(index_path, n);
}

/* Creates the layout on first use; the count file is written last, so a half-made layout is redone. */
char **index_layout_create(const char *index_path, unsigned n, size_t *n_r, char **error_r)
{
	char *existing_error = NULL;
	char **paths = index_layout_shards(index_path, n_r, &existing_error);
	if (paths != NULL)
		return paths;
	free(existing_error);
	if (n < 1 || n > INDEX_MAX_SHARDS) {
		*error_r = xasprintf("the shard count must be 1 to %d", INDEX_MAX_SHARDS);
		return NULL;
	}
	if (mkdir(index_path, 0750) < 0 && errno != EEXIST) {
		*error_r = xasprintf("cannot create %s: %s", index_path, strerror(errno));
		return NULL;
	}
	/* a Xapian stub database listing the shards, so Xapian's own tools (xapian-delve, the Python
	   bindings) open the whole index as one */
	char *stub = xasprintf("%s/XAPIANDB", index_path);
	FILE *sf = fopen(stub, "w");
	bool stub_ok = sf != NULL;
	for (unsigned i = 0; stub_ok && i < n; i++)
		stub_ok = fprintf(sf, "auto shard-%u\n", i) > 0;
	if (sf != NULL && fclose(sf) != 0)
		stub_ok = false;
	if (!stub_ok) {
		*error_r = xasprintf("cannot write %s: %s", stub, strerror(errno));
		free(stub);
		return NULL;
	}
	free(stub);
	char *file = xasprintf("%s/shards", index_path), *tmp = xasprintf("%s/shards.tmp", index_path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%u\n", n) < 0 || fclose(f) != 0 || rename(tmp, file) < 0) {
		*error_r = xasprintf("cannot write %s: %s", file, strerror(errno));
		free(file);
		free(tmp);
		return NULL;
	}
	free(file);
	free(tmp);
	*n_r = n;
	return layout_paths(index_path, n);
}

/* Frees the array. */
void index_layout_free(char ***paths)
{
	for (char **p = *paths; p && *p; p++)
		free(*p);
	free(*paths);
	*paths = NULL;
}

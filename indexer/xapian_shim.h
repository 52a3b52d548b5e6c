/* The only door to Xapian (C++): opaque handles, status codes and messages, no exceptions across it. */
#ifndef MAILVAULT_XAPIAN_SHIM_H
#define MAILVAULT_XAPIAN_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

enum xs_status {
	XS_OK = 0,
	XS_ERR_LOCK,        /* another writer holds the database lock */
	XS_ERR_MODIFIED,    /* the database changed under a reader: reopen and retry */
	XS_ERR_CORRUPT,     /* database corrupt: rebuild it */
	XS_ERR_OPENING,     /* cannot open/create (missing, permissions, version) */
	XS_ERR_QUERY,       /* the query cannot be built */
	XS_ERR_NOMEM,       /* std::bad_alloc */
	XS_ERR_NOTFOUND,    /* no such document */
	XS_ERR_OTHER,
};

/* Value slots (sortable with xs_sortable_serialise). */
#define XS_SLOT_DATE 0   /* seconds since the epoch, UTC */
#define XS_SLOT_SIZE 1   /* bytes */

struct xs_db;      /* a database opened for reading or writing */
struct xs_doc;     /* a document being built */
struct xs_query;   /* a query tree */

/* Every function that can fail returns a status and, on failure, sets *error_r to a message that the
   caller frees with free() (error_r may be NULL). */

/* Opens (creating if needed) the database at path for writing: one writer at a time. Nothing written
   becomes visible to readers or durable before xs_db_commit (or xs_db_close), even when Xapian flushes
   its in-memory changes on its own (every XAPIAN_FLUSH_THRESHOLD documents; read when a writer opens). */
enum xs_status xs_db_open_writable(const char *path, struct xs_db **db_r, char **error_r);
/* Opens for reading; several paths may be given to search shards together (add_database). */
enum xs_status xs_db_open_readonly(const char *const *paths, size_t npaths, struct xs_db **db_r, char **error_r);
/* Re-reads the latest committed revision (readers). */
enum xs_status xs_db_reopen(struct xs_db *db, char **error_r);
/* Closes (a writer commits first); sets *db to NULL. */
void xs_db_close(struct xs_db **db);
/* Commits pending changes of a writer. */
enum xs_status xs_db_commit(struct xs_db *db, char **error_r);
/* Number of documents. */
enum xs_status xs_db_doccount(struct xs_db *db, uint64_t *count_r, char **error_r);
/* Calls cb for every document id in ascending order (for verification); cb returns false to stop. */
enum xs_status xs_db_each_docid(struct xs_db *db, bool (*cb)(uint64_t docid, void *ctx), void *ctx, char **error_r);
/* Sets a metadata entry of a writer (kept with the next commit). */
enum xs_status xs_db_set_metadata(struct xs_db *db, const char *key, const char *value, char **error_r);
/* A metadata entry ("" when absent) as a string the caller frees; for a reader over several shards, the
   first shard's. */
enum xs_status xs_db_get_metadata(struct xs_db *db, const char *key, char **value_r, char **error_r);
/* Calls cb for every (term, document) under prefix: the term's value after the prefix (len bytes, not
   NUL-terminated) and the document id, terms in order; cb returns false to stop. For verification: what
   the index says each document holds (accounts, folders). */
enum xs_status xs_db_each_posting(struct xs_db *db, const char *prefix,
				  bool (*cb)(const char *value, size_t len, uint64_t docid, void *ctx), void *ctx,
				  char **error_r);
/* The value xs_doc_add_term(prefix, value) stores after the prefix: value itself, or for an over-long one
   its kept start and hash. A string the caller frees, NULL when out of memory. */
char *xs_term_value(const char *prefix, const char *value);
/* Writes the document under docid, replacing any earlier one (idempotent re-indexing). */
enum xs_status xs_db_replace(struct xs_db *db, uint64_t docid, const struct xs_doc *doc, char **error_r);
/* Deletes docid; deleting a missing document is not an error. */
enum xs_status xs_db_delete(struct xs_db *db, uint64_t docid, char **error_r);
/* Bytes the database's files use on disk (sum of file sizes under path; writers and readers). */
uint64_t xs_db_disk_bytes(const char *path);

/* Document building. Text is UTF-8 (invalid bytes are tolerated). */
struct xs_doc *xs_doc_new(void);
void xs_doc_free(struct xs_doc **doc);
/* Indexes free text under prefix ("" = unprefixed) with positions (phrase search) and the English
   stemmer (STEM_SOME, as notmuch); also the unstemmed terms. Consecutive calls do not join phrases. */
void xs_doc_index_text(struct xs_doc *doc, const char *prefix, const char *text, size_t len);
/* The same without the stemmed (Z) copies: only prefix+word terms, with positions. For names and
   address words, where stemming finds nothing useful; query them with xs_query_text_fields(stem = false). */
void xs_doc_index_text_unstemmed(struct xs_doc *doc, const char *prefix, const char *text, size_t len);
/* Adds one exact term (prefix + value, the value lower-cased by the caller where wanted); terms longer
   than Xapian's limit (245 bytes) are hashed to fit, the same way xs_query_term does. */
void xs_doc_add_term(struct xs_doc *doc, const char *prefix, const char *value);
/* Sets a numeric value slot (stored sortable). */
void xs_doc_set_value(struct xs_doc *doc, unsigned slot, double value);
/* Document data (an opaque blob kept with the document; mailvault stores nothing but may). */
void xs_doc_set_data(struct xs_doc *doc, const char *data, size_t len);

/* Query building. Every constructor takes ownership of the sub-queries it is given. */
/* Text under prefix as Xapian's QueryParser reads it for that field: words (stemmed like the index),
   "quoted phrases", trailing-* wildcards (FLAG_WILDCARD, FLAG_PHRASE, FLAG_PARTIAL off, default op
   AND). Returns NULL with *error_r if Xapian rejects it. */
struct xs_query *xs_query_text(struct xs_db *db, const char *prefix, const char *text, char **error_r);
/* The same over several prefixes: each word matches under any of them (a field indexed under more than
   one prefix); stem = false looks words up unstemmed (text indexed by xs_doc_index_text_unstemmed).
   Phrases must match within one prefix. */
struct xs_query *xs_query_text_fields(struct xs_db *db, const char *const *prefixes, size_t nprefixes, bool stem,
				      const char *text, char **error_r);
/* A phrase of words under prefix, exactly (no stemming), positions adjacent. */
struct xs_query *xs_query_phrase(struct xs_db *db, const char *prefix, const char *text, char **error_r);
/* The same phrase under any of several prefixes (the whole phrase under one of them). */
struct xs_query *xs_query_phrase_fields(struct xs_db *db, const char *const *prefixes, size_t nprefixes,
					const char *text, char **error_r);
/* An exact term (same hashing rule as xs_doc_add_term). */
struct xs_query *xs_query_term(const char *prefix, const char *value);
/* Terms starting with prefix+stem (wildcard over exact terms), e.g. for msgid or address prefixes. */
struct xs_query *xs_query_term_wildcard(struct xs_db *db, const char *prefix, const char *stem);
/* Documents whose value in slot lies in [lo, hi] (either end may be -INFINITY / +INFINITY). */
struct xs_query *xs_query_range(unsigned slot, double lo, double hi);
struct xs_query *xs_query_all(void);
struct xs_query *xs_query_none(void);
struct xs_query *xs_query_and(struct xs_query *a, struct xs_query *b);
struct xs_query *xs_query_or(struct xs_query *a, struct xs_query *b);
/* a AND NOT b. */
struct xs_query *xs_query_and_not(struct xs_query *a, struct xs_query *b);
/* Restricts q to documents matching filter without affecting relevance (OP_FILTER). */
struct xs_query *xs_query_filter(struct xs_query *q, struct xs_query *filter);
/* Human-readable description (for debugging and tests); caller frees. */
char *xs_query_describe(const struct xs_query *q);
void xs_query_free(struct xs_query **q);

enum xs_sort { XS_SORT_RELEVANCE, XS_SORT_DATE_ASC, XS_SORT_DATE_DESC };

/* Runs q: fills docids_r (malloc'd array the caller frees) with up to limit matches starting at
   offset in the requested order, *n_r with how many were returned, and *estimated_total_r (if not
   NULL) with the exact number of matches (check_at_least = all). */
enum xs_status xs_search(struct xs_db *db, const struct xs_query *q, enum xs_sort sort, size_t offset,
			 size_t limit, uint64_t **docids_r, size_t *n_r, uint64_t *total_r, char **error_r);
/* Exact number of matches. */
enum xs_status xs_count(struct xs_db *db, const struct xs_query *q, uint64_t *count_r, char **error_r);

#ifdef __cplusplus
}
#endif
#endif

/* Unit tests of the Xapian shim: indexing, every query constructor, search order and paging, errors. */
#include "xapian_shim.h"
#include "prefixes.h"
#include "unit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ftw.h>
#include <unistd.h>

struct fixture {
	unsigned id;
	const char *subject, *body, *from_addr, *from_domain, *account;
	double date, size;
};

/* Dates are deliberately not in docid order so that sorting is visible. */
static const struct fixture fixtures[] = {
	{1, "Quarterly results", "The quarterly results were strong. Please review the report.",
	 "alice@example.com", "example.com", "work", 3000, 500},
	{2, "Meeting notes", "Attached: results quarterly numbers for the meeting.",
	 "bob@example.org", "example.org", "work", 1000, 1500},
	{3, "Sales reports", "Weekly reports from the sales team.",
	 "carol@example.com", "example.com", "home", 6000, 2500},
	{4, "lunch", "Lunch tomorrow?", "dave@other.net", "other.net", "home", 2000, 100},
	{5, "Offer", "Quartz watches on sale", "alice@example.com", "example.com", "work", 5000, 5000},
	{6, "Sports news", "today quarterback", "erin@other.net", "other.net", "work", 4000, 300},
};

/* Builds one document the way the indexer does (subject both under S and unprefixed). */
static struct xs_doc *fixture_doc(const struct fixture *f)
{
	struct xs_doc *doc = xs_doc_new();
	xs_doc_index_text(doc, PFX_SUBJECT, f->subject, strlen(f->subject));
	xs_doc_index_text(doc, PFX_BODY, f->subject, strlen(f->subject));
	xs_doc_index_text(doc, PFX_BODY, f->body, strlen(f->body));
	xs_doc_add_term(doc, PFX_FROM_ADDR, f->from_addr);
	xs_doc_add_term(doc, PFX_FROM_DOMAIN, f->from_domain);
	xs_doc_add_term(doc, PFX_ACCOUNT, f->account);
	xs_doc_set_value(doc, XS_SLOT_DATE, f->date);
	xs_doc_set_value(doc, XS_SLOT_SIZE, f->size);
	xs_doc_set_data(doc, "d", 1);
	return doc;
}

/* Counts q's matches with xs_count and checks xs_search's total agrees; frees q. Returns UINT64_MAX on error. */
static uint64_t count(struct xs_db *db, struct xs_query *q)
{
	uint64_t n = UINT64_MAX, total = UINT64_MAX, *ids = NULL;
	size_t got = 0;
	char *error = NULL;
	CHECK(q != NULL);
	if (xs_count(db, q, &n, &error) != XS_OK) {
		fprintf(stderr, "count: %s\n", error ? error : "?");
		free(error);
		xs_query_free(&q);
		return UINT64_MAX;
	}
	CHECK(xs_search(db, q, XS_SORT_RELEVANCE, 0, 100, &ids, &got, &total, NULL) == XS_OK);
	CHECK(total == n);
	CHECK(got == n);
	free(ids);
	xs_query_free(&q);
	return n;
}

/* Runs q sorted, writes the docids as "a,b,c" into buf; frees q. */
static const char *order(struct xs_db *db, struct xs_query *q, enum xs_sort sort, size_t offset, size_t limit,
			 uint64_t *total_r, char *buf, size_t bufsize)
{
	uint64_t *ids = NULL;
	size_t n = 0, len = 0;
	buf[0] = '\0';
	if (xs_search(db, q, sort, offset, limit, &ids, &n, total_r, NULL) != XS_OK)
		snprintf(buf, bufsize, "error");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, bufsize - len, "%s%llu", i ? "," : "", (unsigned long long)ids[i]);
	free(ids);
	xs_query_free(&q);
	return buf;
}

static char listed[256];

/* each_docid callback: appends the docid to listed. */
static bool list_docid(uint64_t docid, void *ctx)
{
	size_t len = strlen(listed);
	(void)ctx;
	snprintf(listed + len, sizeof(listed) - len, "%s%llu", len ? "," : "", (unsigned long long)docid);
	return true;
}

/* each_docid callback that stops after the first. */
static bool first_docid(uint64_t docid, void *ctx)
{
	*(uint64_t *)ctx = docid;
	return false;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

/* Text query shorthand. */
static struct xs_query *text(struct xs_db *db, const char *prefix, const char *t)
{
	char *error = NULL;
	struct xs_query *q = xs_query_text(db, prefix, t, &error);
	if (q == NULL) {
		fprintf(stderr, "query_text(%s): %s\n", t, error ? error : "?");
		free(error);
	}
	return q;
}

static void test_main_db(const char *dir)
{
	char path[512], shard[512], buf[256], *error = NULL, long_value[400], long_other[400];
	struct xs_db *w = NULL, *w2 = NULL, *r = NULL;
	uint64_t n = 0, total = 0;

	snprintf(path, sizeof(path), "%s/idx", dir);
	CHECK(xs_db_open_writable(path, &w, &error) == XS_OK);
	CHECK(w != NULL);
	if (w == NULL) {
		fprintf(stderr, "open: %s\n", error);
		free(error);
		return;
	}
	for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
		struct xs_doc *doc = fixture_doc(&fixtures[i]);
		if (fixtures[i].id == 6) {
			/* a term longer than Xapian's limit, and a second one sharing its first 300 bytes */
			memset(long_value, 'x', 300);
			strcpy(long_value + 300, "@long.example");
			xs_doc_add_term(doc, PFX_FROM_ADDR, long_value);
		}
		CHECK(xs_db_replace(w, fixtures[i].id, doc, &error) == XS_OK);
		xs_doc_free(&doc);
		CHECK(doc == NULL);
	}
	CHECK(xs_db_commit(w, &error) == XS_OK);
	CHECK(xs_db_doccount(w, &n, NULL) == XS_OK && n == 6);

	/* a second writer is refused while the first holds the lock */
	CHECK(xs_db_open_writable(path, &w2, &error) == XS_ERR_LOCK);
	CHECK(w2 == NULL);
	CHECK(error != NULL && strstr(error, "ock") != NULL);
	free(error);
	error = NULL;

	/* a reader of the committed revision */
	const char *paths[] = {path};
	CHECK(xs_db_open_readonly(paths, 1, &r, &error) == XS_OK);
	CHECK(xs_db_commit(r, &error) == XS_ERR_OTHER);
	free(error);
	error = NULL;

	/* words, stemming, prefixes */
	CHECK(count(r, text(r, PFX_BODY, "results")) == 2);
	CHECK(count(r, text(r, PFX_BODY, "quarterly")) == 2);
	CHECK(count(r, text(r, PFX_BODY, "reports")) == 2);   /* report (1), reports (3) */
	CHECK(count(r, text(r, PFX_BODY, "report")) == 2);
	CHECK(count(r, text(r, PFX_SUBJECT, "reports")) == 1);
	CHECK(count(r, text(r, PFX_SUBJECT, "quarterly results")) == 1);
	CHECK(count(r, text(r, PFX_SUBJECT, "watches")) == 0);
	CHECK(count(r, text(r, PFX_BODY, "quarterly strong")) == 1);   /* default AND */
	CHECK(count(r, text(r, PFX_BODY, "AND")) == 0);                /* no boolean operators: a word */
	CHECK(count(r, text(r, PFX_BODY, "")) == 0);                   /* empty text matches nothing */
	CHECK(count(r, text(r, PFX_BODY, "   ")) == 0);

	/* phrases */
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "quarterly results", NULL)) == 1);
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "Quarterly, Results!", NULL)) == 1);
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "results quarterly", NULL)) == 1);   /* only doc 2 */
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "result quarterly", NULL)) == 0);    /* unstemmed */
	CHECK(count(r, xs_query_phrase(r, PFX_SUBJECT, "quarterly results", NULL)) == 1);
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "lunch", NULL)) == 1);
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "", NULL)) == 0);
	CHECK(count(r, text(r, PFX_BODY, "\"quarterly results\"")) == 1);
	CHECK(count(r, text(r, PFX_BODY, "\"results quarterly\"")) == 1);
	/* consecutive index_text calls do not join phrases: subject "Sports news" then body "today ..." */
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "news today", NULL)) == 0);
	CHECK(count(r, xs_query_phrase(r, PFX_BODY, "sports news", NULL)) == 1);

	/* wildcards */
	CHECK(count(r, text(r, PFX_BODY, "quart*")) == 4);   /* quarterly 1 2, quartz 5, quarterback 6 */
	CHECK(count(r, text(r, PFX_SUBJECT, "quart*")) == 1);
	CHECK(count(r, text(r, PFX_BODY, "zzz*")) == 0);
	/* wildcards and NOTs of everything are counted as sets of documents, not by Xapian's matcher; count()
	   checks each against a search's total, which Xapian's matcher gives */
	CHECK(count(r, text(r, PFX_BODY, "Quart*")) == 4);     /* lower-cased, as the query parser does */
	CHECK(count(r, text(r, PFX_BODY, " quart* ")) == 4);
	CHECK(count(r, text(r, PFX_BODY, "quart* strong")) == 1);   /* two words: Xapian counts */
	CHECK(count(r, text(r, PFX_BODY, "qu\xc3\xa4rt*")) == 0);    /* not ASCII: Xapian counts */
	const char *body_subject[] = { PFX_BODY, PFX_SUBJECT };
	CHECK(count(r, xs_query_text_fields(r, body_subject, 2, true, "quart*", NULL)) == 4);
	CHECK(count(r, xs_query_and_not(xs_query_all(), text(r, PFX_BODY, "quart*"))) == 2);
	CHECK(count(r, xs_query_and_not(xs_query_all(),
					 xs_query_and_not(xs_query_all(), text(r, PFX_BODY, "quart*")))) == 4);
	CHECK(count(r, xs_query_filter(text(r, PFX_BODY, "quart*"), xs_query_or(xs_query_term(PFX_ACCOUNT, "home"),
										   xs_query_term(PFX_ACCOUNT, "nobody")))) == 0);
	CHECK(count(r, xs_query_filter(text(r, PFX_BODY, "quart*"), xs_query_or(xs_query_none(),
										   xs_query_term(PFX_ACCOUNT, "work")))) == 4);
	CHECK(count(r, xs_query_or(text(r, PFX_BODY, "quart*"), xs_query_term(PFX_ACCOUNT, "home"))) == 6);
	CHECK(count(r, xs_query_and_not(xs_query_term_wildcard(r, PFX_FROM_DOMAIN, "example."),
					 xs_query_term(PFX_ACCOUNT, "work"))) == 1);
	CHECK(count(r, xs_query_and_not(xs_query_all(), xs_query_term(PFX_ACCOUNT, ""))) == 6);

	/* exact terms and term wildcards */
	CHECK(count(r, xs_query_term(PFX_FROM_ADDR, "alice@example.com")) == 2);
	CHECK(count(r, xs_query_term(PFX_FROM_DOMAIN, "example.com")) == 3);
	CHECK(count(r, xs_query_term(PFX_ACCOUNT, "home")) == 2);
	CHECK(count(r, xs_query_term(PFX_ACCOUNT, "Home")) == 0);
	CHECK(count(r, xs_query_term("", "")) == 0);   /* never "all documents" */
	CHECK(count(r, xs_query_term_wildcard(r, PFX_FROM_ADDR, "alice@")) == 2);
	CHECK(count(r, xs_query_term_wildcard(r, PFX_FROM_DOMAIN, "other")) == 2);
	CHECK(count(r, xs_query_term_wildcard(r, PFX_FROM_DOMAIN, "example.")) == 4);
	CHECK(count(r, xs_query_term_wildcard(r, PFX_FROM_DOMAIN, "nomatch")) == 0);

	/* an over-long term is found by the same value, not by another sharing its start */
	memset(long_value, 'x', 300);
	strcpy(long_value + 300, "@long.example");
	memcpy(long_other, long_value, sizeof(long_other));
	long_other[305] = 'X';
	CHECK(count(r, xs_query_term(PFX_FROM_ADDR, long_value)) == 1);
	CHECK(count(r, xs_query_term(PFX_FROM_ADDR, long_other)) == 0);
	CHECK(count(r, xs_query_term_wildcard(r, PFX_FROM_ADDR, "xxxxxxxxxx")) == 1);

	/* value ranges */
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, 3000, INFINITY)) == 4);
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, -INFINITY, 2000)) == 2);
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, 2000, 4000)) == 3);
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, 2000.5, 2999)) == 0);
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, -INFINITY, INFINITY)) == 6);
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, 5000, 1000)) == 0);
	CHECK(count(r, xs_query_range(XS_SLOT_SIZE, 1500, INFINITY)) == 3);
	CHECK(count(r, xs_query_range(XS_SLOT_SIZE, -INFINITY, 99)) == 0);
	/* no document has slot 7: open ends must not match documents without the value */
	CHECK(count(r, xs_query_range(7, -INFINITY, INFINITY)) == 0);
	CHECK(count(r, xs_query_range(7, -INFINITY, 5)) == 0);
	CHECK(count(r, xs_query_range(7, -5, INFINITY)) == 0);
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, INFINITY, INFINITY)) == 0);
	CHECK(count(r, xs_query_range(XS_SLOT_DATE, NAN, 5)) == 0);

	/* combinations */
	CHECK(count(r, xs_query_all()) == 6);
	CHECK(count(r, xs_query_none()) == 0);
	CHECK(count(r, xs_query_and(text(r, PFX_BODY, "results"), xs_query_term(PFX_ACCOUNT, "work"))) == 2);
	CHECK(count(r, xs_query_and(text(r, PFX_BODY, "quart*"), xs_query_term(PFX_ACCOUNT, "home"))) == 0);
	CHECK(count(r, xs_query_or(text(r, PFX_BODY, "lunch"), text(r, PFX_BODY, "sales"))) == 3);   /* sale(s): 3, 5 */
	CHECK(count(r, xs_query_and_not(xs_query_all(), xs_query_term(PFX_ACCOUNT, "home"))) == 4);
	CHECK(count(r, xs_query_and_not(text(r, PFX_BODY, "quart*"),
					 xs_query_term(PFX_FROM_ADDR, "alice@example.com"))) == 2);
	CHECK(count(r, xs_query_filter(text(r, PFX_BODY, "quarterly"),
					xs_query_range(XS_SLOT_SIZE, 1000, INFINITY))) == 1);
	CHECK(count(r, xs_query_filter(xs_query_or(xs_query_term(PFX_FROM_DOMAIN, "other.net"),
						   xs_query_term(PFX_FROM_DOMAIN, "example.org")),
					xs_query_range(XS_SLOT_DATE, -INFINITY, 2000))) == 2);
	/* a failed constructor (NULL) propagates instead of crashing */
	CHECK(xs_query_and(NULL, xs_query_all()) == NULL);
	CHECK(xs_count(r, NULL, &n, &error) == XS_ERR_QUERY);
	free(error);
	error = NULL;

	/* describe */
	struct xs_query *dq = xs_query_and(xs_query_term(PFX_ACCOUNT, "work"), xs_query_range(0, 1, 2));
	char *desc = xs_query_describe(dq);
	CHECK(desc != NULL && strstr(desc, "XACCwork") != NULL);
	free(desc);
	xs_query_free(&dq);
	CHECK(dq == NULL);

	/* sort order and paging (dates: 1:3000 2:1000 3:6000 4:2000 5:5000 6:4000) */
	CHECK_STR(order(r, xs_query_all(), XS_SORT_DATE_ASC, 0, 10, &total, buf, sizeof(buf)), "2,4,1,6,5,3");
	CHECK(total == 6);
	CHECK_STR(order(r, xs_query_all(), XS_SORT_DATE_DESC, 0, 10, &total, buf, sizeof(buf)), "3,5,6,1,4,2");
	CHECK_STR(order(r, xs_query_all(), XS_SORT_DATE_DESC, 2, 2, &total, buf, sizeof(buf)), "6,1");
	CHECK(total == 6);
	CHECK_STR(order(r, xs_query_all(), XS_SORT_DATE_ASC, 4, 10, &total, buf, sizeof(buf)), "5,3");
	CHECK_STR(order(r, xs_query_all(), XS_SORT_DATE_ASC, 10, 10, &total, buf, sizeof(buf)), "");
	CHECK(total == 6);
	CHECK_STR(order(r, xs_query_all(), XS_SORT_DATE_ASC, 0, 0, &total, buf, sizeof(buf)), "");
	CHECK(total == 6);
	CHECK_STR(order(r, text(r, PFX_BODY, "quart*"), XS_SORT_DATE_DESC, 0, 3, &total, buf, sizeof(buf)),
		  "5,6,1");
	CHECK(total == 4);
	CHECK_STR(order(r, text(r, PFX_BODY, "quart*"), XS_SORT_DATE_ASC, 1, 2, &total, buf, sizeof(buf)),
		  "1,6");
	/* relevance: doc 1 has "quarterly" twice (subject and body) and ranks first */
	CHECK_STR(order(r, text(r, PFX_BODY, "quarterly"), XS_SORT_RELEVANCE, 0, 1, &total, buf, sizeof(buf)), "1");
	CHECK(total == 2);

	/* writer changes: re-adding docid 3 keeps the count; new content replaces the old */
	struct xs_doc *doc = fixture_doc(&fixtures[2]);
	CHECK(xs_db_replace(w, 3, doc, NULL) == XS_OK);
	xs_doc_free(&doc);
	CHECK(xs_db_doccount(w, &n, NULL) == XS_OK && n == 6);
	doc = xs_doc_new();
	xs_doc_index_text(doc, PFX_BODY, "Monthly summary", 15);
	xs_doc_set_value(doc, XS_SLOT_DATE, 6000);
	CHECK(xs_db_replace(w, 3, doc, NULL) == XS_OK);
	/* invalid UTF-8 is tolerated */
	xs_doc_free(&doc);
	doc = xs_doc_new();
	xs_doc_index_text(doc, PFX_BODY, "caf\xc3 \xff\xfe bytes \xe2\x82", 16);
	xs_doc_set_value(doc, XS_SLOT_DATE, 7000);
	CHECK(xs_db_replace(w, 7, doc, NULL) == XS_OK);
	xs_doc_free(&doc);
	xs_doc_free(&doc);   /* freeing NULL is harmless */
	/* docid 0 is not a docid */
	doc = xs_doc_new();
	CHECK(xs_db_replace(w, 0, doc, &error) == XS_ERR_OTHER);
	free(error);
	error = NULL;
	xs_doc_free(&doc);
	CHECK(xs_db_delete(w, 4, NULL) == XS_OK);
	CHECK(xs_db_delete(w, 4, NULL) == XS_OK);     /* already gone */
	CHECK(xs_db_delete(w, 999, NULL) == XS_OK);   /* never existed */
	CHECK(xs_db_doccount(w, &n, NULL) == XS_OK && n == 6);
	/* the writer sees its own uncommitted changes */
	CHECK(count(w, text(w, PFX_BODY, "reports")) == 1);
	CHECK(count(w, text(w, PFX_BODY, "bytes")) == 1);
	/* the reader does not until a commit and a reopen */
	CHECK(xs_db_doccount(r, &n, NULL) == XS_OK && n == 6);
	CHECK(count(r, text(r, PFX_BODY, "reports")) == 2);
	CHECK(xs_db_commit(w, NULL) == XS_OK);
	CHECK(xs_db_reopen(r, NULL) == XS_OK);
	CHECK(count(r, text(r, PFX_BODY, "reports")) == 1);
	CHECK(count(r, text(r, PFX_BODY, "monthly")) == 1);
	CHECK(count(r, xs_query_term(PFX_ACCOUNT, "home")) == 0);
	CHECK(xs_db_doccount(r, &n, NULL) == XS_OK && n == 6);
	listed[0] = '\0';
	CHECK(xs_db_each_docid(r, list_docid, NULL, NULL) == XS_OK);
	CHECK_STR(listed, "1,2,3,5,6,7");
	uint64_t first = 0;
	CHECK(xs_db_each_docid(r, first_docid, &first, NULL) == XS_OK);
	CHECK(first == 1);
	CHECK_STR(order(r, xs_query_all(), XS_SORT_DATE_DESC, 0, 10, &total, buf, sizeof(buf)), "7,3,5,6,1,2");

	/* a second shard searched together: docids come back as each shard's own */
	struct xs_db *s = NULL;
	snprintf(shard, sizeof(shard), "%s/shard2", dir);
	CHECK(xs_db_open_writable(shard, &s, NULL) == XS_OK);
	doc = xs_doc_new();
	xs_doc_index_text(doc, PFX_BODY, "quarterly shard", 15);
	xs_doc_set_value(doc, XS_SLOT_DATE, 500);
	for (int i = 0; i < 1100; i++) {
		char term[32];
		snprintf(term, sizeof(term), "m%04d@x", i);
		xs_doc_add_term(doc, PFX_MSGID, term);
		snprintf(term, sizeof(term), "v%04d", i);
		xs_doc_index_text(doc, PFX_BODY, term, strlen(term));
	}
	CHECK(xs_db_replace(s, 10, doc, NULL) == XS_OK);
	xs_doc_free(&doc);
	doc = xs_doc_new();
	xs_doc_index_text(doc, PFX_BODY, "other shard", 11);
	xs_doc_set_value(doc, XS_SLOT_DATE, 8000);
	CHECK(xs_db_replace(s, 11, doc, NULL) == XS_OK);
	xs_doc_free(&doc);
	xs_db_close(&s);   /* commits */
	CHECK(s == NULL);
	struct xs_db *both = NULL;
	const char *two[] = {path, shard};
	CHECK(xs_db_open_readonly(two, 2, &both, NULL) == XS_OK);
	CHECK(xs_db_doccount(both, &n, NULL) == XS_OK && n == 8);
	listed[0] = '\0';
	CHECK(xs_db_each_docid(both, list_docid, NULL, NULL) == XS_OK);
	CHECK_STR(listed, "1,2,3,5,6,7,10,11");
	CHECK_STR(order(both, xs_query_all(), XS_SORT_DATE_ASC, 0, 20, &total, buf, sizeof(buf)),
		  "10,2,1,6,5,3,7,11");
	CHECK_STR(order(both, text(both, PFX_BODY, "shard"), XS_SORT_DATE_DESC, 0, 20, &total, buf, sizeof(buf)),
		  "11,10");
	CHECK(count(both, text(both, PFX_BODY, "quarterly")) == 3);
	/* a free-text wildcard past its limit fails with a clear error rather than dropping matches */
	struct xs_query *tq = text(both, PFX_BODY, "v*");
	CHECK(xs_count(both, tq, &n, &error) == XS_ERR_QUERY);
	CHECK(error != NULL && strstr(error, "a wildcard matches more than 1024 different words") != NULL);
	free(error);
	error = NULL;
	xs_query_free(&tq);
	tq = xs_query_and_not(xs_query_all(), text(both, PFX_BODY, "v*"));   /* so does one under a NOT */
	CHECK(xs_count(both, tq, &n, &error) == XS_ERR_QUERY);
	CHECK(error != NULL && strstr(error, "a wildcard matches more than 1024 different words") != NULL);
	free(error);
	error = NULL;
	xs_query_free(&tq);
	/* ... but not where Xapian drops it unexpanded: in an AND with nothing (an officer who sees no account),
	   on the left of an AND_NOT of nothing; on the left of AND_NOT nothing, it is still expanded */
	CHECK(count(both, xs_query_filter(text(both, PFX_BODY, "v*"), xs_query_none())) == 0);
	CHECK(count(both, xs_query_filter(text(both, PFX_BODY, "v*"),
					   xs_query_or(xs_query_none(), xs_query_none()))) == 0);
	CHECK(count(both, xs_query_and_not(xs_query_none(), text(both, PFX_BODY, "v*"))) == 0);
	CHECK(count(both, xs_query_or(xs_query_none(), xs_query_and(xs_query_none(), text(both, PFX_BODY, "v*")))) == 0);
	tq = xs_query_and_not(text(both, PFX_BODY, "v*"), xs_query_none());
	CHECK(xs_count(both, tq, &n, &error) == XS_ERR_QUERY);
	free(error);
	error = NULL;
	xs_query_free(&tq);
	/* long chains of NOTs and ANDs of wildcards ("-v0* -v1* ..."), counted in two sets whatever their length */
	tq = xs_query_all();
	for (int i = 0; i < 200; i++) {
		char word[16];
		snprintf(word, sizeof(word), "v%02d*", i % 11);
		if (i % 2)
			tq = xs_query_and_not(tq, text(both, PFX_BODY, word));
		else
			tq = xs_query_and(tq, xs_query_or(text(both, PFX_BODY, word), xs_query_all()));
	}
	CHECK(count(both, tq) == 7);   /* the 8 documents but the one with v00..v10 words */
	/* an exact-term wildcard past its expansion limit fails rather than dropping matches */
	CHECK(count(both, xs_query_term_wildcard(both, PFX_MSGID, "m00")) == 1);
	struct xs_query *wq = xs_query_term_wildcard(both, PFX_MSGID, "m");
	CHECK(xs_count(both, wq, &n, &error) == XS_ERR_QUERY);
	CHECK(error != NULL);
	free(error);
	error = NULL;
	xs_query_free(&wq);
	xs_db_close(&both);

	/* three shards counted in parallel: the sums are exact and equal a search's total (count() checks) */
	char shard3[sizeof(shard)];
	snprintf(shard3, sizeof(shard3), "%s/shard3", dir);
	for (int k = 0; k < 2; k++) {
		struct xs_db *wk = NULL;
		CHECK(xs_db_open_writable(k == 0 ? shard : shard3, &wk, NULL) == XS_OK);
		doc = xs_doc_new();
		for (int i = 0; i < 600; i++) {
			char term[32];
			snprintf(term, sizeof(term), "wq%04d", k * 600 + i);
			xs_doc_index_text(doc, PFX_BODY, term, strlen(term));
		}
		xs_doc_index_text(doc, PFX_BODY, "quarterly", 9);
		CHECK(xs_db_replace(wk, (uint64_t)(20 + k), doc, NULL) == XS_OK);
		xs_doc_free(&doc);
		xs_db_close(&wk);
	}
	const char *three[] = {path, shard, shard3};
	CHECK(xs_db_open_readonly(three, 3, &both, NULL) == XS_OK);
	CHECK(count(both, text(both, PFX_BODY, "quarterly")) == 5);
	CHECK(count(both, xs_query_all()) == 10);
	CHECK(count(both, text(both, PFX_BODY, "wq0007")) == 1);
	CHECK(count(both, text(both, PFX_BODY, "wq00*")) == 1);    /* 100 words, one shard */
	CHECK(count(both, text(both, PFX_BODY, "wq0*")) == 2);     /* 1000 words, in both shards */
	CHECK(count(both, xs_query_and_not(xs_query_all(), text(both, PFX_BODY, "wq0*"))) == 8);
	CHECK(count(both, xs_query_or(text(both, PFX_BODY, "wq0001"), text(both, PFX_BODY, "wq1199"))) == 2);
	/* a wildcard's limit applies to each shard, in a count as in a search (Xapian expands it shard by shard) */
	CHECK(count(both, text(both, PFX_BODY, "wq*")) == 2);
	/* the same counts after a reopen, with a document added to the third shard meanwhile */
	struct xs_db *w3 = NULL;
	CHECK(xs_db_open_writable(shard3, &w3, NULL) == XS_OK);
	doc = xs_doc_new();
	xs_doc_index_text(doc, PFX_BODY, "quarterly late", 14);
	CHECK(xs_db_replace(w3, 30, doc, NULL) == XS_OK);
	xs_doc_free(&doc);
	xs_db_close(&w3);
	CHECK(count(both, text(both, PFX_BODY, "quarterly")) == 5);
	CHECK(xs_db_reopen(both, NULL) == XS_OK);
	CHECK(count(both, text(both, PFX_BODY, "quarterly")) == 6);
	xs_db_close(&both);

	/* disk usage */
	CHECK(xs_db_disk_bytes(path) > 0);
	CHECK(xs_db_disk_bytes(shard) > 0);

	xs_db_close(&r);
	CHECK(r == NULL);
	xs_db_close(&w);
	CHECK(w == NULL);
	xs_db_close(&w);   /* closing twice is harmless */

	/* the lock is released on close */
	CHECK(xs_db_open_writable(path, &w2, NULL) == XS_OK);
	CHECK(xs_db_doccount(w2, &n, NULL) == XS_OK && n == 6);
	xs_db_close(&w2);
}

/* Xapian's automatic flushes never commit: a reader sees nothing of a writer's documents before
   xs_db_commit, however many were written, and a closed writer's last documents are committed. */
static void test_flush_is_no_commit(const char *dir)
{
	char path[512];
	struct xs_db *w = NULL, *r = NULL;
	uint64_t n = 99;
	snprintf(path, sizeof(path), "%s/flushes", dir);
	setenv("XAPIAN_FLUSH_THRESHOLD", "3", 1);   /* read when the writer opens */
	CHECK(xs_db_open_writable(path, &w, NULL) == XS_OK);
	unsetenv("XAPIAN_FLUSH_THRESHOLD");
	const char *paths[] = {path};
	CHECK(xs_db_open_readonly(paths, 1, &r, NULL) == XS_OK);
	for (uint64_t id = 1; id <= 10; id++) {
		struct xs_doc *doc = xs_doc_new();
		xs_doc_index_text(doc, PFX_BODY, "flushed words", 13);
		CHECK(xs_db_replace(w, id, doc, NULL) == XS_OK);
		xs_doc_free(&doc);
	}
	CHECK(xs_db_reopen(r, NULL) == XS_OK);
	CHECK(xs_db_doccount(r, &n, NULL) == XS_OK && n == 0);
	CHECK(xs_db_commit(w, NULL) == XS_OK);
	CHECK(xs_db_reopen(r, NULL) == XS_OK);
	CHECK(xs_db_doccount(r, &n, NULL) == XS_OK && n == 10);
	/* after a commit the next documents wait for the next commit again */
	for (uint64_t id = 11; id <= 17; id++) {
		struct xs_doc *doc = xs_doc_new();
		xs_doc_index_text(doc, PFX_BODY, "more words", 10);
		CHECK(xs_db_replace(w, id, doc, NULL) == XS_OK);
		xs_doc_free(&doc);
	}
	CHECK(xs_db_delete(w, 1, NULL) == XS_OK);
	CHECK(xs_db_reopen(r, NULL) == XS_OK);
	CHECK(xs_db_doccount(r, &n, NULL) == XS_OK && n == 10);
	CHECK(count(r, text(r, PFX_BODY, "more")) == 0);
	xs_db_close(&w);   /* commits */
	CHECK(xs_db_reopen(r, NULL) == XS_OK);
	CHECK(xs_db_doccount(r, &n, NULL) == XS_OK && n == 16);
	CHECK(count(r, text(r, PFX_BODY, "more")) == 7);
	xs_db_close(&r);
}

static void test_errors(const char *dir)
{
	char path[512], *error = NULL;
	struct xs_db *db = NULL;

	snprintf(path, sizeof(path), "%s/does-not-exist", dir);
	const char *paths[] = {path};
	CHECK(xs_db_open_readonly(paths, 1, &db, &error) == XS_ERR_OPENING);
	CHECK(db == NULL);
	CHECK(error != NULL && error[0] != '\0');
	free(error);
	error = NULL;
	CHECK(xs_db_open_readonly(paths, 0, &db, &error) == XS_ERR_OPENING);
	free(error);
	error = NULL;
	CHECK(xs_db_open_readonly(paths, 1, &db, NULL) == XS_ERR_OPENING);   /* error_r may be NULL */
	CHECK(xs_db_disk_bytes(path) == 0);

	/* a writer cannot be created inside a regular file */
	snprintf(path, sizeof(path), "%s/file", dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "%s/file/idx", dir);
	CHECK(xs_db_open_writable(path, &db, &error) == XS_ERR_OPENING);
	CHECK(db == NULL);
	CHECK(error != NULL);
	free(error);
}

int main(void)
{
	char dir[] = "/tmp/test-xapian-shim-XXXXXX";
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_main_db(dir);
	test_flush_is_no_commit(dir);
	test_errors(dir);
	CHECK(nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0);
	return unit_finish("test-xapian-shim");
}

// The C door to Xapian: opaque handles around Xapian objects, every exception turned into a status and a message.
//
// Semantics beyond the header:
// - Constructors without error_r return NULL on failure (out of memory); the combinators take NULL as a failed
//   side (freeing the other and returning NULL), and xs_search/xs_count answer XS_ERR_QUERY for a NULL query.
// - The void document builders remember their first error; xs_db_replace then returns it.
// - Empty or word-less text and phrases match nothing; an empty exact term matches nothing (never "all").
// - Free-text wildcards keep the 1024 most frequent expansions; exact-term wildcards past 1024 terms fail the
//   search with XS_ERR_QUERY (an officer must not get a silently partial answer).
// - Ranges never match documents without the value, even with both ends infinite.
// - Date sorts ignore relevance and break ties by docid in the same direction.
// - Several read-only shards: returned docids are each shard's own (the message serials, which are unique
//   across shards), not Xapian's interleaved ones; each_docid stays ascending.
// - Docids must be 1..2^32-1 (Xapian's docid type).
// - A writer always has a transaction open, so nothing becomes visible or durable before xs_db_commit: Xapian's
//   automatic flushes (every XAPIAN_FLUSH_THRESHOLD documents) only write changes into the tables, they no longer
//   commit a revision. Small, frequent flushes are much faster than large ones (Xapian's in-memory postings grow
//   costly), and few commits keep the uncompacted database small.
// - Each handle is used by one thread at a time.
// - A reader of several shards counts them in parallel, one thread a shard (the reader keeps them from its
//   first count on), each on a Database of its own (a count is the sum of the shards'). A wildcard's
//   expansion limit applies to each shard, as Xapian applies it when it searches several shards together: a
//   count and a search of the same query agree.
#include "xapian_shim.h"

#include <xapian.h>

#include <ftw.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <exception>
#include <string>
#include <thread>
#include <utility>
#include <vector>

// A thread that counts one shard of a reader, kept for the reader's life: a count over several shards then
// wakes threads instead of creating them (creating one costs about as much as a small count). Each is bound
// to one processor (when cpu >= 0): left to itself, the scheduler may wake a shard's thread on the busy
// processor of the thread that woke it (in a virtual machine an idle processor can look unavailable), and
// the shards are then counted one after the other.
class shard_worker {
public:
	explicit shard_worker(int cpu) : thread_([this] { loop(); })   // throws std::system_error without a thread
	{
		if (cpu >= 0) {
			cpu_set_t set;
			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			pthread_setaffinity_np(thread_.native_handle(), sizeof(set), &set);   // best effort
		}
	}
	shard_worker(const shard_worker &) = delete;
	shard_worker &operator=(const shard_worker &) = delete;
	~shard_worker()
	{
		{
			std::lock_guard<std::mutex> l(m_);
			stop_ = true;
		}
		cv_.notify_all();
		thread_.join();
	}
	// Runs job in the worker (job must not throw); wait() returns once it has run.
	void post(std::function<void()> job)
	{
		{
			std::lock_guard<std::mutex> l(m_);
			job_ = std::move(job);
			done_ = false;
		}
		cv_.notify_all();
	}
	void wait()
	{
		std::unique_lock<std::mutex> l(m_);
		cv_.wait(l, [this] { return done_; });
	}

private:
	void loop()
	{
		std::unique_lock<std::mutex> l(m_);
		for (;;) {
			cv_.wait(l, [this] { return stop_ || job_ != nullptr; });
			if (job_ == nullptr)
				return;
			std::function<void()> job = std::move(job_);
			job_ = nullptr;
			l.unlock();
			job();
			l.lock();
			done_ = true;
			cv_.notify_all();
		}
	}
	std::mutex m_;
	std::condition_variable cv_;
	std::function<void()> job_;
	bool done_ = true, stop_ = false;
	std::thread thread_;   // declared last: it starts once the members above exist
};

// A database: a writer (one path) or a reader over one or more shards.
struct xs_db {
	bool writable = false;
	bool in_transaction = false;    // writers: the transaction that xs_db_commit commits
	Xapian::WritableDatabase wdb;   // used when writable
	Xapian::Database rdb;           // used when read-only
	Xapian::doccount nshards = 1;   // readers: how many databases were added (docids interleave)
	std::vector<std::string> paths;
	std::vector<Xapian::Database> shards;   // readers of several shards: each one alone, to count in parallel
	std::vector<std::unique_ptr<shard_worker>> workers;   // the counting thread of each shard, from the first count
	bool count_threads = true;   // false with one processor: shards are then counted one after the other
	int first_cpu = -1;          // the place, among the usable processors, of the first shard's thread

	Xapian::Database &db() { return writable ? wdb : rdb; }
};

// A document being built, with its term generator (which keeps the running term position) and the first error
// met by the void builders, reported later by xs_db_replace.
struct xs_doc {
	Xapian::Document doc;
	Xapian::TermGenerator tg;
	enum xs_status status = XS_OK;
	std::string error;
};

// The documents a query matches, as sets of documents, for counting them without Xapian's matcher: a
// broad wildcard or a NOT over the whole archive makes the matcher merge hundreds of posting lists a
// document at a time, where a bit per document and one pass over each list is two to three times faster.
// Built beside the Xapian query by the constructors that can say exactly what they match; a query with any
// other part (phrases, free words, ranges) has none and is counted by Xapian.
struct count_plan {
	enum op_kind { TERM, PATTERN, ALL, NONE, AND, OR, AND_NOT } kind;
	std::string text;   // TERM: the term; PATTERN: what every term it matches starts with
	std::vector<std::shared_ptr<const count_plan>> kids;
};
using plan_ptr = std::shared_ptr<const count_plan>;

struct xs_query {
	Xapian::Query q;
	plan_ptr plan;   // null: only Xapian can count it
};

namespace {

// Xapian's limit on a term's length in bytes (glass backend).
constexpr size_t TERM_MAX = 245;
// How much of an over-long term is kept verbatim before its hash (so prefix wildcards still work on it).
constexpr size_t TERM_KEEP = 200;
// The most terms a wildcard may expand to.
constexpr Xapian::termcount WILDCARD_MAX = 1024;

// Copies a message into *error_r with strdup (never throws; a failed strdup leaves NULL).
void set_error(char **error_r, const char *msg) noexcept
{
	if (error_r != nullptr)
		*error_r = strdup(msg != nullptr ? msg : "unknown error");
}

// Copies a Xapian error's description into *error_r (never throws).
void set_xapian_error(char **error_r, const Xapian::Error &e) noexcept
{
	if (error_r == nullptr)
		return;
	try {
		set_error(error_r, e.get_description().c_str());
	} catch (...) {
		set_error(error_r, e.get_msg().c_str());
	}
}

// Runs f, turning every exception into a status and a message: the one try/catch all entry points share.
template <class F> enum xs_status guard(char **error_r, F &&f) noexcept
{
	try {
		return f();
	} catch (const Xapian::DatabaseLockError &e) {
		set_xapian_error(error_r, e);
		return XS_ERR_LOCK;
	} catch (const Xapian::DatabaseOpeningError &e) {   // also DatabaseVersionError, DatabaseNotFoundError
		set_xapian_error(error_r, e);
		return XS_ERR_OPENING;
	} catch (const Xapian::DatabaseCreateError &e) {
		set_xapian_error(error_r, e);
		return XS_ERR_OPENING;
	} catch (const Xapian::DatabaseModifiedError &e) {
		set_xapian_error(error_r, e);
		return XS_ERR_MODIFIED;
	} catch (const Xapian::DatabaseCorruptError &e) {
		set_xapian_error(error_r, e);
		return XS_ERR_CORRUPT;
	} catch (const Xapian::QueryParserError &e) {
		set_xapian_error(error_r, e);
		return XS_ERR_QUERY;
	} catch (const Xapian::WildcardError &e) {        // a term wildcard expanding past its limit
		set_error(error_r, ("a wildcard matches more than " + std::to_string(WILDCARD_MAX) +
				    " different words: make it longer (" + e.get_msg() + ")").c_str());
		return XS_ERR_QUERY;
	} catch (const Xapian::DocNotFoundError &e) {
		set_xapian_error(error_r, e);
		return XS_ERR_NOTFOUND;
	} catch (const Xapian::Error &e) {
		set_xapian_error(error_r, e);
		return XS_ERR_OTHER;
	} catch (const std::bad_alloc &) {
		set_error(error_r, "out of memory");
		return XS_ERR_NOMEM;
	} catch (const std::exception &e) {
		set_error(error_r, e.what());
		return XS_ERR_OTHER;
	} catch (...) {
		set_error(error_r, "unknown C++ exception");
		return XS_ERR_OTHER;
	}
}

// The English stemmer. A new one per user: Stem handles share a non-atomic reference count and stemmer state,
// so sharing one between documents could race when documents are built and freed on different threads.
Xapian::Stem stemmer()
{
	return Xapian::Stem("english");
}

// 64-bit FNV-1a of a byte string.
uint64_t fnv1a64(const std::string &s) noexcept
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (unsigned char c : s) {
		h ^= c;
		h *= 0x100000001b3ULL;
	}
	return h;
}

// prefix+value as one term; over-long terms become their first TERM_KEEP bytes, '#' and a 16-hex-digit hash.
std::string make_term(const char *prefix, const char *value)
{
	std::string term(prefix != nullptr ? prefix : "");
	if (value != nullptr)
		term += value;
	if (term.size() > TERM_MAX) {
		char hex[17];
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)fnv1a64(term));
		term.resize(TERM_KEEP);
		term += '#';
		term += hex;
	}
	return term;
}

// Wraps a query (and the plan that counts the same documents, if any) in a new handle.
struct xs_query *wrap(Xapian::Query &&q, plan_ptr plan = nullptr)
{
	struct xs_query *x = new struct xs_query;
	x->q = std::move(q);
	x->plan = std::move(plan);
	return x;
}

plan_ptr plan_leaf(count_plan::op_kind kind, std::string text = std::string())
{
	return std::make_shared<const count_plan>(count_plan{ kind, std::move(text), {} });
}

// a op b, when both can be counted as sets. Nothing is simplified away as Xapian does it when it builds
// the query (an AND with nothing, or nothing AND_NOT anything, is nothing; nothing in an OR or on the
// right of an AND_NOT is dropped), so that a wildcard Xapian never expands is not expanded here either
// (and cannot fail for being too broad). An OR of ORs, an AND of ANDs, an AND_NOT whose left is an AND_NOT
// are one node.
plan_ptr plan_combine(Xapian::Query::op op, const plan_ptr &a, const plan_ptr &b)
{
	if (a == nullptr || b == nullptr)
		return nullptr;
	count_plan::op_kind kind = op == Xapian::Query::OP_OR ? count_plan::OR
			       : op == Xapian::Query::OP_AND_NOT ? count_plan::AND_NOT : count_plan::AND;
	const bool a_none = a->kind == count_plan::NONE, b_none = b->kind == count_plan::NONE;
	if (kind == count_plan::OR && (a_none || b_none))
		return a_none ? b : a;
	if (kind == count_plan::AND && (a_none || b_none))
		return a_none ? a : b;
	if (kind == count_plan::AND_NOT && (a_none || b_none))
		return a;
	auto out = std::make_shared<count_plan>(count_plan{ kind, std::string(), {} });
	if (a->kind == kind)   // the left side's children, then b (AND_NOT: the first stays first)
		out->kids = a->kids;
	else
		out->kids.push_back(a);
	if (b->kind == kind && kind != count_plan::AND_NOT)
		out->kids.insert(out->kids.end(), b->kids.begin(), b->kids.end());
	else
		out->kids.push_back(b);
	return out;
}

// Combines a and b with op into a (which is reused), freeing b; a NULL side (a failed constructor) gives NULL.
struct xs_query *combine(Xapian::Query::op op, struct xs_query *a, struct xs_query *b) noexcept
{
	if (a == nullptr || b == nullptr) {
		delete a;
		delete b;
		return nullptr;
	}
	enum xs_status st = guard(nullptr, [&] {
		a->q = Xapian::Query(op, a->q, b->q);
		// OP_FILTER matches what OP_AND matches (it only leaves the filter out of the weights)
		a->plan = plan_combine(op == Xapian::Query::OP_FILTER ? Xapian::Query::OP_AND : op, a->plan, b->plan);
		return XS_OK;
	});
	delete b;
	if (st != XS_OK) {
		delete a;
		return nullptr;
	}
	return a;
}

// Checks that a mailvault serial fits a Xapian docid (0 is not a docid).
bool docid_ok(uint64_t docid) noexcept
{
	return docid != 0 && docid <= std::numeric_limits<Xapian::docid>::max();
}

// A merged (multi-shard) docid back to the shard's own docid, the message serial. With n shards Xapian numbers
// shard i's docid d as (d - 1) * n + i + 1; with one shard this is the identity.
uint64_t local_docid(Xapian::docid merged, Xapian::doccount nshards) noexcept
{
	return (uint64_t)(merged - 1) / nshards + 1;
}

// Fails a call made on a reader that needs a writer.
enum xs_status need_writer(struct xs_db *db, char **error_r) noexcept
{
	if (db == nullptr) {
		set_error(error_r, "no database");
		return XS_ERR_OTHER;
	}
	if (!db->writable) {
		set_error(error_r, "database opened read-only");
		return XS_ERR_OTHER;
	}
	return XS_OK;
}

// Records the first error of a void document builder, reported later by xs_db_replace.
void doc_guard_result(struct xs_doc *doc, enum xs_status st, char *msg) noexcept
{
	if (st != XS_OK && doc->status == XS_OK) {
		doc->status = st;
		try {
			doc->error = msg != nullptr ? msg : "document error";
		} catch (...) {
			// keep the status even if the message cannot be stored
		}
	}
	free(msg);
}

thread_local uint64_t disk_sum;

// nftw callback adding up regular file sizes.
int disk_add(const char *, const struct stat *st, int flag, struct FTW *) noexcept
{
	if (flag == FTW_F && S_ISREG(st->st_mode))
		disk_sum += (uint64_t)st->st_size;
	return 0;
}

}  // namespace

extern "C" {

enum xs_status xs_db_open_writable(const char *path, struct xs_db **db_r, char **error_r)
{
	*db_r = nullptr;
	return guard(error_r, [&] {
		struct xs_db *db = new struct xs_db;
		try {
			db->wdb = Xapian::WritableDatabase(path, Xapian::DB_CREATE_OR_OPEN);
			db->writable = true;
			db->wdb.begin_transaction(true);
			db->in_transaction = true;
			db->paths.emplace_back(path);
		} catch (...) {
			delete db;
			throw;
		}
		*db_r = db;
		return XS_OK;
	});
}

enum xs_status xs_db_open_readonly(const char *const *paths, size_t npaths, struct xs_db **db_r, char **error_r)
{
	*db_r = nullptr;
	if (npaths == 0) {
		set_error(error_r, "no database path given");
		return XS_ERR_OPENING;
	}
	return guard(error_r, [&] {
		struct xs_db *db = new struct xs_db;
		try {
			db->rdb = Xapian::Database(paths[0]);
			db->paths.emplace_back(paths[0]);
			for (size_t i = 1; i < npaths; i++) {
				db->rdb.add_database(Xapian::Database(paths[i]));
				db->paths.emplace_back(paths[i]);
			}
			db->nshards = (Xapian::doccount)npaths;
			for (size_t i = 0; npaths > 1 && i < npaths; i++)
				db->shards.emplace_back(paths[i]);
		} catch (...) {
			delete db;
			throw;
		}
		*db_r = db;
		return XS_OK;
	});
}

enum xs_status xs_db_reopen(struct xs_db *db, char **error_r)
{
	if (db == nullptr) {
		set_error(error_r, "no database");
		return XS_ERR_OTHER;
	}
	return guard(error_r, [&] {
		db->db().reopen();
		for (Xapian::Database &shard : db->shards)
			shard.reopen();
		return XS_OK;
	});
}

void xs_db_close(struct xs_db **dbp)
{
	if (dbp == nullptr || *dbp == nullptr)
		return;
	struct xs_db *db = *dbp;
	*dbp = nullptr;
	// A failing commit here cannot be reported: callers that care call xs_db_commit first.
	guard(nullptr, [&] {
		if (db->writable && db->in_transaction) {
			db->in_transaction = false;
			db->wdb.commit_transaction();
		} else if (db->writable) {
			db->wdb.commit();
		}
		db->db().close();
		for (Xapian::Database &shard : db->shards)
			shard.close();
		return XS_OK;
	});
	delete db;
}

enum xs_status xs_db_commit(struct xs_db *db, char **error_r)
{
	enum xs_status st = need_writer(db, error_r);
	if (st != XS_OK)
		return st;
	return guard(error_r, [&] {
		// Xapian ends the transaction even when committing it fails: the next call starts a new one.
		if (db->in_transaction) {
			db->in_transaction = false;
			db->wdb.commit_transaction();
		} else {
			db->wdb.commit();
		}
		db->wdb.begin_transaction(true);
		db->in_transaction = true;
		return XS_OK;
	});
}

enum xs_status xs_db_doccount(struct xs_db *db, uint64_t *count_r, char **error_r)
{
	*count_r = 0;
	if (db == nullptr) {
		set_error(error_r, "no database");
		return XS_ERR_OTHER;
	}
	return guard(error_r, [&] {
		*count_r = db->db().get_doccount();
		return XS_OK;
	});
}

enum xs_status xs_db_each_docid(struct xs_db *db, bool (*cb)(uint64_t docid, void *ctx), void *ctx, char **error_r)
{
	if (db == nullptr) {
		set_error(error_r, "no database");
		return XS_ERR_OTHER;
	}
	// Merged docids ascend with the shards' own docids (see local_docid), so one pass keeps the order.
	return guard(error_r, [&] {
		Xapian::Database &d = db->db();
		for (Xapian::PostingIterator it = d.postlist_begin(std::string()), end = d.postlist_end(std::string());
		     it != end; ++it) {
			if (!cb(local_docid(*it, db->nshards), ctx))
				break;
		}
		return XS_OK;
	});
}

enum xs_status xs_db_set_metadata(struct xs_db *db, const char *key, const char *value, char **error_r)
{
	enum xs_status st = need_writer(db, error_r);
	if (st != XS_OK)
		return st;
	return guard(error_r, [&] {
		db->wdb.set_metadata(key, value != nullptr ? value : "");
		return XS_OK;
	});
}

enum xs_status xs_db_get_metadata(struct xs_db *db, const char *key, char **value_r, char **error_r)
{
	*value_r = nullptr;
	if (db == nullptr) {
		set_error(error_r, "no database");
		return XS_ERR_OTHER;
	}
	return guard(error_r, [&] {
		std::string v = db->db().get_metadata(key);
		char *out = static_cast<char *>(std::malloc(v.size() + 1));
		if (out == nullptr)
			throw std::bad_alloc();
		std::memcpy(out, v.data(), v.size());
		out[v.size()] = '\0';
		*value_r = out;
		return XS_OK;
	});
}

enum xs_status xs_db_each_posting(struct xs_db *db, const char *prefix,
				  bool (*cb)(const char *value, size_t len, uint64_t docid, void *ctx), void *ctx,
				  char **error_r)
{
	if (db == nullptr || prefix == nullptr) {
		set_error(error_r, "no database or prefix");
		return XS_ERR_OTHER;
	}
	return guard(error_r, [&] {
		Xapian::Database &d = db->db();
		std::string pfx(prefix);
		for (Xapian::TermIterator t = d.allterms_begin(pfx), tend = d.allterms_end(pfx); t != tend; ++t) {
			const std::string term = *t;
			const std::string value = term.substr(pfx.size());
			for (Xapian::PostingIterator p = d.postlist_begin(term), pend = d.postlist_end(term); p != pend; ++p)
				if (!cb(value.data(), value.size(), local_docid(*p, db->nshards), ctx))
					return XS_OK;
		}
		return XS_OK;
	});
}

char *xs_term_value(const char *prefix, const char *value)
{
	try {
		std::string term = make_term(prefix, value);
		std::string v = term.substr(std::strlen(prefix));
		char *out = static_cast<char *>(std::malloc(v.size() + 1));
		if (out == nullptr)
			return nullptr;
		std::memcpy(out, v.data(), v.size());
		out[v.size()] = '\0';
		return out;
	} catch (...) {
		return nullptr;
	}
}

enum xs_status xs_db_replace(struct xs_db *db, uint64_t docid, const struct xs_doc *doc, char **error_r)
{
	enum xs_status st = need_writer(db, error_r);
	if (st != XS_OK)
		return st;
	if (doc == nullptr) {
		set_error(error_r, "no document");
		return XS_ERR_OTHER;
	}
	if (doc->status != XS_OK) {
		set_error(error_r, doc->error.c_str());
		return doc->status;
	}
	if (!docid_ok(docid)) {
		set_error(error_r, "document id out of Xapian's range");
		return XS_ERR_OTHER;
	}
	return guard(error_r, [&] {
		db->wdb.replace_document((Xapian::docid)docid, doc->doc);
		return XS_OK;
	});
}

enum xs_status xs_db_delete(struct xs_db *db, uint64_t docid, char **error_r)
{
	enum xs_status st = need_writer(db, error_r);
	if (st != XS_OK)
		return st;
	if (!docid_ok(docid))
		return XS_OK;   // cannot exist
	return guard(error_r, [&] {
		try {
			db->wdb.delete_document((Xapian::docid)docid);
		} catch (const Xapian::DocNotFoundError &) {
			// already gone: deleting is idempotent
		}
		return XS_OK;
	});
}

uint64_t xs_db_disk_bytes(const char *path)
{
	disk_sum = 0;
	if (path != nullptr)
		(void)nftw(path, disk_add, 16, FTW_PHYS);   // a missing path counts as 0 bytes
	return disk_sum;
}

struct xs_doc *xs_doc_new(void)
{
	struct xs_doc *doc = nullptr;
	guard(nullptr, [&] {
		std::unique_ptr<struct xs_doc> d(new struct xs_doc);
		d->tg.set_stemmer(stemmer());
		d->tg.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
		d->tg.set_document(d->doc);   // TermGenerator holds a handle sharing d->doc's internals
		doc = d.release();
		return XS_OK;
	});
	return doc;
}

void xs_doc_free(struct xs_doc **doc)
{
	if (doc == nullptr)
		return;
	delete *doc;
	*doc = nullptr;
}

// Indexes text under prefix, with stemmed copies (STEM_SOME) or without (STEM_NONE).
static void doc_index_text(struct xs_doc *doc, const char *prefix, const char *text, size_t len,
			   Xapian::TermGenerator::stem_strategy strategy)
{
	if (doc == nullptr || text == nullptr || len == 0)
		return;
	char *msg = nullptr;
	enum xs_status st = guard(&msg, [&] {
		// A gap between calls keeps phrases from spanning two fields or parts.
		if (doc->tg.get_termpos() != 0)
			doc->tg.increase_termpos();
		doc->tg.set_stemming_strategy(strategy);
		try {
			doc->tg.index_text(Xapian::Utf8Iterator(text, len), 1, prefix != nullptr ? prefix : "");
		} catch (...) {
			doc->tg.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
			throw;
		}
		doc->tg.set_stemming_strategy(Xapian::TermGenerator::STEM_SOME);
		return XS_OK;
	});
	doc_guard_result(doc, st, msg);
}

void xs_doc_index_text(struct xs_doc *doc, const char *prefix, const char *text, size_t len)
{
	doc_index_text(doc, prefix, text, len, Xapian::TermGenerator::STEM_SOME);
}

void xs_doc_index_text_unstemmed(struct xs_doc *doc, const char *prefix, const char *text, size_t len)
{
	doc_index_text(doc, prefix, text, len, Xapian::TermGenerator::STEM_NONE);
}

void xs_doc_add_term(struct xs_doc *doc, const char *prefix, const char *value)
{
	if (doc == nullptr)
		return;
	char *msg = nullptr;
	enum xs_status st = guard(&msg, [&] {
		std::string term = make_term(prefix, value);
		if (!term.empty())   // the empty term is not a term (it means "all documents")
			doc->doc.add_term(term);
		return XS_OK;
	});
	doc_guard_result(doc, st, msg);
}

void xs_doc_set_value(struct xs_doc *doc, unsigned slot, double value)
{
	if (doc == nullptr)
		return;
	char *msg = nullptr;
	enum xs_status st = guard(&msg, [&] {
		doc->doc.add_value(slot, Xapian::sortable_serialise(value));
		return XS_OK;
	});
	doc_guard_result(doc, st, msg);
}

void xs_doc_set_data(struct xs_doc *doc, const char *data, size_t len)
{
	if (doc == nullptr)
		return;
	char *msg = nullptr;
	enum xs_status st = guard(&msg, [&] {
		doc->doc.set_data(data != nullptr ? std::string(data, len) : std::string());
		return XS_OK;
	});
	doc_guard_result(doc, st, msg);
}

namespace {

// The plan of a text that is one ASCII word and a trailing * ("enr*", "Contract*"): for such a word the
// QueryParser above lower-cases it and matches, in any of the prefixes, every term that starts with the
// prefix and the word (wildcards are never stemmed). Anything else (several words, other characters) has
// no plan and is counted by Xapian.
plan_ptr text_wildcard_plan(const char *const *prefixes, size_t nprefixes, const char *text)
{
	if (text == nullptr)
		return nullptr;
	size_t n = strlen(text);
	while (n > 0 && text[n - 1] == ' ')
		n--;
	while (n > 0 && *text == ' ')
		text++, n--;
	if (n < 2 || text[n - 1] != '*')
		return nullptr;
	std::string word;
	for (size_t i = 0; i + 1 < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return nullptr;
		word += (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
	}
	auto out = std::make_shared<count_plan>(count_plan{ count_plan::OR, std::string(), {} });
	for (size_t i = 0; i < nprefixes; i++)
		out->kids.push_back(plan_leaf(count_plan::PATTERN, (prefixes[i] != nullptr ? prefixes[i] : "") + word));
	if (nprefixes == 0)
		out->kids.push_back(plan_leaf(count_plan::PATTERN, word));
	return out;
}

} // namespace

struct xs_query *xs_query_text_fields(struct xs_db *db, const char *const *prefixes, size_t nprefixes, bool stem,
				      const char *text, char **error_r)
{
	struct xs_query *out = nullptr;
	guard(error_r, [&] {
		Xapian::QueryParser qp;
		if (stem) {
			qp.set_stemmer(stemmer());
			qp.set_stemming_strategy(Xapian::QueryParser::STEM_SOME);
		} else {
			qp.set_stemming_strategy(Xapian::QueryParser::STEM_NONE);
		}
		if (db != nullptr)
			qp.set_database(db->db());
		qp.set_default_op(Xapian::Query::OP_AND);
		// A hostile "a*" must not expand to the whole lexicon, and a broad one must not lose matches
		// silently: past the limit the search fails with a clear error.
		qp.set_max_expansion(WILDCARD_MAX, Xapian::Query::WILDCARD_LIMIT_ERROR,
				     Xapian::QueryParser::FLAG_WILDCARD);
		// The words of the text search every prefix given: the default field (no field name) is mapped
		// to all of them.
		for (size_t i = 0; i < nprefixes; i++)
			qp.add_prefix(std::string(), prefixes[i] != nullptr ? prefixes[i] : "");
		if (nprefixes == 0)
			qp.add_prefix(std::string(), std::string());
		// No FLAG_BOOLEAN/FLAG_LOVEHATE: mailvault's own grammar handles AND/OR/NOT.
		Xapian::Query q = qp.parse_query(text != nullptr ? text : "",
						 Xapian::QueryParser::FLAG_PHRASE | Xapian::QueryParser::FLAG_WILDCARD);
		if (q.empty())
			q = Xapian::Query::MatchNothing;
		out = wrap(std::move(q), text_wildcard_plan(prefixes, nprefixes, text));
		return XS_OK;
	});
	return out;
}

struct xs_query *xs_query_text(struct xs_db *db, const char *prefix, const char *text, char **error_r)
{
	const char *prefixes[] = { prefix != nullptr ? prefix : "" };
	return xs_query_text_fields(db, prefixes, 1, true, text, error_r);
}

struct xs_query *xs_query_phrase_fields(struct xs_db *db, const char *const *prefixes, size_t nprefixes,
					const char *text, char **error_r)
{
	(void)db;
	struct xs_query *out = nullptr;
	guard(error_r, [&] {
		// Split the words exactly as the indexer does, unstemmed, into a scratch document; read them back in
		// position order.
		Xapian::Document scratch;
		Xapian::TermGenerator tg;
		tg.set_stemming_strategy(Xapian::TermGenerator::STEM_NONE);
		tg.set_document(scratch);
		tg.index_text(text != nullptr ? text : "");
		std::vector<std::pair<Xapian::termpos, std::string>> words;
		for (Xapian::TermIterator t = scratch.termlist_begin(); t != scratch.termlist_end(); ++t) {
			for (Xapian::PositionIterator p = t.positionlist_begin(); p != t.positionlist_end(); ++p)
				words.emplace_back(*p, *t);
		}
		std::sort(words.begin(), words.end());
		// One phrase per prefix, any of them matching.
		std::vector<Xapian::Query> phrases;
		for (size_t i = 0; i < nprefixes && !words.empty(); i++) {
			std::string prefix(prefixes[i] != nullptr ? prefixes[i] : "");
			std::vector<std::string> terms;
			terms.reserve(words.size());
			for (const auto &w : words)
				terms.push_back(prefix + w.second);
			if (terms.size() == 1)
				phrases.emplace_back(terms[0]);
			else
				phrases.emplace_back(Xapian::Query::OP_PHRASE, terms.begin(), terms.end(),
						     (Xapian::termcount)terms.size());
		}
		Xapian::Query q;
		if (phrases.empty())
			q = Xapian::Query::MatchNothing;
		else if (phrases.size() == 1)
			q = phrases[0];
		else
			q = Xapian::Query(Xapian::Query::OP_OR, phrases.begin(), phrases.end());
		out = wrap(std::move(q));
		return XS_OK;
	});
	return out;
}

struct xs_query *xs_query_phrase(struct xs_db *db, const char *prefix, const char *text, char **error_r)
{
	const char *prefixes[] = { prefix != nullptr ? prefix : "" };
	return xs_query_phrase_fields(db, prefixes, 1, text, error_r);
}

struct xs_query *xs_query_term(const char *prefix, const char *value)
{
	struct xs_query *out = nullptr;
	guard(nullptr, [&] {
		std::string term = make_term(prefix, value);
		// Query("") would match every document: an empty term matches none.
		out = term.empty() ? wrap(Xapian::Query(Xapian::Query::MatchNothing), plan_leaf(count_plan::NONE))
				   : wrap(Xapian::Query(term), plan_leaf(count_plan::TERM, term));
		return XS_OK;
	});
	return out;
}

struct xs_query *xs_query_term_wildcard(struct xs_db *db, const char *prefix, const char *stem)
{
	(void)db;   // Xapian 1.4 expands wildcards lazily against the searched database
	struct xs_query *out = nullptr;
	guard(nullptr, [&] {
		std::string pattern(prefix != nullptr ? prefix : "");
		if (stem != nullptr)
			pattern += stem;
		if (pattern.size() > TERM_KEEP)   // over-long terms keep only their first TERM_KEEP bytes verbatim
			pattern.resize(TERM_KEEP);
		// Exact-term wildcards (addresses, Message-IDs) must not lose matches silently: past the limit the
		// search fails with XS_ERR_QUERY rather than returning a partial answer.
		out = wrap(Xapian::Query(Xapian::Query::OP_WILDCARD, pattern, WILDCARD_MAX,
					 Xapian::Query::WILDCARD_LIMIT_ERROR),
			   plan_leaf(count_plan::PATTERN, pattern));
		return XS_OK;
	});
	return out;
}

struct xs_query *xs_query_range(unsigned slot, double lo, double hi)
{
	struct xs_query *out = nullptr;
	guard(nullptr, [&] {
		Xapian::Query q;
		if (std::isnan(lo) || std::isnan(hi) || lo > hi || lo == INFINITY || hi == -INFINITY) {
			q = Xapian::Query::MatchNothing;
		} else {
			// sortable_serialise(-inf) is the empty string, which Xapian reads as "no lower bound" and which
			// would also match documents without the value: start at -DBL_MAX instead.
			std::string from = Xapian::sortable_serialise(std::max(lo, -std::numeric_limits<double>::max()));
			if (hi == INFINITY)
				q = Xapian::Query(Xapian::Query::OP_VALUE_GE, slot, from);
			else
				q = Xapian::Query(Xapian::Query::OP_VALUE_RANGE, slot, from,
						  Xapian::sortable_serialise(hi));
		}
		out = wrap(std::move(q));
		return XS_OK;
	});
	return out;
}

struct xs_query *xs_query_all(void)
{
	struct xs_query *out = nullptr;
	guard(nullptr, [&] {
		out = wrap(Xapian::Query(Xapian::Query::MatchAll), plan_leaf(count_plan::ALL));
		return XS_OK;
	});
	return out;
}

struct xs_query *xs_query_none(void)
{
	struct xs_query *out = nullptr;
	guard(nullptr, [&] {
		out = wrap(Xapian::Query(Xapian::Query::MatchNothing), plan_leaf(count_plan::NONE));
		return XS_OK;
	});
	return out;
}

struct xs_query *xs_query_and(struct xs_query *a, struct xs_query *b)
{
	return combine(Xapian::Query::OP_AND, a, b);
}

struct xs_query *xs_query_or(struct xs_query *a, struct xs_query *b)
{
	return combine(Xapian::Query::OP_OR, a, b);
}

struct xs_query *xs_query_and_not(struct xs_query *a, struct xs_query *b)
{
	return combine(Xapian::Query::OP_AND_NOT, a, b);
}

struct xs_query *xs_query_filter(struct xs_query *q, struct xs_query *filter)
{
	return combine(Xapian::Query::OP_FILTER, q, filter);
}

char *xs_query_describe(const struct xs_query *q)
{
	char *out = nullptr;
	guard(nullptr, [&] {
		out = strdup(q != nullptr ? q->q.get_description().c_str() : "(null query)");
		return XS_OK;
	});
	return out;
}

void xs_query_free(struct xs_query **q)
{
	if (q == nullptr)
		return;
	delete *q;
	*q = nullptr;
}

enum xs_status xs_search(struct xs_db *db, const struct xs_query *q, enum xs_sort sort, size_t offset,
			 size_t limit, uint64_t **docids_r, size_t *n_r, uint64_t *total_r, char **error_r)
{
	*docids_r = nullptr;
	*n_r = 0;
	if (total_r != nullptr)
		*total_r = 0;
	if (db == nullptr || q == nullptr) {
		set_error(error_r, db == nullptr ? "no database" : "no query (a query constructor failed)");
		return db == nullptr ? XS_ERR_OTHER : XS_ERR_QUERY;
	}
	return guard(error_r, [&] {
		Xapian::Database &d = db->db();
		Xapian::doccount all = d.get_doccount();
		Xapian::Enquire enq(d);
		enq.set_query(q->q);
		if (sort == XS_SORT_DATE_ASC || sort == XS_SORT_DATE_DESC) {
			// Date order needs no weights; ties go by docid in the same direction, so pages are stable and
			// DESC is the exact reverse of ASC.
			bool desc = sort == XS_SORT_DATE_DESC;
			enq.set_weighting_scheme(Xapian::BoolWeight());
			enq.set_sort_by_value(XS_SLOT_DATE, desc);
			enq.set_docid_order(desc ? Xapian::Enquire::DESCENDING : Xapian::Enquire::ASCENDING);
		}
		Xapian::doccount first = offset > all ? all : (Xapian::doccount)offset;
		Xapian::doccount max = limit > all ? all : (Xapian::doccount)limit;
		// check_at_least = every document: the match count is exact, not estimated.
		Xapian::MSet mset = enq.get_mset(first, max, all);
		size_t n = mset.size();
		uint64_t *ids = (uint64_t *)malloc((n > 0 ? n : 1) * sizeof(*ids));
		if (ids == nullptr)
			throw std::bad_alloc();
		size_t i = 0;
		for (Xapian::MSetIterator it = mset.begin(); it != mset.end(); ++it)
			ids[i++] = local_docid(*it, db->nshards);
		*docids_r = ids;
		*n_r = i;
		if (total_r != nullptr)
			*total_r = mset.get_matches_estimated();
		return XS_OK;
	});
}

namespace {

// A set of documents of one database: a bit per docid up to its last (of the revision being counted).
class doc_set {
public:
	explicit doc_set(Xapian::docid last) : last_(last), words_(last / 64 + 1, 0) {}
	Xapian::docid last() const { return last_; }
	void add(Xapian::docid id)
	{
		if (id > last_)   // never from one revision; a bit out of the set would be memory out of it
			throw Xapian::DatabaseModifiedError("a posting past the last document of the revision counted");
		words_[id / 64] |= uint64_t(1) << (id % 64);
	}
	void add_postings(const Xapian::Database &d, const std::string &term)
	{
		for (Xapian::PostingIterator p = d.postlist_begin(term); p != d.postlist_end(term); ++p)
			add(*p);
	}
	void clear() { std::fill(words_.begin(), words_.end(), 0); }
	void unite(const doc_set &o) { for (size_t i = 0; i < words_.size(); i++) words_[i] |= o.words_[i]; }
	void intersect(const doc_set &o) { for (size_t i = 0; i < words_.size(); i++) words_[i] &= o.words_[i]; }
	void subtract(const doc_set &o) { for (size_t i = 0; i < words_.size(); i++) words_[i] &= ~o.words_[i]; }
	Xapian::doccount size() const
	{
		Xapian::doccount n = 0;
		for (uint64_t w : words_)
			n += (Xapian::doccount)__builtin_popcountll(w);
		return n;
	}

private:
	Xapian::docid last_;
	std::vector<uint64_t> words_;
};

void plan_eval(const Xapian::Database &d, const count_plan &plan, doc_set &set);

// Adds to set the documents of d that plan matches: leaves and ORs in place, an AND or AND_NOT in a set of
// its own, united afterwards.
void plan_add(const Xapian::Database &d, const count_plan &plan, doc_set &set)
{
	switch (plan.kind) {
	case count_plan::TERM:
		set.add_postings(d, plan.text);
		return;
	case count_plan::PATTERN: {
		// as Xapian's OP_WILDCARD with WILDCARD_LIMIT_ERROR, per database: past the limit, an error
		Xapian::termcount n = 0;
		for (Xapian::TermIterator t = d.allterms_begin(plan.text); t != d.allterms_end(plan.text); ++t) {
			if (++n > WILDCARD_MAX)
				throw Xapian::WildcardError("Too many terms in expansion of wildcard '" + plan.text + "'");
			set.add_postings(d, *t);
		}
		return;
	}
	case count_plan::ALL:
		set.add_postings(d, std::string());   // the empty term's list is every document
		return;
	case count_plan::NONE:
		return;
	case count_plan::OR:
		for (const plan_ptr &k : plan.kids)
			plan_add(d, *k, set);
		return;
	case count_plan::AND:
	case count_plan::AND_NOT: {
		doc_set own(set.last());
		plan_eval(d, plan, own);
		set.unite(own);
		return;
	}
	}
}

// Makes the empty set the documents of d that plan matches. An AND or AND_NOT builds its first child in
// set itself and each other child in one scratch set, used in turn: a long chain such as "-a* -b* -c* ..."
// holds two sets at a time, however long.
void plan_eval(const Xapian::Database &d, const count_plan &plan, doc_set &set)
{
	if (plan.kind != count_plan::AND && plan.kind != count_plan::AND_NOT) {
		plan_add(d, plan, set);
		return;
	}
	plan_eval(d, *plan.kids[0], set);
	doc_set scratch(set.last());
	for (size_t i = 1; i < plan.kids.size(); i++) {
		if (i > 1)
			scratch.clear();
		plan_eval(d, *plan.kids[i], scratch);
		if (plan.kind == count_plan::AND)
			set.intersect(scratch);
		else
			set.subtract(scratch);
	}
}

// How many documents of d plan matches. Everything but a few is every document less a few: counted that way.
Xapian::doccount plan_count(const Xapian::Database &d, const count_plan &plan)
{
	doc_set set(d.get_lastdocid());
	if (plan.kind == count_plan::AND_NOT && plan.kids[0]->kind == count_plan::ALL) {
		for (size_t i = 1; i < plan.kids.size(); i++)
			plan_add(d, *plan.kids[i], set);
		return d.get_doccount() - set.size();
	}
	plan_eval(d, plan, set);
	return set.size();
}

// Whether counting by plan beats Xapian's matcher: for wildcards and whole-archive NOTs. Small ANDs and ORs
// of words are left to Xapian, which skips through the lists instead of reading them whole.
bool plan_pays(const count_plan &plan)
{
	if (plan.kind == count_plan::PATTERN || plan.kind == count_plan::ALL)
		return true;
	for (const plan_ptr &k : plan.kids)
		if (plan_pays(*k))
			return true;
	return false;
}

// The exact number of documents of d that q matches.
Xapian::doccount count_in(const Xapian::Database &d, const Xapian::Query &q)
{
	Xapian::Enquire enq(d);
	enq.set_query(q);
	enq.set_weighting_scheme(Xapian::BoolWeight());   // counting needs no weights
	return enq.get_mset(0, 0, d.get_doccount()).get_matches_estimated();
}

// Where the next reader's first shard thread goes, among the usable processors.
std::atomic<unsigned> next_first_cpu{0};

// The processors this process may run on (empty when that cannot be told).
std::vector<int> usable_cpus()
{
	std::vector<int> cpus;
	cpu_set_t set;
	CPU_ZERO(&set);
	if (sched_getaffinity(0, sizeof(set), &set) == 0) {
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				cpus.push_back(c);
	}
	return cpus;
}

// Counts the shards of db in parallel, one of the reader's threads a shard, while the calling thread waits:
// by plan when there is one (shared read-only), else by Xapian, every thread with its own copy of the query
// (Xapian's reference counts are not atomic). Each shard is a Database of its own.
Xapian::doccount count_shards(struct xs_db *db, const Xapian::Query &q, const count_plan *plan)
{
	const size_t n = db->shards.size();
	std::vector<Xapian::Query> copies;
	if (plan == nullptr) {
		const std::string serialised = q.serialise();
		for (size_t i = 0; i < n; i++)
			copies.push_back(Xapian::Query::unserialise(serialised));
	}
	std::vector<Xapian::doccount> counts(n, 0);
	std::vector<std::exception_ptr> errors(n);
	auto run = [&](size_t i) {
		try {
			counts[i] = plan ? plan_count(db->shards[i], *plan) : count_in(db->shards[i], copies[i]);
		} catch (...) {
			errors[i] = std::current_exception();
		}
	};
	// one thread a shard, started on the first count and kept, each bound to one of the processors this
	// process may use; each reader starts where the last one stopped, so readers of fewer shards than there
	// are processors spread over all of them. With one processor, shards are counted in this thread; so are
	// those whose thread could not be started (tried again at the next count).
	if (db->count_threads && db->workers.size() < n) {
		const std::vector<int> cpus = usable_cpus();
		const size_t ncpus = cpus.empty() ? std::thread::hardware_concurrency() : cpus.size();
		db->count_threads = ncpus > 1;
		if (db->count_threads && db->first_cpu < 0)
			db->first_cpu = (int)(next_first_cpu.fetch_add((unsigned)n) % (unsigned)std::max<size_t>(ncpus, 1));
		while (db->count_threads && db->workers.size() < n) {
			const size_t k = db->workers.size();
			const int cpu = cpus.empty() ? -1 : cpus[((size_t)db->first_cpu + k) % cpus.size()];
			try {
				db->workers.push_back(std::make_unique<shard_worker>(cpu));
			} catch (...) {
				break;
			}
		}
	}
	// every job posted is waited for before this function returns, even when posting fails: the jobs use
	// its locals
	size_t posted = 0;
	for (; posted < db->workers.size(); posted++) {
		try {
			db->workers[posted]->post([&run, posted] { run(posted); });
		} catch (...) {
			break;
		}
	}
	for (size_t k = posted; k < n; k++)
		run(k);
	for (size_t k = 0; k < posted; k++)
		db->workers[k]->wait();
	Xapian::doccount total = 0;
	for (size_t k = 0; k < n; k++) {
		if (errors[k])
			std::rethrow_exception(errors[k]);
		total += counts[k];
	}
	return total;
}

} // namespace

enum xs_status xs_count(struct xs_db *db, const struct xs_query *q, uint64_t *count_r, char **error_r)
{
	*count_r = 0;
	if (db == nullptr || q == nullptr) {
		set_error(error_r, db == nullptr ? "no database" : "no query (a query constructor failed)");
		return db == nullptr ? XS_ERR_OTHER : XS_ERR_QUERY;
	}
	return guard(error_r, [&] {
		// by plan where it pays, decided once for every shard
		const count_plan *plan = q->plan != nullptr && plan_pays(*q->plan) ? q->plan.get() : nullptr;
		if (!db->writable && db->shards.size() > 1)
			*count_r = count_shards(db, q->q, plan);
		else
			*count_r = plan ? plan_count(db->db(), *plan) : count_in(db->db(), q->q);
		return XS_OK;
	});
}

}  // extern "C"

/* mailvault-web: one message: its fields, decoded text, attachments and every place it was seen; its exact
 * stored bytes; one attachment's bytes. A serial outside the officer's scope answers exactly as a missing
 * one, and both are audited. */
#include "web.h"
#include "buf.h"
#include "db.h"
#include "log.h"
#include "mime-extract.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>


/* Begins the officer's transaction and audits the look at serial (its fields, or its raw bytes), found or
   not. Returns 1 when the message is visible, 0 after replying 404, -1 after replying with an error. */
static int message_open(struct request *r, uint64_t serial, bool raw, enum MHD_Result *reply)
{
	const char *err;
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)serial);
	json_object *details = json_object_new_object();
	json_object_object_add(details, "raw", json_object_new_boolean(raw));
	if (web_begin_as(r, &err) < 0) {
		json_object_put(details);
		*reply = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
		return -1;
	}
	const char *p[] = { num };
	PGresult *vis = db_query(r->ctx->db, "SELECT 1 FROM messages WHERE serial = $1", 1, p, &err);
	if (vis == NULL) {
		json_object_put(details);
		web_end(r, false);
		*reply = web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read the archive", 0);
		return -1;
	}
	bool found = PQntuples(vis) > 0;
	PQclear(vis);
	json_object_object_add(details, "found", json_object_new_boolean(found));
	if (web_audit(r, "show", num, details) < 0) {
		web_end(r, false);
		*reply = web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
		return -1;
	}
	if (!found) {
		web_end(r, false);
		char msg[64];
		snprintf(msg, sizeof(msg), "no message with serial %llu", (unsigned long long)serial);
		*reply = web_reply_error(r, MHD_HTTP_NOT_FOUND, msg, 0);
		return 0;
	}
	return 1;
}

/* The stored bytes of serial (binary result; NULL after logging). */
static PGresult *message_raw(struct request *r, uint64_t serial)
{
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)serial);
	const char *p[] = { num };
	PGresult *res = PQexecParams(r->ctx->db, "SELECT b.raw FROM messages m JOIN blobs b ON b.sha256 = m.sha256 "
				     "WHERE m.serial = $1", 1, NULL, p, NULL, NULL, 1);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
		log_error("message %s: %s", num, PQresultErrorMessage(res));
		PQclear(res);
		return NULL;
	}
	return res;
}

/* A JSON string, or null for NULL. */
static json_object *message_str(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

enum MHD_Result api_message(struct request *r, uint64_t serial)
{
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)serial);
	enum MHD_Result reply;
	if (message_open(r, serial, false, &reply) <= 0)
		return reply;
	const char *p[] = { num }, *err;
	PGresult *res = db_query(r->ctx->db,
		"SELECT serial, encode(sha256, 'hex'), message_id, " ISO_UTC("date") ", from_addr, to_addr, cc_addr, "
		"subject, size, " ISO_UTC("ingested_at") ", header_error FROM messages WHERE serial = $1", 1, p, &err);
	PGresult *loc = res ? db_query(r->ctx->db,
		"SELECT a.name, f.name, l.uidvalidity, l.uid, " ISO_UTC("l.internaldate") ", array_to_string(l.flags, ' '), "
		ISO_UTC("l.first_seen") " FROM locations l JOIN folders f ON f.id = l.folder_id JOIN accounts a "
		"ON a.id = f.account_id WHERE l.message_serial = $1 ORDER BY l.id", 1, p, &err) : NULL;
	PGresult *raw = loc ? message_raw(r, serial) : NULL;
	web_end(r, raw != NULL);
	if (res == NULL || loc == NULL || raw == NULL || PQntuples(res) != 1) {
		PQclear(res);
		PQclear(loc);
		PQclear(raw);
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the message", 0);
	}
	json_object *o = json_object_new_object();
	static const char *keys[] = { "serial", "sha256", "message_id", "date", "from", "to", "cc", "subject", "size",
				      "archived", "header_error" };
	for (int k = 0; k < 11; k++) {
		if (PQgetisnull(res, 0, k))
			json_object_object_add(o, keys[k], NULL);
		else if (k == 0 || k == 8)
			json_object_object_add(o, keys[k], json_object_new_int64(strtoll(PQgetvalue(res, 0, k), NULL, 10)));
		else
			json_object_object_add(o, keys[k], json_object_new_string(PQgetvalue(res, 0, k)));
	}
	json_object *places = json_object_new_array();
	static const char *lkeys[] = { "account", "folder", "uidvalidity", "uid", "internaldate", "flags", "first_seen" };
	for (int i = 0; i < PQntuples(loc); i++) {
		json_object *pl = json_object_new_object();
		for (int k = 0; k < 7; k++) {
			if (PQgetisnull(loc, i, k))
				json_object_object_add(pl, lkeys[k], NULL);
			else if (k == 2 || k == 3)
				json_object_object_add(pl, lkeys[k], json_object_new_int64(strtoll(PQgetvalue(loc, i, k), NULL, 10)));
			else
				json_object_object_add(pl, lkeys[k], json_object_new_string(PQgetvalue(loc, i, k)));
		}
		json_object_array_add(places, pl);
	}
	json_object_object_add(o, "places", places);
	/* the decoded content, as the indexer reads it */
	struct mime_extract mx;
	mime_extract((const unsigned char *)PQgetvalue(raw, 0, 0), (size_t)PQgetlength(raw, 0, 0), &mx);
	json_object *atts = json_object_new_array();
	for (size_t i = 0; i < mx.nattachments; i++) {
		json_object *a = json_object_new_object();
		json_object_object_add(a, "index", json_object_new_int64((int64_t)i + 1));
		json_object_object_add(a, "filename", message_str(mx.attachments[i].filename));
		json_object_object_add(a, "mimetype", message_str(mx.attachments[i].mimetype));
		json_object_object_add(a, "size", json_object_new_int64((int64_t)mx.attachments[i].size));
		json_object_array_add(atts, a);
	}
	json_object_object_add(o, "attachments", atts);
	json_object_object_add(o, "note", message_str(mx.problem));
	json_object_object_add(o, "text", json_object_new_string_len(mx.body ? mx.body : "", (int)mx.body_len));
	mime_extract_free(&mx);
	PQclear(res);
	PQclear(loc);
	PQclear(raw);
	return web_reply_json(r, MHD_HTTP_OK, o);
}

enum MHD_Result api_message_raw(struct request *r, uint64_t serial)
{
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)serial);
	enum MHD_Result reply;
	if (message_open(r, serial, true, &reply) <= 0)
		return reply;
	PGresult *raw = message_raw(r, serial);
	web_end(r, raw != NULL);
	if (raw == NULL)
		return web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the message", 0);
	char disp[64];
	snprintf(disp, sizeof(disp), "attachment; filename=\"%s.eml\"", num);
	reply = web_reply_bytes(r, MHD_HTTP_OK, "message/rfc822", PQgetvalue(raw, 0, 0), (size_t)PQgetlength(raw, 0, 0),
				disp);
	PQclear(raw);
	return reply;
}

/* A Content-Disposition for a name from a message: an ASCII fallback with anything that could escape the
   quotes, name a folder or drive a terminal replaced, and the exact name percent-encoded (RFC 6266). */
static char *message_disposition(const char *name, uint64_t index)
{
	char fallback[96];
	if (name == NULL || *name == '\0') {
		snprintf(fallback, sizeof(fallback), "attachment-%llu", (unsigned long long)index);
		name = fallback;
	}
	/* only the last path element: "../../etc/passwd" saves as "passwd" */
	const char *base = name;
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == '\\')
			base = p + 1;
	if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
		snprintf(fallback, sizeof(fallback), "attachment-%llu", (unsigned long long)index);
		base = fallback;
	}
	struct buf ascii = { 0 }, enc = { 0 };
	for (const unsigned char *p = (const unsigned char *)base; *p && ascii.len < 200; p++) {
		unsigned char c = *p;
		bool plain = c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != ';' && c != '%';
		buf_append(&ascii, plain ? (const char *)p : "_", 1);
	}
	for (const unsigned char *p = (const unsigned char *)base; *p && enc.len < 600; p++) {
		unsigned char c = *p;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("!#$&+-.^_`|~", c))
			buf_append(&enc, p, 1);
		else
			buf_printf(&enc, "%%%02X", c);
	}
	if (ascii.len > 0 && ascii.data[0] == '.')
		ascii.data[0] = '_'; /* no hidden files */
	char *d = xasprintf("attachment; filename=\"%s\"; filename*=UTF-8''%s", ascii.data ? (char *)ascii.data : "",
			    enc.data ? (char *)enc.data : "");
	buf_free(&ascii);
	buf_free(&enc);
	return d;
}

enum MHD_Result api_attachment(struct request *r, uint64_t serial, uint64_t index)
{
	char target[48];
	snprintf(target, sizeof(target), "%llu/%llu", (unsigned long long)serial, (unsigned long long)index);
	/* the raw bytes are needed to know whether the attachment exists; read them first, audit, then answer */
	const char *err;
	char num[24];
	snprintf(num, sizeof(num), "%llu", (unsigned long long)serial);
	if (web_begin_as(r, &err) < 0)
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "the archive database is not reachable", 0);
	const char *p[] = { num };
	PGresult *vis = db_query(r->ctx->db, "SELECT 1 FROM messages WHERE serial = $1", 1, p, &err);
	if (vis == NULL) {
		/* the archive did not answer: an error, never a "not found" */
		web_end(r, false);
		return web_reply_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "cannot read the archive", 0);
	}
	bool found = PQntuples(vis) > 0;
	PQclear(vis);
	PGresult *raw = found ? message_raw(r, serial) : NULL;
	web_end(r, true);
	struct mime_extract mx = { 0 };
	struct buf bytes = { 0 };
	bool have = raw != NULL && mime_extract_attachment((const unsigned char *)PQgetvalue(raw, 0, 0),
							   (size_t)PQgetlength(raw, 0, 0), (size_t)index - 1, &mx, &bytes);
	PQclear(raw);
	json_object *d = json_object_new_object();
	json_object_object_add(d, "found", json_object_new_boolean(have));
	if (have)
		json_object_object_add(d, "filename", message_str(mx.attachments[index - 1].filename));
	enum MHD_Result reply;
	if (web_audit(r, "attachment", target, d) < 0) {
		reply = web_reply_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot write the audit record", 0);
	} else if (!have) {
		char msg[96];
		snprintf(msg, sizeof(msg), "no attachment %llu in a message with serial %llu", (unsigned long long)index,
			 (unsigned long long)serial);
		reply = web_reply_error(r, MHD_HTTP_NOT_FOUND, msg, 0);
	} else {
		/* never rendered by the browser: a download of opaque bytes */
		char *disp = message_disposition(mx.attachments[index - 1].filename, index);
		reply = web_reply_bytes(r, MHD_HTTP_OK, "application/octet-stream", bytes.data ? bytes.data : (void *)"",
					bytes.len, disp);
		free(disp);
	}
	mime_extract_free(&mx);
	buf_free(&bytes);
	return reply;
}

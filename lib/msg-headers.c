/* Reads the few header fields stored with each archived message, decoded to UTF-8 with GMime. */
#include "msg-headers.h"
#include "buf.h"
#include "util.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

/* The header block is read up to this many bytes: enough for any real header, bounded for hostile ones. */
#define MSG_HEADERS_MAX (1024 * 1024)

static pthread_once_t msg_headers_once = PTHREAD_ONCE_INIT;
/* GMime's charset tables and iconv cache are process-wide; one caller at a time keeps them safe. */
static pthread_mutex_t msg_headers_lock = PTHREAD_MUTEX_INITIALIZER;

/* Runs g_mime_init exactly once. */
static void msg_headers_do_init(void)
{
	g_mime_init();
}

/* Public initialiser. */
void msg_headers_init(void)
{
	pthread_once(&msg_headers_once, msg_headers_do_init);
}

enum { F_MSGID, F_FROM, F_TO, F_CC, F_SUBJECT, F_DATE, F_COUNT };
static const char *const msg_header_names[F_COUNT] = { "Message-ID", "From", "To", "Cc", "Subject", "Date" };

/* Splits the header block into fields and keeps the unfolded values of the ones we store.
   Returns false if no header could be recognised at all. */
static bool msg_headers_collect(const unsigned char *data, size_t len, struct buf fields[F_COUNT])
{
	size_t pos = 0, limit = len < MSG_HEADERS_MAX ? len : MSG_HEADERS_MAX;
	int current = -1;
	bool any = false, first = true;
	const unsigned char *line;
	size_t linelen;
	while (util_next_line(data, limit, &pos, &line, &linelen)) {
		bool was_first = first;
		first = false;
		if (linelen == 0)
			break; /* the empty line ends the header */
		if (line[0] == ' ' || line[0] == '\t') {
			if (current >= 0) /* folded continuation */
				buf_append(&fields[current], line, linelen);
			continue;
		}
		const unsigned char *colon = memchr(line, ':', linelen);
		if (colon == NULL || colon == line) {
			if (was_first && linelen > 5 && memcmp(line, "From ", 5) == 0)
				continue; /* an mbox "From " line before the header */
			break; /* not a header line: the body starts here (malformed split) */
		}
		size_t namelen = (size_t)(colon - line);
		while (namelen > 0 && (line[namelen - 1] == ' ' || line[namelen - 1] == '\t'))
			namelen--;
		any = true;
		current = -1;
		for (int f = 0; f < F_COUNT; f++) {
			if (strlen(msg_header_names[f]) == namelen &&
			    strncasecmp((const char *)line, msg_header_names[f], namelen) == 0) {
				/* To and Cc may be split over several fields; the others keep the first */
				if (fields[f].len > 0 && f != F_TO && f != F_CC)
					break;
				if (fields[f].len > 0)
					buf_append_str(&fields[f], ", ");
				current = f;
				buf_append(&fields[f], colon + 1, linelen - (size_t)(colon - line) - 1);
				break;
			}
		}
	}
	return any;
}

/* Decodes an address list to display form; falls back to decoded text if it does not parse. */
static char *msg_headers_addresses(const char *raw)
{
	InternetAddressList *list = internet_address_list_parse(NULL, raw);
	char *out = NULL;
	if (list != NULL && internet_address_list_length(list) > 0)
		out = internet_address_list_to_string(list, NULL, FALSE);
	if (list != NULL)
		g_object_unref(list);
	if (out == NULL)
		out = g_mime_utils_header_decode_text(NULL, raw);
	return out;
}

/* Moves a GLib string into a sanitised heap string of ours. */
static char *msg_headers_take(char *gstr)
{
	if (gstr == NULL)
		return NULL;
	char *s = util_utf8_sanitize(gstr, strlen(gstr));
	g_free(gstr);
	/* trim surrounding white space left by unfolding */
	char *start = s;
	while (*start == ' ' || *start == '\t')
		start++;
	size_t n = strlen(start);
	while (n > 0 && (start[n - 1] == ' ' || start[n - 1] == '\t'))
		n--;
	char *out = xstrndup(start, n);
	free(s);
	if (*out == '\0') {
		free(out);
		return NULL;
	}
	return out;
}

/* Parses the fields; never fails. */
void msg_headers_parse(const unsigned char *data, size_t len, struct msg_headers *h)
{
	struct buf fields[F_COUNT] = { 0 };
	memset(h, 0, sizeof(*h));
	msg_headers_init();
	if (!msg_headers_collect(data, len, fields)) {
		h->error = xstrdup("no header fields found");
		return;
	}
	pthread_mutex_lock(&msg_headers_lock);
	for (int f = 0; f < F_COUNT; f++) {
		if (fields[f].len == 0)
			continue;
		/* raw header bytes may be anything: make them a C string GMime can take */
		char *raw = util_utf8_sanitize((const char *)fields[f].data, fields[f].len);
		switch (f) {
		case F_MSGID: {
			char *id = g_mime_utils_decode_message_id(raw);
			h->message_id = msg_headers_take(id ? id : g_strdup(raw));
			break;
		}
		case F_FROM: h->from = msg_headers_take(msg_headers_addresses(raw)); break;
		case F_TO: h->to = msg_headers_take(msg_headers_addresses(raw)); break;
		case F_CC: h->cc = msg_headers_take(msg_headers_addresses(raw)); break;
		case F_SUBJECT: h->subject = msg_headers_take(g_mime_utils_header_decode_text(NULL, raw)); break;
		case F_DATE: {
			GDateTime *dt = g_mime_utils_header_decode_date(raw);
			if (dt != NULL) {
				gint64 t = g_date_time_to_unix(dt);
				/* outside years 1..9999 is a broken header, not a date */
				if (t >= -62135596800LL && t <= 253402300799LL) {
					h->has_date = true;
					h->date = t;
				}
				g_date_time_unref(dt);
			}
			if (!h->has_date)
				h->error = xstrdup("unparsable Date header");
			break;
		}
		}
		free(raw);
	}
	pthread_mutex_unlock(&msg_headers_lock);
	for (int f = 0; f < F_COUNT; f++)
		buf_free(&fields[f]);
}

/* Frees what parse allocated. */
void msg_headers_free(struct msg_headers *h)
{
	FREE(h->message_id);
	FREE(h->from);
	FREE(h->to);
	FREE(h->cc);
	FREE(h->subject);
	FREE(h->error);
}

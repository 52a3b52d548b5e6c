/* Turns an extracted message and its locations into a Xapian document (terms per prefixes.h). */
#include "doc-build.h"
#include "buf.h"
#include "prefixes.h"
#include "util.h"
#include "xapian_shim.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Indexes one address list under a field's text, address and domain prefixes. The text (names and
   address words) has no stemmed copies: stems of names find nothing a person would look for, and they
   would cost as many postings as the words themselves. */
static void doc_add_addresses(struct xs_doc *doc, const struct mime_address_list *list, const char *text_pfx,
			      const char *addr_pfx, const char *domain_pfx)
{
	struct buf words = { 0 };
	for (size_t i = 0; i < list->count; i++) {
		const struct mime_address *a = &list->items[i];
		buf_reset(&words);
		if (a->name != NULL)
			buf_printf(&words, "%s ", a->name);
		if (a->addr != NULL) {
			xs_doc_add_term(doc, addr_pfx, a->addr);
			const char *at = strrchr(a->addr, '@');
			if (at != NULL && at[1] != '\0')
				xs_doc_add_term(doc, domain_pfx, at + 1);
			/* the address's words, so from:dasovich and from:enron find it */
			for (const char *p = a->addr; *p; p++)
				buf_append(&words, strchr("._-+@", *p) ? " " : p, 1);
		}
		if (words.len > 0)
			xs_doc_index_text_unstemmed(doc, text_pfx, (const char *)words.data, words.len);
	}
	buf_free(&words);
}

/* Builds the whole document. */
struct xs_doc *doc_build(const struct mime_extract *mx, const struct doc_location *locs, size_t nlocs,
			 int64_t fallback_date, uint64_t size)
{
	struct xs_doc *doc = xs_doc_new();
	/* once, under S: free words and body: search S as well (query-xapian.c) */
	if (mx->subject != NULL)
		xs_doc_index_text(doc, PFX_SUBJECT, mx->subject, strlen(mx->subject));
	if (mx->body != NULL)
		xs_doc_index_text(doc, PFX_BODY, mx->body, mx->body_len);
	if (mx->attachment_text != NULL)
		xs_doc_index_text(doc, PFX_BODY, mx->attachment_text, mx->attachment_text_len);
	doc_add_addresses(doc, &mx->from, PFX_FROM, PFX_FROM_ADDR, PFX_FROM_DOMAIN);
	doc_add_addresses(doc, &mx->to, PFX_TO, PFX_TO_ADDR, PFX_TO_DOMAIN);
	doc_add_addresses(doc, &mx->cc, PFX_CC, PFX_CC_ADDR, PFX_CC_DOMAIN);
	doc_add_addresses(doc, &mx->bcc, PFX_BCC, PFX_BCC_ADDR, PFX_BCC_DOMAIN);
	for (size_t i = 0; i < mx->nattachments; i++)
		if (mx->attachments[i].filename != NULL)
			xs_doc_index_text(doc, PFX_FILENAME, mx->attachments[i].filename,
					  strlen(mx->attachments[i].filename));
	if (mx->nattachments > 0)
		xs_doc_add_term(doc, PFX_HAS, "attachment");
	for (size_t i = 0; i < mx->nmimetypes; i++)
		xs_doc_add_term(doc, PFX_MIMETYPE, mx->mimetypes[i]);
	if (mx->message_id != NULL && mx->message_id[0] != '\0')
		xs_doc_add_term(doc, PFX_MSGID, mx->message_id);
	for (size_t i = 0; i < nlocs; i++) {
		xs_doc_add_term(doc, PFX_ACCOUNT, locs[i].account);
		xs_doc_add_term(doc, PFX_FOLDER, locs[i].folder);
	}
	xs_doc_set_value(doc, XS_SLOT_DATE, (double)(mx->has_date ? mx->date : fallback_date));
	xs_doc_set_value(doc, XS_SLOT_SIZE, (double)size);
	return doc;
}

/* The value of a hex digit, or -1. */
static int doc_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
		return (c | 0x20) - 'a' + 10;
	return -1;
}

/* Decodes n hex digits at p into a new string; NULL if they are not hex or hold a NUL. */
static char *doc_unhex(const char *p, size_t n)
{
	if (n % 2 != 0)
		return NULL;
	char *out = xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = doc_hexval(p[2 * i]), lo = doc_hexval(p[2 * i + 1]);
		if (hi < 0 || lo < 0 || hi + lo == 0) {
			free(out);
			return NULL;
		}
		out[i] = (char)(hi * 16 + lo);
	}
	out[n / 2] = '\0';
	return out;
}

/* "hex:hex,hex:hex" into pairs. */
size_t doc_locations_parse(const char *text, size_t len, struct doc_location **locs_r)
{
	size_t cap = 1, n = 0;
	for (size_t i = 0; i < len; i++)
		cap += text[i] == ',';
	struct doc_location *locs = xcalloc(cap, sizeof(*locs));
	for (size_t i = 0; i < len;) {
		size_t end = i;
		while (end < len && text[end] != ',')
			end++;
		const char *colon = memchr(text + i, ':', end - i);
		if (colon != NULL) {
			char *acct = doc_unhex(text + i, (size_t)(colon - (text + i)));
			char *folder = doc_unhex(colon + 1, (size_t)(text + end - colon - 1));
			if (acct != NULL && folder != NULL) {
				locs[n].account = acct;
				locs[n].folder = folder;
				n++;
			} else {
				free(acct);
				free(folder);
			}
		}
		i = end + 1;
	}
	*locs_r = locs;
	return n;
}

/* Frees the pairs' strings and the array. */
void doc_locations_free(struct doc_location *locs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)locs[i].account);
		free((char *)locs[i].folder);
	}
	free(locs);
}

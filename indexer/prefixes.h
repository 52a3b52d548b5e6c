/* The Xapian term prefixes and value slots of a mailvault document: the one vocabulary shared by the
   indexer (which writes terms) and the query parser (which looks them up). */
#ifndef MAILVAULT_PREFIXES_H
#define MAILVAULT_PREFIXES_H

/* Free text with positions (phrase search), not stemmed (no Z copies; queries look words up as
   written, lower-cased): display names and the words of addresses (local part split at . _ - +,
   domain split at .). */
#define PFX_FROM        "F"
#define PFX_TO          "T"
#define PFX_CC          "C"
#define PFX_BCC         "B"
/* Exact terms, lower-cased: the whole address, and its domain without the @. */
#define PFX_FROM_ADDR   "XFA"
#define PFX_FROM_DOMAIN "XFD"
#define PFX_TO_ADDR     "XTA"
#define PFX_TO_DOMAIN   "XTD"
#define PFX_CC_ADDR     "XCA"
#define PFX_CC_DOMAIN   "XCD"
#define PFX_BCC_ADDR    "XBA"
#define PFX_BCC_DOMAIN  "XBD"
/* Subject words (indexed once: free words and `body:` search them too). */
#define PFX_SUBJECT     "S"
/* Unprefixed free text: body text, text of textual (text/...) attachments. Free words and `body:`
   search it together with the subject (PFX_SUBJECT); a phrase matches within one of the two. */
#define PFX_BODY        ""
/* Attachment file names as text ("report.pdf" -> report, pdf). */
#define PFX_FILENAME    "XFN"
/* Exact terms. */
#define PFX_MSGID       "XMID"   /* Message-ID without angle brackets, as written */
#define PFX_MIMETYPE    "XMT"    /* every part's type/subtype, lower-cased */
#define PFX_ACCOUNT     "XACC"   /* account name of every location, as written */
#define PFX_FOLDER      "XFOL"   /* folder name of every location, as written */
#define PFX_HAS         "XHAS"   /* "attachment" when the message has one */

/* Value slots: see XS_SLOT_DATE and XS_SLOT_SIZE in xapian_shim.h. */

#endif

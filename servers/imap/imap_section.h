/*
 * imap_section.h - BODY[section]<origin.count> (RFC 3501 6.4.5): which
 * bytes of a stored message a section names, and those bytes as sent.
 *
 *   ""                 the whole message
 *   HEADER, TEXT       the top-level header (with its empty line) / body
 *   HEADER.FIELDS (a b), HEADER.FIELDS.NOT (a b)
 *                      the matching fields of a header, then CRLF (built)
 *   1, 2.3             a part's body; part 1 of a message that is not
 *                      multipart is its body
 *   2.MIME             a part's own MIME header (with its empty line)
 *   2.HEADER, 2.TEXT, 2.HEADER.FIELDS (...)
 *                      the header / body of the message in a
 *                      message/rfc822 part
 *
 * Offsets come from the MIME tree (runtime/mime_parser.h); sizes and the
 * partial <origin.count> are counted in the CRLF form (imap_msg.h).
 */
#ifndef HK_IMAP_SECTION_H
#define HK_IMAP_SECTION_H

#include <stdbool.h>
#include <stddef.h>

#include "imap_msg.h"
#include "util.h"

#define IMAP_SECTION_MAX_DEPTH 32   /* numbers in a part path (the parser's default max_depth) */
#define IMAP_SECTION_MAX_FIELDS 64  /* names in HEADER.FIELDS (...) */
#define IMAP_SECTION_MAX_NUMBER 100000 /* a part number beyond any max_parts */

enum imap_section_kind {
	IMAP_SECTION_ALL = 0,      /* "" or a part's body */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};

struct imap_section {
	unsigned part[IMAP_SECTION_MAX_DEPTH];
	unsigned nparts;
	enum imap_section_kind kind;
	struct hk_str fields[IMAP_SECTION_MAX_FIELDS]; /* slices of the parsed text */
	size_t nfields;
};

/* Parses the text between '[' and ']', e.g. "1.2.HEADER.FIELDS (From
 * \"To\")". Field names are atoms or quoted strings without escapes (the
 * command parser hands literals over already read). Returns 0, or -1 for
 * a syntax error, a 0 or too large part number, MIME without a part, or
 * more than the limits allow. */
int imap_section_parse(const char *s, size_t len, struct imap_section *sec);

enum imap_section_status {
	IMAP_SECTION_OK = 0,
	IMAP_SECTION_NO_PART,     /* the path names no part: send "" (as Dovecot does) */
	IMAP_SECTION_NOT_MESSAGE, /* HEADER/TEXT of a part that is not message/rfc822 */
};

struct imap_section_data {
	bool built;         /* HEADER.FIELDS[.NOT]: the bytes are `text` */
	size_t off, len;    /* otherwise the raw byte range of the stored message */
	struct hk_str text; /* built text, CRLF, in the message arena */
	size_t size;        /* octets of the section as sent (CRLF form), before <partial> */
};

enum imap_section_status imap_section_resolve(struct imap_msg *m, const struct imap_section *sec,
					      struct imap_section_data *d);

/* The octets a client gets for <origin.count> (count SIZE_MAX: no
 * partial): an origin past the end gives 0 octets, a count past the end
 * is clamped. */
size_t imap_section_partial_size(const struct imap_section_data *d, size_t origin, size_t count);

/* Appends those octets (CRLF form). */
void imap_section_write(struct imap_msg *m, const struct imap_section_data *d, size_t origin, size_t count,
			struct hk_buf *out);

/* Zero copy for a message without bare LF (imap_msg_crlf_clean): the raw
 * range to send; false when the section is built or the message is not
 * clean (then use imap_section_write). */
bool imap_section_range(struct imap_msg *m, const struct imap_section_data *d, size_t origin, size_t count,
			size_t *off_r, size_t *len_r);

#endif

/*
 * imap_hdr.h - a header block read field by field straight from the raw
 * message bytes, without the MIME parser: ENVELOPE needs only the header
 * (stopping at the empty line is what makes FETCH ENVELOPE cheap on large
 * messages), HEADER.FIELDS copies whole fields out of a header block.
 *
 * Lines end in CRLF or a bare LF. A field is a line with a ':' plus the
 * lines starting with a blank after it; a line that is neither (an mbox
 * "From " line, garbage) is skipped. The header ends at an empty line or
 * at the end of the input.
 *
 * SECURITY: the bytes are hostile; the iterator only moves forward, never
 * allocates, and bounds nothing but needs nothing bounded.
 */
#ifndef HK_IMAP_HDR_H
#define HK_IMAP_HDR_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

struct imap_hdr_field {
	struct hk_str name;  /* as written, blanks before the ':' removed */
	struct hk_str value; /* folded, leading blanks removed, final line end excluded */
	size_t start, end;   /* the whole field in the block, end after its line end */
};

struct imap_hdr_iter {
	const char *p;
	size_t len, pos;
	size_t body;         /* offset after the empty line, once reached */
	bool done;
};

void imap_hdr_init(struct imap_hdr_iter *it, const char *p, size_t len);
/* The next field; false at the end of the header. */
bool imap_hdr_next(struct imap_hdr_iter *it, struct imap_hdr_field *f);
/* Offset where the body starts (after the empty line; len when there is
 * none). Reads through the remaining fields when called before the end. */
size_t imap_hdr_body_start(struct imap_hdr_iter *it);

/* The length of the header block of p[0..len): through its empty line,
 * or len when there is none (what imap_hdr_body_start gives). *fields_r:
 * every line before the empty line belongs to a field whose name is
 * printable ASCII without blanks, and the first line is no mbox "From "
 * line; then the MIME parser ends the header at the same empty line, so
 * the block alone gives the same HEADER and HEADER.FIELDS sections as the
 * whole message (a block that is not clean must not be used for those). */
size_t imap_hdr_block(const char *p, size_t len, bool *fields_r);

/* Appends the value unfolded (RFC 5322 2.2.3: CR and LF removed, the
 * blanks after them kept). */
void imap_hdr_unfold(struct hk_str value, struct hk_buf *out);

#endif

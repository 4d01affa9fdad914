/*
 * imap_envelope.h - FETCH ENVELOPE (RFC 3501 7.4.2).
 *
 * Only the header block is read (stopping at the empty line), never the
 * MIME structure, so the cost does not depend on the body size.
 */
#ifndef HK_IMAP_ENVELOPE_H
#define HK_IMAP_ENVELOPE_H

#include <stddef.h>

#include "util.h"

/* Placeholders for an address without a domain or a local part, so that
 * it cannot be read as RFC 3501 group syntax (host NIL); Dovecot's names. */
#define IMAP_ENV_MISSING_MAILBOX "MISSING_MAILBOX"
#define IMAP_ENV_MISSING_DOMAIN "MISSING_DOMAIN"

/* Appends the parenthesised envelope of the message raw[0..len):
 *   (date subject from sender reply-to to cc bcc in-reply-to message-id)
 * Values are as written in the message (unfolded, RFC 2047 words NOT
 * decoded, as RFC 3501 specifies); the first field of each name counts;
 * Sender and Reply-To fall back to From when absent or empty; groups are
 * written with RFC 3501's markers ((NIL NIL "group" NIL) ... (NIL NIL NIL
 * NIL)). */
void imap_envelope_write(const char *raw, size_t len, struct hk_buf *out);

#endif

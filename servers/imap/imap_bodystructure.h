/*
 * imap_bodystructure.h - FETCH BODY and BODYSTRUCTURE (RFC 3501 7.4.2).
 */
#ifndef HK_IMAP_BODYSTRUCTURE_H
#define HK_IMAP_BODYSTRUCTURE_H

#include <stdbool.h>

#include "imap_msg.h"
#include "util.h"

/* Parameters written per Content-Type or Content-Disposition; more are
 * dropped (a hostile header could otherwise make every FETCH huge). */
#define IMAP_BS_MAX_PARAMS 32
/* Languages written from one Content-Language field. */
#define IMAP_BS_MAX_LANGS 16

/* Appends the body structure of the message: BODY when `extended` is
 * false, BODYSTRUCTURE (with extension data) when it is true.
 *
 * As Dovecot writes it: types, subtypes, encodings, parameter names and
 * disposition types in lower case; parameter values as written, RFC 2231
 * continuations joined but not decoded (mime_param_list); a text part
 * without charset gets ("charset" "us-ascii"); a part without
 * Content-Type is text/plain (message/rfc822 in a multipart/digest); a
 * multipart the parser could not expand (no boundary, depth limit) holds
 * one empty text/plain part, since IMAP has no empty multipart. Sizes are
 * octets of the encoded body as sent (bare LF counted as CRLF); lines are
 * the number of LFs. md5 is always NIL. */
void imap_bodystructure_write(struct imap_msg *m, bool extended, struct hk_buf *out);

#endif

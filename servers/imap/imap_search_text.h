/*
 * imap_search_text.h - the text and date matchers of SEARCH (RFC 3501
 * 6.4.4): FROM, TO, CC, BCC, SUBJECT, HEADER, BODY, TEXT, SENTBEFORE,
 * SENTON, SENTSINCE. The session parses the search program and converts
 * the search string from the command's CHARSET to UTF-8; these functions
 * answer one key for one message.
 *
 * Matching is a substring test, case-insensitive for ASCII, Latin-1,
 * Latin Extended-A, basic Greek and Cyrillic and fullwidth Latin
 * (imap_search_fold), on decoded text:
 *   - header keys: the header's values with RFC 2047 words decoded to
 *     UTF-8 (raw 8-bit values read in their guessed charset);
 *   - BODY: the decoded text of the text parts as message.h defines it
 *     (transfer encoding and charset decoded, ISO-2022-JP, Shift_JIS and
 *     EUC-JP included; attachments left out; HTML without tags when there
 *     is no plain alternative);
 *   - TEXT: every header field ("Name: decoded value") and the body.
 *
 * Bounded work: IMAP_SEARCH_TEXT_MAX bytes of decoded body text, and as
 * many of header text, are scanned per message; text beyond them is not
 * found. The decoded, folded texts are cached in the imap_msg, so several
 * keys on one message decode it once.
 */
#ifndef HK_IMAP_SEARCH_TEXT_H
#define HK_IMAP_SEARCH_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "imap_date.h"
#include "imap_msg.h"
#include "util.h"

#define IMAP_SEARCH_TEXT_MAX (1024 * 1024) /* decoded body (and header) text scanned per message */

/* Appends the case-folded form of the UTF-8 text s (bytes that are not
 * UTF-8 are copied as they are). */
void imap_search_fold(const char *s, size_t n, struct hk_buf *out);

/* HEADER name value (and FROM/TO/CC/BCC/SUBJECT with their field
 * names): true when a field `name` has a decoded value containing the
 * needle; an empty needle matches any message that has the field. */
bool imap_search_header(struct imap_msg *m, const char *name, size_t namelen, const char *needle, size_t nlen);
bool imap_search_body(struct imap_msg *m, const char *needle, size_t nlen);
bool imap_search_text(struct imap_msg *m, const char *needle, size_t nlen);

enum imap_sent_op { IMAP_SENT_BEFORE, IMAP_SENT_ON, IMAP_SENT_SINCE };

/* The first Date: field parsed (imap_date_parse); false when it is
 * missing or unparsable. */
bool imap_search_sent_date(struct imap_msg *m, struct imap_date *d_r);
/* SENTBEFORE / SENTON / SENTSINCE against year-month-day; a message
 * without a parsable date matches none of them. */
bool imap_search_sent(struct imap_msg *m, enum imap_sent_op op, int year, int month, int day);

#endif

/*
 * rfc2047.h - decoding of header text to UTF-8: RFC 2047 encoded words in
 * any charset, and raw 8-bit (or raw ISO-2022-JP) bytes as old mailers
 * write them.
 *
 * Tolerant like Thunderbird: encoded words inside quoted strings or glued to
 * text are decoded; blanks inside encoded text are accepted; a word whose
 * "?=" is missing is decoded up to the next blank (or the next "=?");
 * "charset*lang" (RFC 2231) is accepted; unknown charsets are guessed.
 * Adjacent encoded words separated only by blanks are joined without the
 * blanks, and the raw bytes of adjacent words in the same charset are
 * converted together, so a character split across two words survives.
 */
#ifndef HK_RFC2047_H
#define HK_RFC2047_H

#include <stddef.h>

#include "util.h"

#define RFC2047_CHARSET_MAX 64 /* longer "charsets" mean it is not an encoded word */

/* Appends the decoded UTF-8 text of the header value in[0..len) to out.
 * Returns HK_MSG_ERR_* flags (ENCODING, CHARSET, 8BIT_HEADER) for what was
 * wrong with it; 0 for clean input. */
unsigned rfc2047_decode(const char *in, size_t len, struct hk_buf *out);

/* Decodes raw (unencoded) header bytes: kept when ASCII or UTF-8, else
 * converted from the guessed charset (charset_guess). Returns flags as above. */
unsigned rfc2047_decode_raw(const char *in, size_t len, struct hk_buf *out);

#endif

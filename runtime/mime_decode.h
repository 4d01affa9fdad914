/*
 * mime_decode.h - content transfer decoders: base64 (RFC 2045 6.8, tolerant
 * like mail clients), quoted-printable (RFC 2045 6.7) and the RFC 2047 "Q"
 * variant, plus exact decoded-size counters that produce no output.
 *
 * All decoders append to a caller's hk_buf, never fail, and return false
 * when the input was damaged (the output is still the best reading).
 * Output is never longer than the input.
 */
#ifndef HK_MIME_DECODE_H
#define HK_MIME_DECODE_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

/* Base64: characters outside the alphabet are skipped (whitespace silently,
 * anything else counts as damage); '=' ends the current quantum, and
 * decoding resumes after it, so concatenated blocks decode too; missing
 * padding is accepted. */
bool mime_base64_decode(const char *in, size_t len, struct hk_buf *out);
size_t mime_base64_decoded_len(const char *in, size_t len);

/* Quoted-printable: =XX (either case), soft line breaks ("=" plus optional
 * blanks before the line end), blanks before a hard line break removed,
 * malformed escapes passed through as they are. Line ends are kept. */
bool mime_qp_decode(const char *in, size_t len, struct hk_buf *out);
size_t mime_qp_decoded_len(const char *in, size_t len);

/* RFC 2047 "Q": like quoted-printable, and '_' is a space. */
bool mime_q_decode(const char *in, size_t len, struct hk_buf *out);

/* RFC 2231 / URL style %XX; a bad escape is kept as it is. */
bool mime_percent_decode(const char *in, size_t len, struct hk_buf *out);

#endif

/*
 * charset.h - conversion of mail text in any charset iconv knows to UTF-8,
 * with the fixes real Japanese mail needs:
 *   - "Shift_JIS", "x-sjis", "SJIS" are decoded as CP932 (as browsers do);
 *   - ISO-2022-JP with NEC row 13 (e.g. ESC $ B 0x2D21 = U+2460 ①) and
 *     other CP50220 extensions, which glibc rejects, is decoded through
 *     EUC-JP-MS;
 *   - EUC-JP is decoded as EUC-JP-MS;
 *   - invalid bytes become U+FFFD, one per bad byte, and decoding goes on.
 * Unknown charsets are treated as UTF-8 when the bytes are valid UTF-8,
 * else as ISO-8859-1 (never fails).
 *
 * Thread safety: iconv handles are cached per thread (CHARSET_CACHE_SIZE
 * labels); nothing else is shared.
 */
#ifndef HK_CHARSET_H
#define HK_CHARSET_H

#include <stdbool.h>
#include <stddef.h>

#include "util.h"

#define CHARSET_LABEL_MAX 40 /* longer labels are "unknown" (no iconv_open) */
#define CHARSET_CACHE_SIZE 8 /* iconv handles kept per thread */

/* Appends the UTF-8 text to out. Returns false when something was replaced
 * or the charset was unknown (the output is still usable). An empty label,
 * "us-ascii" and unknown labels are auto-detected (charset_guess). */
bool charset_to_utf8(const char *charset, size_t charset_len, const char *in, size_t len, struct hk_buf *out);

/* True when s is well-formed UTF-8. */
bool utf8_valid(const char *s, size_t len);

/* Appends s to out with every byte that is not part of well-formed UTF-8
 * replaced by U+FFFD; returns false when something was replaced. */
bool utf8_repair(const char *s, size_t len, struct hk_buf *out);

/* Guesses the charset of unlabelled text (raw 8-bit headers, text parts
 * without charset): "US-ASCII", "ISO-2022-JP" (ESC sequences), "UTF-8",
 * "CP932", "EUC-JP" (scored on the kana and kanji pairs each reading
 * yields) or "ISO-8859-1". */
const char *charset_guess(const char *s, size_t len);

/* Closes this thread's cached iconv handles (tests, fuzzing, thread exit). */
void charset_cache_clear(void);

#endif

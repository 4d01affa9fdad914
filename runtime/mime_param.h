/*
 * mime_param.h - Content-Type / Content-Disposition values: the media type,
 * the disposition token and parameters, with RFC 2231 (name*=charset'lang'
 * %XX, name*0*= ... continuations) and RFC 2047 inside quoted values (what
 * Outlook writes), and raw 8-bit filenames read in a guessed charset.
 *
 * Input is one unfolded header value; nothing is allocated but in the
 * caller's buffer.
 */
#ifndef HK_MIME_PARAM_H
#define HK_MIME_PARAM_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "util.h"

#define MIME_PARAM_MAX_SECTIONS 64 /* RFC 2231 continuations honoured (name*0 .. name*63) */
#define MIME_PARAM_LIST_SCAN 256   /* parameters mime_param_list looks at in one value */

/* "type/subtype" at the start of a Content-Type value, as slices of v in
 * the case written; false when there is no type/subtype pair. */
bool mime_param_type(const char *v, size_t len, struct hk_str *type_r, struct hk_str *subtype_r);

/* The first token of a value (disposition type, transfer encoding), as a
 * slice of v; empty when there is none. */
struct hk_str mime_param_token(const char *v, size_t len);

/* Appends the value of parameter `name` as written: quotes and
 * backslash escapes removed, nothing decoded (boundary, charset). Returns
 * false when the parameter is absent. */
bool mime_param_raw(const char *v, size_t len, const char *name, struct hk_buf *out);

/* The value of parameter `name` as a slice of v (inside the quotes when
 * quoted); *escaped_r tells whether it still holds backslash escapes
 * (then use mime_param_raw). No allocation: the parser's fast path. */
bool mime_param_slice(const char *v, size_t len, const char *name, struct hk_str *val_r, bool *escaped_r);

/* Appends the decoded UTF-8 value of parameter `name`: RFC 2231 forms win
 * over the plain one, continuations are joined before the charset is
 * applied, and plain values are RFC 2047 decoded. *errs_r gets
 * HK_MSG_ERR_* flags for damaged input. Returns false when absent. */
bool mime_param_get(const char *v, size_t len, const char *name, struct hk_buf *out, unsigned *errs_r);

/* One parameter as mime_param_list gives it. */
struct mime_param_kv {
	struct hk_str name;  /* lower case; "name*" for a joined RFC 2231 encoded value */
	struct hk_str value; /* quotes and escapes removed, nothing decoded */
};

/* Every parameter of the value, in order of first appearance, for IMAP
 * BODYSTRUCTURE (RFC 3501 lists parameters as written; clients decode RFC
 * 2231 themselves): "name*0", "name*1"... are joined into one "name" (or
 * "name*" when section 0 is "name*0*"; the value keeps its
 * charset'lang'%XX form); a repeated name keeps the first. Strings live in
 * `a`. Returns the count, at most `max`; only the first
 * MIME_PARAM_LIST_SCAN parameters are looked at. */
size_t mime_param_list(const char *v, size_t len, struct arena *a, struct mime_param_kv *out, size_t max);

#endif

/*
 * address.h - RFC 5322 address lists (From, To, Cc, Reply-To, Sender, Bcc,
 * Resent-*), parsed the tolerant way mail clients do: display names (RFC
 * 2047 decoded, also inside quoted strings), quoted local parts, comments
 * (a comment is the display name when there is none: "a@b (Ann)"), groups
 * (flattened; "undisclosed-recipients:;" yields nothing), obsolete routes
 * ("<@relay:a@b>"), addresses without a domain ("MAILER-DAEMON").
 * Garbage is skipped; whatever is parseable is returned. Nothing is
 * lower-cased: compare case-insensitively.
 */
#ifndef HK_ADDRESS_H
#define HK_ADDRESS_H

#include <stddef.h>

#include "arena.h"
#include "message.h"

#define ADDRESS_MAX_PER_LIST 4096 /* addresses kept per header field */

/* A growable array (heap) the parser appends to. */
struct address_list {
	struct hk_address *v;
	size_t n, cap;
};

/* Parses one raw (unfolded, undecoded) header value and appends its
 * addresses to list; strings are allocated in a. Returns HK_MSG_ERR_* flags
 * of the display-name decoding. */
unsigned address_parse(const char *in, size_t len, struct arena *a, struct address_list *list);

#endif

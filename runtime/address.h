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

/* struct hk_address.kind */
enum { ADDRESS_MAILBOX = 0, ADDRESS_GROUP_START, ADDRESS_GROUP_END };

/* address_parse_flags() options, for IMAP ENVELOPE (RFC 3501 7.4.2), which
 * wants the header as written rather than as a reader sees it. */
enum {
	/* display and group names as written: quoted strings unquoted, words
	 * joined by one blank, RFC 2047 words NOT decoded */
	ADDRESS_RAW_NAMES = 1u << 0,
	/* a group becomes a GROUP_START entry (group name in .name), its
	 * members, then a GROUP_END entry (also added when the ';' is missing);
	 * "undisclosed-recipients:;" yields the two markers */
	ADDRESS_GROUP_MARKS = 1u << 1,
	/* keep the obsolete route of "<@relay:a@b>" in .route */
	ADDRESS_KEEP_ROUTE = 1u << 2,
};

/* A growable array (heap) the parser appends to. */
struct address_list {
	struct hk_address *v;
	size_t n, cap;
};

/* Parses one raw (unfolded, undecoded) header value and appends its
 * addresses to list; strings are allocated in a. Returns HK_MSG_ERR_* flags
 * of the display-name decoding. */
unsigned address_parse(const char *in, size_t len, struct arena *a, struct address_list *list);
/* The same with ADDRESS_* options; address_parse is flags == 0. Group
 * markers count against ADDRESS_MAX_PER_LIST like addresses, except that a
 * started group always gets its end marker. */
unsigned address_parse_flags(const char *in, size_t len, unsigned flags, struct arena *a, struct address_list *list);

#endif

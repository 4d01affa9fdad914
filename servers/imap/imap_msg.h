/*
 * imap_msg.h - one stored message as the IMAP FETCH and SEARCH code sees
 * it: the raw bytes, the MIME part tree built on first use, the size a
 * client is told (RFC822.SIZE) and the caches of the SEARCH text matchers.
 *
 * Pipeline: the IMAP session maps or reads a message file, wraps it in an
 * imap_msg, and calls imap_envelope / imap_bodystructure / imap_section /
 * imap_search_text on it; nothing here touches a socket or a file.
 *
 * Line ends: messages are stored with CRLF, but files delivered by other
 * software may use bare LF. IMAP sends CRLF, so every size and offset a
 * client sees is counted as if each bare LF were CRLF (the "vsize");
 * imap_crlf_copy produces those bytes. A NUL byte cannot be sent in an
 * IMAP literal either (RFC 3501 4.3): the copy writes it as 0x80, as
 * Dovecot does, which keeps every size. imap_msg_crlf_clean() tells when
 * raw byte ranges can be sent as they are (no bare LF, no NUL: the common
 * case).
 *
 * Ownership: `raw` is borrowed and must outlive the imap_msg; everything
 * the getters return lives in the message's arena until imap_msg_fini.
 * One imap_msg belongs to one thread at a time (see message.h).
 */
#ifndef HK_IMAP_MSG_H
#define HK_IMAP_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "message.h"
#include "util.h"

struct mime_tree;

struct imap_msg {
	const char *raw;
	size_t len;
	struct arena arena;
	struct hk_message_limits limits; /* defaults; may be changed before the first getter */
	/* private: filled on first use */
	const struct mime_tree *tree;
	struct hk_message *hm;       /* decoded view for SEARCH */
	int clean;                   /* -1 unknown, 0 has bare LF or NUL, 1 sendable as is */
	size_t vsize;
	bool have_text, have_hdrs;   /* the folded SEARCH texts below */
	struct hk_str body_folded;   /* decoded body text, case-folded */
	struct hk_str hdrs_folded;   /* "Name: decoded value\n" per field, case-folded */
};

void imap_msg_init(struct imap_msg *m, const char *raw, size_t len);
void imap_msg_fini(struct imap_msg *m);

/* The part tree (mime_parser.h), parsed on first call. */
const struct mime_tree *imap_msg_tree(struct imap_msg *m);

/* RFC822.SIZE: the size in octets with every bare LF counted as CRLF. */
size_t imap_msg_vsize(struct imap_msg *m);
/* True when the message has no bare LF and no NUL: its byte ranges are
 * what a client must see. */
bool imap_msg_crlf_clean(struct imap_msg *m);

/* n plus the bare LFs of p[0..n) (an LF at p[0] counts as bare). */
size_t imap_crlf_size(const char *p, size_t n);
/* Appends bytes [origin, origin + count) of the CRLF form of p[0..n),
 * clamped to its end (count SIZE_MAX: to the end), NUL written as 0x80. */
void imap_crlf_copy(const char *p, size_t n, size_t origin, size_t count, struct hk_buf *out);
/* Lines in p[0..n): the number of LFs (as Dovecot counts body lines). */
size_t imap_count_lines(const char *p, size_t n);

#endif

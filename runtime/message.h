/*
 * message.h - the message model: a lazily decoded, read-only view of one
 * RFC 5322 / MIME message, as the rule VM, the dry-run tester and (later)
 * the SMTP, IMAP and webmail servers see it.
 *
 * Pipeline: raw bytes -> mime_parser (push mode, builds the part tree with
 * byte offsets, never copies the body) -> hk_message (decodes only what a
 * caller asks for: a header's values, the addresses of a header, the text
 * of the body, the attachment list, and caches each answer).
 *
 * Ownership: hk_message_new borrows `raw`; it must outlive the message.
 * Everything a getter returns lives in the message's arena and is valid
 * until hk_message_free. Getters fill caches, so one message belongs to one
 * thread at a time; different messages may be used by different threads
 * (charset.c keeps its iconv handles per thread: call charset_cache_clear()
 * before a worker thread exits).
 *
 * SECURITY: the input is hostile. Every limit is in struct
 * hk_message_limits; exceeding one sets a HK_MSG_ERR_* flag and parsing goes
 * on in a degraded but safe way (e.g. deeper parts are treated as opaque
 * leaves). No input makes the parser crash, loop or allocate more than a
 * small multiple of the input size.
 */
#ifndef HK_MESSAGE_H
#define HK_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define HK_MSG_DEFAULT_MAX_DEPTH 32
#define HK_MSG_DEFAULT_MAX_PARTS 1000
#define HK_MSG_DEFAULT_MAX_HEADERS 1000
#define HK_MSG_DEFAULT_MAX_HEADER_LINE (64 * 1024)
#define HK_MSG_DEFAULT_BODY_TEXT_MAX (1024 * 1024)

/* A zero field means its default. */
struct hk_message_limits {
	unsigned max_depth;        /* multipart nesting (default 32) */
	unsigned max_parts;        /* parts in the whole tree (default 1000) */
	unsigned max_headers;      /* header fields per part (default 1000) */
	size_t max_header_line;    /* one unfolded header field (default 64 KiB, at least 1 KiB) */
	size_t body_text_max;      /* decoded body text kept for `body` (default 1 MiB) */
};

void hk_message_limits_default(struct hk_message_limits *l);

/* Error flags: what was wrong with the input (all non-fatal). The
 * structural ones are known when hk_message_new returns; ENCODING, CHARSET
 * and the 8BIT_HEADER found in a value are added when that text is first
 * decoded (by a getter, or by hk_message_dump, which decodes everything). */
enum {
	HK_MSG_ERR_DEPTH = 1u << 0,        /* nesting limit reached */
	HK_MSG_ERR_PARTS = 1u << 1,        /* part count limit reached */
	HK_MSG_ERR_HEADERS = 1u << 2,      /* header count or length limit */
	HK_MSG_ERR_BOUNDARY = 1u << 3,     /* multipart without (closing) boundary */
	HK_MSG_ERR_8BIT_HEADER = 1u << 4,  /* raw 8-bit bytes in headers */
	HK_MSG_ERR_NUL = 1u << 5,          /* NUL bytes */
	HK_MSG_ERR_ENCODING = 1u << 6,     /* broken base64 / QP / encoded word */
	HK_MSG_ERR_CHARSET = 1u << 7,      /* unknown charset or invalid bytes */
	HK_MSG_ERR_NO_HEADER_END = 1u << 8 /* no empty line after the header */
};

enum hk_priority { HK_PRIORITY_NORMAL = 0, HK_PRIORITY_HIGH, HK_PRIORITY_LOW };

struct hk_address {
	struct hk_str name;   /* display name, RFC 2047 decoded, UTF-8; may be empty */
	struct hk_str local;  /* local part (unquoted) */
	struct hk_str domain; /* domain, may be empty for a bare local part */
	struct hk_str addr;   /* local@domain */
	struct hk_str group;  /* group display name when the address came from a group */
	struct hk_str route;  /* obsolete source route "@a,@b" as written; only with ADDRESS_KEEP_ROUTE */
	unsigned kind;        /* ADDRESS_MAILBOX, or a group marker with ADDRESS_GROUP_MARKS (address.h) */
};

struct hk_attachment {
	struct hk_str name; /* filename (RFC 2231 / 2047 decoded) or name= of Content-Type; may be empty */
	struct hk_str type; /* lower-case media type, e.g. "application/pdf" */
	size_t size;        /* decoded size in bytes (computed from the encoded size) */
};

/* One header field as it appears, in order. */
struct hk_header {
	struct hk_str name;  /* as written */
	struct hk_str raw;   /* value, unfolded (CRLF+WSP -> WSP), leading WSP removed, not decoded */
};

struct hk_message;

struct hk_message *hk_message_new(const char *raw, size_t len, const struct hk_message_limits *limits);
void hk_message_free(struct hk_message **m);

size_t hk_message_size(const struct hk_message *m);
unsigned hk_message_errors(const struct hk_message *m);

/* The MIME part tree with byte offsets into `raw` (mime_parser.h), for
 * callers that rewrite the message (strip attachments, add headers). */
struct mime_tree;
const struct mime_tree *hk_message_tree(const struct hk_message *m);

/* All top-level header fields in order. */
size_t hk_message_headers(struct hk_message *m, const struct hk_header **h_r);

/* Values of the top-level header `name` (case-insensitive), in order,
 * unfolded, RFC 2047 decoded and converted to UTF-8. Returns the count. */
size_t hk_message_header(struct hk_message *m, const char *name, size_t namelen, const struct hk_str **vals_r);

/* The addresses of every `name` header (From, To, Cc, Reply-To, Sender,
 * Bcc, Resent-*), parsed per RFC 5322 with groups flattened. */
size_t hk_message_addresses(struct hk_message *m, const char *name, size_t namelen, const struct hk_address **addrs_r);

/* The decoded text of the message's text parts (text/plain; text/html with
 * tags removed when no plain alternative exists), in UTF-8, truncated to
 * limits.body_text_max. Empty when the message has no text part.
 * Details: parts are joined with "\n", CRLF becomes LF; parts with
 * Content-Disposition: attachment are left out; an inline message/rfc822
 * contributes its own text parts; a multipart that could not be expanded
 * (no boundary, depth limit) is read as plain text so it cannot hide text
 * from the rules. */
struct hk_str hk_message_body_text(struct hk_message *m);
/* The same, ASCII-lower-cased, for case-insensitive searching. */
struct hk_str hk_message_body_text_lower(struct hk_message *m);
/* Everything after the header's empty line, undecoded. */
struct hk_str hk_message_body_raw(struct hk_message *m);

/* Parts with Content-Disposition: attachment, or with a filename, or with
 * a non-text, non-multipart, non-message type that is not inline text.
 * An attached message (message/rfc822 with such a disposition or a
 * filename) is one attachment; its inner parts are not listed. In document
 * order. */
size_t hk_message_attachments(struct hk_message *m, const struct hk_attachment **att_r);

/* From X-Priority (1-2 high, 3 normal, 4-5 low), Importance
 * (high/normal/low) and Priority (urgent/normal/non-urgent), first one
 * present with a recognisable value wins, in that order. X-MSMail-Priority
 * (High/Normal/Low) is read last. */
enum hk_priority hk_message_priority(struct hk_message *m);

/* Writes a readable dump of the part tree and decoded headers (golden tests,
 * `hikyaku test --json` debugging). Format, one item per line:
 *   parts:        "  " per depth, type/subtype, charset, cte, disposition,
 *                 filename, decoded size, [flags]
 *   headers:      name: decoded value (control bytes escaped, long values cut)
 *   addresses:    From/Sender/Reply-To/To/Cc/Bcc entries
 *   attachments:, priority:, body: (decoded text, cut), errors:
 */
void hk_message_dump(struct hk_message *m, struct hk_buf *out);

#endif

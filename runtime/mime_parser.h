/*
 * mime_parser.h - streaming (push mode) MIME structure parser.
 *
 * Feed the raw message in chunks of any size with mime_parser_push(); the
 * result of mime_parser_finish() is the same whatever the chunking. The
 * parser builds the part tree with byte offsets into the stream and copies
 * nothing but the unfolded Content-Type and Content-Disposition values; the
 * caller keeps the bytes (in memory or a spool file) to decode parts later.
 *
 *   struct mime_parser *p = mime_parser_new(&limits, arena);
 *   mime_parser_push(p, buf, n);  ... as data arrives ...
 *   const struct mime_tree *t = mime_parser_finish(p);  (lives in arena)
 *   mime_parser_free(&p);
 *
 * Structure rules (see mime_parser.c for the why):
 *   - lines end in LF or CRLF; a boundary line is "--" boundary ["--"]
 *     followed only by blanks; the CRLF before it belongs to it;
 *   - boundaries are matched innermost first and close every part opened
 *     inside; a multipart whose boundary equals an enclosing one is not
 *     expanded (like Postfix, the inner one is ignored);
 *   - message/rfc822 and message/global with an identity encoding are
 *     parsed as a nested message (one child), counted in the depth;
 *   - past limits.max_depth a container is an opaque leaf (HK_MSG_ERR_DEPTH),
 *     past limits.max_parts further parts are skipped (HK_MSG_ERR_PARTS).
 */
#ifndef HK_MIME_PARSER_H
#define HK_MIME_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "message.h"
#include "util.h"

#define MIME_BOUNDARY_MAX 200       /* longest boundary honoured (RFC 2046 says 70) */
#define MIME_LINE_PREFIX 256        /* bytes of a body line kept for boundary matching */
#define MIME_HEADER_LINE_MIN 1024   /* max_header_line is raised to at least this */

enum mime_cte {
	MIME_CTE_7BIT = 0, /* also the default and unknown identity forms */
	MIME_CTE_8BIT,
	MIME_CTE_BINARY,
	MIME_CTE_QP,
	MIME_CTE_BASE64,
	MIME_CTE_UUENCODE,
	MIME_CTE_OTHER, /* unknown: treated as binary */
};

enum mime_disp { MIME_DISP_NONE = 0, MIME_DISP_INLINE, MIME_DISP_ATTACHMENT, MIME_DISP_OTHER };

/* struct mime_part.flags */
enum {
	MIME_PART_CONTAINER = 1u << 0,      /* expanded: multipart with children, or message/rfc822 */
	MIME_PART_CLOSED = 1u << 1,         /* multipart: its close delimiter was seen */
	MIME_PART_DEPTH_LIMIT = 1u << 2,    /* a container left opaque at the depth limit */
	MIME_PART_NO_BOUNDARY = 1u << 3,    /* multipart without a usable boundary */
	MIME_PART_DUP_BOUNDARY = 1u << 4,   /* multipart reusing an enclosing boundary */
	MIME_PART_NO_HEADER_END = 1u << 5,  /* header ended without an empty line */
	MIME_PART_DEFAULT_TYPE = 1u << 6,   /* no (valid) Content-Type: default type */
	MIME_PART_PARTS_LIMIT = 1u << 7,    /* container whose later children were skipped */
};

/* struct mime_header.flags */
enum {
	MIME_HDR_FOLDED = 1u << 0,   /* spans several lines */
	MIME_HDR_8BIT = 1u << 1,     /* raw bytes >= 0x80 */
	MIME_HDR_TOO_LONG = 1u << 2, /* longer than max_header_line */
};

/* One header field: offsets into the stream. The name is
 * [name_off, name_off + name_len); the value (folded, with its leading
 * blanks) is [value_off, end_off), end_off excluding the line end. */
struct mime_header {
	size_t name_off, value_off, end_off;
	uint32_t name_len;
	uint32_t flags;
};

struct mime_part {
	struct mime_part *parent, *child, *last_child, *next;
	unsigned index;     /* in document order, root = 0 */
	unsigned depth;     /* root = 0 */
	unsigned flags;     /* MIME_PART_* */
	unsigned nchildren;
	size_t hdr_start, hdr_end;   /* header block, without the empty line */
	size_t body_start, body_end; /* body, without the line end before a boundary */
	size_t hdr_first, hdr_count; /* this part's fields in mime_tree.headers */
	struct hk_str type, subtype; /* lower case; text/plain (message/rfc822 in a digest) by default */
	struct hk_str boundary;      /* multipart boundary as written, may be empty */
	struct hk_str ctype;         /* unfolded Content-Type value, empty when absent */
	struct hk_str cdisp;         /* unfolded Content-Disposition value, empty when absent */
	enum mime_cte cte;
	enum mime_disp disp;
};

struct mime_tree {
	struct mime_part *root;
	struct mime_part **parts; /* document order; parts[0] == root */
	size_t nparts;
	struct mime_header *headers; /* every part's fields, part by part */
	size_t nheaders;
	size_t size;                 /* bytes pushed */
	unsigned errors;             /* HK_MSG_ERR_* found while parsing */
};

struct mime_parser;

/* Zero limit fields mean the defaults of hk_message_limits_default(). The
 * tree and its strings are allocated in `a`. */
struct mime_parser *mime_parser_new(const struct hk_message_limits *limits, struct arena *a);
void mime_parser_push(struct mime_parser *p, const char *data, size_t len);
/* Ends the input and returns the tree (valid as long as the arena). Further
 * pushes are ignored; calling it again returns the same tree. */
const struct mime_tree *mime_parser_finish(struct mime_parser *p);
void mime_parser_free(struct mime_parser **p);

/* Appends a dump of the structure with every offset (chunking tests). */
void mime_tree_dump(const struct mime_tree *t, struct hk_buf *out);

const char *mime_cte_name(enum mime_cte cte);
const char *mime_disp_name(enum mime_disp d);

#endif

/*
 * mime_parser.c - push-mode MIME structure parser (see mime_parser.h).
 *
 * Pipeline: raw message bytes (SMTP DATA as it arrives, or a whole message
 * in memory) -> mime_parser_push -> struct mime_tree (part offsets, header
 * field offsets, Content-* essentials) -> message.c decodes lazily.
 *
 * How it works: the input is cut into lines (LF, or CRLF). A line that lies
 * whole inside one pushed chunk is handled in place; only a line that spans
 * chunks is copied, and only its first bytes (MIME_LINE_PREFIX in a body,
 * max_header_line in a header), so memory does not depend on line length.
 * Every decision about a line looks at no more than those first bytes,
 * which is what makes the result independent of the chunking. A body with
 * no enclosing boundary cannot end before EOF, so it is skipped without
 * looking for line ends at all: a single-part message costs one pass over
 * its header.
 *
 * State: `cur` is the part whose header or body is being read; `st` says
 * which (MP_SKIP: inside a part dropped at the parts limit). The boundary
 * stack holds the expanded multiparts whose close delimiter has not been
 * seen, innermost last; each is cur or an ancestor of cur.
 *
 * Ownership: parts, their strings and the part and header arrays live in
 * the caller's arena; the parser's own buffers (line carry, Content-*
 * value, boundary stack) are heap and freed by mime_parser_free.
 *
 * Limits (struct hk_message_limits): max_depth, max_parts, max_headers per
 * part, max_header_line per field (the field is still recorded by offsets,
 * its interpretation sees only the first max_header_line bytes);
 * MIME_BOUNDARY_MAX, MIME_LINE_PREFIX. Exceeding one sets an HK_MSG_ERR_*
 * flag and parsing goes on.
 *
 * SECURITY: the input is hostile. No recursion (nesting is a parent chain
 * walked by loops); per-line work is bounded by the line length plus the
 * boundary stack depth (<= max_depth); allocation is bounded by the number
 * of lines (header records) and max_parts, never by a declared size.
 */
#include "mime_parser.h"

#include <stdlib.h>
#include <string.h>

#include "mime_param.h"

enum mp_state { MP_HEADER, MP_BODY, MP_SKIP };
enum field_kind { FK_OTHER, FK_CTYPE, FK_CTE, FK_CDISP };
enum header_end_reason { HE_BLANK, HE_GARBAGE, HE_BOUNDARY, HE_EOF };

struct mime_parser {
	struct arena *arena;
	struct hk_message_limits lim;
	struct mime_tree *tree; /* in the arena, set by finish */

	enum mp_state st;
	struct mime_part *cur;
	size_t off; /* bytes pushed so far */

	/* the current line, when it spans pushes */
	bool in_line;
	size_t line_start, line_len;
	char line_last;
	struct hk_buf line;
	size_t prev_eol; /* line end length of the previous line */
	bool first_line;

	/* the header field being read (it may continue on the next line) */
	bool field_open, field_recorded;
	enum field_kind field_kind;
	struct mime_header field;
	size_t field_len;   /* raw bytes, line ends included */
	struct hk_buf fval; /* unfolded value of a Content-* field */
	size_t part_fields; /* fields seen in cur's header, recorded or not */
	bool seen_ct, seen_cte, seen_cd;

	struct mime_part **bstack; /* heap */
	size_t nb, bcap;
	struct mime_part **parts; /* arena, doubled as needed */
	size_t nparts, pcap;
	struct mime_header *hdrs; /* arena, doubled as needed */
	size_t nhdrs, hcap;
	unsigned errors;
};

/* Grows an arena array to hold need elements: doubling, so the copies left
 * behind add up to less than the final array. */
static void *
arena_grow(struct arena *a, void *v, size_t *cap, size_t n, size_t need, size_t size)
{
	if (need <= *cap)
		return v;
	size_t ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	void *nv = arena_alloc(a, ncap * size);
	if (n)
		memcpy(nv, v, n * size);
	*cap = ncap;
	return nv;
}

static const struct hk_str str_text = { "text", 4 }, str_plain = { "plain", 5 };
static const struct hk_str str_message = { "message", 7 }, str_rfc822 = { "rfc822", 6 };

static struct mime_part *
new_part(struct mime_parser *p, struct mime_part *parent, size_t hdr_start)
{
	struct mime_part *q = arena_calloc(p->arena, 1, sizeof(*q));
	q->parent = parent;
	q->depth = parent ? parent->depth + 1 : 0;
	q->index = (unsigned)p->nparts;
	q->hdr_start = q->hdr_end = q->body_start = q->body_end = hdr_start;
	q->hdr_first = p->nhdrs;
	q->type = q->subtype = q->boundary = q->ctype = q->cdisp = (struct hk_str){ "", 0 };
	if (parent) {
		if (parent->last_child)
			parent->last_child->next = q;
		else
			parent->child = q;
		parent->last_child = q;
		parent->nchildren++;
	}
	p->parts = arena_grow(p->arena, p->parts, &p->pcap, p->nparts, p->nparts + 1, sizeof(*p->parts));
	p->parts[p->nparts++] = q;
	p->part_fields = 0;
	p->seen_ct = p->seen_cte = p->seen_cd = false;
	return q;
}

struct mime_parser *
mime_parser_new(const struct hk_message_limits *limits, struct arena *a)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));
	const struct hk_message_limits d = {
		.max_depth = HK_MSG_DEFAULT_MAX_DEPTH,
		.max_parts = HK_MSG_DEFAULT_MAX_PARTS,
		.max_headers = HK_MSG_DEFAULT_MAX_HEADERS,
		.max_header_line = HK_MSG_DEFAULT_MAX_HEADER_LINE,
		.body_text_max = HK_MSG_DEFAULT_BODY_TEXT_MAX,
	};
	p->lim = limits ? *limits : d;
	if (p->lim.max_depth == 0)
		p->lim.max_depth = d.max_depth;
	if (p->lim.max_parts == 0)
		p->lim.max_parts = d.max_parts;
	if (p->lim.max_headers == 0)
		p->lim.max_headers = d.max_headers;
	if (p->lim.max_header_line == 0)
		p->lim.max_header_line = d.max_header_line;
	if (p->lim.max_header_line < MIME_HEADER_LINE_MIN)
		p->lim.max_header_line = MIME_HEADER_LINE_MIN;
	if (p->lim.body_text_max == 0)
		p->lim.body_text_max = d.body_text_max;
	p->arena = a;
	buf_init(&p->line);
	buf_init(&p->fval);
	p->first_line = true;
	p->st = MP_HEADER;
	p->cur = new_part(p, NULL, 0);
	return p;
}

void
mime_parser_free(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	if (p == NULL)
		return;
	buf_fini(&p->line);
	buf_fini(&p->fval);
	free(p->bstack);
	free(p);
	*pp = NULL;
}

static size_t
line_cap(const struct mime_parser *p)
{
	return p->st == MP_HEADER ? p->lim.max_header_line : MIME_LINE_PREFIX;
}

static void
scan_8bit(struct mime_parser *p, const char *s, size_t n)
{
	size_t i = 0;
	uint64_t acc = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)s[i];
	if (acc & 0x8080808080808080ull) {
		p->field.flags |= MIME_HDR_8BIT;
		p->errors |= HK_MSG_ERR_8BIT_HEADER;
	}
}

static struct hk_str
lower_copy(struct arena *a, struct hk_str s)
{
	char *c = arena_strndup(a, s.ptr, s.len);
	for (size_t i = 0; i < s.len; i++)
		c[i] = ascii_lower(c[i]);
	return (struct hk_str){ c, s.len };
}

static struct hk_str
trimmed(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	return (struct hk_str){ s, n };
}

/* Takes what the structure needs from a finished Content-* field of cur. */
static void
field_interpret(struct mime_parser *p)
{
	struct mime_part *q = p->cur;
	struct hk_str v = trimmed(p->fval.data ? p->fval.data : "", p->fval.len);

	switch (p->field_kind) {
	case FK_CTYPE: {
		if (p->seen_ct)
			return;
		p->seen_ct = true;
		q->ctype = arena_str(p->arena, v.ptr, v.len);
		struct hk_str t, st;
		if (mime_param_type(q->ctype.ptr, q->ctype.len, &t, &st)) {
			q->type = lower_copy(p->arena, t);
			q->subtype = lower_copy(p->arena, st);
		}
		struct hk_str bv;
		bool escaped;
		if (mime_param_slice(q->ctype.ptr, q->ctype.len, "boundary", &bv, &escaped)) {
			struct hk_buf b;
			buf_init(&b);
			if (escaped) {
				mime_param_raw(q->ctype.ptr, q->ctype.len, "boundary", &b);
				bv = (struct hk_str){ b.data, b.len };
			}
			bv = trimmed(bv.ptr, bv.len);
			/* unescaped, it is a slice of q->ctype, already in the arena */
			q->boundary = escaped ? arena_str(p->arena, bv.ptr, bv.len) : bv;
			buf_fini(&b);
		}
		break;
	}
	case FK_CTE: {
		if (p->seen_cte)
			return;
		p->seen_cte = true;
		struct hk_str t = mime_param_token(v.ptr, v.len);
		if (t.len == 0)
			q->cte = MIME_CTE_7BIT;
		else if (str_ieq_cstr(t, "7bit"))
			q->cte = MIME_CTE_7BIT;
		else if (str_ieq_cstr(t, "8bit"))
			q->cte = MIME_CTE_8BIT;
		else if (str_ieq_cstr(t, "binary"))
			q->cte = MIME_CTE_BINARY;
		else if (str_ieq_cstr(t, "quoted-printable"))
			q->cte = MIME_CTE_QP;
		else if (str_ieq_cstr(t, "base64"))
			q->cte = MIME_CTE_BASE64;
		else if (str_ieq_cstr(t, "x-uuencode") || str_ieq_cstr(t, "uuencode") || str_ieq_cstr(t, "x-uue"))
			q->cte = MIME_CTE_UUENCODE;
		else
			q->cte = MIME_CTE_OTHER;
		break;
	}
	case FK_CDISP: {
		if (p->seen_cd)
			return;
		p->seen_cd = true;
		q->cdisp = arena_str(p->arena, v.ptr, v.len);
		struct hk_str t = mime_param_token(q->cdisp.ptr, q->cdisp.len);
		if (t.len == 0)
			q->disp = MIME_DISP_NONE;
		else if (str_ieq_cstr(t, "inline"))
			q->disp = MIME_DISP_INLINE;
		else if (str_ieq_cstr(t, "attachment"))
			q->disp = MIME_DISP_ATTACHMENT;
		else
			q->disp = MIME_DISP_OTHER; /* RFC 2183: treat as attachment */
		break;
	}
	case FK_OTHER:
		break;
	}
}

static void
field_finish(struct mime_parser *p)
{
	if (!p->field_open)
		return;
	p->field_open = false;
	if (p->field_len > p->lim.max_header_line) {
		p->field.flags |= MIME_HDR_TOO_LONG;
		p->errors |= HK_MSG_ERR_HEADERS;
	}
	if (!p->field_recorded)
		return;
	p->hdrs = arena_grow(p->arena, p->hdrs, &p->hcap, p->nhdrs, p->nhdrs + 1, sizeof(*p->hdrs));
	p->hdrs[p->nhdrs++] = p->field;
	p->cur->hdr_count++;
	if (p->field_kind != FK_OTHER)
		field_interpret(p);
}

static enum field_kind
field_classify(const char *name, size_t n)
{
	struct hk_str s = { name, n };
	if (n < 12 || !str_ieq((struct hk_str){ name, 8 }, HK_STR("content-")))
		return FK_OTHER;
	if (str_ieq_cstr(s, "content-type"))
		return FK_CTYPE;
	if (str_ieq_cstr(s, "content-transfer-encoding"))
		return FK_CTE;
	if (str_ieq_cstr(s, "content-disposition"))
		return FK_CDISP;
	return FK_OTHER;
}

/* "name" [blanks] ":" within s[0..n); the name is printable ASCII. */
static bool
header_name(const char *s, size_t n, size_t *name_len_r, size_t *colon_r)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c == ':' || c <= ' ' || c >= 0x7F)
			break;
		i++;
	}
	if (i == 0)
		return false;
	size_t name_len = i;
	while (i < n && (s[i] == ' ' || s[i] == '\t'))
		i++;
	if (i >= n || s[i] != ':')
		return false;
	*name_len_r = name_len;
	*colon_r = i;
	return true;
}

static bool
part_is(const struct mime_part *q, const char *type, const char *subtype)
{
	return q && str_eq(q->type, (struct hk_str){ type, strlen(type) }) &&
	       (subtype == NULL || str_eq(q->subtype, (struct hk_str){ subtype, strlen(subtype) }));
}

static void
resolve_type(struct mime_part *q)
{
	if (q->type.len && q->subtype.len)
		return;
	q->flags |= MIME_PART_DEFAULT_TYPE;
	if (part_is(q->parent, "multipart", "digest")) {
		q->type = str_message;
		q->subtype = str_rfc822;
	} else {
		q->type = str_text;
		q->subtype = str_plain;
	}
}

static bool
boundary_active(const struct mime_parser *p, struct hk_str b)
{
	for (size_t k = 0; k < p->nb; k++)
		if (str_eq(p->bstack[k]->boundary, b))
			return true;
	return false;
}

/* The header of cur ended at hdr_end; its body starts at body_start. */
static void
header_end(struct mime_parser *p, size_t hdr_end, size_t body_start, enum header_end_reason why)
{
	struct mime_part *q = p->cur;
	q->hdr_end = hdr_end;
	q->body_start = q->body_end = body_start;
	if ((why != HE_BLANK && p->part_fields > 0) || (why == HE_GARBAGE && q->parent == NULL)) {
		q->flags |= MIME_PART_NO_HEADER_END;
		p->errors |= HK_MSG_ERR_NO_HEADER_END;
	}
	resolve_type(q);
	p->st = MP_BODY;
	if (why == HE_BOUNDARY || why == HE_EOF)
		return; /* no body follows: nothing to expand */

	if (part_is(q, "multipart", NULL)) {
		if (q->boundary.len == 0 || q->boundary.len > MIME_BOUNDARY_MAX) {
			q->flags |= MIME_PART_NO_BOUNDARY;
			p->errors |= HK_MSG_ERR_BOUNDARY;
		} else if (boundary_active(p, q->boundary)) {
			/* An inner multipart reusing an outer boundary would make
			 * every delimiter ambiguous; like Postfix, honour the outer
			 * one and leave the inner multipart a leaf. */
			q->flags |= MIME_PART_DUP_BOUNDARY;
			p->errors |= HK_MSG_ERR_BOUNDARY;
		} else if (q->depth >= p->lim.max_depth) {
			q->flags |= MIME_PART_DEPTH_LIMIT;
			p->errors |= HK_MSG_ERR_DEPTH;
		} else {
			q->flags |= MIME_PART_CONTAINER;
			p->bstack = xgrow(p->bstack, &p->bcap, p->nb + 1, sizeof(*p->bstack));
			p->bstack[p->nb++] = q;
		}
	} else if (part_is(q, "message", "rfc822") || part_is(q, "message", "global") ||
		   part_is(q, "message", "news")) {
		/* An encoded message cannot be read line by line: leave it a leaf. */
		if (q->cte != MIME_CTE_7BIT && q->cte != MIME_CTE_8BIT && q->cte != MIME_CTE_BINARY)
			return;
		if (q->depth >= p->lim.max_depth) {
			q->flags |= MIME_PART_DEPTH_LIMIT;
			p->errors |= HK_MSG_ERR_DEPTH;
		} else if (p->nparts >= p->lim.max_parts) {
			q->flags |= MIME_PART_PARTS_LIMIT;
			p->errors |= HK_MSG_ERR_PARTS;
		} else {
			q->flags |= MIME_PART_CONTAINER;
			p->cur = new_part(p, q, body_start);
			p->st = MP_HEADER;
		}
	}
}

/* 1: delimiter, 2: close delimiter, 0: not this boundary. */
static int
boundary_match(struct hk_str b, const char *s, size_t n)
{
	if (n < 2 + b.len || memcmp(s + 2, b.ptr, b.len) != 0)
		return 0;
	size_t i = 2 + b.len;
	int r = 1;
	if (n - i >= 2 && s[i] == '-' && s[i + 1] == '-') {
		r = 2;
		i += 2;
	}
	for (; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return 0;
	return r;
}

/* A boundary line of bstack[k] at `start`: close everything inside it. */
static void
on_boundary(struct mime_parser *p, size_t k, bool close, size_t full, size_t eol, size_t start)
{
	struct mime_part *m = p->bstack[k];
	size_t end = start >= p->prev_eol ? start - p->prev_eol : start;

	if (p->st == MP_HEADER) {
		field_finish(p);
		header_end(p, start, start, HE_BOUNDARY);
	}
	for (struct mime_part *q = p->cur; q && q != m; q = q->parent)
		q->body_end = end > q->body_start ? end : q->body_start;
	for (size_t j = k + 1; j < p->nb; j++)
		p->errors |= HK_MSG_ERR_BOUNDARY; /* inner multipart never closed */
	p->nb = k + 1;
	p->cur = m;
	if (close) {
		m->flags |= MIME_PART_CLOSED;
		p->nb = k;
		p->st = MP_BODY; /* epilogue */
	} else if (p->nparts >= p->lim.max_parts) {
		m->flags |= MIME_PART_PARTS_LIMIT;
		p->errors |= HK_MSG_ERR_PARTS;
		p->st = MP_SKIP;
	} else {
		p->cur = new_part(p, m, start + full + eol);
		p->st = MP_HEADER;
	}
}

/* One line of cur's header. Returns true when the line is not part of the
 * header and must be handled again in the new state. */
static bool
header_line(struct mime_parser *p, const char *s, size_t avail, size_t full, size_t eol, size_t start, bool first)
{
	if (full == 0) {
		field_finish(p);
		header_end(p, start, start + eol, HE_BLANK);
		return false;
	}
	if (avail > 0 && (s[0] == ' ' || s[0] == '\t')) {
		if (p->field_open) {
			p->field.end_off = start + full;
			p->field.flags |= MIME_HDR_FOLDED;
			p->field_len += p->prev_eol + full;
			if (p->field_kind != FK_OTHER && p->fval.len < p->lim.max_header_line) {
				size_t room = p->lim.max_header_line - p->fval.len;
				buf_add(&p->fval, s, avail < room ? avail : room);
			}
			scan_8bit(p, s, avail);
		}
		return false; /* a stray continuation line is dropped */
	}
	field_finish(p);
	if (first && avail >= 5 && memcmp(s, "From ", 5) == 0)
		return false; /* mbox separator */

	size_t name_len, colon;
	if (!header_name(s, avail, &name_len, &colon)) {
		header_end(p, start, start, HE_GARBAGE);
		return true;
	}
	p->field_open = true;
	p->field.name_off = start;
	p->field.name_len = (uint32_t)name_len;
	p->field.value_off = start + colon + 1;
	p->field.end_off = start + full;
	p->field.flags = 0;
	p->field_len = full;
	p->part_fields++;
	p->field_recorded = p->part_fields <= p->lim.max_headers;
	if (!p->field_recorded)
		p->errors |= HK_MSG_ERR_HEADERS;
	p->field_kind = p->field_recorded ? field_classify(s, name_len) : FK_OTHER;
	if (p->field_kind != FK_OTHER) {
		buf_reset(&p->fval);
		buf_add(&p->fval, s + colon + 1, avail - colon - 1);
	}
	scan_8bit(p, s, avail);
	return false;
}

/* A complete line: [start, start + full) plus eol bytes of line end, of
 * which the first `avail` bytes are in s. */
static void
line_done(struct mime_parser *p, const char *s, size_t avail, size_t full, size_t eol, size_t start)
{
	bool first = p->first_line;
	p->first_line = false;
	if (avail > full)
		avail = full;
	/* A line that ends a header is handled again in the new state; that
	 * happens at most three times (header -> nested message header ->
	 * body), the guard only makes the bound obvious. */
	for (unsigned guard = 0; guard < 8; guard++) {
		size_t cap = line_cap(p);
		if (avail > cap)
			avail = cap;
		if (p->nb > 0 && full >= 2 && full <= MIME_LINE_PREFIX && avail == full && s[0] == '-' && s[1] == '-') {
			bool hit = false;
			for (size_t k = p->nb; k-- > 0;) {
				int r = boundary_match(p->bstack[k]->boundary, s, full);
				if (r) {
					on_boundary(p, k, r == 2, full, eol, start);
					hit = true;
					break;
				}
			}
			if (hit)
				break;
		}
		if (p->st != MP_HEADER || !header_line(p, s, avail, full, eol, start, first))
			break;
		first = false;
	}
	p->prev_eol = eol;
}

void
mime_parser_push(struct mime_parser *p, const char *data, size_t len)
{
	if (p->tree || len == 0)
		return;
	if (memchr(data, '\0', len))
		p->errors |= HK_MSG_ERR_NUL;
	const char *s = data, *end = data + len;
	while (s < end) {
		if (!p->in_line && p->st != MP_HEADER && p->nb == 0) {
			/* no boundary can end this body: only EOF does */
			p->off += (size_t)(end - s);
			return;
		}
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t seg = nl ? (size_t)(nl + 1 - s) : (size_t)(end - s);
		if (!p->in_line && nl) {
			size_t eol = (seg >= 2 && s[seg - 2] == '\r') ? 2 : 1;
			size_t start = p->off;
			p->off += seg;
			if (p->st != MP_HEADER && (seg - eol < 2 || s[0] != '-' || s[1] != '-')) {
				/* a body line that cannot be a boundary: line_done
				 * would only note its line end */
				p->prev_eol = eol;
				s += seg;
				continue;
			}
			line_done(p, s, seg - eol, seg - eol, eol, start);
		} else {
			if (!p->in_line) {
				p->in_line = true;
				p->line_start = p->off;
				p->line_len = 0;
				buf_reset(&p->line);
			}
			size_t cap = line_cap(p) + 2;
			if (p->line.len < cap)
				buf_add(&p->line, s, seg < cap - p->line.len ? seg : cap - p->line.len);
			if (nl) {
				char before = seg >= 2 ? s[seg - 2] : p->line_last;
				size_t eol = before == '\r' ? 2 : 1;
				size_t full = p->line_len + seg - eol;
				p->off += seg;
				p->in_line = false;
				line_done(p, p->line.data, p->line.len < full ? p->line.len : full, full, eol, p->line_start);
			} else {
				p->line_len += seg;
				p->line_last = s[seg - 1];
				p->off += seg;
			}
		}
		s += seg;
	}
}

const struct mime_tree *
mime_parser_finish(struct mime_parser *p)
{
	if (p->tree)
		return p->tree;
	if (p->in_line) {
		p->in_line = false;
		size_t avail = p->line.len < p->line_len ? p->line.len : p->line_len;
		line_done(p, p->line.data ? p->line.data : "", avail, p->line_len, 0, p->line_start);
	}
	if (p->st == MP_HEADER) {
		field_finish(p);
		header_end(p, p->off, p->off, HE_EOF);
	}
	for (struct mime_part *q = p->cur; q; q = q->parent)
		q->body_end = p->off > q->body_start ? p->off : q->body_start;
	if (p->nb > 0)
		p->errors |= HK_MSG_ERR_BOUNDARY; /* missing close delimiter */
	p->nb = 0;

	struct mime_tree *t = arena_calloc(p->arena, 1, sizeof(*t));
	t->root = p->parts[0];
	t->nparts = p->nparts;
	t->parts = p->parts;
	t->nheaders = p->nhdrs;
	t->headers = p->hdrs ? p->hdrs : arena_alloc(p->arena, sizeof(*t->headers));
	t->size = p->off;
	t->errors = p->errors;
	p->tree = t;
	return t;
}

const char *
mime_cte_name(enum mime_cte cte)
{
	switch (cte) {
	case MIME_CTE_7BIT:
		return "7bit";
	case MIME_CTE_8BIT:
		return "8bit";
	case MIME_CTE_BINARY:
		return "binary";
	case MIME_CTE_QP:
		return "quoted-printable";
	case MIME_CTE_BASE64:
		return "base64";
	case MIME_CTE_UUENCODE:
		return "uuencode";
	case MIME_CTE_OTHER:
		break;
	}
	return "other";
}

const char *
mime_disp_name(enum mime_disp d)
{
	switch (d) {
	case MIME_DISP_NONE:
		return "none";
	case MIME_DISP_INLINE:
		return "inline";
	case MIME_DISP_ATTACHMENT:
		return "attachment";
	case MIME_DISP_OTHER:
		break;
	}
	return "other";
}

void
mime_tree_dump(const struct mime_tree *t, struct hk_buf *out)
{
	buf_printf(out, "size %zu errors 0x%x parts %zu headers %zu\n", t->size, t->errors, t->nparts, t->nheaders);
	for (size_t i = 0; i < t->nparts; i++) {
		const struct mime_part *q = t->parts[i];
		buf_printf(out, "%*spart %u depth %u hdr [%zu,%zu) body [%zu,%zu) %.*s/%.*s cte=%s disp=%s flags=0x%x children=%u",
			   (int)(q->depth * 2), "", q->index, q->depth, q->hdr_start, q->hdr_end, q->body_start, q->body_end,
			   (int)q->type.len, q->type.ptr, (int)q->subtype.len, q->subtype.ptr, mime_cte_name(q->cte),
			   mime_disp_name(q->disp), q->flags, q->nchildren);
		if (q->boundary.len)
			buf_printf(out, " boundary=\"%.*s\"", (int)q->boundary.len, q->boundary.ptr);
		buf_addc(out, '\n');
		for (size_t h = q->hdr_first; h < q->hdr_first + q->hdr_count; h++) {
			const struct mime_header *f = &t->headers[h];
			buf_printf(out, "%*s  field name [%zu+%u) value [%zu,%zu) flags=0x%x\n", (int)(q->depth * 2), "",
				   f->name_off, f->name_len, f->value_off, f->end_off, f->flags);
		}
	}
}

/*
 * message.c - the message model: hk_message_* (see message.h) on top of
 * mime_parser (structure), rfc2047 (header text), address (address lists),
 * mime_param (filenames, charsets), mime_decode and charset (bodies).
 *
 * Pipeline: hk_message_new parses the structure in one pass (headers are
 * recorded as offsets, bodies are not touched); every getter decodes only
 * what it is asked for and caches the answer, so a rule that reads twenty
 * headers pays for twenty headers. Header lookup goes through a small
 * open-addressing hash of the top-level field names, built on first use.
 *
 * Ownership: the message borrows `raw`. Everything a getter returns is in
 * the message's arena (or, for the body text, a heap buffer the message
 * owns) and dies with hk_message_free.
 *
 * Limits: see struct hk_message_limits. Header values are cut at
 * max_header_line before decoding; the body text at body_text_max (on a
 * UTF-8 character boundary). Part walks use an explicit stack, never
 * recursion, so a caller's max_depth cannot exhaust the C stack.
 *
 * SECURITY: the message is hostile. Decoding cost is linear in the bytes
 * decoded and each result is computed once; the output of every decoder is
 * at most a small multiple of its input.
 */
#include "message.h"

#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "arena.h"
#include "charset.h"
#include "mime_decode.h"
#include "mime_param.h"
#include "mime_parser.h"
#include "rfc2047.h"

#define NO_HDR UINT32_MAX
#define DUMP_VALUE_MAX 300 /* bytes of a header value shown by hk_message_dump */
#define DUMP_BODY_MAX 2000 /* bytes of body text shown by hk_message_dump */

struct name_ent {
	uint32_t first, last, count; /* chain through hk_message.next */
	uint32_t hash;
	const struct hk_str *vals;
	const struct hk_address *addrs;
	size_t naddrs;
	bool vals_done, addrs_done;
};

struct hk_message {
	struct arena arena;
	const char *raw;
	size_t len;
	struct hk_message_limits lim;
	const struct mime_tree *tree;
	unsigned errors;

	const struct mime_header *h; /* top-level fields */
	size_t nh;
	struct hk_str *hraw;  /* unfolded values, .ptr NULL until computed */
	struct hk_str *hdec;  /* decoded values, .ptr NULL until computed */
	struct hk_header *headers;

	struct name_ent *tab; /* NULL until the first lookup */
	uint32_t tabmask;
	uint32_t *next;

	struct hk_buf body;   /* decoded body text */
	bool body_done;
	struct hk_str body_lower;
	bool lower_done;

	struct hk_attachment *atts;
	size_t natts;
	bool atts_done;

	int priority; /* -1 until computed */
	struct hk_buf scratch;
};

void
hk_message_limits_default(struct hk_message_limits *l)
{
	l->max_depth = HK_MSG_DEFAULT_MAX_DEPTH;
	l->max_parts = HK_MSG_DEFAULT_MAX_PARTS;
	l->max_headers = HK_MSG_DEFAULT_MAX_HEADERS;
	l->max_header_line = HK_MSG_DEFAULT_MAX_HEADER_LINE;
	l->body_text_max = HK_MSG_DEFAULT_BODY_TEXT_MAX;
}

struct hk_message *
hk_message_new(const char *raw, size_t len, const struct hk_message_limits *limits)
{
	struct hk_message *m = xcalloc(1, sizeof(*m));
	struct hk_message_limits d;

	hk_message_limits_default(&d);
	m->lim = limits ? *limits : d;
	if (m->lim.max_depth == 0)
		m->lim.max_depth = d.max_depth;
	if (m->lim.max_parts == 0)
		m->lim.max_parts = d.max_parts;
	if (m->lim.max_headers == 0)
		m->lim.max_headers = d.max_headers;
	if (m->lim.max_header_line == 0)
		m->lim.max_header_line = d.max_header_line;
	if (m->lim.max_header_line < MIME_HEADER_LINE_MIN)
		m->lim.max_header_line = MIME_HEADER_LINE_MIN;
	if (m->lim.body_text_max == 0)
		m->lim.body_text_max = d.body_text_max;
	arena_init(&m->arena, 0);
	m->raw = raw ? raw : "";
	m->len = raw ? len : 0;
	m->priority = -1;
	buf_init(&m->body);
	buf_init(&m->scratch);

	struct mime_parser *p = mime_parser_new(&m->lim, &m->arena);
	mime_parser_push(p, m->raw, m->len);
	m->tree = mime_parser_finish(p);
	mime_parser_free(&p);
	m->errors = m->tree->errors;
	m->h = m->tree->headers + m->tree->root->hdr_first;
	m->nh = m->tree->root->hdr_count;
	return m;
}

void
hk_message_free(struct hk_message **mp)
{
	struct hk_message *m = *mp;
	if (m == NULL)
		return;
	arena_fini(&m->arena);
	buf_fini(&m->body);
	buf_fini(&m->scratch);
	free(m);
	*mp = NULL;
}

size_t
hk_message_size(const struct hk_message *m)
{
	return m->len;
}

unsigned
hk_message_errors(const struct hk_message *m)
{
	return m->errors;
}

const struct mime_tree *
hk_message_tree(const struct hk_message *m)
{
	return m->tree;
}

/* --- header values -------------------------------------------------------- */

static struct hk_str
trim_blanks(const char *s, size_t n)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		n--;
	return (struct hk_str){ s, n };
}

/* The unfolded value of a field of any part, cut at max_header_line. */
static struct hk_str
field_value(struct hk_message *m, const struct mime_header *f)
{
	const char *v = m->raw + f->value_off;
	size_t n = f->end_off - f->value_off;
	if (n > m->lim.max_header_line)
		n = m->lim.max_header_line;
	if (!(f->flags & MIME_HDR_FOLDED))
		return trim_blanks(v, n);
	char *d = arena_alloc(&m->arena, n + 1);
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		if (v[i] == '\n' || (v[i] == '\r' && i + 1 < n && v[i + 1] == '\n'))
			continue;
		d[k++] = v[i];
	}
	d[k] = '\0';
	return trim_blanks(d, k);
}

static struct hk_str
header_raw(struct hk_message *m, size_t i)
{
	if (m->hraw == NULL)
		m->hraw = arena_calloc(&m->arena, m->nh ? m->nh : 1, sizeof(*m->hraw));
	if (m->hraw[i].ptr == NULL)
		m->hraw[i] = field_value(m, &m->h[i]);
	return m->hraw[i];
}

static bool
needs_decoding(struct hk_str s)
{
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.ptr[i];
		if (c >= 0x80 || c == 0x1B || (c == '=' && i + 1 < s.len && s.ptr[i + 1] == '?'))
			return true;
	}
	return false;
}

static struct hk_str
header_decoded(struct hk_message *m, size_t i)
{
	if (m->hdec == NULL)
		m->hdec = arena_calloc(&m->arena, m->nh ? m->nh : 1, sizeof(*m->hdec));
	if (m->hdec[i].ptr == NULL) {
		struct hk_str r = header_raw(m, i);
		if (!needs_decoding(r)) {
			m->hdec[i] = r;
		} else {
			buf_reset(&m->scratch);
			m->errors |= rfc2047_decode(r.ptr, r.len, &m->scratch);
			m->hdec[i] = arena_str(&m->arena, m->scratch.data, m->scratch.len);
		}
	}
	return m->hdec[i];
}

static struct hk_str
header_name_of(const struct hk_message *m, size_t i)
{
	return (struct hk_str){ m->raw + m->h[i].name_off, m->h[i].name_len };
}

size_t
hk_message_headers(struct hk_message *m, const struct hk_header **h_r)
{
	if (m->headers == NULL && m->nh > 0) {
		struct hk_header *v = arena_alloc(&m->arena, m->nh * sizeof(*v));
		for (size_t i = 0; i < m->nh; i++) {
			v[i].name = header_name_of(m, i);
			v[i].raw = header_raw(m, i);
		}
		m->headers = v;
	}
	*h_r = m->headers;
	return m->nh;
}

/* ASCII case folding without branches: header names are compared a lot. */
static inline unsigned
fold(unsigned char c)
{
	return c + (((unsigned)c - 'A' < 26u) << 5);
}

static uint32_t
name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= fold((unsigned char)s[i]);
		h *= 16777619u;
	}
	return h;
}

static bool
name_eq(struct hk_str a, const char *b, size_t n)
{
	if (a.len != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (fold((unsigned char)a.ptr[i]) != fold((unsigned char)b[i]))
			return false;
	return true;
}

static struct name_ent *
index_slot(struct hk_message *m, const char *name, size_t len, uint32_t h)
{
	for (uint32_t i = h & m->tabmask;; i = (i + 1) & m->tabmask) {
		struct name_ent *e = &m->tab[i];
		if (e->count == 0)
			return e;
		if (e->hash == h && name_eq(header_name_of(m, e->first), name, len))
			return e;
	}
}

static void
index_build(struct hk_message *m)
{
	size_t cap = 16;
	while (cap < m->nh * 2)
		cap *= 2;
	m->tab = arena_calloc(&m->arena, cap, sizeof(*m->tab));
	m->tabmask = (uint32_t)(cap - 1);
	m->next = arena_alloc(&m->arena, (m->nh ? m->nh : 1) * sizeof(*m->next));
	for (size_t i = 0; i < m->nh; i++) {
		struct hk_str n = header_name_of(m, i);
		uint32_t h = name_hash(n.ptr, n.len);
		struct name_ent *e = index_slot(m, n.ptr, n.len, h);
		m->next[i] = NO_HDR;
		if (e->count == 0) {
			e->hash = h;
			e->first = e->last = (uint32_t)i;
		} else {
			m->next[e->last] = (uint32_t)i;
			e->last = (uint32_t)i;
		}
		e->count++;
	}
}

static struct name_ent *
index_find(struct hk_message *m, const char *name, size_t len)
{
	if (m->tab == NULL)
		index_build(m);
	struct name_ent *e = index_slot(m, name, len, name_hash(name, len));
	return e->count ? e : NULL;
}

size_t
hk_message_header(struct hk_message *m, const char *name, size_t namelen, const struct hk_str **vals_r)
{
	struct name_ent *e = index_find(m, name, namelen);
	if (e == NULL) {
		*vals_r = NULL;
		return 0;
	}
	if (!e->vals_done) {
		struct hk_str *v = arena_alloc(&m->arena, e->count * sizeof(*v));
		size_t k = 0;
		for (uint32_t i = e->first; i != NO_HDR; i = m->next[i])
			v[k++] = header_decoded(m, i);
		e->vals = v;
		e->vals_done = true;
	}
	*vals_r = e->vals;
	return e->count;
}

size_t
hk_message_addresses(struct hk_message *m, const char *name, size_t namelen, const struct hk_address **addrs_r)
{
	struct name_ent *e = index_find(m, name, namelen);
	if (e == NULL) {
		*addrs_r = NULL;
		return 0;
	}
	if (!e->addrs_done) {
		struct address_list l = { 0 };
		for (uint32_t i = e->first; i != NO_HDR; i = m->next[i]) {
			struct hk_str r = header_raw(m, i);
			m->errors |= address_parse(r.ptr, r.len, &m->arena, &l);
		}
		if (l.n) {
			struct hk_address *v = arena_alloc(&m->arena, l.n * sizeof(*v));
			memcpy(v, l.v, l.n * sizeof(*v));
			e->addrs = v;
		}
		e->naddrs = l.n;
		free(l.v);
		e->addrs_done = true;
	}
	*addrs_r = e->addrs;
	return e->naddrs;
}

/* The first decoded value of a top-level header, or an empty slice. */
static struct hk_str
header_first(struct hk_message *m, const char *name)
{
	const struct hk_str *v;
	if (hk_message_header(m, name, strlen(name), &v) == 0)
		return (struct hk_str){ "", 0 };
	return v[0];
}

/* --- parts ---------------------------------------------------------------- */

static bool
part_is(const struct mime_part *q, const char *type, const char *subtype)
{
	return str_eq(q->type, (struct hk_str){ type, strlen(type) }) &&
	       (subtype == NULL || str_eq(q->subtype, (struct hk_str){ subtype, strlen(subtype) }));
}

/* Appends the body of q with its transfer encoding undone. */
static void
part_decode(struct hk_message *m, const struct mime_part *q, struct hk_buf *out)
{
	const char *b = m->raw + q->body_start;
	size_t n = q->body_end - q->body_start;
	bool ok = true;
	if (q->cte == MIME_CTE_BASE64)
		ok = mime_base64_decode(b, n, out);
	else if (q->cte == MIME_CTE_QP)
		ok = mime_qp_decode(b, n, out);
	else
		buf_add(out, b, n);
	if (!ok)
		m->errors |= HK_MSG_ERR_ENCODING;
}

static size_t
part_decoded_size(const struct hk_message *m, const struct mime_part *q)
{
	const char *b = m->raw + q->body_start;
	size_t n = q->body_end - q->body_start;
	if (q->cte == MIME_CTE_BASE64)
		return mime_base64_decoded_len(b, n);
	if (q->cte == MIME_CTE_QP)
		return mime_qp_decoded_len(b, n);
	return n;
}

/* The filename of q (Content-Disposition filename, else Content-Type name),
 * decoded, in the arena; empty when none. */
static struct hk_str
part_filename(struct hk_message *m, const struct mime_part *q)
{
	struct hk_buf b;
	buf_init(&b);
	bool found = q->cdisp.len && mime_param_get(q->cdisp.ptr, q->cdisp.len, "filename", &b, &m->errors);
	if (!found || b.len == 0) {
		buf_reset(&b);
		if (q->ctype.len)
			mime_param_get(q->ctype.ptr, q->ctype.len, "name", &b, &m->errors);
	}
	struct hk_str r = b.len ? arena_str(&m->arena, b.data, b.len) : (struct hk_str){ "", 0 };
	buf_fini(&b);
	return r;
}

static struct hk_str
part_charset(struct hk_message *m, const struct mime_part *q)
{
	struct hk_str r = { "", 0 };
	bool escaped;
	if (q->ctype.len == 0 || !mime_param_slice(q->ctype.ptr, q->ctype.len, "charset", &r, &escaped))
		return (struct hk_str){ "", 0 };
	if (escaped) {
		struct hk_buf b;
		buf_init(&b);
		mime_param_raw(q->ctype.ptr, q->ctype.len, "charset", &b);
		r = arena_str(&m->arena, b.data, b.len);
		buf_fini(&b);
	}
	return r;
}

static bool
part_is_attachment(struct hk_message *m, const struct mime_part *q, struct hk_str *name_r)
{
	*name_r = part_filename(m, q);
	if (q->disp == MIME_DISP_ATTACHMENT || q->disp == MIME_DISP_OTHER || name_r->len > 0)
		return true;
	if (q->flags & MIME_PART_CONTAINER)
		return false;
	return !part_is(q, "text", NULL) && !part_is(q, "multipart", NULL) && !part_is(q, "message", NULL);
}

/* A pre-order walk with an explicit stack. */
struct walk {
	const struct mime_part **v;
	size_t n, cap;
};

static void
walk_push_children(struct walk *w, const struct mime_part *q)
{
	/* reversed, so that the first child is popped first */
	size_t base = w->n;
	for (const struct mime_part *c = q->child; c; c = c->next) {
		w->v = xgrow(w->v, &w->cap, w->n + 1, sizeof(*w->v));
		w->v[w->n++] = c;
	}
	for (size_t i = base, j = w->n; i + 1 < j; i++, j--) {
		const struct mime_part *t = w->v[i];
		w->v[i] = w->v[j - 1];
		w->v[j - 1] = t;
	}
}

static void
walk_push(struct walk *w, const struct mime_part *q)
{
	w->v = xgrow(w->v, &w->cap, w->n + 1, sizeof(*w->v));
	w->v[w->n++] = q;
}

/* --- attachments ---------------------------------------------------------- */

size_t
hk_message_attachments(struct hk_message *m, const struct hk_attachment **att_r)
{
	if (!m->atts_done) {
		struct walk w = { 0 };
		struct hk_attachment *v = NULL;
		size_t n = 0, cap = 0;
		walk_push(&w, m->tree->root);
		while (w.n > 0) {
			const struct mime_part *q = w.v[--w.n];
			struct hk_str name;
			bool multipart = part_is(q, "multipart", NULL) && (q->flags & MIME_PART_CONTAINER);
			if (!multipart && part_is_attachment(m, q, &name)) {
				v = xgrow(v, &cap, n + 1, sizeof(*v));
				size_t tl = q->type.len + 1 + q->subtype.len;
				char *t = arena_alloc(&m->arena, tl + 1);
				memcpy(t, q->type.ptr, q->type.len);
				t[q->type.len] = '/';
				memcpy(t + q->type.len + 1, q->subtype.ptr, q->subtype.len);
				t[tl] = '\0';
				v[n].name = name;
				v[n].type = (struct hk_str){ t, tl };
				v[n].size = part_decoded_size(m, q);
				n++;
				continue; /* an attached message is one attachment */
			}
			walk_push_children(&w, q);
		}
		if (n) {
			m->atts = arena_alloc(&m->arena, n * sizeof(*m->atts));
			memcpy(m->atts, v, n * sizeof(*v));
		}
		m->natts = n;
		free(v);
		free(w.v);
		m->atts_done = true;
	}
	*att_r = m->atts;
	return m->natts;
}

/* --- body text -------------------------------------------------------------- */

static void
utf8_put(struct hk_buf *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		cp = 0xFFFD;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xE0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		b[0] = (char)(0xF0 | (cp >> 18));
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[3] = (char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	buf_add(out, b, n);
}

static bool
ieq_prefix(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && str_ieq((struct hk_str){ s, l }, (struct hk_str){ lit, l });
}

/* Skips to just after "</name ... >" (case-insensitive), or to the end. */
static size_t
html_skip_element(const char *s, size_t n, size_t i, const char *close)
{
	while (i < n) {
		const char *lt = memchr(s + i, '<', n - i);
		if (lt == NULL)
			return n;
		i = (size_t)(lt - s);
		if (ieq_prefix(s + i, n - i, close)) {
			const char *gt = memchr(s + i, '>', n - i);
			return gt ? (size_t)(gt - s) + 1 : n;
		}
		i++;
	}
	return n;
}

static const struct {
	const char *name;
	const char *text;
} html_entities[] = {
	{ "amp", "&" }, { "lt", "<" }, { "gt", ">" }, { "quot", "\"" }, { "apos", "'" }, { "nbsp", " " },
};

/* HTML to text: tags dropped (block tags become a line end), script and
 * style skipped, comments skipped, the common entities and numeric
 * references decoded. */
static void
html_to_text(const char *s, size_t n, struct hk_buf *out)
{
	size_t i = 0;
	while (i < n) {
		char c = s[i];
		if (c == '<') {
			if (ieq_prefix(s + i, n - i, "<!--")) {
				size_t j = i + 4;
				while (j + 2 < n && !(s[j] == '-' && s[j + 1] == '-' && s[j + 2] == '>'))
					j++;
				i = j + 2 < n ? j + 3 : n;
				continue;
			}
			size_t j = i + 1;
			bool closing = j < n && s[j] == '/';
			if (closing)
				j++;
			size_t ns = j;
			while (j < n && ((s[j] >= 'a' && s[j] <= 'z') || (s[j] >= 'A' && s[j] <= 'Z') || (s[j] >= '0' && s[j] <= '9')))
				j++;
			struct hk_str tag = { s + ns, j - ns };
			if (tag.len == 0 && !(j < n && (s[j] == '!' || s[j] == '?'))) {
				buf_addc(out, c); /* a lone '<' in text */
				i++;
				continue;
			}
			char q = 0;
			while (j < n && (q || s[j] != '>')) {
				if (q && s[j] == q)
					q = 0;
				else if (!q && (s[j] == '"' || s[j] == '\''))
					q = s[j];
				j++;
			}
			i = j < n ? j + 1 : n;
			if (!closing && str_ieq_cstr(tag, "script")) {
				i = html_skip_element(s, n, i, "</script");
			} else if (!closing && str_ieq_cstr(tag, "style")) {
				i = html_skip_element(s, n, i, "</style");
			} else if (str_ieq_cstr(tag, "br") || str_ieq_cstr(tag, "p") || str_ieq_cstr(tag, "div") ||
				   str_ieq_cstr(tag, "tr") || str_ieq_cstr(tag, "li") || str_ieq_cstr(tag, "table") ||
				   str_ieq_cstr(tag, "blockquote") || str_ieq_cstr(tag, "hr") || str_ieq_cstr(tag, "title") ||
				   (tag.len == 2 && ascii_lower(tag.ptr[0]) == 'h' && tag.ptr[1] >= '1' && tag.ptr[1] <= '6')) {
				if (out->len && out->data[out->len - 1] != '\n')
					buf_addc(out, '\n');
			}
			continue;
		}
		if (c == '&') {
			size_t j = i + 1;
			while (j < n && j - i <= 10 && s[j] != ';' && s[j] != '&' && s[j] != '<' && s[j] != ' ')
				j++;
			if (j < n && s[j] == ';' && j > i + 1) {
				struct hk_str e = { s + i + 1, j - i - 1 };
				bool done = false;
				if (e.ptr[0] == '#' && e.len > 1) {
					uint32_t cp = 0;
					bool hex = e.ptr[1] == 'x' || e.ptr[1] == 'X';
					size_t k = hex ? 2 : 1;
					bool digits = k < e.len;
					for (; k < e.len && digits; k++) {
						int d = -1;
						char h = e.ptr[k];
						if (h >= '0' && h <= '9')
							d = h - '0';
						else if (hex && h >= 'a' && h <= 'f')
							d = h - 'a' + 10;
						else if (hex && h >= 'A' && h <= 'F')
							d = h - 'A' + 10;
						if (d < 0)
							digits = false;
						else if (cp <= 0x10FFFF)
							cp = cp * (hex ? 16 : 10) + (uint32_t)d;
					}
					if (digits) {
						utf8_put(out, cp);
						done = true;
					}
				} else {
					for (size_t k = 0; k < HK_ARRAY_LEN(html_entities); k++)
						if (str_ieq_cstr(e, html_entities[k].name)) {
							buf_adds(out, html_entities[k].text);
							done = true;
							break;
						}
				}
				if (done) {
					i = j + 1;
					continue;
				}
			}
		}
		buf_addc(out, c);
		i++;
	}
}

/* Appends s without the CR of CRLF line ends. Copies the runs between
 * CRs with memchr/memcpy: the body text is built from every text part, so
 * this is on the path of each `body` test (bench/: ~11 instructions a byte
 * before, under 1 after). */
static void
add_lf(struct hk_buf *out, const char *s, size_t n)
{
	buf_reserve(out, n);
	char *d = out->data + out->len;
	const char *end = s + n;
	while (s < end) {
		const char *cr = memchr(s, '\r', (size_t)(end - s));
		size_t k = cr ? (size_t)(cr - s) : (size_t)(end - s);
		memcpy(d, s, k);
		d += k;
		if (cr == NULL)
			break;
		if (!(cr + 1 < end && cr[1] == '\n'))
			*d++ = '\r'; /* a lone CR stays */
		s = cr + 1;
	}
	out->len = (size_t)(d - out->data);
	out->data[out->len] = '\0';
}

/* True when charset_to_utf8 would return these bytes unchanged and report
 * no error: a UTF-8, US-ASCII or missing label on 7-bit text without ESC
 * (ESC could start ISO-2022-JP, which unlabelled text is checked for).
 * Most text parts are like this; skipping the conversion saves a copy and a
 * validation pass per byte. */
static bool
ascii_as_is(struct hk_str cs, const char *s, size_t n)
{
	if (cs.len && !str_ieq_cstr(cs, "utf-8") && !str_ieq_cstr(cs, "us-ascii") && !str_ieq_cstr(cs, "utf8"))
		return false;
	size_t i = 0;
	uint64_t acc = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		acc |= w;
	}
	for (; i < n; i++)
		acc |= (unsigned char)s[i];
	return !(acc & 0x8080808080808080ull) && memchr(s, 0x1B, n) == NULL;
}

static bool
is_body_text(const struct mime_part *q)
{
	if (q->disp == MIME_DISP_ATTACHMENT || q->disp == MIME_DISP_OTHER)
		return false;
	if (part_is(q, "text", "plain") || part_is(q, "text", "html"))
		return true;
	/* an unexpanded multipart (no boundary, depth limit): read it as text
	 * rather than let it hide content from the rules */
	return part_is(q, "multipart", NULL) && !(q->flags & MIME_PART_CONTAINER);
}

/* True when q is or contains a plain-text body part. */
static bool
has_plain(const struct mime_part *q)
{
	const struct mime_part *top = q;
	while (q) {
		if (part_is(q, "text", "plain") && q->disp != MIME_DISP_ATTACHMENT && q->disp != MIME_DISP_OTHER)
			return true;
		if (q->child) {
			q = q->child;
			continue;
		}
		while (q != top && q->next == NULL)
			q = q->parent;
		if (q == top)
			break;
		q = q->next;
	}
	return false;
}

static void
part_text(struct hk_message *m, const struct mime_part *q, struct hk_buf *out)
{
	struct hk_buf dec, utf;
	buf_init(&dec);
	buf_init(&utf);
	const char *text = m->raw + q->body_start;
	size_t tlen = q->body_end - q->body_start;
	if (q->cte == MIME_CTE_BASE64 || q->cte == MIME_CTE_QP) {
		part_decode(m, q, &dec);
		text = dec.data ? dec.data : "";
		tlen = dec.len;
	} /* else nothing to undo: read the part in place, no copy */
	struct hk_str cs = part_charset(m, q);
	if (!ascii_as_is(cs, text, tlen)) {
		if (!charset_to_utf8(cs.ptr, cs.len, text, tlen, &utf))
			m->errors |= HK_MSG_ERR_CHARSET;
		text = utf.data ? utf.data : "";
		tlen = utf.len;
	}
	if (out->len && out->data[out->len - 1] != '\n')
		buf_addc(out, '\n');
	if (part_is(q, "text", "html")) {
		struct hk_buf *h = text == dec.data ? &utf : &dec; /* not the one text is in */
		buf_reset(h);
		html_to_text(text, tlen, h);
		add_lf(out, h->data ? h->data : "", h->len);
	} else {
		add_lf(out, text, tlen);
	}
	buf_fini(&dec);
	buf_fini(&utf);
}

static void
body_build(struct hk_message *m)
{
	struct walk w = { 0 };
	struct hk_buf *out = &m->body;
	walk_push(&w, m->tree->root);
	while (w.n > 0 && out->len < m->lim.body_text_max) {
		const struct mime_part *q = w.v[--w.n];
		if (q->flags & MIME_PART_CONTAINER) {
			if (part_is(q, "message", NULL)) {
				if (q->disp != MIME_DISP_ATTACHMENT && q->disp != MIME_DISP_OTHER)
					walk_push_children(&w, q);
			} else if (part_is(q, "multipart", "alternative")) {
				const struct mime_part *pick = NULL;
				for (const struct mime_part *c = q->child; c && !pick; c = c->next)
					if (has_plain(c))
						pick = c;
				if (pick)
					walk_push(&w, pick);
				else
					walk_push_children(&w, q);
			} else {
				walk_push_children(&w, q);
			}
			continue;
		}
		if (is_body_text(q))
			part_text(m, q, out);
	}
	free(w.v);
	if (out->len > m->lim.body_text_max) {
		size_t n = m->lim.body_text_max;
		while (n > 0 && ((unsigned char)out->data[n] & 0xC0) == 0x80)
			n--;
		out->len = n;
		out->data[n] = '\0';
	}
	if (out->data == NULL)
		buf_reserve(out, 0);
}

struct hk_str
hk_message_body_text(struct hk_message *m)
{
	if (!m->body_done) {
		body_build(m);
		m->body_done = true;
	}
	return (struct hk_str){ m->body.data, m->body.len };
}

struct hk_str
hk_message_body_text_lower(struct hk_message *m)
{
	if (!m->lower_done) {
		struct hk_str b = hk_message_body_text(m);
		char *l = arena_alloc(&m->arena, b.len + 1);
		size_t i = 0;
		/* 8 bytes at a time, the same result as ascii_lower() on each: a
		 * byte below 0x80 in 'A'..'Z' gets 0x20 added */
		for (; i + 8 <= b.len; i += 8) {
			uint64_t x, h, up;
			memcpy(&x, b.ptr + i, 8);
			h = x & 0x7F7F7F7F7F7F7F7Full;
			up = ((h + 0x3F3F3F3F3F3F3F3Full) ^ (h + 0x2525252525252525ull)) & ~x & 0x8080808080808080ull;
			x |= up >> 2;
			memcpy(l + i, &x, 8);
		}
		for (; i < b.len; i++)
			l[i] = ascii_lower(b.ptr[i]);
		l[b.len] = '\0';
		m->body_lower = (struct hk_str){ l, b.len };
		m->lower_done = true;
	}
	return m->body_lower;
}

struct hk_str
hk_message_body_raw(struct hk_message *m)
{
	size_t s = m->tree->root->body_start;
	if (s > m->len)
		s = m->len;
	return (struct hk_str){ m->raw + s, m->len - s };
}

/* --- priority ------------------------------------------------------------------ */

static int
priority_of(struct hk_message *m)
{
	struct hk_str v = header_first(m, "X-Priority");
	for (size_t i = 0; i < v.len; i++) {
		char c = v.ptr[i];
		if (c == ' ' || c == '\t' || c == '(')
			continue;
		if (c == '1' || c == '2')
			return HK_PRIORITY_HIGH;
		if (c == '3')
			return HK_PRIORITY_NORMAL;
		if (c == '4' || c == '5')
			return HK_PRIORITY_LOW;
		break;
	}
	v = mime_param_token(header_first(m, "Importance").ptr, header_first(m, "Importance").len);
	if (str_ieq_cstr(v, "high"))
		return HK_PRIORITY_HIGH;
	if (str_ieq_cstr(v, "normal"))
		return HK_PRIORITY_NORMAL;
	if (str_ieq_cstr(v, "low"))
		return HK_PRIORITY_LOW;
	v = mime_param_token(header_first(m, "Priority").ptr, header_first(m, "Priority").len);
	if (str_ieq_cstr(v, "urgent"))
		return HK_PRIORITY_HIGH;
	if (str_ieq_cstr(v, "normal"))
		return HK_PRIORITY_NORMAL;
	if (str_ieq_cstr(v, "non-urgent"))
		return HK_PRIORITY_LOW;
	v = mime_param_token(header_first(m, "X-MSMail-Priority").ptr, header_first(m, "X-MSMail-Priority").len);
	if (str_ieq_cstr(v, "high"))
		return HK_PRIORITY_HIGH;
	if (str_ieq_cstr(v, "low"))
		return HK_PRIORITY_LOW;
	return HK_PRIORITY_NORMAL;
}

enum hk_priority
hk_message_priority(struct hk_message *m)
{
	if (m->priority < 0)
		m->priority = priority_of(m);
	return (enum hk_priority)m->priority;
}

/* --- dump ------------------------------------------------------------------------ */

/* Appends s with control bytes, '\' and invalid UTF-8 escaped, cut at max
 * bytes (on a character boundary) with a note of the full length. */
static void
dump_escaped(struct hk_buf *out, const char *s, size_t n, size_t max, bool keep_lf)
{
	size_t i = 0;
	while (i < n) {
		if (i >= max) {
			buf_printf(out, " ...[%zu bytes]", n);
			return;
		}
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' && keep_lf) {
			buf_addc(out, '\n');
			i++;
			continue;
		}
		if (c < 0x20 || c == 0x7F || c == '\\') {
			switch (c) {
			case '\t':
				buf_adds(out, "\\t");
				break;
			case '\r':
				buf_adds(out, "\\r");
				break;
			case '\n':
				buf_adds(out, "\\n");
				break;
			case '\\':
				buf_adds(out, "\\\\");
				break;
			default:
				buf_printf(out, "\\x%02x", c);
			}
			i++;
			continue;
		}
		if (c < 0x80) {
			buf_addc(out, (char)c);
			i++;
			continue;
		}
		size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		if (k > 1 && i + k <= n && utf8_valid(s + i, k)) {
			buf_add(out, s + i, k);
			i += k;
		} else {
			buf_printf(out, "\\x%02x", c);
			i++;
		}
	}
}

static void
dump_quoted(struct hk_buf *out, struct hk_str s)
{
	buf_addc(out, '"');
	dump_escaped(out, s.ptr, s.len, DUMP_VALUE_MAX, false);
	buf_addc(out, '"');
}

static const char *const err_names[] = {
	"depth", "parts", "headers", "boundary", "8bit-header", "nul", "encoding", "charset", "no-header-end",
};

static void
dump_part(struct hk_message *m, const struct mime_part *q, struct hk_buf *out)
{
	buf_printf(out, "%*s%.*s/%.*s", (int)(q->depth * 2 + 2), "", (int)q->type.len, q->type.ptr,
		   (int)q->subtype.len, q->subtype.ptr);
	struct hk_str cs = part_charset(m, q);
	if (cs.len) {
		buf_adds(out, " charset=");
		dump_quoted(out, cs);
	}
	buf_printf(out, " cte=%s", mime_cte_name(q->cte));
	if (q->disp != MIME_DISP_NONE)
		buf_printf(out, " disposition=%s", mime_disp_name(q->disp));
	struct hk_str fn = part_filename(m, q);
	if (fn.len) {
		buf_adds(out, " filename=");
		dump_quoted(out, fn);
	}
	if (q->flags & MIME_PART_CONTAINER)
		buf_printf(out, " children=%u", q->nchildren);
	else
		buf_printf(out, " size=%zu", part_decoded_size(m, q));
	if (part_is(q, "multipart", NULL) && q->boundary.len) {
		buf_adds(out, " boundary=");
		dump_quoted(out, q->boundary);
	}
	static const struct {
		unsigned flag;
		const char *name;
	} flags[] = {
		{ MIME_PART_DEPTH_LIMIT, "depth-limit" },     { MIME_PART_NO_BOUNDARY, "no-boundary" },
		{ MIME_PART_DUP_BOUNDARY, "dup-boundary" },   { MIME_PART_NO_HEADER_END, "no-header-end" },
		{ MIME_PART_PARTS_LIMIT, "parts-limit" },
	};
	for (size_t i = 0; i < HK_ARRAY_LEN(flags); i++)
		if (q->flags & flags[i].flag)
			buf_printf(out, " [%s]", flags[i].name);
	if ((q->flags & MIME_PART_CONTAINER) && part_is(q, "multipart", NULL) && !(q->flags & MIME_PART_CLOSED))
		buf_adds(out, " [unclosed]");
	buf_addc(out, '\n');
}

void
hk_message_dump(struct hk_message *m, struct hk_buf *out)
{
	buf_adds(out, "parts:\n");
	for (size_t i = 0; i < m->tree->nparts; i++)
		dump_part(m, m->tree->parts[i], out);

	buf_adds(out, "headers:\n");
	for (size_t i = 0; i < m->nh; i++) {
		struct hk_str n = header_name_of(m, i);
		buf_adds(out, "  ");
		dump_escaped(out, n.ptr, n.len, DUMP_VALUE_MAX, false);
		buf_adds(out, ": ");
		struct hk_str v = header_decoded(m, i);
		dump_escaped(out, v.ptr, v.len, DUMP_VALUE_MAX, false);
		buf_addc(out, '\n');
	}

	static const char *const addr_headers[] = { "From", "Sender", "Reply-To", "To", "Cc", "Bcc" };
	bool any = false;
	for (size_t k = 0; k < HK_ARRAY_LEN(addr_headers); k++) {
		const struct hk_address *a;
		size_t n = hk_message_addresses(m, addr_headers[k], strlen(addr_headers[k]), &a);
		for (size_t i = 0; i < n; i++) {
			if (!any)
				buf_adds(out, "addresses:\n");
			any = true;
			buf_printf(out, "  %s: ", addr_headers[k]);
			dump_quoted(out, a[i].name);
			buf_adds(out, " <");
			dump_escaped(out, a[i].addr.ptr, a[i].addr.len, DUMP_VALUE_MAX, false);
			buf_adds(out, ">");
			if (a[i].group.len) {
				buf_adds(out, " group=");
				dump_quoted(out, a[i].group);
			}
			buf_addc(out, '\n');
		}
	}

	const struct hk_attachment *att;
	size_t na = hk_message_attachments(m, &att);
	if (na)
		buf_adds(out, "attachments:\n");
	for (size_t i = 0; i < na; i++) {
		buf_adds(out, "  ");
		dump_quoted(out, att[i].name);
		buf_printf(out, " %.*s %zu\n", (int)att[i].type.len, att[i].type.ptr, att[i].size);
	}

	static const char *const prio[] = { "normal", "high", "low" };
	buf_printf(out, "priority: %s\n", prio[hk_message_priority(m)]);

	struct hk_str b = hk_message_body_text(m);
	buf_printf(out, "body: %zu bytes\n", b.len);
	if (b.len) {
		struct hk_buf t;
		buf_init(&t);
		dump_escaped(&t, b.ptr, b.len, DUMP_BODY_MAX, true);
		buf_adds(out, "  |");
		for (size_t i = 0; i < t.len; i++) {
			buf_addc(out, t.data[i]);
			if (t.data[i] == '\n' && i + 1 < t.len)
				buf_adds(out, "  |");
		}
		if (t.len && t.data[t.len - 1] != '\n')
			buf_addc(out, '\n');
		buf_fini(&t);
	}

	buf_adds(out, "errors:");
	if (m->errors == 0)
		buf_adds(out, " none");
	for (size_t i = 0; i < HK_ARRAY_LEN(err_names); i++)
		if (m->errors & (1u << i))
			buf_printf(out, " %s", err_names[i]);
	buf_addc(out, '\n');
}

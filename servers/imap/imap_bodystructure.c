/*
 * imap_bodystructure.c - FETCH BODY / BODYSTRUCTURE (see
 * imap_bodystructure.h).
 *
 * Pipeline: imap_msg_tree (runtime/mime_parser.c: part offsets, type,
 * boundary, the raw Content-Type and Content-Disposition) -> one
 * parenthesised list per part, written depth first; parameters from
 * runtime/mime_param.c; the ENVELOPE of an embedded message/rfc822 from
 * imap_envelope.c.
 *
 * Limits: the recursion follows the part tree, whose depth the parser
 * bounds (limits.max_depth); IMAP_BS_MAX_PARAMS, IMAP_BS_MAX_LANGS.
 *
 * SECURITY: every string comes from hostile headers and is written
 * through imap_write_string.
 */
#include "imap_bodystructure.h"

#include <string.h>

#include "arena.h"
#include "imap_envelope.h"
#include "imap_hdr.h"
#include "imap_write.h"
#include "mime_param.h"
#include "mime_parser.h"

/* What Dovecot writes for a multipart without parts. */
#define EMPTY_TEXT_PART "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)"
#define EMPTY_TEXT_PART_EXT "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0 NIL NIL NIL NIL)"

struct bs {
	struct imap_msg *m;
	const struct mime_tree *t;
	bool ext;
	struct hk_buf *out;
	struct hk_buf tmp;
};

/* The unfolded, trimmed value of the part's first field `name`, in the
 * message arena; false when absent. */
static bool
part_header(struct bs *b, const struct mime_part *p, const char *name, struct hk_str *val_r)
{
	const char *raw = b->m->raw;
	for (size_t i = p->hdr_first; i < p->hdr_first + p->hdr_count && i < b->t->nheaders; i++) {
		const struct mime_header *h = &b->t->headers[i];
		if (!str_ieq_cstr((struct hk_str){ raw + h->name_off, h->name_len }, name))
			continue;
		struct hk_str v = { raw + h->value_off, h->end_off - h->value_off };
		while (v.len && (*v.ptr == ' ' || *v.ptr == '\t' || *v.ptr == '\r' || *v.ptr == '\n'))
			v.ptr++, v.len--;
		while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t' || v.ptr[v.len - 1] == '\r' ||
				 v.ptr[v.len - 1] == '\n'))
			v.len--;
		if (memchr(v.ptr, '\n', v.len)) {
			buf_reset(&b->tmp);
			imap_hdr_unfold(v, &b->tmp);
			v = arena_str(&b->m->arena, b->tmp.data, b->tmp.len);
		}
		*val_r = v;
		return true;
	}
	return false;
}

static void
write_lower(struct bs *b, struct hk_str s)
{
	buf_reset(&b->tmp);
	for (size_t i = 0; i < s.len; i++)
		buf_addc(&b->tmp, ascii_lower(s.ptr[i]));
	imap_write_string(b->out, b->tmp.data ? b->tmp.data : "", b->tmp.len);
}

/* A parameter list of the value v, or NIL; default_charset adds
 * ("charset" "us-ascii") when the list has no charset. */
static void
write_params(struct bs *b, struct hk_str v, bool default_charset)
{
	struct mime_param_kv kv[IMAP_BS_MAX_PARAMS];
	size_t n = v.len ? mime_param_list(v.ptr, v.len, &b->m->arena, kv, IMAP_BS_MAX_PARAMS) : 0;
	bool charset = false;
	for (size_t i = 0; i < n; i++)
		charset |= str_ieq_cstr(kv[i].name, "charset");
	if (n == 0 && !(default_charset && !charset)) {
		buf_add(b->out, "NIL", 3);
		return;
	}
	buf_addc(b->out, '(');
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_addc(b->out, ' ');
		imap_write_string(b->out, kv[i].name.ptr, kv[i].name.len);
		buf_addc(b->out, ' ');
		imap_write_string(b->out, kv[i].value.ptr, kv[i].value.len);
	}
	if (default_charset && !charset)
		buf_adds(b->out, n ? " \"charset\" \"us-ascii\"" : "\"charset\" \"us-ascii\"");
	buf_addc(b->out, ')');
}

static void
write_nfield(struct bs *b, const struct mime_part *p, const char *name)
{
	struct hk_str v;
	if (part_header(b, p, name, &v))
		imap_write_string(b->out, v.ptr, v.len);
	else
		buf_add(b->out, "NIL", 3);
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
write_ext_common(struct bs *b, const struct mime_part *p)
{
	buf_addc(b->out, ' ');
	struct hk_str tok = p->cdisp.len ? mime_param_token(p->cdisp.ptr, p->cdisp.len) : (struct hk_str){ "", 0 };
	if (tok.len == 0) {
		buf_add(b->out, "NIL", 3);
	} else {
		buf_addc(b->out, '(');
		write_lower(b, tok);
		buf_addc(b->out, ' ');
		write_params(b, p->cdisp, false);
		buf_addc(b->out, ')');
	}

	buf_addc(b->out, ' ');
	struct hk_str lang;
	size_t nl = 0;
	if (part_header(b, p, "content-language", &lang)) {
		/* Language-List: tokens separated by ',' and blanks */
		size_t i = 0;
		while (i < lang.len && nl < IMAP_BS_MAX_LANGS) {
			while (i < lang.len && (lang.ptr[i] == ',' || lang.ptr[i] == ' ' || lang.ptr[i] == '\t'))
				i++;
			size_t s = i;
			while (i < lang.len && lang.ptr[i] != ',' && lang.ptr[i] != ' ' && lang.ptr[i] != '\t')
				i++;
			if (i > s) {
				buf_addc(b->out, nl ? ' ' : '(');
				imap_write_string(b->out, lang.ptr + s, i - s);
				nl++;
			}
		}
	}
	buf_add(b->out, nl ? ")" : "NIL", nl ? 1 : 3);

	buf_addc(b->out, ' ');
	write_nfield(b, p, "content-location");
}

static void write_part(struct bs *b, const struct mime_part *p);

static void
write_multipart(struct bs *b, const struct mime_part *p)
{
	buf_addc(b->out, '(');
	if ((p->flags & MIME_PART_CONTAINER) && p->child) {
		for (const struct mime_part *c = p->child; c; c = c->next)
			write_part(b, c);
	} else {
		buf_adds(b->out, b->ext ? EMPTY_TEXT_PART_EXT : EMPTY_TEXT_PART);
	}
	buf_addc(b->out, ' ');
	write_lower(b, p->subtype);
	if (b->ext) {
		buf_addc(b->out, ' ');
		write_params(b, p->ctype, false);
		write_ext_common(b, p);
	}
	buf_addc(b->out, ')');
}

static void
write_part(struct bs *b, const struct mime_part *p)
{
	if (str_ieq_cstr(p->type, "multipart")) {
		write_multipart(b, p);
		return;
	}
	const char *raw = b->m->raw;
	bool text = str_ieq_cstr(p->type, "text");
	buf_addc(b->out, '(');
	write_lower(b, p->type);
	buf_addc(b->out, ' ');
	write_lower(b, p->subtype);
	buf_addc(b->out, ' ');
	write_params(b, (p->flags & MIME_PART_DEFAULT_TYPE) ? (struct hk_str){ "", 0 } : p->ctype, text);
	buf_addc(b->out, ' ');
	write_nfield(b, p, "content-id");
	buf_addc(b->out, ' ');
	write_nfield(b, p, "content-description");
	buf_addc(b->out, ' ');
	struct hk_str cte = { "", 0 };
	if (part_header(b, p, "content-transfer-encoding", &cte))
		cte = mime_param_token(cte.ptr, cte.len);
	if (cte.len == 0)
		cte = HK_STR("7bit");
	write_lower(b, cte);

	const char *body = raw + p->body_start;
	size_t blen = p->body_end > p->body_start ? p->body_end - p->body_start : 0;
	buf_printf(b->out, " %zu", imap_crlf_size(body, blen));
	const struct mime_part *inner = p->child;
	if ((p->flags & MIME_PART_CONTAINER) && inner) {
		/* message/rfc822: envelope, body, lines of the embedded message */
		buf_addc(b->out, ' ');
		size_t end = p->body_end > inner->hdr_start ? p->body_end : inner->hdr_start;
		imap_envelope_write(raw + inner->hdr_start, end - inner->hdr_start, b->out);
		buf_addc(b->out, ' ');
		write_part(b, inner);
		buf_printf(b->out, " %zu", imap_count_lines(body, blen));
	} else if (text) {
		buf_printf(b->out, " %zu", imap_count_lines(body, blen));
	}
	if (b->ext) {
		buf_add(b->out, " NIL", 4); /* body-fld-md5 */
		write_ext_common(b, p);
	}
	buf_addc(b->out, ')');
}

void
imap_bodystructure_write(struct imap_msg *m, bool extended, struct hk_buf *out)
{
	struct bs b = { .m = m, .t = imap_msg_tree(m), .ext = extended, .out = out };
	buf_init(&b.tmp);
	write_part(&b, b.t->root);
	buf_fini(&b.tmp);
}

/*
 * imap_section.c - BODY[section] resolution (see imap_section.h).
 *
 * Pipeline: the session parses FETCH, hands the section text to
 * imap_section_parse (or fills struct imap_section itself), then
 * imap_section_resolve walks the MIME tree of imap_msg_tree() and gives a
 * raw byte range, or builds HEADER.FIELDS text in the message arena.
 *
 * Part numbering walks two kinds of node: a message (the top level, or the
 * message inside a message/rfc822 part), whose parts are its multipart
 * children or, when it is not multipart, just part 1 = its body; and a
 * part, which is either a multipart (numbers index its children), a
 * message/rfc822 (numbers index the embedded message's parts) or a leaf
 * (no further numbers).
 *
 * Limits: IMAP_SECTION_MAX_DEPTH numbers, IMAP_SECTION_MAX_FIELDS names;
 * a walk is at most one pass over each container's children per number.
 *
 * SECURITY: the section text comes from the client and the message from
 * anyone: every number is range-checked, every offset comes from the tree
 * and is clamped to the message.
 */
#include "imap_section.h"

#include <stdint.h>
#include <string.h>

#include "imap_hdr.h"
#include "mime_parser.h"

static bool
is_atom_char(char c)
{
	unsigned char u = (unsigned char)c;
	return u > 0x20 && u < 0x7f && c != '(' && c != ')' && c != '{' && c != '"' && c != '\\' && c != '%' &&
	       c != '*' && c != ']';
}

static bool
ci_prefix(const char *s, size_t len, size_t i, const char *word)
{
	size_t n = strlen(word);
	return len - i >= n && str_ieq((struct hk_str){ s + i, n }, (struct hk_str){ word, n });
}

/* " (" astring *(SP astring) ")" at s[i..]; the end offset or 0 on error. */
static size_t
parse_fields(const char *s, size_t len, size_t i, struct imap_section *sec)
{
	if (len - i < 2 || s[i] != ' ' || s[i + 1] != '(')
		return 0;
	i += 2;
	sec->nfields = 0;
	for (;;) {
		if (sec->nfields >= IMAP_SECTION_MAX_FIELDS || i >= len)
			return 0;
		size_t st, en;
		if (s[i] == '"') {
			st = ++i;
			while (i < len && s[i] != '"' && s[i] != '\\' && s[i] != '\r' && s[i] != '\n')
				i++;
			if (i >= len || s[i] != '"')
				return 0;
			en = i++;
		} else {
			st = i;
			while (i < len && is_atom_char(s[i]))
				i++;
			en = i;
			if (en == st)
				return 0;
		}
		sec->fields[sec->nfields++] = (struct hk_str){ s + st, en - st };
		if (i < len && s[i] == ')')
			return i + 1;
		if (i >= len || s[i] != ' ')
			return 0;
		i++;
	}
}

int
imap_section_parse(const char *s, size_t len, struct imap_section *sec)
{
	memset(sec, 0, sizeof(*sec));
	size_t i = 0;
	/* part path: nz-number *("." nz-number), each followed by "." or the end */
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		unsigned n = 0;
		size_t st = i;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			n = n * 10 + (unsigned)(s[i] - '0');
			if (n > IMAP_SECTION_MAX_NUMBER)
				return -1;
			i++;
		}
		if (n == 0 || s[st] == '0' || sec->nparts >= IMAP_SECTION_MAX_DEPTH)
			return -1;
		sec->part[sec->nparts++] = n;
		if (i == len)
			return 0;
		if (s[i] != '.')
			return -1;
		i++;
		if (i == len)
			return -1; /* "1." */
	}
	if (i == len)
		return 0; /* "" */
	if (ci_prefix(s, len, i, "HEADER.FIELDS.NOT")) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS_NOT;
		i += 17;
	} else if (ci_prefix(s, len, i, "HEADER.FIELDS")) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS;
		i += 13;
	} else if (ci_prefix(s, len, i, "HEADER")) {
		sec->kind = IMAP_SECTION_HEADER;
		i += 6;
	} else if (ci_prefix(s, len, i, "TEXT")) {
		sec->kind = IMAP_SECTION_TEXT;
		i += 4;
	} else if (ci_prefix(s, len, i, "MIME")) {
		if (sec->nparts == 0)
			return -1;
		sec->kind = IMAP_SECTION_MIME;
		i += 4;
	} else {
		return -1;
	}
	if (sec->kind == IMAP_SECTION_HEADER_FIELDS || sec->kind == IMAP_SECTION_HEADER_FIELDS_NOT) {
		i = parse_fields(s, len, i, sec);
		if (i == 0)
			return -1;
	}
	return i == len ? 0 : -1;
}

static bool
is_multipart(const struct mime_part *p)
{
	return (p->flags & MIME_PART_CONTAINER) && p->child && str_ieq_cstr(p->type, "multipart");
}

static bool
is_message(const struct mime_part *p)
{
	return (p->flags & MIME_PART_CONTAINER) && p->child && !str_ieq_cstr(p->type, "multipart");
}

static const struct mime_part *
nth_child(const struct mime_part *p, unsigned n)
{
	const struct mime_part *c = p->child;
	for (unsigned k = 1; c && k < n; k++)
		c = c->next;
	return c;
}

static void
set_range(struct imap_msg *m, struct imap_section_data *d, size_t off, size_t end)
{
	if (off > m->len)
		off = m->len;
	if (end > m->len)
		end = m->len;
	if (end < off)
		end = off;
	d->built = false;
	d->off = off;
	d->len = end - off;
	d->size = imap_crlf_size(m->raw + off, d->len);
}

static bool
field_listed(const struct imap_section *sec, struct hk_str name)
{
	for (size_t i = 0; i < sec->nfields; i++)
		if (str_ieq(sec->fields[i], name))
			return true;
	return false;
}

/* HEADER.FIELDS[.NOT] of the header block raw[off..end). */
static void
build_fields(struct imap_msg *m, const struct imap_section *sec, struct imap_section_data *d, size_t off, size_t end)
{
	bool want_listed = sec->kind == IMAP_SECTION_HEADER_FIELDS;
	struct hk_buf b;
	buf_init(&b);
	struct imap_hdr_iter it;
	struct imap_hdr_field f;
	imap_hdr_init(&it, m->raw + off, end - off);
	while (imap_hdr_next(&it, &f)) {
		if (field_listed(sec, f.name) != want_listed)
			continue;
		imap_crlf_copy(m->raw + off + f.start, f.end - f.start, 0, SIZE_MAX, &b);
		if (b.len == 0 || b.data[b.len - 1] != '\n')
			buf_add(&b, "\r\n", 2); /* the header ended without a line end */
	}
	buf_add(&b, "\r\n", 2);
	d->built = true;
	d->off = d->len = 0;
	d->text = arena_str(&m->arena, b.data, b.len);
	d->size = b.len;
	buf_fini(&b);
}

enum imap_section_status
imap_section_resolve(struct imap_msg *m, const struct imap_section *sec, struct imap_section_data *d)
{
	memset(d, 0, sizeof(*d));
	d->text = (struct hk_str){ "", 0 };
	if (sec->nparts == 0 && sec->kind == IMAP_SECTION_ALL) {
		/* BODY[] / RFC822: the whole message needs no part tree */
		set_range(m, d, 0, m->len);
		return IMAP_SECTION_OK;
	}
	const struct mime_tree *t = imap_msg_tree(m);

	const struct mime_part *p = t->root;
	bool msg = true; /* p is a message: its header is a message header */
	for (unsigned k = 0; k < sec->nparts; k++) {
		unsigned n = sec->part[k];
		const struct mime_part *mm;
		if (msg) {
			mm = p;
		} else if (is_message(p)) {
			mm = p->child;
		} else if (is_multipart(p)) {
			if ((p = nth_child(p, n)) == NULL)
				return IMAP_SECTION_NO_PART;
			continue;
		} else {
			return IMAP_SECTION_NO_PART;
		}
		if (is_multipart(mm)) {
			if ((p = nth_child(mm, n)) == NULL)
				return IMAP_SECTION_NO_PART;
		} else {
			if (n != 1)
				return IMAP_SECTION_NO_PART;
			p = mm;
		}
		msg = false;
	}

	/* the message whose HEADER / TEXT is asked for, and where its body ends */
	const struct mime_part *hm = NULL;
	size_t text_end = m->len;
	if (sec->nparts == 0) {
		hm = t->root;
	} else if (is_message(p)) {
		hm = p->child;
		text_end = p->body_end;
	}

	switch (sec->kind) {
	case IMAP_SECTION_ALL:
		if (sec->nparts == 0)
			set_range(m, d, 0, m->len);
		else
			set_range(m, d, p->body_start, p->body_end);
		return IMAP_SECTION_OK;
	case IMAP_SECTION_MIME:
		set_range(m, d, p->hdr_start, p->body_start);
		return IMAP_SECTION_OK;
	case IMAP_SECTION_HEADER:
	case IMAP_SECTION_HEADER_FIELDS:
	case IMAP_SECTION_HEADER_FIELDS_NOT:
	case IMAP_SECTION_TEXT:
		break;
	}
	if (hm == NULL)
		return IMAP_SECTION_NOT_MESSAGE;
	if (sec->kind == IMAP_SECTION_TEXT)
		set_range(m, d, hm->body_start, text_end);
	else if (sec->kind == IMAP_SECTION_HEADER)
		set_range(m, d, hm->hdr_start, hm->body_start);
	else
		build_fields(m, sec, d, hm->hdr_start, hm->body_start > hm->hdr_start ? hm->body_start : hm->hdr_start);
	return IMAP_SECTION_OK;
}

size_t
imap_section_partial_size(const struct imap_section_data *d, size_t origin, size_t count)
{
	if (origin >= d->size)
		return 0;
	return d->size - origin < count ? d->size - origin : count;
}

void
imap_section_write(struct imap_msg *m, const struct imap_section_data *d, size_t origin, size_t count,
		   struct hk_buf *out)
{
	if (d->built) {
		size_t n = imap_section_partial_size(d, origin, count);
		if (n)
			buf_add(out, d->text.ptr + origin, n);
		return;
	}
	imap_crlf_copy(m->raw + d->off, d->len, origin, count, out);
}

bool
imap_section_range(struct imap_msg *m, const struct imap_section_data *d, size_t origin, size_t count,
		   size_t *off_r, size_t *len_r)
{
	if (d->built || !imap_msg_crlf_clean(m))
		return false;
	*off_r = d->off + (origin < d->len ? origin : d->len);
	*len_r = imap_section_partial_size(d, origin, count);
	return true;
}

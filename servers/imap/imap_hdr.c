/*
 * imap_hdr.c - header block iterator on raw bytes (see imap_hdr.h).
 *
 * Pipeline: imap_envelope.c (the top-level header only), imap_section.c
 * (HEADER.FIELDS of any header block the MIME tree located).
 */
#include "imap_hdr.h"

#include <string.h>

void
imap_hdr_init(struct imap_hdr_iter *it, const char *p, size_t len)
{
	*it = (struct imap_hdr_iter){ .p = p, .len = len, .pos = 0, .body = len, .done = false };
}

/* Offset just after the line that starts at i (after its LF, or len). */
static size_t
line_end(const struct imap_hdr_iter *it, size_t i)
{
	const char *nl = memchr(it->p + i, '\n', it->len - i);
	return nl ? (size_t)(nl - it->p) + 1 : it->len;
}

static bool
is_blank_line(const struct imap_hdr_iter *it, size_t i)
{
	if (it->p[i] == '\n')
		return true;
	return it->p[i] == '\r' && (i + 1 == it->len || it->p[i + 1] == '\n');
}

bool
imap_hdr_next(struct imap_hdr_iter *it, struct imap_hdr_field *f)
{
	while (!it->done) {
		size_t i = it->pos;
		if (i >= it->len) {
			it->done = true;
			it->body = it->len;
			break;
		}
		if (is_blank_line(it, i)) {
			it->done = true;
			it->body = line_end(it, i);
			break;
		}
		size_t e = line_end(it, i);
		/* continuation lines belong to this field */
		while (e < it->len && (it->p[e] == ' ' || it->p[e] == '\t'))
			e = line_end(it, e);
		it->pos = e;
		const char *colon = memchr(it->p + i, ':', e - i);
		if (colon == NULL || colon == it->p + i || it->p[i] == ' ' || it->p[i] == '\t')
			continue; /* not a field: skipped */
		size_t ne = (size_t)(colon - it->p);
		bool ok = true;
		for (size_t k = i; k < ne && ok; k++)
			ok = it->p[k] != '\n' && it->p[k] != '\r';
		if (!ok)
			continue;
		while (ne > i && (it->p[ne - 1] == ' ' || it->p[ne - 1] == '\t'))
			ne--;
		size_t vs = (size_t)(colon - it->p) + 1, ve = e;
		if (ve > vs && it->p[ve - 1] == '\n')
			ve--;
		if (ve > vs && it->p[ve - 1] == '\r')
			ve--;
		while (vs < ve && (it->p[vs] == ' ' || it->p[vs] == '\t' || it->p[vs] == '\r' || it->p[vs] == '\n'))
			vs++;
		f->name = (struct hk_str){ it->p + i, ne - i };
		f->value = (struct hk_str){ it->p + vs, ve - vs };
		f->start = i;
		f->end = e;
		return true;
	}
	return false;
}

size_t
imap_hdr_body_start(struct imap_hdr_iter *it)
{
	struct imap_hdr_field f;
	while (imap_hdr_next(it, &f))
		;
	return it->body;
}

size_t
imap_hdr_block(const char *p, size_t len, bool *fields_r)
{
	struct imap_hdr_iter it;
	struct imap_hdr_field f;
	imap_hdr_init(&it, p, len);
	bool clean = !(len >= 5 && memcmp(p, "From ", 5) == 0);
	size_t expect = 0;
	while (imap_hdr_next(&it, &f)) {
		/* a skipped line (garbage, a stray continuation) leaves a gap */
		clean = clean && f.start == expect;
		for (size_t k = 0; k < f.name.len && clean; k++)
			clean = f.name.ptr[k] > ' ' && f.name.ptr[k] < 127;
		expect = f.end;
	}
	/* and nothing skipped between the last field and the empty line */
	size_t body = it.body;
	if (body < len || (body == len && len > expect)) {
		size_t blank = body;
		if (blank > 0 && p[blank - 1] == '\n')
			blank--;
		if (blank > 0 && p[blank - 1] == '\r')
			blank--;
		clean = clean && blank == expect;
	}
	*fields_r = clean;
	return body;
}

void
imap_hdr_unfold(struct hk_str value, struct hk_buf *out)
{
	buf_reserve(out, value.len);
	for (size_t i = 0; i < value.len; i++)
		if (value.ptr[i] != '\r' && value.ptr[i] != '\n')
			out->data[out->len++] = value.ptr[i];
	out->data[out->len] = '\0';
}

/*
 * imap_msg.c - the IMAP view of one stored message (see imap_msg.h).
 *
 * The tree is parsed only when a caller needs part offsets (BODYSTRUCTURE,
 * BODY[section]); ENVELOPE never calls it. The arena carries no budget: the
 * MIME parser bounds what it allocates by limits.max_parts and the number
 * of header lines.
 */
#include "imap_msg.h"

#include <stdint.h>
#include <string.h>

#include "mime_parser.h"

void
imap_msg_init(struct imap_msg *m, const char *raw, size_t len)
{
	*m = (struct imap_msg){ .raw = raw, .len = len, .clean = -1 };
	arena_init(&m->arena, 0);
	hk_message_limits_default(&m->limits);
}

void
imap_msg_fini(struct imap_msg *m)
{
	hk_message_free(&m->hm);
	arena_fini(&m->arena);
	m->tree = NULL;
}

const struct mime_tree *
imap_msg_tree(struct imap_msg *m)
{
	if (m->tree == NULL) {
		struct mime_parser *p = mime_parser_new(&m->limits, &m->arena);
		mime_parser_push(p, m->raw, m->len);
		m->tree = mime_parser_finish(p);
		mime_parser_free(&p);
	}
	return m->tree;
}

size_t
imap_crlf_size(const char *p, size_t n)
{
	size_t extra = 0;
	const char *s = p, *e = p + n;
	while (s < e) {
		const char *nl = memchr(s, '\n', (size_t)(e - s));
		if (nl == NULL)
			break;
		if (nl == p || nl[-1] != '\r')
			extra++;
		s = nl + 1;
	}
	return n + extra;
}

size_t
imap_count_lines(const char *p, size_t n)
{
	size_t lines = 0;
	const char *s = p, *e = p + n;
	while (s < e) {
		const char *nl = memchr(s, '\n', (size_t)(e - s));
		if (nl == NULL)
			break;
		lines++;
		s = nl + 1;
	}
	return lines;
}

/* buf_add with NUL bytes as 0x80 (RFC 3501 literals carry no NUL) */
static void
add_nonul(struct hk_buf *out, const char *p, size_t n)
{
	size_t start = out->len;
	buf_add(out, p, n);
	for (char *z = memchr(out->data + start, '\0', n); z; z = memchr(z, '\0', (size_t)(out->data + out->len - z)))
		*z++ = (char)0x80;
}

void
imap_crlf_copy(const char *p, size_t n, size_t origin, size_t count, struct hk_buf *out)
{
	/* pos counts octets of the CRLF form; copy runs of raw bytes, adding
	 * a CR before each bare LF. NULs are looked for once, not per run:
	 * messages almost never have one */
	bool nul = memchr(p, '\0', n) != NULL;
	size_t pos = 0, i = 0;
	size_t end = count > SIZE_MAX - origin ? SIZE_MAX : origin + count;
	while (i < n && pos < end) {
		const char *nl = memchr(p + i, '\n', n - i);
		size_t run_end = nl ? (size_t)(nl - p) : n; /* bytes before the LF */
		bool bare = nl && (nl == p || nl[-1] != '\r');
		/* the run [i, run_end) */
		size_t run = run_end - i;
		if (pos + run > origin) {
			size_t from = origin > pos ? origin - pos : 0;
			size_t upto = end - pos < run ? end - pos : run;
			if (upto > from && nul)
				add_nonul(out, p + i + from, upto - from);
			else if (upto > from)
				buf_add(out, p + i + from, upto - from);
		}
		pos += run;
		i = run_end;
		if (nl == NULL)
			break;
		if (bare) {
			if (pos >= origin && pos < end)
				buf_addc(out, '\r');
			pos++;
		}
		if (pos >= origin && pos < end)
			buf_addc(out, '\n');
		pos++;
		i++;
	}
}

bool
imap_msg_crlf_clean(struct imap_msg *m)
{
	if (m->clean < 0) {
		m->vsize = imap_crlf_size(m->raw, m->len);
		m->clean = m->vsize == m->len && memchr(m->raw, '\0', m->len) == NULL;
	}
	return m->clean == 1;
}

size_t
imap_msg_vsize(struct imap_msg *m)
{
	imap_msg_crlf_clean(m);
	return m->vsize;
}

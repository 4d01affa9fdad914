/*
 * imap_search_text.c - SEARCH text and date matchers (see
 * imap_search_text.h).
 *
 * Pipeline: header keys read the top-level header block straight from the
 * raw bytes (imap_hdr, as ENVELOPE does) and decode the values with
 * runtime/rfc2047.c; BODY and TEXT use the imap_msg's hk_message
 * (runtime/message.c, created on the first body key with body_text_max =
 * IMAP_SEARCH_TEXT_MAX) for the decoded body text; both sides of a
 * comparison go through imap_search_fold; memmem finds the needle.
 *
 * Ownership: folded texts are cached in the message arena; per-call
 * buffers are heap and freed before returning.
 *
 * SECURITY: messages are hostile: every text scanned is capped at
 * IMAP_SEARCH_TEXT_MAX; the fold never reads past its input, even in a
 * truncated UTF-8 sequence.
 */
#include "imap_search_text.h"

#include <stdint.h>
#include <string.h>

#include "imap_hdr.h"
#include "rfc2047.h"

/* The simple case folding of one code point, for the scripts that have
 * case and that mail in our markets uses (Unicode CaseFolding.txt, "C"
 * and "S" entries, restricted to these blocks). */
static uint32_t
fold_cp(uint32_t c)
{
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') ? c + 32 : c;
	if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
		return c + 0x20;
	if (c >= 0x100 && c <= 0x17F) {
		if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149)
			return c;
		if (c == 0x178)
			return 0xFF;
		if (c == 0x17F)
			return 's';
		if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
			return (c & 1) ? c + 1 : c;
		return (c & 1) ? c : c + 1;
	}
	if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
		return c + 0x20;
	if (c >= 0x410 && c <= 0x42F)
		return c + 0x20;
	if (c >= 0x400 && c <= 0x40F)
		return c + 0x50;
	if (c >= 0xFF21 && c <= 0xFF3A) /* fullwidth A-Z, common in Japanese mail */
		return c + 0x20;
	return c;
}

/* Decodes one UTF-8 sequence at s[0..n); its length, 0 when invalid. */
static size_t
utf8_dec(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v;
	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xC2 && c <= 0xDF) {
		len = 2, v = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3, v = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4, v = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((s[k] & 0xC0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3F);
	}
	if ((len == 3 && v < 0x800) || (len == 4 && (v < 0x10000 || v > 0x10FFFF)))
		return 0;
	*cp = v;
	return len;
}

static void
utf8_put(struct hk_buf *out, uint32_t c)
{
	if (c < 0x80) {
		buf_addc(out, (char)c);
	} else if (c < 0x800) {
		buf_addc(out, (char)(0xC0 | (c >> 6)));
		buf_addc(out, (char)(0x80 | (c & 0x3F)));
	} else if (c < 0x10000) {
		buf_addc(out, (char)(0xE0 | (c >> 12)));
		buf_addc(out, (char)(0x80 | ((c >> 6) & 0x3F)));
		buf_addc(out, (char)(0x80 | (c & 0x3F)));
	} else {
		buf_addc(out, (char)(0xF0 | (c >> 18)));
		buf_addc(out, (char)(0x80 | ((c >> 12) & 0x3F)));
		buf_addc(out, (char)(0x80 | ((c >> 6) & 0x3F)));
		buf_addc(out, (char)(0x80 | (c & 0x3F)));
	}
}

void
imap_search_fold(const char *s, size_t n, struct hk_buf *out)
{
	const unsigned char *u = (const unsigned char *)s;
	buf_reserve(out, n);
	size_t i = 0;
	while (i < n) {
		if (u[i] < 0x80) {
			/* ASCII runs are the common case: no decoding */
			char c = (char)u[i++];
			buf_addc(out, ascii_lower(c));
			continue;
		}
		uint32_t cp;
		size_t l = utf8_dec(u + i, n - i, &cp);
		if (l == 0) {
			buf_addc(out, (char)u[i++]);
			continue;
		}
		uint32_t f = fold_cp(cp);
		if (f == cp)
			buf_add(out, s + i, l);
		else
			utf8_put(out, f);
		i += l;
	}
}

static struct hk_message *
msg_decoded(struct imap_msg *m)
{
	if (m->hm == NULL) {
		struct hk_message_limits l = m->limits;
		l.body_text_max = IMAP_SEARCH_TEXT_MAX;
		m->hm = hk_message_new(m->raw, m->len, &l);
	}
	return m->hm;
}

/* Folds the needle into a heap buffer (the caller frees it). */
static struct hk_str
fold_needle(const char *needle, size_t nlen, struct hk_buf *b)
{
	buf_init(b);
	imap_search_fold(needle, nlen, b);
	return (struct hk_str){ b->data ? b->data : "", b->len };
}

static bool
contains(struct hk_str hay, struct hk_str needle)
{
	if (needle.len == 0)
		return true;
	return hay.len >= needle.len && memmem(hay.ptr, hay.len, needle.ptr, needle.len) != NULL;
}

/* Appends the decoded UTF-8 value of a header field: unfolded, cut at
 * IMAP_SEARCH_TEXT_MAX, RFC 2047 words and raw 8-bit text decoded (what
 * hk_message_header gives, without building the message model: header
 * keys are the common SEARCH and must not cost a MIME parse). */
static void
field_decoded(struct hk_str v, struct hk_buf *scratch, struct hk_buf *out)
{
	if (v.len > IMAP_SEARCH_TEXT_MAX)
		v.len = IMAP_SEARCH_TEXT_MAX;
	buf_reset(scratch);
	imap_hdr_unfold(v, scratch);
	const char *p = scratch->data ? scratch->data : "";
	size_t n = scratch->len;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	bool plain = true;
	for (size_t i = 0; i < n && plain; i++) {
		unsigned char c = (unsigned char)p[i];
		plain = !(c >= 0x80 || c == 0x1B || (c == '=' && i + 1 < n && p[i + 1] == '?'));
	}
	if (plain)
		buf_add(out, p, n);
	else
		rfc2047_decode(p, n, out);
}

bool
imap_search_header(struct imap_msg *m, const char *name, size_t namelen, const char *needle, size_t nlen)
{
	struct hk_str want = { name, namelen };
	struct hk_buf nb, dec, scratch, folded;
	struct hk_str nf = fold_needle(needle, nlen, &nb);
	buf_init(&dec);
	buf_init(&scratch);
	buf_init(&folded);
	bool found = false;
	struct imap_hdr_iter it;
	struct imap_hdr_field f;
	imap_hdr_init(&it, m->raw, m->len);
	while (!found && imap_hdr_next(&it, &f)) {
		if (!str_ieq(f.name, want))
			continue;
		if (nlen == 0) {
			found = true; /* RFC 3501: an empty string matches a present field */
			break;
		}
		buf_reset(&dec);
		field_decoded(f.value, &scratch, &dec);
		buf_reset(&folded);
		imap_search_fold(dec.data ? dec.data : "", dec.len, &folded);
		found = contains((struct hk_str){ folded.data ? folded.data : "", folded.len }, nf);
	}
	buf_fini(&dec);
	buf_fini(&scratch);
	buf_fini(&folded);
	buf_fini(&nb);
	return found;
}

static struct hk_str
body_folded(struct imap_msg *m)
{
	if (!m->have_text) {
		struct hk_str t = hk_message_body_text(msg_decoded(m));
		struct hk_buf b;
		buf_init(&b);
		imap_search_fold(t.ptr, t.len < IMAP_SEARCH_TEXT_MAX ? t.len : IMAP_SEARCH_TEXT_MAX, &b);
		m->body_folded = arena_str(&m->arena, b.data ? b.data : "", b.len);
		buf_fini(&b);
		m->have_text = true;
	}
	return m->body_folded;
}

static struct hk_str
headers_folded(struct imap_msg *m)
{
	if (!m->have_hdrs) {
		struct hk_buf text, dec, scratch;
		buf_init(&text);
		buf_init(&dec);
		buf_init(&scratch);
		struct imap_hdr_iter it;
		struct imap_hdr_field f;
		imap_hdr_init(&it, m->raw, m->len);
		while (text.len < IMAP_SEARCH_TEXT_MAX && imap_hdr_next(&it, &f)) {
			buf_reset(&dec);
			buf_add(&dec, f.name.ptr, f.name.len);
			buf_add(&dec, ": ", 2);
			field_decoded(f.value, &scratch, &dec);
			buf_addc(&dec, '\n');
			size_t room = IMAP_SEARCH_TEXT_MAX - text.len;
			imap_search_fold(dec.data, dec.len < room ? dec.len : room, &text);
		}
		m->hdrs_folded = arena_str(&m->arena, text.data ? text.data : "", text.len);
		buf_fini(&text);
		buf_fini(&dec);
		buf_fini(&scratch);
		m->have_hdrs = true;
	}
	return m->hdrs_folded;
}

bool
imap_search_body(struct imap_msg *m, const char *needle, size_t nlen)
{
	struct hk_buf nb;
	struct hk_str nf = fold_needle(needle, nlen, &nb);
	bool found = contains(body_folded(m), nf);
	buf_fini(&nb);
	return found;
}

bool
imap_search_text(struct imap_msg *m, const char *needle, size_t nlen)
{
	struct hk_buf nb;
	struct hk_str nf = fold_needle(needle, nlen, &nb);
	bool found = contains(headers_folded(m), nf) || contains(body_folded(m), nf);
	buf_fini(&nb);
	return found;
}

bool
imap_search_sent_date(struct imap_msg *m, struct imap_date *d_r)
{
	/* the Date: field is plain ASCII: read it from the header block
	 * directly, without decoding the message */
	struct imap_hdr_iter it;
	struct imap_hdr_field f;
	imap_hdr_init(&it, m->raw, m->len);
	while (imap_hdr_next(&it, &f))
		if (str_ieq_cstr(f.name, "date"))
			return imap_date_parse(f.value.ptr, f.value.len, d_r);
	return false;
}

bool
imap_search_sent(struct imap_msg *m, enum imap_sent_op op, int year, int month, int day)
{
	struct imap_date d;
	if (!imap_search_sent_date(m, &d))
		return false;
	long k = imap_date_key(&d), want = (long)year * 10000 + month * 100 + day;
	switch (op) {
	case IMAP_SENT_BEFORE:
		return k < want;
	case IMAP_SENT_ON:
		return k == want;
	case IMAP_SENT_SINCE:
		return k >= want;
	}
	return false;
}

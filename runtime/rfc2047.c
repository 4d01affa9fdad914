/*
 * rfc2047.c - header text to UTF-8: encoded words and raw 8-bit bytes (see
 * rfc2047.h for the tolerance rules).
 *
 * Pipeline: message.c calls it for every header value a rule asks for,
 * address.c for display names, mime_param.c for Outlook-style encoded
 * filenames. The caller unfolds the header first.
 *
 * Ownership: appends to the caller's hk_buf; keeps a scratch buffer for the
 * pending bytes of adjacent encoded words, freed before returning.
 *
 * Limits: charset names longer than RFC2047_CHARSET_MAX are not encoded
 * words. Output is bounded by 3x the input plus 3 bytes per bad byte.
 *
 * SECURITY: the input is a hostile header. Every scan moves forward, so the
 * cost is linear in len (the "=?" search restarts after each failed
 * candidate, never before it).
 */
#include "rfc2047.h"

#include <string.h>

#include "charset.h"
#include "message.h"
#include "mime_decode.h"

struct ew {
	const char *cs;   /* charset, without the "*lang" suffix */
	size_t cslen;
	char enc;         /* 'b' or 'q' */
	const char *text; /* encoded text */
	size_t textlen;
	size_t end;       /* offset just after the word */
	bool broken;      /* "?=" missing */
};

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses the encoded word starting at s[k] ("=?"). */
static bool
ew_parse(const char *s, size_t len, size_t k, struct ew *w)
{
	size_t i = k + 2, cs = i;
	while (i < len && s[i] != '?') {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7F || c == '=' || i - cs >= RFC2047_CHARSET_MAX)
			return false;
		i++;
	}
	if (i >= len || i == cs)
		return false;
	w->cs = s + cs;
	w->cslen = i - cs;
	const char *star = memchr(w->cs, '*', w->cslen);
	if (star)
		w->cslen = (size_t)(star - w->cs);
	if (w->cslen == 0)
		return false;
	i++;
	if (i + 1 >= len || s[i + 1] != '?')
		return false;
	w->enc = ascii_lower(s[i]);
	if (w->enc != 'b' && w->enc != 'q')
		return false;
	i += 2;
	size_t t = i;
	w->text = s + t;
	w->broken = false;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c == '?' && i + 1 < len && s[i + 1] == '=') {
			w->textlen = i - t;
			w->end = i + 2;
			return true;
		}
		if (c == '=' && i + 1 < len && s[i + 1] == '?' && i > t && (i + 2 >= len || s[i + 2] != '=')) {
			/* the next word starts before this one ended ("=?=" is
			 * padding and the end, not a new word) */
			size_t e = i;
			while (e > t && is_blank(s[e - 1]))
				e--;
			w->textlen = e - t;
			w->end = e;
			w->broken = true;
			return w->textlen > 0;
		}
		if (c < 0x20 && c != '\t')
			break;
		i++;
	}
	/* no "?=": the word runs to the next blank */
	size_t e = t;
	while (e < len && !is_blank(s[e]) && (unsigned char)s[e] >= 0x20)
		e++;
	w->textlen = e - t;
	w->end = e;
	w->broken = true;
	return w->textlen > 0;
}

static bool
has_raw(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80 || s[i] == 0x1B)
			return true;
	return false;
}

unsigned
rfc2047_decode_raw(const char *in, size_t len, struct hk_buf *out)
{
	unsigned errs = 0;
	bool high = false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)in[i] >= 0x80) {
			high = true;
			break;
		}
	if (high)
		errs |= HK_MSG_ERR_8BIT_HEADER;
	if (!has_raw(in, len)) {
		buf_add(out, in, len);
		return errs;
	}
	const char *g = charset_guess(in, len);
	if (strcmp(g, "UTF-8") == 0 || strcmp(g, "US-ASCII") == 0) {
		buf_add(out, in, len);
		return errs;
	}
	if (!charset_to_utf8(g, strlen(g), in, len, out) || strcmp(g, "ISO-8859-1") == 0)
		errs |= HK_MSG_ERR_CHARSET;
	return errs;
}

struct pending {
	struct hk_buf raw;
	const char *cs;
	size_t cslen;
	bool active;
};

static unsigned
pending_flush(struct pending *p, struct hk_buf *out)
{
	unsigned errs = 0;
	if (!p->active)
		return 0;
	if (!charset_to_utf8(p->cs, p->cslen, p->raw.data ? p->raw.data : "", p->raw.len, out))
		errs |= HK_MSG_ERR_CHARSET;
	buf_reset(&p->raw);
	p->active = false;
	return errs;
}

/* Plain text between encoded words; raw bytes are read in the charset
 * guessed from the whole value (computed once). */
static unsigned
emit_plain(const char *all, size_t all_len, const char **guess, const char *s, size_t n, struct hk_buf *out)
{
	if (n == 0)
		return 0;
	if (!has_raw(s, n)) {
		buf_add(out, s, n);
		return 0;
	}
	unsigned errs = 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80) {
			errs |= HK_MSG_ERR_8BIT_HEADER;
			break;
		}
	if (*guess == NULL)
		*guess = charset_guess(all, all_len);
	const char *g = *guess;
	if (strcmp(g, "UTF-8") == 0 || strcmp(g, "US-ASCII") == 0) {
		if (!utf8_repair(s, n, out))
			errs |= HK_MSG_ERR_CHARSET;
		return errs;
	}
	if (!charset_to_utf8(g, strlen(g), s, n, out) || strcmp(g, "ISO-8859-1") == 0)
		errs |= HK_MSG_ERR_CHARSET;
	return errs;
}

static bool
only_blanks(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_blank(s[i]))
			return false;
	return true;
}

unsigned
rfc2047_decode(const char *in, size_t len, struct hk_buf *out)
{
	struct pending p = { .active = false };
	const char *guess = NULL;
	unsigned errs = 0;
	bool last_ew = false;
	size_t i = 0;

	buf_reserve(out, len);
	while (i < len) {
		/* the next valid encoded word at or after i */
		struct ew w;
		size_t k = i;
		bool found = false;
		while (k + 1 < len) {
			const char *q = memchr(in + k, '=', len - k - 1);
			if (q == NULL)
				break;
			k = (size_t)(q - in);
			if (in[k + 1] == '?' && ew_parse(in, len, k, &w)) {
				found = true;
				break;
			}
			k++;
		}
		if (!found) {
			errs |= pending_flush(&p, out);
			errs |= emit_plain(in, len, &guess, in + i, len - i, out);
			break;
		}
		if (!(last_ew && only_blanks(in + i, k - i))) {
			errs |= pending_flush(&p, out);
			errs |= emit_plain(in, len, &guess, in + i, k - i, out);
		}
		if (p.active && !str_ieq((struct hk_str){ p.cs, p.cslen }, (struct hk_str){ w.cs, w.cslen }))
			errs |= pending_flush(&p, out);
		if (!p.active) {
			p.active = true;
			p.cs = w.cs;
			p.cslen = w.cslen;
		}
		bool ok = w.enc == 'b' ? mime_base64_decode(w.text, w.textlen, &p.raw)
				       : mime_q_decode(w.text, w.textlen, &p.raw);
		if (!ok || w.broken)
			errs |= HK_MSG_ERR_ENCODING;
		last_ew = true;
		i = w.end;
	}
	errs |= pending_flush(&p, out);
	buf_fini(&p.raw);
	return errs;
}

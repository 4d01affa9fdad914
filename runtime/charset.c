/*
 * charset.c - mail text in any charset to UTF-8 (see charset.h).
 *
 * Pipeline: called by rfc2047.c (encoded words, raw 8-bit headers),
 * mime_param.c (RFC 2231 values) and message.c (text parts) after the
 * transfer encoding is undone. Output is appended to a caller's hk_buf.
 *
 * Ownership: nothing is returned but bytes in the caller's buffer. The
 * iconv handles live in a small per-thread cache (CHARSET_CACHE_SIZE
 * entries, round robin); charset_cache_clear() closes them.
 *
 * ISO-2022-JP is decoded here, not by glibc: real mail carries NEC row 13
 * (CP50220: ① is ESC $ B 0x2D21) which glibc rejects. Each 2-byte run is
 * turned into EUC bytes (OR 0x80) and decoded with glibc's EUC-JP, whose
 * JIS X 0208 table is the one its ISO-2022-JP uses; a character EUC-JP
 * rejects is retried with EUC-JP-MS (NEC/IBM extensions). Escapes we do not
 * know (ISO-2022-JP-2 Latin/Chinese/Korean sets, JIS X 0213) fall back to
 * glibc's ISO-2022-JP-2 / -3 for the whole text.
 *
 * Limits: labels longer than CHARSET_LABEL_MAX or with characters outside
 * [A-Za-z0-9._:+-] are never passed to iconv_open (they could carry
 * "//IGNORE"-style suffixes) and count as unknown. Output is at most a
 * small multiple (3x, +3 bytes per bad byte) of the input.
 *
 * SECURITY: labels and text come from hostile mail. Never //IGNORE (it still
 * returns EILSEQ): on EILSEQ or EINVAL we emit U+FFFD and skip one byte, so
 * every call terminates after at most len + 1 iconv calls per byte.
 */
#include "charset.h"

#include <errno.h>
#include <iconv.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#define ICONV_BAD ((iconv_t)-1)

static const char utf8_fffd[] = "\xEF\xBF\xBD";

enum cs_kind {
	CS_ICONV,   /* glibc iconv under the mapped name */
	CS_UTF8,    /* validate, repair */
	CS_LATIN1,  /* byte = code point */
	CS_AUTO,    /* us-ascii and friends: guess when 8-bit bytes show up */
	CS_JIS,     /* ISO-2022-JP family, our decoder */
	CS_UNKNOWN, /* not a charset we or iconv know */
};

struct cs_alias {
	const char *label;   /* lower case */
	enum cs_kind kind;
	const char *name;    /* iconv name (CS_ICONV), fallback name (CS_JIS) */
};

/* Labels seen in mail, mapped the way browsers and mail clients read them.
 * Sorted by label (strcmp order) for the binary search in alias_find. */
static const struct cs_alias cs_aliases[] = {
	{ "ansi_x3.4-1968", CS_AUTO, NULL },
	{ "ascii", CS_AUTO, NULL },
	{ "big-5", CS_ICONV, "BIG5-HKSCS" },
	{ "big5", CS_ICONV, "BIG5-HKSCS" },
	{ "big5-hkscs", CS_ICONV, "BIG5-HKSCS" },
	{ "chinese", CS_ICONV, "GB18030" },
	{ "cn-big5", CS_ICONV, "BIG5-HKSCS" },
	{ "cp367", CS_AUTO, NULL },
	{ "cp50220", CS_JIS, "ISO-2022-JP-2" },
	{ "cp50221", CS_JIS, "ISO-2022-JP-2" },
	{ "cp50222", CS_JIS, "ISO-2022-JP-2" },
	{ "cp51932", CS_ICONV, "EUC-JP-MS" },
	{ "cp819", CS_LATIN1, NULL },
	{ "cp932", CS_ICONV, "CP932" },
	{ "cp936", CS_ICONV, "GB18030" },
	{ "cp949", CS_ICONV, "CP949" },
	{ "cp950", CS_ICONV, "BIG5-HKSCS" },
	{ "csascii", CS_AUTO, NULL },
	{ "csbig5", CS_ICONV, "BIG5-HKSCS" },
	{ "cseuckr", CS_ICONV, "CP949" },
	{ "cseucpkdfmtjapanese", CS_ICONV, "EUC-JP-MS" },
	{ "csgb2312", CS_ICONV, "GB18030" },
	{ "csiso2022jp", CS_JIS, "ISO-2022-JP-2" },
	{ "csiso2022jp2", CS_JIS, "ISO-2022-JP-2" },
	{ "csiso58gb231280", CS_ICONV, "GB18030" },
	{ "csisolatin1", CS_LATIN1, NULL },
	{ "csksc56011987", CS_ICONV, "CP949" },
	{ "csshiftjis", CS_ICONV, "CP932" },
	{ "cswindows31j", CS_ICONV, "CP932" },
	{ "default", CS_AUTO, NULL },
	{ "euc-cn", CS_ICONV, "GB18030" },
	{ "euc-jp", CS_ICONV, "EUC-JP-MS" },
	{ "euc-jp-ms", CS_ICONV, "EUC-JP-MS" },
	{ "euc-kr", CS_ICONV, "CP949" },
	{ "euccn", CS_ICONV, "GB18030" },
	{ "eucjp", CS_ICONV, "EUC-JP-MS" },
	{ "eucjp-ms", CS_ICONV, "EUC-JP-MS" },
	{ "eucjpms", CS_ICONV, "EUC-JP-MS" },
	{ "euckr", CS_ICONV, "CP949" },
	{ "gb18030", CS_ICONV, "GB18030" },
	{ "gb2312", CS_ICONV, "GB18030" },
	{ "gb_2312-80", CS_ICONV, "GB18030" },
	{ "gbk", CS_ICONV, "GB18030" },
	{ "ibm-943", CS_ICONV, "CP932" },
	{ "iso-2022-jp", CS_JIS, "ISO-2022-JP-2" },
	{ "iso-2022-jp-1", CS_JIS, "ISO-2022-JP-2" },
	{ "iso-2022-jp-2", CS_JIS, "ISO-2022-JP-2" },
	{ "iso-2022-jp-2004", CS_JIS, "ISO-2022-JP-3" },
	{ "iso-2022-jp-3", CS_JIS, "ISO-2022-JP-3" },
	{ "iso-2022-jp-ms", CS_JIS, "ISO-2022-JP-2" },
	{ "iso-8859-1", CS_LATIN1, NULL },
	{ "iso-8859-6-i", CS_ICONV, "ISO-8859-6" },
	{ "iso-8859-8-i", CS_ICONV, "ISO-8859-8" },
	{ "iso-ir-100", CS_LATIN1, NULL },
	{ "iso-ir-149", CS_ICONV, "CP949" },
	{ "iso-ir-58", CS_ICONV, "GB18030" },
	{ "iso2022jp", CS_JIS, "ISO-2022-JP-2" },
	{ "iso2022jp2", CS_JIS, "ISO-2022-JP-2" },
	{ "iso646-us", CS_AUTO, NULL },
	{ "iso8859-1", CS_LATIN1, NULL },
	{ "iso_8859-1", CS_LATIN1, NULL },
	{ "jis", CS_JIS, "ISO-2022-JP-2" },
	{ "korean", CS_ICONV, "CP949" },
	{ "ks_c_5601", CS_ICONV, "CP949" },
	{ "ks_c_5601-1987", CS_ICONV, "CP949" },
	{ "ks_c_5601-1989", CS_ICONV, "CP949" },
	{ "ksc5601", CS_ICONV, "CP949" },
	{ "ksc_5601", CS_ICONV, "CP949" },
	{ "l1", CS_LATIN1, NULL },
	{ "latin-1", CS_LATIN1, NULL },
	{ "latin1", CS_LATIN1, NULL },
	{ "macintosh", CS_ICONV, "MACINTOSH" },
	{ "ms932", CS_ICONV, "CP932" },
	{ "ms936", CS_ICONV, "GB18030" },
	{ "ms949", CS_ICONV, "CP949" },
	{ "ms_kanji", CS_ICONV, "CP932" },
	{ "s-jis", CS_ICONV, "CP932" },
	{ "shift-jis", CS_ICONV, "CP932" },
	{ "shift_jis", CS_ICONV, "CP932" },
	{ "shiftjis", CS_ICONV, "CP932" },
	{ "sjis", CS_ICONV, "CP932" },
	{ "tis-620", CS_ICONV, "TIS-620" },
	{ "uhc", CS_ICONV, "CP949" },
	{ "ujis", CS_ICONV, "EUC-JP-MS" },
	{ "unicode-1-1-utf-8", CS_UTF8, NULL },
	{ "unknown-8bit", CS_AUTO, NULL },
	{ "us", CS_AUTO, NULL },
	{ "us-ascii", CS_AUTO, NULL },
	{ "utf-8", CS_UTF8, NULL },
	{ "utf8", CS_UTF8, NULL },
	{ "windows-31j", CS_ICONV, "CP932" },
	{ "windows-874", CS_ICONV, "CP874" },
	{ "windows-936", CS_ICONV, "GB18030" },
	{ "windows-949", CS_ICONV, "CP949" },
	{ "x-euc", CS_ICONV, "EUC-JP-MS" },
	{ "x-euc-cn", CS_ICONV, "GB18030" },
	{ "x-euc-jp", CS_ICONV, "EUC-JP-MS" },
	{ "x-gbk", CS_ICONV, "GB18030" },
	{ "x-mac-roman", CS_ICONV, "MACINTOSH" },
	{ "x-ms-cp932", CS_ICONV, "CP932" },
	{ "x-sjis", CS_ICONV, "CP932" },
	{ "x-unicode20utf8", CS_UTF8, NULL },
	{ "x-unknown", CS_AUTO, NULL },
	{ "x-user-defined", CS_AUTO, NULL },
	{ "x-x-big5", CS_ICONV, "BIG5-HKSCS" },
};

/* --- UTF-8 ------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (1-4), 0 when malformed. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
			return 0;
		if (c == 0xE0 && s[1] < 0xA0)
			return 0; /* overlong */
		if (c == 0xED && s[1] >= 0xA0)
			return 0; /* surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
			return 0;
		if (c == 0xF0 && s[1] < 0x90)
			return 0; /* overlong */
		if (c == 0xF4 && s[1] >= 0x90)
			return 0; /* > U+10FFFF */
		return 4;
	}
	return 0;
}

bool
utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = utf8_seq(p, (size_t)(end - p));
		if (n == 0)
			return false;
		p += n;
	}
	return true;
}

bool
utf8_repair(const char *s, size_t len, struct hk_buf *out)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
	bool ok = true;
	buf_reserve(out, len);
	while (p < end) {
		if (*p < 0x80) {
			p++;
			continue;
		}
		size_t n = utf8_seq(p, (size_t)(end - p));
		if (n) {
			p += n;
			continue;
		}
		buf_add(out, run, (size_t)(p - run));
		buf_add(out, utf8_fffd, 3);
		ok = false;
		run = ++p;
	}
	buf_add(out, run, (size_t)(p - run));
	return ok;
}

static void
utf8_put(struct hk_buf *out, uint32_t cp)
{
	char b[4];
	size_t n;
	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xC0 | (cp >> 6));
		b[1] = (char)(0x80 | (cp & 0x3F));
		n = 2;
	} else {
		b[0] = (char)(0xE0 | (cp >> 12));
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (char)(0x80 | (cp & 0x3F));
		n = 3;
	}
	buf_add(out, b, n);
}

static void
latin1_to_utf8(const char *s, size_t len, struct hk_buf *out)
{
	const unsigned char *p = (const unsigned char *)s;
	buf_reserve(out, len * 2);
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x80) {
			out->data[out->len++] = (char)p[i];
		} else {
			out->data[out->len++] = (char)(0xC0 | (p[i] >> 6));
			out->data[out->len++] = (char)(0x80 | (p[i] & 0x3F));
		}
	}
	out->data[out->len] = '\0';
}

/* --- iconv handle cache ---------------------------------------------------- */

struct cs_cache_ent {
	char name[CHARSET_LABEL_MAX + 1]; /* iconv name; "" = free slot */
	iconv_t cd;                        /* ICONV_BAD: iconv does not know it */
	unsigned long used;                /* LRU stamp */
};

static _Thread_local struct cs_cache_ent cs_cache[CHARSET_CACHE_SIZE];
static _Thread_local unsigned long cs_clock;

/* The to-UTF-8 converter for an iconv name, reset to its initial state,
 * or ICONV_BAD. Least recently used eviction: the handle returned by the
 * previous call stays open, so a caller may hold two at once. */
static iconv_t
cs_open(const char *name)
{
	struct cs_cache_ent *victim = &cs_cache[0];
	for (size_t i = 0; i < CHARSET_CACHE_SIZE; i++) {
		struct cs_cache_ent *e = &cs_cache[i];
		if (e->name[0] && strcmp(e->name, name) == 0) {
			e->used = ++cs_clock;
			if (e->cd != ICONV_BAD)
				iconv(e->cd, NULL, NULL, NULL, NULL);
			return e->cd;
		}
		if (e->name[0] == '\0' || (victim->name[0] && e->used < victim->used))
			victim = e;
	}
	struct cs_cache_ent *e = victim;
	if (e->name[0] && e->cd != ICONV_BAD)
		iconv_close(e->cd);
	e->used = ++cs_clock;
	size_t n = strlen(name);
	if (n > CHARSET_LABEL_MAX)
		n = CHARSET_LABEL_MAX;
	memcpy(e->name, name, n);
	e->name[n] = '\0';
	e->cd = iconv_open("UTF-8", name);
	return e->cd;
}

void
charset_cache_clear(void)
{
	for (size_t i = 0; i < CHARSET_CACHE_SIZE; i++) {
		struct cs_cache_ent *e = &cs_cache[i];
		if (e->name[0] && e->cd != ICONV_BAD)
			iconv_close(e->cd);
		e->name[0] = '\0';
		e->cd = ICONV_BAD;
		e->used = 0;
	}
}

/* Bytes of the EUC-JP character starting with lead byte c. */
static size_t
euc_char_len(unsigned char c)
{
	if (c == 0x8F)
		return 3;
	return c >= 0x80 ? 2 : 1;
}

/*
 * Runs cd over in and appends the UTF-8 to out. An invalid or truncated
 * sequence becomes U+FFFD and one byte is skipped; with a fallback
 * converter (EUC-JP-MS behind EUC-JP) the whole EUC character is retried
 * there first.
 */
static bool
conv_run(iconv_t cd, const char *in, size_t len, struct hk_buf *out, iconv_t fallback)
{
	char *ip = (char *)(uintptr_t)in;
	size_t il = len;
	bool ok = true;

	buf_reserve(out, len * 3 + 16);
	while (il > 0) {
		char *op = out->data + out->len;
		size_t ol = out->cap - out->len - 1;
		size_t r = iconv(cd, &ip, &il, &op, &ol);
		int e = errno;
		out->len = (size_t)(op - out->data);
		out->data[out->len] = '\0';
		if (r != (size_t)-1)
			break;
		if (e == E2BIG) {
			buf_reserve(out, out->cap - out->len + il * 3 + 64);
			continue;
		}
		/* EILSEQ, EINVAL (truncated at the end) or anything else */
		if (fallback != ICONV_BAD) {
			size_t cl = euc_char_len((unsigned char)*ip);
			if (cl > il)
				cl = il;
			char *fp = ip;
			size_t fl = cl;
			char tmp[16];
			char *tp = tmp;
			size_t tl = sizeof(tmp);
			iconv(fallback, NULL, NULL, NULL, NULL);
			if (iconv(fallback, &fp, &fl, &tp, &tl) != (size_t)-1 && fl == 0) {
				buf_add(out, tmp, (size_t)(tp - tmp));
				ip += cl;
				il -= cl;
				continue;
			}
		}
		buf_add(out, utf8_fffd, 3);
		ok = false;
		ip++;
		il--;
		buf_reserve(out, il * 3 + 16);
	}
	/* flush a stateful decoder */
	buf_reserve(out, 16);
	char *op = out->data + out->len;
	size_t ol = out->cap - out->len - 1;
	iconv(cd, NULL, NULL, &op, &ol);
	out->len = (size_t)(op - out->data);
	out->data[out->len] = '\0';
	return ok;
}

/* --- ISO-2022-JP ------------------------------------------------------------ */

#define JIS_RUN_MAX 510 /* EUC bytes converted per iconv call; a multiple of 2 and 3 */

struct jis_run {
	char euc[JIS_RUN_MAX + 3];
	size_t n;
	iconv_t cd, ms;
	struct hk_buf *out;
	bool ok;
};

static void
jis_flush(struct jis_run *r)
{
	if (r->n == 0)
		return;
	if (r->cd == ICONV_BAD) {
		for (size_t i = 0; i < r->n; i += euc_char_len((unsigned char)r->euc[i]))
			buf_add(r->out, utf8_fffd, 3);
		r->ok = false;
	} else if (!conv_run(r->cd, r->euc, r->n, r->out, r->ms)) {
		r->ok = false;
	}
	r->n = 0;
}

static void
jis_add(struct jis_run *r, const unsigned char *b, size_t n)
{
	if (r->n + n > JIS_RUN_MAX)
		jis_flush(r);
	memcpy(r->euc + r->n, b, n);
	r->n += n;
}

/*
 * JIS X 0208 (with the NEC and IBM rows of CP5022x) to Unicode, as a table
 * built once from glibc's EUC-JP, with EUC-JP-MS for what EUC-JP rejects
 * (row 13: ①, ㈱ ...). A table lookup per character instead of an iconv
 * call per run makes Japanese bodies about ten times cheaper to decode.
 */
static uint16_t jis0208_map[94 * 94]; /* 0: no character there */
static pthread_once_t jis0208_once = PTHREAD_ONCE_INIT;

static uint32_t
utf8_decode_one(const unsigned char *s, size_t n)
{
	if (n == 1 && s[0] < 0x80)
		return s[0];
	if (n == 2 && (s[0] & 0xE0) == 0xC0)
		return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
	if (n == 3 && (s[0] & 0xF0) == 0xE0)
		return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
	return 0;
}

static void
jis0208_build(void)
{
	iconv_t cds[2] = { iconv_open("UTF-8", "EUC-JP"), iconv_open("UTF-8", "EUC-JP-MS") };
	for (unsigned row = 0; row < 94; row++)
		for (unsigned col = 0; col < 94; col++) {
			for (int k = 0; k < 2; k++) {
				if (cds[k] == ICONV_BAD)
					continue;
				char in[2] = { (char)(0xA1 + row), (char)(0xA1 + col) };
				char outb[8];
				char *ip = in, *op = outb;
				size_t il = 2, ol = sizeof(outb);
				iconv(cds[k], NULL, NULL, NULL, NULL);
				if (iconv(cds[k], &ip, &il, &op, &ol) == (size_t)-1 || il != 0)
					continue;
				uint32_t cp = utf8_decode_one((const unsigned char *)outb, (size_t)(op - outb));
				if (cp && cp <= 0xFFFF) {
					jis0208_map[row * 94 + col] = (uint16_t)cp;
					break;
				}
			}
		}
	for (int k = 0; k < 2; k++)
		if (cds[k] != ICONV_BAD)
			iconv_close(cds[k]);
}

/* The code point of the JIS X 0208 pair c1 c2 (0x21..0x7E each), 0 if none. */
static inline uint32_t
jis0208_lookup(unsigned c1, unsigned c2)
{
	return jis0208_map[(c1 - 0x21) * 94 + (c2 - 0x21)];
}

/*
 * Decodes ISO-2022-JP (RFC 1468) with the CP5022x extensions: JIS X 0208
 * including NEC/IBM rows, JIS X 0212 (ESC $ ( D), half-width katakana by
 * ESC ( I or SO/SI. Returns false when something was replaced; sets
 * *unknown_r (and stops) on an escape sequence it does not know.
 */
static bool
jis_decode(const char *s, size_t len, struct hk_buf *out, bool *unknown_r)
{
	enum { M_ASCII, M_ROMAN, M_KANA, M_X0208, M_X0212 } mode = M_ASCII;
	const unsigned char *p = (const unsigned char *)s;
	struct jis_run r;
	bool so = false;

	pthread_once(&jis0208_once, jis0208_build);
	r.n = 0;
	r.cd = cs_open("EUC-JP");
	r.ms = cs_open("EUC-JP-MS");
	r.out = out;
	r.ok = true;
	*unknown_r = false;

	size_t i = 0;
	while (i < len) {
		unsigned c = p[i];
		/* the hot paths write straight into reserved space: a run of
		 * two-byte characters, and a run of plain ASCII */
		if (mode == M_X0208 && !so && c >= 0x21 && c <= 0x7E && i + 1 < len && p[i + 1] >= 0x21 && p[i + 1] <= 0x7E) {
			jis_flush(&r);
			buf_reserve(out, (len - i) / 2 * 3 + 4);
			char *w = out->data + out->len;
			while (i + 1 < len && p[i] >= 0x21 && p[i] <= 0x7E && p[i + 1] >= 0x21 && p[i + 1] <= 0x7E) {
				uint32_t cp = jis0208_lookup(p[i], p[i + 1]);
				if (cp == 0) {
					cp = 0xFFFD;
					r.ok = false;
				}
				if (cp < 0x800) {
					*w++ = (char)(0xC0 | (cp >> 6));
					*w++ = (char)(0x80 | (cp & 0x3F));
				} else {
					*w++ = (char)(0xE0 | (cp >> 12));
					*w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
					*w++ = (char)(0x80 | (cp & 0x3F));
				}
				i += 2;
			}
			out->len = (size_t)(w - out->data);
			out->data[out->len] = '\0';
			continue;
		}
		if (mode == M_ASCII && !so && c >= 0x20 && c < 0x7F) {
			size_t j = i + 1;
			while (j < len && p[j] >= 0x20 && p[j] < 0x7F)
				j++;
			jis_flush(&r);
			buf_add(out, p + i, j - i);
			i = j;
			continue;
		}
		if (c == 0x1B) {
			jis_flush(&r);
			size_t rest = len - i;
			if (rest >= 3 && p[i + 1] == '(' && p[i + 2] == 'B') {
				mode = M_ASCII;
				i += 3;
			} else if (rest >= 3 && p[i + 1] == '(' && (p[i + 2] == 'J' || p[i + 2] == 'H')) {
				mode = M_ROMAN;
				i += 3;
			} else if (rest >= 3 && p[i + 1] == '(' && p[i + 2] == 'I') {
				mode = M_KANA;
				i += 3;
			} else if (rest >= 3 && p[i + 1] == '$' && (p[i + 2] == 'B' || p[i + 2] == '@')) {
				mode = M_X0208;
				i += 3;
			} else if (rest >= 4 && p[i + 1] == '$' && p[i + 2] == '(' && p[i + 3] == 'B') {
				mode = M_X0208;
				i += 4;
			} else if (rest >= 4 && p[i + 1] == '$' && p[i + 2] == '(' && p[i + 3] == 'D') {
				mode = M_X0212;
				i += 4;
			} else if (rest >= 3 && p[i + 1] == '&' && p[i + 2] == '@') {
				i += 3; /* JIS X 0208-1990 announcer, ESC $ B follows */
			} else if (rest >= 3) {
				*unknown_r = true;
				return false;
			} else {
				buf_add(out, utf8_fffd, 3); /* truncated escape */
				r.ok = false;
				i = len;
			}
			continue;
		}
		if (c == 0x0E || c == 0x0F) {
			jis_flush(&r);
			so = (c == 0x0E);
			i++;
			continue;
		}
		if (c == '\r' || c == '\n') {
			jis_flush(&r);
			buf_addc(out, (char)c);
			i++;
			continue;
		}
		if (so || mode == M_KANA) {
			if (c >= 0x21 && c <= 0x5F) {
				utf8_put(out, 0xFF61 + (c - 0x21));
			} else if (c < 0x80) {
				buf_addc(out, (char)c);
			} else {
				buf_add(out, utf8_fffd, 3);
				r.ok = false;
			}
			i++;
			continue;
		}
		if (mode == M_X0208 || mode == M_X0212) {
			if (c >= 0x21 && c <= 0x7E) {
				if (i + 1 < len && p[i + 1] >= 0x21 && p[i + 1] <= 0x7E && mode == M_X0208) {
					uint32_t cp = jis0208_lookup(c, p[i + 1]);
					jis_flush(&r);
					if (cp) {
						utf8_put(out, cp);
					} else {
						buf_add(out, utf8_fffd, 3);
						r.ok = false;
					}
					i += 2;
				} else if (i + 1 < len && p[i + 1] >= 0x21 && p[i + 1] <= 0x7E) {
					unsigned char e[3];
					size_t n = 0;
					e[n++] = 0x8F; /* JIS X 0212 through EUC-JP's G3 */
					e[n++] = (unsigned char)(c | 0x80);
					e[n++] = (unsigned char)(p[i + 1] | 0x80);
					jis_add(&r, e, n);
					i += 2;
				} else {
					jis_flush(&r);
					buf_add(out, utf8_fffd, 3);
					r.ok = false;
					i++;
				}
				continue;
			}
			jis_flush(&r);
			/* a space or control inside a 2-byte run: pass it through */
		}
		if (c >= 0x80) {
			buf_add(out, utf8_fffd, 3);
			r.ok = false;
		} else if (mode == M_ROMAN && c == 0x5C) {
			utf8_put(out, 0xA5);
		} else if (mode == M_ROMAN && c == 0x7E) {
			utf8_put(out, 0x203E);
		} else {
			buf_addc(out, (char)c);
		}
		i++;
	}
	jis_flush(&r);
	return r.ok;
}

static bool auto_to_utf8(const char *in, size_t len, struct hk_buf *out);

static bool
jis_to_utf8(const char *in, size_t len, const char *fallback_name, struct hk_buf *out)
{
	bool esc = memchr(in, 0x1B, len) != NULL || memchr(in, 0x0E, len) != NULL;
	if (!esc) {
		/* 8-bit text under an ISO-2022-JP label: mislabelled CP932/EUC/UTF-8 */
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)in[i] >= 0x80) {
				auto_to_utf8(in, len, out);
				return false;
			}
		buf_add(out, in, len);
		return true;
	}
	size_t mark = out->len;
	bool unknown;
	bool ok = jis_decode(in, len, out, &unknown);
	if (!unknown)
		return ok;
	out->len = mark;
	out->data[mark] = '\0';
	iconv_t cd = cs_open(fallback_name);
	if (cd == ICONV_BAD) {
		utf8_repair(in, len, out);
		return false;
	}
	return conv_run(cd, in, len, out, ICONV_BAD);
}

/* --- guessing ------------------------------------------------------------------ */

const char *
charset_guess(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	bool high = false;
	for (size_t i = 0; i < len; i++)
		if (p[i] >= 0x80) {
			high = true;
			break;
		}
	if (!high) {
		for (const char *e = memchr(s, 0x1B, len); e; e = memchr(e + 1, 0x1B, len - (size_t)(e + 1 - s))) {
			size_t rest = len - (size_t)(e - s);
			if (rest >= 3 && (e[1] == '$' || (e[1] == '(' && (e[2] == 'I' || e[2] == 'J'))))
				return "ISO-2022-JP";
			if (rest < 2)
				break;
		}
		return "US-ASCII";
	}
	if (utf8_valid(s, len))
		return "UTF-8";

	/* Read the bytes as CP932 and as EUC-JP; count errors and kana. */
	size_t sj_bad = 0, sj_kana = 0, sj_half = 0;
	for (size_t i = 0; i < len;) {
		unsigned c = p[i];
		if (c < 0x80) {
			i++;
		} else if (c >= 0xA1 && c <= 0xDF) {
			sj_half++;
			i++;
		} else if ((c >= 0x81 && c <= 0x9F) || (c >= 0xE0 && c <= 0xFC)) {
			unsigned t = i + 1 < len ? p[i + 1] : 0;
			if ((t >= 0x40 && t <= 0x7E) || (t >= 0x80 && t <= 0xFC)) {
				if ((c == 0x82 && t >= 0x9F && t <= 0xF1) || (c == 0x83 && t >= 0x40 && t <= 0x96) ||
				    (c >= 0x88 && c <= 0x9F))
					sj_kana++;
				i += 2;
			} else {
				sj_bad++;
				i++;
			}
		} else {
			sj_bad++;
			i++;
		}
	}
	size_t euc_bad = 0, euc_kana = 0;
	for (size_t i = 0; i < len;) {
		unsigned c = p[i];
		unsigned t = i + 1 < len ? p[i + 1] : 0;
		if (c < 0x80) {
			i++;
		} else if (c >= 0xA1 && c <= 0xFE && t >= 0xA1 && t <= 0xFE) {
			if (c == 0xA4 || c == 0xA5 || (c >= 0xB0 && c <= 0xF4))
				euc_kana++;
			i += 2;
		} else if (c == 0x8E && t >= 0xA1 && t <= 0xDF) {
			i += 2;
		} else if (c == 0x8F && t >= 0xA1 && t <= 0xFE && i + 2 < len && p[i + 2] >= 0xA1 && p[i + 2] <= 0xFE) {
			i += 3;
		} else {
			euc_bad++;
			i++;
		}
	}
	/* Valid both ways happens to EUC text (its bytes also read as CP932
	 * half-width katakana and E0-FC pairs), rarely to real CP932 text,
	 * which uses lead bytes 81-9F: half-width katakana weigh for EUC. */
	if (sj_bad == 0 && euc_bad == 0)
		return euc_kana * 2 + sj_half > sj_kana * 2 ? "EUC-JP" : "CP932";
	if (sj_bad == 0 && sj_kana > 0)
		return "CP932";
	if (euc_bad == 0 && euc_kana > 0)
		return "EUC-JP";
	return "ISO-8859-1";
}

static bool
auto_to_utf8(const char *in, size_t len, struct hk_buf *out)
{
	const char *g = charset_guess(in, len);
	if (strcmp(g, "US-ASCII") == 0 || strcmp(g, "UTF-8") == 0) {
		buf_add(out, in, len);
		return true;
	}
	if (strcmp(g, "ISO-2022-JP") == 0)
		return jis_to_utf8(in, len, "ISO-2022-JP-2", out);
	if (strcmp(g, "ISO-8859-1") == 0) {
		latin1_to_utf8(in, len, out);
		return false;
	}
	iconv_t cd = cs_open(strcmp(g, "EUC-JP") == 0 ? "EUC-JP-MS" : g);
	if (cd == ICONV_BAD) {
		latin1_to_utf8(in, len, out);
		return false;
	}
	conv_run(cd, in, len, out, ICONV_BAD);
	return false;
}

/* --- labels ------------------------------------------------------------------ */

/* Lower-cases the label into buf: trims blanks and quotes, drops an RFC 2231
 * "*lang" suffix. Returns false when it is not a plausible charset name. */
static bool
label_normalize(const char *cs, size_t n, char buf[CHARSET_LABEL_MAX + 1])
{
	while (n && (*cs == ' ' || *cs == '\t' || *cs == '"' || *cs == '\''))
		cs++, n--;
	while (n && (cs[n - 1] == ' ' || cs[n - 1] == '\t' || cs[n - 1] == '"' || cs[n - 1] == '\''))
		n--;
	const char *star = memchr(cs, '*', n);
	if (star)
		n = (size_t)(star - cs);
	if (n == 0 || n > CHARSET_LABEL_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = cs[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.' || c == ':' || c == '+'))
			return false;
		buf[i] = ascii_lower(c);
	}
	buf[n] = '\0';
	return true;
}

static _Thread_local int cs_aliases_sorted = -1; /* checked once per thread */

static const struct cs_alias *
alias_find(const char *label)
{
	if (cs_aliases_sorted < 0) {
		cs_aliases_sorted = 1;
		for (size_t i = 1; i < HK_ARRAY_LEN(cs_aliases); i++)
			if (strcmp(cs_aliases[i - 1].label, cs_aliases[i].label) >= 0)
				cs_aliases_sorted = 0;
	}
	if (!cs_aliases_sorted) {
		/* someone added a label out of order: still correct, just slower */
		for (size_t i = 0; i < HK_ARRAY_LEN(cs_aliases); i++)
			if (strcmp(cs_aliases[i].label, label) == 0)
				return &cs_aliases[i];
		return NULL;
	}
	size_t lo = 0, hi = HK_ARRAY_LEN(cs_aliases);
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(cs_aliases[mid].label, label);
		if (c == 0)
			return &cs_aliases[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool
charset_to_utf8(const char *charset, size_t charset_len, const char *in, size_t len, struct hk_buf *out)
{
	char label[CHARSET_LABEL_MAX + 1];

	buf_reserve(out, len);
	if (charset_len == 0 || charset == NULL) {
		/* no label: auto-detect, and only a guess at legacy bytes is an error */
		return auto_to_utf8(in, len, out);
	}
	if (!label_normalize(charset, charset_len, label)) {
		auto_to_utf8(in, len, out);
		return false;
	}
	const struct cs_alias *a = alias_find(label);
	enum cs_kind kind = a ? a->kind : CS_ICONV;
	const char *name = a && a->name ? a->name : label;

	switch (kind) {
	case CS_UTF8:
		return utf8_repair(in, len, out);
	case CS_LATIN1:
		latin1_to_utf8(in, len, out);
		return true;
	case CS_AUTO: {
		bool ok = auto_to_utf8(in, len, out);
		/* "us-ascii" text with 8-bit bytes is mislabelled even when it decodes */
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)in[i] >= 0x80)
				return false;
		return ok;
	}
	case CS_JIS:
		return jis_to_utf8(in, len, name, out);
	case CS_ICONV:
	case CS_UNKNOWN:
		break;
	}
	iconv_t cd = cs_open(name);
	if (cd == ICONV_BAD) {
		auto_to_utf8(in, len, out);
		return false;
	}
	return conv_run(cd, in, len, out, ICONV_BAD);
}

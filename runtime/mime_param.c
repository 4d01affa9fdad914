/*
 * mime_param.c - media type, disposition and parameter parsing for
 * Content-Type and Content-Disposition (see mime_param.h).
 *
 * Pipeline: mime_parser.c takes the type, the transfer encoding and the
 * boundary from here while it builds the part tree; message.c asks for
 * charset, filename and name when a rule wants text or attachments.
 *
 * Syntax accepted (tolerant, as mail clients are): parameters separated by
 * ';'; a value is a quoted string (a backslash escapes only '"' and '\',
 * since Windows mailers put paths in unescaped; an unterminated quote runs
 * to the end) or everything up to the next ';' without trailing blanks.
 * The first occurrence of a parameter wins.
 *
 * Limits: MIME_PARAM_MAX_SECTIONS continuation sections; later ones and
 * sections after a gap are ignored. Every scan is linear in the value.
 *
 * SECURITY: values are hostile header text. Section numbers are parsed with
 * an overflow check and bounded before they index anything.
 */
#include "mime_param.h"

#include <stdlib.h>
#include <string.h>

#include "charset.h"
#include "message.h"
#include "mime_decode.h"
#include "rfc2047.h"

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* RFC 2045 token characters: printable ASCII but tspecials */
static const unsigned char token_chars[256] = {
	['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,
	['^'] = 1, ['_'] = 1, ['`'] = 1, ['{'] = 1, ['|'] = 1, ['}'] = 1, ['~'] = 1,
	['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1, ['8'] = 1, ['9'] = 1,
	['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1,
	['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1,
	['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
	['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1,
	['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
	['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static bool
is_token_char(unsigned char c)
{
	return token_chars[c] != 0;
}

bool
mime_param_type(const char *v, size_t len, struct hk_str *type_r, struct hk_str *subtype_r)
{
	size_t i = 0;
	while (i < len && is_wsp(v[i]))
		i++;
	size_t t = i;
	while (i < len && is_token_char((unsigned char)v[i]))
		i++;
	size_t te = i;
	while (i < len && is_wsp(v[i]))
		i++;
	if (te == t || i >= len || v[i] != '/')
		return false;
	i++;
	while (i < len && is_wsp(v[i]))
		i++;
	size_t s = i;
	while (i < len && is_token_char((unsigned char)v[i]))
		i++;
	if (i == s)
		return false;
	*type_r = (struct hk_str){ v + t, te - t };
	*subtype_r = (struct hk_str){ v + s, i - s };
	return true;
}

struct hk_str
mime_param_token(const char *v, size_t len)
{
	size_t i = 0;
	while (i < len && is_wsp(v[i]))
		i++;
	size_t t = i;
	while (i < len && is_token_char((unsigned char)v[i]))
		i++;
	return (struct hk_str){ v + t, i - t };
}

struct param {
	struct hk_str name;
	const char *val; /* inside the quotes when quoted */
	size_t vlen;
	bool quoted;
};

/* Offset of the first ';' outside a quoted string, or len. */
static size_t
params_start(const char *v, size_t len)
{
	bool q = false;
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '"')
			q = !q;
		else if (v[i] == ';' && !q)
			return i;
	}
	return len;
}

/* Reads the parameter at or after *ip; false at the end. */
static bool
param_next(const char *v, size_t len, size_t *ip, struct param *p)
{
	size_t i = *ip;
	for (;;) {
		while (i < len && (v[i] == ';' || is_wsp(v[i])))
			i++;
		if (i >= len) {
			*ip = len;
			return false;
		}
		size_t n = i;
		while (i < len && v[i] != '=' && v[i] != ';')
			i++;
		size_t ne = i;
		while (ne > n && is_wsp(v[ne - 1]))
			ne--;
		if (i >= len || v[i] == ';')
			continue; /* attribute without a value */
		p->name = (struct hk_str){ v + n, ne - n };
		i++; /* '=' */
		while (i < len && is_wsp(v[i]))
			i++;
		if (i < len && v[i] == '"') {
			size_t s = ++i;
			while (i < len && v[i] != '"') {
				if (v[i] == '\\' && i + 1 < len && (v[i + 1] == '"' || v[i + 1] == '\\'))
					i++;
				i++;
			}
			p->val = v + s;
			p->vlen = i - s;
			p->quoted = true;
			while (i < len && v[i] != ';')
				i++;
		} else {
			size_t s = i;
			while (i < len && v[i] != ';')
				i++;
			size_t e = i;
			while (e > s && is_wsp(v[e - 1]))
				e--;
			p->val = v + s;
			p->vlen = e - s;
			p->quoted = false;
		}
		*ip = i;
		if (p->name.len == 0)
			continue;
		return true;
	}
}

static void
param_value(const struct param *p, struct hk_buf *out)
{
	if (!p->quoted) {
		buf_add(out, p->val, p->vlen);
		return;
	}
	buf_reserve(out, p->vlen);
	for (size_t i = 0; i < p->vlen; i++) {
		if (p->val[i] == '\\' && i + 1 < p->vlen && (p->val[i + 1] == '"' || p->val[i + 1] == '\\'))
			i++;
		out->data[out->len++] = p->val[i];
	}
	out->data[out->len] = '\0';
}

bool
mime_param_raw(const char *v, size_t len, const char *name, struct hk_buf *out)
{
	struct param p;
	size_t i = params_start(v, len);
	while (param_next(v, len, &i, &p)) {
		if (str_ieq_cstr(p.name, name)) {
			param_value(&p, out);
			return true;
		}
	}
	return false;
}

bool
mime_param_slice(const char *v, size_t len, const char *name, struct hk_str *val_r, bool *escaped_r)
{
	struct param p;
	size_t i = params_start(v, len);
	while (param_next(v, len, &i, &p)) {
		if (str_ieq_cstr(p.name, name)) {
			*val_r = (struct hk_str){ p.val, p.vlen };
			*escaped_r = p.quoted && memchr(p.val, '\\', p.vlen) != NULL;
			return true;
		}
	}
	return false;
}

enum pform { PF_NONE, PF_PLAIN, PF_EXT, PF_SECTION, PF_SECTION_EXT };

/* Classifies an attribute against `name`: name, name*, name*N, name*N*. */
static enum pform
param_form(struct hk_str attr, const char *name, size_t nlen, unsigned *section_r)
{
	if (attr.len < nlen || !str_ieq((struct hk_str){ attr.ptr, nlen }, (struct hk_str){ name, nlen }))
		return PF_NONE;
	if (attr.len == nlen)
		return PF_PLAIN;
	const char *s = attr.ptr + nlen, *e = attr.ptr + attr.len;
	if (*s != '*')
		return PF_NONE;
	s++;
	if (s == e)
		return PF_EXT;
	unsigned n = 0;
	const char *d = s;
	while (s < e && *s >= '0' && *s <= '9') {
		if (n > 100000)
			return PF_NONE;
		n = n * 10 + (unsigned)(*s - '0');
		s++;
	}
	if (s == d)
		return PF_NONE;
	*section_r = n;
	if (s == e)
		return PF_SECTION;
	if (*s == '*' && s + 1 == e)
		return PF_SECTION_EXT;
	return PF_NONE;
}

/* "charset'lang'data": splits off the charset; no quotes means no charset. */
static void
ext_split(const char *v, size_t n, struct hk_str *cs_r, struct hk_str *data_r)
{
	const char *q1 = memchr(v, '\'', n);
	const char *q2 = q1 ? memchr(q1 + 1, '\'', (size_t)(v + n - q1 - 1)) : NULL;
	if (q1 == NULL || q2 == NULL) {
		*cs_r = (struct hk_str){ v, 0 };
		*data_r = (struct hk_str){ v, n };
		return;
	}
	*cs_r = (struct hk_str){ v, (size_t)(q1 - v) };
	*data_r = (struct hk_str){ q2 + 1, (size_t)(v + n - q2 - 1) };
}

static unsigned
bytes_to_utf8(struct hk_str cs, const char *b, size_t n, struct hk_buf *out)
{
	if (cs.len == 0)
		return rfc2047_decode_raw(b, n, out) & ~(unsigned)HK_MSG_ERR_8BIT_HEADER;
	return charset_to_utf8(cs.ptr, cs.len, b, n, out) ? 0 : HK_MSG_ERR_CHARSET;
}

bool
mime_param_get(const char *v, size_t len, const char *name, struct hk_buf *out, unsigned *errs_r)
{
	struct param p, plain, ext;
	struct param sec[MIME_PARAM_MAX_SECTIONS];
	bool sec_enc[MIME_PARAM_MAX_SECTIONS];
	uint64_t have = 0;
	bool have_plain = false, have_ext = false;
	size_t nlen = strlen(name);
	unsigned errs = 0;

	size_t i = params_start(v, len);
	while (param_next(v, len, &i, &p)) {
		unsigned n = 0;
		switch (param_form(p.name, name, nlen, &n)) {
		case PF_PLAIN:
			if (!have_plain)
				plain = p, have_plain = true;
			break;
		case PF_EXT:
			if (!have_ext)
				ext = p, have_ext = true;
			break;
		case PF_SECTION:
		case PF_SECTION_EXT:
			if (n < MIME_PARAM_MAX_SECTIONS && !(have & (1ull << n))) {
				sec[n] = p;
				sec_enc[n] = param_form(p.name, name, nlen, &n) == PF_SECTION_EXT;
				have |= 1ull << n;
			}
			break;
		case PF_NONE:
			break;
		}
	}

	struct hk_buf tmp, bytes, csb;
	buf_init(&tmp);
	buf_init(&bytes);
	buf_init(&csb);
	bool found = true;
	if (have_ext) {
		struct hk_str cs, data;
		param_value(&ext, &tmp);
		ext_split(tmp.data, tmp.len, &cs, &data);
		if (!mime_percent_decode(data.ptr, data.len, &bytes))
			errs |= HK_MSG_ERR_ENCODING;
		errs |= bytes_to_utf8(cs, bytes.data, bytes.len, out);
	} else if (have & 1) {
		bool any_enc = false;
		for (unsigned k = 0; k < MIME_PARAM_MAX_SECTIONS && (have & (1ull << k)); k++) {
			buf_reset(&tmp);
			param_value(&sec[k], &tmp);
			struct hk_str data = { tmp.data, tmp.len };
			if (sec_enc[k]) {
				any_enc = true;
				if (k == 0) {
					struct hk_str c;
					ext_split(tmp.data, tmp.len, &c, &data);
					buf_add(&csb, c.ptr, c.len); /* tmp is reused below */
				}
				if (!mime_percent_decode(data.ptr, data.len, &bytes))
					errs |= HK_MSG_ERR_ENCODING;
			} else {
				buf_add(&bytes, data.ptr, data.len);
			}
		}
		struct hk_str cs = { csb.data ? csb.data : "", csb.len };
		if (any_enc)
			errs |= bytes_to_utf8(cs, bytes.data ? bytes.data : "", bytes.len, out);
		else
			errs |= rfc2047_decode(bytes.data ? bytes.data : "", bytes.len, out) & ~(unsigned)HK_MSG_ERR_8BIT_HEADER;
	} else if (have_plain) {
		param_value(&plain, &tmp);
		errs |= rfc2047_decode(tmp.data ? tmp.data : "", tmp.len, out) & ~(unsigned)HK_MSG_ERR_8BIT_HEADER;
	} else {
		found = false;
	}
	buf_fini(&tmp);
	buf_fini(&bytes);
	buf_fini(&csb);
	if (errs_r)
		*errs_r |= errs;
	return found;
}

/* A joined continuation while mime_param_list collects: its sections by number. */
struct param_cont {
	struct hk_str base; /* the name without "*N[*]" */
	size_t slot;        /* its index in the output */
	bool encoded;       /* section 0 is "*0*" */
	uint64_t have;
	struct param sec[MIME_PARAM_MAX_SECTIONS];
};

static struct hk_str
lower_dup(struct arena *a, const char *s, size_t n, const char *suffix)
{
	size_t sl = strlen(suffix);
	char *d = arena_alloc(a, n + sl + 1);
	for (size_t i = 0; i < n; i++)
		d[i] = ascii_lower(s[i]);
	memcpy(d + n, suffix, sl + 1);
	return (struct hk_str){ d, n + sl };
}

size_t
mime_param_list(const char *v, size_t len, struct arena *a, struct mime_param_kv *out, size_t max)
{
	struct param p;
	struct param_cont *conts = NULL;
	size_t nconts = 0, capconts = 0, n = 0, scanned = 0;
	size_t i = params_start(v, len);
	struct hk_buf tmp;
	buf_init(&tmp);
	while (scanned++ < MIME_PARAM_LIST_SCAN && param_next(v, len, &i, &p)) {
		/* name*N or name*N*: a section */
		const char *e = p.name.ptr + p.name.len;
		const char *s = e;
		bool sec_enc = false;
		if (s > p.name.ptr && s[-1] == '*')
			s--, sec_enc = true;
		const char *d = s;
		while (d > p.name.ptr && d[-1] >= '0' && d[-1] <= '9')
			d--;
		unsigned secno = 0;
		bool section = d < s && d > p.name.ptr + 1 && d[-1] == '*' && s - d <= 3;
		if (section) {
			for (const char *q = d; q < s; q++)
				secno = secno * 10 + (unsigned)(*q - '0');
			section = secno < MIME_PARAM_MAX_SECTIONS;
		}
		if (section) {
			struct hk_str base = { p.name.ptr, (size_t)(d - 1 - p.name.ptr) };
			struct param_cont *c = NULL;
			for (size_t k = 0; k < nconts && !c; k++)
				if (str_ieq(conts[k].base, base))
					c = &conts[k];
			if (c == NULL) {
				if (n >= max)
					continue;
				conts = xgrow(conts, &capconts, nconts + 1, sizeof(*conts));
				c = &conts[nconts++];
				c->base = base;
				c->slot = n++;
				c->encoded = false;
				c->have = 0;
				out[c->slot].name = base; /* fixed below */
			}
			if (!(c->have & (1ull << secno))) {
				c->have |= 1ull << secno;
				c->sec[secno] = p;
				if (secno == 0)
					c->encoded = sec_enc;
			}
			continue;
		}
		bool dup = false;
		for (size_t k = 0; k < n && !dup; k++)
			dup = str_ieq(out[k].name, p.name);
		for (size_t k = 0; k < nconts && !dup; k++)
			dup = str_ieq(conts[k].base, p.name);
		if (dup || n >= max)
			continue;
		buf_reset(&tmp);
		param_value(&p, &tmp);
		out[n].name = lower_dup(a, p.name.ptr, p.name.len, "");
		out[n].value = arena_str(a, tmp.data ? tmp.data : "", tmp.len);
		n++;
	}
	for (size_t k = 0; k < nconts; k++) {
		struct param_cont *c = &conts[k];
		buf_reset(&tmp);
		for (unsigned q = 0; q < MIME_PARAM_MAX_SECTIONS && (c->have & (1ull << q)); q++)
			param_value(&c->sec[q], &tmp);
		out[c->slot].name = lower_dup(a, c->base.ptr, c->base.len, c->encoded ? "*" : "");
		out[c->slot].value = arena_str(a, tmp.data ? tmp.data : "", tmp.len);
	}
	free(conts);
	buf_fini(&tmp);
	return n;
}

/*
 * spf_record.c - the syntax of SPF records (RFC 7208 4.5, 4.6, 5, 6, 7.1,
 * 12 ABNF): record selection, the parse of every term into struct
 * spf_term, IP networks and CIDR lengths, and CIDR matching.
 *
 * Place: spf.c parses a record as soon as its TXT answer arrives; the
 * whole record is checked before its first term is evaluated, so a
 * syntax error anywhere is a permerror (4.6).
 *
 * Ownership: terms are slices of the record text (see spf_int.h).
 * Limits: a record is at most one TXT record (< 64 KiB); the term array
 * grows with the record. CIDR lengths have no leading zeros, at most
 * 32 (ip4) and 128 (ip6).
 *
 * SECURITY: records are attacker-written and may hold any byte, NUL
 * included: all parsing is by length, and anything outside the grammar
 * (control characters, 8-bit bytes, unknown mechanisms, modifiers that
 * do not follow name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." )) fails.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "spf_int.h"

bool
spf_is_record(const char *txt, size_t len)
{
	/* version = "v=spf1", then SP or the end (case-insensitive) */
	return len >= 6 && spf_ascii_ieq(txt, "v=spf1", 6) && (len == 6 || txt[6] == ' ');
}

static bool
is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_alnum(char c)
{
	return is_alpha(c) || is_digit(c);
}

/*
 * toplabel = ( *alphanum ALPHA *alphanum )
 *          / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
 */
static bool
toplabel_ok(const char *s, size_t n)
{
	bool alpha = false, dash = false;

	if (n == 0 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '-')
			dash = true;
		else if (is_alpha(s[i]))
			alpha = true;
		else if (!is_digit(s[i]))
			return false;
	}
	return alpha || dash;
}

/* domain-spec = macro-string domain-end
 * domain-end  = ( "." toplabel [ "." ] ) / macro-expand */
static bool
domain_spec_ok(const char *s, size_t n, bool *uses_p_r)
{
	bool ends_expand = false;

	if (n == 0 || !spf_macro_scan(s, n, false, uses_p_r, &ends_expand))
		return false;
	if (ends_expand)
		return true;
	size_t e = n;
	if (s[e - 1] == '.')
		e--;
	const char *dot = NULL;
	for (size_t i = e; i > 0; i--)
		if (s[i - 1] == '.') {
			dot = s + i - 1;
			break;
		}
	if (!dot)
		return false;
	return toplabel_ok(dot + 1, (size_t)(s + e - dot - 1));
}

/* "/" 1*DIGIT without leading zeros, value <= max */
static bool
cidr_value(const char *s, size_t n, unsigned max, unsigned *out)
{
	if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > max)
		return false;
	*out = v;
	return true;
}

/*
 * dual-cidr-length = [ ip4-cidr-length ] [ "/" ip6-cidr-length ], taken
 * off the end of s[0..*n); *n becomes what is left before it.
 */
static bool
strip_dual_cidr(const char *s, size_t *n, unsigned *c4, unsigned *c6)
{
	size_t e = *n, j;

	j = e;
	while (j > 0 && is_digit(s[j - 1]))
		j--;
	if (j < e && j >= 2 && s[j - 1] == '/' && s[j - 2] == '/') {
		if (!cidr_value(s + j, e - j, 128, c6))
			return false;
		e = j - 2;
	}
	j = e;
	while (j > 0 && is_digit(s[j - 1]))
		j--;
	if (j < e && j >= 1 && s[j - 1] == '/') {
		if (!cidr_value(s + j, e - j, 32, c4))
			return false;
		e = j - 1;
	}
	*n = e;
	return true;
}

/* ip4-network = qnum "." qnum "." qnum "." qnum, qnum 0..255 without
 * leading zeros */
static bool
ip4_parse(const char *s, size_t n, uint8_t out[4])
{
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		if (k) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		size_t st = i;
		unsigned v = 0;
		while (i < n && is_digit(s[i]) && i - st < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == st || (i - st > 1 && s[st] == '0') || v > 255)
			return false;
		out[k] = (uint8_t)v;
	}
	return i == n;
}

static bool
ip6_parse(const char *s, size_t n, uint8_t out[16])
{
	char tmp[64];

	if (n == 0 || n >= sizeof(tmp))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F') ||
		      s[i] == ':' || s[i] == '.'))
			return false;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return inet_pton(AF_INET6, tmp, out) == 1;
}

bool
spf_cidr_match(int family, const uint8_t *addr, const uint8_t *net, unsigned prefix)
{
	unsigned bits = family == AF_INET ? 32 : 128;

	if (prefix > bits)
		return false;
	unsigned full = prefix / 8, rest = prefix % 8;
	if (memcmp(addr, net, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (addr[full] & mask) == (net[full] & mask);
}

static const struct {
	const char *name;
	enum spf_term_kind kind;
} mechanisms[] = {
	{ "all", TERM_ALL },	 { "include", TERM_INCLUDE }, { "a", TERM_A },	    { "mx", TERM_MX },
	{ "ptr", TERM_PTR },	 { "ip4", TERM_IP4 },	      { "ip6", TERM_IP6 }, { "exists", TERM_EXISTS },
};

/*
 * term      = directive / modifier
 * directive = [ qualifier ] mechanism
 * modifier  = redirect / explanation / unknown-modifier
 * Returns NULL on success, else the reason.
 */
static const char *
parse_term(const char *s, size_t n, struct spf_term *t, struct spf_record *r, size_t index)
{
	bool has_qual = false;

	memset(t, 0, sizeof(*t));
	t->text = s;
	t->text_len = n;
	t->qual = '+';
	t->cidr4 = 32;
	t->cidr6 = 128;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return "character outside printable ASCII";
	if (strchr("+-~?", s[0])) {
		t->qual = s[0];
		has_qual = true;
		s++;
		n--;
	}
	if (n == 0 || !is_alpha(s[0]))
		return "term does not start with a letter";
	size_t i = 1;
	while (i < n && (is_alnum(s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
		i++;
	const char *name = s;
	size_t nlen = i;
	const char *rest = s + i;
	size_t rlen = n - i;

	if (rlen && rest[0] == '=') {
		if (has_qual)
			return "qualifier on a modifier";
		const char *v = rest + 1;
		size_t vlen = rlen - 1;
		if (nlen == 8 && spf_ascii_ieq(name, "redirect", 8)) {
			if (r->redirect >= 0)
				return "redirect= given twice";
			if (!domain_spec_ok(v, vlen, &t->spec_uses_p))
				return "bad redirect= domain";
			t->kind = TERM_REDIRECT;
			r->redirect = (int)index;
		} else if (nlen == 3 && spf_ascii_ieq(name, "exp", 3)) {
			if (r->exp >= 0)
				return "exp= given twice";
			if (!domain_spec_ok(v, vlen, &t->spec_uses_p))
				return "bad exp= domain";
			t->kind = TERM_EXP;
			r->exp = (int)index;
		} else {
			if (!spf_macro_check(v, vlen, false, NULL))
				return "bad macro in modifier";
			t->kind = TERM_UNKNOWN_MOD;
			return NULL;
		}
		t->spec = v;
		t->spec_len = vlen;
		return NULL;
	}

	size_t m;
	for (m = 0; m < HK_ARRAY_LEN(mechanisms); m++)
		if (strlen(mechanisms[m].name) == nlen && spf_ascii_ieq(name, mechanisms[m].name, nlen))
			break;
	if (m == HK_ARRAY_LEN(mechanisms))
		return "unknown mechanism";
	t->kind = mechanisms[m].kind;

	switch (t->kind) {
	case TERM_ALL:
		return rlen ? "argument to all" : NULL;
	case TERM_INCLUDE:
	case TERM_EXISTS:
		if (rlen < 1 || rest[0] != ':' || !domain_spec_ok(rest + 1, rlen - 1, &t->spec_uses_p))
			return "bad domain-spec";
		t->spec = rest + 1;
		t->spec_len = rlen - 1;
		return NULL;
	case TERM_PTR:
		if (rlen == 0)
			return NULL;
		if (rest[0] != ':' || !domain_spec_ok(rest + 1, rlen - 1, &t->spec_uses_p))
			return "bad domain-spec";
		t->spec = rest + 1;
		t->spec_len = rlen - 1;
		return NULL;
	case TERM_A:
	case TERM_MX: {
		if (rlen == 0)
			return NULL;
		if (rest[0] == '/') {
			size_t left = rlen;
			if (!strip_dual_cidr(rest, &left, &t->cidr4, &t->cidr6) || left != 0)
				return "bad CIDR length";
			return NULL;
		}
		if (rest[0] != ':')
			return "unknown mechanism";
		size_t left = rlen - 1;
		if (!strip_dual_cidr(rest + 1, &left, &t->cidr4, &t->cidr6))
			return "bad CIDR length";
		if (!domain_spec_ok(rest + 1, left, &t->spec_uses_p))
			return "bad domain-spec";
		t->spec = rest + 1;
		t->spec_len = left;
		return NULL;
	}
	case TERM_IP4:
	case TERM_IP6: {
		bool v4 = t->kind == TERM_IP4;
		if (rlen < 2 || rest[0] != ':')
			return "missing network";
		const char *net = rest + 1;
		const char *slash = memchr(net, '/', rlen - 1);
		size_t netlen = slash ? (size_t)(slash - net) : rlen - 1;
		if (v4 ? !ip4_parse(net, netlen, t->net) : !ip6_parse(net, netlen, t->net))
			return "bad IP network";
		if (slash) {
			const char *c = slash + 1;
			size_t clen = (size_t)(rest + rlen - c);
			if (!cidr_value(c, clen, v4 ? 32 : 128, v4 ? &t->cidr4 : &t->cidr6))
				return "bad CIDR length";
		}
		return NULL;
	}
	default:
		return "unknown mechanism";
	}
}

/* record = version terms *SP ; terms = *( 1*SP ( directive / modifier ) ) */
bool
spf_record_parse(const char *rec, size_t len, struct spf_record *out, const char **why_r, const char **bad_r,
		 size_t *bad_len_r)
{
	memset(out, 0, sizeof(*out));
	out->redirect = -1;
	out->exp = -1;
	if (!spf_is_record(rec, len)) {
		if (why_r)
			*why_r = "not an SPF record";
		return false;
	}
	size_t i = 6;
	for (;;) {
		while (i < len && rec[i] == ' ')
			i++;
		if (i >= len)
			break;
		size_t st = i;
		while (i < len && rec[i] != ' ')
			i++;
		out->terms = xgrow(out->terms, &out->cap, out->nterms + 1, sizeof(*out->terms));
		const char *why = parse_term(rec + st, i - st, &out->terms[out->nterms], out, out->nterms);
		if (why) {
			if (why_r)
				*why_r = why;
			if (bad_r)
				*bad_r = rec + st;
			if (bad_len_r)
				*bad_len_r = i - st;
			spf_record_fini(out);
			return false;
		}
		out->nterms++;
	}
	return true;
}

void
spf_record_fini(struct spf_record *r)
{
	free(r->terms);
	r->terms = NULL;
	r->nterms = r->cap = 0;
}

bool
spf_record_check(const char *rec, size_t len, const char **why_r)
{
	struct spf_record r;
	if (!spf_record_parse(rec, len, &r, why_r, NULL, NULL))
		return false;
	spf_record_fini(&r);
	return true;
}

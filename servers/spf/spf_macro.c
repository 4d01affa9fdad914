/*
 * spf_macro.c - SPF macro strings (RFC 7208 7): the syntax check, the
 * expansion (letters, the digit and "r" transformers, delimiters, URL
 * escaping for upper-case letters) and the finishing of an expanded
 * domain name (7.3: trailing dot, left truncation to 253 bytes).
 *
 * Place: called by spf_record.c (syntax, at parse time, so an error
 * anywhere in a record is a permerror before any term runs) and by spf.c
 * (expansion, when a term is evaluated).
 *
 * Ownership: output goes to the caller's struct hk_buf.
 * Limits: one expansion produces at most SPF_MAX_EXPANSION bytes; the
 * digit transformer is read up to 3 digits of value (more parts than
 * that cannot exist in a value of our sizes).
 *
 * SECURITY: the macro strings come from SPF records (attacker-written)
 * and the values from the SMTP client (HELO, MAIL FROM): the scanner
 * accepts exactly the RFC grammar, and the expansion is bounded.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spf_int.h"

#define DELIMS ".-+,/_="

static bool
is_delim(char c)
{
	return c && strchr(DELIMS, c) != NULL;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * macro-string = *( macro-expand / macro-literal )
 * macro-expand = ( "%{" macro-letter transformers *delimiter "}" )
 *                / "%%" / "%_" / "%-"
 * macro-literal = %x21-24 / %x26-7E
 * transformers = *DIGIT [ "r" ]     (a DIGIT value must be nonzero)
 * explain-string = *( macro-string / SP )
 */
bool
spf_macro_scan(const char *s, size_t len, bool exp, bool *uses_p_r, bool *ends_expand_r)
{
	bool uses_p = false, ends = false;
	size_t i = 0;

	while (i < len) {
		unsigned char ch = (unsigned char)s[i];
		ends = false;
		if (ch == '%') {
			if (i + 1 >= len)
				return false;
			char n = s[i + 1];
			if (n == '%' || n == '_' || n == '-') {
				i += 2;
				ends = true;
				continue;
			}
			if (n != '{' || i + 2 >= len)
				return false;
			i += 2;
			char l = ascii_lower(s[i]);
			if (!(l && strchr("slodiphv", l)) && !(exp && l && strchr("crt", l)))
				return false;
			if (l == 'p')
				uses_p = true;
			i++;
			size_t nd = 0;
			bool nonzero = false;
			for (; i < len && is_digit(s[i]); i++, nd++)
				nonzero |= s[i] != '0';
			if (nd && !nonzero)
				return false;
			if (i < len && (s[i] == 'r' || s[i] == 'R'))
				i++;
			while (i < len && is_delim(s[i]))
				i++;
			if (i >= len || s[i] != '}')
				return false;
			i++;
			ends = true;
			continue;
		}
		if (ch == ' ' && exp) {
			i++;
			continue;
		}
		if (ch < 0x21 || ch > 0x7e)
			return false;
		i++;
	}
	if (uses_p_r)
		*uses_p_r = uses_p;
	if (ends_expand_r)
		*ends_expand_r = ends;
	return true;
}

bool
spf_macro_check(const char *s, size_t len, bool exp, bool *uses_p_r)
{
	return spf_macro_scan(s, len, exp, uses_p_r, NULL);
}

/* unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986) */
static bool
unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

/* The value of a macro letter, in `tmp` when it has to be built. */
static const char *
letter_value(const struct spf_macro_env *env, char l, char *tmp, size_t tmpsize)
{
	switch (l) {
	case 's': return env->sender ? env->sender : "";
	case 'l': return env->local ? env->local : "postmaster";
	case 'o': return env->sender_domain ? env->sender_domain : "";
	case 'd': return env->domain ? env->domain : "";
	case 'h': return env->helo ? env->helo : "";
	case 'r': return env->receiver && *env->receiver ? env->receiver : "unknown";
	case 'p': return env->validated && *env->validated ? env->validated : "unknown";
	case 'v': return env->family == AF_INET ? "in-addr" : "ip6";
	case 't': snprintf(tmp, tmpsize, "%" PRIdMAX, (intmax_t)env->now); return tmp;
	case 'c':
		if (!inet_ntop(env->family, env->addr, tmp, (socklen_t)tmpsize))
			return "";
		return tmp;
	case 'i':
		if (env->family == AF_INET) {
			snprintf(tmp, tmpsize, "%u.%u.%u.%u", env->addr[0], env->addr[1], env->addr[2],
				 env->addr[3]);
		} else {
			/* dot-separated nibbles, upper case as in the RFC 7208 test
			 * suite (v-macro-ip6); DNS does not care about the case */
			static const char hex[] = "0123456789ABCDEF";
			char *o = tmp;
			for (int k = 0; k < 16; k++) {
				*o++ = hex[env->addr[k] >> 4];
				*o++ = '.';
				*o++ = hex[env->addr[k] & 15];
				*o++ = '.';
			}
			o[-1] = '\0';
		}
		return tmp;
	}
	return "";
}

struct part {
	const char *p;
	size_t n;
};

/* Splits `v` on the delimiters, reverses, keeps the right-most `keep`
 * parts (0: all) and joins them with "." into out; URL-escapes if asked. */
static void
transform(const char *v, const char *delims, size_t ndelims, bool reverse, size_t keep, bool escape,
	  struct hk_buf *out)
{
	size_t vlen = strlen(v), nparts = 0;
	struct part *parts = xmalloc((vlen + 1) * sizeof(*parts));
	const char *start = v;

	for (const char *q = v;; q++) {
		bool end = *q == '\0';
		bool d = false;
		if (!end) {
			if (ndelims == 0)
				d = *q == '.';
			else
				d = memchr(delims, *q, ndelims) != NULL;
		}
		if (end || d) {
			parts[nparts].p = start;
			parts[nparts].n = (size_t)(q - start);
			nparts++;
			start = q + 1;
		}
		if (end)
			break;
	}
	if (reverse)
		for (size_t a = 0, b = nparts - 1; a < b; a++, b--) {
			struct part t = parts[a];
			parts[a] = parts[b];
			parts[b] = t;
		}
	size_t first = keep && keep < nparts ? nparts - keep : 0;
	for (size_t k = first; k < nparts; k++) {
		if (k > first)
			buf_addc(out, '.');
		for (size_t j = 0; j < parts[k].n; j++) {
			unsigned char c = (unsigned char)parts[k].p[j];
			if (escape && !unreserved(c))
				buf_printf(out, "%%%02X", c);
			else
				buf_addc(out, (char)c);
		}
	}
	free(parts);
}

bool
spf_macro_expand(const struct spf_macro_env *env, const char *s, size_t len, bool exp, struct hk_buf *out)
{
	size_t start = out->len;
	char tmp[128];
	(void)exp; /* the letters were checked by spf_macro_scan */

	for (size_t i = 0; i < len;) {
		if (out->len - start > SPF_MAX_EXPANSION)
			goto toolong;
		if (s[i] != '%') {
			buf_addc(out, s[i++]);
			continue;
		}
		if (i + 1 >= len)
			return false;
		char n = s[i + 1];
		if (n == '%' || n == '_' || n == '-') {
			buf_adds(out, n == '%' ? "%" : n == '_' ? " " : "%20");
			i += 2;
			continue;
		}
		if (n != '{' || i + 2 >= len)
			return false;
		i += 2;
		char letter = s[i++];
		bool upper = letter >= 'A' && letter <= 'Z';
		size_t keep = 0;
		for (; i < len && is_digit(s[i]); i++)
			if (keep < 1000) /* more parts than any value has */
				keep = keep * 10 + (size_t)(s[i] - '0');
		bool reverse = false;
		if (i < len && (s[i] == 'r' || s[i] == 'R')) {
			reverse = true;
			i++;
		}
		const char *delims = s + i;
		size_t nd = 0;
		while (i < len && is_delim(s[i]))
			i++, nd++;
		if (i >= len || s[i] != '}')
			return false;
		i++;
		const char *v = letter_value(env, ascii_lower(letter), tmp, sizeof(tmp));
		transform(v, delims, nd, reverse, keep, upper, out);
	}
	if (out->len - start > SPF_MAX_EXPANSION)
		goto toolong;
	return true;
toolong:
	out->len = start;
	out->data[start] = '\0';
	return false;
}

bool
spf_domain_finish(struct hk_buf *name)
{
	char *d = name->data;
	size_t len = name->len;

	if (!d)
		return false;
	if (len && d[len - 1] == '.')
		len--;
	while (len > SPF_MAX_DOMAIN_LEN) {
		char *dot = memchr(d, '.', len);
		if (!dot)
			return false;
		size_t cut = (size_t)(dot - d) + 1;
		memmove(d, d + cut, len - cut);
		len -= cut;
	}
	d[len] = '\0';
	name->len = len;
	if (len == 0)
		return false;
	size_t label = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || d[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
		} else {
			label++;
		}
	}
	return true;
}

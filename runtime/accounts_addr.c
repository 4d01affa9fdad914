/*
 * accounts_addr.c - normalising and checking the addresses and domain
 * names of the accounts store (see accounts.h, "normalisation").
 *
 * Hosted domains are stored in their A-label form (libidn, IDNA2003:
 * "例え.jp" -> "xn--r8jz45g.jp"), lower case, without the trailing dot.
 * Local parts are RFC 5321 dot-strings; the store keeps them as created
 * and matches them case-insensitively (ASCII), as most hosts do.
 *
 * SECURITY: input comes from administrators and from SMTP/IMAP clients
 * (login names, RCPT TO). Lengths are checked before copying; UTF-8 is
 * validated before libidn sees it.
 */
#include <errno.h>
#include <idna.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "charset.h"
#include "accounts.h"
#include "accounts_be.h"

#define INPUT_MAX 1024 /* bytes of any name we are asked to normalise */

/* A normalised domain: lower-case LDH labels of 1..63 bytes, no leading or
 * trailing hyphen, at least two labels, a top-level label that is not
 * all digits, at most 253 bytes. */
bool
acct_valid_domain(const char *d)
{
	size_t n = strlen(d);
	if (n == 0 || n > HK_DOMAIN_MAX)
		return false;
	size_t labels = 0, start = 0;
	bool all_digits = true;
	for (size_t i = 0; i <= n; i++) {
		char c = d[i];
		if (c == '.' || c == '\0') {
			size_t len = i - start;
			if (len == 0 || len > HK_LABEL_MAX || d[start] == '-' || d[i - 1] == '-')
				return false;
			labels++;
			start = i + 1;
			if (c == '\0')
				break;
			all_digits = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (!(c >= '0' && c <= '9'))
			all_digits = false;
	}
	return labels >= 2 && !all_digits;
}

static bool
atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 5321 Dot-string; hosted local parts are ASCII, others may carry
 * UTF-8 (RFC 6531 atext). */
bool
acct_valid_local(const char *l, bool hosted)
{
	size_t n = strlen(l);
	if (n == 0 || n > HK_LOCAL_MAX || l[0] == '.' || l[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)l[i];
		if (c == '.') {
			if (l[i + 1] == '.')
				return false;
		} else if (c >= 0x80) {
			if (hosted)
				return false;
		} else if (!atext(c)) {
			return false;
		}
	}
	return hosted || utf8_valid((const char *)l, n);
}

bool
acct_valid_address(const char *addr)
{
	const char *at = strrchr(addr, '@');
	size_t n = strlen(addr);
	if (at == NULL || n > HK_ADDRESS_MAX || (size_t)(at - addr) > HK_LOCAL_MAX)
		return false;
	char local[HK_LOCAL_MAX + 1];
	memcpy(local, addr, (size_t)(at - addr));
	local[at - addr] = '\0';
	return acct_valid_local(local, false) && acct_valid_domain(at + 1);
}

void
acct_join_address(char *out, size_t cap, const char *local, const char *domain)
{
	size_t ll = strlen(local), dl = strlen(domain);
	if (cap == 0)
		return;
	if (ll + 1 + dl + 1 > cap) {
		out[0] = '\0';
		return;
	}
	memcpy(out, local, ll);
	out[ll] = '@';
	memcpy(out + ll + 1, domain, dl + 1);
}

bool
acct_valid_plan_name(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > HK_PLAN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return false;
	}
	return true;
}

static enum hk_acct_status
bad(char *err, size_t errlen, const char *what, const char *in, const char *why)
{
	if (err && errlen) {
		char shown[80];
		size_t o = 0, i = 0;
		for (; in[i] && o + 5 < sizeof(shown); i++) {
			unsigned char c = (unsigned char)in[i];
			if (c < 0x20 || c == 0x7F)
				o += (size_t)snprintf(shown + o, sizeof(shown) - o, "\\x%02x", c);
			else
				shown[o++] = (char)c;
		}
		shown[o] = '\0';
		snprintf(err, errlen, "invalid %s '%s%s': %s", what, shown, in[i] ? "..." : "", why);
	}
	return HK_ACCT_INVALID;
}

/* Each xn-- label must be real Punycode: decode it and encode it back. */
static bool
alabels_ok(const char *d)
{
	const char *p = d;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		if (len >= 4 && strncmp(p, "xn--", 4) == 0) {
			char label[HK_LABEL_MAX + 1];
			memcpy(label, p, len);
			label[len] = '\0';
			char *u = NULL, *back = NULL;
			/* ToUnicode gives its input back when it cannot decode: that is a failure here */
			bool ok = idna_to_unicode_8z8z(label, &u, 0) == IDNA_SUCCESS && strcasecmp(u, label) != 0 &&
			    idna_to_ascii_8z(u, &back, IDNA_USE_STD3_ASCII_RULES) == IDNA_SUCCESS && strcasecmp(back, label) == 0;
			free(u);
			free(back);
			if (!ok)
				return false;
		}
		p += len;
		if (*p == '.')
			p++;
	}
	return true;
}

enum hk_acct_status
hk_domain_normalize(const char *in, char out[HK_DOMAIN_MAX + 1], char *err, size_t errlen)
{
	out[0] = '\0';
	size_t n = strnlen(in, INPUT_MAX + 1);
	if (n > INPUT_MAX)
		return bad(err, errlen, "domain", in, "too long");
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0)
		return bad(err, errlen, "domain", in, "empty");
	char tmp[INPUT_MAX + 1];
	memcpy(tmp, in, n);
	tmp[n] = '\0';
	if (tmp[0] == '[')
		return bad(err, errlen, "domain", in, "address literals cannot be hosted");
	bool ascii = true;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)tmp[i];
		if (c >= 0x80)
			ascii = false;
		else if (c <= 0x20 || c == 0x7F)
			return bad(err, errlen, "domain", in, "contains spaces or control characters");
	}
	char res[INPUT_MAX + 1];
	if (ascii) {
		memcpy(res, tmp, n + 1);
	} else {
		if (!utf8_valid((const char *)tmp, n))
			return bad(err, errlen, "domain", in, "not valid UTF-8");
		char *a = NULL;
		int rc = idna_to_ascii_8z(tmp, &a, IDNA_USE_STD3_ASCII_RULES);
		if (rc != IDNA_SUCCESS) {
			free(a);
			return bad(err, errlen, "domain", in, idna_strerror(rc));
		}
		size_t al = strlen(a);
		if (al > INPUT_MAX) {
			free(a);
			return bad(err, errlen, "domain", in, "too long");
		}
		memcpy(res, a, al + 1);
		free(a);
	}
	for (char *p = res; *p; p++)
		*p = ascii_lower(*p);
	size_t rl = strlen(res);
	if (rl > HK_DOMAIN_MAX)
		return bad(err, errlen, "domain", in, "longer than 253 bytes");
	if (!acct_valid_domain(res)) {
		const char *why = "labels must be letters, digits and inner hyphens, 1-63 bytes each, "
		                  "with at least one dot and a top-level label that is not a number";
		return bad(err, errlen, "domain", in, why);
	}
	if (!alabels_ok(res))
		return bad(err, errlen, "domain", in, "an xn-- label is not valid Punycode");
	memcpy(out, res, rl + 1);
	return HK_ACCT_OK;
}

enum hk_acct_status
hk_address_normalize(const char *in, bool hosted, char local[HK_LOCAL_MAX + 1], char domain[HK_DOMAIN_MAX + 1],
    char *err, size_t errlen)
{
	local[0] = domain[0] = '\0';
	size_t n = strnlen(in, INPUT_MAX + 1);
	if (n > INPUT_MAX)
		return bad(err, errlen, "address", in, "too long");
	const char *at = strrchr(in, '@');
	if (at == NULL)
		return bad(err, errlen, "address", in, "missing @domain");
	size_t ll = (size_t)(at - in);
	if (ll == 0)
		return bad(err, errlen, "address", in, "empty local part");
	if (in[0] == '"')
		return bad(err, errlen, "address", in, "quoted local parts are not supported");
	if (ll > HK_LOCAL_MAX)
		return bad(err, errlen, "address", in, "local part longer than 64 bytes");
	char l[HK_LOCAL_MAX + 1];
	memcpy(l, in, ll);
	l[ll] = '\0';
	if (!acct_valid_local(l, hosted))
		return bad(err, errlen, "address", in,
		    hosted ? "the local part must be letters, digits, dots (not first, last or doubled) and !#$%&'*+-/=?^_`{|}~"
		           : "the local part is not an RFC 5321 dot-string");
	char d[HK_DOMAIN_MAX + 1];
	enum hk_acct_status st = hk_domain_normalize(at + 1, d, err, errlen);
	if (st != HK_ACCT_OK)
		return st;
	if (ll + 1 + strlen(d) > HK_ADDRESS_MAX)
		return bad(err, errlen, "address", in, "longer than 254 bytes");
	memcpy(local, l, ll + 1);
	memcpy(domain, d, strlen(d) + 1);
	return HK_ACCT_OK;
}

void
hk_domain_display(const char *alabel, char *out, size_t outlen)
{
	if (outlen == 0)
		return;
	snprintf(out, outlen, "%s", alabel);
	if (strstr(alabel, "xn--") == NULL)
		return;
	char *u = NULL;
	if (idna_to_unicode_8z8z(alabel, &u, 0) == IDNA_SUCCESS && strlen(u) < outlen)
		snprintf(out, outlen, "%s", u);
	free(u);
}
